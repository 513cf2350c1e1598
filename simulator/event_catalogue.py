"""Every event name drlab writes, with its fields and what it means: the names are defined here once.

Roles, the endpoint, the networks, the lab and the scenario runner write events through
`EventLog.logger(...).info(name, **fields)` (simulator/events.py); reports and scenario expectations
read them by name. A strict EventLog refuses a name or a field that is not listed here, and the
tests run real scenarios against this list. docs/events.md is generated from it:

    python -m simulator.event_catalogue > docs/events.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class EventSpec:
    name: str
    fields: tuple[str, ...]  # every field a record of this event may carry (not "t" and "event")
    meaning: str

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]


# The fields a role's `call.*` event carries; each node fills those it knows (a client its
# user and registrar, an SBC the `via`), and some events add their own.
_CALL = "node call_id caller callee status path direction via user registrar"
# A TLS handshake that failed, logged by the side that saw it under the failure's name.
_TLS_FAILURE = "node side peer detail"

_TABLE: tuple[tuple[str, str, str], ...] = (
    # -- SIP: the endpoint (simulator/endpoint) and the transaction layer ---------------------------
    ("sip.sent", "node transport src dst conn call_id cseq summary message",
     "a SIP message left the node; `message` is its whole text as on the wire"),
    ("sip.received", "node transport src dst conn call_id cseq summary message",
     "a SIP message reached the node and parsed"),
    ("sip.parse_error", "node src transport conn status reason action",
     "bytes that are not a SIP message: `action` says whether they were answered (`status`), dropped or the connection closed"),
    ("sip.udp.buffer", "node port requested granted",
     "a SIP UDP socket's receive buffer: the octets asked for and what the kernel granted"),
    ("sip.conn.opened", "node conn transport peer local inbound reason",
     "a SIP connection came up (accepted or connected)"),
    ("sip.conn.closed", "node conn transport peer reason", "a SIP connection ended"),
    ("sip.conn.refused", "node transport peer limit",
     "an inbound connection was refused: its address already holds `limit` connections"),
    ("sip.timeout", "node method timer branch call_id cseq",
     "a client transaction timed out (Timer B or F, RFC 3261 §17.1)"),
    ("sip.transport_error", "node reason detail dst transport call_id cseq",
     "a request could not be sent: no connection, refused, TLS failure or unknown host"),
    ("sip.transaction.state", "node kind method branch old new trigger",
     "a transaction moved from state `old` to `new` on `trigger` (RFC 3261 §17)"),
    ("sip.response.stray", "node status call_id cseq", "a response that matched no client transaction"),
    ("sip.response.discarded", "node status call_id cseq why",
     "a response the server transaction could not send any more (e.g. a 200 after the 487)"),
    ("sip.handler_error", "node where method call_id error",
     "a role's handler raised; the endpoint answered or carried on"),
    ("sip.internal_error", "node where error", "a background task of the endpoint failed"),
    ("sip.udp_error", "node error", "the UDP socket reported an error (an ICMP port unreachable)"),
    ("sip.too_many_hops", "node call_id source via",
     "a new INVITE arrived with Max-Forwards 0 and was answered 483 (RFC 7332 §3)"),
    ("sip.dialog.no_ack", "node call_id", "a 2xx to an INVITE was retransmitted until Timer H and no ACK came"),
    ("sip.dialog.state", "node call_id role state", "the user agent's dialog changed state (Early, Confirmed, Terminated)"),
    ("sip.call.acked", "node call_id cseq", "the user agent received the ACK to its 2xx"),
    ("sip.call.ended", "node call_id status", "the user agent's call ended"),
    ("sip.call.failed", "node call_id status", "the user agent's INVITE got a final failure response"),
    ("sip.call.media", "node call_id held direction", "a re-INVITE changed the media (hold or resume)"),
    ("sip.call.no_ack", "node call_id", "the user agent's 2xx got no ACK before Timer H"),
    ("sip.call.sdp_refused", "node call_id why", "an offer or answer the user agent cannot accept (488)"),
    ("sip.ack.stray", "node call_id", "an ACK that matched no dialog"),
    ("sip.message.unparseable", "node status reason", "bytes the user agent could not parse (answered statelessly when a request with a Via)"),
    ("sip.request.rejected", "node method status why", "the user agent refused a request (e.g. 481, 501)"),
    ("sip.request.unanswerable", "node why", "a request with no Via or CSeq to answer with was dropped"),
    # -- TLS (simulator/net/tls.py): the side that refused logs the refusal's name -----------------
    ("tls.established", "node side peer version cipher peer_names sni", "a TLS handshake completed and every check passed"),
    ("tls.refused_by_peer", "node side peer reason alert detail",
     "the other side refused the handshake and said so with a TLS `alert`"),
    ("tls.expired", _TLS_FAILURE, "the peer's certificate has expired"),
    ("tls.not_yet_valid", _TLS_FAILURE, "the peer's certificate is not valid yet"),
    ("tls.unknown_ca", _TLS_FAILURE, "the peer's certificate chains to no trusted root"),
    ("tls.bad_eku", _TLS_FAILURE, "the peer's certificate lacks the extended key usage its role needs"),
    ("tls.name_mismatch", _TLS_FAILURE + " certificate",
     "the peer's certificate does not name the host it was meant for (a proxy: no paired gateway)"),
    ("tls.no_client_cert", _TLS_FAILURE, "a mutual-TLS server got no client certificate"),
    ("tls.protocol_version", _TLS_FAILURE, "the two sides have no TLS version in common"),
    ("tls.handshake_failed", _TLS_FAILURE, "the handshake failed for another reason (no shared cipher, not TLS)"),
    ("tls.handshake_timeout", _TLS_FAILURE, "the handshake did not finish in time"),
    ("tls.connection_lost", _TLS_FAILURE, "the connection ended before or during the handshake"),
    # -- the network (simulator/net): sim and real alike --------------------------------------------
    ("net.listen", "host address port transport", "a host listens on a port"),
    ("net.connect", "conn host to src dst links", "a TCP connection was established over `links`"),
    ("net.refused", "host to port reason link", "a connect was refused (nothing listening, a link down)"),
    ("net.connect_timeout", "host to port after reason", "a connect got no answer (a blackholed link, lost SYNs)"),
    ("net.close", "conn host", "a host closed its end of a connection"),
    ("net.abort", "conn host", "a host aborted its end of a connection"),
    ("net.eof", "conn host", "a host received the peer's FIN"),
    ("net.reset", "conn host reason link", "a connection was reset (a link went down, data to a closed peer)"),
    ("net.retransmit", "conn host attempt rto", "unacknowledged TCP data was sent again after `rto` seconds"),
    ("net.timeout", "conn host reason link retransmissions", "a connection gave up after its retransmissions"),
    ("net.drop", "transport src dst bytes reason link", "a datagram was lost (link loss, down, no port)"),
    ("link.up", "link previous", "a link came up"),
    ("link.down", "link previous reset", "a link went down; `reset` connections crossing it were reset"),
    ("link.blackhole", "link previous", "a link silently drops everything"),
    ("link.impaired", "link latency jitter loss toward one_way_loss",
     "a link's latency, jitter or loss changed; with `toward` (a site) the loss `one_way_loss` hits only "
     "the packets headed for that site"),
    # -- the lab and the scenario runner -------------------------------------------------------------
    ("lab.built", "lab network nodes hosts links", "a lab was built from its file"),
    ("lab.external", "node host address port transport",
     "an external node: drlab does not run it and reaches it at `address`:`port` directly, outside the links"),
    ("lab.links_unsupported", "network links", "the network kind cannot impair links; the lab's links are ignored"),
    ("lab.started", "lab order", "every node started, in `order`"),
    ("lab.start_failed", "node error", "a node failed to start"),
    ("lab.settled", "lab after_s", "every node reached its steady state"),
    ("lab.unsettled", "lab waiting", "the lab did not settle; `waiting` names the nodes"),
    ("lab.stopped", "lab", "every node stopped"),
    ("lab.stop_failed", "node error", "a node failed to stop"),
    ("step.started", "step kind position", "a scenario step began"),
    ("step.passed", "step detail position", "a scenario step held"),
    ("step.failed", "step detail position", "a scenario step failed; `detail` says why"),
    ("scenario.note", "text", "something the runner noticed that is not a step (e.g. the lab failed to stop)"),
    # -- the live lab's control plane (simulator/control/) ------------------------------------------
    ("control.command", "command link state latency jitter loss pstn caller callee call user sba pace paused step",
     "the control plane accepted a command; its fields are the command's arguments"),
    ("control.done", "command result call user sba",
     "a command that takes time in the lab finished; `result`: a hangup's final status, a sync's outcome"),
    ("control.failed", "command error link state latency jitter loss pstn caller callee call user sba",
     "a command the control plane accepted failed later, or the control plane itself failed"),
    # -- the Docker lab (simulator/dockerlab/) ---------------------------------------------------------
    ("docker.up", "project containers compose",
     "the Docker lab's containers were started (`docker-compose up -d` of the `compose` file)"),
    ("docker.link", "link state loss_percent rules via elapsed_s",
     "the router container now realizes the link's state: `rules` nftables rules in its namespace, set `via` nsenter or docker exec"),
    ("docker.unsupported", "link latency jitter",
     "the Docker lab cannot delay packets (no netem): this link's latency and jitter are not applied between containers"),
    ("docker.down", "project containers networks", "the Docker lab's containers and networks were removed"),
    # -- calls, from every role that handles them --------------------------------------------------
    ("call.started", _CALL + " dialed gateway reasons", "a call began at this node"),
    ("call.ringing", _CALL, "the call is ringing"),
    ("call.overloaded", "node call_id setups limit queued retry_after",
     "an SBC or proxy had `limit` calls being set up, or `queued` octets unread on its UDP socket: a new "
     "INVITE got 503 with Retry-After, and no call"),
    ("call.answered", _CALL + " answered_by transferred_from", "the call was answered"),
    ("call.held", _CALL + " by", "the call was put on hold"),
    ("call.resumed", _CALL + " by", "the call was taken off hold"),
    ("call.transferred", _CALL + " by target", "a party transferred the call to `target` (REFER)"),
    ("call.transfer_progress", _CALL + " sipfrag final", "a NOTIFY told the transferor how its transfer goes"),
    ("call.transfer_notified", "node call_id sipfrag final status reason",
     "the transferor was sent a NOTIFY with the transfer's progress"),
    ("call.forwarded", _CALL + " target kind reason", "the SBA forwarded the call (immediately or unanswered)"),
    ("call.client_unreachable", _CALL + " reason", "the proxy could not reach one of the callee's clients"),
    ("leg.placed", "node call_id leg_call_id peer",
     "a B2BUA placed a leg for the call `call_id` (its A leg's Call-ID) with the Call-ID `leg_call_id` toward `peer`"),
    ("call.path_lost", _CALL + " leg",
     "a leg's signalling connection was reset and could not be re-established: its media silence starts"),
    ("call.media_timeout", _CALL + " leg silent_s cause one_way",
     "a leg of an answered call had no media for `silent_s` (media_inactivity_timeout_s), or lost its signalling "
     "path (`cause`): the node ends the call; `one_way`: a relay still heard the other leg (one-way audio)"),
    ("call.ended", _CALL + " result reason detail by ended_by end_reason byes",
     "the call ended; `end_reason` normal | media_timeout | network_failure | refused | cancelled | transferred |"
     " restarted, `ended_by` caller | callee | self (this node), `byes` how the BYEs it sent were answered;"
     " `result` is the Microsoft code where the node writes CDRs"),
    ("call.refused", "node call_id status reason", "the proxy refused a call (authentication, unknown user)"),
    ("call.relay_failed", "node call_id method reason", "the proxy could not relay an in-dialog request"),
    ("call.bye_failed", "node call_id reason", "a BYE the node sent got no answer"),
    ("call.notify_failed", "node call_id reason", "a NOTIFY the proxy sent got no answer"),
    ("cdr.record", "node cdr_id call_id caller callee direction path invite_at answer_at end_at result gateway user"
     " end_reason ended_by writer",
     "a call detail record was written (`writer` is the FQDN of the node that wrote it)"),
    # -- media (simulator/media): RTP and RTCP of answered calls ---------------------------------------
    ("media.started", "node call_id local remote codec ptime rtcp_mux stream",
     "a node began an RTP session: it receives on `local` and sends to `remote` (none yet: it only listens)"),
    ("media.relayed", "node call_id a b", "a node relays a call's media between the address pairs `a` and `b`"),
    ("media.no_path", "node call_id reason",
     "a call has no media path (e.g. a survivable call through a gateway without media bypass)"),
    ("rtp.sent", "node call_id src dst codec pt ssrc seed ptime seq index timestamp first count",
     "a run of `count` RTP packets left `src` for `dst`, one per `ptime` ms from time `first` (capture.pcap rebuilds each)"),
    ("rtcp.sent", "node call_id src dst data", "an RTCP compound packet (SR or RR, RFC 3550 §6.4) left `src`; `data` in hex"),
    ("media.quality", "node call_id stream received sent packets_expected packets_received loss jitter_ms rtt_ms "
     "r mos poor reasons silent_s",
     "what one side of a call received, when its RTP session ended: loss, jitter, round trip, E-model MOS, "
     "the CQD verdict (`poor` null: unclassified) and `silent_s`, how long nothing had arrived at its end"),
    # -- Teams clients -------------------------------------------------------------------------------
    ("client.state", "node user state registrar old reason", "a client changed state or registrar"),
    ("client.registered", "node user registrar", "a client registered"),
    ("client.register_failed", "node user registrar reason", "a client's REGISTER failed"),
    ("client.appliance_mode_blocked", "node user reason",
     "a client is offline and may not (or cannot yet) enter appliance mode at the SBA"),
    ("client.return_deferred", "node user reason", "the cloud is back but an outgoing call keeps the client at the SBA for now"),
    ("client.restarted", "node user", "a client restarted"),
    ("client.internal_error", "node user error", "a background task of the client failed"),
    # -- the Teams proxy and cloud -------------------------------------------------------------------
    ("proxy.started", "node fqdn region", "a proxy host started"),
    ("proxy.stopped", "node fqdn", "a proxy host stopped"),
    ("proxy.error", "node method call_id error", "the proxy failed handling a request or in a background task"),
    ("gateway.health", "node gateway state old reason silent_s region",
     "a gateway's health changed (active, demoted, inactive, disabled)"),
    ("gateway.options_failed", "node gateway contact reason status detail", "an OPTIONS from the proxy to a gateway failed"),
    ("gateway.refused", "node method contact status rule reason peer",
     "the proxy refused a request from a gateway; rule: contact, record_route, certificate, domain, paired"),
    ("gateway.sessions_alert", "node gateway concurrent max_sessions", "a gateway reached 90 % of its MaxConcurrentSessions"),
    ("gateway.sessions_normal", "node gateway concurrent max_sessions", "a gateway fell back below 90 % of its sessions"),
    ("gateway.sessions_rejected", "node gateway concurrent max_sessions", "a call was refused: the gateway is at its limit"),
    ("registrar.bound", "node user contact expires conn", "a client registration was stored"),
    ("registrar.unbound", "node user contact reason", "a client registration ended (expired, removed, connection lost)"),
    ("registrar.refused", "node user status reason", "a REGISTER was refused"),
    ("route.decision",
     "node call_id user dialed normalized number gateways reasons emergency caller_id refusal cache_version lbr",
     "the routing decision for a call: the gateways in failover order, or the refusal; `emergency` when the "
     "dialed string is an emergency number, `caller_id` the number presented (null: withheld), `lbr` the Location-Based Routing verdict"),
    ("route.attempt", "node call_id gateway datacenter attempt outcome status detail",
     "one attempt to a gateway and its outcome (answered, failover, final, network, cancelled, session_limit)"),
    ("cloud.sync_served", "node sba version have_version users identified_by", "the cloud sent an SBA its configuration"),
    ("cloud.sync_refused", "node sba certificate reason", "the cloud refused an SBA's sync request"),
    ("cloud.cdr_upload", "node uploader count new duplicates", "the cloud stored a batch of uploaded CDRs"),
    ("cloud.cdr_upload_refused", "node uploader reason", "the cloud refused a CDR upload"),
    # -- the SBC -------------------------------------------------------------------------------------
    ("sbc.started", "node fqdn tls_port pstn_port proxies sba carrier", "an SBC started"),
    ("sbc.options", "node proxy ok status reason", "an OPTIONS keepalive to a proxy and its answer"),
    ("sbc.proxy", "node proxy state reason", "the SBC judged a proxy up or down"),
    ("sbc.connection_lost", "node proxy reason", "the SBC's TLS connection to a proxy ended"),
    ("sbc.attempt", "node call_id target outcome", "the SBC tried a call towards one target"),
    ("sbc.failover", "node call_id from_ to reason", "the SBC moved a call to its next target"),
    ("sbc.refused", "node source reason", "the SBC refused a request"),
    # -- the SBA -------------------------------------------------------------------------------------
    ("sba.started", "node sba sbc", "an SBA started"),
    ("sba.sync", "node sba version ok proxy cloud_version users changed added removed renumbered reason",
     "one sync with the cloud: the cache `version` after it, what changed, or why it failed"),
    ("sba.cdr_upload", "node sba count proxy ids pending", "the SBA uploaded buffered CDRs"),
    ("sba.cdr_upload_failed", "node sba count reason retry_at", "a CDR upload failed; it is retried at `retry_at`"),
    ("sba.checkin", "node user", "a client with a valid token sent the SBA an OPTIONS"),
    ("sba.registered", "node user expires reason cache_version", "the SBA registered a client"),
    ("sba.unregistered", "node user", "a client unregistered from the SBA"),
    ("sba.registration_refused", "node user status reason", "the SBA refused a REGISTER"),
    ("sba.call_refused", "node caller status reason", "the SBA refused a call"),
    ("sba.gateway_failover", "node call_id gateway status reason next", "the SBA moved a call to the next gateway"),
    ("sba.internal_error", "node error", "a background task of the SBA failed"),
    # -- the PSTN carrier ----------------------------------------------------------------------------
    ("pstn.started", "node host port transport numbers", "the PSTN carrier started"),
    ("pstn.internal_error", "node error", "a background task of the carrier failed"),
)

CATALOGUE: dict[str, EventSpec] = {
    name: EventSpec(name, tuple(fields.split()), meaning) for name, fields, meaning in _TABLE
}

# What the fields many events share mean; docs/events.md lists these before the events.
COMMON_FIELDS: dict[str, str] = {
    "node": "the lab's name of the node that wrote the event",
    "call_id": "the SIP Call-ID the event is about",
    "cseq": 'the CSeq of the message, e.g. "1 INVITE"',
    "conn": "the connection's id (the sim network's number, `<node>/<n>` on the real one; None for UDP)",
    "transport": "tls, tcp or udp (the network's own events: tcp or udp)",
    "src": '"address:port" the bytes came from',
    "dst": '"address:port" the bytes went to',
    "host": "the network host the event happened on",
    "peer": "the other end: an FQDN when the node knows it, else \"address:port\"",
    "side": "client or server: which end of the TLS connection wrote the event",
    "status": "a SIP status code (None until there is one)",
    "reason": "why, in a short fixed phrase or an event name (e.g. tls.expired)",
    "detail": "the longer, human-readable why",
    "error": '"ExceptionType: message" of a failure',
    "user": "a Teams user's UPN",
    "gateway": "an SBC's FQDN as paired with Direct Routing",
    "path": "for calls: cloud, sba or the SBC's FQDN; the way the call went",
    "direction": "for calls: which way the call goes, as the writing node sees it",
}

_GROUPS = {
    "sip": "SIP endpoint and transactions", "tls": "TLS", "net": "Network", "link": "Links",
    "lab": "Lab", "step": "Scenario runner", "scenario": "Scenario runner", "call": "Calls",
    "cdr": "Calls", "leg": "Calls", "client": "Teams clients", "proxy": "Teams proxy and cloud",
    "gateway": "Teams proxy and cloud", "registrar": "Teams proxy and cloud",
    "route": "Teams proxy and cloud", "cloud": "Teams proxy and cloud", "sbc": "SBC", "sba": "SBA",
    "pstn": "PSTN carrier", "control": "Live lab control plane", "docker": "The Docker lab", "media": "Media",
    "rtp": "Media", "rtcp": "Media",
}


def write_markdown(out: TextIO) -> None:
    """docs/events.md: every event, grouped as in the catalogue."""
    out.write("# Events\n\n"
              "Every event drlab writes to `events.jsonl`, one JSON object a line: `t` (seconds on the\n"
              "run's clock), `event` (the name below), then the fields. Events written by a node carry\n"
              "`node` (the lab's node name). Generated from `simulator/event_catalogue.py`:\n\n"
              "    python -m simulator.event_catalogue > docs/events.md\n\n"
              "Fields many events share:\n\n| field | meaning |\n|---|---|\n")
    for field, meaning in COMMON_FIELDS.items():
        out.write(f"| `{field}` | {meaning} |\n")
    heading = None
    for spec in CATALOGUE.values():
        if _GROUPS[spec.group] != heading:
            heading = _GROUPS[spec.group]
            out.write(f"\n## {heading}\n\n| event | fields | meaning |\n|---|---|---|\n")
        fields = ", ".join(f"`{f}`" for f in spec.fields)
        out.write(f"| `{spec.name}` | {fields} | {spec.meaning} |\n")


if __name__ == "__main__":
    write_markdown(sys.stdout)
