"""The Teams tenant as typed data: what the YAML and PowerShell loaders build and routing reads.

Every object mirrors its `New-Cs*` cmdlet ([S4] [S12] [S13] [S15] [S17] [S19] [S21] [S24] [S26]):
one field per parameter, in snake_case, with the documented default (`Enabled` is False for a
new PSTN gateway!). `PS_PARAMETERS` is the one table that maps a cmdlet parameter name to its
field, for both loaders.

Objects check their own values when they are made (a port from 1 to 65535, a regular expression
that compiles, FailoverResponseCodes that are SIP codes): the rule is written once, on the field,
and both loaders report its one message at the place the value was written (`InvalidValue`).
References between objects are checked by `Tenant.validate` once the tenant is complete.

Names compare case-insensitively as in Teams: `Tenant` keys every collection by the lowercased
name and keeps the spelling the object was made with in the object itself. Source positions are
kept for messages but never take part in equality, so a tenant loaded from YAML equals the same
tenant loaded from PowerShell.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from simulator.tenant.dotnet_regex import DotnetRegexError, compile_dotnet
from simulator.tenant.errors import SourcePosition, TenantError

# Setting FailoverResponseCodes replaces these defaults [S4] [S5].
DEFAULT_FAILOVER_RESPONSE_CODES = frozenset({408, 503, 504})
DEFAULT_FAILOVER_TIME_SECONDS = 10
GLOBAL = "Global"
INT32_MAX = 2**31 - 1
# The values of the cmdlets' enumerations [S4] [S12]; PowerShell binds them ignoring case.
BYPASS_MODES = ("None", "Always", "OnlyForLocalUsers")
IP_ADDRESS_VERSIONS = ("IPv4", "IPv6")
ROUTE_TYPES = ("BYOT",)


class InvalidValue(ValueError):
    """A field value its cmdlet refuses. The loaders turn it into a TenantError at the place the
    value was written; `str(err)` is the message, the same whichever format the value came from."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


# A field's rule: the complaint about a present value (" must be ..., not ..."), or None if it holds.
Rule = Callable[[Any], "str | None"]


def _shown(value: Any) -> str:
    if isinstance(value, frozenset):
        return ", ".join(map(str, sorted(value)))
    if isinstance(value, tuple):
        return str(len(value))
    return repr(value) if isinstance(value, str) else str(value)


def _rule(what: str, holds: Callable[[Any], bool]) -> Rule:
    return lambda value: None if holds(value) else f" must be {what}, not {_shown(value)}"


def _between(low: int, high: int) -> Rule:
    return _rule(f"a whole number from {low} to {high}",
                 lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high)


def _one_of(*choices: str) -> Rule:
    return _rule(f"one of {', '.join(choices)}", lambda v: v in choices)


def _at_most(n: int) -> Rule:
    return _rule(f"at most {n} characters long", lambda v: isinstance(v, str) and len(v) <= n)


def _matching(pattern: re.Pattern[str], what: str) -> Rule:
    return _rule(what, lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None)


_NAME: Rule = _rule("a name that is not empty", lambda v: isinstance(v, str) and bool(v.strip()))


def _sip_codes(codes: Any) -> str | None:
    if not isinstance(codes, frozenset):
        return f" must be a set of SIP response codes, not {codes!r}"
    bad = [c for c in codes if not (isinstance(c, int) and not isinstance(c, bool) and 400 <= c <= 699)]
    return f" must be SIP response codes from 400 to 699, not {', '.join(sorted(map(str, bad)))}" if bad else None


def _regex(pattern: Any) -> str | None:
    """A .NET regular expression drlab can evaluate ([S16]: Teams uses .NET's flavour)."""
    if not isinstance(pattern, str):
        return f" must be a regular expression (text), not {pattern!r}"
    try:
        compile_dotnet(pattern)
    except DotnetRegexError as err:
        return f": {err}"
    return None


def _checked(*rules: Rule, default: Any = MISSING) -> Any:
    return field(default=default, metadata={"rules": rules})


def _pos() -> Any:
    return field(default=None, compare=False, repr=False)


def _label(cls: type, name: str) -> str:
    """`failover_time_seconds (-FailoverTimeSeconds)`: the YAML key and the cmdlet parameter."""
    kind = next((k for k, c in KIND_CLASSES.items() if c is cls), None)
    table = PS_PARAMETERS[kind] if kind else OBJECT_PS_PARAMETERS.get(cls, {})
    ps = next((p for p, f in table.items() if f == name), None)
    return f"{name} (-{ps})" if ps else name


class _SelfChecking:
    """Checks every field's rules when the object is made, dataclasses.replace included."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None:
                continue
            for rule in f.metadata.get("rules", ()):
                complaint = rule(value)
                if complaint is not None:
                    raise InvalidValue(f.name, f"{_label(type(self), f.name)}{complaint}")


def parse_failover_codes(text: str) -> frozenset[int]:
    """FailoverResponseCodes as the cmdlet takes them [S4]: a comma list ("408, 503, 504")."""
    codes = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in codes if not (c.isascii() and c.isdigit() and len(c) <= 3)]
    if bad:
        raise InvalidValue("failover_response_codes",
                           f"{_label(Gateway, 'failover_response_codes')} is a comma list of SIP response "
                           f"codes like \"408, 503, 504\", not {text!r}")
    return frozenset(int(c) for c in codes)


@dataclass(frozen=True)
class TranslationRule(_SelfChecking):
    """`New-CsTeamsTranslationRule` [S19]: applied to numbers on a trunk, in listed order."""

    name: str = _checked(_NAME, _at_most(100))
    pattern: str = _checked(_regex, _at_most(1024))
    translation: str = _checked(_at_most(256))
    description: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class Gateway(_SelfChecking):
    """`New-CsOnlinePSTNGateway` [S4]: one SBC (trunk) and its documented defaults."""

    fqdn: str = _checked(_NAME, _at_most(63))
    sip_signaling_port: int = _checked(_between(1, 65535))
    enabled: bool = False  # $false by default [S4]; a disabled SBC gets no new calls
    send_sip_options: bool = True
    max_concurrent_sessions: int | None = _checked(_between(1, 100_000), default=None)
    failover_response_codes: frozenset[int] = _checked(_sip_codes, default=DEFAULT_FAILOVER_RESPONSE_CODES)
    failover_time_seconds: int = _checked(_between(1, 3600), default=DEFAULT_FAILOVER_TIME_SECONDS)
    forward_call_history: bool = False
    forward_pai: bool = False
    media_bypass: bool = False
    bypass_mode: str = _checked(_one_of(*BYPASS_MODES), default="None")
    proxy_sbc: str | None = None
    gateway_site_id: str | None = None
    gateway_site_lbr_enabled: bool = False
    gateway_lbr_enabled_user_override: bool = False
    pidf_lo_supported: bool = False
    ip_address_version: str = _checked(_one_of(*IP_ADDRESS_VERSIONS), default="IPv4")
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


@dataclass(frozen=True)
class VoiceRoute(_SelfChecking):
    """`New-CsOnlineVoiceRoute` [S12] [S13]. Lowest priority number is tried first."""

    name: str = _checked(_NAME)
    number_pattern: str = _checked(_regex, default="[0-9]{10}")  # the cmdlet's documented default [S13]
    online_pstn_gateway_list: tuple[str, ...] = ()
    online_pstn_usages: tuple[str, ...] = ()
    priority: int = _checked(_between(0, INT32_MAX), default=0)
    description: str | None = None
    bridge_source_phone_number: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class VoiceRoutingPolicy(_SelfChecking):
    """`New-CsOnlineVoiceRoutingPolicy` [S12]: an ordered list of PSTN usages."""

    name: str = _checked(_NAME)
    online_pstn_usages: tuple[str, ...] = ()
    description: str | None = None
    route_type: str = _checked(_one_of(*ROUTE_TYPES), default="BYOT")
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class NormalizationRule(_SelfChecking):
    """`New-CsVoiceNormalizationRule -InMemory` [S17]; its priority is its place in the plan."""

    name: str = _checked(_NAME)
    pattern: str = _checked(_regex, default=r"^(\d{11})$")  # the cmdlet's documented defaults [S17]
    translation: str = "+$1"
    description: str | None = _checked(_at_most(512), default=None)
    is_internal_extension: bool = False
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class DialPlan(_SelfChecking):
    """`New-CsTenantDialPlan` [S15] [S16]: normalization rules, first match wins."""

    name: str = _checked(_NAME)
    # At most 50 normalization rules per dial plan [S16].
    normalization_rules: tuple[NormalizationRule, ...] = _checked(
        _rule("at most 50 rules", lambda rules: len(rules) <= 50), default=())
    description: str | None = None
    simple_name: str | None = None
    optimize_device_dialing: bool = False
    external_access_prefix: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class NetworkRegion(_SelfChecking):
    name: str = _checked(_NAME)
    description: str | None = None
    central_site: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class NetworkSite(_SelfChecking):
    name: str = _checked(_NAME)
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
class NetworkSubnet(_SelfChecking):
    subnet_id: str = _checked(_NAME)
    mask_bits: int = _checked(_between(0, 128))
    network_site_id: str | None = None
    description: str | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.subnet_id


@dataclass(frozen=True)
class SurvivableBranchAppliance(_SelfChecking):
    """`New-CsTeamsSurvivableBranchAppliance` [S26]."""

    fqdn: str = _checked(_NAME, _at_most(63))
    site: str | None = None
    description: str | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.fqdn


@dataclass(frozen=True)
class SbaPolicy(_SelfChecking):
    """`New-CsTeamsSurvivableBranchAppliancePolicy` [S26]."""

    name: str = _checked(_NAME)
    branch_appliance_fqdns: tuple[str, ...] = ()
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class EmergencyNumber(_SelfChecking):
    """`New-CsTeamsEmergencyNumber` [S24]."""

    dial_string: str = _checked(_matching(re.compile(r"\d+"), "digits only"))
    dial_mask: str | None = _checked(_matching(re.compile(r"\d{1,10}(;\d{1,10})*"),
                                               "a ';' list of 1-10 digit strings"), default=None)
    online_pstn_usage: str | None = None
    description: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class EmergencyCallRoutingPolicy(_SelfChecking):
    """`New-CsTeamsEmergencyCallRoutingPolicy` [S24]."""

    name: str = _checked(_NAME)
    emergency_numbers: tuple[EmergencyNumber, ...] = ()
    allow_enhanced_emergency_services: bool = False
    description: str | None = _checked(_at_most(512), default=None)
    position: SourcePosition | None = _pos()


# A number as Set-CsPhoneNumberAssignment takes it: E.164 (the '+' optional), maybe ;ext=.
PHONE_NUMBER = re.compile(r"^\+?\d{3,15}(;ext=\d{1,10})?$")
PHONE_NUMBER_TYPES = ("DirectRouting", "CallingPlan", "OperatorConnect", "OCMobile", "TeamsPhoneMobile")

# The policy kinds a user can be granted; absent means the tenant's Global instance.
POLICY_KINDS = ("voice_routing_policy", "dial_plan", "sba_policy", "emergency_call_routing_policy")


@dataclass(frozen=True)
class User(_SelfChecking):
    """A Teams user: number (Set-CsPhoneNumberAssignment [S20]), site and granted policies."""

    upn: str = _checked(_NAME)
    phone_number: str | None = _checked(
        _matching(PHONE_NUMBER, "an E.164 number like +14255550100 (optionally ;ext=123)"), default=None)
    phone_number_type: str | None = _checked(_one_of(*PHONE_NUMBER_TYPES), default=None)
    enterprise_voice_enabled: bool = False
    network_site: str | None = None
    location_id: str | None = None
    voice_routing_policy: str | None = None
    dial_plan: str | None = None
    sba_policy: str | None = None
    emergency_call_routing_policy: str | None = None
    # Set-CsUserCallingSettings (single targets only: what an SBA serves offline [S26]): a number
    # or a UPN; the unanswered delay in seconds (None: the Teams default, a role setting).
    forwarding_target: str | None = None
    unanswered_target: str | None = None
    unanswered_delay_seconds: int | None = _checked(_between(1, 600), default=None)
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


# Objects that are not made by a New-/Set- pair of their own: the parameters that set their fields.
OBJECT_PS_PARAMETERS: dict[type, dict[str, str]] = {
    NormalizationRule: {"Name": "name", "Pattern": "pattern", "Translation": "translation",
                        "Description": "description", "IsInternalExtension": "is_internal_extension"},
    EmergencyNumber: {"EmergencyDialString": "dial_string", "EmergencyDialMask": "dial_mask",
                      "OnlinePSTNUsage": "online_pstn_usage", "Description": "description"},
    User: {"PhoneNumber": "phone_number", "PhoneNumberType": "phone_number_type",
           "UnansweredDelay": "unanswered_delay_seconds"},
}


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
        # Every tenant has the Global instances [S12] [S15] [S26].
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
        """Reverse number lookup [S14] [S20]: exact string match, including any ;ext=."""
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
