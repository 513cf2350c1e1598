"""StreamParser: framing SIP over TCP/TLS by Content-Length (RFC 3261 §18.3)."""

from __future__ import annotations

import pytest

from fuzz.targets import read_stream
from simulator.sip import SipParseError, StreamParser, parse_message


def request(n: int, body: bytes = b"", length: bytes | None = None) -> bytes:
    cl = str(len(body)).encode() if length is None else length
    return (
        b"MESSAGE sip:b@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK" + str(n).encode() + b"\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
        b"Call-ID: s1\r\nCSeq: " + str(n).encode() + b" MESSAGE\r\n"
        b"Content-Length: " + cl + b"\r\n\r\n" + body
    )


STREAM = request(1, b"hello") + b"\r\n\r\n" + request(2, b"a\r\n\r\nb") + request(3) + b"\r\n"


def test_pipelined_messages_come_out_in_order():
    messages = StreamParser().feed(STREAM)
    assert [(m.cseq.seq, m.body) for m in messages] == [(1, b"hello"), (2, b"a\r\n\r\nb"), (3, b"")]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 500])
def test_any_chunking_gives_the_same_messages(size):
    parser = StreamParser()
    messages = []
    for i in range(0, len(STREAM), size):
        messages += parser.feed(STREAM[i : i + size])
    assert messages == StreamParser().feed(STREAM)
    assert parser.buffered == 0


def test_incomplete_body_waits_for_more():
    parser = StreamParser()
    data = request(1, b"0123456789")
    assert parser.feed(data[:-3]) == []
    assert [m.body for m in parser.feed(data[-3:])] == [b"0123456789"]


def test_keepalives_between_messages_are_skipped_and_counted():
    parser = StreamParser()
    assert parser.feed(b"\r\n\r\n") == []
    assert parser.keepalives == 2
    assert [m.cseq.seq for m in parser.feed(b"\r\n" + request(5))] == [5]
    assert parser.keepalives == 3


@pytest.mark.parametrize(
    "data, reason",
    [
        (request(1).replace(b"Content-Length: 0\r\n", b""), "Missing Content-Length"),
        (request(1, length=b"-5"), "Content-Length"),
        (request(1, length=b"five"), "Content-Length"),
        (request(1).replace(b"Content-Length: 0\r\n", b"Content-Length: 0\r\nl: 4\r\n"), "Conflicting"),
        # an empty value sends the head to the full header parser; a non-UTF-8 octet stays an error
        (request(1).replace(b"Content-Length: 0", b"Content-Length:\r\xef 0"), "Content-Length"),
    ],
)
def test_framing_error_is_fatal_for_the_connection(data, reason):
    parser = StreamParser()
    with pytest.raises(SipParseError) as caught:
        parser.feed(data)
    assert reason in caught.value.reason
    with pytest.raises(SipParseError):
        parser.feed(request(2))  # the stream cannot be resynchronised: close it


def test_oversized_head_is_a_513():
    parser = StreamParser(max_head_octets=1000)
    with pytest.raises(SipParseError) as caught:
        parser.feed(b"MESSAGE sip:b@example.com SIP/2.0\r\nX-Pad: " + b"x" * 2000)
    assert caught.value.status == 513


def test_bad_message_is_reported_after_the_good_ones_and_the_stream_goes_on():
    bad = request(2).replace(b"CSeq: 2 MESSAGE", b"CSeq: 2 INVITE")
    parser = StreamParser()
    assert [m.cseq.seq for m in parser.feed(request(1) + bad + request(3))] == [1]
    with pytest.raises(SipParseError) as caught:
        parser.feed(b"")
    assert "CSeq" in caught.value.reason
    assert not caught.value.fatal and caught.value.octets == bad
    assert [m.cseq.seq for m in parser.feed(b"")] == [3]


def test_folded_content_length_is_found():
    data = request(1, b"abc").replace(b"Content-Length: 3", b"Content-Length:\r\n 3")
    (message,) = StreamParser().feed(data)
    assert message.body == b"abc"


def test_stream_message_equals_the_datagram_parse():
    (message,) = StreamParser().feed(request(9, b"body"))
    assert message == parse_message(request(9, b"body"))


def test_declared_length_over_the_limit_is_a_513_before_buffering_it():
    parser = StreamParser(max_message_octets=10_000)
    with pytest.raises(SipParseError) as caught:
        parser.feed(request(1, length=b"20000"))
    assert caught.value.status == 513 and parser.buffered == 0


def drain(parser: StreamParser, chunks: list[bytes]) -> tuple[list[int], str | None]:
    """The chunks read as a transport reads them: the messages' sequence numbers, and the
    reason of the fatal error that ended the stream (None if none did)."""
    out = read_stream(parser, chunks)
    seqs = [parse_message(item[1]).cseq.seq for item in out if item[0] == "message"]
    fatal = [item[2] for item in out if item[0] == "error" and item[3]]
    return seqs, fatal[0] if fatal else None


GOOD_THEN_GARBAGE = request(1) + request(2) + b"X\r\n\r\n"


@pytest.mark.parametrize("cut", range(len(GOOD_THEN_GARBAGE) + 1))
def test_a_framing_error_never_discards_the_messages_before_it(cut):
    chunks = [GOOD_THEN_GARBAGE[:cut], GOOD_THEN_GARBAGE[cut:]]
    assert drain(StreamParser(), chunks) == ([1, 2], "Missing Content-Length on a stream transport")


def test_messages_before_a_framing_error_come_out_first_and_the_error_on_the_next_call():
    parser = StreamParser()
    assert [m.cseq.seq for m in parser.feed(GOOD_THEN_GARBAGE)] == [1, 2]
    assert parser.holds_error and parser.buffered == 0
    for _ in range(2):  # and on every call after it: the stream is over
        with pytest.raises(SipParseError) as caught:
            parser.feed(request(3))
        assert caught.value.fatal


GOOD_BAD_GOOD = request(1) + request(2).replace(b"CSeq: 2 MESSAGE", b"CSeq: 2 INVITE") + request(3)


@pytest.mark.parametrize("cut", range(len(GOOD_BAD_GOOD) + 1))
def test_a_bad_message_between_good_ones_gives_the_same_result_at_every_cut(cut):
    chunks = [GOOD_BAD_GOOD[:cut], GOOD_BAD_GOOD[cut:]]
    assert drain(StreamParser(), chunks) == ([1, 3], None)


def test_a_framing_error_carries_the_head_it_could_not_frame():
    parser = StreamParser()
    head = request(1).replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(SipParseError) as caught:
        parser.feed(head + b"trailing")
    assert caught.value.fatal and caught.value.octets == head


def test_a_ten_megabyte_content_length_is_a_513_with_the_head_to_answer_from():
    data = request(1, length=b"10485760")
    with pytest.raises(SipParseError) as caught:
        StreamParser().feed(data)
    assert (caught.value.status, caught.value.fatal, caught.value.octets) == (513, True, data)


def test_an_oversized_head_carries_its_complete_lines():
    parser = StreamParser(max_head_octets=1000)
    start = b"MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\n"
    with pytest.raises(SipParseError) as caught:
        parser.feed(start + b"X-Pad: " + b"x" * 2000)
    assert caught.value.octets == start


@pytest.mark.parametrize("chunk", [1000, 1500, 3000])
def test_an_oversized_head_is_a_513_however_the_stream_is_cut(chunk):
    data = request(1).replace(b"Call-ID: s1", b"Call-ID: " + b"x" * 1200)
    parser = StreamParser(max_head_octets=1000)
    with pytest.raises(SipParseError) as caught:
        for i in range(0, len(data), chunk):
            parser.feed(data[i : i + chunk])
    assert caught.value.status == 513 and caught.value.fatal
