"""Gateway health from received OPTIONS [S2][S6][S7][S10]."""

from __future__ import annotations

import pytest

from simulator.roles.gateway_health import (
    GatewayHealth,
    Health,
    HealthChange,
    OptionsProbe,
    SessionCounter,
    classify,
)
from simulator.roles.settings import RoleSettings

SBC = "sbc1.contoso.com"
DEFAULTS = RoleSettings()


@pytest.mark.parametrize(
    "enabled, send_sip_options, last_options_at, now, settings, expect",
    [
        (True, True, None, 10, DEFAULTS, Health.INACTIVE),
        (True, True, 0, 0, DEFAULTS, Health.ACTIVE),
        (True, True, 0, 299.9, DEFAULTS, Health.ACTIVE),
        (True, True, 0, 300, DEFAULTS, Health.DEMOTED),  # [S8]: five minutes without OPTIONS
        (True, True, 0, 180, RoleSettings(demotion_window_s=180), Health.DEMOTED),  # [S6]: three
        (True, True, 0, 899, DEFAULTS, Health.DEMOTED),
        (True, True, 0, 900, DEFAULTS, Health.INACTIVE),
        (True, False, None, 5000, DEFAULTS, Health.ACTIVE),  # SendSipOptions=$false: never demoted
        (True, False, 0, 5000, DEFAULTS, Health.ACTIVE),
        (False, True, 4999, 5000, DEFAULTS, Health.DISABLED),  # Enabled=$false: drained
        (False, False, None, 5000, DEFAULTS, Health.DISABLED),
    ],
)
def test_classify(enabled, send_sip_options, last_options_at, now, settings, expect):
    health, reason = classify(enabled=enabled, send_sip_options=send_sip_options,
                              last_options_at=last_options_at, now=now, settings=settings)
    assert health is expect and reason


def run_timeline(health: GatewayHealth, options_at: list[float], until: float, region: str = "noam") -> list[HealthChange]:
    """Feed OPTIONS at the given times and fire every timer up to `until`; return all changes."""
    changes = health.add_gateway(SBC, 0.0)
    pending = sorted(options_at)
    while True:
        deadline = health.next_deadline()
        next_options = pending[0] if pending else None
        candidates = [t for t in (deadline, next_options) if t is not None and t <= until]
        if not candidates:
            return changes
        t = min(candidates)
        if next_options is not None and t == next_options:
            pending.pop(0)
            changes += health.options_received(SBC, region, t, contact=f"{SBC}:5061")
        else:
            changes += health.handle_timer(t)
        for probe in health.options_due(t, region):
            health.options_sent(probe.gateway, probe.region, t)


@pytest.mark.parametrize(
    "settings, options_at, until, expect",
    [
        # OPTIONS every minute up to 600, then silence: demoted 300 s after the last one, inactive at 900
        (DEFAULTS, [60.0 * i for i in range(1, 11)], 2000,
         [(0.0, "inactive"), (60.0, "active"), (900.0, "demoted"), (1500.0, "inactive")]),
        (RoleSettings(demotion_window_s=180), [60.0 * i for i in range(1, 11)], 2000,
         [(0.0, "inactive"), (60.0, "active"), (780.0, "demoted"), (1500.0, "inactive")]),
        # OPTIONS resume while demoted: active again at the first one
        (DEFAULTS, [60.0, 120.0, 700.0], 750, [(0.0, "inactive"), (60.0, "active"), (420.0, "demoted"), (700.0, "active")]),
    ],
)
def test_demoted_after_window_without_options(settings, options_at, until, expect):
    changes = run_timeline(GatewayHealth(settings), options_at, until)
    assert [(c.at, str(c.new)) for c in changes] == expect
    demoted = [c for c in changes if c.new is Health.DEMOTED][0]
    assert demoted.event == "gateway.demoted"
    assert demoted.silent_s == settings.demotion_window_s
    assert "no OPTIONS for" in demoted.reason
    assert demoted.fields()["gateway"] == SBC


def test_options_from_one_region_keep_the_gateway_active_and_demote_it_in_the_others():
    health = GatewayHealth()
    health.add_gateway(SBC, 0.0)
    health.options_received(SBC, "emea", 10.0)
    assert health.health_of(SBC, 100.0) is Health.ACTIVE
    assert health.health_of(SBC, 100.0, region="emea") is Health.ACTIVE
    assert health.health_of(SBC, 100.0, region="noam") is Health.DEMOTED  # [S8]


def test_sendsipoptions_false_is_never_demoted_and_gets_no_proxy_options():
    health = GatewayHealth()
    health.add_gateway(SBC, 0.0, send_sip_options=False)
    assert health.handle_timer(10_000) == []
    assert health.health_of(SBC, 10_000) is Health.ACTIVE
    assert health.options_due(10_000, "noam") == []


def test_disabling_a_gateway_drains_it_and_enabling_restores_the_options_view():
    health = GatewayHealth()
    health.add_gateway(SBC, 0.0)
    health.options_received(SBC, "noam", 5.0)
    [change] = health.update_gateway(SBC, 10.0, enabled=False)
    assert (change.old, change.new, change.event) == (Health.ACTIVE, Health.DISABLED, "gateway.disabled")
    assert "drained" in change.reason
    assert health.handle_timer(1000) == []  # no demotion while disabled
    [change] = health.update_gateway(SBC, 1000.0, enabled=True)
    assert change.new is Health.INACTIVE  # 995 s silent by now


def test_proxy_sends_options_only_after_receiving_one_then_every_interval():
    health = GatewayHealth(RoleSettings(proxy_options_interval_s=60))
    health.add_gateway(SBC, 0.0)
    assert health.options_due(100.0, "noam") == []
    assert health.next_deadline() is None
    health.options_received(SBC, "noam", 100.0, contact="sbc1.contoso.com:5061")
    assert health.options_due(100.0, "noam") == [OptionsProbe(SBC, "noam", "sbc1.contoso.com:5061")]
    assert health.options_due(100.0, "emea") == []  # each region answers what it received
    health.options_sent(SBC, "noam", 100.0)
    assert health.options_due(159.0, "noam") == []
    assert health.next_deadline() == 160.0
    assert len(health.options_due(160.0, "noam")) == 1


def test_health_map_feeds_routing_with_plain_strings():
    health = GatewayHealth()
    health.add_gateway("SBC1.contoso.com.", 0.0)  # DNS names are case-insensitive
    health.add_gateway("sbc2.contoso.com", 0.0, enabled=False)
    health.options_received("sbc1.contoso.com", "noam", 1.0)
    assert health.health_map(2.0) == {"sbc1.contoso.com": "active", "sbc2.contoso.com": "disabled"}


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda h: h.options_received("unknown.example.com", "noam", 1.0), KeyError),
        (lambda h: h.add_gateway(SBC, 1.0), ValueError),
    ],
)
def test_unknown_or_duplicate_gateway_is_a_clear_error(call, error):
    health = GatewayHealth()
    health.add_gateway(SBC, 0.0)
    with pytest.raises(error, match="paired"):
        call(health)


@pytest.mark.parametrize(
    "enforced, max_sessions, calls, expect_admitted, expect_events",
    [
        # 10 sessions: alert when the 9th call starts (90 %), no refusal unless enforced [S4]
        (False, 10, 11, 11, ["gateway.sessions_alert"]),
        (True, 10, 11, 10, ["gateway.sessions_alert", "gateway.sessions_rejected"]),
        (True, None, 50, 50, []),  # unset: no alert, no limit
        (False, 1, 2, 2, ["gateway.sessions_alert"]),
    ],
)
def test_max_concurrent_sessions_alert_and_optional_limit(enforced, max_sessions, calls, expect_admitted, expect_events):
    counter = SessionCounter(RoleSettings(max_sessions_enforced=enforced))
    admitted, events = 0, []
    for n in range(calls):
        ok, new = counter.start(SBC, max_sessions=max_sessions, now=float(n))
        admitted += ok
        events += new
    assert admitted == expect_admitted
    assert [e.event for e in events] == expect_events
    if max_sessions == 10:
        assert events[0].concurrent == 9 and events[0].at == 8.0


def test_sessions_alert_clears_when_calls_end():
    counter = SessionCounter(RoleSettings())
    for n in range(9):
        counter.start(SBC, max_sessions=10, now=n)
    assert [e.event for e in counter.end(SBC, max_sessions=10, now=20.0)] == ["gateway.sessions_normal"]
    assert counter.active[SBC] == 8


def test_ending_a_call_that_never_started_is_an_error():
    with pytest.raises(ValueError, match="no call in progress"):
        SessionCounter().end(SBC, max_sessions=None, now=0.0)


def test_next_deadline_per_region_ignores_other_regions_due_options():
    # sip2 (emea) is down and never sends its OPTIONS: sip (noam) must not wake up for them
    health = GatewayHealth(DEFAULTS)
    health.add_gateway(SBC, 0.0)
    health.options_received(SBC, "noam", 0.0, contact=f"{SBC}:5061")
    health.options_received(SBC, "emea", 0.0, contact=f"{SBC}:5061")
    health.options_sent(SBC, "noam", 0.0)
    assert health.next_deadline() == 0.0  # emea's OPTIONS is due now
    assert health.next_deadline(region="noam") == 60.0
    assert health.next_deadline(region="emea") == 0.0


# --- the proxy's own OPTIONS toward the gateway [S3][S10] ---------------------------------------------

@pytest.mark.parametrize("exchange, expect", [
    ([], Health.ACTIVE),
    ([("answered", "noam"), ("sbc", "noam")], Health.ACTIVE),
    ([("connect.refused", "noam"), ("sbc", "noam")], Health.INACTIVE),  # [S10]: sends, but does not answer
    ([("connect.refused", "noam")], Health.ACTIVE),  # silent since: its silence decides (demotion timers)
    ([("connect.refused", "noam"), ("sbc", "noam"), ("answered", "noam")], Health.ACTIVE),  # answered again
    ([("answered", "noam"), ("answered 503", "emea"), ("sbc", "emea")], Health.INACTIVE),  # the latest counts
])
def test_proxy_options_a_sending_gateway_does_not_answer_2xx_make_it_inactive(exchange, expect):
    health = GatewayHealth()
    health.add_gateway(SBC, 0.0)
    health.options_received(SBC, "noam", 1.0, contact=f"{SBC}:5061")
    for t, (what, region) in enumerate(exchange, start=2):
        if what == "sbc":
            health.options_received(SBC, region, float(t), contact=f"{SBC}:5061")
        elif what == "answered":
            health.probe_answered(SBC, region, float(t))
        else:
            health.probe_failed(SBC, region, float(t), what)
    status = health.status(SBC, 10.0)
    assert status.health is expect
    if expect is Health.INACTIVE:
        failure = next(what for what, _ in reversed(exchange) if what not in ("sbc", "answered"))
        assert failure in status.reason and "proxy's OPTIONS" in status.reason


def test_a_failed_proxy_options_is_one_health_change_and_its_answer_another():
    health = GatewayHealth()
    health.add_gateway(SBC, 0.0)
    health.options_received(SBC, "noam", 1.0, contact=f"{SBC}:5061")
    assert health.probe_failed(SBC, "noam", 1.1, "OPTIONS: no final response (timer F, 32 s)") == []
    [down] = health.options_received(SBC, "noam", 61.0)
    assert (down.old, down.new) == (Health.ACTIVE, Health.INACTIVE) and "timer F" in down.reason
    assert health.probe_failed(SBC, "noam", 61.1, "again") == []  # no change, no event
    [up] = health.probe_answered(SBC, "noam", 121.1)
    assert (up.old, up.new) == (Health.INACTIVE, Health.ACTIVE)
