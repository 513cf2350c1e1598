"""Emergency calls and caller ID through the cloud, on the Contoso lab: a 911 call from the
Seattle site reaches the branch SBC with the caller's location (PIDF-LO), and a withheld caller ID
reaches the carrier as RFC 3325 asks."""

from __future__ import annotations

import pytest

from simulator.sip import parse_message
from simulator.sip.geolocation import PIDF_CONTENT_TYPE, body_parts, civic_address, part_of
from tests.e2e.helpers import events, received_by, run_contoso

pytestmark = pytest.mark.e2e


def test_911_from_the_seattle_site_reaches_the_branch_sbc_with_pidf_lo_and_the_psap_answers(lab_certs) -> None:
    async def scenario(lab) -> None:
        call = await lab.client("carol@contoso.com").place_call("911")
        assert (call.status, call.registrar) == (200, "sip.pstnhub.microsoft.com")
        [decision] = [e for e in events(lab, "route.decision", node="sip") if e["dialed"] == "911"]
        assert decision["emergency"] is True and decision["normalized"] == "911"
        [received] = received_by(lab, "sbc-sea", "INVITE")
        invite = parse_message(received["message"].encode())
        assert invite.uri.user == "911" and invite.headers.get("Geolocation").startswith("<cid:")
        pidf = part_of(body_parts(invite.headers.get("Content-Type"), invite.body), PIDF_CONTENT_TYPE)
        assert pidf is not None and pidf.content_id == invite.headers.get("Geolocation")[5:-1]
        assert civic_address(pidf.body) == {"country": "US", "A1": "WA", "A3": "Seattle", "RD": "Pike", "STS": "St",
                                            "HNO": "1", "LOC": "Floor 3", "NAM": "Contoso", "PC": "98101"}
        [psap] = lab.node("pstn-sea").calls_to("911")
        assert psap.state == "answered" and psap.caller == "2065550201"  # the caller's own number
        assert psap.request.content_type == "application/sdp"  # the location stays at the SBC
        await call.hangup()
    run_contoso(lab_certs, scenario)


def test_a_withheld_caller_id_reaches_the_carrier_anonymous_with_privacy_id(lab_certs) -> None:
    async def scenario(lab) -> None:
        call = await lab.client("dave@contoso.com").place_call("2065550100")
        assert call.status == 200
        [far] = lab.node("pstn-sea").calls_to("2065550100")
        assert far.caller == "anonymous" and far.request.headers.get("Privacy") == "id"
        assert far.request.headers.get("P-Asserted-Identity").startswith("<sip:2065550202@")
        [started] = events(lab, "call.started", node="sbc-sea")
        assert started["caller"] == "+12065550202"  # the SBC still knows who called
        await call.hangup()
    run_contoso(lab_certs, scenario)
