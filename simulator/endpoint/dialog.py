"""SipDialog: a `simulator.sip.dialog.Dialog` bound to the endpoint that carries it.

The sans-I/O Dialog knows the route set, tags, CSeq numbers and targets (RFC 3261 §12); this
class does what needs a network and a clock:

    # UAC: send the INVITE, ACK the 2xx (again for every retransmission of it, §13.2.2.4)
    response, dialog = await SipDialog.invite(ep, invite, target, on_provisional=cb)
    # or, keeping the ClientTx to cancel it:  tx = ep.request(invite, target)
    #                                         dialog = SipDialog.from_response(ep, tx, await tx.final())
    # UAS: answer 2xx; the core retransmits it over UDP (T1, 2T1 ... T2) until the ACK comes,
    # and after 64*T1 without one the dialog is ended with a BYE (§13.3.1.4)
    dialog = SipDialog.accept(incoming, body=sdp, content_type="application/sdp")
    acked = await dialog.acked()            # the ACK, or None after 64*T1
    # either side: in-dialog requests through the route set (§12.2.1.1)
    response = await dialog.request("BYE")  # or "INVITE" (re-INVITE; its 2xx is ACKed), "REFER" ...

Next hop of an in-dialog request: the first Route (loose routing) or the remote target, as
a URI (host, port, transport). It goes over the connection the dialog was set up on when that
connection is still open and leads to the same address — or when the URI's host is not a
name on the network (a Teams client's Contact): Teams and Direct Routing keep a dialog on
the connection that created it. Requests the peer sends within the dialog reach
`ep.on_request` with `incoming.dialog` set (CSeq checked first: a lower one is answered 500,
§12.2.2); a BYE terminates the dialog and unregisters it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from typing import Any

from simulator.endpoint.endpoint import ClientTx, Incoming, SipEndpoint
from simulator.endpoint.transport import Connection
from simulator.endpoint.types import Target
from simulator.sip import Request, Response
from simulator.sip.dialog import Dialog, DialogError


class SipDialog:
    def __init__(self, endpoint: SipEndpoint, dialog: Dialog, *, connection: Connection | None,
                 target: Target) -> None:
        self.endpoint = endpoint
        self.dialog = dialog
        self.connection = connection
        self.target = target  # where the dialog-creating request went / came from
        self._acked: asyncio.Future[Request | None] | None = None
        endpoint.dialogs[dialog.id] = self

    def __repr__(self) -> str:
        return f"<SipDialog {self.dialog.role} {self.dialog.call_id} {self.dialog.state}>"

    @property
    def call_id(self) -> str:
        return self.dialog.call_id

    @property
    def terminated(self) -> bool:
        return self.dialog.state == "Terminated"

    # -- UAC ---------------------------------------------------------------------------------
    @classmethod
    async def invite(cls, endpoint: SipEndpoint, invite: Request, target: Target, *,
                     on_provisional: Any = None) -> tuple[Response, SipDialog | None]:
        """Send `invite`; the final response, and the dialog when it is a 2xx (already ACKed)."""
        tx = endpoint.request(invite, target, on_provisional)
        response = await tx.final()
        return response, cls.from_response(endpoint, tx, response)

    @classmethod
    def from_response(cls, endpoint: SipEndpoint, tx: ClientTx, response: Response) -> SipDialog | None:
        """The UAC's dialog from the INVITE's final response: a 2xx is ACKed here; None otherwise
        (the INVITE transaction ACKs a non-2xx itself, §17.1.1.3)."""
        if not 200 <= response.status < 300:
            return None
        hop = tx.hop
        assert hop is not None
        dialog = Dialog.from_uac_response(tx.request, response, local_contact=_contact(tx.request),
                                          sent_by=endpoint.host, transport=hop.transport.upper())
        self = cls(endpoint, dialog, connection=hop.connection, target=tx.target)
        self._ack(tx.request.cseq.seq)
        return self

    def _ack(self, invite_seq: int) -> None:
        ack = self.dialog.create_ack(invite_seq, self.endpoint.rng)
        self.endpoint.send_ack(ack, self._next_hop())

    # -- UAS ---------------------------------------------------------------------------------
    @classmethod
    def accept(cls, incoming: Incoming, status: int = 200, *, body: bytes = b"", content_type: str | None = None,
               contact: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> SipDialog:
        """Answer an INVITE with a 2xx and make the UAS dialog (§12.1.1). DialogError when the
        INVITE already has its final response (e.g. the 487 of a CANCEL that came first)."""
        if incoming.answered:
            raise DialogError(f"INVITE {incoming.request.call_id} was already answered "
                              f"{incoming.final.status if incoming.final else ''}"
                              f"{' (cancelled)' if incoming.cancelled else ''}")
        endpoint = incoming.endpoint
        source = incoming.source
        contact = contact or endpoint.contact(source.transport, toward=source.address)
        dialog = Dialog.from_uas_request(incoming.request, incoming.to_tag, local_contact=contact,
                                         sent_by=endpoint.host, transport=source.transport.upper())
        target = Target(source.address, source.port, source.transport, connection=source.connection)
        self = cls(endpoint, dialog, connection=source.connection, target=target)
        self._acked = endpoint.loop.create_future()
        endpoint.ack_waiters[(dialog.call_id, incoming.request.cseq.seq)] = self._ack_received
        response = incoming.response(status, headers=headers, body=body, content_type=content_type, contact=contact)
        dialog.confirm()
        incoming.send(response, until_acked=True)  # the core retransmits it over UDP (§13.3.1.4)
        return self

    def _ack_received(self, ack: Request | None) -> None:
        """The ACK for our 2xx, or None: none came within 64*T1."""
        if self._acked is not None and not self._acked.done():
            self._acked.set_result(ack)
        if ack is None and not self.terminated:
            self.send("BYE")  # §13.3.1.4: confirm, then end the dialog with BYE

    async def acked(self) -> Request | None:
        """The ACK for our 2xx, or None when none came within 64*T1 (UAS only)."""
        if self._acked is None:
            raise DialogError("only the UAS waits for an ACK")
        return await asyncio.shield(self._acked)

    # -- in-dialog requests ----------------------------------------------------------------
    def send(self, method: str, *, body: bytes = b"", content_type: str | None = None,
             headers: Iterable[tuple[str, str]] = ()) -> ClientTx:
        """Build and send a request within the dialog; a BYE ends the dialog at once (§15.1.1)."""
        request = self.dialog.create_request(method, self.endpoint.rng, body=body, content_type=content_type,
                                             extra_headers=list(headers))
        tx = self.endpoint.request(request, self._next_hop())
        if method == "BYE":
            self._terminate()
        return tx

    async def request(self, method: str, **kw: Any) -> Response:
        """`send` and wait for the final response; a re-INVITE's 2xx is ACKed."""
        tx = self.send(method, **kw)
        response = await tx.final()
        if method == "INVITE" and 200 <= response.status < 300:
            self.dialog.receive_response(response)
            self._ack(tx.request.cseq.seq)
        elif method != "BYE":
            self.dialog.receive_response(response)
        return response

    def receive_request(self, request: Request) -> int | None:
        """Called by the endpoint for a request within this dialog: the status to refuse it
        with (500 for an out-of-order CSeq, §12.2.2), or None."""
        refusal = self.dialog.receive_request(request)
        if refusal is None and request.method == "BYE":
            self._terminate()
        return refusal

    def _terminate(self) -> None:
        self.dialog.terminate()
        self.endpoint.dialogs.pop(self.dialog.id, None)

    def _next_hop(self) -> Target:
        dialog = self.dialog
        uri = dialog.route_set[0] if dialog.route_set else dialog.remote_target
        if "<" in uri:
            uri = uri[uri.index("<") + 1:uri.index(">")]
        hop = Target.from_uri(uri)
        conn = self.connection
        if conn is not None and conn.is_open:
            try:
                address = self.endpoint.network.resolve(hop.host)
            except socket.gaierror:
                address = None  # not a name we can reach: the connection is the only way back
            if address is None or (address == conn.remote[0] and hop.transport == conn.transport_name):
                return Target(hop.host, hop.port, conn.transport_name, connection=conn)
        return hop


def _contact(request: Request) -> str:
    return request.headers.get("Contact") or f"<{request.uri_text}>"
