"""``python -m simulator.dockerlab compose|up|down``: the Docker lab from the shell (``make lab``,
``make lab-down``). docker/README.md.

- ``compose LAB --tenant TENANT``: write runs/<lab>/compose.yaml and router.nft, nothing else;
- ``up LAB --tenant TENANT``: the same, then ``docker-compose up -d``; prints the control URL,
  each site's bridge and every container's addresses;
- ``down LAB``: removes every container and network labelled ``drlab.lab=<lab>``, nothing else.

Exit status: 0 done; 2 a bad lab file, no usable Docker, or an image that cannot run the lab.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from simulator.dockerlab import compose
from simulator.errors import InputError
from simulator.lab.spec import load_lab_spec

HOST_CONTROL_URL = f"http://127.0.0.1:{compose.CONTROL_PORT}"
NETWORK_RELEASE_S = 15.0
# What the image must offer: one node per process, and a control plane that waits for them.
IMAGE_CHECKS = (
    ("drlab node --help", "`drlab node` (one lab node per process, joined to a control plane)"),
    ("drlab lab up --help | grep -q -- --nodes",
     "`drlab lab up --nodes remote` (the control plane alone, for nodes that run elsewhere)"),
)


class DockerLabFailure(Exception):
    """Docker or the image cannot run the lab; the message says what is missing."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.dockerlab", description="the Docker lab")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("compose", "up"):
        command = commands.add_parser(name)
        command.add_argument("lab")
        command.add_argument("--tenant", required=True)
        command.add_argument("--out", help="where compose.yaml goes (default runs/<lab>)")
        command.add_argument("--certs", help="the lab's certificates folder (default certs)", default="certs")
    commands.add_parser("down").add_argument("lab")
    args = parser.parse_args(argv)
    try:
        spec = load_lab_spec(args.lab)
        if args.command == "down":
            down(spec.name)
            return 0
        if not Path(args.tenant).is_file():
            raise DockerLabFailure(f"no tenant file {args.tenant}")
        plan = compose.plan(spec)
        out = Path(args.out or Path("runs") / spec.name)
        files = compose.LabFiles(Path(args.lab), Path(args.tenant), Path(args.certs), out / "router.nft")
        Path(args.certs).mkdir(parents=True, exist_ok=True)
        path = compose.write(plan, files, out)
        print(f"wrote {path}")
        if args.command == "up":
            up(plan, path, args.lab)
    except (InputError, DockerLabFailure) as error:
        print(f"drlab docker lab: {error}", file=sys.stderr)
        return 2
    return 0


def up(plan: compose.DockerPlan, path: Path, lab_file: str) -> None:
    _docker("info")
    missing = missing_features(compose.IMAGE)
    if missing:
        raise DockerLabFailure(f"cannot start the lab: the image {compose.IMAGE} has no " + "; no ".join(missing)
                               + f". {path} is written and can be read; nothing was started.")
    _run(["docker-compose", "-p", plan.project, "-f", str(path), "up", "-d"])
    print(f"lab {plan.lab} is up in Docker · control {HOST_CONTROL_URL}")
    for site in plan.sites.values():
        print(f"site {site.site:<12} {site.subnet!s:<18} bridge {site.bridge:<16} router {site.router}")
    for name, networks in containers(plan.lab):
        where = "  ".join(f"{network} {address}" for network, address in networks) or "in the router's namespace"
        print(f"{name:<28} {where}")
    print(f"stop with make lab-down LAB={lab_file} (python -m simulator.dockerlab down {lab_file})")


def missing_features(image: str) -> list[str]:
    """What of IMAGE_CHECKS the image lacks (each check runs in a throwaway container, no network)."""
    return [what for check, what in IMAGE_CHECKS
            if _docker("run", "--rm", "--network", "none", image, "sh", "-c", check, check=False).returncode]


def containers(lab: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every container of the lab with its (network, address) pairs."""
    ids = _docker("ps", "-aq", "--filter", f"label={compose.LABEL}={lab}").stdout.split()
    if not ids:
        return []
    found = []
    for container in json.loads(_docker("inspect", *ids).stdout):
        networks = container["NetworkSettings"]["Networks"]
        found.append((container["Name"].lstrip("/"),
                      sorted((net, info["IPAddress"]) for net, info in networks.items())))
    return sorted(found)


def down(lab: str) -> None:
    """Remove the lab's containers, then its networks: what carries drlab.lab=<lab>, nothing else."""
    label = f"label={compose.LABEL}={lab}"
    ids = _docker("ps", "-aq", "--filter", label).stdout.split()
    for container in ids:  # one at a time: concurrent removals can leak a network's endpoint count
        _docker("rm", "-f", container)
    networks = _docker("network", "ls", "-q", "--filter", label).stdout.split()
    stuck = [error for error in map(_remove_network, networks) if error]
    print(f"lab {lab}: removed {len(ids)} containers and {len(networks) - len(stuck)} networks")
    if stuck:
        raise DockerLabFailure("networks left behind (Docker still counts endpoints on them; "
                               "restarting dockerd clears that): " + "; ".join(stuck))


def _remove_network(network: str) -> str | None:
    """Remove a network; None when done, else why not. Docker releases a removed container's
    endpoints a moment after `rm -f` returns; until then the network refuses to go ("has
    active endpoints"), so that answer is retried for a while."""
    deadline = time.monotonic() + NETWORK_RELEASE_S
    while True:
        result = _docker("network", "rm", network, check=False)
        if result.returncode == 0 or "No such network" in result.stderr:
            return None
        if "active endpoints" not in result.stderr or time.monotonic() > deadline:
            return result.stderr.strip()


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["docker", *args], check=check, capture=True)


def _run(command: list[str], *, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=capture, text=True)
    except FileNotFoundError:
        raise DockerLabFailure(f"{command[0]} is not installed") from None
    if check and result.returncode != 0:
        detail = (result.stderr or "").strip() if capture else ""
        raise DockerLabFailure(f"{' '.join(command[:3])} failed (exit {result.returncode}) {detail}".strip())
    return result


if __name__ == "__main__":
    sys.exit(main())
