"""Properties of the parser over generated input (hypothesis).

- A message built from generated parts survives to_bytes() -> parse_message() with every
  structured value intact.
- Arbitrary octets, and corpus messages with random damage, never raise anything but
  SipParseError — neither from parse_message nor from reading any structured header.
- StreamParser yields the same messages however the stream is cut into chunks.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.sip import Request, Response, SipParseError, SipUri, StreamParser, parse_message
from tests.sip.test_conformance_parse import ENTRIES

pytestmark = pytest.mark.slow  # thousands of generated messages

TOKEN = string.ascii_letters + string.digits + "-.!%*_+`'~"
tokens = st.text(TOKEN, min_size=1, max_size=12)
hostnames = st.from_regex(r"[a-z][a-z0-9\-]{0,10}(\.[a-z][a-z0-9\-]{0,10}){0,3}", fullmatch=True)
hosts = st.one_of(hostnames, st.ip_addresses().map(str))
ports = st.one_of(st.none(), st.integers(1, 65535))
# Any text at all for user parts and display names: the serializer must escape or quote it.
free_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n", max_codepoint=0x2FF), max_size=16
)
header_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), max_codepoint=0x2FF), max_size=30
).map(lambda s: s.strip(" \t"))
uri_params = st.dictionaries(
    st.text(string.ascii_lowercase, min_size=1, max_size=6), st.one_of(st.none(), tokens), max_size=3
)


@st.composite
def sip_uris(draw):
    return SipUri(
        draw(hosts),
        user=draw(st.one_of(st.none(), free_text.filter(bool))),
        port=draw(ports),
        params=draw(uri_params),
        scheme=draw(st.sampled_from(["sip", "sips"])),
    )


@st.composite
def messages(draw):
    seq = draw(st.integers(0, 2**31 - 1))
    method = draw(st.one_of(st.sampled_from(["INVITE", "ACK", "BYE", "OPTIONS", "REGISTER"]), tokens))
    branch = "z9hG4bK" + draw(st.text(TOKEN, max_size=10))
    via_host = draw(hosts)
    via_port = draw(ports)
    transport = draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP"]))
    from_uri, to_uri, contact_uri = draw(sip_uris()), draw(sip_uris()), draw(sip_uris())
    display = draw(st.one_of(st.none(), free_text))
    from_tag = draw(tokens)
    call_id = draw(st.text(TOKEN + "@", min_size=1, max_size=20))
    extras = draw(st.lists(st.tuples(st.sampled_from(["X-MS-A", "Subject", "X-Odd", "P-Foo"]), header_text), max_size=4))
    body = draw(st.binary(max_size=40))
    sent_by = f"[{via_host}]" if ":" in via_host else via_host
    if via_port:
        sent_by += f":{via_port}"
    from simulator.sip import NameAddr

    headers = [
        ("Via", f"SIP/2.0/{transport} {sent_by};branch={branch}"),
        ("From", str(NameAddr(from_uri, display, {"tag": from_tag}))),
        ("To", str(NameAddr(to_uri))),
        ("Call-ID", call_id),
        ("CSeq", f"{seq} {method}"),
        ("Contact", str(NameAddr(contact_uri))),
        *extras,
    ]
    if draw(st.booleans()):
        message = Request(method, draw(sip_uris()), headers, body)
    else:
        message = Response(draw(st.integers(100, 699)), draw(header_text), headers, body)
    expected = {
        "branch": branch,
        "via": (transport, via_host, via_port),
        "from": (display, from_uri, from_tag),
        "to": to_uri,
        "contact": contact_uri,
        "call_id": call_id,
        "cseq": (seq, method),
    }
    return message, expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages())
def test_generated_message_round_trips_with_its_values(generated):
    message, expected = generated
    wire = message.to_bytes()
    parsed = parse_message(wire)
    assert parsed == message
    assert parsed.to_bytes() == wire
    via = parsed.top_via
    assert (via.transport, via.host, via.port) == expected["via"] and via.branch == expected["branch"]
    assert (parsed.from_.display_name, parsed.from_.uri, parsed.from_.tag) == expected["from"]
    assert parsed.to.uri == expected["to"] and parsed.contacts[0].uri == expected["contact"]
    assert parsed.call_id == expected["call_id"] and tuple(parsed.cseq) == expected["cseq"]
    if isinstance(message, Request):
        assert parsed.uri == message.uri


def _read_everything(message) -> None:
    """Touch every structured accessor; each may only raise SipParseError."""
    for name in ("vias", "from_", "to", "call_id", "cseq", "contacts", "contact_star", "max_forwards",
                 "routes", "record_routes", "content_type"):  # fmt: skip
        try:
            value = getattr(message, name)
        except SipParseError:
            continue
        for item in value if isinstance(value, list) else [value]:
            try:
                str(getattr(item, "uri", ""))
            except SipParseError:
                pass
            str(item)
    if isinstance(message, Request):
        try:
            str(message.uri)
        except SipParseError:
            pass
    parse_message(message.to_bytes())


def _parse_or_reject(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipParseError as error:
        assert 400 <= error.status <= 599 and error.reason
        return
    _read_everything(message)


def _frame_or_reject(data: bytes) -> None:
    """The same bytes as a TCP/TLS stream: framed, or a SipParseError (then the connection closes)."""
    parser = StreamParser()
    try:
        for message in parser.feed(data) + parser.feed(b""):
            _read_everything(message)
    except SipParseError as error:
        assert 400 <= error.status <= 599 and error.reason


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_octets_raise_only_sip_parse_error(data):
    _parse_or_reject(data)
    _frame_or_reject(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_octets_after_a_valid_start_line_raise_only_sip_parse_error(tail):
    _parse_or_reject(b"INVITE sip:a@b SIP/2.0\r\n" + tail)
    _parse_or_reject(b"SIP/2.0 200 OK\r\nVia: " + tail)


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate"]),
        st.integers(0, 4000),
        st.sampled_from(b" \t\r\n:;,<>\"\\%@[]=/0aZ\x00\xff"),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ENTRIES), MUTATIONS)
def test_damaged_corpus_messages_raise_only_sip_parse_error(entry, mutations):
    data = bytearray(entry[2])
    for kind, position, octet in mutations:
        at = position % (len(data) + 1)
        if kind == "flip" and at < len(data):
            data[at] = octet
        elif kind == "insert":
            data.insert(at, octet)
        elif kind == "delete" and at < len(data):
            del data[at]
        elif kind == "truncate":
            del data[at:]
    _parse_or_reject(bytes(data))
    _frame_or_reject(bytes(data))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(messages(), min_size=1, max_size=4), st.lists(st.integers(0, 2000), max_size=8), st.data())
def test_stream_parser_gives_the_same_messages_for_any_chunking(generated, cuts, data):
    parts = []
    for message, _ in generated:
        parts.append(data.draw(st.sampled_from([b"", b"\r\n", b"\r\n\r\n"])))  # keep-alives between
        parts.append(message.to_bytes())
    stream = b"".join(parts)
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    parser = StreamParser()
    received = []
    for start, end in zip(bounds, bounds[1:]):
        received += parser.feed(stream[start:end])
    assert received == [message for message, _ in generated]
    assert parser.buffered == 0
