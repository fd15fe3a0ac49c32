"""``tripwire bench`` must keep running: a tiny end-to-end run of the benchmark table."""
from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

import tripwire as tw

pytest.importorskip("pandas")
pytest.importorskip("model_assertions")

from tripwire import bench  # noqa: E402


def test_run_cli_prints_the_table(capsys):
    assert bench.run_cli(sizes=[20000], quick=True) == 0
    out = capsys.readouterr().out
    assert "tripwire bench" in out
    for c in bench.CASES:
        assert c.label.split(" (")[0].split(" '")[0] in out
    for column in ("cython", "numba", "paper lib", "best pandas/NumPy", "copy", "Bars:"):
        assert column in out
    assert "mismatch" not in out


def test_run_cli_rejects_bad_arguments(capsys):
    assert bench.run_cli(sizes=[0], quick=True) == 2
    assert bench.run_cli(sizes=[100], backends=["gpu9000"]) == 2
    assert "unknown backend" in capsys.readouterr().err


@pytest.mark.parametrize("case", bench.CASES, ids=lambda c: c.name)
def test_baselines_flag_the_same_rows_as_tripwire(case):
    table = bench.make_table(case, 5000, cache=False)
    want = np.sort(bench.tripwire_fn(case, table, "cython")().violations.column("row").to_numpy())
    assert len(want) > 0
    for name, fn in bench.baselines(case, table, bench.pandas_frame(table)).items():
        np.testing.assert_array_equal(np.sort(fn()), want, err_msg=name)


def test_float32_constant_narrowing_is_exact():
    """rows.check compares float32 columns against a float32 neighbour of an inexact constant
    (a speed-up the benchmark relies on); the rows must equal the float64 comparison."""
    rng = np.random.default_rng(7)
    x = np.concatenate([
        np.array([0, -0.0, np.nan, np.inf, -np.inf, 1e-45, -1e-45, 3.4028235e38, -3.4028235e38], np.float32),
        rng.random(2000, dtype=np.float32),
        np.nextafter(np.float32(0.999), np.float32([-1, 1, 0])),
        (rng.standard_normal(500) * 1e30).astype(np.float32),
    ]).astype(np.float32)
    table = pa.table({"x": x})
    x64 = x.astype(np.float64)
    ops = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
           "==": np.equal, "!=": np.not_equal}
    for c, (op, f) in itertools.product(["0.999", "0.3", "1e39", "-1e39", "1e-50", "-2.5e-40"], ops.items()):
        want = np.flatnonzero(f(x64, float(c)))
        for backend in tw._dispatch.available():
            got = tw.Suite([tw.rows.check(f"x {op} {c}")]).check(table, backend=backend)
            np.testing.assert_array_equal(got.violations.column("row").to_numpy(), want,
                                          err_msg=f"x {op} {c} [{backend}]")


def test_box_bench_prints_every_assertion_and_verifies_baselines(capsys):
    from tripwire import bench_boxes

    assert bench_boxes.run_cli(sizes=[3000], quick=True, densities=(10,)) == 0
    out = capsys.readouterr().out
    for label, _ in bench_boxes.ASSERTIONS.values():
        assert label.split("(")[0] in out
    for column in ("best pandas/NumPy", "paper-style loop", "Python loop", "Bars:"):
        assert column in out
    assert "mismatch" not in out
