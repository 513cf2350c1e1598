"""The lab file as a docker-compose project (compose format "2.4", read by docker-compose 1.29).

- Each site with hosts is a bridge network with a fixed subnet (the widest block of at most
  /24 that holds every host of the site and no other site's; wider only when its hosts span
  more), a fixed bridge name (to capture on: ``tshark -i dl4-hq``) and no IP masquerade. Not ``internal: true``: with br_netfilter
  Docker's rules for internal networks drop the frames the router forwards.
- One router container joins every site network (the top addresses of each subnet), forwards
  between them and carries the cuts: ``table inet drlab`` with one chain per link
  (router.nft, cuts.py). Every packet between two sites crosses it, so a cut is a real drop or
  reset on the real path. Links between two sites become rules on the pairs of subnets whose
  path (the lab's static shortest path, as on the sim network) runs through the link.
- One container per node runs ``drlab node`` at its host's address (the Teams cloud, every
  teams_proxy, is one container on each proxy's site network: its proxies share registrations
  and gateway health in one process, as with ``drlab lab up --processes``). Its only routes to
  other sites go through the router (no default route: nothing leaves the lab); a container on
  several sites routes by source address, so each proxy's packets use its own site's bridge.
  Lab names resolve from /etc/hosts (``extra_hosts``), never through Docker's DNS.
- The control plane runs on the host (``drlab lab up --docker``, simulator/dockerlab/plane.py):
  every node reaches it at its own site's gateway address (the host's side of its bridge), on
  its own LAN, so no cut ever stands between a node and the control plane (cuts act on
  forwarded packets only).

Every container and network carries the label ``drlab.lab=<lab>``; the compose project is
``drlab-<lab>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import yaml

from simulator.dockerlab import cuts
from simulator.errors import InputError
from simulator.lab.spec import LabSpec
from simulator.net.topology import Link, shortest_path

IMAGE = "drlab:latest"
LABEL = "drlab.lab"
CONTROL_PORT = 8765
# Inside every container: the lab file, the tenant file and the certificates folder.
LAB_DIR = "/lab"
# The router's service name (node services and site networks use the lab's names).
ROUTER = "drlab-router"
#: the first of a container's routing tables, one per site it joins (source routing)
FIRST_TABLE = 100
WIDEST_PREFIX = 24
NARROWEST_PREFIX = 29  # room for the hosts, Docker's gateway and the router


class DockerLabError(InputError):
    """A lab file the Docker lab cannot lay out (a host without an address, crowded subnets)."""


@dataclass(frozen=True)
class SiteNetwork:
    site: str
    subnet: IPv4Network
    gateway: IPv4Address  # the host's side of the bridge (Docker needs one)
    router: IPv4Address
    bridge: str


@dataclass(frozen=True)
class DockerPlan:
    """Everything the compose file and the cuts need, derived from the lab file alone."""

    lab: str
    sites: dict[str, SiteNetwork]
    addresses: dict[str, IPv4Address]  # node name -> its host's address
    hosts: list[tuple[str, IPv4Address]]  # every lab name (FQDNs and aliases) -> its address
    # container (named after its first node) -> the nodes it runs: one each, the Teams cloud's together
    containers: dict[str, list[str]]
    # link name -> the (source, destination) subnet pairs whose path crosses it, both directions
    link_pairs: dict[str, list[tuple[IPv4Network, IPv4Network]]] = field(default_factory=dict)
    # link name -> the lab file's loss on it, in percent (what nftables can impair)
    link_loss: dict[str, int] = field(default_factory=dict)

    @property
    def project(self) -> str:
        return f"drlab-{self.lab}"

    @property
    def router(self) -> str:
        """The router container's name (cuts.py acts in its network namespace)."""
        return f"{self.project}-router"

    def control_url(self, site: str, port: int = CONTROL_PORT) -> str:
        """Where a node of `site` reaches the control plane on the host: its site's gateway."""
        return f"http://{self.sites[site].gateway}:{port}"

    def site_of(self, node: str) -> SiteNetwork:
        address = self.addresses[node]
        return next(s for s in self.sites.values() if address in s.subnet)


def plan(spec: LabSpec) -> DockerPlan:
    """Lay the lab out: a subnet per site with hosts, and the subnet pairs behind each link."""
    by_site: dict[str, list[IPv4Address]] = {}
    for host in spec.hosts.values():
        if host.address is None:
            raise DockerLabError(f"host {host.name} needs an address in the Docker lab (address: 10.20.0.10)",
                                 host.position)
        by_site.setdefault(host.site, []).append(IPv4Address(host.address))
    taken: list[IPv4Network] = []
    sites: dict[str, SiteNetwork] = {}
    for index, site in enumerate(spec.sites):
        if site not in by_site:
            continue  # a transit site (the internet): routing only, no containers
        foreign = [a for other, addresses in by_site.items() if other != site for a in addresses]
        subnet = _subnet(site, by_site[site], foreign, taken)
        taken.append(subnet)
        free = [a for a in reversed(list(subnet.hosts())) if a not in by_site[site]]
        sites[site] = SiteNetwork(site, subnet, gateway=free[1], router=free[0], bridge=f"dl{index}-{site}"[:15])
    addresses = {node.name: IPv4Address(spec.host(node.host).address) for node in spec.nodes.values()}
    hosts = [(name, IPv4Address(host.address)) for host in spec.hosts.values() for name in (host.name, *host.aliases)]
    cloud = [node.name for node in spec.nodes_with_role("teams_proxy")]
    containers = {name: [name] for name in spec.nodes if name not in cloud}
    if cloud:
        containers = {cloud[0]: cloud, **containers}
    loss = {link.name: round(link.loss * 100) for link in spec.links.values() if link.loss}
    return DockerPlan(spec.name, sites, addresses, hosts, containers, _link_pairs(spec, sites), loss)


def _subnet(site: str, mine: list[IPv4Address], foreign: list[IPv4Address],
            taken: list[IPv4Network]) -> IPv4Network:
    for prefix in range(WIDEST_PREFIX, NARROWEST_PREFIX + 1):
        covering = _covering(mine, prefix)
        if covering is None:
            continue
        if any(a in covering for a in foreign) or any(covering.overlaps(t) for t in taken):
            continue
        if covering.num_addresses - 2 >= len(mine) + 2:
            return covering
    # Hosts spread over more than a /24 (10.10.0.11 and 10.10.1.21): the block that holds them all.
    wide = _covering(mine, min(WIDEST_PREFIX, _common_prefix(mine)))
    if wide is not None and not any(a in wide for a in foreign) and not any(wide.overlaps(t) for t in taken):
        return wide
    raise DockerLabError(
        f"site {site}: no subnet holds its hosts ({', '.join(map(str, mine))}) without another site's hosts")


def _covering(addresses: list[IPv4Address], prefix: int) -> IPv4Network | None:
    network = IPv4Network(f"{addresses[0]}/{prefix}", strict=False)
    return network if all(a in network for a in addresses) else None


def _common_prefix(addresses: list[IPv4Address]) -> int:
    first = int(addresses[0])
    differing = 0
    for address in addresses[1:]:
        differing |= first ^ int(address)
    return 32 - differing.bit_length()


def _link_pairs(spec: LabSpec, sites: dict[str, SiteNetwork]) -> dict[str, list[tuple[IPv4Network, IPv4Network]]]:
    adjacency: dict[str, list[Link]] = {}
    for decl in spec.links.values():
        link = Link(decl.name, decl.a, decl.b)
        adjacency.setdefault(decl.a, []).append(link)
        adjacency.setdefault(decl.b, []).append(link)
    pairs: dict[str, list[tuple[IPv4Network, IPv4Network]]] = {name: [] for name in spec.links}
    for a in sites:
        for b in sites:
            path = shortest_path(adjacency, a, b) if a != b else None
            for link in path.links if path else ():
                pairs[link.name].append((sites[a].subnet, sites[b].subnet))
    return pairs


def router_ruleset(plan: DockerPlan) -> str:
    """The router's nftables table: drlab's own, one chain per link, empty while the link is up
    (holding the lab file's random loss on links that have one)."""
    lines = ["table inet drlab {"]
    lines += [f"\tchain {_chain(link)} {{\n\t}}" for link in plan.link_pairs]
    lines += ["\tchain forward {", "\t\ttype filter hook forward priority 0; policy accept;"]
    lines += [f"\t\tjump {_chain(link)}" for link in plan.link_pairs]
    lines += ["\t}", "}"]
    lossy = [cuts.rules(link, plan.link_pairs[link], loss_percent=percent) for link, percent in plan.link_loss.items()]
    return "\n".join(lines) + "\n" + "".join(lossy)


def _chain(link: str) -> str:
    return "link-" + link


@dataclass(frozen=True)
class LabFiles:
    """The host's files the containers mount (made absolute in the compose file)."""

    lab: Path
    tenant: Path
    certs: Path  # the lab's certificates, as the control plane made them
    ruleset: Path  # router.nft, written next to compose.yaml
    keys: Path | None = None  # where each node writes its TLS key log (SSLKEYLOGFILE), for Wireshark


def compose(plan: DockerPlan, files: LabFiles, *, image: str = IMAGE, control_port: int = CONTROL_PORT) -> dict:
    """The compose document (a dict ready for YAML)."""
    labels = {LABEL: plan.lab}
    tenant_in = f"{LAB_DIR}/tenant{files.tenant.suffix}"
    volumes = [f"{files.lab.resolve()}:{LAB_DIR}/lab.yaml:ro", f"{files.tenant.resolve()}:{tenant_in}:ro",
               f"{files.certs.resolve()}:{LAB_DIR}/certs:ro"]
    if files.keys is not None:
        volumes.append(f"{files.keys.resolve()}:{LAB_DIR}/keys")
    networks = {site.site: _network(f"{plan.project}-{site.site}", site, labels) for site in plan.sites.values()}
    services: dict[str, dict] = {}
    services[ROUTER] = {
        "image": image, "container_name": plan.router, "labels": {**labels, "drlab.role": "router"},
        "cap_add": ["NET_ADMIN"], "sysctls": {"net.ipv4.ip_forward": "1"},
        "volumes": [f"{files.ruleset.resolve()}:{LAB_DIR}/router.nft:ro"],
        "networks": {s.site: {"ipv4_address": str(s.router)} for s in plan.sites.values()},
        "command": ["sh", "-c", _idle(f"nft -f {LAB_DIR}/router.nft && ip route del default")],
    }
    extra_hosts = [f"{name}:{address}" for name, address in plan.hosts]
    for container, nodes in plan.containers.items():
        sites = list(dict.fromkeys(plan.site_of(node) for node in nodes))
        node_command = (f"{_routes(plan, [(plan.addresses[n], plan.site_of(n)) for n in nodes])} && exec drlab node "
                        f"--lab {LAB_DIR}/lab.yaml --tenant {tenant_in} --node {container} "
                        f"--control {plan.control_url(sites[0].site, control_port)} --certs {LAB_DIR}/certs")
        environment = {"SSLKEYLOGFILE": f"{LAB_DIR}/keys/{container}.keys"} if files.keys is not None else {}
        services[container] = {
            "image": image, "container_name": f"{plan.project}-{container}",
            "labels": {**labels, "drlab.role": "node", "drlab.node": ",".join(nodes)},
            "cap_add": ["NET_ADMIN"], "working_dir": LAB_DIR, "volumes": volumes, "extra_hosts": extra_hosts,
            "environment": environment,
            "networks": {plan.site_of(n).site: {"ipv4_address": str(plan.addresses[n])} for n in nodes},
            "depends_on": [ROUTER], "command": ["sh", "-c", node_command],
        }
    return {"version": "2.4", "services": services, "networks": networks}


def _routes(plan: DockerPlan, homes: list[tuple[IPv4Address, SiteNetwork]]) -> str:
    """The shell line that routes every other site through the router, and nothing else.

    One home (address, site): the other sites' subnets via the site's router. Several (the Teams
    cloud on three sites): a routing table per home, chosen by source address, so each address's
    packets leave on its own site's bridge and cross the router as they would from a box there."""
    lines = ["ip route del default 2>/dev/null"]
    for index, (address, site) in enumerate(homes):
        table = f" table {FIRST_TABLE + index}" if len(homes) > 1 else ""
        if table:
            lines.append(f"ip rule add from {address} lookup {FIRST_TABLE + index}")
            lines.append(f"ip route replace {site.subnet} dev $$(ip -o -4 addr show to {address} | cut -d' ' -f2){table}")
        lines += [f"ip route replace {other.subnet} via {site.router}{table}"
                  for other in plan.sites.values() if other is not site]
    return lines[0] + "; " + " && ".join(lines[1:] or ["true"])


def _network(name: str, site: SiteNetwork, labels: dict[str, str]) -> dict:
    return {
        "name": name, "driver": "bridge", "labels": labels,
        "driver_opts": {"com.docker.network.bridge.name": site.bridge,
                        "com.docker.network.bridge.enable_ip_masquerade": "false"},
        "ipam": {"config": [{"subnet": str(site.subnet), "gateway": str(site.gateway)}]},
    }


def _idle(setup: str) -> str:
    """A shell line that runs `setup`, then waits until the container is stopped."""
    return f"{setup} || exit 1; trap 'exit 0' TERM; sleep infinity & wait"


def write(plan: DockerPlan, files: LabFiles, out: Path, *, control_port: int = CONTROL_PORT) -> Path:
    """Write compose.yaml and the router's ruleset into `out`; returns the compose file's path."""
    out.mkdir(parents=True, exist_ok=True)
    files.ruleset.write_text(router_ruleset(plan), encoding="utf-8")
    path = out / "compose.yaml"
    header = (f"# The Docker lab for {plan.lab}, written by drlab (simulator/dockerlab/compose.py).\n"
              f"# Its nodes connect to the control plane at each site's gateway, port {control_port}:\n"
              f"# drlab lab up LAB --tenant TENANT --docker starts it, then this project:\n"
              f"# docker-compose -p {plan.project} -f {path} up -d\n")
    body = yaml.dump(compose(plan, files, control_port=control_port), Dumper=_PlainDumper, sort_keys=False,
                     width=120)
    path.write_text(header + body, encoding="utf-8")
    return path


class _PlainDumper(yaml.SafeDumper):
    """Writes shared lists out in full (no &id001 anchors): the file is for people to read."""

    def ignore_aliases(self, data: object) -> bool:
        return True
