"""Max-Forwards across a B2BUA (RFC 7332 §3): one hop less on the request it sends on; none left is 483."""

from __future__ import annotations

import pytest

from simulator.sip import SipParseError, parse_message
from simulator.sip.builders import DEFAULT_MAX_FORWARDS, onward_max_forwards, out_of_hops


def _invite(max_forwards: str | None) -> object:
    line = "" if max_forwards is None else f"Max-Forwards: {max_forwards}\r\n"
    return parse_message(
        ("INVITE sip:+14255550101@sbc1.contoso.com SIP/2.0\r\n"
         "Via: SIP/2.0/TLS pstn.example.net;branch=z9hG4bK1\r\n" + line +
         "From: <sip:+14255550199@pstn.example.net>;tag=1\r\nTo: <sip:+14255550101@sbc1.contoso.com>\r\n"
         "Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").encode())  # fmt: skip


@pytest.mark.parametrize("received, onward, exhausted", [
    ("70", 69, False), ("1", 0, False), ("0", 0, True), (None, DEFAULT_MAX_FORWARDS, False), ("255", 254, False),
])
def test_the_onward_request_has_one_hop_less(received, onward, exhausted) -> None:
    request = _invite(received)
    assert onward_max_forwards(request) == onward
    assert out_of_hops(request) is exhausted


def test_an_unreadable_max_forwards_is_a_400_not_a_hop_count() -> None:
    with pytest.raises(SipParseError) as error:
        _invite("many")
    assert error.value.status == 400 and "Max-Forwards" in error.value.reason
