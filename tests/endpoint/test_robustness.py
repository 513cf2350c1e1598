"""Bad input from a peer gets the right SIP answer or a named event, never a crash: malformed
requests answered with SipParseError's status, UDP garbage dropped, a stream that cannot be
re-framed closed; CRLF keep-alives; a role's failing handler; connects that fail."""

import asyncio

import pytest

from simulator.endpoint import SipEndpoint, Target, TransportFailure
from simulator.sip import parse_message
from tests.endpoint.helpers import pair, request, sim_lab, target
from tests.support.net import DatagramRecorder, Recorder
from tests.support.pki import PROXY, SBC

BAD_MAX_FORWARDS = (b"OPTIONS sip:sip.pstnhub.microsoft.com SIP/2.0\r\n"
                    b"Via: SIP/2.0/{T} 10.1.0.10:5070;branch=z9hG4bKbad1\r\n"
                    b"From: <sip:x@contoso.com>;tag=1\r\nTo: <sip:sip.pstnhub.microsoft.com>\r\n"
                    b"Call-ID: bad@x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: lots\r\nContent-Length: 0\r\n\r\n")
SIP_7 = BAD_MAX_FORWARDS.replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1).replace(b"Max-Forwards: lots", b"Max-Forwards: 70")


def good_options(transport: str) -> bytes:
    return (f"OPTIONS sip:sip.pstnhub.microsoft.com SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 10.1.0.10:5070;branch=z9hG4bKgood1\r\n"
            f"From: <sip:x@contoso.com>;tag=1\r\nTo: <sip:sip.pstnhub.microsoft.com>\r\n"
            f"Call-ID: good@x\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


async def raw_udp(net, data_list):
    """Send datagrams from the SBC host to the proxy's 5060; what came back."""
    transport, recorder = await net.open_datagram(SBC, 5070, DatagramRecorder)
    for data in data_list:
        transport.sendto(data, (net.resolve(PROXY), 5060))
        await asyncio.sleep(1)
    return [parse_message(d) for d, _, _ in recorder.datagrams]


@pytest.mark.sim
async def test_udp_malformed_request_is_answered_400_and_garbage_dropped(lab_pki):
    net = sim_lab()
    _, proxy = await pair(net, lab_pki, "udp")
    answers = await raw_udp(net, [b"\x00\xffgarbage", BAD_MAX_FORWARDS.replace(b"{T}", b"UDP"),
                                  SIP_7.replace(b"{T}", b"UDP"), good_options("UDP")])
    assert [(a.status, a.call_id) for a in answers] == [(400, "bad@x"), (505, "bad@x"), (200, "good@x")]
    assert "Max-Forwards" in answers[0].reason
    errors = net.events.select("sip.parse_error", node="proxy")
    assert [(e["status"], e["action"]) for e in errors] == [(400, "dropped"), (400, "answered"), (505, "answered")]


@pytest.mark.sim
async def test_stream_malformed_request_is_answered_and_the_connection_goes_on(lab_pki):
    net = sim_lab()
    _, proxy = await pair(net, lab_pki, "tcp")
    transport, recorder = await net.connect(SBC, PROXY, 5060, Recorder)
    transport.write(BAD_MAX_FORWARDS.replace(b"{T}", b"TCP") + good_options("TCP"))
    await asyncio.sleep(1)
    data, closed = bytes(recorder.received), transport.is_closing()
    first, _, second = data.partition(b"\r\n\r\n")
    assert parse_message(first + b"\r\n\r\n").status == 400
    assert parse_message(second).status == 200 and not closed
    (error,) = net.events.select("sip.parse_error", node="proxy")
    assert error["action"] == "answered" and error["transport"] == "tcp"


@pytest.mark.sim
async def test_stream_that_cannot_be_reframed_is_closed_with_an_event(lab_pki):
    net = sim_lab()
    _, proxy = await pair(net, lab_pki, "tcp")
    transport, recorder = await net.connect(SBC, PROXY, 5060, Recorder)
    transport.write(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\nCSeq: 1 OPTIONS\r\n\r\n")
    lost = await asyncio.wait_for(recorder.lost, 5)
    # The endpoint survives: a new connection is served.
    proxy.on_request = lambda incoming: incoming.respond(200)
    transport2, recorder2 = await net.connect(SBC, PROXY, 5060, Recorder)
    transport2.write(good_options("TCP"))
    await asyncio.sleep(1)
    data = bytes(recorder2.received)
    assert lost is None or isinstance(lost, ConnectionError)
    (error,) = net.events.select("sip.parse_error", node="proxy")
    assert error["action"] == "answered" and "Content-Length" in error["reason"]
    (closed,) = net.events.select("sip.conn.closed", node="proxy")
    assert "framing error" in closed["reason"]
    assert parse_message(data).status == 200


@pytest.mark.sim
@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_crlf_ping_gets_a_pong_on_streams(lab_pki, transport):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, transport)
    await sbc.request(request("OPTIONS", sbc, transport), target(proxy, transport)).final()
    (conn,) = sbc.connections.values()
    received = []
    proxy_conn = next(iter(proxy.connections.values()))
    original = proxy_conn.transport.write
    proxy_conn.transport.write = lambda data: (received.append(data), original(data))[1]
    assert conn.ping()
    await asyncio.sleep(1)
    pongs = received
    assert pongs == [b"\r\n"]  # RFC 5626 §3.5.1
    assert not net.events.select("sip.parse_error")


@pytest.mark.sim
async def test_without_a_handler_options_is_200_and_the_rest_501(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "udp")
    options = await sbc.request(request("OPTIONS", sbc, "udp"), target(proxy, "udp")).final()
    info = await sbc.request(request("INFO", sbc, "udp"), target(proxy, "udp")).final()
    assert (options.status, info.status) == (200, 501)


@pytest.mark.sim
@pytest.mark.parametrize("is_async", [False, True])
async def test_a_failing_handler_answers_500_and_the_endpoint_survives(lab_pki, is_async):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "tls")
    calls = []

    def broken(incoming):
        calls.append(incoming.request.method)
        if len(calls) == 1:
            raise KeyError("no such user")
        incoming.respond(200)

    async def broken_async(incoming):
        broken(incoming)

    proxy.on_request = broken_async if is_async else broken
    first = await sbc.request(request("OPTIONS", sbc, "tls"), target(proxy, "tls")).final()
    second = await sbc.request(request("OPTIONS", sbc, "tls"), target(proxy, "tls")).final()
    net, first, second = net, first.status, second.status
    assert (first, second) == (500, 200)
    (error,) = net.events.select("sip.handler_error", node="proxy")
    assert "KeyError" in error["error"]


@pytest.mark.sim
@pytest.mark.parametrize(("host", "port", "reason"), [
    (PROXY, 5070, "connect.refused"),  # nobody listens there
    ("nowhere.example.com", 5061, "dns.unknown_host"),
])
async def test_failed_connects_are_transport_failures(lab_pki, host, port, reason):
    net = sim_lab()
    sbc, _ = await pair(net, lab_pki, "tls")
    with pytest.raises(TransportFailure) as caught:
        await sbc.request(request("OPTIONS", sbc, "tls"), Target(host, port, "tls")).final()
    failure = caught.value
    assert failure.reason == reason
    (event,) = net.events.select("sip.transport_error", node="sbc")
    assert event["reason"] == reason


@pytest.mark.sim
async def test_connect_through_a_blackhole_gives_up_after_64_t1(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "tls")
    net.link("wan-seattle").blackhole()
    with pytest.raises(TransportFailure) as caught:
        await sbc.request(request("OPTIONS", sbc, "tls"), target(proxy, "tls")).final()
    failure, now = caught.value, asyncio.get_running_loop().time()
    assert failure.reason == "connect.timeout" and now == 32.0


def test_endpoint_needs_a_host_on_the_network(lab_pki):
    net = sim_lab()
    with pytest.raises(OSError, match="no such host"):
        SipEndpoint(net, host="ghost.contoso.com")
