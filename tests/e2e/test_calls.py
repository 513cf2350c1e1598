"""Calls through the cloud: Teams client -> Teams proxy -> SBC -> PSTN carrier, and back."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.helpers import events, far_end_calls, received_by, run_contoso, wait_until

pytestmark = pytest.mark.e2e


def test_outbound_pstn_call_reaches_the_carrier_as_it_writes_numbers(lab_certs) -> None:
    async def scenario(lab) -> None:
        call = await lab.client("alice@contoso.com").place_call("4255550199")
        assert (call.status, call.state, call.registrar) == (200, "answered", "sip.pstnhub.microsoft.com")
        [far] = far_end_calls(lab)
        # Redmond 1 -> sbc1 or sbc2 (Fisher-Yates); the HQ carrier PoP answered
        assert far.sbc in ("sbc1.contoso.com", "sbc2.contoso.com") and far.pstn.spec.name == "pstn-hq"
        # the HQ SBCs have ForwardPai: the From is anonymous and the identity is asserted, with
        # alice's caller ID policy's main number, in the carrier's format (RFC 3325) [S4]
        assert (far.callee, far.caller, far.state) == ("4255550199", "anonymous", "answered")
        assert far.request.headers.get("P-Asserted-Identity").startswith("<sip:4255550100@")
        assert far.request.headers.get("Privacy") == "id"
        assert far.request.uri.user == "4255550199"  # the SBC's manipulation, as the carrier saw it
        sbc = far.sbc.split(".")[0]
        [teams_invite] = received_by(lab, sbc, "INVITE")
        assert teams_invite["transport"] == "tls" and "+14255550199" in teams_invite["summary"]
        await call.hangup()
        assert await far.wait_ended(timeout=5) and far.ended_by == "peer"
        [cdr] = lab.node(sbc).cdrs
        assert (cdr.direction, cdr.path, cdr.successful, cdr.callee) == ("outbound", "cloud", True, "+14255550199")
    run_contoso(lab_certs, scenario)


def test_inbound_pstn_call_rings_the_users_client(lab_certs) -> None:
    async def scenario(lab) -> None:
        pstn = lab.node("pstn-hq")
        call = await pstn.call("4255550199", "4255550101", via="sbc1.contoso.com")
        assert (call.status, call.state) == (200, "answered")
        assert 180 in call.provisional
        incoming = await asyncio.wait_for(lab.client("alice@contoso.com").next_incoming_call(), 1)
        assert incoming.state == "answered" and incoming.registrar == "sip.pstnhub.microsoft.com"
        # the SBC gave Teams E.164 numbers (reverse number lookup needs the +)
        [to_teams] = [e for e in events(lab, "sip.sent", node="sbc1") if e["summary"].startswith("INVITE ")]
        assert to_teams["summary"].startswith("INVITE sip:+14255550101@sip.pstnhub.microsoft.com")
        await call.hangup()
        await wait_until(lambda: incoming.state == "ended", 5)
        assert incoming.state == "ended"
        assert [c.path for c in lab.node("sbc1").cdrs] == ["cloud"]
    run_contoso(lab_certs, scenario)


def test_inbound_call_to_a_number_nobody_has_gets_404(lab_certs) -> None:
    async def scenario(lab) -> None:
        call = await lab.node("pstn-hq").call("4255550199", "4255550999", via="sbc1.contoso.com")
        assert call.status == 404
    run_contoso(lab_certs, scenario)


def test_hold_and_resume_reach_the_far_end(lab_certs) -> None:
    async def scenario(lab) -> None:
        call = await lab.client("bob@contoso.com").place_call("4255550199")
        assert call.status == 200
        [far] = far_end_calls(lab)
        assert await call.hold() == 200
        assert await call.resume() == 200
        assert far.holds == ["sendonly", "sendrecv"]
        await call.hangup()
    run_contoso(lab_certs, scenario)


def test_each_b2bua_takes_a_hop_and_an_invite_out_of_hops_gets_483(lab_certs) -> None:
    # RFC 7332 §3: a routing loop through B2BUAs ends when Max-Forwards runs out.
    async def scenario(lab) -> None:
        pstn = lab.node("pstn-hq")
        call = await pstn.call("4255550199", "4255550101", via="sbc1.contoso.com", max_forwards=3)
        assert call.status == 200
        incoming = await asyncio.wait_for(lab.client("alice@contoso.com").next_incoming_call(), 1)
        assert incoming.invite.max_forwards == 1  # the SBC and the proxy took one each
        await call.hangup()
        for hops_left, refused_at in ((1, "sip"), (0, "sbc1")):
            call = await pstn.call("4255550199", "4255550101", via="sbc1.contoso.com", max_forwards=hops_left)
            assert (call.status, call.state) == (483, "failed")
            assert events(lab, "sip.too_many_hops")[-1]["node"] == refused_at
        assert len(events(lab, "sip.too_many_hops")) == 2
    run_contoso(lab_certs, scenario)
