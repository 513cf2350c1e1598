"""The lab file (docs/lab-yaml.md): sites, links, hosts, nodes, certificates, timer overrides.

Read with the position-keeping YAML reader (`simulator.yaml_source`), so every mistake is a
`LabError` at `FILE:LINE:COL` saying what was expected: an unknown key (never ignored), a
duplicate name, a link to an undeclared site, a node on an undeclared host, an unknown role,
certificate variant or setting, a bad duration, a node with no path over the links to a node
it needs (`_check_paths`), an external node without its address and port.

    spec = load_lab_spec("examples/labs/contoso.yaml")   # -> LabSpec (plain data, no network yet)

Only the options of the roles this package knows the shape of are checked here (`ROLE_OPTIONS`);
a role's other options are passed to it unchanged in `NodeSpec.options`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import InputError, SourcePosition, read_source
from simulator.pki import VARIANTS
from simulator.roles.settings import RoleSettings, SettingsError
from simulator.yaml_source import YamlDoc, shorten

#: role name -> start rank: proxies first, then the carrier, SBCs, SBAs, clients (each needs the former)
ROLES = {"teams_proxy": 0, "pstn": 1, "sbc": 2, "sba": 3, "teams_client": 4}

PSTN_BEHAVIOURS = ("answer", "ring", "busy", "unreachable", "unavailable", "reject")

#: options the lab itself reads (and checks) per role: key -> kind. Other roles' options pass through.
ROLE_OPTIONS: dict[str, dict[str, str] | None] = {
    "sbc": {"carrier": "node:pstn", "carrier_transport": "choice:udp,tcp", "sba": "node:sba",
            "pstn_port": "port", "max_sessions": "count"},
    "pstn": {"port": "port", "transport": "choice:udp,tcp", "numbers": "numbers", "default": "behaviour"},
    "teams_client": None,   # `user` is required and checked; the rest passes through
    "teams_proxy": None,
    "sba": None,
}

#: roles a node may have with `external: true`, each with the transports it may listen on (the
#: first is the default): a carrier drlab's SBC calls by address and that calls the SBC back, or
#: the SBC itself (Kamailio, a vendor's SBC) on Direct Routing's mutual TLS, which the proxies
#: reach by its FQDN (the lab maps it to the address) and which reaches them by their addresses
EXTERNAL_ROLES = {"pstn": ("udp", "tcp"), "sbc": ("tls",)}

#: the longest latency, jitter or PSTN answer/hang-up delay a lab may give (one day)
MAX_DURATION_S = 86400.0

TOP_LEVEL = ("lab", "description", "settings", "sites", "links", "hosts", "nodes")


class LabError(InputError):
    """Bad lab input. `str(err)` is `FILE:LINE:COL: message`."""


@dataclass(frozen=True)
class SiteDecl:
    name: str
    description: str | None = None
    position: SourcePosition | None = None


@dataclass(frozen=True)
class LinkDecl:
    name: str
    a: str
    b: str
    latency: float = 0.0   # one-way, seconds
    jitter: float = 0.0
    loss: float = 0.0
    position: SourcePosition | None = None


@dataclass(frozen=True)
class HostDecl:
    name: str                       # the FQDN
    site: str
    address: str | None = None      # chosen by the network when omitted
    aliases: tuple[str, ...] = ()
    certificate: str | None = None  # a broken variant (simulator.pki.variants), None = the good one
    position: SourcePosition | None = None


@dataclass(frozen=True)
class NodeDecl:
    name: str
    host: str
    role: str
    options: dict[str, Any] = field(default_factory=dict)
    position: SourcePosition | None = None
    external: ExternalPeer | None = None  # not run by drlab: a peer outside the lab (SIPp, a carrier)


@dataclass(frozen=True)
class ExternalPeer:
    """Where an external node listens: the lab sends to it there, over real sockets."""

    address: str
    port: int
    transport: str = "udp"


@dataclass
class LabSpec:
    name: str
    path: str
    description: str | None = None
    sites: dict[str, SiteDecl] = field(default_factory=dict)
    links: dict[str, LinkDecl] = field(default_factory=dict)
    hosts: dict[str, HostDecl] = field(default_factory=dict)     # lowercased FQDN -> host
    nodes: dict[str, NodeDecl] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    setting_positions: dict[str, SourcePosition] = field(default_factory=dict)

    def host(self, name: str) -> HostDecl:
        return self.hosts[name.lower()]

    def nodes_with_role(self, role: str) -> list[NodeDecl]:
        return [n for n in self.nodes.values() if n.role == role]

    def external_nodes(self) -> list[NodeDecl]:
        """The nodes drlab does not run: peers outside the lab, reached at their address."""
        return [n for n in self.nodes.values() if n.external is not None]


class _LabDoc(YamlDoc):
    def __init__(self, path: str) -> None:
        super().__init__(path, LabError)

    def text(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node, str, what)
        if not value.strip():
            raise self.fail(node, f"{what} must not be empty")
        return value.strip()

    def duration(self, node: yaml.Node, what: str) -> float:
        """Seconds: a number (`0.02`) or text with a unit (`20ms`, `1.5s`)."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what} must be a duration like 20ms or 0.02")
        value = self.value(node, what)
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)\s*", str(value))
            if not m:
                raise self.fail(node, f"{what} must be a duration like 20ms, 1.5s or 0.02 (seconds), not {node.value!r}")
            seconds = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
        if not 0 <= seconds <= MAX_DURATION_S:
            raise self.fail(node, f"{what} must be between 0 and {MAX_DURATION_S:g} s, not {node.value!r}")
        return seconds

    def probability(self, node: yaml.Node, what: str) -> float:
        value = self.value(node, what) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                value = float(value.strip()[:-1]) / 100.0
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(node, f"{what} must be a probability 0..1 or a percentage like 1%, not {getattr(node, 'value', node)!r}")
        return float(value)


def parse_lab(text: str, path: str = "<string>") -> LabSpec:
    doc = _LabDoc(path)
    root = doc.compose(text)
    if root is None:
        raise LabError("the lab file is empty: expected sites, hosts and nodes", SourcePosition(path, 1, 1))
    top = doc.entries(root, "the lab file", TOP_LEVEL, required=("hosts", "nodes"))
    name = doc.text(top["lab"][1], "lab (the lab's name)") if "lab" in top else Path(path).stem
    spec = LabSpec(name=name, path=path)
    if "description" in top:
        spec.description = doc.scalar(top["description"][1], str, "description")
    for n in doc.sequence(top["sites"][1], "sites") if "sites" in top else []:
        _site(doc, spec, n)
    for n in doc.sequence(top["links"][1], "links") if "links" in top else []:
        _link(doc, spec, n)
    for n in doc.sequence(top["hosts"][1], "hosts"):
        _host(doc, spec, n)
    for n in doc.sequence(top["nodes"][1], "nodes"):
        _node(doc, spec, n)
    if not spec.nodes:
        raise doc.fail(top["nodes"][1], "nodes must list at least one node")
    if "settings" in top:
        for key, (value, position) in read_settings(doc, top["settings"][1]).items():
            spec.settings[key] = value
            spec.setting_positions[key] = position
    _check_references(doc, spec)
    _check_paths(spec)
    return spec


def load_lab_spec(path: str | Path) -> LabSpec:
    """Read and check a lab file; raises LabError (`FILE:LINE:COL: message`)."""
    return parse_lab(read_source(path, LabError, "lab"), str(path))


# --- sections -------------------------------------------------------------------------------------
def _site(doc: _LabDoc, spec: LabSpec, node: yaml.Node) -> None:
    if isinstance(node, yaml.ScalarNode):
        e = {"name": (node, node)}
    else:
        e = doc.entries(node, "a site", ("name", "description"), required=("name",))
    name = doc.text(e["name"][1], "site name")
    if name in spec.sites:
        raise doc.fail(node, f"site {name!r} is declared twice (first at {spec.sites[name].position})")
    desc = doc.scalar(e["description"][1], str, "site description") if "description" in e else None
    spec.sites[name] = SiteDecl(name, desc, doc.pos(node))


def _link(doc: _LabDoc, spec: LabSpec, node: yaml.Node) -> None:
    e = doc.entries(node, "a link", ("name", "a", "b", "latency", "jitter", "loss"), required=("name", "a", "b"))
    name = doc.text(e["name"][1], "link name")
    if name in spec.links:
        raise doc.fail(e["name"][1], f"link {name!r} is declared twice (first at {spec.links[name].position})")
    ends = []
    for side in ("a", "b"):
        site = doc.text(e[side][1], f"site {side} of link {name}")
        if site not in spec.sites:
            raise doc.fail(e[side][1], f"link {name}: unknown site {site!r}; declared sites: {', '.join(spec.sites) or 'none'}")
        ends.append(site)
    if ends[0] == ends[1]:
        raise doc.fail(e["b"][1], f"link {name} joins site {ends[0]!r} to itself: a link joins two sites")
    latency = doc.duration(e["latency"][1], f"latency of link {name}") if "latency" in e else 0.0
    jitter = doc.duration(e["jitter"][1], f"jitter of link {name}") if "jitter" in e else 0.0
    loss = doc.probability(e["loss"][1], f"loss of link {name}") if "loss" in e else 0.0
    spec.links[name] = LinkDecl(name, ends[0], ends[1], latency, jitter, loss, doc.pos(node))


def _host(doc: _LabDoc, spec: LabSpec, node: yaml.Node) -> None:
    e = doc.entries(node, "a host", ("name", "site", "address", "aliases", "certificate"), required=("name", "site"))
    name = doc.text(e["name"][1], "host name (its FQDN)").rstrip(".")
    if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", name):
        raise doc.fail(e["name"][1], f"host name {name!r} must be a fully qualified domain name like sbc1.contoso.com")
    aliases = tuple(doc.text(n, f"an alias of {name}") for n in doc.sequence(e["aliases"][1], "aliases")) \
        if "aliases" in e else ()
    taken = {n for h in spec.hosts.values() for n in (h.name.lower(), *(a.lower() for a in h.aliases))}
    for label, vnode in ((name, e["name"][1]), *((a, e["aliases"][1]) for a in aliases)):
        if label.lower() in taken:
            raise doc.fail(vnode, f"host name {label!r} is declared twice (names ignore case)")
    site = doc.text(e["site"][1], f"site of host {name}")
    if site not in spec.sites:
        raise doc.fail(e["site"][1], f"host {name}: unknown site {site!r}; declared sites: {', '.join(spec.sites) or 'none'}")
    address = None
    if "address" in e:
        address = doc.text(e["address"][1], f"address of host {name}")
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise doc.fail(e["address"][1], f"address of host {name} must be an IPv4 address like 10.20.0.10, not {address!r}") from None
        for other in spec.hosts.values():
            if other.address == address:
                raise doc.fail(e["address"][1], f"address {address} is already used by host {other.name}")
    certificate = None
    if "certificate" in e:
        c = doc.entries(e["certificate"][1], f"the certificate of host {name}", ("variant",), required=("variant",))
        certificate = doc.text(c["variant"][1], "certificate variant")
        if certificate == "good":
            certificate = None
        elif certificate not in VARIANTS:
            raise doc.fail(c["variant"][1], f"unknown certificate variant {certificate!r}; known: good, {', '.join(VARIANTS)}")
    spec.hosts[name.lower()] = HostDecl(name, site, address, aliases, certificate, doc.pos(node))


NODE_KEYS = ("name", "host", "role", "options", "external", "address", "port", "transport")
#: the keys that say where an external node listens
EXTERNAL_KEYS = ("address", "port", "transport")


def _node(doc: _LabDoc, spec: LabSpec, node: yaml.Node) -> None:
    e = doc.entries(node, "a node", NODE_KEYS, required=("name", "host", "role"))
    name = doc.text(e["name"][1], "node name")
    if name in spec.nodes:
        raise doc.fail(e["name"][1], f"node {name!r} is declared twice (first at {spec.nodes[name].position})")
    host = doc.text(e["host"][1], f"host of node {name}").rstrip(".")
    decl = spec.hosts.get(host.lower())
    if decl is None:
        raise doc.fail(e["host"][1], f"node {name}: unknown host {host!r}; declare it under hosts first")
    for other in spec.nodes.values():
        if other.host.lower() == decl.name.lower():
            raise doc.fail(e["host"][1], f"host {decl.name} already runs node {other.name}: one node per host "
                                         f"(co-located roles get their own FQDN, like sba1 beside sbc-sea)")
    role = doc.text(e["role"][1], f"role of node {name}")
    if role not in ROLES:
        raise doc.fail(e["role"][1], f"node {name}: unknown role {role!r}; roles: {', '.join(ROLES)}")
    external = _external(doc, spec, e, node, name, role, decl)
    options: dict[str, Any] = {}
    if "options" in e:
        onode = e["options"][1]
        schema = ROLE_OPTIONS.get(role)
        for key, knode, vnode in doc.mapping(onode, f"the options of node {name}"):
            if schema is not None:
                if key not in schema:
                    raise doc.fail(knode, f"unknown option {key!r} for a {role} node (known: {', '.join(schema)})")
                options[key] = _option(doc, vnode, schema[key], f"option {key} of node {name}")
            else:
                options[key] = doc.value(vnode, f"option {key} of node {name}")
    if role == "teams_client":
        user = options.get("user", options.get("upn"))
        if not isinstance(user, str) or "@" not in user:
            where = e["options"][1] if "options" in e else node
            raise doc.fail(where, f"teams_client node {name} needs options: {{user: <UPN>}} (e.g. carol@contoso.com)")
        options["user"] = options["upn"] = user.lower()  # the client role reads `upn`
    spec.nodes[name] = NodeDecl(name, decl.name, role, options, doc.pos(node), external)


def _external(doc: _LabDoc, spec: LabSpec, e: dict[str, tuple[yaml.Node, yaml.Node]], node: yaml.Node,
              name: str, role: str, host: HostDecl) -> ExternalPeer | None:
    """`external: true` with `address`, `port` and optional `transport`: where the peer listens."""
    is_external = doc.scalar(e["external"][1], bool, f"external of node {name}") if "external" in e else False
    if not is_external:
        for key in EXTERNAL_KEYS:
            if key in e:
                raise doc.fail(e[key][0], f"node {name}: {key} is for an external node (external: true); "
                                          f"drlab runs node {name} on its host's address")
        return None
    if role not in EXTERNAL_ROLES:
        raise doc.fail(e["external"][1], f"node {name}: a {role} node cannot be external; external nodes: "
                                         f"{', '.join(EXTERNAL_ROLES)} (a carrier, or the SBC)")
    missing = [key for key in ("address", "port") if key not in e]
    if missing:
        raise doc.fail(node, f"external node {name} needs {' and '.join(missing)}: where the peer listens "
                             f"(e.g. address: 127.0.0.1, port: 5070)")
    if "options" in e:
        raise doc.fail(e["options"][0], f"external node {name} takes no options: drlab does not run it "
                                        f"(its configuration is the peer's own)")
    if host.address is not None:
        raise doc.fail(node, f"external node {name}: its host {host.name} gives an address ({host.address}, at "
                             f"{host.position}), but an external node is at the node's own address:; "
                             f"remove the host's")
    address = _external_address(doc, e["address"][1], name)
    for other in spec.nodes.values():
        if other.external is not None and other.external.address == address:
            raise doc.fail(e["address"][1], f"address {address} is already external node {other.name}'s: give each "
                                            f"external node its own address (any 127.x.y.z reaches this machine)")
    port = doc.integer(e["port"][1], f"port of external node {name}", 1, 65535)
    transports = EXTERNAL_ROLES[role]
    transport = transports[0]
    if "transport" in e:
        transport = doc.text(e["transport"][1], f"transport of external node {name}").lower()
        if transport not in transports:
            raise doc.fail(e["transport"][1], f"transport of external {role} node {name} must be "
                                              f"{' or '.join(transports)}, not {transport!r}")
    return ExternalPeer(address, port, transport)


def _external_address(doc: _LabDoc, node: yaml.Node, name: str) -> str:
    """An IPv4 address a peer can be sent to: not 0.0.0.0, a broadcast, multicast or reserved one."""
    text = doc.text(node, f"address of external node {name}")
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise doc.fail(node, f"address of external node {name} must be an IPv4 address like 127.0.0.1 or "
                             f"192.0.2.10 (an outside peer is reached by address, not by a name), not {text!r}") from None
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        raise doc.fail(node, f"address of external node {name} must be one host's address, not {text} "
                             f"(unspecified, broadcast, multicast or reserved)")
    return str(address)


def _option(doc: _LabDoc, node: yaml.Node, kind: str, what: str) -> Any:
    if kind.startswith("node:"):
        return doc.text(node, what)  # checked once every node is known
    if kind.startswith("choice:"):
        choices = kind[7:].split(",")
        value = doc.text(node, what).lower()
        if value not in choices:
            raise doc.fail(node, f"{what} must be one of {', '.join(choices)}, not {value!r}")
        return value
    if kind == "port":
        return doc.integer(node, what, 1, 65535)
    if kind == "count":
        return doc.integer(node, what, 1, 1_000_000)
    if kind == "behaviour":
        return _behaviour(doc, node, what)
    if kind == "numbers":
        out: dict[str, dict[str, Any]] = {}
        for number, knode, vnode in doc.mapping(node, what):
            digits = number.strip()
            if not re.fullmatch(r"\+?[0-9]{3,15}", digits):
                raise doc.fail(knode, f"{what}: {number!r} is not a phone number (3-15 digits, optional +)")
            out[digits] = _behaviour(doc, vnode, f"{what} {digits}")
        return out
    raise AssertionError(kind)


def _behaviour(doc: _LabDoc, node: yaml.Node, what: str) -> dict[str, Any]:
    """`answer` | `ring` | `busy` | ... or {behaviour: answer, answer_after: 8, hangup_after: 30, status: 480,
    early_media: true}."""
    if isinstance(node, yaml.ScalarNode):
        e: dict[str, tuple[yaml.Node, yaml.Node]] = {"behaviour": (node, node)}
    else:
        e = doc.entries(node, what, ("behaviour", "answer_after", "hangup_after", "status", "early_media"),
                        required=("behaviour",))
    behaviour = doc.text(e["behaviour"][1], f"behaviour of {what}")
    if behaviour not in PSTN_BEHAVIOURS:
        raise doc.fail(e["behaviour"][1], f"{what}: unknown behaviour {behaviour!r}; known: {', '.join(PSTN_BEHAVIOURS)}")
    out: dict[str, Any] = {"behaviour": behaviour}
    for key in ("answer_after", "hangup_after"):
        if key in e:
            out[key] = doc.duration(e[key][1], f"{key} of {what}")
    if "status" in e:
        out["status"] = doc.integer(e["status"][1], f"status of {what}", 400, 699)
    if "early_media" in e:
        out["early_media"] = doc.scalar(e["early_media"][1], bool, f"early_media of {what}")
    return out


def read_settings(doc: YamlDoc, node: yaml.Node) -> dict[str, tuple[Any, SourcePosition]]:
    """A `settings:` mapping (lab or scenario file), each checked by RoleSettings: name -> (value, position)."""
    out = {}
    for key, knode, vnode in doc.mapping(node, "settings"):
        value = doc.value(vnode, f"setting {key}")
        try:
            RoleSettings.from_overrides({key: value})
        except SettingsError as err:
            raise doc.fail(knode if "unknown setting" in str(err) else vnode, str(err)) from None
        except OverflowError:  # an integer too large for a float setting
            raise doc.fail(vnode, f"setting {key!r} must be a finite number; got {shorten(vnode.value)}") from None
        out[key] = (value, doc.pos(knode))
    return out


def _check_references(doc: _LabDoc, spec: LabSpec) -> None:
    for n in spec.nodes.values():
        schema = ROLE_OPTIONS.get(n.role) or {}
        for key, kind in schema.items():
            if not kind.startswith("node:") or key not in n.options:
                continue
            target = spec.nodes.get(n.options[key])
            want = kind[5:]
            if target is None or target.role != want:
                names = ", ".join(x.name for x in spec.nodes_with_role(want)) or "none"
                raise LabError(f"node {n.name}: option {key} names {n.options[key]!r}, which is not a {want} node "
                               f"({want} nodes: {names})", n.position)
    proxies = spec.nodes_with_role("teams_proxy")
    if proxies and len(proxies) > 3:
        raise LabError("at most three teams_proxy nodes (sip, sip2, sip3)", proxies[3].position)
    users: dict[str, NodeDecl] = {}
    for n in spec.nodes_with_role("teams_client"):
        if n.options["user"] in users:
            raise LabError(f"user {n.options['user']} already has a client (node {users[n.options['user']].name})",
                           n.position)
        users[n.options["user"]] = n
    sbas: dict[str, NodeDecl] = {}
    for n in spec.nodes_with_role("sbc"):
        sba = n.options.get("sba")
        if sba is not None:
            if sba in sbas:
                raise LabError(f"SBA node {sba} is already co-located with SBC node {sbas[sba].name}", n.position)
            sbas[sba] = n
        carrier = spec.nodes[n.options["carrier"]] if "carrier" in n.options else None
        wanted = n.options.get("carrier_transport")
        if carrier is not None and carrier.external is not None and wanted not in (None, carrier.external.transport):
            raise LabError(f"node {n.name}: carrier_transport {wanted}, but external node {carrier.name} listens on "
                           f"{carrier.external.transport} (its transport:); drop carrier_transport", n.position)


def _needs(spec: LabSpec, node: NodeDecl) -> list[tuple[NodeDecl, str]]:
    """The nodes `node` talks to from the start, each with why: (node, "its carrier")."""
    if node.role not in ("sbc", "sba", "teams_client"):
        return []
    needs = [(proxy, "a Teams SIP proxy") for proxy in spec.nodes_with_role("teams_proxy")]
    for option, why in (("carrier", "its PSTN carrier"), ("sba", "its co-located SBA")):
        if node.role == "sbc" and option in node.options:
            needs.append((spec.nodes[node.options[option]], why))
    return needs


def _check_paths(spec: LabSpec) -> None:
    """Every node can reach, over the declared links, each node it needs (else it fails at run time);
    an external node is reached directly, so links do not matter for it."""
    neighbours: dict[str, set[str]] = {site: set() for site in spec.sites}
    for link in spec.links.values():
        neighbours[link.a].add(link.b)
        neighbours[link.b].add(link.a)

    def reachable(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for other in neighbours[todo.pop()] - seen:
                seen.add(other)
                todo.append(other)
        return seen

    for node in spec.nodes.values():
        site = spec.host(node.host).site
        sites = reachable(site)
        for needed, why in _needs(spec, node):
            if needed.external is not None:
                continue  # reached by its address, outside the links (docs/lab-yaml.md)
            other = spec.host(needed.host).site
            if other not in sites:
                raise LabError(f"node {node.name} (site {site}) has no path over the links to node {needed.name} "
                               f"(site {other}), {why}: add a link that joins the two sites", node.position)
