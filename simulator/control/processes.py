"""A live lab with every node in a process of its own (`drlab lab up --processes`, real network).

The control plane's process builds the lab as usual (its spec, tenant, address block, links and
event log) but starts no role: for each node it runs `drlab node ... --node NAME --control URL`
(simulator/control/node.py) as a subprocess, and `ProcessLab` stands in for the lab towards the
control plane, with the nodes' roles replaced by stand-ins that speak to their process.

- One websocket per node process (`GET /api/nodes/<name>/ws`) carries everything: the node's
  event records to the control plane, and commands (a call, a hangup, a restart, a sync, a link's
  state, stop) with their answers back. Records join the control plane's log in the order they
  arrive; they carry the lab's one time base (the node's clock counts from the control plane's
  origin, simulator/control/node.py), and the events.jsonl written at the stop orders them by
  time, then arrival (LiveLab.records).
- What `GET /api/state` shows of a node is what its events said: a client's state and registrar
  (`client.state`), a gateway's health (`gateway.health`, from the cloud's first report on), a
  call's progress (`call.*`). No read waits on a node.
- Links: the control plane's network owns their state and writes the `link.*` records; each change
  goes to every node process, whose own RealNetwork realizes it on the sockets that process opens
  (its relay for TCP, its shaping for UDP), so a cut in the control plane reaches every process
  whose traffic crosses the link.
- The Teams cloud (every teams_proxy) is one process: its proxies share registrations and
  gateway health (roles/teams_cloud.py).
- Node processes start in a session of their own (Ctrl-C at the terminal reaches the control
  plane only, which stops them in order) and stop by themselves when their websocket closes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simulator.control.node import SharedOriginClock, node_group
from simulator.lab.spec import ROLES, LabError

#: wall seconds a node process has to say hello and start its node(s)
NODE_START_S = 60.0
#: wall seconds a node process has to stop after its stop command, before it is killed
NODE_STOP_S = 15.0
#: run seconds the lab waits for its clients to sign in and its SBAs to sync (as Lab.start)
SETTLE_S = 120.0
LINK_EVENTS = {"link.down": "down", "link.up": "up", "link.blackhole": "blackhole"}


class NodeProcess:
    """One node process, as the control plane sees it: its subprocess, its websocket, its replies."""

    def __init__(self, name: str, names: list[str]) -> None:
        self.name = name
        self.names = names
        self.process: asyncio.subprocess.Process | None = None
        self.ws: web.WebSocketResponse | None = None
        self.pid: int | None = None  # as the node says (a container's may differ from the subprocess's)
        self.hello = asyncio.Event()  # its process connected and said who it is
        self.ready = asyncio.Event()
        self.error: str | None = None
        self.stopping = False  # told to stop: its websocket's end is expected
        self.listening: dict[str, list[dict[str, Any]]] = {}
        self.gateways: list[dict[str, Any]] = []
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)

    async def command(self, op: str, **fields: Any) -> Any:
        if self.ws is None or self.ws.closed:
            raise RuntimeError(f"node process {self.name} is not connected")
        command_id = next(self._ids)
        reply = self._replies[command_id] = asyncio.get_running_loop().create_future()
        await self.ws.send_str(json.dumps({"id": command_id, "op": op, **fields}))
        return await reply

    def answer(self, message: dict[str, Any]) -> None:
        reply = self._replies.pop(message["reply"], None)
        if reply is None or reply.done():
            return
        if "error" in message:
            reply.set_exception(RuntimeError(f"{self.name}: {message['error']}"))
        else:
            reply.set_result(message.get("result"))

    def gone(self) -> None:
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(RuntimeError(f"node process {self.name} went away"))
        self._replies.clear()
        self.hello.set()
        self.ready.set()


class RemoteRole:
    def __init__(self, lab: ProcessLab, spec: Any, process: NodeProcess) -> None:
        self.lab = lab
        self.spec = spec
        self.process = process
        self.calls: list[RemoteCall] = []  # a client's calls are filed once the node answers


class RemoteCall:
    """A call handle whose fields follow the node's `call.*` records."""

    def __init__(self, role: RemoteRole, call_id: str, state: str) -> None:
        self.role = role
        self.call_id = call_id
        self.state = state
        self.status: int | None = None
        self.reason: str | None = None
        self.answered_by: str | None = None
        self.via_sba: bool | None = None

    def follow(self, record: dict[str, Any]) -> None:
        event = record["event"]
        self.status = record.get("status", self.status)
        if record.get("path") in ("sba", "cloud"):
            self.via_sba = record["path"] == "sba"
        if event == "call.ringing" and self.state == "calling":
            self.state = "ringing"
        elif event == "call.answered":
            self.state, self.answered_by = "answered", record.get("answered_by")
        elif event == "call.ended":
            self.reason = record.get("reason") or self.reason
            self.state = "ended" if self.state == "answered" else "failed"

    async def hangup(self) -> int | None:
        return await self.role.process.command("hangup", call_id=self.call_id)


class RemoteClient(RemoteRole):
    def __init__(self, lab: ProcessLab, spec: Any, process: NodeProcess) -> None:
        super().__init__(lab, spec, process)
        self.upn = str(spec.options.get("user") or spec.options.get("upn")).lower()
        self.state = "offline"
        self.registrar: str | None = None

    async def place_call(self, number: str) -> RemoteCall:
        answer = await self.process.command("call", user=self.upn, to=number)
        return self.lab.file_call(RemoteCall(self, answer["call_id"], answer["state"]))

    async def restart(self) -> None:
        await self.process.command("restart", user=self.upn)


class RemotePstn(RemoteRole):
    async def start_call(self, caller: str, callee: str) -> RemoteCall:
        answer = await self.process.command("pstn_call", node=self.spec.name, **{"from": caller, "to": callee})
        return self.lab.file_call(RemoteCall(self, answer["call_id"], answer["state"]))


class RemoteSba(RemoteRole):
    async def sync_now(self) -> bool:
        return bool(await self.process.command("sync", sba=self.spec.name))


class ProcessLab:
    """The lab towards the control plane when its nodes run in processes of their own."""

    def __init__(self, lab: Any, *, lab_file: str, tenant_file: str, certs_dir: str) -> None:
        if lab.network.kind != "real":
            raise LabError("one process per node needs the real network (--network real)")
        self.lab = lab
        self.lab_file, self.tenant_file, self.certs_dir = lab_file, tenant_file, certs_dir
        self.url: str | None = None  # the control URL, known once the API listens (LiveLab sets it)
        self.origin_unix = time.time()
        lab.events.clock = SharedOriginClock(self.origin_unix, float(getattr(lab.events.clock, "scale", 1.0)))
        self.processes: dict[str, NodeProcess] = {}
        self.nodes: dict[str, RemoteRole] = {}
        for name in lab.start_order():
            if any(name in p.names for p in self.processes.values()):
                continue
            names = node_group(lab, name)
            self.processes[name] = NodeProcess(name, names)
        kinds = {"teams_client": RemoteClient, "pstn": RemotePstn, "sba": RemoteSba}
        for process in self.processes.values():
            for name in process.names:
                spec = lab.node_specs[name]
                self.nodes[name] = kinds.get(spec.role, RemoteRole)(self, spec, process)
        self.started: list[str] = []
        self._health: dict[str, tuple[str, str | None]] = {}  # gateway -> (state, reason)
        self._calls: dict[tuple[str, str], RemoteCall] = {}
        self._arrived = asyncio.Event()
        lab.events.subscribe(self._follow)

    # --- what the control plane reads (Lab's names) ------------------------------------------------
    @property
    def spec(self) -> Any:
        return self.lab.spec

    @property
    def node_specs(self) -> dict[str, Any]:
        return self.lab.node_specs

    @property
    def events(self) -> Any:
        return self.lab.events

    @property
    def network(self) -> Any:
        return self.lab.network

    @property
    def tenant(self) -> Any:
        return self.lab.tenant

    def link(self, name: str) -> Any:
        return self.lab.link(name)

    def client(self, upn: str) -> RemoteClient:
        for role in self.nodes.values():
            if isinstance(role, RemoteClient) and role.upn == upn.lower():
                return role
        users = [r.upn for r in self.nodes.values() if isinstance(r, RemoteClient)]
        raise KeyError(f"no client for user {upn!r}; clients: {', '.join(users) or 'none'}")

    def gateway_health(self) -> list[dict[str, Any]]:
        """Each gateway's health as the cloud last reported it."""
        cloud = next((p for p in self.processes.values() if p.gateways), None)
        names = [g["fqdn"] for g in cloud.gateways] if cloud else []
        return [{"fqdn": fqdn, "health": self._health.get(fqdn, ("active", None))[0],
                 "reason": self._health.get(fqdn, ("active", None))[1]}
                for fqdn in names + [g for g in self._health if g not in names]]

    def listening(self, name: str) -> list[dict[str, Any]]:
        return self.nodes[name].process.listening.get(name, [])

    def pids(self) -> dict[str, int | None]:
        """Node process name -> the pid of its subprocess."""
        return {name: p.process.pid if p.process else None for name, p in self.processes.items()}

    # --- the records, followed -------------------------------------------------------------------
    def _follow(self, record: dict[str, Any]) -> None:
        self._arrived.set()
        event = record["event"]
        if event == "client.state":
            role = self.nodes.get(str(record.get("node")))
            if isinstance(role, RemoteClient):
                role.state, role.registrar = str(record.get("state")), record.get("registrar")
        elif event == "gateway.health":
            self._health[str(record.get("gateway"))] = (str(record.get("state")), record.get("reason"))
        elif event.startswith("call."):
            call = self._calls.get((str(record.get("node")), str(record.get("call_id"))))
            if call is not None:
                call.follow(record)
        elif event in LINK_EVENTS or event == "link.impaired":
            self._broadcast(record)

    def _broadcast(self, record: dict[str, Any]) -> None:
        """A link changed in the control plane: every node process applies it to its sockets."""
        if record["event"] == "link.impaired":
            op, fields = "impair", {"name": record["link"], "delays": {k: record[k] for k in ("latency", "jitter", "loss")}}
        else:
            op, fields = "link", {"name": record["link"], "state": LINK_EVENTS[record["event"]]}
        for process in self.processes.values():
            if process.ws is not None and not process.ws.closed:
                asyncio.ensure_future(_logged(self, process.command(op, **fields), process.name))

    def file_call(self, call: RemoteCall) -> RemoteCall:
        """Follow `call`'s records from now on, and those the node wrote before its answer came back."""
        self._calls[(call.role.spec.name, call.call_id)] = call
        for record in self.lab.events.records:
            if record["event"].startswith("call.") and record.get("node") == call.role.spec.name \
                    and record.get("call_id") == call.call_id:
                call.follow(record)
        return call

    # --- the node processes' websockets ----------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]]:
        return [("GET", "/api/lab", self._get_lab), ("GET", "/api/nodes/{name}/ws", self._node_socket)]

    async def _get_lab(self, request: web.Request) -> web.Response:
        return web.json_response(self.lab_info())

    def lab_info(self) -> dict[str, Any]:
        """How the lab runs, for its node processes (and a run attached to it)."""
        return {
            "lab": self.spec.name, "block": str(self.network.block) if self.network.block else None,
            "routed": self.network.routed, "seed": self.lab.context.seed,
            "time_scale": self.events.clock.scale, "certs": self.certs_dir, "origin_unix": self.origin_unix,
            "links": {link.name: link.state for link in self.network.links.values()}}

    async def _node_socket(self, request: web.Request) -> web.StreamResponse:
        process = self.processes.get(request.match_info["name"])
        if process is None:
            raise web.HTTPNotFound()
        # no heartbeat: a busy machine can hold a node's answer past any fixed bound, and a process
        # that dies closes its socket anyway
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        process.ws = ws
        try:
            async for message in ws:
                self._receive(process, json.loads(message.data))
        finally:  # the process stopped (or died): its nodes show `stopped`, its commands fail
            process.gone()
            if not process.stopping and any(name in self.started for name in process.names):
                self.events.logger().info("control.failed", command="node",
                                          error=f"node process {process.name} went away")
            self.started = [name for name in self.started if name not in process.names]
        return ws

    def _receive(self, process: NodeProcess, message: dict[str, Any]) -> None:
        if "records" in message:
            for record in message["records"]:
                self.lab.events.append(record)
        elif "reply" in message:
            process.answer(message)
        elif "hello" in message:
            process.pid = message["pid"]
            process.hello.set()
        elif "started" in message:
            process.listening[message["started"]] = message["listening"]
            self.started.append(message["started"])
        elif "ready" in message:
            process.gateways = message["gateways"]
            process.ready.set()
        elif "failed" in message:
            process.error = message["failed"]
            process.ready.set()

    # --- starting and stopping ------------------------------------------------------------------
    async def start(self) -> list[str]:
        """Start the node processes, a role at a time (proxies, carriers, SBCs, SBAs, clients), then
        wait until the clients are signed in and the SBAs synced; returns what is still waiting."""
        if self.url is None:
            raise RuntimeError("the control URL must be known before the node processes start")
        log = self.events.logger()
        by_rank: dict[int, list[NodeProcess]] = {}
        for process in self.processes.values():
            by_rank.setdefault(ROLES[self.node_specs[process.name].role], []).append(process)
        for rank in sorted(by_rank):
            group = by_rank[rank]
            for process in group:
                await self._launch(process)
            for process in group:
                error = await self._wait_ready(process)
                if error is not None:
                    log.info("lab.start_failed", node=process.name, error=error)
                    await self.stop()
                    raise LabError(f"node {process.name} failed to start: {error}")
        log.info("lab.started", lab=self.spec.name, order=list(self.started))
        return await self._settle()

    async def _launch(self, process: NodeProcess) -> None:
        """Run the node process (`drlab node`), which connects back to the control URL."""
        process.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simulator.cli", "node", "--lab", self.lab_file, "--tenant", self.tenant_file,
            "--node", process.name, "--control", self.url,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, start_new_session=True)

    async def _wait_ready(self, process: NodeProcess) -> str | None:
        """Wait for the process's hello, tell it to start, wait until its nodes are ready; the error, if any."""
        deadline = asyncio.get_running_loop().time() + NODE_START_S
        if not await self._until(process, process.hello, deadline):
            return self._not_ready(process)
        if process.ws is not None and not process.ws.closed:
            await process.ws.send_str(json.dumps({"op": "start"}))
        if not await self._until(process, process.ready, deadline):
            return self._not_ready(process)
        if process.error is not None:
            return process.error
        if process.ws is None or process.ws.closed:
            return self._not_ready(process)
        return None

    @staticmethod
    async def _until(process: NodeProcess, event: asyncio.Event, deadline: float) -> bool:
        """Wait for `event` until the deadline or the end of the local process; True if it came."""
        waits = [asyncio.ensure_future(event.wait())]
        if process.process is not None:
            waits.append(asyncio.ensure_future(process.process.wait()))
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        return event.is_set()

    @staticmethod
    def _not_ready(process: NodeProcess) -> str:
        if process.error is not None:
            return process.error
        code = process.process.returncode if process.process is not None else None
        if code is not None:
            return f"its process exited ({code})"
        if process.hello.is_set():
            return "its process went away" if process.ws is None or process.ws.closed else \
                f"not ready within {NODE_START_S:g} s"
        return f"it did not connect within {NODE_START_S:g} s"

    async def _settle(self) -> list[str]:
        began = self.events.clock()
        log = self.events.logger()
        while True:
            synced = {r.get("node") for r in self.events.records if r["event"] == "sba.sync" and r.get("ok")}
            waiting = [f"client {r.spec.name}: {r.state}" for r in self.nodes.values()
                       if isinstance(r, RemoteClient) and r.state != "online"]
            waiting += [f"sba {name}: no successful sync yet" for name, r in self.nodes.items()
                        if isinstance(r, RemoteSba) and name not in synced]
            if not waiting:
                log.info("lab.settled", lab=self.spec.name, after_s=round(self.events.clock() - began, 6))
                return []
            left = SETTLE_S - (self.events.clock() - began)
            if left <= 0:
                log.info("lab.unsettled", lab=self.spec.name, waiting=waiting)
                return waiting
            self._arrived.clear()  # until the next record, or the end of the wait
            try:
                await asyncio.wait_for(self._arrived.wait(), self.events.clock.wall(left))
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop every node process (its nodes stop, its last records come in), then the network."""
        running = [p for p in self.processes.values() if p.process is not None or p.hello.is_set()]
        await asyncio.gather(*(self._stop_process(p) for p in running))
        self.started.clear()
        await self.network.close()
        self.events.logger().info("lab.stopped", lab=self.spec.name)

    async def _stop_process(self, process: NodeProcess) -> None:
        process.stopping = True
        try:
            await asyncio.wait_for(process.command("stop"), NODE_STOP_S)
        except (RuntimeError, TimeoutError, ConnectionError) as err:
            self.events.logger().info("lab.stop_failed", node=process.name, error=f"{type(err).__name__}: {err}")
        if process.process is None:  # not a child of ours (a container): it ends with its socket
            return
        try:
            await asyncio.wait_for(process.process.wait(), NODE_STOP_S)
        except TimeoutError:
            process.process.kill()
            await process.process.wait()


async def _logged(lab: ProcessLab, command: Awaitable[Any], node: str) -> None:
    try:
        await command
    except RuntimeError as err:
        lab.events.logger().info("control.failed", command="link", error=f"{node}: {err}")
