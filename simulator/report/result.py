"""A scenario run's verdicts and figures, and the two machine-readable files made from them.

`result.json` is exactly `{"scenario", "seed", "passed", "steps": [{"name", "status", "t_virtual",
"detail"}], "metrics": {...}, "addresses": {node: {"host", "address", "sip": {transport: "ip:port"}}},
"calls": [...]}` (times in the scenario's units, seconds from the run's start) — `calls`: one entry
per call (report/calls.py), with its media quality as each node received it (`media.quality` events:
node, call_id, stream, loss, jitter_ms, rtt_ms, mos, poor); `junit.xml` has one testcase per step so a CI server shows which
step of which scenario failed, with the detail as the failure text, the scenario file and line
as the testcase's `file` and `line`, and the step's wall-clock time as its `time`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import SourcePosition

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"  # a step never reached or never finished: the run stopped early (bad lab, Ctrl-C)


@dataclass
class StepResult:
    name: str
    status: str  # passed | failed | skipped
    t_virtual: float  # virtual seconds when the step's verdict was reached
    detail: str = ""
    position: SourcePosition | None = None  # the step in the scenario file
    wall_s: float = 0.0  # wall-clock seconds the step took

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "t_virtual": round(self.t_virtual, 6),
                "detail": self.detail}


@dataclass
class RunResult:
    scenario: str
    seed: int
    steps: list[StepResult] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # the run itself failed (the lab did not start, a role crashed, it was interrupted)
    addresses: dict[str, Any] = field(default_factory=dict)  # node -> host, address, SIP listeners
    calls: list[dict[str, Any]] = field(default_factory=list)  # report/calls.py's call_summaries
    # outputs taken from the wire rather than drawn from the records (a Docker lab's real
    # capture.pcap and keys.log): output name -> file; not part of result.json
    captured: dict[str, Path] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.error and all(s.ok for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "seed": self.seed, "passed": self.passed,
                "steps": [s.to_json() for s in self.steps], "metrics": self.metrics,
                "addresses": self.addresses, "calls": self.calls}

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n"


def junit_xml(results: list[RunResult]) -> str:
    """One <testsuite> per scenario, one <testcase> per step; a run error is an <error> testcase."""
    root = ET.Element("testsuites", tests=str(sum(len(r.steps) for r in results)),
                      failures=str(sum(not s.ok for r in results for s in r.steps)),
                      errors=str(sum(bool(r.error) for r in results)))
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=r.scenario, tests=str(len(r.steps)),
                              time=f"{sum(s.wall_s for s in r.steps):.3f}",
                              failures=str(sum(not s.ok for s in r.steps)), errors=str(int(bool(r.error))),
                              skipped=str(sum(s.status == SKIPPED for s in r.steps)))
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="seed", value=str(r.seed))
        for key, value in r.metrics.items():
            ET.SubElement(props, "property", name=key, value=str(value))
        for i, s in enumerate(r.steps, 1):
            case = ET.SubElement(suite, "testcase", classname=r.scenario, name=f"{i:02d} {s.name}",
                                 time=f"{s.wall_s:.3f}")
            if s.position:
                case.set("file", s.position.path)
                case.set("line", str(s.position.line))
            if s.status == FAILED:
                failure = ET.SubElement(case, "failure", message=s.detail.splitlines()[0] if s.detail else "failed")
                failure.text = f"{s.position}: {s.detail}" if s.position else s.detail
            elif s.status == SKIPPED:
                ET.SubElement(case, "skipped", message=s.detail or "not reached")
        if r.error:
            case = ET.SubElement(suite, "testcase", classname=r.scenario, name="run")
            ET.SubElement(case, "error", message=r.error.splitlines()[0]).text = r.error
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
