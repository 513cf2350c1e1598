"""Real load: SIPp as the PSTN carrier places 1-second calls through the Contoso lab, every node in
a process of its own on the real network (`drlab lab up --network real --processes`).

The lab is examples/labs/contoso-external-carrier.yaml (its carrier `pstn-sea` an external node at
127.0.0.1, where SIPp sends from: the SBC takes calls from its carrier's address; each SIPp run has
a port of its own, so answers to an earlier run's calls never reach the next), its clients set to
answer at once so the setup time is the chain's own. A few calls first, until they complete (a
client reports online a moment before the proxy has its registration). Each call: SIPp -> sbc-sea (UDP) -> sip.pstnhub.microsoft.com
(mutual TLS) -> carol or dave in turn (mutual TLS), answered, held `CALL_MS`, hung up by SIPp
(bench/sipp/uac.xml). CPU and memory are read from /proc for the lab's processes: its node
processes and its control plane, which takes every event record they write.

clean_cps: the highest rate whose run of `RUN_S` seconds of calls completed every call with no
  failed call and no SIPp retransmission (a bounded search: doubling from `FIRST_RATE`, then
  halving the gap, at most `SEARCH_RUNS` runs). `rates` is every run of the search: rate,
  calls completed, refused with 503 and failed, SIPp's retransmissions, mean setup (INVITE to
  200), CPU per call, and `drain_s`: how long the lab stayed busy after the run (each run starts
  once it is quiet, or after `QUIET_LIMIT_S`).
sipp_ceiling_cps: the same kind of calls from a SIPp UAC to a SIPp UAS on this machine, in this
  run (the highest of `CEILING_RATES` that ran clean): the yardstick the lab's figure reads against.
cpu_ms_per_call_first / _after: CPU milliseconds of the lab per call over its first `MEASURE_CALLS`
  calls, and over `MEASURE_CALLS` more at the same rate once `calls_before_after` calls have gone
  through (20,000, or as many as `ACCUMULATE_S` seconds at clean_cps allow). The same for the
  resident memory the node processes and the control plane gain per call.
idle_cpu_percent_before / _after: CPU of the idle lab, as % of one core over `IDLE_WINDOW_S`,
  before the first call, and once the longest transaction timer (64*T1, RFC 3261 §17) has passed
  after the last call.
overload_*: a run at twice clean_cps: calls completed, refused with 503 (and Retry-After), failed,
  SIPp's retransmissions, and the rate that completed.
clean_cps_media_off: the same search on a second lab with the setting `media: false` (SDP only, no
  RTP): the signalling's own capacity, as SIPp against SIPp measures it (SIPp sends no RTP). With
  media every answered call also carries RTP and RTCP through the client and the SBC's relay.

Every process the benchmark starts (the lab, its node processes, SIPp) is stopped on the way out,
on failure or Ctrl-C too. On a shared machine the figures carry the neighbours' load: compare
clean_cps with sipp_ceiling_cps of the same run, not with another machine's.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "examples" / "labs" / "contoso-external-carrier.yaml"
TENANT = ROOT / "examples" / "contoso.yaml"
SCENARIO = Path(__file__).parent / "sipp" / "uac.xml"
CALLEES = Path(__file__).parent / "sipp" / "callees.csv"  # carol and dave, in turn
CARRIER, SBC, SBC_PSTN_PORT = "pstn-sea", "sbc-sea", 5060
SIPP_ADDRESS = "127.0.0.1"  # outside the block the lab takes (127.a.b.0/24, a >= 1)

TARGETS = {"clean_cps": (">=", 300)}

CALL_MS = 1000
RUN_S = 20  # seconds of new calls per run of the search (60 s runs would take the bench past 10 minutes)
FIRST_RATE = 25
SEARCH_RUNS = 6
MEASURE_RATE = 25  # calls/s of the two CPU-per-call runs (the same rate, so the figures compare)
MEASURE_CALLS = 1000
AFTER_CALLS = 20_000
ACCUMULATE_S = 90  # at most this long of calls at clean_cps between the two measures
CEILING_RATES = (250, 500, 1000, 2000)
CEILING_RUN_S = 10
TIMER_64T1_S = 32.0  # the longest transaction timer (B, F, H: 64*T1, RFC 3261 §17)
IDLE_WINDOW_S = 5.0
QUIET_PERCENT = 10.0  # between runs: wait until the lab uses less than this of a core
QUIET_WINDOW_S = 2.0
QUIET_LIMIT_S = 90.0  # a lab still busy after this long starts the next run busy (the run says so)
START_S = 120.0
WARM_UP_CALLS = 10  # at 10 calls/s
WARM_UP_TRIES = 10
TICK = os.sysconf("SC_CLK_TCK")


# --- the lab's processes, from /proc -------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _cpu_s(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    return 0.0


def _rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Sample:
    wall: float
    nodes_cpu_s: float
    plane_cpu_s: float
    nodes_rss_mb: float
    plane_rss_mb: float

    @property
    def cpu_s(self) -> float:
        return self.nodes_cpu_s + self.plane_cpu_s


# --- SIPp ----------------------------------------------------------------------------------------------
@dataclass
class SippRun:
    rate: float
    calls: int
    completed: int
    failed: int
    rejected_503: int
    retransmissions: int
    mean_setup_ms: float
    elapsed_s: float
    cpu_ms_per_call: float | None = None
    drain_s: float | None = None  # how long the lab was busy after the run's last call

    def clean(self) -> bool:
        return self.failed == 0 and self.retransmissions == 0 and self.rejected_503 == 0 and self.completed == self.calls


def _duration_ms(value: str) -> float:
    """SIPp's HH:MM:SS:uuuuuu (a response time)."""
    h, m, s, us = (int(x) for x in value.split(":"))
    return round((h * 3600 + m * 60 + s) * 1000 + us / 1000, 1)


def _elapsed_s(stats: dict[str, str]) -> float:
    """From SIPp's start to its last statistics line (each time: date, time, Unix seconds)."""
    return round(float(stats["CurrentTime"].split()[-1]) - float(stats["StartTime"].split()[-1]), 3)


def _stats(path: Path) -> dict[str, str]:
    rows = list(csv.DictReader(path.read_text().splitlines(), delimiter=";")) if path.exists() else []
    return rows[-1] if rows else {}


def _rejected(path: Path) -> int:
    """503s SIPp received (-trace_counts: one column per scenario element and counter)."""
    stats = _stats(path)
    return sum(int(v) for k, v in stats.items() if k and "503" in k and k.endswith("_Recv") and v.isdigit())


class Rig:
    """The lab (its control plane and node processes) and the SIPp processes, all stopped on exit."""

    def __init__(self, directory: Path, media: bool) -> None:
        self.dir = directory
        self.media = media
        self.lab: subprocess.Popen[bytes] | None = None
        self.node_pids: list[int] = []
        self.sipps: list[subprocess.Popen[bytes]] = []
        self.carrier_port = _free_port(socket.SOCK_DGRAM)
        self.control = f"127.0.0.1:{_free_port(socket.SOCK_STREAM)}"
        self.sbc = ""

    # --- the lab ------------------------------------------------------------------------------------
    def start_lab(self) -> None:
        spec = yaml.safe_load(LAB.read_text())
        for node in spec["nodes"]:
            if node["name"] == CARRIER:
                node["port"] = self.carrier_port
            if node["role"] == "teams_client":
                node.setdefault("options", {})["answer"] = "auto:0"  # setup time is the chain's own
        if not self.media:
            spec["settings"] = {**(spec.get("settings") or {}), "media": False}
        lab_file = self.dir / "lab.yaml"
        lab_file.write_text(yaml.safe_dump(spec, sort_keys=False))
        out = self.dir / "lab.out"
        self.lab = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "lab", "up", str(lab_file), "--tenant", str(TENANT),
             "--network", "real", "--processes", "--quiet", "--control", self.control, "--out", str(self.dir / "run"),
             "--certs", str(ROOT / "certs" / "contoso")],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_S
        while " is up " not in out.read_text(errors="replace"):
            if self.lab.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the lab did not come up:\n{out.read_text(errors='replace')}")
            time.sleep(0.2)
        if "not settled" in out.read_text(errors="replace"):
            raise RuntimeError(f"the lab did not settle:\n{out.read_text(errors='replace')}")
        self.node_pids = _children(self.lab.pid)
        addresses = self._get("/api/addresses")
        self.sbc = next(e["address"] for e in addresses if e["node"] == SBC)

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{self.control}{path}", timeout=10) as answer:
            return json.load(answer)

    def sample(self) -> Sample:
        assert self.lab is not None
        return Sample(time.monotonic(), sum(_cpu_s(p) for p in self.node_pids), _cpu_s(self.lab.pid),
                      sum(_rss_mb(p) for p in self.node_pids), _rss_mb(self.lab.pid))

    def wait_quiet(self) -> float:
        """Until the lab uses under QUIET_PERCENT of a core over QUIET_WINDOW_S (at most
        QUIET_LIMIT_S): the seconds it took."""
        started = last = self.sample()
        while last.wall - started.wall < QUIET_LIMIT_S:
            time.sleep(QUIET_WINDOW_S)
            now = self.sample()
            if 100 * (now.cpu_s - last.cpu_s) / (now.wall - last.wall) < QUIET_PERCENT:
                break
            last = now
        return round(self.sample().wall - started.wall, 1)

    def idle_percent(self) -> float:
        before = self.sample()
        time.sleep(IDLE_WINDOW_S)
        after = self.sample()
        return round(100 * (after.cpu_s - before.cpu_s) / (after.wall - before.wall), 2)

    # --- SIPp ---------------------------------------------------------------------------------------
    def sipp(self, target: str, rate: float, calls: int, *scenario: str, name: str) -> SippRun:
        """One SIPp UAC run of `calls` calls at `rate`; its figures from its statistics files."""
        files = self.dir / name
        files.mkdir()
        timeout_s = calls / rate + CALL_MS / 1000 + TIMER_64T1_S + 10
        # a port of its own: answers to an earlier run's calls cannot reach this one
        process = self._spawn(["sipp", target, *scenario, "-i", SIPP_ADDRESS, "-p", str(_free_port(socket.SOCK_DGRAM)),
                               "-r", f"{rate:g}", "-m", str(calls), "-d", str(CALL_MS), "-l", str(calls),
                               "-timeout", f"{timeout_s:.0f}s", "-nostdin", "-trace_stat", "-stf",
                               str(files / "stats.csv"), "-fd", "1", "-trace_counts", "-trace_err", "-error_file", str(files / "errors.log")],
                             cwd=files)
        try:
            process.wait(timeout_s + 15)
        finally:
            self._end(process)
        stats = _stats(files / "stats.csv")
        if not stats:
            raise RuntimeError(f"SIPp wrote no statistics (exit {process.returncode}): "
                               f"{(files / 'errors.log').read_text(errors='replace')[-2000:] if (files / 'errors.log').exists() else ''}")
        rejected = sum(_rejected(counts) for counts in files.glob("*_counts.csv"))  # SIPp names it
        successful = int(stats["SuccessfulCall(C)"])
        return SippRun(rate, calls, completed=successful - rejected, failed=calls - successful, rejected_503=rejected,
                       retransmissions=int(stats["Retransmissions(C)"]),
                       mean_setup_ms=_duration_ms(stats["ResponseTime1(C)"]),
                       elapsed_s=_elapsed_s(stats))

    def ceiling(self) -> tuple[float, list[dict[str, Any]]]:
        """SIPp UAC against a SIPp UAS (its built-in scenarios), the same calls: the highest clean rate."""
        port = _free_port(socket.SOCK_DGRAM)
        uas = self._spawn(["sipp", "-sn", "uas", "-i", SIPP_ADDRESS, "-p", str(port), "-nostdin"])
        runs, best = [], 0.0
        try:
            for rate in CEILING_RATES:
                calls = int(rate * CEILING_RUN_S)
                run = self.sipp(f"{SIPP_ADDRESS}:{port}", rate, calls, "-sn", "uac", name=f"ceiling-{rate}")
                runs.append(asdict(run))
                if not run.clean():
                    break
                best = rate
        finally:
            self._end(uas)
        return best, runs

    def _spawn(self, argv: list[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, cwd=cwd or self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        self.sipps.append(process)
        return process

    @staticmethod
    def _end(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.kill()
            process.wait()

    # --- stopping everything ------------------------------------------------------------------------
    def close(self) -> None:
        for process in self.sipps:
            self._end(process)
        if self.lab is None:
            return
        if self.lab.poll() is None:
            self.lab.send_signal(signal.SIGINT)  # the lab stops its node processes in order
            try:
                self.lab.wait(45)
            except subprocess.TimeoutExpired:
                self.lab.kill()
                self.lab.wait()
        for pid in self.node_pids:  # a node stops when its control plane goes; make sure
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((SIPP_ADDRESS, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def rig(media: bool = True) -> Iterator[Rig]:
    def terminated(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # the finally below stops every process

    # both, explicitly: a shell starts a background job with SIGINT ignored, and Python then
    # leaves it ignored
    previous = {sig: signal.signal(sig, terminated) for sig in (signal.SIGINT, signal.SIGTERM)}
    with tempfile.TemporaryDirectory(prefix="drlab-bench-load-") as directory:
        bench = Rig(Path(directory), media)
        try:
            yield bench
        finally:
            bench.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# --- the measures ---------------------------------------------------------------------------------------
def measured(bench: Rig, rate: float, calls: int, name: str) -> tuple[SippRun, Sample, Sample]:
    """A run through the lab, and the lab's CPU and memory before and after it (calls ended)."""
    before = bench.sample()
    run = bench.sipp(f"{bench.sbc}:{SBC_PSTN_PORT}", rate, calls, "-sf", str(SCENARIO), "-inf", str(CALLEES), name=name)
    run.drain_s = bench.wait_quiet()
    after = bench.sample()
    run.cpu_ms_per_call = round(1000 * (after.cpu_s - before.cpu_s) / calls, 2)
    return run, before, after


def warm_up(bench: Rig) -> None:
    """Until a few calls complete: a client that says it is online may not be registered at the
    proxy yet (its first calls would fail 480 and count against the first run)."""
    for attempt in range(WARM_UP_TRIES):
        run = bench.sipp(f"{bench.sbc}:{SBC_PSTN_PORT}", WARM_UP_CALLS, WARM_UP_CALLS, "-sf", str(SCENARIO),
                         "-inf", str(CALLEES), name=f"warm-up-{attempt}")
        if run.completed == run.calls:
            bench.wait_quiet()
            return
        time.sleep(1.0)
    raise RuntimeError(f"the lab completes no calls: {run}")


def search(bench: Rig) -> tuple[float, list[SippRun]]:
    """The highest clean rate: doubling until a run is not clean, then halving the gap."""
    runs: list[SippRun] = []
    clean, failing = 0.0, None
    rate: float = FIRST_RATE
    while len(runs) < SEARCH_RUNS:
        run, _, _ = measured(bench, rate, int(rate * RUN_S), f"rate-{len(runs)}-{rate:g}")
        runs.append(run)
        print(f"  load: {rate:g} calls/s -> {run.completed}/{run.calls} completed, {run.failed} failed, "
              f"{run.retransmissions} retransmissions, setup {run.mean_setup_ms:g} ms", file=sys.stderr)
        if run.clean():
            clean = rate
        else:
            failing = rate
        rate = rate * 2 if failing is None else round((clean + failing) / 2)
        if failing is not None and failing - clean <= max(5, clean * 0.1):
            break
    return clean, runs


def per_call_mb(before: Sample, after: Sample, calls: int) -> tuple[float, float]:
    return (round(1024 * (after.nodes_rss_mb - before.nodes_rss_mb) / calls, 2),
            round(1024 * (after.plane_rss_mb - before.plane_rss_mb) / calls, 2))


def run() -> dict[str, Any]:
    if shutil.which("sipp") is None:
        raise SystemExit("bench load: sipp is not on PATH (Debian: apt-get install sip-tester)")
    with rig() as bench:
        ceiling, ceiling_runs = bench.ceiling()
        bench.start_lab()
        warm_up(bench)
        idle_before = bench.idle_percent()
        total = 0
        first, before, after = measured(bench, MEASURE_RATE, MEASURE_CALLS, "first")
        total += first.calls
        kib_nodes_first, kib_plane_first = per_call_mb(before, after, first.calls)
        clean, runs = search(bench)
        total += sum(r.calls for r in runs)
        pace = clean or MEASURE_RATE
        remaining = AFTER_CALLS - MEASURE_CALLS - total
        if remaining > 0:  # one run, bounded in time: the bench stays within its minutes
            calls = int(min(remaining, pace * ACCUMULATE_S))
            bench.sipp(f"{bench.sbc}:{SBC_PSTN_PORT}", pace, calls, "-sf", str(SCENARIO), "-inf", str(CALLEES),
                       name="accumulate")
            total += calls
        bench.wait_quiet()
        calls_before_after = total
        later, before, after = measured(bench, MEASURE_RATE, MEASURE_CALLS, "after")
        total += later.calls
        kib_nodes_after, kib_plane_after = per_call_mb(before, after, later.calls)
        time.sleep(TIMER_64T1_S)
        idle_after = bench.idle_percent()
        overload, _, _ = measured(bench, 2 * pace, int(2 * pace * RUN_S), "overload")
        total += overload.calls
    with rig(media=False) as bench:
        bench.start_lab()
        warm_up(bench)
        clean_media_off, runs_media_off = search(bench)
        total += sum(r.calls for r in runs_media_off)
    return {
        "clean_cps": clean,
        "sipp_ceiling_cps": ceiling,
        "sipp_ceiling_is_the_highest_rate_tried": ceiling == CEILING_RATES[-1],  # then it is at least that
        "clean_to_ceiling": round(clean / ceiling, 3) if ceiling else None,
        "run_s": RUN_S,
        "call_ms": CALL_MS,
        "rates": [asdict(r) for r in runs],
        "cpu_ms_per_call_first": first.cpu_ms_per_call,
        "cpu_ms_per_call_after": later.cpu_ms_per_call,
        "calls_before_after": calls_before_after,
        "measure_rate_cps": MEASURE_RATE,
        "node_kib_per_call_first": kib_nodes_first,
        "node_kib_per_call_after": kib_nodes_after,
        "control_plane_kib_per_call_first": kib_plane_first,
        "control_plane_kib_per_call_after": kib_plane_after,
        "idle_cpu_percent_before": idle_before,
        "idle_cpu_percent_after": idle_after,
        "overload_rate_cps": overload.rate,
        "overload_completed": overload.completed,
        "overload_rejected_503": overload.rejected_503,
        "overload_failed": overload.failed,
        "overload_retransmissions": overload.retransmissions,
        "overload_completed_cps": round(overload.completed / max(overload.elapsed_s - CALL_MS / 1000, 1), 1),
        "clean_cps_media_off": clean_media_off,
        "rates_media_off": [asdict(r) for r in runs_media_off],
        "ceiling_runs": ceiling_runs,
        "calls_total": total,
        "cpus": os.cpu_count(),
        "load_average_at_end": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
