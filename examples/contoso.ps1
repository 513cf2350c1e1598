<#
    Contoso Direct Routing - tenant configuration runbook
    HQ in Redmond (two SBCs), a branch in Seattle with its own SBC, a Survivable Branch
    Appliance, three users (carol, dave, erin), 911 with PIDF-LO and caller ID policies; an office
    in Pune, India, under Location-Based Routing (priya). Same tenant as examples/contoso.yaml;
    `drlab route --tenant examples/contoso.ps1`
    loads it and skips what changes nothing drlab simulates (Connect-MicrosoftTeams, Select-Object, Write-Host).
#>

Import-Module MicrosoftTeams
Connect-MicrosoftTeams

# --- Registered domains (Microsoft Graph PowerShell): every SBC FQDN must be in one -----------
New-MgDomain -Id contoso.com

# --- PSTN usages (one global list) --------------------------------------------------------
Set-CsOnlinePstnUsage -Identity Global -Usage @{Add = "US and Canada"}
Set-CsOnlinePstnUsage -Identity Global -Usage @{Add = "International"}
Set-CsOnlinePstnUsage -Identity Global -Usage @{Add = "Seattle Local"}
Set-CsOnlinePstnUsage -Identity Global -Usage @{Add = "US Emergency"}

# --- Trunk translation rules --------------------------------------------------------------
New-CsTeamsTranslationRule -Identity 'AddPlus1' -Pattern '^(\d{10})$' -Translation '+1$1' `
    -Description "10-digit caller IDs from the carrier"
New-CsTeamsTranslationRule -Identity 'StripPlus1' -Pattern '^\+1(\d{10})$' -Translation '$1'

# --- Network topology ---------------------------------------------------------------------
New-CsTenantNetworkRegion -NetworkRegionID "North America"
New-CsTenantNetworkSite -NetworkSiteID "Redmond" -NetworkRegionID "North America" -Description "HQ"
New-CsTenantNetworkSite -NetworkSiteID "Seattle" -NetworkRegionID "North America" -Description "Seattle branch"
New-CsTenantNetworkSubnet -SubnetID 10.10.0.0 -MaskBits 16 -NetworkSiteID "Redmond"
New-CsTenantNetworkSubnet -SubnetID 10.20.0.0 -MaskBits 16 -NetworkSiteID "Seattle"
New-CsTenantTrustedIPAddress -IPAddress 198.51.100.10 -MaskBits 32 -Description "HQ internet egress"
New-CsTenantTrustedIPAddress -IPAddress 198.51.100.20 -MaskBits 32 -Description "Seattle internet egress"

# --- SBCs (online PSTN gateways) ----------------------------------------------------------
$hqSbc = @{
    SipSignalingPort      = 5061
    Enabled               = $true
    MaxConcurrentSessions = 100
    ForwardPai            = $true
    GatewaySiteId         = "Redmond"
}
New-CsOnlinePSTNGateway -Fqdn sbc1.contoso.com @hqSbc
New-CsOnlinePSTNGateway -Fqdn sbc2.contoso.com @hqSbc -FailoverTimeSeconds 20

# The branch SBC does media bypass so that the SBA can anchor calls locally during an outage,
# and takes the caller's location (PIDF-LO) with 911 calls.
New-CsOnlinePSTNGateway -Fqdn sbc-sea.contoso.com -SipSignalingPort 5061 -Enabled:$true `
    -MediaBypass $true -GatewaySiteId Seattle -PidfLoSupported $true `
    -FailoverResponseCodes "408,503,504" `
    -InboundPstnNumberTranslationRules AddPlus1 `
    -OutboundPstnNumberTranslationRules 'StripPlus1'

# --- Voice routes ---------------------------------------------------------------------------
New-CsOnlineVoiceRoute -Identity "Redmond 1" -NumberPattern '^\+1(425|206)(\d{7})$' `
    -OnlinePstnGatewayList sbc1.contoso.com, sbc2.contoso.com -Priority 1 -OnlinePstnUsages "US and Canada"
New-CsOnlineVoiceRoute -Identity "Redmond 2" -NumberPattern '^\+1(425|206)(\d{7})$' `
    -OnlinePstnGatewayList sbc-sea.contoso.com -Priority 2 -OnlinePstnUsages "US and Canada"
New-CsOnlineVoiceRoute -Identity "Other +1" -NumberPattern '^\+1(\d{10})$' `
    -OnlinePstnGatewayList @("sbc1.contoso.com", "sbc2.contoso.com") -Priority 3 -OnlinePstnUsages "US and Canada"
New-CsOnlineVoiceRoute -Identity "International" -NumberPattern '\d+' `
    -OnlinePstnGatewayList sbc2.contoso.com -Priority 4 -OnlinePstnUsages International
New-CsOnlineVoiceRoute -Identity "Seattle Local" -NumberPattern '^\+1206(\d{7})$' `
    -OnlinePstnGatewayList sbc-sea.contoso.com -Priority 1 -OnlinePstnUsages "Seattle Local"
# Emergency calls leave through the branch SBC; the pattern must match the dial string exactly.
New-CsOnlineVoiceRoute -Identity "Emergency 911" -NumberPattern '^(911|933)$' `
    -OnlinePstnGatewayList sbc-sea.contoso.com -Priority 5 -OnlinePstnUsages "US Emergency"

# --- Voice routing policies ---------------------------------------------------------------
New-CsOnlineVoiceRoutingPolicy "US Only" -OnlinePstnUsages "US and Canada"
New-CsOnlineVoiceRoutingPolicy "No Restrictions" -OnlinePstnUsages "US and Canada"
Set-CsOnlineVoiceRoutingPolicy -Identity "Tag:No Restrictions" -OnlinePstnUsages @{Add = "International"}
New-CsOnlineVoiceRoutingPolicy -Identity "Seattle" -OnlinePstnUsages "Seattle Local", "US and Canada", "International"

# --- Dial plans -----------------------------------------------------------------------------
$ext = New-CsVoiceNormalizationRule -Parent Global -Name "RedmondExtension" -Pattern '^(\d{4})$' `
    -Translation '+1425555$1' -IsInternalExtension $true -InMemory
$local7 = New-CsVoiceNormalizationRule -Identity "Global/Local7" -Pattern '^(\d{7})$' -Translation '+1425$1' -InMemory
$ten = New-CsVoiceNormalizationRule -Parent Global -Name TenDigit -Pattern '^([2-9]\d\d[2-9]\d{6})$' `
    -Translation '+1$1' -InMemory
New-CsTenantDialPlan -Identity "Redmond" -Description "HQ dialing" -NormalizationRules @{Add = $ext}
Set-CsTenantDialPlan -Identity "Redmond" -NormalizationRules @{Add = $local7, $ten}

$seaExt = New-CsVoiceNormalizationRule -Parent Global -Name SeattleExtension -Pattern '^(\d{4})$' `
    -Translation '+1206555$1' -IsInternalExtension $true -InMemory
New-CsTenantDialPlan -Identity "Seattle" -NormalizationRules $seaExt, $ten

# --- Survivable Branch Appliance ------------------------------------------------------------
New-CsTeamsSurvivableBranchAppliance -Fqdn sba1.contoso.com -Site Seattle -Description "SBA 1"
New-CsTeamsSurvivableBranchAppliancePolicy -Identity SEA -BranchApplianceFqdns "sba1.contoso.com"

# --- Emergency calling ----------------------------------------------------------------------
# The Seattle office's address; clients on floor 3's subnet are located there.
$address = New-CsOnlineLisCivicAddress -HouseNumber 1 -StreetName "Pike" -StreetSuffix "St" -City Seattle `
    -StateOrProvince WA -PostalCode 98101 -CountryOrRegion US -CompanyName Contoso
$floor3 = New-CsOnlineLisLocation -CivicAddressId $address.CivicAddressId -Location "Floor 3"
Set-CsOnlineLisSubnet -Subnet 10.20.3.0 -LocationId $floor3.LocationId -Description "Seattle floor 3"
# 911 (and 112, which dials 911) and 933 from the Seattle site, through the "US Emergency" usage.
$e911 = New-CsTeamsEmergencyNumber -EmergencyDialString 911 -EmergencyDialMask 112 -OnlinePSTNUsage "US Emergency"
$e933 = New-CsTeamsEmergencyNumber -EmergencyDialString 933 -OnlinePSTNUsage "US Emergency"
New-CsTeamsEmergencyCallRoutingPolicy -Identity "Seattle 911" -EmergencyNumbers @{Add = $e911, $e933} `
    -AllowEnhancedEmergencyServices:$true -Description "911 through the branch SBC"
Set-CsTenantNetworkSite -Identity Seattle -EmergencyCallRoutingPolicy "Seattle 911"

# --- Caller ID ------------------------------------------------------------------------------
$frontDesk = New-CsOnlineApplicationInstance -UserPrincipalName frontdesk@contoso.com `
    -ApplicationId ce933385-9390-45d1-9512-c8d228074e07 -DisplayName "Contoso Front Desk"
Set-CsPhoneNumberAssignment -Identity frontdesk@contoso.com -PhoneNumber "+14255550150" -PhoneNumberType DirectRouting
New-CsCallingLineIdentity -Identity "Main Number" -CallingIDSubstitute Service -ServiceNumber "+14255550100" `
    -EnableUserOverride $true -CompanyName "Contoso"
New-CsCallingLineIdentity -Identity "Front Desk" -CallingIDSubstitute Resource -ResourceAccount $frontDesk.ObjectId `
    -CompanyName "Contoso Front Desk"
New-CsCallingLineIdentity -Identity "Withheld" -CallingIDSubstitute Anonymous -Description "no caller ID"

# --- Users ----------------------------------------------------------------------------------
Set-CsPhoneNumberAssignment -Identity alice@contoso.com -PhoneNumber "+14255550101" -PhoneNumberType DirectRouting `
    -NetworkSiteId Redmond
Grant-CsOnlineVoiceRoutingPolicy -Identity alice@contoso.com -PolicyName "No Restrictions"
Grant-CsTenantDialPlan -Identity alice@contoso.com -PolicyName Redmond
Grant-CsCallingLineIdentity -Identity alice@contoso.com -PolicyName "Main Number"

Set-CsPhoneNumberAssignment -Identity bob@contoso.com -PhoneNumber "+14255550102" -PhoneNumberType DirectRouting `
    -NetworkSiteId Redmond
Grant-CsOnlineVoiceRoutingPolicy -Identity bob@contoso.com -PolicyName "US Only"
Grant-CsTenantDialPlan -Identity bob@contoso.com -PolicyName Redmond
Grant-CsCallingLineIdentity -Identity bob@contoso.com -PolicyName "Main Number"

Set-CsPhoneNumberAssignment -Identity carol@contoso.com -PhoneNumber "+12065550201" -PhoneNumberType DirectRouting `
    -NetworkSiteId Seattle -LocationId $floor3.LocationId
Grant-CsOnlineVoiceRoutingPolicy -Identity carol@contoso.com -PolicyName Seattle
Grant-CsTenantDialPlan -Identity carol@contoso.com -PolicyName Seattle
Grant-CsTeamsSurvivableBranchAppliancePolicy -PolicyName SEA -Identity carol@contoso.com

Set-CsPhoneNumberAssignment -Identity dave@contoso.com -PhoneNumber "+12065550202" -PhoneNumberType DirectRouting `
    -NetworkSiteId Seattle -LocationId $floor3.LocationId
Grant-CsOnlineVoiceRoutingPolicy -Identity dave@contoso.com -PolicyName Seattle
Grant-CsTenantDialPlan -Identity dave@contoso.com -PolicyName Seattle
Grant-CsTeamsSurvivableBranchAppliancePolicy -PolicyName SEA -Identity dave@contoso.com
Grant-CsCallingLineIdentity -Identity dave@contoso.com -PolicyName "Withheld"

Set-CsPhoneNumberAssignment -Identity erin@contoso.com -PhoneNumber "+12065550203" -PhoneNumberType DirectRouting `
    -NetworkSiteId Seattle -LocationId $floor3.LocationId
Grant-CsOnlineVoiceRoutingPolicy -Identity erin@contoso.com -PolicyName Seattle
Grant-CsTenantDialPlan -Identity erin@contoso.com -PolicyName Seattle
Grant-CsTeamsSurvivableBranchAppliancePolicy -PolicyName SEA -Identity erin@contoso.com

# --- Location-Based Routing: the Pune office (India: no toll bypass) ------------------------
# The site, its SBC and its user are all enabled for LBR: priya calls the PSTN only through
# sbc-pun while she is at Pune, and no user who is not enabled for LBR can use sbc-pun.
Set-CsOnlinePstnUsage -Identity Global -Usage @{Add = "India"}
New-CsTenantNetworkRegion -NetworkRegionID "India"
New-CsTenantNetworkSite -NetworkSiteID "Pune" -NetworkRegionID "India" -Description "Pune office (India: no toll bypass)" `
    -EnableLocationBasedRouting $true
New-CsTenantNetworkSubnet -SubnetID 10.30.0.0 -MaskBits 16 -NetworkSiteID "Pune"
New-CsOnlinePSTNGateway -Fqdn sbc-pun.contoso.com -SipSignalingPort 5061 -Enabled $true `
    -GatewaySiteId Pune -GatewaySiteLbrEnabled $true
New-CsOnlineVoiceRoute -Identity "India" -NumberPattern '^\+91(\d{10})$' `
    -OnlinePstnGatewayList sbc-pun.contoso.com -Priority 1 -OnlinePstnUsages "India"
New-CsOnlineVoiceRoutingPolicy -Identity "Pune" -OnlinePstnUsages "India", "International"
New-CsTeamsCallingPolicy -Identity "Toll Bypass" -PreventTollBypass $true

Set-CsPhoneNumberAssignment -Identity priya@contoso.com -PhoneNumber "+912071234501" -PhoneNumberType DirectRouting `
    -NetworkSiteId Pune
Grant-CsOnlineVoiceRoutingPolicy -Identity priya@contoso.com -PolicyName Pune
Grant-CsTeamsCallingPolicy -Identity priya@contoso.com -PolicyName "Toll Bypass"

# Check what the users got.
Get-CsOnlineUser -Identity carol@contoso.com | Select-Object OnlineVoiceRoutingPolicy, TenantDialPlan
Write-Host "Contoso Direct Routing configured."
