"""Emergency calls online: the policy of the site (else the user's), dial strings and masks before
normalization, the emergency number's usage, the location and PIDF-LO [S22] [S23] [S24]."""

from __future__ import annotations

from dataclasses import replace

import pytest

from simulator.tenant.model import (
    EmergencyCallRoutingPolicy,
    EmergencyNumber,
    Gateway,
    LisCivicAddress,
    LisLocation,
    LisSubnet,
    NetworkSite,
    NetworkSubnet,
    Tenant,
    User,
    VoiceRoute,
    VoiceRoutingPolicy,
)
from simulator.tenant.routing import select_route

USER = "ann@contoso.com"


def tenant(*, enhanced: bool = True, user_policy: str | None = None, usage: str | None = "SiteE911") -> Tenant:
    """Site Branch (10.20.0.0/16) has policy "Site 911" (911, mask 112, 933 -> `usage`); policy
    "User 911" sends 911 through usage UserE911; ann's number is at HQ's address."""
    t = Tenant(usages=("US", "SiteE911", "UserE911"))
    t.add("gateway", Gateway("pidf.contoso.com", 5061, enabled=True, pidf_lo_supported=True))
    t.add("gateway", Gateway("plain.contoso.com", 5061, enabled=True))
    t.add("voice_route", VoiceRoute("US", r"^\+1\d{10}$|911", ("plain.contoso.com",), ("US",)))
    t.add("voice_route", VoiceRoute("Site 911", "^(911|933)$", ("pidf.contoso.com", "plain.contoso.com"), ("SiteE911",)))
    t.add("voice_route", VoiceRoute("User 911", "^911$", ("plain.contoso.com",), ("UserE911",)))
    t.add("voice_routing_policy", VoiceRoutingPolicy("US", ("US",)))
    t.add("emergency_call_routing_policy", EmergencyCallRoutingPolicy(
        "Site 911", (EmergencyNumber("911", "112", usage), EmergencyNumber("933", None, usage)),
        allow_enhanced_emergency_services=enhanced))
    t.add("emergency_call_routing_policy", EmergencyCallRoutingPolicy(
        "User 911", (EmergencyNumber("911", None, "UserE911"),)))
    t.add("site", NetworkSite("Branch", emergency_call_routing_policy="Site 911"))
    t.add("site", NetworkSite("HQ"))
    t.add("subnet", NetworkSubnet("10.20.0.0", 16, "Branch"))
    t.add("subnet", NetworkSubnet("10.10.0.0", 16, "HQ"))
    t.add("civic_address", LisCivicAddress("hq", "Contoso", "US", default_location_id="hq-default", city="Redmond"))
    t.add("civic_address", LisCivicAddress("branch", "Contoso", "US", city="Seattle"))
    t.add("lis_location", LisLocation("branch-floor-3", "branch", "Floor 3"))
    t.add("lis_subnet", LisSubnet("10.20.3.0", "branch-floor-3"))
    t.add("user", User(USER, "+14255550101", "DirectRouting", True, voice_routing_policy="US",
                       emergency_call_routing_policy=user_policy, location_id="hq-default"))
    return t


@pytest.mark.parametrize(("client_ip", "user_policy", "dialed", "policy", "number", "usage"), [
    ("10.20.3.7/24", None, "911", "Site 911", "911", "SiteE911"),
    ("10.20.3.7/24", None, "112", "Site 911", "911", "SiteE911"),  # a dial mask dials its number
    ("10.20.3.7/24", None, "9-3-3", "Site 911", "933", "SiteE911"),  # visual separators are no digits
    ("10.20.3.7/24", "User 911", "911", "Site 911", "911", "SiteE911"),  # the site's policy wins [S23]
    ("10.10.1.7", "User 911", "911", "User 911", "911", "UserE911"),  # no policy at HQ: the user's
    (None, "User 911", "911", "User 911", "911", "UserE911"),
])
def test_the_site_policy_wins_over_the_users_and_masks_dial_their_number(client_ip, user_policy, dialed, policy,
                                                                          number, usage) -> None:
    d = select_route(tenant(user_policy=user_policy), USER, dialed, client_ip=client_ip)
    assert d.emergency is not None
    assert (d.emergency.policy, d.normalized, d.usage) == (policy, number, usage)
    assert d.to_json()["emergency"]["number"] == number


@pytest.mark.parametrize(("client_ip", "dialed", "normalized"), [
    ("10.10.1.7", "911", "+1911"),  # at HQ nobody's policy lists 911 (the Global one is empty)
    ("10.20.3.7/24", "113", "+1113"),  # not a dial string nor in a mask
    ("10.20.3.7/24", "+1911", "+1911"),
])
def test_a_string_no_applicable_policy_lists_is_routed_as_any_number(client_ip, dialed, normalized) -> None:
    d = select_route(tenant(), USER, dialed, client_ip=client_ip)
    assert d.emergency is None and "emergency" not in d.to_json()
    assert d.normalized == normalized


def test_the_sba_path_routes_as_dialled_without_emergency_policies() -> None:
    d = select_route(tenant(), USER, "112", client_ip="10.20.3.7/24", normalize_dialed=False)
    assert (d.emergency, d.normalized) == (None, "112")


def test_an_emergency_route_must_match_the_dial_string_exactly() -> None:
    t = tenant()
    t.add("voice_route", replace(t.find("voice_route", "Site 911"), number_pattern=r"^\+1911$"))
    t.changed()
    d = select_route(t, USER, "911", client_ip="10.20.3.7/24")
    assert not d.has_route and d.reasons[-1] == "no route of emergency number '911' matches '911': no Direct Routing route"


def test_an_emergency_number_without_a_usage_is_routed_by_the_voice_routing_policy_as_dialled() -> None:
    d = select_route(tenant(usage=None), USER, "911", client_ip="10.20.3.7/24")
    assert (d.normalized, d.usage, [r.name for r in d.routes]) == ("911", "US", ["US"])


@pytest.mark.parametrize(("enhanced", "location"), [
    (True, "branch-floor-3"),  # dynamic emergency calling: the client's LIS subnet
    (False, "hq-default"),  # otherwise the location of the number
])
def test_the_dynamic_location_needs_allow_enhanced_emergency_services(enhanced, location) -> None:
    d = select_route(tenant(enhanced=enhanced), USER, "911", client_ip="10.20.3.7/24")
    assert d.emergency.location.lis_location == location
    assert d.to_json()["emergency"]["location"] == location


def test_pidf_lo_goes_only_to_gateways_with_pidf_lo_supported() -> None:
    d = select_route(tenant(), USER, "911", client_ip="10.20.3.7/24")
    plans = {g.fqdn: g for r in d.routes for g in r.gateways}
    assert plans["pidf.contoso.com"].pidf_lo.civic == {"country": "US", "A3": "Seattle", "NAM": "Contoso",
                                                        "LOC": "Floor 3"}
    assert plans["plain.contoso.com"].pidf_lo is None
    assert d.pidf_lo_gateways == ["pidf.contoso.com"]


def test_no_known_location_sends_no_pidf_lo() -> None:
    t = tenant(user_policy="User 911")
    t.add("voice_route", replace(t.find("voice_route", "User 911"), online_pstn_gateway_list=("pidf.contoso.com",)))
    t.add("user", replace(t.user(USER), location_id=None))
    t.changed()
    d = select_route(t, USER, "911")
    assert d.emergency is not None and d.pidf_lo_gateways == []
    assert "no emergency location is known" in d.reasons
