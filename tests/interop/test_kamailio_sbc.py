"""A real SBC against the emulated Teams cloud: Kamailio (examples/sbc/kamailio/) is the Seattle SBC.

Each test brings up examples/labs/contoso-kamailio-sbc.yaml on the real network at --time-scale
60 (a minute of OPTIONS is a second of wall time), its external SBC node moved to a free
127.0.0.x, and runs Kamailio there with the example configuration filled in for the lab
(tests/support/kamailio.py). The PSTN carrier behind Kamailio is SIPp on 127.0.0.1 with the
scenarios of tests/interop/sipp/. What the tests hold Kamailio and the proxies to is Microsoft's
documented behaviour [S2][S6][S10], not what either side happens to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.control.state import gateways
from simulator.lab import Lab
from simulator.lab.spec import ExternalPeer, load_lab_spec
from simulator.sip import Request, parse_message
from tests.interop.test_sipp_carrier import SIPP_ADDRESS, assert_completed, free_port, sipp
from tests.support.contoso import ROOT, contoso
from tests.support.kamailio import KAMAILIO, KAMCMD, TLS_MODULE, KamailioSbc

pytestmark = [
    pytest.mark.real,
    pytest.mark.slow,
    pytest.mark.skipif(KAMAILIO is None or KAMCMD is None,
                       reason="kamailio is not on PATH (Debian: apt-get install kamailio kamailio-tls-modules)"),
    pytest.mark.skipif(TLS_MODULE is None,
                       reason="Kamailio's TLS module is not installed (Debian: apt-get install kamailio-tls-modules)"),
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not on PATH (Debian: apt-get install sip-tester)"),
]

LAB = ROOT / "examples" / "labs" / "contoso-kamailio-sbc.yaml"
SBC_NODE, SBC = "sbc-sea", "sbc-sea.contoso.com"
SBC_TLS_PORT, SBC_CARRIER_PORT = 5061, 5060
TIME_SCALE = 60
#: [S6]'s three minutes (drlab's default is [S8]'s five); the media watch's floor allows time scale 60
SETTINGS = {"demotion_window_s": 180, "media_inactivity_timeout_s": 60}
WAIT_S = 10  # wall seconds; only ever reached when a test is about to fail
TEST_TIMEOUT_S = 60


def kamailio_address() -> str:
    """A 127.0.0.x where Kamailio's TLS and UDP ports are free (127.0.0.1 is SIPp's)."""
    for last in range(2, 255):
        address = f"127.0.0.{last}"
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                tcp.bind((address, SBC_TLS_PORT))
                udp.bind((address, SBC_CARRIER_PORT))
        except OSError:
            continue
        return address
    raise AssertionError("no 127.0.0.x with ports 5060/udp and 5061/tcp free")


def lab_with_kamailio(certs: Path, address: str, certificate: str | None = None) -> Lab:
    """The example lab, Kamailio at `address`, presenting the lab PKI's `certificate` variant."""
    spec = load_lab_spec(LAB)
    spec.nodes[SBC_NODE] = dataclasses.replace(spec.nodes[SBC_NODE], external=ExternalPeer(address, SBC_TLS_PORT, "tls"))
    spec.hosts[SBC] = dataclasses.replace(spec.hosts[SBC], certificate=certificate)
    return Lab.build(spec, tenant=contoso(), network="real", seed=1, certs_dir=certs, time_scale=TIME_SCALE,
                     settings=SETTINGS)


@contextlib.asynccontextmanager
async def kamailio_lab(certs: Path, folder: Path, carrier_port: int, *,
                       certificate: str | None = None) -> AsyncIterator[tuple[Lab, KamailioSbc]]:
    """The lab started (its clients signed in), then Kamailio; both stopped on the way out."""
    lab = lab_with_kamailio(certs, kamailio_address(), certificate)
    try:
        assert await lab.start(settle_timeout_s=WAIT_S * TIME_SCALE) == []
        async with KamailioSbc(lab, folder, carrier=(SIPP_ADDRESS, carrier_port)) as sbc:
            try:
                yield lab, sbc
            except BaseException:
                print(sbc.log()[-6000:])  # shown by pytest with the failure
                raise
    finally:
        await lab.stop()


async def event(lab: Lab, name: str, matches: Callable[[dict[str, Any]], bool] = lambda r: True, *,
                wait_s: float = WAIT_S) -> dict[str, Any]:
    """The first record of event `name` that `matches`, already written or still to come."""
    found = [r for r in lab.events.select(name) if r["event"] == name and matches(r)]
    if found:
        return found[0]
    arrived: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def seen(record: dict[str, Any]) -> None:
        if record["event"] == name and matches(record) and not arrived.done():
            arrived.set_result(record)
    lab.events.subscribe(seen)
    try:
        return await asyncio.wait_for(arrived, wait_s)
    except TimeoutError:
        raise AssertionError(f"no {name} event within {wait_s:g} s") from None


def health(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r["gateway"] == SBC and r["state"] == state


def received(lab: Lab, node: str, method: str) -> list[Request]:
    """The requests proxy `node` received from Kamailio, parsed."""
    kamailio = f"{lab.spec.nodes[SBC_NODE].external.address}:"  # type: ignore[union-attr]
    return [parse_message(r["message"].encode()) for r in lab.events.records
            if r["event"] == "sip.received" and r.get("node") == node and r["src"].startswith(kamailio)
            and r["message"].startswith(f"{method} ")]


def admin_status(lab: Lab) -> dict[str, Any]:
    """The gateway as the control API's status shows it."""
    return next(g for g in gateways(lab, asyncio.get_running_loop().time()) if g["fqdn"] == SBC)


# --- pairing ------------------------------------------------------------------------------------------

def test_kamailio_pairs_and_the_proxy_shows_it_active(lab_certs: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with kamailio_lab(lab_certs, tmp_path, free_port(SIPP_ADDRESS, "udp")) as (lab, _):
            await event(lab, "gateway.health", health("active"))
            # the proxies' own OPTIONS answered 200 by Kamailio keep it active [S10]
            await event(lab, "sip.sent", lambda r: r.get("node") == "sip" and r["message"].startswith(
                f"OPTIONS sip:{SBC}:{SBC_TLS_PORT};transport=tls"))
            await asyncio.sleep(0)
            options = received(lab, "sip", "OPTIONS")
            assert options and str(options[0].contacts[0].uri).startswith(f"sip:{SBC}:{SBC_TLS_PORT}")  # [S2]
            assert lab.events.select("gateway.refused") == [] and lab.events.select("gateway.options_failed") == []
            assert admin_status(lab)["health"] == "active"
    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))


@pytest.mark.parametrize("certificate, refusal", [
    ("wrong-san", "tls.name_mismatch"),  # the certificate names another FQDN [S2][S10]
    ("untrusted-ca", "tls.unknown_ca"),  # not from a CA Microsoft trusts [S1]
])
def test_kamailio_with_a_wrong_certificate_is_refused_with_the_named_reason(
        lab_certs: Path, tmp_path: Path, certificate: str, refusal: str) -> None:
    async def main() -> None:
        async with kamailio_lab(lab_certs, tmp_path, free_port(SIPP_ADDRESS, "udp"), certificate=certificate) as (lab, _):
            refused = await event(lab, refusal, lambda r: r.get("node") in ("sip", "sip2", "sip3"))
            assert refused["side"] == "server"
            assert admin_status(lab)["health"] == "inactive"  # never an OPTIONS counted
            assert lab.events.select("gateway.health", state="active") == []
    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))


# --- calls both ways ------------------------------------------------------------------------------------

def test_a_teams_users_call_goes_through_kamailio_to_the_carrier(lab_certs: Path, tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port(SIPP_ADDRESS, "udp")
        async with sipp("uas.xml", tmp_path, port) as carrier, \
                kamailio_lab(lab_certs, tmp_path / "kamailio", port) as (lab, _):
            await event(lab, "gateway.health", health("active"))
            call = await lab.client("carol@contoso.com").place_call("2065550100")
            assert (call.status, call.state) == (200, "answered"), call.reason
            assert await call.hangup() == 200
            assert_completed(await carrier.finished())
            attempt = await event(lab, "route.attempt", lambda r: r["gateway"] == SBC)
            assert attempt["outcome"] == "answered"
    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))


async def carrier_calls_carol(lab: Lab, folder: Path, port: int) -> str:
    """SIPp places a call to carol's number through Kamailio; she answers, SIPp hangs up. Returns
    the proxy node that took the INVITE."""
    trunk = f"{lab.spec.nodes[SBC_NODE].external.address}:{SBC_CARRIER_PORT}"  # type: ignore[union-attr]
    async with sipp("uac.xml", folder, port, trunk, "-s", "2065550201") as carrier:
        incoming = await lab.client("carol@contoso.com").next_incoming_call(timeout=WAIT_S)
        assert_completed(await carrier.finished())
        await asyncio.wait_for(incoming.wait_ended(), WAIT_S)
    invites = {node: received(lab, node, "INVITE") for node in ("sip", "sip2", "sip3")}
    taken = [node for node, got in invites.items() if got]
    assert taken, "no proxy received Kamailio's INVITE"
    invite = invites[taken[-1]][-1]
    # [S2]: the SBC's FQDN in the first Contact and in the top Record-Route; the called number in
    # E.164 with its +, at the proxy's FQDN
    assert invite.contacts[0].uri.host == SBC and invite.record_routes[0].uri.host == SBC
    assert (invite.uri.user, invite.uri.host) == ("+12065550201", lab.spec.nodes[taken[-1]].host)
    return taken[-1]


def test_a_carrier_call_goes_through_kamailio_to_the_teams_user(lab_certs: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with kamailio_lab(lab_certs, tmp_path / "kamailio", free_port(SIPP_ADDRESS, "udp")) as (lab, _):
            await event(lab, "gateway.health", health("active"))
            assert await carrier_calls_carol(lab, tmp_path, free_port(SIPP_ADDRESS, "udp")) == "sip"
            assert lab.events.select("gateway.refused") == []
    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))


# --- failover and demotion -------------------------------------------------------------------------------

def test_with_sips_link_cut_kamailios_next_call_goes_to_sip2(lab_certs: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with kamailio_lab(lab_certs, tmp_path / "kamailio", free_port(SIPP_ADDRESS, "udp")) as (lab, _):
            await event(lab, "gateway.health", health("active"))
            lab.link("dc-noam").down()
            # carol's own connection to sip went with the link: she signs in elsewhere first
            await event(lab, "client.state", lambda r: r["user"] == "carol@contoso.com" and r["state"] == "online"
                        and r["registrar"] != "sip.pstnhub.microsoft.com", wait_s=WAIT_S)
            assert await carrier_calls_carol(lab, tmp_path, free_port(SIPP_ADDRESS, "udp")) == "sip2"  # [S1]
    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))


def test_kamailio_stops_sending_options_and_the_proxy_demotes_it_on_the_documented_timer(
        lab_certs: Path, tmp_path: Path) -> None:
    async def main() -> None:
        async with kamailio_lab(lab_certs, tmp_path, free_port(SIPP_ADDRESS, "udp")) as (lab, sbc):
            await event(lab, "gateway.health", health("active"))
            await sbc.rpc("dispatcher.ping_active", "0")
            demoted = await event(lab, "gateway.health", health("demoted"),
                                  wait_s=SETTINGS["demotion_window_s"] / TIME_SCALE + WAIT_S)
            # [S6]: no OPTIONS for three minutes (lab time; 3 s of wall time at --time-scale 60)
            # (the health fields are the proxy's own seconds, scaled like its timers)
            assert demoted["silent_s"] * TIME_SCALE == pytest.approx(SETTINGS["demotion_window_s"], abs=30)
            assert admin_status(lab)["health"] == "demoted"
            assert lab.events.select("gateway.options_failed") == []  # it still answers the proxies
    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))
