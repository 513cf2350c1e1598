"""UDP endpoints on the sim network: `asyncio.DatagramTransport` with link loss and delay.

Datagrams may be lost (link loss, blackhole, link down, nobody bound at the destination) and,
with jitter, arrive out of order — as on a real network. Every drop is a `net.drop` event with
its reason, so a trace says why a SIP request over UDP was never answered. A connected endpoint
(`remote=`) only accepts datagrams from its peer, like a connected UDP socket.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
from typing import TYPE_CHECKING, Any

from simulator.net.base import Host

if TYPE_CHECKING:
    from simulator.net.sim import SimNetwork

MAX_DATAGRAM = 65507  # IPv4 UDP payload limit


class DatagramEndpoint(asyncio.DatagramTransport):
    def __init__(
        self,
        net: SimNetwork,
        host: Host,
        port: int,
        protocol: asyncio.DatagramProtocol,
        remote: tuple[str, int] | None,
    ) -> None:
        super().__init__(
            extra={"sockname": (host.address, port), "peername": remote, "socket": None, "network": "sim"}
        )
        self.net = net
        self.host = host
        self.port = port
        self.remote = remote
        self._protocol = protocol
        self._closing = False

    def sendto(self, data: bytes | bytearray | memoryview, addr: tuple[str, int] | None = None) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if addr is None:
            if self.remote is None:
                raise ValueError(f"udp endpoint {self.host.name}:{self.port} is not connected: sendto() needs an address")
            addr = self.remote
        elif self.remote is not None and tuple(addr) != self.remote:
            raise ValueError(f"udp endpoint {self.host.name}:{self.port} is connected to {self.remote}, not {addr}")
        address, port = _check_address(addr)
        if len(data) > MAX_DATAGRAM:
            raise OSError(90, f"datagram of {len(data)} bytes from {self.host.name} exceeds the UDP limit {MAX_DATAGRAM}")
        if self._closing:
            return
        self.net.send_datagram(self, bytes(data), (address, port))

    def receive(self, data: bytes, source: tuple[str, int]) -> None:
        if self._closing:
            return
        if self.remote is not None and source != self.remote:
            return
        try:
            self._protocol.datagram_received(data, source)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.net.loop.call_exception_handler(
                {"message": "protocol failed on a datagram from the sim network", "exception": exc, "transport": self}
            )

    def unreachable(self, dst: tuple[str, int]) -> None:
        if self._closing:
            return
        exc = ConnectionRefusedError(
            errno.ECONNREFUSED, f"udp {self.host.name} -> {dst[0]}:{dst[1]}: port unreachable"
        )
        try:
            self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as err:
            self.net.loop.call_exception_handler(
                {"message": "protocol.error_received() failed", "exception": err, "transport": self}
            )

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.net.unbind_datagram(self)
        self.net.loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        return None

    def __repr__(self) -> str:
        return f"<sim udp {self.host.name} {self.host.address}:{self.port}{' closed' if self._closing else ''}>"


@functools.lru_cache(maxsize=4096)
def _ipv4(address: str) -> None:
    """Raises ValueError unless `address` is a dotted IPv4 address; remembered, since media sends
    fifty datagrams a second to the same few addresses."""
    ipaddress.IPv4Address(address)


def _check_address(addr: Any) -> tuple[str, int]:
    try:
        address, port = addr
        _ipv4(address)
    except (TypeError, ValueError):
        raise ValueError(
            f"bad destination {addr!r}: expected (IPv4 address, port); resolve names with network.resolve()"
        ) from None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
        raise ValueError(f"bad destination port in {addr!r}")
    return address, port
