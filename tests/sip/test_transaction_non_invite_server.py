"""Non-INVITE server transaction: RFC 3261 Figure 8."""

import pytest

from simulator.sip.builders import make_response
from simulator.sip.transaction import Send, Terminated, TimerSettings, TransactionLayer

from .sipmessages import request, run_timers


def start(transport="UDP"):
    layer = TransactionLayer(TimerSettings())
    req = request("OPTIONS", transport=transport)
    tx, actions = layer.create_server(req, "client", now=0.0)
    assert actions == [] and tx.state == "Trying"  # no automatic 100 outside INVITE
    return layer, tx, req


def test_retransmission_in_trying_is_absorbed():
    layer, tx, req = start()
    assert layer.receive(req, "client", now=0.5) == []


def test_retransmission_gets_the_last_response_again():
    layer, tx, req = start()
    layer.send_response(tx, make_response(req, 100), now=0.1)
    assert tx.state == "Proceeding"
    assert [a.message.status for a in layer.receive(req, "client", now=0.5)] == [100]
    ok = make_response(req, 200, to_tag="uas")
    assert [type(a) for a in layer.send_response(tx, ok, now=1.0)] == [Send]
    assert tx.state == "Completed"
    assert [a.message.status for a in layer.receive(req, "client", now=1.5)] == [200]


def test_timer_j_is_64_t1_over_udp():
    layer, tx, req = start("UDP")
    layer.send_response(tx, make_response(req, 200, to_tag="uas"), now=1.0)
    fired = run_timers(layer, until=100.0)
    assert [(t, type(a)) for t, a in fired] == [(33.0, Terminated)]


@pytest.mark.parametrize("transport", ["TCP", "TLS"])
def test_timer_j_is_zero_over_reliable_transport(transport):
    layer, tx, req = start(transport)
    actions = layer.send_response(tx, make_response(req, 200, to_tag="uas"), now=1.0)
    assert [type(a) for a in actions] == [Send, Terminated]


def test_later_final_responses_from_the_tu_are_discarded():
    layer, tx, req = start()
    layer.send_response(tx, make_response(req, 200, to_tag="uas"), now=1.0)
    assert layer.send_response(tx, make_response(req, 500, to_tag="uas"), now=1.1) == []
    assert [a.message.status for a in layer.receive(req, "client", now=1.5)] == [200]
