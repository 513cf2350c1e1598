"""The catalogue in scenarios/: every file loads and says what it teaches; the ones the roles support
run end to end on the sim network (real mutual-TLS SIP between every role, virtual time)."""

from pathlib import Path

import pytest

from simulator.lab import load_lab_spec
from simulator.scenario import cli
from simulator.scenario.loader import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
CATALOGUE = sorted(SCENARIOS.glob("*.yaml"))

#: run end to end by the suite; each must pass every step (the others: see docs/scenarios.md)
END_TO_END = ["branch-outage", "proxy-failover", "gateway-failover-503", "gateway-failover-timeout",
              "certificate-failures", "capacity", "drain", "client-restart-during-outage",
              "user-added-after-sync", "routing-regression", "long-outage", "emergency-in-survivable-mode",
              "emergency-online", "location-based-routing"]


def test_the_catalogue_is_complete():
    names = {p.stem for p in CATALOGUE}
    assert names >= {"branch-outage", "proxy-failover", "gateway-failover-503", "gateway-failover-timeout",
                     "certificate-failures", "capacity", "drain", "emergency-in-survivable-mode",
                     "client-restart-during-outage", "user-added-after-sync", "long-outage",
                     "routing-regression"}


@pytest.mark.parametrize("path", CATALOGUE, ids=lambda p: p.stem)
def test_each_scenario_loads_and_starts_with_what_it_teaches(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith(f"# {path.stem} — "), first
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    load_lab_spec(scenario.lab)  # its lab file is valid too


@pytest.mark.e2e
@pytest.mark.parametrize("name", END_TO_END)
def test_scenario_passes_end_to_end(name, catalogue_run):
    result, records = catalogue_run(name)
    failed = [f"{s.name} ({s.position}): {s.detail}" for s in result.steps if s.status != "passed"]
    assert result.passed, result.error or "\n".join(failed)
    assert records and records[-1]["t"] > 0


@pytest.mark.e2e
def test_branch_outage_twice_with_one_seed_gives_identical_events_and_its_metrics(catalogue_run, tmp_path_factory):
    """A second run of the seed the catalogue run used, with the default (not strict) event log."""
    import json

    first, a = catalogue_run("branch-outage")
    scenario = load_scenario(SCENARIOS / "branch-outage.yaml")
    certs = str(tmp_path_factory.getbasetemp() / "scenario-certs" / "contoso")
    _, b = cli.execute(scenario, seed=scenario.seed or 1, certs_dir=certs)
    assert json.dumps(a, default=str) == json.dumps(b, default=str)
    m = first.metrics
    assert 0 < m["detection_s"] <= m["appliance_mode_s"] < 300 and 0 < m["recovery_s"] < 300
    assert m["clients_in_appliance_mode"] == 3  # carol, dave, erin
