"""RFC 3261 §12 dialogs: creation, route sets, CSeq bookkeeping, in-dialog requests.

Theory of operation
-------------------
A dialog is the peer-to-peer relationship an INVITE sets up. It is identified by
Call-ID, local tag and remote tag (§12), and remembers what every later request in
it needs: the route set (from Record-Route; reversed at the UAC, §12.1.2), the remote
target (the peer's Contact, refreshed by re-INVITE and its 2xx, §12.2), the local and
remote CSeq numbers, and the session descriptions last exchanged, so a hold is one
call (`create_hold`).

- `Dialog.from_uac_response(invite, response, ...)`: a 1xx with a To tag makes an
  Early dialog, a 2xx a Confirmed one (§12.1.2, §13.2.2.4).
- `Dialog.from_uas_request(invite, local_tag, ...)`: the UAS side, created when it
  sends the 1xx/2xx (§12.1.1); `confirm()` when the 2xx goes out.
- `create_request(method, rng)` builds BYE, re-INVITE ... with the next local CSeq
  (§12.2.1.1); `create_ack(invite_cseq, rng)` the ACK for a 2xx, which keeps the
  INVITE's CSeq number and is built by the UAC core, not the transaction (§13.2.2.4).
- `receive_request(request)` checks the remote CSeq (§12.2.2: lower → 500) and
  refreshes the target; `receive_response(response)` does the UAC side.

Nothing here sends anything: the caller hands requests to the transaction layer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from simulator.sip import Request, Response
from simulator.sip.builders import make_request, new_branch
from simulator.sip.sdp import SessionDescription, hold, resume


class DialogError(Exception):
    """A message that cannot create or belong to a dialog (no tag, wrong Call-ID ...)."""


def _without_tag(header_value: str) -> str:
    """The From/To value with its tag parameter removed (the dialog keeps the tag apart).

    Header parameters follow the closing '>' of a name-addr, or the URI itself in the
    addr-spec form (where every ';' belongs to the header, RFC 3261 §20.10)."""
    if ">" in header_value:
        address, _, params = header_value.rpartition(">")
        address += ">"
    else:
        address, _, params = header_value.partition(";")
    kept = [p.strip() for p in params.split(";") if p.strip() and not p.strip().lower().startswith("tag=")]
    return address.strip() + "".join(";" + p for p in kept)


def _with_tag(header_value: str, tag: str | None) -> str:
    return f"{header_value};tag={tag}" if tag else header_value


@dataclass
class Dialog:
    role: str  # "UAC" or "UAS"
    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: str  # our From (UAC) / To (UAS) header value, without tag
    remote_uri: str
    remote_target: str  # URI from the peer's Contact
    route_set: list[str]  # Route header values, in the order requests carry them
    local_seq: int
    remote_seq: int | None
    local_contact: str
    transport: str = "UDP"
    sent_by: str = "127.0.0.1:5060"
    secure: bool = False
    state: str = "Early"  # Early, Confirmed, Terminated (§12)
    local_sdp: SessionDescription | None = None
    remote_sdp: SessionDescription | None = None
    on_hold: bool = False
    _lr: list[bool] = field(default_factory=list, repr=False)

    @property
    def id(self) -> tuple[str, str, str | None]:
        """§12: Call-ID, local tag, remote tag."""
        return (self.call_id, self.local_tag, self.remote_tag)

    # --- creation --------------------------------------------------------------------
    @classmethod
    def from_uac_response(cls, invite: Request, response: Response, *, local_contact: str,
                          sent_by: str, transport: str = "UDP") -> Dialog:
        """§12.1.2: the UAC's dialog from a 1xx carrying a To tag (Early) or a 2xx (Confirmed)."""
        if not 100 < response.status < 300:
            raise DialogError(f"a {response.status} response does not create a dialog")
        remote_tag = response.to.tag
        if remote_tag is None:
            raise DialogError("a response without a To tag does not create a dialog (§12.1.2)")
        contacts = response.contacts
        if not contacts and response.status >= 200:
            raise DialogError("a 2xx to INVITE must carry a Contact (§12.1.1)")
        dialog = cls(
            role="UAC",
            call_id=invite.call_id,
            local_tag=invite.from_.tag or "",
            remote_tag=remote_tag,
            local_uri=_without_tag(invite.headers.get("From") or ""),
            remote_uri=_without_tag(response.headers.get("To") or ""),
            remote_target=str(contacts[0].uri) if contacts else invite.uri_text,
            route_set=[],
            local_seq=invite.cseq.seq,
            remote_seq=None,  # §12.1.2: empty until the peer sends a request
            local_contact=local_contact,
            transport=transport,
            sent_by=sent_by,
            secure=invite.uri_text.lower().startswith("sips:"),
        )
        dialog._set_route_set(list(reversed(response.record_routes)))
        if response.status >= 200:
            dialog.state = "Confirmed"
        return dialog

    @classmethod
    def from_uas_request(cls, invite: Request, local_tag: str, *, local_contact: str,
                         sent_by: str, transport: str = "UDP") -> Dialog:
        """§12.1.1: the UAS's dialog, Early until `confirm()` (when its 2xx is sent).
        An RFC 2543 peer sends no From tag: the remote tag is then None (§12.1.1)."""
        contacts = invite.contacts
        # §8.1.1.8 requires Contact, but RFC 2543 made it optional (RFC 4475 §3.4.1
        # inv2543): such a peer is reached at its From address, as RFC 2543 §6.13 did.
        remote_target = str(contacts[0].uri) if contacts else str(invite.from_.uri)
        dialog = cls(
            role="UAS",
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_.tag,
            local_uri=_without_tag(invite.headers.get("To") or ""),
            remote_uri=_without_tag(invite.headers.get("From") or ""),
            remote_target=remote_target,
            route_set=[],
            local_seq=0,  # §12.1.1: empty; the first request we send picks a number
            remote_seq=invite.cseq.seq,
            local_contact=local_contact,
            transport=transport,
            sent_by=sent_by,
            secure=invite.uri_text.lower().startswith("sips:"),
        )
        dialog._set_route_set(invite.record_routes)
        return dialog

    def _set_route_set(self, record_routes) -> None:
        self.route_set = [str(addr) for addr in record_routes]
        self._lr = ["lr" in {k.lower() for k in addr.uri.params} for addr in record_routes]

    def confirm(self) -> None:
        self.state = "Confirmed"

    def terminate(self) -> None:
        self.state = "Terminated"

    def matches(self, message: Request | Response) -> bool:
        """Does this in-dialog message belong here? (§12.2.2 request; §12.2.1.2 response)."""
        if message.call_id != self.call_id:
            return False
        if isinstance(message, Request):
            return message.to.tag == self.local_tag and message.from_.tag == self.remote_tag
        return message.from_.tag == self.local_tag and message.to.tag == self.remote_tag

    # --- UAC side updates ------------------------------------------------------------------
    def receive_response(self, response: Response) -> None:
        """§12.1.2/§12.2.1.2: a 2xx confirms an early dialog and refreshes the target."""
        if response.cseq.method in ("INVITE", "UPDATE") and 200 <= response.status < 300:
            if response.contacts:
                self.remote_target = str(response.contacts[0].uri)  # target refresh
            if self.state == "Early" and self.role == "UAC":
                # §13.2.2.4: the route set is recomputed from the 2xx.
                self._set_route_set(list(reversed(response.record_routes)))
                self.state = "Confirmed"
        if response.cseq.method == "INVITE" and response.status in (408, 481):
            self.state = "Terminated"  # §12.2.1.2

    # --- UAS side: requests from the peer --------------------------------------------------
    def receive_request(self, request: Request) -> int | None:
        """§12.2.2: a lower CSeq than the last one is out of order → 500; returns the status
        to reject with, or None when the request is accepted (remote CSeq and target updated)."""
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq < self.remote_seq:
                return 500
            self.remote_seq = seq
        if request.method in ("INVITE", "UPDATE") and request.contacts:
            self.remote_target = str(request.contacts[0].uri)  # §12.2.2 target refresh
        if request.method == "BYE":
            self.state = "Terminated"
        return None

    # --- building requests ---------------------------------------------------------------------
    def _via(self, rng: random.Random) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by};branch={new_branch(rng)};rport"

    def _uri_and_routes(self) -> tuple[str, list[str]]:
        """§12.2.1.1: loose routing keeps the target as Request-URI; a strict first hop
        (no ;lr) takes the Request-URI and the remote target goes last in Route."""
        if not self.route_set or self._lr[0]:
            return self.remote_target, list(self.route_set)
        first = self.route_set[0]
        uri = first[first.index("<") + 1:first.index(">")] if "<" in first else first
        return uri, self.route_set[1:] + [f"<{self.remote_target}>"]

    def create_request(self, method: str, rng: random.Random, *, body: bytes = b"",
                       content_type: str | None = None,
                       extra_headers: list[tuple[str, str]] = ()) -> Request:  # type: ignore[assignment]
        """A request within the dialog with the next local CSeq (§12.2.1.1)."""
        if self.state == "Terminated":
            raise DialogError(f"dialog {self.id} is terminated")
        if method in ("ACK", "CANCEL"):
            raise DialogError(f"{method} keeps its INVITE's CSeq: use create_ack or build the CANCEL from the INVITE")
        self.local_seq += 1
        uri, routes = self._uri_and_routes()
        return make_request(
            method, uri,
            from_=_with_tag(self.local_uri, self.local_tag),
            to=_with_tag(self.remote_uri, self.remote_tag),
            call_id=self.call_id, cseq=self.local_seq, via=self._via(rng),
            contact=self.local_contact if method in ("INVITE", "UPDATE", "SUBSCRIBE") else None,
            routes=routes, extra_headers=list(extra_headers), body=body, content_type=content_type,
        )

    def create_ack(self, invite_seq: int, rng: random.Random, *, body: bytes = b"",
                   content_type: str | None = None) -> Request:
        """§13.2.2.4: the ACK for a 2xx: same CSeq number as the INVITE, a new branch, the
        dialog's route set and remote target."""
        uri, routes = self._uri_and_routes()
        return make_request(
            "ACK", uri,
            from_=_with_tag(self.local_uri, self.local_tag),
            to=_with_tag(self.remote_uri, self.remote_tag),
            call_id=self.call_id, cseq=invite_seq, via=self._via(rng),
            routes=routes, body=body, content_type=content_type,
        )

    def create_reinvite(self, sdp: SessionDescription, rng: random.Random) -> Request:
        """A re-INVITE offering `sdp` (remembered as the local description)."""
        self.local_sdp = sdp
        return self.create_request("INVITE", rng, body=sdp.to_bytes(), content_type="application/sdp")

    def create_hold(self, rng: random.Random) -> Request:
        """RFC 3264 §8.4 hold: re-offer the last local SDP as sendonly (inactive if it was recvonly)."""
        if self.local_sdp is None:
            raise DialogError("no session description to put on hold")
        self.on_hold = True
        return self.create_reinvite(hold(self.local_sdp), rng)

    def create_resume(self, rng: random.Random) -> Request:
        if self.local_sdp is None:
            raise DialogError("no session description to resume")
        self.on_hold = False
        return self.create_reinvite(resume(self.local_sdp), rng)
