"""The CuPy kernels at sizes the Hypothesis scenes do not reach (many frames, thousands of
boxes, a million points: grids with many cells, atomics under contention, link lists and
component rounds on the device; ECG batches of a million samples and more), against the Cython
kernels on the same inputs; and, without CuPy, the GPU modules' import error."""
from __future__ import annotations

import importlib
import importlib.util
import math

import numpy as np
import pytest

from tripwire import _dispatch
from tripwire.errors import BackendUnavailable

needs_gpu = pytest.mark.skipif(not _dispatch._cupy_ready(), reason="needs CuPy and a GPU")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
@pytest.mark.parametrize("family", ["points", "boxes", "rows", "ecg"])
def test_gpu_modules_without_cupy_say_how_to_install(family):
    name = f"tripwire._kernels.{family}_gpu"
    with pytest.raises(BackendUnavailable, match=r"pip install tripwire\[gpu\]"):
        importlib.import_module(name)
    with pytest.raises(BackendUnavailable, match=r"pip install tripwire\[gpu\]"):
        _dispatch.kernels(family, "cupy")


def _f32(*arrays):
    return [np.ascontiguousarray(a, np.float32) for a in arrays]


def _scene(rng, n_frames, n_points, n_boxes):
    """Frames of points (unsorted frame sizes) and boxes, a few with NaN or negative sizes."""
    p_counts = rng.multinomial(n_points, np.ones(n_frames) / n_frames)
    b_counts = rng.multinomial(n_boxes, np.ones(n_frames) / n_frames)
    hi = np.cumsum(p_counts).astype(np.int64)
    lo = (hi - p_counts).astype(np.int64)
    off = np.concatenate([[0], np.cumsum(b_counts)]).astype(np.int64)
    px, py = _f32(rng.uniform(-40, 40, n_points), rng.uniform(-40, 40, n_points))
    (pz,) = _f32(rng.uniform(-2, 2, n_points))
    px[rng.integers(0, n_points, 10)] = np.nan
    b = _f32(rng.uniform(-40, 40, n_boxes), rng.uniform(-40, 40, n_boxes), rng.uniform(-1, 1, n_boxes),
             rng.uniform(0.5, 6, n_boxes), rng.uniform(0.5, 3, n_boxes), rng.uniform(1, 2, n_boxes),
             rng.uniform(-math.pi, math.pi, n_boxes))
    b[3][rng.integers(0, n_boxes, 5)] = -1.0
    b[6][rng.integers(0, n_boxes, 5)] = np.nan
    b[3][:3] = 80.0  # a few huge boxes cover many cells
    return px, py, pz, lo, hi, b, off


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("seed", [0, 1])
def test_count_in_boxes_at_scale(seed):
    from tripwire._kernels import _points_cy, points_gpu

    rng = np.random.default_rng(seed)
    px, py, pz, lo, hi, b, off = _scene(rng, 37, 1_000_000, 3000)
    want = _points_cy.count_in_boxes(px, py, pz, lo, hi, *b, off, 4096)
    got = points_gpu.count_in_boxes(px, py, pz, lo, hi, *b, off, 4096)
    assert want.sum() > 10_000
    np.testing.assert_array_equal(got, want)
    # points on the faces of every box: the exact test decides, not the grid
    c, s = np.cos(b[6].astype(np.float64)), np.sin(b[6].astype(np.float64))
    fx, fy = _f32(b[0] + c * b[3] / 2, b[1] + s * b[3] / 2)
    one = np.array([0], np.int64), np.array([len(fx)], np.int64)
    single = [np.ascontiguousarray(v) for v in b]
    offs = np.array([0, len(b[0])], np.int64)
    np.testing.assert_array_equal(points_gpu.count_in_boxes(fx, fy, b[2].copy(), *one, *single, offs, 64),
                                  _points_cy.count_in_boxes(fx, fy, b[2].copy(), *one, *single, offs, 64))
    # one frame of more boxes than a block counts in shared memory: the global-atomics path
    px, py, pz, lo, hi, b, off = _scene(rng, 1, 300_000, 6000)
    want = _points_cy.count_in_boxes(px, py, pz, lo, hi, *b, off, 4096)
    assert want.sum() > 10_000
    np.testing.assert_array_equal(points_gpu.count_in_boxes(px, py, pz, lo, hi, *b, off, 4096), want)


@pytest.mark.gpu
@needs_gpu
def test_overlap_groups_at_scale():
    from tripwire._kernels import _boxes_cy, _points_cy, boxes_gpu, points_gpu

    rng = np.random.default_rng(4)
    n_frames, per = 40, 400
    n = n_frames * per
    off = np.arange(0, n + 1, per, dtype=np.int64)
    cx, cy = _f32(rng.uniform(0, 60, n), rng.uniform(0, 60, n))
    ln, wd, yaw = _f32(rng.uniform(1, 6, n), rng.uniform(1, 3, n), rng.uniform(-math.pi, math.pi, n))
    score = _f32(rng.choice([0.2, 0.9, np.nan], n))[0]
    sv = (rng.random(n) > 0.1).astype(np.uint8)
    for iou, k in ((0.05, 2), (0.3, 2), (0.1, 5)):
        want = _points_cy.bev_multibox(cx, cy, ln, wd, yaw, score, sv, off, iou, k)
        got = points_gpu.bev_multibox(cx, cy, ln, wd, yaw, score, sv, off, iou, k)
        assert len(want[0]) > 100
        for w, g in zip(want, got):
            assert w.dtype == g.dtype
            np.testing.assert_array_equal(g, w)
    x1, y1 = _f32(rng.uniform(0, 600, n), rng.uniform(0, 600, n))
    x2, y2 = _f32(x1 + rng.uniform(5, 80, n), y1 + rng.uniform(5, 80, n))
    for iou, k in ((0.1, 2), (0.5, 3)):
        want = _boxes_cy.multibox(x1, y1, x2, y2, score, sv, off, iou, k)
        got = boxes_gpu.multibox(x1, y1, x2, y2, score, sv, off, iou, k)
        assert len(want[0]) > 100
        for w, g in zip(want, got):
            np.testing.assert_array_equal(g, w)


@pytest.mark.gpu
@needs_gpu
def test_project_match_at_scale():
    from tripwire._kernels import _points_cy, points_gpu

    rng = np.random.default_rng(9)
    n_units, per3, per2 = 300, 30, 25
    n3, n2 = n_units * per3, n_units * per2
    off3 = np.arange(0, n3 + 1, per3, dtype=np.int64)
    off2 = np.arange(0, n2 + 1, per2, dtype=np.int64)
    cams = rng.integers(0, 2, n_units).astype(np.int64)
    K = np.array([700, 0, 640, 0, 700, 360, 0, 0, 1] * 2, np.float64)
    T = np.array([0, -1, 0, 0, 0, 0, -1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
                 + [1, 0, 0, 0, 0, 0, -1, 0, 0, -1, 0, 0, 0, 0, 0, 1], np.float64)
    width, height = np.array([1280.0, 1280.0]), np.array([720.0, 720.0])
    b3 = _f32(rng.uniform(-5, 40, n3), rng.uniform(-20, 20, n3), rng.uniform(-1, 1, n3), rng.uniform(1, 5, n3),
              rng.uniform(1, 2, n3), rng.uniform(1, 2, n3), rng.uniform(-math.pi, math.pi, n3))
    x1, y1 = _f32(rng.uniform(0, 1200, n2), rng.uniform(0, 700, n2))
    x2, y2 = _f32(x1 + rng.uniform(10, 300, n2), y1 + rng.uniform(10, 200, n2))
    args = (*b3, off3, x1, y1, x2, y2, off2, cams, K, T, width, height, 0.5, 0.2)
    want = _points_cy.project_match(*args)
    got = points_gpu.project_match(*args)
    np.testing.assert_array_equal(got[0], want[0])
    assert (want[1] >= 0).sum() > 100
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[2], want[2])


# ----------------------------------------------------------------------------------------------
# rows family: a million rows, against the Cython kernel's raw outputs (order included)
# ----------------------------------------------------------------------------------------------
def _same_outputs(got, want):
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("n_attrs", [7, 20_000])  # the Cython counting path, and its sorting path
def test_consistent_at_scale(n_attrs):
    from tripwire._kernels import _rows_cy, rows_gpu

    rng = np.random.default_rng(n_attrs)
    n, n_ids = 1_000_000, 100_000
    ids = rng.integers(0, n_ids, n).astype(np.int32)
    attrs = (ids.astype(np.int64) * 7919) % n_attrs
    flip = rng.random(n) < 0.002
    attrs[flip] = rng.integers(0, n_attrs, int(flip.sum()))
    id_valid = (rng.random(n) > 0.01).astype(np.uint8)
    attr_valid = (rng.random(n) > 0.001).astype(np.uint8)
    none = np.empty(0, np.uint8)
    for iv, av in ((none, none), (id_valid, attr_valid)):
        for minority in (False, True):
            args = (ids, 0, n_ids, iv, attrs, 0, n_attrs, av, minority)
            want = _rows_cy.consistent(*args)
            assert len(want[3]) > 1000  # events
            _same_outputs(rows_gpu.consistent(*args), want)


@pytest.mark.gpu
@needs_gpu
def test_contiguous_at_scale():
    from tripwire._kernels import _rows_cy, rows_gpu

    rng = np.random.default_rng(11)
    n_ids, frames = 20_000, 60
    ids = np.tile(np.arange(n_ids, dtype=np.int64), frames)
    times = np.repeat(np.arange(frames, dtype=np.int64), n_ids)
    keep = rng.random(len(ids)) > 0.05  # 5 % gaps
    ids, times = ids[keep], times[keep]
    n = len(ids)
    assert n > 1_000_000
    tv = (rng.random(n) > 0.001).astype(np.uint8)
    none = np.empty(0, np.uint8)
    shuffled = rng.permutation(n)
    cases = [(ids, times, none, n_ids), (ids, times, tv, n_ids),  # the Cython kernel streams
             (ids[shuffled], times[shuffled], none, n_ids),  # times go back: its per-id path
             (ids, times, none, 10**9)]  # too many ids to stream
    for i, t, v, nid in cases:
        for window, allowed in ((5, 1), (10, 3), (30, 0)):
            args = (i, 0, nid, none, t, v, window, 1, allowed)
            want = _rows_cy.contiguous(*args)
            assert len(want[3]) > 1000
            _same_outputs(rows_gpu.contiguous(*args), want)


@pytest.mark.gpu
@needs_gpu
def test_check_kernels_at_scale():
    from tripwire import _expr
    from tripwire._kernels import _rows_cy, rows_gpu

    rng = np.random.default_rng(5)
    n = 1_000_003
    cols = {"x": rng.standard_normal(n).astype(np.float32), "y": rng.standard_normal(n),
            "i": rng.integers(-50, 50, n).astype(np.int32), "u": rng.integers(0, 2**40, n).astype(np.int64)}
    cols["x"][rng.integers(0, n, 1000)] = np.nan
    cols["y"][rng.integers(0, n, 1000)] = -np.inf
    for text in ("x > 2.5", "x < 0.1 and not (y > -1) or i == 3", "is_nan(x) or not is_finite(y)",
                 "x >= y or u < 1000000", "i != 0 and i < x"):
        node = _expr.parse(text)
        prog = _expr.compile_program(node, {c: cols[c].dtype for c in _expr.columns_of(node)})
        views = [cols[c][1:] for c in prog.columns]  # a non-zero offset
        dts = np.array([_expr.DTYPE_CODES[v.dtype] for v in views], np.int64)
        args = (prog.code, prog.fconsts, prog.iconsts, views, dts, n - 1)
        want = _rows_cy.check_program(*args)
        assert len(want) > 100, text
        _same_outputs(rows_gpu.check_program(*args), want)
    bits = rng.integers(0, 256, n // 8 + 1).astype(np.uint8)
    vbits = rng.integers(0, 256, n // 8 + 1).astype(np.uint8)
    for off in (0, 3):
        for vb in (np.empty(0, np.uint8), vbits):
            _same_outputs(rows_gpu.bitmap_rows(bits, off, n - 8, vb, off), _rows_cy.bitmap_rows(bits, off, n - 8, vb, off))
    values = cols["y"].copy()
    values[rng.integers(0, n, 1000)] = np.nan
    valid = (rng.random(n) > 0.1).astype(np.uint8)
    _same_outputs(rows_gpu.positive_rows(values, valid), _rows_cy.positive_rows(values, valid))


@pytest.mark.gpu
@needs_gpu
def test_rows_suite_on_cupy_equals_cython():
    """End to end (encoding, dispatch, canonical events, corrections) on a million-row table."""
    import pyarrow as pa

    import tripwire as tw

    rng = np.random.default_rng(3)
    n = 1_000_000
    track = rng.integers(0, 50_000, n)
    cls = np.where(rng.random(n) < 0.002, rng.integers(0, 5, n), track % 5)
    frame = np.sort(rng.integers(0, 400, n))
    score = rng.random(n).astype(np.float32)
    score[rng.integers(0, n, 500)] = np.nan
    table = pa.table({"track": pa.array(track), "cls": pa.array([f"c{c}" for c in cls]).dictionary_encode(),
                      "frame": pa.array(frame), "score": pa.array(score)})
    suite = tw.Suite([tw.rows.consistent(id="track", attr="cls", flag="minority"),
                      tw.rows.contiguous(id="track", time="frame", window=20, allowed_transitions=1),
                      tw.rows.check("score > 0.999 or is_nan(score)", name="high"),
                      tw.rows.check("score * 2 - 1.9", name="margin")])
    want = suite.check(table, backend="cython")
    got = suite.check(table, backend="cupy")
    assert got.backend == "cupy"
    assert want.violations.num_rows > 1000
    assert got.violations.equals(want.violations)
    # (the corrections carry the score column, whose NaNs never compare equal)
    assert len(want.corrections()) > 100
    assert got.corrections().drop_columns(["score"]).equals(want.corrections().drop_columns(["score"]))


# ----------------------------------------------------------------------------------------------
# ECG family: hours of real MIT-BIH signal (tiled, with faults), against the Cython kernels
# ----------------------------------------------------------------------------------------------
def _ecg_batches():
    """Two hours at 360 Hz (2.6 M samples): 30 s windows back to back, overlapping 60 s windows
    every 20 s, and windows of mixed lengths (empty, one sample, minutes) that skip values."""
    from tripwire.bench_ecg import day_table

    _, x = day_table(2.0)
    x = x.copy()
    rng = np.random.default_rng(7)
    x[rng.integers(0, len(x), 200)] = np.nan
    x[rng.integers(0, len(x), 50)] = np.inf
    x[500_000:500_400] = np.float32(20.0)  # out of range and flat
    x[900_000:900_100] = np.float32(-0.25)  # a flat stretch
    n = len(x)
    size = 10_800
    back = np.arange(0, n - size + 1, size, dtype=np.int64)
    over = np.arange(0, n - 2 * size + 1, 7_200, dtype=np.int64)
    lengths = rng.choice([0, 1, 7, 360, 10_800, 54_000, 108_000], 60)
    starts = rng.integers(0, n - 108_000, 60)
    return x, [(back, back + size), (over, over + 2 * size),
               (starts.astype(np.int64), (starts + lengths).astype(np.int64))]


@pytest.mark.gpu
@needs_gpu
def test_ecg_quality_at_scale():
    from tripwire._kernels import _ecg_cy, ecg_gpu

    x, batches = _ecg_batches()
    assert len(x) > 2_000_000
    for lo, hi in batches + [(np.array([0], np.int64), np.array([len(x)], np.int64))]:  # + one 2 h window
        fs = np.full(len(lo), 360.0)
        for params in ((0.5, 0.02, 10.0, 0.05, 0.5, 2.0), (0.1, 0.001, 1.5, 0.5, 0.05, 0.3)):
            want = _ecg_cy.quality(x, lo, hi, fs, *params)
            got = ecg_gpu.quality(x, lo, hi, fs, *params)
            assert (want[0] > 0).sum() >= min(3, len(lo))
            _same_outputs(got, want)


@pytest.mark.gpu
@needs_gpu
def test_ecg_detector_at_scale(monkeypatch):
    from tripwire import ecg
    from tripwire._kernels import _ecg_cy, ecg_gpu

    x, batches = _ecg_batches()
    whole = (np.array([0, 1000], np.int64), np.array([len(x), 400_000], np.int64))  # longer than LONG_WINDOW
    for lo, hi in batches + [whole]:
        params = ecg.detector_params(np.where(np.arange(len(lo)) % 3 == 2, 250.0, 360.0))
        want = _ecg_cy.rpeaks(x, lo, hi, params)
        assert want[0].size > 1000
        _same_outputs(ecg_gpu.rpeaks(x, lo, hi, params), want)
        _same_outputs(ecg_gpu.rr_stats(x, lo, hi, params), _ecg_cy.rr_stats(x, lo, hi, params))
    # long windows on the Cython kernel mixed with short ones on the GPU, merged in window order
    lo, hi = batches[2]
    params = ecg.detector_params(np.full(len(lo), 360.0))
    monkeypatch.setattr(ecg_gpu, "LONG_WINDOW", 20_000)
    _same_outputs(ecg_gpu.rpeaks(x, lo, hi, params), _ecg_cy.rpeaks(x, lo, hi, params))
    _same_outputs(ecg_gpu.rr_stats(x, lo, hi, params), _ecg_cy.rr_stats(x, lo, hi, params))


@pytest.mark.gpu
@needs_gpu
def test_ecg_flips_at_scale():
    from tripwire._kernels import _ecg_cy, ecg_gpu
    from tripwire.bench_ecg import flip_columns

    c = flip_columns(60, hours=6.0, seed=3)  # 1.3 M predictions
    assert len(c["label"]) > 1_000_000
    for labels in (c["label"], c["label"].astype(np.int64) + 5):
        off = 0 if labels.dtype == np.int32 else 5
        for within in (2.0, 30.0, 600.0):
            want = _ecg_cy.flips(labels, off, 3, c["rec_offsets"], c["t0"], within)
            assert len(want[0]) > 100
            _same_outputs(ecg_gpu.flips(labels, off, 3, c["rec_offsets"], c["t0"], within), want)


@pytest.mark.gpu
@needs_gpu
def test_ecg_suite_on_cupy_equals_cython():
    """End to end on two hours of 30 s windows: the quality, rate and flip assertions."""
    import tripwire as tw
    from tripwire.bench_ecg import day_table

    table, _ = day_table(2.0)
    suite = tw.Suite([tw.ecg.signal_quality(), tw.ecg.rate_consistency(), tw.ecg.rhythm_flip()])
    want = suite.check(table, backend="cython")
    got = suite.check(table, backend="cupy")
    assert got.backend == "cupy"
    assert want.violations.num_rows >= 4
    assert got.violations.equals(want.violations)
