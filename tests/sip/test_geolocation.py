"""Location conveyance (RFC 6442): PIDF-LO documents (RFC 4119, 5139, 5491) in multipart bodies (RFC 2046)."""

from __future__ import annotations

import pytest

from simulator.sip.geolocation import (
    PIDF_CONTENT_TYPE,
    BodyError,
    BodyPart,
    body_parts,
    civic_address,
    multipart_mixed,
    part_of,
    pidf_lo,
)

SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def test_a_multipart_body_splits_back_into_its_parts() -> None:
    document = pidf_lo("pres:ann@contoso.com", {"country": "US", "A3": "Seattle"})
    content_type, body = multipart_mixed([BodyPart("application/sdp", SDP),
                                          BodyPart(PIDF_CONTENT_TYPE, document, "loc1@example.com")], "b0und")
    assert content_type == "multipart/mixed;boundary=b0und"
    parts = body_parts(content_type, body)
    assert parts == [BodyPart("application/sdp", SDP), BodyPart(PIDF_CONTENT_TYPE, document, "loc1@example.com")]
    assert part_of(parts, "application/pidf+xml").content_id == "loc1@example.com"


def test_a_single_part_body_is_its_own_part() -> None:
    assert body_parts("application/sdp", SDP) == [BodyPart("application/sdp", SDP)]
    assert body_parts(None, b"") == []


@pytest.mark.parametrize(("content_type", "body", "message"), [
    ("multipart/mixed", b"--x\r\n\r\nhi\r\n--x--\r\n", "no boundary parameter"),
    ("multipart/mixed; boundary=x", b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n", "closing delimiter"),
])
def test_a_broken_multipart_body_is_a_body_error(content_type, body, message) -> None:
    with pytest.raises(BodyError, match=message):
        body_parts(content_type, body)


def test_the_pidf_lo_civic_address_keeps_rfc_5139_order_and_reads_back() -> None:
    civic = {"PC": "98101", "country": "US", "A1": "WA", "A3": "Seattle", "RD": "Pike", "HNO": "1", "LOC": "Floor 3"}
    document = pidf_lo("pres:ann@contoso.com", civic)
    assert civic_address(document) == civic
    assert list(civic_address(document)) == ["country", "A1", "A3", "RD", "HNO", "LOC", "PC"]
    assert b'entity="pres:ann@contoso.com"' in document and b"<gp:method>Manual</gp:method>" in document


@pytest.mark.parametrize(("document", "message"), [
    (b"<presence", "not XML"),
    (b"<x/>", "not a PIDF presence"),
    (b'<presence xmlns="urn:ietf:params:xml:ns:pidf"/>', "no civic address"),
])
def test_what_is_no_pidf_lo_is_a_body_error(document, message) -> None:
    with pytest.raises(BodyError, match=message):
        civic_address(document)
