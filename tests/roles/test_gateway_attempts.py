"""The Direct Routing trunk failover rule [S4][S5] as a table: events in, decisions out."""

from __future__ import annotations

import pytest

from simulator.roles.gateway_attempts import (
    Action,
    AttemptState,
    Decision,
    FailoverCause,
    FailoverRule,
    GatewayAttempts,
)

DEFAULT = FailoverRule(frozenset({408, 503, 504}), 10)


def attempts(count: int = 2, rule: FailoverRule = DEFAULT) -> GatewayAttempts:
    machine = GatewayAttempts([(f"sbc{n}.contoso.com", rule) for n in range(1, count + 1)])
    assert machine.next_gateway(0.0) == "sbc1.contoso.com"
    return machine


def play(machine: GatewayAttempts, events: list[tuple[str, object, float]]) -> Decision:
    """Feed ("response", status, t) / ("timer", None, t) / ("unreachable", None, t); the last decision."""
    decision = Decision(Action.WAIT)
    for kind, status, t in events:
        if kind == "response":
            decision = machine.response(status, t)  # type: ignore[arg-type]
        elif kind == "timer":
            decision = machine.timer_fired(t)
        else:
            decision = machine.unreachable(t)
    return decision


def r(status: int, t: float = 1.0) -> tuple[str, object, float]:
    return ("response", status, t)


def timer(t: float) -> tuple[str, object, float]:
    return ("timer", None, t)


UNREACHABLE = ("unreachable", None, 0.5)
A = Action


@pytest.mark.parametrize("events, gateways, expect", [
    # a FailoverResponseCode before any provisional other than 100 passes the gateway over
    ([r(503)], 2, Decision(A.TRY_NEXT, status=503, cause=FailoverCause.FAILOVER_CODE)),
    ([r(100), r(408)], 2, Decision(A.TRY_NEXT, status=408, cause=FailoverCause.FAILOVER_CODE)),
    ([r(504)], 1, Decision(A.GIVE_UP, status=504, cause=FailoverCause.FAILOVER_CODE)),
    # after 180/183 no failover by code: the caller heard ringing
    ([r(180), r(503)], 2, Decision(A.RELAY_FINAL, status=503)),
    ([r(183), r(408)], 2, Decision(A.RELAY_FINAL, status=408)),
    # any other final response is the call's answer
    ([r(486)], 2, Decision(A.RELAY_FINAL, status=486)),
    ([r(404)], 2, Decision(A.RELAY_FINAL, status=404)),
    ([r(200)], 2, Decision(A.RELAY_FINAL, status=200)),
    ([r(180), r(200)], 2, Decision(A.RELAY_FINAL, status=200)),
    # provisional responses: 100 is hop-by-hop, the others reach the caller
    ([r(100)], 2, Decision(A.WAIT)),
    ([r(180)], 2, Decision(A.RELAY_PROVISIONAL, status=180)),
    ([r(180), r(183)], 2, Decision(A.RELAY_PROVISIONAL, status=183)),
    # FailoverTimeSeconds with no provisional other than 100: CANCEL and try the next gateway
    ([timer(10.0)], 2, Decision(A.TRY_NEXT, cancel=True, status=408, cause=FailoverCause.TIMER_EXPIRED)),
    ([r(100), timer(10.0)], 2, Decision(A.TRY_NEXT, cancel=True, status=408, cause=FailoverCause.TIMER_EXPIRED)),
    ([timer(10.0)], 1, Decision(A.GIVE_UP, cancel=True, status=408, cause=FailoverCause.TIMER_EXPIRED)),
    ([timer(9.999)], 2, Decision(A.WAIT)),  # early wake-up: not yet
    ([r(180), timer(10.0)], 2, Decision(A.WAIT)),  # ringing stopped the timer
    # a 2xx that crosses the CANCEL answers the call; the 487 to the CANCELled INVITE is no news
    ([timer(10.0), r(200, 10.1)], 2, Decision(A.RELAY_FINAL, status=200)),
    ([timer(10.0), r(487, 10.1)], 2, Decision(A.WAIT)),
    ([timer(10.0), r(180, 10.1)], 2, Decision(A.WAIT)),
    # a gateway that cannot be reached is passed over
    ([UNREACHABLE], 2, Decision(A.TRY_NEXT, cause=FailoverCause.UNREACHABLE)),
    ([UNREACHABLE], 1, Decision(A.GIVE_UP, cause=FailoverCause.UNREACHABLE)),
])
def test_failover_rule(events, gateways, expect):
    assert play(attempts(gateways), events) == expect


@pytest.mark.parametrize("codes, status, expect", [
    ({408}, 503, A.RELAY_FINAL),  # the codes are the gateway's own: setting them replaces the defaults
    ({408}, 408, A.TRY_NEXT),
    ({486}, 486, A.TRY_NEXT),
])
def test_failover_codes_are_the_gateways_own(codes, status, expect):
    assert play(attempts(rule=FailoverRule(frozenset(codes), 10)), [r(status)]).action is expect


def test_each_gateway_runs_its_own_timer_from_its_own_start():
    machine = GatewayAttempts([("a", FailoverRule({503}, 10)), ("b", FailoverRule({503}, 20))])
    assert machine.next_gateway(0.0) == "a" and machine.timer_deadline == 10.0
    assert machine.timer_fired(10.0).action is A.TRY_NEXT
    assert machine.timer_deadline is None  # no timer while the CANCEL is under way
    assert machine.next_gateway(10.0) == "b" and machine.timer_deadline == 30.0
    assert machine.remaining == ()
    assert machine.timer_fired(30.0) == Decision(A.GIVE_UP, cancel=True, status=408, cause=FailoverCause.TIMER_EXPIRED)
    assert machine.next_gateway(30.0) is None


def test_ringing_stops_the_timer_for_good():
    machine = attempts()
    machine.response(180, 1.0)
    assert machine.progressed and machine.timer_deadline is None
    assert machine.state is AttemptState.PROCEEDING


def test_gateways_are_tried_in_order_and_then_run_out():
    machine = attempts(3)
    assert machine.remaining == ("sbc2.contoso.com", "sbc3.contoso.com")
    assert machine.response(503, 1.0).action is A.TRY_NEXT
    assert machine.next_gateway(1.0) == "sbc2.contoso.com" and machine.gateway == "sbc2.contoso.com"
    assert machine.unreachable(2.0).action is A.TRY_NEXT
    assert machine.next_gateway(2.0) == "sbc3.contoso.com"
    assert machine.response(408, 3.0) == Decision(A.GIVE_UP, status=408, cause=FailoverCause.FAILOVER_CODE)
    assert machine.next_gateway(3.0) is None


def test_events_after_the_attempt_ended_change_nothing():
    machine = attempts()
    assert machine.response(486, 1.0).action is A.RELAY_FINAL
    assert machine.unreachable(2.0) == Decision(A.WAIT)
    assert machine.timer_fired(20.0) == Decision(A.WAIT)
