"""TCP connections on the sim network: two `asyncio.Transport` ends joined by two pipes.

The ends are real asyncio transports (`_start_tls_compatible`, set_protocol, pause/resume
reading, write_eof, buffer limits) so `loop.start_tls()` upgrades them exactly as it upgrades a
socket: the TLS handshake, certificate checks and record encryption are the real ones.

What the model keeps from TCP, and what it simplifies:
- Bytes arrive in order and exactly once per direction (`last_arrival` never goes backwards,
  and the network's delivery queue is FIFO for equal times).
- A transmission attempt is lost when a link on the path is blackholed, or at random with the
  path's loss probability. Lost bytes are retransmitted after an RTO that starts at
  0.2 s + RTT (Linux's 200 ms minimum) and doubles up to 120 s (RFC 6298 §5.5); everything written
  meanwhile waits behind them (head-of-line blocking). After 15 retransmissions (Linux
  tcp_retries2, ~925 s at the minimum RTO) the sender gives up: connection_lost(TimeoutError).
  Simplification: bytes waiting together are retransmitted as one unit (one loss draw per
  attempt, not per MSS segment).
- Closing sends FIN after the data still in flight; the peer's protocol gets eof_received()
  and, unless it asks to stay half-open, closes too. Data reaching an end that is already
  closed is answered by RST: the sender sees ConnectionResetError (RFC 793 §3.4 reset generation).
- A link set down resets every connection through it at once: both ends see
  connection_lost(ConnectionResetError) naming the link.
"""

from __future__ import annotations

import asyncio
import errno
from collections import deque
from typing import TYPE_CHECKING, Any

from simulator.net.base import Host
from simulator.net.topology import BLACKHOLE, DOWN, Path

if TYPE_CHECKING:
    from simulator.net.sim import SimNetwork

MIN_RTO = 0.2  # Linux TCP_RTO_MIN
MAX_RTO = 120.0  # Linux TCP_RTO_MAX
MAX_RETRANSMISSIONS = 15  # Linux net.ipv4.tcp_retries2
_EOF = object()


class _Pipe:
    """One direction of a connection: bytes the sender wrote, on their way to the receiver."""

    def __init__(self, conn: StreamPair, sender: StreamEnd, receiver: StreamEnd) -> None:
        self.conn = conn
        self.sender = sender
        self.receiver = receiver
        self.unsent = bytearray()  # written, not yet transmitted successfully
        self.fin_pending = False  # FIN follows `unsent`
        self.in_flight = 0  # bytes transmitted, not yet arrived
        self.last_arrival = 0.0
        self.retry: asyncio.TimerHandle | None = None
        self.rto = 0.0
        self.retransmissions = 0
        self.dead = False

    def send(self, data: bytes) -> None:
        self.unsent += data
        if self.retry is None:
            self.transmit()

    def send_fin(self) -> None:
        self.fin_pending = True
        if self.retry is None:
            self.transmit()

    def transmit(self) -> None:
        self.retry = None
        if self.dead or (not self.unsent and not self.fin_pending):
            return
        conn = self.conn
        net = conn.net
        path = conn.path
        rng = net.rng
        if path.first(BLACKHOLE) is not None or path.lost(rng):
            self._lost()
            return
        arrival = net.loop.time() + path.delay(rng)
        if arrival < self.last_arrival:
            arrival = self.last_arrival
        self.last_arrival = arrival
        if self.unsent:
            data = bytes(self.unsent)
            self.unsent.clear()
            self.in_flight += len(data)
            net.at(arrival, self._arrive, data)
        if self.fin_pending:
            self.fin_pending = False
            net.at(arrival, self._arrive, _EOF)
        self.rto = 0.0
        self.retransmissions = 0

    def _lost(self) -> None:
        net = self.conn.net
        self.rto = MIN_RTO + self.conn.path.base_rtt() if self.rto == 0.0 else min(self.rto * 2, MAX_RTO)
        if self.retransmissions >= MAX_RETRANSMISSIONS:
            # The last retransmission went unanswered; its RTO expiring ends the connection.
            self.retry = net.loop.call_later(self.rto, self._give_up)
            return
        self.retransmissions += 1
        net.log.info(
                     "net.retransmit",
                     conn=self.conn.id,
                     host=self.sender.host.name,
                     # No byte count: TLS record sizes vary run to run (ECDSA signatures), the log must not.
                     attempt=self.retransmissions,
                     rto=round(self.rto, 6),
                     )
        self.retry = net.loop.call_later(self.rto, self.transmit)

    def _give_up(self) -> None:
        self.retry = None
        self.dead = True
        culprit = _culprit(self.conn.path)
        self.conn.net.log.info(
                               "net.timeout",
                               conn=self.conn.id,
                               host=self.sender.host.name,
                               reason="retransmissions exhausted",
                               retransmissions=self.retransmissions,
                               link=culprit,
                               )
        self.sender.lose(
            TimeoutError(
                errno.ETIMEDOUT,
                f"{self.conn.describe(self.sender)}: peer unreachable, {self.retransmissions} "
                f"retransmissions unanswered (link {culprit})",
            )
        )

    def _arrive(self, data: Any) -> None:
        if data is not _EOF:
            self.in_flight -= len(data)
        if self.conn.reset_done:
            return
        receiver = self.receiver
        if receiver.state != OPEN:
            if data is not _EOF:
                # RFC 793 §3.4: a segment for a connection that no longer exists draws a RST.
                self.conn.net.log.info("net.reset", conn=self.conn.id, host=self.sender.host.name, reason="data to closed peer")
                self.conn.send_rst(towards=self.sender, reason=f"{receiver.host.name} had closed the connection")
            return
        receiver.receive(data)
        self.sender.check_write_buffer()

    def stop(self) -> None:
        self.dead = True
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        self.unsent.clear()


def _culprit(path: Path) -> str | None:
    link = path.first(DOWN) or path.first(BLACKHOLE)
    if link is not None:
        return link.name
    lossy = path.lossy()
    return lossy.name if lossy else None


OPEN, CLOSING, CLOSED = "open", "closing", "closed"


class StreamEnd(asyncio.Transport):
    """One end of a sim TCP connection, as the protocol above it sees it."""

    # loop.start_tls() refuses transports without this flag (asyncio/base_events.py).
    _start_tls_compatible = True

    def __init__(self, conn: StreamPair, host: Host, sockname: tuple[str, int], peername: tuple[str, int]) -> None:
        super().__init__(extra={"sockname": sockname, "peername": peername, "socket": None, "network": "sim"})
        self.conn = conn
        self.host = host
        self.state = OPEN
        self.out: _Pipe  # set by StreamPair
        self.peer: StreamEnd
        self._protocol: asyncio.BaseProtocol | None = None
        self._paused = False
        self._backlog: deque[Any] = deque()
        self._backlog_bytes = 0
        self._eof_written = False
        self._writing_paused = False
        self._high = 64 * 1024
        self._low = 16 * 1024

    # -- asyncio.BaseTransport -------------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "conn":
            return self.conn.id
        if name == "links":
            return self.conn.path.names
        return super().get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def is_closing(self) -> bool:
        return self.state != OPEN

    def close(self) -> None:
        """Graceful close: FIN after the bytes still in flight; connection_lost(None) soon."""
        self._shut("net.close", None)

    def abort(self) -> None:
        """Close now, as asyncio does: the protocol's connection_lost(None) comes next turn and
        our buffer is gone, but, as with a closed socket, bytes already handed to the network
        still go out followed by FIN, unless unread data was waiting here: then the peer gets
        RST (what Linux does when a socket is closed with unread data, RFC 2525 §2.17)."""
        self._force_close(None)

    def _force_close(self, exc: BaseException | None) -> None:
        # sslproto calls this on fatal TLS errors; its `exc` reaches our protocol's connection_lost.
        self._shut("net.abort", exc)

    def _shut(self, event: str, exc: BaseException | None) -> None:
        if self.state == CLOSED:
            return
        if self.state == OPEN:
            self.state = CLOSING
            self.conn.net.log.info(event, conn=self.conn.id, host=self.host.name)
            if self._backlog_bytes:
                self.out.stop()
                self.conn.send_rst(towards=self.peer, reason=f"closed by {self.host.name} with unread data")
            elif not self._eof_written:
                self._eof_written = True
                self.out.send_fin()
        self.conn.net.loop.call_soon(self._finish, exc)

    # -- reading ---------------------------------------------------------------------------
    def is_reading(self) -> bool:
        return self.state == OPEN and not self._paused

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        if not self._paused:
            return
        self._paused = False
        if self._backlog:
            self.conn.net.at(self.conn.net.loop.time(), self._drain_backlog)

    def receive(self, data: Any) -> None:
        if self._paused or self._backlog:
            self._backlog.append(data)
            if data is not _EOF:
                self._backlog_bytes += len(data)
            return
        self._deliver(data)

    def _drain_backlog(self) -> None:
        while self._backlog and not self._paused and self.state != CLOSED:
            data = self._backlog.popleft()
            if data is not _EOF:
                self._backlog_bytes -= len(data)
            self._deliver(data)
        self.peer.check_write_buffer()

    def _deliver(self, data: Any) -> None:
        protocol = self._protocol
        if protocol is None or self.state == CLOSED:
            return
        try:
            if data is _EOF:
                self.conn.net.log.info("net.eof", conn=self.conn.id, host=self.host.name)
                keep_open = protocol.eof_received()  # type: ignore[attr-defined]
                if not keep_open:
                    self.close()
            elif isinstance(protocol, asyncio.BufferedProtocol):
                asyncio.protocols._feed_data_to_buffered_proto(protocol, data)  # type: ignore[attr-defined]
            else:
                protocol.data_received(data)  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.conn.net.loop.call_exception_handler(
                {"message": "protocol failed on data from the sim network", "exception": exc, "transport": self}
            )
            self.abort()

    # -- writing ---------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if type(data) is not bytes:  # the usual case (sslproto writes bytes) skips the checks
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
            data = bytes(data)
        if self._eof_written and self.state == OPEN:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self.state != OPEN or not data:
            return
        self.out.send(data)
        self.check_write_buffer()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self.state != OPEN or self._eof_written:
            return
        self._eof_written = True
        self.out.send_fin()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return len(self.out.unsent) + self.out.in_flight + self.peer._backlog_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self.check_write_buffer()

    def check_write_buffer(self) -> None:
        """Flow control towards our protocol (asyncio's pause_writing/resume_writing)."""
        if self.state == CLOSED or self._protocol is None:
            return
        out = self.out
        size = len(out.unsent) + out.in_flight + self.peer._backlog_bytes
        if not self._writing_paused and size <= self._high:
            return  # nothing to tell the protocol (every write and arrival comes here)
        try:
            if not self._writing_paused and size > self._high:
                self._writing_paused = True
                self._protocol.pause_writing()
            elif self._writing_paused and size <= self._low:
                self._writing_paused = False
                self._protocol.resume_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.conn.net.loop.call_exception_handler(
                {"message": "protocol.pause_writing()/resume_writing() failed", "exception": exc, "transport": self}
            )

    # -- end of life -----------------------------------------------------------------------
    def lose(self, exc: BaseException | None) -> None:
        """The network ended this end (reset, timeout): connection_lost(exc) on the next turn."""
        if self.state == CLOSED:
            return
        self.state = CLOSING
        self.out.stop()
        self.conn.net.loop.call_soon(self._finish, exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self._backlog.clear()
        self._backlog_bytes = 0
        self.conn.end_closed(self)
        protocol = self._protocol
        if protocol is not None:
            try:
                protocol.connection_lost(exc)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as err:
                self.conn.net.loop.call_exception_handler(
                    {"message": "protocol.connection_lost() failed", "exception": err, "transport": self}
                )

    def __repr__(self) -> str:
        return f"<sim stream {self.conn.id} {self.conn.describe(self)} {self.state}>"


class StreamPair:
    """One sim TCP connection: its id, its path, and the pair of joined ends (client first)."""

    def __init__(
        self,
        net: SimNetwork,
        conn_id: str,
        path: Path,
        client: tuple[Host, tuple[str, int]],
        server: tuple[Host, tuple[str, int]],
    ) -> None:
        self.net = net
        self.id = conn_id
        self.path = path
        self.reset_done = False
        self.client = StreamEnd(self, client[0], client[1], server[1])
        self.server = StreamEnd(self, server[0], server[1], client[1])
        self.client.peer, self.server.peer = self.server, self.client
        self.client.out = _Pipe(self, self.client, self.server)
        self.server.out = _Pipe(self, self.server, self.client)
        self._open_ends = 2

    def describe(self, end: StreamEnd) -> str:
        local, remote = end.get_extra_info("sockname"), end.get_extra_info("peername")
        return f"connection {self.id} {end.host.name} {local[0]}:{local[1]} -> {end.peer.host.name} {remote[0]}:{remote[1]}"

    def send_rst(self, *, towards: StreamEnd, reason: str) -> None:
        """A RST travels like any segment, but is never retransmitted (lost if blackholed)."""
        if towards.state == CLOSED or self.path.first(BLACKHOLE) is not None or self.path.lost(self.net.rng):
            return
        when = self.net.loop.time() + self.path.delay(self.net.rng)
        exc = ConnectionResetError(errno.ECONNRESET, f"{self.describe(towards)} reset by peer: {reason}")
        self.net.at(when, towards.lose, exc)

    def reset(self, link_name: str) -> None:
        """Link cut: both ends lose the connection now, with ConnectionResetError naming the link."""
        if self.reset_done:
            return
        self.reset_done = True
        for end in (self.client, self.server):
            if end.state == CLOSED:
                continue
            self.net.log.info("net.reset", conn=self.id, host=end.host.name, reason="link down", link=link_name)
            end.lose(ConnectionResetError(errno.ECONNRESET, f"{self.describe(end)} reset: link {link_name} down"))

    def end_closed(self, end: StreamEnd) -> None:
        self._open_ends -= 1
        if self._open_ends == 0:
            self.client.out.stop()
            self.server.out.stop()
            self.net.forget_connection(self)
