"""Fixtures and test settings shared by every test folder.

- `lab_pki` (also `pki`): the test PKI (tests/support/pki.py), issued once per test run.
- `lab_certs`: the certificate directory every `Lab` of the run shares: lab_pki's own.
- `contoso_tenant`: examples/contoso.yaml plus erin (tests/support/contoso.py).
- `catalogue_run(name)`: scenarios/<name>.yaml run once per test run on the sim network with a
  strict event log (every event name and field checked against the catalogue), on the scenario's
  seed: the same (result, records) for every test that asks, so a scenario several tests read is
  run once.
- `@pytest.mark.sim`: an `async def test_...` runs on a fresh VirtualClockLoop (simulator/net/clock.py),
  as `run_sim` would run it: timers cost no wall time and the clock starts at 0.
- `slow` (left out by `make test-fast`): a test or module may say so itself; every test marked `e2e`
  (a whole lab or scenario run) or `real` (loopback sockets, wall-clock waits) is slow too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from simulator.events import STRICT_ENV
from simulator.net.clock import VirtualClockLoop
from simulator.pki import LabPki
from simulator.report.result import RunResult
from simulator.tenant.model import Tenant
from tests.support.contoso import contoso
from tests.support.pki import issue_test_pki


@pytest.fixture(scope="session")
def lab_pki(tmp_path_factory: pytest.TempPathFactory) -> LabPki:
    return issue_test_pki(tmp_path_factory.mktemp("lab-pki"))


@pytest.fixture(scope="session")
def pki(lab_pki: LabPki) -> LabPki:
    """`lab_pki` under the name the role tests ask for."""
    return lab_pki


@pytest.fixture(scope="session")
def lab_certs(lab_pki: LabPki) -> Path:
    """The test PKI's directory: a lab adds what its hosts lack and reuses the CA and the rest."""
    return lab_pki.dir


@pytest.fixture
def contoso_tenant() -> Tenant:
    return contoso()


SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
CatalogueRun = tuple[RunResult, list[dict[str, Any]]]


@pytest.fixture(scope="session")
def catalogue_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], CatalogueRun]:
    from simulator.scenario import cli  # late: the scenario CLI pulls in the whole lab
    from simulator.scenario.loader import load_scenario

    runs: dict[str, CatalogueRun] = {}

    def run(name: str) -> CatalogueRun:
        if name not in runs:
            scenario = load_scenario(SCENARIOS / f"{name}.yaml")
            # one certificate folder per lab file: some labs plant certificates the others must not see
            certs = tmp_path_factory.getbasetemp() / "scenario-certs" / Path(scenario.lab).stem
            with mock.patch.dict("os.environ", {STRICT_ENV: "1"}):
                runs[name] = cli.execute(scenario, seed=scenario.seed or 1, certs_dir=str(certs))
        return runs[name]

    return run


SLOW_KINDS = ("e2e", "real", "live")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(kind) is not None for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loop an async test runs on: the virtual clock for tests marked `sim`, else asyncio's own."""
    if item.get_closest_marker("sim") is not None:
        return {"sim": VirtualClockLoop}
    return {"asyncio": asyncio.new_event_loop}
