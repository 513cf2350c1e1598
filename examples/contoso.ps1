<#
    Contoso Direct Routing - tenant configuration runbook
    HQ in Redmond (two SBCs), a branch in Seattle with its own SBC, a Survivable Branch
    Appliance and three users (carol, dave, erin); an office in Pune, India, under Location-Based
    Routing (priya). Same tenant as examples/contoso.yaml; `drlab route --tenant examples/contoso.ps1`
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

# The branch SBC does media bypass so that the SBA can anchor calls locally during an outage.
New-CsOnlinePSTNGateway -Fqdn sbc-sea.contoso.com -SipSignalingPort 5061 -Enabled:$true `
    -MediaBypass $true -GatewaySiteId Seattle `
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

# --- Users ----------------------------------------------------------------------------------
Set-CsPhoneNumberAssignment -Identity alice@contoso.com -PhoneNumber "+14255550101" -PhoneNumberType DirectRouting `
    -NetworkSiteId Redmond
Grant-CsOnlineVoiceRoutingPolicy -Identity alice@contoso.com -PolicyName "No Restrictions"
Grant-CsTenantDialPlan -Identity alice@contoso.com -PolicyName Redmond

Set-CsPhoneNumberAssignment -Identity bob@contoso.com -PhoneNumber "+14255550102" -PhoneNumberType DirectRouting `
    -NetworkSiteId Redmond
Grant-CsOnlineVoiceRoutingPolicy -Identity bob@contoso.com -PolicyName "US Only"
Grant-CsTenantDialPlan -Identity bob@contoso.com -PolicyName Redmond

Set-CsPhoneNumberAssignment -Identity carol@contoso.com -PhoneNumber "+12065550201" -PhoneNumberType DirectRouting `
    -NetworkSiteId Seattle
Grant-CsOnlineVoiceRoutingPolicy -Identity carol@contoso.com -PolicyName Seattle
Grant-CsTenantDialPlan -Identity carol@contoso.com -PolicyName Seattle
Grant-CsTeamsSurvivableBranchAppliancePolicy -PolicyName SEA -Identity carol@contoso.com

Set-CsPhoneNumberAssignment -Identity dave@contoso.com -PhoneNumber "+12065550202" -PhoneNumberType DirectRouting `
    -NetworkSiteId Seattle
Grant-CsOnlineVoiceRoutingPolicy -Identity dave@contoso.com -PolicyName Seattle
Grant-CsTenantDialPlan -Identity dave@contoso.com -PolicyName Seattle
Grant-CsTeamsSurvivableBranchAppliancePolicy -PolicyName SEA -Identity dave@contoso.com

Set-CsPhoneNumberAssignment -Identity erin@contoso.com -PhoneNumber "+12065550203" -PhoneNumberType DirectRouting `
    -NetworkSiteId Seattle
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
