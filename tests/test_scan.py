"""``tripwire.scan``: formats, folders, outputs, resume, and batch-by-batch equivalence."""
from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import tripwire as tw
import tripwire.scan as scan_mod
from tripwire.errors import ColumnError, InputError, SuiteError
from tripwire.scan import scan


def make_table(n: int = 1000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    track = rng.integers(0, 40, n)
    frame = np.sort(rng.integers(0, n // 4, n))
    cls = np.where(rng.random(n) < 0.1, 1, 0).astype(np.int64)  # ~10% rows flip class: inconsistent ids
    score = rng.random(n) * 1.2 - 0.1  # some outside [0, 1]
    return pa.table({"frame": frame.astype(np.int64), "track": track.astype(np.int64), "cls": cls,
                     "score": score, "unused": np.arange(n, dtype=np.int64)})


def make_suite() -> tw.Suite:
    return tw.Suite([
        tw.rows.check("score < 0 or score > 1", name="bad_score"),
        tw.rows.consistent(id="track", attr="cls", name="cls_per_track"),
        tw.rows.check("score - 0.9", name="high_score"),  # numeric: severity = value
        tw.rows.contiguous(id="track", time="frame", window=20, allowed_transitions=1, name="gaps"),
    ])


def strip(v: pa.Table) -> pa.Table:
    return v.drop_columns(["file"])


@pytest.fixture
def table() -> pa.Table:
    return make_table()


def test_parquet_file_matches_suite_check(tmp_path, table):
    src = tmp_path / "in" / "log.parquet"
    src.parent.mkdir()
    pq.write_table(table, src)
    suite = make_suite()
    res = scan(str(src), suite, tmp_path / "out", progress=False)
    expected = suite.check(table)
    v = pq.read_table(res.violations_path("log.parquet"))
    assert set(v.column("file").to_pylist()) <= {"log.parquet"}
    assert strip(v).equals(expected.violations)
    assert res.files == ["log.parquet"] and res.scanned == ["log.parquet"] and res.skipped == []
    assert res.rows == table.num_rows
    assert res.events == expected.n_events and res.violations == len(expected) > 0
    s = pq.read_table(tmp_path / "out" / "summary.parquet")
    assert s.equals(res.summary)
    want = expected.summary()
    assert s.column("events").to_pylist() == want.column("events").to_pylist()
    assert s.column("rows").to_pylist() == want.column("rows").to_pylist()
    assert s.column("corrections").to_pylist() == want.column("corrections").to_pylist()
    assert s.column("files").to_pylist() == [1] * len(suite)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert list(manifest["files"]) == ["log.parquet"]
    assert manifest["files"]["log.parquet"]["stat"]["size"] == os.path.getsize(src)


def test_many_small_batches_give_the_same_violations(tmp_path, table, monkeypatch):
    """Row-scope assertions run per batch (bounded memory) yet match one whole-table check."""
    src = tmp_path / "log.parquet"
    pq.write_table(table, src, row_group_size=128)
    suite = make_suite()
    sizes: dict[str, list[int]] = {}
    real = scan_mod._evaluate

    def spy(a, t, backend, rel):
        sizes.setdefault(a.name, []).append(t.num_rows)
        return real(a, t, backend, rel)

    monkeypatch.setattr(scan_mod, "_evaluate", spy)
    res = scan([str(src)], suite, tmp_path / "out", progress=False, batch_rows=100)
    assert len(sizes["bad_score"]) >= 10 and max(sizes["bad_score"]) <= 100
    assert sum(sizes["bad_score"]) == table.num_rows
    assert sizes["cls_per_track"] == [table.num_rows]  # group scope: once per file
    v = strip(res.read_violations())
    assert v.equals(suite.check(table).violations)


def test_corrections_are_indexed_within_the_file(tmp_path, table):
    src = tmp_path / "log.parquet"
    pq.write_table(table, src, row_group_size=100)
    suite = make_suite()
    res = scan(src, suite, tmp_path / "out", progress=False, batch_rows=64)
    c = pq.read_table(res.corrections_path("log.parquet"))
    want = suite.check(table).corrections()
    assert c.num_rows == want.num_rows > 0
    assert set(c.column("file").to_pylist()) == {"log.parquet"}
    # the body holds the columns the suite reads (projection): compare those
    cols = ["source_assertion", "action", "row", "column", "frame", "track", "cls", "score"]
    assert "unused" not in c.column_names
    assert c.select(cols).equals(want.select(cols))
    assert res.corrections == c.num_rows


@pytest.mark.parametrize("fmt", ["ipc", "csv"])
def test_ipc_and_csv(tmp_path, table, fmt):
    if fmt == "ipc":
        src = tmp_path / "log.arrow"
        feather.write_feather(table, src, chunksize=100)
    else:
        src = tmp_path / "log.csv"
        pcsv.write_csv(table, src)
    suite = make_suite()
    res = scan([src], suite, tmp_path / "out", progress=False, batch_rows=100)
    v = strip(res.read_violations())
    exp = suite.check(table).violations
    assert v.select(["assertion", "row", "event"]).equals(exp.select(["assertion", "row", "event"]))
    assert np.allclose(v.column("severity").to_numpy(), exp.column("severity").to_numpy(), atol=1e-6)


def test_explicit_format_for_unknown_extension(tmp_path, table):
    src = tmp_path / "log.data"
    pq.write_table(table, src)
    with pytest.raises(InputError, match="--format"):
        scan([src], make_suite(), tmp_path / "out", progress=False)
    res = scan([src], make_suite(), tmp_path / "out", progress=False, format="parquet")
    assert res.files == ["log.data"] and res.events > 0


def test_folder_recursive_mixed_formats(tmp_path):
    root = tmp_path / "logs"
    (root / "day1").mkdir(parents=True)
    (root / "day2" / "cam").mkdir(parents=True)
    (root / ".hidden").mkdir()
    tables = {"day1/a.parquet": make_table(300, 1), "day2/cam/b.feather": make_table(200, 2),
              "c.csv": make_table(100, 3)}
    pq.write_table(tables["day1/a.parquet"], root / "day1" / "a.parquet")
    feather.write_feather(tables["day2/cam/b.feather"], root / "day2" / "cam" / "b.feather")
    pcsv.write_csv(tables["c.csv"], root / "c.csv")
    (root / "meta.json").write_text("{}")  # not a data file: skipped
    (root / "_SUCCESS").write_text("")
    pq.write_table(make_table(10), root / ".hidden" / "x.parquet")
    suite = make_suite()
    res = scan(root, suite, tmp_path / "out", progress=False)
    assert sorted(res.files) == sorted(tables)
    v = res.read_violations()
    for rel, t in tables.items():
        part = v.filter(pa.compute.equal(v.column("file"), rel))
        exp = suite.check(t).violations
        assert part.column("row").to_pylist() == exp.column("row").to_pylist()
        assert os.path.exists(res.violations_path(rel)) and os.path.exists(res.corrections_path(rel))
    assert res.rows == 600
    assert res.summary.column("files").to_pylist() == [3] * len(suite)
    assert res.summary.column("events").to_pylist() == [
        sum(suite.check(t).summary().column("events")[i].as_py() for t in tables.values())
        for i in range(len(suite))]


def test_several_paths_use_their_common_root(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pq.write_table(make_table(50, 1), tmp_path / "a" / "x.parquet")
    pq.write_table(make_table(50, 2), tmp_path / "b" / "x.parquet")
    res = scan([tmp_path / "a", tmp_path / "b" / "x.parquet"], make_suite(), tmp_path / "out", progress=False)
    assert res.files == ["a/x.parquet", "b/x.parquet"]


def test_hive_partition_keys_are_columns(tmp_path):
    root = tmp_path / "ds"
    for cam in (1, 2):
        (root / f"cam={cam}").mkdir(parents=True)
        pq.write_table(pa.table({"v": [0.5, 2.0, 3.0 * cam]}), root / f"cam={cam}" / "part-0.parquet")
    suite = tw.Suite([tw.rows.check("v > 1 and cam == 2")])
    res = scan(root, suite, tmp_path / "out", progress=False)
    v = res.read_violations()
    assert v.column("file").to_pylist() == ["cam=2/part-0.parquet"] * 2
    assert v.column("row").to_pylist() == [1, 2]


def _write_three(tmp_path):
    root = tmp_path / "logs"
    root.mkdir()
    for i in range(3):
        pq.write_table(make_table(200, i), root / f"part{i}.parquet")
    return root


def test_resume_after_interruption_keeps_finished_files(tmp_path, monkeypatch):
    root = _write_three(tmp_path)
    out = tmp_path / "out"
    suite = make_suite()
    real = scan_mod._scan_file
    calls: list[str] = []

    def interrupted(suite, path, rel, *a, **k):
        calls.append(rel)
        if rel == "part1.parquet":
            raise KeyboardInterrupt
        return real(suite, path, rel, *a, **k)

    monkeypatch.setattr(scan_mod, "_scan_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scan(root, suite, out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["files"]) == ["part0.parquet"]
    done = out / "violations" / "part0.parquet.parquet"
    stamp = os.stat(done).st_mtime_ns
    assert not (out / "violations" / "part1.parquet.parquet").exists()
    assert not list(out.rglob("*.tmp-*"))  # no half-written outputs left behind

    calls.clear()
    monkeypatch.setattr(scan_mod, "_scan_file", lambda *a, **k: (calls.append(a[2]), real(*a, **k))[1])
    res = scan(root, suite, out, progress=False)
    assert calls == ["part1.parquet", "part2.parquet"]
    assert res.skipped == ["part0.parquet"] and res.scanned == ["part1.parquet", "part2.parquet"]
    assert os.stat(done).st_mtime_ns == stamp  # finished output untouched
    # the final summary covers every file, the resumed one included
    full = scan(root, suite, tmp_path / "fresh", progress=False)
    assert res.summary.equals(full.summary)
    assert pq.read_table(out / "summary.parquet").equals(full.summary)
    assert res.rows == 600 and res.events == full.events

    calls.clear()
    again = scan(root, suite, out, progress=False)
    assert calls == [] and again.skipped == again.files and again.summary.equals(full.summary)


def test_changed_file_is_redone(tmp_path):
    root = _write_three(tmp_path)
    out = tmp_path / "out"
    suite = make_suite()
    scan(root, suite, out, progress=False)
    new = make_table(300, 7)
    pq.write_table(new, root / "part1.parquet")
    res = scan(root, suite, out, progress=False)
    assert res.scanned == ["part1.parquet"]
    v = pq.read_table(res.violations_path("part1.parquet"))
    assert strip(v).equals(suite.check(new).violations)
    assert res.rows == 700


def test_changed_suite_or_no_resume_redoes_everything(tmp_path):
    root = _write_three(tmp_path)
    out = tmp_path / "out"
    scan(root, make_suite(), out, progress=False)
    res = scan(root, make_suite(), out, progress=False, resume=False)
    assert len(res.scanned) == 3
    other = tw.Suite([tw.rows.check("score > 1", name="bad_score")])
    res = scan(root, other, out, progress=False)
    assert len(res.scanned) == 3 and res.summary.column("assertion").to_pylist() == ["bad_score"]


def test_missing_column_names_file_and_column(tmp_path, table):
    pq.write_table(table.drop_columns(["cls"]), tmp_path / "log.parquet")
    with pytest.raises(ColumnError, match=r"log.parquet.*'cls'.*cls_per_track"):
        scan(tmp_path / "log.parquet", make_suite(), tmp_path / "out", progress=False)


def test_bad_inputs(tmp_path, table):
    with pytest.raises(InputError, match="does not exist"):
        scan(tmp_path / "nope", make_suite(), tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .* files"):
        scan(tmp_path / "empty", make_suite(), tmp_path / "out", progress=False)
    pq.write_table(table, tmp_path / "log.parquet")
    with pytest.raises(InputError, match="format"):
        scan(tmp_path / "log.parquet", make_suite(), tmp_path / "out", format="xls")
    with pytest.raises(InputError, match="backend"):
        scan(tmp_path / "log.parquet", make_suite(), tmp_path / "out", backend="fortran")
    two = tw.Suite([tw.rows.check("x > 1", table="a"), tw.rows.check("y > 1", table="b", name="other")])
    with pytest.raises(SuiteError, match="several tables"):
        scan(tmp_path / "log.parquet", two, tmp_path / "out")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="broken.parquet"):
        scan(tmp_path / "broken.parquet", make_suite(), tmp_path / "out2", progress=False)


def test_suite_file_path_and_empty_file(tmp_path, table):
    suite_file = tmp_path / "s.toml"
    suite_file.write_text('[[assertion]]\nkind = "rows.check"\nexpr = "score > 1"\n\n'
                          '[[assertion]]\nkind = "rows.consistent"\nid = "track"\nattr = "cls"\n')
    pq.write_table(table.slice(0, 0), tmp_path / "empty.parquet")
    res = scan(tmp_path / "empty.parquet", str(suite_file), tmp_path / "out", progress=False)
    assert res.rows == 0 and res.events == 0
    assert res.summary.column("rows").to_pylist() == [0, 0]
    assert pq.read_table(res.violations_path("empty.parquet")).num_rows == 0


def test_progress_bar_renders(tmp_path, table, monkeypatch, capsys):
    pq.write_table(table, tmp_path / "log.parquet")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    res = scan(tmp_path / "log.parquet", make_suite(), tmp_path / "out", progress=True, batch_rows=100)
    assert res.rows == table.num_rows
    err = capsys.readouterr().err
    assert "files" in err and "rows" in err


def test_demo_data_scan():
    """The bundled real data: the demo suite fires on known rows (see demo_suite.toml)."""
    import tempfile
    from importlib.resources import files

    data = files("tripwire").joinpath("data")
    with tempfile.TemporaryDirectory() as out:
        res = scan(str(data.joinpath("tud_campus")), str(data.joinpath("demo_suite.toml")), out, progress=False)
        assert sorted(res.files) == ["gt.parquet", "tracker.parquet"]
        assert res.rows == 222 + 359
        per = {f: {s["assertion"]: s["events"] for s in res.per_file[f]["summary"]} for f in res.files}
        assert per["tracker.parquet"]["box_outside_image"] == 10
        assert per["tracker.parquet"]["pedestrian_too_short"] == 14
        assert per["gt.parquet"]["box_outside_image"] == 19
        assert per["gt.parquet"]["pedestrian_too_short"] == 0
