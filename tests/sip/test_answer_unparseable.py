"""answer_unparseable: the stateless answer to a request the parser refused (RFC 3261 §8.2.6.1).

Its contract, which the transports rely on: it never raises, whatever the octets, and returns
a Response (the error's status, Via/From/To/Call-ID/CSeq copied verbatim) or None (a response,
no Via, or a copied header that is itself the defect).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.sip import Response, SipParseError, StreamParser, parse_message
from simulator.sip.uas_checks import answer_unparseable

FIELDS = {
    "Via": "SIP/2.0/TLS h;branch=z9hG4bK1",
    "From": "<sip:a@b>;tag=1",
    "To": "<sip:b@c>",
    "Call-ID": "1",
    "CSeq": "1 OPTIONS",
}


def request(damaged: str = "", damage: bytes = b"", content_length: bytes = b"0") -> bytes:
    """An OPTIONS whose `damaged` header has `damage` appended to its value."""
    lines = [f"{name}: {value}".encode() + (damage if name == damaged else b"") for name, value in FIELDS.items()]
    return b"OPTIONS sip:b@c SIP/2.0\r\n" + b"\r\n".join(lines) + b"\r\nContent-Length: " + content_length + b"\r\n\r\n"


def refused(data: bytes) -> SipParseError:
    with pytest.raises(SipParseError) as caught:
        parse_message(data)
    return caught.value


def copied(response: Response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in FIELDS}


def test_a_bare_cr_inside_the_via_is_answered_400_along_that_via():
    data = (
        b"OPTIONS sip:b@c SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\rx\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:b@c>\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    answer = answer_unparseable(data, refused(data))
    assert answer is not None and answer.status == 400
    assert answer.reason == "Bare CR in the message head"
    assert copied(answer) == FIELDS


@pytest.mark.parametrize("damage", [b"\rx", b"\r", b"\nx"], ids=["cr-then-text", "cr-alone", "lf-then-text"])
@pytest.mark.parametrize("header", list(FIELDS))
def test_a_bare_line_end_inside_a_copied_header_is_answered_400(header, damage):
    # Any line end ends the line here, so the header is copied up to it and the rest ignored.
    data = request(header, damage)
    answer = answer_unparseable(data, refused(data))
    assert answer is not None and answer.status == 400
    assert copied(answer) == FIELDS
    assert parse_message(answer.to_bytes()) == answer


@pytest.mark.parametrize("damage", [b"\x00", b"\x00x", b"\xff\xfe"], ids=["nul", "nul-then-text", "non-utf8"])
@pytest.mark.parametrize("header", ["Via", "From", "To", "CSeq"])
def test_a_copied_header_that_is_itself_the_defect_is_not_echoed(header, damage):
    data = request(header, damage)
    assert answer_unparseable(data, refused(data)) is None


@pytest.mark.parametrize("damage", [b"\x00", b"\xff\xfe"], ids=["nul", "non-utf8"])
def test_a_call_id_with_odd_octets_is_echoed_as_it_came(damage):
    # The parser does not read the Call-ID (any word will do), so it copies verbatim.
    data = request("Call-ID", damage, content_length=b"x")
    answer = answer_unparseable(data, refused(data))
    assert answer is not None and answer.status == 400
    assert answer.to_bytes().count(b"Call-ID: 1" + damage + b"\r\n") == 1


@pytest.mark.parametrize(
    "data",
    [
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nContent-Length: x\r\n\r\n",  # a response
        request().replace(b"Via: SIP/2.0/TLS h;branch=z9hG4bK1\r\n", b"").replace(b"0\r\n\r\n", b"x\r\n\r\n"),
        b"",
        b"\r\n\r\n",
        b"\x00\xff garbage",
    ],
    ids=["response", "no-via", "empty", "only-crlf", "garbage"],
)
def test_nothing_to_answer_is_none(data):
    assert answer_unparseable(data, SipParseError("Bad")) is None


def test_a_stream_framing_error_carries_the_head_to_answer_513_from():
    parser = StreamParser()
    with pytest.raises(SipParseError) as caught:
        parser.feed(request(content_length=b"10485760"))
    error = caught.value
    assert (error.status, error.fatal) == (513, True)
    answer = answer_unparseable(error.octets, error)
    assert answer is not None and (answer.status, answer.reason) == (513, "Message Too Large")
    assert copied(answer) == FIELDS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([400, 505, 513]))
def test_it_never_raises_on_any_octets(tail, status):
    data = b"OPTIONS sip:b@c SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n" + tail
    answer = answer_unparseable(data, SipParseError("Bad \x00\r\nreason", status))
    assert answer is None or parse_message(answer.to_bytes()).status == status
