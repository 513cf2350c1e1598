"""Networks: `sim` (in-memory, virtual clock, cuttable links) and `real` (OS sockets).

Roles and the SIP transport use only the `Network` interface (base.py): hosts by name,
`listen(host, port, "tcp"|"udp", protocol_factory)`, `connect(from_host, to_name, port,
protocol_factory)`, `open_datagram(...)`, `resolve(name)`. TLS is `loop.start_tls()` over a
stream, done by simulator.net.tls on both networks.
"""

from simulator.net.base import DATAGRAM, STREAM, Host, Listener, Network
from simulator.net.clock import VirtualClockLoop, VirtualClockPolicy, run_sim
from simulator.net.real import RealNetwork
from simulator.net.sim import SimNetwork
from simulator.net.topology import BLACKHOLE, DOWN, UP, Link

__all__ = [
    "BLACKHOLE",
    "DATAGRAM",
    "DOWN",
    "STREAM",
    "UP",
    "Host",
    "Link",
    "Listener",
    "Network",
    "RealNetwork",
    "SimNetwork",
    "VirtualClockLoop",
    "VirtualClockPolicy",
    "run_sim",
]
