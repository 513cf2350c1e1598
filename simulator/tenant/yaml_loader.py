"""Load a tenant from the drlab YAML format (docs/tenant-yaml.md) into `simulator.tenant.model.Tenant`.

The file is composed into YAML nodes first, so every error points at the node that is wrong
(`FILE:LINE:COL: message`): an unknown key (never ignored), a value of the wrong type, a value
the model's rules refuse (a port out of range, a bad regular expression: the same message a
runbook gets), a reference to an unknown usage/gateway/policy/site. Keys are the model's field
names (the snake_case of the cmdlet parameters); defaults are the cmdlets' defaults.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import read_source
from simulator.tenant import model
from simulator.tenant.errors import TenantError
from simulator.yaml_source import YamlDoc

# top-level key -> (kind, class)
SECTIONS: dict[str, tuple[str, type]] = {
    "translation_rules": ("translation_rule", model.TranslationRule),
    "regions": ("region", model.NetworkRegion),
    "sites": ("site", model.NetworkSite),
    "subnets": ("subnet", model.NetworkSubnet),
    "gateways": ("gateway", model.Gateway),
    "voice_routes": ("voice_route", model.VoiceRoute),
    "voice_routing_policies": ("voice_routing_policy", model.VoiceRoutingPolicy),
    "dial_plans": ("dial_plan", model.DialPlan),
    "sbas": ("sba", model.SurvivableBranchAppliance),
    "sba_policies": ("sba_policy", model.SbaPolicy),
    "emergency_call_routing_policies": ("emergency_call_routing_policy", model.EmergencyCallRoutingPolicy),
    "emergency_calling_policies": ("emergency_calling_policy", model.EmergencyCallingPolicy),
    "trusted_ips": ("trusted_ip", model.TrustedIpAddress),
    "civic_addresses": ("civic_address", model.LisCivicAddress),
    "lis_locations": ("lis_location", model.LisLocation),
    "lis_subnets": ("lis_subnet", model.LisSubnet),
    "resource_accounts": ("resource_account", model.ResourceAccount),
    "calling_line_identities": ("calling_line_identity", model.CallingLineIdentity),
    "teams_calling_policies": ("teams_calling_policy", model.TeamsCallingPolicy),
    "unassigned_number_treatments": ("unassigned_number_treatment", model.UnassignedNumberTreatment),
    "voicemail_settings": ("voicemail_settings", model.VoicemailSettings),
    "groups": ("group", model.Group),
    "group_policy_assignments": ("group_policy_assignment", model.GroupPolicyAssignment),
    "users": ("user", model.User),
}
TOP_LEVEL = ("domains", "pstn_usages", *SECTIONS, "global_grants")


def _field_type(f: dataclasses.Field) -> tuple[str, bool]:
    """('str'|'int'|'bool'|'strs'|'rules'|'numbers'|'codes', nullable) from the annotation text."""
    t = str(f.type)
    nullable = "None" in t
    if t.startswith("frozenset"):
        return "codes", nullable
    if "NormalizationRule" in t:
        return "rules", nullable
    if "EmergencyNumber" in t:
        return "numbers", nullable
    if t.startswith("tuple"):
        return "strs", nullable
    return t.split(" ")[0], nullable


def _failover_codes(doc: YamlDoc, node: yaml.Node, label: str) -> frozenset[int]:
    """A list of integers, or the cmdlet's comma text ("408, 503, 504")."""
    if isinstance(node, yaml.SequenceNode):
        return frozenset(doc.scalar(n, int, f"an item of {label}") for n in node.value)
    try:
        return model.parse_failover_codes(doc.scalar(node, str, label))
    except model.InvalidValue as err:
        raise doc.fail(node, str(err)) from None


def _build(doc: YamlDoc, node: yaml.Node, cls: type, what: str) -> Any:
    allowed = {f.name: f for f in dataclasses.fields(cls) if f.name != "position"}
    kwargs: dict[str, Any] = {"position": doc.pos(node)}
    value_nodes: dict[str, yaml.Node] = {}
    entries = doc.mapping(node, what)
    for key, knode, vnode in entries:
        f = allowed.get(key)
        if f is None:
            raise doc.fail(knode, f"unknown key {key!r} in {what} (known: {', '.join(allowed)})")
        kind, nullable = _field_type(f)
        label = f"{key} of {what}"
        if kind == "strs":
            value: Any = tuple(doc.scalar(n, str, f"an item of {label}") for n in doc.sequence(vnode, label))
        elif kind == "rules":
            value = tuple(_build(doc, n, model.NormalizationRule, f"a normalization rule of {what}")
                          for n in doc.sequence(vnode, label))
        elif kind == "numbers":
            value = tuple(_build(doc, n, model.EmergencyNumber, f"an emergency number of {what}")
                          for n in doc.sequence(vnode, label))
        elif kind == "codes":
            value = _failover_codes(doc, vnode, label)
        else:
            value = doc.scalar(vnode, {"str": str, "int": int, "bool": bool}[kind], label, nullable)
        kwargs[key] = value
        value_nodes[key] = vnode
    given = {k for k, _, _ in entries}
    required = [f.name for f in allowed.values()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [r for r in required if r not in given and not (cls is model.VoiceRoute and r == "priority")]
    if missing:
        raise doc.fail(node, f"{what} needs {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except model.InvalidValue as err:  # the model's own rules, at the value that breaks one
        raise doc.fail(value_nodes.get(err.field, node), str(err)) from None


def parse_yaml(text: str, path: str = "<string>") -> model.Tenant:
    doc = YamlDoc(path, TenantError)
    root = doc.compose(text)
    tenant = model.Tenant()
    if root is None:
        return tenant
    for key, knode, vnode in doc.mapping(root, "the tenant file"):
        if key == "pstn_usages":
            usages: list[str] = []
            for n in doc.sequence(vnode, "pstn_usages"):
                u = doc.scalar(n, str, "a PSTN usage")
                if tenant.has_usage(u) or u.lower() in (x.lower() for x in usages):
                    raise doc.fail(n, f"PSTN usage {u!r} is listed twice")
                usages.append(u)
            tenant.usages = tuple(usages)
        elif key == "domains":
            domains: list[str] = []
            for n in doc.sequence(vnode, "domains"):
                d = doc.scalar(n, str, "a registered domain").lower().rstrip(".")
                problem = model.domain_problem(d)
                if problem is not None:
                    raise doc.fail(n, problem)
                if d in domains:
                    raise doc.fail(n, f"domain {d!r} is listed twice")
                domains.append(d)
            tenant.domains = tuple(domains)
        elif key == "global_grants":
            for kind, kn, vn in doc.mapping(vnode, "global_grants"):
                if kind not in model.GRANTABLE_KINDS:
                    raise doc.fail(kn, f"unknown key {kind!r} in global_grants (known: {', '.join(model.GRANTABLE_KINDS)})")
                tenant.global_grants[kind] = doc.scalar(vn, str, f"global_grants {kind}")
        elif key in SECTIONS:
            kind, cls = SECTIONS[key]
            for n in doc.sequence(vnode, key):
                obj = _build(doc, n, cls, f"an entry of {key}")
                if kind == "voice_route" and not any(k.value == "priority" for k, _ in n.value):
                    # An omitted Priority gets the next free one [S12].
                    taken = [r.priority for r in tenant.voice_routes.values()]
                    obj = dataclasses.replace(obj, priority=max(taken) + 1 if taken else 0)
                if kind == "user" and obj.phone_number is not None:
                    obj = _user_defaults(n, obj)
                existing = tenant.find(kind, obj.name)
                if existing is not None and not (obj.name.lower() == "global" and existing.position is None):
                    raise doc.fail(n, f"{key} has {obj.name!r} twice (names ignore case)")
                tenant.add(kind, obj)
        else:
            raise doc.fail(knode, f"unknown top-level key {key!r} (known: {', '.join(TOP_LEVEL)})")
    tenant.validate()
    return tenant


def _user_defaults(node: yaml.MappingNode, user: model.User) -> model.User:
    # A number without a type is a Direct Routing number; assigning one turns enterprise voice
    # on, as Set-CsPhoneNumberAssignment does [S20].
    keys = {k.value for k, _ in node.value}
    if "phone_number_type" not in keys:
        user = dataclasses.replace(user, phone_number_type="DirectRouting")
    if "enterprise_voice_enabled" not in keys and user.phone_number_type == "DirectRouting":
        user = dataclasses.replace(user, enterprise_voice_enabled=True)
    return user


def load_yaml(path: str | Path) -> model.Tenant:
    """Load a drlab tenant file; raises TenantError (`FILE:LINE:COL: message`)."""
    return parse_yaml(read_source(path, TenantError, "tenant"), str(path))
