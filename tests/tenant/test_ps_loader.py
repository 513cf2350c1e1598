"""Teams runbooks run as Teams would run them: each cmdlet's effect, and errors at the line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.tenant.errors import SourcePosition, TenantError
from simulator.tenant.model import POLICY_KINDS, PS_PARAMETERS, Tenant, User
from simulator.tenant.ps_loader import (
    load_powershell,
    load_powershell_with_warnings,
    run_powershell,
)

BASE = """\
Set-CsOnlinePstnUsage -Identity Global -Usage @{Add="US and Canada"}
Set-CsOnlinePstnUsage -Identity Global -Usage @{Add="International"}
New-CsOnlinePSTNGateway -Fqdn sbc1.contoso.biz -SipSignalingPort 5061 -Enabled $true
New-CsOnlinePSTNGateway -Fqdn sbc2.contoso.biz -SipSignalingPort 5061 -Enabled $true
"""
BASE_LINES = BASE.count("\n")


def state_of(script: str, base: bool = True) -> Tenant:
    state, _ = run_powershell((BASE if base else "") + script, "t.ps1")
    return state


def error_of(script: str, base: bool = True) -> TenantError:
    with pytest.raises(TenantError) as caught:
        run_powershell((BASE if base else "") + script, "t.ps1")
    return caught.value


def fields(state: Tenant, kind: str, name: str) -> dict:
    """The parameters of an object that differ from a fresh one's, by PowerShell name (as Get-Cs* shows)."""
    obj = state.find(kind, name)
    assert obj is not None, f"no {kind} {name}"
    fresh = dataclasses.fields(obj)
    defaults = {f.name: f.default for f in fresh if f.default is not dataclasses.MISSING}
    out = {}
    for ps, field in PS_PARAMETERS[kind].items():
        value = getattr(obj, field)
        if ps != "SipSignallingPort" and (field not in defaults or value != defaults[field]):
            out[ps] = list(value) if isinstance(value, tuple) else value
    return out


def grants(state: Tenant, upn: str) -> dict:
    user = state.users[upn]
    return {kind: getattr(user, kind) for kind in POLICY_KINDS if getattr(user, kind) is not None}


# ---------------------------------------------------------------- PSTN usages

USAGE_TABLE = [
    ("add appends in order", '@{Add="A"}\nSet-CsOnlinePstnUsage -Usage @{Add="B","C"}', ["A", "B", "C"]),
    ("add keys are case-insensitive", "@{aDD='A'}", ["A"]),
    ("remove takes one out", '@{Add="A","B","C"}\nSet-CsOnlinePstnUsage Global -Usage @{Remove="B"}', ["A", "C"]),
    ("remove and add in one change: remove first", '@{Add="A","B"}\nSet-CsOnlinePstnUsage -Usage @{Remove="A"; Add="A"}',
     ["B", "A"]),
    ("replace sets the whole list", '@{Add="A","B"}\nSet-CsOnlinePstnUsage -Usage @{Replace="C","A"}', ["C", "A"]),
    ("replace wins over add", '@{Add="A"}\nSet-CsOnlinePstnUsage -Usage @{Replace="B"; Add="C"}', ["B"]),
    ("a plain list replaces", '@{Add="A"}\nSet-CsOnlinePstnUsage -Usage "X", "Y"', ["X", "Y"]),
    ("adding a usage twice keeps one", '@{Add="A"}\nSet-CsOnlinePstnUsage -Usage @{Add="a"}', ["A"]),
]


@pytest.mark.parametrize(("what", "change", "expected"), USAGE_TABLE, ids=[r[0] for r in USAGE_TABLE])
def test_pstn_usage_list_after(what: str, change: str, expected: list[str]) -> None:
    assert state_of("Set-CsOnlinePstnUsage -Identity Global -Usage " + change, base=False).usages == tuple(expected)


def test_removing_a_usage_a_route_uses_is_an_error_at_the_value() -> None:
    error = error_of('New-CsOnlineVoiceRoute R1 -NumberPattern ".*" -OnlinePstnUsages "US and Canada"\n'
                     'Set-CsOnlinePstnUsage -Identity Global -Usage @{Remove = "US and Canada"}')
    assert error.position == SourcePosition("t.ps1", BASE_LINES + 2, 58)
    assert "still used by voice route 'R1'" in error.message


def test_removing_a_usage_not_in_the_list_is_a_warning() -> None:
    _, warnings = run_powershell('Set-CsOnlinePstnUsage -Usage @{Remove="Nope"}', "t.ps1")
    assert [str(w) for w in warnings] == ["t.ps1:1:39: warning: PSTN usage 'Nope' is not in the list; nothing removed"]


# ---------------------------------------------------------------- gateways

def test_gateway_parameters_are_kept_with_their_types() -> None:
    state = state_of("""
New-CsOnlinePSTNGateway -Identity sbc3.contoso.biz -SipSignalingPort 5067 -MaxConcurrentSessions 100 `
    -FailoverResponseCodes "408,503,504" -FailoverTimeSeconds 20 -ForwardPai $true -MediaBypass:$true `
    -BypassMode onlyforlocalusers -SendSipOptions $false
Set-CsOnlinePSTNGateway -Identity sbc3.contoso.biz -Enabled $true -MaxConcurrentSessions $null
""")
    assert fields(state, "gateway", "SBC3.contoso.biz") == {
        "SipSignalingPort": 5067,  # MaxConcurrentSessions $null and the default failover codes: as fresh
        "FailoverTimeSeconds": 20, "ForwardPai": True, "MediaBypass": True, "BypassMode": "OnlyForLocalUsers",
        "SendSipOptions": False, "Enabled": True,
    }


def test_gateway_port_takes_the_older_spelling_too() -> None:
    state = state_of("New-CsOnlinePSTNGateway -Fqdn sbc9.contoso.biz -SipSignallingPort 5068", base=False)
    assert fields(state, "gateway", "sbc9.contoso.biz") == {"SipSignalingPort": 5068}


def test_gateway_translation_rules_in_order() -> None:
    state = state_of("""
New-CsTeamsTranslationRule -Identity AddPlus1 -Pattern '^(\\d{10})$' -Translation '+1$1'
New-CsTeamsTranslationRule -Identity StripPlus1 -Pattern '^\\+1(\\d{10})$' -Translation '$1'
Set-CsOnlinePSTNGateway -Identity sbc1.contoso.biz -InboundTeamsNumberTranslationRules AddPlus1 `
    -OutboundPstnNumberTranslationRules @{Add='StripPlus1'}
Set-CsOnlinePSTNGateway -Identity sbc1.contoso.biz -InboundTeamsNumberTranslationRules @{Add='StripPlus1'}
""")
    gateway = fields(state, "gateway", "sbc1.contoso.biz")
    assert gateway["InboundTeamsNumberTranslationRules"] == ["AddPlus1", "StripPlus1"]
    assert gateway["OutboundPstnNumberTranslationRules"] == ["StripPlus1"]


# ---------------------------------------------------------------- routes and policies

def test_route_from_the_documented_example() -> None:
    state = state_of('New-CsOnlineVoiceRoute -Identity "Redmond 1" -NumberPattern "^\\+1(425|206)(\\d{7})$" '
                     '-OnlinePstnGatewayList sbc1.contoso.biz, sbc2.contoso.biz -Priority 1 '
                     '-OnlinePstnUsages "US and Canada"')
    assert fields(state, "voice_route", "redmond 1") == {
        "NumberPattern": r"^\+1(425|206)(\d{7})$", "OnlinePstnGatewayList": ["sbc1.contoso.biz", "sbc2.contoso.biz"],
        "Priority": 1, "OnlinePstnUsages": ["US and Canada"]}


def test_omitted_route_priority_is_the_next_free_one() -> None:
    state = state_of("""
New-CsOnlineVoiceRoute R1 -NumberPattern 'a' -Priority 1 -OnlinePstnUsages "US and Canada"
New-CsOnlineVoiceRoute R3 -NumberPattern 'a' -Priority 3 -OnlinePstnUsages "US and Canada"
New-CsOnlineVoiceRoute R4 -NumberPattern 'a' -OnlinePstnUsages "US and Canada"
""")
    assert fields(state, "voice_route", "R4")["Priority"] == 4


def test_route_names_the_canonical_spelling_of_usages_and_gateways() -> None:
    state = state_of("New-CsOnlineVoiceRoute R -NumberPattern '.*' -OnlinePstnGatewayList SBC1.CONTOSO.BIZ "
                     "-OnlinePstnUsages 'us and canada'")
    route = fields(state, "voice_route", "R")
    assert (route["OnlinePstnGatewayList"], route["OnlinePstnUsages"]) == (["sbc1.contoso.biz"], ["US and Canada"])


POLICY_TABLE = [
    ("usages keep the order written", '"US and Canada", "International"', None, ["US and Canada", "International"]),
    ("replace reorders", '"US and Canada", "International"', '@{Replace="International","US and Canada"}',
     ["International", "US and Canada"]),
    ("add appends", '"International"', '@{Add="US and Canada"}', ["International", "US and Canada"]),
    ("remove drops", '@("US and Canada", "International")', '@{Remove="US and Canada"}', ["International"]),
    ("plain list on Set replaces", '"International"', '"US and Canada"', ["US and Canada"]),
]


@pytest.mark.parametrize(("what", "new", "change", "expected"), POLICY_TABLE, ids=[r[0] for r in POLICY_TABLE])
def test_voice_routing_policy_usages(what: str, new: str, change: str | None, expected: list[str]) -> None:
    script = f'New-CsOnlineVoiceRoutingPolicy "No Restrictions" -OnlinePstnUsages {new}\n'
    if change:
        script += f'Set-CsOnlineVoiceRoutingPolicy -Identity "Tag:No Restrictions" -OnlinePstnUsages {change}\n'
    assert fields(state_of(script), "voice_routing_policy", "No Restrictions")["OnlinePstnUsages"] == expected


def test_global_policy_exists_without_new() -> None:
    state = state_of('Set-CsOnlineVoiceRoutingPolicy -Identity Global -OnlinePstnUsages "International"')
    assert fields(state, "voice_routing_policy", "Global") == {"OnlinePstnUsages": ["International"]}


# ---------------------------------------------------------------- dial plans

RULES = """\
$nr1 = New-CsVoiceNormalizationRule -Parent Global -Name NR1 -Pattern '^(\\d{4})$' -Translation '+1425555$1' -InMemory
$nr2 = New-CsVoiceNormalizationRule -Identity Global/NR2 -Pattern '^(\\d{7})$' -Translation '+1425$1' -InMemory `
    -IsInternalExtension $true -Description "7 digits"
$nr3 = New-CsVoiceNormalizationRule -Parent Global -Name NR3 -InMemory
"""


def rule_names(state: Tenant, plan: str) -> list[str]:
    return [rule.name for rule in state.find("dial_plan", plan).normalization_rules]


DIAL_PLAN_TABLE = [
    ("new with a list keeps its order", "-NormalizationRules $nr2, $nr1", None, ["NR2", "NR1"]),
    ("new with add", "-NormalizationRules @{Add=$nr1}", None, ["NR1"]),
    ("set add appends", "-NormalizationRules @{Add=$nr1}", "@{add=$nr3}", ["NR1", "NR3"]),
    ("set add of two", "-NormalizationRules @{Add=$nr1}", "@{add=$nr3,$nr2}", ["NR1", "NR3", "NR2"]),
    ("set remove", "-NormalizationRules $nr1, $nr2, $nr3", "@{remove=$nr2}", ["NR1", "NR3"]),
    ("set replace", "-NormalizationRules $nr1, $nr2", "@{Replace=$nr3,$nr1}", ["NR3", "NR1"]),
    ("set with a plain list", "-NormalizationRules $nr1", "@($nr2, $nr3)", ["NR2", "NR3"]),
    ("empty list", "-NormalizationRules @()", None, []),
]


@pytest.mark.parametrize(("what", "new", "change", "expected"), DIAL_PLAN_TABLE, ids=[r[0] for r in DIAL_PLAN_TABLE])
def test_dial_plan_rules_order(what: str, new: str, change: str | None, expected: list[str]) -> None:
    script = RULES + f"New-CsTenantDialPlan -Identity RedmondDialPlan {new}\n"
    if change:
        script += f"Set-CsTenantDialPlan -Identity RedmondDialPlan -NormalizationRules {change}\n"
    assert rule_names(state_of(script, base=False), "RedmondDialPlan") == expected


def test_normalization_rule_fields_and_defaults() -> None:
    state = state_of(RULES + "Set-CsTenantDialPlan -Identity Global -NormalizationRules $nr2, $nr3", base=False)
    nr2, nr3 = state.find("dial_plan", "Global").normalization_rules
    assert (nr2.pattern, nr2.translation, nr2.is_internal_extension, nr2.description) == (
        r"^(\d{7})$", "+1425$1", True, "7 digits")
    # Documented defaults [S17].
    assert (nr3.pattern, nr3.translation, nr3.is_internal_extension) == (r"^(\d{11})$", "+$1", False)


def test_normalization_rule_without_in_memory_is_an_error() -> None:
    error = error_of("New-CsVoiceNormalizationRule -Parent Global -Name NR1 -Pattern 'x'", base=False)
    assert (error.position.line, error.position.column) == (1, 1)
    assert "-InMemory" in error.message


def test_splatted_normalization_rule() -> None:
    state = state_of("""\
$rule = @{ Parent = 'Global'; Name = 'Ext'; Pattern = '^(\\d{3})$'; Translation = '+14255551$1'; InMemory = $true }
$nr = New-CsVoiceNormalizationRule @rule
New-CsTenantDialPlan Seattle -NormalizationRules @{Add=$nr}
""", base=False)
    assert rule_names(state, "seattle") == ["Ext"]


# ---------------------------------------------------------------- users and grants

def test_grant_brings_the_user_in_and_null_removes_the_policy() -> None:
    state = state_of("""
New-CsOnlineVoiceRoutingPolicy "US Only" -OnlinePstnUsages "US and Canada"
Grant-CsOnlineVoiceRoutingPolicy -Identity alice@contoso.com -PolicyName "US Only"
Grant-CsOnlineVoiceRoutingPolicy -Identity bob@contoso.com -PolicyName "Tag:US Only"
Grant-CsOnlineVoiceRoutingPolicy -Identity bob@contoso.com -PolicyName $null
""")
    assert grants(state, "alice@contoso.com") == {"voice_routing_policy": "US Only"}
    assert grants(state, "bob@contoso.com") == {}


def test_grant_global_sets_the_tenant_default() -> None:
    state = state_of('New-CsOnlineVoiceRoutingPolicy "US Only" -OnlinePstnUsages "US and Canada"\n'
                     'Grant-CsOnlineVoiceRoutingPolicy -PolicyName "US Only" -Global')
    assert state.global_grants == {"voice_routing_policy": "US Only"}
    assert state.users == {}


def test_each_grant_cmdlet_sets_its_own_policy() -> None:
    state = state_of("""
$nr = New-CsVoiceNormalizationRule -Parent Global -Name NR1 -InMemory
New-CsTenantDialPlan Redmond -NormalizationRules $nr
New-CsTenantNetworkRegion -NetworkRegionID NA
New-CsTenantNetworkSite -NetworkSiteID Seattle -NetworkRegionID NA
New-CsTeamsSurvivableBranchAppliance -Fqdn sba1.contoso.com -Site Seattle
New-CsTeamsSurvivableBranchAppliancePolicy -Identity SEA -BranchApplianceFqdns "sba1.contoso.com"
Grant-CsTenantDialPlan -Identity carol@contoso.com -PolicyName Redmond
Grant-CsTeamsSurvivableBranchAppliancePolicy -PolicyName SEA -Identity carol@contoso.com
""")
    assert grants(state, "carol@contoso.com") == {"dial_plan": "Redmond", "sba_policy": "SEA"}


def test_sba_policy_fqdns_add_and_remove() -> None:
    state = state_of("""
New-CsTenantNetworkSite -NetworkSiteID Seattle
New-CsTeamsSurvivableBranchAppliance -Fqdn sba1.contoso.com -Site Seattle -Description "SBA 1"
New-CsTeamsSurvivableBranchAppliance -Fqdn sba2.contoso.com -Site Seattle
New-CsTeamsSurvivableBranchAppliancePolicy -Identity CPH -BranchApplianceFqdns "sba1.contoso.com","sba2.contoso.com"
Set-CsTeamsSurvivableBranchAppliancePolicy -Identity CPH -BranchApplianceFqdns @{remove="sba1.contoso.com"}
Set-CsTeamsSurvivableBranchAppliancePolicy -Identity Tag:CPH -BranchApplianceFqdns @{add="sba1.contoso.com"}
""")
    assert fields(state, "sba_policy", "CPH")["BranchApplianceFqdns"] == ["sba2.contoso.com", "sba1.contoso.com"]
    assert fields(state, "sba", "sba1.contoso.com") == {"Site": "Seattle", "Description": "SBA 1"}


def test_direct_routing_number_turns_enterprise_voice_on() -> None:
    state = state_of("""
New-CsTenantNetworkSite -NetworkSiteID Seattle
Set-CsPhoneNumberAssignment -Identity dave@contoso.com -PhoneNumber "+12065550100" -PhoneNumberType DirectRouting `
    -NetworkSiteId Seattle
Set-CsPhoneNumberAssignment -Identity erin@contoso.com -PhoneNumber +14255550101 -PhoneNumberType DirectRouting
Set-CsPhoneNumberAssignment -Identity frank@contoso.com -EnterpriseVoiceEnabled $true
""")
    dave, erin, frank = (state.users[u + "@contoso.com"] for u in ("dave", "erin", "frank"))
    assert (dave.phone_number, dave.enterprise_voice_enabled, dave.network_site) == ("+12065550100", True, "Seattle")
    assert erin.phone_number == "+14255550101"  # unquoted, yet the plus sign stays
    assert (frank.phone_number, frank.enterprise_voice_enabled) == (None, True)


def test_old_runbooks_set_the_number_with_set_csuser() -> None:
    state = state_of("Set-CsUser -Identity gina@contoso.com -EnterpriseVoiceEnabled $true -HostedVoiceMail $true "
                     "-OnPremLineURI tel:+14255550199")
    gina = state.users["gina@contoso.com"]
    assert (gina.phone_number, gina.phone_number_type, gina.enterprise_voice_enabled) == (
        "+14255550199", "DirectRouting", True)


def test_removing_a_number() -> None:
    state = state_of("""
Set-CsPhoneNumberAssignment -Identity dave@contoso.com -PhoneNumber "+12065550100" -PhoneNumberType DirectRouting
Remove-CsPhoneNumberAssignment -Identity dave@contoso.com -PhoneNumber "+12065550100" -PhoneNumberType DirectRouting
""")
    assert state.users["dave@contoso.com"].phone_number is None


# ---------------------------------------------------------------- network, emergency, removal

def test_network_region_site_subnet() -> None:
    state = state_of("""
New-CsTenantNetworkRegion -NetworkRegionID "North America"
New-CsTenantNetworkSite -NetworkSiteID Seattle -NetworkRegionID "north america" -EnableLocationBasedRouting $false
New-CsTenantNetworkSubnet -SubnetID 10.20.0.0 -MaskBits 16 -NetworkSiteID Seattle
""", base=False)
    assert fields(state, "site", "seattle") == {"NetworkRegionID": "North America"}  # $false is the default
    assert fields(state, "subnet", "10.20.0.0") == {"MaskBits": 16, "NetworkSiteID": "Seattle"}


def test_emergency_call_routing_policy() -> None:
    state = state_of("""
Set-CsOnlinePstnUsage -Usage @{Add="US911"}
$en1 = New-CsTeamsEmergencyNumber -EmergencyDialString 911 -EmergencyDialMask 933 -OnlinePSTNUsage "US911"
New-CsTeamsEmergencyCallRoutingPolicy -Identity Test -EmergencyNumbers @{add=$en1} -AllowEnhancedEmergencyServices:$true
""", base=False)
    policy = fields(state, "emergency_call_routing_policy", "Test")
    assert [(n.dial_string, n.dial_mask, n.online_pstn_usage) for n in policy["EmergencyNumbers"]] == [
        ("911", "933", "US911")]
    assert policy["AllowEnhancedEmergencyServices"] is True


def test_remove_then_recreate() -> None:
    state = state_of("""
New-CsOnlineVoiceRoute R -NumberPattern 'a' -OnlinePstnUsages "US and Canada"
Remove-CsOnlineVoiceRoute -Identity R
New-CsOnlineVoiceRoute R -NumberPattern 'b' -OnlinePstnUsages "International"
""")
    assert fields(state, "voice_route", "R")["NumberPattern"] == "b"


def test_what_if_changes_nothing() -> None:
    state = state_of("Remove-CsOnlinePSTNGateway -Identity sbc1.contoso.biz -WhatIf")
    assert state.find("gateway", "sbc1.contoso.biz") is not None


# ---------------------------------------------------------------- errors point at the line

L = BASE_LINES + 1  # first line after BASE
ERROR_TABLE = [
    ("unknown parameter", "New-CsOnlineVoiceRoute -Identity R -NumberPatern '.*'", L, 36,
     "New-CsOnlineVoiceRoute has no parameter -NumberPatern (did you mean -NumberPattern?)"),
    ("unknown parameter in a splat", "$r = @{\n  Identity = 'R'\n  Prio = 1 }\nNew-CsOnlineVoiceRoute @r", L + 2, 3,
     "has no parameter -Prio"),
    ("unknown usage referenced by a route",
     "New-CsOnlineVoiceRoute -Identity R -NumberPattern '.*' -OnlinePstnUsages 'US and Canada', 'Intl'", L, 91,
     "unknown PSTN usage 'Intl'"),
    ("unknown gateway in a route",
     "New-CsOnlineVoiceRoute -Identity R -NumberPattern '.*' `\n  -OnlinePstnGatewayList sbc1.contoso.biz, sbc9.contoso.biz",
     L + 1, 44, "unknown PSTN gateway 'sbc9.contoso.biz'"),
    ("unknown usage in a policy", "New-CsOnlineVoiceRoutingPolicy P -OnlinePstnUsages @{Add='Nope'}", L, 58,
     "unknown PSTN usage 'Nope'"),
    ("unknown policy granted", "Grant-CsOnlineVoiceRoutingPolicy -Identity a@b.c -PolicyName 'Nope'", L, 62,
     "unknown online voice routing policy 'Nope'"),
    ("bad regex in a route", "New-CsOnlineVoiceRoute -Identity R -NumberPattern '^\\+1(425$'", L, 51,
     "bad regular expression"),
    ("bad regex in a normalization rule",
     "$nr = New-CsVoiceNormalizationRule -Parent Global -Name X -Pattern '[0-9' -InMemory", L, 68,
     "bad regular expression"),
    ("bad regex in a translation rule", "New-CsTeamsTranslationRule -Identity T -Pattern '(?<' -Translation ''", L, 49,
     "bad regular expression"),
    ("unterminated string", "New-CsOnlineVoiceRoute -Identity \"R -NumberPattern '.*'\nGet-X", L, 34,
     "unterminated string"),
    ("unknown rule variable", "New-CsTenantDialPlan -Identity D -NormalizationRules @{Add=$nr9}", L, 60,
     "unknown variable $nr9"),
    ("text where a rule object belongs", "New-CsTenantDialPlan -Identity D -NormalizationRules @{Add='NR1'}", L, 60,
     "takes normalization rules made with New-CsVoiceNormalizationRule"),
    ("text for a boolean", "Set-CsOnlinePSTNGateway -Identity sbc1.contoso.biz -Enabled 'yes'", L, 61,
     "takes $true or $false, not the text 'yes'"),
    ("text for a number", "Set-CsOnlinePSTNGateway -Identity sbc1.contoso.biz -FailoverTimeSeconds ten", L, 73,
     "takes a whole number"),
    ("port out of range", "Set-CsOnlinePSTNGateway sbc1.contoso.biz -SipSignalingPort 70000", L, 60,
     "sip_signaling_port (-SipSignalingPort) must be a whole number from 1 to 65535, not 70000"),
    ("list where one value belongs", "Set-CsOnlinePSTNGateway sbc1.contoso.biz -Description a, b", L, 55,
     "takes one text value, not a list of 2"),
    ("bad enum", "Set-CsOnlinePSTNGateway sbc1.contoso.biz -BypassMode Sometimes", L, 54,
     "bypass_mode (-BypassMode) must be one of None, Always, OnlyForLocalUsers, not 'Sometimes'"),
    ("unknown object in Set", "Set-CsOnlinePSTNGateway -Identity sbc7.contoso.biz -Enabled $true", L, 35,
     "unknown PSTN gateway 'sbc7.contoso.biz'"),
    ("new of an existing object", "New-CsOnlinePSTNGateway -Fqdn SBC1.contoso.biz -SipSignalingPort 5061", L, 31,
     "already exists (made at t.ps1:3:1)"),
    ("new of Global", "New-CsOnlineVoiceRoutingPolicy Global", L, 32, "exists in every tenant"),
    ("missing a required parameter", "New-CsOnlinePSTNGateway -Fqdn sbc3.contoso.biz", L, 1, "needs -SipSignalingPort"),
    ("removing a gateway in use",
     "New-CsOnlineVoiceRoute R -NumberPattern '.*' -OnlinePstnGatewayList sbc1.contoso.biz\n"
     "Remove-CsOnlinePSTNGateway sbc1.contoso.biz", L + 1, 28, "still used by voice route 'R'"),
    ("list change with a bad key", "New-CsOnlineVoiceRoutingPolicy P -OnlinePstnUsages @{Append='International'}", L, 54,
     "takes the keys Add, Remove and Replace, not 'Append'"),
    ("value from an unmodelled cmdlet",
     "$u = Get-CsTenant\nNew-CsOnlineVoiceRoutingPolicy P -OnlinePstnUsages $u", L + 1, 52,
     "which drlab does not model"),
    ("piped into a New- cmdlet", "'P' | New-CsOnlineVoiceRoutingPolicy", L, 7, "takes no pipeline input"),
    ("piped output of an unmodelled cmdlet", "Get-CsTenant | Grant-CsOnlineVoiceRoutingPolicy -PolicyName x", L, 16,
     "gets <output of Get-CsTenant> through the pipe"),
    ("piped object and -Identity", "New-CsOnlineVoiceRoute R -NumberPattern '.*'\n"
     "Get-CsOnlineVoiceRoute | Set-CsOnlineVoiceRoute -Identity R -Priority 1", L + 1, 49,
     "gets both -Identity and a piped object"),
    ("Get- of an unknown object", "Get-CsOnlineVoiceRoute -Identity Nope", L, 34, "unknown voice route 'Nope'"),
    ("number assigned twice",
     "Set-CsPhoneNumberAssignment a@b.c -PhoneNumber '+1425' -PhoneNumberType DirectRouting\n"
     "Set-CsPhoneNumberAssignment x@b.c -PhoneNumber '+1425' -PhoneNumberType DirectRouting", L + 1, 48,
     "already assigned to a@b.c"),
    ("bad phone number type",
     "Set-CsPhoneNumberAssignment a@b.c -PhoneNumber '+1425' -PhoneNumberType Direct", L, 73,
     "phone_number_type (-PhoneNumberType) must be one of DirectRouting, CallingPlan"),
]


@pytest.mark.parametrize(("what", "script", "line", "column", "message"), ERROR_TABLE,
                         ids=[r[0] for r in ERROR_TABLE])
def test_error_points_at(what: str, script: str, line: int, column: int, message: str) -> None:
    error = error_of(script)
    assert message in error.message
    assert error.position == SourcePosition("t.ps1", line, column)
    assert str(error).startswith(f"t.ps1:{line}:{column}: ")


def test_dial_plan_has_at_most_50_rules() -> None:
    script = "".join(f"$r{n} = New-CsVoiceNormalizationRule -Parent Global -Name R{n} -InMemory\n" for n in range(51))
    script += "New-CsTenantDialPlan D -NormalizationRules " + ", ".join(f"$r{n}" for n in range(51))
    error = error_of(script, base=False)
    assert "normalization_rules (-NormalizationRules) must be at most 50 rules, not 51" in error.message
    assert (error.position.line, error.position.column) == (52, 44)


# ---------------------------------------------------------------- warnings

def test_ignored_and_unknown_cmdlets_are_warned_once_each_at_first_use() -> None:
    _, warnings = run_powershell("""\
Import-Module MicrosoftTeams
Connect-MicrosoftTeams
Get-CsOnlineUser alice@contoso.com | select OnlineVoiceRoutingPolicy
Write-Host "done"
New-CsAutoAttendant -Name Main
Write-Host "really done"
Set-CsTeamsMeetingPolicy -Identity Global -AllowTranscription $true
""", "t.ps1")
    assert [str(w) for w in warnings] == [
        "t.ps1:1:1: warning: Import-Module changes nothing drlab simulates (the PowerShell session); ignored",
        "t.ps1:2:1: warning: Connect-MicrosoftTeams changes nothing drlab simulates (the PowerShell session); ignored",
        "t.ps1:3:38: warning: select changes nothing drlab simulates (output and pacing); ignored",
        "t.ps1:4:1: warning: Write-Host changes nothing drlab simulates (output and pacing); ignored; "
        "1 more call(s) skipped too",
        "t.ps1:5:1: warning: New-CsAutoAttendant is not modelled by drlab; skipped",
        "t.ps1:7:1: warning: Set-CsTeamsMeetingPolicy changes nothing drlab simulates (meetings); ignored",
    ]


def test_misspelt_modelled_cmdlet_warning_suggests_the_right_one() -> None:
    _, warnings = run_powershell("New-CsOnlineVoiceRoutes -Identity R", "t.ps1")
    assert "did you mean New-CsOnlineVoiceRoute?" in str(warnings[0])


def test_unmodelled_cmdlet_arguments_are_not_checked() -> None:
    _, warnings = run_powershell("Connect-MicrosoftTeams -Credential $cred -TenantId $env:TENANT", "t.ps1")
    assert len(warnings) == 1


# ---------------------------------------------------------------- property: list changes

_NAMES = st.sampled_from(["A", "B", "C", "D"])
_CHANGES = st.lists(st.tuples(st.sampled_from(["Add", "Remove", "Replace"]), st.lists(_NAMES, min_size=1, max_size=3)),
                    max_size=6)


@given(_CHANGES)
@settings(max_examples=60, deadline=None)
def test_usage_list_follows_pslistmodifier(changes: list[tuple[str, list[str]]]) -> None:
    expected: list[str] = []
    script = []
    for op, names in changes:
        script.append(f"Set-CsOnlinePstnUsage -Usage @{{{op}={', '.join(repr(n) for n in names)}}}")
        if op == "Replace":
            expected = list(dict.fromkeys(names))
        elif op == "Remove":
            for name in names:
                if name in expected:
                    expected.remove(name)
        else:
            expected += [n for n in dict.fromkeys(names) if n not in expected]
    state, _ = run_powershell("\n".join(script), "t.ps1")
    assert state.usages == tuple(expected)


# ---------------------------------------------------------------- files

def test_load_from_a_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "tenant.ps1"
    path.write_bytes("\ufeffConnect-MicrosoftTeams\r\nSet-CsOnlinePstnUsage -Usage @{Add='A'}\r\n".encode())
    state, warnings = load_powershell_with_warnings(path)
    assert state.usages == ("A",)
    assert [str(w) for w in warnings] == [
        f"{path}:1:1: warning: Connect-MicrosoftTeams changes nothing drlab simulates (the PowerShell session); ignored"]
    assert load_powershell(path).usages == ("A",)


def test_missing_file_is_a_tenant_error(tmp_path: Path) -> None:
    with pytest.raises(TenantError, match="cannot read"):
        load_powershell(tmp_path / "nope.ps1")


# ---------------------------------------------------------------- a misspelt user

@pytest.mark.parametrize(("second", "warned"), [
    ("crol@contoso.com", "carol@contoso.com"),  # a letter missing
    ("carol@contoso.co", "carol@contoso.com"),  # the domain misspelt
    ("Carol@Contoso.com", None),  # the same user: UPNs ignore case
    ("dave@contoso.com", None),  # another user
    ("carol@fabrikam.com", None),  # the same name in another tenant's domain
])
def test_a_new_upn_a_typo_away_from_a_known_user_is_a_warning(second: str, warned: str | None) -> None:
    state, warnings = run_powershell(
        "New-CsOnlineVoiceRoutingPolicy Seattle\n"
        "Set-CsPhoneNumberAssignment -Identity carol@contoso.com -PhoneNumber +12065550201 -PhoneNumberType DirectRouting\n"
        f"Grant-CsOnlineVoiceRoutingPolicy -Identity {second} -PolicyName Seattle\n", "t.ps1")
    if warned is None:
        assert warnings == []
    else:
        assert [str(w) for w in warnings] == [
            f"t.ps1:3:44: warning: user {second!r} is new here and is brought in as another user "
            f"(did you mean {warned!r}?)"]
        assert len(state.users) == 2  # still loaded as Teams would: two users


def test_unknown_policy_name_suggests_the_close_one() -> None:
    err = error_of("New-CsOnlineVoiceRoutingPolicy Seattle\n"
                   "Grant-CsOnlineVoiceRoutingPolicy -Identity carol@contoso.com -PolicyName Seatle\n", base=False)
    assert "unknown online voice routing policy 'Seatle'" in str(err) and "(did you mean 'Seattle'?)" in str(err)


# ---------------------------------------------------------------- call forwarding (what an SBA serves)

def test_single_target_forwarding_settings() -> None:
    state, _ = run_powershell("""
Set-CsUserCallingSettings -Identity dave@contoso.com -IsForwardingEnabled $true -ForwardingType Immediate `
    -ForwardingTargetType SingleTarget -ForwardingTarget "+14255550100"
Set-CsUserCallingSettings -Identity dave@contoso.com -IsUnansweredEnabled $true -UnansweredTargetType SingleTarget `
    -UnansweredTarget carol@contoso.com -UnansweredDelay 00:00:30
Set-CsUserCallingSettings -Identity erin@contoso.com -IsUnansweredEnabled $true -UnansweredTargetType SingleTarget `
    -UnansweredTarget "+14255550100"
Set-CsUserCallingSettings -Identity erin@contoso.com -IsUnansweredEnabled $false
""", "t.ps1")
    dave, erin = state.user("dave@contoso.com"), state.user("erin@contoso.com")
    assert (dave.forwarding_target, dave.unanswered_target, dave.unanswered_delay_seconds) == (
        "+14255550100", "carol@contoso.com", 30)
    assert (erin.forwarding_target, erin.unanswered_target, erin.unanswered_delay_seconds) == (None, None, None)


FORWARDING_TABLE = [
    # (arguments, the user's forwarding fields that differ from a fresh user's)
    ("-IsForwardingEnabled $true -ForwardingType Simultaneous -ForwardingTargetType SingleTarget -ForwardingTarget x",
     {"forwarding_type": "Simultaneous", "forwarding_target_type": "SingleTarget", "simultaneous_ring_target": "x"}),
    ("-IsForwardingEnabled $true -ForwardingType immediate -ForwardingTargetType Voicemail",
     {"forwarding_type": "Immediate", "forwarding_target_type": "Voicemail"}),
    ("-IsForwardingEnabled $true -ForwardingType Immediate -ForwardingTargetType SingleTarget -ForwardingTarget x",
     {"forwarding_type": "Immediate", "forwarding_target_type": "SingleTarget", "forwarding_target": "x"}),
    ("-IsUnansweredEnabled $true -UnansweredTargetType Voicemail -UnansweredDelay 00:00:25",
     {"unanswered_target_type": "Voicemail", "unanswered_delay_seconds": 25}),
    ("-IsForwardingEnabled $true -ForwardingType Simultaneous -ForwardingTargetType Group -CallGroupOrder InOrder "
     "-CallGroupTargets a@contoso.com, b@contoso.com",
     {"forwarding_type": "Simultaneous", "forwarding_target_type": "Group", "call_group_order": "InOrder",
      "call_group_targets": ("a@contoso.com", "b@contoso.com")}),
]


@pytest.mark.parametrize(("args", "fields"), FORWARDING_TABLE, ids=[row[0][:60] for row in FORWARDING_TABLE])
def test_every_forwarding_mode_is_kept(args: str, fields: dict[str, object]) -> None:
    state, _ = run_powershell(f"Set-CsUserCallingSettings -Identity dave@contoso.com {args}\n", "t.ps1")
    dave = state.user("dave@contoso.com")
    fresh = User("dave@contoso.com")
    changed = {f.name: getattr(dave, f.name) for f in dataclasses.fields(User)
               if f.name != "position" and getattr(dave, f.name) != getattr(fresh, f.name)}
    assert changed == fields


@pytest.mark.parametrize(("args", "message"), [
    ("-IsForwardingEnabled $true -ForwardingType Simultaneous -ForwardingTargetType Voicemail",
     "cannot ring voicemail at the same time"),
    ("-IsForwardingEnabled $true -ForwardingType Later -ForwardingTargetType SingleTarget",
     "-ForwardingType of Set-CsUserCallingSettings is one of Immediate, Simultaneous, not 'Later'"),
    ("-IsForwardingEnabled $true -ForwardingType Immediate -ForwardingTargetType SingleTarget",
     "needs -ForwardingTarget"),
    ("-UnansweredDelay 20", "-UnansweredDelay is a time span like 00:00:20"),
    ("", "needs -IsForwardingEnabled, -IsUnansweredEnabled, -UnansweredDelay or -CallGroupTargets"),
])
def test_forwarding_settings_that_cannot_be_are_errors(args: str, message: str) -> None:
    err = error_of(f"Set-CsUserCallingSettings -Identity dave@contoso.com {args}\n", base=False)
    assert str(err).startswith("t.ps1:1:") and message in str(err)
