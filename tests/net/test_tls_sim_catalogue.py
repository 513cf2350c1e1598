"""The certificate catalogue again, over streams of the in-memory `sim` network on its virtual
clock: the same handshakes, the same named refusals, the same alerts seen by the peer."""

import asyncio

import pytest

from simulator.net import SimNetwork, run_sim
from simulator.net.tls import TlsPolicy
from tests.net.test_tls_catalogue import CLIENT_PRESENTS, SERVER_PRESENTS
from tests.support.net import branch_lab
from tests.support.pki import PROXY, SBC, handshake, network_streams


def on_sim(lab_pki, **kw):
    async def main():
        net = branch_lab(SimNetwork(seed=1), latency=0.02)
        async with network_streams(net) as (sbc_end, proxy_end):
            return await handshake(sbc_end, proxy_end, lab_pki, **kw)

    return run_sim(main)


def outcome(side):
    return side.reason, side.outcome.by_peer if side.reason else None, getattr(side.outcome, "alert", None)


@pytest.mark.parametrize("variant", SERVER_PRESENTS)
def test_sbc_refuses_broken_proxy_certificate_on_sim(lab_pki, variant):
    reason, alert, seen = SERVER_PRESENTS[variant]
    result = on_sim(lab_pki, client_identity=lab_pki.identity(SBC), server_identity=lab_pki.broken(variant, PROXY))
    assert outcome(result.client) == (reason, False, None)
    assert outcome(result.server) == (seen, True, alert)
    assert reason in result.events("sbc") and "tls.refused_by_peer" in result.events("proxy")


@pytest.mark.parametrize("variant", CLIENT_PRESENTS)
def test_proxy_refuses_broken_sbc_certificate_on_sim(lab_pki, variant):
    reason, alert, seen = CLIENT_PRESENTS[variant]
    identity = lab_pki.broken(variant, SBC) if variant else None
    result = on_sim(lab_pki, client_identity=identity, server_identity=lab_pki.identity(PROXY))
    assert outcome(result.server) == (reason, False, None)
    assert outcome(result.client) == (seen, True, alert)


def test_mutual_tls_on_sim_takes_virtual_round_trips_not_wall_time(lab_pki):
    result = on_sim(lab_pki, client_identity=lab_pki.identity(SBC), server_identity=lab_pki.identity(PROXY))
    (established,) = [r for r in result.log.records if r["node"] == "sbc"]
    assert established["event"] == "tls.established"
    # 20 ms each way: TCP is up at t=0.04; a TLS 1.2 full handshake takes two more round trips.
    assert established["t"] == pytest.approx(0.04 + 2 * 0.04, abs=0.005)


def test_legacy_tls11_sbc_refused_on_sim(lab_pki):
    result = on_sim(lab_pki, client_identity=lab_pki.identity(SBC), server_identity=lab_pki.identity(PROXY),
                    client_policy=TlsPolicy.legacy_tls11())
    assert outcome(result.server) == ("tls.protocol_version", False, None)
    assert outcome(result.client) == ("tls.protocol_version", True, "protocol_version")


@pytest.mark.sim
async def test_blackholed_link_times_the_handshake_out_at_the_policy_s_virtual_deadline(lab_pki):
    async def main():
        net = branch_lab(SimNetwork(seed=1), latency=0.02)
        async with network_streams(net) as (sbc_end, proxy_end):
            net.link("wan-seattle").blackhole()  # TCP is up; every TLS record from now on is lost
            started = asyncio.get_running_loop().time()
            result = await handshake(sbc_end, proxy_end, lab_pki, client_identity=lab_pki.identity(SBC),
                                     server_identity=lab_pki.identity(PROXY),
                                     client_policy=TlsPolicy(handshake_timeout=10.0),
                                     server_policy=TlsPolicy(handshake_timeout=10.0))
            return result, started

    result, started = await main()
    assert (result.client.reason, result.server.reason) == ("tls.handshake_timeout", "tls.handshake_timeout")
    assert [r["t"] - started for r in result.log.records] == [pytest.approx(10.0), pytest.approx(10.0)]


@pytest.mark.sim
async def test_link_cut_during_the_handshake_is_connection_lost_on_both_sides(lab_pki):
    async def main():
        net = branch_lab(SimNetwork(seed=1), latency=0.02)
        async with network_streams(net) as (sbc_end, proxy_end):
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, net.link("wan-seattle").down)  # after the ClientHello, before the Finished
            return await handshake(sbc_end, proxy_end, lab_pki, client_identity=lab_pki.identity(SBC),
                                   server_identity=lab_pki.identity(PROXY))

    result = await main()
    assert (result.client.reason, result.server.reason) == ("tls.connection_lost", "tls.connection_lost")
    assert result.events("sbc") == result.events("proxy") == ["tls.connection_lost"]


def test_sim_handshakes_do_not_write_the_key_log(lab_pki, tmp_path, monkeypatch):
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "keys.log"))
    result = on_sim(lab_pki, client_identity=lab_pki.identity(SBC), server_identity=lab_pki.identity(PROXY))
    assert result.client.reason is None
    assert not (tmp_path / "keys.log").exists()
