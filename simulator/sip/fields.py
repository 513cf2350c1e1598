"""Structured header values: Via, name-addr/addr-spec, CSeq (RFC 3261 §20, §25.1).

Each `parse_*` takes one value (a comma-list element, already unfolded) and returns an object
whose `str()` is a valid header value again. Malformed input raises `SipParseError` (400)
naming the header. Objects are plain and mutable; to change a message, write `str(obj)` back
with `msg.headers.set(...)`.

Two paths each: a parse_* first tries one exact regex for the common shape (ASCII, plain tokens,
no quoted-pairs, no IPv6, no odd whitespace) and otherwise calls its `*_careful` twin; the
quick result is identical whenever it is given (tests/sip/test_quick_path.py). A quick
result keeps its parameters as text and builds the `params` dict on first use; `branch` and
`tag` are read straight from that text.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import SipParseError
from .grammar import (
    TOKEN_CHARS,
    LazyParams,
    format_params,
    parse_params,
    plain_param,
    quote,
    scan_quoted,
    small_number,
)
from .uri import AbsoluteUri, SipUri, TelUri, format_host, parse_uri

# RFC 3261 §25.1: via-parm = sent-protocol LWS sent-by *( SEMI via-params ); LWS is allowed
# around the "/" of sent-protocol and the ":" of sent-by (RFC 4475 §3.1.1.1 uses all of it).
_VIA_RE = re.compile(
    rf"[Ss][Ii][Pp][ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([{TOKEN_CHARS}]+)[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._]+)(?:[ \t]*:[ \t]*([0-9]{1,5}))?[ \t]*(;.*)?",
    re.DOTALL,
)


class Via(LazyParams):
    """One Via value. `host` holds an IPv6 address without brackets; `rport` is the number
    in `rport=N` (None if absent or empty); `rport_requested` is True when the parameter is
    present at all (RFC 3581 §3)."""

    # `params` is built on first use from `_ptext` (plain parameter text the quick path
    # matched), since most readers only want the branch.
    __slots__ = ("transport", "host", "port", "_params", "_ptext", "protocol")

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
        protocol: str = "SIP/2.0",
    ) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self._params = dict(params or {})
        self.protocol = protocol

    @property
    def branch(self) -> str | None:
        if self._params is None:
            return plain_param(self._ptext, ";branch")
        return self._params.get("branch")

    @property
    def received(self) -> str | None:
        value = self.params.get("received")
        return value[1:-1] if value and value.startswith("[") else value

    @property
    def rport(self) -> int | None:
        value = self.params.get("rport")
        return small_number(value, 5) if value else None

    @property
    def rport_requested(self) -> bool:
        return "rport" in self.params

    @property
    def sent_by(self) -> str:
        return format_host(self.host) if self.port is None else f"{format_host(self.host)}:{self.port}"

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Via):
            return NotImplemented
        return str(self) == str(other)


# The quick path (see parse_via): ASCII character classes and plain parameters only, and
# possessive quantifiers (these pieces have disjoint delimiters, so nothing to backtrack).
_VIA_QUICK_RE = re.compile(
    rf"SIP/2\.0/([A-Za-z]++) ([A-Za-z0-9\-._]++)(?::([0-9]{{1,5}}+))?+((?:;[{TOKEN_CHARS}]++(?:=[{TOKEN_CHARS}:]++)?+)*+)"
)
_new = object.__new__


def parse_via(value: str) -> Via:
    """One Via value. The quick path takes the common shape ('SIP/2.0/TLS host:port;params',
    plain tokens, no IPv6); anything else, or anything it is unsure of, goes to the careful
    parser, which gives the same Via for whatever the quick path accepts."""
    m = _VIA_QUICK_RE.fullmatch(value)
    if m is not None:
        transport, host, port, params = m.groups()
        if port is None or len(port) < 5 or int(port) <= 65535:
            via = _new(Via)
            via.protocol = "SIP/2.0"
            via.transport = transport.upper()
            via.host = host
            via.port = None if port is None else int(port)
            via._params = None if params else {}
            via._ptext = params
            return via
    return parse_via_careful(value)


def parse_via_careful(value: str) -> Via:
    m = _VIA_RE.fullmatch(value)
    if m is None:
        raise SipParseError(f"Bad Via header: {value[:80]!r}")
    transport, host, port, params = m.groups()
    if host[0] == "[":
        host = host[1:-1]
    via = Via.__new__(Via)
    via.protocol = "SIP/2.0"
    via.transport = transport.upper()
    via.host = host
    if port is None:
        via.port = None
    else:
        via.port = int(port)
        if via.port > 65535:
            raise SipParseError(f"Bad Via header: port {port}")
    via.params = parse_params(params.rstrip(" \t"), "Via header") if params else {}
    return via


class NameAddr(LazyParams):
    """name-addr or addr-spec with header parameters (From, To, Contact, Route, ...).

    `display_name` is unquoted (None when absent); `uri` is parsed on first access from
    `uri_text`; `params` are the header's own parameters (tag, expires, q ...), never the URI's.
    """

    __slots__ = ("display_name", "uri_text", "_params", "_ptext", "_uri")

    def __init__(
        self,
        uri: SipUri | TelUri | AbsoluteUri | str,
        display_name: str | None = None,
        params: dict[str, str | None] | None = None,
    ) -> None:
        self.display_name = display_name
        self.uri_text = str(uri)
        self._uri = None if isinstance(uri, str) else uri
        self._params = dict(params or {})

    @property
    def uri(self) -> SipUri | TelUri | AbsoluteUri:
        if self._uri is None:
            self._uri = parse_uri(self.uri_text)
        return self._uri

    @uri.setter
    def uri(self, value: SipUri | TelUri | AbsoluteUri) -> None:
        self._uri = value
        self.uri_text = str(value)

    @property
    def tag(self) -> str | None:
        if self._params is None:
            return plain_param(self._ptext, ";tag")
        return self._params.get("tag")

    @property
    def expires(self) -> int | None:
        value = self.params.get("expires")
        return small_number(value, 20) if value else None

    @property
    def q(self) -> float | None:
        value = self.params.get("q")
        try:
            return float(value) if value else None
        except ValueError:
            return None

    def __str__(self) -> str:
        uri_text = self.uri_text if self._uri is None else str(self._uri)
        head = f"{quote(self.display_name)} <{uri_text}>" if self.display_name is not None else f"<{uri_text}>"
        return head + format_params(self.params)

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NameAddr):
            return NotImplemented
        return (self.display_name, self.uri, self.params) == (other.display_name, other.uri, other.params)


_DISPLAY_TOKENS_RE = re.compile(rf"[{TOKEN_CHARS}]+(?:[ \t]+[{TOKEN_CHARS}]+)*")
_ANGLE_URI_RE = re.compile(r"<([^<>\s]+)>")


# The quick path: '"Display" <uri>;params' or '<uri>;params' in printable ASCII (no '\\' in
# the display name, no space or '<>' in the URI, plain parameters).
_NAME_ADDR_QUICK_RE = re.compile(
    rf'(?:"([ !#-\[\]-~]*+)" ?)?+<([!-;=?-~]++)>((?:;[{TOKEN_CHARS}]++(?:=[{TOKEN_CHARS}:]++)?+)*+)'
)


def parse_name_addr(value: str, header: str) -> NameAddr:
    """RFC 3261 §25.1 ( name-addr / addr-spec ) *( SEMI generic-param ). The quick path
    takes the common shape; everything else goes to parse_name_addr_careful (same result
    for whatever the quick path accepts)."""
    m = _NAME_ADDR_QUICK_RE.fullmatch(value)
    if m is not None:
        addr = _new(NameAddr)
        addr.display_name, addr.uri_text, params = m.groups()
        addr._uri = None
        addr._params = None if params else {}
        addr._ptext = params
        return addr
    return parse_name_addr_careful(value, header)


def parse_name_addr_careful(value: str, header: str) -> NameAddr:
    text = value.strip(" \t")
    display: str | None = None
    if text.startswith('"'):
        display, pos = scan_quoted(text, 0, f"{header} header")
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if not text.startswith("<", pos):
            raise SipParseError(f"Bad {header} header: quoted display name without <URI>")
    else:
        pos = text.find("<")
        if pos > 0:
            words = text[:pos].strip(" \t")
            # RFC 4475 §3.1.2.15: an unquoted display name is tokens only (no ',' etc.).
            if _DISPLAY_TOKENS_RE.fullmatch(words) is None:
                raise SipParseError(f"Bad {header} header: display name {words!r} must be quoted")
            display = words
    if pos >= 0 and text.startswith("<", pos):
        m = _ANGLE_URI_RE.match(text, pos)
        if m is None:
            raise SipParseError(f"Bad {header} header: malformed <URI> in {text[:80]!r}")
        uri_text = m.group(1)
        rest = text[m.end() :].lstrip(" \t")
    else:
        # addr-spec: RFC 3261 §20.10, a URI with ',', ';' or '?' must be in <>, so the
        # first ';' starts the header parameters and a '?' is an error (RFC 4475 §3.1.2.13).
        uri_text, semi, rest = text.partition(";")
        uri_text = uri_text.rstrip(" \t")
        rest = semi + rest
        if not uri_text or any(ch in uri_text for ch in ' \t?,<>"'):
            raise SipParseError(f"Bad {header} header: {text[:80]!r}")
    addr = NameAddr.__new__(NameAddr)
    addr.display_name = display
    addr.uri_text = uri_text
    addr._uri = None
    addr.params = parse_params(rest.rstrip(" \t"), f"{header} header") if rest else {}
    return addr


class CSeq(NamedTuple):
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


_new_tuple = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path
_CSEQ_RE = re.compile(rf"[ \t]*([0-9]{{1,10}})[ \t]+([{TOKEN_CHARS}]+)[ \t]*")


def parse_cseq(value: str) -> CSeq:
    # The quick path: '<digits> <letters>' (CSeq: 1 INVITE).
    number, space, method = value.partition(" ")
    if space and 0 < len(number) < 10 and number.isdigit() and number.isascii() and method.isalpha() and method.isascii():
        return _new_tuple(CSeq, (int(number), method))
    return parse_cseq_careful(value)


def parse_cseq_careful(value: str) -> CSeq:
    m = _CSEQ_RE.fullmatch(value)
    if m is None:
        raise SipParseError(f"Bad CSeq header: {value[:80]!r}")
    number, method = m.groups()
    seq = int(number)
    # RFC 3261 §8.1.1.5: the sequence number MUST be less than 2**31.
    if seq >= 2147483648:
        raise SipParseError(f"Bad CSeq header: sequence number {seq} out of range")
    return _new_tuple(CSeq, (seq, method))
