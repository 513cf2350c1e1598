"""Where a user calls from: network site by subnet, trusted IPs, LIS subnet -> emergency location [S21] [S22] [S25]."""

from __future__ import annotations

import pytest

from simulator.tenant.location import user_location
from simulator.tenant.model import (
    LisCivicAddress,
    LisLocation,
    LisSubnet,
    NetworkRegion,
    NetworkSite,
    NetworkSubnet,
    Tenant,
    TrustedIpAddress,
    User,
)


def tenant(trusted: bool = False) -> Tenant:
    """HQ 10.10.0.0/16 with a nested lab subnet 10.10.8.0/24 (site Lab); branch 10.20.0.0/16 whose
    floor 3 (10.20.3.0) is a LIS subnet; bob's number is at the branch, floor 1 (its default location)."""
    t = Tenant()
    t.add("region", NetworkRegion("NA"))
    for site in ("HQ", "Lab", "Branch"):
        t.add("site", NetworkSite(site, network_region_id="NA"))
    t.add("subnet", NetworkSubnet("10.10.0.0", 16, "HQ"))
    t.add("subnet", NetworkSubnet("10.10.8.0", 24, "Lab"))
    t.add("subnet", NetworkSubnet("10.20.0.0", 16, "Branch"))
    t.add("civic_address", LisCivicAddress("addr", "Contoso", "US", default_location_id="addr-default",
                                           house_number="1", street_name="Pike", city="Seattle"))
    t.add("lis_location", LisLocation("floor-3", "addr", "Floor 3"))
    t.add("lis_subnet", LisSubnet("10.20.3.0", "floor-3"))
    if trusted:
        t.add("trusted_ip", TrustedIpAddress("198.51.100.0", 24))
    t.add("user", User("bob@contoso.com", "+14255550102", "DirectRouting", True, network_site="Branch",
                       location_id="addr-default"))
    t.add("user", User("nosite@contoso.com", "+14255550103", "DirectRouting", True))
    return t


@pytest.mark.parametrize(("upn", "client_ip", "site", "subnet", "lis_location", "dynamic"), [
    # no address: the site and location of the number
    ("bob@contoso.com", None, "Branch", None, "addr-default", False),
    ("nosite@contoso.com", None, None, None, None, False),
    # an address in a subnet: that site (the longest prefix wins)
    ("bob@contoso.com", "10.10.1.5", "HQ", "10.10.0.0/16", "addr-default", False),
    ("bob@contoso.com", "10.10.8.7", "Lab", "10.10.8.0/24", "addr-default", False),
    # in no subnet: the number's site, no subnet
    ("bob@contoso.com", "192.0.2.1", "Branch", None, "addr-default", False),
    # the LIS subnet is the client's Network ID: from the subnet it reports, else the site's subnet
    ("nosite@contoso.com", "10.20.3.150/24", "Branch", "10.20.0.0/16", "floor-3", True),
    ("nosite@contoso.com", "10.20.3.150/16", "Branch", "10.20.0.0/16", None, False),
    ("nosite@contoso.com", "10.20.3.150", "Branch", "10.20.0.0/16", None, False),
])
def test_site_subnet_and_emergency_location(upn, client_ip, site, subnet, lis_location, dynamic) -> None:
    t = tenant()
    where = user_location(t, t.user(upn), client_ip)
    assert (where.site, where.subnet, where.lis_location, where.dynamic) == (site, subnet, lis_location, dynamic)


@pytest.mark.parametrize(("public_ip", "trusted", "site", "lis_location"), [
    ("198.51.100.7", True, "Branch", "floor-3"),
    # outside the enterprise: no site and no LIS subnet lookup, not even the number's site
    ("203.0.113.9", False, None, "addr-default"),
])
def test_site_and_lis_lookups_apply_only_behind_a_trusted_ip(public_ip, trusted, site, lis_location) -> None:
    t = tenant(trusted=True)
    where = user_location(t, t.user("bob@contoso.com"), "10.20.3.9/24", public_ip)
    assert (where.trusted, where.site, where.lis_location) == (trusted, site, lis_location)


def test_without_trusted_ips_the_public_address_is_not_checked() -> None:
    t = tenant()
    where = user_location(t, t.user("bob@contoso.com"), "10.20.3.9/24", "203.0.113.9")
    assert (where.trusted, where.site) == (None, "Branch")
    assert "lists no trusted IPs" in where.reasons[0]


def test_the_civic_address_as_rfc_5139_elements_with_the_place_inside() -> None:
    t = tenant()
    where = user_location(t, t.user("nosite@contoso.com"), "10.20.3.1/24")
    assert (where.region, where.civic) == ("NA", {"country": "US", "A3": "Seattle", "RD": "Pike", "HNO": "1",
                                                  "NAM": "Contoso", "LOC": "Floor 3"})
    assert where.to_json() == {"site": "Branch", "subnet": "10.20.0.0/16", "lis_location": "floor-3"}


def test_a_default_location_is_its_civic_address_with_no_place() -> None:
    t = tenant()
    where = user_location(t, t.user("bob@contoso.com"))
    assert where.civic_address is not None and "LOC" not in where.civic


def test_text_that_is_not_an_address_is_a_value_error() -> None:
    t = tenant()
    with pytest.raises(ValueError):
        user_location(t, t.user("bob@contoso.com"), "10.20.3")
