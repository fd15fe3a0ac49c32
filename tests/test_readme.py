"""The README's Python examples run as written and give the results the README states."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import tripwire._registry as registry

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def readme_namespace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes violations.parquet
    yield {}
    for kind in ("my.too_wide", "my.jumpy"):
        registry.unregister(kind)


def test_readme_examples_run(readme_namespace):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    quick_start, user_assertions = blocks[0], blocks[1]
    ns = readme_namespace
    exec(quick_start + user_assertions.replace("tw.Suite([too_wide, jumpy]).check(boxes)",
                                               "user_report = tw.Suite([too_wide, jumpy]).check(boxes)"), ns)
    report = ns["report"]
    by_assertion = {s["assertion"]: s["events"] for s in report.summary().to_pylist()}
    assert by_assertion == {"rows.consistent": 1, "rows.contiguous": 1, "score_range": 1}
    assert Path("violations.parquet").exists()
    got = [(v["assertion"], v["row"]) for v in ns["user_report"].violations.to_pylist()]
    # as the README's comment says: too_wide flags row 1, jumpy flags track 1 (rows 0-2)
    assert got == [("my.too_wide", 1), ("my.jumpy", 0), ("my.jumpy", 1), ("my.jumpy", 2)]


def test_readme_tracking_example(tmp_path, monkeypatch):
    """The flicker/appear example, on the bundled TUD-Campus tracker output written back as the
    MOTChallenge ``test.txt`` it came from."""
    import pyarrow.parquet as pq

    import tripwire as tw

    block = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "read_mot(\"test.txt\")" in b)
    t = pq.read_table(Path(tw.__file__).parent / "data" / "tud_campus" / "tracker.parquet").to_pylist()
    lines = [f"{r['frame']},{r['id']},{r['x1']},{r['y1']},{r['x2'] - r['x1']},{r['y2'] - r['y1']},-1,-1,-1,-1"
             for r in t]
    (tmp_path / "test.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec("import tripwire as tw\n" + block, ns)
    summary = {s["assertion"]: s["events"] for s in ns["report"].summary().to_pylist()}
    assert summary == {"boxes.flicker": 2, "boxes.appear": 0}
    assert ns["fixed"].num_rows == len(t) + 15


def test_readme_monitor_example(capsys):
    """The Monitor example runs as written: the first frame is still open (no violation yet),
    flush judges it: the two overlapping boxes are not a multibox (min_boxes=3)."""
    block = next(b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "tw.Monitor(" in b)
    ns: dict = {}
    exec(block, ns)
    mon = ns["monitor"]
    assert mon.rows == 2 and mon.batches == 1 and not mon.rejected and mon.retained_rows() == 0
    assert mon.observe({"not": "a table"}).rejected == "not_a_table"
