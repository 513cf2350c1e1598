"""RoleTasks: a failed background task becomes the role's error event; stop leaves nothing running."""

import asyncio

import pytest

from simulator.events import EventLog
from simulator.roles.tasks import RoleTasks


@pytest.mark.sim
async def test_a_failed_task_is_logged_once_with_the_roles_fields_and_stop_cancels_the_rest():
    loop = asyncio.get_running_loop()
    events = EventLog(clock=loop.time)
    tasks = RoleTasks(events.logger(node="sba1"), "sba.internal_error", sba="sba1.contoso.com")

    async def broken():
        await asyncio.sleep(1)
        raise RuntimeError("cache file unreadable")

    tasks.spawn(broken(), name="sync")
    forever = tasks.spawn(asyncio.sleep(10**6))
    main_loop = loop.create_task(asyncio.sleep(10**6))
    await asyncio.sleep(2)
    assert [(e["event"], e["sba"], e["error"]) for e in events.select("sba.")] == [
        ("sba.internal_error", "sba1.contoso.com", "RuntimeError: cache file unreadable")]
    assert len(tasks) == 1
    await tasks.cancel_all(main_loop)
    assert forever.cancelled() and main_loop.cancelled() and len(tasks) == 0
