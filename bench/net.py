"""Network benchmarks: how fast the sim network runs virtual time, and TLS handshakes on it.

sim_speedup: virtual seconds per wall second for 100 SBC <-> proxy pairs, each on its own
  mutual-TLS connection (simulator.net.tls, Direct Routing policy: TLS 1.2, ECDHE-RSA,
  RSA-2048 lab certificates) through ten branch WAN links, exchanging a small request/response
  every 60 s for one virtual hour. Handshakes are inside the measured hour. The exchange is a
  fixed-size OPTIONS-like request and 200-like response, not yet the SIP transport layer's real
  OPTIONS transaction (that version comes with the SIP transport).
sim_tls_handshakes_per_s: sequential connect + mutual-TLS upgrade of both ends on the sim
  network, per wall second (CPU-bound: the RSA signatures and ECDHE of each handshake).
Certificate issuing (101 RSA keys) happens before the clock starts and is not measured.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

from simulator.net import SimNetwork, run_sim
from simulator.net.testing import Recorder
from simulator.net.tls import HoldingProtocol, TlsPolicy, upgrade
from simulator.pki.lab import LabPki

TARGETS = {"sim_speedup": (">=", 1000)}

PAIRS = 100
BRANCHES = 10
INTERVAL_S = 60.0
HOUR_S = 3600.0
HANDSHAKES = 100
PROXY = "sip.pstnhub.microsoft.com"
REQUEST = b"OPTIONS sip:sip.pstnhub.microsoft.com:5061;transport=tls SIP/2.0\r\n" + b"X-Pad: " + b"x" * 400 + b"\r\n\r\n"
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


def measure_speedup(pki: LabPki) -> dict[str, Any]:
    stats = {"transactions": 0, "handshakes": 0}

    async def pair(net: SimNetwork, policy: TlsPolicy, i: int) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(i * INTERVAL_S / PAIRS)  # staggered like independent SBCs
        tls, app = await tls_client(net, pki, policy, sbc_name(i))
        stats["handshakes"] += 1
        expected = 0
        while loop.time() + INTERVAL_S <= HOUR_S:
            tls.write(REQUEST)
            expected += len(RESPONSE)
            await app.until(expected)
            stats["transactions"] += 1
            await asyncio.sleep(INTERVAL_S)

    async def main() -> float:
        net = build()
        policy = TlsPolicy()
        await serve_tls(net, pki, policy)
        await asyncio.gather(*(pair(net, policy, i) for i in range(PAIRS)))
        await asyncio.sleep(HOUR_S - asyncio.get_running_loop().time())
        return asyncio.get_running_loop().time()

    started = time.perf_counter()
    virtual = run_sim(main)
    wall = time.perf_counter() - started
    return {
        "sim_speedup": round(virtual / wall, 1),
        "sim_speedup_virtual_s": virtual,
        "sim_speedup_wall_s": round(wall, 3),
        "sim_speedup_transactions": stats["transactions"],
        "sim_speedup_tls_connections": stats["handshakes"],
        "sim_speedup_exchange": "fixed-size request/response over mutual TLS 1.2 (not yet SIP OPTIONS)",
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


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="drlab-bench-net-") as directory:
        pki = LabPki(directory)
        pki.ensure([PROXY, *(sbc_name(i) for i in range(PAIRS))], variants=())
        return {**measure_speedup(pki), **measure_handshakes(pki)}


if __name__ == "__main__":
    print(run())
