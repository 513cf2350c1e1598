"""The whole certificate catalogue over real loopback TCP upgraded with `upgrade`: each broken
certificate is refused with its named reason on the side that checks it, and the other side
sees the refusal too (the TLS alert it received, or a reset right after its own handshake)."""

import asyncio
import ssl

import pytest

from simulator.net.tls import TlsPolicy
from simulator.pki.variants import CATALOGUE
from tests.support.pki import PROXY, SBC, handshake, loopback_streams

pytestmark = pytest.mark.real


# variant the proxy (TLS server) presents: (SBC's refusal, alert the proxy receives, what it makes of it)
SERVER_PRESENTS = {
    "expired": ("tls.expired", "certificate_expired", "tls.expired"),
    "not-yet-valid": ("tls.not_yet_valid", "bad_certificate", "tls.handshake_failed"),
    "wrong-san": ("tls.name_mismatch", "bad_certificate", "tls.handshake_failed"),
    "untrusted-ca": ("tls.unknown_ca", "unknown_ca", "tls.unknown_ca"),
    "missing-intermediate": ("tls.unknown_ca", "unknown_ca", "tls.unknown_ca"),
}
# variant the SBC (TLS client) presents: (proxy's refusal, alert the SBC receives, what it makes of it)
CLIENT_PRESENTS = {
    "expired": ("tls.expired", "certificate_expired", "tls.expired"),
    "not-yet-valid": ("tls.not_yet_valid", "bad_certificate", "tls.handshake_failed"),
    "untrusted-ca": ("tls.unknown_ca", "unknown_ca", "tls.unknown_ca"),
    "missing-intermediate": ("tls.unknown_ca", "unknown_ca", "tls.unknown_ca"),
    "no-client-auth": ("tls.bad_eku", "unsupported_certificate", "tls.bad_eku"),
    None: ("tls.no_client_cert", "handshake_failure", "tls.no_client_cert"),  # no certificate at all
}
# refused after the handshake (Python cannot send an alert then): (variant, presented by, reason)
AFTER_HANDSHAKE = [
    ("no-client-auth", "server", "tls.bad_eku"),  # serverAuth is enough for OpenSSL; Direct Routing wants both
    ("wrong-san", "client", "tls.name_mismatch"),  # the proxy was told which SBC to expect
]


def assert_refused(side, reason, result, node):
    """`node` refused with `reason`, raised it and logged it as an event of that name."""
    assert side.reason == reason and not side.outcome.by_peer, side.outcome
    assert reason in result.events(node)


def assert_saw_alert(side, alert, reason, result, node):
    """`node` failed because the peer sent `alert`, and logged tls.refused_by_peer saying so."""
    assert (side.outcome.by_peer, side.outcome.alert, side.reason) == (True, alert, reason)
    (event,) = [r for r in result.log.records if r["node"] == node and r["event"] == "tls.refused_by_peer"]
    assert (event["alert"], event["reason"]) == (alert, reason)


def test_every_refusing_variant_is_exercised_with_its_catalogue_reason():
    exercised = {v: r[0] for v, r in SERVER_PRESENTS.items()}
    exercised |= {v: r[0] for v, r in CLIENT_PRESENTS.items() if v}
    exercised |= {v: r for v, _, r in AFTER_HANDSHAKE}
    assert exercised == {name: v.refusal for name, v in CATALOGUE.items() if v.refusal}


@pytest.mark.parametrize("variant", SERVER_PRESENTS)
async def test_sbc_refuses_broken_proxy_certificate_and_proxy_gets_the_alert(lab_pki, variant):
    reason, alert, seen = SERVER_PRESENTS[variant]
    async with loopback_streams() as (sbc_end, proxy_end):
        result = await handshake(sbc_end, proxy_end, lab_pki, client_identity=lab_pki.identity(SBC),
                                 server_identity=lab_pki.broken(variant, PROXY))
    assert_refused(result.client, reason, result, "sbc")
    assert_saw_alert(result.server, alert, seen, result, "proxy")


@pytest.mark.parametrize("variant", CLIENT_PRESENTS)
async def test_proxy_refuses_broken_sbc_certificate_and_sbc_gets_the_alert(lab_pki, variant):
    reason, alert, seen = CLIENT_PRESENTS[variant]
    identity = lab_pki.broken(variant, SBC) if variant else None
    async with loopback_streams() as (sbc_end, proxy_end):
        result = await handshake(sbc_end, proxy_end, lab_pki, client_identity=identity,
                                 server_identity=lab_pki.identity(PROXY))
    assert_refused(result.server, reason, result, "proxy")
    assert_saw_alert(result.client, alert, seen, result, "sbc")


@pytest.mark.parametrize("variant, presented_by, reason", AFTER_HANDSHAKE)
async def test_refusal_after_the_handshake_resets_the_peer_s_fresh_connection(lab_pki, variant, presented_by, reason):
    broken = lab_pki.broken(variant, SBC if presented_by == "client" else PROXY)
    good = lab_pki.identity(PROXY if presented_by == "client" else SBC)
    async with loopback_streams() as (sbc_end, proxy_end):
        result = await handshake(
            sbc_end, proxy_end, lab_pki,
            client_identity=broken if presented_by == "client" else good,
            server_identity=broken if presented_by == "server" else good,
            server_peer_name=SBC if presented_by == "client" else None,
        )
        refuser, peer = (result.server, result.client) if presented_by == "client" else (result.client, result.server)
        assert_refused(refuser, reason, result, "proxy" if presented_by == "client" else "sbc")
        assert peer.reason is None  # its handshake had finished ...
        lost = await asyncio.wait_for(peer.app.lost, 5)  # ... and then the connection went
        assert lost is None or isinstance(lost, ConnectionError)


@pytest.mark.parametrize("client_policy", [
    pytest.param(TlsPolicy.legacy_tls11(), id="tls1.1-client"),
    pytest.param(TlsPolicy(min_version=ssl.TLSVersion.TLSv1_3, max_version=ssl.TLSVersion.TLSv1_3), id="tls1.3-only-client"),
])
async def test_direct_routing_proxy_refuses_other_tls_versions(lab_pki, client_policy):
    async with loopback_streams() as (sbc_end, proxy_end):
        result = await handshake(sbc_end, proxy_end, lab_pki, client_identity=lab_pki.identity(SBC),
                                 server_identity=lab_pki.identity(PROXY), client_policy=client_policy)
    assert_refused(result.server, "tls.protocol_version", result, "proxy")
    assert_saw_alert(result.client, "protocol_version", "tls.protocol_version", result, "sbc")


async def test_tls13_only_carrier_refuses_a_tls12_sbc(lab_pki):
    carrier = TlsPolicy(min_version=ssl.TLSVersion.TLSv1_3, max_version=ssl.TLSVersion.TLSv1_3)
    async with loopback_streams() as (sbc_end, carrier_end):
        result = await handshake(sbc_end, carrier_end, lab_pki, client_identity=lab_pki.identity(SBC),
                                 server_identity=lab_pki.identity(PROXY), server_policy=carrier)
    assert_refused(result.server, "tls.protocol_version", result, "proxy")
    assert result.client.outcome.alert == "protocol_version"
