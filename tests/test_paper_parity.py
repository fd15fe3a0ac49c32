"""Differential tests against the paper's library, ``model_assertions`` 0.0.3 (Kang et al.,
MLSys 2020), on Hypothesis-generated pandas tables.

Where the semantics agree, tripwire must flag exactly the rows the paper library flags:

- ``tw.rows.consistent(id, attr)`` vs ``IdentifierConsistencyAssertion(id, attr)``: each paper
  error (a list of row indices: the first row of each distinct attribute value of one
  inconsistent identifier) is the row set of one tripwire event.
- ``tw.rows.contiguous(id, time, window, allowed_transitions)`` vs
  ``TimeConsistencyAssertion(...)``: each paper error is a pair ``[window start, row that pushes
  the transition count over the limit]``, the rows of one tripwire event. Compared on the
  paper's precondition: input sorted by time, unique ``(id, time)`` pairs.
- ``PerRowAssertion(callback)`` vs a ``@tw.assertion`` per-row function (and a ``rows.check``
  expression) with the same predicate.

Deliberate differences (each has a test below that shows it):

- nulls: the paper library keys Python dicts by cell values, and every NaN it reads from
  ``iterrows`` is a distinct object, so each null identifier/attribute row behaves like a new
  value. tripwire skips rows with a null identifier and treats a null attribute as one value.
  The differential tests therefore use non-null identifiers and attributes.
- unsorted input: the paper's time check sorts the times but keeps the unsorted index, so it
  reports the wrong rows; tripwire orders times per identifier.
- repeated ``(id, time)`` rows: the paper counts a repeat as a gap (two transitions); tripwire
  treats it as one presence.

The paper library is slow (``iterrows``), so example counts are modest.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
from tripwire import _registry

model_assertions = pytest.importorskip("model_assertions")
from model_assertions.consistency import IdentifierConsistencyAssertion, TimeConsistencyAssertion  # noqa: E402
from model_assertions.per_row import PerRowAssertion  # noqa: E402

PARITY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def events_of(report: tw.Report, assertion: str | None = None) -> list[tuple[int, ...]]:
    """Each event's rows (sorted), as a sorted list of tuples."""
    v = report.violations
    groups: dict = defaultdict(list)
    for name, ev, row in zip(v.column("assertion").to_pylist(), v.column("event").to_pylist(),
                             v.column("row").to_pylist()):
        if assertion is None or name == assertion:
            groups[ev].append(row)
    return sorted(tuple(sorted(rows)) for rows in groups.values())


def paper_groups(errors: list) -> list[tuple[int, ...]]:
    return sorted(tuple(sorted(int(i) for i in (e if isinstance(e, list) else [e]))) for e in errors)


def paper_check(assertion, df: pd.DataFrame) -> list:
    """Run a paper assertion on copies (it sorts arrays in place)."""
    return assertion.check_errors(df.copy(), df.copy())


# every CPU backend must agree with the paper library ("reference" is registered by conftest)
CPU_BACKENDS = ("cython", "numba", "reference")


def tripwire_consistent(df: pd.DataFrame, id: str = "ident", attr: str = "attr",
                        backend: str = "auto") -> list:
    return events_of(tw.Suite([tw.rows.consistent(id=id, attr=attr)]).check(df, backend=backend))


def tripwire_contiguous(df: pd.DataFrame, window: int, allowed: int, backend: str = "auto") -> list:
    a = tw.rows.contiguous(id="ident", time="t", window=window, allowed_transitions=allowed)
    return events_of(tw.Suite([a]).check(df, backend=backend))


# ----------------------------------------------------------------------------------------------
# (a) identifier consistency
# ----------------------------------------------------------------------------------------------
@st.composite
def consistency_frames(draw):
    id_kind = draw(st.sampled_from([0, 1, 2]))
    attr_kind = draw(st.sampled_from([0, 1]))
    ids = [st.integers(-3, 3), st.sampled_from([0, 1, 10**12, -(10**12), 2**62]),
           st.sampled_from(["anna", "bo", "cy", "dee", ""])][id_kind]
    attrs = [st.integers(0, 2), st.sampled_from(["f", "m", "x"])][attr_kind]
    rows = draw(st.lists(st.tuples(ids, attrs), min_size=1, max_size=40))
    return pd.DataFrame({"ident": [r[0] for r in rows], "attr": [r[1] for r in rows],
                         "other": np.arange(len(rows), dtype=np.float64)})


@PARITY
@given(consistency_frames())
def test_consistent_matches_identifier_consistency_assertion(df):
    expected = paper_groups(paper_check(IdentifierConsistencyAssertion("ident", "attr"), df))
    for backend in CPU_BACKENDS:
        assert tripwire_consistent(df, backend=backend) == expected, backend


@PARITY
@given(consistency_frames())
def test_consistent_matches_with_remapped_column_names(df):
    df = df.rename(columns={"ident": "person", "attr": "sex"})
    expected = paper_groups(paper_check(IdentifierConsistencyAssertion("person", "sex"), df))
    assert tripwire_consistent(df, id="person", attr="sex") == expected


def test_consistent_hand_case():
    df = pd.DataFrame({"ident": ["a", "a", "b", "a", "b", "c"], "attr": [1, 2, 1, 2, 1, 3]})
    assert paper_check(IdentifierConsistencyAssertion("ident", "attr"), df) == [[0, 1]]
    assert tripwire_consistent(df) == [(0, 1)]


def test_null_handling_differs():
    """Deliberate difference: nulls.

    The paper library builds ``dict[id][attr]`` from ``iterrows`` values; each NaN it reads is a
    new ``float`` object and NaN != NaN, so every null attribute is a distinct value (and every
    null identifier a distinct identifier). tripwire treats a null attribute as one value of its
    own and does not check rows whose identifier is null.
    """
    df = pd.DataFrame({"ident": ["a", "a", "a"], "attr": [np.nan, np.nan, 1.0]})
    paper = paper_groups(paper_check(IdentifierConsistencyAssertion("ident", "attr"), df))
    assert paper == [(0, 1, 2)]  # both NaNs count as different values
    assert tripwire_consistent(df) == [(0, 2)]  # one null value, one 1.0
    only_nulls = pd.DataFrame({"ident": ["a", "a"], "attr": [np.nan, np.nan]})
    assert paper_check(IdentifierConsistencyAssertion("ident", "attr"), only_nulls) == [[0, 1]]
    assert tripwire_consistent(only_nulls) == []


# ----------------------------------------------------------------------------------------------
# (b) time consistency, on the paper's precondition
# ----------------------------------------------------------------------------------------------
@st.composite
def sorted_unique_frames(draw, max_time: int = 18):
    """Sorted by time, unique (id, time) pairs; rows at one time in random id order."""
    string_ids = draw(st.booleans())
    n_ids = draw(st.integers(1, 4))
    horizon = draw(st.integers(1, max_time))
    # each identifier's presence pattern over the horizon: dense, with many gaps
    pairs = [(i, t) for i in range(n_ids)
             for t, present in enumerate(draw(st.lists(st.booleans(), min_size=horizon, max_size=horizon)))
             if present] or [(0, 0)]
    tie = draw(st.randoms(use_true_random=False))
    order = sorted(pairs, key=lambda p: (p[1], tie.random()))
    ids = [f"id{p[0]}" if string_ids else p[0] for p in order]
    return pd.DataFrame({"ident": ids, "t": np.array([p[1] for p in order], np.int64)})


@PARITY
@given(sorted_unique_frames(), st.integers(1, 6), st.integers(0, 3))
def test_contiguous_matches_time_consistency_assertion(df, window, allowed):
    paper = paper_groups(paper_check(TimeConsistencyAssertion("ident", "t", window, allowed), df))
    for backend in CPU_BACKENDS:
        assert tripwire_contiguous(df, window, allowed, backend=backend) == paper, backend


@PARITY
@given(sorted_unique_frames(), st.integers(3, 6), st.integers(0, 2))
def test_contiguous_matches_where_violations_are_likely(df, window, allowed):
    """Windows of 1 or 2 can never hold a gap; this variant keeps to those that can."""
    paper = paper_check(TimeConsistencyAssertion("ident", "t", window, allowed), df)
    assert tripwire_contiguous(df, window, allowed) == paper_groups(paper)


@PARITY
@given(st.integers(1, 6), st.integers(0, 3),
       st.lists(st.integers(0, 1), min_size=1, max_size=25))
def test_contiguous_matches_on_a_single_presence_pattern(window, allowed, pattern):
    """One identifier, present where ``pattern`` is 1 (dense gap structures)."""
    t = [i for i, p in enumerate(pattern) if p] or [0]
    df = pd.DataFrame({"ident": ["x"] * len(t), "t": np.array(t, np.int64)})
    paper = paper_check(TimeConsistencyAssertion("ident", "t", window, allowed), df)
    assert tripwire_contiguous(df, window, allowed) == paper_groups(paper)


def test_contiguous_hand_case():
    # a is seen at 0, 1, 3, 4: the gap at 2 is two transitions in the window starting at t=1
    # (the window starting at t=0 ends before t=3); b is seen at 0 and 2
    df = pd.DataFrame({"ident": ["a", "b", "a", "b", "a", "a"], "t": [0, 0, 1, 2, 3, 4]})
    paper = paper_check(TimeConsistencyAssertion("ident", "t", 3, 1), df)
    assert paper_groups(paper) == [(1, 3), (2, 4)]
    assert tripwire_contiguous(df, 3, 1) == [(1, 3), (2, 4)]
    # two allowed transitions: no violation; window 2: the gap never fits in a window
    assert paper_check(TimeConsistencyAssertion("ident", "t", 3, 2), df) == []
    assert tripwire_contiguous(df, 3, 2) == []
    assert paper_check(TimeConsistencyAssertion("ident", "t", 2, 1), df) == []
    assert tripwire_contiguous(df, 2, 1) == []


# ----------------------------------------------------------------------------------------------
# (c) deliberate differences
# ----------------------------------------------------------------------------------------------
def test_unsorted_input_paper_reports_wrong_rows():
    """Deliberate difference: input need not be sorted.

    ``TimeConsistencyAssertion`` sorts each identifier's time values but then maps positions in
    the *sorted* array to the group's *unsorted* index, so on unsorted input it names the wrong
    rows. Here row 0 is at t=9, row 1 at t=0 and row 2 at t=2: the gap is between t=0 and t=2
    (rows 1 and 2), but the paper library reports rows 0 and 1. tripwire reports rows 1 and 2,
    exactly what checking the time-sorted table and mapping rows back gives.
    """
    df = pd.DataFrame({"ident": ["a", "a", "a"], "t": np.array([9, 0, 2], np.int64)})
    assert paper_check(TimeConsistencyAssertion("ident", "t", 3, 1), df) == [[0, 1]]
    assert tripwire_contiguous(df, 3, 1) == [(1, 2)]
    perm = np.argsort(df["t"].to_numpy(), kind="stable")
    on_sorted = paper_check(TimeConsistencyAssertion("ident", "t", 3, 1),
                            df.iloc[perm].reset_index(drop=True))
    assert [tuple(sorted(int(perm[r]) for r in e)) for e in on_sorted] == [(1, 2)]


@st.composite
def unsorted_unique_frames(draw):
    df = draw(sorted_unique_frames())
    perm = draw(st.permutations(range(len(df))))
    return df.iloc[list(perm)].reset_index(drop=True)


@PARITY
@given(unsorted_unique_frames(), st.integers(1, 6), st.integers(0, 3))
def test_unsorted_input_equals_sorted_input_mapped_back(df, window, allowed):
    """tripwire on any row order == (tripwire == paper) on the time-sorted table, rows mapped back."""
    perm = np.argsort(df["t"].to_numpy(), kind="stable")
    sorted_df = df.iloc[perm].reset_index(drop=True)
    on_sorted = tripwire_contiguous(sorted_df, window, allowed)
    assert on_sorted == paper_groups(paper_check(TimeConsistencyAssertion("ident", "t", window, allowed),
                                                 sorted_df))
    mapped = sorted(tuple(sorted(int(perm[r]) for r in ev)) for ev in on_sorted)
    assert tripwire_contiguous(df, window, allowed) == mapped


def test_repeated_id_time_rows_are_one_presence():
    """Deliberate difference: repeated ``(id, time)`` rows.

    The paper library walks the sorted time values and counts ``t[j] != t[j-1] + 1`` as a gap,
    so a repeated time (two detections of one person in one frame) is two transitions and, with
    ``allowed_transitions=1``, a violation. tripwire treats a repeated time as one presence
    (its first row in arrival order stands for it), so a person seen twice at t=0 and once at
    t=1 is contiguous.
    """
    df = pd.DataFrame({"ident": ["a", "a", "a"], "t": np.array([0, 0, 1], np.int64)})
    assert paper_check(TimeConsistencyAssertion("ident", "t", 3, 1), df) == [[0, 1]]
    assert tripwire_contiguous(df, 3, 1) == []
    # with a real gap, tripwire's event starts at the first of the repeated rows
    gap = pd.DataFrame({"ident": ["a", "a", "a"], "t": np.array([0, 0, 2], np.int64)})
    assert tripwire_contiguous(gap, 3, 1) == [(0, 2)]


@PARITY
@given(sorted_unique_frames(max_time=10), st.data(), st.integers(1, 6), st.integers(0, 3))
def test_repeated_rows_equal_the_deduplicated_table(df, data, window, allowed):
    """Adding repeats of existing (id, time) rows changes nothing but row numbers."""
    extra = data.draw(st.lists(st.integers(0, len(df) - 1), max_size=10))
    dup = pd.concat([df, df.iloc[extra]]).reset_index(drop=True)  # repeats come after originals
    assert tripwire_contiguous(dup, window, allowed) == tripwire_contiguous(df, window, allowed)


# ----------------------------------------------------------------------------------------------
# (d) per-row predicates
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def per_row_udf():
    kind = "parity.confident_near"

    @tw.assertion(name=kind)
    def confident_near(score, x):
        return score > 0.5 and x < 3

    yield confident_near
    _registry.unregister(kind)


def _paper_callback(inp, out):
    return inp["score"] > 0.5 and out["x"] < 3


@st.composite
def per_row_frames(draw):
    n = draw(st.integers(1, 40))
    score = draw(st.lists(st.one_of(st.floats(0, 1, width=32), st.just(float("nan"))), min_size=n, max_size=n))
    x = draw(st.lists(st.integers(-5, 8), min_size=n, max_size=n))
    return pd.DataFrame({"score": np.array(score, np.float32), "x": np.array(x, np.int64)})


@PARITY
@given(df=per_row_frames())
def test_per_row_udf_matches_per_row_assertion(per_row_udf, df):
    paper = PerRowAssertion(_paper_callback, name="confident_near").check_errors(df.copy(), df.copy())
    report = tw.Suite([per_row_udf, tw.rows.check("score > 0.5 and x < 3", name="expr")]).check(df)
    assert events_of(report, "parity.confident_near") == paper_groups(paper)
    assert events_of(report, "expr") == paper_groups(paper)
