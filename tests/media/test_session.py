"""What two session descriptions agree for one side's RTP stream (RFC 3264), and the SDP of no media."""

from __future__ import annotations

import pytest

from simulator.media.session import stream_spec, without_media_address
from simulator.sip.sdp import G722, PCMA, PCMU, SessionDescription, make_answer, make_offer


def agreed(offer: SessionDescription, answer: SessionDescription):  # type: ignore[no-untyped-def]
    """The offerer's side of the stream."""
    return stream_spec("c", "a.example", offer, answer, offer=offer, answer=answer)


@pytest.mark.parametrize(("offer_dir", "answer_dir", "offerer_sends", "answerer_sends"), [
    ("sendrecv", "sendrecv", True, True),
    ("sendonly", "sendrecv", True, False),   # hold: the answer mirrors it as recvonly
    ("inactive", "sendrecv", False, False),
    ("recvonly", "sendrecv", False, True),
])
def test_each_side_sends_only_when_both_sdps_allow_it(offer_dir: str, answer_dir: str, offerer_sends: bool,
                                                      answerer_sends: bool) -> None:
    offer = make_offer("10.0.0.1", 4000, [PCMU], direction=offer_dir)
    answer = make_answer(offer, "10.0.0.2", 5000, [PCMU], direction=answer_dir)
    mine = agreed(offer, answer)
    theirs = stream_spec("c", "b.example", answer, offer, offer=offer, answer=answer)
    assert (mine.send, theirs.send) == (offerer_sends, answerer_sends)
    assert (mine.remote, theirs.remote) == (("10.0.0.2", 5000), ("10.0.0.1", 4000))


def test_the_codec_is_the_answers_first_and_ptime_the_peers() -> None:
    offer = make_offer("10.0.0.1", 4000, [PCMU, PCMA])
    answer = make_answer(offer, "10.0.0.2", 5000, [PCMA], attributes=[("ptime", "30"), ("rtcp-mux", None)])
    spec = agreed(offer, answer)
    assert (spec.codec.name, spec.ptime_ms, spec.rtcp_mux) == ("PCMA", 30, False)  # mux needs both sides


def test_a_stream_drlab_cannot_carry_says_why() -> None:
    offer = make_offer("10.0.0.1", 4000, [G722])
    assert agreed(offer, make_answer(offer, "10.0.0.2", 5000, [G722])) == "codec G722: drlab carries G.711 only"
    rejected = SessionDescription.parse(str(offer).replace("m=audio 4000", "m=audio 0"))
    assert agreed(offer, rejected) == "no audio stream accepted"


def test_an_sdp_without_a_media_address_leaves_nobody_to_send_to() -> None:
    offer = make_offer("10.0.0.1", 4000, [PCMU])
    silent = SessionDescription.parse(without_media_address(offer.to_bytes()))
    assert silent.connection.address == "0.0.0.0"
    assert agreed(make_offer("10.0.0.2", 5000, [PCMU]), silent).remote is None
    assert without_media_address(b"not sdp") == b"not sdp"
