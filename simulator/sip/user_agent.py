"""A sans-I/O SIP user agent: transactions + dialogs + SDP + the UAS checks, as one TU.

It is the smallest complete UA the layers below allow, used by `make demo` and by the
conformance tests: it places and answers calls (INVITE/180/200/ACK), re-INVITEs for
hold, hangs up with BYE, answers OPTIONS (and REGISTER when it plays registrar), and
refuses what RFC 3261 §8.2 says it must refuse. Like the layers under it, it reads no
clock and owns no socket:

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
from dataclasses import dataclass, field
from typing import Any

from simulator.sip import Request, Response, SipParseError, parse_message
from simulator.sip.builders import make_cancel, make_request, make_response, new_branch, new_call_id, new_tag
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
    Deliver,
    NoMatch,
    Send,
    ServerTransaction,
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


@dataclass
class Call:
    """One call this UA placed or answered; `dialog` once a To tag is known."""

    invite: Request
    role: str  # "UAC" / "UAS"
    state: str = "calling"  # calling, ringing, confirmed, failed, ended
    dialog: Dialog | None = None
    final_status: int | None = None
    server_transaction: ServerTransaction | None = None
    source: Any = None
    answer_at: float | None = None
    acks: dict[int, Request] = field(default_factory=dict)  # CSeq -> ACK sent for its 2xx
    offer: SessionDescription | None = None  # our initial offer (UAC)


@dataclass
class _PendingOk:
    """§13.3.1.4: a 2xx the UAS core retransmits until the ACK arrives."""

    call: Call
    response: Response
    transaction: ServerTransaction
    interval: float
    next_at: float
    give_up_at: float


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


class UserAgent:
    def __init__(self, name: str, host: str, port: int = 5060, *, rng: random.Random,
                 transport: str = "UDP", settings: TimerSettings | None = None,
                 policy: UasPolicy = ENDPOINT, codecs: tuple[Codec, ...] = (PCMU, PCMA, TELEPHONE_EVENT),
                 media_port: int = 40000, ring_time: float = 1.0, log: Any = None) -> None:
        self.name, self.host, self.port = name, host, port
        self.rng = rng
        self.transport = transport
        self.settings = settings or TimerSettings()
        self.policy = policy
        self.codecs = list(codecs)
        self.media_port = media_port
        self.ring_time = ring_time
        self.log = log
        self.layer = TransactionLayer(self.settings, log)
        self.aor = f"sip:{name}@{host}"
        self.contact = f"<sip:{name}@{host}:{port};transport={transport.lower()}>"
        self.sent_by = f"{host}:{port}"
        self.calls: list[Call] = []
        self._client_calls: dict[int, Call] = {}  # id(client transaction) -> call
        self._pending_ok: list[_PendingOk] = []
        self.bindings: dict[str, list[str]] = {}  # registrar: AOR -> contacts

    # --- helpers -----------------------------------------------------------------------
    def _event(self, name: str, **fields: Any) -> None:
        if self.log is not None:
            self.log.info(name, **fields)

    def _sends(self, actions: list, now: float) -> list[Send]:
        """Carry out what the transaction layer says; keep only what goes on the wire."""
        out: list[Send] = []
        for action in actions:
            if isinstance(action, Send):
                out.append(action)
            elif isinstance(action, Deliver):
                out += self._on_delivered(action, now)
            elif isinstance(action, NoMatch):
                out += self._on_no_match(action.message, action.source, now)
            elif isinstance(action, Timeout | TransportError):
                call = self._client_calls.get(id(action.transaction))
                if call is not None and call.state in ("calling", "ringing"):
                    call.state, call.final_status = "failed", 408
                    self._event("sip.call.failed", call_id=call.invite.call_id, status=408)
        return out

    def _send_request(self, request: Request, now: float, call: Call | None = None) -> list[Send]:
        destination = destination_of(request.headers.get_all("Route")[0] if "Route" in request.headers
                                     else request.uri_text)
        tx, actions = self.layer.send_request(request, destination, now, self.transport)
        if call is not None:
            self._client_calls[id(tx)] = call
        return self._sends(actions, now)

    def _respond(self, tx: ServerTransaction, response: Response, now: float) -> list[Send]:
        return self._sends(self.layer.send_response(tx, response, now), now)

    def _dialog_for(self, message: Request | Response) -> Call | None:
        for call in self.calls:
            if call.dialog is not None and call.dialog.matches(message):
                return call
        return None

    def _sdp_body(self, sdp: SessionDescription) -> dict[str, Any]:
        return {"body": sdp.to_bytes(), "content_type": "application/sdp"}

    # --- time ------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadlines = [self.layer.next_deadline()]
        deadlines += [c.answer_at for c in self.calls]
        deadlines += [p.next_at for p in self._pending_ok]
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> list[Send]:
        out = self._sends(self.layer.handle_timer(now), now)
        for call in self.calls:
            if call.answer_at is not None and call.answer_at <= now:
                call.answer_at = None
                out += self._answer(call, now)
        for pending in list(self._pending_ok):
            if pending.next_at > now:
                continue
            if now >= pending.give_up_at:
                # §13.3.1.4: no ACK within 64*T1 — confirm, then end the dialog with BYE.
                self._pending_ok.remove(pending)
                self._event("sip.call.no_ack", call_id=pending.call.invite.call_id)
                out += self.hang_up(pending.call, now)
                continue
            pending.interval = min(pending.interval * 2, self.settings.t2)
            pending.next_at = min(now + pending.interval, pending.give_up_at)
            out += self._respond(pending.transaction, pending.response, now)
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
        return self._sends(self.layer.receive(message, source, now), now)

    def _on_no_match(self, message: Request | Response, source: Any, now: float) -> list[Send]:
        if isinstance(message, Response):
            # A 2xx retransmitted after the INVITE transaction ended: ACK it again (§13.2.2.4).
            call = self._dialog_for(message)
            if call is not None and message.cseq.method == "INVITE" and 200 <= message.status < 300:
                ack = call.acks.get(message.cseq.seq)
                if ack is not None:
                    return [Send(ack, destination_of(ack.uri_text))]
            self._event("sip.response.stray", status=message.status)
            return []
        if message.method == "ACK":
            return self._on_ack(message)
        try:
            if message.top_via is None or message.cseq is None:
                self._event("sip.request.unanswerable", why="no Via or CSeq to answer with")
                return []
        except SipParseError as exc:
            self._event("sip.request.unanswerable", why=exc.reason)
            return []
        rejection = check_request(message, self.policy)
        if rejection is not None:
            tx, actions = self.layer.create_server(message, source, now, send_trying=False)
            self._event("sip.request.rejected", method=message.method, status=rejection.status,
                        why=rejection.why)
            return self._sends(actions, now) + self._respond(
                tx, rejection_response(message, rejection, new_tag(self.rng)), now)
        tx, actions = self.layer.create_server(message, source, now)
        out = self._sends(actions, now)
        handler = {
            "INVITE": self._on_invite, "BYE": self._on_bye, "CANCEL": self._on_cancel,
            "OPTIONS": self._on_options, "REGISTER": self._on_register,
        }.get(message.method, self._on_other)
        return out + handler(message, tx, source, now)

    # --- UAS ------------------------------------------------------------------------------------
    def _on_invite(self, invite: Request, tx: ServerTransaction, source: Any, now: float) -> list[Send]:
        if invite.to.tag is not None:
            return self._on_reinvite(invite, tx, now)
        call = Call(invite, "UAS", state="ringing", server_transaction=tx, source=source)
        try:
            call.dialog = Dialog.from_uas_request(invite, new_tag(self.rng), local_contact=self.contact,
                                                  sent_by=self.sent_by, transport=self.transport)
        except DialogError as exc:
            return self._respond(tx, make_response(invite, 400, f"Bad Request ({exc})", to_tag=new_tag(self.rng)), now)
        if invite.body:
            try:
                call.dialog.remote_sdp = SessionDescription.parse(invite.body)
                call.dialog.local_sdp = make_answer(call.dialog.remote_sdp, self.host, self.media_port, self.codecs)
            except SdpError as exc:
                self._event("sip.call.sdp_refused", call_id=invite.call_id, why=str(exc))
                return self._respond(tx, make_response(invite, 488, to_tag=call.dialog.local_tag), now)
        self.calls.append(call)
        self._event("sip.dialog.state", call_id=invite.call_id, role="UAS", state="Early")
        call.answer_at = now + self.ring_time
        ringing = make_response(invite, 180, to_tag=call.dialog.local_tag, contact=self.contact)
        return self._respond(tx, ringing, now)

    def _answer(self, call: Call, now: float) -> list[Send]:
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
        return self._send_ok(call, tx, ok, now)

    def _send_ok(self, call: Call, tx: ServerTransaction, ok: Response, now: float) -> list[Send]:
        t1 = self.settings.t1
        # §13.3.1.4: over UDP the core retransmits the 2xx (T1 doubling to T2) until the ACK;
        # over TCP/TLS it only waits for the ACK, giving up after 64*T1 either way.
        first = now + t1 if self.transport == "UDP" else now + 64 * t1
        self._pending_ok.append(_PendingOk(call, ok, tx, t1, first, now + 64 * t1))
        return self._respond(tx, ok, now)

    def _on_reinvite(self, invite: Request, tx: ServerTransaction, now: float) -> list[Send]:
        call = self._dialog_for(invite)
        if call is None or call.dialog is None:
            return self._respond(tx, make_response(invite, 481), now)
        dialog = call.dialog
        status = dialog.receive_request(invite)
        if status is not None:
            return self._respond(tx, make_response(invite, status), now)
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
        return self._send_ok(call, tx, ok, now)

    def _on_ack(self, ack: Request) -> list[Send]:
        call = self._dialog_for(ack)
        if call is None:
            self._event("sip.ack.stray", call_id=ack.headers.get("Call-ID"))
            return []
        for pending in list(self._pending_ok):
            if pending.call is call and pending.response.cseq.seq == ack.cseq.seq:
                self._pending_ok.remove(pending)
        self._event("sip.call.acked", call_id=ack.call_id, cseq=ack.cseq.seq)
        return []

    def _on_bye(self, bye: Request, tx: ServerTransaction, source: Any, now: float) -> list[Send]:
        call = self._dialog_for(bye)
        if call is None or call.dialog is None:
            return self._respond(tx, make_response(bye, 481), now)  # §15.1.2
        status = call.dialog.receive_request(bye)
        if status is not None:
            return self._respond(tx, make_response(bye, status), now)
        call.state = "ended"
        self._pending_ok = [p for p in self._pending_ok if p.call is not call]
        self._event("sip.dialog.state", call_id=bye.call_id, role=call.role, state="Terminated")
        return self._respond(tx, make_response(bye, 200), now)

    def _on_cancel(self, cancel: Request, tx: ServerTransaction, source: Any, now: float) -> list[Send]:
        target = self.layer.find_cancel_target(cancel)
        if target is None:
            return self._respond(tx, make_response(cancel, 481), now)  # §9.2
        out = self._respond(tx, make_response(cancel, 200, to_tag=new_tag(self.rng)), now)
        if target.state == "Proceeding":
            call = next((c for c in self.calls if c.server_transaction is target), None)
            tag = call.dialog.local_tag if call and call.dialog else new_tag(self.rng)
            if call is not None:
                call.state, call.answer_at = "ended", None
            out += self._respond(target, make_response(target.request, 487, to_tag=tag), now)
        return out

    def _on_options(self, options: Request, tx: ServerTransaction, source: Any, now: float) -> list[Send]:
        headers = [("Allow", ", ".join(self.policy.allowed())), ("Accept", "application/sdp")]
        return self._respond(tx, make_response(options, 200, to_tag=new_tag(self.rng), contact=self.contact,
                                               extra_headers=headers), now)

    def _on_register(self, register: Request, tx: ServerTransaction, source: Any, now: float) -> list[Send]:
        # §10.3: a minimal registrar (check_request already refused REGISTER when we are not one).
        aor = str(register.to.uri)
        contacts = [str(c) for c in register.contacts]
        if contacts:
            self.bindings[aor] = contacts
        bound = [("Contact", c) for c in self.bindings.get(aor, [])]
        return self._respond(tx, make_response(register, 200, to_tag=new_tag(self.rng), extra_headers=bound), now)

    def _on_other(self, request: Request, tx: ServerTransaction, source: Any, now: float) -> list[Send]:
        return self._respond(tx, make_response(request, 200, to_tag=new_tag(self.rng)), now)

    # --- UAC ------------------------------------------------------------------------------------
    def call(self, target_uri: str, now: float) -> tuple[Call, list[Send]]:
        """Place a call: INVITE with an SDP offer for our codecs (RFC 3264 §5)."""
        offer = make_offer(self.host, self.media_port, self.codecs, session_id=str(self.rng.randrange(10**9)))
        invite = make_request(
            "INVITE", target_uri,
            from_=f"<{self.aor}>;tag={new_tag(self.rng)}", to=f"<{target_uri}>",
            call_id=new_call_id(self.rng, self.host), cseq=1,
            via=f"SIP/2.0/{self.transport} {self.sent_by};branch={new_branch(self.rng)};rport",
            contact=self.contact, body=offer.to_bytes(), content_type="application/sdp",
        )
        call = Call(invite, "UAC", offer=offer)
        self.calls.append(call)
        return call, self._send_request(invite, now, call)

    def cancel(self, call: Call, now: float) -> list[Send]:
        """§9.1: CANCEL a call still ringing; its INVITE then ends with 487 (or a 2xx won the race)."""
        if call.role != "UAC" or call.state not in ("calling", "ringing"):
            raise DialogError(f"call {call.invite.call_id} is not an outgoing call being set up")
        return self._send_request(make_cancel(call.invite), now)

    def hold(self, call: Call, now: float) -> list[Send]:
        """Re-INVITE with the SDP on hold (RFC 3264 §8.4)."""
        dialog = self._confirmed(call)
        return self._send_request(dialog.create_hold(self.rng), now, call)

    def resume(self, call: Call, now: float) -> list[Send]:
        dialog = self._confirmed(call)
        return self._send_request(dialog.create_resume(self.rng), now, call)

    def hang_up(self, call: Call, now: float) -> list[Send]:
        dialog = self._confirmed(call)
        bye = dialog.create_request("BYE", self.rng)
        dialog.terminate()
        call.state = "ended"
        self._event("sip.dialog.state", call_id=call.invite.call_id, role=call.role, state="Terminated")
        return self._send_request(bye, now, call)

    def _confirmed(self, call: Call) -> Dialog:
        if call.dialog is None or call.dialog.state != "Confirmed":
            raise DialogError(f"call {call.invite.call_id} has no confirmed dialog")
        return call.dialog

    def _on_delivered(self, action: Deliver, now: float) -> list[Send]:
        message = action.message
        if isinstance(message, Request):  # an ACK for our 2xx inside the Accepted state
            return self._on_ack(message)
        call = self._client_calls.get(id(action.transaction))
        if call is None:
            return []
        method = message.cseq.method
        if method == "INVITE":
            return self._on_invite_response(call, action.transaction.request, message, now)
        if method == "BYE" and message.status >= 200:
            self._event("sip.call.ended", call_id=message.call_id, status=message.status)
        return []

    def _on_invite_response(self, call: Call, invite: Request, response: Response, now: float) -> list[Send]:
        status = response.status
        if status < 200:
            if response.to.tag is not None and call.dialog is None:
                call.dialog = Dialog.from_uac_response(invite, response, local_contact=self.contact,
                                                       sent_by=self.sent_by, transport=self.transport)
                call.dialog.local_sdp = call.offer
                call.state = "ringing"
                self._event("sip.dialog.state", call_id=invite.call_id, role="UAC", state="Early")
            return []
        if status >= 300:
            if invite is call.invite:
                call.state, call.final_status = "failed", status
                if call.dialog is not None:
                    call.dialog.terminate()
                self._event("sip.call.failed", call_id=invite.call_id, status=status)
            return []
        # 2xx: confirm (or create) the dialog, take the answer, ACK it — every time (§13.2.2.4).
        if call.dialog is None or call.dialog.remote_tag != response.to.tag:
            call.dialog = Dialog.from_uac_response(invite, response, local_contact=self.contact,
                                                   sent_by=self.sent_by, transport=self.transport)
            call.dialog.local_sdp = call.offer
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
        seq = invite.cseq.seq
        if seq not in call.acks:
            call.acks[seq] = dialog.create_ack(seq, self.rng)
        ack = call.acks[seq]
        uri = ack.headers.get_all("Route")[0] if "Route" in ack.headers else ack.uri_text
        return [Send(ack, destination_of(uri))]
