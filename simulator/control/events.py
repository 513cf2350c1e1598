"""The lab's event log, fanned out to live subscribers (the `GET /api/events` stream).

The log calls `EventStream` synchronously for every record, on the lab's loop, so publishing
must never wait: each subscriber has a bounded queue, and when a slow reader lets it fill up
the oldest records are dropped and counted (the reader is told how many). A subscriber may
first replay the log from a position (`since`): each record's id is its index in the log, so a
reader that lost its connection asks again from the last id it saw plus one.

    stream = EventStream(lab.events)
    replay, sub = stream.subscribe(since=0)     # [(id, record)...] so far; then live:
    batch, dropped = await sub.get()            # [(id, record)...], records lost since last get
    stream.unsubscribe(sub); stream.close()     # close(): every reader's get() returns ([], 0)
"""

from __future__ import annotations

import asyncio
from collections import deque

from simulator.events import Event, EventLog

DEFAULT_QUEUE_LIMIT = 10_000


class Subscription:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.closed = False
        self._queue: deque[tuple[int, Event]] = deque()
        self._dropped = 0
        self._ready = asyncio.Event()

    def put(self, index: int, record: Event) -> None:
        if len(self._queue) >= self.limit:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append((index, record))
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def get(self) -> tuple[list[tuple[int, Event]], int]:
        """The records queued since the last call (waits for one) and how many were dropped;
        ([], 0) once closed and drained."""
        while not self._queue and not self._dropped and not self.closed:
            self._ready.clear()
            await self._ready.wait()
        batch = list(self._queue)
        self._queue.clear()
        dropped, self._dropped = self._dropped, 0
        return batch, dropped


class EventStream:
    def __init__(self, log: EventLog, *, queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        self.log = log
        self.queue_limit = queue_limit
        self._subscribers: set[Subscription] = set()
        log.subscribe(self._publish)

    def _publish(self, record: Event) -> None:
        if self._subscribers:
            index = len(self.log.records) - 1  # the log appends before it tells subscribers
            for sub in self._subscribers:
                sub.put(index, record)

    def subscribe(self, since: int | None = None) -> tuple[list[tuple[int, Event]], Subscription]:
        """A new live subscription, and the records from index `since` on (none if None)."""
        sub = Subscription(self.queue_limit)
        self._subscribers.add(sub)
        replay = [] if since is None else list(enumerate(self.log.records[since:], start=since))
        return replay, sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close(self) -> None:
        for sub in self._subscribers:
            sub.close()
        self._subscribers.clear()
