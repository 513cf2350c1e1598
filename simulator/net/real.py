"""The same interface on OS sockets: asyncio TCP and UDP on configured addresses.

Hosts get loopback addresses (127.0.0.2, .3, ... in creation order) unless given one; Linux
answers on all of 127.0.0.0/8, so many "hosts" share one machine with their own addresses and
the default ports (5060/5061) without clashing. Names resolve through this network's table only,
never system DNS, so `sip.pstnhub.microsoft.com` means the lab's proxy, not Microsoft's.
Connections are bound to the source host's address, so the peer sees who called.

Links cannot be cut here (no netem, and loopback is not ours to break): cuts on real networks
belong to the Docker lab (nftables in network namespaces). Events match the sim network's:
net.listen, net.connect, net.refused, net.connect_timeout.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
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


class RealNetwork(Network):
    """Loopback (or configured) sockets behind the same calls as SimNetwork."""

    kind = "real"

    def __init__(self, *, events: EventLog | None = None, first_address: str = "127.0.0.2") -> None:
        super().__init__(events)
        base = first_address.rsplit(".", 1)
        self._prefix, self._next_octet = base[0], int(base[1])
        self._conn_ids = itertools.count(1)
        self._listeners: list[Listener] = []
        self._transports: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = super().loop
        if isinstance(loop, VirtualClockLoop) and loop.pace is None:
            # A jumping clock would fire timeouts while a real peer is still answering.
            raise RuntimeError("the real network needs wall-clock time: run it with asyncio.run(), "
                               "not on a VirtualClockLoop without pace")
        return loop

    def add_host(
        self, name: str, *, address: str | None = None, aliases: Iterable[str] = (), site: str | None = None
    ) -> Host:
        if address is None:
            while f"{self._prefix}.{self._next_octet}" in self.hosts.by_address:
                self._next_octet += 1
            if self._next_octet > 254:
                raise ValueError(f"no automatic addresses left in {self._prefix}.0/24; give host {name} an address")
            address = f"{self._prefix}.{self._next_octet}"
            self._next_octet += 1
        return self.hosts.add(Host(name, address, tuple(aliases), site))

    async def listen_stream(self, host: str, port: int, protocol_factory: ProtocolFactory) -> Listener:
        check_port(port)
        where = self.host(host)
        try:
            server = await self.loop.create_server(
                protocol_factory, where.address, port, family=socket.AF_INET, reuse_address=True
            )
        except OSError as exc:
            raise self._bind_error(exc, where, port, STREAM) from exc
        bound = server.sockets[0].getsockname()[1]
        listener = _RealStreamListener(where, bound, server)
        self._listeners.append(listener)
        self.events.emit("net.listen", host=where.name, address=where.address, port=bound, transport=STREAM)
        return listener

    async def connect_stream(
        self, from_host: str, to_name: str, port: int, protocol_factory: ProtocolFactory, *, timeout: float | None = None
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        check_port(port, allow_zero=False)
        src, dst = self.host(from_host), self.host(to_name)
        where = f"{src.name} -> {dst.name} ({dst.address}):{port}"
        connecting = self.loop.create_connection(
            protocol_factory, dst.address, port, family=socket.AF_INET, local_addr=(src.address, 0)
        )
        try:
            transport, protocol = await (connecting if timeout is None else asyncio.wait_for(connecting, timeout))
        except ConnectionRefusedError as exc:
            self.events.emit("net.refused", host=src.name, to=dst.name, port=port, reason="connection refused")
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"connect {where} refused: nothing listening") from exc
        except TimeoutError as exc:
            self.events.emit("net.connect_timeout", host=src.name, to=dst.name, port=port, after=timeout, reason="no answer")
            raise TimeoutError(errno.ETIMEDOUT, f"connect {where} timed out after {timeout} s") from exc
        except OSError as exc:
            raise OSError(exc.errno, f"connect {where} failed: {exc.strerror or exc}") from exc
        local = transport.get_extra_info("sockname")
        self._transports.add(transport)
        self.events.emit(
            "net.connect",
            conn=f"c{next(self._conn_ids)}",
            host=src.name,
            to=dst.name,
            src=f"{local[0]}:{local[1]}",
            dst=f"{dst.address}:{port}",
            links="",
        )
        return transport, protocol  # type: ignore[return-value]

    async def open_datagram(
        self, host: str, port: int, protocol_factory: ProtocolFactory, *, remote: tuple[str, int] | None = None
    ) -> tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]:
        check_port(port)
        where = self.host(host)
        remote_addr = None
        if remote is not None:
            remote_addr = (self.resolve(remote[0]), check_port(remote[1], allow_zero=False))
        try:
            transport, protocol = await self.loop.create_datagram_endpoint(
                protocol_factory, local_addr=(where.address, port), remote_addr=remote_addr, family=socket.AF_INET
            )
        except OSError as exc:
            raise self._bind_error(exc, where, port, DATAGRAM) from exc
        bound = transport.get_extra_info("sockname")[1]
        self._transports.add(transport)
        self.events.emit("net.listen", host=where.name, address=where.address, port=bound, transport=DATAGRAM)
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
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners.clear()
        self._transports.clear()
