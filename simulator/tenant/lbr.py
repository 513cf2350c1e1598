"""Location-Based Routing (LBR) for Direct Routing [S21]: may a call between a Teams user and the
PSTN use this gateway, given where the user's endpoint is?

Plain decision functions over the tenant; the endpoint's network site is a parameter (the site of
the subnet the client is in; `None` when it is in no site of the tenant: an unknown location).
LBR is switched on in three places [S21] [S4]:

- the user: `PreventTollBypass` in the user's effective Teams calling policy;
- the network site: `EnableLocationBasedRouting` (a site enabled for it is "matched", a configured
  site that is not is "unmatched", a place in no site is "unknown");
- the gateway: `GatewaySiteLbrEnabled` with its `GatewaySiteId`, and
  `GatewayLbrEnabledUserOverride` to let LBR users at an unknown location call out through it.

The restriction rules [S21], each a `Rule` a refusal names:

- an LBR user calls out through an LBR gateway at the matched site the endpoint is in; from an
  unmatched site through a gateway that is not LBR-enabled; from an unknown location only through
  an LBR gateway with the user override;
- an LBR user receives an inbound call only when the answering endpoint and the gateway are at the
  same matched site (LBR gateway), or at the same unmatched site (gateway not LBR-enabled);
- a user who is not LBR-enabled never uses an LBR gateway, in or out;
- an inbound call to an auto attendant or call queue (a resource account) is allowed [S21];
- emergency calls are never refused (`EMERGENCY_CALLS_EXEMPT`, docs/ASSUMPTIONS.md).

A refused outbound call shows "Call not allowed due to your organization's settings"; a refused
inbound call goes to the user's unanswered-call settings (voicemail), else it is disconnected [S21].
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from simulator.tenant.model import Gateway, Tenant, User

#: [S21] is silent on emergency calls; toll-bypass rules never stand between a caller and the
#: emergency services, so drlab lets every emergency call through (docs/ASSUMPTIONS.md).
EMERGENCY_CALLS_EXEMPT = True
#: what the Teams client shows for a refused outbound call [S21]
REFUSED_OUTBOUND_TEXT = "Call not allowed due to your organization's settings"


class SiteState(StrEnum):
    MATCHED = "matched"  # a network site enabled for LBR
    UNMATCHED = "unmatched"  # a network site not enabled for LBR
    UNKNOWN = "unknown"  # in no network site of the tenant (home, a coffee shop, an unlisted subnet)


class Rule(StrEnum):
    """The rule of [S21] that allowed or refused a call."""

    NOT_RESTRICTED = "not-restricted"  # neither the user nor the gateway is enabled for LBR
    EMERGENCY = "emergency-exempt"
    VOICE_APP = "voice-app"  # inbound to an auto attendant or call queue
    SAME_SITE = "same-site"  # LBR user and LBR gateway at the same matched site
    GATEWAY_NOT_AT_USER_SITE = "gateway-not-at-user-site"  # LBR user at a matched site, gateway elsewhere
    UNMATCHED_SITE = "unmatched-site"  # LBR user at an unmatched site, gateway not LBR-enabled
    UNMATCHED_SITE_LBR_GATEWAY = "unmatched-site-lbr-gateway"
    UNMATCHED_SITE_OTHER_GATEWAY = "unmatched-site-gateway-elsewhere"  # inbound: not the user's unmatched site
    UNKNOWN_SITE_OVERRIDE = "unknown-site-user-override"
    UNKNOWN_SITE = "unknown-site"  # LBR user at an unknown location: no PSTN (no override)
    LBR_GATEWAY_NEEDS_LBR_USER = "lbr-gateway-needs-lbr-user"


@dataclass(frozen=True, slots=True)
class LbrDecision:
    allowed: bool
    rule: Rule
    user_site: str | None
    gateway_site: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "rule": str(self.rule), "user_site": self.user_site,
                "gateway_site": self.gateway_site}


def user_lbr_enabled(tenant: Tenant, user: User) -> bool:
    """PreventTollBypass in the user's effective Teams calling policy [S21]."""
    policy = tenant.effective_policy(user, "teams_calling_policy")
    return bool(policy is not None and policy.prevent_toll_bypass)


def gateway_lbr_enabled(gateway: Gateway) -> bool:
    return gateway.gateway_site_lbr_enabled


def site_state(tenant: Tenant, site: str | None) -> SiteState:
    found = tenant.find("site", site) if site is not None else None
    if found is None:
        return SiteState.UNKNOWN
    return SiteState.MATCHED if found.enable_location_based_routing else SiteState.UNMATCHED


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _where(site: str | None, state: SiteState) -> str:
    return "an unknown location (no network site)" if state is SiteState.UNKNOWN else \
        f"{state} site {site!r}" if state is SiteState.UNMATCHED else f"LBR site {site!r}"


def _gateway(gw: Gateway) -> str:
    lbr = "LBR gateway" if gateway_lbr_enabled(gw) else "gateway (not LBR-enabled)"
    return f"{lbr} {gw.fqdn}" + (f" at site {gw.gateway_site_id!r}" if gw.gateway_site_id else " (no site)")


def outbound(tenant: Tenant, user: User, gateway: Gateway, site: str | None, *,
             emergency: bool = False) -> LbrDecision:
    """May `user`, with an endpoint at `site`, call the PSTN through `gateway` [S21]?"""
    state = site_state(tenant, site)
    gw_lbr = gateway_lbr_enabled(gateway)

    def decide(allowed: bool, rule: Rule, why: str) -> LbrDecision:
        verdict = "allowed" if allowed else "refused"
        return LbrDecision(allowed, rule, site, gateway.gateway_site_id, f"LBR {verdict} ({rule}): {why}")

    if emergency and EMERGENCY_CALLS_EXEMPT:
        return decide(True, Rule.EMERGENCY, "an emergency call is never refused by Location-Based Routing")
    if not user_lbr_enabled(tenant, user):
        if gw_lbr:
            return decide(False, Rule.LBR_GATEWAY_NEEDS_LBR_USER,
                          f"{user.upn} is not enabled for LBR and cannot use the {_gateway(gateway)}")
        return decide(True, Rule.NOT_RESTRICTED, f"neither {user.upn} nor {gateway.fqdn} is enabled for LBR")
    here = f"{user.upn} (LBR) at {_where(site, state)}"
    if state is SiteState.MATCHED:
        if gw_lbr and _same(gateway.gateway_site_id, site):
            return decide(True, Rule.SAME_SITE, f"{here} calls through the {_gateway(gateway)}")
        return decide(False, Rule.GATEWAY_NOT_AT_USER_SITE,
                      f"{here} may call only through an LBR gateway at that site, not the {_gateway(gateway)}")
    if state is SiteState.UNMATCHED:
        if not gw_lbr:
            return decide(True, Rule.UNMATCHED_SITE, f"{here} calls through the {_gateway(gateway)}")
        return decide(False, Rule.UNMATCHED_SITE_LBR_GATEWAY,
                      f"{here} may call only through gateways not enabled for LBR, not the {_gateway(gateway)}")
    if gw_lbr and gateway.gateway_lbr_enabled_user_override:
        return decide(True, Rule.UNKNOWN_SITE_OVERRIDE,
                      f"{here} calls through the {_gateway(gateway)}, which has GatewayLbrEnabledUserOverride")
    return decide(False, Rule.UNKNOWN_SITE,
                  f"{here} has no PSTN calling except through an LBR gateway with GatewayLbrEnabledUserOverride; "
                  f"not the {_gateway(gateway)}")


def inbound(tenant: Tenant, user: User | None, gateway: Gateway, site: str | None, *,
            voice_app: bool = False) -> LbrDecision:
    """May a PSTN call arriving through `gateway` ring `user`'s endpoint at `site` [S21]?
    A refused call goes to the user's unanswered-call settings (typically voicemail)."""
    state = site_state(tenant, site)
    gw_lbr = gateway_lbr_enabled(gateway)

    def decide(allowed: bool, rule: Rule, why: str) -> LbrDecision:
        verdict = "allowed" if allowed else "not delivered to the endpoint"
        return LbrDecision(allowed, rule, site, gateway.gateway_site_id, f"LBR {verdict} ({rule}): {why}")

    if voice_app or user is None:
        return decide(True, Rule.VOICE_APP, "inbound PSTN calls may connect to an auto attendant or call queue")
    if not user_lbr_enabled(tenant, user):
        if gw_lbr:
            return decide(False, Rule.LBR_GATEWAY_NEEDS_LBR_USER,
                          f"{user.upn} is not enabled for LBR and cannot be reached through the {_gateway(gateway)}")
        return decide(True, Rule.NOT_RESTRICTED, f"neither {user.upn} nor {gateway.fqdn} is enabled for LBR")
    here = f"{user.upn} (LBR) at {_where(site, state)}"
    at_gateway_site = _same(gateway.gateway_site_id, site)
    if state is SiteState.MATCHED:
        if gw_lbr and at_gateway_site:
            return decide(True, Rule.SAME_SITE, f"{here} is reached through the {_gateway(gateway)}")
        return decide(False, Rule.GATEWAY_NOT_AT_USER_SITE,
                      f"{here} is reached only through an LBR gateway at that site, not the {_gateway(gateway)}")
    if state is SiteState.UNMATCHED:
        if gw_lbr:
            return decide(False, Rule.UNMATCHED_SITE_LBR_GATEWAY,
                          f"{here} is not reached through the {_gateway(gateway)}")
        if at_gateway_site:
            return decide(True, Rule.UNMATCHED_SITE, f"{here} is reached through the {_gateway(gateway)}")
        return decide(False, Rule.UNMATCHED_SITE_OTHER_GATEWAY,
                      f"{here} is reached only through a gateway at that same site, not the {_gateway(gateway)}")
    return decide(False, Rule.UNKNOWN_SITE, f"{here} receives no PSTN calls (the {_gateway(gateway)})")


class _ConfiguredSite:
    def __repr__(self) -> str:
        return "CONFIGURED_SITE"


#: the endpoint is at the user's configured network site (`User.network_site`; None: unknown)
CONFIGURED_SITE: Any = _ConfiguredSite()


def endpoint_site(user: User, site: str | None | _ConfiguredSite) -> str | None:
    """The site a decision uses: the one given, or the user's configured network site."""
    return user.network_site if isinstance(site, _ConfiguredSite) else site


def lbr_in_play(tenant: Tenant, user: User) -> bool:
    """Whether LBR can refuse anything for this user: the user or some gateway is enabled for it
    (otherwise every call is `not-restricted` and routing skips the per-gateway checks)."""
    cache: dict[str, bool] = tenant.__dict__.setdefault("_lbr_gateways_cache", {})
    if "any" not in cache:
        cache["any"] = any(gateway_lbr_enabled(g) for g in tenant.gateways.values())
    return cache["any"] or user_lbr_enabled(tenant, user)
