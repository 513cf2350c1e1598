"""Call detail records (CDRs) written by the proxy, the SBC and the SBA: one record per call.

The fields follow the Direct Routing call log Microsoft publishes through Graph
(`callRecords.directRoutingLogRow`: callerNumber, calleeNumber, inviteDateTime, startDateTime,
endDateTime / failureDateTime, finalSipCode, callEndSubReason, finalSipCodePhrase,
trunkFullyQualifiedDomainName, successfulCall, callType) plus what the lab needs: which node
wrote it and which path the call took (`cloud` through the Teams proxy, `sba` through the
Survivable Branch Appliance during an outage).

Result codes [S11]: a Microsoft response code (callEndSubReason) beside the
SIP code (CallEndReason). `560xxx` means the SBC generated the final response (`560000 + SIP
code`, `result_from_gateway`); other codes name Microsoft-side conditions (`result_for`);
a failure the callee's Teams client answered is `598000 + SIP code` (`result_from_client`).
Conditions Microsoft documents carry their code; conditions it does not document get a code in
`599xxx`, a range Microsoft does not use, with `documented=False`, so nobody mistakes them.

Use:

    draft = CdrDraft(call_id=msg.call_id, caller="+14255550100", callee="+12065550123",
                     direction=Direction.OUTBOUND, path=CallPath.CLOUD, node="sip.pstnhub.microsoft.com",
                     invite_at=now, gateway="sbc1.contoso.com", user="alice@contoso.com")
    draft.answered(now)
    cdr = draft.finish(now)          # answered; a failed call: draft.finish(now, result_from_gateway(486, "Busy Here"))
    cdr.to_dict() / Cdr.from_dict(d)     # JSON-safe round trip (the SBA's upload body)
    cdr.to_graph()                        # camelCase row shaped like directRoutingLogRow

`cdr_id` is stable (`node:call_id` unless given): the SBA's buffered upload acknowledges by it,
so a retried upload can never double a record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class CallPath(StrEnum):
    CLOUD = "cloud"  # signalling through the Teams SIP proxy
    SBA = "sba"  # survivable mode: through the branch's SBA and local SBC trunk


class EndReason(StrEnum):
    """Why a call ended, as each node saw it (`Cdr.end_reason`, `call.ended`'s end_reason)."""

    NORMAL = "normal"  # a party hung up (BYE) after answer
    MEDIA_TIMEOUT = "media_timeout"  # no media for media_inactivity_timeout_s (roles/media_watch.py)
    NETWORK_FAILURE = "network_failure"  # the signalling could not be delivered (transport error, timeout)
    REFUSED = "refused"  # a final failure response before answer (busy, not found, no route ...)
    CANCELLED = "cancelled"  # the caller gave up before answer
    TRANSFERRED = "transferred"  # a blind transfer replaced the call with a new one
    RESTARTED = "restarted"  # the node holding the call restarted


class Direction(StrEnum):
    INBOUND = "inbound"  # PSTN -> Teams user
    OUTBOUND = "outbound"  # Teams user -> PSTN
    INTERNAL = "internal"  # Teams user -> Teams user (at the SBA; in the cloud these are not DR calls)
    FORWARDED = "forwarded"  # PSTN -> Teams user, forwarded back out to the PSTN


#: Graph directRoutingLogRow.callType values for each direction
GRAPH_CALL_TYPES = {
    Direction.INBOUND: "ByotIn",
    Direction.OUTBOUND: "ByotOut",
    Direction.FORWARDED: "ByotOutUserForwarding",
    Direction.INTERNAL: "SbaInternal",  # not a Graph value: the cloud never logs SBA-local calls
}


@dataclass(frozen=True)
class ResultCode:
    """How a call ended: SIP final code, Microsoft response code, phrase."""

    sip_code: int
    ms_code: int
    phrase: str
    documented: bool = True

    @property
    def generated_by_gateway(self) -> bool:
        """[S11]: a 560xxx code means the final response came from the SBC."""
        return 560000 <= self.ms_code <= 560699


#: condition -> result, as the proxy/SBA reports it. Sources: [S11] and the
#: Graph directRoutingLogRow example (successful call: finalSipCode 0 / 540000 / "BYE"; we keep the
#: INVITE's 200 as sip_code and map it to Graph's 0 in `Cdr.to_graph`).
RESULTS: dict[str, ResultCode] = {
    "answered": ResultCode(200, 540000, "BYE"),
    "user_not_found": ResultCode(404, 511404, "User not found by reverse number lookup"),
    "replacement_call_not_found": ResultCode(404, 10202, "Replacement call not found"),
    "failover_timer_expired": ResultCode(408, 500001, "Gateway (SBC) failover timer expired"),
    "sbc_did_not_ack": ResultCode(408, 1106, "Callee answered but the SBC never acknowledged the 200 OK"),
    "client_establishment_timeout": ResultCode(408, 0, "Call establishment timed out on the client"),
    "sbc_required_unsupported_extension": ResultCode(420, 540420, "SBC required an unsupported extension"),
    # --- not documented by Microsoft: drlab's own 599xxx codes (docs/ASSUMPTIONS.md) ---
    "no_matching_route": ResultCode(404, 599404, "No voice route matches the dialled number", False),
    "all_gateways_failed": ResultCode(503, 599503, "Every gateway of the matching routes failed", False),
    "max_concurrent_sessions": ResultCode(503, 599513, "Gateway at MaxConcurrentSessions", False),
    "caller_cancelled": ResultCode(487, 599487, "Caller hung up before answer", False),
    "callee_not_registered": ResultCode(480, 599480, "Callee has no registered client", False),
    "unknown_to_sba": ResultCode(404, 599414, "Number not in the SBA's cached configuration", False),
    "emergency_no_route_at_sba": ResultCode(404, 599911, "Emergency string matches no cached voice route", False),
    "sba_refused_client": ResultCode(403, 599403, "SBA refused the client's token", False),
    "node_restarted": ResultCode(503, 599500, "The node restarted while the call was being set up", False),
    # Location-Based Routing [S21]: the client shows this text; the SIP code is not documented
    "lbr_refused": ResultCode(403, 599440, "Call not allowed due to your organization's settings", False),
    "lbr_not_delivered": ResultCode(480, 599441, "Not delivered to the endpoint by Location-Based Routing", False),
}


def result_for(condition: str) -> ResultCode:
    try:
        return RESULTS[condition]
    except KeyError:
        raise ValueError(f"unknown call result condition {condition!r}; known: {', '.join(RESULTS)}") from None


def result_from_gateway(sip_code: int, phrase: str) -> ResultCode:
    """A final response the SBC generated: Microsoft code 560 followed by the SIP code [S11]."""
    if not 300 <= sip_code <= 699:
        raise ValueError(f"a gateway-generated final failure is 3xx-6xx; got {sip_code}")
    return ResultCode(sip_code, 560000 + sip_code, phrase)


def result_from_client(sip_code: int, phrase: str) -> ResultCode:
    """A final failure a Teams client answered (busy, declined ...): Microsoft documents no code for
    it, so drlab writes `598000 + SIP code` (a range Microsoft does not use), `documented=False`."""
    if not 300 <= sip_code <= 699:
        raise ValueError(f"a client-generated final failure is 3xx-6xx; got {sip_code}")
    return ResultCode(sip_code, 598000 + sip_code, phrase, documented=False)


@dataclass(frozen=True)
class Cdr:
    cdr_id: str
    call_id: str
    caller: str
    callee: str
    direction: Direction
    path: CallPath
    node: str  # who wrote it: proxy host, SBC FQDN or SBA FQDN
    invite_at: float
    answer_at: float | None
    end_at: float  # end of an answered call, or time of failure
    result: ResultCode
    gateway: str | None = None  # trunkFullyQualifiedDomainName
    user: str | None = None  # the Teams user's UPN
    end_reason: str = EndReason.NORMAL
    ended_by: str | None = None  # "caller", "callee", or "self" (this node ended it)

    def __post_init__(self) -> None:
        if not self.cdr_id:
            raise ValueError("a CDR needs a non-empty cdr_id")
        if self.answer_at is not None and not self.invite_at <= self.answer_at <= self.end_at:
            raise ValueError(f"CDR {self.cdr_id}: times out of order (invite {self.invite_at}, "
                             f"answer {self.answer_at}, end {self.end_at})")
        if self.end_at < self.invite_at:
            raise ValueError(f"CDR {self.cdr_id}: ends ({self.end_at}) before its INVITE ({self.invite_at})")

    @property
    def successful(self) -> bool:
        return self.answer_at is not None

    @property
    def duration_s(self) -> int:
        """Seconds from answer to end, as Graph's Int32 `duration`; 0 for failed calls."""
        return 0 if self.answer_at is None else round(self.end_at - self.answer_at)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["direction"] = str(self.direction)
        d["path"] = str(self.path)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cdr:
        try:
            return cls(**{**d, "direction": Direction(d["direction"]), "path": CallPath(d["path"]),
                          "result": ResultCode(**d["result"])})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a CDR: {exc}") from None

    def to_graph(self) -> dict[str, Any]:
        """The record shaped like Graph's directRoutingLogRow (times stay in simulator seconds)."""
        return {
            "id": self.cdr_id,
            "correlationId": self.call_id,
            "callerNumber": self.caller,
            "calleeNumber": self.callee,
            "callType": GRAPH_CALL_TYPES[self.direction],
            "inviteDateTime": self.invite_at,
            "startDateTime": self.answer_at if self.answer_at is not None else self.invite_at,
            "endDateTime": self.end_at if self.successful else None,
            "failureDateTime": None if self.successful else self.end_at,
            "duration": self.duration_s,
            "successfulCall": self.successful,
            "finalSipCode": 0 if self.successful else self.result.sip_code,
            "callEndSubReason": self.result.ms_code,
            "finalSipCodePhrase": self.result.phrase,
            "trunkFullyQualifiedDomainName": self.gateway,
            "userPrincipalName": self.user,
            "path": str(self.path),
        }


@dataclass
class CdrDraft:
    """A call in progress; `finish` turns it into an immutable `Cdr`."""

    call_id: str
    caller: str
    callee: str
    direction: Direction
    path: CallPath
    node: str
    invite_at: float
    gateway: str | None = None
    user: str | None = None
    cdr_id: str = ""
    answer_at: float | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.cdr_id:
            self.cdr_id = f"{self.node}:{self.call_id}"

    def answered(self, now: float) -> None:
        if self.answer_at is None:  # a retransmitted 200 OK must not move the answer time
            self.answer_at = now

    def finish(self, now: float, result: ResultCode | None = None, *, end_reason: str | None = None,
               ended_by: str | None = None) -> Cdr:
        """Close the record at `now`. `result` may be omitted only for an answered call (normal clearing);
        `end_reason` defaults to normal (answered), cancelled (the caller's CANCEL) or refused."""
        if result is None:
            if self.answer_at is None:
                raise ValueError(f"call {self.call_id} was never answered: finish() needs its result")
            result = RESULTS["answered"]
        if end_reason is None:
            end_reason = default_end_reason(result, answered=self.answer_at is not None)
        return Cdr(self.cdr_id, self.call_id, self.caller, self.callee, self.direction, self.path, self.node,
                   self.invite_at, self.answer_at, now, result, self.gateway, self.user, str(end_reason), ended_by)


def default_end_reason(result: ResultCode, *, answered: bool) -> EndReason:
    if answered:
        return EndReason.NORMAL
    return EndReason.CANCELLED if result == RESULTS["caller_cancelled"] else EndReason.REFUSED


@dataclass
class CdrStore:
    """The cloud's call log: ingests CDR uploads idempotently, by `cdr_id`.

    `ingest` returns the ids it acknowledges: every id of the batch, new or already stored, so an
    uploader whose previous acknowledgement was lost learns the records are safe and drops them.
    A record arriving again with the same id but different content is refused (a bug upstream).
    """

    records: dict[str, Cdr] = field(default_factory=dict)

    def ingest(self, batch: list[Cdr]) -> list[str]:
        """Store a batch, all or nothing: a conflicting record refuses the whole batch."""
        for cdr in batch:
            known = self.records.get(cdr.cdr_id)
            if known is not None and known != cdr:
                raise ValueError(f"CDR {cdr.cdr_id} uploaded twice with different content")
        for cdr in batch:
            self.records.setdefault(cdr.cdr_id, cdr)
        return [cdr.cdr_id for cdr in batch]

    def by_path(self, path: CallPath) -> list[Cdr]:
        return [c for c in self.records.values() if c.path is path]
