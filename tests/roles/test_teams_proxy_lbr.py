"""Location-Based Routing at the Teams proxy [S21], on the sim network with real TLS: alice is
enabled for LBR and her endpoint is at Redmond, an LBR site whose SBC is sbc1; sbc2 is the LBR
SBC of another site. Through her own site's SBC a call completes, both ways; a call only the other
site's SBC could carry is refused (403, the text the Teams client shows) and never reaches it, and
an inbound call through it is not delivered to her endpoint."""

from __future__ import annotations

from dataclasses import replace

from simulator.tenant.model import NetworkSite, TeamsCallingPolicy, Tenant, VoiceRoute
from tests.roles.test_teams_proxy import ALICE, SBC1, SBC2, SIP, World, make_tenant, sim
from tests.roles.test_teams_proxy_calls import answers, attempts, cdrs, inbound, signed_in


def lbr_tenant() -> Tenant:
    t = make_tenant(**{SBC1: {"gateway_site_id": "Redmond", "gateway_site_lbr_enabled": True},
                       SBC2: {"gateway_site_id": "Seattle", "gateway_site_lbr_enabled": True}})
    for site in ("Redmond", "Seattle"):
        t.add("site", NetworkSite(site, enable_location_based_routing=True))
    t.add("teams_calling_policy", TeamsCallingPolicy("Toll Bypass", prevent_toll_bypass=True))
    t.usages = (*t.usages, "UK")
    t.add("voice_route", VoiceRoute("UK via Seattle", r"^\+44", (SBC2,), ("UK",), priority=3))
    t.add("voice_routing_policy", replace(t.find("voice_routing_policy", "US"), online_pstn_usages=("US", "UK")))
    t.add("user", replace(t.user(ALICE), network_site="Redmond", teams_calling_policy="Toll Bypass"))
    return t


def test_an_lbr_users_call_through_her_own_sites_gateway_completes(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1, sbc2 = await w.sbc(SBC1), await w.sbc(SBC2)
        sbc1.invite_handler = sbc2.invite_handler = answers(200)
        alice = await signed_in(w)
        assert (await alice.call("+12065550123").final()).status == 200
        assert attempts(w) == [(SBC1, "answered")]  # Backup (sbc2, another site) is left out
        [decision] = w.events.select("route.decision")
        assert decision["gateways"] == [SBC1]
        assert (decision["lbr"]["allowed"], decision["lbr"]["rule"]) == (True, "same-site")

    sim(pki, body, tenant=lbr_tenant())


def test_an_lbr_users_call_only_another_sites_gateway_could_carry_is_refused(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc2 = await w.sbc(SBC2)
        sbc2.invite_handler = answers(200)
        alice = await signed_in(w)
        resp = await alice.call("+442071234567").final()
        assert (resp.status, resp.reason) == (403, "Call not allowed due to your organization's settings")
        assert sbc2.received("INVITE") == [] and attempts(w) == []
        [cdr] = cdrs(w)
        assert cdr["result"]["ms_code"] == 599440
        [ended] = w.events.select("call.ended")
        assert "gateway-not-at-user-site" in ended["detail"]

    sim(pki, body, tenant=lbr_tenant())


def test_an_inbound_call_through_her_own_sites_gateway_rings_her(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc1 = await w.sbc(SBC1)
        alice = await signed_in(w)
        alice.invite_handler = answers(200)
        assert (await inbound(sbc1, "4255550101").final()).status == 200
        assert len(alice.received("INVITE")) == 1

    sim(pki, body, tenant=lbr_tenant())


def test_an_inbound_call_through_another_sites_gateway_is_not_delivered(pki):
    async def body(w: World) -> None:
        await w.start(SIP)
        sbc2 = await w.sbc(SBC2)
        alice = await signed_in(w)
        alice.invite_handler = answers(200)
        resp = await inbound(sbc2, "+14255550101").final()
        assert resp.status == 480
        assert alice.received("INVITE") == []
        assert cdrs(w)[0]["result"]["ms_code"] == 599441

    sim(pki, body, tenant=lbr_tenant())
