"""Non-INVITE client transaction: RFC 3261 Figure 6."""

import pytest

from simulator.sip.transaction import Deliver, Send, Terminated, Timeout, TimerSettings, TransactionLayer

from .sipmessages import request, response, run_timers, send_times


def start(transport="UDP", method="OPTIONS"):
    layer = TransactionLayer(TimerSettings())
    req = request(method, transport=transport)
    tx, actions = layer.send_request(req, "peer", now=0.0)
    assert [type(a) for a in actions] == [Send]
    assert tx.state == "Trying"
    return layer, tx, req


def test_udp_retransmits_doubling_up_to_t2_until_timer_f():
    layer, tx, _ = start("UDP")
    fired = run_timers(layer, until=100.0)
    # Timer E: 0.5, 1, 2, 4, then capped at T2 = 4 s (§17.1.2.2); F at 64*T1 = 32 s.
    assert send_times(fired) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, a.timer) for t, a in fired if isinstance(a, Timeout)] == [(32.0, "F")]
    assert tx.state == "Terminated"


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
def test_reliable_transport_never_retransmits(transport):
    layer, tx, _ = start(transport)
    fired = run_timers(layer, until=100.0)
    assert [(t, type(a)) for t, a in fired] == [(32.0, Timeout), (32.0, Terminated)]


def test_proceeding_retransmits_every_t2():
    layer, tx, req = start("UDP", method="REGISTER")
    assert [type(a) for a in layer.receive(response(req, 100), "peer", now=0.2)] == [Deliver]
    assert tx.state == "Proceeding"
    fired = run_timers(layer, until=20.0)
    # The pending Timer E (0.5 s) still fires, then it is reset to T2 each time (§17.1.2.2).
    assert send_times(fired) == [0.5, 4.5, 8.5, 12.5, 16.5]


@pytest.mark.parametrize("status", [200, 404, 503])
def test_final_response_is_passed_up_then_timer_k_absorbs_retransmissions(status):
    layer, tx, req = start("UDP")
    final = response(req, status)
    assert [type(a) for a in layer.receive(final, "peer", now=1.0)] == [Deliver]
    assert tx.state == "Completed"
    assert layer.receive(final, "peer", now=2.0) == []  # absorbed in Completed
    fired = run_timers(layer, until=100.0)
    assert [(t, type(a)) for t, a in fired] == [(6.0, Terminated)]  # Timer K = T4


def test_final_response_over_tcp_terminates_at_once():
    layer, tx, req = start("TCP")
    actions = layer.receive(response(req, 200), "peer", now=1.0)
    assert [type(a) for a in actions] == [Deliver, Terminated]
