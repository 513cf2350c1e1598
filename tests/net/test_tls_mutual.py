"""What a good mutual-TLS connection establishes, and the policy knobs around it (real loopback TCP)."""

import asyncio
import ssl

import pytest

from simulator.net.tls import (
    DIRECT_ROUTING_CIPHERS,
    TlsPolicy,
    clear_context_cache,
    peer_refusal,
    upgrade,
)
from tests.support.net import Recorder
from tests.support.pki import PROXY, SBC, handshake, loopback_streams

pytestmark = pytest.mark.real


def identities(lab_pki, client, server):
    return {
        "client_identity": lab_pki.identity(SBC) if client == "good" else lab_pki.broken(client, SBC),
        "server_identity": lab_pki.identity(PROXY) if server == "good" else lab_pki.broken(server, PROXY),
    }


async def one(lab_pki, client="good", server="good", **kw):
    """One SBC -> proxy handshake over loopback TCP; the connection is gone when this returns."""
    async with loopback_streams() as (sbc_end, proxy_end):
        return await handshake(sbc_end, proxy_end, lab_pki, **identities(lab_pki, client, server), **kw)


async def test_mutual_tls_uses_tls12_and_a_direct_routing_suite_and_names_both_ends(lab_pki):
    result = await one(lab_pki)
    sbc_view, proxy_view = result.client.outcome, result.server.outcome
    assert (sbc_view.version, proxy_view.version) == ("TLSv1.2", "TLSv1.2")
    assert sbc_view.cipher in DIRECT_ROUTING_CIPHERS.split(":")
    assert sbc_view.dns_names == (PROXY,) and proxy_view.dns_names == (SBC,)
    assert proxy_view.eku == ("serverAuth", "clientAuth")
    assert proxy_view.sni == PROXY  # the SBC asked for the proxy by name
    assert "CN=drlab Lab Intermediate CA" in proxy_view.issuer
    assert result.events("sbc") == ["tls.established"] and result.events("proxy") == ["tls.established"]


async def test_application_bytes_flow_both_ways_after_the_upgrade(lab_pki):
    async with loopback_streams() as (sbc_end, proxy_end):
        result = await handshake(sbc_end, proxy_end, lab_pki, **identities(lab_pki, "good", "good"))
        request, response = b"OPTIONS sip:sip.pstnhub.microsoft.com SIP/2.0\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n"
        result.client.transport.write(request)
        assert await asyncio.wait_for(result.server.app.until(len(request)), 5) == request
        result.server.transport.write(response)
        assert await asyncio.wait_for(result.client.app.until(len(response)), 5) == response
        result.client.transport.close()  # close_notify: the server sees an orderly end
        assert await asyncio.wait_for(result.server.app.lost, 5) is None


async def test_proxy_not_told_which_sbc_accepts_any_lab_sbc_and_can_ask_the_certificate_later(lab_pki):
    # [S2]: the proxy identifies the SBC from the Contact FQDN after the handshake.
    result = await one(lab_pki, client="wrong-san")
    assert result.server.reason is None
    assert not result.server.outcome.matches(SBC)
    assert result.server.outcome.matches(f"wrong-{SBC}")


@pytest.mark.parametrize("cn_fallback, reason", [(True, None), (False, "tls.name_mismatch")])
async def test_cn_only_certificate_is_accepted_only_by_the_cn_fallback(lab_pki, cn_fallback, reason):
    result = await one(lab_pki, server="cn-only", client_policy=TlsPolicy(cn_fallback=cn_fallback))
    assert result.client.reason == reason


@pytest.mark.parametrize("peer_name, reason", [
    ("sip.pstnhub.microsoft.com", None),
    ("sip2.pstnhub.microsoft.com", None),  # any one label
    ("x.sip.pstnhub.microsoft.com", "tls.name_mismatch"),  # two labels: RFC 2818 §3.1
    ("pstnhub.microsoft.com", "tls.name_mismatch"),  # zero labels
])
async def test_wildcard_certificate_matches_exactly_one_label(lab_pki, peer_name, reason):
    result = await one(lab_pki, server="wildcard", peer_name=peer_name)
    assert result.client.reason == reason


async def test_pstn_policy_negotiates_tls13(lab_pki):
    pstn = TlsPolicy.pstn()
    result = await one(lab_pki, client_policy=pstn, server_policy=pstn)
    assert result.client.outcome.version == "TLSv1.3"


async def test_tls13_client_without_certificate_learns_of_the_refusal_on_its_first_read(lab_pki):
    # RFC 8446 §4.4.2: the client's handshake ends before the server judges its certificate.
    pstn = TlsPolicy.pstn()
    async with loopback_streams() as (sbc_end, proxy_end):
        result = await handshake(sbc_end, proxy_end, lab_pki, client_identity=None,
                                 server_identity=lab_pki.identity(PROXY), client_policy=pstn, server_policy=pstn)
        assert result.server.reason == "tls.no_client_cert"
        assert result.client.reason is None
        exc = await asyncio.wait_for(result.client.app.lost, 5)
    assert peer_refusal(exc) == ("tls.no_client_cert", "certificate_required")


async def test_no_shared_cipher_is_a_handshake_failure_on_both_sides(lab_pki):
    result = await one(lab_pki, client_policy=TlsPolicy(ciphers="ECDHE-RSA-CHACHA20-POLY1305"))
    assert result.server.reason == "tls.handshake_failed" and "NO_SHARED_CIPHER" in result.server.outcome.detail
    assert (result.client.outcome.by_peer, result.client.outcome.alert) == (True, "handshake_failure")


async def test_plain_sip_sent_to_a_tls_listener_fails_the_handshake(lab_pki):
    async with loopback_streams() as (sbc_end, proxy_end):
        sbc_end.write(b"OPTIONS sip:sip.pstnhub.microsoft.com SIP/2.0\r\n\r\n")
        with pytest.raises(ConnectionError) as caught:
            await upgrade(proxy_end, Recorder(), policy=TlsPolicy(), identity=lab_pki.identity(PROXY),
                          trust=lab_pki.ca_path, server_side=True, log=_null_log())
    assert caught.value.reason == "tls.handshake_failed"


async def test_silent_peer_makes_the_handshake_time_out(lab_pki):
    from simulator.events import EventLog

    log = EventLog()
    async with loopback_streams() as (_sbc_end, proxy_end):  # the SBC never says ClientHello
        with pytest.raises(ConnectionError) as caught:
            await upgrade(proxy_end, Recorder(), policy=TlsPolicy(handshake_timeout=0.05),
                          identity=lab_pki.identity(PROXY), trust=lab_pki.ca_path, server_side=True,
                          log=log.logger(node="proxy"))
    assert caught.value.reason == "tls.handshake_timeout"
    assert [r["event"] for r in log.records] == ["tls.handshake_timeout"]


async def test_real_sockets_write_tls_secrets_to_sslkeylogfile(lab_pki, tmp_path, monkeypatch):
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    assert TlsPolicy().with_keylog_from_env().keylog_filename == str(keylog)
    await one(lab_pki)  # the default policy: upgrade reads the environment on a real transport
    lines = keylog.read_text().splitlines()
    assert lines[0] == "# TLS secrets log file, generated by OpenSSL / Python"
    assert sum(line.startswith("CLIENT_RANDOM ") for line in lines) == 2  # both ends of one TLS 1.2 session


def test_no_sslkeylogfile_means_no_key_log(monkeypatch):
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    assert TlsPolicy().with_keylog_from_env().keylog_filename is None


def test_direct_routing_default_is_tls12_only_mutual_with_four_ecdhe_rsa_suites():
    policy = TlsPolicy()
    assert policy == TlsPolicy.direct_routing()
    assert (policy.min_version, policy.max_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    assert policy.mutual and policy.required_eku == ("serverAuth", "clientAuth")
    assert sorted(DIRECT_ROUTING_CIPHERS.split(":")) == sorted([
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA256"])


async def test_server_without_identity_is_a_clear_error(lab_pki):
    with pytest.raises(ValueError, match="a TLS server needs an identity"):
        await upgrade(None, Recorder(), policy=TlsPolicy(), identity=None, trust=lab_pki.ca_path,
                      server_side=True, log=_null_log())


async def test_contexts_are_built_once_per_policy_and_identity(lab_pki):
    from simulator.net import tls

    clear_context_cache()
    await one(lab_pki)
    await one(lab_pki)
    assert tls._context.cache_info().misses == 2  # one client, one server context


def _null_log():
    from simulator.events import EventLog

    return EventLog().logger(node="test")


async def test_upgrading_a_connection_that_already_closed_is_connection_lost(lab_pki):
    async with loopback_streams() as (sbc_end, proxy_end):
        proxy_end.close()
        with pytest.raises(ConnectionError) as caught:
            await upgrade(proxy_end, Recorder(), policy=TlsPolicy(), identity=lab_pki.identity(PROXY),
                          trust=lab_pki.ca_path, server_side=True, log=_null_log())
    assert caught.value.reason == "tls.connection_lost"


SIP2, SIP3 = "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com"


@pytest.mark.parametrize("asked_for, presented, reason", [
    (SIP2, SIP2, None),
    (PROXY, PROXY, None),
    (SIP3, PROXY, "tls.name_mismatch"),  # not offered: the first certificate, which does not name it
])
async def test_server_presents_the_certificate_the_client_named_in_sni(lab_pki, asked_for, presented, reason):
    choice = {PROXY: lab_pki.identity(PROXY), SIP2: lab_pki.identity(SIP2)}
    async with loopback_streams() as (sbc_end, proxy_end):
        result = await handshake(sbc_end, proxy_end, lab_pki, client_identity=lab_pki.identity(SBC),
                                 server_identity=choice, peer_name=asked_for)
    assert result.client.reason == reason
    if reason is None:
        assert result.client.outcome.dns_names == (presented,)
        assert result.server.outcome.sni == asked_for


async def test_a_client_cannot_offer_a_choice_of_identities(lab_pki):
    with pytest.raises(ValueError, match="a TLS client presents one identity"):
        await upgrade(None, Recorder(), policy=TlsPolicy(), identity={SBC: lab_pki.identity(SBC)},
                      trust=lab_pki.ca_path, server_side=False, log=_null_log())
