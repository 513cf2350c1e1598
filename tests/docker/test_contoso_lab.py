"""The Docker lab end to end, as `make lab`, `drlab run --attach` and `make lab-down` run it: the
Contoso lab in containers with the capture on, proxy-failover attached (a blackhole cut in the
router), then nothing of the lab is left in Docker, and Wireshark's engine reads the SIP inside
the mutual TLS from the real captures (the lab's, and the attached run's own capture.pcap) and
the nodes' key logs. Needs the drlab image (make docker-image); `make test-docker` builds
it. About a minute at time scale 10.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.dockerlab import compose
from tests.docker.helpers import docker, requires_docker

pytestmark = [*requires_docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
LAB, TENANT = ROOT / "examples" / "labs" / "contoso.yaml", ROOT / "examples" / "contoso.yaml"
TIME_SCALE = "10"


def dockerlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator.dockerlab", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def labelled(kind: str) -> list[str]:
    listing = ("ps", "-aq") if kind == "container" else ("network", "ls", "-q")
    return docker(*listing, "--filter", f"label={compose.LABEL}=contoso").stdout.split()


def test_make_lab_an_attached_scenario_and_lab_down_leave_nothing(tmp_path: Path) -> None:
    if docker("image", "inspect", compose.IMAGE, check=False).returncode != 0:
        pytest.skip(f"no {compose.IMAGE} image (make docker-image)")
    if labelled("container"):
        pytest.skip("a Contoso Docker lab is up already (make lab-down)")
    control = f"127.0.0.1:{free_port()}"
    out = tmp_path / "lab"
    try:
        up = dockerlab("up", str(LAB), "--tenant", str(TENANT), "--time-scale", TIME_SCALE, "--control", control,
                       "--out", str(out), "--capture")
        assert up.returncode == 0, up.stderr + up.stdout
        assert f"http://{control}" in up.stdout
        nodes = docker("ps", "--filter", f"label={compose.LABEL}=contoso", "--filter", "label=drlab.role=node",
                       "--format", "{{.Label \"drlab.node\"}}").stdout.split()
        assert sorted(nodes) == sorted(["sip,sip2,sip3", "pstn-hq", "pstn-sea", "sbc1", "sbc2", "sbc-sea", "sba1",
                                        "alice", "bob", "carol", "dave", "erin"])

        run = subprocess.run([sys.executable, "-m", "simulator.cli", "run", "scenarios/proxy-failover.yaml",
                              "--attach", f"http://{control}", "--out", str(tmp_path / "run"), "--quiet"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert json.loads((tmp_path / "run" / "result.json").read_text(encoding="utf-8"))["passed"] is True
    finally:
        down = dockerlab("down", str(LAB), "--out", str(out))
    assert down.returncode == 0, down.stderr
    assert labelled("container") == [] and labelled("network") == []
    # the cut was the router's: nftables rules set through nsenter (or docker exec), in the plane's records
    records = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    cut = [r for r in records if r["event"] == "docker.link" and r["link"] == "dc-noam"]
    assert [r["state"] for r in cut] == ["blackhole", "up"] and cut[0]["rules"] > 0
    # the real captures on the bridges, the lab's and the attached run's: the mutual-TLS SIP
    # between containers decrypts with the nodes' key logs
    # (a capture decrypts the TLS sessions whose handshake it holds: the run's, those opened in it)
    assert "10.10.0.11" in sip_sources(out, "OPTIONS")  # sbc1's OPTIONS to the cloud, all the lab long
    assert "10.10.1.21" in sip_sources(tmp_path / "run", "REGISTER")  # alice signing in at sip2 after the cut


def sip_sources(folder: Path, method: str) -> list[str]:
    """The source addresses of the SIP requests of `method` in folder/capture.pcap, read with folder/keys.log."""
    read = subprocess.run(["tshark", "-r", str(folder / "capture.pcap"), "-o",
                           f"tls.keylog_file:{folder / 'keys.log'}", "-d", "tls.port==443,sip",  # Teams clients: 443
                           "-Y", f'sip.Method == "{method}"', "-T", "fields", "-e", "ip.src"],
                          capture_output=True, text=True, timeout=120)
    return read.stdout.split()
