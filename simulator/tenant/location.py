"""Where a user calls from: the network site and the emergency location [S21] [S22] [S25].

`user_location(tenant, user, client_ip)` is a plain function over data:

1. trusted IPs [S21] [S22]: network site and LIS subnet lookups apply only to a client behind
   one of the tenant's trusted (public) IP addresses. When the caller gives the address the
   cloud sees (`public_ip`) and the tenant lists trusted IPs, an address outside them is a
   client outside the enterprise network: no site, no LIS subnet (`trusted=False`);
2. network site: the tenant network subnet holding `client_ip` (the longest prefix wins when
   subnets nest); no address, or an address in none of them, falls back to the network site of
   the user's number (`Set-CsPhoneNumberAssignment -NetworkSiteId`) and leaves `subnet` empty;
3. emergency location: the LIS subnet whose Network ID is the client's network [S22] [S25]
   (`10.10.10.150/25` is in LIS subnet `10.10.10.128`): the network the client reports
   (`client_ip` given as `ADDRESS/BITS`), else the network of the tenant subnet it is in; no LIS
   subnet falls back to the location of the user's number (`-LocationId`). A LIS location names
   its civic address; a civic address's default location is the address itself.

`Location.civic` gives the address as RFC 5139 civic address elements, what a PIDF-LO
(RFC 4119) carries for an emergency call.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from simulator.tenant.model import LisCivicAddress, LisLocation, Tenant, User

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 5139 §3 civic address elements, from the New-CsOnlineLisCivicAddress
# parameters [S22] that carry them.
_CIVIC_ELEMENTS = (("country", "country_or_region"), ("A1", "state_or_province"), ("A3", "city"),
                   ("PRD", "pre_directional"), ("RD", "street_name"), ("STS", "street_suffix"),
                   ("POD", "post_directional"), ("HNO", "house_number"), ("HNS", "house_number_suffix"),
                   ("PC", "postal_code"), ("NAM", "company_name"))


@dataclass(frozen=True, slots=True)
class Location:
    site: str | None  # the network site, as the tenant spells it
    subnet: str | None  # the tenant network subnet the client is in ("10.20.0.0/16")
    region: str | None  # the site's network region
    lis_location: str | None  # the LIS location id (or a civic address's default location id)
    civic_address: LisCivicAddress | None
    trusted: bool | None  # behind a trusted IP; None when the public address was not given
    dynamic: bool  # the emergency location came from the client's network (LIS subnet), not the number
    place: str | None  # the LIS location's own words ("Floor 3")
    reasons: tuple[str, ...]

    @property
    def civic(self) -> dict[str, str]:
        """The civic address as RFC 5139 elements (`LOC` is the place inside it)."""
        a = self.civic_address
        if a is None:
            return {}
        out = {element: str(getattr(a, name)) for element, name in _CIVIC_ELEMENTS if getattr(a, name)}
        if self.place:
            out["LOC"] = self.place
        return out

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "subnet": self.subnet, "lis_location": self.lis_location}


def _network(text: str, bits: int | None = None) -> IpNetwork | None:
    try:
        return ipaddress.ip_network(text if bits is None else f"{text}/{bits}", strict=False)
    except ValueError:
        return None


def parse_client_ip(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """`10.20.3.15` or `10.20.3.15/24` (the address and the subnet the client reports); ValueError otherwise."""
    return ipaddress.ip_interface(text.strip())


def is_address(text: str, with_subnet: bool) -> bool:
    """Whether `text` is an address (`A.B.C.D`), or with `with_subnet` also `A.B.C.D/BITS`."""
    try:
        (ipaddress.ip_interface if with_subnet else ipaddress.ip_address)(text)
    except ValueError:
        return False
    return True


def _trusted(tenant: Tenant, public_ip: str) -> bool:
    address = ipaddress.ip_address(public_ip)
    for t in tenant.trusted_ips.values():
        net = _network(t.ip_address, t.mask_bits)
        if net is not None and address.version == net.version and address in net:
            return True
    return False


def _site_subnet(tenant: Tenant, address: Any) -> tuple[str, IpNetwork] | None:
    """The tenant subnet (and its site) holding `address`: the longest prefix."""
    best: tuple[str, IpNetwork] | None = None
    for s in tenant.subnets.values():
        net = _network(s.subnet_id, s.mask_bits)
        if net is None or net.version != address.version or address not in net or s.network_site_id is None:
            continue
        if best is None or net.prefixlen > best[1].prefixlen:
            best = (s.network_site_id, net)
    return best


def _lis_subnet(tenant: Tenant, network: IpNetwork) -> str | None:
    """The LIS location of the LIS subnet whose Network ID is `network`'s [S25]."""
    for ls in tenant.lis_subnets.values():
        try:
            if ipaddress.ip_address(ls.subnet) == network.network_address:
                return ls.location_id
        except ValueError:
            continue
    return None


def _place(tenant: Tenant, location_id: str | None) -> tuple[LisLocation | None, LisCivicAddress | None]:
    if location_id is None:
        return None, None
    loc = tenant.find("lis_location", location_id)
    if loc is not None:
        return loc, tenant.find("civic_address", loc.civic_address_id)
    address = next((a for a in tenant.civic_addresses.values()
                    if (a.default_location_id or "").lower() == location_id.lower()), None)
    return None, address


def user_location(tenant: Tenant, user: User, client_ip: str | None = None,
                  public_ip: str | None = None) -> Location:
    """Where `user` calls from (see the module's doc). `client_ip` is the client's own address
    (optionally `/BITS`), `public_ip` the address the cloud sees it from; ValueError for text
    that is not an address."""
    reasons: list[str] = []
    interface = parse_client_ip(client_ip) if client_ip is not None else None
    trusted = _trusted(tenant, public_ip) if public_ip is not None and tenant.trusted_ips else None
    if public_ip is not None and trusted is None:
        reasons.append(f"public address {public_ip}: the tenant lists no trusted IPs, so it is not checked")
    site: str | None = None
    subnet: IpNetwork | None = None
    lis_network: IpNetwork | None = None
    if trusted is False:
        reasons.append(f"public address {public_ip} is none of the tenant's trusted IPs: the client is outside "
                       "the enterprise network (no network site, no LIS subnet)")
    elif interface is not None:
        if trusted:
            reasons.append(f"public address {public_ip} is a trusted IP: network site and LIS lookups apply")
        hit = _site_subnet(tenant, interface.ip)
        if hit is not None:
            site, subnet = hit
            reasons.append(f"client {interface.ip} is in subnet {subnet} of network site {site!r}")
        else:
            reasons.append(f"client {interface.ip} is in no network subnet of the tenant")
        reported = interface.network if "/" in (client_ip or "") else subnet
        lis_network = reported
    if site is None and trusted is not False and user.network_site is not None:
        site_obj = tenant.find("site", user.network_site)
        site = site_obj.name if site_obj is not None else user.network_site
        reasons.append(f"network site {site!r}: the site of {user.upn}'s number")
    if site is None and trusted is not False and interface is None:
        reasons.append(f"{user.upn} has no network site")
    site_obj = tenant.find("site", site) if site is not None else None
    region = site_obj.network_region_id if site_obj is not None else None
    lis_location = _lis_subnet(tenant, lis_network) if lis_network is not None else None
    dynamic = lis_location is not None
    if dynamic:
        reasons.append(f"LIS subnet {lis_network.network_address} gives emergency location {lis_location!r}")  # type: ignore[union-attr]
    elif user.location_id is not None:
        lis_location = user.location_id
        reasons.append(f"emergency location {lis_location!r}: the location of {user.upn}'s number")
    else:
        reasons.append("no emergency location: no LIS subnet matches and the number has no location")
    loc, address = _place(tenant, lis_location)
    return Location(site, str(subnet) if subnet is not None else None, region, lis_location, address, trusted,
                    dynamic, loc.location if loc is not None else None, tuple(reasons))
