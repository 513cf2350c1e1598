"""report.html: one self-contained page (inline CSS, inline SVG, a few lines of inline JS; no fetches).

Sections, all built from the event stream (plus the step verdicts):
- the verdict, the steps and the failover metrics;
- a state chart: one row per client, coloured by online / appliance / offline over virtual time,
  with every link event drawn as a vertical line;
- a SIP ladder per call, every leg of it (`_join_legs`: B2BUAs start a new Call-ID per leg):
  columns are nodes, arrows are messages labelled with method or status; clicking an arrow shows
  the full message text. A message that was sent and never arrived ends in a red cross;
- the timeline (the same lines the console printed).
"""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

from simulator.report.result import RunResult
from simulator.report.timeline import format_time, timeline

STATE_COLOURS = {"online": "#2e9d4f", "appliance": "#e0a100", "offline": "#c62828"}
MAX_LADDERS = 60

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
.passed{color:#2e7d32;font-weight:bold}.failed{color:#c62828;font-weight:bold}.skipped{color:#888}
.mono,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
pre.msg{background:#f6f6f6;border:1px solid #ddd;padding:6px;white-space:pre-wrap;max-width:70em}
svg text{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px}
g.m{cursor:pointer}g.m:hover line{stroke-width:3}
.k-link{color:#8e24aa;font-weight:bold}.k-client{color:#00838f}.k-call{color:#2e7d32}.k-gateway{color:#9e7700}
.k-tls,.k-fail{color:#c62828}.k-step{font-weight:bold}.k-route{color:#1565c0}.k-sba{color:#3949ab}
.legend span{display:inline-block;width:1em;height:1em;vertical-align:middle;margin:0 4px 0 12px}
"""

_JS = """
function showMsg(id){var e=document.getElementById(id);if(!e)return;
 var box=e.closest('.ladder').querySelector('.shown');box.textContent=e.textContent;
 box.hidden=false;box.scrollIntoView({block:'nearest'});}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _address_names(records: list[dict[str, Any]]) -> dict[str, str]:
    """IP address -> node name, learned from the SIP events (ports of clients are ephemeral)."""
    names: dict[str, str] = {}
    for r in records:
        if r["event"] == "sip.sent" and r.get("src"):
            names.setdefault(r["src"].rpartition(":")[0], r["node"])
        elif r["event"] == "sip.received" and r.get("dst"):
            names.setdefault(r["dst"].rpartition(":")[0], r["node"])
    return names


def _label(r: dict[str, Any]) -> str:
    summary = str(r.get("summary") or "")
    first = summary.split(" ", 1)
    if first and first[0].isdigit():
        return summary  # "200 OK"
    method = first[0] if first else "?"
    cseq = str(r.get("cseq") or "")
    return f"{method}" if cseq.endswith(method) or not cseq else f"{method} ({cseq})"


def _ladder(call_id: str, msgs: list[dict[str, Any]], names: dict[str, str], receivers: set[str],
            index: int) -> str:
    received = defaultdict(int)
    for r in msgs:
        if r["event"] == "sip.received":
            received[(r["src"], r["dst"], r["message"])] += 1
    arrows = []  # (t, from_node, to_node, record, lost)
    for r in msgs:
        key = (r["src"], r["dst"], r["message"])
        dst_node = names.get(r["dst"].rpartition(":")[0], r["dst"])
        if r["event"] == "sip.sent":
            if received[key]:
                received[key] -= 1
                lost = False
            else:
                lost = dst_node in receivers  # the receiver logs what it gets, and never got this
            arrows.append((r["t"], r["node"], dst_node, r, lost))
    for r in msgs:  # received messages whose sender does not log: drawn from the address
        key = (r["src"], r["dst"], r["message"])
        if r["event"] == "sip.received" and received[key] > 0:
            received[key] -= 1
            arrows.append((r["t"], names.get(r["src"].rpartition(":")[0], r["src"]), r["node"], r, False))
    arrows.sort(key=lambda a: a[0])
    columns: list[str] = []
    for _, a, b, _, _ in arrows:
        for n in (a, b):
            if n not in columns:
                columns.append(n)
    col_w, top, row_h, left = 170, 40, 24, 90
    width = left + col_w * max(len(columns), 1)
    height = top + row_h * (len(arrows) + 1)
    x = {n: left + col_w * i + col_w // 2 for i, n in enumerate(columns)}
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="SIP ladder for call {_e(call_id)}">',
           '<defs><marker id="ah" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
           '<path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>']
    for n, cx in x.items():
        svg.append(f'<text x="{cx}" y="16" text-anchor="middle" font-weight="bold">{_e(n)}</text>')
        svg.append(f'<line x1="{cx}" y1="24" x2="{cx}" y2="{height - 8}" stroke="#bbb" stroke-dasharray="4 3"/>')
    texts = []
    for i, (t, a, b, r, lost) in enumerate(arrows):
        y = top + row_h * i + 12
        mid = f"c{index}m{i}"
        x1, x2 = x[a], x[b]
        colour = "#c62828" if lost else ("#1565c0" if str(r.get("summary", "")).split(" ")[0].isdigit() else "#333")
        end_x = x2 if not lost else x1 + (x2 - x1) * 0.8
        label = _label(r) + (" (lost)" if lost else "")
        svg.append(f'<g class="m" onclick="showMsg(\'{mid}\')"><title>{_e(format_time(t))} {_e(r.get("summary", ""))}'
                   f' [{_e(r.get("transport", ""))}] {_e(r["src"])} → {_e(r["dst"])}</title>')
        svg.append(f'<text x="4" y="{y + 4}" fill="#888">{_e(format_time(t))}</text>')
        if x1 == x2:  # a node talking to itself (should not happen): a short loop
            svg.append(f'<path d="M{x1},{y} h30 v8 h-30" fill="none" stroke="{colour}" marker-end="url(#ah)"/>')
        else:
            svg.append(f'<line x1="{x1}" y1="{y}" x2="{end_x:.0f}" y2="{y}" stroke="{colour}" stroke-width="1.5"'
                       + ("" if lost else ' marker-end="url(#ah)"') + "/>")
        if lost:
            svg.append(f'<text x="{end_x:.0f}" y="{y + 4}" text-anchor="middle" fill="#c62828" font-size="14">✕</text>')
        svg.append(f'<text x="{(x1 + x2) / 2:.0f}" y="{y - 4}" text-anchor="middle" fill="{colour}">{_e(label)}</text>')
        svg.append("</g>")
        texts.append(f'<pre class="msg" id="{mid}" hidden>{_e(r["message"])}</pre>')
    svg.append("</svg>")
    return (f'<div class="ladder"><h3 class="mono">Call-IDs: {_e(call_id)}</h3>' + "".join(svg)
            + '<pre class="msg shown" hidden></pre>' + "".join(texts) + "</div>")


LEG_JOIN_S = 2.0  # a B2BUA places its outgoing leg within this long of receiving the incoming one


def _join_legs(calls: dict[str, list[dict[str, Any]]], invite_calls: list[str]) -> list[list[str]]:
    """Group Call-IDs into calls: B2BUAs (proxy, SBC, SBA) start a new Call-ID per leg.

    A leg whose initial INVITE was sent by node N at time t belongs to the call whose leg N last
    received an initial INVITE from, at most LEG_JOIN_S before t. A heuristic over events alone:
    two calls through one node in the same instant could be joined wrongly (the pcap has all).
    """
    first_sent: dict[str, tuple[float, str]] = {}
    first_received: dict[str, tuple[float, str]] = {}
    for cid in invite_calls:
        for r in calls[cid]:
            initial = str(r.get("summary", "")).startswith("INVITE ") and ";tag=" not in _to_header(r["message"])
            if not initial:
                continue
            if r["event"] == "sip.sent":
                first_sent.setdefault(cid, (r["t"], r["node"]))
            else:
                first_received.setdefault(cid, (r["t"], r["node"]))
    parent = {cid: cid for cid in invite_calls}

    def root(cid: str) -> str:
        while parent[cid] != cid:
            cid = parent[cid]
        return cid

    for cid, (t, sender) in first_sent.items():
        best = None
        for other, (tr, receiver) in first_received.items():
            if other != cid and receiver == sender and t - LEG_JOIN_S <= tr <= t and (best is None or tr > best[0]):
                best = (tr, other)
        if best is not None:
            parent[root(cid)] = root(best[1])
    groups: dict[str, list[str]] = {}
    for cid in invite_calls:
        groups.setdefault(root(cid), []).append(cid)
    return list(groups.values())


def _to_header(message: str) -> str:
    for line in message.split("\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() in ("to", "t"):
            return value
    return ""


def _call_groups(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """The SIP records that carry a Call-ID, and the Call-IDs of each call with an INVITE, its
    legs joined (`_join_legs`)."""
    calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sip_records = [r for r in records if r["event"] in ("sip.sent", "sip.received") and r.get("call_id")]
    for r in sip_records:
        calls[r["call_id"]].append(r)
    invite_calls = [cid for cid, msgs in calls.items()
                    if any(str(m.get("cseq", "")).endswith("INVITE") for m in msgs)]
    return sip_records, _join_legs(calls, invite_calls)


def call_legs(records: list[dict[str, Any]], call_id: str) -> list[str]:
    """The Call-IDs of every leg of the call that has the leg `call_id` (just it when none is known)."""
    return next((group for group in _call_groups(records)[1] if call_id in group), [call_id])


def _ladders(records: list[dict[str, Any]]) -> str:
    names = _address_names(records)
    receivers = {r["node"] for r in records if r["event"] == "sip.received"}
    sip_records, groups = _call_groups(records)
    if not groups:
        return "<p>No calls in this run.</p>"
    parts = []
    for i, group in enumerate(groups[:MAX_LADDERS]):
        members = set(group)
        msgs = [r for r in sip_records if r["call_id"] in members]  # in the order they happened
        parts.append(_ladder(", ".join(group), msgs, names, receivers, i))
    if len(groups) > MAX_LADDERS:
        parts.append(f"<p>{len(groups) - MAX_LADDERS} more calls not drawn (see capture.pcap).</p>")
    return ("<p>One ladder per call, every leg of it (each B2BUA starts a new Call-ID). "
            "Click an arrow to see the message as the node sent it.</p>" + "".join(parts))


def _state_chart(records: list[dict[str, Any]]) -> str:
    end = max((r["t"] for r in records), default=0.0) or 1.0
    rows: dict[str, list[tuple[float, str, str]]] = {}
    for r in records:
        if r["event"] == "client.state":
            rows.setdefault(str(r.get("user") or r.get("node")), []).append(
                (r["t"], str(r.get("state")), str(r.get("registrar") or "")))
    links = [r for r in records if r["event"].startswith("link.")]
    if not rows:
        return "<p>No client state changes in this run.</p>"
    left, width, row_h, top = 190, 900, 26, 30
    height = top + row_h * len(rows) + 30
    scale = width / end
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + width + 80} {height}" width="100%" style="max-width:{left + width + 80}px" '
           'role="img" aria-label="client registration state over time">']
    for i, (user, changes) in enumerate(rows.items()):
        y = top + i * row_h
        svg.append(f'<text x="4" y="{y + 16}">{_e(user)}</text>')
        for j, (t, state, where) in enumerate(changes):
            t_next = changes[j + 1][0] if j + 1 < len(changes) else end
            w = max((t_next - t) * scale, 1)
            colour = STATE_COLOURS.get(state, "#999")
            svg.append(f'<rect x="{left + t * scale:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                       f'fill="{colour}"><title>{_e(user)}: {_e(state)} {_e(where)} from {format_time(t)}'
                       f'</title></rect>')
    for r in links:
        lx = left + r["t"] * scale
        svg.append(f'<line x1="{lx:.1f}" y1="{top - 6}" x2="{lx:.1f}" y2="{height - 24}" stroke="#8e24aa" '
                   f'stroke-width="2"><title>{_e(r["event"])} {_e(r.get("link", ""))} at {format_time(r["t"])}'
                   '</title></line>')
        svg.append(f'<text x="{lx + 3:.1f}" y="{top - 10}" fill="#8e24aa">{_e(r.get("link", ""))} '
                   f'{_e(r["event"][5:])}</text>')
    for k in range(6):  # time axis
        t = end * k / 5
        svg.append(f'<text x="{left + t * scale:.0f}" y="{height - 6}" text-anchor="middle" fill="#666">'
                   f'{_e(format_time(t))}</text>')
    svg.append("</svg>")
    legend = "".join(f'<span style="background:{c}"></span>{s}' for s, c in STATE_COLOURS.items())
    return f'<div class="legend">{legend}<span style="background:#8e24aa;width:3px"></span>link event</div>' \
        + "".join(svg)


def render_html(result: RunResult, records: list[dict[str, Any]]) -> str:
    verdict = "passed" if result.passed else "failed"
    steps = "".join(
        f'<tr><td class="{_e(s.status)}">{_e(s.status)}</td><td class="mono">{_e(format_time(s.t_virtual))}</td>'
        f'<td>{_e(s.name)}</td><td class="mono">{_e(str(s.position or ""))}</td><td>{_e(s.detail)}</td></tr>'
        for s in result.steps)
    metrics = "".join(f"<tr><th>{_e(k)}</th><td class='mono'>{_e(v)}</td></tr>" for k, v in result.metrics.items())
    lines = "".join(
        f'<tr><td class="mono">{_e(format_time(ln.t))}</td><td class="mono">{_e(ln.node)}</td>'
        f'<td class="k-{_e(ln.kind)}">{_e(ln.text)}</td></tr>' for ln in timeline(records))
    error = f'<p class="failed">Run error: {_e(result.error)}</p>' if result.error else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>drlab — {_e(result.scenario)}</title>
<style>{_CSS}</style><script>{_JS}</script></head><body>
<h1>drlab run: {_e(result.scenario)} — <span class="{verdict}">{verdict.upper()}</span></h1>
<p>seed {_e(result.seed)} · {len(records)} events · times are virtual (H:MM:SS.mmm from the start)</p>
{error}
<h2>Steps</h2><table><tr><th>status</th><th>t</th><th>step</th><th>where</th><th>detail</th></tr>{steps}</table>
<h2>Failover metrics</h2><table>{metrics}</table>
<h2>Client registration over time</h2>{_state_chart(records)}
<h2>SIP ladders</h2>{_ladders(records)}
<h2>Timeline</h2><table>{lines}</table>
</body></html>
"""
