"""The Teams proxy's decisions as plain functions: which gateway a request comes from [S1][S2], its region.

The trunk failover rule is tested in test_gateway_attempts.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.roles.teams_proxy import (
    check_gateway_request,
    default_region,
    number_of,
    tenant_domains,
)
from simulator.sip import Request
from simulator.sip.uri import parse_uri
from simulator.tenant.cli import load_tenant

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contoso.yaml"
TENANT = load_tenant(str(EXAMPLE))


def cert(*names: str):
    """What the proxy passes for a TLS peer: does its certificate name this FQDN? (tls.py owns the
    RFC 6125 rules; a leading "*." here stands for a one-label wildcard.)"""
    def matches(fqdn: str) -> bool:
        fqdn = fqdn.lower()
        return any(fqdn == n or (n.startswith("*.") and fqdn.split(".", 1)[1] == n[2:]) for n in names)
    return matches


def options(contact: str | None, record_route: str | None = None, method: str = "OPTIONS") -> Request:
    headers = [("Via", "SIP/2.0/TLS sbc1.contoso.com:5061;branch=z9hG4bK1"), ("From", "<sip:sbc1.contoso.com>;tag=1"),
               ("To", "<sip:sip.pstnhub.microsoft.com>"), ("Call-ID", "c1"), ("CSeq", f"1 {method}")]
    if contact is not None:
        headers.append(("Contact", contact))
    if record_route is not None:
        headers.append(("Record-Route", record_route))
    return Request(method, "sip:sip.pstnhub.microsoft.com:5061", headers=headers)


@pytest.mark.parametrize("contact, names, status, why", [
    ("<sip:sbc1.contoso.com:5061;transport=tls>", ("sbc1.contoso.com",), None, "paired"),
    ("<sip:+14255550100@SBC1.contoso.com:5061;transport=tls>, <sip:10.0.0.1>", ("*.contoso.com",), None, "wildcard"),
    ("<sip:192.0.2.10:5061;transport=tls>", ("sbc1.contoso.com",), 403, "IP address"),  # [S2]
    ("<sip:sbc1.contoso.com:5061>", ("sbc2.contoso.com",), 403, "does not name"),  # [S2] step 1: the certificate check
    ("<sip:sbc9.contoso.com:5061>", ("sbc9.contoso.com",), 403, "not a PSTN gateway"),  # [S2] steps 2-3: the tenant lookup
    ("<sip:sbc1.fabrikam.com:5061>", ("sbc1.fabrikam.com",), 403, "no tenant"),
    (None, ("sbc1.contoso.com",), 400, "Contact"),  # [S2]: Contact is required in OPTIONS and INVITE
])
def test_gateway_identified_from_first_contact_and_certificate(contact, names, status, why):
    check = check_gateway_request(TENANT, options(contact), cert(*names))
    assert check.status == status
    assert why in (check.detail if status else check.reason) or why in ("paired", "wildcard")
    if status is None:
        assert check.gateway.fqdn == "sbc1.contoso.com"


@pytest.mark.parametrize("record_route, status, why", [
    (None, None, ""),
    ("<sip:sbc1.contoso.com:5061;transport=tls;lr>", None, ""),
    ("<sip:SBC1.contoso.com.:5061;transport=tls;r2=on;lr>, <sip:10.0.0.5;r2=on;lr>", None, ""),  # the top one counts
    ("<sip:192.0.2.10:5061;transport=tls;lr>", 403, "is an IP address"),  # [S2]
    ("<sip:sbc2.contoso.com:5061;transport=tls;lr>", 403, "is another name"),  # [S2]: kept identical
])
@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
def test_top_record_route_must_carry_the_contact_fqdn(record_route, status, why, method):
    request = options("<sip:+14255550100@sbc1.contoso.com:5061;transport=tls>", record_route, method)
    check = check_gateway_request(TENANT, request, cert("sbc1.contoso.com", "sbc2.contoso.com"))
    assert check.status == status
    if status is not None:
        assert why in check.detail and check.rule == "record_route"


def test_no_client_certificate_is_refused():
    check = check_gateway_request(TENANT, options("<sip:sbc1.contoso.com>"), None)
    assert check.status == 403 and "certificate" in check.detail


def test_tenant_domains_come_from_users_and_gateways():
    assert tenant_domains(TENANT) == {"contoso.com"}


@pytest.mark.parametrize("fqdn, region", [
    ("sip.pstnhub.microsoft.com", "noam"), ("sip2.pstnhub.microsoft.com", "emea"),
    ("sip3.pstnhub.microsoft.com", "apac"), ("sip-lab.example", "sip-lab.example"),
])
def test_default_regions_follow_the_noam_fallback_table(fqdn, region):
    assert default_region(fqdn) == region


@pytest.mark.parametrize("uri, number", [
    ("sip:+14255550101@sip.pstnhub.microsoft.com;user=phone", "+14255550101"),
    ("sip:+14255388701;ext=1001@sbc1.adatum.biz", "+14255388701;ext=1001"),
    ("tel:+14255550101", "+14255550101"),
    ("sip:sip.pstnhub.microsoft.com", None),
])
def test_number_of_request_uri(uri, number):
    assert number_of(parse_uri(uri)) == number
