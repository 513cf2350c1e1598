"""`drlab run SCENARIO --attach URL`: a scenario's steps against a lab that is already up, through
its control API, judged as a run with its own lab judges them."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.control.attach import attach_problems
from simulator.scenario.cli import execute
from simulator.scenario.loader import load_scenario
from tests.control.helpers import CONTOSO_LAB, CONTOSO_TENANT, LabThread

#: a branch outage in two minutes of lab time: the clients fall back, calls go through the SBA,
#: the restore brings everyone back (scenarios/branch-outage.yaml, shortened)
SHORT_OUTAGE = """\
name: short-outage
lab: {lab}
tenant: {tenant}
steps:
  - expect: {{client: [carol@contoso.com, dave@contoso.com], state: online}}
  - at: 30s
    cut: wan-seattle
  - wait:
      until: {{client: [carol@contoso.com, dave@contoso.com], state: appliance, registrar: sba1.contoso.com}}
      timeout: 2m
  - expect: {{client: [alice@contoso.com], state: online, registrar: sip.pstnhub.microsoft.com}}
  - call: {{from: carol@contoso.com, to: "0202", callee: dave@contoso.com, hangup_after: 5s,
           expect: {{status: 200, via_sba: true, path: [carol, sba1, dave]}}}}
  - call: {{from: "4255550199", pstn: pstn-sea, to: "2065550201", hangup_after: 5s,
           expect: {{status: 200, path: [pstn-sea, sbc-sea, sba1, carol]}}}}
  - sync: sba1
  - expect: {{client: bob@contoso.com, state: appliance}}
  - restore: wan-seattle
  - wait: {{until: {{client: [carol@contoso.com, dave@contoso.com, erin@contoso.com], state: online}}, timeout: 3m}}
"""


@pytest.fixture()
def short_outage(tmp_path: Path) -> Path:
    path = tmp_path / "short-outage.yaml"
    path.write_text(SHORT_OUTAGE.format(lab=CONTOSO_LAB, tenant=CONTOSO_TENANT), encoding="utf-8")
    return path


def verdicts(result) -> list[tuple[str, str, str]]:
    return [(step.name, step.status, step.detail.split(";")[0]) for step in result.steps]


@pytest.mark.slow
def test_an_attached_run_gives_the_verdicts_of_a_run_with_its_own_lab(short_outage: Path, lab_certs: Path) -> None:
    scenario = load_scenario(short_outage)
    own, _ = execute(scenario, seed=1, certs_dir=str(lab_certs))
    with LabThread(lab_certs) as lab:
        attached, records = execute(scenario, seed=1, attach=lab.url)
        assert lab.client.state()["links"], "the lab is still up after the attached run"
    assert [s.status for s in own.steps].count("failed") == 1  # bob is no branch user: the one planted miss
    assert verdicts(attached) == verdicts(own)
    assert attached.error == ""
    assert 0.0 <= records[0]["t"] < 1.0 and {"link.down", "link.up", "step.passed"} <= {r["event"] for r in records}
    cut = next(r for r in records if r["event"] == "link.down")
    # `at: 30s` counts from the attach; the command reaches the lab a round trip later (at pace 20,
    # 5 s of lab time is a quarter of a second)
    assert 30.0 <= cut["t"] < 35.0
    # the failover figures are measured from the lab's records before and after the cut (the lab's
    # timers run in their own phase, so the figures differ from the other run's by up to a period)
    assert attached.metrics["clients_in_appliance_mode"] == own.metrics["clients_in_appliance_mode"] > 0
    assert attached.metrics["detection_s"] > 0 and attached.metrics["recovery_s"] > 0
    assert json.loads(json.dumps(attached.addresses))["sba1"]["host"] == "sba1.contoso.com"


def test_what_only_a_lab_of_the_runs_own_can_do_is_refused_before_the_run(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"""\
name: s
lab: {CONTOSO_LAB}
tenant: {CONTOSO_TENANT}
steps:
  - restart: sbc-sea
  - call: {{from: carol@contoso.com, to: dave@contoso.com, answer_after: 2s,
           actions: [{{after: 5s, hold: true}}, {{after: 9s, hangup: true}}]}}
  - change: {{add_user: {{upn: zoe@contoso.com}}}}
""", encoding="utf-8")
    problems = attach_problems(load_scenario(path))
    assert [p.split(": ")[-1] for p in problems] == [
        "the control API restarts clients, not nodes",
        "the control API cannot set how a client answers",
        "the control API cannot hold a call",
        "a tenant change needs a lab of the run's own",
    ]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("options", "message"), [
    (["--pace", "5"], "--attach runs on the lab at the URL"),
    (["--network", "real"], "--attach runs on the lab at the URL"),
    (["--time-scale", "10"], "--time-scale needs"),
])
def test_run_attach_refuses_the_options_of_a_lab_of_its_own(short_outage: Path, options: list[str], message: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(short_outage), "--attach", "http://127.0.0.1:8765", *options]) == 2
    assert message in capsys.readouterr().err


def test_run_attach_without_a_lab_at_the_url_exits_2_with_its_outputs(
        short_outage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", str(short_outage), "--attach", f"http://127.0.0.1:{closed_port()}", "--out", str(out), "-q"]) == 2
    assert "run error: could not attach: cannot reach the lab" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert not result["passed"] and {s["status"] for s in result["steps"]} == {"skipped"}
