"""Scenario playback: the live view and the control API served for the lab a scenario run builds
(`drlab run SCENARIO --pace N --view HOST:PORT`, docs/live-lab.md).

    view = PlaybackView("127.0.0.1", 8765, on_url=print, on_stop=stopper.stop)
    await run_with_lab(scenario, ..., view=view)   # serves from before the lab starts until it has stopped

The lab is served as `drlab lab up` serves it (ControlPlane and api.serve as they are), so the
page shows the scenario's `step.*` records with the rest. Listening comes first: a busy port
raises ControlPortError before any node starts. At the end the lab has stopped (its last records,
`lab.stopped` included, reach the stream), the stream's readers are told it stopped and the API
closes. Serving adds no event record: the run's outputs are the same as without the view.

Commands sent through the API do reach the lab and change the run (a trainer may cut a link by
hand); each is recorded as a `control.command` event, so the outputs say so. `POST /api/stop`
stops the run as Ctrl-C does (`on_stop(reason)`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from simulator.control.api import serve
from simulator.control.plane import ControlPlane

STOP_REASON = "stopped through the control API (POST /api/stop)"


class PlaybackView:
    def __init__(self, host: str, port: int, *, on_url: Callable[[str], None] | None = None,
                 on_stop: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.port = port
        self.on_url = on_url
        self.on_stop = on_stop
        self.url: str | None = None

    @contextlib.asynccontextmanager
    async def __call__(self, lab: Any) -> AsyncIterator[ControlPlane]:
        plane = ControlPlane(lab, asyncio.get_running_loop())
        runner, self.url = await serve(plane, self.host, self.port)  # ControlPortError: nothing has started
        if self.on_url is not None:
            self.on_url(self.url)
        watch = asyncio.ensure_future(plane.stop_requested.wait())
        if self.on_stop is not None:
            on_stop = self.on_stop
            watch.add_done_callback(lambda task: None if task.cancelled() else on_stop(STOP_REASON))
        try:
            yield plane
        finally:
            watch.cancel()
            plane.stream.close()   # every reader of /api/events is told the lab stopped
            await runner.cleanup()
