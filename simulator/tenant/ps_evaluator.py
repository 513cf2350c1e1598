"""Running a parsed PowerShell script (`ps_parser.Script`): values, variables, argument binding.

`run_script` walks the statements with a variable table and hands every command to a callback
as an `Invocation`; its arguments are evaluated only when the callback asks
(`Invocation.arguments()`), so `Connect-MicrosoftTeams -Credential $cred` with `$cred` set
outside the script is no error — only a modelled cmdlet evaluates (and checks) its arguments.

The language itself runs here: `foreach` and `if`, comparisons (case-insensitive on text, as
PowerShell's), and the pipeline. A command after `|` is invoked once per piped value
(`Invocation.piped`), as a cmdlet's process block is. `ForEach-Object` (`%`), `Where-Object`
(`?`, `where`) and `Import-Csv` are part of the language here: they run script blocks and read
files. A CSV file is read relative to the script's folder; a missing file is an error at the
`Import-Csv` line, a missing column an error where the script reads it. Loops end: `foreach`
runs over a list that exists before it starts.
`bind_arguments` matches evaluated arguments to a cmdlet's parameter table the way PowerShell's
parameter binder does for the cases the parser supports (names case-insensitive, exact names
only). What each cmdlet does to the tenant is `ps_loader`'s part.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from simulator.errors import read_source
from simulator.tenant.dotnet_regex import DotnetRegexError, compile_dotnet
from simulator.tenant.errors import SourcePosition, TenantError
from simulator.tenant.ps_parser import (
    COMPARISON_OPERATORS,
    ArrayExpression,
    ArrayLiteral,
    Assignment,
    BinaryOperation,
    Command,
    ExpandableString,
    ExpressionStatement,
    ForeachStatement,
    HashtableLiteral,
    IfStatement,
    Index,
    Literal,
    MemberAccess,
    Not,
    ParameterArg,
    Pipeline,
    Script,
    ScriptBlock,
    Splat,
    SubExpression,
    VariableRef,
)

# ---------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class Unmodelled:
    """The output of something drlab does not model (an unmodelled cmdlet, $env:X)."""

    source: str

    def __str__(self) -> str:
        return f"<output of {self.source}>"


@dataclass(frozen=True)
class Value:
    """A runtime value and where it was written.

    `data` is str, int, bool, None, a tuple of Value (an array), a Hashtable, a ScriptBlock,
    Unmodelled, or an object a cmdlet returned (a normalization rule made with -InMemory).
    """

    data: Any
    position: SourcePosition
    text: str | None = None  # the spelling of an unquoted number

    @property
    def is_array(self) -> bool:
        return isinstance(self.data, tuple)


@dataclass(frozen=True)
class HashtableItem:
    key: str
    key_position: SourcePosition
    value: Value


@dataclass(frozen=True)
class Hashtable:
    """@{...}: keys compare case-insensitively, insertion order kept."""

    items: tuple[HashtableItem, ...]

    def get(self, key: str) -> HashtableItem | None:
        for item in self.items:
            if item.key.lower() == key.lower():
                return item
        return None

    def keys(self) -> list[str]:
        return [item.key for item in self.items]

    def __str__(self) -> str:
        return "System.Collections.Hashtable"  # what PowerShell prints for "$hashtable"


def to_text(value: Value) -> str:
    """PowerShell's conversion to [string], except that unquoted numbers keep their spelling."""
    data = value.data
    if data is None:
        return ""
    if isinstance(data, bool):
        return "True" if data else "False"
    if isinstance(data, int):
        return value.text if value.text is not None else str(data)
    if isinstance(data, tuple):
        return " ".join(to_text(v) for v in data)  # $OFS default
    return str(data)


@dataclass(frozen=True)
class CsvRow:
    """One row of a file read with Import-Csv: text cells by column (names compare ignoring case)."""

    path: str
    line: int
    cells: tuple[tuple[str, str], ...]  # (column, text) in the file's column order

    def get(self, column: str) -> str | None:
        return next((text for name, text in self.cells if name.lower() == column.lower()), None)

    def columns(self) -> list[str]:
        return [name for name, _ in self.cells]

    def __str__(self) -> str:  # as PowerShell prints a PSCustomObject in a string
        return "@{" + "; ".join(f"{name}={text}" for name, text in self.cells) + "}"


def read_csv(path: Path, shown: str, delimiter: str = ",") -> list[CsvRow]:
    """The rows of a CSV file whose first line names the columns (Import-Csv's format)."""
    text = read_source(path, TenantError, "CSV")
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[CsvRow] = []
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # Import-Csv skips blank lines
            if header is None:
                header = [cell.strip() for cell in record]
                seen: set[str] = set()
                for name in header:
                    if not name or name.lower() in seen:
                        raise TenantError(f"the header line needs a distinct name for every column, not "
                                          f"{name!r}", SourcePosition(shown, reader.line_num))
                    seen.add(name.lower())
                continue
            # A short row leaves the last columns empty, as Import-Csv does ($null there).
            cells = tuple((name, record[k] if k < len(record) else "") for k, name in enumerate(header))
            rows.append(CsvRow(shown, reader.line_num, cells))
    except csv.Error as err:
        raise TenantError(f"not a CSV file: {err}", SourcePosition(shown, reader.line_num)) from None
    return rows


@dataclass(frozen=True)
class NamedArgument:
    name: str  # as written, without "-"
    position: SourcePosition
    value: Value | None  # None: "-Name" with no colon; the next value may belong to it
    explicit: bool  # "-Name:value" or from a splatted hashtable


@dataclass
class Invocation:
    """One command about to run; arguments are evaluated on demand (see module docstring)."""

    name: str
    position: SourcePosition
    command: Command
    pipeline_index: int  # 0 for the first command of a pipeline; >0 means it gets piped input
    _runner: _Runner = field(repr=False)
    piped: Value | None = None  # the piped value this call handles (one call per value)

    def arguments(self) -> list[NamedArgument | Value]:
        return self._runner.evaluate_arguments(self.command)


InvokeCallback = Callable[[Invocation], "Value | None"]
MemberCallback = Callable[[Value, str, SourcePosition], Value]


def run_script(script: Script, invoke: InvokeCallback,
               get_member: MemberCallback | None = None) -> dict[str, Value]:
    """Run the statements in order; returns the final variable table (names lower-cased)."""
    runner = _Runner(script, invoke, get_member)
    for statement in script.statements:
        runner.execute(statement)
    return runner.variables


class _Runner:
    def __init__(self, script: Script, invoke: InvokeCallback, get_member: MemberCallback | None) -> None:
        self.script = script
        self.invoke = invoke
        self.get_member = get_member
        self.variables: dict[str, Value] = {}

    def execute(self, statement: Any) -> list[Value]:
        """Run one statement; returns what it writes to the output (for @() and $())."""
        if isinstance(statement, Assignment):
            value = self.evaluate(statement.value)
            self.variables[statement.variable.lower()] = value
            return []
        if isinstance(statement, ExpressionStatement):
            return [self.evaluate(statement.expression)]
        if isinstance(statement, ForeachStatement):
            outputs: list[Value] = []
            for item in unrolled(self.evaluate(statement.collection)):
                self.variables[statement.variable.lower()] = item
                outputs.extend(self.outputs(statement.body))
            return outputs
        if isinstance(statement, IfStatement):
            for condition, body in statement.clauses:
                if truthy(self.condition(condition)):
                    return self.outputs(body)
            return self.outputs(statement.else_body or ())
        return [self.evaluate(statement)]

    def condition(self, node: Any) -> Value:
        value = self.evaluate(node)
        if isinstance(value.data, Unmodelled):
            raise TenantError(f"this condition depends on {value.data}, which drlab does not model",
                              value.position)
        return value

    def run_pipeline(self, pipeline: Pipeline) -> Value:
        commands = list(pipeline.commands)
        piped: list[Value] | None = None
        if not isinstance(commands[0], Command):
            piped = unrolled(self.evaluate(commands.pop(0)))
        for index, command in enumerate(commands, start=len(pipeline.commands) - len(commands)):
            if piped is None:
                piped = unrolled(self.run_command(command, index, None))
                continue
            outputs: list[Value] = []
            for item in piped:
                outputs.extend(unrolled(self.run_command(command, index, item)))
            piped = outputs
        if not piped:
            return Value(None, pipeline.position)
        return piped[0] if len(piped) == 1 else Value(tuple(piped), pipeline.position)

    def run_command(self, command: Command, index: int, piped: Value | None) -> Value | None:
        invocation = Invocation(command.name, command.position, command, index, self, piped)
        builtin = _BUILTINS.get(command.name.lower())
        if builtin is not None:
            return builtin(self, invocation)
        return self.invoke(invocation)

    def run_block(self, block: Value, item: Value | None, what: str) -> list[Value]:
        """A script block's output, with $_ (and $PSItem) set to `item`; it runs in this scope."""
        if not isinstance(block.data, ScriptBlock):
            raise TenantError(f"{what} takes a script block {{ ... }}, not {to_text(block)!r}", block.position)
        if block.data.error is not None:
            raise block.data.error
        if item is None:
            return self.outputs(block.data.statements)
        saved = {name: self.variables.get(name) for name in ("_", "psitem")}
        self.variables["_"] = self.variables["psitem"] = item
        try:
            return self.outputs(block.data.statements)
        finally:  # $_ is the block's own: the value outside it comes back
            for name, value in saved.items():
                if value is None:
                    self.variables.pop(name, None)
                else:
                    self.variables[name] = value

    def evaluate(self, node: Any) -> Value:
        if isinstance(node, Literal):
            return Value(node.value, node.position, node.text)
        if isinstance(node, VariableRef):
            return self.lookup(node)
        if isinstance(node, ExpandableString):
            pieces = []
            for part in node.parts:
                if isinstance(part, str):
                    pieces.append(part)
                    continue
                value = self.evaluate(part)
                if isinstance(value.data, Unmodelled):
                    return Value(value.data, node.position)
                pieces.append(to_text(value))
            return Value("".join(pieces), node.position)
        if isinstance(node, MemberAccess):
            target = self.evaluate(node.target)
            return self.member(target, node.member, node.position)
        if isinstance(node, ArrayLiteral):
            return Value(tuple(self.evaluate(item) for item in node.items), node.position)
        if isinstance(node, ArrayExpression):
            return Value(tuple(self.outputs(node.statements)), node.position)
        if isinstance(node, SubExpression):
            outputs = self.outputs(node.statements)
            if not outputs:
                return Value(None, node.position)
            if len(outputs) == 1:
                return replace(outputs[0], position=node.position)
            return Value(tuple(outputs), node.position)
        if isinstance(node, HashtableLiteral):
            return Value(Hashtable(tuple(HashtableItem(e.key, e.key_position, self.evaluate(e.value))
                                         for e in node.entries)), node.position)
        if isinstance(node, ScriptBlock):
            return Value(node, node.position)
        if isinstance(node, Pipeline):
            return self.run_pipeline(node)
        if isinstance(node, Index):
            return self.index(self.evaluate(node.target), self.evaluate(node.index), node.position)
        if isinstance(node, Not):
            return Value(not truthy(self.condition(node.operand)), node.position)
        if isinstance(node, BinaryOperation):
            left = self.condition(node.left)
            if node.operator in ("and", "or"):  # short-circuit, as PowerShell does
                if truthy(left) == (node.operator == "or"):
                    return Value(node.operator == "or", node.position)
                return Value(truthy(self.condition(node.right)), node.position)
            right = self.condition(node.right)
            if node.operator == "xor":
                return Value(truthy(left) != truthy(right), node.position)
            return compare(node.operator, left, right, node.position)
        raise TypeError(f"not an expression: {node!r}")

    def index(self, target: Value, index: Value, position: SourcePosition) -> Value:
        if isinstance(target.data, Unmodelled):
            return Value(target.data, position)
        if isinstance(target.data, Hashtable):
            item = target.data.get(to_text(index))
            return Value(None, position) if item is None else replace(item.value, position=position)
        if isinstance(target.data, CsvRow):
            return self.member(target, to_text(index), position)
        items = target.data if target.is_array else (target,)
        if isinstance(index.data, bool) or not isinstance(index.data, int):
            raise TenantError(f"an index into a list is a whole number, not {to_text(index)!r}", index.position)
        if -len(items) <= index.data < len(items):
            return replace(items[index.data], position=position)
        return Value(None, position)  # past the end is $null in PowerShell

    def outputs(self, statements: Iterable[Any]) -> list[Value]:
        """Output of statements, arrays unrolled one level as the pipeline does."""
        result: list[Value] = []
        for statement in statements:
            for value in self.execute(statement):
                if value.is_array:
                    result.extend(value.data)
                elif value.data is not None:
                    result.append(value)
        return result

    def lookup(self, node: VariableRef) -> Value:
        name = node.name.lower()
        if name == "true":
            return Value(True, node.position)
        if name == "false":
            return Value(False, node.position)
        if name == "null":
            return Value(None, node.position)
        if name.startswith("env:"):
            return Value(Unmodelled(f"$env:{node.name[4:]}"), node.position)
        if name not in self.variables:
            raise TenantError(f"unknown variable ${node.name}: it is not assigned earlier in the script",
                              node.position)
        # The value is reported where it is used; array elements keep where they were written.
        return replace(self.variables[name], position=node.position)

    def member(self, target: Value, name: str, position: SourcePosition) -> Value:
        if isinstance(target.data, Unmodelled):
            return Value(target.data, position)
        if name.lower() in ("count", "length") and (target.is_array or isinstance(target.data, Hashtable)):
            return Value(len(target.data.items if isinstance(target.data, Hashtable) else target.data), position)
        if target.is_array:  # member enumeration: the member of every element
            return Value(tuple(self.member(item, name, position) for item in target.data), position)
        if isinstance(target.data, Hashtable):
            item = target.data.get(name)
            return Value(None, position) if item is None else replace(item.value, position=position)
        if isinstance(target.data, CsvRow):
            row = target.data
            text = row.get(name)
            if text is None:
                raise TenantError(f"{row.path} has no column {name!r} (its columns: {', '.join(row.columns())})",
                                  position)
            return Value(text, position)
        if self.get_member is not None:
            return self.get_member(target, name, position)
        raise TenantError(f"value has no member {name!r}", position)

    def evaluate_arguments(self, command: Command) -> list[NamedArgument | Value]:
        result: list[NamedArgument | Value] = []
        for argument in command.arguments:
            if isinstance(argument, ParameterArg):
                if argument.value is None:
                    result.append(NamedArgument(argument.name, argument.position, None, explicit=False))
                else:
                    result.append(NamedArgument(argument.name, argument.position,
                                                self.evaluate(argument.value), explicit=True))
            elif isinstance(argument, Splat):
                splatted = self.lookup(VariableRef(argument.variable, argument.position))
                if isinstance(splatted.data, Hashtable):
                    result.extend(NamedArgument(item.key, item.key_position, item.value, explicit=True)
                                  for item in splatted.data.items)
                elif splatted.is_array:
                    result.extend(splatted.data)
                else:
                    raise TenantError(f"cannot splat @{argument.variable}: it holds neither a hashtable "
                                      "nor an array", argument.position)
            else:
                result.append(self.evaluate(argument))
        return result


def unrolled(value: Value | None) -> list[Value]:
    """What a value sends down a pipeline: the elements of an array, nothing for $null."""
    if value is None:
        return []
    if value.is_array:
        return list(value.data)
    return [] if value.data is None else [value]


def truthy(value: Value) -> bool:
    """PowerShell's conversion to [bool] (about_Booleans)."""
    data = value.data
    if data is None:
        return False
    if isinstance(data, bool | int):
        return bool(data)
    if isinstance(data, str):
        return data != ""
    if isinstance(data, tuple):
        return len(data) > 1 or (len(data) == 1 and truthy(data[0]))
    return True


def wildcard_match(wildcard: str, text: str, case_sensitive: bool = False) -> bool:
    """`text -like wildcard` (about_Wildcards)."""
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.fullmatch(_like_pattern(wildcard), text, flags) is not None


def _like_pattern(wildcard: str) -> str:
    """A -like wildcard (`*`, `?`, `[a-z]`; about_Wildcards) as a regular expression."""
    out, k = [], 0
    while k < len(wildcard):
        c = wildcard[k]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and "]" in wildcard[k + 1:]:
            end = wildcard.index("]", k + 1)
            out.append("[" + re.escape(wildcard[k + 1:end]).replace("\\-", "-") + "]")
            k = end
        elif c == "`" and k + 1 < len(wildcard):
            k += 1
            out.append(re.escape(wildcard[k]))
        else:
            out.append(re.escape(c))
        k += 1
    return "".join(out)


def _converted(left: Value, right: Value) -> tuple[Any, Any]:
    """The two sides as PowerShell compares them: the right converted to the left's type."""
    a, b = left.data, right.data
    if isinstance(a, bool):
        return a, truthy(right)
    if isinstance(a, int) and not isinstance(b, bool):
        if isinstance(b, int):
            return a, b
        text = to_text(right).strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return a, int(text)
        raise TenantError(f"cannot compare the number {to_text(left)} with the text {text!r}", right.position)
    if a is None or b is None:
        return a, b
    return to_text(left), to_text(right)


def compare(operator: str, left: Value, right: Value, position: SourcePosition) -> Value:
    """`left -operator right` (about_Comparison_Operators); a list on the left filters it."""
    case_sensitive = operator.startswith("c") and operator[1:] in COMPARISON_OPERATORS
    op = operator[1:] if case_sensitive else operator
    if op in ("contains", "notcontains", "in", "notin"):
        collection, item = (left, right) if op in ("contains", "notcontains") else (right, left)
        members = collection.data if collection.is_array else (collection,)
        found = any(_holds("eq", m, item, case_sensitive, position) for m in members)
        return Value(found == (op in ("contains", "in")), position)
    if left.is_array:
        return Value(tuple(item for item in left.data if _holds(op, item, right, case_sensitive, position)), position)
    return Value(_holds(op, left, right, case_sensitive, position), position)


def _holds(op: str, left: Value, right: Value, case_sensitive: bool, position: SourcePosition) -> bool:
    if op in ("like", "notlike", "match", "notmatch"):
        text, pattern = to_text(left), to_text(right)
        flags = 0 if case_sensitive else re.IGNORECASE
        if op in ("like", "notlike"):
            return wildcard_match(pattern, text, case_sensitive) == (op == "like")
        try:
            regex = compile_dotnet(pattern)
        except DotnetRegexError as err:
            raise TenantError(f"-{op} takes a regular expression: {err}", right.position) from None
        found = re.compile(regex.pattern, regex.flags | flags).search(text) is not None
        return found == (op == "match")
    a, b = _converted(left, right)
    if isinstance(a, str) and isinstance(b, str) and not case_sensitive:
        a, b = a.lower(), b.lower()
    if op in ("eq", "ne"):
        return (a == b) == (op == "eq")
    if a is None or b is None or type(a) is not type(b):
        raise TenantError(f"cannot order {describe_data(left)} and {describe_data(right)} with -{op}", position)
    return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]


def describe_data(value: Value) -> str:
    return "$null" if value.data is None else repr(to_text(value))


# ---------------------------------------------------------------- the language's own cmdlets

def _foreach_object(runner: _Runner, invocation: Invocation) -> Value | None:
    bound = bind_arguments(invocation, ("Process", "Begin", "End", "MemberName"), positional=("Process",))
    outputs: list[Value] = []
    if invocation.piped is None:  # no input: -Begin and -End still run, -Process does not
        for name in ("Begin", "End"):
            if name in bound:
                outputs.extend(runner.run_block(bound[name].value, None, f"-{name} of ForEach-Object"))
        return Value(tuple(outputs), invocation.position)
    if "Begin" in bound or "End" in bound:
        raise TenantError("-Begin and -End of ForEach-Object after a pipe run once per value here; "
                          "put that work before or after the pipeline", invocation.position)
    process = bound.get("Process") or bound.get("MemberName")
    if process is None:
        raise TenantError("ForEach-Object needs a script block: ForEach-Object { ... $_ ... }", invocation.position)
    if isinstance(process.value.data, str):  # ForEach-Object Name: that member of every value
        return runner.member(invocation.piped, process.value.data, process.value.position)
    outputs.extend(runner.run_block(process.value, invocation.piped, "ForEach-Object"))
    return Value(tuple(outputs), invocation.position)


_WHERE_OPERATORS = {op.upper(): op for op in COMPARISON_OPERATORS} | {
    ("C" + op).upper(): "c" + op for op in COMPARISON_OPERATORS}


def _where_object(runner: _Runner, invocation: Invocation) -> Value | None:
    bound = bind_arguments(invocation, ("FilterScript", "Property", "Value", *_WHERE_OPERATORS),
                           switches=tuple(_WHERE_OPERATORS), positional=("FilterScript", "Value"))
    item = invocation.piped
    script = bound.get("FilterScript")
    operators = [name for name in _WHERE_OPERATORS if name in bound]
    if script is not None and isinstance(script.value.data, ScriptBlock) and not operators:
        if item is None:
            return None
        keep = truthy(Value(tuple(runner.run_block(script.value, item, "Where-Object")), invocation.position))
        return item if keep else None
    # Where-Object Name -eq value: the comparison syntax (about_Where-Object)
    prop = bound.get("Property") or script
    if prop is None or len(operators) != 1 or "Value" not in bound:
        raise TenantError("Where-Object takes a script block { $_.Name -eq 'x' } or Name -eq 'x'",
                          invocation.position)
    if item is None:
        return None
    member = runner.member(item, to_text(prop.value), prop.value.position)
    if isinstance(member.data, Unmodelled):
        raise TenantError(f"this filter depends on {member.data}, which drlab does not model", invocation.position)
    keep = truthy(compare(_WHERE_OPERATORS[operators[0]], member, bound["Value"].value, invocation.position))
    return item if keep else None


def _import_csv(runner: _Runner, invocation: Invocation) -> Value | None:
    bound = bind_arguments(invocation, ("Path", "LiteralPath", "Delimiter", "Encoding"), positional=("Path",))
    given = bound.get("Path") or bound.get("LiteralPath")
    if given is None or invocation.piped is not None:
        raise TenantError("Import-Csv needs -Path FILE (read relative to the script's folder)", invocation.position)
    name = to_text(given.value)
    path = Path(name)
    if not path.is_absolute() and runner.script.path != "<string>":
        path = Path(runner.script.path).parent / path
    if not path.is_file():
        raise TenantError(f"cannot read CSV file {name!r}: no such file (looked for {path})", given.value.position)
    delimiter = to_text(bound["Delimiter"].value) if "Delimiter" in bound else ","
    if len(delimiter) != 1:
        raise TenantError(f"-Delimiter is one character, not {delimiter!r}", bound["Delimiter"].value.position)
    rows = read_csv(path, str(path), delimiter)
    return Value(tuple(Value(row, invocation.position) for row in rows), invocation.position)


_Builtin = Callable[["_Runner", Invocation], "Value | None"]
_BUILTINS: dict[str, _Builtin] = {
    "foreach-object": _foreach_object, "foreach": _foreach_object, "%": _foreach_object,
    "where-object": _where_object, "where": _where_object, "?": _where_object,
    "import-csv": _import_csv,
}
BUILTIN_COMMANDS = ("ForEach-Object", "Where-Object", "Import-Csv")


# ---------------------------------------------------------------- parameter binding

@dataclass(frozen=True)
class BoundArgument:
    name: str  # the canonical parameter name from the cmdlet's table
    value: Value
    name_position: SourcePosition  # where "-Name" was written (the value's position for positionals)


def bind_arguments(invocation: Invocation, parameters: Sequence[str], switches: Iterable[str] = (),
                   positional: Sequence[str] = ("Identity",)) -> dict[str, BoundArgument]:
    """Match arguments to `parameters` (canonical spellings) like PowerShell's binder.

    `switches` take no value unless written `-Switch:$value`. A name that is not exactly one of
    `parameters` (case-insensitive) is an error, prefixes included: a runbook should say what it
    means. Keys of the result are the canonical names.
    """
    by_lower = {p.lower(): p for p in parameters}
    switch_set = {s.lower() for s in switches}
    bound: dict[str, BoundArgument] = {}
    free_positional = list(positional)
    elements = invocation.arguments()
    k = 0
    while k < len(elements):
        element = elements[k]
        k += 1
        if isinstance(element, NamedArgument):
            canonical = by_lower.get(element.name.lower())
            if canonical is None:
                raise TenantError(_unknown_parameter_message(invocation.name, element.name, parameters),
                                  element.position)
            if canonical in bound:
                raise TenantError(f"parameter -{canonical} is given more than once "
                                  f"(first at {bound[canonical].name_position})", element.position)
            if element.value is not None:
                value = element.value
            elif canonical.lower() in switch_set:
                value = Value(True, element.position)
            else:
                if k >= len(elements) or isinstance(elements[k], NamedArgument):
                    raise TenantError(f"missing a value for -{canonical} of {invocation.name}",
                                      element.position)
                value = elements[k]
                k += 1
            bound[canonical] = BoundArgument(canonical, value, element.position)
            if canonical in free_positional:
                free_positional.remove(canonical)
        else:
            if not free_positional:
                raise TenantError(f"unexpected positional argument {to_text(element)!r} to "
                                  f"{invocation.name}; name its parameter", element.position)
            canonical = free_positional.pop(0)
            bound[canonical] = BoundArgument(canonical, element, element.position)
    return bound


def _unknown_parameter_message(cmdlet: str, name: str, parameters: Sequence[str]) -> str:
    message = f"{cmdlet} has no parameter -{name}"
    close = difflib.get_close_matches(name.lower(), [p.lower() for p in parameters], n=1, cutoff=0.7)
    if close:
        canonical = {p.lower(): p for p in parameters}[close[0]]
        message += f" (did you mean -{canonical}?)"
    return message
