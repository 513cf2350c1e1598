"""Calls through the Teams SIP proxy: registration, inbound (RNL, 404/480, delivery), outbound
(routing, failover on a code and on FailoverTimeSeconds, drain, session limit, ForwardPai,
datacenter retry), and the SBA services — all on the sim network with real TLS."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest

from simulator.endpoint import Target
from simulator.roles.cdr import CallPath, CdrDraft, Direction, result_for
from simulator.roles.token import Token
from simulator.sip.dialog import Dialog
from simulator.sip.geolocation import body_parts, civic_address, part_of
from simulator.sip.sdp import SessionDescription
from simulator.tenant.model import (
    CallingLineIdentity,
    EmergencyCallRoutingPolicy,
    EmergencyNumber,
    LisCivicAddress,
    LisLocation,
    NetworkSite,
    Tenant,
    VoiceRoute,
)
from tests.roles.test_teams_proxy import (
    ALICE,
    BOB,
    SBA,
    SBC1,
    SBC2,
    SIP,
    Peer,
    World,
    make_tenant,
    options_to,
    sdp_answer,
    sim,
)


def answers(status: int, *, ring: bool = True, delay: float = 0.0, reason: str | None = None):
    """An INVITE handler for a fake peer: optionally 180, wait, then `status` (200 with an SDP answer)."""
    async def handler(incoming: Any) -> None:
        if ring:
            incoming.respond(180)
        if delay:
            await asyncio.sleep(delay)
        if incoming.cancelled:
            return
        if status == 200:
            host = incoming.endpoint.host
            request = incoming.request
            offer = part_of(body_parts(request.headers.get("Content-Type"), request.body), "application/sdp")
            incoming.respond(200, contact=f"<sip:{host}:5061;transport=tls>",
                             body=sdp_answer(offer.body, incoming.endpoint.address),
                             content_type="application/sdp")
        else:
            incoming.respond(status, reason)
    return handler


def silent(incoming: Any) -> Any:
    """Trying only, then nothing: a gateway too slow for FailoverTimeSeconds."""
    async def handler() -> None:
        incoming.respond(100)
    return handler()


def got(w: World, node: str, method: str) -> list[dict[str, Any]]:
    """What `node` received on the wire (the endpoint answers CANCEL itself: no handler sees it)."""
    return [r for r in w.events.select("sip.received", node=node) if r["summary"].startswith(method + " ")]


def cdrs(w: World) -> list[dict[str, Any]]:
    return w.events.select("cdr.record")


# --- registration --------------------------------------------------------------------------------------

def test_register_needs_a_valid_token_and_binds_the_connection(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        alice = await w.client(ALICE)
        assert (await alice.register(token=None)).status == 401
        expired = Token.issue(ALICE, w.now - 7200, 3600).header()
        assert (await alice.register(token=expired)).status == 401
        assert [r["status"] for r in w.events.select("registrar.refused")] == [401, 401]
        resp = await alice.register()
        assert resp.status == 200 and resp.headers.get("Expires") == "600"
        [bound] = w.events.select("registrar.bound", user=ALICE)
        assert bound["contact"].startswith("sip:alice@alice-pc.contoso.com")
        assert len(w.cloud.registrations_of(ALICE, w.now)) == 1
        for conn in list(alice.ep.connections.values()):
            conn.close("client quit")
        await asyncio.sleep(1)
        assert w.cloud.registrations_of(ALICE, w.now) == []  # a closed connection unbinds
        assert w.events.select("registrar.unbound", user=ALICE)

    sim(pki, body)


def test_keepalive_options_answered(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        alice = await w.client(ALICE)
        resp = await alice.request("OPTIONS", f"sip:{SIP}", alice.target()).final()
        assert resp.status == 200

    sim(pki, body)


# --- inbound: PSTN -> Teams -------------------------------------------------------------------------------

def inbound(sbc: Peer, number: str, caller: str = "2065550199") -> Any:
    """The SBC sends an INVITE to sip for `number` (10 digits: sbc1's AddPlus1 makes it E.164)."""
    return sbc.request("INVITE", f"sip:{number}@{SIP}:5061;user=phone", Target(SIP, 5061, "tls"),
                       from_user=caller, body=b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\n"
                       b"t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", content_type="application/sdp")


def test_inbound_unknown_number_is_404_with_rnl_result_code(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        resp = await inbound(sbc, "4255550199").final()
        assert resp.status == 404
        [cdr] = cdrs(w)
        assert (cdr["callee"], cdr["result"]["ms_code"], cdr["direction"]) == ("+14255550199", 511404, "inbound")

    sim(pki, body)


def test_inbound_user_without_signed_in_client_is_480(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        resp = await inbound(sbc, "4255550102").final()  # bob, never signed in
        assert resp.status == 480
        assert cdrs(w)[0]["user"] == BOB

    sim(pki, body)


def test_inbound_call_delivered_to_the_signed_in_client_and_hung_up(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        alice = await w.client(ALICE)
        await alice.register()
        alice.invite_handler = answers(200, delay=2)
        provisional: list[int] = []
        tx = inbound(sbc, "4255550101")
        tx.on_provisional = lambda r: provisional.append(r.status)
        resp = await tx.final()
        # the client's SDP answer, through the media processor: the gateway has no media bypass
        assert resp.status == 200 and b"m=audio 49152" in resp.body
        assert any("m=audio 41000" in r["message"] for r in w.events.select("sip.sent", node="alice-pc"))
        assert 180 in provisional
        [invite] = alice.received("INVITE")
        assert "2065550199@" in invite.headers.get("From")  # the caller as the SBC sent it (no inbound PSTN rule)
        assert [r["event"] for r in w.events.select("call.")][:3] == ["call.started", "call.ringing", "call.answered"]
        # the SBC hangs up: the client gets a BYE, the CDR is the answered one
        dialog = Dialog.from_uac_response(tx.request, resp, local_contact=f"<sip:{SBC1}:5061;transport=tls>",
                                          sent_by=SBC1, transport="TLS")
        sbc.ep.send_ack(dialog.create_ack(1, sbc.ep.rng), Target(SIP, 5061, "tls"))
        await asyncio.sleep(20)  # these fake peers send no RTP: within media_inactivity_timeout_s
        bye = dialog.create_request("BYE", sbc.ep.rng)
        assert (await sbc.ep.request(bye, Target(SIP, 5061, "tls")).final()).status == 200
        await asyncio.sleep(1)
        assert alice.received("BYE")
        [cdr] = cdrs(w)
        assert cdr["result"]["ms_code"] == 540000 and cdr["answer_at"] is not None
        assert cdr["end_at"] - cdr["answer_at"] == pytest.approx(20, abs=0.5)

    sim(pki, body)


# --- outbound: Teams -> PSTN --------------------------------------------------------------------------------

async def signed_in(w: World, upn: str = ALICE) -> Any:
    client = await w.client(upn)
    assert (await client.register()).status == 200
    return client


def attempts(w: World) -> list[tuple[str, str]]:
    return [(r["gateway"], r["outcome"]) for r in w.events.select("route.attempt")]


def test_outbound_call_fails_over_on_503_to_the_next_gateway(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1, sbc2 = await w.sbc(SBC1), await w.sbc(SBC2)
        sbc1.invite_handler = answers(503, ring=False)
        sbc2.invite_handler = answers(200)
        alice = await signed_in(w)
        resp = await alice.call("+12065550123").final()
        assert resp.status == 200
        [decision] = w.events.select("route.decision")
        assert decision["gateways"] == [SBC1, SBC2] and decision["normalized"] == "+12065550123"
        assert attempts(w) == [(SBC1, "failover"), (SBC2, "answered")]
        assert sbc1.received("INVITE")[0].uri_text.startswith(f"sip:+12065550123@{SBC1}")
        assert sbc2.received("INVITE")[0].uri_text.startswith(f"sip:2065550123@{SBC2}")  # StripPlus1 on sbc2

    sim(pki, body)


def test_outbound_final_error_not_in_failover_codes_ends_the_call(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1, sbc2 = await w.sbc(SBC1), await w.sbc(SBC2)
        sbc1.invite_handler = answers(486, ring=False)
        alice = await signed_in(w)
        resp = await alice.call("+12065550123").final()
        assert resp.status == 486
        assert sbc2.received("INVITE") == []
        [cdr] = cdrs(w)
        assert (cdr["result"]["ms_code"], cdr["gateway"]) == (560486, SBC1)  # [S11]: 560 + SBC's code

    sim(pki, body)


def test_outbound_failover_after_failover_time_seconds_cancels_the_slow_gateway(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1, sbc2 = await w.sbc(SBC1), await w.sbc(SBC2)
        sbc1.invite_handler = silent
        sbc2.invite_handler = answers(200)
        alice = await signed_in(w)
        t0 = w.now
        resp = await alice.call("+12065550123").final()
        assert resp.status == 200
        invite2_at = next(r["t"] for r in w.events.select("sip.received", node="sbc2") if "INVITE" in r["summary"])
        assert invite2_at - t0 == pytest.approx(10, abs=0.5)  # FailoverTimeSeconds default 10 [S4]
        assert got(w, "sbc1", "CANCEL")
        assert attempts(w) == [(SBC1, "failover"), (SBC2, "answered")]

    sim(pki, body)


def test_outbound_all_gateways_time_out_gives_408_with_failover_timer_code(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        for fqdn in (SBC1, SBC2):
            (await w.sbc(fqdn)).invite_handler = silent
        alice = await signed_in(w)
        resp = await alice.call("+12065550123").final()
        assert resp.status == 408
        assert cdrs(w)[0]["result"]["ms_code"] == 500001  # [S11]

    sim(pki, body)


def test_no_failover_by_code_after_ringing(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1, sbc2 = await w.sbc(SBC1), await w.sbc(SBC2)
        sbc1.invite_handler = answers(503, ring=True, delay=1)
        alice = await signed_in(w)
        rings: list[int] = []
        resp = await alice.call("+12065550123", on_provisional=lambda r: rings.append(r.status)).final()
        assert resp.status == 503 and 180 in rings and sbc2.received("INVITE") == []

    sim(pki, body)


def test_disabled_gateway_gets_no_new_calls(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1, sbc2 = await w.sbc(SBC1), await w.sbc(SBC2)
        alice = await signed_in(w)
        sbc2.invite_handler = answers(200)
        resp = await alice.call("+12065550123").final()
        assert resp.status == 200 and sbc1.received("INVITE") == []
        assert "disabled" in [r["state"] for r in w.events.select("gateway.health", gateway=SBC1)]

    sim(pki, body, tenant=make_tenant(**{SBC1: {"enabled": False}}))


def test_no_route_is_404(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        alice = await signed_in(w)
        resp = await alice.call("+441632960000").final()  # no +44 route
        assert resp.status == 404
        assert cdrs(w)[0]["result"]["ms_code"] == 599404

    sim(pki, body)


def test_forward_pai_adds_p_asserted_identity_and_privacy(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1 = await w.sbc(SBC1)
        sbc1.invite_handler = answers(200)
        alice = await signed_in(w)
        assert (await alice.call("+12065550123").final()).status == 200
        [invite] = sbc1.received("INVITE")
        assert invite.headers.get_all("P-Asserted-Identity") == ["<tel:+14255550101>", f"<sip:{ALICE}>"]
        assert invite.headers.get("Privacy") == "id"
        assert "anonymous" in invite.headers.get("From").lower()  # RFC 3325/5379, as [S4] documents

    sim(pki, body, tenant=make_tenant(**{SBC1: {"forward_pai": True}}))


def test_without_forward_pai_from_carries_the_caller(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1 = await w.sbc(SBC1)
        alice = await signed_in(w)
        assert (await alice.call("+12065550123").final()).status == 200
        [invite] = sbc1.received("INVITE")
        assert "P-Asserted-Identity" not in invite.headers and "+14255550101@" in invite.headers.get("From")

    sim(pki, body)


def test_hard_session_limit_answers_503_and_alerts_at_90_percent(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        for fqdn in (SBC1, SBC2):
            (await w.sbc(fqdn)).invite_handler = answers(200)
        alice = await signed_in(w)
        first = await alice.call("+12065550123").final()
        second = await alice.call("+12065550124").final()
        third = await alice.call("+12065550125").final()
        assert (first.status, second.status, third.status) == (200, 200, 503)
        assert [r["gateway"] for r in w.events.select("gateway.sessions_alert")] == [SBC1, SBC2]
        assert {r["gateway"] for r in w.events.select("gateway.sessions_rejected")} == {SBC1, SBC2}
        assert cdrs(w)[-1]["result"]["ms_code"] == 599513

    limited = make_tenant(**{SBC1: {"max_concurrent_sessions": 1}, SBC2: {"max_concurrent_sessions": 1}})
    sim(pki, body, tenant=limited, max_sessions_enforced=True)


def test_session_limit_only_alerts_by_default(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        (await w.sbc(SBC1)).invite_handler = answers(200)
        alice = await signed_in(w)
        statuses = [(await alice.call(f"+1206555012{i}").final()).status for i in range(2)]
        assert statuses == [200, 200]  # Microsoft documents only the alert [S4]
        assert [r["concurrent"] for r in w.events.select("gateway.sessions_alert")] == [1]

    sim(pki, body, tenant=make_tenant(**{SBC1: {"max_concurrent_sessions": 1}}))


def test_unreachable_gateway_is_retried_from_another_datacenter(pki):
    async def body(w: World) -> None:
        await w.start()
        sbc1 = await w.sbc(SBC1)
        sbc1.invite_handler = answers(200)
        alice = await signed_in(w)
        w.net.link("wan-sip").down()  # sip cannot reach the SBC; sip2 can
        resp = await alice.call("+12065550123").final()
        assert resp.status == 200
        assert [(r["datacenter"], r["outcome"]) for r in w.events.select("route.attempt")] == [
            ("sip", "network"), ("sip2", "answered")]
        assert sbc1.received("INVITE")[0].headers.get("Contact").startswith(f"<sip:{'sip2.pstnhub.microsoft.com'}")

    sim(pki, body, datacenters=True)


def test_call_to_another_teams_users_number_rings_that_user(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1 = await w.sbc(SBC1)
        alice, bob = await signed_in(w, ALICE), await signed_in(w, BOB)
        bob.invite_handler = answers(200)
        resp = await alice.call("+14255550102").final()
        assert resp.status == 200 and bob.received("INVITE") and sbc1.received("INVITE") == []
        assert w.events.select("route.decision") == []

    sim(pki, body)


def test_caller_cancel_stops_the_gateway_attempt(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1 = await w.sbc(SBC1)
        sbc1.invite_handler = answers(200, delay=30)
        alice = await signed_in(w)
        tx = alice.call("+12065550123")
        await asyncio.sleep(3)
        tx.cancel()
        assert (await tx.final()).status == 487
        await asyncio.sleep(1)
        assert got(w, "sbc1", "CANCEL")
        assert cdrs(w)[0]["result"]["ms_code"] == 599487

    sim(pki, body)


# --- the SBA services -------------------------------------------------------------------------------------

async def sba_client(w: World) -> Any:
    return await w.client("sba@contoso.com", host=SBA)


def test_sync_payload_served_and_unlisted_sba_refused(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sba = await sba_client(w)

        def sync(fqdn: str) -> Any:
            return sba.request("MESSAGE", "sip:sba-sync@pstnhub.microsoft.com", sba.target(),
                               body=json.dumps({"sba": fqdn, "have_version": 0}).encode(),
                               content_type="application/vnd.drlab.sba-sync+json").final()

        resp = await sync(SBA)
        assert resp.status == 200
        config = json.loads(resp.body)
        assert [u["upn"] for u in config["users"]] == ["carol@contoso.com"]
        assert (await sync("sba9.contoso.com")).status == 403
        assert [r["event"] for r in w.events.select("cloud.sync")] == ["cloud.sync_served", "cloud.sync_refused"]

    sim(pki, body)


def test_cdr_upload_is_idempotent_over_the_wire(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sba = await sba_client(w)
        cdr = CdrDraft("c1", "+12065550201", "+14255550123", Direction.OUTBOUND, CallPath.SBA, SBA, 1.0
                       ).finish(2.0, result_for("caller_cancelled"))
        payload = json.dumps({"cdrs": [cdr.to_dict()]}).encode()

        def upload() -> Any:
            return sba.request("MESSAGE", "sip:sba-cdr@pstnhub.microsoft.com", sba.target(), body=payload,
                               content_type="application/vnd.drlab.cdr+json").final()

        for _ in range(2):
            resp = await upload()
            assert resp.status == 200 and json.loads(resp.body) == {"accepted": [f"{SBA}:c1"]}
        assert list(w.cloud.cdrs.records) == [f"{SBA}:c1"]
        assert [r["new"] for r in w.events.select("cloud.cdr_upload")] == [1, 0]

    sim(pki, body)


# --- in-dialog: hold / resume, hang-up from the Teams side, cancel from the PSTN side ------------------------

def test_hold_and_resume_relayed_to_the_gateway_then_client_hangs_up(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1 = await w.sbc(SBC1)
        alice = await signed_in(w)
        tx = alice.call("+12065550123")
        resp = await tx.final()
        assert resp.status == 200
        dialog = Dialog.from_uac_response(tx.request, resp, local_contact=f"<sip:alice@{alice.fqdn};transport=tls>",
                                          sent_by=alice.fqdn, transport="TLS")
        dialog.local_sdp = SessionDescription.parse(tx.request.body)
        alice.ep.send_ack(dialog.create_ack(1, alice.ep.rng), alice.target())
        for make in (dialog.create_hold, dialog.create_resume):
            reinvite = make(alice.ep.rng)
            answer = await alice.ep.request(reinvite, alice.target()).final()
            assert answer.status == 200
            dialog.receive_response(answer)
            alice.ep.send_ack(dialog.create_ack(reinvite.cseq.seq, alice.ep.rng), alice.target())
            await asyncio.sleep(5)
        reinvites = [r for r in sbc1.received("INVITE") if r.to.tag]
        assert [SessionDescription.parse(r.body).is_hold for r in reinvites] == [True, False]
        assert [r["event"] for r in w.events.select("call.") if r["event"] in ("call.held", "call.resumed")] == [
            "call.held", "call.resumed"]
        bye = dialog.create_request("BYE", alice.ep.rng)
        assert (await alice.ep.request(bye, alice.target()).final()).status == 200
        await asyncio.sleep(1)
        assert sbc1.received("BYE")
        [cdr] = cdrs(w)
        assert (cdr["gateway"], cdr["result"]["ms_code"], cdr["direction"]) == (SBC1, 540000, "outbound")
        assert w.cloud.sessions.active.get(SBC1) == 0  # the session is released

    sim(pki, body)


def test_pstn_caller_cancel_cancels_the_ringing_clients(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        alice = await signed_in(w)
        alice.invite_handler = answers(200, delay=60)
        tx = inbound(sbc, "4255550101")
        await asyncio.sleep(2)
        tx.cancel()
        assert (await tx.final()).status == 487
        await asyncio.sleep(1)
        assert got(w, "alice-pc", "CANCEL")
        assert cdrs(w)[0]["result"]["ms_code"] == 599487

    sim(pki, body)


def test_client_busy_is_relayed_to_the_gateway_with_a_client_result_code(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        alice = await signed_in(w)
        alice.invite_handler = answers(486, ring=True)
        assert (await inbound(sbc, "4255550101").final()).status == 486
        assert cdrs(w)[0]["result"]["ms_code"] == 598486

    sim(pki, body)


def test_register_with_expires_zero_unbinds(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        alice = await signed_in(w)
        assert (await alice.register(expires=0)).status == 200
        assert w.cloud.registrations_of(ALICE, w.now) == []
        assert [r["reason"] for r in w.events.select("registrar.unbound")] == ["expires=0"]

    sim(pki, body)


def test_registration_lapses_after_its_expiry(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        alice = await w.client(ALICE)
        assert (await alice.register(expires=60)).status == 200
        await asyncio.sleep(61)  # never refreshed
        assert (await inbound(sbc, "4255550101").final()).status == 480

    sim(pki, body)


def test_demoted_gateway_is_tried_last(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1, sbc2 = await w.sbc(SBC1), await w.sbc(SBC2)
        assert (await options_to(sbc1)).status == 200
        for _ in range(6):  # sbc2 keeps sending OPTIONS every minute, sbc1 went silent
            assert (await options_to(sbc2)).status == 200
            await asyncio.sleep(60)
        assert w.events.select("gateway.health", gateway=SBC1, state="demoted")
        alice = await signed_in(w)
        assert (await alice.call("+12065550123").final()).status == 200
        [decision] = w.events.select("route.decision")
        assert decision["gateways"] == [SBC2, SBC1]  # Primary's sbc1 is demoted: after Backup's sbc2 [S8]
        assert sbc1.received("INVITE") == [] and sbc2.received("INVITE")

    sim(pki, body)


async def alice_answers_a_pstn_call(w: World) -> tuple[Any, Any, Any, Any, Any, str]:
    """sbc1 calls alice, she answers: (sbc1, alice, the INVITE tx, sbc1's dialog, alice's dialog, her tag)."""
    await w.start(SIP)
    sbc1 = await w.sbc(SBC1)
    alice = await signed_in(w)
    answered: list[Any] = []

    async def alice_answers(incoming: Any) -> None:
        answered.append(incoming.request)
        await answers(200, ring=False)(incoming)

    alice.invite_handler = alice_answers
    tx = inbound(sbc1, "4255550101")
    resp = await tx.final()
    assert resp.status == 200
    pstn = Dialog.from_uac_response(tx.request, resp, local_contact=f"<sip:{SBC1}:5061;transport=tls>",
                                    sent_by=SBC1, transport="TLS")
    sbc1.ep.send_ack(pstn.create_ack(1, sbc1.ep.rng), Target(SIP, 5061, "tls"))
    # alice's side of the call, as her client sees it (she is the UAS of the INVITE she answered)
    [invite] = answered
    [sent_200] = [r for r in w.events.select("sip.sent", node="alice-pc") if r["summary"].startswith("200")]
    tag = sent_200["message"].split("To: ")[1].split("tag=")[1].split("\r\n")[0]
    mine = Dialog.from_uas_request(invite, tag, local_contact=f"<sip:alice@{alice.fqdn};transport=tls>",
                                   sent_by=alice.fqdn, transport="TLS")
    mine.confirm()
    return sbc1, alice, tx, pstn, mine, tag


def test_blind_transfer_of_a_pstn_caller_to_a_pstn_number(pki):
    async def body(w: World) -> None:
        sbc1, alice, tx, pstn, mine, tag = await alice_answers_a_pstn_call(w)
        refer = mine.create_request("REFER", alice.ep.rng, extra_headers=[
            ("Refer-To", "<sip:+12065550123@contoso.com;user=phone>"), ("Referred-By", f"<sip:{ALICE}>")])
        assert (await alice.ep.request(refer, alice.target()).final()).status == 202
        await asyncio.sleep(2)
        # RFC 3515 §2.4.4: the proxy (referee) NOTIFYs alice in the REFER's dialog: Trying, then the final status
        notifies = alice.received("NOTIFY")
        assert [n.body for n in notifies] == [b"SIP/2.0 100 Trying\r\n", b"SIP/2.0 200 OK\r\n"]
        assert all(n.call_id == mine.call_id and n.to.tag == tag and n.headers.get("Event") == "refer"
                   and n.headers.get("Content-Type") == "message/sipfrag;version=2.0" for n in notifies)
        assert [n.headers.get("Subscription-State").split(";")[0] for n in notifies] == ["active", "terminated"]
        assert notifies[0].cseq.seq < notifies[1].cseq.seq
        bye = mine.create_request("BYE", alice.ep.rng)
        assert (await alice.ep.request(bye, alice.target()).final()).status == 200  # the transferor leaves
        new_invites = [r for r in sbc1.received("INVITE") if r.to.tag is None and "+12065550123@" in r.uri_text]
        assert len(new_invites) == 1  # the target, routed with alice's policy
        reoffers = [r for r in sbc1.received("INVITE") if r.to.tag is not None and r.call_id == tx.request.call_id]
        assert len(reoffers) == 1  # the PSTN caller is re-INVITEd toward the target's media
        assert not [r for r in sbc1.received("BYE") if r.call_id == tx.request.call_id]  # caller stays up
        assert w.events.select("call.transferred")
        first, = cdrs(w)
        assert (first["direction"], first["result"]["ms_code"]) == ("inbound", 540000)
        # the caller hangs up: the target leg gets its BYE, the transferred call its own CDR
        bye = pstn.create_request("BYE", sbc1.ep.rng)
        assert (await sbc1.ep.request(bye, Target(SIP, 5061, "tls")).final()).status == 200
        await asyncio.sleep(1)
        assert [r for r in sbc1.received("BYE") if r.call_id == new_invites[0].call_id]
        second = cdrs(w)[1]
        assert (second["direction"], second["callee"], second["gateway"]) == ("outbound", "+12065550123", SBC1)
        assert w.cloud.sessions.active.get(SBC1) == 0

    sim(pki, body)


def test_failed_blind_transfer_is_notified_with_the_targets_final_status(pki):
    async def body(w: World) -> None:
        sbc1, alice, tx, pstn, mine, tag = await alice_answers_a_pstn_call(w)
        sbc1.invite_handler = answers(486, ring=False)  # the transfer target is busy
        refer = mine.create_request("REFER", alice.ep.rng, extra_headers=[
            ("Refer-To", "<sip:+12065550123@contoso.com;user=phone>")])
        assert (await alice.ep.request(refer, alice.target()).final()).status == 202
        await asyncio.sleep(2)
        notifies = alice.received("NOTIFY")
        assert [n.body.split(b" ")[1] for n in notifies] == [b"100", b"486"]
        assert notifies[-1].headers.get("Subscription-State") == "terminated;reason=noresource"
        assert [r for r in sbc1.received("BYE") if r.call_id == tx.request.call_id]  # the caller, left alone

    sim(pki, body)


def test_inbound_rings_every_signed_in_client_and_cancels_the_others_on_answer(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        pc, phone = await w.client(BOB), await w.client(BOB, host="bob-phone.contoso.com")
        for device in (pc, phone):
            assert (await device.register()).status == 200
        pc.invite_handler = answers(200, delay=60)
        phone.invite_handler = answers(200, delay=3)
        resp = await inbound(sbc, "4255550102").final()
        assert resp.status == 200 and b"m=audio 49152" in resp.body  # the media processor: no media bypass
        await asyncio.sleep(1)
        assert pc.received("INVITE") and phone.received("INVITE")
        assert got(w, "bob-pc", "CANCEL") and not got(w, "bob-phone", "CANCEL")

    sim(pki, body)


def test_inbound_at_the_hard_session_limit_is_503(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        alice, bob = await signed_in(w, ALICE), await signed_in(w, BOB)
        alice.invite_handler = bob.invite_handler = answers(200)
        assert (await inbound(sbc, "4255550101").final()).status == 200
        assert (await inbound(sbc, "4255550102").final()).status == 503
        assert bob.received("INVITE") == []
        assert cdrs(w)[0]["result"]["ms_code"] == 599513

    sim(pki, body, tenant=make_tenant(**{SBC1: {"max_concurrent_sessions": 1}}), max_sessions_enforced=True)


def test_over_max_call_setups_a_new_invite_gets_503_with_retry_after_and_no_call(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        alice = await w.client(ALICE)
        await alice.register()
        alice.invite_handler = answers(200, delay=5)  # rings 5 s: the first call stays in setup
        first = inbound(sbc, "4255550101")
        await asyncio.sleep(1)
        refused = await inbound(sbc, "4255550101").final()
        assert (refused.status, refused.headers.get("Retry-After")) == (503, "1")  # a busy datacenter [S2]
        assert len(alice.received("INVITE")) == 1 and cdrs(w) == []  # the refused INVITE made no call
        assert [r["limit"] for r in w.events.select("call.overloaded", node="sip")] == [1]
        assert (await first.final()).status == 200

    sim(pki, body, max_call_setups=1)


# --- caller ID and emergency calls ---------------------------------------------------------------------

def _with_caller_id(policy: CallingLineIdentity, **alice: Any) -> Tenant:
    tenant = make_tenant()
    tenant.add("calling_line_identity", policy)
    tenant.add("user", replace(tenant.user(ALICE), calling_line_identity=policy.name, **alice))
    return tenant


@pytest.mark.parametrize(("policy", "alice", "from_has", "asserted", "privacy"), [
    (CallingLineIdentity("Main", calling_id_substitute="Service", service_number="+14255550100"), {},
     "+14255550100@", None, None),
    (CallingLineIdentity("Hidden", calling_id_substitute="Anonymous"), {},
     "anonymous@anonymous.invalid", ["<tel:+14255550101>"], "id"),
    (CallingLineIdentity("Choice", enable_user_override=True), {"caller_id_hidden": True},
     "anonymous@anonymous.invalid", ["<tel:+14255550101>"], "id"),
    (CallingLineIdentity("NoChoice"), {"caller_id_hidden": True}, "+14255550101@", None, None),
])
def test_the_caller_id_policy_sets_from_and_asserted_identity(pki, policy, alice, from_has, asserted, privacy):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1 = await w.sbc(SBC1)
        sbc1.invite_handler = answers(200)
        client = await signed_in(w)
        assert (await client.call("+12065550123").final()).status == 200
        [invite] = sbc1.received("INVITE")
        assert from_has in invite.headers.get("From")
        assert (invite.headers.get_all("P-Asserted-Identity") or None) == asserted  # RFC 3325 §9.1
        assert invite.headers.get("Privacy") == privacy

    sim(pki, body, tenant=_with_caller_id(policy, **alice))


def _with_emergency(pidf_lo_supported: bool) -> Tenant:
    """911 in the HQ site's policy, through usage US Emergency to sbc1; alice is at HQ, floor 2."""
    tenant = make_tenant(**{SBC1: {"pidf_lo_supported": pidf_lo_supported}})
    tenant.usages += ("US Emergency",)
    tenant.add("voice_route", VoiceRoute("Emergency", "^911$", (SBC1,), ("US Emergency",), priority=1))
    tenant.add("emergency_call_routing_policy", EmergencyCallRoutingPolicy(
        "HQ 911", (EmergencyNumber("911", None, "US Emergency"),), allow_enhanced_emergency_services=True))
    tenant.add("site", NetworkSite("HQ", emergency_call_routing_policy="HQ 911"))
    tenant.add("civic_address", LisCivicAddress("addr-1", "Contoso", "US", house_number="1", street_name="Main",
                                                city="Redmond", state_or_province="WA"))
    tenant.add("lis_location", LisLocation("loc-2", "addr-1", "Floor 2"))
    tenant.add("user", replace(tenant.user(ALICE), network_site="HQ", location_id="loc-2"))
    tenant.changed()
    return tenant


def test_an_emergency_call_to_a_pidf_lo_gateway_carries_the_location_by_reference(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1 = await w.sbc(SBC1)
        sbc1.invite_handler = answers(200)
        alice = await signed_in(w)
        assert (await alice.call("911").final()).status == 200
        [invite] = sbc1.received("INVITE")
        assert invite.uri_text.startswith(f"sip:911@{SBC1}")  # never +1911
        parts = body_parts(invite.headers.get("Content-Type"), invite.body)
        assert [p.content_type for p in parts] == ["application/sdp", "application/pidf+xml"]
        assert invite.headers.get("Geolocation") == f"<cid:{parts[1].content_id}>"  # RFC 6442 §4.1
        assert civic_address(parts[1].body) == {"country": "US", "A1": "WA", "A3": "Redmond", "RD": "Main",
                                                "HNO": "1", "LOC": "Floor 2", "NAM": "Contoso"}
        [decision] = w.events.select("route.decision")
        assert decision["emergency"] is True and decision["caller_id"] == "+14255550101"

    sim(pki, body, tenant=_with_emergency(pidf_lo_supported=True))


def test_an_emergency_call_to_a_gateway_without_pidf_lo_carries_only_the_session(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1 = await w.sbc(SBC1)
        sbc1.invite_handler = answers(200)
        alice = await signed_in(w)
        assert (await alice.call("911").final()).status == 200
        [invite] = sbc1.received("INVITE")
        assert invite.content_type == "application/sdp" and "Geolocation" not in invite.headers

    sim(pki, body, tenant=_with_emergency(pidf_lo_supported=False))
