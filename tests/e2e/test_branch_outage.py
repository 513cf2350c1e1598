"""The branch outage, as the simulator models it [S26].

Cut `wan-seattle`: every Seattle client is in appliance mode within the detection bound; calls run
from the SBA's cache through the local SBC trunk (inbound, outbound, local, hold/resume, blind
transfer); a user added after the last sync is unknown there; emergency calls behave as documented.
Restore: clients go back online only once their outgoing calls end, the SBC is active again, and
every CDR the SBA wrote reaches the cloud, none lost, none doubled.
"""

from __future__ import annotations

import asyncio

import pytest

from simulator.roles.teams_cloud import TeamsCloud
from simulator.tenant.model import EmergencyCallRoutingPolicy, EmergencyNumber, VoiceRoute
from tests.e2e.helpers import change, events, run_contoso, wait_until
from tests.support.contoso import contoso

pytestmark = pytest.mark.e2e

BRANCH = ("carol@contoso.com", "dave@contoso.com", "erin@contoso.com")


async def cut_seattle(lab) -> float:
    """Cut the branch WAN; return when every branch client is in appliance mode (asserting the bound)."""
    loop = asyncio.get_running_loop()
    cut_at = loop.time()
    lab.link("wan-seattle").down()
    bound = lab.settings.appliance_mode_bound_s()
    clients = [lab.client(upn) for upn in BRANCH]
    assert await wait_until(lambda: all(c.state == "appliance" for c in clients), bound + 1)
    for upn in BRANCH:
        [entered] = [e for e in events(lab, "client.state", user=upn, state="appliance") if e["t"] >= cut_at]
        assert entered["registrar"] == "sba1.contoso.com"
        assert entered["t"] - cut_at <= bound, (upn, entered["t"] - cut_at, bound)
    # HQ is not affected
    assert lab.client("alice@contoso.com").state == "online"
    return cut_at


def test_cut_then_inbound_outbound_and_local_calls_from_the_cache(lab_certs) -> None:
    async def scenario(lab) -> None:
        cut_at = await cut_seattle(lab)
        # the SBC's connections to the proxies were reset by the cut: it asked again at once
        down = events(lab, "sbc.proxy", node="sbc-sea", state="down")
        assert {e["proxy"] for e in down} == set(lab.context.topology.proxies)
        assert all(e["t"] - cut_at < 1.0 for e in down)
        pstn = lab.node("pstn-sea")
        # inbound: PSTN -> sbc-sea -> SBA (no proxy reachable) -> carol
        inbound = await pstn.call("4255550199", "2065550201")
        assert (inbound.status, inbound.state) == (200, "answered")
        carol_call = await asyncio.wait_for(lab.client("carol@contoso.com").next_incoming_call(), 1)
        assert carol_call.registrar == "sba1.contoso.com" and carol_call.state == "answered"
        assert list(lab.node("sbc-sea").calls)[-1].path == "sba"
        # outbound: dave -> SBA -> sbc-sea -> the carrier, 10 digits
        outbound = await lab.client("dave@contoso.com").place_call("4255550199")
        assert (outbound.status, outbound.registrar) == (200, "sba1.contoso.com")
        far = pstn.calls_to("4255550199")[-1]
        assert far.state == "answered" and far.request.uri.user == "4255550199"
        # local: erin dials dave's extension; the SBA connects them, nothing reaches the PSTN
        before = len(pstn.received)
        local = await lab.client("erin@contoso.com").place_call("0202")
        assert local.status == 200 and len(pstn.received) == before
        await wait_until(lambda: any(c.state == "answered" and c.direction == "incoming"
                                     for c in lab.client("dave@contoso.com").calls), 2)
        for call in (inbound, outbound, local):
            await call.hangup()
        assert not events(lab, "call.started", node="sip", user="carol@contoso.com")  # the cloud saw none of it
    run_contoso(lab_certs, scenario)


def test_hold_resume_and_blind_transfer_at_the_sba(lab_certs) -> None:
    async def scenario(lab) -> None:
        await cut_seattle(lab)
        pstn = lab.node("pstn-sea")
        # hold/resume on an outbound call: the far end receives the re-INVITEs
        out = await lab.client("carol@contoso.com").place_call("4255550199")
        far = pstn.calls_to("4255550199")[-1]
        assert await out.hold() == 200
        assert await out.resume() == 200
        assert far.holds == ["sendonly", "sendrecv"]
        await out.hangup()
        assert await far.wait_ended(timeout=5)
        # blind transfer: the PSTN calls carol, carol transfers to dave (extension 0202)
        caller = await pstn.call("4255550177", "2065550201")
        assert caller.status == 200
        carol_call = await asyncio.wait_for(lab.client("carol@contoso.com").next_incoming_call(), 1)
        assert await carol_call.transfer("0202") in (200, 202)
        dave = lab.client("dave@contoso.com")
        assert await wait_until(lambda: any(c.state == "answered" for c in dave.calls), 10)
        assert events(lab, "call.transferred")
        assert caller.state == "answered"  # the PSTN caller stayed connected throughout
        await caller.hangup()
        assert await wait_until(lambda: all(c.state in ("ended", "failed") for c in dave.calls), 5)
    run_contoso(lab_certs, scenario)


def _with_emergency_policy():
    """Contoso with 911/933 in the Global emergency call routing policy, and the workaround [S26]
    documents for the SBA: a route in the branch users' regular policy whose pattern matches the
    dial strings exactly, through the branch SBC."""
    tenant = contoso()
    tenant.add("emergency_call_routing_policy",
               EmergencyCallRoutingPolicy("Global", (EmergencyNumber("911", "933", "US and Canada"),)))
    tenant.add("voice_route", VoiceRoute("Seattle Emergency", r"^(911|933)$", ("sbc-sea.contoso.com",),
                                         ("Seattle Local",), priority=0))
    tenant.changed()
    return tenant


def test_a_user_added_after_the_last_sync_is_unknown_and_emergency_calls_as_documented(lab_certs) -> None:
    async def scenario(lab) -> None:
        # erin's voice routing policy becomes "US Only" (no pattern matches 911) before the last sync
        change(lab, "grant", upn="erin@contoso.com", kind="voice_routing_policy", name="US Only")
        assert await lab.node("sba1").sync_now()
        await cut_seattle(lab)
        # a user added after the last sync: unknown to the SBA
        change(lab, "add_user", upn="frank@contoso.com", number="+12065550209", site="Seattle",
               voice_routing_policy="Seattle", dial_plan="Seattle", sba_policy="SEA")
        unknown = await lab.node("pstn-sea").call("4255550199", "2065550209")
        assert unknown.status == 404
        assert not lab.node("pstn-sea").received  # nothing rang anywhere
        # emergency: the dial string skips normalization and goes without '+'; it is routed only
        # because carol's regular policy has a route matching it [S26]
        call = await lab.client("carol@contoso.com").place_call("911")
        assert call.status == 200
        [decision] = [e for e in events(lab, "route.decision", node="sba1") if e["dialed"] == "911"]
        assert decision["emergency"] is True and decision["number"] == "911"
        [psap] = lab.node("pstn-sea").calls_to("911")
        assert psap.request.uri.user == "911" and psap.state == "answered"
        assert [e for e in events(lab, "sip.received", node="sbc-sea") if e["summary"].startswith("INVITE sip:911@")]
        # erin's US Only policy has no pattern for 911: her emergency call fails at the SBA
        failed = await lab.client("erin@contoso.com").place_call("911")
        assert failed.status is not None and failed.status >= 400
        assert len(lab.node("pstn-sea").calls_to("911")) == 1
        await call.hangup()
    run_contoso(lab_certs, scenario, tenant=_with_emergency_policy())


def test_restore_clients_return_after_their_calls_sbc_active_cdrs_uploaded(lab_certs) -> None:
    async def scenario(lab) -> None:
        loop = asyncio.get_running_loop()
        await cut_seattle(lab)
        pstn = lab.node("pstn-sea")
        # calls during the outage: two finished ones, one still up at restore (dave's outgoing call)
        inbound = await pstn.call("4255550199", "2065550201")
        await inbound.hangup()
        local = await lab.client("erin@contoso.com").place_call("0201")
        await asyncio.sleep(5)
        await local.hangup()
        ongoing = await lab.client("dave@contoso.com").place_call("4255550199")
        assert ongoing.status == 200
        far = pstn.calls_to("4255550199")[-1]
        # long enough for the cloud to demote the silent sbc-sea
        await asyncio.sleep(lab.settings.demotion_window_s + 10)
        assert events(lab, "gateway.health", gateway="sbc-sea.contoso.com", state="demoted")
        restored_at = loop.time()
        lab.link("wan-seattle").up()
        carol, dave, erin = (lab.client(u) for u in BRANCH)
        bound = lab.settings.cloud_return_bound_s()
        assert await wait_until(lambda: carol.state == "online" and erin.state == "online", bound + 1)
        # dave's outgoing call holds him at the SBA; the call is not dropped by anyone's switch
        await asyncio.sleep(bound)
        assert dave.state == "appliance" and ongoing.state == "answered" and far.state == "answered"
        ended_at = loop.time()
        await ongoing.hangup()
        assert await far.wait_ended(timeout=5)
        assert await wait_until(lambda: dave.state == "online", bound + 1)
        [back] = [e for e in events(lab, "client.state", user="dave@contoso.com", state="online") if e["t"] > restored_at]
        assert back["t"] >= ended_at
        # the SBC is active again once its OPTIONS reach the cloud
        assert await wait_until(lambda: [e for e in events(lab, "gateway.health", gateway="sbc-sea.contoso.com",
                                                         state="active") if e["t"] > restored_at],
                                lab.settings.sbc_options_interval_s + 5)
        # CDRs: every one the SBA wrote reaches the cloud, once
        assert await wait_until(lambda: events(lab, "sba.cdr_upload"), lab.settings.sba_sync_interval_s + 30)
        written = {e["cdr_id"] for e in events(lab, "cdr.record") if e.get("path") == "sba"
                   and "sba1" in str(e.get("node", "")) + str(e.get("writer", ""))}
        assert len(written) >= 3
        stored = TeamsCloud.of(lab.context).cdrs.records
        assert written <= set(stored), written - set(stored)
        assert sum(e["count"] for e in events(lab, "sba.cdr_upload")) == len(written)
        assert lab.node("sba1").cdrs.pending == [] or not lab.node("sba1").cdrs.pending
    run_contoso(lab_certs, scenario)
