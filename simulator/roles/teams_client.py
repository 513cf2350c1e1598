"""A Teams client (desktop or phone) on the network: signs in to the cloud, falls back to its SBA.

`ClientConnectivity` (client_state.py) decides everything about online / offline / appliance
mode; this module is its asyncio skin. It turns the machine's outputs into real SIP requests over
TLS and feeds the answers, failures and timeouts back as observations (aioquic style: the core
never sees a socket or a clock). Wire conventions (docs/CONTRACTS.md, the roles' wire conventions):

- cloud: `REGISTER sip:<domain>` with `Authorization: Bearer ...` (roles/token.py) to
  `sip.pstnhub.microsoft.com:443` (then sip2, sip3), TLS with the server's certificate only;
  keepalive = OPTIONS to the proxy it registered at; the cloud sends calls for the user over
  the connection the REGISTER came on.
- SBA: the same REGISTER/OPTIONS to `<sba>:5061`. While online, a check-in is an OPTIONS
  *with* the token (the SBA records the user as seen, the 24 h rule); a probe while offline is an
  OPTIONS *without* it (a probe must not count as being seen: only a signed-in client is).

Calls (what a scenario or a test drives; every method returns once the outcome is known):

    client = TeamsClient(ctx, NodeSpec("carol", "carol-pc.contoso.com", "teams_client",
                                       options={"upn": "carol@contoso.com"}))
    await client.start()
    call = await client.place_call("+14255550100")   # INVITE with an SDP offer; returns on the final
    call.status, call.answered_by, call.registrar, call.via_sba   # (200, "sip:+1425...", "sip.pstnhub...")
    await call.hold(); await call.resume(); await call.transfer("+12065550199"); await call.hangup()
    incoming = await client.next_incoming_call()     # CallHandle of a call to this user
    client.answer_policy = AnswerPolicy("auto", after_s=2) | AnswerPolicy("ring") | AnswerPolicy("busy")
    await incoming.answer()                          # for a call ringing under the "ring" policy
    await client.restart()                           # token and calls lost (see client_state.py)
    client.state, client.registrar                   # "online" | "offline" | "appliance", FQDN or None
    await client.wait_state("appliance", timeout=60) # returns once in that state
    client.calls                                     # every CallHandle, placed and received

The Request-URI of an outgoing INVITE is `sip:<dialled string>@<registrar FQDN>;user=phone`
for a number (dialled as typed: the cloud or the SBA normalizes it with the user's dial plan)
and `sip:<upn>` for a Teams user. A call is placed through the cloud while online, through the
SBA in appliance mode, and fails at once with no request while offline (Teams shows no dial pad
without a registrar). Calls keep their dialog across every state switch: in-dialog requests go
to the registrar the call was set up through, over the same connection.

Events (node = this node's name): `client.state` (user, state, registrar, old, reason) on every
change of state or registrar, `client.registered` / `client.register_failed` (user, registrar,
reason), `client.appliance_mode_blocked` / `client.return_deferred` (user, reason),
`client.restarted` (user), and for calls
`call.started`, `call.ringing`, `call.answered`, `call.held`, `call.resumed`, `call.transferred`,
`call.transfer_progress` (sipfrag = the status a NOTIFY of our REFER reports, final),
`call.ended` (call_id, caller, callee, status, path = "cloud" | "sba", registrar = the proxy or
SBA FQDN, direction = outgoing | incoming; `call.ended` also has the reason, end_reason and ended_by).

A hangup whose BYE gets no answer ends the call here all the same (end_reason network_failure,
`hangup()` returns None). An answered call whose connection to its registrar was reset and cannot
be re-established, or that has had no media for `media_inactivity_timeout_s`
(its stream reports to `call.media`, roles/media_watch.py), is ended here (`call.path_lost`,
`call.media_timeout`, end_reason media_timeout); it then holds the client at the SBA no longer.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from simulator.endpoint import Connection, Incoming, SipFailure, Target, TlsConfig
from simulator.media.session import RoleMedia
from simulator.roles import client_state as cs
from simulator.roles.cdr import EndReason
from simulator.roles.context import NodeSpec, RoleContext
from simulator.roles.media_watch import CONNECTION_LOST, MediaWatch, check_path, watch_until_silent
from simulator.roles.tasks import RoleTasks
from simulator.roles.token import Token
from simulator.sip import Request, Response
from simulator.sip.builders import make_request, new_branch, new_call_id, new_tag
from simulator.sip.dialog import Dialog, DialogError
from simulator.sip.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    SdpError,
    SessionDescription,
    make_answer,
    make_offer,
)

CODECS = [PCMU, PCMA, TELEPHONE_EVENT]
MEDIA_PORT = 50000
STATE_NAMES = {cs.ClientState.ONLINE: "online", cs.ClientState.OFFLINE: "offline",
               cs.ClientState.APPLIANCE: "appliance"}


class ClientError(Exception):
    """A call operation the client cannot do now (no dialog, call already ended ...)."""


@dataclass(frozen=True)
class AnswerPolicy:
    """What the client does with an incoming call: answer after `after_s`, ring forever, or busy."""

    mode: str = "auto"  # auto | ring | busy
    after_s: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "ring", "busy"):
            raise ValueError(f"answer policy {self.mode!r}: expected auto, ring or busy")
        if self.after_s < 0:
            raise ValueError(f"answer policy: after_s must be >= 0, got {self.after_s!r}")

    @classmethod
    def parse(cls, value: Any) -> AnswerPolicy:
        """From a lab/scenario option: "auto", "auto:3", "ring", "busy", or {mode:, after_s:}."""
        if isinstance(value, AnswerPolicy):
            return value
        if isinstance(value, dict):
            return cls(str(value.get("mode", "auto")), float(value.get("after_s", 1.0)))
        mode, _, after = str(value).partition(":")
        return cls(mode.strip(), float(after) if after else 1.0)


@dataclass(eq=False)
class CallHandle:
    """One call of this client, placed or received. Fields fill in as the call progresses."""

    client: TeamsClient = field(repr=False)
    call_id: str
    direction: str  # "outgoing" | "incoming"
    caller: str
    callee: str
    registrar: str | None  # the proxy or SBA FQDN the call was set up through
    state: str = "calling"  # calling, ringing, answered, ended, failed
    status: int | None = None  # final SIP status of the initial INVITE
    reason: str | None = None
    answered_by: str | None = None
    held: bool = False
    transferred_to: str | None = None
    transfer_status: int | None = None  # the transfer's outcome: the final NOTIFY's sipfrag status
    transfer_done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # set with it
    answer_policy: AnswerPolicy | None = None
    dialog: Dialog | None = field(default=None, repr=False)
    invite: Request | None = field(default=None, repr=False)
    target: Any = field(default=None, repr=False)  # endpoint Target for in-dialog requests
    incoming: Incoming = field(default=None, repr=False)  # endpoint Incoming (UAS side)
    tx: Any = field(default=None, repr=False)  # the INVITE's client transaction while it rings
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    answered: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    end_reason: str | None = None  # EndReason, once ended
    ended_by: str | None = None  # "self", or "caller" / "callee" when the far end ended it
    media: MediaWatch = field(default_factory=MediaWatch, repr=False)  # roles/media_watch.py

    @property
    def via_sba(self) -> bool:
        return self.registrar is not None and self.registrar in self.client.sba_policy

    @property
    def path(self) -> str | None:
        """"cloud" or "sba": where the call was set up (CallPath values); None if it never left."""
        return None if self.registrar is None else ("sba" if self.via_sba else "cloud")

    async def hold(self) -> int:
        return await self.client._reinvite(self, hold=True)

    async def resume(self) -> int:
        return await self.client._reinvite(self, hold=False)

    async def transfer(self, target: str) -> int:
        return await self.client._transfer(self, target)

    async def hangup(self) -> int | None:
        return await self.client._hangup(self)

    async def answer(self) -> None:
        """Answer a ringing incoming call now (for the "ring" policy)."""
        await self.client._answer(self)

    async def wait_ended(self) -> None:
        await self.ended.wait()


class TeamsClient:
    """See the module docstring. `spec.options`: `user` or `upn` (required), `sba_policy` (a list of SBA
    FQDNs; default: the user's effective SBA policy in the tenant), `answer` (AnswerPolicy.parse)."""

    def __init__(self, ctx: RoleContext, spec: NodeSpec) -> None:
        upn = spec.options.get("upn") or spec.options.get("user")  # the lab file says `user`
        if not upn or "@" not in str(upn):
            raise ValueError(f"node {spec.name!r}: a teams_client needs options.user (a UPN, user@domain), got {upn!r}")
        self.ctx, self.spec = ctx, spec
        self.upn = str(upn).lower()
        self.domain = self.upn.split("@", 1)[1]
        self.settings = ctx.settings
        self.node = spec.name
        self.log = ctx.logger(spec.name)
        self.rng = ctx.rng_for(spec.name + "/calls")
        self.media = RoleMedia(ctx.network, spec.fqdn, self.log, first_port=MEDIA_PORT, enabled=ctx.settings.media)
        self.sba_policy = tuple(s.lower() for s in spec.options.get("sba_policy", self._tenant_sba_policy()))
        self.answer_policy = AnswerPolicy.parse(spec.options.get("answer", "auto"))
        self.proxies = tuple(ctx.topology.proxies)
        self.calls: list[CallHandle] = []
        self._calls_by_id: dict[str, list[CallHandle]] = {}  # Call-ID -> its calls: in-dialog requests find theirs at once
        self.machine: cs.ClientConnectivity | None = None
        self.cloud_registrar: str | None = None
        self._proxy_index = 0
        self._ep: Any = None
        self._tasks = RoleTasks(self.log, "client.internal_error", user=self.upn)
        self._driver: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._incoming: asyncio.Queue[CallHandle] = asyncio.Queue()
        self._keepalive_in_flight = False
        self._registering = False
        self._renew_pending = False
        self._sent_state: tuple[str, str | None] | None = None
        self._addresses: dict[str, str] = {}
        self._state_waiters: list[asyncio.Event] = []

    def _tenant_sba_policy(self) -> tuple[str, ...]:
        """The SBAs of the user's effective SBA policy in the tenant (none for an unknown user)."""
        tenant = self.ctx.tenant
        try:
            user = tenant.user(self.upn)
        except (KeyError, AttributeError):
            return ()
        policy = tenant.effective_policy(user, "sba_policy")
        return tuple(policy.branch_appliance_fqdns) if policy is not None else ()

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._ep = self._new_endpoint()
        self.machine = cs.ClientConnectivity(self.upn, self.sba_policy, self.settings, now=loop.time())
        self._emit_state("signed in")
        self._perform([cs.RegisterToCloud()])
        self._driver = asyncio.create_task(self._drive(), name=f"{self.node}-client")

    async def stop(self) -> None:
        await self._tasks.cancel_all(self._driver)
        self.media.stop_all()
        self._driver = None
        if self._ep is not None:
            ep, self._ep = self._ep, None  # no path checks for the connections closing now
            await ep.close()

    async def restart(self) -> None:
        """Quit Teams and start it again: connections and calls are gone, and so is the token.

        Online, the client signs in again at once; offline it cannot enter appliance mode until
        the cloud is back ([S26]: "forced to negotiate a new token")."""
        self._tasks.cancel()
        for call in self.calls:
            if call.state not in ("ended", "failed"):
                self._finish(call, "ended", reason="client restarted", end_reason=EndReason.RESTARTED)
        if self._ep is not None:
            await self._ep.close()
        self._ep = self._new_endpoint()
        self.cloud_registrar = None
        self._keepalive_in_flight = self._registering = False
        self.log.info("client.restarted", user=self.upn)
        self._observe(cs.Restarted())

    # --- state -------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return "offline" if self.machine is None else STATE_NAMES[self.machine.state]

    @property
    def registrar(self) -> str | None:
        if self.machine is None:
            return None
        if self.machine.state is cs.ClientState.ONLINE:
            return self.cloud_registrar or self.proxies[self._proxy_index]
        if self.machine.state is cs.ClientState.APPLIANCE:
            return self.machine.sba
        return None

    async def wait_state(self, state: str, timeout: float | None = None) -> None:
        """Wait until the client is in `state` (online | offline | appliance)."""
        if state not in STATE_NAMES.values():
            raise ValueError(f"unknown client state {state!r}: expected online, offline or appliance")

        async def until() -> None:
            while self.state != state:
                changed = asyncio.Event()
                self._state_waiters.append(changed)
                await changed.wait()
        await asyncio.wait_for(until(), timeout)

    async def next_incoming_call(self, timeout: float | None = None) -> CallHandle:
        return await asyncio.wait_for(self._incoming.get(), timeout)

    # --- the driver: timers of the machine, outputs into requests ------------------------------------
    async def _drive(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.machine is not None
        while True:
            self._wake.clear()
            deadline = self.machine.next_deadline()
            if deadline is not None and deadline <= loop.time():
                self._perform(self.machine.handle_timer(loop.time()))
                continue
            # an absolute deadline: a relative one can land a hair early on the float clock and spin
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._wake.wait()

    def _observe(self, observation: cs.Observation) -> None:
        if self.machine is None:
            return
        self._perform(self.machine.handle(observation, asyncio.get_running_loop().time()))

    def _perform(self, outputs: list[cs.Output]) -> None:
        self._wake.set()
        for out in outputs:
            match out:
                case cs.StateChanged():
                    self._emit_state(out.reason, old=STATE_NAMES[out.old], change=out)
                    if out.new is cs.ClientState.OFFLINE:  # the cloud stopped answering: so may our calls' path
                        self._check_paths([c for c in self.calls if c.path == "cloud"])
                case cs.Blocked():
                    self.log.info("client.appliance_mode_blocked", user=self.upn, reason=out.reason)
                case cs.ReturnDeferred():
                    self.log.info("client.return_deferred", user=self.upn, reason=out.reason)
                case cs.SendKeepalive() | cs.ProbeCloud():
                    if not self._keepalive_in_flight:  # one at a time: a blackholed one times out first
                        self._keepalive_in_flight = True
                        self._tasks.spawn(self._keepalive())
                case cs.RenewToken():
                    self._renew_pending = True
                    self._start_cloud_registration()
                case cs.RegisterToCloud():
                    self._start_cloud_registration()
                case cs.CheckInAtSba(sba=sba):
                    self._tasks.spawn(self._sba_options(sba, with_token=True))
                case cs.ProbeSba(sba=sba):
                    self._tasks.spawn(self._sba_options(sba, with_token=False))
                case cs.RegisterAtSba(sba=sba):
                    self._tasks.spawn(self._register_sba(sba))
                case cs.UnregisterFromSba(sba=sba):
                    self._tasks.spawn(self._register_sba(sba, expires=0))

    def _emit_state(self, reason: str, old: str | None = None, change: cs.StateChanged | None = None) -> None:
        """`client.state` for a change of state (`change`, which may be one of several in a batch)
        or of registrar (None: the current state)."""
        if change is not None:
            state = STATE_NAMES[change.new]
            registrar = {"online": self.cloud_registrar or self.proxies[self._proxy_index],
                         "appliance": change.sba}.get(state)
        else:
            state, registrar = self.state, self.registrar
        if (state, registrar) == self._sent_state:
            return
        self._sent_state = (state, registrar)
        self.log.info("client.state", user=self.upn, state=state, registrar=registrar, old=old, reason=reason)
        waiters, self._state_waiters = self._state_waiters, []
        for waiter in waiters:
            waiter.set()

    # --- requests to the cloud and the SBAs -------------------------------------------------------------
    def _token(self, fresh: bool = False) -> Token | None:
        m = self.machine
        now = asyncio.get_running_loop().time()
        if fresh or m is None or m.token_authenticated_at is None or m.token_expires_at is None:
            return Token.issue(self.upn, now, self.settings.client_token_lifetime_s, cae=self.settings.client_cae_tokens)
        return Token(self.upn, m.token_authenticated_at, m.token_expires_at, self.settings.client_cae_tokens)

    async def _keepalive(self) -> None:
        proxy = self.proxies[self._proxy_index]
        try:
            response, failure = await self._ask("OPTIONS", proxy, self.ctx.topology.proxy_client_port, token=self._token())
        finally:
            self._keepalive_in_flight = False
        if response is not None and response.status < 300:
            self._observe(cs.KeepaliveOk())
            if self.machine is not None and self.machine.state is cs.ClientState.ONLINE and self.cloud_registrar != proxy:
                self._start_cloud_registration()
            return
        # next keepalive tries the next proxy (sip -> sip2 -> sip3, as the client's DNS would)
        self._proxy_index = (self._proxy_index + 1) % len(self.proxies)
        self._observe(cs.KeepaliveFailed(failure or f"{response.status} {response.reason}"))  # type: ignore[union-attr]

    def _start_cloud_registration(self) -> None:
        """One cloud REGISTER at a time; a renewal asked for meanwhile is asked again by the
        machine (client_state retries RenewToken every keepalive interval until it arrives)."""
        if not self._registering:
            self._registering = True
            self._tasks.spawn(self._register_cloud())

    async def _register_cloud(self) -> None:
        try:
            await self._register_cloud_once()
        finally:
            self._registering = False

    async def _register_cloud_once(self) -> None:
        """REGISTER at the proxies in order from the current one; the first 200 is the registrar."""
        fresh = self._renew_pending or self.machine is None or self.machine.token_authenticated_at is None
        token = self._token(fresh=fresh)
        for i in range(len(self.proxies)):
            index = (self._proxy_index + i) % len(self.proxies)
            proxy = self.proxies[index]
            response, failure = await self._ask(
                "REGISTER", proxy, self.ctx.topology.proxy_client_port, token=token,
                expires=int(self.settings.client_token_lifetime_s))
            if response is not None and response.status < 300:
                self._proxy_index = index
                self.cloud_registrar = proxy
                self.log.info("client.registered", user=self.upn, registrar=proxy)
                if fresh:
                    self._renew_pending = False
                    self._observe(cs.TokenRenewed())
                self._emit_state("registered", old=self.state)
                return
            self.log.info("client.register_failed", user=self.upn, registrar=proxy,
                          reason=failure or f"{response.status} {response.reason}")  # type: ignore[union-attr]

    async def _sba_options(self, sba: str, *, with_token: bool) -> None:
        response, failure = await self._ask("OPTIONS", sba, self.ctx.topology.sba_port,
                                            token=self._token() if with_token else None)
        if response is not None and response.status < 300:
            self._observe(cs.SbaProbeOk(sba))
        else:
            self._observe(cs.SbaProbeFailed(sba, failure or f"{response.status} {response.reason}"))  # type: ignore[union-attr]

    async def _register_sba(self, sba: str, expires: int | None = None) -> None:
        m = self.machine
        token = None if m is None or m.token_authenticated_at is None else self._token()
        granted = int(self.settings.sba_registration_expiry_s) if expires is None else expires
        response, failure = await self._ask("REGISTER", sba, self.ctx.topology.sba_port, token=token, expires=granted)
        if expires == 0:
            return  # taking a binding back: nothing to learn from the answer
        if response is not None and response.status < 300:
            self._observe(cs.SbaRegistered(sba, _expires_of(response)))
        else:
            self._observe(cs.SbaRegistrationRefused(sba, failure or f"{response.status} {response.reason}"))  # type: ignore[union-attr]

    async def _ask(self, method: str, host: str, port: int, *, token: Token | None,
                   expires: int | None = None) -> tuple[Response | None, str | None]:
        """One non-INVITE request answered within client_probe_timeout_s: (response, None) or (None, why)."""
        headers: list[tuple[str, str]] = []
        if token is not None:
            headers.append(("Authorization", token.header()))
        if expires is not None:
            headers.append(("Expires", str(expires)))
        uri = f"sip:{self.domain}" if method == "REGISTER" else f"sip:{host}"
        to = f"<sip:{self.upn}>" if method == "REGISTER" else f"<sip:{host}>"
        request = self._new_request(method, uri, to=to, extra=headers)
        return await self._send(request, host, port, timeout=self.settings.client_probe_timeout_s)

    # --- SIP plumbing ---------------------------------------------------------------------------------
    def _new_endpoint(self) -> Any:
        ep = self.ctx.endpoint(self.spec)
        ep.on_request = self._on_request
        ep.on_connection_closed = self._connection_closed
        return ep

    # --- media inactivity (roles/media_watch.py) -----------------------------------------------------
    async def _start_media(self, call: CallHandle, local: SessionDescription | None,
                           remote: SessionDescription | None, *, offerer: bool) -> None:
        await self.media.start(call.call_id, local, remote, offerer=offerer,
                               on_packet=call.media.received, on_expect=call.media.expect)

    def _connection_closed(self, conn: Connection, reason: str) -> None:
        """A connection closed: the answered calls whose dialog used it check their path."""
        if self._ep is not None:
            self._check_paths([call for call in self.calls if call.target is not None and (
                call.target.connection is conn or self._registrar_for(conn.remote[0]) == call.target.host)])

    def _check_paths(self, calls: list[CallHandle]) -> None:
        now = asyncio.get_running_loop().time()
        for call in calls:
            if call.state == "answered" and not call.media.checking and call.media.path_lost_at is None:
                self._tasks.spawn(self._check_path(call, now))

    async def _check_path(self, call: CallHandle, lost_at: float) -> None:
        if await check_path(call.media, lambda: self._reestablished(call), lost_at):
            self._call_event("call.path_lost", call, leg=call.path)

    async def _reestablished(self, call: CallHandle) -> bool:
        """An in-dialog OPTIONS (RFC 3261 §11): any answer means the path to the registrar is back."""
        if call.state != "answered":
            return False
        response, _failure = await self._in_dialog(call, "OPTIONS")
        back = response is not None and response.status != 481  # 481: the far end has no such call (RFC 3261 §12.2.1.2)
        if back:
            call.media.path_restored()
        return back

    async def _media_watchdog(self, call: CallHandle) -> None:
        """End our side of an answered call once it has had no media for the inactivity timeout."""
        timeout = self.settings.media_inactivity_timeout_s
        while (silent := await watch_until_silent(lambda: [call.media], call.ended, timeout)) is not None:
            if silent.cause == CONNECTION_LOST and await self._reestablished(call):
                continue
            if call.state != "answered":
                return
            self._call_event("call.media_timeout", call, leg=call.path, silent_s=timeout,
                             cause=silent.cause)
            assert call.dialog is not None
            bye = call.dialog.create_request("BYE", self.rng)
            self._finish(call, "ended", reason="no media", end_reason=EndReason.MEDIA_TIMEOUT)  # ends here, heard or not
            response, failure = await self._send(bye, "", 0, timeout=None, target=call.target)
            if response is None:
                self.log.warning("call.bye_failed", call_id=call.call_id, reason=failure)
            return

    @property
    def contact(self) -> str:
        return f"<sip:{self.upn.split('@')[0]}@{self.spec.fqdn};transport=tls>"

    def _new_request(self, method: str, uri: str, *, to: str, extra: list[tuple[str, str]] = (),  # type: ignore[assignment]
                     body: bytes = b"", content_type: str | None = None, call_id: str | None = None) -> Request:
        return make_request(
            method, uri, from_=f"<sip:{self.upn}>;tag={new_tag(self.rng)}", to=to,
            call_id=call_id or new_call_id(self.rng, self.spec.fqdn), cseq=1,
            via=f"SIP/2.0/TLS {self.spec.fqdn};branch={new_branch(self.rng)}",
            contact=self.contact if method in ("REGISTER", "INVITE") else None,
            extra_headers=list(extra), body=body, content_type=content_type)

    def _target(self, host: str, port: int, connection: Connection | None = None) -> Target:
        # a Teams client shows no certificate: it authenticates with its token (roles/token.py)
        return Target(host, port, "tls", tls_name=host, connection=connection,
                      tls=TlsConfig(identity=None, trust=self.ctx.trust))

    async def _send(self, request: Request, host: str, port: int, *, timeout: float | None,
                    target: Any = None, on_provisional: Any = None) -> tuple[Response | None, str | None]:
        if self._ep is None:
            return None, "client stopped"
        try:
            tx = self._ep.request(request, target or self._target(host, port), on_provisional=on_provisional)
            response = await asyncio.wait_for(asyncio.shield(tx.final()), timeout)
        except TimeoutError:
            return None, "timeout"
        except SipFailure as exc:
            exc.__traceback__ = None  # its frames hold `tx`, which holds it: no cycle left for the collector
            return None, str(exc) or type(exc).__name__
        return response, None

    def _address_of(self, fqdn: str) -> str:
        if fqdn not in self._addresses:
            self._addresses[fqdn] = self.ctx.network.resolve(fqdn)
        return self._addresses[fqdn]

    def _registrar_for(self, address: str) -> str | None:
        for fqdn in (*self.proxies, *self.sba_policy):
            with contextlib.suppress(Exception):
                if self._address_of(fqdn) == address:
                    return fqdn
        return None

    def _sdp(self, remote: SessionDescription | None = None, *, port: int | None = None) -> SessionDescription:
        address = self._address_of(self.spec.fqdn)
        port = port or self.media.port()
        if remote is None:
            return make_offer(address, port, CODECS, session_id=str(self.rng.randrange(10**9)))
        return make_answer(remote, address, port, CODECS, session_id=str(self.rng.randrange(10**9)))

    # --- media ------------------------------------------------------------------------------------------
    def _media_port(self, call: CallHandle) -> int | None:
        """The port this call's SDP already gave (a re-INVITE answer keeps it)."""
        sdp = call.dialog.local_sdp if call.dialog is not None else None
        return sdp.audio.port if sdp is not None and sdp.audio is not None else None

    def _call_event(self, name: str, call: CallHandle, **extra: Any) -> None:
        self.log.info(name, user=self.upn, call_id=call.call_id, caller=call.caller, callee=call.callee,
                      status=call.status, path=call.path, registrar=call.registrar, direction=call.direction, **extra)

    # --- placing calls ----------------------------------------------------------------------------------
    async def place_call(self, dial_string: str, *, no_answer_timeout_s: float | None = None) -> CallHandle:
        """Call a number or a Teams user; returns when the INVITE has its final answer. Unanswered
        after `no_answer_timeout_s` (default `client_no_answer_timeout_s`) the client CANCELs it
        (status 487); `hangup()` on the handle while it rings does the same."""
        dial_string = str(dial_string).strip()
        if not dial_string:
            raise ValueError("place_call: empty dial string")
        # online but not (yet) registered: the INVITE carries the token, which the proxy accepts
        registrar = self.registrar if self.state in ("online", "appliance") else None
        callee = dial_string
        call = CallHandle(self, new_call_id(self.rng, self.spec.fqdn), "outgoing", self.upn, callee, registrar)
        self._file(call)
        if registrar is None:
            call.state, call.reason = "failed", f"client is {self.state}: no registrar to call through"
            call.ended.set()
            self._call_event("call.ended", call, reason=call.reason)
            return call
        port = self.ctx.topology.proxy_client_port if registrar in self.proxies else self.ctx.topology.sba_port
        uri = f"sip:{dial_string}" if "@" in dial_string else f"sip:{dial_string}@{registrar};user=phone"
        offer = self._sdp()
        invite = self._new_request("INVITE", uri, to=f"<{uri}>", call_id=call.call_id,
                                   extra=[("Authorization", t.header()) for t in [self._token()] if t],
                                   body=offer.to_bytes(), content_type="application/sdp")
        call.invite, call.target = invite, self._target(registrar, port)
        self._observe(cs.CallStarted(call.call_id, outgoing=True))
        self._call_event("call.started", call, dialed=dial_string)

        def provisional(response: Response) -> None:
            if response.status in (180, 183) and call.state == "calling":
                call.state = "ringing"
                self._call_event("call.ringing", call)
            if response.status == 183 and response.body:  # early media (RFC 3960)
                with contextlib.suppress(SdpError):
                    early = SessionDescription.parse(response.body)
                    self._tasks.spawn(self._start_media(call, offer, early, offerer=True))

        response, failure = await self._ring(call, invite, provisional, no_answer_timeout_s)
        if response is None or response.status >= 300:
            call.status = None if response is None else response.status
            gave_up = call.reason is not None  # our CANCEL: the caller hung up or nobody answered
            call.reason = call.reason or failure or (response.reason if response is not None else None)
            end_reason = EndReason.CANCELLED if gave_up else \
                EndReason.NETWORK_FAILURE if response is None else EndReason.REFUSED
            self._finish(call, "failed", reason=call.reason, end_reason=end_reason,
                         ended_by="self" if gave_up or response is None else "callee")
            return call
        call.status = response.status
        call.answered_by = _answerer(response)
        try:
            call.dialog = Dialog.from_uac_response(invite, response, local_contact=self.contact,
                                                   sent_by=self.spec.fqdn, transport="TLS")
        except DialogError as exc:
            call.reason = f"bad 2xx: {exc}"
            self._finish(call, "failed", reason=call.reason)
            return call
        call.dialog.local_sdp = offer
        with contextlib.suppress(SdpError):
            call.dialog.remote_sdp = SessionDescription.parse(response.body)
        self._send_ack(call, invite.cseq.seq)
        call.state = "answered"
        call.answered.set()
        self._call_event("call.answered", call, answered_by=call.answered_by)
        await self._start_media(call, offer, call.dialog.remote_sdp, offerer=True)
        self._tasks.spawn(self._media_watchdog(call))
        if call.reason == "caller hung up before answer":  # the 200 crossed our CANCEL (RFC 3261 §9.1): BYE it
            await self._hangup(call)
        return call

    async def _ring(self, call: CallHandle, invite: Request, provisional: Any,
                    no_answer_timeout_s: float | None) -> tuple[Response | None, str | None]:
        """Send the INVITE and wait for its final response, cancelling it when nobody answers."""
        if self._ep is None:
            return None, "client stopped"
        limit = self.settings.client_no_answer_timeout_s if no_answer_timeout_s is None else no_answer_timeout_s
        call.tx = tx = self._ep.request(invite, call.target, on_provisional=provisional)
        # shielded waits: a timeout must not cancel the transaction's future (the 487 is still to come)
        try:
            try:
                return await asyncio.wait_for(asyncio.shield(tx.final()), limit), None
            except TimeoutError:
                call.reason = f"no answer within {limit:g}s: cancelled"
                tx.cancel()  # RFC 3261 §9.1: sent once a provisional has arrived
                return await asyncio.wait_for(asyncio.shield(tx.final()), 64 * self.settings.sip_t1_s), None
        except TimeoutError:
            return None, call.reason or "timeout"
        except SipFailure as exc:
            return None, str(exc) or type(exc).__name__
        finally:
            call.tx = None

    def _send_ack(self, call: CallHandle, seq: int) -> None:
        assert call.dialog is not None
        ack = call.dialog.create_ack(seq, self.rng)
        self._ep.send_ack(ack, call.target)

    async def _in_dialog(self, call: CallHandle, method: str, *, body: bytes = b"",
                         content_type: str | None = None, extra: list[tuple[str, str]] = ()  # type: ignore[assignment]
                         ) -> tuple[Response | None, str | None]:
        if call.dialog is None or call.state not in ("answered",):
            raise ClientError(f"call {call.call_id} is {call.state}: no dialog for {method}")
        request = call.dialog.create_request(method, self.rng, body=body, content_type=content_type,
                                             extra_headers=list(extra))
        return await self._send(request, "", 0, timeout=None, target=call.target)

    async def _reinvite(self, call: CallHandle, *, hold: bool) -> int:
        dialog = call.dialog
        if dialog is None or call.state != "answered":
            raise ClientError(f"call {call.call_id} is {call.state}: cannot {'hold' if hold else 'resume'}")
        request = dialog.create_hold(self.rng) if hold else dialog.create_resume(self.rng)
        response, failure = await self._send(request, "", 0, timeout=None, target=call.target)
        if response is None or response.status >= 300:
            raise ClientError(f"{'hold' if hold else 'resume'} of {call.call_id} failed: "
                              f"{failure or (response.status if response else '')}")
        with contextlib.suppress(SdpError):
            dialog.remote_sdp = SessionDescription.parse(response.body)
            self.media.update(call.call_id, dialog.remote_sdp)
        self._send_ack(call, request.cseq.seq)
        call.held = hold
        self._call_event("call.held" if hold else "call.resumed", call)
        return response.status

    async def _transfer(self, call: CallHandle, target: str) -> int:
        """Blind transfer (RFC 3515): REFER the far end to `target`; -> the REFER's status (202).

        The call stays up for the referee's NOTIFYs; the client hangs up after the one with the
        final status (RFC 5589 §6), or after 64*T1 without it (a referee that sends none).
        `call.transfer_status` / `call.transfer_done` carry the outcome."""
        refer_to = f"sip:{target}" if "@" in target else f"sip:{target}@{call.registrar};user=phone"
        call.transferred_to = target  # before the REFER: its first NOTIFY may overtake the 202
        response, failure = await self._in_dialog(call, "REFER", extra=[("Refer-To", f"<{refer_to}>"),
                                                                         ("Referred-By", f"<sip:{self.upn}>")])
        if response is None or response.status >= 300:
            call.transferred_to = None
            raise ClientError(f"transfer of {call.call_id} to {target} refused: "
                              f"{failure or (response.status if response else '')}")
        call.transferred_to = target
        self._call_event("call.transferred", call, target=target)
        self._tasks.spawn(self._leave_after_transfer(call))
        return response.status

    async def _leave_after_transfer(self, call: CallHandle) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.transfer_done.wait(), 64 * self.settings.sip_t1_s)
        if call.state == "answered":
            await self._hangup(call)

    def _on_notify(self, incoming: Incoming, call: CallHandle | None) -> None:
        """The referee's NOTIFY of our REFER (RFC 3515 §2.4.4): 200, and the sipfrag's status recorded."""
        request: Request = incoming.request
        if call is None or call.transferred_to is None:
            incoming.respond(481)
            return
        event = str(request.headers.get("Event") or "").split(";")[0].strip().lower()
        if event != "refer":
            incoming.respond(489, headers=[("Allow-Events", "refer")])
            return
        status = sipfrag_status(request.body)
        if status is None:
            incoming.respond(400, "Body is not a message/sipfrag status line")
            return
        incoming.respond(200)
        state = str(request.headers.get("Subscription-State") or "").split(";")[0].strip().lower()
        final = state == "terminated" or status >= 200
        self._call_event("call.transfer_progress", call, sipfrag=status, final=final)
        if final:
            call.transfer_status = status
            call.transfer_done.set()

    async def _hangup(self, call: CallHandle) -> int | None:
        if call.state in ("ended", "failed"):
            return None
        if call.direction == "incoming" and call.state == "ringing":
            await self._reject(call, 603)
            return 603
        if call.state in ("calling", "ringing"):
            if call.tx is None:
                raise ClientError(f"call {call.call_id} is being set up and has no INVITE to cancel")
            call.reason = "caller hung up before answer"
            call.tx.cancel()  # place_call returns with the 487 (or the 200 that won the race)
            await call.ended.wait()
            return call.status
        response, failure = await self._in_dialog(call, "BYE")
        if response is None:  # the far end never heard: our side ends all the same
            self._finish(call, "ended", reason=f"BYE failed: {failure}", end_reason=EndReason.NETWORK_FAILURE)
            return None
        self._finish(call, "ended", reason="hung up")
        return response.status

    def _finish(self, call: CallHandle, state: str, *, reason: str | None = None,
                end_reason: EndReason | None = None, ended_by: str = "self") -> None:
        """The call is over on this side: `end_reason` defaults to normal for an answered call and
        refused for one that failed."""
        if call.state in ("ended", "failed"):
            return
        call.end_reason = str(end_reason or (EndReason.NORMAL if state == "ended" else EndReason.REFUSED))
        call.ended_by = ended_by
        call.state = state
        call.reason = call.reason or reason
        if call.dialog is not None:
            call.dialog.terminate()
        self.media.stop(call.call_id)
        call.ended.set()
        call.answered.set()
        self._call_event("call.ended", call, reason=reason, end_reason=call.end_reason, ended_by=ended_by)
        if self.machine is not None:
            self._observe(cs.CallEnded(call.call_id))

    # --- requests from the registrar (incoming calls, in-dialog requests) ------------------------------
    async def _on_request(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        method = request.method
        call = self._call_for(request)
        if method == "INVITE" and request.to.tag is None:
            await self._on_invite(incoming)
        elif method == "INVITE":
            await self._on_reinvite(incoming, call)
        elif method == "BYE":
            if call is None:
                incoming.respond(481)
                return
            incoming.respond(200)
            self._finish(call, "ended", reason="far end hung up",
                         ended_by="callee" if call.direction == "outgoing" else "caller")
        elif method == "OPTIONS" and request.to.tag is not None and call is None:
            incoming.respond(481)  # in-dialog, and the dialog is not ours (any more): RFC 3261 §12.2.2
        elif method == "OPTIONS":
            incoming.respond(200, headers=[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER")])
        elif method == "NOTIFY":
            self._on_notify(incoming, call)
        elif method == "REFER" and call is not None:
            incoming.respond(202)
            target = str(request.headers.get("Refer-To") or "").strip().strip("<>")
            self._tasks.spawn(self._transferee(call, target))
        elif method == "ACK":
            return
        else:
            incoming.respond(481 if method in ("REFER", "INFO", "UPDATE") else 405,
                             headers=[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER")])

    def _file(self, call: CallHandle) -> None:
        self.calls.append(call)
        self._calls_by_id.setdefault(call.call_id, []).append(call)

    def _call_for(self, request: Request) -> CallHandle | None:
        for call in self._calls_by_id.get(request.call_id or "", ()):
            if call.dialog is not None and call.dialog.matches(request):
                return call
        return None

    async def _transferee(self, call: CallHandle, refer_to: str) -> None:
        """We were REFERred: call the target (as its user part dials it), leave the old call."""
        user = refer_to.split(":", 1)[-1].split(";")[0]
        dial = user.split("@")[0] if user.split("@")[0].lstrip("+").isdigit() else user
        await self._hangup(call)
        await self.place_call(dial)

    async def _on_invite(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        registrar = self._registrar_for(incoming.source.address)
        caller = str(request.from_.uri) if request.from_ is not None else "?"
        call = CallHandle(self, request.call_id or "", "incoming", caller, str(request.uri), registrar,
                          state="ringing", answer_policy=self.answer_policy, incoming=incoming, invite=request)
        tag = new_tag(self.rng)
        try:
            call.dialog = Dialog.from_uas_request(request, tag, local_contact=self.contact,
                                                  sent_by=self.spec.fqdn, transport="TLS")
            remote = SessionDescription.parse(request.body) if request.body else None
            call.dialog.remote_sdp = remote
            call.dialog.local_sdp = self._sdp(remote) if remote is not None else self._sdp()
        except (DialogError, SdpError) as exc:
            incoming.respond(488 if isinstance(exc, SdpError) else 400, to_tag=tag)
            return
        call.target = self._target(registrar or incoming.source.address, incoming.source.port,
                                   connection=incoming.source.connection)
        self._file(call)
        self._incoming.put_nowait(call)
        self._call_event("call.started", call)
        policy = call.answer_policy or self.answer_policy
        if policy.mode == "busy":
            await self._reject(call, 486)
            return
        incoming.on_cancel(lambda _incoming: self._cancelled(call))
        incoming.respond(180, to_tag=tag, headers=[("Contact", self.contact)])
        self._call_event("call.ringing", call)
        if policy.mode == "auto":
            self._tasks.spawn(self._answer_later(call, policy.after_s))

    def _cancelled(self, call: CallHandle) -> None:
        if call.state == "ringing":
            call.status = 487
            self._finish(call, "failed", reason="caller cancelled", end_reason=EndReason.CANCELLED, ended_by="caller")

    async def _answer_later(self, call: CallHandle, after_s: float) -> None:
        await asyncio.sleep(after_s)
        await self._answer(call)

    async def _answer(self, call: CallHandle) -> None:
        if call.state != "ringing" or call.incoming is None or call.dialog is None:
            return
        if getattr(call.incoming, "cancelled", False):
            call.status = 487
            self._finish(call, "failed", reason="caller cancelled", end_reason=EndReason.CANCELLED, ended_by="caller")
            return
        assert call.dialog.local_sdp is not None
        call.incoming.respond(200, to_tag=call.dialog.local_tag, body=call.dialog.local_sdp.to_bytes(),
                              headers=[("Contact", self.contact), ("Content-Type", "application/sdp")])
        call.dialog.confirm()
        call.status = 200
        call.state = "answered"
        call.answered_by = self.upn
        call.answered.set()
        self._observe(cs.CallStarted(call.call_id, outgoing=False))
        self._call_event("call.answered", call, answered_by=self.upn)
        await self._start_media(call, call.dialog.local_sdp, call.dialog.remote_sdp, offerer=False)
        self._tasks.spawn(self._media_watchdog(call))

    async def _reject(self, call: CallHandle, status: int) -> None:
        assert call.incoming is not None and call.dialog is not None
        call.incoming.respond(status, to_tag=call.dialog.local_tag)
        call.status = status
        self._finish(call, "failed", reason=f"rejected {status}", end_reason=EndReason.REFUSED)

    async def _on_reinvite(self, incoming: Incoming, call: CallHandle | None) -> None:
        request: Request = incoming.request
        if call is None or call.dialog is None:
            incoming.respond(481)
            return
        status = call.dialog.receive_request(request)
        if status is not None:
            incoming.respond(status)
            return
        try:
            remote = SessionDescription.parse(request.body)
            call.dialog.remote_sdp = remote
            call.dialog.local_sdp = self._sdp(remote, port=self._media_port(call))
        except SdpError:
            incoming.respond(488)
            return
        self.media.update(call.call_id, remote, call.dialog.local_sdp)
        held = remote.is_hold
        incoming.respond(200, body=call.dialog.local_sdp.to_bytes(),
                         headers=[("Contact", self.contact), ("Content-Type", "application/sdp")])
        if held != call.held:
            call.held = held
            self._call_event("call.held" if held else "call.resumed", call, by="far end")


def _expires_of(response: Response) -> float | None:
    value = response.headers.get("Expires")
    for contact in response.contacts:
        if contact.expires is not None:
            return float(contact.expires)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _answerer(response: Response) -> str | None:
    """Who answered: the P-Asserted-Identity the far end (or the B2BUA) put on the 200, else its Contact."""
    pai = response.headers.get("P-Asserted-Identity")
    if pai:
        return pai.strip().strip("<>")
    contacts = response.contacts
    return str(contacts[0].uri) if contacts else None


def sipfrag_status(body: bytes) -> int | None:
    """The status code of a message/sipfrag body's first line (`SIP/2.0 200 OK`, RFC 3420); None if
    the body does not start with a SIP status line."""
    line = body.split(b"\n", 1)[0].strip().decode("utf-8", "replace")
    parts = line.split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not (parts[1].isdigit() and len(parts[1]) == 3):
        return None
    return int(parts[1])
