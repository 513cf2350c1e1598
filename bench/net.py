"""Network benchmarks: how fast the sim network runs virtual time, TLS handshakes on it, and
SIP OPTIONS over real loopback mutual TLS.

sim_speedup: virtual seconds per wall second for 100 SBC <-> proxy pairs, each SBC a
  `SipEndpoint` with its own mutual-TLS connection (Direct Routing policy: TLS 1.2, ECDHE-RSA,
  RSA-2048 lab certificates) through ten branch WAN links to one proxy `SipEndpoint`, sending
  a real SIP OPTIONS client transaction every 60 s for one virtual hour (RFC 3261 transactions,
  timers on the virtual clock, every message in the event log). Handshakes are inside the hour.
  `sim_speedup_cpu` is the same per CPU second of this process: on a shared machine the wall
  figure measures the neighbours' load as much as ours.
sim_tls_handshakes_per_s: sequential connect + mutual-TLS upgrade of both ends on the sim
  network, per wall second (CPU-bound: the RSA signatures and ECDHE of each handshake).
real_tls_options_per_s: OPTIONS transactions per wall second between two `SipEndpoint`s over
  one mutual-TLS loopback connection on the real network, `REAL_WINDOW` transactions in flight.
Certificate issuing (101 RSA keys) happens before the clock starts and is not measured.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from typing import Any

from simulator.endpoint import SipEndpoint, SipFailure, Target, TlsConfig
from simulator.net import RealNetwork, SimNetwork, run_sim
from simulator.net.tls import HoldingProtocol, TlsPolicy, upgrade
from simulator.pki.store import LabPki
from simulator.sip import Request
from tests.support.net import Recorder

TARGETS = {"sim_speedup": (">=", 1000)}

PAIRS = 100
BRANCHES = 10
INTERVAL_S = 60.0
HOUR_S = 3600.0
HANDSHAKES = 100
REAL_TRANSACTIONS = 3000
REAL_WINDOW = 10
PROXY = "sip.pstnhub.microsoft.com"
RESPONSE = b"SIP/2.0 200 OK\r\n" + b"X-Pad: " + b"y" * 300 + b"\r\n\r\n"


def sbc_name(i: int) -> str:
    return f"sbc{i:03d}.contoso.com"


class Responder(asyncio.Protocol):
    """Proxy side: one response per request (requests end with a blank line). Requests that
    arrive before the TLS transport is handed over (see testing.Echo) are answered then."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and b"\r\n\r\n" in self.buffer:
            _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self.transport.write(RESPONSE)


def build(seed: int = 0) -> SimNetwork:
    net = SimNetwork(seed=seed)
    for b in range(BRANCHES):
        net.add_link(f"wan-branch{b}", f"branch{b}", "core", latency=0.015, jitter=0.005)
    net.add_link("cloud", "core", "cloud", latency=0.005)
    for i in range(PAIRS):
        net.add_host(sbc_name(i), site=f"branch{i % BRANCHES}")
    net.add_host(PROXY, site="cloud")
    return net


async def serve_tls(net: SimNetwork, pki: LabPki, policy: TlsPolicy) -> None:
    log = net.events.logger(node="proxy")
    identity = pki.identity(PROXY)
    loop = asyncio.get_running_loop()

    async def upgrade_accepted(transport: asyncio.Transport) -> None:
        app = Responder()
        tls, _ = await upgrade(transport, app, policy=policy, identity=identity, trust=pki.ca_path,
                               server_side=True, log=log)
        app.connection_made(tls)

    def accept() -> HoldingProtocol:
        protocol = HoldingProtocol()
        loop.call_soon(lambda: loop.create_task(upgrade_accepted(protocol.transport)))  # type: ignore[arg-type]
        return protocol

    await net.listen(PROXY, 5061, "tcp", accept)


async def tls_client(net: SimNetwork, pki: LabPki, policy: TlsPolicy, sbc: str) -> tuple[asyncio.Transport, Recorder]:
    transport, _ = await net.connect(sbc, PROXY, 5061, HoldingProtocol)
    app = Recorder()
    tls, _ = await upgrade(transport, app, policy=policy, identity=pki.identity(sbc), trust=pki.ca_path,
                           server_side=False, peer_name=PROXY, log=net.events.logger(node=sbc))
    app.connection_made(tls)
    return tls, app


def _options(ep: SipEndpoint, cseq: int) -> Request:
    """An SBC's keep-alive OPTIONS, as [S2] shows it; the endpoint adds the Via."""
    bits = ep.rng.getrandbits(96)
    return Request("OPTIONS", f"sip:{PROXY}:5061;transport=tls", headers=[
        ("Max-Forwards", "70"), ("From", f"<sip:{ep.host}>;tag={bits >> 64:08x}"), ("To", f"<sip:{PROXY}>"),
        ("Call-ID", f"{bits & (2**64 - 1):016x}@{ep.host}"), ("CSeq", f"{cseq} OPTIONS"),
        ("Contact", f"<sip:{ep.host}:5061;transport=tls>")])


def _tls(pki: LabPki, fqdn: str) -> TlsConfig:
    return TlsConfig(identity=pki.identity(fqdn), trust=pki.ca_path, policy=TlsPolicy.direct_routing())


def measure_speedup(pki: LabPki) -> dict[str, Any]:
    stats = {"transactions": 0, "failures": 0}

    async def pair(net: SimNetwork, i: int) -> None:
        loop = asyncio.get_running_loop()
        sbc = SipEndpoint(net, host=sbc_name(i), node=sbc_name(i), rng=random.Random(i), tls=_tls(pki, sbc_name(i)))
        await asyncio.sleep(i * INTERVAL_S / PAIRS)  # staggered like independent SBCs
        cseq = 0
        while loop.time() + INTERVAL_S <= HOUR_S:
            cseq += 1
            try:
                response = await sbc.request(_options(sbc, cseq), Target(PROXY, 5061, "tls")).final()
                stats["transactions"] += response.status == 200
            except SipFailure:
                stats["failures"] += 1
            await asyncio.sleep(INTERVAL_S)

    async def main() -> tuple[float, int]:
        net = build()
        proxy = SipEndpoint(net, host=PROXY, node="proxy", rng=random.Random(0))
        await proxy.listen("tls", 5061, tls=_tls(pki, PROXY))
        proxy.on_request = lambda incoming: incoming.respond(200)
        await asyncio.gather(*(pair(net, i) for i in range(PAIRS)))
        await asyncio.sleep(HOUR_S - asyncio.get_running_loop().time())
        return asyncio.get_running_loop().time(), len(net.events.select("tls.established", node="proxy"))

    started, cpu_started = time.perf_counter(), time.process_time()
    virtual, handshakes = run_sim(main)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "sim_speedup": round(virtual / wall, 1),
        # The same per CPU second of this process: what an unshared core would give.
        "sim_speedup_cpu": round(virtual / cpu, 1),
        "sim_speedup_virtual_s": virtual,
        "sim_speedup_wall_s": round(wall, 3),
        "sim_speedup_transactions": stats["transactions"],
        "sim_speedup_failures": stats["failures"],
        "sim_speedup_tls_connections": handshakes,
        "sim_speedup_exchange": "SIP OPTIONS client transactions through SipEndpoint over mutual TLS 1.2",
    }


def measure_handshakes(pki: LabPki) -> dict[str, Any]:
    async def main() -> int:
        net = build()
        policy = TlsPolicy()
        await serve_tls(net, pki, policy)
        for n in range(HANDSHAKES):
            tls, _ = await tls_client(net, pki, policy, sbc_name(n % PAIRS))
            tls.close()
        return HANDSHAKES

    started = time.perf_counter()
    count = run_sim(main)
    wall = time.perf_counter() - started
    return {"sim_tls_handshakes_per_s": round(count / wall, 1)}


def measure_real_options(pki: LabPki) -> dict[str, Any]:
    async def main() -> tuple[int, float]:
        net = RealNetwork()
        net.add_host(sbc_name(0))
        net.add_host(PROXY)
        sbc = SipEndpoint(net, host=sbc_name(0), node="sbc", rng=random.Random(1), tls=_tls(pki, sbc_name(0)))
        proxy = SipEndpoint(net, host=PROXY, node="proxy", rng=random.Random(2))
        await proxy.listen("tls", 0, tls=_tls(pki, PROXY))
        proxy.on_request = lambda incoming: incoming.respond(200)
        target = Target(PROXY, proxy.listen_ports["tls"], "tls")
        await sbc.request(_options(sbc, 1), target).final()  # connect and handshake first
        done = 0
        cseq = iter(range(2, 10**9))

        async def worker() -> None:
            nonlocal done
            while done < REAL_TRANSACTIONS:
                done += 1
                response = await sbc.request(_options(sbc, next(cseq)), target).final()
                assert response.status == 200, response
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(REAL_WINDOW)))
        wall = time.perf_counter() - started
        connections = len(net.events.select("tls.established", node="proxy"))
        await sbc.close()
        await proxy.close()
        await net.close()
        assert connections == 1, connections
        return done, wall

    count, wall = asyncio.run(main())
    return {"real_tls_options_per_s": round(count / wall, 1), "real_tls_options_window": REAL_WINDOW}


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="drlab-bench-net-") as directory:
        pki = LabPki(directory)
        pki.ensure([PROXY, *(sbc_name(i) for i in range(PAIRS))], variants=())
        return {**measure_speedup(pki), **measure_handshakes(pki), **measure_real_options(pki)}


if __name__ == "__main__":
    print(run())
