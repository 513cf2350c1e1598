"""The control API: HTTP + JSON on aiohttp, served on the lab's own event loop (docs/live-lab.md).

    runner, url = await serve(plane, "127.0.0.1", 8765)   # ControlPortError if it cannot listen
    ...
    await runner.cleanup()

Every answer is JSON. A bad request gets a 4xx and `{"error": "<what was wrong>"}`: a body that
is not JSON or not an object, an unknown or mistyped field, an unknown link, user, node or call
(404), a command the lab cannot do now (409), an unknown endpoint (404) or method (405).
A fault of the control plane itself is a 500 with the error, also logged as `control.failed`.
`GET /api/events` is a Server-Sent Events stream: `id:` the record's index in the log, `data:`
the record as in events.jsonl; `event: dropped` when a slow reader lost records, `event:
stopped` when the lab has stopped.
"""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from simulator.control import state, topology
from simulator.control.plane import ControlError, ControlPlane
from simulator.scenario.reader import parse_duration

PLANE = web.AppKey("plane", ControlPlane)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$")
#: the live view: one page, its script and its style sheet (nothing else is served from here)
STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {"index.html": "text/html", "live.js": "text/javascript", "live.css": "text/css"}


class ControlPortError(Exception):
    """The control API could not listen where it was asked to."""


async def serve(plane: ControlPlane, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Listen on host:port (0: any free port) on the running loop; returns the runner and the URL."""
    runner = web.AppRunner(build_app(plane), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as err:
        await runner.cleanup()
        reason = "already in use (another lab?)" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
        raise ControlPortError(f"cannot listen on {host}:{port}: {reason}") from None
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}"


def build_app(plane: ControlPlane) -> web.Application:
    app = web.Application(middlewares=[_json_errors])
    app[PLANE] = plane
    for method, path, handler in ROUTES + node_routes(plane):
        app.router.add_route(method, path, handler)
    return app


def node_routes(plane: ControlPlane) -> list[tuple[str, str, Handler]]:
    """The routes of a lab whose nodes run in processes of their own (simulator/control/processes.py)."""
    routes = getattr(plane.lab, "routes", None)
    return routes() if routes is not None else []


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as err:
        return web.json_response({"error": err.message}, status=err.status)
    except web.HTTPException as err:
        if err.status < 400:
            raise
        if err.status == 404:
            message = f"no endpoint {request.method} {request.path}; see GET /api/state, docs/live-lab.md"
        elif err.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        else:
            message = err.text or err.reason
        return web.json_response({"error": message}, status=err.status)
    except Exception as exc:  # a fault of ours: say so in JSON and in the lab's log, keep serving
        error = f"{type(exc).__name__}: {exc}"
        _plane(request).log.info("control.failed", command=f"{request.method} {request.path}", error=error)
        return web.json_response({"error": f"internal error: {error}"}, status=500)


def _plane(request: web.Request) -> ControlPlane:
    return request.app[PLANE]


# --- request bodies -------------------------------------------------------------------------------------
async def _body(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object in the body (empty body: {}); unknown fields are an error, never ignored."""
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise ControlError(400, f"the body is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise ControlError(400, f"the body must be a JSON object, not {type(body).__name__}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ControlError(400, f"unknown field(s) {', '.join(unknown)}; expected: {', '.join(allowed)}")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ControlError(400, f"{key!r} must be a non-empty string, got {json.dumps(value)}")
    return value.strip()


def _seconds(body: dict[str, Any], key: str) -> float | None:
    """"80ms", "1.5s" or a number of seconds."""
    if key not in body:
        return None
    try:
        return parse_duration(body[key])
    except ValueError:
        raise ControlError(400, f"{key!r} must be a duration like \"80ms\" or \"1.5s\", "
                                f"got {json.dumps(body[key])}") from None


def _probability(body: dict[str, Any], key: str) -> float | None:
    """"5%" or a fraction 0..1."""
    if key not in body:
        return None
    value = body[key]
    match = _PERCENT.match(value) if isinstance(value, str) else None
    if match:
        value = float(match.group(1)) / 100.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ControlError(400, f"{key!r} must be a percentage like \"5%\" or a fraction 0..1, "
                                f"got {json.dumps(body[key])}")
    return float(value)


# --- handlers ---------------------------------------------------------------------------------------
async def _get_state(request: web.Request) -> web.Response:
    return web.json_response(_plane(request).state())


async def _get_addresses(request: web.Request) -> web.Response:
    return web.json_response(_plane(request).addresses())


async def _get_page(request: web.Request) -> web.Response:
    return _static("index.html")


async def _get_static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_TYPES:
        raise web.HTTPNotFound()
    return _static(name)


def _static(name: str) -> web.Response:
    return web.Response(body=(STATIC / name).read_bytes(), content_type=STATIC_TYPES[name], charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def _get_topology(request: web.Request) -> web.Response:
    return web.json_response(topology.topology(_plane(request).lab))


async def _get_call_legs(request: web.Request) -> web.Response:
    plane = _plane(request)
    call = plane.call(request.match_info["id"])
    call_ids = topology.legs(plane.lab.events.records, state.call_info(call.handle).call_id, call.started_at)
    return web.json_response({"id": call.id, "call_ids": call_ids})


async def _post_link(request: web.Request) -> web.Response:
    body = await _body(request, ("state", "latency", "jitter", "loss"))
    name = request.match_info["name"]
    if "state" in body:
        if len(body) > 1:
            raise ControlError(400, "give either a state or an impairment (latency, jitter, loss), not both")
        return web.json_response(_plane(request).set_link_state(name, _text(body, "state")))
    return web.json_response(_plane(request).impair_link(
        name, latency=_seconds(body, "latency"), jitter=_seconds(body, "jitter"), loss=_probability(body, "loss")))


async def _post_call(request: web.Request) -> web.Response:
    body = await _body(request, ("from", "to", "pstn"))
    pstn = _text(body, "pstn") if "pstn" in body else None
    caller, callee = _text(body, "from"), _text(body, "to")
    if pstn is None and "@" not in caller:
        raise ControlError(400, f"'from' must be a Teams user (user@domain), or give 'pstn' (the carrier node) "
                                f"to call from the number {caller!r}")
    return web.json_response(await _plane(request).place_call(caller, callee, pstn), status=201)


async def _get_call(request: web.Request) -> web.Response:
    plane = _plane(request)
    return web.json_response(plane.call_view(plane.call(request.match_info["id"])))


async def _delete_call(request: web.Request) -> web.Response:
    return web.json_response(_plane(request).hang_up(request.match_info["id"]), status=202)


async def _post_restart(request: web.Request) -> web.Response:
    await _body(request, ())
    return web.json_response(_plane(request).restart_client(request.match_info["user"]), status=202)


async def _post_sync(request: web.Request) -> web.Response:
    await _body(request, ())
    return web.json_response(_plane(request).sync_sba(request.match_info["name"]), status=202)


async def _get_time(request: web.Request) -> web.Response:
    return web.json_response(_plane(request).time())


async def _post_time(request: web.Request) -> web.Response:
    body = await _body(request, ("pace", "paused", "step"))
    if not body:
        raise ControlError(400, "give pace (a number), paused (true or false) or step (true)")
    pace = body.get("pace")
    if pace is not None and (isinstance(pace, bool) or not isinstance(pace, int | float) or not pace > 0):
        raise ControlError(400, f"'pace' must be a positive number of virtual seconds per wall second, got {json.dumps(pace)}")
    for key in ("paused", "step"):
        if key in body and not isinstance(body[key], bool):
            raise ControlError(400, f"{key!r} must be true or false, got {json.dumps(body[key])}")
    return web.json_response(_plane(request).set_time(pace=pace, paused=body.get("paused"),
                                                      step=bool(body.get("step"))))


async def _post_stop(request: web.Request) -> web.Response:
    await _body(request, ())
    plane = _plane(request)
    plane.request_stop()
    return web.json_response({"stopping": True}, status=202)


async def _get_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events; `?since=N` first replays the log from record N (0: everything)."""
    since_text = request.query.get("since", request.headers.get("Last-Event-ID"))
    since = None
    if since_text is not None:
        if not since_text.isdigit():
            raise ControlError(400, f"since must be a record index (0, 1, ...), got {since_text!r}")
        since = int(since_text) + (1 if "since" not in request.query else 0)  # Last-Event-ID: the last one seen
    plane = _plane(request)
    replay, sub = plane.stream.subscribe(since)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await response.prepare(request)
        await _send(response, replay)
        while True:
            batch, dropped = await sub.get()
            if dropped:
                await response.write(f"event: dropped\ndata: {json.dumps({'dropped': dropped})}\n\n".encode())
            if not batch and sub.closed:
                await response.write(b"event: stopped\ndata: {}\n\n")
                break
            await _send(response, batch)
    except (ConnectionResetError, ConnectionError):
        pass  # the reader went away
    finally:
        plane.stream.unsubscribe(sub)
    return response


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/", _get_page),
    ("GET", "/static/{name}", _get_static),
    ("GET", "/api/topology", _get_topology),
    ("GET", "/api/calls/{id}/legs", _get_call_legs),
    ("GET", "/api/state", _get_state),
    ("GET", "/api/addresses", _get_addresses),
    ("POST", "/api/links/{name}", _post_link),
    ("POST", "/api/calls", _post_call),
    ("GET", "/api/calls/{id}", _get_call),
    ("DELETE", "/api/calls/{id}", _delete_call),
    ("POST", "/api/clients/{user}/restart", _post_restart),
    ("POST", "/api/sba/{name}/sync", _post_sync),
    ("GET", "/api/time", _get_time),
    ("POST", "/api/time", _post_time),
    ("GET", "/api/events", _get_events),
    ("POST", "/api/stop", _post_stop),
]


async def _send(response: web.StreamResponse, records: list[tuple[int, dict[str, Any]]]) -> None:
    if records:
        text = "".join(f"id: {index}\ndata: {json.dumps(record, default=str, separators=(',', ':'))}\n\n"
                       for index, record in records)
        await response.write(text.encode())
