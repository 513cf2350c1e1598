"""The runner and `drlab run` against a fake lab (same API as simulator.lab.Lab), on the virtual clock."""

import json
import time
from pathlib import Path

import pytest

from simulator.scenario import cli, runner
from simulator.scenario.loader import parse_scenario

from .fakelab import FakeLab

REPO = Path(__file__).resolve().parents[2]

OUTAGE = """\
# teaches: the fake branch outage
name: fake-outage
lab: lab.yaml
tenant: {tenant}
settings: {{client_detection_s: 30}}
steps:
  - expect: {{client: [carol@contoso.com, dave@contoso.com], state: online}}
  - call: {{from: carol@contoso.com, to: "4255550100", expect: {{status: 200, via_sba: false, path: [carol, sip]}},
           actions: [{{after: 5, hold: }}, {{after: 10, resume: }}, {{after: 20, hangup: }}]}}
  - at: 100
    cut: wan-seattle
  - wait: {{until: {{client: [carol@contoso.com, dave@contoso.com], state: appliance, registrar: sba1}},
           timeout: 2m}}
  - call: {{from: dave@contoso.com, to: "2065550201", expect: {{via_sba: true, media: [dave, sba1]}}}}
  - sync: sba1
  - expect: {{sba: sba1.contoso.com, cache_version: 2}}
  - expect:
      route: {{user: alice@contoso.com, dial: "4255550123"}}
      usage: US and Canada
  - restart: carol@contoso.com
  - change: {{set_gateway: {{fqdn: sbc1.contoso.com, enabled: false}}}}
  - expect: {{route: {{user: alice@contoso.com, dial: "4255550123"}}, gateways: [sbc2.contoso.com, sbc-sea.contoso.com]}}
  - at: 10m
    restore: wan-seattle
  - wait: {{until: {{client: [carol@contoso.com, dave@contoso.com], state: online}}, timeout: 60}}
"""


def write(tmp_path, text, name="s.yaml"):
    (tmp_path / "lab.yaml").write_text((REPO / "examples" / "labs" / "contoso.yaml").read_text())
    path = tmp_path / name
    path.write_text(text.format(tenant=REPO / "examples" / "contoso.yaml"))
    return path


def run(path, seed=1, **kw):
    scenario = parse_scenario(Path(path).read_text(), str(path))
    return cli.execute(scenario, seed=seed, lab_factory=FakeLab.load, **kw)


def test_a_passing_outage_run_gives_verdicts_at_virtual_times_and_metrics(tmp_path):
    started = time.monotonic()
    result, records = run(write(tmp_path, OUTAGE))
    assert time.monotonic() - started < 5  # ten virtual minutes, no wall-clock waiting
    assert [s.status for s in result.steps] == ["passed"] * 13, [s.detail for s in result.steps]
    assert result.passed
    cut = result.steps[2]
    assert cut.t_virtual == pytest.approx(100.0, abs=0.01)
    assert result.steps[3].t_virtual == pytest.approx(100 + 30 + 5 + 3, abs=0.01)  # dave is last in
    assert result.metrics["detection_s"] == 30.0 and result.metrics["appliance_mode_s"] == 38.0
    assert result.metrics["recovery_s"] == 25.0
    assert "path carol → sip" in result.steps[1].detail and "hangup → 200" in result.steps[1].detail
    assert [r["event"] for r in records].count("step.passed") == 13
    lab = FakeLab.instances[-1]
    assert lab.started and lab.stopped and lab.clients["carol@contoso.com"].restarts == 1


def test_a_failing_expectation_fails_its_step_with_the_detail_and_the_run_goes_on(tmp_path):
    text = OUTAGE.replace("state: appliance, registrar: sba1}},\n           timeout: 2m",
                          "state: appliance, registrar: sba1}},\n           timeout: 20s")
    result, _ = run(write(tmp_path, text))
    step = result.steps[3]
    assert step.status == "failed" and not result.passed
    assert step.detail.startswith("not within 20 s: carol@contoso.com: expected appliance at sba1, got online")
    assert str(step.position).endswith("s.yaml:12:5")
    assert result.steps[-1].status == "passed"  # later steps still ran


def test_a_timer_override_moves_the_timeline(tmp_path):
    fast, _ = run(write(tmp_path, OUTAGE.replace("client_detection_s: 30", "client_detection_s: 10")))
    assert fast.metrics["detection_s"] == 10.0 and fast.metrics["appliance_mode_s"] == 18.0


def test_a_bad_change_fails_its_step_at_the_steps_line(tmp_path):
    text = OUTAGE.replace("fqdn: sbc1.contoso.com", "fqdn: sbc9.contoso.com")
    result, _ = run(write(tmp_path, text))
    step = result.steps[9]
    assert step.status == "failed" and "s.yaml:21:5: set_gateway" in step.detail and "sbc9" in step.detail


def test_a_role_error_fails_the_step_not_the_run(tmp_path):
    text = OUTAGE.replace("cut: wan-seattle", "cut: wan-nowhere")
    result, _ = run(write(tmp_path, text))
    assert result.steps[2].status == "failed" and "KeyError" in result.steps[2].detail


def test_same_seed_gives_byte_identical_events(tmp_path):
    path = write(tmp_path, OUTAGE)
    _, a = run(path)
    _, b = run(path)
    assert json.dumps(a) == json.dumps(b)


def test_drlab_run_writes_every_output_and_exits_by_verdict(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "default_lab_factory", lambda: FakeLab.load)
    good = write(tmp_path, OUTAGE)
    out = tmp_path / "out"
    assert cli.run(_args(good, out=str(out))) == 0
    for name in ("events.jsonl", "result.json", "junit.xml", "report.html", "capture.pcap"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "result.json").read_text())
    assert data["scenario"] == "fake-outage" and data["passed"] is True and data["seed"] == 1
    printed = capsys.readouterr().out
    assert "carol@contoso.com appliance at sba1.contoso.com" in printed and "PASSED" in printed
    bad = write(tmp_path, OUTAGE.replace("timeout: 2m", "timeout: 1s"), "bad.yaml")
    assert cli.run(_args(bad, out=str(tmp_path / "o2"))) == 1


def test_drlab_run_exits_2_on_bad_input_before_running_anything(tmp_path, capsys):
    path = write(tmp_path, OUTAGE.replace("cut: wan-seattle", "cutt: wan-seattle"))
    FakeLab.instances.clear()
    assert cli.run(_args(path)) == 2
    assert "s.yaml:11:5: unknown key 'cutt'" in capsys.readouterr().err
    assert FakeLab.instances == []


def _args(path, **kw):
    import argparse

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    argv = [str(path)] + [x for k, v in kw.items() for x in (f"--{k}", v)] + ["--quiet"]
    return p.parse_args(argv)
