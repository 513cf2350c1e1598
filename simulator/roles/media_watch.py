"""When a call leg last had media, and when its silence ends the call (the media inactivity timeout).

Microsoft documents no media-inactivity timeout for Direct Routing; SBCs make it a setting, and so
does drlab (`media_inactivity_timeout_s`, docs/ASSUMPTIONS.md). Every node keeps a `MediaWatch`
per leg of each answered call (the clients and the carrier one per call). A leg's silence counts
from:

- its last media packet, once the media layer has reported one (`received`), or from when the
  media layer set a stream up on it and is waiting for the first packet (`expected`);
- before the media layer reports anything, from the moment the leg's signalling connection was
  reset, or keepalives to its peer failed, and the path could not be re-established
  (`path_lost`): the path under the call is gone, so its media is too. A later successful re-establishment (`path_restored`) clears it.

`silent_since` is None while neither holds; `deadline(timeout)` is when the node ends the call.
`watch_until_silent` is the watchdog an answered call runs; `changed` wakes it when a packet or a
path change moves a deadline.

The media layer feeds it through the roles (each names the call and leg):

    proxy.media_received(call, leg, now) / sbc.media_received(call, leg, now) / sba.media_received(call, leg, now)
    client.media_received(call_handle, now)      pstn.media_received(pstn_call, now)
    (and the same names with `media_expected` when a stream is set up, before its first packet)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class MediaWatch:
    last_media_at: float | None = None  # the last packet (or the stream's set-up) the media layer reported
    path_lost_at: float | None = None  # the signalling connection was reset and not re-established
    checking: bool = False  # a re-establishment attempt is under way
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def received(self, now: float) -> None:
        self.last_media_at = now if self.last_media_at is None else max(self.last_media_at, now)
        self.changed.set()

    def expected(self, now: float) -> None:
        if self.last_media_at is None:
            self.received(now)

    def path_lost(self, now: float) -> bool:
        """Record the loss; False when it was known already."""
        if self.path_lost_at is not None:
            return False
        self.path_lost_at = now
        self.changed.set()
        return True

    def path_restored(self) -> None:
        if self.path_lost_at is not None:
            self.path_lost_at = None
            self.changed.set()

    @property
    def silent_since(self) -> float | None:
        """Real media rules once the media layer has spoken; until then the path's loss does."""
        return self.last_media_at if self.last_media_at is not None else self.path_lost_at

    def deadline(self, timeout_s: float) -> float | None:
        since = self.silent_since
        return None if since is None else since + timeout_s


async def watch_until_silent(watches: Callable[[], list[MediaWatch]], ended: asyncio.Event,
                             timeout_s: float) -> MediaWatch | None:
    """Wait until one of the call's legs has been silent for `timeout_s`: that leg's watch; None
    when the call ended first."""
    loop = asyncio.get_running_loop()
    while not ended.is_set():
        legs = watches()
        for watch in legs:
            watch.changed.clear()
        due = [(d, w) for w in legs if (d := w.deadline(timeout_s)) is not None]
        deadline = min(due, key=lambda pair: pair[0]) if due else None
        if deadline is not None and deadline[0] <= loop.time():
            return deadline[1]
        waits = [asyncio.ensure_future(w.changed.wait()) for w in legs] + [asyncio.ensure_future(ended.wait())]
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline[0] if deadline else None):
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
    return None


async def check_path(watch: MediaWatch, reestablish: Callable[[], Awaitable[bool]], lost_at: float) -> bool:
    """Try once to re-establish a leg's path (one try at a time); True when it is lost from
    `lost_at` on (newly: a loss known already is not news)."""
    watch.checking = True
    try:
        return not await reestablish() and watch.path_lost(lost_at)
    finally:
        watch.checking = False
