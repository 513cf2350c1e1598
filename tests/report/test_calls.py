"""result.json's `calls`: each call's own hops and its record at every node, from the event stream."""

from __future__ import annotations

import pytest

from simulator.report.calls import call_summaries
from simulator.report.timeline import describe
from simulator.scenario.expectations import WorldView

ADDRESSES = {"carol": "10.20.1.21", "dave": "10.20.1.22", "sip": "52.112.1.1", "sbc-sea": "10.20.0.11",
             "sbc1": "10.10.0.11", "pstn-sea": "198.51.100.20", "pstn-hq": "198.51.100.10"}


def invite(t: float, node: str, to: str, call_id: str) -> dict:
    return {"t": t, "event": "sip.sent", "node": node, "src": f"{ADDRESSES[node]}:5", "dst": f"{ADDRESSES[to]}:5061",
            "call_id": call_id, "cseq": "1 INVITE", "summary": "INVITE sip:x",
            "message": "INVITE sip:x SIP/2.0\r\nTo: <sip:x>\r\n\r\n"}


def leg(t: float, node: str, call_id: str, leg_call_id: str) -> dict:
    return {"t": t, "event": "leg.placed", "node": node, "call_id": call_id, "leg_call_id": leg_call_id, "peer": "x"}


def call(event: str, t: float, node: str, call_id: str, **fields) -> dict:
    return {"t": t, "event": f"call.{event}", "node": node, "call_id": call_id, **fields}


#: carol and dave dial at the same instant; the proxy sends carol's call to sbc-sea, dave's to sbc1;
#: the WAN cut ends carol's call on media silence, dave hangs up his
RECORDS = [
    *[{"t": 0, "event": "sip.received", "node": n, "dst": f"{a}:5061", "src": "", "message": "", "summary": ""}
      for n, a in ADDRESSES.items()],
    call("started", 1, "carol", "A", caller="carol@contoso.com", callee="2065550100", dialed="2065550100",
         direction="outgoing"),
    call("started", 1, "dave", "B", caller="dave@contoso.com", callee="4255550199", dialed="4255550199",
         direction="outgoing"),
    invite(1, "carol", "sip", "A"), invite(1, "dave", "sip", "B"),
    call("started", 1.1, "sip", "A", direction="outbound"), call("started", 1.1, "sip", "B", direction="outbound"),
    leg(1.1, "sip", "B", "B1"), invite(1.1, "sip", "sbc1", "B1"),
    leg(1.1, "sip", "A", "A1"), invite(1.1, "sip", "sbc-sea", "A1"),
    call("started", 1.2, "sbc1", "B1", direction="outbound"), call("started", 1.2, "sbc-sea", "A1", direction="outbound"),
    leg(1.2, "sbc-sea", "A1", "A2"), invite(1.2, "sbc-sea", "pstn-sea", "A2"),
    leg(1.2, "sbc1", "B1", "B2"), invite(1.2, "sbc1", "pstn-hq", "B2"),
    call("started", 1.3, "pstn-sea", "A2", direction="to_pstn"), call("started", 1.3, "pstn-hq", "B2", direction="to_pstn"),
    *[call("answered", 3, n, c) for n, c in (("carol", "A"), ("sip", "A"), ("sbc-sea", "A1"), ("pstn-sea", "A2"),
                                             ("dave", "B"), ("sip", "B"), ("sbc1", "B1"), ("pstn-hq", "B2"))],
    call("ended", 40, "dave", "B", end_reason="normal", ended_by="self"),
    call("ended", 40.1, "sip", "B", end_reason="normal", ended_by="caller"),
    call("ended", 40.2, "sbc1", "B1", end_reason="normal", ended_by="caller"),
    call("ended", 40.3, "pstn-hq", "B2", end_reason="normal", ended_by="peer", direction="to_pstn"),
    {"t": 90, "event": "cdr.record", "node": "sip", "call_id": "A", "end_at": 90, "result": {"ms_code": 540000}},
    call("ended", 90, "sip", "A", end_reason="media_timeout", ended_by="self"),
    call("ended", 90, "sbc-sea", "A1", end_reason="media_timeout", ended_by="self"),
    call("ended", 90, "carol", "A", end_reason="media_timeout", ended_by="self"),
    call("ended", 90.1, "pstn-sea", "A2", end_reason="normal", ended_by="peer", direction="to_pstn"),
]


def test_each_call_has_its_own_path_even_when_calls_start_at_the_same_instant() -> None:
    carol, dave = call_summaries(RECORDS)
    assert carol["path"] == ["carol", "sip", "sbc-sea", "pstn-sea"]
    assert dave["path"] == ["dave", "sip", "sbc1", "pstn-hq"]
    view = WorldView(RECORDS)
    assert view.signalling_path(1, 3, call_id="A") == carol["path"]
    assert view.signalling_path(1, 3, origin="carol") != carol["path"]  # by time alone dave's hops leak in


def test_each_call_lists_one_record_per_node_with_why_and_who_ended_it() -> None:
    carol, dave = call_summaries(RECORDS)
    assert {r["node"]: (r["end_reason"], r["ended_by"]) for r in carol["records"]} == {
        "carol": ("media_timeout", "self"), "sip": ("media_timeout", "self"),
        "sbc-sea": ("media_timeout", "self"), "pstn-sea": ("normal", "caller")}
    [proxy] = [r for r in carol["records"] if r["node"] == "sip"]
    assert proxy["result"] == 540000 and proxy["ended"] == 90
    assert (carol["started"], carol["answered"], carol["ended"]) == (1, 3, 90)
    assert (carol["end_reason"], carol["quality"]) == ("media_timeout", [])  # no media.quality events here
    assert (dave["end_reason"], dave["ended_by"]) == ("normal", "dave")
    assert dave["parties"] == {"caller": "dave@contoso.com", "callee": "4255550199", "from": "dave"}


def test_a_call_still_up_at_the_end_of_the_run_has_no_end() -> None:
    [carol, _] = call_summaries([r for r in RECORDS if not (r["event"] == "call.ended" and r["call_id"].startswith("A"))
                                 and r["event"] != "cdr.record"])
    assert carol["ended"] is None and all(r["ended"] is None for r in carol["records"])


@pytest.mark.parametrize(("record", "text"), [
    (call("ended", 90, "sip", "A", caller="x", callee="y", end_reason="media_timeout", ended_by="self"),
     "call ended  x → y  end media_timeout by self"),
    (call("media_timeout", 90, "sip", "A", caller="x", callee="y", leg="trunk", silent_s=30.0,
          cause="connection lost"), "call media_timeout  x → y  trunk leg silent 30s (connection lost)"),
    (call("bye_failed", 90, "sip", "A", reason="connect.refused"), "call bye_failed  connect.refused"),
    ({"t": 600, "event": "client.return_deferred", "node": "carol", "user": "carol@contoso.com",
      "reason": "cloud reachable; waiting for outgoing calls to end: A"},
     "carol@contoso.com stays at the SBA: cloud reachable; waiting for outgoing calls to end: A"),
], ids=["ended", "media timeout", "bye failed", "return deferred"])
def test_the_timeline_says_how_a_call_ended_and_why_a_client_waits(record, text) -> None:
    assert describe(record).text == text
