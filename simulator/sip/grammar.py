"""Lexical pieces of RFC 3261 §25 shared by URIs and header values.

Everything here works on `str` (a message is decoded once, with surrogateescape so arbitrary
octets survive) and raises only `SipParseError`.
"""

from __future__ import annotations

import re

from .errors import SipParseError

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = r"!%'*+\-.0-9A-Z_`a-z~"
TOKEN_RE = re.compile(f"[{TOKEN_CHARS}]+")
# LWS and SWS: folding is already undone by the message parser, so only SP / HTAB are left.
WS = " \t"

# A generic-param: token [ "=" ( token / host / quoted-string ) ]. Values that are IPv6
# references ("[2001:db8::1]") or quoted strings are accepted as they are (RFC 5118 §4.5).
_PARAM_RE = re.compile(
    rf"[ \t]*([{TOKEN_CHARS}]+)[ \t]*"
    rf"(?:=[ \t]*([{TOKEN_CHARS}:]+|\[[0-9A-Fa-f:.]+\]|\"(?:[^\"\\]|\\.)*\"))?[ \t]*(?=;|$)"
)


def small_number(text: str, max_digits: int = 10) -> int | None:
    """The value of 1*DIGIT text of at most `max_digits` ASCII digits, else None. (str.isdigit
    alone admits '²', which int() refuses, and int() refuses over 4300 digits.)"""
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def is_token(text: str) -> bool:
    return TOKEN_RE.fullmatch(text) is not None


def quote(text: str) -> str:
    """A quoted-string for `text` (RFC 3261 §25.1): '"', '\\' and control characters go out
    as quoted-pairs; CR and LF cannot be carried at all."""
    if "\r" in text or "\n" in text:
        raise ValueError("a quoted string cannot hold CR or LF")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    if not escaped.isprintable():
        escaped = "".join("\\" + ch if ch < " " and ch != "\t" or ch == "\x7f" else ch for ch in escaped)
    return '"' + escaped + '"'


def scan_quoted(text: str, start: int, what: str) -> tuple[str, int]:
    """Read the quoted-string opening at text[start]; return (unescaped content, index after it)."""
    out = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= n or text[i + 1] in "\r\n":
                break
            out.append(text[i + 1])
            i += 2
            continue
        if ch in "\r\n":
            break
        out.append(ch)
        i += 1
    raise SipParseError(f"Bad {what}: unterminated quoted string")


def split_commas(value: str) -> list[str]:
    """Split a header value on the commas that separate values (RFC 3261 §7.3.1).

    Commas inside quoted strings and inside <...> belong to the value. Elements are stripped;
    an empty element (",," or a trailing ",") is kept as "" so the caller can reject it.
    """
    if '"' not in value and "<" not in value:
        return [part.strip(WS) for part in value.split(",")]
    parts = []
    depth_angle = False
    start = 0
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == '"':
            j = i + 1
            while j < n and value[j] != '"':
                j += 2 if value[j] == "\\" else 1
            i = j + 1
            continue
        if ch == "<":
            depth_angle = True
        elif ch == ">":
            depth_angle = False
        elif ch == "," and not depth_angle:
            parts.append(value[start:i].strip(WS))
            start = i + 1
        i += 1
    parts.append(value[start:].strip(WS))
    return parts


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """Parse `*( SEMI generic-param )` (text starts at the first ';' or is empty).

    Names are lower-cased (they compare case-insensitively, RFC 3261 §7.3.1); values are kept
    as written, quoted strings included, so `str()` re-emits them unchanged. An empty parameter
    (";;" or a trailing ";") is a 400.
    """
    params: dict[str, str | None] = {}
    if not text:
        return params
    if text[0] != ";":
        raise SipParseError(f"Bad {what}: unexpected {text[:20]!r}")
    pos = 1
    n = len(text)
    match = _PARAM_RE.match
    while True:
        m = match(text, pos)
        if m is None:
            raise SipParseError(f"Bad {what}: malformed parameter {text[pos:pos + 20]!r}")
        params[m.group(1).lower()] = m.group(2)
        pos = m.end()
        if pos >= n:
            return params
        if text[pos] != ";":
            raise SipParseError(f"Bad {what}: unexpected {text[pos:pos + 20]!r}")
        pos += 1


def plain_params(text: str) -> dict[str, str | None]:
    """Parameters from plain parameter text a quick path matched, `*( ";" token [ "=" 1*( token / ":" ) ] )`
    (so: nothing to check)."""
    params: dict[str, str | None] = {}
    if text:
        for item in text[1:].split(";"):
            name, eq, value = item.partition("=")
            params[name.lower()] = value if eq else None
    return params


def plain_param(text: str, key: str) -> str | None:
    """`plain_params(text).get(name)` without building the dict, where `key` is ";" + name
    (lower-case) and text is known to be plain parameters. The last parameter of that name wins,
    as in the dict; ';' only ever starts a parameter, so the last ';name' found is it."""
    at = text.lower().rfind(key)  # ASCII only, so the same offsets as in text
    if at < 0:
        return None
    end = at + len(key)
    if end == len(text) or text[end] == ";":
        return None
    if text[end] == "=":
        stop = text.find(";", end)
        return text[end + 1 :] if stop < 0 else text[end + 1 : stop]
    return plain_params(text).get(key[1:])  # a longer name ("tagx"): let the dict decide


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


class LazyParams:
    """`params` built on first use from `_ptext`, the plain parameter text a quick path matched
    (most readers only want the branch or the tag); `_parse_params` says how to read it.
    Subclasses hold `_params` (None until built) and `_ptext` in their own __slots__."""

    __slots__ = ()
    _parse_params = staticmethod(plain_params)

    @property
    def params(self) -> dict[str, str | None]:
        params = self._params  # type: ignore[attr-defined]
        if params is None:
            params = self._params = type(self)._parse_params(self._ptext)  # type: ignore[attr-defined]
        return params

    @params.setter
    def params(self, value: dict[str, str | None]) -> None:
        self._params = value  # type: ignore[attr-defined]
