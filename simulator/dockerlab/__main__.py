"""``python -m simulator.dockerlab compose|up|down``: the Docker lab from the shell (``make lab``,
``make lab-down``). docker/README.md.

- ``compose LAB --tenant TENANT``: write runs/<lab>/compose.yaml and router.nft, nothing else;
- ``up LAB --tenant TENANT [--time-scale K] [--control HOST:PORT] [--capture]``: starts the control plane on the host in
  the background (``drlab lab up LAB --tenant TENANT --docker``, its output in
  runs/<lab>/plane.log, its pid in runs/<lab>/plane.pid), which starts the containers;
  returns once every node is ready (the plane says so through a pipe: no polling), printing the
  control URL, each site's bridge and every container's addresses;
- ``down LAB``: stops that control plane (SIGTERM: it stops the nodes, writes events.jsonl and
  removes its containers), then removes whatever container or network labelled
  ``drlab.lab=<lab>`` is left, and nothing else.

Exit status: 0 done; 2 a bad lab file, no usable Docker or image, or a lab that did not start.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from simulator.dockerlab import compose, engine
from simulator.dockerlab.engine import DockerLabFailure
from simulator.errors import InputError
from simulator.lab.spec import load_lab_spec

HOST_CONTROL = f"127.0.0.1:{compose.CONTROL_PORT}"
#: wall seconds the control plane has to stop its nodes and containers after SIGTERM
PLANE_STOP_S = 90.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.dockerlab", description="the Docker lab")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("compose", "up"):
        command = commands.add_parser(name)
        command.add_argument("lab")
        command.add_argument("--tenant", required=True)
        command.add_argument("--out", help="where compose.yaml goes (default runs/<lab>)")
        command.add_argument("--certs", help="the lab's certificates folder (default certs/<lab>)")
    up_parser = commands.choices["up"]
    up_parser.add_argument("--time-scale", default="1", help="run every role timer K times faster (default 1)")
    up_parser.add_argument("--control", default=HOST_CONTROL, metavar="HOST:PORT",
                           help=f"the control API on the host's loopback (default {HOST_CONTROL}); the nodes "
                                "dial the same port on their site's gateway")
    up_parser.add_argument("--capture", action="store_true",
                           help="capture on every bridge (tshark) with each node's TLS key log (SSLKEYLOGFILE)")
    down_parser = commands.add_parser("down")
    down_parser.add_argument("lab")
    down_parser.add_argument("--out", help="where `up` wrote the control plane's pid (default runs/<lab>)")
    args = parser.parse_args(argv)
    try:
        spec = load_lab_spec(args.lab)
        out = Path(args.out or Path("runs") / spec.name)
        if args.command == "down":
            down(spec.name, out)
            return 0
        if not Path(args.tenant).is_file():
            raise DockerLabFailure(f"no tenant file {args.tenant}")
        plan = compose.plan(spec)
        if args.command == "compose":
            certs = Path(args.certs or Path("certs") / spec.name)
            files = compose.LabFiles(Path(args.lab), Path(args.tenant), certs, out / "router.nft")
            print(f"wrote {compose.write(plan, files, out)}")
        else:
            up(plan, args, out)
    except (InputError, DockerLabFailure) as error:
        print(f"drlab docker lab: {error}", file=sys.stderr)
        return 2
    return 0


def up(plan: compose.DockerPlan, args: argparse.Namespace, out: Path) -> None:
    engine.docker("info")
    if engine.docker("image", "inspect", compose.IMAGE, check=False).returncode != 0:
        raise DockerLabFailure(f"no image {compose.IMAGE}: build it with make docker-image (docker/build.py)")
    if _plane_pid(out) is not None:
        raise DockerLabFailure(f"lab {plan.lab} is up already (control plane pid {_plane_pid(out)}); "
                               f"make lab-down LAB={args.lab} first")
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "simulator.cli", "lab", "up", args.lab, "--tenant", args.tenant, "--docker",
               "--time-scale", args.time_scale, "--control", args.control, "--out", str(out)]
    if args.certs:
        command += ["--certs", args.certs]
    if args.capture:
        command.append("--capture")
    read_end, write_end = os.pipe()
    log = out / "plane.log"
    with open(log, "w", encoding="utf-8") as log_file:
        plane = subprocess.Popen([*command, "--ready-fd", str(write_end)], pass_fds=(write_end,),
                                 stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                 start_new_session=True)  # outlives `make lab`; `make lab-down` stops it
    os.close(write_end)
    (out / "plane.pid").write_text(f"{plane.pid}\n", encoding="utf-8")
    with os.fdopen(read_end, encoding="utf-8") as pipe:
        ready = pipe.read()  # the plane writes its summary once every node is ready; EOF if it died first
    if not ready:
        plane.wait()
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-15:])
        raise DockerLabFailure(f"the lab did not start (control plane exit {plane.returncode}; {log}):\n{tail}")
    print(ready, end="")
    for site in plan.sites.values():
        print(f"site {site.site:<12} {site.subnet!s:<18} bridge {site.bridge:<16} router {site.router}")
    for name, networks in engine.containers(plan.lab):
        print(f"{name:<28} " + "  ".join(f"{network} {address}" for network, address in networks))
    print(f"control plane pid {plane.pid}, log {log}; stop with make lab-down LAB={args.lab}")


def down(lab: str, out: Path) -> None:
    """Stop the lab's control plane (if it runs), then remove what is left of the lab in Docker."""
    pid = _plane_pid(out)
    if pid is not None:
        _stop(pid)
        print(f"lab {lab}: control plane {pid} stopped (its log: {out / 'plane.log'})")
    (out / "plane.pid").unlink(missing_ok=True)
    containers, networks = engine.down(lab)
    print(f"lab {lab}: removed {containers} containers and {networks} networks")


def _plane_pid(out: Path) -> int | None:
    """The pid in runs/<lab>/plane.pid if that process still runs drlab's control plane."""
    try:
        pid = int((out / "plane.pid").read_text(encoding="utf-8").strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"--docker" in cmdline and b"lab" in cmdline else None


def _stop(pid: int) -> None:
    """SIGTERM, then wait for the process to end on a pidfd (an event, not a poll); SIGKILL late."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, signal.SIGTERM)
        if not select.select([handle], [], [], PLANE_STOP_S)[0]:
            os.kill(pid, signal.SIGKILL)
            select.select([handle], [], [], PLANE_STOP_S)
    except ProcessLookupError:
        pass
    finally:
        os.close(handle)


if __name__ == "__main__":
    sys.exit(main())
