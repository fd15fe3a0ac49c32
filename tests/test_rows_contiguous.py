"""rows.contiguous: every backend against the plain-loop reference, plus hand-written cases."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tripwire as tw
from reference import (ID_KINDS, LAYOUTS, assert_same_report, check_like_reference, id_array,
                       make_table)

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TIME_KINDS = ("int64", "int32", "timestamp_ms", "date32", "big")


def time_array(values, kind):
    if kind == "int64":
        return pa.array(values, pa.int64())
    if kind == "int32":
        return pa.array(values, pa.int32())
    if kind == "timestamp_ms":  # ticks of 1 ms from an epoch-ish base
        return pa.array([None if v is None else 1_700_000_000_000 + v for v in values], pa.timestamp("ms"))
    if kind == "date32":
        return pa.array(values, pa.int32()).cast(pa.date32())
    if kind == "big":  # near the top of int64
        return pa.array([None if v is None else 2**63 - 100 + v for v in values], pa.int64())
    raise ValueError(kind)


def table_of(ids, times, id_kind="int64", time_kind="int64", layout="plain", splits=(1, 2)):
    return make_table({"id": (ids, lambda v: id_array(v, id_kind), 0),
                       "t": (times, lambda v: time_array(v, time_kind), 0)}, layout, splits)


def suite(**kw):
    kw.setdefault("window", 3)
    return tw.Suite([tw.rows.contiguous(id="id", time="t", **kw)])


def violations(report):
    v = report.violations
    return list(zip(v.column("row").to_pylist(), v.column("event").to_pylist(),
                    v.column("severity").to_pylist()))


def events(report):
    """Violations as a set of (rows, severity) per event: independent of event numbering."""
    v = report.violations
    out = {}
    for row, ev, sev in zip(v.column("row").to_pylist(), v.column("event").to_pylist(),
                            v.column("severity").to_pylist()):
        rows, _ = out.get(ev, ((), sev))
        out[ev] = (rows + (row,), sev)
    return sorted(out.values())


# ----------------------------------------------------------------------------------------------
# property: fast backends == reference; layout, id type, arrival order do not change the result
# ----------------------------------------------------------------------------------------------
def _column(draw, n, lo, hi, nulls):
    element = st.integers(lo, hi)
    if nulls:
        element = st.one_of(st.none(), element, element, element)
    return draw(st.lists(element, min_size=n, max_size=n))


@st.composite
def cases(draw):
    n = draw(st.integers(0, 30))
    ids = _column(draw, n, 0, draw(st.integers(0, 4)), draw(st.booleans()))
    times = _column(draw, n, 0, draw(st.integers(0, 15)), draw(st.booleans()))
    return dict(ids=ids, times=times, id_kind=draw(st.sampled_from(ID_KINDS)),
                time_kind=draw(st.sampled_from(TIME_KINDS)), layout=draw(st.sampled_from(LAYOUTS)),
                splits=(draw(st.integers(0, 30)), draw(st.integers(0, 30))),
                params=dict(window=draw(st.integers(1, 8)), allowed_transitions=draw(st.integers(0, 4)),
                            step=draw(st.integers(1, 2))))


@pytest.mark.slow  # ~10 s on numba: one compile per dtype / read-only combination
@PROPERTY
@given(case=cases())
def test_matches_reference(fast_backend, case):
    s = suite(**case["params"])
    table = table_of(case["ids"], case["times"], case["id_kind"], case["time_kind"], case["layout"],
                     case["splits"])
    got = check_like_reference(s, table, fast_backend)
    plain = s.check(table_of(case["ids"], case["times"]), backend="reference")
    assert_same_report(got, plain, keys=case["id_kind"] == "int64", context="layout/id/time kind")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_unsorted_equals_sorted_mapped_back(backend, case):
    """tripwire orders times per id: checking a table sorted by (id, time) and mapping its rows
    back through the permutation gives the same violations as the table in arrival order."""
    s = suite(**case["params"])
    table = table_of(case["ids"], case["times"])
    perm = pc.sort_indices(table, [("id", "ascending"), ("t", "ascending")]).to_numpy()  # stable
    on_sorted = s.check(table.take(perm), backend=backend).violations
    mapped = {}
    for row, ev, sev in zip(on_sorted.column("row").to_pylist(), on_sorted.column("event").to_pylist(),
                            on_sorted.column("severity").to_pylist()):
        rows, _ = mapped.get(ev, ((), sev))
        mapped[ev] = (tuple(sorted(rows + (int(perm[row]),))), sev)
    assert sorted(mapped.values()) == events(s.check(table, backend=backend))


@st.composite
def arrival_ordered(draw):
    """Rows as a tracker emits them: times never go back for an id (repeats and gaps allowed),
    with an occasional step back so that some tables leave the fast path mid-way."""
    n = draw(st.integers(0, 60))
    n_ids = draw(st.integers(1, 3))
    clock = [0] * n_ids
    ids, times = [], []
    for _ in range(n):
        k = draw(st.integers(0, n_ids - 1))
        clock[k] += draw(st.sampled_from([0, 0, 1, 1, 2, 3]))
        if draw(st.integers(0, 40)) == 0:
            clock[k] -= 2
        ids.append(k)
        times.append(clock[k])
    return ids, times


def _cut_into_parts_matches_reference(monkeypatch, ids, times, parts, **params) -> None:
    """The Cython backend, its fast path cut into ``parts`` row ranges, gives the reference's report."""
    from tripwire import _config

    monkeypatch.setattr(_config, "CONTIGUOUS_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "CONTIGUOUS_PARTS", parts)
    s = suite(**params)
    table = table_of(ids, times)
    got = s.check(table, backend="cython")
    assert_same_report(got, s.check(table, backend="reference"), keys=True, context=f"{parts} parts")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=arrival_ordered(), parts=st.integers(1, 6), window=st.integers(1, 3),
       allowed=st.integers(0, 1), step=st.integers(1, 2), nulls=st.booleans())
def test_fast_path_cut_into_parts_matches_reference(monkeypatch, case, parts, window, allowed, step, nulls):
    """The fast path (at most one transition, short window) checks row ranges in parallel and
    joins them: gaps, repeated times and a step back across every cut give the reference's
    violations for any number of ranges."""
    ids, times = case
    if nulls:
        ids = [None if i % 7 == 3 else k for i, k in enumerate(ids)]
    _cut_into_parts_matches_reference(monkeypatch, ids, times, parts, window=window, allowed_transitions=allowed,
                                      step=step)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=arrival_ordered(), parts=st.integers(1, 4), base=st.sampled_from([0, -2**62, 2**62, 2**31 - 3, -2**31]),
       jump=st.sampled_from([0, 2**31 - 1, 2**31, 2**32, 2**32 + 1, 2**32 + 2]), cut=st.integers(0, 60),
       window=st.integers(1, 3), allowed=st.integers(0, 1), step=st.integers(1, 2), nulls=st.booleans())
def test_fast_path_times_far_apart_match_reference(monkeypatch, case, parts, base, jump, cut, window, allowed,
                                                   step, nulls):
    """Times near the int64 limits, and jumps whose low 32 bits would read as a repeat (2^32),
    a step (2^32 + 1) or a short gap, give the reference's violations."""
    ids, times = case
    times = [base + t + (jump if i >= cut else 0) for i, t in enumerate(times)]
    if nulls:
        ids = [None if i % 5 == 2 else k for i, k in enumerate(ids)]
    _cut_into_parts_matches_reference(monkeypatch, ids, times, parts, window=window, allowed_transitions=allowed,
                                      step=step)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=arrival_ordered(), parts=st.integers(1, 4), spread=st.sampled_from([1, 3, 4099, 2**40, 2**62]),
       shift=st.sampled_from([0, -2**63, 2**63 - 64, -5000]), max_slots=st.sampled_from([1, 7, 5000, 2**31 - 1]),
       nulls=st.booleans(), id_type=st.sampled_from([np.int64, np.int32]))
def test_direct_ids_match_encoded_codes_in_canonical_order(monkeypatch, case, parts, spread, shift, max_slots,
                                                           nulls, id_type):
    """``contiguous_direct`` finds the ids' range while scanning, growing its slots up and down
    (ids spread apart, near the int64 limits, in int32): it flags what the encoded path flags,
    already in canonical order, or gives up (None) when the ids need more than ``max_slots``."""
    from tripwire import _arrow, _config
    from tripwire._assertion import canonical_events
    from tripwire._kernels import _rows_cy

    monkeypatch.setattr(_config, "CONTIGUOUS_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "CONTIGUOUS_PARTS", parts)
    ids, times = case
    if id_type is np.int32:
        spread, shift = min(spread, 4099), max(min(shift, 2**31 - 5 * 4099), -2**31)
    big = [shift + k * spread if shift >= 0 else shift + (len(ids) - k) * spread for k in ids]
    info = np.iinfo(id_type)
    assume(all(info.min <= v <= info.max for v in big))
    values = np.array(big, dtype=id_type)
    valid = np.ones(len(ids), np.uint8)
    if nulls:
        valid[2::5] = 0
        values[2::5] = 0  # what a null slot may hold: anything
    tv = np.asarray(times, np.int64)
    got = _rows_cy.contiguous_direct(values, valid, tv, _arrow.NO_NULLS, 3, 1, 1, max_slots)
    keys = _arrow.encode_array(pa.chunked_array([pa.array(values, mask=valid == 0)]), name="id", role="id")
    want = canonical_events(*_rows_cy.contiguous(keys.codes, keys.offset, keys.n, _arrow.kernel_validity(keys.valid),
                                                 tv, _arrow.NO_NULLS, 3, 1, 1))
    present = values[valid == 1].astype(np.int64)
    needs = 0 if len(present) == 0 else int(present.max()) - int(present.min()) + 1
    if got is None:  # ids too spread, or some id's times go back (the fast path's limit)
        last = {}
        back = False
        for k, t, ok in zip(values.tolist(), times, valid.tolist()):
            back |= bool(ok) and t < last.get(k, t)
            if ok:
                last[k] = t
        assert needs > max_slots or back
        return
    assert needs <= max_slots  # the ids of all ranges together fit the slots (else None)
    for a, b in zip(got[:3], want):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got[3], got[0][0::2])  # anchors: each event's start row


def test_direct_ids_whose_ranges_are_far_apart_fall_back(monkeypatch):
    """Each row range's ids fit its slots but their union does not (ids 0 and 2^62 in two
    ranges): ``contiguous_direct`` says None rather than allocating the span between them."""
    from tripwire import _arrow, _config
    from tripwire._kernels import _rows_cy

    monkeypatch.setattr(_config, "CONTIGUOUS_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "CONTIGUOUS_PARTS", 2)
    ids = np.array([0, 0, 2**62, 2**62], np.int64)
    tv = np.array([0, 2, 0, 2], np.int64)
    assert _rows_cy.contiguous_direct(ids, _arrow.NO_NULLS, tv, _arrow.NO_NULLS, 3, 1, 1, 10) is None
    got = violations(suite().check(table_of(ids.tolist(), tv.tolist()), backend="cython"))
    assert got == [(0, 0, 1.0), (1, 0, 1.0), (2, 1, 1.0), (3, 1, 1.0)]


def test_direct_ids_that_go_back_in_time_fall_back():
    """An id whose times decrease is beyond the fast path: ``contiguous_direct`` says None and
    the assertion takes the encoded path (which sorts)."""
    from tripwire import _arrow
    from tripwire._kernels import _rows_cy

    ids = np.array([7, 7, 7], np.int64)
    tv = np.array([5, 3, 7], np.int64)
    assert _rows_cy.contiguous_direct(ids, _arrow.NO_NULLS, tv, _arrow.NO_NULLS, 3, 1, 1, 10) is None
    # times 3 (row 1), 5 (row 0), 7 (row 2): a one-frame gap before 5 and before 7
    got = violations(suite().check(table_of([7, 7, 7], [5, 3, 7]), backend="cython"))
    assert got == [(0, 0, 1.0), (2, 0, 1.0), (0, 1, 1.0), (1, 1, 1.0)]


def test_fast_path_times_at_the_int64_limits(monkeypatch):
    """An unseen id's state holds time INT64_MAX: a first presence at INT64_MAX, and a short gap
    ending there, are still seen as such, in one range and cut into two."""
    from tripwire import _config

    monkeypatch.setattr(_config, "CONTIGUOUS_PARALLEL_MIN_ROWS", 0)
    top, bottom = 2**63 - 1, -2**63
    for parts in (1, 2):
        monkeypatch.setattr(_config, "CONTIGUOUS_PARTS", parts)
        t = table_of([0, 1, 0, 1], [top - 2, bottom, top, bottom + 2])
        got = violations(suite().check(t, backend="cython"))
        assert got == [(0, 0, 1.0), (2, 0, 1.0), (1, 1, 1.0), (3, 1, 1.0)], parts
        t = table_of([3, 3], [top, top])
        assert violations(suite().check(t, backend="cython")) == []


def test_fast_path_part_without_a_present_row_sees_no_id(monkeypatch):
    """Cut into two ranges, the first holding only null ids: no id was seen there, so the
    second range's gap pairs its own rows (not row 0)."""
    from tripwire import _config

    monkeypatch.setattr(_config, "CONTIGUOUS_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "CONTIGUOUS_PARTS", 2)
    t = table_of([None, None, 0, 0], [5, 5, 0, 2])
    assert violations(suite().check(t, backend="cython")) == [(2, 0, 1.0), (3, 0, 1.0)]


def test_fast_path_jump_of_2_to_the_32_is_not_a_repeat(monkeypatch):
    """Times 0, 1 and 2^32 + 1 of one id: in 32 bits the last reads as time 1 again (a repeat)
    and the gap before it as a step; the full-width scan sees a long gap (no violation), and a
    short gap just after it."""
    from tripwire import _config

    monkeypatch.setattr(_config, "CONTIGUOUS_PARTS", 1)
    far = 2**32 + 1
    t = table_of([0, 0, 0, 0], [0, 1, far, far + 2])
    assert violations(suite().check(t, backend="cython")) == [(2, 0, 1.0), (3, 0, 1.0)]


def test_fast_path_repeat_across_a_cut_keeps_the_first_row(monkeypatch):
    """id 1 at time 5 in rows 1 and 2, cut between them: the gap to time 7 pairs row 1 (the
    first row of that presence), not row 2."""
    from tripwire import _config

    monkeypatch.setattr(_config, "CONTIGUOUS_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "CONTIGUOUS_PARTS", 2)
    t = table_of([0, 1, 1, 0], [0, 5, 5, 1])
    assert violations(suite().check(t, backend="cython")) == []
    t = table_of([0, 1, 1, 1], [0, 5, 5, 7])
    assert violations(suite().check(t, backend="cython")) == [(1, 0, 1.0), (3, 0, 1.0)]


# ----------------------------------------------------------------------------------------------
# semantics by hand
# ----------------------------------------------------------------------------------------------
def test_reappearance_within_window(backend):
    # id 1 at 0, 1, 3 (gap at 2): start 1 sees 1 -> 3 within window 3: two transitions > 1
    t = table_of([1, 1, 1, 2, 2, 2], [0, 1, 3, 0, 1, 2])
    r = suite().check(t, backend=backend)
    assert violations(r) == [(1, 0, 1.0), (2, 0, 1.0)]
    assert r.violations.column("key").to_pylist() == ["1", "1"]
    assert r.corrections().num_rows == 0
    # a larger allowance or a smaller window: none
    assert len(suite(allowed_transitions=2).check(t, backend=backend)) == 0
    assert len(suite(window=2).check(t, backend=backend)) == 0


def test_severity_counts_transitions_over_limit(backend):
    t = table_of([1] * 4, [0, 2, 4, 6])
    r = suite(window=7, allowed_transitions=0).check(t, backend=backend)
    # every start sees a gap at once: 2 transitions > 0 -> severity 2, pairs (0,1), (1,2), (2,3)
    assert violations(r) == [(0, 0, 2.0), (1, 0, 2.0), (1, 1, 2.0), (2, 1, 2.0), (2, 2, 2.0), (3, 2, 2.0)]
    r = suite(window=7, allowed_transitions=3).check(t, backend=backend)
    # 0 -> 2 -> 4 and 2 -> 4 -> 6: 4 transitions, 1 over; from 4 only 2
    assert violations(r) == [(0, 0, 1.0), (2, 0, 1.0), (1, 1, 1.0), (3, 1, 1.0)]


def test_step(backend):
    t = table_of([1] * 4, [0, 2, 4, 7])
    r = suite(window=10, step=2).check(t, backend=backend)
    assert violations(r) == [(0, 0, 1.0), (3, 0, 1.0), (1, 1, 1.0), (3, 1, 1.0), (2, 2, 1.0), (3, 2, 1.0)]
    assert len(suite(window=10, step=2, allowed_transitions=2).check(t, backend=backend)) == 0


def test_duplicate_times_are_one_presence(backend):
    """Deliberate difference from the paper library: a repeated (id, time) is not a transition."""
    t = table_of([1] * 6, [0, 0, 1, 1, 2, 2])
    assert len(suite(allowed_transitions=0).check(t, backend=backend)) == 0
    # the first row (in arrival order) of a repeated time stands for it
    t = table_of([1, 1, 1, 1], [2, 0, 2, 0])
    r = suite(window=5).check(t, backend=backend)
    assert violations(r) == [(0, 0, 1.0), (1, 0, 1.0)]  # times 0 (row 1) and 2 (row 0)


def test_unsorted_input(backend):
    t = table_of([1, 2, 1, 2, 1], [3, 5, 0, 4, 1])
    r = suite().check(t, backend=backend)
    assert violations(r) == [(0, 0, 1.0), (4, 0, 1.0)]  # id 1 sorted: 0, 1, 3 -> pair (1, 3)


def test_nulls_are_not_checked(backend):
    t = table_of([1, 1, None, 1, 1], [0, None, 2, 2, 4])
    r = suite(window=5).check(t, backend=backend)
    assert violations(r) == [(0, 0, 1.0), (3, 0, 1.0), (3, 1, 1.0), (4, 1, 1.0)]


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_row(backend, n):
    assert len(suite().check(table_of([1] * n, [0] * n), backend=backend)) == 0


def test_all_null_columns(backend):
    for ids, ts in [(pa.nulls(5, pa.int64()), pa.array([0, 2, 4, 6, 8])),
                    (pa.nulls(5), pa.array([0, 2, 4, 6, 8])),
                    (pa.array([1] * 5), pa.nulls(5, pa.int64())),
                    (pa.array(["a"] * 5), pa.nulls(5, pa.timestamp("s")))]:
        assert len(suite().check(pa.table({"id": ids, "t": ts}), backend=backend)) == 0


@pytest.mark.parametrize("layout", ["sliced", "chunked"])
def test_sliced_and_chunked(backend, layout):
    ids, times = [1, 2, 1, 2, 1, 3, 3, None, 3], [0, 0, 2, 3, 4, 5, 9, 1, 7]
    want = suite(window=5).check(table_of(ids, times, "dict"), backend="reference")
    got = suite(window=5).check(table_of(ids, times, "dict", "int64", layout, splits=(2, 5)), backend=backend)
    assert len(want) > 0
    assert_same_report(got, want)


def test_id_types_give_the_same_violations(backend):
    ids, times = [3, 0, 3, 0, 3, 1], [0, 0, 2, 4, 4, 1]
    reports = {k: suite(window=5).check(table_of(ids, times, k), backend=backend) for k in ID_KINDS}
    assert len(reports["int64"]) == 6
    for kind, r in reports.items():
        assert_same_report(r, reports["int64"], keys=False, context=kind)


def test_timestamp_with_timedelta_window(backend):
    base = 1_700_000_000_000
    t = pa.table({"id": [1, 1, 1], "t": pa.array([base, base + 1000, base + 3000], pa.timestamp("ms"))})
    s = tw.Suite([tw.rows.contiguous("id", "t", window=dt.timedelta(seconds=5), step=dt.timedelta(seconds=1))])
    want = [(0, 0, 1.0), (2, 0, 1.0), (1, 1, 1.0), (2, 1, 1.0)]
    assert violations(s.check(t, backend=backend)) == want
    # the same in integer ticks (ms)
    s2 = tw.Suite([tw.rows.contiguous("id", "t", window=5000, step=1000)])
    assert violations(s2.check(t, backend=backend)) == want


def test_date_column(backend):
    t = pa.table({"id": [1, 1, 1], "t": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 4)])})
    assert violations(suite().check(t, backend=backend)) == [(1, 0, 1.0), (2, 0, 1.0)]


def test_times_spanning_more_than_int64(backend):
    """Regression: t_q - t_p overflowed int64 and reported a far-away pair as within the window."""
    big = 2**62 + 2**61
    t = table_of([1, 1, 1], [-big, big, big + 2])
    assert len(suite().check(t, backend=backend)) == 2  # only big -> big + 2 (a gap of one)
    top = 2**63 - 1
    t = table_of([1] * 4, [top - 3, top - 1, -top - 1, top])
    assert violations(suite().check(t, backend=backend)) == [(0, 0, 1.0), (1, 0, 1.0)]


def test_large_table_against_reference(fast_backend):
    rng = np.random.default_rng(3)
    n = 4000
    ids = rng.integers(0, 300, n).tolist()
    times = rng.integers(0, 60, n).tolist()
    check_like_reference(suite(window=6), table_of(ids, times, "string"), fast_backend)


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
def test_float_time_column(backend):
    t = pa.table({"id": [1, 1], "t": [0.5, 1.5]})
    with pytest.raises(tw.ColumnError) as e:
        suite().check(t, backend=backend)
    msg = str(e.value)
    assert "'t'" in msg and "integer, timestamp or duration" in msg and "found: double" in msg
    assert "fix: cast it" in msg


def test_missing_time_column(backend):
    with pytest.raises(tw.ColumnError) as e:
        suite().check(pa.table({"id": [1], "frame": [0]}), backend=backend)
    assert "'t'" in str(e.value) and "found: columns id, frame" in str(e.value) and "fix" in str(e.value)


def test_list_id_column(backend):
    t = pa.table({"id": pa.array([[1], [2]]), "t": [0, 1]})
    with pytest.raises(tw.ColumnError, match="'id'.*list<item: int64>"):
        suite().check(t, backend=backend)


def test_timedelta_window_on_integer_time(backend):
    with pytest.raises(tw.InputError, match="timedelta.*fix: pass window as an int"):
        suite(window=dt.timedelta(seconds=3)).check(table_of([1], [0]), backend=backend)


def test_timedelta_shorter_than_a_tick(backend):
    t = pa.table({"id": [1, 1], "t": pa.array([0, 1], pa.timestamp("s"))})
    with pytest.raises(tw.InputError, match="window.*tick"):
        suite(window=dt.timedelta(milliseconds=500)).check(t, backend=backend)


@pytest.mark.parametrize("kwargs", [dict(window=0), dict(window=-2), dict(window=1.5), dict(window=True),
                                    dict(window=dt.timedelta(0)), dict(window=dt.timedelta(seconds=-1)),
                                    dict(step=0), dict(step=dt.timedelta(0)), dict(allowed_transitions=-1),
                                    dict(allowed_transitions=1.0), dict(window="3")])
def test_bad_parameters(kwargs):
    kwargs.setdefault("window", 3)
    with pytest.raises(tw.InputError) as e:
        tw.rows.contiguous("id", "t", **kwargs)
    assert "expected" in str(e.value) and "fix" in str(e.value)
