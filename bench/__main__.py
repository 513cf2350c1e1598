"""`make bench`: run every benchmark module in bench/ and write bench/results/<name>.json.

A benchmark module defines `run() -> dict` (flat figures, JSON-serializable) and may define
`TARGETS = {"key": (">=", number)}`; the table shows each target and whether it was met.
Usage: python -m bench [name ...]   (default: all modules)
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _modules(selected: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    unknown = set(selected) - set(names)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have: {', '.join(names)}")
    return selected or names


def _met(value: float, target: tuple[str, float]) -> bool:
    op, bound = target
    return value >= bound if op == ">=" else value <= bound


def main(argv: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    for name in _modules(argv):
        module = importlib.import_module(f"bench.{name}")
        started = time.perf_counter()
        figures = module.run()
        figures["_meta"] = {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "wall_s": round(time.perf_counter() - started, 2),
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
        targets = getattr(module, "TARGETS", {})
        print(f"\n{name}  ->  bench/results/{name}.json")
        for key, value in figures.items():
            if key == "_meta":
                continue
            line = f"  {key:<36} {value:>14,.1f}" if isinstance(value, (int, float)) else f"  {key:<36} {value}"
            if key in targets:
                op, bound = targets[key]
                line += f"   target {op} {bound:,}  {'met' if _met(value, targets[key]) else 'NOT MET'}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
