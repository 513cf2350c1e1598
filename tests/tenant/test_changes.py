"""Scenario `change` steps: the tenant changes mid-run, routing sees it, bad changes fail at the step."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from simulator.tenant.changes import apply_change
from simulator.tenant.errors import TenantError
from simulator.tenant.routing import route_inbound, select_route
from simulator.tenant.yaml_loader import load_yaml

CONTOSO = load_yaml(Path(__file__).resolve().parents[2] / "examples" / "contoso.yaml")
FRANK = {"upn": "frank@contoso.com", "number": "+12065550204", "site": "Seattle", "voice_routing_policy": "Seattle",
         "dial_plan": "Seattle", "sba_policy": "SEA"}


@pytest.fixture
def tenant():
    return copy.deepcopy(CONTOSO)


def test_added_user_is_routed_and_found_by_number(tenant):
    line = apply_change(tenant, {"add_user": FRANK}, where="s.yaml:3")
    assert line == ("added user frank@contoso.com: +12065550204, site Seattle, voice routing policy Seattle, "
                    "dial plan Seattle, SBA policy SEA")
    frank = tenant.user("frank@contoso.com")
    assert (frank.enterprise_voice_enabled, frank.phone_number_type) == (True, "DirectRouting")
    assert route_inbound(tenant, "sbc-sea.contoso.com", "+12065550204").user == "frank@contoso.com"
    assert select_route(tenant, "frank@contoso.com", "0201").normalized == "+12065550201"
    tenant.validate()


def test_user_without_number_has_no_enterprise_voice(tenant):
    apply_change(tenant, {"add_user": {"upn": "gina@contoso.com"}})
    gina = tenant.user("gina@contoso.com")
    assert (gina.phone_number, gina.enterprise_voice_enabled, gina.voice_routing_policy) == (None, False, None)


def test_removed_user_frees_the_number(tenant):
    assert apply_change(tenant, {"remove_user": {"upn": "Dave@contoso.com"}}) == (
        "removed user dave@contoso.com (number +12065550202 is free)")
    assert tenant.user_by_number("+12065550202") is None
    apply_change(tenant, {"add_user": {**FRANK, "number": "+12065550202"}})
    assert tenant.user_by_number("+12065550202").upn == "frank@contoso.com"


def test_changed_number_is_what_inbound_routing_finds(tenant):
    assert route_inbound(tenant, "sbc-sea.contoso.com", "+12065550201").user == "carol@contoso.com"  # cache warm
    line = apply_change(tenant, {"set_number": {"upn": "carol@contoso.com", "number": "+12065550299"}})
    assert line == "number of carol@contoso.com: +12065550201 -> +12065550299"
    assert route_inbound(tenant, "sbc-sea.contoso.com", "+12065550201").user is None
    assert route_inbound(tenant, "sbc-sea.contoso.com", "+12065550299").user == "carol@contoso.com"
    assert apply_change(tenant, {"set_number": {"upn": "carol@contoso.com", "number": None}}) == (
        "number of carol@contoso.com: +12065550299 -> none")


def test_disabled_gateway_is_no_longer_offered(tenant):
    before = select_route(tenant, "carol@contoso.com", "2065550100")  # fills the routing caches
    assert before.gateways == ("sbc-sea.contoso.com",)
    line = apply_change(tenant, {"set_gateway": {"fqdn": "SBC-SEA.contoso.com", "enabled": False}})
    assert line == "gateway sbc-sea.contoso.com: enabled true -> false"
    after = select_route(tenant, "carol@contoso.com", "2065550100")
    # Seattle Local still matches first, so later usages are not evaluated [S12]: no gateway at all
    assert (after.usage, after.gateways) == ("Seattle Local", ())
    assert any("Enabled is false" in r for r in after.reasons)
    assert set(select_route(tenant, "alice@contoso.com", "2065550100").gateways) == {"sbc1.contoso.com", "sbc2.contoso.com"}


def test_gateway_failover_settings_change_the_failover_plan(tenant):
    select_route(tenant, "alice@contoso.com", "+442071234567")
    line = apply_change(tenant, {"set_gateway": {"fqdn": "sbc2.contoso.com", "failover_response_codes": [503, 486],
                                                 "failover_time_seconds": 5, "max_concurrent_sessions": None}})
    assert line == ("gateway sbc2.contoso.com: max_concurrent_sessions 100 -> none, failover_time_seconds 20 -> 5, "
                    "failover_response_codes 408,503,504 -> 486,503")
    plan = select_route(tenant, "alice@contoso.com", "+442071234567").routes[0].gateways[0]
    assert (plan.failover_response_codes, plan.failover_time_seconds) == ((486, 503), 5)


@pytest.mark.parametrize("kind, name, expect_line, expect", [
    ("voice_routing_policy", "US Only", "granted voice routing policy US Only to carol@contoso.com", "US Only"),
    ("dial_plan", "redmond", "granted dial plan Redmond to carol@contoso.com", "Redmond"),
    ("sba_policy", None, "carol@contoso.com is back on the default SBA policy (was SEA)", None),
    ("sba_policy", "Global", "carol@contoso.com is back on the default SBA policy (was SEA)", None),
])
def test_grant_sets_or_clears_a_policy(tenant, kind, name, expect_line, expect):
    assert apply_change(tenant, {"grant": {"upn": "carol@contoso.com", "kind": kind, "name": name}}) == expect_line
    assert getattr(tenant.user("carol@contoso.com"), kind) == expect


def test_granted_dial_plan_changes_normalization(tenant):
    assert select_route(tenant, "carol@contoso.com", "0100").normalized == "+12065550100"
    apply_change(tenant, {"grant": {"upn": "carol@contoso.com", "kind": "dial_plan", "name": "Redmond"}})
    assert select_route(tenant, "carol@contoso.com", "0100").normalized == "+14255550100"


def test_forwarding_settings(tenant):
    line = apply_change(tenant, {"set_forwarding": {"upn": "dave@contoso.com", "unanswered_target": "carol@contoso.com",
                                                    "unanswered_delay_seconds": 15}})
    assert line == "forwarding of dave@contoso.com: unanswered_target carol@contoso.com, unanswered_delay_seconds 15"
    dave = tenant.user("dave@contoso.com")
    assert (dave.unanswered_target, dave.unanswered_delay_seconds, dave.forwarding_target) == (
        "carol@contoso.com", 15, None)


@pytest.mark.parametrize("change, message", [
    ("add a user", "a change is a mapping with one key, the kind of change"),
    ({"add_user": FRANK, "remove_user": {"upn": "dave@contoso.com"}}, "not 2 keys (add_user, remove_user)"),
    ({"add_usr": FRANK}, "unknown change 'add_usr' (expected one of add_user, remove_user, set_number, set_gateway, "
                         "grant, set_forwarding) (did you mean 'add_user'?)"),
    ({"add_user": "frank"}, "add_user takes a mapping with upn, number, site"),
    ({"add_user": {**FRANK, "numbr": "+1"}}, "add_user: unknown key 'numbr' (expected upn, number, site"),
    ({"add_user": {"number": "+12065550204"}}, "add_user needs upn"),
    ({"add_user": {**FRANK, "upn": "carol@contoso.com"}}, "user 'carol@contoso.com' already exists"),
    ({"add_user": {**FRANK, "upn": "frank"}}, "upn must look like name@domain"),
    ({"add_user": {**FRANK, "number": "206-555-0204"}}, "phone_number (-PhoneNumber) must be an E.164 number like +14255550100"),
    ({"add_user": {**FRANK, "number": 12065550204}}, "phone_number (-PhoneNumber) must be an E.164 number"),
    ({"add_user": {**FRANK, "number": "+12065550201"}}, "+12065550201 is already assigned to carol@contoso.com"),
    ({"add_user": {**FRANK, "site": "Seatle"}}, "unknown network site 'Seatle' (did you mean 'Seattle'?)"),
    ({"add_user": {**FRANK, "voice_routing_policy": "Seatle"}},
     "unknown voice routing policy 'Seatle' (did you mean 'Seattle'?)"),
    ({"add_user": {**FRANK, "sba_policy": "NOPE"}}, "unknown SBA policy 'NOPE'"),
    ({"remove_user": {"upn": "dave@contoso.co"}}, "unknown user 'dave@contoso.co' (did you mean 'dave@contoso.com'?)"),
    ({"set_number": {"upn": "dave@contoso.com"}}, "set_number needs number"),
    ({"set_number": {"upn": "dave@contoso.com", "number": "+12065550201"}}, "already assigned to carol@contoso.com"),
    ({"set_gateway": {"fqdn": "sbc3.contoso.com", "enabled": False}},
     "unknown PSTN gateway 'sbc3.contoso.com' (did you mean"),
    ({"set_gateway": {"fqdn": "sbc1.contoso.com"}}, "say what to change: enabled"),
    ({"set_gateway": {"fqdn": "sbc1.contoso.com", "enabled": "no"}}, "enabled must be true or false, not 'no'"),
    ({"set_gateway": {"fqdn": "sbc1.contoso.com", "failover_time_seconds": 0}},
     "failover_time_seconds (-FailoverTimeSeconds) must be a whole number from 1 to 3600, not 0"),
    ({"set_gateway": {"fqdn": "sbc1.contoso.com", "max_concurrent_sessions": True}},
     "max_concurrent_sessions (-MaxConcurrentSessions) must be a whole number from 1 to 100000, not True"),
    ({"set_gateway": {"fqdn": "sbc1.contoso.com", "failover_response_codes": "408,200"}},
     "failover_response_codes (-FailoverResponseCodes) must be SIP response codes from 400 to 699, not 200"),
    ({"grant": {"upn": "dave@contoso.com", "kind": "dialplan", "name": "Redmond"}},
     "kind must be one of voice_routing_policy, dial_plan, sba_policy, emergency_call_routing_policy, not 'dialplan' "
     "(did you mean 'dial_plan'?)"),
    ({"grant": {"upn": "dave@contoso.com", "kind": "dial_plan", "name": "Redmnd"}},
     "unknown dial plan 'Redmnd' (did you mean 'Redmond'?)"),
    ({"grant": {"upn": "dave@contoso.com", "kind": "dial_plan"}}, "grant needs name"),
])
def test_bad_change_is_an_error_at_the_step_and_changes_nothing(tenant, change, message):
    with pytest.raises(TenantError) as err:
        apply_change(tenant, change, where="branch-outage.yaml:42")
    assert str(err.value).startswith("branch-outage.yaml:42: ")
    assert message in str(err.value)
    assert tenant == CONTOSO
