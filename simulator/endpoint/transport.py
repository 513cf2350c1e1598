"""The endpoint's two asyncio protocols: one per stream connection (TCP, or TLS after the
upgrade) and one per UDP socket. They frame and parse bytes and hand messages to the
endpoint through its `TransportUser` interface; they never decide anything about SIP.

Streams are framed by `StreamParser` (Content-Length, RFC 3261 §18.3). A double-CRLF ping is
answered with a CRLF pong (RFC 5626 §3.5.1). A message that frames but does not parse goes to
the endpoint with its octets (so a request can still be answered) and the stream goes on; a
framing error is answered from the head of the message when there is one (513 for a message
over the limit, RFC 3261 §21.5.14) and then the connection is closed, because nothing after
it can be trusted to start a message. A bad message never ends the connection or the datagram
callback with an exception: whatever goes wrong while handling one is a `sip.internal_error`
event and the next message is read.

Limits (`TransportLimits`, one per endpoint), so that one peer cannot hold the memory of many:

- `max_message_octets` (default 64 KiB): the most one stream may buffer for one incomplete
  message, head and body. SIP messages are small — RFC 3261 §18.1.1 sends anything over
  1300 octets by TCP, and an INVITE with SDP is 1-4 KB — so 64 KiB leaves room for large
  multipart bodies and keeps a peer that never finishes a message at a fixed cost. A longer
  one is answered 513 Message Too Large and the connection closed.
- `max_head_octets` (default 16 KiB): the most a head may take before its empty line; a
  head is a few hundred octets to 2 KB (Teams' longest, with Record-Route and
  X-MS-* headers, stays well under 8 KB).
- `max_connections_per_address` (default 64): connections one remote address may hold to
  this endpoint at once (TCP and TLS together). An SBC keeps one or a few connections to each
  Teams proxy; a Teams client one; 64 leaves room for NAT (many clients behind one address)
  while one address opening thousands is refused at accept, before any TLS handshake.
- `udp_receive_buffer_octets` (default None: the kernel's default, about 208 KiB on Linux):
  the receive buffer asked for each UDP socket the endpoint listens on. Over UDP a burst the
  process cannot read at once waits in that buffer, and what does not fit is dropped by the
  kernel unseen (RcvbufErrors): a trunk carrying hundreds of calls a second needs megabytes.
  The kernel grants at most its `net.core.rmem_max` (Linux doubles what it grants, for its own
  bookkeeping); the endpoint reads back what it got and says so (`sip.udp.buffer`).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from typing import Any, Protocol

from simulator.endpoint.types import Peer
from simulator.net.tls import PeerInfo
from simulator.sip import Request, Response, SipParseError, StreamParser, parse_message

#: Linux's SO_MEMINFO (asm-generic/socket.h; Python's socket module does not name it): nine
#: 32-bit counters of a socket's memory, the first the octets waiting in its receive buffer
SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)
MEMINFO_OCTETS = 9 * 4
PING = b"\r\n\r\n"
PONG = b"\r\n"


@dataclass(frozen=True)
class TransportLimits:
    """What one peer may hold of an endpoint; the module docstring gives the reasons."""

    max_message_octets: int = 64 * 1024
    max_head_octets: int = 16 * 1024
    max_connections_per_address: int = 64
    udp_receive_buffer_octets: int | None = None


class TransportUser(Protocol):
    """What the transport asks of the endpoint above it, and all it asks.

    `connection_opened(conn)`: a connection is up (after TLS); False refuses it (over the
    limit of its remote address) and the transport closes it. `connection_closed(conn, reason)`: it ended.
    `message_received(message, peer, socket)`: one parsed message (`socket` for UDP, else
    None). `message_unparseable(error, peer, octets, fatal=..., socket=...)`: bytes that are
    no SIP message; `octets` are what can be answered from (None: nothing), `fatal` that the
    stream is being closed. `internal_error(where, error)`: handling one message failed.
    `datagram_error(exc)`: ICMP for an earlier datagram. `new_connection_id()`: an id for a
    connection the network did not name."""

    limits: TransportLimits

    def connection_opened(self, conn: Connection) -> bool: ...
    def connection_closed(self, conn: Connection, reason: str) -> None: ...
    def message_received(self, message: Request | Response, peer: Peer, socket: UdpSocket | None) -> None: ...
    def message_unparseable(self, error: SipParseError, peer: Peer, octets: bytes | None, *, fatal: bool,
                            socket: UdpSocket | None = None) -> None: ...
    def internal_error(self, where: str, error: Exception) -> None: ...
    def datagram_error(self, exc: Exception) -> None: ...
    def new_connection_id(self) -> str: ...


def hostport(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


class Connection(asyncio.Protocol):
    """One SIP stream connection (TCP or TLS), either direction.

    `id` is the network's connection id on sim (`c12`, as in net.* events), else one the endpoint
    assigns; `transport_name` is "tcp" or "tls"; `local`/`remote` are (address, port);
    `tls` is the handshake's PeerInfo; `inbound` is True when the peer opened it. Data that
    arrives before `connection_made` (TLS: start_tls hands the transport over late) waits."""

    def __init__(self, user: TransportUser, transport_name: str, *, inbound: bool) -> None:
        self.user = user
        self.transport_name = transport_name
        self.inbound = inbound
        self.transport: asyncio.Transport | None = None
        self.id = ""
        self.local: tuple[str, int] = ("", 0)
        self.remote: tuple[str, int] = ("", 0)
        self.local_text = self.remote_text = ""
        self.tls: PeerInfo | None = None
        self._peer: Peer | None = None
        self.hop: Any = None  # the endpoint's Hop for messages from this connection (made once)
        self.closed = False
        self.close_reason: str | None = None
        self.opened = False  # the endpoint took it
        self.admitted = False  # counted against the remote address's connection limit
        limits = user.limits
        self._parser: StreamParser | None = StreamParser(max_head_octets=limits.max_head_octets,
                                    max_message_octets=limits.max_message_octets)
        self._early = bytearray()

    def __repr__(self) -> str:
        return f"<SIP {self.transport_name} connection {self.id} {hostport(self.local)} -> {hostport(self.remote)}>"

    @property
    def is_open(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    @property
    def buffered(self) -> int:
        """Octets of an incomplete message held for this connection."""
        return (self._parser.buffered if self._parser is not None else 0) + len(self._early)

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.local = tuple(transport.get_extra_info("sockname")[:2])  # type: ignore[assignment]
        self.remote = tuple(transport.get_extra_info("peername")[:2])  # type: ignore[assignment]
        self.local_text, self.remote_text = hostport(self.local), hostport(self.remote)
        self.id = transport.get_extra_info("conn") or self.user.new_connection_id()
        if not self.user.connection_opened(self):
            self.close("refused: too many connections from this address")
            return
        self.opened = True
        if self._early:
            early = bytes(self._early)
            self._early.clear()
            self.data_received(early)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            self._early += data
            if len(self._early) > self.user.limits.max_message_octets:
                self._early.clear()  # a peer racing the TLS hand-over: no reason to hold more
            return
        parser = self._parser
        if self.closed or parser is None:
            return
        before = parser.keepalives
        chunk = data
        while not self.closed:
            # feed() returns what framed so far; a parse error comes out on its own call, after
            # the good messages before it, so go round until a call yields nothing new.
            try:
                messages = parser.feed(chunk)
            except SipParseError as error:
                if self._unparseable(error):
                    return  # the stream is closed: nothing after a framing error is SIP
                chunk = b""
                continue
            if not messages:
                break
            chunk = b""
            peer = self.peer
            for message in messages:
                try:
                    self.user.message_received(message, peer, None)
                except Exception as exc:  # one bad message must not end the connection
                    self.user.internal_error("message_received", exc)
                if self.closed:
                    return
            if not parser.holds_error:
                break  # feed() stopped at an incomplete message: another call would return []
        if parser.keepalives - before >= 2 and self.is_open:
            self.transport.write(PONG)  # RFC 5626 §3.5.1: a CRLFCRLF ping gets a CRLF pong

    def _unparseable(self, error: SipParseError) -> bool:
        """Report (and answer) a bad message; True when the stream cannot be re-framed and was closed."""
        try:
            self.user.message_unparseable(error, self.peer, error.octets, fatal=error.fatal)
        except Exception as exc:
            self.user.internal_error("message_unparseable", exc)
        if error.fatal:
            self.close(f"framing error: {error.reason}")
        return error.fatal

    def eof_received(self) -> bool | None:
        return None  # close our side too (the peer ended the connection)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.close_reason is None:
            self.close_reason = "closed by peer" if exc is None else f"reset: {exc}"
        self._parser = None  # give back what an incomplete message held (a Hop may outlive us)
        self._early = bytearray()
        if self.opened:
            self.user.connection_closed(self, self.close_reason)

    # -- ours --------------------------------------------------------------------------
    @property
    def peer(self) -> Peer:
        """The Peer every message from this connection comes from (made once, after TLS)."""
        if self._peer is None:
            self._peer = Peer(self.transport_name, self.remote[0], self.remote[1], self, self.tls)
        return self._peer

    def write(self, data: bytes) -> bool:
        if not self.is_open:
            return False
        self.transport.write(data)  # type: ignore[union-attr]
        return True

    def ping(self) -> bool:
        """Send a CRLF keep-alive ping (RFC 5626 §3.5.1); the peer's pong is absorbed."""
        return self.write(PING)

    def close(self, reason: str = "closed") -> None:
        """Close after what is written has gone out (a 513 before the close, say)."""
        if self.close_reason is None:
            self.close_reason = reason
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class UdpSocket(asyncio.DatagramProtocol):
    """The endpoint's UDP socket: every datagram is one message (RFC 3261 §18.3). A datagram of
    CRLFs only is a keep-alive and is ignored; anything else that does not parse goes to the
    endpoint, which answers a request statelessly or drops it with an event. Nothing a
    datagram holds makes this callback raise."""

    def __init__(self, user: TransportUser) -> None:
        self.user = user
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip(b"\r\n"):
            return  # keep-alive
        peer = Peer("udp", addr[0], addr[1])
        try:
            try:
                message = parse_message(data)
            except SipParseError as error:
                self.user.message_unparseable(error, peer, data, fatal=False, socket=self)
                return
            self.user.message_received(message, peer, self)
        except Exception as exc:  # the next datagram is read whatever this one did
            self.user.internal_error("datagram_received", exc)

    def error_received(self, exc: Exception) -> None:
        self.user.datagram_error(exc)

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, address)

    def queued_octets(self) -> int:
        """What waits unread in the kernel's receive buffer of this socket (Linux SO_MEMINFO,
        as the kernel counts it: each datagram with its bookkeeping). 0 where there is no kernel
        socket (the sim network) or the system does not say."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return 0
        try:
            meminfo = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, MEMINFO_OCTETS)
        except OSError:
            return 0
        return int(struct.unpack_from("I", meminfo)[0])  # SK_MEMINFO_RMEM_ALLOC
