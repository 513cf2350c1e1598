"""When a call leg last had media, and when its silence ends the call (the media inactivity timeout).

Microsoft documents no media-inactivity timeout for Direct Routing; SBCs make it a setting, and so
does drlab (`media_inactivity_timeout_s`, docs/ASSUMPTIONS.md). Every node keeps a `MediaWatch`
per leg of each answered call (the clients and the carrier one per call). A leg is silent:

- on its media, from its last RTP packet (`received`) while the media layer expects the peer to
  send (`expect(now, receiving=True)`: a stream or relay whose offer/answer says the peer sends,
  RFC 3264 §6.1; counting starts at that moment). A held leg, a leg without a media path, or
  a node that does not see the call's media (an SBA, a proxy under media bypass) expects none;
- on its signalling, from the moment the leg's connection was reset, or keepalives to its peer
  failed, and the path could not be re-established (`path_lost`; a later successful
  re-establishment, `path_restored`, clears it).

Whichever silence began first sets the deadline: `deadline(timeout)` is when the node ends the
call, `cause` says which. The watchdog of an answered call (`watch_until_silent`) sleeps until
the earliest deadline of the call's legs; `changed` wakes it only when a deadline can come
earlier (a stream set up, a lost path). A packet only moves a deadline later, so it wakes
nothing: the watchdog finds the later deadline when the old one comes.

The media layer feeds it (simulator/media/session.py): a relay through its role, which names the
call and the leg; a stream straight into its call's watch:

    proxy.media_received(call, leg, now) / sbc.media_received(call, leg, now)   (the relay's packets)
    call_handle.media.received(now)      pstn_call.media.received(now)          (the stream's)
    (and `media_expected(..., now, receiving)` / `.media.expect(now, receiving)` when a relay or a
    stream starts or stops expecting packets)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

NO_MEDIA = "no media"
CONNECTION_LOST = "connection lost"


@dataclass(eq=False)
class MediaWatch:
    last_media_at: float | None = None  # the last packet, or when the media layer began to expect one
    receiving: bool = False  # the media layer expects the peer to send on this leg now
    path_lost_at: float | None = None  # the signalling connection was reset and not re-established
    checking: bool = False  # a re-establishment attempt is under way
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def received(self, now: float) -> None:
        """A packet arrived (called per packet: no wake-up, see the module docstring)."""
        if self.last_media_at is None or now > self.last_media_at:
            self.last_media_at = now

    def expect(self, now: float, receiving: bool = True) -> None:
        """The media layer set up or changed the leg's stream: from `now` the peer is meant to send
        (`receiving`), or it is not (on hold, no media path)."""
        if receiving and not self.receiving:
            self.received(now)  # the silence counts from now, not from a packet before a hold
        if receiving != self.receiving:
            self.receiving = receiving
            self.changed.set()

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

    def heard_within(self, now: float, window_s: float) -> bool:
        """Media is expected on the leg and its last packet came less than `window_s` ago."""
        since = self.media_silent_since
        return since is not None and now - since < window_s

    @property
    def media_silent_since(self) -> float | None:
        return self.last_media_at if self.receiving else None

    @property
    def silent_since(self) -> float | None:
        """The earlier of the media's silence and the signalling path's loss; None while neither holds."""
        times = [t for t in (self.media_silent_since, self.path_lost_at) if t is not None]
        return min(times) if times else None

    @property
    def cause(self) -> str:
        """Why the leg is silent: no media, or its connection lost (the earlier of the two)."""
        media = self.media_silent_since
        return NO_MEDIA if media is not None and (self.path_lost_at is None or media <= self.path_lost_at) \
            else CONNECTION_LOST

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
