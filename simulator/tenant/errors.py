"""Errors and warnings from loading tenant files; both point at FILE:LINE:COL."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.errors import InputError, SourcePosition

__all__ = ["SourcePosition", "TenantError", "TenantWarning"]


class TenantError(InputError):
    """Bad tenant input."""


@dataclass(frozen=True)
class TenantWarning:
    message: str
    position: SourcePosition | None = None

    def __str__(self) -> str:
        return f"{self.position}: warning: {self.message}" if self.position else f"warning: {self.message}"
