"""A peer outside drlab on the real network (`add_external`): reached directly, never through a link.

The peer here is a plain socket on 127.0.0.1, as SIPp would be; the network knows it by name in
site `cloud`, across `wan-seattle` from the SBC (tests.support.net.branch_lab). The link is cut
in each test: traffic to the peer does not pass the relay or the shaping, so the cut does not
touch it (docs/lab-yaml.md says so to the user) — unless the peer is added `cut_by_links` (an
external SBC), whose TCP connections the cut refuses and resets.
"""

import asyncio

import pytest

from simulator.net import RealNetwork
from tests.support.net import SBC, DatagramRecorder, Recorder

pytestmark = pytest.mark.real

PEER = "sipp.carrier.example"
PEER_ADDRESS = "127.0.0.1"  # outside every block RealNetwork picks (127.a.b.0/24 with a >= 1)
WAIT = 5  # seconds; only ever reached when a test is about to fail


async def test_datagrams_to_an_external_peer_go_directly_even_with_the_link_down(net: RealNetwork) -> None:
    loop = asyncio.get_running_loop()
    peer_transport, peer = await loop.create_datagram_endpoint(DatagramRecorder, local_addr=(PEER_ADDRESS, 0))
    try:
        net.add_external(PEER, address=PEER_ADDRESS, site="cloud")
        net.link("wan-seattle").down()
        sbc_transport, _ = await net.open_datagram(SBC, 0, DatagramRecorder)
        sbc_transport.sendto(b"OPTIONS", peer_transport.get_extra_info("sockname"))
        await asyncio.wait_for(peer.arrived.wait(), WAIT)
        assert peer.datagrams[0][:2] == (b"OPTIONS", sbc_transport.get_extra_info("sockname"))
        assert net.path(SBC, PEER).links == () and net.events.select("net.drop") == []
    finally:
        peer_transport.close()


async def test_a_connection_to_an_external_peer_is_direct_even_with_the_link_down(net: RealNetwork) -> None:
    server = await asyncio.get_running_loop().create_server(Recorder, PEER_ADDRESS, 0)
    try:
        net.add_external(PEER, address=PEER_ADDRESS, site="cloud")
        net.link("wan-seattle").down()
        transport, _ = await net.connect(SBC, PEER, server.sockets[0].getsockname()[1], Recorder, timeout=WAIT)
        assert net.events.select("net.connect")[-1]["links"] == "" and net.relay.bridges == set()
        transport.close()
    finally:
        server.close()


async def test_a_cut_resets_and_refuses_connections_of_a_peer_cut_by_links(net: RealNetwork) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Recorder, PEER_ADDRESS, 0)
    accepted: list[Recorder] = []

    def accept() -> Recorder:
        accepted.append(Recorder())
        return accepted[-1]
    listener = await net.listen(SBC, 0, "tcp", accept)
    try:
        net.add_external(PEER, address=PEER_ADDRESS, site="cloud", cut_by_links=True)
        outward, to_peer = await net.connect(SBC, PEER, server.sockets[0].getsockname()[1], Recorder, timeout=WAIT)
        inward, from_peer = await loop.create_connection(Recorder, net.resolve(SBC), listener.port,
                                                         local_addr=(PEER_ADDRESS, 0))
        net.link("wan-seattle").down()
        assert net.events.select("link.down")[-1]["reset"] == 2  # ours to the peer, the peer's to us
        lost = await asyncio.wait_for(to_peer.lost, WAIT)
        assert isinstance(lost, ConnectionResetError) and "link wan-seattle down" in str(lost)
        await asyncio.wait_for(from_peer.lost, WAIT)  # the peer's own connection is closed too
        with pytest.raises(ConnectionRefusedError, match="link wan-seattle down"):
            await net.connect(SBC, PEER, server.sockets[0].getsockname()[1], Recorder, timeout=WAIT)
        _, again = await loop.create_connection(Recorder, net.resolve(SBC), listener.port, local_addr=(PEER_ADDRESS, 0))
        await asyncio.wait_for(again.lost, WAIT)  # accepted by the kernel, closed at once: the SYN "never arrived"
        assert accepted[0].transport is not None and accepted[-1].transport is None  # never handed to the app
        net.link("wan-seattle").up()
        transport, _ = await net.connect(SBC, PEER, server.sockets[0].getsockname()[1], Recorder, timeout=WAIT)
        transport.close()
    finally:
        server.close()
        listener.close()


def test_the_network_tells_an_external_peer_by_name_alias_or_address() -> None:
    async def main() -> None:
        net = RealNetwork()
        net.add_host(SBC)
        net.add_external(PEER, address=PEER_ADDRESS, aliases=("sipp.example",))
        try:
            assert [net.is_external(n) for n in (PEER, "SIPP.example", PEER_ADDRESS)] == [True, True, True]
            assert [net.is_external(n) for n in (SBC, net.resolve(SBC), "nobody.example")] == [False, False, False]
            assert net.addresses()[PEER] == PEER_ADDRESS
        finally:
            await net.close()
    asyncio.run(main())


def test_an_external_peer_needs_an_address_outside_the_block() -> None:
    async def main() -> None:
        net = RealNetwork()
        try:
            with pytest.raises(ValueError, match=f"lies in this network's block {net.block}"):
                net.add_external(PEER, address=str(net.block[9]))
            with pytest.raises(ValueError, match="'sipp.local' is not an IPv4 address"):
                net.add_external(PEER, address="sipp.local")
        finally:
            await net.close()
    asyncio.run(main())
