"""tw.Monitor's native path for rows.consistent and rows.contiguous (Cython: ``NativeRows`` over
``_monitor_rows_cy.RowsEngine``): any split of any table equals Suite.check on the whole of it,
for every id / attribute / time column type the engine reads, with nulls, unsorted rows,
identities judged mid-stream (small horizon) and batches another assertion rejects."""
from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tripwire as tw
from tripwire._streaming import ByIdentity, NativeRows
from reference import longest_absence

PROPERTY = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

ID_TYPES = ["int64", "int8", "uint64", "string", "large_string", "dict_string", "dict_int"]
ATTR_TYPES = ["int32", "string", "dict_string"]
TIME_TYPES = ["int64", "int32", "timestamp"]


def events_of(report) -> dict[str, list[tuple]]:
    """{assertion: sorted [((row, severity), ...) per event]} (event ids differ per report)."""
    out: dict[str, dict[int, list]] = {}
    v = report.violations
    for a, row, ev, sev in zip(*(v[c].to_pylist() for c in ("assertion", "row", "event", "severity"))):
        out.setdefault(a, {}).setdefault(ev, []).append((row, sev))
    return {a: sorted(tuple(sorted(rows)) for rows in evs.values()) for a, evs in out.items()}


def streamed(monitor, batches) -> dict[str, list[tuple]]:
    got: dict[str, list] = {}
    for r in [monitor.observe(b) for b in batches] + [monitor.flush()]:
        assert r.rejected is None, r.error
        for a, evs in events_of(r).items():
            got.setdefault(a, []).extend(evs)
    return {a: sorted(evs) for a, evs in got.items()}


def _id_array(values: list, how: str) -> pa.Array:
    if how in ("string", "large_string", "dict_string"):
        arr = pa.array([None if v is None else f"id-{v}" for v in values],
                       pa.large_string() if how == "large_string" else pa.string())
    elif how == "uint64":  # beyond int64: read as bits, still distinct
        arr = pa.array([None if v is None else 2**63 + v for v in values], pa.uint64())
    else:
        arr = pa.array(values, pa.int8() if how == "int8" else pa.int64())
    return arr.dictionary_encode() if how.startswith("dict") else arr


def _attr_array(values: list, how: str) -> pa.Array:
    if how == "int32":
        return pa.array(values, pa.int32())
    arr = pa.array([None if v is None else ["car", "bus", "van", ""][v] for v in values], pa.string())
    return arr.dictionary_encode() if how == "dict_string" else arr


def _time_array(values: list, how: str) -> pa.Array:
    if how == "timestamp":
        return pa.array(values, pa.int64()).cast(pa.timestamp("ms"))
    return pa.array(values, pa.int32() if how == "int32" else pa.int64())


def rows_table(rows: list[tuple], id_how: str, attr_how: str, time_how: str) -> pa.Table:
    ids, attrs, times = (list(c) for c in zip(*rows)) if rows else ([], [], [])
    return pa.table({"track": _id_array(ids, id_how), "cls": _attr_array(attrs, attr_how),
                     "frame": _time_array(times, time_how),
                     "score": pa.array(np.linspace(0, 1, len(rows)), pa.float32())})


@st.composite
def rows_and_splits(draw, n_max=60):
    """(id, attr, time) rows: a few identities, times mostly advancing (gaps, repeats, and
    going back), nulls anywhere; cut into batches, rows shuffled inside each batch."""
    n = draw(st.integers(0, n_max))
    n_ids = draw(st.integers(1, 6))
    rows, clock = [], {}
    for _ in range(n):
        k = draw(st.integers(0, n_ids - 1))
        clock[k] = clock.get(k, 0) + draw(st.sampled_from([1, 1, 1, 0, 2, 3, -2]))
        rows.append((None if draw(st.integers(0, 14)) == 0 else k,
                     None if draw(st.integers(0, 12)) == 0 else draw(st.sampled_from([0, 0, 0, 1, 2, 3])),
                     None if draw(st.integers(0, 14)) == 0 else clock[k]))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=7)))
    rng = random.Random(draw(st.integers(0, 2**16)))
    parts = []
    for a, b in zip([0] + cuts, cuts + [n]):
        part = rows[a:b]
        rng.shuffle(part)
        parts.append(part)
    return parts


def suite(window=4, allowed=1, step=1) -> tw.Suite:
    return tw.Suite([tw.rows.consistent(id="track", attr="cls", name="first"),
                     tw.rows.consistent(id="track", attr="cls", flag="minority", name="minority"),
                     tw.rows.contiguous(id="track", time="frame", window=window, allowed_transitions=allowed,
                                        step=step, name="contiguous")])


def _native(mon) -> list[str]:
    return [a.name for a, ad in mon._adapters if isinstance(ad, NativeRows)]


@pytest.mark.slow
@PROPERTY
@given(parts=rows_and_splits(), id_how=st.sampled_from(ID_TYPES), attr_how=st.sampled_from(ATTR_TYPES),
       time_how=st.sampled_from(TIME_TYPES), window=st.sampled_from([1, 2, 4, 9]),
       allowed=st.sampled_from([0, 1, 2, 3]), step=st.sampled_from([1, 2]))
def test_any_split_equals_suite_check(parts, id_how, attr_how, time_how, window, allowed, step):
    batches = [rows_table(p, id_how, attr_how, time_how) for p in parts]
    s = suite(window, allowed, step)
    expected = events_of(s.check(pa.concat_tables(batches)))
    mon = tw.Monitor(s, horizon=None, strict=True)
    assert streamed(mon, batches) == expected
    assert _native(mon) == ["first", "minority", "contiguous"]


@pytest.mark.slow
@PROPERTY
@given(parts=rows_and_splits(), attr_how=st.sampled_from(["int32", "int64"]), window=st.sampled_from([2, 4, 9]),
       allowed=st.sampled_from([0, 1, 2]), horizon=st.sampled_from([None, 3, 8]))
def test_one_of_each_on_plain_integer_columns(parts, attr_how, window, allowed, horizon):
    """The engine's one-pass path (one consistent with flag="first" and one contiguous, integer
    attribute and int64 time without nulls) and its general path on batches with nulls, in one
    stream."""
    rows = [r for p in parts for r in p]
    assume(horizon is None or _longest_absence(rows) <= horizon)
    batches = [rows_table(p, "int64", "int32", "int64") for p in parts]
    if attr_how == "int64":
        batches = [b.set_column(1, "cls", b.column("cls").cast(pa.int64())) for b in batches]
    s = tw.Suite([tw.rows.consistent(id="track", attr="cls"),
                  tw.rows.contiguous(id="track", time="frame", window=window, allowed_transitions=allowed)])
    mon = tw.Monitor(s, horizon=horizon, strict=True)
    assert streamed(mon, batches) == events_of(s.check(pa.concat_tables(batches)))
    assert _native(mon) == ["rows.consistent", "rows.contiguous"]


def _longest_absence(rows: list[tuple]) -> int:
    return longest_absence(k for k, _, _ in rows)


@pytest.mark.slow
@PROPERTY
@given(parts=rows_and_splits(n_max=80), id_how=st.sampled_from(["int64", "string"]), horizon=st.integers(1, 20))
def test_small_horizon_judges_mid_stream_and_stays_exact(parts, id_how, horizon):
    """Identities that never come back after ``horizon`` rows are judged as soon as they are
    quiet (slots reused by later ones) and the results stay exact."""
    rows = [r for p in parts for r in p]
    assume(_longest_absence(rows) <= horizon)
    batches = [rows_table(p, id_how, "int32", "int64") for p in parts]
    s = suite()
    mon = tw.Monitor(s, horizon=horizon, strict=True)
    assert streamed(mon, batches) == events_of(s.check(pa.concat_tables(batches)))


def _relay(n_ids: int, per: int, ids_of=lambda k: k) -> list[tuple]:
    """Identities one after another, each for ``per`` rows (a few gaps, a class flip)."""
    rows = []
    for k in range(n_ids):
        for j in range(per):
            if j % 7 == 3:
                continue  # a gap
            rows.append((ids_of(k), 1 if (k % 3 == 0 and j == per - 1) else 0, 100 * k + j))
    return rows


@pytest.mark.parametrize("ids_of", [lambda k: k, lambda k: k * 10**12, lambda k: -k], ids=["dense", "wide", "negative"])
def test_identities_judged_once_quiet_reuse_state(ids_of):
    """Short-lived identities: judged when quiet for horizon rows, so what is held stays small,
    on the direct path (dense ids) and the hashed one (ids over a wide range)."""
    rows = _relay(400, 12, ids_of)
    t = rows_table(rows, "int64", "int32", "int64")
    s = suite()
    mon = tw.Monitor(s, horizon=30, strict=True)
    got, held = {}, []
    for o in range(0, t.num_rows, 97):
        for a, evs in events_of(mon.observe(t.slice(o, 97))).items():
            got.setdefault(a, []).extend(evs)
        held.append(mon.retained_rows())
    for a, evs in events_of(mon.flush()).items():
        got.setdefault(a, []).extend(evs)
    assert {a: sorted(v) for a, v in got.items()} == events_of(s.check(t))
    assert max(held) < 3 * (97 + 30 + 12)  # per assertion: the batch, the horizon, one identity
    assert mon.retained_rows() == 0


@pytest.mark.slow
@PROPERTY
@given(parts=rows_and_splits(), poison=st.lists(st.booleans(), min_size=8, max_size=8))
def test_batches_another_assertion_rejects_leave_no_trace(parts, poison):
    """rows.check (after the native members in the suite) refuses batches without a score:
    the engine must undo what it did with them."""
    s = tw.Suite(list(suite()) + [tw.rows.check("score > 0.95", name="high")])
    batches = [rows_table(p, "string", "int32", "int64") for p in parts]
    sent = [b.drop_columns(["score"]) if bad and b.num_rows else b for b, bad in zip(batches, poison)]
    mon = tw.Monitor(s, horizon=5)
    got: dict[str, list] = {}
    for b in sent:
        r = mon.observe(b)
        assert (r.rejected is not None) == ("score" not in b.column_names)
        for a, evs in events_of(r).items():
            got.setdefault(a, []).extend(evs)
    for a, evs in events_of(mon.flush()).items():
        got.setdefault(a, []).extend(evs)
    kept = [b for b in sent if "score" in b.column_names]
    whole = pa.concat_tables(kept) if kept else rows_table([], "string", "int32", "int64")
    t = [(k, a, f) for p, b in zip(parts, sent) if "score" in b.column_names for k, a, f in p]
    assume(_longest_absence(t) <= 5)
    assert {a: sorted(v) for a, v in got.items()} == events_of(s.check(whole))


def test_chunked_sliced_columns_and_empty_batches():
    rows = _relay(30, 9) + [(None, 0, 5), (3, None, None), (4, 2, None)]
    t = rows_table(rows, "string", "dict_string", "int64")
    parts = [t.slice(0, 0), pa.concat_tables([t.slice(0, 50), t.slice(50, 40)]), t.slice(90, 0), t.slice(90)]
    s = suite()
    mon = tw.Monitor(s, strict=True)
    assert streamed(mon, parts) == events_of(s.check(t))
    assert _native(mon) == ["first", "minority", "contiguous"]


def test_all_null_ids_and_timestamps_with_timedelta_window():
    t = pa.table({"track": pa.array([None, None, 1, 1, 1, 1], pa.int64()),
                  "cls": pa.array([0, 1, 0, 0, 1, 0], pa.int32()),
                  "frame": pa.array([0, 1, 0, 5, 6, 20], pa.int64()).cast(pa.timestamp("s"))})
    s = tw.Suite([tw.rows.consistent(id="track", attr="cls"),
                  tw.rows.contiguous(id="track", time="frame", window=dt.timedelta(seconds=10))])
    mon = tw.Monitor(s, strict=True)
    assert streamed(mon, [t.slice(0, 2), t.slice(2)]) == events_of(s.check(t))
    assert events_of(s.check(t))  # both flag something


def test_context_keys_match_the_batch_check():
    t = rows_table(_relay(6, 10), "string", "int32", "int64")
    s = suite()
    mon = tw.Monitor(s, strict=True)
    got = pa.concat_tables([mon.observe(t.slice(0, 25)).violations, mon.observe(t.slice(25)).violations,
                            mon.flush().violations])
    want = s.check(t).violations
    order = lambda v: sorted(zip(*(v.column(c).to_pylist() for c in ("assertion", "row", "key"))))  # noqa: E731
    assert order(got) == order(want) and len(want)


def test_other_backends_and_unread_types_keep_the_adapter():
    t = rows_table(_relay(3, 5), "int64", "int32", "int64")
    numba = tw.Monitor(suite(), backend="numba")
    numba.observe(t)
    assert _native(numba) == [] and all(isinstance(ad, ByIdentity) for _, ad in numba._adapters)
    floats = tw.Monitor(suite())
    floats.observe(t.set_column(0, "track", t.column("track").cast(pa.float64())))
    assert _native(floats) == []


def test_a_batch_whose_id_type_changes_is_rejected_and_state_kept():
    t = rows_table(_relay(4, 8), "int64", "int32", "int64")
    s = suite()
    mon = tw.Monitor(s)
    mon.observe(t.slice(0, 10))
    r = mon.observe(rows_table([(1, 0, 3)], "string", "int32", "int64"))
    assert r.rejected == "input" and "unlike earlier batches" in r.error
    r = mon.observe(t.slice(10).drop_columns(["cls"]))
    assert r.rejected == "column"
    got = streamed(mon, [t.slice(10)])
    first = events_of(s.check(t.slice(0, 10)))  # nothing judged before the end with the default horizon
    assert not first or got
    assert got == events_of(s.check(t))
