"""SIP requests and responses (RFC 3261 §7) with lazily parsed, cached structured headers."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import SipParseError
from .fields import CSeq, NameAddr, Via, parse_cseq, parse_name_addr, parse_via
from .grammar import TOKEN_RE, small_number
from .headers import Headers
from .uri import AbsoluteUri, SipUri, TelUri, parse_uri

# RFC 3261 §21 and the common extensions: the reason phrase `Response` writes by default.
REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority",
    420: "Bad Extension", 421: "Extension Required", 422: "Session Interval Too Small",
    423: "Interval Too Brief", 429: "Provide Referrer Identity", 430: "Flow Failed",
    433: "Anonymity Disallowed", 439: "First Hop Lacks Outbound Support",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 482: "Loop Detected",
    483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event",
    491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip


class Message:
    """What requests and responses share: headers, body, structured header access."""

    __slots__ = ("headers", "body")

    def __init__(self, headers: Iterable[tuple[str, str]] | Headers = (), body: bytes = b"") -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError("body must be bytes")
        self.body = bytes(body)

    # -- structured headers (parsed on first access, cached until the header changes) -------
    @property
    def vias(self) -> list[Via]:
        cache = self.headers._cache
        vias = cache.get("via")
        if vias is None:
            vias = cache["via"] = [parse_via(v) for v in self.headers._all("via")]
        return vias  # type: ignore[return-value]

    @property
    def top_via(self) -> Via | None:
        vias = self.headers._cache.get("via")  # read on every message: the cached case inline
        if vias is None:
            vias = self.vias
        return vias[0] if vias else None

    def _name_addr(self, key: str, header: str) -> NameAddr | None:
        cache = self.headers._cache
        if key in cache:
            return cache[key]  # type: ignore[return-value]
        value = self.headers._first(key)
        addr = cache[key] = parse_name_addr(value, header) if value is not None else None
        return addr

    @property
    def from_(self) -> NameAddr | None:
        try:
            return self.headers._cache["from"]  # type: ignore[return-value]
        except KeyError:
            return self._name_addr("from", "From")

    @property
    def to(self) -> NameAddr | None:
        try:
            return self.headers._cache["to"]  # type: ignore[return-value]
        except KeyError:
            return self._name_addr("to", "To")

    @property
    def call_id(self) -> str | None:
        headers = self.headers  # not a list header: the first field as it is
        try:
            return headers._values[headers._keys.index("call-id")]
        except ValueError:
            return None

    @property
    def cseq(self) -> CSeq | None:
        cache = self.headers._cache
        if "cseq" in cache:
            return cache["cseq"]  # type: ignore[return-value]
        value = self.headers._first("cseq")
        cseq = cache["cseq"] = parse_cseq(value) if value is not None else None
        return cseq

    def _addr_list(self, key: str, header: str) -> list[NameAddr]:
        cache = self.headers._cache
        addrs = cache.get(key)
        if addrs is None:
            addrs = cache[key] = [parse_name_addr(v, header) for v in self.headers._all(key)]
        return addrs  # type: ignore[return-value]

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; `Contact: *` (RFC 3261 §10.2.2) gives [] and `contact_star`."""
        cache = self.headers._cache
        contacts = cache.get("contact")
        if contacts is None:
            values = self.headers._all("contact")
            if "*" in values:
                if len(values) > 1:
                    raise SipParseError("Bad Contact header: '*' mixed with other contacts")
                contacts = []
            else:
                contacts = [parse_name_addr(v, "Contact") for v in values]
            cache["contact"] = contacts
        return contacts  # type: ignore[return-value]

    @property
    def contact_star(self) -> bool:
        return not self.contacts and self.headers._first("contact") == "*"

    @property
    def routes(self) -> list[NameAddr]:
        return self._addr_list("route", "Route")

    @property
    def record_routes(self) -> list[NameAddr]:
        return self._addr_list("record-route", "Record-Route")

    @property
    def max_forwards(self) -> int | None:
        value = self.headers._first("max-forwards")
        if value is None:
            return None
        number = small_number(value)
        if number is None:
            raise SipParseError(f"Bad Max-Forwards header: {value[:40]!r}")
        return number

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased and without parameters ("application/sdp")."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        kind, slash, sub = value.partition(";")[0].lower().partition("/")
        kind = kind.strip(" \t")
        sub = sub.strip(" \t")
        if not slash or TOKEN_RE.fullmatch(kind) is None or TOKEN_RE.fullmatch(sub) is None:
            raise SipParseError(f"Bad Content-Type header: {value[:60]!r}")
        return f"{kind}/{sub}"

    # -- serializing ------------------------------------------------------------------------
    def start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The message on the wire; Content-Length is always written, as len(body)."""
        body = self.body
        start = self.start_line()
        # A parsed, unchanged message goes out as the octets it came in as (see Headers._raw).
        raw = self.headers._raw
        if raw is not None and raw[0] == start and raw[2] == len(body):
            return raw[1] + body
        out = [start, "\r\n"]
        length_written = False
        headers = self.headers
        for name, value, key in zip(headers._names, headers._values, headers._keys):
            if key == "content-length":
                if length_written:
                    continue
                value = str(len(body))
                length_written = True
            out.append(f"{name}: {value}\r\n")
        if not length_written:
            out.append(f"Content-Length: {len(body)}\r\n")
        out.append("\r\n")
        return "".join(out).encode("utf-8", "surrogateescape") + body

    def __eq__(self, other: object) -> bool:
        """Same start line, same header fields in the same order, same body. Content-Length
        is left out: it follows from the body, and to_bytes() writes it."""
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Message)
        return (
            self.start_line() == other.start_line()
            and self.body == other.body
            and _fields_without_length(self.headers) == _fields_without_length(other.headers)
        )

    __hash__ = None  # type: ignore[assignment]


def _fields_without_length(headers: Headers) -> list[tuple[str, str]]:
    return [(n, v) for n, v, k in zip(headers._names, headers._values, headers._keys) if k != "content-length"]


class Request(Message):
    """A request. `uri` is parsed from `uri_text` on first access.

    A Request-URI given as text (or parsed off the wire) goes out exactly as written, even
    after `uri` has been read; one given as a URI object goes out as `str()` of that object
    at the time of sending, so changing the object in place changes the request.
    """

    __slots__ = ("method", "_uri_text", "_uri", "_uri_given")

    def __init__(
        self,
        method: str,
        uri: SipUri | TelUri | AbsoluteUri | str,
        headers: Iterable[tuple[str, str]] | Headers = (),
        body: bytes = b"",
    ) -> None:
        if TOKEN_RE.fullmatch(method) is None:
            raise ValueError(f"method {method!r} is not a token")
        super().__init__(headers, body)
        self.method = method
        self.uri = uri  # type: ignore[assignment]

    @property
    def uri(self) -> SipUri | TelUri | AbsoluteUri:
        if self._uri is None:
            self._uri = parse_uri(self._uri_text)
        return self._uri

    @uri.setter
    def uri(self, value: SipUri | TelUri | AbsoluteUri | str) -> None:
        text = str(value)
        if not text or any(ch in text for ch in " \t\r\n"):
            raise ValueError(f"Request-URI {text!r} is empty or holds whitespace")
        self._uri_text = text
        self._uri_given = not isinstance(value, str)
        self._uri = value if self._uri_given else None  # type: ignore[assignment]

    @property
    def uri_text(self) -> str:
        return str(self._uri) if self._uri_given else self._uri_text

    def start_line(self) -> str:
        return f"{self.method} {self.uri_text} SIP/2.0"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri_text}>"


class Response(Message):
    __slots__ = ("status", "reason")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] | Headers = (),
        body: bytes = b"",
    ) -> None:
        if not isinstance(status, int) or not 100 <= status <= 699:
            raise ValueError(f"status {status!r} is not in 100..699")
        if reason is not None and ("\r" in reason or "\n" in reason):
            raise ValueError("reason phrase contains CR or LF")
        super().__init__(headers, body)
        self.status = status
        self.reason = reason if reason is not None else REASON_PHRASES.get(status, "Unknown")

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"
