"""SIP, SIPS and TEL URIs (RFC 3261 §19.1, §25.1; RFC 3966; RFC 5118 for IPv6).

`parse_uri(text)` returns a `SipUri`, a `TelUri`, or for any other scheme an `AbsoluteUri`
(RFC 3261 §8.2.2.1: a UAS answers 416 to a scheme it does not support, so such a URI must
parse). %-escapes are decoded exactly once, and only where the grammar allows them: user,
password, parameters and headers; never in the host (RFC 4475 §3.1.1.3). `str(uri)` escapes
again whatever the grammar does not allow literally, so it always re-parses to an equal URI.
IPv6 hosts are held without their brackets (`host == "2001:db8::1"`); `str()` adds them back.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from .errors import SipParseError
from .grammar import LazyParams, small_number
from .speedups import SPEEDUPS

# RFC 3261 §25.1 character classes, as the sets that may appear unescaped.
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_UNRESERVED = _ALNUM + "-_.!~*'()"
_USER_OK = frozenset(_UNRESERVED + "&=+$,;?/")
_PASSWORD_OK = frozenset(_UNRESERVED + "&=+$,")
_PARAM_OK = frozenset(_UNRESERVED + "[]/:&+$")
_HEADER_OK = frozenset(_UNRESERVED + "[]/?:+$")
_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# A common, well-formed SIP URI in one match: no escapes, no password, no headers.
# A common, well-formed SIP URI in one match: no escapes, no password, no headers, parameters
# `*( ";" pname [ "=" pvalue ] )` of plain paramchars (RFC 3261 §25.1: no '=' inside either).
# Possessive quantifiers: the pieces have disjoint delimiters, so there is nothing to retry.
_PARAMCHARS = r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]++"
_FAST_RE = re.compile(
    r"([sS][iI][pP][sS]?):(?:([A-Za-z0-9\-_.!~*'()&=+$,/]++)@)?+([A-Za-z0-9\-.]++)(?::([0-9]{1,5}+))?+"
    rf"((?:;{_PARAMCHARS}(?:={_PARAMCHARS})?+)*+)"
)
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9\-._]+")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_TEL_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()pPwW]+")


def _decode(text: str, allowed: frozenset[str], what: str) -> str:
    for ch in text:
        if ch not in allowed and ch != "%":
            raise SipParseError(f"Bad URI: {ch!r} not allowed in {what}")
    if "%" in text:
        if _ESCAPE_RE.search(text):
            raise SipParseError(f"Bad URI: broken %-escape in {what}")
        return unquote(text, errors="surrogateescape")
    return text


def _encode(text: str, allowed: frozenset[str]) -> str:
    if all(ch in allowed for ch in text):
        return text
    out = []
    for ch in text:
        if ch in allowed:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _plain_params(text: str) -> dict[str, str | None]:
    # Only for text _FAST_RE matched: no '%', so nothing to decode or check.
    params: dict[str, str | None] = {}
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        if not name:
            raise SipParseError("Bad URI: empty parameter")
        params[name.lower()] = value if eq else None
    return params


class SipUri(LazyParams):
    """sip: / sips: URI. `params` names are lower-cased; a flag parameter has value None."""

    # `params` is built on first use from `_ptext`, the plain parameter text parse_uri's quick
    # path matched (most readers only want the host and port).
    __slots__ = ("scheme", "user", "password", "host", "port", "_params", "_ptext", "headers")
    _parse_params = staticmethod(_plain_params)

    def __init__(
        self,
        host: str,
        user: str | None = None,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
        scheme: str = "sip",
        password: str | None = None,
    ) -> None:
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self._params = dict(params or {})
        self.headers = dict(headers or {})

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def host_port(self) -> str:
        return format_host(self.host) if self.port is None else f"{format_host(self.host)}:{self.port}"

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_encode(self.user, _USER_OK))
            if self.password is not None:
                parts += [":", _encode(self.password, _PASSWORD_OK)]
            parts.append("@")
        parts.append(self.host_port)
        for name, value in self.params.items():
            parts += [";", _encode(name, _PARAM_OK)]
            if value is not None:
                parts += ["=", _encode(value, _PARAM_OK)]
        if self.headers:
            parts.append("?")
            parts.append(
                "&".join(f"{_encode(k, _HEADER_OK)}={_encode(v, _HEADER_OK)}" for k, v in self.headers.items())
            )
        return "".join(parts)

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        return (
            self.scheme == other.scheme
            and self.user == other.user
            and self.password == other.password
            and self.host.lower() == other.host.lower()
            and self.port == other.port
            and self.params == other.params
            and self.headers == other.headers
        )

    def __hash__(self) -> int:
        return hash((self.scheme, self.user, self.host.lower(), self.port))


class TelUri:
    """tel: URI (RFC 3966): `number` ("+14255550123", visual separators kept) and `params`."""

    __slots__ = ("number", "params")
    scheme = "tel"
    host = None
    port = None
    user = None

    def __init__(self, number: str, params: dict[str, str | None] | None = None) -> None:
        self.number = number
        self.params = dict(params or {})

    def __str__(self) -> str:
        return "tel:" + self.number + "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())

    def __repr__(self) -> str:
        return f"TelUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TelUri):
            return NotImplemented
        return self.number == other.number and self.params == other.params

    def __hash__(self) -> int:
        return hash(self.number)


class AbsoluteUri:
    """A URI of a scheme we do not interpret (im:, mailto:, http: ...), kept verbatim."""

    __slots__ = ("scheme", "text")
    host = None
    port = None
    user = None

    def __init__(self, scheme: str, text: str) -> None:
        self.scheme = scheme
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"AbsoluteUri({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AbsoluteUri) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)


def _parse_port(text: str) -> int:
    port = small_number(text, 5)
    if port is None or port > 65535:
        raise SipParseError(f"Bad URI: port {text[:20]!r}")
    return port


def is_plain_sip_uri(text: str) -> bool:
    """True for a well-formed sip:/sips: URI without escapes, password or headers."""
    return _FAST_RE.fullmatch(text) is not None


def _parse_uri_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in text.split(";")[1:]:
        name, eq, value = item.partition("=")
        if not name:
            raise SipParseError("Bad URI: empty parameter")
        name = _decode(name, _PARAM_OK, "a parameter").lower()
        params[name] = _decode(value, _PARAM_OK, "a parameter") if eq else None
    return params


_new = object.__new__


def sip_uri_parts_python(text: str) -> tuple[str, str | None, str, int | None, str] | None:
    """_FAST_RE's match as (scheme lower-cased, user, host, port, parameter text), or None
    when it does not match or the port is over 65535. Compiled in _speedups when built."""
    m = _FAST_RE.fullmatch(text)
    if m is None:
        return None
    scheme, user, host, port, params = m.groups()
    if port is not None and len(port) == 5 and int(port) > 65535:
        return None
    return scheme.lower(), user, host, None if port is None else int(port), params


_sip_uri_parts = SPEEDUPS.sip_uri_parts if SPEEDUPS is not None else sip_uri_parts_python


def parse_uri(text: str) -> SipUri | TelUri | AbsoluteUri:
    """Parse a URI; anything malformed raises SipParseError (status 400)."""
    parts = _sip_uri_parts(text)
    if parts is not None:
        uri = _new(SipUri)
        uri.scheme, uri.user, uri.host, uri.port, params = parts
        uri.password = None
        uri._params = None if params else {}
        uri._ptext = params
        uri.headers = {}
        return uri
    return parse_uri_careful(text)


def parse_uri_careful(text: str) -> SipUri | TelUri | AbsoluteUri:
    """parse_uri for any URI (the same result for whatever its quick path accepts)."""
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME_RE.fullmatch(scheme) is None:
        raise SipParseError(f"Bad URI: {text[:60]!r} has no scheme")
    lowered = scheme.lower()
    if lowered in ("sip", "sips"):
        return _parse_sip(lowered, rest)
    if lowered == "tel":
        return _parse_tel(rest)
    if not rest or any(ch in ' \t\r\n<>"' for ch in rest):
        raise SipParseError(f"Bad URI: {text[:60]!r}")
    return AbsoluteUri(scheme, text)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    if any(ch in " \t\r\n<>\"" for ch in rest):
        raise SipParseError(f"Bad URI: whitespace or delimiter inside {scheme}:{rest[:60]!r}")
    # The user part may hold ';' and '?' (RFC 4475 §3.1.1.9) but never an unescaped '@',
    # which appears nowhere else in the grammar: so the first '@' ends userinfo.
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user_text, colon, password_text = userinfo.partition(":")
        if not user_text:
            raise SipParseError("Bad URI: empty user part")
        user = _decode(user_text, _USER_OK, "the user part")
        if colon:
            password = _decode(password_text, _PASSWORD_OK, "the password")
    hostport, q, header_text = rest.partition("?")
    hostport, semi, param_text = hostport.partition(";")
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0 or _IPV6_RE.fullmatch(hostport[1:close]) is None:
            raise SipParseError(f"Bad URI: IPv6 reference {hostport!r}")
        host = hostport[1:close]
        after = hostport[close + 1 :]
        if after and not after.startswith(":"):
            raise SipParseError(f"Bad URI: {after!r} after the IPv6 reference")
        port = _parse_port(after[1:]) if after else None
    else:
        host, colon, port_text = hostport.partition(":")
        # RFC 5118 §4.2: an IPv6 address outside [] leaves more colons than a port allows.
        port = _parse_port(port_text) if colon else None
        if _HOSTNAME_RE.fullmatch(host) is None:
            raise SipParseError(f"Bad URI: host {host!r}")
    params = _parse_uri_params(";" + param_text) if semi else {}
    headers: dict[str, str] = {}
    if q:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq:
                raise SipParseError(f"Bad URI: header {item!r}")
            headers[_decode(name, _HEADER_OK, "a header")] = _decode(value, _HEADER_OK, "a header")
    return SipUri(host, user, port, params, headers, scheme, password)


def _parse_tel(rest: str) -> TelUri:
    number, semi, param_text = rest.partition(";")
    if _TEL_RE.fullmatch(number) is None:
        raise SipParseError(f"Bad URI: telephone number {number!r}")
    return TelUri(number, _parse_uri_params(";" + param_text) if semi else {})
