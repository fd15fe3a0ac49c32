"""Generic row checks: identifier consistency, time contiguity, per-row expressions.

Each public class follows validate -> normalize -> dispatch -> kernel -> wrap:
parameters are checked at construction; :meth:`evaluate` turns Arrow columns into NumPy views
(``tripwire._arrow``), picks the kernel module (``tripwire._dispatch``), runs one kernel call for
the whole batch, and wraps the arrays into a :class:`~tripwire._assertion.Result`.
"""
from __future__ import annotations

import datetime as _dt
import functools
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _arrow, _dispatch, _expr, _registry
from ._assertion import Assertion, Correction, Result, canonical_events
from .errors import InputError

__all__ = ["consistent", "contiguous", "check"]



def _key_context(table: pa.Table, column: str, rows: np.ndarray) -> pa.Array:
    """The identifier of each violation row, as text (one context column type for all ids)."""
    taken = table.column(column).take(pa.array(rows, pa.int64()))
    if pa.types.is_dictionary(taken.type):
        taken = taken.cast(taken.type.value_type)
    return pc.cast(taken, pa.string()).combine_chunks()


def _check_name(value: Any, param: str, kind: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{kind}: {param} must name a column, got {value!r}",
                         expected="a column name (str)", fix=f"pass {param}='<column>'")
    return value


class consistent(Assertion):
    """Rows that share an identifier must share an attribute.

    Parity with ``model_assertions.IdentifierConsistencyAssertion``: for each identifier whose
    rows carry more than one ``attr`` value, the violation flags the first row of each distinct
    value (``flag="first"``, default) — or, with ``flag="minority"``, every row not holding the
    most common value. One event per identifier. Severity: share of the identifier's rows not
    holding the most common value. Correction: ``relabel`` every such row to the most common
    non-null value (ties go to the value seen first).

    Rows with a null identifier are not checked; a null attribute counts as a value of its own.
    """

    kind = "rows.consistent"
    scope = "group"

    def __init__(self, id: str, attr: str, *, flag: str = "first", name: str | None = None,
                 table: str = "rows"):
        super().__init__(name=name, table=table)
        self.id = _check_name(id, "id", self.kind)
        self.attr = _check_name(attr, "attr", self.kind)
        if flag not in ("first", "minority"):
            raise InputError(f"{self.kind}: flag={flag!r}", expected="'first' or 'minority'",
                             fix="pass flag='first' (the paper library's rows) or 'minority'")
        self.flag = flag

    def params(self) -> dict[str, Any]:
        return {"id": self.id, "attr": self.attr, "flag": self.flag}

    def columns(self) -> list[str]:
        return [self.id, self.attr]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        ids, attrs = _arrow.encode_many(table, [(self.id, "id"), (self.attr, "attr")])
        row, ev, sev, corr = consistent_groups(ids, attrs, self.attr, self.flag == "minority", backend)
        return Result(row, ev, sev, table.num_rows, {"key": functools.partial(_key_context, table, self.id, row)},
                      corr)


def consistent_groups(ids: _arrow.Keys, attrs: _arrow.Keys, attr: str, flag_minority: bool,
                      backend: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Correction]]:
    """The consistency kernel over already-encoded group keys and attribute values (shared
    with ``boxes.class_consistency``, whose key is a (stream, track) pair): canonical
    violations and the relabel correction of the column ``attr``."""
    k = _dispatch.kernels("rows", backend)
    row, ev, sev, anchor, c_row, c_src = k.consistent(
        ids.codes, ids.offset, ids.n, _arrow.kernel_validity(ids.valid),
        attrs.codes, attrs.offset, attrs.n, _arrow.kernel_validity(attrs.valid), flag_minority)
    row, ev, sev = canonical_events(row, ev, sev, anchor)
    order = np.argsort(c_row, kind="stable")
    corr = [Correction("relabel", c_row[order], column=attr, source_rows=c_src[order])] if len(c_row) else []
    return row, ev, sev, corr


def _as_ticks(value: Any, unit: str | None, param: str, kind: str) -> int:
    """A window or step as integer ticks of the time column's unit."""
    if isinstance(value, _dt.timedelta):
        if unit is None:
            raise InputError(f"{kind}: {param} is a timedelta but the time column is an integer",
                             expected=f"an integer {param} in the column's units",
                             fix=f"pass {param} as an int")
        per_s = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
        us = (value.days * 86400 + value.seconds) * 10**6 + value.microseconds
        if us * per_s // 10**6 > 0:
            return us * per_s // 10**6
        raise InputError(f"{kind}: {param}={value!r} is not a positive number of {unit} ticks",
                         expected="a positive timedelta of at least one tick of the time column",
                         fix=f"pass a larger {param}, e.g. {param}=datetime.timedelta(seconds=1)")
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
        return int(value)
    raise InputError(f"{kind}: {param}={value!r}", expected="a positive integer (or a timedelta "
                     "for timestamp columns)", fix=f"pass e.g. {param}=3")


class contiguous(Assertion):
    """An identifier must not disappear and reappear more often than allowed within a window.

    Semantics of ``model_assertions.TimeConsistencyAssertion`` (window counted in time units,
    each gap in an identifier's presence is two transitions, a violation is the pair of rows
    that opens the window and pushes the count over ``allowed_transitions``), with two
    deliberate differences, both documented in the README:

    - input need not be sorted: times are ordered per identifier (the paper library silently
      reports the wrong rows on unsorted input);
    - repeated times of one identifier are one presence, not a transition (its first row in
      arrival order stands for it).

    ``time`` is an integer, timestamp or date column; ``step`` is the spacing of consecutive
    presences (1 frame). Severity: transitions over the limit. Rows with a null id or time are
    not checked.
    """

    kind = "rows.contiguous"
    scope = "group"

    def __init__(self, id: str, time: str, *, window: Any = 3, allowed_transitions: int = 1,
                 step: Any = 1, name: str | None = None, table: str = "rows"):
        super().__init__(name=name, table=table)
        self.id = _check_name(id, "id", self.kind)
        self.time = _check_name(time, "time", self.kind)
        if not isinstance(allowed_transitions, (int, np.integer)) or isinstance(allowed_transitions, bool) \
                or allowed_transitions < 0:
            raise InputError(f"{self.kind}: allowed_transitions={allowed_transitions!r}",
                             expected="an integer >= 0", fix="pass e.g. allowed_transitions=1")
        self.window, self.step, self.allowed = window, step, int(allowed_transitions)
        _as_ticks(window, "us" if isinstance(window, _dt.timedelta) else None, "window", self.kind)
        _as_ticks(step, "us" if isinstance(step, _dt.timedelta) else None, "step", self.kind)

    def params(self) -> dict[str, Any]:
        return {"id": self.id, "time": self.time, "window": self.window,
                "allowed_transitions": self.allowed, "step": self.step}

    def columns(self) -> list[str]:
        return [self.id, self.time]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        ttype = _arrow.column(table, self.time, role="time", expected="integer").type
        # ticks of the column: its unit for timestamps/durations, ms for date64, days for date32
        unit = ttype.unit if pa.types.is_timestamp(ttype) or pa.types.is_duration(ttype) else None
        if pa.types.is_date64(ttype):
            unit = "ms"
        times = _arrow.numeric_column(table, self.time, role="time", integer=True)
        tv = times.values if times.values.dtype == np.int64 else times.values.astype(np.int64)
        window = _as_ticks(self.window, unit, "window", self.kind)
        step = _as_ticks(self.step, unit, "step", self.kind)
        k = _dispatch.kernels("rows", backend)
        tvalid = _arrow.kernel_validity(times.valid)
        out = None
        direct = getattr(k, "contiguous_direct", None)  # Cython: int ids as they are, no encoding pass
        id_col = _arrow.column(table, self.id, role="id", expected=_arrow.KEY_EXPECTED)
        if direct is not None and id_col.type in (pa.int64(), pa.int32()):
            values, valid = _arrow.primitive_view(id_col)
            out = direct(values, _arrow.kernel_validity(valid), tv, tvalid, window, step, self.allowed,
                         _arrow.direct_key_slots(table.num_rows))
        if out is not None:  # already in canonical order (events by start row)
            row, ev, sev = out[:3]
        else:
            ids = _arrow.encode_array(id_col, name=self.id, role="id")
            row, ev, sev = canonical_events(*k.contiguous(ids.codes, ids.offset, ids.n,
                                                          _arrow.kernel_validity(ids.valid), tv, tvalid,
                                                          window, step, self.allowed))
        return Result(row, ev, sev, table.num_rows, {"key": functools.partial(_key_context, table, self.id, row)})


class check(Assertion):
    """A per-row expression: rows where it holds (or is > 0) are violations.

    ``expr`` is text (``"score < 0 or score > 1"``; see :mod:`tripwire._expr` for the grammar:
    safe to load from suite files) or a ``pyarrow.compute.Expression``. A boolean result flags
    rows where it is true, with severity 1; a numeric result flags rows where it is > 0, with
    that value as severity. Null or NaN results are not violations.

    Text whose columns are numeric and null-free runs in a native block kernel; anything else
    (strings, arithmetic, nulls) is evaluated by Arrow. Both give the same rows.
    """

    kind = "rows.check"
    scope = "row"

    def __init__(self, expr: Any, *, name: str | None = None, table: str = "rows"):
        super().__init__(name=name, table=table)
        if isinstance(expr, pc.Expression):
            self.text, self.node, self.expr = None, None, expr
        elif isinstance(expr, str):
            self.text, self.node = expr, _expr.parse(expr)
            self.expr = _expr.to_arrow(self.node)
        else:
            raise InputError(f"{self.kind}: expr is a {type(expr).__name__}",
                             expected="a string such as 'score > 1' or a pyarrow.compute.Expression",
                             fix="pass the condition that marks a bad row")

    def params(self) -> dict[str, Any]:
        return {"expr": self.text if self.text is not None else str(self.expr)}

    def columns(self) -> list[str]:
        return _expr.columns_of(self.node) if self.node is not None else []

    def _program(self, table: pa.Table) -> tuple[_expr.Program, list[np.ndarray]] | None:
        if self.node is None:
            return None
        dtypes, views = {}, {}
        for name in _expr.columns_of(self.node):
            if table.schema.get_field_index(name) < 0:
                _arrow.column(table, name, role="expr", expected="a column the expression names")
            col = table.column(name)
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)) \
                    or pa.types.is_float16(col.type) or col.null_count:
                continue
            values, _ = _arrow.primitive_view(col)
            dtypes[name], views[name] = values.dtype, values
        # compiled once per combination of column dtypes (batches of one stream share it)
        cache = self.__dict__.setdefault("_program_cache", {})
        key = tuple(dtypes.items())
        if key not in cache:
            cache[key] = _expr.compile_program(self.node, dtypes)
        prog = cache[key]
        if prog is None:
            return None
        return prog, [views[c] for c in prog.columns]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        k = _dispatch.kernels("rows", backend)
        native = self._program(table)
        if native is not None:
            prog, cols = native
            rows = k.check_program(prog.code, prog.fconsts, prog.iconsts, cols,
                                   np.array([_expr.DTYPE_CODES[c.dtype] for c in cols], np.int64),
                                   table.num_rows)
            sev = np.ones(len(rows), np.float32)
        else:
            rows, sev = self._arrow_rows(table, k)
        return Result(rows, np.arange(len(rows), dtype=np.int64), sev, table.num_rows)

    def _arrow_rows(self, table: pa.Table, k) -> tuple[np.ndarray, np.ndarray]:
        wide = table
        for name in self.columns():
            col = _arrow.column(table, name, role="expr", expected="a column the expression names")
            if pa.types.is_float16(col.type) or pa.types.is_float32(col.type):
                # as float64, like the native program: Arrow would cast int64 operands to float32
                # and fail on integers beyond 2**24
                wide = wide.set_column(wide.schema.get_field_index(name), name, col.cast(pa.float64()))
        try:
            result = _evaluate(wide, self.expr)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise InputError(f"{self.kind}: cannot evaluate {self.params()['expr']!r} on this table: {exc}",
                             expected="an expression whose operand types match the columns",
                             found=", ".join(f"{f.name}: {f.type}" for f in table.schema),
                             fix="compare strings with strings and numbers with numbers, or cast columns") from None
        if pa.types.is_boolean(result.type):
            arr = result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result
            bufs = arr.buffers()
            vbits = np.frombuffer(bufs[0], np.uint8) if arr.null_count and bufs[0] is not None else _arrow.NO_NULLS
            bits = np.frombuffer(bufs[1], np.uint8) if bufs[1] is not None else np.zeros(0, np.uint8)
            if len(arr) == 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            rows = k.bitmap_rows(bits, arr.offset, len(arr), vbits, arr.offset)
            return rows, np.ones(len(rows), np.float32)
        if pa.types.is_integer(result.type) or pa.types.is_floating(result.type) or pa.types.is_decimal(result.type):
            values, valid = _arrow.primitive_view(pc.cast(result, pa.float64(), safe=False))
            return k.positive_rows(np.ascontiguousarray(values), _arrow.kernel_validity(valid))
        raise InputError(f"{self.kind}: {self.params()['expr']!r} gives {result.type}",
                         expected="a boolean (bad row when true) or a number (severity when > 0)",
                         fix="write a condition, e.g. 'score > 1'")


def _evaluate(table: pa.Table, expr: pc.Expression) -> pa.ChunkedArray | pa.Array:
    """Evaluate an Arrow expression over a table (Acero projection, single-threaded)."""
    import pyarrow.acero as ac

    if table.num_rows == 0:
        table = table.slice(0, 0)
    decl = ac.Declaration.from_sequence([
        ac.Declaration("table_source", ac.TableSourceNodeOptions(table)),
        ac.Declaration("project", ac.ProjectNodeOptions([expr], ["__tripwire_result"])),
    ])
    out = decl.to_table(use_threads=False)
    return out.column(0)


_registry.register("rows.consistent", consistent, builtin=True)
_registry.register("rows.contiguous", contiguous, builtin=True)
_registry.register("rows.check", check, builtin=True)
