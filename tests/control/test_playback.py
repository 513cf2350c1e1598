"""Scenario playback: `drlab run SCENARIO --pace N --view HOST:PORT` serves the live view and the
control API of the lab the scenario builds, while it runs (simulator/control/playback.py).

The run goes through the CLI entry point in a thread of the test process; the test waits for the
URL (the view's `on_url`), then on the lab's event stream, never on the wall clock.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from simulator.cli import main
from simulator.control import playback
from simulator.control.client import ControlClient
from simulator.scenario import cli as run_cli
from tests.control.helpers import CONTOSO_LAB, CONTOSO_TENANT, WAIT_S

pytestmark = pytest.mark.live

#: 50 virtual seconds per wall second: the scenario's 2m wait takes 2.4 wall seconds
PACE = "50"


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(f"""\
name: tiny-playback
lab: {CONTOSO_LAB}
tenant: {CONTOSO_TENANT}
seed: 1
steps:
  - name: everyone starts signed in to the cloud
    expect: {{client: [alice@contoso.com, carol@contoso.com], state: online}}
  - cut: wan-seattle
  - wait: 2m
  - restore: wan-seattle
""", encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _run_in_thread(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """`drlab run ARGV` in a thread; yields {"url": ...} once the view listens, {"rc": ...} at the end."""
    run: dict[str, Any] = {}
    listening = threading.Event()

    class SignallingView(playback.PlaybackView):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            shown = kwargs.pop("on_url")

            def on_url(url: str) -> None:
                shown(url)
                run["url"] = url
                listening.set()

            super().__init__(*args, on_url=on_url, **kwargs)

    monkeypatch.setattr(run_cli, "PlaybackView", SignallingView)

    def target() -> None:
        try:
            run["rc"] = main(argv)
        finally:
            listening.set()  # a run that never listened must not leave the test waiting

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        assert listening.wait(WAIT_S), "the view never listened"
        yield run
    finally:
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the run did not finish"


def test_a_paced_run_serves_the_live_view_while_it_runs(tmp_path: Path, lab_certs: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    out = tmp_path / "out"
    argv = ["run", str(_scenario(tmp_path)), "--pace", PACE, "--view", f"127.0.0.1:{port}",
            "--out", str(out), "--certs", str(lab_certs), "--quiet"]
    with _run_in_thread(argv, monkeypatch) as run:
        assert run["url"] == f"http://127.0.0.1:{port}"
        client = ControlClient(run["url"], timeout=WAIT_S)
        state = client.state()
        assert {link["name"] for link in state["links"]} >= {"wan-seattle"}
        with urllib.request.urlopen(run["url"] + "/", timeout=WAIT_S) as page:
            assert page.headers["Content-Type"].startswith("text/html")
            assert "<html" in page.read().decode()
        seen: list[str] = []
        for kind, record in client.events(since=0, timeout=WAIT_S):
            if kind == "record":
                seen.append(record["event"])
        # the stream ran to its end: the lab stopped and the view told its readers so
        assert "step.passed" in seen
        assert "lab.stopped" in seen
    assert run["rc"] == 0
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert [s["status"] for s in result["steps"]] == ["passed"] * 4
    # serving adds nothing to the run's story
    events = [json.loads(line)["event"] for line in (out / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    assert not [e for e in events if e.startswith("control.")]
    with pytest.raises(OSError):  # and it is no longer served
        urllib.request.urlopen(run["url"] + "/api/state", timeout=WAIT_S)


def test_a_stop_through_the_api_stops_the_run_as_ctrl_c_does(tmp_path: Path, lab_certs: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = ["run", str(_scenario(tmp_path)), "--pace", PACE, "--view", f"127.0.0.1:{_free_port()}",
            "--out", str(out), "--certs", str(lab_certs), "--quiet"]
    with _run_in_thread(argv, monkeypatch) as run:
        client = ControlClient(run["url"], timeout=WAIT_S)
        for kind, record in client.events(since=0, timeout=WAIT_S):
            if kind == "record" and record["event"] == "step.passed":
                client.stop()
                break
    assert run["rc"] == 2
    assert playback.STOP_REASON in capsys.readouterr().err
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert not result["passed"]
    assert any(s["detail"].startswith("interrupted") for s in result["steps"])


def test_a_busy_view_port_exits_2_before_the_lab_starts(tmp_path: Path, lab_certs: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc = main(["run", str(_scenario(tmp_path)), "--pace", PACE, "--view", f"127.0.0.1:{port}",
                   "--out", str(tmp_path / "out"), "--certs", str(lab_certs)])
    captured = capsys.readouterr()
    assert rc == 2
    assert f"cannot listen on 127.0.0.1:{port}: already in use" in captured.err
    assert "--view" in captured.err
    assert "online at" not in captured.out  # no node came up
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra", [[], ["--network", "real"]], ids=["unpaced", "real-network"])
def test_view_needs_a_paced_sim_run(tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", str(_scenario(tmp_path)), "--view", "127.0.0.1:8765", *extra])
    assert rc == 2
    assert "--view serves a paced run; add --pace N" in capsys.readouterr().err


def test_a_bad_view_address_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_scenario(tmp_path)), "--pace", PACE, "--view", "nonsense"]) == 2
    assert "--view must be HOST:PORT" in capsys.readouterr().err
