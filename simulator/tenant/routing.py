"""Outbound route selection and trunk translation, as Teams documents them [S12] [S19] [S6] [S8] [S4] [S5].

`select_route(tenant, user_upn, dialed, ...)` is a plain function over data:

1. normalize with the user's effective dial plan (normalization.py, [S16]);
2. walk the user's voice routing policy's PSTN usages IN ORDER; the first usage holding a route
   whose NumberPattern matches (anywhere, like .NET IsMatch) wins and later usages are never
   evaluated [S12];
3. in that usage every matching route, lowest Priority first (ties keep the tenant's route
   order; the documentation leaves ties open);
4. in a route, its gateways in random order (Fisher-Yates with the caller's seeded
   random.Random); `Enabled $false` gateways are never offered; demoted gateways (no OPTIONS,
   given as `health`) go after the healthy ones of their route, and `decision.gateways` (the
   whole failover order) puts them after every healthy gateway of every matching route; or they
   are left out (`demoted="last"|"excluded"`; the newest text puts them last [S8]);
5. each gateway carries its failover plan (FailoverResponseCodes, FailoverTimeSeconds [S4] [S5]) and
   the called/calling numbers after its outbound translation rules [S19];
6. Location-Based Routing (lbr.py, [S21]) leaves out every gateway toll-bypass rules forbid for
   this user at the endpoint's network site (`site`; by default the user's configured one); when it
   leaves none there is no route and `decision.lbr` names the rule.

Before step 1, where the user calls from (location.py: the network site from the client's
subnet, the emergency location) decides whether the dialed string is an emergency number of the
emergency call routing policy that applies there (emergency.py [S23]): an emergency call skips
normalization and walks only its emergency number's PSTN usage, and a gateway with
PidfLoSupported gets the location with it [S22]. The caller ID the call presents comes from the
user's caller ID policy (caller_id.py).

Every step appends a human-readable reason. Decisions are plain slotted dataclasses (values;
treat them as read-only). The per-policy route table is compiled once per tenant; whoever
changes a tenant in place calls `tenant.changed()` (tenant/changes.py does) to drop it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from simulator.tenant import lbr as toll_bypass
from simulator.tenant.caller_id import CallerId, caller_id
from simulator.tenant.dotnet_regex import PatternList, compile_dotnet, substitute
from simulator.tenant.emergency import EmergencyCall, emergency_call
from simulator.tenant.location import Location, user_location
from simulator.tenant.model import Gateway, Tenant, User, VoiceRoute, VoiceRoutingPolicy
from simulator.tenant.normalization import DEFAULT_COUNTRY_CODE, Normalization, normalize

Demoted = Literal["last", "excluded"]
_NONE: frozenset[str] = frozenset()


@dataclass(slots=True)
class Translation:
    number: str
    rule: str | None
    what: str = field(default="number", compare=False)
    given: str = field(default="", compare=False)
    rule_names: tuple[str, ...] = field(default=(), compare=False)

    @property
    def reason(self) -> str:  # formatted on demand: routing makes many, few are read
        if self.rule is not None:
            return f"{self.what} {self.given!r} -> {self.number!r} by translation rule {self.rule!r}"
        if not self.rule_names:
            return f"{self.what} {self.given!r} unchanged (no translation rules)"
        return f"{self.what} {self.given!r} unchanged (no rule of {', '.join(self.rule_names)} matches)"


def translate(tenant: Tenant, rule_names: tuple[str, ...], number: str, what: str) -> Translation:
    """A gateway's translation rule list applied to one number [S19]: the first rule, in listed
    order, whose pattern matches rewrites it; no match leaves it unchanged."""
    if not rule_names:
        return Translation(number, None, what, number, rule_names)
    for name in rule_names:
        rule = tenant.find("translation_rule", name)
        rx = compile_dotnet(rule.pattern)
        if rx.search(number) is not None:
            out = rx.sub(lambda m, t=rule.translation: substitute(m, t), number)
            return Translation(out, rule.name, what, number, rule_names)
    return Translation(number, None, what, number, rule_names)


@dataclass(slots=True)
class GatewayPlan:
    fqdn: str
    demoted: bool
    failover_response_codes: tuple[int, ...]
    failover_time_seconds: int
    called_number: str
    calling_number: str | None  # the caller ID presented, translated; None: anonymous
    called: Translation = field(repr=False, compare=False)
    calling: Translation | None = field(repr=False, compare=False)
    failover: str = field(repr=False, compare=False)
    asserted_number: str | None = None  # the user's own number, translated (P-Asserted-Identity)
    privacy: bool = False  # Privacy: id (RFC 3325)
    pidf_lo: Location | None = None  # the emergency location this gateway receives as PIDF-LO [S22]

    @property
    def reasons(self) -> tuple[str, ...]:
        state = "demoted (no SIP OPTIONS): tried after the healthy ones" if self.demoted else "healthy"
        out = [f"{self.fqdn}: {state}", f"{self.fqdn}: {self.failover}", f"{self.fqdn}: {self.called.reason}"]
        if self.calling is not None:
            out.append(f"{self.fqdn}: {self.calling.reason}")
        if self.pidf_lo is not None:
            out.append(f"{self.fqdn}: PidfLoSupported: the emergency location goes with the INVITE as PIDF-LO")
        return tuple(out)


@dataclass(slots=True)
class RoutePlan:
    name: str
    priority: int
    number_pattern: str
    gateways: tuple[GatewayPlan, ...]
    reason: str


@dataclass(slots=True)
class RouteDecision:
    user: str
    dialed: str
    normalized: str
    dial_plan: str | None
    rule: str | None
    usage: str | None
    routes: tuple[RoutePlan, ...]
    reason_items: tuple[str | GatewayPlan | _Refused, ...] = field(repr=False)
    location: Location | None = None
    caller_id: CallerId | None = None
    emergency: EmergencyCall | None = None
    toll: _TollBypass | None = field(default=None, repr=False, compare=False)

    @property
    def lbr(self) -> toll_bypass.LbrDecision | None:
        """Location-Based Routing: the decision for the first gateway offered, else the first
        refusal; None when there was no gateway to judge (no route matched, or only disabled or
        excluded gateways). Worked out when asked for: few decisions are read."""
        if self.toll is None:
            return None
        if self.gateways:
            return self.toll.decision(self.toll.tenant.find("gateway", self.gateways[0]))
        refused = self.lbr_refused
        return refused[0][1] if refused else None

    @property
    def lbr_refused(self) -> tuple[tuple[str, toll_bypass.LbrDecision], ...]:
        """(gateway, decision) for every gateway Location-Based Routing left out."""
        return tuple((g, j) for g, j in self.toll.judged if not j.allowed) if self.toll is not None else ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why, step by step; a gateway's lines are formatted only when asked for."""
        out: list[str] = []
        for item in self.reason_items:
            if isinstance(item, GatewayPlan):
                out.extend("  " + r for r in item.reasons)
            else:
                out.append(str(item))
        return tuple(out)

    @property
    def gateways(self) -> tuple[str, ...]:
        """All gateways in failover order, first occurrence kept: the healthy ones of every route
        by route priority, then the demoted ones ([S8]: a demoted trunk goes to the END of
        the candidate list; [S6]: it is tried after the healthy ones fail)."""
        seen: dict[str, None] = {}
        for demoted in (False, True):
            for r in self.routes:
                for g in r.gateways:
                    if g.demoted is demoted:
                        seen.setdefault(g.fqdn, None)
        return tuple(seen)

    @property
    def has_route(self) -> bool:
        return bool(self.gateways)

    @property
    def pidf_lo_gateways(self) -> list[str]:
        """The gateways that receive the emergency location as PIDF-LO, in failover order."""
        plans = {g.fqdn: g for r in self.routes for g in r.gateways}
        return [fqdn for fqdn in self.gateways if plans[fqdn].pidf_lo is not None]

    def to_json(self) -> dict[str, Any]:
        out = {"user": self.user, "dialed": self.dialed, "normalized": self.normalized,
               "dial_plan": self.dial_plan, "rule": self.rule, "usage": self.usage,
               "routes": [{"name": r.name, "priority": r.priority, "gateways": [g.fqdn for g in r.gateways]}
                          for r in self.routes],
               "gateways": list(self.gateways), "lbr": self.lbr_json(), "reasons": list(self.reasons)}
        if self.caller_id is not None:
            out["caller_id"] = self.caller_id.to_json()
        if self.location is not None:
            out["location"] = self.location.to_json()
        if self.emergency is not None:
            out["emergency"] = self.emergency.to_json(self.pidf_lo_gateways)
        return out

    def lbr_json(self) -> dict[str, Any] | None:
        lbr = self.lbr
        if lbr is None:
            return None
        return {**lbr.to_json(), "refused": [{"gateway": g, "rule": str(d.rule)} for g, d in self.lbr_refused]}


def fisher_yates(items: list[Any], rng: random.Random) -> list[Any]:
    """Shuffle a copy the way [S6] names it: random.Random.shuffle is Durstenfeld's Fisher-Yates
    (for i from n-1 down to 1, swap i with a uniform j <= i), seeded by the caller."""
    out = list(items)
    if len(out) > 1:
        rng.shuffle(out)
    return out


def _usage_table(tenant: Tenant, usages: tuple[str, ...]) -> list[tuple[str, list[VoiceRoute], PatternList]]:
    """(usage, its routes by priority, their patterns) for a list of usages (a policy's, or an
    emergency number's), built once per tenant."""
    cache: dict[tuple[str, ...], Any] = tenant.__dict__.setdefault("_routing_cache", {})
    key = tuple(u.lower() for u in usages)
    if key not in cache:
        order = {name: i for i, name in enumerate(tenant.voice_routes)}
        table = []
        for usage in usages:
            routes = [r for r in tenant.voice_routes.values()
                      if any(u.lower() == usage.lower() for u in r.online_pstn_usages)]
            routes.sort(key=lambda r: (r.priority, order[r.name.lower()]))
            table.append((usage, routes, PatternList([r.number_pattern for r in routes])))
        cache[key] = table
    return cache[key]


def _failover(tenant: Tenant, gw: Gateway) -> tuple[tuple[int, ...], str]:
    cache: dict[str, Any] = tenant.__dict__.setdefault("_failover_cache", {})
    hit = cache.get(gw.fqdn)
    if hit is None:
        codes = tuple(sorted(gw.failover_response_codes))
        hit = cache[gw.fqdn] = (codes, f"next gateway on {', '.join(map(str, codes))} (before any non-100 "
                                       f"provisional) or no answer within {gw.failover_time_seconds} s")
    return hit


@lru_cache(maxsize=1024)
def _usage_list(policy: VoiceRoutingPolicy) -> str:
    usages = policy.online_pstn_usages
    return ", ".join(repr(u) for u in usages) if usages else "none"


def select_route(tenant: Tenant, user: User | str, dialed: str, *, health: Mapping[str, bool] | None = None,
                 demoted: Demoted = "last", rng: random.Random | None = None,
                 country_code: str = DEFAULT_COUNTRY_CODE, normalize_dialed: bool = True,
                 client_ip: str | None = None, public_ip: str | None = None,
                 site: str | None = toll_bypass.CONFIGURED_SITE) -> RouteDecision:
    """The outbound routing decision for `user` dialing `dialed` [S12].

    `health` maps a gateway FQDN (any case) to False when it is demoted (no SIP OPTIONS); absent
    means healthy. `rng` orders gateways inside a route; default `random.Random(0)`.
    `normalize_dialed=False` routes `dialed` exactly as given: an SBA's emergency strings skip
    normalization and are matched against the regular routes as dialled [S26] (no emergency
    call routing policy applies there). `client_ip` (`A.B.C.D` or `A.B.C.D/BITS`) is where the
    client is, `public_ip` the address the cloud sees it from (location.py); ValueError if either
    is not an address. `site` is the network site of the calling endpoint for Location-Based
    Routing (None: in no site, an unknown location; by default the site of the subnet `client_ip`
    is in, else the user's configured `network_site`); LBR never refuses an emergency call [S21].
    """
    if isinstance(user, str):
        user = tenant.user(user)
    rng = rng if rng is not None else random.Random(0)
    unhealthy = {k.lower() for k, ok in health.items() if not ok} if health else _NONE
    location = _location(tenant, user, client_ip, public_ip)
    emergency = emergency_call(tenant, user, dialed, location) if normalize_dialed else None
    if emergency is not None:
        norm = Normalization(dialed, emergency.number, None, None, False, ())
    elif normalize_dialed:
        norm = normalize(tenant, user, dialed, country_code)
    else:
        norm = Normalization(dialed, dialed, None, None, False,
                             (f"{dialed!r} is routed as dialled: no dial plan normalization",))
    ident = _caller_id(tenant, user, emergency is not None)
    reasons: list[str | GatewayPlan] = []
    if client_ip is not None or public_ip is not None or emergency is not None:
        reasons.extend(location.reasons)
    reasons.extend(emergency.reasons if emergency is not None else norm.reasons)

    toll = _TollBypass(tenant, user, _lbr_site(tenant, site, location, client_ip, public_ip), emergency is not None)

    def decision(usage: str | None, routes: tuple[RoutePlan, ...] = ()) -> RouteDecision:
        return RouteDecision(user.upn, dialed, norm.number, norm.dial_plan, norm.rule, usage, routes, tuple(reasons),
                             location, ident, emergency, toll)

    if not user.enterprise_voice_enabled:
        reasons.append(f"{user.upn} is not enabled for enterprise voice: no Direct Routing call")
        return decision(None)
    reasons.extend(ident.reasons)
    if emergency is not None and emergency.usage is not None:
        reasons.append(f"emergency number {emergency.number!r} has PSTN usage {emergency.usage!r}: its routes must "
                       f"match {emergency.number!r} exactly")
        table = _usage_table(tenant, (emergency.usage,))
        owner = f"emergency number {emergency.number!r}"
    else:
        policy = tenant.effective_policy(user, "voice_routing_policy")
        granted = "granted" if user.voice_routing_policy else "the tenant's default"
        if emergency is not None:
            reasons.append(f"emergency number {emergency.number!r} names no PSTN usage: the voice routing policy "
                           "routes it")
        reasons.append(f"voice routing policy {policy.name!r} ({granted}) has usages {_usage_list(policy)}")
        table = _usage_table(tenant, policy.online_pstn_usages)
        owner = f"policy {policy.name!r}"
    number = norm.number
    pidf_lo = emergency.location if emergency is not None and emergency.location.civic_address else None
    for usage, routes, patterns in table:
        matching = [routes[i] for i in patterns.matching(number)]
        if not matching:
            reasons.append(f"usage {usage!r}: none of its {len(routes)} routes matches {number!r}")
            continue
        skipped = len(routes) - len(matching)
        reasons.append(f"usage {usage!r} is the first with a route matching {number!r}; later usages are not evaluated"
                       + (f" ({skipped} of its routes do not match)" if skipped else ""))
        plans = tuple(_route_plan(tenant, user, r, number, unhealthy, demoted, rng, reasons, rank, ident, pidf_lo,
                                  toll if toll.active else None)
                      for rank, r in enumerate(matching, 1))
        if not any(p.gateways for p in plans):
            refused = [d for _, d in toll.judged if not d.allowed]
            if refused and not any(d.allowed for _, d in toll.judged):
                reasons.append(f"no gateway can take the call: Location-Based Routing refused every gateway of the "
                               f"matching routes in {usage!r} ({refused[0].rule}); the call fails: "
                               f"{toll_bypass.REFUSED_OUTBOUND_TEXT}")
            else:
                reasons.append(f"no gateway can take the call: every gateway of the matching routes in {usage!r} "
                               "is disabled, excluded or refused by Location-Based Routing; the call fails")
        return decision(usage, plans)
    reasons.append(f"no route of {owner} matches {number!r}: no Direct Routing route")
    return decision(None)


def _location(tenant: Tenant, user: User, client_ip: str | None, public_ip: str | None) -> Location:
    """`user_location`, once per tenant for a user and address (calls repeat them)."""
    cache: dict[tuple[Any, ...], Location] = tenant.__dict__.setdefault("_location_cache", {})
    key = (user, client_ip, public_ip)
    hit = cache.get(key)
    if hit is None:
        if len(cache) > 4096:
            cache.clear()
        hit = cache[key] = user_location(tenant, user, client_ip, public_ip)
    return hit


def _lbr_site(tenant: Tenant, site: Any, location: Location, client_ip: str | None, public_ip: str | None) -> Any:
    """The endpoint's network site for Location-Based Routing: the one the caller names; else,
    when the client's address is known, the site of the subnet it is in (in none, or outside the
    trusted IPs: an unknown location [S21]); else, and in a tenant that defines no subnets to
    place an address in, the user's configured site."""
    if site is not toll_bypass.CONFIGURED_SITE:
        return site
    if (client_ip is None and public_ip is None) or not tenant.subnets:
        return site
    if location.trusted is False or (client_ip is not None and location.subnet is None):
        return None
    return location.site if client_ip is not None else site


def _caller_id(tenant: Tenant, user: User, emergency: bool) -> CallerId:
    cache: dict[tuple[User, bool], CallerId] = tenant.__dict__.setdefault("_caller_id_cache", {})
    hit = cache.get((user, emergency))
    if hit is None:
        if len(cache) > 4096:
            cache.clear()
        hit = cache[(user, emergency)] = caller_id(tenant, user, emergency)
    return hit


def _route_parts(tenant: Tenant, route: VoiceRoute) -> tuple[list[tuple[Gateway, tuple[int, ...], str]], list[str], str]:
    """A route's enabled gateways (with failover plan) and the reasons for the disabled ones, once per tenant."""
    cache: dict[str, Any] = tenant.__dict__.setdefault("_route_parts_cache", {})
    hit = cache.get(route.name)
    if hit is None:
        enabled, disabled = [], []
        for fqdn in route.online_pstn_gateway_list:
            gw = tenant.find("gateway", fqdn)
            if gw.enabled:
                enabled.append((gw, *_failover(tenant, gw)))
            else:
                disabled.append(f"  {gw.fqdn} is not offered: Enabled is false (drained; New-CsOnlinePSTNGateway default)")
        matches = f"route {route.name!r} (priority {route.priority}, {route.number_pattern}) matches; "
        hit = cache[route.name] = (enabled, disabled, matches)
    return hit


class _TollBypass:
    """Location-Based Routing for one call: judges each gateway once and keeps the judgements.
    `active` is False when nothing can be refused (neither the user nor any gateway is enabled
    for LBR): routing then skips the per-gateway checks."""

    __slots__ = ("tenant", "user", "site", "emergency", "user_lbr", "active", "judged")

    def __init__(self, tenant: Tenant, user: User, site: Any, emergency: bool) -> None:
        self.tenant, self.user, self.emergency = tenant, user, emergency
        self.site = toll_bypass.endpoint_site(user, site)
        # a tenant where no gateway and no calling policy is enabled for LBR restricts nothing
        self.active = toll_bypass.tenant_uses_lbr(tenant)
        self.user_lbr = self.active and toll_bypass.user_lbr_enabled(tenant, user)
        self.judged: list[tuple[str, toll_bypass.LbrDecision]] = []

    def decision(self, gw: Gateway) -> toll_bypass.LbrDecision:
        known = next((d for g, d in self.judged if g == gw.fqdn), None)
        if known is None:
            known = toll_bypass.outbound(self.tenant, self.user, gw, self.site, emergency=self.emergency,
                                         user_lbr=self.user_lbr)
            self.judged.append((gw.fqdn, known))
        return known

    def allows(self, gw: Gateway, reasons: list[Any]) -> bool:
        if not self.user_lbr and not gw.gateway_site_lbr_enabled:
            return True  # not-restricted: nothing to record
        known = self.decision(gw)
        if not known.allowed:
            reasons.append(_Refused(gw.fqdn, known))
        return known.allowed


@dataclass(slots=True)
class _Refused:
    """A reason line formatted only when read: a gateway LBR leaves out."""

    fqdn: str
    decision: toll_bypass.LbrDecision

    def __str__(self) -> str:
        return f"  {self.fqdn} is not offered: {self.decision.reason}"


def _route_plan(tenant: Tenant, user: User, route: VoiceRoute, number: str, unhealthy: set[str] | frozenset[str], demoted: Demoted,
                rng: random.Random, reasons: list[str | GatewayPlan], rank: int, ident: CallerId,
                pidf_lo: Location | None, toll: _TollBypass | None) -> RoutePlan:
    enabled, disabled, matches = _route_parts(tenant, route)
    why = matches + ("tried first" if rank == 1 else f"backup #{rank - 1}, tried when the routes before it fail")
    reasons.append(why)
    reasons.extend(disabled)
    if toll is not None:
        enabled = [entry for entry in enabled if toll.allows(entry[0], reasons)]
    if unhealthy:
        healthy, late = [], []
        for entry in enabled:
            if entry[0].fqdn.lower() not in unhealthy:
                healthy.append(entry)
            elif demoted == "excluded":
                reasons.append(f"  {entry[0].fqdn} is not offered: demoted (no SIP OPTIONS) and demoted gateways "
                               "are excluded")
            else:
                late.append(entry)
    else:
        healthy, late = enabled, []
    ordered = [(e, False) for e in fisher_yates(healthy, rng)] + [(e, True) for e in fisher_yates(late, rng)]
    if len(healthy) > 1:
        reasons.append(f"  route {route.name!r}: {len(healthy)} healthy gateways in random order (Fisher-Yates)")
    plans = []
    for (g, codes, fail), is_demoted in ordered:
        called = translate(tenant, g.outbound_pstn_number_translation_rules, number, "called number")
        calling = (translate(tenant, g.outbound_teams_number_translation_rules, ident.number, "calling number")
                   if ident.number else None)
        # the user's own number is asserted apart only when the caller ID is withheld
        asserted = ident.own_number if ident.privacy else None
        own = calling if asserted == ident.number else (
            translate(tenant, g.outbound_teams_number_translation_rules, asserted, "calling number")
            if asserted else None)
        plan = GatewayPlan(g.fqdn, is_demoted, codes, g.failover_time_seconds, called.number,
                           calling.number if calling else None, called, calling, fail,
                           own.number if own else None, ident.privacy, pidf_lo if g.pidf_lo_supported else None)
        reasons.append(plan)
        plans.append(plan)
    return RoutePlan(route.name, route.priority, route.number_pattern, tuple(plans), why)


@dataclass(slots=True)
class InboundDecision:
    user: str | None
    called_number: str
    calling_number: str | None
    reasons: tuple[str, ...]
    # Location-Based Routing for the callee's endpoint; None when no user has the number
    lbr: toll_bypass.LbrDecision | None = None


def route_inbound(tenant: Tenant, gateway_fqdn: str, called: str, calling: str | None = None, *,
                  site: str | None = toll_bypass.CONFIGURED_SITE) -> InboundDecision:
    """An inbound call from a gateway: its inbound translation rules [S19], then reverse number
    lookup by exact number [S14] [S20], then Location-Based Routing for the callee's endpoint at
    `site` (by default the user's configured network site) [S21]: a refused call is not delivered
    to that endpoint."""
    gw = tenant.find("gateway", gateway_fqdn)
    if gw is None:
        raise KeyError(f"no PSTN gateway {gateway_fqdn!r} in the tenant")
    t_called = translate(tenant, gw.inbound_teams_number_translation_rules, called, "called number")
    reasons = [t_called.reason]
    t_calling = None
    if calling is not None:
        t_calling = translate(tenant, gw.inbound_pstn_number_translation_rules, calling, "calling number")
        reasons.append(t_calling.reason)
    user = tenant.user_by_number(t_called.number)
    reasons.append(f"reverse number lookup: {t_called.number!r} is {user.upn}" if user else
                   f"reverse number lookup: no user has exactly {t_called.number!r}; the call fails")
    toll = toll_bypass.inbound(tenant, user, gw, toll_bypass.endpoint_site(user, site)) if user else None
    if toll is not None and toll.rule is not toll_bypass.Rule.NOT_RESTRICTED:
        reasons.append(toll.reason)
    return InboundDecision(user.upn if user else None, t_called.number,
                           t_calling.number if t_calling else None, tuple(reasons), toll)
