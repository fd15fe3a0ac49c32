"""tw.Monitor: observe + flush over any split of a stream equals Suite.check on the whole of it,
for every assertion kind in the registry; bad batches are rejected and counted, never raised;
state stays bounded; concurrent observers count exactly."""
from __future__ import annotations

import random
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tripwire as tw
from tripwire import _registry
from reference import longest_absence

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAN = float("nan")


@tw.assertion(name="test.monitor_wide")
def _wide(x1, x2):
    return x2 - x1 if x2 - x1 > 11 else 0.0


@tw.assertion(name="test.monitor_jumpy", per="group", by="track")
def _jumpy(x1):
    return len(x1) > 2 and np.abs(np.diff(x1)).max() > 30


# One or more configured instances per kind. A kind registered without an example here fails
# test_every_registered_kind_has_a_streaming_example: new assertions join the property test.
EXAMPLES = {
    "rows.check": lambda: [tw.rows.check("score > 0.8", name="check")],
    "rows.consistent": lambda: [tw.rows.consistent(id="track", attr="cls", name="consistent"),
                                tw.rows.consistent(id="track", attr="cls", flag="minority", name="consistent_min")],
    "rows.contiguous": lambda: [tw.rows.contiguous(id="track", time="frame", window=4, name="contiguous")],
    "boxes.multibox": lambda: [tw.boxes.multibox(iou=0.3, min_boxes=2, name="multibox")],
    "boxes.flicker": lambda: [tw.boxes.flicker(max_gap=2, identity="track", name="flicker_track"),
                              tw.boxes.flicker(iou=0.3, max_gap=2, identity="iou", name="flicker_iou")],
    "boxes.appear": lambda: [tw.boxes.appear(min_frames=3, max_gap=1, identity="track", name="appear_track"),
                             tw.boxes.appear(min_frames=3, iou=0.3, max_gap=1, identity="iou", name="appear_iou")],
    "boxes.class_consistency": lambda: [tw.boxes.class_consistency(name="class_consistency")],
    "boxes.valid": lambda: [tw.boxes.valid(width=60, height=60, name="valid")],
    "points.size_prior": lambda: [tw.points.size_prior(name="size_prior")],
    "points.multibox": lambda: [tw.points.multibox(iou=0.2, min_boxes=2, name="multibox3d")],
    "points.empty_box": lambda: [tw.points.empty_box(min_points=3, counts="n_points", name="empty_box")],
    "ecg.rhythm_flip": lambda: [tw.ecg.rhythm_flip(within_s=20, name="rhythm_flip")],
    "ecg.signal_quality": lambda: [tw.ecg.signal_quality(min_bad=0.0, name="signal_quality")],
    "ecg.rate_consistency": lambda: [tw.ecg.rate_consistency(min_beats=3, name="rate_consistency")],
    "test.monitor_wide": lambda: [_wide],
    "test.monitor_jumpy": lambda: [_jumpy],
}


# Kinds that read several tables at once: a Monitor (one table per batch) refuses them.
MULTI_TABLE = {"points.agree"}


def _family(kind: str) -> str:
    return {"points": "points", "ecg": "ecg"}.get(kind.split(".", 1)[0], "boxes")


def all_examples(family: str = "boxes") -> tw.Suite:
    """Every example reading a ``boxes`` table (and the generic ones), or every ``points`` or
    ``ecg`` one."""
    return tw.Suite([a for kind, make in EXAMPLES.items() if _family(kind) == family for a in make()])


def test_every_registered_kind_has_a_streaming_example():
    builtin = {k for k in tw.kinds() if k.split(".", 1)[0] in _registry.RESERVED}
    missing = sorted(builtin - set(EXAMPLES) - MULTI_TABLE)
    assert not missing, f"add a streaming example to EXAMPLES for: {missing}"


@pytest.mark.parametrize("assertion", [tw.points.agree(), tw.points.empty_box()], ids=["agree", "empty_box"])
def test_multi_table_assertions_are_refused_with_a_fix(assertion):
    with pytest.raises(tw.InputError, match="reads several tables.*Suite.check"):
        tw.Monitor([assertion])


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def events_of(report) -> dict[str, list[tuple]]:
    """{assertion: sorted [((row, severity), ...) per event]}: events compared as row groups
    (a monitor numbers events per report, Suite.check over the whole table)."""
    out: dict[str, dict[int, list]] = {}
    v = report.violations
    for a, row, ev, sev in zip(*(v[c].to_pylist() for c in ("assertion", "row", "event", "severity"))):
        out.setdefault(a, {}).setdefault(ev, []).append((row, sev))
    return {a: sorted(tuple(sorted(rows)) for rows in evs.values()) for a, evs in out.items()}


def streamed(monitor, batches, flush=True) -> dict[str, list[tuple]]:
    got: dict[str, list] = {}
    reports = [monitor.observe(b) for b in batches] + ([monitor.flush()] if flush else [])
    for r in reports:
        assert r.rejected is None, r.error
        for a, evs in events_of(r).items():
            got.setdefault(a, []).extend(evs)
    return {a: sorted(evs) for a, evs in got.items()}


def boxes_table(rows: list[dict]) -> pa.Table:
    cols = {
        "stream": pa.array([r["stream"] for r in rows], pa.string()),
        "frame": pa.array([r["frame"] for r in rows], pa.int64()),
        "track": pa.array([r["track"] for r in rows], pa.int64()),
        "cls": pa.array([r["cls"] for r in rows], pa.string()),
        "score": pa.array([r["score"] for r in rows], pa.float32()),
    }
    for j, name in enumerate(("x1", "y1", "x2", "y2")):
        cols[name] = pa.array([r["box"][j] for r in rows], pa.float32())
    return pa.table(cols)


@st.composite
def streams_and_splits(draw):
    """Rows of up to three interleaved streams, each stream's frames non-decreasing in row
    order; cut into batches, rows shuffled inside each batch (any order within a batch)."""
    n = draw(st.integers(0, 40))
    rows, frame = [], {}
    for _ in range(n):
        s = draw(st.sampled_from(["a", "a", "b", "c", None]))
        frame[s] = frame.get(s, 0) + draw(st.sampled_from([0, 0, 1, 1, 2, 4]))
        x = draw(st.sampled_from([0.0, 0.0, 2.0, 5.0, 40.0]))
        w = draw(st.sampled_from([10.0, 10.0, 12.0, 0.0]))
        box = [x, 0.0, x + w, 10.0]
        if draw(st.integers(0, 12)) == 0:
            box[draw(st.integers(0, 3))] = draw(st.sampled_from([NAN, None]))
        rows.append(dict(
            stream=s, frame=frame[s] if draw(st.integers(0, 15)) else None,
            track=draw(st.sampled_from([0, 1, 1, 2, 3, None])),
            cls=draw(st.sampled_from(["car", "car", "bus", None])),
            score=draw(st.sampled_from([0.2, 0.5, 0.9, 1.0, None, NAN])), box=tuple(box)))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    seed = draw(st.integers(0, 2**16))
    batches, rng = [], random.Random(seed)
    for a, b in zip([0] + cuts, cuts + [n]):
        part = rows[a:b]
        rng.shuffle(part)
        batches.append(part)
    return [boxes_table(b) for b in batches]


def whole(batches: list[pa.Table], empty=None) -> pa.Table:
    return pa.concat_tables(batches) if batches else (empty or boxes_table)([])


def boxes3d_table(rows: list[dict]) -> pa.Table:
    cols = {"stream": pa.array([r["stream"] for r in rows], pa.string()),
            "frame": pa.array([r["frame"] for r in rows], pa.int64()),
            "cls": pa.array([r["cls"] for r in rows], pa.string()),
            "score": pa.array([r["score"] for r in rows], pa.float32()),
            "n_points": pa.array([r["n_points"] for r in rows], pa.int64())}
    for j, name in enumerate(("cx", "cy", "cz", "l", "w", "h", "yaw")):
        cols[name] = pa.array([r["box"][j] for r in rows], pa.float32())
    return pa.table(cols)


@st.composite
def boxes3d_streams(draw):
    """3D boxes of interleaved streams, frames in order per stream, shuffled inside batches."""
    n = draw(st.integers(0, 30))
    rows, frame = [], {}
    for _ in range(n):
        s = draw(st.sampled_from(["a", "a", "b", None]))
        frame[s] = frame.get(s, 0) + draw(st.sampled_from([0, 0, 1, 3]))
        box = [draw(st.sampled_from([0.0, 0.0, 1.0, 6.0])), draw(st.sampled_from([0.0, 0.5])), 0.0,
               draw(st.sampled_from([4.2, 4.2, 0.3, 9.0])), draw(st.sampled_from([1.8, 1.8, 0.0])),
               draw(st.sampled_from([1.5, 1.5, 4.0])), draw(st.sampled_from([0.0, 0.0, 0.4, 3.1]))]
        if draw(st.integers(0, 12)) == 0:
            box[draw(st.integers(0, 6))] = draw(st.sampled_from([NAN, None]))
        rows.append(dict(stream=s, frame=frame[s] if draw(st.integers(0, 15)) else None,
                         cls=draw(st.sampled_from(["car", "car", "pedestrian", "tree", None])),
                         score=draw(st.sampled_from([0.3, 0.9, None])),
                         n_points=draw(st.sampled_from([0, 2, 3, 50, None])), box=tuple(box)))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=5)))
    rng = random.Random(draw(st.integers(0, 2**16)))
    batches = []
    for a, b in zip([0] + cuts, cuts + [n]):
        part = rows[a:b]
        rng.shuffle(part)
        batches.append(boxes3d_table(part))
    return batches


# ----------------------------------------------------------------------------------------------
# equivalence
# ----------------------------------------------------------------------------------------------
@pytest.mark.slow
@PROPERTY
@given(batches=streams_and_splits())
def test_any_split_equals_suite_check(fast_backend, batches):
    """On Cython the box assertions run in the native engine (``NativeBoxes``), on the other
    backends in their adapters: both equal the batch check."""
    suite = all_examples()
    expected = events_of(suite.check(whole(batches), backend=fast_backend))
    got = streamed(tw.Monitor(suite, horizon=None, strict=True, backend=fast_backend), batches)
    assert got == expected


def _native_kinds(mon) -> list[str]:
    return [] if mon._native is None else [a.name for a in mon._native.members]


def test_native_engine_takes_the_box_assertions_on_cython_only():
    t = boxes_table([dict(stream="a", frame=0, track=1, cls="car", score=0.5, box=(0.0, 0.0, 10.0, 10.0))])
    mon = tw.Monitor(all_examples())
    mon.observe(t)
    assert sorted(_native_kinds(mon)) == ["appear_iou", "appear_track", "class_consistency", "flicker_iou",
                                          "flicker_track", "multibox", "valid"]
    numba = tw.Monitor(all_examples(), backend="numba")
    numba.observe(t)
    assert numba._native is None
    floats = tw.Monitor(all_examples())  # a stream column the engine cannot read: adapters
    floats.observe(t.set_column(0, "stream", pa.array([1.5])))
    assert floats._native is None


def _variant(t: pa.Table, how: str) -> pa.Table:
    """The same rows with other column types or layouts the native engine reads or converts."""
    def put(name, col):
        return t.set_column(t.schema.get_field_index(name), name, col)
    if how == "large_string":
        return put("stream", t.column("stream").cast(pa.large_string()))
    if how == "dictionary":
        return put("stream", t.column("stream").dictionary_encode())
    if how == "int_stream":
        codes = [None if s is None else ord(s) for s in t.column("stream").to_pylist()]
        return put("stream", pa.array(codes, pa.int32()))
    if how == "narrow":  # int32 frames and tracks, float64 coordinates and scores
        for name in ("frame", "track"):
            t = put(name, t.column(name).cast(pa.int32()))
        for name in ("x1", "y1", "x2", "y2", "score"):
            t = put(name, t.column(name).cast(pa.float64()))
        return t
    if how in ("class_int16", "class_int32"):  # integer classes: int16 cast to int64, int32 read as it is
        codes = {"car": 3, "bus": -1}
        return put("cls", pa.array([codes.get(c) for c in t.column("cls").to_pylist()],
                                   pa.int16() if how == "class_int16" else pa.int32()))
    if how == "class_dictionary":
        return put("cls", t.column("cls").dictionary_encode())
    if how == "chunked":  # every column in two chunks, the second sliced (non-zero offsets)
        n = t.num_rows // 2
        return pa.concat_tables([t.slice(0, n), pa.concat_tables([t, t]).slice(t.num_rows + n, t.num_rows - n)])
    return t


@pytest.mark.slow
@PROPERTY
@given(batches=streams_and_splits(), how=st.sampled_from(["large_string", "dictionary", "int_stream", "narrow",
                                                         "chunked", "class_int16", "class_int32",
                                                         "class_dictionary"]))
def test_native_engine_reads_other_column_types_and_layouts(batches, how):
    batches = [_variant(b, how) for b in batches]
    suite = tw.Suite([tw.boxes.multibox(iou=0.3, min_boxes=2), tw.boxes.flicker(max_gap=2, identity="track"),
                      tw.boxes.valid(width=60, height=60), tw.boxes.appear(min_frames=3, identity="track"),
                      tw.boxes.class_consistency(), tw.boxes.appear(min_frames=2, identity="iou", name="appear_iou")])
    expected = events_of(suite.check(whole(batches, lambda rows: _variant(boxes_table(rows), how))))
    mon = tw.Monitor(suite, strict=True, horizon=None)
    assert streamed(mon, batches) == expected
    assert not batches or len(_native_kinds(mon)) == 6


def _in_frame_order(t: pa.Table, one_stream: bool) -> pa.Table:
    """The rows of a batch the engine's multibox judges in place (no copy): each in a frame of
    a stream, in (stream, frame) order, no null coordinate or score."""
    keep = pa.array([True] * t.num_rows, pa.bool_())
    for name in ("stream", "frame", "x1", "y1", "x2", "y2", "score"):
        keep = pc.and_(keep, pc.is_valid(t.column(name)))
    if one_stream:  # stream ids follow first arrival: with several, later batches need not be in id order
        keep = pc.and_(keep, pc.equal(t.column("stream"), "a"))
    return t.filter(keep).sort_by([("stream", "ascending"), ("frame", "ascending")])


@pytest.mark.slow
@PROPERTY
@given(batches=streams_and_splits(), one_stream=st.booleans())
def test_native_engine_on_batches_in_frame_order_equals_suite_check(batches, one_stream):
    """Batches in frame order without nulls: the engine's multibox judges complete frames in
    the batch's columns, and a held frame together with the batch's boxes of that frame."""
    batches = [_in_frame_order(b, one_stream) for b in batches]
    suite = all_examples()
    expected = events_of(suite.check(whole(batches)))
    assert streamed(tw.Monitor(suite, horizon=None, strict=True), batches) == expected


@pytest.mark.slow
@PROPERTY
@given(batches=streams_and_splits())
def test_native_engine_releasing_the_gil_or_not_equals_suite_check(batches):
    """The native engines' kernel sections (boxes, and the rows engine of rows.consistent /
    rows.contiguous) keep the GIL for batches under ``MONITOR_NOGIL_MIN_ROWS`` rows and release
    it from there: both ways equal the batch check."""
    from tripwire import _config

    suite = all_examples()
    expected = events_of(suite.check(whole(batches)))
    for min_rows in (0, 1 << 40):  # every batch releases it / none does
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_config, "MONITOR_NOGIL_MIN_ROWS", min_rows)
            mon = tw.Monitor(suite, horizon=None, strict=True)
            assert streamed(mon, batches) == expected
            assert mon._native is None or mon._native.engine.nogil_min_rows == min_rows


def test_native_class_codes_of_many_colliding_integer_classes():
    """Integer classes that share their low byte (the engine's class cache is direct-mapped by
    it) and more classes than that cache holds, some tracks with three classes and a tie: the
    monitor's class_consistency and flicker equal the batch check."""
    rng = np.random.default_rng(7)
    n = 6000
    track = rng.integers(0, 40, n)
    base = np.array([3, 259, -253, 515, 1 << 40, (1 << 40) + 3])
    cls = base[track % len(base)] + 256 * (track // len(base))  # ~40 classes, low bytes collide
    flip = rng.random(n) < 0.05
    cls[flip] = base[rng.integers(0, len(base), flip.sum())] + 256 * rng.integers(0, 400, flip.sum())
    t = pa.table({"frame": pa.array(np.arange(n) // 8, pa.int64()), "track": pa.array(track, pa.int64()),
                  "cls": pa.array(cls, pa.int64()), "score": pa.array(rng.random(n), pa.float32()),
                  **{c: pa.array(np.full(n, v, np.float32)) for c, v in (("x1", 0), ("y1", 0), ("x2", 5), ("y2", 5))}})
    suite = tw.Suite([tw.boxes.class_consistency(), tw.boxes.flicker(max_gap=2)])
    expected = events_of(suite.check(t))
    assert expected["boxes.class_consistency"]
    for cut in (500, 1999):
        got = streamed(tw.Monitor(suite, strict=True, backend="cython"),
                       [t.slice(o, cut) for o in range(0, n, cut)])
        assert got == expected


def test_native_engine_state_is_untouched_when_another_assertion_rejects_the_batch():
    suite = tw.Suite([tw.boxes.multibox(iou=0.3, min_boxes=2), tw.rows.check("track < 0", name="untracked")])
    mon = tw.Monitor(suite)
    two = boxes_table([dict(stream="a", frame=0, track=t, cls="car", score=0.5, box=(0.0, 0.0, 10.0, 10.0))
                       for t in (1, 2)])
    assert len(mon.observe(two)) == 0 and _native_kinds(mon) == ["boxes.multibox"]
    bad = _frames_table([5]).drop_columns(["track"])  # the engine accepts it, rows.check does not
    assert mon.observe(bad).rejected == "column"
    r = mon.observe(_frames_table([1]))  # frame 5 was never counted: frame 1 is in order
    assert r.rejected is None and events_of(r) == {"boxes.multibox": [((0, 0.5), (1, 0.5))]}
    assert mon.rows == 3 and mon.retained_rows() == 1


def test_native_engine_input_is_exported_outside_the_monitors_lock(monkeypatch):
    """Exporting a batch releases the GIL: done under the lock, it lets the other request
    threads run into the lock and queue on it. ``observe`` stages the engine's input first."""
    from tripwire._streaming import NativeBoxes

    frame = boxes_table([dict(stream="a", frame=0, track=1, cls="car", score=0.5, box=(0.0, 0.0, 10.0, 10.0))])
    mon = tw.Monitor([tw.boxes.multibox(iou=0.3, min_boxes=2)])
    mon.observe(frame)  # the first batch builds the engine (under the lock): nothing staged
    calls = []
    stage = NativeBoxes.stage

    def spy(self, table):
        calls.append(mon._lock.locked())
        got = stage(self, table)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(NativeBoxes, "stage", spy)
    later = _frames_table([1])
    assert mon.observe(later.select(frame.schema.names)).rejected is None
    assert calls == [False, True]  # staged, and without the lock


def test_staged_input_falls_back_where_the_engine_must_read_the_table_itself():
    """``stage`` makes nothing of a table the engine reads another way (chunked columns, a
    schema other than the adopted one); an exported batch is read once; a staged batch whose
    schema was replaced meanwhile is not used."""
    mon = tw.Monitor([tw.boxes.multibox(iou=0.3, min_boxes=2)])
    rows = [dict(stream="a", frame=f, track=t, cls="car", score=0.5, box=(0.0, 0.0, 10.0, 10.0))
            for f in (0, 1) for t in (1, 2)]
    t = boxes_table(rows)
    mon.observe(t.slice(0, 2))
    native = mon._native
    assert native.stage(pa.concat_tables([t.slice(2, 1), t.slice(3, 1)])) is None  # two chunks
    assert native.stage(t.slice(2, 2).drop_columns(["score"])) is None  # another schema
    staged = native.stage(t.slice(2, 2))
    assert staged is not None
    native.prepare(t.slice(2, 2), 2, None, staged)
    native.abort()
    with pytest.raises(ValueError, match="read once"):
        native.engine.prepare(staged, 2, native._indices, False, None)
    # a schema adopted between stage and prepare (here: the columns reordered): prepare reads
    # the table, and leaves the staged batch (exported by the old column order) unread
    other = t.slice(2, 2).select(list(reversed(t.schema.names)))
    staged = native.stage(t.slice(2, 2))
    native.prepare(other, 2, None, staged)
    assert native._schema.equals(other.schema)
    native.abort()
    # still unread (else "read once"), and wrong for the new column order: the engine's guard
    with pytest.raises(ValueError, match="columns the engine expects"):
        native.engine.prepare(staged, 2, native._indices, False, None)


def test_native_engine_context_columns_match_the_batch_check():
    rows = [dict(stream="a", frame=f, track=1, cls="car", score=0.5, box=(0.0, 0.0, 10.0, 10.0)) for f in (0, 3)]
    rows += [dict(stream="b", frame=0, track=t, cls="car", score=0.25, box=(0.0, 0.0, 10.0, 10.0)) for t in (7, 8)]
    rows += [dict(stream="b", frame=1, track=9, cls="car", score=2.0, box=(0.0, 0.0, 10.0, 10.0))]
    t = boxes_table(rows)
    suite = tw.Suite([tw.boxes.multibox(iou=0.3, min_boxes=2), tw.boxes.flicker(max_gap=3),
                      tw.boxes.valid()])
    mon = tw.Monitor(suite, strict=True)
    got = pa.concat_tables([mon.observe(t).violations, mon.flush().violations], promote_options="permissive")
    want = suite.check(t).violations
    cols = ["assertion", "row", "severity", "stream", "frame", "key", "detail"]
    order = lambda v: sorted(zip(*(v.column(c).to_pylist() for c in cols)), key=repr)  # noqa: E731
    assert order(got.select(cols)) == order(want.select(cols))


@pytest.mark.slow
@PROPERTY
@given(batches=boxes3d_streams())
def test_any_split_of_3d_boxes_equals_suite_check(batches):
    suite = all_examples("points")
    expected = events_of(suite.check(whole(batches, boxes3d_table)))
    assert streamed(tw.Monitor(suite, horizon=None, strict=True), batches) == expected


@st.composite
def ecg_streams(draw):
    """ECG windows of interleaved records (t0 in order per record), a few bad or short, cut into
    batches."""
    n = draw(st.integers(0, 12))
    rows, t = [], {}
    for i in range(n):
        rec = draw(st.sampled_from(["r1", "r2", None]))
        t[rec] = t.get(rec, 0.0) + draw(st.sampled_from([5.0, 10.0, 10.0, 30.0]))
        fs = draw(st.sampled_from([250.0, 360.0]))
        k = np.arange(int(fs * draw(st.sampled_from([0.0, 0.3, 3.0]))))
        rr = draw(st.sampled_from([0.8, 0.35, 2.5]))
        sig = np.exp(-0.5 * ((k / fs % rr - 0.2) / 0.012) ** 2).astype(np.float32)
        kind = draw(st.sampled_from(["ok", "ok", "nan", "flat", "none"]))
        if kind == "nan" and len(sig):
            sig[: len(sig) // 3] = NAN
        elif kind == "flat":
            sig[:] = 0.5
        rows.append(dict(record=rec, t0=t[rec], fs=fs, signal=None if kind == "none" else sig.tolist(),
                         label=draw(st.sampled_from(["N", "A", "~", None]))))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    return [ecg_table(rows[a:b]) for a, b in zip([0] + cuts, cuts + [n])]


def ecg_table(rows: list[dict]) -> pa.Table:
    return pa.table({"record": pa.array([r["record"] for r in rows], pa.string()),
                     "t0": pa.array([r["t0"] for r in rows], pa.float64()),
                     "fs": pa.array([r["fs"] for r in rows], pa.float64()),
                     "signal": pa.array([r["signal"] for r in rows], pa.list_(pa.float32())),
                     "label": pa.array([r["label"] for r in rows], pa.string())})


@pytest.mark.slow
@PROPERTY
@given(batches=ecg_streams())
def test_any_split_of_ecg_windows_equals_suite_check(batches):
    suite = all_examples("ecg")
    expected = events_of(suite.check(pa.concat_tables(batches)))
    assert streamed(tw.Monitor(suite, horizon=None, strict=True), batches) == expected


@pytest.mark.slow
@PROPERTY
@given(batches=streams_and_splits(), max_gap=st.integers(1, 3), min_frames=st.integers(2, 5),
       iou=st.sampled_from([0.1, 0.3, 0.7]))
def test_iou_identity_any_split_equals_suite_check(fast_backend, batches, max_gap, min_frames, iou):
    """IoU identity carries association state across batches (``ByObject``): exact for any
    parameters, on every backend."""
    kw = dict(iou=iou, max_gap=max_gap, identity="iou")
    suite = tw.Suite([tw.boxes.flicker(**kw), tw.boxes.appear(min_frames=min_frames, **kw)])
    expected = events_of(suite.check(whole(batches), backend=fast_backend))
    assert streamed(tw.Monitor(suite, strict=True, backend=fast_backend), batches) == expected


def _with_class_as(t: pa.Table, kind: str) -> pa.Table:
    """``t`` with its class column as strings, integers, dictionary-encoded, or dropped."""
    i = t.schema.get_field_index("cls")
    if kind == "int":
        codes = {"car": 1, "bus": -7}
        return t.set_column(i, "cls", pa.array([codes.get(v) for v in t["cls"].to_pylist()], pa.int32()))
    if kind == "dictionary":
        return t.set_column(i, "cls", t["cls"].dictionary_encode())
    if kind == "none":
        return t.remove_column(i)
    return t


@pytest.mark.slow
@PROPERTY
@given(batches=streams_and_splits(), max_gap=st.integers(1, 3), min_frames=st.integers(2, 5),
       iou=st.sampled_from([0.1, 0.3, 0.7]), cls=st.sampled_from(["string", "int", "dictionary", "none"]))
def test_native_iou_engine_any_split_equals_suite_check(batches, max_gap, min_frames, iou, cls):
    """On Cython, flicker and appear by IoU run in the native engine (per-stream open frames
    and active objects, ``match_frame`` shared with ``associate``), next to multibox, flicker
    by track and valid over the same columns; two IoU assertions with different parameters
    keep separate state. Interleaved streams, rows shuffled inside batches, NaN and null
    coordinates, null and changing classes of every column type the engine reads."""
    batches = [_with_class_as(b, cls) for b in batches]
    kw = dict(iou=iou, max_gap=max_gap, identity="iou")
    suite = tw.Suite([tw.boxes.flicker(**kw, name="f1"), tw.boxes.appear(min_frames=min_frames, **kw, name="a1"),
                      tw.boxes.flicker(iou=0.5, max_gap=max_gap + 1, identity="iou", name="f2"),
                      tw.boxes.multibox(iou=0.3, min_boxes=2), tw.boxes.valid(width=60, height=60),
                      tw.boxes.flicker(max_gap=2, identity="track", name="ft")])
    expected = events_of(suite.check(whole(batches, lambda rows: _with_class_as(boxes_table(rows), cls))))
    mon = tw.Monitor(suite, strict=True, backend="cython")
    got = streamed(mon, batches)
    if batches:
        assert sorted(_native_kinds(mon)) == ["a1", "boxes.multibox", "boxes.valid", "f1", "f2", "ft"]
    assert got == expected


def test_native_iou_state_is_what_later_frames_need():
    """The engine holds the open frame, the active objects and young objects' boxes; an
    object beyond max_gap is judged (appear) with the batch that shows it can't come back."""
    suite = tw.Suite([tw.boxes.appear(min_frames=3, max_gap=1, identity="iou")])
    mon = tw.Monitor(suite, strict=True)

    def frame(f, xs):
        return boxes_table([dict(stream="a", frame=f, track=None, cls="car", score=0.5, box=(x, 0.0, x + 10, 10.0))
                            for x in xs])

    assert len(mon.observe(frame(0, [0.0, 100.0]))) == 0
    assert len(mon.observe(frame(1, [0.0, 50.0]))) == 0  # 50: a new object at frame 1 (a blip)
    assert mon._native.members and mon.retained_rows() > 0
    assert len(mon.observe(frame(2, [0.0]))) == 0  # frame 1 complete
    assert len(mon.observe(frame(3, [0.0]))) == 0  # the blip may still come back at frame 3
    r = mon.observe(frame(4, [0.0]))  # frame 3 complete without it: gone for good
    assert r.violations["row"].to_pylist() == [3]
    assert len(mon.flush()) == 0 and mon.retained_rows() == 0


def _longest_absence(table: pa.Table, keys: list[str]) -> int:
    """The most rows an identity (non-null ``keys``) stays away before coming back."""
    return longest_absence(zip(*(table[c].to_pylist() for c in keys)))


@pytest.mark.slow
@PROPERTY
@given(batches=streams_and_splits(), horizon=st.integers(1, 12))
def test_horizon_is_exact_when_identities_do_not_come_back_later(batches, horizon):
    t = whole(batches)
    assume(max(_longest_absence(t, ["track"]), _longest_absence(t, ["stream", "track"])) <= horizon)
    suite = all_examples()
    assert streamed(tw.Monitor(suite, horizon=horizon, strict=True), batches) == events_of(suite.check(t))


def test_violations_arrive_with_the_batch_that_completes_them():
    rows = [dict(stream="a", frame=f, track=1, cls="car", score=0.5, box=(0.0, 0.0, 10.0, 10.0))
            for f in (0, 1, 4)]
    rows += [dict(stream="a", frame=2, track=2, cls="car", score=0.5, box=(0.0, 0.0, 10.0, 10.0)),
             dict(stream="a", frame=2, track=3, cls="car", score=0.5, box=(1.0, 0.0, 11.0, 10.0))]
    rows.sort(key=lambda r: r["frame"])
    t = boxes_table(rows)  # frames 0 1 2 2 4
    mon = tw.Monitor([tw.boxes.flicker(max_gap=3), tw.boxes.multibox(iou=0.3, min_boxes=2)])
    first = mon.observe(t.slice(0, 4))  # frames 0..2: frame 2 still open, no gap closed yet
    assert len(first) == 0
    second = mon.observe(t.slice(4))  # frame 4 closes frame 2 (multibox) and track 1's gap
    assert events_of(second) == {"boxes.flicker": [((1, 0.5), (4, 0.5))],
                                 "boxes.multibox": [((2, 0.5), (3, 0.5))]}
    assert len(mon.flush()) == 0


def test_iou_identity_reports_with_the_batch_that_completes_it():
    """By IoU (no track column): a gap comes with the batch that completes the frame closing
    it, a short-lived object with the batch after which no frame can continue it; not at
    flush."""
    a = (0.0, 0.0, 10.0, 10.0)
    rows = [dict(stream="a", frame=f, track=None, cls="car", score=0.5, box=a) for f in (0, 1, 4, 5, 6, 7)]
    rows.insert(2, dict(stream="a", frame=2, track=None, cls="car", score=0.25, box=(100.0, 0.0, 110.0, 10.0)))
    t = boxes_table(rows).drop_columns(["track"])  # frames 0 1 2 4 5 6 7; row 2: a blip elsewhere
    suite = tw.Suite([tw.boxes.flicker(max_gap=2, identity="iou"), tw.boxes.appear(min_frames=3, max_gap=2)])
    mon = tw.Monitor(suite, strict=True)
    got = [events_of(mon.observe(t.slice(i, n))) for i, n in ((0, 3), (3, 1), (4, 1), (5, 1), (6, 1))]
    assert got[:2] == [{}, {}]  # frame 4 closes the gap but is open until frame 5 arrives
    assert got[2] == {"boxes.flicker": [((1, 0.5), (3, 0.5))]}
    assert got[3] == {"boxes.appear": [((2, 0.25),)]}  # frame 6: nothing can continue the blip
    assert got[4] == {} and len(mon.flush()) == 0
    assert events_of(suite.check(t)) == {"boxes.flicker": [((1, 0.5), (3, 0.5))], "boxes.appear": [((2, 0.25),)]}


# ----------------------------------------------------------------------------------------------
# bad input: rejected, counted, logged; strict raises; state untouched
# ----------------------------------------------------------------------------------------------
def _frames_table(frames, stream="a"):
    return boxes_table([dict(stream=stream, frame=f, track=1, cls="car", score=0.5, box=(0.0, 0.0, 10.0, 10.0))
                        for f in frames])


def test_out_of_order_batch_is_rejected_and_state_kept(caplog):
    suite = tw.Suite([tw.boxes.flicker(max_gap=3)])
    mon = tw.Monitor(suite)
    assert len(mon.observe(_frames_table([0, 1]))) == 0
    bad = mon.observe(_frames_table([0]))
    assert bad.rejected == "out_of_order" and "frame 0 of stream 'a' arrived after frame 1" in bad.error
    assert mon.rejected == {"out_of_order": 1} and mon.rows == 2
    assert "rejected a batch (out_of_order)" in caplog.text
    ok = mon.observe(_frames_table([3]))  # the rejected batch left nothing behind
    assert events_of(ok) == {"boxes.flicker": [((1, 0.5), (2, 0.5))]}


@pytest.mark.parametrize("batch, reason", [
    (pa.table({"frame": [1]}), "column"),
    ({"not": "a table"}, "not_a_table"),
    (pa.table({"stream": ["a"], "frame": ["one"], "track": [1], "cls": ["car"], "score": [0.5],
               "x1": [0.0], "y1": [0.0], "x2": [1.0], "y2": [1.0]}), "column"),
])
def test_malformed_batches_are_rejected_not_raised(batch, reason):
    mon = tw.Monitor(all_examples())
    assert len(mon.observe(_frames_table([0, 1]))) >= 0
    r = mon.observe(batch)
    assert r.rejected == reason and len(r) == 0 and r.violations.num_rows == 0
    assert mon.rejected[reason] == 1 and mon.batches == 1
    with pytest.raises(tw.TripwireError if reason != "not_a_table" else tw.InputError):
        tw.Monitor(all_examples(), strict=True).observe(batch)


def test_schema_change_is_rejected():
    mon = tw.Monitor([tw.boxes.multibox(iou=0.3, min_boxes=2)])
    mon.observe(_frames_table([0]))
    t = _frames_table([1])
    t = t.set_column(t.schema.get_field_index("x1"), "x1", pa.array(["0"]))
    assert mon.observe(t).rejected in ("input", "column")


def test_empty_batches_and_flush_on_empty_monitor():
    mon = tw.Monitor(all_examples())
    assert len(mon.flush()) == 0
    assert len(mon.observe(boxes_table([]))) == 0
    assert mon.rows == 0 and mon.batches == 1


def test_dictionary_streams_with_different_dictionaries():
    t = _frames_table([0, 1, 5], stream="cam1")
    parts = []
    for i in range(3):
        p = t.slice(i, 1)
        j = p.schema.get_field_index("stream")
        parts.append(p.set_column(j, "stream", p.column("stream").dictionary_encode()))
    suite = tw.Suite([tw.boxes.flicker(max_gap=3), tw.boxes.multibox(iou=0.3, min_boxes=2)])
    assert streamed(tw.Monitor(suite, strict=True), parts) == events_of(suite.check(t))


# ----------------------------------------------------------------------------------------------
# ttl, bounded state, threads
# ----------------------------------------------------------------------------------------------
def test_idle_streams_are_flushed_and_forgotten_after_ttl():
    now = [0.0]
    mon = tw.Monitor([tw.boxes.multibox(iou=0.3, min_boxes=2)], ttl=10, clock=lambda: now[0])
    two = boxes_table([dict(stream="a", frame=0, track=t, cls="car", score=0.75, box=(0.0, 0.0, 10.0, 10.0))
                       for t in (1, 2)])
    assert len(mon.observe(two)) == 0 and mon.retained_rows() == 2  # frame 0 may still grow
    now[0] = 5.0
    assert len(mon.observe(_frames_table([0], stream="b"))) == 0 and mon.streams() == 2
    now[0] = 12.0  # stream a idle for 12 s > ttl: its open frame is judged now
    r = mon.observe(_frames_table([1], stream="b"))
    assert events_of(r) == {"boxes.multibox": [((0, 0.75), (1, 0.75))]}
    assert mon.streams() == 1
    now[0] = 30.0
    assert len(mon.expire()) == 0 and mon.streams() == 0 and mon.retained_rows() == 0


def test_idle_stream_expiry_judges_its_iou_objects():
    now = [0.0]
    suite = tw.Suite([tw.boxes.appear(min_frames=3, max_gap=1, identity="iou")])
    mon = tw.Monitor(suite, ttl=10, clock=lambda: now[0], strict=True)
    a, b = (0.0, 0.0, 10.0, 10.0), (100.0, 0.0, 110.0, 10.0)
    rows = [dict(stream="a", frame=f, track=None, cls="car", score=s, box=box)
            for f, box, s in ((0, a, 0.5), (1, a, 0.5), (1, b, 0.75), (2, a, 0.5))]
    t = boxes_table(rows).drop_columns(["track"])
    assert len(mon.observe(t)) == 0 and mon.retained_rows() > 0  # the blip may still go on
    other = boxes_table([dict(stream="b", frame=0, track=None, cls="car", score=0.5, box=a)]).drop_columns(["track"])
    now[0] = 5.0
    assert len(mon.observe(other)) == 0
    now[0] = 30.0  # both idle: judged against the frames their streams reached
    assert events_of(mon.expire()) == events_of(suite.check(pa.concat_tables([t, other]))) == {
        "boxes.appear": [((2, 0.75),)]}
    assert mon.retained_rows() == 0 and mon.streams() == 0


def _long_stream(n_frames: int, per_frame: int, start: int = 0) -> pa.Table:
    """``per_frame`` tracks at a time, each living 10 frames, boxes drifting slowly."""
    f = np.repeat(np.arange(start, start + n_frames), per_frame)
    k = np.tile(np.arange(per_frame), n_frames)
    track = (f // 10) * per_frame + k
    x = (k * 50 + (f % 50)).astype(np.float32)
    return pa.table({"frame": f, "track": track, "cls": np.where(track % 7 == 0, "bus", "car"),
                     "score": np.full(len(f), 0.5, np.float32), "x1": x, "y1": np.zeros(len(f), np.float32),
                     "x2": x + 20, "y2": np.full(len(f), 20.0, np.float32)})


def bounded_suite() -> tw.Suite:
    return tw.Suite([tw.boxes.multibox(iou=0.3), tw.boxes.flicker(max_gap=3, identity="track"),
                     tw.boxes.appear(identity="track"), tw.boxes.class_consistency(), tw.boxes.valid(),
                     tw.rows.consistent(id="track", attr="cls"),
                     tw.rows.contiguous(id="track", time="frame", window=5)])


@pytest.mark.slow
def test_state_stays_bounded_over_a_million_frames():
    import resource

    mon = tw.Monitor(bounded_suite(), horizon=2_000)
    retained, rss = [], []
    chunk = 10_000
    for i in range(100):  # 10^6 frames, 2 boxes each
        mon.observe(_long_stream(chunk, 2, start=i * chunk))
        retained.append(mon.retained_rows())
        rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    assert mon.rows == 2_000_000 and not mon.rejected
    assert max(retained) < 30 * chunk  # held back: bounded by horizon and windows, not stream length
    assert max(retained[50:]) <= max(retained[:50]) * 1.1
    # peak resident memory after the first tenth does not keep growing (KiB)
    assert rss[-1] - rss[10] < 64 * 1024


def _iou_stream(n_frames: int, start: int = 0) -> pa.Table:
    """Untracked boxes for IoU identity, the same scene on two cameras: three lanes of boxes
    drifting right and jumping back every 40 frames (lane 1 missing every 9th frame: flicker;
    lane 2 away 20 frames in 40: objects forgotten) and a one-frame blip every 25 frames
    (appear)."""
    f = np.arange(start, start + n_frames)
    present = [np.ones(n_frames, bool), f % 9 != 4, f % 40 < 20, f % 25 == 12]  # lanes 0-2, blip
    frames = np.tile(np.concatenate([f[p] for p in present]), 2)
    lane = np.tile(np.concatenate([np.full(int(p.sum()), k) for k, p in enumerate(present)]), 2)
    cam = np.repeat(["cam0", "cam1"], len(lane) // 2)
    order = np.lexsort((lane, cam, frames))  # frame by frame, the cameras interleaved
    frames, lane, cam = frames[order], lane[order], cam[order]
    x = np.where(lane == 3, 500.0, lane * 50 + (frames % 40) * 0.5).astype(np.float32)
    return pa.table({"stream": cam, "frame": frames, "cls": np.where(lane == 3, "bird", "car"),
                     "score": np.full(len(frames), 0.5, np.float32), "x1": x,
                     "y1": np.zeros(len(frames), np.float32), "x2": x + 20,
                     "y2": np.full(len(frames), 20.0, np.float32)})


@pytest.mark.slow
def test_iou_identity_state_stays_bounded():
    """IoU identity holds back open frames, active objects' last boxes and young objects'
    boxes: a few dozen rows, however long the stream, and reports exactly Suite.check's."""
    suite = tw.Suite([tw.boxes.flicker(max_gap=3, identity="iou"), tw.boxes.appear(min_frames=3, identity="iou")])
    mon = tw.Monitor(suite, strict=True)
    retained, parts, got = [], [], {}
    for i in range(100):  # 200,000 frames, ~3 boxes each on each of two cameras
        part = _iou_stream(2_000, start=i * 2_000)
        parts.append(part)
        for a, evs in events_of(mon.observe(part)).items():
            got.setdefault(a, []).extend(evs)
        retained.append(mon.retained_rows())
    flushed = events_of(mon.flush())
    assert max(retained) <= 40  # per assertion: open frames (~4), seeds (~4), young boxes
    assert sum(len(v) for v in flushed.values()) <= 2  # only what the stream's end decides
    for a, evs in flushed.items():
        got.setdefault(a, []).extend(evs)
    expected = events_of(suite.check(pa.concat_tables(parts)))
    assert {a: sorted(v) for a, v in got.items()} == expected
    assert len(expected["boxes.flicker"]) > 10_000 and len(expected["boxes.appear"]) > 10_000


@pytest.mark.parametrize("shared", [False, True], ids=["distinct-streams", "shared-stream"])
def test_eight_threads_observe_concurrently(shared):
    """Counts are exact: the flagged rows of all reports equal Suite.check over every batch
    (in any order: these checks do not depend on the order of whole batches)."""
    suite = tw.Suite([tw.boxes.multibox(iou=0.3, min_boxes=2), tw.boxes.valid(width=25, height=1000),
                      tw.rows.check("score > 0.8", name="high")])
    mon = tw.Monitor(suite, strict=True)
    frames_per_thread, errors = 200, []
    sent: list[list[pa.Table]] = [[] for _ in range(8)]
    counts: list[dict] = [{} for _ in range(8)]

    def work(i):
        rng = np.random.default_rng(i)
        try:
            for f in range(frames_per_thread):
                n = 3
                x = rng.integers(0, 30, n).astype(np.float32)
                stream = "shared" if shared else f"cam{i}"
                # a shared stream keeps its frames in order only if all threads send one frame
                batch = pa.table({"stream": [stream] * n, "frame": [0 if shared else f] * n,
                                  "x1": x, "y1": x, "x2": x + 10, "y2": x + 10,
                                  "score": np.linspace(0.5, 0.95, n).astype(np.float32)})
                sent[i].append(batch)
                for a, r in mon.observe(batch).results:
                    counts[i][a.name] = counts[i].get(a.name, 0) + len(r.rows)
        except Exception as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not mon.rejected
    total: dict[str, int] = {}
    for a, r in mon.flush().results:
        total[a.name] = len(r.rows)
    for c in counts:
        for k, v in c.items():
            total[k] += v
    assert mon.batches == 8 * frames_per_thread and mon.rows == 8 * frames_per_thread * 3
    expected = suite.check(pa.concat_tables([b for s in sent for b in s]))
    assert total == {a.name: len(r.rows) for a, r in expected.results}
    assert total["high"] == 8 * frames_per_thread and total["boxes.valid"] > 0 and total["boxes.multibox"] > 0


def test_metrics_and_alerts_are_fed_by_the_monitor():
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    metrics = tw.MonitorMetrics(registry, monitor="cam", rate_window=4)
    fired = []
    suite = tw.Suite([tw.rows.check("score > 0.8", name="high"), tw.boxes.valid(width=100, height=100)])
    mon = tw.Monitor(suite, metrics=metrics, name="cam",
                     alerts=[tw.Alert("high", rate_above=0.5, over=4, on=[fired.append])])
    for scores in ([0.9, 0.9], [0.9, 0.1], [0.1, 0.1], [0.1, 0.1]):
        mon.observe(pa.table({"frame": [0, 0], "score": pa.array(scores, pa.float32()),
                              "x1": [0.0, 0.0], "y1": [0.0, 0.0], "x2": [1.0, 1.0], "y2": [1.0, 1.0]}))
    mon.observe(pa.table({"frame": [1]}))  # rejected: no box columns

    def value(name, **labels):
        return registry.get_sample_value(name, {"monitor": "cam", **labels})

    assert value("tripwire_rows_total") == 8 and value("tripwire_batches_total") == 4
    assert value("tripwire_violations_total", assertion="high") == 3
    assert value("tripwire_rejected_batches_total", reason="column") == 1
    assert value("tripwire_observe_seconds_count") == 4
    assert [e.state for e in fired] == ["firing", "resolved"]  # 3/4 after two batches, 0/4 at the end


def test_clean_and_flagged_batches_of_varying_lengths_feed_exact_counts():
    """Batches that flag nothing share cached empty results (per length) and feed metrics and
    alerts with empty counts: reports, counters and rolling rates stay what every batch's own
    results say."""
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    metrics = tw.MonitorMetrics(registry, monitor="cam", rate_window=7)
    suite = tw.Suite([tw.boxes.valid(width=100, height=100), tw.rows.check("score > 0.8", name="high")])
    mon = tw.Monitor(suite, metrics=metrics, name="cam", ttl=60, clock=lambda: 0.0,
                     alerts=[tw.Alert("high", rate_above=0.5, over=5)])
    rng = random.Random(4)
    reports, sizes, frame = [], [], 0
    for _ in range(60):
        n = rng.choice([1, 2, 3, 3, 5])
        bad = rng.random() < 0.3  # a third of the batches flag something
        score = [0.9 if bad and rng.random() < 0.5 else 0.1 for _ in range(n)]
        x2 = [150.0 if bad and rng.random() < 0.3 else 10.0 for _ in range(n)]  # 150: out of the image
        reports.append(mon.observe(pa.table({
            "stream": ["a"] * n, "frame": [frame] * n, "score": pa.array(score, pa.float32()),
            "x1": [0.0] * n, "y1": [0.0] * n, "x2": x2, "y2": [10.0] * n})))
        sizes.append(n)
        frame += 1
    flagged = {a.name: [] for a in suite}
    for r, n in zip(reports, sizes):
        assert r.rejected is None
        assert r.summary().column("rows").to_pylist() == [n, n]
        for a, res in r.results:
            flagged[a.name].append(len(res.rows))
    assert len({id(r.results) for r in reports}) == len(reports)  # a list of its own per report
    assert sum(flagged["high"]) > 0 and sum(flagged["boxes.valid"]) > 0
    assert sum(1 for i in range(len(reports)) if not len(reports[i])) > 10

    def value(name, **labels):
        return registry.get_sample_value(name, {"monitor": "cam", **labels})

    assert value("tripwire_rows_total") == sum(sizes) and value("tripwire_batches_total") == len(sizes)
    for name in flagged:
        assert value("tripwire_violations_total", assertion=name) == sum(flagged[name])
        assert value("tripwire_events_total", assertion=name) == sum(r.summary().column("events")[
            [a.name for a, _ in r.results].index(name)].as_py() for r in reports)

    def window(over, name):  # the smallest run of latest batches holding >= over rows
        rows = hits = 0
        for n, f in zip(reversed(sizes), reversed(flagged[name])):
            if rows >= over:
                break
            rows, hits = rows + n, hits + f
        return hits / rows

    for name in flagged:
        assert metrics.rate(name) == window(7, name)
    alert = mon.alerts.alerts[0]
    assert mon.alerts.rate(alert) == window(5, "high")
