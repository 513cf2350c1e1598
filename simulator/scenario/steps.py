"""Scenario steps: one class per step kind, each parsing, checking and running itself.

A step class is registered by naming its kind (`class Cut(Step, kind="cut")`); `STEPS` is the
registry the loader reads, and the step table in docs/scenarios.md is `steps_table()` (a test
holds the two equal; `python -m simulator.scenario.steps` prints the table). To add a step, write
one class here: its fields, `forms` (the docs rows), `parse`, `describe`, `check` (the names it
uses, against the lab file, before anything runs) and `run` (against the live lab; a
`StepFailed` is the step's failure, its return value the detail).
"""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from simulator.errors import SourcePosition
from simulator.lab.timescale import link_delays
from simulator.media.quality import audio_flow
from simulator.report.timeline import describe_audio, describe_quality
from simulator.roles.teams_client import AnswerPolicy
from simulator.scenario.reader import Condition, Reader, ScenarioError, format_duration, parse_condition
from simulator.tenant.changes import CHANGES, apply_change

if TYPE_CHECKING:
    from simulator.lab.spec import LabSpec
    from simulator.scenario.runner import Runner

STEPS: dict[str, type[Step]] = {}
LINK_MODES = ("down", "blackhole")
CALL_ACTIONS = ("answer", "hold", "resume", "transfer", "hangup")
QUALITY_VERDICTS = ("good", "poor", "unclassified")  # CQD's audio stream classes [S30]
AUDIO_FLOWS = ("two-way", "one-way", "none")  # simulator/media/quality.py audio_flow
QUALITY_WAIT_S = 10.0  # how long a call step waits for the far end's media figures after hanging up


class StepFailed(Exception):
    """A step's expectation did not hold (the message is the detail)."""


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class LabNames:
    """The links, nodes and clients a lab file declares; each check raises ScenarioError at `pos`."""

    def __init__(self, spec: LabSpec, lab_name: str) -> None:
        self.spec = spec
        self.lab_name = lab_name
        self.nodes = {n.lower(): decl for n, decl in spec.nodes.items()}
        self.fqdns = {decl.host.lower(): decl for decl in spec.nodes.values()}
        self.users = {str(decl.options.get("user") or decl.options.get("upn") or "").lower(): decl
                      for decl in spec.nodes.values() if decl.role == "teams_client"}

    def _known(self, kind: str, names: Any) -> str:
        return f"{kind} in {self.lab_name}: {', '.join(sorted(names)) or 'none'}"

    def link(self, name: str, pos: SourcePosition) -> None:
        if name not in self.spec.links:
            raise ScenarioError(f"no link {name!r} ({self._known('links', self.spec.links)})", pos)

    def node(self, name: str, pos: SourcePosition, role: str | None = None, what: str = "node") -> None:
        decl = self.nodes.get(name.lower()) or self.fqdns.get(name.lower())
        if decl is None or (role is not None and decl.role != role):
            choices = {n for n, d in self.nodes.items() if role is None or d.role == role}
            raise ScenarioError(f"no {what} {name!r} ({self._known(what + 's', choices)})", pos)

    def client(self, name: str, pos: SourcePosition) -> None:
        decl = self.nodes.get(name.lower())
        if name.lower() not in self.users and not (decl is not None and decl.role == "teams_client"):
            raise ScenarioError(f"no client for {name!r} ({self._known('clients', self.users)})", pos)

    def has_role(self, role: str) -> bool:
        return bool(self.spec.nodes_with_role(role))

    def conditions(self, conditions: tuple[Condition, ...]) -> None:
        for cond in conditions:
            if cond.subject == "client":
                for who in cond.args["clients"]:
                    self.client(who, cond.position)
            elif cond.subject == "sba":
                self.node(cond.args["sba"], cond.position, "sba", "SBA")


@dataclass(frozen=True, kw_only=True)
class Step(ABC):
    """What every step has: its position in the file, an optional `name:` and `at:`."""

    kind: ClassVar[str]
    forms: ClassVar[tuple[tuple[str, str], ...]]  # (form, what it does): the docs table's rows
    position: SourcePosition
    title: str | None = None  # the file's `name:`; else `describe()`
    at: float | None = None   # absolute virtual time: the step starts no earlier

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind:
            cls.kind = kind
            STEPS[kind] = cls

    @classmethod
    @abstractmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        """The step's own fields from the value of its action key."""

    @property
    def name(self) -> str:
        return self.title or self.describe()

    @property
    def background(self) -> bool:
        """True when the run goes on with the next steps while this one runs."""
        return False

    def describe(self) -> str:
        return self.kind

    @abstractmethod
    def check(self, lab: LabNames) -> None:
        """Every name this step uses exists in the lab (ScenarioError at the step otherwise)."""

    @abstractmethod
    async def run(self, runner: Runner) -> str:
        """Do the step on the live lab: the detail for the report, or StepFailed."""


def _link(r: Reader, node: yaml.Node, what: str, extra: tuple[str, ...]) -> dict[str, Any]:
    """`cut: LINK` or `cut: {link: LINK, ...extra}`: {"link": name, extra key: its value node}."""
    if isinstance(node, yaml.ScalarNode):
        return {"link": r.text(node, f"{what} (a link name)")}
    m = r.entries(node, what, ("link", *extra), ("link",))
    return {"link": r.text(m["link"][1], "link"), **{k: m[k][1] for k in extra if k in m}}


@dataclass(frozen=True, kw_only=True)
class Cut(Step, kind="cut"):
    forms = (("`cut: LINK` or `cut: {link: LINK, mode: down\\|blackhole}`",
              "`down` resets connections; `blackhole` drops silently"),)
    link: str
    mode: str = "down"

    @classmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        args = _link(r, node, "cut", ("mode",))
        return {"link": args["link"], "mode": r.choice(args["mode"], "mode", LINK_MODES) if "mode" in args else "down"}

    def describe(self) -> str:
        return f"cut {self.link}" + (" (blackhole)" if self.mode == "blackhole" else "")

    def check(self, lab: LabNames) -> None:
        lab.link(self.link, self.position)

    async def run(self, runner: Runner) -> str:
        link = runner.lab.link(self.link)
        await _maybe(link.blackhole() if self.mode == "blackhole" else link.down())
        return ""


@dataclass(frozen=True, kw_only=True)
class Restore(Step, kind="restore"):
    forms = (("`restore: LINK`", "link up"),)
    link: str

    @classmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        return {"link": _link(r, node, "restore", ())["link"]}

    def describe(self) -> str:
        return f"restore {self.link}"

    def check(self, lab: LabNames) -> None:
        lab.link(self.link, self.position)

    async def run(self, runner: Runner) -> str:
        await _maybe(runner.lab.link(self.link).up())
        return ""


@dataclass(frozen=True, kw_only=True)
class Impair(Step, kind="impair"):
    forms = (("`impair: {link: LINK, latency: 200ms, jitter: 20ms, loss: 0.05}`", "at least one of the three"),
             ("`impair: {link: LINK, direction: SITE->SITE, loss: 100%}`",
              "one way only: the packets crossing from the first site to the second (a loss only)"))
    link: str
    latency: float | None = None
    jitter: float | None = None
    loss: float | None = None
    direction: tuple[str, str] | None = None  # (from site, to site): the loss hits that way only

    @classmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        args = _link(r, node, "impair", ("latency", "jitter", "loss", "direction"))
        if not {"latency", "jitter", "loss"} & set(args):
            raise r.fail(node, "impair needs latency, jitter or loss")
        out: dict[str, Any] = {"link": args["link"]}
        for key in ("latency", "jitter"):
            if key in args:
                out[key] = r.duration(args[key], key)
        if "loss" in args:
            out["loss"] = _fraction(r, args["loss"], "loss (a fraction, or a percentage: 12%)")
        if "direction" in args:
            ends = [end.strip() for end in r.text(args["direction"], "direction (FROM-SITE->TO-SITE)").split("->")]
            if len(ends) != 2 or not all(ends) or ends[0] == ends[1]:
                raise r.fail(args["direction"], "direction must be FROM-SITE->TO-SITE, two sites the link joins")
            if "latency" in args or "jitter" in args or "loss" not in args:
                raise r.fail(args["direction"], "a one-way impairment is a loss only (latency and jitter stay both ways)")
            out["direction"] = (ends[0], ends[1])
        return out

    @property
    def impairment(self) -> dict[str, float]:
        return {k: v for k, v in (("latency", self.latency), ("jitter", self.jitter), ("loss", self.loss))
                if v is not None}

    def describe(self) -> str:
        way = f" {self.direction[0]}->{self.direction[1]}" if self.direction else ""
        return f"impair {self.link}{way} " + " ".join(f"{k}={v}" for k, v in self.impairment.items())

    def check(self, lab: LabNames) -> None:
        lab.link(self.link, self.position)
        if self.direction is not None:
            decl = lab.spec.links[self.link]
            if set(self.direction) != {decl.a, decl.b}:
                raise ScenarioError(f"direction {self.direction[0]}->{self.direction[1]}: link {self.link} joins "
                                    f"{decl.a} and {decl.b}", self.position)

    async def run(self, runner: Runner) -> str:
        toward = {"toward": self.direction[1]} if self.direction else {}
        await _maybe(runner.lab.link(self.link).impair(**link_delays(self.impairment, runner.time_scale), **toward))
        return ""


def _fraction(r: Reader, node: yaml.Node, what: str) -> float:
    """A probability: a number 0..1, or a percentage as text (`12%`, `100 %`)."""
    text = node.value.strip() if isinstance(node, yaml.ScalarNode) else ""
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            raise r.fail(node, f"{what} must be a number, not {text!r}") from None
        if not 0.0 <= percent <= 100.0:
            raise r.fail(node, f"{what} must be between 0% and 100%, not {text}")
        return percent / 100.0
    return r.number(node, what, 0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class Wait(Step, kind="wait"):
    forms = (("`wait: 90s` / `wait: {for: 90s}`", "let virtual time pass"),
             ("`wait: {until: CONDITION, timeout: 5m}`",
              "re-checked on every event; fails at the timeout with what was seen"))
    duration: float | None = None    # wait this long ...
    until: Condition | None = None   # ... or until this holds, at most `timeout`
    timeout: float = 0.0

    @classmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            return {"duration": r.duration(node, "wait")}
        m = r.entries(node, "wait", ("until", "timeout", "for"))
        if "for" in m and ("until" in m or "timeout" in m):
            raise r.fail(node, "wait takes either 'for' or 'until' with 'timeout'")
        if "for" in m:
            return {"duration": r.duration(m["for"][1], "for")}
        if "until" not in m or "timeout" not in m:
            raise r.fail(node, "wait needs 'until' (a condition) and 'timeout' (a duration)")
        return {"until": parse_condition(r, m["until"][1], "until"), "timeout": r.duration(m["timeout"][1], "timeout")}

    def describe(self) -> str:
        return f"wait until {self.until.describe()}" if self.until else f"wait {format_duration(self.duration or 0)}"

    def check(self, lab: LabNames) -> None:
        lab.conditions((self.until,) if self.until else ())

    async def run(self, runner: Runner) -> str:
        if self.until is None:
            await runner.sleep(self.duration or 0.0)
            return ""
        ok, detail = await runner.view.wait_for(self.until, self.timeout)
        if not ok:
            raise StepFailed(detail)
        return detail


@dataclass(frozen=True, kw_only=True)
class Expect(Step, kind="expect"):
    forms = (("`expect: CONDITION` or `expect: [CONDITION, ...]`", "must hold now"),)
    conditions: tuple[Condition, ...]

    @classmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
        if not nodes:
            raise r.fail(node, "expect needs at least one condition")
        return {"conditions": tuple(parse_condition(r, n, "expect") for n in nodes)}

    def describe(self) -> str:
        return "expect " + "; ".join(c.describe() for c in self.conditions)

    def check(self, lab: LabNames) -> None:
        lab.conditions(self.conditions)

    async def run(self, runner: Runner) -> str:
        details, misses = [], []
        for cond in self.conditions:
            ok, detail = runner.view.check(cond)
            (details if ok else misses).append(detail)
        if misses:
            raise StepFailed("; ".join(misses))
        return "; ".join(details)


@dataclass(frozen=True)
class CallAction:
    after: float  # seconds after the call was answered (or placed, for answer)
    action: str
    target: str | None = None  # transfer target
    position: SourcePosition | None = None


@dataclass(frozen=True, kw_only=True)
class Call(Step, kind="call"):
    forms = (("see below", "place a call, check how it went, then run its actions"),)
    caller: str                     # `from`: a UPN or a PSTN number
    dial: str                       # `to`: what is dialled, as typed
    pstn: str | None = None         # the carrier node a PSTN caller dials in from
    callee: str | None = None       # the Teams user who should ring
    answer_after: float | None = None
    actions: tuple[CallAction, ...] = ()
    in_background: bool = False
    expect: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        m = r.entries(node, "call", ("from", "to", "pstn", "callee", "answer_after", "actions", "hangup_after",
                                  "background", "expect"), ("from", "to"))
        out: dict[str, Any] = {"caller": r.text(m["from"][1], "from (a user's UPN or a PSTN number)"),
                               "dial": r.text(m["to"][1], "to (a dial string)")}
        if "pstn" in m:
            if "@" in out["caller"]:
                raise r.fail(m["pstn"][0], "pstn (the carrier node a PSTN caller dials in from) needs a number in 'from'")
            out["pstn"] = r.text(m["pstn"][1], "pstn (a carrier node name)")
        if "callee" in m:
            out["callee"] = r.text(m["callee"][1], "callee (the UPN that should ring)")
        if "answer_after" in m:
            out["answer_after"] = r.duration(m["answer_after"][1], "answer_after")
            if "callee" not in out and "@" not in out["dial"]:
                raise r.fail(m["answer_after"][0], "answer_after needs 'callee' (the Teams user who answers)")
        actions: list[CallAction] = []
        for n in r.sequence(m["actions"][1], "actions") if "actions" in m else []:
            am = r.entries(n, "a call action", ("after", *CALL_ACTIONS), ("after",))
            which = [k for k in am if k in CALL_ACTIONS]
            if len(which) != 1:
                raise r.fail(n, f"a call action names exactly one of {', '.join(CALL_ACTIONS)}")
            action, vnode = which[0], am[which[0]][1]
            target = None
            if action == "transfer":
                target = r.text(vnode, "transfer (the dial string to transfer to)")
            else:
                r.bare(vnode, action)
            after = r.duration(am["after"][1], "after")
            if actions and after < actions[-1].after:
                raise r.fail(am["after"][1], f"call actions must be in time order ({after} s is before "
                             f"{actions[-1].after} s)")
            actions.append(CallAction(after, action, target, r.pos(n)))
        if "hangup_after" in m:
            actions.append(CallAction(r.duration(m["hangup_after"][1], "hangup_after"), "hangup", None,
                                      r.pos(m["hangup_after"][1])))
        out["actions"] = tuple(actions)
        out["in_background"] = r.flag(m["background"][1], "background") if "background" in m else False
        out["expect"] = _call_expect(r, m["expect"][1]) if "expect" in m else {}
        return out

    @property
    def background(self) -> bool:
        return self.in_background

    def describe(self) -> str:
        return f"call {self.caller} → {self.dial}"

    def check(self, lab: LabNames) -> None:
        if "@" in self.caller:
            lab.client(self.caller, self.position)
        elif self.pstn:
            lab.node(self.pstn, self.position, "pstn", "PSTN carrier node")
        elif not lab.has_role("pstn"):
            raise ScenarioError("a call from a PSTN number needs a pstn node in the lab", self.position)
        if self.callee:
            lab.client(self.callee, self.position)

    async def run(self, runner: Runner) -> str:
        expect = self.expect
        callee_upn = self.callee or (self.dial if "@" in self.dial else None)
        answer_action = next((x for x in self.actions if x.action == "answer"), None)
        callee = runner.lab.client(callee_upn) if callee_upn else None
        if callee is not None:
            if answer_action is not None:
                callee.answer_policy = AnswerPolicy("ring")
            elif self.answer_after is not None:
                callee.answer_policy = AnswerPolicy("auto", self.answer_after / runner.time_scale)
        answering = None
        if answer_action is not None:
            if callee is None:
                raise StepFailed("an 'answer' action needs 'callee' (a Teams user)")
            answering = asyncio.ensure_future(_answer(runner, callee, answer_action.after))
        start = runner.now()
        call = await _place(runner.lab, self.caller, self.dial, self.pstn)
        if answering is not None and not answering.done():
            answering.cancel()
        status = getattr(call, "status", None)
        answered_at = runner.now()
        misses, facts = [], [f"status {status}"]
        if "status" in expect and status != expect["status"]:
            reason = getattr(call, "reason", None)
            misses.append(f"status: expected {expect['status']}, got {status}" + (f" ({reason})" if reason else ""))
        if getattr(call, "answered_by", None):
            facts.append(f"answered by {_contact_name(call.answered_by)}")
        if "answered_by" in expect and not _same_party(expect["answered_by"], getattr(call, "answered_by", None)):
            misses.append(f"answered_by: expected {expect['answered_by']}, got {getattr(call, 'answered_by', None)}")
        if "via_sba" in expect and bool(getattr(call, "via_sba", False)) != expect["via_sba"]:
            misses.append(f"via_sba: expected {expect['via_sba']}, got {getattr(call, 'via_sba', None)}"
                          f" (registrar {getattr(call, 'registrar', None)})")
        path = runner.view.signalling_path(start, answered_at, origin=_origin(runner.lab, self.caller, self.pstn),
                                           call_id=getattr(call, "call_id", None))
        facts.append("path " + " → ".join(path))
        if "path" in expect and not runner.view.path_matches(expect["path"], path):
            misses.append(f"path: expected {' → '.join(expect['path'])}, got {' → '.join(path) or 'none'}")
        if "media" in expect:
            media = runner.view.media_endpoints(getattr(call, "call_id", ""))
            if not runner.view.path_matches(expect["media"], media) or len(media) != len(expect["media"]):
                misses.append(f"media: expected {' ↔ '.join(expect['media'])}, got {' ↔ '.join(media) or 'none'}")
        if misses:
            raise StepFailed("; ".join(misses))
        for action in self.actions:
            if action.action == "answer":
                continue
            delay = answered_at + action.after - runner.now()
            if delay > 0:
                await runner.sleep(delay)
            if action.action == "hangup" and getattr(call, "state", None) in ("ended", "failed"):
                facts.append(f"hangup: the call had already ended ({_ended_how(call)})")
                continue
            outcome = await (call.transfer(action.target) if action.action == "transfer"
                             else getattr(call, action.action)())
            if action.action == "hangup" and getattr(call, "end_reason", None) == "network_failure":
                facts.append(f"hangup failed: {getattr(call, 'reason', None)}; ended here only")
                raise StepFailed("; ".join(facts))
            facts.append(f"{action.action} → {outcome}")
            if isinstance(outcome, int) and outcome >= 300:
                raise StepFailed(f"{action.action} answered {outcome}; " + "; ".join(facts))
        await self._check_quality(runner, getattr(call, "call_id", ""), path, start, facts)
        return "; ".join(facts)

    async def _check_quality(self, runner: Runner, call_id: str, path: list[str], start: float,
                             facts: list[str]) -> None:
        """Once the call is over: each direction's media quality as a fact, and `expect: quality`.
        The far end's figures come with its BYE, which a slow link delays: an expectation waits a
        little for them."""
        if ("quality" in self.expect or "audio" in self.expect) and self.actions:
            await runner.view.wait_until(lambda: (len(runner.view.call_quality(call_id, path, start)) == 2, ""),
                                         QUALITY_WAIT_S)
        streams = runner.view.call_quality(call_id, path, start)
        facts.extend(f"media at {q['node']}: {describe_quality(q)}" for q in streams)
        audio = describe_audio(streams)
        if audio is not None:
            facts.append(audio)
        if "audio" in self.expect and audio_flow(streams) != self.expect["audio"]:
            raise StepFailed(f"audio: expected {self.expect['audio']}, got {audio_flow(streams)}; " + "; ".join(facts))
        wanted = self.expect.get("quality")
        if wanted is None:
            return
        verdicts = [q.get("poor") for q in streams]
        got = "poor" if any(v is True for v in verdicts) else "good" if verdicts and all(
            v is False for v in verdicts) else "unclassified"
        if got != wanted:
            raise StepFailed(f"quality: expected {wanted}, got {got}; " + "; ".join(facts))


def _ended_how(call: Any) -> str:
    """"media_timeout, ended by self: no media" from a call handle's end fields."""
    parts = [str(getattr(call, "end_reason", None) or getattr(call, "state", "ended"))]
    if getattr(call, "ended_by", None):
        parts.append(f"ended by {call.ended_by}")
    text = ", ".join(parts)
    return f"{text}: {call.reason}" if getattr(call, "reason", None) else text


def _call_expect(r: Reader, node: yaml.Node) -> dict[str, Any]:
    em = r.entries(node, "call expect", ("status", "answered_by", "path", "via_sba", "media", "quality", "audio"))
    expect: dict[str, Any] = {}
    if "status" in em:
        expect["status"] = int(r.number(em["status"][1], "status", 100, 699))
    if "answered_by" in em:
        expect["answered_by"] = r.text(em["answered_by"][1], "answered_by")
    if "path" in em:
        expect["path"] = r.names(em["path"][1], "path")
    if "via_sba" in em:
        expect["via_sba"] = r.flag(em["via_sba"][1], "via_sba")
    if "media" in em:
        expect["media"] = r.names(em["media"][1], "media")
    if "quality" in em:
        expect["quality"] = r.choice(em["quality"][1], "quality", QUALITY_VERDICTS)
    if "audio" in em:
        expect["audio"] = r.choice(em["audio"][1], "audio", AUDIO_FLOWS)
    return expect


async def _answer(runner: Runner, callee: Any, after: float) -> None:
    incoming = await callee.next_incoming_call()
    await runner.sleep(after)
    await incoming.answer()


def _pstn(lab: Any, name: str | None) -> Any:
    if name is not None:
        return lab.node(name)
    for role in (getattr(lab, "nodes", {}) or {}).values():
        if getattr(getattr(role, "spec", None), "role", None) == "pstn":
            return role
    raise StepFailed("the lab has no PSTN carrier to call from")


async def _place(lab: Any, caller: str, dial: str, pstn: str | None) -> Any:
    if "@" in caller:
        return await lab.client(caller).place_call(dial)
    return await _pstn(lab, pstn).call(caller, dial)  # a PSTN caller dials in through its SBC


def _origin(lab: Any, caller: str, pstn: str | None) -> str | None:
    """The caller's node name (where its INVITE starts), or None if the lab does not say."""
    try:
        role = lab.client(caller) if "@" in caller else _pstn(lab, pstn)
    except (KeyError, StepFailed):
        return None
    return getattr(getattr(role, "spec", None), "name", None)


def _contact_name(uri: str) -> str:
    """The answering Contact as people say it: "dave@contoso.com", "+12065550100 at sba1.contoso.com",
    "sip.pstnhub.microsoft.com" (a proxy's own Contact: the cloud answered for the far end)."""
    address = uri.strip("<>").split(";", 1)[0].removeprefix("sips:").removeprefix("sip:").removeprefix("tel:")
    user, at, host = address.rpartition("@")
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if not at:
        return host
    return f"{user} at {host}" if user.lstrip("+").isdigit() else f"{user}@{host}"


def _same_party(wanted: str, got: str | None) -> bool:
    """"+14255550100" matches "sip:+14255550100@host;user=phone"; a UPN matches sip:upn."""
    if got is None:
        return False
    g = got.lower().removeprefix("<").removeprefix("sip:").removeprefix("tel:")
    w = wanted.lower().removeprefix("sip:").removeprefix("tel:")
    return g == w or g.startswith(w + "@") or g.startswith(w + ";") or g.split(">")[0] == w


@dataclass(frozen=True, kw_only=True)
class Change(Step, kind="change"):
    forms = (("`change: {...change..., where: cloud}`",
              "change the tenant mid-run (`simulator.tenant.changes.apply_change`)"),)
    change: dict[str, Any]  # checked by apply_change against the live tenant when the step runs

    @classmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
            raise r.fail(node, f"change must be a mapping with one key, the kind of change ({', '.join(CHANGES)})")
        knode = node.value[0][0]
        if knode.value not in CHANGES:
            raise r.fail(knode, f"unknown change {knode.value!r} (expected one of {', '.join(CHANGES)})")
        return {"change": r.value(node, "change")}

    def describe(self) -> str:
        return f"change: {next(iter(self.change))}"

    def check(self, lab: LabNames) -> None:
        """A change names tenant objects, not lab ones: apply_change checks them when it runs."""

    async def run(self, runner: Runner) -> str:
        # a bad change (unknown user, taken number...) raises TenantError at the step's FILE:LINE
        return apply_change(runner.lab.tenant, self.change, where=self.position)


@dataclass(frozen=True, kw_only=True)
class Sync(Step, kind="sync"):
    forms = (("`sync: sba1`", "the SBA syncs its cache from the cloud now"),)
    sba: str

    @classmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        return {"sba": r.text(node, "sync (the SBA node to sync now)")}

    def describe(self) -> str:
        return f"sync {self.sba}"

    def check(self, lab: LabNames) -> None:
        lab.node(self.sba, self.position, "sba", "SBA")

    async def run(self, runner: Runner) -> str:
        # `check` made sure the node is an SBA: every SBA, in this process or another, has sync_now
        return (f"{self.sba} installed a new configuration from the cloud" if await runner.lab.node(self.sba).sync_now()
                else f"{self.sba} installed nothing new (the cloud unreachable, or nothing changed)")


@dataclass(frozen=True, kw_only=True)
class Restart(Step, kind="restart"):
    forms = (("`restart: carol@contoso.com` or `restart: sbc-sea`", "restart a client (by UPN) or a node"),)
    target: str

    @classmethod
    def parse(cls, r: Reader, node: yaml.Node) -> dict[str, Any]:
        return {"target": r.text(node, "restart (a client UPN or a node name)")}

    def describe(self) -> str:
        return f"restart {self.target}"

    def check(self, lab: LabNames) -> None:
        (lab.client if "@" in self.target else lab.node)(self.target, self.position)

    async def run(self, runner: Runner) -> str:
        role = runner.lab.client(self.target) if "@" in self.target else runner.lab.node(self.target)
        await _maybe(role.restart())
        return ""


def steps_table() -> str:
    """The step table of docs/scenarios.md, made from the registry."""
    rows = ["| step | form | does |", "| --- | --- | --- |"]
    for kind, cls in STEPS.items():
        for i, (form, does) in enumerate(cls.forms):
            rows.append(f"| {f'`{kind}`' if i == 0 else ''} | {form} | {does} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m simulator.scenario.steps: the table to paste into the docs
    print(steps_table(), end="")
