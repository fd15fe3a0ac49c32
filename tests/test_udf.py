"""@tw.assertion user assertions: Numba drivers against the plain-Python reference."""
from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
from tripwire import _registry
from reference import LAYOUTS, assert_same_report, check_like_reference, id_array, make_table

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAN, INF = float("nan"), float("inf")
_counter = itertools.count()


@pytest.fixture
def make():
    """Build user assertions under fresh kind names; unregister them afterwards."""
    made = []

    def build(fn, **kw):
        kw.setdefault("name", f"test_udf.t{next(_counter)}_{fn.__name__}")
        ua = tw.assertion(fn, **kw)
        made.append(ua.kind)
        return ua

    yield build
    for kind in made:
        _registry.unregister(kind)


# module-level assertions, shared by the property tests (compiled once per process)
@tw.assertion(name="test_udf.excess")
def excess(x, k, b):
    if b:
        return x - k
    return 0.0


@tw.assertion(name="test_udf.flag")
def flag(x, k):
    return x > 1.5 or k < 0


@tw.assertion(name="test_udf.spread", per="group", by="g")
def spread(x):
    return x.max() - x.min() - 1.0


@tw.assertion(name="test_udf.first_minus_last", per="group", by="g")
def first_minus_last(x, k):
    return x[0] - x[-1] + 0 * k.sum()


@tw.assertion(name="test_udf.batch", per="batch")
def batch(x, k):
    return np.where(k > 0, np.where(np.isnan(x), 0.0, x), 0.0)


X_POOL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, 3.0, 1e300, INF, -INF, NAN]


def table_of(data, g_kind="int64", layout="plain", splits=(1, 2)):
    cols = {"x": (data["x"], lambda v: pa.array(v, pa.float64()), 0.0),
            "k": (data["k"], lambda v: pa.array(v, pa.int64()), 0),
            "b": (data["b"], lambda v: pa.array(v, pa.bool_()), False),
            "g": (data["g"], lambda v: id_array(v, g_kind), 0)}
    return make_table(cols, layout, splits)


@st.composite
def cases(draw, nan=True):
    n = draw(st.integers(0, 30))
    pool = X_POOL if nan else [v for v in X_POOL if v == v]

    def col(element):
        if draw(st.booleans()):
            element = st.one_of(st.none(), element, element, element)
        return draw(st.lists(element, min_size=n, max_size=n))

    data = dict(x=col(st.sampled_from(pool)), k=col(st.integers(-3, 3)), b=col(st.booleans()),
                g=col(st.integers(0, draw(st.integers(0, 5)))))
    return dict(data=data, g_kind=draw(st.sampled_from(["int64", "string", "dict", "wide"])),
                layout=draw(st.sampled_from(LAYOUTS)), splits=(draw(st.integers(0, 30)), draw(st.integers(0, 30))))


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------
@PROPERTY
@given(case=cases())
def test_rows_and_batch_match_reference(fast_backend, case):
    table = table_of(case["data"], case["g_kind"], case["layout"], case["splits"])
    got = check_like_reference(tw.Suite([excess, flag, batch]), table, fast_backend)
    plain = tw.Suite([excess, flag, batch]).check(table_of(case["data"]), backend="reference")
    assert_same_report(got, plain, ignore=("g",))


@PROPERTY
@given(case=cases(nan=False))  # NaN: Numba's max/min and NumPy's may differ; kept out on purpose
def test_groups_match_reference(fast_backend, case):
    table = table_of(case["data"], case["g_kind"], case["layout"], case["splits"])
    got = check_like_reference(tw.Suite([spread, first_minus_last]), table, fast_backend)
    plain = tw.Suite([spread, first_minus_last]).check(table_of(case["data"]), backend="reference")
    assert_same_report(got, plain, ignore=("g",))


# ----------------------------------------------------------------------------------------------
# per="row"
# ----------------------------------------------------------------------------------------------
def test_row_bool_and_numeric(backend, make):
    wide = make(lambda x1, x2: x2 - x1 > 500, name="test_udf.too_wide_bool")
    amount = make(lambda x1, x2: x2 - x1 - 500, name="test_udf.too_wide_amount")
    t = pa.table({"x1": [0, 10, 0, 5], "x2": [400, 600, 1000, None]})
    r = tw.Suite([wide, amount]).check(t, backend=backend)
    v = r.violations
    names = ["test_udf.too_wide_bool"] * 2 + ["test_udf.too_wide_amount"] * 2
    assert v.column("assertion").to_pylist() == names and v.column("kind").to_pylist() == names
    assert v.column("row").to_pylist() == [1, 2, 1, 2]  # row 3 has a null: skipped
    assert v.column("severity").to_pylist() == [1.0, 1.0, 90.0, 500.0]
    assert v.column("event").to_pylist() == [0, 1, 2, 3]


def test_row_types(backend, make):
    def mixed(a, b, c, d):
        return (a + b > 2) and c and d < 0.5

    ua = make(mixed)
    t = pa.table({"a": pa.array([1, 2, 3], pa.int8()), "b": pa.array([1, 1, 1], pa.uint32()),
                  "c": [True, True, False], "d": pa.array([0.25, 0.25, 0.25], pa.float32())})
    assert tw.Suite([ua]).check(t, backend=backend).violations.column("row").to_pylist() == [1]


def test_columns_mapping_and_copy(backend, make):
    def gap(lo, hi):
        return hi - lo

    ua = make(gap, columns=["start", "end"])
    t = pa.table({"start": [0, 5], "end": [3, 5]})
    assert tw.Suite([ua]).check(t, backend=backend).violations.column("row").to_pylist() == [0]
    other = ua(name="test_udf.gap2", columns=["a", "b"])
    assert other.kind == ua.kind and other.name == "test_udf.gap2" and other.columns() == ["a", "b"]
    t2 = pa.table({"a": [1, 0], "b": [0, 2]})
    r = tw.Suite([ua(name="test_udf.gap3")]).check(t, backend=backend)
    assert r.violations.column("assertion").to_pylist() == ["test_udf.gap3"]
    assert tw.Suite([other]).check(t2, backend=backend).violations.column("row").to_pylist() == [1]


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_row(backend, n):
    t = table_of(dict(x=[2.0] * n, k=[1] * n, b=[True] * n, g=[0] * n))
    r = tw.Suite([excess, flag, batch, spread]).check(t, backend=backend)
    assert len(r) == 3 * n  # excess 1.0, flag, batch 2.0; spread of one row is -1


def test_all_null_columns(backend):
    n = 4
    t = pa.table({"x": pa.nulls(n, pa.float64()), "k": pa.array([1] * n), "b": pa.array([True] * n),
                  "g": pa.nulls(n, pa.int64())})
    assert len(tw.Suite([excess, flag, batch, spread]).check(t, backend=backend)) == 0


@pytest.mark.parametrize("layout", ["sliced", "chunked"])
def test_sliced_and_chunked(backend, layout):
    data = dict(x=[0.5, 2.5, None, 3.0, 1.0, -1.0, 4.0, 0.0, 2.0], k=[0, 1, 2, None, 1, -1, 1, 2, 0],
                b=[True, True, False, True, None, True, True, False, True], g=[0, 1, 0, 1, 2, 2, 0, None, 1])
    suite = tw.Suite([excess, flag, batch, spread, first_minus_last])
    want = suite.check(table_of(data), backend="reference")
    assert len(want) > 0
    assert_same_report(suite.check(table_of(data, "dict", layout, (3, 7)), backend=backend), want, ignore=("g",))


# ----------------------------------------------------------------------------------------------
# per="group"
# ----------------------------------------------------------------------------------------------
def test_group_flags_every_row_in_input_order(backend):
    t = pa.table({"x": [5.0, 1.0, 0.0, 3.0, 9.0, 2.5], "k": [0] * 6, "g": ["b", "a", "b", "a", None, "c"]})
    r = tw.Suite([first_minus_last]).check(t, backend=backend)
    v = r.violations
    # groups b: rows 0, 2 -> 5 - 0 = 5; a: rows 1, 3 -> 1 - 3 < 0; c: one row -> 0; row 4: null key
    assert v.column("row").to_pylist() == [0, 2]
    assert v.column("severity").to_pylist() == [5.0, 5.0]
    assert v.column("event").to_pylist() == [0, 0]
    r = tw.Suite([spread]).check(t, backend=backend)
    assert r.violations.column("row").to_pylist() == [0, 2, 1, 3]  # spreads 5 and 2: events by first row
    assert r.violations.column("event").to_pylist() == [0, 0, 1, 1]
    assert r.violations.column("severity").to_pylist() == [4.0, 4.0, 1.0, 1.0]


def test_group_null_values_skip_rows(backend):
    t = pa.table({"x": [0.0, None, 10.0, 4.0], "g": [1, 1, 1, 2]})
    r = tw.Suite([spread]).check(t, backend=backend)
    assert r.violations.column("row").to_pylist() == [0, 2]  # the null row is not part of the group


def test_group_key_types_agree(backend):
    x = [0.0, 3.0, 1.0, 1.5, 7.0, 7.0]
    keys = [0, 1, 0, 1, 2, 2]
    base = None
    for kind in ("int64", "int32", "string", "dict", "wide", "float"):
        t = pa.table({"x": x, "g": id_array(keys, kind)})
        rows = tw.Suite([spread]).check(t, backend=backend).violations.column("row").to_pylist()
        base = rows if base is None else base
        assert rows == base == [1, 3], kind


# ----------------------------------------------------------------------------------------------
# per="batch"
# ----------------------------------------------------------------------------------------------
def test_batch(backend, make):
    ua = make(lambda x: x * 2, name="test_udf.double", per="batch")
    r = tw.Suite([ua]).check(pa.table({"x": [1.0, -1.0, None, 0.25]}), backend=backend)
    assert r.violations.column("row").to_pylist() == [0, 3]
    assert r.violations.column("severity").to_pylist() == [2.0, 0.5]


def test_batch_wrong_shape(backend, make):
    ua = make(lambda x: x.sum(), name="test_udf.scalar_batch", per="batch")
    with pytest.raises(tw.InputError, match=r"shape \(\).*expected: one value per row, shape \(3,\)"):
        tw.Suite([ua]).check(pa.table({"x": [1.0, 2.0, 3.0]}), backend=backend)


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
def _plain_python_helper(x):
    return {"value": x}["value"]


def test_numba_cannot_compile(fast_backend, make):
    def uses_strings(x):
        return _plain_python_helper(x) > 0.5  # a plain Python function: Numba cannot type it

    ua = make(uses_strings)
    with pytest.raises(tw.InputError) as e:
        tw.Suite([ua]).check(pa.table({"x": [1.0, 2.0]}), backend=fast_backend)
    msg = str(e.value)
    assert "Numba cannot compile uses_strings()" in msg and "['x']" in msg
    assert "fix: use only NumPy/math operations Numba supports, or per='batch'" in msg
    # the reference backend runs the plain function
    r = tw.Suite([ua]).check(pa.table({"x": [0.25, 2.0]}), backend="reference")
    assert r.violations.column("row").to_pylist() == [1]


def test_numba_cannot_compile_group(fast_backend, make):
    def bad(x):
        return {"a": x}  # a dict is neither a bool nor a number

    ua = make(bad, per="group", by="g")
    with pytest.raises(tw.InputError, match="Numba cannot compile bad"):
        tw.Suite([ua]).check(pa.table({"x": [1.0], "g": [1]}), backend=fast_backend)


def test_string_column(backend):
    t = pa.table({"x": ["a", "b"], "k": [1, 2]})
    with pytest.raises(tw.ColumnError) as e:
        tw.Suite([flag]).check(t, backend=backend)
    msg = str(e.value)
    assert "'x'" in msg and "integer, float32/64 or boolean" in msg and "found: string" in msg
    assert "fix: cast it" in msg and e.value.column == "x"


def test_missing_column(backend):
    with pytest.raises(tw.ColumnError) as e:
        tw.Suite([flag]).check(pa.table({"x": [1.0]}), backend=backend)
    assert "'k'" in str(e.value) and "found: columns x" in str(e.value) and "fix" in str(e.value)


def test_list_and_missing_group_key(backend):
    with pytest.raises(tw.ColumnError, match="'g'.*list<item: int64>"):
        tw.Suite([spread]).check(pa.table({"x": [1.0], "g": pa.array([[1]])}), backend=backend)
    with pytest.raises(tw.ColumnError, match="'g'"):
        tw.Suite([spread]).check(pa.table({"x": [1.0]}), backend=backend)


def test_float16_column(backend, make):
    ua = make(lambda h: h > 1, name="test_udf.half")
    with pytest.raises(tw.ColumnError, match="found: halffloat"):
        tw.Suite([ua]).check(pa.table({"h": pa.array(np.array([2.0], np.float16))}), backend=backend)


@pytest.mark.parametrize("kwargs,match", [
    (dict(per="rows"), "'row', 'group' or 'batch'"),
    (dict(per="group"), "needs by="),
    (dict(columns=["a"]), "1 columns for 2 parameters"),
])
def test_bad_decorator_arguments(kwargs, match):
    def two(a, b):
        return a > b

    with pytest.raises(tw.InputError, match=match):
        tw.assertion(two, name="test_udf.never_registered", **kwargs)


def test_duplicate_name_refused(make):
    make(lambda x: x > 0, name="test_udf.dup")
    with pytest.raises(tw.SuiteError, match="already registered"):
        tw.assertion(lambda x: x > 1, name="test_udf.dup")
