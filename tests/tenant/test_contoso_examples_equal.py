"""examples/contoso.ps1 describes the Contoso tenant (HQ and a Seattle branch with an SBA)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from simulator.tenant.ps_loader import load_powershell_with_warnings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def contoso():
    return load_powershell_with_warnings(EXAMPLES / "contoso.ps1")


def test_contoso_runbook_warns_only_about_cmdlets_ignored_on_purpose(contoso) -> None:
    _, warnings = contoso
    assert [w.message.split(" ")[0] for w in warnings] == [
        "Import-Module", "Connect-MicrosoftTeams", "Select-Object", "Write-Host"]
    assert all("changes nothing drlab simulates" in w.message for w in warnings)


def test_contoso_has_hq_and_a_seattle_branch_with_an_sba(contoso) -> None:
    state, _ = contoso
    assert sorted(s.name for s in state.sites.values()) == ["Pune", "Redmond", "Seattle"]
    assert state.find("sba", "sba1.contoso.com").site == "Seattle"
    assert state.find("sba_policy", "SEA").branch_appliance_fqdns == ("sba1.contoso.com",)
    branch_users = sorted(u.upn for u in state.users.values() if u.sba_policy == "SEA")
    assert branch_users == ["carol@contoso.com", "dave@contoso.com", "erin@contoso.com"]  # three clients at the branch
    assert all(u.network_site == "Seattle" for u in state.users.values() if u.upn in branch_users)


def test_contoso_routes_follow_the_documented_example(contoso) -> None:
    state, _ = contoso
    routes = {r.name: (r.priority, r.online_pstn_usages) for r in state.voice_routes.values()}
    assert routes == {
        "Redmond 1": (1, ("US and Canada",)), "Redmond 2": (2, ("US and Canada",)), "Other +1": (3, ("US and Canada",)),
        "International": (4, ("International",)), "Seattle Local": (1, ("Seattle Local",)),
        "Emergency 911": (5, ("US Emergency",)), "India": (1, ("India",))}
    assert state.find("voice_routing_policy", "No Restrictions").online_pstn_usages == (
        "US and Canada", "International")
    assert [r.name for r in state.find("dial_plan", "Redmond").normalization_rules] == [
        "RedmondExtension", "Local7", "TenDigit"]


def test_contoso_ps1_and_yaml_load_to_equal_models() -> None:
    yaml_path = EXAMPLES / "contoso.yaml"
    if not yaml_path.exists():
        pytest.skip("examples/contoso.yaml is not in the tree yet")
    try:
        yaml_loader = importlib.import_module("simulator.tenant.yaml_loader")
    except ImportError:
        pytest.skip("the YAML loader is not in the tree yet")
    from simulator.tenant.ps_loader import load_powershell

    assert load_powershell(EXAMPLES / "contoso.ps1") == yaml_loader.load_yaml(yaml_path)


def test_contoso_has_an_office_under_location_based_routing(contoso) -> None:
    state, _ = contoso
    assert state.domains == ("contoso.com",)
    assert state.find("site", "Pune").enable_location_based_routing is True
    pun = state.find("gateway", "sbc-pun.contoso.com")
    assert (pun.gateway_site_id, pun.gateway_site_lbr_enabled) == ("Pune", True)
    priya = state.user("priya@contoso.com")
    assert priya.network_site == "Pune"
    assert state.effective_policy(priya, "teams_calling_policy").prevent_toll_bypass is True
