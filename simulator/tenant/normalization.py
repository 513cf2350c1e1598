"""Dial plans: which plan applies to a user and what it makes of dialed digits [S14] [S15] [S16].

A user has the service dial plan plus either a user-granted tenant dial plan or the tenant
Global one (user > tenant global > service). Tenant rules are tried top-down and the first whose
pattern matches anywhere in the input (.NET `IsMatch`) wins. If no tenant rule matches, or the
winning rule yields a number without `+`, the service dial plan normalizes (the documented
"double normalization"). drlab's service dial plan (the real one is Microsoft's per country,
and not published) is: a number starting with `+` is kept; digits that already begin with the
country code and are long enough for a national number get a `+`; anything else gets `+CC`
prepended ([S19]: "If no rule matches, service dial plan prepends +CC").
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.tenant.dotnet_regex import PatternList, substitute
from simulator.tenant.model import DialPlan, NormalizationRule, Tenant, User

DEFAULT_COUNTRY_CODE = "1"  # drlab assumes a US usage location unless told otherwise
_VISUAL_SEPARATORS = str.maketrans("", "", " \t\n\r\f\v-.()")
NATIONAL_NUMBER_DIGITS = 10  # the NANP length; used to tell "1425..." (has CC) from "425..."


@dataclass(slots=True)
class Normalization:
    dialed: str
    number: str
    dial_plan: str  # e.g. "Redmond", "Global", or "Service (+1)"
    rule: str | None  # the winning rule's name; None when the service plan did it
    is_internal_extension: bool
    reasons: tuple[str, ...]


def effective_dial_plan(tenant: Tenant, user: User) -> DialPlan | None:
    """The user's tenant dial plan: granted, else granted -Global, else the Global one [S14]."""
    return tenant.effective_policy(user, "dial_plan")


_COMPILED: dict[int, tuple[tuple[NormalizationRule, ...], PatternList]] = {}


def _compiled(rules: tuple[NormalizationRule, ...]) -> PatternList:
    # Keyed by the tuple's identity (hashing 50 rules per call would cost more than matching);
    # the entry keeps the tuple alive so the id cannot be reused while cached.
    hit = _COMPILED.get(id(rules))
    if hit is None or hit[0] is not rules:
        if len(_COMPILED) > 1024:
            _COMPILED.clear()
        hit = _COMPILED[id(rules)] = (rules, PatternList([r.pattern for r in rules]))
    return hit[1]


def apply_rules(rules: tuple[NormalizationRule, ...], digits: str) -> tuple[NormalizationRule, str] | None:
    """The first rule whose pattern matches anywhere, and its translation (Regex.Replace)."""
    patterns = _compiled(rules)
    i = patterns.first(digits)
    if i is None:
        return None
    rule, rx = rules[i], patterns.compiled[i]
    return rule, rx.sub(lambda m, t=rule.translation: substitute(m, t), digits)


def service_normalize(digits: str, country_code: str = DEFAULT_COUNTRY_CODE) -> str:
    if digits.startswith("+"):
        return digits
    if digits.startswith(country_code) and len(digits) - len(country_code) >= NATIONAL_NUMBER_DIGITS:
        return "+" + digits
    return f"+{country_code}{digits}"


def normalize(tenant: Tenant, user: User, dialed: str, country_code: str = DEFAULT_COUNTRY_CODE) -> Normalization:
    digits = dialed.translate(_VISUAL_SEPARATORS)
    reasons = []
    if digits != dialed:
        reasons.append(f"dialed {dialed!r} read as {digits!r} (spaces, dashes, dots and brackets are only formatting)")
    plan = effective_dial_plan(tenant, user)
    plan_name = plan.name if plan is not None else None
    hit = apply_rules(plan.normalization_rules, digits) if plan is not None else None
    if hit is not None:
        rule, out = hit
        reasons.append(f"dial plan {plan_name!r}: rule {rule.name!r} ({rule.pattern} -> {rule.translation}) "
                       f"is the first that matches {digits!r}, giving {out!r}")
        if not out.startswith("+"):
            again = service_normalize(out, country_code)
            reasons.append(f"{out!r} has no '+', so the service dial plan normalizes it again to {again!r}")
            out = again
        return Normalization(dialed, out, plan_name, rule.name, rule.is_internal_extension, tuple(reasons))
    why = (f"no rule of dial plan {plan_name!r} matches {digits!r}" if plan is not None and plan.normalization_rules
           else f"dial plan {plan_name!r} has no rules" if plan is not None else "no tenant dial plan")
    out = service_normalize(digits, country_code)
    what = "kept as is" if out == digits else f"becomes {out!r}"
    reasons.append(f"{why}; the service dial plan (+{country_code}): {digits!r} {what}")
    return Normalization(dialed, out, plan_name if plan is not None and plan.normalization_rules else f"Service (+{country_code})", None, False,
                         tuple(reasons))
