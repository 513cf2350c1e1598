"""Where the real network puts its hosts: a free loopback block of its own, or the one it is told.

Two labs or test runs on one machine must never meet, so each RealNetwork picks a random
127.a.b.0/24 and claims it (UDP CLAIM_PORT on the block's first address) until it closes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from simulator.net import RealNetwork
from simulator.net.real import CLAIM_PORT, parse_block

pytestmark = pytest.mark.real


@pytest.fixture
async def networks():
    made: list[RealNetwork] = []

    def make(**kw) -> RealNetwork:
        net = RealNetwork(**kw)
        made.append(net)
        return net

    yield make
    for net in made:
        await net.close()


def test_hosts_take_the_block_s_addresses_in_order_after_the_relay_s(networks):
    net = networks(block="127.0.0.0/24")
    assert net.relay_address == "127.0.0.1"
    assert [net.add_host(name).address for name in ("a.example", "b.example")] == ["127.0.0.2", "127.0.0.3"]
    with pytest.raises(ValueError, match="already used"):
        net.add_host("c.example", address="127.0.0.2")


def test_a_host_given_an_address_is_skipped_by_the_numbering(networks):
    net = networks(block="127.0.0.0/24")
    net.add_host("a.example", address="127.0.0.2")
    assert net.add_host("b.example").address == "127.0.0.3"


def test_by_default_each_network_picks_its_own_free_loopback_block(networks):
    first, second = networks(), networks()
    assert first.block != second.block
    for net in (first, second):
        assert net.block.prefixlen == 24 and net.block.subnet_of(ipaddress.IPv4Network("127.0.0.0/8"))
        assert net.block != ipaddress.IPv4Network("127.0.0.0/24")
        assert ipaddress.IPv4Address(net.add_host("sbc1.contoso.com").address) in net.block
        assert ipaddress.IPv4Address(net.relay_address) in net.block


def test_the_address_map_names_every_host_once(networks):
    net = networks()
    sbc = net.add_host("sbc1.contoso.com", aliases=("sbc.contoso.com",))
    proxy = net.add_host("sip.pstnhub.microsoft.com")
    assert net.addresses() == {"sbc1.contoso.com": sbc.address, "sip.pstnhub.microsoft.com": proxy.address}


def test_a_block_another_network_holds_is_a_clear_error(networks):
    holder = networks()
    with pytest.raises(OSError, match=rf"address block {holder.block} is in use by another drlab network"):
        networks(block=str(holder.block))


async def test_closing_the_network_gives_its_block_back():
    net = RealNetwork()
    block = str(net.block)
    await net.close()
    again = RealNetwork(block=block)
    await again.close()


def test_the_claim_is_a_bound_port_other_processes_see(networks):
    net = networks()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, pytest.raises(OSError):
        probe.bind((net.relay_address, CLAIM_PORT))


@pytest.mark.parametrize("block, message", [
    ("127.0.0.1", "too small"),
    ("127.0.0.0/31", "too small"),
    ("127.0.0.5/24", "has host bits set"),
    ("localhost", "such as 127.0.0.0/24"),
])
def test_a_named_block_that_is_not_a_network_is_refused(block, message):
    with pytest.raises(ValueError, match=message):
        parse_block(block)


async def test_a_routed_network_uses_the_given_addresses_and_leaves_its_links_to_the_router(networks):
    net = networks(routed=True)  # the Docker lab's nodes: a router's nftables rules are the links
    net.add_site("a")
    net.add_site("b")
    net.add_link("ab", "a", "b")
    server = net.add_host("server.test", address="127.77.1.10", site="b")
    net.add_host("client.test", address="127.77.0.10", site="a")
    with pytest.raises(ValueError, match="routed network has none"):
        net.add_host("nowhere.test", site="a")
    listener = await net.listen_stream("server.test", 0, asyncio.Protocol)
    net.link("ab").down()  # recorded, but not enforced here: no relay between these two
    transport, _ = await net.connect_stream("client.test", "server.test", listener.port, asyncio.Protocol)
    assert transport.get_extra_info("peername")[0] == server.address
    assert transport.get_extra_info("sockname")[0] == "127.77.0.10"
    transport.close()
    assert [r["event"] for r in net.events.records if r["event"].startswith("link.")] == ["link.down"]
    assert "reset" not in next(r for r in net.events.records if r["event"] == "link.down")
