"""The real network's links: a TCP relay and UDP shaping of ours, driven by link state.

Linux's netem is often missing (and `tc` needs privileges), and loopback is not ours to cut,
so RealNetwork realizes links itself, in the process, with the same `Link` objects and the same
states as the sim network (topology.py): up, down, blackhole, latency, jitter, loss.

What is relayed
- TCP between hosts whose path crosses at least one link. `connect_stream` binds the caller's
  socket to its host's address (SO_REUSEADDR), connects it to the relay's listener on the
  network's `relay_address` (the first address of its block), and the relay opens the onward
  connection to the destination from a socket bound to the *same* address and port. So the far
  side's peername is the caller's own `sockname`, as on sim (Via received/rport, pcap flows);
  RealNetwork sets the caller's `peername` to the destination it asked for before the caller's
  protocol sees the transport.
  The relay copies bytes both ways through a `_Pipe` per direction that applies the path's state:
  up = forwarded after latency + jitter, in order; a chunk lost to `loss` waits one RTO
  (0.2 s + RTT, doubling) more, like sim's retransmission; blackhole = bytes held (sim keeps
  retransmitting them) and delivered when the link comes back up; down = both relay sockets
  closed with RST (SO_LINGER 0), and RealNetwork.cut_ends gives the caller's and the far side's
  protocols connection_lost(ConnectionResetError naming the link) at once, as sim does.
- The connect itself follows sim's handshake: a down link refuses at once; a blackholed (or
  lossy) path drops the SYN and retries after 1, 2, 4 ... s (Linux tcp_syn_retries=6), so the
  caller's own timeout fires first and a link that comes back lets the next retry through;
  nothing listening refuses after one round trip. The caller gets its transport only once the
  onward connection exists.
- UDP is not forwarded through another socket: every datagram endpoint RealNetwork hands out is a
  `ShapedDatagramTransport` whose `sendto` applies the path's state before the real socket sends
  (drop with a `net.drop` event, or send after latency + jitter). The datagram leaves from the
  sender's own address and port, so replies, rport and connected sockets work unchanged, and each
  reply is shaped by the replier's own endpoint on its way back.
- Hosts in the same site (no link on the path) talk directly, untouched.

Differences from sim that a user can observe
- A RST from one end is passed on at once, not after the path's latency, and the other end's
  ConnectionResetError is the kernel's ("Connection reset by peer"). (A cut's reset names the
  link, as on sim: RealNetwork ends the caller's and the far side's transports itself.)
- Bytes held by a blackhole wait forever: no give-up after tcp_retries2 (~15 min). A stream
  that exhausts its retransmissions to `loss` is reset on both ends (sim: the sender alone gets
  TimeoutError); both are `net.timeout` events.
- Loss and delay apply per chunk the relay reads, not per segment (sim: per transmission of
  everything waiting); the handshake's SYN and SYN-ACK are emulated as on sim.
- Programs outside RealNetwork (SIPp, Kamailio) reach lab hosts directly: no link touches them.
- A connect that fails still uses up a connection id (`c<n>`); sim numbers only established ones.
- Timing is wall-clock (or paced) and real scheduling jitters it, so runs are not byte-identical.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from simulator.net.base import DATAGRAM, Host
from simulator.net.sim_stream import MAX_RETRANSMISSIONS, MAX_RTO, MIN_RTO
from simulator.net.topology import BLACKHOLE, DOWN, Path

if TYPE_CHECKING:
    from simulator.net.real import RealNetwork

SYN_RETRIES = 6  # Linux net.ipv4.tcp_syn_retries, as on sim
INITIAL_RTO = 1.0  # RFC 6298 §2.1
_EOF = object()


class Refused(Exception):
    """The relay refused a connect (link down, nothing listening); RealNetwork turns it into
    ConnectionRefusedError with an event."""

    def __init__(self, reason: str, link: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.link = reason, link


class SynTimeout(TimeoutError):
    """Every SYN retry was lost (sim's 127 s network timeout), as opposed to the caller's timeout."""


def _reset(transport: asyncio.BaseTransport | None) -> None:
    """Close with RST: SO_LINGER on, timeout 0 (RFC 793 abort)."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class StreamRelay:
    """One per RealNetwork: a listener on the network's relay address and the bridged connections through it."""

    def __init__(self, net: RealNetwork) -> None:
        self.net = net
        self._server: asyncio.AbstractServer | None = None
        self._pending: dict[tuple[str, int], _Bridge] = {}
        self.bridges: set[_Bridge] = set()

    async def _address(self) -> tuple[str, int]:
        if self._server is None:
            self._server = await self.net.loop.create_server(
                lambda: _End(self, None), self.net.relay_address, 0, family=socket.AF_INET
            )
        return self._server.sockets[0].getsockname()[:2]

    async def connect(self, sock: socket.socket, conn_id: str, src: Host, dst: Host, port: int, path: Path) -> None:
        """Carry the caller's socket `sock` (bound to `src`'s address with SO_REUSEADDR, so the
        onward socket can share its port) to `dst`:`port` through the relay: returns once the
        onward connection exists. Raises Refused or SynTimeout; the caller's own timeout
        cancels it cleanly. The caller then makes its transport from `sock`."""
        relay_address = await self._address()
        bridge = _Bridge(self, conn_id, src, dst, port, path, sock.getsockname())
        self._pending[bridge.source] = bridge
        try:
            await self.net.loop.sock_connect(sock, relay_address)
            await bridge.open()
        except BaseException:
            self._pending.pop(bridge.source, None)
            bridge.close()
            raise

    def accepted(self, end: _End) -> _Bridge | None:
        peer = end.transport.get_extra_info("peername") if end.transport else None
        bridge = self._pending.pop(tuple(peer[:2]), None) if peer else None
        if bridge is not None:
            bridge.attach_client(end)
        return bridge

    def link_changed(self) -> None:
        """A link came back (or changed): held bytes go on if their path now allows."""
        for bridge in list(self.bridges):
            bridge.release()

    def crossing(self, link_name: str) -> list[_Bridge]:
        return [b for b in self.bridges if link_name in b.path.names and b.server is not None]

    async def close(self) -> None:
        for bridge in list(self.bridges):
            bridge.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class _Bridge:
    """One relayed TCP connection: the relay's end of the caller's socket (`client`) and the
    onward socket to the destination (`server`)."""

    def __init__(
        self, relay: StreamRelay, conn_id: str, src: Host, dst: Host, port: int, path: Path, source: tuple[str, int]
    ) -> None:
        self.relay, self.net = relay, relay.net
        self.id, self.src, self.dst, self.port, self.path = conn_id, src, dst, port, path
        self.source = (source[0], source[1])
        self.client: _End | None = None
        self.server: _End | None = None
        self.client_accepted: asyncio.Future[None] = self.net.loop.create_future()
        self.reset_done = False
        self.eofs = 0
        relay.bridges.add(self)

    def attach_client(self, end: _End) -> None:
        self.client = end
        if not self.client_accepted.done():
            self.client_accepted.set_result(None)

    async def open(self) -> None:
        """Sim's handshake over the path, then the real onward connect."""
        net, path = self.net, self.path
        await self.client_accepted
        for attempt in range(SYN_RETRIES + 1):
            down = path.first(DOWN)
            if down is not None:
                raise Refused(f"link {down.name} down", down.name)
            if path.first(BLACKHOLE) is None and not path.lost(net.rng):
                break
            await asyncio.sleep(INITIAL_RTO * 2**attempt)  # the SYN's RTO
        else:
            culprit = path.first(BLACKHOLE)
            raise SynTimeout(
                errno.ETIMEDOUT,
                f"connect {self.src.name} -> {self.dst.name}:{self.port} timed out: {SYN_RETRIES} SYN retries "
                f"unanswered ({f'link {culprit.name} blackholed' if culprit else 'SYNs lost'})",
            )
        await asyncio.sleep(path.delay(net.rng))  # the SYN crossing
        try:
            out = await self._connect_onward(self.source)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                raise
            # The caller's port cannot reach dst now (say a TIME_WAIT from an earlier flow
            # with the same four-tuple): keep at least the caller's address.
            out = await self._connect_onward((self.source[0], 0))
        await net.loop.create_connection(lambda: _End(self.relay, self), sock=out)
        await asyncio.sleep(path.delay(net.rng))  # the SYN-ACK coming back
        if self.reset_done:
            raise Refused("connection reset during handshake")
        down = path.first(DOWN)
        if down is not None:  # cut while the onward connect was under way, before a cut could reset it
            raise Refused(f"link {down.name} down", down.name)

    async def _connect_onward(self, local: tuple[str, int]) -> socket.socket:
        out = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            out.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            out.bind(local)
            out.setblocking(False)
            await self.net.loop.sock_connect(out, (self.dst.address, self.port))
        except ConnectionRefusedError:
            out.close()
            await asyncio.sleep(self.path.delay(self.net.rng))  # the RST coming back
            raise Refused(f"nothing listening on {self.dst.name}:{self.port}") from None
        except BaseException:
            out.close()
            raise
        return out

    def ends(self) -> list[tuple[_End, Host]]:
        return [(end, host) for end, host in ((self.client, self.src), (self.server, self.dst)) if end is not None]

    def other(self, end: _End) -> _End | None:
        return self.server if end is self.client else self.client

    def host_of(self, end: _End) -> Host:
        return self.src if end is self.client else self.dst

    def release(self) -> None:
        for end, _host in self.ends():
            end.pipe.release()

    def reset(self, link_name: str | None, reason: str) -> None:
        """RST both ends (link down, or one end was reset and the other must hear of it)."""
        if self.reset_done:
            return
        self.reset_done = True
        for end, host in self.ends():
            if end.transport is not None and not end.transport.is_closing():
                fields = {"link": link_name} if link_name else {}
                self.net.log.info("net.reset", conn=self.id, host=host.name, reason=reason, **fields)
        if link_name is not None:  # before the RSTs, so the ends hear which link it was
            self.net.cut_ends(self.id, link_name)
        for end, _host in self.ends():
            end.pipe.stop()
            _reset(end.transport)
        self.forget()

    def give_up(self, end: _End, retransmissions: int) -> None:
        lossy = self.path.lossy()
        self.net.log.info("net.timeout", conn=self.id, host=self.host_of(end).name,
                          reason="retransmissions exhausted", retransmissions=retransmissions,
                          link=lossy.name if lossy else None)
        self.reset(None, "retransmissions exhausted")

    def eof_delivered(self) -> None:
        self.eofs += 1
        if self.eofs == 2:  # both directions finished: close both relay sockets
            self.close()

    def end_lost(self, end: _End, exc: BaseException | None) -> None:
        if exc is not None:  # that side was reset: so is the other
            self.reset(None, f"reset by {self.host_of(end).name}")
            return
        other = self.other(end)
        if other is not None and other.transport is not None and not other.transport.is_closing():
            other.pipe.stop()
            other.transport.close()
        self.forget()

    def close(self) -> None:
        for end, _host in self.ends():
            end.pipe.stop()
            if end.transport is not None:
                end.transport.close()
        self.forget()

    def forget(self) -> None:
        self.relay.bridges.discard(self)
        self.net.relayed_ends.pop(self.id, None)


class _End(asyncio.Protocol):
    """The relay's side of one socket; what it reads goes through `pipe` to the other end."""

    def __init__(self, relay: StreamRelay, bridge: _Bridge | None) -> None:
        self.relay = relay
        self.bridge = bridge
        self.transport: asyncio.Transport | None = None
        self.pipe: _Pipe

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.bridge is None:  # accepted from a caller: which connect is it?
            self.bridge = self.relay.accepted(self)
            if self.bridge is None:
                transport.abort()  # not one of ours
                return
        else:
            self.bridge.server = self
        self.pipe = _Pipe(self.bridge, self)

    def data_received(self, data: bytes) -> None:
        self.pipe.feed(data)

    def eof_received(self) -> bool:
        self.pipe.feed(_EOF)
        return True  # half-open until the other direction ends too

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.bridge is not None and hasattr(self, "pipe"):
            self.pipe.stop()
            self.bridge.end_lost(self, exc)

    # Back-pressure: a slow receiver pauses reading from its sender.
    def pause_writing(self) -> None:
        other = self.bridge.other(self) if self.bridge else None
        if other is not None and other.transport is not None:
            other.transport.pause_reading()

    def resume_writing(self) -> None:
        other = self.bridge.other(self) if self.bridge else None
        if other is not None and other.transport is not None and not other.transport.is_closing():
            other.transport.resume_reading()


class _Pipe:
    """Bytes read by `source`, on their way to the bridge's other end, shaped by the path."""

    def __init__(self, bridge: _Bridge, source: _End) -> None:
        self.bridge, self.source = bridge, source
        self.net = bridge.net
        self.held: list[Any] = []  # waiting for a blackhole to lift
        self.queue: deque[tuple[float, Any]] = deque()  # (due, chunk), due never decreasing
        self.timer: asyncio.TimerHandle | None = None
        self.stopped = False

    def feed(self, data: Any) -> None:
        if self.stopped:
            return
        if self.held or self.bridge.path.first(BLACKHOLE) is not None:
            self.held.append(data)
            return
        self._send(data)

    def release(self) -> None:
        held, self.held = self.held, []
        for data in held:
            self.feed(data)

    def _send(self, data: Any) -> None:
        net, path = self.net, self.bridge.path
        delay = path.delay(net.rng)
        rto, attempt = MIN_RTO + path.base_rtt(), 0
        while path.lost(net.rng):  # lost: sent again one RTO later (sim_stream's model)
            if attempt == MAX_RETRANSMISSIONS:  # Linux tcp_retries2: the last RTO ends it
                self.stop()
                net.loop.call_later(delay + rto, self.bridge.give_up, self.source, attempt)
                return
            attempt += 1
            net.log.info("net.retransmit", conn=self.bridge.id, host=self.bridge.host_of(self.source).name,
                         attempt=attempt, rto=round(rto, 6))
            delay += rto
            rto = min(rto * 2, MAX_RTO)
        if delay <= 0 and not self.queue:
            self._deliver(data)
            return
        now = net.loop.time()
        due = max(now + delay, self.queue[-1][0] if self.queue else now)
        self.queue.append((due, data))
        if self.timer is None:
            self.timer = net.loop.call_at(due, self._drain)

    def _drain(self) -> None:
        self.timer = None
        now = self.net.loop.time()
        while self.queue and self.queue[0][0] <= now and not self.stopped:
            self._deliver(self.queue.popleft()[1])
        if self.queue and not self.stopped:
            self.timer = self.net.loop.call_at(self.queue[0][0], self._drain)

    def _deliver(self, data: Any) -> None:
        target = self.bridge.other(self.source)
        if target is None or target.transport is None or target.transport.is_closing():
            return
        if data is _EOF:
            try:
                target.transport.write_eof()
            except OSError:  # the far side was reset meanwhile: there is nothing left to half-close
                target.transport.abort()
                return
            self.bridge.eof_delivered()
        else:
            target.transport.write(data)

    def stop(self) -> None:
        self.stopped = True
        self.held.clear()
        self.queue.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


# -- UDP ------------------------------------------------------------------------------------


class ShapedDatagramTransport(asyncio.DatagramTransport):
    """A real UDP endpoint whose sends cross links: `sendto` applies the path's state first."""

    def __init__(self, net: RealNetwork, host: Host, transport: asyncio.DatagramTransport,
                 shim: DatagramShim) -> None:
        super().__init__()
        self._net, self._host, self._transport, self._shim = net, host, transport, shim

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        dst = addr if addr is not None else self._transport.get_extra_info("peername")
        target = None
        if isinstance(dst, tuple | list) and len(dst) >= 2 and isinstance(dst[0], str):
            target = self._net.hosts.by_address.get(dst[0])
        if target is None or not isinstance(data, bytes | bytearray | memoryview):
            self._transport.sendto(data, addr)  # not a lab host, or bad input: the socket decides
            return
        path = self._net._path(self._host, target)
        if not path.links:
            self._transport.sendto(data, addr)
            return
        culprit = path.first(DOWN) or path.first(BLACKHOLE)
        if culprit is not None:
            self._drop(dst, len(data), f"link {culprit.state}", culprit.name)
            return
        if path.lost(self._net.rng):
            self._drop(dst, len(data), "loss", path.lossy().name)  # type: ignore[union-attr]
            return
        delay = path.delay(self._net.rng)
        if delay <= 0:
            self._transport.sendto(data, addr)
        else:
            self._net.loop.call_later(delay, self._send_late, bytes(data), addr)

    def _send_late(self, data: bytes, addr: Any) -> None:
        if not self._transport.is_closing():
            self._transport.sendto(data, addr)

    def _drop(self, dst: Any, size: int, reason: str, link: str) -> None:
        src = self._transport.get_extra_info("sockname")
        self._net.log.info("net.drop", transport=DATAGRAM, src=f"{src[0]}:{src[1]}", dst=f"{dst[0]}:{dst[1]}",
                           bytes=size, reason=reason, link=link)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._shim.app = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._shim.app

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def __repr__(self) -> str:
        return f"<shaped {self._transport!r} of {self._host.name}>"


class DatagramShim(asyncio.DatagramProtocol):
    """Sits between asyncio's UDP transport and the caller's protocol, so the protocol is handed
    the ShapedDatagramTransport (its sends must cross the links) and still hears everything."""

    def __init__(self, net: RealNetwork, host: Host, app: asyncio.DatagramProtocol) -> None:
        self.net, self.host, self.app = net, host, app
        self.shaped: ShapedDatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.shaped = ShapedDatagramTransport(self.net, self.host, transport, self)  # type: ignore[arg-type]
        self.app.connection_made(self.shaped)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.app.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.app.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.app.connection_lost(exc)
