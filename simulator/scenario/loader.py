"""Scenario files (docs/scenarios.md): load and validate, every mistake at `FILE:LINE:COL`.

A scenario names a lab file and a tenant file (paths relative to the scenario file), optional
setting overrides, and a list of steps. Each step is a mapping with exactly one action key
(`call`, `cut`, `restore`, `impair`, `wait`, `expect`, `change`, `sync`, `restart`) plus an
optional `name` and `at` (absolute virtual time: the step starts no earlier than that). Unknown
keys are errors, never ignored. The file is composed with the tenant loader's YAML-with-marks
helper (`simulator.tenant.yaml_loader`), so the positions are the same kind as the tenant's.

    scenario = load_scenario("scenarios/branch-outage.yaml")   # -> Scenario, or raises ScenarioError
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import InputError, SourcePosition
from simulator.event_catalogue import CATALOGUE
from simulator.roles.settings import RoleSettings, SettingsError
from simulator.tenant.yaml_loader import _Doc, compose

TOP_LEVEL = ("name", "description", "lab", "tenant", "seed", "settings", "steps", "timeout")
ACTIONS = ("call", "cut", "restore", "impair", "wait", "expect", "change", "sync", "restart")
STEP_KEYS = ("name", "at", *ACTIONS)
CLIENT_STATES = ("online", "offline", "appliance")
GATEWAY_STATES = ("active", "inactive", "demoted")
LINK_MODES = ("down", "blackhole")
CALL_ACTIONS = ("answer", "hold", "resume", "transfer", "hangup")
# what a `route:` condition may expect (tenant/check.py's case keys; `first_route` is its `route`)
ROUTE_EXPECT = ("normalized", "dial_plan", "rule", "usage", "first_route", "routes", "gateways", "no_route")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
DEFAULT_TIMEOUT_S = 8 * 86400.0  # the whole run; long enough for the 7-day token scenario


class ScenarioError(InputError):
    """Bad scenario input: `str(err)` is `FILE:LINE:COL: what was expected`; `drlab run` exits 2."""


@dataclass(frozen=True)
class Condition:
    """A state to expect (or wait for). `subject` is client | gateway | sba | cdrs | route | call."""

    subject: str
    args: dict[str, Any]
    position: SourcePosition

    def describe(self) -> str:
        a = self.args
        if self.subject == "client":
            where = f" at {a['registrar']}" if a.get("registrar") else ""
            return f"{', '.join(a['clients'])} {a['state']}{where}"
        if self.subject == "gateway":
            return f"gateway {a['gateway']} {a['health']}" + (f" (seen by {a['node']})" if a.get("node") else "")
        if self.subject == "sba":
            op = ">=" if a.get("at_least") else "=="
            return f"SBA {a['sba']} cache version {op} {a['cache_version']}"
        if self.subject == "cdrs":
            where = f" at {a['node']}" if a.get("node") else ""
            kind = "uploaded CDRs" if a.get("uploaded") else "CDRs"
            return f"{a['count']} {kind}{where}"
        if self.subject == "route":
            return f"route for {a['user']} dialing {a['dial']}"
        if self.subject == "event":
            fields = ", ".join(f"{k}={v}" for k, v in a["with"].items())
            where = f" at {a['node']}" if a.get("node") else ""
            times = f"{'at least ' if a['at_least'] else ''}{a['count']}×"
            return f"{times} {a['event']}{where}" + (f" ({fields})" if fields else "")
        return self.subject


@dataclass(frozen=True)
class CallAction:
    after: float  # seconds after the call was answered (or placed, for answer)
    action: str
    target: str | None = None  # transfer target
    position: SourcePosition | None = None


@dataclass(frozen=True)
class Step:
    kind: str
    name: str
    position: SourcePosition
    at: float | None = None
    args: dict[str, Any] = field(default_factory=dict)


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


def parse_duration(text: Any) -> float:
    """30, 2.5, "30s", "250ms", "5m", "2h", "7d" -> seconds. ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError("a duration is a number of seconds or text like 30s, 5m, 2h, 7d")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError("a duration is a number of seconds or text like 30s, 5m, 2h, 7d")
    return float(m.group(1)) * _UNIT[m.group(2)]


class _Reader:
    """The scenario-specific shapes on top of the tenant loader's `_Doc` helpers."""

    def __init__(self, path: str) -> None:
        self.doc = _Doc(path)
        self.path = path

    def fail(self, node: yaml.Node, message: str) -> ScenarioError:
        return ScenarioError(message, self.doc.pos(node))

    def pos(self, node: yaml.Node) -> SourcePosition:
        return self.doc.pos(node)

    def entries(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        try:
            return self.doc.mapping(node, what)
        except InputError as err:
            raise ScenarioError(err.message, err.position) from None

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        entries = self.entries(node, what)
        out = {}
        for key, knode, vnode in entries:
            if key not in allowed:
                raise self.fail(knode, f"unknown key {key!r} in {what} (expected one of: {', '.join(allowed)})")
            out[key] = (knode, vnode)
        missing = [r for r in required if r not in out]
        if missing:
            raise self.fail(node, f"{what} needs {', '.join(repr(m) for m in missing)}")
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        try:
            return self.doc.sequence(node, what)
        except InputError as err:
            raise ScenarioError(err.message, err.position) from None

    def scalar(self, node: yaml.Node, typ: type, what: str) -> Any:
        try:
            return self.doc.scalar(node, typ, what)
        except InputError as err:
            raise ScenarioError(err.message, err.position) from None

    def text(self, node: yaml.Node, what: str) -> str:
        return str(self.scalar(node, str, what))

    def choice(self, node: yaml.Node, what: str, choices: tuple[str, ...]) -> str:
        value = self.text(node, what)
        if value not in choices:
            raise self.fail(node, f"{what} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def number(self, node: yaml.Node, what: str, minimum: float = 0.0, maximum: float | None = None) -> float:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what} must be a number")
        value = self.doc.loader.construct_object(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(node, f"{what} must be a number, not {node.value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise self.fail(node, f"{what} must be {bound}, not {value!r}")
        return float(value)

    def duration(self, node: yaml.Node, what: str) -> float:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what} must be a duration like 30s, 5m, 2h, 7d or a number of seconds")
        value = self.doc.loader.construct_object(node)
        try:
            return parse_duration(value)
        except ValueError:
            raise self.fail(node, f"{what} must be a duration like 30s, 5m, 2h, 7d or a number of seconds, "
                            f"not {node.value!r}") from None

    def names(self, node: yaml.Node, what: str) -> list[str]:
        if isinstance(node, yaml.SequenceNode):
            items = [self.text(n, f"an item of {what}") for n in node.value]
            if not items:
                raise self.fail(node, f"{what} must name at least one")
            return items
        return [self.text(node, what)]


def _construct(node: yaml.Node) -> Any:
    """The node as plain Python (for `change:` bodies and settings, validated by their owners)."""
    loader = yaml.SafeLoader("")
    if isinstance(node, yaml.MappingNode):
        return {_construct(k): _construct(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_construct(n) for n in node.value]
    return loader.construct_object(node)


# -- conditions -------------------------------------------------------------------------------

CONDITION_KEYS = {
    "client": ("client", "state", "registrar"),
    "gateway": ("gateway", "health", "node"),
    "sba": ("sba", "cache_version", "at_least"),
    "cdrs": ("cdrs", "node", "uploaded"),
    "route": ("route", *ROUTE_EXPECT),
    "event": ("event", "node", "with", "count", "at_least"),
}


def _condition(r: _Reader, node: yaml.Node, what: str) -> Condition:
    if not isinstance(node, yaml.MappingNode):
        raise r.fail(node, f"{what} must be a mapping naming one of: {', '.join(CONDITION_KEYS)}")
    keys = [k.value for k, _ in node.value]
    subjects = [k for k in keys if k in CONDITION_KEYS]
    if len(subjects) != 1:
        raise r.fail(node, f"{what} must name exactly one of {', '.join(CONDITION_KEYS)} "
                     f"(got {', '.join(subjects) or 'none'})")
    subject = subjects[0]
    m = r.mapping(node, f"{what} ({subject})", CONDITION_KEYS[subject])
    args: dict[str, Any] = {}
    if subject == "client":
        args["clients"] = r.names(m["client"][1], "client")
        if "state" not in m:
            raise r.fail(node, f"{what} needs 'state' ({', '.join(CLIENT_STATES)})")
        args["state"] = r.choice(m["state"][1], "state", CLIENT_STATES)
        if "registrar" in m:
            args["registrar"] = r.text(m["registrar"][1], "registrar")
            if args["state"] == "offline":
                raise r.fail(m["registrar"][0], "an offline client has no registrar")
    elif subject == "gateway":
        args["gateway"] = r.text(m["gateway"][1], "gateway")
        if "health" not in m:
            raise r.fail(node, f"{what} needs 'health' ({', '.join(GATEWAY_STATES)})")
        args["health"] = r.choice(m["health"][1], "health", GATEWAY_STATES)
        if "node" in m:
            args["node"] = r.text(m["node"][1], "node")
    elif subject == "sba":
        args["sba"] = r.text(m["sba"][1], "sba")
        if "cache_version" not in m:
            raise r.fail(node, f"{what} needs 'cache_version'")
        args["cache_version"] = int(r.number(m["cache_version"][1], "cache_version"))
        args["at_least"] = bool(r.scalar(m["at_least"][1], bool, "at_least")) if "at_least" in m else False
    elif subject == "cdrs":
        args["count"] = int(r.number(m["cdrs"][1], "cdrs (a count)"))
        if "node" in m:
            args["node"] = r.text(m["node"][1], "node")
        args["uploaded"] = bool(r.scalar(m["uploaded"][1], bool, "uploaded")) if "uploaded" in m else False
    elif subject == "event":
        args["event"] = r.text(m["event"][1], "event (a dotted event name)")
        spec = CATALOGUE.get(args["event"])
        if spec is None:
            raise r.fail(m["event"][1], f"unknown event {args['event']!r} (docs/events.md lists them)")
        if "node" in m:
            args["node"] = r.text(m["node"][1], "node")
        args["with"] = {}
        if "with" in m:
            for key, knode, vnode in r.entries(m["with"][1], "with"):
                if key not in spec.fields:
                    raise r.fail(knode, f"{spec.name} has no field {key!r} (it has {', '.join(spec.fields)})")
                args["with"][key] = _construct(vnode)
        if "count" in m and "at_least" in m:
            raise r.fail(node, f"{what} takes count (exactly) or at_least, not both")
        key = "count" if "count" in m else "at_least" if "at_least" in m else None
        args["count"] = int(r.number(m[key][1], key)) if key else 1
        args["at_least"] = key != "count"
    elif subject == "route":
        rm = r.mapping(m["route"][1], "route", ("user", "dial"), ("user", "dial"))
        args["user"] = r.text(rm["user"][1], "user")
        args["dial"] = r.text(rm["dial"][1], "dial")
        expect: dict[str, Any] = {}
        for key in ROUTE_EXPECT:
            if key not in m:
                continue
            if key in ("routes", "gateways"):
                expect[key] = [r.text(n, f"an item of {key}") for n in r.sequence(m[key][1], key)]
            elif key == "no_route":
                expect[key] = r.scalar(m[key][1], bool, "no_route")
            else:
                expect["route" if key == "first_route" else key] = r.text(m[key][1], key)
        if not expect:
            raise r.fail(node, f"{what} needs at least one of {', '.join(ROUTE_EXPECT)}")
        args["expect"] = expect
    return Condition(subject, args, r.pos(node))


# -- steps ------------------------------------------------------------------------------------

def _link_arg(r: _Reader, node: yaml.Node, what: str, extra: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        return {"link": r.text(node, f"{what} (a link name)")}
    m = r.mapping(node, what, ("link", *extra), ("link",))
    return {"link": r.text(m["link"][1], "link"), **{k: m[k][1] for k in extra if k in m}}


def _call(r: _Reader, node: yaml.Node) -> dict[str, Any]:
    m = r.mapping(node, "call", ("from", "to", "pstn", "callee", "answer_after", "actions", "hangup_after",
                                 "background", "expect"), ("from", "to"))
    args: dict[str, Any] = {"from": r.text(m["from"][1], "from (a user's UPN or a PSTN number)"),
                            "to": r.text(m["to"][1], "to (a dial string)")}
    if "pstn" in m:
        if "@" in args["from"]:
            raise r.fail(m["pstn"][0], "pstn (the carrier node a PSTN caller dials in from) needs a number in 'from'")
        args["pstn"] = r.text(m["pstn"][1], "pstn (a carrier node name)")
    if "callee" in m:
        args["callee"] = r.text(m["callee"][1], "callee (the UPN that should ring)")
    if "answer_after" in m:
        args["answer_after"] = r.duration(m["answer_after"][1], "answer_after")
        if "callee" not in args and "@" not in args["to"]:
            raise r.fail(m["answer_after"][0], "answer_after needs 'callee' (the Teams user who answers)")
    actions: list[CallAction] = []
    for n in r.sequence(m["actions"][1], "actions") if "actions" in m else []:
        am = r.mapping(n, "a call action", ("after", *CALL_ACTIONS), ("after",))
        which = [k for k in am if k in CALL_ACTIONS]
        if len(which) != 1:
            raise r.fail(n, f"a call action names exactly one of {', '.join(CALL_ACTIONS)}")
        target = None
        vnode = am[which[0]][1]
        if which[0] == "transfer":
            target = r.text(vnode, "transfer (the dial string to transfer to)")
        elif not (isinstance(vnode, yaml.ScalarNode) and vnode.tag == "tag:yaml.org,2002:null") \
                and r.scalar(vnode, bool, which[0]) is not True:
            raise r.fail(vnode, f"{which[0]} takes no value (write `{which[0]}:` or `{which[0]}: true`)")
        after = r.duration(am["after"][1], "after")
        if actions and after < actions[-1].after:
            raise r.fail(am["after"][1], f"call actions must be in time order ({after} s is before "
                         f"{actions[-1].after} s)")
        actions.append(CallAction(after, which[0], target, r.pos(n)))
    if "hangup_after" in m:
        actions.append(CallAction(r.duration(m["hangup_after"][1], "hangup_after"), "hangup", None,
                                  r.pos(m["hangup_after"][1])))
    args["actions"] = actions
    args["background"] = bool(r.scalar(m["background"][1], bool, "background")) if "background" in m else False
    expect: dict[str, Any] = {}
    if "expect" in m:
        em = r.mapping(m["expect"][1], "call expect", ("status", "answered_by", "path", "via_sba", "media"))
        if "status" in em:
            expect["status"] = int(r.number(em["status"][1], "status", 100, 699))
        if "answered_by" in em:
            expect["answered_by"] = r.text(em["answered_by"][1], "answered_by")
        if "path" in em:
            expect["path"] = r.names(em["path"][1], "path")
        if "via_sba" in em:
            expect["via_sba"] = r.scalar(em["via_sba"][1], bool, "via_sba")
        if "media" in em:
            expect["media"] = r.names(em["media"][1], "media")
    args["expect"] = expect
    return args


def _step(r: _Reader, node: yaml.Node, index: int) -> Step:
    what = f"step {index}"
    if not isinstance(node, yaml.MappingNode):
        raise r.fail(node, f"{what} must be a mapping with one of: {', '.join(ACTIONS)}")
    m = r.mapping(node, what, STEP_KEYS)
    kinds = [k for k in m if k in ACTIONS]
    if len(kinds) != 1:
        raise r.fail(node, f"{what} must have exactly one action ({', '.join(ACTIONS)}); "
                     f"got {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    vnode = m[kind][1]
    at = r.duration(m["at"][1], "at (absolute virtual time)") if "at" in m else None
    args: dict[str, Any] = {}
    if kind in ("cut", "restore"):
        args = _link_arg(r, vnode, kind, ("mode",) if kind == "cut" else ())
        args["mode"] = r.choice(args["mode"], "mode", LINK_MODES) if "mode" in args else "down"
        default = f"{kind} {args['link']}" + (" (blackhole)" if args["mode"] == "blackhole" else "")
    elif kind == "impair":
        args = _link_arg(r, vnode, kind, ("latency", "jitter", "loss"))
        if not any(k in args for k in ("latency", "jitter", "loss")):
            raise r.fail(vnode, "impair needs latency, jitter or loss")
        for k in ("latency", "jitter"):
            if k in args:
                args[k] = r.duration(args[k], k)
        if "loss" in args:
            args["loss"] = r.number(args["loss"], "loss (a fraction)", 0.0, 1.0)
        default = f"impair {args['link']} " + " ".join(f"{k}={args[k]}" for k in ("latency", "jitter", "loss")
                                                      if k in args)
    elif kind == "wait":
        if isinstance(vnode, yaml.ScalarNode):
            args = {"duration": r.duration(vnode, "wait")}
            default = f"wait {vnode.value}"
        else:
            wm = r.mapping(vnode, "wait", ("until", "timeout", "for"))
            if "for" in wm and ("until" in wm or "timeout" in wm):
                raise r.fail(vnode, "wait takes either 'for' or 'until' with 'timeout'")
            if "for" in wm:
                args = {"duration": r.duration(wm["for"][1], "for")}
                default = f"wait {wm['for'][1].value}"
            else:
                if "until" not in wm or "timeout" not in wm:
                    raise r.fail(vnode, "wait needs 'until' (a condition) and 'timeout' (a duration)")
                cond = _condition(r, wm["until"][1], "until")
                args = {"until": cond, "timeout": r.duration(wm["timeout"][1], "timeout")}
                default = f"wait until {cond.describe()}"
    elif kind == "expect":
        nodes = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
        conds = [_condition(r, n, "expect") for n in nodes]
        if not conds:
            raise r.fail(vnode, "expect needs at least one condition")
        args = {"conditions": conds}
        default = "expect " + "; ".join(c.describe() for c in conds)
    elif kind == "call":
        args = _call(r, vnode)
        default = f"call {args['from']} → {args['to']}"
    elif kind == "change":
        from simulator.tenant.changes import CHANGES

        if not isinstance(vnode, yaml.MappingNode) or len(vnode.value) != 1:
            raise r.fail(vnode, f"change must be a mapping with one key, the kind of change ({', '.join(CHANGES)})")
        knode = vnode.value[0][0]
        if knode.value not in CHANGES:
            raise r.fail(knode, f"unknown change {knode.value!r} (expected one of {', '.join(CHANGES)})")
        args = {"change": _construct(vnode)}  # the body is checked by apply_change against the live tenant
        default = f"change: {knode.value}"
    elif kind == "sync":
        args = {"sba": r.text(vnode, "sync (the SBA node to sync now)")}
        default = f"sync {args['sba']}"
    else:  # restart
        args = {"target": r.text(vnode, "restart (a client UPN or a node name)")}
        default = f"restart {args['target']}"
    name = r.text(m["name"][1], "name") if "name" in m else default
    return Step(kind, name, r.pos(node), at, args)


def parse_scenario(text: str, path: str) -> Scenario:
    r = _Reader(path)
    try:
        root = compose(text, path)
    except InputError as err:
        raise ScenarioError(err.message, err.position) from None
    if root is None:
        raise ScenarioError("the scenario file is empty (expected lab:, tenant: and steps:)", SourcePosition(path, 1, 1))
    m = r.mapping(root, "the scenario file", TOP_LEVEL, ("lab", "tenant", "steps"))
    base = Path(path).parent
    files = {}
    for key in ("lab", "tenant"):
        rel = r.text(m[key][1], key)
        full = (base / rel) if not Path(rel).is_absolute() else Path(rel)
        if not full.is_file():
            raise r.fail(m[key][1], f"{key} file {rel!r} not found (paths are relative to the scenario file)")
        if key == "tenant" and full.suffix.lower() not in (".yaml", ".yml", ".ps1"):
            raise r.fail(m[key][1], "tenant must be a drlab YAML file or a PowerShell runbook (.ps1)")
        files[key] = str(full)
    settings: dict[str, Any] = {}
    if "settings" in m:
        sm = m["settings"][1]
        for key, knode, vnode in r.entries(sm, "settings"):
            value = _construct(vnode)
            try:
                RoleSettings.from_overrides({key: value})
            except SettingsError as err:
                raise r.fail(knode if "unknown" in str(err) else vnode, str(err)) from None
            settings[key] = value
    seed = int(r.number(m["seed"][1], "seed")) if "seed" in m else None
    timeout = r.duration(m["timeout"][1], "timeout") if "timeout" in m else DEFAULT_TIMEOUT_S
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


def load_scenario(path: str | Path) -> Scenario:
    p = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as err:
        raise ScenarioError(f"cannot read scenario file: {err.strerror}", SourcePosition(p, 1, 1)) from None
    return parse_scenario(text, p)


# -- names the steps use, checked against the lab file ----------------------------------------

def check_against_lab(scenario: Scenario, spec: Any = None) -> None:
    """Every link, node and client a step names exists in the lab: else ScenarioError at the step.

    Run before the lab is built, so a typo costs no run (and `drlab run` exits 2). `spec` is the
    lab's `LabSpec` (loaded from `scenario.lab` when not given; a bad lab file raises LabError).
    """
    if spec is None:
        from simulator.lab.spec import load_lab_spec

        spec = load_lab_spec(scenario.lab)
    links = set(spec.links)
    nodes = {n.lower(): decl for n, decl in spec.nodes.items()}
    fqdns = {decl.host.lower(): decl for decl in spec.nodes.values()}
    users = {str(decl.options.get("user") or decl.options.get("upn") or "").lower(): decl
             for decl in spec.nodes.values() if decl.role == "teams_client"}

    def known(kind: str, names: set[str] | dict[str, Any]) -> str:
        return f"{kind} in {Path(scenario.lab).name}: {', '.join(sorted(names)) or 'none'}"

    def node(name: str, pos: SourcePosition, role: str | None = None, what: str = "node") -> None:
        decl = nodes.get(name.lower()) or fqdns.get(name.lower())
        if decl is None or (role is not None and decl.role != role):
            choices = {n for n, d in nodes.items() if role is None or d.role == role}
            raise ScenarioError(f"no {what} {name!r} ({known(what + 's', choices)})", pos)

    def client(name: str, pos: SourcePosition) -> None:
        if name.lower() not in users and not (name.lower() in nodes and nodes[name.lower()].role == "teams_client"):
            raise ScenarioError(f"no client for {name!r} ({known('clients', users)})", pos)

    for step in scenario.steps:
        a, pos = step.args, step.position
        if step.kind in ("cut", "restore", "impair") and a["link"] not in links:
            raise ScenarioError(f"no link {a['link']!r} ({known('links', links)})", pos)
        if step.kind == "sync":
            node(a["sba"], pos, "sba", "SBA")
        if step.kind == "restart":
            (client if "@" in a["target"] else node)(a["target"], pos)
        if step.kind == "call":
            if "@" in a["from"]:
                client(a["from"], pos)
            elif a.get("pstn"):
                node(a["pstn"], pos, "pstn", "PSTN carrier node")
            elif not spec.nodes_with_role("pstn"):
                raise ScenarioError("a call from a PSTN number needs a pstn node in the lab", pos)
            if a.get("callee"):
                client(a["callee"], pos)
        conditions = a.get("conditions", []) + ([a["until"]] if "until" in a else [])
        for cond in conditions:
            if cond.subject == "client":
                for who in cond.args["clients"]:
                    client(who, cond.position)
            elif cond.subject == "sba":
                node(cond.args["sba"], cond.position, "sba", "SBA")
