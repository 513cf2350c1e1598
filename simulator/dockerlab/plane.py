"""The control plane of the Docker lab (`drlab lab up LAB --tenant TENANT --docker`), on the host.

It is the control plane of `drlab lab up --processes` (simulator/control/processes.py) with two
differences:

- **Nodes run in containers.** Instead of spawning `drlab node` itself, it writes the compose
  project (compose.py: `runs/<lab>/compose.yaml` and `router.nft`), creates it
  (`docker-compose up --no-start`: the site networks exist, so their gateways have their
  addresses), listens for the nodes on every site's gateway (the node API only: `GET /api/lab`
  and the nodes' websockets; the full control API stays on the host's loopback), then starts
  the containers (`up -d`). Each container's `drlab node` dials its site's gateway, says hello,
  and is told to start a role at a time, as node processes are. The lab's network is `routed`:
  every node binds the address the lab file gives its host.
- **Links are the router's.** A link's state or loss change (the API, `drlab ctl`, a scenario's
  `cut`/`restore` through `--attach`) becomes nftables rules in the router container's network
  namespace (cuts.py, through `nsenter`, else `docker exec`) instead of a message to every node
  process: the kernel drops or resets the packets. Latency and jitter cannot be realized (no
  netem): a `docker.unsupported` record says so, once per link at the start and at each impair.

With `capture`, every node writes its TLS secrets (SSLKEYLOGFILE) into `<out>/keys/`, and
`tshark` captures on every site's bridge from the moment the containers are up (before any node
starts) into `<out>/capture.pcap`; at the stop the capture ends and the key logs are merged into
`<out>/keys.log`, so `wireshark -o tls.keylog_file:keys.log capture.pcap` decrypts the mutual-TLS
SIP between the containers (`captured()` names both files for the lab's outputs).

At the stop the nodes stop as node processes do (their last records come in over their
websockets), then the capture ends and every container and network of the lab is removed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from simulator.control.processes import LINK_EVENTS, NodeProcess, ProcessLab
from simulator.dockerlab import compose, cuts, engine
from simulator.dockerlab.capture import BridgeCapture, CaptureError, merge_key_logs
from simulator.lab.spec import LabError

#: wall seconds `docker-compose` has to create or start the lab's containers
COMPOSE_S = 180.0


class DockerLab(ProcessLab):
    """The lab towards the control plane when its nodes run in containers of the lab's compose project."""

    def __init__(self, lab: Any, *, lab_file: str, tenant_file: str, certs_dir: str, out: Path,
                 capture: bool = False) -> None:
        if not getattr(lab.network, "routed", False):
            raise LabError("the Docker lab needs a routed real network (Lab.load(..., routed=True))")
        super().__init__(lab, lab_file=lab_file, tenant_file=tenant_file, certs_dir=certs_dir)
        self.plan = compose.plan(lab.spec)
        self.out = out
        self.keys = out / "keys" if capture else None
        self.compose_file: Path | None = None
        self._node_api: web.AppRunner | None = None
        self._capture: BridgeCapture | None = None

    def lab_info(self) -> dict[str, Any]:
        """GET /api/lab, with where a run attached on this machine can capture (capture.py)."""
        return {**super().lab_info(), "docker": {
            "bridges": [site.bridge for site in self.plan.sites.values()],
            "keys": str(self.keys.resolve()) if self.keys is not None else None}}

    def pids(self) -> dict[str, int | None]:
        """Container name -> the pid its node process reported (inside the container)."""
        return {name: p.pid for name, p in self.processes.items()}

    # --- starting and stopping ---------------------------------------------------------------------
    async def start(self) -> list[str]:
        if self.url is None:
            raise RuntimeError("the control URL must be known before the containers start")
        port = urlparse(self.url).port or compose.CONTROL_PORT
        if self.keys is not None:
            self.keys.mkdir(parents=True, exist_ok=True)
        files = compose.LabFiles(Path(self.lab_file), Path(self.tenant_file), Path(self.certs_dir),
                                 self.out / "router.nft", self.keys)
        self.compose_file = compose.write(self.plan, files, self.out, control_port=port)
        project = ["docker-compose", "-p", self.plan.project, "-f", str(self.compose_file)]
        try:
            await engine.run_async([*project, "up", "--no-start"], COMPOSE_S)
            await self._serve_nodes(port)
            await engine.run_async([*project, "up", "-d"], COMPOSE_S)
            if self.keys is not None:
                await self._start_capture()
        except engine.DockerLabFailure as err:
            await self._remove()
            raise LabError(f"the Docker lab could not start: {err}") from None
        log = self.events.logger()
        log.info("docker.up", project=self.plan.project, containers=len(self.plan.containers) + 1,
                 compose=str(self.compose_file))
        for link in self.spec.links.values():
            if link.latency or link.jitter:
                log.info("docker.unsupported", link=link.name, latency=link.latency, jitter=link.jitter)
        return await super().start()

    async def _serve_nodes(self, port: int) -> None:
        """Listen for the nodes on every site's gateway address (the node API only)."""
        app = web.Application()
        for method, path, handler in self.routes():
            app.router.add_route(method, path, handler)
        self._node_api = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._node_api.setup()
        for site in self.plan.sites.values():
            try:
                await web.TCPSite(self._node_api, str(site.gateway), port).start()
            except OSError as err:
                raise engine.DockerLabFailure(f"cannot listen for the nodes on {site.gateway}:{port} "
                                              f"(site {site.site}'s gateway): {err.strerror or err}") from None

    async def _launch(self, process: NodeProcess) -> None:
        """Nothing to run: `up -d` started every container, whose node dials in by itself."""

    async def _wait_ready(self, process: NodeProcess) -> str | None:
        """As for a node process; a container that fails says why in its last lines of output."""
        error = await super()._wait_ready(process)
        if error is None:
            return None
        container = f"{self.plan.project}-{process.name}"
        logs = await asyncio.to_thread(engine.docker, "logs", "--tail", "5", container, check=False)
        said = " | ".join((logs.stdout + logs.stderr).strip().splitlines()[-5:])
        return f"{error} (container {container}: {said or 'no output'})"

    async def _start_capture(self) -> None:
        try:
            self._capture = await BridgeCapture.start([site.bridge for site in self.plan.sites.values()],
                                                      self.out / "capture.pcap")
        except CaptureError as err:
            raise engine.DockerLabFailure(f"--capture: {err}") from None

    def captured(self) -> dict[str, Path]:
        """The lab's real capture and TLS key log (output name -> file), once the lab stopped."""
        files = {"capture.pcap": self.out / "capture.pcap", "keys.log": self.out / "keys.log"}
        return {name: path for name, path in files.items() if self.keys is not None and path.is_file()}

    async def _stop_capture(self) -> None:
        if self._capture is not None:
            await self._capture.stop()

    async def stop(self) -> None:
        await super().stop()
        await self._stop_capture()
        if self.keys is not None:
            merge_key_logs(self.keys, self.out / "keys.log")
        await self._remove()

    async def _remove(self) -> None:
        await self._stop_capture()
        if self._node_api is not None:
            await self._node_api.cleanup()
            self._node_api = None
        try:
            containers, networks = await asyncio.to_thread(engine.down, self.plan.lab)
        except engine.DockerLabFailure as err:
            self.events.logger().info("control.failed", command="stop", error=str(err))
            return
        self.events.logger().info("docker.down", project=self.plan.project, containers=containers, networks=networks)

    # --- links: the router's rules ---------------------------------------------------------------
    def _broadcast(self, record: dict[str, Any]) -> None:
        """A link changed in the control plane: its state and loss become the router's rules."""
        link = self.network.link(record["link"])
        log = self.events.logger()
        if record["event"] == "link.impaired" and (link.latency or link.jitter):
            log.info("docker.unsupported", link=link.name, latency=link.latency, jitter=link.jitter)
        if record["event"] not in LINK_EVENTS and record["event"] != "link.impaired":
            return
        loss = round(link.loss * 100)
        transaction = cuts.rules(link.name, self.plan.link_pairs.get(link.name, []), state=link.state,
                                 loss_percent=loss)
        began = time.monotonic()
        try:  # in line, a few hundredths of a second: the command returns once the kernel acts
            via = cuts.apply(self.plan.router, transaction)
        except cuts.CutError as err:
            log.info("control.failed", command="link", link=link.name, state=link.state, error=str(err))
            return
        log.info("docker.link", link=link.name, state=link.state, loss_percent=loss,
                 rules=transaction.count("add rule"), via=via, elapsed_s=round(time.monotonic() - began, 3))
