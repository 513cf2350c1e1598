"""The control plane of a running lab: what the HTTP API (api.py) asks, in plain Python.

It runs on the lab's own event loop (the virtual clock loop is not thread-safe), so every read
sees the lab between two of its steps. Reads return JSON-ready dicts. Commands are checked,
recorded as a `control.command` event (so events.jsonl says who cut the link), and those that
take time in the lab (a call, a hangup, a restart, a sync) run as tasks on the lab's clock:
the command returns at once and its outcome shows in the state and the event stream. A
command never waits on the lab's clock, which a paused lab would never move.

Bad commands raise `ControlError(status, message)`: 404 for an unknown link, user, node or
call, 409 for one the lab cannot do now (stopping, a paused-only step, time on the real
network), 400 for a bad value.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from simulator.control import state
from simulator.control.events import EventStream
from simulator.events import Event
from simulator.lab.spec import LabError
from simulator.lab.timescale import link_delays
from simulator.net.clock import VirtualClockLoop
from simulator.net.topology import BLACKHOLE, DOWN, UP, check_impairment
from simulator.scenario.expectations import WorldView

LINK_COMMANDS = {DOWN: "down", UP: "up", BLACKHOLE: "blackhole"}
#: events after which a call's signalling path is known (its INVITEs have their final answer)
CALL_SETTLED_EVENTS = ("call.answered", "call.ended")
#: how long, on the lab's clock, the stop waits for its BYEs
HANGUP_ON_STOP_S = 10.0


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(eq=False)
class ControlCall:
    """A call placed through the control plane: its id ("c1") and the role's handle."""

    id: str
    caller: str
    callee: str
    origin: str          # the node its INVITE starts from
    started_at: float
    first_record: int    # the log's length when it was placed: its records come after
    handle: Any
    settled_at: float | None = None
    path: list[str] | None = field(default=None, repr=False)  # once settled


class ControlPlane:
    def __init__(self, lab: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.lab = lab
        self.loop = loop
        self.stream = EventStream(lab.events)
        self.log = lab.events.logger()
        self.calls: dict[str, ControlCall] = {}
        self.stop_requested = asyncio.Event()
        self._ids = itertools.count(1)
        self._by_sip_call: dict[tuple[str, str], ControlCall] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        lab.events.subscribe(self._watch_calls)

    @property
    def stopping(self) -> bool:
        return self.stop_requested.is_set()

    def now(self) -> float:
        return float(self.lab.events.clock())

    # --- reads ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "nodes": state.nodes(self.lab),
            "links": state.links(self.lab),
            "clients": state.clients(self.lab),
            "gateways": state.gateways(self.lab, self.loop.time()),
            "calls": [self.call_summary(call) for call in self.calls.values()],
            "time": self.time(),
        }

    def addresses(self) -> list[dict[str, Any]]:
        return state.address_map(self.lab)

    def time(self) -> dict[str, Any]:
        if isinstance(self.loop, VirtualClockLoop):
            return {"virtual_s": round(self.now(), 6), "pace": self.loop.pace, "paused": self.loop.paused}
        # the real network: wall time, times the lab's time scale (lab seconds per wall second)
        return {"virtual_s": round(self.now(), 6), "pace": self.time_scale, "paused": False}

    @property
    def time_scale(self) -> float:
        """The real network's --time-scale (1 on sim, whose pace is the loop's)."""
        return float(getattr(self.lab.events.clock, "scale", 1.0))

    def call_summary(self, call: ControlCall) -> dict[str, Any]:
        """The call as `GET /api/state` lists it."""
        return {"id": call.id, "from": call.caller, "to": call.callee, "state": state.call_info(call.handle).state,
                "path": self._path(call)}

    def call_view(self, call: ControlCall) -> dict[str, Any]:
        """The summary and the INVITE's final status and the reason the call ended or failed."""
        info = state.call_info(call.handle)
        return {**self.call_summary(call), "status": info.status, "reason": info.reason, "call_id": info.call_id,
                "answered_by": info.answered_by, "via_sba": info.via_sba}

    def call(self, call_id: str) -> ControlCall:
        try:
            return self.calls[call_id]
        except KeyError:
            raise ControlError(404, f"no call {call_id!r}; calls: {', '.join(self.calls) or 'none'}") from None

    def _path(self, call: ControlCall) -> list[str]:
        """The nodes the call's INVITEs went through, read from the SIP events (as a scenario's
        `path:` expectation reads them); fixed once the call has its final answer."""
        if call.path is not None:
            return call.path
        end = call.settled_at if call.settled_at is not None else self.now()
        records = self.lab.events.records
        # in the order they were logged, which is time order for one process, arrival order for
        # nodes in processes of their own (processes.py): either way after the call was placed
        window = [r for r in records[call.first_record:] if r["t"] <= end + 1e-6]
        path = WorldView(window).signalling_path(call.started_at, end, origin=call.origin)
        if call.settled_at is not None:
            call.path = path
        return path

    def _watch_calls(self, record: Event) -> None:
        if record["event"] in CALL_SETTLED_EVENTS:
            call = self._by_sip_call.get((str(record.get("node")), str(record.get("call_id"))))
            if call is not None and call.settled_at is None:
                call.settled_at = record["t"]

    # --- commands -------------------------------------------------------------------------------
    def _command(self, command: str, **fields: Any) -> int:
        """Record an accepted command; returns the record's id in the event stream, so a reader
        can follow what the command caused (`GET /api/events?since=<id>`)."""
        if self.stopping:
            raise ControlError(409, "the lab is stopping")
        self.log.info("control.command", command=command, **fields)
        return len(self.lab.events.records) - 1

    def _spawn(self, command: str, coro: Any, **fields: Any) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            self._tasks.discard(task)
            if task.cancelled():
                return
            exc = task.exception()
            if exc is not None:
                self.log.info("control.failed", command=command, error=f"{type(exc).__name__}: {exc}",
                                     **fields)
            else:
                self.log.info("control.done", command=command, result=task.result(), **fields)
        task.add_done_callback(done)

    def _link(self, name: str) -> Any:
        try:
            return self.lab.link(name)
        except KeyError as err:
            raise ControlError(404, str(err.args[0])) from None
        except LabError as err:
            raise ControlError(409, str(err)) from None

    def set_link_state(self, name: str, link_state: str) -> dict[str, Any]:
        if link_state not in LINK_COMMANDS:
            raise ControlError(400, f"state must be one of {', '.join(LINK_COMMANDS)}, not {link_state!r}")
        link = self._link(name)
        event_id = self._command("link", link=name, state=link_state)
        getattr(link, LINK_COMMANDS[link_state])()
        return {"name": name, "state": link.state, "event_id": event_id}

    def impair_link(self, name: str, *, latency: float | None = None, jitter: float | None = None,
                    loss: float | None = None) -> dict[str, Any]:
        link = self._link(name)
        given = {k: v for k, v in (("latency", latency), ("jitter", jitter), ("loss", loss)) if v is not None}
        if not given:
            raise ControlError(400, "an impairment needs latency, jitter or loss")
        try:
            check_impairment(name, *(given.get(k, getattr(link, k)) for k in ("latency", "jitter", "loss")))
        except ValueError as err:
            raise ControlError(400, str(err)) from None
        event_id = self._command("impair", link=name, **given)
        link.impair(**link_delays(given, self.time_scale))  # the lab's units, as a scenario's impair step
        applied = link_delays({"latency": link.latency, "jitter": link.jitter}, 1 / self.time_scale)
        return {"name": name, "state": link.state, **applied, "loss": link.loss, "event_id": event_id}

    async def place_call(self, caller: str, callee: str, pstn: str | None = None) -> dict[str, Any]:
        """From a Teams user (`caller` a UPN) or, with `pstn`, from a number on that carrier."""
        if self.stopping:
            raise ControlError(409, "the lab is stopping")
        started_at = self.now()  # before the INVITE leaves: the path is read from then on
        first_record = len(self.lab.events.records)
        try:
            origin = state.client_node(self.lab, caller) if pstn is None else pstn
            if pstn is None:
                event_id = self._command("call", caller=caller, callee=callee)
                handle, _ = await state.place_client_call(
                    self.lab, caller, callee, lambda h: any(c.handle is h for c in self.calls.values()))
            else:
                state.node_of_role(self.lab, pstn, "pstn")
                event_id = self._command("call", pstn=pstn, caller=caller, callee=callee)
                handle = await state.place_pstn_call(self.lab, pstn, caller, callee)
        except KeyError as err:
            raise ControlError(404, str(err.args[0])) from None
        except (ValueError, RuntimeError) as err:
            raise ControlError(409, str(err)) from None
        call = ControlCall(f"c{next(self._ids)}", caller, callee, origin, started_at, first_record, handle)
        self.calls[call.id] = call
        self._by_sip_call[(origin, state.call_info(handle).call_id)] = call
        if state.call_info(handle).state in state.FINISHED_CALL_STATES:  # failed before we could watch
            call.settled_at = self.now()
        return {**self.call_view(call), "event_id": event_id}

    def hang_up(self, call_id: str) -> dict[str, Any]:
        call = self.call(call_id)
        if state.call_info(call.handle).state in state.FINISHED_CALL_STATES:
            raise ControlError(409, f"call {call_id} has already ended ({state.call_info(call.handle).state})")
        event_id = self._command("hangup", call=call_id)
        self._spawn("hangup", state.hang_up(call.handle), call=call_id)
        return {**self.call_view(call), "event_id": event_id}

    def restart_client(self, user: str) -> dict[str, Any]:
        try:
            state.client_node(self.lab, user)
        except KeyError as err:
            raise ControlError(404, str(err.args[0])) from None
        event_id = self._command("restart", user=user)
        self._spawn("restart", state.restart_client(self.lab, user), user=user)
        return {"user": user, "event_id": event_id}

    def sync_sba(self, name: str) -> dict[str, Any]:
        try:
            state.node_of_role(self.lab, name, "sba")
        except KeyError as err:
            raise ControlError(404, str(err.args[0])) from None
        event_id = self._command("sync", sba=name)
        self._spawn("sync", state.sync_sba(self.lab, name), sba=name)
        return {"sba": name, "event_id": event_id}

    def set_time(self, *, pace: float | None = None, paused: bool | None = None, step: bool = False) -> dict[str, Any]:
        loop = self.loop
        if not isinstance(loop, VirtualClockLoop):
            raise ControlError(409, "the real network runs on the wall clock: pace, pause and step are for the sim network")
        if step and not (paused or (paused is None and loop.paused)):
            raise ControlError(409, "step needs a paused clock: {\"paused\": true} first")
        event_id = self._command("time", **{k: v for k, v in (("pace", pace), ("paused", paused),
                                                                  ("step", step or None)) if v is not None})
        if pace is not None:
            loop.set_pace(pace)
        if paused is True:
            loop.pause()
        elif paused is False:
            loop.resume()
        if step:
            loop.step()
        return {**self.time(), "event_id": event_id}

    def request_stop(self) -> None:
        self.stop_requested.set()

    # --- stopping -------------------------------------------------------------------------------
    async def end_calls(self) -> None:
        """The stop's first part: the clock runs again, every call still up is hung up (BYE, or
        CANCEL while it rings) within HANGUP_ON_STOP_S, running commands are cancelled."""
        self.stop_requested.set()
        if isinstance(self.loop, VirtualClockLoop):
            self.loop.resume()
        live = [c for c in self.calls.values() if state.call_info(c.handle).state not in state.FINISHED_CALL_STATES]
        if live:
            hangups = asyncio.gather(*(state.hang_up(c.handle) for c in live), return_exceptions=True)
            try:
                await asyncio.wait_for(hangups, HANGUP_ON_STOP_S)
            except TimeoutError:
                self.log.info("control.failed", command="stop",
                                     error=f"calls still up after {HANGUP_ON_STOP_S:g} s")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
