"""The header section of a SIP message: ordered, case-insensitive, compact forms folded in.

Storage is three parallel lists — the name as written, the value as a string, and the
canonical key (lower-case long form) — filled in one pass by the parser without any
per-header objects. Lookups scan `_keys` in C (`list.index`), which for the twenty-odd
headers of a real message is faster than building a dict. Unknown headers are never
interpreted: they come back from `to_bytes()` with the name and value they arrived with
(only unfolded, and without the whitespace around the value, which RFC 3261 §7.3.1 makes
insignificant).
Structured values (Via, From ...) are parsed on first access and cached per key in `_cache`;
any change to a header drops its cache entry.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator

from .grammar import TOKEN_RE, split_commas

# RFC 3261 §7.3.3 and the IANA registry: compact form -> long form.
COMPACT_FORMS = {
    "i": "call-id",
    "m": "contact",
    "f": "from",
    "t": "to",
    "v": "via",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "y": "identity",
}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1 allows combining them).
# Everything else — Date, the auth headers, Subject, unknown headers — is one opaque value.
LIST_HEADERS = frozenset(
    {
        "via", "contact", "route", "record-route", "path", "service-route",
        "allow", "supported", "require", "proxy-require", "unsupported", "allow-events",
        "accept", "accept-encoding", "accept-language", "content-encoding", "content-language",
        "alert-info", "call-info", "error-info", "in-reply-to", "warning", "reason",
        "p-asserted-identity", "p-preferred-identity", "history-info", "diversion",
        "security-client", "security-server", "security-verify", "privacy",
    }
)  # fmt: skip


def canonical(name: str) -> str:
    key = name.lower()
    return COMPACT_FORMS.get(key, key)


# Header name as written -> canonical key, for names already seen to be tokens ("Via", "v",
# "CALL-ID" ...): the parsers' quick paths take a name being in here as proof it is valid.
# Bounded, so a stream of made-up names cannot grow it without limit.
KEY_OF: dict[str, str] = {}
_KEY_OF_LIMIT = 2048


def new_key(name: str) -> str:
    """The canonical key of a header name the caller has checked is a token, remembered."""
    key = sys.intern(canonical(name))
    if len(KEY_OF) < _KEY_OF_LIMIT:
        KEY_OF[name] = key
    return key


def _check_field(name: str, value: str) -> None:
    if TOKEN_RE.fullmatch(name) is None:
        raise ValueError(f"header name {name!r} is not a token")
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} value contains CR or LF")


class Headers:
    """Ordered header fields with case-insensitive, compact-form-aware lookup.

    `get(name)` is the first value (the first comma element for list headers such as Via),
    `get_all(name)` every value with comma lists split, in order.
    """

    __slots__ = ("_names", "_values", "_keys", "_cache", "_raw")

    def __init__(self, fields: Iterable[tuple[str, str]] | Headers = ()) -> None:
        self._names: list[str] = []
        self._values: list[str] = []
        self._keys: list[str] = []
        self._cache: dict[str, object] = {}
        # (start line, head octets, Content-Length) when parsed from clean wire octets: the
        # message can then be re-sent as received. Every change below drops it.
        self._raw: tuple[str, bytes, int] | None = None
        if isinstance(fields, Headers):
            self._names = list(fields._names)
            self._values = list(fields._values)
            self._keys = list(fields._keys)
            return
        for name, value in fields:
            value = str(value)
            _check_field(name, value)
            self._names.append(name)
            self._values.append(value)
            self._keys.append(canonical(name))

    @classmethod
    def _from_parsed(cls, names: list[str], values: list[str], keys: list[str]) -> Headers:
        headers = cls.__new__(cls)
        headers._names = names
        headers._values = values
        headers._keys = keys
        headers._cache = {}
        headers._raw = None
        return headers

    # -- reading ---------------------------------------------------------------------------
    def get(self, name: str) -> str | None:
        key = name.lower()
        return self._first(COMPACT_FORMS.get(key, key))

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return self._all(COMPACT_FORMS.get(key, key))

    def _first(self, key: str) -> str | None:
        try:
            value = self._values[self._keys.index(key)]
        except ValueError:
            return None
        if "," in value and key in LIST_HEADERS:
            return split_commas(value)[0]
        return value

    def _all(self, key: str) -> list[str]:
        keys = self._keys
        count = keys.count(key)
        if count == 0:
            return []
        if count == 1:
            value = self._values[keys.index(key)]
            if "," in value and key in LIST_HEADERS:
                return split_commas(value)
            return [value]
        values = [v for k, v in zip(keys, self._values) if k == key]
        if key in LIST_HEADERS:
            out: list[str] = []
            for value in values:
                if "," in value:
                    out.extend(split_commas(value))
                else:
                    out.append(value)
            return out
        return values

    def lines(self, name: str) -> list[str]:
        """Every field of this name as written (no comma splitting)."""
        key = canonical(name)
        return [v for k, v in zip(self._keys, self._values) if k == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical(name) in self._keys

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(zip(self._names, self._values))

    def items(self) -> list[tuple[str, str]]:
        return list(zip(self._names, self._values))

    def __len__(self) -> int:
        return len(self._names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._names == other._names and self._values == other._values

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def copy(self) -> Headers:
        return Headers(self)

    # -- changing --------------------------------------------------------------------------
    def set(self, name: str, value: str) -> None:
        """Replace every field of this name by one, at the place of the first (or at the end)."""
        value = str(value)
        _check_field(name, value)
        key = canonical(name)
        self._cache.pop(key, None)
        self._raw = None
        if key in self._keys:
            first = self._keys.index(key)
            self._remove_key(key, keep=first)
            self._names[first] = name
            self._values[first] = value
        else:
            self._names.append(name)
            self._values.append(value)
            self._keys.append(key)

    def add(self, name: str, value: str, first: bool = False) -> None:
        """Append a field; `first=True` puts it before the first field of the same name
        (or at the top), as a proxy adds its Via or Record-Route (RFC 3261 §16.6)."""
        value = str(value)
        _check_field(name, value)
        key = canonical(name)
        self._cache.pop(key, None)
        self._raw = None
        if first:
            at = self._keys.index(key) if key in self._keys else 0
            self._names.insert(at, name)
            self._values.insert(at, value)
            self._keys.insert(at, key)
        else:
            self._names.append(name)
            self._values.append(value)
            self._keys.append(key)

    def remove(self, name: str) -> None:
        key = canonical(name)
        self._cache.pop(key, None)
        self._raw = None
        self._remove_key(key)

    def pop_first(self, name: str) -> str | None:
        """Remove and return the first value (the first comma element of a list header), as a
        proxy removes its own Via from a response (RFC 3261 §16.7 step 3)."""
        key = canonical(name)
        if key not in self._keys:
            return None
        self._cache.pop(key, None)
        self._raw = None
        at = self._keys.index(key)
        value = self._values[at]
        parts = split_commas(value) if key in LIST_HEADERS and "," in value else [value]
        if len(parts) > 1:
            self._values[at] = ", ".join(parts[1:])
        else:
            del self._names[at], self._values[at], self._keys[at]
        return parts[0]

    def _remove_key(self, key: str, keep: int = -1) -> None:
        kept = [i for i, k in enumerate(self._keys) if k != key or i == keep]
        if len(kept) != len(self._keys):
            self._names = [self._names[i] for i in kept]
            self._values = [self._values[i] for i in kept]
            self._keys = [self._keys[i] for i in kept]
