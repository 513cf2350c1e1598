"""UDP on the sim network: delivery with latency, drops with named reasons, seeded loss."""

import asyncio

import pytest

from simulator.net import SimNetwork, run_sim
from tests.support.net import PROXY, SBC, DatagramRecorder, branch_lab


def sim(coro_fn, seed=7, **lab):
    async def main():
        net = branch_lab(SimNetwork(seed=seed), **lab)
        return await coro_fn(net, asyncio.get_running_loop())

    return run_sim(main)


async def udp_pair(net):
    server = (await net.listen(PROXY, 5060, "udp", lambda: DatagramRecorder(echo=True))).endpoint
    client = await net.open_datagram(SBC, 5060, DatagramRecorder)
    return client, server


@pytest.mark.parametrize("latency", [0.0, 0.03, 0.2])
def test_a_datagram_arrives_after_the_link_latency_from_the_senders_address(latency):
    async def scenario(net, loop):
        (client, _), (_, server) = await udp_pair(net)
        client.sendto(b"OPTIONS", (net.resolve(PROXY), 5060))
        await server.arrived.wait()
        return server.datagrams

    [(data, source, when)] = sim(scenario, latency=latency)
    assert (data, source) == (b"OPTIONS", ("10.1.0.10", 5060))
    assert when == pytest.approx(latency)


def test_a_connected_endpoint_sends_without_an_address_and_gets_the_echo():
    async def scenario(net, loop):
        await net.listen(PROXY, 5060, "udp", lambda: DatagramRecorder(echo=True))
        transport, protocol = await net.connect(SBC, PROXY, 5060, DatagramRecorder, transport="udp")
        transport.sendto(b"ping")
        await protocol.arrived.wait()
        return protocol.datagrams[0][:2], transport.get_extra_info("peername")

    (data, source), peer = sim(scenario, latency=0.01)
    assert data == b"ping" and source == peer == ("10.2.0.10", 5060)


@pytest.mark.parametrize(
    "state, reason",
    [("down", "link down"), ("blackhole", "link blackhole")],
)
def test_a_cut_link_drops_datagrams_with_an_event_naming_the_link(state, reason):
    async def scenario(net, loop):
        (client, _), (_, server) = await udp_pair(net)
        net.set_link_state("wan-seattle", state)
        client.sendto(b"INVITE", (net.resolve(PROXY), 5060))
        await asyncio.sleep(64 * 0.5)
        return server.datagrams, net.events.select("net.drop")

    received, drops = sim(scenario)
    assert received == []
    assert [(d["reason"], d["link"], d["dst"]) for d in drops] == [(reason, "wan-seattle", "10.2.0.10:5060")]


def test_a_datagram_to_a_port_nobody_listens_on_is_dropped_as_unreachable():
    async def scenario(net, loop):
        client, _ = await net.open_datagram(SBC, 0, DatagramRecorder)
        client.sendto(b"x", (net.resolve(PROXY), 5999))
        await asyncio.sleep(1)
        return [d["reason"] for d in net.events.select("net.drop")], client.get_extra_info("sockname")

    reasons, sockname = sim(scenario)
    assert reasons == ["port unreachable"]
    assert sockname == ("10.1.0.10", 49152)


def loss_pattern(seed):
    async def scenario(net, loop):
        (client, _), (_, server) = await udp_pair(net)
        for i in range(400):
            client.sendto(b"%d" % i, (net.resolve(PROXY), 5060))
        await asyncio.sleep(1)
        return [int(d[0]) for d in server.datagrams]

    return sim(scenario, seed=seed, loss=0.25)


def test_loss_drops_about_the_configured_share_and_the_same_seed_drops_the_same_datagrams():
    first, again, other = loss_pattern(1), loss_pattern(1), loss_pattern(2)
    assert first == again
    assert first != other
    assert 0.65 < len(first) / 400 < 0.85


def test_jitter_may_reorder_datagrams_but_every_one_arrives_within_latency_plus_jitter():
    async def scenario(net, loop):
        (client, _), (_, server) = await udp_pair(net)
        for i in range(50):
            client.sendto(b"%d" % i, (net.resolve(PROXY), 5060))
        await asyncio.sleep(1)
        return server.datagrams

    received = sim(scenario, latency=0.05, jitter=0.02)
    assert sorted(int(d[0]) for d in received) == list(range(50))
    assert all(0.05 <= when <= 0.07 for _, _, when in received)


@pytest.mark.parametrize(
    "destination, message",
    [
        ((PROXY, 5060), "resolve names with network.resolve"),
        (("10.2.0.10", 0), "bad destination port"),
        ("10.2.0.10:5060", "bad destination"),
    ],
)
def test_sendto_needs_an_address_and_port(destination, message):
    async def scenario(net, loop):
        client, _ = await net.open_datagram(SBC, 0, DatagramRecorder)
        with pytest.raises(ValueError, match=message):
            client.sendto(b"x", destination)

    sim(scenario)


def test_a_closed_endpoint_frees_its_port():
    async def scenario(net, loop):
        listener = await net.listen(PROXY, 5060, "udp", DatagramRecorder)
        with pytest.raises(OSError, match="already in use"):
            await net.listen(PROXY, 5060, "udp", DatagramRecorder)
        listener.close()
        again = await net.listen(PROXY, 5060, "udp", DatagramRecorder)
        return again.port

    assert sim(scenario) == 5060


@pytest.mark.parametrize(("toward", "proxy_hears", "sbc_hears_the_echo"), [
    ("cloud", False, False),  # the SBC's datagram is lost on the way up: nothing to echo
    ("seattle", True, False),  # it arrives; the echo back to the branch is lost
])
def test_a_one_way_loss_drops_only_the_packets_headed_for_its_site(toward, proxy_hears, sbc_hears_the_echo):
    async def scenario(net, loop):
        (client, sbc), (_, server) = await udp_pair(net)
        net.link("wan-seattle").impair(loss=1.0, toward=toward)
        client.sendto(b"OPTIONS", (net.resolve(PROXY), 5060))
        await asyncio.sleep(1)
        return bool(server.datagrams), bool(sbc.datagrams), net.events.select("net.drop")

    heard, echoed, [drop] = sim(scenario)
    assert (heard, echoed) == (proxy_hears, sbc_hears_the_echo)
    assert (drop["reason"], drop["link"]) == ("loss", "wan-seattle")


@pytest.mark.parametrize(("change", "message"), [
    ({"loss": 1.0, "toward": "hq"}, "heads for seattle or cloud, not 'hq'"),
    ({"latency": 0.1, "toward": "cloud"}, "a one-way impairment is a loss only"),
])
def test_a_one_way_impairment_names_one_of_the_links_sites_and_is_a_loss(change, message):
    async def scenario(net, loop):
        with pytest.raises(ValueError, match=message):
            net.link("wan-seattle").impair(**change)

    sim(scenario)
