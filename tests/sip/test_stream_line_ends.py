"""StreamParser frames messages with bare-LF line ends as parse_message reads them.

parse_message tolerates bare LF line ends (and leading CRLFs); on a stream the head end is
found the same way (LF LF, CRLF LF or LF CRLF as well as CRLF CRLF), so such a peer gets its
messages parsed instead of a connection that waits until the 64 KiB head limit.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.sip import StreamParser, parse_message

LF = (
    b"OPTIONS sip:b@example.com SIP/2.0\n"
    b"Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\n"
    b"From: <sip:a@example.com>;tag=1\n"
    b"To: <sip:b@example.com>\n"
    b"Call-ID: lf1\n"
    b"CSeq: 1 OPTIONS\n"
    b"Content-Length: 4\n"
    b"\n"
) + b"a\n\nb"
CRLF = LF.replace(b"\n", b"\r\n").replace(b"Content-Length: 4", b"Content-Length: 6").replace(b"lf1", b"crlf1")
VARIANTS = [LF, LF.replace(b"4\n\n", b"4\n\r\n"), LF.replace(b"4\n\n", b"4\r\n\n"), CRLF]


def _feed(chunks: list[bytes]) -> list:
    parser = StreamParser()
    out = []
    for chunk in chunks:
        out += parser.feed(chunk)
    assert parser.buffered == 0
    return out


def test_each_line_end_style_frames_and_equals_the_datagram_parse():
    for data in VARIANTS:
        (message,) = _feed([data])
        assert message == parse_message(data)
    (lf,) = _feed([LF])
    assert lf.body == b"a\n\nb" and lf.call_id == "lf1"


def test_a_crlf_body_holding_empty_lf_lines_is_still_framed_by_content_length():
    (message,) = _feed([CRLF])
    assert message.body == b"a\r\n\r\nb" and message.call_id == "crlf1"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(VARIANTS), min_size=1, max_size=4), st.data())
def test_any_chunking_of_mixed_line_ends_gives_the_same_messages(sequence, draw):
    stream = b"\r\n".join(sequence)  # keep-alive CRLFs between some of them
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    assert [m.call_id for m in _feed(chunks)] == [m.call_id for m in map(parse_message, sequence)]
