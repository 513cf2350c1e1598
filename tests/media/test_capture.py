"""capture.pcap holds the RTP and RTCP a run sent, rebuilt byte for byte from the compact events."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess

import dpkt
import pytest

from simulator.events import EventLog
from simulator.media.stream import MediaStream, StreamSpec
from simulator.net.clock import run_sim
from simulator.net.sim import SimNetwork
from simulator.report.pcap import write_pcap
from simulator.sip.sdp import PCMA


def media_events(seconds: float = 6.0) -> tuple[list[dict], list[bytes]]:
    """Two streams for `seconds`; returns the event records and every RTP packet as sent."""
    sent: list[bytes] = []

    async def run() -> list[dict]:
        net = SimNetwork(seed=3, events=EventLog(strict=True))
        net.add_link("wan", "left", "right", latency=0.01)
        net.add_host("a.example", site="left", address="10.0.0.1")
        net.add_host("b.example", site="right", address="10.0.0.2")
        log = net.events.logger(node="test")
        a = MediaStream(net, StreamSpec("c", "a.example", 4000, ("10.0.0.2", 5000), PCMA), log)
        b = MediaStream(net, StreamSpec("c", "b.example", 5000, ("10.0.0.1", 4000), PCMA), log)
        await a.start()
        await b.start()
        transport = a._rtp
        original = transport.sendto

        def recording(data: bytes, addr: tuple[str, int] | None = None) -> None:
            sent.append(bytes(data))
            original(data, addr)

        transport.sendto = recording  # type: ignore[method-assign]
        await asyncio.sleep(seconds)
        a.stop(), b.stop()
        return [dict(r) for r in net.events.select("")]

    return run_sim(run), sent


def udp_payloads(pcap: bytes, src_port: int) -> list[bytes]:
    out = []
    for _ts, frame in dpkt.pcap.Reader(io.BytesIO(pcap)):
        ip = dpkt.ethernet.Ethernet(frame).data
        if isinstance(ip.data, dpkt.udp.UDP) and ip.data.sport == src_port:
            out.append(bytes(ip.data.data))
    return out


def test_every_rtp_packet_is_in_the_capture_as_it_was_sent() -> None:
    records, sent = media_events()
    buffer = io.BytesIO()
    write_pcap(records, buffer)
    captured = udp_payloads(buffer.getvalue(), 4000)
    assert len(captured) == 301 and captured[-len(sent):] == sent  # recording began after the first packets
    rtcp = udp_payloads(buffer.getvalue(), 4001)
    assert rtcp and all(p[1] in (200, 201) for p in rtcp)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decodes_the_capture_as_rtp(tmp_path) -> None:
    records, _ = media_events(2.0)
    path = tmp_path / "capture.pcap"
    with open(path, "wb") as f:
        write_pcap(records, f)
    out = subprocess.run(["tshark", "-r", str(path), "-d", "udp.port==4000,rtp", "-d", "udp.port==5000,rtp",
                          "-Y", "rtp", "-T", "fields", "-e", "rtp.p_type", "-e", "rtp.seq"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split("\n")
    rows = [line.split("\t") for line in out if line]
    assert len(rows) == 2 * 101 and {pt for pt, _ in rows} == {"8"}
