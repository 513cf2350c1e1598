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

import ipaddress
import re
import uuid
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
# Caller ID, calling and emergency policy enumerations (the cmdlets' documented values).
CALLING_ID_SUBSTITUTES = ("LineUri", "Service", "Anonymous", "Resource")
VOICEMAIL_AVAILABILITY = ("AlwaysEnabled", "AlwaysDisabled", "UserOverride")
BUSY_ON_BUSY_TYPES = ("Enabled", "Disabled", "Unanswered", "UserOverride")
CALL_REDIRECT_TYPES = ("Enabled", "Disabled", "UserOverride")
INBOUND_CALL_TREATMENTS = ("RegularIncoming", "Unanswered", "Voicemail", "UserOverride")
ENABLED_DISABLED = ("Enabled", "Disabled")
MUSIC_ON_HOLD_TYPES = ("Enabled", "Disabled", "UserOverride")
NOTIFICATION_MODES = ("NotificationOnly", "ConferenceMuted", "ConferenceUnMuted")
UNASSIGNED_TARGET_TYPES = ("User", "ResourceAccount", "Announcement")
CALL_ANSWER_RULES = ("DeclineCall", "PromptOnly", "PromptOnlyWithTransfer", "RegularVoicemail",
                     "VoicemailWithTransferOption")
FORWARDING_TYPES = ("Immediate", "Simultaneous")
FORWARDING_TARGET_TYPES = ("SingleTarget", "Voicemail", "MyDelegates", "Group")
CALL_GROUP_ORDERS = ("InOrder", "Simultaneous")


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


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_IP_ADDRESS: Rule = _rule("an IPv4 or IPv6 address", lambda v: isinstance(v, str) and _is_ip(v))


def generated_id(kind: str, serial: int) -> str:
    """The id Teams would generate for a new object (a GUID), made deterministic: a runbook
    loads to the same tenant every time."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"drlab:{kind}:{serial}"))


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


@dataclass(frozen=True)
class EmergencyCallingPolicy(_SelfChecking):
    """`New-CsTeamsEmergencyCallingPolicy` [S22]: who is notified of an emergency call, and how."""

    name: str = _checked(_NAME)
    description: str | None = None
    notification_group: str | None = None  # a ";" list of UPNs and groups
    notification_dial_out_number: str | None = None
    notification_mode: str | None = _checked(_one_of(*NOTIFICATION_MODES), default=None)
    external_location_lookup_mode: str = _checked(_one_of(*ENABLED_DISABLED), default="Disabled")
    enhanced_emergency_service_disclaimer: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class TrustedIpAddress(_SelfChecking):
    """`New-CsTenantTrustedIPAddress` [S21] [S22]: an external address of the enterprise network;
    network site and LIS subnet lookups apply only to clients behind one."""

    ip_address: str = _checked(_IP_ADDRESS)
    mask_bits: int | None = _checked(_between(0, 128), default=None)  # None: the whole address
    description: str | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.ip_address


@dataclass(frozen=True)
class LisCivicAddress(_SelfChecking):
    """`New-CsOnlineLisCivicAddress` [S22]: an emergency address; Teams generates its id and a
    default location with it."""

    civic_address_id: str = _checked(_NAME)
    company_name: str = _checked(_NAME)
    country_or_region: str = _checked(_matching(re.compile(r"[A-Za-z]{2}"), "a two-letter country code"))
    default_location_id: str | None = None
    house_number: str | None = None
    house_number_suffix: str | None = None
    pre_directional: str | None = None
    street_name: str | None = None
    street_suffix: str | None = None
    post_directional: str | None = None
    city: str | None = None
    city_alias: str | None = None
    postal_code: str | None = None
    state_or_province: str | None = None
    description: str | None = None
    company_tax_id: str | None = None
    elin: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    confidence: str | None = None
    is_azure_map_validation_required: str | None = None
    validation_status: str | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.civic_address_id


@dataclass(frozen=True)
class LisLocation(_SelfChecking):
    """`New-CsOnlineLisLocation` [S22]: a place (a floor, a building) at a civic address."""

    location_id: str = _checked(_NAME)
    civic_address_id: str = _checked(_NAME)
    location: str = _checked(_NAME)
    elin: str | None = None
    city_alias: str | None = None
    company_name: str | None = None
    company_tax_id: str | None = None
    confidence: str | None = None
    latitude: str | None = None
    longitude: str | None = None
    description: str | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.location_id


@dataclass(frozen=True)
class LisSubnet(_SelfChecking):
    """`Set-CsOnlineLisSubnet` [S25]: a client in this subnet is at this emergency location."""

    subnet: str = _checked(_IP_ADDRESS)
    location_id: str = _checked(_NAME)
    description: str | None = None
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.subnet


# A number as Set-CsPhoneNumberAssignment takes it: E.164 (the '+' optional), maybe ;ext=.
PHONE_NUMBER = re.compile(r"^\+?\d{3,15}(;ext=\d{1,10})?$")
PHONE_NUMBER_TYPES = ("DirectRouting", "CallingPlan", "OperatorConnect", "OCMobile", "TeamsPhoneMobile")

# The policy kinds a user can be granted; absent means the tenant's Global instance.
POLICY_KINDS = ("voice_routing_policy", "dial_plan", "sba_policy", "emergency_call_routing_policy")
# ...and the caller ID, calling and emergency calling policies (granted the same way).
CALLING_POLICY_KINDS = ("calling_line_identity", "teams_calling_policy", "emergency_calling_policy")
GRANTABLE_KINDS = POLICY_KINDS + CALLING_POLICY_KINDS


@dataclass(frozen=True)
class ResourceAccount(_SelfChecking):
    """`New-CsOnlineApplicationInstance`: the account an auto attendant or call queue answers as;
    caller ID policies and unassigned number treatments name it by its ObjectId."""

    upn: str = _checked(_NAME)
    application_id: str | None = None  # the auto attendant or call queue application's GUID
    display_name: str | None = None
    object_id: str | None = None  # generated by Teams; a YAML tenant may give it
    # Set-CsPhoneNumberAssignment -Identity <its UPN>: the number a Resource caller ID presents.
    phone_number: str | None = _checked(
        _matching(PHONE_NUMBER, "an E.164 number like +14255550100 (optionally ;ext=123)"), default=None)
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.upn


@dataclass(frozen=True)
class CallingLineIdentity(_SelfChecking):
    """`New-CsCallingLineIdentity`: the caller ID a user's outbound PSTN calls present."""

    name: str = _checked(_NAME)
    description: str | None = None
    calling_id_substitute: str = _checked(_one_of(*CALLING_ID_SUBSTITUTES), default="LineUri")
    service_number: str | None = _checked(
        _matching(re.compile(r"\+?\d{3,15}"), "a phone number (digits, an optional leading +)"), default=None)
    resource_account: str | None = None  # the ObjectId (or UPN) of a resource account
    enable_user_override: bool = False
    block_incoming_pstn_caller_id: bool = False
    company_name: str | None = None
    position: SourcePosition | None = _pos()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.calling_id_substitute == "Service" and self.service_number is None:
            raise InvalidValue("calling_id_substitute", "calling_id_substitute Service needs a service_number "
                                                        "(-ServiceNumber)")
        if self.calling_id_substitute == "Resource" and self.resource_account is None:
            raise InvalidValue("calling_id_substitute", "calling_id_substitute Resource needs a resource_account "
                                                        "(-ResourceAccount)")


@dataclass(frozen=True)
class TeamsCallingPolicy(_SelfChecking):
    """`New-CsTeamsCallingPolicy`: the fields that change how calls are placed, forwarded and
    answered (the policy's other settings, such as recording and captions, are not modelled)."""

    name: str = _checked(_NAME)
    description: str | None = None
    allow_private_calling: bool = True
    allow_web_pstn_calling: bool = True
    allow_sip_devices_calling: bool = False
    allow_voicemail: str = _checked(_one_of(*VOICEMAIL_AVAILABILITY), default="UserOverride")
    allow_call_groups: bool = True
    allow_delegation: bool = True
    allow_call_forwarding_to_user: bool = True
    allow_call_forwarding_to_phone: bool = True
    prevent_toll_bypass: bool = False  # Location-Based Routing for the user [S21]
    busy_on_busy_enabled_type: str = _checked(_one_of(*BUSY_ON_BUSY_TYPES), default="Disabled")
    allow_call_redirect: str = _checked(_one_of(*CALL_REDIRECT_TYPES), default="Enabled")
    inbound_pstn_call_routing_treatment: str = _checked(_one_of(*INBOUND_CALL_TREATMENTS),
                                                        default="RegularIncoming")
    inbound_federated_call_routing_treatment: str = _checked(_one_of(*INBOUND_CALL_TREATMENTS),
                                                             default="RegularIncoming")
    music_on_hold_enabled_type: str = _checked(_one_of(*MUSIC_ON_HOLD_TYPES), default="Enabled")
    spam_filtering_enabled_type: str = _checked(_one_of(*ENABLED_DISABLED), default="Enabled")
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class UnassignedNumberTreatment(_SelfChecking):
    """`New-CsTeamsUnassignedNumberTreatment`: where a call to a number nobody has goes."""

    name: str = _checked(_NAME)
    pattern: str = _checked(_regex)
    target: str = _checked(_NAME)
    target_type: str = _checked(_one_of(*UNASSIGNED_TARGET_TYPES))
    treatment_priority: int = _checked(_between(1, INT32_MAX))
    description: str | None = None
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class VoicemailSettings(_SelfChecking):
    """`Set-CsOnlineVoicemailUserSettings`: one user's voicemail (what an unanswered call meets)."""

    upn: str = _checked(_NAME)
    voicemail_enabled: bool = True
    call_answer_rules: str = _checked(_one_of(*CALL_ANSWER_RULES), default="RegularVoicemail")
    transfer_target: str | None = None
    default_greeting_prompt_overwrite: str | None = None
    default_oof_greeting_prompt_overwrite: str | None = None
    oof_greeting_enabled: bool = False
    oof_greeting_follow_automatic_replies_enabled: bool = False
    oof_greeting_follow_calendar_enabled: bool = False
    prompt_language: str | None = None
    share_data: bool = False
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return self.upn


@dataclass(frozen=True)
class Group(_SelfChecking):
    """An Entra group's members, as the user lists them (Entra is not there offline)."""

    name: str = _checked(_NAME)
    members: tuple[str, ...] = ()  # UPNs
    position: SourcePosition | None = _pos()


@dataclass(frozen=True)
class GroupPolicyAssignment(_SelfChecking):
    """`Grant-Cs... -Group G -PolicyName P -Rank N`: the members of G get P unless granted one
    directly; among groups, the lowest rank wins."""

    group: str = _checked(_NAME)
    policy_type: str = _checked(_one_of(*GRANTABLE_KINDS))
    policy_name: str = _checked(_NAME)
    rank: int = _checked(_between(1, INT32_MAX))
    position: SourcePosition | None = _pos()

    @property
    def name(self) -> str:
        return f"{self.policy_type}/{self.group}"


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
    calling_line_identity: str | None = None
    teams_calling_policy: str | None = None
    emergency_calling_policy: str | None = None
    # The rest of Set-CsUserCallingSettings: `forwarding_target` above is immediate forwarding to
    # a single target; the other modes are kept here as Teams holds them.
    forwarding_type: str | None = _checked(_one_of(*FORWARDING_TYPES), default=None)
    forwarding_target_type: str | None = _checked(_one_of(*FORWARDING_TARGET_TYPES), default=None)
    simultaneous_ring_target: str | None = None  # ForwardingType Simultaneous, SingleTarget
    unanswered_target_type: str | None = _checked(_one_of(*FORWARDING_TARGET_TYPES), default=None)
    call_group_order: str | None = _checked(_one_of(*CALL_GROUP_ORDERS), default=None)
    call_group_targets: tuple[str, ...] = ()
    # Set-CsPhoneNumberAssignment -ReverseNumberLookup SkipInternalVoip: calls to the number go to
    # the PSTN instead of to this user [S20].
    reverse_number_lookup: str | None = _checked(_one_of("SkipInternalVoip"), default=None)
    # The user's own "hide my phone number" choice in Teams' settings (no admin cmdlet sets it):
    # honoured when the caller ID policy has EnableUserOverride.
    caller_id_hidden: bool = False
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
    "emergency_calling_policy": EmergencyCallingPolicy, "trusted_ip": TrustedIpAddress,
    "civic_address": LisCivicAddress, "lis_location": LisLocation, "lis_subnet": LisSubnet,
    "resource_account": ResourceAccount, "calling_line_identity": CallingLineIdentity,
    "teams_calling_policy": TeamsCallingPolicy, "unassigned_number_treatment": UnassignedNumberTreatment,
    "voicemail_settings": VoicemailSettings, "group": Group, "group_policy_assignment": GroupPolicyAssignment,
}
IDENTITY_FIELD = {"gateway": "fqdn", "subnet": "subnet_id", "sba": "fqdn", "trusted_ip": "ip_address",
                  "civic_address": "civic_address_id", "lis_location": "location_id", "lis_subnet": "subnet",
                  "resource_account": "upn", "voicemail_settings": "upn"}
_PS_EXCEPTIONS = {"IPAddressVersion": "ip_address_version", "NetworkRegionID": "network_region_id",
                  "NetworkSiteID": "network_site_id", "GatewaySiteId": "gateway_site_id",
                  "ForwardPai": "forward_pai", "PidfLoSupported": "pidf_lo_supported",
                  "CallingIDSubstitute": "calling_id_substitute",
                  "BlockIncomingPstnCallerID": "block_incoming_pstn_caller_id",
                  "AllowSIPDevicesCalling": "allow_sip_devices_calling",
                  "AllowWebPSTNCalling": "allow_web_pstn_calling", "IPAddress": "ip_address",
                  "CallAnswerRule": "call_answer_rules"}
# Fields Teams fills in itself: shown as members, never set by a parameter.
GENERATED_FIELDS = ("object_id", "default_location_id")
# Fields another cmdlet sets (a resource account's number: Set-CsPhoneNumberAssignment).
ASSIGNED_FIELDS = ("phone_number",)


def _ps_table(cls: type, identity_field: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for f in fields(cls):
        if f.name in ("position", "name", identity_field, *GENERATED_FIELDS, *ASSIGNED_FIELDS):
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


# ---------------------------------------------------------------- registered domains and pairing

_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?")


def domain_problem(name: str) -> str | None:
    """Why `name` cannot be a registered domain (None when it can): a DNS name of two labels or more."""
    if _is_ip(name.strip("[]")):
        return f"a registered domain is a DNS name, not the IP address {name!r}"
    if not _DOMAIN.fullmatch(name.lower()):
        return f"a registered domain is a DNS name like contoso.com, not {name!r}"
    return None


def pairing_refusal(fqdn: str, domains: tuple[str, ...]) -> str | None:
    """Why Teams refuses to pair a gateway with this FQDN [S1] [S3], or None. The FQDN's domain
    part (all but its first label) must be a domain the tenant registered; a subdomain needs its
    own registration; `*.onmicrosoft.com` and IP addresses are never accepted."""
    host = fqdn.lower().rstrip(".")
    if _is_ip(host.strip("[]")):
        return f"PSTN gateway {fqdn!r}: an SBC is paired by its FQDN, never an IP address [S1]"
    parent = host.partition(".")[2]
    if parent == "onmicrosoft.com" or parent.endswith(".onmicrosoft.com"):
        return (f"PSTN gateway {fqdn!r}: an SBC FQDN cannot be in a *.onmicrosoft.com domain; use a domain "
                "the tenant registered [S1]")
    if parent not in domains:
        return (f"PSTN gateway {fqdn!r}: Can't use the \"{fqdn}\" domain as it wasn't configured for this tenant: "
                f"{parent or host!r} is not one of its registered domains ({', '.join(domains) or 'none'}) [S1] [S3]")
    return None


# ---------------------------------------------------------------- the aggregate

_COLLECTIONS = {
    "gateway": "gateways", "voice_route": "voice_routes", "voice_routing_policy": "voice_routing_policies",
    "dial_plan": "dial_plans", "translation_rule": "translation_rules", "region": "regions",
    "site": "sites", "subnet": "subnets", "sba": "sbas", "sba_policy": "sba_policies",
    "emergency_call_routing_policy": "emergency_call_routing_policies",
    "emergency_calling_policy": "emergency_calling_policies", "trusted_ip": "trusted_ips",
    "civic_address": "civic_addresses", "lis_location": "lis_locations", "lis_subnet": "lis_subnets",
    "resource_account": "resource_accounts", "calling_line_identity": "calling_line_identities",
    "teams_calling_policy": "teams_calling_policies",
    "unassigned_number_treatment": "unassigned_number_treatments", "voicemail_settings": "voicemail_settings",
    "group": "groups", "group_policy_assignment": "group_policy_assignments",
}
_WHAT = {"gateway": "PSTN gateway", "voice_route": "voice route", "voice_routing_policy": "online voice routing policy",
         "dial_plan": "tenant dial plan", "translation_rule": "translation rule", "region": "network region",
         "site": "network site", "subnet": "network subnet", "sba": "survivable branch appliance",
         "sba_policy": "SBA policy", "emergency_call_routing_policy": "emergency call routing policy",
         "usage": "PSTN usage", "user": "user", "emergency_calling_policy": "emergency calling policy",
         "trusted_ip": "trusted IP address", "civic_address": "civic address", "lis_location": "LIS location",
         "lis_subnet": "LIS subnet", "resource_account": "resource account",
         "calling_line_identity": "caller ID policy", "teams_calling_policy": "Teams calling policy",
         "unassigned_number_treatment": "unassigned number treatment",
         "voicemail_settings": "voicemail settings", "group": "group",
         "group_policy_assignment": "group policy assignment"}
GLOBAL_KINDS = ("voice_routing_policy", "dial_plan", "sba_policy", "emergency_call_routing_policy",
                *CALLING_POLICY_KINDS)


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
    emergency_calling_policies: dict[str, EmergencyCallingPolicy] = field(default_factory=dict)
    trusted_ips: dict[str, TrustedIpAddress] = field(default_factory=dict)
    civic_addresses: dict[str, LisCivicAddress] = field(default_factory=dict)
    lis_locations: dict[str, LisLocation] = field(default_factory=dict)
    lis_subnets: dict[str, LisSubnet] = field(default_factory=dict)
    resource_accounts: dict[str, ResourceAccount] = field(default_factory=dict)
    calling_line_identities: dict[str, CallingLineIdentity] = field(default_factory=dict)
    teams_calling_policies: dict[str, TeamsCallingPolicy] = field(default_factory=dict)
    unassigned_number_treatments: dict[str, UnassignedNumberTreatment] = field(default_factory=dict)
    voicemail_settings: dict[str, VoicemailSettings] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    group_policy_assignments: dict[str, GroupPolicyAssignment] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    # Grant-* -Global: kind -> policy name that replaces the Global instance for everyone.
    global_grants: dict[str, str] = field(default_factory=dict)
    # The domains registered (and verified) in the tenant, lowercased; () when the tenant file lists
    # none (`registered_domains` then falls back to the users' UPN domains).
    domains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Every tenant has the Global instances [S12] [S15] [S26].
        defaults = {"voice_routing_policy": VoiceRoutingPolicy(GLOBAL), "dial_plan": DialPlan(GLOBAL),
                    "sba_policy": SbaPolicy(GLOBAL), "emergency_call_routing_policy": EmergencyCallRoutingPolicy(GLOBAL),
                    "calling_line_identity": CallingLineIdentity(GLOBAL),
                    "teams_calling_policy": TeamsCallingPolicy(GLOBAL),
                    "emergency_calling_policy": EmergencyCallingPolicy(GLOBAL)}
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
        """The user's granted policy, else the lowest-ranked one granted to a group the user is in,
        else the one granted with -Global, else the Global instance."""
        name = getattr(user, kind) or self.group_policy(user, kind) or self.global_grants.get(kind) or GLOBAL
        return getattr(self, _COLLECTIONS[kind]).get(name.lower())

    def group_policy(self, user: User, kind: str) -> str | None:
        """The policy of `kind` the user gets through a group (lowest rank first), if any."""
        mine = [a for a in self.group_policy_assignments.values() if a.policy_type == kind
                and a.group.lower() in self.groups
                and any(m.lower() == user.upn.lower() for m in self.groups[a.group.lower()].members)]
        return min(mine, key=lambda a: a.rank).policy_name if mine else None

    def resource_account(self, reference: str) -> ResourceAccount | None:
        """The resource account named by its ObjectId or its UPN."""
        return next((r for r in self.resource_accounts.values()
                     if reference.lower() in (r.upn.lower(), (r.object_id or "").lower())), None)

    def has_location(self, location_id: str) -> bool:
        """A LIS location, or the default location of a civic address."""
        return self.find("lis_location", location_id) is not None or any(
            (a.default_location_id or "").lower() == location_id.lower() for a in self.civic_addresses.values())

    def registered_domains(self) -> tuple[str, ...]:
        """The tenant's registered domains; a tenant file that lists none gets its users' and
        resource accounts' UPN domains (Entra ID takes a UPN only in a verified domain)."""
        if self.domains:
            return self.domains
        upns = [u.upn for u in self.users.values()] + [r.upn for r in self.resource_accounts.values()]
        return tuple(sorted({upn.lower().rpartition("@")[2] for upn in upns if "@" in upn}))

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

        domains = self.registered_domains()
        for g in self.gateways.values():
            refusal = pairing_refusal(g.fqdn, domains)
            if refusal is not None:
                raise TenantError(refusal, g.position)
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
            for kind in GRANTABLE_KINDS:
                need(kind, getattr(u, kind), u, f"user {u.upn!r} {kind.replace('_', ' ')}")
            if u.location_id is not None and not self.has_location(u.location_id):
                raise TenantError(f"user {u.upn!r} location_id names unknown LIS location {u.location_id!r}",
                                  u.position)
        for kind, name in self.global_grants.items():
            need(kind, name, self, f"the -Global grant of {kind.replace('_', ' ')}")
        for ga in self.group_policy_assignments.values():
            need("group", ga.group, ga, f"group policy assignment {ga.name!r}")
            need(ga.policy_type, ga.policy_name, ga, f"group policy assignment {ga.name!r}")
        for loc in self.lis_locations.values():
            need("civic_address", loc.civic_address_id, loc, f"LIS location {loc.location_id!r}")
        for ls in self.lis_subnets.values():
            if not self.has_location(ls.location_id):
                raise TenantError(f"LIS subnet {ls.subnet!r} names unknown LIS location {ls.location_id!r}",
                                  ls.position)
        for c in self.calling_line_identities.values():
            if c.resource_account is not None and self.resource_account(c.resource_account) is None:
                raise TenantError(f"caller ID policy {c.name!r} names unknown resource account "
                                  f"{c.resource_account!r}", c.position)
        priorities: dict[int, str] = {}
        for t in self.unassigned_number_treatments.values():
            if t.target_type == "ResourceAccount" and self.resource_account(t.target) is None:
                raise TenantError(f"unassigned number treatment {t.name!r} names unknown resource account "
                                  f"{t.target!r}", t.position)
            if t.treatment_priority in priorities:
                raise TenantError(f"unassigned number treatments {priorities[t.treatment_priority]!r} and "
                                  f"{t.name!r} have the same treatment_priority {t.treatment_priority}",
                                  t.position)
            priorities[t.treatment_priority] = t.name

    position = None  # for validate()'s messages about the tenant itself
