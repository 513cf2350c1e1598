"""Load a Teams tenant from a PowerShell runbook (`New-`/`Set-`/`Grant-`/`Remove-Cs*`).

`ps_parser` reads the text into a syntax tree and `ps_evaluator` runs it; this module is what
each cmdlet does to the tenant. The script runs top to bottom as the Teams PowerShell module
would run it against an empty tenant, and the result is the same `Tenant` the YAML loader
builds. Each cmdlet checks what Teams checks at that moment, so an error points at the line
that is wrong, not at the end: a route naming a PSTN usage that is not in the global list, a
gateway that does not exist, a normalization rule variable never assigned, a parameter the
cmdlet does not have, a value of the wrong type. What a value must be (a port from 1 to 65535,
a regular expression that compiles) is the model's rule, reported at the parameter's value
(`checked`). Errors are `TenantError` (`FILE:LINE:COL: message`; the CLI exits 2). A cmdlet that
changes nothing drlab simulates (meeting and messaging policies, Connect-MicrosoftTeams,
Write-Host, ...: `IGNORED_CMDLETS`, listed in docs/tenant-powershell.md) is ignored on purpose, and
a cmdlet drlab does not know is skipped; each gets one `TenantWarning` per cmdlet name, at its
first use.

`Get-Cs*` returns the objects the script made so far, for pipelines such as
`Get-CsOnlineVoiceRoute | Set-CsOnlineVoiceRoute ...`: a `Set-`, `Remove-` or `Grant-` cmdlet
after a pipe takes its -Identity from each piped object (an object's identity, a UPN, or a CSV
row's Identity column). Objects Teams gives an id (civic addresses, LIS locations, resource
accounts' ObjectId) get a deterministic one, so `$addr.CivicAddressId` works.

Group policy assignment (`Grant-... -Group G -PolicyName P -Rank N`) needs the group's members,
which live in Entra ID: the caller gives them (`load_groups`, `drlab route --groups FILE`); without
one, a `groups.csv` next to the runbook is read, at the first -Group.

Objects that exist in every tenant exist here from the start: the Global online voice routing
policy, the Global tenant dial plan and the Global SBA policy (`Set-... -Identity Global` edits
them; `New-... -Identity Global` is an error, as in Teams).

Users. In Teams users come from Entra ID and a runbook never creates them, so the loader does
the least surprising thing: the first cmdlet that names a UPN as `-Identity` of
`Set-CsPhoneNumberAssignment` or a `Grant-*` cmdlet brings that user into the model (with no
number, no policies, enterprise voice off). A new UPN a typo away from a user the runbook
already has (`crol@contoso.com` after `carol@contoso.com`) gets a warning with the likely name.
A user's network site comes from `Set-CsPhoneNumberAssignment -NetworkSiteId <site>`, a real
parameter of that cmdlet.
`Set-CsPhoneNumberAssignment -PhoneNumberType DirectRouting` turns enterprise voice on, as
Teams does [S20].
`Set-CsUserCallingSettings` sets single-target immediate and unanswered forwarding, the
forwarding an SBA serves offline [S26]; other forwarding modes are errors.

Values follow PowerShell's binder with one deliberate difference: an unquoted number keeps
its spelling when a text parameter takes it, so `-PhoneNumber +14255550100` stays
"+14255550100" instead of losing its plus sign.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import read_source
from simulator.tenant import model
from simulator.tenant.errors import SourcePosition, TenantError, TenantWarning
from simulator.tenant.ps_evaluator import (
    BoundArgument,
    CsvRow,
    Hashtable,
    HashtableItem,
    Invocation,
    Unmodelled,
    Value,
    bind_arguments,
    read_csv,
    run_script,
    to_text,
    wildcard_match,
)
from simulator.tenant.ps_parser import parse, parse_integer

# ---------------------------------------------------------------- argument access

# Every cmdlet takes PowerShell's common parameters (about_CommonParameters); they change
# nothing in the tenant except -WhatIf, which makes the call a no-op.
_COMMON_PARAMETERS = ("Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction",
                      "ErrorVariable", "WarningVariable", "InformationVariable", "OutVariable",
                      "OutBuffer", "PipelineVariable", "WhatIf", "Confirm", "Force")
_COMMON_SWITCHES = ("Verbose", "Debug", "WhatIf", "Confirm", "Force")


@dataclass(frozen=True)
class ListEdit:
    """A PSListModifier: a plain list replaces; @{Add=..; Remove=..; Replace=..} edits."""

    replace: tuple[Value, ...] = ()
    add: tuple[Value, ...] = ()
    remove: tuple[Value, ...] = ()

    def apply(self, current: list[Any], same: Callable[[Any, Value], bool]) -> list[Any]:
        # PSListModifier.ApplyTo: a non-empty Replace wins and Add/Remove are ignored;
        # otherwise Remove (first occurrence only) then Add (append).
        if self.replace:
            return [v for v in self.replace]
        result = list(current)
        for value in self.remove:
            for k, item in enumerate(result):
                if same(item, value):
                    del result[k]
                    break
        result.extend(self.add)
        return result

    def values(self) -> tuple[Value, ...]:
        return self.replace + self.add


class CmdletCall:
    """The bound arguments of one cmdlet call, with typed, position-aware accessors."""

    def __init__(self, invocation: Invocation, bound: dict[str, BoundArgument]) -> None:
        self.invocation = invocation
        self.name = invocation.name
        self.position = invocation.position
        self.bound = bound

    def has(self, name: str) -> bool:
        return name in self.bound

    def value(self, name: str) -> Value:
        return self.bound[name].value

    def where(self, name: str) -> SourcePosition:
        return self.bound[name].value.position if name in self.bound else self.position

    def scalar(self, name: str, value: Value, what: str) -> Value:
        data = value.data
        if isinstance(data, Unmodelled):
            raise TenantError(f"-{name} of {self.name} gets {data}, which drlab does not model "
                              "(quote it if it is meant as text)", value.position)
        if isinstance(data, tuple):
            if len(data) == 1:
                return self.scalar(name, data[0], what)
            raise TenantError(f"-{name} of {self.name} takes one {what}, not a list of {len(data)}",
                              value.position)
        return value

    def text(self, name: str, *, required: bool = False) -> str | None:
        if name not in self.bound:
            if required:
                raise TenantError(f"{self.name} needs -{name}", self.position)
            return None
        value = self.scalar(name, self.bound[name].value, "text value")
        if value.data is None:
            if required:
                raise TenantError(f"-{name} of {self.name} cannot be $null", value.position)
            return None
        if not isinstance(value.data, str | int | bool):
            raise TenantError(f"-{name} of {self.name} takes text, not {describe(value)}", value.position)
        return to_text(value)

    def boolean(self, name: str) -> bool:
        value = self.scalar(name, self.bound[name].value, "boolean")
        data = value.data
        # PowerShell binds [bool] parameters only from booleans and numbers; "true" is an error.
        if isinstance(data, bool):
            return data
        if isinstance(data, int):
            return data != 0
        raise TenantError(f"-{name} of {self.name} takes $true or $false, not {describe(value)}",
                          value.position)

    def integer(self, name: str, *, nullable: bool = False) -> int | None:
        """A whole number; its range is the model field's rule."""
        value = self.scalar(name, self.bound[name].value, "number")
        data = value.data
        if data is None and nullable:
            return None
        if isinstance(data, str) and parse_integer(data.strip()) is not None:
            data = parse_integer(data.strip())  # PowerShell converts the text "10" to [int]
        if isinstance(data, bool) or not isinstance(data, int):
            raise TenantError(f"-{name} of {self.name} takes a whole number, not {describe(value)}",
                              value.position)
        return data

    def list_edit(self, name: str) -> ListEdit:
        value = self.bound[name].value
        if isinstance(value.data, Hashtable):
            parts: dict[str, tuple[Value, ...]] = {}
            for item in value.data.items:
                key = item.key.lower()
                if key not in ("add", "remove", "replace"):
                    raise TenantError(f"-{name} of {self.name}: a list change takes the keys Add, Remove "
                                      f"and Replace, not {item.key!r}", item.key_position)
                parts[key] = tuple(self.item(name, v) for v in items_of(item.value))
            return ListEdit(replace=parts.get("replace", ()), add=parts.get("add", ()),
                            remove=parts.get("remove", ()))
        return ListEdit(replace=tuple(self.item(name, v) for v in items_of(value)))

    def item(self, name: str, value: Value) -> Value:
        if isinstance(value.data, Unmodelled):
            self.scalar(name, value, "value")
        return value


def items_of(value: Value) -> list[Value]:
    if value.data is None:
        return []
    if isinstance(value.data, tuple):
        result: list[Value] = []
        for item in value.data:
            result.extend(items_of(item))  # PowerShell flattens nested arrays bound to [string[]]
        return result
    return [value]


def describe(value: Value) -> str:
    data = value.data
    if data is None:
        return "$null"
    if isinstance(data, bool):
        return "$true" if data else "$false"
    if isinstance(data, int):
        return f"the number {to_text(value)}"
    if isinstance(data, str):
        return f"the text {data!r}"
    if isinstance(data, tuple):
        return f"a list of {len(data)} values"
    if isinstance(data, Hashtable):
        return "a hashtable"
    if isinstance(data, CsvRow):
        return f"the CSV row at {data.path}:{data.line}"
    if isinstance(data, NormalizationRuleObject):
        return f"the normalization rule {data.name!r}"
    if isinstance(data, EmergencyNumberObject):
        return f"the emergency number {data.dial_string!r}"
    return type(data).__name__


T = typing.TypeVar("T")


def checked(call: CmdletCall, fields_by_parameter: dict[str, str], make: Callable[[], T]) -> T:
    """Make a model object; a value the model's rules refuse is an error at its parameter."""
    try:
        return make()
    except model.InvalidValue as err:
        given = [p for p, f in fields_by_parameter.items() if f == err.field and call.has(p)]
        raise TenantError(str(err), call.where(given[0]) if given else call.position) from None


# ---------------------------------------------------------------- objects made in memory

@dataclass(frozen=True)
class NormalizationRuleObject:
    """What `New-CsVoiceNormalizationRule ... -InMemory` returns: a rule not yet in a dial plan."""

    name: str
    pattern: str
    translation: str
    description: str | None
    is_internal_extension: bool
    position: SourcePosition  # where it was made

    def __str__(self) -> str:
        return f"Global/{self.name}"


@dataclass(frozen=True)
class EmergencyNumberObject:
    """What `New-CsTeamsEmergencyNumber` returns."""

    dial_string: str
    dial_mask: str | None
    online_pstn_usage: str | None
    description: str | None
    position: SourcePosition

    def __str__(self) -> str:
        return self.dial_string


# ---------------------------------------------------------------- object kinds

@dataclass(frozen=True)
class Param:
    """How one parameter of a New-/Set- cmdlet is read, and the model field it sets."""

    type: str  # text | bool | int | enum | codes | refs | ref | rules | emergency_numbers
    refers_to: str | None = None  # kind named by ref/refs
    choices: tuple[str, ...] = ()  # an enum's values, to bind them ignoring case as PowerShell does
    nullable: bool = False
    field: str = ""  # the model field (filled in from model.PS_PARAMETERS)


@dataclass(frozen=True)
class Kind:
    key: str  # "gateway"
    noun: str  # "CsOnlinePSTNGateway"
    what: str  # "PSTN gateway", for messages
    params: dict[str, Param]  # PowerShell parameter -> how it is read (every model field of the kind)
    identity_aliases: tuple[str, ...] = ()  # e.g. Fqdn, NetworkSiteID: also name the object
    required_on_new: tuple[str, ...] = ()
    global_instance: bool = False  # exists in every tenant as "Global"
    tagged: bool = False  # policies: Identity "Tag:Name"
    aliases: tuple[tuple[str, str], ...] = ()  # (alias, canonical parameter)
    generated_identity: bool = False  # Teams makes the id (a GUID); no -Identity on New-
    upsert: bool = False  # Set- makes the object when it does not exist (Set-CsOnlineLisSubnet)
    verbs: tuple[str, ...] = ("New", "Set", "Remove")
    # Documented parameters that change nothing drlab simulates: accepted, with a warning.
    ignored: tuple[str, ...] = ()

    @property
    def cls(self) -> type:
        return model.KIND_CLASSES[self.key]

    @property
    def identity_field(self) -> str:
        return model.IDENTITY_FIELD.get(self.key, "name")

    @property
    def fields_by_parameter(self) -> dict[str, str]:
        identity = {name: self.identity_field for name in ("Identity", *self.identity_aliases)}
        return identity | {name: param.field for name, param in self.params.items()}


_TEXT = Param("text")
_BOOL = Param("bool")
_OPTIONAL_TEXT = Param("text", nullable=True)


def _refs(kind: str) -> Param:
    return Param("refs", refers_to=kind)


def _ref(kind: str) -> Param:
    return Param("ref", refers_to=kind, nullable=True)


def _by_annotation(annotation: Any) -> Param:
    """The reading of a field whose type says it all (bool, int, text, rule lists)."""
    if annotation is bool:
        return _BOOL
    if annotation is str:
        return _TEXT
    if annotation == str | None:
        return _OPTIONAL_TEXT
    if annotation is int or annotation == int | None:
        return Param("int", nullable=annotation is not int)
    if annotation == tuple[model.NormalizationRule, ...]:
        return Param("rules")
    if annotation == tuple[model.EmergencyNumber, ...]:
        return Param("emergency_numbers")
    if annotation == frozenset[int]:
        return Param("codes")
    raise AssertionError(f"say how to read a field of type {annotation}")


def _kind(key: str, noun: str, what: str, special: dict[str, Param], **options: Any) -> Kind:
    """A kind whose parameters are exactly its model fields (`model.PS_PARAMETERS`, the one table
    of names); `special` (by field name) adds what a field's type cannot say: an enumeration's
    values and which kind a name refers to. What a value must be is the model's rule."""
    aliases = {alias for alias, _ in options.get("aliases", ())}
    hints = typing.get_type_hints(model.KIND_CLASSES[key])
    params = {ps: dataclasses.replace(special.get(name) or _by_annotation(hints[name]), field=name)
              for ps, name in model.PS_PARAMETERS[key].items() if ps not in aliases}
    unknown = set(special) - {p.field for p in params.values()}
    assert not unknown, f"{key}: no model field {unknown}"
    # A field without a default is a parameter New- cannot do without.
    needed = tuple(ps for ps, param in params.items()
                   if model.KIND_CLASSES[key].__dataclass_fields__[param.field].default is dataclasses.MISSING)
    options["required_on_new"] = tuple(dict.fromkeys(options.get("required_on_new", ()) + needed))
    return Kind(key, noun, what, params, **options)


def _enum(choices: tuple[str, ...]) -> Param:
    return Param("enum", choices=choices)


_TRANSLATION_LISTS = ("inbound_teams_number_translation_rules", "inbound_pstn_number_translation_rules",
                      "outbound_teams_number_translation_rules", "outbound_pstn_number_translation_rules")

KINDS: dict[str, Kind] = {k.key: k for k in (
    # [S4]
    _kind("gateway", "CsOnlinePSTNGateway", "PSTN gateway", {
        "bypass_mode": Param("enum", choices=model.BYPASS_MODES),
        "gateway_site_id": _ref("site"),
        "ip_address_version": Param("enum", choices=model.IP_ADDRESS_VERSIONS),
        **{name: _refs("translation_rule") for name in _TRANSLATION_LISTS},
    }, identity_aliases=("Fqdn",), required_on_new=("SipSignalingPort",),
       aliases=(("SipSignallingPort", "SipSignalingPort"),)),  # the older spelling still binds
    # [S12] [S13]
    _kind("voice_route", "CsOnlineVoiceRoute", "voice route", {
        "online_pstn_gateway_list": _refs("gateway"),
        "online_pstn_usages": _refs("usage"),
    }, identity_aliases=("Name",)),
    _kind("voice_routing_policy", "CsOnlineVoiceRoutingPolicy", "online voice routing policy", {
        "online_pstn_usages": _refs("usage"),
        "route_type": Param("enum", choices=model.ROUTE_TYPES),
    }, global_instance=True, tagged=True),
    # [S15] [S17]
    _kind("dial_plan", "CsTenantDialPlan", "tenant dial plan", {"simple_name": _TEXT},
          global_instance=True, tagged=True),
    # [S19]
    _kind("translation_rule", "CsTeamsTranslationRule", "translation rule", {},
          required_on_new=("Pattern", "Translation")),
    # [S21]
    _kind("region", "CsTenantNetworkRegion", "network region", {}, identity_aliases=("NetworkRegionID",)),
    _kind("site", "CsTenantNetworkSite", "network site", {
        "network_region_id": _ref("region"),
        "emergency_call_routing_policy": _ref("emergency_call_routing_policy"),
    }, identity_aliases=("NetworkSiteID",)),
    _kind("subnet", "CsTenantNetworkSubnet", "network subnet", {
        "network_site_id": _ref("site"),
    }, identity_aliases=("SubnetID",), required_on_new=("MaskBits",)),
    # [S26]
    _kind("sba", "CsTeamsSurvivableBranchAppliance", "survivable branch appliance", {"site": _ref("site")},
          identity_aliases=("Fqdn",)),
    _kind("sba_policy", "CsTeamsSurvivableBranchAppliancePolicy", "SBA policy", {
        "branch_appliance_fqdns": _refs("sba"),
    }, global_instance=True, tagged=True),
    # [S23] [S24]
    _kind("emergency_call_routing_policy", "CsTeamsEmergencyCallRoutingPolicy", "emergency call routing policy",
          {}, global_instance=True, tagged=True),
    # [S22]
    _kind("emergency_calling_policy", "CsTeamsEmergencyCallingPolicy", "emergency calling policy", {
        "notification_mode": Param("enum", choices=model.NOTIFICATION_MODES, nullable=True),
        "external_location_lookup_mode": _enum(model.ENABLED_DISABLED),
    }, global_instance=True, tagged=True, ignored=("ExtendedNotifications",)),
    _kind("trusted_ip", "CsTenantTrustedIPAddress", "trusted IP address", {}, identity_aliases=("IPAddress",)),
    _kind("civic_address", "CsOnlineLisCivicAddress", "civic address", {}, identity_aliases=("CivicAddressId",),
          generated_identity=True),
    _kind("lis_location", "CsOnlineLisLocation", "LIS location", {"civic_address_id": _ref("civic_address")},
          identity_aliases=("LocationId",), generated_identity=True),
    # [S25]
    _kind("lis_subnet", "CsOnlineLisSubnet", "LIS subnet", {}, identity_aliases=("Subnet",), upsert=True,
          verbs=("Set", "Remove")),
    _kind("resource_account", "CsOnlineApplicationInstance", "resource account", {},
          identity_aliases=("UserPrincipalName",)),
    _kind("calling_line_identity", "CsCallingLineIdentity", "caller ID policy", {
        "calling_id_substitute": _enum(model.CALLING_ID_SUBSTITUTES),
    }, global_instance=True, tagged=True),
    _kind("teams_calling_policy", "CsTeamsCallingPolicy", "Teams calling policy", {
        "allow_voicemail": _enum(model.VOICEMAIL_AVAILABILITY),
        "busy_on_busy_enabled_type": _enum(model.BUSY_ON_BUSY_TYPES),
        "allow_call_redirect": _enum(model.CALL_REDIRECT_TYPES),
        "inbound_pstn_call_routing_treatment": _enum(model.INBOUND_CALL_TREATMENTS),
        "inbound_federated_call_routing_treatment": _enum(model.INBOUND_CALL_TREATMENTS),
        "music_on_hold_enabled_type": _enum(model.MUSIC_ON_HOLD_TYPES),
        "spam_filtering_enabled_type": _enum(model.ENABLED_DISABLED),
    }, global_instance=True, tagged=True, ignored=(
        "AIInterpreter", "AllowCloudRecordingForCalls", "AllowTranscriptionForCalling", "AutoAnswerEnabledType",
        "CallRecordingExpirationDays", "CallingSpendUserLimit", "Copilot", "EnableSpendLimits",
        "EnableWebPstnMediaBypass", "LiveCaptionsEnabledTypeForCalling", "PopoutAppPathForIncomingPstnCalls",
        "PopoutForIncomingPstnCalls", "RealTimeText", "VoiceSimulationInInterpreter")),
    _kind("unassigned_number_treatment", "CsTeamsUnassignedNumberTreatment", "unassigned number treatment", {
        "target_type": _enum(model.UNASSIGNED_TARGET_TYPES),
    }, identity_aliases=("TreatmentId",)),
    _kind("voicemail_settings", "CsOnlineVoicemailUserSettings", "voicemail settings", {
        "call_answer_rules": _enum(model.CALL_ANSWER_RULES),
    }, upsert=True, verbs=("Set",)),
)}

# What a reference names, for messages and lookups; "usage" is the global PSTN usage list.
_REFERENCE_WHAT = {"usage": "PSTN usage", **{k.key: k.what for k in KINDS.values()}}
_HOW_TO_MAKE = {
    "usage": "Set-CsOnlinePstnUsage -Identity Global -Usage @{{Add={name!r}}}",
    **{k.key: f"New-{k.noun} -Identity {{name!r}}" for k in KINDS.values()},
}
_KIND_OF_CLASS = {k.cls: k for k in KINDS.values()}


# ---------------------------------------------------------------- the loader

def strip_tag(identity: str) -> str:
    """Policies are shown as "Tag:US Only"; both spellings name the same policy."""
    return identity[4:] if identity[:4].lower() == "tag:" else identity


Handler = Callable[["_Loader", CmdletCall], Any]


@dataclass(frozen=True)
class CmdletSpec:
    name: str
    parameters: tuple[str, ...]
    handler: Handler
    switches: tuple[str, ...] = ()
    positional: tuple[str, ...] = ("Identity",)
    ignored: tuple[str, ...] = ()  # documented parameters that change nothing drlab simulates
    takes_piped_identity: bool = True  # a piped object names the object it works on


def replace_position(value: Value, position: SourcePosition) -> Value:
    return dataclasses.replace(value, position=position)


def _model_item(item: Any) -> Any:
    """An object made in memory, as the tenant keeps it once a cmdlet stores it."""
    if isinstance(item, NormalizationRuleObject):
        return model.NormalizationRule(item.name, item.pattern, item.translation, item.description,
                                       item.is_internal_extension, item.position)
    if isinstance(item, EmergencyNumberObject):
        return model.EmergencyNumber(item.dial_string, item.dial_mask, item.online_pstn_usage,
                                     item.description, item.position)
    return item


class _Loader:
    def __init__(self, path: str, groups: dict[str, model.Group] | None = None,
                 groups_file: Path | None = None) -> None:
        self.path = path
        self.tenant = model.Tenant()  # holds the Global instances from the start, as Teams does
        self.groups = groups
        self.groups_file = groups_file  # read at the first -Group when `groups` is None
        self.warnings: list[TenantWarning] = []
        self._unmodelled: dict[str, list[SourcePosition]] = {}
        self._unmodelled_spelling: dict[str, str] = {}
        self._ignored_parameters: set[tuple[str, str]] = set()
        self._serials: dict[str, int] = {}

    def generated_id(self, kind: str) -> str:
        self._serials[kind] = self._serials.get(kind, 0) + 1
        return model.generated_id(kind, self._serials[kind])

    # -- dispatch

    def invoke(self, invocation: Invocation) -> Value | None:
        spec = CMDLETS.get(invocation.name.lower())
        if spec is None:
            key = invocation.name.lower()
            self._unmodelled.setdefault(key, []).append(invocation.position)
            self._unmodelled_spelling.setdefault(key, invocation.name)
            return Value(Unmodelled(invocation.name), invocation.position)
        bound = bind_arguments(invocation, spec.parameters + spec.ignored + _COMMON_PARAMETERS,
                               spec.switches + _COMMON_SWITCHES, spec.positional)
        if invocation.piped is not None:
            self.bind_piped(spec, invocation, bound)
        for name in spec.ignored:
            if name in bound and (spec.name, name) not in self._ignored_parameters:
                self._ignored_parameters.add((spec.name, name))
                self.warnings.append(TenantWarning(f"-{name} of {spec.name} changes nothing drlab simulates; "
                                                   "ignored", bound[name].name_position))
        call = CmdletCall(invocation, bound)
        if call.has("WhatIf") and call.boolean("WhatIf"):
            return None
        result = spec.handler(self, call)
        return None if result is None else Value(result, invocation.position)  # a tuple of Values is a list

    def bind_piped(self, spec: CmdletSpec, invocation: Invocation, bound: dict[str, BoundArgument]) -> None:
        """A piped object names the object the cmdlet works on (-Identity), as Teams' cmdlets
        bind it by value or by property name."""
        piped = invocation.piped
        if not spec.takes_piped_identity:
            raise TenantError(f"{spec.name} takes no pipeline input; give its parameters instead",
                              invocation.position)
        if "Identity" in bound:
            raise TenantError(f"{spec.name} gets both -Identity and a piped object; give one",
                              bound["Identity"].name_position)
        data = piped.data
        if isinstance(data, Unmodelled):
            raise TenantError(f"{spec.name} gets {data} through the pipe, which drlab does not model",
                              invocation.position)
        if isinstance(data, str):
            identity = piped
        elif isinstance(data, Hashtable | CsvRow):  # by property name: its Identity key or column
            item = data.get("Identity")
            text = item.value if isinstance(item, HashtableItem) else item
            if text is None:
                raise TenantError(f"{spec.name} gets {describe(piped)} through the pipe, with no Identity",
                                  invocation.position)
            identity = text if isinstance(text, Value) else Value(text, invocation.position)
        elif type(data) in _KIND_OF_CLASS or isinstance(data, model.User):
            identity = self.member(piped, "Identity", invocation.position)
        else:
            raise TenantError(f"{spec.name} cannot take {describe(piped)} through the pipe", invocation.position)
        bound["Identity"] = BoundArgument("Identity", replace_position(identity, invocation.position),
                                          invocation.position)

    def member(self, target: Value, name: str, position: SourcePosition) -> Value:
        data = target.data
        lowered = name.lower()
        if isinstance(data, model.User):
            return Value(_user_member(data, name), position)
        kind = _KIND_OF_CLASS.get(type(data))
        if kind is not None:
            identity = getattr(data, kind.identity_field)
            if lowered == "identity" or lowered in (a.lower() for a in kind.identity_aliases):
                tagged = kind.tagged and identity != model.GLOBAL
                return Value(("Tag:" + identity) if tagged else identity, position)
            generated = next((f for f in model.GENERATED_FIELDS if f.replace("_", "") == lowered), None)
            if generated is not None and hasattr(data, generated):
                return Value(getattr(data, generated), position)
            field_name = model.field_for(kind.key, name)
            if field_name is None:
                return Value(None, position)
            value = getattr(data, field_name)
            if isinstance(value, tuple):  # a PowerShell array holds values
                value = tuple(Value(v, position) for v in value)
            return Value(value, position)
        if isinstance(data, NormalizationRuleObject | EmergencyNumberObject):
            for ps_name, attr in _OBJECT_PARAMETERS[type(data)].items():
                if ps_name.lower() == lowered:
                    return Value(getattr(data, attr), position)
        raise TenantError(f"{describe(target)} has no member {name!r} that drlab knows", position)

    def finish(self) -> None:
        for key, positions in self._unmodelled.items():
            name = self._unmodelled_spelling[key]
            more = f"; {len(positions) - 1} more call(s) skipped too" if len(positions) > 1 else ""
            if key in _IGNORED:
                self.warnings.append(TenantWarning(f"{name} changes nothing drlab simulates ({_IGNORED[key]}); "
                                                   f"ignored{more}", positions[0]))
                continue
            hint = _did_you_mean(name)
            self.warnings.append(TenantWarning(f"{name} is not modelled by drlab; skipped{more}{hint}",
                                               positions[0]))

    def group(self, call: CmdletCall) -> model.Group:
        """The group -Group names, from the groups the caller gave (Entra is not there offline)."""
        name = call.text("Group", required=True)
        if self.groups is None and self.groups_file is not None:
            self.groups = load_groups(self.groups_file)
        if self.groups is None:
            raise TenantError(f"-Group {name!r}: group members come from a file offline; give one "
                              "(drlab route --groups groups.csv, columns Group,UserPrincipalName; or put "
                              "groups.csv next to the runbook)", call.where("Group"))
        group = self.groups.get(name.lower())
        if group is None:
            raise TenantError(f"-Group: group {name!r} is not in the groups file"
                              f"{_close_name(name, [g.name for g in self.groups.values()])}", call.where("Group"))
        self.tenant.add("group", group)
        return group

    # -- references

    def has(self, kind: str, name: str) -> bool:
        return self.tenant.has_usage(name) if kind == "usage" else self.tenant.find(kind, name) is not None

    def canonical(self, kind: str, name: str) -> str:
        """The spelling the object was created with (Teams names compare case-insensitively)."""
        if kind == "usage":
            return next(u for u in self.tenant.usages if u.lower() == name.lower())
        return self.tenant.find(kind, name).name

    def reference(self, call: CmdletCall, param: str, kind: str, value: Value) -> str:
        name = to_text(value)
        if kind != "usage" and kind in KINDS and KINDS[kind].tagged:
            name = strip_tag(name)
        if not self.has(kind, name):
            how = _HOW_TO_MAKE[kind].format(name=name)
            raise TenantError(f"-{param} of {call.name}: unknown {_REFERENCE_WHAT[kind]} {name!r} "
                              f"(create it first: {how}){_close_name(name, self.names(kind))}", value.position)
        return self.canonical(kind, name)

    def names(self, kind: str) -> list[str]:
        if kind == "usage":
            return list(self.tenant.usages)
        return [obj.name for obj in self.tenant.collection(kind).values()]

    def users_of(self, kind: str, identity: str) -> list[str]:
        """Users granted the policy `identity` of `kind` (only policies are granted to users)."""
        if kind not in model.POLICY_KINDS:
            return []
        return [u.upn for u in self.tenant.users.values() if (getattr(u, kind) or "").lower() == identity.lower()]

    def referrers(self, kind: str, identity: str) -> list[str]:
        """Objects whose parameters name `identity` of `kind` (Teams refuses to remove those)."""
        found = []
        for other in KINDS.values():
            for obj in self.tenant.collection(other.key).values():
                for param_name, param in other.params.items():
                    if param.refers_to != kind:
                        continue
                    value = getattr(obj, param.field)
                    names = value if isinstance(value, tuple) else (value,)
                    if any(isinstance(n, str) and n.lower() == identity.lower() for n in names):
                        found.append(f"{other.what} {obj.name!r} ({param_name})")
                if other.key == "emergency_call_routing_policy" and kind == "usage":
                    for number in obj.emergency_numbers:
                        if (number.online_pstn_usage or "").lower() == identity.lower():
                            found.append(f"emergency number {number.dial_string!r} of {obj.name!r}")
        return found

    # -- generic New-/Set-/Remove-

    def identity_of(self, call: CmdletCall, kind: Kind, *, required: bool = True) -> tuple[str, SourcePosition] | None:
        given = [(n, call.text(n)) for n in _identity_parameters(kind) if call.has(n)]
        if not given:
            if required:
                names = " or ".join(f"-{n}" for n in _identity_parameters(kind))
                raise TenantError(f"{call.name} needs {names}", call.position)
            return None
        name, identity = given[0]
        if identity is None or not identity.strip():
            raise TenantError(f"-{name} of {call.name} cannot be empty", call.where(name))
        for other_name, other in given[1:]:
            if (other or "").lower() != identity.lower():
                raise TenantError(f"-{other_name} {other!r} and -{name} {identity!r} of {call.name} "
                                  "name different objects", call.where(other_name))
        if kind.tagged:
            identity = strip_tag(identity)
        return identity, call.where(name)

    def new_object(self, call: CmdletCall, kind: Kind) -> Any:
        if kind.generated_identity:
            identity, where = self.generated_id(kind.key), call.position
        else:
            identity, where = self.identity_of(call, kind)
        if kind.global_instance and identity.lower() == "global":
            raise TenantError(f"the Global {kind.what} exists in every tenant; change it with "
                              f"Set-{kind.noun} -Identity Global", where)
        existing = self.tenant.find(kind.key, identity)
        if existing is not None:
            made = f" (made at {existing.position})" if existing.position else ""
            raise TenantError(f"{kind.what} {identity!r} already exists{made}; change it with Set-{kind.noun}", where)
        for required in kind.required_on_new:
            if not call.has(required) and not any(c == required and call.has(a) for a, c in kind.aliases):
                raise TenantError(f"{call.name} needs -{required}", call.position)
        values = self.read_fields(call, kind, None, identity)
        if kind.key == "voice_route" and "priority" not in values:
            values["priority"] = self.next_route_priority()
        if kind.key == "civic_address":  # Teams makes a default location with every address
            values["default_location_id"] = self.generated_id("default_location")
        if kind.key == "resource_account":
            values["object_id"] = self.generated_id("resource_account")
        obj = checked(call, kind.fields_by_parameter,
                      lambda: kind.cls(**{kind.identity_field: identity, "position": call.position, **values}))
        self.tenant.add(kind.key, obj)
        return obj

    def set_object(self, call: CmdletCall, kind: Kind) -> Any:
        identity, where = self.identity_of(call, kind)
        current = self.tenant.find(kind.key, identity)
        if current is None and kind.upsert:
            values = self.read_fields(call, kind, None, identity)
            obj = checked(call, kind.fields_by_parameter,
                          lambda: kind.cls(**{kind.identity_field: identity, "position": call.position, **values}))
            self.tenant.add(kind.key, obj)
            return obj
        if current is None:  # the Global instances always exist
            raise TenantError(f"unknown {kind.what} {identity!r} (create it first with New-{kind.noun})"
                              f"{_close_name(identity, self.names(kind.key))}", where)
        values = self.read_fields(call, kind, current, current.name)
        obj = checked(call, kind.fields_by_parameter, lambda: dataclasses.replace(current, **values))
        self.tenant.add(kind.key, obj)
        return obj

    def remove_object(self, call: CmdletCall, kind: Kind) -> None:
        identity, where = self.identity_of(call, kind)
        obj = self.tenant.find(kind.key, identity)
        if obj is None:
            raise TenantError(f"unknown {kind.what} {identity!r}{_close_name(identity, self.names(kind.key))}",
                              where)
        used = self.referrers(kind.key, obj.name) + [
            f"user {upn!r}" for upn in self.users_of(kind.key, obj.name)]
        if kind.key == "site":
            used += [f"user {u.upn!r}" for u in self.tenant.users.values()
                     if (u.network_site or "").lower() == obj.name.lower()]
        if used:
            raise TenantError(f"cannot remove {kind.what} {obj.name!r}: still used by "
                              + ", ".join(used), where)
        if kind.global_instance and obj.name == model.GLOBAL:
            # Remove- on a Global policy resets it to its defaults, as in Teams.
            self.tenant.add(kind.key, kind.cls(model.GLOBAL))
            return
        del self.tenant.collection(kind.key)[identity.lower()]

    def read_fields(self, call: CmdletCall, kind: Kind, current: Any, identity: str) -> dict[str, Any]:
        """The fields this call sets, by model field name."""
        for alias, canonical in kind.aliases:
            if call.has(alias):
                if call.has(canonical):
                    raise TenantError(f"-{alias} and -{canonical} are the same parameter", call.where(alias))
                call.bound[canonical] = call.bound.pop(alias)
        values = {}
        for name, param in kind.params.items():
            if call.has(name):
                values[param.field] = self.read_param(call, kind, current, identity, name, param)
        return values

    def read_param(self, call: CmdletCall, kind: Kind, current: Any, identity: str, name: str, param: Param) -> Any:
        if param.type == "text":
            return call.text(name, required=not param.nullable)
        if param.type == "bool":
            return call.boolean(name)
        if param.type == "int":
            return call.integer(name, nullable=param.nullable)
        if param.type == "enum":
            # PowerShell binds an enumeration ignoring case; a value that is none of them the model refuses.
            text = call.text(name, required=True)
            return next((choice for choice in param.choices if choice.lower() == text.lower()), text)
        if param.type == "codes":
            try:
                return model.parse_failover_codes(call.text(name, required=True))
            except model.InvalidValue as err:
                raise TenantError(str(err), call.where(name)) from None
        if param.type == "ref":
            value = call.scalar(name, call.value(name), "name")
            if value.data is None:
                return None
            return self.reference(call, name, param.refers_to, value)
        existing = getattr(current, param.field) if current is not None else ()
        if param.type == "refs":
            return self.edit_names(call, existing, identity, name, param.refers_to)
        if param.type == "rules":
            return self.edit_objects(call, existing, kind, identity, name, NormalizationRuleObject,
                                     "normalization rule", "New-CsVoiceNormalizationRule ... -InMemory",
                                     key=lambda rule: rule.name.lower())
        if param.type == "emergency_numbers":
            return self.edit_objects(call, existing, kind, identity, name, EmergencyNumberObject,
                                     "emergency number", "New-CsTeamsEmergencyNumber",
                                     key=lambda n: n.dial_string)
        raise AssertionError(param.type)

    def edit_names(self, call: CmdletCall, current: tuple[str, ...], identity: str, name: str, kind: str) -> tuple[str, ...]:
        edit = call.list_edit(name)
        canonical = {id(value): self.reference(call, name, kind, value) for value in edit.values()}
        for value in edit.remove if not edit.replace else ():
            if not any(item.lower() == to_text(value).lower() for item in current):
                self.warnings.append(TenantWarning(
                    f"{to_text(value)!r} is not in -{name} of {identity!r}; nothing removed",
                    value.position))
        result = edit.apply(list(current), lambda item, value: item.lower() == to_text(value).lower())
        names = [item if isinstance(item, str) else canonical[id(item)] for item in result]
        seen: dict[str, str] = {}
        for item in names:
            if item.lower() in seen:
                raise TenantError(f"-{name} of {call.name} lists {item!r} twice", call.where(name))
            seen[item.lower()] = item
        return tuple(names)

    def edit_objects(self, call: CmdletCall, current: tuple[Any, ...], kind: Kind, identity: str, name: str, cls: type,
                     what: str, how: str, key: Callable[[Any], str]) -> tuple[Any, ...]:
        edit = call.list_edit(name)
        for value in edit.values() + edit.remove:
            if not isinstance(value.data, cls):
                raise TenantError(f"-{name} of {call.name} takes {what}s made with {how} (held in a "
                                  f"variable), not {describe(value)}", value.position)
        result = edit.apply(list(current), lambda item, value: key(item) == key(value.data))
        objects = [_model_item(item.data if isinstance(item, Value) else item) for item in result]
        seen: set[str] = set()
        for obj in objects:
            if key(obj) in seen:
                raise TenantError(f"-{name} of {call.name}: {identity!r} would have two {what}s "
                                  f"{key(obj)!r}", call.where(name))
            seen.add(key(obj))
        return tuple(objects)

    def get_objects(self, call: CmdletCall, kind: Kind) -> tuple[Value, ...] | Any:
        """Get-Cs...: one object by -Identity, or every object (matching -Filter's wildcard)."""
        found = self.identity_of(call, kind, required=False)
        if found is not None:
            identity, where = found
            obj = self.tenant.find(kind.key, identity)
            if obj is None:
                raise TenantError(f"unknown {kind.what} {identity!r}{_close_name(identity, self.names(kind.key))}",
                                  where)
            return obj
        pattern = call.text("Filter") or "*"
        objects = [obj for obj in self.tenant.collection(kind.key).values()
                   if wildcard_match(pattern, to_text(self.member(Value(obj, call.position), "Identity", call.position)))
                   or wildcard_match(pattern, obj.name)]
        return tuple(Value(obj, call.position) for obj in objects)

    def next_route_priority(self) -> int:
        # An omitted Priority gets the next free one [S12] (the documented example got 4 and 5
        # after routes with 1, 2 and 3).
        priorities = [r.priority for r in self.tenant.voice_routes.values()]
        return max(priorities) + 1 if priorities else 0


def _close_name(name: str, known: list[str]) -> str:
    """A did-you-mean hint among the names a reference could have meant (case-insensitive)."""
    import difflib

    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.8)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def _did_you_mean(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name.lower(), list(CMDLETS), n=1, cutoff=0.85)
    return f" (did you mean {CMDLETS[close[0]].name}?)" if close else ""


# The members of an object made in memory, and the parameters that set them: PowerShell name -> field.
_OBJECT_PARAMETERS: dict[type, dict[str, str]] = {
    NormalizationRuleObject: model.OBJECT_PS_PARAMETERS[model.NormalizationRule],
    EmergencyNumberObject: model.OBJECT_PS_PARAMETERS[model.EmergencyNumber],
}


# ---------------------------------------------------------------- cmdlets

def _identity_parameters(kind: Kind) -> tuple[str, ...]:
    return kind.identity_aliases if kind.generated_identity else ("Identity", *kind.identity_aliases)


def _generic_cmdlets() -> list[CmdletSpec]:
    specs = []
    for kind in KINDS.values():
        names = _identity_parameters(kind)
        fields = tuple(kind.params) + tuple(alias for alias, _ in kind.aliases)
        positional = names[:1] if not kind.generated_identity else ()
        handlers = {
            "New": lambda loader, call, kind=kind: loader.new_object(call, kind),
            "Set": lambda loader, call, kind=kind: loader.set_object(call, kind),
            "Remove": lambda loader, call, kind=kind: loader.remove_object(call, kind),
        }
        for verb in kind.verbs:
            on_new = verb == "New" and kind.generated_identity
            parameters = (() if on_new else names) + (fields if verb != "Remove" else ())
            specs.append(CmdletSpec(f"{verb}-{kind.noun}", parameters, handlers[verb], positional=positional,
                                    ignored=kind.ignored if verb != "Remove" else (),
                                    takes_piped_identity=verb != "New"))
        specs.append(CmdletSpec(f"Get-{kind.noun}", (*names, "Filter"),
                                lambda loader, call, kind=kind: loader.get_objects(call, kind), positional=positional))
    return specs


def _set_pstn_usage(loader: _Loader, call: CmdletCall) -> None:
    # One global list [S12]; -Identity may be omitted or "Global".
    identity = call.text("Identity") or "Global"
    if identity.lower() != "global":
        raise TenantError(f"the PSTN usage list exists only at Global scope, not {identity!r}",
                          call.where("Identity"))
    if not call.has("Usage"):
        raise TenantError(f"{call.name} needs -Usage (for example @{{Add=\"US and Canada\"}})", call.position)
    edit = call.list_edit("Usage")
    tenant = loader.tenant
    removed = [v for v in (edit.remove if not edit.replace else ())]
    if edit.replace:
        kept = {to_text(v).lower() for v in edit.replace}
        removed = [Value(u, call.where("Usage")) for u in tenant.usages if u.lower() not in kept]
    for value in removed:
        name = to_text(value)
        if not tenant.has_usage(name):
            loader.warnings.append(TenantWarning(f"PSTN usage {name!r} is not in the list; nothing removed",
                                                 value.position))
            continue
        used = loader.referrers("usage", loader.canonical("usage", name))
        if used:
            raise TenantError(f"cannot remove PSTN usage {name!r}: still used by {', '.join(used)}",
                              value.position)
    result = edit.apply(list(tenant.usages), lambda item, value: item.lower() == to_text(value).lower())
    usages: list[str] = []
    for item in result:
        name = item if isinstance(item, str) else to_text(item)
        if not name.strip():
            raise TenantError("a PSTN usage name cannot be empty", call.where("Usage"))
        if any(u.lower() == name.lower() for u in usages):
            if isinstance(item, Value):  # Teams keeps one copy; adding it again changes nothing
                loader.warnings.append(TenantWarning(f"PSTN usage {name!r} is already in the list",
                                                     item.position))
            continue
        usages.append(name)
    tenant.usages = tuple(usages)


def _new_normalization_rule(loader: _Loader, call: CmdletCall) -> NormalizationRuleObject:
    # Teams keeps normalization rules only inside dial plans, so -InMemory is required [S17].
    if not (call.has("InMemory") and call.boolean("InMemory")):
        raise TenantError("New-CsVoiceNormalizationRule needs -InMemory in Teams; keep the rule in a variable "
                          "and add it with Set-CsTenantDialPlan -NormalizationRules @{Add=$rule}", call.position)
    identity = call.text("Identity")
    parent = call.text("Parent")
    name = call.text("Name")
    if identity is not None:
        scope, _, short = identity.rpartition("/")
        if name is not None and name.lower() != short.lower():
            raise TenantError(f"-Name {name!r} and -Identity {identity!r} disagree", call.where("Name"))
        if parent is not None and scope and parent.lower() != scope.lower():
            raise TenantError(f"-Parent {parent!r} and -Identity {identity!r} disagree", call.where("Parent"))
        name = short
    if not name:
        raise TenantError("New-CsVoiceNormalizationRule needs -Name (with -Parent) or -Identity Parent/Name",
                          call.position)
    given = {"pattern": call.text("Pattern"), "translation": call.text("Translation"),
             "description": call.text("Description"),
             "is_internal_extension": call.boolean("IsInternalExtension") if call.has("IsInternalExtension") else None}
    # An omitted -Pattern or -Translation takes the cmdlet's documented default [S17].
    rule = checked(call, _OBJECT_PARAMETERS[NormalizationRuleObject], lambda: model.NormalizationRule(
        name, **{k: v for k, v in given.items() if v is not None}, position=call.position))
    return NormalizationRuleObject(rule.name, rule.pattern, rule.translation, rule.description,
                                   rule.is_internal_extension, rule.position)


def _new_emergency_number(loader: _Loader, call: CmdletCall) -> EmergencyNumberObject:
    dial_string = call.text("EmergencyDialString", required=True)
    mask = call.text("EmergencyDialMask")
    usage = None
    if call.has("OnlinePSTNUsage"):
        value = call.scalar("OnlinePSTNUsage", call.value("OnlinePSTNUsage"), "name")
        usage = None if value.data is None else loader.reference(call, "OnlinePSTNUsage", "usage", value)
    number = checked(call, _OBJECT_PARAMETERS[EmergencyNumberObject], lambda: model.EmergencyNumber(
        dial_string, mask, usage, call.text("Description"), call.position))
    return EmergencyNumberObject(number.dial_string, number.dial_mask, number.online_pstn_usage,
                                 number.description, number.position)


_GRANTS = {
    "grant-csonlinevoiceroutingpolicy": "voice_routing_policy",
    "grant-cstenantdialplan": "dial_plan",
    "grant-csteamssurvivablebranchappliancepolicy": "sba_policy",
    "grant-csteamsemergencycallroutingpolicy": "emergency_call_routing_policy",
    "grant-cscallinglineidentity": "calling_line_identity",
    "grant-csteamscallingpolicy": "teams_calling_policy",
    "grant-csteamsemergencycallingpolicy": "emergency_calling_policy",
}


def _grant(loader: _Loader, call: CmdletCall) -> None:
    kind = KINDS[_GRANTS[call.name.lower()]]
    if not call.has("PolicyName"):
        raise TenantError(f"{call.name} needs -PolicyName (or -PolicyName $null to remove)", call.position)
    value = call.scalar("PolicyName", call.value("PolicyName"), "policy name")
    policy = None
    if value.data is not None:
        policy = loader.reference(call, "PolicyName", kind.key, value)
        if policy.lower() == "global":
            policy = None  # granting Global is the same as granting nothing: the user falls back to it
    if call.has("Global") and call.boolean("Global"):
        if call.has("Identity"):
            raise TenantError(f"{call.name} takes either -Identity or -Global", call.where("Identity"))
        if policy is None:
            loader.tenant.global_grants.pop(kind.key, None)
        else:
            loader.tenant.global_grants[kind.key] = policy
        return
    if call.has("Group"):
        if call.has("Identity"):
            raise TenantError(f"{call.name} takes either -Identity or -Group", call.where("Identity"))
        _grant_to_group(loader, call, kind, policy)
        return
    _update_user(loader, call, _user(loader, call), **{kind.key: policy})


def _grant_to_group(loader: _Loader, call: CmdletCall, kind: Kind, policy: str | None) -> None:
    group = loader.group(call)
    key = f"{kind.key}/{group.name}".lower()
    if policy is None:  # -PolicyName $null (or Global) takes the group's assignment away
        loader.tenant.group_policy_assignments.pop(key, None)
        return
    if not call.has("Rank"):
        raise TenantError(f"{call.name} -Group needs -Rank (1 wins over 2 when a user is in two groups)",
                          call.position)
    rank = call.integer("Rank")
    assignments = loader.tenant.group_policy_assignments
    others = [a for k, a in assignments.items() if a.policy_type == kind.key and k != key]
    if any(a.rank == rank for a in others):
        # Ranks order the groups: the new one goes in at its rank and those from there move down.
        for a in others:
            if a.rank >= rank:
                assignments[a.name.lower()] = dataclasses.replace(a, rank=a.rank + 1)
    assignment = checked(call, {"Rank": "rank", "PolicyName": "policy_name"}, lambda: model.GroupPolicyAssignment(
        group.name, kind.key, policy, rank, call.position))
    loader.tenant.add("group_policy_assignment", assignment)
    for upn in group.members:  # members are users of the tenant from now on, as -Identity makes them
        if loader.tenant.users.get(upn.lower()) is None:
            loader.tenant.add("user", model.User(upn, position=call.where("Group")))


def _user(loader: _Loader, call: CmdletCall) -> model.User:
    """The user named by -Identity, brought into the model on first mention (module docstring)."""
    upn = call.text("Identity", required=True).strip()
    if upn.lower().startswith("sip:"):
        upn = upn[4:]
    if not upn:
        raise TenantError("-Identity of a user cannot be empty", call.where("Identity"))
    user = loader.tenant.users.get(upn.lower())
    if user is None:
        # Users come from Entra ID, so a new UPN is not an error; but one a typo away from a user
        # this runbook already has would silently split that user in two: say so.
        similar = _similar_upn(upn, [u.upn for u in loader.tenant.users.values()])
        if similar is not None:
            loader.warnings.append(TenantWarning(
                f"user {upn!r} is new here and is brought in as another user (did you mean {similar!r}?)",
                call.where("Identity")))
        user = model.User(upn, position=call.where("Identity"))
        loader.tenant.add("user", user)
    return user


def _similar_upn(upn: str, known: list[str]) -> str | None:
    """An existing UPN that `upn` looks like a typo of: a close name at the same domain, or the
    same name at a close domain."""
    import difflib

    local, _, domain = upn.lower().partition("@")
    best, best_ratio = None, 0.0
    for other in known:
        other_local, _, other_domain = other.lower().partition("@")
        if domain == other_domain:
            ratio = difflib.SequenceMatcher(None, local, other_local).ratio() if len(local) >= 3 else 0.0
            close = ratio >= 0.75
        else:
            ratio = difflib.SequenceMatcher(None, domain, other_domain).ratio()
            close = local == other_local and ratio >= 0.8
        if close and ratio > best_ratio:
            best, best_ratio = other, ratio
    return best


_USER_PARAMETERS = model.OBJECT_PS_PARAMETERS[model.User] | {"OnPremLineURI": "phone_number"}


def _update_user(loader: _Loader, call: CmdletCall, user: model.User, **changes: Any) -> model.User:
    user = checked(call, _USER_PARAMETERS, lambda: dataclasses.replace(user, **changes))
    loader.tenant.add("user", user)
    return user


def _assign_number(loader: _Loader, call: CmdletCall, user: model.User, number: str, number_type: str,
                   param: str) -> model.User:
    for other in loader.tenant.users.values():
        if other.upn.lower() != user.upn.lower() and (other.phone_number or "").lower() == number.lower():
            raise TenantError(f"{number} is already assigned to {other.upn}", call.where(param))
    return _update_user(loader, call, user, phone_number=number, phone_number_type=number_type,
                        enterprise_voice_enabled=True)


def _location(loader: _Loader, call: CmdletCall) -> str | None:
    """-LocationId: a LIS location, or the default location of a civic address [S22]."""
    location = call.text("LocationId")
    if location is not None and not loader.tenant.has_location(location):
        raise TenantError(f"-LocationId {location!r}: no LIS location has that id (New-CsOnlineLisLocation, or "
                          "the DefaultLocationId of New-CsOnlineLisCivicAddress, makes one)", call.where("LocationId"))
    return location


def _set_phone_number_assignment(loader: _Loader, call: CmdletCall) -> None:
    if not call.has("Identity"):
        _update_number(loader, call)
        return
    account = loader.tenant.resource_account(call.text("Identity", required=True).strip())
    if account is not None:
        _assign_resource_account_number(loader, call, account)
        return
    user = _user(loader, call)
    if call.has("ReverseNumberLookup"):
        raise TenantError("-ReverseNumberLookup is given with -PhoneNumber alone (another parameter set)",
                          call.where("ReverseNumberLookup"))
    if call.has("AssignmentCategory"):
        category = call.text("AssignmentCategory", required=True)
        if category.lower() != "primary":
            raise TenantError(f"-AssignmentCategory {category} is not modelled by drlab: a user has one number "
                              "(the Primary one)", call.where("AssignmentCategory"))
    if call.has("EnterpriseVoiceEnabled"):
        # The second parameter set: enable voice for a number managed elsewhere [S20].
        if call.has("PhoneNumber"):
            raise TenantError("-EnterpriseVoiceEnabled is used without -PhoneNumber (another parameter set)",
                              call.where("EnterpriseVoiceEnabled"))
        _update_user(loader, call, user, enterprise_voice_enabled=call.boolean("EnterpriseVoiceEnabled"))
        return
    number = call.text("PhoneNumber", required=True)
    given_type = call.text("PhoneNumberType", required=True)
    # PowerShell binds an enumeration ignoring case; a type that is none of them the model refuses.
    number_type = next((t for t in model.PHONE_NUMBER_TYPES if t.lower() == given_type.lower()), given_type)
    user = _assign_number(loader, call, user, number, number_type, "PhoneNumber")
    if call.has("LocationId"):
        user = _update_user(loader, call, user, location_id=_location(loader, call))
    if call.has("NetworkSiteId"):
        value = call.scalar("NetworkSiteId", call.value("NetworkSiteId"), "name")
        site = None if value.data is None else loader.reference(call, "NetworkSiteId", "site", value)
        _update_user(loader, call, user, network_site=site)


def _assign_resource_account_number(loader: _Loader, call: CmdletCall, account: model.ResourceAccount) -> None:
    """A resource account's number: what a caller ID policy with -ResourceAccount presents."""
    extra = [p for p in ("LocationId", "NetworkSiteId", "ReverseNumberLookup", "EnterpriseVoiceEnabled",
                         "AssignmentCategory") if call.has(p)]
    if extra:
        raise TenantError(f"-{extra[0]} is not modelled for resource account {account.upn}: drlab keeps only its "
                          "number", call.where(extra[0]))
    number = call.text("PhoneNumber", required=True)
    call.text("PhoneNumberType", required=True)
    holder = loader.tenant.user_by_number(number)
    if holder is not None:
        raise TenantError(f"{number} is already assigned to {holder.upn}", call.where("PhoneNumber"))
    try:
        loader.tenant.add("resource_account", dataclasses.replace(account, phone_number=number))
    except model.InvalidValue as err:
        raise TenantError(str(err).replace("phone_number", "phone_number (-PhoneNumber)", 1),
                          call.where("PhoneNumber")) from None


def _update_number(loader: _Loader, call: CmdletCall) -> None:
    """The parameter sets without -Identity: -PhoneNumber with -LocationId, -NetworkSiteId or
    -ReverseNumberLookup change what goes with a number already assigned [S20]."""
    number = call.text("PhoneNumber")
    if number is None:
        raise TenantError(f"{call.name} needs -Identity (with -PhoneNumber and -PhoneNumberType) or -PhoneNumber "
                          "(with -LocationId, -NetworkSiteId or -ReverseNumberLookup)", call.position)
    changes = [p for p in ("LocationId", "NetworkSiteId", "ReverseNumberLookup") if call.has(p)]
    extra = [p for p in ("PhoneNumberType", "EnterpriseVoiceEnabled", "AssignmentCategory") if call.has(p)]
    if len(changes) != 1 or extra:
        raise TenantError(f"{call.name} -PhoneNumber without -Identity takes exactly one of -LocationId, "
                          "-NetworkSiteId and -ReverseNumberLookup", call.where(extra[0]) if extra else call.position)
    user = loader.tenant.user_by_number(number) or next(
        (u for u in loader.tenant.users.values() if (u.phone_number or "").lstrip("+") == number.lstrip("+")), None)
    if user is None:
        raise TenantError(f"{number} is not assigned to any user in this tenant; assign it first with "
                          "Set-CsPhoneNumberAssignment -Identity ... -PhoneNumber", call.where("PhoneNumber"))
    if changes[0] == "LocationId":
        _update_user(loader, call, user, location_id=_location(loader, call))
    elif changes[0] == "NetworkSiteId":
        value = call.scalar("NetworkSiteId", call.value("NetworkSiteId"), "name")
        site = None if value.data is None else loader.reference(call, "NetworkSiteId", "site", value)
        _update_user(loader, call, user, network_site=site)
    else:
        given = call.text("ReverseNumberLookup", required=True)
        if given.lower() != "skipinternalvoip":
            raise TenantError(f"-ReverseNumberLookup takes SkipInternalVoip, not {given!r}",
                              call.where("ReverseNumberLookup"))
        _update_user(loader, call, user, reverse_number_lookup="SkipInternalVoip")


def _set_user(loader: _Loader, call: CmdletCall) -> None:
    # Runbooks written before Set-CsPhoneNumberAssignment (2022) set a Direct Routing number with
    # Set-CsUser -OnPremLineURI tel:+1...; Teams no longer accepts it, but old runbooks are common.
    user = _user(loader, call)
    if call.has("OnPremLineURI"):
        uri = call.text("OnPremLineURI")
        if uri is None:
            user = _update_user(loader, call, user, phone_number=None, phone_number_type=None)
        else:
            number = uri[4:] if uri.lower().startswith("tel:") else uri
            if not model.PHONE_NUMBER.match(number):
                raise TenantError(f"-OnPremLineURI is a tel: URI like tel:+14255550100, not {uri!r}",
                                  call.where("OnPremLineURI"))
            user = _assign_number(loader, call, user, number, "DirectRouting", "OnPremLineURI")
    if call.has("EnterpriseVoiceEnabled"):
        _update_user(loader, call, user, enterprise_voice_enabled=call.boolean("EnterpriseVoiceEnabled"))


_TIMESPAN = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})$")


def _choice(call: CmdletCall, param: str, choices: tuple[str, ...]) -> str:
    """An enumeration value, bound ignoring case as PowerShell does."""
    given = call.text(param, required=True)
    found = next((c for c in choices if c.lower() == given.lower()), None)
    if found is None:
        raise TenantError(f"-{param} of {call.name} is one of {', '.join(choices)}, not {given!r}", call.where(param))
    return found


def _set_user_calling_settings(loader: _Loader, call: CmdletCall) -> None:
    # Immediate forwarding to a single target stays in `forwarding_target` (what an SBA serves
    # offline [S26]); simultaneous ringing, voicemail, delegates and call groups are kept in the
    # fields Teams shows them in.
    user = _user(loader, call)
    changes: dict[str, Any] = {}
    if call.has("IsForwardingEnabled"):
        changes.update(forwarding_target=None, simultaneous_ring_target=None, forwarding_type=None,
                       forwarding_target_type=None)
        if call.boolean("IsForwardingEnabled"):
            kind = _choice(call, "ForwardingType", model.FORWARDING_TYPES)
            target_type = _choice(call, "ForwardingTargetType", model.FORWARDING_TARGET_TYPES)
            if kind == "Simultaneous" and target_type == "Voicemail":
                raise TenantError("-ForwardingTargetType Voicemail goes with -ForwardingType Immediate; a call "
                                  "cannot ring voicemail at the same time", call.where("ForwardingTargetType"))
            changes.update(forwarding_type=kind, forwarding_target_type=target_type)
            if target_type == "SingleTarget":
                target = call.text("ForwardingTarget", required=True)
                changes["forwarding_target" if kind == "Immediate" else "simultaneous_ring_target"] = target
    if call.has("IsUnansweredEnabled"):
        changes.update(unanswered_target=None, unanswered_target_type=None, unanswered_delay_seconds=None)
        if call.boolean("IsUnansweredEnabled"):
            target_type = _choice(call, "UnansweredTargetType", model.FORWARDING_TARGET_TYPES)
            changes["unanswered_target_type"] = target_type
            if target_type == "SingleTarget":
                changes["unanswered_target"] = call.text("UnansweredTarget", required=True)
    if call.has("UnansweredDelay"):
        text = call.text("UnansweredDelay", required=True)
        m = _TIMESPAN.match(text)
        if not m:
            raise TenantError(f"-UnansweredDelay is a time span like 00:00:20, not {text!r}",
                              call.where("UnansweredDelay"))
        changes["unanswered_delay_seconds"] = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
    if call.has("CallGroupOrder"):
        changes["call_group_order"] = _choice(call, "CallGroupOrder", model.CALL_GROUP_ORDERS)
    if call.has("CallGroupTargets"):
        changes["call_group_targets"] = tuple(to_text(v) for v in call.list_edit("CallGroupTargets").values())
    if not changes:
        raise TenantError(f"{call.name} needs -IsForwardingEnabled, -IsUnansweredEnabled, -UnansweredDelay or "
                          "-CallGroupTargets", call.position)
    _update_user(loader, call, user, **changes)


def _set_voicemail_settings(loader: _Loader, call: CmdletCall) -> None:
    # Voicemail belongs to a user: the user is brought in like any other first mention.
    user = _user(loader, call)
    call.bound["Identity"] = BoundArgument("Identity", Value(user.upn, call.where("Identity")),
                                           call.bound["Identity"].name_position)
    loader.set_object(call, KINDS["voicemail_settings"])


def _get_user(loader: _Loader, call: CmdletCall) -> Any:
    if call.has("Identity"):
        return _user(loader, call)
    pattern = call.text("Filter") or "*"
    return tuple(Value(u, call.position) for u in loader.tenant.users.values() if wildcard_match(pattern, u.upn))


def _get_pstn_usage(loader: _Loader, call: CmdletCall) -> Hashtable:
    """What Get-CsOnlinePstnUsage shows: Identity Global and the Usage list [S12]."""
    usages = tuple(Value(u, call.position) for u in loader.tenant.usages)
    return Hashtable((HashtableItem("Identity", call.position, Value(model.GLOBAL, call.position)),
                      HashtableItem("Usage", call.position, Value(usages, call.position))))


# Get-CsOnlineUser's properties drlab keeps, by their PowerShell names.
_USER_MEMBERS = {"identity": "upn", "userprincipalname": "upn", "sipaddress": "upn", "lineuri": "phone_number",
                 "onlinevoiceroutingpolicy": "voice_routing_policy", "tenantdialplan": "dial_plan",
                 "teamssurvivablebranchappliancepolicy": "sba_policy",
                 "teamsemergencycallroutingpolicy": "emergency_call_routing_policy",
                 "callinglineidentity": "calling_line_identity", "teamscallingpolicy": "teams_calling_policy",
                 "teamsemergencycallingpolicy": "emergency_calling_policy"}


def _user_member(user: model.User, name: str) -> Any:
    field_name = _USER_MEMBERS.get(name.lower()) or model._snake(name)
    if not hasattr(user, field_name):
        return None
    value = getattr(user, field_name)
    if field_name == "phone_number" and value is not None and name.lower() == "lineuri":
        return "tel:" + value
    if name.lower() == "sipaddress":
        return "sip:" + value
    return value


def _new_domain(loader: _Loader, call: CmdletCall) -> None:
    # Microsoft Graph PowerShell's New-MgDomain registers a domain in the tenant (verification is
    # DNS work outside any runbook); a gateway's FQDN must be in one [S1].
    name = (call.text("Id", required=True) or "").lower().rstrip(".")
    problem = model.domain_problem(name)
    if problem is not None:
        raise TenantError(problem, call.where("Id"))
    if name in loader.tenant.domains:
        loader.warnings.append(TenantWarning(f"domain {name!r} is already registered", call.where("Id")))
        return
    loader.tenant.domains = (*loader.tenant.domains, name)


def _remove_phone_number_assignment(loader: _Loader, call: CmdletCall) -> None:
    user = _user(loader, call)
    if call.has("RemoveAll") and call.boolean("RemoveAll"):
        _update_user(loader, call, user, phone_number=None, phone_number_type=None)
        return
    number = call.text("PhoneNumber", required=True)
    if (user.phone_number or "").lower() != number.lower():
        raise TenantError(f"{number} is not assigned to {user.upn}", call.where("PhoneNumber"))
    _update_user(loader, call, user, phone_number=None, phone_number_type=None)


CMDLETS: dict[str, CmdletSpec] = {spec.name.lower(): spec for spec in [
    *_generic_cmdlets(),
    CmdletSpec("Set-CsOnlinePstnUsage", ("Identity", "Usage"), _set_pstn_usage),
    CmdletSpec("New-CsVoiceNormalizationRule",
               ("Identity", "Parent", "Name", "Pattern", "Translation", "Description", "IsInternalExtension",
                "Priority", "InMemory"), _new_normalization_rule, switches=("InMemory",), takes_piped_identity=False),
    CmdletSpec("New-CsTeamsEmergencyNumber",
               ("EmergencyDialString", "EmergencyDialMask", "OnlinePSTNUsage", "Description"),
               _new_emergency_number, positional=(), takes_piped_identity=False),
    *(CmdletSpec(f"Grant-{KINDS[kind].noun}", ("Identity", "PolicyName", "Global", "Group", "Rank"), _grant,
                 switches=("Global",), positional=("Identity", "PolicyName")) for kind in _GRANTS.values()),
    CmdletSpec("Set-CsPhoneNumberAssignment",
               ("Identity", "PhoneNumber", "PhoneNumberType", "LocationId", "NetworkSiteId", "EnterpriseVoiceEnabled",
                "AssignmentCategory", "ReverseNumberLookup"), _set_phone_number_assignment),
    CmdletSpec("Set-CsOnlineVoicemailUserSettings", ("Identity", *KINDS["voicemail_settings"].params),
               _set_voicemail_settings),
    CmdletSpec("Get-CsOnlineUser", ("Identity", "Filter"), _get_user),
    CmdletSpec("Get-CsOnlinePstnUsage", ("Identity",), _get_pstn_usage),
    CmdletSpec("Set-CsUser", ("Identity", "EnterpriseVoiceEnabled", "HostedVoiceMail", "OnPremLineURI"),
               _set_user),
    CmdletSpec("Set-CsUserCallingSettings",
               ("Identity", "IsForwardingEnabled", "ForwardingType", "ForwardingTarget", "ForwardingTargetType",
                "IsUnansweredEnabled", "UnansweredTarget", "UnansweredTargetType", "UnansweredDelay",
                "CallGroupOrder", "CallGroupTargets"), _set_user_calling_settings,
               ignored=("GroupMembershipDetails", "GroupNotificationOverride")),
    CmdletSpec("New-MgDomain", ("Id",), _new_domain, positional=(), takes_piped_identity=False,
               ignored=("AuthenticationType", "IsDefault", "IsRoot", "SupportedServices")),
    CmdletSpec("Remove-CsPhoneNumberAssignment", ("Identity", "PhoneNumber", "PhoneNumberType", "RemoveAll"),
               _remove_phone_number_assignment, switches=("RemoveAll",)),
]}


# Cmdlets that change nothing drlab simulates, ignored on purpose (docs/tenant-powershell.md lists
# them): cmdlet -> what it is about.
IGNORED_CMDLETS: dict[str, str] = {
    **dict.fromkeys(("Connect-MicrosoftTeams", "Disconnect-MicrosoftTeams", "Import-Module", "Install-Module",
                     "Set-ExecutionPolicy"), "the PowerShell session"),
    **dict.fromkeys(("Write-Host", "Write-Output", "Write-Verbose", "Write-Warning", "Write-Information",
                     "Out-File", "Out-Null", "Format-Table", "Format-List", "Select-Object", "Sort-Object",
                     "Export-Csv", "ConvertTo-Json", "Start-Transcript", "Stop-Transcript", "Start-Sleep",
                     "select", "sort", "ft", "fl", "echo"),
                    "output and pacing"),
    **dict.fromkeys(("New-CsTeamsMeetingPolicy", "Set-CsTeamsMeetingPolicy", "Grant-CsTeamsMeetingPolicy",
                     "Set-CsTeamsMeetingConfiguration", "New-CsTeamsMeetingBroadcastPolicy",
                     "Grant-CsTeamsMeetingBroadcastPolicy"), "meetings"),
    **dict.fromkeys(("New-CsTeamsMessagingPolicy", "Set-CsTeamsMessagingPolicy", "Grant-CsTeamsMessagingPolicy",
                     "New-CsTeamsChannelsPolicy", "Grant-CsTeamsChannelsPolicy"), "chat and channels"),
    **dict.fromkeys(("New-CsTeamsAppSetupPolicy", "Grant-CsTeamsAppSetupPolicy", "New-CsTeamsAppPermissionPolicy",
                     "Grant-CsTeamsAppPermissionPolicy", "Set-CsTeamsClientConfiguration"), "apps and the client"),
    **dict.fromkeys(("Grant-CsTeamsUpgradePolicy",), "coexistence mode: drlab's users are TeamsOnly"),
    **dict.fromkeys(("New-CsOnlineDirectRoutingTelephoneNumberUploadOrder", "Get-CsOnlineTelephoneNumberOrder"),
                    "number inventory: a number exists once it is assigned"),
}
_IGNORED = {name.lower(): why for name, why in IGNORED_CMDLETS.items()}


# ---------------------------------------------------------------- entry points

def load_groups(path: str | Path) -> dict[str, model.Group]:
    """Group members from a CSV file with the columns Group and UserPrincipalName (one member per
    line), by lower-cased group name."""
    rows = read_csv(Path(path), str(path))
    groups: dict[str, model.Group] = {}
    for row in rows:
        name, upn = row.get("Group"), row.get("UserPrincipalName")
        if name is None or upn is None:
            raise TenantError(f"a groups file has the columns Group and UserPrincipalName, not "
                              f"{', '.join(row.columns())}", SourcePosition(str(path), 1))
        if not name.strip() or not upn.strip():
            raise TenantError("a group name and a UserPrincipalName are needed on every line",
                              SourcePosition(str(path), row.line))
        group = groups.get(name.strip().lower()) or model.Group(name.strip(), (), SourcePosition(str(path), row.line))
        groups[group.name.lower()] = dataclasses.replace(group, members=(*group.members, upn.strip()))
    return groups


def run_powershell(text: str, path: str = "<string>", groups: dict[str, model.Group] | None = None,
                   groups_file: Path | None = None) -> tuple[model.Tenant, list[TenantWarning]]:
    """Run a runbook against an empty tenant: the tenant it built, and the warnings. `groups`
    (from `load_groups`), or else `groups_file`, holds the members of the groups `-Group` names."""
    loader = _Loader(path, groups, groups_file)
    script = parse(text, path)
    try:
        run_script(script, loader.invoke, loader.member)
    except RecursionError:  # nesting the parser took, but evaluating it goes past Python's stack
        raise TenantError("nested too deeply to run: no runbook nests blocks or expressions this far",
                          SourcePosition(path, 1, 1)) from None
    loader.finish()
    return loader.tenant, sorted(loader.warnings, key=lambda w: (w.position.line, w.position.column))


def load_powershell_with_warnings(path: str | Path,
                                  groups: str | Path | None = None) -> tuple[model.Tenant, list[TenantWarning]]:
    """Load a runbook file: the tenant and the warnings (unmodelled cmdlets, no-op removals).
    `groups` is the CSV file of group members (`load_groups`); without it, `groups.csv` next to
    the runbook if there is one."""
    beside = Path(path).parent / "groups.csv"
    groups_file = Path(groups) if groups is not None else beside if beside.is_file() else None
    return run_powershell(read_source(path, TenantError, "runbook"), str(path), groups_file=groups_file)


def load_powershell(path: str | Path, groups: str | Path | None = None) -> model.Tenant:
    """Load a runbook file; TenantError (FILE:LINE:COL: message) on the first problem."""
    return load_powershell_with_warnings(path, groups)[0]
