"""Bad input in a file a user wrote (tenant, lab, scenario): one error type and one position format.

Every loader raises a subclass of `InputError`; `str(err)` is `FILE:LINE:COL: what was expected`,
and the command line turns it into exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass


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
