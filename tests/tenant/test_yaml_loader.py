"""The drlab YAML tenant format: errors point at FILE:LINE:COL; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.tenant.errors import TenantError
from simulator.tenant.yaml_loader import load_yaml, parse_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BASE = """\
domains: [contoso.com]
pstn_usages: [US and Canada]
gateways:
  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061, enabled: true}
voice_routes:
  - {name: R1, number_pattern: '^\\+1(\\d{10})$', online_pstn_gateway_list: [sbc1.contoso.com],
     online_pstn_usages: [US and Canada], priority: 1}
"""


def test_contoso_example_loads() -> None:
    t = load_yaml(EXAMPLES / "contoso.yaml")
    assert set(t.sites) == {"redmond", "seattle", "pune"}
    assert t.find("sba", "sba1.contoso.com").site == "Seattle"
    assert [u.upn for u in t.users.values() if u.sba_policy == "SEA"] == [
        "carol@contoso.com", "dave@contoso.com", "erin@contoso.com"]
    assert t.find("gateway", "SBC2.contoso.com").failover_time_seconds == 20


def test_defaults_are_the_cmdlets_defaults() -> None:
    t = parse_yaml("domains: [example.com]\ngateways:\n  - {fqdn: a.example.com, sip_signaling_port: 5061}\n")
    g = t.find("gateway", "a.example.com")
    assert (g.enabled, g.send_sip_options, g.failover_response_codes, g.failover_time_seconds,
            g.max_concurrent_sessions, g.forward_pai, g.media_bypass, g.bypass_mode) == (
        False, True, frozenset({408, 503, 504}), 10, None, False, False, "None")


def test_omitted_route_priority_gets_the_next_free_one() -> None:
    t = parse_yaml(BASE + "  - {name: R2, online_pstn_usages: [US and Canada]}\n")
    assert t.find("voice_route", "R2").priority == 2
    assert t.find("voice_route", "R2").number_pattern == "[0-9]{10}"


def test_user_with_a_number_is_direct_routing_and_voice_enabled() -> None:
    t = parse_yaml("users:\n  - {upn: a@x.com, phone_number: '+14255550100'}\n  - {upn: b@x.com}\n")
    a, b = t.user("a@x.com"), t.user("b@x.com")
    assert (a.phone_number_type, a.enterprise_voice_enabled) == ("DirectRouting", True)
    assert (b.phone_number_type, b.enterprise_voice_enabled) == (None, False)


@pytest.mark.parametrize(("text", "where", "message"), [
    (BASE + "bogus: 1\n", "8:1", "unknown top-level key 'bogus'"),
    (BASE.replace("enabled: true", "enabeld: true"), "4:56", "unknown key 'enabeld'"),
    (BASE.replace("5061", "'x'"), "4:50", "sip_signaling_port of an entry of gateways must be an integer"),
    (BASE.replace("'^\\+1(\\d{10})$'", "'^(\\d{10}$'"), "6:32", "bad regular expression"),
    (BASE.replace("online_pstn_usages: [US", "online_pstn_usages: [USA"), "6:5", "unknown PSTN usage 'USA and Canada'"),
    (BASE.replace("[sbc1.contoso.com]", "[sbc9.contoso.com]"), "6:5", "unknown PSTN gateway 'sbc9.contoso.com'"),
    (BASE + "  - {name: r1, online_pstn_usages: []}\n", "8:5", "'r1' twice"),
    ("gateways:\n  - {fqdn: a.example.com}\n", "2:5", "needs sip_signaling_port"),
    ("gateways:\n  - {fqdn: a, sip_signaling_port: 1, bypass_mode: Sometimes}\n", "2:51", "must be one of"),
    ("gateways:\n  - {fqdn: a, sip_signaling_port: 1, failover_response_codes: '408,200'}\n", "2:63", "not 200"),
    ("users: [{upn: a@x.com, voice_routing_policy: Nope}]\n", "1:9", "unknown online voice routing policy 'Nope'"),
    ("pstn_usages: [a, A]\n", "1:18", "listed twice"),
    ("pstn_usages: [a\n", "2:1", "not valid YAML"),
])
def test_errors_point_at_file_line_col(text, where, message) -> None:
    with pytest.raises(TenantError) as err:
        parse_yaml(text, "t.yaml")
    assert str(err.value).startswith(f"t.yaml:{where}: "), str(err.value)
    assert message in str(err.value)


def test_missing_file_is_a_tenant_error(tmp_path) -> None:
    with pytest.raises(TenantError, match="cannot read tenant file"):
        load_yaml(tmp_path / "nope.yaml")


def test_global_instances_can_be_edited_and_granted_globally() -> None:
    t = parse_yaml("pstn_usages: [US]\nvoice_routing_policies:\n  - {name: Global, online_pstn_usages: [US]}\n"
                   "  - {name: Other}\nglobal_grants: {dial_plan: Big}\n"
                   "dial_plans:\n  - {name: Big, normalization_rules: [{name: r, pattern: '^(\\d{4})$'}]}\n"
                   "users: [{upn: a@x.com}]\n")
    u = t.user("a@x.com")
    assert t.effective_policy(u, "voice_routing_policy").online_pstn_usages == ("US",)
    assert t.effective_policy(u, "dial_plan").normalization_rules[0].translation == "+$1"  # the cmdlet's default [S17]


def test_emergency_numbers_load() -> None:
    t = parse_yaml("pstn_usages: [Emergency]\nemergency_call_routing_policies:\n"
                   "  - {name: E, emergency_numbers: [{dial_string: '911', online_pstn_usage: Emergency}]}\n")
    assert t.find("emergency_call_routing_policy", "e").emergency_numbers[0].dial_string == "911"


def test_emergency_number_with_unknown_usage_is_an_error_at_the_number() -> None:
    with pytest.raises(TenantError, match=r"^t.yaml:2:35: emergency number '911' of 'E' names unknown PSTN usage"):
        parse_yaml("emergency_call_routing_policies:\n  - {name: E, emergency_numbers: "
                   "[{dial_string: '911', online_pstn_usage: Nope}]}\n", "t.yaml")
