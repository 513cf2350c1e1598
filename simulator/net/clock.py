"""A virtual-clock asyncio event loop: timers cost no wall time.

Time is `loop.time()`. On `sim` the loop runs on a virtual clock: a 60 s OPTIONS interval or a
15-minute outage costs no wall time. The loop is an ordinary selector event loop
(so real sockets, threads and `call_soon_threadsafe` still work) whose `time()` is a number we
own. When the loop would block in `select()` waiting for its next timer and no I/O is ready, the
clock jumps straight to that timer instead of sleeping.

With `pace=N` the clock is instead tied to wall time, N virtual seconds per wall second, for live
demonstrations (`drlab run --pace 10`, `drlab lab up`); then waits really happen, only shorter.
A live lab changes the pace as it runs (`set_pace`), stops the clock (`pause`: no timer fires,
I/O is still served), moves a paused clock on to its next timer (`step`) and lets it go on
(`resume`). Each change keeps virtual time continuous: it never jumps back, and never forward
except by `step` or, unpaced, to the next timer.

Determinism: the loop itself adds no randomness. asyncio runs ready callbacks FIFO and timers in
heap order, which depends only on the sequence of calls, so the same program gives the same order.
Randomness belongs to a seeded `random.Random` owned by the network (see sim.py).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _VirtualSelector(selectors.BaseSelector):
    """Delegates to a real selector; turns a blocking wait for a timer into a clock jump."""

    def __init__(self, loop: VirtualClockLoop, real: selectors.BaseSelector) -> None:
        self._loop = loop
        self._real = real

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._loop
        if loop.paused:
            # No timer can come due on a stopped clock: wait for I/O only (a control request).
            return self._real.select(0 if timeout == 0 else None)
        if loop.pace is not None:
            # Paced: really wait, for timeout/pace wall seconds.
            return self._real.select(None if timeout is None else timeout / loop.pace)
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            # No timer at all: only another thread (executor, call_soon_threadsafe) can wake us.
            return self._real.select(None)
        loop._jump_to_next_timer()
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """Selector event loop whose `time()` starts at `start` and jumps to the next timer.

    `pace=None` (default): virtual time, jumps, no wall-clock waits.
    `pace=N`: virtual time advances N× as fast as wall time (N=1 is real time from `start`).
    """

    def __new__(cls, *, pace: float | None = None, start: float = 0.0) -> VirtualClockLoop:
        _check_pace(pace)  # here, not in __init__: a half-built loop's __del__ would complain
        return super().__new__(cls)

    def __init__(self, *, pace: float | None = None, start: float = 0.0) -> None:
        self.pace = pace
        self.paused = False
        self._now = float(start)
        self._wall_origin = time.monotonic()
        super().__init__(selector=selectors.DefaultSelector())
        self._selector = _VirtualSelector(self, self._selector)
        # Timers scheduled "now" must be due now: no resolution slack on a clock we own.
        self._clock_resolution = 1e-9

    def time(self) -> float:
        if self.pace is not None and not self.paused:
            return self._now + (time.monotonic() - self._wall_origin) * self.pace
        return self._now

    def _jump_to_next_timer(self) -> None:
        # _run_once has already dropped cancelled timers from the head of the heap and computed
        # its timeout from _scheduled[0]; land exactly on that deadline (no float drift).
        if self._scheduled:
            self._jump_to(self._scheduled[0]._when)

    def _jump_to(self, when: float) -> None:
        if when > self._now:
            # A role that sleeps `deadline - now` gets a timer at `now + (deadline - now)`, which
            # floats can put one ulp BEFORE `deadline`; it would then re-arm a ~1e-14 s timer
            # for ever and virtual time would stop. Deadlines are sums of settings on the
            # microsecond grid, so land on that grid when it is at or just after `when`.
            grid = round(when, 6)
            self._now = grid if grid >= when else when

    def _hold(self) -> None:
        """Fold the wall time passed so far into `_now`, so a change of pace or pause starts from here."""
        self._now = self.time()
        self._wall_origin = time.monotonic()

    def set_pace(self, pace: float) -> None:
        """From now on, `pace` virtual seconds per wall second (an unpaced loop becomes paced)."""
        if pace is None:
            raise ValueError("set_pace needs a positive number: an unpaced clock cannot be followed live")
        _check_pace(pace)
        self._hold()
        self.pace = pace

    def pause(self) -> None:
        """Stop the clock: timers wait, ready callbacks and I/O still run."""
        if not self.paused:
            self._hold()
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._wall_origin = time.monotonic()

    def step(self) -> float:
        """On a paused clock, move to the earliest pending timer (it runs on the loop's next turn)
        and return the new time; the clock stays paused. Nothing pending: the time is unchanged."""
        if not self.paused:
            raise RuntimeError("step needs a paused clock: pause() first")
        pending = [handle.when() for handle in self._scheduled if not handle.cancelled()]
        if pending:
            self._jump_to(min(pending))
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by hand (tests); timers that become due run on the next turn."""
        if seconds < 0:
            raise ValueError("the clock does not run backwards")
        self._now += seconds


def _check_pace(pace: object) -> None:
    if pace is None:
        return
    if isinstance(pace, bool) or not isinstance(pace, int | float) or not pace > 0:
        raise ValueError(f"pace must be a positive number of virtual seconds per wall second, got {pace!r}")


class VirtualClockPolicy(asyncio.DefaultEventLoopPolicy):
    """Event loop policy handing out VirtualClockLoop (for pytest-asyncio's `event_loop_policy`)."""

    def __init__(self, *, pace: float | None = None) -> None:
        super().__init__()
        _check_pace(pace)
        self._pace = pace

    def new_event_loop(self) -> VirtualClockLoop:
        return VirtualClockLoop(pace=self._pace)


def run_sim(main: Callable[[], Awaitable[T]] | Awaitable[T], *, pace: float | None = None, debug: bool = False) -> T:
    """Run `main` (a coroutine function or coroutine) to completion on a fresh VirtualClockLoop.

    Like `asyncio.run`: cancels leftover tasks and closes the loop afterwards. The seed belongs
    to the network (`SimNetwork(seed=...)`), not to the loop, which has no randomness of its own.
    """
    loop = VirtualClockLoop(pace=pace)
    loop.set_debug(debug)
    coro = main() if callable(main) else main
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {"message": "unhandled exception during run_sim() shutdown", "exception": task.exception(), "task": task}
            )
