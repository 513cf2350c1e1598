"""RTCP sender and receiver reports (RFC 3550 §6.4) and the round-trip time they carry (§6.4.1).

Sans-I/O: `SenderReport` / `ReceiverReport` write themselves (`to_bytes`) and `parse_compound`
reads a compound packet back, skipping packet types it does not know (SDES, BYE, APP ...).

Round trip (§6.4.1, Figure 2): a report block echoes the middle 32 bits of the NTP timestamp of
the last SR from that source (LSR) and the delay since it arrived (DLSR), both in 1/65536 s; the
SR's sender computes RTT = A − LSR − DLSR with A its own arrival time, in the same units.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from simulator.media.rtp import RtpError

SR = 200
RR = 201
RTCP_INTERVAL_S = 5.0  # RFC 3550 §6.2: the recommended minimum interval between reports
NTP_UNIX_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01
_HEADER = struct.Struct("!BBHI")
_SENDER_INFO = struct.Struct("!IIIII")
_BLOCK = struct.Struct("!IB3sIIII")


def ntp_timestamp(seconds: float) -> int:
    """A 64-bit NTP timestamp for `seconds` since the UNIX epoch (the lab's clock reads from 0)."""
    return int(round((seconds + NTP_UNIX_OFFSET) * (1 << 32))) & 0xFFFFFFFFFFFFFFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: LSR and arrival times in 1/65536 s (§6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip_s(arrival_ntp: int, lsr: int, dlsr: int) -> float | None:
    """RTT = A − LSR − DLSR (§6.4.1), in seconds; None when the block echoes no SR (LSR = 0)."""
    if lsr == 0:
        return None
    rtt = (ntp_middle(arrival_ntp) - lsr - dlsr) & 0xFFFFFFFF
    return rtt / 65536.0 if rtt < 0x80000000 else 0.0


@dataclass(frozen=True)
class ReportBlock:
    """One reception report (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    lsr: int = 0
    dlsr: int = 0

    def to_bytes(self) -> bytes:
        lost = (self.cumulative_lost & 0xFFFFFF).to_bytes(3, "big")
        return _BLOCK.pack(self.ssrc, self.fraction_lost & 0xFF, lost, self.highest_sequence & 0xFFFFFFFF,
                           self.jitter & 0xFFFFFFFF, self.lsr, self.dlsr)

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        cumulative = int.from_bytes(lost, "big", signed=True)
        return cls(ssrc, fraction, cumulative, highest, jitter, lsr, dlsr)


@dataclass(frozen=True)
class SenderReport:
    """RTCP SR (§6.4.1): what the sender sent, and its reception reports."""

    ssrc: int
    ntp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    blocks: tuple[ReportBlock, ...] = ()

    def to_bytes(self) -> bytes:
        body = _SENDER_INFO.pack(self.ntp >> 32, self.ntp & 0xFFFFFFFF, self.rtp_timestamp & 0xFFFFFFFF,
                                 self.packet_count & 0xFFFFFFFF, self.octet_count & 0xFFFFFFFF)
        return _packet(SR, self.ssrc, self.blocks, body)


@dataclass(frozen=True)
class ReceiverReport:
    """RTCP RR (§6.4.2): reception reports from a participant that sent nothing."""

    ssrc: int
    blocks: tuple[ReportBlock, ...] = ()

    def to_bytes(self) -> bytes:
        return _packet(RR, self.ssrc, self.blocks, b"")


def _packet(kind: int, ssrc: int, blocks: tuple[ReportBlock, ...], body: bytes) -> bytes:
    if len(blocks) > 31:
        raise ValueError("an RTCP report holds at most 31 report blocks")
    payload = body + b"".join(block.to_bytes() for block in blocks)
    length = (_HEADER.size + len(payload)) // 4 - 1  # in 32-bit words minus one (§6.4.1)
    return _HEADER.pack(0x80 | len(blocks), kind, length, ssrc) + payload


def parse_compound(data: bytes) -> list[SenderReport | ReceiverReport]:
    """The SRs and RRs of a compound RTCP packet (§6.1); RtpError for a malformed one."""
    reports: list[SenderReport | ReceiverReport] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise RtpError("RTCP packet shorter than its 4-byte header")
        first, kind, length = struct.unpack_from("!BBH", data, offset)
        size = 4 * (length + 1)
        if first >> 6 != 2 or offset + size > len(data):
            raise RtpError(f"bad RTCP header at byte {offset}: version {first >> 6}, length {size}")
        count = first & 0x1F
        if kind in (SR, RR):
            ssrc = struct.unpack_from("!I", data, offset + 4)[0]
            start = offset + 8 + (_SENDER_INFO.size if kind == SR else 0)
            if start + count * _BLOCK.size > offset + size:
                raise RtpError(f"RTCP {'SR' if kind == SR else 'RR'} shorter than its {count} report blocks")
            blocks = tuple(ReportBlock.parse(data, start + i * _BLOCK.size) for i in range(count))
            if kind == SR:
                high, low, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(data, offset + 8)
                reports.append(SenderReport(ssrc, (high << 32) | low, rtp_ts, packets, octets, blocks))
            else:
                reports.append(ReceiverReport(ssrc, blocks))
        offset += size
    return reports
