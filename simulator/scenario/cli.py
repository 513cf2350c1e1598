"""`drlab run SCENARIO... [--seed N] [--out DIR] [--pace N] [--network sim|real]`.

Every scenario file is validated before any runs (a mistake anywhere exits 2 with
`FILE:LINE:COL: what was expected`). Each scenario then runs on a fresh lab — on the sim network
under the virtual clock by default (`--pace N`: N virtual seconds per wall second, for watching),
or on real loopback sockets in real time with `--network real` — while a live timeline prints
(virtual time, node, event) with a verdict per step. Outputs go to `--out DIR` (default
`runs/<scenario>-<UTC timestamp>/`; with several scenarios, one sub-folder each): events.jsonl,
result.json, junit.xml, report.html, capture.pcap (simulator.report).

Exit status: 0 every step of every scenario passed, 1 a step failed (or a run broke), 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from simulator.report import RunResult, write_outputs
from simulator.report.timeline import TimelinePrinter, format_time
from simulator.scenario.loader import Scenario, ScenarioError, check_against_lab, load_scenario
from simulator.tenant.errors import TenantError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_SEED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario file(s) (YAML)")
    parser.add_argument("--seed", type=int, default=None,
                        help=f"seed for every random choice (default: the scenario's seed:, else {DEFAULT_SEED})")
    parser.add_argument("--out", metavar="DIR", help="output folder (default runs/<scenario>-<timestamp>/)")
    parser.add_argument("--pace", type=float, default=None, metavar="N",
                        help="sim only: run at N virtual seconds per wall second (default: as fast as possible)")
    parser.add_argument("--network", choices=("sim", "real"), default="sim",
                        help="sim: in-memory, virtual time (default); real: loopback sockets, wall time")
    parser.add_argument("--junit", metavar="FILE", help="also write one JUnit XML for all scenarios here")
    parser.add_argument("--certs", metavar="DIR", help="lab certificates folder (default: the lab's choice)")
    parser.add_argument("--verbose", "-v", action="store_true", help="also print every SIP message in the timeline")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the verdicts")


def _out_dir(args: argparse.Namespace, scenario: Scenario, several: bool, stamp: str) -> Path:
    if args.out:
        return Path(args.out) / scenario.name if several else Path(args.out)
    return Path("runs") / f"{scenario.name}-{stamp}"


def execute(scenario: Scenario, *, seed: int, network: str = "sim", pace: float | None = None,
            console: Console | None = None, verbose: bool = False, lab_factory: Any = None,
            certs_dir: str | None = None) -> tuple[RunResult, list[dict[str, Any]]]:
    """Run one scenario to completion; returns the result and the event records."""
    from simulator.scenario.runner import run_with_lab

    sink: list[Any] = []
    printer = TimelinePrinter(console, verbose, rebase=network != "sim") if console is not None else None
    coro = run_with_lab(scenario, seed=seed, network=network, lab_factory=lab_factory, certs_dir=certs_dir,
                        on_event=printer, sink=sink)
    if network == "sim":
        from simulator.net.clock import run_sim

        result = run_sim(coro, pace=pace)
    else:
        result = asyncio.run(coro)
    records = list(sink[0].events.records) if sink else []
    t0 = next((r["t"] for r in records if r["t"] > 0), 0.0) if network != "sim" else 0.0
    if t0:
        # the real network's clock is the OS monotonic clock: count from the lab's first timed event
        records = [{**r, "t": max(0.0, round(r["t"] - t0, 6))} for r in records]
        for step in result.steps:
            step.t_virtual = max(0.0, step.t_virtual - t0)
    return result, records


def _print_verdict(console: Console, result: RunResult, out: Path | None) -> None:
    console.print()
    for s in result.steps:
        mark = {"passed": "[green]✔ pass[/green]", "failed": "[bold red]✘ FAIL[/bold red]",
                "skipped": "[dim]- skip[/dim]"}[s.status]
        detail = f" [dim]{escape(s.detail)}[/dim]" if s.detail else ""
        console.print(f"{mark} [dim]{format_time(s.t_virtual)}[/dim] {escape(s.name)}"
                      f" [dim]({escape(s.position)})[/dim]{detail}")
    if result.error:
        console.print(f"[bold red]run error:[/bold red] {escape(result.error)}")
    m = result.metrics
    figures = ", ".join(f"{k}={v}" for k, v in m.items() if v is not None)
    if figures:
        console.print(f"[bold]metrics[/bold] {figures}")
    verdict = "[bold green]PASSED[/bold green]" if result.passed else "[bold red]FAILED[/bold red]"
    where = f" → {out}" if out else ""
    console.print(f"{verdict} {escape(result.scenario)} (seed {result.seed}){escape(where)}")


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if args.pace is not None and (args.pace <= 0 or args.network != "sim"):
        err.print("drlab run: --pace needs a positive number and the sim network")
        return EXIT_BAD_INPUT
    scenarios = []
    from simulator.lab.spec import LabError

    for path in args.scenarios:
        try:
            scenario = load_scenario(path)
            check_against_lab(scenario)  # names of links, nodes and clients, before anything runs
        except (ScenarioError, TenantError, LabError) as exc:
            err.print(escape(str(exc)))
            return EXIT_BAD_INPUT
        scenarios.append(scenario)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    results = []
    for scenario in scenarios:
        seed = args.seed if args.seed is not None else (scenario.seed if scenario.seed is not None else DEFAULT_SEED)
        if not args.quiet:
            console.rule(f"[bold]{escape(scenario.name)}[/bold] seed {seed} · {args.network}"
                         + (f" · pace {args.pace:g}×" if args.pace else ""))
        try:
            result, records = execute(scenario, seed=seed, network=args.network, pace=args.pace,
                                      console=None if args.quiet else console, verbose=args.verbose,
                                      certs_dir=args.certs)
        except (ScenarioError, TenantError) as exc:  # the lab or tenant file is wrong
            err.print(escape(str(exc)))
            return EXIT_BAD_INPUT
        except Exception as exc:
            if type(exc).__name__ in ("LabError", "SettingsError", "PkiError"):
                err.print(escape(str(exc)))
                return EXIT_BAD_INPUT
            raise
        out = _out_dir(args, scenario, len(scenarios) > 1, stamp)
        write_outputs(out, result, records)
        _print_verdict(console, result, out)
        results.append(result)
    if args.junit:
        from simulator.report import junit_xml

        Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
        Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


if __name__ == "__main__":  # python -m simulator.scenario.cli ...
    p = argparse.ArgumentParser(prog="drlab run")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
