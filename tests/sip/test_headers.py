"""Headers (case-insensitive, compact forms, comma lists) and structured values (RFC 3261 §7.3, §20)."""

from __future__ import annotations

import pytest

from simulator.sip import COMPACT_FORMS, CSeq, Headers, SipParseError, parse_cseq, parse_name_addr, parse_via


@pytest.mark.parametrize("compact, long", sorted(COMPACT_FORMS.items()))
def test_compact_form_equals_long_form(compact, long):
    headers = Headers([(compact.upper(), "x")])
    assert headers.get(long) == "x" and headers.get(long.upper()) == "x" and headers.get(compact) == "x"
    assert long in headers and compact in headers


def test_the_issue_lists_every_compact_form():
    assert set(COMPACT_FORMS) == set("imftvlckseourbxy")


def test_names_are_case_insensitive_and_order_is_kept():
    headers = Headers([("Via", "SIP/2.0/UDP a"), ("X-A", "1"), ("v", "SIP/2.0/UDP b"), ("VIA", "SIP/2.0/UDP c")])
    assert headers.get_all("via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    assert headers.items()[1] == ("X-A", "1")


@pytest.mark.parametrize(
    "name, value, elements",
    [
        ("Via", "SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b", ["SIP/2.0/UDP a;branch=1", "SIP/2.0/TCP b"]),
        ("Contact", '"Smith, John" <sip:j@a>;q=0.5, <sip:x@b,c>', ['"Smith, John" <sip:j@a>;q=0.5', "<sip:x@b,c>"]),
        ("Contact", r'"a \", b" <sip:a@b>, <sip:c@d>', [r'"a \", b" <sip:a@b>', "<sip:c@d>"]),
        ("Allow", "INVITE,ACK , BYE", ["INVITE", "ACK", "BYE"]),
        ("Date", "Sat, 13 Nov 2010 23:29:00 GMT", ["Sat, 13 Nov 2010 23:29:00 GMT"]),  # not a list
        ("Authorization", 'Digest username="a", realm="b"', ['Digest username="a", realm="b"']),
        ("X-Unknown", "a, b", ["a, b"]),  # unknown headers stay opaque
    ],
)
def test_comma_lists_split_outside_quotes_and_angle_brackets(name, value, elements):
    headers = Headers([(name, value)])
    assert headers.get_all(name) == elements
    assert headers.get(name) == elements[0]


def test_set_replaces_every_field_in_place_of_the_first():
    headers = Headers([("A", "1"), ("Route", "<sip:a>"), ("B", "2"), ("Route", "<sip:b>")])
    headers.set("route", "<sip:c>")
    assert headers.items() == [("A", "1"), ("route", "<sip:c>"), ("B", "2")]


def test_add_first_puts_a_via_on_top():
    headers = Headers([("Max-Forwards", "70"), ("Via", "SIP/2.0/UDP b")])
    headers.add("Via", "SIP/2.0/TLS a", first=True)
    headers.add("X-New", "1")
    assert headers.get_all("via") == ["SIP/2.0/TLS a", "SIP/2.0/UDP b"]
    assert headers.items()[-1] == ("X-New", "1")


def test_remove_and_pop_first():
    headers = Headers([("Via", "SIP/2.0/UDP a, SIP/2.0/UDP b"), ("Via", "SIP/2.0/UDP c"), ("To", "<sip:t>")])
    assert headers.pop_first("via") == "SIP/2.0/UDP a"
    assert headers.get_all("via") == ["SIP/2.0/UDP b", "SIP/2.0/UDP c"]
    headers.remove("v")
    assert "via" not in headers and headers.get("via") is None and headers.get_all("via") == []
    assert headers.pop_first("via") is None and len(headers) == 1


@pytest.mark.parametrize("name, value", [("Bad Name", "x"), ("", "x"), ("X", "a\r\nInjected: 1"), ("X", "a\nb")])
def test_building_a_bad_field_is_refused(name, value):
    with pytest.raises(ValueError):
        Headers([(name, value)])
    with pytest.raises(ValueError):
        Headers().add(name, value)


# -- Via ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, transport, host, port, branch, received, rport, rport_requested",
    [
        ("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776", "UDP", "192.0.2.1", 5060, "z9hG4bK776", None, None, False),
        ("SIP/2.0/tls sip.pstnhub.microsoft.com;branch=z9hG4bKa;rport", "TLS", "sip.pstnhub.microsoft.com", None,
         "z9hG4bKa", None, None, True),
        ("SIP/2.0/TCP h;rport=5071;received=198.51.100.7;branch=z9hG4bKb", "TCP", "h", None, "z9hG4bKb",
         "198.51.100.7", 5071, True),
        ("SIP / 2.0 / UDP  h : 5062 ; branch = z9hG4bKc", "UDP", "h", 5062, "z9hG4bKc", None, None, False),
        ("SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255]", "UDP", "2001:db8::9:1", 6050, None,
         "2001:db8::9:255", None, False),
        ("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255", "UDP", "2001:db8::9:1", None, None,
         "2001:db8::9:255", None, False),
    ],
)  # fmt: skip
def test_via_fields(value, transport, host, port, branch, received, rport, rport_requested):
    via = parse_via(value)
    assert (via.transport, via.host, via.port, via.branch) == (transport, host, port, branch)
    assert (via.received, via.rport, via.rport_requested) == (received, rport, rport_requested)
    assert parse_via(str(via)) == via


@pytest.mark.parametrize(
    "value",
    ["SIP/2.0/UDP", "SIP/2.0 h", "SIP/3.0/UDP h", "HTTP/2.0/UDP h", "SIP/2.0/UDP h;;", "SIP/2.0/UDP h;branch=",
     "SIP/2.0/UDP h:99999", "SIP/2.0/UDP h;branch=a b", "SIP/2.0/UDP h extra"],
)  # fmt: skip
def test_malformed_via_is_a_400_naming_via(value):
    with pytest.raises(SipParseError) as caught:
        parse_via(value)
    assert caught.value.status == 400 and "Via" in caught.value.reason


def test_via_str_brackets_ipv6():
    assert str(parse_via("SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1")) == "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1"


# -- name-addr / addr-spec -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, display, uri, params",
    [
        ('"Alex Wilber" <sip:+14255550100@pstnhub.microsoft.com;user=phone>;tag=e8b3',
         "Alex Wilber", "sip:+14255550100@pstnhub.microsoft.com;user=phone", {"tag": "e8b3"}),
        ("<sip:a@b>", None, "sip:a@b", {}),
        ("Bob <sip:bob@b>", "Bob", "sip:bob@b", {}),
        ("caller<sip:caller@example.com>;tag=323", "caller", "sip:caller@example.com", {"tag": "323"}),
        ("sip:a@b;tag=1", None, "sip:a@b", {"tag": "1"}),  # addr-spec: ';' starts header params
        (r'"J Rosenberg \\\"" <sip:j@e>', 'J Rosenberg \\"', "sip:j@e", {}),
        ('"" <sip:anonymous@anonymous.invalid>', "", "sip:anonymous@anonymous.invalid", {}),
        ("<sip:a@b> ; expires = 3600 ; q=0.7", None, "sip:a@b", {"expires": "3600", "q": "0.7"}),
    ],
)  # fmt: skip
def test_name_addr_fields(value, display, uri, params):
    addr = parse_name_addr(value, "From")
    assert (addr.display_name, str(addr.uri), addr.params) == (display, uri, params)
    assert parse_name_addr(str(addr), "From") == addr


def test_contact_expires_q_and_tag():
    addr = parse_name_addr("<sip:a@b>;expires=3600;q=0.7;tag=x", "Contact")
    assert (addr.expires, addr.q, addr.tag) == (3600, 0.7, "x")
    assert parse_name_addr("<sip:a@b>", "Contact").expires is None


@pytest.mark.parametrize(
    "value",
    ['"unterminated <sip:a@b>', "Bell, Alexander <sip:a@b>", "< sip:a@b >", "sip:a@b?Route=x", "<sip:a@b>;;",
     '"name" sip:a@b', "<sip:a@b", ""],
)  # fmt: skip
def test_malformed_name_addr_is_a_400_naming_the_header(value):
    with pytest.raises(SipParseError) as caught:
        parse_name_addr(value, "To")
    assert caught.value.status == 400 and "To" in caught.value.reason


# -- CSeq --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, cseq", [("1 INVITE", CSeq(1, "INVITE")), ("0009 \t BYE", CSeq(9, "BYE")),
                                         ("2147483647 ACK", CSeq(2**31 - 1, "ACK"))])
def test_cseq(value, cseq):
    assert parse_cseq(value) == cseq and str(cseq) == f"{cseq.seq} {cseq.method}"


@pytest.mark.parametrize("value", ["INVITE", "1", "-1 INVITE", "2147483648 INVITE", "1 INV ITE", "x INVITE"])
def test_malformed_cseq_is_a_400(value):
    with pytest.raises(SipParseError) as caught:
        parse_cseq(value)
    assert "CSeq" in caught.value.reason
