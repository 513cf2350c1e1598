"""The virtual clock under live control: pace changes, pause, step to the next timer, resume.

A huge pace (a million virtual seconds per wall second) makes any wall time visible: a few
microseconds of running would move the clock by whole seconds, so a clock that stands still
through several turns of the loop (with real socket I/O) is really paused.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from simulator.net.clock import VirtualClockLoop, run_sim

FAST = 1e6


def test_a_pace_change_carries_on_from_the_current_time() -> None:
    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)
        before = loop.time()
        loop.set_pace(FAST)
        after = loop.time()
        loop.set_pace(1.0)
        return before, after, loop.time()

    before, after, slowed = run_sim(main, pace=2.0)
    assert before <= after <= slowed
    assert slowed - before < 60  # continuous: no jump back to the start, no leap ahead


async def _echo_through_a_socket_pair(loop: asyncio.AbstractEventLoop, turns: int) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    with a, b:
        for _ in range(turns):
            await loop.sock_sendall(a, b"x")
            assert await loop.sock_recv(b, 1) == b"x"


def test_a_paused_clock_stands_still_fires_no_timer_and_still_serves_io() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        loop.call_later(1.0, lambda: fired.append(loop.time()))
        loop.pause()
        stopped_at = loop.time()
        await _echo_through_a_socket_pair(loop, 50)
        assert (loop.time(), fired) == (stopped_at, [])
        loop.resume()
        await _echo_through_a_socket_pair(loop, 1)
        await asyncio.sleep(2.0)
        assert fired and loop.time() > stopped_at

    run_sim(main, pace=FAST)


async def _next_turn() -> None:
    """Let the loop run the timers that are due now: they queue behind our own wake-up on the
    first turn and run on it, so we look on the second."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_step_moves_a_paused_clock_to_its_next_timer_and_runs_it() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualClockLoop)
        loop.pause()
        start = loop.time()
        fired: list[str] = []
        loop.call_at(start + 5, fired.append, "five")
        loop.call_at(start + 7, fired.append, "seven")
        cancelled = loop.call_at(start + 6, fired.append, "six")
        cancelled.cancel()
        assert loop.step() == pytest.approx(start + 5)
        await _next_turn()
        assert fired == ["five"]
        assert loop.step() == pytest.approx(start + 7)  # the cancelled timer is no stop
        await _next_turn()
        assert fired == ["five", "seven"] and loop.paused
        loop.resume()

    run_sim(main, pace=1.0)


@pytest.mark.parametrize(("pace", "error"), [(None, ValueError), (0, ValueError), (-1, ValueError), (True, ValueError)])
def test_a_live_clock_takes_only_a_positive_pace(pace: object, error: type[Exception]) -> None:
    loop = VirtualClockLoop(pace=1.0)
    try:
        with pytest.raises(error):
            loop.set_pace(pace)  # type: ignore[arg-type]
    finally:
        loop.close()


def test_step_refuses_a_running_clock() -> None:
    loop = VirtualClockLoop(pace=1.0)
    try:
        with pytest.raises(RuntimeError, match="paused"):
            loop.step()
    finally:
        loop.close()


def test_an_unpaced_clock_becomes_paced_without_losing_its_time() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(3600)  # unpaced: costs no wall time
        assert isinstance(loop, VirtualClockLoop) and loop.time() == pytest.approx(3600)
        loop.set_pace(FAST)
        assert loop.time() >= 3600
        await asyncio.sleep(10)  # paced: 10 µs of wall time

    run_sim(main)
