"""The PSTN carrier: far-end phones behind an SBC's PSTN trunk, and callers who dial in.

One node is one point of presence of a carrier (the Contoso lab has one per office). It listens on
its trunk port (UDP 5060 by default, or TCP) for INVITEs from the SBCs whose `carrier` it is, and
places calls into them. Numbers are written as the carrier writes them: 10 digits in North
America; a leading `+1` (or `1` before 10 digits) in a request is dropped before the number plan
is looked up (`carrier_number`), so the SBC's manipulation can be checked on the wire
(`call.request.uri`) while the lookup stays forgiving.

What each number does is its behaviour (lab file `options.numbers`, docs/lab-yaml.md):

    answer        180 Ringing, then 200 OK with an SDP answer after `answer_after`
                  (default: settings.pstn_answer_after_s); `hangup_after` makes it hang up itself
    ring          180 Ringing for ever (the caller gives up, or a failover timer fires)
    busy          486 Busy Here         unreachable  404 Not Found
    unavailable   480 (or `status`)     reject       `status` (any 4xx-6xx)

Unlisted numbers get `options.default` (unreachable). Everything the carrier received is kept,
so a test asserts on the far end, not on the caller's view:

    pstn = lab.node("pstn-sea")
    call = await pstn.call("4255550199", "2065550201")     # returns once the INVITE has its final answer
    call.status, call.state          # 200, "answered"     (or 486, "failed"; state "ended" after a BYE)
    await call.hangup()
    far = pstn.received[-1]          # a PstnCall for every INVITE the carrier received
    far.callee, far.caller, far.request.headers.get("P-Asserted-Identity"), far.holds  # ["sendonly", "sendrecv"]
    await far.wait_answered(); await far.wait_ended(timeout=30)
    pstn.set_number("2065550166", "answer", answer_after=3)   # change a far end at run time

Events (node = this node's name): `call.started`, `call.ringing`, `call.answered`, `call.held`,
`call.resumed`, `call.ended` (call_id, caller, callee, status, path = the SBC's FQDN, direction
`to_pstn` for calls it received or `from_pstn` for calls it placed; held/resumed add media = the
offer's audio direction).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from simulator.endpoint import Incoming, SipFailure, Target
from simulator.media.session import RoleMedia
from simulator.roles.cdr import EndReason
from simulator.roles.context import NodeSpec, RoleContext
from simulator.roles.media_watch import MediaWatch, watch_until_silent
from simulator.roles.tasks import RoleTasks
from simulator.sip import Request, Response
from simulator.sip.builders import DEFAULT_MAX_FORWARDS, make_request, new_branch, new_call_id, new_tag
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
MEDIA_PORT = 40000
FAILURE_STATUS = {"busy": 486, "unreachable": 404, "unavailable": 480, "reject": 503}
BEHAVIOURS = ("answer", "ring", *FAILURE_STATUS)
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"


def _audio_port(sdp: SessionDescription | None) -> int | None:
    """The port an SDP of ours gave its audio (a re-INVITE's answer keeps it)."""
    return sdp.audio.port if sdp is not None and sdp.audio is not None else None


def carrier_number(number: str) -> str:
    """The number as the carrier's plan writes it: digits only, a North American +1/1 dropped."""
    digits = "".join(c for c in str(number).split(";")[0] if c.isdigit())
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


@dataclass(frozen=True)
class FarEnd:
    """What one number does when called."""

    behaviour: str = "unreachable"
    answer_after: float | None = None  # None: settings.pstn_answer_after_s
    hangup_after: float | None = None
    status: int | None = None
    early_media: bool = False  # ring with 183 Session Progress and its SDP, media flowing before the 200

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown PSTN behaviour {self.behaviour!r}; known: {', '.join(BEHAVIOURS)}")
        if self.status is not None and not 400 <= self.status <= 699:
            raise ValueError(f"a PSTN failure status is 400-699, not {self.status}")

    @classmethod
    def of(cls, option: str | dict[str, Any] | FarEnd) -> FarEnd:
        if isinstance(option, FarEnd):
            return option
        if isinstance(option, str):
            return cls(option)
        return cls(option.get("behaviour", "answer"), option.get("answer_after"), option.get("hangup_after"),
                   option.get("status"), bool(option.get("early_media", False)))

    @property
    def failure_status(self) -> int | None:
        if self.behaviour in FAILURE_STATUS:
            return self.status or FAILURE_STATUS[self.behaviour]
        return None


@dataclass(eq=False)
class PstnCall:
    """One call as the carrier saw it: received from an SBC (`to_pstn`) or placed into one (`from_pstn`)."""

    pstn: Pstn
    direction: str
    call_id: str
    caller: str
    callee: str
    sbc: str
    request: Request | None = None           # the INVITE as received / sent
    status: int | None = None                # the INVITE's final status
    state: str = "calling"                   # calling | ringing | answered | ended | failed
    started_at: float = 0.0
    answered_at: float | None = None
    ended_at: float | None = None
    ended_by: str | None = None              # "far end" (us) | "peer" | None
    end_reason: str | None = None            # EndReason, once ended
    reason: str | None = None
    holds: list[str] = field(default_factory=list)   # media direction of every re-INVITE offer received
    provisional: list[int] = field(default_factory=list)
    dialog: Dialog | None = field(default=None, repr=False)
    target: Any = field(default=None, repr=False)
    incoming: Incoming = field(default=None, repr=False)
    tx: Any = field(default=None, repr=False)
    media: MediaWatch = field(default_factory=MediaWatch, repr=False)  # roles/media_watch.py

    def __post_init__(self) -> None:
        self._answered = asyncio.Event()
        self._final = asyncio.Event()
        self._ended = asyncio.Event()

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    async def wait_answered(self, timeout: float | None = None) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._answered.wait(), timeout)
        return self.answered

    async def wait_final(self, timeout: float | None = None) -> int | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._final.wait(), timeout)
        return self.status

    async def wait_ended(self, timeout: float | None = None) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), timeout)
        return self._ended.is_set()

    async def hangup(self) -> int | None:
        """BYE an answered call; CANCEL (caller) or 480 (callee) one still ringing. Returns the
        BYE's final status, or the status the unanswered INVITE ended with; None when the call
        had already ended or the BYE got no answer (as TeamsClient calls do)."""
        return await self.pstn._hangup(self)


class Pstn:
    """A carrier PoP: numbers with behaviours, calls into its SBCs, a record of what it received."""

    def __init__(self, ctx: RoleContext, spec: NodeSpec) -> None:
        self.ctx, self.spec = ctx, spec
        opts = spec.options
        self.port = int(opts.get("port", 5060))
        self.transport = str(opts.get("transport", "udp")).lower()
        if self.transport not in ("udp", "tcp"):
            raise ValueError(f"PSTN transport must be udp or tcp, not {self.transport!r}")
        self.numbers: dict[str, FarEnd] = {carrier_number(k): FarEnd.of(v) for k, v in opts.get("numbers", {}).items()}
        self.default = FarEnd.of(opts.get("default", "unreachable"))
        self.received: list[PstnCall] = []
        self.placed: list[PstnCall] = []
        self.log = ctx.logger(spec.name)
        self.rng = ctx.rng_for(spec.name)
        self._ep: Any = None
        self._tasks = RoleTasks(self.log, "pstn.internal_error")
        self.media = RoleMedia(ctx.network, spec.fqdn, self.log, first_port=MEDIA_PORT, enabled=ctx.settings.media)

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._ep = self.ctx.endpoint(self.spec)
        self._ep.on_request = self._on_request
        await self._ep.listen(self.transport, self.port)
        self.log.info("pstn.started", host=self.spec.fqdn, port=self.port, transport=self.transport,
                      numbers=len(self.numbers))

    async def stop(self) -> None:
        self._tasks.cancel()
        self.media.stop_all()
        if self._ep is not None:
            await self._ep.close()
            self._ep = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def set_number(self, number: str, behaviour: str, **kw: Any) -> None:
        self.numbers[carrier_number(number)] = FarEnd(behaviour, **kw)

    def far_end(self, number: str) -> FarEnd:
        return self.numbers.get(carrier_number(number), self.default)

    def calls_to(self, number: str) -> list[PstnCall]:
        """Calls the carrier received for `number` (any spelling)."""
        return [c for c in self.received if carrier_number(c.callee) == carrier_number(number)]

    @property
    def sbcs(self) -> list[str]:
        return self.ctx.topology.sbcs_of_carrier(self.spec.fqdn)

    # --- placing calls ----------------------------------------------------------------------
    async def call(self, caller: str, callee: str, *, via: str | None = None,
                   hangup_after: float | None = None, max_forwards: int = DEFAULT_MAX_FORWARDS) -> PstnCall:
        """Dial `callee` from `caller` into SBC `via` (default: this carrier's first SBC); returns
        once the INVITE has its final response (`call.status`). `max_forwards`: the hops the
        INVITE has left when it reaches the SBC (a carrier network may have used some)."""
        call = self.start_call(caller, callee, via=via, hangup_after=hangup_after, max_forwards=max_forwards)
        await call.wait_final()
        return call

    def start_call(self, caller: str, callee: str, *, via: str | None = None,
                   hangup_after: float | None = None, max_forwards: int = DEFAULT_MAX_FORWARDS) -> PstnCall:
        """Like `call`, but returns at once (await `call.wait_final()` / `wait_answered()`)."""
        if self._ep is None:
            raise RuntimeError(f"PSTN {self.spec.name} is not started")
        sbcs = self.sbcs
        sbc = via or (sbcs[0] if sbcs else None)
        if sbc is None:
            raise ValueError(f"PSTN {self.spec.name} has no SBC trunk (no sbc names it as its carrier)")
        if sbc not in self.ctx.topology.sbc_carrier:
            raise ValueError(f"{sbc} is not an SBC with a PSTN trunk; SBCs of {self.spec.name}: {', '.join(sbcs) or 'none'}")
        _, _, transport = self.ctx.topology.sbc_carrier[sbc]
        port = self.ctx.topology.sbc_pstn_port(sbc)
        offer = self._sdp()
        call_id = new_call_id(self.rng, self.spec.fqdn)
        invite = make_request(
            "INVITE", f"sip:{callee}@{sbc}:{port};user=phone",
            from_=f"<sip:{caller}@{self.spec.fqdn};user=phone>;tag={new_tag(self.rng)}",
            to=f"<sip:{callee}@{sbc};user=phone>", call_id=call_id, cseq=1,
            via=f"SIP/2.0/{transport.upper()} {self.spec.fqdn}:{self.port};branch={new_branch(self.rng)};rport",
            contact=self._contact(caller), body=offer.to_bytes(), content_type="application/sdp",
            max_forwards=max_forwards, extra_headers=[("Allow", ALLOW)])

        call = PstnCall(self, "from_pstn", call_id, caller, callee, sbc, request=invite,
                        started_at=self._now(), target=Target(sbc, port, transport))
        self.placed.append(call)
        self._event("call.started", call)
        self._spawn(self._run_outgoing(call, invite, offer, hangup_after))
        return call

    async def _run_outgoing(self, call: PstnCall, invite: Request, offer: SessionDescription,
                            hangup_after: float | None) -> None:

        def provisional(response: Response) -> None:
            call.provisional.append(response.status)
            if response.status in (180, 183) and call.state == "calling":
                call.state = "ringing"
                self._event("call.ringing", call, status=response.status)

        try:
            call.tx = self._ep.request(invite, call.target, on_provisional=provisional)
            response = await call.tx.final()
        except SipFailure as exc:
            call.status, call.reason = 408 if "timer" in str(exc).lower() else 503, str(exc)
            self._finish(call, "failed")
            return
        call.status = response.status
        if response.status >= 300:
            call.reason = response.reason
            self._finish(call, "failed")
            return
        try:
            call.dialog = Dialog.from_uac_response(invite, response, local_contact=self._contact(call.caller),
                                                   sent_by=f"{self.spec.fqdn}:{self.port}",
                                                   transport=call.target.transport.upper())
        except DialogError as exc:
            call.reason = f"bad 2xx: {exc}"
            self._finish(call, "failed")
            return
        call.dialog.local_sdp = offer
        if response.body:
            with contextlib.suppress(SdpError):
                call.dialog.remote_sdp = SessionDescription.parse(response.body)
        self._ep.send_ack(call.dialog.create_ack(invite.cseq.seq, self.rng), call.target)
        self._answered(call)
        await self._start_media(call, offer, call.dialog.remote_sdp, offerer=True)
        if hangup_after is not None:
            self._spawn(self._hangup_later(call, hangup_after))

    # --- receiving calls --------------------------------------------------------------------
    async def _on_request(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        method = request.method
        call = self._call_for(request)
        if method == "INVITE" and request.to.tag is None:
            await self._on_invite(incoming)
        elif method == "INVITE":
            self._on_reinvite(incoming, call)
        elif method == "BYE":
            if call is None:
                incoming.respond(481)
                return
            call.dialog.receive_request(request)
            incoming.respond(200)
            call.ended_by = "peer"
            self._finish(call, "ended")
        elif method == "OPTIONS" and request.to.tag is not None and call is None:
            incoming.respond(481)  # in-dialog, and the dialog is not ours (any more): RFC 3261 §12.2.2
        elif method == "OPTIONS":
            incoming.respond(200, headers=[("Allow", ALLOW)])
        elif method == "ACK":
            return
        else:
            incoming.respond(405, headers=[("Allow", ALLOW)])

    def _call_for(self, request: Request) -> PstnCall | None:
        for call in (*self.received, *self.placed):
            if call.dialog is not None and call.dialog.matches(request):
                return call
        return None

    async def _on_invite(self, incoming: Incoming) -> None:
        request: Request = incoming.request
        callee = getattr(request.uri, "user", None) or str(request.uri)
        caller = getattr(request.from_.uri, "user", None) or str(request.from_.uri)
        sbc = self._sbc_of(incoming.source.address)
        call = PstnCall(self, "to_pstn", request.call_id, caller, callee, sbc, request=request,
                        started_at=self._now(), incoming=incoming)
        self.received.append(call)
        self._event("call.started", call)
        far = self.far_end(callee)
        tag = new_tag(self.rng)
        if far.failure_status is not None:
            self._reject(call, far.failure_status, tag, far.behaviour)
            return
        try:
            remote = SessionDescription.parse(request.body)
            local = self._sdp(remote)
            call.dialog = Dialog.from_uas_request(request, tag, local_contact=self._contact(callee),
                                                  sent_by=f"{self.spec.fqdn}:{self.port}",
                                                  transport=incoming.source.transport.upper())
        except (SdpError, DialogError) as exc:
            self._reject(call, 488 if isinstance(exc, SdpError) else 400, tag, str(exc))
            return
        call.dialog.remote_sdp, call.dialog.local_sdp = remote, local
        if far.early_media:  # RFC 3960: the network's ringback/announcement before the answer
            incoming.respond(183, to_tag=tag, body=local.to_bytes(),
                             headers=[("Contact", self._contact(callee)), ("Content-Type", "application/sdp")])
            await self._start_media(call, local, remote, offerer=False)
        else:
            incoming.respond(180, to_tag=tag, headers=[("Contact", self._contact(callee))])
        call.state = "ringing"
        self._event("call.ringing", call, status=183 if far.early_media else 180)
        incoming.on_cancel(lambda _incoming: self._cancelled(call))
        if far.behaviour == "ring":
            return
        delay = far.answer_after if far.answer_after is not None else self.ctx.settings.pstn_answer_after_s
        self._spawn(self._answer_later(call, delay, far.hangup_after))

    def _reject(self, call: PstnCall, status: int, tag: str, reason: str) -> None:
        call.incoming.respond(status, to_tag=tag)
        call.status, call.reason = status, reason
        self._finish(call, "failed")

    def _cancelled(self, call: PstnCall) -> None:
        """The endpoint answered the caller's CANCEL (200, and 487 to the INVITE)."""
        if call.state == "ringing":
            call.status, call.reason = 487, "caller cancelled"
            self._finish(call, "failed")

    async def _answer_later(self, call: PstnCall, delay: float, hangup_after: float | None) -> None:
        await asyncio.sleep(delay)
        if call.state != "ringing" or call.incoming.answered:
            return
        assert call.dialog is not None and call.dialog.local_sdp is not None
        call.incoming.respond(200, to_tag=call.dialog.local_tag, body=call.dialog.local_sdp.to_bytes(),
                              headers=[("Contact", self._contact(call.callee)), ("Content-Type", "application/sdp"),
                                       ("Allow", ALLOW)])
        call.dialog.confirm()
        call.status = 200
        call.target = self._in_dialog_target(call)
        self._answered(call)
        await self._start_media(call, call.dialog.local_sdp, call.dialog.remote_sdp, offerer=False)
        if hangup_after is not None:
            self._spawn(self._hangup_later(call, hangup_after))

    def _on_reinvite(self, incoming: Incoming, call: PstnCall | None) -> None:
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
            local = self._sdp(remote, port=_audio_port(call.dialog.local_sdp))
        except SdpError:
            incoming.respond(488)
            return
        call.dialog.remote_sdp, call.dialog.local_sdp = remote, local
        self.media.update(call.call_id, remote, local)
        incoming.respond(200, body=local.to_bytes(),
                         headers=[("Contact", self._contact(call.callee if call.direction == "to_pstn" else call.caller)),
                                  ("Content-Type", "application/sdp")])
        audio = remote.audio
        direction = remote.direction_of(audio) if audio is not None else "inactive"
        was_held = bool(call.holds) and call.holds[-1] != "sendrecv"
        call.holds.append(direction)
        if remote.is_hold != was_held:
            self._event("call.held" if remote.is_hold else "call.resumed", call, media=direction)

    # --- ending -----------------------------------------------------------------------------
    async def _hangup_later(self, call: PstnCall, after: float) -> None:
        await asyncio.sleep(after)
        if call.state == "answered":
            await self._hangup(call)

    async def _hangup(self, call: PstnCall) -> int | None:
        if call.state in ("ended", "failed"):
            return None
        if call.state != "answered":
            if call.direction == "from_pstn" and call.tx is not None:
                call.tx.cancel()
                await call.wait_final(timeout=64 * self.ctx.settings.sip_t1_s)
            elif call.incoming is not None and call.dialog is not None:
                self._reject(call, 480, call.dialog.local_tag, "far end hung up before answering")
            return call.status
        assert call.dialog is not None
        bye = call.dialog.create_request("BYE", self.rng)
        call.ended_by, hung_up_at = "far end", self._now()
        try:
            status = (await self._ep.request(bye, call.target).final()).status
        except SipFailure as exc:  # the SBC never heard: the far end has hung up all the same
            call.reason = f"BYE failed: {exc}"
            self._finish(call, "ended", EndReason.NETWORK_FAILURE, at=hung_up_at)
            return None
        self._finish(call, "ended", at=hung_up_at)
        return status

    def _answered(self, call: PstnCall) -> None:
        call.state = "answered"
        call.answered_at = self._now()
        call._answered.set()
        call._final.set()
        self._event("call.answered", call)
        self._spawn(self._media_watchdog(call))

    def _finish(self, call: PstnCall, state: str, end_reason: EndReason | None = None,
                at: float | None = None) -> None:
        """`end_reason` defaults to normal (answered), cancelled (487) or refused; `at`: when it
        ended (default now)."""
        if call.state in ("ended", "failed"):
            return
        if end_reason is None:
            end_reason = EndReason.NORMAL if state == "ended" else \
                EndReason.CANCELLED if call.status == 487 else EndReason.REFUSED
        call.end_reason = str(end_reason)
        call.state = state
        call.ended_at = self._now() if at is None else at
        if call.dialog is not None:
            call.dialog.terminate()
        self.media.stop(call.call_id)
        call._final.set()
        call._ended.set()
        self._event("call.ended", call, reason=call.reason, ended_by=call.ended_by, end_reason=call.end_reason)

    # --- media inactivity (roles/media_watch.py) ----------------------------------------------------
    async def _start_media(self, call: PstnCall, local: SessionDescription | None,
                           remote: SessionDescription | None, *, offerer: bool) -> None:
        await self.media.start(call.call_id, local, remote, offerer=offerer,
                               on_packet=call.media.received, on_expect=call.media.expect)

    async def _media_watchdog(self, call: PstnCall) -> None:
        """The far end gives up on a call with no media for the inactivity timeout (a BYE, as a phone
        user hanging up on silence)."""
        timeout = self.ctx.settings.media_inactivity_timeout_s
        if await watch_until_silent(lambda: [call.media], call._ended, timeout) is None or call.state != "answered":
            return
        self._event("call.media_timeout", call, leg="pstn", silent_s=timeout, cause="no media")
        assert call.dialog is not None
        bye = call.dialog.create_request("BYE", self.rng)
        call.ended_by = "far end"
        self._finish(call, "ended", EndReason.MEDIA_TIMEOUT)
        with contextlib.suppress(SipFailure):
            await self._ep.request(bye, call.target).final()

    # --- helpers ----------------------------------------------------------------------------
    def _contact(self, user: str) -> str:
        return f"<sip:{user}@{self.spec.fqdn}:{self.port};transport={self.transport}>"

    def _in_dialog_target(self, call: PstnCall) -> Target:
        _, _, transport = self.ctx.topology.sbc_carrier.get(call.sbc, (None, None, self.transport))
        return Target(call.sbc, self.ctx.topology.sbc_pstn_port(call.sbc), transport)

    def _sbc_of(self, address: str) -> str:
        for sbc in self.sbcs or list(self.ctx.topology.sbc_carrier):
            with contextlib.suppress(Exception):
                if self.ctx.network.resolve(sbc) == address:
                    return sbc
        return address

    def _sdp(self, remote: SessionDescription | None = None, *, port: int | None = None) -> SessionDescription:
        address = self.ctx.network.resolve(self.spec.fqdn)
        session = str(self.rng.randrange(10**9))
        port = port or self.media.port()
        if remote is None:
            return make_offer(address, port, CODECS, session_id=session)
        return make_answer(remote, address, port, CODECS, session_id=session)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _event(self, name: str, call: PstnCall, **extra: Any) -> None:
        extra.setdefault("status", call.status)
        self.log.info(name, call_id=call.call_id, caller=call.caller, callee=call.callee,
                      path=call.sbc, direction=call.direction, **extra)

    def _spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro)
