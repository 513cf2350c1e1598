"""Link cuts on real Docker networks: two throwaway containers from the base image, in two sites
joined by a router container, and the router's nftables chain for the link between them.

Run with `make test-docker` (DRLAB_DOCKER_TESTS=1); `make test` skips it. Every container and
network here carries the label drlab.test=cuts and is removed afterwards.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from simulator.dockerlab import compose, cuts
from simulator.lab.spec import parse_lab
from tests.docker.helpers import ECHO, PROBE, base_image, docker, requires_docker

TEST_LABEL = "drlab.test=cuts"
LAB = """
lab: cuttest
sites: [{name: east}, {name: west}]
links: [{name: wan, a: east, b: west}]
hosts:
  - {name: server.test, site: east, address: 10.231.1.10}
  - {name: client.test, site: west, address: 10.231.2.10}
nodes:
  - {name: server, host: server.test, role: pstn}
  - {name: client, host: client.test, role: pstn}
"""
pytestmark = requires_docker


@dataclass
class CutLab:
    router: str
    client: str
    pairs: list

    def probe(self) -> str:
        return docker("exec", "-e", "PYTHONDONTWRITEBYTECODE=1", self.client, "python3", "-c", PROBE).stdout.strip()


def _remove_labelled() -> None:
    containers = docker("ps", "-aq", "--filter", f"label={TEST_LABEL}").stdout.split()
    if containers:
        docker("rm", "-f", *containers)
    networks = docker("network", "ls", "-q", "--filter", f"label={TEST_LABEL}").stdout.split()
    if networks:
        docker("network", "rm", *networks)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CutLab]:
    image = base_image()
    if image is None:
        pytest.skip("Docker is not usable here, or there is no base image (python docker/build.py base)")
    plan = compose.plan(parse_lab(LAB))
    suffix = uuid.uuid4().hex[:6]
    label = ["--label", TEST_LABEL]
    try:
        for site in plan.sites.values():
            docker("network", "create", *label, "--subnet", str(site.subnet), "--gateway", str(site.gateway),
                    "-o", f"com.docker.network.bridge.name=dlt-{site.site}",
                    "-o", "com.docker.network.bridge.enable_ip_masquerade=false", f"cuttest-{site.site}-{suffix}")
        east, west = plan.sites["east"], plan.sites["west"]
        router = f"cuttest-router-{suffix}"
        docker("create", *label, "--name", router, "--cap-add", "NET_ADMIN", "--sysctl", "net.ipv4.ip_forward=1",
                "--network", f"cuttest-east-{suffix}", "--ip", str(east.router), image, "sleep", "infinity")
        docker("network", "connect", "--ip", str(west.router), f"cuttest-west-{suffix}", router)
        docker("start", router)
        cuts.apply(router, compose.router_ruleset(plan))
        hosts = [f"--add-host={name}:{address}" for name, address in plan.hosts]
        for node, site, command in (("server", east, ["python3", "-c", ECHO]), ("client", west, ["sleep", "infinity"])):
            other = west if site is east else east
            docker("run", "-d", *label, *hosts, "--name", f"cuttest-{node}-{suffix}", "--cap-add", "NET_ADMIN",
                    "--network", f"cuttest-{site.site}-{suffix}", "--ip", str(plan.addresses[node]), image, *command)
            docker("exec", f"cuttest-{node}-{suffix}", "ip", "route", "replace", str(other.subnet), "via", str(site.router))
        cut_lab = CutLab(router, f"cuttest-client-{suffix}", plan.link_pairs["wan"])
        deadline = time.monotonic() + 15
        while cut_lab.probe() != "ok":  # the echo server is starting
            assert time.monotonic() < deadline, "the echo server never answered across the router"
        yield cut_lab
    finally:
        _remove_labelled()


def test_the_link_carries_tcp_through_the_router(lab: CutLab) -> None:
    assert lab.probe() == "ok"


# What a new connection sees with the link in each state; after `up` it is answered again.
CUT_ACTIONS = {
    "down": lambda lab: cuts.down(lab.router, "wan", lab.pairs),
    "blackhole": lambda lab: cuts.blackhole(lab.router, "wan", lab.pairs),
    "loss 100%": lambda lab: cuts.loss(lab.router, "wan", lab.pairs, 100),
}


@pytest.mark.parametrize(("action", "seen"), [("down", "refused"), ("blackhole", "timeout"), ("loss 100%", "timeout")])
def test_a_cut_is_seen_by_a_new_connection_and_up_restores(lab: CutLab, action: str, seen: str) -> None:
    CUT_ACTIONS[action](lab)
    try:
        assert lab.probe() == seen
    finally:
        cuts.up(lab.router, "wan", lab.pairs)
    assert lab.probe() == "ok"


def test_down_resets_an_established_connection(lab: CutLab) -> None:
    held = subprocess.Popen(["docker", "exec", "-i", lab.client, "python3", "-c", PROBE, "hold"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert held.stdout.readline().strip() == "connected"
        cuts.down(lab.router, "wan", lab.pairs)
        held.stdin.write("\n")
        held.stdin.flush()
        assert held.stdout.readline().strip() == "reset"
    finally:
        held.kill()
        held.wait()
        cuts.up(lab.router, "wan", lab.pairs)


def test_the_cut_leaves_the_rest_of_the_ruleset_alone(lab: CutLab) -> None:
    cuts.apply(lab.router, "add table ip other\nadd chain ip other keep\n")
    cuts.down(lab.router, "wan", lab.pairs)
    cuts.up(lab.router, "wan", lab.pairs)
    tables = docker("exec", lab.router, "nft", "list", "tables").stdout.split("\n")
    assert "table ip other" in tables and "table inet drlab" in tables


def test_docker_exec_does_the_same_as_nsenter(lab: CutLab) -> None:
    cuts.apply(lab.router, cuts.rules("wan", lab.pairs, state="down"), via="exec")
    try:
        assert lab.probe() == "refused"
    finally:
        cuts.apply(lab.router, cuts.rules("wan", lab.pairs), via="exec")
    assert lab.probe() == "ok"


def test_partial_loss_is_a_random_share_rule_in_the_links_chain(lab: CutLab) -> None:
    cuts.loss(lab.router, "wan", lab.pairs, 30)
    try:
        chain = docker("exec", lab.router, "nft", "list", "chain", "inet", "drlab", "link-wan").stdout
        assert chain.count("numgen random mod 100 < 30 drop") == 2  # both directions
    finally:
        cuts.up(lab.router, "wan", lab.pairs)
