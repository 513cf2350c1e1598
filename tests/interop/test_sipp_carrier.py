"""An external carrier: the SBC's PSTN trunk pointed at SIPp, a SIP peer drlab does not run.

Each test brings up examples/labs/contoso-external-carrier.yaml on the real network with its
external node `pstn-sea` moved to a free UDP or TCP port on 127.0.0.1, runs SIPp there with a scenario
of ours (tests/interop/sipp/), one call (`-m 1`) under a global timeout, and waits for SIPp to
exit: its exit status and its statistics file say whether the call completed. Every message the
SBC sent SIPp must name the lab's hosts by address only: SIPp cannot resolve the lab's names.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulator.lab import Lab
from simulator.lab.spec import ExternalPeer, load_lab_spec
from tests.support.contoso import ROOT, contoso

pytestmark = [
    pytest.mark.real,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None,
                       reason="sipp is not on PATH (Debian: apt-get install sip-tester)"),
]

LAB = ROOT / "examples" / "labs" / "contoso-external-carrier.yaml"
SCENARIOS = Path(__file__).parent / "sipp"
CARRIER = "pstn-sea"
SBC, SBC_PSTN_PORT = "sbc-sea.contoso.com", 5060  # the SBC whose trunk the carrier is, and its pstn_port
SIPP_ADDRESS = "127.0.0.1"  # outside every block the real network picks (127.a.b.0/24, a >= 1)
SIPP_TIMEOUT_S = 30  # SIPp's own global timeout: it fails (-timeout_error) rather than hang
TEST_TIMEOUT_S = 90


#: the trunk's transport -> SIPp's transport mode (one socket; UDP, or TCP)
SIPP_MODES = {"udp": "u1", "tcp": "t1"}
SOCKET_TYPES = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM}


def free_port(address: str, transport: str) -> int:
    with socket.socket(socket.AF_INET, SOCKET_TYPES[transport]) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def lab_with_carrier_at(certs: Path, port: int, transport: str) -> Lab:
    """The example lab, its external carrier at SIPP_ADDRESS:`port` over `transport`."""
    spec = load_lab_spec(LAB)
    peer = ExternalPeer(SIPP_ADDRESS, port, transport)
    spec.nodes[CARRIER] = dataclasses.replace(spec.nodes[CARRIER], external=peer)
    return Lab.build(spec, tenant=contoso(), network="real", seed=1, certs_dir=certs)


@dataclasses.dataclass
class SippResult:
    status: int
    successful: int
    failed: int
    log: str  # SIPp's messages and errors, for a failing assertion


class Sipp:
    """One SIPp process running one scenario file for one call."""

    def __init__(self, process: asyncio.subprocess.Process, files: Path) -> None:
        self.process, self.files = process, files

    async def finished(self) -> SippResult:
        """Wait for SIPp to exit (its -timeout bounds the wait) and read its statistics."""
        _, stderr = await self.process.communicate()
        assert self.process.returncode is not None
        stats = self.files / "stats.csv"  # none when SIPp refused its arguments or scenario
        rows = list(csv.DictReader(stats.read_text().splitlines(), delimiter=";")) if stats.exists() else []
        last = rows[-1] if rows else {}
        log = "\n".join(f"{name}:\n{(self.files / name).read_text()}" for name in ("messages.log", "errors.log")
                        if (self.files / name).exists())
        return SippResult(self.process.returncode, int(last.get("SuccessfulCall(C)", 0)),
                          int(last.get("FailedCall(C)", 0)), f"{log}\nstderr:\n{stderr.decode(errors='replace')}")


@contextlib.asynccontextmanager
async def sipp(scenario: str, files: Path, port: int, *args: str, transport: str = "udp") -> AsyncIterator[Sipp]:
    """SIPp at SIPP_ADDRESS:`port` running `scenario` once; killed on the way out if still running."""
    process = await asyncio.create_subprocess_exec(
        "sipp", *args, "-sf", str(SCENARIOS / scenario), "-i", SIPP_ADDRESS, "-p", str(port),
        "-t", SIPP_MODES[transport],
        "-m", "1", "-timeout", f"{SIPP_TIMEOUT_S}s", "-timeout_error", "-nostdin",
        "-trace_stat", "-stf", str(files / "stats.csv"),
        "-trace_msg", "-message_file", str(files / "messages.log"),
        "-trace_err", "-error_file", str(files / "errors.log"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        yield Sipp(process, files)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def carrier_lab(certs: Path, port: int, transport: str = "udp") -> AsyncIterator[Lab]:
    """The example lab with its carrier at SIPP_ADDRESS:`port`, started and settled; stopped on the way out."""
    lab = lab_with_carrier_at(certs, port, transport)
    try:
        assert await lab.start(settle_timeout_s=20) == []
        yield lab
    finally:
        await lab.stop()


def sbc_trunk(lab: Lab) -> str:
    """Where SIPp sends as the carrier: the SBC's address and PSTN port."""
    return f"{lab.network.resolve(SBC)}:{SBC_PSTN_PORT}"


def sent_to_carrier(lab: Lab) -> list[str]:
    """The SIP messages the SBC sent SIPp."""
    return [r["message"] for r in lab.events.records
            if r["event"] == "sip.sent" and r.get("node") == "sbc-sea" and r["dst"].startswith(f"{SIPP_ADDRESS}:")]


def leaks(lab: Lab) -> list[tuple[str, list[str]]]:
    """(first line, lab names in it) of each message the SBC sent SIPp that names a lab host."""
    names = [name.lower() for host in lab.spec.hosts.values() for name in (host.name, *host.aliases)]
    found = [(message.split("\r\n", 1)[0], [n for n in names if n in message.lower()]) for message in sent_to_carrier(lab)]
    return [(line, named) for line, named in found if named]


def assert_completed(result: SippResult) -> None:
    assert (result.status, result.successful, result.failed) == (0, 1, 0), result.log


@pytest.mark.parametrize("transport", list(SIPP_MODES))
def test_sipp_as_the_carrier_answers_a_teams_users_call_to_the_pstn(lab_certs: Path, tmp_path: Path,
                                                                     transport: str) -> None:
    async def main() -> None:
        port = free_port(SIPP_ADDRESS, transport)
        async with sipp("uas.xml", tmp_path, port, transport=transport) as carrier, \
                carrier_lab(lab_certs, port, transport) as lab:
            call = await lab.client("carol@contoso.com").place_call("2065550100")
            assert (call.status, call.state) == (200, "answered"), call.reason
            assert await call.hangup() == 200
            assert_completed(await carrier.finished())
        messages = sent_to_carrier(lab)
        assert [m.split(" ", 1)[0] for m in messages if not m.startswith("SIP/2.0")] == ["INVITE", "ACK", "BYE"]
        assert leaks(lab) == []
    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))


@pytest.mark.parametrize("transport", list(SIPP_MODES))
def test_sipp_as_the_carrier_calls_a_teams_user_who_answers(lab_certs: Path, tmp_path: Path, transport: str) -> None:
    async def main() -> None:
        port = free_port(SIPP_ADDRESS, transport)
        async with carrier_lab(lab_certs, port, transport) as lab, \
                sipp("uac.xml", tmp_path, port, sbc_trunk(lab), "-s", "2065550201", transport=transport) as carrier:
            incoming = await lab.client("carol@contoso.com").next_incoming_call(timeout=SIPP_TIMEOUT_S)
            assert_completed(await carrier.finished())
            await asyncio.wait_for(incoming.wait_ended(), 5)
            assert incoming.caller.startswith("sip:+14255550199@") and incoming.state == "ended"
        assert {m.split("\r\n", 1)[0] for m in sent_to_carrier(lab)} >= {"SIP/2.0 180 Ringing", "SIP/2.0 200 OK"}
        assert leaks(lab) == []
    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))


def test_the_sbc_answers_the_carriers_options_with_a_contact_it_can_use(lab_certs: Path, tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port(SIPP_ADDRESS, "udp")
        async with carrier_lab(lab_certs, port) as lab, sipp("options.xml", tmp_path, port, sbc_trunk(lab)) as carrier:
            assert_completed(await carrier.finished())
        assert [m.split("\r\n", 1)[0] for m in sent_to_carrier(lab)] == ["SIP/2.0 200 OK"]
        assert leaks(lab) == []
    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))
