"""Lab.load builds the network, certificates, context and roles; start() orders and settles them.

Roles here are stand-ins that record what the lab asked of them, so the builder is tested on its
own; tests/e2e runs the same file with the real roles.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress

import pytest

from simulator.lab import Lab, LabError
from simulator.net import RealNetwork
from simulator.pki.store import Identity
from tests.support.contoso import CONTOSO_LAB, contoso

STARTED: list[str] = []


class FakeRole:
    settle_after: dict[str, float] = {}

    def __init__(self, ctx, spec) -> None:
        self.ctx, self.spec = ctx, spec
        self.running = False

    async def start(self) -> None:
        STARTED.append(self.spec.name)
        self.running = True
        if self.spec.role == "teams_client":
            asyncio.get_running_loop().call_later(self.settle_after.get(self.spec.name, 1.0), self.signed_in)
        if self.spec.role == "sba":
            self.ctx.events.logger().info("sba.sync", node=self.spec.name, version=1, ok=True)

    def signed_in(self) -> None:
        self.ctx.events.logger().info("client.state", node=self.spec.name, user=self.spec.options["user"], state="online",
                                      registrar="sip.pstnhub.microsoft.com")

    async def stop(self) -> None:
        STARTED.append(f"stop {self.spec.name}")
        self.running = False


class FailingSbc(FakeRole):
    async def start(self) -> None:
        if self.spec.name == "sbc2":
            raise OSError("port 5061 in use")
        await super().start()


FAKES = {r: FakeRole for r in ("teams_proxy", "pstn", "sbc", "sba", "teams_client")}


@pytest.fixture(autouse=True)
def _clear() -> None:
    STARTED.clear()
    FakeRole.settle_after = {}


def load(lab_certs, **kw) -> Lab:
    return Lab.load(CONTOSO_LAB, tenant=kw.pop("tenant", None) or contoso(), certs_dir=lab_certs,
                    roles=kw.pop("roles", FAKES), **kw)


@pytest.mark.sim
async def test_start_order_is_proxies_pstn_sbcs_sbas_clients_and_stop_reverses_it(lab_certs) -> None:
    lab = load(lab_certs)
    assert await lab.start() == []
    assert STARTED == ["sip", "sip2", "sip3", "pstn-hq", "pstn-sea", "sbc1", "sbc2", "sbc-sea", "sba1",
                       "alice", "bob", "carol", "dave", "erin"]
    await lab.stop()
    assert STARTED[14:] == [f"stop {n}" for n in reversed(STARTED[:14])]
    assert lab.events.select("lab.stopped")


@pytest.mark.sim
async def test_start_waits_for_clients_online_and_reports_what_never_settled(lab_certs) -> None:
    FakeRole.settle_after = {"dave": 40.0, "erin": 1e9}
    lab = load(lab_certs)
    loop = asyncio.get_running_loop()
    waiting = await lab.start(settle_timeout_s=60)
    assert waiting == ["client erin: not signed in"]
    assert loop.time() == pytest.approx(60, abs=0.3)
    assert lab.events.select("lab.unsettled")[0]["waiting"] == waiting
    await lab.stop()


@pytest.mark.sim
async def test_topology_and_context_come_from_the_file(lab_certs) -> None:
    lab = load(lab_certs, seed=7)
    topo = lab.context.topology
    assert topo.proxies == ("sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com")
    assert topo.sba_sbc == {"sba1.contoso.com": "sbc-sea.contoso.com"}
    assert topo.sba_of_sbc("sbc-sea.contoso.com") == "sba1.contoso.com"
    assert topo.sbc_carrier["sbc1.contoso.com"] == ("pstn-hq.carrier.example", 5060, "udp")
    assert topo.sbcs_of_carrier("pstn-hq.carrier.example") == ["sbc1.contoso.com", "sbc2.contoso.com"]
    assert topo.client_hosts["carol@contoso.com"] == "carol-pc.contoso.com"
    assert lab.context.seed == 7 and lab.network.seed == 7
    spec = lab.node("sbc-sea").spec
    assert (spec.fqdn, spec.role, spec.site) == ("sbc-sea.contoso.com", "sbc", "seattle")
    assert lab.client("CAROL@contoso.com").spec.name == "carol"
    assert lab.network.resolve("sba1.contoso.com") == "10.20.0.12"
    assert lab.network.path("carol-pc.contoso.com", "sip.pstnhub.microsoft.com").names == ["wan-seattle", "dc-noam"]
    # no path between offices runs through the carrier: a cut WAN isolates Seattle from HQ too
    assert lab.network.path("sba1.contoso.com", "sbc1.contoso.com").names == ["wan-seattle", "wan-hq"]
    with pytest.raises(KeyError, match="no node 'sbc9'"):
        lab.node("sbc9")
    with pytest.raises(KeyError, match="no client for user 'zoe@contoso.com'"):
        lab.client("zoe@contoso.com")


@pytest.mark.sim
async def test_links_are_the_networks_and_cut_for_real(lab_certs) -> None:
    lab = load(lab_certs)
    lab.link("wan-seattle").down()
    assert lab.events.select("link.down", link="wan-seattle")
    with pytest.raises(ConnectionRefusedError):
        await lab.network.connect("carol-pc.contoso.com", "sip.pstnhub.microsoft.com", 443, asyncio.Protocol)


def test_certificates_for_presenting_hosts_with_the_broken_variant_asked_for(lab_certs, tmp_path) -> None:
    text = CONTOSO_LAB.read_text().replace(
        "{name: sbc1.contoso.com, site: hq, address: 10.10.0.11}",
        "{name: sbc1.contoso.com, site: hq, address: 10.10.0.11, certificate: {variant: wrong-san}}")
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    lab = Lab.load(path, tenant=contoso(), certs_dir=lab_certs, roles=FAKES)
    ids = lab.context.identities
    assert set(ids) == {"sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com",
                        "sbc1.contoso.com", "sbc2.contoso.com", "sbc-sea.contoso.com", "sba1.contoso.com"}
    assert isinstance(ids["sbc2.contoso.com"], Identity) and ids["sbc2.contoso.com"].variant is None
    assert ids["sbc1.contoso.com"].variant == "wrong-san" and ids["sbc1.contoso.com"].cert_path.exists()
    assert lab.context.trust == str(lab_certs / "ca.pem")


def test_settings_file_then_caller(lab_certs, tmp_path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(CONTOSO_LAB.read_text().replace("settings: {}", "settings: {client_detection_s: 20, sba_sync_interval_s: 60}"))
    lab = Lab.load(path, tenant=contoso(), certs_dir=lab_certs, roles=FAKES, settings={"client_detection_s": 12})
    assert (lab.settings.client_detection_s, lab.settings.sba_sync_interval_s) == (12.0, 60.0)
    with pytest.raises(LabError, match="settings override: unknown setting 'client_detect'"):
        Lab.load(path, tenant=contoso(), certs_dir=lab_certs, roles=FAKES, settings={"client_detect": 1})


def test_a_client_for_a_user_the_tenant_lacks_is_an_error_at_its_line(lab_certs) -> None:
    tenant = contoso()
    del tenant.users["erin@contoso.com"]
    with pytest.raises(LabError, match=r"contoso.yaml:\d+:\d+: node erin: the tenant has no user 'erin@contoso.com'"):
        load(lab_certs, tenant=tenant)


@pytest.mark.sim
async def test_a_node_that_fails_to_start_stops_the_others_and_is_named(lab_certs) -> None:
    lab = load(lab_certs, roles={**FAKES, "sbc": FailingSbc})
    with pytest.raises(LabError, match=r"node sbc2 \(sbc\) failed to start: OSError: port 5061 in use"):
        await lab.start()
    assert STARTED[-6:] == ["stop sbc1", "stop pstn-sea", "stop pstn-hq", "stop sip3", "stop sip2", "stop sip"]


def test_unknown_network_kind(lab_certs) -> None:
    with pytest.raises(LabError, match="network must be 'sim' or 'real'"):
        load(lab_certs, network="docker")


def test_real_network_gets_loopback_addresses(lab_certs) -> None:
    lab = load(lab_certs, network="real")
    assert lab.network.resolve("sbc1.contoso.com").startswith("127.")
    assert dataclasses.is_dataclass(lab.context.topology)


@pytest.mark.real
async def test_a_real_lab_takes_the_address_block_it_is_given(lab_certs) -> None:
    free = RealNetwork()  # a block nobody else holds, given back at once for the lab to take
    block = free.block
    await free.close()
    lab = load(lab_certs, network="real", address_block=str(block))
    try:
        assert all(ipaddress.IPv4Address(a) in block for a in lab.network.addresses().values())
    finally:
        await lab.network.close()
    with pytest.raises(LabError, match="real network: address block must be"):
        load(lab_certs, network="real", address_block="localhost")
