"""The SBA on the sim network: sync over a cuttable link, registrar token rules, survivable calls, CDR upload."""

from __future__ import annotations

import asyncio

import pytest

from simulator.endpoint import SipEndpoint, Target, TlsConfig
from simulator.roles.cdr import CallPath
from simulator.roles.settings import DAY_S
from simulator.roles.teams_client import AnswerPolicy
from simulator.roles.token import Token
from simulator.sip.builders import make_request, new_branch, new_call_id, new_tag
from simulator.tenant.model import User
from tests.roles.client_world import SBA, SEA_TENANT, branch_world

CAROL, DAVE, ERIN, FRANK = "carol@contoso.com", "dave@contoso.com", "erin@contoso.com", "frank@contoso.com"


async def ask_sba(world, method: str, upn: str, token: Token | None, *, expires: int = 600):
    """A hand-made REGISTER/OPTIONS from carol's PC to the SBA; returns the response it received."""
    host = "carol-pc.contoso.com"
    ep = SipEndpoint(world.net, host=host, node="raw-client", events=world.events)
    rng = world.ctx.rng_for("raw")
    headers = [("Expires", str(expires))] + ([("Authorization", token.header())] if token else [])
    request = make_request(method, "sip:contoso.com" if method == "REGISTER" else f"sip:{SBA}",
                           from_=f"<sip:{upn}>;tag={new_tag(rng)}", to=f"<sip:{upn}>",
                           call_id=new_call_id(rng, host), cseq=1, via=f"SIP/2.0/TLS {host};branch={new_branch(rng)}",
                           contact=f"<sip:carol@{host};transport=tls>", extra_headers=headers)
    try:
        return await ep.request(request, Target(SBA, 5061, "tls", tls=TlsConfig(trust=world.ctx.trust))).final()
    finally:
        await ep.close()


@pytest.mark.sim
async def test_sba_refuses_a_client_not_seen_within_24h_and_admits_an_expired_token_within_grace(pki):
    world = await branch_world(pki, users=())
    loop = asyncio.get_running_loop()
    await asyncio.sleep(10)  # first sync done
    token = Token.issue(CAROL, loop.time(), 3600)
    refused = await ask_sba(world, "REGISTER", CAROL, token)
    assert refused.status == 403 and "not seen within 86400s" in refused.reason
    assert (await ask_sba(world, "OPTIONS", CAROL, token)).status == 200  # the check-in
    assert (await ask_sba(world, "REGISTER", CAROL, token)).status == 200
    await asyncio.sleep(DAY_S + 10)  # token long expired (within 7 days), last seen over 24 h ago
    late = await ask_sba(world, "REGISTER", CAROL, token)
    assert late.status == 403 and "not seen within" in late.reason
    assert [e["status"] for e in world.events.select("sba.registration_refused", user=CAROL)] == [403, 403]


@pytest.mark.sim
@pytest.mark.parametrize("header, status", [(None, 401), ("Bearer nonsense", 400), ("Basic abc", 400)])
async def test_sba_answers_a_register_without_a_readable_token_with_a_clear_status(pki, header, status):
    world = await branch_world(pki, users=())
    await asyncio.sleep(5)

    class Raw:
        def header(self):
            return header
    response = await ask_sba(world, "REGISTER", CAROL, Raw() if header else None)
    assert response.status == status


@pytest.mark.sim
async def test_sync_stops_when_cut_and_the_cache_keeps_its_version(pki):
    world = await branch_world(pki, users=())
    sba = world.sba
    await asyncio.sleep(1)
    assert sba.cache.version == 1 and sba.cache.user(CAROL) is not None
    world.link().blackhole()
    tenant = world.ctx.tenant
    tenant.add("user", User("gina@contoso.com", "+12065550299", voice_routing_policy="Branch",
                            dial_plan="Branch", sba_policy="SEA", enterprise_voice_enabled=True))
    tenant.changed()
    await asyncio.sleep(3 * 300 + 100)
    syncs = world.events.select("sba.sync", node="sba-sea")
    assert [e["ok"] for e in syncs] == [True, False, False, False]
    assert {e["version"] for e in syncs} == {1}
    assert sba.cache.user("gina@contoso.com") is None  # added after the last sync: unknown
    assert sba.cache.decide_inbound("+12065550299").refusal == "unknown_to_sba"
    world.link().up()
    await asyncio.sleep(300)
    last = world.events.select("sba.sync", node="sba-sea")[-1]
    assert (last["ok"], last["version"], last["added"]) == (True, 2, ["gina@contoso.com"])


@pytest.mark.sim
async def test_cdrs_of_the_outage_are_uploaded_once_even_when_the_first_answer_is_lost(pki):
    world = await branch_world(pki, users=(CAROL,))
    carol = world.clients[CAROL]
    await asyncio.sleep(60)
    world.link().blackhole()
    await carol.wait_state("appliance", timeout=60)
    call = await carol.place_call("4255550100")
    await asyncio.sleep(30)
    await call.hangup()
    await asyncio.sleep(1)
    assert len(world.sba.cdrs.pending) == 1
    assert not world.cloud.state.cdrs.records
    world.cloud.swallow_cdr_answers = 1  # the cloud stores the batch, its 200 never arrives
    world.link().up()
    await asyncio.sleep(600)
    records = list(world.cloud.state.cdrs.records.values())
    assert len(records) == 1
    cdr = records[0]
    assert (cdr.path, cdr.caller, cdr.callee, cdr.successful) == (CallPath.SBA, "+12065550201", "+14255550100", True)
    assert cdr.user == CAROL and cdr.gateway == "sbc1.contoso.com"
    assert world.sbc.far.invites()[0].from_.uri.user == "+12065550201"  # her number as caller ID
    assert cdr.duration_s == 30
    assert not world.sba.cdrs.pending
    assert [e["count"] for e in world.events.select("sba.cdr_upload")] == [1]
    assert world.cloud.cdr_uploads == 2  # the lost answer made the SBA send the batch again
    assert world.events.select("cdr.record", node="sba-sea")[0]["cdr_id"] == cdr.cdr_id


async def outage(world, *upns):
    await asyncio.sleep(60)
    world.link().blackhole()
    for upn in upns:
        await world.clients[upn].wait_state("appliance", timeout=60)


@pytest.mark.sim
async def test_local_users_call_each_other_through_the_sba_by_extension(pki):
    world = await branch_world(pki, users=(CAROL, DAVE))
    await outage(world, CAROL, DAVE)
    call = await world.clients[CAROL].place_call("0202")
    incoming = await world.clients[DAVE].next_incoming_call(timeout=1)
    assert (call.status, call.answered_by, call.registrar) == (200, f"sip:{DAVE}", SBA)
    assert (incoming.caller, incoming.state) == (f"sip:{CAROL}", "answered")
    assert not world.sbc.far.invites()  # never left the branch
    await call.hangup()
    await asyncio.sleep(1)
    assert incoming.state == "ended"
    assert world.sba.cdrs.pending[next(iter(world.sba.cdrs.pending))].direction == "internal"


@pytest.mark.sim
async def test_hold_and_resume_are_relayed_to_the_sbc(pki):
    world = await branch_world(pki, users=(CAROL,))
    await outage(world, CAROL)
    call = await world.clients[CAROL].place_call("4255550100")
    assert await call.hold() == 200
    assert call.held
    assert b"a=sendonly" in world.sbc.far.received("INVITE")[-1].body
    assert await call.resume() == 200
    assert b"a=sendrecv" in world.sbc.far.received("INVITE")[-1].body
    assert [e["event"] for e in world.events.select("call.", node="sba-sea")
            if e["event"] in ("call.held", "call.resumed")] == ["call.held", "call.resumed"]
    await call.hangup()


@pytest.mark.sim
async def test_blind_transfer_connects_the_pstn_caller_to_the_target(pki):
    world = await branch_world(pki, users=(CAROL, DAVE))
    await outage(world, CAROL, DAVE)
    response, dialog = await world.sbc.call("+12065550201")
    assert response.status == 200
    carol_call = await world.clients[CAROL].next_incoming_call(timeout=1)
    assert await carol_call.transfer("0202") == 202
    dave_call = await world.clients[DAVE].next_incoming_call(timeout=5)
    await asyncio.sleep(3)
    assert dave_call.state == "answered" and carol_call.state == "ended"
    # RFC 3515: the SBA NOTIFYed carol (Trying, then dave's 200); she hung up after the final one
    assert carol_call.transfer_status == 200 and carol_call.transfer_done.is_set()
    progress = world.events.select("call.transfer_progress", call_id=carol_call.call_id)
    assert [(e["sipfrag"], e["final"]) for e in progress] == [(100, False), (200, True)]
    [bye] = [e for e in world.events.select("sip.sent", node="carol") if e["cseq"].endswith(" BYE")]
    assert bye["t"] >= world.events.select("sip.received", node="carol", cseq="2 NOTIFY")[0]["t"]
    # the SBC's leg now carries dave's media: the SBA re-offered it
    reoffer = world.sbc.far.received("INVITE")[-1]
    assert reoffer.to.tag is not None and reoffer.body == dave_call.dialog.local_sdp.to_bytes()
    assert world.events.select("call.transferred", node="sba-sea")
    answered_bye = [e["summary"] for e in world.events.select("sip.sent", node="sba-sea", cseq="2 BYE")]
    assert answered_bye == ["200 OK"]  # carol's BYE after her REFER is accepted, not 481
    assert await world.sbc.bye(dialog) == 200
    await asyncio.sleep(1)
    assert dave_call.state == "ended"


@pytest.mark.sim
async def test_unanswered_call_is_forwarded_to_the_cached_target(pki):
    world = await branch_world(pki, users=(ERIN,))
    await outage(world, ERIN)
    world.clients[ERIN].answer_policy = AnswerPolicy("ring")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    response, dialog = await world.sbc.call("+12065550203")
    assert response.status == 200
    forwarded = world.sbc.far.invites()[-1]
    assert forwarded.uri.user == "+14255550199"
    assert loop.time() - t0 >= 10  # erin's cached unanswered delay
    assert world.events.select("call.forwarded", kind="unanswered")
    await world.sbc.bye(dialog)


@pytest.mark.sim
async def test_immediate_forwarding_to_a_teams_user(pki):
    world = await branch_world(pki, users=(DAVE,))
    await outage(world, DAVE)
    response, dialog = await world.sbc.call("+12065550204")  # frank forwards to dave
    assert response.status == 200
    assert response.headers.get("P-Asserted-Identity") == f"<sip:{DAVE}>"
    await world.sbc.bye(dialog)


@pytest.mark.sim
async def test_unknown_number_is_refused_from_the_cache(pki):
    world = await branch_world(pki, users=())
    await asyncio.sleep(10)
    world.link().blackhole()
    response, _ = await world.sbc.call("+12065550999")
    assert response.status == 404
    assert world.events.select("cdr.record", node="sba-sea")[-1]["result"]["ms_code"] == 599414


EMERGENCY_ROUTE = r"""
  - {name: Emergency, number_pattern: '^911$', online_pstn_gateway_list: [sbc1.contoso.com],
     online_pstn_usages: [Branch]}
"""


@pytest.mark.sim
@pytest.mark.parametrize("with_route, expect_status", [(False, 404), (True, 200)])
async def test_emergency_call_at_the_sba_goes_without_plus_only_if_the_cached_policy_matches(pki, with_route, expect_status):
    text = SEA_TENANT.replace("voice_routing_policies:", EMERGENCY_ROUTE.strip("\n") + "\nvoice_routing_policies:") \
        if with_route else SEA_TENANT
    world = await branch_world(pki, users=(CAROL,), tenant_text=text)
    await outage(world, CAROL)
    call = await world.clients[CAROL].place_call("911")
    assert call.status == expect_status
    if with_route:
        assert world.sbc.far.invites()[-1].uri.user == "911"  # as dialled, no '+'
        await call.hangup()
    else:
        assert not world.sbc.far.invites()
        decision = world.events.select("route.decision", node="sba-sea")[-1]
        assert decision["refusal"] == "emergency_no_route_at_sba" and decision["emergency"]



TWO_GATEWAYS = SEA_TENANT.replace(
    "  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061, enabled: true}",
    "  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061, enabled: true}\n"
    "  - {fqdn: sbc2.contoso.com, sip_signaling_port: 5061, enabled: true}",
).replace("online_pstn_gateway_list: [sbc1.contoso.com]", "online_pstn_gateway_list: [sbc2.contoso.com, sbc1.contoso.com]")


@pytest.mark.sim
@pytest.mark.parametrize("sbc_answer, expect_status, expect_ms_code", [
    (("busy",), 486, 560486),          # not a failover code: the SBC's answer is the call's
    (("unavailable",), 503, 599503),   # 503 fails over to sbc2, unreachable from the branch
])
async def test_sba_uses_the_local_sbc_first_and_fails_over_on_the_gateway_codes(pki, sbc_answer, expect_status,
                                                                          expect_ms_code):
    world = await branch_world(pki, users=(CAROL,), tenant_text=TWO_GATEWAYS)
    await outage(world, CAROL)
    world.sbc.far.answers["+14255550100"] = sbc_answer
    call = await world.clients[CAROL].place_call("4255550100")
    assert call.status == expect_status
    assert len(world.sbc.far.invites()) == 1  # the local SBC first, even though the route lists sbc2 first
    failovers = world.events.select("sba.gateway_failover")
    assert [e["next"] for e in failovers] == (["sbc2.contoso.com"] if expect_status == 503 else [])
    assert world.events.select("cdr.record", node="sba-sea")[-1]["result"]["ms_code"] == expect_ms_code


@pytest.mark.sim
async def test_sba_restart_during_the_outage_keeps_cache_and_cdrs_and_clients_register_again(pki):
    world = await branch_world(pki, users=(CAROL,))
    await outage(world, CAROL)
    call = await world.clients[CAROL].place_call("4255550100")
    await call.hangup()
    await asyncio.sleep(1)
    version, pending = world.sba.cache.version, dict(world.sba.cdrs.pending)
    await world.sba.restart()
    assert world.sba.cache.version == version and world.sba.cdrs.pending == pending
    assert not world.sba.bindings
    response, _ = await world.sbc.call("+12065550201")
    assert response.status == 480  # carol's binding went with the reboot
    await asyncio.sleep(world.ctx.settings.sba_registration_expiry_s / 2 + 10)  # her refresh registers again
    assert CAROL in world.sba.bindings and world.clients[CAROL].state == "appliance"
    response, dialog = await world.sbc.call("+12065550201")
    assert response.status == 200
    await world.sbc.bye(dialog)


@pytest.mark.sim
async def test_sba_refuses_a_user_its_cache_does_not_hold(pki):
    world = await branch_world(pki, users=())
    loop = asyncio.get_running_loop()
    await asyncio.sleep(5)
    token = Token.issue("zoe@contoso.com", loop.time(), 3600)
    assert (await ask_sba(world, "OPTIONS", "zoe@contoso.com", token)).status == 200  # seen, but unknown
    response = await ask_sba(world, "REGISTER", "zoe@contoso.com", token)
    assert response.status == 404 and "not in the SBA's cache" in response.reason


@pytest.mark.sim
async def test_sync_of_an_sba_the_tenant_does_not_list_fails_and_says_why(pki):
    text = SEA_TENANT.replace("sbas:\n  - {fqdn: sba1.contoso.com}", "sbas:\n  - {fqdn: sba9.contoso.com}") \
        .replace("branch_appliance_fqdns: [sba1.contoso.com]", "branch_appliance_fqdns: [sba9.contoso.com]")
    world = await branch_world(pki, users=(), tenant_text=text)
    await asyncio.sleep(5)
    [sync] = world.events.select("sba.sync", node="sba-sea")
    assert (sync["ok"], sync["version"]) == (False, 0)
    assert "403" in sync["reason"] and "not listed" in sync["reason"]


def silence(world, number: str) -> None:
    """The branch SBC takes INVITEs for `number` and never answers them (only the endpoint's 100 Trying)."""
    far = world.sbc.far

    async def handle(incoming):
        request = incoming.request
        if request.method == "INVITE" and request.to.tag is None and getattr(request.uri, "user", None) == number:
            far.requests.append((request.method, request, incoming.source))
            return True
        return await far.handle(incoming)
    world.sbc.ep.on_request = handle


def sba_cancels(world):
    return [e for e in world.events.select("sip.sent", node="sba-sea") if e["cseq"].endswith(" CANCEL")]


SILENT_SBC = TWO_GATEWAYS.replace("  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061, enabled: true}",
                                  "  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061, enabled: true, "
                                  "failover_time_seconds: 4}")


@pytest.mark.sim
async def test_sba_cancels_a_silent_gateway_after_its_failover_time_and_tries_the_next(pki):
    world = await branch_world(pki, users=(CAROL,), tenant_text=SILENT_SBC)
    await outage(world, CAROL)
    silence(world, "+14255550100")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    call = await world.clients[CAROL].place_call("4255550100")
    [failover] = world.events.select("sba.gateway_failover")
    assert failover["next"] == "sbc2.contoso.com" and failover["status"] == 408
    assert "FailoverTimeSeconds=4" in failover["reason"]
    cancels = sba_cancels(world)
    assert [e["call_id"] for e in cancels] == [world.sbc.far.invites()[0].call_id]
    assert len(cancels) == 1 and 4 <= cancels[0]["t"] - t0 < 5  # at the gateway's time, not the 10 s default
    assert call.status == 503  # sbc2 is unreachable from the branch: all gateways failed
    assert loop.time() - t0 >= 4


@pytest.mark.sim
@pytest.mark.parametrize("answer, expect_status, expect_ms_code", [
    (("silent",), 408, 500001),       # the only gateway stays silent: failover timer expired
    (("answer", 8.0), 200, None),     # 180 at once stops the 4 s timer: answered after 8 s, no CANCEL
])
async def test_sba_failover_timer_stops_on_ringing_and_expires_on_silence(pki, answer, expect_status, expect_ms_code):
    text = SEA_TENANT.replace("  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061, enabled: true}",
                              "  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061, enabled: true, "
                              "failover_time_seconds: 4}")
    world = await branch_world(pki, users=(CAROL,), tenant_text=text)
    await outage(world, CAROL)
    if answer[0] == "silent":
        silence(world, "+14255550100")
    else:
        world.sbc.far.answers["+14255550100"] = answer
    call = await world.clients[CAROL].place_call("4255550100")
    assert call.status == expect_status
    cancels = sba_cancels(world)
    assert len(cancels) == (1 if expect_ms_code else 0)
    if expect_ms_code:
        assert world.events.select("cdr.record", node="sba-sea")[-1]["result"]["ms_code"] == expect_ms_code
    else:
        await call.hangup()


@pytest.mark.sim
async def test_blind_transfer_to_a_busy_target_notifies_the_transferor_of_the_486(pki):
    world = await branch_world(pki, users=(CAROL, DAVE))
    await outage(world, CAROL, DAVE)
    world.clients[DAVE].answer_policy = AnswerPolicy("busy")
    response, dialog = await world.sbc.call("+12065550201")
    carol_call = await world.clients[CAROL].next_incoming_call(timeout=1)
    assert await carol_call.transfer("0202") == 202
    await asyncio.wait_for(carol_call.transfer_done.wait(), 5)
    assert carol_call.transfer_status == 486
    await asyncio.sleep(1)
    assert carol_call.state == "ended"  # she leaves after the final NOTIFY, whatever it says
    assert world.sbc.far.received("BYE")  # the transferee, left alone, is hung up
