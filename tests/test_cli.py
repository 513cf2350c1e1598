"""`drlab`: one meaning per exit status in every command, --version, and a run that stops cleanly."""

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simulator import cli

REPO = Path(__file__).resolve().parents[1]
TENANT = str(REPO / "examples" / "contoso.yaml")


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("drlab 0.")


@pytest.mark.parametrize("argv", [["--help"], ["route", "--help"], ["run", "--help"], ["certs", "--help"]])
def test_help_documents_the_exit_statuses(argv, capsys):
    with pytest.raises(SystemExit):
        cli.main(argv)
    out = capsys.readouterr().out
    assert "0  everything held / a route was found" in out and "1  a check or step failed / no route" in out
    assert "2  bad input" in out


@pytest.mark.parametrize("argv, status, says", [
    (["--user", "alice@contoso.com", "--dial", "5550199"], 0, ""),
    (["--user", "bob@contoso.com", "--dial", "+442071234567"], 1, ""),
    (["--user", "alice@contoso.com", "--dial", "abc"], 2, "--dial 'abc' is not a phone number"),
    (["--user", "alice@contoso.com", "--dial", "555-01x9"], 2, "is not a phone number"),
    (["--user", "alice@contoso.com", "--dial", ""], 2, "is not a phone number"),
    (["--user", "zed@contoso.com", "--dial", "5550199"], 2, "no user 'zed@contoso.com'"),
    (["--dial", "5550199"], 2, "--user and --dial are needed"),
])
def test_route_exit_status(argv, status, says, capsys):
    assert cli.main(["route", "--tenant", TENANT, *argv]) == status
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("dial", ["+1 (425) 555-0199", "425.555.0199", "*67", "911"])
def test_route_accepts_a_phone_number_written_with_separators(dial, capsys):
    assert cli.main(["route", "--tenant", TENANT, "--user", "alice@contoso.com", "--dial", dial]) in (0, 1)
    assert "not a phone number" not in capsys.readouterr().err


def test_run_exits_2_on_a_bad_scenario_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"lab: x\n\xff\n")
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:1: not UTF-8 text" in err and "Traceback" not in err


# -- stopping a run: Ctrl-C and a closed pipe --------------------------------------------------

LONG_WAIT = f"""\
name: interrupted
lab: {REPO / 'examples' / 'labs' / 'contoso.yaml'}
tenant: {TENANT}
steps:
  - wait: 1s
  - {{name: the long wait, wait: 7d}}
  - restore: wan-seattle
"""


def _start_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    scenario = tmp_path / "interrupted.yaml"
    scenario.write_text(LONG_WAIT)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}
    # pace 1000: the seven-day wait takes ten wall minutes, so the run is surely inside it when stopped
    proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "run", str(scenario), "--out", str(out),
                             "--pace", "1000"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    return proc, out


def _read_until(proc: subprocess.Popen, text: str) -> None:
    for line in iter(proc.stdout.readline, b""):
        if text.encode() in line:
            return
    raise AssertionError(f"the run ended before printing {text!r}: {proc.stderr.read().decode()}")


def _assert_partial_outputs(out: Path, reason: str) -> None:
    result = json.loads((out / "result.json").read_text())
    assert result["passed"] is False
    assert [(s["status"], s["detail"][:11]) for s in result["steps"]] == [
        ("passed", ""), ("skipped", "interrupted"), ("skipped", "not reached")]
    suite = ET.parse(out / "junit.xml").getroot()
    assert reason in suite.find(".//testcase[@name='run']/error").get("message")
    assert (out / "report.html").stat().st_size > 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "step.started"] == ["wait 1s", "the long wait"]


@pytest.mark.live
def test_ctrl_c_stops_the_run_and_writes_what_happened_so_far(tmp_path):
    proc, out = _start_run(tmp_path)
    _read_until(proc, "▶ the long wait")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err.decode()
    assert "Traceback" not in err.decode() and "interrupted: Ctrl-C" in err.decode()
    _assert_partial_outputs(out, "interrupted: Ctrl-C")


@pytest.mark.live
def test_a_closed_pipe_stops_the_run_without_a_traceback(tmp_path):
    proc, out = _start_run(tmp_path)
    _read_until(proc, "▶ the long wait")
    proc.stdout.close()  # as `drlab run ... | head` does once it has its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 2, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "standard output was closed" in err
    _assert_partial_outputs(out, "standard output was closed")
