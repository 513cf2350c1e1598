"""`drlab route --check CASES.yaml`: a tenant's routing regression suite.

A cases file is a list of expectations, each naming a user and what they dial, and any of:
`normalized`, `dial_plan`, `rule`, `usage`, `route` (the first route tried), `routes` (all
matching routes in failover order), `gateways` (the SET of gateways offered; order is random
inside a route), or `no_route: true`. Optional `name`, `health` ({fqdn: false} = demoted) and
`demoted` ("last" | "excluded"). Optional `ip` (the client's address, `A.B.C.D` or
`A.B.C.D/BITS`) and `public_ip` say where the user calls from. Expectations on what the call
carries, each a mapping whose given keys are compared: `caller_id` {number, privacy, policy}
(`number: null` is anonymous; `privacy` is `id` or `none`), `location` {site, subnet,
lis_location}, `emergency` {policy, number, location, pidf_lo (the set of gateways that get
PIDF-LO)}, or `emergency: false` (not an emergency call); `lbr` (Location-Based Routing: any of
`allowed`, `rule`, `user_site`, `gateway_site`, as `drlab route --json` prints them). Optional
`site` (the network site the caller's endpoint is in; null: no site, an unknown location;
absent: from `ip`, else the user's configured site). Errors in the file point at FILE:LINE:COL.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import read_source
from simulator.tenant.errors import SourcePosition, TenantError
from simulator.tenant.lbr import CONFIGURED_SITE, Rule
from simulator.tenant.location import is_address
from simulator.tenant.model import Tenant
from simulator.tenant.routing import RouteDecision, select_route
from simulator.yaml_source import YamlDoc

_TEXT_KEYS = ("name", "user", "dial", "normalized", "dial_plan", "rule", "usage", "route", "demoted", "ip",
              "public_ip")
_LIST_KEYS = ("routes", "gateways")
# Expectations on what the call carries: the keys of the decision's JSON objects that may be given.
_OBJECT_KEYS = {"caller_id": ("number", "privacy", "policy"), "location": ("site", "subnet", "lis_location"),
                "emergency": ("policy", "number", "location", "pidf_lo"),
                "lbr": ("allowed", "rule", "user_site", "gateway_site")}
_INPUTS = ("name", "user", "dial", "health", "demoted", "ip", "public_ip", "site")
_KNOWN = (*_TEXT_KEYS, *_LIST_KEYS, "no_route", "health", "site", *_OBJECT_KEYS)


@dataclass
class Case:
    position: SourcePosition
    user: str
    dial: str
    name: str
    expect: dict[str, Any] = field(default_factory=dict)
    health: dict[str, bool] = field(default_factory=dict)
    demoted: str = "last"
    ip: str | None = None
    public_ip: str | None = None
    site: Any = CONFIGURED_SITE  # a site name, None (unknown location) or the user's configured one


@dataclass
class CaseOutcome:
    case: Case
    decision: RouteDecision | None
    misses: list[str]

    @property
    def ok(self) -> bool:
        return not self.misses


def load_cases(path: str | Path) -> list[Case]:
    p = str(path)
    text = read_source(path, TenantError, "cases")
    doc = YamlDoc(p, TenantError)
    root = doc.compose(text)
    if root is None:
        raise TenantError("the cases file is empty", SourcePosition(p, 1, 1))
    top = dict((k, (kn, v)) for k, kn, v in doc.mapping(root, "the cases file"))
    for k, (kn, _) in top.items():
        if k != "cases":
            raise doc.fail(kn, f"unknown top-level key {k!r} (known: cases)")
    if "cases" not in top:
        raise doc.fail(root, "the cases file needs a 'cases:' list")
    cases = []
    for node in doc.sequence(top["cases"][1], "cases"):
        entries = doc.mapping(node, "a case")
        values: dict[str, Any] = {}
        for key, knode, vnode in entries:
            if key in _TEXT_KEYS:
                values[key] = doc.scalar(vnode, str, f"{key} of a case")
            elif key in _LIST_KEYS:
                values[key] = [doc.scalar(n, str, f"an item of {key}") for n in doc.sequence(vnode, key)]
            elif key == "no_route":
                values[key] = doc.scalar(vnode, bool, "no_route of a case")
            elif key == "site":
                values[key] = doc.scalar(vnode, str, "site of a case", True)
            elif key == "health":
                values[key] = {k: doc.scalar(v, bool, f"health of {k}") for k, _, v in doc.mapping(vnode, "health")}
            elif key == "emergency" and isinstance(vnode, yaml.ScalarNode):
                if doc.scalar(vnode, bool, "emergency of a case") is not False:
                    raise doc.fail(vnode, "emergency is a mapping (policy, number, location, pidf_lo) or false")
                values[key] = None
            elif key in _OBJECT_KEYS:
                values[key] = _expected_object(doc, key, vnode)
            else:
                raise doc.fail(knode, f"unknown key {key!r} in a case (known: {', '.join(_KNOWN)})")
        for need in ("user", "dial"):
            if need not in values:
                raise doc.fail(node, f"a case needs {need!r}")
        if values.get("demoted", "last") not in ("last", "excluded"):
            raise doc.fail(node, "demoted must be 'last' or 'excluded'")
        for key in ("ip", "public_ip"):
            if key in values and not is_address(values[key], key == "ip"):
                vnode = next(v for name, _, v in entries if name == key)
                raise doc.fail(vnode, f"{key} must be an IP address (A.B.C.D" + ("[/BITS])" if key == "ip" else ")")
                               + f", not {values[key]!r}")
        expect = {k: v for k, v in values.items() if k not in _INPUTS}
        if not expect:
            raise doc.fail(node, "a case needs at least one expectation (normalized, usage, route, routes, gateways, no_route...)")
        pos = doc.pos(node)
        cases.append(Case(pos, values["user"], values["dial"],
                          values.get("name", f"{values['user']} dials {values['dial']}"), expect,
                          values.get("health", {}), values.get("demoted", "last"), values.get("ip"),
                          values.get("public_ip"), values.get("site", CONFIGURED_SITE)))
    return cases


def _expected_object(doc: YamlDoc, key: str, node: Any) -> dict[str, Any]:
    """`caller_id: {number: ..., privacy: id}`: the keys given, each text or null (pidf_lo a list,
    lbr's `allowed` true or false)."""
    out: dict[str, Any] = {}
    for name, (_, vnode) in doc.entries(node, key, _OBJECT_KEYS[key]).items():
        if name == "pidf_lo":
            out[name] = sorted(doc.scalar(n, str, "an item of pidf_lo") for n in doc.sequence(vnode, "pidf_lo"))
        elif name == "allowed":
            out[name] = doc.scalar(vnode, bool, f"{name} of {key}")
        else:
            out[name] = doc.scalar(vnode, str, f"{name} of {key}", nullable=True)
        if name == "privacy" and out[name] not in ("id", "none"):
            raise doc.fail(vnode, f"privacy of caller_id is 'id' or 'none', not {out[name]!r}")
        if key == "lbr" and name == "rule" and out[name] not in {str(r) for r in Rule}:
            raise doc.fail(vnode, f"lbr rule must be one of {', '.join(map(str, Rule))}, not {out[name]!r}")
    return out



def run_case(tenant: Tenant, case: Case, seed: int = 0) -> CaseOutcome:
    if tenant.users.get(case.user.lower()) is None:
        return CaseOutcome(case, None, [f"user: {case.user!r} is not in the tenant"])
    if isinstance(case.site, str) and tenant.find("site", case.site) is None:
        return CaseOutcome(case, None, [f"site: {case.site!r} is not a network site of the tenant"])
    d = select_route(tenant, case.user, case.dial, health=case.health, demoted=case.demoted,  # type: ignore[arg-type]
                     rng=random.Random(seed), client_ip=case.ip, public_ip=case.public_ip, site=case.site)
    shown = d.to_json()
    if "emergency" in shown:
        shown["emergency"]["pidf_lo"] = sorted(shown["emergency"]["pidf_lo"])
    actual: dict[str, Any] = {
        "normalized": d.normalized, "dial_plan": d.dial_plan, "rule": d.rule, "usage": d.usage,
        "route": d.routes[0].name if d.routes else None, "routes": [r.name for r in d.routes],
        "gateways": sorted(d.gateways), "no_route": not d.has_route,
        **{key: shown.get(key) for key in _OBJECT_KEYS}}
    misses = []
    for key, want in case.expect.items():
        got = actual[key]
        if key == "gateways":
            want = sorted(want)
        if key in _OBJECT_KEYS and want is not None and got is not None:
            got = {k: got[k] for k in want}  # only the keys the case gives
        if got != want:
            misses.append(f"{key}: expected {want!r}, got {got!r}")
    return CaseOutcome(case, d, misses)


def run_cases(tenant: Tenant, cases: list[Case], seed: int = 0) -> list[CaseOutcome]:
    return [run_case(tenant, c, seed) for c in cases]


def junit_xml(outcomes: list[CaseOutcome], suite: str) -> str:
    root = ET.Element("testsuite", name=suite, tests=str(len(outcomes)),
                      failures=str(sum(not o.ok for o in outcomes)), errors="0")
    for o in outcomes:
        tc = ET.SubElement(root, "testcase", classname=suite, name=o.case.name, file=o.case.position.path,
                           line=str(o.case.position.line))
        if not o.ok:
            f = ET.SubElement(tc, "failure", message=f"{o.case.position}: " + "; ".join(o.misses))
            f.text = "\n".join(o.misses + (["", *o.decision.reasons] if o.decision else []))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
