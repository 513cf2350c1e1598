"""The SBA's own decisions: token rules, CDR buffering; and its cache of the branch [S26]."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from simulator.roles.cdr import CallPath, CdrDraft, CdrStore, Direction, result_for
from simulator.roles.sba_cache import (
    BranchConfig,
    BranchConfigSource,
    CdrBuffer,
    ClientAdmission,
    GlobalGrant,
    SbaCache,
    UnknownSba,
)
from simulator.roles.settings import DAY_S, RoleSettings
from simulator.tenant.model import (
    DialPlan,
    Gateway,
    NormalizationRule,
    User,
    VoiceRoute,
    VoiceRoutingPolicy,
)
from simulator.tenant.ps_loader import run_powershell
from simulator.tenant.routing import select_route
from simulator.tenant.yaml_loader import load_yaml

H = 3600.0
ALICE = "alice@contoso.com"


# --- token rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "grace_from, now, expect_ok, expect_reason",
    [
        # token: signed in at 0, expires at 1 h; client last seen at now - 60 (so the 24 h rule holds)
        ("token_expiry", 0.5 * H, True, "token valid"),
        ("token_expiry", 2 * H, True, "within grace"),
        ("token_expiry", 7 * DAY_S + H, True, "within grace"),
        ("token_expiry", 7 * DAY_S + H + 1, False, "beyond the 604800s grace (counted from token_expiry)"),
        ("last_authentication", 7 * DAY_S, True, "within grace"),
        ("last_authentication", 7 * DAY_S + 1, False, "beyond the 604800s grace (counted from last_authentication)"),
    ],
)
def test_expired_token_accepted_within_grace_refused_after(grace_from, now, expect_ok, expect_reason):
    admission = ClientAdmission(RoleSettings(token_grace_from=grace_from))
    admission.record_contact(ALICE, now - 60)
    verdict = admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=H, now=now)
    assert verdict.ok is expect_ok
    assert expect_reason in verdict.reason


@pytest.mark.parametrize(
    "seen_at, now, expect_ok",
    [(None, 100.0, False), (0.0, DAY_S, True), (0.0, DAY_S + 1, False), (500.0, DAY_S + 1, True)],
)
def test_client_not_seen_within_24h_is_refused(seen_at, now, expect_ok):
    admission = ClientAdmission(RoleSettings())
    if seen_at is not None:
        admission.record_contact("Alice@Contoso.com", seen_at)  # UPNs are case-insensitive
    verdict = admission.admit(ALICE, token_authenticated_at=now - 10, token_expires_at=now + H, now=now)
    assert verdict.ok is expect_ok
    if not expect_ok:
        assert "not seen within 86400s" in verdict.reason


def test_successful_registration_counts_as_contact():
    admission = ClientAdmission(RoleSettings())
    admission.record_contact(ALICE, 0.0)
    assert admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=3 * DAY_S, now=DAY_S - 1).ok
    assert admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=3 * DAY_S, now=2 * DAY_S - 2).ok


def test_client_without_token_is_refused():
    admission = ClientAdmission(RoleSettings())
    admission.record_contact(ALICE, 0.0)
    verdict = admission.admit(ALICE, token_authenticated_at=None, token_expires_at=None, now=10.0)
    assert not verdict.ok and "no token" in verdict.reason


@pytest.mark.parametrize("cae, now, expect_ok", [(False, 4000.0, True), (True, 1000.0, True), (True, 2000.0, True),
                                                  (True, 2001.0, False)])
def test_cae_token_served_about_thirty_minutes(cae, now, expect_ok):
    admission = ClientAdmission(RoleSettings(client_cae_tokens=cae))
    admission.record_contact(ALICE, 100.0)
    assert admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=DAY_S, now=200.0).ok  # first
    verdict = admission.admit(ALICE, token_authenticated_at=0.0, token_expires_at=DAY_S, now=now)
    assert verdict.ok is expect_ok
    if not expect_ok:
        assert "CAE token" in verdict.reason


# --- CDR buffer -----------------------------------------------------------------------------------
def sba_cdr(n: int):
    d = CdrDraft(call_id=f"call-{n}", caller="+12065550101", callee="+14255550100", direction=Direction.OUTBOUND,
                 path=CallPath.SBA, node="sba1.contoso.com", invite_at=float(n), gateway="sbc-sea.contoso.com")
    d.answered(n + 1.0)
    return d.finish(n + 30.0)


def test_cdr_upload_retry_neither_loses_nor_doubles():
    settings = RoleSettings(sba_cdr_upload_retry_s=30)
    buffer, cloud = CdrBuffer(settings), CdrStore()
    for n in range(3):
        assert buffer.add(sba_cdr(n))
    assert not buffer.add(sba_cdr(1))  # written twice: kept once

    # 1st upload: the link is cut before anything arrives
    assert buffer.upload_due(100.0)
    buffer.start_upload(100.0)
    assert not buffer.upload_due(100.0)  # one upload at a time
    assert buffer.upload_failed(100.0) == 130.0
    assert not buffer.upload_due(129.0) and buffer.upload_due(130.0)

    # 2nd upload: the cloud stores it, but the acknowledgement is lost
    cloud.ingest(buffer.start_upload(130.0))
    buffer.upload_failed(135.0)
    buffer.add(sba_cdr(3))  # a call ended meanwhile

    # 3rd upload: everything again plus the new record; the cloud acknowledges all
    batch = buffer.start_upload(165.0)
    assert [c.call_id for c in batch] == ["call-0", "call-1", "call-2", "call-3"]
    assert buffer.acknowledge(cloud.ingest(batch)) == 4

    assert buffer.pending == {} and buffer.uploaded == 4
    assert sorted(c.call_id for c in cloud.by_path(CallPath.SBA)) == ["call-0", "call-1", "call-2", "call-3"]
    assert len(cloud.records) == 4
    assert not buffer.upload_due(200.0)


def test_partial_acknowledgement_keeps_the_rest():
    buffer = CdrBuffer(RoleSettings())
    for n in range(3):
        buffer.add(sba_cdr(n))
    buffer.start_upload(0.0)
    assert buffer.acknowledge(["sba1.contoso.com:call-1", "unknown-id"]) == 1
    assert list(buffer.pending) == ["sba1.contoso.com:call-0", "sba1.contoso.com:call-2"]
    assert buffer.upload_due(0.0)


def test_same_id_different_content_is_refused_on_both_sides():
    buffer, cloud = CdrBuffer(RoleSettings()), CdrStore()
    first = sba_cdr(0)
    other = CdrDraft(call_id="call-0", caller="+1", callee="+2", direction=Direction.OUTBOUND, path=CallPath.SBA,
                     node="sba1.contoso.com", invite_at=0.0).finish(1.0, result_for("caller_cancelled"))
    buffer.add(first)
    with pytest.raises(ValueError, match="twice with different content"):
        buffer.add(other)
    cloud.ingest([first])
    with pytest.raises(ValueError, match="twice with different content"):
        cloud.ingest([other])


def test_start_upload_twice_is_a_programming_error():
    buffer = CdrBuffer(RoleSettings())
    buffer.add(sba_cdr(0))
    buffer.start_upload(0.0)
    with pytest.raises(RuntimeError, match="already in flight"):
        buffer.start_upload(1.0)


# --- the versioned cache ----------------------------------------------------------------------------
SBA = "sba1.contoso.com"
SEA, HQ = "sbc-sea.contoso.com", "sbc-hq.contoso.com"


def user(upn: str, number: str | None, **kw) -> User:
    return User(upn=upn, phone_number=number, enterprise_voice_enabled=True, sba_policy="SEA",
                voice_routing_policy="Seattle", dial_plan="Seattle", **kw)


def gateway(fqdn: str, enabled: bool = True) -> Gateway:
    return Gateway(fqdn, 5061, enabled=enabled)


SEATTLE_PLAN = DialPlan("Seattle", (NormalizationRule("7digit", r"^(\d{7})$", "+1206$1"),))
BRANCH = BranchConfig(
    sba=SBA,
    usages=("Local",),
    users=(user("bob@contoso.com", "+12065550101"), user("carol@contoso.com", "+12065550102")),
    voice_routing_policies=(VoiceRoutingPolicy("Seattle", ("Local",)),),
    voice_routes=(VoiceRoute("Seattle local", r"^\+1(206|425)\d{7}$", (SEA,), ("Local",), 1),),
    gateways=(gateway(SEA),),
    dial_plans=(SEATTLE_PLAN,),
    emergency_dial_strings=("911", "933"),
)


def test_sync_versions_only_on_change_and_reports_what_changed():
    cache = SbaCache(SBA, RoleSettings())
    first = cache.apply_sync(BRANCH, 0.0)
    assert (first.version, first.changed, first.added) == (1, True, ("bob@contoso.com", "carol@contoso.com"))
    same = cache.apply_sync(BRANCH, 300.0)
    assert (same.version, same.changed) == (1, False) and cache.snapshot.synced_at == 300.0
    moved = replace(BRANCH, users=(user("bob@contoso.com", "+12065550199"), user("dave@contoso.com", "+12065550103")))
    outcome = cache.apply_sync(moved, 600.0)
    assert (outcome.version, outcome.added, outcome.removed, outcome.renumbered) == (
        2, ("dave@contoso.com",), ("carol@contoso.com",), ("bob@contoso.com",))


def test_user_added_after_last_sync_is_unknown_to_sba():
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BRANCH, 0.0)
    # the tenant gains erin at t=400; the link is cut at t=500 and the 600 s sync fails
    cache.sync_started(600.0)
    cache.sync_failed(600.0, "connection reset")
    assert cache.user("erin@contoso.com") is None
    assert cache.user_by_number("+12065550104") is None
    assert cache.version == 1 and cache.last_failure == "connection reset"


def test_number_changed_after_sync_keeps_old_value():
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BRANCH, 0.0)
    # bob's number changes in the tenant after the last sync; the SBA still routes the old one
    assert cache.user_by_number("+12065550101").upn == "bob@contoso.com"
    assert cache.user_by_number("+12065550199") is None
    assert cache.user("BOB@contoso.com").phone_number == "+12065550101"


@pytest.mark.parametrize("number, expect", [("+12065550101", "bob@contoso.com"), ("12065550101", None),
                                            ("+12065550101;ext=1", None), ("tel:+12065550101", None)])
def test_reverse_number_lookup_is_an_exact_match(number, expect):
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BRANCH, 0.0)
    found = cache.user_by_number(number)
    assert (found.upn if found else None) == expect


@pytest.mark.parametrize(
    "attempts, now, expect_due",
    [([], 0.0, True), ([0.0], 299.0, False), ([0.0], 300.0, True), ([0.0, 300.0], 599.0, False)],
)
def test_sync_every_interval(attempts, now, expect_due):
    cache = SbaCache(SBA, RoleSettings(sba_sync_interval_s=300))
    for t in attempts:
        cache.sync_started(t)
    assert cache.sync_due(now) is expect_due


def test_branch_config_round_trips_through_json_exactly():
    config = replace(BRANCH, version=7, global_grants=(GlobalGrant("dial_plan", "Seattle"),),
                     users=(user("bob@contoso.com", "+12065550101", forwarding_target="+14255550100",
                                 unanswered_delay_seconds=30),))
    body = config.to_json()
    back = BranchConfig.from_json(body)
    assert back == config and back.version == 7
    assert back.to_json() == body
    assert back.users[0].unanswered_delay_seconds == 30 and back.voice_routes[0].priority == 1


@pytest.mark.parametrize(
    "body, expect",
    [
        (b"\xff", "expected UTF-8 JSON"),
        (b"{", "expected UTF-8 JSON"),
        (b"[]", "branch configuration must be an object with keys sba, version"),
        (b'{"users": [{"phone_number": "+1"}]}', "branch configuration.users[0] needs 'upn'"),
        (b'{"users": [{"upn": "a@b", "colour": 1}]}', "unknown key 'colour'"),
        (b'{"users": {"upn": "a@b"}}', "branch configuration.users must be a list"),
        (b'{"version": "3"}', "branch configuration.version must be a whole number, not '3'"),
        (b'{"gateways": [{"fqdn": "x", "sip_signaling_port": 5061, "enabled": 1}]}',
         "gateways[0].enabled must be true or false"),
        (b'{"users": [{"upn": "a@b", "voice_routing_policy": "Gone"}]}',
         "user 'a@b' names voice routing policy 'Gone', which is not in it"),
        (b'{"voice_routes": [{"name": "r", "online_pstn_gateway_list": ["sbc9.contoso.com"]}]}',
         "voice route 'r' names gateway 'sbc9.contoso.com'"),
    ],
)
def test_malformed_branch_config_says_what_was_expected(body, expect):
    with pytest.raises(ValueError, match="not a branch configuration") as err:
        BranchConfig.from_json(body)
    assert expect in str(err.value)


# --- survivable routing from the cache ---------------------------------------------------------------
BOTH_GATEWAYS = (gateway(SEA), gateway(HQ))


def routing_branch(routes: tuple[VoiceRoute, ...], gateways=BOTH_GATEWAYS):
    return replace(BRANCH, usages=("Local", "Long distance"),
                   voice_routing_policies=(VoiceRoutingPolicy("Seattle", ("Local", "Long distance")),),
                   voice_routes=routes, gateways=gateways)


US_ROUTES = (
    VoiceRoute("Seattle local", r"^\+1(206|425)\d{7}$", (SEA,), ("Local",), 1),
    VoiceRoute("US", r"^\+1\d{10}$", (HQ, SEA), ("Long distance",), 2),
)
CATCH_ALL = VoiceRoute("Anything", r"\d+", (SEA,), ("Long distance",), 5)


@pytest.mark.parametrize(
    "routes, dialed, expect_number, expect_gateways, expect_refusal",
    [
        # the user's cached OVRP has only E.164 patterns: 911 is sent as "911" and fails [S26]
        (US_ROUTES, "911", "911", (), "emergency_no_route_at_sba"),
        # a catch-all pattern in the regular OVRP matches it: routed, still without '+'
        (US_ROUTES + (CATCH_ALL,), "911", "911", (SEA,), None),
        (US_ROUTES + (CATCH_ALL,), "933", "933", (SEA,), None),
        # the same digits that are not an emergency string are normalized first
        (US_ROUTES, "5550123", "+12065550123", (SEA,), None),
    ],
)
def test_emergency_number_sent_without_plus_routes_only_if_policy_matches(routes, dialed, expect_number,
                                                                          expect_gateways, expect_refusal):
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(routing_branch(routes), 0.0)
    decision = cache.decide_outbound("bob@contoso.com", dialed)
    assert decision.number == expect_number
    assert decision.emergency == (dialed in ("911", "933"))
    assert decision.number.startswith("+") is not decision.emergency
    assert decision.gateways == expect_gateways
    assert decision.refusal == expect_refusal
    assert decision.reasons
    if decision.routable:  # what the SBA sends to the SBC: the route's own called number
        assert decision.route.routes[0].gateways[0].called_number == expect_number


@pytest.mark.parametrize(
    "dialed, health, expect_routes, expect_gateways, expect_refusal",
    [
        # first usage with a matching route wins; later usages are never evaluated [S12]
        ("+12065550199", {}, ("Seattle local",), (SEA,), None),
        ("+13125550100", {}, ("US",), (HQ, SEA), None),  # the order within a route is shuffled
        # during the outage the HQ SBC is unreachable from the branch: the SBA demotes it
        ("+13125550100", {HQ: "demoted"}, ("US",), (SEA, HQ), None),
        ("+13125550100", {HQ: "disabled", SEA: "disabled"}, ("US",), (), "all_gateways_failed"),
        ("+442071234567", {}, (), (), "no_matching_route"),
    ],
)
def test_outbound_route_from_cache_only(dialed, health, expect_routes, expect_gateways, expect_refusal):
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(routing_branch(US_ROUTES), 0.0)
    decision = cache.decide_outbound("bob@contoso.com", dialed, health=health)
    assert decision.routes == expect_routes
    assert set(decision.gateways) == set(expect_gateways)
    if health.get(HQ) == "demoted":
        assert decision.gateways == expect_gateways
    assert decision.refusal == expect_refusal


def test_demoted_gateway_can_be_skipped_instead_of_tried_last():
    cache = SbaCache(SBA, RoleSettings(demoted_gateways="skipped"))
    cache.apply_sync(routing_branch(US_ROUTES), 0.0)
    assert cache.decide_outbound("bob@contoso.com", "+13125550100", health={HQ: "demoted"}).gateways == (SEA,)


def test_disabled_gateway_in_cache_is_never_offered():
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(routing_branch(US_ROUTES, gateways=(gateway(SEA), gateway(HQ, enabled=False))), 0.0)
    for seed in range(20):
        decision = cache.decide_outbound("bob@contoso.com", "+13125550100", rng=random.Random(seed))
        assert decision.gateways == (SEA,)


def test_number_of_a_cached_user_is_a_local_call():
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(routing_branch(US_ROUTES), 0.0)
    decision = cache.decide_outbound("bob@contoso.com", "5550102")  # carol, via the 7-digit rule
    assert (decision.number, decision.local_user, decision.gateways) == ("+12065550102", "carol@contoso.com", ())
    assert decision.routable


def test_caller_unknown_to_the_cache_is_refused():
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BRANCH, 0.0)
    decision = cache.decide_outbound("erin@contoso.com", "+12065550101")
    assert decision.refusal == "unknown_to_sba" and "version 1" in decision.reasons[0]


@pytest.mark.parametrize("user_plan, global_grant, expect", [
    ("Seattle", None, "+12065550123"),
    (None, None, "+14255550123"),  # no grant: the tenant's Global plan
    (None, "Seattle", "+12065550123"),  # no grant, but Seattle granted with -Global
])
def test_user_dial_plan_else_global_grant_else_tenant_global(user_plan, global_grant, expect):
    plans = (SEATTLE_PLAN, DialPlan("Global", (NormalizationRule("7digit", r"^(\d{7})$", "+1425$1"),)))
    config = replace(BRANCH, users=(replace(user("bob@contoso.com", "+12065550101"), dial_plan=user_plan),),
                     dial_plans=plans,
                     global_grants=(GlobalGrant("dial_plan", global_grant),) if global_grant else ())
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BranchConfig.from_json(config.to_json()), 0.0)
    assert cache.decide_outbound("bob@contoso.com", "5550123").number == expect
    assert cache.dial_plan_rules("bob@contoso.com")[0].translation == ("+1425$1" if expect[2:5] == "425" else "+1206$1")


@pytest.mark.parametrize(
    "forwarding, expect",
    [
        ({}, ("bob@contoso.com", None, None, None)),
        ({"forwarding_target": "+14255550100"}, ("bob@contoso.com", "+14255550100", None, None)),
        ({"unanswered_target": "carol@contoso.com"}, ("bob@contoso.com", None, "carol@contoso.com", 20.0)),
        ({"unanswered_target": "+14255550100", "unanswered_delay_seconds": 30},
         ("bob@contoso.com", None, "+14255550100", 30.0)),
    ],
)
def test_inbound_by_cached_number_with_forwarding(forwarding, expect):
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(replace(BRANCH, users=(user("bob@contoso.com", "+12065550101", **forwarding),)), 0.0)
    decision = cache.decide_inbound("+12065550101")
    assert (decision.user, decision.forward_to, decision.unanswered_to, decision.unanswered_after_s) == expect
    assert decision.refusal is None and decision.reason.startswith("+12065550101 is bob@contoso.com")


def test_inbound_to_unknown_number_is_refused():
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BRANCH, 0.0)
    decision = cache.decide_inbound("+12065550177")
    assert decision.user is None and decision.refusal == "unknown_to_sba"


# --- syncing from a real tenant (PowerShell, as an admin writes it) ---------------------------------
TENANT_PS1 = r"""
New-CsOnlinePSTNGateway -Fqdn sbc-sea.contoso.com -SipSignalingPort 5061 -Enabled $true
New-CsOnlinePSTNGateway -Fqdn sbc-hq.contoso.com -SipSignalingPort 5061 -Enabled $true -FailoverResponseCodes "408, 503" -FailoverTimeSeconds 20
New-CsOnlinePSTNGateway -Fqdn sbc-other.contoso.com -SipSignalingPort 5061 -Enabled $true
Set-CsOnlinePstnUsage -Identity Global -Usage @{Add="Local","Long distance","Other"}
New-CsOnlineVoiceRoute -Identity "Seattle local" -NumberPattern '^\+1(206|425)\d{7}$' -OnlinePstnGatewayList sbc-sea.contoso.com -Priority 1 -OnlinePstnUsages "Local"
New-CsOnlineVoiceRoute -Identity "US" -NumberPattern '^\+1\d{10}$' -OnlinePstnGatewayList sbc-hq.contoso.com, sbc-sea.contoso.com -Priority 2 -OnlinePstnUsages "Long distance"
New-CsOnlineVoiceRoute -Identity "Elsewhere" -NumberPattern '^\+44' -OnlinePstnGatewayList sbc-other.contoso.com -OnlinePstnUsages "Other"
New-CsOnlineVoiceRoutingPolicy "Seattle" -OnlinePstnUsages "Local","Long distance"
New-CsOnlineVoiceRoutingPolicy "HQ" -OnlinePstnUsages "Other"
$nr = New-CsVoiceNormalizationRule -Parent Global -Name 7digit -Pattern '^(\d{7})$' -Translation '+1206$1' -InMemory
New-CsTenantDialPlan -Identity SeattleDP -NormalizationRules @{Add=$nr}
New-CsTenantNetworkSite -Identity Seattle
New-CsTeamsSurvivableBranchAppliance -Fqdn sba1.contoso.com -Site Seattle
New-CsTeamsSurvivableBranchAppliancePolicy -Identity SEA -BranchApplianceFqdns "sba1.contoso.com"
$en = New-CsTeamsEmergencyNumber -EmergencyDialString 911 -EmergencyDialMask 933 -OnlinePSTNUsage "Local"
Set-CsTeamsEmergencyCallRoutingPolicy -Identity Global -EmergencyNumbers @{add=$en}
Set-CsPhoneNumberAssignment -Identity bob@contoso.com -PhoneNumber +12065550101 -PhoneNumberType DirectRouting
Grant-CsOnlineVoiceRoutingPolicy -Identity bob@contoso.com -PolicyName Seattle
Grant-CsTenantDialPlan -Identity bob@contoso.com -PolicyName SeattleDP
Grant-CsTeamsSurvivableBranchAppliancePolicy -Identity bob@contoso.com -PolicyName SEA
Set-CsPhoneNumberAssignment -Identity carol@contoso.com -PhoneNumber +12065550102 -PhoneNumberType DirectRouting
Grant-CsOnlineVoiceRoutingPolicy -Identity carol@contoso.com -PolicyName Seattle
Grant-CsTeamsSurvivableBranchAppliancePolicy -Identity carol@contoso.com -PolicyName SEA
Set-CsPhoneNumberAssignment -Identity hq@contoso.com -PhoneNumber +14255550100 -PhoneNumberType DirectRouting
Grant-CsOnlineVoiceRoutingPolicy -Identity hq@contoso.com -PolicyName HQ
"""
ADD_ERIN = """
Set-CsPhoneNumberAssignment -Identity erin@contoso.com -PhoneNumber +12065550104 -PhoneNumberType DirectRouting
Grant-CsTeamsSurvivableBranchAppliancePolicy -Identity erin@contoso.com -PolicyName SEA
"""
RENUMBER_BOB = "Set-CsPhoneNumberAssignment -Identity bob@contoso.com -PhoneNumber +12065550199 -PhoneNumberType DirectRouting\n"
CATCH_ALL_PS1 = """
New-CsOnlineVoiceRoute -Identity "Anything" -NumberPattern '\\d+' -OnlinePstnGatewayList sbc-sea.contoso.com -Priority 9 -OnlinePstnUsages "Long distance"
"""


def tenant(*extra: str):
    loaded, warnings = run_powershell(TENANT_PS1 + "".join(extra), "contoso.ps1")
    assert warnings == []
    return loaded


def synced_cache(*extra: str) -> SbaCache:
    cache = SbaCache(SBA, RoleSettings())
    config = BranchConfig.from_tenant(tenant(*extra), SBA, version=1)
    # the sync is a real exchange: what the SBA stores is what crossed the wire as JSON
    cache.apply_sync(BranchConfig.from_json(config.to_json()), 0.0)
    return cache


def test_sync_from_tenant_caches_the_users_whose_sba_policy_lists_this_sba():
    cache = synced_cache()
    assert [u.upn for u in cache.users()] == ["bob@contoso.com", "carol@contoso.com"]  # not hq
    config = cache.snapshot.config
    assert [p.name for p in config.voice_routing_policies] == ["Seattle"]
    assert [r.name for r in config.voice_routes] == ["Seattle local", "US"]  # not HQ's "Elsewhere"
    assert config.usages == ("Local", "Long distance")
    assert [(g.fqdn, g.failover_response_codes, g.failover_time_seconds) for g in config.gateways] == [
        ("sbc-sea.contoso.com", {408, 503, 504}, 10), ("sbc-hq.contoso.com", {408, 503}, 20)]
    assert [p.name for p in config.dial_plans] == ["Global", "SeattleDP"]  # carol has no grant: Global
    assert config.emergency_dial_strings == ("911", "933")
    assert cache.decide_outbound("bob@contoso.com", "5550123").gateways == ("sbc-sea.contoso.com",)


def test_sync_refuses_an_sba_the_tenant_does_not_list():
    with pytest.raises(UnknownSba, match="sba9.contoso.com"):
        BranchConfig.from_tenant(tenant(), "sba9.contoso.com")


def test_cloud_version_grows_only_when_the_branch_content_changes():
    source = BranchConfigSource()
    assert source.config_for(tenant(), SBA).version == 1
    assert source.config_for(tenant(), "SBA1.contoso.com").version == 1
    # a change outside the branch (hq's number) is not the branch's content
    outside = "Set-CsPhoneNumberAssignment -Identity hq@contoso.com -PhoneNumber +14255550111 -PhoneNumberType DirectRouting\n"
    assert source.config_for(tenant(outside), SBA).version == 1
    assert source.config_for(tenant(ADD_ERIN), SBA).version == 2


def test_user_added_to_the_tenant_after_the_last_sync_is_unknown_until_the_next_one():
    cache = synced_cache()
    cache.sync_started(300.0)
    cache.sync_failed(300.0, "wan-seattle cut")  # erin is added to the tenant meanwhile
    assert cache.user("erin@contoso.com") is None
    assert cache.decide_inbound("+12065550104").refusal == "unknown_to_sba"
    assert cache.decide_outbound("erin@contoso.com", "+12065550101").refusal == "unknown_to_sba"
    outcome = cache.apply_sync(BranchConfig.from_tenant(tenant(ADD_ERIN), SBA, version=2), 900.0)  # link restored
    assert (outcome.version, outcome.added) == (2, ("erin@contoso.com",))
    assert cache.cloud_version == 2
    assert cache.decide_inbound("+12065550104").user == "erin@contoso.com"


def test_number_changed_in_the_tenant_after_the_last_sync_keeps_its_old_value():
    cache = synced_cache()
    changed = BranchConfig.from_tenant(tenant(RENUMBER_BOB), SBA)
    assert cache.decide_inbound("+12065550101").user == "bob@contoso.com"  # before the next sync
    assert cache.decide_inbound("+12065550199").user is None
    assert cache.apply_sync(changed, 300.0).renumbered == ("bob@contoso.com",)
    assert cache.decide_inbound("+12065550199").user == "bob@contoso.com"


@pytest.mark.parametrize(
    "extra, expect_gateways, expect_refusal",
    [
        ((), (), "emergency_no_route_at_sba"),  # Seattle's patterns are all E.164: 911 fails offline
        ((CATCH_ALL_PS1,), ("sbc-sea.contoso.com",), None),
    ],
)
def test_emergency_call_from_tenant_routes_only_if_the_regular_policy_matches(extra, expect_gateways, expect_refusal):
    decision = synced_cache(*extra).decide_outbound("bob@contoso.com", "911")
    assert (decision.number, decision.emergency) == ("911", True)
    assert (decision.gateways, decision.refusal) == (expect_gateways, expect_refusal)


# --- the cache and the cloud route the same way (one routing engine) ----------------------------------
EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("upn, dialed", [
    ("carol@contoso.com", "2065550123"), ("carol@contoso.com", "4255550100"), ("carol@contoso.com", "0123"),
    ("carol@contoso.com", "+442071234567"), ("dave@contoso.com", "+13125550100"),
])
def test_cached_decision_equals_the_cloud_decision_for_branch_users(upn, dialed):
    contoso = load_yaml(EXAMPLES / "contoso.yaml")
    cache = SbaCache(SBA, RoleSettings())
    cache.apply_sync(BranchConfig.from_json(BranchConfig.from_tenant(contoso, SBA).to_json()), 0.0)
    offline = cache.decide_outbound(upn, dialed, rng=random.Random(3))
    cloud = select_route(contoso, upn, dialed, rng=random.Random(3))
    assert offline.local_user is None
    assert (offline.number, offline.gateways, offline.routes) == (
        cloud.normalized, cloud.gateways, tuple(r.name for r in cloud.routes))
    # the SBA caches no caller ID policies [S26]: only the caller ID may differ (dave's is withheld online)
    assert _without_caller_id(offline.route.to_json()) == _without_caller_id(cloud.to_json())


def _without_caller_id(decision: dict) -> dict:
    reasons = [r for r in decision["reasons"] if "caller ID" not in r and "calling number" not in r]
    return {**{k: v for k, v in decision.items() if k != "caller_id"}, "reasons": reasons}
