"""RFC 4475's semantically wrong (and UAS-relevant valid) messages, answered by a real UAS.

Each torture message goes as bytes into a `UserAgent` (parser → transaction layer →
RFC 3261 §8.2 checks) and the test asserts the response its server transaction sent —
then retransmits the request to show the transaction, not a one-off reply, answered.
"""

import json
import random
from pathlib import Path

import pytest

from simulator.sip import SipParseError, parse_message
from simulator.sip.uas_checks import ENDPOINT, REGISTRAR
from simulator.sip.user_agent import UserAgent

CORPUS = Path(__file__).resolve().parents[1] / "data" / "rfc4475"
INDEX = json.loads((CORPUS / "index.json").read_text())
SOURCE = ("192.0.2.99", 5060)
ALLOW = ["ACK", "BYE", "CANCEL", "INVITE", "OPTIONS"]

# file -> (the UAS playing this role, the status `expect` names, a header the response must carry)
UAS_ANSWERS = {
    "badbranch.dat": (ENDPOINT, 400, None),
    "insuf.dat": (ENDPOINT, 400, None),
    "unkscm.dat": (ENDPOINT, 416, None),
    "novelsc.dat": (ENDPOINT, 416, None),
    "unksm2.dat": (REGISTRAR, 400, None),
    "bext01.dat": (ENDPOINT, 420, ("Unsupported", ["nothingSupportsThis", "nothingSupportsThisEither"])),
    "invut.dat": (ENDPOINT, 415, ("Accept", ["application/sdp"])),
    "regaut01.dat": (ENDPOINT, 405, ("Allow", ALLOW)),
    "multi01.dat": (ENDPOINT, 400, None),
    "sdp01.dat": (ENDPOINT, 406, None),
    "mcl01.dat": (ENDPOINT, 400, None),  # parsed (first length), refused: framing is unknowable
    # valid messages whose `expect` names what a UAS answers
    "intmeth.dat": (ENDPOINT, 501, ("Allow", ALLOW)),
    "esc02.dat": (ENDPOINT, 501, ("Allow", ALLOW)),
    "zeromf.dat": (ENDPOINT, 200, None),  # Max-Forwards 0 stops proxies, not endpoints
    "cparam01.dat": (REGISTRAR, 200, None),
    "cparam02.dat": (REGISTRAR, 200, None),
    "regescrt.dat": (REGISTRAR, 200, None),
    "dblreq.dat": (REGISTRAR, 200, None),
}
# Semantically wrong, but nothing for a UAS to answer: handled where noted.
NOT_ANSWERED = {
    "bcast.dat": "a response: see test_broadcast_via_response_is_discarded",
}


def uas(policy):
    return UserAgent("user", "example.com", 5060, rng=random.Random(7), policy=policy)


def test_every_semantic_entry_has_an_expected_answer():
    semantic = {e["file"] for e in INDEX if e["verdict"] == "valid-but-semantically-wrong"}
    assert semantic <= set(UAS_ANSWERS) | set(NOT_ANSWERED)


@pytest.mark.parametrize("name", sorted(UAS_ANSWERS))
def test_uas_answers_with_the_status_rfc4475_names(name):
    policy, status, header = UAS_ANSWERS[name]
    data = (CORPUS / name).read_bytes()
    ua = uas(policy)
    sends = ua.receive(data, SOURCE, now=0.0)
    finals = [s for s in sends if s.message.status >= 200]
    assert [s.message.status for s in finals] == [status]
    final = finals[0]
    assert final.destination == SOURCE
    assert final.transaction is not None and final.transaction.last_response is final.message
    response = parse_message(final.message.to_bytes())  # what went on the wire reads back
    assert response.status == status and response.cseq.seq == parse_message(data).cseq.seq
    if header is not None:
        assert response.headers.get_all(header[0]) == header[1]
    if final.transaction.reliable:
        # Over TCP/TLS the transaction ends with its response (Timer J = 0, Table 4).
        assert final.transaction.state in ("Terminated", "Completed")
    else:
        # The server transaction answers the retransmission with the same response (§17.2.2).
        again = ua.receive(data, SOURCE, now=0.4)
        assert [s.message for s in again] == [final.message]


def test_dblreq_answers_only_the_register_and_never_the_trailing_invite():
    ua = uas(REGISTRAR)
    sends = ua.receive((CORPUS / "dblreq.dat").read_bytes(), SOURCE, now=0.0)
    assert [(s.message.status, s.message.cseq.method) for s in sends] == [(200, "REGISTER")]
    assert ua.calls == []


def test_rfc2543_invite_is_accepted_and_its_retransmission_matched_without_branch():
    ua = uas(ENDPOINT)
    data = (CORPUS / "inv2543.dat").read_bytes()
    assert [s.message.status for s in ua.receive(data, SOURCE, now=0.0)] == [100, 180]
    # No branch: RFC 2543 matching (§17.2.3) finds the transaction, which resends the 180.
    assert [s.message.status for s in ua.receive(data, SOURCE, now=0.5)] == [180]
    sends = ua.handle_timer(ua.next_deadline())
    assert [s.message.status for s in sends] == [200]
    assert len(ua.calls) == 1 and ua.calls[0].state == "confirmed"


def test_broadcast_via_response_is_discarded():
    ua = uas(ENDPOINT)
    assert ua.receive((CORPUS / "bcast.dat").read_bytes(), SOURCE, now=0.0) == []


# RFC 4475 §3.1.2 requests the parser refuses, answered statelessly with the error's status
# because the headers a response copies are intact. Every other invalid message gets silence:
# a response (§18.1.2), or a request whose defect sits in Via/From/To/Call-ID/CSeq.
STATELESS_ANSWERS = {
    "clerr.dat": 400, "ncl.dat": 400, "ltgtruri.dat": 400, "lwsruri.dat": 400, "escruri.dat": 400,
    "regbadct.dat": 400, "mismatch01.dat": 400, "mismatch02.dat": 400,
}
REFUSED = []
for _entry in INDEX:
    if _entry["verdict"] == "invalid":
        try:
            parse_message((CORPUS / _entry["file"]).read_bytes())
        except SipParseError as _error:
            REFUSED.append((_entry["file"], _error.status))


@pytest.mark.parametrize(("name", "status"), REFUSED)
def test_unparseable_requests_get_the_parse_error_status_or_silence(name, status):
    sends = uas(ENDPOINT).receive((CORPUS / name).read_bytes(), SOURCE, now=0.0)
    if name in STATELESS_ANSWERS:
        assert [s.message.status for s in sends] == [status] == [STATELESS_ANSWERS[name]]
        answer = parse_message(sends[0].message.to_bytes())
        assert answer.cseq is not None and sends[0].destination == SOURCE
    else:
        assert sends == []
