"""A folder of `Get-Cs* | ConvertTo-Json -Depth 5 | Out-File` files loads as the tenant it shows."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.scenario.loader import parse_scenario
from simulator.tenant import export_loader, model
from simulator.tenant.cli import load_tenant, load_tenant_with_warnings
from simulator.tenant.errors import TenantError
from simulator.tenant.export_loader import EXPORT_FILES, load_export, load_export_with_warnings
from simulator.tenant.routing import select_route

ROOT = Path(__file__).resolve().parents[2]

GATEWAY = {"Identity": "sbc1.contoso.com", "Fqdn": "sbc1.contoso.com", "SipSignalingPort": 5061,
           "Enabled": True, "FailoverResponseCodes": "408,503,504", "FailoverTimeSeconds": 10,
           "CodecPriority": "SILKWB,SILKNB,PCMU,PCMA", "InboundPstnNumberTranslationRules": []}
ROUTE = {"Identity": "US", "Priority": 1, "NumberPattern": r"^\+1(\d{10})$", "OnlinePstnUsages": ["US"],
         "OnlinePstnGatewayList": ["sbc1.contoso.com"], "Name": "US", "Description": None}
POLICY = {"Identity": "Tag:US Only", "OnlinePstnUsages": ["US"], "RouteType": "BYOT", "Description": None}
USER = {"Identity": "5f0b1c2e-1a41-4c55-9a0e-3d1f6b2a0101", "UserPrincipalName": "alice@contoso.com",
        "LineUri": "tel:+14255550101", "EnterpriseVoiceEnabled": True, "OnlineVoiceRoutingPolicy": "US Only",
        "TenantDialPlan": None, "FeatureTypes": ["Teams", "PhoneSystem"]}
MINIMAL = {"usages.json": {"Identity": "Global", "Usage": ["US"]}, "gateways.json": GATEWAY,
           "routes.json": [ROUTE], "policies.json": [POLICY], "users.json": USER}


def write_export(folder: Path, files: dict[str, object | str | bytes]) -> Path:
    """The minimal routable export with `files` replacing (or adding) files: an object is printed
    as ConvertTo-Json would, text is written as UTF-8, bytes as they are, None removes the file."""
    folder.mkdir(exist_ok=True)
    for name, content in (MINIMAL | files).items():
        if content is None:
            continue
        if isinstance(content, bytes):
            data = content
        else:
            data = (content if isinstance(content, str) else json.dumps(content, indent=2)).encode()
        (folder / name).write_bytes(data)
    return folder


def test_the_minimal_export_routes_a_call(tmp_path) -> None:
    tenant = load_export(write_export(tmp_path / "export", {}))
    d = select_route(tenant, "alice@contoso.com", "+13125550100")
    assert d.gateways == ("sbc1.contoso.com",)
    assert tenant.user("alice@contoso.com").voice_routing_policy == "US Only"


# ---------------------------------------------------------------- shapes the cmdlets print

def test_one_item_prints_as_an_object_and_many_as_an_array(tmp_path) -> None:
    one = load_export(write_export(tmp_path / "one", {"routes.json": ROUTE}))
    many = load_export(write_export(tmp_path / "many", {"routes.json": [ROUTE]}))
    assert one == many and list(one.voice_routes) == ["us"]


def test_an_empty_file_is_a_cmdlet_that_found_nothing(tmp_path) -> None:
    tenant = load_export(write_export(tmp_path / "e", {"sites.json": "", "dialplans.json": "\r\n"}))
    assert tenant.sites == {}


@pytest.mark.parametrize("encoding, bom", [
    ("utf-8", codecs.BOM_UTF8),  # Windows PowerShell 5.1: Out-File -Encoding utf8
    ("utf-16-le", codecs.BOM_UTF16_LE),  # Windows PowerShell 5.1: Out-File's default
    ("utf-16-be", codecs.BOM_UTF16_BE),  # Out-File -Encoding BigEndianUnicode
    ("utf-8", b""),  # PowerShell 7: utf8NoBOM
])
def test_files_are_read_in_the_encodings_out_file_writes(tmp_path, encoding, bom) -> None:
    text = json.dumps({**GATEWAY, "Description": "Zürich SBC"}, indent=4)
    tenant = load_export(write_export(tmp_path / "x", {"gateways.json": bom + text.encode(encoding)}))
    assert tenant.find("gateway", "sbc1.contoso.com").description == "Zürich SBC"


def test_policy_identities_drop_their_tag_and_global_replaces_the_default(tmp_path) -> None:
    policies = [{"Identity": "Global", "OnlinePstnUsages": ["US"]}, POLICY]
    tenant = load_export(write_export(tmp_path / "p", {"policies.json": policies}))
    assert sorted(p.name for p in tenant.voice_routing_policies.values()) == ["Global", "US Only"]
    assert tenant.find("voice_routing_policy", "Global").online_pstn_usages == ("US",)


@pytest.mark.parametrize("printed, expected", [
    ("US Only", "US Only"),
    ("Tag:US Only", "US Only"),
    ({"Name": "US Only", "Authority": "Tenant"}, "US Only"),  # older modules print a reference object
    (None, None),  # null: the Global instance
    ("Global", None),
])
def test_a_users_policy_is_a_name_an_object_with_a_name_or_null(tmp_path, printed, expected) -> None:
    tenant = load_export(write_export(tmp_path / "u", {"users.json": {**USER, "OnlineVoiceRoutingPolicy": printed}}))
    assert tenant.user("alice@contoso.com").voice_routing_policy == expected


def test_property_names_match_ignoring_case_and_unmodelled_ones_are_ignored(tmp_path) -> None:
    user = {"userprincipalname": "alice@contoso.com", "LineURI": "tel:+14255550101;ext=101",
            "EnterpriseVoiceEnabled": True, "TeamsMeetingPolicy": {"Name": "Default"}, "Anything": [1, {"x": 2}]}
    alice = load_export(write_export(tmp_path / "c", {"users.json": [user]})).user("alice@contoso.com")
    assert (alice.phone_number, alice.phone_number_type, alice.enterprise_voice_enabled) == (
        "+14255550101;ext=101", "DirectRouting", True)


def test_the_gateways_misspelt_outbund_property_is_read(tmp_path) -> None:
    rules = [{"Identity": "StripPlus1", "Pattern": r"^\+1(\d{10})$", "Translation": "$1"}]
    gateway = {**GATEWAY, "OutbundTeamsNumberTranslationRules": ["StripPlus1"]}
    tenant = load_export(write_export(tmp_path / "g", {"gateways.json": gateway, "translation-rules.json": rules}))
    assert tenant.find("gateway", "sbc1.contoso.com").outbound_teams_number_translation_rules == ("StripPlus1",)


def test_an_array_windows_powershell_wraps_in_value_and_count_is_read(tmp_path) -> None:
    policy = {**POLICY, "OnlinePstnUsages": {"value": ["US"], "Count": 1}}
    tenant = load_export(write_export(tmp_path / "v", {"policies.json": policy}))
    assert tenant.find("voice_routing_policy", "US Only").online_pstn_usages == ("US",)


def test_dial_plan_rules_and_emergency_numbers_are_nested_objects(tmp_path) -> None:
    plans = {"Identity": "Tag:Redmond", "SimpleName": "Redmond", "NormalizationRules": [
        {"Name": "Ext", "Pattern": r"^(\d{4})$", "Translation": "+1425555$1", "IsInternalExtension": True,
         "Description": ""}]}
    emergency = [{"Identity": "Tag:US911", "AllowEnhancedEmergencyServices": True, "EmergencyNumbers": [
        {"EmergencyDialString": "911", "EmergencyDialMask": "933", "OnlinePSTNUsage": "US"}]}]
    tenant = load_export(write_export(tmp_path / "n", {"dialplans.json": plans,
                                                       "emergency-routing-policies.json": emergency}))
    assert tenant.find("dial_plan", "Redmond").normalization_rules[0].is_internal_extension is True
    number = tenant.find("emergency_call_routing_policy", "US911").emergency_numbers[0]
    assert (number.dial_string, number.dial_mask, number.online_pstn_usage) == ("911", "933", "US")


def test_a_numbers_type_and_network_site_come_from_get_csphonenumberassignment(tmp_path) -> None:
    sites = [{"Identity": "Redmond", "NetworkSiteID": "Redmond"}]
    numbers = [{"TelephoneNumber": "+14255550101", "NumberType": "DirectRouting", "NetworkSiteId": "Redmond",
                "LocationId": None, "AssignedPstnTargetId": USER["Identity"]},
               {"TelephoneNumber": "+14255550199", "NumberType": "DirectRouting", "AssignedPstnTargetId": None}]
    alice = load_export(write_export(tmp_path / "s", {"sites.json": sites, "numbers.json": numbers})
                        ).user("alice@contoso.com")
    assert (alice.network_site, alice.phone_number_type) == ("Redmond", "DirectRouting")


def test_a_json_file_drlab_does_not_read_is_a_warning(tmp_path) -> None:
    folder = write_export(tmp_path / "w", {"calling-line-identities.json": "[]", "notes.txt": "hi"})
    _, warnings = load_export_with_warnings(folder)
    assert [w.message.split(":")[0] for w in warnings] == [str(folder / "calling-line-identities.json")]


def test_conventional_file_names_match_ignoring_case(tmp_path) -> None:
    folder = write_export(tmp_path / "k", {"gateways.json": None, "Gateways.JSON": GATEWAY})
    assert list(load_export(folder).gateways) == ["sbc1.contoso.com"]


# ---------------------------------------------------------------- errors

ERRORS = [
    # (what, files, expected error text)
    ("a known property of the wrong type", {"routes.json": [ROUTE, {**ROUTE, "Identity": "B",
                                                                     "OnlinePstnGatewayList": [5]}]},
     "routes.json:23:7: $[1].OnlinePstnGatewayList[0]: must be text, not 5"),
    ("a number given as text", {"gateways.json": {**GATEWAY, "SipSignalingPort": "5061"}},
     'gateways.json:4:23: $.SipSignalingPort: must be a whole number, not "5061"'),
    ("a boolean given as text", {"gateways.json": [{**GATEWAY, "Enabled": "True"}]},
     '$[0].Enabled: must be true or false, not "True"'),
    ("the model's own rule, in its own words", {"gateways.json": {**GATEWAY, "SipSignalingPort": 70000}},
     "gateways.json:4:23: $.SipSignalingPort: sip_signaling_port (-SipSignalingPort) must be a whole number "
     "from 1 to 65535, not 70000"),
    ("failover codes that are not codes", {"gateways.json": {**GATEWAY, "FailoverResponseCodes": "408,abc"}},
     '$.FailoverResponseCodes: failover_response_codes (-FailoverResponseCodes) is a comma list'),
    ("a rule deep in a dial plan", {"dialplans.json": [{"Identity": "Tag:X", "NormalizationRules": [
        {"Name": "Bad", "Pattern": "^(\\d{4}$", "Translation": "+1$1"}]}]},
     "dialplans.json:7:20: $[0].NormalizationRules[0].Pattern: pattern (-Pattern): bad regular expression"),
    ("an array where an object belongs", {"users.json": [[USER]]},
     "users.json:2:3: $[0]: must be a Get-CsOnlineUser object, not an array"),
    ("text where the objects belong", {"policies.json": '"US Only"'},
     'policies.json:1:1: $: must be the Get-CsOnlineVoiceRoutingPolicy objects (an array or one object), '
     'not "US Only"'),
    ("an object without its Identity", {"routes.json": {"Priority": 1}}, "routes.json:1:1: $: has no Identity"),
    ("a user without a UPN", {"users.json": {"LineUri": "tel:+14255550101"}}, "$: needs UserPrincipalName"),
    ("a line URI that is no number", {"users.json": {**USER, "LineUri": "tel:alice"}},
     "users.json:4:14: $.LineUri: phone_number (-PhoneNumber) must be an E.164 number"),
    ("the same object twice", {"routes.json": [ROUTE, {**ROUTE, "Identity": "us"}]},
     "$[1]: routes.json has 'us' twice (names ignore case); the first is at "),
    ("a usage listed twice", {"usages.json": {"Identity": "Global", "Usage": ["US", "us"]}},
     "usages.json:5:5: $.Usage[1]: PSTN usage 'us' is listed twice"),
    ("a reference to an object the export lacks", {"routes.json": {**ROUTE, "OnlinePstnGatewayList": ["sbc9.x"]}},
     "routes.json:1:1: $: voice route 'US' names unknown PSTN gateway 'sbc9.x'"),
    ("a user's unknown policy", {"users.json": [USER, {**USER, "UserPrincipalName": "bob@contoso.com",
                                                       "LineUri": None, "TenantDialPlan": "Tag:Paris"}]},
     "users.json:14:3: $[1]: user 'bob@contoso.com' dial plan names unknown tenant dial plan 'Paris'"),
    ("an emergency number's unknown usage", {"emergency-routing-policies.json": {"Identity": "Tag:E", "EmergencyNumbers": [
        {"EmergencyDialString": "911", "OnlinePSTNUsage": "Nowhere"}]}},
     "emergency-routing-policies.json:4:5: $.EmergencyNumbers[0]: emergency number '911' of 'E' names unknown "
     "PSTN usage 'Nowhere'"),
    ("a resource account's number that is no number", {"resource-accounts.json": {
        "UserPrincipalName": "aa@contoso.com", "ObjectId": "ra-1", "PhoneNumber": "tel:aa"}},
     "resource-accounts.json:4:18: $.PhoneNumber: phone_number must be an E.164 number"),
    ("a caller ID policy naming an unknown resource account", {"caller-id-policies.json": {
        "Identity": "Tag:AA", "CallingIDSubstitute": "Resource", "ResourceAccount": "ra-9"}},
     "caller-id-policies.json:1:1: $: caller ID policy 'AA' names unknown resource account 'ra-9'"),
    ("a LIS subnet that is no address", {"lis-subnets.json": {"Subnet": "10.20.3", "LocationId": "x"}},
     "lis-subnets.json:1:1: $: subnet must be an IPv4 or IPv6 address, not '10.20.3'"),
    ("rules exported without -Depth 5", {"dialplans.json": {"Identity": "Tag:X", "NormalizationRules": [
        "Description=;Pattern=^(\\d{4})$;Translation=+1425555$1;Name=Ext;IsInternalExtension=True"]}},
     "dialplans.json:4:5: $.NormalizationRules[0]: must be a normalization rule object, not text: "
     "export with ConvertTo-Json -Depth 5"),
    ("a syntax error", {"gateways.json": '[\n  {"Identity": "a",}\n]'},
     "gateways.json:2:20: not valid JSON: expected a property name in double quotes"),
    ("an unterminated string", {"gateways.json": '{"Identity": "a'},
     "gateways.json:1:14: not valid JSON: unterminated string"),
    ("a second value", {"gateways.json": "{} {}"}, "gateways.json:1:4: not valid JSON: more text after the value"),
    ("bytes that are not UTF-8", {"gateways.json": b'{"Identity": "\xff"}'}, "gateways.json:1:15: not UTF-8 text"),
    ("a file routing needs", {"gateways.json": None},
     "no gateways.json in the export folder; routing needs it (Get-CsOnlinePSTNGateway | ConvertTo-Json "
     "-Depth 5 | Out-File gateways.json)"),
]


@pytest.mark.parametrize("files, expected", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_input_names_the_file_and_the_json_path(tmp_path, files, expected) -> None:
    folder = write_export(tmp_path / "bad", files)
    with pytest.raises(TenantError) as err:
        load_export(folder)
    assert expected in str(err.value)
    assert str(err.value).startswith(str(folder))


def test_needed_and_optional_files_are_documented() -> None:
    doc = (ROOT / "docs" / "tenant-export.md").read_text(encoding="utf-8")
    for f in EXPORT_FILES:
        assert f"`{f.name}`" in doc and f.cmdlet in doc
    assert {f.name for f in EXPORT_FILES if f.needed} == {
        "usages.json", "gateways.json", "routes.json", "policies.json", "users.json"}


@pytest.mark.parametrize("kind", sorted(export_loader.KIND_READERS))
def test_every_parameter_of_an_exported_kind_is_read(kind) -> None:
    read = {name for name, _ in export_loader.KIND_READERS[kind].values()}
    assert set(model.PS_PARAMETERS[kind].values()) <= read


# ---------------------------------------------------------------- where a tenant path is loaded

def test_a_folder_given_as_the_tenant_is_read_as_an_export() -> None:
    tenant, warnings = load_tenant_with_warnings(str(ROOT / "examples" / "contoso-export"))
    assert warnings == [] and load_tenant(str(ROOT / "examples" / "contoso-export")) == tenant
    assert len(tenant.gateways) == 4


def test_drlab_route_reads_an_export_folder(tmp_path) -> None:
    folder = write_export(tmp_path / "cli", {})
    ok = subprocess.run([sys.executable, "-m", "simulator.cli", "route", "--tenant", str(folder),
                         "--user", "alice@contoso.com", "--dial", "+13125550100", "--json"],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0 and json.loads(ok.stdout)["gateways"] == ["sbc1.contoso.com"]
    (folder / "gateways.json").write_text('{"Identity": 5}', encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "simulator.cli", "route", "--tenant", str(folder),
                          "--user", "alice@contoso.com", "--dial", "+13125550100"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.strip() == f"{folder}/gateways.json:1:14: $.Identity: must be text, not 5"


def test_a_scenario_may_name_an_export_folder_as_its_tenant(tmp_path) -> None:
    scenario = tmp_path / "s.yaml"
    text = (f"lab: {ROOT / 'examples' / 'labs' / 'contoso.yaml'}\ntenant: {ROOT / 'examples' / 'contoso-export'}\n"
            "steps:\n  - wait: 1s\n")
    assert parse_scenario(text, str(scenario)).tenant == str(ROOT / "examples" / "contoso-export")


def test_caller_id_and_emergency_location_objects_are_read(tmp_path) -> None:
    folder = write_export(tmp_path / "e", {
        "users.json": {**USER, "CallingLineIdentity": {"Name": "Tag:AA"}},
        "resource-accounts.json": {"UserPrincipalName": "aa@contoso.com", "ObjectId": "ra-1",
                                   "PhoneNumber": "tel:+14255550150", "TenantId": "t"},
        "caller-id-policies.json": [{"Identity": "Global"}, {"Identity": "Tag:AA", "CallingIDSubstitute": "Resource",
                                                             "ResourceAccount": "ra-1"}],
        "civic-addresses.json": {"CivicAddressId": "addr", "DefaultLocationId": "addr-d", "CompanyName": "Contoso",
                                 "CountryOrRegion": "US", "City": "Seattle", "NumberOfVoiceUsers": 1},
        "lis-locations.json": {"LocationId": "floor-3", "CivicAddressId": "addr", "Location": "Floor 3"},
        "lis-subnets.json": {"Subnet": "10.20.3.0", "LocationId": "floor-3", "Type": "Subnet"},
        "trusted-ips.json": {"Identity": "198.51.100.10", "IPAddress": "198.51.100.10", "MaskBits": 32}})
    tenant = load_export(folder)
    assert tenant.resource_account("ra-1").phone_number == "+14255550150"
    assert select_route(tenant, "alice@contoso.com", "4255550100").caller_id.number == "+14255550150"
    assert tenant.find("lis_subnet", "10.20.3.0").location_id == "floor-3"
    assert tenant.find("civic_address", "addr").default_location_id == "addr-d"
    assert tenant.find("trusted_ip", "198.51.100.10").mask_bits == 32
