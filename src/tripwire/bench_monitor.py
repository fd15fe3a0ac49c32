"""``tripwire bench --family monitor``: what a ``Monitor`` costs in a request path.

Measured in one run, on realistic tracker output (:func:`tripwire.bench_boxes_baselines.track_table`):

- latency of ``observe`` for one frame of 30 boxes with the 5-assertion box suite
  (:func:`suite`), after a warm-up of 200 frames: p50, p90, p99, max over ``frames`` calls;
- throughput on large batches: ``observe`` over the table cut into batches, plus ``flush``,
  against ``Suite.check`` on the whole table, timed in alternation (median ratio), for the box
  suite, ``flicker`` + ``appear`` by IoU (:func:`iou_suite`) and the generic per-identity
  checks (:func:`rows_suite`).

The issue's bars: p50 <= 20 us, p99 <= 100 us; throughput >= 50 % of ``Suite.check``.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import pyarrow as pa

from . import bench_boxes_baselines as bb
from .monitor import Monitor
from .suite import Suite

__all__ = ["suite", "latency", "throughput", "run_cli"]


def suite() -> Suite:
    """The 5-assertion suite of the latency bar: every box assertion, identity by track."""
    from . import boxes

    return Suite([boxes.multibox(iou=0.5), boxes.flicker(max_gap=3), boxes.appear(),
                  boxes.class_consistency(), boxes.valid(width=4000, height=4000)])


def iou_suite() -> Suite:
    """``flicker`` and ``appear`` by IoU identity (no track ids: association across batches)."""
    from . import boxes

    return Suite([boxes.flicker(identity="iou"), boxes.appear(identity="iou")])


def rows_suite() -> Suite:
    """The generic per-identity checks (held per identity until quiet for ``horizon`` rows)."""
    from . import rows

    return Suite([rows.consistent(id="track", attr="cls"), rows.contiguous(id="track", time="frame", window=5)])


def _frames(table: pa.Table) -> list[pa.Table]:
    f = table.column("frame").to_numpy()
    cuts = np.flatnonzero(np.diff(f)) + 1
    starts = np.r_[0, cuts]
    ends = np.r_[cuts, len(f)]
    return [table.slice(a, b - a) for a, b in zip(starts, ends)]


def latency(frames: int = 3000, per_frame: int = 30, warmup: int = 200) -> dict[str, float]:
    """Microseconds per ``observe`` of one frame: p50, p90, p99, max."""
    table = bb.track_table((frames + warmup) * per_frame, per_frame, seed=per_frame)
    parts = _frames(table)
    mon = Monitor(suite())
    for p in parts[:warmup]:
        mon.observe(p)
    took = []
    for p in parts[warmup:]:
        t0 = time.perf_counter()
        mon.observe(p)
        took.append(time.perf_counter() - t0)
    us = np.array(took) * 1e6
    return {"frames": len(us), "boxes": int(np.mean([p.num_rows for p in parts[warmup:]])),
            "p50": float(np.percentile(us, 50)), "p90": float(np.percentile(us, 90)),
            "p99": float(np.percentile(us, 99)), "max": float(us.max())}


def throughput(rows: int = 1_000_000, batch: int = 100_000, per_frame: int = 10, repeat: int = 5,
               the_suite: Suite | None = None) -> dict[str, float]:
    """Monitor over batches vs Suite.check on the whole table (same violations, checked)."""
    the_suite = the_suite or suite()
    table = bb.track_table(rows, per_frame, seed=per_frame)
    expected = len(the_suite.check(table))

    def streamed() -> int:
        mon = Monitor(the_suite)
        n = sum(len(mon.observe(table.slice(o, batch))) for o in range(0, table.num_rows, batch))
        return n + len(mon.flush())

    assert streamed() == expected, "the monitor disagrees with Suite.check"
    ratios, t_check, t_mon = [], [], []
    for _ in range(repeat):  # alternate, so both see the same machine load
        t0 = time.perf_counter()
        the_suite.check(table)
        t1 = time.perf_counter()
        streamed()
        t2 = time.perf_counter()
        t_check.append(t1 - t0)
        t_mon.append(t2 - t1)
        ratios.append((t1 - t0) / (t2 - t1))
    return {"rows": rows, "batch": batch, "check_s": statistics.median(t_check),
            "monitor_s": statistics.median(t_mon), "ratio": statistics.median(ratios)}


def run_cli(quick: bool = False) -> int:
    lat = latency(frames=300 if quick else 3000)
    print(f"Monitor.observe, one frame of {lat['boxes']} boxes, 5 assertions ({lat['frames']} frames): "
          f"p50 {lat['p50']:.1f} us, p90 {lat['p90']:.1f} us, p99 {lat['p99']:.1f} us, max {lat['max']:.1f} us "
          f"(bars: p50 <= 20 us, p99 <= 100 us)")
    suites = [("5-assertion box suite", suite())]
    if not quick:
        suites += [("flicker + appear by IoU", iou_suite()), ("rows.consistent + rows.contiguous", rows_suite())]
    for name, the_suite in suites:
        for batch in ((20_000,) if quick else (100_000, 10_000)):
            th = throughput(rows=100_000 if quick else 1_000_000, batch=batch, repeat=2 if quick else 5,
                            the_suite=the_suite)
            print(f"Monitor throughput, {name}, {th['rows']:,} boxes in batches of {th['batch']:,}: "
                  f"check {th['check_s'] * 1e3:.0f} ms, monitor {th['monitor_s'] * 1e3:.0f} ms, "
                  f"{th['ratio']:.2f}x of Suite.check (bar: >= 0.50x)")
    return 0
