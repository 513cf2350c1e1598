"""The same exchanges on real loopback sockets as on the sim network, through the same calls."""

import asyncio
import errno
import socket

import pytest

from simulator.net import RealNetwork, SimNetwork, run_sim
from tests.support.net import PROXY, SBC, DatagramRecorder, Echo, Recorder, ThrowawayCA, branch_lab

pytestmark = pytest.mark.real

CA = ThrowawayCA()


def on(kind, coro_fn):
    """Run coro_fn(net) on the named network: sim on the virtual clock, real on asyncio.run."""

    async def main():
        net = branch_lab(SimNetwork(seed=1) if kind == "sim" else RealNetwork())
        try:
            return await coro_fn(net)
        finally:
            await net.close()

    return run_sim(main) if kind == "sim" else asyncio.run(asyncio.wait_for(main(), 10))


BOTH = pytest.mark.parametrize("kind", ["sim", "real"])


async def tcp_echo(net):
    listener = await net.listen(PROXY, 15061, "tcp", Echo)
    transport, client = await net.connect(SBC, "sip2.pstnhub.microsoft.com", listener.port, Recorder)
    transport.write(b"OPTIONS sip:ping SIP/2.0\r\n")
    echoed = await client.until(26)
    local, remote = transport.get_extra_info("sockname"), transport.get_extra_info("peername")
    transport.close()
    return echoed, local[0] == net.resolve(SBC), remote == (net.resolve(PROXY), 15061)


@BOTH
def test_a_tcp_echo_by_host_name_with_the_callers_own_source_address(kind):
    assert on(kind, tcp_echo) == (b"OPTIONS sip:ping SIP/2.0\r\n", True, True)


async def udp_echo(net):
    await net.listen(PROXY, 15060, "udp", lambda: DatagramRecorder(echo=True))
    transport, protocol = await net.open_datagram(SBC, 15060, DatagramRecorder)
    transport.sendto(b"OPTIONS", (net.resolve(PROXY), 15060))
    await protocol.arrived.wait()
    data, source, _ = protocol.datagrams[0]
    return data, source == (net.resolve(PROXY), 15060)


@BOTH
def test_a_udp_echo_between_named_hosts(kind):
    assert on(kind, udp_echo) == (b"OPTIONS", True)


async def udp_port_unreachable(net):
    transport, protocol = await net.connect(SBC, PROXY, 15098, DatagramRecorder, transport="udp")
    transport.sendto(b"OPTIONS")
    await asyncio.wait_for(protocol.arrived.wait(), 5)
    transport.sendto(b"OPTIONS")  # Linux reports the ICMP error on the socket's next operation
    await asyncio.sleep(0.1)
    return [type(e) for e in protocol.errors][:1]


@BOTH
def test_a_connected_udp_endpoint_hears_port_unreachable(kind):
    assert on(kind, udp_port_unreachable) == [ConnectionRefusedError]


async def refused(net):
    with pytest.raises(ConnectionRefusedError) as caught:
        await net.connect(SBC, PROXY, 15099, Recorder)
    return caught.value.errno, str(caught.value), [e["event"] for e in net.events.select("net.refused")]


@BOTH
def test_nothing_listening_is_refused_with_a_message_naming_both_hosts_and_the_port(kind):
    code, message, events = on(kind, refused)
    assert code == errno.ECONNREFUSED
    assert SBC in message and PROXY in message and "15099" in message
    assert events == ["net.refused"]


async def unknown_name(net):
    with pytest.raises(socket.gaierror, match="www.example.com: no such host"):
        await net.connect(SBC, "www.example.com", 443, Recorder)


@BOTH
def test_names_come_from_the_networks_own_table_never_system_dns(kind):
    on(kind, unknown_name)


async def busy_port(net):
    await net.listen(PROXY, 15062, "tcp", Echo)
    with pytest.raises(OSError, match="already in use") as caught:
        await net.listen(PROXY, 15062, "tcp", Echo)
    return caught.value.errno


@BOTH
def test_a_busy_port_is_a_clear_error(kind):
    assert on(kind, busy_port) == errno.EADDRINUSE


async def tls_echo(net):
    loop = asyncio.get_running_loop()
    accepted: asyncio.Queue = asyncio.Queue()

    class Holding(asyncio.Protocol):
        def connection_made(self, transport):
            transport.pause_reading()
            accepted.put_nowait(transport)

    await net.listen(PROXY, 15063, "tcp", Holding)
    transport, _ = await net.connect(SBC, PROXY, 15063, Recorder)
    client_app, server_app = Recorder(), Recorder()
    client_tls, server_tls = await asyncio.gather(
        loop.start_tls(transport, client_app, CA.context(SBC, server_side=False), server_hostname=PROXY),
        loop.start_tls(await accepted.get(), server_app, CA.context(PROXY, server_side=True), server_side=True),
    )
    client_tls.write(b"hello over mutual TLS")
    received = await server_app.until(21)
    peer = server_tls.get_extra_info("peercert")["subject"]
    client_tls.close()
    return received, peer


@BOTH
def test_mutual_tls_with_start_tls_works_the_same_on_both_networks(kind):
    received, client_subject = on(kind, tls_echo)
    assert received == b"hello over mutual TLS"
    assert client_subject == ((("commonName", SBC),),)




@pytest.mark.sim
async def test_the_real_network_refuses_to_run_on_a_jumping_virtual_clock():
    net = branch_lab(RealNetwork())
    with pytest.raises(RuntimeError, match="needs wall-clock time"):
        await net.listen(PROXY, 15065, "tcp", Echo)
