"""What the Survivable Branch Appliance knows and decides on its own (sans-I/O).

Three pieces, all plain data and functions; `roles/sba.py` is the asyncio glue around them.

1. `SbaCache`: the versioned snapshot of the branch's configuration (`BranchConfig`), synced
   from the cloud tenant while the link is up, and the lookups the SBA serves from it offline.
2. `ClientAdmission`: the token rules the SBA enforces on a registering client [S26].
3. `CdrBuffer`: CDRs written during the outage, uploaded on recovery, none lost, none doubled.

--- BranchConfig: the sync payload --------------------------------------------------------------

What the SBA caches is not documented ([S26]). drlab caches, for every user
whose SBA policy (granted, else -Global, else Global) lists this SBA, the tenant's own objects
(`simulator.tenant.model`): the `User` (number, enterprise voice, site, grants, forwarding
settings), the user's effective online voice routing policy, the PSTN usages it names, the voice
routes in those usages, the gateways of those routes with their translation rules, and the
user's effective tenant dial plan; plus the tenant's emergency dial strings and masks (to
recognise them: emergency call routing policies are not supported offline [S26]). Nothing else:
a user added after the last sync is unknown, a number changed after it keeps its old value.

    config = BranchConfig.from_tenant(tenant, "sba1.contoso.com", version=3)   # the cloud side
    body = config.to_json()                      # bytes: the 200 body of the sync MESSAGE
    config = BranchConfig.from_json(body)        # the SBA side; ValueError saying what was expected
    config.tenant()                              # a small model.Tenant holding exactly the cache

`from_tenant` raises `UnknownSba` (answer 403) for an SBA the tenant does not list.
`BranchConfigSource` is the cloud's per-SBA version counter: the version grows only when the
content changes, so `have_version` tells the cloud whether the SBA is current.

--- SbaCache --------------------------------------------------------------------------------------

    cache = SbaCache("sba1.contoso.com", settings)
    if cache.sync_due(now): cache.sync_started(now); ...request...; cache.sync_failed(now, reason) on failure
    outcome = cache.apply_sync(config, now)    # -> SyncOutcome(version, changed, added, removed, renumbered)
    cache.user_by_number("+12065550201")       # reverse number lookup, exact match [S14][S20]
    cache.user("carol@contoso.com")            # -> model.User | None
    cache.decide_inbound("+12065550201")       # -> CachedInboundDecision (user, forwarding) or refusal
    cache.decide_outbound(upn, dialed, health)  # -> OutboundDecision (routes from the cache only)

Survivable routing is the tenant's own routing engine (`simulator.tenant.routing.select_route`,
with `normalization`) run over `config.tenant()`, so the SBA and the cloud cannot disagree on
the same data. Emergency strings skip normalization and are sent WITHOUT '+': they are routed
only if the caller's cached voice routing policy has a route matching them as dialled (the
documented limitation [S26], reproduced). A `decision.refusal` is a `cdr.RESULTS` condition.

--- ClientAdmission -------------------------------------------------------------------------------

    admission = ClientAdmission(settings)
    admission.record_contact("alice@contoso.com", now)       # the client checked in while online
    verdict = admission.admit("alice@contoso.com", token_authenticated_at=a, token_expires_at=e, now=now)
    verdict.ok, verdict.reason      # -> reply 200 / 403 with verdict.reason

Rules [S26]: refuse a client not seen within `sba_contact_window_s` (24 h); accept a valid token;
accept an expired token up to `expired_token_grace_s` (7 days) counted as `token_grace_from`
says; with CAE tokens (`client_cae_tokens`) serve a client only `cae_token_limit_s` (~30 min)
from its first appliance-mode registration. A client that has no token (restarted) is refused.

--- CdrBuffer -----------------------------------------------------------------------------------

    buffer = CdrBuffer(settings)
    buffer.add(cdr)                          # idempotent by cdr.cdr_id
    if buffer.upload_due(now):
        batch = buffer.start_upload(now)     # -> list[Cdr], oldest first
        ... send; the cloud's CdrStore.ingest(batch) answers the ids it stored ...
        buffer.acknowledge(ids)              # only acknowledged records are forgotten
        # or, on a cut / timeout / error: buffer.upload_failed(now)  -> retried at next_upload_at
"""

from __future__ import annotations

import dataclasses
import json
import random
import types
import typing
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from simulator.roles.cdr import Cdr
from simulator.roles.settings import DEMOTED_SKIPPED, RoleSettings
from simulator.tenant.model import (
    DialPlan,
    Gateway,
    NormalizationRule,
    Tenant,
    TranslationRule,
    User,
    VoiceRoute,
    VoiceRoutingPolicy,
)
from simulator.tenant.normalization import effective_dial_plan, normalize
from simulator.tenant.routing import RouteDecision, select_route

# The -Global grants the cache keeps: the ones routing reads for a user without a grant.
_ROUTING_GRANTS = ("voice_routing_policy", "dial_plan")
_TRANSLATION_LISTS = ("inbound_teams_number_translation_rules", "inbound_pstn_number_translation_rules",
                      "outbound_teams_number_translation_rules", "outbound_pstn_number_translation_rules")


class UnknownSba(LookupError):
    """The tenant lists no survivable branch appliance with this FQDN (the cloud answers 403)."""


@dataclass(frozen=True)
class GlobalGrant:
    """`Grant-* -Global`: the policy that replaces the Global instance for users without a grant."""

    kind: str
    name: str


@dataclass(frozen=True)
class BranchConfig:
    """Everything the SBA holds about its branch (module docstring); JSON via to_json/from_json.

    `version` is the cloud's number for this content and takes no part in equality, so two
    configs are equal exactly when their content is.
    """

    sba: str = ""
    version: int = field(default=0, compare=False)
    usages: tuple[str, ...] = ()
    users: tuple[User, ...] = ()
    voice_routing_policies: tuple[VoiceRoutingPolicy, ...] = ()
    voice_routes: tuple[VoiceRoute, ...] = ()  # in the tenant's order (equal priorities keep it)
    gateways: tuple[Gateway, ...] = ()
    translation_rules: tuple[TranslationRule, ...] = ()
    dial_plans: tuple[DialPlan, ...] = ()
    global_grants: tuple[GlobalGrant, ...] = ()
    emergency_dial_strings: tuple[str, ...] = ()

    # --- the cloud side ---------------------------------------------------------------------------
    @classmethod
    def from_tenant(cls, tenant: Tenant, sba_fqdn: str, version: int = 0) -> BranchConfig:
        """What the SBA `sba_fqdn` caches from `tenant` right now (module docstring)."""
        key = sba_fqdn.strip().lower().rstrip(".")
        appliance = tenant.find("sba", key)
        if appliance is None:
            raise UnknownSba(f"the tenant lists no survivable branch appliance {sba_fqdn!r}")
        users = [u for u in sorted(tenant.users.values(), key=lambda u: u.upn.lower())
                 if key in (f.lower() for f in _sba_fqdns(tenant, u))]
        policies: dict[str, VoiceRoutingPolicy] = {}
        plans: dict[str, DialPlan] = {}
        for u in users:
            policy = tenant.effective_policy(u, "voice_routing_policy")
            if policy is not None:
                policies.setdefault(policy.name.lower(), policy)
            plan = effective_dial_plan(tenant, u)
            if plan is not None:
                plans.setdefault(plan.name.lower(), plan)
        wanted = {usage.lower() for p in policies.values() for usage in p.online_pstn_usages}
        routes = [r for r in tenant.voice_routes.values() if wanted & {us.lower() for us in r.online_pstn_usages}]
        gateway_names = {g.lower() for r in routes for g in r.online_pstn_gateway_list}
        gateways = [g for key_, g in tenant.gateways.items() if key_ in gateway_names]
        rule_names = {n.lower() for g in gateways for lst in _TRANSLATION_LISTS for n in getattr(g, lst)}
        emergency: list[str] = []
        for policy in tenant.emergency_call_routing_policies.values():
            for number in policy.emergency_numbers:
                for text in (number.dial_string, *(number.dial_mask or "").split(";")):
                    if text and text not in emergency:
                        emergency.append(text)
        return cls(
            sba=appliance.fqdn, version=version,
            usages=tuple(u for u in tenant.usages if u.lower() in wanted),
            users=tuple(users),
            voice_routing_policies=tuple(sorted(policies.values(), key=lambda p: p.name.lower())),
            voice_routes=tuple(routes),
            gateways=tuple(gateways),
            translation_rules=tuple(r for k, r in tenant.translation_rules.items() if k in rule_names),
            dial_plans=tuple(sorted(plans.values(), key=lambda p: p.name.lower())),
            global_grants=tuple(GlobalGrant(k, n) for k, n in sorted(tenant.global_grants.items())
                                if k in _ROUTING_GRANTS),
            emergency_dial_strings=tuple(emergency),
        )

    # --- on the wire ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _encode(self)

    def to_json(self) -> bytes:
        """The sync body: UTF-8 JSON, keys sorted, so equal configs give equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: Any) -> BranchConfig:
        config = _decode(cls, data, "branch configuration")
        config.check_references()
        return config

    @classmethod
    def from_json(cls, body: bytes) -> BranchConfig:
        """Parse a sync body; ValueError("not a branch configuration: ...") says what was expected."""
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a branch configuration: expected UTF-8 JSON, {exc}") from None
        return cls.from_dict(data)

    def check_references(self) -> None:
        """Everything routing reads for a cached user is in the cache, else ValueError."""
        def need(what: str, names: set[str], name: str | None, owner: str) -> None:
            if name is not None and name.lower() not in names:
                raise ValueError(f"not a branch configuration: {owner} names {what} {name!r}, which is not in it")

        policies = {p.name.lower() for p in self.voice_routing_policies} | {"global"}
        plans = {p.name.lower() for p in self.dial_plans} | {"global"}
        gateways = {g.fqdn.lower() for g in self.gateways}
        rules = {r.name.lower() for r in self.translation_rules}
        for g in self.global_grants:
            if g.kind not in _ROUTING_GRANTS:
                raise ValueError(f"not a branch configuration: global grant kind {g.kind!r}, expected one of "
                                 f"{', '.join(_ROUTING_GRANTS)}")
            need("the " + g.kind.replace("_", " "), policies if g.kind == "voice_routing_policy" else plans, g.name,
                 "a -Global grant")
        for u in self.users:
            need("voice routing policy", policies, u.voice_routing_policy, f"user {u.upn!r}")
            need("dial plan", plans, u.dial_plan, f"user {u.upn!r}")
        for r in self.voice_routes:
            for gw in r.online_pstn_gateway_list:
                need("gateway", gateways, gw, f"voice route {r.name!r}")
        for g in self.gateways:
            for lst in _TRANSLATION_LISTS:
                for name in getattr(g, lst):
                    need("translation rule", rules, name, f"gateway {g.fqdn!r}")

    # --- offline routing reads it as a tenant -------------------------------------------------------
    def tenant(self, disabled: frozenset[str] = frozenset()) -> Tenant:
        """A small Tenant holding exactly the cached objects (gateways in `disabled`: Enabled false)."""
        tenant = Tenant(usages=self.usages)
        for kind, objects in (("user", self.users), ("voice_routing_policy", self.voice_routing_policies),
                              ("voice_route", self.voice_routes), ("translation_rule", self.translation_rules),
                              ("dial_plan", self.dial_plans)):
            for obj in objects:
                tenant.add(kind, obj)
        for g in self.gateways:
            tenant.add("gateway", dataclasses.replace(g, enabled=False) if g.fqdn.lower() in disabled else g)
        tenant.global_grants = {g.kind: g.name for g in self.global_grants}
        return tenant


def _sba_fqdns(tenant: Tenant, user: User) -> tuple[str, ...]:
    policy = tenant.effective_policy(user, "sba_policy")
    return policy.branch_appliance_fqdns if policy is not None else ()


# --- JSON of frozen model dataclasses (positions are source marks, never sent) ---------------------------
def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value) if f.name != "position"}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, frozenset):
        return sorted(value)
    return value


@cache
def _hints(cls: type) -> dict[str, tuple[Any, bool]]:
    """field -> (type, required) for a dataclass, without `position`."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in fields(cls) if f.name != "position"}


def _decode(cls: type, data: Any, where: str) -> Any:
    hints = _hints(cls)
    if not isinstance(data, dict):
        raise ValueError(f"not a branch configuration: {where} must be an object with keys "
                         f"{', '.join(hints)}, not {type(data).__name__}")
    for key in data:
        if key not in hints:
            raise ValueError(f"not a branch configuration: {where} has unknown key {key!r} "
                             f"(expected {', '.join(hints)})")
    kwargs = {}
    for name, (typ, required) in hints.items():
        if name in data:
            kwargs[name] = _decode_value(typ, data[name], f"{where}.{name}")
        elif required:
            raise ValueError(f"not a branch configuration: {where} needs {name!r}")
    return cls(**kwargs)


_JSON_TYPES = {str: (str, "text"), int: (int, "a whole number"), bool: (bool, "true or false")}


def _decode_value(typ: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (tuple, frozenset):
        if not isinstance(value, list):
            raise ValueError(f"not a branch configuration: {where} must be a list, not {type(value).__name__}")
        item = typing.get_args(typ)[0]
        return origin(_decode_value(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        return None if value is None else _decode_value(args[0], value, where)
    if dataclasses.is_dataclass(typ):
        return _decode(typ, value, where)
    python_type, what = _JSON_TYPES[typ]
    if not isinstance(value, python_type) or (python_type is int and isinstance(value, bool)):
        raise ValueError(f"not a branch configuration: {where} must be {what}, not {value!r}")
    return value


class BranchConfigSource:
    """The cloud side of the sync: per SBA, a version that grows only when the content changes."""

    def __init__(self) -> None:
        self._last: dict[str, BranchConfig] = {}

    def config_for(self, tenant: Tenant, sba_fqdn: str) -> BranchConfig:
        """The current config for `sba_fqdn` with its version (UnknownSba for an unlisted SBA)."""
        fresh = BranchConfig.from_tenant(tenant, sba_fqdn)
        key = fresh.sba.lower()
        last = self._last.get(key)
        if last is not None and last == fresh:
            return last
        self._last[key] = dataclasses.replace(fresh, version=(last.version if last else 0) + 1)
        return self._last[key]


@dataclass(frozen=True)
class CacheSnapshot:
    version: int
    synced_at: float
    config: BranchConfig


@dataclass(frozen=True)
class SyncOutcome:
    version: int
    changed: bool
    added: tuple[str, ...]  # UPNs new in this version
    removed: tuple[str, ...]
    renumbered: tuple[str, ...]  # UPNs whose number changed

    def fields(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class SbaCache:
    """The versioned snapshot and the lookups the SBA serves from it (see the module docstring).

    `version` counts distinct contents this SBA has installed (1 after the first sync; the same
    content again keeps it); `cloud_version` is the cloud's number of the installed config
    (send it as `have_version`).
    """

    def __init__(self, sba_fqdn: str, settings: RoleSettings | None = None) -> None:
        self.sba_fqdn = sba_fqdn.lower().rstrip(".")
        self.settings = settings or RoleSettings()
        self.snapshot: CacheSnapshot | None = None
        self.last_attempt_at: float | None = None
        self.last_failure: str | None = None
        self._by_upn: dict[str, User] = {}
        self._by_number: dict[str, User] = {}
        self._tenants: dict[frozenset[str], Tenant] = {}

    # --- syncing -------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return 0 if self.snapshot is None else self.snapshot.version

    @property
    def cloud_version(self) -> int:
        return 0 if self.snapshot is None else self.snapshot.config.version

    def sync_due(self, now: float) -> bool:
        return self.last_attempt_at is None or now >= self.last_attempt_at + self.settings.sba_sync_interval_s

    def next_sync_at(self) -> float | None:
        return None if self.last_attempt_at is None else self.last_attempt_at + self.settings.sba_sync_interval_s

    def sync_started(self, now: float) -> None:
        self.last_attempt_at = now

    def sync_failed(self, now: float, reason: str) -> None:
        """The cloud did not answer (cut, timeout): keep the last snapshot unchanged."""
        self.last_attempt_at = now if self.last_attempt_at is None else self.last_attempt_at
        self.last_failure = reason

    def apply_sync(self, config: BranchConfig, now: float) -> SyncOutcome:
        """Install a configuration fetched from the cloud. A new version only if the content changed."""
        if self.last_attempt_at is None:
            self.last_attempt_at = now
        self.last_failure = None
        old = self.snapshot.config if self.snapshot is not None else BranchConfig()
        old_users = {u.upn.lower(): u for u in old.users}
        new_users = {u.upn.lower(): u for u in config.users}
        changed = self.snapshot is None or config != old
        version = self.version + 1 if changed else self.version
        self.snapshot = CacheSnapshot(version, now, config)
        self._by_upn = new_users
        self._by_number = {u.phone_number: u for u in config.users if u.phone_number}
        if changed:
            self._tenants = {}
        return SyncOutcome(
            version=version,
            changed=changed,
            added=tuple(sorted(new_users.keys() - old_users.keys())),
            removed=tuple(sorted(old_users.keys() - new_users.keys())),
            renumbered=tuple(sorted(k for k in new_users.keys() & old_users.keys()
                                    if new_users[k].phone_number != old_users[k].phone_number)),
        )

    # --- lookups (offline: cache only) ----------------------------------------------------------
    def user(self, upn: str) -> User | None:
        return self._by_upn.get(_user_key(upn))

    def user_by_number(self, number: str) -> User | None:
        """Reverse number lookup: exact string match, like the cloud's [S14][S20]."""
        return self._by_number.get(number)

    def users(self) -> list[User]:
        return sorted(self._by_upn.values(), key=lambda u: u.upn.lower())

    def is_emergency(self, dialed: str) -> bool:
        return self.snapshot is not None and dialed in self.snapshot.config.emergency_dial_strings

    def tenant(self, disabled: frozenset[str] = frozenset()) -> Tenant:
        """The cache as a small Tenant (built once per content and set of disabled gateways)."""
        if self.snapshot is None:
            return Tenant()
        if disabled not in self._tenants:
            self._tenants[disabled] = self.snapshot.config.tenant(disabled)
        return self._tenants[disabled]

    def dial_plan_rules(self, upn: str) -> tuple[NormalizationRule, ...]:
        """The rules of the user's cached effective tenant dial plan (user > -Global > Global)."""
        found = self.user(upn)
        plan = effective_dial_plan(self.tenant(), found) if found is not None else None
        return plan.normalization_rules if plan is not None else ()

    def decide_inbound(self, number: str) -> CachedInboundDecision:
        """PSTN -> Teams at the SBA: the cached user with that number and their forwarding [S26]."""
        user = self.user_by_number(number)
        if user is None:
            return CachedInboundDecision(number, None, None, None, None, "unknown_to_sba",
                                   f"{number} matches no user in the SBA's cache (version {self.version})")
        after = None
        if user.unanswered_target:
            after = float(user.unanswered_delay_seconds or self.settings.default_unanswered_after_s)
        if user.forwarding_target:
            reason = f"{number} is {user.upn}; forwarded immediately to {user.forwarding_target}"
        elif user.unanswered_target:
            reason = f"{number} is {user.upn}; unanswered after {after:g}s -> {user.unanswered_target}"
        else:
            reason = f"{number} is {user.upn}"
        return CachedInboundDecision(number, user.upn, user.forwarding_target, user.unanswered_target, after, None, reason)

    def decide_outbound(
        self, caller: str, dialed: str, health: dict[str, str] | None = None, rng: random.Random | None = None
    ) -> OutboundDecision:
        """Survivable outbound decision from the cache only [S26][S8], by `select_route`.

        `health` maps a gateway FQDN to its state as the SBA sees it (gateway_health states):
        `demoted`/`inactive` gateways are tried last (or skipped, `demoted_gateways`), `disabled`
        ones never offered. Emergency strings skip normalization and are sent WITHOUT '+'; they
        are routed only if the caller's cached voice routing policy has a route matching them.
        A number that belongs to a cached user is a call between local users.
        """
        user = self.user(caller)
        if self.snapshot is None or user is None:
            return OutboundDecision(caller, dialed, dialed, False, None, (), (), "unknown_to_sba",
                                    (f"{caller} is not in the SBA's cache (version {self.version})",))
        states = {k.lower(): v for k, v in (health or {}).items()}
        tenant = self.tenant(frozenset(k for k, v in states.items() if v == "disabled"))
        emergency = self.is_emergency(dialed)
        if not emergency:
            norm = normalize(tenant, user, dialed)
            local = self.user_by_number(norm.number)
            if local is not None:
                return OutboundDecision(caller, dialed, norm.number, False, local.upn, (), (), None,
                                        (*norm.reasons, f"{norm.number} is {local.upn}, cached at this SBA"))
        route = select_route(
            tenant, user, dialed, health={k: v == "active" for k, v in states.items() if v != "disabled"},
            demoted="excluded" if self.settings.demoted_gateways == DEMOTED_SKIPPED else "last",
            rng=rng, normalize_dialed=not emergency)
        reasons = list(route.reasons)
        if emergency:
            reasons.insert(0, f"{dialed} is an emergency string: no normalization, sent without '+' "
                              "(emergency call routing policies are not supported at an SBA)")
        refusal = None
        if not route.routes:
            refusal = "emergency_no_route_at_sba" if emergency else "no_matching_route"
        elif not route.gateways:
            refusal = "all_gateways_failed"
        return OutboundDecision(caller, dialed, route.normalized, emergency, None,
                                tuple(r.name for r in route.routes), route.gateways, refusal, tuple(reasons), route)


# --- token rules ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Admission:
    ok: bool
    reason: str


@dataclass
class ClientAdmission:
    settings: RoleSettings
    last_seen: dict[str, float] = field(default_factory=dict)  # user -> last contact
    first_offline_registration: dict[str, float] = field(default_factory=dict)  # for the CAE limit

    def record_contact(self, user: str, now: float) -> None:
        """An online client contacted this SBA (check-in): it may register here for the next 24 h."""
        self.last_seen[_user_key(user)] = now
        self.first_offline_registration.pop(_user_key(user), None)  # the CAE clock restarts per outage

    def admit(
        self,
        user: str,
        *,
        token_authenticated_at: float | None,
        token_expires_at: float | None,
        now: float,
    ) -> Admission:
        s = self.settings
        key = _user_key(user)
        seen = self.last_seen.get(key)
        if seen is None or now - seen > s.sba_contact_window_s:
            when = "never" if seen is None else f"{now - seen:g}s ago"
            return Admission(False, f"client not seen within {s.sba_contact_window_s:g}s (last seen {when})")
        if token_authenticated_at is None or token_expires_at is None:
            return Admission(False, "no token: the client must sign in to the cloud first")
        if now > token_expires_at:
            deadline = s.token_grace_deadline(token_authenticated_at, token_expires_at)
            if now > deadline:
                return Admission(False, f"token expired and beyond the {s.expired_token_grace_s:g}s grace "
                                        f"(counted from {s.token_grace_from})")
        if s.client_cae_tokens:
            first = self.first_offline_registration.setdefault(key, now)
            if now - first > s.cae_token_limit_s:
                return Admission(False, f"CAE token: served {now - first:g}s, limit {s.cae_token_limit_s:g}s")
        self.last_seen[key] = now
        expired = now > token_expires_at
        return Admission(True, "token expired, within grace" if expired else "token valid")


# --- CDR buffer ----------------------------------------------------------------------------------
@dataclass
class CdrBuffer:
    settings: RoleSettings
    pending: dict[str, Cdr] = field(default_factory=dict)  # cdr_id -> record, oldest first
    in_flight: tuple[str, ...] = ()
    next_upload_at: float | None = None  # None: upload as soon as the link is up
    uploaded: int = 0

    def add(self, cdr: Cdr) -> bool:
        """Buffer a record; False if its id is already buffered (written twice: kept once)."""
        if cdr.cdr_id in self.pending:
            if self.pending[cdr.cdr_id] != cdr:
                raise ValueError(f"CDR {cdr.cdr_id} written twice with different content")
            return False
        self.pending[cdr.cdr_id] = cdr
        return True

    def upload_due(self, now: float) -> bool:
        return bool(self.pending) and not self.in_flight and (self.next_upload_at is None or now >= self.next_upload_at)

    def start_upload(self, now: float) -> list[Cdr]:
        if self.in_flight:
            raise RuntimeError("an upload is already in flight; wait for acknowledge() or upload_failed()")
        batch = list(self.pending.values())
        self.in_flight = tuple(c.cdr_id for c in batch)
        return batch

    def acknowledge(self, cdr_ids: list[str]) -> int:
        """The cloud stored these ids: forget them. Returns how many were forgotten."""
        forgotten = 0
        for cdr_id in cdr_ids:
            if self.pending.pop(cdr_id, None) is not None:
                forgotten += 1
        self.uploaded += forgotten
        self.in_flight = ()
        self.next_upload_at = None
        return forgotten

    def upload_failed(self, now: float) -> float:
        """No (or a bad) answer: keep every record and retry later. Returns the retry time."""
        self.in_flight = ()
        self.next_upload_at = now + self.settings.sba_cdr_upload_retry_s
        return self.next_upload_at


def _user_key(user: str) -> str:
    return user.strip().lower()  # UPNs compare case-insensitively


@dataclass(frozen=True)
class CachedInboundDecision:
    """Where the SBA delivers a call for `number` (PSTN -> Teams, or a forwarded leg), from the cache."""

    number: str
    user: str | None  # the cached user holding the number (exact match)
    forward_to: str | None  # immediate forwarding target (a number or a UPN), [S26] single target
    unanswered_to: str | None
    unanswered_after_s: float | None
    refusal: str | None
    reason: str


# --- survivable routing decisions ---------------------------------------------------------------
@dataclass(frozen=True)
class OutboundDecision:
    """What the SBA does with a number a registered client dialled, decided from the cache only."""

    caller: str
    dialed: str
    number: str  # sent to the SBC: normalized E.164, or an emergency string as dialled (no '+')
    emergency: bool
    local_user: str | None  # the number belongs to a user cached here: a call between local users
    routes: tuple[str, ...]  # matching routes, in the order tried
    gateways: tuple[str, ...]  # every gateway, in failover order
    refusal: str | None  # a cdr.RESULTS condition when the call cannot be placed
    reasons: tuple[str, ...]
    # the routing engine's decision (per-gateway failover plan, translated numbers); None when
    # no route was looked for (unknown caller, local call)
    route: RouteDecision | None = None

    @property
    def routable(self) -> bool:
        return self.refusal is None
