"""The Arrow input layer (DESIGN §2): accepted inputs, zero-copy views, validity bitmaps, slice
offsets, chunked and dictionary columns, key encoding, column errors and column remapping."""
from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
from tripwire import _arrow, _config

HYP = settings(max_examples=60, deadline=None)


def _suite() -> tw.Suite:
    return tw.Suite([
        tw.rows.consistent(id="person", attr="sex", name="sex"),
        tw.rows.contiguous(id="person", time="frame", window=3, name="flicker"),
        tw.rows.check("score > 0.9", name="high"),
    ])


def _base_table() -> pa.Table:
    return pa.table({
        "person": pa.array(["a", "a", "b", "b", "a", "c", "b", "a"]),
        "sex": pa.array(["f", "f", "m", "f", "m", "m", "m", "f"]),
        "frame": pa.array([0, 1, 0, 2, 3, 3, 4, 5], pa.int64()),
        "score": pa.array([0.5, 0.95, 0.2, 0.99, 0.1, 0.3, 0.4, 0.91], pa.float64()),
    })


def _partition(values) -> list[int]:
    """Canonical labels of a grouping: label = index of the first occurrence of the value."""
    first: dict = {}
    return [first.setdefault(v, len(first)) for v in values]


# ----------------------------------------------------------------------------------------------
# accepted inputs
# ----------------------------------------------------------------------------------------------
def _inputs(table: pa.Table) -> dict:
    df = table.to_pandas()
    return {
        "table": table,
        "record_batch": table.combine_chunks().to_batches()[0],
        "reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
        "pandas": df,
        "polars": pl.from_pandas(df),
    }


@pytest.mark.parametrize("kind", ["table", "record_batch", "reader", "pandas", "polars"])
def test_every_input_kind_gives_the_same_report(kind):
    table = _base_table()
    expected = _suite().check(table)
    report = _suite().check(_inputs(table)[kind])
    assert expected.violations.num_rows > 0
    assert report.violations.equals(expected.violations)
    assert report.summary().equals(expected.summary())
    assert report.corrections().to_pylist() == expected.corrections().to_pylist()
    assert report.apply().to_pylist() == expected.apply().to_pylist()


def test_pandas_index_is_not_a_column_and_rows_are_positions():
    table = _base_table()
    df = table.to_pandas()
    df.index = [10 * i + 7 for i in range(len(df))]  # a non-default index: rows stay positions
    report = _suite().check(df.reset_index(drop=True))
    assert report.violations.equals(_suite().check(table).violations)


def test_polars_string_view_columns_are_read():
    """polars exports strings as string_view, which Arrow cannot take/filter: tripwire converts."""
    df = pl.DataFrame({"person": ["x", "x", "y"], "sex": ["f", "m", "m"], "frame": [0, 2, 0]})
    t = _arrow.as_table(df)
    assert not any(pa.types.is_string_view(f.type) for f in t.schema)
    report = tw.Suite([tw.rows.consistent(id="person", attr="sex")]).check(df)
    assert report.violations.column("row").to_pylist() == [0, 1]
    assert report.violations.column("key").to_pylist() == ["x", "x"]


@pytest.mark.parametrize("bad", [
    {"person": [1, 2]},
    [[1, 2], [3, 4]],
    np.arange(4),
    "rows.csv",
    42,
])
def test_unsupported_input_is_an_input_error(bad):
    with pytest.raises(tw.InputError) as info:
        _suite().check(bad)
    msg = str(info.value)
    assert "cannot read a table from" in msg
    assert type(bad).__qualname__ in msg
    assert "RecordBatch" in msg and "__arrow_c_stream__" in msg
    assert "fix:" in msg


def test_as_table_record_batch_and_reader_round_trip():
    table = _base_table()
    assert _arrow.as_table(table) is table
    for kind, obj in _inputs(table).items():
        assert _arrow.as_table(obj).select(table.column_names).cast(
            table.schema.remove_metadata()).equals(table), kind


# ----------------------------------------------------------------------------------------------
# zero copy
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("typ", [pa.int8(), pa.int32(), pa.int64(), pa.uint16(), pa.uint64(),
                                 pa.float32(), pa.float64()])
def test_primitive_view_is_zero_copy_and_read_only(typ):
    col = pa.chunked_array([pa.array(np.arange(100) % 50, typ)])
    values, valid = _arrow.primitive_view(col)
    assert valid is None
    chunk = col.chunk(0)
    dtype = np.dtype(typ.to_pandas_dtype())
    raw = np.frombuffer(chunk.buffers()[1], dtype=dtype)
    assert np.shares_memory(values, raw)
    assert values.__array_interface__["data"][0] == chunk.buffers()[1].address
    assert not values.flags.writeable
    with pytest.raises(ValueError):
        values[0] = 1
    np.testing.assert_array_equal(values, chunk.to_numpy())


def test_primitive_view_of_slice_is_zero_copy_at_the_offset():
    arr = pa.array(np.arange(1000, dtype=np.int64))
    sliced = arr.slice(123, 400)
    values, valid = _arrow.primitive_view(pa.chunked_array([sliced]))
    assert valid is None
    assert values.__array_interface__["data"][0] == arr.buffers()[1].address + 123 * 8
    np.testing.assert_array_equal(values, np.arange(123, 523))


def test_numeric_column_and_int_key_codes_are_views():
    table = pa.table({"id": pa.array(np.arange(1000) % 7, pa.int64())})
    keys = _arrow.encode_keys(table, "id", role="id")
    buf = table.column("id").chunk(0).buffers()[1]
    assert np.shares_memory(keys.codes, np.frombuffer(buf, np.int64))
    num = _arrow.numeric_column(table, "id", role="time", integer=True)
    assert np.shares_memory(num.values, np.frombuffer(buf, np.int64))


def test_plain_views_are_zero_copy_at_the_offset_and_read_only():
    base = pa.array(np.arange(1000, dtype=np.float32))
    table = pa.table({"a": base.slice(123, 400), "b": pa.array(np.ones(400, np.float32))})
    a, b = _arrow.plain_views(table, ("a", "b"), np.float32)
    assert a.__array_interface__["data"][0] == base.buffers()[1].address + 123 * 4
    np.testing.assert_array_equal(a, np.arange(123, 523, dtype=np.float32))
    assert not a.flags.writeable and not b.flags.writeable
    assert _arrow.plain_views(table.slice(0, 0), ("a",), np.float32)[0].shape == (0,)


@pytest.mark.parametrize("column", [
    pa.chunked_array([pa.array([1.0, 2.0], pa.float32()), pa.array([3.0], pa.float32())]),
    pa.chunked_array([pa.array([1.0, None, 3.0], pa.float32())]),
    pa.chunked_array([pa.array([1.0, 2.0, 3.0], pa.float64())]),
    pa.chunked_array([pa.array([1, 2, 3], pa.int32())]),
    pa.chunked_array([pa.nulls(3, pa.float32())]),
    pa.chunked_array([], pa.float32()),
], ids=["chunks", "nulls", "float64", "int32", "all-null", "no-chunk"])
def test_plain_views_leave_anything_else_to_numeric_column(column):
    table = pa.table({"a": pa.array(np.zeros(len(column), np.float32)), "b": column})
    assert _arrow.plain_views(table, ("a", "b"), np.float32) is None
    assert _arrow.plain_views(table, ("a", "missing"), np.float32) is None


# ----------------------------------------------------------------------------------------------
# validity bitmaps
# ----------------------------------------------------------------------------------------------
def _with_garbage_under_nulls(values, valid, typ=pa.int64()) -> pa.Array:
    """An array whose null slots hold real-looking values in the data buffer."""
    data = pa.py_buffer(np.asarray(values, dtype=np.dtype(typ.to_pandas_dtype())).tobytes())
    bits = pa.py_buffer(np.packbits(np.asarray(valid, bool), bitorder="little").tobytes())
    arr = pa.Array.from_buffers(typ, len(values), [bits, data])
    arr.validate(full=True)
    return arr


def test_primitive_view_reports_validity():
    arr = _with_garbage_under_nulls([5, 6, 7, 8], [1, 0, 1, 0])
    values, valid = _arrow.primitive_view(arr)
    np.testing.assert_array_equal(valid, [1, 0, 1, 0])
    assert valid.dtype == np.uint8
    np.testing.assert_array_equal(values[valid.astype(bool)], [5, 7])


def test_null_id_is_never_read_as_its_buffer_value():
    # the null slot's buffer holds id 1, and its attr differs: reading it would flag id 1
    ids = _with_garbage_under_nulls([1, 1, 1], [1, 0, 1])
    table = pa.table({"id": ids, "attr": ["x", "y", "x"]})
    report = tw.Suite([tw.rows.consistent(id="id", attr="attr")]).check(table)
    assert report.violations.num_rows == 0


def test_null_time_is_never_read_as_its_buffer_value():
    # the null slot holds time 1; without it, times 0 and 2 leave a gap -> one violation
    times = _with_garbage_under_nulls([0, 1, 2], [1, 0, 1])
    table = pa.table({"id": [1, 1, 1], "t": times})
    report = tw.Suite([tw.rows.contiguous(id="id", time="t", window=3)]).check(table)
    assert report.violations.column("row").to_pylist() == [0, 2]
    dense = pa.table({"id": [1, 1, 1], "t": [0, 1, 2]})
    assert tw.Suite([tw.rows.contiguous(id="id", time="t", window=3)]).check(dense).violations.num_rows == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.integers(-2**63, 2**63 - 1), max_size=40), nulls=st.lists(st.booleans(), max_size=40),
       offset=st.integers(0, 3), parallel=st.booleans(), narrow=st.booleans())
def test_int_key_range_is_min_max_of_present_values(monkeypatch, values, nulls, offset, parallel, narrow):
    """The native min/max that sizes int64 and int32 key codes skips nulls (whatever their
    slots hold), honours slice offsets, and agrees on one thread and two."""
    from tripwire._kernels._rows_cy import int_min_max

    monkeypatch.setattr(_config, "KEY_PARALLEL_MIN_ROWS", 0 if parallel else 1 << 30)
    bits = 32 if narrow else 64
    values = [v >> (64 - bits) for v in values]  # into the type's range, extremes kept
    valid = [not (nulls[i] if i < len(nulls) else False) for i in range(len(values))]
    garbage = [-2**(bits - 1), 2**(bits - 1) - 1, 0][:offset]
    arr = _with_garbage_under_nulls(garbage + values, [True] * offset + valid,
                                    pa.int32() if narrow else pa.int64()).slice(offset)
    got = int_min_max(*(lambda v, m: (v, _arrow.kernel_validity(m)))(*_arrow.primitive_view(arr)))
    present = [v for v, ok in zip(values, valid) if ok]
    assert got == ((min(present), max(present)) if present else None)
    keys = _arrow.encode_keys(pa.table({"id": arr}), "id", role="id")
    span = max(present) - min(present) + 1 if present else 0
    if present and span <= max(_config.KEY_DIRECT_SLOTS_PER_ROW * len(values), _config.KEY_DIRECT_MIN_SLOTS):
        assert (keys.offset, keys.n) == (min(present), span)  # direct codes from that range


_KEY_TYPES = (pa.int64(), pa.int32(), pa.int16(), pa.string())


@st.composite
def _key_column(draw, n):
    """A key column of ``n`` rows: a type, values narrow or spread past direct codes, nulls,
    and a layout (one chunk, sliced, or chunked with an empty chunk)."""
    typ = draw(st.sampled_from(_KEY_TYPES))
    wide = draw(st.booleans())
    lo, hi = (-2**31, 2**31 - 1) if wide and typ in (pa.int64(), pa.int32()) else (-3, 3)
    values = draw(st.lists(st.one_of(st.none(), st.integers(lo, hi)), min_size=n, max_size=n))
    if typ == pa.string():
        arr = pa.array([None if v is None else f"k{v}" for v in values], pa.string())
    else:
        arr = pa.array(values, typ)
    layout = draw(st.sampled_from(["plain", "sliced", "chunked"]))
    if layout == "sliced":
        return pa.chunked_array([pa.concat_arrays([pa.array([7, None], typ) if typ != pa.string()
                                                   else pa.array(["x", None]), arr]).slice(2)])
    if layout == "chunked":
        cut = draw(st.integers(0, n))
        return pa.chunked_array([arr[:cut], arr[cut:cut], arr[cut:]], type=typ)
    return pa.chunked_array([arr])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(0, 30), m=st.integers(1, 3), parallel=st.booleans())
def test_encode_many_matches_encoding_each_column_alone(monkeypatch, data, n, m, parallel):
    """One min/max region for several integer columns gives each column the codes that
    encoding it alone gives: same offset, span, validity and codes."""
    monkeypatch.setattr(_config, "KEY_PARALLEL_MIN_ROWS", 0 if parallel else 1 << 30)
    table = pa.table({f"c{i}": data.draw(_key_column(n)) for i in range(m)})
    got = _arrow.encode_many(table, [(f"c{i}", "id") for i in range(m)])
    for i, keys in enumerate(got):
        want = _arrow.encode_keys(table, f"c{i}", role="id")
        assert (keys.offset, keys.n) == (want.offset, want.n)
        gc, gv = keys.dense()
        wc, wv = want.dense()
        np.testing.assert_array_equal(gc, wc)
        assert (gv is None) == (wv is None)
        if gv is not None:
            np.testing.assert_array_equal(gv, wv)


def test_encode_many_names_the_missing_column():
    table = pa.table({"a": [1, 2], "b": [3, 4]})
    with pytest.raises(tw.errors.ColumnError, match="'nope'"):
        _arrow.encode_many(table, [("a", "id"), ("nope", "attr")])


def test_int_min_max_many_refuses_other_types():
    from tripwire._kernels._rows_cy import int_min_max_many

    with pytest.raises(ValueError, match="int64 or int32"):
        int_min_max_many([(np.zeros(3, np.float64), np.empty(0, np.uint8))])
    with pytest.raises(ValueError, match="differ in length"):
        int_min_max_many([(np.zeros(3, np.int64), np.ones(2, np.uint8))])


def test_null_attribute_is_a_value_of_its_own():
    table = pa.table({"id": [1, 1, 2, 2], "attr": ["x", None, None, None]})
    v = tw.Suite([tw.rows.consistent(id="id", attr="attr")]).check(table).violations
    assert v.column("row").to_pylist() == [0, 1]


def test_null_check_result_is_not_a_violation():
    table = pa.table({"score": pa.array([2.0, None, 3.0, 0.5])})
    v = tw.Suite([tw.rows.check("score > 1")]).check(table).violations
    assert v.column("row").to_pylist() == [0, 2]


def test_boolean_view_honours_offset_and_validity():
    arr = pa.array([True, False, None, True, True, None, False, True, False, True]).slice(3, 6)
    values, valid = _arrow.primitive_view(arr)
    assert values.dtype == np.uint8
    np.testing.assert_array_equal(valid, [1, 1, 0, 1, 1, 1])  # True True None False True False
    np.testing.assert_array_equal(values[valid.astype(bool)], [1, 1, 0, 1, 0])


# ----------------------------------------------------------------------------------------------
# slice offsets and chunked columns
# ----------------------------------------------------------------------------------------------
def _copy(table: pa.Table) -> pa.Table:
    """The same rows rebuilt from Python values: offset 0, one chunk."""
    return pa.Table.from_pylist(table.to_pylist(), schema=table.schema)


@pytest.mark.parametrize("start,length", [(1, 6), (3, 5), (2, 4), (0, 8)])
def test_sliced_table_gives_the_rows_of_the_slice(start, length):
    table = pa.concat_tables([_base_table()] * 3).combine_chunks()
    sliced = table.slice(start, length)
    got = _suite().check(sliced).violations
    want = _suite().check(_copy(sliced)).violations
    assert got.equals(want)
    assert all(0 <= r < length for r in got.column("row").to_pylist())


def test_sliced_column_with_nulls_honours_both_offsets():
    ids = pa.array([9, 9, 1, None, 1, 2, None, 2, 2])
    table = pa.table({"id": ids, "attr": ["q", "q", "x", "y", "y", "u", "v", "u", "w"]}).slice(2)
    values, valid = _arrow.primitive_view(table.column("id"))
    np.testing.assert_array_equal(valid, [1, 0, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(values[valid.astype(bool)], [1, 1, 2, 2, 2])
    v = tw.Suite([tw.rows.consistent(id="id", attr="attr")]).check(table).violations
    assert v.column("row").to_pylist() == [0, 2, 3, 6]
    assert v.column("event").to_pylist() == [0, 0, 1, 1]


def test_chunked_columns_match_one_chunk():
    table = pa.concat_tables([_base_table()] * 4).combine_chunks()
    batches = [table.slice(0, 3), table.slice(3, 10), table.slice(13, 0), table.slice(13, 19)]
    chunked = pa.concat_tables(batches)
    assert chunked.column("person").num_chunks == 4
    assert _suite().check(chunked).violations.equals(_suite().check(table).violations)


@pytest.mark.parametrize("ids", [[2, 11, None, 6, 9, 5], [3, 10**12, None, 7, -(10**12), 3]],
                         ids=["dense", "sparse"])
def test_chunked_int64_keys_match_one_chunk(ids):
    """Keys of an int64 column in chunks (one all null, one empty) are those of one chunk, on
    the direct path (dense ids, min/max taken chunk by chunk: the extremes sit in the first
    chunk) and the dictionary path."""
    from tripwire._arrow import encode_array

    one = pa.chunked_array([pa.array(ids, pa.int64())])
    parts = pa.chunked_array([pa.array(ids[:2], pa.int64()), pa.array([None], pa.int64()),
                              pa.array([], pa.int64()), pa.array(ids[3:], pa.int64())])
    a, b = encode_array(one, name="id", role="id"), encode_array(parts, name="id", role="id")
    valid_a = np.ones(len(ids), bool) if a.valid is None else a.valid.astype(bool)
    valid_b = np.ones(len(ids), bool) if b.valid is None else b.valid.astype(bool)
    np.testing.assert_array_equal(valid_a, valid_b)
    np.testing.assert_array_equal(valid_b, [v is not None for v in ids])
    codes_a = np.asarray(a.codes)[valid_a].astype(np.int64) - a.offset
    codes_b = np.asarray(b.codes)[valid_b].astype(np.int64) - b.offset
    np.testing.assert_array_equal(codes_a, codes_b)
    assert (a.offset, a.n) == (b.offset, b.n)


def test_primitive_view_of_chunks_with_and_without_nulls():
    col = pa.chunked_array([pa.array([1, 2], pa.int32()), pa.array([None, 4], pa.int32()),
                            pa.array([], pa.int32()), pa.array([5], pa.int32()).slice(0)])
    values, valid = _arrow.primitive_view(col)
    np.testing.assert_array_equal(valid, [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(values[[0, 1, 3, 4]], [1, 2, 4, 5])
    empty = _arrow.primitive_view(pa.chunked_array([], pa.float32()))
    assert empty[0].dtype == np.float32 and len(empty[0]) == 0 and empty[1] is None


# ----------------------------------------------------------------------------------------------
# dictionary and string identifiers
# ----------------------------------------------------------------------------------------------
def _string_table(ids: list, attrs: list) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.string()), "attr": pa.array(attrs, pa.string())})


def test_dictionary_ids_with_different_dictionaries_per_chunk():
    ids = ["a", "b", "a", "c", "b", "c", "a", "d"]
    attrs = ["x", "x", "y", "z", "x", "z", "x", "w"]
    c1 = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int8()), pa.array(["a", "b"]))
    c2 = pa.DictionaryArray.from_arrays(pa.array([2, 1, 2, 0], pa.int8()), pa.array(["a", "b", "c"]))
    c3 = pa.DictionaryArray.from_arrays(pa.array([1], pa.int8()), pa.array(["c", "d", "a"]))
    dict_ids = pa.chunked_array([c1, c2, c3])
    assert dict_ids.to_pylist() == ids
    table = pa.table({"id": dict_ids, "attr": attrs})
    suite = tw.Suite([tw.rows.consistent(id="id", attr="attr")])
    got = suite.check(table).violations
    want = suite.check(_string_table(ids, attrs)).violations
    assert got.equals(want)
    assert got.column("row").to_pylist() == [0, 2]
    assert got.column("key").to_pylist() == ["a", "a"]


def test_dictionary_with_a_repeated_value_groups_equal_values():
    # indices 0 and 2 both mean "a": the two rows are one identifier
    dictionary = pa.array(["a", "b", "a"])
    ids = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, 1], pa.int32()), dictionary)
    table = pa.table({"id": ids, "attr": ["x", "x", "y", "x"]})
    keys = _arrow.encode_keys(table, "id", role="id")
    assert keys.n == 2
    assert keys.codes[0] == keys.codes[2] != keys.codes[1]
    v = tw.Suite([tw.rows.consistent(id="id", attr="attr")]).check(table).violations
    assert v.column("row").to_pylist() == [0, 2]
    assert v.column("key").to_pylist() == ["a", "a"]


def test_dictionary_with_null_index_and_null_dictionary_entry():
    dictionary = pa.array(["a", None, "b"])
    ids = pa.DictionaryArray.from_arrays(pa.array([0, None, 1, 0, 2], pa.int8()), dictionary)
    table = pa.table({"id": ids, "attr": ["x", "y", "z", "y", "x"]})
    keys = _arrow.encode_keys(table, "id", role="id")
    np.testing.assert_array_equal(keys.valid, [1, 0, 0, 1, 1])
    v = tw.Suite([tw.rows.consistent(id="id", attr="attr")]).check(table).violations
    assert v.column("row").to_pylist() == [0, 3]  # rows 1 and 2 have null ids


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string(), pa.string_view(),
                                 pa.dictionary(pa.int16(), pa.string()), pa.binary()])
def test_string_like_ids(typ):
    ids = ["p", "q", "p", "r", "q", None, "p"]
    attrs = ["x", "y", "x", "x", "z", "w", "x"]
    raw = pa.array([None if i is None else (i.encode() if typ == pa.binary() else i) for i in ids])
    table = pa.table({"id": raw.cast(typ), "attr": attrs, "t": [0, 0, 2, 0, 1, 0, 3]})
    suite = tw.Suite([tw.rows.consistent(id="id", attr="attr"),
                      tw.rows.contiguous(id="id", time="t", window=3)])
    v = suite.check(table).violations
    assert v.filter(pc.equal(v["kind"], "rows.consistent")).column("row").to_pylist() == [1, 4]
    assert v.filter(pc.equal(v["kind"], "rows.contiguous")).column("row").to_pylist() == [0, 2]
    assert v.column("key").to_pylist() == ["q", "q", "p", "p"]


# ----------------------------------------------------------------------------------------------
# encode_keys: direct addressing vs hashing
# ----------------------------------------------------------------------------------------------
def _hashed(monkeypatch, table, name="id"):
    with monkeypatch.context() as m:
        m.setattr(_config, "KEY_DIRECT_MIN_SLOTS", 0)
        m.setattr(_config, "KEY_DIRECT_SLOTS_PER_ROW", 0)
        return _arrow.encode_keys(table, name, role="id")


def _check_keys(keys: _arrow.Keys, values: list) -> list:
    """Codes are in range and induce exactly the grouping of the values; returns the labels."""
    codes = np.asarray(keys.codes)
    valid = np.ones(len(values), bool) if keys.valid is None else keys.valid.astype(bool)
    assert valid.tolist() == [v is not None for v in values]
    live = codes[valid] - keys.offset
    assert ((live >= 0) & (live < keys.n)).all()
    assert keys.n >= len({v for v in values if v is not None})
    vals = [v for v in values if v is not None]
    assert _partition(live.tolist()) == _partition(vals)
    return _partition(live.tolist())


INT_CASES = {
    "small": (pa.int64(), st.integers(0, 20)),
    "negative": (pa.int32(), st.integers(-50, 50)),
    "huge_range": (pa.int64(), st.sampled_from([0, 1, -(2**62), 2**62, 10**15, -7, 2**63 - 1, -(2**63)])),
    "int8": (pa.int8(), st.integers(-128, 127)),
    "uint8": (pa.uint8(), st.integers(0, 255)),
    "uint64_small": (pa.uint64(), st.integers(0, 100)),
    "uint64_huge": (pa.uint64(), st.sampled_from([0, 5, 2**63, 2**64 - 1, 2**63 + 5, 2**40])),
}


@pytest.mark.parametrize("case", list(INT_CASES))
def test_direct_and_hashed_paths_group_the_same(case, monkeypatch):
    typ, values = INT_CASES[case]

    @HYP
    @given(st.lists(st.one_of(values, st.none()), min_size=1, max_size=60), st.integers(1, 3))
    def run(ids, n_chunks):
        chunks = [pa.array(part, typ) for part in np.array_split(np.array(ids, dtype=object), n_chunks)]
        table = pa.table({"id": pa.chunked_array(chunks, typ)})
        default = _arrow.encode_keys(table, "id", role="id")
        hashed = _hashed(monkeypatch, table)
        assert _check_keys(default, ids) == _check_keys(hashed, ids)

    run()


def test_direct_path_is_taken_for_a_small_range_and_not_for_a_huge_one(monkeypatch):
    small = pa.table({"id": pa.array([-3, 7, -3, 100], pa.int64())})
    keys = _arrow.encode_keys(small, "id", role="id")
    assert keys.offset == -3 and keys.n == 104  # code = value - min, no hashing
    huge = pa.table({"id": pa.array([0, 10**15, 0], pa.int64())})
    keys = _arrow.encode_keys(huge, "id", role="id")
    assert keys.offset == 0 and keys.n == 2  # hashed into dense codes
    big_u = pa.table({"id": pa.array([2**64 - 1, 2**63, 2**64 - 1], pa.uint64())})
    keys = _arrow.encode_keys(big_u, "id", role="id")
    assert keys.n == 2 and keys.codes[0] == keys.codes[2] != keys.codes[1]


@pytest.mark.parametrize("case", ["small", "negative", "huge_range", "uint64_huge"])
def test_direct_and_hashed_paths_give_the_same_report(case, monkeypatch):
    typ, values = INT_CASES[case]
    suite = tw.Suite([tw.rows.consistent(id="id", attr="attr"),
                      tw.rows.contiguous(id="id", time="t", window=4, allowed_transitions=1)])

    @HYP
    @given(st.lists(st.tuples(values, st.integers(0, 2), st.integers(0, 8)), min_size=1, max_size=40))
    def run(rows):
        table = pa.table({"id": pa.array([r[0] for r in rows], typ),
                          "attr": pa.array([r[1] for r in rows], pa.int64()),
                          "t": pa.array([r[2] for r in rows], pa.int64())})
        default = suite.check(table).violations
        with monkeypatch.context() as m:
            m.setattr(_config, "KEY_DIRECT_MIN_SLOTS", 0)
            m.setattr(_config, "KEY_DIRECT_SLOTS_PER_ROW", 0)
            hashed = suite.check(table).violations
        assert default.equals(hashed)

    run()


# ----------------------------------------------------------------------------------------------
# column errors
# ----------------------------------------------------------------------------------------------
def test_missing_column_error_names_column_expected_found_and_fix():
    table = pa.table({"person": [1, 2], "gender": ["f", "m"]})
    with pytest.raises(tw.ColumnError) as info:
        tw.Suite([tw.rows.consistent(id="person", attr="sex")]).check(table)
    err = info.value
    assert err.column == "sex"
    msg = str(err)
    assert "'sex'" in msg and "attr" in msg
    assert "expected:" in msg and "identifier column" in msg
    assert "found: columns person, gender" in msg
    assert "fix:" in msg and "attr='<your column>'" in msg
    assert isinstance(err, tw.InputError) and isinstance(err, KeyError)


def test_wrong_time_type_error():
    table = pa.table({"id": [1, 1], "t": pa.array([0.5, 1.5], pa.float64())})
    with pytest.raises(tw.ColumnError) as info:
        tw.Suite([tw.rows.contiguous(id="id", time="t")]).check(table)
    msg = str(info.value)
    assert info.value.column == "t"
    assert "'t'" in msg and "time" in msg and "wrong type" in msg
    assert "expected: an integer, timestamp or duration column" in msg
    assert "found: double" in msg
    assert "fix:" in msg and "cast" in msg


def test_wrong_key_type_error():
    table = pa.table({"id": pa.array([[1], [2]]), "attr": [1, 2]})
    with pytest.raises(tw.ColumnError) as info:
        tw.Suite([tw.rows.consistent(id="id", attr="attr")]).check(table)
    msg = str(info.value)
    assert info.value.column == "id"
    assert "expected: an identifier column" in msg
    assert "found: list<item: int64>" in msg
    assert "fix:" in msg


def test_timestamp_time_column_and_timedelta_window():
    import datetime as dt

    base = dt.datetime(2024, 1, 1)
    ts = pa.array([base, base + dt.timedelta(seconds=2), base + dt.timedelta(seconds=9)], pa.timestamp("ms"))
    table = pa.table({"id": ["a", "a", "a"], "ts": ts})
    a = tw.rows.contiguous(id="id", time="ts", window=dt.timedelta(seconds=3), step=dt.timedelta(seconds=1))
    assert tw.Suite([a]).check(table).violations.column("row").to_pylist() == [0, 1]


# ----------------------------------------------------------------------------------------------
# column remapping
# ----------------------------------------------------------------------------------------------
def test_columns_are_parameters_not_fixed_names():
    base = _base_table()
    renamed = base.rename_columns(["who", "gender", "tick", "conf"])
    default = _suite().check(base).violations
    remapped = tw.Suite([
        tw.rows.consistent(id="who", attr="gender", name="sex"),
        tw.rows.contiguous(id="who", time="tick", window=3, name="flicker"),
        tw.rows.check("conf > 0.9", name="high"),
    ]).check(renamed).violations
    assert remapped.equals(default)


def test_person_sex_mapping():
    table = pa.table({"person": [7, 7, 8, 7], "sex": ["f", "f", "m", "m"], "id": [1, 2, 3, 4],
                      "attr": ["a", "b", "c", "d"]})
    v = tw.Suite([tw.rows.consistent(id="person", attr="sex")]).check(table).violations
    assert v.column("row").to_pylist() == [0, 3]
    assert v.column("key").to_pylist() == ["7", "7"]
    corr = tw.Suite([tw.rows.consistent(id="person", attr="sex")]).check(table).corrections()
    assert corr.column("column").to_pylist() == ["sex"]
    assert corr.column("sex").to_pylist() == ["f"]


# ----------------------------------------------------------------------------------------------
# empty and all-null inputs
# ----------------------------------------------------------------------------------------------
def test_pandas_frame_filtered_to_no_rows_gives_an_empty_report():
    """pandas exports an empty object column as Arrow ``null`` type: still a valid (empty) id."""
    df = _base_table().to_pandas()
    empty = df[df["score"] > 2]
    assert pa.types.is_null(_arrow.as_table(empty).schema.field("person").type)
    report = _suite().check(empty)
    assert len(report) == 0
    assert report.summary().column("rows").to_pylist() == [0, 0, 0]


@pytest.mark.parametrize("typ", [pa.null(), pa.int64(), pa.string(), pa.dictionary(pa.int8(), pa.string())])
@pytest.mark.parametrize("n", [0, 3])
def test_empty_and_all_null_ids(typ, n):
    table = pa.table({"person": pa.nulls(n, typ), "sex": pa.array(["f", "m", "f"][:n]),
                      "frame": pa.array([0, 2, 4][:n], pa.int64()), "score": pa.array([0.1, 0.95, 0.2][:n])})
    report = _suite().check(table)
    # null ids are never grouped; only the per-row check can fire
    assert report.violations.column("assertion").to_pylist() == (["high"] if n else [])


@settings(max_examples=60, deadline=None)
@given(typ=st.sampled_from([pa.int8(), pa.uint16(), pa.int32(), pa.int64(), pa.uint64(), pa.float32(),
                            pa.float64(), pa.float16(), pa.timestamp("ms"), pa.date32()]),
       values=st.lists(st.integers(0, 100), max_size=30), nulls=st.booleans(), start=st.integers(0, 3),
       chunks=st.integers(1, 3), integer=st.booleans())
def test_numeric_column_fast_path_agrees_with_arrow(typ, values, nulls, start, chunks, integer):
    """One null-free chunk of a plain number type is read straight from its buffer; every other
    column (nulls, several chunks, sliced, temporal, float16) the long way. Both give Arrow's
    values, and floats are refused as integers either way."""
    mask = np.array([nulls and v % 5 == 0 for v in values], bool)
    arr = pa.array(values, pa.int64(), mask=mask).cast(typ) if not pa.types.is_date32(typ) else \
        pa.array(values, pa.int32(), mask=mask).cast(typ)
    arr = arr.slice(min(start, len(arr)))
    at = [i * len(arr) // chunks for i in range(chunks + 1)]
    cut = [arr.slice(a, b - a) for a, b in zip(at[:-1], at[1:])]
    table = pa.table({"x": pa.chunked_array(cut, type=typ)})
    floaty = pa.types.is_floating(typ)
    temporal = pa.types.is_timestamp(typ) or pa.types.is_date32(typ)
    if (integer and floaty) or (not integer and temporal) or pa.types.is_float16(typ):
        with pytest.raises(tw.errors.ColumnError):
            _arrow.numeric_column(table, "x", role="value", integer=integer)
        return
    got = _arrow.numeric_column(table, "x", role="value", integer=integer)
    col = table.column("x")
    want_valid = np.array([v is not None for v in col.to_pylist()], bool)
    assert (got.valid is None) == bool(want_valid.all())
    if got.valid is not None:
        assert got.valid.astype(bool).tolist() == want_valid.tolist()
    present = want_valid
    want = [v for v, ok in zip(values[min(start, len(values)):], present) if ok]
    assert got.values[present].astype(np.int64).tolist() == want
