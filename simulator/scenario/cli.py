"""`drlab run SCENARIO... [--seed N] [--out DIR] [--pace N [--view HOST:PORT|off]] [--network sim|real] [--time-scale K]
[--address-block CIDR]` or `drlab run SCENARIO... --attach URL`.

Every scenario file is validated before any runs (a mistake anywhere exits 2 with
`FILE:LINE:COL: what was expected`). Each scenario then runs on a fresh lab — on the sim network
under the virtual clock by default (`--pace N`: N virtual seconds per wall second, for watching),
or on real loopback sockets in real time with `--network real` (`--time-scale K`: every role
timer K times faster, times reported in the scenario's units; `--address-block`: where the hosts
live, default a free 127.a.b.0/24, their map printed first) — while a live timeline prints (run
time, node, event) with a verdict per step. Outputs go to `--out DIR` (default
`runs/<scenario>-<UTC timestamp>/`; with several scenarios, one sub-folder each): events.jsonl,
result.json, junit.xml, report.html, capture.pcap (simulator.report).

With `--pace`, the run also serves the live view and the control API of the lab it builds, as
`drlab lab up` does (simulator.control.playback; docs/live-lab.md), on `--view HOST:PORT`
(default 127.0.0.1:8765; `--view off`: not served), the URL printed first. A busy port exits 2
before the lab starts. Commands sent through the API change the run (they are recorded in its
events); `POST /api/stop` stops it as Ctrl-C does. `--view` needs `--pace` (an unpaced run is
over before a page could follow it, and the real network and `--attach` are not served).

With `--attach URL` the steps run against a lab that is already up (`drlab lab up`), through its
control API (simulator.control.attach); the outputs are made the same way, from the event records
the lab streams from the attach on, and the lab keeps running afterwards.

Exit status (as every drlab command, `simulator.cli`): 0 every step of every scenario passed,
1 a step failed, 2 bad input, a run that broke (the lab did not start) or an interrupted run.

Ctrl-C, or a reader that closes standard output (`drlab run ... | head`), stops the run cleanly:
the outputs are written with what happened so far, the unfinished steps marked "interrupted" and
the ones never reached "not reached", and the command exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import io
import math
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from simulator.cli import EXIT_ERROR, EXIT_FAILED, EXIT_OK
from simulator.control.api import ControlPortError
from simulator.control.attach import attach_problems, run_attached
from simulator.control.lab_cli import DEFAULT_CONTROL, parse_control
from simulator.control.playback import PlaybackView
from simulator.errors import InputError
from simulator.net.clock import run_sim
from simulator.pki import PkiError
from simulator.report import RunResult, junit_xml, write_outputs
from simulator.report.timeline import TimelinePrinter, address_table, format_time
from simulator.roles.settings import SettingsError
from simulator.scenario.loader import Scenario, check_against_lab, load_scenario
from simulator.scenario.runner import RunProgress, address_map, run_with_lab

DEFAULT_SEED = 1
BAD_INPUT = (InputError, SettingsError, PkiError)  # a lab, tenant or scenario file, a setting, the certificates


class RunStopper:
    """Stops a run cleanly: Ctrl-C, or the reader of standard output leaving, cancels the run's task.

    Cancelling (not a KeyboardInterrupt wherever the code happens to be) lets the lab stop and
    the runner record which steps were unfinished. A second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None

    def stop(self, reason: str) -> None:
        self.reason = self.reason or reason
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)

    async def guard(self, coro: Coroutine[Any, Any, RunResult]) -> RunResult:
        """Run `coro` as the task `stop()` cancels."""
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        if self.reason is not None:
            coro.close()
            raise asyncio.CancelledError()
        return await coro

    @contextlib.contextmanager
    def on_ctrl_c(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def interrupt(signum: int, frame: Any) -> None:
            if self.reason is not None:
                raise KeyboardInterrupt()
            self.stop("Ctrl-C")

        previous = signal.signal(signal.SIGINT, interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class PipeSafeStdout(io.TextIOBase):
    """Standard output for the console: when its reader closes it (`| head`), the run stops cleanly.

    The first failed write points the file descriptor at /dev/null (so nothing fails again, even
    at exit) and asks the stopper to stop the run."""

    def __init__(self, stream: Any, stopper: RunStopper) -> None:
        self.stream = stream
        self.stopper = stopper
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._went_away()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._went_away()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def _went_away(self) -> None:
        self.gone = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        self.stopper.stop("standard output was closed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario file(s) (YAML)")
    parser.add_argument("--seed", type=int, default=None,
                        help=f"seed for every random choice (default: the scenario's seed:, else {DEFAULT_SEED})")
    parser.add_argument("--out", metavar="DIR", help="output folder (default runs/<scenario>-<timestamp>/)")
    parser.add_argument("--pace", type=float, default=None, metavar="N",
                        help="sim only: run at N virtual seconds per wall second, to watch, and serve the live view"
                             " (see --view; default: as fast as possible, not served)")
    parser.add_argument("--view", metavar="HOST:PORT",
                        help=f"with --pace: serve the live view and control API of the scenario's lab here "
                             f"(default {DEFAULT_CONTROL}; 'off': not served); API commands change the run")
    parser.add_argument("--network", choices=("sim", "real"), default="sim",
                        help="sim: in-memory, virtual time (default); real: loopback sockets, wall time")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="K",
                        help="real only: run every role timer K times faster; times are reported in the scenario's units")
    parser.add_argument("--address-block", metavar="CIDR",
                        help="real only: place the hosts in this block, e.g. 127.0.0.0/24 (default: a free 127.a.b.0/24)")
    parser.add_argument("--attach", metavar="URL",
                        help="run the steps against the lab running at URL (drlab lab up) through its control API")
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
            certs_dir: str | None = None, stopper: RunStopper | None = None,
            time_scale: float = 1.0, address_block: str | None = None, attach: str | None = None,
            view: PlaybackView | None = None) -> tuple[RunResult, list[dict[str, Any]]]:
    """Run one scenario to completion; returns the result and the event records (times in run
    seconds, in the scenario's units). On the real network the console first shows the address map.
    `view` serves the lab's live view while it runs (sim network; ControlPortError if it cannot listen).

    Stopped (Ctrl-C, `stopper.stop()`), it returns what happened so far, `result.error` saying
    "interrupted: why"; the caller decides whether to go on."""
    stopper = stopper or RunStopper()
    progress = RunProgress(scenario, seed)
    printer = None
    if console is not None:
        timeline = TimelinePrinter(console, verbose)

        def printer(record: dict[str, Any]) -> None:
            timeline(record)
            if record["event"] == "lab.started" and network == "real":  # every node listens now
                for line in address_table(address_map(progress.lab)):
                    console.print(f"[dim]{escape(line)}[/dim]")

    if attach is not None:
        run = run_attached(scenario, attach, seed=seed, on_event=printer, progress=progress)
    else:
        run = run_with_lab(scenario, seed=seed, network=network, lab_factory=lab_factory, certs_dir=certs_dir,
                           on_event=printer, progress=progress, time_scale=time_scale, address_block=address_block,
                           view=view)
    coro = stopper.guard(run)
    try:
        with stopper.on_ctrl_c():
            result = run_sim(coro, pace=pace) if network == "sim" and attach is None else asyncio.run(coro)
    except asyncio.CancelledError:
        if stopper.reason is None:
            raise
        result = progress.partial_result(f"interrupted: {stopper.reason}")
    return result, progress.records


def interrupted(result: RunResult) -> bool:
    return result.error.startswith("interrupted")


def _print_verdict(console: Console, result: RunResult, out: Path | None) -> None:
    console.print()
    for s in result.steps:
        mark = {"passed": "[green]✔ pass[/green]", "failed": "[bold red]✘ FAIL[/bold red]",
                "skipped": "[dim]- skip[/dim]"}[s.status]
        detail = f" [dim]{escape(s.detail)}[/dim]" if s.detail else ""
        console.print(f"{mark} [dim]{format_time(s.t_virtual)}[/dim] {escape(s.name)}"
                      f" [dim]({escape(str(s.position or ''))})[/dim]{detail}")
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
    stopper = RunStopper()
    console = Console(file=PipeSafeStdout(sys.stdout, stopper), highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return _run(args, console, err, stopper)
    except KeyboardInterrupt:  # Ctrl-C while loading or writing, or a second one during a run
        err.print("drlab run: interrupted")
        return EXIT_ERROR


def _run(args: argparse.Namespace, console: Console, err: Console, stopper: RunStopper) -> int:
    if args.pace is not None and (args.pace <= 0 or args.network != "sim"):
        err.print("drlab run: --pace needs a positive number and the sim network")
        return EXIT_ERROR
    if args.time_scale != 1 and (not math.isfinite(args.time_scale) or args.time_scale <= 0 or args.network != "real"):
        err.print("drlab run: --time-scale needs a positive number and the real network (sim time is virtual already)")
        return EXIT_ERROR
    if args.address_block is not None and args.network != "real":
        err.print("drlab run: --address-block needs the real network")
        return EXIT_ERROR
    view_at: tuple[str, int] | None = None
    if args.view is not None and args.view != "off" and args.pace is None:
        err.print("drlab run: --view serves a paced run; add --pace N (sim network), e.g. --pace 10")
        return EXIT_ERROR
    if args.pace is not None and args.view != "off" and args.attach is None:
        try:
            view_at = parse_control(args.view or DEFAULT_CONTROL)
        except ValueError as exc:
            err.print(f"drlab run: {escape(str(exc).replace('--control', '--view'))}")
            return EXIT_ERROR
    if args.attach is not None and (args.pace is not None or args.network != "sim" or args.time_scale != 1
                                    or args.certs is not None):
        err.print("drlab run: --attach runs on the lab at the URL, whose network, pace and time scale are its own;"
                  " drop --network, --pace, --time-scale, --address-block and --certs")
        return EXIT_ERROR
    scenarios = []
    for path in args.scenarios:
        try:
            scenario = load_scenario(path)
            check_against_lab(scenario)  # names of links, nodes and clients, before anything runs
        except InputError as exc:
            err.print(escape(str(exc)))
            return EXIT_ERROR
        problems = attach_problems(scenario) if args.attach is not None else []
        if problems:
            err.print("drlab run --attach: " + escape("; ".join(problems)))
            return EXIT_ERROR
        scenarios.append(scenario)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    results = []

    def show_url(url: str) -> None:  # with --quiet too: the trainer needs it
        (err if args.quiet else console).print(f"live view and control API: [bold]{url}[/bold]")

    for scenario in scenarios:
        seed = args.seed if args.seed is not None else (scenario.seed if scenario.seed is not None else DEFAULT_SEED)
        if not args.quiet:
            console.rule(f"[bold]{escape(scenario.name)}[/bold] seed {seed} · "
                         + (escape(f"attached to {args.attach}") if args.attach else args.network)
                         + (f" · pace {args.pace:g}×" if args.pace else "")
                         + (f" · time scale {args.time_scale:g}×" if args.time_scale != 1 else ""))
        view = None
        if view_at is not None:
            view = PlaybackView(*view_at, on_stop=stopper.stop, on_url=show_url)
        try:
            result, records = execute(scenario, seed=seed, network=args.network, pace=args.pace,
                                      console=None if args.quiet else console, verbose=args.verbose,
                                      certs_dir=args.certs, stopper=stopper, time_scale=args.time_scale,
                                      address_block=args.address_block, attach=args.attach, view=view)
        except BAD_INPUT as exc:  # the lab or tenant file, a setting or the certificates are wrong
            err.print(escape(str(exc)))
            return EXIT_ERROR
        except ControlPortError as exc:  # as drlab lab up says it (simulator.control.lab_cli)
            err.print(f"drlab run: the live view {escape(str(exc))}; choose another with --view HOST:PORT"
                      " or --view off")
            return EXIT_ERROR
        out = _out_dir(args, scenario, len(scenarios) > 1, stamp)
        write_outputs(out, result, records)
        results.append(result)
        if interrupted(result):
            err.print(f"drlab run: {escape(result.error)}; what happened so far is in {escape(str(out))}")
            break
        _print_verdict(console, result, out)
    if args.junit:
        Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
        Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
    if any(r.error for r in results):
        return EXIT_ERROR
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


if __name__ == "__main__":  # python -m simulator.scenario.cli ...
    p = argparse.ArgumentParser(prog="drlab run")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
