"""The typed tenant model: defaults, the PowerShell parameter table, equality, validation."""

from __future__ import annotations

import dataclasses

import pytest

from simulator.tenant.errors import SourcePosition, TenantError
from simulator.tenant.model import (
    PS_PARAMETERS,
    Gateway,
    InvalidValue,
    Tenant,
    User,
    VoiceRoute,
    field_for,
    parse_failover_codes,
)
from simulator.tenant.ps_loader import KINDS


def test_the_powershell_loader_reads_exactly_the_model_parameter_table() -> None:
    for kind, spec in KINDS.items():
        aliases = {a for a, _ in spec.aliases}
        assert {ps: p.field for ps, p in spec.params.items()} == {
            ps: name for ps, name in PS_PARAMETERS[kind].items() if ps not in aliases}, kind
        for ps in (*spec.params, *aliases):
            assert field_for(kind, ps) is not None, (kind, ps)


def test_parameter_table_round_trips_to_fields() -> None:
    assert PS_PARAMETERS["gateway"]["IPAddressVersion"] == "ip_address_version"
    assert field_for("gateway", "sipsignallingport") == "sip_signaling_port"
    assert field_for("site", "NetworkRegionID") == "network_region_id"
    names = {f.name for f in dataclasses.fields(Gateway)}
    assert set(PS_PARAMETERS["gateway"].values()) <= names


def test_positions_do_not_take_part_in_equality() -> None:
    a, b = Tenant(), Tenant()
    a.add("gateway", Gateway("s.example.com", 5061, position=SourcePosition("a.yaml", 3)))
    b.add("gateway", Gateway("s.example.com", 5061, position=SourcePosition("b.ps1", 9)))
    assert a == b
    b.add("gateway", Gateway("t.example.com", 5061))
    assert a != b


def test_every_tenant_has_the_global_policies() -> None:
    t = Tenant()
    u = User("u@x.com")
    assert t.effective_policy(u, "voice_routing_policy").name == "Global"
    assert t.effective_policy(u, "dial_plan").normalization_rules == ()


def test_validation_names_the_unknown_reference_at_its_owner() -> None:
    t = Tenant(usages=("US",))
    t.add("voice_route", VoiceRoute("R", online_pstn_usages=("EU",), position=SourcePosition("f.yaml", 4, 5)))
    with pytest.raises(TenantError, match=r"^f.yaml:4:5: voice route 'R' names unknown PSTN usage 'EU'"):
        t.validate()


@pytest.mark.parametrize(("text", "codes"), [("408, 503, 504", {408, 503, 504}), ("408", {408})])
def test_failover_codes(text, codes) -> None:
    assert parse_failover_codes(text) == codes


def test_reverse_number_lookup_is_exact() -> None:
    t = Tenant()
    t.add("user", User("a@x.com", "+14255550100;ext=12"))
    assert t.user_by_number("+14255550100;ext=12").upn == "a@x.com"
    assert t.user_by_number("+14255550100") is None


def test_an_object_checks_its_values_when_made_and_when_replaced() -> None:
    gateway = Gateway("sbc1.contoso.com", 5061)
    assert gateway.failover_response_codes == frozenset({408, 503, 504})
    with pytest.raises(InvalidValue, match=r"^sip_signaling_port \(-SipSignalingPort\) must be a whole number "
                                           r"from 1 to 65535, not 0$") as caught:
        Gateway("sbc1.contoso.com", 0)
    assert caught.value.field == "sip_signaling_port"
    with pytest.raises(InvalidValue, match="not 200"):
        dataclasses.replace(gateway, failover_response_codes=frozenset({408, 200}))
    with pytest.raises(InvalidValue, match="must be a whole number from 1 to 3600, not True"):
        dataclasses.replace(gateway, failover_time_seconds=True)


@pytest.mark.parametrize(("text", "message"), [
    ("408, 5xx", "is a comma list of SIP response codes"),
    ("408;503", "is a comma list of SIP response codes"),
    ("\u0664\u0660\u0668", "is a comma list of SIP response codes"),  # Arabic-Indic digits: not SIP codes
])
def test_failover_codes_text_that_is_not_a_comma_list(text: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        parse_failover_codes(text)
