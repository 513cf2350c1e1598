"""The generated compose project on real Docker: networks, router, routes and names as generated,
with each node's `drlab node` and the control plane's `drlab lab up` swapped for an echo server
on port 7000 (the compose file is the user's to change, as here). Then `down` removes it all.

Run with `make test-docker` (DRLAB_DOCKER_TESTS=1); `make test` skips it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml

from simulator.dockerlab import compose, cuts
from simulator.dockerlab.__main__ import containers, down, missing_features
from simulator.lab.spec import parse_lab
from tests.docker.helpers import ECHO, PROBE, base_image, docker, requires_docker

pytestmark = requires_docker

# Two offices behind a transit site, and a carrier PoP on the west office's own trunk.
LAB = """
lab: dltest
sites: [{name: internet}, {name: east}, {name: west}, {name: pop}]
links:
  - {name: wan-east, a: east, b: internet}
  - {name: wan-west, a: west, b: internet}
  - {name: trunk, a: west, b: pop}
hosts:
  - {name: server.test, site: east, address: 10.232.1.10}
  - {name: client.test, site: west, address: 10.232.2.10}
  - {name: carrier.test, site: pop, address: 10.232.3.10}
nodes:
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
        if name == compose.ROUTER:
            service["ports"] = ["127.0.0.1::7000"]  # any free host port: 8765 may be a live lab's
        elif name == compose.CONTROL:
            service["command"] = ["python3", "-c", ECHO]
        else:
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
    assert names == {f"{lab.project}-{n}" for n in ("server", "client", "carrier", "router", "control")}


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


def test_nodes_reach_the_control_plane_at_their_own_routers_address_across_any_cut(lab) -> None:
    cuts.down(lab.router, "wan-west", lab.link_pairs["wan-west"])
    try:
        assert probe(lab, "client", "server.test") == "refused"
        assert probe(lab, "client", str(lab.sites["west"].router)) == "ok"
    finally:
        cuts.up(lab.router, "wan-west", lab.link_pairs["wan-west"])


def test_the_host_reaches_the_control_plane_on_its_loopback(lab: compose.DockerPlan) -> None:
    port = int(docker("port", lab.router, "7000").stdout.split(":")[-1])
    with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
        connection.sendall(b"ping\n")
        assert connection.recv(100) == b"ping\n"


def test_the_control_plane_applies_cuts_from_inside_the_routers_namespace(lab: compose.DockerPlan) -> None:
    control = f"{lab.project}-control"  # what via="local" does there: nft, in the shared namespace
    cuts.apply(control, cuts.rules("trunk", lab.link_pairs["trunk"], state="down"), via="exec")
    try:
        assert probe(lab, "client", "carrier.test") == "refused"
    finally:
        cuts.apply(control, cuts.rules("trunk", lab.link_pairs["trunk"]), via="exec")
    assert probe(lab, "client", "carrier.test") == "ok"


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


def test_an_image_without_drlab_node_is_named_as_missing_not_started() -> None:
    image = base_image()
    if image is None:
        pytest.skip("no base image (python docker/build.py base)")
    missing = missing_features(image)  # the base image has no drlab at all
    assert [what.split("`")[1] for what in missing] == ["drlab node", "drlab lab up --nodes remote"]
