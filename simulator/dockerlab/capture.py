"""A real capture on the Docker lab's bridges: `tshark -i <bridge> ... -F pcap -w FILE`, and the
nodes' TLS key logs merged into one file Wireshark reads (`-o tls.keylog_file:keys.log`).

Used by the lab's control plane (`--capture`: the whole life of the lab) and by a run attached
to it (`drlab run --attach`: the run's own capture.pcap, from its start to its end).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

#: wall seconds tshark has to start capturing, and to write its last packets once told to stop
TSHARK_S = 30.0


class CaptureError(Exception):
    """tshark is missing or did not start; the message says which."""


class BridgeCapture:
    def __init__(self, process: asyncio.subprocess.Process, path: Path) -> None:
        self.process = process
        self.path = path

    @classmethod
    async def start(cls, bridges: list[str], path: Path) -> BridgeCapture:
        """Start tshark on every bridge into `path`; returns once it says it is capturing."""
        interfaces = [arg for bridge in bridges for arg in ("-i", bridge)]
        try:
            process = await asyncio.create_subprocess_exec(
                "tshark", *interfaces, "-F", "pcap", "-w", str(path),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError:
            raise CaptureError("no tshark on this machine (apt-get install tshark)") from None
        assert process.stderr is not None
        said: list[str] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TSHARK_S):
                while not said or not said[-1].startswith("Capturing on"):
                    line = await process.stderr.readline()
                    if not line:
                        break
                    said.append(line.decode(errors="replace").strip())
        if not said or not said[-1].startswith("Capturing on"):
            if process.returncode is None:
                process.kill()
            await process.wait()
            raise CaptureError("tshark did not start capturing: " + " ".join(said[-3:]))
        asyncio.ensure_future(process.stderr.read())  # drained, so its pipe never fills
        return cls(process, path)

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        self.process.terminate()  # tshark writes what it holds, then exits
        try:
            await asyncio.wait_for(self.process.wait(), TSHARK_S)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def merge_key_logs(folder: Path, into: Path) -> Path:
    """Every node's key log (`<folder>/*.keys`, NSS key log format) as one file."""
    logs = sorted(folder.glob("*.keys")) if folder.is_dir() else []
    into.write_text("".join(log.read_text(encoding="utf-8") for log in logs), encoding="utf-8")
    return into
