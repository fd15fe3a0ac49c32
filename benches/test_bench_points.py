"""LIDAR points-in-box counting (pytest-benchmark): the Cython kernel, the straightforward NumPy
version and a dense per-pair loop, on scenes of :func:`tripwire.bench_points.scene` (the real
KITTI sweeps tiled). ``extra_info`` carries the dense-equivalent point-box tests. 1 M points with
TRIPWIRE_BENCH_FULL=1, 100 k otherwise (a smoke run). The full comparison, with the bars, is
``tripwire bench --family points``."""
from __future__ import annotations

import os

import pytest

from tripwire import bench_points

FULL = os.environ.get("TRIPWIRE_BENCH_FULL", "") not in ("", "0")
N_POINTS = 1_000_000 if FULL else 100_000


@pytest.mark.parametrize("n_boxes", [10, 200, 1000])
@pytest.mark.parametrize("impl", ["cython", "numpy", "dense"])
def test_points_in_boxes(benchmark, impl, n_boxes):
    p, b = bench_points.scene(N_POINTS, n_boxes, seed=n_boxes)
    fn = {"cython": bench_points._count_cy(p, b, n_boxes),
          "numpy": lambda: bench_points.numpy_count(p, b),
          "dense": lambda: bench_points.dense_pair_count(p, b)}[impl]
    benchmark.group = f"points in boxes, {N_POINTS:,} points, {n_boxes} boxes"
    benchmark.extra_info.update(tests=N_POINTS * n_boxes)
    got = benchmark.pedantic(fn, rounds=3, warmup_rounds=1)
    assert got.tolist() == bench_points._count_cy(p, b, n_boxes)().tolist()
