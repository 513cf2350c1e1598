"""The human timeline: which events matter to a person watching an outage, and how they read.

`describe(record)` turns one event record into a `Line(t, node, kind, text)` or None for events
that are only noise at this level (every SIP message, every net.* detail). The console view
(`TimelinePrinter`, rich) and report.html both use it, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

from simulator.media.quality import audio_flow, flowed_to_the_end

# kind -> rich style
STYLES = {"link": "bold magenta", "client": "cyan", "call": "green", "gateway": "yellow",
          "route": "blue", "sba": "bright_blue", "tls": "red", "sip": "dim", "step": "bold",
          "fail": "bold red", "note": "white", "media": "green"}


#: a call.ended status that is not a SIP code, as words
CALL_END_WORDS = {"bye": "hung up (BYE)", "transferred": "transferred away (REFER)"}


@dataclass(frozen=True)
class Line:
    t: float
    node: str
    kind: str
    text: str


def _fmt_call(r: dict[str, Any]) -> str:
    what = r["event"].split(".", 1)[1]
    parts = [f"call {what}"]
    if r.get("caller") or r.get("callee"):
        parts.append(f"{r.get('caller', '?')} → {r.get('callee', '?')}")
    status = r.get("status")
    if status not in (None, ""):
        parts.append(CALL_END_WORDS.get(str(status), f"status {status}"))
    if r.get("path"):
        path = r["path"]
        parts.append("via " + (" → ".join(path) if isinstance(path, list | tuple) else str(path)))
    if r.get("end_reason"):
        parts.append(f"end {r['end_reason']}" + (f" by {r['ended_by']}" if r.get("ended_by") else ""))
    if r.get("leg"):  # path_lost, media_timeout: which leg, and for how long it was silent
        parts.append(f"{r['leg']} leg" + (f" silent {r['silent_s']:g}s ({r['cause']})" if r.get("silent_s") else ""))
        if r.get("one_way"):
            parts.append("the other leg still has media: one-way audio at this node")
    if what == "bye_failed":
        parts.append(str(r.get("reason") or ""))
    return "  ".join(parts)


def describe_quality(q: dict[str, Any]) -> str:
    """One direction's figures as the timeline shows them."""
    if q.get("packets_received", 0) == 0:
        return "no media received"
    rtt = "?" if q.get("rtt_ms") is None else f"{q['rtt_ms']:.0f}"
    verdict = {True: "POOR", False: "good", None: "unclassified"}[q.get("poor")]
    why = f" ({', '.join(q['reasons'])})" if q.get("reasons") else ""
    silent = "" if flowed_to_the_end(q) else f"; nothing for its last {q['silent_s']:.1f} s"
    return (f"loss {q['loss']:.1%}, jitter {q['jitter_ms']:.1f} ms, rtt {rtt} ms, "
            f"MOS {q['mos']:.2f} → {verdict}{why}{silent}")


def describe_audio(ends: list[dict[str, Any]]) -> str | None:
    """A call's audio in words from its two ends' figures: "one-way audio (carol heard nothing at the end)"."""
    flow = audio_flow(ends)
    if flow is None:
        return None
    deaf = [str(q.get("node")) for q in ends if not flowed_to_the_end(q)]
    words = {"two-way": "two-way audio", "one-way": "one-way audio", "none": "no audio either way"}[flow]
    return words + (f" ({' and '.join(deaf)} heard nothing at the end)" if deaf else "")


def _route(r: dict[str, Any]) -> str:
    """A routing decision as what happened: the gateways to try, the user the number belongs to
    (a call that needs no gateway: to a Teams user, or in from the PSTN to one), or the refusal."""
    user, dialed = r.get("user"), r.get("dialed")
    gateways = r.get("gateways") or []
    reasons = r.get("reasons") or []
    if gateways:
        return f"route {user} dials {dialed} → gateway {', '.join(gateways)}"
    if r.get("refusal"):
        return f"route {user} dials {dialed} → refused: {r['refusal']}"
    found = str(reasons[-1]) if reasons else ""
    if f" is {user}" in found:  # the number is the user's own: a call coming in to them
        return f"route {dialed} → {user} (a call in to a Teams user: no gateway)"
    if " is " in found:  # another Teams user: a call between users
        return f"route {user} dials {dialed} → {found} (a Teams user: no gateway)"
    return f"route {user} dials {dialed} → no route" + (f": {found}" if found else "")


def _attempt(r: dict[str, Any]) -> str:
    """One try of a gateway for a call, and what the proxy did next."""
    gateway, outcome, detail = r.get("gateway"), r.get("outcome"), r.get("detail") or ""
    if outcome == "answered":
        return f"gateway {gateway} took the call ({r.get('status')})"
    if outcome == "failover":
        return f"gateway {gateway}: {detail or r.get('status')}; trying the next gateway"
    if outcome == "final":
        return f"gateway {gateway} answered {r.get('status')}: final, no other gateway is tried"
    return f"gateway {gateway}: {outcome}" + (f", {detail}" if detail else "")


def describe(r: dict[str, Any], verbose: bool = False) -> Line | None:
    name = r["event"]
    node = str(r.get("node") or r.get("host") or "")
    t = r["t"]
    if name.startswith("link."):
        extra = ""
        if name == "link.impaired" and r.get("toward"):
            extra = f" one way: loss={r.get('one_way_loss')} of the packets toward {r['toward']}"
        elif name == "link.impaired":
            extra = f" latency={r.get('latency')} loss={r.get('loss')}"
        elif r.get("reset"):
            extra = f" ({r['reset']} connections reset)"
        return Line(t, r.get("link", ""), "link", f"link {r.get('link')} {name[5:]}{extra}")
    if name == "client.state":
        where = f" at {r['registrar']}" if r.get("registrar") else ""
        return Line(t, node, "client", f"{r.get('user', node)} {r.get('state')}{where}")
    if name.startswith("call."):
        return Line(t, node, "call", _fmt_call(r))
    if name == "media.quality":
        return Line(t, node, "media", f"media received {describe_quality(r)}")
    if name == "media.no_path":
        return Line(t, node, "fail", f"no media path: {r.get('reason')}")
    if name == "client.return_deferred":
        return Line(t, node, "client", f"{r.get('user', node)} stays at the SBA: {r.get('reason')}")
    if name == "gateway.health":
        return Line(t, node, "gateway", f"gateway {r.get('gateway')} {r.get('state')}")
    if name == "route.decision":
        return Line(t, node, "route", _route(r))
    if name == "route.attempt":
        return Line(t, node, "route", _attempt(r))
    if name == "sba.sync":
        ok = "ok" if r.get("ok", True) else "FAILED"
        return Line(t, node, "sba", f"SBA sync {ok}, cache version {r.get('version')}")
    if name == "sba.cdr_upload":
        return Line(t, node, "sba", f"SBA uploaded {r.get('count')} CDRs")
    if name.startswith("tls.") and name != "tls.established":
        why = r.get("detail") or r.get("reason") or ""
        return Line(t, node, "tls", f"TLS refused: {name[4:]} {why}".rstrip())
    if verbose and name in ("sip.timeout", "sip.transport_error"):  # every retry of every probe: noise
        return Line(t, node, "tls" if name == "sip.transport_error" else "sip",
                    f"{name} {r.get('summary') or r.get('reason') or ''}".rstrip())
    if name.startswith("step."):
        kind = "fail" if name == "step.failed" else "step"
        mark = {"step.passed": "✔", "step.failed": "✘", "step.started": "▶"}.get(name, "·")
        detail = f" — {r['detail']}" if r.get("detail") and name != "step.started" else ""
        return Line(t, "scenario", kind, f"{mark} {r.get('step')}{detail}")
    if name == "scenario.note":
        return Line(t, "scenario", "note", str(r.get("text", "")))
    if verbose and name in ("sip.sent", "sip.received"):
        arrow = "→" if name == "sip.sent" else "←"
        peer = r.get("dst") if name == "sip.sent" else r.get("src")
        return Line(t, node, "sip", f"{arrow} {peer} {r.get('summary')}")
    return None


def timeline(records: list[dict[str, Any]], verbose: bool = False) -> list[Line]:
    return [line for r in records if (line := describe(r, verbose)) is not None]


def format_time(t: float) -> str:
    """Virtual seconds as H:MM:SS.mmm (a 7-day outage stays readable)."""
    ms = int(round(t * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}"


def address_table(addresses: dict[str, dict[str, Any]]) -> list[str]:
    """A lab's address map (Lab.address_map) as aligned lines: node, host, address, SIP listeners."""
    rows = [(node, entry["host"], entry["address"],
             "  ".join(f"{transport} {where.rpartition(':')[2]}" for transport, where in entry["sip"].items()))
            for node, entry in addresses.items()]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    return [f"{node:<{widths[0]}}  {host:<{widths[1]}}  {address:<{widths[2]}}  {ports}".rstrip()
            for node, host, address, ports in rows]


class TimelinePrinter:
    """Subscribe to an EventLog and print each interesting event as it happens (times as logged:
    run seconds in the scenario's units, simulator.lab.timescale)."""

    def __init__(self, console: Console | None = None, verbose: bool = False) -> None:
        self.console = console or Console(highlight=False)
        self.verbose = verbose

    def __call__(self, record: dict[str, Any]) -> None:
        line = describe(record, self.verbose)
        if line is None:
            return
        style = STYLES.get(line.kind, "")
        self.console.print(f"[dim]{format_time(line.t)}[/dim] [bold]{escape(line.node):<14}[/bold] "
                           f"[{style}]{escape(line.text)}[/{style}]" if style else escape(line.text))
