"""Generic row assertions: tripwire per backend vs. vectorized pandas/NumPy vs. the paper library.

Every benchmark excludes one warm-up round (``warmup_rounds=1``: it also compiles Numba).
Group names are ``<case> @ <rows>`` so ``--benchmark-group-by=group`` puts each assertion's
contenders side by side; ``extra_info['rows']`` gives rows/s.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from tripwire import _dispatch, bench

FULL = os.environ.get("TRIPWIRE_BENCH_FULL", "") not in ("", "0")
SIZES = bench.DEFAULT_SIZES if FULL else [20_000]


def paper_rows(case: bench.Case) -> int:
    """The paper library's slice: 10^5 rows (2·10^4 per-row) in full runs, small otherwise."""
    return case.paper_rows if FULL else max(case.paper_rows // 50, 400)


HAS_PANDAS = importlib.util.find_spec("pandas") is not None
HAS_PAPER = HAS_PANDAS and importlib.util.find_spec("model_assertions") is not None
BACKENDS = [b for b in ("cython", "numba") if b in _dispatch.available()]
ROUNDS = 5


def _baseline_names(c: bench.Case) -> list[str]:
    tiny = bench.make_table(c, 64, cache=False)
    return list(bench.baselines(c, tiny, bench.pandas_frame(tiny) if HAS_PANDAS else None))


CASE_SIZES = [pytest.param(c, n, id=f"{c.name}-{n}") for c in bench.CASES for n in SIZES]
BASELINES = [pytest.param(c, n, name, id=f"{c.name}-{n}-{name.replace(' ', '_')}")
             for c in bench.CASES for name in _baseline_names(c) for n in SIZES]
PAPER = [pytest.param(c, id=c.name) for c in bench.CASES if c.paper]


def _info(benchmark, c: bench.Case, n: int, who: str) -> None:
    benchmark.group = f"{c.name} @ {n:,}"
    benchmark.extra_info.update(rows=n, who=who, label=c.label)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case", "n"), CASE_SIZES)
def test_tripwire(benchmark, case, n, backend):
    """End to end: ``Suite.check(table, backend=...)`` on a pyarrow Table."""
    table = bench.make_table(case, n)
    fn = bench.tripwire_fn(case, table, backend)
    _info(benchmark, case, n, f"tripwire[{backend}]")
    report = benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert report.violations.num_rows > 0


@pytest.mark.parametrize(("case", "n", "name"), BASELINES)
def test_baseline(benchmark, case, n, name):
    """The vectorized pandas/NumPy version a skilled user would write (same flagged rows)."""
    table = bench.make_table(case, n)
    fn = bench.baselines(case, table, bench.pandas_frame(table) if HAS_PANDAS else None)[name]
    _info(benchmark, case, n, name)
    rows = benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert len(rows) > 0


@pytest.mark.skipif(not HAS_PAPER, reason="model_assertions (the paper library) or pandas missing: "
                    "pip install 'tripwire[bench]'")
@pytest.mark.parametrize("case", PAPER)
def test_paper_library(benchmark, case):
    """The paper library (model_assertions 0.0.3), a Python loop per row: one round on a slice."""
    n = paper_rows(case)
    fn = bench.paper_fn(case, bench.make_table(case, n, cache=False))
    _info(benchmark, case, n, "model_assertions")
    benchmark.group = f"{case.name} (paper library) @ {n:,}"
    errors = benchmark.pedantic(fn, rounds=1, iterations=1, warmup_rounds=1)
    assert len(errors) > 0


@pytest.mark.parametrize(("case", "n"), CASE_SIZES)
def test_same_rows(case, n):
    """Not a benchmark: every contender flags the same rows (so the timings compare like with like)."""
    table = bench.make_table(case, n)
    want = None
    for backend in BACKENDS:
        got = np.sort(bench.tripwire_fn(case, table, backend)().violations.column("row").to_numpy())
        if want is None:
            want = got
        np.testing.assert_array_equal(got, want, err_msg=f"tripwire[{backend}]")
    for name, fn in bench.baselines(case, table, bench.pandas_frame(table) if HAS_PANDAS else None).items():
        np.testing.assert_array_equal(np.sort(fn()), want, err_msg=name)
