"""The one registry of assertion kinds: ``"rows.consistent"`` -> factory.

Suites (Python or TOML) only ever build assertions through this table, so a name means one
thing everywhere, duplicates are refused, and TOML files can name kinds without executing code.
"""
from __future__ import annotations

import inspect
from typing import Callable

from .errors import SuiteError

__all__ = ["register", "get", "kinds", "RESERVED"]

_KINDS: dict[str, Callable] = {}

# Namespaces owned by tripwire's own catalogue (DESIGN §3): users register under other names.
RESERVED = frozenset({"rows", "boxes", "boxes3d", "points", "ecg", "drift", "tripwire"})


def register(kind: str, factory: Callable, *, builtin: bool = False) -> Callable:
    if not isinstance(kind, str) or not kind or kind != kind.strip():
        raise SuiteError(f"assertion kind must be a non-empty name, got {kind!r}")
    if kind in _KINDS:
        raise SuiteError(f"assertion kind {kind!r} is already registered; pick another name")
    if not builtin and kind.split(".", 1)[0] in RESERVED:
        raise SuiteError(
            f"assertion kind {kind!r} uses the reserved namespace {kind.split('.', 1)[0]!r} "
            f"(reserved: {', '.join(sorted(RESERVED))}); use your own prefix, e.g. 'my.{kind}'"
        )
    _KINDS[kind] = factory
    return factory


def unregister(kind: str) -> None:
    """Remove a user kind (tests and notebooks re-running a cell)."""
    if kind.split(".", 1)[0] in RESERVED:
        raise SuiteError(f"cannot unregister built-in kind {kind!r}")
    _KINDS.pop(kind, None)


def get(kind: str) -> Callable:
    try:
        return _KINDS[kind]
    except KeyError:
        raise SuiteError(
            f"unknown assertion kind {kind!r}; valid kinds: {', '.join(sorted(_KINDS))}"
        ) from None


def kinds() -> list[str]:
    return sorted(_KINDS)


def build(kind: str, params: dict) -> object:
    """Instantiate ``kind`` with keyword ``params``, naming any unknown parameter."""
    factory = get(kind)
    sig = inspect.signature(factory)
    accepted = [p for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = {p.name for p in accepted}
    unknown = sorted(set(params) - names)
    if unknown:
        raise SuiteError(
            f"{kind}: unknown parameter(s) {', '.join(unknown)}; valid parameters: "
            f"{', '.join(sorted(names)) or '(none)'}"
        )
    missing = sorted(p.name for p in accepted if p.default is p.empty and p.name not in params)
    if missing:
        raise SuiteError(f"{kind}: missing required parameter(s) {', '.join(missing)}")
    return factory(**params)
