<#
    Contoso Direct Routing - the tenant as its admins keep it.

    The same voice routing as examples/contoso.ps1 (HQ in Redmond with two SBCs, a Seattle branch
    with its own SBC and a Survivable Branch Appliance), written the way a real runbook is:
    users come from users.csv, settings are applied in loops and pipelines, and the runbook also
    sets caller ID, emergency calling (911 over the Seattle SBC, dynamic locations) and
    Location-Based Routing for the office in Pune, India (toll bypass is illegal there).

    drlab route --tenant examples/runbook/contoso-runbook.ps1 --check examples/contoso-routing-cases.yaml

    The -Group grants read their members from groups.csv next to this file (or --groups FILE).
#>

Import-Module MicrosoftTeams
Connect-MicrosoftTeams

# --- Registered domains (Microsoft Graph PowerShell): every SBC FQDN must be in one ------------
New-MgDomain -Id contoso.com

# --- PSTN usages ------------------------------------------------------------------------------
$usages = @("US and Canada", "International", "Seattle Local", "US Emergency", "India")
foreach ($usage in $usages) {
    Set-CsOnlinePstnUsage -Identity Global -Usage @{Add = $usage}
}

# --- Trunk translation rules ------------------------------------------------------------------
New-CsTeamsTranslationRule -Identity 'AddPlus1' -Pattern '^(\d{10})$' -Translation '+1$1' `
    -Description "10-digit caller IDs from the carrier"
New-CsTeamsTranslationRule -Identity 'StripPlus1' -Pattern '^\+1(\d{10})$' -Translation '$1'

# --- Network topology, trusted IPs and Location-Based Routing ----------------------------------
New-CsTenantNetworkRegion -NetworkRegionID "North America"
New-CsTenantNetworkRegion -NetworkRegionID "India"
$sites = @(
    @{ Name = "Redmond"; Region = "North America"; Subnet = "10.10.0.0"; Description = "HQ"; Lbr = $false }
    @{ Name = "Seattle"; Region = "North America"; Subnet = "10.20.0.0"; Description = "Seattle branch"; Lbr = $false }
    @{ Name = "Pune"; Region = "India"; Subnet = "10.30.0.0"; Description = "Pune office (India: no toll bypass)"; Lbr = $true }
)
foreach ($site in $sites) {
    New-CsTenantNetworkSite -NetworkSiteID $site.Name -NetworkRegionID $site.Region `
        -Description $site.Description -EnableLocationBasedRouting $site.Lbr
    New-CsTenantNetworkSubnet -SubnetID $site.Subnet -MaskBits 16 -NetworkSiteID $site.Name
}
New-CsTenantTrustedIPAddress -IPAddress 198.51.100.10 -MaskBits 32 -Description "HQ internet egress"
New-CsTenantTrustedIPAddress -IPAddress 198.51.100.20 -MaskBits 32 -Description "Seattle internet egress"

# --- SBCs (online PSTN gateways) ----------------------------------------------------------------
$hqSbc = @{
    SipSignalingPort      = 5061
    Enabled               = $true
    MaxConcurrentSessions = 100
    ForwardPai            = $true
    GatewaySiteId         = "Redmond"
}
foreach ($fqdn in "sbc1.contoso.com", "sbc2.contoso.com") {
    New-CsOnlinePSTNGateway -Fqdn $fqdn @hqSbc
}
Set-CsOnlinePSTNGateway -Identity sbc2.contoso.com -FailoverTimeSeconds 20

# The branch SBC: media bypass so that the SBA can anchor calls locally during an outage, and
# PIDF-LO for 911.
New-CsOnlinePSTNGateway -Fqdn sbc-sea.contoso.com -SipSignalingPort 5061 -Enabled:$true `
    -MediaBypass $true -GatewaySiteId Seattle -PidfLoSupported $true `
    -FailoverResponseCodes "408,503,504" `
    -InboundPstnNumberTranslationRules AddPlus1 `
    -OutboundPstnNumberTranslationRules 'StripPlus1'

# The Pune SBC is enabled for Location-Based Routing: only LBR users at Pune call through it.
New-CsOnlinePSTNGateway -Fqdn sbc-pun.contoso.com -SipSignalingPort 5061 -Enabled $true `
    -GatewaySiteId Pune -GatewaySiteLbrEnabled $true

# --- Voice routes -------------------------------------------------------------------------------
$routes = @(
    @{ Name = "Redmond 1"; Pattern = '^\+1(425|206)(\d{7})$'; Gateways = "sbc1.contoso.com", "sbc2.contoso.com"; Priority = 1; Usage = "US and Canada" }
    @{ Name = "Redmond 2"; Pattern = '^\+1(425|206)(\d{7})$'; Gateways = "sbc-sea.contoso.com"; Priority = 2; Usage = "US and Canada" }
    @{ Name = "Other +1"; Pattern = '^\+1(\d{10})$'; Gateways = "sbc1.contoso.com", "sbc2.contoso.com"; Priority = 3; Usage = "US and Canada" }
    @{ Name = "International"; Pattern = '\d+'; Gateways = "sbc2.contoso.com"; Priority = 4; Usage = "International" }
    @{ Name = "Seattle Local"; Pattern = '^\+1206(\d{7})$'; Gateways = "sbc-sea.contoso.com"; Priority = 1; Usage = "Seattle Local" }
    @{ Name = "India"; Pattern = '^\+91(\d{10})$'; Gateways = "sbc-pun.contoso.com"; Priority = 1; Usage = "India" }
)
foreach ($route in $routes) {
    New-CsOnlineVoiceRoute -Identity $route.Name -NumberPattern $route.Pattern `
        -OnlinePstnGatewayList $route.Gateways -Priority $route.Priority -OnlinePstnUsages $route.Usage
}
# Emergency calls leave through the branch SBC; the dial string must match exactly.
New-CsOnlineVoiceRoute -Identity "Emergency 911" -NumberPattern '^(911|933)$' `
    -OnlinePstnGatewayList sbc-sea.contoso.com -Priority 5 -OnlinePstnUsages "US Emergency"

# Describe every route that uses a Redmond SBC (a pipeline over what the runbook made).
Get-CsOnlineVoiceRoute | Where-Object { $_.OnlinePstnGatewayList -contains "sbc1.contoso.com" } |
    Set-CsOnlineVoiceRoute -Description "through HQ"

# --- Voice routing policies ---------------------------------------------------------------------
New-CsOnlineVoiceRoutingPolicy "US Only" -OnlinePstnUsages "US and Canada"
New-CsOnlineVoiceRoutingPolicy "No Restrictions" -OnlinePstnUsages "US and Canada"
Get-CsOnlineVoiceRoutingPolicy -Identity "Tag:No Restrictions" |
    Set-CsOnlineVoiceRoutingPolicy -OnlinePstnUsages @{Add = "International"}
New-CsOnlineVoiceRoutingPolicy -Identity "Seattle" -OnlinePstnUsages "Seattle Local", "US and Canada", "International"
New-CsOnlineVoiceRoutingPolicy -Identity "Pune" -OnlinePstnUsages "India", "International"

# --- Dial plans ---------------------------------------------------------------------------------
# Each site dials its colleagues by a 4-digit extension; both dial 10-digit numbers, HQ 7-digit ones.
$plans = @(
    @{ Name = "Redmond"; Extension = '+1425555$1'; Description = "HQ dialing" }
    @{ Name = "Seattle"; Extension = '+1206555$1'; Description = $null }
)
foreach ($plan in $plans) {
    $extension = New-CsVoiceNormalizationRule -Parent Global -Name "$($plan.Name)Extension" -Pattern '^(\d{4})$' `
        -Translation $plan.Extension -IsInternalExtension $true -InMemory
    New-CsTenantDialPlan -Identity $plan.Name -Description $plan.Description -NormalizationRules $extension
}
$local7 = New-CsVoiceNormalizationRule -Identity "Global/Local7" -Pattern '^(\d{7})$' -Translation '+1425$1' -InMemory
$ten = New-CsVoiceNormalizationRule -Parent Global -Name TenDigit -Pattern '^([2-9]\d\d[2-9]\d{6})$' `
    -Translation '+1$1' -InMemory
Set-CsTenantDialPlan -Identity "Redmond" -NormalizationRules @{Add = $local7, $ten}
Set-CsTenantDialPlan -Identity "Seattle" -NormalizationRules @{Add = $ten}

# --- Survivable Branch Appliance ----------------------------------------------------------------
New-CsTeamsSurvivableBranchAppliance -Fqdn sba1.contoso.com -Site Seattle -Description "SBA 1"
New-CsTeamsSurvivableBranchAppliancePolicy -Identity SEA -BranchApplianceFqdns "sba1.contoso.com"

# --- Emergency calling ----------------------------------------------------------------------------
$address = New-CsOnlineLisCivicAddress -HouseNumber 1 -StreetName "Pike" -StreetSuffix "St" -City Seattle `
    -StateOrProvince WA -PostalCode 98101 -CountryOrRegion US -CompanyName Contoso
$floor3 = New-CsOnlineLisLocation -CivicAddressId $address.CivicAddressId -Location "Floor 3"
Set-CsOnlineLisSubnet -Subnet 10.20.3.0 -LocationId $floor3.LocationId -Description "Seattle floor 3"

$e911 = New-CsTeamsEmergencyNumber -EmergencyDialString 911 -EmergencyDialMask 112 -OnlinePSTNUsage "US Emergency"
$e933 = New-CsTeamsEmergencyNumber -EmergencyDialString 933 -OnlinePSTNUsage "US Emergency"
New-CsTeamsEmergencyCallRoutingPolicy -Identity "Seattle 911" -EmergencyNumbers @{Add = $e911, $e933} `
    -AllowEnhancedEmergencyServices:$true -Description "911 through the branch SBC"
Set-CsTenantNetworkSite -Identity Seattle -EmergencyCallRoutingPolicy "Seattle 911"
New-CsTeamsEmergencyCallingPolicy -Identity "Security Desk" -NotificationGroup "security@contoso.com" `
    -NotificationMode ConferenceMuted -NotificationDialOutNumber "+14255550199" -ExternalLocationLookupMode Enabled
Grant-CsTeamsEmergencyCallingPolicy -Global -PolicyName "Security Desk"

# --- Caller ID ------------------------------------------------------------------------------------
$frontDesk = New-CsOnlineApplicationInstance -UserPrincipalName frontdesk@contoso.com `
    -ApplicationId ce933385-9390-45d1-9512-c8d228074e07 -DisplayName "Contoso Front Desk"
Set-CsPhoneNumberAssignment -Identity frontdesk@contoso.com -PhoneNumber "+14255550150" -PhoneNumberType DirectRouting
New-CsCallingLineIdentity -Identity "Main Number" -CallingIDSubstitute Service -ServiceNumber "+14255550100" `
    -EnableUserOverride $true -CompanyName "Contoso"
New-CsCallingLineIdentity -Identity "Front Desk" -CallingIDSubstitute Resource -ResourceAccount $frontDesk.ObjectId `
    -CompanyName "Contoso Front Desk"
New-CsCallingLineIdentity -Identity "Withheld" -CallingIDSubstitute Anonymous -Description "no caller ID"
New-CsTeamsUnassignedNumberTreatment -Identity "Unassigned HQ" -Pattern '^\+1425555\d{4}$' `
    -TargetType ResourceAccount -Target $frontDesk.ObjectId -TreatmentPriority 1

# --- Calling policy with Location-Based Routing for the Pune office --------------------------------
New-CsTeamsCallingPolicy -Identity "Toll Bypass" -PreventTollBypass $true
Grant-CsTeamsCallingPolicy -Group "Pune Office" -PolicyName "Toll Bypass" -Rank 1
Grant-CsCallingLineIdentity -Group "Front Desk" -PolicyName "Front Desk" -Rank 1

# --- Users, from users.csv -------------------------------------------------------------------------
$users = Import-Csv -Path users.csv
foreach ($u in $users) {
    Set-CsPhoneNumberAssignment -Identity $u.UserPrincipalName -PhoneNumber $u.PhoneNumber `
        -PhoneNumberType DirectRouting -NetworkSiteId $u.Site
    Grant-CsOnlineVoiceRoutingPolicy -Identity $u.UserPrincipalName -PolicyName $u.VoiceRoutingPolicy
    if ($u.DialPlan -ne "") {
        Grant-CsTenantDialPlan -Identity $u.UserPrincipalName -PolicyName $u.DialPlan
    }
    if ($u.Branch -ne "") {
        Grant-CsTeamsSurvivableBranchAppliancePolicy -Identity $u.UserPrincipalName -PolicyName $u.Branch
    }
    if ($u.Site -eq "Redmond") {
        Grant-CsCallingLineIdentity -Identity $u.UserPrincipalName -PolicyName "Main Number"
    }
    Set-CsOnlineVoicemailUserSettings -Identity $u.UserPrincipalName -VoicemailEnabled $true `
        -CallAnswerRule RegularVoicemail -PromptLanguage "en-US"
}

# Dave withholds his number.
Grant-CsCallingLineIdentity -Identity dave@contoso.com -PolicyName "Withheld"

# Seattle users on floor 3 get that floor as their emergency location.
$users | Where-Object { $_.Site -eq "Seattle" } | ForEach-Object {
    Set-CsPhoneNumberAssignment -PhoneNumber $_.PhoneNumber -LocationId $floor3.LocationId
}

# Dave forwards unanswered calls to voicemail after 20 seconds; erin rings her mobile at the same time.
Set-CsUserCallingSettings -Identity dave@contoso.com -IsUnansweredEnabled $true -UnansweredTargetType Voicemail `
    -UnansweredDelay 00:00:20
Set-CsUserCallingSettings -Identity erin@contoso.com -IsForwardingEnabled $true -ForwardingType Simultaneous `
    -ForwardingTargetType SingleTarget -ForwardingTarget "+12065550299"

# Check what the users got.
Get-CsOnlineUser -Identity carol@contoso.com | Select-Object OnlineVoiceRoutingPolicy, TenantDialPlan
Write-Host @"
Contoso Direct Routing configured:
  $($users.Count) users, caller ID, 911 and Location-Based Routing for Pune.
"@
