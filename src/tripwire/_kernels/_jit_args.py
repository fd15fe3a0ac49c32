"""Read-only views of the arrays handed to the Numba kernels, used by every ``*_jit`` module's
public functions (``@readonly_args``).

Numba compiles one specialization per argument type, and an array's type includes whether it is
writeable: Arrow buffers arrive read-only, NumPy results writeable, so a kernel with ten array
arguments could compile up to 2**10 times for one dtype combination (seconds each). Handing the
kernels read-only views makes the flag constant: one compilation per dtype combination.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np


def readonly(a: Any) -> Any:
    """``a`` itself when it is not a writeable ndarray, else a read-only view of it (plain
    tuples and lists element by element; other containers as they are)."""
    if isinstance(a, np.ndarray):
        if a.flags.writeable:
            a = a.view()
            a.flags.writeable = False
        return a
    if type(a) in (tuple, list):
        return type(a)(readonly(x) for x in a)
    return a


def readonly_args(fn: Callable) -> Callable:
    """Call ``fn`` with read-only views of its array arguments (see the module docstring)."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        return fn(*[readonly(a) for a in args], **{k: readonly(v) for k, v in kwargs.items()})

    return call
