"""The thin I/O layer: one RTP session of a call on the lab's network (sim or real).

`MediaStream` binds the address and port our SDP offered (RTCP on port + 1, or on the same port
when both sides said `a=rtcp-mux`, RFC 5761), sends one packet per ptime to the address and port
the peer's SDP gave, feeds every RTP packet that arrives into `ReceiverStats` (simulator/media/
stats.py) and calls `on_packet(time)` with its arrival time (`on_expect(time, receiving)` when
it starts or stops expecting packets: roles/media_watch.py listens), and exchanges RTCP SR/RR every
RTCP_INTERVAL_S (first report after half of it, RFC 3550 §6.2) from which it computes the round
trip. Timers run on the loop's clock, so on `sim` media costs no wall time.

Events (node = the role's node):
- `rtp.sent` — a run of packets sent at a steady ptime to one destination: written when the run
  ends (the stream stops or its destination changes). It holds what rebuilds each packet (first
  sequence number, timestamp and time, count, the payload source's seed), so capture.pcap can hold
  every RTP packet at the cost of one event per run (simulator/report/pcap.py).
- `rtcp.sent` — one compound RTCP packet, its bytes in hex.
- `media.quality` — when the stream stops: the quality of what it received (simulator/media/quality.py).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.media.quality import StreamQuality, stream_quality
from simulator.media.rtcp import (
    RTCP_INTERVAL_S,
    ReceiverReport,
    ReportBlock,
    SenderReport,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
    round_trip_s,
)
from simulator.media.rtp import G711Source, RtpError, RtpPacket, is_rtcp
from simulator.media.stats import ReceiverStats
from simulator.net.base import Network
from simulator.sip.sdp import Codec


@dataclass(frozen=True)
class StreamSpec:
    """What the two session descriptions agreed for one side of a call."""

    call_id: str
    host: str  # our host name
    port: int  # the port our SDP gave (RTCP on port + 1 unless rtcp_mux)
    remote: tuple[str, int] | None  # the peer's address and port; None: nothing to send to yet
    codec: Codec
    ptime_ms: int = 20
    rtcp_mux: bool = False
    send: bool = True  # the negotiated direction lets us send
    receive: bool = True  # ... and lets the peer send to us (a media inactivity watch expects packets)
    label: str = ""  # who the stream is with, for events: "carol → pstn-sea"


def stream_seed(call_id: str, host: str, port: int) -> str:
    """The seed of a stream's SSRC and payload: the same lab seed and call give the same bytes."""
    return f"{call_id}|{host}|{port}"


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, receive: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._receive = receive

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._receive(data, addr)

    def error_received(self, exc: Exception) -> None:
        return None  # an ICMP port unreachable: RTP keeps going, the receiver's loss shows it


@dataclass
class _Run:
    """Packets sent back to back at one ptime to one destination (one `rtp.sent` event)."""

    dst: tuple[str, int]
    first_index: int
    first_sequence: int
    first_time: float
    count: int = 0


@dataclass
class _Reception:
    stats: ReceiverStats
    last_sr: tuple[int, float] | None = None  # (LSR = middle of the SR's NTP time, its arrival)


@dataclass
class StreamCounters:
    sent_packets: int = 0
    sent_octets: int = 0
    received_packets: int = 0
    rtt_s: list[float] = field(default_factory=list)


class MediaStream:
    def __init__(self, network: Network, spec: StreamSpec, log: Any, *,
                 on_packet: Callable[[float], None] | None = None,
                 on_expect: Callable[[float, bool], None] | None = None) -> None:
        self.network, self.spec, self.log = network, spec, log
        self.on_packet, self.on_expect = on_packet, on_expect
        self.receiving = False
        seed = stream_seed(spec.call_id, spec.host, spec.port)
        rng = random.Random(seed)
        self.ssrc = rng.getrandbits(32)
        self.first_sequence = rng.getrandbits(16)
        self.first_timestamp = rng.getrandbits(32)
        self._rtcp_rng = random.Random(seed + "|rtcp")
        self.seed = seed
        self.source = G711Source(spec.codec, random.Random(seed), spec.ptime_ms)
        self.remote = spec.remote
        self.sources: dict[int, _Reception] = {}
        self.counters = StreamCounters()
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._rtcp_timer: asyncio.TimerHandle | None = None
        self._index = 0
        self._start_time = 0.0
        self._last_arrival: float | None = None
        self._stopped_at: float | None = None
        self._run: _Run | None = None
        self.stopped = False

    # --- life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        spec = self.spec
        self._rtp, _ = await self.network.open_datagram(spec.host, spec.port, lambda: _Endpoint(self._datagram))
        if not spec.rtcp_mux:
            self._rtcp, _ = await self.network.open_datagram(spec.host, spec.port + 1,
                                                             lambda: _Endpoint(self._rtcp_datagram))
        loop = self.network.loop
        self._start_time = loop.time()
        self.log.info("media.started", call_id=spec.call_id, local=f"{self.local_address}:{spec.port}",
                      remote=self._remote_text, codec=spec.codec.name, ptime=spec.ptime_ms,
                      rtcp_mux=spec.rtcp_mux, stream=spec.label)
        self.set_sending(spec.send)
        self.set_receiving(spec.receive)
        self._rtcp_timer = loop.call_at(self._start_time + self._rtcp_interval() / 2, self._send_report)

    def set_remote(self, remote: tuple[str, int] | None) -> None:
        """The peer's SDP changed where media goes (an answer after early media, a re-INVITE)."""
        if remote != self.remote:
            self._end_run()
            self.remote = remote

    def set_sending(self, send: bool) -> None:
        """Send or not, as the negotiated direction says (RFC 3264 §8.4 hold): packets keep their
        place on the ptime grid, sequence numbers stay consecutive, the timestamp jumps."""
        if self.stopped or send == (self._timer is not None):
            return
        if not send:
            assert self._timer is not None
            self._timer.cancel()
            self._timer = None
            self._end_run()
            return
        loop = self.network.loop
        ptime = self.spec.ptime_ms / 1000
        self._index = max(self._index, math.ceil((loop.time() - self._start_time) / ptime - 1e-9))
        self._timer = loop.call_at(self._start_time + self._index * ptime, self._send_next)

    def set_receiving(self, receive: bool) -> None:
        """Whether the negotiated direction has the peer send to us: the watch on the call's media
        expects packets from now, or none (on hold)."""
        if self.stopped or receive == self.receiving:
            return
        self.receiving = receive
        if self.on_expect is not None:
            self.on_expect(self.network.loop.time(), receive)

    def stop(self) -> StreamQuality:
        """Stop sending and receiving; logs and returns the quality of what arrived."""
        if self._stopped_at is None:
            self._stopped_at = self.network.loop.time()
        quality = self.quality()
        if self.stopped:
            return quality
        self.stopped = True
        for timer in (self._timer, self._rtcp_timer):
            if timer is not None:
                timer.cancel()
        self._end_run()
        for transport in (self._rtp, self._rtcp):
            if transport is not None:
                transport.close()
        self.log.info("media.quality", call_id=self.spec.call_id, stream=self.spec.label,
                      received=self.counters.received_packets, sent=self.counters.sent_packets,
                      **quality.as_fields())
        return quality

    # --- sending ----------------------------------------------------------------------------
    @property
    def local_address(self) -> str:
        return self.network.resolve(self.spec.host)

    @property
    def _remote_text(self) -> str | None:
        return f"{self.remote[0]}:{self.remote[1]}" if self.remote else None

    def _send_next(self) -> None:
        index = self._index
        self._index += 1
        ptime = self.spec.ptime_ms / 1000
        self._timer = self.network.loop.call_at(self._start_time + self._index * ptime, self._send_next)
        if self.remote is None or self._rtp is None:
            return
        sequence = (self.first_sequence + self.counters.sent_packets) & 0xFFFF
        packet = RtpPacket(self.spec.codec.payload_type, sequence,
                           self.first_timestamp + index * self.source.samples_per_packet, self.ssrc,
                           self.source.payload(index), marker=index == 0)
        data = packet.to_bytes()
        if self._run is None or self._run.dst != self.remote or self._run.first_index + self._run.count != index:
            self._end_run()
            self._run = _Run(self.remote, index, sequence, self.network.loop.time())
        self._run.count += 1
        self._rtp.sendto(data, self.remote)
        self.counters.sent_packets += 1
        self.counters.sent_octets += len(packet.payload)

    def _end_run(self) -> None:
        run, self._run = self._run, None
        if run is None or not run.count:
            return
        self.log.info("rtp.sent", call_id=self.spec.call_id, src=f"{self.local_address}:{self.spec.port}",
                      dst=f"{run.dst[0]}:{run.dst[1]}", codec=self.spec.codec.name, pt=self.spec.codec.payload_type,
                      ssrc=self.ssrc, seed=self.seed, ptime=self.spec.ptime_ms,
                      seq=run.first_sequence, index=run.first_index,
                      timestamp=(self.first_timestamp + run.first_index * self.source.samples_per_packet) & 0xFFFFFFFF,
                      first=run.first_time, count=run.count)

    # --- receiving --------------------------------------------------------------------------
    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.spec.rtcp_mux and is_rtcp(data):
            self._rtcp_datagram(data, addr)
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return  # not RTP: a receiver ignores it (RFC 3550 A.1)
        now = self._last_arrival = self.network.loop.time()
        reception = self.sources.get(packet.ssrc)
        if reception is None:
            reception = self.sources[packet.ssrc] = _Reception(ReceiverStats(self.spec.codec.clock_rate))
        if reception.stats.received(packet.sequence, packet.timestamp, now):
            self.counters.received_packets += 1
        if self.on_packet is not None:
            self.on_packet(now)  # every RTP packet is a sign of life, counted or not

    def _rtcp_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reports = parse_compound(data)
        except RtpError:
            return
        now = self.network.loop.time()
        for report in reports:
            if isinstance(report, SenderReport) and report.ssrc in self.sources:
                self.sources[report.ssrc].last_sr = (ntp_middle(report.ntp), now)
            for block in report.blocks:
                if block.ssrc == self.ssrc:
                    rtt = round_trip_s(ntp_timestamp(now), block.lsr, block.dlsr)
                    if rtt is not None:
                        self.counters.rtt_s.append(rtt)

    # --- RTCP -------------------------------------------------------------------------------
    def _rtcp_interval(self) -> float:
        # RFC 3550 §6.3.1: randomized over [0.5, 1.5] times the interval, against synchronization
        return RTCP_INTERVAL_S * self._rtcp_rng.uniform(0.5, 1.5)

    def _send_report(self) -> None:
        loop = self.network.loop
        now = loop.time()
        self._rtcp_timer = loop.call_at(now + self._rtcp_interval(), self._send_report)
        if self.remote is None:
            return
        blocks = []
        for ssrc, reception in list(self.sources.items())[:31]:
            figures = reception.stats.report_block()
            lsr, dlsr = 0, 0
            if reception.last_sr is not None:
                lsr = reception.last_sr[0]
                dlsr = int((now - reception.last_sr[1]) * 65536)
            blocks.append(ReportBlock(ssrc, figures.fraction_lost, figures.cumulative_lost,
                                      figures.highest_sequence, figures.jitter, lsr, dlsr))
        if self.counters.sent_packets:
            elapsed = int((now - self._start_time) * self.spec.codec.clock_rate)
            report: SenderReport | ReceiverReport = SenderReport(
                self.ssrc, ntp_timestamp(now), self.first_timestamp + elapsed, self.counters.sent_packets,
                self.counters.sent_octets, tuple(blocks))
        else:
            report = ReceiverReport(self.ssrc, tuple(blocks))
        data = report.to_bytes()
        dst = self.remote if self.spec.rtcp_mux else (self.remote[0], self.remote[1] + 1)
        transport = self._rtp if self.spec.rtcp_mux else self._rtcp
        if transport is None:
            return
        transport.sendto(data, dst)
        src_port = self.spec.port if self.spec.rtcp_mux else self.spec.port + 1
        self.log.info("rtcp.sent", call_id=self.spec.call_id, src=f"{self.local_address}:{src_port}",
                      dst=f"{dst[0]}:{dst[1]}", data=data.hex())

    # --- figures ----------------------------------------------------------------------------
    def quality(self) -> StreamQuality:
        """The quality of what arrived from the peer (its main source: the one that sent most)."""
        rtt = self.counters.rtt_s
        rtt_ms = 1000 * sum(rtt) / len(rtt) if rtt else None
        end = self._stopped_at if self._stopped_at is not None else self.network.loop.time()
        silent_s = max(0.0, end - (self._last_arrival if self._last_arrival is not None else self._start_time))
        if not self.sources:
            return stream_quality(0, 0, 0.0, rtt_ms, self.spec.ptime_ms, silent_s)
        stats = max((r.stats for r in self.sources.values()), key=lambda s: s.received_count)
        return stream_quality(stats.expected, stats.received_count, stats.jitter_ms, rtt_ms, self.spec.ptime_ms,
                              silent_s)

    def stats(self) -> dict[str, Any]:
        """Counters and the received quality, for tests and result.json."""
        return {"sent": self.counters.sent_packets, "received": self.counters.received_packets,
                **self.quality().as_fields()}
