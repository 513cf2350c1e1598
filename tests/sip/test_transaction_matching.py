"""Matching messages to transactions: RFC 3261 §17.1.3 (client) and §17.2.3 (server)."""

import pytest

from simulator.sip.builders import make_response
from simulator.sip.transaction import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    Deliver,
    TransactionLayer,
    TransactionStateError,
    ack_for_non_2xx,
    server_key,
)

from .sipmessages import request, response


def kinds(actions):
    return [type(a).__name__ for a in actions]


# --- client side -------------------------------------------------------------------------


def test_response_matches_by_branch_and_cseq_method():
    layer = TransactionLayer()
    invite = request("INVITE", branch="z9hG4bKinv")
    cancel = request("CANCEL", branch="z9hG4bKinv")  # §9.1: CANCEL shares the INVITE's branch
    invite_tx, _ = layer.send_request(invite, "peer", now=0)
    cancel_tx, _ = layer.send_request(cancel, "peer", now=0)
    actions = layer.receive(response(cancel, 200), "peer", now=0.1)
    assert kinds(actions) == ["Deliver"] and actions[0].transaction is cancel_tx
    actions = layer.receive(response(invite, 487), "peer", now=0.2)
    assert actions[1].transaction is invite_tx and isinstance(actions[1], Deliver)


@pytest.mark.parametrize(
    ("method", "branch"),
    [("OPTIONS", "z9hG4bKother"), ("REGISTER", "z9hG4bKmine")],
    ids=["different branch", "different CSeq method"],
)
def test_response_of_another_transaction_is_no_match(method, branch):
    layer = TransactionLayer()
    layer.send_request(request("OPTIONS", branch="z9hG4bKmine"), "peer", now=0)
    stray = response(request(method, branch=branch), 200)
    actions = layer.receive(stray, "peer", now=0.1)
    assert kinds(actions) == ["NoMatch"] and actions[0].message is stray


def test_two_requests_with_one_branch_are_refused():
    layer = TransactionLayer()
    layer.send_request(request("OPTIONS"), "peer", now=0)
    with pytest.raises(TransactionStateError, match="new branch"):
        layer.send_request(request("OPTIONS"), "peer", now=0)


def test_ack_is_never_a_client_transaction():
    with pytest.raises(TransactionStateError):
        TransactionLayer().send_request(request("ACK"), "peer", now=0)


# --- server side, RFC 3261 magic cookie ----------------------------------------------------


@pytest.mark.parametrize(
    ("retransmission", "matches"),
    [
        (dict(), True),
        (dict(sent_by="other.example.com:5060"), False),
        (dict(sent_by="client.example.com:5070"), False),
        (dict(branch="z9hG4bKdifferent"), False),
        (dict(cseq=99), True),  # §17.2.3: branch, sent-by and method only
    ],
    ids=["same", "other sent-by host", "other sent-by port", "other branch", "other CSeq number"],
)
def test_server_matching_uses_branch_sent_by_and_method(retransmission, matches):
    layer = TransactionLayer()
    tx, _ = layer.create_server(request("OPTIONS"), "client", now=0)
    assert (layer.find_server(request("OPTIONS", **retransmission)) is tx) is matches


def test_ack_for_a_failure_matches_the_invite_transaction():
    layer = TransactionLayer()
    invite = request("INVITE")
    tx, _ = layer.create_server(invite, "client", now=0)
    busy = make_response(invite, 486, to_tag="uas")
    layer.send_response(tx, busy, now=0.1)
    assert layer.find_server(ack_for_non_2xx(invite, busy)) is tx


def test_ack_for_2xx_with_its_own_branch_is_no_match_for_the_core():
    layer = TransactionLayer()
    invite = request("INVITE")
    tx, _ = layer.create_server(invite, "client", now=0)
    layer.send_response(tx, make_response(invite, 200, to_tag="uas"), now=0.1)
    ack = request("ACK", branch="z9hG4bKnewbranch", to_tag="uas")
    assert kinds(layer.receive(ack, "client", now=0.2)) == ["NoMatch"]


def test_cancel_is_its_own_transaction_but_finds_the_invite():
    layer = TransactionLayer()
    tx, _ = layer.create_server(request("INVITE"), "client", now=0)
    cancel = request("CANCEL")
    assert kinds(layer.receive(cancel, "client", now=0.1)) == ["NoMatch"]
    assert layer.find_cancel_target(cancel) is tx
    assert layer.find_cancel_target(request("CANCEL", branch="z9hG4bKelse")) is None


def test_ack_does_not_match_a_non_invite_transaction():
    layer = TransactionLayer()
    layer.create_server(request("OPTIONS", branch="z9hG4bKx"), "client", now=0)
    assert layer.find_server(request("ACK", branch="z9hG4bKx")) is None


# --- server side, RFC 2543 fallback -----------------------------------------------------------


@pytest.mark.parametrize("branch", [None, "abc123", "z9hG4bK"], ids=["no branch", "no cookie", "bare cookie"])
def test_requests_without_a_usable_branch_use_rfc2543_matching(branch):
    assert server_key(request("INVITE", branch=branch)) is None


@pytest.mark.parametrize(
    ("retransmission", "matches"),
    [
        (dict(), True),
        (dict(uri="sip:carol@server.example.com"), False),
        (dict(from_tag="otherfrom"), False),
        (dict(call_id="other@client.example.com"), False),
        (dict(cseq=2), False),
        (dict(sent_by="elsewhere.example.com"), False),
        (dict(to_tag="sometag"), False),
    ],
    ids=["same", "Request-URI", "From tag", "Call-ID", "CSeq", "top Via", "To tag"],
)
def test_rfc2543_retransmission_matches_on_all_identifying_fields(retransmission, matches):
    layer = TransactionLayer()
    tx, _ = layer.create_server(request("INVITE", branch=None), "client", now=0)
    assert (layer.find_server(request("INVITE", branch=None, **retransmission)) is tx) is matches


@pytest.mark.parametrize(("ack_to_tag", "matches"), [("uas", True), ("wrong", False)])
def test_rfc2543_ack_matches_the_to_tag_of_the_response_sent(ack_to_tag, matches):
    layer = TransactionLayer()
    invite = request("INVITE", branch=None)
    tx, _ = layer.create_server(invite, "client", now=0)
    layer.send_response(tx, make_response(invite, 404, to_tag="uas"), now=0.1)
    ack = request("ACK", branch=None, cseq_method="ACK", to_tag=ack_to_tag)
    assert (layer.find_server(ack) is tx) is matches
    if matches:
        assert layer.receive(ack, "client", now=0.2) == [] and tx.state == "Confirmed"


def test_rfc2543_transaction_leaves_the_layer_when_terminated():
    layer = TransactionLayer()
    req = request("OPTIONS", branch=None, transport="TCP")
    tx, _ = layer.create_server(req, "client", now=0)
    assert kinds(layer.send_response(tx, make_response(req, 200, to_tag="x"), now=0.1)) == ["Send", "Terminated"]
    assert list(layer.transactions()) == []
    assert kinds(layer.receive(req, "client", now=0.2)) == ["NoMatch"]


# --- the layer ----------------------------------------------------------------------------------


def test_next_deadline_is_the_earliest_of_all_transactions():
    layer = TransactionLayer()
    assert layer.next_deadline() is None
    layer.send_request(request("OPTIONS", branch="z9hG4bK1"), "peer", now=0.0)  # E at 0.5
    layer.send_request(request("OPTIONS", branch="z9hG4bK2"), "peer", now=0.2)  # E at 0.7
    assert layer.next_deadline() == 0.5
    sent = layer.handle_timer(0.5)
    assert [a.message.top_via.branch for a in sent] == ["z9hG4bK1"]
    assert layer.next_deadline() == pytest.approx(0.7)


# --- the tables read as the RFC figures -----------------------------------------------------------

FIGURES = [
    # (table, state, event, new state) — one row per arrow of Figures 5-8 and RFC 6026.
    (INVITE_CLIENT, "Calling", "timer A", "Calling"),
    (INVITE_CLIENT, "Calling", "timer B", "Terminated"),
    (INVITE_CLIENT, "Calling", "1xx", "Proceeding"),
    (INVITE_CLIENT, "Calling", "2xx", "Accepted"),
    (INVITE_CLIENT, "Calling", "300-699", "Completed"),
    (INVITE_CLIENT, "Proceeding", "1xx", "Proceeding"),
    (INVITE_CLIENT, "Proceeding", "2xx", "Accepted"),
    (INVITE_CLIENT, "Proceeding", "300-699", "Completed"),
    (INVITE_CLIENT, "Completed", "300-699", "Completed"),
    (INVITE_CLIENT, "Completed", "timer D", "Terminated"),
    (INVITE_CLIENT, "Accepted", "2xx", "Accepted"),
    (INVITE_CLIENT, "Accepted", "timer M", "Terminated"),
    (NON_INVITE_CLIENT, "Trying", "timer E", "Trying"),
    (NON_INVITE_CLIENT, "Trying", "timer F", "Terminated"),
    (NON_INVITE_CLIENT, "Trying", "1xx", "Proceeding"),
    (NON_INVITE_CLIENT, "Trying", "2xx", "Completed"),
    (NON_INVITE_CLIENT, "Proceeding", "timer E", "Proceeding"),
    (NON_INVITE_CLIENT, "Proceeding", "300-699", "Completed"),
    (NON_INVITE_CLIENT, "Completed", "timer K", "Terminated"),
    (INVITE_SERVER, "Proceeding", "request", "Proceeding"),
    (INVITE_SERVER, "Proceeding", "TU 1xx", "Proceeding"),
    (INVITE_SERVER, "Proceeding", "TU 2xx", "Accepted"),
    (INVITE_SERVER, "Proceeding", "TU 300-699", "Completed"),
    (INVITE_SERVER, "Completed", "timer G", "Completed"),
    (INVITE_SERVER, "Completed", "ACK", "Confirmed"),
    (INVITE_SERVER, "Completed", "timer H", "Terminated"),
    (INVITE_SERVER, "Confirmed", "timer I", "Terminated"),
    (INVITE_SERVER, "Accepted", "ACK", "Accepted"),
    (INVITE_SERVER, "Accepted", "timer L", "Terminated"),
    (NON_INVITE_SERVER, "Trying", "TU 1xx", "Proceeding"),
    (NON_INVITE_SERVER, "Trying", "TU 2xx", "Completed"),
    (NON_INVITE_SERVER, "Proceeding", "request", "Proceeding"),
    (NON_INVITE_SERVER, "Completed", "request", "Completed"),
    (NON_INVITE_SERVER, "Completed", "timer J", "Terminated"),
]


@pytest.mark.parametrize(("table", "state", "event", "new_state"), FIGURES)
def test_tables_have_every_arrow_of_the_rfc_figures(table, state, event, new_state):
    assert table[(state, event)][0] == new_state
