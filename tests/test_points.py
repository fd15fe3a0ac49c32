"""points.agree / empty_box / size_prior / multibox: every backend against the plain-loop
reference on Hypothesis-generated scenes, and the issue's edge cases by hand (boxes behind the
camera, straddling the near plane, partly outside the image, yaw near +-pi, zero-size boxes,
points exactly on faces, empty point clouds, frames without camera boxes, several streams and
cameras)."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
import tripwire._dispatch as _dispatch
import reference
from reference import LAYOUTS, assert_same_table, make_table

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAN, INF = float("nan"), float("inf")

# a camera looking along LIDAR +x: camera x = -LIDAR y, camera y = -LIDAR z, camera z = LIDAR x
T_FORWARD = [0, -1, 0, 0, 0, 0, -1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
# ... and one looking along LIDAR -y (to the right): camera z = -LIDAR y, camera x = LIDAR x
T_RIGHT = [1, 0, 0, 0, 0, 0, -1, 0, 0, -1, 0, 0, 0, 0, 0, 1]
K = [700, 0, 640, 0, 700, 360, 0, 0, 1]
W, H = 1280, 720
BOX3_COLS = ("cx", "cy", "cz", "l", "w", "h", "yaw")


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _col(values, typ):
    return lambda v: pa.array(v, typ)


def boxes3d(rows, *, streams=None, cls=None, scores=None, layout="plain", splits=(1, 2), coord_type=pa.float32()):
    """``rows``: [(frame, cx, cy, cz, l, w, h, yaw)] (a value may be None)."""
    cols = {"frame": ([r[0] for r in rows], _col(None, pa.int64()), 0)}
    for j, name in enumerate(BOX3_COLS):
        cols[name] = ([r[j + 1] for r in rows], _col(None, coord_type), 0.0)
    if streams is not None:
        cols["stream"] = (streams, _col(None, pa.string()), "s")
    if cls is not None:
        cols["cls"] = (cls, _col(None, pa.string()), "car")
    if scores is not None:
        cols["score"] = (scores, _col(None, pa.float32()), 0.5)
    return make_table(cols, layout, splits)


def points(rows, *, streams=None, layout="plain", splits=(1, 2)):
    """``rows``: [(frame, x, y, z)]."""
    cols = {"frame": ([r[0] for r in rows], _col(None, pa.int64()), 0)}
    for j, name in enumerate("xyz"):
        cols[name] = ([r[j + 1] for r in rows], _col(None, pa.float32()), 0.0)
    if streams is not None:
        cols["stream"] = (streams, _col(None, pa.string()), "s")
    return make_table(cols, layout, splits)


def camera_boxes(rows, *, streams=None, cameras=None, layout="plain", splits=(1, 2)):
    """``rows``: [(frame, x1, y1, x2, y2)]."""
    cols = {"frame": ([r[0] for r in rows], _col(None, pa.int64()), 0)}
    for j, name in enumerate(("x1", "y1", "x2", "y2")):
        cols[name] = ([r[j + 1] for r in rows], _col(None, pa.float32()), 0.0)
    if streams is not None:
        cols["stream"] = (streams, _col(None, pa.string()), "s")
    if cameras is not None:
        cols["camera"] = (cameras, _col(None, pa.string()), "c")
    if not rows:
        return pa.table({k: b([]) for k, (_, b, _) in cols.items()})
    return make_table(cols, layout, splits)


def calib(*cams, streams=None, cameras=None):
    """``cams``: (K, T) pairs."""
    t = {"K": pa.array([list(map(float, k)) for k, _ in cams], pa.list_(pa.float64(), 9)),
         "T": pa.array([list(map(float, x)) for _, x in cams], pa.list_(pa.float64())),
         "width": [W] * len(cams), "height": [H] * len(cams)}
    if streams is not None:
        t["stream"] = streams
    if cameras is not None:
        t["camera"] = cameras
    return pa.table(t)


def assert_same(got, want, tables=("boxes3d", "boxes"), context=""):
    """Same violations (severity within float32 rounding) and the same corrections per table."""
    cols = want.violations.column_names
    assert_same_table(got.violations.select(cols), want.violations.select(cols), float_columns=("severity",),
                      context=context)
    for t in tables:
        if t in want.inputs:
            assert_same_table(got.corrections(table=t), want.corrections(table=t),
                              float_columns=("x1", "y1", "x2", "y2"), context=f"{context} corrections {t}")


def flagged(report, kind=None):
    v = report.violations
    out = []
    for r in v.to_pylist():
        if kind is None or r["kind"] == kind:
            out.append((r["table"], r["row"], r["event"], round(r["severity"], 5)))
    return out


def empty_suite(min_points=3):
    return tw.Suite([tw.points.empty_box(min_points=min_points)])


# ----------------------------------------------------------------------------------------------
# property: fast backends == reference
# ----------------------------------------------------------------------------------------------
_YAWS = st.sampled_from([0.0, 0.0, 0.3, -1.2, math.pi / 2, math.pi, -math.pi, 3.1415925, -3.1415925, 7.0])
_DIMS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.0, 4.0])
_POS = st.sampled_from([-6.0, -1.0, 0.0, 0.5, 1.0, 3.0, 8.0, 25.0])


@st.composite
def a_box(draw, frames, odd):
    box = [draw(frames), draw(_POS), draw(_POS), draw(st.sampled_from([-1.0, 0.0, 0.5])), draw(_DIMS), draw(_DIMS),
           draw(_DIMS), draw(_YAWS)]
    if odd and draw(st.integers(0, 6)) == 0:
        box[draw(st.integers(1, 7))] = draw(st.sampled_from([NAN, INF, None, -1.0, 1e6]))
    return tuple(box)


@st.composite
def scenes(draw):
    n_frames = draw(st.integers(1, 3))
    frames = st.integers(0, n_frames - 1)
    odd = draw(st.booleans())
    b3 = draw(st.lists(a_box(frames, odd), min_size=0, max_size=10))
    # points: some on faces and corners of the boxes (the edge that float rounding decides), some random
    pts = []
    for _ in range(draw(st.integers(0, 60))):
        if b3 and draw(st.booleans()):
            f, cx, cy, cz, l, w, h, yaw = draw(st.sampled_from(b3))
            if any(v is None or not math.isfinite(v) for v in (cx, cy, cz, l, w, h, yaw)):
                continue
            sx, sy, sz = (draw(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0, 1.01])) for _ in range(3))
            ox, oy = sx * l / 2, sy * w / 2
            c, s = math.cos(yaw), math.sin(yaw)
            pts.append((f, cx + c * ox - s * oy, cy + s * ox + c * oy, cz + sz * h / 2))
        else:
            pts.append((draw(frames), draw(_POS) + draw(st.sampled_from([0.0, 0.25])), draw(_POS),
                        draw(st.sampled_from([-1.0, 0.0, 0.3, NAN]))))
    n2 = draw(st.integers(0, 6))
    b2 = []
    for _ in range(n2):
        x1, y1 = draw(st.sampled_from([0.0, 300.0, 560.0, 600.0, 1200.0])), draw(st.sampled_from([0.0, 200.0, 300.0]))
        b2.append((draw(frames), x1, y1, x1 + draw(st.sampled_from([10.0, 80.0, 200.0, 700.0])),
                   y1 + draw(st.sampled_from([10.0, 100.0, 400.0]))))
    with_streams = draw(st.booleans())
    return dict(
        b3=b3, pts=pts, b2=b2,
        s3=[draw(st.sampled_from(["a", "b"])) for _ in b3] if with_streams else None,
        sp=[draw(st.sampled_from(["a", "b"])) for _ in pts] if with_streams else None,
        s2=[draw(st.sampled_from(["a", "b"])) for _ in b2] if with_streams else None,
        cls=[draw(st.sampled_from(["car", "pedestrian", "truck", "bus", None])) for _ in b3],
        scores=[draw(st.sampled_from([0.1, 0.5, 0.9, None])) for _ in b3],
        layout=draw(st.sampled_from(LAYOUTS)), splits=(draw(st.integers(0, 10)), draw(st.integers(0, 10))),
        iou=draw(st.sampled_from([0.05, 0.3, 0.5, 1.0])), min_points=draw(st.sampled_from([1, 2, 3, 10])),
        near=draw(st.sampled_from([0.1, 1.0])))


def scene_inputs(case):
    kw = dict(layout=case["layout"], splits=case["splits"])
    t3 = boxes3d(case["b3"], streams=case["s3"], cls=case["cls"], scores=case["scores"], **kw) if case["b3"] \
        else boxes3d([], streams=case["s3"], cls=[], scores=[])
    tp = points(case["pts"], streams=case["sp"], **kw) if case["pts"] else points([], streams=case["sp"])
    t2 = camera_boxes(case["b2"], streams=case["s2"], **kw)
    cal = calib((K, T_FORWARD))
    return dict(boxes3d=t3, points=tp, calib=cal, boxes=t2)


def scene_suite(case):
    return tw.Suite([tw.points.empty_box(min_points=case["min_points"]), tw.points.size_prior(),
                     tw.points.agree(iou=case["iou"], near=case["near"]),
                     tw.points.multibox(iou=case["iou"], min_boxes=2)])


@PROPERTY
@given(case=scenes())
def test_matches_reference(fast_backend, case):
    s, inputs = scene_suite(case), scene_inputs(case)
    got = s.check(**inputs, backend=fast_backend)
    want = s.check(**inputs, backend="reference")
    assert_same(got, want, context=f"{fast_backend} vs reference")
    assert_valid(got)


def assert_valid(report):
    """Report invariants; agree's rows are ordered (event, table, row)."""
    for a, r in report.results:
        assert r.rows.dtype == np.int64 and r.events.dtype == np.int64 and r.severity.dtype == np.float32
        if not len(r.rows):
            continue
        assert sorted(set(r.events.tolist())) == list(range(r.n_events))
        assert (r.severity > 0).all()
        tables = r.context_arrays().get("table")
        side = [0] * len(r.rows) if tables is None else [a.roles.index(
            next(k for k, v in a.tables.items() if v == t)) for t in tables.to_pylist()]
        keys = list(zip(r.events.tolist(), side, r.rows.tolist()))
        assert keys == sorted(set(keys)), f"{a.name}: violations not in (event, table, row) order"


def test_count_chunks_and_threads_do_not_change_counts():
    """The Cython kernel cuts a frame's points into chunks counted by several threads."""
    from tripwire._kernels import _points_cy

    rng = np.random.default_rng(3)
    n, nb = 5000, 30
    p = [rng.uniform(-10, 10, n).astype(np.float32) for _ in range(2)] + [rng.uniform(-1, 1, n).astype(np.float32)]
    b = [rng.uniform(-9, 9, nb), rng.uniform(-9, 9, nb), np.zeros(nb), rng.uniform(0, 5, nb), rng.uniform(0, 3, nb),
         np.full(nb, 1.5), rng.uniform(-4, 4, nb)]
    b = [np.ascontiguousarray(v, np.float32) for v in b]
    args = (np.array([0, 2000], np.int64), np.array([2000, 5000], np.int64), *b, np.array([0, 12, 30], np.int64))
    one = _points_cy.count_in_boxes(*p, *args, 1 << 20)
    many = _points_cy.count_in_boxes(*p, *args, 7)
    import reference

    assert one.tolist() == many.tolist() == reference.count_in_boxes(*p, *args, 7).tolist()
    assert one.sum() > 0


# ----------------------------------------------------------------------------------------------
# empty_box
# ----------------------------------------------------------------------------------------------
def test_points_exactly_on_faces_and_corners_count(backend):
    b3 = boxes3d([(0, 10, 0, 0, 4, 2, 2, 0)])
    pts = points([(0, 8, 0, 0), (0, 12, 0, 0), (0, 10, -1, 0), (0, 10, 1, 1), (0, 12, 1, 1), (0, 8, -1, -1),
                  (0, 12.000001, 0, 0), (0, 10, 1.000001, 0), (0, 10, 0, 1.000001)])
    assert tw.points.count_in_boxes(b3, pts, backend=backend).to_pylist() == [6]
    r = empty_suite(7).check(boxes3d=b3, points=pts, backend=backend)
    assert flagged(r) == [("boxes3d", 0, 0, round(1 - 6 / 7, 5))]
    assert r.violations["points"].to_pylist() == [6]


def test_yaw_near_pi_is_the_same_box_turned_around(backend):
    inner = [(0, 10 + dx, dy, 0) for dx in (-1.9, -0.5, 0, 1.2, 1.9) for dy in (-0.9, 0, 0.9)]
    outer = [(0, 10 + dx, dy, 0) for dx in (-2.1, 2.1) for dy in (0,)] + [(0, 10, 1.1, 0)]
    pts = points(inner + outer)
    yaws = [0.0, math.pi, -math.pi, 3.1415925, -3.1415925, math.pi - 1e-3, 2 * math.pi]
    b3 = boxes3d([(0, 10, 0, 0, 4, 2, 2, y) for y in yaws])
    assert tw.points.count_in_boxes(b3, pts, backend=backend).to_pylist() == [len(inner)] * len(yaws)
    # a quarter turn: the long side along y
    b3 = boxes3d([(0, 10, 0, 0, 4, 2, 2, math.pi / 2)])
    pts = points([(0, 10, 1.9, 0), (0, 10, -1.9, 0), (0, 10.9, 0, 0), (0, 11.5, 0, 0)])
    assert tw.points.count_in_boxes(b3, pts, backend=backend).to_pylist() == [3]


def test_zero_size_boxes_hold_only_their_centre(backend):
    b3 = boxes3d([(0, 1, 2, 3, 0, 0, 0, 0), (0, 1, 2, 3, 0, 0, 0, 0.7), (0, 5, 5, 0, 2, 0, 2, 0)])
    pts = points([(0, 1, 2, 3), (0, 1, 2, 3.0001), (0, 5, 5, 0), (0, 5.5, 5, 0), (0, 5, 5.001, 0)])
    assert tw.points.count_in_boxes(b3, pts, backend=backend).to_pylist() == [1, 1, 2]


def test_empty_point_cloud_flags_every_box(backend):
    b3 = boxes3d([(0, 1, 2, 3, 4, 2, 2, 0), (1, 0, 0, 0, 1, 1, 1, 0)])
    r = empty_suite(5).check(boxes3d=b3, points=points([]), backend=backend)
    assert flagged(r) == [("boxes3d", 0, 0, 1.0), ("boxes3d", 1, 1, 1.0)]
    assert r.corrections(table="boxes3d")["action"].to_pylist() == ["remove", "remove"]
    assert r.apply(table="boxes3d").num_rows == 0


def test_points_count_only_in_their_own_frame_and_stream(backend):
    b3 = boxes3d([(0, 0, 0, 0, 2, 2, 2, 0), (1, 0, 0, 0, 2, 2, 2, 0), (0, 0, 0, 0, 2, 2, 2, 0)],
                 streams=["a", "a", "b"])
    pts = points([(0, 0, 0, 0), (0, 0.5, 0, 0), (1, 0, 0, 0), (0, 0, 0, 0)], streams=["a", "a", "a", "b"])
    assert tw.points.count_in_boxes(b3, pts, backend=backend).to_pylist() == [2, 1, 1]
    # unsorted points and boxes: the same counts
    assert tw.points.count_in_boxes(b3.take([2, 0, 1]), pts.take([3, 2, 0, 1]), backend=backend).to_pylist() \
        == [1, 2, 1]


def test_null_and_non_finite_values(backend):
    b3 = boxes3d([(0, 0, 0, 0, 2, 2, 2, 0), (0, None, 0, 0, 2, 2, 2, 0), (0, 0, 0, 0, NAN, 2, 2, 0),
                  (None, 0, 0, 0, 2, 2, 2, 0), (0, 0, 0, 0, 2, 2, 2, INF)])
    pts = points([(0, 0, 0, 0), (0, None, 0, 0), (0, NAN, 0, 0), (None, 0, 0, 0), (0, 0.5, 0.5, 0.5)])
    got = tw.points.count_in_boxes(b3, pts, backend=backend).to_pylist()
    assert got == [2, 0, 0, None, 0]  # the box with a null frame is not checked
    r = empty_suite(1).check(boxes3d=b3, points=pts, backend=backend)
    assert [f[1] for f in flagged(r)] == [1, 2, 4]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_give_the_same_counts(backend, layout):
    rows3 = [(f, x, 0, 0, 2, 2, 2, 0.3) for f in range(3) for x in (0, 5, 10)]
    rowsp = [(f, x + d, d, 0) for f in range(3) for x in (0, 5, 10) for d in (-0.4, 0.2, 0.9) if (x + f) % 10]
    want = tw.points.count_in_boxes(boxes3d(rows3), points(rowsp), backend=backend).to_pylist()
    got = tw.points.count_in_boxes(boxes3d(rows3, layout=layout, splits=(2, 5)),
                                   points(rowsp, layout=layout, splits=(4, 11)), backend=backend).to_pylist()
    assert got == want and sum(want) > 0


def test_given_counts_need_no_points_table(backend):
    t = pa.table({"frame": [0, 0, 1, None], "num_lidar_pts": pa.array([0, 9, None, 1], pa.int32())})
    s = tw.Suite([tw.points.empty_box(min_points=4, counts="num_lidar_pts")])
    for r, name in ((s.check(t, backend=backend), "rows"), (s.check(boxes3d=t, backend=backend), "boxes3d")):
        assert flagged(r) == [(name, 0, 0, 1.0)]  # null count and null frame: not checked
        assert r.violations["points"].to_pylist() == [0]


@PROPERTY
@given(counts=st.lists(st.integers(-3, 12), max_size=80), nulls=st.lists(st.booleans(), max_size=80),
       min_points=st.integers(1, 10))
def test_few_points_kernel_matches_reference(fast_backend, counts, nulls, min_points):
    c = np.array(counts, np.int64)
    valid = np.array([not x for x in (nulls + [False] * len(c))[:len(c)]], np.uint8) if nulls else np.empty(0, np.uint8)
    want = reference.few_points(c, valid, min_points)
    got = _dispatch.kernels("points", fast_backend).few_points(c, valid, min_points)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_few_points_across_the_kernels_blocks(fast_backend):
    # long enough for several blocks (and threads): low counts at block edges, in the 8-wide
    # tail, with nulls among them; rows must come back in order
    n = 5 * (1 << 18) + 3
    c = np.full(n, 50, np.int64)
    low = np.array([0, 7, 8, (1 << 18) - 1, 1 << 18, 3 * (1 << 18) + 5, n - 3, n - 1])
    c[low] = np.arange(len(low)) - 2
    valid = np.ones(n, np.uint8)
    valid[low[2]] = 0
    for v in (valid, np.empty(0, np.uint8)):
        want = reference.few_points(c, v, 40)
        got = _dispatch.kernels("points", fast_backend).few_points(c, v, 40)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


# ----------------------------------------------------------------------------------------------
# agree
# ----------------------------------------------------------------------------------------------
def agree_check(b3, b2, cal=None, backend="cython", **kw):
    return tw.Suite([tw.points.agree(**kw)]).check(boxes3d=b3, calib=cal or calib((K, T_FORWARD)), boxes=b2,
                                                   backend=backend)


def imputed(report):
    c = report.corrections(table="boxes")
    return [tuple(round(v, 2) for v in row) for row in zip(*(c[k].to_pylist() for k in ("x1", "y1", "x2", "y2")))]


def test_box_ahead_matches_its_camera_box(backend):
    # a 4 x 2 x 2 box 10 m ahead: x in [8, 12], y in [-1, 1], z in [-1, 1]
    b3 = boxes3d([(0, 10, 0, 0, 4, 2, 2, 0)])
    r = agree_check(b3, camera_boxes([(0, 540, 260, 740, 460)]), backend=backend)
    assert len(r) == 0
    r = agree_check(b3, camera_boxes([]), backend=backend)
    assert flagged(r) == [("boxes3d", 0, 0, 1.0)]
    # the expected box: nearest face (x = 8) spans 640 +- 700/8 both ways
    assert imputed(r) == [(552.5, 272.5, 727.5, 447.5)]
    assert r.violations["detail"].to_pylist() == ["3D box without a camera box"]


def test_box_behind_the_camera_is_not_expected(backend):
    b3 = boxes3d([(0, -10, 0, 0, 4, 2, 2, 0), (0, -0.05, 0, 0, 0.09, 2, 2, 0)])  # wholly behind / before near
    r = agree_check(b3, camera_boxes([]), backend=backend)
    assert len(r) == 0
    # a camera box where the mirrored (wrong) projection of the box behind would land is unmatched
    r = agree_check(b3, camera_boxes([(0, 552.5, 272.5, 727.5, 447.5)]), backend=backend)
    assert flagged(r) == [("boxes", 0, 0, 1.0)]


def test_box_straddling_the_near_plane_is_clipped_not_mirrored(backend):
    # x (camera depth) in [-1, 5], 1 m wide and high, straight ahead: the part in front of the
    # plane z = 0.1 spans 640 +- 700 * 0.5 / 0.1 -> the whole image; projecting the corners
    # behind the camera (z = -1) would give the mirrored box 290..990 x 10..710
    b3 = boxes3d([(0, 2, 0, 0, 6, 1, 1, 0)])
    r = agree_check(b3, camera_boxes([]), backend=backend)
    assert imputed(r) == [(0.0, 0.0, 1280.0, 720.0)]
    r = agree_check(b3, camera_boxes([(0, 290, 10, 990, 710)]), backend=backend, iou=0.6)
    assert sorted(f[0] for f in flagged(r)) == ["boxes", "boxes3d"]
    r = agree_check(b3, camera_boxes([(0, 0, 0, 1280, 720)]), backend=backend)
    assert len(r) == 0
    # a nearer plane widens the cross-section: still the whole image; a farther one narrows it
    r = agree_check(b3, camera_boxes([]), backend=backend, near=2.0)
    assert imputed(r) == [(465.0, 185.0, 815.0, 535.0)]


def test_box_partly_outside_the_image_is_clipped(backend):
    # 10 m ahead, 8 m to the left (LIDAR +y is left, image u grows to the right):
    # u = 640 - 700 * (8 +- 1) / (10 -+ 2) reaches below 0
    b3 = boxes3d([(0, 10, 8, 0, 4, 2, 2, 0), (0, 10, 40, 0, 4, 2, 2, 0)])  # the second is wholly outside
    r = agree_check(b3, camera_boxes([]), backend=backend)
    (x1, y1, x2, y2), = imputed(r)
    assert x1 == 0.0 and x2 == round(640 - 700 * 7 / 12, 2) and (y1, y2) == (272.5, 447.5)
    assert flagged(r) == [("boxes3d", 0, 0, 1.0)]


def test_frames_without_camera_boxes_and_greedy_matching(backend):
    b3 = boxes3d([(0, 10, 0, 0, 4, 2, 2, 0), (0, 10, -3, 0, 4, 2, 2, 0), (1, 10, 0, 0, 4, 2, 2, 0),
                  (2, 20, 0, 0, 4, 2, 2, 0)])
    b2 = camera_boxes([(0, 552.5, 272.5, 727.5, 447.5), (0, 560, 272.5, 727.5, 447.5), (2, 0, 0, 50, 50),
                       (3, 0, 0, 10, 10)])
    r = agree_check(b3, b2, backend=backend)
    # frame 0: the box ahead takes the exact camera box (highest IoU), the near-duplicate and
    # the box to the right go unmatched; frame 1: no camera box; frame 2: neither matches;
    # frame 3: a camera box without 3D boxes
    assert flagged(r) == [("boxes3d", 1, 0, 2.0), ("boxes", 1, 0, 2.0), ("boxes3d", 2, 1, 1.0),
                          ("boxes3d", 3, 2, 2.0), ("boxes", 2, 2, 2.0), ("boxes", 3, 3, 1.0)]
    assert r.violations["frame"].to_pylist() == [0, 0, 1, 2, 2, 3]
    fixed = r.apply(table="boxes")
    assert fixed.num_rows == 4 + 3 and fixed["frame"].to_pylist()[4:] == [0, 1, 2]


def test_several_streams_and_cameras(backend):
    # stream a has two cameras (ahead, right), stream b one (ahead); a box ahead and a box to the right
    b3 = boxes3d([(0, 10, 0, 0, 4, 2, 2, 0), (0, 0, -10, 0, 2, 4, 2, 0), (0, 10, 0, 0, 4, 2, 2, 0)],
                 streams=["a", "a", "b"])
    cal = calib((K, T_FORWARD), (K, T_RIGHT), (K, T_FORWARD), streams=["a", "a", "b"],
                cameras=["front", "right", "front"])
    ahead = (0, 552.5, 272.5, 727.5, 447.5)
    r = agree_check(b3, camera_boxes([ahead, ahead, ahead], streams=["a", "a", "b"],
                                     cameras=["front", "right", "front"]), cal, backend=backend)
    # the right camera sees the box on the right (row 1) at its own "ahead" spot: matched; the
    # front-camera box on stream a's right camera? no: row 1 of boxes is the right camera's
    assert len(r) == 0
    r = agree_check(b3, camera_boxes([ahead], streams=["b"], cameras=["front"]), cal, backend=backend)
    assert flagged(r) == [("boxes3d", 0, 0, 1.0), ("boxes3d", 1, 1, 1.0)]
    assert r.violations["camera"].to_pylist() == ["front", "right"]
    assert r.violations["stream"].to_pylist() == ["a", "a"]
    c = r.corrections(table="boxes")
    assert c["camera"].to_pylist() == ["front", "right"] and c["stream"].to_pylist() == ["a", "a"]


def test_calib_without_stream_applies_to_every_stream(backend):
    b3 = boxes3d([(0, 10, 0, 0, 4, 2, 2, 0), (0, 10, 0, 0, 4, 2, 2, 0)], streams=["a", "b"])
    r = agree_check(b3, camera_boxes([(0, 552.5, 272.5, 727.5, 447.5)], streams=["b"]), backend=backend)
    assert flagged(r) == [("boxes3d", 0, 0, 1.0)]


def test_agree_input_errors():
    b3 = boxes3d([(0, 10, 0, 0, 4, 2, 2, 0)], streams=["a"])
    with pytest.raises(tw.ColumnError, match="stream"):
        agree_check(b3, camera_boxes([(0, 1, 1, 2, 2)]))
    with pytest.raises(tw.InputError, match="no calib row"):
        agree_check(b3, camera_boxes([(0, 1, 1, 2, 2)], streams=["a"], cameras=["side"]),
                    calib((K, T_FORWARD), streams=["a"], cameras=["front"]))
    with pytest.raises(tw.InputError, match="stream with no camera"):
        agree_check(b3, camera_boxes([], streams=[]), calib((K, T_FORWARD), streams=["b"]))
    with pytest.raises(tw.InputError, match="pinhole"):
        agree_check(boxes3d([(0, 10, 0, 0, 4, 2, 2, 0)]), camera_boxes([]), calib(([1] * 9, T_FORWARD)))
    with pytest.raises(tw.ColumnError, match="9 values"):
        bad = calib((K, T_FORWARD)).set_column(0, "K", pa.array([[1.0, 2.0]], pa.list_(pa.float64())))
        agree_check(boxes3d([(0, 10, 0, 0, 4, 2, 2, 0)]), camera_boxes([]), bad)
    with pytest.raises(tw.InputError, match="same camera"):
        agree_check(boxes3d([(0, 10, 0, 0, 4, 2, 2, 0)]), camera_boxes([]), calib((K, T_FORWARD), (K, T_RIGHT)))
    with pytest.raises(tw.InputError, match=r"check them together: suite.check\(boxes3d=\.\.\., calib=\.\.\."):
        tw.Suite([tw.points.agree()]).check(boxes3d([]))
    with pytest.raises(tw.InputError, match="near"):
        tw.points.agree(near=0)


# ----------------------------------------------------------------------------------------------
# size_prior
# ----------------------------------------------------------------------------------------------
def test_size_prior_defaults_and_severity(backend):
    b3 = boxes3d([(0, 0, 0, 0, 4, 1.8, 1.5, 0), (0, 0, 0, 0, 7.8, 1.8, 1.5, 0), (0, 0, 0, 0, 4, 1.8, 0.6, 0),
                  (0, 0, 0, 0, 9, 9, 9, 0), (0, 0, 0, 0, NAN, 1, 1, 0), (0, 0, 0, 0, 4, None, 1.5, 0),
                  (0, 0, 0, 0, 0.5, 0.5, 1.7, 0)],
                 cls=["car", "car", "car", "bus", "pedestrian", "car", None])
    r = tw.Suite([tw.points.size_prior()]).check(b3, backend=backend)
    got = [(row, round(sev, 5), d) for row, sev, d in zip(r.violations["row"].to_pylist(),
                                                           r.violations["severity"].to_pylist(),
                                                           r.violations["detail"].to_pylist())]
    assert got == [(1, round((7.8 - 6.5) / 6.5, 5), "l above range"), (2, 0.5, "h below range"),
                   (4, 1.0, "null or non-finite dimension"), (5, 1.0, "null or non-finite dimension")]


@pytest.mark.parametrize("cls_kind", ["string", "dictionary", "large_string", "int", "int_wide", "chunked_dict"])
def test_size_prior_class_types(backend, cls_kind):
    names = ["car", "truck", "car", "pedestrian", "car"]
    dims = [(9, 2, 2), (9, 2, 2), (4, 1.8, 1.5), (1, 1, 3.0), (None, 1, 1)]
    codes = {"car": 3, "truck": 7, "pedestrian": 1}
    priors = None
    if cls_kind == "string":
        cls = pa.array(names)
    elif cls_kind == "large_string":
        cls = pa.array(names, pa.large_string())
    elif cls_kind == "dictionary":
        cls = pa.array(names).dictionary_encode()
    elif cls_kind == "chunked_dict":
        cls = pa.chunked_array([pa.array(names[:2]).dictionary_encode(), pa.array(names[2:]).dictionary_encode()])
    else:
        base = 0 if cls_kind == "int" else 10**12
        cls = pa.array([codes[n] + base for n in names], pa.int64())
        priors = {codes[k] + base: v for k, v in tw.points.DEFAULT_PRIORS.items() if k in codes}
    t = pa.table({"cls": cls, "l": pa.array([d[0] for d in dims], pa.float32()),
                  "w": pa.array([d[1] for d in dims], pa.float64()), "h": pa.array([d[2] for d in dims], pa.float32())})
    r = tw.Suite([tw.points.size_prior(priors=priors)]).check(t, backend=backend)
    assert r.violations["row"].to_pylist() == [0, 3, 4]
    assert r.violations["detail"].to_pylist() == ["l above range", "h above range", "null or non-finite dimension"]


def test_size_prior_bad_priors():
    with pytest.raises(tw.InputError, match="0 < min <= max"):
        tw.points.size_prior(priors={"car": ((3, 2), (1, 2), (1, 2))})
    with pytest.raises(tw.InputError, match="0 < min <= max"):
        tw.points.size_prior(priors={"car": ((0, 2), (1, 2), (1, 2))})
    with pytest.raises(tw.InputError, match="mix"):
        tw.points.size_prior(priors={"car": ((1, 2), (1, 2), (1, 2)), 3: ((1, 2), (1, 2), (1, 2))})
    t = pa.table({"cls": [1], "l": [1.0], "w": [1.0], "h": [1.0]})
    with pytest.raises(tw.ColumnError, match="priors"):
        tw.Suite([tw.points.size_prior()]).check(t)
    t = pa.table({"cls": ["car"], "l": ["4"], "w": [1.0], "h": [1.0]})
    with pytest.raises(tw.ColumnError, match="'l'"):
        tw.Suite([tw.points.size_prior()]).check(t)


# ----------------------------------------------------------------------------------------------
# multibox in bird's-eye view
# ----------------------------------------------------------------------------------------------
def test_bev_multibox_rotated_overlap(backend):
    # a 4 x 2 footprint and the same turned a quarter: intersection 2 x 2 = 4, union 12 -> IoU 1/3
    rows = [(0, 0, 0, 0, 4, 2, 1, 0), (0, 0, 0, 0, 4, 2, 1, math.pi / 2), (0, 30, 0, 0, 4, 2, 1, 0)]
    b3 = boxes3d(rows, scores=[0.2, 0.7, 0.9])
    r = tw.Suite([tw.points.multibox(iou=0.33, min_boxes=2)]).check(b3, backend=backend)
    assert flagged(r) == [("rows", 0, 0, 0.7), ("rows", 1, 0, 0.7)]
    r = tw.Suite([tw.points.multibox(iou=0.34, min_boxes=2)]).check(b3, backend=backend)
    assert len(r) == 0
    # a 45-degree turn of a square over itself: overlap is the regular octagon, IoU = (2 sqrt2 - 2) / (4 - 2 sqrt2) ~ 0.707
    b3 = boxes3d([(0, 0, 0, 0, 2, 2, 1, 0), (0, 0, 0, 0, 2, 2, 1, math.pi / 4), (0, 0, 0, 0, 2, 2, 1, -math.pi)])
    r = tw.Suite([tw.points.multibox(iou=0.7, min_boxes=3)]).check(b3, backend=backend)
    assert [f[1] for f in flagged(r)] == [0, 1, 2]
    r = tw.Suite([tw.points.multibox(iou=0.72, min_boxes=3)]).check(b3, backend=backend)
    assert len(r) == 0
    # a footprint without area links to nothing, wherever it is (Hypothesis found a clipping
    # against zero-length edges that kept the whole other box)
    b3 = boxes3d([(0, -6, -6, 0, 0.5, 0.5, 1, 0), (0, -6, -1, 0, 0, 0, 0, 0), (0, -6, -6, 0, 0, 2, 1, 0)])
    r = tw.Suite([tw.points.multibox(iou=0.01, min_boxes=2)]).check(b3, backend=backend)
    assert len(r) == 0


# ----------------------------------------------------------------------------------------------
# suites and reports over several tables
# ----------------------------------------------------------------------------------------------
def test_report_over_several_tables():
    b3 = boxes3d([(0, 10, 0, 0, 4, 2, 2, 0), (0, 10, -4, 0, 4, 2, 2, 0)], cls=["car", "car"], scores=[0.9, 0.4])
    pts = points([(0, 10, 0, 0)] * 6)
    b2 = camera_boxes([(0, 552.5, 272.5, 727.5, 447.5), (0, 0, 0, 5, 5)])
    s = tw.Suite([tw.points.agree(), tw.points.empty_box(min_points=5), tw.points.size_prior()])
    r = s.check(boxes3d=b3, points=pts, calib=calib((K, T_FORWARD)), boxes=b2)
    v = r.violations
    assert list(zip(v["assertion"].to_pylist(), v["table"].to_pylist(), v["row"].to_pylist())) == [
        ("points.agree", "boxes3d", 1), ("points.agree", "boxes", 1), ("points.empty_box", "boxes3d", 1)]
    assert r.corrections(table="boxes3d")["action"].to_pylist() == ["remove"]
    added = r.corrections(table="boxes")
    assert added["action"].to_pylist() == ["add"] and added["source_assertion"].to_pylist() == ["points.agree"]
    assert r.apply(table="boxes").num_rows == 3 and r.apply(table="boxes3d").num_rows == 1
    assert r.corrections(table="points").num_rows == 0
    assert s.columns()["calib"] == ["K", "T", "width", "height"]
    # custom table names route through tables=
    s2 = tw.Suite([tw.points.empty_box(min_points=5, tables={"boxes3d": "det", "points": "lidar"})])
    r2 = s2.check(det=b3, lidar=pts)
    assert r2.violations["table"].to_pylist() == ["det"]
    with pytest.raises(tw.InputError, match="lidar"):
        s2.check(det=b3, points=pts)


def test_toml_suite_builds_points_kinds():
    s = tw.Suite.from_toml("""
[[assertion]]
kind = "points.empty_box"
min_points = 3
[[assertion]]
kind = "points.agree"
iou = 0.4
[[assertion]]
kind = "points.size_prior"
[[assertion]]
kind = "points.multibox"
iou = 0.2
""")
    assert [a.kind for a in s] == ["points.empty_box", "points.agree", "points.size_prior", "points.multibox"]
    assert {"points.agree", "points.empty_box", "points.size_prior", "points.multibox"} <= set(tw.kinds())
