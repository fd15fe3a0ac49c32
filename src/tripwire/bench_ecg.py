"""``tripwire bench --family ecg``: the ECG assertions against NumPy / SciPy baselines and the
memory bandwidth, measured in one run.

Data: 24 h of real signal at 360 Hz: MIT-BIH records 100 and 101 (lead MLII, the bundled
``data/mitbih_ecg/records.parquet``, 30 min each) concatenated and tiled 24 times
(31.1 M float32 samples), cut into 30 s windows (2880 rows, zero copy), labelled ``N``; a few
windows get known faults (a NaN run, a flat line, clipping, a noise burst) so that every
baseline is checked to flag exactly tripwire's rows.

- **signal_quality** end to end (``Suite.check``) against the vectorized NumPy version a
  skilled user would write on the (windows x samples) matrix, and against ``np.copyto`` of the
  signal bytes (the memory bandwidth right now). Bar: >= 50 % of that bandwidth.
- **rate_consistency** (R-peak detection inside) end to end against ``scipy.signal``: the same
  band-pass (``butter`` 2nd-order high-pass 5 Hz and low-pass 15 Hz as SOS, ``sosfilt`` along
  the rows), five-point derivative, squaring and 150 ms moving integration vectorized over the
  matrix, then ``find_peaks`` per window (``distance`` = 200 ms refractory, ``height`` = a
  fraction of the window's 99th percentile: a fixed threshold instead of the adaptive ones) and
  the RR statistics. Bars: >= 100 M samples/s per core (rate / threads) and >= 10x SciPy.
  Beat counts of the two are compared (they are different detectors; agreement is reported).
- **rhythm_flip** on 43.2 M predictions (2,000 records x 6 h at one per second; rhythm runs of
  minutes with injected A -> B -> A flips): the kernel on prepared columns (label codes, record
  offsets, t0) against ``np.copyto`` of the label column (bar: >= 50 % of that bandwidth),
  end to end, and a vectorized NumPy version (run boundaries, neighbour runs), checked to find
  the same events.

Timings are medians after one untimed warm-up, contenders timed in alternation
(``timeit_interleaved``) so a noisy neighbour slows all alike.
"""
from __future__ import annotations

import functools
import os
import sys
import time
import warnings
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from .bench import timeit_interleaved

__all__ = ["run", "run_cli", "day_table", "numpy_quality", "scipy_rate", "numpy_flips", "flip_columns"]

FS = 360.0
WINDOW_S = 30.0


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _records() -> np.ndarray:
    import pyarrow.parquet as pq

    t = pq.read_table(os.path.join(os.path.dirname(__file__), "data", "mitbih_ecg", "records.parquet"))
    parts = [((np.asarray(r["samples"], np.float64) - r["baseline"]) / r["adc_gain"]).astype(np.float32)
             for r in t.to_pylist()]
    return np.concatenate(parts)


FAULTS = {3: "nan", 100: "flat", 700: "clip", 1500: "noise"}


def day_table(hours: float = 24.0) -> tuple[pa.Table, np.ndarray]:
    """``hours`` of the real records tiled, in 30 s windows, with the faults of ``FAULTS``."""
    base = _records()
    n = int(hours * 3600 * FS)
    x = np.resize(base.astype(np.float32, copy=False), n)  # a new array: the faults go into it
    size = int(WINDOW_S * FS)
    for w, kind in FAULTS.items():
        if (w + 1) * size > n:
            continue
        seg = x[w * size:(w + 1) * size]
        if kind == "nan":
            seg[1000:2000] = np.nan
        elif kind == "flat":
            seg[4000:4000 + 720] = seg[4000]
        elif kind == "clip":
            np.minimum(seg, np.float32(0.5), out=seg)
        elif kind == "noise":
            seg[360 * 5:360 * 8] += np.float32(0.5) * np.where(np.arange(1080) % 2, 1, -1).astype(np.float32)
    from .ecg import windows

    t = windows(x, FS, WINDOW_S, record="day")
    return t.append_column("label", pa.array(["N"] * t.num_rows).dictionary_encode()), x


# ----------------------------------------------------------------------------------------------
# baselines
# ----------------------------------------------------------------------------------------------
def numpy_quality(X: np.ndarray, fs: float, **kw) -> np.ndarray:
    with warnings.catch_warnings():  # nanmax / nanmean of an all-NaN second warn; NaN is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        return _numpy_quality(X, fs, **kw)


def _numpy_quality(X: np.ndarray, fs: float, *, flat_s=0.5, clip_frac=0.02, max_abs=10.0, min_ptp=0.05,
                   max_noise=0.1, max_wander=1.0, min_bad=0.05) -> np.ndarray:
    """Rows a vectorized NumPy version flags, on the (windows x samples) matrix ``X``: the
    checks of ``signal_quality`` with whole-matrix operations (flat runs by run-length encoding
    of the equal-neighbour mask, per-second statistics by reshaping)."""
    n_win, L = X.shape
    seg = int(round(fs))
    fin = np.isfinite(X)
    rng = fin & (np.abs(X) > max_abs)
    ordinary = fin & ~rng
    # flat runs: run-length encode equal neighbours
    eq = np.zeros_like(fin)
    eq[:, 1:] = X[:, 1:] == X[:, :-1]
    flat = np.zeros_like(fin)
    flat_len = max(2, int(np.floor(flat_s * fs + 0.5)))
    rows, cols = np.nonzero(~eq)  # run starts
    starts = rows * L + cols
    ends = np.append(starts[1:], n_win * L)
    ends = np.minimum(ends, (rows + 1) * L)
    long = (ends - starts) >= flat_len
    flat_flat = flat.reshape(-1)
    for s, e in zip(starts[long], ends[long]):
        flat_flat[s:e] = True
    flat &= ordinary
    ordinary &= ~flat
    big = np.where(ordinary, X, np.inf).min(1, keepdims=True)
    small = np.where(ordinary, X, -np.inf).max(1, keepdims=True)
    at_lo, at_hi = ordinary & (X == big), ordinary & (X == small) & (small != big)
    n_ord = ordinary.sum(1)
    c_lo, c_hi = at_lo.sum(1), at_hi.sum(1)
    clip_lo = (c_lo >= 2) & (c_lo >= clip_frac * n_ord)
    clip_hi = (c_hi >= 2) & (c_hi >= clip_frac * n_ord)
    bad = ~fin | rng | flat | (at_lo & clip_lo[:, None]) | (at_hi & clip_hi[:, None])
    n_seg = L // seg
    with np.errstate(invalid="ignore"):
        Xf = np.where(fin, X, np.nan)[:, :n_seg * seg].reshape(n_win, n_seg, seg)
        ptp = np.nanmax(Xf, 2) - np.nanmin(Xf, 2)
        d2 = np.abs(X[:, 2:] - 2 * X[:, 1:-1] + X[:, :-2])
        d2 = np.concatenate([np.full((n_win, 2), np.nan, np.float32), d2], 1)[:, :n_seg * seg].reshape(n_win, n_seg, seg)
        noisy = np.nanmean(d2, 2) > max_noise * ptp
        mean_s = np.nanmean(Xf, 2)
        wander = np.abs(mean_s - np.nanmean(np.where(fin, X, np.nan), 1, keepdims=True)) > max_wander
    seg_bad = np.repeat(noisy | wander, seg, axis=1)
    bad[:, :n_seg * seg] |= seg_bad
    fv = np.where(fin, X, np.nan)
    with np.errstate(invalid="ignore"):
        low = (np.nanmax(fv, 1) - np.nanmin(fv, 1)) < min_ptp
    bad[low] = True
    share = bad.sum(1) / L
    return np.flatnonzero((share > 0) & (share >= min_bad))


_SOS: dict[float, np.ndarray] = {}


def scipy_rate(X: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Beats and heart rate per window, the way a SciPy user writes Pan-Tompkins: vectorized
    filtering over the matrix, ``find_peaks`` per window."""
    from scipy.signal import butter, find_peaks, sosfilt

    if fs not in _SOS:
        _SOS[fs] = np.concatenate([butter(2, 5.0, "highpass", fs=fs, output="sos"),
                                   butter(2, 15.0, "lowpass", fs=fs, output="sos")])
    Y = sosfilt(_SOS[fs], np.nan_to_num(X), axis=1)
    D = np.zeros_like(Y)
    D[:, 4:] = 2 * Y[:, 4:] + Y[:, 3:-1] - Y[:, 1:-3] - 2 * Y[:, :-4]
    S = D * D
    W = int(round(0.15 * fs))
    C = np.cumsum(S, axis=1)
    M = C.copy()
    M[:, W:] -= C[:, :-W]
    height = 0.3 * np.percentile(M, 99, axis=1)
    beats = np.empty(len(X), np.int64)
    hr = np.full(len(X), np.nan)
    dist = int(round(0.2 * fs))
    for i in range(len(X)):
        p, _ = find_peaks(M[i], height=height[i], distance=dist)
        beats[i] = len(p)
        if len(p) >= 2:
            rr = np.diff(p) / fs
            hr[i] = 60.0 / rr.mean()
    return beats, hr


def flip_columns(n_records: int = 2000, hours: float = 6.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Predictions at 1 Hz per record: rhythm runs of 2-20 minutes (N, A, O), about one injected
    single-prediction flip (A -> B -> A) per 10 minutes (two flips closer than 30 s make a
    B -> A -> B flip too)."""
    rng = np.random.default_rng(seed)
    per = int(hours * 3600)
    n = n_records * per
    n_runs = max(n // 600, 1)
    lengths = rng.integers(120, 1200, n_runs)
    run_labels = rng.integers(0, 3, n_runs).astype(np.int32)
    labels = np.repeat(run_labels, lengths)[:n]
    if len(labels) < n:
        labels = np.concatenate([labels, np.zeros(n - len(labels), np.int32)])
    # single-prediction flips inside a run, never next to another flip or a record's edge (so
    # each is an A -> B -> A with one B window: the NumPy baseline's pattern)
    flips = np.unique(rng.integers(1, n - 1, n // 600))
    flips = flips[np.diff(flips, prepend=-10) >= 3]
    flips = flips[(labels[flips - 1] == labels[flips + 1]) & (flips % per > 0) & (flips % per < per - 1)]
    labels[flips] = (labels[flips - 1] + 1) % 3
    t0 = np.tile(np.arange(per, dtype=np.float64), n_records)
    rec = np.repeat(np.arange(n_records, dtype=np.int32), per)
    return {"label": np.ascontiguousarray(labels, np.int32), "t0": t0, "record": rec,
            "rec_offsets": np.arange(0, n + 1, per, dtype=np.int64)}


def numpy_flips(label: np.ndarray, rec_offsets: np.ndarray, t0: np.ndarray, within: float) -> np.ndarray:
    """Positions flagged by a vectorized NumPy A -> B -> A (one intermediate run) search."""
    n = len(label)
    brk = np.zeros(n, bool)
    brk[0] = True
    brk[1:] = label[1:] != label[:-1]
    brk[rec_offsets[:-1][rec_offsets[:-1] < n]] = True
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], n) - 1
    rec = np.searchsorted(rec_offsets, starts, side="right") - 1
    lab = label[starts]
    a, b, c = slice(0, -2), slice(1, -1), slice(2, None)
    hit = (lab[a] == lab[c]) & (rec[a] == rec[c]) & (rec[a] == rec[b]) & (t0[starts[c]] - t0[ends[a]] <= within)
    mid_s, mid_e = starts[b][hit], ends[b][hit]
    counts = mid_e - mid_s + 1
    return np.repeat(mid_s - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(int(counts.sum()))


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------
def _threads() -> int:
    t = os.environ.get("OMP_NUM_THREADS")
    return int(t) if t else (os.cpu_count() or 1)


def _single_thread_rate(hours: float) -> float | None:
    """Samples/s of ``rate_consistency`` (Cython, end to end) with one OpenMP thread."""
    import subprocess

    code = ("import statistics, time, tripwire as tw\n"
            "from tripwire import bench_ecg\n"
            f"t, x = bench_ecg.day_table({hours!r})\n"
            "s = tw.Suite([tw.ecg.rate_consistency()])\n"
            "s.check(t, backend='cython')\n"
            "ts = []\n"
            "for _ in range(5):\n"
            "    a = time.perf_counter(); s.check(t, backend='cython'); ts.append(time.perf_counter() - a)\n"
            "print(t.num_rows * 10800 / statistics.median(ts))\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def run(quick: bool = False, backends: list[str] | None = None, log: Callable[[str], None] = print
        ) -> list[dict[str, Any]]:
    import tripwire as tw
    from tripwire import _dispatch

    backends = [b for b in (backends or ["cython", "numba"]) if b in _dispatch.available()]
    hours = 2.0 if quick else 24.0
    reps = dict(repeat=3 if quick else 5, min_seconds=0.05 if quick else 0.3, max_repeat=20)
    rows: list[dict[str, Any]] = []
    table, x = day_table(hours)
    L = int(WINDOW_S * FS)
    X = x[:table.num_rows * L].reshape(table.num_rows, L)
    nbytes = X.nbytes
    n = X.size
    dst = np.empty_like(X)
    copy = (lambda: np.copyto(dst, X))
    log(f"{hours:g} h at {FS:g} Hz: {n / 1e6:.1f} M samples, {table.num_rows} windows")
    # signal_quality
    sq = tw.Suite([tw.ecg.signal_quality()])
    want = numpy_quality(X, FS)
    fns: dict[str, Callable[[], Any]] = {"copy": copy}
    for be in backends:
        got = sq.check(table, backend=be).results[0][1].rows
        assert np.array_equal(got, want), f"signal_quality: NumPy flags {want.tolist()}, tripwire {got.tolist()}"
        fns[be] = (lambda be=be: sq.check(table, backend=be))
    fns["numpy"] = lambda: numpy_quality(X, FS)
    t = timeit_interleaved(fns, **{**reps, "repeat": 3, "max_repeat": 5})
    rows.append(dict(case=f"signal_quality, {hours:g} h, 30 s windows", n=n, nbytes=nbytes, copy=t["copy"],
                     ours={be: t[be] for be in backends}, baseline=t["numpy"], baseline_name="vectorized NumPy",
                     flagged=len(want), bar="bandwidth"))
    log(f"signal_quality: {', '.join(f'{be} {t[be] * 1e3:.1f} ms' for be in backends)}; "
        f"NumPy {t['numpy'] * 1e3:.0f} ms; copy {t['copy'] * 1e3:.1f} ms")
    # rate_consistency
    rc = tw.Suite([tw.ecg.rate_consistency()])
    m = tw.ecg.rate_consistency().measure(table, "cython")
    sb, shr = scipy_rate(X, FS)
    agree = float(np.mean(np.abs(sb - m["beats"]) <= 1))
    fns = {"copy": copy}
    for be in backends:
        rc.check(table, backend=be)
        fns[be] = (lambda be=be: rc.check(table, backend=be))
    fns["scipy"] = lambda: scipy_rate(X, FS)
    t = timeit_interleaved(fns, **{**reps, "repeat": 3, "max_repeat": 5})
    rows.append(dict(case=f"rate_consistency (R peaks inside), {hours:g} h", n=n, nbytes=nbytes, copy=t["copy"],
                     ours={be: t[be] for be in backends}, baseline=t["scipy"],
                     baseline_name="scipy.signal + find_peaks", agree=agree, bar="rate"))
    log(f"rate_consistency: {', '.join(f'{be} {t[be] * 1e3:.1f} ms' for be in backends)}; SciPy {t['scipy'] * 1e3:.0f} ms;"
        f" beat counts within 1 on {agree:.1%} of windows")
    # one core: the same end-to-end check in a fresh process with OMP_NUM_THREADS=1 (two threads on
    # a shared VM measure the neighbours as much as the kernel)
    single = _single_thread_rate(hours)
    if single is not None:
        rows[-1]["single"] = single
        log(f"rate_consistency on one thread (OMP_NUM_THREADS=1): {single / 1e6:.0f} M samples/s")
    # rhythm_flip
    cols = flip_columns(200 if quick else 2000)
    within = 30.0
    k = {be: _dispatch.kernels("ecg", be) for be in backends}
    args = (cols["label"], 0, 3, cols["rec_offsets"], cols["t0"], within)
    first, last, _, _ = k["cython"].flips(*args) if "cython" in k else next(iter(k.values())).flips(*args)
    counts = last - first + 1
    ours_pos = np.repeat(first - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(int(counts.sum()))
    np_pos = numpy_flips(cols["label"], cols["rec_offsets"], cols["t0"], within)
    assert np.array_equal(np.sort(ours_pos), np_pos), "rhythm_flip: NumPy and the kernel find different windows"
    lab = cols["label"]
    ldst = np.empty_like(lab)
    ft = pa.table({"record": cols["record"], "t0": cols["t0"],
                   "label": pa.DictionaryArray.from_arrays(pa.array(lab), pa.array(["N", "A", "O"]))})
    fsuite = tw.Suite([tw.ecg.rhythm_flip(within_s=within)])
    fns = {"copy": lambda: np.copyto(ldst, lab)}
    for be, mod in k.items():
        mod.flips(*args)
        fns[be] = (lambda mod=mod: mod.flips(*args))
    fns["end to end"] = lambda: fsuite.check(ft, backend="cython")
    fns["numpy"] = lambda: numpy_flips(cols["label"], cols["rec_offsets"], cols["t0"], within)
    fns["end to end"]()
    t = timeit_interleaved(fns, **reps)
    rows.append(dict(case=f"rhythm_flip kernel, {len(lab) / 1e6:.1f} M predictions", n=len(lab), nbytes=lab.nbytes,
                     copy=t["copy"], ours={be: t[be] for be in k}, baseline=t["numpy"], baseline_name="vectorized NumPy",
                     end_to_end=t["end to end"], events=len(first), bar="bandwidth"))
    log(f"rhythm_flip: {', '.join(f'{be} {t[be] * 1e3:.1f} ms' for be in k)}; end to end {t['end to end'] * 1e3:.0f} ms; "
        f"NumPy {t['numpy'] * 1e3:.0f} ms; copy of the labels {t['copy'] * 1e3:.1f} ms")
    return rows


def render(rows: list[dict[str, Any]], console) -> list[tuple[str, bool, str]]:
    from rich.table import Table

    threads = _threads()
    t = Table(title="tripwire bench --family ecg (medians, warm-up excluded, timed in alternation)",
              title_justify="left")
    for c in ("case", "backend", "time", "samples or rows/s", "per core", "GB/s read", "copy GB/s", "% of copy",
              "baseline", "× baseline"):
        t.add_column(c, justify="left" if c in ("case", "backend") else "right")
    bars = []
    for r in rows:
        copy_gbs = r["nbytes"] / r["copy"] / 1e9
        for be, sec in r["ours"].items():
            gbs = r["nbytes"] / sec / 1e9
            rate = r["n"] / sec
            per_core = rate / (threads if be == "cython" else 1)
            ratio = r["baseline"] / sec
            t.add_row(r["case"], be, f"{sec * 1e3:.1f} ms", f"{rate / 1e6:.0f} M", f"{per_core / 1e6:.0f} M",
                      f"{gbs:.2f}", f"{copy_gbs:.2f}", f"{gbs / copy_gbs:.0%}",
                      f"{r['baseline'] * 1e3:.0f} ms ({r['baseline_name']})", f"{ratio:.1f}×")
            name = r["case"].split(",")[0]
            if r["bar"] == "bandwidth":
                bars.append((f"{name} [{be}] ≥ 50% of copy bandwidth", gbs / copy_gbs >= 0.5,
                             f"{gbs / copy_gbs:.0%} ({gbs:.2f} of {copy_gbs:.2f} GB/s)"))
            if r["bar"] == "rate":
                if be == "cython" and r.get("single"):
                    one = r["single"]
                    bars.append((f"{name} [cython] ≥ 100 M samples/s per core (one thread, OMP_NUM_THREADS=1)",
                                 one >= 100e6, f"{one / 1e6:.0f} M/s on one thread; {per_core / 1e6:.0f} M/s per "
                                 f"core with {threads} threads ({rate / 1e6:.0f} M/s)"))
                else:
                    bars.append((f"{name} [{be}] ≥ 100 M samples/s per core", per_core >= 100e6,
                                 f"{per_core / 1e6:.0f} M/s per core ({rate / 1e6:.0f} M/s on "
                                 f"{threads if be == 'cython' else 1} thread(s))"))
                bars.append((f"{name} [{be}] ≥ 10× the SciPy baseline", ratio >= 10, f"{ratio:.1f}×"))
        if "end_to_end" in r:
            gbs = r["nbytes"] / r["end_to_end"] / 1e9
            t.add_row(r["case"].replace("kernel", "end to end"), "cython", f"{r['end_to_end'] * 1e3:.1f} ms",
                      f"{r['n'] / r['end_to_end'] / 1e6:.0f} M", "—", f"{gbs:.2f}", f"{copy_gbs:.2f}",
                      f"{gbs / copy_gbs:.0%}", f"{r['baseline'] * 1e3:.0f} ms ({r['baseline_name']})",
                      f"{r['baseline'] / r['end_to_end']:.1f}×")
    console.print(t)
    for r in rows:
        if "agree" in r:
            console.print(f"rate_consistency vs SciPy: beat counts within 1 on {r['agree']:.1%} of windows "
                          "(different detectors: adaptive vs fixed thresholds)")
        if "flagged" in r:
            console.print(f"signal_quality: NumPy and tripwire flag the same {r['flagged']} windows")
        if "events" in r:
            console.print(f"rhythm_flip: NumPy and the kernel find the same {r['events']:,} flips")
    return bars


def run_cli(sizes: list[int] | None = None, quick: bool = False, backends: list[str] | None = None) -> int:
    from rich.console import Console

    from .bench import print_bars

    out = sys.stdout
    console = Console(file=out, width=None if out.isatty() else 250, highlight=False)
    err = Console(file=sys.stderr, highlight=False)
    if sizes:
        err.print("tripwire bench --family ecg: --sizes is ignored (24 h of signal; --quick: 2 h)")
    t0 = time.perf_counter()
    rows = run(quick=quick, backends=backends, log=lambda s: err.print(f"[dim]… {s}[/]"))
    bars = render(rows, console)
    print_bars(console, bars, [])
    console.print(f"({time.perf_counter() - t0:.0f} s; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
                  f"{os.cpu_count()} CPUs; per core = rate / threads for Cython, the Numba kernels are serial)")
    return 0
