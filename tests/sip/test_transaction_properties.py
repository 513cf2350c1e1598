"""Whatever the network and the TU do, a transaction ends, and says so exactly once."""

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.sip.builders import make_response
from simulator.sip.transaction import (
    Deliver,
    Send,
    Terminated,
    TransactionLayer,
    TransactionStateError,
)

from .sipmessages import request, response

REQUESTS = {(m, t): request(m, transport=t) for m in ("INVITE", "OPTIONS") for t in ("UDP", "TCP")}
RESPONSES = {key: {s: response(req, s) for s in (100, 180, 200, 486)} for key, req in REQUESTS.items()}
LONGEST_LIFE = 64 * 0.5 + 32.0  # Timer B/F/H/L/M, then at most Timer D after it

network_events = st.lists(
    st.tuples(st.sampled_from([100, 180, 200, 486, "timer", "transport error"]),
              st.floats(min_value=0, max_value=8, allow_nan=False)),
    max_size=25,
)


def finish(layer, now, seen):
    while (deadline := layer.next_deadline()) is not None:
        assert deadline <= now + LONGEST_LIFE
        now = deadline
        seen += layer.handle_timer(now)
    return seen


@settings(max_examples=150, deadline=None)
@given(method=st.sampled_from(["INVITE", "OPTIONS"]), transport=st.sampled_from(["UDP", "TCP"]),
       events=network_events)
def test_client_transaction_terminates_once_and_passes_up_one_failure_at_most(method, transport, events):
    layer = TransactionLayer()
    req = REQUESTS[(method, transport)]
    tx, seen = layer.send_request(req, "peer", now=0.0)
    now = 0.0
    for event, delay in events:
        now += delay
        if event == "timer":
            seen += layer.handle_timer(now)
        elif event == "transport error":
            seen += layer.transport_error(tx, now)
        else:
            seen += layer.receive(RESPONSES[(method, transport)][event], "peer", now)
    seen = finish(layer, now, seen)
    if tx.state == "Proceeding" and method == "INVITE":
        # Figure 5: Timer B only acts in Calling; after a 1xx the TU (CANCEL) ends the wait.
        assert not any(isinstance(a, Terminated) for a in seen)
        return
    assert tx.state == "Terminated" and list(layer.transactions()) == []
    assert [type(a) for a in seen].count(Terminated) == 1
    after_end = seen[[type(a) for a in seen].index(Terminated) + 1:]
    assert all(type(a).__name__ == "NoMatch" for a in after_end)
    finals = [a.message.status for a in seen if isinstance(a, Deliver) and a.message.status >= 300]
    assert len(finals) <= 1  # §17.1.1.2: retransmitted failures are absorbed
    assert all(a.message.method in (method, "ACK") for a in seen if isinstance(a, Send))
    if transport == "TCP":
        assert [a.message for a in seen if isinstance(a, Send)].count(req) == 1


@settings(max_examples=150, deadline=None)
@given(method=st.sampled_from(["INVITE", "OPTIONS"]), transport=st.sampled_from(["UDP", "TCP"]),
       events=st.lists(st.tuples(st.sampled_from([180, 200, 486, "retransmission", "ACK", "timer"]),
                                 st.floats(min_value=0, max_value=8, allow_nan=False)), max_size=25))
def test_server_transaction_terminates_once_and_never_changes_its_final_answer(method, transport, events):
    layer = TransactionLayer()
    req = REQUESTS[(method, transport)]
    tx, seen = layer.create_server(req, "client", now=0.0)
    now = 0.0
    ack = request("ACK", cseq_method="ACK", transport=transport, to_tag="uas")
    for event, delay in events:
        now += delay
        if event == "timer":
            seen += layer.handle_timer(now)
        elif event == "retransmission":
            seen += layer.receive(req, "client", now)
        elif event == "ACK":
            seen += layer.receive(ack, "client", now)
        elif not tx.terminated:
            try:
                seen += layer.send_response(tx, make_response(req, event, to_tag="uas"), now)
            except TransactionStateError:
                assert tx.state in ("Completed", "Confirmed", "Accepted")  # a final one went out
    seen = finish(layer, now, seen)
    # Only a transaction still waiting for its TU's final response may outlive its timers.
    assert tx.terminated or tx.last_response is None or tx.last_response.status < 200
    finals = {a.message.status for a in seen if isinstance(a, Send) and a.message.status >= 200}
    assert len(finals) <= 1
    assert [type(a) for a in seen].count(Terminated) == (1 if tx.terminated else 0)
