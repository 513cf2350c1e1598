"""Changing a tenant mid-run: the scenario `change` step.

An admin changes the tenant while calls run: adds a user, changes a number, drains a gateway.
Each change is one mapping with one key, the kind of change, as a scenario writes it:

    apply_change(tenant, {"add_user": {"upn": "frank@contoso.com", "number": "+12065550204",
                                       "site": "Seattle", "voice_routing_policy": "Seattle",
                                       "dial_plan": "Seattle", "sba_policy": "SEA"}}, where="s.yaml:12")
    -> "added user frank@contoso.com: +12065550204, site Seattle, voice routing policy Seattle, ..."

| kind | keys (required first) | what Teams does it with |
|---|---|---|
| `add_user` | upn; number, site, voice_routing_policy, dial_plan, sba_policy, emergency_call_routing_policy | a new Entra user, then Set-CsPhoneNumberAssignment and Grant-* |
| `remove_user` | upn | the user leaves (its number is free again) |
| `set_number` | upn, number (null: unassign) | Set-/Remove-CsPhoneNumberAssignment |
| `set_gateway` | fqdn; enabled, max_concurrent_sessions, failover_time_seconds, failover_response_codes | Set-CsOnlinePSTNGateway |
| `grant` | upn, kind (a policy kind), name (null or Global: back to the default) | Grant-* |
| `set_forwarding` | upn; forwarding_target, unanswered_target, unanswered_delay_seconds | Set-CsUserCallingSettings |

Each change is checked completely before anything is touched, with the model's own rules (E.164
numbers, the cmdlets' ranges) and the loaders' (one user per number, names that exist): a bad one
raises `TenantError` at `where` (the step's FILE:LINE) and leaves the tenant as it was. The
return value is one line for the timeline. Routing caches are dropped (`Tenant.changed()`), so
the next decision sees the change; an SBA sees it only at its next sync, as in Teams.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from simulator.tenant.errors import SourcePosition, TenantError
from simulator.tenant.model import GLOBAL, POLICY_KINDS, InvalidValue, Tenant, User, parse_failover_codes

Where = SourcePosition | str | None
_POLICY_WHAT = {"voice_routing_policy": "voice routing policy", "dial_plan": "dial plan", "sba_policy": "SBA policy",
                "emergency_call_routing_policy": "emergency call routing policy"}


def apply_change(tenant: Tenant, change: dict[str, Any], *, where: Where = None) -> str:
    """Apply one scenario `change` to `tenant` in place; a one-line description of what changed."""
    if not isinstance(change, dict) or len(change) != 1:
        got = f"{len(change)} keys ({', '.join(map(str, change))})" if isinstance(change, dict) else repr(change)
        raise TenantError(f"a change is a mapping with one key, the kind of change ({', '.join(CHANGES)}), "
                          f"not {got}", where)
    kind, body = next(iter(change.items()))
    spec = CHANGES.get(kind)
    if spec is None:
        raise TenantError(f"unknown change {kind!r} (expected one of {', '.join(CHANGES)}){_hint(kind, CHANGES)}",
                          where)
    required, optional, handler = spec
    if not isinstance(body, dict):
        raise TenantError(f"{kind} takes a mapping with {', '.join(required + optional)}, not {body!r}", where)
    for key in body:
        if key not in required + optional:
            raise TenantError(f"{kind}: unknown key {key!r} (expected {', '.join(required + optional)})"
                              f"{_hint(str(key), required + optional)}", where)
    missing = [k for k in required if k not in body]
    if missing:
        raise TenantError(f"{kind} needs {', '.join(missing)}", where)
    description = handler(tenant, body, _Check(kind, where))
    tenant.changed()
    return description


class _Check:
    """Value checks with the change's name and position in every message."""

    def __init__(self, kind: str, where: Where) -> None:
        self.kind = kind
        self.where = where

    def fail(self, message: str) -> TenantError:
        return TenantError(f"{self.kind}: {message}", self.where)

    def text(self, body: dict[str, Any], key: str, *, nullable: bool = False) -> str | None:
        value = body.get(key)
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key} must be text, not {value!r}")
        return value.strip()

    def made(self, make: Callable[[], Any]) -> Any:
        """A model object; a value the model's rules refuse fails this change."""
        try:
            return make()
        except InvalidValue as err:
            raise self.fail(str(err)) from None

    def user(self, tenant: Tenant, body: dict[str, Any]) -> User:
        upn = self.text(body, "upn")
        found = tenant.users.get(upn.lower())
        if found is None:
            raise self.fail(f"unknown user {upn!r}{_hint(upn, [u.upn for u in tenant.users.values()])}")
        return found

    def number(self, tenant: Tenant, value: Any, owner: str) -> str:
        """A number no other user holds (its form is the model's rule)."""
        holder = tenant.user_by_number(value)
        if holder is not None and holder.upn.lower() != owner.lower():
            raise self.fail(f"{value} is already assigned to {holder.upn}")
        return value

    def named(self, tenant: Tenant, kind: str, value: Any, key: str) -> str | None:
        """A policy or site name as the tenant spells it; Global (a policy's default) is None."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{key} must be a name, not {value!r}")
        if kind != "site" and value.lower() == GLOBAL.lower():
            return None
        found = tenant.find(kind, value)
        if found is None:
            what = "network site" if kind == "site" else _POLICY_WHAT[kind]
            names = [o.name for o in tenant.collection(kind).values()]
            raise self.fail(f"unknown {what} {value!r}{_hint(value, names)}")
        return found.name


def _hint(name: str, known: Any) -> str:
    lowered = {str(k).lower(): str(k) for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def _describe_user(user: User) -> str:
    parts = [user.phone_number or "no number"]
    if user.network_site:
        parts.append(f"site {user.network_site}")
    parts += [f"{_POLICY_WHAT[k]} {getattr(user, k)}" for k in POLICY_KINDS if getattr(user, k)]
    return ", ".join(parts)


# --- the changes --------------------------------------------------------------------------------------
def _add_user(tenant: Tenant, body: dict[str, Any], check: _Check) -> str:
    upn = check.text(body, "upn")
    if "@" not in upn:
        raise check.fail(f"upn must look like name@domain, not {upn!r}")
    existing = tenant.users.get(upn.lower())
    if existing is not None:
        raise check.fail(f"user {existing.upn!r} already exists (change it with set_number or grant)")
    number = check.number(tenant, body["number"], upn) if body.get("number") is not None else None
    user = check.made(lambda: User(
        upn, phone_number=number, phone_number_type="DirectRouting" if number else None,
        enterprise_voice_enabled=number is not None,  # assigning a Direct Routing number turns it on [S20]
        network_site=check.named(tenant, "site", body.get("site"), "site"),
        **{k: check.named(tenant, k, body.get(k), k) for k in POLICY_KINDS}))
    tenant.add("user", user)
    return f"added user {upn}: {_describe_user(user)}"


def _remove_user(tenant: Tenant, body: dict[str, Any], check: _Check) -> str:
    user = check.user(tenant, body)
    del tenant.users[user.upn.lower()]
    return f"removed user {user.upn}" + (f" (number {user.phone_number} is free)" if user.phone_number else "")


def _set_number(tenant: Tenant, body: dict[str, Any], check: _Check) -> str:
    user = check.user(tenant, body)
    if body["number"] is None:
        tenant.add("user", dataclasses.replace(user, phone_number=None, phone_number_type=None))
        return f"number of {user.upn}: {user.phone_number or 'none'} -> none"
    number = check.number(tenant, body["number"], user.upn)
    tenant.add("user", check.made(lambda: dataclasses.replace(
        user, phone_number=number, phone_number_type="DirectRouting", enterprise_voice_enabled=True)))
    return f"number of {user.upn}: {user.phone_number or 'none'} -> {number}"


def _set_gateway(tenant: Tenant, body: dict[str, Any], check: _Check) -> str:
    fqdn = check.text(body, "fqdn")
    gateway = tenant.find("gateway", fqdn)
    if gateway is None:
        raise check.fail(f"unknown PSTN gateway {fqdn!r}{_hint(fqdn, [g.fqdn for g in tenant.gateways.values()])}")
    values: dict[str, Any] = {}
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise check.fail(f"enabled must be true or false, not {body['enabled']!r}")
        values["enabled"] = body["enabled"]
    for key in ("max_concurrent_sessions", "failover_time_seconds"):  # their ranges are the model's rules
        if key in body:
            values[key] = body[key]
    if "failover_response_codes" in body:
        values["failover_response_codes"] = _failover_codes(body["failover_response_codes"], check)
    if not values:
        raise check.fail("say what to change: enabled, max_concurrent_sessions, failover_time_seconds "
                         "or failover_response_codes")
    tenant.add("gateway", check.made(lambda: dataclasses.replace(gateway, **values)))
    return f"gateway {gateway.fqdn}: " + ", ".join(
        f"{k} {_show(getattr(gateway, k))} -> {_show(v)}" for k, v in values.items())


def _failover_codes(codes: Any, check: _Check) -> frozenset[int]:
    """A list of SIP codes, or the cmdlet's comma list ("408, 503")."""
    if isinstance(codes, str):
        return check.made(lambda: parse_failover_codes(codes))
    if isinstance(codes, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
        return frozenset(codes)
    raise check.fail(f"failover_response_codes is a list of SIP codes or a comma list, not {codes!r}")


def _grant(tenant: Tenant, body: dict[str, Any], check: _Check) -> str:
    user = check.user(tenant, body)
    kind = body["kind"]
    if kind not in POLICY_KINDS:
        raise check.fail(f"kind must be one of {', '.join(POLICY_KINDS)}, not {kind!r}"
                         f"{_hint(str(kind), POLICY_KINDS)}")
    name = check.named(tenant, kind, body["name"], "name")
    tenant.add("user", dataclasses.replace(user, **{kind: name}))
    return (f"granted {_POLICY_WHAT[kind]} {name} to {user.upn}" if name else
            f"{user.upn} is back on the default {_POLICY_WHAT[kind]} (was {getattr(user, kind) or GLOBAL})")


def _set_forwarding(tenant: Tenant, body: dict[str, Any], check: _Check) -> str:
    user = check.user(tenant, body)
    values: dict[str, Any] = {}
    for key in ("forwarding_target", "unanswered_target"):
        if key in body:
            values[key] = check.text(body, key, nullable=True)
    if "unanswered_delay_seconds" in body:
        values["unanswered_delay_seconds"] = body["unanswered_delay_seconds"]
    if not values:
        raise check.fail("say what to change: forwarding_target, unanswered_target or unanswered_delay_seconds")
    tenant.add("user", check.made(lambda: dataclasses.replace(user, **values)))
    return f"forwarding of {user.upn}: " + ", ".join(f"{k} {_show(v)}" for k, v in values.items())


def _show(value: Any) -> str:
    if isinstance(value, frozenset):
        return ",".join(map(str, sorted(value)))
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


Handler = Callable[[Tenant, dict[str, Any], _Check], str]
# kind -> (required keys, optional keys, handler)
CHANGES: dict[str, tuple[tuple[str, ...], tuple[str, ...], Handler]] = {
    "add_user": (("upn",), ("number", "site", *POLICY_KINDS), _add_user),
    "remove_user": (("upn",), (), _remove_user),
    "set_number": (("upn", "number"), (), _set_number),
    "set_gateway": (("fqdn",), ("enabled", "max_concurrent_sessions", "failover_time_seconds",
                                "failover_response_codes"), _set_gateway),
    "grant": (("upn", "kind", "name"), (), _grant),
    "set_forwarding": (("upn",), ("forwarding_target", "unanswered_target", "unanswered_delay_seconds"),
                       _set_forwarding),
}
