"""What a peer's bad or greedy input costs the endpoint: a bad request is answered and the
connection (or the UDP socket) goes on; a message over the limit is answered 513 and its
connection closed; one address holds at most `max_connections_per_address` connections; and
connection churn leaves the endpoint's tables empty."""

import asyncio
import socket
from pathlib import Path

import pytest

from simulator.endpoint import SipEndpoint, TransportLimits
from simulator.sip import parse_message
from tests.endpoint.helpers import on_both, pair, request, run_on, sim_lab, target
from tests.support.net import DatagramRecorder, Recorder
from tests.support.pki import PROXY, SBC

HEAD = (b"OPTIONS sip:sip.pstnhub.microsoft.com SIP/2.0\r\n"
        b"Via: SIP/2.0/{T} sbc1.contoso.com;branch=z9hG4bKbad1\r\n"
        b"From: <sip:x@contoso.com>;tag=1\r\nTo: <sip:sip.pstnhub.microsoft.com>\r\n"
        b"Call-ID: bad@x\r\nCSeq: 1 OPTIONS\r\n")
BARE_CR = HEAD.replace(b"branch=z9hG4bKbad1\r\n", b"branch=z9hG4bKbad1\rx\r\n") + b"Content-Length: 0\r\n\r\n"
BAD_MAX_FORWARDS = HEAD + b"Max-Forwards: lots\r\nContent-Length: 0\r\n\r\n"
TEN_MB_BODY = HEAD + b"Content-Length: 10000000\r\n\r\n" + b"x" * 1000
ENDLESS_HEAD = HEAD + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 60) for i in range(400))



BAD_REQUESTS = [
    pytest.param(network, bad, marks=[*marks, *([pytest.mark.real] if network == "real" else [])],
                 id=f"{network}-{name}")
    for network in ("sim", "real")
    for name, bad, marks in (("bare-cr", BARE_CR, []), ("bad-max-forwards", BAD_MAX_FORWARDS, []))
]


@pytest.mark.parametrize(("network", "bad"), BAD_REQUESTS)
def test_a_bad_request_on_tls_is_answered_400_and_the_connection_serves_the_next(lab_pki, network, bad):
    async def main(net):
        sbc, proxy = await pair(net, lab_pki, "tls")
        first = await sbc.request(request("OPTIONS", sbc, "tls"), target(proxy, "tls")).final()
        (conn,) = sbc.connections.values()
        conn.write(bad.replace(b"{T}", b"TLS"))
        second = await sbc.request(request("OPTIONS", sbc, "tls"), target(proxy, "tls")).final()
        after = list(sbc.connections.values())
        is_open = conn.is_open
        await sbc.close(), await proxy.close()
        return net, first, second, conn, after, is_open

    net, first, second, conn, after, is_open = run_on(network, main)
    assert (first.status, second.status) == (200, 200) and after == [conn] and is_open
    (stray,) = net.events.select("sip.response.stray", node="sbc")  # the 400, matching no transaction
    assert stray["status"] == 400 and stray["call_id"] == "bad@x"
    assert not net.events.select("sip.internal_error")


@pytest.mark.parametrize("network", on_both())
def test_udp_datagram_callback_survives_a_bare_cr(lab_pki, network):
    async def main(net):
        _, proxy = await pair(net, lab_pki, "udp")
        transport, recorder = await net.open_datagram(SBC, 0, DatagramRecorder)
        good = HEAD.replace(b"bad", b"good") + b"Content-Length: 0\r\n\r\n"
        for data in (BARE_CR, good):  # rport: answers go back to the port they came from
            transport.sendto(data.replace(b"{T}", b"UDP").replace(b";branch=", b";rport;branch="),
                             (net.resolve(PROXY), proxy.listen_ports["udp"]))
        answers = []
        while not any(a.call_id == "good@x" for a in answers):
            await recorder.arrived.wait()
            recorder.arrived.clear()
            answers = [parse_message(d) for d, _, _ in recorder.datagrams]
        transport.close()
        await proxy.close()
        return [(a.status, a.call_id) for a in answers]

    answers = run_on(network, main)
    assert answers[-1] == (200, "good@x") and set(answers[:-1]) <= {(400, "bad@x")}


@pytest.mark.sim
@pytest.mark.parametrize("data", [TEN_MB_BODY, ENDLESS_HEAD], ids=["10MB-content-length", "endless-head"])
async def test_a_message_over_the_limit_is_answered_513_then_closed(lab_pki, data):
    net = sim_lab()
    await pair(net, lab_pki, "tcp")
    transport, recorder = await net.connect(SBC, PROXY, 5060, Recorder)
    transport.write(data.replace(b"{T}", b"TCP"))
    await asyncio.wait_for(recorder.lost, 5)
    assert parse_message(bytes(recorder.received)).status == 513


@pytest.mark.sim
@pytest.mark.parametrize("data", [TEN_MB_BODY, ENDLESS_HEAD], ids=["10MB-content-length", "endless-head"])
async def test_a_message_over_the_limit_closes_the_connection_and_frees_its_buffer(lab_pki, data):
    net = sim_lab()
    _, proxy = await pair(net, lab_pki, "tcp")
    transport, recorder = await net.connect(SBC, PROXY, 5060, Recorder)
    transport.write(data.replace(b"{T}", b"TCP"))
    await asyncio.wait_for(recorder.lost, 5)
    (error,) = net.events.select("sip.parse_error", node="proxy")
    assert error["status"] == 513
    assert proxy.connections == {} and proxy.inbound_per_address == {}


@pytest.mark.sim
async def test_buffered_octets_stay_under_the_limit(lab_pki):
    net = sim_lab()
    _, proxy = await pair(net, lab_pki, "tcp")
    transport, recorder = await net.connect(SBC, PROXY, 5060, Recorder)
    transport.write(HEAD.replace(b"{T}", b"TCP"))  # a head that never ends, yet
    await asyncio.sleep(1)
    (conn,) = proxy.connections.values()
    buffered, limits = conn.buffered, proxy.limits
    assert 0 < buffered <= limits.max_head_octets <= limits.max_message_octets


@pytest.mark.parametrize(("network", "transport_name"), on_both(["tcp", "tls"]))
def test_an_address_over_the_connection_limit_is_refused(lab_pki, network, transport_name):
    async def main(net):
        _, proxy = await pair(net, lab_pki, transport_name)
        proxy.limits = TransportLimits(max_connections_per_address=2)
        recorders = []
        for _ in range(3):
            _, recorder = await net.connect(SBC, PROXY, proxy.listen_ports[transport_name], Recorder)
            recorders.append(recorder)
        await asyncio.wait_for(recorders[-1].lost, 5)
        lost = [r.lost.done() for r in recorders]
        for recorder in recorders:
            recorder.transport.close()
        await proxy.close()
        return net, proxy, lost

    net, proxy, lost = run_on(network, main)
    assert lost == [False, False, True]
    (refused,) = net.events.select("sip.conn.refused", node="proxy")
    assert refused["limit"] == 2 and refused["transport"] == transport_name


@pytest.mark.sim
async def test_connection_churn_leaves_the_endpoint_tables_empty(lab_pki):
    net = sim_lab(latency=0.001)
    sbc, proxy = await pair(net, lab_pki, "tcp")
    for _ in range(2000):
        response = await sbc.request(request("OPTIONS", sbc, "tcp"), target(proxy, "tcp")).final()
        assert response.status == 200
        for conn in list(sbc.connections.values()):
            conn.close("churn")
        while proxy.connections:
            await asyncio.sleep(0.001)
    await asyncio.sleep(1)
    for ep in (sbc, proxy):
        assert ep.connections == {} and ep.inbound_per_address == {}
        assert ep._incoming == {} and ep._clients == {} and ep._tasks == set()
        assert ep.core.awaiting_ack == {} and list(ep.layer.transactions()) == []
    assert len(net_events(proxy, "sip.conn.opened")) == 2000


def net_events(ep: SipEndpoint, name: str) -> list:
    return ep.events.select(name, node=ep.node)


RMEM_MAX = Path("/proc/sys/net/core/rmem_max")


@pytest.mark.real
@pytest.mark.skipif(not RMEM_MAX.exists(), reason="Linux only: the kernel's cap is net.core.rmem_max")
@pytest.mark.parametrize("requested", [256 * 1024, 64 * 1024 * 1024])
def test_a_udp_socket_gets_the_receive_buffer_asked_for_up_to_the_kernels_cap(requested):
    async def body(net):
        ep = SipEndpoint(net, host=SBC, node="sbc", limits=TransportLimits(udp_receive_buffer_octets=requested))
        await ep.listen("udp", 0)
        sock = ep.listeners[0].endpoint[1].transport.get_extra_info("socket")
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        await ep.close()
        return granted, net.events.select("sip.udp.buffer", node="sbc")

    granted, [event] = run_on("real", body)
    # Linux grants twice the request (its bookkeeping), the request first capped at rmem_max
    assert granted == 2 * min(requested, int(RMEM_MAX.read_text()))
    assert (event["requested"], event["granted"]) == (requested, granted)


@pytest.mark.sim
async def test_the_sim_network_has_no_socket_buffer_to_size(lab_pki):
    net = sim_lab()
    ep = SipEndpoint(net, host=SBC, node="sbc", limits=TransportLimits(udp_receive_buffer_octets=1 << 20))
    await ep.listen("udp", 5060)
    assert net.events.select("sip.udp.buffer") == []
    await ep.close()


@pytest.mark.real
@pytest.mark.skipif(not RMEM_MAX.exists(), reason="Linux only: SO_MEMINFO")
def test_the_octets_waiting_unread_on_the_udp_socket_are_known():
    async def body(net):
        ep = SipEndpoint(net, host=SBC, node="sbc")
        await ep.listen("udp", 0)
        empty = ep.udp_queued_octets()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(10):  # the loop does not run meanwhile: they wait in the kernel
                sender.sendto(b"OPTIONS", (net.resolve(SBC), ep.listen_ports["udp"]))
        waiting = ep.udp_queued_octets()
        await ep.close()
        return empty, waiting

    empty, waiting = run_on("real", body)
    assert empty == 0 and waiting >= 10 * len(b"OPTIONS")
