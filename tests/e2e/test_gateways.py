"""Gateways as the tenant and the certificates make them: wrong-SAN refusal, drain, session limit."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import change, events, far_end_calls, run_contoso
from tests.support.contoso import CONTOSO_LAB

pytestmark = pytest.mark.e2e


def test_wrong_san_sbc_certificate_is_refused_with_its_reason(lab_certs, tmp_path) -> None:
    lab_file = tmp_path / "wrong-san.yaml"
    lab_file.write_text(CONTOSO_LAB.read_text().replace(
        "{name: sbc1.contoso.com, site: hq, address: 10.10.0.11}",
        "{name: sbc1.contoso.com, site: hq, address: 10.10.0.11, certificate: {variant: wrong-san}}"))

    async def scenario(lab) -> None:
        assert lab.unsettled() == ["sbc sbc1: not settled"]
        refusals = [e for e in events(lab, "tls.name_mismatch") if e.get("side") == "server"]
        assert refusals and all(e["certificate"] == ["wrong-sbc1.contoso.com"] for e in refusals)
        assert {e["node"] for e in refusals} >= {"sip"}
        failed = events(lab, "sbc.options", node="sbc1", ok=False)
        assert failed and not events(lab, "sbc.options", node="sbc1", ok=True)
        assert not events(lab, "gateway.health", gateway="sbc1.contoso.com", state="active")
        # calls still work: sbc1 never sent a good OPTIONS, so it is tried last and sbc2 carries them
        for _ in range(3):
            call = await lab.client("alice@contoso.com").place_call("4255550199")
            assert call.status == 200
            await call.hangup()
        assert {c.sbc for c in far_end_calls(lab)} == {"sbc2.contoso.com"}
    run_contoso(lab_certs, scenario, lab_path=lab_file, must_settle=False)


def test_enabled_false_drains_new_calls_keep_the_old_one(lab_certs) -> None:
    async def scenario(lab) -> None:
        alice = lab.client("alice@contoso.com")
        first = await alice.place_call("4255550199")
        [far] = far_end_calls(lab)
        drained = far.sbc
        change(lab, "set_gateway", fqdn=drained, enabled=False)
        for _ in range(4):
            call = await lab.client("bob@contoso.com").place_call("4255550199")
            assert call.status == 200
            await call.hangup()
        later = far_end_calls(lab)[1:]
        assert len(later) == 4 and drained not in {c.sbc for c in later}
        # the call in progress through the drained gateway goes on: hold, resume, hang up
        assert await first.hold() == 200 and await first.resume() == 200
        assert far.holds == ["sendonly", "sendrecv"] and far.state == "answered"
        # the SBC relays the caller's hold and resume, the far end sees the offers' directions
        sbc = drained.split(".")[0]
        assert [(e["event"], e["by"]) for e in events(lab, "call.held", node=sbc) + events(lab, "call.resumed", node=sbc)] \
            == [("call.held", "caller"), ("call.resumed", "caller")]
        pstn = far.pstn.spec.name
        assert [(e["event"], e["media"]) for e in events(lab, "call.held", node=pstn) + events(lab, "call.resumed", node=pstn)] \
            == [("call.held", "sendonly"), ("call.resumed", "sendrecv")]
        assert events(lab, "sip.handler_error") == []
        await first.hangup()
        assert await far.wait_ended(timeout=5)
    run_contoso(lab_certs, scenario)


def test_max_concurrent_sessions_hard_limit(lab_certs) -> None:
    async def scenario(lab) -> None:
        for fqdn in ("sbc1.contoso.com", "sbc2.contoso.com", "sbc-sea.contoso.com"):
            change(lab, "set_gateway", fqdn=fqdn, max_concurrent_sessions=1)
        calls = [await lab.client(upn).place_call("4255550199")
                 for upn in ("alice@contoso.com", "bob@contoso.com", "carol@contoso.com")]
        assert [c.status for c in calls] == [200, 200, 200]
        assert {c.sbc for c in far_end_calls(lab)} == {"sbc1.contoso.com", "sbc2.contoso.com", "sbc-sea.contoso.com"}
        fourth = await lab.client("dave@contoso.com").place_call("4255550199")
        assert fourth.status == 503
        assert len(far_end_calls(lab)) == 3  # the fourth never reached an SBC
        assert events(lab, "gateway.sessions_rejected")
        await calls[0].hangup()
        fifth = await lab.client("dave@contoso.com").place_call("4255550199")
        assert fifth.status == 200
    run_contoso(lab_certs, scenario, settings={"max_sessions_enforced": True})
