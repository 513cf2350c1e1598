"""The same SIP exchanges on both networks over UDP, TCP and TLS, asserting on
what the far end actually received (its sip.received events and its handler's view)."""

import asyncio

import pytest

from simulator.endpoint import SipDialog
from tests.endpoint.helpers import TRANSPORTS, on_both, pair, received, request, run_on, target

CASES = on_both(TRANSPORTS)


@pytest.mark.parametrize(("network", "transport"), CASES)
def test_options(lab_pki, network, transport):
    async def body(net):
        sbc, proxy = await pair(net, lab_pki, transport)
        proxy.on_request = lambda incoming: incoming.respond(200, headers=[("Allow", "INVITE, ACK, OPTIONS")])
        response = await sbc.request(request("OPTIONS", sbc, transport), target(proxy, transport)).final()
        await sbc.close(), await proxy.close()
        return response, received(net, "proxy")

    response, at_proxy = run_on(network, body)
    assert response.status == 200 and response.headers.get_all("Allow") == ["INVITE", "ACK", "OPTIONS"]
    assert [s.split()[0] for s in at_proxy] == ["OPTIONS"]


@pytest.mark.parametrize(("network", "transport"), CASES)
def test_invite_ringing_answer_ack_bye(lab_pki, network, transport):
    async def body(net):
        sbc, proxy = await pair(net, lab_pki, transport)
        callee = {}

        async def on_request(incoming):
            if incoming.request.method == "INVITE":
                incoming.respond(180)
                await asyncio.sleep(0.05)
                dialog = SipDialog.accept(incoming, body=b"v=0\r\n", content_type="application/sdp")
                callee["ack"] = await dialog.acked()
                callee["dialog"] = dialog
            else:
                callee["bye_dialog"] = incoming.dialog
                incoming.respond(200)

        proxy.on_request = on_request
        provisional = []
        invite = request("INVITE", sbc, transport, body=b"v=0\r\n", content_type="application/sdp")
        response, dialog = await SipDialog.invite(sbc, invite, target(proxy, transport),
                                                  on_provisional=lambda r: provisional.append(r.status))
        while "ack" not in callee:
            await asyncio.sleep(0.01)
        bye = await dialog.request("BYE")
        await sbc.close(), await proxy.close()
        return response, provisional, bye, callee, dialog, received(net, "proxy"), received(net, "sbc")

    response, provisional, bye, callee, dialog, at_proxy, at_sbc = run_on(network, body)
    assert response.status == 200 and response.body == b"v=0\r\n"
    assert provisional == [100, 180]
    assert [s.split()[0] for s in at_proxy] == ["INVITE", "ACK", "BYE"]
    assert [s.split(" ", 1)[0] for s in at_sbc] == ["100", "180", "200", "200"]
    assert callee["ack"].method == "ACK" and callee["ack"].cseq.seq == 1
    assert callee["bye_dialog"] is callee["dialog"] and callee["dialog"].terminated
    assert bye.status == 200 and dialog.terminated


@pytest.mark.parametrize(("network", "transport"), CASES)
def test_cancel_of_a_ringing_invite(lab_pki, network, transport):
    async def body(net):
        sbc, proxy = await pair(net, lab_pki, transport)
        seen = []

        def on_request(incoming):
            seen.append(incoming)
            incoming.respond(180)  # and never answers: the caller gives up

        proxy.on_request = on_request
        ringing = asyncio.Event()
        tx = sbc.request(request("INVITE", sbc, transport), target(proxy, transport),
                         on_provisional=lambda r: r.status == 180 and ringing.set())
        await ringing.wait()
        cancel = tx.cancel()
        final, cancel_final = await tx.final(), await cancel.final()
        await asyncio.sleep(0.05)  # the ACK for the 487 reaches the proxy
        await sbc.close(), await proxy.close()
        return final, cancel_final, seen, received(net, "proxy")

    final, cancel_final, seen, at_proxy = run_on(network, body)
    assert final.status == 487 and cancel_final.status == 200
    assert [incoming.request.method for incoming in seen] == ["INVITE"]  # the CANCEL is ours to answer
    assert seen[0].cancelled and seen[0].final.status == 487
    assert [s.split()[0] for s in at_proxy] == ["INVITE", "CANCEL", "ACK"]


@pytest.mark.parametrize(("network", "transport"), CASES)
def test_register(lab_pki, network, transport):
    async def body(net):
        sbc, proxy = await pair(net, lab_pki, transport)
        bindings = {}

        def registrar(incoming):
            contact = incoming.request.headers.get("Contact")
            bindings[str(incoming.request.to.uri)] = (contact, incoming.source)
            incoming.respond(200, headers=[("Contact", f"{contact};expires=600")])

        proxy.on_request = registrar
        register = request("REGISTER", sbc, transport, extra=[("Expires", "600")])
        response = await sbc.request(register, target(proxy, transport)).final()
        await sbc.close(), await proxy.close()
        return response, bindings, net

    response, bindings, net = run_on(network, body)
    assert response.status == 200 and response.contacts[0].params.get("expires") == "600"
    ((aor, (contact, source)),) = bindings.items()
    assert aor == "sip:sip.pstnhub.microsoft.com" and "sbc1.contoso.com" in contact
    assert source.transport == transport and source.address == net.resolve("sbc1.contoso.com")
