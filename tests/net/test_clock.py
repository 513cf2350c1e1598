"""The virtual clock: timers cost no wall time, run in virtual order, and pace ties to wall time."""

import asyncio
import time

import pytest

from simulator.net.clock import VirtualClockLoop, run_sim


@pytest.mark.sim
async def test_a_15_minute_sleep_costs_no_wall_time():
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    await asyncio.sleep(900)
    assert loop.time() == 900.0
    assert time.perf_counter() - started < 0.5


@pytest.mark.sim
@pytest.mark.parametrize(
    "delays, expected_order",
    [
        ([900, 60, 0.5], [0.5, 60, 900]),
        ([5, 5, 1], [1, 5, 5]),
        ([0, 3600, 0.001], [0, 0.001, 3600]),
    ],
)
async def test_callbacks_run_in_virtual_time_order_at_their_exact_time(delays, expected_order):
    loop = asyncio.get_running_loop()
    fired = []
    for delay in delays:
        loop.call_later(delay, lambda: fired.append(loop.time()))
    await asyncio.sleep(max(delays) + 1)
    assert fired == expected_order


@pytest.mark.sim
async def test_wait_for_times_out_at_the_virtual_deadline():
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.sleep(3600), 32)
    assert loop.time() == 32.0


@pytest.mark.sim
async def test_work_in_threads_still_wakes_the_loop():
    loop = asyncio.get_running_loop()
    assert (await loop.run_in_executor(None, lambda: sum(range(1000)))) == 499500


def test_pace_ties_virtual_time_to_a_multiple_of_wall_time():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(5)  # 5 virtual seconds at pace 100 = 0.05 wall seconds
        return loop.time()

    started = time.perf_counter()
    virtual = run_sim(main, pace=100)
    wall = time.perf_counter() - started
    assert 5.0 <= virtual < 6.0
    assert 0.04 <= wall < 1.0


@pytest.mark.parametrize("pace", [0, -1, "fast"])
def test_a_pace_that_is_not_a_positive_number_is_refused(pace):
    with pytest.raises(ValueError, match="pace must be a positive number"):
        VirtualClockLoop(pace=pace)


def test_run_sim_cancels_tasks_left_running():
    cancelled = []

    async def forever():
        try:
            await asyncio.sleep(10**6)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main():
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(1)

    run_sim(main)
    assert cancelled == [True]


def test_a_paced_sim_network_delivers_at_the_paced_wall_speed():
    from simulator.net import SimNetwork
    from tests.support.net import PROXY, SBC, Echo, Recorder, branch_lab

    async def main():
        net = branch_lab(SimNetwork(), latency=1.0)  # 4 virtual seconds: connect + echo round trips
        await net.listen(PROXY, 5061, "tcp", Echo)
        transport, client = await net.connect(SBC, PROXY, 5061, Recorder)
        transport.write(b"ping")
        await client.until(4)
        return asyncio.get_running_loop().time()

    started = time.perf_counter()
    virtual = run_sim(main, pace=100)
    wall = time.perf_counter() - started
    # Paced waits are real, so a loaded machine may oversleep; what must hold is that virtual time
    # never runs ahead of wall time × pace, and the exchange took its 4 virtual seconds.
    assert 4.0 <= virtual <= wall * 100 + 0.01
    assert 0.035 <= wall < 2.0
