"""examples/contoso-export/ is what the Get-Cs* cmdlets print for the tenant examples/contoso.ps1
builds: both load to the same routing, decision for decision."""

from __future__ import annotations

import dataclasses
import itertools
import random
from pathlib import Path

import pytest

from simulator.tenant.check import load_cases
from simulator.tenant.export_loader import load_export_with_warnings
from simulator.tenant.lbr import CONFIGURED_SITE
from simulator.tenant.model import Tenant
from simulator.tenant.ps_loader import load_powershell
from simulator.tenant.routing import select_route

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = load_cases(EXAMPLES / "contoso-routing-cases.yaml")
RUNBOOK_USERS = ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com", "dave@contoso.com", "erin@contoso.com",
                 "priya@contoso.com"]
DIALED = [
    "0101", "0123", "0201", "9999", "5550199", "2065550100", "4255550100", "3125550100", "1234567",
    "+14255550101", "+12065550203", "+13125550100", "+442071234567", "+33123456789", "011442071234567",
    "14255550100", "911", "112", "*86", "+1206555", "425 555 0100", "+1 (206) 555-0100", "+912071234567",
]
HEALTH = [{}, {"sbc-sea.contoso.com": False}, {"sbc1.contoso.com": False, "sbc2.contoso.com": False}]


@pytest.fixture(scope="module")
def both() -> tuple[Tenant, Tenant]:
    export, warnings = load_export_with_warnings(EXAMPLES / "contoso-export")
    assert warnings == []
    return load_powershell(EXAMPLES / "contoso.ps1"), export


def _decide(tenant: Tenant, user: str, dialed: str, health: dict, demoted: str = "last", seed: int = 0,
            site: str | None = CONFIGURED_SITE) -> dict:
    return select_route(tenant, user, dialed, health=health, demoted=demoted, rng=random.Random(seed),
                        site=site).to_json()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_routing_case_decides_the_same_from_the_runbook_and_the_export(both, case) -> None:
    runbook, export = both
    kwargs = {"health": case.health, "demoted": case.demoted, "site": case.site}
    assert _decide(export, case.user, case.dial, **kwargs) == _decide(runbook, case.user, case.dial, **kwargs)


@pytest.mark.parametrize("user", RUNBOOK_USERS)
def test_every_user_dialing_every_number_decides_the_same(both, user) -> None:
    runbook, export = both
    for dialed, health, demoted, seed in itertools.product(DIALED, HEALTH, ("last", "excluded"), (0, 7)):
        assert _decide(export, user, dialed, health, demoted, seed) == \
            _decide(runbook, user, dialed, health, demoted, seed), (user, dialed, health, demoted, seed)


def test_the_export_is_the_runbooks_tenant_plus_what_teams_fills_in(both) -> None:
    """Teams derives a dial plan's SimpleName and prints a rule without a description as "";
    Get-CsOnlineUser also lists users the runbook never touched (frank has no phone); Get-CsTenant
    lists the tenant's initial *.onmicrosoft.com domain too."""
    runbook, export = both
    export.dial_plans = {k: dataclasses.replace(
        p, simple_name=None, normalization_rules=tuple(dataclasses.replace(r, description=r.description or None)
                                                       for r in p.normalization_rules))
        for k, p in export.dial_plans.items()}
    assert export.users.pop("frank@contoso.com").phone_number is None
    # every tenant also has its initial domain, which no runbook registers
    assert export.domains == ("contoso.com", "contoso.onmicrosoft.com")
    export.domains = ("contoso.com",)
    assert export == runbook
