"""The customer's session border controller: a B2BUA between the PSTN trunk and Direct Routing.

Two legs per call and a small policy between them (roles/b2bua.py, after Sippy's B2BUA): the PSTN
leg to the carrier (UDP 5060 by default, or TCP; numbers as the carrier writes them) and the Teams
leg over mutual TLS [S1][S10] to `sip`, then `sip2`, then `sip3.pstnhub.microsoft.com`
[S1][S2], or to the co-located SBA when no proxy is reachable [S26].

Theory of operation

- Keepalive [S2][S10]: every `sbc_options_interval_s` the SBC sends OPTIONS to each proxy FQDN with
  `Contact: <sip:<its FQDN>:<port>;transport=tls>`. A 200 marks that proxy up; no answer within
  `sbc_connect_timeout_s`, a refused connection or TLS handshake, or any other status marks it
  down (`sbc.proxy` event on each change). A connection to a proxy that closes (a cut link resets
  it) triggers an OPTIONS at once, so a cut is known within a round trip, not a minute.
  `settled` = some proxy answered (what the lab waits for).
- Inbound (PSTN -> Teams): 100 Trying to the carrier; numbers become E.164 with `+` ([S2]: the
  Request-URI must carry `+` for reverse number lookup); the INVITE goes to the proxies that are
  up in FQDN order, then those not known up, then the co-located SBA. The next target is tried on
  a connect failure, a TLS refusal, no response within `sbc_connect_timeout_s` (a stateful proxy
  answers 100 at once, RFC 3261 §17.2.1), a transaction timeout, or 503 with Retry-After (§1.8
  [S2]: drop that datacenter and try the next; it is skipped for the Retry-After seconds). Any
  other final response is the call's answer and is relayed. When every proxy is known down and
  there is an SBA, the SBA is tried first: the branch is in survivable mode.
- Outbound (Teams -> PSTN): accepted on the TLS port from a peer whose certificate names a Teams
  proxy FQDN or the co-located SBA (403 otherwise); numbers go to the carrier's format (`+1` and
  10 digits -> 10 digits; other `+CC` -> `011CC...`; short strings such as `911` unchanged); the
  identity as Teams gave it: an anonymous From stays anonymous, P-Asserted-Identity and Privacy go
  on (RFC 3325); of a multipart body (an emergency call's PIDF-LO, RFC 6442) the carrier gets the
  SDP.
- Both directions: provisional responses (180/183) and the final answer are relayed; BYE and
  re-INVITE (hold/resume) are relayed to the other leg within its dialog; a CANCEL from the caller
  cancels the other leg. REFER is not advertised, so the proxy handles transfers itself [S2] and
  the SBC sees only re-INVITEs.
- A carrier outside the lab (an external node, e.g. SIPp) cannot resolve the lab's names: toward
  it the PSTN leg names the SBC and the carrier by address (Request-URI, From, To, Via, Contact,
  the Call-ID's host); toward a carrier in the lab it uses their FQDNs.
- `options.max_sessions` (the SBC's own licence, not the tenant's MaxConcurrentSessions): a call
  beyond it is refused with 503 on either side.
- Overload (settings `max_call_setups`, `overload_queue_bytes`; B2bua.overloaded): a new INVITE
  gets 503 with Retry-After before any call exists. `calls` holds the calls in progress only
  (b2bua.CallTable): a call leaves it once its record is in `cdrs`.
- Each call ends in a CDR (`roles/cdr.py`, written by `node=<SBC FQDN>`, path `cloud` or `sba`).

Events (node = this node's name): `sbc.options` (proxy, ok, status, reason), `sbc.connection_lost`
(proxy, reason), `sbc.proxy` (proxy,
state up|down, reason), `sbc.attempt` (call_id, target, outcome), `sbc.failover` (call_id, from_,
to, reason), `call.started` / `call.ringing` / `call.answered` / `call.held` / `call.resumed` /
`call.ended` (call_id, caller, callee, status, path, via = the proxy/SBA/carrier on the far leg,
direction inbound|outbound; `call.ended` adds end_reason, ended_by, byes), `leg.placed` (call_id,
leg_call_id, peer), `call.path_lost` / `call.media_timeout` (leg), `cdr.record` (the fields of
Cdr.to_dict(), its `node` as `writer`). A call whose Teams leg lost its connection for good ends
on media silence (roles/b2bua.py): the SBC BYEs the carrier and records media_timeout.

    sbc = lab.node("sbc-sea")
    sbc.proxy_state["sip.pstnhub.microsoft.com"].up, sbc.settled, sbc.active_calls, sbc.cdrs
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from simulator.endpoint import (
    Connection,
    Incoming,
    SipEndpoint,
    SipFailure,
    Target,
    TlsConfig,
    TransportFailure,
)
from simulator.media.session import RoleMedia
from simulator.net.tls import PeerInfo, TlsPolicy
from simulator.roles.b2bua import B2bua, Call, CallState, CallTable, Leg
from simulator.roles.cdr import (
    CallPath,
    Cdr,
    CdrDraft,
    Direction,
    EndReason,
    ResultCode,
    default_end_reason,
    result_for,
    result_from_gateway,
)
from simulator.roles.context import NodeSpec, RoleContext
from simulator.roles.tasks import RoleTasks
from simulator.sip import Request, Response, parse_uri
from simulator.sip.builders import (
    ANONYMOUS_FROM,
    make_request,
    new_branch,
    new_call_id,
    new_tag,
    onward_max_forwards,
)
from simulator.sip.dialog import Dialog, DialogError
from simulator.sip.geolocation import SDP_CONTENT_TYPE, BodyError, body_parts, part_of

SBC_MEDIA_PORT = 20000
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"  # no REFER: the proxy then transfers by itself [S2]
TEAMS_DOMAIN = "pstnhub.microsoft.com"


# --- number manipulation (the carrier writes 10 digits; Teams needs E.164 with +) -----------------
def to_e164(number: str) -> str:
    """Carrier -> Teams: 10 digits -> +1..., 1+10 digits -> +1..., 011CC... -> +CC...; else unchanged."""
    n = number.strip()
    if n.startswith("+") or not n.isdigit():
        return n
    if len(n) == 10:
        return "+1" + n
    if len(n) == 11 and n.startswith("1"):
        return "+" + n
    if n.startswith("011") and len(n) > 6:
        return "+" + n[3:]
    return n  # short codes and emergency strings stay as dialled


def to_carrier(number: str) -> str:
    """Teams -> carrier: +1 and 10 digits -> 10 digits; other +CC... -> 011CC...; else unchanged."""
    n = number.strip()
    if n.startswith("+1") and len(n) == 12 and n[1:].isdigit():
        return n[2:]
    if n.startswith("+") and n[1:].isdigit():
        return "011" + n[1:]
    return n


def user_of(uri: Any) -> str:
    """The user part of a SIP URI (or a tel: number), without ;params."""
    user = getattr(uri, "user", None) or getattr(uri, "number", None) or ""
    return str(user).split(";")[0]


@dataclass
class ProxyState:
    fqdn: str
    up: bool | None = None  # None: not heard of yet
    since: float = 0.0
    reason: str = "not pinged yet"
    skip_until: float = 0.0  # 503 Retry-After


class Sbc(B2bua):
    """An SBC node. See the module docstring."""

    def __init__(self, ctx: RoleContext, spec: NodeSpec) -> None:
        self.ctx, self.spec = ctx, spec
        self.fqdn = spec.fqdn
        gateway = ctx.tenant.gateways.get(self.fqdn.lower())
        self.tls_port = gateway.sip_signaling_port if gateway else 5061  # the proxy calls the Contact's port
        self.pstn_port = ctx.topology.sbc_pstn_port(self.fqdn)
        self.carrier = ctx.topology.sbc_carrier.get(self.fqdn)  # (host, port, transport) or None
        self.sba = ctx.topology.sba_of_sbc(self.fqdn)
        self.proxies = tuple(ctx.topology.proxies)
        self.max_sessions: int | None = spec.options.get("max_sessions")
        self.proxy_state = {p: ProxyState(p) for p in self.proxies}
        self.calls = CallTable()  # calls in progress: each leaves once its record is written
        self.cdrs: list[Cdr] = []
        self.log = ctx.logger(spec.name)
        self.rng = ctx.rng_for(spec.name)
        self._ep: Any = None
        self._tls: Any = None
        self._tasks = RoleTasks(self.log, None)  # a failed task is not logged, as before
        self._pinging: set[str] = set()
        self._running = False
        # an SBC anchors media: each call's RTP passes through its address on both legs
        self.media = RoleMedia(ctx.network, self.fqdn, self.log, first_port=SBC_MEDIA_PORT, enabled=ctx.settings.media)
        if self.fqdn.lower() not in {k.lower() for k in ctx.identities}:
            raise ValueError(f"SBC {self.fqdn} has no certificate in the lab PKI")

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        identity = {k.lower(): v for k, v in self.ctx.identities.items()}[self.fqdn.lower()]
        self._tls = TlsConfig(identity=identity, trust=self.ctx.trust, policy=TlsPolicy.direct_routing(),
                              require_client_cert=True)
        self._ep = self.ctx.endpoint(self.spec, relays_calls=True)
        self._ep.tls = self._tls
        self._ep.on_request = self._on_request
        self._ep.on_connection_closed = self._connection_closed
        await self._ep.listen("tls", self.tls_port, tls=self._tls)
        self._running = True
        if self.carrier is not None:
            await self._ep.listen(self.carrier[2], self.pstn_port)
        self.log.info("sbc.started", fqdn=self.fqdn, tls_port=self.tls_port, pstn_port=self.pstn_port,
                      carrier=self.carrier[0] if self.carrier else None, sba=self.sba, proxies=list(self.proxies))
        for proxy in self.proxies:
            self._tasks.spawn(self._keepalive(proxy))

    async def stop(self) -> None:
        self._running = False
        self._tasks.cancel()
        self.media.stop_all()
        if self._ep is not None:
            await self._ep.close()
            self._ep = None

    async def restart(self) -> None:
        """Reboot: every call here ends without a word on the wire, each with its record."""
        for call in self.calls:
            if call.end():
                result = None if call.draft.answer_at is not None else result_for("node_restarted")
                self._record(call, result, EndReason.RESTARTED, "self")
                self.call_event("call.ended", call, reason="restarted", end_reason=str(EndReason.RESTARTED),
                                ended_by="self")
        await self.stop()
        await self.start()

    @property
    def settled(self) -> bool:
        """Some proxy answered our OPTIONS (or the lab has no proxies)."""
        return not self.proxies or any(s.up for s in self.proxy_state.values())

    @property
    def active_calls(self) -> int:
        return len(self.calls)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # --- OPTIONS keepalive [S2][S10] ---------------------------------------------------------
    async def _keepalive(self, proxy: str) -> None:
        while True:
            await self.ping(proxy)
            await asyncio.sleep(self.ctx.settings.sbc_options_interval_s)

    async def ping(self, proxy: str) -> bool:
        """One OPTIONS to `proxy`; updates `proxy_state` and returns whether it answered 200."""
        self._pinging.add(proxy)
        try:
            return await self._ping(proxy)
        finally:
            self._pinging.discard(proxy)

    async def _ping(self, proxy: str) -> bool:
        options = make_request(
            "OPTIONS", f"sip:{proxy}:5061", from_=f"<sip:{self.fqdn}:{self.tls_port}>;tag={new_tag(self.rng)}",
            to=f"<sip:{proxy}:5061>", call_id=new_call_id(self.rng, self.fqdn), cseq=1,
            via=f"SIP/2.0/TLS {self.fqdn}:{self.tls_port};branch={new_branch(self.rng)};rport",
            contact=f"<sip:{self.fqdn}:{self.tls_port};transport=tls>", extra_headers=[("Allow", ALLOW)])
        status, reason = None, ""
        try:
            tx = self._ep.request(options, Target(proxy, 5061, "tls", tls=self._tls))
            response = await asyncio.wait_for(tx.final(), self.ctx.settings.sbc_connect_timeout_s)
            status, reason = response.status, response.reason or ""
        except TimeoutError:
            reason = f"no answer within {self.ctx.settings.sbc_connect_timeout_s:g} s"
        except SipFailure as exc:
            reason = getattr(exc, "reason", None) or str(exc)
        ok = status == 200
        self.log.info("sbc.options", proxy=proxy, ok=ok, status=status, reason=reason)
        self._mark(proxy, ok, reason if not ok else "OPTIONS answered")
        return ok

    def _connection_closed(self, conn: Connection, reason: str) -> None:
        """A connection to a proxy went away: ask that proxy again now rather than at the next
        interval, so a cut WAN is known within a round trip (the ping decides, not the close)."""
        for proxy in self.proxies:
            # only for a proxy we think is up: one that refuses us closes every connection, and
            # re-asking it at once would loop
            if (conn.remote[0] == self._address(proxy) and self.proxy_state[proxy].up
                    and proxy not in self._pinging and self._running):
                self.log.info("sbc.connection_lost", proxy=proxy, reason=reason)
                self._tasks.spawn(self.ping(proxy))
        if self._running:
            self.connection_lost(conn, self.calls)

    def _mark(self, proxy: str, up: bool, reason: str) -> None:
        state = self.proxy_state.get(proxy)
        if state is None or state.up == up:
            return
        state.up, state.since, state.reason = up, self._now(), reason
        self.log.info("sbc.proxy", proxy=proxy, state="up" if up else "down", reason=reason)
        if not up and self._running:
            self.peer_unreachable(proxy, self.calls)

    # --- requests from either side -----------------------------------------------------------
    async def _on_request(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        method = request.method
        if method == "OPTIONS" and request.to.tag is not None and _ended_or_unknown(self.calls.find(request)):
            incoming.respond(481)  # in-dialog, and the dialog is not ours (any more): RFC 3261 §12.2.2
            return
        if method == "OPTIONS":
            source = incoming.source  # our Contact on the transport it asked on, by a name it can resolve
            incoming.respond(200, headers=[("Allow", ALLOW)],
                             contact=self._ep.contact(source.transport, toward=source.address))
            return
        if method == "INVITE" and request.to.tag is None:
            if not self.overloaded(incoming):
                await self.set_up(self._from_teams(incoming) if incoming.source.transport == "tls"
                                  else self._from_pstn(incoming))
            return
        if method == "ACK":
            return
        found = self.calls.find(request)
        if found is None:
            incoming.respond(481)
            return
        call, leg = found
        if method == "BYE":
            await self._on_bye(call, leg, incoming)
        elif method == "INVITE":
            assert leg.dialog is not None
            refusal = leg.dialog.receive_request(request)
            if refusal is not None:
                incoming.respond(refusal)
            else:
                await self.relay_in_dialog(call, leg, incoming)
        else:
            incoming.respond(405, headers=[("Allow", ALLOW)])

    def _at_limit(self) -> bool:
        return self.max_sessions is not None and self.active_calls >= self.max_sessions

    # --- PSTN -> Teams ------------------------------------------------------------------------
    async def _from_pstn(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        if self.carrier is not None and incoming.source.address != self._address(self.carrier[0]):
            incoming.respond(403, "Not From Our Carrier")
            self.log.info("sbc.refused", source=incoming.source.hostport, reason="not the PSTN carrier")
            return
        caller, callee = to_e164(user_of(request.from_.uri)), to_e164(user_of(request.uri))
        call = self._new_call(incoming, Direction.INBOUND, caller, callee, CallPath.CLOUD, "pstn",
                              self.carrier[0] if self.carrier else incoming.source.address)
        if call is None:
            return
        self.watch_cancel(call, lambda: self._caller_cancelled(call))
        last: tuple[int, str] = (503, "No Teams Proxy Or SBA Reachable")
        targets = self._teams_targets()
        for index, (target, kind) in enumerate(targets):
            if not call.setting_up or incoming.cancelled:
                return
            outcome = await self._attempt(call, target, kind)
            if outcome is None:
                return
            last = outcome
            if index + 1 < len(targets):
                self.log.info("sbc.failover", call_id=call.call_id, from_=target, to=targets[index + 1][0],
                              reason=outcome[1])
        self._fail(call, *last)

    def _teams_targets(self) -> list[tuple[str, str]]:
        """Proxies known up (FQDN order), then the others; the SBA last — or first when every proxy is down."""
        now = self._now()
        usable = [p for p in self.proxies if self.proxy_state[p].skip_until <= now]
        up = [p for p in usable if self.proxy_state[p].up]
        rest = [p for p in usable if not self.proxy_state[p].up]
        proxies = [(p, "proxy") for p in (*up, *rest)]
        if self.sba is None:
            return proxies
        sba = [(self.sba, "sba")]
        all_down = all(self.proxy_state[p].up is False for p in self.proxies)
        return sba + proxies if all_down else proxies + sba

    async def _attempt(self, call: Call, target: str, kind: str) -> tuple[int, str] | None:
        """Send the Teams leg's INVITE to `target`. None when the call got its answer (relayed);
        (status, reason) when the next target should be tried."""
        request = call.a.incoming.request
        invite = make_request(
            "INVITE", f"sip:{call.callee}@{target}:5061;user=phone",
            from_=f"<sip:{call.caller}@{self.fqdn};user=phone>;tag={new_tag(self.rng)}",
            to=f"<sip:{call.callee}@{self.fqdn};user=phone>", call_id=new_call_id(self.rng, self.fqdn), cseq=1,
            via=f"SIP/2.0/TLS {self.fqdn}:{self.tls_port};branch={new_branch(self.rng)};rport",
            contact=self._teams_contact(call.caller), body=self.anchored_body(call, request.body, "b"),
            content_type=request.content_type or ("application/sdp" if request.body else None),
            max_forwards=onward_max_forwards(request), extra_headers=[("Allow", ALLOW)])
        leg = Leg("teams", peer=target)
        self.log.info("leg.placed", call_id=call.call_id, leg_call_id=invite.call_id, peer=target)
        call.b = leg
        self.calls.file(call, invite.call_id)
        call.path = CallPath.SBA if kind == "sba" else CallPath.CLOUD
        call.draft.path = call.path
        responded = asyncio.Event()

        def provisional(response: Response) -> None:
            responded.set()
            self.relay_provisional(call, response)

        leg.tx = self._ep.request(invite, Target(target, 5061, "tls", tls=self._tls), on_provisional=provisional)
        final = asyncio.ensure_future(leg.tx.final())
        waiter = asyncio.ensure_future(responded.wait())
        try:
            done, _ = await asyncio.wait({final, waiter}, timeout=self.ctx.settings.sbc_connect_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not done:
            leg.tx.cancel()  # sent if a provisional ever comes; the call moves on now
            final.cancel()
            return self._attempt_failed(call, target, kind, 408,
                                        f"no response within {self.ctx.settings.sbc_connect_timeout_s:g} s")
        try:
            response = await final
        except TransportFailure as exc:
            return self._attempt_failed(call, target, kind, 503, exc.reason)
        except SipFailure as exc:
            return self._attempt_failed(call, target, kind, 408, str(exc))
        if response.status == 503 and response.headers.get("Retry-After") is not None:
            retry = _seconds(response.headers.get("Retry-After"), self.ctx.settings.sbc_retry_after_s)
            if kind == "proxy":
                self.proxy_state[target].skip_until = self._now() + retry
            return self._attempt_failed(call, target, kind, 503, f"503 Retry-After {retry:g}", mark=False)
        call.tried.append((target, str(response.status)))
        self.log.info("sbc.attempt", call_id=call.call_id, target=target, outcome=str(response.status))
        if kind == "proxy":
            self._mark(target, True, f"answered INVITE with {response.status}")
        if response.status >= 300:
            self._fail(call, response.status, response.reason or "", from_peer=True)
            return None
        self._connected(call, leg, invite, response, target)
        return None

    def _attempt_failed(self, call: Call, target: str, kind: str, status: int, reason: str,
                        mark: bool = True) -> tuple[int, str]:
        call.tried.append((target, reason))
        self.log.info("sbc.attempt", call_id=call.call_id, target=target, outcome=reason)
        if mark and kind == "proxy":
            self._mark(target, False, reason)
        call.b = None
        return status, reason

    # --- Teams -> PSTN ------------------------------------------------------------------------
    async def _from_teams(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        peer_tls = incoming.source.tls
        source = self._teams_peer(peer_tls)
        if source is None:
            incoming.respond(403, "Forbidden")
            self.log.info("sbc.refused", source=incoming.source.hostport,
                          reason="certificate names no Teams proxy nor our SBA")
            return
        path = CallPath.SBA if source == self.sba else CallPath.CLOUD
        try:
            parts = body_parts(request.headers.get("Content-Type"), request.body)
        except BodyError as exc:
            incoming.respond(400, f"Bad Request: {exc}"[:60])
            return
        sdp = part_of(parts, SDP_CONTENT_TYPE)
        asserted = _asserted(request)
        caller = user_of(asserted or request.from_.uri)
        callee = user_of(request.uri)
        call = self._new_call(incoming, Direction.OUTBOUND, caller, callee, path, "teams", source)
        if call is None:
            return
        call.a.connection = incoming.source.connection
        if self.carrier is None:
            self._fail(call, 503, "No PSTN Trunk")
            return
        self.watch_cancel(call, lambda: self._caller_cancelled(call))
        host, port, transport = self.carrier
        us, them = self._pstn_names()
        national_callee, national_caller = to_carrier(callee), to_carrier(caller)
        # The identity as Teams gave it, in the carrier's format: an anonymous From stays
        # anonymous, and the asserted identity and Privacy go on to the carrier, the trust
        # domain's other end (RFC 3325 §5, §7). A PIDF-LO part stays here: the carrier gets the SDP.
        from_ = f"<sip:{national_caller}@{us};user=phone>"
        extra = [("Allow", ALLOW)]
        if _is_anonymous(request.from_.uri):
            from_ = ANONYMOUS_FROM
        if asserted is not None:
            extra.append(("P-Asserted-Identity", f"<sip:{national_caller}@{us};user=phone>"))
        if request.headers.get("Privacy"):
            extra.append(("Privacy", request.headers.get("Privacy")))
        offer = sdp.body if sdp is not None else (parts[0].body if len(parts) == 1 else b"")
        invite = make_request(
            "INVITE", f"sip:{national_callee}@{them}:{port};user=phone",
            from_=f"{from_};tag={new_tag(self.rng)}",
            to=f"<sip:{national_callee}@{them};user=phone>", call_id=new_call_id(self.rng, us), cseq=1,
            via=f"SIP/2.0/{transport.upper()} {us}:{self.pstn_port};branch={new_branch(self.rng)};rport",
            contact=self._pstn_contact(national_caller),
            body=self.anchored_body(call, offer, "b"),
            content_type=SDP_CONTENT_TYPE if offer else None,
            max_forwards=onward_max_forwards(request), extra_headers=extra)
        leg = Leg("pstn", peer=host)
        self.log.info("leg.placed", call_id=call.call_id, leg_call_id=invite.call_id, peer=host)
        call.b = leg
        self.calls.file(call, invite.call_id)
        leg.tx = self._ep.request(invite, Target(host, port, transport),
                                  on_provisional=lambda r: self.relay_provisional(call, r))
        try:
            response = await leg.tx.final()
        except SipFailure as exc:
            call.tried.append((host, str(exc)))
            self._fail(call, 408 if "timer" in str(exc).lower() else 503, f"PSTN trunk: {exc}")
            return
        call.tried.append((host, str(response.status)))
        if response.status >= 300:
            self._fail(call, response.status, response.reason or "", from_peer=True)
            return
        self._connected(call, leg, invite, response, host)

    def _teams_peer(self, tls: PeerInfo | None) -> str | None:
        """The proxy FQDN or our SBA that the peer's certificate names, if any."""
        if tls is None:
            return None
        names = [*self.proxies, *([self.sba] if self.sba else [])]
        for name in names:
            with contextlib.suppress(Exception):
                if tls.matches(name):
                    return name
        return None

    # --- shared call plumbing -----------------------------------------------------------------
    def _new_call(self, incoming: Incoming, direction: Direction, caller: str, callee: str, path: CallPath,
                  kind: str, peer: str) -> Call | None:
        request: Request = incoming.request
        contact = self._teams_contact(callee) if kind == "teams" else self._pstn_contact(to_carrier(callee))
        transport = incoming.source.transport.upper()
        port = self.tls_port if kind == "teams" else self.pstn_port
        now = self._now()
        draft = CdrDraft(call_id=request.call_id, caller=caller, callee=callee, direction=direction, path=path,
                         node=self.fqdn, invite_at=now, gateway=self.fqdn)
        a = Leg(kind, peer=peer, incoming=incoming)
        call = Call(request.call_id, caller, callee, direction, a, draft=draft, path=path)
        try:
            a.dialog = Dialog.from_uas_request(request, incoming.to_tag, local_contact=contact,
                                               sent_by=f"{self.fqdn}:{port}", transport=transport)
        except (DialogError, ValueError) as exc:
            incoming.respond(400, f"Bad Request: {exc}"[:60])
            return None
        if self._at_limit():
            self.calls.add(call)
            self.call_event("call.started", call)
            self._fail(call, 503, "SBC Session Limit")
            return None
        self.calls.add(call)
        self.call_event("call.started", call)
        return call

    def _connected(self, call: Call, leg: Leg, invite: Request, response: Response, peer: str) -> None:
        try:
            taken = self.take_answer(call, leg, invite, response, local_contact=invite.headers.get("Contact") or "",
                                     sent_by=self.fqdn, transport=leg.tx.target.transport.upper())
        except DialogError as exc:
            self._fail(call, 502, f"bad 2xx from {peer}: {exc}")
            return
        if not taken:
            self._fail(call, 487, "Request Terminated")
            return
        self.answer_caller(call, response, headers=[("Allow", ALLOW)])
        call.draft.answered(self._now())
        self.call_event("call.answered", call, status=200)

    def _caller_cancelled(self, call: Call) -> None:
        if not call.setting_up:
            return
        if call.b is not None and call.b.tx is not None:
            call.b.tx.cancel()
        self._fail(call, 487, "Request Terminated")

    def _fail(self, call: Call, status: int, reason: str, *, from_peer: bool = False) -> None:
        if call.ended:
            return
        incoming = call.a.incoming
        if not incoming.answered:
            incoming.respond(status, reason or None)
        call.end()
        if status == 487:
            result: ResultCode = result_for("caller_cancelled")
        elif 300 <= status <= 699:
            result = result_from_gateway(status, reason or "failed")
        else:
            result = ResultCode(status, 599000 + status, reason, False)
        end_reason = default_end_reason(result, answered=False)
        ended_by = "caller" if end_reason is EndReason.CANCELLED else "callee" if from_peer else "self"
        self._record(call, result, end_reason, ended_by)
        self.call_event("call.ended", call, status=status, reason=reason, end_reason=str(end_reason),
                        ended_by=ended_by)

    def _record(self, call: Call, result: ResultCode | None, end_reason: EndReason, ended_by: str) -> None:
        self.end_media(call)
        cdr = call.draft.finish(self._now(), result, end_reason=end_reason, ended_by=ended_by)
        self.cdrs.append(cdr)
        self.calls.forget(call)
        self.log.info("cdr.record", **{k: v for k, v in cdr.to_dict().items() if k != "node"}, writer=cdr.node)

    async def _on_bye(self, call: Call, leg: Leg, incoming: Incoming) -> None:
        if leg.dialog is not None:
            leg.dialog.receive_request(incoming.request)
        incoming.respond(200)
        if call.state is not CallState.ANSWERED:
            return
        await self._hang_up(call, leg, EndReason.NORMAL)

    async def _hang_up(self, call: Call, by: Leg | None, end_reason: EndReason) -> None:
        """End an answered call: BYE from leg `by`, or this node's decision (`by` None)."""
        if not call.end():
            return
        ended_by = "self" if by is None else "caller" if by is call.a else "callee"
        self._record(call, None, end_reason, ended_by)
        byes = await self.bye_all(call, but=by)
        reason = "ended here" if by is None else f"BYE from {by.kind}"
        self.call_event("call.ended", call, status=200, reason=reason, end_reason=str(end_reason),
                        ended_by=ended_by, byes=byes)

    async def end_silent(self, call: Call, leg: Leg) -> None:
        await self._hang_up(call, None, EndReason.MEDIA_TIMEOUT)

    def endpoint_of(self, leg: Leg) -> SipEndpoint | None:
        return self._ep

    def target_of(self, leg: Leg) -> Target:
        """Where in-dialog requests of `leg` go: the carrier's trunk, or the Teams peer over TLS
        (on the connection its INVITE came on while that is open, else its Contact)."""
        if leg.kind == "pstn":
            assert self.carrier is not None
            host, port, transport = self.carrier
            return Target(host, port, transport)
        if leg.connection is not None and leg.connection.is_open:
            return Target(leg.peer, None, "tls", connection=leg.connection, tls=self._tls)
        assert leg.dialog is not None
        target = Target.from_uri(leg.dialog.remote_target, tls=self._tls)
        return Target(target.host, target.port if target.port else 5061, "tls", tls_name=leg.peer, tls=self._tls)

    def _teams_contact(self, user: str) -> str:
        return f"<sip:{user}@{self.fqdn}:{self.tls_port};transport=tls>"

    def _pstn_contact(self, user: str) -> str:
        transport = self.carrier[2] if self.carrier else "udp"
        return f"<sip:{user}@{self._pstn_names()[0]}:{self.pstn_port};transport={transport}>"

    def _pstn_names(self) -> tuple[str, str]:
        """(us, the carrier) as the PSTN leg names them: the lab's names toward a carrier in the
        lab; addresses toward an external one, which cannot resolve the lab's names."""
        host = self.carrier[0] if self.carrier else ""
        if self.carrier is None or not self.ctx.network.is_external(host):
            return self.fqdn, host
        return self._ep.name_toward(host), self._address(host)

    def call_event(self, name: str, call: Call, **extra: Any) -> None:
        extra.setdefault("status", None)
        via = call.b.peer if call.b is not None else (call.tried[-1][0] if call.tried else None)
        self.log.info(name, call_id=call.call_id, caller=call.caller, callee=call.callee, path=str(call.path),
                      via=via, direction=str(call.direction), **extra)


def _ended_or_unknown(found: tuple[Call, Leg] | None) -> bool:
    return found is None or found[0].ended


def _asserted(request: Request) -> Any:
    """The P-Asserted-Identity URI (ForwardPai makes From anonymous, RFC 3325), if any."""
    value = request.headers.get("P-Asserted-Identity")
    if not value:
        return None
    text = value.split(",")[0].strip()
    if "<" in text:
        text = text[text.index("<") + 1:text.index(">")]
    with contextlib.suppress(Exception):
        return parse_uri(text)
    return None


def _is_anonymous(uri: Any) -> bool:
    """The anonymous URI of RFC 3325 §9.1 / RFC 3261 §8.1.1.3 (`sip:anonymous@anonymous.invalid`)."""
    return str(getattr(uri, "user", "") or "").lower() == "anonymous" or \
        str(getattr(uri, "host", "") or "").lower() == "anonymous.invalid"


def _seconds(value: str | None, default: float) -> float:
    try:
        return float(str(value).split(";")[0].split("(")[0].strip())
    except (TypeError, ValueError):
        return default
