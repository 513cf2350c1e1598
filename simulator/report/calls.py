"""Every call of a run, from the event stream: its own path and its record at each node (result.json's "calls").

A call starts at a caller: a Teams client (`call.started`, direction outgoing) or the PSTN carrier
(direction from_pstn). Each B2BUA it crosses (proxy, SBC, SBA) handles it under the Call-ID of the
leg that reached it and places legs with new Call-IDs, which it names in `leg.placed` (the A leg's
Call-ID -> the B leg's); following those links gives the call's own Call-IDs, hence its own hops
(the initial INVITEs sent with them) and its record at every node that handled it (that node's
`call.started` / `call.answered` / `call.ended` under one of them, with the CDR's result code
where the node writes CDRs).

    calls = call_summaries(records)
    calls[0]["path"], calls[0]["end_reason"], calls[0]["records"]   # ["carol", "sip", ...], "media_timeout", [...]

A call's `end_reason` and `ended_by` are those of the node that ended it on its own first (its
record says `ended_by: self`); `quality` holds the call's `media.quality` figures, one per node
and stream that received media (empty when the call carried none), and `audio` says from the two
ends' figures whether it flowed both ways to the end, one way only, or not at all.
"""

from __future__ import annotations

import re
from typing import Any

from simulator.media.quality import audio_flow
from simulator.report.metrics import media_quality

Hop = tuple[str, str, str]  # (sender node, receiver node, Call-ID)
ORIGINS = {"outgoing", "from_pstn"}  # a client's placed call, a carrier's call into an SBC


def address_names(records: list[dict[str, Any]]) -> dict[str, str]:
    """IP address -> the node that sends from it or receives on it."""
    names: dict[str, str] = {}
    for r in records:
        if r["event"] == "sip.sent" and r.get("src"):
            names.setdefault(r["src"].rpartition(":")[0], r["node"])
        elif r["event"] == "sip.received" and r.get("dst"):
            names.setdefault(r["dst"].rpartition(":")[0], r["node"])
    return names


def invite_hops(records: list[dict[str, Any]], window: tuple[float, float] | None = None
                ) -> tuple[list[Hop], set[tuple[str, str]]]:
    """Initial INVITEs sent, as hops in the order sent (by time: a lab whose nodes run in processes
    of their own delivers their records in batches, not in time order), and the (node, Call-ID)
    pairs that received a 2xx to their INVITE; within the time `window` if given."""
    names = address_names(records)
    sent: list[tuple[float, Hop]] = []
    answered: set[tuple[str, str]] = set()
    for r in records:
        if window is not None and not (window[0] <= r["t"] <= window[1]):
            continue
        summary = str(r.get("summary", ""))
        if r["event"] == "sip.sent" and summary.startswith("INVITE ") and ";tag=" not in _header(r["message"], "To"):
            sent.append((r["t"], (r["node"], names.get(r["dst"].rpartition(":")[0], r["dst"]), r.get("call_id"))))
        elif r["event"] == "sip.received" and summary[:1] == "2" and str(r.get("cseq", "")).endswith("INVITE"):
            answered.add((r["node"], r.get("call_id")))
    sent.sort(key=lambda item: item[0])  # stable: records of one time keep their order
    return list(dict.fromkeys(hop for _, hop in sent)), answered


def leg_links(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """A leg's Call-ID -> the Call-IDs of the legs placed for it (by any proxy host that tried)."""
    links: dict[str, list[str]] = {}
    for r in records:
        if r["event"] == "leg.placed":
            links.setdefault(r["call_id"], []).append(r["leg_call_id"])
    return links


def call_ids(links: dict[str, list[str]], call_id: str) -> list[str]:
    """The call's own Call-IDs: its first and, transitively, those of the legs placed for it, a
    generation at a time (the legs placed for the first, then the legs placed for those...)."""
    found = [call_id]
    for parent in found:  # grows as it goes: breadth first
        found.extend(leg for leg in links.get(parent, []) if leg not in found)
    return found


def follow_legs(hops: list[Hop], links: dict[str, list[str]], call_id: str) -> list[Hop]:
    """The hops of one call, those under one of its Call-IDs, in causal order: a leg's hops after
    those of the leg it was placed for (time order holds only within one Call-ID: on the wall
    clock a chain of nodes in processes of their own can forward an INVITE faster than the
    scheduler lets its sender log that it sent it)."""
    rank = {cid: i for i, cid in enumerate(call_ids(links, call_id))}
    return sorted((hop for hop in hops if hop[2] in rank), key=lambda hop: rank[hop[2]])


def path_of(hops: list[Hop], answered: set[tuple[str, str]]) -> list[str]:
    """Nodes in order; when some hops were answered 2xx only those count (the branch that carried
    the call, not the gateways tried before it)."""
    chosen = [h for h in hops if (h[0], h[2]) in answered] or hops
    path: list[str] = []
    for sender, receiver, _ in chosen:
        for node in (sender, receiver):
            if not path or path[-1] != node:
                path.append(node)
    return path


def call_summaries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per call a client or the carrier placed, in the order they started."""
    records = list(records)
    links = leg_links(records)
    hops, answered = invite_hops(records)
    media = media_quality(records)
    by_call_id: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r["event"] in ("call.started", "call.answered", "call.ended", "cdr.record") and r.get("call_id"):
            by_call_id.setdefault(r["call_id"], []).append(r)
    calls = []
    for r in records:
        if r["event"] == "call.started" and r.get("direction") in ORIGINS:
            own = call_ids(links, r["call_id"])
            node_records = _node_records(own, by_call_id)
            quality = [q for q in media if q["call_id"] in own]
            calls.append(_summary(r, node_records, path_of(follow_legs(hops, links, r["call_id"]), answered),
                                  quality))
    return calls


def _node_records(own: list[str], by_call_id: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each node's record of the call: one per (node, Call-ID) that started it there."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for call_id in own:
        for r in by_call_id.get(call_id, []):
            key = (r.get("node", ""), call_id)
            if r["event"] == "call.started":
                out.setdefault(key, {"node": key[0], "call_id": call_id, "started": r["t"], "answered": None,
                                     "ended": None, "status": None, "end_reason": None, "ended_by": None,
                                     "result": None})
            record = out.get(key)
            if record is None:
                continue
            if r["event"] == "call.answered" and record["answered"] is None:
                record["answered"] = r["t"]
            elif r["event"] == "call.ended" and record["end_reason"] is None:
                record.update(ended=record["ended"] if record["ended"] is not None else r["t"],
                              status=r.get("status"), end_reason=r.get("end_reason"), ended_by=_ended_by(r))
            elif r["event"] == "cdr.record":  # the record's own end time (before any BYE it sent)
                record.update(result=(r.get("result") or {}).get("ms_code"), ended=r.get("end_at"))
    return list(out.values())


def _ended_by(r: dict[str, Any]) -> str | None:
    """"self", "caller" or "callee"; the carrier says "far end" for itself and "peer" for the SBC."""
    by = r.get("ended_by")
    if by == "far end" or (by is None and r.get("end_reason") == "refused"):
        return "self"
    if by == "peer":
        return "caller" if r.get("direction") == "to_pstn" else "callee"
    if by is None and r.get("end_reason") == "cancelled":
        return "caller"
    return by


def _summary(start: dict[str, Any], records: list[dict[str, Any]], path: list[str],
             quality: list[dict[str, Any]]) -> dict[str, Any]:
    origin = next((x for x in records if x["node"] == start.get("node") and x["call_id"] == start["call_id"]), None)
    ended_here = sorted((x for x in records if x["ended_by"] == "self" and x["ended"] is not None),
                        key=lambda x: x["ended"])
    first = ended_here[0] if ended_here else origin
    return {
        "id": start["call_id"],
        "parties": {"caller": start.get("caller"), "callee": start.get("dialed") or start.get("callee"),
                    "from": start.get("node")},
        "path": path,
        "started": start["t"],
        "answered": origin["answered"] if origin else None,
        "ended": origin["ended"] if origin else None,
        "end_reason": first["end_reason"] if first else None,
        "ended_by": first["node"] if first else None,
        "records": records,
        "quality": quality,  # media.quality as each node received it; empty: no media
        "audio": audio_flow(quality),  # two-way, one-way, none (media/quality.py); None: not both ends measured
    }


def _header(message: str, name: str) -> str:
    m = re.search(rf"^(?:{name}|{name[0].lower()}):\s*(.*)$", message, re.MULTILINE | re.IGNORECASE)
    return m.group(1) if m else ""
