"""`@pytest.mark.sim` (tests/conftest.py): an async test on a fresh virtual clock, as run_sim gives."""

import asyncio
import time

import pytest

from simulator.net.clock import VirtualClockLoop


@pytest.mark.sim
async def test_a_sim_test_starts_at_zero_on_a_virtual_clock_that_jumps():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualClockLoop) and loop.pace is None and loop.time() == 0.0
    started = time.perf_counter()
    await asyncio.sleep(3600)
    assert loop.time() == 3600.0 and time.perf_counter() - started < 1


@pytest.mark.sim
@pytest.mark.parametrize("run", [1, 2])
async def test_each_sim_test_gets_a_loop_of_its_own(run):
    assert asyncio.get_running_loop().time() == 0.0
    await asyncio.sleep(60 * run)


async def test_an_async_test_without_the_mark_runs_on_asyncio_s_own_loop():
    assert not isinstance(asyncio.get_running_loop(), VirtualClockLoop)
