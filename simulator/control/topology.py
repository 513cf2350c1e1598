"""What the live view draws: the lab's sites, links and nodes (`GET /api/topology`), and the
Call-IDs of one call's legs (`GET /api/calls/<id>/legs`), read from the lab file and the log.

    {"lab": "contoso", "description": "...",
     "sites": [{"name": "seattle", "description": "...", "kind": "branch", "nodes": ["sbc-sea", ...]}],
     "links": [{"name": "wan-seattle", "a": "seattle", "b": "internet", "state": "up",
                "latency": 0.02, "jitter": 0.0, "loss": 0.0, "impaired": false}],
     "nodes": [{"name": "sbc-sea", "role": "sbc", "host": "sbc-sea.contoso.com", "site": "seattle",
                "user": null, "carrier": "pstn-sea", "sba": "sba1"}]}

A site's `kind` says where the page draws it: `cloud` (it holds a Teams proxy), `branch` (an
SBC, SBA or client), `carrier` (a PSTN node) or `transit` (no node: the internet between them).
A link is `impaired` when its latency, jitter or loss differ from the lab file's.
"""

from __future__ import annotations

import bisect
from typing import Any

from simulator.report.html import call_legs

#: site kinds by the roles of the nodes in it, the first that matches
SITE_KINDS = (("cloud", ("teams_proxy",)), ("branch", ("sbc", "sba", "teams_client")), ("carrier", ("pstn",)))


def topology(lab: Any) -> dict[str, Any]:
    spec = lab.spec
    node_site = {name: spec.host(decl.host).site for name, decl in spec.nodes.items()}
    sites = []
    for name, site in spec.sites.items():
        members = [node for node, where in node_site.items() if where == name]
        roles = {spec.nodes[node].role for node in members}
        kind = next((k for k, wanted in SITE_KINDS if roles & set(wanted)), "transit")
        sites.append({"name": name, "description": site.description, "kind": kind, "nodes": members})
    live_links = getattr(lab.network, "links", {})
    links = []
    for name, decl in spec.links.items():
        link = live_links.get(name)
        now = (link.latency, link.jitter, link.loss) if link is not None else (decl.latency, decl.jitter, decl.loss)
        links.append({"name": name, "a": decl.a, "b": decl.b, "state": link.state if link is not None else "up",
                      "latency": now[0], "jitter": now[1], "loss": now[2],
                      "impaired": now != (decl.latency, decl.jitter, decl.loss)})
    nodes = [{"name": name, "role": decl.role, "host": spec.host(decl.host).name, "site": node_site[name],
              "user": decl.options.get("user"), "carrier": decl.options.get("carrier"), "sba": decl.options.get("sba")}
             for name, decl in spec.nodes.items()]
    return {"lab": spec.name, "description": spec.description, "sites": sites, "links": links, "nodes": nodes}


def legs(records: list[dict[str, Any]], call_id: str, since: float) -> list[str]:
    """The Call-IDs of every leg of the call whose first leg is `call_id` (placed at `since`):
    the first, then each leg a B2BUA started for it, as report.html joins them."""
    first = bisect.bisect_left(records, since - 1e-6, key=lambda r: r["t"])
    return call_legs(records[first:], call_id)
