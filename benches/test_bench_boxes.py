"""boxes.multibox: tripwire per backend at 10, 30 and 100 boxes per frame.

Reports box pairs per second (``extra_info['pairs']`` / time): the issue's bar is >= 150 M
pairs/s per core. Random boxes over a 1920x1080 frame (seeded); 1 M boxes with
TRIPWIRE_BENCH_FULL=1, 20 k otherwise (a smoke run). Warm-up excluded (it compiles Numba).
"""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

import tripwire as tw
from tripwire import _dispatch

FULL = os.environ.get("TRIPWIRE_BENCH_FULL", "") not in ("", "0")
N_BOXES = 1_000_000 if FULL else 20_000
BACKENDS = [b for b in ("cython", "numba") if b in _dispatch.available()]


def boxes_table(per_frame: int, n_boxes: int = N_BOXES, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng([seed, per_frame])
    frames = n_boxes // per_frame
    n = frames * per_frame
    cx, cy = rng.uniform(0, 1920, n), rng.uniform(0, 1080, n)
    w, h = rng.uniform(20, 200, n), rng.uniform(40, 300, n)
    return pa.table({
        "frame": np.repeat(np.arange(frames, dtype=np.int64), per_frame),
        "x1": (cx - w / 2).astype(np.float32), "y1": (cy - h / 2).astype(np.float32),
        "x2": (cx + w / 2).astype(np.float32), "y2": (cy + h / 2).astype(np.float32),
        "score": rng.random(n, dtype=np.float32),
    })


@pytest.mark.parametrize("per_frame", [10, 30, 100])
@pytest.mark.parametrize("backend", BACKENDS)
def test_multibox(benchmark, backend, per_frame):
    table = boxes_table(per_frame)
    suite = tw.Suite([tw.boxes.multibox(iou=0.3, min_boxes=3)])
    benchmark.group = f"multibox @ {per_frame} boxes/frame"
    benchmark.extra_info.update(rows=table.num_rows,
                                pairs=table.num_rows // per_frame * per_frame * (per_frame - 1) // 2)
    report = benchmark.pedantic(suite.check, args=(table,), kwargs={"backend": backend},
                                rounds=5, warmup_rounds=1)
    assert report.summary().column("rows")[0].as_py() == table.num_rows
