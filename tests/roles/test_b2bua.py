"""The B2BUA base every call-carrying role shares: call state, finding a leg, REFER and its NOTIFYs."""

from __future__ import annotations

import asyncio
import random

import pytest

from simulator.roles.b2bua import (
    Call,
    CallState,
    CallTable,
    Leg,
    TransferProgress,
    accept_refer,
    find_leg,
    refer_notify,
    refer_target,
)
from simulator.roles.cdr import Direction
from simulator.sip import Request, Response
from simulator.sip.builders import make_request
from simulator.sip.dialog import Dialog


def invite(call_id: str, from_tag: str) -> Request:
    return make_request("INVITE", "sip:bob@example.com", from_=f"<sip:alice@example.com>;tag={from_tag}",
                        to="<sip:bob@example.com>", call_id=call_id, cseq=1,
                        via="SIP/2.0/TLS a.example.com;branch=z9hG4bK1", contact="<sip:alice@a.example.com>")


def dialog(call_id: str, remote_tag: str, local_tag: str) -> Dialog:
    return Dialog.from_uas_request(invite(call_id, remote_tag), local_tag, local_contact="<sip:b2bua.example.com>",
                                   sent_by="b2bua.example.com", transport="TLS")


def in_dialog(method: str, call_id: str, from_tag: str, to_tag: str, **headers: str) -> Request:
    return make_request(method, "sip:b2bua.example.com", from_=f"<sip:alice@example.com>;tag={from_tag}",
                        to=f"<sip:bob@example.com>;tag={to_tag}", call_id=call_id, cseq=2,
                        via="SIP/2.0/TLS a.example.com;branch=z9hG4bK2", extra_headers=list(headers.items()))


def call(state: CallState = CallState.ANSWERED, *, b: bool = True) -> Call:
    a = Leg("client", party="alice@example.com", dialog=dialog("c1", "alice", "us-a"))
    other = Leg("pstn", party="+14255550100", dialog=dialog("c2", "gw", "us-b")) if b else None
    return Call("c1", "alice@example.com", "+14255550100", Direction.OUTBOUND, a, other, state=state)


class Answers:
    """An Incoming that records what it was answered."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.sent: list[tuple[int, str | None]] = []

    def respond(self, status: int, reason: str | None = None, **_: object) -> None:
        self.sent.append((status, reason))


@pytest.mark.parametrize("state, setting_up, ended", [
    (CallState.TRYING, True, False),
    (CallState.EARLY, True, False),
    (CallState.ANSWERED, False, False),
    (CallState.ENDED, False, True),
])
def test_call_state_says_whether_the_call_is_setting_up_or_over(state, setting_up, ended):
    c = call(state)
    assert (c.setting_up, c.ended) == (setting_up, ended)


def test_a_call_ends_once():
    c = call(CallState.TRYING)
    c.answer()
    assert c.state is CallState.ANSWERED
    assert c.end() is True
    assert c.end() is False  # ending twice is a no-op the role can test for
    assert c.ended


def test_the_other_leg_of_a_call():
    c = call()
    assert c.other(c.a) is c.b and c.other(c.b) is c.a  # type: ignore[arg-type]


@pytest.mark.parametrize("call_id, from_tag, to_tag, found", [
    ("c1", "alice", "us-a", "a"),  # the caller's BYE / re-INVITE
    ("c2", "gw", "us-b", "b"),  # the far end's
    ("c1", "alice", "someone-else", None),  # RFC 3261 §12.2.2: both tags must match
    ("c3", "alice", "us-a", None),
])
def test_an_in_dialog_request_finds_its_leg(call_id, from_tag, to_tag, found):
    c = call()
    result = find_leg([c], in_dialog("BYE", call_id, from_tag, to_tag))
    if found is None:
        assert result is None
    else:
        assert result == (c, getattr(c, found))


def test_a_transferor_between_its_refer_and_its_bye_still_finds_its_leg():
    old = call(CallState.ENDED)
    transferor = old.a
    old.a = Leg("client")  # the call went on without it
    old.departing = transferor
    assert find_leg([old], in_dialog("BYE", "c1", "alice", "us-a")) == (old, transferor)


@pytest.mark.parametrize("call_id, from_tag, to_tag, found", [
    ("c1", "alice", "us-a", "a"),  # filed under the A leg's Call-ID when added
    ("c2", "gw", "us-b", "b"),  # and under the B leg's, once placed
    ("c1", "alice", "someone-else", None),
])
def test_the_call_table_finds_a_leg_by_its_call_id_then_its_dialog(call_id, from_tag, to_tag, found):
    table, c = CallTable(), call()
    table.add(c)
    table.file(c, "c2")
    result = table.find(in_dialog("BYE", call_id, from_tag, to_tag))
    assert result == (None if found is None else (c, getattr(c, found)))


def test_a_forgotten_call_is_found_under_none_of_its_call_ids():
    table, c, other = CallTable(), call(), call()
    for each in (c, other):
        table.add(each)
        table.file(each, "c2")
    table.forget(c)
    assert list(table) == [other] and c not in table and len(table) == 1
    assert table.find(in_dialog("BYE", "c1", "alice", "us-a")) == (other, other.a)
    table.forget(other)
    assert table.find(in_dialog("BYE", "c2", "gw", "us-b")) is None and table._by_call_id == {}


@pytest.mark.parametrize("refer_to, uri", [
    ("<sip:carol@example.com>", "sip:carol@example.com"),
    ("sip:+14255550123@example.com;user=phone", "sip:+14255550123@example.com;user=phone"),
    ("<tel:+14255550123>", "tel:+14255550123"),
    ("", None),
    ("<not a uri", None),
])
def test_refer_to_is_read_as_a_uri(refer_to, uri):
    headers = {"Refer-To": refer_to} if refer_to else {}
    target = refer_target(in_dialog("REFER", "c1", "alice", "us-a", **headers))
    assert (str(target) if target is not None else None) == uri


@pytest.mark.parametrize("refer_to, state, has_other, answer", [
    ("<sip:carol@example.com>", CallState.ANSWERED, True, 202),
    ("", CallState.ANSWERED, True, 400),  # RFC 3515 §2.4.1: exactly one Refer-To
    ("<sip:carol@example.com>", CallState.EARLY, True, 481),  # nothing to transfer yet
    ("<sip:carol@example.com>", CallState.ANSWERED, False, 481),
])
def test_a_refer_is_accepted_only_for_an_answered_call(refer_to, state, has_other, answer):
    c = call(state, b=has_other)
    headers = {"Refer-To": refer_to} if refer_to else {}
    incoming = Answers(in_dialog("REFER", "c1", "alice", "us-a", **headers))
    accepted = accept_refer(incoming, c, c.a)  # type: ignore[arg-type]
    assert incoming.sent[0][0] == answer
    assert (accepted is not None) is (answer == 202)
    if accepted is not None:
        assert accepted[0] is c.b and str(accepted[1]) == "sip:carol@example.com"


@pytest.mark.parametrize("final, state", [
    (False, "active;expires=60"),
    (True, "terminated;reason=noresource"),
])
def test_refer_notify_carries_the_new_calls_status_line(final, state):
    notify = refer_notify(dialog("c1", "alice", "us-a"), random.Random(1), 180, "Ringing", final=final)
    assert notify.method == "NOTIFY" and notify.headers.get("Event") == "refer"
    assert notify.headers.get("Subscription-State") == state
    assert notify.body == b"SIP/2.0 180 Ringing\r\n"
    assert notify.headers.get("Content-Type") == "message/sipfrag;version=2.0"


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def info(self, name: str, **fields: object) -> None:
        self.events.append((name, fields))

    warning = info


def test_transfer_notifies_go_in_order_and_none_after_the_final_one():
    async def main() -> list[str]:
        sent: list[str] = []
        transferor = Leg("client", dialog=dialog("c1", "alice", "us-a"))
        first_answered = asyncio.Event()

        async def send(leg: Leg, request: Request) -> tuple[Response | None, str | None]:
            if request.body.startswith(b"SIP/2.0 100"):
                await first_answered.wait()  # the first NOTIFY's answer comes late: the second waits
            sent.append(request.body.decode().strip())
            return Response(200, "OK", headers=[("CSeq", f"{request.cseq.seq} NOTIFY")]), None

        progress = TransferProgress(transferor, random.Random(1), send, Log(), asyncio.ensure_future)
        progress.notify(100, "Trying", final=False)
        last = progress.notify(200, "OK", final=True)
        assert progress.notify(180, "Ringing", final=False) is None  # after the final one: nothing
        assert last is not None
        first_answered.set()
        await last
        return sent

    assert asyncio.run(main()) == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]


def test_no_notify_once_the_transferor_has_hung_up():
    async def main() -> list[str]:
        sent: list[str] = []
        transferor = Leg("client", dialog=dialog("c1", "alice", "us-a"))

        async def send(leg: Leg, request: Request) -> tuple[Response | None, str | None]:
            sent.append(request.method)
            return None, "unreachable"

        log = Log()
        progress = TransferProgress(transferor, random.Random(1), send, log, asyncio.ensure_future)
        first = progress.notify(100, "Trying", final=False)
        assert first is not None
        await first
        assert [name for name, _ in log.events] == ["call.notify_failed"]
        transferor.dialog.terminate()  # type: ignore[union-attr]
        assert progress.notify(200, "OK", final=True) is None
        return sent

    assert asyncio.run(main()) == ["NOTIFY"]
