"""Box assertions: tripwire per backend at 10, 30 and 100 boxes per frame (pytest-benchmark).

The data, assertions and baselines are those of ``tripwire bench --family boxes``
(:mod:`tripwire.bench_boxes`): realistic tracker output with injected errors
(:func:`tripwire.bench_boxes_baselines.track_table`). ``extra_info`` carries the boxes, the
bytes the kernel reads and (multibox) the box pairs tested, so throughput, bandwidth and pairs/s
can be read off the timings. 1 M boxes with TRIPWIRE_BENCH_FULL=1, 20 k otherwise (a smoke run).
Warm-up excluded (it compiles Numba). The baselines are timed here too, on the same table.
"""
from __future__ import annotations

import os

import pytest

from tripwire import _dispatch, bench_boxes
from tripwire import bench_boxes_baselines as bb

FULL = os.environ.get("TRIPWIRE_BENCH_FULL", "") not in ("", "0")
N_BOXES = 1_000_000 if FULL else 20_000
BACKENDS = [b for b in ("cython", "numba") if b in _dispatch.available()]


@pytest.mark.parametrize("per_frame", bench_boxes.DENSITIES)
@pytest.mark.parametrize("name", list(bench_boxes.ASSERTIONS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_tripwire(benchmark, backend, name, per_frame):
    table = bench_boxes.table(N_BOXES, per_frame)
    suite = bench_boxes.suite(name)
    benchmark.group = f"{name} @ {per_frame} boxes/frame"
    benchmark.extra_info.update(boxes=table.num_rows, nbytes=sum(table.column(c).nbytes
                                                                  for c in bench_boxes.ASSERTIONS[name][1]))
    if name == "multibox":
        benchmark.extra_info["pairs"] = bench_boxes._pairs(table)
    report = benchmark.pedantic(suite.check, args=(table,), kwargs={"backend": backend}, rounds=5, warmup_rounds=1)
    assert report.summary().column("rows")[0].as_py() == table.num_rows


@pytest.mark.parametrize("name", [n for n in bench_boxes.ASSERTIONS if n not in bench_boxes._SLOW_VECTORIZED])
def test_vectorized_baselines(benchmark, name):
    pytest.importorskip("pandas")
    table = bench_boxes.table(N_BOXES, 10)
    df = table.to_pandas()
    fns = {k: f for k, f in bb.BASELINES[name].items() if k != "loop"}
    best = min(fns, key=lambda k: bench_boxes.timeit(lambda: fns[k](df), repeat=3, min_seconds=0.05))
    benchmark.group = f"{name} @ 10 boxes/frame"
    benchmark.extra_info.update(boxes=table.num_rows, baseline=best)
    benchmark.pedantic(fns[best], args=(df,), rounds=3, warmup_rounds=1)
