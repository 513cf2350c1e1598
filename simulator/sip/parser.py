"""Bytes to messages: `parse_message` for a datagram, `StreamParser` for TCP/TLS.

Theory of operation
-------------------
Two paths that end in the same place, and no more: the careful parser has no fast sub-path of
its own (the quick path is the fast one). The quick path (`_parse_quick`) takes the common
well-formed message in one pass: the head decoded once (UTF-8 with surrogateescape, so any
octet survives and goes back out unchanged) and split into lines, each line split on its
first ':' into the three lists of `Headers` (no per-header objects; header names are looked
up in a table of names already seen to be tokens), then the common shapes of Via, From, To,
CSeq and Contact through the quick paths of `fields`. The moment anything is unusual — folded
lines (RFC 3261 §7.3.1), bare LF line ends, leading CRLFs, extra spaces in the start line,
whitespace before a header's colon, a missing or odd Content-Length, any value the quick
field parsers decline, any error — it steps aside and `parse_message_careful` parses the
message from scratch and raises the error if there is one. Both give the same message for
everything the quick path accepts (tests/sip/test_quick_path.py). A parsed message that
came in clean keeps its head octets, so sending it on unchanged costs one concatenation.

The quick path also exists compiled (`_speedups.pyx`, built by `make venv` when a C compiler
is there): the same decisions made on the octets in C, about twice as fast. parse_message
uses it when it is built and falls back to the careful parser when it declines; the tests
hold both quick paths to the careful parser's results.

Framing (RFC 3261 §18.3): in a datagram, octets past Content-Length are ignored and a missing
Content-Length means "to the end"; on a stream Content-Length is mandatory, and a missing,
negative, non-numeric or conflicting one is a framing error after which the connection must
be closed.

`parse_message` then checks, eagerly, what every layer above relies on — the Request-URI, Via,
From, To, CSeq (and that its method matches the request's), Contact and Max-Forwards — so a
malformed one is a `SipParseError` here and not a surprise later; the parsed values are
cached, so those checks cost nothing afterwards. Missing or repeated headers are *not* errors
at this level (RFC 4475 §3.3.1, §3.3.8): answering them is the UAS's job.
"""

from __future__ import annotations

import re

from .errors import SipParseError
from .fields import parse_cseq, parse_name_addr, parse_via
from .grammar import TOKEN_RE, small_number
from .headers import COMPACT_FORMS, KEY_OF, Headers, new_key
from .message import Message, Request, Response
from .speedups import SPEEDUPS
from .uri import SipUri, is_plain_sip_uri

_FOLD_RE = re.compile(r"\r\n[ \t]+")
_LINE_END_RE = re.compile(r"\r?\n")
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
_LF_RE = re.compile(rb"\r?\n")
_REQUEST_LINE_RE = re.compile(r"([^ \t]+) +([^ \t]+) +([^ \t]+) *")
_RESPONSE_LINE_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+) +([0-9]+)(?: (.*))?", re.IGNORECASE | re.DOTALL)
_VERSION_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+)", re.IGNORECASE)
_STREAM_LENGTH_RE = re.compile(rb"\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)

_new = object.__new__

MAX_HEAD_OCTETS = 65536
# A declared Content-Length beyond this would have us buffer without bound: 513 and close.
MAX_MESSAGE_OCTETS = 1 << 20


def parse_message(data: bytes) -> Request | Response:
    """Parse one datagram (or one framed stream message) into a Request or Response."""
    if type(data) is not bytes:
        data = bytes(data)
    if _compiled_quick is not None:
        return _compiled_quick(data) or parse_message_careful(data)
    return parse_message_python(data)


def parse_message_python(data: bytes) -> Request | Response:
    """parse_message with the quick path in Python (what runs when _speedups is not built)."""
    end = data.find(b"\r\n\r\n")
    if end > 0 and data[0] != 13 and data[0] != 10:
        text = data[:end].decode("utf-8", "surrogateescape")
        lines = text.splitlines()
        # Every line break was a CRLF (the only two-character break splitlines knows): no
        # bare CR or LF, and none of the other breaks splitlines honours, inside a line.
        if sum(map(len, lines)) + 2 * len(lines) - 2 == len(text):
            message = _parse_quick(data, end, lines)
            if message is not None:
                return message
    return parse_message_careful(data)


def _keys_of(names: list[str]) -> list[str] | None:
    """Canonical keys for header names, or None when one is not a token."""
    keys = []
    for name in names:
        key = KEY_OF.get(name)
        if key is None:
            if TOKEN_RE.fullmatch(name) is None:
                return None
            key = new_key(name)
        keys.append(key)
    return keys


def _parse_quick(data: bytes, end: int, lines: list[str]) -> Request | Response | None:
    """The common, well-formed message in one pass, or None: then parse_message_careful
    decides, and raises whatever error there is. It gives the same message (headers,
    cache, `_raw`) as the careful path for every input it accepts — tests/sip/
    test_quick_path.py holds it to that over the corpus and generated messages."""
    first = lines[0]
    message: Request | Response
    if first[:8] == "SIP/2.0 ":
        code = first[8:11]
        if not (len(first) >= 12 and first[11] == " " and code.isdigit() and code.isascii() and code[0] in "123456"):
            return None
        message = _new(Response)
        message.status = int(code)
        message.reason = first[12:]
        method = None
    else:
        parts = first.split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0":
            return None
        method, uri_text = parts[0], parts[1]
        if not (method.isalpha() and method.isascii()) or not is_plain_sip_uri(uri_text):
            return None
        message = _new(Request)
        message.method = method
        message._uri_text = uri_text
        message._uri = None
        message._uri_given = False
    names = []
    values = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        names.append(name)
        values.append(value.strip(" \t"))
    try:
        # A KeyError is the rare name not seen before; no scan of keys for a miss.
        keys = list(map(KEY_OF.__getitem__, names))
    except KeyError:
        keys = _keys_of(names)
        if keys is None:
            return None
    # Framing: exactly one Content-Length, and the body there.
    if keys.count("content-length") != 1:
        return None
    length_text = values[keys.index("content-length")]
    # small_number(), inline: 1-10 ASCII digits.
    if not (length_text.isdigit() and length_text.isascii() and len(length_text) <= 10):
        return None
    length = int(length_text)
    body_start = end + 4
    if body_start + length > len(data):
        return None
    headers = _new(Headers)
    headers._names = names
    headers._values = values
    headers._keys = keys
    cache: dict[str, object] = {}
    headers._cache = cache
    headers._raw = (first, data[:body_start], length)
    message.headers = headers
    message.body = data[body_start : body_start + length]
    # The checks of _check(), in its order, on the common shapes; any doubt goes back to the
    # careful path (which then raises the error, if there is one).
    try:
        if keys.count("via") == 1 and "," not in (value := values[keys.index("via")]):
            cache["via"] = [parse_via(value)]
        else:
            cache["via"] = [parse_via(v) for v in headers._all("via")]
        cache["from"] = parse_name_addr(values[keys.index("from")], "From") if "from" in keys else None
        cache["to"] = parse_name_addr(values[keys.index("to")], "To") if "to" in keys else None
        cseq = cache["cseq"] = parse_cseq(values[keys.index("cseq")]) if "cseq" in keys else None
        count = keys.count("contact")
        if count:
            if count == 1 and "," not in (value := values[keys.index("contact")]) and value != "*":
                cache["contact"] = [parse_name_addr(value, "Contact")]
            else:
                message.contacts  # noqa: B018
        if "max-forwards" in keys:
            value = values[keys.index("max-forwards")]
            if not (value.isdigit() and value.isascii() and len(value) <= 10):
                return None
    except SipParseError:
        return None
    if method is not None and cseq is not None and cseq.method != method:
        return None
    return message


# The same quick path compiled (see speedups.py), or None.
_compiled_quick = SPEEDUPS.parse_quick if SPEEDUPS is not None else None


def parse_message_careful(data: bytes) -> Request | Response:
    """parse_message for any input: leading CRLFs, bare LF, folding, odd spacing, errors."""
    if not isinstance(data, bytes):
        data = bytes(data)
    head, body_start = _normalise_head(data)
    folded = "\n " in head or "\n\t" in head
    text = _FOLD_RE.sub(" ", head) if folded else head
    lines = text.split("\r\n")
    message = _start_line(lines[0])
    headers, names_as_written = _header_fields(lines)
    message.headers = headers
    rest = data[body_start:]
    count = headers._keys.count("content-length")
    length = _content_length(headers, count) if count else None
    if length is None:
        # No Content-Length: a datagram runs to its end. Conflicting ones (RFC 4475 §3.3.9): a
        # datagram still has one end, so take it all and leave the refusal to the UAS, which
        # sees both headers.
        message.body = rest
    elif length > len(rest):
        raise SipParseError(f"Content-Length {length} is larger than the {len(rest)}-octet body")
    else:
        message.body = rest[:length] if length != len(rest) else rest
    # Octets that are exactly what the message says (one CRLF per line, nothing unfolded or
    # normalised, a canonical start line, a Content-Length) are kept to re-send as they came.
    if (
        length is not None
        and not folded
        and names_as_written
        and message.start_line() == lines[0]
        and data[:body_start] == head.encode("utf-8", "surrogateescape") + b"\r\n\r\n"
    ):
        headers._raw = (lines[0], data[:body_start], len(message.body))
    _check(message)
    return message


def _normalise_head(data: bytes) -> tuple[str, int]:
    """Strip leading CRLFs (RFC 3261 §7.5), accept bare-LF line ends, and a head that runs to
    the end of the datagram. Returns (CRLF-joined head text, body offset)."""
    stripped = data.lstrip(b"\r\n")
    offset = len(data) - len(stripped)
    if not stripped:
        raise SipParseError("Empty message")
    m = _HEAD_END_RE.search(stripped)
    if m is None:
        head, body_start = stripped, len(data)
    else:
        head, body_start = stripped[: m.start()], offset + m.end()
    text = head.decode("utf-8", "surrogateescape")
    lines = _LINE_END_RE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    if any("\r" in line for line in lines):
        raise SipParseError("Bare CR in the message head")
    return "\r\n".join(lines), body_start


def _start_line(line: str) -> Message:
    if line[:4].upper() == "SIP/":
        m = _RESPONSE_LINE_RE.fullmatch(line)
        if m is None:
            raise SipParseError("Malformed Status-Line")
        major, minor, code, reason = m.groups()
        if (major.lstrip("0"), minor.lstrip("0")) != ("2", ""):
            raise SipParseError("Version Not Supported", 505)
        if len(code) != 3 or not 100 <= int(code) <= 699:
            raise SipParseError(f"Status code {code[:12]} out of range")
        response = Response.__new__(Response)
        response.status = int(code)
        response.reason = reason or ""
        return response
    m = _REQUEST_LINE_RE.fullmatch(line)
    if m is None:
        raise SipParseError("Malformed Request-Line")
    method, uri, version = m.groups()
    v = _VERSION_RE.fullmatch(version)
    if v is None:
        raise SipParseError("Malformed Request-Line: bad SIP-Version")
    if (v.group(1).lstrip("0"), v.group(2).lstrip("0")) != ("2", ""):
        raise SipParseError("Version Not Supported", 505)
    if TOKEN_RE.fullmatch(method) is None:
        raise SipParseError(f"Malformed Request-Line: method {method[:30]!r}")
    # RFC 4475 §3.1.2.9/§3.1.2.10: extra SP is tolerated here and never re-emitted, since
    # `to_bytes()` rebuilds the start line.
    request = Request.__new__(Request)
    request.method = method
    request._uri_text = uri
    request._uri = None
    request._uri_given = False
    return request


def _header_fields(lines: list[str]) -> tuple[Headers, bool]:
    """The header lines (unfolded) as Headers, and whether every name was written without
    whitespace before its colon."""
    names: list[str] = []
    values: list[str] = []
    as_written = True
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"Malformed header line {name[:40]!r}")
        # RFC 3261 §7.3.1 HCOLON: whitespace may sit between the name and the colon.
        stripped = name.rstrip(" \t")
        if TOKEN_RE.fullmatch(stripped) is None:
            raise SipParseError(f"Malformed header name {stripped[:40]!r}")
        as_written = as_written and len(stripped) == len(name)
        names.append(stripped)
        values.append(value.strip(" \t"))
    lowered = list(map(str.lower, names))
    return Headers._from_parsed(names, values, list(map(COMPACT_FORMS.get, lowered, lowered))), as_written


def _content_length(headers: Headers, count: int) -> int | None:
    """The declared length, or None when several Content-Length fields disagree."""
    values = headers.lines("content-length") if count > 1 else [headers._values[headers._keys.index("content-length")]]
    lengths = set(map(small_number, values))
    if None in lengths:
        bad = next(v for v in values if small_number(v) is None)
        raise SipParseError(f"Bad Content-Length header: {bad[:30]!r}")
    return lengths.pop() if len(lengths) == 1 else None


def _check(message: Message) -> None:
    # Parse now, so that a bad Via/From/To/CSeq/Contact is a 400 here; the results fill the
    # same cache the lazy properties of Message read (and equal what they would compute).
    headers = message.headers
    cache = headers._cache
    first = headers._first
    cache["via"] = [parse_via(v) for v in headers._all("via")]
    value = first("from")
    cache["from"] = parse_name_addr(value, "From") if value is not None else None
    value = first("to")
    cache["to"] = parse_name_addr(value, "To") if value is not None else None
    value = first("cseq")
    cseq = cache["cseq"] = parse_cseq(value) if value is not None else None
    if "contact" in headers._keys:
        message.contacts  # noqa: B018
    if "max-forwards" in headers._keys:
        message.max_forwards  # noqa: B018
    if isinstance(message, Request):
        uri_text = message.uri_text
        if uri_text.startswith("<"):
            raise SipParseError("Bad Request-URI: enclosed in <>")
        if not is_plain_sip_uri(uri_text):
            try:
                uri = message.uri
            except SipParseError as error:
                raise SipParseError(f"Bad Request-URI: {error.reason}") from None
            # RFC 3261 §19.1.1 (table 1): headers are not allowed in a Request-URI.
            if isinstance(uri, SipUri) and uri.headers:
                raise SipParseError("Bad Request-URI: it carries URI headers")
        if cseq is not None and cseq.method != message.method:
            raise SipParseError(f"CSeq method {cseq.method} does not match request method {message.method}")


class StreamParser:
    """Frames SIP messages out of a TCP/TLS byte stream by Content-Length (RFC 3261 §18.3).

    `feed(chunk)` returns the messages completed so far, in order. CRLFs between messages
    (RFC 5626 §3.5.1 keep-alives) are skipped and counted in `keepalives`. Bare-LF line ends
    are tolerated as parse_message tolerates them: the head may end in LF LF too.

    Errors never cost the messages before them, so the result does not depend on how the
    stream was cut into chunks: a call that completed messages returns them, and the error
    found after them is raised by the next call (`holds_error` says one is waiting). Two kinds
    (see SipParseError for the attributes a transport answers from):
    - a framing error (Content-Length missing, negative, non-numeric or conflicting; a head
      over `max_head_octets` or a message over `max_message_octets`, both 513) is `fatal`:
      it is raised on that call and on every later one, and the connection must be closed
      (after answering from the error's `octets`, the head of the message, when there is one);
    - a message that frames correctly but does not parse raises its error once, with the
      framed message as `octets`, and the stream goes on after it: call feed() again (with
      b"" when nothing new came) for the messages that follow.
    """

    def __init__(self, max_head_octets: int = MAX_HEAD_OCTETS, max_message_octets: int = MAX_MESSAGE_OCTETS) -> None:
        self._buffer = bytearray()
        self._fatal: SipParseError | None = None
        self._deferred: SipParseError | None = None
        self.max_head_octets = max_head_octets
        self.max_message_octets = max_message_octets
        self.keepalives = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def holds_error(self) -> bool:
        """True when the next feed() raises: an error found after the messages it returned."""
        return self._deferred is not None or self._fatal is not None

    def feed(self, chunk: bytes) -> list[Request | Response]:
        if self._fatal is not None:
            raise self._fatal
        self._buffer += chunk
        if self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        messages: list[Request | Response] = []
        try:
            self._frame(messages)
        except SipParseError as error:
            if error.fatal:
                self._fatal = error
                self._buffer.clear()
            if not messages:
                raise
            if not error.fatal:
                self._deferred = error
        return messages

    def _frame(self, messages: list[Request | Response]) -> None:
        """Append every complete message in the buffer to `messages`; raise at the first error."""
        buffer = self._buffer
        while buffer:
            if buffer[0] in (13, 10):
                stripped = buffer.lstrip(b"\r\n")
                skipped = len(buffer) - len(stripped)
                # Count whole CRLF pairs (a keep-alive ping is CRLFCRLF, a pong CRLF).
                self.keepalives += max(1, buffer[:skipped].count(b"\r\n"))
                del buffer[:skipped]
                continue
            # The head ends at the first empty line: CRLF CRLF, or — bare LF line ends being
            # tolerated here as parse_message tolerates them — LF LF, CRLF LF or LF CRLF.
            # ("\n\r\n" ends a CRLF head; "\n\n" never occurs inside one.)
            crlf = buffer.find(b"\n\r\n")
            bare = buffer.find(b"\n\n", 0, crlf + 1 if crlf >= 0 else len(buffer))
            if bare >= 0:
                head = _LF_RE.sub(b"\r\n", bytes(buffer[: bare + 1]))
                head_octets = bare + 2
            elif crlf >= 0:
                head = bytes(buffer[: crlf + 1])
                head_octets = crlf + 3
                if head.count(b"\n") != head.count(b"\r\n"):
                    head = _LF_RE.sub(b"\r\n", head)
            else:
                head_octets = -1  # not all here yet
            if head_octets > self.max_head_octets or (head_octets < 0 and len(buffer) > self.max_head_octets):
                # Too large whether or not its end has come: answer from the complete lines
                # within the limit (the same octets however the stream was cut).
                cut = buffer.rfind(b"\n", 0, self.max_head_octets)
                raise _framing_error("Message head too large", 513, bytes(buffer[: cut + 1]) if cut > 0 else None)
            if head_octets < 0:
                return
            octets = bytes(buffer[:head_octets])
            try:
                length = _stream_length(head)
            except SipParseError as error:
                raise _framing_error(error.reason, error.status, octets) from None
            total = head_octets + length
            if total > self.max_message_octets:
                raise _framing_error("Message Too Large", 513, octets)
            if len(buffer) < total:
                return
            data = bytes(buffer[:total])
            del buffer[:total]
            try:
                messages.append(parse_message(data))
            except SipParseError as error:
                error.octets = data  # the framed message, so a UAS can still answer it (§8.2.6)
                raise


def _framing_error(reason: str, status: int, octets: bytes | None) -> SipParseError:
    error = SipParseError(reason, status)
    error.fatal = True
    error.octets = octets
    return error


def _stream_length(head: bytes) -> int:
    """The Content-Length of a CRLF-joined head (ending in CRLF), which a stream requires."""
    values = [v.strip(b" \t") for v in _STREAM_LENGTH_RE.findall(head)]
    if not values:
        raise SipParseError("Missing Content-Length on a stream transport")
    if b"" in values:
        # A folded value ("Content-Length:\r\n 42"): let the full header parser find it.
        text = head[:-2].decode("utf-8", "surrogateescape")
        lines = _FOLD_RE.sub(" ", text).split("\r\n")
        values = [v.encode("utf-8", "surrogateescape") for v in _header_fields(lines)[0].lines("l")]
    lengths = set()
    for value in values:
        if not value.isdigit() or len(value) > 10:
            raise SipParseError(f"Bad Content-Length header: {value[:30]!r}")
        lengths.add(int(value))
    if len(lengths) != 1:
        raise SipParseError("Conflicting Content-Length headers on a stream transport")
    return lengths.pop()
