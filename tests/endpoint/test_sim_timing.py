"""What only the sim network can show: RFC timer schedules in exact virtual seconds, a cut link
seen by the endpoint, and the same seed giving the same event log byte for byte."""

import asyncio
import io
import time

import pytest

from simulator.endpoint import SipDialog, TransactionTimeout, TransportFailure
from simulator.net import run_sim
from tests.endpoint.helpers import pair, request, sim_lab, target


def sent_times(net, node, start):
    return [r["t"] for r in net.events.records
            if r["event"] == "sip.sent" and r["node"] == node and r["summary"].startswith(start)]


@pytest.mark.sim
async def test_blackholed_udp_invite_retransmits_on_timer_a_and_times_out_at_64_t1(lab_pki):
    started = time.perf_counter()
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "udp")
    net.link("wan-seattle").blackhole()
    tx = sbc.request(request("INVITE", sbc, "udp"), target(proxy, "udp"))
    with pytest.raises(TransactionTimeout) as caught:
        await tx.final()
    error, now = caught.value, asyncio.get_running_loop().time()
    assert time.perf_counter() - started < 5  # 32 virtual seconds, no wall-clock wait
    # §17.1.1.2: Timer A starts at T1 = 0.5 s and doubles: 0.5, 1, 2, 4, 8, 16 s apart.
    assert sent_times(net, "sbc", "INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert now == 32.0 and error.timer == "B"  # Timer B = 64*T1
    (timeout,) = net.events.select("sip.timeout", node="sbc")
    assert timeout["t"] == 32.0 and timeout["cseq"] == "1 INVITE"


@pytest.mark.sim
async def test_blackholed_udp_options_backs_off_to_t2_and_times_out_at_64_t1(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "udp")
    net.link("wan-seattle").blackhole()
    with pytest.raises(TransactionTimeout):
        await sbc.request(request("OPTIONS", sbc, "udp"), target(proxy, "udp")).final()
    now = asyncio.get_running_loop().time()
    # §17.1.2.2: Timer E doubles up to T2 = 4 s, then stays there; Timer F = 64*T1.
    assert sent_times(net, "sbc", "OPTIONS") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert now == 32.0


@pytest.mark.sim
async def test_link_down_resets_tls_and_fails_the_pending_invite(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "tls")
    closed = {"sbc": [], "proxy": []}
    sbc.on_connection_closed = lambda conn, reason: closed["sbc"].append((conn.id, reason))
    proxy.on_connection_closed = lambda conn, reason: closed["proxy"].append((conn.id, reason))
    proxy.on_request = lambda incoming: incoming.respond(180)  # rings, never answers
    ringing = asyncio.Event()
    tx = sbc.request(request("INVITE", sbc, "tls"), target(proxy, "tls"), on_provisional=lambda r: ringing.set())
    await ringing.wait()
    net.link("wan-seattle").down()
    with pytest.raises(TransportFailure) as caught:
        await tx.final()
    failure, now = caught.value, asyncio.get_running_loop().time()
    assert failure.reason == "connection.reset" and "wan-seattle" in failure.detail
    assert [c[0] for c in closed["sbc"]] == [c[0] for c in closed["proxy"]]  # the same connection
    assert "wan-seattle" in closed["sbc"][0][1]
    events = net.events.select("sip.conn.closed")
    assert {e["node"] for e in events} == {"sbc", "proxy"}
    (link_down,) = net.events.select("link.down")
    assert all(e["t"] == link_down["t"] for e in events) and now == link_down["t"]
    (error,) = net.events.select("sip.transport_error", node="sbc")
    assert error["reason"] == "connection.reset" and error["cseq"] == "1 INVITE"


@pytest.mark.sim
async def test_after_a_reset_the_next_request_opens_a_new_connection(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "tls")
    proxy.on_request = lambda incoming: incoming.respond(200)
    await sbc.request(request("OPTIONS", sbc, "tls"), target(proxy, "tls")).final()
    net.link("wan-seattle").down()
    await asyncio.sleep(0.001)  # the reset reaches both ends
    with pytest.raises(TransportFailure) as refused:
        await sbc.request(request("OPTIONS", sbc, "tls"), target(proxy, "tls")).final()
    net.link("wan-seattle").up()
    response = await sbc.request(request("OPTIONS", sbc, "tls"), target(proxy, "tls")).final()
    refused, response, opened = refused.value, response, net.events.select("sip.conn.opened", node="sbc")
    assert refused.reason == "connect.refused"
    assert response.status == 200 and len(opened) == 2


@pytest.mark.sim
async def test_uas_retransmits_2xx_over_udp_until_64_t1_then_sends_bye(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "udp")
    result = {}

    async def answer(incoming):
        if incoming.request.method == "INVITE":
            result["acked"] = await SipDialog.accept(incoming).acked()
        else:
            incoming.respond(200)

    proxy.on_request = answer
    sbc.on_request = lambda incoming: incoming.respond(200)
    # The raw API does not ACK a 2xx by itself (the dialog helper does): the ACK never comes.
    response = await sbc.request(request("INVITE", sbc, "udp"), target(proxy, "udp")).final()
    while "acked" not in result:
        await asyncio.sleep(1)
    await asyncio.sleep(1)
    acked = result["acked"]
    assert response.status == 200 and acked is None
    times = sent_times(net, "proxy", "200")
    first = times[0]
    # §13.3.1.4: T1, then doubling up to T2, until 64*T1 after the first 2xx.
    assert [round(t - first, 6) for t in times] == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    (no_ack,) = net.events.select("sip.dialog.no_ack", node="proxy")
    assert no_ack["t"] == pytest.approx(first + 32)
    assert [r["summary"].split()[0] for r in net.events.select("sip.received", node="sbc")][-1] == "BYE"


@pytest.mark.sim
async def test_uas_stops_retransmitting_2xx_when_the_ack_arrives(lab_pki):
    net = sim_lab(latency=0.4)  # the ACK needs 2 x 0.4 s: one retransmission goes out first
    sbc, proxy = await pair(net, lab_pki, "udp")
    proxy.on_request = lambda incoming: SipDialog.accept(incoming)
    _, dialog = await SipDialog.invite(sbc, request("INVITE", sbc, "udp"), target(proxy, "udp"))
    await asyncio.sleep(40)
    assert len(sent_times(net, "proxy", "200")) == 2
    # the retransmitted 2xx is ACKed again by the UAC (§13.2.2.4)
    assert len(sent_times(net, "sbc", "ACK")) == 2
    assert not net.events.select("sip.dialog.no_ack")


def exchange_log(pki, transport, seed):
    """Three calls (INVITE, 180, 200, ACK, BYE) over a lossy, jittery WAN; the event log as JSON lines."""
    async def main():
        net = sim_lab(seed=seed)
        net.link("wan-seattle").impair(jitter=0.005, loss=0.2)
        sbc, proxy = await pair(net, pki, transport, seed=seed)

        async def answer(incoming):
            if incoming.request.method == "INVITE":
                incoming.respond(180)
                await asyncio.sleep(1)
                await SipDialog.accept(incoming).acked()
            else:
                incoming.respond(200)

        proxy.on_request = answer
        for _ in range(3):
            _, dialog = await SipDialog.invite(sbc, request("INVITE", sbc, transport), target(proxy, transport))
            await dialog.request("BYE")
        out = io.StringIO()
        net.events.write_jsonl(out)
        return out.getvalue()

    return run_sim(main)


@pytest.mark.parametrize("transport", ["udp", "tls"])
def test_same_seed_gives_a_byte_identical_event_log(lab_pki, transport):
    first, second, other = (exchange_log(lab_pki, transport, seed) for seed in (7, 7, 8))
    assert first.count('"sip.received"') >= 15 and ("net.drop" in first or "net.retransmit" in first)
    assert first == second
    assert first != other
