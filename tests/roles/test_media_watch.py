"""The media inactivity timeout: when a leg's silence starts, and when its watchdog ends the call."""

from __future__ import annotations

import asyncio

import pytest

from simulator.roles.media_watch import MediaWatch, watch_until_silent

TIMEOUT = 30.0


@pytest.mark.parametrize(("feed", "silent_since", "cause"), [
    ([], None, None),  # nothing known: a call with no media layer and an intact path never times out
    ([("path_lost", 10.0)], 10.0, "connection lost"),
    ([("path_lost", 10.0), ("path_lost", 12.0)], 10.0, "connection lost"),  # the first loss counts
    ([("path_lost", 10.0), ("path_restored",)], None, None),
    ([("expect", 2.0)], 2.0, "no media"),  # a stream set up with no packet yet
    ([("expect", 2.0), ("received", 5.0)], 5.0, "no media"),
    ([("expect", 2.0), ("received", 5.0), ("received", 3.0)], 5.0, "no media"),  # a late report never moves it back
    ([("received", 5.0)], None, None),  # packets nobody expects (before the offer/answer) count for nothing
    ([("expect", 2.0), ("received", 5.0), ("path_lost", 10.0)], 5.0, "no media"),  # the earlier silence rules
    ([("expect", 2.0), ("received", 15.0), ("path_lost", 10.0)], 10.0, "connection lost"),  # media still flows
    ([("expect", 2.0), ("received", 5.0), ("expect", 8.0, False)], None, None),  # on hold: no media expected
    ([("expect", 2.0), ("received", 5.0), ("expect", 8.0, False), ("expect", 40.0)], 40.0, "no media"),  # resumed
    ([("expect", 2.0), ("received", 5.0), ("expect", 8.0)], 5.0, "no media"),  # expected again: no restart
], ids=["nothing", "path lost", "lost twice", "restored", "expected", "packet", "late packet", "unexpected",
        "media first", "path first", "held", "resumed", "expected twice"])
def test_silence_counts_from_the_earlier_of_the_last_expected_packet_and_the_lost_path(feed, silent_since, cause) -> None:
    watch = MediaWatch()
    for what, *args in feed:
        getattr(watch, what)(*args)
    assert watch.silent_since == silent_since
    assert watch.deadline(TIMEOUT) == (None if silent_since is None else silent_since + TIMEOUT)
    if cause is not None:
        assert watch.cause == cause


@pytest.mark.sim
async def test_the_watchdog_returns_the_silent_leg_at_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    a, b = MediaWatch(), MediaWatch()
    a.expect(0.0)

    async def packets() -> None:  # leg a keeps talking every 10 s; leg b loses its path at 5 s
        await asyncio.sleep(5)
        b.path_lost(loop.time())
        for _ in range(10):
            await asyncio.sleep(10)
            a.received(loop.time())

    feeder = asyncio.ensure_future(packets())
    silent = await watch_until_silent(lambda: [a, b], asyncio.Event(), TIMEOUT)
    feeder.cancel()
    assert silent is b and loop.time() == pytest.approx(5 + TIMEOUT)


@pytest.mark.sim
async def test_a_packet_moves_the_deadline_and_the_end_of_the_call_stops_the_watchdog() -> None:
    loop = asyncio.get_running_loop()
    watch, ended = MediaWatch(), asyncio.Event()
    watch.expect(0.0)
    waiting = asyncio.ensure_future(watch_until_silent(lambda: [watch], ended, TIMEOUT))
    await asyncio.sleep(20)
    watch.received(loop.time())
    await asyncio.sleep(20)
    assert not waiting.done()  # 40 s in, but only 20 s of silence
    ended.set()
    assert await waiting is None


def test_a_packet_wakes_no_watchdog_only_a_change_that_can_bring_the_deadline_forward_does() -> None:
    watch = MediaWatch()
    watch.expect(0.0)
    assert watch.changed.is_set()  # a stream set up: a deadline where there was none
    watch.changed.clear()
    for t in range(1, 100):
        watch.received(t * 0.02)  # a packet only moves the deadline later: found when the old one comes
    assert not watch.changed.is_set()
    watch.path_lost(5.0)
    assert watch.changed.is_set()
