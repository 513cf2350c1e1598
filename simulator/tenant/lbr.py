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

from dataclasses import dataclass, field
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


# Why each rule allows or refuses, for the reasons a decision shows (formatted only when read).
_WHY_OUT = {
    Rule.EMERGENCY: "an emergency call is never refused by Location-Based Routing",
    Rule.NOT_RESTRICTED: "neither {upn} nor {fqdn} is enabled for LBR",
    Rule.LBR_GATEWAY_NEEDS_LBR_USER: "{upn} is not enabled for LBR and cannot use the {gateway}",
    Rule.SAME_SITE: "{here} calls through the {gateway}",
    Rule.GATEWAY_NOT_AT_USER_SITE: "{here} may call only through an LBR gateway at that site, not the {gateway}",
    Rule.UNMATCHED_SITE: "{here} calls through the {gateway}",
    Rule.UNMATCHED_SITE_LBR_GATEWAY: "{here} may call only through gateways not enabled for LBR, not the {gateway}",
    Rule.UNKNOWN_SITE_OVERRIDE: "{here} calls through the {gateway}, which has GatewayLbrEnabledUserOverride",
    Rule.UNKNOWN_SITE: "{here} has no PSTN calling except through an LBR gateway with "
                       "GatewayLbrEnabledUserOverride; not the {gateway}",
}
_WHY_IN = {
    Rule.VOICE_APP: "inbound PSTN calls may connect to an auto attendant or call queue",
    Rule.NOT_RESTRICTED: "neither {upn} nor {fqdn} is enabled for LBR",
    Rule.LBR_GATEWAY_NEEDS_LBR_USER: "{upn} is not enabled for LBR and cannot be reached through the {gateway}",
    Rule.SAME_SITE: "{here} is reached through the {gateway}",
    Rule.GATEWAY_NOT_AT_USER_SITE: "{here} is reached only through an LBR gateway at that site, not the {gateway}",
    Rule.UNMATCHED_SITE: "{here} is reached through the {gateway}",
    Rule.UNMATCHED_SITE_LBR_GATEWAY: "{here} is not reached through the {gateway}",
    Rule.UNMATCHED_SITE_OTHER_GATEWAY: "{here} is reached only through a gateway at that same site, not the {gateway}",
    Rule.UNKNOWN_SITE: "{here} receives no PSTN calls (the {gateway})",
}


@dataclass(frozen=True, slots=True)
class LbrDecision:
    allowed: bool
    rule: Rule
    user_site: str | None  # the endpoint's site as given (None: in no site)
    gateway_site: str | None
    inbound: bool = field(default=False, compare=False)
    upn: str = field(default="", compare=False)
    gateway: Gateway | None = field(default=None, compare=False, repr=False)
    state: SiteState = field(default=SiteState.UNKNOWN, compare=False)

    @property
    def reason(self) -> str:
        verdict = "allowed" if self.allowed else "not delivered to the endpoint" if self.inbound else "refused"
        gw = self.gateway
        what = ""
        if gw is not None:
            what = ("LBR gateway" if gateway_lbr_enabled(gw) else "gateway (not LBR-enabled)") + f" {gw.fqdn}" + (
                f" at site {gw.gateway_site_id!r}" if gw.gateway_site_id else " (no site)")
        where = ("an unknown location (no network site)" if self.state is SiteState.UNKNOWN else
                 f"LBR site {self.user_site!r}" if self.state is SiteState.MATCHED else
                 f"unmatched site {self.user_site!r}")
        why = (_WHY_IN if self.inbound else _WHY_OUT)[self.rule].format(
            upn=self.upn, fqdn=gw.fqdn if gw else "-", gateway=what, here=f"{self.upn} (LBR) at {where}")
        return f"LBR {verdict} ({self.rule}): {why}"

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


def outbound(tenant: Tenant, user: User, gateway: Gateway, site: str | None, *,
             emergency: bool = False, user_lbr: bool | None = None) -> LbrDecision:
    """May `user`, with an endpoint at `site`, call the PSTN through `gateway` [S21]?
    `user_lbr` is `user_lbr_enabled(tenant, user)` when the caller has it already."""
    state = site_state(tenant, site)
    gw_lbr = gateway_lbr_enabled(gateway)

    def decide(allowed: bool, rule: Rule) -> LbrDecision:
        return LbrDecision(allowed, rule, site, gateway.gateway_site_id, False, user.upn, gateway, state)

    if emergency and EMERGENCY_CALLS_EXEMPT:
        return decide(True, Rule.EMERGENCY)
    if not (user_lbr if user_lbr is not None else user_lbr_enabled(tenant, user)):
        return decide(False, Rule.LBR_GATEWAY_NEEDS_LBR_USER) if gw_lbr else decide(True, Rule.NOT_RESTRICTED)
    if state is SiteState.MATCHED:
        if gw_lbr and _same(gateway.gateway_site_id, site):
            return decide(True, Rule.SAME_SITE)
        return decide(False, Rule.GATEWAY_NOT_AT_USER_SITE)
    if state is SiteState.UNMATCHED:
        return decide(False, Rule.UNMATCHED_SITE_LBR_GATEWAY) if gw_lbr else decide(True, Rule.UNMATCHED_SITE)
    if gw_lbr and gateway.gateway_lbr_enabled_user_override:
        return decide(True, Rule.UNKNOWN_SITE_OVERRIDE)
    return decide(False, Rule.UNKNOWN_SITE)


def inbound(tenant: Tenant, user: User | None, gateway: Gateway, site: str | None, *,
            voice_app: bool = False) -> LbrDecision:
    """May a PSTN call arriving through `gateway` ring `user`'s endpoint at `site` [S21]?
    A refused call goes to the user's unanswered-call settings (typically voicemail)."""
    state = site_state(tenant, site)
    gw_lbr = gateway_lbr_enabled(gateway)

    def decide(allowed: bool, rule: Rule) -> LbrDecision:
        return LbrDecision(allowed, rule, site, gateway.gateway_site_id, True, user.upn if user else "", gateway,
                           state)

    if voice_app or user is None:
        return decide(True, Rule.VOICE_APP)
    if not user_lbr_enabled(tenant, user):
        return decide(False, Rule.LBR_GATEWAY_NEEDS_LBR_USER) if gw_lbr else decide(True, Rule.NOT_RESTRICTED)
    if state is SiteState.MATCHED:
        if gw_lbr and _same(gateway.gateway_site_id, site):
            return decide(True, Rule.SAME_SITE)
        return decide(False, Rule.GATEWAY_NOT_AT_USER_SITE)
    if state is SiteState.UNMATCHED:
        if gw_lbr:
            return decide(False, Rule.UNMATCHED_SITE_LBR_GATEWAY)
        if _same(gateway.gateway_site_id, site):
            return decide(True, Rule.UNMATCHED_SITE)
        return decide(False, Rule.UNMATCHED_SITE_OTHER_GATEWAY)
    return decide(False, Rule.UNKNOWN_SITE)


class _ConfiguredSite:
    def __repr__(self) -> str:
        return "CONFIGURED_SITE"


#: the endpoint is at the user's configured network site (`User.network_site`; None: unknown)
CONFIGURED_SITE: Any = _ConfiguredSite()


def endpoint_site(user: User, site: str | None | _ConfiguredSite) -> str | None:
    """The site a decision uses: the one given, or the user's configured network site."""
    return user.network_site if isinstance(site, _ConfiguredSite) else site


def tenant_uses_lbr(tenant: Tenant) -> bool:
    """Whether some gateway or some Teams calling policy of the tenant is enabled for LBR (known
    once per tenant): if none is, every call is `not-restricted`."""
    cache: dict[str, bool] = tenant.__dict__.setdefault("_lbr_in_use_cache", {})
    if "any" not in cache:
        cache["any"] = any(gateway_lbr_enabled(g) for g in tenant.gateways.values()) or any(
            p.prevent_toll_bypass for p in tenant.teams_calling_policies.values())
    return cache["any"]
