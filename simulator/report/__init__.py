"""Outputs of a scenario run, all views of one event stream (the console timeline, result.json, junit.xml, report.html, capture.pcap).

`write_outputs(out_dir, result, records)` writes, under out_dir:
- `events.jsonl`  the event stream, one JSON object a line; virtual timestamps only, so two runs
                  with one seed are byte-identical;
- `result.json`   verdict, per-step status and the failover metrics (`result.RunResult`);
- `junit.xml`     one testcase per step (`result.junit_xml`);
- `report.html`   one self-contained page: steps, metrics, state chart, SIP ladders, timeline;
- `capture.pcap`  every SIP message as IPv4 UDP/TCP packets (`pcap.write_pcap`; TLS written as
                  plaintext TCP on its real port); for a run attached to the Docker lab, the real
                  capture on its bridges instead, with `keys.log` (`RunResult.captured`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from simulator.report.html import render_html
from simulator.report.metrics import compute_metrics
from simulator.report.pcap import write_pcap
from simulator.report.result import FAILED, PASSED, SKIPPED, RunResult, StepResult, junit_xml

__all__ = ["FAILED", "PASSED", "SKIPPED", "RunResult", "StepResult", "compute_metrics", "junit_xml",
           "render_html", "write_events", "write_outputs", "write_pcap"]

FILES = ("events.jsonl", "result.json", "junit.xml", "report.html", "capture.pcap")


#: one encoder for every line (json.dumps with options builds a new one per call)
_EVENT_LINE = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False)


def write_events(records: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(_EVENT_LINE.encode(r) + "\n")


def write_outputs(out_dir: str | Path, result: RunResult, records: list[dict[str, Any]]) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in FILES}
    write_events(records, paths["events.jsonl"])
    paths["result.json"].write_text(result.json_text(), encoding="utf-8")
    paths["junit.xml"].write_text(junit_xml([result]), encoding="utf-8")
    paths["report.html"].write_text(render_html(result, records), encoding="utf-8")
    for name, path in result.captured.items():  # from the wire (a Docker lab's bridges)
        paths[name] = out / name
        shutil.copyfile(path, paths[name])
    if "capture.pcap" not in result.captured:
        with open(paths["capture.pcap"], "wb") as f:
            write_pcap(records, f)
    return paths
