"""RTP data packets (RFC 3550 §5.1) and the G.711 audio they carry (RFC 3551 §4.5.14).

Sans-I/O: `RtpPacket.to_bytes()` / `RtpPacket.parse(data)` and `G711Source`, which makes the
payloads of one stream. The payload is a tone of a frequency and level drawn from the stream's
seeded RNG, encoded with the G.711 μ-law or A-law rules: the same seed gives the same bytes, and
a capture plays as a tone rather than as noise.
"""

from __future__ import annotations

import functools
import math
import random
import struct
from dataclasses import dataclass

from simulator.sip.sdp import Codec, Media

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")
DEFAULT_PTIME_MS = 20  # RFC 3551 §4.5: the default packetization interval of the audio encodings
G711_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}


class RtpError(ValueError):
    """Bytes that are not an RTP packet this module reads (says why)."""


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet without CSRCs, header extension or padding (what G.711 streams send)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False

    def to_bytes(self) -> bytes:
        first = RTP_VERSION << 6
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        return HEADER.pack(first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                           self.ssrc & 0xFFFFFFFF) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """RFC 3550 §5.1 and A.1's validity checks: version 2, room for the CSRCs, extension and padding."""
        if len(data) < HEADER.size:
            raise RtpError(f"{len(data)} bytes is shorter than the 12-byte RTP header")
        first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {first >> 6}, expected {RTP_VERSION}")
        offset = HEADER.size + 4 * (first & 0x0F)
        if first & 0x10:  # header extension (§5.3.1): 4 bytes, then its length in 32-bit words
            if len(data) < offset + 4:
                raise RtpError("header extension runs past the end of the packet")
            offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
        end = len(data)
        if first & 0x20:  # padding: the last byte counts the padding bytes, itself included
            end -= data[-1]
        if offset > end:
            raise RtpError("CSRC list, extension or padding longer than the packet")
        return cls(second & 0x7F, sequence, timestamp, ssrc, bytes(data[offset:end]), bool(second & 0x80))


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: on a multiplexed port, packet types 200-204 (second byte) are RTCP."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def ptime_ms(media: Media) -> int:
    """The packetization interval an SDP media section asks for (a=ptime, RFC 4566 §6), else 20 ms."""
    value = media.attribute("ptime")
    try:
        ptime = int(float(value)) if value else DEFAULT_PTIME_MS
    except ValueError:
        return DEFAULT_PTIME_MS
    return ptime if 10 <= ptime <= 120 else DEFAULT_PTIME_MS


# --- G.711 (ITU-T G.711, the segment encoders of Sun's public-domain g711.c) -------------------------------

_ULAW_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for segment, end in enumerate(ends):
        if value <= end:
            return segment
    return 8


def linear_to_ulaw(sample: int) -> int:
    """A 16-bit linear sample as a μ-law byte (G.711 Table 2; 14 significant bits)."""
    value = sample >> 2
    mask = 0x7F if value < 0 else 0xFF
    magnitude = min(-value if value < 0 else value, 8159) + 0x21  # clip, then add the bias (33)
    segment = _segment(magnitude, _ULAW_SEGMENT_ENDS)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)) ^ mask


def linear_to_alaw(sample: int) -> int:
    """A 16-bit linear sample as an A-law byte (G.711 Table 1)."""
    value = sample >> 3  # A-law encodes 13 bits
    mask = 0xD5 if value >= 0 else 0x55
    magnitude = value if value >= 0 else -value - 1
    segment = _segment(magnitude, _ALAW_SEGMENT_ENDS)
    if segment >= 8:
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    return ((segment << 4) | ((magnitude >> shift) & 0x0F)) ^ mask


_ENCODERS = {"PCMU": linear_to_ulaw, "PCMA": linear_to_alaw}


@functools.cache
def _encoding_table(name: str) -> bytes:
    """Every 16-bit sample's byte, computed once per process: a stream's tone is a lookup per sample."""
    encode = _ENCODERS[name]
    return bytes(encode(sample) for sample in range(-32768, 32768))


class G711Source:
    """The payloads of one G.711 stream: a seeded tone, one second of it repeated. The tone is
    one of a few hundred (frequency, level, phase), each encoded once per process: encoding a
    second of samples in Python for every call was half a client's CPU under load."""

    def __init__(self, codec: Codec, rng: random.Random, ptime: int = DEFAULT_PTIME_MS) -> None:
        name = codec.name.upper()
        if name not in _ENCODERS:
            raise ValueError(f"no payload source for {codec.name}: drlab sends G.711 (PCMU, PCMA)")
        self.samples_per_packet = codec.clock_rate * ptime // 1000
        frequency = rng.choice((350, 400, 440, 480, 620))  # the call-progress tones of North America
        level = rng.randrange(2000, 8001, 500)
        phase_eighths = rng.randrange(8)
        self._frames = _tone_frames(name, codec.clock_rate, self.samples_per_packet, frequency, level, phase_eighths)

    def payload(self, index: int) -> bytes:
        """The payload of the stream's `index`-th packet."""
        return self._frames[index % len(self._frames)]


@functools.cache
def _tone_frames(name: str, clock_rate: int, step: int, frequency: int, level: int, phase_eighths: int) -> tuple[bytes, ...]:
    table = _encoding_table(name)
    phase = phase_eighths * math.pi / 4
    second = bytes(table[32768 + round(level * math.sin(phase + 2 * math.pi * frequency * n / clock_rate))]
                   for n in range(clock_rate))
    return tuple(second[i:i + step] for i in range(0, len(second) - step + 1, step))
