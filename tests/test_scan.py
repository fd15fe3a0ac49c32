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
from tripwire.errors import ColumnError, InputError
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
    # every assertion reads each file, whatever its table name: a missing column is named
    two = tw.Suite([tw.rows.check("score > 1", table="a"), tw.rows.check("x > 1", table="b", name="other")])
    with pytest.raises(InputError, match="column 'x'"):
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
        assert per["tracker.parquet"]["lost_and_refound"] == 2 and per["gt.parquet"]["lost_and_refound"] == 0
        hog = scan(str(data.joinpath("vtest_hog")), str(data.joinpath("vtest_hog_suite.toml")), out + "/hog",
                   progress=False)
        assert hog.rows == 2629
        events = {s["assertion"]: s["events"] for s in hog.per_file["detections.parquet"]["summary"]}
        assert events == {"boxes.multibox": 20, "boxes.flicker": 183, "boxes.appear": 61, "boxes.valid": 0}


# ----------------------------------------------------------------------------------------------
# Regressions (review fixes)
# ----------------------------------------------------------------------------------------------
def test_out_dir_inside_an_input_folder_is_not_read_back(tmp_path):
    root = _write_three(tmp_path)
    out = root / "out"
    suite = make_suite()
    first = scan(root, suite, out, progress=False)
    second = scan(root, suite, out, progress=False)  # its outputs are Parquet files under root
    assert first.files == second.files == [f"part{i}.parquet" for i in range(3)]
    assert second.skipped == second.files
    # with format= every file of a folder is read: the manifest must not be picked up either
    third = scan(root, suite, out, progress=False, format="parquet", resume=False)
    assert third.files == first.files
    with pytest.raises(InputError, match="output folder .* is also a scan input"):
        scan(root, suite, root, progress=False)
    assert not (root / "violations").exists()


def _udf(fn, name="user.scan_fp"):
    from tripwire.udf import UserAssertion

    return UserAssertion(fn, kind=name, columns=["score"], per="batch", by=None)


def test_changed_user_function_body_redoes_files(tmp_path):
    root = _write_three(tmp_path)
    out = tmp_path / "out"

    def high(score):
        return score > 0.5

    res = scan(root, tw.Suite([_udf(high)]), out, progress=False)
    assert len(res.scanned) == 3
    first_events = res.events

    def high(score):  # noqa: F811 - same name, kind and params; another body
        return score > 0.9

    res = scan(root, tw.Suite([_udf(high)]), out, progress=False)
    assert len(res.scanned) == 3 and res.events < first_events
    again = scan(root, tw.Suite([_udf(high)]), out, progress=False)
    assert again.skipped == again.files


def test_assertion_fingerprint():
    a = tw.rows.check("score > 1", name="x")
    assert a.fingerprint() == tw.rows.check("score > 1", name="x").fingerprint()
    assert a.fingerprint() != tw.rows.check("score > 2", name="x").fingerprint()
    assert a.fingerprint() != tw.rows.check("score > 1", name="y").fingerprint()

    def f(score):
        return (lambda v: v > 0.5)(score)

    def g(score):
        return (lambda v: v > 0.7)(score)  # differs only in a nested code object's constant

    def h(score):
        return np.abs(score) > 0.5

    def k(score):
        return np.sign(score) > 0.5  # differs only in the names it looks up

    fps = [_udf(fn).fingerprint() for fn in (f, g, h, k)]
    assert len(set(fps)) == 4
    assert _udf(f).fingerprint() == _udf(f).fingerprint()  # stable (no memory addresses)
    from tripwire.udf import UserAssertion

    other_cols = UserAssertion(f, kind="user.scan_fp", columns=["x"], per="batch", by=None)
    assert other_cols.fingerprint() != fps[0]


def test_zero_row_files_give_empty_outputs_and_the_scan_goes_on(tmp_path):
    root = tmp_path / "logs"
    root.mkdir()
    full = make_table(200, 1)
    pq.write_table(full, root / "a.parquet")
    (root / "b_header.csv").write_text("frame,track,cls,score,unused\n")
    (root / "c_empty.csv").write_bytes(b"")
    pq.write_table(full.slice(0, 0), root / "d_zero.parquet")
    suite = make_suite()
    res = scan(root, suite, tmp_path / "out", progress=False)
    assert res.files == ["a.parquet", "b_header.csv", "c_empty.csv", "d_zero.parquet"]
    assert res.scanned == res.files
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert sorted(manifest["files"]) == res.files
    for rel in res.files[1:]:
        assert manifest["files"][rel]["rows"] == 0
        v = pq.read_table(res.violations_path(rel))
        c = pq.read_table(res.corrections_path(rel))
        assert v.num_rows == 0 and c.num_rows == 0
        assert v.column_names == ["file"] + tw.report.VIOLATION_SCHEMA.names
        assert c.column_names[:5] == ["file", "source_assertion", "action", "row", "column"]
        assert [s["rows"] for s in res.per_file[rel]["summary"]] == [0] * len(suite)
    assert res.rows == 200
    expected = suite.check(full)
    assert res.events == expected.n_events
    assert strip(res.read_violations()).equals(expected.violations)
    assert res.read_corrections().num_rows == expected.corrections().num_rows
    again = scan(root, suite, tmp_path / "out", progress=False)
    assert again.skipped == again.files


def test_reading_outputs_whose_types_differ_between_files(tmp_path):
    root = tmp_path / "logs"
    root.mkdir()
    (root / "a.csv").write_text("id,cls\n1,1\n1,1\n1,2\n")
    (root / "b.csv").write_text("id,cls\n1,car\n1,car\n1,bus\n")
    res = scan(root, tw.Suite([tw.rows.consistent(id="id", attr="cls")]), tmp_path / "out", progress=False)
    assert res.read_violations().num_rows == 4  # the violations carry no input column: they concatenate
    with pytest.raises(InputError, match=r"column 'cls' has different types.*a\.csv.*b\.csv.*fix: "):
        res.read_corrections()


def test_csv_type_change_after_the_first_block_explains_inference(tmp_path):
    n = 300_000  # > 1 MB: the value that breaks the inferred type lies past the first block
    lines = ["id,cls"] + [f"{i % 50},{i % 3}" for i in range(n)] + ["1,car"]
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"big\.csv.*inferred from the first block.*fix: .*Parquet"):
        scan(tmp_path / "big.csv", tw.Suite([tw.rows.consistent(id="id", attr="cls")]), tmp_path / "out",
             progress=False)


def test_arrow_ipc_streams_are_not_listed(tmp_path):
    assert not any(e.endswith(".arrows") for exts in scan_mod.FORMATS.values() for e in exts)
    root = tmp_path / "logs"
    root.mkdir()
    t = make_table(100, 1)
    pq.write_table(t, root / "a.parquet")
    with pa.ipc.new_stream(root / "b.arrows", t.schema) as w:  # a stream, not an IPC file
        w.write_table(t)
    res = scan(root, make_suite(), tmp_path / "out", progress=False)
    assert res.files == ["a.parquet"]


def test_format_reads_every_file_of_a_folder(tmp_path):
    root = tmp_path / "logs"
    (root / "sub").mkdir(parents=True)
    pq.write_table(make_table(100, 1), root / "a.dat")
    pq.write_table(make_table(100, 2), root / "sub" / "b")
    (root / "_SUCCESS").write_text("")
    with pytest.raises(InputError, match="--format"):
        scan(root, make_suite(), tmp_path / "out", progress=False)
    res = scan(root, make_suite(), tmp_path / "out", progress=False, format="parquet")
    assert res.files == ["a.dat", "sub/b"] and res.rows == 200
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".x.dat").write_text("")
    with pytest.raises(InputError) as err:
        scan(tmp_path / "hidden", make_suite(), tmp_path / "out2", progress=False, format="parquet")
    assert "pass --format" not in str(err.value)


def test_resume_redoes_files_whose_outputs_are_missing_or_truncated(tmp_path):
    root = _write_three(tmp_path)
    out = tmp_path / "out"
    suite = make_suite()
    first = scan(root, suite, out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    for rel in first.files:
        assert manifest["files"][rel]["outputs"] == {
            "violations": os.path.getsize(first.violations_path(rel)),
            "corrections": os.path.getsize(first.corrections_path(rel))}
    with open(first.violations_path("part0.parquet"), "rb") as fh:
        data = fh.read()
    with open(first.violations_path("part0.parquet"), "wb") as fh:
        fh.write(data[: len(data) // 2])  # a torn write that survived a crash
    os.remove(first.corrections_path("part2.parquet"))
    res = scan(root, suite, out, progress=False)
    assert res.scanned == ["part0.parquet", "part2.parquet"] and res.skipped == ["part1.parquet"]
    assert strip(res.read_violations()).num_rows == strip(first.read_violations()).num_rows


def test_outputs_are_fsynced_before_the_rename_and_temp_files_removed(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = "?"
        events.append(("fsync", name))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "o" / "x.parquet"
    scan_mod._write_parquet(make_table(10), str(target))
    assert pq.read_table(target).num_rows == 10
    tmp = [name for kind, name in events if kind == "replace"]
    assert len(tmp) == 1
    if os.path.exists("/proc/self/fd"):
        assert events.index(("fsync", tmp[0])) < events.index(("replace", tmp[0]))
    monkeypatch.undo()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(scan_mod.json, "dump", boom)
    with pytest.raises(RuntimeError):
        scan_mod._write_json({"a": 1}, str(tmp_path / "m.json"))
    assert os.listdir(tmp_path) == ["o"]  # no m.json.tmp-* left behind


def test_progress_bar_counts_only_files_to_scan(tmp_path, monkeypatch):
    root = _write_three(tmp_path)
    out = tmp_path / "out"
    suite = make_suite()
    scan(root, suite, out, progress=False)
    pq.write_table(make_table(300, 9), root / "part1.parquet")
    seen: dict[str, list] = {"totals": [], "done": []}

    class Spy(scan_mod._RichProgress):
        def __init__(self, n_files, total_rows, console):
            seen["totals"].append((n_files, total_rows))
            super().__init__(n_files, total_rows, console)

        def file_done(self):
            seen["done"].append(1)
            super().file_done()

    monkeypatch.setattr(scan_mod, "_RichProgress", Spy)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    res = scan(root, suite, out, progress=True)
    assert res.scanned == ["part1.parquet"]
    assert seen["totals"] == [(1, 300)] and len(seen["done"]) == 1


def test_summary_schema_is_the_report_schema_plus_files():
    assert scan_mod.SUMMARY_SCHEMA.names == ["assertion", "kind", "files", "rows", "violations", "events",
                                             "rate", "max_severity", "corrections"]
    assert scan_mod.SUMMARY_SCHEMA.remove(2).equals(tw.report.SUMMARY_SCHEMA)
    assert make_suite().check(make_table(50)).summary().schema.equals(tw.report.SUMMARY_SCHEMA)


def test_summary_counts_the_corrections_of_row_scope_assertions(tmp_path):
    # row-scope results are merged across batches; their corrections are written per batch and
    # the summary must still count them (it once said 0)
    from importlib.resources import files

    windows = pq.read_table(str(files("tripwire") / "data" / "mitbih_ecg" / "windows.parquet"))
    src = tmp_path / "w.parquet"
    pq.write_table(windows, src, row_group_size=50)
    suite = tw.Suite([tw.ecg.signal_quality(name="quality")])
    want = suite.check(windows)
    res = scan(src, suite, tmp_path / "out", progress=False, batch_rows=40)
    c = pq.read_table(res.corrections_path("w.parquet"))
    n_want = want.summary().column("corrections").to_pylist()[0]
    assert n_want > 0 and c.num_rows == n_want
    assert res.summary.column("corrections").to_pylist() == [n_want]
    assert res.corrections == n_want
