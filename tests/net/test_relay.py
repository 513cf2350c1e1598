"""The relay that carries TCP across links on the real network (simulator/net/relay.py):
ordering, half-close, resets from either end, retransmission of lost chunks, SYN retries,
back-pressure and cleanup. Topology: branch_lab (SBC in seattle, proxy in cloud, wan-seattle)."""

import asyncio
import random
import socket
import struct

import pytest

from simulator.net import RealNetwork
from simulator.net.sim_stream import MIN_RTO
from tests.support.net import PROXY, SBC, Echo, Recorder, branch_lab

pytestmark = pytest.mark.real

WAIT = 5


async def echo_connection(net):
    listener = await net.listen(PROXY, 0, "tcp", Echo)
    transport, client = await net.connect(SBC, PROXY, listener.port, Recorder, timeout=WAIT)
    return transport, client


async def test_chunks_keep_their_order_through_latency_and_jitter(net):
    net.link("wan-seattle").impair(latency=0.005, jitter=0.02)
    transport, client = await echo_connection(net)
    chunks = [f"<{i}>".encode() for i in range(40)]
    for chunk in chunks:
        transport.write(chunk)
        await asyncio.sleep(0)  # one write per loop turn: separate segments for the relay to reorder
    expected = b"".join(chunks)
    assert await asyncio.wait_for(client.until(len(expected)), WAIT) == expected


async def test_a_megabyte_crosses_the_relay_intact_with_back_pressure(net):
    transport, client = await echo_connection(net)
    data = random.Random(7).randbytes(1 << 20)
    transport.write(data)
    assert await asyncio.wait_for(client.until(len(data)), WAIT) == data


class ReplyOnEof(asyncio.Protocol):
    """Reads until the client's FIN, then answers and closes (a half-close exchange)."""

    def connection_made(self, transport):
        self.transport = transport

    def eof_received(self):
        self.transport.write(b"bye")
        return False  # asyncio closes after the reply


async def test_a_half_close_crosses_the_relay_and_the_relayed_connection_is_then_gone(net):
    listener = await net.listen(PROXY, 0, "tcp", ReplyOnEof)
    transport, client = await net.connect(SBC, PROXY, listener.port, Recorder, timeout=WAIT)
    transport.write_eof()
    assert await asyncio.wait_for(client.until(3), WAIT) == b"bye"
    assert await asyncio.wait_for(client.lost, WAIT) is None and client.eof
    assert net.relay.bridges == set()


class ResetOnData(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()  # RST


async def test_a_reset_from_the_far_side_reaches_the_caller_as_a_reset(net):
    listener = await net.listen(PROXY, 0, "tcp", ResetOnData)
    transport, client = await net.connect(SBC, PROXY, listener.port, Recorder, timeout=WAIT)
    transport.write(b"INVITE")
    assert isinstance(await asyncio.wait_for(client.lost, WAIT), ConnectionResetError)
    assert net.events.select("net.reset")[-1]["reason"] == f"reset by {PROXY}"


async def test_nothing_listening_beyond_a_link_is_refused_after_the_round_trip(net):
    listener = await net.listen(PROXY, 0, "tcp", Echo)
    port = listener.port
    listener.close()
    await listener.wait_closed()
    with pytest.raises(ConnectionRefusedError, match=f"refused: nothing listening on {PROXY}:{port}"):
        await net.connect(SBC, PROXY, port, Recorder, timeout=WAIT)
    assert net.relay.bridges == set()


class Scripted(random.Random):
    """An RNG whose random() answers from a script: decides which transmissions are lost."""

    def __init__(self, draws):
        super().__init__(0)
        self.draws = list(draws)

    def random(self):
        return self.draws.pop(0)


async def test_a_chunk_lost_on_a_lossy_link_arrives_one_retransmission_timeout_later(net):
    transport, client = await echo_connection(net)
    net.link("wan-seattle").impair(loss=0.5)
    net.rng = Scripted([0.1, 0.9, 0.9])  # first try lost, the retry and the echo get through
    loop = asyncio.get_running_loop()
    sent = loop.time()
    transport.write(b"OPTIONS")
    await asyncio.wait_for(client.until(7), WAIT)
    assert loop.time() - sent >= MIN_RTO
    assert [(r["host"], r["attempt"]) for r in net.events.select("net.retransmit")] == [(SBC, 1)]


async def test_a_connect_waiting_on_a_blackhole_gets_through_on_the_next_syn_retry_after_up(net):
    listener = await net.listen(PROXY, 0, "tcp", Echo)
    net.link("wan-seattle").blackhole()
    loop = asyncio.get_running_loop()
    started = loop.time()
    connecting = asyncio.ensure_future(net.connect(SBC, PROXY, listener.port, Recorder, timeout=WAIT))
    # Wait until the relay holds the half-made connection and has dropped its first SYN.
    while not (net.relay.bridges and next(iter(net.relay.bridges)).client_accepted.done()):
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    net.link("wan-seattle").up()
    transport, client = await connecting
    assert loop.time() - started >= 1.0  # the first SYN retry (RFC 6298 initial RTO), as on sim
    transport.write(b"hello")
    assert await asyncio.wait_for(client.until(5), WAIT) == b"hello"


async def test_a_stranger_connecting_to_the_relay_port_is_turned_away(net):
    await echo_connection(net)  # the relay is listening now
    port = net.relay._server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection(net.relay_address, port)
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()


async def test_closing_the_network_closes_relayed_connections_and_the_relay():
    net = branch_lab(RealNetwork())
    _, client = await echo_connection(net)
    await net.close()
    await asyncio.wait_for(client.lost, WAIT)
    assert net.relay.bridges == set() and net.relay._server is None
