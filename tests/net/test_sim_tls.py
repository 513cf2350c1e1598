"""Real TLS over sim streams: loop.start_tls() upgrades a sim connection like a socket."""

import asyncio
import ssl

import pytest

from simulator.net import SimNetwork, run_sim
from tests.support.net import PROXY, SBC, Recorder, ThrowawayCA, branch_lab

CA = ThrowawayCA()


class Holding(asyncio.Protocol):
    """Accepting side: hold the ClientHello until start_tls takes over (as tls.py does)."""

    def __init__(self, accepted):
        self.accepted = accepted

    def connection_made(self, transport):
        transport.pause_reading()
        self.accepted.put_nowait(transport)


async def tls_echo_server(net, loop, *, context=None):
    accepted = asyncio.Queue()
    await net.listen(PROXY, 5061, "tcp", lambda: Holding(accepted))
    outcome = loop.create_future()

    async def serve():
        transport = await accepted.get()
        app = Recorder()
        try:
            tls = await loop.start_tls(
                transport, app, context or CA.context(PROXY, server_side=True), server_side=True
            )
        except (ssl.SSLError, ConnectionError) as exc:
            outcome.set_result(exc)
            transport.close()
            return
        app.connection_made(tls)
        outcome.set_result(tls)
        data = await app.until(5)
        tls.write(data.upper())

    loop.create_task(serve())
    return outcome


async def tls_connect(net, loop, *, expect=PROXY):
    transport, plain = await net.connect(SBC, PROXY, 5061, Recorder)
    app = Recorder()
    tls = await loop.start_tls(transport, app, CA.context(SBC, server_side=False), server_hostname=expect)
    app.connection_made(tls)
    return tls, app


def sim(coro_fn, **lab):
    async def main():
        net = branch_lab(SimNetwork(seed=3), **lab)
        return await coro_fn(net, asyncio.get_running_loop())

    return run_sim(main)


def test_mutual_tls_handshake_and_encrypted_echo_over_a_sim_stream():
    async def scenario(net, loop):
        server = await tls_echo_server(net, loop)
        started = loop.time()
        tls, app = await tls_connect(net, loop)
        handshake_time = loop.time() - started
        server_tls = await server
        tls.write(b"hello")
        echoed = await app.until(5)
        return (
            echoed,
            tls.get_extra_info("peercert")["subject"],
            server_tls.get_extra_info("peercert")["subject"],
            tls.get_extra_info("ssl_object").version(),
            handshake_time,
        )

    echoed, server_subject, client_subject, version, handshake_time = sim(scenario, latency=0.02)
    assert echoed == b"HELLO"
    assert server_subject == ((("commonName", PROXY),),)
    assert client_subject == ((("commonName", SBC),),)
    assert version in ("TLSv1.2", "TLSv1.3")
    # TCP handshake, then one (TLS 1.3) or two (TLS 1.2) round trips for TLS: real records crossed.
    assert handshake_time == pytest.approx(2 * 0.04) if version == "TLSv1.3" else pytest.approx(3 * 0.04)


def test_the_bytes_on_the_wire_are_encrypted():
    async def scenario(net, loop):
        await tls_echo_server(net, loop)
        tls, app = await tls_connect(net, loop)
        seen = bytearray()
        pipe = net.connections[0].client.out  # client -> server bytes, as the network carries them
        send = pipe.send
        pipe.send = lambda data: (seen.extend(data), send(data))
        tls.write(b"SECRET-PIN-1234")
        await app.until(15)
        return bytes(seen)

    wire = sim(scenario)
    assert wire and b"SECRET-PIN-1234" not in wire


def test_a_certificate_for_another_name_is_refused_by_the_real_check():
    async def scenario(net, loop):
        server = await tls_echo_server(net, loop)
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            await tls_connect(net, loop, expect="sip3.pstnhub.microsoft.com")
        return await server

    assert isinstance(sim(scenario), (ssl.SSLError, ConnectionError))


def test_a_server_with_a_certificate_from_an_unknown_ca_is_refused():
    other = ThrowawayCA("someone else's CA")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*other.leaf(PROXY))

    async def scenario(net, loop):
        await tls_echo_server(net, loop, context=context)
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            await tls_connect(net, loop)

    sim(scenario)


def test_cutting_the_link_resets_an_established_tls_connection():
    async def scenario(net, loop):
        server = await tls_echo_server(net, loop)
        tls, app = await tls_connect(net, loop)
        await server
        net.link("wan-seattle").down()
        return await app.lost

    exc = sim(scenario, latency=0.01)
    assert isinstance(exc, ConnectionResetError) and "wan-seattle" in str(exc)


def test_tls_survives_a_short_blackhole_and_delivers_afterwards():
    async def scenario(net, loop):
        server = await tls_echo_server(net, loop)
        tls, app = await tls_connect(net, loop)
        await server
        net.link("wan-seattle").blackhole()
        tls.write(b"later")
        loop.call_later(20, net.link("wan-seattle").up)
        return await app.until(5), loop.time()

    echoed, when = sim(scenario)
    assert echoed == b"LATER" and when > 20
