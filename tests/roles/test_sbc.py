"""The SBC between a real PSTN carrier and stand-in Teams proxies (tests/lab/world.py), on the sim network."""

from __future__ import annotations

import asyncio

import pytest

from simulator.roles.sbc import to_carrier, to_e164
from simulator.sip.builders import ANONYMOUS_FROM
from simulator.sip.geolocation import PIDF_CONTENT_TYPE, BodyPart, multipart_mixed, pidf_lo
from tests.lab.world import LAB, build, settle


@pytest.mark.parametrize("carrier, e164", [
    ("4255550199", "+14255550199"), ("14255550199", "+14255550199"), ("011441632960961", "+441632960961"),
    ("911", "911"), ("+14255550199", "+14255550199"),
])
def test_carrier_numbers_become_e164_toward_teams(carrier: str, e164: str) -> None:
    assert to_e164(carrier) == e164


@pytest.mark.parametrize("e164, carrier", [
    ("+14255550199", "4255550199"), ("+441632960961", "011441632960961"), ("911", "911"), ("4255550199", "4255550199"),
])
def test_e164_becomes_the_carriers_format(e164: str, carrier: str) -> None:
    assert to_carrier(e164) == carrier


@pytest.mark.sim
async def test_options_to_every_proxy_with_contact_fqdn(lab_certs) -> None:
    lab = build(lab_certs)
    assert await lab.start(settle_timeout_s=10) == []
    await pstn_wait(lab, 1.0)
    for name in ("sip", "sip2", "sip3"):
        options = lab.node(name).options
        assert options, name
        assert str(options[0].contacts[0].uri) == "sip:sbc1.contoso.com:5061;transport=tls"
    await lab.stop()


@pytest.mark.sim
async def test_inbound_pstn_call_reaches_sip_in_e164_and_the_answer_goes_back(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    pstn, sip = lab.node("pstn"), lab.node("sip")
    call = await pstn.call("4255550199", "2065550201")
    assert (call.status, call.state) == (200, "answered")
    assert 180 in call.provisional
    invite = sip.invites[-1]
    assert invite.uri_text == "sip:+12065550201@sip.pstnhub.microsoft.com:5061;user=phone"
    assert invite.from_.uri.user == "+14255550199"
    assert str(invite.contacts[0].uri).startswith("sip:+14255550199@sbc1.contoso.com:5061")
    assert await call.hangup() == 200  # the SBC answered the BYE
    assert await call.hangup() is None  # already ended
    await pstn_wait(lab)
    assert len(sip.byes) == 1
    sbc = lab.node("sbc1")
    assert [(c.direction, c.path, c.successful) for c in sbc.cdrs] == [("inbound", "cloud", True)]
    await lab.stop()


async def pstn_wait(lab, seconds: float = 2.0) -> None:
    await asyncio.sleep(seconds)


@pytest.mark.sim
async def test_blackholed_sip_sends_the_call_to_sip2(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    lab.link("dc-sip").blackhole()
    call = await lab.node("pstn").call("4255550199", "2065550201")
    assert call.status == 200
    assert lab.node("sip2").invites and not lab.node("sip").invites
    failover = lab.events.select("sbc.failover")
    assert failover[0]["from_"] == "sip.pstnhub.microsoft.com" and failover[0]["to"] == "sip2.pstnhub.microsoft.com"
    assert lab.node("sbc1").proxy_state["sip.pstnhub.microsoft.com"].up is False
    await lab.stop()


@pytest.mark.sim
async def test_503_with_retry_after_moves_to_the_next_proxy_and_skips_it_for_that_long(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    lab.node("sip").mode = "503-retry"
    pstn = lab.node("pstn")
    first = await pstn.call("4255550199", "2065550201")
    assert first.status == 200 and len(lab.node("sip").invites) == 1 and len(lab.node("sip2").invites) == 1
    await first.hangup()
    second = await pstn.call("4255550199", "2065550201")
    assert second.status == 200 and len(lab.node("sip").invites) == 1  # skipped: Retry-After 30
    await lab.stop()


@pytest.mark.sim
async def test_a_final_answer_other_than_503_retry_after_is_relayed(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    lab.node("sip").mode = "404"
    call = await lab.node("pstn").call("4255550199", "2065550999")
    assert call.status == 404 and not lab.node("sip2").invites
    await lab.stop()


@pytest.mark.sim
async def test_no_proxy_reachable_sends_inbound_calls_to_the_co_located_sba(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    lab.link("wan").down()
    call = await lab.node("pstn").call("4255550199", "2065550201")
    assert call.status == 200
    assert lab.node("sba1").invites[-1].uri_text.startswith("sip:+12065550201@sba1.contoso.com")
    sbc = lab.node("sbc1")
    assert sbc.cdrs == [] and [c.path for c in sbc.calls] == ["sba"]  # in progress: no record yet
    await call.hangup()
    await pstn_wait(lab)
    assert sbc.cdrs[-1].path == "sba"
    await lab.stop()


@pytest.mark.sim
async def test_outbound_call_from_teams_reaches_the_carrier_in_10_digits(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    response, dialog = await lab.node("sip").call("+14255550199")
    assert response.status == 200
    far = lab.node("pstn").received[-1]
    assert far.request.uri.user == "4255550199" and far.caller == "2065550201" and far.state == "answered"
    hold = await lab.node("sip").in_dialog(dialog, "HOLD")
    assert hold.status == 200
    await pstn_wait(lab)
    assert far.holds == ["sendonly"]
    bye = await lab.node("sip").in_dialog(dialog, "BYE")
    assert bye.status == 200
    await pstn_wait(lab)
    assert far.state == "ended" and far.ended_by == "peer"
    await lab.stop()


@pytest.mark.sim
async def test_busy_far_end_is_relayed_to_teams(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    response, _ = await lab.node("sip").call("+14255550166")
    assert response.status == 486
    assert lab.node("sbc1").cdrs[-1].result.ms_code == 560486
    await lab.stop()


@pytest.mark.sim
async def test_session_limit_refuses_with_503(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    sip = lab.node("sip")
    first, _ = await sip.call("+14255550199")
    second, _ = await sip.call("+14255550199")
    third, _ = await sip.call("+14255550199")
    assert (first.status, second.status, third.status) == (200, 200, 503)
    assert len(lab.node("pstn").received) == 2
    await lab.stop()


@pytest.mark.sim
async def test_teams_side_calls_only_from_a_proxy_or_our_own_sba(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    response, _ = await lab.node("sba1").call("+14255550199")
    assert response.status == 200
    await lab.stop()
    # the same SBA, no longer co-located with this SBC: its certificate names no peer the SBC knows
    lab = build(lab_certs, text=LAB.replace(", sba: sba1", ""))
    await lab.start(settle_timeout_s=10)
    response, _ = await lab.node("sba1").call("+14255550199")
    assert response.status == 403
    assert lab.node("pstn").received == []
    assert lab.events.select("sbc.refused")
    await lab.stop()


@pytest.mark.sim
async def test_over_max_call_setups_a_new_invite_gets_503_with_retry_after_and_no_call(lab_certs) -> None:
    lab = build(lab_certs, settings={"max_call_setups": 1, "overload_retry_after_s": 2})
    await lab.start(settle_timeout_s=10)
    sip, sbc = lab.node("sip"), lab.node("sbc1")
    ringing = sip.invite("+14255550177")  # the far end rings: the call stays in setup
    await settle()
    refused = await sip.invite("+14255550199").final()
    assert (refused.status, refused.headers.get("Retry-After")) == (503, "2")
    assert len(sbc.calls) == 1 and sbc.cdrs == []  # the refused INVITE left no call and no record
    assert len(lab.node("pstn").received) == 1
    [overloaded] = lab.events.select("call.overloaded", node="sbc1")
    assert (overloaded["setups"], overloaded["limit"], overloaded["retry_after"]) == (1, 1, 2)
    ringing.cancel()
    assert (await ringing.final()).status == 487
    admitted, _ = await sip.call("+14255550199")  # the setup ended: the next call is taken
    assert admitted.status == 200
    await lab.stop()


@pytest.mark.sim
async def test_a_finished_call_leaves_the_sbcs_call_table_once_its_record_is_written(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    sip, sbc = lab.node("sip"), lab.node("sbc1")
    _, dialog = await sip.call("+14255550199")
    assert dialog is not None and len(sbc.calls) == 1 and sbc.active_calls == 1
    assert (await sip.in_dialog(dialog, "BYE")).status == 200
    await settle()
    assert len(sbc.calls) == 0 and [c.end_reason for c in sbc.cdrs] == ["normal"]
    assert (await sip.in_dialog(dialog, "OPTIONS")).status == 481  # its dialog is gone with it
    await lab.stop()


def _with_location(sdp: bytes) -> tuple[str, bytes]:
    document = pidf_lo("pres:carol@contoso.com", {"country": "US", "A3": "Seattle"})
    return multipart_mixed([BodyPart("application/sdp", sdp), BodyPart(PIDF_CONTENT_TYPE, document, "loc@sip")],
                           "b0und")


@pytest.mark.sim
async def test_a_withheld_identity_goes_on_to_the_carrier_as_rfc_3325_asks(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    response, _ = await lab.node("sip").call("+14255550199", from_=ANONYMOUS_FROM, asserted="+12065550201",
                                             headers=(("Privacy", "id"),))
    assert response.status == 200
    far = lab.node("pstn").received[-1]
    assert far.caller == "anonymous" and far.request.headers.get("Privacy") == "id"
    assert far.request.headers.get("P-Asserted-Identity") == "<sip:2065550201@sbc1.contoso.com;user=phone>"
    assert list(lab.node("sbc1").calls)[-1].caller == "+12065550201"  # the SBC's own record keeps the caller
    await lab.stop()


@pytest.mark.sim
async def test_an_invite_read_with_a_backlog_on_the_udp_trunk_gets_503_with_retry_after(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    sbc = lab.node("sbc1")
    limit = lab.settings.overload_queue_bytes
    sbc._ep.udp_queued_octets = lambda: limit  # what the kernel would say behind a burst (the sim has no kernel)
    call = await lab.node("pstn").call("4255550199", "2065550201")
    assert call.status == 503 and len(sbc.calls) == 0 and sbc.cdrs == []
    [overloaded] = lab.events.select("call.overloaded", node="sbc1")
    assert (overloaded["queued"], overloaded["setups"]) == (limit, 0)
    await lab.stop()


@pytest.mark.sim
async def test_an_emergency_location_stays_at_the_sbc_and_the_carrier_gets_the_sdp(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    response, _ = await lab.node("sip").call("+14255550199", body=_with_location,
                                             headers=(("Geolocation", "<cid:loc@sip>"),))
    assert response.status == 200
    far = lab.node("pstn").received[-1]
    assert far.request.content_type == "application/sdp" and "Geolocation" not in far.request.headers
    await lab.stop()


@pytest.mark.sim
async def test_a_multipart_body_without_its_boundary_is_refused_with_400(lab_certs) -> None:
    lab = build(lab_certs)
    await lab.start(settle_timeout_s=10)
    response, _ = await lab.node("sip").call("+14255550199", body=lambda sdp: ("multipart/mixed", sdp))
    assert response.status == 400 and "boundary" in response.reason
    assert not lab.node("pstn").received
    await lab.stop()
