"""`drlab route`: show how a tenant routes a dialed number, or check a table of expectations.

Exit status (as every drlab command, `simulator.cli`): 0 a route exists (or every case holds),
1 no route (or a case misses), 2 bad input (the message is `FILE:LINE:COL: message`; a dialed
string that is not a phone number; an unknown user).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

from simulator.cli import EXIT_ERROR, EXIT_FAILED, EXIT_OK
from simulator.errors import InputError
from simulator.tenant.errors import TenantWarning
from simulator.tenant.location import is_address
from simulator.tenant.model import Tenant

#: what a user can dial: digits, `*` and `#`, an optional leading `+`, with the usual separators
DIALABLE = re.compile(r"\+?[0-9*#]{1,32}")
SEPARATORS = re.compile(r"[\s().-]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, metavar="PATH",
                        help="tenant: drlab YAML, a PowerShell runbook (.ps1) or a folder of Get-Cs* JSON exports")
    parser.add_argument("--groups", metavar="GROUPS.csv",
                        help="members of the groups a runbook grants to with -Group (columns Group,UserPrincipalName)")
    parser.add_argument("--user", metavar="UPN", help="the calling user")
    parser.add_argument("--dial", metavar="STRING", help="what the user dials")
    parser.add_argument("--ip", metavar="A.B.C.D[/BITS]",
                        help="the client's address (and the subnet it reports): its network site and emergency location")
    parser.add_argument("--public-ip", metavar="A.B.C.D",
                        help="the address the cloud sees the client from (checked against the trusted IPs)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random gateway order inside a route")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    parser.add_argument("--demoted", action="append", default=[], metavar="FQDN",
                        help="treat this gateway as demoted (no SIP OPTIONS); repeatable")
    parser.add_argument("--exclude-demoted", action="store_true",
                        help="leave demoted gateways out instead of trying them last")
    parser.add_argument("--country-code", default="1", help="country code of the service dial plan (default 1)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--site", metavar="SITE",
                       help="the network site the caller's endpoint is in, for Location-Based Routing "
                            "(default: the site of the subnet --ip is in, else the user's configured network site)")
    where.add_argument("--unknown-site", action="store_true",
                       help="the caller's endpoint is in no network site (home, a coffee shop): Location-Based "
                            "Routing treats it as an unknown location")
    parser.add_argument("--check", metavar="CASES.yaml", help="run a table of routing expectations")
    parser.add_argument("--junit", metavar="OUT.xml", help="with --check: write JUnit XML")


def load_tenant(path: str, groups: str | None = None) -> Tenant:
    """A tenant from .yaml/.yml (drlab format), .ps1 (PowerShell runbook) or a folder (JSON exports)."""
    return load_tenant_with_warnings(path, groups)[0]


def load_tenant_with_warnings(path: str, groups: str | None = None) -> tuple[Tenant, list[TenantWarning]]:
    """The tenant and the loader's warnings (a runbook's unmodelled cmdlets, likely typos; export
    files drlab does not read); `groups` is the CSV of group members a runbook's `Grant-... -Group`
    needs."""
    if Path(path).is_dir():
        from simulator.tenant.export_loader import load_export_with_warnings

        tenant, warnings = load_export_with_warnings(path)
    elif Path(path).suffix.lower() == ".ps1":
        from simulator.tenant.ps_loader import load_powershell_with_warnings

        tenant, warnings = load_powershell_with_warnings(path, groups)
        tenant.validate()
    else:
        from simulator.tenant.yaml_loader import load_yaml

        tenant, warnings = load_yaml(path), []
    if tenant.gateways and not tenant.domains:
        warnings = [*warnings, TenantWarning(
            f"{path}: the tenant lists no registered domains; its users' UPN domains "
            f"({', '.join(tenant.registered_domains()) or 'none'}) stand in for them when pairing gateways "
            "(list them: `domains:` in YAML, New-MgDomain in a runbook, tenant.json in an export)")]
    return tenant, warnings


def run(args: argparse.Namespace) -> int:
    try:
        tenant, warnings = load_tenant_with_warnings(args.tenant, args.groups)
        for warning in warnings:  # on stderr: --json output stays clean
            print(str(warning), file=sys.stderr)
        if args.check:
            return _check(tenant, args)
        if not args.user or args.dial is None:
            print("drlab route: --user and --dial are needed (or --check CASES.yaml)", file=sys.stderr)
            return EXIT_ERROR
        if not DIALABLE.fullmatch(SEPARATORS.sub("", args.dial)):
            print(f"drlab route: --dial {args.dial!r} is not a phone number (digits, * and #, an optional "
                  "leading +; spaces, dots, dashes and parentheses are ignored)", file=sys.stderr)
            return EXIT_ERROR
        if tenant.users.get(args.user.lower()) is None:
            print(f"{args.tenant}: no user {args.user!r} in the tenant", file=sys.stderr)
            return EXIT_ERROR
        for option, value in (("--ip", args.ip), ("--public-ip", args.public_ip)):
            if value is not None and not is_address(value, option == "--ip"):
                print(f"drlab route: {option} {value!r} is not an IP address"
                      + (" (A.B.C.D, or A.B.C.D/BITS with the client's subnet)" if option == "--ip" else ""),
                      file=sys.stderr)
                return EXIT_ERROR
        if args.site is not None and tenant.find("site", args.site) is None:
            print(f"drlab route: --site {args.site!r} is not a network site of the tenant (known: "
                  f"{', '.join(s.name for s in tenant.sites.values()) or 'none'}); --unknown-site for a place "
                  "outside every site", file=sys.stderr)
            return EXIT_ERROR
        from simulator.tenant.lbr import CONFIGURED_SITE
        from simulator.tenant.routing import select_route

        site = None if args.unknown_site else args.site if args.site is not None else CONFIGURED_SITE
        d = select_route(tenant, args.user, args.dial, health={g: False for g in args.demoted},
                         demoted="excluded" if args.exclude_demoted else "last",
                         rng=random.Random(args.seed), country_code=args.country_code,
                         client_ip=args.ip, public_ip=args.public_ip, site=site)
    except InputError as err:
        print(str(err), file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps(d.to_json(), indent=2))
    else:
        _print_decision(d)
    return EXIT_OK if d.has_route else EXIT_FAILED


def _print_decision(d) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console()
    c.print(f"[bold]{d.user}[/] dials [bold]{d.dialed}[/] -> [bold green]{d.normalized}[/]")
    c.print(f"dial plan: {d.dial_plan}   rule: {d.rule or '-'}   usage: {d.usage or '-'}", markup=False)
    if d.location is not None:
        where = d.location.to_json()
        c.print("location: " + "   ".join(f"{k}: {v or '-'}" for k, v in where.items()), markup=False)
    if d.caller_id is not None:
        ident = d.caller_id.to_json()
        c.print(f"caller ID: {ident['number'] or 'anonymous'}   privacy: {ident['privacy']}   "
                f"policy: {ident['policy']}", markup=False)
    if d.emergency is not None:
        e = d.emergency.to_json(d.pidf_lo_gateways)
        c.print(f"emergency call to {e['number']}   policy: {e['policy']}   location: {e['location'] or '-'}   "
                f"PIDF-LO to: {', '.join(e['pidf_lo']) or '-'}", markup=False, style="bold red")
    if d.lbr is not None:
        verdict = "[green]allowed[/]" if d.lbr.allowed else "[bold red]refused[/]"
        c.print(f"Location-Based Routing: {verdict} ({d.lbr.rule})")
        c.print(f"  user site: {d.lbr.user_site or 'unknown'}   gateway site: {d.lbr.gateway_site or '-'}")
    if d.has_route:
        t = Table("#", "route", "priority", "gateway", "failover", "called number")
        n = 0
        for r in d.routes:
            for g in r.gateways or ():
                n += 1
                codes = ",".join(map(str, g.failover_response_codes))
                t.add_row(str(n), r.name, str(r.priority), g.fqdn + (" (demoted)" if g.demoted else ""),
                          f"{codes} / {g.failover_time_seconds}s", g.called_number)
        c.print(t)
    else:
        c.print("[bold red]no route[/]")
    c.print("[bold]why:[/]")
    for reason in d.reasons:
        c.print("  " + reason, markup=False, highlight=False)


def _check(tenant: Tenant, args: argparse.Namespace) -> int:
    from simulator.tenant.check import junit_xml, load_cases, run_cases

    outcomes = run_cases(tenant, load_cases(args.check), args.seed)
    for o in outcomes:
        if o.ok:
            print(f"ok    {o.case.name}")
        else:
            print(f"MISS  {o.case.name}  ({o.case.position})")
            for m in o.misses:
                print(f"        {m}")
            if o.decision is not None:
                for r in o.decision.reasons:
                    print(f"        | {r}")
    failed = sum(not o.ok for o in outcomes)
    print(f"{len(outcomes) - failed} of {len(outcomes)} routing cases hold")
    if args.junit:
        Path(args.junit).write_text(junit_xml(outcomes, Path(args.check).stem), encoding="utf-8")
    return EXIT_OK if failed == 0 else EXIT_FAILED
