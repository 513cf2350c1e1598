"""Requests and responses: parse_message on datagrams, to_bytes, structured headers."""

from __future__ import annotations

import pytest

from simulator.sip import Request, Response, SipParseError, SipUri, parse_message

OPTIONS = (
    b"OPTIONS sip:sip.pstnhub.microsoft.com:5061;transport=tls SIP/2.0\r\n"
    b"Via: SIP/2.0/TLS sbc1.contoso.com:5061;branch=z9hG4bK-1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:sbc1.contoso.com:5061>;tag=1c8e\r\n"
    b"To: <sip:sip.pstnhub.microsoft.com:5061>\r\n"
    b"Call-ID: 5d0b7e31@sbc1.contoso.com\r\n"
    b"CSeq: 41 OPTIONS\r\n"
    b"Contact: <sip:sbc1.contoso.com:5061;transport=tls>\r\n"
    b"X-MS-Custom: Keep  This ,Exactly\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def message(head: str, body: bytes = b"") -> bytes:
    """A request or response with the usual headers after `head` (start line and extras)."""
    lines = head.split("\n")
    base = [
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
        "From: <sip:a@example.com>;tag=1",
        "To: <sip:b@example.com>",
        "Call-ID: c1",
        "CSeq: 1 " + (lines[0].split(" ")[0] if not lines[0].startswith("SIP/") else "INVITE"),
    ]
    return ("\r\n".join([lines[0], *base, *lines[1:]]) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def test_request_fields():
    m = parse_message(OPTIONS)
    assert isinstance(m, Request) and m.method == "OPTIONS"
    assert isinstance(m.uri, SipUri) and m.uri.host == "sip.pstnhub.microsoft.com" and m.uri.transport == "tls"
    assert m.uri_text == "sip:sip.pstnhub.microsoft.com:5061;transport=tls"
    assert (m.top_via.transport, m.top_via.host, m.top_via.port) == ("TLS", "sbc1.contoso.com", 5061)
    assert m.top_via.branch == "z9hG4bK-1" and m.top_via.rport_requested
    assert m.from_.tag == "1c8e" and m.to.tag is None
    assert m.call_id == "5d0b7e31@sbc1.contoso.com"
    assert (m.cseq.seq, m.cseq.method) == (41, "OPTIONS")
    assert m.max_forwards == 70
    assert [c.uri.host for c in m.contacts] == ["sbc1.contoso.com"] and not m.contact_star
    assert m.routes == [] and m.record_routes == [] and m.content_type is None
    assert m.body == b""


def test_unchanged_message_goes_out_as_it_came_in():
    assert parse_message(OPTIONS).to_bytes() == OPTIONS


def test_unknown_header_is_re_emitted_unchanged():
    wire = parse_message(message("INVITE sip:b@example.com SIP/2.0\nX-Odd:  a ,, b ;;\n p-Custom-CASE: <x>")).to_bytes()
    assert b"X-Odd: a ,, b ;; p-Custom-CASE: <x>\r\n" in wire or b"X-Odd: a ,, b ;;\r\n" in wire


def test_changed_message_is_rebuilt_with_its_new_values():
    m = parse_message(OPTIONS)
    m.headers.set("Max-Forwards", "69")
    via = m.top_via
    via.params["received"] = "198.51.100.7"
    m.headers.set("Via", str(via))
    wire = m.to_bytes()
    assert b"Max-Forwards: 69\r\n" in wire
    assert b"Via: SIP/2.0/TLS sbc1.contoso.com:5061;branch=z9hG4bK-1;rport;received=198.51.100.7\r\n" in wire
    assert b"X-MS-Custom: Keep  This ,Exactly\r\n" in wire
    again = parse_message(wire)
    assert again.max_forwards == 69 and again.top_via.received == "198.51.100.7"


def test_structured_cache_follows_header_changes():
    m = parse_message(OPTIONS)
    assert m.cseq.seq == 41
    m.headers.set("CSeq", "42 OPTIONS")
    assert m.cseq.seq == 42
    m.headers.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-2", first=True)
    assert [v.host for v in m.vias] == ["proxy.example.com", "sbc1.contoso.com"]


def test_body_change_rewrites_content_length():
    m = parse_message(OPTIONS)
    m.body = b"hello"
    wire = m.to_bytes()
    assert wire.endswith(b"Content-Length: 5\r\n\r\nhello")


def test_built_request_serializes_with_content_length():
    req = Request(
        "INVITE",
        "sip:+14255550123@sbc1.contoso.com:5061;user=phone;transport=tls",
        [("Via", "SIP/2.0/TLS a.example.com;branch=z9hG4bK9"), ("CSeq", "1 INVITE"), ("Content-Type", "application/sdp")],
        b"v=0\r\n",
    )
    wire = req.to_bytes()
    assert wire == (
        b"INVITE sip:+14255550123@sbc1.contoso.com:5061;user=phone;transport=tls SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS a.example.com;branch=z9hG4bK9\r\nCSeq: 1 INVITE\r\n"
        b"Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"
    )
    assert parse_message(wire) == req


def test_built_response_default_reason_and_round_trip():
    resp = Response(486, headers=[("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("CSeq", "1 INVITE")])
    assert resp.reason == "Busy Here"
    assert resp.to_bytes().startswith(b"SIP/2.0 486 Busy Here\r\n")
    back = parse_message(resp.to_bytes())
    assert isinstance(back, Response) and (back.status, back.reason) == (486, "Busy Here") and back == resp


@pytest.mark.parametrize(
    "args",
    [("IN VITE", "sip:a@b"), ("INVITE", "sip:a b"), ("INVITE", "")],
)
def test_bad_request_construction_is_refused(args):
    with pytest.raises(ValueError):
        Request(*args)


@pytest.mark.parametrize("status", [99, 700, "200"])
def test_bad_response_status_is_refused(status):
    with pytest.raises(ValueError):
        Response(status)


def test_contact_star():
    m = parse_message(message("REGISTER sip:example.com SIP/2.0\nContact: *\nExpires: 0"))
    assert m.contact_star and m.contacts == []


def test_route_record_route_and_content_type():
    m = parse_message(
        message(
            "INVITE sip:b@example.com SIP/2.0\nRoute: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n"
            "Record-Route: <sip:rr.example.com;lr>\nContent-Type: Application/SDP ; charset=utf-8",
            b"v=0\r\n",
        )
    )
    assert [r.uri.host for r in m.routes] == ["p1.example.com", "p2.example.com"]
    assert m.routes[0].uri.params == {"lr": None}
    assert [r.uri.host for r in m.record_routes] == ["rr.example.com"]
    assert m.content_type == "application/sdp"


# -- datagram framing (RFC 3261 §18.3) -------------------------------------------------------------
def test_octets_past_content_length_are_ignored():
    data = message("MESSAGE sip:b@example.com SIP/2.0\nContent-Length: 5", b"hello, and more")
    assert parse_message(data).body == b"hello"


def test_missing_content_length_means_to_the_end_of_the_datagram():
    data = message("MESSAGE sip:b@example.com SIP/2.0", b"all of this")
    assert parse_message(data).body == b"all of this"


def test_leading_crlfs_and_bare_lf_line_ends_are_accepted():
    data = b"\r\n\r\n" + message("OPTIONS sip:b@example.com SIP/2.0\nContent-Length: 0").replace(b"\r\n", b"\n")
    m = parse_message(data)
    assert m.method == "OPTIONS" and m.call_id == "c1" and m.body == b""


def test_folded_header_is_unfolded():
    data = message("OPTIONS sip:b@example.com SIP/2.0\nSubject: first\nX-Fold: x").replace(
        b"Subject: first\r\n", b"Subject: first\r\n  second\r\n\tthird\r\n"
    )
    m = parse_message(data)
    assert m.headers.get("subject") == "first second third" and m.headers.get("x-fold") == "x"
    assert b"Subject: first second third\r\n" in m.to_bytes()


@pytest.mark.parametrize(
    "data, status, names",
    [
        (b"", 400, "Empty"),
        (b"\r\n\r\n", 400, "Empty"),
        (b"hello", 400, "Request-Line"),
        (message("INVITE sip:b@example.com SIP/3.0"), 505, "Version"),
        (message("INVITE sip:b@example.com HTTP/1.1"), 400, "Request-Line"),
        (message("INV@ITE sip:b@example.com SIP/2.0"), 400, "method"),
        (message("SIP/2.0 2000 OK"), 400, "Status code"),
        (message("SIP/2.0 099 Odd"), 400, "Status code"),
        (message("SIP/2.0 OK"), 400, "Status-Line"),
        (message("SIP/1.0 200 OK"), 505, "Version"),
        (message("INVITE sip:b@example.com SIP/2.0\nContent-Length: 10", b"short"), 400, "Content-Length"),
        (message("INVITE sip:b@example.com SIP/2.0\nContent-Length: ten"), 400, "Content-Length"),
        (message("INVITE sip:b@example.com SIP/2.0\nMax-Forwards: many"), 400, "Max-Forwards"),
        (message("INVITE sip:b@example.com SIP/2.0\nContact: *, <sip:a@b>"), 400, "Contact"),
        (message("INVITE sip:b@example.com SIP/2.0\nBad Header: x"), 400, "header name"),
        (message("INVITE sip:b@example.com SIP/2.0\nno colon here"), 400, "header"),
        (message("INVITE sip:b@example.com SIP/2.0\nX: a\rb"), 400, "CR"),
        (message("INVITE sip:b@exa mple.com SIP/2.0"), 400, "Request-Line"),
        (message("INVITE sip:b@[::1 SIP/2.0"), 400, "Request-URI"),
    ],
)
def test_bad_datagram_is_a_sip_parse_error_with_the_status_to_send(data, status, names):
    with pytest.raises(SipParseError) as caught:
        parse_message(data)
    assert caught.value.status == status
    assert names in caught.value.reason


def test_missing_required_headers_are_left_to_the_uas():
    m = parse_message(b"OPTIONS sip:b@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n")
    assert (m.call_id, m.from_, m.to, m.cseq, m.top_via, m.vias) == (None, None, None, None, None, [])


def test_non_utf8_octets_survive_a_round_trip():
    data = message("OPTIONS sip:b@example.com SIP/2.0\nX-Bin: \xff\xfe".encode("latin-1").decode("utf-8", "surrogateescape"))
    assert b"X-Bin: \xff\xfe\r\n" in parse_message(data).to_bytes()


def test_equality_compares_start_line_headers_and_body():
    assert parse_message(OPTIONS) == parse_message(OPTIONS)
    other = parse_message(OPTIONS)
    other.body = b"x"
    assert other != parse_message(OPTIONS)


HUGE = b"9" * 5000  # int() refuses strings over 4300 digits: must be a 400, not a ValueError


@pytest.mark.parametrize(
    "data, status",
    [
        (b"OPTIONS sip:a@b:" + HUGE + b" SIP/2.0\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: " + HUGE + b"\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/2.0\r\nMax-Forwards: " + HUGE + b"\r\n\r\n", 400),
        (b"OPTIONS sip:a@b SIP/" + HUGE + b".0\r\n\r\n", 505),
        (b"SIP/2.0 " + HUGE + b" OK\r\n\r\n", 400),
        ("OPTIONS sip:a@b SIP/2.0\r\nMax-Forwards: ²\r\n\r\n".encode(), 400),  # a digit to isdigit()
        ("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: ²\r\n\r\n".encode(), 400),
    ],
)
def test_oversized_or_non_ascii_numbers_are_a_sip_parse_error(data, status):
    with pytest.raises(SipParseError) as caught:
        parse_message(data)
    assert caught.value.status == status


def test_oversized_optional_numbers_read_as_absent():
    m = parse_message(message("OPTIONS sip:b@example.com SIP/2.0\nContact: <sip:a@b>;expires=" + "9" * 5000))
    assert m.contacts[0].expires is None


def test_reading_the_request_uri_does_not_change_what_is_sent():
    data = message("OPTIONS sip:%75ser@example.com SIP/2.0")
    m = parse_message(data)
    assert m.uri.user == "user"
    assert m.to_bytes().startswith(b"OPTIONS sip:%75ser@example.com SIP/2.0\r\n")


def test_a_uri_object_given_to_a_request_is_sent_as_it_is_when_sending():
    uri = SipUri("sbc1.contoso.com", user="+14255550123")
    req = Request("INVITE", uri, [("CSeq", "1 INVITE")])
    uri.port = 5061
    assert req.uri_text == "sip:+14255550123@sbc1.contoso.com:5061"
    assert req.to_bytes().startswith(b"INVITE sip:+14255550123@sbc1.contoso.com:5061 SIP/2.0\r\n")
