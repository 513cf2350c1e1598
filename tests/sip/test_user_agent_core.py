"""The UA core's rules, sans-I/O: messages and `now` in, actions out (no network, no clock)."""

import random

import pytest

from simulator.events import EventLog
from simulator.sip import Request, Response
from simulator.sip.builders import make_cancel, make_request, make_response
from simulator.sip.transaction import Send, TimerSettings
from simulator.sip.uas_checks import ENDPOINT
from simulator.sip.user_agent import AckReceived, AckTimeout, Cancelled, RequestReceived, UserAgentCore

PEER = ("192.0.2.10", 5060)


def core(**kw):
    log = EventLog(clock=lambda: 0.0)
    return UserAgentCore(random.Random(1), log=log.logger(node="ua"), **kw), log


def request(method, *, to_tag=None, branch="z9hG4bK1", max_forwards=70, cseq=1, transport="UDP"):
    to = "<sip:bob@192.0.2.20>" + (f";tag={to_tag}" if to_tag else "")
    return make_request(method, "sip:bob@192.0.2.20", from_="<sip:alice@192.0.2.10>;tag=a1", to=to,
                        call_id="c1", cseq=cseq, via=f"SIP/2.0/{transport} 192.0.2.10;branch={branch}",
                        max_forwards=max_forwards)


def sent(actions):
    return [a.message.status if isinstance(a.message, Response) else a.message.method
            for a in actions if isinstance(a, Send)]


def kinds(actions):
    return [type(a).__name__ for a in actions if not isinstance(a, Send)]


class Refusing:
    """A registered dialog that refuses every request with `status`, or takes it (None)."""

    def __init__(self, status):
        self.status = status

    def receive_request(self, request: Request):
        return self.status


def test_cancel_of_a_ringing_invite_is_200_then_487_and_tells_the_application():
    ua, _ = core()
    invite = request("INVITE")
    (received,) = [a for a in ua.receive(invite, PEER, 0.0) if isinstance(a, RequestReceived)]
    ua.send_response(received.transaction, make_response(invite, 180, to_tag="b1"), 0.0)
    actions = ua.receive(make_cancel(invite), PEER, 0.1)
    assert sent(actions) == [200, 487] and kinds(actions) == ["Cancelled"]
    (cancelled,) = [a for a in actions if isinstance(a, Cancelled)]
    assert cancelled.transaction is received.transaction and cancelled.response.to.tag == "b1"


@pytest.mark.parametrize(("answered", "expected"), [(None, [481]), (200, [200])],
                         ids=["no-such-invite", "invite-already-answered"])
def test_cancel_that_cannot_end_an_invite(answered, expected):
    ua, _ = core()
    invite = request("INVITE")
    if answered is not None:
        (received,) = [a for a in ua.receive(invite, PEER, 0.0) if isinstance(a, RequestReceived)]
        ua.send_response(received.transaction, make_response(invite, answered, to_tag="b1"), 0.0)
    actions = ua.receive(make_cancel(invite), PEER, 0.1)
    assert sent(actions) == expected and kinds(actions) == []


@pytest.mark.parametrize(("keeps_dialogs", "dialog", "expected_sent", "expected_kinds"), [
    (True, None, [481], []),                      # §12.2.2: no such dialog
    (False, None, [], ["RequestReceived"]),       # the application keeps its dialogs itself
    (False, Refusing(500), [500], []),            # the dialog refuses (a lower CSeq)
    (True, Refusing(None), [], ["RequestReceived"]),
], ids=["unknown-dialog-481", "unknown-dialog-to-application", "dialog-refuses", "dialog-takes-it"])
def test_a_request_within_a_dialog(keeps_dialogs, dialog, expected_sent, expected_kinds):
    ua, _ = core(keeps_dialogs=keeps_dialogs)
    if dialog is not None:
        ua.dialogs[("c1", "b1", "a1")] = dialog
    actions = ua.receive(request("BYE", to_tag="b1"), PEER, 0.0)
    assert sent(actions) == expected_sent and kinds(actions) == expected_kinds


@pytest.mark.parametrize(("relays_calls", "max_forwards", "expected_sent"), [
    (True, 0, [100, 483]), (True, 1, [100]), (False, 0, [100]),
])
def test_a_relay_answers_an_invite_out_of_hops_with_483(relays_calls, max_forwards, expected_sent):
    ua, log = core(relays_calls=relays_calls)
    actions = ua.receive(request("INVITE", max_forwards=max_forwards), PEER, 0.0)
    assert sent(actions) == expected_sent
    assert bool(log.select("sip.too_many_hops")) == (expected_sent[-1] == 483)


@pytest.mark.parametrize(("method", "policy", "status", "allow"), [
    ("OPTIONS", None, 200, []),
    ("OPTIONS", ENDPOINT, 200, ["ACK", "BYE", "CANCEL", "INVITE", "OPTIONS"]),
    ("INFO", None, 501, []),
])
def test_default_response(method, policy, status, allow):
    ua, _ = core(policy=policy)
    response = ua.default_response(request(method), to_tag="b1")
    assert response.status == status and response.headers.get_all("Allow") == allow


def test_a_request_without_via_is_dropped_with_an_event():
    ua, log = core()
    bare = request("OPTIONS")
    bare.headers.pop_first("Via")
    assert ua.receive(bare, PEER, 0.0) == []
    assert log.select("sip.request.unanswerable")


def _invite_answered(ua):
    """An INVITE of ours answered 2xx (the Accepted client transaction) and ACKed."""
    invite = request("INVITE")
    tx, _ = ua.send_request(invite, PEER, 0.0)
    ok = make_response(invite, 200, to_tag="b1", contact="<sip:bob@192.0.2.20>")
    first = ua.receive(ok, PEER, 0.1)
    return invite, ok, first


def test_every_2xx_retransmission_gets_the_same_ack_and_the_application_one_final():
    ua, _ = core()
    invite, ok, first = _invite_answered(ua)
    assert kinds(first) == ["Deliver"]
    ack = request("ACK", to_tag="b1")
    assert sent(ua.send_ack(ack, PEER, 0.1)) == ["ACK"]
    again = ua.receive(ok, PEER, 0.6)  # still in Accepted
    assert [a.message for a in again] == [ack]
    later = ua.receive(ok, PEER, 20.0)  # after Timer M: no transaction, the core still ACKs
    assert [a.message for a in later] == [ack]
    ua.handle_timer(40.0)  # 64*T1 after the ACK: forgotten
    assert ua.receive(ok, PEER, 40.0) == [] and ua.next_deadline() is None


@pytest.mark.parametrize("status", [200, 180, 404])
def test_a_response_nobody_waits_for_is_a_stray_event(status):
    ua, log = core()
    response = make_response(request("INVITE"), status, to_tag="b1")
    assert ua.receive(response, PEER, 0.0) == []
    assert [e["status"] for e in log.select("sip.response.stray")] == [status]


@pytest.mark.parametrize(("transport", "retransmitted_at"), [
    ("UDP", [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]),  # T1 doubling to T2
    ("TCP", []),
])
def test_a_2xx_is_retransmitted_until_64_t1_then_ack_timeout(transport, retransmitted_at):
    ua, log = core(settings=TimerSettings())
    invite = request("INVITE", transport=transport)
    (received,) = [a for a in ua.receive(invite, PEER, 0.0, transport) if isinstance(a, RequestReceived)]
    ua.send_2xx(received.transaction, make_response(invite, 200, to_tag="b1"), 0.0)
    times, timeouts = [], []
    while (at := ua.next_deadline()) is not None and at <= 40:
        actions = ua.handle_timer(at)
        times += [at for a in actions if isinstance(a, Send) and a.message.status == 200]
        timeouts += [at for a in actions if isinstance(a, AckTimeout)]
    assert [round(t, 3) for t in times] == retransmitted_at
    assert timeouts == [32.0] and log.select("sip.dialog.no_ack")


def test_the_ack_ends_the_2xx_retransmissions():
    ua, _ = core()
    invite = request("INVITE")
    (received,) = [a for a in ua.receive(invite, PEER, 0.0) if isinstance(a, RequestReceived)]
    ua.send_2xx(received.transaction, make_response(invite, 200, to_tag="b1"), 0.0)
    actions = ua.receive(request("ACK", to_tag="b1"), PEER, 0.2)
    assert kinds(actions) == ["AckReceived"] and ua.awaiting_ack == {}
    assert isinstance(actions[0], AckReceived)
