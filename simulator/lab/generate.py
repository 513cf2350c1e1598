"""A lab, its tenant and an all-branches outage scenario of any size, generated.

    files = generate_lab(branches=20, clients=50, out="runs/fabrikam-20x50")   # -> GeneratedLab
    drlab run runs/fabrikam-20x50/outage.yaml

The lab is Fabrikam: Teams' three SIP proxies and `branches` branch offices, each with its own
SBC, a co-located Survivable Branch Appliance, `clients` Teams clients and a carrier PoP on a
trunk of its own, and one WAN link to the internet (the shape of each branch is the Seattle branch
of examples/labs/contoso.yaml). In the tenant every branch is a network site with its own subnet,
PSTN gateway, SBA, SBA policy, voice route and policy; every user has a number and the SBA policy
of their branch. The scenario cuts every WAN link at once, waits until every client of every
branch is in appliance mode at its branch's SBA, restores every link and waits until every client
is back online: the steps are per branch, so a failure names the branch and the clients in it.

Names, for branch NN (01, 02, ...) and client CCC: site and link `bNN` / `wan-bNN`, nodes
`sbc-bNN`, `sba-bNN`, `pstn-bNN`, `bNN-uCCC`; hosts `sbc.bNN.fabrikam.com`,
`bNN-uCCC-pc.fabrikam.com`; users `bNN-uCCC@fabrikam.com`, numbers +1 425 (200+N) CCCC;
the branch subnet 10.N.0.0/16. `drlab lab generate` writes the three files (docs/lab-yaml.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DOMAIN = "fabrikam.com"
MAX_BRANCHES = 250  # one 10.N.0.0/16 per branch and a 425 exchange each
MAX_CLIENTS = 9999  # four-digit line numbers
CUT_AT_S = 120
RESTORE_AT_S = 32 * 60
LAB_FILE, TENANT_FILE, SCENARIO_FILE = (f"{stem}.yaml" for stem in ("lab", "tenant", "outage"))
#: the proxies and their datacenters, as in examples/labs/contoso.yaml
PROXIES = (
    ("sip", "sip.pstnhub.microsoft.com", "cloud-noam", "dc-noam", "5ms", "52.112.1.1"),
    ("sip2", "sip2.pstnhub.microsoft.com", "cloud-emea", "dc-emea", "40ms", "52.113.1.1"),
    ("sip3", "sip3.pstnhub.microsoft.com", "cloud-asia", "dc-asia", "70ms", "52.114.1.1"),
)


@dataclass(frozen=True)
class GeneratedLab:
    lab: Path
    tenant: Path
    scenario: Path


def branch_name(branch: int) -> str:
    return f"b{branch:02d}"


def client_name(branch: int, client: int) -> str:
    return f"{branch_name(branch)}-u{client:03d}"


def client_upn(branch: int, client: int) -> str:
    return f"{client_name(branch, client)}@{DOMAIN}"


def sba_fqdn(branch: int) -> str:
    return f"sba.{branch_name(branch)}.{DOMAIN}"


def sbc_fqdn(branch: int) -> str:
    return f"sbc.{branch_name(branch)}.{DOMAIN}"


def _client_address(branch: int, client: int) -> str:
    index = client - 1
    return f"10.{branch}.{1 + index // 250}.{1 + index % 250}"


def _check(branches: int, clients: int) -> None:
    if not 1 <= branches <= MAX_BRANCHES:
        raise ValueError(f"branches must be 1..{MAX_BRANCHES}, not {branches}")
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients per branch must be 1..{MAX_CLIENTS}, not {clients}")


def lab_yaml(branches: int, clients: int) -> str:
    """The lab file (docs/lab-yaml.md) of `branches` branches of `clients` clients."""
    _check(branches, clients)
    sites = ["  - {name: internet}"] + [f"  - {{name: {site}}}" for _, _, site, _, _, _ in PROXIES]
    links = [f"  - {{name: {link}, a: internet, b: {site}, latency: {latency}}}"
             for _, _, site, link, latency, _ in PROXIES]
    hosts = [f"  - {{name: {fqdn}, site: {site}, address: {address}}}" for _, fqdn, site, _, _, address in PROXIES]
    nodes = [f"  - {{name: {name}, host: {fqdn}, role: teams_proxy}}" for name, fqdn, _, _, _, _ in PROXIES]
    for b in range(1, branches + 1):
        site, pop = branch_name(b), f"pstn-{branch_name(b)}"
        sites += [f"  - {{name: {site}, description: branch {b} (tenant subnet 10.{b}.0.0/16)}}",
                  f"  - {{name: {pop}, description: the carrier's PoP for branch {b}}}"]
        links += [f"  - {{name: wan-{site}, a: {site}, b: internet, latency: 20ms}}",
                  f"  - {{name: trunk-{site}, a: {site}, b: {pop}, latency: 2ms}}"]
        carrier = f"pstn.{site}.carrier.example"
        hosts += [f"  - {{name: {sbc_fqdn(b)}, site: {site}, address: 10.{b}.0.11}}",
                  f"  - {{name: {sba_fqdn(b)}, site: {site}, address: 10.{b}.0.12}}",
                  f"  - {{name: {carrier}, site: {pop}, address: 198.18.{b // 250}.{1 + b % 250}}}"]
        nodes += [f"  - {{name: {pop}, host: {carrier}, role: pstn, options: {{transport: udp, default: answer}}}}",
                  f"  - {{name: sbc-{site}, host: {sbc_fqdn(b)}, role: sbc, options: {{carrier: {pop}, sba: sba-{site}}}}}",
                  f"  - {{name: sba-{site}, host: {sba_fqdn(b)}, role: sba}}"]
        for c in range(1, clients + 1):
            name = client_name(b, c)
            hosts.append(f"  - {{name: {name}-pc.{DOMAIN}, site: {site}, address: {_client_address(b, c)}}}")
            nodes.append(f"  - {{name: {name}, host: {name}-pc.{DOMAIN}, role: teams_client, "
                         f"options: {{user: {client_upn(b, c)}}}}}")
    header = (f"# Fabrikam, generated by `drlab lab generate --branches {branches} --clients {clients}`:\n"
              f"# {branches} branches, each with an SBC, an SBA, {clients} Teams clients and a carrier PoP.\n"
              "lab: fabrikam\n"
              f"description: {branches} survivable branches of {clients} clients\n")
    return header + "\n".join(["sites:", *sites, "links:", *links, "hosts:", *hosts, "nodes:", *nodes]) + "\n"


def tenant_yaml(branches: int, clients: int) -> str:
    """The tenant file (docs/tenant-yaml.md) that goes with `lab_yaml(branches, clients)`."""
    _check(branches, clients)
    usages = [branch_name(b) for b in range(1, branches + 1)]
    # each branch SBC is in its own subdomain, which the tenant registers [S1]
    domains = [DOMAIN, *(sbc_fqdn(b).partition(".")[2] for b in range(1, branches + 1))]
    lines = [f"# The Fabrikam tenant of `drlab lab generate --branches {branches} --clients {clients}`.",
             f"domains: [{', '.join(domains)}]",
             f"pstn_usages: [{', '.join(usages)}]", "regions:", "  - name: North America", "sites:"]
    lines += [f"  - {{name: {u}, network_region_id: North America}}" for u in usages]
    lines.append("subnets:")
    lines += [f"  - {{subnet_id: 10.{b}.0.0, mask_bits: 16, network_site_id: {branch_name(b)}}}"
              for b in range(1, branches + 1)]
    lines.append("gateways:")
    lines += [f"  - {{fqdn: {sbc_fqdn(b)}, sip_signaling_port: 5061, enabled: true, gateway_site_id: {branch_name(b)}}}"
              for b in range(1, branches + 1)]
    lines.append("voice_routes:")
    lines += [f"  - {{name: {u}, number_pattern: '^\\+1(\\d{{10}})$', priority: 1, "
              f"online_pstn_gateway_list: [{sbc_fqdn(b)}], online_pstn_usages: [{u}]}}"
              for b, u in enumerate(usages, 1)]
    lines.append("voice_routing_policies:")
    lines += [f"  - {{name: {u}, online_pstn_usages: [{u}]}}" for u in usages]
    lines.append("sbas:")
    lines += [f"  - {{fqdn: {sba_fqdn(b)}, site: {branch_name(b)}}}" for b in range(1, branches + 1)]
    lines.append("sba_policies:")
    lines += [f"  - {{name: {u}, branch_appliance_fqdns: [{sba_fqdn(b)}]}}" for b, u in enumerate(usages, 1)]
    lines.append("users:")
    for b, usage in enumerate(usages, 1):
        lines += [f"  - {{upn: {client_upn(b, c)}, phone_number: '+1425{200 + b:03d}{c:04d}', "
                  f"network_site: {usage}, voice_routing_policy: {usage}, sba_policy: {usage}}}"
                  for c in range(1, clients + 1)]
    return "\n".join(lines) + "\n"


def outage_yaml(branches: int, clients: int, lab: str = LAB_FILE, tenant: str = TENANT_FILE) -> str:
    """The scenario: every WAN cut at once, every client to its SBA, every link restored, every
    client back online. `lab` and `tenant` are paths relative to the scenario file."""
    _check(branches, clients)
    numbers = range(1, branches + 1)

    def everyone(b: int) -> str:
        return "[" + ", ".join(client_upn(b, c) for c in range(1, clients + 1)) + "]"

    steps = [f"  - {{name: branch {branch_name(b)} starts online, expect: {{client: {everyone(b)}, state: online}}}}"
             for b in numbers]
    steps += [f"  - {{at: {CUT_AT_S}s, cut: wan-{branch_name(b)}}}" for b in numbers]
    steps += [f"  - name: branch {branch_name(b)} falls back to its SBA\n"
              f"    wait: {{until: {{client: {everyone(b)}, state: appliance, registrar: {sba_fqdn(b)}}}, timeout: 5m}}"
              for b in numbers]
    steps += [f"  - {{at: {RESTORE_AT_S}s, restore: wan-{branch_name(b)}}}" for b in numbers]
    steps += [f"  - name: branch {branch_name(b)} returns to the cloud\n"
              f"    wait: {{until: {{client: {everyone(b)}, state: online}}, timeout: 5m}}"
              for b in numbers]
    header = (f"# Every WAN link of the generated Fabrikam lab ({branches} branches x {clients} clients) cut at\n"
              f"# once and restored: every client goes to its branch's SBA, then back to the cloud.\n"
              f"name: fabrikam-{branches}x{clients}-outage\nlab: {lab}\ntenant: {tenant}\nseed: 1\n")
    return header + "steps:\n" + "\n".join(steps) + "\n"


def generate_lab(branches: int, clients: int, out: str | Path) -> GeneratedLab:
    """Write lab.yaml, tenant.yaml and outage.yaml into `out` (made if missing)."""
    _check(branches, clients)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = GeneratedLab(folder / LAB_FILE, folder / TENANT_FILE, folder / SCENARIO_FILE)
    files.lab.write_text(lab_yaml(branches, clients), encoding="utf-8")
    files.tenant.write_text(tenant_yaml(branches, clients), encoding="utf-8")
    files.scenario.write_text(outage_yaml(branches, clients), encoding="utf-8")
    return files
