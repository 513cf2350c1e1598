"""`Lab`: a lab file + a tenant file -> a network, certificates, a RoleContext and running roles.

    lab = Lab.load("examples/labs/contoso.yaml", tenant="examples/contoso.yaml", network="sim",
                   seed=1, settings={"client_detection_s": 20}, certs_dir="certs/contoso")
    await lab.start()                 # proxies, PSTN, SBCs, SBAs, clients; then waits until settled
    lab.node("sbc-sea"); lab.client("carol@contoso.com"); lab.link("wan-seattle").down()
    lab.tenant (the cloud's live copy); lab.events (the one EventLog); await lab.stop()
    lab.now() (run seconds); lab.address_map() (node -> host, address, SIP address:port per transport)
    async with Lab.load(...) as lab: ...          # start() on entry, stop() on exit

What `load` builds, in order:
1. the lab spec (`spec.load_lab_spec`; errors at FILE:LINE:COL);
2. the tenant (`simulator.tenant.cli.load_tenant`, .yaml, .ps1 or an export folder), or a `Tenant` given as is;
3. the network: `SimNetwork(seed)` with the file's sites, links and hosts, or `RealNetwork`, where
   hosts get addresses from a free loopback block (or `address_block`; the file's addresses are
   for the sim network and the tenant's subnets; a `routed` real network, the Docker lab's, uses
   them) and links are added only if that network supports them (else `lab.links_unsupported`);
4. the PKI in `certs_dir` (default `certs/<lab name>`): a good certificate for every host that
   presents one (teams_proxy, sbc, sba nodes), the host's broken variant instead where the file
   says `certificate: {variant: ...}`; idempotent, so a second run reuses the files;
5. settings: defaults, then the file's `settings:`, then `settings=` (the caller wins), then on the
   real network divided by `time_scale` (simulator.lab.timescale); events are timed by a RunClock:
   run seconds since the lab was built, in the scenario's units, on either network;
6. `RoleContext` with a `Topology` derived from the nodes, then `RoleClass(context, NodeSpec)` per node.

"Settled" (what `start()` waits for, bounded by `settle_timeout_s` of run time): every client
has reported `client.state` online, every SBA a successful `sba.sync`, and every role that has a
`settled` attribute (the SBC: an OPTIONS answered by a proxy) says True. A lab that cannot settle
(a broken certificate on purpose) still starts: `start()` returns what it is still waiting for
and logs `lab.unsettled`; the scenario decides whether that is the point.

An external node (`external: true`: a carrier, or the SBC itself) gets no role object and is never
started: the real network maps its host name to the address the file gives and reaches it
directly, outside the links; only an external SBC's TLS connections are cut by a link going down
(simulator/net/real.py, `cut_by_links`); a `lab.external`
event says where it is; on the sim network such a lab is refused. An external SBC's host still
gets its certificates from the lab PKI (good, or the variant the host names) for the peer to load.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

from simulator.events import EventLog
from simulator.lab.spec import ROLES, LabError, LabSpec, load_lab_spec
from simulator.lab.timescale import RunClock, check_time_scale, link_delays, timed_settings
from simulator.roles.context import NodeSpec, RoleContext, Topology
from simulator.roles.settings import RoleSettings, SettingsError
from simulator.tenant.errors import TenantError
from simulator.tenant.model import Tenant

#: role name -> (module, class). Imported when a lab uses the role, so a lab without SBAs
#: does not need the SBA module.
ROLE_CLASSES: dict[str, tuple[str, str]] = {
    "teams_proxy": ("simulator.roles.teams_proxy", "TeamsProxy"),
    "pstn": ("simulator.roles.pstn", "Pstn"),
    "sbc": ("simulator.roles.sbc", "Sbc"),
    "sba": ("simulator.roles.sba", "Sba"),
    "teams_client": ("simulator.roles.teams_client", "TeamsClient"),
}
#: roles whose host presents a certificate (mutual TLS or a TLS server)
CERTIFICATE_ROLES = ("teams_proxy", "sbc", "sba")
DEFAULT_PSTN_PORT = 5060
SETTLE_POLL_S = 0.25


def role_class(role: str, overrides: dict[str, type] | None = None) -> type:
    if overrides and role in overrides:
        return overrides[role]
    module_name, class_name = ROLE_CLASSES[role]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise LabError(f"role {role!r} is not available: cannot import {module_name} ({err})") from None
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise LabError(f"role {role!r}: {module_name} has no class {class_name}") from None


class Lab:
    def __init__(self, spec: LabSpec, context: RoleContext, node_specs: dict[str, NodeSpec], pki: Any) -> None:
        self.spec = spec
        self.context = context
        self.node_specs = node_specs
        self.pki = pki
        self.started: list[str] = []

    # --- building ------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        lab_path: str | Path,
        *,
        tenant: str | Path | Tenant,
        network: str = "sim",
        seed: int = 0,
        settings: dict[str, Any] | None = None,
        certs_dir: str | Path | None = None,
        roles: dict[str, type] | None = None,
        address_block: str | None = None,
        time_scale: float = 1.0,
        join_block: bool = False,
        routed: bool = False,
    ) -> Lab:
        """Build a lab from its file (see the module docstring); `roles` replaces role classes by name;
        `address_block` ("127.0.0.0/24") places a real network's hosts, else it picks a free block;
        `time_scale` K (real network) runs every role-level timer K times faster (simulator.lab.timescale);
        `join_block`: the block is claimed by another process of the same lab (one node per process);
        `routed`: a real network at the file's addresses whose links a router realizes (the Docker lab)."""
        return cls.build(load_lab_spec(lab_path), tenant=tenant, network=network, seed=seed,
                         settings=settings, certs_dir=certs_dir, roles=roles, address_block=address_block,
                         time_scale=time_scale, join_block=join_block, routed=routed)

    @classmethod
    def build(
        cls,
        spec: LabSpec,
        *,
        tenant: str | Path | Tenant,
        network: str = "sim",
        seed: int = 0,
        settings: dict[str, Any] | None = None,
        certs_dir: str | Path | None = None,
        roles: dict[str, type] | None = None,
        address_block: str | None = None,
        time_scale: float = 1.0,
        join_block: bool = False,
        routed: bool = False,
    ) -> Lab:
        the_tenant = _tenant(tenant)
        _check_against_tenant(spec, the_tenant)
        role_settings = _settings(spec, settings, network, time_scale)
        net = _network(spec, network, seed, address_block, time_scale, join_block, routed)
        net.events.clock = RunClock(time_scale)  # every event's `t`: run seconds, in the scenario's units
        pki, identities = _certificates(spec, certs_dir)
        topology = _topology(spec)
        context = RoleContext(network=net, events=net.events, settings=role_settings, tenant=the_tenant,
                              identities=identities, trust=str(pki.ca_path), topology=topology, seed=seed)
        node_specs = {
            n.name: NodeSpec(n.name, n.host, n.role, spec.host(n.host).site, dict(n.options))
            for n in spec.nodes.values() if n.external is None
        }
        lab = cls(spec, context, node_specs, pki)
        for name, node_spec in node_specs.items():
            role_cls = role_class(node_spec.role, roles)
            try:
                context.nodes[name] = role_cls(context, node_spec)
            except (ValueError, KeyError) as err:
                raise LabError(f"node {name} ({node_spec.role}): {err}", spec.nodes[name].position) from None
        net.log.info("lab.built", lab=spec.name, network=net.kind, nodes=len(node_specs),
                     hosts=len(spec.hosts), links=len(spec.links))
        for n in spec.external_nodes():
            assert n.external is not None
            net.log.info("lab.external", node=n.name, host=n.host, address=n.external.address,
                         port=n.external.port, transport=n.external.transport)
        return lab

    # --- accessors -----------------------------------------------------------------------
    @property
    def events(self) -> EventLog:
        return self.context.events

    @property
    def tenant(self) -> Tenant:
        return self.context.tenant

    @property
    def network(self) -> Any:
        return self.context.network

    @property
    def settings(self) -> RoleSettings:
        return self.context.settings

    @property
    def nodes(self) -> dict[str, Any]:
        return self.context.nodes

    def node(self, name: str) -> Any:
        try:
            return self.context.nodes[name]
        except KeyError:
            decl = self.spec.nodes.get(name)
            if decl is not None and decl.external is not None:
                raise KeyError(f"node {name!r} is external: drlab does not run it (it is the peer at "
                               f"{decl.external.address}:{decl.external.port})") from None
            raise KeyError(f"no node {name!r}; nodes: {', '.join(self.context.nodes)}") from None

    def client(self, upn: str) -> Any:
        for name, spec in self.node_specs.items():
            if spec.role == "teams_client" and spec.options.get("user") == upn.lower():
                return self.context.nodes[name]
        users = [s.options.get("user") for s in self.node_specs.values() if s.role == "teams_client"]
        raise KeyError(f"no client for user {upn!r}; clients: {', '.join(map(str, users)) or 'none'}")

    def link(self, name: str) -> Any:
        if not hasattr(self.network, "link"):
            raise LabError(f"the {self.network.kind} network has no cuttable links (link {name!r})")
        return self.network.link(name)

    @property
    def clock(self) -> RunClock:
        return self.events.clock  # type: ignore[return-value]  # set by build()

    def now(self) -> float:
        """Seconds since the run began, in the scenario's units (times the time scale)."""
        return self.clock()

    def address_map(self) -> dict[str, dict[str, Any]]:
        """Node -> {"host": fqdn, "address": ip, "sip": {transport: "ip:port"}}: where each node
        listens for SIP (ports known once started; a node that only connects out has none)."""
        out: dict[str, dict[str, Any]] = {}
        for name, spec in self.node_specs.items():
            address = self.network.host(spec.fqdn).address
            ports: dict[str, int] = {}
            for endpoint in _endpoints(self.context.nodes[name]):
                ports.update(endpoint.listen_ports)
            out[name] = {"host": spec.fqdn, "address": address,
                         "sip": {transport: f"{address}:{port}" for transport, port in sorted(ports.items())}}
        return out

    # --- running -------------------------------------------------------------------------
    def start_order(self) -> list[str]:
        """Proxies, the PSTN, SBCs, SBAs, clients; file order within a role."""
        order = list(self.node_specs)
        return sorted(order, key=lambda n: (ROLES[self.node_specs[n].role], order.index(n)))

    async def start(self, *, settle: bool = True, settle_timeout_s: float = 120.0) -> list[str]:
        """Start every node in `start_order`; then (by default) wait until settled.

        Returns what is still unsettled (empty when settled). A node whose start raises stops
        the nodes already started and raises LabError naming it."""
        for name in self.start_order():
            role = self.context.nodes[name]
            try:
                await role.start()
            except Exception as err:
                self.events.logger().info("lab.start_failed", node=name, error=f"{type(err).__name__}: {err}")
                await self.stop()
                raise LabError(f"node {name} ({self.node_specs[name].role}) failed to start: "
                               f"{type(err).__name__}: {err}", self.spec.nodes[name].position) from err
            self.started.append(name)
        self.events.logger().info("lab.started", lab=self.spec.name, order=list(self.started))
        return await self.settle(settle_timeout_s) if settle else []

    def unsettled(self) -> list[str]:
        """What the lab is still waiting for ("client carol: offline", "sba sba1: no sync", ...)."""
        waiting = []
        last_state: dict[str, str] = {}
        synced: set[str] = set()
        for r in self.events.records:
            if r["event"] == "client.state":
                last_state[str(r.get("node"))] = str(r.get("state"))
            elif r["event"] == "sba.sync" and r.get("ok"):
                synced.add(str(r.get("node")))
        for name, spec in self.node_specs.items():
            role = self.context.nodes[name]
            if spec.role == "teams_client" and last_state.get(name) != "online":
                waiting.append(f"client {name}: {last_state.get(name, 'not signed in')}")
            elif spec.role == "sba" and name not in synced:
                waiting.append(f"sba {name}: no successful sync yet")
            settled = getattr(role, "settled", None)
            if isinstance(settled, bool) and not settled:
                waiting.append(f"{spec.role} {name}: not settled")
        return waiting

    async def settle(self, timeout_s: float = 120.0) -> list[str]:
        """Wait (run time, simulator.lab.timescale) until `unsettled()` is empty or `timeout_s` passed; return what is left."""
        began = self.now()
        while True:
            waiting = self.unsettled()
            if not waiting:
                self.events.logger().info("lab.settled", lab=self.spec.name, after_s=round(self.now() - began, 6))
                return []
            if self.now() - began >= timeout_s:
                self.events.logger().info("lab.unsettled", lab=self.spec.name, waiting=waiting)
                return waiting
            await asyncio.sleep(SETTLE_POLL_S)

    async def stop(self) -> None:
        """Stop the started nodes in reverse order, then close the network. Errors are logged, not raised."""
        for name in reversed(self.started):
            try:
                await self.context.nodes[name].stop()
            except Exception as err:
                self.events.logger().info("lab.stop_failed", node=name, error=f"{type(err).__name__}: {err}")
        self.started.clear()
        await self.network.close()
        self.events.logger().info("lab.stopped", lab=self.spec.name)

    async def __aenter__(self) -> Lab:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --- building blocks ------------------------------------------------------------------------------
def _tenant(tenant: str | Path | Tenant) -> Tenant:
    if isinstance(tenant, Tenant):
        return tenant
    from simulator.tenant.cli import load_tenant

    try:
        return load_tenant(str(tenant))
    except TenantError:
        raise
    except OSError as err:
        raise LabError(f"cannot read tenant file {tenant}: {err.strerror}") from None


def _check_against_tenant(spec: LabSpec, tenant: Tenant) -> None:
    for n in spec.nodes_with_role("teams_client"):
        if tenant.users.get(n.options["user"]) is None:
            raise LabError(f"node {n.name}: the tenant has no user {n.options['user']!r} "
                           f"(users: {', '.join(sorted(tenant.users)) or 'none'})", n.position)
    for n in spec.external_nodes():
        gateway = tenant.find("gateway", n.host) if n.role == "sbc" else None
        if gateway is not None and n.external is not None and n.external.port != gateway.sip_signaling_port:
            raise LabError(f"external node {n.name} listens on port {n.external.port}, but the tenant's gateway "
                           f"{gateway.fqdn} has SipSignalingPort {gateway.sip_signaling_port}, where the proxies "
                           f"send to it: make them equal", n.position)


def _settings(spec: LabSpec, overrides: dict[str, Any] | None, network: str, time_scale: float) -> RoleSettings:
    base = RoleSettings.from_overrides(spec.settings)  # each value was checked at its line already
    try:
        settings = RoleSettings.from_overrides(overrides or {}, base=base)
    except SettingsError as err:
        raise LabError(f"settings override: {err}") from None
    try:
        if network == "sim" and check_time_scale(time_scale) != 1:
            raise LabError("a time scale is for the real network: sim time is virtual already (watch with pace)")
        return timed_settings(settings, time_scale)
    except SettingsError as err:
        raise LabError(str(err)) from None


def _endpoints(role: Any) -> list[Any]:
    """The SIP endpoints a role holds (each role keeps its one under a name of its own)."""
    from simulator.endpoint import SipEndpoint

    return [value for value in vars(role).values() if isinstance(value, SipEndpoint)]


def _network(spec: LabSpec, kind: str, seed: int, address_block: str | None, time_scale: float,
             join_block: bool = False, routed: bool = False) -> Any:
    if kind == "sim":
        from simulator.net.sim import SimNetwork

        net: Any = SimNetwork(seed=seed)
    elif kind == "real":
        from simulator.net.real import RealNetwork

        try:  # link loss and jitter draws from `seed`, as on sim; addresses from a free block
            net = RealNetwork(seed=seed, block=address_block, join=join_block, routed=routed)
        except (ValueError, OSError) as err:
            raise LabError(f"real network: {err}") from None
    else:
        raise LabError(f"network must be 'sim' or 'real', not {kind!r}")
    links_supported = hasattr(net, "add_link")
    for site in spec.sites.values():
        if hasattr(net, "add_site"):
            net.add_site(site.name)
    if links_supported:
        for link in spec.links.values():
            try:
                net.add_link(link.name, link.a, link.b,
                             **link_delays({"latency": link.latency, "jitter": link.jitter, "loss": link.loss}, time_scale))
            except ValueError as err:
                raise LabError(str(err), link.position) from None
    elif spec.links:
        net.log.info("lab.links_unsupported", network=kind, links=list(spec.links))
    outside = {n.host.lower(): n for n in spec.external_nodes()}
    for host in spec.hosts.values():
        node = outside.get(host.name.lower())
        if node is not None and node.external is not None:
            if kind == "sim":
                raise LabError(f"node {node.name} is external: a peer outside drlab is reached over real sockets, "
                               f"so this lab runs on the real network only (--network real)", node.position)
            try:
                net.add_external(host.name, address=node.external.address, aliases=host.aliases, site=host.site,
                                 cut_by_links=node.role == "sbc")
            except ValueError as err:
                raise LabError(f"external node {node.name}: {err}", node.position) from None
            continue
        address = host.address if kind == "sim" or routed else None
        try:
            net.add_host(host.name, address=address, aliases=host.aliases, site=host.site)
        except ValueError as err:
            raise LabError(str(err), host.position) from None
    return net


def _certificates(spec: LabSpec, certs_dir: str | Path | None) -> tuple[Any, dict[str, Any]]:
    from simulator.pki import LabPki, PkiError

    directory = Path(certs_dir) if certs_dir is not None else Path("certs") / spec.name
    pki = LabPki(directory)
    presenting = {spec.host(n.host).name.lower() for n in spec.nodes.values() if n.role in CERTIFICATE_ROLES}
    presenting |= {h.name.lower() for h in spec.hosts.values() if h.certificate}
    try:
        identities: dict[str, Any] = dict(pki.ensure(sorted(presenting), variants=())) if presenting else {}
        for host in spec.hosts.values():
            if host.certificate:
                identities[host.name.lower()] = pki.broken(host.certificate, host.name)
    except PkiError as err:
        raise LabError(f"certificates in {directory}: {err}") from None
    if not presenting:
        pki.ensure(["ca.drlab.invalid"], variants=())  # trust anchor for clients even in a lab without servers
    return pki, identities


def _topology(spec: LabSpec) -> Topology:
    def fqdn(node_name: str) -> str:
        return spec.host(spec.nodes[node_name].host).name

    proxies = tuple(fqdn(n.name) for n in spec.nodes_with_role("teams_proxy"))
    sba_sbc, sbc_carrier, sbc_ports = {}, {}, {}
    for n in spec.nodes_with_role("sbc"):
        if "sba" in n.options:
            sba_sbc[fqdn(n.options["sba"])] = fqdn(n.name)
        if "carrier" in n.options:
            carrier = spec.nodes[n.options["carrier"]]
            if carrier.external is not None:
                port, transport = carrier.external.port, carrier.external.transport
            else:
                port, transport = carrier.options.get("port", DEFAULT_PSTN_PORT), carrier.options.get("transport", "udp")
            sbc_carrier[fqdn(n.name)] = (fqdn(carrier.name), port, n.options.get("carrier_transport", transport))
        sbc_ports[fqdn(n.name)] = n.options.get("pstn_port", DEFAULT_PSTN_PORT)
    defaults = Topology()
    return Topology(
        proxies=proxies or defaults.proxies,
        sba_sbc=sba_sbc,
        sbc_carrier=sbc_carrier,
        client_hosts={n.options["user"]: fqdn(n.name) for n in spec.nodes_with_role("teams_client")},
        sbc_pstn_ports=sbc_ports,
        node_hosts={n.name: fqdn(n.name) for n in spec.nodes.values()},
        host_sites={h.name: h.site for h in spec.hosts.values()},
    )
