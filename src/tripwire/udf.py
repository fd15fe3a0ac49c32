"""``@tw.assertion``: user assertions over NumPy column views, compiled by Numba.

Three forms (``per=``):

- ``"row"`` (default): ``fn(a, b, ...)`` gets one row's scalars and returns a bool or a number;
  Numba compiles it into one parallel loop over the batch (no Python call per row).
- ``"group"``: ``fn(a, b, ...)`` gets the arrays of one group's rows (grouped by ``by=``, rows in
  input order) and returns one bool/number for the group; compiled and run in parallel over
  groups. A violation flags every row of the group (one event per group).
- ``"batch"``: ``fn(a, b, ...)`` gets whole column arrays and returns one value per row; plain
  Python (use NumPy inside).

A row (or group) is a violation when the result is true or > 0; that value is its severity.
Rows with a null in any column the function reads are skipped (and a null ``by`` key too).
The function's parameter names are the columns it reads, unless ``columns=`` maps them.
"""
from __future__ import annotations

import hashlib
import inspect
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from . import _arrow, _dispatch, _registry
from ._assertion import Assertion, Result, canonical_events
from .errors import ColumnError, InputError

__all__ = ["assertion", "UserAssertion"]


class UserAssertion(Assertion):
    family = "udf"

    def __init__(self, fn: Callable, *, kind: str, columns: list[str], per: str, by: str | None,
                 name: str | None = None, table: str = "rows"):
        self.kind = kind  # instance attribute: each user assertion is its own kind
        super().__init__(name=name, table=table)
        self.fn, self.cols, self.per, self.by = fn, list(columns), per, by
        self.scope = "row" if per == "row" else "group"
        self._compiled = None

    def params(self) -> dict[str, Any]:
        p = {"columns": self.cols, "per": self.per}
        if self.by:
            p["by"] = self.by
        return p

    def columns(self) -> list[str]:
        return self.cols + ([self.by] if self.by else [])

    def fingerprint(self) -> str:
        """The base fingerprint plus a hash of the function's code (so editing its body, its
        constants or the globals it names changes it), its columns, ``per`` and ``by``."""
        h = hashlib.sha256()
        _hash_code(h, getattr(self.fn, "__code__", None))
        h.update(repr([self.cols, self.per, self.by]).encode())
        return f"{super().fingerprint()}|fn:{h.hexdigest()[:16]}"

    def __call__(self, *, name: str | None = None, table: str | None = None,
                 columns: list[str] | None = None) -> "UserAssertion":
        """A copy with another name, table or column mapping (what the registry builds)."""
        other = UserAssertion(self.fn, kind=self.kind, columns=columns or self.cols, per=self.per,
                              by=self.by, name=name or self.name, table=table or self.table)
        other._compiled = self._compiled if other.cols == self.cols else None
        return other

    def _views(self, table: pa.Table) -> tuple[list[np.ndarray], np.ndarray | None]:
        views, valid = [], None
        for c in self.cols:
            if table.schema.get_field_index(c) < 0:
                raise ColumnError(c, f"missing column {c!r} read by {self.kind}",
                                  expected="a numeric or boolean column",
                                  found=f"columns {', '.join(table.column_names) or '(none)'}",
                                  fix=f"add the column, or map the function's parameters to your columns "
                                      f"with {self.name}(columns=[...]) or @tw.assertion(columns=[...])")
            col = table.column(c)
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                    or pa.types.is_boolean(col.type)) or pa.types.is_float16(col.type):
                raise ColumnError(c, f"column {c!r} read by {self.kind} has a type Numba cannot take",
                                  expected="integer, float32/64 or boolean", found=str(col.type),
                                  fix="cast it, or encode strings first (pc.dictionary_encode(...).indices)")
            v, ok = _arrow.primitive_view(col)
            if pa.types.is_boolean(col.type):
                v = v.view(np.bool_)
            views.append(v)
            if ok is not None:
                valid = ok.copy() if valid is None else valid & ok
        return views, valid

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        views, valid = self._views(table)
        n = table.num_rows
        if self.per == "batch":
            return self._batch(views, valid, n)
        # user functions are compiled by Numba whatever backend runs the built-in kernels
        k = _dispatch.kernels("udf", "numba" if backend in ("cython", "cupy") else backend)
        if self.per == "row":
            rows, sev = k.udf_rows(self, views, _arrow.kernel_validity(valid), n)
            return Result(rows, np.arange(len(rows), dtype=np.int64), sev, n)
        keys = _arrow.encode_keys(table, self.by, role="by")
        if valid is not None:
            kv = valid if keys.valid is None else valid & keys.valid
        else:
            kv = _arrow.kernel_validity(keys.valid)
        rows, events, sev, anchor = k.udf_groups(self, views, keys.codes, keys.offset, keys.n, kv)
        rows, events, sev = canonical_events(rows, events, sev, anchor)
        return Result(rows, events, sev, n)

    def _batch(self, views: list[np.ndarray], valid: np.ndarray | None, n: int) -> Result:
        out = np.asarray(self.fn(*views), dtype=np.float64)
        if out.shape != (n,):
            raise InputError(f"{self.kind}: per='batch' function returned shape {out.shape}",
                             expected=f"one value per row, shape ({n},)", fix="return an array as long as the columns")
        hit = out > 0
        if valid is not None:
            hit &= valid.astype(bool)
        rows = np.flatnonzero(hit).astype(np.int64)
        with np.errstate(over="ignore"):  # a severity beyond float32 becomes inf, without a warning
            sev = out[rows].astype(np.float32)
        return Result(rows, np.arange(len(rows), dtype=np.int64), sev, n)


def _hash_code(h, code) -> None:
    """Feed a code object's bytecode, constants and names into ``h``; nested code objects
    (lambdas, inner functions, comprehensions) are hashed the same way, never by their repr
    (which holds a memory address)."""
    if code is None:
        h.update(b"<no code>")
        return
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            h.update(b"<code>")
            _hash_code(h, c)
        else:
            h.update(f"{type(c).__name__}:{c!r};".encode())


def assertion(fn: Callable | None = None, *, name: str | None = None, columns: list[str] | None = None,
              per: str = "row", by: str | None = None, table: str = "rows"):
    """Register a user assertion; usable directly in a ``Suite`` and by kind name in TOML.

    >>> @tw.assertion(name="my.too_wide")
    ... def too_wide(x1, x2):
    ...     return x2 - x1 > 500
    """
    def wrap(f: Callable) -> UserAssertion:
        if per not in ("row", "group", "batch"):
            raise InputError(f"@assertion(per={per!r})", expected="'row', 'group' or 'batch'",
                             fix="pass per='row' for a scalar function")
        if per == "group" and not by:
            raise InputError("@assertion(per='group') needs by=", expected="the column that defines groups",
                             fix="pass by='<id column>'")
        params = [p.name for p in inspect.signature(f).parameters.values()]
        cols = list(columns) if columns is not None else params
        if len(cols) != len(params):
            raise InputError(f"@assertion on {f.__name__}: {len(cols)} columns for {len(params)} parameters",
                             expected="one column per parameter", fix="fix columns=")
        kind = name or f"user.{f.__name__}"
        ua = UserAssertion(f, kind=kind, columns=cols, per=per, by=by, table=table)
        _registry.register(kind, ua)
        return ua

    return wrap(fn) if fn is not None else wrap
