"""The Docker lab's layout, compose file and cut rules, derived from the lab file (no Docker needed)."""

from __future__ import annotations

import importlib.util
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import yaml

from simulator.dockerlab import compose, cuts
from simulator.dockerlab.__main__ import main as dockerlab_main
from simulator.lab.spec import load_lab_spec, parse_lab

CONTOSO = Path(__file__).resolve().parents[2] / "examples" / "labs" / "contoso.yaml"
BUILD = Path(__file__).resolve().parents[2] / "docker" / "build.py"


@pytest.fixture(scope="module")
def plan() -> compose.DockerPlan:
    return compose.plan(load_lab_spec(CONTOSO))


@pytest.fixture(scope="module")
def document(plan: compose.DockerPlan, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("contoso")
    files = compose.LabFiles(CONTOSO, Path("examples/contoso.yaml"), out / "certs", out / "router.nft")
    return yaml.safe_load(compose.write(plan, files, out).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("site", "subnet"), [
    ("cloud-noam", "52.112.1.0/24"),
    ("hq", "10.10.0.0/23"),            # 10.10.0.11 and 10.10.1.21: wider than a /24
    ("seattle", "10.20.0.0/23"),
    ("pstn-hq", "198.51.100.0/28"),    # 198.51.100.20 is another site's: narrower
    ("pstn-sea", "198.51.100.16/28"),
])
def test_each_site_with_hosts_gets_the_widest_subnet_holding_only_its_hosts(plan, site, subnet) -> None:
    assert str(plan.sites[site].subnet) == subnet


def test_a_transit_site_without_hosts_is_no_network(plan) -> None:
    assert "internet" not in plan.sites


def test_router_and_gateway_take_free_top_addresses(plan) -> None:
    noam = plan.sites["cloud-noam"]  # sip is 52.112.1.1: the usual .1 gateway is taken
    assert (str(noam.router), str(noam.gateway)) == ("52.112.1.254", "52.112.1.253")


@pytest.mark.parametrize(("link", "cut", "kept"), [
    ("wan-seattle", [("seattle", "cloud-noam"), ("seattle", "hq"), ("cloud-asia", "seattle")],
     [("seattle", "pstn-sea"), ("hq", "cloud-noam")]),
    ("trunk-hq", [("hq", "pstn-hq"), ("pstn-hq", "cloud-noam")], [("hq", "cloud-noam"), ("seattle", "pstn-sea")]),
    ("dc-noam", [("cloud-noam", "hq"), ("cloud-emea", "cloud-noam")], [("cloud-emea", "hq")]),
])
def test_a_link_covers_the_site_pairs_whose_path_crosses_it(plan, link, cut, kept) -> None:
    pairs = {(a, b) for a, b in plan.link_pairs[link]}
    for a, b in cut:
        assert (plan.sites[a].subnet, plan.sites[b].subnet) in pairs
        assert (plan.sites[b].subnet, plan.sites[a].subnet) in pairs
    for a, b in kept:
        assert (plan.sites[a].subnet, plan.sites[b].subnet) not in pairs


def test_every_container_and_network_is_labelled_with_the_lab(document) -> None:
    for part in ("services", "networks"):
        for name, entry in document[part].items():
            assert entry["labels"][compose.LABEL] == "contoso", name


def test_one_container_per_node_the_teams_cloud_in_one_plus_the_router(document) -> None:
    nodes = {name: s["labels"]["drlab.node"] for name, s in document["services"].items()
             if s["labels"].get("drlab.role") == "node"}
    cloud = {"sip": "sip,sip2,sip3"}  # the proxies share registrations and gateway health
    assert nodes == cloud | {n: n for n in load_lab_spec(CONTOSO).nodes if n not in ("sip", "sip2", "sip3")}
    assert compose.ROUTER in document["services"] and "drlab-control" not in document["services"]


def test_site_networks_are_fixed_bridges_without_masquerade_and_not_internal(document) -> None:
    hq = document["networks"]["hq"]
    assert hq["driver_opts"] == {"com.docker.network.bridge.name": "dl4-hq",
                                 "com.docker.network.bridge.enable_ip_masquerade": "false"}
    assert hq["ipam"]["config"] == [{"subnet": "10.10.0.0/23", "gateway": "10.10.1.253"}]
    assert "internal" not in hq


def test_a_node_runs_drlab_node_after_routing_other_sites_through_the_router(document) -> None:
    sba = document["services"]["sba1"]
    line = sba["command"][2]
    assert line.endswith("exec drlab node --lab /lab/lab.yaml --tenant /lab/tenant.yaml --node sba1 "
                         "--control http://10.20.1.253:8765 --certs /lab/certs")  # the host, on its own bridge
    assert "ip route del default" in line and "ip route replace 10.10.0.0/23 via 10.20.1.254" in line
    assert sba["networks"]["seattle"] == {"ipv4_address": "10.20.0.12"}
    assert "sip.pstnhub.microsoft.com:52.112.1.1" in sba["extra_hosts"]


def test_the_teams_cloud_joins_each_proxys_site_and_routes_by_source_address(document) -> None:
    cloud = document["services"]["sip"]
    assert cloud["networks"] == {"cloud-noam": {"ipv4_address": "52.112.1.1"},
                                 "cloud-emea": {"ipv4_address": "52.113.1.1"},
                                 "cloud-asia": {"ipv4_address": "52.114.1.1"}}
    line = cloud["command"][2]
    assert "ip rule add from 52.113.1.1 lookup 101" in line
    assert "ip route replace 10.20.0.0/23 via 52.113.1.254 table 101" in line  # sip2's packets: its own bridge
    assert "$$(ip -o -4 addr show to 52.113.1.1" in line  # the interface found by address ($$: compose's $)


def test_the_router_forwards_and_loads_drlabs_own_table(document) -> None:
    router = document["services"][compose.ROUTER]
    assert router["sysctls"] == {"net.ipv4.ip_forward": "1"} and router["cap_add"] == ["NET_ADMIN"]
    assert router["networks"]["pstn-sea"] == {"ipv4_address": "198.51.100.30"}
    assert "nft -f /lab/router.nft" in router["command"][2]
    assert "ports" not in router  # the control plane is the host's: nothing is published


def test_the_ruleset_is_one_table_of_drlabs_with_a_chain_per_link(plan) -> None:
    ruleset = compose.router_ruleset(plan)
    assert ruleset.startswith("table inet drlab {") and "flush ruleset" not in ruleset
    assert ruleset.count("jump link-") == len(plan.link_pairs) == 7


PAIR = [(IPv4Network("10.1.0.0/24"), IPv4Network("10.2.0.0/24"))]


@pytest.mark.parametrize(("state", "loss", "rules"), [
    ("up", 0, []),
    ("down", 0, ["ip saddr 10.1.0.0/24 ip daddr 10.2.0.0/24 meta l4proto tcp reject with tcp reset",
                 "ip saddr 10.1.0.0/24 ip daddr 10.2.0.0/24 reject with icmpx type port-unreachable"]),
    ("blackhole", 0, ["ip saddr 10.1.0.0/24 ip daddr 10.2.0.0/24 drop"]),
    ("up", 5, ["ip saddr 10.1.0.0/24 ip daddr 10.2.0.0/24 numgen random mod 100 < 5 drop"]),
    ("up", 100, ["ip saddr 10.1.0.0/24 ip daddr 10.2.0.0/24 drop"]),
])
def test_each_state_is_a_flush_of_the_links_chain_then_its_rules(state, loss, rules) -> None:
    lines = cuts.rules("wan", PAIR, state=state, loss_percent=loss).splitlines()
    assert lines == ["flush chain inet drlab link-wan"] + [f"add rule inet drlab link-wan {r}" for r in rules]


@pytest.mark.parametrize(("state", "loss", "message"), [
    ("sideways", 0, "state must be up, down or blackhole"),
    ("up", 101, "loss must be 0..100 percent"),
])
def test_a_bad_state_or_loss_is_refused(state, loss, message) -> None:
    with pytest.raises(ValueError, match=message):
        cuts.rules("wan", PAIR, state=state, loss_percent=loss)


def test_an_unknown_way_to_reach_the_router_is_refused() -> None:
    with pytest.raises(ValueError, match="via must be local, nsenter or exec"):
        cuts.apply("router", "", via="ssh")


def test_a_host_without_an_address_is_a_positioned_error() -> None:
    spec = parse_lab("sites: [{name: s}]\nhosts:\n  - {name: a.test, site: s}\n"
                     "nodes:\n  - {name: a, host: a.test, role: pstn}\n", "lab.yaml")
    with pytest.raises(compose.DockerLabError, match=r"^lab.yaml:3:5: host a.test needs an address"):
        compose.plan(spec)


def _build_module():
    spec = importlib.util.spec_from_file_location("docker_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("name", "text", "mirror"), [
    ("debian.sources", "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
     "Components: main\n\nTypes: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n",
     "http://mirror.example/debian"),
    ("sources.list", "deb [arch=amd64] http://old.example/debian bookworm main\n", "http://old.example/debian"),
])
def test_debootstrap_uses_the_mirror_apt_is_configured_with(tmp_path: Path, monkeypatch, name, text, mirror) -> None:
    monkeypatch.delenv("DRLAB_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / name).write_text(text, encoding="utf-8")
    build = _build_module()
    assert build.debian_mirror((tmp_path / "sources.list", tmp_path / "sources.list.d")) == mirror


def test_no_bookworm_mirror_is_a_clear_build_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DRLAB_DEBIAN_MIRROR", raising=False)
    build = _build_module()
    with pytest.raises(build.BuildError, match="no Debian bookworm mirror"):
        build.debian_mirror((tmp_path / "sources.list",))


@pytest.mark.parametrize(("args", "message"), [
    (["compose", "absent.yaml", "--tenant", "examples/contoso.yaml"], "absent.yaml:1:1: cannot read lab file"),
    (["compose", str(CONTOSO), "--tenant", "absent.yaml"], "no tenant file absent.yaml"),
])
def test_the_command_line_names_a_missing_file_with_exit_2(args, message, capsys) -> None:
    assert dockerlab_main(args) == 2
    assert message in capsys.readouterr().err


def test_compose_writes_the_project_and_the_ruleset_without_docker(tmp_path: Path) -> None:
    args = ["compose", str(CONTOSO), "--tenant", str(CONTOSO.parents[1] / "contoso.yaml"),
            "--out", str(tmp_path), "--certs", str(tmp_path / "certs")]
    assert dockerlab_main(args) == 0
    assert yaml.safe_load((tmp_path / "compose.yaml").read_text(encoding="utf-8"))["version"] == "2.4"
    assert (tmp_path / "router.nft").read_text(encoding="utf-8").startswith("table inet drlab {")


def test_a_links_loss_in_the_lab_file_is_in_the_routers_ruleset_from_the_start() -> None:
    spec = parse_lab("sites: [{name: a}, {name: b}]\nlinks:\n  - {name: ab, a: a, b: b, loss: 0.05}\n"
                     "hosts:\n  - {name: x.test, site: a, address: 10.9.1.10}\n"
                     "  - {name: y.test, site: b, address: 10.9.2.10}\n"
                     "nodes:\n  - {name: x, host: x.test, role: pstn}\n  - {name: y, host: y.test, role: pstn}\n")
    ruleset = compose.router_ruleset(compose.plan(spec))
    assert ("add rule inet drlab link-ab ip saddr 10.9.1.0/24 ip daddr 10.9.2.0/24 numgen random mod 100 < 5 drop"
            in ruleset.splitlines())
