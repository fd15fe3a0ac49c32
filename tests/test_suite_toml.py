"""TOML suite files: loading, error messages, and that they never execute code."""
from __future__ import annotations

import os

import pyarrow as pa
import pytest

import tripwire as tw
from tripwire import suite_toml
from tripwire.errors import SuiteError

VALID = """
description = "people and tracks"

[[assertion]]
kind = "rows.consistent"
name = "gender_per_name"
id = "name"
attr = "gender"

[[assertion]]
kind = "rows.check"
expr = "score < 0 or score > 1"

[[assertion]]
kind = "rows.contiguous"
id = "track"
time = "frame"
window = 10
allowed_transitions = 0
"""


def test_valid_text_builds_registered_assertions():
    suite = tw.Suite.from_toml(VALID)
    assert [a.kind for a in suite] == ["rows.consistent", "rows.check", "rows.contiguous"]
    assert [a.name for a in suite] == ["gender_per_name", "rows.check", "rows.contiguous"]
    assert suite.assertions[0].params() == {"id": "name", "attr": "gender", "flag": "first"}
    assert suite.assertions[2].window == 10 and suite.assertions[2].allowed == 0
    assert suite.columns() == {"rows": ["name", "gender", "score", "track", "frame"]}


def test_valid_file_and_pathlike(tmp_path):
    p = tmp_path / "suite.toml"
    p.write_text(VALID, encoding="utf-8")
    for src in (str(p), p):
        suite = suite_toml.load(src)
        assert len(suite) == 3


def test_file_suite_checks_like_python_suite():
    t = pa.table({"name": ["a", "a", "b"], "gender": ["f", "m", "m"], "score": [0.5, 1.5, 0.2],
                  "track": [1, 1, 2], "frame": [0, 1, 0]})
    from_file = tw.Suite.from_toml(VALID).check(t)
    by_hand = tw.Suite([tw.rows.consistent(id="name", attr="gender", name="gender_per_name"),
                        tw.rows.check("score < 0 or score > 1"),
                        tw.rows.contiguous(id="track", time="frame", window=10, allowed_transitions=0)]).check(t)
    assert from_file.violations.equals(by_hand.violations)


def test_from_dict_matches_toml():
    spec = {"assertion": [{"kind": "rows.check", "expr": "x > 1", "name": "big"}]}
    suite = tw.Suite.from_dict(spec)
    assert suite.assertions[0].name == "big" and suite.assertions[0].params() == {"expr": "x > 1"}


def test_bundled_demo_suite_loads():
    from importlib.resources import files

    suite = tw.Suite.from_toml(str(files("tripwire").joinpath("data", "demo_suite.toml")))
    assert len(suite) >= 3
    assert {a.kind for a in suite} >= {"rows.check", "rows.contiguous"}


def test_unknown_kind_lists_valid_kinds_and_entry():
    text = '[[assertion]]\nkind = "rows.check"\nexpr = "x > 1"\n\n[[assertion]]\nkind = "rows.nope"\nname = "bad"\n'
    with pytest.raises(SuiteError) as err:
        tw.Suite.from_toml(text)
    msg = str(err.value)
    assert "rows.nope" in msg and "[[assertion]] 2 of 2" in msg and "name='bad'" in msg
    for k in tw.kinds():
        assert k in msg


def test_unknown_parameter_lists_valid_parameters():
    text = '[[assertion]]\nkind = "rows.consistent"\nid = "a"\nattr = "b"\ncolour = "red"\n'
    with pytest.raises(SuiteError) as err:
        tw.Suite.from_toml(text)
    msg = str(err.value)
    assert "colour" in msg and "[[assertion]] 1 of 1" in msg
    for p in ("id", "attr", "flag", "name", "table"):
        assert p in msg


def test_missing_required_parameter_and_bad_value_name_the_entry():
    with pytest.raises(SuiteError, match=r"\[\[assertion\]\] 1 of 1.*missing required parameter.*attr"):
        tw.Suite.from_toml('[[assertion]]\nkind = "rows.consistent"\nid = "a"\n')
    # the assertion's own validation (an InputError) comes back as a SuiteError naming the entry
    with pytest.raises(SuiteError, match=r"\[\[assertion\]\] 1 of 1.*window"):
        tw.Suite.from_toml('[[assertion]]\nkind = "rows.contiguous"\nid = "a"\ntime = "t"\nwindow = -3\n')


def test_durations_are_integers_only():
    # TOML has no duration type: a string is refused by the assertion, not parsed
    with pytest.raises(SuiteError, match="window"):
        tw.Suite.from_toml('[[assertion]]\nkind = "rows.contiguous"\nid = "a"\ntime = "t"\nwindow = "3s"\n')


@pytest.mark.parametrize("text, match", [
    ("[[assertion]]\nname = 'x'\n", "missing kind"),
    ("", "no assertions"),
    ("assertions = 3\n", "unknown top-level key"),
    ("[[assertion]]\nkind = 'rows.check'\nexpr = 'x > 1'\nname = 3\n", "name must be a non-empty string"),
    ("[[assertion\nkind = 1", "invalid TOML"),
    ("[[assertion]]\nkind = 'rows.check'\nexpr = 'x > 1'\n[[assertion]]\nkind = 'rows.check'\nexpr = 'y > 1'\n",
     "duplicate assertion name"),
])
def test_malformed_suites(text, match):
    with pytest.raises(SuiteError, match=match):
        tw.Suite.from_toml(text)


def test_missing_file_is_a_suite_error(tmp_path):
    with pytest.raises(SuiteError, match="not found"):
        tw.Suite.from_toml(str(tmp_path / "nope.toml"))


def test_never_executes_code(tmp_path, monkeypatch):
    """Expressions, kinds and parameter values are data: nothing is imported or evaluated."""
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        "().__class__.__bases__[0].__subclasses__()",
        "lambda: 1",
        "x.__class__",
    ]
    for payload in payloads:
        text = f'[[assertion]]\nkind = "rows.check"\nexpr = """{payload}"""\n'
        with pytest.raises(SuiteError):
            tw.Suite.from_toml(text)
    # a kind naming a module path is just an unknown name
    with pytest.raises(SuiteError, match="unknown assertion kind"):
        tw.Suite.from_toml(f'[[assertion]]\nkind = "os.system"\ncommand = "touch {marker}"\n')
    # parameter values are passed as plain strings, never evaluated
    suite = tw.Suite.from_toml(f'[[assertion]]\nkind = "rows.consistent"\nid = "__import__(\'os\')"\n'
                               f'attr = "open(\'{marker}\', \'w\')"\n')
    assert suite.assertions[0].id == "__import__('os')"
    assert not marker.exists()
    assert not os.path.exists(str(marker))


def test_user_kinds_are_named_not_defined_by_files():
    @tw.assertion(name="tomltest.too_wide")
    def too_wide(x1, x2):
        return x2 - x1 > 500

    try:
        suite = tw.Suite.from_toml('[[assertion]]\nkind = "tomltest.too_wide"\nname = "wide"\n')
        assert suite.assertions[0].kind == "tomltest.too_wide" and suite.assertions[0].name == "wide"
        r = suite.check(pa.table({"x1": [0.0, 0.0], "x2": [10.0, 900.0]}))
        assert r.violations.column("row").to_pylist() == [1]
    finally:
        from tripwire import _registry

        _registry.unregister("tomltest.too_wide")


@pytest.mark.parametrize("name", ["suit.tml", "suites", "configs/suite"])
def test_mistyped_path_is_not_parsed_as_toml(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    with pytest.raises(SuiteError, match="suite file not found") as err:
        suite_toml.load(name)
    assert "invalid TOML" not in str(err.value)


def test_one_line_toml_text_is_still_text():
    with pytest.raises(SuiteError, match="no assertions"):
        suite_toml.load('description = "nothing yet"')
    with pytest.raises(SuiteError, match="invalid TOML"):
        suite_toml.load("[[assertion")
