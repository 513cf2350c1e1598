"""A client of the control API (urllib, no event loop): what `drlab ctl` and scripts use.

    lab = ControlClient("http://127.0.0.1:8765")
    lab.state()["clients"]                      # GET /api/state
    lab.link("wan-seattle", state="down")       # POST /api/links/wan-seattle
    call = lab.call("carol@contoso.com", "2065550100")["id"]
    for event_id, record in lab.events(since=0): ...   # the SSE stream, until the lab stops

A refusal (4xx) raises `ControlRefused` with the lab's error message; a lab that cannot be
reached (or answers something that is not the API) raises `ControlUnreachable`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8765"
DEFAULT_TIMEOUT_S = 10.0


class ControlRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlUnreachable(Exception):
    pass


class ControlClient:
    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme != "http" or not parsed.netloc:
            raise ControlUnreachable(f"bad control URL {url!r}: expected http://HOST:PORT")

    # --- the endpoints ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return self.request("GET", "/api/state")

    def addresses(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/addresses")

    def link(self, name: str, **body: Any) -> dict[str, Any]:
        """state="down"|"up"|"blackhole", or latency="80ms", jitter=..., loss="5%"."""
        return self.request("POST", f"/api/links/{_segment(name)}", body)

    def call(self, caller: str, callee: str, pstn: str | None = None) -> dict[str, Any]:
        body = {"from": caller, "to": callee, **({"pstn": pstn} if pstn else {})}
        return self.request("POST", "/api/calls", body)

    def hangup(self, call_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/api/calls/{_segment(call_id)}")

    def restart(self, user: str) -> dict[str, Any]:
        return self.request("POST", f"/api/clients/{_segment(user)}/restart")

    def sync(self, sba: str) -> dict[str, Any]:
        return self.request("POST", f"/api/sba/{_segment(sba)}/sync")

    def time(self, **body: Any) -> dict[str, Any]:
        """pace=N, paused=True|False, step=True."""
        return self.request("POST", "/api/time", body)

    def stop(self) -> dict[str, Any]:
        return self.request("POST", "/api/stop")

    def events(self, since: int | None = None, *, timeout: float | None = None) -> Iterator[tuple[str, Any]]:
        """("record", {...}) per event record, ("dropped", n) when records were lost; ends when
        the lab stops. `timeout`: wall seconds to wait for the next line (None: for ever), then
        ControlUnreachable."""
        query = "" if since is None else f"?since={since}"
        response = self._open(urllib.request.Request(self.url + "/api/events" + query), timeout=timeout)
        with response:
            messages = SseMessages()
            for raw in _lines(response, self.url):
                message = messages.feed(raw)
                if message is None:
                    continue
                kind, payload = message
                if kind == "stopped":
                    return
                yield ("dropped", payload["dropped"]) if kind == "dropped" else ("record", payload)

    # --- HTTP -------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"} if data else {})
        with self._open(request, timeout=self.timeout) as response:
            try:
                raw = response.read()
            except OSError as err:
                raise ControlUnreachable(f"the lab at {self.url} stopped answering: {err}") from None
            return self._json(raw, response.status)

    def _open(self, request: urllib.request.Request, *, timeout: float | None) -> Any:
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            with err:
                answer = self._json(err.read(), err.code)
            message = answer.get("error") if isinstance(answer, dict) else None
            raise ControlRefused(err.code, message or f"HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ControlUnreachable(f"cannot reach the lab at {self.url}: {reason}") from None

    def _json(self, raw: bytes, status: int) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise ControlUnreachable(f"{self.url} answered {status} with something that is not the "
                                     "control API (not JSON)") from None


class SseMessages:
    """The event stream's lines -> its messages: `feed` each line; a blank line ending a message
    returns (kind, its JSON data), kind "message" (an event record), "dropped" or "stopped"."""

    def __init__(self) -> None:
        self.kind: str = "message"
        self.data: list[str] = []

    def feed(self, raw: bytes) -> tuple[str, Any] | None:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("event:"):
            self.kind = line[6:].strip()
        elif line.startswith("data:"):
            self.data.append(line[5:].strip())
        elif not line and self.data:
            message = (self.kind, json.loads("\n".join(self.data)))
            self.kind, self.data = "message", []
            return message
        return None


def _lines(response: Any, url: str) -> Iterator[bytes]:
    try:
        yield from response
    except OSError as err:  # a read timeout or a reset
        raise ControlUnreachable(f"the event stream of {url} broke off: {err}") from None


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="@")

