""".NET regular expressions and substitutions, as Teams evaluates them [S16] [S19].

Patterns: .NET's named groups `(?<name>...)`/`(?'name'...)` and back-references `\\k<name>` are
rewritten to Python's spelling; constructs Python's `re` cannot express (balancing groups
`(?<a-b>...)`, Unicode categories `\\p{..}`/`\\P{..}`, conditionals on names, `\\G`) are rejected
with a clear error instead of silently meaning something else. `Regex.IsMatch` finds a match
anywhere in the input unless the pattern is anchored, which is Python's `search`.

Translations are .NET substitutions: `$1`, `${name}`, `$$` (a literal `$`), `$0` and `$&`
(the whole match). A `$` followed by anything else is literal, as in .NET; a group number the
pattern does not have is kept literally too (.NET keeps "$3" when there is no group 3).
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

_UNSUPPORTED = [
    (re.compile(r"\(\?<[A-Za-z_]\w*-[A-Za-z_]\w*>|\(\?<-[A-Za-z_]\w*>"), "balancing groups"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\[pP]\{"), "Unicode categories (\\p{...})"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\G"), "\\G"),
]


class DotnetRegexError(ValueError):
    """A pattern that is not a valid .NET regex, or uses .NET syntax drlab cannot evaluate."""


def to_python(pattern: str) -> str:
    """The Python spelling of a .NET pattern (raises DotnetRegexError for what cannot be mapped)."""
    for rx, what in _UNSUPPORTED:
        if rx.search(pattern):
            raise DotnetRegexError(f".NET {what} are not supported by drlab")
    pattern = re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", pattern)
    pattern = re.sub(r"\(\?'([A-Za-z_]\w*)'", r"(?P<\1>", pattern)
    return re.sub(r"\\k<([A-Za-z_]\w*)>", r"(?P=\1)", pattern)


@lru_cache(maxsize=4096)
def compile_dotnet(pattern: str) -> re.Pattern[str]:
    """Compile a .NET pattern once (routing evaluates the same few patterns very often)."""
    try:
        with warnings.catch_warnings():  # re's FutureWarnings about its own later syntax mean nothing here
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(to_python(pattern))
    except re.error as err:
        where = f" at offset {err.pos}" if err.pos is not None else ""
        raise DotnetRegexError(f"bad regular expression {pattern!r}: {err.msg}{where}") from None
    except OverflowError:  # a repeat count such as {99999999999999999999}
        raise DotnetRegexError(f"bad regular expression {pattern!r}: a repeat count is too large") from None
    except RecursionError:
        raise DotnetRegexError(f"bad regular expression {pattern!r}: nested too deeply") from None


_SUBST = re.compile(r"\$(?:(\$)|\{([A-Za-z_]\w*|\d+)\}|(\d+)|(&))")


def substitute(match: re.Match[str], translation: str) -> str:
    """`Regex.Replace`'s expansion of `translation` for one match (.NET substitution rules)."""
    groups = match.re.groupindex

    def one(m: re.Match[str]) -> str:
        dollar, braced, number, whole = m.groups()
        if dollar:
            return "$"
        if whole:
            return match.group(0)
        ref = braced if braced is not None else number
        if ref.isdigit():
            n = int(ref)
            if n <= match.re.groups:
                return match.group(n) or ""
            # .NET takes the longest number that names a group: "$10" with one group is "$1" + "0".
            if number is not None:
                for cut in range(len(ref) - 1, 0, -1):
                    if int(ref[:cut]) <= match.re.groups:
                        return (match.group(int(ref[:cut])) or "") + ref[cut:]
            return m.group(0)
        if ref in groups:
            return match.group(ref) or ""
        return m.group(0)

    return _SUBST.sub(one, translation)


def replace(pattern: str, translation: str, text: str) -> str | None:
    """`Regex.Replace(text, pattern, translation)` if the pattern matches anywhere, else None.

    .NET replaces every match and keeps the text around them; Teams patterns are normally
    anchored (^...$), so that is the whole number.
    """
    rx = compile_dotnet(pattern)
    if rx.search(text) is None:
        return None
    return rx.sub(lambda m: substitute(m, translation), text)


_META = set(".^$*+?()[]{}|\\")
_QUANTIFIERS = set("*+?{")


def literal_prefix(pattern: str) -> str:
    """Text every match must start the input with ("" if none can be read off cheaply).

    Only for patterns anchored with `^` and without a top-level `|`: then a number that does not
    start with this text cannot match, so routing skips the regex. A literal followed by a
    quantifier (`1?`, `1*`, `1{0,1}`) is not required and ends the prefix.
    """
    if not pattern.startswith("^") or "(?x" in pattern or "(?i" in pattern:
        return ""
    depth = 0
    i = 0
    while i < len(pattern):  # any top-level alternation: the anchor does not cover the other side
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            j = pattern.find("]", i + 2)
            i = j + 1 if j > 0 else len(pattern)
            continue
        depth += c == "("
        depth -= c == ")"
        if c == "|" and depth == 0:
            return ""
        i += 1
    out: list[str] = []
    i = 1
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in _META:
            lit, nxt = pattern[i + 1], i + 2
        elif c not in _META:
            lit, nxt = c, i + 1
        else:
            break
        if nxt < len(pattern) and pattern[nxt] in _QUANTIFIERS:
            break
        out.append(lit)
        i = nxt
    return "".join(out)


class PatternList:
    """Ordered compiled patterns with an index on their literal prefixes.

    `matching(text)` gives the positions of the patterns that match `text` anywhere (IsMatch), in
    list order; patterns whose required prefix the text lacks are skipped without running them.
    """

    def __init__(self, patterns: list[str]) -> None:
        self.compiled = [compile_dotnet(p) for p in patterns]
        self.always: list[int] = []
        by_len: dict[int, dict[str, list[int]]] = {}
        for i, p in enumerate(patterns):
            prefix = literal_prefix(p)
            if prefix:
                by_len.setdefault(len(prefix), {}).setdefault(prefix, []).append(i)
            else:
                self.always.append(i)
        self.by_len = sorted(by_len.items())

    def candidates(self, text: str) -> list[int]:
        out = list(self.always)
        for n, table in self.by_len:
            hit = table.get(text[:n])
            if hit:
                out.extend(hit)
        if self.by_len:
            out.sort()
        return out

    def matching(self, text: str) -> list[int]:
        return [i for i in self.candidates(text) if self.compiled[i].search(text) is not None]

    def first(self, text: str) -> int | None:
        for i in self.candidates(text):
            if self.compiled[i].search(text) is not None:
                return i
        return None
