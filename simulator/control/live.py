"""A live lab: started, served by its control plane, running until it is told to stop.

    live = LiveLab(lab, host="127.0.0.1", port=8765, pace=1.0)
    await live.run(on_ready=show)       # on the lab's loop; returns once the lab has stopped

`run` listens first (a busy control port fails before any node starts), boots the lab, calls
`on_ready(Ready)` with the control URL and the address map, and waits for a stop: `POST
/api/stop`, or SIGINT/SIGTERM with `handle_signals=True` (main thread only). The stop ends every
call placed through the API (BYE, or CANCEL while ringing), stops the nodes, sends the last
events to the stream's readers and closes the API. `records` then holds what happened, up to
`lab.stopped`: the records the stream sent (packets still in flight on the sim network may
land on closed sockets after that, which is not part of the lab's story).

On the sim network, run it on an unpaced VirtualClockLoop (`run_sim`): the lab boots (starts
and settles) on the jumping virtual clock, which costs no wall time, then runs at `pace`
virtual seconds per wall second. It must stay paced while it
is live: an unpaced clock jumps to its next timer whenever the loop is idle, so a lab waiting
for commands would race through its timers to the end of time. The real network runs on the
wall clock; `pace` must be None there.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.control.api import serve
from simulator.control.plane import ControlPlane
from simulator.heap import long_lived_heap
from simulator.net.clock import VirtualClockLoop


@dataclass(frozen=True)
class Ready:
    url: str
    addresses: list[dict[str, Any]]
    unsettled: list[str]   # what the lab was still waiting for when it stopped settling (normally empty)


class LiveLab:
    def __init__(self, lab: Any, *, host: str = "127.0.0.1", port: int = 8765, pace: float | None = None) -> None:
        self.lab = lab
        self.host = host
        self.port = port
        self.pace = pace
        self.plane: ControlPlane | None = None
        self.records: list[dict[str, Any]] = []

    async def run(self, on_ready: Callable[[Ready], None] | None = None, *, handle_signals: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if self.lab.network.kind == "sim":
            if not isinstance(loop, VirtualClockLoop) or self.pace is None:
                raise ValueError("a live sim lab runs on a VirtualClockLoop with a pace (see the module docstring)")
        elif self.pace is not None:
            raise ValueError("pace is for the sim network: the real network runs on the wall clock")
        self.plane = plane = ControlPlane(self.lab, loop)
        runner, url = await serve(plane, self.host, self.port)
        if hasattr(self.lab, "url"):  # node processes (processes.py) are told where the control plane is
            self.lab.url = url
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals and threading.current_thread() is threading.main_thread() else ()
        for sig in signals:
            loop.add_signal_handler(sig, plane.request_stop)
        started = False
        try:
            unsettled = await self._boot(plane)
            started = True
            if unsettled is not None:
                if isinstance(loop, VirtualClockLoop):
                    loop.set_pace(self.pace)  # type: ignore[arg-type]
                if on_ready is not None:
                    on_ready(Ready(url, plane.addresses(), unsettled))
                with long_lived_heap():  # the started lab lives until the stop: out of the collector's walks
                    await plane.stop_requested.wait()
            await plane.end_calls()
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if started:  # a lab whose start failed has stopped itself
                await self.lab.stop()
            self.records = sorted(self.lab.events.records, key=lambda r: r["t"])  # by time, then arrival
            plane.stream.close()
            await runner.cleanup()

    async def _boot(self, plane: ControlPlane) -> list[str] | None:
        """Start the lab and let it settle; None when a stop came first."""
        boot = asyncio.ensure_future(self.lab.start())
        stop = asyncio.ensure_future(plane.stop_requested.wait())
        await asyncio.wait((boot, stop), return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not boot.done():
            boot.cancel()
            await asyncio.gather(boot, return_exceptions=True)
            return None
        return boot.result()  # a node that failed to start raises LabError here
