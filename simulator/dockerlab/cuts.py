"""Link cuts in the Docker lab: nftables rules in the router container's network namespace.

Every packet between two sites is forwarded by the router, so a link's state is a set of rules
on the subnet pairs whose path crosses it (compose.DockerPlan.link_pairs), in the link's own
chain of ``table inet drlab`` (compose.router_ruleset). Only that chain is ever flushed; the
rest of the ruleset (Docker's own rules live there too) is never touched.

- ``down``: TCP gets a reset (connects are refused, established connections reset at their
  next segment), everything else an ICMP port-unreachable;
- ``blackhole``: every packet dropped silently (connects time out);
- ``up``: the chain emptied;
- ``loss(percent)``: ``numgen random mod 100 < N`` drops that share of packets.

The kernel here has no netem, so latency and jitter are not supported on the Docker lab.

Each action is one ``nft -f -`` transaction, run ``via``:
- ``"local"``: ``nft`` itself, by a process already in the router's namespace (the control
  plane's container shares it);
- ``"nsenter"``: ``nsenter -t <router pid> -n nft`` from the host (root; about 0.05 s);
- ``"exec"``: ``docker exec -i <router> nft`` from the host (0.1-0.2 s);
- ``None`` (the default): nsenter where allowed (root, nsenter and nft installed), else exec.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from ipaddress import IPv4Network

from simulator.net.topology import BLACKHOLE, DOWN, UP

Pairs = Sequence[tuple[IPv4Network, IPv4Network]]


class CutError(RuntimeError):
    """The router refused a rule change (its message is nft's or docker's)."""


def rules(link: str, pairs: Pairs, *, state: str = UP, loss_percent: int = 0) -> str:
    """The nft transaction that puts `link` in `state` with `loss_percent` random loss."""
    if state not in (UP, DOWN, BLACKHOLE):
        raise ValueError(f"link {link}: state must be up, down or blackhole, not {state!r}")
    if not 0 <= loss_percent <= 100:
        raise ValueError(f"link {link}: loss must be 0..100 percent, not {loss_percent}")
    chain = f"inet drlab link-{link}"
    lines = [f"flush chain {chain}"]
    for source, destination in pairs:
        match = f"ip saddr {source} ip daddr {destination}"
        if state == DOWN:
            lines.append(f"add rule {chain} {match} meta l4proto tcp reject with tcp reset")
            lines.append(f"add rule {chain} {match} reject with icmpx type port-unreachable")
        elif state == BLACKHOLE:
            lines.append(f"add rule {chain} {match} drop")
        elif loss_percent == 100:  # numgen's values are 0..99: "< 100" is out of its range
            lines.append(f"add rule {chain} {match} drop")
        elif loss_percent:
            lines.append(f"add rule {chain} {match} numgen random mod 100 < {loss_percent} drop")
    return "\n".join(lines) + "\n"


def down(router: str, link: str, pairs: Pairs, *, via: str | None = None) -> None:
    apply(router, rules(link, pairs, state=DOWN), via=via)


def blackhole(router: str, link: str, pairs: Pairs, *, via: str | None = None) -> None:
    apply(router, rules(link, pairs, state=BLACKHOLE), via=via)


def up(router: str, link: str, pairs: Pairs, *, via: str | None = None) -> None:
    apply(router, rules(link, pairs, state=UP), via=via)


def loss(router: str, link: str, pairs: Pairs, percent: int, *, via: str | None = None) -> None:
    apply(router, rules(link, pairs, loss_percent=percent), via=via)


def apply(router: str, transaction: str, *, via: str | None = None) -> str:
    """Run an nft transaction in the network namespace of the container named `router`; returns
    the way it went in (local, nsenter or exec)."""
    if via is None:
        via = "nsenter" if os.geteuid() == 0 and shutil.which("nsenter") and shutil.which("nft") else "exec"
    if via == "local":
        command = ["nft", "-f", "-"]
    elif via == "nsenter":
        command = ["nsenter", "-t", str(router_pid(router)), "-n", "nft", "-f", "-"]
    elif via == "exec":
        command = ["docker", "exec", "-i", router, "nft", "-f", "-"]  # -i: nft reads stdin
    else:
        raise ValueError(f"via must be local, nsenter or exec, not {via!r}")
    result = subprocess.run(command, input=transaction, capture_output=True, text=True)
    if result.returncode != 0:
        raise CutError(f"{' '.join(command)}: {result.stderr.strip() or f'exit {result.returncode}'}")
    return via


def router_pid(router: str) -> int:
    result = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", router], capture_output=True, text=True)
    pid = int(result.stdout.strip() or 0) if result.returncode == 0 else 0
    if pid <= 0:
        raise CutError(f"router container {router} is not running ({result.stderr.strip() or 'no pid'})")
    return pid
