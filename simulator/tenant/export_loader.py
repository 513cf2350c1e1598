"""Load a tenant from a folder of the JSON its `Get-Cs*` cmdlets print (docs/tenant-export.md).

An engineer snapshots a tenant with `Get-CsOnlineVoiceRoute | ConvertTo-Json -Depth 5 | Out-File
routes.json` and its siblings, one file per cmdlet (`EXPORT_FILES`). This module reads those
files as the cmdlets print them: PascalCase property names matched ignoring case (PowerShell's
way), policy identities as `Tag:US Only` or `Global`, usages and gateways as arrays, dial plan
rules and emergency numbers as nested objects, a single object where the cmdlet returned one
item, an empty file where it returned none, UTF-8 (with or without the byte-order mark Windows
PowerShell writes) or UTF-16 with its byte-order mark (what `Out-File` writes by default in
Windows PowerShell 5.1).

Objects are made by the model's own constructors, so a value is checked by the same rule and
reported in the same words as in YAML or a runbook; references are checked by `Tenant.validate`.
Properties drlab does not model are ignored (the cmdlets print many); a property it models with
a value of the wrong type is an error. Errors are `TenantError` at `FILE:LINE:COL` and name the
JSON path of the value (`routes.json:14:7: $[2].OnlinePstnGatewayList[0]: ...`).
"""

from __future__ import annotations

import codecs
import json
import json.scanner
import typing
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

from simulator.errors import SourcePosition, read_source
from simulator.tenant import model
from simulator.tenant.errors import TenantError, TenantWarning
from simulator.tenant.ps_loader import strip_tag


@dataclass(frozen=True)
class ExportFile:
    name: str  # the conventional file name, matched ignoring case
    cmdlet: str  # the Get- cmdlet that prints it
    kind: str  # a model kind (model.KIND_CLASSES), or "usage", "user", "number"
    needed: bool = False  # routing cannot work without it: a missing file is an error


# In the order they are read: an object is read after the objects it names.
EXPORT_FILES = (
    ExportFile("tenant.json", "Get-CsTenant", "domain"),
    ExportFile("usages.json", "Get-CsOnlinePstnUsage", "usage", needed=True),
    ExportFile("translation-rules.json", "Get-CsTeamsTranslationRule", "translation_rule"),
    ExportFile("regions.json", "Get-CsTenantNetworkRegion", "region"),
    ExportFile("sites.json", "Get-CsTenantNetworkSite", "site"),
    ExportFile("subnets.json", "Get-CsTenantNetworkSubnet", "subnet"),
    ExportFile("gateways.json", "Get-CsOnlinePSTNGateway", "gateway", needed=True),
    ExportFile("routes.json", "Get-CsOnlineVoiceRoute", "voice_route", needed=True),
    ExportFile("policies.json", "Get-CsOnlineVoiceRoutingPolicy", "voice_routing_policy", needed=True),
    ExportFile("dialplans.json", "Get-CsTenantDialPlan", "dial_plan"),
    ExportFile("emergency-routing-policies.json", "Get-CsTeamsEmergencyCallRoutingPolicy",
               "emergency_call_routing_policy"),
    ExportFile("trusted-ips.json", "Get-CsTenantTrustedIPAddress", "trusted_ip"),
    ExportFile("civic-addresses.json", "Get-CsOnlineLisCivicAddress", "civic_address"),
    ExportFile("lis-locations.json", "Get-CsOnlineLisLocation", "lis_location"),
    ExportFile("lis-subnets.json", "Get-CsOnlineLisSubnet", "lis_subnet"),
    ExportFile("resource-accounts.json", "Get-CsOnlineApplicationInstance", "resource_account"),
    ExportFile("caller-id-policies.json", "Get-CsCallingLineIdentity", "calling_line_identity"),
    ExportFile("sbas.json", "Get-CsTeamsSurvivableBranchAppliance", "sba"),
    ExportFile("sba-policies.json", "Get-CsTeamsSurvivableBranchAppliancePolicy", "sba_policy"),
    ExportFile("calling-policies.json", "Get-CsTeamsCallingPolicy", "teams_calling_policy"),
    ExportFile("users.json", "Get-CsOnlineUser", "user", needed=True),
    ExportFile("numbers.json", "Get-CsPhoneNumberAssignment", "number"),
)

# Besides Identity, the property that also names the object in the cmdlet's output.
_NAME_PROPERTIES = {"gateway": "Fqdn", "site": "NetworkSiteID", "region": "NetworkRegionID",
                    "subnet": "SubnetID", "sba": "Fqdn", "trusted_ip": "IPAddress", "civic_address": "CivicAddressId",
                    "lis_location": "LocationId", "lis_subnet": "Subnet", "resource_account": "UserPrincipalName"}
_TAGGED = set(model.GLOBAL_KINDS)
# Printed names that differ from the parameter names: Get-CsOnlinePSTNGateway spells this one
# "Outbund..." (newer modules add the right spelling beside it, with the same value).
# Members Teams fills in (ids) or another cmdlet sets (a resource account's number) are printed too.
_PRINTED_ALIASES = {"gateway": {"OutbundTeamsNumberTranslationRules": "outbound_teams_number_translation_rules"},
                    "civic_address": {"DefaultLocationId": "default_location_id"},
                    "resource_account": {"ObjectId": "object_id", "PhoneNumber": "phone_number"}}
# Get-CsOnlineUser: the policies a user is granted (null: the Global instance).
_USER_POLICIES = {"OnlineVoiceRoutingPolicy": "voice_routing_policy", "TenantDialPlan": "dial_plan",
                  "TeamsSurvivableBranchAppliancePolicy": "sba_policy",
                  "TeamsEmergencyCallRoutingPolicy": "emergency_call_routing_policy",
                  "CallingLineIdentity": "calling_line_identity", "TeamsCallingPolicy": "teams_calling_policy"}
_USER_PROPERTIES = {"UserPrincipalName": "upn", "LineUri": "phone_number",
                    "EnterpriseVoiceEnabled": "enterprise_voice_enabled", **_USER_POLICIES}


# ---------------------------------------------------------------- JSON with positions

@dataclass(frozen=True)
class Json:
    """A JSON value where it was written: `data` is a str, int, float, bool or None, a list of
    Json, or a list of (key, Json) pairs for an object; `path` is its JSONPath (`$[2].Name`)."""

    data: Any
    path: str
    position: SourcePosition

    def get(self, name: str) -> Json | None:
        """An object's property, its name matched ignoring case as PowerShell does."""
        return next((v for k, v in self.data if k.lower() == name.lower()), None)


class _Object(list):
    """A JSON object's (key, value) pairs; a list subclass so an empty object is not an empty array."""


def _shown(node: Json) -> str:
    if isinstance(node.data, _Object):
        return "an object"
    if isinstance(node.data, list):
        return "an array"
    return json.dumps(node.data)


class _JsonReader:
    """A JSON text read into `Json` nodes; a syntax error is a TenantError at its line and column."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self.object_paths: dict[SourcePosition, str] = {}  # where each object starts -> its JSON path

    def position(self, offset: int) -> SourcePosition:
        line = bisect_right(self.line_starts, offset)
        return SourcePosition(self.path, line, offset - self.line_starts[line - 1] + 1)

    def fail(self, offset: int, what: str) -> TenantError:
        return TenantError(f"not valid JSON: {what}", self.position(offset))

    def read(self) -> Json | None:
        """The document's value, or None for a file with no value (a Get- that found nothing)."""
        i = self._skip(0)
        if i == len(self.text):
            return None
        try:
            node, i = self._value(i, "$")
        except RecursionError:
            raise self.fail(0, "nested too deeply") from None
        i = self._skip(i)
        if i != len(self.text):
            raise self.fail(i, "more text after the value")
        return node

    def _skip(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in " \t\r\n":
            i += 1
        return i

    def _value(self, i: int, path: str) -> tuple[Json, int]:
        pos = self.position(i)
        c = self.text[i] if i < len(self.text) else ""
        if c == "{":
            return self._object(i, path, pos)
        if c == "[":
            return self._array(i, path, pos)
        if c == '"':
            try:
                s, end = json.decoder.scanstring(self.text, i + 1, True)
            except json.JSONDecodeError as err:
                raise self.fail(err.pos, err.msg.lower()) from None
            return Json(s, path, pos), end
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, i):
                return Json(value, path, pos), i + len(word)
        m = json.scanner.NUMBER_RE.match(self.text, i)
        if m is None:
            raise self.fail(i, "expected a value (text in double quotes, a number, true, false, null, [ or {)")
        whole, frac, exp = m.groups()
        number = float(whole + (frac or "") + (exp or "")) if frac or exp else int(whole)
        return Json(number, path, pos), m.end()

    def _array(self, i: int, path: str, pos: SourcePosition) -> tuple[Json, int]:
        items: list[Json] = []
        i = self._skip(i + 1)
        if self.text.startswith("]", i):
            return Json(items, path, pos), i + 1
        while True:
            item, i = self._value(self._skip(i), f"{path}[{len(items)}]")
            items.append(item)
            i = self._skip(i)
            if self.text.startswith("]", i):
                return Json(items, path, pos), i + 1
            if not self.text.startswith(",", i):
                raise self.fail(i, "expected ',' or ']' in an array")
            i += 1

    def _object(self, i: int, path: str, pos: SourcePosition) -> tuple[Json, int]:
        self.object_paths[pos] = path
        pairs = _Object()
        i = self._skip(i + 1)
        if self.text.startswith("}", i):
            return Json(pairs, path, pos), i + 1
        while True:
            if not self.text.startswith('"', i):
                raise self.fail(i, "expected a property name in double quotes")
            key, i = self._value(i, path)
            i = self._skip(i)
            if not self.text.startswith(":", i):
                raise self.fail(i, "expected ':' after a property name")
            value, i = self._value(self._skip(i + 1), f"{path}.{key.data}")
            pairs.append((key.data, value))
            i = self._skip(i)
            if self.text.startswith("}", i):
                return Json(pairs, path, pos), i + 1
            if not self.text.startswith(",", i):
                raise self.fail(i, "expected ',' or '}' in an object")
            i = self._skip(i + 1)


def read_export_text(path: Path) -> str:
    """The file's text: UTF-16 when it starts with a UTF-16 byte-order mark, else UTF-8."""
    try:
        with path.open("rb") as f:
            head = f.read(2)
    except OSError:
        head = b""  # read_source reports why the file cannot be read
    if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        data = path.read_bytes()
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise TenantError(f"not UTF-16 text: bytes at offset {err.start} {err.reason}",
                              SourcePosition(str(path), 1, 1)) from None
    return read_source(path, TenantError, "export")


# ---------------------------------------------------------------- values to fields

def _fail(node: Json, message: str) -> TenantError:
    return TenantError(f"{node.path}: {message}", node.position)


def _expect(node: Json, ok: bool, what: str) -> None:
    if not ok:
        raise _fail(node, f"must be {what}, not {_shown(node)}")


def _unwrapped(node: Json) -> Json:
    """Windows PowerShell 5.1 prints some arrays as {"value": [...], "Count": n}: the array."""
    if isinstance(node.data, _Object) and {k.lower() for k, _ in node.data} == {"value", "count"}:
        return node.get("value")
    return node


def _objects(node: Json | None, what: str) -> list[Json]:
    """The objects a cmdlet printed: an array of them, one object alone, or nothing."""
    if node is None or node.data is None:
        return []
    node = _unwrapped(node)
    _expect(node, isinstance(node.data, list), f"the {what} objects (an array or one object)")
    items = [node] if isinstance(node.data, _Object) else node.data
    for item in items:
        if isinstance(item.data, str):  # what ConvertTo-Json prints for an object below its -Depth
            raise _fail(item, f"must be a {what} object, not text: export with ConvertTo-Json -Depth 5")
        _expect(item, isinstance(item.data, _Object), f"a {what} object")
    return items


def _text(node: Json) -> str:
    _expect(node, isinstance(node.data, str), "text")
    return node.data


def _array(node: Json, what: str) -> list[Json]:
    """An array's items (null is an empty array)."""
    if node.data is None:
        return []
    node = _unwrapped(node)
    _expect(node, isinstance(node.data, list) and not isinstance(node.data, _Object), f"an array of {what}")
    return node.data


def _texts(node: Json) -> tuple[str, ...]:
    return tuple(_text(item) for item in _array(node, "text"))


def _failover_codes(node: Json) -> frozenset[int]:
    """FailoverResponseCodes as the cmdlet prints it: the comma text "408,503,504"."""
    try:
        return model.parse_failover_codes(_text(node))
    except model.InvalidValue as err:
        raise _fail(node, str(err)) from None


def _scalar(expected: type, nullable: bool) -> Callable[[Json], Any]:
    words = {str: "text", int: "a whole number", bool: "true or false"}

    def read(node: Json) -> Any:
        if node.data is None and nullable:
            return None
        holds = isinstance(node.data, expected) and (expected is bool or not isinstance(node.data, bool))
        _expect(node, holds, words[expected] + (" or null" if nullable else ""))
        return node.data
    return read


def _reader(annotation: Any) -> Callable[[Json], Any] | None:
    """How a field of this type is read from JSON (None: a type this module cannot read yet)."""
    if annotation == tuple[str, ...]:
        return _texts
    if annotation == frozenset[int]:
        return _failover_codes
    if annotation == tuple[model.NormalizationRule, ...]:
        return lambda node: tuple(_build(rule, model.NormalizationRule, _OBJECT_FIELDS[model.NormalizationRule])
                                  for rule in _objects(node, "normalization rule"))
    if annotation == tuple[model.EmergencyNumber, ...]:
        return lambda node: tuple(_build(n, model.EmergencyNumber, _OBJECT_FIELDS[model.EmergencyNumber])
                                  for n in _objects(node, "emergency number"))
    for t in (bool, int, str):
        if annotation is t or annotation == t | None:
            return _scalar(t, annotation is not t)
    return None


def _field_readers(cls: type, table: dict[str, str]) -> dict[str, tuple[str, Callable[[Json], Any]]]:
    hints = typing.get_type_hints(cls)
    readers = {printed: (name, _reader(hints[name])) for printed, name in table.items()}
    return {printed: (name, read) for printed, (name, read) in readers.items() if read is not None}


_OBJECT_FIELDS = {cls: _field_readers(cls, model.OBJECT_PS_PARAMETERS[cls])
                  for cls in (model.NormalizationRule, model.EmergencyNumber)}


def _build(obj: Json, cls: type, readers: dict[str, tuple[str, Callable[[Json], Any]]], **given: Any) -> Any:
    """The model object from the properties it models (the first spelling found wins); a value
    its rules refuse is an error at that value."""
    kwargs: dict[str, Any] = {"position": obj.position, **given}
    nodes: dict[str, Json] = {}
    for printed, (name, read) in readers.items():
        node = obj.get(printed)
        if node is None or name in nodes:
            continue
        kwargs[name] = read(node)
        nodes[name] = node
    try:
        return cls(**kwargs)
    except model.InvalidValue as err:
        node = nodes.get(err.field)
        raise (_fail(node, str(err)) if node else TenantError(f"{obj.path}: {err}", obj.position)) from None
    except TypeError:  # a required field is not there
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = [p for p, (name, _) in readers.items() if name in required and name not in kwargs]
        raise TenantError(f"{obj.path}: needs {', '.join(missing)}", obj.position) from None


# ---------------------------------------------------------------- the loader

def _identity(obj: Json, kind: str) -> str:
    node = obj.get("Identity") or (obj.get(_NAME_PROPERTIES[kind]) if kind in _NAME_PROPERTIES else None)
    if node is None:
        raise TenantError(f"{obj.path}: has no Identity", obj.position)
    name = _text(node)
    return strip_tag(name) if kind in _TAGGED else name


# kind -> {printed property: (field, reader)}: what is read of each exported kind.
KIND_READERS = {
    f.kind: _field_readers(model.KIND_CLASSES[f.kind], model.PS_PARAMETERS[f.kind] | _PRINTED_ALIASES.get(f.kind, {}))
    for f in EXPORT_FILES if f.kind in model.KIND_CLASSES}


def _add(tenant: model.Tenant, kind: str, obj: Any, node: Json, file: ExportFile) -> None:
    existing = tenant.find(kind, obj.name)
    if existing is not None and existing.position is not None:
        raise _fail(node, f"{file.name} has {obj.name!r} twice (names ignore case); "
                          f"the first is at {existing.position}")
    tenant.add(kind, obj)


def _usages(tenant: model.Tenant, items: list[Json]) -> None:
    usages: list[str] = []
    for item in items:
        node = item.get("Usage")
        for usage in [] if node is None else _array(node, "PSTN usage names"):
            name = _text(usage)
            if name.lower() in (u.lower() for u in usages):
                raise _fail(usage, f"PSTN usage {name!r} is listed twice")
            usages.append(name)
    tenant.usages = tuple(usages)


def _policy_name(node: Json) -> str | None:
    """A user's policy as Get-CsOnlineUser prints it: a name, or an object with a Name; null
    (or Global) is the Global instance."""
    if isinstance(node.data, _Object):
        name_node = node.get("Name")
        if name_node is None:
            raise _fail(node, "a policy object needs a Name")
        node = name_node
    name = _scalar(str, True)(node)
    name = None if name is None else strip_tag(name)
    return None if name is None or name.lower() == model.GLOBAL.lower() else name


def _line_uri(node: Json) -> str | None:
    uri = _scalar(str, True)(node)
    if uri is None or not uri.strip():
        return None
    return uri[4:] if uri[:4].lower() == "tel:" else uri


# Get-CsOnlineApplicationInstance prints the number as a tel: URI, as Get-CsOnlineUser its LineUri.
KIND_READERS["resource_account"]["PhoneNumber"] = ("phone_number", _line_uri)

_USER_READERS = _field_readers(model.User, _USER_PROPERTIES) | {
    "LineUri": ("phone_number", _line_uri),
    **{printed: (name, _policy_name) for printed, name in _USER_POLICIES.items()}}


def _user(item: Json) -> model.User:
    user = _build(item, model.User, _USER_READERS)
    if user.phone_number is not None:
        # A Get-CsOnlineUser LineUri does not say the number's type; numbers.json does.
        user = replace(user, phone_number_type="DirectRouting")
    return user


_NUMBER_PROPERTIES = {"NumberType": "phone_number_type", "NetworkSiteId": "network_site", "LocationId": "location_id"}


def _domains(tenant: model.Tenant, items: list[Json]) -> None:
    """Get-CsTenant: the tenant's verified domains (`VerifiedDomains`, objects with a Name, or
    names), else its SIP domains (`SipDomain`)."""
    domains: list[str] = []
    for item in items:
        node = item.get("VerifiedDomains") or item.get("SipDomain")
        for entry in [] if node is None else _array(node, "domains"):
            name_node = entry.get("Name") if isinstance(entry.data, _Object) else entry
            if name_node is None:
                raise _fail(entry, "a verified domain needs a Name")
            name = _text(name_node).lower().rstrip(".")
            problem = model.domain_problem(name)
            if problem is not None:
                raise _fail(name_node, problem)
            if name not in domains:
                domains.append(name)
    tenant.domains = tuple(domains)


def _numbers(tenant: model.Tenant, items: list[Json]) -> None:
    """Get-CsPhoneNumberAssignment: the type, network site and location of each user's number."""
    by_number = {u.phone_number.lower(): u for u in tenant.users.values() if u.phone_number}
    for item in items:
        number_node = item.get("TelephoneNumber")
        if number_node is None:
            raise TenantError(f"{item.path}: has no TelephoneNumber", item.position)
        user = by_number.get(_text(number_node).lower())
        if user is None:  # a number of the inventory assigned to no user in users.json
            continue
        nodes = {name: node for printed, name in _NUMBER_PROPERTIES.items() if (node := item.get(printed))}
        try:
            user = replace(user, **{name: _scalar(str, True)(node) for name, node in nodes.items()})
        except model.InvalidValue as err:
            raise _fail(nodes[err.field], str(err)) from None
        tenant.add("user", user)


def load_export_with_warnings(folder: str | Path) -> tuple[model.Tenant, list[TenantWarning]]:
    """The tenant in an export folder and warnings about files in it that drlab does not read."""
    folder = Path(folder)
    try:
        files = {p.name.lower(): p for p in sorted(folder.iterdir(), reverse=True)}  # the first spelling wins
    except OSError as err:
        raise TenantError(f"{folder}: cannot read export folder: {err.strerror}") from None
    known = {f.name for f in EXPORT_FILES}
    warnings = [TenantWarning(f"{path}: not read (drlab reads {', '.join(sorted(known))})")
                for name, path in sorted(files.items()) if name.endswith(".json") and name not in known]
    missing = [f for f in EXPORT_FILES if f.needed and f.name not in files]
    if missing:
        raise TenantError(f"{folder}: no {', '.join(f.name for f in missing)} in the export folder; routing needs "
                          f"{'it' if len(missing) == 1 else 'them'} (" + "; ".join(
                              f"{f.cmdlet} | ConvertTo-Json -Depth 5 | Out-File {f.name}" for f in missing) + ")")
    tenant = model.Tenant()
    json_paths: dict[SourcePosition, str] = {}  # an object's position -> its JSON path, for validate's errors
    for file in EXPORT_FILES:
        path = files.get(file.name)
        if path is None:
            continue
        reader = _JsonReader(read_export_text(path), str(path))
        items = _objects(reader.read(), file.cmdlet)
        json_paths.update(reader.object_paths)
        if file.kind == "usage":
            _usages(tenant, items)
        elif file.kind == "domain":
            _domains(tenant, items)
        elif file.kind == "number":
            _numbers(tenant, items)
        elif file.kind == "user":
            for item in items:
                _add(tenant, "user", _user(item), item, file)
        else:
            cls = model.KIND_CLASSES[file.kind]
            identity_field = model.IDENTITY_FIELD.get(file.kind, "name")
            for item in items:
                obj = _build(item, cls, KIND_READERS[file.kind], **{identity_field: _identity(item, file.kind)})
                _add(tenant, file.kind, obj, item, file)
    try:
        tenant.validate()
    except TenantError as err:
        path = json_paths.get(err.position)
        raise TenantError(f"{path}: {err.message}" if path else err.message, err.position) from None
    return tenant, warnings


def load_export(folder: str | Path) -> model.Tenant:
    """Load an export folder; raises TenantError (`FILE:LINE:COL: $.path: message`)."""
    return load_export_with_warnings(folder)[0]
