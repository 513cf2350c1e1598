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
import re
from collections import defaultdict
from typing import Any

from simulator.report.calls import address_names
from simulator.report.result import RunResult
from simulator.report.timeline import format_time, timeline

STATE_COLOURS = {"online": "#2e9d4f", "appliance": "#e0a100", "offline": "#c62828"}
MAX_LADDERS = 60

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
tr.row-failed{background:#fde2e2;outline:2px solid #c62828}
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


def _address_names(records: list[dict[str, Any]], addresses: dict[str, Any]) -> dict[str, str]:
    """IP address or host name -> node name: the run's address map first, then the SIP events
    (ports of clients are ephemeral)."""
    names: dict[str, str] = {}
    for node, entry in addresses.items():
        names[str(entry.get("host"))] = node
        names[str(entry.get("address"))] = node
    for address, node in address_names(records).items():
        names.setdefault(address, node)
    return names


def _label(r: dict[str, Any]) -> str:
    summary = str(r.get("summary") or str(r.get("cseq") or "").rpartition(" ")[2])
    first = summary.split(" ", 1)
    if first and first[0].isdigit():
        return summary  # "200 OK"
    method = first[0] if first else "?"
    cseq = str(r.get("cseq") or "")
    return f"{method}" if cseq.endswith(method) or not cseq else f"{method} ({cseq})"


def _ladder(title: str, ids: str, msgs: list[dict[str, Any]], names: dict[str, str], receivers: set[str],
            index: int) -> str:
    """One ladder: `msgs` are sip.sent / sip.received records, and sip.transport_error ones (a
    request that could not leave: drawn as a crossed arrow to where it was meant to go)."""
    received = defaultdict(int)
    for r in msgs:
        if r["event"] == "sip.received":
            received[(r["src"], r["dst"], r["message"])] += 1
    arrows = []  # (t, from_node, to_node, record, lost)
    for r in msgs:
        dst_node = names.get(str(r.get("dst")).rpartition(":")[0], str(r.get("dst")))
        if r["event"] == "sip.transport_error":
            arrows.append((r["t"], r["node"], dst_node, r, True))
            continue
        key = (r["src"], r["dst"], r["message"])
        if r["event"] == "sip.sent":
            if received[key]:
                received[key] -= 1
                lost = False
            else:
                lost = dst_node in receivers  # the receiver logs what it gets, and never got this
            arrows.append((r["t"], r["node"], dst_node, r, lost))
    for r in msgs:  # received messages whose sender does not log: drawn from the address
        if r["event"] != "sip.received":
            continue
        key = (r["src"], r["dst"], r["message"])
        if received[key] > 0:
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
           f'role="img" aria-label="SIP ladder: {_e(title)}">',
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
        failed = r["event"] == "sip.transport_error"
        label = f"{_label(r)} ✕ {r.get('reason')}" if failed else _label(r) + (" (lost)" if lost else "")
        svg.append(f'<g class="m" onclick="showMsg(\'{mid}\')"><title>{_e(format_time(t))} {_e(r.get("summary", ""))}'
                   f' [{_e(r.get("transport", ""))}] {_e(r.get("src", r["node"]))} → {_e(r["dst"])}</title>')
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
        text = f"{r.get('cseq')} not sent: {r.get('reason')}\n{r.get('detail', '')}" if failed else r["message"]
        texts.append(f'<pre class="msg" id="{mid}" hidden>{_e(text)}</pre>')
    svg.append("</svg>")
    return (f'<div class="ladder"><h3>{_e(title)}</h3><p class="mono">{_e(ids)}</p>' + "".join(svg)
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
            initial = str(r.get("summary", "")).startswith("INVITE ") and ";tag=" not in _header(r["message"], ("to", "t"))
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


_URI_USER = re.compile(r"sips?:([^@;>\s]+)@([^;>\s]+)")


def _party(header: str) -> str:
    """A From or To header as a person reads it: the number, or user@domain."""
    match = _URI_USER.search(header)
    if match is None:
        return header.strip() or "?"
    user, host = match.groups()
    return user if user.lstrip("+").isdigit() else f"{user}@{host}"


def _header(message: str, names: tuple[str, ...]) -> str:
    for line in message.split("\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        if name.strip().lower() in names:
            return value
    return ""


def _step_at(steps: list[tuple[float, str]], t: float) -> str | None:
    """The scenario step running at `t` (the last one started by then)."""
    running = [name for started, name in steps if started <= t + 1e-9]
    return running[-1] if running else None


def _call_title(msgs: list[dict[str, Any]], steps: list[tuple[float, str]], legs: int) -> str:
    first = next((r for r in msgs if str(r.get("summary", "")).startswith("INVITE ")), msgs[0])
    parties = f"{_party(_header(first['message'], ('from', 'f')))} → {_party(_header(first['message'], ('to', 't')))}"
    step = _step_at(steps, first["t"])
    where = f"step “{step}”" if step else f"at {format_time(first['t'])}"
    return f"Call {parties}, {where}" + (f" ({legs} legs)" if legs > 1 else "")


def _steps(records: list[dict[str, Any]]) -> list[tuple[float, str]]:
    return [(r["t"], str(r.get("step"))) for r in records if r["event"] == "step.started"]


def _ladders(records: list[dict[str, Any]], addresses: dict[str, Any]) -> str:
    names = _address_names(records, addresses)
    receivers = {r["node"] for r in records if r["event"] == "sip.received"}
    sip_records, groups = _call_groups(records)
    if not groups:
        return "<p>No calls in this run.</p>"
    steps = _steps(records)
    parts = []
    for i, group in enumerate(groups[:MAX_LADDERS]):
        members = set(group)
        msgs = [r for r in sip_records if r["call_id"] in members]  # in the order they happened
        parts.append(_ladder(_call_title(msgs, steps, len(group)), "Call-IDs: " + ", ".join(group),
                             msgs, names, receivers, i))
    if len(groups) > MAX_LADDERS:
        parts.append(f"<p>{len(groups) - MAX_LADDERS} more calls not drawn (see capture.pcap).</p>")
    return ("<p>One ladder per call, every leg of it (each B2BUA starts a new Call-ID). "
            "Click an arrow to see the message as the node sent it.</p>" + "".join(parts))


HEALTH_COLOURS = {"active": "#2e9d4f", "demoted": "#e0a100", "inactive": "#c62828", "disabled": "#777"}
LINK_MARK_COLOURS = {"down": "#c62828", "blackhole": "#222", "up": "#2e7d32", "impaired": "#8e24aa"}
#: tick spacings for the time axis, seconds: the first that gives at most MAX_TICKS ticks
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_TICKS = 10
#: the chart runs this share of the run past its last event, so the final states are visible
CHART_TAIL = 0.03


def _round_ticks(end: float) -> list[float]:
    step = next((s for s in TICK_STEPS if end / s <= MAX_TICKS), TICK_STEPS[-1])
    return [k * step for k in range(int(end // step) + 1)]


def _tick_label(t: float) -> str:
    minutes, seconds = divmod(int(round(t)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _lanes(records: list[dict[str, Any]]) -> tuple[dict[str, list[tuple[float, str, str]]],
                                                  dict[str, list[tuple[float, str, str]]]]:
    """Client rows (user -> [(t, state, registrar)]) and gateway rows (FQDN -> [(t, health, by)]):
    the cloud's proxies share one view of a gateway's health, so the last change any proxy logs holds."""
    clients: dict[str, list[tuple[float, str, str]]] = {}
    gateways: dict[str, list[tuple[float, str, str]]] = {}
    for r in records:
        if r["event"] == "client.state":
            clients.setdefault(str(r.get("user") or r.get("node")), []).append(
                (r["t"], str(r.get("state")), str(r.get("registrar") or "")))
        elif r["event"] == "gateway.health":
            lane = gateways.setdefault(str(r.get("gateway")), [])
            if not lane or lane[-1][1] != r.get("state"):
                lane.append((r["t"], str(r.get("state")), str(r.get("node") or "")))
    return clients, gateways


#: how far before a client leaves or returns to the cloud its ladder starts: its keepalive
#: detection time (30 s) and a little more, so the failed probes that decided it are in it
REGISTRATION_LEAD_S = 35.0
#: and how long after it: the answers still on their way
REGISTRATION_TAIL_S = 1.0
MAX_REGISTRATION_LADDERS = 6
_REGISTRATION_METHODS = ("OPTIONS", "REGISTER")


def _registration_ladders(records: list[dict[str, Any]], addresses: dict[str, Any]) -> str:
    """How a client left the cloud for an SBA and came back: its keepalives and REGISTERs (and the
    ones that could not even be sent) from a little before it went offline until it registered."""
    moves: dict[tuple[str, float], list[tuple[str, str, float, float, str]]] = {}  # clients that moved together
    previous: dict[str, tuple[float, str]] = {}
    for r in records:
        if r["event"] != "client.state":
            continue
        user, state = str(r.get("user")), str(r.get("state"))
        before = previous.get(user)
        previous[user] = (r["t"], state)
        if before is None:
            continue
        registrar = r.get("registrar") or ""
        if state == "appliance":
            left = before[0] if before[1] == "offline" else r["t"]
            moves.setdefault(("leaves", round(r["t"])), []).append(
                (str(r["node"]), user, left - REGISTRATION_LEAD_S, r["t"], f"leaves the cloud and registers at {registrar}"))
        elif state == "online" and before[1] == "appliance":
            moves.setdefault(("returns", round(r["t"])), []).append(
                (str(r["node"]), user, r["t"] - REGISTRATION_LEAD_S, r["t"], f"returns to the cloud ({registrar})"))
    if not moves:
        return "<p>No client moved between the cloud and an SBA in this run.</p>"
    shown = []  # one ladder per move of a group of clients: the first of them; the others alike
    for group in moves.values():
        node, user, start, end, what = group[0]
        others = f" (so do {', '.join(g[1] for g in group[1:])})" if len(group) > 1 else ""
        shown.append((node, user, start, end, f"{user} {what}{others}"))
    names = _address_names(records, addresses)
    receivers = {r["node"] for r in records if r["event"] == "sip.received"}
    parts = []
    for i, (node, _user, start, end, title) in enumerate(shown[:MAX_REGISTRATION_LADDERS]):
        window = [r for r in records if start <= r["t"] <= end + REGISTRATION_TAIL_S
                  and r["event"] in ("sip.sent", "sip.received", "sip.transport_error")
                  and str(r.get("cseq", "")).endswith(_REGISTRATION_METHODS)]
        call_ids = {r.get("call_id") for r in window if r.get("node") == node}
        # the client's own records, and the far end's of the same requests (to tell arrived from lost)
        msgs = [r for r in window if r.get("call_id") in call_ids and (r.get("node") == node or "src" in r)]
        if msgs:
            parts.append(_ladder(title, f"{format_time(start)} to {format_time(end)}, keepalives and REGISTERs",
                                 msgs, names, receivers, MAX_LADDERS + i))
    more = (f"<p>{len(shown) - MAX_REGISTRATION_LADDERS} more moves not drawn.</p>"
            if len(shown) > MAX_REGISTRATION_LADDERS else "")
    return ("<p>Each client's keepalive probes and REGISTERs around its move: the probes to the cloud that "
            "fail, then the REGISTER at the SBA (and back). Click an arrow to see the message.</p>"
            + "".join(parts) + more)


def _state_chart(records: list[dict[str, Any]]) -> str:
    clients, gateways = _lanes(records)
    if not clients:
        return "<p>No client state changes in this run.</p>"
    run_end = max((r["t"] for r in records), default=0.0) or 1.0
    end = run_end * (1 + CHART_TAIL)
    rows = [("client", name, changes, STATE_COLOURS) for name, changes in clients.items()]
    rows += [("gateway", name, changes, HEALTH_COLOURS) for name, changes in gateways.items()]
    left, width, row_h, top = 220, 900, 26, 44
    lane_gap = 14 if gateways else 0
    height = top + row_h * len(rows) + lane_gap + 34
    scale = width / end
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + width + 90} {height}" width="100%" '
           f'style="max-width:{left + width + 90}px" role="img" '
           'aria-label="client registration state and gateway health over time">']
    y = top
    for i, (kind, name, changes, colours) in enumerate(rows):
        if kind == "gateway" and rows[i - 1][0] == "client":
            y += lane_gap
            svg.append(f'<text x="4" y="{y - 3}" fill="#555">gateway health, as the cloud sees it</text>')
        svg.append(f'<text x="4" y="{y + 16}">{_e(name)}</text>')
        for j, (t, value, where) in enumerate(changes):
            t_next = changes[j + 1][0] if j + 1 < len(changes) else end
            w = max((t_next - t) * scale, 2)
            what = f"{value} at {where}" if kind == "client" and where else value
            svg.append(f'<rect x="{left + t * scale:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                       f'fill="{colours.get(value, "#999")}"><title>{_e(name)}: {_e(what)} from {format_time(t)}'
                       f'</title></rect>')
        y += row_h
    for r in records:
        if not r["event"].startswith("link."):
            continue
        what = r["event"][5:]
        colour = LINK_MARK_COLOURS.get(what, "#8e24aa")
        lx = left + r["t"] * scale
        svg.append(f'<line x1="{lx:.1f}" y1="{top - 14}" x2="{lx:.1f}" y2="{y}" stroke="{colour}" '
                   f'stroke-width="2"><title>link {_e(r.get("link", ""))} {_e(what)} at {format_time(r["t"])}'
                   '</title></line>')
        svg.append(f'<text x="{lx + 3:.1f}" y="{top - 18}" fill="{colour}" font-weight="bold">'
                   f'{_e(r.get("link", ""))} {_e(what)}</text>')
    end_x = left + run_end * scale
    svg.append(f'<line x1="{end_x:.1f}" y1="{top - 6}" x2="{end_x:.1f}" y2="{y}" stroke="#444" stroke-dasharray="3 3">'
               f'<title>the run ends at {format_time(run_end)}</title></line>')
    for t in _round_ticks(run_end):  # time axis at round times
        tx = left + t * scale
        svg.append(f'<line x1="{tx:.1f}" y1="{y + 2}" x2="{tx:.1f}" y2="{y + 8}" stroke="#666"/>'
                   f'<text x="{tx:.0f}" y="{y + 22}" text-anchor="middle" fill="#666">{_e(_tick_label(t))}</text>')
    svg.append("</svg>")
    legend = "".join(f'<span style="background:{c}"></span>{s}' for s, c in STATE_COLOURS.items())
    legend += "".join(f'<span style="background:{c}"></span>{s}' for s, c in HEALTH_COLOURS.items())
    return (f'<div class="legend">{legend}<span style="background:#c62828;width:3px"></span>link down'
            f'<span style="background:#2e7d32;width:3px"></span>link up</div>' + "".join(svg))


def _quality_table(result: RunResult) -> str:
    """Each call's media as each node received it (CQD verdict [S30], E-model MOS)."""
    received = sorted((q for call in result.calls for q in call["quality"]), key=lambda q: q["t"])
    if not received:
        return "<p>No call carried media.</p>"
    verdicts = {True: ("failed", "poor"), False: ("passed", "good"), None: ("", "unclassified")}
    audio = {q["call_id"]: call.get("audio") for call in result.calls for q in call["quality"]}  # two-way, one-way
    rows = []
    for q in received:
        css, verdict = verdicts[q.get("poor")]
        rtt = "" if q.get("rtt_ms") is None else f"{q['rtt_ms']:.0f}"
        rows.append(f'<tr><td class="mono">{_e(format_time(q["t"]))}</td><td class="mono">{_e(q["node"])}</td>'
                    f'<td class="mono">{_e(q["call_id"])}</td><td>{_e(q["packets_received"])}</td>'
                    f'<td>{q["loss"]:.1%}</td><td>{q["jitter_ms"]:.1f}</td><td>{_e(rtt)}</td>'
                    f'<td>{q["mos"]:.2f}</td><td class="{css}">{verdict}</td>'
                    f'<td>{_e(", ".join(q.get("reasons") or []))}</td><td>{q.get("silent_s") or 0.0:.1f}</td>'
                    f'<td>{_e(audio.get(q["call_id"]) or "")}</td></tr>')
    return ("<table><tr><th>ended</th><th>received at</th><th>call</th><th>packets</th><th>loss</th>"
            "<th>jitter ms</th><th>rtt ms</th><th>MOS</th><th>CQD</th><th>why</th><th>silent at end s</th>"
            "<th>call audio</th></tr>" + "".join(rows) + "</table>")


def render_html(result: RunResult, records: list[dict[str, Any]]) -> str:
    verdict = "passed" if result.passed else "failed"
    steps = "".join(
        f'<tr class="row-{_e(s.status)}"><td class="{_e(s.status)}">{_e(s.status)}</td><td class="mono">{_e(format_time(s.t_virtual))}</td>'
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
<h2>Call quality</h2>{_quality_table(result)}
<h2>Client registration and gateway health over time</h2>{_state_chart(records)}
<h2>Registration failover</h2>{_registration_ladders(records, result.addresses)}
<h2>SIP ladders</h2>{_ladders(records, result.addresses)}
<h2>Timeline</h2><table>{lines}</table>
</body></html>
"""
