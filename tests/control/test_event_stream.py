"""The event log fanned out to live readers: replay from an id, bounded queues, drop-oldest."""

from __future__ import annotations

from simulator.control.events import EventStream
from simulator.events import EventLog


async def test_a_reader_gets_the_replay_then_the_live_records_with_their_log_ids() -> None:
    log = EventLog()
    log.logger().info("a.one")
    log.logger().info("a.two")
    stream = EventStream(log)
    replay, sub = stream.subscribe(since=1)
    log.logger().info("a.three")
    assert [(i, r["event"]) for i, r in replay] == [(1, "a.two")]
    batch, dropped = await sub.get()
    assert ([(i, r["event"]) for i, r in batch], dropped) == ([(2, "a.three")], 0)


async def test_a_slow_reader_loses_the_oldest_records_and_is_told_how_many() -> None:
    log = EventLog()
    stream = EventStream(log, queue_limit=3)
    _, sub = stream.subscribe()
    for n in range(5):
        log.logger().info("tick", n=n)
    batch, dropped = await sub.get()
    assert [r["n"] for _, r in batch] == [2, 3, 4]
    assert dropped == 2


async def test_publishing_never_waits_for_readers() -> None:
    log = EventLog()
    stream = EventStream(log, queue_limit=10)
    subs = [stream.subscribe()[1] for _ in range(3)]
    for n in range(1000):
        log.logger().info("tick", n=n)  # nobody reads: each queue keeps only its last 10
    for sub in subs:
        batch, dropped = await sub.get()
        assert (len(batch), dropped) == (10, 990)


async def test_closing_ends_every_reader_after_what_is_queued() -> None:
    log = EventLog()
    stream = EventStream(log)
    _, sub = stream.subscribe()
    log.logger().info("last")
    stream.close()
    assert [r["event"] for _, r in (await sub.get())[0]] == ["last"]
    assert await sub.get() == ([], 0)
    log.logger().info("after")  # no reader left to tell
    assert sub.closed


async def test_an_unsubscribed_reader_hears_nothing_more() -> None:
    log = EventLog()
    stream = EventStream(log)
    _, sub = stream.subscribe()
    stream.unsubscribe(sub)
    log.logger().info("unheard")
    sub.close()
    assert await sub.get() == ([], 0)
