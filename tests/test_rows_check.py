"""rows.check: native programs and the Arrow path against the plain-loop reference."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
from tripwire import _expr
from reference import LAYOUTS, assert_same_report, check_like_reference, make_table

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAN, INF = float("nan"), float("inf")

# value pools per column: small sets so that equality and column-vs-column ties happen often
POOLS = {
    "x": (pa.float64(), [0.0, -0.0, 1.0, -1.0, 0.5, 2.5, 3.0, NAN, INF, -INF, 1e300, 0.1]),
    "y": (pa.float32(), [0.0, 1.0, -1.0, 0.5, 1.5, 3.0, NAN, INF, -INF, float(np.float32(0.1)), 3e38]),
    # |i| <= 2**24: Arrow compares int64 with float32 as float32 (see test_known_arrow_limits)
    "i": (pa.int64(), [-3, -1, 0, 1, 2, 3, 2**24, -(2**24)]),
    "j": (pa.int16(), [-2, -1, 0, 1, 2, 3, 300]),
    "u": (pa.uint32(), [0, 1, 2, 3, 4_000_000_000]),
}
COLS = tuple(POOLS)
CONSTS = ["0", "1", "-1", "2", "3", "0.5", "1.5", "-0.25", "0.1", "1e-50", "3.4e38", "1e39", "16777216",
          "16777217", "99999999999999999999"]
CMPS = ["<", "<=", ">", ">=", "==", "!="]


def table_of(data: dict, layout="plain", splits=(1, 2)):
    return make_table({c: (v, lambda v, t=POOLS[c][0]: pa.array(v, t), POOLS[c][1][0]) for c, v in data.items()},
                      layout, splits)


@st.composite
def data_of(draw, nulls: bool):
    n = draw(st.integers(0, 40))
    out = {}
    for c in COLS:
        element = st.sampled_from(POOLS[c][1])
        if nulls and draw(st.booleans()):
            element = st.one_of(st.none(), element, element)
        out[c] = draw(st.lists(element, min_size=n, max_size=n))
    return out


_atom = st.one_of(
    st.builds(lambda c, o, k: f"{c} {o} {k}", st.sampled_from(COLS), st.sampled_from(CMPS), st.sampled_from(CONSTS)),
    st.builds(lambda c, o, k: f"{k} {o} {c}", st.sampled_from(COLS), st.sampled_from(CMPS), st.sampled_from(CONSTS)),
    st.builds(lambda a, o, b: f"{a} {o} {b}", st.sampled_from(COLS), st.sampled_from(CMPS), st.sampled_from(COLS)),
    st.builds(lambda f, c: f"{f}({c})", st.sampled_from(["is_nan", "is_finite"]), st.sampled_from(COLS)),
    st.sampled_from(["True", "False"]),
)
conditions = st.recursive(_atom, lambda inner: st.one_of(
    st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
    st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
    st.builds(lambda a, b: f"({a}) & ({b})", inner, inner),
    st.builds(lambda a, b: f"({a}) | ({b})", inner, inner),
    st.builds(lambda a: f"not ({a})", inner),
    st.builds(lambda a: f"~({a})", inner),
), max_leaves=4)

SIGNED = ("x", "y", "i", "j")  # Arrow cannot negate unsigned columns (see test_known_arrow_limits)
_term = st.one_of(st.sampled_from(SIGNED), st.sampled_from(["0", "1", "2", "0.5", "-3"]),
                  st.builds(lambda c: f"abs({c})", st.sampled_from(SIGNED)))
numeric = st.recursive(_term, lambda inner: st.one_of(
    st.builds(lambda a, o, b: f"({a}) {o} ({b})", inner, st.sampled_from("+-*/"), inner),
    st.builds(lambda a: f"-({a})", inner)), max_leaves=3)


def rows_of(report):
    return report.violations.column("row").to_pylist()


def rows_sev(report):
    v = report.violations
    return list(zip(v.column("row").to_pylist(), v.column("severity").to_pylist()))


def suite(expr, **kw):
    return tw.Suite([tw.rows.check(expr, **kw)])


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------
@settings(max_examples=40, **SETTINGS)
@given(data=data_of(nulls=False), expr=conditions, layout=st.sampled_from(LAYOUTS),
       splits=st.tuples(st.integers(0, 40), st.integers(0, 40)))
def test_native_program_matches_reference(fast_backend, data, expr, layout, splits):
    table = table_of(data, layout, splits)
    a = tw.rows.check(expr)
    assert a._program(table) is not None, f"{expr!r} should run in the native kernel"
    got = check_like_reference(tw.Suite([a]), table, fast_backend)
    # the physical layout does not matter
    assert_same_report(got, suite(expr).check(table_of(data), backend="reference"))


@settings(max_examples=40, **SETTINGS)
@given(data=data_of(nulls=True), expr=st.one_of(conditions, numeric, st.sampled_from(
    ["is_null(x) or i > 1", "is_valid(y) and not is_nan(y)", "j in (1, 2, 300)", "not (u in (0, 3))",
     "abs(x) > 1 or abs(j) >= 2", "col('i') - j", "x * 2 - 1"])),
    layout=st.sampled_from(LAYOUTS), splits=st.tuples(st.integers(0, 40), st.integers(0, 40)))
def test_arrow_path_matches_reference(fast_backend, data, expr, layout, splits):
    """Nullable columns and arithmetic go through Arrow, then bitmap_rows / positive_rows."""
    table = table_of(data, layout, splits)
    got = check_like_reference(suite(expr), table, fast_backend)
    assert_same_report(got, suite(expr).check(table_of(data), backend="reference"))


@settings(max_examples=60, **SETTINGS)
@given(data=data_of(nulls=False), expr=conditions)
def test_native_and_arrow_paths_agree_on_null_free_data(data, expr):
    """The same text through the native program and through Arrow (the path nullable columns
    take) gives the same rows. (Kernels are compared with the reference above: Cython only.)"""
    from tripwire import _dispatch

    table = table_of(data)
    a = tw.rows.check(expr)
    k = _dispatch.kernels("rows", "cython")
    assert a._program(table) is not None
    native = a.evaluate(table, "cython").rows.tolist()
    arrow, sev = a._arrow_rows(table, k)
    assert native == arrow.tolist(), expr
    assert (sev == 1).all()


def test_user_arrow_expression_agrees_with_text(backend):
    t = pa.table({"x": [0.5, 2.0, NAN], "i": pa.array([3, -1, 2**40], pa.int64())})
    for text in ("x > 1 or i < 0", "not (x <= 1) and i != 3", "i > 0.5"):
        want = rows_of(suite(text).check(t, backend=backend))
        assert rows_of(suite(_expr.to_arrow(_expr.parse(text))).check(t, backend=backend)) == want, text


# ----------------------------------------------------------------------------------------------
# semantics by hand
# ----------------------------------------------------------------------------------------------
X = [NAN, INF, -INF, 1.0, -0.0, 0.25]


@pytest.mark.parametrize("with_null", [False, True], ids=["native", "arrow"])
@pytest.mark.parametrize("expr,rows", [
    ("x > 0", [1, 3, 5]),
    ("not x <= 0", [0, 1, 3, 5]),       # NaN <= 0 is false
    ("x != 1", [0, 1, 2, 4, 5]),        # NaN != 1 is true (IEEE)
    ("x == x", [1, 2, 3, 4, 5]),
    ("is_nan(x)", [0]),
    ("not is_finite(x)", [0, 1, 2]),
    ("x == 0", [4]),                    # -0.0 == 0
    ("x < -1e308 or x > 1e308", [1, 2]),
    ("True", "all"),                    # reads no column: native even next to nulls
    ("False", []),
])
def test_nan_and_inf(backend, with_null, expr, rows):
    x = X + ([None] if with_null else [])
    t = pa.table({"x": pa.array(x, pa.float64())})
    a = tw.rows.check(expr)
    assert (a._program(t) is None) == (with_null and bool(a.columns()))
    rows = list(range(len(x))) if rows == "all" else rows
    assert rows_of(tw.Suite([a]).check(t, backend=backend)) == rows


def test_numeric_expression_is_severity(backend):
    t = pa.table({"score": [0.0, 0.75, 1.0, NAN, INF, None, 0.5]})
    r = suite("score * 2 - 1").check(t, backend=backend)
    assert rows_sev(r) == [(1, 0.5), (2, 1.0), (4, INF)]  # 0.5 * 2 - 1 == 0 is not > 0
    r = suite("score").check(pa.table({"score": pa.array([3, 0, -2, 7], pa.int8())}), backend=backend)
    assert rows_sev(r) == [(0, 3.0), (3, 7.0)]
    assert r.violations.column("event").to_pylist() == [0, 1]


def test_boolean_severity_is_one_and_events_per_row(backend):
    r = suite("score < 0 or score > 1").check(pa.table({"score": [0.5, -1.0, 2.0, 1.0]}), backend=backend)
    assert rows_sev(r) == [(1, 1.0), (2, 1.0)]
    assert r.violations.column("event").to_pylist() == [0, 1]
    assert r.violations.column("key").to_pylist() == [None, None]


def test_arrow_expression_accepted(backend):
    t = pa.table({"x1": [0, 5, 10], "x2": [4, 3, 600]})
    r = suite((pc.field("x2") - pc.field("x1")) > 500).check(t, backend=backend)
    assert rows_of(r) == [2]
    r = suite(pc.field("x2") - pc.field("x1")).check(t, backend=backend)
    assert rows_sev(r) == [(0, 4.0), (2, 590.0)]


def test_strings_in_and_column_names(backend):
    t = pa.table({"label": ["car", "person", None, "bike"], "my col": [1, 2, 3, 4]})
    assert rows_of(suite("label in ('car', 'bike')").check(t, backend=backend)) == [0, 3]
    assert rows_of(suite("label == 'person' or col('my col') > 3").check(t, backend=backend)) == [1, 3]
    assert rows_of(suite("is_null(label)").check(t, backend=backend)) == [2]


def test_mixed_types_native(backend):
    t = pa.table({"a": pa.array([1, 2, 3], pa.int8()), "b": pa.array([1.5, 2.0, 2.5], pa.float32()),
                  "c": pa.array([0, 2, 9], pa.uint16()), "d": pa.array([2**53 + 1, 1, 3], pa.int64())})
    assert rows_of(suite("a < b").check(t, backend=backend)) == [0]
    assert rows_of(suite("a == c or a >= b").check(t, backend=backend)) == [1, 2]
    assert rows_of(suite("d == 9007199254740993").check(t, backend=backend)) == [0]  # exact int64
    assert rows_of(suite("d > 9007199254740992.0").check(t, backend=backend)) == []  # as float64


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_row(backend, n):
    for x in ([2.0] * n, [None] * n):
        t = pa.table({"x": pa.array(x, pa.float64())})
        assert rows_of(suite("x > 1").check(t, backend=backend)) == ([0] if n and x[0] else [])
        assert rows_of(suite("x * 1").check(t, backend=backend)) == ([0] if n and x[0] else [])


def test_all_null_columns(backend):
    t = pa.table({"x": pa.nulls(5, pa.float64()), "n": pa.nulls(5)})
    assert rows_of(suite("x > 1").check(t, backend=backend)) == []
    assert rows_of(suite("not (x > 1)").check(t, backend=backend)) == []
    assert rows_of(suite("is_null(x)").check(t, backend=backend)) == [0, 1, 2, 3, 4]
    assert rows_of(suite("is_null(n)").check(t, backend=backend)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("nulls", [False, True])
@pytest.mark.parametrize("layout", ["sliced", "chunked"])
def test_sliced_and_chunked(backend, layout, nulls):
    rng = np.random.default_rng(5)
    x = [float(v) for v in rng.normal(size=101)]
    if nulls:
        x[7] = x[50] = None
    data = {"x": x, "i": [int(v) for v in rng.integers(-5, 5, 101)]}
    t = make_table({c: (v, lambda v: pa.array(v), 0) for c, v in data.items()}, layout, (13, 64))
    assert t.column("x").num_chunks > 1 or t.column("x").chunk(0).offset == 3
    for expr in ("x > 1 or i == 3", "x + i"):
        want = suite(expr).check(pa.table(data), backend="reference")
        assert len(want) > 0
        assert_same_report(suite(expr).check(t, backend=backend), want, context=expr)


def test_many_blocks_against_reference(fast_backend):
    """More rows than one native block (1024), with a ragged last block."""
    rng = np.random.default_rng(11)
    n = 2 * 1024 + 37
    t = pa.table({"x": rng.normal(size=n), "y": rng.normal(size=n).astype(np.float32),
                  "i": rng.integers(-100, 100, n)})
    for expr in ("x > 2.5 or (y < -2 and i > 0)", "not (x < 3) or i == 99", "x > 1.5 and x > y"):
        got = check_like_reference(suite(expr), t, fast_backend)
        assert 0 < len(got) < n


def test_division_and_large_integers(backend):
    """Regressions: '/' raised TypeError when built; an integer result beyond 2**53 raised
    ArrowInvalid; a constant beyond int64 raised OverflowError."""
    t = pa.table({"a": pa.array([3, -4, 0], pa.int64()), "b": pa.array([2.0, 0.0, 0.0])})
    assert rows_sev(suite("a / 2").check(t, backend=backend)) == [(0, 1.5)]
    r = suite("a / b").check(t, backend=backend)  # 3/2, -4/0 = -inf, 0/0 = NaN
    assert rows_sev(r) == [(0, 1.5)]
    r = suite("a * 1000000000000000000").check(t, backend=backend)  # int64 result beyond 2**53
    assert rows_sev(r) == [(0, float(np.float32(3e18)))]
    assert rows_of(suite("a < 99999999999999999999").check(t, backend=backend)) == [0, 1, 2]
    t2 = pa.table({"a": pa.array([3, None, 0], pa.int64())})
    assert rows_of(suite("a < 99999999999999999999").check(t2, backend=backend)) == [0, 2]


def test_arrow_path_mixed_integers_and_floats(backend):
    """Regressions: with nulls (Arrow path), float32 columns and float literals made Arrow cast
    integer operands to float32, which failed beyond 2**24 where the native path did not."""
    big = 2**40 + 1
    for nulls in (False, True):
        i = [big, 3, -big] + ([None] if nulls else [])
        y = [float(2**40), 3.5, 0.5] + ([None] if nulls else [])
        u = [4_000_000_000, 0, 1] + ([None] if nulls else [])
        t = pa.table({"i": pa.array(i, pa.int64()), "y": pa.array(y, pa.float32()), "u": pa.array(u, pa.uint32())})
        assert rows_of(suite("i > y").check(t, backend=backend)) == [0], nulls
        assert rows_of(suite("i > 0.5").check(t, backend=backend)) == [0, 1], nulls
        assert rows_of(suite("u < 0.5").check(t, backend=backend)) == [1], nulls
        assert rows_of(suite("y >= 1099511627776").check(t, backend=backend)) == [0], nulls
        assert rows_of(suite("y > 16777217 or u > 3999999999.5").check(t, backend=backend)) == [0], nulls


def test_known_arrow_limits(backend):
    """Left as they are (reported): on the Arrow path a uint64 value >= 2**63 cannot meet an int
    constant, and unsigned columns cannot be negated. Both fail with a tripwire InputError."""
    t = pa.table({"w": pa.array([2**63 + 5, None], pa.uint64()), "u": pa.array([1, None], pa.uint32())})
    with pytest.raises(tw.InputError, match="w > 5"):
        suite("w > 5").check(t, backend=backend)
    with pytest.raises(tw.InputError, match="-u"):
        suite("-u").check(t, backend=backend)
    # null-free: the native program compares uint64 as float64
    assert rows_of(suite("w > 5").check(t.slice(0, 1), backend=backend)) == [0]


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
def test_missing_column(backend):
    t = pa.table({"score": [1.0]})
    with pytest.raises(tw.ColumnError) as e:
        suite("scor > 1").check(t, backend=backend)
    msg = str(e.value)
    assert "'scor'" in msg and "expected" in msg and "found: columns score" in msg and "fix" in msg
    with pytest.raises(tw.InputError, match="scor"):
        suite(pc.field("scor") > 1).check(t, backend=backend)


def test_string_column_in_numeric_comparison(backend):
    t = pa.table({"label": ["a", "b"], "score": [1.0, 2.0]})
    with pytest.raises(tw.InputError) as e:
        suite("label > 1").check(t, backend=backend)
    msg = str(e.value)
    assert "label > 1" in msg and "label: string" in msg and "expected" in msg
    assert "fix: compare strings with strings" in msg


def test_non_boolean_non_numeric_result(backend):
    with pytest.raises(tw.InputError, match="gives string.*expected: a boolean"):
        suite("label").check(pa.table({"label": ["a"]}), backend=backend)


@pytest.mark.parametrize("expr", ["", "   ", "x >", "__import__('os')", "x.y > 1", "f(x)", "x if y else z",
                                  "x in y", "lambda: 1", 3, None, ["x > 1"]])
def test_bad_expressions(expr):
    with pytest.raises(tw.InputError) as e:
        tw.rows.check(expr)
    assert "expected" in str(e.value) and "fix" in str(e.value)


def test_float16_column_goes_through_arrow(backend):
    t = pa.table({"h": pa.array(np.array([0.5, 2.0, 3.0], np.float16))})
    assert tw.rows.check("h > 1")._program(t) is None
    assert rows_of(suite("h > 1").check(t, backend=backend)) == [1, 2]


def test_kernel_functions_directly(fast_backend):
    """is_nan / is_finite on integer columns are false / true; every program kernel agrees."""
    import reference
    from tripwire import _dispatch

    k = _dispatch.kernels("rows", fast_backend)
    prog = _expr.compile_program(_expr.parse("is_nan(i) or not is_finite(i) or is_nan(x)"),
                                 {"i": np.dtype(np.int32), "x": np.dtype(np.float32)})
    cols = [np.array([1, 2, 3], np.int32), np.array([NAN, 0, -INF], np.float32)]
    dts = np.array([_expr.DTYPE_CODES[c.dtype] for c in cols], np.int64)
    for mod in (k, reference):
        assert mod.check_program(prog.code, prog.fconsts, prog.iconsts, cols, dts, 3).tolist() == [0]
    bits = np.array([0b10110101, 0b1], np.uint8)
    valid = np.array([0b11101111, 0b1], np.uint8)
    for mod in (k, reference):
        assert mod.bitmap_rows(bits, 1, 8, valid, 0).tolist() == [1, 3, 6, 7]  # bit 5: row 4 is null
        assert mod.bitmap_rows(bits, 0, 9, np.empty(0, np.uint8), 0).tolist() == [0, 2, 4, 5, 7, 8]
        r, sv = mod.positive_rows(np.array([1.0, NAN, -1.0, 1e300, 0.0]), np.array([1, 1, 1, 1, 0], np.uint8))
        assert r.tolist() == [0, 3] and sv.dtype == np.float32 and sv.tolist() == [1.0, INF]


def test_mixed_type_list_is_a_clear_error():
    """A literal list mixing types used to leak Arrow's ArrowInvalid at construction."""
    with pytest.raises(tw.InputError, match="mixes types"):
        tw.rows.check("i in (3, 'a')")
