"""ECG assertions (pytest-benchmark): signal_quality and rate_consistency end to end on real
MIT-BIH signal tiled to 24 h (TRIPWIRE_BENCH_FULL=1; 1 h otherwise, a smoke run) against the
NumPy / SciPy baselines of :mod:`tripwire.bench_ecg`, and the rhythm-flip kernel against NumPy.
The full comparison, with the memory bandwidth and the bars, is ``tripwire bench --family ecg``."""
from __future__ import annotations

import functools
import os

import numpy as np
import pytest

import tripwire as tw
from tripwire import bench_ecg

FULL = os.environ.get("TRIPWIRE_BENCH_FULL", "") not in ("", "0")
HOURS = 24.0 if FULL else 1.0


@functools.lru_cache(maxsize=1)
def _day():
    table, x = bench_ecg.day_table(HOURS)
    L = int(bench_ecg.WINDOW_S * bench_ecg.FS)
    return table, x[:table.num_rows * L].reshape(table.num_rows, L)


@pytest.mark.parametrize("impl", ["cython", "numba", "numpy"])
def test_signal_quality(benchmark, impl):
    table, X = _day()
    suite = tw.Suite([tw.ecg.signal_quality()])
    fn = (lambda: bench_ecg.numpy_quality(X, bench_ecg.FS)) if impl == "numpy" else \
        (lambda: suite.check(table, backend=impl).results[0][1].rows)
    benchmark.group = f"signal_quality, {HOURS:g} h at 360 Hz"
    benchmark.extra_info.update(samples=X.size)
    got = benchmark.pedantic(fn, rounds=3, warmup_rounds=1)
    assert np.array_equal(got, bench_ecg.numpy_quality(X, bench_ecg.FS))


@pytest.mark.parametrize("impl", ["cython", "numba", "scipy"])
def test_rate_consistency(benchmark, impl):
    pytest.importorskip("scipy")
    table, X = _day()
    suite = tw.Suite([tw.ecg.rate_consistency()])
    fn = (lambda: bench_ecg.scipy_rate(X, bench_ecg.FS)) if impl == "scipy" else \
        (lambda: suite.check(table, backend=impl))
    benchmark.group = f"rate_consistency (R peaks inside), {HOURS:g} h at 360 Hz"
    benchmark.extra_info.update(samples=X.size)
    benchmark.pedantic(fn, rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("impl", ["cython", "numba", "numpy"])
def test_rhythm_flip_kernel(benchmark, impl):
    cols = bench_ecg.flip_columns(2000 if FULL else 100)
    args = (cols["label"], 0, 3, cols["rec_offsets"], cols["t0"], 30.0)
    if impl == "numpy":
        fn = (lambda: bench_ecg.numpy_flips(cols["label"], cols["rec_offsets"], cols["t0"], 30.0))
    else:
        k = tw._dispatch.kernels("ecg", impl)
        fn = (lambda: k.flips(*args))
    benchmark.group = f"rhythm_flip, {len(cols['label']):,} predictions"
    benchmark.extra_info.update(rows=len(cols["label"]))
    benchmark.pedantic(fn, rounds=3, warmup_rounds=1)
