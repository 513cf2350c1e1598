"""Same seed, same program -> byte-identical event log (reproducible traces)."""

import asyncio
import io

from simulator.net import SimNetwork, run_sim
from tests.support.net import PROXY, SBA, SBC, DatagramRecorder, Echo, Recorder, branch_lab


def outage_trace(seed: int) -> str:
    """Keepalives over TCP and UDP through a jittery, lossy WAN that is blackholed, cut and restored."""

    async def main():
        net = branch_lab(SimNetwork(seed=seed), latency=0.02, jitter=0.01, loss=0.05)
        loop = asyncio.get_running_loop()
        await net.listen(PROXY, 5061, "tcp", Echo)
        await net.listen(PROXY, 5060, "udp", lambda: DatagramRecorder(echo=True))
        udp, _ = await net.open_datagram(SBA, 5060, DatagramRecorder)

        async def keepalive(host):
            while True:
                try:
                    transport, client = await net.connect(host, PROXY, 5061, Recorder, timeout=10)
                except (ConnectionError, TimeoutError):
                    await asyncio.sleep(30)
                    continue
                while not client.lost.done():
                    transport.write(b"\r\n\r\n")
                    udp.sendto(b"OPTIONS", (net.resolve(PROXY), 5060))
                    await asyncio.wait([client.lost], timeout=30)
                await asyncio.sleep(5)

        for host in (SBC, SBA):
            loop.create_task(keepalive(host))
        wan = net.link("wan-seattle")
        loop.call_later(300, wan.blackhole)
        loop.call_later(420, wan.up)
        loop.call_later(600, wan.down)
        loop.call_later(1500, wan.up)
        loop.call_later(1600, lambda: wan.impair(latency=0.2, loss=0.2))
        await asyncio.sleep(2400)
        out = io.StringIO()
        net.events.write_jsonl(out)
        return out.getvalue()

    return run_sim(main)


def test_the_same_seed_gives_a_byte_identical_event_log():
    first = outage_trace(5)
    assert first == outage_trace(5)
    for event in ('"link.blackhole"', '"link.down"', '"net.reset"', '"net.refused"', '"net.retransmit"', '"net.drop"'):
        assert event in first


def test_another_seed_gives_another_log():
    assert outage_trace(5) != outage_trace(6)


def tls_trace(seed: int) -> str:
    """Mutual TLS handshakes and traffic over a lossy, jittery WAN (random keys, same trace)."""
    import ssl

    from tests.support.net import ThrowawayCA

    ca = ThrowawayCA()

    async def main():
        net = branch_lab(SimNetwork(seed=seed), latency=0.02, jitter=0.01, loss=0.2)
        loop = asyncio.get_running_loop()
        accepted: asyncio.Queue = asyncio.Queue()

        class Holding(asyncio.Protocol):
            def connection_made(self, transport):
                transport.pause_reading()
                accepted.put_nowait(transport)

        async def serve():
            while True:
                transport = await accepted.get()
                app = Echo()
                tls = await loop.start_tls(transport, app, ca.context(PROXY, server_side=True), server_side=True)
                app.connection_made(tls)

        loop.create_task(serve())
        await net.listen(PROXY, 5061, "tcp", Holding)
        for host in (SBC, SBA):
            transport, _ = await net.connect(host, PROXY, 5061, Recorder)
            app = Recorder()
            tls = await loop.start_tls(transport, app, ca.context(host, server_side=False), server_hostname=PROXY)
            app.connection_made(tls)
            for n in range(5):
                tls.write(b"OPTIONS %d\r\n" % n)
                await app.until(11 * (n + 1))
            tls.close()
        await asyncio.sleep(5)
        out = io.StringIO()
        net.events.write_jsonl(out)
        return out.getvalue()

    assert ssl.HAS_TLSv1_3 or ssl.HAS_TLSv1_2
    return run_sim(main)


def test_tls_over_a_lossy_link_gives_the_same_log_for_the_same_seed_despite_random_keys():
    first = tls_trace(11)
    assert '"net.retransmit"' in first
    assert first == tls_trace(11)
