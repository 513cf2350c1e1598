"""A running lab seen through its control API, shaped as the lab a scenario's steps act on.

`drlab run SCENARIO --attach URL` runs the same step classes (simulator/scenario/steps.py) on an
`AttachedLab` instead of a lab of its own: `lab.link(name).down()` is `POST /api/links/<name>`,
`lab.client(upn).place_call(number)` is `POST /api/calls` and returns once the INVITE has its
final answer, `restart()` and `sync_now()` return when the lab's `control.done` record says the
command finished. Nothing is read from the lab's objects: every judgement comes from the event
records, which arrive on the API's event stream (`GET /api/events?since=0`) and go into the
run's own EventLog, so events.jsonl, report.html, capture.pcap and the verdicts are made as in a
run with its own lab. Attached to the Docker lab on the same machine (`GET /api/lab` names its
bridges), the run captures on the bridges from its start to its end instead (tshark,
simulator/dockerlab/capture.py): its capture.pcap is the real one, with keys.log when the lab's
nodes log their TLS secrets (`make lab CAPTURE=1`).

Run time counts from the attach: `origin` is the lab's clock (`time.virtual_s`) then, and each
record's `t` is rebased on it. Records from before the attach are the lab's `history`: the
runner's view of the world starts from them (who is registered where, gateway health, SBA
cache versions) but they are not part of this run's outputs. The run's clock is the time of the
last record received, or the lab's clock as `GET /api/time` last read it, never ahead of the
lab, so a call's start and end always bracket its records. `at:` and `wait:` wait until the
records reach the time, or, when none comes, for as long as the pace says and then read the
lab's clock. `scale` is the lab's pace (lab seconds per wall second: the sim lab's pace, the
real lab's time scale); the runner's wall-clock bounds use it.

What a lab can only do from inside is refused before the run starts (`attach_problems`): tenant
changes, answer policies and the hold, resume and transfer actions of a call, restarting a node
that is not a client.

    lab = AttachedLab(url, scenario)
    await lab.start()                  # connects, reads the time, replays the history
    result = await Runner(scenario, lab, seed=seed).run()
    await lab.stop()                   # leaves the lab running
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from simulator.control.client import ControlClient, ControlRefused, ControlUnreachable, SseMessages
from simulator.dockerlab.capture import BridgeCapture, CaptureError, merge_key_logs
from simulator.events import EventLog
from simulator.lab.spec import load_lab_spec
from simulator.report import RunResult
from simulator.roles.context import NodeSpec
from simulator.scenario.loader import Scenario
from simulator.scenario.runner import Runner, RunProgress, not_reached
from simulator.scenario.steps import Call, Change, Restart
from simulator.tenant.model import Tenant

Record = dict[str, Any]
#: wall seconds to wait for the lab's first record after the attach (a lab at rest sends many a second)
FIRST_RECORD_S = 30.0
#: the biggest event record the stream may carry (a SIP message with its body is a few kB)
MAX_RECORD_BYTES = 1 << 22


class AttachError(Exception):
    """The lab at the URL cannot run this scenario (unreachable, another lab, stopped)."""


def attach_problems(scenario: Scenario) -> list[str]:
    """What in `scenario` an attached run cannot do through the control API, one line each."""
    problems = []
    for step in scenario.steps:
        where = f"{step.position}: {step.name}"
        if isinstance(step, Change):
            problems.append(f"{where}: a tenant change needs a lab of the run's own")
        elif isinstance(step, Restart) and "@" not in step.target:
            problems.append(f"{where}: the control API restarts clients, not nodes")
        elif isinstance(step, Call):
            if step.answer_after is not None or any(a.action == "answer" for a in step.actions):
                problems.append(f"{where}: the control API cannot set how a client answers")
            actions = {a.action for a in step.actions} - {"answer", "hangup"}
            if actions:
                problems.append(f"{where}: the control API cannot {', '.join(sorted(actions))} a call")
    return problems


class AttachClock:
    """Run seconds of an attached run: the lab time last seen (a record's, or the lab's clock), from `origin`."""

    def __init__(self, origin: float, scale: float) -> None:
        self.origin = origin
        self.scale = scale  # lab seconds per wall second (the Runner's time scale)
        self.lab_t = origin

    def __call__(self) -> float:
        return max(0.0, self.lab_t - self.origin)


class AttachedLab:
    def __init__(self, url: str, scenario: Scenario) -> None:
        self.url = url.rstrip("/")
        self.api = ControlClient(self.url)
        self.spec = load_lab_spec(scenario.lab)
        self.scenario = scenario
        self.events = EventLog()
        self.history: list[Record] = []
        self.nodes: dict[str, Any] = {}
        self._tenant: Tenant | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._follower: asyncio.Task[None] | None = None
        self._docker: dict[str, Any] | None = None  # GET /api/lab's "docker" part: the lab's bridges
        self._capture: BridgeCapture | None = None
        self._captured: dict[str, Path] = {}
        self._ended = False
        self._emit = self.events.logger()
        for decl in self.spec.nodes.values():
            spec = NodeSpec(decl.name, decl.host, decl.role, self.spec.host(decl.host).site, dict(decl.options))
            kind = {"teams_client": RemoteClient, "pstn": RemotePstn, "sba": RemoteSba}.get(decl.role, RemoteNode)
            self.nodes[decl.name] = kind(self, spec)

    # --- the lab API the runner uses --------------------------------------------------------------
    @property
    def tenant(self) -> Tenant:
        """The scenario's tenant, read here: what a route expectation routes with."""
        if self._tenant is None:
            from simulator.tenant.cli import load_tenant  # late: the tenant loaders are heavy

            self._tenant = load_tenant(str(self.scenario.tenant))
        return self._tenant

    def node(self, name: str) -> Any:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no node {name!r}; nodes: {', '.join(self.nodes)}") from None

    def client(self, upn: str) -> RemoteClient:
        for node in self.nodes.values():
            if isinstance(node, RemoteClient) and node.upn == upn.lower():
                return node
        raise KeyError(f"no client for user {upn!r}")

    def link(self, name: str) -> RemoteLink:
        return RemoteLink(self, name)

    def address_map(self) -> dict[str, dict[str, Any]]:
        """Lab.address_map's shape from GET /api/addresses (the first port of each transport)."""
        out: dict[str, dict[str, Any]] = {}
        for entry in self.api.addresses():
            ports: dict[str, str] = {}
            for listener in entry["listening"]:
                ports.setdefault(listener["transport"], f"{listener['address']}:{listener['port']}")
            out[entry["node"]] = {"host": entry["host"], "address": entry["address"], "sip": dict(sorted(ports.items()))}
        return out

    async def wait_until(self, run_t: float) -> None:
        """Until the lab's records reach run time `run_t` (the runner's `at:` and `wait:`)."""
        clock = self.clock
        while clock() < run_t:
            self._check_alive()
            if not await self._next_record((run_t - clock()) / clock.scale):
                # no record by the time the pace says it is due: the lab's clock says where it is
                lab_t = float((await self.request("GET", "/api/time"))["virtual_s"])
                clock.lab_t = max(clock.lab_t, lab_t)

    # --- connecting -------------------------------------------------------------------------------
    @property
    def clock(self) -> AttachClock:
        return self.events.clock  # type: ignore[return-value]  # set by start()

    async def start(self) -> None:
        """Check the lab is this scenario's, read its clock, follow its event stream."""
        try:
            state = await self.request("GET", "/api/state")
        except ControlRefused as err:
            raise AttachError(f"{self.url}: {err}") from None
        running = {node["name"] for node in state["nodes"]}
        missing = sorted(set(self.spec.nodes) - running)
        if missing:
            raise AttachError(f"the lab at {self.url} is not {self.spec.name} (it has no node "
                              f"{', '.join(missing)}); the scenario's lab is {self.scenario.lab}")
        self.events.clock = AttachClock(float(state["time"]["virtual_s"]), float(state["time"]["pace"] or 1.0))
        await self._start_capture()
        self._follower = asyncio.ensure_future(self._follow())
        try:
            await asyncio.wait_for(self._first_live_record(), FIRST_RECORD_S)
        except TimeoutError:
            raise AttachError(f"the lab at {self.url} sent no event for {FIRST_RECORD_S:g} s (paused?)") from None

    async def stop(self) -> None:
        """Stop following the lab (and capturing on its bridges); the lab itself goes on running."""
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
        if self._capture is not None:
            await self._capture.stop()
            keys = (self._docker or {}).get("keys")
            if keys:
                self._captured["keys.log"] = merge_key_logs(Path(keys), self._capture.path.parent / "keys.log")
            self._captured["capture.pcap"] = self._capture.path
            self._capture = None

    async def _start_capture(self) -> None:
        """A Docker lab on this machine: capture on its bridges for the run (its real capture.pcap);
        where that cannot be (no tshark, no right to capture), capture.pcap is drawn from the records."""
        try:
            self._docker = (await self.request("GET", "/api/lab")).get("docker")
        except ControlRefused:
            return  # a lab in one process has no /api/lab: nothing to capture beyond its records
        if not self._docker:
            return
        folder = Path(tempfile.mkdtemp(prefix="drlab-capture-"))
        try:
            self._capture = await BridgeCapture.start(self._docker["bridges"], folder / "capture.pcap")
        except CaptureError as err:
            self.events.logger().info("scenario.note", text=f"capture.pcap is drawn from the records: {err}")

    def captured(self) -> dict[str, Path]:
        """The run's outputs made from the wire (output name -> file), once stopped."""
        return dict(self._captured)

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await asyncio.to_thread(self.api.request, method, path, body)

    async def _first_live_record(self) -> None:
        while not self.events.records:
            self._check_alive()
            await self._next_record(None)

    async def _follow(self) -> None:
        try:
            async with aiohttp.ClientSession(read_bufsize=MAX_RECORD_BYTES) as session, \
                    session.get(self.url + "/api/events?since=0", timeout=aiohttp.ClientTimeout(total=None)) as stream:
                messages = SseMessages()
                async for raw in stream.content:
                    message = messages.feed(raw)
                    if message is None:
                        continue
                    if message[0] == "stopped":
                        break
                    if message[0] == "message":
                        self._receive(message[1])
                    elif message[0] == "dropped":  # this reader fell behind the lab: say what is missing
                        self._emit.info("scenario.note", text=f"the lab's event stream dropped {message[1]['dropped']} "
                                                              "records (the run read too slowly)")
        except aiohttp.ClientError as err:
            self._emit.info("scenario.note", text=f"the lab's event stream broke off: {err}")
        finally:
            self._ended = True
            self._wake()

    def _receive(self, record: Record) -> None:
        clock = self.clock
        if record["t"] < clock.origin:
            self.history.append({**record, "t": round(record["t"] - clock.origin, 6)})
            return
        clock.lab_t = max(clock.lab_t, record["t"])  # records of several processes arrive in batches
        self.events.append({**record, "t": round(clock(), 6)})
        self._wake()

    # --- waiting on records -----------------------------------------------------------------------
    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def _check_alive(self) -> None:
        if self._ended:
            raise AttachError(f"the lab at {self.url} stopped")

    async def _next_record(self, timeout: float | None) -> bool:
        """Wait for the next record (or the stream's end); False when `timeout` passed first."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return False
        return True

    async def record(self, matches: Callable[[Record], bool], since: int) -> Record:
        """The first record of this run, from index `since`, that `matches` (waits for it)."""
        records = self.events.records
        while True:
            for index in range(since, len(records)):
                if matches(records[index]):
                    return records[index]
            since = len(records)
            self._check_alive()
            await self._next_record(None)

    async def command_outcome(self, since: int, command: str, **fields: Any) -> Any:
        """The `result` of a command's `control.done` record (a `control.failed` raises)."""
        outcome = await self.record(lambda r: r["event"] in ("control.done", "control.failed")
                                    and r.get("command") == command
                                    and all(r.get(k) == v for k, v in fields.items()), since)
        if outcome["event"] == "control.failed":
            raise RuntimeError(outcome["error"])
        return outcome.get("result")


class RemoteNode:
    def __init__(self, lab: AttachedLab, spec: NodeSpec) -> None:
        self.lab = lab
        self.spec = spec


class RemoteLink:
    def __init__(self, lab: AttachedLab, name: str) -> None:
        self.lab = lab
        self.name = name

    async def down(self) -> None:
        await self.lab.request("POST", f"/api/links/{self.name}", {"state": "down"})

    async def up(self) -> None:
        await self.lab.request("POST", f"/api/links/{self.name}", {"state": "up"})

    async def blackhole(self) -> None:
        await self.lab.request("POST", f"/api/links/{self.name}", {"state": "blackhole"})

    async def impair(self, **delays: float) -> None:
        """The impair step hands the network's delays (the lab's over the time scale); the API
        takes the lab's own, so they are scaled back."""
        scale = self.lab.clock.scale
        body = {k: v * scale if k in ("latency", "jitter") else v for k, v in delays.items() if v is not None}
        await self.lab.request("POST", f"/api/links/{self.name}", body)


class RemoteCall:
    """A call placed through the API, as the call step reads it (status, answered_by, via_sba)."""

    def __init__(self, lab: AttachedLab, view: dict[str, Any]) -> None:
        self.lab = lab
        self.id = view["id"]
        self.call_id = view["call_id"]
        self.status = view["status"]
        self.reason = view["reason"]
        self.answered_by = view["answered_by"]
        self.via_sba = view["via_sba"]
        self.registrar = None

    async def hangup(self) -> int | None:
        """BYE (or CANCEL); the final status, None when the call had already ended."""
        since = len(self.lab.events.records)
        try:
            await self.lab.request("DELETE", f"/api/calls/{self.id}")
        except ControlRefused as err:
            if err.status == 409:  # ended already: the far end hung up
                return None
            raise
        return await self.lab.command_outcome(since, "hangup", call=self.id)


class _Caller(RemoteNode):
    async def _call(self, body: dict[str, Any]) -> RemoteCall:
        """POST /api/calls, then wait for the INVITE's final answer at this node."""
        since = len(self.lab.events.records)
        view = await self.lab.request("POST", "/api/calls", body)
        if view["state"] in ("calling", "ringing"):
            await self.lab.record(lambda r: r["event"] in ("call.answered", "call.ended")
                                  and r.get("node") == self.spec.name and r.get("call_id") == view["call_id"], since)
            view = await self.lab.request("GET", f"/api/calls/{view['id']}")
        return RemoteCall(self.lab, view)


class RemoteClient(_Caller):
    @property
    def upn(self) -> str:
        return str(self.spec.options.get("user") or self.spec.options.get("upn") or "").lower()

    async def place_call(self, dial: str) -> RemoteCall:
        return await self._call({"from": self.upn, "to": dial})

    async def restart(self) -> None:
        since = len(self.lab.events.records)
        await self.lab.request("POST", f"/api/clients/{self.upn}/restart")
        await self.lab.command_outcome(since, "restart", user=self.upn)


class RemotePstn(_Caller):
    async def call(self, caller: str, dial: str) -> RemoteCall:
        return await self._call({"pstn": self.spec.name, "from": caller, "to": dial})


class RemoteSba(RemoteNode):
    async def sync_now(self) -> bool:
        since = len(self.lab.events.records)
        await self.lab.request("POST", f"/api/sba/{self.spec.name}/sync")
        return bool(await self.lab.command_outcome(since, "sync", sba=self.spec.name))


async def run_attached(scenario: Scenario, url: str, *, seed: int,
                       on_event: Callable[[Record], None] | None = None,
                       progress: RunProgress | None = None) -> RunResult:
    """`run_with_lab` for a lab that is already running at `url`: attach, run the steps, detach."""
    progress = progress or RunProgress(scenario, seed)
    lab = progress.lab = AttachedLab(url, scenario)
    if on_event is not None:
        lab.events.subscribe(on_event)
    try:
        await lab.start()
    except (AttachError, ControlUnreachable) as exc:
        await lab.stop()
        return RunResult(scenario.name, seed, not_reached(scenario), error=f"could not attach: {exc}")
    try:
        progress.runner = Runner(scenario, lab, seed=seed)
        result = await progress.runner.run()
        result.addresses = await asyncio.to_thread(lab.address_map)
    finally:
        await lab.stop()
    result.captured = lab.captured()
    return result
