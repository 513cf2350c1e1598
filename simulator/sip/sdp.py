"""SDP (RFC 4566) for audio calls, and the offer/answer rules of RFC 3264.

Theory of operation
-------------------
`SessionDescription.parse(data)` reads a session description into data classes;
`to_bytes()` writes it back in the field order RFC 4566 §5 requires. Attributes are
kept as ordered (name, value) pairs and re-emitted verbatim, so what this module does
not interpret — `a=crypto` (RFC 4568), `a=ice-ufrag`, `a=ice-pwd`, `a=candidate`
(RFC 8839), `a=rtcp-mux`, Teams' `a=label` ... — survives a parse/serialize round
trip unchanged. Lines of a type this module does not store (i=, u=, e=, p=, r=, z=,
k=) are kept verbatim in their section too.

The offer/answer part is plain functions over those classes:
- `make_offer(...)` builds an audio offer;
- `make_answer(offer, ...)` answers each m= line (RFC 3264 §6): the codecs both sides
  support, in the offerer's order and with the offerer's payload type numbers; port 0
  for a stream it rejects; the direction mirrored (§6.1: sendonly → recvonly, ...);
- `hold(sdp)` makes the re-offer that puts a call on hold (§8.4: sendonly, or inactive
  if the stream was already recvonly), with the o= version incremented (§8).

Bad input raises `SdpError`, naming the line — never IndexError/ValueError.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

# RFC 4566 §5: the types this module parses, and the order they must appear in.
_SESSION_ORDER = "vosiuepcbtrzkam"
_MEDIA_ORDER = "micbka"
_KEPT_VERBATIM = set("iuepzkr")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

# RFC 3551 §6: static payload types a Teams/SBC audio call meets.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    13: ("CN", 8000),
    18: ("G729", 8000),
}


class SdpError(ValueError):
    """A session description this module cannot read or answer (says which line)."""


@dataclass(frozen=True)
class Codec:
    """One RTP payload format (an rtpmap entry, or an RFC 3551 static type)."""

    payload_type: int
    name: str
    clock_rate: int = 8000
    channels: int | None = None
    fmtp: str | None = None

    def same_format(self, other: Codec) -> bool:
        """RFC 3264 §6.1: formats match by encoding name, clock rate and channels, not by number."""
        return (
            self.name.lower() == other.name.lower()
            and self.clock_rate == other.clock_rate
            and (self.channels or 1) == (other.channels or 1)
        )

    def rtpmap(self) -> str:
        text = f"{self.payload_type} {self.name}/{self.clock_rate}"
        return f"{text}/{self.channels}" if self.channels else text


PCMU = Codec(0, "PCMU")
PCMA = Codec(8, "PCMA")
G722 = Codec(9, "G722")
TELEPHONE_EVENT = Codec(101, "telephone-event", 8000, fmtp="0-16")


@dataclass
class Origin:
    username: str = "-"
    session_id: str = "0"
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass
class ConnectionData:
    """A c= line, "connection data" (RFC 4566 §5.7): network type, address type, address."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


@dataclass
class Media:
    """One m= section."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: ConnectionData | None = None
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    # --- attributes -------------------------------------------------------------
    def attribute(self, name: str) -> str | None:
        """The value of the first `a=name:value` (or "" for a flag), None when absent."""
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [value or "" for key, value in self.attributes if key == name]

    def set_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise SdpError(f"unknown media direction {direction!r}")
        kept = [(k, v) for k, v in self.attributes if k not in DIRECTIONS]
        self.attributes = kept + [(direction, None)]

    @property
    def direction(self) -> str | None:
        """The m-level direction attribute, None when the section has none."""
        for key, _value in self.attributes:
            if key in DIRECTIONS:
                return key
        return None

    @property
    def crypto(self) -> list[str]:
        return self.attribute_values("crypto")

    @property
    def ice_ufrag(self) -> str | None:
        return self.attribute("ice-ufrag")

    @property
    def ice_pwd(self) -> str | None:
        return self.attribute("ice-pwd")

    @property
    def candidates(self) -> list[str]:
        return self.attribute_values("candidate")

    @property
    def codecs(self) -> list[Codec]:
        """The formats of the m= line in order, resolved through rtpmap/fmtp or RFC 3551."""
        rtpmaps: dict[str, tuple[str, int, int | None]] = {}
        fmtps: dict[str, str] = {}
        for value in self.attribute_values("rtpmap"):
            pt, _, encoding = value.partition(" ")
            parts = encoding.strip().split("/")
            try:
                rate = int(parts[1]) if len(parts) > 1 else 8000
                channels = int(parts[2]) if len(parts) > 2 else None
            except ValueError:
                raise SdpError(f"bad a=rtpmap:{value}") from None
            rtpmaps[pt] = (parts[0], rate, channels)
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            fmtps[pt] = params.strip()
        result = []
        for fmt in self.formats:
            if not fmt.isdigit():
                continue  # not RTP (e.g. m=image ... udptl t38)
            number = int(fmt)
            if fmt in rtpmaps:
                name, rate, channels = rtpmaps[fmt]
            elif number in STATIC_PAYLOAD_TYPES:
                name, rate = STATIC_PAYLOAD_TYPES[number]
                channels = None
            else:
                continue  # dynamic type without rtpmap: unusable (RFC 4566 §6)
            result.append(Codec(number, name, rate, channels, fmtps.get(fmt)))
        return result

    def lines(self) -> list[str]:
        ports = f"{self.port}/{self.port_count}" if self.port_count else str(self.port)
        out = [f"m={self.media} {ports} {self.proto} {' '.join(self.formats)}".rstrip()]
        out += [f"i={v}" for t, v in self.other_lines if t == "i"]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={b}" for b in self.bandwidths]
        out += [f"k={v}" for t, v in self.other_lines if t == "k"]
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        return out


@dataclass
class SessionDescription:
    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: ConnectionData | None = None
    times: list[str] = field(default_factory=lambda: ["0 0"])
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)
    version: int = 0

    # --- reading ------------------------------------------------------------------
    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpError(f"SDP is not UTF-8: {exc}") from None
        lines = [line for line in data.replace("\r\n", "\n").split("\n") if line.strip()]
        if not lines:
            raise SdpError("empty session description")
        sdp = cls(times=[])
        seen_v = seen_o = seen_s = False
        current: Media | None = None
        for number, line in enumerate(lines, start=1):
            if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
                raise SdpError(f"line {number}: not '<type>=<value>': {line!r}")
            kind, value = line[0], line[2:]
            if number == 1 and kind != "v":
                raise SdpError("line 1: a session description starts with v= (RFC 4566 §5)")
            if kind == "v":
                if seen_v or value.strip() != "0":
                    raise SdpError(f"line {number}: only one v=0 is allowed, got {line!r}")
                seen_v = True
            elif kind == "m":
                current = _parse_media(value, number)
                sdp.media.append(current)
            elif current is not None:
                _parse_media_line(current, kind, value, number)
            elif kind == "o":
                sdp.origin = _parse_origin(value, number)
                seen_o = True
            elif kind == "s":
                sdp.session_name = value
                seen_s = True
            elif kind == "c":
                sdp.connection = _parse_connection(value, number)
            elif kind == "b":
                sdp.bandwidths.append(value)
            elif kind == "t":
                sdp.times.append(value)
            elif kind == "a":
                sdp.attributes.append(_parse_attribute(value))
            elif kind in _KEPT_VERBATIM:
                sdp.other_lines.append((kind, value))
            else:
                raise SdpError(f"line {number}: unknown SDP line type {kind!r}")
        if not seen_o:
            raise SdpError("missing o= line (RFC 4566 §5.2)")
        if not seen_s:
            raise SdpError("missing s= line (RFC 4566 §5.3)")
        if not sdp.times:
            raise SdpError("missing t= line (RFC 4566 §5.9)")
        for media in sdp.media:
            media.codecs  # noqa: B018 - a bad a=rtpmap is an error of the parse, not of later use
            if media.connection is None and sdp.connection is None and media.port != 0:
                raise SdpError(f"m={media.media} has no c= line and the session has none (RFC 4566 §5.7)")
        return sdp

    # --- writing ------------------------------------------------------------------
    def lines(self) -> list[str]:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        out += [f"{t}={v}" for t, v in self.other_lines if t in "iuep"]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={b}" for b in self.bandwidths]
        for time in self.times:
            out.append(f"t={time}")
            out += [f"r={v}" for t, v in self.other_lines if t == "r"]
        out += [f"{t}={v}" for t, v in self.other_lines if t in "zk"]
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for media in self.media:
            out += media.lines()
        return out

    def to_bytes(self) -> bytes:
        return ("\r\n".join(self.lines()) + "\r\n").encode("utf-8")

    def __str__(self) -> str:
        return self.to_bytes().decode("utf-8")

    # --- views --------------------------------------------------------------------
    @property
    def audio(self) -> Media | None:
        """The first audio stream that is not rejected (port 0), else None."""
        for media in self.media:
            if media.media == "audio" and media.port != 0:
                return media
        return None

    def direction_of(self, media: Media) -> str:
        """RFC 3264 §5.1/§6.1: the m-level attribute, else the session-level one, else sendrecv."""
        if media.direction is not None:
            return media.direction
        for key, _value in self.attributes:
            if key in DIRECTIONS:
                return key
        return "sendrecv"

    def connection_of(self, media: Media) -> ConnectionData | None:
        return media.connection or self.connection

    @property
    def is_hold(self) -> bool:
        """True when no audio flows towards us or from us: RFC 3264 §8.4 hold."""
        audio = self.audio
        return audio is not None and self.direction_of(audio) in ("sendonly", "inactive")


# --- line parsers ---------------------------------------------------------------------


def _parse_origin(value: str, number: int) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError(f"line {number}: o= needs 6 fields, got {value!r}")
    try:
        version = int(parts[2])
    except ValueError:
        raise SdpError(f"line {number}: o= session version is not a number: {parts[2]!r}") from None
    return Origin(parts[0], parts[1], version, parts[3], parts[4], parts[5])


def _parse_connection(value: str, number: int) -> ConnectionData:
    parts = value.split()
    if len(parts) != 3:
        raise SdpError(f"line {number}: c= needs 3 fields, got {value!r}")
    return ConnectionData(parts[2], parts[0], parts[1])


def _parse_attribute(value: str) -> tuple[str, str | None]:
    name, sep, rest = value.partition(":")
    return (name, rest) if sep else (name, None)


def _parse_media(value: str, number: int) -> Media:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"line {number}: m= needs media, port and proto, got {value!r}")
    port_text, _, count_text = parts[1].partition("/")
    try:
        port = int(port_text)
        count = int(count_text) if count_text else None
    except ValueError:
        raise SdpError(f"line {number}: m= port is not a number: {parts[1]!r}") from None
    if not 0 <= port <= 65535:
        raise SdpError(f"line {number}: m= port {port} out of range")
    return Media(parts[0], port, parts[2], parts[3:], count)


def _parse_media_line(media: Media, kind: str, value: str, number: int) -> None:
    if kind == "c":
        media.connection = _parse_connection(value, number)
    elif kind == "b":
        media.bandwidths.append(value)
    elif kind == "a":
        media.attributes.append(_parse_attribute(value))
    elif kind in "ik":
        media.other_lines.append((kind, value))
    else:
        raise SdpError(f"line {number}: {kind}= is not allowed in a media section (RFC 4566 §5)")


# --- offer / answer (RFC 3264) --------------------------------------------------------

_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


def answer_direction(offered: str, wanted: str = "sendrecv") -> str:
    """RFC 3264 §6.1: we may send only if the offerer receives, and receive only if it sends."""
    offer_sends = offered in ("sendrecv", "sendonly")
    offer_receives = offered in ("sendrecv", "recvonly")
    we_send = wanted in ("sendrecv", "sendonly") and offer_receives
    we_receive = wanted in ("sendrecv", "recvonly") and offer_sends
    return {
        (True, True): "sendrecv",
        (True, False): "sendonly",
        (False, True): "recvonly",
        (False, False): "inactive",
    }[(we_send, we_receive)]


def _audio_media(port: int, codecs: list[Codec], direction: str, proto: str,
                 extra: list[tuple[str, str | None]]) -> Media:
    media = Media("audio", port, proto, [str(c.payload_type) for c in codecs])
    for codec in codecs:
        media.attributes.append(("rtpmap", codec.rtpmap()))
        if codec.fmtp:
            media.attributes.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    media.attributes.extend(extra)
    media.attributes.append((direction, None))
    return media


def _new_session(address: str, session_id: str, username: str) -> SessionDescription:
    return SessionDescription(
        origin=Origin(username, session_id, 1, "IN", _addrtype(address), address),
        connection=ConnectionData(address, "IN", _addrtype(address)),
    )


def make_offer(
    address: str,
    port: int,
    codecs: list[Codec],
    *,
    session_id: str = "1",
    username: str = "-",
    direction: str = "sendrecv",
    proto: str = "RTP/AVP",
    attributes: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
) -> SessionDescription:
    """An offer with one audio stream; `attributes` (crypto, ICE ...) go on the m= section."""
    if not codecs:
        raise SdpError("an offer needs at least one codec")
    if direction not in DIRECTIONS:
        raise SdpError(f"unknown media direction {direction!r}")
    offer = _new_session(address, session_id, username)
    offer.media.append(_audio_media(port, list(codecs), direction, proto, list(attributes)))
    return offer


def make_answer(
    offer: SessionDescription,
    address: str,
    port: int,
    codecs: list[Codec],
    *,
    session_id: str = "1",
    username: str = "-",
    direction: str = "sendrecv",
    attributes: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
) -> SessionDescription:
    """RFC 3264 §6: one answer m= line per offered one, in the same order.

    The first audio stream with a codec in common is accepted on `port`, with the common
    codecs in the offerer's order and numbering; every other stream is rejected with
    port 0. Raises SdpError when no audio stream can be accepted (the caller answers 488).
    """
    answer = _new_session(address, session_id, username)
    accepted = False
    for offered in offer.media:
        common = [c for c in offered.codecs if any(c.same_format(mine) for mine in codecs)]
        # telephone-event alone carries no audio; a stream needs a real codec (RFC 4733 §2.5.1).
        audio_codecs = [c for c in common if c.name.lower() not in ("telephone-event", "cn")]
        if offered.media == "audio" and offered.port != 0 and audio_codecs and not accepted:
            mirrored = answer_direction(offer.direction_of(offered), direction)
            answer.media.append(_audio_media(port, common, mirrored, offered.proto, list(attributes)))
            accepted = True
        else:
            # RFC 3264 §6: a rejected stream keeps its place, with port 0 and the offered formats.
            answer.media.append(Media(offered.media, 0, offered.proto, list(offered.formats) or ["0"]))
    if not accepted:
        raise SdpError("no audio codec in common with the offer (answer 488 Not Acceptable Here)")
    return answer


def hold(sdp: SessionDescription) -> SessionDescription:
    """RFC 3264 §8.4: the re-offer that holds the call, with o= version + 1 (§8)."""
    return _redirect(sdp, lambda current: "inactive" if current in ("recvonly", "inactive") else "sendonly")


def resume(sdp: SessionDescription) -> SessionDescription:
    """The re-offer that takes a call off hold: sendrecv again, o= version + 1."""
    return _redirect(sdp, lambda _current: "sendrecv")


def _redirect(sdp: SessionDescription, choose) -> SessionDescription:
    new = copy.deepcopy(sdp)
    new.origin = replace(new.origin, session_version=new.origin.session_version + 1)
    audio = new.audio
    if audio is None:
        raise SdpError("no active audio stream to change")
    audio.set_direction(choose(new.direction_of(audio)))
    return new


def common_codec(offer: SessionDescription, answer: SessionDescription) -> Codec | None:
    """The codec the call will use: the first one of the answer's audio stream (RFC 3264 §6.1)."""
    audio = answer.audio
    if audio is None or offer.audio is None:
        return None
    codecs = [c for c in audio.codecs if c.name.lower() not in ("telephone-event", "cn")]
    return codecs[0] if codecs else None
