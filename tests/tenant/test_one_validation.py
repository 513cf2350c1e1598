"""One set of rules for a tenant's values: the model's. The same bad value in a YAML tenant and in
a PowerShell runbook is refused with the same message, at the value as each format spells it.

In each source, `«` marks where the offending value starts; the test removes it and expects the
error at that line and column.
"""

from __future__ import annotations

import pytest

from simulator.errors import SourcePosition
from simulator.tenant.errors import TenantError
from simulator.tenant.ps_loader import run_powershell
from simulator.tenant.yaml_loader import parse_yaml

GW = "gateways:\n  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061, "
PS_GW = "New-CsOnlinePSTNGateway -Identity sbc1.contoso.com -SipSignalingPort 5061 "
LONG_FQDN = "a" * 60 + ".com"

CASES = [
    # (what, YAML tenant, PowerShell runbook, the message both give)
    ("failover time above an hour",
     GW + "failover_time_seconds: «99999}\n", PS_GW + "-FailoverTimeSeconds «99999",
     "failover_time_seconds (-FailoverTimeSeconds) must be a whole number from 1 to 3600, not 99999"),
    ("no concurrent sessions",
     GW + "max_concurrent_sessions: «0}\n", PS_GW + "-MaxConcurrentSessions «0",
     "max_concurrent_sessions (-MaxConcurrentSessions) must be a whole number from 1 to 100000, not 0"),
    ("port out of range",
     "gateways:\n  - {fqdn: sbc1.contoso.com, sip_signaling_port: «70000}\n",
     "New-CsOnlinePSTNGateway -Identity sbc1.contoso.com -SipSignalingPort «70000",
     "sip_signaling_port (-SipSignalingPort) must be a whole number from 1 to 65535, not 70000"),
    ("a failover code that is not a SIP code (list)",
     GW + "failover_response_codes: «[408, 50]}\n", PS_GW + "-FailoverResponseCodes «'408, 50'",
     "failover_response_codes (-FailoverResponseCodes) must be SIP response codes from 400 to 699, not 50"),
    ("a failover code that is not a SIP code (comma text)",
     GW + "failover_response_codes: «'50'}\n", PS_GW + "-FailoverResponseCodes «\"50\"",
     "failover_response_codes (-FailoverResponseCodes) must be SIP response codes from 400 to 699, not 50"),
    ("failover codes that are not numbers",
     GW + "failover_response_codes: «'408, 5xx'}\n", PS_GW + "-FailoverResponseCodes «'408, 5xx'",
     "failover_response_codes (-FailoverResponseCodes) is a comma list of SIP response codes like "
     "\"408, 503, 504\", not '408, 5xx'"),
    ("bypass mode that does not exist",
     GW + "bypass_mode: «Sometimes}\n", PS_GW + "-BypassMode «Sometimes",
     "bypass_mode (-BypassMode) must be one of None, Always, OnlyForLocalUsers, not 'Sometimes'"),
    ("gateway FQDN longer than 63 characters",
     f"gateways:\n  - {{fqdn: «{LONG_FQDN}, sip_signaling_port: 5061}}\n",
     f"New-CsOnlinePSTNGateway -Identity «{LONG_FQDN} -SipSignalingPort 5061",
     f"fqdn must be at most 63 characters long, not '{LONG_FQDN}'"),
    ("route pattern with a huge repeat count",
     "voice_routes:\n  - {name: R, number_pattern: «'\\d{99999999999999999999}'}\n",
     "New-CsOnlineVoiceRoute -Identity R -NumberPattern «'\\d{99999999999999999999}'",
     "number_pattern (-NumberPattern): bad regular expression '\\\\d{99999999999999999999}': "
     "a repeat count is too large"),
    ("route pattern that does not compile",
     "voice_routes:\n  - {name: R, number_pattern: «'^(1'}\n",
     "New-CsOnlineVoiceRoute -Identity R -NumberPattern «'^(1'",
     "number_pattern (-NumberPattern): bad regular expression '^(1': missing ), unterminated subpattern at offset 1"),
    ("negative route priority",
     "voice_routes:\n  - {name: R, priority: «-1}\n", "New-CsOnlineVoiceRoute -Identity R -Priority «-1",
     "priority (-Priority) must be a whole number from 0 to 2147483647, not -1"),
    ("translation rule pattern with .NET balancing groups",
     "translation_rules:\n  - {name: T, pattern: «'(?<a-b>x)', translation: x}\n",
     "New-CsTeamsTranslationRule -Identity T -Pattern «'(?<a-b>x)' -Translation x",
     "pattern (-Pattern): .NET balancing groups are not supported by drlab"),
    ("subnet mask beyond IPv6",
     "subnets:\n  - {subnet_id: 10.0.0.0, mask_bits: «200}\n",
     "New-CsTenantNetworkSubnet -Identity 10.0.0.0 -MaskBits «200",
     "mask_bits (-MaskBits) must be a whole number from 0 to 128, not 200"),
    ("emergency dial string with a letter",
     "pstn_usages: [E]\nemergency_call_routing_policies:\n  - {name: P, emergency_numbers: [{dial_string: «91a}]}\n",
     "New-CsTeamsEmergencyNumber -EmergencyDialString «91a",
     "dial_string (-EmergencyDialString) must be digits only, not '91a'"),
    ("phone number that is not E.164",
     "users:\n  - {upn: a@contoso.com, phone_number: «425-555-0100}\n",
     "Set-CsPhoneNumberAssignment -Identity a@contoso.com -PhoneNumber «425-555-0100 -PhoneNumberType DirectRouting",
     "phone_number (-PhoneNumber) must be an E.164 number like +14255550100 (optionally ;ext=123), "
     "not '425-555-0100'"),
    ("unanswered delay above ten minutes",
     "users:\n  - {upn: a@contoso.com, unanswered_delay_seconds: «601}\n",
     "Set-CsUserCallingSettings -Identity a@contoso.com -UnansweredDelay «00:10:01",
     "unanswered_delay_seconds (-UnansweredDelay) must be a whole number from 1 to 600, not 601"),
]


def _marked(source: str, path: str) -> tuple[str, SourcePosition]:
    before, _, _ = source.partition("«")
    line = before.count("\n") + 1
    return source.replace("«", "", 1), SourcePosition(path, line, len(before) - (before.rfind("\n") + 1) + 1)


def _refusal(load, source: str, path: str) -> tuple[str, SourcePosition]:
    text, _ = _marked(source, path)
    with pytest.raises(TenantError) as caught:
        load(text, path)
    return caught.value.message, caught.value.position


@pytest.mark.parametrize(("what", "yaml_source", "ps_source", "message"), CASES, ids=[c[0] for c in CASES])
def test_both_loaders_refuse_a_bad_value_with_the_models_message(
        what: str, yaml_source: str, ps_source: str, message: str) -> None:
    assert _refusal(parse_yaml, yaml_source, "t.yaml") == (message, _marked(yaml_source, "t.yaml")[1])
    assert _refusal(run_powershell, ps_source, "t.ps1") == (message, _marked(ps_source, "t.ps1")[1])
