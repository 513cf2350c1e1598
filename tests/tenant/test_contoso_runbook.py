"""examples/runbook: the Contoso tenant written as real runbooks are (a CSV of users, loops,
pipelines, caller ID, emergency and Location-Based Routing) routes as examples/contoso.ps1 does."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest

from simulator.tenant import cli
from simulator.tenant.check import load_cases, run_cases
from simulator.tenant.ps_loader import IGNORED_CMDLETS, load_powershell, load_powershell_with_warnings
from simulator.tenant.routing import select_route

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUNBOOK = EXAMPLES / "runbook" / "contoso-runbook.ps1"
DIALED = ["5550199", "0123", "0201", "3125550100", "+442071234567", "2065550100", "4255550100", "911", "+14255550102",
          "+912071234567"]


@pytest.fixture(scope="module")
def runbook():
    return load_powershell_with_warnings(RUNBOOK)


def test_the_runbook_warns_only_about_cmdlets_ignored_on_purpose(runbook) -> None:
    _, warnings = runbook
    assert {w.message.split(" ")[0] for w in warnings} <= set(IGNORED_CMDLETS)


def test_every_routing_case_of_contoso_holds(runbook) -> None:
    tenant, _ = runbook
    tenant.validate()
    outcomes = run_cases(tenant, load_cases(EXAMPLES / "contoso-routing-cases.yaml"))
    assert [o.case.name for o in outcomes if not o.ok] == []


@pytest.mark.parametrize("dialed", DIALED)
def test_every_user_gets_the_same_decision_as_from_contoso_ps1(runbook, dialed: str) -> None:
    tenant, _ = runbook
    plain = load_powershell(EXAMPLES / "contoso.ps1")
    for upn in plain.users:
        ours = select_route(tenant, upn, dialed, rng=random.Random(1)).to_json()
        theirs = select_route(plain, upn, dialed, rng=random.Random(1)).to_json()
        assert (upn, ours) == (upn, theirs)


def test_the_runbook_sets_caller_id_emergency_location_and_lbr(runbook) -> None:
    tenant, _ = runbook
    alice, carol, dave, erin = (tenant.user(f"{n}@contoso.com") for n in ("alice", "carol", "dave", "erin"))
    assert tenant.effective_policy(alice, "calling_line_identity").name == "Main Number"  # direct beats group
    assert tenant.effective_policy(carol, "calling_line_identity").name == "Global"
    priya = tenant.user("priya@contoso.com")
    assert tenant.effective_policy(priya, "teams_calling_policy").prevent_toll_bypass is True  # through the group
    assert tenant.effective_policy(carol, "teams_calling_policy").prevent_toll_bypass is False
    assert tenant.effective_policy(alice, "emergency_calling_policy").name == "Security Desk"  # -Global grant
    assert tenant.find("site", "Pune").enable_location_based_routing is True
    assert tenant.find("gateway", "sbc-pun.contoso.com").gateway_site_lbr_enabled is True
    assert tenant.find("site", "Seattle").emergency_call_routing_policy == "Seattle 911"
    assert tenant.find("gateway", "sbc-sea.contoso.com").pidf_lo_supported is True
    assert carol.location_id == tenant.find("lis_subnet", "10.20.3.0").location_id
    assert (dave.unanswered_target_type, dave.unanswered_delay_seconds) == ("Voicemail", 20)
    assert (erin.forwarding_type, erin.simultaneous_ring_target) == ("Simultaneous", "+12065550299")
    assert [r.name for r in tenant.voice_routes.values() if r.description == "through HQ"] == [
        "Redmond 1", "Other +1"]


def test_drlab_route_checks_the_runbook_and_reads_a_named_groups_file(tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    check = ["--tenant", str(RUNBOOK), "--check", str(EXAMPLES / "contoso-routing-cases.yaml")]
    assert cli.run(parser.parse_args(check)) == 0
    other = tmp_path / "groups.csv"
    other.write_text("Group,UserPrincipalName\nPune Office,priya@contoso.com\n", encoding="utf-8")
    assert cli.run(parser.parse_args([*check, "--groups", str(other)])) == 2
    assert "group 'Front Desk' is not in the groups file" in capsys.readouterr().err
