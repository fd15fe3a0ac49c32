"""Arrow input layer: accept any Arrow-shaped input, validate columns, and hand kernels NumPy views.

Kernels never see Arrow objects. They get flat NumPy arrays (zero copy where Arrow's buffer
allows it: primitive type, one chunk) plus an optional ``uint8`` validity array, so a null is
never read as a value. Identifiers of any type become dense integer codes (:func:`encode_keys`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _config
from .errors import ColumnError, InputError

__all__ = [
    "as_table",
    "iter_batches",
    "column",
    "primitive_view",
    "encode_keys",
    "encode_many",
    "Keys",
    "NumericColumn",
    "numeric_column",
]


# ----------------------------------------------------------------------------------------------
# Whole inputs
# ----------------------------------------------------------------------------------------------
def _describe(data: Any) -> str:
    return f"{type(data).__module__}.{type(data).__qualname__}"


_VIEW_TYPE_IDS = frozenset((pa.string_view().id, pa.binary_view().id))


def as_table(data: Any) -> pa.Table:
    """Return ``data`` as a ``pyarrow.Table`` without copying column buffers.

    Accepts ``Table``, ``RecordBatch``, ``RecordBatchReader`` (read to the end), and any object
    exporting ``__arrow_c_stream__`` (pandas >= 2.2, polars, DuckDB results, ...).
    ``string_view``/``binary_view`` columns (polars' strings) become ``large_string``/
    ``large_binary`` (one copy of those columns): Arrow has no take/filter kernels for views.
    """
    table = _as_table(data)
    views = [i for i, t in enumerate(table.schema.types) if t.id in _VIEW_TYPE_IDS]
    for i in views:
        f = table.schema.field(i)
        typ = pa.large_string() if pa.types.is_string_view(f.type) else pa.large_binary()
        table = table.set_column(i, f.with_type(typ), table.column(i).cast(typ))
    return table


def _as_table(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data).read_all()
    if hasattr(data, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(data)])
    raise InputError(
        f"cannot read a table from {_describe(data)}",
        expected="a pyarrow Table, RecordBatch or RecordBatchReader, or an object with "
        "__arrow_c_stream__ (pandas >= 2.2, polars, DuckDB)",
        fix="convert it first, e.g. pyarrow.Table.from_pydict({...}) or pyarrow.table(df)",
    )


def iter_batches(data: Any) -> Iterator[pa.RecordBatch]:
    """Yield record batches from any accepted input without materialising a reader."""
    if isinstance(data, pa.Table):
        yield from data.to_batches()
    elif isinstance(data, pa.RecordBatch):
        yield data
    elif isinstance(data, pa.RecordBatchReader):
        yield from data
    elif hasattr(data, "__arrow_c_stream__"):
        yield from pa.RecordBatchReader.from_stream(data)
    else:
        yield from as_table(data).to_batches()


# ----------------------------------------------------------------------------------------------
# Columns
# ----------------------------------------------------------------------------------------------
def has_column(table: pa.Table, name: str) -> bool:
    return table.schema.get_field_index(name) >= 0


def column(table: pa.Table, name: str, *, role: str, expected: str) -> pa.ChunkedArray:
    """Look up a column by name, with an error that lists what the table has."""
    if not isinstance(name, str):
        raise InputError(
            f"column name for {role} must be a string, got {type(name).__name__} {name!r}",
            expected="a column name",
            fix=f"pass {role}='<column name>'",
        )
    idx = table.schema.get_field_index(name)
    if idx < 0:
        names = ", ".join(table.column_names) or "(no columns)"
        raise ColumnError(
            name,
            f"missing column {name!r} ({role})",
            expected=expected,
            found=f"columns {names}",
            fix=f"add the column, or remap it with {role}='<your column>'",
        )
    return table.column(idx)


def _chunk_values(chunk: pa.Array, dtype: np.dtype) -> np.ndarray:
    """Zero-copy view of a primitive chunk's values buffer, honouring the slice offset.

    Values under null slots are whatever the producer left there: callers must mask them.
    """
    buf = chunk.buffers()[1]
    if buf is None:  # all-null arrays may have no data buffer
        return np.zeros(len(chunk), dtype=dtype)
    view = np.frombuffer(buf, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)
    view.flags.writeable = False  # Arrow buffers are immutable, even when allocated mutable
    return view


def _chunk_validity(chunk: pa.Array) -> np.ndarray | None:
    if chunk.null_count == 0:
        return None
    return np.asarray(chunk.is_valid()).view(np.uint8)


_NUMPY_DTYPES = {
    pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
    pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
    pa.float16(): np.float16, pa.float32(): np.float32, pa.float64(): np.float64,
    pa.date32(): np.int32, pa.date64(): np.int64,
}


NO_NULLS = np.empty(0, np.uint8)
NO_NULLS.flags.writeable = False


def and_valid(*masks: np.ndarray | None) -> np.ndarray | None:
    """Rows valid in every mask (``None``: no nulls). Never returns one of its inputs, so the
    caller may change the result in place."""
    out = None
    for m in masks:
        if m is not None:
            out = m.copy() if out is None else out & m
    return out


def kernel_validity(valid: np.ndarray | None) -> np.ndarray:
    """Validity as kernels take it: the ``uint8`` array, or an empty one for "no nulls"."""
    return NO_NULLS if valid is None else valid


def _numpy_dtype(typ: pa.DataType) -> np.dtype:
    """The NumPy dtype of a fixed-width Arrow type's values buffer.

    Not ``typ.to_pandas_dtype()``: that imports pandas (0.4 s) on its first call.
    """
    if typ in _NUMPY_DTYPES:
        return np.dtype(_NUMPY_DTYPES[typ])
    if pa.types.is_timestamp(typ) or pa.types.is_duration(typ) or pa.types.is_time64(typ):
        return np.dtype(np.int64)
    if pa.types.is_time32(typ):
        return np.dtype(np.int32)
    raise InputError(f"{typ} is not a fixed-width numeric type", expected="an integer, float or temporal type",
                     fix="cast the column first")


def primitive_view(arr: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """``(values, valid)`` for a fixed-width primitive array.

    ``values`` is a read-only view of the Arrow buffer when the column has a single chunk
    (nulls or not), else a concatenated copy. ``valid`` is ``None`` when there are no nulls,
    else a ``uint8`` array (1 = present) aligned with ``values``.
    """
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    typ = arr.type
    if pa.types.is_boolean(typ):
        # bit-packed: unpack (one copy) into bytes
        values = [np.asarray(pc.fill_null(c, False)).view(np.uint8) for c in chunks]
    else:
        dtype = _numpy_dtype(typ)
        values = [_chunk_values(c, dtype) for c in chunks]
    valids = [_chunk_validity(c) for c in chunks]
    if len(chunks) == 1:
        return values[0], valids[0]
    if not chunks:
        dtype = np.uint8 if pa.types.is_boolean(typ) else _numpy_dtype(typ)
        return np.empty(0, dtype=dtype), None
    vals = np.concatenate(values)
    if all(v is None for v in valids):
        return vals, None
    valid = np.concatenate([np.ones(len(c), np.uint8) if v is None else v for c, v in zip(chunks, valids)])
    return vals, valid


# Arrow type id -> NumPy dtype of the types numeric_column takes as they are (by id: hashing a
# DataType costs more than the rest of the fast path)
_PLAIN_NUMERIC = {t.id: np.dtype(d) for t, d in _NUMPY_DTYPES.items()
                  if pa.types.is_integer(t) or pa.types.is_float32(t) or pa.types.is_float64(t)}


def plain_views(table: pa.Table, names: tuple[str, ...] | list[str], dtype: Any) -> list[np.ndarray] | None:
    """Read-only views of the columns ``names`` when every one is a single null-free chunk of
    ``dtype`` (float32 box coordinates from a model: the common case), else ``None``: the
    caller then takes ``numeric_column`` per column, which converts and explains bad input.
    A check runs this right after the host's own work has evicted the caches, where each
    Python-level step costs microseconds, so it takes as few steps as it can."""
    dtype = np.dtype(dtype)
    out = []
    for name in names:
        idx = table.schema.get_field_index(name)
        if idx < 0:
            return None
        col = table.column(idx)
        if col.num_chunks != 1:
            return None
        chunk = col.chunk(0)
        if chunk.null_count or _PLAIN_NUMERIC.get(chunk.type.id) != dtype:
            return None
        out.append(_chunk_values(chunk, dtype))
    return out


_NUMERIC_EXPECTED = "an integer or floating-point column (int8..int64, uint8..uint64, float32, float64)"


@dataclass(frozen=True)
class NumericColumn:
    values: np.ndarray
    valid: np.ndarray | None


def numeric_column(table: pa.Table, name: str, *, role: str, integer: bool = False) -> NumericColumn:
    """A validated numeric column as a NumPy view. ``integer=True`` also accepts timestamps and
    durations (as int64 ticks of their unit) and rejects floats."""
    expected = "an integer, timestamp or duration column" if integer else _NUMERIC_EXPECTED
    col = column(table, name, role=role, expected=expected)
    typ = col.type
    fast = _PLAIN_NUMERIC.get(typ.id)
    if fast is not None and col.num_chunks == 1 and not (integer and fast.kind == "f"):
        chunk = col.chunk(0)  # the common case, checked first: one chunk, a plain number type
        if chunk.null_count == 0:
            return NumericColumn(_chunk_values(chunk, fast), None)
    if integer and (pa.types.is_timestamp(typ) or pa.types.is_duration(typ) or pa.types.is_date64(typ)):
        col = col.cast(pa.int64())
    elif integer and pa.types.is_date32(typ):
        col = col.cast(pa.int32())
    ok = pa.types.is_integer(col.type) or (not integer and pa.types.is_floating(col.type)
                                           and not pa.types.is_float16(col.type))
    if not ok:
        fix = (f"cast it, e.g. table.set_column(i, {name!r}, pc.cast(table[{name!r}], pa.int64()))"
               if integer else f"cast it, e.g. pc.cast(table[{name!r}], pa.float32())")
        raise ColumnError(name, f"column {name!r} ({role}) has the wrong type",
                          expected=expected, found=str(typ), fix=fix)
    values, valid = primitive_view(col)
    return NumericColumn(values, valid)


# ----------------------------------------------------------------------------------------------
# Identifiers -> dense integer codes
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Keys:
    """Dense codes for an identifier column.

    ``codes[i] - offset`` is in ``[0, n)`` for every valid row ``i``; equal values get equal
    codes. Invalid (null) rows have ``valid[i] == 0`` and an arbitrary code.
    """

    codes: np.ndarray  # int32 or int64
    offset: int
    n: int
    valid: np.ndarray | None

    def dense(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Codes as int64 in ``[0, n)`` for every row (a null row's arbitrary code becomes 0,
        so it can index per-key arrays; the returned bool validity masks it)."""
        codes = self.codes.astype(np.int64) - self.offset
        if self.valid is None:
            return codes, None
        valid = self.valid.astype(bool)
        codes[~valid] = 0
        return codes, valid



KEY_EXPECTED = ("an identifier column: integer, string, dictionary, boolean, date/timestamp "
                 "or floating point")


def encode_keys(table: pa.Table, name: str, *, role: str) -> Keys:
    """Encode a column as dense integer codes, the way every group kernel wants them."""
    col = column(table, name, role=role, expected=KEY_EXPECTED)
    return encode_array(col, name=name, role=role)


def encode_many(table: pa.Table, names_roles: list[tuple[str, str]]) -> list[Keys]:
    """``encode_keys`` of several columns. Their int64 and int32 columns are sized by one
    min/max pass over all of them (one parallel region: the threads meet once, not once per
    column); the result is the same as encoding each alone."""
    cols = [column(table, name, role=role, expected=KEY_EXPECTED) for name, role in names_roles]
    fast = [i for i, c in enumerate(cols) if c.type in (pa.int64(), pa.int32()) and len(c)]
    ranges: dict[int, tuple[tuple[int, int] | None, list]] = {}
    if len(fast) > 1:
        from ._kernels._rows_cy import int_min_max_many

        views = {i: [primitive_view(c) for c in cols[i].chunks] for i in fast}
        flat = [(i, (v, kernel_validity(m))) for i in fast for v, m in views[i]]
        found = int_min_max_many([vm for _, vm in flat])
        for i in fast:
            got = [mm for (j, _), mm in zip(flat, found) if j == i and mm is not None]
            lohi = (min(a for a, _ in got), max(b for _, b in got)) if got else None
            ranges[i] = (lohi, views[i])
    out = []
    for i, (c, (name, role)) in enumerate(zip(cols, names_roles)):
        direct = _direct_codes(c, len(c), *ranges[i]) if i in ranges else None
        out.append(direct if direct is not None else encode_array(c, name=name, role=role, direct=i not in ranges))
    return out


def encode_array(col: pa.ChunkedArray, *, name: str, role: str, direct: bool = True) -> Keys:
    typ = col.type
    n_rows = len(col)
    if pa.types.is_dictionary(typ):
        return _encode_dictionary(col)
    if direct and pa.types.is_integer(typ) and n_rows:
        codes = _encode_direct(col, n_rows)
        if codes is not None:
            return codes
    if pa.types.is_nested(typ):
        raise ColumnError(name, f"column {name!r} ({role}) cannot be used as a key",
                          expected=KEY_EXPECTED, found=str(typ),
                          fix="pick a flat column, or derive one (e.g. pc.list_value_length)")
    if pa.types.is_null(typ):
        return Keys(np.zeros(n_rows, np.int32), 0, 0, np.zeros(n_rows, np.uint8))
    try:
        encoded = pc.dictionary_encode(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0))
    except pa.ArrowNotImplementedError as exc:
        raise ColumnError(name, f"column {name!r} ({role}) cannot be used as a key",
                          expected=KEY_EXPECTED, found=str(typ),
                          fix="cast it to string or integer first") from exc
    return _encode_dictionary(pa.chunked_array([encoded]))


def direct_key_slots(n_rows: int) -> int:
    """How widely integer ids may spread and still be used directly as codes (``id - min``):
    per-id state of that many slots stays proportionate to the rows."""
    return min(max(_config.KEY_DIRECT_SLOTS_PER_ROW * n_rows, _config.KEY_DIRECT_MIN_SLOTS), 2**31 - 1)


def _encode_direct(col: pa.ChunkedArray, n_rows: int) -> Keys | None:
    parts = None
    if col.type in (pa.int64(), pa.int32()):  # our one-pass min/max (Arrow's is 3-4x slower)
        from ._kernels._rows_cy import int_min_max

        # chunk by chunk (zero-copy views): several chunks are concatenated only once direct
        # codes apply; one chunk's view is the codes
        parts = [primitive_view(c) for c in col.chunks]
        lo = hi = None
        for values, valid in parts:
            mm = int_min_max(values, kernel_validity(valid))
            if mm is not None:
                lo = mm[0] if lo is None else min(lo, mm[0])
                hi = mm[1] if hi is None else max(hi, mm[1])
        lohi = None if lo is None else (lo, hi)
    else:
        mm = pc.min_max(col)
        lohi = None if mm["min"].as_py() is None else (mm["min"].as_py(), mm["max"].as_py())
    return _direct_codes(col, n_rows, lohi, parts)


def _direct_codes(col: pa.ChunkedArray, n_rows: int, lohi: tuple[int, int] | None,
                  parts: list | None) -> Keys | None:
    """Codes ``value - min`` of an integer column whose present values span ``lohi`` (``None``:
    all null), or ``None`` when the span is too wide for direct codes. ``parts``: the int32 or
    int64 column's chunk views, already made."""
    if lohi is None:  # all null
        return Keys(np.zeros(n_rows, np.int32), 0, 0, np.zeros(n_rows, np.uint8))
    lo, hi = lohi
    span = hi - lo + 1
    if span > direct_key_slots(n_rows):
        return None
    typ = col.type
    if typ in (pa.int32(), pa.int64()):
        codes, valid = parts[0] if parts is not None and len(parts) == 1 else primitive_view(col)
        return Keys(codes, lo, span, valid)
    # narrower or unsigned ints: one widening copy keeps the kernel's fused types small
    if pa.types.is_unsigned_integer(typ) and hi >= 2**63:
        return None
    codes, valid = primitive_view(col)
    return Keys(codes.astype(np.int64), lo, span, valid)


def _encode_dictionary(col: pa.ChunkedArray) -> Keys:
    if col.num_chunks > 1:
        col = col.unify_dictionaries()
    chunks = col.chunks
    if not chunks:
        return Keys(np.empty(0, np.int32), 0, 0, None)
    dictionary = chunks[0].dictionary
    indices = pa.chunked_array([c.indices for c in chunks], type=chunks[0].indices.type)
    codes, valid = primitive_view(indices)
    # Arrow allows repeated dictionary values; remap so equal values share one code.
    dedup = pc.dictionary_encode(dictionary)
    remap = np.asarray(dedup.indices.fill_null(-1)).astype(np.int64)
    n = len(dedup.dictionary)
    if dictionary.null_count:
        # a null *in the dictionary* is a null value: fold it into validity
        null_slot = np.asarray(dictionary.is_null()).astype(bool)
        safe = codes if valid is None else np.where(valid.astype(bool), codes, 0)
        is_null = null_slot[safe.astype(np.int64)] if len(dictionary) else np.zeros(len(codes), bool)
        valid = (~is_null).view(np.uint8) if valid is None else (valid & ~is_null).view(np.uint8)
        remap = np.where(remap < 0, 0, remap)
    if not np.array_equal(remap, np.arange(len(dictionary))):
        safe = codes if valid is None else np.where(valid.astype(bool), codes, 0)
        codes = remap[safe.astype(np.int64)]
    if codes.dtype not in (np.int32, np.int64):
        codes = codes.astype(np.int32)
    return Keys(codes, 0, n, valid)
