"""INVITE server transaction: RFC 3261 Figure 7 with RFC 6026's Accepted state."""

import pytest

from simulator.sip.builders import make_response
from simulator.sip.transaction import (
    Deliver,
    NoMatch,
    Send,
    Terminated,
    Timeout,
    TimerSettings,
    TransactionLayer,
    TransactionStateError,
)

from .sipmessages import request, run_timers, send_times


def start(transport="UDP"):
    layer = TransactionLayer(TimerSettings())
    invite = request("INVITE", transport=transport)
    assert [type(a) for a in layer.receive(invite, "client", now=0.0)] == [NoMatch]
    tx, actions = layer.create_server(invite, "client", now=0.0)
    # §17.2.1: 100 Trying at once.
    assert [(type(a), a.message.status) for a in actions] == [(Send, 100)]
    assert actions[0].destination == "client"
    assert tx.state == "Proceeding"
    return layer, tx, invite


def ack_for(invite, response):
    """The ACK a UAC sends for a non-2xx: same branch as the INVITE (§17.1.1.3)."""
    from simulator.sip.transaction import ack_for_non_2xx

    return ack_for_non_2xx(invite, response)


def test_retransmitted_invite_gets_the_last_provisional_again():
    layer, tx, invite = start()
    assert [a.message.status for a in layer.receive(invite, "client", now=0.3)] == [100]
    ringing = make_response(invite, 180, to_tag="uas")
    assert [a.message.status for a in layer.send_response(tx, ringing, now=0.4)] == [180]
    assert [a.message.status for a in layer.receive(invite, "client", now=0.6)] == [180]
    assert tx.state == "Proceeding"


def test_failure_is_retransmitted_by_timer_g_until_timer_h():
    layer, tx, invite = start("UDP")
    busy = make_response(invite, 486, to_tag="uas")
    assert [type(a) for a in layer.send_response(tx, busy, now=1.0)] == [Send]
    assert tx.state == "Completed"
    fired = run_timers(layer, until=100.0)
    # Timer G: T1 doubling, capped at T2 (§17.2.1); Timer H at 64*T1 after the final response.
    assert send_times(fired) == [1.5, 2.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5, 32.5]
    assert [(t, a.timer) for t, a in fired if isinstance(a, Timeout)] == [(33.0, "H")]
    assert tx.state == "Terminated"


def test_ack_confirms_and_timer_i_absorbs_more_acks():
    layer, tx, invite = start("UDP")
    busy = make_response(invite, 486, to_tag="uas")
    layer.send_response(tx, busy, now=1.0)
    ack = ack_for(invite, busy)
    assert layer.receive(ack, "client", now=1.2) == []  # not passed up (§17.2.1)
    assert tx.state == "Confirmed"
    assert layer.receive(ack, "client", now=1.3) == []
    assert layer.receive(invite, "client", now=1.4) == []  # absorbed in Confirmed
    fired = run_timers(layer, until=100.0)
    assert [(t, type(a)) for t, a in fired] == [(6.2, Terminated)]  # Timer I = T4


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
def test_reliable_transport_no_retransmission_and_ack_terminates(transport):
    layer, tx, invite = start(transport)
    busy = make_response(invite, 486, to_tag="uas")
    layer.send_response(tx, busy, now=1.0)
    assert layer.next_deadline() == pytest.approx(33.0)  # only Timer H
    assert [type(a) for a in layer.receive(ack_for(invite, busy), "client", now=1.1)] == [Terminated]


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
def test_reliable_transport_still_times_out_without_ack(transport):
    layer, tx, invite = start(transport)
    layer.send_response(tx, make_response(invite, 486, to_tag="uas"), now=1.0)
    fired = run_timers(layer, until=100.0)
    assert send_times(fired) == []
    assert [(t, type(a)) for t, a in fired] == [(33.0, Timeout), (33.0, Terminated)]


def test_2xx_moves_to_accepted_where_invites_are_absorbed_and_acks_passed_up():
    layer, tx, invite = start("UDP")
    ok = make_response(invite, 200, to_tag="uas", contact="<sip:bob@192.0.2.2>")
    assert [a.message.status for a in layer.send_response(tx, ok, now=1.0)] == [200]
    assert tx.state == "Accepted"
    assert layer.receive(invite, "client", now=1.2) == []  # RFC 6026 §7.1: absorbed
    # The TU retransmits its 2xx through the transaction (§13.3.1.4, RFC 6026 §7.1).
    assert [a.message.status for a in layer.send_response(tx, ok, now=1.5)] == [200]
    # An ACK for the 2xx that matches (same branch, as RFC 2543 UAs send) goes to the TU.
    ack = request("ACK", cseq_method="ACK", to_tag="uas")
    assert [type(a) for a in layer.receive(ack, "client", now=1.6)] == [Deliver]
    fired = run_timers(layer, until=100.0)
    assert [(t, type(a)) for t, a in fired] == [(33.0, Terminated)]  # Timer L = 64*T1


def test_tu_cannot_send_a_provisional_after_a_final_response():
    layer, tx, invite = start()
    layer.send_response(tx, make_response(invite, 486, to_tag="uas"), now=1.0)
    with pytest.raises(TransactionStateError, match="1xx"):
        layer.send_response(tx, make_response(invite, 180, to_tag="uas"), now=1.1)


def test_create_server_without_trying_sends_nothing():
    layer = TransactionLayer()
    tx, actions = layer.create_server(request("INVITE"), "client", now=0.0, send_trying=False)
    assert actions == [] and tx.state == "Proceeding"
