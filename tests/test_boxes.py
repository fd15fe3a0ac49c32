"""boxes.multibox / boxes.valid: every backend against the plain-loop reference, frame grouping,
hand-written edge cases, ``tw.io.read_mot`` and the registry."""
from __future__ import annotations

import datetime
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
from tripwire import _frames
from reference import LAYOUTS, assert_same_report, check_like_reference, make_table

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAN, INF = float("nan"), float("inf")
TUD = os.path.join(os.path.dirname(tw.__file__), "data", "tud_campus")
MOT_TEST_TXT = "/tmp/mm/motmetrics/data/TUD-Campus/test.txt"


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def boxes_table(boxes, frames, *, streams=None, scores=None, stream_type=pa.int64(),
                coord_type=pa.float32(), frame_type=pa.int64(), layout="plain", splits=(1, 2)):
    """``boxes``: [(x1, y1, x2, y2)] (a coordinate may be None)."""
    cols = {"frame": (frames, lambda v: pa.array(v, frame_type), 0)}
    if streams is not None:
        pad = "s" if pa.types.is_string(stream_type) else 0
        cols["stream"] = (streams, lambda v: pa.array(v, stream_type), pad)
    for j, name in enumerate(("x1", "y1", "x2", "y2")):
        cols[name] = ([b[j] for b in boxes], lambda v: pa.array(v, coord_type), 0.0)
    if scores is not None:
        cols["score"] = (scores, lambda v: pa.array(v, pa.float32()), 0.5)
    return make_table(cols, layout, splits)


def mb(**kw):
    return tw.Suite([tw.boxes.multibox(**kw)])


def groups(report, row_map=None):
    """multibox violations as {frozenset(rows): severity} (rows mapped through ``row_map``)."""
    v = report.violations.filter(pc.equal(report.violations["kind"], "boxes.multibox"))
    out: dict[int, list] = {}
    sev = {}
    for row, ev, s in zip(v["row"].to_pylist(), v["event"].to_pylist(), v["severity"].to_pylist()):
        out.setdefault(ev, []).append(row if row_map is None else row_map[row])
        sev[ev] = s
    return {frozenset(rows): sev[ev] for ev, rows in out.items()}


def flagged(report):
    v = report.violations
    return list(zip(v["row"].to_pylist(), v["event"].to_pylist(), v["severity"].to_pylist()))


def details(report):
    v = report.violations
    return dict(zip(v["row"].to_pylist(), v["detail"].to_pylist()))


# ----------------------------------------------------------------------------------------------
# property: fast backends == reference
# ----------------------------------------------------------------------------------------------
_OFFSETS = st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 8.0])  # heavy overlap: groups form
_SIZES = st.sampled_from([0.0, 4.0, 10.0, 10.0, 10.0, 10.5, 12.0])


@st.composite
def a_box(draw, odd):
    bx, by = draw(st.sampled_from([0.0, 0.0, 0.0, 2.0, 100.0])), draw(st.sampled_from([0.0, 0.0, 1.0]))
    x1, y1 = bx + draw(_OFFSETS), by + draw(_OFFSETS)
    box = [x1, y1, x1 + draw(_SIZES), y1 + draw(_SIZES)]
    if odd and draw(st.integers(0, 7)) == 0:
        box[draw(st.integers(0, 3))] = draw(st.sampled_from([NAN, INF, -INF, None, -1.0, 1e6]))
    return tuple(box)


@st.composite
def cases(draw):
    n = draw(st.integers(0, 24))
    k = draw(st.integers(1, 3))
    odd = draw(st.booleans())
    frames = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))  # random order
    stream_kind = draw(st.sampled_from([None, "int", "string"]))
    streams = None
    if stream_kind:
        streams = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
        if stream_kind == "string":
            streams = [f"cam{s}" for s in streams]
    scores = None
    if draw(st.booleans()):
        element = st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])
        if odd:
            element = st.one_of(element, st.sampled_from([None, None, NAN, -0.5, 1.5]))
        scores = draw(st.lists(element, min_size=n, max_size=n))
    return dict(
        boxes=draw(st.lists(a_box(odd), min_size=n, max_size=n)), frames=frames, streams=streams,
        scores=scores, stream_type=pa.string() if stream_kind == "string" else pa.int64(),
        coord_type=draw(st.sampled_from([pa.float32(), pa.float64()])),
        layout=draw(st.sampled_from(LAYOUTS)), splits=(draw(st.integers(0, 24)), draw(st.integers(0, 24))),
        iou=draw(st.one_of(st.sampled_from([0.1, 0.25, 0.3, 0.5, 0.64, 0.8, 1.0]),
                           st.floats(0.01, 1.0))),
        min_boxes=draw(st.sampled_from([2, 2, 3, 3, 4])),
        width=draw(st.sampled_from([None, None, 12, 640])), height=draw(st.sampled_from([None, None, 12, 480])))


def suite_of(case):
    return tw.Suite([tw.boxes.multibox(iou=case["iou"], min_boxes=case["min_boxes"]),
                     tw.boxes.valid(width=case["width"], height=case["height"])])


def table_of(case, **over):
    kw = {k: case[k] for k in ("boxes", "frames", "streams", "scores", "stream_type", "coord_type",
                               "layout", "splits")}
    kw.update(over)
    return boxes_table(kw.pop("boxes"), kw.pop("frames"), **kw)


@pytest.mark.slow
@PROPERTY
@given(case=cases())
def test_matches_reference(fast_backend, case):
    s = suite_of(case)
    got = check_like_reference(s, table_of(case), fast_backend)
    # the same logical table as plain float32 columns: identical report
    plain = s.check(table_of(case, layout="plain", coord_type=pa.float32()), backend="reference")
    assert_same_report(got, plain, context="layout / coordinate type")


@PROPERTY
@given(case=cases(), seed=st.integers(0, 2**32 - 1))
def test_groups_do_not_depend_on_row_order(case, seed):
    """Shuffling rows changes event numbers, not the groups (rows mapped back) or severities."""
    s = mb(iou=case["iou"], min_boxes=case["min_boxes"])
    want = groups(s.check(table_of(case, layout="plain"), backend="cython"))
    perm = np.random.default_rng(seed).permutation(len(case["boxes"])).tolist()
    shuffled = {k: (None if case[k] is None else [case[k][i] for i in perm])
                for k in ("boxes", "frames", "streams", "scores")}
    got = groups(s.check(table_of(case, layout="plain", **shuffled), backend="cython"), row_map=perm)
    assert got == want


# ----------------------------------------------------------------------------------------------
# the reference kernels themselves
# ----------------------------------------------------------------------------------------------
def test_reference_kernel_signatures_and_dtypes():
    import reference
    from tripwire._kernels import _boxes_cy

    f32 = lambda v: np.array(v, np.float32)  # noqa: E731
    args = (f32([0, 1, 50]), f32([0, 0, 50]), f32([10, 11, 60]), f32([10, 10, 60]),
            f32([0.2, 0.7, 0.1]), np.ones(3, np.uint8), np.array([0, 3], np.int64), 0.5, 2)
    for k in (reference, _boxes_cy):
        pos, ev, sev, anchor = k.multibox(*args)
        assert (pos.dtype, ev.dtype, sev.dtype, anchor.dtype) == (np.int64, np.int64, np.float32, np.int64)
        assert pos.tolist() == [0, 1] and ev.tolist() == [0, 0] and anchor.tolist() == [0]
        assert sev.tolist() == [np.float32(0.7)] * 2
        rows, reasons = k.valid(*args[:4], np.empty(0, np.uint8), args[4], args[5], 20.0, 0.0)
        assert (rows.dtype, reasons.dtype) == (np.int64, np.uint8)
        assert rows.tolist() == [2] and reasons.tolist() == [8]


_EDGE_FLOATS = [0.0, -0.0, 1.0, 5.0, 12.0, 640.0, 640.3, 640.7, -1.0, 1e30, float("inf"), float("-inf"), float("nan")]


@PROPERTY
@given(n=st.integers(0, 3000), seed=st.integers(0, 2**32 - 1), nulls=st.booleans(), score=st.booleans(),
       width=st.sampled_from([0.0, 12.0, 640.3, 640.7, 1e300]), height=st.sampled_from([0.0, 12.0, 480.0]),
       parallel=st.booleans(), simd=st.sampled_from([1, 0]))
def test_valid_kernel_matches_reference(monkeypatch, n, seed, nulls, score, width, height, parallel, simd):
    """``valid`` over row ranges on parallel threads, in both builds (``simd`` 1: AVX2, where
    rows without nulls are found in one pass; 0: portable, block by block): any length (block,
    word and vector tails), edge values, nulls and bounds that float32 cannot hold (640.3) give
    the reference's rows and reasons."""
    import reference
    from tripwire import _config
    from tripwire._kernels import _boxes_cy

    monkeypatch.setattr(_config, "VALID_PARALLEL_MIN_ROWS", 0 if parallel else 10**9)
    rng = np.random.default_rng(seed)
    pick = np.array(_EDGE_FLOATS + [float(np.nextafter(np.float32(640.3), np.float32(1e9)))], np.float64)
    cols = [np.where(rng.random(n) < 0.8, rng.uniform(-2, 700, n), pick[rng.integers(0, len(pick), n)])
            .astype(np.float32) for _ in range(5)]
    cols[2] = np.where(rng.random(n) < 0.7, cols[0] + rng.uniform(0, 30, n).astype(np.float32), cols[2])
    cols[3] = np.where(rng.random(n) < 0.7, cols[1] + rng.uniform(0, 30, n).astype(np.float32), cols[3])
    sc = np.where(rng.random(n) < 0.7, rng.random(n), cols[4]).astype(np.float32) if score else np.empty(0, np.float32)
    cv = (rng.random(n) > 0.05).astype(np.uint8) if nulls else np.empty(0, np.uint8)
    sv = (rng.random(n) > 0.05).astype(np.uint8) if nulls and score else np.empty(0, np.uint8)
    try:
        _boxes_cy.simd_level(simd)
        with np.errstate(invalid="ignore", over="ignore"):
            got = _boxes_cy.valid(*cols[:4], cv, sc, sv, width, height)
    finally:
        _boxes_cy.simd_level(-1)
    with np.errstate(invalid="ignore", over="ignore"):
        want = reference.valid(*cols[:4], cv, sc, sv, width, height)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


# ----------------------------------------------------------------------------------------------
# frame grouping
# ----------------------------------------------------------------------------------------------
def test_group_frames_sorted_input_is_not_copied():
    t = pa.table({"frame": [0, 0, 1, 3, 3, 3]})
    g = _frames.group_frames(t, "frame", "stream")
    assert g.order is None and g.offsets.tolist() == [0, 2, 3, 6]


def test_group_frames_unsorted_streams_and_nulls():
    t = pa.table({"frame": pa.array([2, 1, None, 2, 1, 1, 7], pa.int64()),
                  "stream": pa.array(["b", "a", "a", "a", None, "b", "a"])})
    g = _frames.group_frames(t, "frame", "stream")
    frames = [g.rows(np.arange(g.offsets[f], g.offsets[f + 1])).tolist() for f in range(len(g.offsets) - 1)]
    # rows 2 (null frame) and 4 (null stream) belong to no frame; arrival order inside a frame
    assert sorted(frames) == sorted([[1], [3], [6], [5], [0]])
    assert sum(len(f) for f in frames) == 5
    # without a stream column, frames alone
    g = _frames.group_frames(t.drop_columns(["stream"]), "frame", "stream")
    frames = [g.rows(np.arange(g.offsets[f], g.offsets[f + 1])).tolist() for f in range(len(g.offsets) - 1)]
    assert frames == [[1, 4, 5], [0, 3], [6]]


def test_group_frames_wide_frame_range():
    t = pa.table({"frame": pa.array([2**62, -2**62, 2**62, 5], pa.int64()), "stream": [1, 2, 2, 1]})
    g = _frames.group_frames(t, "frame", "stream")
    frames = [g.rows(np.arange(g.offsets[f], g.offsets[f + 1])).tolist() for f in range(len(g.offsets) - 1)]
    assert sorted(frames) == [[0], [1], [2], [3]]


def _runs_reference(key):
    """Plain loop: (None if some value descends, else the start of each run and len(key))."""
    starts = [0] if len(key) else []
    for i in range(1, len(key)):
        if key[i] < key[i - 1]:
            return None
        if key[i] != key[i - 1]:
            starts.append(i)
    return starts + [len(key)]


@PROPERTY
@given(values=st.lists(st.integers(-2**63, 2**63 - 1) | st.integers(-3, 3), max_size=70), sort=st.booleans(),
       start=st.integers(0, 3))
def test_sorted_runs_matches_reference(values, sort, start):
    """Every length around the vector width, extreme values (no overflow in the comparison),
    sorted or not, and a sliced (offset) view."""
    from tripwire._kernels._rows_cy import sorted_runs

    key = np.array(sorted(values) if sort else values, np.int64)[start:]
    got, want = sorted_runs(key), _runs_reference(key.tolist())
    assert (got is None and want is None) or got.tolist() == want


@PROPERTY
@given(frames=st.lists(st.integers(0, 5), max_size=40), nulls=st.booleans(), streams=st.integers(0, 3),
       seed=st.integers(0, 2**32 - 1))
def test_group_frames_matches_stable_sort(frames, nulls, streams, seed):
    """Groups are the (stream, frame) runs of one stable sort of the rows that have both."""
    rng = np.random.default_rng(seed)
    n = len(frames)
    fmask = (rng.random(n) < 0.2) if nulls else np.zeros(n, bool)
    cols = {"frame": pa.array(frames, pa.int64(), mask=fmask)}
    if streams:
        cols["stream"] = pa.array(rng.integers(0, streams, n).tolist(), pa.int64())
    g = _frames.group_frames(pa.table(cols), "frame", "stream")
    s = cols["stream"].to_numpy() if streams else np.zeros(n, np.int64)
    rows = [i for i in sorted(range(n), key=lambda i: (s[i], frames[i])) if not fmask[i]]
    got = [g.rows(np.arange(g.offsets[k], g.offsets[k + 1])).tolist() for k in range(len(g.offsets) - 1)]
    want = []
    for i in rows:
        if want and (s[want[-1][0]], frames[want[-1][0]]) == (s[i], frames[i]):
            want[-1].append(i)
        else:
            want.append([i])
    assert got == want
    assert g.frame.tolist() == [frames[w[0]] for w in want]
    if n and not nulls and streams < 2 and frames == sorted(frames):
        assert g.order is None


def _grouping_case():
    """Unsorted frames, three streams, nulls in frame and stream; one overlap cluster per
    (stream, frame) except where noted."""
    a, b, far = (0, 0, 10, 10), (1, 0, 11, 10), (100, 100, 110, 110)
    rows = [  # (stream, frame, box)
        ("s2", 5, a), ("s1", 3, a), ("s1", 5, a), ("s2", 5, b), ("s1", 3, b), (None, 3, a),
        ("s1", 5, b), ("s1", None, b), ("s2", 5, a), ("s1", 3, far), ("s3", 3, a), ("s1", 5, a),
        ("s3", 4, b), ("s1", 3, a), ("s2", 1, a), ("s2", 1, far),
    ]
    return rows


@pytest.mark.parametrize("layout", LAYOUTS)
def test_grouping_matches_sorted_table(backend, layout):
    rows = _grouping_case()
    s = mb(iou=0.5, min_boxes=2)
    got = s.check(boxes_table([r[2] for r in rows], [r[1] for r in rows], streams=[r[0] for r in rows],
                              stream_type=pa.string(), layout=layout, splits=(3, 9)), backend=backend)
    # the plain table sorted by (stream, frame), null-keyed rows dropped
    keep = sorted((i for i, r in enumerate(rows) if r[0] is not None and r[1] is not None),
                  key=lambda i: (rows[i][0], rows[i][1]))
    sorted_rows = [rows[i] for i in keep]
    want = s.check(boxes_table([r[2] for r in sorted_rows], [r[1] for r in sorted_rows],
                               streams=[r[0] for r in sorted_rows], stream_type=pa.string()), backend=backend)
    assert groups(got) == groups(want, row_map=keep)
    assert groups(got) == {frozenset({1, 4, 13}): 1.0, frozenset({2, 6, 11}): 1.0, frozenset({0, 3, 8}): 1.0}
    # context columns name the stream and frame of each flagged row
    v = got.violations
    assert [(r, st_, fr) for r, st_, fr in zip(v["row"].to_pylist(), v["stream"].to_pylist(),
                                               v["frame"].to_pylist())] == [
        (0, "s2", 5), (3, "s2", 5), (8, "s2", 5), (1, "s1", 3), (4, "s1", 3), (13, "s1", 3),
        (2, "s1", 5), (6, "s1", 5), (11, "s1", 5)]


def test_events_numbered_by_first_row(backend):
    a, b = (0, 0, 10, 10), (1, 0, 11, 10)
    t = boxes_table([a, a, b, b], [9, 2, 9, 2])
    assert flagged(mb(iou=0.5, min_boxes=2).check(t, backend=backend)) == [
        (0, 0, 1.0), (2, 0, 1.0), (1, 1, 1.0), (3, 1, 1.0)]


def test_dictionary_and_chunked_stream(backend):
    streams = pa.chunked_array([pa.array(["x", "y"]).dictionary_encode(), pa.array(["y", "x"]).dictionary_encode()])
    t = pa.table({"stream": streams, "frame": [0, 0, 0, 0], "x1": [0.0] * 4, "y1": [0.0] * 4,
                  "x2": [10.0] * 4, "y2": [10.0] * 4})
    r = mb(iou=0.5, min_boxes=2).check(t, backend=backend)
    assert groups(r) == {frozenset({0, 3}): 1.0, frozenset({1, 2}): 1.0}
    assert r.violations["stream"].to_pylist() == ["x", "x", "y", "y"]


# ----------------------------------------------------------------------------------------------
# edge cases by hand (each on every backend)
# ----------------------------------------------------------------------------------------------
A, B = (0.0, 0.0, 10.0, 10.0), (1.0, 0.0, 11.0, 10.0)  # IoU(A, B) = 90 / 110


def test_empty_table(backend):
    for t in (boxes_table([], []), boxes_table([], [], streams=[], scores=[]),
              pa.table({c: pa.array([], pa.float32()) for c in ("x1", "y1", "x2", "y2")}).append_column(
                  "frame", pa.array([], pa.int64()))):
        r = tw.Suite([tw.boxes.multibox(), tw.boxes.valid()]).check(t, backend=backend)
        assert len(r) == 0 and r.violations.num_rows == 0


def test_all_frames_null_or_too_small(backend):
    t = boxes_table([A, A, A, B], [None, None, 1, 2])
    assert len(mb(iou=0.5, min_boxes=2).check(t, backend=backend)) == 0
    t = boxes_table([A, A, A], [None, None, None])
    assert len(mb(iou=0.5, min_boxes=2).check(t, backend=backend)) == 0


def test_single_box(backend):
    r = tw.Suite([tw.boxes.multibox(min_boxes=2), tw.boxes.valid()]).check(boxes_table([A], [0]), backend=backend)
    assert len(r) == 0


def test_identical_boxes_are_one_group(backend):
    t = boxes_table([A] * 5, [3] * 5, scores=[0.1, None, 0.8, 0.3, None])
    r = mb(iou=1.0, min_boxes=3).check(t, backend=backend)
    assert flagged(r) == [(i, 0, pytest.approx(0.8)) for i in range(5)]
    assert r.violations["frame"].to_pylist() == [3] * 5
    assert r.violations["stream"].to_pylist() == [None] * 5


def test_group_is_connected_not_pairwise(backend):
    # a-b and b-c overlap enough; a-c do not: one group of three (transitive)
    t = boxes_table([(0, 0, 10, 10), (4, 0, 14, 10), (8, 0, 18, 10), (50, 50, 60, 60)], [0] * 4)
    r = mb(iou=0.4, min_boxes=3).check(t, backend=backend)
    assert groups(r) == {frozenset({0, 1, 2}): 1.0}
    assert len(mb(iou=0.5, min_boxes=3).check(t, backend=backend)) == 0


def test_min_boxes_two(backend):
    t = boxes_table([A, B, (50, 50, 60, 60)], [0, 0, 0], scores=[0.25, 0.5, 0.9])
    assert flagged(mb(iou=0.5, min_boxes=2).check(t, backend=backend)) == [(0, 0, 0.5), (1, 0, 0.5)]
    assert len(mb(iou=0.5, min_boxes=3).check(t, backend=backend)) == 0


def test_zero_area_boxes_never_link(backend):
    t = boxes_table([(5, 5, 5, 5)] * 3 + [(0, 5, 10, 5)] * 3 + [(5, 0, 5, 10)] * 3, [0] * 9)
    assert len(mb(iou=0.01, min_boxes=2).check(t, backend=backend)) == 0


@pytest.mark.parametrize("bad", [NAN, INF, -INF, None])
def test_non_finite_coordinates(backend, bad):
    boxes = [A, A, (0.0, 0.0, bad, 10.0), (bad, 0.0, 10.0, 10.0), (-INF, -INF, INF, INF)]
    t = boxes_table(boxes, [0] * 5)
    r = tw.Suite([tw.boxes.multibox(iou=0.1, min_boxes=2), tw.boxes.valid()]).check(t, backend=backend)
    assert groups(r) == {frozenset({0, 1}): 1.0}  # the broken boxes link to nothing
    v = r.violations.filter(pc.equal(r.violations["kind"], "boxes.valid"))
    assert v["row"].to_pylist() == [2, 3, 4]
    assert v["detail"].to_pylist() == ["non-finite or null coordinate"] * 3
    assert v["severity"].to_pylist() == [1.0] * 3


def test_edge_touching_boxes_do_not_link(backend):
    t = boxes_table([(0, 0, 10, 10), (10, 0, 20, 10), (0, 10, 10, 20), (10, 10, 20, 20)], [0] * 4)
    assert len(mb(iou=1e-6, min_boxes=2).check(t, backend=backend)) == 0


def test_exactly_at_threshold_links(backend):
    # IoU((0,0,4,4), (2,0,6,4)) = 8 / 24 = 1/3; and (0,0,2,2) in (0,0,4,4): 4 / 16 = 0.25 exactly
    t = boxes_table([(0, 0, 4, 4), (0, 0, 2, 2)], [0, 0])
    assert groups(mb(iou=0.25, min_boxes=2).check(t, backend=backend)) == {frozenset({0, 1}): 1.0}
    assert len(mb(iou=0.2500001, min_boxes=2).check(t, backend=backend)) == 0
    # 0.5 exactly: (0,0,4,4) vs (0,0,4,2)... IoU 8/16
    t = boxes_table([(0, 0, 4, 4), (0, 0, 4, 2)], [0, 0])
    assert len(mb(iou=0.5, min_boxes=2).check(t, backend=backend)) == 2
    assert len(mb(iou=0.51, min_boxes=2).check(t, backend=backend)) == 0
    # identical boxes at iou=1
    t = boxes_table([(0.1, 0.2, 3.7, 9.9)] * 2, [0, 0])
    assert len(mb(iou=1.0, min_boxes=2).check(t, backend=backend)) == 2


def test_same_frame_number_in_two_streams_does_not_mix(backend):
    # the same track ids and frame numbers in two videos: boxes only group within one video
    t = boxes_table([A, B, A, B], [7, 7, 7, 7], streams=["v1", "v1", "v2", "v2"], stream_type=pa.string())
    t = t.append_column("track", pa.array([1, 2, 1, 2]))
    assert len(mb(iou=0.5, min_boxes=3).check(t, backend=backend)) == 0
    r = mb(iou=0.5, min_boxes=2).check(t, backend=backend)
    assert groups(r) == {frozenset({0, 1}): 1.0, frozenset({2, 3}): 1.0}
    # without the stream column the four boxes are one frame
    assert groups(mb(iou=0.5, min_boxes=3).check(t.drop_columns(["stream"]), backend=backend)) == {
        frozenset({0, 1, 2, 3}): 1.0}


@pytest.mark.parametrize("typ", [pa.timestamp("ms"), pa.timestamp("ns", tz="UTC"), pa.duration("us"),
                                 pa.date32(), pa.int32(), pa.uint16()])
def test_frame_as_timestamp_or_other_integer(backend, typ):
    if pa.types.is_date32(typ):
        frames = [datetime.date(2024, 1, 2)] * 2 + [datetime.date(2024, 1, 3)]
    elif pa.types.is_timestamp(typ):
        frames = [datetime.datetime(2024, 1, 2, 3, 4, 5)] * 2 + [datetime.datetime(2024, 1, 2, 3, 4, 6)]
    elif pa.types.is_duration(typ):
        frames = [datetime.timedelta(seconds=1)] * 2 + [datetime.timedelta(seconds=2)]
    else:
        frames = [40, 40, 41]
    t = boxes_table([A, B, A], frames, frame_type=typ)
    r = mb(iou=0.5, min_boxes=2).check(t, backend=backend)
    assert groups(r) == {frozenset({0, 1}): 1.0}
    want = pc.cast(pc.cast(t["frame"], pa.int32()) if pa.types.is_date32(typ) else t["frame"], pa.int64())
    assert r.violations["frame"].to_pylist() == want.to_pylist()[:2]


def test_float_frames_are_rejected(backend):
    t = boxes_table([A, B], [0.0, 0.0], frame_type=pa.float64())
    with pytest.raises(tw.ColumnError) as e:
        mb().check(t, backend=backend)
    assert e.value.column == "frame" and "frame" in str(e.value)


@pytest.mark.parametrize("typ", [pa.float64(), pa.int32(), pa.int64(), pa.uint16()])
def test_other_coordinate_types_are_converted(backend, typ):
    boxes = [(0, 0, 10, 10), (1, 0, 11, 10), (0, 1, 10, 11), (300, 300, 310, 310)]
    t = boxes_table(boxes, [0] * 4, coord_type=typ)
    s = tw.Suite([tw.boxes.multibox(iou=0.5), tw.boxes.valid(width=100, height=100)])
    want = s.check(boxes_table(boxes, [0] * 4), backend="reference")
    assert_same_report(s.check(t, backend=backend), want)
    assert groups(want) == {frozenset({0, 1, 2}): 1.0}


def test_float64_rounding_to_float32(backend):
    # 10 + 1e-9 is 10 in float32: the boxes are identical after conversion
    t = boxes_table([(0, 0, 10, 10), (0, 0, 10 + 1e-9, 10)], [0, 0], coord_type=pa.float64())
    assert len(mb(iou=1.0, min_boxes=2).check(t, backend=backend)) == 2


def _renamed(t):
    return t.rename_columns([{"frame": "frame_idx", "x1": "left", "y1": "top", "x2": "right",
                             "y2": "bottom", "score": "conf", "stream": "video"}.get(c, c) for c in t.column_names])


@pytest.mark.parametrize("as_dict", [False, True])
def test_column_remapping(backend, as_dict):
    t = boxes_table([A, B, A, (0, 0, -1, 5)], [0, 0, 0, 0], streams=[1, 1, 2, 1], scores=[0.5, 0.75, 0.9, 2.0])
    names = dict(frame="frame_idx", x1="left", y1="top", x2="right", y2="bottom", score="conf", stream="video")
    cols = names if as_dict else tw.Boxes(**names)
    s = tw.Suite([tw.boxes.multibox(iou=0.5, min_boxes=2, columns=cols), tw.boxes.valid(columns=cols)])
    r = s.check(_renamed(t), backend=backend)
    want = tw.Suite([tw.boxes.multibox(iou=0.5, min_boxes=2), tw.boxes.valid()]).check(t, backend="reference")
    assert_same_report(r, want, ignore=tuple(names))  # (no corrections; their columns are named)
    assert groups(r) == {frozenset({0, 1}): 0.75}
    assert details(r)[3] == "x2 <= x1, score outside [0, 1]"
    assert s.assertions[0].columns() == ["frame_idx", "left", "top", "right", "bottom"]
    # the default names are not in the renamed table
    with pytest.raises(tw.ColumnError) as e:
        mb().check(_renamed(t), backend=backend)
    assert e.value.column == "frame"


def test_bad_columns_argument():
    for bad in (["frame"], "frame", 3):
        with pytest.raises(tw.InputError):
            tw.boxes.multibox(columns=bad)
    with pytest.raises(tw.InputError):
        tw.Boxes(frame=1)
    with pytest.raises(TypeError):
        tw.boxes.valid(columns={"nope": "x"})


@pytest.mark.parametrize("col", ["x1", "y2", "score"])
def test_string_coordinates_name_the_column(backend, col):
    t = boxes_table([A, B], [0, 0], scores=[0.5, 0.5])
    t = t.set_column(t.schema.get_field_index(col), col, pa.array(["1", "2"]))
    for a in (tw.boxes.multibox(), tw.boxes.valid()):
        with pytest.raises(tw.ColumnError) as e:
            tw.Suite([a]).check(t, backend=backend)
        assert e.value.column == col and repr(col) in str(e.value)
        assert "string" in str(e.value) and "fix" in str(e.value)


def test_missing_coordinate_column(backend):
    t = boxes_table([A], [0]).drop_columns(["y2"])
    with pytest.raises(tw.ColumnError) as e:
        tw.Suite([tw.boxes.valid()]).check(t, backend=backend)
    assert e.value.column == "y2"


@pytest.mark.parametrize("kwargs", [dict(iou=0), dict(iou=1.5), dict(iou=-0.1), dict(iou=NAN),
                                    dict(iou="0.5"), dict(iou=True), dict(min_boxes=1),
                                    dict(min_boxes=0), dict(min_boxes=2.0), dict(min_boxes=True)])
def test_bad_multibox_parameters(kwargs):
    with pytest.raises(tw.InputError) as e:
        tw.boxes.multibox(**kwargs)
    assert "expected" in str(e.value) and "fix" in str(e.value)


@pytest.mark.parametrize("kwargs", [dict(width=0), dict(width=-5), dict(height="480"), dict(height=True)])
def test_bad_valid_parameters(kwargs):
    with pytest.raises(tw.InputError):
        tw.boxes.valid(**kwargs)


def test_valid_reasons_in_detail(backend):
    boxes = [(0, 0, 10, 10),      # fine
             (5, 0, 5, 10),       # x2 <= x1
             (0, 6, 10, 2),       # y2 <= y1
             (3, 3, 1, 1),        # both
             (-1, 0, 10, 10),     # outside (left)
             (0, 0, 641, 10),     # outside (right)
             (0, 0, 10, 481),     # outside (bottom)
             (0, 0, 640, 480),    # exactly the image: fine
             (NAN, 0, 10, 10),    # non-finite
             (0, 0, 10, 10),      # score 1.5
             (0, 0, 10, 10),      # score NaN
             (0, 0, 10, 10),      # null score: fine
             (700, 0, 650, 10),   # x order + outside + score -0.1
             ]
    scores = [0.5] * 9 + [1.5, NAN, None, -0.1]
    t = boxes_table(boxes, [0] * len(boxes), scores=scores)
    r = tw.Suite([tw.boxes.valid(width=640, height=480)]).check(t, backend=backend)
    assert details(r) == {
        1: "x2 <= x1", 2: "y2 <= y1", 3: "x2 <= x1, y2 <= y1", 4: "outside the image",
        5: "outside the image", 6: "outside the image", 8: "non-finite or null coordinate",
        9: "score outside [0, 1]", 10: "score outside [0, 1]",
        12: "x2 <= x1, outside the image, score outside [0, 1]"}
    assert r.violations["event"].to_pylist() == list(range(10))
    assert set(r.violations["severity"].to_pylist()) == {1.0}
    # without image bounds nothing is outside
    r = tw.Suite([tw.boxes.valid()]).check(t, backend=backend)
    assert sorted(details(r)) == [1, 2, 3, 8, 9, 10, 12]
    # only one bound
    r = tw.Suite([tw.boxes.valid(height=480)]).check(t, backend=backend)
    assert sorted(details(r)) == [1, 2, 3, 6, 8, 9, 10, 12]


def test_valid_without_score_or_frame_column(backend):
    t = pa.table({"x1": [0.0, 5.0], "y1": [0.0, 0.0], "x2": [1.0, 1.0], "y2": [1.0, 1.0]})
    r = tw.Suite([tw.boxes.valid()]).check(t, backend=backend)
    assert details(r) == {1: "x2 <= x1"}


def test_null_coordinate_flagged_null_score_fine(backend):
    t = boxes_table([A, (0.0, None, 10.0, 10.0), A], [0, 0, 0], scores=[None, None, None])
    assert details(tw.Suite([tw.boxes.valid()]).check(t, backend=backend)) == {1: "non-finite or null coordinate"}


def test_severity_is_highest_score(backend):
    t = boxes_table([A, B, A, B, A], [0, 0, 0, 1, 1], scores=[0.2, None, 0.7, NAN, None])
    r = mb(iou=0.5, min_boxes=2).check(t, backend=backend)
    # frame 1: a NaN score and a null score: no usable score -> 1
    assert groups(r) == {frozenset({0, 1, 2}): pytest.approx(0.7), frozenset({3, 4}): 1.0}
    # a zero score still gives a positive severity
    t = boxes_table([A, B], [0, 0], scores=[0.0, 0.0])
    assert groups(mb(iou=0.5, min_boxes=2).check(t, backend=backend)) == {
        frozenset({0, 1}): pytest.approx(1e-6)}


def test_negative_scores_are_scores(backend):
    """The highest non-null score, at least 1e-6: negative scores clamp to 1e-6 (not 'no score')."""
    t = boxes_table([A, B], [0, 0], scores=[-0.5, -0.25])
    assert groups(mb(iou=0.5, min_boxes=2).check(t, backend=backend)) == {frozenset({0, 1}): pytest.approx(1e-6)}
    t = boxes_table([A, B], [0, 0], scores=[-0.5, None])
    assert groups(mb(iou=0.5, min_boxes=2).check(t, backend=backend)) == {frozenset({0, 1}): pytest.approx(1e-6)}


def test_large_random_frames_against_reference(fast_backend):
    rng = np.random.default_rng(11)
    n = 1500
    frames = rng.integers(0, 60, n)
    cx, cy = rng.integers(0, 5, n) * 30.0, rng.integers(0, 5, n) * 30.0
    x1 = (cx + rng.normal(0, 2, n)).astype(np.float32)
    y1 = (cy + rng.normal(0, 2, n)).astype(np.float32)
    t = pa.table({"stream": rng.integers(0, 3, n), "frame": frames, "x1": x1, "y1": y1,
                  "x2": x1 + np.float32(20), "y2": y1 + np.float32(25),
                  "score": pa.array(rng.random(n).astype(np.float32), mask=rng.random(n) < 0.2)})
    s = tw.Suite([tw.boxes.multibox(iou=0.5, min_boxes=3), tw.boxes.valid(width=130, height=140)])
    got = check_like_reference(s, t, fast_backend)
    assert len(got) > 0


# ----------------------------------------------------------------------------------------------
# tw.io.read_mot
# ----------------------------------------------------------------------------------------------
def test_read_mot_ten_columns(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("1,3,113.84,274.5,57.307,130.05,-1,-1,-1,-1\n"
                 "1,6,273.05,203.83,77.366,175.56,0.75,-1,-1,-1\n"
                 "2,3,10,20,5,6,1,-1,-1,-1\n")
    t = tw.io.read_mot(p)
    assert t.column_names == ["frame", "track", "cls", "score", "x1", "y1", "x2", "y2"]
    assert [f.type for f in t.schema] == [pa.int64(), pa.int64(), pa.int32()] + [pa.float32()] * 5
    assert t["frame"].to_pylist() == [1, 1, 2] and t["track"].to_pylist() == [3, 6, 3]
    assert t["cls"].to_pylist() == [1, 1, 1]
    assert t["score"].to_pylist() == [None, 0.75, 1.0]
    f32 = np.float32
    assert t["x1"].to_pylist() == [f32(113.84), f32(273.05), 10.0]
    assert t["x2"].to_pylist() == [f32(f32(113.84) + f32(57.307)), f32(f32(273.05) + f32(77.366)), 15.0]
    assert t["y2"].to_pylist() == [f32(f32(274.5) + f32(130.05)), f32(f32(203.83) + f32(175.56)), 26.0]
    # the table is a boxes table
    r = tw.Suite([tw.boxes.multibox(), tw.boxes.valid(width=640, height=480)]).check(t)
    assert len(r) == 0


def test_read_mot_seven_columns(tmp_path):
    p = tmp_path / "det.txt"
    p.write_text("5,-1,1,2,3,4,0.5\n6,-1,0,0,10,10,-1\n")
    t = tw.io.read_mot(str(p))
    assert t.num_rows == 2 and t["track"].to_pylist() == [-1, -1]
    assert t["score"].to_pylist() == [0.5, None]
    assert t["x1"].to_pylist() == [1.0, 0.0] and t["x2"].to_pylist() == [4.0, 10.0]
    assert t["y1"].to_pylist() == [2.0, 0.0] and t["y2"].to_pylist() == [6.0, 10.0]


def test_read_mot_empty_file(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text("")
    try:
        t = tw.io.read_mot(p)
    except tw.InputError:
        return
    assert t.num_rows == 0


@pytest.mark.parametrize("text", ["a,b,c\n1,2,3\n", "frame,id,left,top,width,height,conf\n1,2,3,4,5,6,7\n",
                                  "1,2,3,x,5,6,7\n", "1 2 3 4 5 6 7\n"])
def test_read_mot_rejects_other_files(tmp_path, text):
    p = tmp_path / "other.csv"
    p.write_text(text)
    with pytest.raises(tw.InputError) as e:
        tw.io.read_mot(p)
    assert "fix" in str(e.value)


def test_read_mot_missing_file(tmp_path):
    with pytest.raises(tw.InputError):
        tw.io.read_mot(tmp_path / "nope.txt")
    with pytest.raises(tw.InputError):
        tw.io.read_mot(tmp_path)  # a folder


def _same_boxes(t, ref):
    assert t["frame"].to_pylist() == ref["frame"].to_pylist()
    assert t["track"].to_pylist() == ref["id"].to_pylist()
    assert t["score"].null_count == t.num_rows == ref["score"].null_count
    for c in ("x1", "y1"):
        assert t[c].to_pylist() == ref[c].to_pylist(), c


def test_read_mot_round_trips_bundled_tud_campus(tmp_path):
    ref = pq.read_table(os.path.join(TUD, "tracker.parquet"))
    lines = []
    for r in ref.to_pylist():
        # width = x2 - x1 exactly (float64 difference of float32 values), printed to round-trip
        w, h = r["x2"] - r["x1"], r["y2"] - r["y1"]
        lines.append(f"{r['frame']},{r['id']},{r['x1']!r},{r['y1']!r},{w!r},{h!r},-1,-1,-1,-1")
    p = tmp_path / "tracker.txt"
    p.write_text("\n".join(lines) + "\n")
    t = tw.io.read_mot(p)
    assert t.num_rows == ref.num_rows == 222
    _same_boxes(t, ref)
    for c in ("x2", "y2"):  # left + width in double, rounded once to float32: exact
        assert t[c].to_pylist() == ref[c].to_pylist(), c


@pytest.mark.skipif(not os.path.isfile(MOT_TEST_TXT), reason="motmetrics' TUD-Campus test.txt not unpacked")
def test_read_mot_matches_bundled_parquet():
    t = tw.io.read_mot(MOT_TEST_TXT)
    ref = pq.read_table(os.path.join(TUD, "tracker.parquet"))
    _same_boxes(t, ref)
    for c in ("x2", "y2"):
        assert t[c].to_pylist() == ref[c].to_pylist(), c


def test_tud_campus_suite(backend):
    ref = pq.read_table(os.path.join(TUD, "tracker.parquet"))
    s = tw.Suite([tw.boxes.multibox(iou=0.3, min_boxes=2), tw.boxes.valid(width=640, height=480)])
    check_like_reference(s, ref, backend)


# ----------------------------------------------------------------------------------------------
# registry and TOML
# ----------------------------------------------------------------------------------------------
def test_registered_kinds():
    assert {"boxes.multibox", "boxes.valid"} <= set(tw.kinds())


def test_from_toml(backend):
    suite = tw.Suite.from_toml("""
[[assertion]]
kind = "boxes.multibox"
iou = 0.5
min_boxes = 2

[[assertion]]
kind = "boxes.valid"
name = "sane_boxes"
width = 640
height = 480
""")
    assert [a.kind for a in suite] == ["boxes.multibox", "boxes.valid"]
    assert suite.assertions[0].params() == {"iou": 0.5, "min_boxes": 2}
    assert suite.assertions[1].name == "sane_boxes"
    assert suite.assertions[1].params() == {"width": 640, "height": 480}
    t = boxes_table([A, B, (600, 0, 650, 10)], [0, 0, 0])
    r = suite.check(t, backend=backend)
    assert groups(r) == {frozenset({0, 1}): 1.0} and details(r)[2] == "outside the image"
    by_hand = tw.Suite([tw.boxes.multibox(iou=0.5, min_boxes=2),
                        tw.boxes.valid(width=640, height=480, name="sane_boxes")]).check(t, backend=backend)
    assert r.violations.equals(by_hand.violations)


def test_from_toml_default_and_bad_parameters():
    s = tw.Suite.from_toml('[[assertion]]\nkind = "boxes.multibox"\niou = 0.5\n')
    assert s.assertions[0].params() == {"iou": 0.5, "min_boxes": 3}
    with pytest.raises(tw.TripwireError):
        tw.Suite.from_toml('[[assertion]]\nkind = "boxes.multibox"\niou = 1.5\n')
    with pytest.raises(tw.TripwireError):
        tw.Suite.from_toml('[[assertion]]\nkind = "boxes.multibox"\nthreshold = 0.5\n')


# ----------------------------------------------------------------------------------------------
# boxes.class_consistency
# ----------------------------------------------------------------------------------------------
@st.composite
def _tracks(draw):
    n = draw(st.integers(0, 40))
    streams = draw(st.lists(st.sampled_from(["cam0", "cam1", None]), min_size=n, max_size=n))
    tracks = draw(st.lists(st.one_of(st.integers(0, 5), st.none()), min_size=n, max_size=n))
    classes = draw(st.lists(st.sampled_from(["car", "truck", "bus", None]), min_size=n, max_size=n))
    with_stream = draw(st.booleans())
    cols = {"frame": pa.array(range(n), pa.int64()), "track": pa.array(tracks, pa.int64()),
            "cls": pa.array(classes, pa.string())}
    if with_stream:
        cols["stream"] = pa.array(streams, pa.string())
    return pa.table(cols)


@pytest.mark.families("rows")  # boxes.class_consistency runs on rows.consistent
@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=_tracks())
def test_class_consistency_matches_reference(fast_backend, table):
    got = check_like_reference(tw.Suite([tw.boxes.class_consistency()]), table, fast_backend)
    # the same as rows.consistent(flag="minority") keyed by an explicit (stream, track) column
    if "stream" in table.column_names:
        key = pc.binary_join_element_wise(table["stream"], pc.cast(table["track"], pa.string()), "/")
    else:
        key = table["track"]
    keyed = table.append_column("key_", key)
    want = tw.Suite([tw.rows.consistent(id="key_", attr="cls", flag="minority")]).check(keyed, backend=fast_backend)
    for col in ("row", "event", "severity"):
        assert got.violations.column(col).to_pylist() == want.violations.column(col).to_pylist(), col
    assert got.apply().column("cls").to_pylist() == want.apply().column("cls").to_pylist()


@pytest.mark.families("rows")  # boxes.class_consistency runs on rows.consistent
def test_class_consistency_tracks_reused_across_streams(backend):
    t = pa.table({"stream": ["a"] * 5 + ["b"] * 3, "frame": [1, 2, 3, 4, 5, 1, 2, 3],
                  "track": [7, 7, 7, 7, 8, 7, 7, 7],
                  "cls": ["car", "car", "truck", "car", None, "bus", "bus", "bus"]})
    r = tw.Suite([tw.boxes.class_consistency()]).check(t, backend=backend)
    v = r.violations.to_pylist()
    assert [(x["row"], x["event"], x["severity"], x["key"], x["stream"], x["frame"]) for x in v] == \
        [(2, 0, 0.25, "7", "a", 3)]
    assert r.corrections().select(["action", "row", "cls"]).to_pylist() == [{"action": "relabel", "row": 2, "cls": "car"}]
    assert r.apply().column("cls").to_pylist() == ["car", "car", "car", "car", None, "bus", "bus", "bus"]


@pytest.mark.families("rows")  # boxes.class_consistency runs on rows.consistent
def test_class_consistency_null_track_and_null_class(backend):
    t = pa.table({"track": pa.array([1, 1, 1, None, None], pa.int64()),
                  "cls": pa.array([0, None, 0, 1, 2], pa.int32())})
    r = tw.Suite([tw.boxes.class_consistency()]).check(t, backend=backend)
    # null track rows are not a track; a null class differs from 0 and is relabelled to 0
    assert r.violations.column("row").to_pylist() == [1]
    assert r.apply().column("cls").to_pylist() == [0, 0, 0, 1, 2]


def test_class_consistency_remapped_columns_and_missing_column():
    t = pa.table({"tid": [1, 1], "label": ["a", "b"]})
    r = tw.Suite([tw.boxes.class_consistency(columns=tw.Boxes(track="tid", cls="label"))]).check(t)
    assert len(r.violations) == 1
    with pytest.raises(tw.ColumnError, match="track"):
        tw.Suite([tw.boxes.class_consistency()]).check(t)
    assert "boxes.class_consistency" in tw.kinds()
