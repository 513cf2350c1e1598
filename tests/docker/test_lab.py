"""The generated compose project on real Docker: networks, router, routes and names as generated,
with each node's `drlab node` swapped for an echo server on port 7000 (the compose file is the
user's to change, as here). Then `down` removes it all.

Run with `make test-docker` (DRLAB_DOCKER_TESTS=1); `make test` skips it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import yaml

from simulator.dockerlab import compose, cuts
from simulator.dockerlab.engine import containers, down
from simulator.lab.spec import parse_lab
from tests.docker.helpers import ECHO, PROBE, base_image, docker, requires_docker

pytestmark = requires_docker

# Two offices behind a transit site, a carrier PoP on the west office's own trunk, and a Teams
# cloud of two proxies on two sites of their own (one container, routing by source address).
LAB = """
lab: dltest
sites: [{name: internet}, {name: east}, {name: west}, {name: pop}, {name: dc1}, {name: dc2}]
links:
  - {name: wan-east, a: east, b: internet}
  - {name: wan-west, a: west, b: internet}
  - {name: trunk, a: west, b: pop}
  - {name: dc-1, a: dc1, b: internet}
  - {name: dc-2, a: dc2, b: internet}
hosts:
  - {name: server.test, site: east, address: 10.232.1.10}
  - {name: client.test, site: west, address: 10.232.2.10}
  - {name: carrier.test, site: pop, address: 10.232.3.10}
  - {name: p1.test, site: dc1, address: 10.232.4.10}
  - {name: p2.test, site: dc2, address: 10.232.5.10}
nodes:
  - {name: p1, host: p1.test, role: teams_proxy}
  - {name: p2, host: p2.test, role: teams_proxy}
  - {name: server, host: server.test, role: pstn}
  - {name: client, host: client.test, role: pstn}
  - {name: carrier, host: carrier.test, role: pstn}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[compose.DockerPlan]:
    image = base_image()
    if image is None:
        pytest.skip("Docker is not usable here, or there is no base image (python docker/build.py base)")
    out = tmp_path_factory.mktemp("dltest")
    (out / "lab.yaml").write_text(LAB, encoding="utf-8")
    (out / "tenant.yaml").write_text("", encoding="utf-8")
    plan = compose.plan(parse_lab(LAB))
    files = compose.LabFiles(out / "lab.yaml", out / "tenant.yaml", out / "certs", out / "router.nft")
    path = compose.write(plan, files, out)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name, service in document["services"].items():
        service["image"] = image
        if name != compose.ROUTER:
            setup = service["command"][2].split("exec drlab node")[0]
            service["command"][2] = f"{setup}exec python3 -c '{ECHO}'"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    try:
        subprocess.run(["docker-compose", "-p", plan.project, "-f", str(path), "up", "-d"], check=True,
                       capture_output=True)
        deadline = time.monotonic() + 20
        while probe(plan, "client", "server.test") != "ok":  # the echo servers are starting
            assert time.monotonic() < deadline, "no echo across the router"
        yield plan
    finally:
        down(plan.lab)


def probe(plan: compose.DockerPlan, node: str, target: str) -> str:
    """What `node` sees when it talks to `target` (a lab name or an address) on port 7000."""
    script = PROBE.replace('"server.test"', repr(target))
    return docker("exec", f"{plan.project}-{node}", "python3", "-c", script, check=False).stdout.strip()


def test_every_node_has_its_container_labelled_with_the_lab(lab: compose.DockerPlan) -> None:
    names = {name for name, _ in containers(lab.lab)}
    assert names == {f"{lab.project}-{n}" for n in ("p1", "server", "client", "carrier", "router")}


def test_lab_names_resolve_from_etc_hosts(lab: compose.DockerPlan) -> None:
    hosts = docker("exec", f"{lab.project}-client", "cat", "/etc/hosts").stdout
    assert "10.232.1.10\tserver.test" in hosts and "10.232.3.10\tcarrier.test" in hosts


def test_nodes_route_other_sites_through_the_router_and_nothing_else(lab: compose.DockerPlan) -> None:
    routes = docker("exec", f"{lab.project}-client", "ip", "-4", "route").stdout
    west = lab.sites["west"]
    assert "default" not in routes
    for other in ("east", "pop"):
        assert f"{lab.sites[other].subnet} via {west.router}" in routes


@pytest.mark.parametrize(("cut", "client_to_server", "client_to_carrier"), [
    ("wan-east", "refused", "ok"),   # the east office's WAN: the trunk in the west stays up
    ("trunk", "ok", "refused"),
])
def test_a_cut_acts_on_the_paths_through_its_link_only(lab: compose.DockerPlan, cut: str,
                                                       client_to_server: str, client_to_carrier: str) -> None:
    cuts.down(lab.router, cut, lab.link_pairs[cut])
    try:
        assert probe(lab, "client", "server.test") == client_to_server
        assert probe(lab, "client", "carrier.test") == client_to_carrier
    finally:
        cuts.up(lab.router, cut, lab.link_pairs[cut])
    assert probe(lab, "client", "server.test") == "ok"


def test_tshark_on_the_bridge_sees_the_reset_the_router_sends_for_a_down_link(lab: compose.DockerPlan) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("no tshark on the host")
    capture = subprocess.Popen(["tshark", "-i", lab.sites["west"].bridge, "-f", "tcp[tcpflags] & tcp-rst != 0",
                                "-c", "1", "-a", "duration:30", "-T", "fields", "-e", "ip.src", "-e", "ip.dst"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert capture.stderr is not None
    while not capture.stderr.readline().startswith("Capturing on"):  # tshark is listening
        assert capture.poll() is None, "tshark did not start"
    cuts.down(lab.router, "wan-east", lab.link_pairs["wan-east"])
    try:
        assert probe(lab, "client", "server.test") == "refused"
    finally:
        cuts.up(lab.router, "wan-east", lab.link_pairs["wan-east"])
    out, _ = capture.communicate(timeout=30)
    assert out.split() == ["10.232.1.10", "10.232.2.10"]  # in the server's name, from the router


def test_a_container_on_two_sites_answers_each_from_its_own_sites_bridge(lab: compose.DockerPlan) -> None:
    assert probe(lab, "client", "p2.test") == "ok"
    for address, site in (("10.232.4.10", "dc1"), ("10.232.5.10", "dc2")):
        route = docker("exec", f"{lab.project}-p1", "ip", "route", "get", "10.232.2.10", "from", address).stdout
        assert f"via {lab.sites[site].router} " in route
    cuts.down(lab.router, "dc-2", lab.link_pairs["dc-2"])
    try:
        assert (probe(lab, "client", "p2.test"), probe(lab, "client", "p1.test")) == ("refused", "ok")
    finally:
        cuts.up(lab.router, "dc-2", lab.link_pairs["dc-2"])


def test_nodes_reach_the_host_at_their_own_sites_gateway_across_any_cut(lab: compose.DockerPlan) -> None:
    gateway = str(lab.sites["west"].gateway)  # where a node dials the control plane
    with socket.create_server((gateway, 7000)) as server:
        threading.Thread(target=_echo_once, args=(server,), daemon=True).start()
        cuts.down(lab.router, "wan-west", lab.link_pairs["wan-west"])
        try:
            assert probe(lab, "client", "server.test") == "refused"
            assert probe(lab, "client", gateway) == "ok"
        finally:
            cuts.up(lab.router, "wan-west", lab.link_pairs["wan-west"])


def _echo_once(server: socket.socket) -> None:
    connection, _ = server.accept()
    with connection:
        connection.sendall(connection.makefile("rb").readline())


def test_down_removes_what_the_lab_created_and_nothing_else(lab: compose.DockerPlan) -> None:
    bystander = "dltest-bystander-net"  # another lab's network
    docker("network", "create", "--label", f"{compose.LABEL}=other", bystander)
    try:
        down(lab.lab)  # last test of the module: the lab goes
        assert containers(lab.lab) == []
        networks = docker("network", "ls", "--format", "{{.Name}} {{.Labels}}").stdout.splitlines()
        assert [n for n in networks if f"{compose.LABEL}={lab.lab}" in n] == []
        assert any(n.startswith(bystander) for n in networks)
    finally:
        docker("network", "rm", bystander)
