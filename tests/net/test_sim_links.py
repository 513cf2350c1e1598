"""Topology and link control on the sim network: paths, states, and the events they leave."""

import asyncio

import pytest

from simulator.net import SimNetwork
from tests.support.net import Echo, Recorder


def campus():
    """branch -- wan-seattle -- core -- cloud-core -- cloud, and a dmz hanging off core."""
    net = SimNetwork(seed=1)
    net.add_link("wan-seattle", "seattle", "core", latency=0.02)
    net.add_link("cloud-core", "core", "cloud", latency=0.005)
    net.add_link("dmz", "core", "dmz", latency=0.001)
    net.add_host("sbc1.contoso.com", site="seattle")
    net.add_host("sba1.contoso.com", site="seattle")
    net.add_host("sip.pstnhub.microsoft.com", site="cloud")
    net.add_host("sbc2.contoso.com", site="dmz", address="192.0.2.10")
    return net


@pytest.mark.parametrize(
    "a, b, links",
    [
        ("sbc1.contoso.com", "sip.pstnhub.microsoft.com", ["wan-seattle", "cloud-core"]),
        ("sip.pstnhub.microsoft.com", "sbc1.contoso.com", ["cloud-core", "wan-seattle"]),
        ("sbc1.contoso.com", "sba1.contoso.com", []),
        ("sbc2.contoso.com", "sip.pstnhub.microsoft.com", ["dmz", "cloud-core"]),
        ("192.0.2.10", "10.1.0.10", ["dmz", "wan-seattle"]),
    ],
)
def test_the_path_between_two_hosts_is_the_chain_of_links_between_their_sites(a, b, links):
    assert campus().path(a, b).names == links


def test_hosts_get_addresses_per_site_in_creation_order_and_resolve_by_any_name():
    net = campus()
    net.add_host("sip2.pstnhub.microsoft.com", aliases=("sip-all.pstnhub.microsoft.com",), site="cloud")
    assert [net.resolve(n) for n in ("sbc1.contoso.com", "SBA1.contoso.com", "sip-all.pstnhub.microsoft.com.")] == [
        "10.1.0.10",
        "10.1.0.11",
        "10.3.0.11",
    ]
    assert net.host("10.3.0.11").name == "sip2.pstnhub.microsoft.com"


def test_a_site_with_no_link_to_the_others_is_unreachable_with_a_clear_error():
    net = campus()
    net.add_site("island")
    net.add_host("lonely.contoso.com", site="island")
    with pytest.raises(OSError, match="no route from lonely.contoso.com .site island. to sbc1.contoso.com"):
        net.path("lonely.contoso.com", "sbc1.contoso.com")


@pytest.mark.sim
@pytest.mark.parametrize(
    "change, event",
    [
        (lambda link: link.down(), {"event": "link.down", "link": "wan-seattle", "previous": "up", "reset": 1}),
        (lambda link: link.blackhole(), {"event": "link.blackhole", "link": "wan-seattle", "previous": "up"}),
        (
            lambda link: link.impair(latency=0.3, loss=0.01),
            {"event": "link.impaired", "link": "wan-seattle", "latency": 0.3, "jitter": 0.0, "loss": 0.01},
        ),
    ],
)
async def test_every_link_change_is_an_event_with_its_fields(change, event):
    net = campus()
    await net.listen("sip.pstnhub.microsoft.com", 5061, "tcp", Echo)
    await net.connect("sbc1.contoso.com", "sip.pstnhub.microsoft.com", 5061, Recorder)
    await asyncio.sleep(10)
    change(net.link("wan-seattle"))
    events, when = [{k: v for k, v in r.items() if k != "t"} for r in net.events.select("link.")], net.events.records[-1]["t"]
    assert events == [event]
    assert when >= 10


def test_setting_a_link_to_its_current_state_changes_nothing():
    net = campus()
    net.link("wan-seattle").up()
    assert net.events.records == []


@pytest.mark.sim
async def test_cutting_a_link_resets_only_the_connections_that_cross_it():
    net = campus()
    await net.listen("sip.pstnhub.microsoft.com", 5061, "tcp", Echo)
    _, through_wan = await net.connect("sbc1.contoso.com", "sip.pstnhub.microsoft.com", 5061, Recorder)
    dmz_transport, through_dmz = await net.connect("sbc2.contoso.com", "sip.pstnhub.microsoft.com", 5061, Recorder)
    net.link("wan-seattle").down()
    lost = await through_wan.lost
    dmz_transport.write(b"still here")
    await through_dmz.until(10)
    reset = [r["conn"] for r in net.events.select("net.reset")]
    assert isinstance(lost, ConnectionResetError)
    assert reset == ["c1", "c1"]  # both ends of the WAN connection, not c2


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda net: net.link("wan-boston"), "no link 'wan-boston'; links: cloud-core, dmz, wan-seattle"),
        (lambda net: net.set_link_state("wan-seattle", "flapping"), "bad link state 'flapping'"),
        (lambda net: net.add_link("wan-seattle", "x", "y"), "link 'wan-seattle' already exists"),
        (lambda net: net.add_link("loop", "core", "core"), "joins site 'core' to itself"),
        (lambda net: net.add_host("sbc1.contoso.com", site="seattle"), "already used by sbc1.contoso.com"),
        (lambda net: net.add_host("x.contoso.com", address="10.1.0.10", site="seattle"), "already used by"),
        (lambda net: net.add_host("bad name", site="seattle"), "bad host name"),
        (lambda net: net.add_host("y.contoso.com", address="not-an-ip", site="seattle"), "not an IPv4 address"),
    ],
)
def test_topology_mistakes_are_clear_errors(call, message):
    with pytest.raises((KeyError, ValueError), match=message):
        call(campus())


@pytest.mark.sim
async def test_closing_the_network_ends_every_connection_and_frees_every_port():
    net = campus()
    await net.listen("sip.pstnhub.microsoft.com", 5061, "tcp", Echo)
    _, client = await net.connect("sbc1.contoso.com", "sip.pstnhub.microsoft.com", 5061, Recorder)
    await net.close()
    await asyncio.sleep(1)
    await net.listen("sip.pstnhub.microsoft.com", 5061, "tcp", Echo)
    assert (await client.lost, net.connections) == (None, [])
