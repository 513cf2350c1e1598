"""The same seed gives the same trace, byte for byte — for the whole Contoso lab."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.helpers import run_contoso

pytestmark = pytest.mark.e2e


def _trace(certs, seed: int) -> list[str]:
    records: list[dict] = []

    async def scenario(lab) -> None:
        lab.link("wan-seattle").down()
        await asyncio.sleep(40)
        call = await lab.client("carol@contoso.com").place_call("4255550199")
        await call.hangup()
        records.extend(lab.events.records)
    run_contoso(certs, scenario, seed=seed)
    return [json.dumps(r, default=str, sort_keys=True) for r in records]


def test_same_seed_same_event_log(lab_certs) -> None:
    first, second = _trace(lab_certs, 3), _trace(lab_certs, 3)
    assert len(first) > 500
    assert first == second
