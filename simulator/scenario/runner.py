"""Run a loaded scenario against a lab: steps in order (or at their `at:` virtual times), a verdict each.

The runner only uses the lab API of docs/CONTRACTS.md (`lab.start/stop`, `lab.link(name)`,
`lab.client(upn)`, `lab.node(name)`, `lab.tenant`, `lab.events`) and judges by events
(`expectations.WorldView`), so a small fake lab can stand in for the real one in tests.

Each step emits `step.started` and `step.passed` / `step.failed` (step, detail) into the same
event log, so the console timeline, events.jsonl and report.html show verdicts where they
happened. A step that raises fails with the error's text and the run goes on: one broken step
should not hide what the later steps would have shown. `call` steps with `background: true`
run alongside the following steps; their verdict is recorded when the call's script ends (the
run waits for them before stopping the lab).

    result = await Runner(scenario, lab, seed=1).run()       # -> report.RunResult
    result = await run_with_lab(scenario, seed=1, network="sim", progress=progress)
    result = await run_with_lab(scenario, seed=1, network="real", time_scale=10)   # timers 10x faster

Every time the runner reads or waits for (`at:`, `wait:`, `within`, the scenario's timeout) is run
time in the scenario's units: the lab's event clock counts from the run's start on every network,
and with a time scale K the runner waits 1/K as long on the loop's clock (simulator.lab.timescale).

A step that has started but not finished is recorded as skipped ("interrupted") until its verdict
arrives, so when the run is stopped (Ctrl-C) `RunProgress.partial_result()` shows where.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from simulator.heap import long_lived_heap
from simulator.report import FAILED, PASSED, SKIPPED, RunResult, StepResult, compute_metrics
from simulator.report.calls import call_summaries
from simulator.scenario.expectations import WorldView
from simulator.scenario.loader import Scenario
from simulator.scenario.steps import Cut, Step, StepFailed


class Runner:
    def __init__(self, scenario: Scenario, lab: Any, *, seed: int) -> None:
        self.scenario = scenario
        self.lab = lab
        self.seed = seed
        self.events = lab.events
        demoted = "last"
        if scenario.settings.get("demoted_gateways") == "skipped":
            demoted = "excluded"
        self.time_scale = float(getattr(lab.events.clock, "scale", 1.0))  # a RunClock (lab.timescale) has one
        # a lab attached to (simulator.control.attach) has a past before the run: the state it left
        self.history: list[dict[str, Any]] = list(getattr(lab, "history", ()))
        self.view = WorldView(self.history + list(self.events.records), aliases=self._aliases(),
                              tenant_source=lambda: self.lab.tenant, demoted=demoted, time_scale=self.time_scale)
        self.events.subscribe(self.view)
        self.results: list[StepResult] = not_reached(scenario)
        self.background: list[asyncio.Task[None]] = []

    def _aliases(self) -> dict[str, str]:
        """FQDN -> node name, so a scenario may name a node either way."""
        out: dict[str, str] = {}
        for attr in ("nodes", "roles"):
            nodes = getattr(self.lab, attr, None)
            if isinstance(nodes, dict):
                for name, role in nodes.items():
                    spec = getattr(role, "spec", None)
                    fqdn = getattr(spec, "fqdn", None)
                    if fqdn:
                        out[fqdn] = name
                    upn = (getattr(spec, "options", None) or {}).get("upn") or (getattr(spec, "options", None) or {}).get("user")
                    if upn:
                        out[upn] = name
        return out

    def now(self) -> float:
        """Run seconds, in the scenario's units: the event log's clock (simulator.lab.timescale)."""
        return float(self.events.clock())

    async def sleep(self, seconds: float) -> None:
        """Let `seconds` of scenario time pass (1/time_scale as much on the loop's clock; on a lab
        attached to, until its event records say so)."""
        wait_until = getattr(self.lab, "wait_until", None)
        if wait_until is not None:
            await wait_until(self.now() + seconds)
        else:
            await asyncio.sleep(seconds / self.time_scale)

    # -- the run -------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        result = RunResult(self.scenario.name, self.seed)
        try:
            await asyncio.wait_for(self._steps(), self.scenario.timeout / self.time_scale)
        except TimeoutError:
            result.error = f"the scenario did not finish within its timeout ({self.scenario.timeout:g} s virtual)"
        for task in self.background:
            if not task.done():
                try:
                    await asyncio.wait_for(asyncio.shield(task), 3600)
                except TimeoutError:
                    task.cancel()
        result.steps = self.results
        result.metrics = compute_metrics(self.history + self.events.records, link=first_cut(self.scenario))
        result.calls = call_summaries(self.events.records)
        return result

    async def _steps(self) -> None:
        for index, step in enumerate(self.scenario.steps):
            if step.at is not None and step.at > self.now():
                await self.sleep(step.at - self.now())
            self.events.logger().info("step.started", step=step.name, kind=step.kind, position=str(step.position))
            if step.background:
                self.background.append(asyncio.ensure_future(self._run_step(index, step)))
                continue
            await self._run_step(index, step)

    async def _run_step(self, index: int, step: Step) -> None:
        started = time.perf_counter()
        self.results[index] = StepResult(step.name, SKIPPED, self.now(), INTERRUPTED, step.position)
        try:
            detail = await step.run(self)
            status = PASSED
        except StepFailed as failed:
            status, detail = FAILED, str(failed)
        except Exception as exc:  # a role or the lab refused: the step fails, the run goes on
            status, detail = FAILED, f"error: {type(exc).__name__}: {exc}"
        self.results[index] = StepResult(step.name, status, self.now(), detail or "", step.position,
                                         time.perf_counter() - started)
        self.events.logger().info(f"step.{status}", step=step.name, detail=detail or "", position=str(step.position))


INTERRUPTED = "interrupted: the run stopped before this step finished"
LabFactory = Callable[..., Any]


def not_reached(scenario: Scenario) -> list[StepResult]:
    return [StepResult(s.name, SKIPPED, 0.0, "not reached", s.position) for s in scenario.steps]


def first_cut(scenario: Scenario) -> str | None:
    """The link the failover metrics measure from."""
    return next((s.link for s in scenario.steps if isinstance(s, Cut)), None)


@dataclass
class RunProgress:
    """A run's lab and runner as they are made, so an interrupted run can still report."""

    scenario: Scenario
    seed: int
    lab: Any = None
    runner: Runner | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self.lab.events.records) if self.lab is not None else []

    def partial_result(self, error: str) -> RunResult:
        """The verdicts so far: unfinished steps skipped as "interrupted", the rest "not reached"."""
        steps = self.runner.results if self.runner is not None else not_reached(self.scenario)
        return RunResult(self.scenario.name, self.seed, list(steps),
                         compute_metrics(self.records, link=first_cut(self.scenario)), error,
                         address_map(self.lab) if self.lab is not None else {},
                         calls=call_summaries(self.records))


def default_lab_factory() -> LabFactory:
    from simulator.lab import Lab  # imported late: the lab pulls in the whole role stack

    return Lab.load


async def run_with_lab(scenario: Scenario, *, seed: int, network: str = "sim",
                       lab_factory: LabFactory | None = None, certs_dir: str | None = None,
                       on_event: Callable[[dict[str, Any]], None] | None = None,
                       progress: RunProgress | None = None, time_scale: float = 1.0,
                       address_block: str | None = None,
                       view: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None) -> RunResult:
    """Build the lab, start it, run the steps, stop it. `progress` is kept up to date as they are made.
    `time_scale` and `address_block` are the real network's (simulator.lab.Lab.load). `view(lab)`,
    an async context manager, is entered once the lab is built (before it starts) and left once it
    has stopped: `drlab run --view` serves the live view there (simulator.control.playback)."""
    progress = progress or RunProgress(scenario, seed)
    factory = lab_factory or default_lab_factory()
    kwargs: dict[str, Any] = {"tenant": scenario.tenant, "network": network, "seed": seed,
                              "settings": scenario.settings}
    optional = {"certs_dir": certs_dir, "address_block": address_block,
                "time_scale": time_scale if time_scale != 1 else None}
    kwargs.update({key: value for key, value in optional.items() if value is not None})
    lab = progress.lab = factory(scenario.lab, **kwargs)
    if on_event is not None:
        for record in list(lab.events.records):
            on_event(record)
        lab.events.subscribe(on_event)
    with long_lived_heap():  # the built lab lives as long as the run (again once started: _start_and_run)
        async with view(lab) if view is not None else contextlib.nullcontext():
            return await _start_and_run(scenario, lab, seed, progress)


async def _start_and_run(scenario: Scenario, lab: Any, seed: int, progress: RunProgress) -> RunResult:
    result = RunResult(scenario.name, seed)
    try:
        await lab.start()
    except Exception as exc:
        result.error = f"the lab did not start: {type(exc).__name__}: {exc}"
        result.steps = not_reached(scenario)
        result.addresses = address_map(lab)
        await _stop(lab)
        return result
    try:
        progress.runner = Runner(scenario, lab, seed=seed)
        with long_lived_heap():  # the started lab lives as long as the run: out of the collector's sight
            result = await progress.runner.run()
        result.addresses = address_map(lab)
    finally:
        await _stop(lab)
    return result


def address_map(lab: Any) -> dict[str, Any]:
    """The lab's node -> host -> address:port map (Lab.address_map); empty for a lab without one."""
    addresses = getattr(lab, "address_map", None)
    return addresses() if callable(addresses) else {}


async def _stop(lab: Any) -> None:
    try:
        await lab.stop()
    except Exception as exc:  # stopping must not hide the verdicts
        lab.events.logger().info("scenario.note", text=f"lab.stop failed: {type(exc).__name__}: {exc}")
