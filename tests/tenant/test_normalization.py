"""Normalization as [S16] documents it: first matching rule wins, .NET regex."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.tenant.dotnet_regex import (
    DotnetRegexError,
    PatternList,
    compile_dotnet,
    literal_prefix,
    replace,
)
from simulator.tenant.model import DialPlan, NormalizationRule, Tenant, User
from simulator.tenant.normalization import normalize, service_normalize

# The sample rules of [S16], in one plan, in the documented order.
SAMPLES = (
    NormalizationRule("4digit", r"^(\d{4})$", "+1425555$1"),
    NormalizationRule("5digit", r"^5(\d{4})$", "+1425555$1"),
    NormalizationRule("7digit", r"^(\d{7})$", "+1425$1"),
    NormalizationRule("operator", r"^0$", "+14255550100"),
    NormalizationRule("6222", r"^6222(\d{4})$", "+1425555$1"),
    NormalizationRule("5digit-range", r"^([3-7]\d{4})$", "+142555$1"),
    NormalizationRule("10digit", r"^([2-9]\d\d[2-9]\d{6})$", "1$1"),
)


def _tenant(rules=SAMPLES) -> tuple[Tenant, User]:
    t = Tenant()
    t.add("dial_plan", DialPlan("Redmond", rules))
    u = User("u@contoso.com", "+14255550101", "DirectRouting", True, dial_plan="Redmond")
    t.add("user", u)
    return t, u


@pytest.mark.parametrize(("dialed", "rule", "number"), [
    ("0100", "4digit", "+14255550100"),
    ("50100", "5digit", "+14255550100"),  # 5digit is above 5digit-range: first match wins
    ("5550100", "7digit", "+14255550100"),
    ("0", "operator", "+14255550100"),
    ("62220100", "6222", "+14255550100"),
    ("30100", "5digit-range", "+1425553" + "0100"),
    ("4255550100", "10digit", "+14255550100"),  # "1$1" has no '+': the service plan adds it
    ("+442071234567", None, "+442071234567"),  # no rule: an E.164 number is kept
    ("425 555-0100", "10digit", "+14255550100"),  # formatting is not digits
])
def test_first_matching_rule_of_the_documented_samples_wins(dialed, rule, number) -> None:
    t, u = _tenant()
    n = normalize(t, u, dialed)
    assert (n.rule, n.number) == (rule, number)
    assert n.reasons


def test_an_unanchored_pattern_matches_anywhere_like_dotnet_ismatch() -> None:
    t, u = _tenant((NormalizationRule("strip9", r"9(\d+)", "$1"),))
    n = normalize(t, u, "8914255550100")
    # Regex.Replace keeps the unmatched "8"; the result has no '+', so the service plan adds +1.
    assert (n.rule, n.number) == ("strip9", "+1814255550100")


def test_user_plan_beats_tenant_global_and_service_plan_is_last() -> None:
    t, u = _tenant()
    t.add("dial_plan", DialPlan("Global", (NormalizationRule("g", r"^(\d{4})$", "+1999555$1"),)))
    assert normalize(t, u, "0100").dial_plan == "Redmond"
    other = User("o@contoso.com")
    assert (normalize(t, other, "0100").dial_plan, normalize(t, other, "0100").number) == ("Global", "+19995550100")
    assert normalize(Tenant(), other, "4255550100").dial_plan == "Service (+1)"


@pytest.mark.parametrize(("digits", "cc", "out"), [
    ("+442071234567", "1", "+442071234567"), ("4255550100", "1", "+14255550100"),
    ("14255550100", "1", "+14255550100"), ("2071234567", "44", "+442071234567")])
def test_service_dial_plan_prepends_the_country_code(digits, cc, out) -> None:
    assert service_normalize(digits, cc) == out


@pytest.mark.parametrize(("pattern", "translation", "text", "out"), [
    (r"^(\d{10})$", "+1$1", "2065550100", "+12065550100"),
    (r"^(?<area>\d{3})(?<rest>\d{7})$", "+1${area}${rest}", "2065550100", "+12065550100"),
    (r"^(\d+)$", "$$$1", "5", "$5"),
    (r"^(\d)$", "$0-$&", "5", "5-5"),
    (r"^(\d)$", "$9", "5", "$9"),  # no group 9: kept literally, as in .NET
    (r"^(\d)(\d)$", "$10", "56", "50"),  # "$10" with 2 groups is $1 followed by "0"
    (r"^(\d{4})$", "x", "12345", None),
])
def test_dotnet_substitutions(pattern, translation, text, out) -> None:
    assert replace(pattern, translation, text) == out


@pytest.mark.parametrize("pattern", [r"(?<a-b>x)", r"\p{L}+", r"\Gx", r"(unclosed"])
def test_dotnet_only_or_broken_patterns_are_rejected(pattern) -> None:
    with pytest.raises(DotnetRegexError):
        compile_dotnet(pattern)


@pytest.mark.parametrize(("pattern", "prefix"), [
    (r"^\+1(425|206)(\d{7})$", "+1"), (r"^6222(\d{4})$", "6222"), (r"\d+", ""), (r"^a|b", ""),
    (r"^\+1?(\d)", "+"), (r"^(\d{4})$", ""), (r"^[12]x", ""), (r"^0$", "0"), (r"^\+1{2}", "+")])
def test_literal_prefix_only_claims_what_every_match_starts_with(pattern, prefix) -> None:
    assert literal_prefix(pattern) == prefix


PATTERNS = [r"^\+1(425|206)(\d{7})$", r"^\+1(\d{10})$", r"\d+", r"^5(\d{4})$", r"^(\d{4})$", r"^0$",
            r"^\+44", r"^\+1?4", r"^a|5", r"55"]


@given(st.text(alphabet="+0145526", max_size=13))
def test_pattern_index_finds_exactly_what_brute_force_finds(text) -> None:
    index = PatternList(PATTERNS)
    brute = [i for i, p in enumerate(PATTERNS) if compile_dotnet(p).search(text)]
    assert index.matching(text) == brute
    assert index.first(text) == (brute[0] if brute else None)
