"""`make fuzz`: each target of fuzz/targets.py under atheris for FUZZ_SECONDS (default 600), in turn.

Usage: python -m fuzz [target ...]   (default: every target; needs the `fuzz` extra)

Each target runs in a process of its own (libFuzzer ends the process when it stops), from a
corpus in runs/fuzz/<target>/ seeded with the repository's own examples and every regression.
An input that crashes (an exception other than SipParseError or InputError, a hang over 10 s,
or running out of memory) is written by libFuzzer to tests/fuzz/regressions/<target>/, where
`make test` replays it. A crash already kept there is known: the run goes on past it, so one
run can find several defects. The exit code is 1 when a target found a new crash.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
REGRESSIONS = REPOSITORY / "tests" / "fuzz" / "regressions"
CORPUS = REPOSITORY / "runs" / "fuzz"
# Where each target's first inputs come from (scenarios name lab.yaml and tenant.yaml instead).
SEEDS = {
    "parse_message": [],
    "stream_parser": [],
    "tenant_yaml": ["examples/contoso.yaml", "scenarios/tenants/*.yaml"],
    "tenant_powershell": ["examples/*.ps1", "examples/runbook/*.ps1"],
    "tenant_export": [],
    "lab": ["examples/labs/*.yaml", "scenarios/labs/*.yaml"],
    "scenario": ["scenarios/*.yaml"],
}
MAX_LEN = {"parse_message": 4096, "stream_parser": 8192}


def _seeds(name: str) -> list[bytes]:
    if name in ("parse_message", "stream_parser"):
        from bench.parse import SAMPLES

        messages = list(SAMPLES.values())
        return messages if name == "parse_message" else [b"seed" + m + b"\r\n\r\n" + m for m in messages]
    if name == "tenant_export":
        from fuzz.targets import EXPORT, EXPORT_FILES

        return [bytes([i]) + (EXPORT / file).read_bytes() for i, file in enumerate(EXPORT_FILES)]
    seeds = [path.read_bytes() for pattern in SEEDS[name] for path in sorted(REPOSITORY.glob(pattern))]
    if name == "scenario":
        seeds = [_rename_files(seed) for seed in seeds]
    return seeds


def _rename_files(scenario: bytes) -> bytes:
    lines = []
    for line in scenario.split(b"\n"):
        if line.startswith(b"lab:"):
            line = b"lab: lab.yaml"
        elif line.startswith(b"tenant:"):
            line = b"tenant: tenant.yaml"
        lines.append(line)
    return b"\n".join(lines)


def _signature(error: BaseException) -> tuple[str, str]:
    """What makes a crash the same crash: its type and the line that raised it."""
    last = traceback.extract_tb(error.__traceback__)[-1]
    return type(error).__name__, f"{last.filename}:{last.lineno}"


def _known(target: Callable[[bytes], None], kept: Path) -> set[tuple[str, str]]:
    known = set()
    for path in sorted(kept.glob("*")) if kept.is_dir() else []:
        try:
            target(path.read_bytes())
        except Exception as error:
            known.add(_signature(error))
    return known


def _fuzz_one(name: str, seconds: int) -> None:
    import atheris

    with atheris.instrument_imports(include=["simulator", "yaml", "fuzz"]):
        from fuzz.targets import TARGETS
    target = TARGETS[name]
    kept = REGRESSIONS / name
    kept.mkdir(parents=True, exist_ok=True)
    known = _known(target, kept)
    corpus = CORPUS / name
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in _seeds(name) + [p.read_bytes() for p in kept.glob("*")]:
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except Exception as error:
            if _signature(error) not in known:
                raise

    atheris.Setup(
        [sys.argv[0], f"-max_total_time={seconds}", "-timeout=10", f"-max_len={MAX_LEN.get(name, 4096)}",
         f"-artifact_prefix={kept}/", "-print_final_stats=1", str(corpus)],
        one_input,
    )  # fmt: skip
    atheris.Fuzz()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        _fuzz_one(argv[1], int(argv[2]))  # imports the targets itself, instrumented
        return 0
    from fuzz.targets import TARGETS

    names = argv or list(TARGETS)
    unknown = set(names) - set(TARGETS)
    if unknown:
        raise SystemExit(f"unknown target(s): {', '.join(sorted(unknown))}; have: {', '.join(TARGETS)}")
    seconds = int(os.environ.get("FUZZ_SECONDS", "600"))
    crashed = []
    for name in names:
        print(f"fuzz: {name} for {seconds} s", flush=True)
        if subprocess.call([sys.executable, "-m", "fuzz", "--one", name, str(seconds)], cwd=REPOSITORY) != 0:
            crashed.append(name)
    if crashed:
        print(f"fuzz: new crashes in {', '.join(crashed)}: kept under {REGRESSIONS.relative_to(REPOSITORY)}/")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
