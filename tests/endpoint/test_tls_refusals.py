"""The certificate catalogue through the endpoint, on both networks: a request to a peer with a
broken certificate (or from one) fails with TransportFailure named after the refusal, and the
refusing node logs it. The raw TLS layer's own tables are tests/net/test_tls_*catalogue.py;
this reuses them and checks what a role sees."""

import asyncio

import pytest

from simulator.endpoint import SipEndpoint, Target, TlsConfig, TransportFailure
from tests.endpoint.helpers import on_both, request, run_on
from tests.net.test_tls_catalogue import CLIENT_PRESENTS, SERVER_PRESENTS
from tests.support.pki import PROXY, SBC


async def exchange(net, pki, *, sbc_identity, proxy_identity, require_client_cert=True, tls_name=None):
    """The SBC sends OPTIONS to the proxy over TLS; the response, or the TransportFailure."""
    sbc = SipEndpoint(net, host=SBC, node="sbc", tls=TlsConfig(identity=sbc_identity, trust=pki.ca_path))
    proxy = SipEndpoint(net, host=PROXY, node="proxy")
    await proxy.listen("tls", 0 if net.kind == "real" else 5061,
                       tls=TlsConfig(identity=proxy_identity, trust=pki.ca_path,
                                     require_client_cert=require_client_cert))
    proxy.on_request = lambda incoming: incoming.respond(200)
    target = Target(PROXY, proxy.listen_ports["tls"], "tls", tls_name=tls_name)
    try:
        return await sbc.request(request("OPTIONS", sbc, "tls"), target).final()
    except TransportFailure as failure:
        return failure
    finally:
        await asyncio.sleep(0.05)  # the refusing side's alert reaches the other one
        await sbc.close()
        await proxy.close()


def events(net, node):
    return [r["event"] for r in net.events.records if r.get("node") == node and r["event"].startswith("tls.")]


@pytest.mark.parametrize(("network", "variant"), on_both(list(SERVER_PRESENTS)))
def test_sbc_refuses_the_proxys_broken_certificate(lab_pki, network, variant):
    reason = SERVER_PRESENTS[variant][0]

    async def body(net):
        outcome = await exchange(net, lab_pki, sbc_identity=lab_pki.identity(SBC),
                                 proxy_identity=lab_pki.broken(variant, PROXY))
        return outcome, events(net, "sbc"), events(net, "proxy")

    outcome, at_sbc, at_proxy = run_on(network, body)
    assert isinstance(outcome, TransportFailure) and outcome.reason == reason
    assert reason in at_sbc and "tls.refused_by_peer" in at_proxy


@pytest.mark.parametrize(("network", "variant"), on_both(list(CLIENT_PRESENTS)))
def test_proxy_refuses_the_sbcs_broken_certificate(lab_pki, network, variant):
    refusal, _, seen_by_sbc = CLIENT_PRESENTS[variant]

    async def body(net):
        identity = lab_pki.broken(variant, SBC) if variant else None
        outcome = await exchange(net, lab_pki, sbc_identity=identity, proxy_identity=lab_pki.identity(PROXY))
        return outcome, events(net, "proxy")

    outcome, at_proxy = run_on(network, body)
    assert isinstance(outcome, TransportFailure) and outcome.reason == seen_by_sbc
    assert refusal in at_proxy


@pytest.mark.parametrize("network", on_both())
def test_sbc_checks_the_name_it_was_told_to_expect(lab_pki, network):
    async def body(net):
        return await exchange(net, lab_pki, sbc_identity=lab_pki.identity(SBC),
                              proxy_identity=lab_pki.identity(PROXY), tls_name="sip3.pstnhub.microsoft.com")

    outcome = run_on(network, body)
    assert isinstance(outcome, TransportFailure) and outcome.reason == "tls.name_mismatch"


@pytest.mark.parametrize("network", on_both())
def test_client_facing_listener_accepts_a_client_without_a_certificate(lab_pki, network):
    async def body(net):
        return await exchange(net, lab_pki, sbc_identity=None, proxy_identity=lab_pki.identity(PROXY),
                              require_client_cert=False)

    outcome = run_on(network, body)
    assert not isinstance(outcome, TransportFailure) and outcome.status == 200


@pytest.mark.parametrize("network", on_both())
def test_proxy_sees_the_sbc_certificate_of_a_mutual_tls_request(lab_pki, network):
    async def body(net):
        sbc = SipEndpoint(net, host=SBC, node="sbc", tls=TlsConfig(identity=lab_pki.identity(SBC),
                                                                  trust=lab_pki.ca_path))
        proxy = SipEndpoint(net, host=PROXY, node="proxy")
        await proxy.listen("tls", 0, tls=TlsConfig(identity=lab_pki.identity(PROXY), trust=lab_pki.ca_path))
        sources = []
        proxy.on_request = lambda incoming: (sources.append(incoming.source), incoming.respond(200))
        await sbc.request(request("OPTIONS", sbc, "tls"), Target(PROXY, proxy.listen_ports["tls"], "tls")).final()
        await sbc.close(), await proxy.close()
        return sources[0]

    source = run_on(network, body)
    # Reference §1.5: the proxy finds the tenant by the SBC FQDN in the certificate.
    assert source.tls.matches(SBC) and not source.tls.matches("sbc2.contoso.com")
