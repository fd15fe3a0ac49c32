"""CuPy kernels against the Cython kernels on one machine (run it where a GPU is).

    PYTHONPATH=src python benches/gpu_kernels.py [--quick] [--rows] [--ecg]

``--ecg`` runs only the ECG cases (24 h of real MIT-BIH signal at 360 Hz tiled, in 30 s
windows: ``quality``, ``rr_stats``, ``rpeaks``; one hour as one window; ``flips`` over
predictions at 1 Hz), with the device time of the quality and detector kernels alone (samples
already on the GPU, CUDA events).
``--rows`` runs only the rows-family cases (``rows.consistent``, ``rows.contiguous``,
``rows.check``'s kernels), which a full run prints last; ``--sizes=2e6,4e6`` sets their row
counts (default 1 M and 10 M).

Per case: Cython (all cores, OpenMP) and CuPy end to end (host NumPy in, host NumPy out:
transfers and the host-side preparation included), medians after one untimed warm-up; for
the point count also the device part alone (points already on the GPU, timed with CUDA
events) and the host-to-device copy of the points. Every CuPy result is checked equal to the
Cython one first.
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import time

import numpy as np


def _median(fn, repeat=7):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _device_median(cp, fn, repeat=20):
    fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(repeat):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b) / 1e3)
    return statistics.median(times)


def _same(a, b):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_array_equal(x, y)


def main(quick: bool = False) -> None:
    import cupy as cp

    from tripwire._kernels import _boxes_cy, _points_cy, boxes_gpu, points_gpu
    from tripwire.bench_points import scene
    from tripwire.points import COUNT_CHUNK

    print(f"GPU: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, CuPy {cp.__version__}, "
          f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    sizes = [(1_000_000, 200)] if quick else [(1_000_000, 200), (10_000_000, 200), (10_000_000, 1000)]
    for n, nb in sizes:
        p, b = scene(n, nb, seed=nb)
        pts = (p["x"], p["y"], p["z"])
        bx = tuple(b[k] for k in ("cx", "cy", "cz", "l", "w", "h", "yaw"))
        lo, hi, off = np.array([0], np.int64), np.array([n], np.int64), np.array([0, nb], np.int64)
        args = (*pts, lo, hi, *bx, off, COUNT_CHUNK)
        want = _points_cy.count_in_boxes(*args)
        _same(points_gpu.count_in_boxes(*args), want)
        t_cy = _median(lambda: _points_cy.count_in_boxes(*args))
        t_gpu = _median(lambda: points_gpu.count_in_boxes(*args))
        plan = points_gpu.count_plan(lo, hi, *bx, off)
        d = [cp.asarray(v) for v in pts]
        t_kernel = _device_median(cp, lambda: points_gpu.count_on_device(plan, *d))
        t_h2d = _device_median(cp, lambda: [cp.asarray(v) for v in pts], repeat=5)
        print(f"count_in_boxes {n / 1e6:g} M points x {nb} boxes (hits {int(want.sum()):,}): "
              f"cython {t_cy * 1e3:.2f} ms, cupy end to end {t_gpu * 1e3:.2f} ms, "
              f"cupy kernel {t_kernel * 1e3:.3f} ms ({n * nb / t_kernel / 1e9:.0f} G dense-equivalent tests/s, "
              f"{12 * n / t_kernel / 1e9:.0f} GB/s of points), host-to-device copy of the points {t_h2d * 1e3:.2f} ms")

    rng = np.random.default_rng(0)
    for n_frames, per in ([(50, 1000)] if quick else [(50, 1000), (200, 2000)]):
        n = n_frames * per
        off = np.arange(0, n + 1, per, dtype=np.int64)
        cx, cy = (rng.uniform(0, 100, n).astype(np.float32) for _ in range(2))
        ln, wd = rng.uniform(1, 6, n).astype(np.float32), rng.uniform(1, 3, n).astype(np.float32)
        yaw = rng.uniform(-math.pi, math.pi, n).astype(np.float32)
        score, sv = rng.random(n).astype(np.float32), np.empty(0, np.uint8)
        a = (cx, cy, ln, wd, yaw, score, sv, off, 0.1, 2)
        _same(points_gpu.bev_multibox(*a), _points_cy.bev_multibox(*a))
        t_cy, t_gpu = _median(lambda: _points_cy.bev_multibox(*a), 5), _median(lambda: points_gpu.bev_multibox(*a), 5)
        pairs = n_frames * per * (per - 1) // 2
        print(f"points.multibox (rotated BEV IoU) {n_frames} frames x {per} boxes ({pairs / 1e6:.0f} M pairs): "
              f"cython {t_cy * 1e3:.1f} ms, cupy {t_gpu * 1e3:.1f} ms")
        x1, y1 = rng.uniform(0, 1000, n).astype(np.float32), rng.uniform(0, 1000, n).astype(np.float32)
        x2, y2 = x1 + rng.uniform(5, 60, n).astype(np.float32), y1 + rng.uniform(5, 60, n).astype(np.float32)
        a = (x1, y1, x2, y2, score, sv, off, 0.3, 2)
        _same(boxes_gpu.multibox(*a), _boxes_cy.multibox(*a))
        t_cy, t_gpu = _median(lambda: _boxes_cy.multibox(*a), 5), _median(lambda: boxes_gpu.multibox(*a), 5)
        print(f"boxes.multibox (2D IoU) {n_frames} frames x {per} boxes ({pairs / 1e6:.0f} M pairs): "
              f"cython {t_cy * 1e3:.1f} ms, cupy {t_gpu * 1e3:.1f} ms")

    n = 1_000_000 if quick else 10_000_000
    counts = rng.integers(0, 50, n).astype(np.int64)
    none = np.empty(0, np.uint8)
    _same(points_gpu.few_points(counts, none, 5), _points_cy.few_points(counts, none, 5))
    t_cy = _median(lambda: _points_cy.few_points(counts, np.empty(0, np.uint8), 5))
    t_gpu = _median(lambda: points_gpu.few_points(counts, np.empty(0, np.uint8), 5))
    print(f"few_points {n / 1e6:g} M rows: cython {t_cy * 1e3:.2f} ms, cupy {t_gpu * 1e3:.2f} ms")
    x1 = rng.uniform(0, 600, n).astype(np.float32)
    x2 = (x1 + rng.uniform(-1, 50, n)).astype(np.float32)
    e = np.empty(0, np.uint8)
    a = (x1, x1, x2, x2, e, rng.random(n).astype(np.float32), e, 640.0, 480.0)
    _same(boxes_gpu.valid(*a), _boxes_cy.valid(*a))
    t_cy, t_gpu = _median(lambda: _boxes_cy.valid(*a)), _median(lambda: boxes_gpu.valid(*a))
    print(f"boxes.valid {n / 1e6:g} M rows: cython {t_cy * 1e3:.2f} ms, cupy {t_gpu * 1e3:.2f} ms")


def rows_cases(quick: bool = False) -> None:
    """The rows family: host arrays in and out, as ``tripwire.rows`` calls the kernels."""
    import cupy as cp

    from tripwire import _expr
    from tripwire._kernels import _rows_cy, rows_gpu

    print(f"GPU: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, CuPy {cp.__version__}, "
          f"{os.cpu_count()} CPUs (the rows kernels are single-threaded Cython)")
    none = np.empty(0, np.uint8)

    from cupyx.profiler import benchmark

    def case(label, n, args, cy, gpu, repeat=7):
        want = cy(*args)
        _same(gpu(*args), want)
        t_cy, t_gpu = _median(lambda: cy(*args), repeat), _median(lambda: gpu(*args), repeat)
        # host time (Python, launches, waits) vs GPU time of the CuPy call
        prof = benchmark(gpu, args, n_repeat=5, n_warmup=1)
        print(f"{label} {n / 1e6:g} M rows: cython {t_cy * 1e3:.2f} ms, cupy {t_gpu * 1e3:.2f} ms "
              f"({t_cy / t_gpu:.2f}x; cupy host {np.median(prof.cpu_times) * 1e3:.2f} ms, "
              f"GPU {np.median(prof.gpu_times) * 1e3:.2f} ms)")

    sizes = [int(float(v)) for a in sys.argv if a.startswith("--sizes=") for v in a[8:].split(",")]
    rng = np.random.default_rng(1)
    for n in sizes or ([1_000_000] if quick else [1_000_000, 10_000_000]):
        n_ids = n // 10
        ids = rng.integers(0, n_ids, n).astype(np.int32)
        attrs = ids.astype(np.int64) % 7
        flip = rng.random(n) < 0.001
        attrs[flip] = rng.integers(0, 7, int(flip.sum()))
        case("rows.consistent (7 values, 0.1 % flips, minority)", n,
             (ids, 0, n_ids, none, attrs, 0, 7, none, True), _rows_cy.consistent, rows_gpu.consistent)
        frames = 100
        per = n // frames
        tid = np.tile(np.arange(per, dtype=np.int64), frames)
        t = np.repeat(np.arange(frames, dtype=np.int64), per)
        keep = rng.random(len(tid)) > 0.02
        tid, t = tid[keep], t[keep]
        case("rows.contiguous (sorted, 2 % gaps; Cython streams)", n,
             (tid, 0, per, none, t, none, 10, 1, 1), _rows_cy.contiguous, rows_gpu.contiguous, 5)
        sh = rng.permutation(len(tid))
        case("rows.contiguous (shuffled; Cython sorts per id)", n,
             (tid[sh], 0, per, none, t[sh], none, 10, 1, 1), _rows_cy.contiguous, rows_gpu.contiguous, 5)
        cols = {"x": rng.standard_normal(n).astype(np.float32), "y": rng.standard_normal(n),
                "i": rng.integers(0, 100, n).astype(np.int32)}
        for text in ("x > 3.5", "x > 3.5 or (y < -3 and i != 7) or is_nan(x)"):
            node = _expr.parse(text)
            prog = _expr.compile_program(node, {c: cols[c].dtype for c in _expr.columns_of(node)})
            views = [cols[c] for c in prog.columns]
            dts = np.array([_expr.DTYPE_CODES[v.dtype] for v in views], np.int64)
            case(f"rows.check {text!r}", n, (prog.code, prog.fconsts, prog.iconsts, views, dts, n),
                 _rows_cy.check_program, rows_gpu.check_program)
        bits = np.packbits(cols["x"] > 3.0, bitorder="little")
        case("rows.check bitmap_rows (Arrow boolean result)", n, (bits, 0, n, none, 0),
             _rows_cy.bitmap_rows, rows_gpu.bitmap_rows)
        case("rows.check positive_rows (numeric result)", n, (cols["y"] - 3.0, none),
             _rows_cy.positive_rows, rows_gpu.positive_rows)


def ecg_cases(quick: bool = False) -> None:
    """The ECG family: host arrays in and out, as ``tripwire.ecg`` calls the kernels."""
    import cupy as cp

    from tripwire import ecg
    from tripwire._kernels import _ecg_cy, ecg_gpu
    from tripwire.bench_ecg import day_table, flip_columns

    print(f"GPU: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, CuPy {cp.__version__}, "
          f"{os.cpu_count()} CPUs (Cython quality / detector on all of them, OpenMP; flips one thread), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    hours = 2.0 if quick else 24.0
    _, x = day_table(hours)
    size = 10_800
    lo = np.arange(0, len(x) - size + 1, size, dtype=np.int64)
    hi = lo + size
    fs = np.full(len(lo), 360.0)
    q = (0.5, 0.02, 10.0, 0.05, 0.5, 2.0)
    P = ecg.detector_params(fs)
    label = f"{hours:g} h at 360 Hz ({len(x) / 1e6:.1f} M samples, {len(lo)} windows of 30 s)"
    d_x = cp.asarray(x)
    t_h2d = _device_median(cp, lambda: cp.asarray(x), repeat=5)
    print(f"host-to-device copy of the samples: {t_h2d * 1e3:.2f} ms")
    for name, cy, gpu, plan in (
            ("quality", lambda: _ecg_cy.quality(x, lo, hi, fs, *q), lambda: ecg_gpu.quality(x, lo, hi, fs, *q),
             ecg_gpu.quality_plan(d_x, lo, hi, fs, *q)),
            ("rr_stats", lambda: _ecg_cy.rr_stats(x, lo, hi, P), lambda: ecg_gpu.rr_stats(x, lo, hi, P),
             ecg_gpu.detector_plan(d_x, lo, hi, P, True)),
            ("rpeaks", lambda: _ecg_cy.rpeaks(x, lo, hi, P), lambda: ecg_gpu.rpeaks(x, lo, hi, P),
             ecg_gpu.detector_plan(d_x, lo, hi, P, False))):
        _same(gpu(), cy())
        t_cy, t_gpu = _median(cy, 5), _median(gpu, 5)
        t_dev = _device_median(cp, plan, repeat=5)
        print(f"ecg {name} {label}: cython {t_cy * 1e3:.1f} ms, cupy end to end {t_gpu * 1e3:.1f} ms "
              f"({t_cy / t_gpu:.2f}x), cupy kernel {t_dev * 1e3:.2f} ms ({len(x) / t_dev / 1e9:.1f} G samples/s)")
    one_lo, one_hi = np.array([0], np.int64), np.array([min(len(x), 1_296_000)], np.int64)  # one hour
    P1 = ecg.detector_params([360.0])
    t_cy = _median(lambda: _ecg_cy.rpeaks(x, one_lo, one_hi, P1), 3)
    t_gpu = _median(lambda: ecg_gpu.rpeaks(x, one_lo, one_hi, P1), 3)
    t_dev = _device_median(cp, ecg_gpu.detector_plan(d_x, one_lo, one_hi, P1, False), repeat=3)
    print(f"ecg rpeaks one window of {one_hi[0] / 1.296e6:g} h: cython {t_cy * 1e3:.1f} ms, "
          f"cupy {t_gpu * 1e3:.1f} ms (longer than LONG_WINDOW: the Cython kernel), "
          f"one GPU thread would take {t_dev * 1e3:.0f} ms")
    c = flip_columns(50 if quick else 500, hours=6.0)
    a = (c["label"], 0, 3, c["rec_offsets"], c["t0"], 30.0)
    _same(ecg_gpu.flips(*a), _ecg_cy.flips(*a))
    t_cy, t_gpu = _median(lambda: _ecg_cy.flips(*a)), _median(lambda: ecg_gpu.flips(*a))
    print(f"ecg flips {len(c['label']) / 1e6:.1f} M predictions: cython {t_cy * 1e3:.2f} ms, "
          f"cupy {t_gpu * 1e3:.2f} ms ({t_cy / t_gpu:.2f}x)")


if __name__ == "__main__":
    if "--ecg" in sys.argv:
        ecg_cases(quick="--quick" in sys.argv)
        sys.exit(0)
    if "--rows" not in sys.argv:
        main(quick="--quick" in sys.argv)
    rows_cases(quick="--quick" in sys.argv)
