"""SipDialog on the sim network: in-dialog requests through the route set, re-INVITE ACKed,
out-of-order CSeq refused, requests within a dialog handed to the role with their dialog."""

import asyncio

import pytest

from simulator.endpoint import SipDialog
from tests.endpoint.helpers import pair, request, sim_lab, target

RECORD_ROUTE = "<sip:sip.pstnhub.microsoft.com:5061;transport=tls;lr>"


async def call(net, pki, *, uas_headers=()):
    sbc, proxy = await pair(net, pki, "tls")
    seen = []

    async def on_request(incoming):
        seen.append(incoming)
        if incoming.request.method == "INVITE" and incoming.dialog is None:
            await SipDialog.accept(incoming, headers=uas_headers).acked()
        elif incoming.request.method == "INVITE":
            incoming.respond(200, contact=proxy.contact("tls"))  # re-INVITE within the dialog
        else:
            incoming.respond(200)

    proxy.on_request = on_request
    response, dialog = await SipDialog.invite(sbc, request("INVITE", sbc, "tls"), target(proxy, "tls"))
    return sbc, proxy, dialog, seen


@pytest.mark.sim
async def test_in_dialog_requests_follow_the_record_route_and_reinvite_is_acked(lab_pki):
    net = sim_lab()
    sbc, proxy, dialog, seen = await call(net, lab_pki, uas_headers=[("Record-Route", RECORD_ROUTE)])
    reinvite = await dialog.request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
    await asyncio.sleep(1)
    bye = await dialog.request("BYE")
    assert reinvite.status == 200 and bye.status == 200
    assert dialog.dialog.route_set == [RECORD_ROUTE]
    methods = [i.request.method for i in seen]
    assert methods == ["INVITE", "INVITE", "BYE"]
    assert all(i.request.headers.get("Route") == RECORD_ROUTE for i in seen[1:])
    assert seen[1].dialog is seen[2].dialog is not None
    acks = [r["cseq"] for r in net.events.select("sip.received", node="proxy") if r["summary"].startswith("ACK")]
    assert acks == ["1 ACK", "2 ACK"]
    # one TLS connection carried the whole dialog
    assert len(net.events.select("tls.established", node="proxy")) == 1


@pytest.mark.sim
async def test_lower_cseq_within_a_dialog_is_refused_500(lab_pki):
    net = sim_lab()
    sbc, proxy, dialog, seen = await call(net, lab_pki)
    await dialog.request("INFO")  # CSeq 2
    dialog.dialog.local_seq = 0  # the next one goes out as CSeq 1: out of order (§12.2.2)
    response = await dialog.request("INFO")
    assert response.status == 500
    assert [i.request.method for i in seen] == ["INVITE", "INFO"]  # the role never saw it


@pytest.mark.sim
async def test_bye_from_the_callee_terminates_the_callers_dialog(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "tls")
    callee = {}

    async def on_invite(incoming):
        callee["dialog"] = SipDialog.accept(incoming)
        await callee["dialog"].acked()

    proxy.on_request = on_invite
    byes = []
    sbc.on_request = lambda incoming: (byes.append(incoming.dialog), incoming.respond(200))
    _, dialog = await SipDialog.invite(sbc, request("INVITE", sbc, "tls"), target(proxy, "tls"))
    while "dialog" not in callee:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    response = await callee["dialog"].request("BYE")
    assert response.status == 200 and byes == [dialog] and dialog.terminated
    assert dialog.dialog.id not in sbc.dialogs


@pytest.mark.sim
async def test_cancel_asked_for_before_any_provisional_goes_out_with_the_first_one(lab_pki):
    net = sim_lab(latency=0.05)
    sbc, proxy = await pair(net, lab_pki, "udp")
    cancelled = []

    async def slow_ring(incoming):
        incoming.on_cancel(lambda i: cancelled.append(i.request.call_id))
        await asyncio.sleep(2)
        incoming.respond(180)
        await asyncio.sleep(10)
        SipDialog.accept(incoming)  # too late: the CANCEL ended it

    proxy.on_request = slow_ring
    tx = sbc.request(request("INVITE", sbc, "udp"), target(proxy, "udp"))
    assert tx.cancel() is None  # §9.1: no CANCEL before a provisional response
    final = await tx.final()
    await asyncio.sleep(15)
    assert final.status == 487 and cancelled == [tx.request.call_id]
    (cancel_sent,) = [r for r in net.events.select("sip.sent", node="sbc") if r["summary"].startswith("CANCEL")]
    trying = [r for r in net.events.select("sip.received", node="sbc") if r["summary"].startswith("100")]
    assert cancel_sent["t"] == trying[0]["t"]  # on the first provisional, the 100 Trying
    assert [r["status"] for r in net.events.select("sip.response.discarded", node="proxy")] == [180]
    (error,) = net.events.select("sip.handler_error", node="proxy")
    assert "already answered 487 (cancelled)" in error["error"]
