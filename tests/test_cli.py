"""The ``tripwire`` command line (click's CliRunner)."""
from __future__ import annotations

import sys
import types

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import tripwire as tw
from tripwire.cli import cli

SUITE = """
[[assertion]]
kind = "rows.check"
name = "bad_score"
expr = "score < 0 or score > 1"

[[assertion]]
kind = "rows.consistent"
name = "cls_per_track"
id = "track"
attr = "cls"
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def logs(tmp_path):
    root = tmp_path / "logs"
    root.mkdir()
    for i in range(2):
        rng = np.random.default_rng(i)
        n = 500
        pq.write_table(pa.table({"track": rng.integers(0, 20, n), "cls": (rng.random(n) < 0.1).astype(np.int64),
                                 "score": rng.random(n) * 1.2 - 0.1}), root / f"part{i}.parquet")
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    return root, suite


def test_scan_prints_summary(runner, logs, tmp_path):
    root, suite = logs
    out = tmp_path / "out"
    r = runner.invoke(cli, ["scan", str(root), "--suite", str(suite), "--out", str(out), "--top", "3"])
    assert r.exit_code == 0, r.output
    for word in ("assertion", "kind", "rows", "events", "rate", "max severity", "corrections",
                 "bad_score", "cls_per_track", "1,000", "top 3 events"):
        assert word in r.output
    assert (out / "summary.parquet").exists() and (out / "manifest.json").exists()
    again = runner.invoke(cli, ["scan", str(root), "--suite", str(suite), "--out", str(out), "--no-progress"])
    assert again.exit_code == 0 and "2 resumed" in again.output
    fresh = runner.invoke(cli, ["scan", str(root / "part0.parquet"), "--suite", str(suite), "--out", str(out),
                                "--no-resume", "--backend", "cython", "--format", "parquet", "--batch-rows", "64"])
    assert fresh.exit_code == 0, fresh.output
    assert "resumed" not in fresh.output


@pytest.mark.parametrize("args, message", [
    (["scan", "{root}", "--suite", "{tmp}/nope.toml", "--out", "{tmp}/o"], "not found"),
    (["scan", "{tmp}/missing", "--suite", "{suite}", "--out", "{tmp}/o"], "does not exist"),
    (["scan", "{root}", "--suite", "{bad_kind}", "--out", "{tmp}/o"], "unknown assertion kind"),
    (["scan", "{root}", "--suite", "{bad_col}", "--out", "{tmp}/o"], "column 'nope'"),
])
def test_errors_are_one_line_exit_2(runner, logs, tmp_path, args, message):
    root, suite = logs
    bad_kind = tmp_path / "bad_kind.toml"
    bad_kind.write_text('[[assertion]]\nkind = "rows.nope"\n')
    bad_col = tmp_path / "bad_col.toml"
    bad_col.write_text('[[assertion]]\nkind = "rows.check"\nexpr = "nope > 1"\n')
    argv = [a.format(root=root, tmp=tmp_path, suite=suite, bad_kind=bad_kind, bad_col=bad_col) for a in args]
    r = runner.invoke(cli, argv)
    assert r.exit_code == 2
    assert message in r.stderr
    assert r.stderr.startswith("tripwire: error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.output and "Traceback" not in r.stderr
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit)


def test_usage_errors_exit_2(runner):
    r = runner.invoke(cli, ["scan", "x.parquet"])  # no --suite / --out
    assert r.exit_code == 2 and "--suite" in r.stderr
    r = runner.invoke(cli, ["scan", "x", "--suite", "s", "--out", "o", "--backend", "fortran"])
    assert r.exit_code == 2


def test_demo_prints_summary_and_top_events(runner):
    r = runner.invoke(cli, ["demo", "--no-progress"])
    assert r.exit_code == 0, r.output
    for word in ("tripwire scan summary", "box_outside_image", "pedestrian_too_short", "track_gaps",
                 "lost_and_refound 2", "581", "top 5 events", "tracker.parquet", "gt.parquet", "CC BY-NC-SA 3.0",
                 "detections.parquet", "boxes.multibox 20", "boxes.flicker 183", "boxes.appear 61", "2,629"):
        assert word in r.output
    # the ECG sample: 420 windows; 3 injected flips, 2 baseline-wander windows of record 101
    assert "windows.parquet" in r.output and "ODC-By" in r.output
    ecg = r.output[r.output.index("mitbih_ecg_suite.toml"):]
    assert "420 rows" in ecg and "ecg.rhythm_flip" in ecg


def test_demo_out_keeps_outputs(runner, tmp_path):
    r = runner.invoke(cli, ["demo", "--out", str(tmp_path / "d"), "--top", "0"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d" / "tud_campus" / "summary.parquet").exists()
    assert (tmp_path / "d" / "tud_campus" / "violations" / "tracker.parquet.parquet").exists()
    assert (tmp_path / "d" / "vtest_hog" / "corrections" / "detections.parquet.parquet").exists()
    assert (tmp_path / "d" / "mitbih_ecg" / "violations" / "windows.parquet.parquet").exists()


def test_kinds_lists_parameters(runner):
    r = runner.invoke(cli, ["kinds"])
    assert r.exit_code == 0
    for k in tw.kinds():
        assert k in r.output
    assert "allowed_transitions" in r.output and "expr" in r.output


def test_bench_delegates_to_bench_modules(runner, monkeypatch):
    seen: dict = {}

    def rows_cli(sizes, quick, backends):
        seen["rows"] = dict(sizes=sizes, quick=quick, backends=backends)
        return 0

    def boxes_cli(sizes, quick, backends, densities):
        seen["boxes"] = dict(sizes=sizes, quick=quick, backends=backends, densities=densities)
        return 0

    monkeypatch.setitem(sys.modules, "tripwire.bench", types.SimpleNamespace(run_cli=rows_cli))
    monkeypatch.setitem(sys.modules, "tripwire.bench_boxes",
                        types.SimpleNamespace(run_cli=boxes_cli, DENSITIES=(10, 30, 100)))
    monkeypatch.delattr(tw, "bench_boxes", raising=False)  # `from tripwire import` reads the attribute first

    def points_cli(sizes, quick, backends):
        seen["points"] = dict(sizes=sizes, quick=quick, backends=backends)
        return 0

    monkeypatch.setitem(sys.modules, "tripwire.bench_points", types.SimpleNamespace(run_cli=points_cli))
    monkeypatch.delattr(tw, "bench_points", raising=False)

    def ecg_cli(sizes, quick, backends):
        seen["ecg"] = dict(sizes=sizes, quick=quick, backends=backends)
        return 0

    monkeypatch.setitem(sys.modules, "tripwire.bench_ecg", types.SimpleNamespace(run_cli=ecg_cli))
    monkeypatch.delattr(tw, "bench_ecg", raising=False)
    r = runner.invoke(cli, ["bench", "--sizes", "1000000,1e7", "--quick", "--backends", "cython,numba"])
    assert r.exit_code == 0, r.output
    assert seen == {"rows": {"sizes": [1_000_000, 10_000_000], "quick": True, "backends": ["cython", "numba"]},
                    "boxes": {"sizes": [1_000_000, 10_000_000], "quick": True, "backends": ["cython", "numba"],
                              "densities": (10, 30, 100)},
                    "points": {"sizes": [1_000_000, 10_000_000], "quick": True, "backends": ["cython", "numba"]},
                    "ecg": {"sizes": [1_000_000, 10_000_000], "quick": True, "backends": ["cython", "numba"]}}
    seen.clear()
    r = runner.invoke(cli, ["bench", "--family", "points", "--quick"])
    assert r.exit_code == 0 and seen == {"points": {"sizes": None, "quick": True, "backends": None}}
    seen.clear()
    r = runner.invoke(cli, ["bench", "--family", "ecg", "--quick"])
    assert r.exit_code == 0 and seen == {"ecg": {"sizes": None, "quick": True, "backends": None}}
    seen.clear()
    r = runner.invoke(cli, ["bench", "--family", "boxes", "--boxes-per-frame", "10,30"])
    assert r.exit_code == 0 and seen == {"boxes": {"sizes": None, "quick": False, "backends": None,
                                                   "densities": (10, 30)}}
    seen.clear()
    r = runner.invoke(cli, ["bench", "--family", "rows"])
    assert r.exit_code == 0 and seen == {"rows": {"sizes": None, "quick": False, "backends": None}}
    r = runner.invoke(cli, ["bench", "--sizes", "lots"])
    assert r.exit_code == 2


def test_version_and_help(runner):
    r = runner.invoke(cli, ["--version"])
    assert r.exit_code == 0 and tw.__version__ in r.output
    r = runner.invoke(cli, ["--help"])
    assert r.exit_code == 0 and all(c in r.output for c in ("scan", "demo", "bench", "kinds"))


def test_import_tripwire_does_not_import_cli_deps():
    import subprocess

    code = "import sys, tripwire; print(any(m.split('.')[0] in ('rich', 'click') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_out_inside_the_input_folder_twice(runner, logs):
    root, suite = logs
    argv = ["scan", str(root), "--suite", str(suite), "--out", str(root / "out"), "--no-progress"]
    first = runner.invoke(cli, argv)
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli, argv)
    assert second.exit_code == 0, second.output
    assert "2 file(s), 2 resumed" in second.output
    same = runner.invoke(cli, ["scan", str(root), "--suite", str(suite), "--out", str(root), "--no-progress"])
    assert same.exit_code == 2 and "is also a scan input" in same.stderr
    assert same.stderr.startswith("tripwire: error: ") and same.stderr.count("\n") == 1


@pytest.mark.parametrize("suite_arg", ["suit.tml", "suites", "{tmp}"])
def test_mistyped_suite_path_is_not_found_not_invalid_toml(runner, logs, tmp_path, monkeypatch, suite_arg):
    root, _ = logs
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(cli, ["scan", str(root), "--suite", suite_arg.format(tmp=tmp_path), "--out",
                            str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "suite file not found" in r.stderr and "invalid TOML" not in r.stderr
    assert r.stderr.startswith("tripwire: error: ") and r.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_format_reads_files_without_known_extensions(runner, logs, tmp_path):
    root, suite = logs
    data = tmp_path / "dat"
    data.mkdir()
    for i in range(2):
        (data / f"part{i}.dat").write_bytes((root / f"part{i}.parquet").read_bytes())
    r = runner.invoke(cli, ["scan", str(data), "--suite", str(suite), "--out", str(tmp_path / "o"), "--no-progress"])
    assert r.exit_code == 2 and "--format" in r.stderr
    r = runner.invoke(cli, ["scan", str(data), "--suite", str(suite), "--out", str(tmp_path / "o"),
                            "--format", "parquet", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "2 file(s)" in r.output and "1,000 rows" in r.output


def test_backend_and_format_choices_follow_the_library():
    from tripwire import _dispatch
    from tripwire.cli import scan as scan_cmd
    from tripwire.scan import FORMATS

    opts = {p.name: p for p in scan_cmd.params}
    assert list(opts["backend"].type.choices) == list(_dispatch.BACKENDS)
    assert set(FORMATS) | {"feather"} <= set(opts["fmt"].type.choices)
