"""The Docker Engine through its command-line clients (`docker`, `docker-compose`): what the
Docker lab asks of it, and the removal of a lab (every container and network labelled
`drlab.lab=<lab>`, nothing else)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

from simulator.dockerlab import compose

#: wall seconds a network may keep refusing removal ("has active endpoints") after its containers go
NETWORK_RELEASE_S = 15.0


class DockerLabFailure(Exception):
    """Docker or the image cannot run the lab; the message says what is missing."""


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["docker", *args], check=check, capture=True)


def run(command: list[str], *, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=capture, text=True)
    except FileNotFoundError:
        raise DockerLabFailure(f"{command[0]} is not installed") from None
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip() if capture else ""
        raise DockerLabFailure(f"{' '.join(command[:3])} failed (exit {result.returncode}) {detail}".strip())
    return result


async def run_async(command: list[str], timeout: float) -> str:
    """Run `command` without blocking the loop; its output, or DockerLabFailure with its last lines."""
    try:
        process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL,
                                                       stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
    except FileNotFoundError:
        raise DockerLabFailure(f"{command[0]} is not installed") from None
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise DockerLabFailure(f"{' '.join(command[:4])} took more than {timeout:g} s") from None
    text = output.decode(errors="replace")
    if process.returncode != 0:
        last = " ".join(text.strip().splitlines()[-3:])
        raise DockerLabFailure(f"{' '.join(command[:4])} failed (exit {process.returncode}): {last}")
    return text


def containers(lab: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every container of the lab with its (network, address) pairs."""
    ids = docker("ps", "-aq", "--filter", f"label={compose.LABEL}={lab}").stdout.split()
    if not ids:
        return []
    found = []
    for container in json.loads(docker("inspect", *ids).stdout):
        networks = container["NetworkSettings"]["Networks"]
        found.append((container["Name"].lstrip("/"),
                      sorted((net, info["IPAddress"]) for net, info in networks.items())))
    return sorted(found)


def down(lab: str) -> tuple[int, int]:
    """Remove the lab's containers, then its networks: what carries drlab.lab=<lab>, nothing else.
    Returns how many containers and networks went; DockerLabFailure names a network left behind."""
    label = f"label={compose.LABEL}={lab}"
    ids = docker("ps", "-aq", "--filter", label).stdout.split()
    for container in ids:  # one at a time: concurrent removals can leak a network's endpoint count
        docker("rm", "-f", container)
    networks = docker("network", "ls", "-q", "--filter", label).stdout.split()
    stuck = [error for error in map(_remove_network, networks) if error]
    if stuck:
        raise DockerLabFailure("networks left behind (Docker still counts endpoints on them; "
                               "restarting dockerd clears that): " + "; ".join(stuck))
    return len(ids), len(networks)


def _remove_network(network: str) -> str | None:
    """Remove a network; None when done, else why not. Docker releases a removed container's
    endpoints a moment after `rm -f` returns, and 20.10 sometimes leaks one for good; so an
    endpoint still attached is disconnected by force, and "has active endpoints" is retried for
    a while (each try is a round trip to dockerd: no sleep needed between them)."""
    deadline = time.monotonic() + NETWORK_RELEASE_S
    while True:
        result = docker("network", "rm", network, check=False)
        if result.returncode == 0 or "No such network" in result.stderr:
            return None
        if "active endpoints" not in result.stderr or time.monotonic() > deadline:
            return result.stderr.strip()
        inspected = docker("network", "inspect", network, check=False)
        attached = json.loads(inspected.stdout or "[{}]")[0].get("Containers") or {}
        for endpoint in attached.values():
            docker("network", "disconnect", "-f", network, endpoint.get("Name", ""), check=False)
