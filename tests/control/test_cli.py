"""`drlab ctl` and `drlab lab up|down` as a person or a script runs them: separate processes,
exit codes 0 (done) / 1 (the lab refused) / 2 (bad input, no lab), messages without tracebacks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.cli import main
from tests.control.helpers import CONTOSO_LAB, CONTOSO_TENANT, ROOT, LabThread, module_fixtures

pytestmark = pytest.mark.live

certs, live = module_fixtures()

DRLAB = [sys.executable, "-m", "simulator.cli"]
PROCESS_LIMIT_S = 60


def drlab(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DRLAB, *argv], capture_output=True, text=True, timeout=PROCESS_LIMIT_S, cwd=ROOT)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CTL_CASES = [
    (["state"], 0, "client:   carol@contoso.com online at sip.pstnhub.microsoft.com"),
    (["cut", "trunk-hq"], 0, "link trunk-hq down"),
    (["restore", "trunk-hq"], 0, "link trunk-hq up"),
    (["impair", "trunk-hq", "--latency", "2ms"], 0, "link trunk-hq up: latency 2 ms"),
    (["addresses"], 0, "tls 10.20.0.12:5061"),
    (["cut", "nope"], 1, "refused (404): no link 'nope'"),
    (["hangup", "c404"], 1, "refused (404): no call 'c404'"),
    (["step"], 1, "refused (409): step needs a paused clock"),
    (["impair", "trunk-hq"], 2, "impair needs --latency, --jitter or --loss"),
    (["call", "4255550199", "2065550201"], 2, "needs --pstn NODE"),
]


@pytest.mark.parametrize(("argv", "status", "text"), CTL_CASES, ids=[" ".join(c[0]) for c in CTL_CASES])
def test_ctl_speaks_to_the_running_lab(live: LabThread, argv: list[str], status: int, text: str) -> None:
    done = drlab("ctl", "--url", live.url, *argv)
    assert done.returncode == status, done.stderr
    assert text in (done.stdout if status == 0 else done.stderr)
    assert "Traceback" not in done.stderr


def test_ctl_json_is_the_api_answer(live: LabThread) -> None:
    done = drlab("ctl", "state", "--json", "--url", live.url)
    assert done.returncode == 0
    assert {c["user"] for c in json.loads(done.stdout)["clients"]} >= {"carol@contoso.com", "dave@contoso.com"}


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}", "ftp://somewhere"])
def test_ctl_without_a_lab_says_so_and_exits_2(url: str) -> None:
    done = drlab("ctl", "--url", url.format(port=closed_port()), "state")
    assert done.returncode == 2
    assert done.stderr.startswith("drlab ctl: ") and "Traceback" not in done.stderr


def test_node_without_a_control_plane_says_so_and_exits_2() -> None:
    done = drlab("node", "--lab", str(CONTOSO_LAB), "--tenant", str(CONTOSO_TENANT), "--node", "carol",
                 "--control", f"http://127.0.0.1:{closed_port()}")
    assert done.returncode == 2
    assert done.stderr.startswith("drlab node: cannot reach the lab") and "Traceback" not in done.stderr


@pytest.mark.parametrize(("argv", "message"), [
    (["--control", "127.0.0.1:0"], "port 0"),
    (["--control", "8765"], "--control must be HOST:PORT"),
    (["--network", "real", "--pace", "5"], "--pace is for the sim network"),
    (["--pace", "0"], "--pace must be a positive number"),
    (["--time-scale", "10"], "--time-scale needs a positive number and the real network"),
    (["--network", "real", "--time-scale", "-1"], "--time-scale needs a positive number"),
    (["--processes"], "--processes needs the real network"),
])
def test_lab_up_refuses_bad_options_with_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                message: str) -> None:
    assert main(["lab", "up", str(CONTOSO_LAB), "--tenant", str(CONTOSO_TENANT), *argv]) == 2
    assert message in capsys.readouterr().err


def test_lab_up_with_an_output_folder_it_cannot_make_exits_2_before_starting(
        certs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    argv = ["lab", "up", str(CONTOSO_LAB), "--tenant", str(CONTOSO_TENANT), "--certs", str(certs),
            "--out", str(blocker / "out"), "--control", f"127.0.0.1:{closed_port()}"]
    assert main(argv) == 2
    assert "cannot create the output folder" in capsys.readouterr().err


def test_lab_up_on_a_busy_control_port_says_so_and_exits_2(certs: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = drlab("lab", "up", str(CONTOSO_LAB), "--tenant", str(CONTOSO_TENANT), "--certs", str(certs),
                     "--control", f"127.0.0.1:{port}", "-q")
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: already in use" in done.stderr


@pytest.fixture
def lab_process(certs: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """`drlab lab up` in its own process, up (its control URL printed); killed if still running at the end."""
    port = closed_port()
    out = tmp_path / "out"
    process = subprocess.Popen(
        [*DRLAB, "lab", "up", str(CONTOSO_LAB), "--tenant", str(CONTOSO_TENANT), "--certs", str(certs),
         "--pace", "100", "--control", f"127.0.0.1:{port}", "--out", str(out), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    watchdog = threading.Timer(PROCESS_LIMIT_S, process.kill)
    watchdog.start()
    try:
        url = f"http://127.0.0.1:{port}"
        for line in process.stdout:  # type: ignore[union-attr]
            if "is up" in line:
                assert url in line
                break
        else:
            raise AssertionError(f"drlab lab up ended before it was up: {process.stderr.read()}")  # type: ignore[union-attr]
        yield process, url, out
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


def test_lab_down_stops_the_lab_which_writes_its_events_and_exits_0(
        lab_process: tuple[subprocess.Popen[str], str, Path]) -> None:
    process, url, out = lab_process
    cut = drlab("ctl", "--url", url, "cut", "wan-seattle")
    assert cut.returncode == 0
    assert drlab("lab", "down", "--url", url).returncode == 0
    assert process.wait(PROCESS_LIMIT_S) == 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {"event": "control.command", "command": "link", "link": "wan-seattle", "state": "down"}.items() <= \
        next(r for r in events if r["event"] == "control.command").items()
    assert events[-1]["event"] == "lab.stopped"
    assert (out / "capture.pcap").stat().st_size > 0


def test_sigterm_stops_the_lab_cleanly(lab_process: tuple[subprocess.Popen[str], str, Path]) -> None:
    process, _, out = lab_process
    process.send_signal(signal.SIGTERM)
    assert process.wait(PROCESS_LIMIT_S) == 0
    assert json.loads((out / "events.jsonl").read_text().splitlines()[-1])["event"] == "lab.stopped"
