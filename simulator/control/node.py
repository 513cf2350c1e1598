"""`drlab node --lab LAB --tenant TENANT --node NAME --control URL`: one node of a live lab in a
process of its own (real network only), driven by the lab's control plane at URL.

The node asks the control plane how the lab runs (`GET /api/lab`: the address block, or `routed`
for the lab file's own addresses in the Docker lab, the seed, time scale, certificates and the
origin of its clock), builds the lab from its own copies of the lab and tenant files (and the
certificates at `--certs` when its view of the file system differs from the control plane's, as
in a container), opens a websocket to `URL/api/nodes/<NAME>/ws`, says hello and starts its node
when the control plane says `start` (the plane starts the lab's nodes a role at a time). Over
that one socket it sends every event record its node writes, and it takes the control plane's
commands (a link's state, a call, a hangup, a restart, a sync, stop), answering each one. It
stops when told to, or when the socket closes (the control plane is gone): a node never outlives
its lab.

The Teams cloud is one service whose edge proxies share their state (registrations, gateway
health), so `--node` naming a teams_proxy runs every teams_proxy of the lab in the process.

Messages (JSON, one a websocket message):
    node -> plane   {"hello": NAME, "pid": n, "nodes": [names]}      first; then it waits for "start"
                    {"started": name, "listening": [...]}             a node listens (its address map entry)
                    {"ready": true, "gateways": [...]}                every node started
                    {"failed": error}                                 a node could not start; the process exits 2
                    {"records": [record, ...]}                        event records, in the order written
                    {"reply": id, "result": value} / {"reply": id, "error": text}
    plane -> node   {"op": "start"}                                    once, after the hello: start the node(s)
                    {"id": n, "op": "link"|"impair"|"call"|"pstn_call"|"hangup"|"restart"|"sync"|"stop", ...}

Records of links (`link.*`: the control plane writes them once for every process) are not sent;
every other record its node writes from its start on goes to the control plane, in one message
per `RECORDS_FLUSH_S` at most (a node carrying hundreds of calls a second writes thousands of
records a second: a websocket frame each would cost it more than the calls). The node's own log
is emptied at each flush: the lab's log is the control plane's, and a node's memory stays flat
however many calls it carries.

Exit status: 0 stopped; 2 bad input, a node that could not start, or no control plane at URL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp

from simulator.control import state
from simulator.control.client import ControlClient, ControlRefused, ControlUnreachable
from simulator.errors import InputError
from simulator.lab import Lab

EXIT_OK, EXIT_BAD_INPUT = 0, 2
#: records of these kinds stay in the node (the control plane writes the links' own, once)
LOCAL_EVENTS = ("link.",)
#: wall seconds records wait in the node to share one message to the control plane
RECORDS_FLUSH_S = 0.05


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lab", required=True, metavar="LAB", help="lab file (YAML), as the control plane's")
    parser.add_argument("--tenant", required=True, metavar="TENANT", help="tenant file (.yaml or .ps1)")
    parser.add_argument("--node", required=True, metavar="NAME", help="the node this process runs")
    parser.add_argument("--control", required=True, metavar="URL", help="the lab's control URL, e.g. http://127.0.0.1:8765")
    parser.add_argument("--certs", metavar="DIR",
                        help="the lab's certificates folder as this process sees it (default: the control plane's)")


def run(args: argparse.Namespace) -> int:
    try:
        config = ControlClient(args.control).request("GET", "/api/lab")
    except (ControlUnreachable, ControlRefused) as err:
        print(f"drlab node: {err} (is `drlab lab up --processes` running there?)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        routed = bool(config.get("routed"))
        lab = Lab.load(args.lab, tenant=args.tenant, network="real", seed=config["seed"],
                       certs_dir=args.certs or config["certs"], address_block=config["block"],
                       time_scale=config["time_scale"], join_block=not routed, routed=routed)
    except InputError as err:
        print(str(err), file=sys.stderr)
        return EXIT_BAD_INPUT
    if lab.spec.name != config["lab"]:
        print(f"drlab node: {args.lab} is lab {lab.spec.name}, the control plane runs {config['lab']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        names = node_group(lab, args.node)
    except KeyError as err:
        print(f"drlab node: {err.args[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return asyncio.run(NodeAgent(lab, names, args.control, config).run())


def node_group(lab: Any, name: str) -> list[str]:
    """The nodes one process runs for `name`: the node, or every teams_proxy (the Teams cloud)."""
    spec = lab.node_specs.get(name)
    if spec is None:
        raise KeyError(f"no node {name!r} in lab {lab.spec.name}; nodes: {', '.join(lab.node_specs)}")
    if spec.role == "teams_proxy":
        return [n for n in lab.start_order() if lab.node_specs[n].role == "teams_proxy"]
    return [name]


class SharedOriginClock:
    """The lab's run clock in a node process: run seconds from the control plane's origin (a
    wall-clock time), times the time scale, so every process's records share one time base."""

    def __init__(self, origin_unix: float, scale: float) -> None:
        self.scale = scale
        self._offset = time.time() - time.monotonic() - origin_unix

    def __call__(self) -> float:
        return (time.monotonic() + self._offset) * self.scale

    def wall(self, run_s: float) -> float:
        return run_s / self.scale


class NodeAgent:
    def __init__(self, lab: Any, names: list[str], control: str, config: dict[str, Any]) -> None:
        self.lab = lab
        self.names = names
        self.control = control.rstrip("/")
        self.config = config
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._outbox: list[dict[str, Any]] = []
        self._flush: asyncio.Handle | None = None
        self._calls: dict[str, Any] = {}  # SIP Call-ID -> the role's call handle
        self._stopped = asyncio.Event()

    async def run(self) -> int:
        lab = self.lab
        lab.events.clock = SharedOriginClock(self.config["origin_unix"], self.config["time_scale"])
        lab.events.subscribe(self._record)
        async with aiohttp.ClientSession() as session:
            try:
                self.ws = await session.ws_connect(f"{self.control}/api/nodes/{self.names[0]}/ws", max_msg_size=0)
            except aiohttp.ClientError as err:
                print(f"drlab node: cannot reach the control plane at {self.control}: {err}", file=sys.stderr)
                return EXIT_BAD_INPUT
            await self._send({"hello": self.names[0], "pid": os.getpid(), "nodes": self.names})
            if not await self._start_told():
                await self._shutdown()
                return EXIT_OK
            for name, link_state in self.config["links"].items():
                if link_state != "up":
                    lab.network.set_link_state(name, link_state)
            if not await self._start():
                await self._shutdown()
                return EXIT_BAD_INPUT
            try:
                await self._serve()
            finally:
                await self._shutdown()
        return EXIT_OK

    async def _start_told(self) -> bool:
        """Wait for the control plane's `start`; False when the socket ends (or a stop comes) first."""
        assert self.ws is not None
        message = await self.ws.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            return False
        return json.loads(message.data).get("op") == "start"

    async def _start(self) -> bool:
        for name in self.names:
            try:
                await self.lab.nodes[name].start()
            except Exception as err:
                await self._send({"failed": f"node {name} failed to start: {type(err).__name__}: {err}"})
                return False
            self.lab.started.append(name)
            entry = next(e for e in state.address_map(self.lab) if e["node"] == name)
            await self._send({"started": name, "listening": entry["listening"]})
        gateways = state.gateways(self.lab, asyncio.get_running_loop().time())
        await self._send({"ready": True, "gateways": gateways})
        return True

    async def _serve(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            command = json.loads(message.data)
            asyncio.ensure_future(self._answer(command))
            if command.get("op") == "stop":
                await self._stopped.wait()
                break

    async def _answer(self, command: dict[str, Any]) -> None:
        try:
            result = await self._do(command)
            reply: dict[str, Any] = {"reply": command["id"], "result": result}
        except Exception as err:
            reply = {"reply": command["id"], "error": f"{type(err).__name__}: {err}"}
        if command.get("op") == "stop":
            self._stopped.set()
        await self._send(reply)

    async def _do(self, command: dict[str, Any]) -> Any:
        lab, op = self.lab, command["op"]
        if op == "link":
            lab.network.set_link_state(command["name"], command["state"])
        elif op == "impair":
            lab.network.impair_link(command["name"], **command["delays"])
        elif op == "call":
            handle, _ = await state.place_client_call(lab, command["user"], command["to"], lambda h: False)
            self._calls[handle.call_id] = handle
            return {"call_id": handle.call_id, "state": handle.state}
        elif op == "pstn_call":
            handle = await state.place_pstn_call(lab, command["node"], command["from"], command["to"])
            self._calls[handle.call_id] = handle
            return {"call_id": handle.call_id, "state": handle.state}
        elif op == "hangup":
            return await state.hang_up(self._calls[command["call_id"]])
        elif op == "restart":
            await state.restart_client(lab, command["user"])
        elif op == "sync":
            return await state.sync_sba(lab, command["sba"])
        elif op == "stop":
            await self._stop_nodes()
        else:
            raise ValueError(f"unknown command {op!r}")
        return None

    # --- records to the control plane ----------------------------------------------------------------
    def _record(self, record: dict[str, Any]) -> None:
        if record["event"].startswith(LOCAL_EVENTS):
            return
        self._outbox.append(record)
        if self._flush is None:  # one message for all the records of the next RECORDS_FLUSH_S
            self._flush = asyncio.get_running_loop().call_later(
                RECORDS_FLUSH_S, lambda: asyncio.ensure_future(self._send_records()))

    async def _send_records(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        records, self._outbox = self._outbox, []
        self.lab.events.records.clear()  # sent (or local): the control plane keeps the lab's log
        if records:
            await self._send({"records": records})

    async def _send(self, message: dict[str, Any]) -> None:
        if self.ws is not None and not self.ws.closed:
            try:
                await self.ws.send_str(json.dumps(message, default=str, separators=(",", ":")))
            except ConnectionError:
                pass  # the control plane went away; the websocket's end stops the node

    # --- stopping -------------------------------------------------------------------------------------
    async def _stop_nodes(self) -> None:
        for name in reversed(self.lab.started):
            try:
                await self.lab.nodes[name].stop()
            except Exception as err:
                self.lab.events.logger().info("lab.stop_failed", node=name, error=f"{type(err).__name__}: {err}")
        self.lab.started.clear()
        await self._send_records()  # the last records before the reply

    async def _shutdown(self) -> None:
        await self._stop_nodes()
        await self.lab.network.close()
        if self.ws is not None:
            await self.ws.close()
