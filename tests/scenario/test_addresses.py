"""The address map of a run: node -> host -> address:port per SIP transport, in result.json (and
printed first on the real network, tests/scenario/test_time_scale.py)."""

from pathlib import Path

import pytest

from simulator.report.timeline import address_table
from simulator.scenario import cli
from simulator.scenario.loader import parse_scenario

REPO = Path(__file__).resolve().parents[2]


def test_the_address_table_aligns_node_host_address_and_listeners():
    addresses = {"sbc-sea": {"host": "sbc-sea.contoso.com", "address": "127.9.9.9",
                             "sip": {"tls": "127.9.9.9:5061", "udp": "127.9.9.9:5060"}},
                 "carol": {"host": "carol-pc.contoso.com", "address": "127.9.9.10", "sip": {}}}
    assert address_table(addresses) == ["sbc-sea  sbc-sea.contoso.com   127.9.9.9   tls 5061  udp 5060",
                                        "carol    carol-pc.contoso.com  127.9.9.10"]


@pytest.mark.e2e
def test_a_sim_run_writes_the_lab_files_addresses_into_the_result(tmp_path, lab_certs):
    text = (f"lab: {REPO / 'examples' / 'labs' / 'contoso.yaml'}\ntenant: {REPO / 'examples' / 'contoso.yaml'}\n"
            "steps:\n  - expect: {client: carol@contoso.com, state: online}\n")
    scenario = parse_scenario(text, str(tmp_path / "sim.yaml"))
    result, _ = cli.execute(scenario, seed=1, certs_dir=str(lab_certs))
    assert result.passed
    assert result.to_json()["addresses"]["sip"] == {"host": "sip.pstnhub.microsoft.com", "address": "52.112.1.1",
                                                   "sip": {"tls": "52.112.1.1:5061"}}
    assert result.addresses["pstn-sea"]["sip"] == {"udp": f"{result.addresses['pstn-sea']['address']}:5060"}
    assert result.addresses["carol"]["sip"] == {}  # a client only connects out
