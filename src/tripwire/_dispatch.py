"""The one place that knows which backends exist and which kernel module serves a family.

Kernel families are modules with the same function names and argument order per backend:
``tripwire._kernels._<family>_cy`` (Cython, ahead of time), ``tripwire._kernels.<family>_jit``
(Numba), ``tripwire._kernels.<family>_gpu`` (CuPy). The test suite registers a fourth,
``reference`` (plain loops in ``tests/reference.py``), through :func:`register_backend`.
No other module checks for CuPy or Numba.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Callable

from . import _config
from .errors import BackendUnavailable, InputError

__all__ = ["BACKENDS", "resolve", "kernels", "register_backend", "available", "has_gpu_kernels"]

BACKENDS = ("auto", "cython", "numba", "cupy")

_MODULE_PATTERN = {
    "cython": "tripwire._kernels._{family}_cy",
    "numba": "tripwire._kernels.{family}_jit",
    "cupy": "tripwire._kernels.{family}_gpu",
}
_EXTRA: dict[str, Callable[[str], ModuleType]] = {}

_GPU_HINT = "pip install tripwire[gpu]"


def register_backend(name: str, loader: Callable[[str], ModuleType]) -> None:
    """Add a backend whose ``loader(family)`` returns the kernel module (tests use this)."""
    _EXTRA[name] = loader


@functools.lru_cache(maxsize=None)
def _cupy_ready() -> bool:
    """Whether CuPy imports and sees a GPU (asked once: a failed import walks sys.path)."""
    try:
        import cupy  # noqa: F401

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no package, no driver, no device: all mean "not available"
        return False


def available() -> list[str]:
    names = ["cython"]
    if importlib.util.find_spec("numba") is not None:
        names.append("numba")
    if _cupy_ready():
        names.append("cupy")
    return names + sorted(_EXTRA)


@functools.lru_cache(maxsize=None)
def has_gpu_kernels(family: str) -> bool:
    """Whether ``family`` has CuPy kernels (``tripwire._kernels.<family>_gpu``; not imported)."""
    return importlib.util.find_spec(_MODULE_PATTERN["cupy"].format(family=family)) is not None


def resolve(backend: str, n_rows: int = 0, family: str | None = None) -> str:
    """Validate a backend name and turn ``auto`` into a concrete one.

    ``auto`` is Cython (no JIT warm-up on the default path) unless CuPy and a GPU are present,
    the batch is large enough to amortise the transfer (``_config.GPU_MIN_ROWS``, or the
    family's own ``_config.GPU_MIN_ROWS_FAMILY``) and the
    caller names a kernel ``family`` that has CuPy kernels (callers that evaluate several
    families on one backend name none, and stay on the CPU).
    """
    if backend == "auto":
        if family is not None and n_rows >= _config.GPU_MIN_ROWS_FAMILY.get(family, _config.GPU_MIN_ROWS) \
                and has_gpu_kernels(family) and _cupy_ready():
            return "cupy"
        return "cython"
    if backend in _MODULE_PATTERN or backend in _EXTRA:
        if backend == "cupy":
            _require_cupy()
        return backend
    raise InputError(
        f"unknown backend {backend!r}",
        expected=f"one of {', '.join(BACKENDS + tuple(sorted(_EXTRA)))}",
        fix="pass backend='auto' (default) or one of those names",
    )


def _require_cupy() -> None:
    try:
        import cupy  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend 'cupy' needs CuPy, which is not installed; install it with "
            f"`{_GPU_HINT}` (an NVIDIA GPU and driver are needed too)"
        ) from exc


def kernels(family: str, backend: str) -> ModuleType:
    """The kernel module of ``family`` for a concrete ``backend``."""
    if backend in _EXTRA:
        return _EXTRA[backend](family)
    if backend == "cupy":
        _require_cupy()
    name = _MODULE_PATTERN[backend].format(family=family)
    module = sys.modules.get(name)  # imported already: skip import_module's locking (~5 us)
    if module is not None:
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            raise BackendUnavailable(
                f"the {backend} backend has no kernels for {family!r} yet; use backend='cython'"
            ) from exc
        if backend == "numba":
            raise BackendUnavailable(
                f"backend 'numba' needs numba (`pip install numba`): {exc}"
            ) from exc
        raise
