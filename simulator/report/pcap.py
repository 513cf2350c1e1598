"""capture.pcap: every SIP message and RTP/RTCP packet of a run as IPv4 packets between the nodes'
real addresses and ports.

Built from `sip.sent` / `sip.received` events only (CONTRACTS.md): a message is written once, at
the time its sender sent it; a `sip.received` with no matching `sip.sent` (a sender that does not
log) is written at the time it arrived. UDP messages become UDP datagrams; TCP and TLS messages
become TCP segments of one stream per connection, opened with a SYN / SYN-ACK / ACK so Wireshark
follows the stream.

TLS-carried SIP is written as PLAINTEXT TCP on its real port (5061, 443): the events hold the
decrypted text, and a capture you can read beats a faithful one you cannot. Wireshark assumes TLS
on 5061/443, so tell it: `tshark -r capture.pcap -d tcp.port==5061,sip -d tcp.port==443,sip`
(in Wireshark: Decode As… → SIP). Timestamps are virtual seconds from the run's start.

RTP comes from the compact `rtp.sent` events (simulator/media/stream.py): each names a run of
packets sent one per ptime, and the payload source's seed, so every packet is rebuilt here byte
for byte as its sender sent it (what the network then lost is not subtracted: the capture is
taken at the sender, as for SIP). RTCP comes from `rtcp.sent`, one event per packet. Media relays
(the SBC, the media processor) log `media.relayed`, not the packets they forward. RTP has no
well-known port: `tshark -r capture.pcap -d udp.port==50000,rtp -Y rtp` (or Wireshark's
"try heuristic sub-dissectors" / `-o rtp.heuristic_rtp:TRUE`).
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Iterable
from typing import Any, BinaryIO

import dpkt

from simulator.media.rtp import G711Source, RtpPacket
from simulator.sip.sdp import Codec

_MAC_SRC = bytes.fromhex("020000000001")
_MAC_DST = bytes.fromhex("020000000002")
# the `-d` options that make tshark dissect plaintext SIP written on the TLS ports
TSHARK_DECODE_AS = ("-d", "tcp.port==5061,sip", "-d", "tcp.port==443,sip")


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def _ip(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    packet = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, ttl=64, data=payload)
    packet.len = len(packet)  # dpkt fills checksums when packed
    # Ethernet framing (made-up MACs): every reader knows linktype 1; raw-IP linktypes vary by platform
    return bytes(dpkt.ethernet.Ethernet(src=_MAC_SRC, dst=_MAC_DST, type=dpkt.ethernet.ETH_TYPE_IP, data=packet))


_ETHERNET_IP = _MAC_DST + _MAC_SRC + struct.pack("!H", dpkt.ethernet.ETH_TYPE_IP)


def _ip_checksum(header: bytes) -> int:
    """The IPv4 header checksum (RFC 791 §3.1: the ones' complement of the ones' complement sum)."""
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp(src: tuple[str, int], dst: tuple[str, int], data: bytes) -> bytes:
    """A UDP datagram in IPv4 in Ethernet, packed directly: a capture holds tens of thousands of
    RTP packets. The UDP checksum is 0, "no checksum" (RFC 768, allowed over IPv4)."""
    length = 8 + len(data)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0, 64, dpkt.ip.IP_PROTO_UDP, 0,
                         socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    return b"".join((_ETHERNET_IP, header[:10], struct.pack("!H", _ip_checksum(header)), header[12:],
                     struct.pack("!HHHH", src[1], dst[1], length, 0), data))


def _tcp(src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: int, data: bytes = b"") -> bytes:
    t = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=seq, ack=ack, flags=flags, win=65535, data=data)
    t.off = 5
    return _ip(src[0], dst[0], dpkt.ip.IP_PROTO_TCP, t)


def sip_packets(records: Iterable[dict[str, Any]]) -> list[tuple[float, dict[str, Any]]]:
    """The SIP records to write, once per message: (time, record) in time order."""
    records = list(records)
    sent_keys: dict[tuple[str, str, str], int] = {}
    for r in records:
        if r["event"] == "sip.sent":
            key = (r["src"], r["dst"], r["message"])
            sent_keys[key] = sent_keys.get(key, 0) + 1
    out = []
    for r in records:
        if r["event"] == "sip.sent":
            out.append((r["t"], r))
        elif r["event"] == "sip.received":
            key = (r["src"], r["dst"], r["message"])
            if sent_keys.get(key):
                sent_keys[key] -= 1  # the sender's copy is already written
            else:
                out.append((r["t"], r))
    return out


class _Streams:
    """TCP sequence numbers per connection, and the handshake written on first sight."""

    def __init__(self) -> None:
        self.next_seq: dict[tuple[str, str], int] = {}
        self.conn: dict[frozenset[str], object] = {}  # address pair -> the connection id seen on it

    def frames(self, t: float, src: str, dst: str, data: bytes, conn: object = None) -> list[tuple[float, bytes]]:
        s, d = _split(src), _split(dst)
        out: list[tuple[float, bytes]] = []
        pair = frozenset((src, dst))
        if conn is not None and self.conn.get(pair, conn) != conn:
            # a new connection on the same addresses and ports (after a reset): a new TCP stream
            self.next_seq.pop((src, dst), None)
            self.next_seq.pop((dst, src), None)
        if conn is not None:
            self.conn[pair] = conn
        if (src, dst) not in self.next_seq and (dst, src) not in self.next_seq:
            # the side that sent first is taken as the client of the connection
            out += [(t, _tcp(s, d, 0, 0, dpkt.tcp.TH_SYN)),
                    (t, _tcp(d, s, 0, 1, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)),
                    (t, _tcp(s, d, 1, 1, dpkt.tcp.TH_ACK))]
            self.next_seq[(src, dst)] = 1
            self.next_seq[(dst, src)] = 1
        seq, ack = self.next_seq[(src, dst)], self.next_seq[(dst, src)]
        out.append((t, _tcp(s, d, seq, ack, dpkt.tcp.TH_PUSH | dpkt.tcp.TH_ACK, data)))
        self.next_seq[(src, dst)] = (seq + len(data)) & 0xFFFFFFFF
        return out


def rtp_frames(records: Iterable[dict[str, Any]]) -> list[tuple[float, bytes]]:
    """Every RTP packet of the `rtp.sent` runs and every `rtcp.sent` packet, as UDP frames."""
    frames: list[tuple[float, bytes]] = []
    sources: dict[str, G711Source] = {}
    for r in records:
        if r["event"] == "rtcp.sent":
            frames.append((r["t"], _udp(_split(r["src"]), _split(r["dst"]), bytes.fromhex(r["data"]))))
        elif r["event"] == "rtp.sent":
            codec = Codec(int(r["pt"]), str(r["codec"]))
            source = sources.get(r["seed"])
            if source is None:
                source = sources[r["seed"]] = G711Source(codec, random.Random(r["seed"]), int(r["ptime"]))
            src, dst = _split(r["src"]), _split(r["dst"])
            step = int(r["ptime"]) / 1000
            for i in range(int(r["count"])):
                index = int(r["index"]) + i
                packet = RtpPacket(codec.payload_type, int(r["seq"]) + i,
                                   int(r["timestamp"]) + i * source.samples_per_packet, int(r["ssrc"]),
                                   source.payload(index), marker=index == 0)
                frames.append((round(float(r["first"]) + i * step, 6), _udp(src, dst, packet.to_bytes())))
    return frames


def write_pcap(records: Iterable[dict[str, Any]], stream: BinaryIO) -> int:
    """Write the capture; returns the number of SIP messages written."""
    writer = dpkt.pcap.Writer(stream, linktype=dpkt.pcap.DLT_EN10MB)
    records = list(records)
    streams = _Streams()
    count = 0
    frames: list[tuple[float, bytes]] = []
    for t, r in sip_packets(records):
        try:
            src, dst = _split(r["src"]), _split(r["dst"])
            socket.inet_aton(src[0]), socket.inet_aton(dst[0])
        except (KeyError, ValueError, OSError):
            continue  # not an IPv4 address:port pair (should not happen on our networks)
        data = r["message"].encode("utf-8", "surrogateescape")
        if str(r.get("transport", "")).lower() == "udp":
            frames.append((t, _udp(src, dst, data)))
        else:
            frames += streams.frames(t, r["src"], r["dst"], data, r.get("conn"))
        count += 1
    frames += rtp_frames(records)
    frames.sort(key=lambda frame: frame[0])  # stable: SIP keeps its order within one instant
    for ts, frame in frames:
        writer.writepkt(frame, ts=ts)
    return count
