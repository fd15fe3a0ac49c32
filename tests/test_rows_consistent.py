"""rows.consistent: every backend against the plain-loop reference, plus hand-written cases."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
from reference import (ID_KINDS, LAYOUTS, assert_same_report, check_like_reference, id_array,
                       make_table)

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ATTR_KINDS = ("int64", "string", "dict")


def attr_array(values, kind):
    if kind == "int64":
        return pa.array(values, pa.int64())
    strings = pa.array([None if v is None else "abcdefgh"[v] for v in values], pa.string())
    return strings if kind == "string" else strings.dictionary_encode()


def table_of(ids, attrs, id_kind="int64", attr_kind="string", layout="plain", splits=(1, 2)):
    return make_table({"id": (ids, lambda v: id_array(v, id_kind), 0),
                       "attr": (attrs, lambda v: attr_array(v, attr_kind), 0)}, layout, splits)


def suite(flag="first"):
    return tw.Suite([tw.rows.consistent(id="id", attr="attr", flag=flag)])


def violations(report):
    v = report.violations
    return list(zip(v.column("row").to_pylist(), v.column("event").to_pylist(),
                    [round(s, 6) for s in v.column("severity").to_pylist()]))


# ----------------------------------------------------------------------------------------------
# property: fast backends == reference, and layout / id type do not change the result
# ----------------------------------------------------------------------------------------------
def _column(draw, n, k, nulls):
    element = st.integers(0, k - 1)
    if nulls:
        element = st.one_of(st.none(), element, element)
    return draw(st.lists(element, min_size=n, max_size=n))


@st.composite
def cases(draw):
    n = draw(st.integers(0, 30))
    ids = _column(draw, n, draw(st.integers(1, 5)), draw(st.booleans()))
    attrs = _column(draw, n, draw(st.integers(1, 4)), draw(st.booleans()))
    return dict(ids=ids, attrs=attrs, id_kind=draw(st.sampled_from(ID_KINDS)),
                attr_kind=draw(st.sampled_from(ATTR_KINDS)), layout=draw(st.sampled_from(LAYOUTS)),
                splits=(draw(st.integers(0, 30)), draw(st.integers(0, 30))),
                flag=draw(st.sampled_from(["first", "minority"])))


@pytest.mark.slow  # ~10 s on numba: one compile per dtype / read-only combination
@PROPERTY
@given(case=cases())
def test_matches_reference(fast_backend, case):
    s = suite(case["flag"])
    table = table_of(case["ids"], case["attrs"], case["id_kind"], case["attr_kind"], case["layout"],
                     case["splits"])
    got = check_like_reference(s, table, fast_backend)
    # the same logical table as plain int64 ids: same rows, events, severities, corrections
    plain = s.check(table_of(case["ids"], case["attrs"], "int64", case["attr_kind"]), backend="reference")
    same_ids = case["id_kind"] == "int64"
    assert_same_report(got, plain, keys=same_ids, ignore=() if same_ids else ("id",), context="layout/id kind")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases(), parts=st.integers(2, 5))
def test_cut_into_parts_matches_reference(monkeypatch, case, parts):
    """The Cython kernel's two passes cut into ``parts`` row ranges (each with its own counts,
    merged in row order): the reference's violations and corrections, for both flags."""
    from tripwire import _config

    monkeypatch.setattr(_config, "CONSISTENT_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "CONSISTENT_PARTS", parts)
    s = suite(case["flag"])
    table = table_of(case["ids"], case["attrs"], case["id_kind"], case["attr_kind"], case["layout"],
                     case["splits"])
    check_like_reference(s, table, "cython")


@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("flag", ["first", "minority"])
def test_groups_settled_by_pass_one_and_by_pass_two(monkeypatch, parts, flag):
    """Pass 1 keeps, per row range, each id's first value and the rows that differ from it. An id
    whose ranges all start with the majority, or start with one odd row, is settled from that
    (id 1: odd first row; id 2: one flipped row); one whose range starts with a minority value
    held by more rows needs pass 2 (id 3: a, a, then b majority; id 4: a across the first cut,
    b after it). Both kinds in one table give the reference's report."""
    from tripwire import _config

    monkeypatch.setattr(_config, "CONSISTENT_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "CONSISTENT_PARTS", parts)
    ids = [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 4, 4, 4]
    attrs = [0, 1, 0, 0, 2, 1, 0, 0, 2, 3, 1, 0, 2, 1, 1, 0, 2, 1, 1, 1, 1, 1, 1]
    check_like_reference(suite(flag), table_of(ids, attrs), "cython")


# ----------------------------------------------------------------------------------------------
# semantics by hand (each on every backend)
# ----------------------------------------------------------------------------------------------
def test_first_rows_of_each_value(backend):
    t = table_of([7, 7, 7, 7, 8, 8], [0, 1, 0, 0, 2, 2])
    r = suite().check(t, backend=backend)
    # the paper library's rows: the first row of each distinct value; severity 1/4 not majority
    assert violations(r) == [(0, 0, 0.25), (1, 0, 0.25)]
    assert r.violations.column("key").to_pylist() == ["7", "7"]
    c = r.corrections()
    assert c.column("row").to_pylist() == [1]
    assert c.column("attr").to_pylist() == ["a"] and c.column("column").to_pylist() == ["attr"]
    assert r.apply().column("attr").to_pylist() == ["a"] * 4 + ["c", "c"]


def test_minority_flags_every_non_majority_row(backend):
    t = table_of([1, 1, 1, 1, 1], [0, 1, 0, 1, 0])
    r = suite("minority").check(t, backend=backend)
    assert violations(r) == [(1, 0, 0.4), (3, 0, 0.4)]
    assert r.corrections().column("row").to_pylist() == [1, 3]


def test_tie_goes_to_value_seen_first(backend):
    t = table_of([1, 1, 1, 1], [1, 0, 0, 1])
    r = suite("minority").check(t, backend=backend)
    assert violations(r) == [(1, 0, 0.5), (2, 0, 0.5)]  # "b" (row 0) came first: it is the majority
    assert r.apply().column("attr").to_pylist() == ["b"] * 4


def test_null_attribute_is_a_value_of_its_own(backend):
    r = suite().check(table_of([1, 1, 1], [0, None, 0]), backend=backend)
    assert violations(r) == [(0, 0, pytest.approx(1 / 3)), (1, 0, pytest.approx(1 / 3))]
    assert r.apply().column("attr").to_pylist() == ["a", "a", "a"]  # null relabelled to majority
    # only nulls: one value, consistent
    assert len(suite().check(table_of([1, 1], [None, None]), backend=backend)) == 0
    # majority is the most common *non-null* value even when nulls outnumber it
    r = suite("minority").check(table_of([1, 1, 1, 1], [None, None, None, 2]), backend=backend)
    assert violations(r) == [(0, 0, 0.75), (1, 0, 0.75), (2, 0, 0.75)]
    assert r.apply().column("attr").to_pylist() == ["c"] * 4


def test_null_ids_are_not_checked(backend):
    r = suite().check(table_of([None, None, 2, 2], [0, 1, 0, 1]), backend=backend)
    assert violations(r) == [(2, 0, 0.5), (3, 0, 0.5)]


def test_events_numbered_by_first_row_of_each_id(backend):
    t = table_of([5, 3, 5, 3, 9, 9], [0, 0, 1, 1, 2, 3], id_kind="string")
    r = suite().check(t, backend=backend)
    assert violations(r) == [(0, 0, 0.5), (2, 0, 0.5), (1, 1, 0.5), (3, 1, 0.5), (4, 2, 0.5), (5, 2, 0.5)]
    assert r.violations.column("key").to_pylist() == ["id5", "id5", "id3", "id3", "id9", "id9"]


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_row(backend, n):
    r = suite().check(table_of([1] * n, [0] * n), backend=backend)
    assert len(r) == 0 and r.violations.num_rows == 0 and r.corrections().num_rows == 0


def test_all_null_columns(backend):
    n = 6
    for ids, attrs in [(pa.nulls(n, pa.int64()), pa.array([0, 1] * 3)),
                       (pa.nulls(n), pa.array([0, 1] * 3)),
                       (pa.array([1] * n), pa.nulls(n, pa.string())),
                       (pa.array([1] * n), pa.nulls(n))]:
        r = suite().check(pa.table({"id": ids, "attr": attrs}), backend=backend)
        assert len(r) == 0, (ids.type, attrs.type)


@pytest.mark.parametrize("layout", ["sliced", "chunked"])
def test_sliced_and_chunked(backend, layout):
    ids, attrs = [1, 2, 1, 2, 3, 1, 3, None, 3], [0, 1, 1, 1, 2, None, 0, 3, 2]
    want = suite().check(table_of(ids, attrs, "dict", "dict"), backend="reference")
    got = suite().check(table_of(ids, attrs, "dict", "dict", layout, splits=(2, 5)), backend=backend)
    assert_same_report(got, want)
    assert len(want) > 0


def test_chunked_array_with_different_dictionaries(backend):
    ids = pa.chunked_array([pa.array(["x", "y"]).dictionary_encode(),
                            pa.array(["y", "x", "z"]).dictionary_encode(),
                            pa.array(["z"]).dictionary_encode()])
    attrs = pa.chunked_array([[1, 2], [2, 2, 3], [4]])
    r = suite("minority").check(pa.table({"id": ids, "attr": attrs}), backend=backend)
    assert violations(r) == [(3, 0, 0.5), (5, 1, 0.5)]  # x: 1 vs 2 (tie: 1 first); y: 2, 2; z: 3 vs 4
    assert r.violations.column("key").to_pylist() == ["x", "z"]


def test_id_types_give_the_same_violations(backend):
    ids, attrs = [4, 0, 4, 1, 0, 1, 4, 2], [0, 0, 1, 2, 0, 3, 0, 1]
    reports = {k: suite().check(table_of(ids, attrs, k), backend=backend) for k in ID_KINDS}
    first = reports["int64"]
    assert len(first) == 4
    for kind, r in reports.items():
        assert_same_report(r, first, keys=False, ignore=("id",), context=kind)
    assert reports["string"].violations.column("key").to_pylist() == ["id4"] * 2 + ["id1"] * 2
    assert reports["dict"].violations.column("key").to_pylist() == ["id4"] * 2 + ["id1"] * 2


def test_repeated_dictionary_values_are_one_identifier(backend):
    ids = pa.DictionaryArray.from_arrays(pa.array([0, 2, 1, None], pa.int32()), pa.array(["a", "b", "a"]))
    t = pa.table({"id": ids, "attr": pa.array([1, 2, 1, 2])})
    r = suite().check(t, backend=backend)
    assert violations(r) == [(0, 0, 0.5), (1, 0, 0.5)]  # rows 0 and 1 are both id "a"


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
def test_missing_column_names_it(backend):
    t = pa.table({"id": [1, 2], "label": ["a", "b"]})
    with pytest.raises(tw.ColumnError) as e:
        suite().check(t, backend=backend)
    msg = str(e.value)
    assert "'attr'" in msg and "expected" in msg and "found: columns id, label" in msg and "fix" in msg
    assert e.value.column == "attr"


def test_list_column_as_id(backend):
    t = pa.table({"id": pa.array([[1], [1, 2]]), "attr": [1, 2]})
    with pytest.raises(tw.ColumnError) as e:
        suite().check(t, backend=backend)
    msg = str(e.value)
    assert "'id'" in msg and "identifier column" in msg and "list<item: int64>" in msg and "fix:" in msg


@pytest.mark.parametrize("kwargs", [dict(id="", attr="a"), dict(id=3, attr="a"), dict(id="i", attr=None),
                                    dict(id="i", attr="a", flag="most")])
def test_bad_parameters(kwargs):
    with pytest.raises(tw.InputError) as e:
        tw.rows.consistent(**kwargs)
    assert "expected" in str(e.value) and "fix" in str(e.value)


def test_large_table_against_reference(fast_backend):
    rng = np.random.default_rng(7)
    n = 5000
    ids = rng.integers(0, 400, n).tolist()
    attrs = np.where(rng.random(n) < 0.9, 0, rng.integers(0, 5, n)).tolist()
    for flag in ("first", "minority"):
        check_like_reference(suite(flag), table_of(ids, attrs, "wide", "int64"), fast_backend)


@pytest.mark.parametrize("n_values", [3, 5000])  # the kernel counts few values, sorts many
@pytest.mark.parametrize("flag", ["first", "minority"])
def test_few_and_many_attribute_values_match_reference(fast_backend, n_values, flag):
    rng = np.random.default_rng(n_values)
    n = 20_000
    ids = rng.integers(0, 300, n)
    attrs = np.where(rng.random(n) < 0.2, rng.integers(0, n_values, n), ids % n_values)
    t = pa.table({"id": ids, "attr": pa.array(attrs, mask=rng.random(n) < 0.01)})
    check_like_reference(tw.Suite([tw.rows.consistent(id="id", attr="attr", flag=flag)]), t, fast_backend)
