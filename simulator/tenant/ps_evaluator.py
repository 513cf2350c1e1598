"""Running a parsed PowerShell script (`ps_parser.Script`): values, variables, argument binding.

`run_script` walks the statements with a variable table and hands every command to a callback
as an `Invocation`; its arguments are evaluated only when the callback asks
(`Invocation.arguments()`), so `Connect-MicrosoftTeams -Credential $cred` with `$cred` set
outside the script is no error — only a modelled cmdlet evaluates (and checks) its arguments.
`bind_arguments` matches evaluated arguments to a cmdlet's parameter table the way PowerShell's
parameter binder does for the cases the parser supports (names case-insensitive, exact names
only). What each cmdlet does to the tenant is `ps_loader`'s part.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from simulator.tenant.errors import SourcePosition, TenantError
from simulator.tenant.ps_parser import (
    ArrayExpression,
    ArrayLiteral,
    Assignment,
    Command,
    ExpandableString,
    ExpressionStatement,
    HashtableLiteral,
    Literal,
    MemberAccess,
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
        return [self.evaluate(statement)]

    def run_pipeline(self, pipeline: Pipeline) -> Value:
        result: Value | None = None
        for index, command in enumerate(pipeline.commands):
            invocation = Invocation(command.name, command.position, command, index, self)
            result = self.invoke(invocation)
        return result if result is not None else Value(None, pipeline.position)

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
        raise TypeError(f"not an expression: {node!r}")

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
        if isinstance(target.data, Hashtable):
            item = target.data.get(name)
            return Value(None, position) if item is None else replace(item.value, position=position)
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
