"""TCP streams on the sim network: delivery, latency, cuts, blackholes, loss, close semantics."""

import asyncio
import errno
import socket

import pytest

from simulator.net import SimNetwork, run_sim
from tests.support.net import PROXY, SBA, SBC, Echo, Recorder, branch_lab


def sim(coro_fn, **lab):
    """Run coro_fn(net, loop) on a fresh virtual loop with the branch lab."""

    async def main():
        net = branch_lab(SimNetwork(seed=7), **lab)
        return await coro_fn(net, asyncio.get_running_loop())

    return run_sim(main)


async def echo_pair(net, src=SBC, dst=PROXY, port=5061):
    await net.listen(dst, port, "tcp", Echo)
    return await net.connect(src, dst, port, Recorder)


async def recorded_pair(net, *, on_accept=lambda transport: None, client=Recorder):
    """Connect SBC -> PROXY:5061; returns (client transport, client protocol, server Recorder)."""
    accepted = []

    def accept():
        class Server(Recorder):
            def connection_made(self, transport):
                super().connection_made(transport)
                on_accept(transport)

        accepted.append(Server())
        return accepted[-1]

    await net.listen(PROXY, 5061, "tcp", accept)
    transport, protocol = await net.connect(SBC, "sip2.pstnhub.microsoft.com", 5061, client)
    return transport, protocol, accepted[0]


@pytest.mark.parametrize("latency", [0.0, 0.025, 0.150])
def test_connect_takes_one_round_trip_and_an_echo_another(latency):
    async def scenario(net, loop):
        await net.listen(PROXY, 5061, "tcp", Echo)
        started = loop.time()
        transport, client = await net.connect(SBC, PROXY, 5061, Recorder)
        connected = loop.time() - started
        transport.write(b"OPTIONS")
        sent = loop.time()
        assert await client.until(7) == b"OPTIONS"
        return connected, loop.time() - sent

    connect_time, echo_time = sim(scenario, latency=latency)
    assert connect_time == pytest.approx(2 * latency)
    assert echo_time == pytest.approx(2 * latency)


def test_hosts_in_the_same_site_talk_without_links_or_delay():
    async def scenario(net, loop):
        transport, client = await echo_pair(net, src=SBC, dst=SBA)
        transport.write(b"ping")
        await client.until(4)
        return loop.time(), transport.get_extra_info("links")

    assert sim(scenario, latency=0.2) == (0.0, [])


def test_both_ends_see_the_addresses_of_the_connection():
    async def scenario(net, loop):
        transport, _, server_protocol = await recorded_pair(net)
        server = server_protocol.transport
        return (
            transport.get_extra_info("sockname"),
            transport.get_extra_info("peername"),
            server.get_extra_info("sockname"),
            server.get_extra_info("peername"),
        )

    client_local, client_remote, server_local, server_remote = sim(scenario)
    assert client_remote == server_local == ("10.2.0.10", 5061)
    assert client_local == server_remote and client_local[0] == "10.1.0.10"


def test_a_link_set_down_resets_both_ends_and_refuses_new_connects_at_once():
    async def scenario(net, loop):
        transport, client, server = await recorded_pair(net)
        net.link("wan-seattle").down()
        client_exc, server_exc = await client.lost, await server.lost
        cut_at = loop.time()
        with pytest.raises(ConnectionRefusedError, match="link wan-seattle down") as refused:
            await net.connect(SBC, PROXY, 5061, Recorder)
        return client_exc, server_exc, loop.time() - cut_at, refused.value

    client_exc, server_exc, refusal_delay, refused = sim(scenario, latency=0.05)
    for exc in (client_exc, server_exc):
        assert isinstance(exc, ConnectionResetError)
        assert "link wan-seattle down" in str(exc)
    assert refusal_delay == 0.0
    assert refused.errno == errno.ECONNREFUSED


def test_a_link_back_up_accepts_connects_again():
    async def scenario(net, loop):
        await net.listen(PROXY, 5061, "tcp", Echo)
        net.link("wan-seattle").down()
        await asyncio.sleep(900)
        net.link("wan-seattle").up()
        transport, client = await net.connect(SBC, PROXY, 5061, Recorder)
        transport.write(b"back")
        return await client.until(4)

    assert sim(scenario) == b"back"


def test_nothing_listening_is_refused_after_one_round_trip_naming_host_and_port():
    async def scenario(net, loop):
        with pytest.raises(ConnectionRefusedError) as refused:
            await net.connect(SBC, PROXY, 5061, Recorder)
        return loop.time(), str(refused.value)

    elapsed, message = sim(scenario, latency=0.04)
    assert elapsed == pytest.approx(0.08)
    assert f"{SBC} -> {PROXY}" in message and "5061" in message and "nothing listening" in message


def test_connect_through_a_blackhole_hangs_until_the_callers_own_timeout():
    async def scenario(net, loop):
        await net.listen(PROXY, 5061, "tcp", Echo)
        net.link("wan-seattle").blackhole()
        with pytest.raises(TimeoutError, match="wan-seattle blackholed"):
            await net.connect(SBC, PROXY, 5061, Recorder, timeout=32)
        return loop.time(), net.events.select("net.connect_timeout")

    elapsed, events = sim(scenario)
    assert elapsed == 32.0
    assert events[0]["reason"] == "link wan-seattle blackholed"


def test_connect_through_a_blackhole_gives_up_after_the_syn_retries():
    async def scenario(net, loop):
        net.link("wan-seattle").blackhole()
        with pytest.raises(TimeoutError, match="SYN retries"):
            await net.connect(SBC, PROXY, 5061, Recorder)
        return loop.time()

    assert sim(scenario) == 1 + 2 + 4 + 8 + 16 + 32 + 64  # 127 s, Linux tcp_syn_retries=6


def test_a_connect_waiting_on_a_blackhole_succeeds_on_the_next_syn_after_restore():
    async def scenario(net, loop):
        await net.listen(PROXY, 5061, "tcp", Echo)
        net.link("wan-seattle").blackhole()
        loop.call_later(5, net.link("wan-seattle").up)
        await net.connect(SBC, PROXY, 5061, Recorder)
        return loop.time()

    assert sim(scenario) == 7.0  # SYNs at 0, 1, 3 (lost), 7 (through)


def test_bytes_sent_into_a_blackhole_are_held_and_arrive_in_order_after_restore():
    async def scenario(net, loop):
        transport, client = await echo_pair(net)
        net.link("wan-seattle").blackhole()
        transport.write(b"one ")
        transport.write(b"two")
        await asyncio.sleep(30)
        assert client.received == b""
        net.link("wan-seattle").up()
        return await client.until(7), loop.time()

    data, when = sim(scenario)
    assert data == b"one two"
    assert 30 < when < 60


def test_a_blackhole_longer_than_the_retransmission_limit_times_the_connection_out():
    async def scenario(net, loop):
        transport, client = await echo_pair(net)
        net.link("wan-seattle").blackhole()
        transport.write(b"OPTIONS")
        exc = await client.lost
        return exc, loop.time(), len(net.events.select("net.retransmit"))

    exc, when, retransmissions = sim(scenario)
    assert isinstance(exc, TimeoutError) and "wan-seattle" in str(exc)
    assert retransmissions == 15
    assert 900 < when < 950  # Linux: ~924.6 s at the 200 ms minimum RTO


@pytest.mark.sim
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_loss_on_a_stream_delays_bytes_but_never_loses_or_reorders_them(seed):
    net = branch_lab(SimNetwork(seed=seed), latency=0.01, jitter=0.02, loss=0.3)
    transport, client = await echo_pair(net)
    expected = b"".join(b"%04d;" % i for i in range(200))
    for i in range(200):
        transport.write(b"%04d;" % i)
        await asyncio.sleep(0.001)
    assert await client.until(len(expected)) == expected
    assert len(net.events.select("net.retransmit")) > 0


def test_close_delivers_pending_bytes_then_eof_and_both_ends_end_cleanly():
    async def scenario(net, loop):
        transport, client, server = await recorded_pair(net)
        transport.write(b"BYE")
        transport.close()
        return await client.lost, await server.lost, bytes(server.received), server.eof, net.connections

    client_exc, server_exc, received, eof, remaining = sim(scenario, latency=0.01)
    assert (client_exc, server_exc, received, eof, remaining) == (None, None, b"BYE", True, [])


@pytest.mark.parametrize(
    "unread_data, peer_sees",
    [(False, "eof"), (True, "reset")],
)
@pytest.mark.parametrize("how", ["abort", "close"])
def test_closing_ends_like_a_closed_socket_and_resets_only_with_unread_data(how, unread_data, peer_sees):
    async def scenario(net, loop):
        def on_accept(server_transport):
            if unread_data:
                loop.call_later(0.5, server_transport.write, b"unread")

        transport, client, server = await recorded_pair(net, on_accept=on_accept)
        transport.pause_reading()
        await asyncio.sleep(1)
        getattr(transport, how)()
        return await client.lost, await server.lost, server.eof

    mine, theirs, eof = sim(scenario, latency=0.01)
    assert mine is None
    if peer_sees == "eof":
        assert (theirs, eof) == (None, True)
    else:
        assert isinstance(theirs, ConnectionResetError) and f"closed by {SBC} with unread data" in str(theirs)


def test_paused_reading_holds_data_and_pushes_back_on_the_writer():
    async def scenario(net, loop):
        writer_paused = []

        class Writer(Recorder):
            def pause_writing(self):
                writer_paused.append(True)

            def resume_writing(self):
                writer_paused.append(False)

        transport, _, server = await recorded_pair(net, on_accept=lambda t: t.pause_reading(), client=Writer)
        transport.write(b"x" * 100_000)
        await asyncio.sleep(1)
        held = bytes(server.received)
        server.transport.resume_reading()
        await asyncio.sleep(1)
        return held, len(server.received), writer_paused

    held, delivered, writer_paused = sim(scenario)
    assert held == b""
    assert delivered == 100_000
    assert writer_paused == [True, False]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda net: net.connect(SBC, "nowhere.contoso.com", 5061, Recorder), socket.gaierror, "nowhere.contoso.com"),
        (lambda net: net.connect("ghost.contoso.com", PROXY, 5061, Recorder), socket.gaierror, "ghost.contoso.com"),
        (lambda net: net.connect(SBC, PROXY, 0, Recorder), ValueError, "bad port"),
        (lambda net: net.connect(SBC, PROXY, 70000, Recorder), ValueError, "bad port"),
        (lambda net: net.listen(PROXY, 5061, "sctp", Echo), ValueError, "bad transport"),
        (lambda net: net.listen(PROXY, -1, "tcp", Echo), ValueError, "bad port"),
    ],
)
def test_bad_requests_get_clear_errors(call, error, message):
    async def scenario(net, loop):
        with pytest.raises(error, match=message):
            await call(net)

    sim(scenario)


def test_a_port_can_only_be_listened_on_once():
    async def scenario(net, loop):
        listener = await net.listen(PROXY, 5061, "tcp", Echo)
        with pytest.raises(OSError, match="5061 on sip.pstnhub.microsoft.com .* already in use") as busy:
            await net.listen(PROXY, 5061, "tcp", Echo)
        listener.close()
        await net.listen(PROXY, 5061, "tcp", Echo)
        return busy.value.errno

    assert sim(scenario) == errno.EADDRINUSE


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latency": -1}, "latency must be"),
        ({"loss": 1.5}, "loss must be a probability"),
        ({"jitter": "lots"}, "jitter must be"),
    ],
)
def test_impossible_link_settings_are_refused(kwargs, message):
    net = SimNetwork()
    with pytest.raises(ValueError, match=message):
        net.add_link("wan-seattle", "seattle", "cloud", **kwargs)


def test_a_host_in_an_unknown_site_is_refused():
    with pytest.raises(ValueError, match="unknown site 'seatle'"):
        SimNetwork().add_host(SBC, site="seatle")


def test_write_eof_half_closes_and_the_peer_can_still_answer():
    async def scenario(net, loop):
        class AnswerAtEof(Recorder):
            def eof_received(self):
                self.transport.write(b"answer:" + bytes(self.received))
                self.transport.close()
                return True

        await net.listen(PROXY, 5061, "tcp", AnswerAtEof)
        transport, client = await net.connect(SBC, PROXY, 5061, Recorder)
        transport.write(b"question")
        transport.write_eof()
        with pytest.raises(RuntimeError, match="after write_eof"):
            transport.write(b"more")
        await client.lost
        return bytes(client.received), client.eof

    assert sim(scenario, latency=0.01) == (b"answer:question", True)
