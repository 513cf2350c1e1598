"""The one structured event log every node writes to.

DESIGN.md: everything a node does is an event (structlog style: a dotted name plus
key-value fields, never a sentence). Reports, ladders, pcap and the live view are all
views of `EventLog.records`. Timestamps come from the clock the log is given — the
virtual clock on the sim network — so one seed gives one byte-identical log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO

import structlog

Event = dict[str, Any]


class EventLog:
    """Collects events as dicts: {"t": seconds, "event": "dotted.name", **fields}."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0) -> None:
        self.clock = clock
        self.records: list[Event] = []
        self._subscribers: list[Callable[[Event], None]] = []

    def logger(self, **context: Any) -> structlog.typing.FilteringBoundLogger:
        """A structlog logger bound to `context` (typically node=...) that writes here."""
        return structlog.wrap_logger(
            None,
            processors=[self._record],
            wrapper_class=structlog.BoundLogger,
            context_class=dict,
            cache_logger_on_first_use=False,
        ).bind(**context)

    def emit(self, event: str, **fields: Any) -> Event:
        record: Event = {"t": round(self.clock(), 6), "event": event, **fields}
        self.records.append(record)
        if self._subscribers:
            for subscriber in self._subscribers:
                subscriber(record)
        return record

    def _append(self, record: Event) -> None:
        """`emit` for a record a hot caller built itself ({"t": round(clock(), 6), "event": ...}
        first): one call and one dict per event instead of two."""
        self.records.append(record)
        if self._subscribers:
            for subscriber in self._subscribers:
                subscriber(record)

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

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

    def _record(self, _logger: Any, _method: str, event_dict: dict[str, Any]) -> Any:
        name = event_dict.pop("event")
        self.emit(name, **event_dict)
        raise structlog.DropEvent
