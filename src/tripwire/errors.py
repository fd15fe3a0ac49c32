"""Errors that say what was wrong, what was expected, and how to fix it."""
from __future__ import annotations

__all__ = ["TripwireError", "InputError", "ColumnError", "SuiteError", "BackendUnavailable"]


class TripwireError(Exception):
    """Base class for every error tripwire raises on purpose."""


class InputError(TripwireError, TypeError):
    """The input (a table, a parameter) is not what tripwire can use."""

    def __init__(self, what: str, *, expected: str, fix: str, found: str | None = None):
        self.what, self.expected, self.found, self.fix = what, expected, found, fix
        parts = [what, f"expected: {expected}"]
        if found is not None:
            parts.append(f"found: {found}")
        parts.append(f"fix: {fix}")
        super().__init__("; ".join(parts))


class ColumnError(InputError, KeyError):
    """A named column is missing or has a type the assertion cannot read."""

    def __init__(self, column: str, what: str, *, expected: str, found: str, fix: str):
        self.column = column
        super().__init__(what, expected=expected, found=found, fix=fix)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class SuiteError(TripwireError, ValueError):
    """A suite definition (Python or TOML) names an unknown kind or parameter."""


class BackendUnavailable(TripwireError, ModuleNotFoundError):
    """An optional backend's package is not installed."""
