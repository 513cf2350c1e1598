"""SDP (RFC 4566) parsing/serializing and RFC 3264 offer/answer, as a user of the SBC relies on them."""

from pathlib import Path

import pytest

from simulator.sip.sdp import (
    G722,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    SdpError,
    SessionDescription,
    answer_direction,
    common_codec,
    hold,
    make_answer,
    make_offer,
    resume,
)

CORPUS_5118 = Path(__file__).resolve().parents[1] / "data" / "rfc4475" / "rfc5118"

TEAMS_OFFER = (
    "v=0\r\n"
    "o=- 7263 0 IN IP4 52.114.14.70\r\n"
    "s=session\r\n"
    "c=IN IP4 52.114.14.70\r\n"
    "b=CT:10000000\r\n"
    "t=0 0\r\n"
    "m=audio 52986 RTP/SAVP 104 9 103 111 18 0 8 97 101 13 118\r\n"
    "c=IN IP4 52.114.14.70\r\n"
    "a=rtcp:52987\r\n"
    "a=ice-ufrag:7Xx2\r\n"
    "a=ice-pwd:DHYhT9tG1bbmy0f4TnoH2tYd\r\n"
    "a=candidate:1 1 UDP 2130706431 52.114.14.70 52986 typ host \r\n"
    "a=candidate:1 2 UDP 2130705918 52.114.14.70 52987 typ host \r\n"
    "a=x-candidate-ipv6:2 1 UDP 2130705919 2001:db8::1 52986 typ host\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:dE9CgOWnEU0k7cGL6x0ZtZ+gbNr6O6FAvu7zfKyr|2^31\r\n"
    "a=maxptime:200\r\n"
    "a=rtpmap:104 SILK/16000\r\n"
    "a=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:103 SILK/8000\r\n"
    "a=rtpmap:111 SIREN/16000\r\n"
    "a=fmtp:111 bitrate=16000\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:97 RED/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=rtpmap:13 CN/8000\r\n"
    "a=rtpmap:118 CN/16000\r\n"
    "a=ptime:20\r\n"
)


def test_teams_offer_round_trips_byte_for_byte():
    assert SessionDescription.parse(TEAMS_OFFER.encode()).to_bytes() == TEAMS_OFFER.encode()


def test_crypto_and_ice_attributes_are_kept_verbatim():
    audio = SessionDescription.parse(TEAMS_OFFER).audio
    assert audio.crypto == ["2 AES_CM_128_HMAC_SHA1_80 inline:dE9CgOWnEU0k7cGL6x0ZtZ+gbNr6O6FAvu7zfKyr|2^31"]
    assert audio.ice_ufrag == "7Xx2"
    assert audio.ice_pwd == "DHYhT9tG1bbmy0f4TnoH2tYd"
    assert audio.candidates == [
        "1 1 UDP 2130706431 52.114.14.70 52986 typ host ",
        "1 2 UDP 2130705918 52.114.14.70 52987 typ host ",
    ]


def test_connection_address_and_port_are_read():
    sdp = SessionDescription.parse(TEAMS_OFFER)
    assert sdp.connection_of(sdp.audio).address == "52.114.14.70"
    assert sdp.audio.port == 52986
    assert sdp.audio.proto == "RTP/SAVP"


def test_codecs_resolve_rtpmap_fmtp_and_static_payload_types():
    sdp = SessionDescription.parse("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
                                   "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                                   "a=fmtp:101 0-15\r\n")
    assert sdp.audio.codecs == [PCMU, PCMA, Codec(101, "telephone-event", 8000, fmtp="0-15")]


def test_answer_intersects_codecs_in_offerer_order_with_offerer_numbers():
    offer = SessionDescription.parse(TEAMS_OFFER)
    answer = make_answer(offer, "192.0.2.10", 20000, [PCMA, PCMU, Codec(96, "telephone-event", 8000)])
    audio = answer.audio
    assert [c.name for c in audio.codecs] == ["PCMU", "PCMA", "telephone-event"]
    assert audio.formats == ["0", "8", "101"]
    assert audio.port == 20000
    assert answer.connection.address == "192.0.2.10"
    assert common_codec(offer, answer) == PCMU


@pytest.mark.parametrize(
    ("offered", "wanted", "answered"),
    [
        ("sendrecv", "sendrecv", "sendrecv"),
        ("sendonly", "sendrecv", "recvonly"),
        ("recvonly", "sendrecv", "sendonly"),
        ("inactive", "sendrecv", "inactive"),
        ("sendrecv", "sendonly", "sendonly"),
        ("sendonly", "sendonly", "inactive"),
    ],
)
def test_answer_mirrors_the_offered_direction(offered, wanted, answered):
    assert answer_direction(offered, wanted) == answered
    offer = make_offer("10.0.0.1", 4000, [PCMU], direction=offered)
    answer = make_answer(offer, "10.0.0.2", 5000, [PCMU], direction=wanted)
    assert answer.direction_of(answer.audio) == answered


def test_offer_without_common_codec_is_refused():
    offer = make_offer("10.0.0.1", 4000, [G722])
    with pytest.raises(SdpError, match="488"):
        make_answer(offer, "10.0.0.2", 5000, [PCMU, PCMA])


def test_telephone_event_alone_is_not_a_common_codec():
    offer = make_offer("10.0.0.1", 4000, [G722, TELEPHONE_EVENT])
    with pytest.raises(SdpError):
        make_answer(offer, "10.0.0.2", 5000, [PCMU, TELEPHONE_EVENT])


def test_rejected_streams_keep_their_place_with_port_zero():
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=video 3227 RTP/AVP 31\r\nm=audio 4000 RTP/AVP 0\r\n"
    )
    answer = make_answer(offer, "10.0.0.2", 5000, [PCMU])
    assert [(m.media, m.port) for m in answer.media] == [("video", 0), ("audio", 5000)]


def test_hold_re_offer_is_sendonly_with_incremented_version():
    offer = make_offer("10.0.0.1", 4000, [PCMU])
    held = hold(offer)
    assert held.direction_of(held.audio) == "sendonly"
    assert held.origin.session_version == offer.origin.session_version + 1
    assert held.is_hold and not offer.is_hold
    assert offer.direction_of(offer.audio) == "sendrecv"  # the original is not changed
    answer = make_answer(held, "10.0.0.2", 5000, [PCMU])
    assert answer.direction_of(answer.audio) == "recvonly"
    resumed = resume(held)
    assert resumed.direction_of(resumed.audio) == "sendrecv"
    assert resumed.origin.session_version == held.origin.session_version + 1


def test_hold_of_a_recvonly_stream_is_inactive():
    held = hold(make_offer("10.0.0.1", 4000, [PCMU], direction="recvonly"))
    assert held.direction_of(held.audio) == "inactive"


def test_session_level_direction_applies_when_media_has_none():
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=inactive\r\n"
        "m=audio 4000 RTP/AVP 0\r\n"
    )
    assert sdp.direction_of(sdp.audio) == "inactive"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        ("o=- 1 1 IN IP4 a\r\nv=0\r\n", "starts with v="),
        ("v=1\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\n", "v=0"),
        ("v=0\r\ns=-\r\nt=0 0\r\n", "missing o="),
        ("v=0\r\no=- 1 1 IN IP4 a\r\nt=0 0\r\n", "missing s="),
        ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\n", "missing t="),
        ("v=0\r\no=- 1 x IN IP4 a\r\ns=-\r\nt=0 0\r\n", "session version"),
        ("v=0\r\no=- 1\r\ns=-\r\nt=0 0\r\n", "6 fields"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nc=IN IP4\r\nt=0 0\r\n", "3 fields"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nc=IN IP4 a\r\nt=0 0\r\nm=audio port RTP/AVP 0\r\n", "port"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nc=IN IP4 a\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", "range"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "no c= line"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nx=what\r\n", "unknown SDP line type"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nt=0 0\r\nhello\r\n", "not '<type>=<value>'"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nc=IN IP4 a\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nt=0 0\r\n",
         "not allowed in a media section"),
        (b"v=0\r\ns=\xff\r\n", "UTF-8"),
        ("v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\nc=IN IP4 a\r\nt=0 0\r\nm=audio 4000 RTP/AVP 96\r\n"
         "a=rtpmap:96 opus/fast\r\n", "rtpmap"),
    ],
)
def test_bad_sdp_raises_sdp_error_naming_the_problem(text, complaint):
    with pytest.raises(SdpError, match=complaint):
        SessionDescription.parse(text)


@pytest.mark.parametrize("name", ["ipv6-in-sdp", "mult-ip-in-sdp", "ipv4-mapped-ipv6"])
def test_rfc5118_sdp_bodies_with_ipv6_addresses_parse(name):
    data = (CORPUS_5118 / name).read_bytes()
    body = data.split(b"\n\n", 1)[1]
    sdp = SessionDescription.parse(body)
    addresses = [sdp.connection_of(m).address for m in sdp.media]
    assert addresses and all(addresses)
    assert SessionDescription.parse(sdp.to_bytes()).to_bytes() == sdp.to_bytes()


def test_bare_lf_line_endings_are_read_and_written_back_as_crlf():
    text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
    assert SessionDescription.parse(text).to_bytes() == text.replace("\n", "\r\n").encode()


def test_offer_carries_crypto_and_ice_attributes_given_and_hold_keeps_them():
    offer = make_offer("10.0.0.1", 4000, [PCMU], proto="RTP/SAVP",
                       attributes=[("crypto", "1 AES_CM_128_HMAC_SHA1_80 inline:KEY"), ("ice-ufrag", "u1")])
    held = hold(SessionDescription.parse(offer.to_bytes()))
    assert held.audio.crypto == ["1 AES_CM_128_HMAC_SHA1_80 inline:KEY"]
    assert held.audio.ice_ufrag == "u1" and held.audio.proto == "RTP/SAVP"
