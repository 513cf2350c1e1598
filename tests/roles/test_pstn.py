"""The PSTN carrier: what each number does, calls it places, and the record of what it received."""

from __future__ import annotations

import asyncio

import pytest

from simulator.roles.pstn import FarEnd, carrier_number
from tests.lab.world import build


@pytest.mark.parametrize("number, plan", [("+14255550199", "4255550199"), ("14255550199", "4255550199"),
                                          ("4255550199;ext=12", "4255550199"), ("911", "911")])
def test_the_number_plan_reads_numbers_as_the_carrier_writes_them(number: str, plan: str) -> None:
    assert carrier_number(number) == plan


def test_a_far_end_must_be_a_known_behaviour() -> None:
    with pytest.raises(ValueError, match="unknown PSTN behaviour 'hold'"):
        FarEnd.of("hold")
    assert FarEnd.of({"behaviour": "reject", "status": 603}).failure_status == 603
    assert FarEnd.of("busy").failure_status == 486 and FarEnd.of("answer").failure_status is None


@pytest.mark.sim
@pytest.mark.parametrize("number, status", [("+14255550166", 486), ("+14255550155", 404)])
async def test_busy_and_unreachable_numbers(lab_certs, number: str, status: int) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    response, _ = await lab.node("sip").call(number)
    far = lab.node("pstn").received[-1]
    assert (response.status, far.status, far.state) == (status, status, "failed")
    await lab.stop()


@pytest.mark.sim
async def test_answer_after_rings_first_then_answers(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    loop = asyncio.get_running_loop()
    began = loop.time()
    response, _ = await lab.node("sip").call("+14255550188")
    far = lab.node("pstn").received[-1]
    assert response.status == 200 and far.answered_at - far.started_at == pytest.approx(8.0)
    assert loop.time() - began == pytest.approx(8.0, abs=0.5)  # plus TLS set-up and round trips
    await lab.stop()


@pytest.mark.sim
async def test_a_ringing_number_is_cancelled_when_the_caller_gives_up(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    tx = lab.node("sip").invite("+14255550177")
    await asyncio.sleep(5)
    far = lab.node("pstn").received[-1]
    assert far.state == "ringing"
    tx.cancel()
    assert (await tx.final()).status == 487
    await asyncio.sleep(1)
    assert (far.state, far.status) == ("failed", 487)
    assert lab.node("sbc1").cdrs[-1].result.sip_code == 487
    await lab.stop()


@pytest.mark.sim
async def test_hangup_after_and_set_number_at_run_time(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    pstn = lab.node("pstn")
    pstn.set_number("4255550166", "answer", answer_after=1, hangup_after=30)
    response, _ = await lab.node("sip").call("+14255550166")
    far = pstn.calls_to("+14255550166")[-1]
    assert response.status == 200
    assert await far.wait_ended(timeout=40)
    assert far.ended_by == "far end" and far.ended_at - far.answered_at == pytest.approx(30)
    await asyncio.sleep(1)
    assert lab.node("sip").byes  # the SBC relayed the carrier's BYE to Teams
    await lab.stop()


@pytest.mark.sim
async def test_placed_calls_go_to_the_first_sbc_of_the_trunk_unless_told(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    pstn = lab.node("pstn")
    assert pstn.sbcs == ["sbc1.contoso.com"]
    call = await pstn.call("4255550199", "2065550201")
    assert call.sbc == "sbc1.contoso.com" and call.status == 200
    assert call.request.uri_text == "sip:2065550201@sbc1.contoso.com:5060;user=phone"
    with pytest.raises(ValueError, match="not an SBC with a PSTN trunk"):
        pstn.start_call("4255550199", "2065550201", via="sbc9.contoso.com")
    await lab.stop()
