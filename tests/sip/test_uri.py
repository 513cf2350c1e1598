"""SIP/SIPS/TEL URIs (RFC 3261 §19.1, RFC 3966, RFC 5118)."""

from __future__ import annotations

import pytest

from simulator.sip import AbsoluteUri, SipParseError, SipUri, TelUri, parse_uri


@pytest.mark.parametrize(
    "text, scheme, user, password, host, port, params, headers",
    [
        ("sip:sbc1.contoso.com", "sip", None, None, "sbc1.contoso.com", None, {}, {}),
        ("SIP:alice@Example.COM:5060", "sip", "alice", None, "Example.COM", 5060, {}, {}),
        (
            "sips:+14255550123@sbc1.contoso.com:5061;user=phone;transport=tls",
            "sips", "+14255550123", None, "sbc1.contoso.com", 5061, {"user": "phone", "transport": "tls"}, {},
        ),
        ("sip:alice:secret@host", "sip", "alice", "secret", "host", None, {}, {}),
        ("sip:proxy.example.com;lr", "sip", None, None, "proxy.example.com", None, {"lr": None}, {}),
        ("sip:a@h;LR;Transport=TCP", "sip", "a", None, "h", None, {"lr": None, "transport": "TCP"}, {}),
        ("sip:[2001:db8::1]:5061", "sip", None, None, "2001:db8::1", 5061, {}, {}),
        ("sip:bob@[::ffff:192.0.2.2]", "sip", "bob", None, "::ffff:192.0.2.2", None, {}, {}),
        ("sip:user;par=u%40example.net@example.com", "sip", "user;par=u@example.net", None, "example.com", None, {}, {}),
        ("sip:I%20have%20spaces@example.net", "sip", "I have spaces", None, "example.net", None, {}, {}),
        ("sip:a@h;n%61me=v%61lue%2541", "sip", "a", None, "h", None, {"name": "value%41"}, {}),
        ("sip:a@h?Subject=hi%20there&Priority=urgent", "sip", "a", None, "h", None, {},
         {"Subject": "hi there", "Priority": "urgent"}),
    ],
)  # fmt: skip
def test_sip_uri_components(text, scheme, user, password, host, port, params, headers):
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (scheme, user, password, host, port)
    assert (uri.params, uri.headers) == (params, headers)


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@example.com",
        "sips:+14255550123@sbc1.contoso.com:5061;user=phone;transport=tls",
        "sip:[2001:db8::10]:5070;maddr=[2001:db8::1]",
        "sip:sips%3Auser%40example.com@example.net",
        "sip:null-%00-null@example.com",
        "sip:a@h?Route=%3Csip:example.com%3E",
        "tel:+1-201-555-0123;phone-context=example.com",
    ],
)
def test_str_re_parses_to_an_equal_uri(text):
    uri = parse_uri(text)
    assert parse_uri(str(uri)) == uri


@pytest.mark.parametrize(
    "text, wire",
    [
        ("sip:%75se%72@example.com", "sip:user@example.com"),  # needless escapes dropped
        ("sip:null-%00-null@example.com", "sip:null-%00-null@example.com"),  # needed ones kept
        ("sip:[2001:db8::1]:5060", "sip:[2001:db8::1]:5060"),  # IPv6 brackets restored
    ],
)
def test_str_escapes_only_what_the_grammar_requires(text, wire):
    assert str(parse_uri(text)) == wire


def test_uri_equality_ignores_host_case_but_not_user_case():
    assert parse_uri("sip:alice@EXAMPLE.com") == parse_uri("sip:alice@example.com")
    assert parse_uri("sip:Alice@example.com") != parse_uri("sip:alice@example.com")


def test_transport_property_is_lower_case():
    assert parse_uri("sip:h;transport=TLS").transport == "tls"
    assert parse_uri("sip:h").transport is None


def test_tel_uri():
    uri = parse_uri("tel:+14255550123;ext=12")
    assert isinstance(uri, TelUri) and (uri.number, uri.params) == ("+14255550123", {"ext": "12"})
    assert str(uri) == "tel:+14255550123;ext=12"


@pytest.mark.parametrize("text", ["nobodyknowsthisscheme:totallyopaque", "soap.beep://192.0.2.103:3002", "isbn:2983792873"])
def test_unknown_scheme_is_kept_verbatim(text):
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri) and str(uri) == text and uri.scheme == text.partition(":")[0]


@pytest.mark.parametrize(
    "text, why",
    [
        ("sip:2001:db8::10", "IPv6 without brackets"),
        ("sip:alice@ex ample.com", "whitespace"),
        ("sip:", "empty host"),
        ("sip:alice@host:99999", "port out of range"),
        ("sip:alice@host:50x", "port not a number"),
        ("sip:alice@[2001:db8::1", "unclosed IPv6 reference"),
        ("sip:alice@[2001:db8::1]x", "junk after IPv6 reference"),
        ("sip:al%zzice@host", "broken escape"),
        ("sip:@host", "empty user"),
        ("sip:alice@ho%41st", "escape in host"),
        ("sip:a@h;;lr", "empty parameter"),
        ("sip:a@h?noequals", "header without '='"),
        ("tel:not a number", "telephone number with spaces"),
        ("no-scheme-here", "no scheme"),
        ("1sip:a@b", "scheme not starting with a letter"),
    ],
)
def test_malformed_uri_is_a_400(text, why):
    with pytest.raises(SipParseError) as caught:
        parse_uri(text)
    assert caught.value.status == 400 and "URI" in caught.value.reason


def test_built_uri_serializes():
    uri = SipUri("sbc1.contoso.com", user="+14255550123", port=5061, params={"user": "phone"})
    assert str(uri) == "sip:+14255550123@sbc1.contoso.com:5061;user=phone"
    assert uri.host_port == "sbc1.contoso.com:5061"
    assert SipUri("2001:db8::1", port=5060).host_port == "[2001:db8::1]:5060"
