"""Bad input in a file a user wrote (tenant, lab, scenario): one error type and one position format.

Every loader raises a subclass of `InputError`; `str(err)` is `FILE:LINE:COL: what was expected`,
and the command line turns it into exit code 2. Every loader reads its file with `read_source`.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourcePosition:
    path: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


class InputError(Exception):
    """Bad input in a file a user wrote: `str(err)` is `FILE:LINE:COL: message`.

    `position` is a SourcePosition, or already text ("scenario.yaml:12") when the input is a
    scenario step that holds its own position."""

    def __init__(self, message: str, position: SourcePosition | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.position}: {self.message}" if self.position else self.message


def read_source(path: str | Path, error: type[InputError], what: str) -> str:
    """The file's text (UTF-8; a byte-order mark, as Windows editors write, dropped); a file that
    cannot be read, or bytes that are not UTF-8, are `error` at the line and column of the bad byte."""
    p = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise error(f"cannot read {what} file: {err.strerror}", SourcePosition(p, 1, 1)) from None
    body = data.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        before = body[:err.start].decode("utf-8")  # columns count characters, not bytes
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise error(f"not UTF-8 text: byte 0x{body[err.start]:02x} {err.reason}",
                    SourcePosition(p, line, column)) from None
