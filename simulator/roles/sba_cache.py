"""What the Survivable Branch Appliance knows and decides on its own (sans-I/O).

Three pieces, all plain data and functions; `roles/sba.py` is the asyncio glue around them.

1. `SbaCache`: the versioned snapshot of the branch's configuration, synced from the cloud tenant
   while the link is up, and the lookups the SBA serves from it during an outage.
2. `ClientAdmission`: the token rules the SBA enforces on a registering client [S26].
3. `CdrBuffer`: CDRs written during the outage, uploaded on recovery, none lost, none doubled.

--- ClientAdmission ---------------------------------------------------------------------------

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

from dataclasses import dataclass, field

from simulator.roles.cdr import Cdr
from simulator.roles.settings import RoleSettings


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
