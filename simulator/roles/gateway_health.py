"""The Teams proxy's view of each gateway's health, from the OPTIONS it receives (sans-I/O).

Theory of operation ([S2][S10] for OPTIONS, [S6][S7] for health and demotion):

- The SBC sends OPTIONS to each proxy FQDN (sip, sip2, sip3; one region each) about once a
  minute. The proxy answers, and only once it has received an OPTIONS from a gateway does it
  start sending its own OPTIONS to the FQDN in that OPTIONS' Contact [S3][S10].
- Health is decided per gateway from the last OPTIONS received, in any region [S8]:

      never received any OPTIONS since pairing    -> inactive  (TAC: "Warning, no SIP options")
      sending, but the proxy's OPTIONS get no 2xx -> inactive  (below)
      last OPTIONS less than demotion_window ago  -> active
      otherwise, less than inactive_after ago     -> demoted   (tried last: "gateway.demoted")
      otherwise                                   -> inactive  (TAC: "Inactive"; still tried last)

  The exchange goes both ways [S3][S10]: a gateway whose own OPTIONS still arrive after one of the
  proxy's OPTIONS toward it got no 2xx (a Contact FQDN that does not resolve, a firewall, a
  certificate the proxy's connection is refused with) is shown Inactive, the proxy's failure as
  the reason, until one of the proxy's OPTIONS is answered again (`probe_answered` /
  `probe_failed`). A gateway that went silent as well (a cut) is judged by its silence: demoted,
  then inactive, on the timers above.

  A gateway with SendSipOptions=$false is excluded from OPTIONS-based demotion [S4][S8]: always
  active. A gateway with Enabled=$false is drained: `disabled`, no new calls [S4]. Disabled
  outranks everything, then SendSipOptions=$false, then the OPTIONS age.
- Asking with `region=` gives the regional view [S8]: a gateway that sends OPTIONS only to
  some regions is active in those and demoted in the rest.

Also here: `SessionCounter`, concurrent calls per gateway against MaxConcurrentSessions (alert at 90 %,
optional hard limit), see its docstring.

One `GatewayHealth` is shared by the three proxy hosts (the Teams backend shares this state
across regions); each proxy passes its own region name. Nothing here reads a clock:

    health = GatewayHealth(settings)
    health.add_gateway("sbc1.contoso.com", now)                       # paired (New-CsOnlinePSTNGateway)
    changes = health.options_received("sbc1.contoso.com", "noam", now, contact="sbc1.contoso.com:5061")
    changes = health.handle_timer(now)          # call at or after health.next_deadline()
    for c in changes: log.info(c.event, **c.fields())    # gateway.active / gateway.demoted / ...
    health.health_of("sbc1.contoso.com", now)   # Health.ACTIVE (a StrEnum: == "active")
    health.health_map(now)                      # {fqdn: Health} for the routing engine
    for probe in health.options_due(now, region="noam"):   # proxy -> SBC OPTIONS to send now
        ...send to probe.contact...; health.options_sent(probe.gateway, probe.region, now)
        changes = health.probe_answered(probe.gateway, probe.region, now)   # 2xx
        changes = health.probe_failed(probe.gateway, probe.region, now, "timeout (no response)")

Every change is returned as a `HealthChange` (event name, reason, fields), never logged here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from simulator.roles.settings import RoleSettings


class Health(StrEnum):
    ACTIVE = "active"
    DEMOTED = "demoted"
    INACTIVE = "inactive"
    DISABLED = "disabled"


@dataclass(frozen=True)
class HealthChange:
    gateway: str
    old: Health | None  # None: first state after pairing
    new: Health
    reason: str
    at: float
    silent_s: float | None  # seconds since the last OPTIONS received, None if never

    @property
    def event(self) -> str:
        return f"gateway.{self.new}"

    def fields(self) -> dict[str, object]:
        return {"gateway": self.gateway, "old": None if self.old is None else str(self.old),
                "new": str(self.new), "reason": self.reason, "silent_s": self.silent_s}


@dataclass(frozen=True)
class GatewayStatus:
    health: Health
    reason: str
    last_options_at: float | None
    silent_s: float | None


@dataclass(frozen=True)
class OptionsProbe:
    """An OPTIONS the proxy of `region` should send now to the gateway's Contact."""

    gateway: str
    region: str
    contact: str


@dataclass
class _Watch:
    fqdn: str
    paired_at: float
    enabled: bool = True
    send_sip_options: bool = True
    last_options: dict[str, float] = field(default_factory=dict)  # region -> time received
    contact: dict[str, str] = field(default_factory=dict)  # region -> Contact of the last OPTIONS
    last_sent: dict[str, float] = field(default_factory=dict)  # region -> our OPTIONS sent
    #: region -> (since, why): the proxy's OPTIONS from there have got no 2xx since `since` (the
    #: first failure after the last answer), `why` the latest failure; why None once answered
    probes: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    state: Health | None = None

    def probe_failure(self, region: str | None = None) -> str | None:
        """Why the proxy's latest OPTIONS toward the gateway (from `region`, else from any) got no
        2xx, when the gateway has sent an OPTIONS since they began failing: it is alive and
        sending, yet does not answer the proxy. None when answered, never sent, or when the gateway has gone silent too
        (a cut): then its silence decides, by the demotion timers."""
        probes = [self.probes[region]] if region in self.probes else [] if region is not None else list(self.probes.values())
        if not probes:
            return None
        at, why = max(probes, key=lambda p: p[0])
        last = self.last_options.get(region) if region is not None else _latest(self.last_options.values())
        return why if why is not None and last is not None and last > at else None


def classify(
    *,
    enabled: bool,
    send_sip_options: bool,
    last_options_at: float | None,
    now: float,
    settings: RoleSettings,
    probe_failure: str | None = None,
) -> tuple[Health, str]:
    """The decision as a plain function: (health, reason) from one gateway's facts;
    `probe_failure`: why the proxy's latest OPTIONS toward the gateway went unanswered."""
    if not enabled:
        return Health.DISABLED, "Enabled=$false: drained, no new calls"
    if not send_sip_options:
        return Health.ACTIVE, "SendSipOptions=$false: excluded from OPTIONS-based demotion"
    if last_options_at is None:
        return Health.INACTIVE, "no OPTIONS received since pairing"
    if probe_failure is not None:  # [S10]: the exchange failed on the proxy's side
        return Health.INACTIVE, f"the proxy's OPTIONS to the gateway failed: {probe_failure}"
    silent = now - last_options_at
    if silent < settings.demotion_window_s:
        return Health.ACTIVE, f"OPTIONS received {silent:g}s ago"
    if silent < settings.inactive_after_s:
        return Health.DEMOTED, f"no OPTIONS for {silent:g}s (demotion window {settings.demotion_window_s:g}s)"
    return Health.INACTIVE, f"no OPTIONS for {silent:g}s (inactive after {settings.inactive_after_s:g}s)"


class GatewayHealth:
    def __init__(self, settings: RoleSettings | None = None) -> None:
        self.settings = settings or RoleSettings()
        self._watches: dict[str, _Watch] = {}

    # --- configuration (the tenant's gateways) -------------------------------------------------
    def add_gateway(
        self, fqdn: str, now: float, *, enabled: bool = True, send_sip_options: bool = True
    ) -> list[HealthChange]:
        key = _key(fqdn)
        if key in self._watches:
            raise ValueError(f"gateway {fqdn!r} is already paired")
        self._watches[key] = _Watch(key, now, enabled, send_sip_options)
        return self._reevaluate(self._watches[key], now)

    def update_gateway(
        self, fqdn: str, now: float, *, enabled: bool | None = None, send_sip_options: bool | None = None
    ) -> list[HealthChange]:
        """Set-CsOnlinePSTNGateway -Enabled / -SendSipOptions while running."""
        watch = self._watch(fqdn)
        if enabled is not None:
            watch.enabled = enabled
        if send_sip_options is not None:
            watch.send_sip_options = send_sip_options
        return self._reevaluate(watch, now)

    def remove_gateway(self, fqdn: str) -> None:
        self._watches.pop(self._watch(fqdn).fqdn)

    def gateways(self) -> list[str]:
        return sorted(self._watches)

    # --- inputs --------------------------------------------------------------------------------
    def options_received(
        self, fqdn: str, region: str, now: float, contact: str | None = None
    ) -> list[HealthChange]:
        """An OPTIONS from a paired gateway reached the proxy of `region` (and was answered 200)."""
        watch = self._watch(fqdn)
        watch.last_options[region] = now
        if contact:
            watch.contact[region] = contact
        return self._reevaluate(watch, now)

    def options_sent(self, fqdn: str, region: str, now: float) -> None:
        self._watch(fqdn).last_sent[region] = now

    def probe_answered(self, fqdn: str, region: str, now: float) -> list[HealthChange]:
        """The gateway answered the proxy's OPTIONS from `region` with 2xx."""
        return self._probe(fqdn, region, now, None)

    def probe_failed(self, fqdn: str, region: str, now: float, reason: str) -> list[HealthChange]:
        """The proxy's OPTIONS from `region` got no 2xx: `reason` says what happened instead."""
        return self._probe(fqdn, region, now, reason)

    def _probe(self, fqdn: str, region: str, now: float, failure: str | None) -> list[HealthChange]:
        watch = self._watch(fqdn)
        since, before = watch.probes.get(region, (now, None))
        watch.probes[region] = (since if failure is not None and before is not None else now, failure)
        return self._reevaluate(watch, now)

    def handle_timer(self, now: float) -> list[HealthChange]:
        changes: list[HealthChange] = []
        for watch in self._watches.values():
            changes += self._reevaluate(watch, now)
        return changes

    def next_deadline(self, region: str | None = None) -> float | None:
        """Earliest time a health state may change or a proxy OPTIONS falls due; None if never.

        A due OPTIONS stays due (its deadline may be in the past) until `options_sent` is called.
        With `region`, only that region's OPTIONS count: each proxy host sends its own, and one
        that is down must not keep the others' timers due.
        """
        s = self.settings
        deadlines: list[float] = []
        for watch in self._watches.values():
            last = _latest(watch.last_options.values())
            if last is not None and watch.state is Health.ACTIVE and watch.enabled and watch.send_sip_options:
                deadlines.append(last + s.demotion_window_s)
            elif last is not None and watch.state is Health.DEMOTED:
                deadlines.append(last + s.inactive_after_s)
            if watch.send_sip_options:
                for where in watch.contact:
                    if region is not None and where != region:
                        continue
                    sent = watch.last_sent.get(where)
                    deadlines.append(watch.last_options[where] if sent is None else sent + s.proxy_options_interval_s)
        return min(deadlines) if deadlines else None

    # --- outputs ---------------------------------------------------------------------------------
    def status(self, fqdn: str, now: float, region: str | None = None) -> GatewayStatus:
        watch = self._watch(fqdn)
        last = watch.last_options.get(region) if region is not None else _latest(watch.last_options.values())
        health, reason = classify(enabled=watch.enabled, send_sip_options=watch.send_sip_options,
                                  last_options_at=last, now=now, settings=self.settings,
                                  probe_failure=watch.probe_failure(region))
        if region is not None and health is Health.INACTIVE and watch.last_options and last is None:
            # [S8]: alive in other regions only -> this region's routes are demoted, not dead
            health, reason = Health.DEMOTED, f"no OPTIONS to region {region}; other regions receive them"
        return GatewayStatus(health, reason, last, None if last is None else now - last)

    def health_of(self, fqdn: str, now: float, region: str | None = None) -> Health:
        return self.status(fqdn, now, region).health

    def health_map(self, now: float, region: str | None = None) -> dict[str, Health]:
        return {fqdn: self.health_of(fqdn, now, region) for fqdn in sorted(self._watches)}

    def options_due(self, now: float, region: str) -> list[OptionsProbe]:
        """Proxy -> SBC OPTIONS due from `region`: only to gateways that sent us one first [S3]."""
        probes = []
        for watch in self._watches.values():
            contact = watch.contact.get(region)
            if contact is None or not watch.send_sip_options:
                continue
            sent = watch.last_sent.get(region)
            if sent is None or now >= sent + self.settings.proxy_options_interval_s:
                probes.append(OptionsProbe(watch.fqdn, region, contact))
        return sorted(probes, key=lambda p: p.gateway)

    # --- internals -------------------------------------------------------------------------------
    def _reevaluate(self, watch: _Watch, now: float) -> list[HealthChange]:
        last = _latest(watch.last_options.values())
        health, reason = classify(enabled=watch.enabled, send_sip_options=watch.send_sip_options,
                                  last_options_at=last, now=now, settings=self.settings,
                                  probe_failure=watch.probe_failure())
        if health == watch.state:
            return []
        change = HealthChange(watch.fqdn, watch.state, health, reason, now, None if last is None else now - last)
        watch.state = health
        return [change]

    def _watch(self, fqdn: str) -> _Watch:
        try:
            return self._watches[_key(fqdn)]
        except KeyError:
            raise KeyError(f"gateway {fqdn!r} is not paired with this tenant") from None


def _key(fqdn: str) -> str:
    # DNS names compare case-insensitively (RFC 4343); a trailing dot is the same name
    return fqdn.lower().rstrip(".")


def _latest(times: Iterable[float]) -> float | None:
    values = list(times)
    return max(values) if values else None


# --- concurrent sessions per gateway [S4] -------------------------------------------------------------
@dataclass(frozen=True)
class SessionEvent:
    """`gateway.sessions_alert` when concurrent calls reach 90 % of MaxConcurrentSessions,
    `gateway.sessions_normal` when they fall below again, `gateway.sessions_rejected` when the
    optional hard limit refuses a call."""

    event: str
    gateway: str
    concurrent: int
    max_sessions: int | None
    at: float

    def fields(self) -> dict[str, object]:
        return {"gateway": self.gateway, "concurrent": self.concurrent, "max_sessions": self.max_sessions}


@dataclass
class SessionCounter:
    """Counts calls per gateway; the proxy calls `start` before offering a call and `end` after.

        admitted, events = counter.start("sbc1.contoso.com", max_sessions=gw.max_concurrent_sessions, now=now)
        if not admitted: answer 503 (cdr condition "max_concurrent_sessions"), try the next gateway
        ... events = counter.end("sbc1.contoso.com", max_sessions=..., now=now)

    Microsoft documents only the alert [S4]; refusing at the limit happens only with
    `max_sessions_enforced` (docs/ASSUMPTIONS.md).
    """

    settings: RoleSettings = field(default_factory=RoleSettings)
    active: dict[str, int] = field(default_factory=dict)
    _alerting: set[str] = field(default_factory=set)

    def start(self, fqdn: str, *, max_sessions: int | None, now: float) -> tuple[bool, list[SessionEvent]]:
        key = _key(fqdn)
        current = self.active.get(key, 0)
        if self.settings.max_sessions_enforced and max_sessions is not None and current >= max_sessions:
            return False, [SessionEvent("gateway.sessions_rejected", key, current, max_sessions, now)]
        self.active[key] = current + 1
        return True, self._alert_edge(key, max_sessions, now)

    def end(self, fqdn: str, *, max_sessions: int | None, now: float) -> list[SessionEvent]:
        key = _key(fqdn)
        if self.active.get(key, 0) <= 0:
            raise ValueError(f"no call in progress on gateway {fqdn!r} to end")
        self.active[key] -= 1
        return self._alert_edge(key, max_sessions, now)

    def _alert_edge(self, key: str, max_sessions: int | None, now: float) -> list[SessionEvent]:
        alert = self.settings.is_max_sessions_alert(self.active[key], max_sessions)
        if alert and key not in self._alerting:
            self._alerting.add(key)
            return [SessionEvent("gateway.sessions_alert", key, self.active[key], max_sessions, now)]
        if not alert and key in self._alerting:
            self._alerting.discard(key)
            return [SessionEvent("gateway.sessions_normal", key, self.active[key], max_sessions, now)]
        return []
