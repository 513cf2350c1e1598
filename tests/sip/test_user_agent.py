"""The sans-I/O user agent: a call through transactions, dialogs and SDP, in virtual time."""

import random

import pytest

from simulator.events import EventLog
from simulator.sip import parse_message
from simulator.sip.dialog import DialogError
from simulator.sip.sdp import SessionDescription
from simulator.sip.user_agent import UserAgent, destination_of

LATENCY = 0.01


class Wire:
    """Two agents and a queue of datagrams between them; `drop` loses chosen messages."""

    def __init__(self, transport="UDP", drop=lambda data: False):
        self.now = 0.0
        self.log = EventLog(clock=lambda: self.now)
        self.alice = UserAgent("alice", "192.0.2.10", rng=random.Random(1), transport=transport,
                               log=self.log.logger(node="alice"))
        self.bob = UserAgent("bob", "192.0.2.20", rng=random.Random(2), transport=transport,
                             log=self.log.logger(node="bob"))
        self.agents = {("192.0.2.10", 5060): self.alice, ("192.0.2.20", 5060): self.bob}
        self.queue = []
        self.drop = drop
        self.ladder = []

    def send(self, sender, sends):
        for send in sends:
            data = send.message.to_bytes()
            self.ladder.append((round(self.now, 3), sender.name, data.split(b"\r\n")[0].decode()))
            if not self.drop(data):
                self.queue.append((self.now + LATENCY, (sender.host, sender.port), send.destination, data))

    def run(self, until):
        while True:
            times = [t for t in [min((q[0] for q in self.queue), default=None),
                                 self.alice.next_deadline(), self.bob.next_deadline()] if t is not None]
            if not times or min(times) > until:
                self.now = until
                return
            self.now = min(times)
            due = [q for q in self.queue if q[0] <= self.now]
            if due:
                item = min(due)
                self.queue.remove(item)
                _, source, destination, data = item
                receiver = self.agents[destination]
                self.send(receiver, receiver.receive(data, source, self.now))
                continue
            for ua in (self.alice, self.bob):
                if (deadline := ua.next_deadline()) is not None and deadline <= self.now:
                    self.send(ua, ua.handle_timer(self.now))

    def lines(self, who=None):
        return [line for _, sender, line in self.ladder if who is None or sender == who]


def place_call(wire):
    call, sends = wire.alice.call("sip:bob@192.0.2.20", wire.now)
    wire.send(wire.alice, sends)
    wire.run(until=wire.now + 3)
    return call


def test_call_is_set_up_with_ringing_answer_and_ack():
    wire = Wire()
    call = place_call(wire)
    assert [line.split(" ")[0] if not line.startswith("SIP") else line for line in wire.lines()] == [
        "INVITE", "SIP/2.0 100 Trying", "SIP/2.0 180 Ringing", "SIP/2.0 200 OK", "ACK"]
    assert call.state == "confirmed" and call.dialog.state == "Confirmed"
    bob_call = wire.bob.calls[0]
    assert bob_call.dialog.id == (call.dialog.call_id, call.dialog.remote_tag, call.dialog.local_tag)
    answer = call.dialog.remote_sdp
    assert answer.audio.port == 40000 and answer.direction_of(answer.audio) == "sendrecv"


def test_hold_reinvite_is_answered_recvonly_and_acked():
    wire = Wire()
    call = place_call(wire)
    wire.send(wire.alice, wire.alice.hold(call, wire.now))
    wire.run(until=wire.now + 1)
    assert wire.lines()[-3:] == [
        "SIP/2.0 100 Trying", "SIP/2.0 200 OK", "ACK sip:bob@192.0.2.20:5060;transport=udp SIP/2.0"]
    assert call.dialog.remote_sdp.direction_of(call.dialog.remote_sdp.audio) == "recvonly"
    assert wire.bob.calls[0].dialog.on_hold
    assert call.dialog.local_seq == 2 and wire.bob.calls[0].dialog.remote_seq == 2


def test_bye_ends_the_dialog_on_both_sides():
    wire = Wire()
    call = place_call(wire)
    wire.send(wire.alice, wire.alice.hang_up(call, wire.now))
    wire.run(until=wire.now + 1)
    assert wire.lines()[-2:] == ["BYE sip:bob@192.0.2.20:5060;transport=udp SIP/2.0", "SIP/2.0 200 OK"]
    assert call.dialog.state == "Terminated" and wire.bob.calls[0].dialog.state == "Terminated"


def test_uas_retransmits_2xx_until_the_ack_arrives():
    dropped = []

    def drop_first_two_acks(data):
        if data.startswith(b"ACK") and len(dropped) < 2:
            dropped.append(data)
            return True
        return False

    wire = Wire(drop=drop_first_two_acks)
    place_call(wire)
    oks = [t for t, who, line in wire.ladder if who == "bob" and line == "SIP/2.0 200 OK"]
    # §13.3.1.4: T1, then 2*T1 after the first 200 (which left at 1.01 s after ringing).
    assert [round(b - oks[0], 3) for b in oks] == [0.0, 0.5, 1.5]
    assert len([line for line in wire.lines("alice") if line.startswith("ACK")]) == 3  # each 2xx is ACKed
    assert wire.bob.core.awaiting_ack == {}


def test_uas_gives_up_without_ack_after_64_t1_and_hangs_up():
    wire = Wire(drop=lambda data: data.startswith(b"ACK"))
    place_call(wire)
    wire.run(until=60)
    oks = [t for t, who, line in wire.ladder if who == "bob" and line == "SIP/2.0 200 OK"]
    assert [round(t - oks[0], 3) for t in oks] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert any(line.startswith("BYE") for line in wire.lines("bob"))
    assert wire.log.select("sip.dialog.no_ack", node="bob")


def test_over_tcp_the_2xx_is_not_retransmitted():
    wire = Wire(transport="TCP", drop=lambda data: data.startswith(b"ACK"))
    place_call(wire)
    wire.run(until=20)
    assert wire.lines("bob").count("SIP/2.0 200 OK") == 1


def test_unanswered_invite_fails_with_408_after_timer_b():
    wire = Wire(drop=lambda data: True)
    call, sends = wire.alice.call("sip:bob@192.0.2.20", 0.0)
    wire.send(wire.alice, sends)
    wire.run(until=40)
    assert call.state == "failed" and call.final_status == 408
    assert len(wire.lines("alice")) == 7  # the INVITE and six Timer A retransmissions


def test_reinvite_with_a_lower_cseq_is_refused_with_500():
    wire = Wire()
    call = place_call(wire)
    wire.send(wire.alice, wire.alice.hold(call, wire.now))
    wire.run(until=wire.now + 1)
    call.dialog.local_seq = 0  # the next request goes out with CSeq 1 < 2
    wire.send(wire.alice, wire.alice.resume(call, wire.now))
    wire.run(until=wire.now + 1)
    assert "SIP/2.0 500 Server Internal Error" in wire.lines("bob")


def test_options_is_answered_with_allow():
    wire = Wire()
    options = parse_message(
        b"OPTIONS sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKo1\r\n"
        b"From: <sip:alice@192.0.2.10>;tag=1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: o1\r\n"
        b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    sends = wire.bob.receive(options.to_bytes(), ("192.0.2.10", 5060), 0.0)
    assert [s.message.status for s in sends] == [200]
    assert sends[0].message.headers.get_all("Allow") == ["ACK", "BYE", "CANCEL", "INVITE", "OPTIONS"]


def test_cancel_while_ringing_ends_the_invite_with_487():
    wire = Wire()
    call, sends = wire.alice.call("sip:bob@192.0.2.20", 0.0)
    wire.send(wire.alice, sends)
    wire.run(until=0.5)
    assert call.state == "ringing"
    wire.send(wire.alice, wire.alice.cancel(call, wire.now))
    wire.run(until=1.0)
    assert wire.lines()[-4:] == [
        "CANCEL sip:bob@192.0.2.20 SIP/2.0", "SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated",
        "ACK sip:bob@192.0.2.20 SIP/2.0",  # the INVITE client transaction ACKs the 487 (§17.1.1.3)
    ]
    assert call.state == "failed" and call.final_status == 487
    assert wire.bob.calls[0].state == "ended"
    wire.run(until=5.0)
    assert "SIP/2.0 200 OK" not in wire.lines("bob")[3:]  # the ring timer no longer answers


def test_cancel_of_an_answered_call_is_refused():
    wire = Wire()
    call = place_call(wire)
    with pytest.raises(DialogError):
        wire.alice.cancel(call, wire.now)


def test_transaction_and_dialog_states_are_logged_as_events():
    wire = Wire()
    place_call(wire)
    states = [(r["node"], r["kind"], r["new"]) for r in wire.log.select("sip.transaction.state")]
    assert ("alice", "invite client", "Accepted") in states
    assert ("bob", "invite server", "Accepted") in states
    assert [r["state"] for r in wire.log.select("sip.dialog.state", node="alice")] == ["Early", "Confirmed"]


@pytest.mark.parametrize(
    ("uri", "destination"),
    [
        ("sip:bob@192.0.2.20", ("192.0.2.20", 5060)),
        ("sip:bob@192.0.2.20:5070;transport=udp", ("192.0.2.20", 5070)),
        ("sips:bob@sbc1.contoso.com", ("sbc1.contoso.com", 5061)),
        ("<sip:p1.example.com;lr>", ("p1.example.com", 5060)),
        ("sip:[2001:db8::1]:5080", ("2001:db8::1", 5080)),
    ],
)
def test_destination_comes_from_the_uri(uri, destination):
    assert destination_of(uri) == destination


def test_answer_carries_only_codecs_both_sides_have():
    wire = Wire()
    wire.bob.codecs = wire.bob.codecs[1:]  # PCMA and telephone-event only
    call = place_call(wire)
    assert [c.name for c in call.dialog.remote_sdp.audio.codecs] == ["PCMA", "telephone-event"]
    assert isinstance(call.dialog.local_sdp, SessionDescription)
