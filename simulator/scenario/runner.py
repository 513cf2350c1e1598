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
    result = run_scenario(scenario, seed=1, network="sim")  # builds the lab, runs on run_sim
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from simulator.report import FAILED, PASSED, SKIPPED, RunResult, StepResult, compute_metrics
from simulator.scenario.expectations import WorldView
from simulator.scenario.loader import Scenario, Step


class StepFailed(Exception):
    """A step's expectation did not hold (the message is the detail)."""


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Runner:
    def __init__(self, scenario: Scenario, lab: Any, *, seed: int) -> None:
        self.scenario = scenario
        self.lab = lab
        self.seed = seed
        self.events = lab.events
        demoted = "last"
        if scenario.settings.get("demoted_gateways") == "skipped":
            demoted = "excluded"
        self.view = WorldView(list(self.events.records), aliases=self._aliases(),
                              tenant_source=lambda: self.lab.tenant, demoted=demoted)
        self.events.subscribe(self.view)
        self.results: list[StepResult] = [StepResult(s.name, SKIPPED, 0.0, "not reached", str(s.position))
                                          for s in scenario.steps]
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
        return float(self.events.clock())

    # -- the run -------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        result = RunResult(self.scenario.name, self.seed)
        try:
            await asyncio.wait_for(self._steps(), self.scenario.timeout)
        except TimeoutError:
            result.error = f"the scenario did not finish within its timeout ({self.scenario.timeout:g} s virtual)"
        for task in self.background:
            if not task.done():
                try:
                    await asyncio.wait_for(asyncio.shield(task), 3600)
                except TimeoutError:
                    task.cancel()
        result.steps = self.results
        cut = next((s.args["link"] for s in self.scenario.steps if s.kind == "cut"), None)
        result.metrics = compute_metrics(self.events.records, link=cut)
        return result

    async def _steps(self) -> None:
        for index, step in enumerate(self.scenario.steps):
            if step.at is not None and step.at > self.now():
                await asyncio.sleep(step.at - self.now())
            self.events.logger().info("step.started", step=step.name, kind=step.kind, position=str(step.position))
            if step.kind == "call" and step.args.get("background"):
                self.background.append(asyncio.ensure_future(self._run_step(index, step)))
                continue
            await self._run_step(index, step)

    async def _run_step(self, index: int, step: Step) -> None:
        try:
            detail = await getattr(self, f"_do_{step.kind}")(step)
            status = PASSED
        except StepFailed as failed:
            status, detail = FAILED, str(failed)
        except Exception as exc:  # a role or the lab refused: the step fails, the run goes on
            status, detail = FAILED, f"error: {type(exc).__name__}: {exc}"
        self.results[index] = StepResult(step.name, status, self.now(), detail or "", str(step.position))
        self.events.logger().info(f"step.{status}", step=step.name, detail=detail or "", position=str(step.position))

    # -- steps ---------------------------------------------------------------------------------
    async def _do_cut(self, step: Step) -> str:
        link = self.lab.link(step.args["link"])
        await _maybe(link.blackhole() if step.args["mode"] == "blackhole" else link.down())
        return ""

    async def _do_restore(self, step: Step) -> str:
        await _maybe(self.lab.link(step.args["link"]).up())
        return ""

    async def _do_impair(self, step: Step) -> str:
        kwargs = {k: step.args[k] for k in ("latency", "jitter", "loss") if k in step.args}
        await _maybe(self.lab.link(step.args["link"]).impair(**kwargs))
        return ""

    async def _do_wait(self, step: Step) -> str:
        if "duration" in step.args:
            await asyncio.sleep(step.args["duration"])
            return ""
        ok, detail = await self.view.wait_for(step.args["until"], step.args["timeout"])
        if not ok:
            raise StepFailed(detail)
        return detail

    async def _do_expect(self, step: Step) -> str:
        details, misses = [], []
        for cond in step.args["conditions"]:
            ok, detail = self.view.check(cond)
            (details if ok else misses).append(detail)
        if misses:
            raise StepFailed("; ".join(misses))
        return "; ".join(details)

    async def _do_change(self, step: Step) -> str:
        from simulator.tenant.changes import apply_change

        # a bad change (unknown user, taken number...) raises TenantError at the step's FILE:LINE
        return apply_change(self.lab.tenant, step.args["change"], where=step.position)

    async def _do_sync(self, step: Step) -> str:
        sba = self.lab.node(step.args["sba"])
        for name in ("sync_now", "sync"):
            method = getattr(sba, name, None)
            if method is not None:
                outcome = await _maybe(method())
                return "" if outcome is None else str(outcome)
        raise StepFailed(f"{step.args['sba']} cannot sync (not an SBA?)")

    async def _do_restart(self, step: Step) -> str:
        target = step.args["target"]
        role = self.lab.client(target) if "@" in target else self.lab.node(target)
        await _maybe(role.restart())
        return ""

    async def _do_call(self, step: Step) -> str:
        a = step.args
        expect = a["expect"]
        callee_upn = a.get("callee") or (a["to"] if "@" in a["to"] else None)
        answer_action = next((x for x in a["actions"] if x.action == "answer"), None)
        callee = self.lab.client(callee_upn) if callee_upn else None
        if callee is not None:
            from simulator.roles.teams_client import AnswerPolicy

            if answer_action is not None:
                callee.answer_policy = AnswerPolicy("ring")
            elif "answer_after" in a:
                callee.answer_policy = AnswerPolicy("auto", a["answer_after"])
        answering = None
        if answer_action is not None:
            if callee is None:
                raise StepFailed("an 'answer' action needs 'callee' (a Teams user)")
            answering = asyncio.ensure_future(self._answer(callee, answer_action.after))
        start = self.now()
        call = await self._place(a["from"], a["to"], a.get("pstn"))
        if answering is not None and not answering.done():
            answering.cancel()
        status = getattr(call, "status", None)
        answered_at = self.now()
        misses, facts = [], [f"status {status}"]
        if "status" in expect and status != expect["status"]:
            reason = getattr(call, "reason", None)
            misses.append(f"status: expected {expect['status']}, got {status}" + (f" ({reason})" if reason else ""))
        if getattr(call, "answered_by", None):
            facts.append(f"answered by {call.answered_by}")
        if "answered_by" in expect and not _same_party(expect["answered_by"], getattr(call, "answered_by", None)):
            misses.append(f"answered_by: expected {expect['answered_by']}, got {getattr(call, 'answered_by', None)}")
        if "via_sba" in expect and bool(getattr(call, "via_sba", False)) != expect["via_sba"]:
            misses.append(f"via_sba: expected {expect['via_sba']}, got {getattr(call, 'via_sba', None)}"
                          f" (registrar {getattr(call, 'registrar', None)})")
        path = self.view.signalling_path(start, answered_at, origin=self._origin(a["from"], a.get("pstn")))
        facts.append("path " + " → ".join(path))
        if "path" in expect and not self.view.path_matches(expect["path"], path):
            misses.append(f"path: expected {' → '.join(expect['path'])}, got {' → '.join(path) or 'none'}")
        if "media" in expect:
            media = self.view.media_endpoints(getattr(call, "call_id", ""))
            if not self.view.path_matches(expect["media"], media) or len(media) != len(expect["media"]):
                misses.append(f"media: expected {' ↔ '.join(expect['media'])}, got {' ↔ '.join(media) or 'none'}")
        if misses:
            raise StepFailed("; ".join(misses))
        for action in a["actions"]:
            if action.action == "answer":
                continue
            delay = answered_at + action.after - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            outcome = await self._call_action(call, action.action, action.target)
            facts.append(f"{action.action} → {outcome}")
            if isinstance(outcome, int) and outcome >= 300:
                raise StepFailed(f"{action.action} answered {outcome}; " + "; ".join(facts))
        return "; ".join(facts)

    def _origin(self, caller: str, pstn: str | None) -> str | None:
        """The caller's node name (where its INVITE starts), or None if the lab does not say."""
        try:
            role = self.lab.client(caller) if "@" in caller else self._pstn(pstn)
        except (KeyError, StepFailed):
            return None
        return getattr(getattr(role, "spec", None), "name", None)

    async def _answer(self, callee: Any, after: float) -> None:
        incoming = await callee.next_incoming_call()
        await asyncio.sleep(after)
        await incoming.answer()

    async def _place(self, caller: str, dial: str, pstn: str | None) -> Any:
        if "@" in caller:
            return await self.lab.client(caller).place_call(dial)
        return await self._pstn(pstn).call(caller, dial)  # a PSTN caller dials in through its SBC

    def _pstn(self, name: str | None) -> Any:
        if name is not None:
            return self.lab.node(name)
        for role in (getattr(self.lab, "nodes", {}) or {}).values():
            if getattr(getattr(role, "spec", None), "role", None) == "pstn":
                return role
        raise StepFailed("the lab has no PSTN carrier to call from")

    async def _call_action(self, call: Any, action: str, target: str | None) -> Any:
        if action == "transfer":
            return await call.transfer(target)
        return await getattr(call, action)()


def _same_party(wanted: str, got: str | None) -> bool:
    """"+14255550100" matches "sip:+14255550100@host;user=phone"; a UPN matches sip:upn."""
    if got is None:
        return False
    g = got.lower().removeprefix("<").removeprefix("sip:").removeprefix("tel:")
    w = wanted.lower().removeprefix("sip:").removeprefix("tel:")
    return g == w or g.startswith(w + "@") or g.startswith(w + ";") or g.split(">")[0] == w


LabFactory = Callable[..., Any]


def default_lab_factory() -> LabFactory:
    from simulator.lab import Lab  # imported late: the lab pulls in the whole role stack

    return Lab.load


async def run_with_lab(scenario: Scenario, *, seed: int, network: str = "sim",
                       lab_factory: LabFactory | None = None, certs_dir: str | None = None,
                       on_event: Callable[[dict[str, Any]], None] | None = None,
                       sink: list[Any] | None = None) -> RunResult:
    """Build the lab, start it, run the steps, stop it. `sink` receives the lab (for its events)."""
    factory = lab_factory or default_lab_factory()
    kwargs: dict[str, Any] = {"tenant": scenario.tenant, "network": network, "seed": seed,
                              "settings": scenario.settings}
    if certs_dir is not None:
        kwargs["certs_dir"] = certs_dir
    lab = factory(scenario.lab, **kwargs)
    if sink is not None:
        sink.append(lab)
    if on_event is not None:
        for record in list(lab.events.records):
            on_event(record)
        lab.events.subscribe(on_event)
    result = RunResult(scenario.name, seed)
    try:
        await lab.start()
    except Exception as exc:
        result.error = f"the lab did not start: {type(exc).__name__}: {exc}"
        result.steps = [StepResult(s.name, SKIPPED, 0.0, "not reached", str(s.position)) for s in scenario.steps]
        await _stop(lab)
        return result
    try:
        result = await Runner(scenario, lab, seed=seed).run()
    finally:
        await _stop(lab)
    return result


async def _stop(lab: Any) -> None:
    try:
        await lab.stop()
    except Exception as exc:  # stopping must not hide the verdicts
        lab.events.logger().info("scenario.note", text=f"lab.stop failed: {type(exc).__name__}: {exc}")
