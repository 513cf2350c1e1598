"""Two endpoints (an SBC and the Teams proxy) on either network, listening on one transport,
and a runner that runs the same test body on `sim` (virtual clock) or `real` (loopback)."""

from __future__ import annotations

import asyncio
import random

import pytest

from simulator.endpoint import SipEndpoint, Target, TlsConfig
from simulator.net import RealNetwork, SimNetwork, run_sim
from simulator.net.tls import TlsPolicy
from simulator.sip import Request
from simulator.sip.builders import make_request, new_branch, new_call_id, new_tag
from simulator.sip.transaction import TimerSettings
from tests.support.pki import PROXY, SBC

PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
TRANSPORTS = ["udp", "tcp", "tls"]
NETWORKS = ["sim", pytest.param("real", marks=pytest.mark.real)]


def on_both(*values_lists):
    """Parameters for (network, *values) on both networks, the real ones marked `real`."""
    import itertools

    combos = list(itertools.product(*values_lists)) if values_lists else [()]
    return [pytest.param("sim", *c) for c in combos] + [
        pytest.param("real", *c, marks=pytest.mark.real) for c in combos]
REAL_TIMEOUT = 10.0  # wall seconds a real-network test may take before it fails


def tls_config(pki, fqdn, **kw):
    return TlsConfig(identity=pki.identity(fqdn), trust=pki.ca_path, policy=TlsPolicy.direct_routing(), **kw)


def sim_lab(seed=1, latency=0.01):
    net = SimNetwork(seed=seed)
    net.add_link("wan-seattle", "seattle", "cloud", latency=latency)
    net.add_host(SBC, site="seattle")
    net.add_host(PROXY, aliases=("sip2.pstnhub.microsoft.com",), site="cloud")
    return net


def real_lab():
    net = RealNetwork()
    net.add_host(SBC)
    net.add_host(PROXY, aliases=("sip2.pstnhub.microsoft.com",))
    return net


def run_on(kind, body, *, seed=1):
    """Run `body(net)` on a fresh sim (virtual time) or real (loopback, wall time) network."""
    if kind == "sim":
        return run_sim(lambda: body(sim_lab(seed)))

    async def real():
        net = real_lab()
        try:
            return await asyncio.wait_for(body(net), REAL_TIMEOUT)
        finally:
            await net.close()

    return asyncio.run(real())


async def pair(net, pki, transport, *, timers=None, seed=1):
    """(sbc, proxy) endpoints, both listening on `transport` (TLS: mutual, Direct Routing).
    On the real network they listen on ephemeral ports (other test runs share the machine):
    `target(proxy, transport)` gives the port actually bound."""
    timers = timers or TimerSettings()
    sbc = SipEndpoint(net, host=SBC, node="sbc", rng=random.Random(seed), timers=timers,
                      tls=tls_config(pki, SBC) if pki else None)
    proxy = SipEndpoint(net, host=PROXY, node="proxy", rng=random.Random(seed + 1), timers=timers,
                        tls=tls_config(pki, PROXY) if pki else None)
    port = PORTS[transport] if net.kind == "sim" else 0
    for ep, fqdn in ((sbc, SBC), (proxy, PROXY)):
        await ep.listen(transport, port, tls=tls_config(pki, fqdn) if transport == "tls" else None)
    return sbc, proxy


def target(ep, transport, **kw):
    return Target(ep.host, ep.listen_ports[transport], transport, **kw)


def request(method, ep, transport, *, to=PROXY, rng=None, cseq=1, body=b"", content_type=None,
            call_id=None, extra=(), port=None) -> Request:
    rng = rng or ep.rng
    port = port or PORTS[transport]
    return make_request(
        method, f"sip:{to}:{port};transport={transport}",
        from_=f"<sip:{ep.host}>;tag={new_tag(rng)}", to=f"<sip:{to}>",
        call_id=call_id or new_call_id(rng, ep.host), cseq=cseq,
        via=f"SIP/2.0/{transport.upper()} {ep.host};branch={new_branch(rng)}",
        contact=f"<sip:{ep.host}:{ep.listen_ports.get(transport, port)};transport={transport}>",
        body=body, content_type=content_type, extra_headers=list(extra))


def received(net, node):
    """What `node` actually received, as summaries, in order."""
    return [r["summary"] for r in net.events.records if r["event"] == "sip.received" and r.get("node") == node]
