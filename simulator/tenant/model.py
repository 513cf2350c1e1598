"""The Teams tenant as typed data: what the YAML and PowerShell loaders build and routing reads.

Every object mirrors its `New-Cs*` cmdlet (teams-direct-routing.md §1.10, §2.2, §2.5, §2.6,
§2.7, §2.8, §3.2): one field per parameter, in snake_case, with the documented default
(`Enabled` is False for a new PSTN gateway!). `PS_PARAMETERS` is the one table that maps a
cmdlet parameter name to its field, for both loaders.

Names compare case-insensitively as in Teams: `Tenant` keys every collection by the lowercased
name and keeps the spelling the object was made with in the object itself. Source positions are
kept for messages but never take part in equality, so a tenant loaded from YAML equals the same
tenant loaded from PowerShell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from simulator.tenant.errors import SourcePosition, TenantError

# §1.9: Setting FailoverResponseCodes overwrites these defaults.
DEFAULT_FAILOVER_RESPONSE_CODES = "408,503,504"
DEFAULT_FAILOVER_TIME_SECONDS = 10
GLOBAL = "Global"


def _pos() -> Any:
    return field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TranslationRule:
    """`New-CsTeamsTranslationRule` (§2.6): applied to numbers on a trunk, in listed order."""

    name: str
    pattern: str
    translation: str
    description: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class Gateway:
    """`New-CsOnlinePSTNGateway` (§1.10): one SBC (trunk) and its documented defaults."""

    fqdn: str
    sip_signaling_port: int
    enabled: bool = False  # §1.10: $false by default; a disabled SBC gets no new calls
    send_sip_options: bool = True
    max_concurrent_sessions: int | None = None
    failover_response_codes: str = DEFAULT_FAILOVER_RESPONSE_CODES
    failover_time_seconds: int = DEFAULT_FAILOVER_TIME_SECONDS
    forward_call_history: bool = False
    forward_pai: bool = False
    media_bypass: bool = False
    bypass_mode: str = "None"
    proxy_sbc: str | None = None
    gateway_site_id: str | None = None
    gateway_site_lbr_enabled: bool = False
    gateway_lbr_enabled_user_override: bool = False
    pidf_lo_supported: bool = False
    ip_address_version: str = "IPv4"
    media_relay_routing_location_override: str | None = None
    inbound_teams_number_translation_rules: tuple[str, ...] = ()
    inbound_pstn_number_translation_rules: tuple[str, ...] = ()
    outbound_teams_number_translation_rules: tuple[str, ...] = ()
    outbound_pstn_number_translation_rules: tuple[str, ...] = ()
    description: str | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.fqdn

    @property
    def failover_codes(self) -> frozenset[int]:
        """FailoverResponseCodes as numbers; the cmdlet takes a comma list ("408, 503, 504")."""
        return parse_failover_codes(self.failover_response_codes)


def parse_failover_codes(text: str) -> frozenset[int]:
    codes = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in codes if not (c.isdigit() and 400 <= int(c) <= 699)]
    if bad:
        raise ValueError(f"FailoverResponseCodes must be 4xx-6xx SIP codes, not {', '.join(bad)}")
    return frozenset(int(c) for c in codes)


@dataclass(frozen=True)
class VoiceRoute:
    """`New-CsOnlineVoiceRoute` (§2.2). Lowest priority number is tried first."""

    name: str
    number_pattern: str = "[0-9]{10}"  # the cmdlet reference's default
    online_pstn_gateway_list: tuple[str, ...] = ()
    online_pstn_usages: tuple[str, ...] = ()
    priority: int = 0
    description: str | None = None
    bridge_source_phone_number: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class VoiceRoutingPolicy:
    """`New-CsOnlineVoiceRoutingPolicy` (§2.2): an ordered list of PSTN usages."""

    name: str
    online_pstn_usages: tuple[str, ...] = ()
    description: str | None = None
    route_type: str = "BYOT"
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class NormalizationRule:
    """`New-CsVoiceNormalizationRule -InMemory` (§2.5); its priority is its place in the plan."""

    name: str
    pattern: str = r"^(\d{11})$"  # reference defaults
    translation: str = "+$1"
    description: str | None = None
    is_internal_extension: bool = False
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class DialPlan:
    """`New-CsTenantDialPlan` (§2.5): normalization rules, first match wins."""

    name: str
    normalization_rules: tuple[NormalizationRule, ...] = ()
    description: str | None = None
    simple_name: str | None = None
    optimize_device_dialing: bool = False
    external_access_prefix: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class NetworkRegion:
    name: str
    description: str | None = None
    central_site: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class NetworkSite:
    name: str
    description: str | None = None
    network_region_id: str | None = None
    enable_location_based_routing: bool = False
    location_policy: str | None = None
    emergency_call_routing_policy: str | None = None
    emergency_calling_policy: str | None = None
    network_roaming_policy: str | None = None
    site_address: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class NetworkSubnet:
    subnet_id: str
    mask_bits: int
    network_site_id: str | None = None
    description: str | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.subnet_id


@dataclass(frozen=True)
class SurvivableBranchAppliance:
    """`New-CsTeamsSurvivableBranchAppliance` (§3.2)."""

    fqdn: str
    site: str | None = None
    description: str | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.fqdn


@dataclass(frozen=True)
class SbaPolicy:
    """`New-CsTeamsSurvivableBranchAppliancePolicy` (§3.2)."""

    name: str
    branch_appliance_fqdns: tuple[str, ...] = ()
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class EmergencyNumber:
    """`New-CsTeamsEmergencyNumber` (§2.8)."""

    dial_string: str
    dial_mask: str | None = None
    online_pstn_usage: str | None = None
    description: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class EmergencyCallRoutingPolicy:
    name: str
    emergency_numbers: tuple[EmergencyNumber, ...] = ()
    allow_enhanced_emergency_services: bool = False
    description: str | None = None
    position: SourcePosition | None = _pos()


# A number as Set-CsPhoneNumberAssignment takes it: E.164 (the '+' optional), maybe ;ext=.
PHONE_NUMBER = re.compile(r"^\+?\d{3,15}(;ext=\d{1,10})?$")

# The policy kinds a user can be granted; absent means the tenant's Global instance.
POLICY_KINDS = ("voice_routing_policy", "dial_plan", "sba_policy", "emergency_call_routing_policy")


@dataclass(frozen=True)
class User:
    """A Teams user: number (Set-CsPhoneNumberAssignment), site and granted policies."""

    upn: str
    phone_number: str | None = None
    phone_number_type: str | None = None
    enterprise_voice_enabled: bool = False
    network_site: str | None = None
    location_id: str | None = None
    voice_routing_policy: str | None = None
    dial_plan: str | None = None
    sba_policy: str | None = None
    emergency_call_routing_policy: str | None = None
    # Set-CsUserCallingSettings (single targets only: what an SBA serves offline, §3.5): a number
    # or a UPN; the unanswered delay in seconds (None: the Teams default, a role setting).
    forwarding_target: str | None = None
    unanswered_target: str | None = None
    unanswered_delay_seconds: int | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.upn


# ---------------------------------------------------------------- PowerShell parameter ↔ field

def _snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return name.lower()


KIND_CLASSES: dict[str, type] = {
    "gateway": Gateway, "voice_route": VoiceRoute, "voice_routing_policy": VoiceRoutingPolicy,
    "dial_plan": DialPlan, "translation_rule": TranslationRule, "region": NetworkRegion,
    "site": NetworkSite, "subnet": NetworkSubnet, "sba": SurvivableBranchAppliance,
    "sba_policy": SbaPolicy, "emergency_call_routing_policy": EmergencyCallRoutingPolicy,
}
IDENTITY_FIELD = {"gateway": "fqdn", "subnet": "subnet_id", "sba": "fqdn"}
_PS_EXCEPTIONS = {"IPAddressVersion": "ip_address_version", "NetworkRegionID": "network_region_id",
                  "NetworkSiteID": "network_site_id", "GatewaySiteId": "gateway_site_id",
                  "ForwardPai": "forward_pai", "PidfLoSupported": "pidf_lo_supported"}


def _ps_table(cls: type, identity_field: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for f in fields(cls):
        if f.name in ("position", "name", identity_field):
            continue
        ps = "".join(p.capitalize() for p in f.name.split("_"))
        table[ps] = f.name
    for ps, snake in _PS_EXCEPTIONS.items():
        if snake in table.values() and ps not in table:
            table = {(ps if v == snake else k): v for k, v in table.items()}
    return table


# kind -> {PowerShell parameter name: field name}; the identity parameter maps to the name field.
PS_PARAMETERS: dict[str, dict[str, str]] = {
    kind: _ps_table(cls, IDENTITY_FIELD.get(kind, "name")) for kind, cls in KIND_CLASSES.items()}
PS_PARAMETERS["gateway"]["SipSignallingPort"] = "sip_signaling_port"  # the older spelling still binds


def field_for(kind: str, ps_parameter: str) -> str | None:
    """The field a cmdlet parameter sets (case-insensitive, like PowerShell's binder)."""
    for ps, name in PS_PARAMETERS[kind].items():
        if ps.lower() == ps_parameter.lower():
            return name
    return None


# ---------------------------------------------------------------- the aggregate

_COLLECTIONS = {
    "gateway": "gateways", "voice_route": "voice_routes", "voice_routing_policy": "voice_routing_policies",
    "dial_plan": "dial_plans", "translation_rule": "translation_rules", "region": "regions",
    "site": "sites", "subnet": "subnets", "sba": "sbas", "sba_policy": "sba_policies",
    "emergency_call_routing_policy": "emergency_call_routing_policies",
}
_WHAT = {"gateway": "PSTN gateway", "voice_route": "voice route", "voice_routing_policy": "online voice routing policy",
         "dial_plan": "tenant dial plan", "translation_rule": "translation rule", "region": "network region",
         "site": "network site", "subnet": "network subnet", "sba": "survivable branch appliance",
         "sba_policy": "SBA policy", "emergency_call_routing_policy": "emergency call routing policy",
         "usage": "PSTN usage", "user": "user"}
GLOBAL_KINDS = ("voice_routing_policy", "dial_plan", "sba_policy", "emergency_call_routing_policy")


@dataclass
class Tenant:
    """One tenant. Collections map the lowercased name to the object (Teams names ignore case)."""

    usages: tuple[str, ...] = ()  # the global PSTN usage list, in order
    gateways: dict[str, Gateway] = field(default_factory=dict)
    voice_routes: dict[str, VoiceRoute] = field(default_factory=dict)
    voice_routing_policies: dict[str, VoiceRoutingPolicy] = field(default_factory=dict)
    dial_plans: dict[str, DialPlan] = field(default_factory=dict)
    translation_rules: dict[str, TranslationRule] = field(default_factory=dict)
    regions: dict[str, NetworkRegion] = field(default_factory=dict)
    sites: dict[str, NetworkSite] = field(default_factory=dict)
    subnets: dict[str, NetworkSubnet] = field(default_factory=dict)
    sbas: dict[str, SurvivableBranchAppliance] = field(default_factory=dict)
    sba_policies: dict[str, SbaPolicy] = field(default_factory=dict)
    emergency_call_routing_policies: dict[str, EmergencyCallRoutingPolicy] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    # Grant-* -Global: kind -> policy name that replaces the Global instance for everyone.
    global_grants: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Every tenant has the Global instances (§2.2, §2.5, §3.2).
        defaults = {"voice_routing_policy": VoiceRoutingPolicy(GLOBAL), "dial_plan": DialPlan(GLOBAL),
                    "sba_policy": SbaPolicy(GLOBAL), "emergency_call_routing_policy": EmergencyCallRoutingPolicy(GLOBAL)}
        for kind, obj in defaults.items():
            self.collection(kind).setdefault("global", obj)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tenant):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self))

    def changed(self) -> None:
        """Forget what routing derived from this tenant (call after changing it in place)."""
        for key in [k for k in self.__dict__ if k.startswith("_") and k.endswith("_cache")]:
            del self.__dict__[key]

    def collection(self, kind: str) -> dict[str, Any]:
        return self.users if kind == "user" else getattr(self, _COLLECTIONS[kind])

    def add(self, kind: str, obj: Any) -> None:
        self.collection(kind)[obj.name.lower()] = obj

    def find(self, kind: str, name: str) -> Any:
        return self.collection(kind).get(name.lower())

    def has_usage(self, name: str) -> bool:
        return any(u.lower() == name.lower() for u in self.usages)

    def user(self, upn: str) -> User:
        u = self.users.get(upn.lower())
        if u is None:
            raise KeyError(f"no user {upn!r} in the tenant")
        return u

    def effective_policy(self, user: User, kind: str) -> Any:
        """The user's granted policy, else the one granted with -Global, else the Global instance."""
        name = getattr(user, kind) or self.global_grants.get(kind) or GLOBAL
        return getattr(self, _COLLECTIONS[kind]).get(name.lower())

    def user_by_number(self, number: str) -> User | None:
        """Reverse number lookup (§2.4): exact string match, including any ;ext=."""
        for u in self.users.values():
            if u.phone_number is not None and u.phone_number == number:
                return u
        return None

    def validate(self) -> None:
        """References to unknown objects are errors, at the referring object's position."""
        def need(kind: str, name: str | None, owner: Any, what: str) -> None:
            if name is None:
                return
            ok = self.has_usage(name) if kind == "usage" else self.find(kind, name) is not None
            if not ok:
                raise TenantError(f"{what} names unknown {_WHAT[kind]} {name!r}", owner.position)

        for g in self.gateways.values():
            need("site", g.gateway_site_id, g, f"PSTN gateway {g.fqdn!r} GatewaySiteId")
            for lst in ("inbound_teams_number_translation_rules", "inbound_pstn_number_translation_rules",
                        "outbound_teams_number_translation_rules", "outbound_pstn_number_translation_rules"):
                for r in getattr(g, lst):
                    need("translation_rule", r, g, f"PSTN gateway {g.fqdn!r} {lst}")
        for r in self.voice_routes.values():
            for gw in r.online_pstn_gateway_list:
                need("gateway", gw, r, f"voice route {r.name!r}")
            for us in r.online_pstn_usages:
                need("usage", us, r, f"voice route {r.name!r}")
        for p in self.voice_routing_policies.values():
            for us in p.online_pstn_usages:
                need("usage", us, p, f"voice routing policy {p.name!r}")
        for s in self.sites.values():
            need("region", s.network_region_id, s, f"network site {s.name!r}")
            need("emergency_call_routing_policy", s.emergency_call_routing_policy, s, f"network site {s.name!r}")
        for sn in self.subnets.values():
            need("site", sn.network_site_id, sn, f"subnet {sn.subnet_id!r}")
        for a in self.sbas.values():
            need("site", a.site, a, f"SBA {a.fqdn!r}")
        for sp in self.sba_policies.values():
            for f in sp.branch_appliance_fqdns:
                need("sba", f, sp, f"SBA policy {sp.name!r}")
        for e in self.emergency_call_routing_policies.values():
            for n in e.emergency_numbers:
                need("usage", n.online_pstn_usage, n if n.position else e,
                     f"emergency number {n.dial_string!r} of {e.name!r}")
        for u in self.users.values():
            need("site", u.network_site, u, f"user {u.upn!r} network site")
            for kind in POLICY_KINDS:
                need(kind, getattr(u, kind), u, f"user {u.upn!r} {kind.replace('_', ' ')}")
        for kind, name in self.global_grants.items():
            need(kind, name, self, f"the -Global grant of {kind.replace('_', ' ')}")

    position = None  # for validate()'s messages about the tenant itself
