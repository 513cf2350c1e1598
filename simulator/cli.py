"""`drlab` command line: one subcommand per job, each implemented in its own layer.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int` (the exit
status, one of `EXIT_*` below, the same meaning in every command). Imports are lazy so
`drlab route` never loads the network stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version

#: exit statuses, as grep's: every command means the same by each
EXIT_OK = 0         # everything held, a route was found
EXIT_FAILED = 1     # a check or step failed, no route
EXIT_ERROR = 2      # bad input (FILE:LINE:COL: what was expected) or an error; also an interrupted run
EXIT_CODES_HELP = """exit status (every command):
  0  everything held / a route was found
  1  a check or step failed / no route
  2  bad input (FILE:LINE:COL: what was expected), an error, or an interrupted run"""

SUBCOMMANDS = {
    "certs": ("simulator.pki.cli", "write the lab PKI: CA, leaf certificates per FQDN, broken variants"),
    "ctl": ("simulator.control.ctl", "drive a running lab: state, cut, restore, call, events, stop"),
    "lab": ("simulator.control.lab_cli", "bring a lab up and keep it running under its control API"),
    "node": ("simulator.control.node", "run one node of a live lab in this process (drlab lab up --processes)"),
    "route": ("simulator.tenant.cli", "show or check how a tenant routes a dialed number"),
    "run": ("simulator.scenario.cli", "run scenario files on the sim (or real) network"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drlab", description="Teams Direct Routing / SBA failover lab",
                                     epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"drlab {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        if only in (None, name):
            try:
                importlib.import_module(module_name).add_arguments(command)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                command.set_defaults(unavailable=module_name)
        command.epilog = f"{command.epilog}\n\n{EXIT_CODES_HELP}" if command.epilog else EXIT_CODES_HELP
    return parser


def _version() -> str:
    try:
        return version("drlab")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(first if first in SUBCOMMANDS else None).parse_args(argv)
    if getattr(args, "unavailable", None):
        print(f"drlab {args.command}: not built yet ({args.unavailable} is missing)", file=sys.stderr)
        return EXIT_ERROR
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except Exception:  # a defect, not bad input: show where, with the error's exit status
        traceback.print_exc()
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
