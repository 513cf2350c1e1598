"""Position-keeping YAML: the one reader tenant, lab and scenario files go through.

A file is read as UTF-8 and composed into YAML nodes (not Python values), so every mistake can
point at the node that is wrong. Whatever is wrong with the bytes or the YAML (not UTF-8, a
control character, a syntax error, a tag whose value does not construct, nesting too deep) is an
`InputError` subclass at `FILE:LINE:COL`, never a traceback. Each loader picks its own error
class (`YamlDoc(path, TenantError)`), so a scenario error is not a tenant error.

    doc = YamlDoc(path, ScenarioError)
    root = doc.compose(read_source(path, ScenarioError, "scenario"))
    for key, knode, vnode in doc.mapping(root, "the scenario file"): ...
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from simulator.errors import InputError, SourcePosition

NULL_TAG = "tag:yaml.org,2002:null"
# What a malformed tagged scalar raises from PyYAML's constructors (`!!int x`, `!!timestamp x`...).
_CONSTRUCT_ERRORS = (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError, RecursionError)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class YamlDoc:
    """A composed file's node helpers; every failure is `self.error` at the node's position."""

    def __init__(self, path: str, error: type[InputError] = InputError) -> None:
        self.path = path
        self.error = error
        self.loader = yaml.SafeLoader("")

    def compose(self, text: str) -> yaml.Node | None:
        """The node tree (None for an empty document)."""
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.reader.ReaderError as err:  # a NUL or other control character: no mark, an offset
            line, column = _line_col(text, err.position)
            raise self.error(f"not valid YAML: control character U+{err.character:04X} is not allowed",
                             SourcePosition(self.path, line, column)) from None
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            pos = SourcePosition(self.path, mark.line + 1, mark.column + 1) if mark else None
            raise self.error(f"not valid YAML: {err.problem or err.context}", pos) from None
        except yaml.YAMLError as err:
            raise self.error(f"not valid YAML: {err}", SourcePosition(self.path, 1, 1)) from None
        except RecursionError:
            raise self.error("not valid YAML: nested too deeply", SourcePosition(self.path, 1, 1)) from None

    def pos(self, node: yaml.Node) -> SourcePosition:
        return SourcePosition(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: yaml.Node, message: str) -> InputError:
        return self.error(message, self.pos(node))

    def value(self, node: yaml.Node, what: str) -> Any:
        """The node as plain Python (mappings and lists too); a tag that does not fit is an error."""
        try:
            return self.loader.construct_object(node, deep=True)
        except _CONSTRUCT_ERRORS:
            raise self.fail(node, f"{what}: cannot read {getattr(node, 'value', '')!r} as {node.tag}") from None

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out, seen = [], set()
        for k, v in node.value:
            key = self.scalar(k, str, f"a key of {what}")
            if key in seen:
                raise self.fail(k, f"duplicate key {key!r} in {what}")
            seen.add(key)
            out.append((key, k, v))
        return out

    def entries(self, node: yaml.Node, what: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """A mapping with only `allowed` keys and every `required` one: key -> (key node, value node)."""
        out = {}
        for key, knode, vnode in self.mapping(node, what):
            if key not in allowed:
                raise self.fail(knode, f"unknown key {key!r} in {what} (expected one of: {', '.join(allowed)})")
            out[key] = (knode, vnode)
        missing = [r for r in required if r not in out]
        if missing:
            raise self.fail(node, f"{what} needs {', '.join(repr(m) for m in missing)}")
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, typ: type, what: str, nullable: bool = False) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what} must be a single value")
        value = self.value(node, what)
        if value is None and nullable:
            return None
        if typ is str and isinstance(value, int | float) and not isinstance(value, bool):
            return node.value  # a number where text is wanted keeps its spelling (+1425... as typed)
        if typ is int and isinstance(value, bool) or not isinstance(value, typ):
            names = {str: "text", int: "an integer", bool: "true or false"}
            raise self.fail(node, f"{what} must be {names[typ]}, not {node.value!r}")
        return value

    def number(self, node: yaml.Node, what: str, low: float = 0.0, high: float = math.inf) -> float:
        """A finite number in [low, high] (an integer of any size is refused, not overflowed)."""
        value = self.value(node, what) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(node, f"{what} must be a number, not {getattr(node, 'value', '...')!r}")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not (math.isfinite(number) and low <= number <= high):
            bound = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
            raise self.fail(node, f"{what} must be {bound}, not {shorten(node.value)}")
        return number

    def integer(self, node: yaml.Node, what: str, low: int, high: int) -> int:
        value = self.scalar(node, int, what)
        if not low <= value <= high:
            raise self.fail(node, f"{what} must be between {low} and {high}, not {shorten(node.value)}")
        return value


def shorten(text: str) -> str:
    """A value as typed, cut short when it is enormous (1 followed by 400 zeros)."""
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text)} characters)"
