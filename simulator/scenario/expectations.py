"""What a scenario can expect, judged from the event stream (the contract between roles and reports).

`WorldView` follows the events as they are emitted and keeps the state a person would ask about:
where each client is registered (`client.state`), each gateway's health as each proxy sees it
(`gateway.health`), each SBA's cache version (`sba.sync`), CDRs written and uploaded
(`cdr.record`, `sba.cdr_upload`). Judging from events, not from role internals, means a
scenario checks exactly what the timeline shows, and the same checks work on any network.

`check(condition)` returns `(ok, detail)`; `wait_for(condition, timeout)` re-checks on every
event until it holds or the (virtual) timeout passes. Routing expectations run the tenant's
routing (`simulator.tenant.check.run_case`) on the lab's live tenant, with gateway health as
the proxies currently see it.

Call facts read from SIP events: `signalling_path` (the nodes the initial INVITEs passed, in
order) and `media_endpoints` (the nodes owning the SDP offer's and answer's c= addresses).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from simulator.report.calls import address_names, follow_legs, invite_hops, leg_links, path_of
from simulator.scenario.reader import Condition


def _norm(name: str | None) -> str:
    return (name or "").strip().lower()


class WorldView:
    def __init__(self, records: list[dict[str, Any]] | None = None, aliases: dict[str, str] | None = None,
                 tenant_source: Any = None, demoted: str = "last", time_scale: float = 1.0) -> None:
        self.clients: dict[str, tuple[str, str | None]] = {}  # user -> (state, registrar)
        self.client_nodes: dict[str, str] = {}  # node name -> user
        self.gateways: dict[tuple[str, str], str] = {}  # (node, gateway) -> state
        self.gateway_last: dict[str, str] = {}  # gateway -> latest state from any node
        self.sba_versions: dict[str, int] = {}  # node -> last good cache version
        self.cdrs: dict[str, int] = {}
        self.uploaded: dict[str, int] = {}
        self.records: list[dict[str, Any]] = []
        # event name -> its records: an `event` condition is re-checked on every new record while a
        # step waits, and must not read the whole run each time
        self.by_event: dict[str, list[dict[str, Any]]] = {}
        self.aliases = {_norm(k): _norm(v) for k, v in (aliases or {}).items()}  # fqdn -> node name
        self.tenant_source = tenant_source  # callable -> Tenant (the lab's live copy)
        self.demoted = demoted
        self.time_scale = time_scale  # scenario seconds per loop second (simulator.lab.timescale)
        self._waiters: list[asyncio.Future[None]] = []
        for r in records or []:
            self(r)

    # -- following the stream ----------------------------------------------------------------
    def __call__(self, r: dict[str, Any]) -> None:
        self.records.append(r)
        name = r["event"]
        self.by_event.setdefault(name, []).append(r)
        node = _norm(r.get("node"))
        if name == "client.state":
            user = _norm(r.get("user") or node)
            self.clients[user] = (r.get("state"), r.get("registrar"))
            self.client_nodes[node] = user
        elif name == "gateway.health":
            gw = _norm(r.get("gateway"))
            self.gateways[(node, gw)] = r.get("state")
            self.gateway_last[gw] = r.get("state")
        elif name == "sba.sync" and r.get("ok", True) and r.get("version") is not None:
            self.sba_versions[node] = int(r["version"])
        elif name == "cdr.record":
            self.cdrs[node] = self.cdrs.get(node, 0) + 1
        elif name == "sba.cdr_upload":
            self.uploaded[node] = self.uploaded.get(node, 0) + int(r.get("count") or 0)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def _node(self, name: str) -> str:
        n = _norm(name)
        return self.aliases.get(n, n)

    def _matches_node(self, wanted: str, actual: str) -> bool:
        return self._node(wanted) == self._node(actual)

    # -- judging -----------------------------------------------------------------------------
    def check(self, cond: Condition) -> tuple[bool, str]:
        a = cond.args
        if cond.subject == "client":
            misses = []
            for who in a["clients"]:
                key = _norm(who)
                key = key if key in self.clients else self.client_nodes.get(self._node(who), key)
                state, registrar = self.clients.get(key, ("unknown (no client.state event yet)", None))
                want_reg = a.get("registrar")
                ok = state == a["state"] and (want_reg is None or self._matches_node(want_reg, registrar or ""))
                if not ok:
                    got = f"{state}" + (f" at {registrar}" if registrar else "")
                    misses.append(f"{who}: expected {a['state']}" + (f" at {want_reg}" if want_reg else "")
                                  + f", got {got}")
            return (not misses, "; ".join(misses) or self._client_summary(a["clients"]))
        if cond.subject == "gateway":
            gw = _norm(a["gateway"])
            if a.get("node"):
                state = self.gateways.get((self._node(a["node"]), gw))
            else:
                state = self.gateway_last.get(gw)
            state = state or "active"  # no health event yet: a gateway starts active
            ok = state == a["health"]
            return ok, f"gateway {a['gateway']} is {state}" + ("" if ok else f", expected {a['health']}")
        if cond.subject == "sba":
            node = self._node(a["sba"])
            version = self.sba_versions.get(node)
            want = a["cache_version"]
            ok = version is not None and (version >= want if a.get("at_least") else version == want)
            return ok, f"SBA {a['sba']} cache version {version if version is not None else 'none (never synced)'}" \
                + ("" if ok else f", expected {'>= ' if a.get('at_least') else ''}{want}")
        if cond.subject == "cdrs":
            table = self.uploaded if a.get("uploaded") else self.cdrs
            count = table.get(self._node(a["node"]), 0) if a.get("node") else sum(table.values())
            ok = count == a["count"]
            kind = "uploaded CDRs" if a.get("uploaded") else "CDRs"
            return ok, f"{count} {kind}" + ("" if ok else f", expected {a['count']}")
        if cond.subject == "route":
            return self._check_route(cond)
        if cond.subject == "event":
            found = [r for r in self.by_event.get(a["event"], ())
                     if (not a.get("node") or self._matches_node(a["node"], str(r.get("node", ""))))
                     and all(_same_value(r.get(k), v) for k, v in a["with"].items())]
            n = len(found)
            ok = n >= a["count"] if a["at_least"] else n == a["count"]
            filters = ", ".join(f"{k} {v}" for k, v in a["with"].items())
            seen = f"{n or 'no'} {a['event']} event{'' if n == 1 else 's'}" + (f" with {filters}" if filters else "")
            return ok, seen + ("" if ok else f", expected {'at least ' if a['at_least'] else ''}{a['count']}")
        return False, f"unknown condition {cond.subject}"

    def _client_summary(self, clients: list[str]) -> str:
        parts = []
        for who in clients:
            state, registrar = self.clients.get(_norm(who), ("?", None))
            parts.append(f"{who} {state}" + (f" at {registrar}" if registrar else ""))
        return ", ".join(parts)

    def _check_route(self, cond: Condition) -> tuple[bool, str]:
        from simulator.tenant.check import Case, run_case

        if self.tenant_source is None:
            return False, "no tenant to route with"
        tenant = self.tenant_source()
        health = {gw: state == "active" for gw, state in self.gateway_last.items()}
        a = cond.args
        outcome = run_case(tenant, Case(cond.position, a["user"], a["dial"], cond.describe(), a["expect"],
                                        health, self.demoted))
        if outcome.ok:
            gws = ", ".join(outcome.decision.gateways) if outcome.decision else ""
            return True, f"{a['user']} dials {a['dial']} → {gws or 'no route'}"
        return False, "; ".join(outcome.misses)

    async def wait_for(self, cond: Condition, timeout: float) -> tuple[bool, str]:
        return await self.wait_until(lambda: self.check(cond), timeout)

    async def wait_until(self, check: Callable[[], tuple[bool, str]], timeout: float) -> tuple[bool, str]:
        """Re-run `check` on every event until it holds or `timeout` (virtual) seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout / self.time_scale
        while True:
            ok, detail = check()
            if ok:
                return ok, detail
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False, f"not within {timeout:g} s: {detail}"
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass

    # -- call facts from SIP events ----------------------------------------------------------
    def address_names(self) -> dict[str, str]:
        return address_names(self.records)

    def signalling_path(self, start: float, end: float, origin: str | None = None,
                        call_id: str | None = None) -> list[str]:
        """The nodes a call's INVITEs passed, in order (report/calls.py).

        With `call_id` (the Call-ID the caller sent), the hops are that call's own: each B2BUA
        names the legs it placed for it (`leg.placed`), so simultaneous calls never mix. Without
        it, hops in [start, end] are joined by time, and with `origin` (the caller's node) only
        hops reachable from it count.
        """
        if call_id is not None:
            hops, answered = invite_hops(self.records)
            return path_of(follow_legs(hops, leg_links(self.records), call_id), answered)
        hops, answered = invite_hops(self.records, (start - 1e-6, end + 1e-6))  # times to the microsecond
        if origin is not None:
            reached, chain = {origin}, []
            for hop in hops:
                if hop[0] in reached:
                    chain.append(hop)
                    reached.add(hop[1])
            hops = chain
        return path_of(hops, answered)

    def media_endpoints(self, call_id: str) -> list[str]:
        """[offerer, answerer] node names from the c= lines of the INVITE and its 2xx, as sent."""
        names = self.address_names()
        offer = answer = None
        for r in self.records:
            if r["event"] != "sip.sent" or r.get("call_id") != call_id or not str(r.get("cseq", "")).endswith("INVITE"):
                continue
            c = _connection_address(r["message"])
            if c is None:
                continue
            if str(r.get("summary", "")).startswith("INVITE") and offer is None:
                offer = c
            elif str(r.get("summary", "")).startswith("2") and answer is None:
                answer = c
        return [names.get(x, x) for x in (offer, answer) if x is not None]

    def call_quality(self, call_id: str, path: list[str], start: float) -> list[dict[str, Any]]:
        """The `media.quality` of a call's two ends: the caller's (its own Call-ID) and the last one
        at the path's far end since `start` (B2BUAs give the far end another Call-ID)."""
        if not path:
            return []
        caller, callee = self._node(path[0]), self._node(path[-1])
        mine = theirs = None
        for r in self.records:
            if r["event"] != "media.quality" or r["t"] < start - 1e-6:
                continue
            node = self._node(r.get("node", ""))
            if node == caller and r.get("call_id") == call_id:
                mine = r
            elif node == callee and node != caller:
                theirs = r
        return [q for q in (mine, theirs) if q is not None]

    def path_matches(self, wanted: list[str], actual: list[str]) -> bool:
        """Every wanted node appears in `actual`, in the same order (other hops may sit between)."""
        it = iter(self._node(a) for a in actual)
        return all(any(self._node(w) == a for a in it) for w in wanted)


def _same_value(got: Any, want: Any) -> bool:
    """Event fields compared as the YAML wrote them: 503 matches 503 and "503"."""
    return got == want or str(got) == str(want)


def _connection_address(message: str) -> str | None:
    m = re.search(r"^c=IN IP[46] ([^\s/]+)", message, re.MULTILINE)
    return m.group(1) if m else None
