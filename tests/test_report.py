"""``Report`` (DESIGN §4): violations schema, summary, corrections, weak labels, top-k, exports,
and ``Suite`` construction / named tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tripwire as tw
from tripwire.report import VIOLATION_SCHEMA


def people() -> pa.Table:
    """Hand example. person 1: sex m/f (tie -> m, first seen); person 2: m, m, f; person 3: x, x, y.
    Times: person 1 is seen at t=0 and t=2 (a gap inside a window of 3)."""
    return pa.table({
        "person": pa.array([1, 1, 2, 2, 2, 3, 3, 3], pa.int64()),
        "sex": pa.array(["m", "f", "m", "m", "f", "x", "x", "y"]),
        "t": pa.array([0, 2, 0, 1, 5, 0, 1, 2], pa.int64()),
        "score": pa.array([0.1, 0.9, 0.95, 0.2, 0.3, 0.4, 0.5, 0.99]),
    })


def suite() -> tw.Suite:
    return tw.Suite([
        tw.rows.consistent(id="person", attr="sex"),
        tw.rows.contiguous(id="person", time="t", window=3),
        tw.rows.check("score > 0.9", name="high_score"),
    ])


@pytest.fixture
def report() -> tw.Report:
    return suite().check(people())


# ----------------------------------------------------------------------------------------------
# violations
# ----------------------------------------------------------------------------------------------
def test_violations_schema(report):
    v = report.violations
    assert v.schema.remove_metadata().equals(VIOLATION_SCHEMA)
    assert v.column_names == ["assertion", "kind", "table", "row", "event", "severity", "key"]


def test_violations_hand_example(report):
    v = report.violations.to_pylist()
    got = [(r["assertion"], r["kind"], r["table"], r["row"], r["event"], round(r["severity"], 4), r["key"])
           for r in v]
    assert got == [
        ("rows.consistent", "rows.consistent", "rows", 0, 0, 0.5, "1"),
        ("rows.consistent", "rows.consistent", "rows", 1, 0, 0.5, "1"),
        ("rows.consistent", "rows.consistent", "rows", 2, 1, 0.3333, "2"),
        ("rows.consistent", "rows.consistent", "rows", 4, 1, 0.3333, "2"),
        ("rows.consistent", "rows.consistent", "rows", 5, 2, 0.3333, "3"),
        ("rows.consistent", "rows.consistent", "rows", 7, 2, 0.3333, "3"),
        ("rows.contiguous", "rows.contiguous", "rows", 0, 3, 1.0, "1"),
        ("rows.contiguous", "rows.contiguous", "rows", 1, 3, 1.0, "1"),
        ("high_score", "rows.check", "rows", 2, 4, 1.0, None),
        ("high_score", "rows.check", "rows", 7, 5, 1.0, None),
    ]
    assert len(report) == 10
    assert report.n_events == 6


def test_events_are_unique_across_the_report(report):
    v = report.violations
    events = v.column("event").to_numpy()
    names = v.column("assertion").to_pylist()
    owner: dict = {}
    for e, name in zip(events, names):
        assert owner.setdefault(e, name) == name  # an event belongs to one assertion
    assert sorted(set(events.tolist())) == list(range(report.n_events))
    assert (v.column("severity").to_numpy() > 0).all()


def test_empty_report():
    table = pa.table({"person": [1, 1], "sex": ["m", "m"], "t": [0, 1], "score": [0.1, 0.2]})
    r = suite().check(table)
    assert len(r) == 0 and r.n_events == 0
    assert r.violations.num_rows == 0
    assert r.violations.schema.equals(VIOLATION_SCHEMA)
    assert r.top(5).num_rows == 0
    assert r.corrections().num_rows == 0
    assert r.corrections().column_names == ["source_assertion", "action", "row", "column",
                                            "person", "sex", "t", "score"]
    assert r.apply().equals(table)
    assert r.summary().column("events").to_pylist() == [0, 0, 0]


# ----------------------------------------------------------------------------------------------
# summary
# ----------------------------------------------------------------------------------------------
def test_summary(report):
    s = report.summary()
    assert s.column_names == ["assertion", "kind", "rows", "violations", "events", "rate",
                              "max_severity", "corrections"]
    rows = s.to_pylist()
    assert [r["assertion"] for r in rows] == ["rows.consistent", "rows.contiguous", "high_score"]
    assert [r["rows"] for r in rows] == [8, 8, 8]
    assert [r["violations"] for r in rows] == [6, 2, 2]
    assert [r["events"] for r in rows] == [3, 1, 2]
    assert [r["rate"] for r in rows] == pytest.approx([3 / 8, 1 / 8, 2 / 8])
    assert [r["max_severity"] for r in rows] == pytest.approx([0.5, 1.0, 1.0])
    assert [r["corrections"] for r in rows] == [3, 0, 0]


# ----------------------------------------------------------------------------------------------
# corrections and weak labels
# ----------------------------------------------------------------------------------------------
def test_corrections_are_corrected_full_rows(report):
    c = report.corrections()
    assert c.column_names == ["source_assertion", "action", "row", "column", "person", "sex", "t", "score"]
    assert c.to_pylist() == [
        {"source_assertion": "rows.consistent", "action": "relabel", "row": 1, "column": "sex",
         "person": 1, "sex": "m", "t": 2, "score": 0.9},
        {"source_assertion": "rows.consistent", "action": "relabel", "row": 4, "column": "sex",
         "person": 2, "sex": "m", "t": 5, "score": 0.3},
        {"source_assertion": "rows.consistent", "action": "relabel", "row": 7, "column": "sex",
         "person": 3, "sex": "x", "t": 2, "score": 0.99},
    ]


def test_apply_relabels(report):
    weak = report.apply()
    assert weak.schema.equals(people().schema)
    assert weak.column("sex").to_pylist() == ["m", "m", "m", "m", "m", "x", "x", "x"]
    for name in ("person", "t", "score"):
        assert weak.column(name).equals(people().column(name))
    # weak labels are consistent: checking them again raises no consistency violation
    again = tw.Suite([tw.rows.consistent(id="person", attr="sex")]).check(weak)
    assert len(again) == 0


def test_apply_to_another_table_with_the_same_rows(report):
    other = people().append_column("camera", pa.array(["c%d" % i for i in range(8)]))
    other = other.select(["camera", "sex", "person", "t", "score"])  # another column order
    weak = report.apply(other)
    assert weak.column_names == ["camera", "sex", "person", "t", "score"]
    assert weak.column("sex").to_pylist() == ["m", "m", "m", "m", "m", "x", "x", "x"]
    assert weak.column("camera").equals(other.column("camera"))
    # pandas input is accepted too
    weak_pd = report.apply(other.to_pandas())
    assert weak_pd.column("sex").to_pylist() == weak.column("sex").to_pylist()


def test_apply_refuses_a_table_with_other_rows(report):
    with pytest.raises(tw.InputError, match="different number of rows"):
        report.apply(people().slice(1))


def test_later_relabel_of_the_same_cell_wins():
    table = pa.table({"a": [1, 1, 1], "b": [2, 2, 3], "lab": ["x", "y", "y"]})
    r = tw.Suite([tw.rows.consistent(id="a", attr="lab", name="by_a"),
                  tw.rows.consistent(id="b", attr="lab", name="by_b")]).check(table)
    # by_a: majority y -> row 0 becomes y; by_b: id 2 -> {x, y} tie -> x (first seen) for row 1.
    # Each proposal copies the value of the *input* (what corrections() shows), not of an
    # earlier relabel: by_b sets row 1 to "x" although by_a turned row 0 into "y".
    corr = r.corrections()
    assert [(x["source_assertion"], x["row"], x["lab"]) for x in corr.to_pylist()] == [
        ("by_a", 0, "y"), ("by_b", 1, "x")]
    assert r.apply().column("lab").to_pylist() == ["y", "x", "y"]


def test_a_later_relabel_of_the_same_cell_wins():
    # row 0: group a=1 says "y", group b=2 says "z"; the later assertion wins
    table = pa.table({"a": [1, 1, 1, 0, 0], "b": [2, 3, 3, 2, 2], "lab": ["x", "y", "y", "z", "z"]})
    for first, second, want in (("a", "b", "z"), ("b", "a", "y")):
        r = tw.Suite([tw.rows.consistent(id=first, attr="lab", name="one"),
                      tw.rows.consistent(id=second, attr="lab", name="two")]).check(table)
        assert r.apply().column("lab").to_pylist() == [want, "y", "y", "z", "z"]


# ----------------------------------------------------------------------------------------------
# top(k)
# ----------------------------------------------------------------------------------------------
def margin_report() -> tw.Report:
    table = pa.table({
        "person": pa.array([1, 1, 1, 2, 2, 3, 3, 3, 3], pa.int64()),
        "sex": ["m", "f", "m", "m", "f", "a", "b", "c", "a"],
        "score": pa.array([0.1, 0.8, 0.55, 0.3, 0.95, 0.6, 0.2, 0.7, 0.0]),
    })
    return tw.Suite([
        tw.rows.consistent(id="person", attr="sex"),  # sev: 1/3 (p1), 1/2 (p2), 1/2 (p3)
        tw.rows.check("score - 0.5", name="margin"),  # sev = score - 0.5 where > 0
    ]).check(table)


def test_top_orders_events_by_severity_and_keeps_all_their_rows():
    r = margin_report()
    top = r.top(3)
    rows = [(x["assertion"], x["event"], x["row"], round(x["severity"], 3)) for x in top.to_pylist()]
    assert rows == [
        ("rows.consistent", 1, 3, 0.5), ("rows.consistent", 1, 4, 0.5),
        ("rows.consistent", 2, 5, 0.5), ("rows.consistent", 2, 6, 0.5), ("rows.consistent", 2, 7, 0.5),
        ("margin", 5, 4, 0.45),
    ]
    assert top.schema.equals(r.violations.schema)


def test_top_properties():
    r = margin_report()
    v = r.violations
    for k in range(0, r.n_events + 2):
        top = r.top(k)
        events = top.column("event").to_pylist()
        distinct = list(dict.fromkeys(events))
        assert len(distinct) == min(k, r.n_events)
        # events are contiguous blocks, in non-increasing severity
        assert events == sorted(events, key=distinct.index)
        sev = [max(s for e, s in zip(events, top.column("severity").to_pylist()) if e == d) for d in distinct]
        assert sev == sorted(sev, reverse=True)
        # every row of a chosen event is there
        for d in distinct:
            assert pc.sum(pc.equal(v["event"], d)).as_py() == events.count(d)
        # nothing left out is more severe than what was kept
        if distinct and len(distinct) < r.n_events:
            rest = v.filter(pc.invert(pc.is_in(v["event"], pa.array(distinct, pa.int64()))))
            assert pc.max(rest["severity"]).as_py() <= min(sev)


def test_top_of_zero_and_negative():
    r = margin_report()
    assert r.top(0).num_rows == 0
    assert r.top(-1).num_rows == 0


# ----------------------------------------------------------------------------------------------
# exports
# ----------------------------------------------------------------------------------------------
def test_to_pandas(report):
    df = report.to_pandas()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["assertion", "kind", "table", "row", "event", "severity", "key"]
    assert df["row"].tolist() == [0, 1, 2, 4, 5, 7, 0, 1, 2, 7]
    assert df["severity"].dtype == np.float32


@pytest.mark.parametrize("what", ["violations", "corrections", "summary"])
def test_to_parquet_round_trip(report, tmp_path, what):
    path = tmp_path / f"{what}.parquet"
    if what == "violations":
        report.to_parquet(str(path))
        expected = report.violations
    else:
        report.to_parquet(str(path), what=what)
        expected = getattr(report, what)()
    back = pq.read_table(path)
    assert back.num_rows == expected.num_rows > 0
    assert back.schema.remove_metadata().equals(expected.schema.remove_metadata())
    assert back.equals(expected)


def test_to_parquet_refuses_unknown_what(report, tmp_path):
    with pytest.raises(tw.InputError, match="violations, corrections or summary"):
        report.to_parquet(str(tmp_path / "x.parquet"), what="everything")


def test_to_html_and_repr_html(report):
    html = report.to_html()
    assert html.startswith("<div>") and html.endswith("</div>")
    assert html.count("<table>") == 2
    for name in ("rows.consistent", "rows.contiguous", "high_score"):
        assert name in html
    assert "10 violation rows in 6 events" in html
    assert report._repr_html_() == html
    assert "<p>top 2 events</p>" in report.to_html(k=2)


def test_to_html_escapes_values():
    table = pa.table({"id": ["<b>x</b>", "<b>x</b>"], "attr": ["<i>", "&"]})
    html = tw.Suite([tw.rows.consistent(id="id", attr="attr")]).check(table).to_html()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_repr(report):
    text = repr(report)
    first, *rest = text.splitlines()
    assert first.startswith("<Report: 10 violation rows, 6 events, backend=cython, ")
    assert first.endswith(" ms>")
    assert len(rest) == 3
    assert rest[0].split()[:2] == ["rows.consistent", "3"]
    assert "high_score" in rest[2] and "rate 0.2500" in rest[2]


# ----------------------------------------------------------------------------------------------
# Suite
# ----------------------------------------------------------------------------------------------
def test_duplicate_names_are_refused():
    with pytest.raises(tw.SuiteError, match="duplicate assertion name.*rows.consistent"):
        tw.Suite([tw.rows.consistent(id="a", attr="b"), tw.rows.consistent(id="a", attr="c")])
    ok = tw.Suite([tw.rows.consistent(id="a", attr="b"), tw.rows.consistent(id="a", attr="c", name="c")])
    assert len(ok) == 2


@pytest.mark.parametrize("bad", ["rows.consistent", {"kind": "rows.check"}, None, tw.rows.consistent])
def test_non_assertions_are_refused(bad):
    with pytest.raises(tw.SuiteError, match="Suite holds assertions"):
        tw.Suite([tw.rows.check("x > 1"), bad])


def test_named_tables():
    a = people()
    b = pa.table({"score": [0.99, 0.1, 0.97]})
    s = tw.Suite([tw.rows.consistent(id="person", attr="sex", table="a"),
                  tw.rows.check("score > 0.9", table="b")])
    r = s.check(a=a, b=b)
    v = r.violations
    assert v.column("table").to_pylist() == ["a"] * 6 + ["b"] * 2
    assert v.filter(pc.equal(v["table"], "b")).column("row").to_pylist() == [0, 2]
    assert v.column("event").to_pylist() == [0, 0, 1, 1, 2, 2, 3, 4]
    assert r.corrections(table="a").num_rows == 3
    assert r.corrections(table="b").num_rows == 0
    assert r.apply(table="a").column("sex").to_pylist() == ["m", "m", "m", "m", "m", "x", "x", "x"]
    assert r.apply(table="b").equals(b)
    with pytest.raises(tw.InputError, match="several tables"):
        r.corrections()
    with pytest.raises(tw.InputError, match="no input table 'c'"):
        r.apply(table="c")
    assert s.columns() == {"a": ["person", "sex"], "b": ["score"]}


def test_missing_named_table():
    s = tw.Suite([tw.rows.consistent(id="person", attr="sex", table="a"),
                  tw.rows.check("score > 0.9", table="b")])
    with pytest.raises(tw.InputError) as info:
        s.check(a=people(), c=people())
    msg = str(info.value)
    assert "reads table 'b', which was not given" in msg and "check(b=...)" in msg


def test_check_argument_errors():
    s = suite()
    with pytest.raises(tw.InputError, match="positional table and named tables"):
        s.check(people(), rows=people())
    with pytest.raises(tw.InputError, match="no data"):
        s.check()


def test_single_named_table_is_used_by_every_assertion():
    r = suite().check(rows=people())
    assert r.violations.equals(suite().check(people()).violations)


# ----------------------------------------------------------------------------------------------
# canonical event order: the native check agrees with NumPy's, and with the sort it spares
# ----------------------------------------------------------------------------------------------
@st.composite
def kernel_outputs(draw):
    """Violations as kernels emit them: events of 1-3 rows, anchors one per event; sometimes
    in canonical order already, sometimes shuffled or renumbered."""
    n_events = draw(st.integers(1, 8))
    rows, events, anchors = [], [], []
    for e in range(n_events):
        members = sorted(draw(st.sets(st.integers(0, 40), min_size=1, max_size=3)))
        anchors.append(members[0] + 100 * e if draw(st.booleans()) else draw(st.integers(0, 400)))
        rows += members
        events += [e] * len(members)
    perm = np.arange(len(rows))
    if draw(st.booleans()):
        perm = np.array(draw(st.permutations(list(range(len(rows))))))
    as64 = lambda v: np.asarray(v, np.int64)  # noqa: E731
    return as64(rows)[perm], as64(events)[perm], as64(anchors)


@settings(max_examples=300, deadline=None)
@given(out=kernel_outputs())
def test_native_canonical_check_matches_numpy(out):
    from tripwire._assertion import _already_canonical

    rows, events, anchors = out
    native = _already_canonical(rows, events, anchors)
    # the NumPy path: same arrays as int32 (not the native kernel's dtype)
    plain = _already_canonical(rows.astype(np.int32), events.astype(np.int32), anchors.astype(np.int32))
    assert native == plain
    # what the check spares: when it says canonical, renumbering events by anchor and sorting
    # by (event, row) changes nothing (it may miss degenerate cases, which then just get sorted)
    rank = np.empty(len(anchors), np.int64)
    rank[np.argsort(anchors, kind="stable")] = np.arange(len(anchors))
    ev = rank[events]
    order = np.lexsort((rows, ev))
    unchanged = np.array_equal(rows[order], rows) and np.array_equal(ev[order], events) \
        and len(np.unique(anchors)) == len(anchors)
    assert unchanged or not native
