"""Shared fixtures for the pytest-benchmark suite (``python -m pytest benches --benchmark-enable``).

Sizes are small by default so that ``python -m pytest benches --benchmark-disable -q`` is a quick
smoke test (each benchmark runs once); set ``TRIPWIRE_BENCH_FULL=1`` for the real sizes
(1 M and 10 M rows; the paper library on 10^5 rows, 2·10^4 for its per-row assertion).

The cases, data generators and baselines are the ones ``tripwire bench`` prints
(:mod:`tripwire.bench`), so both always measure the same thing.
"""
from __future__ import annotations

import os

import pytest

from tripwire import bench


def pytest_report_header(config):
    FULL = os.environ.get("TRIPWIRE_BENCH_FULL", "") not in ("", "0")
    SIZES = bench.DEFAULT_SIZES if FULL else [20_000]
    mode = "full (TRIPWIRE_BENCH_FULL=1)" if FULL else "smoke sizes (set TRIPWIRE_BENCH_FULL=1 for 1M/10M rows)"
    return f"tripwire benches: {mode}; sizes {SIZES}"


@pytest.fixture(scope="session", autouse=True)
def _free_tables():
    yield
    bench.clear_cache()
