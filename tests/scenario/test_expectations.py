"""Conditions judged from the event stream (WorldView), as tables of events and verdicts."""

import pytest

from simulator.scenario.expectations import WorldView
from simulator.scenario.loader import parse_scenario
from simulator.tenant.errors import SourcePosition

from .test_loader import HEAD

POS = SourcePosition("s.yaml", 1)


def cond(text: str):
    return parse_scenario(HEAD + f"steps:\n  - expect: {text}\n", "s.yaml").steps[0].conditions[0]


EVENTS = [
    {"t": 1.0, "event": "client.state", "node": "carol", "user": "carol@contoso.com", "state": "online",
     "registrar": "sip.pstnhub.microsoft.com"},
    {"t": 50.0, "event": "client.state", "node": "carol", "user": "carol@contoso.com", "state": "appliance",
     "registrar": "sba1.contoso.com"},
    {"t": 60.0, "event": "gateway.health", "node": "sip", "gateway": "sbc-sea.contoso.com", "state": "demoted"},
    {"t": 61.0, "event": "gateway.health", "node": "sip2", "gateway": "sbc-sea.contoso.com", "state": "inactive"},
    {"t": 70.0, "event": "sba.sync", "node": "sba1", "version": 3, "ok": True},
    {"t": 80.0, "event": "sba.sync", "node": "sba1", "version": 3, "ok": False},
    {"t": 90.0, "event": "cdr.record", "node": "sba1"},
    {"t": 91.0, "event": "cdr.record", "node": "sba1"},
    {"t": 99.0, "event": "sba.cdr_upload", "node": "sba1", "count": 2},
]


@pytest.mark.parametrize("text, ok, detail", [
    ("{client: carol@contoso.com, state: appliance, registrar: sba1}", True, "carol@contoso.com appliance at sba1.contoso.com"),
    ("{client: carol@contoso.com, state: appliance, registrar: sba1.contoso.com}", True, ""),
    ("{client: CAROL@contoso.com, state: online}", False, "CAROL@contoso.com: expected online, got appliance at sba1.contoso.com"),
    ("{client: carol, state: appliance}", True, ""),  # by node name
    ("{client: dave@contoso.com, state: online}", False, "got unknown (no client.state event yet)"),
    ("{gateway: sbc-sea.contoso.com, health: inactive}", True, "is inactive"),
    ("{gateway: sbc-sea.contoso.com, health: demoted, node: sip}", True, ""),
    ("{gateway: sbc1.contoso.com, health: active}", True, "is active"),
    ("{sba: sba1.contoso.com, cache_version: 3}", True, "cache version 3"),
    ("{sba: sba1, cache_version: 4}", False, "cache version 3, expected 4"),
    ("{sba: sba1, cache_version: 2, at_least: true}", True, ""),
    ("{cdrs: 2, node: sba1}", True, "2 CDRs"),
    ("{cdrs: 2, uploaded: true}", True, "2 uploaded CDRs"),
    ("{cdrs: 3}", False, "2 CDRs, expected 3"),
])
def test_conditions(text, ok, detail):
    view = WorldView(EVENTS, aliases={"sba1.contoso.com": "sba1"})
    got_ok, got_detail = view.check(cond(text))
    assert got_ok is ok and detail in got_detail


def _invite(t, node, src, dst, tag=""):
    msg = f"INVITE sip:x SIP/2.0\r\nTo: <sip:x@y>{tag}\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\nc=IN IP4 {src.split(':')[0]}\r\n"
    return {"t": t, "event": "sip.sent", "node": node, "src": src, "dst": dst, "summary": "INVITE sip:x",
            "message": msg, "call_id": "c", "cseq": "1 INVITE"}


def test_signalling_path_follows_initial_invites_and_ignores_reinvites():
    records = [
        _invite(183.054, "pstn-sea", "198.51.100.20:5060", "10.20.0.11:5060"),
        {"t": 183.054, "event": "sip.received", "node": "sbc-sea", "src": "198.51.100.20:5060",
         "dst": "10.20.0.11:5060", "message": "", "summary": "INVITE"},
        _invite(183.056, "sbc-sea", "10.20.0.11:49155", "10.20.0.12:5061"),
        {"t": 183.056, "event": "sip.received", "node": "sba1", "src": "10.20.0.11:49155",
         "dst": "10.20.0.12:5061", "message": "", "summary": "INVITE"},
        _invite(190.0, "sbc-sea", "10.20.0.11:49155", "10.20.0.12:5061", tag=";tag=x"),  # a re-INVITE
    ]
    view = WorldView(records)
    # the step's start is read from the loop clock, a hair later than the rounded record time
    assert view.signalling_path(183.0540000004, 200) == ["pstn-sea", "sbc-sea", "sba1"]
    assert view.path_matches(["pstn-sea", "sba1"], ["pstn-sea", "sbc-sea", "sba1"])
    assert not view.path_matches(["sba1", "pstn-sea"], ["pstn-sea", "sbc-sea", "sba1"])


@pytest.mark.sim
async def test_wait_for_returns_when_the_condition_becomes_true(tmp_path):
    import asyncio

    view = WorldView([EVENTS[0]])
    loop = asyncio.get_running_loop()
    loop.call_later(30, view, EVENTS[1])
    ok, _ = await view.wait_for(cond("{client: carol, state: appliance}"), 60)
    at = loop.time()
    late, detail = await view.wait_for(cond("{client: carol, state: offline}"), 10)
    assert ok and at == pytest.approx(30) and not late
    assert detail.startswith("not within 10 s: carol: expected offline, got appliance")


@pytest.mark.parametrize("text, ok, detail", [
    ("{event: cdr.record}", True, "2 cdr.record events"),
    ("{event: cdr.record, count: 2, node: sba1}", True, ""),
    ("{event: cdr.record, count: 1}", False, "2 cdr.record events, expected 1"),
    ("{event: sba.sync, with: {ok: false}}", True, "1 sba.sync event with ok False"),
    ("{event: sba.sync, with: {version: '3'}, at_least: 2}", True, ""),
    ("{event: tls.expired}", False, "no tls.expired events, expected at least 1"),
])
def test_event_conditions(text, ok, detail):
    got_ok, got_detail = WorldView(EVENTS).check(cond(text))
    assert got_ok is ok and detail in got_detail


def test_signalling_path_keeps_only_the_answered_branch_after_a_failover():
    def sent(t, node, src, dst, call_id, summary="INVITE sip:x"):
        return {"t": t, "event": "sip.sent", "node": node, "src": src, "dst": dst, "call_id": call_id,
                "cseq": "1 INVITE", "summary": summary, "message": "INVITE sip:x SIP/2.0\r\nTo: <sip:x>\r\n\r\n"}

    def got_2xx(t, node, call_id):
        return {"t": t, "event": "sip.received", "node": node, "call_id": call_id, "cseq": "1 INVITE",
                "summary": "200 OK", "src": "", "dst": "", "message": ""}

    bob, sip, sbc1, sea, pstn = "10.10.1.22:5", "52.112.1.1:443", "10.10.0.11:5061", "10.20.0.11:5061", "198.51.100.20:5060"
    names = [{"t": 0, "event": "sip.received", "node": n, "dst": a, "src": "", "message": "", "summary": ""}
             for n, a in (("sip", sip), ("sbc1", sbc1), ("sbc-sea", sea), ("pstn-sea", pstn))]
    records = names + [
        sent(1, "bob", bob, sip, "a"), sent(1.1, "sip", "52.112.1.1:6000", sbc1, "b"),  # sbc1: no answer
        sent(11.1, "sip", "52.112.1.1:6001", sea, "c"), sent(11.2, "sbc-sea", "10.20.0.11:5060", pstn, "d"),
        got_2xx(12, "sbc-sea", "d"), got_2xx(12, "sip", "c"), got_2xx(12, "bob", "a")]
    assert WorldView(records).signalling_path(1, 12) == ["bob", "sip", "sbc-sea", "pstn-sea"]
    assert WorldView(records[:-3]).signalling_path(1, 12) == ["bob", "sip", "sbc1", "sip", "sbc-sea", "pstn-sea"]
    # another caller's INVITE at the same instant stays out of bob's path
    other = sent(1, "carol", "10.20.1.21:5", "10.20.0.12:5061", "z")
    assert WorldView(records[:5] + [other] + records[5:]).signalling_path(1, 12, origin="bob") == \
        ["bob", "sip", "sbc-sea", "pstn-sea"]
