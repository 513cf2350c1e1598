"""Test worlds for the Teams client and the SBA.

- `World`/`Run`/`start`: a tiny world that answers a ClientConnectivity's actions, for table
  tests of the sans-I/O machine in virtual time.
- `branch_world(pki, ...)`: the same outage on the sim network with real TLS SIP — a test cloud
  (sip, sip2, sip3 on SipEndpoints, a shared TeamsCloud for sync and CDRs), a fake branch SBC,
  the real `Sba` and `TeamsClient`s, joined by the cuttable link `wan-seattle` (and `dc-sip*`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.endpoint import Target, TlsConfig
from simulator.events import EventLog
from simulator.net import SimNetwork
from simulator.roles import client_state as cs
from simulator.roles.context import NodeSpec, RoleContext, Topology
from simulator.roles.sba import Sba
from simulator.roles.settings import RoleSettings
from simulator.roles.teams_client import TeamsClient
from simulator.roles.teams_cloud import TeamsCloud
from simulator.sip.builders import make_request, new_branch, new_call_id, new_tag
from simulator.sip.dialog import Dialog
from simulator.sip.sdp import PCMA, PCMU, SessionDescription, make_answer, make_offer
from simulator.tenant.yaml_loader import parse_yaml
from tests.support.pki import TEST_FQDNS


@dataclass
class World:
    cloud_down: list[tuple[float, float]] = field(default_factory=list)  # [start, end) intervals
    sba_down: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    token_service_down: bool = False
    sba_refuses: Callable[[str, float], str | None] = lambda sba, t: None

    def cloud_up(self, t: float) -> bool:
        return not any(a <= t < b for a, b in self.cloud_down)

    def sba_up(self, sba: str, t: float) -> bool:
        return not any(a <= t < b for a, b in self.sba_down.get(sba, []))

    def answer(self, action: cs.Output, t: float) -> cs.Observation | None:
        match action:
            case cs.SendKeepalive() | cs.ProbeCloud():
                return cs.KeepaliveOk() if self.cloud_up(t) else cs.KeepaliveFailed("connection reset")
            case cs.RenewToken():
                return cs.TokenRenewed() if self.cloud_up(t) and not self.token_service_down else None
            case cs.CheckInAtSba(sba=sba) | cs.ProbeSba(sba=sba):
                return cs.SbaProbeOk(sba) if self.sba_up(sba, t) else cs.SbaProbeFailed(sba, "unreachable")
            case cs.RegisterAtSba(sba=sba):
                if not self.sba_up(sba, t):
                    return None  # silence: the machine's own timeout handles it
                refusal = self.sba_refuses(sba, t)
                return cs.SbaRegistrationRefused(sba, refusal) if refusal else cs.SbaRegistered(sba)
        return None


@dataclass
class Run:
    client: cs.ClientConnectivity
    world: World
    outputs: list[tuple[float, cs.Output]] = field(default_factory=list)

    def _feed(self, produced: list[cs.Output], t: float) -> None:
        queue = list(produced)
        while queue:
            out = queue.pop(0)
            self.outputs.append((t, out))
            answer = self.world.answer(out, t)
            if answer is not None:
                new = self.client.handle(answer, t)
                queue.extend(new)

    def until(self, t_end: float) -> None:
        while True:
            deadline = self.client.next_deadline()
            if deadline is None or deadline > t_end:
                break
            self._feed(self.client.handle_timer(deadline), deadline)
        self.client.now = max(self.client.now, t_end)

    def observe(self, t: float, observation: cs.Observation) -> None:
        self.until(t)
        self._feed(self.client.handle(observation, t), t)

    def states(self) -> list[tuple[float, str]]:
        return [(t, str(o.new)) for t, o in self.outputs if isinstance(o, cs.StateChanged)]

    def of(self, kind: type) -> list[tuple[float, cs.Output]]:
        return [(t, o) for t, o in self.outputs if isinstance(o, kind)]


def start(world: World, sba_policy=("sba1.contoso.com",), settings: RoleSettings | None = None, at: float = 0.0) -> Run:
    client = cs.ClientConnectivity("alice@contoso.com", sba_policy=tuple(sba_policy),
                                   settings=settings or RoleSettings(), now=at)
    return Run(client, world)


# --- the network world: a branch, a small test cloud, a fake SBC, real TLS on the sim network ---
# (tests/roles/test_teams_client*.py and test_sba*.py build on it)

SEA_TENANT = r"""
pstn_usages: [Branch]
gateways:
  - {fqdn: sbc1.contoso.com, sip_signaling_port: 5061, enabled: true}
voice_routes:
  - {name: Plus1, number_pattern: '^\+1(\d{10})$', online_pstn_gateway_list: [sbc1.contoso.com],
     online_pstn_usages: [Branch]}
voice_routing_policies:
  - {name: Branch, online_pstn_usages: [Branch]}
dial_plans:
  - name: Branch
    normalization_rules:
      - {name: Ext, pattern: '^(\d{4})$', translation: '+1206555$1', is_internal_extension: true}
      - {name: TenDigit, pattern: '^(\d{10})$', translation: '+1$1'}
emergency_call_routing_policies:
  - name: Global
    emergency_numbers:
      - {dial_string: '911', online_pstn_usage: Branch}
sbas:
  - {fqdn: sba1.contoso.com}
sba_policies:
  - {name: SEA, branch_appliance_fqdns: [sba1.contoso.com]}
users:
  - {upn: carol@contoso.com, phone_number: '+12065550201', voice_routing_policy: Branch, dial_plan: Branch,
     sba_policy: SEA, enterprise_voice_enabled: true}
  - {upn: dave@contoso.com, phone_number: '+12065550202', voice_routing_policy: Branch, dial_plan: Branch,
     sba_policy: SEA, enterprise_voice_enabled: true}
  - {upn: erin@contoso.com, phone_number: '+12065550203', voice_routing_policy: Branch, dial_plan: Branch,
     sba_policy: SEA, enterprise_voice_enabled: true, unanswered_target: '+14255550199',
     unanswered_delay_seconds: 10}
  - {upn: frank@contoso.com, phone_number: '+12065550204', voice_routing_policy: Branch, dial_plan: Branch,
     sba_policy: SEA, enterprise_voice_enabled: true, forwarding_target: dave@contoso.com}
"""

SBA = "sba1.contoso.com"
SBC = "sbc1.contoso.com"
PROXIES = ("sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com")
CLIENT_HOSTS = {"carol@contoso.com": "carol-pc.contoso.com", "dave@contoso.com": "dave-pc.contoso.com",
                "erin@contoso.com": "erin-pc.contoso.com", "frank@contoso.com": "frank-pc.contoso.com"}


def _sdp_answer(request, address: str) -> bytes:
    if not request.body:
        return b""
    return make_answer(SessionDescription.parse(request.body), address, 40000, [PCMU, PCMA]).to_bytes()


class FarEnd:
    """A tiny UAS on one SipEndpoint: answers INVITEs per number, records every request it gets.

    `answers[number]` = ("answer", after_s) | ("busy",) | ("unavailable",) (503) | ("ring",); the
    default answers after 1 s."""

    def __init__(self, ep, address: str) -> None:
        self.ep, self.address = ep, address
        self.requests: list = []  # (method, request, source)
        self.answers: dict[str, tuple] = {}
        self.dialogs: dict[str, object] = {}

    def invites(self):
        return [r for m, r, _ in self.requests if m == "INVITE" and r.to.tag is None]

    def received(self, method: str):
        return [r for m, r, _ in self.requests if m == method]

    async def handle(self, incoming) -> bool:
        request = incoming.request
        self.requests.append((request.method, request, incoming.source))
        if request.method == "INVITE" and request.to.tag is None:
            number = request.uri.user if getattr(request.uri, "user", None) else str(request.uri)
            how = self.answers.get(number, ("answer", 1.0))
            tag = new_tag(self.ep.rng) if hasattr(self.ep, "rng") else "fartag"
            if how[0] in ("busy", "unavailable"):
                incoming.respond(486 if how[0] == "busy" else 503, to_tag=tag)
                return True
            incoming.respond(180, to_tag=tag)
            if how[0] == "ring":
                return True
            await asyncio.sleep(how[1])
            if getattr(incoming, "cancelled", False):
                return True
            incoming.respond(200, to_tag=tag, body=_sdp_answer(request, self.address),
                             headers=[("Contact", f"<sip:{number}@{self.address}:5061;transport=tls>"),
                                      ("Content-Type", "application/sdp")])
            return True
        if request.method == "INVITE":
            incoming.respond(200, body=_sdp_answer(request, self.address),
                             headers=[("Contact", f"<sip:far@{self.address}:5061;transport=tls>"),
                                      ("Content-Type", "application/sdp")])
            return True
        if request.method in ("BYE", "OPTIONS", "REGISTER"):
            incoming.respond(200)
            return True
        return request.method == "ACK"


class TestCloud:
    """sip, sip2 and sip3 on TLS 443 (server certificate only), one shared TeamsCloud behind them:
    REGISTER and OPTIONS answered 200 (registrations recorded), the SBA sync and CDR upload served
    by TeamsCloud, INVITEs from clients answered by a FarEnd (the cloud's side of a PSTN call)."""

    def __init__(self, ctx, pki) -> None:
        self.ctx, self.pki = ctx, pki
        self.state = TeamsCloud(ctx.tenant, ctx.settings)
        self.endpoints: dict[str, object] = {}
        self.far: dict[str, FarEnd] = {}
        self.registrations: list[tuple[str, str, float]] = []  # (upn, proxy, expires)
        self.swallow_cdr_answers = 0  # process an upload but send no answer (a lost 200)
        self.syncs: list[str] = []
        self.cdr_uploads = 0

    async def start(self) -> None:
        for proxy in self.ctx.topology.proxies:
            ep = self.ctx.endpoint(_spec(proxy.split(".")[0], proxy, "teams_proxy"))
            far = FarEnd(ep, self.ctx.network.resolve(proxy))
            self.endpoints[proxy], self.far[proxy] = ep, far
            ep.on_request = self._handler(proxy, far)
            await ep.listen("tls", self.ctx.topology.proxy_client_port,
                            tls=TlsConfig(identity=self.pki.identity(proxy), trust=str(self.pki.ca_path),
                                          require_client_cert=False))

    def _handler(self, proxy: str, far: FarEnd):
        async def handle(incoming) -> None:
            request = incoming.request
            if request.method == "REGISTER":
                expires = int(request.headers.get("Expires") or 3600)
                self.registrations.append((str(request.to.uri), proxy, expires))
                incoming.respond(200, headers=[("Expires", str(expires))])
            elif request.method == "MESSAGE" and request.uri.user == "sba-sync":
                tls = incoming.source.tls
                reply = self.state.sync_reply(request.body, tls.dns_names if tls and tls.certificate else None)
                self.syncs.append(proxy)
                incoming.respond(reply.status, reply.reason, body=reply.body,
                                 headers=[("Content-Type", reply.content_type)] if reply.body else [])
            elif request.method == "MESSAGE" and request.uri.user == "sba-cdr":
                reply = self.state.cdr_upload(request.body, uploader=SBA)
                self.cdr_uploads += 1
                if self.swallow_cdr_answers > 0:
                    self.swallow_cdr_answers -= 1
                    return
                incoming.respond(reply.status, reply.reason, body=reply.body,
                                 headers=[("Content-Type", reply.content_type)] if reply.body else [])
            else:
                await far.handle(incoming)
        return handle

    def invites(self):
        return [r for far in self.far.values() for r in far.invites()]


class FakeSbc:
    """The branch SBC's SBA side: mutual TLS on 5061; answers the SBA's INVITEs as the PSTN would,
    and calls into the SBA (PSTN -> Teams during an outage)."""

    def __init__(self, ctx, pki) -> None:
        self.ctx, self.pki = ctx, pki
        self.ep = None
        self.far: FarEnd | None = None

    async def start(self) -> None:
        self.ep = self.ctx.endpoint(_spec("sbc", SBC, "sbc"))
        self.far = FarEnd(self.ep, self.ctx.network.resolve(SBC))
        self.ep.on_request = self.far.handle
        await self.ep.listen("tls", 5061, tls=TlsConfig(identity=self.pki.identity(SBC), trust=str(self.pki.ca_path),
                                                         require_client_cert=True))

    def target(self):
        return Target(SBA, 5061, "tls", tls_name=SBA,
                      tls=TlsConfig(identity=self.pki.identity(SBC), trust=str(self.pki.ca_path)))

    async def call(self, number: str, caller: str = "+14255550123"):
        """INVITE the SBA for `number`; returns (final response, dialog or None)."""

        rng = self.ctx.rng_for("fake-sbc")
        address = self.ctx.network.resolve(SBC)
        offer = make_offer(address, 41000, [PCMU, PCMA])
        invite = make_request(
            "INVITE", f"sip:{number}@{SBA}:5061;user=phone;transport=tls",
            from_=f"<sip:{caller}@{SBC};user=phone>;tag={new_tag(rng)}", to=f"<sip:{number}@{SBA};user=phone>",
            call_id=new_call_id(rng, SBC), cseq=1, via=f"SIP/2.0/TLS {SBC};branch={new_branch(rng)}",
            contact=f"<sip:{caller}@{SBC}:5061;transport=tls>", body=offer.to_bytes(), content_type="application/sdp")
        response = await self.ep.request(invite, self.target()).final()
        dialog = None
        if 200 <= response.status < 300:
            dialog = Dialog.from_uac_response(invite, response, local_contact=f"<sip:{SBC}:5061;transport=tls>",
                                              sent_by=SBC, transport="TLS")
            dialog.local_sdp = offer
            self.ep.send_ack(dialog.create_ack(1, rng), self.target())
        return response, dialog

    async def bye(self, dialog) -> int:
        bye = dialog.create_request("BYE", self.ctx.rng_for("fake-sbc"))
        return (await self.ep.request(bye, self.target()).final()).status


def _spec(name: str, fqdn: str, role: str, **options):
    return NodeSpec(name, fqdn, role, options=options)


@dataclass
class Branch:
    """What `branch_world` built: the network, the event log, the roles."""

    net: object
    events: object
    ctx: object
    cloud: TestCloud
    sbc: FakeSbc
    sba: object
    clients: dict

    def link(self, name: str = "wan-seattle"):
        return self.net.link(name)

    def states(self, upn: str) -> list[tuple[float, str, str | None]]:
        return [(e["t"], e["state"], e["registrar"]) for e in self.events.select("client.state", user=upn)]


async def branch_world(pki, *, settings: RoleSettings | None = None, users=("carol@contoso.com",),
                       start_sba: bool = True, seed: int = 1, tenant_text: str = SEA_TENANT) -> Branch:
    """The Seattle branch (SBA, SBC, clients) and the cloud (sip, sip2, sip3) joined by `wan-seattle`.

    Started: the test cloud, the fake SBC, the SBA (unless `start_sba=False`), one client per UPN."""

    loop = asyncio.get_running_loop()
    events = EventLog(loop.time)
    net = SimNetwork(seed=seed, events=events)
    # the branch reaches the internet over wan-seattle; each proxy sits in its own datacenter
    # behind its own link (dc-sip, dc-sip2, dc-sip3), so one proxy can be cut alone
    net.add_link("wan-seattle", "seattle", "internet", latency=0.01)
    for proxy in PROXIES:
        name = proxy.split(".")[0]
        net.add_link(f"dc-{name}", "internet", f"dc-{name}", latency=0.005)
        net.add_host(proxy, site=f"dc-{name}")
    for host in (SBA, SBC, *CLIENT_HOSTS.values()):
        net.add_host(host, site="seattle")
    ctx = RoleContext(network=net, events=events, settings=settings or RoleSettings(),
                      tenant=parse_yaml(tenant_text), identities={f: pki.identity(f) for f in TEST_FQDNS},
                      trust=str(pki.ca_path), topology=Topology(sba_sbc={SBA: SBC}, client_hosts=CLIENT_HOSTS),
                      seed=seed)
    cloud = TestCloud(ctx, pki)
    await cloud.start()
    sbc = FakeSbc(ctx, pki)
    await sbc.start()
    sba = Sba(ctx, _spec("sba-sea", SBA, "sba"))
    if start_sba:
        await sba.start()
    clients = {}
    for upn in users:
        client = TeamsClient(ctx, _spec(upn.split("@")[0], CLIENT_HOSTS[upn], "teams_client", upn=upn))
        await client.start()
        clients[upn] = client
    return Branch(net, events, ctx, cloud, sbc, sba, clients)
