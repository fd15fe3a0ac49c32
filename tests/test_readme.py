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
