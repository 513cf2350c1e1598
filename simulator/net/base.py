"""The network interface roles use: hosts by name, stream listeners/connections, datagrams.

Roles never touch sockets: they ask the network for listeners and connections by name and get
the same interface on `sim` and `real`. Both networks hand out plain asyncio
objects — `asyncio.Transport` / `asyncio.DatagramTransport` driving a protocol from a factory,
exactly like `loop.create_connection` / `loop.create_datagram_endpoint` — so the SIP transport
layer is written once, and TLS is added on either network by the caller with
`loop.start_tls(transport, protocol, sslcontext, ...)` (simulator/net/tls.py): a TLS listener is a
TCP listener whose accepted connections the caller upgrades, which is what makes failed
handshakes observable (asyncio's `start_server(ssl=...)` swallows them).

Names: every host has one name (`sbc1.contoso.com`), optional aliases (more DNS names) and one
IPv4 address. Name resolution uses the network's own table, never system DNS, on both networks.

Errors are the builtin ones with a message naming who, where and why:
`ConnectionRefusedError` (no listener, link down), `TimeoutError` (connect timeout, e.g. through
a blackholed link), `OSError(EADDRINUSE)`, `socket.gaierror` (unknown name), `ValueError` (bad input).
"""

from __future__ import annotations

import abc
import asyncio
import errno
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from simulator.events import EventLog

STREAM = "tcp"
DATAGRAM = "udp"
TRANSPORTS = (STREAM, DATAGRAM)

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


@dataclass(frozen=True)
class Host:
    """A machine on a network: its name, extra DNS names, IPv4 address and (sim) site."""

    name: str
    address: str
    aliases: tuple[str, ...] = ()
    site: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class Listener(abc.ABC):
    """What `Network.listen` returns: a bound TCP listener or UDP endpoint; close() stops it."""

    host: Host
    port: int
    transport: str
    #: For UDP: the DatagramTransport and protocol bound to (address, port); None for TCP.
    endpoint: tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host.address, self.port)

    @abc.abstractmethod
    def close(self) -> None: ...

    async def wait_closed(self) -> None:
        return None


@dataclass
class HostTable:
    """Names and aliases -> Host; addresses -> Host. Shared by both networks."""

    by_name: dict[str, Host] = field(default_factory=dict)
    by_address: dict[str, Host] = field(default_factory=dict)

    def add(self, host: Host) -> Host:
        _check_name(host.name)
        for alias in host.aliases:
            _check_name(alias)
        try:
            ipaddress.IPv4Address(host.address)
        except ValueError:
            raise ValueError(f"host {host.name}: address {host.address!r} is not an IPv4 address") from None
        for name in host.names:
            if name.lower() in self.by_name:
                raise ValueError(f"host name {name!r} is already used by {self.by_name[name.lower()].name}")
        if host.address in self.by_address:
            raise ValueError(f"address {host.address} of {host.name} is already used by {self.by_address[host.address].name}")
        for name in host.names:
            self.by_name[name.lower()] = host
        self.by_address[host.address] = host
        return host

    def lookup(self, name_or_address: str, *, network: str) -> Host:
        """Host by name, alias (case-insensitive, DNS style) or address."""
        host = self.by_name.get(str(name_or_address).lower().rstrip(".")) or self.by_address.get(name_or_address)
        if host is None:
            raise socket.gaierror(socket.EAI_NONAME, f"{name_or_address}: no such host on the {network} network")
        return host


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or any(c.isspace() for c in name) or ":" in name:
        raise ValueError(f"bad host name {name!r}: expected a DNS name like sbc1.contoso.com")


def check_port(port: Any, *, allow_zero: bool = True) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not (0 if allow_zero else 1) <= port <= 65535:
        raise ValueError(f"bad port {port!r}: expected an integer 0..65535")
    return port


def check_transport(transport: str) -> str:
    if transport not in TRANSPORTS:
        raise ValueError(f"bad transport {transport!r}: expected one of {', '.join(TRANSPORTS)} (TLS = tcp, then start_tls)")
    return transport


def address_in_use(host: Host, port: int, transport: str) -> OSError:
    return OSError(errno.EADDRINUSE, f"{transport} port {port} on {host.name} ({host.address}) is already in use")


class Network(abc.ABC):
    """One interface, two implementations: SimNetwork (sim.py) and RealNetwork (real.py)."""

    kind: str
    events: EventLog

    def __init__(self, events: EventLog | None = None) -> None:
        self.hosts = HostTable()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.events = events if events is not None else EventLog(clock=self._time)
        self.log = self.events.logger()  # network events name their hosts and connections, not a node

    # -- time and loop -------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop this network runs on: bound on first use inside a running loop."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _time(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    # -- hosts and names -----------------------------------------------------------------
    @abc.abstractmethod
    def add_host(
        self, name: str, *, address: str | None = None, aliases: Iterable[str] = (), site: str | None = None
    ) -> Host:
        """Declare a host; `address` is chosen for you when omitted (deterministically)."""

    def host(self, name_or_address: str) -> Host:
        """The Host for a name, alias or address; socket.gaierror if unknown."""
        return self.hosts.lookup(name_or_address, network=self.kind)

    def resolve(self, name: str) -> str:
        """The IPv4 address of a host name (from this network's table, never system DNS)."""
        return self.host(name).address

    def is_external(self, name_or_address: str) -> bool:
        """Whether this host is a peer outside the lab (RealNetwork.add_external), which cannot
        resolve the lab's names: what we send it names us by address. None on sim."""
        return False

    # -- the interface roles use ---------------------------------------------------------
    async def listen(self, host: str, port: int, transport: str, protocol_factory: ProtocolFactory) -> Listener:
        """Listen on `host`:`port`. tcp: each accepted connection gets a fresh protocol from
        the factory; udp: one DatagramProtocol bound there (`listener.endpoint`)."""
        if check_transport(transport) == STREAM:
            return await self.listen_stream(host, port, protocol_factory)
        return await self.listen_datagram(host, port, protocol_factory)

    async def connect(
        self,
        from_host: str,
        to_name: str,
        port: int,
        protocol_factory: ProtocolFactory,
        *,
        transport: str = STREAM,
        timeout: float | None = None,
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        """Open a TCP connection (or a connected UDP endpoint) from `from_host` to `to_name`:`port`."""
        if check_transport(transport) == STREAM:
            return await self.connect_stream(from_host, to_name, port, protocol_factory, timeout=timeout)
        return await self.open_datagram(from_host, 0, protocol_factory, remote=(to_name, port))

    @abc.abstractmethod
    async def listen_stream(self, host: str, port: int, protocol_factory: ProtocolFactory) -> Listener: ...

    @abc.abstractmethod
    async def connect_stream(
        self, from_host: str, to_name: str, port: int, protocol_factory: ProtocolFactory, *, timeout: float | None = None
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]: ...

    @abc.abstractmethod
    async def open_datagram(
        self, host: str, port: int, protocol_factory: ProtocolFactory, *, remote: tuple[str, int] | None = None
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
        """A UDP endpoint bound to `host`:`port` (0 = ephemeral). `sendto(data, (address, port))`
        takes an address (use `resolve`); with `remote=(name, port)` it is connected and
        `sendto(data)` needs no address."""

    async def listen_datagram(self, host: str, port: int, protocol_factory: ProtocolFactory) -> Listener:
        transport, protocol = await self.open_datagram(host, port, protocol_factory)
        return _DatagramListener(self.host(host), transport.get_extra_info("sockname")[1], transport, protocol)

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every listener and connection this network handed out."""


class _DatagramListener(Listener):
    def __init__(self, host: Host, port: int, transport: asyncio.DatagramTransport, protocol: Any) -> None:
        self.host = host
        self.port = port
        self.transport = DATAGRAM
        self.endpoint = (transport, protocol)

    def close(self) -> None:
        assert self.endpoint is not None
        self.endpoint[0].close()
