"""`drlab run --network real`: the same scenario on loopback sockets in wall time."""

from pathlib import Path

import pytest

from simulator.scenario import cli
from simulator.scenario.loader import parse_scenario

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.real
def test_a_short_scenario_runs_on_the_real_network_with_times_from_its_start(tmp_path, lab_certs):
    text = (f"lab: {REPO / 'examples' / 'labs' / 'contoso.yaml'}\ntenant: {REPO / 'examples' / 'contoso.yaml'}\n"
            "steps:\n  - expect: {client: [alice@contoso.com, carol@contoso.com], state: online}\n"
            "  - call: {from: alice@contoso.com, to: '4255550199', hangup_after: 1s,"
            " expect: {status: 200, path: [alice, sip, pstn-hq]}}\n")
    scenario = parse_scenario(text, str(tmp_path / "real.yaml"))
    result, records = cli.execute(scenario, seed=1, network="real", certs_dir=str(lab_certs))
    assert result.passed, result.error or [(s.name, s.detail) for s in result.steps]
    assert records[0]["t"] == 0.0 and records[-1]["t"] < 120  # seconds from the start, not since boot
    assert all(0 <= s.t_virtual < 120 for s in result.steps)
    assert any(r["event"] == "sip.sent" and r["src"].startswith("127.") for r in records)
