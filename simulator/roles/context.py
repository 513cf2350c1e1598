"""What every role is built from: the network, the event log, settings, certificates, the tenant.

The lab builder (simulator/lab) makes one `RoleContext` per lab and one `NodeSpec` per node,
then `RoleClass(context, spec)`; the role calls `await start()` and makes its own endpoint with
`context.endpoint(spec)`. Roles never read files or clocks: everything comes from here.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.endpoint import SipEndpoint, TransportLimits
from simulator.events import EventLog
from simulator.roles.settings import RoleSettings
from simulator.sip.transaction import TimerSettings

if TYPE_CHECKING:
    from simulator.net.base import Network
    from simulator.pki import Identity
    from simulator.tenant.model import Tenant


@dataclass(frozen=True)
class NodeSpec:
    """One node of the lab file: its name in events, its host FQDN, site, role and role options."""

    name: str
    fqdn: str
    role: str
    site: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    """Who is where, as the roles need to know it (from the lab file)."""

    proxies: tuple[str, ...] = ("sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com")
    proxy_sbc_port: int = 5061     # Direct Routing, mutual TLS
    proxy_client_port: int = 443   # Teams clients and SBA sync, server-auth TLS
    sba_port: int = 5061           # an SBA's registrar for clients, server-auth TLS
    #: SBA FQDN -> FQDN of the SBC it is co-located with (the branch trunk)
    sba_sbc: dict[str, str] = field(default_factory=dict)
    #: SBC FQDN -> (PSTN carrier FQDN, port, transport "udp"|"tcp")
    sbc_carrier: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    #: user UPN -> FQDN of the host the user's client runs on
    client_hosts: dict[str, str] = field(default_factory=dict)
    #: SBC FQDN -> port its PSTN trunk listens on (the carrier sends there; absent = 5060)
    sbc_pstn_ports: dict[str, int] = field(default_factory=dict)
    #: node name -> FQDN of its host, and host FQDN -> site (for roles that log or decide by them)
    node_hosts: dict[str, str] = field(default_factory=dict)
    host_sites: dict[str, str] = field(default_factory=dict)

    def sba_of_sbc(self, sbc: str) -> str | None:
        """The SBA co-located with SBC `sbc` (FQDNs), if any."""
        return next((sba for sba, s in self.sba_sbc.items() if s == sbc), None)

    def sbcs_of_carrier(self, carrier: str) -> list[str]:
        """The SBCs whose PSTN trunk goes to carrier host `carrier`, in lab-file order."""
        return [sbc for sbc, (host, _, _) in self.sbc_carrier.items() if host == carrier]

    def sbc_pstn_port(self, sbc: str) -> int:
        return self.sbc_pstn_ports.get(sbc, 5060)


@dataclass
class RoleContext:
    network: Network
    events: EventLog
    settings: RoleSettings
    tenant: Tenant                      # the cloud's live copy; `change` steps edit it
    identities: dict[str, Identity]     # FQDN -> certificate chain and key (lab PKI)
    trust: str                          # path of the lab root CA (ca.pem)
    topology: Topology = field(default_factory=Topology)
    seed: int = 0
    #: node name -> role object, filled by the lab as it builds (roles look each other up rarely:
    #: the Teams cloud's three proxies share one TeamsCloud state, nothing else is shared)
    nodes: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def rng_for(self, node: str) -> random.Random:
        """A per-node RNG derived from the lab seed, independent of start order."""
        return random.Random(self.seed * 1_000_003 + zlib.crc32(node.encode()))

    def logger(self, node: str) -> Any:
        return self.events.logger(node=node)

    def endpoint(self, spec: NodeSpec, *, relays_calls: bool = False) -> Any:
        """A SipEndpoint on this node's host, with the lab's timers and the node's RNG;
        `relays_calls` for a B2BUA (its endpoint answers INVITEs out of hops with 483)."""
        s = self.settings
        return SipEndpoint(self.network, host=spec.fqdn, node=spec.name, rng=self.rng_for(spec.name),
                           timers=TimerSettings(t1=s.sip_t1_s, t2=s.sip_t2_s, t4=s.sip_t4_s),
                           limits=TransportLimits(udp_receive_buffer_octets=s.udp_receive_buffer_bytes),
                           events=self.events, relays_calls=relays_calls)
