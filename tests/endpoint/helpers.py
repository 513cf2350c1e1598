"""Two endpoints (an SBC and the Teams proxy) on a network, listening on one transport."""

from __future__ import annotations

import random

from simulator.endpoint import SipEndpoint, Target, TlsConfig
from simulator.net.testing import branch_lab
from simulator.net.tls import TlsPolicy
from simulator.pki.testing import PROXY, SBC
from simulator.sip import Request
from simulator.sip.builders import make_request, new_branch, new_call_id, new_tag
from simulator.sip.transaction import TimerSettings

PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


def tls_config(pki, fqdn, **kw):
    return TlsConfig(identity=pki.identity(fqdn), trust=pki.ca_path, policy=TlsPolicy.direct_routing(), **kw)


async def pair(net, pki, transport, *, timers=None, seed=1):
    """(sbc, proxy) endpoints; both listen on `transport` (TLS: mutual, Direct Routing)."""
    timers = timers or TimerSettings()
    sbc = SipEndpoint(net, host=SBC, node="sbc", rng=random.Random(seed), timers=timers,
                      tls=tls_config(pki, SBC) if pki else None)
    proxy = SipEndpoint(net, host=PROXY, node="proxy", rng=random.Random(seed + 1), timers=timers,
                        tls=tls_config(pki, PROXY) if pki else None)
    for ep, fqdn in ((sbc, SBC), (proxy, PROXY)):
        await ep.listen(transport, PORTS[transport], tls=tls_config(pki, fqdn) if transport == "tls" else None)
    return sbc, proxy


def target(transport, host=PROXY):
    return Target(host, PORTS[transport], transport)


def request(method, ep, transport, *, to=PROXY, rng=None, cseq=1, body=b"", content_type=None,
            call_id=None, extra=()) -> Request:
    rng = rng or ep.rng
    return make_request(
        method, f"sip:{to}:{PORTS[transport]};transport={transport}",
        from_=f"<sip:{ep.host}>;tag={new_tag(rng)}", to=f"<sip:{to}>",
        call_id=call_id or new_call_id(rng, ep.host), cseq=cseq,
        via=f"SIP/2.0/{transport.upper()} {ep.host};branch={new_branch(rng)}",
        contact=f"<sip:{ep.host}:{PORTS[transport]};transport={transport}>",
        body=body, content_type=content_type, extra_headers=list(extra))


def sim_lab(seed=1, latency=0.01):
    from simulator.net import SimNetwork

    return branch_lab(SimNetwork(seed=seed), latency=latency)
