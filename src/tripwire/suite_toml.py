"""Suite files: a :class:`~tripwire.Suite` written as TOML.

A suite file is data, never code: it is parsed with :mod:`tomllib`, every assertion is built
through the registry (:func:`tripwire._registry.build`) by its kind name, and ``rows.check``
expressions go through tripwire's whitelisted expression parser. Nothing in the file is
imported, evaluated or executed.

Format::

    description = "what this suite checks"      # optional

    [[assertion]]
    kind = "rows.consistent"                    # required: a registered kind (`tripwire kinds`)
    name = "gender_per_name"                    # optional: defaults to the kind; unique in a suite
    table = "rows"                              # optional: the input table it reads
    id = "name"                                 # the kind's own keyword parameters
    attr = "gender"

    [[assertion]]
    kind = "rows.check"
    expr = "score < 0 or score > 1"

Durations: TOML has no duration type, so time parameters (``window``, ``step`` of
``rows.contiguous``) are **integers only**, counted in the time column's own unit (frames for an
integer column; the timestamp's unit — s, ms, us or ns — for a timestamp column: ``window =
3000`` on a ``timestamp[ms]`` column is 3 seconds). Python suites may pass ``datetime.timedelta``.
"""
from __future__ import annotations

import os
import tomllib
from typing import Any

from . import _registry
from .errors import SuiteError, TripwireError

__all__ = ["load", "from_dict", "TOP_LEVEL_KEYS", "COMMON_KEYS"]

TOP_LEVEL_KEYS = ("assertion", "description")
COMMON_KEYS = ("kind", "name", "table")


def load(path_or_text: str | os.PathLike) -> "Suite":  # noqa: F821 - Suite imported lazily
    """Load a suite from a TOML file path or from TOML text.

    A ``str`` naming an existing file (or any ``os.PathLike``) is read as a file. A one-line
    ``str`` that names no file is a path too (an error: suite file not found) when it ends in
    ``.toml`` or holds neither ``=`` nor ``[`` (it cannot be a suite: a mistyped path such as
    ``suit.tml`` or a folder). Any other ``str`` is TOML text.
    """
    if isinstance(path_or_text, os.PathLike) or (isinstance(path_or_text, str) and _looks_like_path(path_or_text)):
        path = os.fspath(path_or_text)
        if not os.path.isfile(path):
            what = " (that is a folder)" if os.path.isdir(path) else ""
            raise SuiteError(f"suite file not found: {path!r}{what}; pass the path of a .toml suite file")
        with open(path, "rb") as fh:
            raw = fh.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SuiteError(f"suite file {path!r} is not UTF-8 text ({exc}); save it as UTF-8") from None
        source = path
    elif isinstance(path_or_text, str):
        text, source = path_or_text, "<suite text>"
    else:
        raise SuiteError(f"Suite.from_toml takes a file path or TOML text, got {type(path_or_text).__name__}")
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{source}: invalid TOML: {exc}") from None
    return from_dict(spec, source=source)


def _looks_like_path(text: str) -> bool:
    if "\n" in text or not text.strip():
        return False
    if os.path.isfile(text) or text.strip().endswith(".toml"):
        return True
    return "=" not in text and "[" not in text  # a one-line suite needs a key = value or a [table]


def from_dict(spec: dict[str, Any], *, source: str = "<suite dict>") -> "Suite":  # noqa: F821
    """Build a suite from the parsed form of a suite file: ``{"assertion": [{...}, ...]}``."""
    from .suite import Suite

    if not isinstance(spec, dict):
        raise SuiteError(f"{source}: a suite spec is a table/dict with an 'assertion' list, "
                         f"got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise SuiteError(f"{source}: unknown top-level key(s) {', '.join(map(repr, unknown))}; "
                         f"valid keys: {', '.join(TOP_LEVEL_KEYS)} (assertions go in [[assertion]] tables)")
    if "description" in spec and not isinstance(spec["description"], str):
        raise SuiteError(f"{source}: description must be a string")
    entries = spec.get("assertion", [])
    if isinstance(entries, dict):  # a single [assertion] table instead of [[assertion]]
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise SuiteError(f"{source}: no assertions; add at least one [[assertion]] table with kind = \"...\" "
                         f"(valid kinds: {', '.join(_registry.kinds())})")
    built = []
    for i, entry in enumerate(entries):
        built.append(_build_entry(entry, i, len(entries), source))
    try:
        return Suite(built)
    except TripwireError as exc:
        raise SuiteError(f"{source}: {exc}") from None


def _where(source: str, i: int, n: int, entry: Any) -> str:
    label = f"{source}: [[assertion]] {i + 1} of {n}"
    if isinstance(entry, dict):
        extra = [f"{k}={entry[k]!r}" for k in ("name", "kind") if isinstance(entry.get(k), str)]
        if extra:
            label += f" ({', '.join(extra)})"
    return label


def _build_entry(entry: Any, i: int, n: int, source: str):
    where = _where(source, i, n, entry)
    if not isinstance(entry, dict):
        raise SuiteError(f"{where}: expected a table of parameters, got {type(entry).__name__}")
    params = dict(entry)
    kind = params.pop("kind", None)
    if not isinstance(kind, str) or not kind:
        raise SuiteError(f"{where}: missing kind = \"...\"; valid kinds: {', '.join(_registry.kinds())}")
    for key in ("name", "table"):
        if key in params and (not isinstance(params[key], str) or not params[key]):
            raise SuiteError(f"{where}: {key} must be a non-empty string, got {params[key]!r}")
    try:
        return _registry.build(kind, params)
    except (TripwireError, TypeError, ValueError) as exc:
        raise SuiteError(f"{where}: {exc}") from None
