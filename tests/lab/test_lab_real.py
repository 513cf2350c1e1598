"""The same lab file on the real network (loopback sockets, real time): it starts and carries a call."""

from __future__ import annotations

import asyncio

import pytest

from simulator.lab import Lab
from tests.support.contoso import CONTOSO_LAB, contoso

pytestmark = pytest.mark.real


def test_contoso_lab_on_loopback_settles_and_carries_an_outbound_call(lab_certs) -> None:
    async def main() -> None:
        lab = Lab.load(CONTOSO_LAB, tenant=contoso(), certs_dir=lab_certs, seed=1, network="real")
        try:
            assert await lab.start(settle_timeout_s=20) == []
            assert lab.network.resolve("sbc1.contoso.com").startswith("127.")
            call = await lab.client("alice@contoso.com").place_call("4255550199")
            assert (call.status, call.state) == (200, "answered")
            far = lab.node("pstn-hq").received[-1]
            assert (far.callee, far.state) == ("4255550199", "answered")
            await call.hangup()
            assert await far.wait_ended(timeout=5)
        finally:
            await lab.stop()
    asyncio.run(asyncio.wait_for(main(), 60))
