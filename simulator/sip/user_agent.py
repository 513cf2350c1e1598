"""The user-agent core: the rules RFC 3261 gives a UA above its transactions, sans-I/O.

Theory of operation
-------------------
`UserAgentCore` sits on one `TransactionLayer` and decides what the layer leaves to "the
core" (its `NoMatch`), so that any application on top — the asyncio endpoint of
simulator.endpoint, or the small `UserAgent` below — only ever sees new requests, ACKs,
responses and timeouts. Like the layer it reads no clock and owns no socket: every call
takes `now`, `next_deadline()` says when it next needs `handle_timer(now)`, and every call
returns a list of actions to carry out in order (aioquic's `QuicConnection` is the model):

    core = UserAgentCore(random.Random(1), settings=TimerSettings())
    actions = core.receive(message, source, now, transport="UDP")
    tx, actions = core.send_request(request, destination, now)
    actions = core.send_response(tx, response, now)    # or send_2xx(...) for an INVITE's 2xx
    actions = core.send_ack(ack, destination, now)      # the ACK for a 2xx (no transaction)
    actions = core.handle_timer(now)                    # at core.next_deadline()

Actions are the layer's (`Send`, `Deliver` of a response, `Timeout`, `TransportError`,
`Terminated`) and the core's own: `RequestReceived`, `AckReceived`, `Cancelled` and
`AckTimeout`. The rules, each written here once:

- A request with no Via or CSeq cannot be answered: dropped, with an event (§8.2.6, §18.1.2).
- With a `UasPolicy`, the §8.2 checks run first and refuse with their status (405, 415, 420...).
- CANCEL (§9.2): 481 when no INVITE server transaction matches; else 200, and 487 to the
  INVITE unless it already had a final response (then `Cancelled` tells the application).
- A B2BUA (`relays_calls`) answers a new INVITE that arrives with Max-Forwards 0 with 483
  (RFC 3261 §16.3 step 3, RFC 7332 §3).
- A request with a To tag goes to the dialog registered under its id (`dialogs`), which may
  refuse it (§12.2.2: a lower CSeq is a 500); with none, a core that keeps its dialogs
  (`keeps_dialogs`) answers 481 (§12.2.2), else the application decides.
- An application with nothing to say answers `default_response`: OPTIONS 200 (§11.2), the
  rest 501 (§8.2.1).
- The ACK for a 2xx is sent by the core, not a transaction (§13.2.2.4), and again for every
  retransmission of that 2xx for 64*T1; the application sees one final response per
  client transaction, and any other response nobody waits for is a `sip.response.stray`.
- A 2xx to an INVITE (`send_2xx`) is retransmitted over UDP at T1, doubling to T2, until its
  ACK arrives; after 64*T1 without one (any transport), `AckTimeout`: the application
  confirms and then ends the dialog with a BYE (§13.3.1.4).

Below the core, `UserAgent` is the smallest complete UA it allows, used by the conformance
tests: it places and answers calls (INVITE/180/200/ACK), re-INVITEs for hold, hangs up with
BYE, answers OPTIONS (and REGISTER when it plays registrar):

    ua = UserAgent("bob", "192.0.2.2", 5060, rng=random.Random(1))
    sends = ua.receive(datagram, source, now)      # -> [Send(message, destination)]
    sends = ua.handle_timer(now)                   # at ua.next_deadline()
    call, sends = ua.call("sip:bob@192.0.2.2", now)
    sends = ua.hold(call, now); sends = ua.hang_up(call, now)

Destinations are (host, port) tuples taken from the Request-URI or first Route
(RFC 3263 DNS resolution is the network layer's business), or the source a request
came from for its responses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

from simulator.sip import Request, Response, SipParseError, parse_message
from simulator.sip.builders import (
    make_cancel,
    make_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    out_of_hops,
)
from simulator.sip.dialog import Dialog, DialogError
from simulator.sip.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    SdpError,
    SessionDescription,
    make_answer,
    make_offer,
)
from simulator.sip.transaction import (
    Action,
    ClientTransaction,
    DeadlineQueue,
    Deliver,
    NoMatch,
    Send,
    ServerTransaction,
    Terminated,
    Timeout,
    TimerSettings,
    TransactionLayer,
    TransportError,
)
from simulator.sip.uas_checks import (
    ENDPOINT,
    UasPolicy,
    answer_unparseable,
    check_request,
    rejection_response,
)

# --- what the core hands the application ----------------------------------------------


@dataclass(frozen=True, eq=False)
class RequestReceived:
    """A new request for the application: its server transaction exists (an INVITE's 100
    Trying is already sent); `dialog` is the registered dialog it belongs to, if any."""

    request: Request
    transaction: ServerTransaction
    source: Any
    dialog: Any = None


@dataclass(frozen=True, eq=False)
class AckReceived:
    """An ACK for a 2xx (§13.3.1.4): it ends that 2xx's retransmissions."""

    ack: Request
    source: Any


@dataclass(frozen=True, eq=False)
class Cancelled:
    """A CANCEL ended this INVITE server transaction with `response`, the 487 (§9.2)."""

    transaction: ServerTransaction
    response: Response


@dataclass(frozen=True, eq=False)
class AckTimeout:
    """No ACK for the 2xx `response` within 64*T1: confirm the dialog, then BYE (§13.3.1.4)."""

    transaction: ServerTransaction
    response: Response


CoreAction = Action | RequestReceived | AckReceived | Cancelled | AckTimeout


class ReceivesRequests(Protocol):
    """A dialog as the core sees it: the status to refuse a request within it with, or None."""

    def receive_request(self, request: Request) -> int | None: ...


@dataclass
class _SentAck:
    ack: Request
    destination: Any
    forget_at: float


@dataclass
class _Unacknowledged:
    """A 2xx the core retransmits until its ACK arrives (§13.3.1.4)."""

    transaction: ServerTransaction
    response: Response
    interval: float
    next_at: float
    give_up_at: float


def dialog_key(request: Request) -> tuple[str, str | None, str | None]:
    """The id (§12) of the dialog a received request belongs to: Call-ID, its To tag (ours),
    its From tag (theirs) — `Dialog.id` as the receiving side keeps it."""
    return (request.call_id, request.to.tag, request.from_.tag)


def ack_key(message: Request | Response) -> tuple[str, int]:
    """A 2xx and the ACK for it share Call-ID and CSeq number (§13.2.2.4)."""
    return (message.call_id, message.cseq.seq)


class UserAgentCore:
    """The UA core rules above one TransactionLayer; see the module docstring."""

    def __init__(self, rng: random.Random, *, settings: TimerSettings | None = None, log: Any = None,
                 policy: UasPolicy | None = None, keeps_dialogs: bool = False,
                 relays_calls: bool = False) -> None:
        self.rng = rng
        self.settings = settings or TimerSettings()
        self.log = log
        self.policy = policy
        self.keeps_dialogs = keeps_dialogs
        self.relays_calls = relays_calls
        self.layer = TransactionLayer(self.settings, log)
        self.dialogs: dict[tuple[str, str | None, str | None], ReceivesRequests] = {}
        self.awaiting_ack: dict[tuple[str, int], _Unacknowledged] = {}
        self._retransmit_2xx: DeadlineQueue[tuple[str, int]] = DeadlineQueue(self._next_2xx_at)
        self._acks_sent: dict[tuple[str, int], _SentAck] = {}  # in the order they expire
        self._finals: set[ClientTransaction] = set()  # INVITE clients whose 2xx went up

    def _event(self, name: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.info(name, **fields)

    def new_tag(self) -> str:
        """A To tag for our responses: 48 random bits from the seeded RNG (§19.3: >= 32)."""
        return f"{self.rng.getrandbits(48):012x}"

    # --- time --------------------------------------------------------------------------
    def _next_2xx_at(self, key: tuple[str, int]) -> float | None:
        pending = self.awaiting_ack.get(key)
        return pending.next_at if pending is not None else None

    def next_deadline(self) -> float | None:
        """The earliest of the transactions' timers, the 2xx retransmissions and the sent ACKs'
        expiry: each kept in order, so this costs the same however many calls are up."""
        deadlines = [d for d in (self.layer.next_deadline(), self._retransmit_2xx.next_deadline()) if d is not None]
        if self._acks_sent:
            deadlines.append(next(iter(self._acks_sent.values())).forget_at)
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[CoreAction]:
        out = self._carry(self.layer.handle_timer(now), now, None)
        acks = self._acks_sent
        while acks and next(iter(acks.values())).forget_at <= now:
            del acks[next(iter(acks))]
        for key in self._retransmit_2xx.pop_due(now):
            pending = self.awaiting_ack[key]
            if now >= pending.give_up_at:
                del self.awaiting_ack[key]
                self._event("sip.dialog.no_ack", call_id=pending.response.call_id)
                out.append(AckTimeout(pending.transaction, pending.response))
                continue
            pending.interval = min(pending.interval * 2, self.settings.t2)
            pending.next_at = min(now + pending.interval, pending.give_up_at)
            self._retransmit_2xx.schedule(key)
            if not pending.transaction.terminated:
                out += self.send_response(pending.transaction, pending.response, now)
        return out

    # --- the network in ----------------------------------------------------------------
    def receive(self, message: Request | Response, source: Any, now: float,
                transport: str | None = None) -> list[CoreAction]:
        """A message from `source` over `transport` ("UDP", "TLS" ...; None: UDP)."""
        return self._carry(self.layer.receive(message, source, now), now, transport)

    def _carry(self, actions: list[Action], now: float, transport: str | None) -> list[CoreAction]:
        """The layer's actions, with what it leaves to the core decided."""
        out: list[CoreAction] = []
        for action in actions:
            kind = type(action)
            if kind is NoMatch:
                out += self._no_match(action.message, action.source, now, transport)  # type: ignore[union-attr]
            elif kind is Deliver:
                out += self._delivered(action)  # type: ignore[arg-type]
            else:
                if kind is Terminated:
                    self._finals.discard(action.transaction)  # type: ignore[arg-type,union-attr]
                out.append(action)
        return out

    def _delivered(self, action: Deliver) -> list[CoreAction]:
        message = action.message
        if isinstance(message, Request):  # an ACK for our 2xx, through the Accepted INVITE server
            return self._ack_received(message, action.transaction.peer)
        tx = action.transaction
        if tx.method == "INVITE" and 200 <= message.status < 300:
            if tx in self._finals:
                return self._answer_2xx_again(message)
            self._finals.add(tx)  # type: ignore[arg-type]
        return [action]

    def _answer_2xx_again(self, response: Response) -> list[CoreAction]:
        """§13.2.2.4: every retransmission of a 2xx gets the ACK sent for it, again."""
        sent = self._acks_sent.get(ack_key(response))
        if sent is not None:
            return [Send(sent.ack, sent.destination)]
        self._event("sip.response.stray", status=response.status, call_id=response.call_id,
                    cseq=f"{response.cseq.seq} {response.cseq.method}")
        return []

    def _no_match(self, message: Request | Response, source: Any, now: float,
                  transport: str | None) -> list[CoreAction]:
        try:
            if message.top_via is None or message.cseq is None:
                self._event("sip.request.unanswerable", why="no Via or CSeq to answer with")
                return []
        except SipParseError as exc:
            self._event("sip.request.unanswerable", why=exc.reason)
            return []
        if isinstance(message, Response):
            if message.cseq.method == "INVITE" and 200 <= message.status < 300:
                return self._answer_2xx_again(message)
            self._event("sip.response.stray", status=message.status, call_id=message.call_id,
                        cseq=f"{message.cseq.seq} {message.cseq.method}")
            return []
        if message.method == "ACK":
            return self._ack_received(message, source)
        if self.policy is not None:
            rejection = check_request(message, self.policy)
            if rejection is not None:
                self._event("sip.request.rejected", method=message.method, status=rejection.status,
                            why=rejection.why)
                tx, actions = self.layer.create_server(message, source, now, transport, send_trying=False)
                return self._carry(actions, now, transport) + self.send_response(
                    tx, rejection_response(message, rejection, self.new_tag()), now)
        tx, actions = self.layer.create_server(message, source, now, transport)
        out = self._carry(actions, now, transport)
        if message.method == "CANCEL":
            return out + self._cancel(message, tx, now)
        dialog = None
        if message.to.tag is None:
            if self.relays_calls and message.method == "INVITE" and out_of_hops(message):
                self._event("sip.too_many_hops", call_id=message.call_id, via=message.top_via.host)
                return out + self._answer(tx, 483, now)
        else:
            dialog = self.dialogs.get(dialog_key(message))
            if dialog is None and self.keeps_dialogs:
                return out + self._answer(tx, 481, now)  # §12.2.2
            if dialog is not None:
                refusal = dialog.receive_request(message)
                if refusal is not None:
                    return out + self._answer(tx, refusal, now)
        return out + [RequestReceived(message, tx, source, dialog)]

    def _answer(self, tx: ServerTransaction, status: int, now: float) -> list[CoreAction]:
        request = tx.request
        return self.send_response(tx, make_response(request, status, to_tag=request.to.tag or self.new_tag()), now)

    def _cancel(self, cancel: Request, tx: ServerTransaction, now: float) -> list[CoreAction]:
        target = self.layer.find_cancel_target(cancel)
        if target is None:
            return self._answer(tx, 481, now)  # §9.2: no transaction to cancel
        out = self._answer(tx, 200, now)
        if target.state != "Proceeding":
            return out  # already answered: the CANCEL changes nothing (§9.2)
        ended = make_response(target.request, 487, to_tag=target.to_tag or self.new_tag())
        return out + self.send_response(target, ended, now) + [Cancelled(target, ended)]

    def _ack_received(self, ack: Request, source: Any) -> list[CoreAction]:
        self.awaiting_ack.pop(ack_key(ack), None)
        return [AckReceived(ack, source)]

    # --- the application out -----------------------------------------------------------
    def send_request(self, request: Request, destination: Any, now: float,
                     transport: str | None = None) -> tuple[ClientTransaction, list[CoreAction]]:
        tx, actions = self.layer.send_request(request, destination, now, transport)
        return tx, self._carry(actions, now, transport)

    def send_response(self, tx: ServerTransaction, response: Response, now: float) -> list[CoreAction]:
        """Raises TransactionStateError when the transaction already has its final response
        (a 200 racing the 487 of a CANCEL)."""
        return self._carry(self.layer.send_response(tx, response, now), now, tx.transport)

    def send_2xx(self, tx: ServerTransaction, response: Response, now: float) -> list[CoreAction]:
        """An INVITE's 2xx: retransmitted until its ACK (over UDP), given up after 64*T1."""
        t1 = self.settings.t1
        give_up = now + 64 * t1
        first = give_up if tx.reliable else now + t1
        actions = self.send_response(tx, response, now)
        key = ack_key(response)
        self.awaiting_ack[key] = _Unacknowledged(tx, response, t1, first, give_up)
        self._retransmit_2xx.schedule(key)
        return actions

    def send_ack(self, ack: Request, destination: Any, now: float) -> list[CoreAction]:
        """The ACK for a 2xx, sent now and for each retransmission of that 2xx (§13.2.2.4)."""
        key = ack_key(ack)
        self._acks_sent.pop(key, None)  # re-inserted last: the table stays in expiry order
        self._acks_sent[key] = _SentAck(ack, destination, now + 64 * self.settings.t1)
        return [Send(ack, destination)]

    def transport_error(self, tx: ClientTransaction | ServerTransaction, now: float) -> list[CoreAction]:
        return self._carry(self.layer.transport_error(tx, now), now, tx.transport)

    def default_response(self, request: Request, to_tag: str | None, contact: str | None = None) -> Response:
        """What a UA with nothing more to say answers: OPTIONS 200 listing what the policy
        allows and accepts (§11.2), anything else 501 (§8.2.1)."""
        if request.method != "OPTIONS":
            return make_response(request, 501, to_tag=to_tag)
        headers = []
        if self.policy is not None:
            headers = [("Allow", ", ".join(self.policy.allowed())),
                       ("Accept", ", ".join(sorted(self.policy.content_types)))]
        return make_response(request, 200, to_tag=to_tag, contact=contact, extra_headers=headers)


# --- a small UA on the core -------------------------------------------------------------


@dataclass
class UaCall:
    """One call this UA placed or answered; `dialog` once a To tag is known."""

    invite: Request
    role: str  # "UAC" / "UAS"
    state: str = "calling"  # calling, ringing, confirmed, failed, ended
    dialog: Dialog | None = None
    final_status: int | None = None
    server_transaction: ServerTransaction | None = None
    source: Any = None
    answer_at: float | None = None
    offer: SessionDescription | None = None  # our initial offer (UAC)

    def receive_request(self, request: Request) -> int | None:
        assert self.dialog is not None
        return self.dialog.receive_request(request)


def destination_of(uri_text: str) -> tuple[str, int]:
    """host and port of a SIP URI (default 5060; 5061 for sips)."""
    text = uri_text.strip().strip("<>")
    scheme, _, rest = text.partition(":")
    hostport = rest.split("@", 1)[-1].split(";", 1)[0].split("?", 1)[0]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = tail.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    return host, int(port) if port else (5061 if scheme.lower() == "sips" else 5060)


def next_hop(request: Request) -> tuple[str, int]:
    """The first Route (loose routing, §12.2.1.1), else the Request-URI."""
    return destination_of(request.headers.get_all("Route")[0] if "Route" in request.headers else request.uri_text)


class UserAgent:
    def __init__(self, name: str, host: str, port: int = 5060, *, rng: random.Random,
                 transport: str = "UDP", settings: TimerSettings | None = None,
                 policy: UasPolicy = ENDPOINT, codecs: tuple[Codec, ...] = (PCMU, PCMA, TELEPHONE_EVENT),
                 media_port: int = 40000, ring_time: float = 1.0, log: Any = None) -> None:
        self.name, self.host, self.port = name, host, port
        self.rng = rng
        self.transport = transport
        self.core = UserAgentCore(rng, settings=settings, log=log, policy=policy, keeps_dialogs=True)
        self.settings = self.core.settings
        self.policy = policy
        self.codecs = list(codecs)
        self.media_port = media_port
        self.ring_time = ring_time
        self.log = log
        self.aor = f"sip:{name}@{host}"
        self.contact = f"<sip:{name}@{host}:{port};transport={transport.lower()}>"
        self.sent_by = f"{host}:{port}"
        self.calls: list[UaCall] = []
        self._client_calls: dict[ClientTransaction, UaCall] = {}
        self.bindings: dict[str, list[str]] = {}  # registrar: AOR -> contacts

    # --- helpers -----------------------------------------------------------------------
    def _event(self, name: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.info(name, **fields)

    def _sends(self, actions: list[CoreAction], now: float) -> list[Send]:
        """Carry out what the core says; keep only what goes on the wire."""
        out: list[Send] = []
        for action in actions:
            if isinstance(action, Send):
                out.append(action)
            elif isinstance(action, Deliver):
                out += self._on_response(action, now)
            elif isinstance(action, RequestReceived):
                out += self._on_request(action, now)
            elif isinstance(action, AckReceived):
                ack = action.ack
                known = dialog_key(ack) in self.core.dialogs
                self._event("sip.call.acked" if known else "sip.ack.stray", call_id=ack.call_id, cseq=ack.cseq.seq)
            elif isinstance(action, Cancelled):
                call = self._call_of(action.transaction)
                if call is not None:
                    call.state, call.answer_at = "ended", None
            elif isinstance(action, AckTimeout):
                call = self._call_of(action.transaction)
                if call is not None and call.state == "confirmed":
                    out += self.hang_up(call, now)
            elif isinstance(action, Timeout | TransportError):
                call = self._client_calls.get(action.transaction)  # type: ignore[call-overload]
                if call is not None and call.state in ("calling", "ringing"):
                    call.state, call.final_status = "failed", 408
                    self._event("sip.call.failed", call_id=call.invite.call_id, status=408)
            elif isinstance(action, Terminated):
                self._client_calls.pop(action.transaction, None)  # type: ignore[call-overload]
        return out

    def _call_of(self, tx: ServerTransaction) -> UaCall | None:
        return next((c for c in self.calls if c.server_transaction is tx), None)

    def _send_request(self, request: Request, now: float, call: UaCall | None = None) -> list[Send]:
        tx, actions = self.core.send_request(request, next_hop(request), now, self.transport)
        if call is not None:
            self._client_calls[tx] = call
        return self._sends(actions, now)

    def _respond(self, tx: ServerTransaction, response: Response, now: float) -> list[Send]:
        return self._sends(self.core.send_response(tx, response, now), now)

    def _register(self, call: UaCall) -> None:
        assert call.dialog is not None
        self.core.dialogs[call.dialog.id] = call

    def _forget(self, call: UaCall) -> None:
        if call.dialog is not None:
            self.core.dialogs.pop(call.dialog.id, None)

    def _sdp_body(self, sdp: SessionDescription) -> dict[str, Any]:
        return {"body": sdp.to_bytes(), "content_type": "application/sdp"}

    # --- time ------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadlines = [self.core.next_deadline()] + [c.answer_at for c in self.calls]
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> list[Send]:
        out = self._sends(self.core.handle_timer(now), now)
        for call in self.calls:
            if call.answer_at is not None and call.answer_at <= now:
                call.answer_at = None
                out += self._answer(call, now)
        return out

    # --- network in -------------------------------------------------------------------------
    def receive(self, data: bytes, source: Any, now: float) -> list[Send]:
        try:
            message = parse_message(data)
        except SipParseError as exc:
            # No transaction can hold what cannot be read: answer statelessly when the
            # bytes are a request with a Via, else drop them (§18.1.2).
            self._event("sip.message.unparseable", status=exc.status, reason=exc.reason)
            answer = answer_unparseable(data, exc)
            return [Send(answer, source)] if answer is not None else []
        return self.receive_message(message, source, now)

    def receive_message(self, message: Request | Response, source: Any, now: float) -> list[Send]:
        return self._sends(self.core.receive(message, source, now), now)

    def _on_request(self, received: RequestReceived, now: float) -> list[Send]:
        request, tx = received.request, received.transaction
        if request.method == "INVITE":
            if received.dialog is not None:
                return self._on_reinvite(received.dialog, request, tx, now)
            return self._on_invite(request, tx, received.source, now)
        if request.method == "BYE" and received.dialog is not None:
            return self._on_bye(received.dialog, request, tx, now)
        if request.method == "REGISTER":
            return self._on_register(request, tx, now)
        to_tag = request.to.tag or self.core.new_tag()
        return self._respond(tx, self.core.default_response(request, to_tag, self.contact), now)

    # --- UAS ------------------------------------------------------------------------------------
    def _on_invite(self, invite: Request, tx: ServerTransaction, source: Any, now: float) -> list[Send]:
        call = UaCall(invite, "UAS", state="ringing", server_transaction=tx, source=source)
        try:
            call.dialog = Dialog.from_uas_request(invite, self.core.new_tag(), local_contact=self.contact,
                                                  sent_by=self.sent_by, transport=self.transport)
        except DialogError as exc:
            return self._respond(tx, make_response(invite, 400, f"Bad Request ({exc})",
                                                   to_tag=self.core.new_tag()), now)
        if invite.body:
            try:
                call.dialog.remote_sdp = SessionDescription.parse(invite.body)
                call.dialog.local_sdp = make_answer(call.dialog.remote_sdp, self.host, self.media_port, self.codecs)
            except SdpError as exc:
                self._event("sip.call.sdp_refused", call_id=invite.call_id, why=str(exc))
                return self._respond(tx, make_response(invite, 488, to_tag=call.dialog.local_tag), now)
        self.calls.append(call)
        self._register(call)
        self._event("sip.dialog.state", call_id=invite.call_id, role="UAS", state="Early")
        call.answer_at = now + self.ring_time
        ringing = make_response(invite, 180, to_tag=call.dialog.local_tag, contact=self.contact)
        return self._respond(tx, ringing, now)

    def _answer(self, call: UaCall, now: float) -> list[Send]:
        """The ring time is over: answer with 200 and the SDP answer (or our offer)."""
        dialog, tx = call.dialog, call.server_transaction
        assert dialog is not None and tx is not None
        if tx.terminated or tx.state != "Proceeding":
            return []  # cancelled meanwhile
        if dialog.local_sdp is None:  # no offer in the INVITE: the 200 carries ours (§13.2.1)
            dialog.local_sdp = make_offer(self.host, self.media_port, self.codecs)
        ok = make_response(call.invite, 200, to_tag=dialog.local_tag, contact=self.contact,
                           **self._sdp_body(dialog.local_sdp))
        dialog.confirm()
        call.state = "confirmed"
        self._event("sip.dialog.state", call_id=call.invite.call_id, role="UAS", state="Confirmed")
        return self._sends(self.core.send_2xx(tx, ok, now), now)

    def _on_reinvite(self, call: UaCall, invite: Request, tx: ServerTransaction, now: float) -> list[Send]:
        dialog = call.dialog
        assert dialog is not None
        try:
            dialog.remote_sdp = SessionDescription.parse(invite.body)
            dialog.local_sdp = make_answer(dialog.remote_sdp, self.host, self.media_port, self.codecs,
                                           session_id=dialog.local_sdp.origin.session_id if dialog.local_sdp else "1")
        except SdpError as exc:
            self._event("sip.call.sdp_refused", call_id=invite.call_id, why=str(exc))
            return self._respond(tx, make_response(invite, 488), now)
        dialog.on_hold = dialog.remote_sdp.is_hold
        self._event("sip.call.media", call_id=invite.call_id, held=dialog.on_hold,
                    direction=dialog.local_sdp.direction_of(dialog.local_sdp.audio))
        ok = make_response(invite, 200, contact=self.contact, **self._sdp_body(dialog.local_sdp))
        return self._sends(self.core.send_2xx(tx, ok, now), now)

    def _on_bye(self, call: UaCall, bye: Request, tx: ServerTransaction, now: float) -> list[Send]:
        call.state = "ended"
        self._forget(call)
        self._event("sip.dialog.state", call_id=bye.call_id, role=call.role, state="Terminated")
        return self._respond(tx, make_response(bye, 200), now)

    def _on_register(self, register: Request, tx: ServerTransaction, now: float) -> list[Send]:
        # §10.3: a minimal registrar (check_request already refused REGISTER when we are not one).
        aor = str(register.to.uri)
        contacts = [str(c) for c in register.contacts]
        if contacts:
            self.bindings[aor] = contacts
        bound = [("Contact", c) for c in self.bindings.get(aor, [])]
        return self._respond(tx, make_response(register, 200, to_tag=self.core.new_tag(), extra_headers=bound), now)

    # --- UAC ------------------------------------------------------------------------------------
    def call(self, target_uri: str, now: float) -> tuple[UaCall, list[Send]]:
        """Place a call: INVITE with an SDP offer for our codecs (RFC 3264 §5)."""
        offer = make_offer(self.host, self.media_port, self.codecs, session_id=str(self.rng.randrange(10**9)))
        invite = make_request(
            "INVITE", target_uri,
            from_=f"<{self.aor}>;tag={new_tag(self.rng)}", to=f"<{target_uri}>",
            call_id=new_call_id(self.rng, self.host), cseq=1,
            via=f"SIP/2.0/{self.transport} {self.sent_by};branch={new_branch(self.rng)};rport",
            contact=self.contact, body=offer.to_bytes(), content_type="application/sdp",
        )
        call = UaCall(invite, "UAC", offer=offer)
        self.calls.append(call)
        return call, self._send_request(invite, now, call)

    def cancel(self, call: UaCall, now: float) -> list[Send]:
        """§9.1: CANCEL a call still ringing; its INVITE then ends with 487 (or a 2xx won the race)."""
        if call.role != "UAC" or call.state not in ("calling", "ringing"):
            raise DialogError(f"call {call.invite.call_id} is not an outgoing call being set up")
        return self._send_request(make_cancel(call.invite), now)

    def hold(self, call: UaCall, now: float) -> list[Send]:
        """Re-INVITE with the SDP on hold (RFC 3264 §8.4)."""
        dialog = self._confirmed(call)
        return self._send_request(dialog.create_hold(self.rng), now, call)

    def resume(self, call: UaCall, now: float) -> list[Send]:
        dialog = self._confirmed(call)
        return self._send_request(dialog.create_resume(self.rng), now, call)

    def hang_up(self, call: UaCall, now: float) -> list[Send]:
        dialog = self._confirmed(call)
        bye = dialog.create_request("BYE", self.rng)
        dialog.terminate()
        call.state = "ended"
        self._forget(call)
        self._event("sip.dialog.state", call_id=call.invite.call_id, role=call.role, state="Terminated")
        return self._send_request(bye, now, call)

    def _confirmed(self, call: UaCall) -> Dialog:
        if call.dialog is None or call.dialog.state != "Confirmed":
            raise DialogError(f"call {call.invite.call_id} has no confirmed dialog")
        return call.dialog

    def _on_response(self, action: Deliver, now: float) -> list[Send]:
        message = action.message
        call = self._client_calls.get(action.transaction)  # type: ignore[call-overload]
        if call is None or not isinstance(message, Response):
            return []
        method = message.cseq.method
        if method == "INVITE":
            return self._on_invite_response(call, action.transaction.request, message, now)
        if method == "BYE" and message.status >= 200:
            self._event("sip.call.ended", call_id=message.call_id, status=message.status)
        return []

    def _on_invite_response(self, call: UaCall, invite: Request, response: Response, now: float) -> list[Send]:
        status = response.status
        if status < 200:
            if response.to.tag is not None and call.dialog is None:
                call.dialog = Dialog.from_uac_response(invite, response, local_contact=self.contact,
                                                       sent_by=self.sent_by, transport=self.transport)
                call.dialog.local_sdp = call.offer
                call.state = "ringing"
                self._register(call)
                self._event("sip.dialog.state", call_id=invite.call_id, role="UAC", state="Early")
            return []
        if status >= 300:
            if invite is call.invite:
                call.state, call.final_status = "failed", status
                if call.dialog is not None:
                    call.dialog.terminate()
                    self._forget(call)
                self._event("sip.call.failed", call_id=invite.call_id, status=status)
            return []
        # 2xx: confirm (or create) the dialog, take the answer, ACK it (§13.2.2.4).
        if call.dialog is None or call.dialog.remote_tag != response.to.tag:
            self._forget(call)
            call.dialog = Dialog.from_uac_response(invite, response, local_contact=self.contact,
                                                   sent_by=self.sent_by, transport=self.transport)
            call.dialog.local_sdp = call.offer
            self._register(call)
        dialog = call.dialog
        if dialog.state == "Early":
            self._event("sip.dialog.state", call_id=invite.call_id, role="UAC", state="Confirmed")
        dialog.receive_response(response)
        call.state, call.final_status = "confirmed", status
        if response.body:
            try:
                dialog.remote_sdp = SessionDescription.parse(response.body)
            except SdpError as exc:
                self._event("sip.call.sdp_refused", call_id=invite.call_id, why=str(exc))
        ack = dialog.create_ack(invite.cseq.seq, self.rng)
        return self._sends(self.core.send_ack(ack, next_hop(ack), now), now)
