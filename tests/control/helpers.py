"""A live lab in a thread of the test process, on its own virtual-clock loop, served on a free port.

    with LabThread(certs_dir) as lab:       # up and settled; lab.client is a ControlClient
        lab.client.link("wan-seattle", state="down")
        record = wait_for(lab.client, since, lambda r: ...)

The lab runs exactly as `drlab lab up` runs it (LiveLab on run_sim), only in a thread and
with port 0, so parallel test runs never collide. Waiting is always on the lab's event
stream, with a wall-clock bound so a broken lab fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.control.client import ControlClient
from simulator.control.live import LiveLab, Ready
from simulator.control.processes import ProcessLab
from simulator.lab import Lab
from simulator.net.clock import run_sim

ROOT = Path(__file__).resolve().parents[2]
CONTOSO_LAB = ROOT / "examples" / "labs" / "contoso.yaml"
CONTOSO_TENANT = ROOT / "examples" / "contoso.yaml"
#: virtual seconds per wall second: a WAN outage's 20 s detection takes 1 s, and the lab thread
#: can lose 1.6 s of wall time to a busy machine before a SIP transaction (32 s) times out
TEST_PACE = 20.0
#: wall seconds any single wait may take before the test fails
WAIT_S = 15.0
#: the real network's time scale in these tests: a WAN outage's 20 s detection takes 2 s
REAL_TIME_SCALE = 10.0
#: wall seconds a wait may take with every node in a process of its own: a dozen processes on a
#: busy machine fall behind the wall clock (their records reach the control plane late)
PROCESSES_WAIT_S = 60.0


class LabThread:
    def __init__(self, certs_dir: Path, *, pace: float = TEST_PACE) -> None:
        self._setup(Lab.load(CONTOSO_LAB, tenant=CONTOSO_TENANT, network="sim", seed=1, certs_dir=certs_dir), pace)

    def _setup(self, lab: Any, pace: float | None) -> None:
        self.lab = lab
        self.live = LiveLab(lab, host="127.0.0.1", port=0, pace=pace)
        self.ready: Ready | None = None
        self.error: BaseException | None = None
        self._up = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-lab", daemon=True)

    def _run(self) -> None:
        try:
            if self.lab.network.kind == "sim":
                run_sim(self.live.run(self._on_ready))
            else:
                asyncio.run(self.live.run(self._on_ready))
        except BaseException as exc:  # reported by __enter__ / stop
            self.error = exc
        finally:
            self._up.set()

    def _on_ready(self, ready: Ready) -> None:
        self.ready = ready
        self._up.set()

    @property
    def url(self) -> str:
        assert self.ready is not None
        return self.ready.url

    @property
    def client(self) -> ControlClient:
        return ControlClient(self.url)

    def __enter__(self) -> LabThread:
        self._thread.start()
        if not self._up.wait(WAIT_S * 4) or self.ready is None:
            raise RuntimeError(f"the lab did not come up: {self.error!r}")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.client.stop()
            self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), "the lab did not stop"
        if self.error is not None:
            raise self.error

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProcessLabThread(LabThread):
    """The contoso lab on the real network at `time_scale`, every node in a process of its own
    (as `drlab lab up --processes`), its control plane in a thread of the test process."""

    def __init__(self, certs_dir: Path, *, time_scale: float = REAL_TIME_SCALE) -> None:
        lab = Lab.load(CONTOSO_LAB, tenant=CONTOSO_TENANT, network="real", seed=1, certs_dir=certs_dir,
                       time_scale=time_scale)
        self._setup(ProcessLab(lab, lab_file=str(CONTOSO_LAB), tenant_file=str(CONTOSO_TENANT),
                               certs_dir=str(certs_dir)), None)


def module_fixtures(pace: float = TEST_PACE) -> tuple[Any, Any]:
    """`certs` and `live` (the contoso lab, up at `pace` for the tests of one module): in a test
    module, `certs, live = module_fixtures()`."""

    @pytest.fixture(scope="module")
    def certs(lab_certs: Path) -> Path:
        return lab_certs  # the run's one test PKI (tests/conftest.py)

    @pytest.fixture(scope="module")
    def live(certs: Path) -> Iterator[LabThread]:
        with LabThread(certs, pace=pace) as lab:
            yield lab

    return certs, live


def wait_for(client: ControlClient, since: int, matches: Callable[[dict[str, Any]], bool], *,
             wait_s: float = WAIT_S) -> dict[str, Any]:
    """The first event record from `since` on that `matches` (within `wait_s` wall seconds)."""
    deadline = time.monotonic() + wait_s
    for kind, record in client.events(since=since, timeout=wait_s):
        if kind == "record" and matches(record):
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"no such event within {wait_s:g} s; the last: {record}")
    raise AssertionError("the lab stopped before the awaited event")


def wait_for_call_setup(client: ControlClient, call: dict[str, Any], node: str, *,
                        wait_s: float = WAIT_S) -> dict[str, Any]:
    """Wait until the INVITE of `call` (an answer of POST /api/calls) placed at `node` has its
    final answer; returns the call as the API then shows it."""
    wait_for(client, call["event_id"],
             lambda r: r["event"] in ("call.answered", "call.ended") and r.get("node") == node, wait_s=wait_s)
    return client.request("GET", f"/api/calls/{call['id']}")


def wait_for_clients(client: ControlClient, since: int, users: set[str], state: str, *,
                     wait_s: float = WAIT_S) -> dict[str, str | None]:
    """Wait until every user in `users` has reported `state`; returns user -> registrar."""
    seen: dict[str, str | None] = {}

    def reported(record: dict[str, Any]) -> bool:
        if record["event"] == "client.state" and record.get("user") in users:
            if record.get("state") == state:
                seen[record["user"]] = record.get("registrar")
            else:
                seen.pop(record["user"], None)
        return set(seen) == users

    wait_for(client, since, reported, wait_s=wait_s)
    return seen
