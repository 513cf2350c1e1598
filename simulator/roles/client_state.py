"""A Teams client's connectivity state machine: online -> offline -> appliance mode -> online.

Theory of operation ([S26]; the detection timers are not documented, see settings.py):

- ONLINE: signed in to the cloud. Sends a keepalive every `client_keepalive_interval_s`; renews
  its token before expiry; contacts every SBA of its SBA policy every
  `client_sba_checkin_interval_s` (an SBA refuses a client it has not seen within 24 h).
  No successful keepalive for `client_detection_s` -> OFFLINE.
- OFFLINE: the cloud is unreachable. If the client may use an SBA (its SBA policy lists one; it
  still holds a token, i.e. it was not restarted during the outage; the token is within the
  expired-token grace; the SBA was contacted within 24 h) it probes the policy's SBAs in order and
  registers at the first that answers. Registered -> APPLIANCE. It probes the cloud meanwhile.
- APPLIANCE ("appliance mode", the banner): calls go through the SBA. It refreshes its SBA
  registration at half the granted expiry and keeps probing the cloud. It returns to ONLINE only
  when the cloud is reachable AND none of its outgoing calls is still up [S26]; an incoming call
  in progress does not hold it back (assumption, docs/ASSUMPTIONS.md) and keeps its dialog.
- No transition ends a call: calls in progress continue across every switch [S26]. The machine
  has no "drop call" action at all; `UnregisterFromSba` only stops new calls arriving there.
- A restart loses the token ("forced to negotiate a new token" [S26]) and the calls. Online, the
  client signs in again; offline, it cannot enter appliance mode until the cloud is back.

Sans-I/O in the aioquic manner: nothing here reads a clock or touches the network.

    client = ClientConnectivity("alice@contoso.com", sba_policy=("sba1.contoso.com",), settings=s, now=0.0)
    outputs = client.handle_timer(now)       # at or after client.next_deadline()
    outputs = client.handle(KeepaliveOk(), now)
    for out in outputs:
        match out:
            case StateChanged(): log.info("client.state", **out.fields())
            case Blocked():      log.info("client.appliance_mode_blocked", reason=out.reason)
            case ReturnDeferred(): log.info("client.return_deferred", reason=out.reason)
            case SendKeepalive() | ProbeCloud(): ...   # answer -> KeepaliveOk / KeepaliveFailed
            case ProbeSba(sba=x): ...                  # answer -> SbaProbeOk(x) / SbaProbeFailed(x)
            case RegisterAtSba(sba=x): ...             # -> SbaRegistered(x, expires_s) / SbaRegistrationRefused(x, reason)
            ...

The glue reports a request without an answer after `client_probe_timeout_s` as the matching
failure; SBA probes and registrations also time out here on their own (deadline), so a lost
answer can never wedge the machine. Answers about an SBA the machine is no longer waiting for
are ignored.

State changes are the table `TRANSITIONS` below (h11 style): (state, observation) -> ordered
rows of (guard, new state, reason); the first row whose guard holds wins. Bookkeeping that does
not change state (recording a call, a token, a probe result) is in `_record`, next to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from simulator.roles.settings import RoleSettings


class ClientState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    APPLIANCE = "appliance_mode"


# --- observations fed in ----------------------------------------------------------------------
class Observation:
    """Something the client's glue saw (an answer, a failure, a user action)."""


@dataclass(frozen=True)
class KeepaliveOk(Observation):
    """The cloud answered a SendKeepalive or a ProbeCloud."""


@dataclass(frozen=True)
class KeepaliveFailed(Observation):
    reason: str = "no answer"


@dataclass(frozen=True)
class SbaProbeOk(Observation):
    sba: str


@dataclass(frozen=True)
class SbaProbeFailed(Observation):
    sba: str
    reason: str = "no answer"


@dataclass(frozen=True)
class SbaRegistered(Observation):
    sba: str
    expires_s: float | None = None  # Expires granted; None -> settings.sba_registration_expiry_s


@dataclass(frozen=True)
class SbaRegistrationRefused(Observation):
    sba: str
    reason: str


@dataclass(frozen=True)
class CallStarted(Observation):
    call_id: str
    outgoing: bool


@dataclass(frozen=True)
class CallEnded(Observation):
    call_id: str


@dataclass(frozen=True)
class Restarted(Observation):
    """Teams quit and started again, or the device rebooted."""


@dataclass(frozen=True)
class TokenRenewed(Observation):
    """A fresh token from the cloud (sign-in or renewal)."""


@dataclass(frozen=True)
class DetectionTimeout(Observation):
    """Internal: no successful keepalive for client_detection_s (raised by handle_timer)."""


# --- outputs handed out -----------------------------------------------------------------------
class Output:
    """An action for the glue to perform, or a fact for it to log."""


@dataclass(frozen=True)
class SendKeepalive(Output):
    pass


@dataclass(frozen=True)
class ProbeCloud(Output):
    pass


@dataclass(frozen=True)
class RenewToken(Output):
    pass


@dataclass(frozen=True)
class RegisterToCloud(Output):
    pass


@dataclass(frozen=True)
class CheckInAtSba(Output):
    """Contact the SBA with the user's token while online, so it records the user as seen."""

    sba: str


@dataclass(frozen=True)
class ProbeSba(Output):
    sba: str


@dataclass(frozen=True)
class RegisterAtSba(Output):
    sba: str
    refresh: bool = False


@dataclass(frozen=True)
class UnregisterFromSba(Output):
    sba: str
    reason: str


@dataclass(frozen=True)
class StateChanged(Output):
    old: ClientState
    new: ClientState
    reason: str
    at: float
    sba: str | None = None

    def fields(self) -> dict[str, object]:
        return {"old": str(self.old), "new": str(self.new), "reason": self.reason, "sba": self.sba}


@dataclass(frozen=True)
class Blocked(Output):
    """The client is offline and may not (or cannot yet) enter appliance mode."""

    reason: str
    at: float


@dataclass(frozen=True)
class ReturnDeferred(Output):
    """In appliance mode, the cloud is back but outgoing calls hold the client at the SBA [S26]."""

    reason: str
    at: float


# --- the decision the table's guards rest on, as a plain function ------------------------------
def appliance_mode_candidates(
    *,
    sba_policy: tuple[str, ...],
    token_authenticated_at: float | None,
    token_expires_at: float | None,
    last_sba_contact: dict[str, float],
    now: float,
    settings: RoleSettings,
) -> tuple[list[str], str]:
    """The SBAs of the policy the client may try now, in policy order, and why not if none.

    The client checks what [S26] lists as client conditions; the SBA checks the token and the
    24-hour rule again on its side (`sba_cache.ClientAdmission`), with the same settings.
    """
    if not sba_policy:
        return [], "no SBA policy"
    if token_authenticated_at is None or token_expires_at is None:
        return [], "restarted during the outage: no token, cannot negotiate a new one"
    deadline = settings.token_grace_deadline(token_authenticated_at, token_expires_at)
    if now > deadline:
        return [], f"token beyond the expired-token grace (grace ended at {deadline:g})"
    fresh = [
        sba for sba in sba_policy
        if sba in last_sba_contact and now - last_sba_contact[sba] <= settings.sba_contact_window_s
    ]
    if not fresh:
        return [], f"no SBA of the policy contacted within {settings.sba_contact_window_s:g}s"
    return fresh, ""


Guard = Callable[["ClientConnectivity", Observation], bool]


def on_cadence(last: float, interval: float, now: float) -> float:
    """When a periodic check due at `last + interval` counts as done: on its cadence, so a loop that
    wakes a little late (the wall clock of the real network) does not push every later one back;
    after a gap longer than the interval, from `now`. On the virtual clock `now` is the due time."""
    due = last + interval
    return due if now - due < interval else now


def _always(_c: ClientConnectivity, _o: Observation) -> bool:
    return True


def _no_outgoing_calls(c: ClientConnectivity, _o: Observation) -> bool:
    return not c.outgoing_calls()


def _cloud_back_and_no_outgoing_calls(c: ClientConnectivity, _o: Observation) -> bool:
    return c.cloud_reachable and not c.outgoing_calls()


def _about_current_sba(c: ClientConnectivity, o: Observation) -> bool:
    return getattr(o, "sba", None) == c.sba


def _answers_our_registration(c: ClientConnectivity, o: Observation) -> bool:
    return c._accepted_registration is not None and c._accepted_registration == getattr(o, "sba", None)


#: (state, observation type) -> [(guard, new state, reason)], first matching guard wins.
#: Observations with no row for the current state change nothing (bookkeeping only).
TRANSITIONS: dict[tuple[ClientState, type[Observation]], list[tuple[Guard, ClientState, str]]] = {
    (ClientState.ONLINE, DetectionTimeout): [
        (_always, ClientState.OFFLINE, "no successful cloud keepalive for {detection}s"),
    ],
    (ClientState.OFFLINE, KeepaliveOk): [
        (_always, ClientState.ONLINE, "cloud reachable again"),
    ],
    (ClientState.OFFLINE, SbaRegistered): [
        (_answers_our_registration, ClientState.APPLIANCE, "registered at SBA {sba}"),
    ],
    (ClientState.APPLIANCE, KeepaliveOk): [
        (_no_outgoing_calls, ClientState.ONLINE, "cloud reachable and no outgoing call in progress"),
    ],
    (ClientState.APPLIANCE, CallEnded): [
        (_cloud_back_and_no_outgoing_calls, ClientState.ONLINE, "last outgoing call ended and the cloud is reachable"),
    ],
    (ClientState.APPLIANCE, SbaRegistrationRefused): [
        (_about_current_sba, ClientState.OFFLINE, "SBA {sba} refused the registration refresh: {why}"),
    ],
    (ClientState.APPLIANCE, SbaProbeFailed): [
        (_about_current_sba, ClientState.OFFLINE, "SBA {sba} stopped answering: {why}"),
    ],
    (ClientState.APPLIANCE, Restarted): [
        (_always, ClientState.OFFLINE, "restarted during the outage: token lost"),
    ],
}


@dataclass
class ClientConnectivity:
    user: str
    sba_policy: tuple[str, ...]
    settings: RoleSettings
    now: float  # when the client signed in; it starts ONLINE with a fresh token
    state: ClientState = ClientState.ONLINE
    sba: str | None = None  # the SBA it is registered at (APPLIANCE) or hunting (OFFLINE)
    calls: dict[str, bool] = field(default_factory=dict)  # call id -> outgoing
    last_sba_contact: dict[str, float] = field(default_factory=dict)
    token_authenticated_at: float | None = None
    token_expires_at: float | None = None
    waiting_for_calls_to_end: bool = False

    def __post_init__(self) -> None:
        self.sba_policy = tuple(self.sba_policy)
        self._renew_token(self.now)
        self._last_keepalive_ok = self.now
        self._last_keepalive_sent = self.now
        self._last_cloud_probe = self.now
        self._cloud_ok_at: float | None = self.now
        self._cloud_failed_at: float | None = None
        self._last_checkin: float | None = None  # None: check in at the first timer
        self._renew_requested_at: float | None = None
        self._awaiting: tuple[str, str, float] | None = None  # (probe|register, sba, deadline)
        self._hunt_retry_at: float | None = None
        self._refused: set[str] = set()
        self._registered_at = 0.0
        self._registration_expires_s = self.settings.sba_registration_expiry_s
        self._refreshing = False
        self._accepted_registration: str | None = None  # set by _record for the table's guard

    # --- queries ----------------------------------------------------------------------------------
    @property
    def cloud_reachable(self) -> bool:
        return self._cloud_ok_at is not None and (
            self._cloud_failed_at is None or self._cloud_ok_at > self._cloud_failed_at
        )

    def outgoing_calls(self) -> list[str]:
        return sorted(call for call, outgoing in self.calls.items() if outgoing)

    def next_deadline(self) -> float | None:
        s = self.settings
        deadlines: list[float] = []
        if self._awaiting is not None:
            deadlines.append(self._awaiting[2])
        if self.state is ClientState.ONLINE:
            deadlines += [self._last_keepalive_ok + s.client_detection_s,
                          self._last_keepalive_sent + s.client_keepalive_interval_s]
            if self.sba_policy:
                deadlines.append(self.now if self._last_checkin is None
                                 else self._last_checkin + s.client_sba_checkin_interval_s)
            if self.token_expires_at is not None:
                due = self.token_expires_at - s.client_token_renew_before_s
                if self._renew_requested_at is not None:
                    due = max(due, self._renew_requested_at + s.client_keepalive_interval_s)
                deadlines.append(due)
        else:
            deadlines.append(self._last_cloud_probe + s.client_cloud_probe_interval_s)
            if self.state is ClientState.OFFLINE and self._hunt_retry_at is not None:
                deadlines.append(self._hunt_retry_at)
            if self.state is ClientState.APPLIANCE and self._awaiting is None:
                deadlines.append(self._registered_at + self._registration_expires_s / 2)
        return min(deadlines)

    # --- inputs -------------------------------------------------------------------------------------
    def handle(self, observation: Observation, now: float) -> list[Output]:
        if not isinstance(observation, Observation):
            raise TypeError(f"not a client observation: {observation!r}")
        self.now = max(self.now, now)
        self._accepted_registration = None
        outputs = self._record(observation, now)
        for guard, new_state, reason in TRANSITIONS.get((self.state, type(observation)), []):
            if guard(self, observation):
                outputs = self._enter(new_state, self._reason(reason, observation), now) + outputs
                break
        else:
            if self.state is ClientState.APPLIANCE and isinstance(observation, KeepaliveOk) and not self.waiting_for_calls_to_end:
                self.waiting_for_calls_to_end = True
                outputs.append(ReturnDeferred(
                    f"cloud reachable; waiting for outgoing calls to end: {', '.join(self.outgoing_calls())}", now))
        return outputs

    def handle_timer(self, now: float) -> list[Output]:
        self.now = max(self.now, now)
        s = self.settings
        outputs: list[Output] = []
        if self._awaiting is not None and now >= self._awaiting[2]:
            kind, sba, _ = self._awaiting
            failure = SbaProbeFailed(sba, "timeout") if kind == "probe" else SbaRegistrationRefused(sba, "timeout")
            if kind == "register" and self._refreshing:
                failure = SbaProbeFailed(sba, "registration refresh timed out")
            outputs += self.handle(failure, now)
        if self.state is ClientState.ONLINE:
            if now >= self._last_keepalive_ok + s.client_detection_s:
                return outputs + self.handle(DetectionTimeout(), now)
            if now >= self._last_keepalive_sent + s.client_keepalive_interval_s:
                self._last_keepalive_sent = on_cadence(self._last_keepalive_sent, s.client_keepalive_interval_s, now)
                outputs.append(SendKeepalive())
            if self.sba_policy and (self._last_checkin is None or now >= self._last_checkin + s.client_sba_checkin_interval_s):
                self._last_checkin = now
                outputs += [CheckInAtSba(sba) for sba in self.sba_policy]
            if self.token_expires_at is not None and now >= self.token_expires_at - s.client_token_renew_before_s and (
                self._renew_requested_at is None or now >= self._renew_requested_at + s.client_keepalive_interval_s
            ):
                self._renew_requested_at = now
                outputs.append(RenewToken())
            return outputs
        if now >= self._last_cloud_probe + s.client_cloud_probe_interval_s:
            self._last_cloud_probe = on_cadence(self._last_cloud_probe, s.client_cloud_probe_interval_s, now)
            outputs.append(ProbeCloud())
        if self.state is ClientState.OFFLINE and self._hunt_retry_at is not None and now >= self._hunt_retry_at:
            self._hunt_retry_at = None
            self._refused.clear()  # a refusal may have been transient (e.g. the SBA restarting)
            outputs += self._hunt(now, after=None)
        if (self.state is ClientState.APPLIANCE and self._awaiting is None and self.sba is not None
                and now >= self._registered_at + self._registration_expires_s / 2):
            self._refreshing = True
            self._awaiting = ("register", self.sba, now + s.client_probe_timeout_s)
            outputs.append(RegisterAtSba(self.sba, refresh=True))
        return outputs

    # --- bookkeeping (no state change) ------------------------------------------------------------
    def _record(self, o: Observation, now: float) -> list[Output]:
        match o:
            case KeepaliveOk():
                self._last_keepalive_ok = now
                self._cloud_ok_at = now
            case KeepaliveFailed():
                self._cloud_failed_at = now
                self.waiting_for_calls_to_end = False
            case CallStarted(call_id=call_id, outgoing=outgoing):
                self.calls[call_id] = outgoing
            case CallEnded(call_id=call_id):
                self.calls.pop(call_id, None)
            case TokenRenewed():
                self._renew_token(now)
            case Restarted():
                self.token_authenticated_at = self.token_expires_at = None
                self.calls.clear()  # the process that held them is gone
                if self.state is ClientState.ONLINE:
                    return [RenewToken(), RegisterToCloud()]
                if self.state is ClientState.OFFLINE:
                    self._awaiting = None
                    self._hunt_retry_at = None
                    return [Blocked("restarted during the outage: no token, cannot negotiate a new one", now)]
            case SbaProbeOk(sba=sba):
                if self.state is ClientState.ONLINE:
                    self.last_sba_contact[sba] = now  # a check-in answered
                elif self._awaiting is not None and self._awaiting[:2] == ("probe", sba):
                    self._awaiting = ("register", sba, now + self.settings.client_probe_timeout_s)
                    return [RegisterAtSba(sba)]
            case SbaProbeFailed(sba=sba) if self.state is ClientState.OFFLINE:
                if self._awaiting is not None and self._awaiting[:2] == ("probe", sba):
                    self._awaiting = None
                    return self._hunt(now, after=sba)
            case SbaRegistered(sba=sba) if self.state is ClientState.ONLINE:
                # the cloud came back while a REGISTER was in flight: take the binding back
                return [UnregisterFromSba(sba, "registration answered after returning online")]
            case SbaRegistered(sba=sba, expires_s=expires_s):
                if self._awaiting is not None and self._awaiting[:2] == ("register", sba):
                    self._awaiting = None
                    self._refreshing = False
                    self._accepted_registration = sba
                    self.last_sba_contact[sba] = now
                    self._registered_at = now
                    self._registration_expires_s = expires_s or self.settings.sba_registration_expiry_s
            case SbaRegistrationRefused(sba=sba) if self.state is ClientState.APPLIANCE and sba == self.sba:
                self._refused.add(sba)  # the table leaves appliance mode; do not hunt back to it
            case SbaRegistrationRefused(sba=sba, reason=reason) if self.state is ClientState.OFFLINE:
                if self._awaiting is not None and self._awaiting[:2] == ("register", sba):
                    self._awaiting = None
                    self._refused.add(sba)
                    return [Blocked(f"SBA {sba} refused: {reason}", now)] + self._hunt(now, after=sba)
        return []

    # --- entering a state ---------------------------------------------------------------------------
    def _enter(self, new: ClientState, reason: str, now: float) -> list[Output]:
        old, left_sba = self.state, self.sba
        self.state = new
        self.waiting_for_calls_to_end = False
        self._awaiting = None
        self._refreshing = False
        sba_field = self.sba if new is ClientState.APPLIANCE else left_sba if old is ClientState.APPLIANCE else None
        outputs: list[Output] = [StateChanged(old, new, reason, now, sba=sba_field)]
        if old is ClientState.APPLIANCE and left_sba is not None:
            outputs.append(UnregisterFromSba(left_sba, reason))
        if new is ClientState.ONLINE:
            self.sba = None
            self._refused.clear()
            self._hunt_retry_at = None
            self._last_keepalive_ok = self._last_keepalive_sent = now
            if self.token_authenticated_at is None:
                outputs.append(RenewToken())  # restarted while offline: sign in again now the cloud is back
            outputs.append(RegisterToCloud())
        elif new is ClientState.OFFLINE:
            self._last_cloud_probe = now
            self.sba = None
            outputs += self._hunt(now, after=None)
        return outputs

    def _hunt(self, now: float, after: str | None) -> list[Output]:
        """Probe the next SBA of the policy the client may use; none left -> retry later."""
        candidates, why_not = appliance_mode_candidates(
            sba_policy=self.sba_policy, token_authenticated_at=self.token_authenticated_at,
            token_expires_at=self.token_expires_at, last_sba_contact=self.last_sba_contact,
            now=now, settings=self.settings,
        )
        if not candidates:
            return [Blocked(why_not, now)]
        if after in candidates:
            candidates = candidates[candidates.index(after) + 1:]
        candidates = [sba for sba in candidates if sba not in self._refused]
        if not candidates:
            self._hunt_retry_at = now + self.settings.client_sba_probe_interval_s
            return [Blocked("no SBA of the policy answered; retrying", now)]
        self.sba = candidates[0]
        self._awaiting = ("probe", candidates[0], now + self.settings.client_probe_timeout_s)
        return [ProbeSba(candidates[0])]

    def _renew_token(self, now: float) -> None:
        self.token_authenticated_at = now
        self.token_expires_at = now + self.settings.client_token_lifetime_s
        self._renew_requested_at = None

    def _reason(self, template: str, o: Observation) -> str:
        return template.format(
            detection=f"{self.settings.client_detection_s:g}",
            sba=getattr(o, "sba", self.sba),
            why=getattr(o, "reason", ""),
        )
