"""Answered calls carry RTP through the lab as Microsoft's media model says, end to end on the sim network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.scenario import cli
from simulator.scenario.loader import load_scenario

REPO = Path(__file__).resolve().parents[2]
CONTOSO_LAB = REPO / "examples" / "labs" / "contoso.yaml"
CONTOSO_TENANT = REPO / "examples" / "contoso.yaml"

pytestmark = pytest.mark.e2e


def run(path: Path, certs: Path) -> tuple[object, list[dict]]:
    scenario = load_scenario(path)
    result, records = cli.execute(scenario, seed=scenario.seed or 1, certs_dir=str(certs))
    failed = [f"{s.name}: {s.detail}" for s in result.steps if s.status != "passed"]
    assert result.passed, result.error or "\n".join(failed)
    return result, records


def scenario_file(tmp_path: Path, steps: str, *, lab: Path = CONTOSO_LAB, tenant: Path = CONTOSO_TENANT) -> Path:
    path = tmp_path / "media.yaml"
    path.write_text(f"# media — a test\nname: media\nlab: {lab}\ntenant: {tenant}\nseed: 1\nsteps:\n{steps}")
    return path


@pytest.fixture
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "scenario-certs" / "contoso"


def test_the_call_quality_scenario_rates_the_impaired_call_poor_and_the_others_good(certs: Path) -> None:
    result, records = run(REPO / "scenarios" / "call-quality.yaml", certs)
    received = [q for call in result.calls for q in call["quality"]]
    verdicts = sorted((q["node"], q["poor"]) for q in received)
    assert verdicts == [("alice", False), ("alice", True), ("carol", False), ("pstn-hq", False), ("pstn-hq", True),
                        ("pstn-sea", False)]
    impaired = next(q for q in received if q["poor"])
    assert impaired["loss"] > 0.1 and impaired["rtt_ms"] > 500 and impaired["mos"] < 2.0
    assert "MOS" in result.steps[3].detail and "POOR" in result.steps[3].detail


def test_without_media_bypass_the_media_processor_relays_and_with_it_the_sbc_talks_to_the_client(
        tmp_path: Path, certs: Path) -> None:
    _, records = run(scenario_file(tmp_path, """\
  - call: {from: alice@contoso.com, to: "4255550199", hangup_after: 12s, expect: {media: [alice, sip]}}
  - call: {from: carol@contoso.com, to: "2065550100", hangup_after: 12s, expect: {media: [carol, sbc-sea]}}
"""), certs)
    relays = {r["node"]: r["a"].split(" ↔ ")[0] for r in records if r["event"] == "media.relayed"}
    assert sorted(relays) in (["sbc-sea", "sbc1", "sip"], ["sbc-sea", "sbc2", "sip"])
    assert relays["sip"].startswith("10.10.1.21:")  # the media processor's A side is alice's PC
    assert relays["sbc-sea"].startswith("10.20.1.21:")  # with bypass the SBC's A side is carol's PC itself


def test_a_survivable_call_through_a_gateway_without_media_bypass_has_no_media_path(
        tmp_path: Path, certs: Path) -> None:
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(CONTOSO_TENANT.read_text().replace("media_bypass: true", "media_bypass: false"))
    _, records = run(scenario_file(tmp_path, """\
  - cut: wan-seattle
  - wait: {until: {client: [carol@contoso.com], state: appliance}, timeout: 5m}
  - call: {from: carol@contoso.com, to: "2065550100", hangup_after: 12s, expect: {status: 200, via_sba: true}}
""", tenant=tenant), certs)
    [no_path] = [r for r in records if r["event"] == "media.no_path" and r["node"] == "sba1"]
    assert "no media bypass" in no_path["reason"]
    quality = {r["node"]: r for r in records if r["event"] == "media.quality"}
    assert quality["carol"]["reasons"] == ["no media received"]
    assert quality["pstn-sea"]["reasons"] == ["no media received"]


def test_early_media_from_the_pstn_flows_before_the_answer(tmp_path: Path, certs: Path) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text(re.sub(r'"2065550188": \{behaviour: answer, answer_after: 8s\}',
                          '"2065550188": {behaviour: answer, answer_after: 8s, early_media: true}',
                          CONTOSO_LAB.read_text()))
    _, records = run(scenario_file(tmp_path, """\
  - call: {from: carol@contoso.com, to: "2065550188", hangup_after: 5s, expect: {status: 200}}
""", lab=lab), certs)
    answered = next(r["t"] for r in records if r["event"] == "call.answered" and r["node"] == "carol")
    carol = [r for r in records if r["event"] == "media.started" and r["node"] == "carol"]
    assert carol and carol[0]["t"] < answered - 7  # 8 s of ringing with media
    [quality] = [r for r in records if r["event"] == "media.quality" and r["node"] == "carol"]
    assert quality["packets_received"] > 600  # 8 s of early media and 5 s of the call, at 50 a second


def test_on_hold_the_far_end_stops_sending_and_no_packet_counts_as_lost(tmp_path: Path, certs: Path) -> None:
    _, records = run(scenario_file(tmp_path, """\
  - call:
      from: carol@contoso.com
      to: "2065550100"
      actions: [{after: 5s, hold: }, {after: 10s, resume: }, {after: 15s, hangup: }]
      expect: {status: 200}
"""), certs)
    carrier = [r for r in records if r["event"] == "rtp.sent" and r["node"] == "pstn-sea"]
    assert len(carrier) == 2  # before the hold and after the resume
    gap = carrier[1]["first"] - (carrier[0]["first"] + carrier[0]["count"] * 0.02)
    assert 4.5 < gap < 5.5
    [heard] = [r for r in records if r["event"] == "media.quality" and r["node"] == "carol"]
    assert heard["loss"] == 0.0 and 450 < heard["packets_received"] < 560
