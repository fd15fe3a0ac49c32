"""User-assertion drivers (Numba backend): one parallel loop per batch over rows or groups.

Called by ``tripwire.udf`` through ``tripwire._dispatch``; the test-only sibling in
``tests/reference.py`` calls the plain Python function per row. Drivers are generated for the
number of columns (never from user text) and cached.
"""
from __future__ import annotations

import numba
import numpy as np

from .._config import NUMBA_OPTIONS, NUMBA_PARALLEL_MIN_ROWS
from ..errors import InputError
from ._jit_args import readonly_args

# The default 'workqueue' layer aborts when two host threads call a parallel kernel at once
# (inference servers do); prefer OpenMP or TBB when present.
numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]

_DRIVERS: dict = {}


def _driver(kind: str, n_cols: int, parallel: bool):
    key = (kind, n_cols, parallel)
    if key in _DRIVERS:
        return _DRIVERS[key]
    args = ", ".join(f"c{j}" for j in range(n_cols))
    if kind == "row":
        src = (f"def drive(fn, valid, n{', ' if args else ''}{args}):\n"
               f"    out = np.zeros(n, np.float64)\n"
               f"    check = valid.shape[0] > 0\n"
               f"    for i in prange(n):\n"
               f"        if check and valid[i] == 0:\n"
               f"            continue\n"
               f"        out[i] = np.float64(fn({', '.join(f'c{j}[i]' for j in range(n_cols))}))\n"
               f"    return out\n")
    else:
        src = (f"def drive(fn, starts, n_groups{', ' if args else ''}{args}):\n"
               f"    out = np.zeros(n_groups, np.float64)\n"
               f"    for g in prange(n_groups):\n"
               f"        s = starts[g]\n"
               f"        e = starts[g + 1]\n"
               f"        if e > s:\n"
               f"            out[g] = np.float64(fn({', '.join(f'c{j}[s:e]' for j in range(n_cols))}))\n"
               f"    return out\n")
    ns = {"np": np, "prange": numba.prange}
    exec(src, ns)  # generated from the column count only
    fn = numba.njit(parallel=parallel, nogil=True, cache=False, fastmath=False)(ns["drive"])
    _DRIVERS[key] = fn
    return fn


def _compiled(ua):
    if ua._compiled is None:
        ua._compiled = numba.njit(**NUMBA_OPTIONS)(ua.fn)
    return ua._compiled


def _run(ua, drive, *args):
    try:
        return drive(_compiled(ua), *args)
    except (numba.core.errors.TypingError, numba.core.errors.UnsupportedError) as exc:
        first = str(exc).strip().splitlines()
        raise InputError(
            f"{ua.kind}: Numba cannot compile {ua.fn.__name__}() for columns {ua.cols}: "
            f"{first[0] if first else exc}",
            expected="a function of numbers/booleans (per='row') or arrays (per='group') returning a number or bool",
            fix="use only NumPy/math operations Numba supports, or per='batch' for plain Python",
        ) from None


@readonly_args
def udf_rows(ua, views, valid, n):
    drive = _driver("row", len(views), n >= NUMBA_PARALLEL_MIN_ROWS)
    out = _run(ua, drive, valid, np.int64(n), *views)
    rows = np.flatnonzero(out > 0).astype(np.int64)
    with np.errstate(over="ignore"):  # a severity beyond float32 becomes inf, without a warning
        return rows, out[rows].astype(np.float32)


def udf_groups(ua, views, codes, offset, n_keys, valid):
    n = len(codes)
    keep = np.ones(n, bool) if valid.shape[0] == 0 else valid.astype(bool)
    idx = np.flatnonzero(keep)
    k = codes[idx].astype(np.int64) - offset
    order = idx[np.argsort(k, kind="stable")]  # rows grouped by key, input order inside
    counts = np.bincount(k, minlength=n_keys) if n_keys else np.zeros(0, np.int64)
    starts = np.zeros(n_keys + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    cols = [v[order] for v in views]
    drive = _driver("group", len(views), n >= NUMBA_PARALLEL_MIN_ROWS)
    out = _run(ua, drive, starts, np.int64(n_keys), *cols)
    bad = np.flatnonzero(out > 0)
    sizes = counts[bad]
    rows = np.concatenate([order[starts[g]:starts[g + 1]] for g in bad]) if len(bad) else np.empty(0, np.int64)
    events = np.repeat(np.arange(len(bad), dtype=np.int64), sizes)
    with np.errstate(over="ignore"):
        sev = np.repeat(out[bad].astype(np.float32), sizes)
    anchor = order[starts[bad]] if len(bad) else np.empty(0, np.int64)
    return rows.astype(np.int64), events, sev, anchor.astype(np.int64)
