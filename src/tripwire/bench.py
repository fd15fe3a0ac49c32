"""``tripwire bench``: throughput of the generic row assertions against their baselines.

For each case (an assertion on generated data) this measures, in one run:

- tripwire end to end, ``Suite.check(table, backend=...)`` on a ``pyarrow.Table``, per backend;
- the best vectorized pandas/NumPy version a skilled user would write (every variant listed in
  the case is timed; the fastest counts), producing the same flagged rows;
- the paper library (``model_assertions`` 0.0.3, MLSys 2020) on a smaller slice (it is a Python
  loop per row), compared as per-row throughput;
- the memory bandwidth, as ``np.copyto`` of the same bytes the kernel reads, so the kernel's
  GB/s can be read as a fraction of what the machine moves right now.

Every timing excludes one untimed warm-up call (which also compiles Numba) and is the median of
several repeats. pandas and model_assertions are only imported here, when benchmarking (extras
``bench`` / ``test``). ``benches/`` (pytest-benchmark) reuses the cases and data generators.
"""
from __future__ import annotations

import importlib
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa

__all__ = [
    "Case", "CASES", "case", "make_table", "tripwire_suite", "pandas_frame", "baselines",
    "paper_fn", "timeit", "timeit_interleaved", "copy_fn", "run", "run_cli", "BARS",
]

_EXTRAS_HINT = "pip install 'tripwire[bench]'"

# ----------------------------------------------------------------------------------------------
# Data generators (deterministic: seeded by case and size)
# ----------------------------------------------------------------------------------------------
N_CLASSES = 7
FLIP_RATE = 1e-3  # share of rows whose attribute disagrees with their id's
FRAMES_PER_ID = 100  # contiguous: each id lives for this many frames ...
GAP_RATE = 0.02  # ... and misses this share of them


def _rng(name: str, n: int) -> np.random.Generator:
    return np.random.default_rng([sum(map(ord, name)), n])


def _consistent_table(n: int, rng: np.random.Generator) -> pa.Table:
    n_ids = max(n // 10, 1)
    ids = rng.integers(0, n_ids, n, dtype=np.int64)
    cls = (ids % N_CLASSES).astype(np.int32)
    flip = rng.random(n) < FLIP_RATE
    cls[flip] = (cls[flip] + 1) % N_CLASSES
    return pa.table({"track_id": ids, "cls": cls})


def _contiguous_table(n: int, rng: np.random.Generator) -> pa.Table:
    n_ids = max(n // FRAMES_PER_ID, 1)
    frames = -(-n // n_ids) + int(n * GAP_RATE / n_ids) + 2
    # rows arrive frame by frame (the order a tracker emits them); each id misses some frames
    frame = np.repeat(np.arange(frames, dtype=np.int64), n_ids)
    ids = np.tile(np.arange(n_ids, dtype=np.int64), frames)
    keep = rng.random(len(frame)) >= GAP_RATE
    frame, ids = frame[keep][:n], ids[keep][:n]
    return pa.table({"track_id": ids, "frame": frame})


def _check_table(n: int, rng: np.random.Generator) -> pa.Table:
    return pa.table({"x": rng.random(n, dtype=np.float32)})


def _boxes_table(n: int, rng: np.random.Generator) -> pa.Table:
    score = rng.random(n, dtype=np.float32)
    bad = rng.random(n) < FLIP_RATE
    score[bad] += np.float32(1.0)
    x1 = (rng.random(n, dtype=np.float32) * np.float32(1000)).astype(np.float32)
    w = (rng.random(n, dtype=np.float32) * np.float32(100) + np.float32(1)).astype(np.float32)
    w[rng.random(n) < FLIP_RATE] *= np.float32(-1)
    return pa.table({"score": score, "x1": x1, "x2": (x1 + w).astype(np.float32)})


def _box_too_wide(x1, x2):  # the benchmark's @tw.assertion (per row, compiled by Numba)
    return x2 - x1 > 100.5


# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One benchmarked assertion: data, the tripwire suite, baselines and the paper library."""

    name: str  # short id (pytest ids, table rows)
    label: str  # what the table prints
    table: Callable[[int, np.random.Generator], pa.Table]
    columns: tuple[str, ...]  # columns the kernel reads (bytes for the bandwidth figure)
    paper: str | None  # which paper-library assertion, or None
    paper_rows: int = 100_000  # rows the paper library gets (it is slow)
    notes: dict[str, Any] = field(default_factory=dict)


CASES: list[Case] = [
    Case("consistent", "rows.consistent (ids = rows/10)", _consistent_table, ("track_id", "cls"),
         "IdentifierConsistencyAssertion"),
    Case("contiguous", "rows.contiguous (ids × frames, 2 % gaps)", _contiguous_table,
         ("track_id", "frame"), "TimeConsistencyAssertion"),
    Case("check", "rows.check 'x > 0.999' (float32)", _check_table, ("x",), None),
    Case("check_compound", "rows.check 'score < 0 or score > 1 or x2 <= x1'", _boxes_table,
         ("score", "x1", "x2"), None),
    Case("udf", "@tw.assertion per row, always Numba (x2 - x1 > 100.5)", _boxes_table, ("x1", "x2"),
         "PerRowAssertion", paper_rows=20_000),
]


def case(name: str) -> Case:
    for c in CASES:
        if c.name == name:
            return c
    raise KeyError(f"no bench case {name!r}; cases: {', '.join(c.name for c in CASES)}")


_TABLES: dict[tuple[str, int], pa.Table] = {}


def make_table(c: Case, n: int, *, cache: bool = True) -> pa.Table:
    """The case's input table with ``n`` rows (one chunk, no nulls), deterministic."""
    key = (c.name, n)
    if cache and key in _TABLES:
        return _TABLES[key]
    t = c.table(n, _rng(c.name, n)).combine_chunks()
    if cache:
        _TABLES[key] = t
    return t


def clear_cache() -> None:
    _TABLES.clear()


def tripwire_suite(c: Case):
    """The ``tripwire.Suite`` the case times (built fresh; nothing is registered)."""
    import tripwire as tw
    from tripwire.udf import UserAssertion

    if c.name == "consistent":
        a = tw.rows.consistent(id="track_id", attr="cls")
    elif c.name == "contiguous":
        a = tw.rows.contiguous(id="track_id", time="frame", window=3, allowed_transitions=1)
    elif c.name == "check":
        a = tw.rows.check("x > 0.999")
    elif c.name == "check_compound":
        a = tw.rows.check("score < 0 or score > 1 or x2 <= x1")
    elif c.name == "udf":
        a = UserAssertion(_box_too_wide, kind="bench.box_too_wide", columns=["x1", "x2"], per="row", by=None)
    else:  # pragma: no cover - CASES and this function change together
        raise KeyError(c.name)
    return tw.Suite([a])


def tripwire_fn(c: Case, table: pa.Table, backend: str) -> Callable[[], Any]:
    suite = tripwire_suite(c)
    return lambda: suite.check(table, backend=backend)


# ----------------------------------------------------------------------------------------------
# Baselines (pandas and the paper library are imported only here)
# ----------------------------------------------------------------------------------------------
def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def missing_extras() -> list[str]:
    """Baseline packages that are not installed (``pandas``, ``model_assertions``)."""
    return [m for m in ("pandas", "model_assertions") if _import(m) is None]


def pandas_frame(table: pa.Table):
    """The table as a pandas DataFrame (NumPy dtypes), built once outside the timing."""
    return table.to_pandas()


def baselines(c: Case, table: pa.Table, df=None) -> dict[str, Callable[[], np.ndarray]]:
    """Vectorized pandas/NumPy versions of the case, each returning the flagged rows.

    Each is a full equivalent of what tripwire returns as ``violations['row']`` for the case's
    data (same rows, possibly another order). ``df`` is the pandas frame (``None``: NumPy
    baselines only).
    """
    out: dict[str, Callable[[], np.ndarray]] = {}
    cols = {name: table.column(name).to_numpy() for name in c.columns}
    if c.name == "consistent":
        if df is not None:
            def groupby_nunique():
                # skilled user: nunique per id, then the first row of each distinct value of bad ids
                nu = df.groupby("track_id", sort=False)["cls"].nunique()
                bad = df["track_id"].isin(nu.index[nu.to_numpy() > 1])
                sub = df.loc[bad, ["track_id", "cls"]]
                return sub.index.to_numpy()[~sub.duplicated().to_numpy()]

            def drop_duplicates():
                # faster: distinct (id, value) pairs; ids seen in more than one pair are bad
                pairs = df[["track_id", "cls"]].drop_duplicates()
                return pairs.index.to_numpy()[pairs["track_id"].duplicated(keep=False).to_numpy()]

            out["pandas groupby.nunique"] = groupby_nunique
            out["pandas drop_duplicates"] = drop_duplicates
    elif c.name == "contiguous":
        # specialised to the case's window=3, allowed_transitions=1: a violation is a gap of
        # exactly one frame between consecutive distinct frames of one id (rows i and i+1)
        if df is not None:
            def sort_groupby_diff():
                s = df.sort_values(["track_id", "frame"], kind="stable").drop_duplicates(["track_id", "frame"])
                d = s.groupby("track_id", sort=False)["frame"].diff(-1).to_numpy()
                i = np.flatnonzero(d == -2)
                idx = s.index.to_numpy()
                return np.concatenate([idx[i], idx[i + 1]])

            def sort_numpy_diff():
                s = df.sort_values(["track_id", "frame"], kind="stable").drop_duplicates(["track_id", "frame"])
                ids, t, idx = s["track_id"].to_numpy(), s["frame"].to_numpy(), s.index.to_numpy()
                i = np.flatnonzero((ids[1:] == ids[:-1]) & (t[1:] - t[:-1] == 2))
                return np.concatenate([idx[i], idx[i + 1]])

            out["pandas sort+groupby.diff"] = sort_groupby_diff
            out["pandas sort+numpy diff"] = sort_numpy_diff

        ids, t = cols["track_id"], cols["frame"]

        def numpy_lexsort():
            o = np.lexsort((t, ids))
            si, st = ids[o], t[o]
            i = np.flatnonzero((si[1:] == si[:-1]) & (st[1:] - st[:-1] == 2))
            return np.concatenate([o[i], o[i + 1]])

        out["numpy lexsort+diff"] = numpy_lexsort
    elif c.name == "check":
        x = cols["x"]
        out["numpy flatnonzero"] = lambda: np.flatnonzero(x > 0.999)
        if df is not None:
            out["pandas mask"] = lambda: df.index.to_numpy()[(df["x"] > 0.999).to_numpy()]
    elif c.name == "check_compound":
        s, x1, x2 = cols["score"], cols["x1"], cols["x2"]
        out["numpy flatnonzero"] = lambda: np.flatnonzero((s < 0) | (s > 1) | (x2 <= x1))
        if df is not None:
            out["pandas mask"] = lambda: df.index.to_numpy()[
                ((df["score"] < 0) | (df["score"] > 1) | (df["x2"] <= df["x1"])).to_numpy()]
    elif c.name == "udf":
        x1, x2 = cols["x1"], cols["x2"]
        out["numpy flatnonzero"] = lambda: np.flatnonzero(x2 - x1 > 100.5)
        if df is not None:
            out["pandas mask"] = lambda: df.index.to_numpy()[(df["x2"] - df["x1"] > 100.5).to_numpy()]
    return out


def paper_fn(c: Case, table: pa.Table) -> Callable[[], list] | None:
    """The paper library's assertion over ``table`` (as pandas inputs/outputs), or ``None``."""
    if c.paper is None:
        return None
    pd = _import("pandas")
    if pd is None or _import("model_assertions") is None:
        return None
    if c.name == "consistent":
        from model_assertions.consistency import IdentifierConsistencyAssertion

        df = table.to_pandas()
        check = IdentifierConsistencyAssertion("track_id", "cls").get_assertion()
        inps, outs = df[["track_id"]], df[["cls"]]
    elif c.name == "contiguous":
        from model_assertions.consistency import TimeConsistencyAssertion

        df = table.to_pandas()
        check = TimeConsistencyAssertion("track_id", "frame", window=3, allowed_transitions=1).get_assertion()
        inps, outs = df, df.iloc[:, :0]
    elif c.name == "udf":
        from model_assertions.per_row import PerRowAssertion

        df = table.to_pandas()
        check = PerRowAssertion(lambda inp, out: out["x2"] - out["x1"] > 100.5, name="too_wide").get_assertion()
        inps, outs = df[["score"]], df[["x1", "x2"]]
    else:  # pragma: no cover
        return None

    def go():
        with warnings.catch_warnings():  # the 2020 library predates pandas 2's deprecations
            warnings.simplefilter("ignore")
            return check(inps, outs)

    return go


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------
def timeit(fn: Callable[[], Any], *, repeat: int = 7, min_seconds: float = 0.2, max_repeat: int = 50,
           warmup: bool = True) -> float:
    """Median seconds per call: one untimed warm-up call, then ``repeat`` timed calls (more, up
    to ``max_repeat``, until ``min_seconds`` have been spent timing)."""
    if warmup:
        fn()
    times: list[float] = []
    spent = 0.0
    while len(times) < repeat or (spent < min_seconds and len(times) < max_repeat):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
    return statistics.median(times)


def timeit_interleaved(fns: dict[str, Callable[[], Any]], *, repeat: int = 7, min_seconds: float = 0.2,
                       max_repeat: int = 50) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternation (round robin) so that all
    of them see the same machine state: a noisy neighbour slows every contender alike. Callers
    run the warm-up calls first."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    spent = dict.fromkeys(fns, 0.0)
    while True:
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            times[k].append(dt)
            spent[k] += dt
        done = len(times[next(iter(fns))])
        if done >= max_repeat or (done >= repeat and min(spent.values()) >= min_seconds):
            break
    return {k: statistics.median(v) for k, v in times.items()}


def kernel_bytes(c: Case, table: pa.Table) -> int:
    """Bytes the kernel reads: the columns it reads, once."""
    return sum(table.column(name).nbytes for name in c.columns)


def copy_fn(c: Case, table: pa.Table) -> Callable[[], None]:
    """``np.copyto`` of the same bytes the kernel reads (its columns) into preallocated arrays."""
    src = [table.column(name).to_numpy() for name in c.columns]
    dst = [np.empty_like(a) for a in src]

    def copy():
        for d, s in zip(dst, src):
            np.copyto(d, s)

    return copy


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------
@dataclass
class Row:
    case: Case
    n: int
    tripwire: dict[str, float] = field(default_factory=dict)  # backend -> seconds
    baselines: dict[str, float] = field(default_factory=dict)  # name -> seconds
    paper_rows: int = 0
    paper_seconds: float | None = None
    # backend -> median over rounds of (tripwire rate / paper rate), each round timing the paper
    # library and then the backend, so both see the same machine state
    paper_ratios: dict[str, float] = field(default_factory=dict)
    nbytes: int = 0
    copy_gbs: float | None = None
    errors: list[str] = field(default_factory=list)

    def rate(self, backend: str) -> float:
        return self.n / self.tripwire[backend]

    @property
    def best_baseline(self) -> tuple[str, float] | None:
        if not self.baselines:
            return None
        name = min(self.baselines, key=self.baselines.get)
        return name, self.baselines[name]

    @property
    def paper_rate(self) -> float | None:
        return None if self.paper_seconds is None else self.paper_rows / self.paper_seconds

    def paper_ratio(self, backend: str) -> float | None:
        return self.paper_ratios.get(backend)

    def gbs(self, backend: str) -> float:
        return self.nbytes / self.tripwire[backend] / 1e9


DEFAULT_SIZES = [1_000_000, 10_000_000]
QUICK_SIZES = [100_000]


def _verify(c: Case, report, base_rows: np.ndarray) -> str | None:
    got = np.sort(report.violations.column("row").to_numpy())
    want = np.sort(np.asarray(base_rows, np.int64))
    if not np.array_equal(got, want):
        return f"{c.name}: tripwire and the baseline flag different rows ({len(got)} vs {len(want)})"
    return None


def run(sizes: list[int] | None = None, *, quick: bool = False, backends: list[str] | None = None,
        cases: list[str] | None = None, paper_rows: int | None = None,
        progress: Callable[[str], None] | None = None) -> list[Row]:
    """Measure every case at every size; returns the rows :func:`render` prints."""
    from tripwire import _dispatch

    sizes = list(sizes) if sizes else (QUICK_SIZES if quick else DEFAULT_SIZES)
    have = _dispatch.available()
    backends = [b for b in (backends or ["cython", "numba"]) if b in have or b not in ("numba", "cupy")]
    repeat = 5 if quick else 9
    budget = 0.02 if quick else 0.2  # least seconds of timed calls per measurement
    pd_ok = _import("pandas") is not None
    rows: list[Row] = []
    paper_fns: dict[str, tuple[int, Callable[[], Any] | None]] = {}
    for c in (CASES if not cases else [case(n) for n in cases]):
        for n in sizes:
            say = progress or (lambda s: None)
            say(f"{c.name} @ {n:,} rows")
            table = make_table(c, n)
            row = Row(c, n, nbytes=kernel_bytes(c, table))
            # the copy (memory bandwidth) and every backend, timed in alternation
            fns: dict[str, Callable[[], Any]] = {"copy": copy_fn(c, table)}
            reports = {}
            for be in backends:
                fns[be] = tripwire_fn(c, table, be)
            for k, fn in fns.items():
                out = fn()  # warm-up (compiles Numba); tripwire's reports verify the baselines
                if k != "copy":
                    reports[k] = out
            med = timeit_interleaved(fns, repeat=repeat, min_seconds=budget)
            row.copy_gbs = row.nbytes / med.pop("copy") / 1e9
            row.tripwire.update(med)
            df = pandas_frame(table) if pd_ok else None
            for name, fn in baselines(c, table, df).items():
                got = fn()
                for be, rep in reports.items():
                    err = _verify(c, rep, got)
                    if err and err not in row.errors:
                        row.errors.append(f"{err} [{name} vs {be}]")
                row.baselines[name] = timeit(fn, repeat=max(3, repeat // 2), min_seconds=budget, warmup=False)
            del df
            # the paper library on its own (smaller) slice, in rounds side by side with each
            # backend: one paper run, then the backend; the ratio is the median over rounds
            if c.paper is not None:
                if c.name not in paper_fns:
                    m = min(paper_rows or c.paper_rows, n)
                    if quick:
                        m = min(m, max(c.paper_rows // 10, 1000))
                    fn = paper_fn(c, make_table(c, m, cache=False))
                    if fn is not None:
                        paper_fn(c, make_table(c, min(m, 1000), cache=False))()  # warm-up
                    paper_fns[c.name] = (m, fn)
                m, fn = paper_fns[c.name]
                if fn is not None:
                    say(f"{c.name}: paper library @ {m:,} rows, side by side")
                    runs: list[float] = []
                    ratios: dict[str, list[float]] = {be: [] for be in backends}
                    # 3 to 5 rounds within ~5 s (one paper run at 10^5 rows takes ~0.2 s); quick: 1 to 5
                    # within 0.5 s
                    min_rounds, budget_s = (1, 0.5) if quick else (3, 5.0)
                    while len(runs) < 5 and (len(runs) < min_rounds or sum(runs) < budget_s):
                        t0 = time.perf_counter()
                        fn()
                        runs.append(time.perf_counter() - t0)
                        for be in backends:
                            sec = timeit(fns[be], repeat=3, min_seconds=0.0, max_repeat=3, warmup=False)
                            ratios[be].append((n / sec) / (m / runs[-1]))
                    row.paper_rows, row.paper_seconds = m, statistics.median(runs)
                    row.paper_ratios = {be: statistics.median(v) for be, v in ratios.items()}
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# Bars (DESIGN §9 / the project's targets) and output
# ----------------------------------------------------------------------------------------------
BARS = {
    "consistent": [("paper", 1000.0), ("baseline", 5.0)],
    "contiguous": [("paper", 1000.0)],
    "check": [("bandwidth", 0.5)],
    "udf": [("paper", 100.0)],
}


def bar_results(rows: list[Row]) -> list[tuple[str, bool, str]]:
    out = []
    for r in rows:
        for what, target in BARS.get(r.case.name, []):
            for be, sec in r.tripwire.items():
                if what == "paper":
                    v = r.paper_ratio(be)
                    if v is None:
                        continue
                    out.append((f"{r.case.name} @ {r.n:,} [{be}] ≥ {target:,.0f}× paper library",
                                v >= target, f"{v:,.0f}×"))
                elif what == "baseline":
                    best = r.best_baseline
                    if best is None:
                        continue
                    v = best[1] / sec
                    out.append((f"{r.case.name} @ {r.n:,} [{be}] ≥ {target:g}× best pandas/NumPy ({best[0]})",
                                v >= target, f"{v:.1f}×"))
                elif what == "bandwidth" and r.copy_gbs:
                    v = r.gbs(be) / r.copy_gbs
                    out.append((f"{r.case.name} @ {r.n:,} [{be}] ≥ {target:.0%} of copy bandwidth",
                                v >= target, f"{v:.0%} ({r.gbs(be):.1f} of {r.copy_gbs:.1f} GB/s)"))
    return out


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "—"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.3g} {unit}"
    return f"{x:.3g}"


def _fmt_ratio(x: float) -> str:
    return f"{x:,.0f}×" if x >= 100 else f"{x:.1f}×"


def render(rows: list[Row], console) -> None:
    from rich.table import Table

    backends = sorted({b for r in rows for b in r.tripwire}, key=lambda b: ("cython", "numba", "cupy").index(b)
                      if b in ("cython", "numba", "cupy") else 9)
    t = Table(title="tripwire bench (end-to-end Suite.check on a pyarrow Table; medians, warm-up excluded)",
              title_justify="left", show_lines=False)
    t.add_column("assertion")
    t.add_column("rows", justify="right")
    for b in backends:
        t.add_column(f"{b}\nrows/s", justify="right")
    joined = " / ".join(backends)
    t.add_column("paper lib\nrows/s (n)", justify="right")
    t.add_column(f"× paper\n{joined}", justify="right")
    t.add_column("best pandas/NumPy\nrows/s", justify="right")
    t.add_column(f"× best\n{joined}", justify="right")
    t.add_column(f"GB/s\n{joined}", justify="right")
    t.add_column("copy\nGB/s", justify="right")
    t.add_column(f"% of copy bw\n{joined}", justify="right")
    for r in rows:
        cells = [r.case.label, f"{r.n:,}"]
        cells += [_fmt_rate(r.rate(b)) if b in r.tripwire else "—" for b in backends]
        if r.paper_rate is not None:
            cells.append(f"{_fmt_rate(r.paper_rate)} ({r.paper_rows:,})")
            cells.append(" / ".join(_fmt_ratio(r.paper_ratio(b)) for b in backends if b in r.tripwire))
        else:
            cells += ["n/a", "—"]
        best = r.best_baseline
        if best is not None:
            cells.append(f"{_fmt_rate(r.n / best[1])}\n{best[0]}")
            cells.append(" / ".join(_fmt_ratio(best[1] / r.tripwire[b]) for b in backends if b in r.tripwire))
        else:
            cells += ["—", "—"]
        cells.append(" / ".join(f"{r.gbs(b):.2f}" for b in backends if b in r.tripwire))
        cells.append(f"{r.copy_gbs:.2f}" if r.copy_gbs else "—")
        cells.append(" / ".join(f"{r.gbs(b) / r.copy_gbs:.0%}" for b in backends if b in r.tripwire)
                     if r.copy_gbs else "—")
        t.add_row(*cells)
    console.print(t)
    print_bars(console, bar_results(rows), [e for r in rows for e in r.errors])


def print_bars(console, bars: list[tuple[str, bool, str]], errors: list[str]) -> None:
    """The bars (met or MISSED, with the measured value) and any baseline mismatches."""
    from rich.markup import escape

    if bars:
        console.print("Bars:")
        for text, ok, value in bars:
            console.print(f"  [{'green' if ok else 'red'}]{'met   ' if ok else 'MISSED'}[/] "
                          f"{escape(text)}: {escape(value)}", highlight=False)
    for e in errors:
        console.print(f"[red]mismatch[/]: {escape(e)}", highlight=False)


def run_cli(sizes: list[int] | None = None, quick: bool = False, backends: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the process exit code."""
    from rich.console import Console

    from tripwire import _dispatch

    out = sys.stdout
    console = Console(file=out, width=None if out.isatty() else 200, highlight=False)
    err = Console(file=sys.stderr, highlight=False)
    for b in backends or []:
        if b not in ("cython", "numba", "cupy"):
            err.print(f"tripwire bench: unknown backend {b!r}; choose from cython, numba, cupy", markup=False)
            return 2
    missing_be = [b for b in (backends or []) if b not in _dispatch.available()]
    if missing_be:
        err.print(f"tripwire bench: backend(s) not available here: {', '.join(missing_be)}", markup=False)
        return 2
    if sizes is not None and any((not isinstance(n, int)) or n <= 0 for n in sizes):
        err.print(f"tripwire bench: sizes must be positive row counts, got {sizes!r}", markup=False)
        return 2
    missing = missing_extras()
    if missing:
        err.print(f"tripwire bench: {', '.join(missing)} not installed, so those baselines are skipped; "
                  f"install them with `{_EXTRAS_HINT}`", markup=False)
    rows = run(sizes, quick=quick, backends=backends,
               progress=(lambda s: err.print(f"[dim]… {s}[/]")) if sys.stderr.isatty() else None)
    render(rows, console)
    if any(r.errors for r in rows):
        return 1
    return 0
