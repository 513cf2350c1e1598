"""The background tasks a role spawns (timers, BYEs, keepalives), and how it ends them on stop.

Every role keeps strong references to its tasks (asyncio holds only weak ones), logs a task that
failed as one error event instead of letting asyncio print "exception was never retrieved", and
on stop cancels them all and waits for them to unwind, so a stopped role leaves nothing running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


class RoleTasks:
    """A role's set of background tasks.

    `event` is the error event a failed task is logged as (with `error="Type: message"` and the
    role's own `fields`); None logs nothing."""

    def __init__(self, log: Any, event: str | None, **fields: Any) -> None:
        self._log = log
        self._event = event
        self._fields = fields
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved either way: no "exception was never retrieved" noise
        if exc is not None and self._event is not None:
            self._log.error(self._event, **self._fields, error=f"{type(exc).__name__}: {exc}")

    def cancel(self) -> None:
        """Cancel every task without waiting for it (a restart that starts afresh at once).

        A cancelled task stays in the set until it has unwound (its done callback drops it)."""
        for task in list(self._tasks):
            task.cancel()

    async def cancel_all(self, *also: asyncio.Task[Any] | None) -> None:
        """Cancel every task (and the role's own `also` tasks, such as its main loop), then wait
        for each to unwind; what they raise on the way out is theirs, not the caller's."""
        tasks = [t for t in (*also, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.difference_update(tasks)  # their done callbacks may not have run yet
