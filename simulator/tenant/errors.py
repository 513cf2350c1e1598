"""Errors and warnings from loading tenant files; both point at FILE:LINE:COL."""

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
    """Bad input in a file a user wrote (tenant, lab, scenario): `str(err)` is `FILE:LINE:COL: message`.

    `position` is a SourcePosition, or already text ("scenario.yaml:12") when the input is a
    scenario step that holds its own position."""

    def __init__(self, message: str, position: SourcePosition | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return f"{self.position}: {self.message}" if self.position else self.message


class TenantError(InputError):
    """Bad tenant input; the CLI exits 1 on it."""


@dataclass(frozen=True)
class TenantWarning:
    message: str
    position: SourcePosition | None = None

    def __str__(self) -> str:
        return f"{self.position}: warning: {self.message}" if self.position else f"warning: {self.message}"
