"""RTP (RFC 3550 §5.1) and RTCP SR/RR (§6.4) on the wire, and G.711 payloads (RFC 3551)."""

from __future__ import annotations

import random

import pytest

from simulator.media.rtcp import (
    ReceiverReport,
    ReportBlock,
    SenderReport,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
    round_trip_s,
)
from simulator.media.rtp import (
    G711Source,
    RtpError,
    RtpPacket,
    is_rtcp,
    linear_to_alaw,
    linear_to_ulaw,
    ptime_ms,
)
from simulator.sip.sdp import PCMA, PCMU, SessionDescription


def test_rtp_header_is_written_as_rfc_3550_lays_it_out() -> None:
    packet = RtpPacket(payload_type=8, sequence=0x1234, timestamp=0xDEADBEEF, ssrc=0x01020304,
                       payload=b"\xd5" * 4, marker=True)
    data = packet.to_bytes()
    assert data[:12] == bytes.fromhex("80 88 1234 deadbeef 01020304")
    assert RtpPacket.parse(data) == packet


@pytest.mark.parametrize(("data", "why"), [
    (b"\x80\x00", "shorter than the 12-byte RTP header"),
    (bytes.fromhex("40000001000000000000000a"), "RTP version 1"),
    (bytes.fromhex("8f000001000000000000000a"), "CSRC list"),
    (bytes.fromhex("90000001000000000000000a"), "header extension"),
])
def test_bad_rtp_is_a_clear_error(data: bytes, why: str) -> None:
    with pytest.raises(RtpError, match=why):
        RtpPacket.parse(data)


def test_csrcs_extension_and_padding_are_skipped() -> None:
    header = bytes.fromhex("b1 00 0001 00000000 0000000a") + b"\x00\x00\x00\x09"  # P, X, one CSRC
    extension = bytes.fromhex("bede 0001 11223344")
    packet = RtpPacket.parse(header + extension + b"\xffabc" + b"\x00\x02")
    assert packet.payload == b"\xffabc"


@pytest.mark.parametrize(("sample", "ulaw", "alaw"), [
    (0, 0xFF, 0xD5),        # silence
    (-1, 0x7E, 0x55),
    (32767, 0x80, 0xAA),    # full scale, positive
    (-32768, 0x00, 0x2A),   # full scale, negative
    (1000, 0xCE, 0xFA),
])
def test_g711_encoders_match_the_g711_tables(sample: int, ulaw: int, alaw: int) -> None:
    assert linear_to_ulaw(sample) == ulaw
    assert linear_to_alaw(sample) == alaw


def test_a_seeded_source_gives_the_same_payloads_and_one_packet_per_ptime() -> None:
    first, again = G711Source(PCMU, random.Random("s")), G711Source(PCMU, random.Random("s"))
    assert [first.payload(i) for i in range(60)] == [again.payload(i) for i in range(60)]
    assert len(first.payload(0)) == 160  # 20 ms at 8000 Hz
    assert len(G711Source(PCMA, random.Random("s"), ptime=30).payload(0)) == 240


@pytest.mark.parametrize(("line", "ptime"), [(None, 20), ("a=ptime:30", 30), ("a=ptime:x", 20), ("a=ptime:500", 20)])
def test_ptime_comes_from_the_sdp(line: str | None, ptime: int) -> None:
    text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    sdp = SessionDescription.parse(text + (line + "\r\n" if line else ""))
    assert ptime_ms(sdp.media[0]) == ptime


def test_rtcp_sender_and_receiver_reports_round_trip() -> None:
    block = ReportBlock(ssrc=7, fraction_lost=76, cumulative_lost=-2, highest_sequence=70000, jitter=35,
                        lsr=0x12345678, dlsr=65536)
    sr = SenderReport(ssrc=1, ntp=ntp_timestamp(12.5), rtp_timestamp=100, packet_count=3, octet_count=480,
                      blocks=(block,))
    rr = ReceiverReport(ssrc=2, blocks=(block,))
    compound = sr.to_bytes() + rr.to_bytes()
    assert len(sr.to_bytes()) == 28 + 24 and len(rr.to_bytes()) == 8 + 24
    assert parse_compound(compound) == [sr, rr]
    assert is_rtcp(sr.to_bytes()) and not is_rtcp(RtpPacket(0, 1, 1, 1).to_bytes())


def test_rtcp_packets_it_does_not_read_are_skipped_and_bad_ones_refused() -> None:
    sdes = bytes.fromhex("81ca0001 00000001")
    assert parse_compound(sdes + ReceiverReport(ssrc=5).to_bytes()) == [ReceiverReport(ssrc=5)]
    with pytest.raises(RtpError):
        parse_compound(bytes.fromhex("81c90007 00000001"))  # says one block, has none


def test_round_trip_is_a_minus_lsr_minus_dlsr_as_in_rfc_3550_figure_2() -> None:
    # RFC 3550 §6.4.1, Figure 2: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000 → 6.125 s
    arrival = 0xB7108000 << 16
    assert ntp_middle(arrival) == 0xB7108000
    assert round_trip_s(arrival, 0xB7052000, 0x00054000) == 6.125
    assert round_trip_s(arrival, 0, 0) is None  # no SR received yet
