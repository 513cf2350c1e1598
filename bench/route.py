"""Routing decisions per second: a generated tenant of 50 gateways, 200 routes in
4 PSTN usages and a dial plan of 50 normalization rules; each decision normalizes, walks the
usages, orders gateways with a seeded Fisher-Yates and writes every reason."""

from __future__ import annotations

import random
import time

from simulator.tenant.model import (
    DialPlan,
    Gateway,
    NormalizationRule,
    Tenant,
    User,
    VoiceRoute,
    VoiceRoutingPolicy,
)
from simulator.tenant.routing import select_route

TARGETS = {"route_decisions_per_s": (">=", 50000)}

GATEWAYS, ROUTES, RULES, USAGES = 50, 200, 50, 4


def generated_tenant() -> Tenant:
    usages = tuple(f"usage{i}" for i in range(USAGES))
    t = Tenant(usages=usages)
    for i in range(GATEWAYS):
        t.add("gateway", Gateway(f"sbc{i}.example.com", 5061, enabled=i % 10 != 9))
    for i in range(ROUTES):
        # area codes 200..399 spread over the usages; the last route of each usage is a catch-all
        pattern = r"\d+" if i % (ROUTES // USAGES) == ROUTES // USAGES - 1 else rf"^\+1{200 + i}(\d{{7}})$"
        gws = tuple(f"sbc{(i + k) % GATEWAYS}.example.com" for k in range(3))
        t.add("voice_route", VoiceRoute(f"route{i}", pattern, gws, (usages[i * USAGES // ROUTES],), i))
    rules = tuple(NormalizationRule(f"rule{i}", rf"^{i:02d}(\d{{8}})$", rf"+1{200 + i}$1") for i in range(RULES - 1))
    rules += (NormalizationRule("ten", r"^([2-9]\d{9})$", "+1$1"),)
    t.add("dial_plan", DialPlan("Big", rules))
    t.add("voice_routing_policy", VoiceRoutingPolicy("All", usages))
    t.add("user", User("u@example.com", "+12005550100", "DirectRouting", True, voice_routing_policy="All",
                       dial_plan="Big"))
    t.validate()
    return t


def _dialed(rng: random.Random) -> list[str]:
    out = []
    for _ in range(1000):
        kind = rng.randrange(3)
        if kind == 0:
            out.append(f"{rng.randrange(RULES - 1):02d}{rng.randrange(10**8):08d}")  # rule 0..48
        elif kind == 1:
            out.append(f"{rng.randrange(200, 400)}{rng.randrange(10**7):07d}")  # the 10-digit rule (last)
        else:
            out.append(f"+44{rng.randrange(10**10):010d}")  # no rule; catch-all route
    return out


def run(seconds: float = 1.0) -> dict:
    t = generated_tenant()
    user = t.user("u@example.com")
    numbers = _dialed(random.Random(1))
    rng = random.Random(2)
    select_route(t, user, numbers[0], rng=rng)  # compile the policy table and patterns once
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for d in numbers:
            select_route(t, user, d, rng=rng)
        n += len(numbers)
    rate = n / (time.perf_counter() - start)
    return {"route_decisions_per_s": round(rate), "gateways": GATEWAYS, "routes": ROUTES,
            "normalization_rules": RULES}
