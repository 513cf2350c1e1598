"""External nodes: a peer drlab does not run, which the lab reaches at the address and port the file gives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simulator.lab import Lab, LabError, parse_lab
from simulator.lab.spec import ExternalPeer
from simulator.net import RealNetwork
from tests.support.contoso import contoso

# The carrier sits in a site no link reaches: an external node is reached directly, not over links.
LAB = """\
lab: outside
sites: [{name: branch}, {name: carrier}]
hosts:
  - {name: sbc-sea.contoso.com, site: branch}
  - {name: pstn.carrier.example, site: carrier}
nodes:
  - {name: pstn, host: pstn.carrier.example, role: pstn, external: true, address: 127.0.0.1, port: 5070}
  - {name: sbc-sea, host: sbc-sea.contoso.com, role: sbc, options: {carrier: pstn}}
"""
PSTN_LINE = "  - {name: pstn, host: pstn.carrier.example, role: pstn, external: true, address: 127.0.0.1, port: 5070}"


def _pstn(new_line: str) -> str:
    return LAB.replace(PSTN_LINE, new_line)


def test_an_external_node_is_where_the_file_says() -> None:
    spec = parse_lab(LAB, "outside.yaml")
    assert spec.nodes["pstn"].external == ExternalPeer("127.0.0.1", 5070, "udp")
    assert spec.nodes["sbc-sea"].external is None
    tcp = parse_lab(_pstn(PSTN_LINE.replace("port: 5070", "port: 5070, transport: TCP")), "outside.yaml")
    assert tcp.nodes["pstn"].external == ExternalPeer("127.0.0.1", 5070, "tcp")


@pytest.mark.parametrize("line, col, message", [
    ("role: pstn, external: true, address: 127.0.0.1}", 5, "external node pstn needs port"),
    ("role: pstn, external: true}", 5, "external node pstn needs address and port"),
    ("role: pstn, external: yes please, address: 127.0.0.1, port: 5070}", 68,
     "external of node pstn must be true or false"),
    ("role: pstn, external: true, address: pstn.carrier.example, port: 5070}", 83,
     "must be an IPv4 address like 127.0.0.1 or 192.0.2.10 (an outside peer is reached by address"),
    ("role: pstn, external: true, address: 0.0.0.0, port: 5070}", 83, "must be one host's address, not 0.0.0.0"),
    ("role: pstn, external: true, address: 255.255.255.255, port: 5070}", 83, "not 255.255.255.255"),
    ("role: pstn, external: true, address: 224.0.0.1, port: 5070}", 83, "not 224.0.0.1"),
    ("role: pstn, external: true, address: 127.0.0.1, port: 70000}", 100,
     "port of external node pstn must be between 1 and 65535"),
    ("role: pstn, external: true, address: 127.0.0.1, port: 5070, transport: tls}", 117,
     "transport of external pstn node pstn must be udp or tcp, not 'tls'"),
    ("role: pstn, external: true, address: 127.0.0.1, port: 5070, options: {default: busy}}", 106,
     "external node pstn takes no options"),
    ("role: pstn, address: 127.0.0.1}", 58, "node pstn: address is for an external node (external: true)"),
])
def test_mistakes_in_an_external_node_point_at_file_line_col(line: str, col: int, message: str) -> None:
    text = _pstn("  - {name: pstn, host: pstn.carrier.example, " + line)
    with pytest.raises(LabError) as err:
        parse_lab(text, "outside.yaml")
    assert str(err.value).startswith(f"outside.yaml:7:{col}: "), str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize("text, line, message", [
    (LAB.replace("role: sbc, options", "role: sbc, external: true, address: 127.0.0.2, port: 5061, options"), 8,
     "external node sbc-sea takes no options: drlab does not run it (its configuration is the peer's own)"),
    (LAB.replace("role: sbc, options: {carrier: pstn}", "role: sbc, external: true, address: 127.0.0.2, port: 5061, "
                 "transport: udp"), 8, "transport of external sbc node sbc-sea must be tls, not 'udp'"),
    (LAB.replace("role: sbc, options: {carrier: pstn}", "role: teams_client, external: true, address: 127.0.0.2, "
                 "port: 5061"), 8, "a teams_client node cannot be external; external nodes: pstn, sbc"),
    (LAB.replace("{name: pstn.carrier.example, site: carrier}",
                 "{name: pstn.carrier.example, site: carrier, address: 198.51.100.20}"), 7,
     "its host pstn.carrier.example gives an address (198.51.100.20, at outside.yaml:5:5), but an external "
     "node is at the node's own address:"),
    (LAB.replace("  - {name: sbc-sea,", "  - {name: pstn2, host: pstn2.carrier.example, role: pstn, external: true, "
                                         "address: 127.0.0.1, port: 5071}\n  - {name: sbc-sea,")
        .replace("hosts:\n", "hosts:\n  - {name: pstn2.carrier.example, site: carrier}\n"), 9,
     "address 127.0.0.1 is already external node pstn's"),
    (LAB.replace("{carrier: pstn}", "{carrier: pstn, carrier_transport: tcp}"), 8,
     "node sbc-sea: carrier_transport tcp, but external node pstn listens on udp"),
])
def test_external_nodes_that_cannot_be(text: str, line: int, message: str) -> None:
    with pytest.raises(LabError) as err:
        parse_lab(text, "outside.yaml")
    assert str(err.value).startswith(f"outside.yaml:{line}:"), str(err.value)
    assert message in str(err.value)


def test_an_external_sbc_listens_on_mutual_tls() -> None:
    spec = parse_lab(LAB.replace("role: sbc, options: {carrier: pstn}",
                                 "role: sbc, external: true, address: 127.0.0.2, port: 5061"), "outside.yaml")
    assert spec.nodes["sbc-sea"].external == ExternalPeer("127.0.0.2", 5061, "tls")


def test_an_external_sbc_must_listen_where_the_tenant_sends_to_it(lab_certs: Path) -> None:
    text = LAB.replace("role: sbc, options: {carrier: pstn}", "role: sbc, external: true, address: 127.0.0.2, port: 5067")
    with pytest.raises(LabError) as err:
        Lab.build(parse_lab(text, "outside.yaml"), tenant=contoso(), network="real", certs_dir=lab_certs)
    assert str(err.value).startswith("outside.yaml:8:5: external node sbc-sea listens on port 5067, but the tenant's "
                                     "gateway sbc-sea.contoso.com has SipSignalingPort 5061")


def test_a_lab_with_an_external_node_is_refused_on_the_sim_network(lab_certs: Path) -> None:
    with pytest.raises(LabError) as err:
        Lab.build(parse_lab(LAB, "outside.yaml"), tenant=contoso(), network="sim", certs_dir=lab_certs)
    assert str(err.value).startswith("outside.yaml:7:5: node pstn is external")
    assert "runs on the real network only (--network real)" in str(err.value)


@pytest.mark.real
def test_on_the_real_network_an_external_node_is_not_run_but_reached_at_its_address(lab_certs: Path) -> None:
    async def main() -> None:
        lab = Lab.build(parse_lab(LAB, "outside.yaml"), tenant=contoso(), network="real", certs_dir=lab_certs)
        try:
            assert list(lab.nodes) == ["sbc-sea"] and lab.start_order() == ["sbc-sea"]
            with pytest.raises(KeyError, match="node 'pstn' is external: drlab does not run it"):
                lab.node("pstn")
            assert lab.network.resolve("pstn.carrier.example") == "127.0.0.1"
            assert lab.network.is_external("pstn.carrier.example")
            assert lab.context.topology.sbc_carrier == {"sbc-sea.contoso.com": ("pstn.carrier.example", 5070, "udp")}
            assert [{k: v for k, v in r.items() if k != "t"} for r in lab.events.select("lab.external")] == [
                {"event": "lab.external", "node": "pstn", "host": "pstn.carrier.example",
                 "address": "127.0.0.1", "port": 5070, "transport": "udp"}]
        finally:
            await lab.stop()
    asyncio.run(main())


@pytest.mark.real
def test_an_external_address_inside_the_labs_own_block_is_refused(lab_certs: Path) -> None:
    async def main() -> None:
        free = RealNetwork()  # a free block, released for the lab to name
        block = free.block
        await free.close()
        inside = PSTN_LINE.replace("127.0.0.1", str(block[200]))
        with pytest.raises(LabError) as err:
            Lab.build(parse_lab(LAB.replace(PSTN_LINE, inside), "outside.yaml"), tenant=contoso(), network="real",
                      certs_dir=lab_certs, address_block=str(block))
        assert str(err.value).startswith("outside.yaml:7:5: external node pstn: address")
        assert f"lies in this network's block {block}" in str(err.value)
    asyncio.run(main())
