"""What the Survivable Branch Appliance knows and decides on its own (sans-I/O).

Three pieces, all plain data and functions; `roles/sba.py` is the asyncio glue around them.

1. `SbaCache`: the versioned snapshot of the branch's configuration, synced from the cloud tenant
   while the link is up, and the lookups the SBA serves from it during an outage.
2. `ClientAdmission`: the token rules the SBA enforces on a registering client [S26].
3. `CdrBuffer`: CDRs written during the outage, uploaded on recovery, none lost, none doubled.

--- SbaCache ------------------------------------------------------------------------------------

What the SBA caches is not documented (reference §3.3, UNCERTAIN); drlab caches, for every user
whose SBA policy (granted, else Global) lists this SBA: the user's number, enterprise voice flag,
SBA policy, the normalization rules of the user's effective tenant dial plan, the user's online
voice routing policy with its usages, their routes (number patterns, priorities) and the
gateways of those routes, and the user's forwarding settings; plus the tenant's emergency dial
strings (to recognise them, since emergency call routing policies are not supported offline).
Nothing else: a user added after the last sync is unknown, a number changed after it keeps its
old value. `BranchConfig` is exactly that content, JSON-safe (`to_dict`/`from_dict`): the sync
is a real exchange, the cloud side builds it with `branch_config_from_tenant(tenant, sba_fqdn)`.

    cache = SbaCache("sba1.contoso.com", settings)
    if cache.sync_due(now): ...request the config...; cache.sync_failed(now, reason) on failure
    outcome = cache.apply_sync(config, now)    # -> SyncOutcome(version, changed, added, removed, ...)
    cache.user_by_number("+12065550101")       # reverse number lookup, exact match (§2.4)
    cache.user("bob@contoso.com")
    cache.decide_inbound("+12065550101")       # -> InboundDecision (user, forwarding) or refusal
    cache.decide_outbound(upn, dialed, health)  # -> OutboundDecision (routes from the cache only)

Routing offline uses `normalize` and `select_gateways` below, over the cached data. They follow
§2.3/§2.5 as the tenant's routing engine does; `simulator/tenant/routing.py` did not exist when
this was written, so they are a second implementation until they can call it (see the report).
A `decision.refusal` is a `cdr.RESULTS` condition: the SBA answers with its SIP code and writes
the CDR with it.


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

import random
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from simulator.roles.cdr import Cdr
from simulator.roles.settings import DEMOTED_SKIPPED, RoleSettings
from simulator.tenant.ps_loader import TenantState, dotnet_to_python_regex


# --- what is cached --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CachedRule:
    name: str
    pattern: str
    translation: str
    is_internal_extension: bool = False


@dataclass(frozen=True)
class CachedDialPlan:
    name: str
    rules: tuple[CachedRule, ...]


@dataclass(frozen=True)
class CachedRoute:
    name: str
    number_pattern: str
    priority: int
    gateways: tuple[str, ...]
    usages: tuple[str, ...]


@dataclass(frozen=True)
class CachedGateway:
    fqdn: str
    enabled: bool
    failover_response_codes: tuple[int, ...] = (408, 503, 504)
    failover_time_s: float = 10.0


@dataclass(frozen=True)
class CachedPolicy:
    name: str
    usages: tuple[str, ...]


@dataclass(frozen=True)
class CachedUser:
    upn: str
    number: str | None
    enterprise_voice: bool = True
    site: str | None = None
    sba_policy: tuple[str, ...] = ()
    voice_routing_policy: str | None = None
    dial_plan: str | None = None
    forward_to: str | None = None  # immediate forwarding: one number or one user [S26]
    unanswered_to: str | None = None  # unanswered-call forwarding target
    unanswered_after_s: float | None = None


@dataclass(frozen=True)
class BranchConfig:
    """Everything the SBA holds about its branch; JSON-safe via to_dict/from_dict."""

    users: tuple[CachedUser, ...] = ()
    policies: tuple[CachedPolicy, ...] = ()
    routes: tuple[CachedRoute, ...] = ()
    gateways: tuple[CachedGateway, ...] = ()
    dial_plans: tuple[CachedDialPlan, ...] = ()
    emergency_dial_strings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BranchConfig:
        try:
            return cls(
                users=tuple(CachedUser(**{**u, "sba_policy": tuple(u.get("sba_policy", ()))}) for u in d.get("users", ())),
                policies=tuple(CachedPolicy(p["name"], tuple(p["usages"])) for p in d.get("policies", ())),
                routes=tuple(CachedRoute(r["name"], r["number_pattern"], int(r["priority"]), tuple(r["gateways"]),
                                         tuple(r["usages"])) for r in d.get("routes", ())),
                gateways=tuple(CachedGateway(g["fqdn"], bool(g["enabled"]), tuple(g["failover_response_codes"]),
                                             float(g["failover_time_s"])) for g in d.get("gateways", ())),
                dial_plans=tuple(CachedDialPlan(p["name"], tuple(CachedRule(**r) for r in p["rules"]))
                                 for p in d.get("dial_plans", ())),
                emergency_dial_strings=tuple(d.get("emergency_dial_strings", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a branch configuration: {exc!r}") from None


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


def branch_config_from_tenant(tenant: TenantState, sba_fqdn: str) -> BranchConfig:
    """The cloud side of a sync: what the SBA `sba_fqdn` caches from the tenant right now.

    Reads the tenant as the loaders build it (`simulator.tenant.ps_loader.TenantState`; the typed
    `tenant/model.py` was not there when this was written: port this one function when it lands).
    Users: those whose SBA policy (granted, else the tenant's Global one) lists this SBA.
    """
    sba_key = sba_fqdn.lower().rstrip(".")

    def effective(user: Any, kind: str) -> str:
        return user.policies.get(kind) or tenant.global_policies.get(kind) or "Global"

    def record(kind: str, name: str | None) -> Any:
        return tenant.find(kind, name) if name else None

    users, policy_names, plan_names = [], set(), set()
    for upn in sorted(tenant.users):
        u = tenant.users[upn]
        sba_policy = record("sba_policy", effective(u, "sba_policy"))
        fqdns = tuple(f.lower() for f in (sba_policy.fields.get("BranchApplianceFqdns", []) if sba_policy else []))
        if sba_key not in fqdns:
            continue
        vrp, plan = effective(u, "voice_routing_policy"), effective(u, "dial_plan")
        policy_names.add(vrp)
        plan_names.add(plan)
        plan_names.add("Global")
        users.append(CachedUser(
            upn=u.upn, number=u.phone_number, enterprise_voice=u.enterprise_voice_enabled, site=u.network_site,
            sba_policy=fqdns, voice_routing_policy=vrp, dial_plan=plan,
            # forwarding settings are not in the tenant model yet: a user-level extension point
            forward_to=getattr(u, "forward_to", None), unanswered_to=getattr(u, "unanswered_to", None),
            unanswered_after_s=getattr(u, "unanswered_after_s", None),
        ))
    policies = []
    for name in sorted(policy_names):
        rec = record("voice_routing_policy", name)
        policies.append(CachedPolicy(rec.identity if rec else name, tuple(rec.fields.get("OnlinePstnUsages", []) if rec else ())))
    usages = {u.lower() for p in policies for u in p.usages}
    routes = tuple(
        CachedRoute(r.identity, r.fields.get("NumberPattern", ""), int(r.fields.get("Priority", 0)),
                    tuple(r.fields.get("OnlinePstnGatewayList", [])), tuple(r.fields.get("OnlinePstnUsages", [])))
        for r in tenant.objects["voice_route"].values()
        if usages & {u.lower() for u in r.fields.get("OnlinePstnUsages", [])}
    )
    gateway_names = {g.lower() for r in routes for g in r.gateways}
    gateways = tuple(
        CachedGateway(
            g.identity,
            bool(g.fields.get("Enabled", False)),  # New-CsOnlinePSTNGateway: Enabled defaults to $false [S4]
            tuple(int(c) for c in str(g.fields.get("FailoverResponseCodes", "408, 503, 504")).replace(",", " ").split()),
            float(g.fields.get("FailoverTimeSeconds", 10)),
        )
        for key, g in sorted(tenant.objects["gateway"].items()) if key in gateway_names
    )
    dial_plans = []
    for name in sorted(plan_names):
        rec = record("dial_plan", name)
        if rec is not None:
            dial_plans.append(CachedDialPlan(rec.identity, tuple(
                CachedRule(r.name, r.pattern, r.translation, r.is_internal_extension)
                for r in rec.fields.get("NormalizationRules", []))))
    emergency: list[str] = []
    for rec in tenant.objects["emergency_call_routing_policy"].values():
        for number in rec.fields.get("EmergencyNumbers", []):
            for text in [number.dial_string, *(number.dial_mask or "").split(";")]:
                if text and text not in emergency:
                    emergency.append(text)
    return BranchConfig(tuple(users), tuple(policies), tuple(sorted(routes, key=lambda r: r.name)), gateways,
                        tuple(dial_plans), tuple(emergency))


class SbaCache:
    """The versioned snapshot and the lookups the SBA serves from it (see the module docstring)."""

    def __init__(self, sba_fqdn: str, settings: RoleSettings | None = None) -> None:
        self.sba_fqdn = sba_fqdn.lower().rstrip(".")
        self.settings = settings or RoleSettings()
        self.snapshot: CacheSnapshot | None = None
        self.last_attempt_at: float | None = None
        self.last_failure: str | None = None
        self._by_upn: dict[str, CachedUser] = {}
        self._by_number: dict[str, CachedUser] = {}

    # --- syncing -------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return 0 if self.snapshot is None else self.snapshot.version

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
        self._by_number = {u.number: u for u in config.users if u.number}
        return SyncOutcome(
            version=version,
            changed=changed,
            added=tuple(sorted(new_users.keys() - old_users.keys())),
            removed=tuple(sorted(old_users.keys() - new_users.keys())),
            renumbered=tuple(sorted(k for k in new_users.keys() & old_users.keys()
                                    if new_users[k].number != old_users[k].number)),
        )

    # --- lookups (offline: cache only) ----------------------------------------------------------
    def user(self, upn: str) -> CachedUser | None:
        return self._by_upn.get(upn.strip().lower())

    def user_by_number(self, number: str) -> CachedUser | None:
        """Reverse number lookup: exact string match, like the cloud's (§2.4 [S14])."""
        return self._by_number.get(number)

    def users(self) -> list[CachedUser]:
        return sorted(self._by_upn.values(), key=lambda u: u.upn.lower())

    def is_emergency(self, dialed: str) -> bool:
        return self.snapshot is not None and dialed in self.snapshot.config.emergency_dial_strings

    def dial_plan_rules(self, upn: str) -> tuple[CachedRule, ...]:
        found = self.user(upn)
        if found is None or self.snapshot is None:
            return ()
        names = [found.dial_plan, "Global"] if found.dial_plan else ["Global"]
        plans = {p.name.lower(): p for p in self.snapshot.config.dial_plans}
        for name in names:  # user > tenant global (§2.5 [S14]); the service plan is not cached
            if name.lower() in plans:
                return plans[name.lower()].rules
        return ()

    def decide_inbound(self, number: str) -> InboundDecision:
        """PSTN -> Teams at the SBA: the cached user with that number and their forwarding (§3.5)."""
        user = self.user_by_number(number)
        if user is None:
            return InboundDecision(number, None, None, None, None, "unknown_to_sba",
                                   f"{number} matches no user in the SBA's cache (version {self.version})")
        after = None
        if user.unanswered_to:
            after = user.unanswered_after_s or self.settings.default_unanswered_after_s
        if user.forward_to:
            reason = f"{number} is {user.upn}; forwarded immediately to {user.forward_to}"
        elif user.unanswered_to:
            reason = f"{number} is {user.upn}; unanswered after {after:g}s -> {user.unanswered_to}"
        else:
            reason = f"{number} is {user.upn}"
        return InboundDecision(number, user.upn, user.forward_to, user.unanswered_to, after, None, reason)

    def decide_outbound(
        self, caller: str, dialed: str, health: dict[str, str] | None = None, rng: random.Random | None = None
    ) -> OutboundDecision:
        """Survivable outbound decision from the cache only (reference §3.5).

        Emergency strings skip normalization and are sent WITHOUT '+'; they are routed only if
        the caller's cached voice routing policy has a route matching them (emergency call
        routing policies are not supported offline [S26]): the documented limitation, reproduced.
        A number that belongs to a cached user is a call between local users.
        """
        user = self.user(caller)
        if self.snapshot is None or user is None:
            return OutboundDecision(caller, dialed, dialed, False, None, (), (), "unknown_to_sba",
                                    (f"{caller} is not in the SBA's cache (version {self.version})",))
        emergency = self.is_emergency(dialed)
        if emergency:
            number, reasons = dialed, [f"{dialed} is an emergency string: no normalization, sent without '+'"]
        else:
            number, rule = normalize(self.dial_plan_rules(caller), dialed)
            reasons = [f"normalized {dialed} -> {number} by rule {rule}" if rule else f"no normalization rule matches {dialed}"]
            local = self.user_by_number(number)
            if local is not None:
                return OutboundDecision(caller, dialed, number, False, local.upn, (), (), None,
                                        (*reasons, f"{number} is {local.upn}, cached at this SBA"))
        routes, gateways, route_reasons = select_gateways(
            self.snapshot.config, user.voice_routing_policy, number, {k.lower(): v for k, v in (health or {}).items()},
            self.settings, rng or random.Random(0))
        reasons += route_reasons
        refusal = None
        if not routes:
            refusal = "emergency_no_route_at_sba" if emergency else "no_matching_route"
        elif not gateways:
            refusal = "all_gateways_failed"
        return OutboundDecision(caller, dialed, number, emergency, None, routes, gateways, refusal, tuple(reasons))


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
class InboundDecision:
    """Where the SBA delivers a call for `number` (PSTN -> Teams, or a forwarded leg), from the cache."""

    number: str
    user: str | None  # the cached user holding the number (exact match)
    forward_to: str | None  # immediate forwarding target (a number or a UPN), [S26] single target
    unanswered_to: str | None
    unanswered_after_s: float | None
    refusal: str | None
    reason: str


# --- survivable routing from the cache ------------------------------------------------------------
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

    @property
    def routable(self) -> bool:
        return self.refusal is None


def _dotnet_replacement(translation: str) -> str:
    # .NET substitutions: $1, ${name}, $$ -> Python's \g<1>, \g<name>, $
    out, i = [], 0
    while i < len(translation):
        ch = translation[i]
        if ch == "$" and i + 1 < len(translation):
            nxt = translation[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "{":
                end = translation.find("}", i)
                if end > 0:
                    out.append(f"\\g<{translation[i + 2:end]}>")
                    i = end + 1
                    continue
            m = re.match(r"\d+", translation[i + 1:])
            if m:
                out.append(f"\\g<{m.group()}>")
                i += 1 + len(m.group())
                continue
        out.append("\\\\" if ch == "\\" else ch)
        i += 1
    return "".join(out)


def normalize(rules: tuple[CachedRule, ...], dialed: str) -> tuple[str, str | None]:
    """First matching rule wins (§2.5 [S16]); `IsMatch` semantics: a match anywhere unless anchored."""
    for rule in rules:
        regex = re.compile(dotnet_to_python_regex(rule.pattern))
        if regex.search(dialed):
            return regex.sub(_dotnet_replacement(rule.translation), dialed), rule.name
    return dialed, None


def select_gateways(
    config: BranchConfig,
    policy_name: str | None,
    number: str,
    health: dict[str, str],
    settings: RoleSettings,
    rng: random.Random,
) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """(routes, gateways in failover order, reasons) for `number` under the cached policy (§2.3).

    The policy's usages in order; the first usage with a matching route wins and later usages
    are not evaluated; its matching routes by ascending priority; inside a route, gateways in
    random order; demoted/inactive gateways at the end of the whole list (or dropped,
    `demoted_gateways`); disabled gateways never. A gateway listed by two routes keeps its first place.
    """
    reasons: list[str] = []
    policy = next((p for p in config.policies if p.name.lower() == (policy_name or "").lower()), None)
    if policy is None:
        return (), (), [f"voice routing policy {policy_name!r} not in the cache"]
    enabled = {g.fqdn.lower(): g.enabled for g in config.gateways}
    for usage in policy.usages:
        matching = sorted(
            (r for r in config.routes
             if usage.lower() in (u.lower() for u in r.usages) and re.search(dotnet_to_python_regex(r.number_pattern), number)),
            key=lambda r: (r.priority, r.name),
        )
        if not matching:
            reasons.append(f"usage {usage!r}: no route matches {number}")
            continue
        reasons.append(f"usage {usage!r}: routes {', '.join(r.name for r in matching)} match {number}")
        order: list[str] = []
        last: list[str] = []  # [S8]: demoted trunks go to the END of the whole candidate list
        for route in matching:
            healthy, unhealthy = [], []
            for fqdn in route.gateways:
                key = fqdn.lower()
                state = "disabled" if not enabled.get(key, True) else health.get(key, "active")
                if state == "disabled":
                    reasons.append(f"{fqdn}: disabled, not offered")
                elif state == "active":
                    healthy.append(key)
                elif settings.demoted_gateways == DEMOTED_SKIPPED:
                    reasons.append(f"{fqdn}: {state}, skipped")
                else:
                    unhealthy.append(key)
                    reasons.append(f"{fqdn}: {state}, tried last")
            rng.shuffle(healthy)  # Fisher-Yates among equal gateways [S6][S12]
            order += [g for g in healthy if g not in order]
            last += [g for g in unhealthy if g not in last]
        order += [g for g in last if g not in order]
        return tuple(r.name for r in matching), tuple(order), reasons
    return (), (), reasons
