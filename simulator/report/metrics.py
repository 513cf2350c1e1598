"""Failover figures computed from the event stream alone (result.json's "metrics").

- `detection_s`: from the cut to the first client leaving the cloud (its first `client.state`
  that is not online with a cloud registrar);
- `appliance_mode_s`: from the cut to the last client (of those that left the cloud) reaching
  appliance mode;
- `recovery_s`: from the restore to the last client back online in the cloud.

The cut is the first `link.down` / `link.blackhole` (of `link` if given); the restore is the next
`link.up` of that link. A figure that did not happen is None, never a guess. Extra figures:
`clients_in_appliance_mode` (how many got there) and `gateway_demoted_s` (cut to the first
gateway marked inactive or demoted).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CUT_EVENTS = ("link.down", "link.blackhole")


def _is_cloud(record: dict[str, Any]) -> bool:
    return record.get("state") == "online"


def compute_metrics(records: Iterable[dict[str, Any]], link: str | None = None) -> dict[str, Any]:
    # in time order: a lab whose nodes run in processes of their own delivers their records in
    # batches, so the log holds them in the order they arrived
    records = sorted(records, key=_time)
    cut_t = restore_t = None
    cut_link = link
    for r in records:
        if cut_t is None and r["event"] in CUT_EVENTS and (link is None or r.get("link") == link):
            cut_t, cut_link = r["t"], r.get("link")
        elif cut_t is not None and r["event"] == "link.up" and r.get("link") == cut_link:
            restore_t = r["t"]
            break
    out: dict[str, Any] = {"detection_s": None, "appliance_mode_s": None, "recovery_s": None,
                           "clients_in_appliance_mode": 0, "gateway_demoted_s": None}
    if cut_t is None:
        return out
    state: dict[str, str] = {}  # user -> last state before the cut
    left: dict[str, float] = {}  # user -> first time it left the cloud after the cut
    appliance: dict[str, float] = {}  # user -> first time in appliance mode after the cut
    back: dict[str, float] = {}  # user -> first time online again after the restore
    for r in records:
        t = r["t"]
        if r["event"] == "gateway.health" and t >= cut_t and out["gateway_demoted_s"] is None \
                and r.get("state") in ("inactive", "demoted"):
            out["gateway_demoted_s"] = _round(t - cut_t)
        if r["event"] != "client.state":
            continue
        user = r.get("user") or r.get("node")
        if t < cut_t:
            state[user] = r.get("state")
            continue
        if restore_t is None or t < restore_t:
            if not _is_cloud(r) and state.get(user) == "online" and user not in left:
                left[user] = t
            if r.get("state") == "appliance" and user not in appliance:
                appliance[user] = t
        elif _is_cloud(r) and user not in back and (user in left or user in appliance):
            back[user] = t
    if left:
        out["detection_s"] = _round(min(left.values()) - cut_t)
    if appliance:
        out["appliance_mode_s"] = _round(max(appliance.values()) - cut_t)
        out["clients_in_appliance_mode"] = len(appliance)
    away = set(left) | set(appliance)
    if restore_t is not None and away and away <= set(back):
        out["recovery_s"] = _round(max(back.values()) - restore_t)
    return out


def _time(record: dict[str, Any]) -> float:
    return record["t"]


def _round(value: float) -> float:
    return round(value, 3)


QUALITY_FIELDS = ("node", "call_id", "stream", "packets_expected", "packets_received", "loss", "jitter_ms",
                  "rtt_ms", "mos", "poor", "reasons", "silent_s")


def media_quality(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every `media.quality` of the run (one per RTP session end: a call at one node), in time order."""
    return [{"t": r["t"], **{k: r.get(k) for k in QUALITY_FIELDS}} for r in records if r["event"] == "media.quality"]
