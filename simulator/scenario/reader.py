"""The scenario file's shapes on top of `simulator.yaml_source`: durations, names, conditions.

Every mistake is a `ScenarioError` at `FILE:LINE:COL`. A duration longer than the run's timeout
is refused here (`Reader.longest`): such a step could never finish, and waiting for it on the
virtual clock would spin the CPU for nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from simulator.errors import InputError, SourcePosition
from simulator.event_catalogue import CATALOGUE
from simulator.yaml_source import NULL_TAG, YamlDoc, shorten

CLIENT_STATES = ("online", "offline", "appliance")
GATEWAY_STATES = ("active", "inactive", "demoted")
# what a `route:` condition may expect (tenant/check.py's case keys; `first_route` is its `route`)
ROUTE_EXPECT = ("normalized", "dial_plan", "rule", "usage", "first_route", "routes", "gateways", "no_route")
MAX_COUNT = 1_000_000_000  # events, CDRs, cache versions: anything above is a typo
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
DURATION_FORMS = "a duration like 30s, 5m, 2h, 7d or a number of seconds"


class ScenarioError(InputError):
    """Bad scenario input: `str(err)` is `FILE:LINE:COL: what was expected`; `drlab run` exits 2."""


def parse_duration(text: Any) -> float:
    """30, 2.5, "30s", "250ms", "5m", "2h", "7d" -> seconds. ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"a duration is {DURATION_FORMS}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text) if text < 1e300 else math.inf  # an integer too large for a float is "forever"
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"a duration is {DURATION_FORMS}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def format_duration(seconds: float) -> str:
    """Seconds in the largest unit that divides them: 604800 -> "7d", 90 -> "90s", 0.25 -> "250ms"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


class Reader(YamlDoc):
    """`YamlDoc` raising ScenarioError, with the scenario's own shapes."""

    def __init__(self, path: str) -> None:
        super().__init__(path, ScenarioError)
        self.longest = float("inf")  # the run's timeout, once read: no duration may exceed it

    def text(self, node: yaml.Node, what: str) -> str:
        return str(self.scalar(node, str, what))

    def flag(self, node: yaml.Node, what: str) -> bool:
        return bool(self.scalar(node, bool, what))

    def choice(self, node: yaml.Node, what: str, choices: tuple[str, ...]) -> str:
        value = self.text(node, what)
        if value not in choices:
            raise self.fail(node, f"{what} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def count(self, node: yaml.Node, what: str) -> int:
        return int(self.number(node, what, 0, MAX_COUNT))

    def duration(self, node: yaml.Node, what: str) -> float:
        value = self.value(node, what) if isinstance(node, yaml.ScalarNode) else None
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise self.fail(node, f"{what} must be {DURATION_FORMS}, not {getattr(node, 'value', '...')!r}") \
                from None
        if not seconds <= self.longest:
            raise self.fail(node, f"{what} ({shorten(node.value)}) is longer than the run's timeout ({self.longest:g} s); "
                                  "shorten it or raise the scenario's timeout:")
        return seconds

    def names(self, node: yaml.Node, what: str) -> list[str]:
        if isinstance(node, yaml.SequenceNode):
            items = [self.text(n, f"an item of {what}") for n in node.value]
            if not items:
                raise self.fail(node, f"{what} must name at least one")
            return items
        return [self.text(node, what)]

    def bare(self, node: yaml.Node, what: str) -> None:
        """A key that takes no value: `hold:` or `hold: true`."""
        if not (isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG) and self.scalar(node, bool, what) is not True:
            raise self.fail(node, f"{what} takes no value (write `{what}:` or `{what}: true`)")


# -- conditions -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    """A state to expect (or wait for). `subject` is client | gateway | sba | cdrs | route | event."""

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


CONDITION_KEYS = {
    "client": ("client", "state", "registrar"),
    "gateway": ("gateway", "health", "node"),
    "sba": ("sba", "cache_version", "at_least"),
    "cdrs": ("cdrs", "node", "uploaded"),
    "route": ("route", *ROUTE_EXPECT),
    "event": ("event", "node", "with", "count", "at_least"),
}


def parse_condition(r: Reader, node: yaml.Node, what: str) -> Condition:
    if not isinstance(node, yaml.MappingNode):
        raise r.fail(node, f"{what} must be a mapping naming one of: {', '.join(CONDITION_KEYS)}")
    keys = [k.value for k, _ in node.value]
    subjects = [k for k in keys if k in CONDITION_KEYS]
    if len(subjects) != 1:
        raise r.fail(node, f"{what} must name exactly one of {', '.join(CONDITION_KEYS)} "
                     f"(got {', '.join(subjects) or 'none'})")
    subject = subjects[0]
    m = r.entries(node, f"{what} ({subject})", CONDITION_KEYS[subject])
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
        args["cache_version"] = r.count(m["cache_version"][1], "cache_version")
        args["at_least"] = r.flag(m["at_least"][1], "at_least") if "at_least" in m else False
    elif subject == "cdrs":
        args["count"] = r.count(m["cdrs"][1], "cdrs (a count)")
        if "node" in m:
            args["node"] = r.text(m["node"][1], "node")
        args["uploaded"] = r.flag(m["uploaded"][1], "uploaded") if "uploaded" in m else False
    elif subject == "event":
        args["event"] = r.text(m["event"][1], "event (a dotted event name)")
        spec = CATALOGUE.get(args["event"])
        if spec is None:
            raise r.fail(m["event"][1], f"unknown event {args['event']!r} (docs/events.md lists them)")
        if "node" in m:
            args["node"] = r.text(m["node"][1], "node")
        args["with"] = {}
        if "with" in m:
            for key, knode, vnode in r.mapping(m["with"][1], "with"):
                if key not in spec.fields:
                    raise r.fail(knode, f"{spec.name} has no field {key!r} (it has {', '.join(spec.fields)})")
                args["with"][key] = r.value(vnode, f"with {key}")
        if "count" in m and "at_least" in m:
            raise r.fail(node, f"{what} takes count (exactly) or at_least, not both")
        key = "count" if "count" in m else "at_least" if "at_least" in m else None
        args["count"] = r.count(m[key][1], key) if key else 1
        args["at_least"] = key != "count"
    elif subject == "route":
        rm = r.entries(m["route"][1], "route", ("user", "dial"), ("user", "dial"))
        args["user"] = r.text(rm["user"][1], "user")
        args["dial"] = r.text(rm["dial"][1], "dial")
        expect: dict[str, Any] = {}
        for key in ROUTE_EXPECT:
            if key not in m:
                continue
            if key in ("routes", "gateways"):
                expect[key] = [r.text(n, f"an item of {key}") for n in r.sequence(m[key][1], key)]
            elif key == "no_route":
                expect[key] = r.flag(m[key][1], "no_route")
            else:
                expect["route" if key == "first_route" else key] = r.text(m[key][1], key)
        if not expect:
            raise r.fail(node, f"{what} needs at least one of {', '.join(ROUTE_EXPECT)}")
        args["expect"] = expect
    return Condition(subject, args, r.pos(node))
