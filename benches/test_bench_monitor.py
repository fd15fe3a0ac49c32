"""Monitor: observe latency for one 30-box frame and large-batch throughput vs Suite.check
(pytest-benchmark; warm-up excluded). The same figures, with p99 and the ratio measured in
alternation, come from ``tripwire bench --family monitor`` (:mod:`tripwire.bench_monitor`)."""
from __future__ import annotations

import os

import pytest

from tripwire import Monitor, bench_monitor
from tripwire import bench_boxes_baselines as bb

FULL = os.environ.get("TRIPWIRE_BENCH_FULL", "") not in ("", "0")


def test_observe_one_frame(benchmark):
    parts = bench_monitor._frames(bb.track_table(30 * 3000, 30, seed=30))
    mon = Monitor(bench_monitor.suite())
    frames = iter(parts)
    for _ in range(200):
        mon.observe(next(frames))
    benchmark.group = "Monitor.observe: one frame of 30 boxes, 5 assertions"
    benchmark.pedantic(lambda: mon.observe(next(frames)), rounds=2000 if FULL else 500, iterations=1)
    assert not mon.rejected


@pytest.mark.parametrize("mode", ["Suite.check", "Monitor batches of 100k"])
def test_large_batches(benchmark, mode):
    rows = 1_000_000 if FULL else 100_000
    table = bb.track_table(rows, 10, seed=10)
    suite = bench_monitor.suite()
    benchmark.group = f"{rows:,} boxes: Monitor vs Suite.check"

    def streamed():
        mon = Monitor(suite)
        for o in range(0, rows, 100_000):
            mon.observe(table.slice(o, 100_000))
        return mon.flush()

    fn = (lambda: suite.check(table)) if mode == "Suite.check" else streamed
    benchmark.pedantic(fn, rounds=5, warmup_rounds=1)
