"""Every message of the RFC 4475 and RFC 5118 torture corpus, at the parse level.

The corpus README gives the verdicts: `valid` must parse and round-trip; `invalid` must be a
SipParseError with the status `expect` names, or — where `expect` says "may reject" — be
tolerated without the defect being re-emitted; `valid-but-semantically-wrong` must parse
(the UAS answer is tests/sip/test_conformance_semantics.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from simulator.sip import AbsoluteUri, Request, Response, SipParseError, SipUri, TelUri, parse_message

CORPUS = Path(__file__).resolve().parents[1] / "data" / "rfc4475"
RFC4475 = json.loads((CORPUS / "index.json").read_text())
RFC5118 = json.loads((CORPUS / "rfc5118" / "index.json").read_text())
_LENGTH_RE = re.compile(rb"^(content-length|l)[ \t]*:.*$", re.IGNORECASE | re.MULTILINE)


def rfc5118_wire(data: bytes) -> bytes:
    """The fix-up the corpus README asks for: the archive has bare LF line ends, the two
    4.10 files lack the empty line ending the head, two declare a wrong Content-Length."""
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, body = head.rstrip(b"\r\n"), b""
    head = _LENGTH_RE.sub(lambda m: m.group(1) + b": " + str(len(body)).encode(), head)
    return head + b"\r\n\r\n" + body


def _entries() -> list[tuple[str, dict, bytes]]:
    entries = [(e["file"], e, (CORPUS / e["file"]).read_bytes()) for e in RFC4475]
    for e in RFC5118:
        entries.append(("rfc5118/" + e["file"], e, rfc5118_wire((CORPUS / "rfc5118" / e["file"]).read_bytes())))
    return entries


ENTRIES = _entries()
WIRE = {name: data for name, _entry, data in ENTRIES}
ACCEPTED = [(n, d) for n, e, d in ENTRIES if e["verdict"] != "invalid"]


def structure(message: Request | Response) -> tuple:
    """What a round trip must keep: start line, headers (Content-Length is rewritten by
    to_bytes, so it is left out), body."""
    fields = [(n, v) for n, v in message.headers if n.lower() not in ("content-length", "l")]
    return (message.start_line(), fields, message.body)


# -- invalid messages: the status and the header the error names ------------------------------
REJECTED = {
    "badinv01.dat": (400, "Via"),
    "clerr.dat": (400, "Content-Length"),
    "ncl.dat": (400, "Content-Length"),
    "scalar02.dat": (400, "CSeq"),
    "scalarlg.dat": (400, "CSeq"),
    "quotbal.dat": (400, "To"),
    "ltgtruri.dat": (400, "Request-URI"),
    "lwsruri.dat": (400, "Request-Line"),
    "escruri.dat": (400, "Request-URI"),
    "regbadct.dat": (400, "Contact"),
    "badaspec.dat": (400, "To"),
    "baddn.dat": (400, "From"),
    "badvers.dat": (505, "Version"),
    "mismatch01.dat": (400, "CSeq"),
    "mismatch02.dat": (400, "CSeq"),
    "bigcode.dat": (400, "Status code"),
    "rfc5118/ipv6-bad": (400, "URI"),
}
# "may reject": tolerated, and the defect must not come back out of to_bytes().
TOLERATED = {
    "lwsstart.dat": lambda wire: wire.startswith(b"INVITE sip:user@example.com SIP/2.0\r\n"),
    "trws.dat": lambda wire: wire.startswith(b"OPTIONS sip:remote-target@example.com SIP/2.0\r\n"),
    # Date is opaque to every layer here, so its zone never matters (RFC 4475 §3.1.2.12).
    "baddate.dat": lambda wire: b"Date: Fri, 01 Jan 2010 16:00:00 EST\r\n" in wire,
}


def test_every_invalid_entry_has_an_expected_outcome():
    invalid = {name for name, entry, _ in ENTRIES if entry["verdict"] == "invalid"}
    assert invalid == set(REJECTED) | set(TOLERATED)


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_invalid_message_is_rejected_with_the_status_a_uas_sends(name):
    status, names = REJECTED[name]
    with pytest.raises(SipParseError) as caught:
        parse_message(WIRE[name])
    assert caught.value.status == status
    assert names in caught.value.reason


@pytest.mark.parametrize("name", sorted(TOLERATED))
def test_tolerated_invalid_message_is_not_re_emitted_with_its_defect(name):
    message = parse_message(WIRE[name])
    wire = message.to_bytes()
    assert TOLERATED[name](wire)
    assert structure(parse_message(wire)) == structure(message)


# -- everything that must parse: round trip ---------------------------------------------------
@pytest.mark.parametrize("name, data", ACCEPTED, ids=[n for n, _ in ACCEPTED])
def test_accepted_message_round_trips_stably(name, data):
    message = parse_message(data)
    wire = message.to_bytes()
    again = parse_message(wire)
    assert structure(again) == structure(message)
    assert again.to_bytes() == wire
    # Content-Length written by to_bytes() is the body's length, once.
    assert again.headers.get_all("content-length") == [str(len(message.body))]


# -- what the parsed values are ---------------------------------------------------------------
def test_wsinv_folding_odd_whitespace_and_compact_forms():
    m = parse_message(WIRE["wsinv.dat"])
    assert m.to.tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert tuple(m.cseq) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    (contact,) = m.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"} and contact.q == 0.33
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert m.headers.get("subject") == ""
    assert m.routes[0].uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert m.content_type == "application/sdp" and len(m.body) == 150


def test_intmeth_extension_method_and_odd_token_characters():
    m = parse_message(WIRE["intmeth.dat"])
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq.method == m.method
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    # quoted-pairs escape control characters in the quoted display name (RFC 3261 §25.1)
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.params["fromparam''~+*_!.-%"] == '"работающий"'
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"


def test_esc01_escapes_are_decoded_once_where_the_grammar_allows():
    m = parse_message(WIRE["esc01.dat"])
    assert m.uri.user == "sips:user@example.com" and m.uri.host == "example.net"
    assert m.to.uri.user == "user"
    assert m.from_.uri.user == "I have spaces"
    (contact,) = m.contacts
    assert contact.uri.user == "caller"
    assert contact.uri.params == {"lr": None, "name": "value%41"}


def test_escnull_keeps_escaped_nulls_whole():
    m = parse_message(WIRE["escnull.dat"])
    assert m.to.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts] == ["\x00", "\x00\x00"]
    assert str(m.contacts[1].uri) == "sip:%00%00@host5.example.com"


def test_esc02_percent_is_literal_in_methods_and_header_names():
    m = parse_message(WIRE["esc02.dat"])
    assert m.method == "RE%47IST%45R"
    assert [c.uri.host for c in m.contacts] == ["host1.example.com", "host3.example.com"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.to.display_name == "%Z%45"


def test_lwsdisp_display_name_without_space_before_angle():
    m = parse_message(WIRE["lwsdisp.dat"])
    assert m.from_.display_name == "caller" and m.from_.uri.user == "caller"


def test_longreq_long_values_and_many_values():
    m = parse_message(WIRE["longreq.dat"])
    # 34 Via values spelt in every case and spacing, compact and long, in their order
    assert [v.host for v in m.vias][:3] == ["sip33.example.com", "sip32.example.com", "sip31.example.com"]
    assert len(m.vias) == 34 and m.vias[-1].host == "host.example.com"
    assert len(m.from_.uri.user) > 100 and len(m.call_id) > 100
    assert m.to.display_name.startswith("I have a user name of extremeextreme")


def test_dblreq_octets_past_content_length_are_ignored():
    m = parse_message(WIRE["dblreq.dat"])
    assert m.method == "REGISTER" and m.body == b""
    assert b"INVITE" not in m.to_bytes()


def test_semiuri_user_part_holds_semicolon_parameters():
    m = parse_message(WIRE["semiuri.dat"])
    assert m.uri.user == "user;par=u@example.net" and m.uri.host == "example.com" and m.uri.params == {}
    assert m.headers.get_all("Accept") == [
        "application/sdp", "application/pkcs7-mime", "multipart/mixed",
        "multipart/signed", "message/sip", "message/sipfrag",
    ]  # fmt: skip


def test_transports_known_and_unknown_via_transports():
    m = parse_message(WIRE["transports.dat"])
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01_binary_body_framed_by_content_length():
    m = parse_message(WIRE["mpart01.dat"])
    assert len(m.body) == int(m.headers.get("Content-Length"))
    assert b"\x00" in m.body
    assert m.content_type == "multipart/mixed"


def test_unreason_and_noreason_reason_phrases():
    assert parse_message(WIRE["unreason.dat"]).reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    noreason = parse_message(WIRE["noreason.dat"])
    assert (noreason.status, noreason.reason) == (100, "")


def test_semantically_wrong_messages_expose_what_the_uas_checks():
    assert parse_message(WIRE["insuf.dat"]).call_id is None
    assert isinstance(parse_message(WIRE["unkscm.dat"]).uri, AbsoluteUri)
    assert parse_message(WIRE["novelsc.dat"]).uri.scheme == "soap.beep"
    unksm2 = parse_message(WIRE["unksm2.dat"])
    assert unksm2.to.uri.scheme == "isbn" and unksm2.contacts[0].uri.scheme == "name"
    multi = parse_message(WIRE["multi01.dat"])
    assert len(multi.headers.get_all("CSeq")) == 2 and multi.cseq.seq == 5
    mcl = parse_message(WIRE["mcl01.dat"])
    assert mcl.headers.get_all("Content-Length") == ["13", "5"]
    assert parse_message(WIRE["badbranch.dat"]).top_via.branch == "z9hG4bK"
    assert [v.host for v in parse_message(WIRE["bcast.dat"]).vias] == ["192.0.2.198", "255.255.255.255"]


def test_contact_parameters_versus_uri_parameters():
    cparam01 = parse_message(WIRE["cparam01.dat"]).contacts[0]
    assert cparam01.params == {"unknownparam": None} and cparam01.uri.params == {}
    cparam02 = parse_message(WIRE["cparam02.dat"]).contacts[0]
    assert cparam02.params == {} and cparam02.uri.params == {"unknownparam": None}
    regescrt = parse_message(WIRE["regescrt.dat"]).contacts[0]
    assert regescrt.uri.headers == {"Route": "<sip:sip.example.com>"}


def test_inv2543_rfc2543_message_without_length_runs_to_the_end():
    m = parse_message(WIRE["inv2543.dat"])
    assert m.top_via.branch is None and m.from_.tag is None and m.max_forwards is None
    assert m.body.startswith(b"v=0") and m.body == WIRE["inv2543.dat"].partition(b"\r\n\r\n")[2]


def test_zeromf_max_forwards_zero():
    assert parse_message(WIRE["zeromf.dat"]).max_forwards == 0


@pytest.mark.parametrize(
    "name, host, port",
    [
        ("rfc5118/ipv6-good", "2001:db8::10", None),
        ("rfc5118/port-unambiguous", "2001:db8::10", 5070),
        ("rfc5118/port-ambiguous", "2001:db8::10:5070", None),
        ("rfc5118/ipv6-bug-abnf-3-colons", "2001:db8:::192.0.2.1", None),
        ("rfc5118/ipv6-correct-abnf-2-colons", "2001:db8::192.0.2.1", None),
    ],
)
def test_ipv6_request_uri_host_and_port(name, host, port):
    uri = parse_message(WIRE[name]).uri
    assert isinstance(uri, SipUri) and (uri.host, uri.port) == (host, port)
    assert f"@[{host}]" in str(uri) or str(uri).startswith(f"sip:[{host}]")


def test_ipv6_via_received_with_and_without_brackets():
    for name in ("rfc5118/via-received-param-with-delim", "rfc5118/via-received-param-no-delim"):
        via = parse_message(WIRE[name]).top_via
        assert (via.host, via.received) == ("2001:db8::9:1", "2001:db8::9:255")


def test_ipv6_and_ipv4_vias_mixed():
    vias = parse_message(WIRE["rfc5118/mult-ip-in-header"]).vias
    assert [(v.host, v.port, v.received) for v in vias] == [
        ("2001:db8::9:1", 6050, None),
        ("192.0.2.1", None, None),
        ("2001:db8::9:255", None, "192.0.2.200"),
    ]


def test_ipv4_mapped_ipv6_addresses():
    m = parse_message(WIRE["rfc5118/ipv4-mapped-ipv6"])
    assert [(v.host, v.port) for v in m.vias] == [("::ffff:192.0.2.10", 19823), ("::ffff:192.0.2.2", None)]
    assert m.contacts[0].uri.host == "::ffff:192.0.2.2"
    assert b"::ffff:192.0.2.2" in m.body


def test_tel_uri_in_headers_parses():
    assert isinstance(
        parse_message(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <tel:+14255550123>\r\n"
            b"From: <sip:a@b>;tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).to.uri,
        TelUri,
    )
