"""INVITE client transaction: RFC 3261 Figure 5 with RFC 6026's Accepted state."""

import pytest

from simulator.sip.transaction import (
    Deliver,
    Send,
    Terminated,
    Timeout,
    TimerSettings,
    TransactionLayer,
    TransportError,
)

from .sipmessages import request, response, run_timers, send_times


def start(transport="UDP", settings=None):
    layer = TransactionLayer(settings or TimerSettings())
    invite = request("INVITE", transport=transport)
    tx, actions = layer.send_request(invite, "server:5060", now=0.0)
    assert [type(a) for a in actions] == [Send]
    assert actions[0].message is invite and actions[0].destination == "server:5060"
    assert tx.state == "Calling"
    return layer, tx, invite


def test_udp_retransmits_at_t1_doubling_until_timer_b_at_64_t1():
    layer, tx, invite = start("UDP")
    fired = run_timers(layer, until=100.0)
    # Timer A: 0.5, 1, 2, 4, 8, 16 s apart (§17.1.1.2; no T2 cap for INVITE).
    assert send_times(fired) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(a.message is invite for _, a in fired if isinstance(a, Send))
    timeouts = [(t, a.timer) for t, a in fired if isinstance(a, Timeout)]
    assert timeouts == [(32.0, "B")]
    assert tx.state == "Terminated"
    assert list(layer.transactions()) == []


def test_timer_b_follows_t1():
    layer, tx, _ = start("UDP", TimerSettings(t1=0.1))
    fired = run_timers(layer, until=100.0)
    assert [round(t, 6) for t, a in fired if isinstance(a, Timeout)] == [6.4]


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
def test_reliable_transport_never_retransmits(transport):
    layer, tx, _ = start(transport)
    fired = run_timers(layer, until=100.0)
    assert send_times(fired) == []
    assert [(t, type(a)) for t, a in fired] == [(32.0, Timeout), (32.0, Terminated)]


def test_provisional_moves_to_proceeding_and_stops_retransmissions():
    layer, tx, invite = start("UDP")
    ringing = response(invite, 180)
    actions = layer.receive(ringing, "server:5060", now=0.2)
    assert [type(a) for a in actions] == [Deliver] and actions[0].message is ringing
    assert tx.state == "Proceeding"
    assert layer.next_deadline() is None
    assert layer.receive(response(invite, 183), "server:5060", now=1.0)[0].message.status == 183


def test_failure_response_is_acked_passed_up_and_completed_until_timer_d():
    layer, tx, invite = start("UDP")
    busy = response(invite, 486)
    actions = layer.receive(busy, "server:5060", now=1.0)
    assert [type(a) for a in actions] == [Send, Deliver]
    ack = actions[0].message
    assert tx.state == "Completed"
    # §17.1.1.3: same Request-URI, Call-ID, From, CSeq number; To from the response; one Via = top Via.
    assert ack.method == "ACK" and ack.uri_text == invite.uri_text
    assert ack.cseq.seq == invite.cseq.seq and ack.cseq.method == "ACK"
    assert ack.to.tag == "totag" and ack.from_.tag == invite.from_.tag
    assert ack.call_id == invite.call_id
    assert [v.branch for v in ack.vias] == [invite.top_via.branch]
    # A retransmitted 486 is ACKed again but not passed up (§17.1.1.2).
    again = layer.receive(busy, "server:5060", now=2.0)
    assert [type(a) for a in again] == [Send] and again[0].message.method == "ACK"
    # Timer D: 32 s over UDP.
    assert layer.next_deadline() == pytest.approx(33.0)
    fired = run_timers(layer, until=100.0)
    assert [(t, type(a)) for t, a in fired] == [(33.0, Terminated)]


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
def test_failure_over_reliable_transport_terminates_at_once(transport):
    layer, tx, invite = start(transport)
    actions = layer.receive(response(invite, 503), "server:5061", now=1.0)
    assert [type(a) for a in actions] == [Send, Deliver, Terminated]
    assert tx.state == "Terminated" and layer.next_deadline() is None


def test_2xx_goes_to_accepted_and_every_retransmission_reaches_the_tu():
    layer, tx, invite = start("UDP")
    layer.receive(response(invite, 180), "server:5060", now=0.1)
    ok = response(invite, 200)
    actions = layer.receive(ok, "server:5060", now=2.0)
    assert [type(a) for a in actions] == [Deliver]  # no ACK: the TU ACKs a 2xx (§13.2.2.4)
    assert tx.state == "Accepted"
    assert [type(a) for a in layer.receive(ok, "server:5060", now=2.5)] == [Deliver]
    # Timer M = 64*T1 (RFC 6026 §8.4).
    fired = run_timers(layer, until=100.0)
    assert [(t, type(a)) for t, a in fired] == [(34.0, Terminated)]
    # After that a 2xx retransmission is a stray: the core gets it (RFC 6026 §8.4).
    assert type(layer.receive(ok, "server:5060", now=40.0)[0]).__name__ == "NoMatch"


def test_transport_error_informs_the_tu():
    layer, tx, _ = start("UDP")
    actions = layer.transport_error(tx, now=0.1)
    assert [type(a) for a in actions] == [TransportError, Terminated]
    assert layer.next_deadline() is None
