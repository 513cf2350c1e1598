"""A role's media: the RTP ports it hands out, the streams of its calls, and the media it relays.

`RoleMedia` is what a role holds (one per node):
- `port()` — the RTP port for a new SDP (even, RTCP on the next one; the ports of running
  streams and relays are skipped, so concurrent calls never share one);
- `start(call_id, local, remote, offerer=, on_packet=, on_expect=)` — the call was answered (or
  has early media): an RTP session between what our SDP and the peer's SDP say (address, port,
  codec, ptime, direction, rtcp-mux); `update` follows a later SDP (an answer after early media,
  a re-INVITE); `stop(call_id)` ends it and logs its `media.quality`;
- `anchor(call_id, on_packet=, on_expect=)` — a `MediaRelay`: a B2BUA that keeps media on its own
  address (an SBC; the Teams media processor when the gateway has no media bypass [S28]) rewrites
  each SDP it relays to its own address and a port of its own, and forwards RTP and RTCP between
  the two legs.

`on_packet` is called with the arrival time of every RTP packet (a relay names the side it came
from), `on_expect` when the offer/answer starts or stops having the peer send (RFC 3264 §6.1):
the role's media inactivity watch listens (roles/media_watch.py). Both are plain calls, no task
per packet.

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


def _direction(sdp: SessionDescription | None, default: str) -> str:
    return sdp.direction_of(sdp.audio) if sdp is not None and sdp.audio is not None else default


def _sends(sender: str, receiver: str) -> bool:
    """RFC 3264 §6.1: a side sends when its direction sends and the other's receives."""
    return sender in ("sendrecv", "sendonly") and receiver in ("sendrecv", "recvonly")


def _we_send(local: SessionDescription | None, remote: SessionDescription) -> bool:
    return _sends(_direction(local, "sendrecv"), _direction(remote, "inactive"))


def _peer_sends(local: SessionDescription | None, remote: SessionDescription) -> bool:
    """The peer sends to us: its SDP gives an address (it has a media path) and the directions agree."""
    return _peer(remote) is not None and _sends(_direction(remote, "inactive"), _direction(local, "sendrecv"))


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
    return StreamSpec(call_id, host, mine.port, peer, codec, ptime_ms(theirs), mux, _we_send(local, remote),
                      _peer_sends(local, remote), label)


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
    def __init__(self, network: Network, host: str, log: Any, *, first_port: int, enabled: bool = True) -> None:
        self.network, self.host, self.log = network, host, log
        self.first_port = first_port
        self.enabled = enabled  # the `media` setting: false, no stream and no relay (SDP only)
        self._next = 0
        self.streams: dict[str, MediaStream] = {}
        self.relays: dict[str, MediaRelay] = {}
        self.qualities: dict[str, StreamQuality] = {}  # call id -> what its stream received

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
                    offerer: bool, on_packet: Callable[[float], None] | None = None,
                    on_expect: Callable[[float, bool], None] | None = None) -> MediaStream | None:
        """Start (or update) the RTP session of a call; None, with `media.no_path`, when there is none."""
        if call_id in self.streams:
            self.update(call_id, remote)
            return self.streams[call_id]
        if local is None or remote is None or not self.enabled:
            return None
        offer, answer = (local, remote) if offerer else (remote, local)
        spec = stream_spec(call_id, self.host, local, remote, offer=offer, answer=answer)
        if isinstance(spec, str):
            self.log.info("media.no_path", call_id=call_id, reason=spec)
            return None
        stream = MediaStream(self.network, spec, self.log, on_packet=on_packet, on_expect=on_expect)
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
        stream.set_receiving(_peer_sends(local, remote))

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
    def anchor(self, call_id: str, *, on_packet: Callable[[str, float], None] | None = None,
               on_expect: Callable[[str, float, bool], None] | None = None) -> MediaRelay:
        relay = self.relays.get(call_id)
        if relay is None:
            relay = self.relays[call_id] = MediaRelay(self, call_id, on_packet=on_packet, on_expect=on_expect)
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
    Once both parties' SDPs are known, a side is expected to send to us when its direction sends
    and the other's receives (`on_expect(side, now, receiving)` on every change).
    """

    def __init__(self, media: RoleMedia, call_id: str, *, on_packet: Callable[[str, float], None] | None = None,
                 on_expect: Callable[[str, float, bool], None] | None = None) -> None:
        self.media, self.call_id = media, call_id
        self.on_packet, self.on_expect = on_packet, on_expect
        self.ports: dict[str, int] = {}
        self.peers: dict[str, tuple[str, int]] = {}
        self.directions: dict[str, str] = {}  # side -> the direction its party's last SDP gave
        self.expecting: dict[str, bool] = {"a": False, "b": False}
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
        peer, sender = _peer(sdp), OTHER[toward]
        if peer is not None:
            self.peers[sender] = peer
        else:
            self.peers.pop(sender, None)  # no address (no media path, old-style hold): nothing to send to
        self.directions[sender] = sdp.direction_of(audio)
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
        self._update_expecting()
        return sdp.to_bytes()

    def _update_expecting(self) -> None:
        if len(self.directions) < 2:
            return  # the offer/answer is not complete: nobody has been told where to send yet
        now = self.media.network.loop.time()
        for side in ("a", "b"):
            sends = side in self.peers and _sends(self.directions[side], self.directions[OTHER[side]])
            if sends != self.expecting[side]:
                self.expecting[side] = sends
                if self.on_expect is not None:
                    self.on_expect(side, now, sends)

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
        if self.on_packet is not None and offset == 0 and not is_rtcp(data):
            self.on_packet(side, self.media.network.loop.time())  # a relay sees the call's media too
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
