"""Run time: what every reported time counts in — seconds since the run began, in the scenario's units.

Roles, sockets and the SIP stack run on the event loop's clock: virtual on the sim network (it
starts at 0), the OS monotonic clock on the real one (seconds since the machine booted). A
`RunClock` turns that into run time: loop seconds since the run's origin (the first reading
inside a running loop, i.e. when the lab is built or started), multiplied by `scale`.

With `scale` K > 1 (the real network's `--time-scale K`) the lab runs K times faster than life:
`timed_settings(settings, K)` divides every role-level timer by K (RoleSettings.scaled), the
runner waits `clock.wall(s)` loop seconds for `s` scenario seconds (`at:`, `wait:`, ...), links
delay by 1/K of their latency (`link_delays`), and event times, metrics, timeline and report come
out multiplied back, in the scenario's own units.

    clock = RunClock(scale=10)
    events.clock = clock                      # every event's `t` is run time
    clock()                                   # run seconds now (0.0 before the first reading)
    await asyncio.sleep(clock.wall(30))       # 30 scenario seconds: 3 s of loop time
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping

from simulator.roles.settings import RoleSettings, SettingsError


def check_time_scale(time_scale: float) -> float:
    """`time_scale` as a float, or SettingsError for a value that is not a finite number > 0."""
    if isinstance(time_scale, bool) or not isinstance(time_scale, (int, float)) \
            or not math.isfinite(time_scale) or time_scale <= 0:
        raise SettingsError(f"time scale must be a finite number > 0; got {time_scale!r}")
    return float(time_scale)


def timed_settings(settings: RoleSettings, time_scale: float) -> RoleSettings:
    """The settings a lab run at `time_scale` gives its roles (unchanged at 1)."""
    return settings if check_time_scale(time_scale) == 1 else settings.scaled(time_scale)


def link_delays(impairment: Mapping[str, float | None], time_scale: float) -> dict[str, float | None]:
    """A link's impairment as the network should apply it: latency and jitter 1/time_scale of the
    lab's (they are the lab's emulated distances, part of what is rehearsed faster), loss as is."""
    return {key: value / time_scale if key in ("latency", "jitter") and value is not None else value
            for key, value in impairment.items()}


class RunClock:
    """Seconds since the run began, times `scale`; callable, so it can be an EventLog's clock."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = check_time_scale(scale)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._origin = 0.0

    def __call__(self) -> float:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return 0.0  # built outside a loop: the run has not begun
            self._origin = self._loop.time()
            return 0.0
        return (self._loop.time() - self._origin) * self.scale

    def wall(self, run_s: float) -> float:
        """Loop seconds that make `run_s` seconds of run time."""
        return run_s / self.scale
