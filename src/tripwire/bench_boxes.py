"""``tripwire bench --family boxes``: every box assertion at 10, 30 and 100 boxes per frame.

For each (assertion, boxes per frame, table size) this measures, in one run:

- tripwire end to end, ``Suite.check(table, backend=...)``, per backend, timed in alternation
  with ``np.copyto`` of the columns the assertion reads (the memory bandwidth right now);
- the best vectorized pandas/NumPy version a skilled user would write (every variant in
  :mod:`tripwire.bench_boxes_baselines` is timed; the fastest counts);
- two per-frame Python loops: the paper library's style (``model_assertions`` walks pandas
  rows: ``groupby`` then ``iterrows`` per frame) and a tight loop over Python lists.

Every baseline is checked to flag exactly tripwire's rows on the data it is timed on. Slow
baselines (the loops, and the IoU association, which no NumPy user can vectorize across
frames) run on the table's first rows (whole frames) and are compared as boxes per second.
The data is :func:`~tripwire.bench_boxes_baselines.track_table`: realistic tracker output with
injected errors of every kind. Timings are medians with one untimed warm-up call.
"""
from __future__ import annotations

import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from . import bench_boxes_baselines as bb
from .bench import _fmt_rate, _fmt_ratio, _import, print_bars, timeit, timeit_interleaved

__all__ = ["ASSERTIONS", "DENSITIES", "suite", "run", "render", "bar_results", "run_cli", "paper_style_rows"]

DENSITIES = (10, 30, 100)
DEFAULT_SIZES = [1_000_000, 10_000_000]
QUICK_SIZES = [20_000]
SLOW_ROWS = 100_000  # rows the per-frame NumPy association baseline gets
LOOP_ROWS = 50_000  # rows the tight Python loop gets
PAPER_ROWS = 10_000  # rows the paper-style (pandas iterrows) loop gets


def suite(name: str):
    """The one-assertion Suite the box bench times for ``name`` (a key of ASSERTIONS)."""
    import tripwire as tw

    make = {
        "multibox": lambda: tw.boxes.multibox(iou=0.3, min_boxes=3),
        "flicker_track": lambda: tw.boxes.flicker(identity="track", max_gap=3),
        "flicker_iou": lambda: tw.boxes.flicker(identity="iou", iou=0.3, max_gap=3),
        "appear_track": lambda: tw.boxes.appear(identity="track", min_frames=3),
        "appear_iou": lambda: tw.boxes.appear(identity="iou", min_frames=3, iou=0.3, max_gap=3),
        "class_consistency": lambda: tw.boxes.class_consistency(),
        "valid": lambda: tw.boxes.valid(width=1920, height=1080),
    }[name]
    return tw.Suite([make()])


# assertion -> (label, columns its kernel reads: the bytes of the bandwidth figure)
ASSERTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "multibox": ("boxes.multibox(iou=0.3)", ("frame", "x1", "y1", "x2", "y2")),
    "flicker_track": ("boxes.flicker(identity='track')", ("frame", "track")),
    "flicker_iou": ("boxes.flicker(identity='iou')", ("frame", "cls", "x1", "y1", "x2", "y2")),
    "appear_track": ("boxes.appear(identity='track')", ("frame", "track", "score")),
    "appear_iou": ("boxes.appear(identity='iou')", ("frame", "cls", "score", "x1", "y1", "x2", "y2")),
    "class_consistency": ("boxes.class_consistency()", ("track", "cls")),
    "valid": ("boxes.valid(1920, 1080)", ("score", "x1", "y1", "x2", "y2")),
}
_SLOW_VECTORIZED = {"flicker_iou", "appear_iou"}  # a Python loop over frames even in NumPy
# baselines timed on SLOW_ROWS rows whatever the table size: the pandas self-merge materializes
# every same-frame pair (10 M boxes at 100 per frame: 10^9 rows, which no machine here holds)
_SLOW_BASELINES = {("multibox", "pandas self-merge+csgraph")}


@contextlib.contextmanager
def paper_style_rows():
    """Make the loops read rows the way the paper library does: ``df.groupby(frame)`` and
    ``iterrows()`` per frame (a pandas Series per box), instead of Python lists."""
    original = bb._frames_loop

    def frames(df, extra: tuple[str, ...] = ()):
        cols = list(extra) + list(bb._COORDS)
        for f, group in df.groupby("frame", sort=False):
            yield f, [(row,) + tuple(r[c] for c in cols) for row, r in group.iterrows()]

    bb._frames_loop = frames
    try:
        yield
    finally:
        bb._frames_loop = original


_TABLES: dict[tuple[int, int], pa.Table] = {}


def table(n: int, per_frame: int) -> pa.Table:
    key = (n, per_frame)
    if key not in _TABLES:
        _TABLES[key] = bb.track_table(n, per_frame, seed=per_frame)
    return _TABLES[key]


def _head(t: pa.Table, m: int) -> pa.Table:
    """The first ``m`` rows rounded down to whole frames (at least one frame)."""
    if m >= t.num_rows:
        return t
    frames = t.column("frame").to_numpy()
    cut = int(np.searchsorted(frames, frames[m], side="left")) or m
    return t.slice(0, cut)


def _pairs(t: pa.Table) -> int:
    """Box pairs multibox tests: sum over frames of k (k - 1) / 2."""
    _, counts = np.unique(t.column("frame").to_numpy(), return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


@dataclass
class Row:
    name: str
    per_frame: int
    n: int
    tripwire: dict[str, float] = field(default_factory=dict)  # backend -> seconds
    copy_gbs: float = 0.0
    nbytes: int = 0
    pairs: int = 0
    vectorized: dict[str, float] = field(default_factory=dict)  # name -> boxes/s
    loop_rate: float | None = None  # tight Python loop, boxes/s
    paper_rate: float | None = None  # paper-style loop, boxes/s
    errors: list[str] = field(default_factory=list)

    def rate(self, backend: str) -> float:
        return self.n / self.tripwire[backend]

    def gbs(self, backend: str) -> float:
        return self.nbytes / self.tripwire[backend] / 1e9

    @property
    def best_vectorized(self) -> tuple[str, float] | None:
        if not self.vectorized:
            return None
        name = max(self.vectorized, key=self.vectorized.get)
        return name, self.vectorized[name]


def _rows(report) -> np.ndarray:
    return np.unique(report.violations.column("row").to_numpy())


def _verify(row: Row, what: str, got: np.ndarray, want: np.ndarray) -> None:
    if not np.array_equal(np.unique(np.asarray(got, np.int64)), want):
        row.errors.append(f"{row.name}@{row.per_frame}: {what} flags other rows than tripwire "
                          f"({len(np.unique(got))} vs {len(want)})")


def run(sizes: list[int] | None = None, *, quick: bool = False, backends: list[str] | None = None,
        names: list[str] | None = None, densities: tuple[int, ...] = DENSITIES,
        progress: Callable[[str], None] | None = None) -> list[Row]:
    from tripwire import _dispatch

    sizes = list(sizes) if sizes else (QUICK_SIZES if quick else DEFAULT_SIZES)
    have = _dispatch.available()
    backends = [b for b in (backends or ["cython", "numba"]) if b in have]
    # Medians over long windows: >= 0.3 s of the least-timed contender's calls (up to ``rounds``
    # rounds: ~1 s for a sub-millisecond check) and >= 0.9 s of each baseline's. Noise on a
    # shared VM comes in bursts of a few hundred milliseconds; with 0.2 s windows a burst that
    # hit tripwire's window and not the baseline's swung a ratio by 1.5x. At least 25 rounds:
    # at 10^7 boxes 0.3 s is a dozen rounds, too few for a median to ride out one burst.
    repeat, budget, rounds = (5, 0.02, 50) if quick else (25, 0.3, 400)
    pd = _import("pandas")
    say = progress or (lambda s: None)
    out: list[Row] = []
    for name in names or list(ASSERTIONS):
        _, columns = ASSERTIONS[name]
        checked = suite(name)
        for per_frame in densities:
            for n in sizes:
                say(f"{name} @ {per_frame} boxes/frame, {n:,} boxes")
                t = table(n, per_frame)
                row = Row(name, per_frame, t.num_rows, nbytes=sum(t.column(c).nbytes for c in columns))
                if name == "multibox":
                    row.pairs = _pairs(t)
                src = [t.column(c).to_numpy() for c in columns]
                dst = [np.empty_like(a) for a in src]
                fns: dict[str, Callable[[], Any]] = {"copy": lambda: [np.copyto(d, s) for d, s in zip(dst, src)]}
                for be in backends:
                    fns[be] = (lambda be=be: checked.check(t, backend=be))
                want = None
                for k, fn in fns.items():
                    r = fn()  # warm-up (compiles Numba)
                    if k != "copy" and want is None:
                        want = _rows(r)
                med = timeit_interleaved(fns, repeat=repeat, min_seconds=budget, max_repeat=rounds)
                row.copy_gbs = row.nbytes / med.pop("copy") / 1e9
                row.tripwire.update(med)
                if pd is not None:
                    _baselines(row, name, t, want, checked, budget, rounds, quick)
                out.append(row)
    return out


def _baselines(row: Row, name: str, t: pa.Table, want: np.ndarray, checked, budget: float, rounds: int,
               quick: bool) -> None:
    """Time and verify every baseline of ``name`` (slow ones on the table's first frames)."""
    heads: dict[int, tuple[pa.Table, Any, np.ndarray]] = {}

    def head(m: int):
        if m not in heads:
            h = _head(t, m)
            heads[m] = (h, h.to_pandas(), want if h.num_rows == t.num_rows else _rows(checked.check(h)))
        return heads[m]

    for bname, fn in bb.BASELINES[name].items():
        if bname == "loop":
            continue
        slow = name in _SLOW_VECTORIZED or (name, bname) in _SLOW_BASELINES
        m = SLOW_ROWS // (10 if quick else 1) if slow else t.num_rows
        h, df, w = head(m)
        _verify(row, bname, fn(df), w)
        sec = timeit(lambda: fn(df), repeat=3 if quick else 4, min_seconds=3 * budget, max_repeat=rounds,
                     warmup=False)
        row.vectorized[bname] = h.num_rows / sec
    loop = bb.BASELINES[name]["loop"]
    h, df, w = head(LOOP_ROWS // (10 if quick else 1))
    _verify(row, "the Python loop", loop(df), w)
    row.loop_rate = h.num_rows / _once(lambda: loop(df))
    h, df, w = head(PAPER_ROWS // (10 if quick else 1))
    with paper_style_rows():
        _verify(row, "the paper-style loop", loop(df), w)
        row.paper_rate = h.num_rows / _once(lambda: loop(df))


def _once(fn: Callable[[], Any], runs: int = 3, within: float = 3.0) -> float:
    """Median of up to ``runs`` calls within ``within`` seconds (loops take seconds)."""
    times: list[float] = []
    while len(times) < runs and sum(times) < within:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ----------------------------------------------------------------------------------------------
# Bars (issue "2D video detections") and output
# ----------------------------------------------------------------------------------------------
BANDWIDTH_BAR = {"flicker_track": 0.5, "appear_track": 0.5, "class_consistency": 0.5}
MULTIBOX_PAIRS_BAR = 150e6
FLICKER_IOU_BAR = 20e6  # boxes/s at 10 boxes per frame
VECTORIZED_BAR = 5.0
LOOP_BAR = 1000.0


def bar_results(rows: list[Row]) -> list[tuple[str, bool, str]]:
    out = []
    for r in rows:
        where = f"{r.name} @ {r.per_frame}/frame, {r.n:,}"
        for be in r.tripwire:
            if r.name in BANDWIDTH_BAR:
                v = r.gbs(be) / r.copy_gbs
                out.append((f"{where} [{be}] ≥ {BANDWIDTH_BAR[r.name]:.0%} of copy bandwidth",
                            v >= BANDWIDTH_BAR[r.name], f"{v:.0%} ({r.gbs(be):.2f} of {r.copy_gbs:.2f} GB/s)"))
            if r.name == "multibox":
                v = r.pairs / r.tripwire[be]
                out.append((f"{where} [{be}] ≥ 150 M box pairs/s", v >= MULTIBOX_PAIRS_BAR,
                            f"{v / 1e6:.0f} M pairs/s ({_fmt_rate(r.rate(be))} boxes/s)"))
            if r.name == "flicker_iou" and r.per_frame == 10:
                v = r.rate(be)
                out.append((f"{where} [{be}] ≥ 20 M boxes/s", v >= FLICKER_IOU_BAR, f"{v / 1e6:.1f} M boxes/s"))
            best = r.best_vectorized
            if best is not None:
                v = r.rate(be) / best[1]
                out.append((f"{where} [{be}] ≥ 5× best pandas/NumPy ({best[0]})", v >= VECTORIZED_BAR, _fmt_ratio(v)))
            if r.paper_rate:
                v = r.rate(be) / r.paper_rate
                out.append((f"{where} [{be}] ≥ 1000× per-frame Python loop (paper style)", v >= LOOP_BAR,
                            _fmt_ratio(v)))
    return out


def render(rows: list[Row], console) -> None:
    from rich.table import Table

    backends = sorted({b for r in rows for b in r.tripwire}, key=lambda b: ("cython", "numba", "cupy").index(b))
    joined = " / ".join(backends)
    t = Table(title="tripwire bench: box assertions (end-to-end Suite.check; medians, warm-up excluded)",
              title_justify="left")
    for col in ["assertion", "boxes/frame", "boxes"] + [f"{b}\nboxes/s" for b in backends] + [
            "best pandas/NumPy\nboxes/s", f"× best\n{joined}", "paper-style loop\nboxes/s", f"× paper loop\n{joined}",
            "Python loop\nboxes/s", f"× Python loop\n{joined}", f"% of copy bw\n{joined}"]:
        t.add_column(col, justify="left" if col == "assertion" else "right")
    for r in rows:
        cells = [ASSERTIONS[r.name][0], str(r.per_frame), f"{r.n:,}"]
        cells += [_fmt_rate(r.rate(b)) for b in backends]
        best = r.best_vectorized
        if best:
            cells += [f"{_fmt_rate(best[1])}\n{best[0]}", " / ".join(_fmt_ratio(r.rate(b) / best[1]) for b in backends)]
        else:
            cells += ["—", "—"]
        for rate in (r.paper_rate, r.loop_rate):
            cells += [_fmt_rate(rate), " / ".join(_fmt_ratio(r.rate(b) / rate) for b in backends) if rate else "—"]
        cells.append(" / ".join(f"{r.gbs(b) / r.copy_gbs:.0%}" for b in backends))
        t.add_row(*cells)
    console.print(t)
    print_bars(console, bar_results(rows), [e for r in rows for e in r.errors])


def run_cli(sizes: list[int] | None = None, quick: bool = False, backends: list[str] | None = None,
            names: list[str] | None = None, densities: tuple[int, ...] = DENSITIES) -> int:
    from rich.console import Console

    out = sys.stdout
    console = Console(file=out, width=None if out.isatty() else 250, highlight=False)
    err = Console(file=sys.stderr, highlight=False)
    rows = run(sizes, quick=quick, backends=backends, names=names, densities=densities,
               progress=(lambda s: err.print(f"[dim]… {s}[/]")) if sys.stderr.isatty() else None)
    render(rows, console)
    return 1 if any(r.errors for r in rows) else 0
