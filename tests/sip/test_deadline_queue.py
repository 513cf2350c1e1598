"""DeadlineQueue: the next deadline of many timed things, and the layer's timers kept in one."""

from __future__ import annotations

import pytest

from simulator.sip import parse_message
from simulator.sip.transaction import DeadlineQueue, TimerSettings, TransactionLayer


def queue_of(deadlines: dict[str, float | None]) -> DeadlineQueue[str]:
    queue: DeadlineQueue[str] = DeadlineQueue(deadlines.get)
    for key in deadlines:
        queue.schedule(key)
    return queue


@pytest.mark.parametrize(("deadlines", "changes", "next_deadline"), [
    ({"a": 3.0, "b": 1.0}, {}, 1.0),
    ({"a": 3.0, "b": 1.0}, {"b": None}, 3.0),          # b's timer stopped: its entry is dropped
    ({"a": 3.0, "b": 1.0}, {"b": 5.0}, 3.0),           # b moved later
    ({"a": 3.0, "b": 1.0}, {"a": 0.5}, 0.5),           # a moved earlier
    ({"a": None}, {}, None),
    ({}, {}, None),
])
def test_the_next_deadline_follows_every_change_once_it_is_scheduled(
        deadlines: dict[str, float | None], changes: dict[str, float | None], next_deadline: float | None) -> None:
    queue = queue_of(deadlines)
    deadlines.update(changes)
    for key in changes:
        queue.schedule(key)
    assert queue.next_deadline() == next_deadline


def test_due_keys_leave_earliest_first_ties_in_the_order_queued_and_each_once() -> None:
    deadlines: dict[str, float | None] = {"late": 9.0, "x": 2.0, "y": 2.0, "early": 1.0}
    queue = queue_of(deadlines)
    queue.schedule("x")  # unchanged: no second entry
    assert queue.pop_due(2.0) == ["early", "x", "y"]
    assert queue.pop_due(2.0) == []
    assert queue.next_deadline() == 9.0


def test_a_key_scheduled_again_after_it_fired_is_due_again() -> None:
    deadlines: dict[str, float | None] = {"e": 0.5}
    queue = queue_of(deadlines)
    assert queue.pop_due(0.5) == ["e"]
    deadlines["e"] = 1.5  # timer E doubled
    queue.schedule("e")
    assert (queue.next_deadline(), queue.pop_due(1.0), queue.pop_due(1.5)) == (1.5, [], ["e"])


def _options(n: int) -> bytes:
    return (f"OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK{n:06d}\r\n"
            f"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: {n}@a\r\n"
            f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def test_the_layer_fires_every_transaction_timer_when_due_however_many_are_alive() -> None:
    layer = TransactionLayer(TimerSettings(t1=0.5, t2=4.0))
    for n in range(200):  # non-INVITE clients over UDP, started 10 ms apart: Timer E at start + T1
        layer.send_request(parse_message(_options(n)), ("b.example.com", 5060), n * 0.01)
    assert layer.next_deadline() == 0.5
    fired = layer.handle_timer(1.0)  # E of those started by 0.5 s: a retransmission each
    assert len(fired) == 51 and layer.next_deadline() == pytest.approx(1.01)
    layer.handle_timer(100.0)  # Timer F (64*T1) ends every one of them
    assert list(layer.transactions()) == [] and layer.next_deadline() is None
