"""Building requests and responses the way RFC 3261 §8 says a UA must.

The random parts (branch, tag, Call-ID) come from a caller-supplied `random.Random`,
never the global one, so a simulation with one seed produces the same bytes every run.
"""

from __future__ import annotations

import random

from simulator.sip import Request, Response, SipParseError

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: marks a branch as globally unique
DEFAULT_MAX_FORWARDS = 70  # RFC 3261 §8.1.1.6
# The From of a caller who withholds their identity (RFC 3325 §9.1, RFC 3261 §8.1.1.3).
ANONYMOUS_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>'


ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
PAIRS = [a + b for a in ALPHABET for b in ALPHABET]  # every two-character token, in base-36 order


def _token(rng: random.Random, length: int) -> str:
    """`length` characters of [a-z0-9], uniformly: one draw below 36**length written in base 36,
    two digits at a time (a draw per character cost more than the rest of building a request)."""
    number = rng.randrange(36**length)
    pairs = []
    for _ in range(length // 2):
        number, pair = divmod(number, 1296)
        pairs.append(PAIRS[pair])
    if length % 2:
        pairs.append(ALPHABET[number % 36])
    return "".join(pairs)


def new_branch(rng: random.Random) -> str:
    """A Via branch that starts with the magic cookie (RFC 3261 §8.1.1.7)."""
    return MAGIC_COOKIE + _token(rng, 16)


def new_tag(rng: random.Random) -> str:
    """A From/To tag with at least 32 bits of randomness (RFC 3261 §19.3)."""
    return _token(rng, 10)


def new_call_id(rng: random.Random, host: str) -> str:
    return f"{_token(rng, 20)}@{host}"


def _tag_of(request: Request) -> str | None:
    """The To tag, or None — also when To cannot be read (the 400 we answer still gets one)."""
    try:
        return request.to.tag if request.to is not None else None
    except SipParseError:
        return None


def make_request(
    method: str,
    uri: str,
    *,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    via: str,
    contact: str | None = None,
    routes: list[str] = (),  # type: ignore[assignment]
    max_forwards: int = DEFAULT_MAX_FORWARDS,
    extra_headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """A request with the six headers RFC 3261 §8.1.1 requires, in the usual order.

    `from_`/`to` are full header values (name-addr with tags), `via` a full Via value
    whose branch the caller chose (use `new_branch`).
    """
    headers: list[tuple[str, str]] = [("Via", via), ("Max-Forwards", str(max_forwards))]
    headers += [("Route", route) for route in routes]
    headers += [("From", from_), ("To", to), ("Call-ID", call_id), ("CSeq", f"{cseq} {method}")]
    if contact is not None:
        headers.append(("Contact", contact))
    headers += list(extra_headers)
    if body and content_type:
        headers.append(("Content-Type", content_type))
    return Request(method, uri, headers=headers, body=body)


def out_of_hops(request: Request) -> bool:
    """Max-Forwards 0: a proxy or B2BUA must not send the request on, and answers 483 Too
    Many Hops (RFC 3261 §16.3 step 3, RFC 7332 §3)."""
    return request.max_forwards == 0


def onward_max_forwards(request: Request) -> int:
    """The Max-Forwards of the request a B2BUA sends on behalf of `request`: the received value
    less one (RFC 7332 §3), so a routing loop between B2BUAs runs out of hops instead of
    ringing forever; 70 when the request has none (RFC 2543 peers omit it). Check
    `out_of_hops` first: a request that arrived with 0 is not sent on."""
    received = request.max_forwards
    return DEFAULT_MAX_FORWARDS if received is None else max(received - 1, 0)


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    contact: str | None = None,
    extra_headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """RFC 3261 §8.2.6: copy Via (all, in order), From, To, Call-ID and CSeq; add a To tag.

    The tag is added only when the request's To has none and `to_tag` is given
    (§8.2.6.2: a 100 Trying may go without one). Record-Route is copied for 2xx/1xx
    to dialog-creating requests (§12.1.1).
    """
    headers: list[tuple[str, str]] = [("Via", value) for value in request.headers.get_all("Via")]
    from_value = request.headers.get("From")
    to_value = request.headers.get("To")
    if from_value is not None:
        headers.append(("From", from_value))
    if to_value is not None:
        if to_tag is not None and _tag_of(request) is None:
            to_value = f"{to_value};tag={to_tag}"
        headers.append(("To", to_value))
    call_id = request.headers.get("Call-ID")
    if call_id is not None:
        headers.append(("Call-ID", call_id))
    cseq = request.headers.get("CSeq")
    if cseq is not None:
        headers.append(("CSeq", cseq))
    if status == 100 and request.headers.get("Timestamp") is not None:
        headers.append(("Timestamp", request.headers.get("Timestamp")))  # §8.2.6.1
    if 100 < status < 300 and request.method in ("INVITE", "SUBSCRIBE"):
        headers += [("Record-Route", rr) for rr in request.headers.get_all("Record-Route")]
    if contact is not None:
        headers.append(("Contact", contact))
    headers += list(extra_headers)
    if body and content_type:
        headers.append(("Content-Type", content_type))
    return Response(status, reason, headers=headers, body=body)  # None: the §21 phrase


def make_cancel(invite: Request) -> Request:
    """RFC 3261 §9.1: Request-URI, Call-ID, From, To and CSeq number of the INVITE, its top
    Via only (so the CANCEL matches the INVITE's server transaction, §9.2) and its Routes."""
    return request_within_invite_transaction(invite, "CANCEL", invite.headers.get("To") or "")


def request_within_invite_transaction(invite: Request, method: str, to: str) -> Request:
    """The CANCEL (§9.1) and the ACK for a non-2xx (§17.1.1.3) share one recipe: the INVITE's
    Request-URI, top Via only (same branch), Routes, From, Call-ID and CSeq number with
    `method`; only the To differs (the INVITE's for CANCEL, the response's for the ACK)."""
    headers: list[tuple[str, str]] = [("Via", invite.headers.get_all("Via")[0]), ("Max-Forwards", "70")]
    headers += [("Route", route) for route in invite.headers.get_all("Route")]
    headers += [
        ("From", invite.headers.get("From") or ""),
        ("To", to),
        ("Call-ID", invite.headers.get("Call-ID") or ""),
        ("CSeq", f"{invite.cseq.seq} {method}"),
    ]
    return Request(method, invite.uri_text, headers=headers)
