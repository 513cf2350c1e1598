"""Links on the real network: the sim network's link interface, realized on loopback sockets.

Topology (tests.support.net.branch_lab): the SBC and the SBA in `seattle`, the proxy in
`cloud`, joined by `wan-seattle`. SBC -> proxy crosses the link (through our relay); SBC -> SBA
does not. Every listener takes an ephemeral port, so parallel runs on one machine cannot clash.
"""

import asyncio

import pytest

from simulator.net import RealNetwork, SimNetwork, run_sim
from simulator.net.tls import HoldingProtocol
from tests.support.net import PROXY, SBA, SBC, DatagramRecorder, Echo, Recorder, branch_lab
from tests.support.pki import handshake

pytestmark = pytest.mark.real

WAIT = 5  # seconds; only ever reached when a test is about to fail


class Accepted:
    """A listener's protocol factory that keeps every accepted Recorder (optionally echoing)."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.queue: asyncio.Queue = asyncio.Queue()

    def __call__(self):
        protocol = EchoRecorder() if self.echo else Recorder()
        self.queue.put_nowait(protocol)
        return protocol

    async def next(self) -> Recorder:
        return await asyncio.wait_for(self.queue.get(), WAIT)


class EchoRecorder(Recorder):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.transport.write(data)


async def established(net, to=PROXY):
    """A TCP connection SBC -> `to` that has carried one round trip: (client transport, client, server)."""
    accepted = Accepted(echo=True)
    listener = await net.listen(to, 0, "tcp", accepted)
    transport, client = await net.connect(SBC, to, listener.port, Recorder, timeout=WAIT)
    server = await accepted.next()
    transport.write(b"ping")
    await asyncio.wait_for(client.until(4), WAIT)
    return transport, client, server


async def udp_pair(net, to=PROXY):
    """An echoing UDP endpoint on `to` and a recording one on the SBC: (sbc transport, sbc, proxy, proxy address)."""
    far_transport, far = await net.open_datagram(to, 0, lambda: DatagramRecorder(echo=True))
    near_transport, near = await net.open_datagram(SBC, 0, DatagramRecorder)
    return near_transport, near, far, far_transport.get_extra_info("sockname")


async def test_tcp_across_a_link_is_relayed_and_the_far_side_sees_the_callers_own_address_and_port(net):
    transport, client, server = await established(net)
    local, remote = transport.get_extra_info("sockname"), transport.get_extra_info("peername")
    assert local[0] == net.resolve(SBC)
    assert server.transport.get_extra_info("peername") == local  # as on sim: one flow, two views
    assert remote[0] == net.resolve(PROXY)
    assert net.events.select("net.connect")[-1]["links"] == "wan-seattle"
    assert len(net.relay.bridges) == 1


async def test_hosts_in_one_site_talk_directly_without_the_relay(net):
    await established(net, to=SBA)
    assert net.events.select("net.connect")[-1]["links"] == ""
    assert net.relay.bridges == set()


async def test_a_link_set_down_resets_both_ends_of_an_established_connection(net):
    _, client, server = await established(net)
    net.link("wan-seattle").down()
    client_lost = await asyncio.wait_for(client.lost, WAIT)
    server_lost = await asyncio.wait_for(server.lost, WAIT)
    assert isinstance(client_lost, ConnectionResetError) and isinstance(server_lost, ConnectionResetError)
    assert "reset: link wan-seattle down" in str(client_lost) and "reset: link wan-seattle down" in str(server_lost)
    assert [(r["host"], r["link"]) for r in net.events.select("net.reset")] == [(SBC, "wan-seattle"), (PROXY, "wan-seattle")]


async def test_a_link_that_is_down_refuses_new_connects_at_once_naming_the_link(net):
    listener = await net.listen(PROXY, 0, "tcp", Echo)
    net.link("wan-seattle").down()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConnectionRefusedError, match="refused: link wan-seattle down"):
        await net.connect(SBC, PROXY, listener.port, Recorder, timeout=WAIT)
    assert loop.time() - started < 0.5
    assert net.events.select("net.refused")[-1]["link"] == "wan-seattle"


async def test_a_blackholed_link_makes_connect_hang_until_the_callers_own_timeout(net):
    listener = await net.listen(PROXY, 0, "tcp", Echo)
    net.link("wan-seattle").blackhole()
    with pytest.raises(TimeoutError, match=r"timed out after 0.3 s \(link wan-seattle blackholed\)"):
        await net.connect(SBC, PROXY, listener.port, Recorder, timeout=0.3)
    assert net.events.select("net.connect_timeout")[-1]["reason"] == "link wan-seattle blackholed"
    assert net.relay.bridges == set()  # the half-made relay connection is gone


async def test_a_blackholed_link_drops_datagrams_and_bringing_it_up_restores_them(net):
    sbc_transport, sbc, _, proxy_address = await udp_pair(net)
    net.link("wan-seattle").blackhole()
    sbc_transport.sendto(b"lost", proxy_address)
    assert net.events.select("net.drop")[-1]["reason"] == "link blackhole"
    net.link("wan-seattle").up()
    sbc_transport.sendto(b"after up", proxy_address)
    await asyncio.wait_for(sbc.arrived.wait(), WAIT)
    assert [data for data, _, _ in sbc.datagrams] == [b"after up"]  # the echo of the second only


async def test_stream_bytes_written_into_a_blackhole_arrive_once_the_link_is_up(net):
    transport, client, _ = await established(net)
    net.link("wan-seattle").blackhole()
    transport.write(b"held")
    with pytest.raises(TimeoutError):  # held, as sim holds them for retransmission
        await asyncio.wait_for(asyncio.shield(client.until(8)), 0.2)
    net.link("wan-seattle").up()
    assert await asyncio.wait_for(client.until(8), WAIT) == b"pingheld"


async def test_bringing_a_link_back_up_lets_new_connections_through(net):
    listener = await net.listen(PROXY, 0, "tcp", Echo)
    net.link("wan-seattle").down()
    with pytest.raises(ConnectionRefusedError):
        await net.connect(SBC, PROXY, listener.port, Recorder)
    net.link("wan-seattle").up()
    transport, client = await net.connect(SBC, PROXY, listener.port, Recorder, timeout=WAIT)
    transport.write(b"back")
    assert await asyncio.wait_for(client.until(4), WAIT) == b"back"


async def test_latency_delays_a_datagram_and_a_stream_round_trip_by_at_least_the_set_amount(net):
    net.link("wan-seattle").impair(latency=0.15)
    loop = asyncio.get_running_loop()
    sbc_transport, sbc, proxy, proxy_address = await udp_pair(net)
    sent = loop.time()
    sbc_transport.sendto(b"OPTIONS", proxy_address)
    await asyncio.wait_for(proxy.arrived.wait(), WAIT)
    assert proxy.datagrams[0][2] - sent >= 0.15
    await asyncio.wait_for(sbc.arrived.wait(), WAIT)
    assert sbc.datagrams[0][2] - sent >= 0.30  # the echo crossed the link back

    listener = await net.listen(PROXY, 0, "tcp", Echo)
    started = loop.time()
    transport, client = await net.connect(SBC, PROXY, listener.port, Recorder, timeout=WAIT)
    assert loop.time() - started >= 0.30  # SYN there, SYN-ACK back
    sent = loop.time()
    transport.write(b"ping")
    await asyncio.wait_for(client.until(4), WAIT)
    assert loop.time() - sent >= 0.30


async def test_loss_drops_datagrams_with_an_event_naming_the_link(net):
    sbc_transport, _, _, proxy_address = await udp_pair(net)
    net.link("wan-seattle").impair(loss=1.0)
    sbc_transport.sendto(b"OPTIONS", proxy_address)
    drop = net.events.select("net.drop")[-1]
    assert (drop["reason"], drop["link"], drop["bytes"]) == ("loss", "wan-seattle", 7)


async def test_a_one_way_loss_lets_the_request_through_and_drops_the_reply(net):
    sbc_transport, sbc, proxy, proxy_address = await udp_pair(net)
    net.link("wan-seattle").impair(loss=1.0, toward="seattle")
    sbc_transport.sendto(b"OPTIONS", proxy_address)
    await asyncio.wait_for(proxy.arrived.wait(), WAIT)
    drop = net.events.select("net.drop")[-1]  # the echo, sent (and dropped) as the request arrived
    assert (drop["reason"], drop["link"]) == ("loss", "wan-seattle") and sbc.datagrams == []


async def test_udp_request_and_reply_across_a_link_keep_the_senders_own_address_and_port(net):
    sbc_transport, sbc, proxy, proxy_address = await udp_pair(net)
    sbc_transport.sendto(b"REGISTER", proxy_address)
    await asyncio.wait_for(sbc.arrived.wait(), WAIT)
    assert proxy.datagrams[0][1] == sbc_transport.get_extra_info("sockname")  # Via received/rport hold
    assert sbc.datagrams[0][:2] == (b"REGISTER", tuple(proxy_address))


async def test_a_connected_udp_endpoint_across_a_link_gets_its_replies_and_is_shaped_too(net):
    far_transport, _ = await net.open_datagram(PROXY, 0, lambda: DatagramRecorder(echo=True))
    port = far_transport.get_extra_info("sockname")[1]
    transport, protocol = await net.connect(SBC, PROXY, port, DatagramRecorder, transport="udp")
    transport.sendto(b"OPTIONS")
    await asyncio.wait_for(protocol.arrived.wait(), WAIT)
    assert protocol.datagrams[0][:2] == (b"OPTIONS", (net.resolve(PROXY), port))
    net.link("wan-seattle").blackhole()
    transport.sendto(b"OPTIONS")  # no address: the connected peer's, and still shaped
    assert net.events.select("net.drop")[-1]["dst"] == f"{net.resolve(PROXY)}:{port}"


async def test_mutual_tls_across_a_relayed_link_handshakes_carries_data_and_is_reset_by_a_cut(net, lab_pki):  # noqa: F811
    accepted: asyncio.Queue = asyncio.Queue()

    class Accept(HoldingProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            accepted.put_nowait(transport)

    listener = await net.listen(PROXY, 0, "tcp", Accept)
    client_end, _ = await net.connect(SBC, PROXY, listener.port, HoldingProtocol, timeout=WAIT)
    server_end = await asyncio.wait_for(accepted.get(), WAIT)
    result = await asyncio.wait_for(
        handshake(client_end, server_end, lab_pki, client_identity=lab_pki.identity(SBC),
                  server_identity=lab_pki.identity(PROXY)),
        WAIT,
    )
    assert (result.client.reason, result.server.reason) == (None, None)
    assert result.server.outcome.dns_names == (SBC,)
    result.client.transport.write(b"OPTIONS over TLS")
    assert await asyncio.wait_for(result.server.app.until(16), WAIT) == b"OPTIONS over TLS"

    net.link("wan-seattle").down()
    client_lost = await asyncio.wait_for(result.client.app.lost, WAIT)
    server_lost = await asyncio.wait_for(result.server.app.lost, WAIT)
    assert isinstance(client_lost, ConnectionResetError) and isinstance(server_lost, ConnectionResetError)
    assert "link wan-seattle down" in str(client_lost) and "link wan-seattle down" in str(server_lost)


class Seen(Recorder):
    """What a protocol is told about its connection at connection_made, before any byte."""

    def connection_made(self, transport):
        super().connection_made(transport)
        self.seen = {key: transport.get_extra_info(key) for key in ("sockname", "peername", "conn", "links")}


async def first_sight(net):
    queue: asyncio.Queue = asyncio.Queue()

    def factory():
        protocol = Seen()
        queue.put_nowait(protocol)
        return protocol

    listener = await net.listen(PROXY, 5072 if net.kind == "sim" else 0, "tcp", factory)
    _, client = await net.connect(SBC, PROXY, listener.port, Seen, timeout=WAIT)
    server = await asyncio.wait_for(queue.get(), WAIT)
    await net.close()
    return client.seen, server.seen, (net.resolve(PROXY), listener.port)


@pytest.mark.parametrize("kind", ["sim", "real"])
def test_both_ends_of_a_relayed_connection_see_its_addresses_id_and_links_from_the_start(kind):
    if kind == "sim":
        client, server, proxy = run_sim(lambda: first_sight(branch_lab(SimNetwork(seed=1))))
    else:
        client, server, proxy = asyncio.run(asyncio.wait_for(first_sight(branch_lab(RealNetwork(seed=1))), 10))
    assert client["peername"] == proxy and server["sockname"] == proxy
    assert server["peername"] == client["sockname"]
    assert client["conn"] == server["conn"] == "c1"
    assert client["links"] == server["links"] == ["wan-seattle"]


# -- the same link events on both networks -----------------------------------------------

CHANGES = [
    (lambda link: link.blackhole(), {"event": "link.blackhole", "link": "wan-seattle", "previous": "up"}),
    (lambda link: link.up(), {"event": "link.up", "link": "wan-seattle", "previous": "blackhole"}),
    (lambda link: link.up(), None),  # already up: no event
    (
        lambda link: link.impair(latency=0.01, jitter=0.002, loss=0.0),
        {"event": "link.impaired", "link": "wan-seattle", "latency": 0.01, "jitter": 0.002, "loss": 0.0},
    ),
    (lambda link: link.down(), {"event": "link.down", "link": "wan-seattle", "previous": "up", "reset": 1}),
    (lambda link: link.up(), {"event": "link.up", "link": "wan-seattle", "previous": "down"}),
]


async def link_events(net):
    listener = await net.listen(PROXY, 5071 if net.kind == "sim" else 0, "tcp", Echo)
    await net.connect(SBC, PROXY, listener.port, Recorder, timeout=WAIT)
    for change, _ in CHANGES:
        change(net.link("wan-seattle"))
    events = [{k: v for k, v in r.items() if k != "t"} for r in net.events.select("link.")]
    await net.close()
    return events


@pytest.mark.parametrize("kind", ["sim", "real"])
def test_every_link_change_is_the_same_event_with_the_same_fields_on_both_networks(kind):
    if kind == "sim":
        events = run_sim(lambda: link_events(branch_lab(SimNetwork(seed=1))))
    else:
        events = asyncio.run(asyncio.wait_for(link_events(branch_lab(RealNetwork(seed=1))), 10))
    assert events == [event for _, event in CHANGES if event is not None]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda net: net.link("wan-boston"), KeyError, "no link 'wan-boston'; links: wan-seattle"),
        (lambda net: net.add_host("x.contoso.com", site="boston"), ValueError, "unknown site 'boston'"),
        (lambda net: net.add_link("wan-seattle", "x", "y"), ValueError, "already exists"),
        (lambda net: net.link("wan-seattle").impair(loss=2), ValueError, "loss must be a probability"),
        (lambda net: net.set_link_state("wan-seattle", "flapping"), ValueError, "bad link state"),
    ],
)
def test_topology_mistakes_on_the_real_network_are_the_same_clear_errors_as_on_sim(call, error, message):
    with pytest.raises(error, match=message):
        call(branch_lab(RealNetwork()))


def test_the_real_network_finds_the_same_paths_as_sim():
    net = branch_lab(RealNetwork())
    assert (net.path(SBC, PROXY).names, net.path(PROXY, SBC).names, net.path(SBC, SBA).names) == (
        ["wan-seattle"], ["wan-seattle"], []
    )
