"""The lab's roles as the control plane sees them: every read of, and every command to, a role.

This is the one module that knows the roles' shape (their attributes, handles and coroutines);
the rest of the control plane speaks in plain values. A change in a role's shape changes this
file only. Each command does what the matching scenario step does (simulator/scenario/runner.py):
a cut is `lab.link(name).down()`, a call `client.place_call(number)` or
`pstn.start_call(caller, callee)`, a restart `client.restart()`, a sync `sba.sync_now()`.

Values, as `GET /api/state` shows them:
- a node's `state`: `running` (started and not stopped) or `stopped`;
- a client's `state`: `online` (signed in to the cloud), `appliance` (registered at an SBA) or
  `offline`; its `registrar`: the FQDN of the proxy or SBA it is registered with, or null;
- a gateway's `health` as the Teams cloud sees it: `active`, `demoted`, `inactive`, `disabled`;
- a call's `state`: `calling`, `ringing`, `answered`, `ended` or `failed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.roles.teams_cloud import SHARED_KEY as CLOUD_KEY

FINISHED_CALL_STATES = ("ended", "failed")


# --- reads ------------------------------------------------------------------------------------------
def nodes(lab: Any) -> list[dict[str, Any]]:
    started = set(lab.started)
    return [{"name": name, "role": spec.role, "host": spec.fqdn, "address": lab.network.resolve(spec.fqdn),
             "state": "running" if name in started else "stopped"}
            for name, spec in lab.node_specs.items()]


def links(lab: Any) -> list[dict[str, Any]]:
    return [{"name": link.name, "state": link.state} for link in getattr(lab.network, "links", {}).values()]


def clients(lab: Any) -> list[dict[str, Any]]:
    out = []
    for name, spec in lab.node_specs.items():
        if spec.role == "teams_client":
            role = lab.nodes[name]
            out.append({"user": role.upn, "state": role.state, "registrar": role.registrar})
    return out


def gateways(lab: Any, now: float) -> list[dict[str, Any]]:
    """Each paired gateway's health in the cloud's shared view (no cloud until a proxy starts)."""
    from_events = getattr(lab, "gateway_health", None)  # nodes in processes of their own (processes.py)
    if from_events is not None:
        return from_events()
    cloud = lab.context.shared.get(CLOUD_KEY)
    if cloud is None:
        return []
    statuses = {fqdn: cloud.health.status(fqdn, now) for fqdn in cloud.health.gateways()}
    return [{"fqdn": fqdn, "health": str(s.health), "reason": s.reason} for fqdn, s in statuses.items()]


def address_map(lab: Any) -> list[dict[str, Any]]:
    """Node -> host -> address:port per transport it listens on (clients listen on nothing)."""
    out = []
    for name, spec in lab.node_specs.items():
        listening = lab.listening(name) if hasattr(lab, "listening") else _listening(lab.nodes[name])
        out.append({"node": name, "host": spec.fqdn, "address": lab.network.resolve(spec.fqdn),
                    "listening": listening})
    return out


def _listening(role: Any) -> list[dict[str, Any]]:
    endpoint = _endpoint(role)
    listening = []
    for listener in getattr(endpoint, "listeners", []):
        address, port = listener.address
        listening.append({"transport": _transport(endpoint, listener), "address": address, "port": port})
    return listening


def _endpoint(role: Any) -> Any:
    return getattr(role, "ep", None) or getattr(role, "_ep", None)


def _transport(endpoint: Any, listener: Any) -> str:
    """udp, tcp or tls. The network only knows streams; the endpoint remembers its plain TCP port,
    so a stream listener on any other port of an endpoint that serves TLS is a TLS one."""
    if listener.transport == "udp":
        return "udp"
    if listener.port != endpoint.listen_ports.get("tcp") and endpoint.tls_listen_configs:
        return "tls"
    return "tcp"


# --- lookups (KeyError names what exists) -----------------------------------------------------------
def node_of_role(lab: Any, name: str, role: str) -> Any:
    spec = lab.node_specs.get(name)
    if spec is None or spec.role != role:
        names = [n for n, s in lab.node_specs.items() if s.role == role]
        raise KeyError(f"no {role} node {name!r}; {role} nodes: {', '.join(names) or 'none'}")
    return lab.nodes[name]


def client_node(lab: Any, user: str) -> str:
    """The node name of `user`'s client (where its calls start)."""
    return lab.client(user).spec.name


# --- calls ------------------------------------------------------------------------------------------
@dataclass
class CallInfo:
    """What the control plane shows of a call handle (client's CallHandle or carrier's PstnCall)."""

    call_id: str
    state: str
    status: int | None
    reason: str | None
    answered_by: str | None   # a client's call only
    via_sba: bool | None      # a client's call only: set up through an SBA


def call_info(handle: Any) -> CallInfo:
    return CallInfo(handle.call_id, handle.state, handle.status, handle.reason,
                    getattr(handle, "answered_by", None), getattr(handle, "via_sba", None))


async def place_client_call(lab: Any, user: str, number: str,
                            claimed: Callable[[Any], bool]) -> tuple[Any, asyncio.Task[Any]]:
    """Start `user`'s call to `number`; returns its handle at once and the task that places it
    (done when the INVITE has its final answer). `claimed(handle)`: a handle already taken by
    another command (two calls started in the same turn of the loop)."""
    role = lab.client(user)
    known = set(map(id, role.calls))
    task = asyncio.ensure_future(role.place_call(number))
    # place_call files its handle in role.calls before its first await: one turn of the loop
    # (the task's first step, queued before us) and it is there, or the task has failed.
    await asyncio.sleep(0)
    for handle in role.calls:
        if id(handle) not in known and not claimed(handle):
            return handle, task
    # failed before the handle existed: its error is the answer; or a client in a node process
    # (simulator.control.processes), whose handle comes back with the node's answer
    handle = await task
    if handle is None or claimed(handle):
        raise RuntimeError(f"{user}: the call did not start")
    return handle, task


async def place_pstn_call(lab: Any, node: str, caller: str, callee: str) -> Any:
    """Carrier `node` dials `callee` from `caller` into its SBC; returns the handle at once (for a
    carrier in a node process, once the node has answered)."""
    started = node_of_role(lab, node, "pstn").start_call(caller, callee)
    return await started if asyncio.iscoroutine(started) else started


async def hang_up(handle: Any) -> int | None:
    """BYE an answered call, CANCEL one still ringing; the final status, None if none came."""
    return await handle.hangup()


# --- other commands ---------------------------------------------------------------------------------
async def restart_client(lab: Any, user: str) -> None:
    await lab.client(user).restart()


async def sync_sba(lab: Any, name: str) -> bool:
    """One sync with the cloud now; True when a configuration was installed."""
    return bool(await node_of_role(lab, name, "sba").sync_now())
