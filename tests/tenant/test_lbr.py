"""Location-Based Routing [S21]: the restriction rules as tables, then how routing and
`drlab route` apply them (a refused gateway is left out; none left is no route, naming the rule)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.tenant import lbr
from simulator.tenant.check import load_cases, run_cases
from simulator.tenant.errors import TenantError
from simulator.tenant.lbr import Rule
from simulator.tenant.model import (
    EmergencyCallRoutingPolicy,
    EmergencyNumber,
    Gateway,
    NetworkRegion,
    NetworkSite,
    TeamsCallingPolicy,
    Tenant,
    User,
    VoiceRoute,
    VoiceRoutingPolicy,
)
from simulator.tenant.routing import route_inbound, select_route
from simulator.tenant.yaml_loader import load_yaml

DEL, HYD, DEL_PBX, MUM, OVR, PLAIN = ("sbc-del.contoso.com", "sbc-hyd.contoso.com", "pbx-del.contoso.com",
                                      "sbc-mum.contoso.com", "sbc-ovr.contoso.com", "sbc-us.contoso.com")


def tenant() -> Tenant:
    """Delhi and Hyderabad enabled for LBR, Mumbai not; an LBR gateway at each LBR site, one with
    the user override, gateways not enabled for LBR at Mumbai, at Delhi (a PBX) and at no site;
    ravi's emergency number 112 may leave through any of the three sites' SBCs."""
    t = Tenant(usages=("India", "India Emergency"))
    t.add("region", NetworkRegion("India"))
    for name, on in (("Delhi", True), ("Hyderabad", True), ("Mumbai", False)):
        t.add("site", NetworkSite(name, network_region_id="India", enable_location_based_routing=on))
    for fqdn, site, on, override in ((DEL, "Delhi", True, False), (HYD, "Hyderabad", True, False),
                                     (DEL_PBX, "Delhi", False, False), (MUM, "Mumbai", False, False),
                                     (OVR, "Hyderabad", True, True), (PLAIN, None, False, False)):
        t.add("gateway", Gateway(fqdn, 5061, enabled=True, gateway_site_id=site, gateway_site_lbr_enabled=on,
                                 gateway_lbr_enabled_user_override=override))
    t.add("teams_calling_policy", TeamsCallingPolicy("Toll Bypass", prevent_toll_bypass=True))
    t.add("voice_route", VoiceRoute("Delhi first", r"^\+91", (DEL,), ("India",), priority=1))
    t.add("voice_route", VoiceRoute("Hyderabad", r"^\+91", (HYD,), ("India",), priority=2))
    t.add("voice_route", VoiceRoute("Mumbai", r"^\+91", (MUM,), ("India",), priority=3))
    t.add("voice_route", VoiceRoute("Emergency 112", r"^112$", (DEL, HYD, MUM), ("India Emergency",), priority=4))
    t.add("voice_routing_policy", VoiceRoutingPolicy("India", ("India",)))
    t.add("emergency_call_routing_policy", EmergencyCallRoutingPolicy(
        "India 112", (EmergencyNumber("112", online_pstn_usage="India Emergency"),)))
    t.add("user", User("ravi@contoso.com", "+911140000001", "DirectRouting", True, network_site="Delhi",
                       voice_routing_policy="India", teams_calling_policy="Toll Bypass",
                       emergency_call_routing_policy="India 112"))
    t.add("user", User("nora@contoso.com", "+911140000002", "DirectRouting", True, network_site="Delhi",
                       voice_routing_policy="India"))
    return t


T = tenant()
RAVI, NORA = T.user("ravi@contoso.com"), T.user("nora@contoso.com")

OUTBOUND = [  # (user, endpoint site, gateway, allowed, rule)
    (RAVI, "Delhi", DEL, True, Rule.SAME_SITE),
    (RAVI, "Delhi", HYD, False, Rule.GATEWAY_NOT_AT_USER_SITE),
    (RAVI, "Delhi", DEL_PBX, False, Rule.GATEWAY_NOT_AT_USER_SITE),  # at the site, but not LBR-enabled
    (RAVI, "Delhi", MUM, False, Rule.GATEWAY_NOT_AT_USER_SITE),
    (RAVI, "Hyderabad", HYD, True, Rule.SAME_SITE),  # roaming to another LBR site: its gateway
    (RAVI, "Mumbai", MUM, True, Rule.UNMATCHED_SITE),
    (RAVI, "Mumbai", PLAIN, True, Rule.UNMATCHED_SITE),
    (RAVI, "Mumbai", DEL, False, Rule.UNMATCHED_SITE_LBR_GATEWAY),
    (RAVI, None, DEL, False, Rule.UNKNOWN_SITE),
    (RAVI, None, PLAIN, False, Rule.UNKNOWN_SITE),
    (RAVI, None, OVR, True, Rule.UNKNOWN_SITE_OVERRIDE),
    (NORA, "Delhi", MUM, True, Rule.NOT_RESTRICTED),
    (NORA, None, PLAIN, True, Rule.NOT_RESTRICTED),
    (NORA, "Delhi", DEL, False, Rule.LBR_GATEWAY_NEEDS_LBR_USER),
]


@pytest.mark.parametrize("user,site,gateway,allowed,rule", OUTBOUND,
                         ids=[f"{u.upn.split('@')[0]}-{s}-{g.split('.')[0]}" for u, s, g, *_ in OUTBOUND])
def test_outbound_rules(user, site, gateway, allowed, rule) -> None:
    d = lbr.outbound(T, user, T.find("gateway", gateway), site)
    assert (d.allowed, d.rule) == (allowed, rule)
    assert str(rule) in d.reason


INBOUND = [
    (RAVI, "Delhi", DEL, True, Rule.SAME_SITE),
    (RAVI, "Hyderabad", DEL, False, Rule.GATEWAY_NOT_AT_USER_SITE),  # roaming: not delivered
    (RAVI, "Delhi", DEL_PBX, False, Rule.GATEWAY_NOT_AT_USER_SITE),
    (RAVI, "Mumbai", MUM, True, Rule.UNMATCHED_SITE),  # the same unmatched site as the gateway
    (RAVI, "Mumbai", PLAIN, False, Rule.UNMATCHED_SITE_OTHER_GATEWAY),
    (RAVI, "Mumbai", DEL, False, Rule.UNMATCHED_SITE_LBR_GATEWAY),
    (RAVI, None, OVR, False, Rule.UNKNOWN_SITE),  # the override is for outbound calls only
    (NORA, "Delhi", DEL, False, Rule.LBR_GATEWAY_NEEDS_LBR_USER),
    (NORA, None, PLAIN, True, Rule.NOT_RESTRICTED),
]


@pytest.mark.parametrize("user,site,gateway,allowed,rule", INBOUND,
                         ids=[f"{u.upn.split('@')[0]}-{s}-{g.split('.')[0]}" for u, s, g, *_ in INBOUND])
def test_inbound_rules(user, site, gateway, allowed, rule) -> None:
    d = lbr.inbound(T, user, T.find("gateway", gateway), site)
    assert (d.allowed, d.rule) == (allowed, rule)


def test_an_emergency_call_is_never_refused() -> None:
    d = lbr.outbound(T, RAVI, T.find("gateway", HYD), None, emergency=True)
    assert (d.allowed, d.rule) == (True, Rule.EMERGENCY)


def test_an_inbound_call_to_an_auto_attendant_or_call_queue_is_allowed() -> None:
    d = lbr.inbound(T, None, T.find("gateway", DEL), "Mumbai", voice_app=True)
    assert (d.allowed, d.rule) == (True, Rule.VOICE_APP)


def test_a_site_the_tenant_does_not_have_is_an_unknown_location() -> None:
    assert lbr.site_state(T, "Atlantis") is lbr.SiteState.UNKNOWN
    assert lbr.site_state(T, "delhi") is lbr.SiteState.MATCHED  # names ignore case


# --- in routing -----------------------------------------------------------------------------------

def test_routing_leaves_out_the_gateways_lbr_refuses_and_says_why() -> None:
    d = select_route(T, RAVI, "+919876543210")  # ravi's configured site: Delhi
    assert d.gateways == (DEL,)
    assert d.lbr.to_json() == {"allowed": True, "rule": "same-site", "user_site": "Delhi", "gateway_site": "Delhi"}
    assert [(g, str(x.rule)) for g, x in d.lbr_refused] == [(HYD, "gateway-not-at-user-site"),
                                                            (MUM, "gateway-not-at-user-site")]
    assert any(r.strip().startswith(f"{HYD} is not offered: LBR refused (gateway-not-at-user-site)")
               for r in d.reasons)


def test_no_gateway_left_is_no_route_naming_the_rule() -> None:
    d = select_route(T, RAVI, "+919876543210", site=None)
    assert not d.has_route and d.usage == "India"
    assert d.to_json()["lbr"] == {"allowed": False, "rule": "unknown-site", "user_site": None,
                                  "gateway_site": "Delhi", "refused": [
                                      {"gateway": DEL, "rule": "unknown-site"},
                                      {"gateway": HYD, "rule": "unknown-site"},
                                      {"gateway": MUM, "rule": "unknown-site"}]}
    assert "Location-Based Routing refused every gateway" in d.reasons[-1]
    assert "unknown-site" in d.reasons[-1]


def test_the_site_given_wins_over_the_configured_one() -> None:
    assert select_route(T, RAVI, "+919876543210", site="Hyderabad").gateways == (HYD,)
    assert select_route(T, RAVI, "+919876543210", site="Mumbai").gateways == (MUM,)


def test_an_emergency_call_keeps_every_gateway() -> None:
    d = select_route(T, RAVI, "112", site=None)
    assert d.emergency is not None and set(d.gateways) == {DEL, HYD, MUM}


def test_a_user_not_enabled_for_lbr_never_gets_an_lbr_gateway() -> None:
    d = select_route(T, NORA, "+919876543210")
    assert d.gateways == (MUM,) and d.lbr.rule is Rule.NOT_RESTRICTED


def test_inbound_decision_carries_lbr_for_the_callee() -> None:
    assert route_inbound(T, HYD, "+911140000001").lbr.rule is Rule.GATEWAY_NOT_AT_USER_SITE
    d = route_inbound(T, DEL, "+911140000001")
    assert d.user == "ravi@contoso.com" and d.lbr.allowed
    assert route_inbound(T, DEL, "+911140000001", site="Hyderabad").lbr.allowed is False


# --- drlab route and --check ------------------------------------------------------------------------

def _route(*argv: str) -> int:
    import argparse

    from simulator.tenant import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(["--tenant", str(EXAMPLES / "contoso.yaml"), *argv]))


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PRIYA = ("--user", "priya@contoso.com")


@pytest.mark.parametrize("where,rc,lbr_json", [
    ((), 0, {"allowed": True, "rule": "same-site", "user_site": "Pune", "gateway_site": "Pune", "refused": []}),
    (("--unknown-site",), 1, {"allowed": False, "rule": "unknown-site", "user_site": None, "gateway_site": "Pune",
                              "refused": [{"gateway": "sbc-pun.contoso.com", "rule": "unknown-site"}]}),
    (("--site", "Seattle"), 1, {"allowed": False, "rule": "unmatched-site-lbr-gateway", "user_site": "Seattle",
                                "gateway_site": "Pune", "refused": [{"gateway": "sbc-pun.contoso.com",
                                                                     "rule": "unmatched-site-lbr-gateway"}]}),
])
def test_route_json_shows_lbr_for_the_endpoint_site(capsys, where, rc, lbr_json) -> None:
    assert _route(*PRIYA, "--dial", "+912071234567", "--json", *where) == rc
    assert json.loads(capsys.readouterr().out)["lbr"] == lbr_json


def test_route_table_shows_lbr_and_the_refusal(capsys) -> None:
    assert _route(*PRIYA, "--dial", "+442071234567") == 1
    out = capsys.readouterr().out
    assert "Location-Based Routing: refused (gateway-not-at-user-site)" in out
    assert "user site: Pune" in out and "gateway site: Redmond" in out and "no route" in out


def test_a_site_the_tenant_does_not_have_is_bad_input(capsys) -> None:
    assert _route(*PRIYA, "--dial", "+912071234567", "--site", "Atlantis") == 2
    assert "--site 'Atlantis' is not a network site of the tenant" in capsys.readouterr().err


def test_a_case_expects_lbr_and_places_the_endpoint(tmp_path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n"
                     "  - {user: priya@contoso.com, dial: '+912071234567', site: Redmond,\n"
                     "     lbr: {allowed: false, rule: unmatched-site-lbr-gateway}}\n"
                     "  - {user: priya@contoso.com, dial: '+912071234567', lbr: {allowed: false}}\n", encoding="utf-8")
    outcomes = run_cases(load_yaml(EXAMPLES / "contoso.yaml"), load_cases(cases))
    assert [o.ok for o in outcomes] == [True, False]
    assert outcomes[1].misses == ["lbr: expected {'allowed': False}, got {'allowed': True}"]


@pytest.mark.parametrize("case,where,message", [
    ("{user: a@x.com, dial: '1', lbr: {rule: same-place}}", "2:44", "lbr rule must be one of"),
    ("{user: a@x.com, dial: '1', lbr: {allowd: true}}", "2:38", "unknown key 'allowd' in lbr"),
    ("{user: a@x.com, dial: '1', lbr: {allowed: maybe}}", "2:47", "must be true or false"),
])
def test_a_bad_lbr_expectation_is_an_error_at_file_line_col(tmp_path, case, where, message) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(f"cases:\n  - {case}\n", encoding="utf-8")
    with pytest.raises(TenantError) as err:
        load_cases(cases)
    assert str(err.value).startswith(f"{cases}:{where}: ") and message in str(err.value)
