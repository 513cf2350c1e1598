"""The one structured event log every node writes to.

Everything a node does is an event: a dotted name from the catalogue (simulator/event_catalogue.py,
listed in docs/events.md) plus key-value fields, never a sentence. Reports, ladders, pcap and the
live view are all views of `EventLog.records`. Timestamps come from the clock the log is given (the
virtual clock on the sim network), so one seed gives one byte-identical log.

There is one way in: `EventLog.logger(**context)` gives an `EventLogger` bound to `context`
(typically node=...), and `logger.info("dotted.name", **fields)` appends
{"t": seconds, "event": "dotted.name", **context, **fields}. A strict log (`strict=True`, or the
environment variable DRLAB_STRICT_EVENTS=1) refuses a name or a field the catalogue does not list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TextIO

from simulator.event_catalogue import CATALOGUE

Event = dict[str, Any]

STRICT_ENV = "DRLAB_STRICT_EVENTS"


class UnknownEvent(ValueError):
    """A strict log was given an event name, or a field of it, that the catalogue does not list."""


class EventLog:
    """Collects events as dicts: {"t": seconds, "event": "dotted.name", **fields}."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0, *, strict: bool | None = None) -> None:
        self.clock = clock
        self.records: list[Event] = []
        self.strict = os.environ.get(STRICT_ENV) == "1" if strict is None else strict
        self._subscribers: list[Callable[[Event], None]] = []

    def logger(self, **context: Any) -> EventLogger:
        """An emitter whose events carry `context` (e.g. node="sbc1") before their own fields."""
        return (CheckedEventLogger if self.strict else EventLogger)(self, context)

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

    def append(self, record: Event) -> None:
        """Add a record written elsewhere (another process of the lab, a lab attached to), as it is."""
        self.records.append(record)
        for subscriber in self._subscribers:
            subscriber(record)

    def select(self, prefix: str = "", **match: Any) -> list[Event]:
        """Events whose name starts with `prefix` and whose fields equal `match`."""
        return [
            r
            for r in self.records
            if r["event"].startswith(prefix) and all(r.get(k) == v for k, v in match.items())
        ]

    def write_jsonl(self, stream: TextIO) -> None:
        for record in self.records:
            stream.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")


class EventLogger:
    """Writes events into one EventLog with a fixed context. The call shape is structlog's
    (`log.info("dotted.name", key=value)`); the level is not recorded, so `warning` and `error`
    are the same call, kept for the reader of the call site. Built for the hot path: every SIP
    message sent and received is one `info` and one record dict."""

    __slots__ = ("_log", "_context")

    def __init__(self, log: EventLog, context: dict[str, Any]) -> None:
        self._log = log
        self._context = context

    def info(self, event: str, **fields: Any) -> None:
        log = self._log
        record = {"t": round(log.clock(), 6), "event": event, **self._context, **fields}
        log.records.append(record)
        if log._subscribers:
            for subscriber in log._subscribers:
                subscriber(record)

    warning = error = info


class CheckedEventLogger(EventLogger):
    """An EventLogger that raises UnknownEvent for a name or field the catalogue does not list."""

    __slots__ = ()

    def info(self, event: str, **fields: Any) -> None:
        spec = CATALOGUE.get(event)
        if spec is None:
            raise UnknownEvent(f"event {event!r} is not in the catalogue (simulator/event_catalogue.py)")
        unknown = sorted((self._context.keys() | fields.keys()).difference(spec.fields))
        if unknown:
            raise UnknownEvent(f"event {event!r} has no field {', '.join(unknown)} in the catalogue "
                               "(simulator/event_catalogue.py)")
        super().info(event, **fields)

    warning = error = info
