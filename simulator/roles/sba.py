"""The Survivable Branch Appliance on the network: cache sync, registrar, survivable calls, CDRs.

`sba_cache.py` holds what the SBA knows and decides (the versioned cache, survivable routing,
the token rules, the CDR buffer); this module is the asyncio skin around it [S26]:

- **Sync.** Every `sba_sync_interval_s` it sends `MESSAGE sip:sba-sync@pstnhub.microsoft.com`
  (`application/vnd.drlab.sba-sync+json`, body `{"sba": fqdn, "have_version": n}`) to sip, then
  sip2, then sip3 on port 443 over TLS, presenting its certificate. A 200 carries the
  `BranchConfig` JSON; a cut link, a timeout or an error leaves the cache as it was. Each attempt
  is an `sba.sync` event (`version` = the cache's version after it, `ok`).
- **CDR upload.** After a successful sync, the buffered CDRs go up in one
  `MESSAGE sip:sba-cdr@...` (`{"cdrs": [...]}` -> `{"accepted": [ids]}`); only acknowledged ids
  are forgotten, and the cloud stores by id, so nothing is lost or doubled (`sba.cdr_upload`).
- **Registrar** on TLS `:5061` (its own certificate; a client shows none) for the users its cache
  holds: `REGISTER` with the lab's Bearer token (roles/token.py) is admitted by
  `ClientAdmission` (24 h rule, 7-day expired-token grace, CAE limit) -> 200 with Expires, else
  403 with the reason as phrase (401 without a token, 400 for an unreadable one, 404 for a user
  the cache does not hold). `OPTIONS` with a token is an online client's check-in: the user
  counts as seen (`sba.checkin`). A probe without a token is answered and records nothing.
- **Survivable calls**, a B2BUA (roles/b2bua.py: two legs and a little logic, like Sippy): every
  call the SBA handles is decided from the cache alone. Client -> PSTN: `decide_outbound`, then
  the local SBC (`topology.sba_sbc`) over mutual TLS on the branch LAN (other gateways of the
  cached route are tried after it, and are unreachable in an outage anyway; the proxy's failover
  rule decides when, roles/gateway_attempts.py [S4][S5]: a FailoverResponseCode before any
  provisional other than 100, or none within the gateway's FailoverTimeSeconds, which CANCELs
  the attempt). PSTN -> client: the SBC sends the
  INVITE here; `decide_inbound` finds the cached user by number, with immediate or unanswered
  single-target forwarding. Client <-> client when the dialled number is a cached user's.
  Re-INVITEs (hold/resume) are relayed to the other leg; a REFER is a blind transfer: 202, the
  other party is connected to the target by a new leg, and the transferor is NOTIFYed in the
  REFER's dialog (RFC 3515: `SIP/2.0 100 Trying`, then the new leg's final status line;
  roles/b2bua.py's `TransferProgress`, as the proxy) before it leaves. Emergency
  strings follow the documented limitation (`decide_outbound`: sent without '+', routed only if
  the cached voice routing policy matches them).

Call legs: the A leg is the one that sent us the INVITE, the B leg the one we placed. Media is
bypassed [S26], so SDP bodies pass through unchanged. Each call writes one CDR
(path `sba`) into the buffer and a `cdr.record` event; the `call.*` events carry `path="sba"`.

    sba = Sba(ctx, NodeSpec("sba-sea", "sba1.contoso.com", "sba", site="seattle"))
    await sba.start(); ...; await sba.stop()
    await sba.restart()            # reboot: registrations and calls lost; cache and unsent CDRs kept
    await sba.sync_now()           # -> bool; await sba.upload_cdrs() -> count acknowledged
    sba.cache (SbaCache: .version, .user(upn)), sba.bindings {upn: Binding}, sba.cdrs.pending

Events (node = this node's name):
- `sba.started` (sba, sbc); `sba.sync` (sba, version, ok; on success proxy, cloud_version, users,
  changed, added, removed, renumbered; on failure reason); `sba.cdr_upload` (sba, count, proxy,
  ids, pending) / `sba.cdr_upload_failed` (sba, count, reason, retry_at).
- `sba.checkin` (user); `sba.registered` (user, expires, reason, cache_version);
  `sba.unregistered` (user); `sba.registration_refused` (user, status, reason);
  `sba.call_refused` (status, reason, caller).
- `route.decision` (user, dialed, number, gateways, reasons, emergency, refusal, cache_version);
  `sba.gateway_failover` (call_id, gateway, status, reason, next).
- `call.started|ringing|answered|held|resumed|transferred|forwarded|ended` (call_id, caller,
  callee, status, path="sba", direction; answered: answered_by; forwarded: target, kind
  immediate|unanswered; transferred: by, target; ended: status, result = Microsoft code);
  `call.transfer_notified` (call_id of the REFER's dialog, sipfrag, final, status = the
  transferor's answer) / `call.notify_failed` (call_id, reason) when none came;
  `cdr.record` (the fields of Cdr.to_dict(), its `node` as `writer`); `call.ended` adds end_reason,
  ended_by (and byes); `leg.placed` (call_id, leg_call_id, peer); `call.path_lost` /
  `call.media_timeout` (leg) for a call ended on media silence (roles/b2bua.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from simulator.endpoint import Connection, Incoming, SipEndpoint, SipFailure, Target, TlsConfig
from simulator.media.session import without_media_address
from simulator.net.tls import TlsPolicy
from simulator.roles.b2bua import B2bua, Call, CallTable, Leg, TransferProgress, accept_refer, find_leg
from simulator.roles.cdr import (
    CallPath,
    CdrDraft,
    Direction,
    EndReason,
    ResultCode,
    result_for,
    result_from_client,
    result_from_gateway,
)
from simulator.roles.context import NodeSpec, RoleContext
from simulator.roles.gateway_attempts import Action, Decision, FailoverCause, FailoverRule, GatewayAttempts
from simulator.roles.sba_cache import BranchConfig, CdrBuffer, ClientAdmission, SbaCache
from simulator.roles.tasks import RoleTasks
from simulator.roles.token import Token
from simulator.sip import Request, Response, parse_uri
from simulator.sip.builders import (
    DEFAULT_MAX_FORWARDS,
    make_request,
    new_branch,
    new_call_id,
    new_tag,
    onward_max_forwards,
)
from simulator.sip.dialog import Dialog, DialogError
from simulator.tenant.model import (
    DEFAULT_FAILOVER_RESPONSE_CODES,
    DEFAULT_FAILOVER_TIME_SECONDS,
)

SYNC_CONTENT_TYPE = "application/vnd.drlab.sba-sync+json"
CDR_CONTENT_TYPE = "application/vnd.drlab.cdr+json"
CLOUD_DOMAIN = "pstnhub.microsoft.com"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, REFER"


@dataclass
class Binding:
    """A client registered here (appliance mode): how to reach it and until when."""

    upn: str
    contact: str
    address: str
    port: int
    connection: Any
    expires_at: float


class Sba(B2bua):
    def __init__(self, ctx: RoleContext, spec: NodeSpec) -> None:
        self.ctx, self.spec = ctx, spec
        self.fqdn = spec.fqdn.lower()
        self.node = spec.name
        self.settings = ctx.settings
        self.log = ctx.logger(spec.name)
        self.rng = ctx.rng_for(spec.name + "/b2bua")
        self.cache = SbaCache(self.fqdn, self.settings)
        self.admission = ClientAdmission(self.settings)
        self.cdrs = CdrBuffer(self.settings)
        self.sbc: str | None = ctx.topology.sba_sbc.get(self.fqdn)
        self.bindings: dict[str, Binding] = {}
        self.calls = CallTable()  # calls in progress: each leaves once its record is written
        self._departing: list[Call] = []  # calls ended by a transfer, until the transferor's BYE
        self._ep: Any = None
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks = RoleTasks(self.log, "sba.internal_error")
        self._no_media_path: set[str] = set()  # calls whose media.no_path is logged
        self._wake = asyncio.Event()
        self._stopping = False
        self._cloud_ok = False
        self._addresses: dict[str, str] = {}

    # --- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        identity = self.ctx.identities.get(self.fqdn)
        if identity is None:
            raise ValueError(f"node {self.node}: no certificate for {self.fqdn} in the lab PKI "
                             f"(an SBA serves TLS on {self.ctx.topology.sba_port})")
        self._ep = self.ctx.endpoint(self.spec, relays_calls=True)
        self._ep.on_request = self._on_request
        self._ep.on_connection_closed = self._connection_closed
        # Clients show no certificate; the SBC shows its own (mutual TLS on the branch LAN).
        await self._ep.listen("tls", self.ctx.topology.sba_port, tls=TlsConfig(
            identity=identity, trust=self.ctx.trust,
            policy=TlsPolicy.direct_routing(), require_client_cert=False))
        self._stopping = False
        self._loop_task = asyncio.create_task(self._cloud_loop(), name=f"{self.node}-sync")
        self.log.info("sba.started", sba=self.fqdn, sbc=self.sbc)

    async def stop(self) -> None:
        # the flag, not only the cancel: Python 3.11's wait_for can turn a cancel that races a
        # timeout into TimeoutError, which the loop would take for a failed sync and go on
        self._stopping = True
        self._wake.set()
        await self._tasks.cancel_all(self._loop_task)
        self._loop_task = None
        if self._ep is not None:
            await self._ep.close()
            self._ep = None

    async def restart(self) -> None:
        """Reboot: registrations and calls are gone (each call with its record); the cache and unsent
        CDRs are on disk and stay."""
        for call in list(self.calls):
            restarted = None if call.draft.answer_at is not None else result_for("node_restarted")
            self._end(call, restarted, end_reason=EndReason.RESTARTED, ended_by="self")
        await self.stop()
        self.bindings.clear()
        self.calls.clear()
        self._departing.clear()
        self.cdrs.in_flight = ()
        await self.start()

    def _connection_closed(self, conn: Connection, reason: str) -> None:
        if not self._stopping:
            self.connection_lost(conn, self.calls)

    # --- the cloud: sync and CDR upload --------------------------------------------------------------
    async def _cloud_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            if self.cache.sync_due(loop.time()):
                await self.sync_now()
            if self._cloud_ok and self.cdrs.upload_due(loop.time()):
                await self.upload_cdrs()
            deadlines = [self.cache.next_sync_at()]
            if self.cdrs.pending and self._cloud_ok:
                deadlines.append(self.cdrs.next_upload_at or loop.time())
            deadline = min(d for d in deadlines if d is not None)
            # an absolute deadline: a relative one can land a hair early on the float clock and spin
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._wake.wait()

    async def sync_now(self) -> bool:
        """One sync exchange with the cloud; True when a configuration was installed."""
        now = asyncio.get_running_loop().time()
        self.cache.sync_started(now)
        body = json.dumps({"sba": self.fqdn, "have_version": self.cache.cloud_version}).encode()
        response, proxy, failure = await self._cloud_message("sba-sync", body, SYNC_CONTENT_TYPE)
        now = asyncio.get_running_loop().time()
        if response is not None and response.status == 200:
            try:
                config = BranchConfig.from_json(response.body)
            except ValueError as exc:
                failure = f"bad sync answer from {proxy}: {exc}"
            else:
                outcome = self.cache.apply_sync(config, now)
                self._cloud_ok = True
                self.log.info("sba.sync", sba=self.fqdn, version=self.cache.version, ok=True, proxy=proxy,
                              cloud_version=config.version, users=len(config.users), **{
                                  k: list(v) if isinstance(v, tuple) else v
                                  for k, v in outcome.fields().items() if k != "version"})
                return True
        elif response is not None:
            failure = f"{response.status} {response.reason} from {proxy}"
        self._cloud_ok = False
        self.cache.sync_failed(now, failure or "no answer")
        self.log.info("sba.sync", sba=self.fqdn, version=self.cache.version, ok=False, reason=failure)
        return False

    async def upload_cdrs(self) -> int:
        """Upload the buffered CDRs; returns how many the cloud acknowledged."""
        loop = asyncio.get_running_loop()
        if not self.cdrs.pending or self.cdrs.in_flight:
            return 0
        batch = self.cdrs.start_upload(loop.time())
        body = json.dumps({"cdrs": [c.to_dict() for c in batch]}).encode()
        response, proxy, failure = await self._cloud_message("sba-cdr", body, CDR_CONTENT_TYPE)
        if response is not None and response.status == 200:
            try:
                accepted = json.loads(response.body)["accepted"]
                if not isinstance(accepted, list):
                    raise TypeError("'accepted' is not a list")
            except (ValueError, KeyError, TypeError) as exc:
                failure = f"bad CDR upload answer from {proxy}: {exc}"
            else:
                count = self.cdrs.acknowledge([str(i) for i in accepted])
                self.log.info("sba.cdr_upload", sba=self.fqdn, count=count, proxy=proxy,
                              ids=[str(i) for i in accepted], pending=len(self.cdrs.pending))
                return count
        elif response is not None:
            failure = f"{response.status} {response.reason} from {proxy}"
        retry_at = self.cdrs.upload_failed(loop.time())
        self.log.info("sba.cdr_upload_failed", sba=self.fqdn, count=len(batch), reason=failure, retry_at=retry_at)
        return 0

    async def _cloud_message(self, user: str, body: bytes, content_type: str) -> tuple[Response | None, str | None, str | None]:
        """MESSAGE to the cloud service at sip, sip2, sip3 in turn: (response, proxy, failure)."""
        failures = []
        for proxy in self.ctx.topology.proxies:
            request = self._request("MESSAGE", f"sip:{user}@{CLOUD_DOMAIN}", from_=f"<sip:{self.fqdn}>",
                                    to=f"<sip:{user}@{CLOUD_DOMAIN}>", body=body, content_type=content_type)
            response, failure = await self._send(request, self._target(proxy, self.ctx.topology.proxy_client_port),
                                                 timeout=self.settings.sba_sync_timeout_s)
            if response is not None and response.status < 500:
                return response, proxy, None
            failures.append(f"{proxy}: {failure or f'{response.status} {response.reason}'}")  # type: ignore[union-attr]
        return None, None, "; ".join(failures)

    # --- SIP plumbing ----------------------------------------------------------------------------------
    def _request(self, method: str, uri: str, *, from_: str, to: str, call_id: str | None = None,
                 body: bytes = b"", content_type: str | None = None, max_forwards: int = DEFAULT_MAX_FORWARDS,
                 extra: list[tuple[str, str]] = ()) -> Request:  # type: ignore[assignment]
        return make_request(
            method, uri, from_=f"{from_};tag={new_tag(self.rng)}", to=to,
            call_id=call_id or new_call_id(self.rng, self.fqdn), cseq=1,
            via=f"SIP/2.0/TLS {self.fqdn};branch={new_branch(self.rng)}",
            contact=self.contact if method == "INVITE" else None,
            max_forwards=max_forwards, extra_headers=list(extra), body=body, content_type=content_type)

    @property
    def contact(self) -> str:
        return f"<sip:{self.fqdn}:{self.ctx.topology.sba_port};transport=tls>"

    def _target(self, host: str, port: int, connection: Connection | None = None) -> Target:
        # the SBA presents its certificate on every connection it opens (cloud sync, its SBC)
        return Target(host, port, "tls", tls_name=host, connection=connection,
                      tls=TlsConfig(identity=self.ctx.identities.get(self.fqdn), trust=self.ctx.trust))

    async def _send(self, request: Request, target: Any, *, timeout: float | None = None,
                    on_provisional: Any = None, leg: Leg | None = None) -> tuple[Response | None, str | None]:
        if self._ep is None:
            return None, "SBA stopped"
        try:
            tx = self._ep.request(request, target, on_provisional=on_provisional)
            if leg is not None:
                leg.tx = tx
            response = await asyncio.wait_for(asyncio.shield(tx.final()), timeout)
        except TimeoutError:
            return None, "timeout"
        except SipFailure as exc:
            return None, str(exc) or type(exc).__name__
        finally:
            if leg is not None:
                leg.tx = None
        return response, None

    def _address_of(self, fqdn: str) -> str | None:
        if fqdn not in self._addresses:
            try:
                self._addresses[fqdn] = self.ctx.network.resolve(fqdn)
            except Exception:
                return None
        return self._addresses[fqdn]

    # --- requests in ------------------------------------------------------------------------------------
    def _find(self, request: Request) -> tuple[Call, Leg] | None:
        """The call and leg of an in-dialog request: a call in progress, or a transferor's leg
        between its REFER and its BYE."""
        return self.calls.find(request) or find_leg(self._departing, request)

    async def _on_request(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        method = request.method
        if method == "REGISTER":
            self._on_register(incoming)
        elif method == "OPTIONS" and request.to.tag is not None and self._find(request) is None:
            incoming.respond(481)  # in-dialog, and the dialog is not ours (any more): RFC 3261 §12.2.2
        elif method == "OPTIONS":
            self._on_options(incoming)
        elif method == "INVITE" and request.to.tag is None:
            await self._on_invite(incoming)
        elif method == "ACK":
            return
        elif method in ("INVITE", "BYE", "REFER"):
            found = self._find(request)
            if found is None:
                incoming.respond(481)
                return
            call, leg = found
            status = leg.dialog.receive_request(request) if leg.dialog is not None else None
            if status is not None:
                incoming.respond(status)
                return
            if method == "INVITE":
                await self.relay_in_dialog(call, leg, incoming)
            elif method == "BYE":
                await self._on_bye(incoming, call, leg)
            else:
                await self._on_refer(incoming, call, leg)
        else:
            incoming.respond(405, headers=[("Allow", ALLOW)])

    def _peer_is_sbc(self, incoming: Incoming) -> bool:
        """The co-located SBC: its certificate when it showed one, else its address on the branch
        LAN (clients and the SBC share port 5061, so the listener cannot demand a certificate)."""
        if self.sbc is None:
            return False
        tls = incoming.source.tls
        if tls is not None and tls.certificate is not None and tls.matches(self.sbc):
            return True
        return incoming.source.address == self._address_of(self.sbc)

    # --- registrar ------------------------------------------------------------------------------------
    def _token_of(self, request: Request) -> tuple[Token | None, str | None]:
        header = request.headers.get("Authorization")
        if header is None:
            return None, None
        try:
            return Token.parse(header), None
        except ValueError as exc:
            return None, str(exc)

    def _on_register(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        now = asyncio.get_running_loop().time()
        token, bad = self._token_of(request)
        aor = _aor(request.to.uri) if request.to is not None else ""
        if bad is not None:
            incoming.respond(400, f"Bad token: {bad}")
            self.log.info("sba.registration_refused", user=aor, status=400, reason=bad)
            return
        if token is None:
            incoming.respond(401, "Token required", headers=[("WWW-Authenticate", 'Bearer realm="sba"')])
            self.log.info("sba.registration_refused", user=aor, status=401, reason="no token")
            return
        if token.upn != aor:
            incoming.respond(403, "Token names another user")
            self.log.info("sba.registration_refused", user=aor, status=403, reason=f"token is for {token.upn}")
            return
        expires = _requested_expires(request, self.settings.sba_registration_expiry_s)
        if expires == 0:
            self.bindings.pop(aor, None)
            incoming.respond(200)
            self.log.info("sba.unregistered", user=aor)
            return
        verdict = self.admission.admit(aor, token_authenticated_at=token.issued, token_expires_at=token.expires, now=now)
        if not verdict.ok:
            incoming.respond(403, _phrase(verdict.reason))
            self.log.info("sba.registration_refused", user=aor, status=403, reason=verdict.reason)
            return
        if self.cache.user(aor) is None:
            reason = f"{aor} is not in the SBA's cache (version {self.cache.version})"
            incoming.respond(404, _phrase(reason))
            self.log.info("sba.registration_refused", user=aor, status=404, reason=reason)
            return
        granted = min(expires, int(self.settings.sba_registration_expiry_s))
        contact = str(request.contacts[0].uri) if request.contacts else f"sip:{aor}"
        src = incoming.source
        self.bindings[aor] = Binding(aor, contact, src.address, src.port, src.connection, now + granted)
        incoming.respond(200, headers=[("Contact", f"<{contact}>;expires={granted}"), ("Expires", str(granted))])
        self.log.info("sba.registered", user=aor, expires=granted, reason=verdict.reason,
                      cache_version=self.cache.version)

    def _on_options(self, incoming: Incoming) -> None:
        token, _bad = self._token_of(incoming.request)
        now = asyncio.get_running_loop().time()
        if token is not None and not token.expired(now):
            self.admission.record_contact(token.upn, now)
            self.log.info("sba.checkin", user=token.upn)
        incoming.respond(200, headers=[("Allow", ALLOW)])

    def _binding(self, upn: str) -> Binding | None:
        binding = self.bindings.get(upn.lower())
        if binding is not None and binding.expires_at < asyncio.get_running_loop().time():
            del self.bindings[upn.lower()]
            return None
        return binding

    def _caller_of(self, incoming: Incoming) -> str | None:
        """The registered client that sent this request: the From AOR, bound on this connection."""
        request: Request = incoming.request
        upn = _aor(request.from_.uri) if request.from_ is not None else ""
        binding = self._binding(upn)
        if binding is None or binding.address != incoming.source.address:
            return None
        return upn

    # --- calls ------------------------------------------------------------------------------------------
    async def _on_invite(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        now = asyncio.get_running_loop().time()
        dialed = _user_part(request.uri)
        a_tag = new_tag(self.rng)
        from_sbc = self._peer_is_sbc(incoming)
        if from_sbc:
            caller = _user_part(request.from_.uri) if request.from_ is not None else "anonymous"
            a = Leg("pstn", party=caller, gateway=self.sbc)
        else:
            upn = self._caller_of(incoming)
            if upn is None:
                incoming.respond(403, "Not registered at this SBA", to_tag=a_tag)
                self.log.info("sba.call_refused", status=403, reason="caller not registered here",
                              caller=str(request.from_.uri) if request.from_ else None)
                return
            a = Leg("client", party=upn)
        a.incoming, a.sdp, a.local_tag = incoming, request.body, a_tag
        a.target = self._target(incoming.source.address, incoming.source.port, connection=incoming.source.connection)
        try:
            a.dialog = Dialog.from_uas_request(request, a_tag, local_contact=self.contact, sent_by=self.fqdn,
                                               transport="TLS")
        except DialogError as exc:
            incoming.respond(400, _phrase(str(exc)), to_tag=a_tag)
            return
        direction = Direction.INBOUND if from_sbc else Direction.OUTBOUND
        user = None if from_sbc else a.party
        cached = self.cache.user(a.party) if user else None
        caller_number = cached.phone_number if cached is not None and cached.phone_number else a.party
        cdr = CdrDraft(call_id=request.call_id or "", caller=caller_number, callee=dialed, direction=direction,
                       path=CallPath.SBA, node=self.fqdn, invite_at=now, user=user)
        call = Call(cdr.call_id, a.party, dialed, direction, a, draft=cdr, path=CallPath.SBA, user=user)
        self.watch_cancel(call)
        self.calls.add(call)
        self.call_event("call.started", call, dialed=dialed)
        if from_sbc:
            await self._route_inbound(call, dialed)
        else:
            await self._route_outbound(call, dialed)

    async def _route_outbound(self, call: Call, dialed: str) -> None:
        decision = self.cache.decide_outbound(call.a.party, dialed, health=self._health(), rng=self.rng)
        self.log.info("route.decision", user=call.a.party, dialed=dialed, number=decision.number,
                      gateways=list(decision.gateways), reasons=list(decision.reasons),
                      emergency=decision.emergency, refusal=decision.refusal, cache_version=self.cache.version)
        call.callee = call.draft.callee = decision.number
        if decision.refusal is not None:
            self._refuse(call, result_for(decision.refusal))
            return
        if decision.local_user is not None:
            call.direction = call.draft.direction = Direction.INTERNAL
            await self._connect(call, self._client_leg(decision.local_user))
            return
        await self._connect(call, self._pstn_leg(decision.number, list(decision.gateways)))

    async def _route_inbound(self, call: Call, number: str) -> None:
        decision = self.cache.decide_inbound(number)
        self.log.info("route.decision", user=decision.user, dialed=number, gateways=[], reasons=[decision.reason],
                      refusal=decision.refusal, cache_version=self.cache.version)
        if decision.refusal is not None or decision.user is None:
            self._refuse(call, result_for(decision.refusal or "unknown_to_sba"))
            return
        call.user = call.draft.user = decision.user
        if decision.forward_to:
            self.call_event("call.forwarded", call, target=decision.forward_to, kind="immediate")
            await self._connect(call, self._target_leg(decision.user, decision.forward_to))
            return
        await self._connect(call, self._client_leg(decision.user), unanswered_to=decision.unanswered_to,
                            unanswered_after_s=decision.unanswered_after_s)

    def _health(self) -> dict[str, str]:
        """In an outage only the local SBC is reachable: every other gateway is tried last."""
        if self.sbc is None or self.cache.snapshot is None:
            return {}
        return {g.fqdn.lower(): ("active" if g.fqdn.lower() == self.sbc else "demoted")
                for g in self.cache.snapshot.config.gateways}

    def _client_leg(self, upn: str) -> Leg:
        return Leg("client", party=upn)

    def _pstn_leg(self, number: str, gateways: list[str]) -> Leg:
        # the local trunk first, whatever gateways the cached route names: the SBA reaches the PSTN
        # "via local SBA/SBC" [S26]; the route only decides whether the call is allowed, and its
        # gateways are the alternatives (unreachable in an outage anyway). They are tried under
        # the proxy's failover rule (roles/gateway_attempts.py).
        local = [self.sbc] if self.sbc else []
        order = local + [g for g in gateways if g != self.sbc]
        attempts = GatewayAttempts([(g, self._failover_rule(g)) for g in order])
        return Leg("pstn", party=number, gateway=attempts.next_gateway(asyncio.get_running_loop().time()),
                   attempts=attempts)

    # --- media ----------------------------------------------------------------------------------------
    def media_body(self, call: Call, body: bytes, side: str) -> bytes:
        return self._survivable_media(call, body)

    def _survivable_media(self, call: Call, body: bytes, leg: Leg | None = None) -> bytes:
        """The SBA needs media bypass [S26]: the client and the SBC exchange media directly, and
        SDP passes unchanged. Through a gateway without media bypass a survivable call has no media
        path (its media would go to the cloud's media processor): the SDP relayed says so (0.0.0.0)."""
        gateways = {x.gateway for x in (call.a, call.b, leg) if x is not None and x.kind == "pstn" and x.gateway}
        config = self.cache.snapshot.config if self.cache.snapshot is not None else None
        blocked = [g.fqdn for g in (config.gateways if config is not None else ())
                   if g.fqdn.lower() in {x.lower() for x in gateways} and not g.media_bypass]
        if not blocked or not body:
            return body
        if call.call_id not in self._no_media_path:
            self._no_media_path.add(call.call_id)
            self.log.warning("media.no_path", call_id=call.call_id,
                             reason=f"gateway {blocked[0]} has no media bypass, which survivable calls need")
        return without_media_address(body)

    def _failover_rule(self, gateway: str) -> FailoverRule:
        """The cached gateway's FailoverResponseCodes and FailoverTimeSeconds (New-CsOnlinePSTNGateway's
        defaults [S4] for a gateway the cache does not list, e.g. the local SBC of a thin tenant)."""
        config = self.cache.snapshot.config if self.cache.snapshot is not None else None
        for g in (config.gateways if config is not None else ()):
            if g.fqdn.lower() == gateway.lower():
                return FailoverRule(g.failover_response_codes, float(g.failover_time_seconds))
        return FailoverRule(DEFAULT_FAILOVER_RESPONSE_CODES, float(DEFAULT_FAILOVER_TIME_SECONDS))

    def _target_leg(self, forwarding_user: str, target: str) -> Leg:
        """A forwarding target (a number or a UPN), dialled as the forwarding user would dial it."""
        if "@" in target:
            return self._client_leg(target.lower())
        decision = self.cache.decide_outbound(forwarding_user, target, health=self._health(), rng=self.rng)
        if decision.local_user is not None:
            return self._client_leg(decision.local_user)
        return self._pstn_leg(decision.number, list(decision.gateways))

    def _b_request(self, call: Call, leg: Leg, offer: bytes) -> tuple[Request | None, Any, str | None]:
        """Our INVITE for leg `leg` (None + why when the party cannot be reached)."""
        caller = call.a.party
        if "@" in caller and leg.kind == "pstn":
            # toward the PSTN a Teams caller is its number (the caller ID), as the cloud sends it
            cached = self.cache.user(caller)
            caller = cached.phone_number if cached is not None and cached.phone_number else caller
        from_uri = f"sip:{caller}" if "@" in caller else f"sip:{caller}@{self.fqdn};user=phone"
        if leg.kind == "client":
            binding = self._binding(leg.party)
            if binding is None:
                return None, None, f"{leg.party} is not registered at this SBA"
            uri, target = binding.contact, self._target(binding.address, binding.port, connection=binding.connection)
            to = f"<sip:{leg.party}>"
        else:
            if leg.gateway is None:
                return None, None, "no SBC trunk for this SBA in the lab topology"
            uri = f"sip:{leg.party}@{leg.gateway}:5061;user=phone;transport=tls"
            target, to = self._target(leg.gateway, 5061), f"<sip:{leg.party}@{leg.gateway};user=phone>"
        offer = self._survivable_media(call, offer, leg)
        request = self._request("INVITE", uri, from_=f"<{from_uri}>", to=to, body=offer,
                                content_type="application/sdp" if offer else None,
                                max_forwards=onward_max_forwards(call.a.incoming.request),
                                extra=[("P-Asserted-Identity", f"<{from_uri}>")])
        return request, target, None

    async def _connect(self, call: Call, leg: Leg, *, unanswered_to: str | None = None,
                       unanswered_after_s: float | None = None) -> None:
        """Place the B leg and bridge it to the A leg; forwards when unanswered (if set)."""
        while True:
            status, reason, decision = await self._place_b(
                call, leg, timeout=unanswered_after_s if unanswered_to else None)
            if status is not None and 200 <= status < 300:
                return
            if call.cancelled.is_set() or call.ended:
                return
            if decision is not None and decision.action is Action.TRY_NEXT and leg.attempts is not None:
                gateway = leg.attempts.next_gateway(asyncio.get_running_loop().time())
                self.log.info("sba.gateway_failover", call_id=call.draft.call_id, gateway=leg.gateway,
                              status=status, reason=reason, next=gateway)
                leg = Leg("pstn", party=leg.party, gateway=gateway, attempts=leg.attempts)
                continue
            if unanswered_to and status in (None, 408, 480, 487):
                self.call_event("call.forwarded", call, target=unanswered_to, kind="unanswered",
                            reason=reason or str(status))
                leg = self._target_leg(call.user or "", unanswered_to)
                unanswered_to = None
                continue
            if decision is not None and decision.cause is FailoverCause.TIMER_EXPIRED:  # the last gateway stayed silent too
                self._fail_a(call, 408, reason, result_for("failover_timer_expired"))
            elif status is None and leg.kind == "pstn":  # no gateway answered at all
                self._fail_a(call, 503, reason, result_for("all_gateways_failed"))
            else:
                self._fail_a(call, status or 480, reason)
            return

    async def _place_b(self, call: Call, leg: Leg, *,
                       timeout: float | None) -> tuple[int | None, str | None, Decision | None]:
        """Send the B leg's INVITE and wait for its outcome: (status, reason, and for a PSTN leg
        the failover rule's decision); status None when no response came."""
        request, target, why = self._b_request(call, leg, call.a.sdp)
        if request is None:
            return 480, why, None
        leg.invite, leg.target = request, target
        call.b = leg
        self.calls.file(call, request.call_id)
        self.log.info("leg.placed", call_id=call.call_id, leg_call_id=request.call_id, peer=leg.party if leg.kind == "client" else leg.gateway)
        if leg.kind == "pstn":
            call.draft.gateway = leg.gateway
            if call.direction is Direction.INBOUND:
                call.direction = call.draft.direction = Direction.FORWARDED
        attempts = leg.attempts
        loop = asyncio.get_running_loop()
        progressed = asyncio.Event()

        def provisional(response: Response) -> None:
            if attempts is not None and \
                    attempts.response(response.status, loop.time()).action is Action.RELAY_PROVISIONAL:
                progressed.set()
            self.relay_provisional(call, response)

        ring = asyncio.create_task(self._send(request, target, on_provisional=provisional, leg=leg))
        watch = asyncio.create_task(call.cancelled.wait())
        waits = {ring, watch}
        timer = None
        if attempts is not None:
            timer = asyncio.create_task(_failover_timer(attempts, progressed))
            waits.add(timer)
        decision: Decision | None = None
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if ring not in done:
                expired = timer is not None and timer in done and not call.cancelled.is_set()
                if expired:
                    decision = timer.result()  # type: ignore[union-attr]
                    failure = f"no 180/183/200 within FailoverTimeSeconds={attempts.rule.time_seconds:g}"  # type: ignore[union-attr]
                # unanswered (timer) or cancelled by the caller: CANCEL the B leg, wait for its 487
                if leg.tx is not None:
                    with contextlib.suppress(Exception):
                        leg.tx.cancel()
                response, failure2 = await ring
                if response is None or response.status >= 300:
                    if expired:
                        return 408, failure, decision
                    return (None if call.cancelled.is_set() else 408), failure2 or "unanswered", None
                decision = None  # the 200 crossed our CANCEL: the call is answered
            else:
                response, failure = ring.result()
        finally:
            for task in waits - {ring}:
                task.cancel()
        if response is None:
            return None, failure, attempts.unreachable(loop.time()) if attempts is not None else None
        if attempts is not None:
            decision = attempts.response(response.status, loop.time())
        if response.status >= 300:
            return response.status, response.reason, decision
        self._answered(call, leg, request, response)
        return response.status, None, None

    def _answered(self, call: Call, leg: Leg, request: Request, response: Response) -> None:
        now = asyncio.get_running_loop().time()
        try:
            taken = self.take_answer(call, leg, request, response, local_contact=self.contact, sent_by=self.fqdn,
                                     transport="TLS")
        except DialogError as exc:
            self._fail_a(call, 502, f"bad 2xx from {leg.party}: {exc}")
            return
        if not taken:
            return
        answerer = f"sip:{leg.party}" if "@" in leg.party else f"sip:{leg.party}@{self.fqdn};user=phone"
        self.answer_caller(call, response, headers=[("P-Asserted-Identity", f"<{answerer}>")])
        call.draft.answered(now)
        self.call_event("call.answered", call, answered_by=leg.party)

    def _refuse(self, call: Call, result: ResultCode) -> None:
        call.a.incoming.respond(result.sip_code, _phrase(result.phrase), to_tag=call.a.dialog.local_tag)
        self._end(call, result)

    def _fail_a(self, call: Call, status: int, reason: str | None, result: ResultCode | None = None) -> None:
        """The B side failed: answer the caller with its status (unless it cancelled) and close the CDR."""
        if call.cancelled.is_set():
            self._end(call, result_for("caller_cancelled"))
            return
        if not call.a.incoming.answered:
            call.a.incoming.respond(status, _phrase(reason) if reason else None, to_tag=call.a.dialog.local_tag)
        b = call.b
        if result is not None:
            pass
        elif status == 480 and (b is None or b.kind == "client"):
            result = result_for("callee_not_registered")
        elif 300 <= status <= 699:
            result = (result_from_gateway if b is not None and b.kind == "pstn" else result_from_client)(
                status, reason or "")
        else:
            result = result_for("all_gateways_failed")
        self._end(call, result)

    def _end(self, call: Call, result: ResultCode | None = None, *, end_reason: EndReason | None = None,
             ended_by: str | None = None, byes: dict[str, str] | None = None, at: float | None = None) -> None:
        """Close the call's record (at `at`, default now) and say so (`call.ended`)."""
        if not call.end():
            return
        now = asyncio.get_running_loop().time() if at is None else at
        answered = call.draft.answer_at is not None
        result = result if not answered else None
        if ended_by is None and not answered:
            cancelled = result == result_for("caller_cancelled")
            ended_by = "caller" if cancelled else "callee" if result is not None and result.ms_code >= 560000 else "self"
        cdr = call.draft.finish(now, result, end_reason=end_reason, ended_by=ended_by)
        self.cdrs.add(cdr)
        self.log.info("cdr.record", **{k: v for k, v in cdr.to_dict().items() if k != "node"}, writer=cdr.node)
        self.call_event("call.ended", call, status=cdr.result.sip_code, result=cdr.result.ms_code,
                        end_reason=cdr.end_reason, ended_by=cdr.ended_by, **({"byes": byes} if byes else {}))
        self.calls.forget(call)
        self._wake.set()

    def call_event(self, name: str, call: Call, **extra: Any) -> None:
        fields = {"call_id": call.call_id, "caller": call.caller, "callee": call.callee,
                  "status": extra.pop("status", None), "path": "sba", "direction": str(call.direction)}
        self.log.info(name, **fields, **extra)

    # --- in-dialog requests -------------------------------------------------------------------------------
    async def _on_bye(self, incoming: Incoming, call: Call, leg: Leg) -> None:
        incoming.respond(200)
        leg.dialog.terminate()  # type: ignore[union-attr]
        if leg is call.departing:
            call.departing = None
            if call in self._departing:
                self._departing.remove(call)
            return  # the transferor leaving after its REFER: the others stay connected
        ended_by = "caller" if leg is call.a else "callee"
        self._end(call, end_reason=EndReason.NORMAL, ended_by=ended_by, byes=await self.bye_all(call, but=leg))

    async def end_silent(self, call: Call, leg: Leg) -> None:
        decided_at = asyncio.get_running_loop().time()
        byes = await self.bye_all(call)
        self._end(call, end_reason=EndReason.MEDIA_TIMEOUT, ended_by="self", byes=byes, at=decided_at)

    def endpoint_of(self, leg: Leg) -> SipEndpoint | None:
        return self._ep

    def contact_on(self, leg: Leg) -> str:
        return self.contact

    async def _on_refer(self, incoming: Incoming, call: Call, leg: Leg) -> None:
        """Blind transfer: the transferor leaves, the other party is connected to the target."""
        accepted = accept_refer(incoming, call, leg)
        if accepted is None:
            return
        transferee, uri = accepted
        target = _user_part(uri)
        target_leg = self._target_leg(leg.party if leg.kind == "client" else (call.user or ""), target) \
            if "@" not in target else self._client_leg(target.lower())
        call.departing = leg
        self._departing.append(call)
        self.call_event("call.transferred", call, by=leg.party, target=target)
        self._tasks.spawn(self._complete_transfer(call, leg, transferee, target_leg))

    async def _complete_transfer(self, call: Call, transferor: Leg, transferee: Leg, target: Leg) -> None:
        progress = TransferProgress(transferor, self.rng, self.send_on_leg, self.log, self._tasks.spawn)
        # the new leg is placed once the transferor has its 100 Trying NOTIFY
        trying = progress.notify(100, "Trying", final=False)
        if trying is not None:
            await asyncio.wait({trying})
        status, reason = await self._transfer_to(call, transferor, transferee, target)
        done = progress.notify(status, reason, final=True)
        if done is not None:
            await asyncio.wait({done})

    async def _transfer_to(self, call: Call, transferor: Leg, transferee: Leg, target: Leg) -> tuple[int, str]:
        """Connect the transferee to the target; -> the new leg's final status and reason phrase."""
        now = asyncio.get_running_loop().time()
        # the first call ends here (answered, normal clearing); the transferred one gets its own CDR
        new_id = new_call_id(self.rng, self.fqdn)
        direction = Direction.INTERNAL if transferee.kind == target.kind == "client" else (
            Direction.OUTBOUND if target.kind == "pstn" else Direction.INBOUND)
        self._end(call, end_reason=EndReason.TRANSFERRED, ended_by="caller" if transferor is call.a else "callee")
        new = Call(new_id, transferee.party, target.party, direction, transferee,
                   draft=CdrDraft(call_id=new_id, caller=transferee.party, callee=target.party, direction=direction,
                                  path=CallPath.SBA, node=self.fqdn, invite_at=now,
                                  user=transferee.party if transferee.kind == "client" else target.party),
                   path=CallPath.SBA, user=call.user)
        self.calls.add(new)
        request, dest, why = self._b_request(new, target, transferee.sdp)
        if request is None:
            await self.bye(transferee)
            self._end(new, result_for("callee_not_registered"))
            return 480, _phrase(why or "Temporarily Unavailable")
        target.invite, target.target = request, dest
        new.b = target
        self.calls.file(new, request.call_id)
        self.log.info("leg.placed", call_id=new.call_id, leg_call_id=request.call_id, peer=target.party if target.kind == "client" else target.gateway)
        if target.kind == "pstn":
            new.draft.gateway = target.gateway
        response, failure = await self._send(request, dest, leg=target)
        if response is None or response.status >= 300:
            await self.bye(transferee)
            status = response.status if response is not None else 408
            self._end(new, result_from_gateway(status, failure or response.reason or "")  # type: ignore[union-attr]
                      if target.kind == "pstn" and status >= 300 else result_for("callee_not_registered"))
            return status, _phrase(failure or (response.reason if response is not None else "") or "Request Timeout")
        target.dialog = Dialog.from_uac_response(request, response, local_contact=self.contact,
                                                 sent_by=self.fqdn, transport="TLS")
        target.sdp = response.body
        self.ack_on_leg(target, request)
        new.answer()
        self.watch_media(new)
        new.draft.answered(asyncio.get_running_loop().time())
        await self.reoffer(transferee, response.body)  # the transferee now talks to the target
        self.call_event("call.answered", new, answered_by=target.party, transferred_from=transferor.party)
        return response.status, response.reason or "OK"


async def _failover_timer(attempts: GatewayAttempts, progressed: asyncio.Event) -> Decision:
    """Returns the failover rule's decision when the attempt's FailoverTimeSeconds pass with no
    provisional other than 100 (`progressed`); never returns after progress."""
    deadline = attempts.timer_deadline
    if deadline is not None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await progressed.wait()
        # the loop may wake a hair before the deadline: the wake-up is the deadline (as aioquic)
        decision = attempts.timer_fired(max(deadline, asyncio.get_running_loop().time()))
        if decision.cancel:
            return decision
    await asyncio.Event().wait()  # progress: the timer has stopped for good
    raise AssertionError("unreachable")


def _aor(uri: Any) -> str:
    """user@host of a SIP URI, lower-cased (a Teams user's UPN)."""
    user = getattr(uri, "user", None)
    host = getattr(uri, "host", "")
    return f"{user}@{host}".lower() if user else str(host).lower()


def _user_part(uri: Any) -> str:
    """The dialled string of a Request-URI / Refer-To: the user part (a number), or user@host."""
    if isinstance(uri, str):
        try:
            uri = parse_uri(uri)
        except Exception:
            return uri
    user = getattr(uri, "user", None)
    if user is None:
        return str(uri)
    params = getattr(uri, "params", {}) or {}
    host = getattr(uri, "host", "")
    if params.get("user") == "phone" or user.lstrip("+").isdigit():
        return user
    return f"{user}@{host}".lower()


def _requested_expires(request: Request, default: float) -> int:
    for contact in request.contacts:
        if contact.expires is not None:
            return int(contact.expires)
    value = request.headers.get("Expires")
    try:
        return int(value) if value is not None else int(default)
    except ValueError:
        return int(default)


def _phrase(text: str) -> str:
    """A reason phrase is one line of printable text (RFC 3261 §25.1 Reason-Phrase)."""
    return " ".join(str(text).split())[:200]
