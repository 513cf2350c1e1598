"""The Teams Direct Routing SIP proxy: one host of sip / sip2 / sip3.pstnhub.microsoft.com.

PLACEHOLDER — the role is being written; the pure decision functions below are final.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.sip import Request, SipParseError
from simulator.sip.uri import SipUri, TelUri
from simulator.tenant.model import Tenant
from simulator.tenant.routing import GatewayPlan

#: reference §1.1: the FQDN order for a NOAM tenant is NOAM, then EU, then ASIA
DEFAULT_REGIONS = {"sip": "noam", "sip2": "emea", "sip3": "apac"}


def default_region(fqdn: str) -> str:
    """The proxy's region when the lab file gives none: sip/sip2/sip3 by §1.1's NOAM row."""
    label, _, domain = fqdn.lower().partition(".")
    return DEFAULT_REGIONS.get(label, fqdn) if domain == "pstnhub.microsoft.com" else fqdn


@dataclass(frozen=True)
class GatewayCheck:
    """Who a request on the Direct Routing interface comes from (§1.5), or why it is refused."""

    gateway: Any | None  # the tenant's Gateway when accepted
    status: int | None  # the response to refuse with; None when accepted
    reason: str  # the reason phrase to send, or a short description when accepted
    detail: str = ""  # what the event log says
    contact_host: str | None = None


def tenant_domains(tenant: Tenant) -> set[str]:
    """The tenant's SIP domains as far as the lab knows them: its users' UPN domains and its
    gateways' parent domains (a real tenant registers them; §1.5)."""
    domains = {u.upn.lower().partition("@")[2] for u in tenant.users.values() if "@" in u.upn}
    domains |= {g.fqdn.lower().rstrip(".").partition(".")[2] for g in tenant.gateways.values()}
    return {d for d in domains if d}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_gateway_request(tenant: Tenant, request: Request,
                          certificate_names: Callable[[str], bool] | None) -> GatewayCheck:
    """§1.5 and [S2]: the first Contact must hold an FQDN (an IP address is refused with 403), the
    client certificate must name that FQDN (step 1), and the FQDN must be a PSTN gateway paired
    with the tenant found from its domain (steps 2-3).

    `certificate_names(fqdn)` says whether the peer's certificate names `fqdn` (PeerInfo.matches);
    None when the peer presented no certificate. Microsoft documents a code only for the IP case;
    the others are "the call fails" — drlab answers 403 for them too (docs/ASSUMPTIONS.md).
    """
    try:
        contacts = request.contacts
    except SipParseError as exc:
        return GatewayCheck(None, 400, "Bad Contact", f"Contact cannot be read: {exc.reason}")
    if not contacts:
        return GatewayCheck(None, 400, "Contact Required",
                            "Direct Routing requires a Contact with the SBC FQDN in OPTIONS and INVITE [S2]")
    uri = contacts[0].uri  # §1.5: the first value only
    if not isinstance(uri, SipUri):
        return GatewayCheck(None, 403, "Forbidden", f"first Contact {uri} is not a SIP URI")
    host = uri.host.lower().rstrip(".")
    if _is_ip(host):
        return GatewayCheck(None, 403, "Forbidden", f"Contact host {host} is an IP address, not the SBC FQDN [S2]",
                            host)
    if certificate_names is None:
        return GatewayCheck(None, 403, "Forbidden", "no client certificate on this connection", host)
    if not certificate_names(host):
        return GatewayCheck(None, 403, "Forbidden",
                            f"the client certificate does not name the Contact FQDN {host} (§1.5 step 1)", host)
    domain = host.partition(".")[2]
    domains = tenant_domains(tenant)
    if host not in domains and domain not in domains:
        return GatewayCheck(None, 403, "Forbidden", f"no tenant has the domain of {host} (§1.5 steps 2-3)", host)
    gateway = tenant.find("gateway", host)
    if gateway is None:
        return GatewayCheck(None, 403, "Forbidden",
                            f"{host} is not a PSTN gateway paired with the tenant (New-CsOnlinePSTNGateway)", host)
    return GatewayCheck(gateway, None, f"gateway {gateway.fqdn}", "", host)


def failover_on_code(plan: GatewayPlan, status: int, *, provisional_seen: bool) -> bool:
    """§1.9: a final response moves the call to the next gateway when its code is one of the
    gateway's FailoverResponseCodes and the gateway has sent no non-100 provisional yet (a
    failover after 180/183 would ring twice)."""
    return not provisional_seen and status in plan.failover_response_codes


def number_of(uri: Any) -> str | None:
    """The number in a Request-URI: a tel: URI's number or a sip: URI's user part (with any
    `;ext=`, which reverse number lookup matches exactly, §2.4); None when there is no user."""
    if isinstance(uri, TelUri):
        return uri.number
    if isinstance(uri, SipUri):
        return uri.user or None
    return None
