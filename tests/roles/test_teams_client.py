"""The Teams client on the sim network: real TLS to a test cloud and to the SBA, cut links, calls."""

from __future__ import annotations

import asyncio

import pytest

from simulator.roles.context import NodeSpec, RoleContext
from simulator.roles.settings import RoleSettings
from simulator.roles.teams_client import AnswerPolicy, TeamsClient, sipfrag_status
from tests.roles.client_world import PROXIES, SBA, branch_world

CAROL = "carol@contoso.com"


@pytest.mark.sim
async def test_client_signs_in_to_first_proxy_and_checks_in_at_its_sba(pki):
    world = await branch_world(pki)
    await asyncio.sleep(30)
    carol = world.clients[CAROL]
    assert (carol.state, carol.registrar) == ("online", PROXIES[0])
    assert world.cloud.registrations[0][:2] == (f"sip:{CAROL}", PROXIES[0])
    assert world.events.select("sba.checkin", user=CAROL)
    assert world.events.select("sba.sync", ok=True)


@pytest.mark.sim
async def test_cut_puts_client_in_appliance_mode_within_bound_and_it_calls_pstn_through_sba(pki):
    world = await branch_world(pki)
    carol = world.clients[CAROL]
    await asyncio.sleep(60)
    loop = asyncio.get_running_loop()
    cut_at = loop.time()
    world.link().blackhole()
    bound = world.ctx.settings.appliance_mode_bound_s()
    await carol.wait_state("appliance", timeout=bound + 1)
    assert loop.time() - cut_at <= bound
    assert [s for _, s, _ in world.states(CAROL)] == ["online", "offline", "appliance"]
    assert world.states(CAROL)[-1][2] == SBA
    call = await carol.place_call("4255550100")
    assert (call.status, call.registrar) == (200, SBA)
    invite = world.sbc.far.invites()[-1]
    assert invite.uri.user == "+14255550100"
    await call.hangup()
    await asyncio.sleep(1)
    assert world.sbc.far.received("BYE")


@pytest.mark.sim
async def test_client_returns_to_cloud_only_after_its_outgoing_call_ends(pki):
    world = await branch_world(pki)
    carol = world.clients[CAROL]
    loop = asyncio.get_running_loop()
    await asyncio.sleep(60)
    world.link().down()
    await carol.wait_state("appliance", timeout=60)
    call = await carol.place_call("4255550100")
    assert call.status == 200
    world.link().up()
    await asyncio.sleep(120)  # the cloud answers again, but the call holds the client at the SBA
    assert carol.state == "appliance"
    assert world.events.select("client.return_deferred", user=CAROL)
    hangup_at = loop.time()
    await call.hangup()
    await carol.wait_state("online", timeout=1)
    assert loop.time() - hangup_at < 1
    assert world.states(CAROL)[-1][1:] == ("online", PROXIES[0])
    assert world.cloud.registrations[-1][:2] == (f"sip:{CAROL}", PROXIES[0])  # registered again
    # the call survived the switch: its BYE went to the SBA and on to the SBC
    assert world.sbc.far.received("BYE")


@pytest.mark.sim
async def test_call_in_progress_survives_the_switch_to_appliance_mode(pki):
    world = await branch_world(pki, settings=RoleSettings(media=False))  # the test cloud's far end sends no RTP
    carol = world.clients[CAROL]
    await asyncio.sleep(20)
    call = await carol.place_call("4255550100")  # through the cloud
    assert (call.status, call.registrar) == (200, PROXIES[0])
    world.link().blackhole()
    await carol.wait_state("appliance", timeout=60)
    assert call.state == "answered"  # the switch did not end it
    world.link().up()
    await asyncio.sleep(60)
    assert carol.state == "appliance"  # an outgoing call (via the cloud) still holds it
    await call.hangup()
    await carol.wait_state("online", timeout=1)
    assert world.cloud.far[PROXIES[0]].received("BYE")


@pytest.mark.sim
async def test_restarted_client_cannot_enter_appliance_mode_until_the_cloud_is_back(pki):
    world = await branch_world(pki)
    carol = world.clients[CAROL]
    await asyncio.sleep(60)
    world.link().blackhole()
    await carol.wait_state("offline", timeout=40)
    await carol.restart()
    await asyncio.sleep(300)
    assert carol.state == "offline"
    assert not world.events.select("sba.registered", user=CAROL)
    blocked = world.events.select("client.appliance_mode_blocked", user=CAROL)
    assert "restarted during the outage" in blocked[-1]["reason"]
    call = await carol.place_call("4255550100")
    assert call.state == "failed" and call.status is None and "offline" in call.reason
    world.link().up()
    await carol.wait_state("online", timeout=30)
    await asyncio.sleep(1)
    assert world.events.select("client.registered", user=CAROL)[-1]["t"] > 360  # signed in again


@pytest.mark.sim
async def test_pstn_call_reaches_client_in_appliance_mode_through_the_sba(pki):
    world = await branch_world(pki)
    carol = world.clients[CAROL]
    await asyncio.sleep(60)
    world.link().blackhole()
    await carol.wait_state("appliance", timeout=60)
    response, dialog = await world.sbc.call("+12065550201")
    assert response.status == 200
    incoming = await carol.next_incoming_call(timeout=1)
    assert (incoming.state, incoming.registrar, incoming.via_sba) == ("answered", SBA, True)
    assert response.headers.get("P-Asserted-Identity") == f"<sip:{CAROL}>"
    assert await world.sbc.bye(dialog) == 200
    await asyncio.sleep(1)
    assert incoming.state == "ended"


@pytest.mark.sim
async def test_answer_policy_busy_and_ring(pki):
    world = await branch_world(pki)
    carol = world.clients[CAROL]
    await asyncio.sleep(60)
    world.link().blackhole()
    await carol.wait_state("appliance", timeout=60)
    carol.answer_policy = AnswerPolicy("busy")
    response, _ = await world.sbc.call("+12065550201")
    assert response.status == 486
    carol.answer_policy = AnswerPolicy("auto", after_s=3)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    response, dialog = await world.sbc.call("+12065550201")
    assert response.status == 200 and loop.time() - t0 == pytest.approx(3, abs=0.1)
    await world.sbc.bye(dialog)


@pytest.mark.sim
async def test_one_blackholed_proxy_moves_the_client_to_the_next_without_going_offline(pki):
    world = await branch_world(pki)
    carol = world.clients[CAROL]
    await asyncio.sleep(30)
    world.link("dc-sip").blackhole()
    await asyncio.sleep(120)
    assert (carol.state, carol.registrar) == ("online", PROXIES[1])
    assert [s for _, s, _ in world.states(CAROL)] == ["online", "online"]  # registrar sip -> sip2
    assert world.cloud.registrations[-1][:2] == (f"sip:{CAROL}", PROXIES[1])
    call = await carol.place_call("4255550100")
    assert (call.status, call.registrar) == (200, PROXIES[1])
    await call.hangup()


@pytest.mark.sim
async def test_client_without_sba_contact_in_24h_stays_offline(pki):
    world = await branch_world(pki, start_sba=False)  # its check-ins find no SBA
    carol = world.clients[CAROL]
    await asyncio.sleep(60)
    await world.sba.start()
    world.link().blackhole()
    await carol.wait_state("offline", timeout=40)
    await asyncio.sleep(120)
    assert carol.state == "offline"
    reasons = [e["reason"] for e in world.events.select("client.appliance_mode_blocked", user=CAROL)]
    assert any("contacted within 86400s" in r for r in reasons)
    assert not world.events.select("sba.registered")


@pytest.mark.sim
async def test_client_restarted_while_online_signs_in_again_with_a_new_token(pki):
    world = await branch_world(pki)
    carol = world.clients[CAROL]
    await asyncio.sleep(30)
    call = await carol.place_call("4255550100")
    await carol.restart()
    assert call.state == "ended" and call.reason == "client restarted"
    await asyncio.sleep(5)
    registrations = [r for r in world.cloud.registrations if r[0] == f"sip:{CAROL}"]
    assert len(registrations) == 2  # sign-in, and sign-in again after the restart
    assert carol.machine.token_authenticated_at > 30  # a new token, from the second sign-in
    world.link().blackhole()  # the new token keeps its SBA rights
    await carol.wait_state("appliance", timeout=60)


@pytest.mark.sim
async def test_with_cae_tokens_the_sba_serves_a_client_only_for_the_cae_limit(pki):
    settings = RoleSettings(client_cae_tokens=True, cae_token_limit_s=600)
    world = await branch_world(pki, settings=settings)
    carol = world.clients[CAROL]
    await asyncio.sleep(60)
    world.link().blackhole()
    await carol.wait_state("appliance", timeout=60)
    entered = asyncio.get_running_loop().time()
    await carol.wait_state("offline", timeout=1000)  # the refresh after the limit is refused
    assert asyncio.get_running_loop().time() - entered > 600
    refused = world.events.select("sba.registration_refused", user=CAROL)
    assert refused and "CAE token" in refused[0]["reason"]
    await asyncio.sleep(60)
    assert carol.state == "offline"


@pytest.mark.sim
async def test_incoming_sba_call_does_not_hold_the_client_back_and_survives_the_return(pki):
    world = await branch_world(pki)
    carol = world.clients[CAROL]
    await asyncio.sleep(60)
    world.link().blackhole()
    await carol.wait_state("appliance", timeout=60)
    response, dialog = await world.sbc.call("+12065550201")
    incoming = await carol.next_incoming_call(timeout=1)
    world.link().up()
    await carol.wait_state("online", timeout=world.ctx.settings.cloud_return_bound_s() + 1)
    assert incoming.state == "answered"  # the switch back did not end it
    assert await world.sbc.bye(dialog) == 200  # the far end's BYE still reaches carol via the SBA
    await asyncio.sleep(1)
    assert incoming.state == "ended" and incoming.reason == "far end hung up"


@pytest.mark.parametrize("value, expect", [
    ("auto", ("auto", 1.0)), ("auto:3", ("auto", 3.0)), ("ring", ("ring", 1.0)), ("busy", ("busy", 1.0)),
    ({"mode": "auto", "after_s": 0}, ("auto", 0.0)),
])
def test_answer_policy_from_a_lab_option(value, expect):
    policy = AnswerPolicy.parse(value)
    assert (policy.mode, policy.after_s) == expect


@pytest.mark.parametrize("value, message", [("maybe", "expected auto, ring or busy"), ("auto:-1", "after_s must be >= 0")])
def test_bad_answer_policy_says_what_was_expected(value, message):
    with pytest.raises(ValueError, match=message):
        AnswerPolicy.parse(value)


def test_client_without_a_user_is_a_clear_error():
    ctx = RoleContext(network=None, events=None, settings=RoleSettings(), tenant=None, identities={}, trust="")
    with pytest.raises(ValueError, match="needs options.user"):
        TeamsClient(ctx, NodeSpec("carol", "carol-pc.contoso.com", "teams_client", options={}))


@pytest.mark.sim
async def test_an_unanswered_outgoing_call_is_cancelled_after_the_no_answer_timeout(pki):
    world = await branch_world(pki, settings=RoleSettings(client_no_answer_timeout_s=20))
    carol = world.clients[CAROL]
    await asyncio.sleep(60)
    world.link().blackhole()
    await carol.wait_state("appliance", timeout=60)
    world.sbc.far.answers["+14255550100"] = ("ring",)
    loop = asyncio.get_running_loop()
    cancel_at_sbc = loop.create_future()
    world.events.subscribe(lambda r: r["event"] == "sip.received" and r.get("node") == "sbc"
                           and r["summary"].startswith("CANCEL") and not cancel_at_sbc.done()
                           and cancel_at_sbc.set_result(r))
    t0 = loop.time()
    call = await carol.place_call("4255550100")
    assert (call.status, call.state) == (487, "failed") and "no answer within 20s" in call.reason
    assert loop.time() - t0 == pytest.approx(20, abs=1)
    await asyncio.wait_for(cancel_at_sbc, 1)  # the SBA passed the CANCEL on to the SBC
    assert carol.state == "appliance" and not carol.machine.outgoing_calls()


@pytest.mark.sim
async def test_hanging_up_a_ringing_call_cancels_it(pki):
    world = await branch_world(pki)
    carol = world.clients[CAROL]
    await asyncio.sleep(20)
    world.cloud.far[PROXIES[0]].answers["4255550100"] = ("ring",)
    placing = asyncio.ensure_future(carol.place_call("4255550100"))
    await asyncio.sleep(3)
    [call] = carol.calls
    assert call.state == "ringing"
    assert await call.hangup() == 487
    assert (await placing) is call and call.reason == "caller hung up before answer"


@pytest.mark.parametrize("body, status", [
    (b"SIP/2.0 100 Trying\r\n", 100), (b"SIP/2.0 486 Busy Here\r\n", 486), (b"SIP/2.0 200 OK", 200),
    (b"", None), (b"INVITE sip:x SIP/2.0\r\n", None), (b"SIP/2.0 20 OK\r\n", None),
])
def test_the_status_of_a_refer_notify_is_read_from_its_sipfrag(body, status):
    assert sipfrag_status(body) == status
