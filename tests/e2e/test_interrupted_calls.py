"""Calls a cut interrupts: each node notices as a real one would, and every call is accounted for.

A cut resets the connections under a call; a node whose leg cannot re-establish its path counts
media silence from then and, after media_inactivity_timeout_s, ends the call on its own side
(roles/media_watch.py). A BYE that cannot be delivered is a failure, never a 200.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from simulator.roles.cdr import CallPath
from simulator.scenario import cli
from simulator.scenario.loader import load_scenario
from tests.e2e.helpers import events, run_contoso, wait_until

pytestmark = pytest.mark.e2e

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def run_scenario(name: str, seed: int, certs: Path) -> tuple[object, list[dict]]:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    result, records = cli.execute(scenario, seed=seed, certs_dir=str(certs))
    failed = [f"{s.name}: {s.detail}" for s in result.steps if s.status != "passed"]
    assert result.passed, result.error or "\n".join(failed)
    return result, records


def test_a_cut_call_ends_on_media_silence_at_every_node_that_can_still_act(lab_certs) -> None:
    async def scenario(lab) -> None:
        loop = asyncio.get_running_loop()
        carol = lab.client("carol@contoso.com")
        call = await carol.place_call("2065550100")
        assert call.status == 200
        far = lab.node("pstn-sea").calls_to("2065550100")[-1]
        cut_at = loop.time()
        lab.link("wan-seattle").down()
        timeout = lab.settings.media_inactivity_timeout_s
        assert await wait_until(lambda: far.state == "ended", timeout + 5)
        assert (call.state, call.end_reason, call.ended_by) == ("ended", "media_timeout", "self")
        for node in ("sip", "sbc-sea", "carol"):
            [ended] = [e for e in events(lab, "call.ended", node=node) if e["t"] > cut_at]
            assert ended["end_reason"] == "media_timeout" and ended["ended_by"] == "self", node
            assert ended["t"] - cut_at == pytest.approx(timeout, abs=0.1), node
        # the SBC's BYE reaches the carrier over the branch trunk; the proxy's cannot cross the cut
        assert far.ended_by == "peer" and far.end_reason == "normal"
        assert len([e for e in events(lab, "call.bye_failed", node="sip") if e["t"] > cut_at]) == 2
        [proxy_cdr] = lab.node("sip").cloud.cdrs.by_path(CallPath.CLOUD)
        assert proxy_cdr.end_reason == "media_timeout" and proxy_cdr.ended_by == "self"
        [sbc_cdr] = lab.node("sbc-sea").cdrs
        assert sbc_cdr.end_reason == "media_timeout" and sbc_cdr.ended_by == "self"
    run_contoso(lab_certs, scenario)


def test_a_hangup_whose_bye_cannot_be_delivered_is_a_failure_and_ends_the_call_here(lab_certs) -> None:
    async def scenario(lab) -> None:
        carol = lab.client("carol@contoso.com")
        call = await carol.place_call("2065550100")
        lab.link("wan-seattle").down()
        await asyncio.sleep(5)  # well inside the media timeout: the call is still up everywhere
        assert await call.hangup() is None
        assert (call.state, call.end_reason) == ("ended", "network_failure")
        assert call.reason.startswith("BYE failed: ")
        [ended] = events(lab, "call.ended", node="carol")
        assert ended["end_reason"] == "network_failure" and ended["status"] == 200  # the INVITE's status
    run_contoso(lab_certs, scenario)


def test_the_scenario_step_shows_a_failed_hangup(lab_certs, tmp_path) -> None:
    lab = (SCENARIOS.parent / "examples" / "labs" / "contoso.yaml").resolve()
    tenant = (SCENARIOS.parent / "examples" / "contoso.yaml").resolve()
    path = tmp_path / "hangup-across-a-cut.yaml"
    path.write_text(f"""name: hangup-across-a-cut
lab: {lab}
tenant: {tenant}
steps:
  - call: {{from: carol@contoso.com, to: "2065550100", hangup_after: 20s, background: true}}
  - at: 10s
    cut: wan-seattle
""")
    result, _ = cli.execute(load_scenario(path), seed=1, certs_dir=str(lab_certs))
    step = result.steps[0]
    assert step.status == "failed"
    assert "hangup failed: BYE failed: " in step.detail and "ended here only" in step.detail
    [call] = result.calls
    assert call["end_reason"] == "network_failure" and call["ended_by"] == "carol"


def test_a_client_on_a_cut_call_moves_to_the_sba_and_back_like_an_idle_one(lab_certs) -> None:
    result, records = run_scenario("call-cut-by-outage", 1, lab_certs)
    entered = {r["user"]: r["t"] for r in records if r["event"] == "client.state" and r["state"] == "appliance"}
    assert entered["carol@contoso.com"] == entered["dave@contoso.com"]
    back = {r["user"]: r["t"] for r in records if r["event"] == "client.state" and r["state"] == "online"
            and r["t"] > 600}
    assert back["carol@contoso.com"] == back["dave@contoso.com"]
    assert result.metrics["recovery_s"] < 15  # client_cloud_probe_interval_s, not the dead call
    [call] = result.calls
    assert call["path"] == ["carol", "sip", "sbc-sea", "pstn-sea"]
    assert call["end_reason"] == "media_timeout" and call["quality"]  # media flowed until the cut
    assert {r["node"]: r["end_reason"] for r in call["records"]} == {
        "carol": "media_timeout", "sip": "media_timeout", "sbc-sea": "media_timeout", "pstn-sea": "normal"}


def test_a_client_still_on_a_call_at_the_restore_says_why_it_waits(lab_certs) -> None:
    async def scenario(lab) -> None:
        carol = lab.client("carol@contoso.com")
        await lab.client("carol@contoso.com").wait_state("online")
        lab.link("wan-seattle").down()
        await carol.wait_state("appliance", timeout=60)
        call = await carol.place_call("2065550100")  # through the SBA
        assert call.via_sba and call.status == 200
        lab.link("wan-seattle").up()
        assert await wait_until(lambda: events(lab, "client.return_deferred", node="carol"), 30)
        [deferred] = events(lab, "client.return_deferred", node="carol")
        assert call.call_id in deferred["reason"]
        await call.hangup()
        await carol.wait_state("online", timeout=30)
    run_contoso(lab_certs, scenario)


def test_gateway_sessions_of_cut_calls_are_released(lab_certs) -> None:
    result, records = run_scenario("sessions-after-cut", 1, lab_certs)
    statuses = [c["records"][0]["status"] for c in result.calls]
    assert statuses == [200, 200, 503, 200]
    [normal] = [r for r in records if r["event"] == "gateway.sessions_normal"]
    assert normal["concurrent"] == 1  # the alert cleared when the first cut call let go


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_call_across_a_cut_has_exactly_one_record_at_every_node_that_handled_it(seed, lab_certs) -> None:
    result, _ = run_scenario("calls-across-a-cut", seed, lab_certs)
    assert len(result.calls) == 18
    assert Counter(c["end_reason"] for c in result.calls) == {"media_timeout": 9, "normal": 9}
    for call in result.calls:
        per_node = Counter(r["node"] for r in call["records"])
        assert set(per_node.values()) == {1}, (call["id"], per_node)
        assert all(r["ended"] is not None and r["end_reason"] for r in call["records"]), call["id"]
        assert call["path"][0] == call["parties"]["from"] and set(call["path"]) <= set(per_node)


def test_a_path_that_silently_drops_packets_ends_the_call_too_and_frees_its_session(lab_certs) -> None:
    """A blackholed WAN resets no connection: the failed keepalives (client detection, the SBC's and
    the proxy's OPTIONS) make each node check its call's path, and the lost path ends it. carol's
    media stays in the branch (media bypass) until her client gives up; then the carrier, hearing
    nothing through the SBC, ends it on media silence, and its BYE ends the SBC's side."""
    async def scenario(lab) -> None:
        sessions = lab.node("sip").cloud.sessions.active
        call = await lab.client("carol@contoso.com").place_call("2065550100")
        far = lab.node("pstn-sea").calls_to("2065550100")[-1]
        assert sessions.get("sbc-sea.contoso.com") == 1
        lab.link("wan-seattle").blackhole()
        assert await wait_until(lambda: far.state == "ended" and call.state == "ended", 5 * 60)
        assert await wait_until(lambda: len(events(lab, "call.ended")) == 4, 5 * 60)
        assert sessions.get("sbc-sea.contoso.com") == 0
        ended = {e["node"]: e["end_reason"] for e in events(lab, "call.ended")}
        assert ended == {"carol": "media_timeout", "sip": "media_timeout", "sbc-sea": "normal",
                         "pstn-sea": "media_timeout"}
        [carol] = events(lab, "call.ended", node="carol")
        [far_end] = events(lab, "call.media_timeout", node="pstn-sea")
        assert far_end["t"] - carol["t"] == pytest.approx(lab.settings.media_inactivity_timeout_s, abs=0.1)
    run_contoso(lab_certs, scenario)


def test_the_sba_and_the_sbc_end_a_survivable_call_whose_client_vanished(lab_certs) -> None:
    """A client restarted mid-call sends no BYE: its connection to the SBA closes and cannot be
    re-established, and its media to the SBC stops (media bypass: the SBC relays it). Both notice
    within the same half-minute of silence and end the call, and so does the carrier."""
    async def scenario(lab) -> None:
        loop = asyncio.get_running_loop()
        carol = lab.client("carol@contoso.com")
        lab.link("wan-seattle").down()
        await carol.wait_state("appliance", timeout=60)
        call = await carol.place_call("2065550100")
        assert call.via_sba and call.status == 200
        far = lab.node("pstn-sea").calls_to("2065550100")[-1]
        await carol.restart()
        gone_at = loop.time()
        assert call.end_reason == "restarted"
        timeout = lab.settings.media_inactivity_timeout_s
        assert await wait_until(lambda: far.state == "ended" and events(lab, "call.ended", node="sba1"), timeout + 5)
        [sbc] = [e for e in events(lab, "call.media_timeout", node="sbc-sea") if e["t"] > gone_at]
        assert (sbc["leg"], sbc["cause"]) == ("teams", "no media")
        assert sbc["t"] - gone_at == pytest.approx(timeout, abs=0.1)
        [sba] = events(lab, "call.ended", node="sba1")
        assert sba["t"] - gone_at == pytest.approx(timeout, abs=0.5)
        [cdr] = lab.node("sba1").cdrs.pending.values()
        assert cdr.end_reason == sba["end_reason"]
        # the carrier hears the SBC's silence too: its own timeout and the SBC's BYE come together
        assert far.ended_at - gone_at == pytest.approx(timeout, abs=0.1)
    run_contoso(lab_certs, scenario)


@pytest.mark.parametrize(("node", "ends"), [
    # carol's media goes to the SBC (media bypass): the restarted SBC relays none, so carol and the
    # carrier hear silence; carol's BYE ends the proxy's side
    ("sbc-sea", {"carol": "media_timeout", "sip": "normal", "pstn-sea": "media_timeout"}),
    # the media never touched the proxy: the SBC and carol lose their signalling path to it
    ("sip", {"carol": "media_timeout", "sbc-sea": "media_timeout", "pstn-sea": "normal"}),
])
def test_a_node_restarted_mid_call_records_it_and_the_others_end_on_silence(node, ends, lab_certs) -> None:
    async def scenario(lab) -> None:
        loop = asyncio.get_running_loop()
        call = await lab.client("carol@contoso.com").place_call("2065550100")
        assert call.status == 200
        await lab.node(node).restart()
        restarted_at = loop.time()
        [ended] = events(lab, "call.ended", node=node)
        assert (ended["end_reason"], ended["ended_by"], ended["t"]) == ("restarted", "self", restarted_at)
        assert await wait_until(lambda: len(events(lab, "call.ended")) == 4, lab.settings.media_inactivity_timeout_s + 5)
        assert {e["node"]: e["end_reason"] for e in events(lab, "call.ended") if e["node"] != node} == ends
        assert lab.node("sip").cloud.sessions.active.get("sbc-sea.contoso.com") == 0
    run_contoso(lab_certs, scenario)


def test_a_link_that_loses_one_direction_gives_one_way_audio_and_the_side_that_hears_nothing_ends_it(lab_certs) -> None:
    result, _ = run_scenario("one-way-audio", 1, lab_certs)
    assert [c["audio"] for c in result.calls] == ["two-way", "one-way", "one-way"]
    cut_short = result.calls[-1]
    assert {r["node"]: r["end_reason"] for r in cut_short["records"]} == {
        "carol": "media_timeout", "sip": "normal", "sbc-sea": "media_timeout", "pstn-sea": "normal"}
    silent = {q["node"]: q["silent_s"] for q in cut_short["quality"]}  # each direction's own figures
    assert silent["carol"] == pytest.approx(30.0, abs=0.1) and silent["pstn-sea"] < 0.1


def test_a_blackholed_link_ends_its_calls_on_media_silence_30_s_after_the_last_packet(lab_certs) -> None:
    """A blackhole resets nothing: each node that stops hearing RTP ends the call after the media
    inactivity timeout, before any keepalive or reset could tell it, and every node has its record."""
    result, records = run_scenario("call-cut-by-blackhole", 1, lab_certs)
    cuts = [r["t"] for r in records if r["event"] == "link.blackhole"]
    timeout = 30.0  # media_inactivity_timeout_s, the scenario's default
    expected = {  # the nodes that hear nothing end it themselves (alice's HQ SBC: sbc1 or sbc2)
        "carol": ["media_timeout", "normal", "media_timeout", "media_timeout"],
        "alice": ["media_timeout", "media_timeout", "media_timeout", "media_timeout"],
    }
    for call, cut in zip(result.calls, cuts, strict=True):
        ends = {r["node"]: r["end_reason"] for r in call["records"]}
        assert ends == dict(zip(call["path"], expected[call["parties"]["from"]], strict=True)), ends
        for record in call["records"]:
            if record["end_reason"] == "media_timeout":  # 30 s after the last packet before the cut
                assert record["ended"] - cut == pytest.approx(timeout, abs=0.1), record
        assert call["audio"] == "none"
    # the silent media told every node first: no lost signalling path was the cause
    assert {r["cause"] for r in records if r["event"] == "call.media_timeout"} == {"no media"}


@pytest.mark.parametrize("caller, number", [
    ("carol@contoso.com", "2065550100"),  # media bypass: carol ↔ sbc-sea ↔ carrier
    ("alice@contoso.com", "4255550199"),  # through the media processor: alice ↔ sip ↔ HQ SBC ↔ carrier
])
def test_a_call_whose_media_flows_is_never_ended_by_the_watchdog_even_on_a_long_hold(caller, number, lab_certs) -> None:
    async def scenario(lab) -> None:
        timeout = lab.settings.media_inactivity_timeout_s
        call = await lab.client(caller).place_call(number)
        await asyncio.sleep(timeout + 10)
        assert await call.hold() == 200
        await asyncio.sleep(timeout + 10)  # the held party sends nothing: no node expects its media
        assert await call.resume() == 200
        await asyncio.sleep(timeout + 10)
        assert await call.hangup() == 200
        assert await wait_until(lambda: len(events(lab, "call.ended")) == 4, 5)
        assert events(lab, "call.media_timeout") == []
        assert {e["end_reason"] for e in events(lab, "call.ended")} == {"normal"}
    run_contoso(lab_certs, scenario)
