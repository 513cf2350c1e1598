"""Scenario files (docs/scenarios.md): load and validate, every mistake at `FILE:LINE:COL`.

A scenario names a lab file and a tenant file (paths relative to the scenario file), optional
setting overrides, and a list of steps. Each step is a mapping with exactly one action key (a
kind registered in `simulator.scenario.steps.STEPS`) plus an optional `name` and `at`
(absolute virtual time: the step starts no earlier than that). Unknown keys are errors, never
ignored, and no duration may be longer than the run's `timeout`.

    scenario = load_scenario("scenarios/branch-outage.yaml")   # -> Scenario, or raises ScenarioError
    check_against_lab(scenario)                                 # the names its steps use exist
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import SourcePosition, read_source
from simulator.lab.spec import LabSpec, load_lab_spec, read_settings
from simulator.scenario.reader import Reader, ScenarioError
from simulator.scenario.steps import STEPS, LabNames, Step

TOP_LEVEL = ("name", "description", "lab", "tenant", "seed", "settings", "steps", "timeout")
DEFAULT_TIMEOUT_S = 8 * 86400.0  # the whole run; long enough for the 7-day token scenario


@dataclass
class Scenario:
    path: str
    name: str
    description: str
    lab: str
    tenant: str
    seed: int | None
    settings: dict[str, Any]
    steps: list[Step]
    timeout: float = DEFAULT_TIMEOUT_S


def _step(r: Reader, node: yaml.Node, index: int) -> Step:
    what = f"step {index}"
    if not isinstance(node, yaml.MappingNode):
        raise r.fail(node, f"{what} must be a mapping with one of: {', '.join(STEPS)}")
    m = r.entries(node, what, ("name", "at", *STEPS))
    kinds = [k for k in m if k in STEPS]
    if len(kinds) != 1:
        raise r.fail(node, f"{what} must have exactly one action ({', '.join(STEPS)}); "
                     f"got {', '.join(kinds) or 'none'}")
    cls = STEPS[kinds[0]]
    fields = cls.parse(r, m[kinds[0]][1])
    return cls(position=r.pos(node), title=r.text(m["name"][1], "name") if "name" in m else None,
               at=r.duration(m["at"][1], "at (absolute virtual time)") if "at" in m else None, **fields)


def parse_scenario(text: str, path: str) -> Scenario:
    r = Reader(path)
    root = r.compose(text)
    if root is None:
        raise ScenarioError("the scenario file is empty (expected lab:, tenant: and steps:)", SourcePosition(path, 1, 1))
    m = r.entries(root, "the scenario file", TOP_LEVEL, ("lab", "tenant", "steps"))
    base = Path(path).parent
    files = {}
    for key in ("lab", "tenant"):
        rel = r.text(m[key][1], key)
        full = (base / rel) if not Path(rel).is_absolute() else Path(rel)
        if not _is_file(full, or_folder=key == "tenant"):
            raise r.fail(m[key][1], f"{key} file {rel!r} not found (paths are relative to the scenario file)")
        if key == "tenant" and not full.is_dir() and full.suffix.lower() not in (".yaml", ".yml", ".ps1"):
            raise r.fail(m[key][1], "tenant must be a drlab YAML file, a PowerShell runbook (.ps1) "
                                    "or a folder of Get-Cs* JSON exports")
        files[key] = str(full)
    settings = {key: value for key, (value, _) in read_settings(r, m["settings"][1]).items()} \
        if "settings" in m else {}
    seed = r.integer(m["seed"][1], "seed", 0, 2**63 - 1) if "seed" in m else None
    timeout = r.duration(m["timeout"][1], "timeout") if "timeout" in m else DEFAULT_TIMEOUT_S
    r.longest = timeout
    steps = []
    last_at = 0.0
    for i, n in enumerate(r.sequence(m["steps"][1], "steps"), 1):
        step = _step(r, n, i)
        if step.at is not None:
            if step.at < last_at:
                raise r.fail(n, f"at: {step.at:g} s is before an earlier step's at: {last_at:g} s "
                             "(steps run in file order)")
            last_at = step.at
        steps.append(step)
    if not steps:
        raise r.fail(m["steps"][1], "steps must list at least one step")
    return Scenario(path, r.text(m["name"][1], "name") if "name" in m else Path(path).stem,
                    r.text(m["description"][1], "description") if "description" in m else "",
                    files["lab"], files["tenant"], seed, settings, steps, timeout)


def _is_file(path: Path, *, or_folder: bool = False) -> bool:
    try:
        return path.is_file() or (or_folder and path.is_dir())
    except OSError:  # a name too long for the file system
        return False


def load_scenario(path: str | Path) -> Scenario:
    return parse_scenario(read_source(path, ScenarioError, "scenario"), str(path))


def check_against_lab(scenario: Scenario, spec: LabSpec | None = None) -> None:
    """Every link, node and client a step names exists in the lab: else ScenarioError at the step.

    Run before the lab is built, so a typo costs no run (and `drlab run` exits 2). `spec` is the
    lab's `LabSpec` (loaded from `scenario.lab` when not given; a bad lab file raises LabError).
    """
    names = LabNames(spec or load_lab_spec(scenario.lab), Path(scenario.lab).name)
    for step in scenario.steps:
        step.check(names)
