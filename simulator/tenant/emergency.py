"""Emergency calls through the cloud: which policy applies and what the dialed string is [S22] [S23] [S24].

`emergency_call(tenant, user, dialed, location)`:

1. the emergency call routing policy: the one assigned to the network site the user calls from,
   else the user's own (granted, through a group, -Global, else the Global instance): "a policy
   assigned to a network site overrides the policy assigned to the user" [S23];
2. the dialed string (without visual separators) is an emergency number of that policy when it
   is one of its dial strings or in one of its dial masks; a mask dials its number: `112` with
   mask `112` of `911` becomes `911` [S24]. It is matched BEFORE any dial plan normalization, so
   `911` stays `911` (never `+1911`), as Teams clients send Direct Routing emergency strings
   without `+` [S23];
3. the call is routed with the emergency number's PSTN usage: its routes' patterns must match
   the dial string exactly [S23] (routing.select_route does this);
4. the location sent with it: the dynamic one (the client's LIS subnet) when the policy enables
   dynamic emergency calling (AllowEnhancedEmergencyServices [S22]), else the location of the
   user's number; a gateway with PidfLoSupported receives it as PIDF-LO [S4] [S22].

A string no policy lists is no emergency call: it is routed as any other number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.tenant.location import Location, user_location
from simulator.tenant.model import EmergencyCallRoutingPolicy, EmergencyNumber, Tenant, User

_SEPARATORS = str.maketrans("", "", " \t\n\r\f\v-.()")


@dataclass(frozen=True, slots=True)
class EmergencyCall:
    policy: str
    assigned_by: str  # "network site Seattle", "user", "the Global policy", ...
    number: str  # the emergency dial string the call is placed to
    dialed: str
    usage: str | None  # None: the number names no usage; the user's voice routing policy routes it
    location: Location  # the emergency location sent with the call
    reasons: tuple[str, ...]

    def to_json(self, pidf_lo: list[str]) -> dict[str, Any]:
        return {"policy": self.policy, "number": self.number, "location": self.location.lis_location,
                "pidf_lo": pidf_lo}


def emergency_policy(tenant: Tenant, user: User, location: Location) -> tuple[EmergencyCallRoutingPolicy, str]:
    """The policy that applies where the user is, and why [S23]."""
    site = tenant.find("site", location.site) if location.site is not None else None
    if site is not None and site.emergency_call_routing_policy is not None:
        return (tenant.find("emergency_call_routing_policy", site.emergency_call_routing_policy),
                f"network site {site.name!r}")
    policy = tenant.effective_policy(user, "emergency_call_routing_policy")
    if user.emergency_call_routing_policy is not None:
        return policy, f"granted to {user.upn}"
    if tenant.group_policy(user, "emergency_call_routing_policy") is not None:
        return policy, f"granted to a group of {user.upn}"
    return policy, "the tenant's default"


def match_number(policy: EmergencyCallRoutingPolicy, digits: str) -> EmergencyNumber | None:
    """The policy's emergency number whose dial string or dial mask is `digits` [S24]."""
    for n in policy.emergency_numbers:
        if digits == n.dial_string or digits in (n.dial_mask or "").split(";"):
            return n
    return None


def _any_policy_lists(tenant: Tenant, digits: str) -> bool:
    """Whether some policy of the tenant lists `digits` (a quick no for nearly every call)."""
    listed: frozenset[str] | None = tenant.__dict__.get("_emergency_strings_cache")
    if listed is None:
        listed = tenant.__dict__["_emergency_strings_cache"] = frozenset(
            s for p in tenant.emergency_call_routing_policies.values() for n in p.emergency_numbers
            for s in (n.dial_string, *(n.dial_mask or "").split(";")) if s)
    return digits in listed


def emergency_call(tenant: Tenant, user: User, dialed: str, location: Location) -> EmergencyCall | None:
    """The emergency call `dialed` places, or None when it is no emergency number where the user is."""
    digits = dialed.translate(_SEPARATORS)
    if not _any_policy_lists(tenant, digits):
        return None
    policy, why = emergency_policy(tenant, user, location)
    number = match_number(policy, digits)
    if number is None:
        return None
    reasons = [f"emergency call routing policy {policy.name!r} ({why}) applies"]
    if digits == number.dial_string:
        reasons.append(f"{digits!r} is its emergency number {number.dial_string!r}: no dial plan normalization")
    else:
        reasons.append(f"{digits!r} is in the dial mask {number.dial_mask!r} of emergency number "
                       f"{number.dial_string!r}: the call is placed to {number.dial_string!r}, not normalized")
    if location.dynamic and not policy.allow_enhanced_emergency_services:
        location = user_location(tenant, user)
        reasons.append(f"policy {policy.name!r} does not enable dynamic emergency calling "
                       "(AllowEnhancedEmergencyServices): the location of the number is sent")
    civic = location.civic
    where = ", ".join(v for v in (civic.get("LOC"), " ".join(filter(None, (civic.get("HNO"), civic.get("RD"),
                                                                           civic.get("STS")))), civic.get("A3"))
                      if v)
    reasons.append(f"emergency location {location.lis_location!r}" + (f": {where}" if where else "")
                   if location.lis_location else "no emergency location is known")
    return EmergencyCall(policy.name, why, number.dial_string, dialed, number.online_pstn_usage, location,
                         tuple(reasons))
