"""The same interface on OS sockets: asyncio TCP and UDP on configured addresses, with links.

Hosts get addresses from the network's block in creation order unless given one: the block's
first address is the relay's, hosts take the second, third, ... Linux answers on all of
127.0.0.0/8, so many "hosts" share one machine with their own addresses and the default ports
(5060/5061) without clashing. By default the block is a free 127.a.b.0/24 picked at random, so
two labs or test runs on one machine never meet; `RealNetwork(block="127.0.0.0/24")` names one.
While the network lives it holds UDP port CLAIM_PORT on the block's first address: a second
network (in any process) that picks the same block cannot bind it, and picks another (or, for a
named block, fails with a clear error; `join=True` uses a block another process of the same lab
claimed). `addresses()` is the map of host names to addresses. Names resolve through this network's table only,
never system DNS, so `sip.pstnhub.microsoft.com` means the lab's proxy, not Microsoft's.
Connections are bound to the source host's address, so the peer sees who called, and both
ends of a TCP connection carry sim's extra info (`conn` id, `links`) from connection_made on.

Topology is the sim network's (sim.py): hosts live in sites (`add_site`, `add_host(site=)`),
named links join sites (`add_link(name, a, b, latency=, jitter=, loss=)`), the path between two
hosts is the fixed shortest chain of links, and `link(name)` returns the same `Link` object with
`.down()`, `.up()`, `.blackhole()`, `.impair(...)` and `.state`, emitting the same events
(`link.down` with `reset`, `link.up`, `link.blackhole`, `link.impaired`). Hosts in one site
talk directly; traffic whose path crosses a link goes through relay.py (a TCP relay of ours and
per-endpoint UDP shaping), which realizes the link's state on real sockets. Roles do not know:
`connect`, `listen` and `open_datagram` are unchanged. relay.py lists what differs from sim.

A routed network (`RealNetwork(routed=True)`, the Docker lab: simulator/dockerlab) has no block:
every host is added with the address the lab file gives it, on an interface of its own machine
or container, and the paths between sites are real routes through a router that realizes the
links' states itself (nftables). Such a network keeps the topology and the links' states (the
`link.*` events) but never relays or shapes: every path it uses is direct.

A peer outside drlab (SIPp, a carrier's SBC, Kamailio as the SBC: a lab node with
`external: true`) is a host added with `add_external(name, address=...)` at the address where it
listens, which must lie outside the block. Its traffic never passes the relay or the shaping: the
path to it is always direct, so no link delays or impairs it (drlab does not own the peer's
sockets). One thing can reach it: a cut. A peer added with `cut_by_links=True` (the lab does so
for an external SBC, which sits in a branch whose WAN the lab cuts) has its TCP connections to and
from lab hosts gated by the links between their sites (`_gate`): refused while one is down (a
connect from the lab is refused; one the peer opens is closed as soon as it is accepted), and reset
when one goes down. So cutting the link of sip.pstnhub.microsoft.com cuts a real SBC off it, as it
would cut drlab's own. UDP, blackholes and impairments never reach the peer, nor does anything
reach a peer added without it (a carrier).
`is_external(name)` tells the endpoint to name itself by address toward it.

Events match the sim network's: link.*, net.listen, net.connect (with `links`), net.refused,
net.connect_timeout, net.reset, net.retransmit, net.drop. Randomness (jitter, loss) comes from
`self.rng`, seeded; timing is the wall clock's, so runs are not byte-identical.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import itertools
import random
import socket
import weakref
from collections.abc import Iterable

from simulator.events import EventLog
from simulator.net.base import (
    DATAGRAM,
    STREAM,
    Host,
    Listener,
    Network,
    ProtocolFactory,
    address_in_use,
    check_port,
)
from simulator.net.clock import VirtualClockLoop
from simulator.net.relay import DatagramShim, Refused, StreamRelay, SynTimeout
from simulator.net.topology import (
    BLACKHOLE,
    DOWN,
    LINK_STATES,
    UP,
    Path,
    SiteTopology,
)

#: the path to a peer outside the lab: no links
DIRECT = Path(())


class _RealStreamListener(Listener):
    def __init__(self, host: Host, port: int, server: asyncio.AbstractServer) -> None:
        self.host = host
        self.port = port
        self.transport = STREAM
        self.server = server

    def close(self) -> None:
        self.server.close()

    async def wait_closed(self) -> None:
        await self.server.wait_closed()


class _Handover(asyncio.Protocol):
    """The first protocol of a new TCP transport: sets the flow's extra info (`conn`, `links`,
    and on a relayed caller the `peername` it asked for), then hands the transport to the real
    protocol before that protocol sees it — as sim's StreamEnd offers them from the start."""

    def __init__(self, app: asyncio.BaseProtocol, extra: dict[str, object] | None) -> None:
        self.app, self.extra = app, extra

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        own = getattr(transport, "_extra", None)  # asyncio has no public setter for extra info
        if self.extra and isinstance(own, dict):
            own.update(self.extra)
        transport.set_protocol(self.app)
        self.app.connection_made(transport)


class _Accepting(_Handover):
    """A listener's handover: the flow's extra info comes from the connect that made it."""

    def __init__(self, net: RealNetwork, app: asyncio.BaseProtocol) -> None:
        super().__init__(app, None)
        self.net = net

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.net._gated_accept(transport):
            return
        peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        known = self.net._flows.pop((tuple(peer[:2]), tuple(local[:2])), None) if peer and local else None  # type: ignore[arg-type]
        if known is not None:
            self.extra = {"conn": known["conn"], "links": known["links"]}
            if known["links"]:
                self.net.relayed_ends.setdefault(known["conn"], []).append(transport)  # type: ignore[arg-type]
        super().connection_made(transport)


#: Held (UDP) on a block's first address while its network lives: the block's claim.
CLAIM_PORT = 5059
#: Random blocks tried before giving up (each is one bind; a busy machine holds a handful at most).
BLOCK_ATTEMPTS = 64


def parse_block(block: str) -> ipaddress.IPv4Network:
    """'127.0.0.0/24' -> the network; a clear ValueError for anything else."""
    try:
        network = ipaddress.IPv4Network(block)
    except ValueError as err:
        raise ValueError(f"address block must be an IPv4 network such as 127.0.0.0/24, not {block!r}: {err}") from None
    if network.num_addresses < 4:
        raise ValueError(f"address block {block} is too small: it needs a relay address and host addresses")
    return network


def claim_block(block: str | None) -> tuple[ipaddress.IPv4Network, socket.socket]:
    """The block a RealNetwork uses and the socket that claims it: the named one, or a free
    127.a.b.0/24 picked at random (not from the network's seeded rng: two runs with one seed must
    still pick different blocks)."""
    if block is not None:
        network = parse_block(block)
        try:
            return network, _claim(network)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise OSError(exc.errno, f"address block {network} is in use by another drlab network "
                                     f"({next(network.hosts())}:{CLAIM_PORT} is taken)") from None
    chooser = random.Random()
    for _ in range(BLOCK_ATTEMPTS):
        network = ipaddress.IPv4Network((f"127.{chooser.randrange(1, 255)}.{chooser.randrange(256)}.0", 24))
        try:
            return network, _claim(network)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"no free 127.a.b.0/24 address block in {BLOCK_ATTEMPTS} tries")


def _claim(network: ipaddress.IPv4Network) -> socket.socket:
    claim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        claim.bind((str(next(network.hosts())), CLAIM_PORT))
    except OSError:
        claim.close()
        raise
    return claim


class RealNetwork(Network, SiteTopology):
    """Loopback (or configured) sockets behind the same calls as SimNetwork, links included."""

    kind = "real"

    def __init__(self, *, events: EventLog | None = None, block: str | None = None, seed: int = 0,
                 join: bool = False, routed: bool = False) -> None:
        super().__init__(events)
        self.routed = routed
        if routed:  # no block: the lab file's addresses, on real interfaces (see the module docstring)
            if block is not None:
                raise ValueError("a routed network takes its hosts' addresses from the lab, not from a block")
            self.block, self._release_block = None, lambda: None
        elif join:  # one lab's block, claimed by another process of the same lab (simulator/control/node.py)
            if block is None:
                raise ValueError("joining a lab's address block needs the block")
            self.block, self._release_block = parse_block(block), lambda: None
        else:
            self.block, claim = claim_block(block)
            self._release_block = weakref.finalize(self, claim.close)
        addresses = iter(self.block.hosts()) if self.block is not None else iter(())
        self.relay_address = str(next(addresses, ""))
        self._free_addresses = (str(address) for address in addresses)
        self.seed = seed
        self.rng = random.Random(seed)
        self._init_topology()
        self._conn_ids = itertools.count(1)
        self._listeners: list[Listener] = []
        self._transports: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()
        # (client address, server address) -> extra info of connects not yet accepted, so the
        # listener's side learns the flow's id (flows to listeners not ours stay till close()).
        self._flows: dict[tuple[tuple[str, int], tuple[str, int]], dict[str, object]] = {}
        # conn id -> both ends' transports of a relayed connection, for cut_ends().
        self.relayed_ends: dict[str, list[asyncio.BaseTransport]] = {}
        # TCP transports to and from external peers whose sites links join to ours -> their gate
        self._gated: weakref.WeakKeyDictionary[asyncio.BaseTransport, Path] = weakref.WeakKeyDictionary()
        self.relay = StreamRelay(self)
        self._external: set[str] = set()  # lowercased names of the hosts added by add_external
        self._cut_by_links: set[str] = set()  # those of them whose TCP connections links gate

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = super().loop
        if isinstance(loop, VirtualClockLoop) and loop.pace is None:
            # A jumping clock would fire timeouts while a real peer is still answering.
            raise RuntimeError("the real network needs wall-clock time: run it with asyncio.run(), "
                               "not on a VirtualClockLoop without pace")
        return loop

    # -- topology: SiteTopology (topology.py), the sim network's rules
    def add_host(
        self, name: str, *, address: str | None = None, aliases: Iterable[str] = (), site: str | None = None
    ) -> Host:
        site = self._host_site(name, site)
        if address is None:
            address = next((a for a in self._free_addresses if a not in self.hosts.by_address), None)
            if address is None:
                where = "a routed network has none" if self.routed else f"none left in {self.block}"
                raise ValueError(f"no automatic address for host {name} ({where}): give it an address")
        return self.hosts.add(Host(name, address, tuple(aliases), site))

    def add_external(self, name: str, *, address: str, aliases: Iterable[str] = (), site: str | None = None,
                     cut_by_links: bool = False) -> Host:
        """A peer outside drlab at `address` (e.g. SIPp on 127.0.0.1): reached directly, never
        through the relay; `site` records where the lab file put it, and with `cut_by_links` the
        links between that site and a lab host's cut their TCP connections (see the module doc)."""
        try:
            inside = self.block is not None and ipaddress.IPv4Address(address) in self.block
        except ValueError:
            raise ValueError(f"host {name}: address {address!r} is not an IPv4 address") from None
        if inside:
            raise ValueError(f"address {address} of {name} lies in this network's block {self.block}, whose "
                             f"addresses drlab gives its own hosts: choose one outside it")
        host = self.hosts.add(Host(name, address, tuple(aliases), self._host_site(name, site)))
        self._external.add(host.name.lower())
        if cut_by_links:
            self._cut_by_links.add(host.name.lower())
        return host

    def is_external(self, name_or_address: str) -> bool:
        host = self.hosts.by_name.get(name_or_address.lower()) or self.hosts.by_address.get(name_or_address)
        return host is not None and host.name.lower() in self._external

    def _path(self, src: Host, dst: Host) -> Path:
        if self.routed or src.name.lower() in self._external or dst.name.lower() in self._external:
            return DIRECT
        return super()._path(src, dst)

    def _gate(self, src: Host, dst: Host) -> Path:
        """The links whose cut reaches a TCP connection between `src` and `dst` when one is an
        external peer cut by links: those between their sites, none when no links join them."""
        if src.name.lower() not in self._cut_by_links and dst.name.lower() not in self._cut_by_links:
            return DIRECT
        try:
            return super()._path(src, dst)
        except OSError:  # the peer's site has no links (a carrier outside every site): never cut
            return DIRECT

    def _gated_accept(self, transport: asyncio.BaseTransport) -> bool:
        """A connection an external peer opened to one of our listeners: False (and closed) when
        a link between the two is down, as if the SYN never arrived."""
        peer, local = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        src = self.hosts.by_address.get(peer[0]) if peer else None
        dst = self.hosts.by_address.get(local[0]) if local else None
        if src is None or dst is None:
            return True
        gate = self._gate(src, dst)
        down = gate.first(DOWN)
        if down is not None:
            self.log.info("net.refused", host=src.name, to=dst.name, port=local[1], reason=f"link {down.name} down",
                          link=down.name)
            transport.abort()
            return False
        if gate.links:
            self._gated[transport] = gate
        return True

    def addresses(self) -> dict[str, str]:
        """Host name -> address, in the order the hosts were added."""
        return {host.name: host.address for host in self.hosts.by_address.values()}

    # -- link control (what Link's methods call) -------------------------------------------
    def set_link_state(self, name: str, state: str) -> None:
        if state not in LINK_STATES:
            raise ValueError(f"bad link state {state!r}: expected one of {', '.join(LINK_STATES)}")
        link = self.link(name)
        if link.state == state:
            return
        previous, link.state = link.state, state
        affected = self.relay.crossing(name) if state == DOWN else []
        gated = [t for t, gate in list(self._gated.items()) if name in gate.names and not t.is_closing()] \
            if state == DOWN else []
        # routed: the router resets each connection at its next segment; how many is not known here
        self.log.info(f"link.{state}", link=name, previous=previous,
                      **({"reset": len(affected) + len(gated)} if state == DOWN and not self.routed else {}))
        for bridge in affected:
            bridge.reset(name, "link down")
        for transport in gated:
            self._reset(transport, f"link {name} down")
        if state == UP:
            self.relay.link_changed()

    def _reset(self, transport: asyncio.BaseTransport, why: str) -> None:
        """Close a connection as a reset: its protocol hears connection_lost(ConnectionResetError)."""
        force_close = getattr(transport, "_force_close", None)  # asyncio's own path for fatal errors
        if force_close is None:
            transport.close()
            return
        local = transport.get_extra_info("sockname")
        host = self.hosts.by_address.get(local[0]) if local else None
        force_close(ConnectionResetError(errno.ECONNRESET, f"connection of {host.name if host else '?'} reset: {why}"))

    def cut_ends(self, conn_id: str, link_name: str) -> None:
        """A cut reached relayed connection `conn_id`: its two ends' protocols hear
        connection_lost(ConnectionResetError) naming the link now, as on sim, instead of the
        kernel's anonymous "Connection reset by peer" from the relay's RST a moment later."""
        for transport in self.relayed_ends.pop(conn_id, []):
            force_close = getattr(transport, "_force_close", None)  # asyncio's own path for fatal errors
            if force_close is None or transport.is_closing():
                continue
            local = transport.get_extra_info("sockname")
            host = self.hosts.by_address.get(local[0]) if local else None
            who = host.name if host else "?"
            force_close(ConnectionResetError(errno.ECONNRESET, f"connection {conn_id} of {who} reset: link {link_name} down"))

    # -- streams ---------------------------------------------------------------------------
    async def listen_stream(self, host: str, port: int, protocol_factory: ProtocolFactory) -> Listener:
        check_port(port)
        where = self.host(host)
        try:
            server = await self.loop.create_server(
                lambda: _Accepting(self, protocol_factory()), where.address, port, family=socket.AF_INET, reuse_address=True
            )
        except OSError as exc:
            raise self._bind_error(exc, where, port, STREAM) from exc
        bound = server.sockets[0].getsockname()[1]
        listener = _RealStreamListener(where, bound, server)
        self._listeners.append(listener)
        self.log.info("net.listen", host=where.name, address=where.address, port=bound, transport=STREAM)
        return listener

    async def connect_stream(
        self, from_host: str, to_name: str, port: int, protocol_factory: ProtocolFactory, *, timeout: float | None = None
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        check_port(port, allow_zero=False)
        src, dst = self.host(from_host), self.host(to_name)
        path = self._path(src, dst)
        where = f"{src.name} -> {dst.name} ({dst.address}):{port}"
        conn_id = f"c{next(self._conn_ids)}"
        gate = self._gate(src, dst) if not path.links else path
        down = gate.first(DOWN)
        if down is not None:  # refused at once (sim: the SYN never leaves)
            raise self._refused(src, dst, port, f"link {down.name} down", down.name)
        # Bind first, so both ends of the flow can be told its id before their protocols run.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if path.links:  # the relay's onward socket will share this address and port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((src.address, 0))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"connect {where}: cannot bind {src.address}: {exc.strerror or exc}") from exc
        local = sock.getsockname()
        flow = ((local[0], local[1]), (dst.address, port))
        extra = {"conn": conn_id, "links": path.names, "peername": (dst.address, port)}
        self._flows[flow] = extra

        async def connecting() -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
            if path.links:
                await self.relay.connect(sock, conn_id, src, dst, port, path)
            else:
                await self.loop.sock_connect(sock, (dst.address, port))
            protocol = protocol_factory()
            transport, _ = await self.loop.create_connection(lambda: _Handover(protocol, extra), sock=sock)
            return transport, protocol

        try:
            transport, protocol = await (connecting() if timeout is None else asyncio.wait_for(connecting(), timeout))
        except BaseException as exc:
            sock.close()
            self._flows.pop(flow, None)
            error = self._connect_error(exc, src, dst, port, path, timeout)
            if error is None:
                raise
            raise error from exc
        local = transport.get_extra_info("sockname")
        self._transports.add(transport)
        if path.links:
            self.relayed_ends.setdefault(conn_id, []).append(transport)
        elif gate.links:
            self._gated[transport] = gate
        self.log.info(
                      "net.connect",
                      conn=conn_id,
                      host=src.name,
                      to=dst.name,
                      src=f"{local[0]}:{local[1]}",
                      dst=f"{dst.address}:{port}",
                      links=",".join(path.names),
                      )
        return transport, protocol  # type: ignore[return-value]

    def _connect_error(
        self, exc: BaseException, src: Host, dst: Host, port: int, path: Path, timeout: float | None
    ) -> OSError | None:
        """The error (with its event) a failed connect raises: the builtin type, naming who and why."""
        where = f"{src.name} -> {dst.name} ({dst.address}):{port}"
        culprit = path.first(BLACKHOLE)
        if isinstance(exc, Refused):
            return self._refused(src, dst, port, exc.reason, exc.link)
        if isinstance(exc, ConnectionRefusedError):
            return self._refused(src, dst, port, f"nothing listening on {dst.name}:{port}")
        if isinstance(exc, SynTimeout):
            self.log.info("net.connect_timeout", host=src.name, to=dst.name, port=port, after="syn retries",
                          reason=f"link {culprit.name} blackholed" if culprit else "SYNs lost")
            return TimeoutError(*exc.args)
        if isinstance(exc, TimeoutError):
            reason = f"link {culprit.name} blackholed" if culprit else "no answer"
            self.log.info("net.connect_timeout", host=src.name, to=dst.name, port=port, after=timeout, reason=reason)
            return TimeoutError(errno.ETIMEDOUT, f"connect {where} timed out after {timeout} s ({reason})")
        if isinstance(exc, OSError):
            return OSError(exc.errno, f"connect {where} failed: {exc.strerror or exc}")
        return None

    def _refused(self, src: Host, dst: Host, port: int, reason: str, link: str | None = None) -> ConnectionRefusedError:
        self.log.info("net.refused", host=src.name, to=dst.name, port=port, reason=reason,
                      **({"link": link} if link else {}))
        where = f"{src.name} -> {dst.name} ({dst.address}):{port}"
        return ConnectionRefusedError(errno.ECONNREFUSED, f"connect {where} refused: {reason}")

    # -- datagrams -------------------------------------------------------------------------
    async def open_datagram(
        self, host: str, port: int, protocol_factory: ProtocolFactory, *, remote: tuple[str, int] | None = None
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
        """As on base.Network; the transport handed out shapes sends that cross links (relay.py)."""
        check_port(port)
        where = self.host(host)
        remote_addr = None
        if remote is not None:
            remote_addr = (self.resolve(remote[0]), check_port(remote[1], allow_zero=False))
        protocol = protocol_factory()
        try:
            _, shim = await self.loop.create_datagram_endpoint(
                lambda: DatagramShim(self, where, protocol),  # type: ignore[arg-type]
                local_addr=(where.address, port), remote_addr=remote_addr, family=socket.AF_INET
            )
        except OSError as exc:
            raise self._bind_error(exc, where, port, DATAGRAM) from exc
        transport = shim.shaped
        assert transport is not None
        bound = transport.get_extra_info("sockname")[1]
        self._transports.add(transport)
        self.log.info("net.listen", host=where.name, address=where.address, port=bound, transport=DATAGRAM)
        return transport, protocol  # type: ignore[return-value]

    @staticmethod
    def _bind_error(exc: OSError, host: Host, port: int, transport: str) -> OSError:
        if exc.errno == errno.EADDRINUSE:
            return address_in_use(host, port, transport)
        return OSError(exc.errno, f"cannot bind {transport} {host.name} ({host.address}):{port}: {exc.strerror or exc}")

    async def close(self) -> None:
        for listener in self._listeners:
            listener.close()
        for transport in list(self._transports):
            transport.close()
        await self.relay.close()
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners.clear()
        self._transports.clear()
        self._flows.clear()
        self._release_block()
