"""Failover: the SBC between proxy datacenters, the proxy between gateways [S1][S2][S4][S5]."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.helpers import events, far_end_calls, received_by, run_contoso, wait_until

pytestmark = pytest.mark.e2e


def test_sip_blackholed_the_sbc_uses_sip2(lab_certs) -> None:
    async def scenario(lab) -> None:
        lab.link("dc-noam").blackhole()
        alice = lab.client("alice@contoso.com")
        # the client moves to sip2 on its own (its keepalives to sip go unanswered)
        assert await wait_until(lambda: alice.registrar == "sip2.pstnhub.microsoft.com", 60)
        sent_before = len(received_by(lab, "sip", "INVITE"))
        call = await lab.node("pstn-hq").call("4255550199", "4255550101", via="sbc1.contoso.com")
        assert (call.status, call.state) == (200, "answered")
        failover = events(lab, "sbc.failover", node="sbc1")
        assert failover and (failover[0]["from_"], failover[0]["to"]) == (
            "sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com")
        assert "no response within" in failover[0]["reason"]
        assert len(received_by(lab, "sip", "INVITE")) == sent_before  # nothing got through to sip
        assert received_by(lab, "sip2", "INVITE")[0]["summary"].startswith("INVITE sip:+14255550101@")
        assert events(lab, "sbc.proxy", node="sbc1", proxy="sip.pstnhub.microsoft.com", state="down")
        incoming = await asyncio.wait_for(alice.next_incoming_call(), 1)
        assert incoming.state == "answered" and incoming.registrar == "sip2.pstnhub.microsoft.com"
        await call.hangup()
        # once sip is known down, the next call goes to sip2 at once (no connect timeout to wait out)
        loop = asyncio.get_running_loop()
        began = loop.time()
        second = await lab.node("pstn-hq").call("4255550199", "4255550101", via="sbc1.contoso.com")
        assert second.status == 200 and len(received_by(lab, "sip2", "INVITE")) == 2
        assert loop.time() - began < lab.settings.sbc_connect_timeout_s
    run_contoso(lab_certs, scenario)


def test_gateway_failover_on_503(lab_certs) -> None:
    async def scenario(lab) -> None:
        for sbc in ("sbc1", "sbc2"):
            lab.node(sbc).max_sessions = 0  # out of licences: the SBC answers 503
        call = await lab.client("bob@contoso.com").place_call("4255550199")
        assert call.status == 200
        attempts = [(e["gateway"], e["outcome"], e.get("status")) for e in events(lab, "route.attempt")]
        assert {a[0] for a in attempts[:2]} == {"sbc1.contoso.com", "sbc2.contoso.com"}
        assert all(a[2] == 503 for a in attempts[:2]), attempts
        assert attempts[-1][:2] == ("sbc-sea.contoso.com", "answered")  # Redmond 2, the backup route
        [far] = far_end_calls(lab)
        assert (far.pstn.spec.name, far.callee, far.state) == ("pstn-sea", "4255550199", "answered")
    run_contoso(lab_certs, scenario)


def test_gateway_failover_on_failover_time_seconds(lab_certs) -> None:
    async def scenario(lab) -> None:
        lab.link("trunk-hq").blackhole()  # sbc1 and sbc2 get no answer from the carrier: only 100 Trying
        loop = asyncio.get_running_loop()
        began = loop.time()
        call = await lab.client("bob@contoso.com").place_call("4255550199")
        assert call.status == 200
        attempts = events(lab, "route.attempt")
        timed_out = {e["gateway"]: e for e in attempts if e["outcome"] != "answered"}
        assert set(timed_out) == {"sbc1.contoso.com", "sbc2.contoso.com"}
        # FailoverTimeSeconds: 10 s on sbc1 (default), 20 s on sbc2 (tenant file)
        assert attempts[-1]["gateway"] == "sbc-sea.contoso.com"
        spent = loop.time() - began
        assert 30 <= spent < 30 + 2 * lab.settings.pstn_answer_after_s + 1, spent
        [far] = far_end_calls(lab)
        assert far.pstn.spec.name == "pstn-sea" and far.state == "answered"
    run_contoso(lab_certs, scenario)
