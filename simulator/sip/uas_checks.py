"""What a UAS core checks before it acts on a request (RFC 3261 §8.2), as one function.

`check_request(request, policy)` returns the `Rejection` a UAS must answer with, or None
when the request may be processed. The order is the RFC's: the request must be readable
(the mandatory headers, once each — RFC 4475 §3.3.1/§3.3.8), then method (§8.2.1),
then headers: Request-URI scheme (§8.2.2.1) and Require (§8.2.2.3), then content
(§8.2.3), then whether we can answer in a form the client accepts (§8.2.6 / RFC 4475
§3.3.15). Nothing here sends: the caller builds the response with `rejection_response`
and hands it to its server transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from simulator.sip import Request, Response, SipParseError, parse_message
from simulator.sip.builders import MAGIC_COOKIE, make_response

# RFC 3261 and the extensions a Teams/SBC deployment meets: a method outside this set is
# one we do not even recognise (501); one inside it that the policy lacks gets 405.
KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "PRACK", "UPDATE",
    "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH",
})

# RFC 3261 §20: headers a request carries at most once (RFC 4475 §3.3.8 doubles them).
SINGLE_VALUED = ("To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type")
MANDATORY = ("To", "From", "Call-ID", "CSeq", "Via")  # §8.1.1 (Max-Forwards: RFC 2543 peers omit it)


@dataclass(frozen=True)
class UasPolicy:
    """What this UAS supports; everything else is refused with the RFC's status."""

    methods: frozenset[str] = frozenset({"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"})
    uri_schemes: frozenset[str] = frozenset({"sip", "sips", "tel"})
    extensions: frozenset[str] = frozenset()  # option tags we honour in Require
    content_types: frozenset[str] = frozenset({"application/sdp"})
    content_encodings: frozenset[str] = frozenset({"identity"})
    registrar: bool = False  # a registrar also accepts REGISTER (RFC 3261 §10.3)

    def allowed(self) -> list[str]:
        methods = set(self.methods) | ({"REGISTER"} if self.registrar else set())
        return sorted(methods)


ENDPOINT = UasPolicy()
REGISTRAR = UasPolicy(registrar=True)


@dataclass(frozen=True)
class Rejection:
    status: int
    why: str  # for the event log and the Warning-free reason phrase
    headers: tuple[tuple[str, str], ...] = field(default=())


def _scheme(uri_text: str) -> str:
    return uri_text.split(":", 1)[0].lower() if ":" in uri_text else ""


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def check_request(request: Request, policy: UasPolicy = ENDPOINT) -> Rejection | None:
    try:
        return _check(request, policy)
    except SipParseError as exc:
        # A header the message layer could not read lazily: its error names the status.
        return Rejection(exc.status, exc.reason)


def _check(request: Request, policy: UasPolicy) -> Rejection | None:
    headers = request.headers
    # Readable at all (RFC 4475 §3.3.1 insuf, §3.3.8 multi01): 400 naming the header.
    for name in MANDATORY:
        if headers.get(name) is None:
            return Rejection(400, f"Missing {name} header")
    for name in SINGLE_VALUED:
        # get_all splits comma lists; To/From/CSeq/Call-ID never legitimately contain
        # one at top level, so more than one value means the header was repeated.
        if len(headers.get_all(name)) > 1:
            return Rejection(400, f"Multiple {name} values")
    if request.cseq.method != request.method:
        return Rejection(400, "CSeq method does not match the request method")  # §8.1.1.5
    if request.top_via.branch == MAGIC_COOKIE:
        # RFC 4475 §3.2.1: the bare magic cookie is no transaction id.
        return Rejection(400, "Via branch has no transaction identifier")

    # §8.2.1 method inspection.
    method = request.method
    allow = (("Allow", ", ".join(policy.allowed())),)
    if method == "REGISTER" and policy.registrar:
        pass
    elif method not in policy.methods:
        if method in KNOWN_METHODS:
            return Rejection(405, f"{method} not allowed here", allow)
        return Rejection(501, f"{method} not implemented", allow)

    # §8.2.2.1 Request-URI: a scheme we do not serve is 416, whatever the To says.
    if _scheme(request.uri_text) not in policy.uri_schemes:
        return Rejection(416, f"URI scheme {_scheme(request.uri_text)!r} not supported")
    if method == "REGISTER":
        # §10.3 step 3 / RFC 4475 §3.3.4: the To of a REGISTER is a SIP or SIPS AOR.
        to_uri = headers.get("To") or ""
        to_uri = to_uri[to_uri.index("<") + 1:] if "<" in to_uri else to_uri
        if _scheme(to_uri.strip()) not in ("sip", "sips"):
            return Rejection(400, "To of a REGISTER must be a SIP or SIPS URI")

    # §8.2.2.3 Require: every option tag must be one we support (never for ACK/CANCEL).
    if method not in ("ACK", "CANCEL"):
        unsupported = [tag for tag in headers.get_all("Require") if tag.strip() not in policy.extensions]
        if unsupported:
            return Rejection(420, "Bad Extension", (("Unsupported", ", ".join(unsupported)),))

    # §8.2.3 content processing.
    if request.body:
        content_type = headers.get("Content-Type")
        if content_type is not None and _media_type(content_type) not in policy.content_types:
            return Rejection(415, f"Content-Type {_media_type(content_type)} not supported",
                             (("Accept", ", ".join(sorted(policy.content_types))),))
        for encoding in headers.get_all("Content-Encoding"):
            if encoding.strip().lower() not in policy.content_encodings:
                return Rejection(415, f"Content-Encoding {encoding.strip()} not supported",
                                 (("Accept-Encoding", ", ".join(sorted(policy.content_encodings))),))

    # We answer an INVITE with SDP; a client that accepts no SDP cannot read it (RFC 4475 §3.3.15).
    if method == "INVITE":
        accepted = [_media_type(v) for v in headers.get_all("Accept")]
        if accepted and not {"application/sdp", "application/*", "*/*"} & set(accepted):
            return Rejection(406, "Accept does not include application/sdp",
                             (("Warning", '399 - "application/sdp required"'),))
    return None


def rejection_response(request: Request, rejection: Rejection, to_tag: str | None) -> Response:
    # A 400's reason phrase names the defect (as RFC 4475's examples suggest); others keep §21's.
    reason = f"Bad Request ({rejection.why})" if rejection.status == 400 else None
    return make_response(request, rejection.status, reason, to_tag=to_tag, extra_headers=list(rejection.headers))


# RFC 3261 §8.2.6.1: what a response must copy from its request (long and compact names).
_COPIED = {"via": "Via", "v": "Via", "from": "From", "f": "From", "to": "To", "t": "To",
           "call-id": "Call-ID", "i": "Call-ID", "cseq": "CSeq"}
_COPIED_ORDER = ("Via", "From", "To", "Call-ID", "CSeq")
# Any line end, bare CR included: the answer is built from whatever lines can be read.
_LINE_END_RE = re.compile(rb"\r\n|\r|\n")
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")


def answer_unparseable(data: bytes, error: SipParseError) -> Response | None:
    """A stateless response to a request the parser refused, built from its raw lines.

    No transaction can hold what cannot be parsed, but the sender still deserves the status
    the error names (RFC 4475 §3.1.2 asks for 400/505/...; 513 for a message too large):
    copy Via, From, To, Call-ID and CSeq verbatim, as §8.2.6.1 would from a parsed request.
    `data` is the message, or only its head (a StreamParser framing error's `octets`). Any
    line end counts here, a bare CR too, so a CR inside a header cuts it short rather than
    silencing the answer.

    Never raises, whatever the octets: returns the Response, or None when the bytes are a
    response (§18.1.2: dropped), carry no Via to send the answer back along, or when one of
    the copied headers is itself the defect (the answer would not parse: stay silent).
    """
    lines = _head_lines(data)
    if not lines or lines[0][:4].upper() == "SIP/" or " SIP/" not in lines[0].upper():
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation (§7.3.1)
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip(" \t"))
            continue
        name, sep, value = line.partition(":")
        canonical = _COPIED.get(name.strip(" \t").lower())
        if sep and canonical:
            headers.append((canonical, value.strip(" \t")))
    if not any(name == "Via" for name, _ in headers):
        return None
    headers.sort(key=lambda item: _COPIED_ORDER.index(item[0]))
    # The phrase is the parser's own text; keep it to printable ASCII all the same.
    reason = "".join(ch if " " <= ch <= "~" else "?" for ch in error.reason) if error.status == 400 else None
    response = Response(error.status, reason, headers=headers)
    try:
        parse_message(response.to_bytes())
    except SipParseError:
        return None  # the defect is in a header we would echo: never re-emit it, stay silent
    return response


def _head_lines(data: bytes) -> list[str]:
    """The lines of the head, as octet-preserving text: leading CRLFs skipped (RFC 3261 §7.5),
    the head ending where the parser ends it (an empty line), split at any line end within."""
    head = _HEAD_END_RE.split(data.lstrip(b"\r\n"), maxsplit=1)[0]
    return [line.decode("utf-8", "surrogateescape") for line in _LINE_END_RE.split(head) if line]
