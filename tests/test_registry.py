"""The assertion registry (one source of names) and backend selection errors."""
from __future__ import annotations

import importlib.util

import pyarrow as pa
import pytest

import tripwire as tw
from tripwire import _dispatch, _registry


@pytest.fixture
def user_kinds():
    """Names registered by a test; removed afterwards so tests can be re-run in one process."""
    names: list[str] = []
    yield names
    for n in names:
        _registry.unregister(n)


def test_builtin_kinds_are_listed():
    kinds = tw.kinds()
    for k in ("rows.consistent", "rows.contiguous", "rows.check"):
        assert k in kinds
    assert kinds == sorted(kinds)


def test_user_assertion_is_registered_and_listed(user_kinds):
    @tw.assertion(name="test_registry.wide")
    def wide(x1, x2):
        return x2 - x1 > 10

    user_kinds.append("test_registry.wide")
    assert "test_registry.wide" in tw.kinds()
    assert _registry.get("test_registry.wide") is wide
    built = tw.build("test_registry.wide", name="wide2")
    assert built.name == "wide2" and built.kind == "test_registry.wide"
    report = tw.Suite([built]).check(pa.table({"x1": [0.0, 0.0], "x2": [5.0, 20.0]}))
    assert report.violations.column("row").to_pylist() == [1]


def test_duplicate_kind_is_refused(user_kinds):
    @tw.assertion(name="test_registry.dup")
    def first(x):
        return x > 1

    user_kinds.append("test_registry.dup")
    with pytest.raises(tw.SuiteError, match="'test_registry.dup' is already registered"):
        @tw.assertion(name="test_registry.dup")
        def second(x):
            return x > 2
    with pytest.raises(tw.SuiteError, match="already registered"):
        _registry.register("rows.consistent", lambda **kw: None, builtin=True)
    assert _registry.get("test_registry.dup") is first


@pytest.mark.parametrize("kind", ["rows.x", "boxes.x", "ecg.mine", "drift.psi2", "tripwire.x"])
def test_reserved_namespaces_are_refused(kind):
    with pytest.raises(tw.SuiteError, match="reserved namespace"):
        _registry.register(kind, lambda **kw: None)
    with pytest.raises(tw.SuiteError, match="reserved namespace"):
        @tw.assertion(name=kind)
        def f(x):
            return x > 0
    assert kind not in tw.kinds()


@pytest.mark.parametrize("kind", ["", " padded", 3, None])
def test_bad_kind_names_are_refused(kind):
    with pytest.raises(tw.SuiteError, match="non-empty name"):
        _registry.register(kind, lambda **kw: None)


def test_builtins_cannot_be_unregistered():
    with pytest.raises(tw.SuiteError):
        _registry.unregister("rows.consistent")
    assert "rows.consistent" in tw.kinds()


def test_build_unknown_kind_lists_valid_kinds():
    with pytest.raises(tw.SuiteError) as info:
        _registry.build("rows.consistant", {"id": "a", "attr": "b"})
    msg = str(info.value)
    assert "unknown assertion kind 'rows.consistant'" in msg
    assert "valid kinds:" in msg
    for k in ("rows.check", "rows.consistent", "rows.contiguous"):
        assert k in msg


def test_build_unknown_parameter_lists_valid_parameters():
    with pytest.raises(tw.SuiteError) as info:
        _registry.build("rows.consistent", {"id": "a", "atr": "b"})
    msg = str(info.value)
    assert "unknown parameter(s) atr" in msg
    assert "valid parameters: attr, flag, id, name, table" in msg
    with pytest.raises(tw.SuiteError, match="unknown parameter.*windw.*valid parameters: .*window"):
        tw.build("rows.contiguous", id="a", time="t", windw=3)


def test_build_missing_parameter():
    with pytest.raises(tw.SuiteError, match="missing required parameter\\(s\\) attr"):
        _registry.build("rows.consistent", {"id": "a"})


def test_build_makes_the_same_assertion_as_the_constructor():
    a = _registry.build("rows.contiguous", {"id": "p", "time": "t", "window": 4, "allowed_transitions": 2})
    assert isinstance(a, tw.rows.contiguous)
    assert a.params() == tw.rows.contiguous(id="p", time="t", window=4, allowed_transitions=2).params()
    assert repr(a) == "rows.contiguous(id='p', time='t', window=4, allowed_transitions=2, step=1)"


# ----------------------------------------------------------------------------------------------
# backends
# ----------------------------------------------------------------------------------------------
def _table() -> pa.Table:
    return pa.table({"a": [1, 1], "b": ["x", "y"]})


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cupy_backend_without_cupy_says_how_to_install():
    suite = tw.Suite([tw.rows.consistent(id="a", attr="b")])
    with pytest.raises(ModuleNotFoundError) as info:
        suite.check(_table(), backend="cupy")
    assert "pip install tripwire[gpu]" in str(info.value)
    assert isinstance(info.value, tw.BackendUnavailable)
    with pytest.raises(ModuleNotFoundError, match=r"pip install tripwire\[gpu\]"):
        _dispatch.resolve("cupy")


@pytest.mark.parametrize("name", ["gpu", "CYTHON", "", "numpy"])
def test_unknown_backend_is_an_input_error(name):
    suite = tw.Suite([tw.rows.consistent(id="a", attr="b")])
    with pytest.raises(tw.InputError) as info:
        suite.check(_table(), backend=name)
    msg = str(info.value)
    assert f"unknown backend {name!r}" in msg
    assert "auto, cython, numba, cupy" in msg


def test_auto_resolves_to_a_concrete_backend():
    assert _dispatch.resolve("auto") == "cython"
    r = tw.Suite([tw.rows.consistent(id="a", attr="b")]).check(_table())
    assert r.backend == "cython"


def test_auto_goes_to_the_gpu_only_for_families_with_gpu_kernels(monkeypatch):
    monkeypatch.setattr(_dispatch, "_cupy_ready", lambda: True)
    big = tw._config.GPU_MIN_ROWS
    assert _dispatch.resolve("auto", big, "points") == "cupy"
    assert _dispatch.resolve("auto", big, "boxes") == "cupy"
    assert _dispatch.resolve("auto", big - 1, "points") == "cython"
    rows_big = tw._config.GPU_MIN_ROWS_FAMILY["rows"]  # the rows kernels win on the GPU later
    assert _dispatch.resolve("auto", rows_big, "rows") == "cupy"
    assert _dispatch.resolve("auto", rows_big - 1, "rows") == "cython"
    assert _dispatch.resolve("auto", big, "udf") == "cython"
    assert _dispatch.resolve("auto", big) == "cython"  # several families on one backend name
    assert tw.boxes.class_consistency.family == "rows"  # its kernel is rows.consistent
