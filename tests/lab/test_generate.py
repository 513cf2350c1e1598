"""The generated Fabrikam lab (simulator.lab.generate): files that load, and an outage every client lives through."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.cli import main as drlab
from simulator.lab.generate import client_upn, generate_lab, lab_yaml, outage_yaml, sba_fqdn, tenant_yaml
from simulator.lab.spec import load_lab_spec
from simulator.report import PASSED
from simulator.scenario.cli import execute
from simulator.scenario.loader import check_against_lab, load_scenario
from simulator.tenant.cli import load_tenant


@pytest.mark.parametrize(("branches", "clients", "roles"), [
    (1, 1, {"teams_proxy": 3, "pstn": 1, "sbc": 1, "sba": 1, "teams_client": 1}),
    (3, 5, {"teams_proxy": 3, "pstn": 3, "sbc": 3, "sba": 3, "teams_client": 15}),
    (2, 300, {"teams_proxy": 3, "pstn": 2, "sbc": 2, "sba": 2, "teams_client": 600}),
])
def test_the_lab_has_an_sbc_an_sba_a_carrier_and_the_clients_of_each_branch(
        tmp_path: Path, branches: int, clients: int, roles: dict[str, int]) -> None:
    files = generate_lab(branches, clients, tmp_path)
    spec = load_lab_spec(files.lab)
    counted: dict[str, int] = {}
    for node in spec.nodes.values():
        counted[node.role] = counted.get(node.role, 0) + 1
    assert counted == roles
    assert len({host.address for host in spec.hosts.values()}) == len(spec.hosts)  # no address twice
    tenant = load_tenant(str(files.tenant))
    assert len(tenant.users) == branches * clients
    check_against_lab(load_scenario(files.scenario))  # every link and client the steps name exists


def test_each_user_is_in_the_subnet_and_sba_policy_of_their_branch(tmp_path: Path) -> None:
    files = generate_lab(2, 3, tmp_path)
    tenant = load_tenant(str(files.tenant))
    user = tenant.user(client_upn(2, 3))
    assert user.network_site == "b02" and user.phone_number == "+14252020003"
    assert tuple(tenant.effective_policy(user, "sba_policy").branch_appliance_fqdns) == (sba_fqdn(2),)
    host = load_lab_spec(files.lab).host("b02-u003-pc.fabrikam.com")
    assert host.address == "10.2.1.3" and host.site == "b02"


@pytest.mark.parametrize("make", [lab_yaml, tenant_yaml, outage_yaml])
@pytest.mark.parametrize(("branches", "clients", "message"), [
    (0, 5, "branches must be 1..250, not 0"),
    (251, 5, "branches must be 1..250, not 251"),
    (2, 0, "clients per branch must be 1..9999, not 0"),
])
def test_a_size_out_of_range_is_refused(make, branches: int, clients: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(branches, clients)


@pytest.mark.e2e
def test_every_client_of_every_branch_goes_to_its_sba_and_back(tmp_path: Path, lab_certs: Path) -> None:
    files = generate_lab(3, 5, tmp_path)
    result, _ = execute(load_scenario(files.scenario), seed=1, certs_dir=str(lab_certs))
    assert result.error == ""
    assert [(s.name, s.status) for s in result.steps if s.status != PASSED] == []
    assert len(result.steps) == 3 * 5  # per branch: online, cut, to the SBA, restore, back online
    assert result.metrics["clients_in_appliance_mode"] == 15


@pytest.mark.parametrize(("argv", "status", "says"), [
    (["--branches", "2", "--clients", "3"], 0, "outage.yaml"),
    (["--branches", "0", "--clients", "3"], 2, "branches must be 1..250, not 0"),
])
def test_drlab_lab_generate_writes_the_three_files_or_says_what_is_wrong(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], status: int, says: str) -> None:
    assert drlab(["lab", "generate", *argv, "--out", str(tmp_path / "fabrikam")]) == status
    out, err = capsys.readouterr()
    assert says in (out if status == 0 else err)
    written = sorted(p.name for p in (tmp_path / "fabrikam").glob("*.yaml")) if status == 0 else []
    assert written == (["lab.yaml", "outage.yaml", "tenant.yaml"] if status == 0 else [])
