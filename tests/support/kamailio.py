"""Kamailio as the lab's SBC: examples/sbc/kamailio/ filled in for one lab, run as a process.

    async with KamailioSbc(lab, tmp_path, carrier=("127.0.0.1", 5080)) as sbc:   # started
        await sbc.rpc("dispatcher.ping_active", "0")                             # kamcmd
    sbc.log()                                                                    # its stderr

The templates' @NAME@ placeholders are filled from the lab: the SBC's external address and port,
its certificate from the lab PKI (good, or the variant its host names), the proxies' addresses,
and timers divided by the lab's time scale, so a minute of OPTIONS is a second of wall time at
--time-scale 60. A placeholder left unfilled is an error, not a silent blank.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.contoso import ROOT

KAMAILIO = shutil.which("kamailio")
KAMCMD = shutil.which("kamcmd")
#: Debian's kamailio-tls-modules (the module path kamailio was built with)
TLS_MODULE = next(iter([*Path("/usr/lib").glob("*/kamailio/modules/tls.so"),
                        *Path("/usr/lib").glob("kamailio/modules/tls.so")]), None)
EXAMPLE = ROOT / "examples" / "sbc" / "kamailio"
TEMPLATES = ("kamailio.cfg", "tls.cfg", "dispatcher.list")
PLACEHOLDER = re.compile(r"@([A-Z0-9_]+)@")
PROXIES = ("sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com")
SBC_OPTIONS_INTERVAL_S = 60  # Kamailio's OPTIONS to each proxy: once a minute, as [S6] expects


def render(text: str, values: dict[str, Any]) -> str:
    """The template with every @NAME@ replaced; KeyError naming the first one `values` lacks."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for the placeholder @{name}@")
        return str(values[name])
    return PLACEHOLDER.sub(value, text)


class KamailioSbc:
    """Kamailio running examples/sbc/kamailio/ as the lab's external SBC node `node`."""

    def __init__(self, lab: Any, folder: Path, *, carrier: tuple[str, int], node: str = "sbc-sea",
                 carrier_port: int = 5060) -> None:
        decl = lab.spec.nodes[node]
        assert decl.external is not None, f"node {node} is not external"
        self.lab, self.folder, self.fqdn = lab, folder, decl.host
        self.address, self.port = decl.external.address, decl.external.port
        self.carrier_port = carrier_port
        scale = lab.clock.scale
        identity = lab.context.identities[self.fqdn.lower()]
        self.values = {
            "RUN_DIR": folder, "SBC_FQDN": self.fqdn, "SBC_ADDRESS": self.address, "SBC_TLS_PORT": self.port,
            "SBC_CARRIER_PORT": carrier_port, "CARRIER_ADDRESS": carrier[0], "CARRIER_PORT": carrier[1],
            "TEAMS_PORT": lab.context.topology.proxy_sbc_port,
            "SIP_ADDRESS": lab.network.resolve(PROXIES[0]), "SIP2_ADDRESS": lab.network.resolve(PROXIES[1]),
            "SIP3_ADDRESS": lab.network.resolve(PROXIES[2]),
            "OPTIONS_INTERVAL_S": max(1, round(SBC_OPTIONS_INTERVAL_S / scale)),
            "CONNECT_TIMEOUT_S": 2, "FAILOVER_TIMER_MS": 2000,
            "TLS_CFG": folder / "tls.cfg", "DISPATCHER_LIST": folder / "dispatcher.list",
            "SBC_CERTIFICATE": identity.cert_path.resolve(), "SBC_KEY": identity.key_path.resolve(),
            "CA_LIST": Path(lab.context.trust).resolve(),
        }
        self.process: asyncio.subprocess.Process | None = None
        self._stderr = folder / "kamailio.log"

    def write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in TEMPLATES:
            (self.folder / name).write_text(render((EXAMPLE / name).read_text(), self.values))

    async def __aenter__(self) -> KamailioSbc:
        assert KAMAILIO is not None
        self.write()
        cfg = str(self.folder / "kamailio.cfg")
        check = await asyncio.create_subprocess_exec(KAMAILIO, "-c", "-f", cfg, stdout=asyncio.subprocess.PIPE,
                                                     stderr=asyncio.subprocess.STDOUT)
        out, _ = await check.communicate()
        assert check.returncode == 0, f"kamailio -c refused the rendered configuration:\n{out.decode()}"
        with self._stderr.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                KAMAILIO, "-f", cfg, "-DD", "-E", "-m", "64", "-M", "8", "-P", str(self.folder / "kamailio.pid"),
                stdout=log, stderr=log)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def rpc(self, *command: str) -> str:
        """One kamcmd command over the control socket kamailio.cfg opens in RUN_DIR."""
        assert KAMCMD is not None
        proc = await asyncio.create_subprocess_exec(KAMCMD, "-s", f"unix:{self.folder}/kamailio_ctl", *command,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, f"kamcmd {' '.join(command)}: {out.decode()}"
        return out.decode()

    def log(self) -> str:
        return self._stderr.read_text(errors="replace") if self._stderr.exists() else ""
