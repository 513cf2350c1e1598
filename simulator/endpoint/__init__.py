"""simulator.endpoint — SIP over the `sim` or `real` network: the asyncio skin of the UA core.

    ep = SipEndpoint(network, host="sbc1.contoso.com", node="sbc1", rng=random.Random(seed),
                     timers=TimerSettings(), events=None,            # None: the network's EventLog
                     tls=TlsConfig(identity=..., trust=ca),          # for the TLS connections ep opens
                     limits=TransportLimits())                       # what one peer may hold of ep
    await ep.listen("udp" | "tcp" | "tls", port, tls=TlsConfig(identity=..., trust=ca,
                    policy=TlsPolicy.direct_routing(), require_client_cert=True))
    ep.on_request = handler              # handler(incoming), sync or async; one call per new request
    ep.on_ack = cb                       # cb(ack, peer): an ACK no transaction absorbed (ACK for a 2xx)
    ep.on_connection_closed = cb         # cb(connection, reason): a connection ended (reset, cut, closed)
    tx = ep.request(request, Target(host, port, transport, tls_name=None, connection=None, tls=None),
                    on_provisional=cb)   # -> ClientTx, at once
    response = await tx.final()          # TransactionTimeout(timer "B"/"F") | TransportFailure(reason)
    tx.cancel(); ep.send_ack(ack, target); ep.contact("tls"); await ep.close()
    incoming.request / .source (Peer) / .respond(status, reason, headers=, body=, to_tag=,
             content_type=, contact=) / .response(same, not sent) / .send(response, until_acked=False)
             / .cancelled / .on_cancel(cb) / .dialog
    dialog = SipDialog.accept(incoming) / (response, dialog) = await SipDialog.invite(ep, invite, target)
    await dialog.request("BYE" | "INVITE" | "REFER" | ...); await dialog.acked()     (dialog.py)

Layers: every SIP rule lives in simulator.sip — `UserAgentCore` (sip/user_agent.py) over the
transactions and dialogs — which reads no clock and owns no socket. `SipEndpoint` drives it
the way aioquic's asyncio protocol drives its QuicConnection: it feeds it messages and
`loop.time()`, re-arms one timer at its `next_deadline()`, and carries out the actions it
returns (send, resolve a ClientTx's future, call the role's handler). `transport.py` frames
bytes and talks to the endpoint only through its `TransportUser` interface.

The rules, where RFC 3261 leaves a choice:
- Listeners: "tls" is a TCP listener whose accepted connections are upgraded with
  simulator.net.tls.upgrade (so every refusal is a named `tls.*` event); `require_client_cert`
  overrides `policy.mutual`. `port=0` binds an ephemeral port: `ep.listen_ports[transport]`.
- Via: `request()` puts our Via on top with sent-by = our host name and the port we listen on
  for that transport (else the connection's local port), a fresh branch from `rng`, and `rport`.
  Toward a peer outside the lab (`network.is_external`) sent-by and `ep.contact(transport,
  toward=peer)` carry our address instead of our name, which that peer cannot resolve.
  A top Via naming our own host or address is *replaced* (a UA built the request); any other is
  kept under ours (a proxy forwarding, §16.6). CANCEL and ACK-for-non-2xx keep the INVITE's.
- Received requests get `received=` (sent-by host != source address) and `rport=` (when asked),
  RFC 3581 §4. Responses go back over the connection the request came in on; over UDP to the
  source address and rport, or the sent-by port without rport (§18.2.2).
- Connections are reused per (peer address, port, transport), including ones the peer opened
  to us (keyed by its source port); `Target(connection=...)` sends over a given one (the
  cloud sending an INVITE to a client over the client's registration connection). Concurrent
  requests to a peer being connected share the one connect. Connect timeout = 64*T1.
- TLS client side: verifies the server against `Target.tls_name` (default `Target.host`),
  presents `TlsConfig.identity` when there is one; config from `Target.tls`, else the
  endpoint's `tls=`, else its first TLS listener's.
- Transactions: one `TransactionLayer`; one loop timer handle, re-armed to `next_deadline()`
  after every call (virtual time on sim: Timer B through a blackhole is exactly 32.0 s).
- Failures of a client transaction: TransactionTimeout (B/F), or TransportFailure with reason
  `connect.refused`, `connect.timeout`, `connect.failed`, `dns.unknown_host`,
  `connection.reset` (the connection carrying it ended; pending transactions on it fail at
  once), `connection.closed` (Target.connection already closed), `send.failed`,
  `endpoint.closed`, or the `tls.*` refusal name from simulator.net.tls.
- New requests: the server transaction is created first (INVITE: 100 Trying at once), then
  `on_request`. No handler: the core's default answer, OPTIONS 200 and anything else 501.
  With `relays_calls` (a B2BUA) a new INVITE with Max-Forwards 0 is answered 483. A handler that raises gets the
  request answered 500 (if it had not answered) and a `sip.handler_error` event; the endpoint
  lives on. A response the transaction refuses (a 200 after the 487 of a CANCEL) is dropped
  with `sip.response.discarded`.
- CANCEL (§9.2): 481 if no INVITE matches; else 200, and 487 to the INVITE unless it already
  had a final response; `incoming.cancelled` and the `on_cancel` callbacks follow. The handler
  never sees the CANCEL itself.
- ACK for 2xx: handed to a SipDialog waiting for it, and to `on_ack`. A retransmitted 2xx is
  answered with the ACK `send_ack` sent for it (kept 64*T1); otherwise `sip.response.stray`.
- Bad input: a datagram that does not parse is answered statelessly with SipParseError's
  status when it is a request whose Via/From/To/Call-ID/CSeq can be echoed
  (uas_checks.answer_unparseable), else dropped; CRLF-only datagrams are keep-alives. On a
  stream, a message that frames but does not parse is answered the same way and the stream
  goes on; a framing error (no/bad Content-Length, a message over the limit) is answered from
  its head when it has one (513 for oversize) and closes the connection. Each is a
  `sip.parse_error` event with `action` answered | dropped | closed. Whatever else goes wrong
  while handling one message is a `sip.internal_error` event; the connection (or the UDP
  socket) reads the next message.
- Limits (`TransportLimits`, reasons in simulator.endpoint.transport): an incomplete message
  on a stream may buffer `max_message_octets` (its head `max_head_octets`); one remote address
  may hold `max_connections_per_address` inbound connections, counted at accept (before a TLS
  handshake) — one more is closed at once with a `sip.conn.refused` event. A closed
  connection leaves no entry in the endpoint's tables.
- CRLF keep-alive (RFC 5626 §3.5.1): a CRLFCRLF ping on a stream is answered with CRLF;
  `connection.ping()` sends one; pongs are absorbed.
- SipDialog: UAC ACKs every 2xx (also re-INVITEs'); UAS sends its 2xx `until_acked`: the core
  retransmits it over UDP at T1, doubling to T2, until the ACK or 64*T1, then
  `sip.dialog.no_ack` and the dialog sends a BYE (§13.3.1.4);
  in-dialog requests through the route set, over the dialog's connection when it leads there.

Events (all with `node`): `sip.sent` / `sip.received` (transport, src, dst as "a.b.c.d:port",
conn — the sim network's connection id, `<node>/<n>` on real, None for UDP — call_id, cseq
"1 INVITE", summary, message = the full text as on the wire), `sip.parse_error` (src,
transport, conn, status, reason, action), `sip.conn.opened` / `sip.conn.closed` (conn,
transport, peer, local, inbound, reason), `sip.timeout` (method, timer, branch, call_id, cseq),
`sip.transport_error` (reason, detail, dst, transport, call_id, cseq),
`sip.transaction.state` (from simulator.sip.transaction), `sip.response.stray`,
`sip.response.discarded`, `sip.handler_error`, `sip.dialog.no_ack`, `sip.udp_error`,
`sip.too_many_hops` (call_id, via), `sip.conn.refused` (transport, peer, limit),
`sip.internal_error` (where, error), `sip.request.unanswerable` (why), and the
`tls.*` events of simulator.net.tls.
"""

from simulator.endpoint.dialog import SipDialog
from simulator.endpoint.endpoint import ClientTx, Incoming, SipEndpoint
from simulator.endpoint.transport import Connection, TransportLimits
from simulator.endpoint.types import (
    Peer,
    SipFailure,
    Target,
    TlsConfig,
    TransactionTimeout,
    TransportFailure,
)

__all__ = [
    "ClientTx",
    "Connection",
    "Incoming",
    "Peer",
    "SipDialog",
    "SipEndpoint",
    "SipFailure",
    "Target",
    "TlsConfig",
    "TransactionTimeout",
    "TransportFailure",
    "TransportLimits",
]
