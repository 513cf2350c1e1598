"""`drlab lab up LAB --tenant TENANT [--network sim|real] [--pace N] [--time-scale K] [--processes]
[--docker [--capture]] [--control HOST:PORT] [--seed N]` and `drlab lab down [--url URL]`; `drlab lab generate --branches N
--clients M --out DIR` writes a lab of N survivable branches of M clients, its tenant and an outage
scenario (simulator.lab.generate).

`up` builds the lab, starts it and keeps it running, controlled through the HTTP API it prints
(default http://127.0.0.1:8765; docs/live-lab.md), until Ctrl-C, SIGTERM, `drlab lab down`,
`drlab ctl stop` or `POST /api/stop`. Then it ends the calls, stops the lab and writes
events.jsonl into `--out DIR` (default `runs/lab-<lab>-<UTC timestamp>/`).

On sim the lab runs at `--pace` virtual seconds per wall second (default 1, so a person can
follow); the pace can be changed, paused and resumed through the API. The lab is always paced
while it is up: an unpaced virtual clock would race through every timer as soon as the lab is idle.
On real, `--time-scale K` runs every role timer K times faster, as `drlab run` does
(simulator.lab.timescale); event times and the API's clock read in the lab's own units, and
`--processes` runs every node in a process of its own (simulator/control/processes.py), and
`--docker` every node in a container of its own, links cut by a router container
(simulator/dockerlab/plane.py, docker/README.md).

Exit status: 0 stopped cleanly; 2 bad input (lab or tenant file, option) or the control port is
taken (or a node could not start).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from simulator.control.api import ControlPortError
from simulator.control.client import DEFAULT_URL, ControlClient, ControlUnreachable
from simulator.control.ctl import format_addresses
from simulator.control.live import LiveLab, Ready
from simulator.control.processes import ProcessLab
from simulator.errors import InputError
from simulator.lab import Lab
from simulator.lab.generate import generate_lab
from simulator.net.clock import run_sim
from simulator.report import write_events, write_pcap
from simulator.report.timeline import TimelinePrinter

EXIT_OK, EXIT_BAD_INPUT = 0, 2
DEFAULT_CONTROL = "127.0.0.1:8765"
DEFAULT_PACE = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = sub.add_parser("up", help="start a lab and keep it running under its control API",
                        description="Start a lab and keep it running under its control API (docs/live-lab.md).")
    up.add_argument("lab", metavar="LAB", help="lab file (YAML), e.g. examples/labs/contoso.yaml")
    up.add_argument("--tenant", required=True, metavar="TENANT", help="tenant file (.yaml or .ps1)")
    up.add_argument("--network", choices=("sim", "real"), default="sim",
                    help="sim: in-memory, virtual clock at --pace (default); real: loopback sockets, wall clock")
    up.add_argument("--pace", type=float, default=None, metavar="N",
                    help=f"sim only: N virtual seconds per wall second (default {DEFAULT_PACE:g})")
    up.add_argument("--time-scale", type=float, default=1.0, metavar="K",
                    help="real only: run every role timer K times faster; times read in the lab's own units")
    up.add_argument("--processes", action="store_true",
                    help="real only: every node in a process of its own (drlab node), the control plane in this one")
    up.add_argument("--docker", action="store_true",
                    help="every node in a container of its own on Docker networks, links cut by a router "
                         "container (docker/README.md); implies --network real --processes")
    up.add_argument("--capture", action="store_true",
                    help="--docker: capture on the lab's bridges (tshark) with every node's TLS key log; "
                         "capture.pcap and keys.log at the stop are the real ones")
    up.add_argument("--ready-fd", type=int, metavar="N", help=argparse.SUPPRESS)  # for launchers: see _show
    up.add_argument("--control", default=DEFAULT_CONTROL, metavar="HOST:PORT",
                    help=f"where the control API listens (default {DEFAULT_CONTROL}; loopback unless told)")
    up.add_argument("--seed", type=int, default=1, help="seed for every random choice (default 1)")
    up.add_argument("--out", metavar="DIR", help="where events.jsonl goes at the stop (default runs/lab-<lab>-<time>/)")
    up.add_argument("--certs", metavar="DIR", help="lab certificates folder (default certs/<lab>)")
    up.add_argument("--quiet", "-q", action="store_true", help="do not print the timeline of events")
    up.add_argument("--verbose", "-v", action="store_true", help="also print every SIP message in the timeline")
    down = sub.add_parser("down", help="stop a running lab (POST /api/stop)", description="Stop a running lab.")
    down.add_argument("--url", default=DEFAULT_URL, help=f"the lab's control URL (default {DEFAULT_URL})")
    generate = sub.add_parser("generate", help="write a lab of N branches of M clients, its tenant and an outage scenario",
                              description="Write lab.yaml, tenant.yaml and outage.yaml (every WAN cut at once and "
                                          "restored) for N survivable branches of M Teams clients (docs/lab-yaml.md).")
    generate.add_argument("--branches", type=int, required=True, metavar="N", help="branch offices (1-250)")
    generate.add_argument("--clients", type=int, required=True, metavar="M", help="Teams clients per branch (1-9999)")
    generate.add_argument("--out", required=True, metavar="DIR", help="folder for the three files (made if missing)")


def parse_control(text: str) -> tuple[str, int]:
    """"HOST:PORT" or "[IPv6]:PORT" -> (host, port); ValueError saying what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"--control must be HOST:PORT, like {DEFAULT_CONTROL}, not {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"--control {text}: the port must be a number 1..65535")
    if int(port_text) == 0:
        raise ValueError(f"--control {text}: port 0 would listen on a port nobody knows; name one, like 8765")
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run(args: argparse.Namespace) -> int:
    actions = {"up": _up, "down": _down, "generate": _generate}
    return actions[args.action](args)


def _generate(args: argparse.Namespace) -> int:
    try:
        files = generate_lab(args.branches, args.clients, args.out)
    except (ValueError, OSError) as exc:
        print(f"drlab lab generate: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {files.lab}, {files.tenant} and {files.scenario}; run: drlab run {files.scenario}")
    return EXIT_OK


def _down(args: argparse.Namespace) -> int:
    try:
        ControlClient(args.url).stop()
    except ControlUnreachable as err:
        print(f"drlab lab down: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"stopping the lab at {args.url}")
    return EXIT_OK


def _up(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        host, port = parse_control(args.control)
    except ValueError as exc:
        err.print(f"drlab lab up: {escape(str(exc))}")
        return EXIT_BAD_INPUT
    if args.docker:
        args.network, args.processes = "real", True
    if args.network == "real" and args.pace is not None:
        err.print("drlab lab up: --pace is for the sim network; the real network runs on the wall clock")
        return EXIT_BAD_INPUT
    if args.time_scale != 1 and (not math.isfinite(args.time_scale) or args.time_scale <= 0 or args.network != "real"):
        err.print("drlab lab up: --time-scale needs a positive number and the real network (on sim, use --pace)")
        return EXIT_BAD_INPUT
    if args.capture and not args.docker:
        err.print("drlab lab up: --capture is for the Docker lab (--docker); other labs write capture.pcap from their records")
        return EXIT_BAD_INPUT
    if args.processes and args.network != "real":
        err.print("drlab lab up: --processes needs the real network (nodes talk over sockets)")
        return EXIT_BAD_INPUT
    pace = None if args.network == "real" else (DEFAULT_PACE if args.pace is None else args.pace)
    if pace is not None and not pace > 0:
        err.print("drlab lab up: --pace must be a positive number of virtual seconds per wall second")
        return EXIT_BAD_INPUT
    try:
        lab = Lab.load(args.lab, tenant=args.tenant, network=args.network, seed=args.seed, certs_dir=args.certs,
                       time_scale=args.time_scale, routed=args.docker)
    except InputError as exc:
        err.print(escape(str(exc)))
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path("runs") / f"lab-{lab.spec.name}-{_stamp()}"
    try:
        out.mkdir(parents=True, exist_ok=True)  # now: a folder we cannot write is known before the lab runs
    except OSError as exc:
        err.print(f"drlab lab up: cannot create the output folder {escape(str(out))}: {escape(exc.strerror or str(exc))}")
        return EXIT_BAD_INPUT
    if not _is_loopback(host):
        err.print(f"[yellow]note:[/yellow] the control API on {escape(host)} takes commands from anyone who "
                  "can reach it (no authentication)")
    if not args.quiet:
        lab.events.subscribe(TimelinePrinter(console, args.verbose))
    files = {"lab_file": str(Path(args.lab).resolve()), "tenant_file": str(Path(args.tenant).resolve()),
             "certs_dir": str(Path(lab.pki.ca_path).resolve().parent)}
    if args.docker:
        from simulator.dockerlab.plane import DockerLab

        lab = DockerLab(lab, **files, out=out, capture=args.capture)  # compose.yaml goes with events.jsonl
    elif args.processes:
        lab = ProcessLab(lab, **files)
    live = LiveLab(lab, host=host, port=port, pace=pace)
    main = live.run(lambda ready: _show(console, lab, args.network, pace, args.time_scale, ready, args.ready_fd),
                    handle_signals=True)
    try:
        if args.network == "sim":
            run_sim(main)
        else:
            asyncio.run(main)
    except ControlPortError as exc:
        err.print(f"drlab lab up: the control API {escape(str(exc))}; choose another with --control HOST:PORT")
        return EXIT_BAD_INPUT
    except InputError as exc:  # a node could not start (a certificate, a port)
        err.print(escape(str(exc)))
        _write_outputs(console, live, out)
        return EXIT_BAD_INPUT
    _write_outputs(console, live, out)
    return EXIT_OK


def _show(console: Console, lab: Any, network: str, pace: float | None, time_scale: float, ready: Ready,
          ready_fd: int | None = None) -> None:
    """Print the lab's URL and addresses; with `ready_fd` (a launcher's pipe, see
    simulator/dockerlab/__main__.py) the same text also goes there and the pipe is closed."""
    if ready_fd is not None:
        with open(ready_fd, "w", encoding="utf-8") as pipe:
            _show(Console(file=pipe, highlight=False, soft_wrap=True, no_color=True), lab, network, pace,
                  time_scale, ready)
    name = lab.spec.name
    speed = f"pace {pace:g}×" if pace is not None else "wall clock" + (f", time scale {time_scale:g}×" if time_scale != 1 else "")
    console.print(f"[bold]lab {escape(name)} is up[/bold] ({network}, {speed}) · control [bold]{ready.url}[/bold]")
    console.print(escape(format_addresses(ready.addresses)))
    if ready.unsettled:
        console.print(f"[yellow]not settled:[/yellow] {escape('; '.join(ready.unsettled))}")
    console.print(f"stop with Ctrl-C, [bold]drlab lab down --url {ready.url}[/bold] or POST {ready.url}/api/stop")


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")


def _write_outputs(console: Console, live: LiveLab, out: Path) -> None:
    """events.jsonl (what the event stream sent) and capture.pcap: its SIP messages, or the Docker
    lab's real capture (with keys.log, the nodes' TLS secrets) when it made one."""
    write_events(live.records, out / "events.jsonl")
    captured = getattr(live.lab, "captured", dict)()  # output name -> file (simulator/dockerlab/plane.py)
    for name, path in captured.items():
        if path.resolve() != (out / name).resolve():
            shutil.copyfile(path, out / name)
    if "capture.pcap" not in captured:
        with open(out / "capture.pcap", "wb") as capture:
            write_pcap(live.records, capture)
    console.print(f"lab {escape(live.lab.spec.name)} stopped; events.jsonl and capture.pcap in {escape(str(out))}")
