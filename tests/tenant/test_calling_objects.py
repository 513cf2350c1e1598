"""Caller ID, calling, emergency calling, location (LIS) and resource account objects: what each
cmdlet puts in the tenant, the same tenant from the YAML format, and group policy assignment."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.tenant.errors import TenantError
from simulator.tenant.model import generated_id
from simulator.tenant.ps_loader import load_groups, load_powershell_with_warnings, run_powershell
from simulator.tenant.yaml_loader import parse_yaml

RUNBOOK = r"""
$ra = New-CsOnlineApplicationInstance -UserPrincipalName mainaa@contoso.com `
    -ApplicationId ce933385-9390-45d1-9512-c8d228074e07 -DisplayName "Main AA"
Set-CsPhoneNumberAssignment -Identity mainaa@contoso.com -PhoneNumber +14255550150 -PhoneNumberType DirectRouting
New-CsCallingLineIdentity -Identity Support -CallingIDSubstitute Service -ServiceNumber 14255550100 `
    -EnableUserOverride $true -CompanyName Contoso
New-CsCallingLineIdentity -Identity AA -CallingIDSubstitute Resource -ResourceAccount $ra.ObjectId
New-CsCallingLineIdentity -Identity Hidden -CallingIDSubstitute anonymous -BlockIncomingPstnCallerID $true
New-CsTeamsCallingPolicy -Identity NoForward -AllowCallForwardingToPhone $false -PreventTollBypass $true `
    -AllowVoicemail AlwaysEnabled
New-CsTeamsEmergencyCallingPolicy -Identity Desk -NotificationGroup "security@contoso.com" `
    -NotificationMode ConferenceMuted -NotificationDialOutNumber "+14255550199" -ExternalLocationLookupMode Enabled
New-CsTenantTrustedIPAddress -IPAddress 198.51.100.10 -MaskBits 32 -Description "HQ egress"
$addr = New-CsOnlineLisCivicAddress -HouseNumber 1 -StreetName "Microsoft Way" -City Redmond -StateOrProvince WA `
    -PostalCode 98052 -CountryOrRegion US -CompanyName Contoso
$floor = New-CsOnlineLisLocation -CivicAddressId $addr.CivicAddressId -Location "Floor 2"
Set-CsOnlineLisSubnet -Subnet 10.10.2.0 -LocationId $floor.LocationId -Description "Floor 2"
New-CsTeamsUnassignedNumberTreatment -Identity MainAA -Pattern '^\+14255551\d{3}$' -TargetType ResourceAccount `
    -Target $ra.ObjectId -TreatmentPriority 1
Set-CsPhoneNumberAssignment -Identity alice@contoso.com -PhoneNumber +14255550101 -PhoneNumberType DirectRouting `
    -LocationId $floor.LocationId
Grant-CsCallingLineIdentity -Identity alice@contoso.com -PolicyName Support
Grant-CsTeamsCallingPolicy -Identity alice@contoso.com -PolicyName "Tag:NoForward"
Grant-CsTeamsEmergencyCallingPolicy -Identity alice@contoso.com -PolicyName Desk
Set-CsOnlineVoicemailUserSettings -Identity alice@contoso.com -CallAnswerRule VoicemailWithTransferOption `
    -TransferTarget "+14255550102"
"""

RA, ADDRESS, DEFAULT_LOCATION, FLOOR = (generated_id("resource_account", 1), generated_id("civic_address", 1),
                                        generated_id("default_location", 1), generated_id("lis_location", 1))
YAML = f"""
resource_accounts:
  - {{upn: mainaa@contoso.com, application_id: ce933385-9390-45d1-9512-c8d228074e07, display_name: Main AA,
     object_id: {RA}, phone_number: '+14255550150'}}
calling_line_identities:
  - {{name: Support, calling_id_substitute: Service, service_number: '14255550100', enable_user_override: true,
     company_name: Contoso}}
  - {{name: AA, calling_id_substitute: Resource, resource_account: {RA}}}
  - {{name: Hidden, calling_id_substitute: Anonymous, block_incoming_pstn_caller_id: true}}
teams_calling_policies:
  - {{name: NoForward, allow_call_forwarding_to_phone: false, prevent_toll_bypass: true, allow_voicemail: AlwaysEnabled}}
emergency_calling_policies:
  - {{name: Desk, notification_group: security@contoso.com, notification_mode: ConferenceMuted,
     notification_dial_out_number: '+14255550199', external_location_lookup_mode: Enabled}}
trusted_ips:
  - {{ip_address: 198.51.100.10, mask_bits: 32, description: HQ egress}}
civic_addresses:
  - {{civic_address_id: {ADDRESS}, default_location_id: {DEFAULT_LOCATION}, house_number: '1',
     street_name: Microsoft Way, city: Redmond, state_or_province: WA, postal_code: '98052', country_or_region: US,
     company_name: Contoso}}
lis_locations:
  - {{location_id: {FLOOR}, civic_address_id: {ADDRESS}, location: Floor 2}}
lis_subnets:
  - {{subnet: 10.10.2.0, location_id: {FLOOR}, description: Floor 2}}
unassigned_number_treatments:
  - {{name: MainAA, pattern: '^\\+14255551\\d{{3}}$', target_type: ResourceAccount, target: {RA}, treatment_priority: 1}}
users:
  - {{upn: alice@contoso.com, phone_number: '+14255550101', location_id: {FLOOR}, calling_line_identity: Support,
     teams_calling_policy: NoForward, emergency_calling_policy: Desk}}
voicemail_settings:
  - {{upn: alice@contoso.com, call_answer_rules: VoicemailWithTransferOption, transfer_target: '+14255550102'}}
"""


def test_runbook_and_yaml_give_the_same_caller_id_emergency_and_location_objects() -> None:
    from_ps, warnings = run_powershell(RUNBOOK, "t.ps1")
    from_ps.validate()
    assert warnings == []
    assert from_ps == parse_yaml(YAML, "t.yaml")


def test_what_the_cmdlets_put_in_the_tenant() -> None:
    tenant, _ = run_powershell(RUNBOOK, "t.ps1")
    alice = tenant.user("alice@contoso.com")
    assert tenant.effective_policy(alice, "calling_line_identity").service_number == "14255550100"
    assert tenant.effective_policy(alice, "teams_calling_policy").prevent_toll_bypass is True
    assert tenant.effective_policy(alice, "emergency_calling_policy").notification_mode == "ConferenceMuted"
    assert tenant.find("calling_line_identity", "AA").resource_account == tenant.resource_account(
        "mainaa@contoso.com").object_id
    assert tenant.find("lis_subnet", "10.10.2.0").location_id == alice.location_id
    assert tenant.find("voicemail_settings", "alice@contoso.com").call_answer_rules == "VoicemailWithTransferOption"
    bob = run_powershell("Set-CsUserCallingSettings bob@contoso.com -UnansweredDelay 00:00:20", "t.ps1")[0].user(
        "bob@contoso.com")
    assert tenant.effective_policy(bob, "calling_line_identity").calling_id_substitute == "LineUri"  # Global


def test_teams_calling_policy_settings_drlab_does_not_simulate_warn_once() -> None:
    _, warnings = run_powershell("New-CsTeamsCallingPolicy P -AllowCloudRecordingForCalls $true\n"
                                 "Set-CsTeamsCallingPolicy P -AllowCloudRecordingForCalls $false", "t.ps1")
    assert [str(w) for w in warnings] == ["t.ps1:1:28: warning: -AllowCloudRecordingForCalls of "
                                          "New-CsTeamsCallingPolicy changes nothing drlab simulates; ignored",
                                          "t.ps1:2:28: warning: -AllowCloudRecordingForCalls of "
                                          "Set-CsTeamsCallingPolicy changes nothing drlab simulates; ignored"]


ERRORS = [
    ("Service without a number", "New-CsCallingLineIdentity -Identity X -CallingIDSubstitute Service", 1, 60,
     "calling_id_substitute Service needs a service_number"),
    ("an unknown substitute", "New-CsCallingLineIdentity -Identity X -CallingIDSubstitute Nobody", 1, 60,
     "calling_id_substitute (-CallingIDSubstitute) must be one of LineUri, Service, Anonymous, Resource"),
    ("a trusted IP that is not an address", "New-CsTenantTrustedIPAddress -IPAddress 10.0.0.300", 1, 41,
     "an IPv4 or IPv6 address"),
    ("a location at an unknown address", "New-CsOnlineLisLocation -CivicAddressId nope -Location F1", 1, 41,
     "unknown civic address 'nope'"),
    ("an address without a company", "New-CsOnlineLisCivicAddress -CountryOrRegion US", 1, 1, "needs -CompanyName"),
    ("-LocationId of no location",
     "Set-CsPhoneNumberAssignment -Identity a@b.c -PhoneNumber +1425 -PhoneNumberType DirectRouting -LocationId x", 1,
     107, "-LocationId 'x': no LIS location has that id"),
    ("a number-only update of a number nobody has", "Set-CsPhoneNumberAssignment -PhoneNumber +1425 -LocationId x",
     1, 42, "+1425 is not assigned to any user"),
    ("a private line", "Set-CsPhoneNumberAssignment -Identity a@b.c -PhoneNumber +1425 -PhoneNumberType DirectRouting "
     "-AssignmentCategory Private", 1, 115, "-AssignmentCategory Private is not modelled"),
    ("a resource account's number with a location",
     "New-CsOnlineApplicationInstance -UserPrincipalName aa@b.c\n"
     "Set-CsPhoneNumberAssignment -Identity aa@b.c -PhoneNumber +1425 -PhoneNumberType DirectRouting -LocationId x",
     2, 108, "-LocationId is not modelled for resource account aa@b.c"),
    ("a resource account given a user's number",
     "Set-CsPhoneNumberAssignment -Identity a@b.c -PhoneNumber +1425 -PhoneNumberType DirectRouting\n"
     "New-CsOnlineApplicationInstance -UserPrincipalName aa@b.c\n"
     "Set-CsPhoneNumberAssignment -Identity aa@b.c -PhoneNumber +1425 -PhoneNumberType DirectRouting", 3, 59,
     "+1425 is already assigned to a@b.c"),
    ("a resource account's number that is none",
     "New-CsOnlineApplicationInstance -UserPrincipalName aa@b.c\n"
     "Set-CsPhoneNumberAssignment -Identity aa@b.c -PhoneNumber 12 -PhoneNumberType DirectRouting", 2, 59,
     "an E.164 number"),
    ("two treatments with one priority",
     "New-CsTeamsUnassignedNumberTreatment A -Pattern '^1$' -TargetType User -Target a@b.c -TreatmentPriority 1\n"
     "New-CsTeamsUnassignedNumberTreatment B -Pattern '^2$' -TargetType User -Target a@b.c -TreatmentPriority 1",
     2, 1, "have the same treatment_priority 1"),
    ("a group grant without a groups file", "Grant-CsOnlineVoiceRoutingPolicy -Group Sales -PolicyName Global", 1, 41,
     "give one (drlab route --groups groups.csv"),
]


@pytest.mark.parametrize(("what", "script", "line", "column", "message"), ERRORS, ids=[row[0] for row in ERRORS])
def test_error_points_at(what: str, script: str, line: int, column: int, message: str) -> None:
    with pytest.raises(TenantError) as caught:
        tenant, _ = run_powershell(script, "t.ps1")
        tenant.validate()
    assert (caught.value.position.line, caught.value.position.column) == (line, column)
    assert message in caught.value.message


def test_number_only_parameter_sets_update_the_user_with_that_number() -> None:
    tenant, _ = run_powershell("""
$addr = New-CsOnlineLisCivicAddress -CountryOrRegion US -CompanyName Contoso
New-CsTenantNetworkSite -Identity Redmond
Set-CsPhoneNumberAssignment -Identity a@contoso.com -PhoneNumber +14255550101 -PhoneNumberType DirectRouting
Set-CsPhoneNumberAssignment -PhoneNumber +14255550101 -LocationId $addr.DefaultLocationId
Set-CsPhoneNumberAssignment -PhoneNumber +14255550101 -NetworkSiteId Redmond
Set-CsPhoneNumberAssignment -PhoneNumber +14255550101 -ReverseNumberLookup SkipInternalVoip
""", "t.ps1")
    a = tenant.user("a@contoso.com")
    assert (a.location_id, a.network_site, a.reverse_number_lookup) == (
        generated_id("default_location", 1), "Redmond", "SkipInternalVoip")


# ---------------------------------------------------------------- groups

GROUPS = "Group,UserPrincipalName\nSales,alice@contoso.com\nSales,bob@contoso.com\nVIP,bob@contoso.com\n"
POLICIES = """
Set-CsOnlinePstnUsage -Usage @{Add = "US"}
New-CsOnlineVoiceRoutingPolicy Domestic -OnlinePstnUsages US
New-CsOnlineVoiceRoutingPolicy World -OnlinePstnUsages US
New-CsOnlineVoiceRoutingPolicy Own -OnlinePstnUsages US
"""


@pytest.fixture
def groups_file(tmp_path: Path) -> Path:
    path = tmp_path / "groups.csv"
    path.write_text(GROUPS, encoding="utf-8")
    return path


def test_a_direct_grant_wins_over_groups_and_the_lowest_rank_wins_among_groups(groups_file: Path) -> None:
    tenant, _ = run_powershell(POLICIES + """
Grant-CsOnlineVoiceRoutingPolicy -Group Sales -PolicyName Domestic -Rank 2
Grant-CsOnlineVoiceRoutingPolicy -Group vip -PolicyName World -Rank 1
Grant-CsOnlineVoiceRoutingPolicy -Identity carol@contoso.com -PolicyName Own
Grant-CsOnlineVoiceRoutingPolicy -Identity alice@contoso.com -PolicyName Own
""", "t.ps1", load_groups(groups_file))
    policy = {upn: tenant.effective_policy(tenant.user(upn), "voice_routing_policy").name
              for upn in ("alice@contoso.com", "bob@contoso.com", "carol@contoso.com")}
    assert policy == {"alice@contoso.com": "Own", "bob@contoso.com": "World", "carol@contoso.com": "Own"}


def test_a_group_given_a_rank_already_taken_goes_in_before_the_group_holding_it(groups_file: Path) -> None:
    tenant, _ = run_powershell(POLICIES + """
Grant-CsOnlineVoiceRoutingPolicy -Group Sales -PolicyName Domestic -Rank 1
Grant-CsOnlineVoiceRoutingPolicy -Group VIP -PolicyName World -Rank 1
""", "t.ps1", load_groups(groups_file))
    ranks = {a.group: a.rank for a in tenant.group_policy_assignments.values()}
    assert ranks == {"Sales": 2, "VIP": 1}
    assert tenant.effective_policy(tenant.user("bob@contoso.com"), "voice_routing_policy").name == "World"


def test_a_group_grant_of_null_takes_the_assignment_away(groups_file: Path) -> None:
    tenant, _ = run_powershell(POLICIES + """
Grant-CsOnlineVoiceRoutingPolicy -Group Sales -PolicyName Domestic -Rank 1
Grant-CsOnlineVoiceRoutingPolicy -Group Sales -PolicyName $null
""", "t.ps1", load_groups(groups_file))
    assert tenant.effective_policy(tenant.user("alice@contoso.com"), "voice_routing_policy").name == "Global"


@pytest.mark.parametrize(("script", "column", "message"), [
    ("Grant-CsOnlineVoiceRoutingPolicy -Group Marketing -PolicyName Domestic -Rank 1", 41,
     "group 'Marketing' is not in the groups file"),
    ("Grant-CsOnlineVoiceRoutingPolicy -Group Sales -PolicyName Domestic", 1, "-Group needs -Rank"),
])
def test_group_grant_errors(groups_file: Path, script: str, column: int, message: str) -> None:
    with pytest.raises(TenantError) as caught:
        run_powershell(POLICIES + script, "t.ps1", load_groups(groups_file))
    assert caught.value.position.column == column and message in caught.value.message


def test_a_groups_file_needs_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "groups.csv"
    path.write_text("Name,Member\nSales,a@b.c\n", encoding="utf-8")
    with pytest.raises(TenantError, match="columns Group and UserPrincipalName"):
        load_groups(path)


# ---------------------------------------------------------------- runbook patterns

def test_csv_loop_and_pipelines_as_runbooks_write_them(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("UserPrincipalName,Number,Policy\n"
                                        "alice@contoso.com,+14255550101,Domestic\n"
                                        "bob@contoso.com,+14255550102,World\n", encoding="utf-8")
    script = tmp_path / "run.ps1"
    script.write_text(POLICIES + """
$users = Import-Csv users.csv
foreach ($u in $users) {
    Set-CsPhoneNumberAssignment -Identity $u.UserPrincipalName -PhoneNumber $u.Number -PhoneNumberType DirectRouting
}
Import-Csv users.csv | ForEach-Object { Grant-CsOnlineVoiceRoutingPolicy -Identity $_.UserPrincipalName -PolicyName $_.Policy }
Get-CsOnlineVoiceRoutingPolicy | Where-Object { $_.Identity -like "Tag:*o*" -and $_.Identity -notlike "*own" } |
    Set-CsOnlineVoiceRoutingPolicy -Description "has an o"
Get-CsOnlineUser -Identity bob@contoso.com | Grant-CsTenantDialPlan -PolicyName $null
""", encoding="utf-8")
    tenant, warnings = load_powershell_with_warnings(script)
    assert warnings == []
    assert [(u.upn, u.phone_number, u.voice_routing_policy) for u in tenant.users.values()] == [
        ("alice@contoso.com", "+14255550101", "Domestic"), ("bob@contoso.com", "+14255550102", "World")]
    assert sorted(p.name for p in tenant.voice_routing_policies.values() if p.description == "has an o") == [
        "Domestic", "World"]


def test_csv_rows_and_hashtables_pipe_their_identity(tmp_path: Path) -> None:
    (tmp_path / "policies.csv").write_text("Identity,Description\nDomestic,home\n", encoding="utf-8")
    script = tmp_path / "run.ps1"
    script.write_text(POLICIES + """
Import-Csv policies.csv | Set-CsOnlineVoiceRoutingPolicy -Description "from the file"
@{Identity = "Tag:World"} | Set-CsOnlineVoiceRoutingPolicy -Description "from a hashtable"
@{Name = "Own"} | Set-CsOnlineVoiceRoutingPolicy -Description "never"
""", encoding="utf-8")
    with pytest.raises(TenantError) as caught:
        load_powershell_with_warnings(script)
    assert caught.value.position.line == POLICIES.count("\n") + 4
    assert "Set-CsOnlineVoiceRoutingPolicy gets a hashtable through the pipe, with no Identity" in caught.value.message
    tenant, _ = run_powershell(POLICIES + '@{Identity = "Tag:World"} | Set-CsOnlineVoiceRoutingPolicy -Description x',
                               "t.ps1")
    assert tenant.find("voice_routing_policy", "World").description == "x"
