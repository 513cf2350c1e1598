"""`drlab` command line: one subcommand per job, each implemented in its own layer.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int` (the exit
status). Imports are lazy so `drlab route` never loads the network stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "certs": ("simulator.pki.cli", "write the lab PKI: CA, leaf certificates per FQDN, broken variants"),
    "ctl": ("simulator.control.ctl", "drive a running lab: state, cut, restore, call, events, stop"),
    "lab": ("simulator.control.lab_cli", "bring a lab up and keep it running under its control API"),
    "route": ("simulator.tenant.cli", "show or check how a tenant routes a dialed number"),
    "run": ("simulator.scenario.cli", "run scenario files on the sim (or real) network"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drlab", description="Teams Direct Routing / SBA failover lab")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if only in (None, name):
            try:
                importlib.import_module(module_name).add_arguments(command)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                command.set_defaults(unavailable=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(first if first in SUBCOMMANDS else None).parse_args(argv)
    if getattr(args, "unavailable", None):
        print(f"drlab {args.command}: not built yet ({args.unavailable} is missing)", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
