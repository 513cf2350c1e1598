"""The PowerShell subset that Teams admins' runbooks are written in: text to a syntax tree.

PowerShell tokenizes differently in *argument mode* (after a command name: `sbc1.contoso.com` is
a string, `-Priority` a parameter) and *expression mode* (after `=`, inside `@{}`/`@()`/`(...)`:
bare words are commands, `"a","b"` is an array). So there is no separate token stream: one
recursive-descent parser walks the characters and knows its mode, as PowerShell's own parser
does (about_Parsing). Every node keeps the SourcePosition of its first character so that a
loader can say `FILE:LINE:COL: message` about any value it rejects. `ps_evaluator` runs the tree.

Supported, because real runbooks use it:
- statements separated by newlines or `;`; `#` and `<# ... #>` comments; backtick continuation
  (a backtick followed by trailing blanks is an error: PowerShell would silently end the command);
- `'single'` (no interpolation, `''` escape), `"double"` (`$var`, `${var}`, `$(...)`, backtick
  escapes, `""` escape), here-strings `@"..."@` (expanding) and `@'...'@` (literal), typographic
  quotes (PowerShell accepts them, and text pasted from documentation contains them);
- `$true`, `$false`, `$null`, integers, bare words, `a, b` and `@("a","b")` arrays, `@()`,
  `@{Key=value; ...}` hashtables (keys case-insensitive), `(...)`, `$x.Member`, `$x[index]`,
  `{ script blocks }` (parsed; ForEach-Object and Where-Object run them, and a block an
  unmodelled cmdlet takes may hold anything: its syntax error is raised only if it runs);
- the comparison operators `-eq -ne -gt -ge -lt -le -like -notlike -match -notmatch -contains
  -notcontains -in -notin` (with their `-i`/`-c` forms) and `-and -or -xor -not !`;
- `-Switch`, `-Switch:$true`, `-Param value`, positional arguments, splatting `@params`;
- `$var = <expression>` and `$var = Cmdlet ...`; pipelines `A | B` and `$values | B`;
- `foreach ($x in <expression>) { ... }` and `if (...) { } elseif (...) { } else { }`.
Anything else is an error at its position that names the construct: `while`/`do`/`for` loops
(a runbook must end), `function`, `try`, `switch`, `&` and `.` call operators, arithmetic and
text operators (`+`, `-replace`, `-f`), method calls, type casts.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.tenant.errors import SourcePosition, TenantError

# PowerShell treats the typographic quotes as quotes (about_Quoting_Rules), and runbooks
# pasted from Word or web pages contain them.
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
DOUBLE_QUOTES = '"\u201c\u201d\u201e'

# Backtick escapes valid in double-quoted strings (about_Special_Characters).
_BACKTICK_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "n": "\n", "r": "\r",
                     "t": "\t", "v": "\v"}

# Keywords drlab does not run, and what to say about each (the loop keywords: a runbook must end).
_UNSUPPORTED_KEYWORDS = {
    **{k: f"a `{k}` loop is not supported; loop over a list with foreach ($x in $list) {{ ... }}"
       for k in ("while", "do", "until", "for")},
    **{k: f"defining a `{k}` is not supported; write its cmdlets out in the script"
       for k in ("function", "filter", "workflow", "class", "enum")},
    **{k: f"error handling (`{k}`) is not supported; drlab stops at the first error anyway"
       for k in ("try", "catch", "finally", "trap", "throw")},
    "switch": "a `switch` statement is not supported; use if/elseif/else",
    **{k: f"a `{k}` block is not supported; a runbook for drlab is a plain script"
       for k in ("param", "begin", "process", "end")},
    **{k: f"`{k}` is not supported; a runbook runs from top to bottom"
       for k in ("return", "break", "continue", "exit")},
    "using": "`using` is not supported",
    "elseif": "`elseif` without an `if` before it",
    "else": "`else` without an `if` before it",
}

# Operators in expression mode (about_Comparison_Operators, about_Logical_Operators). An `i`
# prefix is the same operator; a `c` prefix makes a text comparison case-sensitive.
COMPARISON_OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch",
                        "contains", "notcontains", "in", "notin")
LOGICAL_OPERATORS = ("and", "or", "xor")
_OTHER_OPERATORS = ("replace", "split", "join", "f", "is", "isnot", "as", "band", "bor", "bxor", "bnot",
                    "shl", "shr", "creplace", "ireplace", "csplit", "isplit")

# A bare word ends at any of these in argument mode.
_WORD_END = set(" \t\r\n;,|(){}&") | set(SINGLE_QUOTES) | set(DOUBLE_QUOTES)
_DIGITS = frozenset("0123456789")  # str.isdigit() also takes '⁷' and other digits int() refuses
_MAX_DIGITS = 30
_SCOPES = {"global", "script", "local", "private", "env", "using", "variable"}
# Characters no text editor writes into a script: NUL and the other C0 controls except tab,
# newline, carriage return and form feed.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


# ---------------------------------------------------------------- syntax tree

@dataclass(frozen=True)
class Literal:
    value: Any  # str | int | bool | None
    position: SourcePosition
    text: str | None = None  # how an unquoted number was spelled: "+14255550100" stays that string


@dataclass(frozen=True)
class ExpandableString:
    parts: tuple[Any, ...]  # str pieces and expression nodes, in order
    position: SourcePosition


@dataclass(frozen=True)
class VariableRef:
    name: str  # without "$" and without a global:/script: scope; "env:X" kept whole
    position: SourcePosition


@dataclass(frozen=True)
class MemberAccess:
    target: Any
    member: str
    position: SourcePosition


@dataclass(frozen=True)
class ArrayLiteral:  # a, b, c
    items: tuple[Any, ...]
    position: SourcePosition


@dataclass(frozen=True)
class ArrayExpression:  # @( statements )
    statements: tuple[Any, ...]
    position: SourcePosition


@dataclass(frozen=True)
class SubExpression:  # $( statements )
    statements: tuple[Any, ...]
    position: SourcePosition


@dataclass(frozen=True)
class HashtableEntry:
    key: str
    key_position: SourcePosition
    value: Any


@dataclass(frozen=True)
class HashtableLiteral:
    entries: tuple[HashtableEntry, ...]
    position: SourcePosition


@dataclass(frozen=True)
class Index:  # $x[0], $h["key"]
    target: Any
    index: Any
    position: SourcePosition


@dataclass(frozen=True)
class BinaryOperation:  # a -eq b, a -and b; `operator` lower-case without "-" ("ceq", "like", "and")
    operator: str
    left: Any
    right: Any
    position: SourcePosition


@dataclass(frozen=True)
class Not:  # -not x, !x
    operand: Any
    position: SourcePosition


@dataclass(frozen=True)
class ScriptBlock:
    text: str  # between the braces
    position: SourcePosition
    statements: tuple[Any, ...] = ()
    error: TenantError | None = None  # the body's syntax error, raised only if the block runs


@dataclass(frozen=True)
class ParameterArg:  # -Name, or -Name:value
    name: str
    position: SourcePosition
    value: Any = None  # expression node for the -Name:value form


@dataclass(frozen=True)
class Splat:  # @name
    variable: str
    position: SourcePosition


@dataclass(frozen=True)
class Command:
    name: str
    position: SourcePosition
    arguments: tuple[Any, ...]  # ParameterArg | Splat | expression nodes


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Any, ...]  # Command nodes; the first may be an expression whose values are piped
    position: SourcePosition


@dataclass(frozen=True)
class Assignment:
    variable: str
    position: SourcePosition
    value: Any  # Pipeline or expression node


@dataclass(frozen=True)
class ForeachStatement:  # foreach ($variable in collection) { body }
    variable: str
    collection: Any
    body: tuple[Any, ...]
    position: SourcePosition


@dataclass(frozen=True)
class IfStatement:  # if (c1) { b1 } elseif (c2) { b2 } else { b3 }
    clauses: tuple[tuple[Any, tuple[Any, ...]], ...]
    else_body: tuple[Any, ...] | None
    position: SourcePosition


@dataclass(frozen=True)
class ExpressionStatement:
    expression: Any
    position: SourcePosition


@dataclass(frozen=True)
class Script:
    path: str
    statements: tuple[Any, ...]


# ---------------------------------------------------------------- parser

def parse(text: str, path: str = "<string>") -> Script:
    """Parse a whole script; TenantError at FILE:LINE:COL on the first syntax error."""
    parser = _Parser(text, path)
    try:
        return parser.script()
    except RecursionError:  # blocks, parentheses or operators nested past Python's stack
        raise parser.error("nested too deeply: no runbook nests blocks or expressions this far") from None


def _is_name_start(c: str) -> bool:
    return c.isalpha() or c == "_"


def _is_name_char(c: str) -> bool:
    return c.isalnum() or c == "_"


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.i = 0
        self._line_starts = [0] + [n + 1 for n, c in enumerate(text) if c == "\n"]

    # -- positions and errors

    def pos(self, i: int | None = None) -> SourcePosition:
        i = self.i if i is None else i
        line = bisect.bisect_right(self._line_starts, i)
        return SourcePosition(self.path, line, i - self._line_starts[line - 1] + 1)

    def error(self, message: str, i: int | None = None) -> TenantError:
        return TenantError(message, self.pos(i))

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.text[j] if j < len(self.text) else ""

    def describe_here(self) -> str:
        c = self.peek()
        if c == "":
            return "end of file"
        if c == "\n":
            return "end of line"
        return repr(c)

    # -- blanks

    def skip_blanks(self) -> None:
        """Spaces, tabs, comments and backtick line continuations; stops at a newline."""
        while True:
            c = self.peek()
            if c in (" ", "\t", "\r", "\f", "\ufeff"):
                self.i += 1
            elif c == "`" and self.peek(1) in ("\n", "\r"):
                self.i += 2 if self.peek(1) == "\n" else 3 if self.peek(2) == "\n" else 2
            elif c == "`" and self._backtick_then_blanks_to_eol():
                raise self.error(
                    "the line-continuation backtick is followed by spaces; PowerShell would end the "
                    "command here (remove the trailing whitespace)")
            elif c == "<" and self.peek(1) == "#":
                start = self.i
                end = self.text.find("#>", self.i + 2)
                if end < 0:
                    raise self.error("unterminated block comment: missing '#>'", start)
                self.i = end + 2
            elif c == "#":
                end = self.text.find("\n", self.i)
                self.i = len(self.text) if end < 0 else end
            else:
                return

    def _backtick_then_blanks_to_eol(self) -> bool:
        j = self.i + 1
        while j < len(self.text) and self.text[j] in " \t\r":
            j += 1
        return j > self.i + 1 and (j == len(self.text) or self.text[j] == "\n")

    def skip_blanks_and_newlines(self, semicolons: bool = False) -> None:
        while True:
            self.skip_blanks()
            if self.peek() == "\n" or (semicolons and self.peek() == ";"):
                self.i += 1
            else:
                return

    # -- statements

    def script(self) -> Script:
        control = _CONTROL_CHARACTER.search(self.text)
        if control is not None:
            raise self.error(f"control character U+{ord(control.group()):04X} in the script; a runbook is text "
                             "(write it in a string as a backtick escape such as `0 or `t)", control.start())
        statements = self.statements(closer="")
        return Script(self.path, tuple(statements))

    def statements(self, closer: str) -> list[Any]:
        """Statements up to `closer` (")" for $(...)/@(...), "" for end of file), not consumed."""
        result = []
        while True:
            self.skip_blanks_and_newlines(semicolons=True)
            c = self.peek()
            if c == closer:
                return result
            if c == "":
                raise self.error(f"expected {closer!r} before end of file")
            if c in ")}]":
                raise self.error(f"unexpected {c!r}")
            result.append(self.statement())
            self.skip_blanks()
            c = self.peek()
            if c not in ("\n", ";", "", closer):
                raise self.error(f"expected end of statement (newline or ';'), found {self.describe_here()}")

    def statement(self) -> Any:
        start = self.i
        c = self.peek()
        if c == "$" and (assignment := self.try_assignment()) is not None:
            return assignment
        if _is_name_start(c):
            word = self.peek_command_name()
            keyword = word.lower()
            if keyword == "foreach" and self._keyword_then("("):
                return self.foreach_statement()
            if keyword == "if" and self._keyword_then("("):
                return self.if_statement()
            if keyword in _UNSUPPORTED_KEYWORDS:
                raise self.error(_UNSUPPORTED_KEYWORDS[keyword])
            return self.pipeline()
        if c == "-" and _is_name_start(self.peek(1)):
            raise self.error("parameter without a command: a backtick missing at the end of the "
                             "previous line?")
        if c in "&." and self.peek(1) in (" ", "\t", "$", "'", '"', ".", "\\", "/"):
            if c == "." and self.peek(1) in ".\\/":
                raise self.error("running another script is not supported; put its cmdlets in this file")
            raise self.error(f"the '{c}' call operator is not supported by drlab's tenant loader")
        expression = self.expression()
        self.skip_blanks()
        if self.peek() == "|":
            return self.pipeline(first=expression, start=self.pos(start))
        return ExpressionStatement(expression, self.pos(start))

    def _keyword_then(self, opener: str) -> bool:
        """At a keyword followed (after blanks) by `opener`."""
        j = self.i + len(self.peek_command_name())
        while j < len(self.text) and self.text[j] in " \t":
            j += 1
        return self.text[j:j + 1] == opener

    def block(self, what: str) -> tuple[Any, ...]:
        """`{ statements }` after a keyword (newlines before the brace allowed)."""
        self.skip_blanks_and_newlines()
        if self.peek() != "{":
            raise self.error(f"expected '{{' to open the body of {what}, found {self.describe_here()}")
        start = self.i
        self.i += 1
        statements = self.statements(closer="}")
        if self.peek() != "}":
            raise self.error(f"expected '}}' to close the '{{' at {self.pos(start)}", start)
        self.i += 1
        return tuple(statements)

    def condition(self, keyword: str) -> Any:
        self.skip_blanks()
        start = self.i
        self.i += 1  # "("
        self.skip_blanks_and_newlines()
        if self.peek() == ")":
            raise self.error(f"`{keyword}` needs a condition inside the parentheses")
        value = self.pipeline_or_expression()
        self.skip_blanks_and_newlines()
        if self.peek() != ")":
            raise self.error(f"expected ')' to close the '(' at {self.pos(start)}, found {self.describe_here()}")
        self.i += 1
        return value

    def foreach_statement(self) -> ForeachStatement:
        start = self.pos()
        self.i += len("foreach")
        self.skip_blanks()
        self.i += 1  # "("
        self.skip_blanks()
        if self.peek() != "$":
            raise self.error(f"expected the loop variable ($name) after 'foreach (', found {self.describe_here()}")
        variable, _ = self.variable_name()
        self.skip_blanks()
        if self.peek_command_name().lower() != "in":
            raise self.error(f"expected 'in' after 'foreach (${variable}', found {self.describe_here()}")
        self.i += 2
        self.skip_blanks_and_newlines()
        collection = self.pipeline_or_expression()
        self.skip_blanks_and_newlines()
        if self.peek() != ")":
            raise self.error(f"expected ')' after the list of foreach, found {self.describe_here()}")
        self.i += 1
        return ForeachStatement(variable, collection, self.block("foreach"), start)

    def if_statement(self) -> IfStatement:
        start = self.pos()
        self.i += len("if")
        clauses = [(self.condition("if"), self.block("if"))]
        else_body = None
        while True:
            save = self.i
            self.skip_blanks_and_newlines()
            word = self.peek_command_name().lower() if _is_name_start(self.peek()) else ""
            if word == "elseif":
                self.i += len(word)
                self.skip_blanks()
                if self.peek() != "(":
                    raise self.error(f"expected '(' after elseif, found {self.describe_here()}")
                clauses.append((self.condition("elseif"), self.block("elseif")))
            elif word == "else":
                self.i += len(word)
                else_body = self.block("else")
                break
            else:
                self.i = save
                break
        return IfStatement(tuple(clauses), else_body, start)

    def try_assignment(self) -> Assignment | None:
        start = self.i
        name, _ = self.variable_name()
        self.skip_blanks()
        if self.peek() == "=" and self.peek(1) != "=":
            self.i += 1
            self.skip_blanks_and_newlines()
            if self.peek() in ("", ";") or self.peek() == "\n":
                raise self.error(f"expected a value after '${name} ='")
            return Assignment(name, self.pos(start), self.pipeline_or_expression())
        if self.peek() in "+-*/" and self.peek(1) == "=":
            raise self.error(f"operator '{self.peek()}=' is not supported; assign the whole value")
        self.i = start
        return None

    def pipeline_or_expression(self) -> Any:
        if _is_name_start(self.peek()):
            word = self.peek_command_name().lower()
            if word in _UNSUPPORTED_KEYWORDS or word in ("foreach", "if") and self._keyword_then("("):
                raise self.error(_UNSUPPORTED_KEYWORDS.get(word, f"a `{word}` statement cannot be used as a "
                                                                 "value; assign inside its body instead"))
            return self.pipeline()
        start = self.pos()
        expression = self.expression()
        self.skip_blanks()
        if self.peek() == "|":
            return self.pipeline(first=expression, start=start)
        return expression

    def peek_command_name(self) -> str:
        j = self.i
        while j < len(self.text) and self.text[j] not in _WORD_END and self.text[j] not in "`=":
            j += 1
        return self.text[self.i:j]

    def pipeline(self, first: Any = None, start: SourcePosition | None = None) -> Pipeline:
        """Commands joined by `|`; `first` is an expression already read whose values are piped."""
        start = start or self.pos()
        commands = [self.command() if first is None else first]
        while True:
            self.skip_blanks()
            if self.peek() != "|":
                return Pipeline(tuple(commands), start)
            self.i += 1
            self.skip_blanks_and_newlines()
            if not (_is_name_start(self.peek()) or self.peek() in ("%", "?")):
                raise self.error(f"expected a command after '|', found {self.describe_here()}")
            commands.append(self.command())

    def command(self) -> Command:
        start = self.i
        name = self.peek_command_name() if _is_name_start(self.peek()) else self.peek()
        self.i += len(name)
        arguments: list[Any] = []
        while True:
            self.skip_blanks()
            c = self.peek()
            if c in ("", "\n", ";", "|", ")", "}"):
                return Command(name, self.pos(start), tuple(arguments))
            if c == "-" and _is_name_start(self.peek(1)):
                arguments.append(self.parameter())
            elif c == "@" and _is_name_start(self.peek(1)):
                at = self.i
                self.i += 1
                name_start = self.i
                while _is_name_char(self.peek()):
                    self.i += 1
                arguments.append(Splat(self.text[name_start:self.i], self.pos(at)))
            elif c == "-" and self.peek(1) == "-" and self.peek(2) in (" ", "%"):
                raise self.error("'--' and '--%' are not supported")
            else:
                arguments.append(self.argument_list())

    def parameter(self) -> ParameterArg:
        start = self.i
        self.i += 1
        while _is_name_char(self.peek()) or self.peek() == "-" and _is_name_char(self.peek(1)):
            self.i += 1
        name = self.text[start + 1:self.i]
        if self.peek() == ":":
            self.i += 1
            self.skip_blanks()
            if self.peek() in ("", "\n", ";", "|", ")", "}"):
                raise self.error(f"expected a value after '-{name}:'")
            return ParameterArg(name, self.pos(start), self.argument_list())
        return ParameterArg(name, self.pos(start))

    # -- values in argument mode

    def argument_list(self) -> Any:
        """One argument: a value, or `a, b, c` (a comma may end a line)."""
        return self.comma_list(self.argument_value)

    def comma_list(self, item: Callable[[], Any]) -> Any:
        start = self.pos()
        items = [item()]
        while True:
            save = self.i
            self.skip_blanks()
            if self.peek() != ",":
                self.i = save
                break
            self.i += 1
            self.skip_blanks_and_newlines()
            items.append(item())
        return items[0] if len(items) == 1 else ArrayLiteral(tuple(items), start)

    def argument_value(self) -> Any:
        c = self.peek()
        if c in SINGLE_QUOTES or c in DOUBLE_QUOTES or c in "$@({":
            value = self.primary()
        elif c == "" or c in "\n;|)},":
            raise self.error(f"expected a value, found {self.describe_here()}")
        else:
            value = self.bare_word()
        c = self.peek()
        if c and c not in _WORD_END and c != "`":
            raise self.error(f"unexpected {c!r} right after a value")
        return value

    def bare_word(self) -> Any:
        """An unquoted argument: a number if it looks like one, else an expandable string."""
        start = self.i
        parts: list[Any] = []
        text: list[str] = []
        while True:
            c = self.peek()
            if c == "" or c in _WORD_END:
                break
            if c == "`":
                if self.peek(1) in ("", "\n", "\r"):
                    break
                text.append(self.peek(1))
                self.i += 2
            elif self.at_expansion():
                text = self.expand(parts, text)
            else:
                text.append(c)
                self.i += 1
        if text:
            parts.append("".join(text))
        raw = self.text[start:self.i]
        if len(parts) == 1 and isinstance(parts[0], str):
            number = parse_integer(raw)
            if number is not None:
                return Literal(number, self.pos(start), text=raw)
            return Literal(parts[0], self.pos(start))
        if not parts:
            raise self.error(f"expected a value, found {self.describe_here()}")
        return ExpandableString(tuple(parts), self.pos(start))

    # -- values in expression mode

    def expression(self) -> Any:
        """Logical operators over comparisons; PowerShell gives -and, -or and -xor one precedence."""
        node = self.comparison()
        while (operator := self.operator(LOGICAL_OPERATORS)) is not None:
            at = self.pos()
            self.i += 1 + len(operator)
            self.skip_blanks_and_newlines()
            node = BinaryOperation(operator, node, self.comparison(), at)
        return node

    def comparison(self) -> Any:
        node = self.comma_list(self.unary)
        while (operator := self.operator(COMPARISON_OPERATORS)) is not None:
            at = self.pos()
            self.i += 1 + len(operator)
            self.skip_blanks_and_newlines()
            name = operator[1:] if operator[0] == "i" and operator[1:] in COMPARISON_OPERATORS else operator
            node = BinaryOperation(name, node, self.comma_list(self.unary), at)
        return node

    def operator(self, names: tuple[str, ...]) -> str | None:
        """The operator (without "-") of `names` after blanks; an unknown or unsupported one is an
        error, since nothing else may follow a value in an expression."""
        save = self.i
        self.skip_blanks()
        if self.peek() in ("+", "*", "/", "%"):
            raise self.error(f"the '{self.peek()}' operator is not supported; write the whole value")
        if not (self.peek() == "-" and _is_name_start(self.peek(1))):
            self.i = save
            return None
        j = self.i + 1
        while j < len(self.text) and _is_name_char(self.text[j]):
            j += 1
        word = self.text[self.i + 1:j].lower()
        base = word[1:] if word[:1] in "ic" and word[1:] in COMPARISON_OPERATORS else word
        if base in names:
            return word
        if base in COMPARISON_OPERATORS or base in LOGICAL_OPERATORS or base == "not":
            self.i = save
            return None
        if base in _OTHER_OPERATORS:
            raise self.error(f"the -{word} operator is not supported")
        raise self.error(f"unknown operator -{word} (drlab supports -eq -ne -gt -ge -lt -le -like "
                         "-notlike -match -notmatch -contains -in -and -or -not)")

    def unary(self) -> Any:
        c = self.peek()
        if c == "!" or (c == "-" and self.text[self.i + 1:self.i + 4].lower() == "not"
                        and not _is_name_char(self.peek(4))):
            at = self.pos()
            self.i += 1 if c == "!" else 4
            self.skip_blanks()
            return Not(self.unary(), at)
        if c in SINGLE_QUOTES or c in DOUBLE_QUOTES or c in "$@({":
            return self.primary()
        if c in _DIGITS or (c in "+-" and self.peek(1) in _DIGITS):
            start = self.i
            self.i += 1
            while self.peek() in _DIGITS:
                self.i += 1
            raw = self.text[start:self.i]
            number = parse_integer(raw)
            if number is None:
                raise self.error(f"the number {raw[:20]}... has more than {_MAX_DIGITS} digits", start)
            return Literal(number, self.pos(start), text=raw)
        if c == "[":
            raise self.error("type casts like [string] are not supported")
        if _is_name_start(c):
            word = self.peek_command_name()
            raise self.error(f"unquoted text {word!r} in an expression; quote it ('{word}')")
        raise self.error(f"expected a value, found {self.describe_here()}")

    def primary(self) -> Any:
        c = self.peek()
        start = self.i
        if c in SINGLE_QUOTES:
            return self.single_quoted()
        if c in DOUBLE_QUOTES:
            return self.double_quoted()
        if c == "@":
            nxt = self.peek(1)
            if nxt == "(":
                self.i += 2
                statements = self.statements(closer=")")
                self.i += 1
                return self.member_chain(ArrayExpression(tuple(statements), self.pos(start)))
            if nxt == "{":
                return self.hashtable()
            if nxt in SINGLE_QUOTES or nxt in DOUBLE_QUOTES:
                return self.here_string()
            raise self.error("expected '(' or '{' after '@'")
        if c == "$":
            return self.member_chain(self.variable_or_subexpression())
        if c == "(":
            self.i += 1
            self.skip_blanks_and_newlines()
            inner = self.pipeline_or_expression()
            self.skip_blanks_and_newlines()
            if self.peek() != ")":
                raise self.error(f"expected ')' to close the '(' at {self.pos(start)}, "
                                 f"found {self.describe_here()}")
            self.i += 1
            return self.member_chain(inner)
        if c == "{":
            return self.script_block()
        raise self.error(f"expected a value, found {self.describe_here()}")

    def member_chain(self, node: Any) -> Any:
        while self.peek() == "." and _is_name_start(self.peek(1)):
            at = self.i
            self.i += 1
            name_start = self.i
            while _is_name_char(self.peek()):
                self.i += 1
            if self.peek() == "(":
                raise self.error(f"method calls (.{self.text[name_start:self.i]}()) are not supported", at)
            node = MemberAccess(node, self.text[name_start:self.i], self.pos(at))
        if self.peek() == "[":
            at = self.i
            self.i += 1
            self.skip_blanks()
            index = self.expression()
            self.skip_blanks()
            if self.peek() != "]":
                raise self.error(f"expected ']' to close the '[' at {self.pos(at)}, found {self.describe_here()}")
            self.i += 1
            return self.member_chain(Index(node, index, self.pos(at)))
        return node

    def variable_name(self) -> tuple[str, SourcePosition]:
        start = self.i
        self.i += 1  # "$"
        if self.peek() == "{":
            end = self.text.find("}", self.i)
            if end < 0:
                raise self.error("unterminated '${': missing '}'", start)
            name = self.text[self.i + 1:end]
            self.i = end + 1
            return name, self.pos(start)
        name_start = self.i
        while _is_name_char(self.peek()):
            self.i += 1
        name = self.text[name_start:self.i]
        if not name:
            raise self.error("expected a variable name after '$'", start)
        if name.lower() in _SCOPES and self.peek() == ":" and _is_name_start(self.peek(1)):
            self.i += 1
            scoped_start = self.i
            while _is_name_char(self.peek()):
                self.i += 1
            scoped = self.text[scoped_start:self.i]
            # $global:x and $script:x are $x in a script run top to bottom; $env:X stays apart.
            name = f"env:{scoped}" if name.lower() == "env" else scoped
        return name, self.pos(start)

    def at_expansion(self) -> bool:
        """At a `$name`, `${name}` or `$(...)` inside text (a lone `$` is text)."""
        return self.peek() == "$" and (_is_name_start(self.peek(1)) or self.peek(1) in "{(")

    def expand(self, parts: list[Any], text: list[str]) -> list[str]:
        """Close the text read so far and add the expansion that starts here; a fresh text buffer."""
        if text:
            parts.append("".join(text))
        parts.append(self.variable_or_subexpression())
        return []

    def variable_or_subexpression(self) -> Any:
        start = self.i
        if self.peek(1) == "(":
            self.i += 2
            statements = self.statements(closer=")")
            self.i += 1
            return SubExpression(tuple(statements), self.pos(start))
        name, position = self.variable_name()
        return VariableRef(name, position)

    def single_quoted(self) -> Literal:
        start = self.i
        self.i += 1
        out: list[str] = []
        while True:
            c = self.peek()
            if c == "":
                raise self.error("unterminated string: missing closing quote (')", start)
            if c in SINGLE_QUOTES:
                if self.peek(1) in SINGLE_QUOTES and self.peek(1) != "":
                    out.append(c)
                    self.i += 2
                    continue
                self.i += 1
                return Literal("".join(out), self.pos(start))
            out.append(c)
            self.i += 1

    def double_quoted(self) -> Any:
        start = self.i
        self.i += 1
        parts: list[Any] = []
        text: list[str] = []
        while True:
            c = self.peek()
            if c == "":
                raise self.error('unterminated string: missing closing quote (")', start)
            if c in DOUBLE_QUOTES:
                if self.peek(1) in DOUBLE_QUOTES and self.peek(1) != "":
                    text.append(c)
                    self.i += 2
                    continue
                self.i += 1
                break
            if c == "`":
                nxt = self.peek(1)
                if nxt == "":
                    raise self.error('unterminated string: missing closing quote (")', start)
                text.append(_BACKTICK_ESCAPES.get(nxt, nxt))
                self.i += 2
            elif self.at_expansion():
                # "$x.Name" expands $x only (about_Quoting_Rules); use "$($x.Name)" for the member.
                text = self.expand(parts, text)
            else:
                text.append(c)
                self.i += 1
        return self.text_node(parts, text, start)

    def text_node(self, parts: list[Any], text: list[str], start: int) -> Any:
        """A string read from `start`: constant text, or text with expansions."""
        if text:
            parts.append("".join(text))
        if all(isinstance(p, str) for p in parts):
            return Literal("".join(parts), self.pos(start))
        return ExpandableString(tuple(parts), self.pos(start))

    def hashtable(self) -> HashtableLiteral:
        start = self.i
        self.i += 2
        entries: list[HashtableEntry] = []
        seen: dict[str, SourcePosition] = {}
        while True:
            self.skip_blanks_and_newlines(semicolons=True)
            c = self.peek()
            if c == "}":
                self.i += 1
                return HashtableLiteral(tuple(entries), self.pos(start))
            if c == "":
                raise self.error("unterminated hashtable: missing '}'", start)
            key_at = self.i
            if c in SINGLE_QUOTES or c in DOUBLE_QUOTES:
                key_node = self.primary()
                if not isinstance(key_node, Literal):
                    raise self.error("hashtable keys must be constant text", key_at)
                key = str(key_node.value)
            elif _is_name_char(c):
                while _is_name_char(self.peek()) or self.peek() == "-":
                    self.i += 1
                key = self.text[key_at:self.i]
            else:
                raise self.error(f"expected a hashtable key, found {self.describe_here()}")
            if key.lower() in seen:
                raise self.error(f"duplicate key {key!r} in hashtable (first at {seen[key.lower()]})", key_at)
            seen[key.lower()] = self.pos(key_at)
            self.skip_blanks()
            if self.peek() != "=":
                raise self.error(f"expected '=' after hashtable key {key!r}, found {self.describe_here()}")
            self.i += 1
            self.skip_blanks_and_newlines()
            value = self.pipeline_or_expression()
            entries.append(HashtableEntry(key, self.pos(key_at), value))
            self.skip_blanks()
            if self.peek() not in (";", "\n", "}", ""):
                raise self.error(f"expected ';', a newline or '}}' in hashtable, found {self.describe_here()}")

    def script_block(self) -> ScriptBlock:
        start = self.i
        self.i += 1
        try:
            statements = self.statements(closer="}")
        except TenantError as err:
            self.i = start
            end = self._block_end()
            return ScriptBlock(self.text[start + 1:end - 1], self.pos(start), (), err)
        if self.peek() != "}":  # statements() stops only at its closer
            raise self.error("unterminated script block: missing '}'", start)
        self.i += 1
        return ScriptBlock(self.text[start + 1:self.i - 1], self.pos(start), tuple(statements))

    def here_string(self) -> Any:
        """@"..."@ (expanding) or @'...'@: the text between the line after the opener and the line
        that starts with the closer (about_Quoting_Rules)."""
        start = self.i
        quote = self.peek(1)
        self.i += 2
        while self.peek() in (" ", "\t", "\r"):
            self.i += 1
        if self.peek() != "\n":
            raise self.error("a here-string's text starts on the line after its opening @" + quote)
        self.i += 1
        closers = SINGLE_QUOTES if quote in SINGLE_QUOTES else DOUBLE_QUOTES
        parts: list[Any] = []
        text: list[str] = []
        while True:
            c = self.peek()
            if c == "":
                raise self.error(f"unterminated here-string: missing a line that starts with {quote}@", start)
            if c == "\n" and self.peek(1) in closers and self.peek(1) != "" and self.peek(2) == "@":
                self.i += 3
                break
            if c == "\r" and self.peek(1) == "\n":
                self.i += 1
                continue
            if closers is DOUBLE_QUOTES and c == "`" and self.peek(1) not in ("", "\n"):
                text.append(_BACKTICK_ESCAPES.get(self.peek(1), self.peek(1)))
                self.i += 2
            elif closers is DOUBLE_QUOTES and self.at_expansion():
                text = self.expand(parts, text)
            else:
                text.append(c)
                self.i += 1
        return self.text_node(parts, text, start)

    def _block_end(self) -> int:
        """The index after the `}` that closes the block starting here (body not parsed)."""
        start = self.i
        depth = 0
        while True:
            c = self.peek()
            if c == "":
                raise self.error("unterminated script block: missing '}'", start)
            if c in SINGLE_QUOTES:
                self.single_quoted()
                continue
            if c in DOUBLE_QUOTES:
                self.double_quoted()
                continue
            if c == "#" or (c == "<" and self.peek(1) == "#"):
                self.skip_blanks()
                continue
            self.i += 1
            if c == "`":
                self.i += 1
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return self.i


def parse_integer(raw: str) -> int | None:
    """An integer spelled in ASCII digits (a longer one is text: no cmdlet takes such a number)."""
    body = raw[1:] if raw[:1] in "+-" else raw
    if body and all(c in _DIGITS for c in body) and len(body) <= _MAX_DIGITS:
        return int(raw)
    return None


# ---------------------------------------------------------------- quoting

def quote_single(text: str) -> str:
    """A single-quoted literal that parses back to `text` exactly."""
    return "'" + "".join(c + c if c in SINGLE_QUOTES else c for c in text) + "'"


def quote_double(text: str) -> str:
    """A double-quoted literal that parses back to `text` exactly."""
    out = []
    for c in text:
        if c in DOUBLE_QUOTES or c in "`$":
            out.append("`" + c)
        else:
            out.append(c)
    return '"' + "".join(out) + '"'
