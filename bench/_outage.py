"""Child program of bench/scenario.py: one `drlab run`, in a process of its own so that its peak
memory is its own.

`python -m bench._outage SCENARIO CERTS` runs `drlab run SCENARIO --quiet` in this process (outputs
in a temporary folder, certificates in CERTS) and prints one JSON line: the exit status, wall and
CPU seconds of the run, the CPU seconds the cyclic garbage collector took in it (`gc_s`) and its
full collections, the process's peak resident memory, and the steps that did not pass (name and
detail) from the run's result.json.
`python -m bench._outage --generate BRANCHES CLIENTS CERTS` first generates the Fabrikam lab of
that size (simulator.lab.generate) and runs its outage scenario.
`python -m bench._outage SCENARIO CERTS --media-off` runs a copy of SCENARIO with the setting
`media: false` (no RTP: what media costs the run).
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from simulator.cli import main as drlab
from simulator.lab.generate import generate_lab


def with_settings(scenario: Path, folder: str, **settings: Any) -> Path:
    """A copy of `scenario` in `folder` with these settings overridden (its lab and tenant paths
    made absolute, so it runs from there)."""
    data = yaml.safe_load(scenario.read_text())
    for key in ("lab", "tenant"):
        if key in data:
            data[key] = str((scenario.parent / data[key]).resolve())
    data["settings"] = {**(data.get("settings") or {}), **settings}
    copy = Path(folder) / scenario.name
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy
class CollectorTime:
    """The CPU seconds the cyclic collector spends, and its full (oldest-generation) collections."""

    def __init__(self) -> None:
        self.seconds, self.full, self._began = 0.0, 0, 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.process_time()
            return
        self.seconds += time.process_time() - self._began
        self.full += info["generation"] == 2


def run_scenario(scenario: Path, certs: str) -> dict[str, Any]:
    collector = CollectorTime()
    gc.callbacks.append(collector)
    with tempfile.TemporaryDirectory() as out:
        started, cpu = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            status = drlab(["run", str(scenario), "--quiet", "--out", out, "--certs", certs])
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        result = json.loads((Path(out) / "result.json").read_text())
    return {
        "exit": status,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "gc_s": round(collector.seconds, 3),
        "gc_full": collector.full,
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "passed": result["passed"],
        "steps": len(result["steps"]),
        "not_passed": [f"{s['name']}: {s['detail']}" for s in result["steps"] if s["status"] != "passed"],
    }


if __name__ == "__main__":
    if sys.argv[1] == "--generate":
        branches, clients, certs = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        with tempfile.TemporaryDirectory() as folder:
            files = generate_lab(branches, clients, folder)
            figures = run_scenario(files.scenario, certs)
    elif sys.argv[3:] == ["--media-off"]:
        with tempfile.TemporaryDirectory() as folder:
            figures = run_scenario(with_settings(Path(sys.argv[1]), folder, media=False), sys.argv[2])
    else:
        figures = run_scenario(Path(sys.argv[1]), sys.argv[2])
    print(json.dumps(figures))
