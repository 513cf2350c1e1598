"""The Teams SIP proxy on the sim network, with real mutual TLS, against small test peers.

The peers are bare `SipEndpoint`s (a fake SBC that sends OPTIONS and answers INVITEs as told, a
fake Teams client that REGISTERs and answers as told), so these tests depend on the proxy and the
endpoint only. Everything runs on the virtual clock: a 5-minute demotion window costs no wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from simulator.endpoint import SipEndpoint, SipFailure, Target, TlsConfig
from simulator.events import EventLog
from simulator.net import SimNetwork, run_sim
from simulator.net.tls import TlsPolicy
from simulator.roles.context import NodeSpec, RoleContext
from simulator.roles.settings import RoleSettings
from simulator.roles.teams_cloud import TeamsCloud
from simulator.roles.teams_proxy import TeamsProxy
from simulator.roles.token import Token
from simulator.sip import Request, Response
from simulator.sip.builders import make_request, new_branch, new_call_id, new_tag
from simulator.sip.sdp import PCMU, make_answer, make_offer
from simulator.sip.sdp import SessionDescription as Sdp
from simulator.sip.transaction import TimerSettings
from simulator.tenant.model import (
    Gateway,
    SbaPolicy,
    SurvivableBranchAppliance,
    Tenant,
    TranslationRule,
    User,
    VoiceRoute,
    VoiceRoutingPolicy,
)

SIP, SIP2, SIP3 = "sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com"
PROXIES = (SIP, SIP2, SIP3)
SBC1, SBC2 = "sbc1.contoso.com", "sbc2.contoso.com"
SBA = "sba1.contoso.com"
ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
NUMBERS = {ALICE: "+14255550101", BOB: "+14255550102", CAROL: "+12065550201"}


def make_tenant(**gateway_changes: dict[str, Any]) -> Tenant:
    """Two SBCs: route Primary (sbc1) then Backup (sbc2) for +1 numbers; alice, bob, carol."""
    t = Tenant(usages=("US",))
    t.add("translation_rule", TranslationRule("AddPlus1", r"^(\d{10})$", "+1$1"))
    t.add("translation_rule", TranslationRule("StripPlus1", r"^\+1(\d{10})$", "$1"))
    gateways = {
        SBC1: Gateway(SBC1, 5061, enabled=True, inbound_teams_number_translation_rules=("AddPlus1",)),
        SBC2: Gateway(SBC2, 5061, enabled=True, outbound_pstn_number_translation_rules=("StripPlus1",)),
    }
    for fqdn, changes in gateway_changes.items():
        gateways[fqdn] = replace(gateways[fqdn], **changes)
    for gw in gateways.values():
        t.add("gateway", gw)
    t.add("voice_route", VoiceRoute("Primary", r"^\+1", (SBC1,), ("US",), priority=1))
    t.add("voice_route", VoiceRoute("Backup", r"^\+1", (SBC2,), ("US",), priority=2))
    t.add("voice_routing_policy", VoiceRoutingPolicy("US", ("US",)))
    t.add("sba", SurvivableBranchAppliance(SBA, None))
    t.add("sba_policy", SbaPolicy("SEA", (SBA,)))
    for upn, number in NUMBERS.items():
        t.add("user", User(upn, number, "DirectRouting", True, voice_routing_policy="US",
                           sba_policy="SEA" if upn == CAROL else None))
    return t


def sdp_offer(address: str) -> bytes:
    return make_offer(address, 40000, [PCMU]).to_bytes()


def sdp_answer(offer: bytes, address: str) -> bytes:
    return make_answer(Sdp.parse(offer), address, 41000, [PCMU]).to_bytes()


class Peer:
    """A test peer: a SipEndpoint plus what it received and how it answers INVITEs."""

    def __init__(self, world: World, fqdn: str, ep: SipEndpoint) -> None:
        self.world, self.fqdn, self.ep = world, fqdn, ep
        self.requests: list[Request] = []
        self.invite_handler: Callable[[Any], Any] | None = None
        ep.on_request = self._on_request

    async def _on_request(self, incoming: Any) -> None:
        req = incoming.request
        self.requests.append(req)
        if req.method == "INVITE" and req.to.tag is None and self.invite_handler is not None:
            await self.invite_handler(incoming)
        elif req.method == "INVITE":
            incoming.respond(200, contact=f"<sip:{self.fqdn}:5061;transport=tls>", body=req.body,
                             content_type="application/sdp")
        else:
            incoming.respond(200)

    def received(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]

    def request(self, method: str, uri: str, target: Target, *, from_user: str | None = None,
                to: str | None = None, headers: list[tuple[str, str]] = (), body: bytes = b"",
                content_type: str | None = None, contact: str | None = None) -> Any:
        who = f"{from_user}@" if from_user else ""
        req = make_request(method, uri, from_=f"<sip:{who}{self.fqdn}>;tag={new_tag(self.ep.rng)}",
                           to=to or f"<{uri}>", call_id=new_call_id(self.ep.rng, self.fqdn), cseq=1,
                           via=f"SIP/2.0/TLS {self.fqdn};branch={new_branch(self.ep.rng)}",
                           contact=contact if contact is not None else f"<sip:{who}{self.fqdn}:5061;transport=tls>",
                           extra_headers=list(headers), body=body, content_type=content_type)
        return self.ep.request(req, target)


class World:
    def __init__(self, pki: Any, tenant: Tenant, settings: RoleSettings, datacenters: bool = False) -> None:
        """One cloud site beside the LAN; or, with `datacenters`, each proxy in its own site with its
        own link to the LAN (`wan-sip`, `wan-sip2`, `wan-sip3`) and the clients in an office reaching sip."""
        self.net = SimNetwork(seed=7)
        self.events: EventLog = self.net.events
        if datacenters:
            for fqdn in PROXIES:
                name = fqdn.split(".")[0]
                self.net.add_link(f"wan-{name}", "lan", f"dc-{name}")
                self.net.add_host(fqdn, site=f"dc-{name}")
            self.net.add_link("office", "clients", "dc-sip")
        else:
            self.net.add_link("wan", "lan", "cloud")
            for fqdn in PROXIES:
                self.net.add_host(fqdn, site="cloud")
        for fqdn in (SBC1, SBC2, SBA):
            self.net.add_host(fqdn, site="lan")
        for fqdn in ("alice-pc.contoso.com", "bob-pc.contoso.com", "bob-phone.contoso.com", "carol-pc.contoso.com"):
            self.net.add_host(fqdn, site="clients" if datacenters else "lan")
        self.pki = pki
        identities = {fqdn: pki.identity(fqdn) for fqdn in (*PROXIES, SBC1, SBC2, SBA)}
        self.ctx = RoleContext(self.net, self.events, settings, tenant, identities, str(pki.ca_path), seed=7)
        self.proxies: dict[str, TeamsProxy] = {}

    @property
    def cloud(self) -> TeamsCloud:
        return TeamsCloud.of(self.ctx)

    @property
    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def start(self, *fqdns: str) -> None:
        for fqdn in fqdns or PROXIES:
            proxy = TeamsProxy(self.ctx, NodeSpec(fqdn.split(".")[0], fqdn, "teams_proxy"))
            await proxy.start()
            self.proxies[fqdn] = proxy

    def endpoint(self, fqdn: str, node: str, tls: TlsConfig) -> SipEndpoint:
        return SipEndpoint(self.net, host=fqdn, node=node, rng=self.ctx.rng_for(node),
                           timers=TimerSettings(), events=self.events, tls=tls)

    async def sbc(self, fqdn: str = SBC1, identity: Any = None) -> Peer:
        tls = TlsConfig(identity=identity or self.pki.identity(fqdn), trust=str(self.pki.ca_path),
                        policy=TlsPolicy.direct_routing(), require_client_cert=True)
        ep = self.endpoint(fqdn, fqdn.split(".")[0], tls)
        await ep.listen("tls", 5061, tls=tls)
        return Peer(self, fqdn, ep)

    async def client(self, upn: str, host: str | None = None) -> Client:
        host = host or f"{upn.split('@')[0]}-pc.contoso.com"
        ep = self.endpoint(host, host.split(".")[0], TlsConfig(trust=str(self.pki.ca_path), policy=TlsPolicy.pstn()))
        return Client(self, host, ep, upn)

    def names(self, prefix: str = "", **match: Any) -> list[str]:
        return [r["event"] for r in self.events.select(prefix, **match)]


class Client(Peer):
    def __init__(self, world: World, fqdn: str, ep: SipEndpoint, upn: str) -> None:
        super().__init__(world, fqdn, ep)
        self.upn = upn

    def target(self, proxy: str = SIP) -> Target:
        return Target(proxy, 443, "tls")

    def token(self, lifetime: float = 3600.0, now: float | None = None) -> str:
        now = self.world.now if now is None else now
        return Token.issue(self.upn, now, lifetime).header()

    async def register(self, proxy: str = SIP, *, token: str | None = "default", expires: int = 600) -> Response:
        headers = [("Expires", str(expires))]
        if token is not None:
            headers.append(("Authorization", self.token() if token == "default" else token))
        return await self.request("REGISTER", "sip:contoso.com", self.target(proxy), to=f"<sip:{self.upn}>",
                                  headers=headers, contact=f"<sip:{self.upn.split('@')[0]}@{self.fqdn};transport=tls>",
                                  ).final()

    def call(self, dial: str, proxy: str = SIP, on_provisional: Any = None) -> Any:
        req = make_request("INVITE", f"sip:{dial}@contoso.com;user=phone", from_=f"<sip:{self.upn}>;tag={new_tag(self.ep.rng)}",
                           to=f"<sip:{dial}@contoso.com;user=phone>", call_id=new_call_id(self.ep.rng, self.fqdn),
                           cseq=1, via=f"SIP/2.0/TLS {self.fqdn};branch={new_branch(self.ep.rng)}",
                           contact=f"<sip:{self.upn.split('@')[0]}@{self.fqdn};transport=tls>",
                           body=sdp_offer(self.world.net.resolve(self.fqdn)), content_type="application/sdp")
        return self.ep.request(req, self.target(proxy), on_provisional=on_provisional)


def sim(pki: Any, body: Callable[[World], Any], *, tenant: Tenant | None = None, datacenters: bool = False,
        **settings: Any) -> Any:
    async def main() -> Any:
        world = World(pki, tenant or make_tenant(), RoleSettings.from_overrides(settings), datacenters)
        try:
            return await body(world)
        finally:
            for proxy in world.proxies.values():
                await proxy.stop()
    return run_sim(main)


def options_to(sbc: Peer, proxy: str = SIP, contact: str | None = None) -> Any:
    return sbc.request("OPTIONS", f"sip:{proxy}:5061", Target(proxy, 5061, "tls"), contact=contact).final()


def health_states(world: World, gateway: str = SBC1) -> list[str]:
    return [r["state"] for r in world.events.select("gateway.health", gateway=gateway)]


# --- OPTIONS and gateway health -------------------------------------------------------------------------

def test_options_answered_and_proxy_starts_its_own_only_after_receiving_one(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        await asyncio.sleep(120)
        assert sbc.received("OPTIONS") == []  # [S2]: the proxy waits for the SBC's OPTIONS
        resp = await options_to(sbc)
        assert resp.status == 200
        await asyncio.sleep(1)
        probes = sbc.received("OPTIONS")
        assert len(probes) == 1 and probes[0].uri_text == f"sip:{SBC1}:5061;transport=tls"
        await asyncio.sleep(60)
        assert len(sbc.received("OPTIONS")) == 2  # every proxy_options_interval_s
        assert health_states(w) == ["inactive", "active"]

    sim(pki, body)


def test_gateway_demoted_after_demotion_window_without_options_then_active_again(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        assert (await options_to(sbc)).status == 200
        t0 = w.now
        await asyncio.sleep(179)
        assert health_states(w) == ["inactive", "active"]
        await asyncio.sleep(2)
        [demoted] = w.events.select("gateway.health", gateway=SBC1, state="demoted")
        assert demoted["t"] == pytest.approx(t0 + 180, abs=0.5)  # demotion_window_s=180, as [S6]
        await options_to(sbc)
        assert health_states(w) == ["inactive", "active", "demoted", "active"]

    sim(pki, body, demotion_window_s=180)


@pytest.mark.parametrize("contact, status, why", [
    ("<sip:192.0.2.99:5061;transport=tls>", 403, "IP address"),
    (f"<sip:{SBC2}:5061;transport=tls>", 403, "does not name the Contact FQDN"),
    ("<sip:sbc9.contoso.com:5061;transport=tls>", 403, "does not name"),
])
def test_contact_refusals(pki, contact, status, why):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        resp = await options_to(sbc, contact=contact)
        assert resp.status == status
        [refused] = w.events.select("gateway.refused")
        assert why in refused["reason"]
        assert health_states(w) == ["inactive"]  # no OPTIONS counted

    sim(pki, body)


def test_invite_whose_top_record_route_is_an_ip_address_is_refused_with_the_rule_named(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        resp = await sbc.request("INVITE", f"sip:4255550101@{SIP}:5061;user=phone", Target(SIP, 5061, "tls"),
                                 from_user="2065550199", body=sdp_offer("10.0.0.5"), content_type="application/sdp",
                                 headers=[("Record-Route", "<sip:192.0.2.10:5061;transport=tls;lr>")]).final()
        assert resp.status == 403  # [S2]: an IP address in Record-Route fails the certificate check
        [refused] = w.events.select("gateway.refused")
        assert (refused["rule"], refused["method"], refused["contact"]) == ("record_route", "INVITE", SBC1)
        assert "192.0.2.10" in refused["reason"]

    sim(pki, body)


@pytest.mark.parametrize("failure, why", [
    ("no listener", "connect.refused"),  # the Contact names a port nothing listens on
    ("503", "answered 503"),
])
def test_proxy_options_the_gateway_does_not_answer_2xx_make_it_inactive_until_answered(pki, failure, why):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        answer = {"status": 503}

        async def on_request(incoming: Any) -> None:
            incoming.respond(answer["status"])
        if failure == "503":
            sbc.ep.on_request = on_request
        contact = f"<sip:{SBC1}:5099;transport=tls>" if failure == "no listener" else None
        assert (await options_to(sbc, contact=contact)).status == 200
        await asyncio.sleep(1)  # the proxy's first OPTIONS fails
        assert (await options_to(sbc, contact=contact)).status == 200  # the SBC goes on sending
        status = w.cloud.health.status(SBC1, w.now)
        assert status.health == "inactive" and why in status.reason  # [S10]: shown Inactive
        answer["status"] = 200
        await options_to(sbc)  # the right Contact again: the next proxy OPTIONS is answered
        await asyncio.sleep(60)  # proxy_options_interval_s
        assert health_states(w) == ["inactive", "active", "inactive", "active"]

    sim(pki, body)


def test_certificate_of_an_unpaired_fqdn_is_refused_at_tls_level(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc(SBC1, identity=pki.broken("wrong-san", SBC1))  # SAN: wrong-sbc1.contoso.com
        with pytest.raises(SipFailure):
            await options_to(sbc)
        [refusal] = w.events.select("tls.name_mismatch", node="sip")
        assert "wrong-sbc1.contoso.com" in refusal["certificate"]

    sim(pki, body)


def test_restart_keeps_the_clouds_health_and_listens_again(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc = await w.sbc()
        assert (await options_to(sbc)).status == 200
        await w.proxies[SIP].restart()
        await asyncio.sleep(1)  # the SBC learns its old connection is gone
        assert (await options_to(sbc)).status == 200  # a new connection to the restarted host
        assert health_states(w) == ["inactive", "active"]  # one service: health survived the restart

    sim(pki, body)


def test_missing_certificate_is_a_clear_start_error(pki):
    async def body(w: World) -> None:
        del w.ctx.identities[SIP]
        with pytest.raises(ValueError, match="no certificate for sip.pstnhub.microsoft.com"):
            await w.start(SIP)

    sim(pki, body)
