"""The real network most tests/net modules drive: the branch lab on loopback, closed afterwards."""

from collections.abc import AsyncIterator

import pytest

from simulator.net import RealNetwork
from tests.support.net import branch_lab


@pytest.fixture
async def net() -> AsyncIterator[RealNetwork]:
    network = branch_lab(RealNetwork(seed=1))
    yield network
    await network.close()
