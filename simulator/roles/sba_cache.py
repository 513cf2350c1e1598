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
    cache.decide_outbound(upn, dialed, health)  # -> OutboundDecision (routes from the cache only)


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

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from simulator.roles.cdr import Cdr
from simulator.roles.settings import RoleSettings


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
