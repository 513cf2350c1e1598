"""A role's media: the RTP ports it hands out, the streams of its calls, and the media it relays.

`RoleMedia` is what a role holds (one per node):
- `port()` — the RTP port for a new SDP (even, RTCP on the next one; the ports of running
  streams and relays are skipped, so concurrent calls never share one);
- `start(call_id, local, remote, offerer=)` — the call was answered (or has early media): an RTP
  session between what our SDP and the peer's SDP say (address, port, codec, ptime,
  direction, rtcp-mux); `update` follows a later SDP (an answer after early media, a re-INVITE);
  `stop(call_id)` ends it and logs its `media.quality`;
- `anchor(call_id)` — a `MediaRelay`: a B2BUA that keeps media on its own address (an SBC; the
  Teams media processor when the gateway has no media bypass [S28]) rewrites each SDP it relays
  to its own address and a port of its own, and forwards RTP and RTCP between the two legs.

Only G.711 carries RTP in the lab (the codecs the lab's clients and carriers offer); a call
that agreed on another codec gets no stream, and `media.no_path` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from simulator.media.quality import StreamQuality
from simulator.media.rtp import G711_PAYLOAD_TYPES, is_rtcp, ptime_ms
from simulator.media.stream import MediaStream, StreamSpec
from simulator.net.base import Network
from simulator.sip.sdp import SdpError, SessionDescription, common_codec

NO_ADDRESS = ("0.0.0.0", "::")  # RFC 3264 §8.4 (old style hold) / RFC 4566: nobody to send to
PORT_SPAN = 2000  # ports a role cycles through, two at a time (RTP, RTCP)


def _peer(remote: SessionDescription) -> tuple[str, int] | None:
    """Where the peer's SDP says to send its audio; None for no address (0.0.0.0) or port 0."""
    audio = remote.audio
    connection = remote.connection_of(audio) if audio is not None else None
    if audio is None or connection is None or connection.address in NO_ADDRESS or audio.port == 0:
        return None
    return connection.address, audio.port


def _we_send(local: SessionDescription | None, remote: SessionDescription) -> bool:
    """We send when our SDP says we do and the peer's says it receives (RFC 3264 §6.1)."""
    ours = local.direction_of(local.audio) if local is not None and local.audio is not None else "sendrecv"
    theirs = remote.direction_of(remote.audio) if remote.audio is not None else "inactive"
    return ours in ("sendrecv", "sendonly") and theirs in ("sendrecv", "recvonly")


def stream_spec(call_id: str, host: str, local: SessionDescription, remote: SessionDescription, *,
                offer: SessionDescription, answer: SessionDescription) -> StreamSpec | str:
    """The stream our SDP and the peer's agreed, or why there is none."""
    mine, theirs = local.audio, remote.audio
    if mine is None or theirs is None:
        return "no audio stream accepted"
    codec = common_codec(offer, answer)
    if codec is None or codec.name.upper() not in G711_PAYLOAD_TYPES:
        return f"codec {codec.name if codec else 'none'}: drlab carries G.711 only"
    peer = _peer(remote)
    mux = mine.attribute("rtcp-mux") is not None and theirs.attribute("rtcp-mux") is not None
    label = f"{peer[0]}:{peer[1]} → {host}" if peer else f"→ {host}"
    return StreamSpec(call_id, host, mine.port, peer, codec, ptime_ms(theirs), mux, _we_send(local, remote), label)


def without_media_address(body: bytes) -> bytes:
    """An SDP body whose connection addresses say "nowhere" (0.0.0.0): for a call with no media path."""
    try:
        sdp = SessionDescription.parse(body)
    except SdpError:
        return body
    for connection in [sdp.connection, *(m.connection for m in sdp.media)]:
        if connection is not None:
            connection.address = "0.0.0.0"
    return sdp.to_bytes()


class RoleMedia:
    def __init__(self, network: Network, host: str, log: Any, *, first_port: int) -> None:
        self.network, self.host, self.log = network, host, log
        self.first_port = first_port
        self._next = 0
        self.streams: dict[str, MediaStream] = {}
        self.relays: dict[str, MediaRelay] = {}
        self.qualities: dict[str, StreamQuality] = {}  # call id -> what its stream received
        # called with (call id, arrival time) for every RTP packet a call's stream or relay receives:
        # where a media inactivity watchdog listens
        self.on_packet: Callable[[str, float], None] | None = None

    def _busy(self) -> set[int]:
        ports = {s.spec.port for s in self.streams.values()}
        for relay in self.relays.values():
            ports.update(relay.ports.values())
        return ports

    def port(self) -> int:
        """The next free even RTP port."""
        busy = self._busy()
        for _ in range(PORT_SPAN):
            port = self.first_port + 2 * (self._next % PORT_SPAN)
            self._next += 1
            if port not in busy:
                return port
        raise OSError(f"{self.host}: all {PORT_SPAN} RTP ports are in use")

    async def start(self, call_id: str, local: SessionDescription | None, remote: SessionDescription | None, *,
                    offerer: bool, on_packet: Callable[[str, float], None] | None = None) -> MediaStream | None:
        """Start (or update) the RTP session of a call; None, with `media.no_path`, when there is none."""
        if call_id in self.streams:
            self.update(call_id, remote)
            return self.streams[call_id]
        if local is None or remote is None:
            return None
        offer, answer = (local, remote) if offerer else (remote, local)
        spec = stream_spec(call_id, self.host, local, remote, offer=offer, answer=answer)
        if isinstance(spec, str):
            self.log.info("media.no_path", call_id=call_id, reason=spec)
            return None
        watch = on_packet or self.on_packet
        stream = MediaStream(self.network, spec, self.log,
                             on_packet=None if watch is None else lambda t: watch(call_id, t))
        self.streams[call_id] = stream
        try:
            await stream.start()
        except OSError as exc:
            del self.streams[call_id]
            self.log.info("media.no_path", call_id=call_id, reason=f"cannot bind {spec.port}: {exc}")
            return None
        if spec.remote is None:
            self.log.info("media.no_path", call_id=call_id, reason="the peer's SDP gives no address to send to")
        return stream

    def update(self, call_id: str, remote: SessionDescription | None,
               local: SessionDescription | None = None) -> None:
        """A later offer/answer (a re-INVITE, hold): send where the peer's SDP says now, and only
        when our SDP sends and the peer's receives."""
        stream = self.streams.get(call_id)
        if stream is None or remote is None or remote.audio is None:
            return
        stream.set_remote(_peer(remote))
        stream.set_sending(_we_send(local, remote))

    def stop(self, call_id: str) -> StreamQuality | None:
        """End a call's media (its stream and its relay); the quality its stream received."""
        relay = self.relays.pop(call_id, None)
        if relay is not None:
            relay.close()
        stream = self.streams.pop(call_id, None)
        if stream is None:
            return None
        self.qualities[call_id] = quality = stream.stop()
        return quality

    def stop_all(self) -> None:
        for call_id in list(self.streams) + list(self.relays):
            self.stop(call_id)

    # --- anchoring (B2BUAs) -----------------------------------------------------------------
    def anchor(self, call_id: str) -> MediaRelay:
        relay = self.relays.get(call_id)
        if relay is None:
            relay = self.relays[call_id] = MediaRelay(self, call_id)
        return relay


class _RelayPort(asyncio.DatagramProtocol):
    def __init__(self, relay: MediaRelay, side: str, offset: int) -> None:
        self.relay, self.side, self.offset = relay, side, offset

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.forward(self.side, self.offset, data)

    def error_received(self, exc: Exception) -> None:
        return None


OTHER = {"a": "b", "b": "a"}


class MediaRelay:
    """One call's media through a B2BUA: side "a" faces the caller's leg, "b" the callee's.

    `rewrite(body, toward)` takes an SDP one leg sent and returns the one to relay on the other
    (`toward`): our address and our port on that side, so the far party sends to us. What arrives
    on a side's port (RTP) or port + 1 (RTCP) leaves from the other side's to that side's party.
    """

    def __init__(self, media: RoleMedia, call_id: str) -> None:
        self.media, self.call_id = media, call_id
        self.ports: dict[str, int] = {}
        self.peers: dict[str, tuple[str, int]] = {}
        self.transports: dict[tuple[str, int], asyncio.DatagramTransport] = {}
        self._binding: list[asyncio.Task[Any]] = []
        self.announced = False  # media.relayed is logged once both parties' addresses are known
        self.closed = False

    def rewrite(self, body: bytes, toward: str) -> bytes:
        """The SDP `body` (sent by the party on the other side) as relayed `toward` a side."""
        try:
            sdp = SessionDescription.parse(body)
        except SdpError:
            return body
        audio = sdp.audio
        if audio is None:
            return body
        peer = _peer(sdp)
        if peer is not None:
            self.peers[OTHER[toward]] = peer
        for side in ("a", "b"):
            if side not in self.ports:
                self.ports[side] = self.media.port()
                self._bind(side)
        address = self.media.network.resolve(self.media.host)
        sdp.origin.address = address
        if sdp.connection is not None:
            sdp.connection.address = address
        for media in sdp.media:
            if media.connection is not None:
                media.connection.address = address
        audio.port = self.ports[toward]
        if len(self.peers) == 2 and not self.announced:
            self._log_relayed()
        return sdp.to_bytes()

    def _log_relayed(self) -> None:
        self.announced = True
        me = self.media.network.resolve(self.media.host)
        pair = {side: f"{self.peers[side][0]}:{self.peers[side][1]} ↔ {me}:{self.ports[side]}" for side in ("a", "b")}
        self.media.log.info("media.relayed", call_id=self.call_id, a=pair["a"], b=pair["b"])

    def _bind(self, side: str) -> None:
        network, host = self.media.network, self.media.host

        async def bind() -> None:
            for offset in (0, 1):
                port, protocol = self.ports[side] + offset, _RelayPort(self, side, offset)
                with contextlib.suppress(OSError):
                    transport, _ = await network.open_datagram(host, port, lambda p=protocol: p)
                    if self.closed:
                        transport.close()
                        return
                    self.transports[(side, offset)] = transport

        self._binding.append(asyncio.ensure_future(bind()))

    def forward(self, side: str, offset: int, data: bytes) -> None:
        watch = self.media.on_packet
        if watch is not None and offset == 0 and not is_rtcp(data):
            watch(self.call_id, self.media.network.loop.time())  # a relay sees the call's media too
        other = OTHER[side]
        peer = self.peers.get(other)
        transport = self.transports.get((other, offset))
        if peer is None or transport is None or self.closed:
            return
        transport.sendto(data, (peer[0], peer[1] + offset))

    def close(self) -> None:
        self.closed = True
        for task in self._binding:
            task.cancel()
        for transport in self.transports.values():
            transport.close()
        self.transports.clear()
