"""Backend fixtures: every kernel test runs on every backend present.

``reference`` is the test-only plain-loop backend (``tests/reference.py``), registered with the
dispatch module here so that the package never ships it.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest

import tripwire._dispatch as dispatch

sys.path.insert(0, os.path.dirname(__file__))


def _reference_loader(family: str):
    import reference

    return reference


dispatch.register_backend("reference", _reference_loader)

_HAS_NUMBA = importlib.util.find_spec("numba") is not None


def _cupy_usable() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


# kernel families a test module exercises, when its name does not say (``test_<family>_*.py``)
_FAMILIES = {"test_monitor": ("boxes", "rows", "points", "ecg"), "test_udf": ("udf",)}


def _families(module) -> tuple[str, ...]:
    name = module.__name__.rsplit(".", 1)[-1]
    if name in _FAMILIES:
        return _FAMILIES[name]
    return tuple(f for f in ("points", "boxes", "rows", "ecg") if name.startswith(f"test_{f}"))


def _skip_without_gpu_kernels(request) -> None:
    """The cupy param runs only where every kernel family the test uses has CuPy kernels: those
    of its module, or those its ``families`` marker names."""
    marker = request.node.get_closest_marker("families")
    families = tuple(marker.args) if marker else _families(request.module)
    missing = [f for f in families if importlib.util.find_spec(f"tripwire._kernels.{f}_gpu") is None]
    if not families or missing:
        pytest.skip(f"no CuPy kernels for {', '.join(missing) or 'this test module'}")


BACKENDS = [
    pytest.param("cython", id="cython"),
    pytest.param("numba", id="numba", marks=pytest.mark.skipif(not _HAS_NUMBA, reason="numba missing")),
    pytest.param("reference", id="reference"),
    # CuPy kernels exist per family (tripwire._kernels.<family>_gpu); the fixtures skip the
    # families without them
    pytest.param("cupy", id="cupy", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not _cupy_usable(), reason="needs CuPy and a GPU")]),
]
# backends whose kernels we compare against the reference
FAST_BACKENDS = [p for p in BACKENDS if p.id != "reference"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param == "cupy":
        _skip_without_gpu_kernels(request)
    return request.param


@pytest.fixture(params=FAST_BACKENDS)
def fast_backend(request) -> str:
    if request.param == "cupy":
        _skip_without_gpu_kernels(request)
    return request.param
