"""Route selection as Microsoft documents it ([S12] [S6] [S8] [S4] [S5] [S19]), as tables."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.tenant.model import Gateway, Tenant, TranslationRule, User, VoiceRoute, VoiceRoutingPolicy
from simulator.tenant.routing import fisher_yates, route_inbound, select_route, translate


def _documented_tenant(**gw_overrides) -> Tenant:
    """The worked example of [S12]: Redmond 1/Redmond 2/Other +1 in "US and Canada",
    International (\\d+) in its own usage after it; sbc1..sbc6."""
    t = Tenant(usages=("US and Canada", "International"))
    for i in range(1, 7):
        fqdn = f"sbc{i}.contoso.biz"
        t.add("gateway", Gateway(fqdn, 5061, **{"enabled": True, **gw_overrides.get(fqdn, {})}))
    us, intl = ("US and Canada",), ("International",)
    for r in (VoiceRoute("Redmond 1", r"^\+1(425|206)(\d{7})$", ("sbc1.contoso.biz", "sbc2.contoso.biz"), us, 1),
              VoiceRoute("Redmond 2", r"^\+1(425|206)(\d{7})$", ("sbc3.contoso.biz", "sbc4.contoso.biz"), us, 2),
              VoiceRoute("Other +1", r"^\+1(\d{10})$", ("sbc5.contoso.biz", "sbc6.contoso.biz"), us, 3),
              VoiceRoute("International", r"\d+", ("sbc2.contoso.biz", "sbc5.contoso.biz"), intl, 4)):
        t.add("voice_route", r)
    t.add("voice_routing_policy", VoiceRoutingPolicy("US Only", us))
    t.add("voice_routing_policy", VoiceRoutingPolicy("No Restrictions", ("US and Canada", "International")))
    t.add("voice_routing_policy", VoiceRoutingPolicy("Intl First", ("International", "US and Canada")))
    for upn, pol in (("spencer@contoso.biz", "US Only"), ("john@contoso.biz", "No Restrictions"),
                     ("ivy@contoso.biz", "Intl First")):
        t.add("user", User(upn, "+14255550101", "DirectRouting", True, voice_routing_policy=pol))
    return t


@pytest.mark.parametrize(("user", "dialed", "usage", "routes"), [
    ("spencer@contoso.biz", "+14255550100", "US and Canada", ["Redmond 1", "Redmond 2", "Other +1"]),
    ("spencer@contoso.biz", "+12065550100", "US and Canada", ["Redmond 1", "Redmond 2", "Other +1"]),
    ("spencer@contoso.biz", "+13125550100", "US and Canada", ["Other +1"]),
    ("spencer@contoso.biz", "+442071234567", None, []),
    ("john@contoso.biz", "+442071234567", "International", ["International"]),
    # a US number matches US and Canada first: International is never evaluated
    ("john@contoso.biz", "+13125550100", "US and Canada", ["Other +1"]),
    # usage order decides: with International first, its \d+ catches the US number too
    ("ivy@contoso.biz", "+14255550100", "International", ["International"]),
])
def test_documented_route_table(user, dialed, usage, routes) -> None:
    d = select_route(_documented_tenant(), user, dialed)
    assert (d.usage, [r.name for r in d.routes]) == (usage, routes)
    assert d.has_route == bool(routes)


def test_gateways_in_failover_order_keep_first_occurrence() -> None:
    d = select_route(_documented_tenant(), "john@contoso.biz", "+14255550100", rng=random.Random(3))
    assert set(d.gateways[:2]) == {"sbc1.contoso.biz", "sbc2.contoso.biz"}
    assert set(d.gateways[2:4]) == {"sbc3.contoso.biz", "sbc4.contoso.biz"}
    assert set(d.gateways[4:]) == {"sbc5.contoso.biz", "sbc6.contoso.biz"}
    assert d.to_json()["gateways"] == list(d.gateways)
    assert list(d.to_json()) == ["user", "dialed", "normalized", "dial_plan", "rule", "usage", "routes",
                                 "gateways", "lbr", "reasons", "caller_id", "location"]


def test_disabled_gateway_is_never_offered_and_new_gateways_are_disabled_by_default() -> None:
    assert Gateway("x.example.com", 5061).enabled is False
    t = _documented_tenant(**{"sbc1.contoso.biz": {"enabled": False}})
    d = select_route(t, "spencer@contoso.biz", "+14255550100")
    assert "sbc1.contoso.biz" not in d.gateways
    assert any("sbc1.contoso.biz is not offered: Enabled is false" in r for r in d.reasons)


@pytest.mark.parametrize(("mode", "expected"), [("last", ["sbc2.contoso.biz", "sbc1.contoso.biz"]),
                                                ("excluded", ["sbc2.contoso.biz"])])
def test_demoted_gateway_goes_last_or_is_excluded(mode, expected) -> None:
    t = _documented_tenant()
    for seed in range(10):
        d = select_route(t, "spencer@contoso.biz", "+14255550100", health={"SBC1.contoso.biz": False},
                         demoted=mode, rng=random.Random(seed))
        assert [g.fqdn for g in d.routes[0].gateways] == expected


def test_demoted_gateway_is_tried_after_the_healthy_gateways_of_every_route() -> None:
    t = _documented_tenant()
    for seed in range(10):
        d = select_route(t, "spencer@contoso.biz", "+14255550100", health={"sbc1.contoso.biz": False},
                         rng=random.Random(seed))
        assert d.gateways[0] == "sbc2.contoso.biz" and d.gateways[-1] == "sbc1.contoso.biz"
        assert set(d.gateways[1:-1]) == {g.fqdn for r in d.routes[1:] for g in r.gateways} - {"sbc1.contoso.biz",
                                                                                             "sbc2.contoso.biz"}


def test_both_orders_occur_inside_a_route() -> None:
    t = _documented_tenant()
    firsts = {select_route(t, "spencer@contoso.biz", "+14255550100", rng=random.Random(s)).gateways[0]
              for s in range(40)}
    assert firsts == {"sbc1.contoso.biz", "sbc2.contoso.biz"}


def test_failover_plan_per_gateway() -> None:
    t = _documented_tenant(**{"sbc1.contoso.biz": {"failover_response_codes": frozenset({408}), "failover_time_seconds": 20}})
    d = select_route(t, "spencer@contoso.biz", "+14255550100")
    plans = {g.fqdn: (g.failover_response_codes, g.failover_time_seconds) for g in d.routes[0].gateways}
    assert plans == {"sbc1.contoso.biz": ((408,), 20), "sbc2.contoso.biz": ((408, 503, 504), 10)}


def test_user_without_enterprise_voice_gets_no_route() -> None:
    t = _documented_tenant()
    t.add("user", User("ev@contoso.biz", voice_routing_policy="US Only"))
    d = select_route(t, "ev@contoso.biz", "+14255550100")
    assert not d.has_route and "enterprise voice" in d.reasons[-1]


# [S19] examples
RULES = {r.name.lower(): r for r in (
    TranslationRule("AddPlus1", r"^(\d{10})$", "+1$1"),
    TranslationRule("AddE164SeattleAreaCode", r"^(\d{4})$", "+1206555$1"),
    TranslationRule("AddSeattleAreaCode", r"^(\d{4})$", "425555$1"),
    TranslationRule("StripPlus1", r"^\+1(\d{10})$", "$1"))}


@pytest.mark.parametrize(("rules", "number", "out", "rule"), [
    (("AddPlus1",), "2065550100", "+12065550100", "AddPlus1"),
    (("AddE164SeattleAreaCode",), "0100", "+12065550100", "AddE164SeattleAreaCode"),
    (("AddSeattleAreaCode",), "0100", "4255550100", "AddSeattleAreaCode"),
    (("StripPlus1",), "+12065550100", "2065550100", "StripPlus1"),
    (("StripPlus1", "AddPlus1"), "2065550100", "+12065550100", "AddPlus1"),  # listed order, first match
    (("AddSeattleAreaCode", "AddE164SeattleAreaCode"), "0100", "4255550100", "AddSeattleAreaCode"),
    (("AddPlus1",), "+12065550100", "+12065550100", None),
])
def test_translation_rule_examples(rules, number, out, rule) -> None:
    t = Tenant()
    t.translation_rules.update(RULES)
    tr = translate(t, rules, number, "called number")
    assert (tr.number, tr.rule) == (out, rule)


def test_outbound_pstn_translation_is_applied_per_gateway_and_inbound_reverse_lookup() -> None:
    t = _documented_tenant(**{"sbc5.contoso.biz": {"outbound_pstn_number_translation_rules": ("StripPlus1",),
                                                  "inbound_teams_number_translation_rules": ("AddPlus1",)}})
    t.translation_rules.update(RULES)
    d = select_route(t, "spencer@contoso.biz", "+13125550100")
    called = {g.fqdn: g.called_number for g in d.routes[0].gateways}
    assert called == {"sbc5.contoso.biz": "3125550100", "sbc6.contoso.biz": "+13125550100"}
    inbound = route_inbound(t, "sbc5.contoso.biz", "4255550101")
    assert (inbound.called_number, inbound.user) == ("+14255550101", "spencer@contoso.biz")
    assert route_inbound(t, "sbc5.contoso.biz", "4255550199").user is None


@settings(max_examples=60, deadline=None)
@given(enabled=st.lists(st.booleans(), min_size=6, max_size=6), healthy=st.lists(st.booleans(), min_size=6, max_size=6),
       seed=st.integers(0, 2**32), dialed=st.sampled_from(["+14255550100", "+13125550100", "+442071234567"]),
       mode=st.sampled_from(["last", "excluded"]))
def test_property_never_a_disabled_gateway_and_same_seed_same_order(enabled, healthy, seed, dialed, mode) -> None:
    t = _documented_tenant(**{f"sbc{i + 1}.contoso.biz": {"enabled": e} for i, e in enumerate(enabled)})
    health = {f"sbc{i + 1}.contoso.biz": h for i, h in enumerate(healthy)}
    a = select_route(t, "john@contoso.biz", dialed, health=health, demoted=mode, rng=random.Random(seed))
    b = select_route(t, "john@contoso.biz", dialed, health=health, demoted=mode, rng=random.Random(seed))
    assert a == b
    for g in a.gateways:
        assert t.find("gateway", g).enabled
        if mode == "excluded":
            assert health[g]
    for r in a.routes:  # demoted ones after all healthy ones inside a route
        flags = [g.demoted for g in r.gateways]
        assert flags == sorted(flags)


@given(st.lists(st.integers(), max_size=8), st.integers(0, 1000))
def test_fisher_yates_is_a_permutation(items, seed) -> None:
    assert sorted(fisher_yates(items, random.Random(seed))) == sorted(items)
