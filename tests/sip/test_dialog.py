"""RFC 3261 §12 dialogs: creation, route sets, CSeq, in-dialog requests, hold, target refresh."""

import random

import pytest

from simulator.sip import parse_message
from simulator.sip.builders import make_request, make_response, new_branch, new_call_id, new_tag
from simulator.sip.dialog import Dialog, DialogError
from simulator.sip.sdp import PCMU, SessionDescription, make_offer

RR = ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]


def invite(record_routes=(), body=b"", contact="<sip:alice@192.0.2.1:5060>"):
    request = make_request(
        "INVITE", "sip:bob@example.com",
        from_="Alice <sip:alice@example.com>;tag=a1", to="Bob <sip:bob@example.com>",
        call_id="c1@192.0.2.1", cseq=7, via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKi1",
        contact=contact, extra_headers=[("Record-Route", rr) for rr in record_routes],
        body=body, content_type="application/sdp" if body else None,
    )
    return parse_message(request.to_bytes())


def reply(request, status, *, to_tag="b1", contact="<sip:bob@192.0.2.2:5070>"):
    return parse_message(make_response(request, status, to_tag=to_tag, contact=contact).to_bytes())


def uac(status=200, record_routes=RR):
    inv = invite(record_routes)
    return inv, Dialog.from_uac_response(inv, reply(inv, status), local_contact="<sip:alice@192.0.2.1:5060>",
                                         sent_by="192.0.2.1:5060")


def uas(record_routes=RR):
    inv = invite(record_routes)
    return inv, Dialog.from_uas_request(inv, "b1", local_contact="<sip:bob@192.0.2.2:5070>",
                                        sent_by="192.0.2.2:5070")


@pytest.mark.parametrize(("status", "state"), [(180, "Early"), (183, "Early"), (200, "Confirmed")])
def test_uac_dialog_state_follows_the_creating_response(status, state):
    _, dialog = uac(status)
    assert dialog.state == state
    assert dialog.id == ("c1@192.0.2.1", "a1", "b1")


@pytest.mark.parametrize("status", [100, 404])
def test_responses_without_dialog_semantics_create_none(status):
    inv = invite()
    with pytest.raises(DialogError):
        Dialog.from_uac_response(inv, reply(inv, status), local_contact="<sip:a@h>", sent_by="h")


def test_provisional_without_to_tag_creates_no_dialog():
    inv = invite()
    with pytest.raises(DialogError, match="To tag"):
        Dialog.from_uac_response(inv, reply(inv, 180, to_tag=None), local_contact="<sip:a@h>", sent_by="h")


def test_uac_route_set_is_record_route_reversed_and_target_is_contact():
    _, dialog = uac()
    assert dialog.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert dialog.remote_target == "sip:bob@192.0.2.2:5070"
    assert dialog.local_seq == 7 and dialog.remote_seq is None


def test_uas_route_set_keeps_record_route_order():
    _, dialog = uas()
    assert dialog.route_set == RR
    assert dialog.remote_target == "sip:alice@192.0.2.1:5060"
    assert dialog.remote_seq == 7 and dialog.id == ("c1@192.0.2.1", "b1", "a1")
    assert dialog.state == "Early"
    dialog.confirm()
    assert dialog.state == "Confirmed"


def test_early_dialog_is_confirmed_by_2xx_with_refreshed_target():
    inv, dialog = uac(180)
    dialog.receive_response(reply(inv, 200, contact="<sip:bob@198.51.100.9>"))
    assert dialog.state == "Confirmed" and dialog.remote_target == "sip:bob@198.51.100.9"


def test_bye_uses_next_cseq_loose_route_set_and_tags():
    _, dialog = uac()
    bye = parse_message(dialog.create_request("BYE", random.Random(1)).to_bytes())
    assert bye.method == "BYE" and bye.uri_text == "sip:bob@192.0.2.2:5070"
    assert bye.cseq.seq == 8 and bye.cseq.method == "BYE"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.from_.tag == "a1" and bye.to.tag == "b1" and bye.call_id == "c1@192.0.2.1"
    assert bye.top_via.branch.startswith("z9hG4bK")


def test_strict_router_takes_the_request_uri_and_target_goes_last():
    _, dialog = uac(record_routes=["<sip:strict.example.com>"])
    bye = dialog.create_request("BYE", random.Random(1))
    assert bye.uri_text == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == ["<sip:bob@192.0.2.2:5070>"]  # §12.2.1.1


def test_ack_for_2xx_keeps_the_invite_cseq_and_takes_a_new_branch():
    inv, dialog = uac()
    ack = dialog.create_ack(inv.cseq.seq, random.Random(1))
    assert ack.cseq.seq == 7 and ack.cseq.method == "ACK"
    assert ack.top_via.branch != inv.top_via.branch
    assert ack.uri_text == "sip:bob@192.0.2.2:5070"
    assert dialog.local_seq == 7  # an ACK uses no new CSeq number


def test_cseq_lower_than_the_last_one_is_rejected_with_500():
    _, dialog = uas()
    peer = Dialog.from_uac_response(invite(RR), reply(invite(RR), 200), local_contact="<sip:a@h>", sent_by="h")
    peer.local_seq = 20
    assert dialog.receive_request(peer.create_request("INFO", random.Random(1))) is None
    assert dialog.remote_seq == 21
    peer.local_seq = 9
    assert dialog.receive_request(peer.create_request("INFO", random.Random(2))) == 500
    assert dialog.remote_seq == 21


def test_reinvite_refreshes_the_remote_target():
    _, dialog = uas()
    request = make_request("INVITE", "sip:bob@192.0.2.2:5070", from_="<sip:alice@example.com>;tag=a1",
                           to="<sip:bob@example.com>;tag=b1", call_id="c1@192.0.2.1", cseq=8,
                           via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKr", contact="<sip:alice@203.0.113.5>")
    assert dialog.receive_request(parse_message(request.to_bytes())) is None
    assert dialog.remote_target == "sip:alice@203.0.113.5"


def test_hold_reinvite_carries_sendonly_sdp_and_resume_sendrecv():
    _, dialog = uac()
    dialog.local_sdp = make_offer("192.0.2.1", 4000, [PCMU])
    held = parse_message(dialog.create_hold(random.Random(1)).to_bytes())
    assert held.method == "INVITE" and held.cseq.seq == 8 and held.to.tag == "b1"
    assert held.content_type == "application/sdp"
    sdp = SessionDescription.parse(held.body)
    assert sdp.direction_of(sdp.audio) == "sendonly" and dialog.on_hold
    assert held.headers.get("Contact") == "<sip:alice@192.0.2.1:5060>"
    resumed = SessionDescription.parse(dialog.create_resume(random.Random(2)).body)
    assert resumed.direction_of(resumed.audio) == "sendrecv"
    assert resumed.origin.session_version == sdp.origin.session_version + 1


def test_terminated_dialog_builds_no_requests():
    _, dialog = uac()
    dialog.terminate()
    with pytest.raises(DialogError, match="terminated"):
        dialog.create_request("BYE", random.Random(1))


def test_matches_in_dialog_requests_and_responses():
    inv, dialog = uas()
    in_dialog = make_request("BYE", "sip:bob@192.0.2.2", from_="<sip:alice@example.com>;tag=a1",
                             to="<sip:bob@example.com>;tag=b1", call_id="c1@192.0.2.1", cseq=9,
                             via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKq")
    assert dialog.matches(parse_message(in_dialog.to_bytes()))
    other = in_dialog.to_bytes().replace(b"tag=b1", b"tag=zz")
    assert not dialog.matches(parse_message(other))


def test_random_parts_come_from_the_given_rng_only():
    assert new_branch(random.Random(5)) == new_branch(random.Random(5))
    assert new_tag(random.Random(5)) == new_tag(random.Random(5))
    assert new_call_id(random.Random(5), "h") == new_call_id(random.Random(5), "h")
    assert new_branch(random.Random(5)).startswith("z9hG4bK")


def test_response_copies_via_from_to_call_id_cseq_and_adds_the_tag():
    inv = invite(RR)
    ok = parse_message(make_response(inv, 200, to_tag="b1").to_bytes())
    assert [str(v) for v in ok.vias] == [str(v) for v in inv.vias]
    assert ok.from_.tag == "a1" and ok.to.tag == "b1"
    assert ok.call_id == inv.call_id and ok.cseq.seq == 7 and ok.cseq.method == "INVITE"
    assert ok.headers.get_all("Record-Route") == RR  # §12.1.1
    trying = make_response(inv, 100)
    assert trying.to.tag is None  # no tag on 100 Trying (§8.2.6.2)


def test_in_dialog_requests_keep_display_names_and_carry_each_tag_once():
    _, dialog = uac()
    bye = dialog.create_request("BYE", random.Random(1))
    assert bye.headers.get("From") == "Alice <sip:alice@example.com>;tag=a1"
    assert bye.headers.get("To") == "Bob <sip:bob@example.com>;tag=b1"
