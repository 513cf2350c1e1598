"""The endpoint's two asyncio protocols: one per stream connection (TCP, or TLS after the
upgrade) and one per UDP socket. They frame and parse bytes and hand messages to the
endpoint; they never decide anything about SIP.

Streams are framed by `StreamParser` (Content-Length, RFC 3261 §18.3). A double-CRLF ping is
answered with a CRLF pong (RFC 5626 §3.5.1). A message that frames but does not parse goes to
the endpoint with its octets (so a request can still be answered); a framing error closes the
connection, because nothing after it can be trusted to start a message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from simulator.net.tls import PeerInfo
from simulator.sip import SipParseError, StreamParser, parse_message

if TYPE_CHECKING:
    from simulator.endpoint.endpoint import SipEndpoint

PING = b"\r\n\r\n"
PONG = b"\r\n"


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

    def __init__(self, endpoint: SipEndpoint, transport_name: str, *, inbound: bool) -> None:
        self.endpoint = endpoint
        self.transport_name = transport_name
        self.inbound = inbound
        self.transport: asyncio.Transport | None = None
        self.id = ""
        self.local: tuple[str, int] = ("", 0)
        self.remote: tuple[str, int] = ("", 0)
        self.local_text = self.remote_text = ""
        self.tls: PeerInfo | None = None
        self._peer: Any = None
        self.hop: Any = None  # the endpoint's Hop for messages from this connection (made once)
        self.closed = False
        self.close_reason: str | None = None
        self._parser = StreamParser()
        self._early = bytearray()
        self._lost_exc: BaseException | None = None

    def __repr__(self) -> str:
        return f"<SIP {self.transport_name} connection {self.id} {hostport(self.local)} -> {hostport(self.remote)}>"

    @property
    def is_open(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.local = tuple(transport.get_extra_info("sockname")[:2])  # type: ignore[assignment]
        self.remote = tuple(transport.get_extra_info("peername")[:2])  # type: ignore[assignment]
        self.local_text, self.remote_text = hostport(self.local), hostport(self.remote)
        self.id = transport.get_extra_info("conn") or self.endpoint._new_connection_id()
        self.endpoint._connection_opened(self)
        if self._early:
            early = bytes(self._early)
            self._early.clear()
            self.data_received(early)

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            self._early += data
            return
        if self.closed:
            return
        parser = self._parser
        before = parser.keepalives
        chunk = data
        while not self.closed:
            # feed() returns what framed so far; a parse error comes out on its own call, after
            # the good messages before it, so go round until a call yields nothing new.
            try:
                messages = parser.feed(chunk)
            except SipParseError as error:
                if self._parse_error(error):
                    return  # the stream is closed: nothing after a framing error is SIP
                chunk = b""
                continue
            if not messages:
                break
            chunk = b""
            peer = self.peer
            for message in messages:
                self.endpoint._message_received(message, peer, None)
                if self.closed:
                    return
            if not parser.holds_error:
                break  # feed() stopped at an incomplete message: another call would return []
        if parser.keepalives - before >= 2 and self.is_open:
            self.transport.write(PONG)  # RFC 5626 §3.5.1: a CRLFCRLF ping gets a CRLF pong

    def _parse_error(self, error: SipParseError) -> bool:
        """Report a bad message; True when the stream cannot be re-framed and was closed."""
        octets = getattr(error, "octets", None)
        fatal = error.fatal  # the stream cannot be framed any further
        self.endpoint._parse_error(error, self.peer, octets, fatal=fatal)
        if fatal:
            self.close(f"framing error: {error.reason}")
        return fatal

    def eof_received(self) -> bool | None:
        return None  # close our side too (the peer ended the connection)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.close_reason is None:
            self.close_reason = "closed by peer" if exc is None else f"reset: {exc}"
        self._lost_exc = exc
        if self.transport is not None:
            self.endpoint._connection_closed(self, self.close_reason)

    # -- ours --------------------------------------------------------------------------
    @property
    def peer(self) -> Any:
        """The Peer every message from this connection comes from (made once, after TLS)."""
        if self._peer is None:
            from simulator.endpoint.types import Peer

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
        if self.close_reason is None:
            self.close_reason = reason
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class UdpSocket(asyncio.DatagramProtocol):
    """The endpoint's UDP socket: every datagram is one message (RFC 3261 §18.3). A datagram of
    CRLFs only is a keep-alive and is ignored; anything else that does not parse goes to the
    endpoint, which answers a request statelessly or drops it with an event."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        from simulator.endpoint.types import Peer

        if not data.strip(b"\r\n"):
            return  # keep-alive
        peer = Peer("udp", addr[0], addr[1])
        try:
            message = parse_message(data)
        except SipParseError as error:
            self.endpoint._parse_error(error, peer, data, fatal=False, socket=self)
            return
        self.endpoint._message_received(message, peer, self)

    def error_received(self, exc: Exception) -> None:
        self.endpoint._udp_error(exc)

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, address)
