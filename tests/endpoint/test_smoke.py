"""First checks of SipEndpoint on the sim network: a request answered over each transport,
Via received/rport, an async handler, and events with the fields ladders and pcap read."""

import asyncio

import pytest

from simulator.endpoint import Target
from simulator.sip import parse_message
from tests.endpoint.helpers import pair, request, sim_lab
from tests.endpoint.helpers import target as target_of

TRANSPORTS = ["udp", "tcp", "tls"]


@pytest.mark.sim
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_options_answered_on_sim(lab_pki, transport):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, transport)
    seen = []

    def handler(incoming):
        seen.append(incoming)
        incoming.respond(200)

    proxy.on_request = handler
    response = await sbc.request(request("OPTIONS", sbc, transport), target_of(proxy, transport)).final()
    assert response.status == 200
    (incoming,) = seen
    assert incoming.request.method == "OPTIONS"
    assert incoming.source.transport == transport
    assert incoming.source.address == net.resolve("sbc1.contoso.com")
    via = incoming.request.top_via
    assert via.transport == transport.upper() and via.branch.startswith("z9hG4bK")
    assert via.received == net.resolve("sbc1.contoso.com")  # sent-by is a name: §18.2.1
    assert via.rport == incoming.source.port  # RFC 3581
    if transport == "tls":
        assert incoming.source.tls is not None and "sbc1.contoso.com" in incoming.source.tls.dns_names


@pytest.mark.sim
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sent_and_received_events_carry_the_wire_message(lab_pki, transport):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, transport)
    proxy.on_request = lambda incoming: incoming.respond(200)
    await sbc.request(request("OPTIONS", sbc, transport), target_of(proxy, transport)).final()
    records = net.events.records
    sent = [r for r in records if r["event"] == "sip.sent"]
    received = [r for r in records if r["event"] == "sip.received"]
    assert [(r["node"], r["summary"]) for r in sent] == [
        ("sbc", f"OPTIONS sip:sip.pstnhub.microsoft.com:{5061 if transport == 'tls' else 5060};transport={transport}"),
        ("proxy", "200 OK")]
    assert [r["node"] for r in received] == ["proxy", "sbc"]
    for out, into in zip(sent, received, strict=True):
        assert out["src"] == into["src"] and out["dst"] == into["dst"] and out["transport"] == transport
        assert out["call_id"] == into["call_id"] and out["cseq"] == "1 OPTIONS"
        assert parse_message(out["message"].encode()).call_id == out["call_id"]
        assert (out["conn"] is None) == (transport == "udp")


@pytest.mark.sim
async def test_async_handler_answers_after_a_virtual_delay(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "tls")

    async def handler(incoming):
        await asyncio.sleep(5)
        incoming.respond(200)

    proxy.on_request = handler
    response = await sbc.request(request("OPTIONS", sbc, "tls"), target_of(proxy, "tls")).final()
    status, now = response.status, asyncio.get_running_loop().time()
    assert status == 200 and now > 5


@pytest.mark.sim
async def test_second_request_reuses_the_tls_connection(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "tls")
    proxy.on_request = lambda incoming: incoming.respond(200)
    first = sbc.request(request("OPTIONS", sbc, "tls"), target_of(proxy, "tls"))
    second = sbc.request(request("OPTIONS", sbc, "tls"), target_of(proxy, "tls"))  # while connecting
    await first.final(), await second.final()
    await sbc.request(request("OPTIONS", sbc, "tls"), target_of(proxy, "tls")).final()
    assert len(net.events.select("tls.established")) == 2  # one handshake, seen from both sides


@pytest.mark.sim
async def test_request_back_over_the_connection_the_peer_opened(lab_pki):
    net = sim_lab()
    sbc, proxy = await pair(net, lab_pki, "tls")
    peers = []

    def proxy_handler(incoming):
        peers.append(incoming.source)
        incoming.respond(200)

    proxy.on_request = proxy_handler
    sbc.on_request = lambda incoming: incoming.respond(200, reason="From the cloud")
    await sbc.request(request("OPTIONS", sbc, "tls"), target_of(proxy, "tls")).final()
    back = Target("sbc1.contoso.com", transport="tls", connection=peers[0].connection)
    response = await proxy.request(request("OPTIONS", proxy, "tls", to="sbc1.contoso.com"), back).final()
    established = net.events.select("tls.established")
    assert response.reason == "From the cloud"
    assert len(established) == 2
