"""``tripwire bench --family points``: the LIDAR assertions against NumPy and dense baselines.

Measured in one run, timed in alternation (``timeit_interleaved``: a noisy neighbour slows
every contender alike), medians after one untimed warm-up call:

- **points in boxes** (the kernel behind ``points.empty_box``, ``count_in_boxes`` of the
  Cython backend on prepared float32 columns) on the three bundled real KITTI sweeps and on
  scaled-up scenes (real sweeps tiled with 0.1 m jitter to 1 M and 10 M points, 10 / 200 / 1000
  car-sized boxes placed where the points are), against (a) the straightforward NumPy version
  (a loop over boxes, each box tested against every point of its frame with vectorized
  arithmetic) and (b) a dense per-pair loop in the style of common 3D-detection toolkits' CPU
  code (OpenPCDet's ``points_in_boxes_cpu``: for every box, for every point, rotate and test;
  compiled with Numba so it is not a Python-loop strawman; run on a subset when slow and
  compared per point-box test). Point-box tests per second count ``points x boxes`` of the
  frame, i.e. dense-equivalent tests, per core used.
- **agree** end to end (``Suite.check``) against a vectorized NumPy version (all boxes of a
  camera frame projected at once with near-plane clipping, an IoU matrix, greedy matching).
- **size_prior** end to end against a vectorized NumPy version (class lookup, range tests).
- **empty_box given counts** (a ``counts`` column, no points) end to end against NumPy.
- the memory bandwidth right now (``np.copyto``), next to the bytes the count reads.

Every baseline is checked to give tripwire's answer on the data it is timed on.
"""
from __future__ import annotations

import functools
import math
import os
import sys
import time
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from .bench import timeit_interleaved

__all__ = ["run", "run_cli", "kitti_tables", "scene", "numpy_count", "dense_pair_count", "numpy_agree",
           "numpy_size_prior", "numpy_few_points"]


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def kitti_tables() -> dict[str, pa.Table]:
    """The bundled KITTI sample, read once per process (every scene tiles its points)."""
    import pyarrow.parquet as pq

    folder = os.path.join(os.path.dirname(__file__), "data", "kitti_lidar")
    return {n: pq.read_table(os.path.join(folder, f"{n}.parquet")) for n in ("points", "boxes3d", "calib", "boxes")}


def scene(n_points: int, n_boxes: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One frame: the real sweeps tiled (each copy jittered by up to 0.1 m) to ``n_points``, and
    ``n_boxes`` car-sized boxes (l 3.5-5 m, w 1.6-2 m, h 1.5 m, any yaw) centred on random points
    (so they hold real structure) within 40 m."""
    rng = np.random.default_rng(seed)
    pts = kitti_tables()["points"]
    base = np.stack([pts[c].to_numpy() for c in "xyz"], axis=1)
    reps = -(-n_points // len(base))
    tiled = np.concatenate([base + rng.uniform(-0.1, 0.1, (1, 3)).astype(np.float32) for _ in range(reps)])[:n_points]
    p = {c: np.ascontiguousarray(tiled[:, i], np.float32) for i, c in enumerate("xyz")}
    near = np.flatnonzero((np.abs(base[:, 0]) < 40) & (np.abs(base[:, 1]) < 40))
    centre = base[rng.choice(near, n_boxes)]
    b = {"cx": centre[:, 0], "cy": centre[:, 1], "cz": centre[:, 2] + 0.5,
         "l": rng.uniform(3.5, 5, n_boxes), "w": rng.uniform(1.6, 2.0, n_boxes), "h": np.full(n_boxes, 1.5),
         "yaw": rng.uniform(-math.pi, math.pi, n_boxes)}
    return p, {k: np.ascontiguousarray(v, np.float32) for k, v in b.items()}


# ----------------------------------------------------------------------------------------------
# baselines
# ----------------------------------------------------------------------------------------------
def numpy_count(p: dict, b: dict) -> np.ndarray:
    """The straightforward NumPy version: per box, every point with vectorized arithmetic."""
    x, y, z = (p[c].astype(np.float64) for c in "xyz")
    out = np.empty(len(b["cx"]), np.int64)
    for k in range(len(out)):
        yaw = np.float64(b["yaw"][k])
        c, s = np.cos(yaw), np.sin(yaw)
        dx, dy = x - np.float64(b["cx"][k]), y - np.float64(b["cy"][k])
        inside = (np.abs(dx * c + dy * s) <= 0.5 * np.float64(b["l"][k])) \
            & (np.abs(dy * c - dx * s) <= 0.5 * np.float64(b["w"][k])) \
            & (np.abs(z - np.float64(b["cz"][k])) <= 0.5 * np.float64(b["h"][k]))
        out[k] = np.count_nonzero(inside)
    return out


_DENSE = None


def dense_pair_count(p: dict, b: dict) -> np.ndarray:
    """OpenPCDet-style ``points_in_boxes_cpu``: for each box, for each point, a full test with
    the rotation computed per pair (compiled with Numba)."""
    global _DENSE
    if _DENSE is None:
        from numba import njit

        @njit(cache=False, nogil=True)
        def dense(x, y, z, cx, cy, cz, l, w, h, yaw):
            out = np.zeros(cx.shape[0], np.int64)
            for k in range(cx.shape[0]):
                for i in range(x.shape[0]):
                    if abs(np.float64(z[i]) - cz[k]) > 0.5 * np.float64(h[k]):
                        continue
                    c, s = math.cos(np.float64(yaw[k])), math.sin(np.float64(yaw[k]))
                    dx, dy = np.float64(x[i]) - cx[k], np.float64(y[i]) - cy[k]
                    if abs(dx * c + dy * s) <= 0.5 * np.float64(l[k]) and abs(dy * c - dx * s) <= 0.5 * np.float64(w[k]):
                        out[k] += 1
            return out

        _DENSE = dense
    return _DENSE(p["x"], p["y"], p["z"], *(b[k] for k in ("cx", "cy", "cz", "l", "w", "h", "yaw")))


def _project_np(b: dict, K: np.ndarray, T: np.ndarray, width: float, height: float, near: float) -> np.ndarray:
    """All boxes at once: corners (n, 8), near-plane clipping by edges, extent, image clip."""
    sgn = np.array([[(k & 1) * 2 - 1, ((k >> 1) & 1) * 2 - 1, ((k >> 2) & 1) * 2 - 1] for k in range(8)], float) / 2
    c, s = np.cos(b["yaw"].astype(np.float64))[:, None], np.sin(b["yaw"].astype(np.float64))[:, None]
    ox, oy, oz = sgn[:, 0] * b["l"][:, None], sgn[:, 1] * b["w"][:, None], sgn[:, 2] * b["h"][:, None]
    wx, wy, wz = b["cx"][:, None] + (c * ox - s * oy), b["cy"][:, None] + (s * ox + c * oy), b["cz"][:, None] + oz
    X = T[0] * wx + T[1] * wy + T[2] * wz + T[3]
    Y = T[4] * wx + T[5] * wy + T[6] * wz + T[7]
    Z = T[8] * wx + T[9] * wy + T[10] * wz + T[11]
    ea, eb = np.array([0, 2, 4, 6, 0, 1, 4, 5, 0, 1, 2, 3]), np.array([1, 3, 5, 7, 2, 3, 6, 7, 4, 5, 6, 7])
    za, zb = Z[:, ea], Z[:, eb]
    cross = ((za < near) & (zb > near)) | ((za > near) & (zb < near))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (near - za) / (zb - za)
    qx = np.concatenate([X, X[:, ea] + t * (X[:, eb] - X[:, ea])], axis=1)
    qy = np.concatenate([Y, Y[:, ea] + t * (Y[:, eb] - Y[:, ea])], axis=1)
    qz = np.concatenate([Z, np.full_like(za, near)], axis=1)
    use = np.concatenate([Z >= near, cross], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (K[0] * qx + K[1] * qy + K[2] * qz) / qz
        v = (K[3] * qx + K[4] * qy + K[5] * qz) / qz
    big = np.inf
    x1 = np.maximum(np.where(use, u, big).min(1), 0).astype(np.float32)
    x2 = np.minimum(np.where(use, u, -big).max(1), width).astype(np.float32)
    y1 = np.maximum(np.where(use, v, big).min(1), 0).astype(np.float32)
    y2 = np.minimum(np.where(use, v, -big).max(1), height).astype(np.float32)
    out = np.stack([x1, y1, x2, y2], 1)
    out[~((x2 > x1) & (y2 > y1))] = np.nan
    return out


def numpy_agree(b3: dict, f3: np.ndarray, b2: np.ndarray, f2: np.ndarray, K, T, width, height,
                iou: float = 0.5, near: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized NumPy agree for one camera: returns (unmatched 3D rows, unmatched 2D rows)."""
    proj = _project_np(b3, K, T, width, height, near)
    o3, o2 = np.argsort(f3, kind="stable"), np.argsort(f2, kind="stable")
    s3, s2 = f3[o3], f2[o2]
    frames = np.union1d(s3, s2)
    lo3, hi3 = np.searchsorted(s3, frames), np.searchsorted(s3, frames, "right")
    lo2, hi2 = np.searchsorted(s2, frames), np.searchsorted(s2, frames, "right")
    un3, un2 = [], []
    for a3, e3, a2, e2 in zip(lo3, hi3, lo2, hi2):
        r3, r2 = o3[a3:e3], o2[a2:e2]
        p, q = proj[r3], b2[r2]
        vis = ~np.isnan(p[:, 0])
        m3 = np.zeros(len(r3), bool)
        m2 = np.zeros(len(r2), bool)
        if len(r2) and vis.any():
            ix = np.minimum(p[:, None, 2], q[None, :, 2]) - np.maximum(p[:, None, 0], q[None, :, 0])
            iy = np.minimum(p[:, None, 3], q[None, :, 3]) - np.maximum(p[:, None, 1], q[None, :, 1])
            inter = np.where((ix > 0) & (iy > 0), ix * iy, 0).astype(np.float32)
            area_p = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
            area_q = (q[:, 2] - q[:, 0]) * (q[:, 3] - q[:, 1])
            union = (area_p[:, None] + area_q[None, :]) - inter
            ok = (inter > 0) & (inter >= np.float32(iou) * union) & vis[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                score = np.where(ok, -(inter / union), np.inf)
            for flat in np.argsort(score, axis=None, kind="stable")[:int(ok.sum())]:
                i, j = divmod(int(flat), len(r2))
                if not m3[i] and not m2[j]:
                    m3[i] = m2[j] = True
        un3.append(r3[vis & ~m3])
        un2.append(r2[~m2])
    cat = (lambda xs: np.sort(np.concatenate(xs)) if xs else np.empty(0, np.int64))
    return cat(un3), cat(un2)


def numpy_size_prior(codes: np.ndarray, l, w, h, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``codes``: class slot per row (-1: none); lo/hi (n_slots, 3)."""
    has = codes >= 0
    slot = np.where(has, codes, 0)
    dims = np.stack([l, w, h], 1).astype(np.float64)
    low, high = lo[slot], hi[slot]
    rel = np.maximum((low - dims) / low, (dims - high) / high)
    sev = np.where(np.isfinite(dims).all(1), np.maximum(rel.max(1), 0), 1.0)
    rows = np.flatnonzero(has & (sev > 0))
    return rows, np.maximum(sev[rows], 1e-6).astype(np.float32)


def numpy_few_points(counts: np.ndarray, min_points: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(counts < min_points)
    return rows, (1.0 - np.maximum(counts[rows], 0) / min_points).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------
def _copy_bandwidth(nbytes: int) -> float:
    a = np.ones(max(nbytes // 8, 1 << 20))
    b = np.empty_like(a)
    t = timeit_interleaved({"copy": lambda: np.copyto(b, a)}, repeat=5, min_seconds=0.1)["copy"]
    return 2 * a.nbytes / t


def _count_cy(p: dict, b: dict, n_boxes: int) -> Callable[[], np.ndarray]:
    from ._kernels import _points_cy
    from .points import COUNT_CHUNK

    args = (p["x"], p["y"], p["z"], np.array([0], np.int64), np.array([len(p["x"])], np.int64),
            *(b[k] for k in ("cx", "cy", "cz", "l", "w", "h", "yaw")), np.array([0, n_boxes], np.int64), COUNT_CHUNK)
    return lambda: _points_cy.count_in_boxes(*args)


def run(quick: bool = False, sizes: list[int] | None = None, box_counts: tuple[int, ...] = (10, 200, 1000),
        log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    import tripwire as tw

    threads = os.environ.get("OMP_NUM_THREADS")
    cores = int(threads) if threads else (os.cpu_count() or 1)
    rows: list[dict[str, Any]] = []
    sizes = sizes or ([200_000] if quick else [1_000_000, 10_000_000])
    if quick:
        box_counts = (10, 200)
    # real sweeps: the bundled detector boxes against the three sweeps, end to end
    k = kitti_tables()
    s = tw.Suite([tw.points.empty_box(min_points=100)])
    b3 = k["boxes3d"]
    pts = k["points"]
    pd = {c: pts[c].to_numpy() for c in "xyz"}
    fr_p, fr_b = pts["frame"].to_numpy(), b3["frame"].to_numpy()
    bd = {c: b3[c].to_numpy() for c in ("cx", "cy", "cz", "l", "w", "h", "yaw")}

    def numpy_real():
        return np.concatenate([numpy_count({c: v[fr_p == f] for c, v in pd.items()},
                                           {c: v[fr_b == f] for c, v in bd.items()}) for f in range(3)])
    want = tw.points.count_in_boxes(b3, pts).to_numpy()
    assert np.array_equal(numpy_real(), want)
    t = timeit_interleaved({"tripwire": lambda: s.check(boxes3d=b3, points=pts), "numpy": numpy_real},
                           repeat=5, min_seconds=0.2)
    tests = sum(int((fr_p == f).sum()) * int((fr_b == f).sum()) for f in range(3))
    rows.append(dict(case="empty_box, real KITTI (3 sweeps, 363 k points, 14 boxes), end to end",
                     ours=t["tripwire"], baseline=t["numpy"], baseline_name="NumPy per box", tests=tests))
    log(f"real sweeps: {t['tripwire'] * 1e3:.2f} ms vs NumPy {t['numpy'] * 1e3:.2f} ms")
    # scaled-up scenes: the counting kernel on prepared columns
    bw = _copy_bandwidth(1 << 27)
    for n in sizes:
        for nb in box_counts:
            p, b = scene(n, nb, seed=nb)
            ours = _count_cy(p, b, nb)
            got = ours()
            fns: dict[str, Callable[[], Any]] = {"tripwire": ours}
            np_pts = n * nb <= 500_000_000  # the NumPy loop takes ~1 ns per test: skip the biggest
            if np_pts:
                assert np.array_equal(numpy_count(p, b), got)
                fns["numpy"] = lambda p=p, b=b: numpy_count(p, b)
            # the dense loop on a subset of the points when the whole would take long
            sub_n = min(n, max(10_000, int(3e8 // max(nb, 1))))
            psub = {c: v[:sub_n] for c, v in p.items()}
            dense_want = _count_cy(psub, b, nb)()
            assert np.array_equal(dense_pair_count(psub, b), dense_want)
            fns["dense"] = lambda psub=psub, b=b: dense_pair_count(psub, b)
            t = timeit_interleaved(fns, repeat=3 if n * nb > 1e9 else 5, min_seconds=0.2, max_repeat=10)
            dense_full = t["dense"] * n / sub_n
            row = dict(case=f"points in boxes, {n / 1e6:g} M points, {nb} boxes (kernel)", ours=t["tripwire"],
                       baseline=t.get("numpy"), baseline_name="NumPy per box", tests=n * nb,
                       dense=dense_full, dense_note="" if sub_n == n else f" (on {sub_n:,} points, scaled)",
                       gbps=12 * n / t["tripwire"] / 1e9, bw=bw / 1e9, cores=cores)
            rows.append(row)
            log(f"{row['case']}: {t['tripwire'] * 1e3:.2f} ms"
                + (f", NumPy {t['numpy'] * 1e3:.1f} ms" if 'numpy' in t else "") + f", dense {dense_full * 1e3:.1f} ms")
    # agree, size_prior, empty_box given counts: end to end against vectorized NumPy
    rows.extend(_assertion_rows(quick, log))
    return rows


def _agree_case(n_frames: int, per_frame: int, seed: int = 1):
    """Boxes ahead of a KITTI-like camera; camera boxes = their projections, 10 % dropped, 2
    invented per frame."""
    rng = np.random.default_rng(seed)
    n = n_frames * per_frame
    b = {"cx": rng.uniform(-5, 60, n), "cy": rng.uniform(-25, 25, n), "cz": rng.uniform(-1.5, 0.5, n),
         "l": rng.uniform(3.5, 5, n), "w": rng.uniform(1.6, 2.0, n), "h": rng.uniform(1.4, 1.8, n),
         "yaw": rng.uniform(-math.pi, math.pi, n)}
    b = {c: v.astype(np.float32) for c, v in b.items()}
    frame = np.repeat(np.arange(n_frames), per_frame)
    k = kitti_tables()["calib"]
    K, T = np.array(k["K"][0].as_py()), np.array(k["T"][0].as_py())
    width, height = float(k["width"][0].as_py()), float(k["height"][0].as_py())
    proj = _project_np(b, K, T, width, height, 0.1)
    keep = ~np.isnan(proj[:, 0]) & (rng.random(n) > 0.1)
    b2 = proj[keep] + rng.uniform(-1, 1, (int(keep.sum()), 4)).astype(np.float32)
    f2 = frame[keep]
    extra = np.stack([rng.uniform(0, 1100, 2 * n_frames), rng.uniform(0, 300, 2 * n_frames)], 1)
    b2 = np.concatenate([b2, np.concatenate([extra, extra + 40], 1).astype(np.float32)])
    f2 = np.concatenate([f2, np.repeat(np.arange(n_frames), 2)])
    t3 = pa.table({"frame": frame, **{c: v for c, v in b.items()}})
    t2 = pa.table({"frame": f2, "x1": b2[:, 0], "y1": b2[:, 1], "x2": b2[:, 2], "y2": b2[:, 3]})
    return t3, t2, k.drop_columns(["camera"]), (b, frame, b2, f2, K, T, width, height)


def _assertion_rows(quick: bool, log) -> list[dict[str, Any]]:
    import tripwire as tw

    rows = []
    # agree
    n_frames = 200 if quick else 2000
    t3, t2, cal, (b, f3, b2, f2, K, T, width, height) = _agree_case(n_frames, 30)
    s = tw.Suite([tw.points.agree(iou=0.5)])
    r = s.check(boxes3d=t3, calib=cal, boxes=t2)
    v = r.violations
    mine3 = np.sort(np.array([x for x, tb in zip(v["row"].to_pylist(), v["table"].to_pylist()) if tb == "boxes3d"]))
    mine2 = np.sort(np.array([x for x, tb in zip(v["row"].to_pylist(), v["table"].to_pylist()) if tb == "boxes"]))
    n3, n2 = numpy_agree(b, f3, b2, f2, K, T, width, height)
    assert np.array_equal(n3, mine3) and np.array_equal(n2, mine2), "agree baseline disagrees"
    t = timeit_interleaved({"tripwire": lambda: s.check(boxes3d=t3, calib=cal, boxes=t2),
                            "numpy": lambda: numpy_agree(b, f3, b2, f2, K, T, width, height)},
                           repeat=5, min_seconds=0.2)
    rows.append(dict(case=f"agree, {n_frames} frames x 30 3D boxes, end to end", ours=t["tripwire"],
                     baseline=t["numpy"], baseline_name="vectorized NumPy"))
    log(f"agree: {t['tripwire'] * 1e3:.1f} ms vs {t['numpy'] * 1e3:.1f} ms")
    # size_prior
    n = 1_000_000 if quick else 10_000_000
    rng = np.random.default_rng(2)
    names = list(tw.points.DEFAULT_PRIORS) + ["misc"]
    codes = rng.integers(0, len(names), n).astype(np.int32)
    # realistic sizes: each class around the middle of its range (misc like a car), 10 % spread,
    # so that a few per cent leave the range
    mid = np.array([[(a + b) / 2 for a, b in r] for r in tw.points.DEFAULT_PRIORS.values()] + [[4.0, 1.8, 1.6]])
    spread = rng.normal(1.0, 0.1, (n, 3)) * mid[codes]
    dims = {c: spread[:, i].astype(np.float32) for i, c in enumerate("lwh")}
    table = pa.table({"cls": pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(names)), **dims})
    sp = tw.Suite([tw.points.size_prior()])
    lo = np.array([[r[i][0] for i in range(3)] for r in tw.points.DEFAULT_PRIORS.values()] + [[1, 1, 1]])
    hi = np.array([[r[i][1] for i in range(3)] for r in tw.points.DEFAULT_PRIORS.values()] + [[1, 1, 1]])
    slots = np.where(codes < len(names) - 1, codes, -1)
    rows_np, sev_np = numpy_size_prior(slots, dims["l"], dims["w"], dims["h"], lo, hi)
    rep = sp.check(table)
    assert np.array_equal(rep.results[0][1].rows, rows_np)
    np.testing.assert_allclose(rep.results[0][1].severity, sev_np, rtol=1e-6)
    t = timeit_interleaved({"tripwire": lambda: sp.check(table),
                            "numpy": lambda: numpy_size_prior(slots, dims["l"], dims["w"], dims["h"], lo, hi)},
                           repeat=5, min_seconds=0.2)
    rows.append(dict(case=f"size_prior, {n / 1e6:g} M boxes (dictionary classes), end to end", ours=t["tripwire"],
                     baseline=t["numpy"], baseline_name="vectorized NumPy"))
    log(f"size_prior: {t['tripwire'] * 1e3:.1f} ms vs {t['numpy'] * 1e3:.1f} ms")
    # empty_box given counts
    counts = rng.poisson(60, n).astype(np.int64)
    ct = pa.table({"frame": np.zeros(n, np.int64), "num_lidar_pts": counts})
    eb = tw.Suite([tw.points.empty_box(min_points=40, counts="num_lidar_pts")])
    rr, ss = numpy_few_points(counts, 40)
    assert np.array_equal(eb.check(ct).results[0][1].rows, rr)
    # one read of the counts column (a sum) bounds any implementation: NumPy's version is
    # within a small factor of it, so this case cannot be many times faster than NumPy
    t = timeit_interleaved({"tripwire": lambda: eb.check(ct), "numpy": lambda: numpy_few_points(counts, 40),
                            "read": lambda: np.add.reduce(counts)}, repeat=5, min_seconds=0.2)
    rows.append(dict(case=f"empty_box given counts, {n / 1e6:g} M boxes, end to end", ours=t["tripwire"],
                     baseline=t["numpy"], baseline_name="vectorized NumPy", read=t["read"],
                     gbps=counts.nbytes / t["tripwire"] / 1e9, bw=counts.nbytes / t["read"] / 1e9))
    log(f"empty_box given counts: {t['tripwire'] * 1e3:.1f} ms vs {t['numpy'] * 1e3:.1f} ms; one read of "
        f"the column {t['read'] * 1e3:.1f} ms (ceiling {t['numpy'] / t['read']:.1f}x NumPy)")
    return rows


def render(rows: list[dict[str, Any]], console) -> list[tuple[str, bool, str]]:
    from rich.table import Table

    t = Table(title="tripwire bench --family points (medians, warm-up excluded, timed in alternation)",
              title_justify="left")
    for c in ("case", "tripwire", "baseline", "ratio", "dense loop", "ratio to dense", "tests/s per core", "read GB/s"):
        t.add_column(c, justify="left" if c == "case" else "right")
    bars = []
    for r in rows:
        base = r.get("baseline")
        ratio = base / r["ours"] if base else None
        dense = r.get("dense")
        per_core = r["tests"] / r["ours"] / r.get("cores", 1) if r.get("tests") else None
        t.add_row(r["case"], f"{r['ours'] * 1e3:.2f} ms",
                  f"{base * 1e3:.1f} ms ({r['baseline_name']})" if base else "—",
                  f"{ratio:.1f}×" if ratio else "—",
                  f"{dense * 1e3:.0f} ms{r.get('dense_note', '')}" if dense else "—",
                  f"{dense / r['ours']:.0f}×" if dense else "—",
                  f"{per_core / 1e9:.2f} G" if per_core else "—",
                  f"{r['gbps']:.2f} of {r['bw']:.1f}" if r.get("gbps") else "—")
        if "200 boxes" in r["case"] and ratio:
            bars.append((f"points in boxes >= 20x the NumPy version at 200 boxes ({r['case']})", ratio >= 20,
                         f"{ratio:.1f}×"))
        if "200 boxes" in r["case"] and per_core:
            bars.append((f">= 2.5 G point-box tests/s per core ({r['case']})", per_core >= 2.5e9,
                         f"{per_core / 1e9:.2f} G"))
        if r["case"].startswith(("agree", "size_prior", "empty_box given")):
            extra = ""
            if r.get("read"):  # what the hardware allows: NumPy's time over one read of the input
                extra = f" (ceiling at one read of the column: {base / r['read']:.1f}×)"
            bars.append((f">= 5x vectorized NumPy: {r['case'].split(',')[0]}", ratio >= 5, f"{ratio:.1f}×{extra}"))
    console.print(t)
    return bars


def run_cli(sizes: list[int] | None = None, quick: bool = False, backends: list[str] | None = None) -> int:
    from rich.console import Console

    from .bench import print_bars

    out = sys.stdout
    console = Console(file=out, width=None if out.isatty() else 250, highlight=False)
    err = Console(file=sys.stderr, highlight=False)
    if backends and "cython" not in backends:
        err.print("tripwire bench --family points times the Cython kernels (the CPU default)")
    t0 = time.perf_counter()
    rows = run(quick=quick, sizes=sizes, log=lambda s: err.print(f"[dim]… {s}[/]"))
    bars = render(rows, console)
    print_bars(console, bars, [])
    console.print(f"({time.perf_counter() - t0:.0f} s; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
                  f"{os.cpu_count()} CPUs)")
    return 0
