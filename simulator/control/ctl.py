"""`drlab ctl [--url URL] [--json] COMMAND`: drive a running lab from the shell (its control API).

    drlab ctl state                              drlab ctl call carol@contoso.com 2065550100
    drlab ctl cut wan-seattle                    drlab ctl call 4255550199 2065550201 --pstn pstn-sea
    drlab ctl blackhole wan-seattle              drlab ctl hangup c1
    drlab ctl restore wan-seattle                drlab ctl restart carol@contoso.com
    drlab ctl impair wan-seattle --latency 80ms --loss 5%
    drlab ctl sync sba1                          drlab ctl pace 10 | pause | resume | step
    drlab ctl events [--since 0]                 drlab ctl addresses | stop

Human-readable output by default, the API's JSON with `--json` (events: one record per line).
Exit status: 0 done; 1 the lab refused (unknown link, user or call, a call already ended...);
2 bad input or the lab cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from simulator.control.client import DEFAULT_URL, ControlClient, ControlRefused, ControlUnreachable
from simulator.report.timeline import TimelinePrinter, format_time

EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    # Also accepted after the command (`drlab ctl state --json`); SUPPRESS keeps the earlier value.
    common.add_argument("--url", default=argparse.SUPPRESS, help=f"the lab's control URL (default {DEFAULT_URL})")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the lab's control URL (default {DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of text")
    sub = parser.add_subparsers(dest="ctl_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    command("state", "nodes, links, clients, gateways, calls and the clock")
    command("addresses", "where every node listens (node, host, transport address:port)")
    for name, what in (("cut", "cut a link (connections reset, connects refused)"),
                       ("blackhole", "blackhole a link (everything silently dropped)"),
                       ("restore", "bring a link back up")):
        command(name, what).add_argument("link", metavar="LINK")
    impair = command("impair", "add latency, jitter or loss to a link")
    impair.add_argument("link", metavar="LINK")
    impair.add_argument("--latency", metavar="DURATION", help="one-way latency, e.g. 80ms")
    impair.add_argument("--jitter", metavar="DURATION", help="extra random delay per packet, up to e.g. 10ms")
    impair.add_argument("--loss", metavar="PERCENT", help="packet loss, e.g. 5%%")
    call = command("call", "place a call from a Teams user (or, with --pstn, from a number on a carrier)")
    call.add_argument("caller", metavar="FROM", help="a Teams user (user@domain), or a number with --pstn")
    call.add_argument("callee", metavar="TO", help="a number or a Teams user")
    call.add_argument("--pstn", metavar="NODE", help="the carrier node the call comes in from")
    command("hangup", "hang up a call placed through the API").add_argument("call_id", metavar="ID")
    command("restart", "restart a user's Teams client").add_argument("user", metavar="USER")
    command("sync", "make an SBA sync with the cloud now").add_argument("sba", metavar="SBA")
    command("pace", "run the sim clock at N virtual seconds per wall second").add_argument("pace", metavar="N", type=float)
    command("pause", "stop the sim clock (no timer fires; the API still answers)")
    command("resume", "let the sim clock run again")
    command("step", "paused: move the sim clock to its next timer")
    events = command("events", "follow the event stream (until the lab stops or Ctrl-C)")
    events.add_argument("--since", type=int, metavar="N", help="first replay the log from record N (0: all)")
    events.add_argument("--verbose", "-v", action="store_true", help="also print every SIP message")
    command("stop", "stop the lab (calls end, events.jsonl is written)")


def run(args: argparse.Namespace) -> int:
    try:
        client = ControlClient(args.url)
        return _COMMANDS[args.ctl_command](client, args)
    except BadInput as err:
        print(f"drlab ctl: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ControlRefused as err:
        print(f"drlab ctl {args.ctl_command}: refused ({err.status}): {err}", file=sys.stderr)
        return EXIT_REFUSED
    except ControlUnreachable as err:
        print(f"drlab ctl: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `drlab ctl events | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit flush
        return EXIT_OK


def _show(args: argparse.Namespace, answer: Any, text: str | Callable[[Any], str]) -> int:
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print(text(answer) if callable(text) else text)
    return EXIT_OK


def _state(client: ControlClient, args: argparse.Namespace) -> int:
    return _show(args, client.state(), format_state)


def _addresses(client: ControlClient, args: argparse.Namespace) -> int:
    return _show(args, client.addresses(), format_addresses)


def _link_state(state: str) -> Callable[[ControlClient, argparse.Namespace], int]:
    def command(client: ControlClient, args: argparse.Namespace) -> int:
        answer = client.link(args.link, state=state)
        return _show(args, answer, f"link {answer['name']} {answer['state']}")
    return command


def _impair(client: ControlClient, args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in ("latency", "jitter", "loss") if getattr(args, k) is not None}
    if not given:
        raise BadInput("impair needs --latency, --jitter or --loss")
    answer = client.link(args.link, **given)
    return _show(args, answer, lambda a: f"link {a['name']} {a['state']}: latency {a['latency'] * 1000:g} ms, "
                                         f"jitter {a['jitter'] * 1000:g} ms, loss {a['loss'] * 100:g}%")


def _call(client: ControlClient, args: argparse.Namespace) -> int:
    if args.pstn is None and "@" not in args.caller:
        raise BadInput(f"a call from the number {args.caller} needs --pstn NODE (the carrier it comes in from)")
    return _show(args, client.call(args.caller, args.callee, args.pstn), lambda c: f"call {format_call(c)}")


def _hangup(client: ControlClient, args: argparse.Namespace) -> int:
    return _show(args, client.hangup(args.call_id), f"hanging up call {args.call_id}")


def _restart(client: ControlClient, args: argparse.Namespace) -> int:
    return _show(args, client.restart(args.user), f"restarting the client of {args.user}")


def _sync(client: ControlClient, args: argparse.Namespace) -> int:
    return _show(args, client.sync(args.sba), f"{args.sba} is syncing with the cloud (see the events)")


def _time(**body: Any) -> Callable[[ControlClient, argparse.Namespace], int]:
    def command(client: ControlClient, args: argparse.Namespace) -> int:
        values = {**body, **({"pace": args.pace} if "pace" in vars(args) else {})}
        return _show(args, client.time(**values), format_time_info)
    return command


def _events(client: ControlClient, args: argparse.Namespace) -> int:
    printer = TimelinePrinter(Console(highlight=False, soft_wrap=True), args.verbose)
    for kind, payload in client.events(since=args.since):
        if kind == "dropped":
            print(f"drlab ctl events: {payload} events dropped (this reader was too slow)", file=sys.stderr)
        elif args.json:
            print(json.dumps(payload, separators=(",", ":")), flush=True)
        else:
            printer(payload)
    return EXIT_OK


def _stop(client: ControlClient, args: argparse.Namespace) -> int:
    return _show(args, client.stop(), "stopping the lab")


_COMMANDS: dict[str, Callable[[ControlClient, argparse.Namespace], int]] = {
    "state": _state, "addresses": _addresses,
    "cut": _link_state("down"), "blackhole": _link_state("blackhole"), "restore": _link_state("up"),
    "impair": _impair, "call": _call, "hangup": _hangup, "restart": _restart, "sync": _sync,
    "pace": _time(), "pause": _time(paused=True), "resume": _time(paused=False), "step": _time(step=True),
    "events": _events, "stop": _stop,
}


# --- text ---------------------------------------------------------------------------------------------
def format_time_info(time: dict[str, Any]) -> str:
    pace = "as fast as it can" if time["pace"] is None else f"pace {time['pace']:g}×"
    return f"time {format_time(time['virtual_s'])} · {pace} · {'paused' if time['paused'] else 'running'}"


def format_call(call: dict[str, Any]) -> str:
    path = " → ".join(call["path"])
    status = f" {call['status']}" if call.get("status") else ""
    return (f"{call['id']}: {call['from']} → {call['to']} {call['state']}{status}"
            + (f" via {path}" if path else "") + (f" ({call['reason']})" if call.get("reason") else ""))


def format_state(s: dict[str, Any]) -> str:
    lines = [format_time_info(s["time"]),
             "links:    " + "  ".join(f"{link['name']} {link['state']}" for link in s["links"])]
    lines += [f"client:   {c['user']} {c['state']}" + (f" at {c['registrar']}" if c["registrar"] else "")
              for c in s["clients"]]
    lines += [f"gateway:  {g['fqdn']} {g['health']}" for g in s["gateways"]]
    lines += [f"call:     {format_call(c)}" for c in s["calls"]]
    lines += [f"node:     {n['name']} ({n['role']}) {n['host']} {n['address']} {n['state']}" for n in s["nodes"]]
    return "\n".join(lines)


def format_addresses(entries: list[dict[str, Any]]) -> str:
    node_width = max((len(e["node"]) for e in entries), default=4)
    host_width = max((len(e["host"]) for e in entries), default=4)
    return "\n".join(
        f"{e['node']:<{node_width}}  {e['host']:<{host_width}}  {e['address']:<15}  "
        + (", ".join(f"{x['transport']} {x['address']}:{x['port']}" for x in e["listening"]) or "-")
        for e in entries)
