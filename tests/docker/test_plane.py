"""The Docker lab's control plane without Docker: a routed lab at the file's addresses, and each
link change in the control plane turned into the router's nftables rules (cuts.apply stubbed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from simulator.control import processes
from simulator.dockerlab import cuts, engine
from simulator.dockerlab.plane import DockerLab
from simulator.lab import Lab
from simulator.lab.spec import LabError

ROOT = Path(__file__).resolve().parents[2]
CONTOSO, TENANT = ROOT / "examples" / "labs" / "contoso.yaml", ROOT / "examples" / "contoso.yaml"


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []

    def apply(router: str, transaction: str, *, via: str | None = None) -> str:
        calls.append((router, transaction))
        return "nsenter"

    monkeypatch.setattr(cuts, "apply", apply)
    return calls


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")  # made once: certificates cost a second


@pytest.fixture
def plane(tmp_path: Path, certs: Path) -> DockerLab:
    lab = Lab.load(CONTOSO, tenant=TENANT, network="real", certs_dir=certs, routed=True)
    return DockerLab(lab, lab_file=str(CONTOSO), tenant_file=str(TENANT), certs_dir=str(certs), out=tmp_path)


def test_a_routed_lab_puts_every_host_at_the_lab_files_address(plane: DockerLab) -> None:
    addresses = plane.network.addresses()
    assert addresses["sip2.pstnhub.microsoft.com"] == "52.113.1.1" and addresses["carol-pc.contoso.com"] == "10.20.1.21"
    assert plane.network.block is None


@pytest.mark.parametrize(("change", "state", "expected"), [
    ("down", "down", "reject with tcp reset"),
    ("blackhole", "blackhole", " drop"),
    ("up", "up", None),
])
def test_a_links_state_in_the_control_plane_becomes_the_routers_rules(plane, applied, change, state, expected) -> None:
    if change == "up":
        plane.link("wan-seattle").down()
    getattr(plane.link("wan-seattle"), change)()
    router, transaction = applied[-1]
    assert router == "drlab-contoso-router"
    assert transaction.startswith("flush chain inet drlab link-wan-seattle\n")
    rules = transaction.splitlines()[1:]
    assert (expected is None and rules == []) or all(expected in rule for rule in rules[::2])
    record = [r for r in plane.events.records if r["event"] == "docker.link"][-1]
    assert (record["link"], record["state"], record["via"]) == ("wan-seattle", state, "nsenter")


def test_a_links_loss_becomes_random_drops_and_its_latency_is_named_unsupported(plane, applied) -> None:
    plane.link("wan-hq").impair(loss=0.1, latency=0.05)
    assert "numgen random mod 100 < 10 drop" in applied[-1][1]
    assert [r["link"] for r in plane.events.records if r["event"] == "docker.unsupported"] == ["wan-hq"]


def test_node_processes_are_not_told_about_links(plane, applied) -> None:
    plane.link("wan-seattle").down()  # no websocket: a message to a node would fail here
    assert len(applied) == 1


def test_the_docker_lab_needs_a_routed_network(tmp_path: Path, certs: Path) -> None:
    lab = Lab.load(CONTOSO, tenant=TENANT, network="real", certs_dir=certs)
    with pytest.raises(LabError, match="routed"):
        DockerLab(lab, lab_file=str(CONTOSO), tenant_file=str(TENANT), certs_dir=str(tmp_path), out=tmp_path)


async def test_a_container_whose_node_never_dials_in_is_named_with_its_last_output(plane, monkeypatch) -> None:
    monkeypatch.setattr(processes, "NODE_START_S", 0.05)
    asked: list[tuple[str, ...]] = []

    def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        asked.append(args)
        return subprocess.CompletedProcess(args, 0, stdout="", stderr="drlab node: cannot reach the control plane\n")

    monkeypatch.setattr(engine, "docker", docker)
    error = await plane._wait_ready(plane.processes["sbc1"])
    assert error == ("it did not connect within 0.05 s (container drlab-contoso-sbc1: "
                     "drlab node: cannot reach the control plane)")
    assert asked == [("logs", "--tail", "5", "drlab-contoso-sbc1")]
