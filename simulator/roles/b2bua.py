"""What every back-to-back user agent in the lab shares: the leg, the call and its state, transfer.

The SBC, the SBA and the Teams proxy are B2BUAs (after Sippy's B2BUA): each call is two legs and a
small policy between them. The A leg is the one that called us (we are its UAS), the B leg the one
we placed (we are its UAC); each is its own dialog (RFC 3261 §12), and what arrives on one is
relayed on the other: provisional and final responses toward the caller, BYE and re-INVITE
(hold/resume) within the other leg's dialog, the caller's CANCEL as a CANCEL of the B leg.
Each role keeps only its policy: where a call goes, which numbers it rewrites, what it records.

Theory of operation: a call's state

| state    | entered when                                                   | next                   |
|----------|----------------------------------------------------------------|------------------------|
| TRYING   | the A leg's INVITE arrived (or a transfer placed a new B leg)  | EARLY, ANSWERED, ENDED |
| EARLY    | a provisional response other than 100 reached the caller      | ANSWERED, ENDED        |
| ANSWERED | the B leg answered 2xx and the caller got its 200              | ENDED                  |
| ENDED    | a BYE, a failure, the caller's CANCEL, or a transfer ended it  | -                      |

`B2bua` is the base of the roles: given how a leg is reached (`endpoint_of`, `target_of`) and our
Contact toward it, it watches the caller's CANCEL, relays the B leg's provisional responses to the
caller, takes the B leg's 2xx (dialog, ACK, or a BYE when the caller has gone) and answers the
caller with it, sends BYE on a leg, relays a re-INVITE, UPDATE or INFO to the other leg and its
answer back (`relay_in_dialog`), and re-offers a transferee its new party's media.

Calls a broken path interrupts: every answered call runs a media watchdog (roles/media_watch.py).
A leg whose media has been silent for `media_inactivity_timeout_s` ends the call at this node
(`end_silent`: the record says media_timeout, ended_by self; a BYE goes to every leg still in
dialog, and one that cannot be delivered is a `call.bye_failed`). A node that relays the call's
media hears each packet on the leg it came from (`media_received(call, leg, now)`, while the
offer/answer has that leg's party send: `media_expected`); on any node the silence also counts
from the moment a connection the leg's dialog used closed, or keepalives to its peer went
unanswered (a path that drops packets resets nothing), and an in-dialog OPTIONS could not
re-establish it (`connection_lost`, `peer_unreachable`, `call.path_lost`). Each B leg placed is a `leg.placed` event linking its Call-ID to the A leg's.

Blind transfer (RFC 3515): a REFER in an answered call is accepted with 202 (`accept_refer`); the
REFERring leg (the transferor) leaves, the other party (the transferee) is connected to the
Refer-To target by a new B leg, and the transferor hears of it through NOTIFYs in the REFER's
dialog (`TransferProgress`: `SIP/2.0 100 Trying`, then the new leg's final status line), sent in
order, none after its BYE.
"""

from __future__ import annotations

import asyncio
import enum
import math
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from simulator.endpoint import (
    ClientTx,
    Connection,
    Incoming,
    SipEndpoint,
    SipFailure,
    Target,
    TransactionTimeout,
    TransportFailure,
)
from simulator.media.quality import ONE_WAY_SILENCE_S
from simulator.media.session import RoleMedia
from simulator.roles.cdr import CallPath, CdrDraft, Direction
from simulator.roles.gateway_attempts import GatewayAttempts
from simulator.roles.media_watch import CONNECTION_LOST, NO_MEDIA, MediaWatch, check_path, watch_until_silent
from simulator.roles.tasks import RoleTasks
from simulator.sip import Request, Response, SipParseError
from simulator.sip.dialog import Dialog
from simulator.sip.sdp import SdpError, SessionDescription
from simulator.sip.uri import parse_uri


class CallState(enum.Enum):
    TRYING = "trying"
    EARLY = "early"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(eq=False)
class Leg:
    """One side of a call: its dialog with us and where its in-dialog requests go."""

    kind: str  # the role's name for the side: "pstn", "teams", "client", "trunk"
    party: str = ""  # who is at the far end: a user's UPN or a number
    peer: str = ""  # the next hop: a carrier, proxy, SBA or gateway FQDN
    target: Target | None = None  # where in-dialog requests go (None: the role works it out)
    dialog: Dialog | None = None
    incoming: Incoming | None = None  # the A leg: the INVITE's server transaction
    invite: Request | None = None  # the INVITE received (A leg) or sent (B leg)
    tx: ClientTx | None = None  # the B leg: our INVITE's client transaction while it rings
    local_tag: str = ""  # our tag on this leg, before the dialog exists
    connection: Connection | None = None  # the connection the peer's INVITE came on
    sdp: bytes = b""  # the party's last session description (the offer a transfer re-uses)
    gateway: str | None = None  # a PSTN leg: the gateway it goes through
    attempts: GatewayAttempts | None = None  # a PSTN B leg: its gateways under the failover rule
    host: Any = None  # the proxy host whose endpoint carries the leg (the Teams cloud has three)
    media: MediaWatch = field(default_factory=MediaWatch)  # its media silence (roles/media_watch.py)

    @property
    def local_contact(self) -> str:
        return self.dialog.local_contact if self.dialog else ""

    @property
    def in_dialog(self) -> bool:
        """The leg has a dialog that still takes requests."""
        return self.dialog is not None and self.dialog.state != "Terminated"


@dataclass(eq=False)
class Call:
    """Two legs and where the call stands."""

    call_id: str  # the A leg's Call-ID (events and CDRs use it)
    caller: str
    callee: str
    direction: Direction
    a: Leg
    b: Leg | None = None
    state: CallState = CallState.TRYING
    draft: CdrDraft | None = None  # the call record being written; None: the call is not recorded
    path: CallPath = CallPath.CLOUD
    user: str | None = None  # the Teams user of the call (whose policy routes a transfer)
    held: bool = False
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)  # the caller CANCELled
    relayed: set[int] = field(default_factory=set)  # provisional statuses relayed to the caller
    tried: list[tuple[str, str]] = field(default_factory=list)  # (next hop, outcome) per attempt
    transfer: TransferProgress | None = None  # this call connects a transferee: NOTIFY its transferor
    departing: Leg | None = None  # the transferor, between its REFER and its BYE
    # the proxy's MaxConcurrentSessions count [S4]: (gateway, limit) this call holds, and one a
    # transferee's call carries over from the call it came from
    session: tuple[str, int | None] | None = None
    kept_session: tuple[str, int | None] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # set on ENDED (wakes its watchdog)
    media_watched: bool = False

    def other(self, leg: Leg) -> Leg | None:
        return self.b if leg is self.a else self.a

    @property
    def setting_up(self) -> bool:
        return self.state in (CallState.TRYING, CallState.EARLY)

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    def answer(self) -> None:
        self.state = CallState.ANSWERED

    def end(self) -> bool:
        """Move to ENDED; False when the call had ended already."""
        if self.state is CallState.ENDED:
            return False
        self.state = CallState.ENDED
        self.finished.set()
        return True

    @property
    def legs(self) -> list[Leg]:
        return [leg for leg in (self.a, self.b) if leg is not None]


def find_leg(calls: list[Call], request: Request) -> tuple[Call, Leg] | None:
    """The call and leg whose dialog an in-dialog request belongs to (RFC 3261 §12.2.2), the
    latest call first; a transferor between its REFER and its BYE still has its leg."""
    for call in reversed(calls):
        for leg in (call.a, call.b, call.departing):
            if leg is not None and leg.dialog is not None and leg.dialog.matches(request):
                return call, leg
    return None


class CallTable:
    """A role's calls in progress, in the order they began, filed under the Call-ID of each of
    their legs: an in-dialog request finds its call by its Call-ID, then its leg by the dialog's
    tags (RFC 3261 §12.2.2), at the same cost with ten calls up or after a million have ended. A
    call leaves the table once its record is written (`forget`); a request for it then finds
    nothing, and is answered 481 as for any dialog that no longer exists."""

    def __init__(self) -> None:
        self._calls: dict[Call, list[str]] = {}  # each call -> the Call-IDs it is filed under
        self._by_call_id: dict[str, list[Call]] = {}

    def add(self, call: Call) -> None:
        """File a new call under its Call-ID and those of the legs that have a dialog already."""
        self._calls.setdefault(call, [])
        for call_id in (call.call_id, *(leg.dialog.call_id for leg in call.legs if leg.dialog is not None)):
            self.file(call, call_id)

    def file(self, call: Call, call_id: str) -> None:
        """File `call` under one more Call-ID: a leg it placed (a B leg's dialog has its own)."""
        ids = self._calls.get(call)
        if ids is not None and call_id not in ids:
            ids.append(call_id)
            self._by_call_id.setdefault(call_id, []).append(call)

    def forget(self, call: Call) -> None:
        for call_id in self._calls.pop(call, ()):
            calls = self._by_call_id[call_id]
            calls.remove(call)
            if not calls:
                del self._by_call_id[call_id]

    def find(self, request: Request) -> tuple[Call, Leg] | None:
        """The call and leg of an in-dialog request (see `find_leg`), None when none is in the table."""
        return find_leg(self._by_call_id.get(request.call_id or "", []), request)

    def clear(self) -> None:
        self._calls.clear()
        self._by_call_id.clear()

    def __iter__(self) -> Iterator[Call]:
        return iter(list(self._calls))  # a copy: ending a call while iterating forgets it

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, call: object) -> bool:
        return call in self._calls


# --- blind transfer (RFC 3515) ----------------------------------------------------------------------------
#: RFC 3515 §2.4.4 leaves the implicit subscription's duration to the referee: long enough for a
#: transfer target to ring and answer (docs/ASSUMPTIONS.md)
REFER_SUBSCRIPTION_EXPIRES_S = 60
SIPFRAG = "message/sipfrag;version=2.0"


def refer_notify(dialog: Dialog, rng: random.Random, status: int, reason: str, *, final: bool) -> Request:
    """The referee's NOTIFY of a REFER's progress (RFC 3515 §2.4.4-2.4.5, RFC 3265): in the REFER's
    dialog, Event: refer, the new call's status line as a message/sipfrag body; the one with the
    final status terminates the implicit subscription (reason=noresource)."""
    state = "terminated;reason=noresource" if final else f"active;expires={REFER_SUBSCRIPTION_EXPIRES_S}"
    return dialog.create_request("NOTIFY", rng, body=f"SIP/2.0 {status} {reason}\r\n".encode(),
                                 content_type=SIPFRAG, extra_headers=[
                                     ("Event", "refer"), ("Subscription-State", state),
                                     ("Contact", dialog.local_contact)])


def refer_target(request: Request) -> Any | None:
    """The URI of the REFER's Refer-To (`<sip:...>` or a bare URI); None when absent or unreadable."""
    value = (request.headers.get("Refer-To") or "").strip()
    if not value:
        return None
    if "<" in value:
        value = value[value.index("<") + 1:value.index(">")] if ">" in value else ""
    try:
        return parse_uri(value)
    except (SipParseError, ValueError):
        return None


def accept_refer(incoming: Incoming, call: Call, leg: Leg) -> tuple[Leg, Any] | None:
    """A REFER from `leg` (RFC 3515 §2.4.2): 202 and (transferee, Refer-To URI) for a blind
    transfer of an answered call; else 400 (no readable Refer-To) or 481 (nothing to transfer)."""
    target = refer_target(incoming.request)
    transferee = call.other(leg)
    if target is None:
        incoming.respond(400, "Bad Refer-To")
        return None
    if transferee is None or transferee.dialog is None or call.state is not CallState.ANSWERED:
        incoming.respond(481)
        return None
    incoming.respond(202)
    return transferee, target


#: sends an in-dialog request on a leg: (response, failure) where failure says why none came
SendOnLeg = Callable[[Leg, Request], Awaitable[tuple[Response | None, str | None]]]


class TransferProgress:
    """The NOTIFYs of one REFER's implicit subscription, sent to the transferor in order."""

    def __init__(self, transferor: Leg, rng: random.Random, send: SendOnLeg, log: Any,
                 spawn: Callable[[Awaitable[None]], asyncio.Task[Any]]) -> None:
        self.transferor = transferor
        self._rng, self._send, self._log, self._spawn = rng, send, log, spawn
        self._last: asyncio.Task[Any] | None = None
        self.done = False

    def notify(self, status: int, reason: str, *, final: bool) -> asyncio.Task[Any] | None:
        """Queue the NOTIFY for this status (the task that sends it, to await if the role waits);
        the final one ends the subscription (none after it)."""
        if self.done or not self.transferor.in_dialog:
            return None
        self.done = final
        previous = self._last

        async def send() -> None:
            if previous is not None:
                await asyncio.wait({previous})
            dialog = self.transferor.dialog
            if dialog is None or dialog.state == "Terminated":
                return  # the transferor has hung up already
            request = refer_notify(dialog, self._rng, status, reason, final=final)
            response, failure = await self._send(self.transferor, request)
            if response is None:
                self._log.warning("call.notify_failed", call_id=dialog.call_id, reason=failure)
                return
            self._log.info("call.transfer_notified", call_id=dialog.call_id, sipfrag=status, final=final,
                           status=response.status)

        self._last = self._spawn(send())
        return self._last


def _side(call: Call, leg: Leg) -> str:
    return "a" if leg is call.a else "b"


def is_hold(body: bytes) -> bool | None:
    """Does this offer put the call on hold (RFC 3264 §8.4)? None when it is no SDP."""
    try:
        return SessionDescription.parse(body).is_hold
    except SdpError:
        return None


class B2bua:
    """What a B2BUA role does the same way on any call; the role says how each leg is reached."""

    rng: random.Random
    log: Any
    ctx: Any
    _tasks: RoleTasks
    media: RoleMedia | None = None  # a role that anchors media (an SBC, the media processor) sets it

    # --- what the role supplies --------------------------------------------------------------------------
    def endpoint_of(self, leg: Leg) -> SipEndpoint | None:
        """The endpoint that sends on `leg` (None while the node is stopped)."""
        raise NotImplementedError

    def target_of(self, leg: Leg) -> Target:
        """Where the in-dialog requests of `leg` go."""
        assert leg.target is not None
        return leg.target

    def contact_on(self, leg: Leg) -> str:
        """Our Contact toward `leg`."""
        return leg.local_contact

    def call_event(self, name: str, call: Call, **fields: Any) -> None:
        """Log a `call.*` event with the role's call fields."""
        raise NotImplementedError

    async def end_silent(self, call: Call, leg: Leg) -> None:
        """End an answered call whose `leg` has had no media for the inactivity timeout: close the
        record (end_reason media_timeout, ended_by self) and BYE every leg still in dialog."""
        raise NotImplementedError

    # --- overload (RFC 3261 §21.5.4) ----------------------------------------------------------------------
    _setups: int = 0  # calls being set up here: from their INVITE to its final answer

    def overloaded(self, incoming: Incoming) -> bool:
        """With `max_call_setups` calls being set up here, or, for an INVITE read from UDP,
        `overload_queue_bytes` still unread behind it in the socket's buffer (messages this node
        has not even seen wait there, and their senders retransmit after T1), a new INVITE is
        answered 503 with Retry-After at once and nothing of it is kept (no call, no leg, no
        record): shedding it costs a fraction of taking it, so the calls already admitted keep
        their pace, and the caller knows to wait rather than retransmit into a queue. True when
        refused."""
        settings = self.ctx.settings
        queued = incoming.endpoint.udp_queued_octets() if incoming.source.transport == "udp" else 0
        if self._setups < settings.max_call_setups and queued < settings.overload_queue_bytes:
            return False
        retry_after = max(1, math.ceil(settings.overload_retry_after_s))  # delta-seconds (§20.33), scaled or not
        incoming.respond(503, "Overloaded", headers=[("Retry-After", str(retry_after))])
        self.log.info("call.overloaded", call_id=incoming.request.call_id, setups=self._setups,
                      limit=settings.max_call_setups, queued=queued, retry_after=retry_after)
        return True

    async def set_up(self, setup: Awaitable[None]) -> None:
        """Run the handling of a new INVITE, counted among the calls being set up until it ends."""
        self._setups += 1
        try:
            await setup
        finally:
            self._setups -= 1

    # --- sending on a leg --------------------------------------------------------------------------------
    async def request_on_leg(self, leg: Leg, request: Request) -> Response:
        """Send an in-dialog request on `leg`; its final response, or SipFailure."""
        endpoint = self.endpoint_of(leg)
        if endpoint is None:
            raise TransportFailure("send.failed", "the node is stopped")
        return await endpoint.request(request, self.target_of(leg)).final()

    async def send_on_leg(self, leg: Leg, request: Request) -> tuple[Response | None, str | None]:
        """`request_on_leg` as (response, None) or (None, why no response came)."""
        try:
            return await self.request_on_leg(leg, request), None
        except SipFailure as exc:
            return None, str(exc)

    def ack_on_leg(self, leg: Leg, invite: Request) -> None:
        """ACK a 2xx to our INVITE on `leg` (RFC 3261 §13.2.2.4)."""
        endpoint = self.endpoint_of(leg)
        if endpoint is not None and leg.dialog is not None:
            endpoint.send_ack(leg.dialog.create_ack(invite.cseq.seq, self.rng), self.target_of(leg))

    async def bye(self, leg: Leg) -> Response | None:
        """End `leg`'s dialog with a BYE; no answer is a `call.bye_failed` warning."""
        if leg.dialog is None or not leg.in_dialog:
            return None
        bye = leg.dialog.create_request("BYE", self.rng)
        leg.dialog.terminate()
        response, failure = await self.send_on_leg(leg, bye)
        if response is None:
            self.log.warning("call.bye_failed", call_id=bye.call_id, reason=failure)
        return response

    async def bye_all(self, call: Call, *, but: Leg | None = None) -> dict[str, str]:
        """BYE every leg of `call` still in dialog (except `but`) at once: {leg kind: outcome}, the
        outcome a status code or why no answer came (`call.bye_failed`)."""
        legs = [leg for leg in call.legs if leg is not but and leg.in_dialog]
        answers = await asyncio.gather(*(self.bye(leg) for leg in legs))
        return {leg.kind: str(r.status) if r is not None else "failed" for leg, r in zip(legs, answers, strict=True)}

    # --- media inactivity (roles/media_watch.py) ---------------------------------------------------------
    def media_received(self, call: Call, leg: Leg, now: float) -> None:
        """The media layer saw a packet arrive on `leg` of `call`."""
        leg.media.received(now)

    def media_expected(self, call: Call, leg: Leg, now: float, receiving: bool = True) -> None:
        """The media layer expects packets on `leg` from `now` (or, not `receiving`, none: on hold)."""
        leg.media.expect(now, receiving)

    def _relayed_media(self, call: Call, side: str, now: float) -> None:
        leg = call.a if side == "a" else call.b
        if leg is not None:
            self.media_received(call, leg, now)

    def _relay_expects(self, call: Call, side: str, now: float, receiving: bool) -> None:
        leg = call.a if side == "a" else call.b
        if leg is not None:
            self.media_expected(call, leg, now, receiving)

    def watch_media(self, call: Call) -> None:
        """Run the media watchdog of an answered call (once)."""
        if not call.media_watched:
            call.media_watched = True
            self._tasks.spawn(self._media_watchdog(call))

    async def _media_watchdog(self, call: Call) -> None:
        timeout = self.ctx.settings.media_inactivity_timeout_s
        while True:
            silent = await watch_until_silent(lambda: [leg.media for leg in call.legs], call.finished, timeout)
            if silent is None:
                return
            leg = next(leg for leg in call.legs if leg.media is silent)
            if silent.cause == CONNECTION_LOST and await self._reestablished(leg):
                continue  # the path came back within the timeout: its media would have too
            if call.ended:  # a BYE ended it while we asked
                return
            # a relay hears both directions: silence one way while the other still flows is one-way audio
            now = asyncio.get_running_loop().time()
            one_way = silent.cause == NO_MEDIA and any(
                other.media.heard_within(now, ONE_WAY_SILENCE_S) for other in call.legs if other is not leg)
            self.call_event("call.media_timeout", call, leg=leg.kind, silent_s=timeout, cause=silent.cause,
                            **({"one_way": True} if one_way else {}))
            await self.end_silent(call, leg)
            return

    def legs_on(self, calls: Iterable[Call], address: str, conn: Connection | None = None) -> list[tuple[Call, Leg]]:
        """The legs of answered calls whose in-dialog requests go to `address` (or over `conn`)."""
        found = []
        for call in calls:
            if call.state is not CallState.ANSWERED:
                continue
            for leg in call.legs:
                if not leg.in_dialog:
                    continue
                target = self.target_of(leg)
                if (conn is not None and (target.connection is conn or leg.connection is conn)) \
                        or self._address(target.host) == address:
                    found.append((call, leg))
        return found

    def connection_lost(self, conn: Connection, calls: Iterable[Call]) -> None:
        """A connection closed: the legs that used it try to re-establish their path; where that
        fails, their silence starts now (the media watchdog ends the call after the timeout)."""
        self.check_paths(self.legs_on(calls, conn.remote[0], conn))

    def peer_unreachable(self, host: str, calls: Iterable[Call]) -> None:
        """Keepalives to `host` went unanswered (a path that drops packets resets nothing): the legs
        toward it check their path the same way."""
        self.check_paths(self.legs_on(calls, self._address(host)))

    def check_paths(self, legs: list[tuple[Call, Leg]]) -> None:
        now = asyncio.get_running_loop().time()
        for call, leg in legs:
            if not leg.media.checking and leg.media.path_lost_at is None:
                self._tasks.spawn(self._check_path(call, leg, now))

    async def _check_path(self, call: Call, leg: Leg, lost_at: float) -> None:
        if await check_path(leg.media, lambda: self._reestablished(leg), lost_at):
            self.call_event("call.path_lost", call, leg=leg.kind)

    async def _reestablished(self, leg: Leg) -> bool:
        """An in-dialog OPTIONS (RFC 3261 §11) on `leg` opens a new connection if one is needed:
        any answer means the path is back."""
        if leg.dialog is None or not leg.in_dialog:
            return False
        response, _failure = await self.send_on_leg(leg, leg.dialog.create_request("OPTIONS", self.rng))
        back = response is not None and response.status != 481  # 481: the far end has no such call (RFC 3261 §12.2.1.2)
        if back:
            leg.media.path_restored()
        return back

    def _address(self, host: str) -> str:
        try:
            return self.ctx.network.resolve(host)
        except Exception:  # an address already, or a name the lab does not know
            return host

    # --- relaying ----------------------------------------------------------------------------------------
    def watch_cancel(self, call: Call, then: Callable[[], None] | None = None) -> None:
        """The caller's CANCEL (its endpoint answers it 200 and the INVITE 487, RFC 3261 §9.2) sets
        `call.cancelled`; `then` is the role's way to CANCEL the B leg it has placed."""
        def cancelled(_incoming: Incoming) -> None:
            call.cancelled.set()
            if then is not None:
                then()

        if call.a.incoming is not None:
            call.a.incoming.on_cancel(cancelled)

    def relay_provisional(self, call: Call, response: Response) -> None:
        """A provisional response of the B leg reaches the caller in the A leg's dialog: once per
        status, with its session description (early media); 100 Trying is hop-by-hop (RFC 3261
        §17.2.1). The first 180/183 is the call's `call.ringing`."""
        incoming = call.a.incoming
        if response.status <= 100 or not call.setting_up or call.cancelled.is_set():
            return
        if incoming is None or incoming.answered or response.status in call.relayed:
            return  # a transfer's B leg (the transferee's call is up already), or relayed already
        call.relayed.add(response.status)
        headers = [("Contact", self.contact_on(call.a))]
        if response.body and response.content_type:
            headers.append(("Content-Type", response.content_type))
        incoming.respond(response.status, response.reason, to_tag=call.a.local_tag or None, headers=headers,
                         body=self.media_body(call, response.body, "a"))
        if response.status in (180, 183) and call.state is CallState.TRYING:
            call.state = CallState.EARLY
            self.call_event("call.ringing", call, status=response.status)

    def take_answer(self, call: Call, leg: Leg, invite: Request, response: Response, *, local_contact: str,
                    sent_by: str, transport: str) -> bool:
        """The B leg answered 2xx: its dialog (RFC 3261 §12.1.2) and the ACK (§13.2.2.4). False when
        the caller gave up meanwhile: the B leg then gets its BYE and the role records the call as
        cancelled. Raises DialogError for a 2xx no dialog can be made from."""
        leg.dialog = Dialog.from_uac_response(invite, response, local_contact=local_contact, sent_by=sent_by,
                                              transport=transport)
        leg.sdp = response.body
        self.ack_on_leg(leg, invite)
        if call.cancelled.is_set() or call.ended:  # the 2xx crossed the caller's CANCEL
            self._tasks.spawn(self.bye(leg))
            return False
        return True

    def answer_caller(self, call: Call, response: Response, headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        """The caller's 200, with the B leg's session description: the call is ANSWERED."""
        incoming = call.a.incoming
        assert incoming is not None
        incoming.respond(200, to_tag=call.a.local_tag or None, contact=self.contact_on(call.a), headers=headers,
                         body=self.media_body(call, response.body, "a"), content_type=response.content_type if response.body else None)
        if call.a.dialog is not None:
            call.a.dialog.confirm()
        call.answer()
        self.watch_media(call)

    async def relay_in_dialog(self, call: Call, leg: Leg, incoming: Incoming) -> None:
        """A re-INVITE (hold/resume, a media change), UPDATE or INFO on `leg`: the same request in
        the other leg's dialog, its answer back; media is not touched, so SDP passes unchanged."""
        request = incoming.request
        other = call.other(leg)
        if call.state is not CallState.ANSWERED or other is None or other.dialog is None or not other.in_dialog:
            incoming.respond(491 if call.setting_up else 481)  # RFC 3261 §14.2: an INVITE is still pending
            return
        relay = other.dialog.create_request(request.method, self.rng,
                                            body=self.media_body(call, request.body, _side(call, other)),
                                            content_type=request.content_type if request.body else None)
        try:
            response = await self.request_on_leg(other, relay)
        except SipFailure as exc:
            incoming.respond(408 if isinstance(exc, TransactionTimeout) else 503)
            self.call_event("call.relay_failed", call, method=request.method, reason=str(exc))
            return
        answered = request.method == "INVITE" and 200 <= response.status < 300
        if answered:
            other.dialog.receive_response(response)
            self.ack_on_leg(other, relay)
            leg.sdp, other.sdp = request.body or leg.sdp, response.body or other.sdp
        headers = [("Contact", self.contact_on(leg))] if request.method == "INVITE" else []
        if response.body and response.content_type:
            headers.append(("Content-Type", response.content_type))
        incoming.respond(response.status, response.reason, headers=headers,
                         body=self.media_body(call, response.body, _side(call, leg)))
        held = is_hold(request.body) if answered and request.body else None
        if held is not None and held != call.held:
            call.held = held
            self.call_event("call.held" if held else "call.resumed", call, status=response.status,
                            by="caller" if leg is call.a else "callee")

    # --- media -------------------------------------------------------------------------------------------
    def media_body(self, call: Call, body: bytes, side: str) -> bytes:
        """An SDP body as relayed toward `side` ("a": the caller's leg, "b": the callee's): through
        the call's media relay when this node anchors its media, else unchanged."""
        relay = self.media.relays.get(call.call_id) if self.media is not None and body else None
        return relay.rewrite(body, side) if relay is not None else body

    def open_relay(self, call: Call) -> None:
        """Anchor the call's media on this node: its relay reports each packet, and what the
        offer/answer expects, to the legs' media watch."""
        if self.media is not None and self.media.enabled:
            self.media.anchor(call.call_id, on_packet=lambda side, now: self._relayed_media(call, side, now),
                              on_expect=lambda side, now, receiving: self._relay_expects(call, side, now, receiving))

    def anchored_body(self, call: Call, body: bytes, side: str) -> bytes:
        """`media_body` for the offer that opens the call's media relay on this node."""
        if body:
            self.open_relay(call)
        return self.media_body(call, body, side)

    def end_media(self, call: Call) -> None:
        """The call is over: stop relaying its media."""
        if self.media is not None:
            self.media.stop(call.call_id)

    async def reoffer(self, leg: Leg, sdp: bytes) -> None:
        """Re-INVITE a transferee with its new party's session description."""
        if leg.dialog is None or not leg.in_dialog or not sdp:
            return
        reinvite = leg.dialog.create_request("INVITE", self.rng, body=sdp, content_type="application/sdp")
        response, failure = await self.send_on_leg(leg, reinvite)
        if response is None:
            self.log.warning("call.relay_failed", call_id=reinvite.call_id, method="INVITE", reason=failure)
            return
        if 200 <= response.status < 300:
            leg.dialog.receive_response(response)
            self.ack_on_leg(leg, reinvite)
            leg.sdp = response.body or leg.sdp
