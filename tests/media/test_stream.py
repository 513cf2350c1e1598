"""MediaStream on the sim network: RTP both ways at ptime, RTCP round trips, quality from what arrived."""

from __future__ import annotations

import asyncio

import pytest

from simulator.events import EventLog
from simulator.media.quality import audio_flow
from simulator.media.session import RoleMedia
from simulator.media.stream import MediaStream, StreamSpec
from simulator.net.real import RealNetwork
from simulator.net.sim import SimNetwork
from simulator.sip.sdp import PCMU, SessionDescription, make_answer, make_offer

A, B = "a.example", "b.example"


def two_sites(*, latency: float = 0.025, jitter: float = 0.0, loss: float = 0.0) -> SimNetwork:
    net = SimNetwork(seed=7, events=EventLog(strict=True))
    net.add_link("wan", "left", "right", latency=latency, jitter=jitter, loss=loss)
    net.add_host(A, site="left", address="10.0.0.1")
    net.add_host(B, site="right", address="10.0.0.2")
    return net


async def call_for(net: SimNetwork, seconds: float, *, mux: bool = False, b_sends: bool = True
                   ) -> tuple[MediaStream, MediaStream, list[float]]:
    arrivals: list[float] = []
    log = net.events.logger(node="test")
    a = MediaStream(net, StreamSpec("c1", A, 4000, ("10.0.0.2", 5000), PCMU, rtcp_mux=mux, label="a → b"), log,
                    on_packet=arrivals.append)
    b = MediaStream(net, StreamSpec("c1", B, 5000, ("10.0.0.1", 4000), PCMU, rtcp_mux=mux, send=b_sends,
                                    label="b → a"), log)
    await a.start()
    await b.start()
    await asyncio.sleep(seconds)
    return a, b, arrivals


@pytest.mark.sim
@pytest.mark.parametrize("mux", [False, True])
async def test_a_clean_link_carries_every_packet_and_rtcp_measures_the_round_trip(mux: bool) -> None:
    net = two_sites()
    a, b, arrivals = await call_for(net, 12.0, mux=mux)
    qa, qb = a.stop(), b.stop()
    # 601 sent in 12 s (one at 0 s); 2 still in flight; the first one is the source's probation (RFC 3550 A.1)
    assert (a.counters.sent_packets, b.counters.received_packets) == (601, 598)
    assert qb.loss == 0.0 and qb.jitter_ms == 0.0
    assert len(arrivals) == a.counters.received_packets + 1 and arrivals[0] == pytest.approx(0.025)
    assert qa.rtt_ms == pytest.approx(50.0, abs=0.1) and qb.rtt_ms == pytest.approx(50.0, abs=0.1)
    assert (qa.poor, qb.poor) == (False, False) and qb.mos == pytest.approx(4.41, abs=0.01)
    assert net.events.select("media.quality")[0]["stream"] == "a → b"


@pytest.mark.sim
async def test_an_impaired_link_makes_the_stream_poor() -> None:
    net = two_sites(latency=0.2, jitter=0.04, loss=0.12)
    a, b, _ = await call_for(net, 30.0)
    quality = b.stop()
    a.stop()
    assert 0.08 < quality.loss < 0.16 and quality.poor is True
    assert quality.jitter_ms > 5 and quality.rtt_ms is not None and quality.rtt_ms > 400
    assert quality.mos < 3.6


@pytest.mark.sim
async def test_one_way_audio_shows_as_no_media_on_the_silent_side() -> None:
    net = two_sites()
    a, b, arrivals = await call_for(net, 12.0, b_sends=False)
    assert arrivals == [] and a.stop().reasons == ("no media received",)
    assert b.stop().poor is False


@pytest.mark.sim
async def test_packets_leave_at_ptime_and_each_run_is_one_event() -> None:
    net = two_sites()
    a, b, _ = await call_for(net, 1.0)
    a.set_remote(("10.0.0.2", 5002))  # the peer's SDP moved the stream
    await asyncio.sleep(1.0)
    a.stop(), b.stop()
    runs = [e for e in net.events.select("rtp.sent") if e["src"] == "10.0.0.1:4000"]
    assert [(r["dst"], r["index"], r["count"]) for r in runs] == [("10.0.0.2:5000", 0, 51), ("10.0.0.2:5002", 51, 50)]  # 0 s to 2 s inclusive
    assert runs[1]["first"] == pytest.approx(1.02)


@pytest.mark.real
async def test_media_flows_over_loopback_sockets_on_the_real_network() -> None:
    net = RealNetwork(events=EventLog(strict=True))
    net.add_host(A)
    net.add_host(B)
    log = net.events.logger(node="test")
    a = MediaStream(net, StreamSpec("c1", A, 4000, (net.resolve(B), 5000), PCMU, rtcp_mux=True), log)
    b = MediaStream(net, StreamSpec("c1", B, 5000, (net.resolve(A), 4000), PCMU, rtcp_mux=True), log)
    await a.start()
    await b.start()
    await asyncio.sleep(1.5)  # a second and a half of media, at its real pace
    qa, qb = a.stop(), b.stop()
    await net.close()
    assert a.counters.received_packets > 50 and b.counters.received_packets > 50
    assert qa.loss == qb.loss == 0.0


@pytest.mark.sim
async def test_a_stream_on_hold_stops_sending_and_resumes_in_sequence() -> None:
    net = two_sites()
    a, b, _ = await call_for(net, 1.0)
    a.set_sending(False)
    await asyncio.sleep(1.0)
    a.set_sending(True)
    await asyncio.sleep(1.0)
    quality = b.stop()
    a.stop()
    runs = [e for e in net.events.select("rtp.sent") if e["src"] == "10.0.0.1:4000"]
    assert [(r["index"], r["count"]) for r in runs] == [(0, 51), (100, 51)]  # silent from 1.02 s to 1.98 s
    assert runs[1]["seq"] == (runs[0]["seq"] + 51) % 65536  # sequence numbers carry on
    assert quality.loss == 0.0


@pytest.mark.sim
async def test_a_relay_forwards_both_ways_and_reports_each_packet_to_the_watchdog() -> None:
    net = two_sites()
    net.add_host("relay.example", site="right", address="10.0.0.3")
    media = RoleMedia(net, "relay.example", net.events.logger(node="relay"), first_port=6000)
    seen: list[str] = []
    expecting: list[tuple[str, bool]] = []
    relay = media.anchor("c1", on_packet=lambda side, _t: seen.append(side),
                         on_expect=lambda side, _t, receiving: expecting.append((side, receiving)))
    offer = make_offer("10.0.0.1", 4000, [PCMU])
    relayed_offer = SessionDescription.parse(relay.rewrite(offer.to_bytes(), "b"))
    answer = make_answer(relayed_offer, "10.0.0.2", 5000, [PCMU])
    relayed_answer = SessionDescription.parse(relay.rewrite(answer.to_bytes(), "a"))
    assert (relayed_offer.connection.address, relayed_answer.connection.address) == ("10.0.0.3", "10.0.0.3")
    assert expecting == [("a", True), ("b", True)]  # once the answer is relayed, both parties send
    log = net.events.logger(node="test")
    a = MediaStream(net, StreamSpec("c1", A, 4000, ("10.0.0.3", relayed_answer.audio.port), PCMU), log)
    b = MediaStream(net, StreamSpec("c1", B, 5000, ("10.0.0.3", relayed_offer.audio.port), PCMU), log)
    await a.start()
    await b.start()
    await asyncio.sleep(2.0)
    assert a.counters.received_packets > 90 and b.counters.received_packets > 90
    assert seen.count("a") >= b.counters.received_packets and seen.count("b") >= a.counters.received_packets
    media.stop("c1")
    a.stop(), b.stop()


@pytest.mark.sim
async def test_a_one_way_loss_silences_one_direction_and_its_receiver_says_for_how_long() -> None:
    net = two_sites()
    a, b, _ = await call_for(net, 5.0)
    net.link("wan").impair(loss=1.0, toward="left")  # what b sends to a is lost from now on
    await asyncio.sleep(10.0)
    deaf, hearing = a.stop(), b.stop()
    assert deaf.loss == 0.0 and deaf.silent_s == pytest.approx(10.0, abs=0.05)  # RFC 3550 sees no loss...
    assert hearing.silent_s < 0.05 and audio_flow([deaf.as_fields(), hearing.as_fields()]) == "one-way"
