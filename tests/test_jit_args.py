"""The Numba kernels see read-only views, so the writeable flag never forces a recompilation."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("numba")

from tripwire._kernels import boxes_jit, rows_jit  # noqa: E402
from tripwire._kernels._jit_args import readonly  # noqa: E402


def test_readonly_views_leave_the_callers_arrays_writeable():
    a = np.arange(4.0)
    b = pa.array([1, 2]).to_numpy()  # Arrow memory: already read-only
    ra, rb = readonly(a), readonly(b)
    assert not ra.flags.writeable and a.flags.writeable
    assert np.shares_memory(ra, a)
    assert rb is b
    views = readonly((a, [a, 3], None))
    assert isinstance(views, tuple) and isinstance(views[1], list)
    assert not views[0].flags.writeable and not views[1][0].flags.writeable
    assert views[1][1] == 3 and views[2] is None


def _boxes(writeable: bool):
    cols = [np.array(v, np.float32) for v in ([0, 5], [0, 5], [4, 1], [4, 9], [0.5, 2.0])]
    for c in cols:
        c.flags.writeable = writeable
    x1, y1, x2, y2, score = cols
    return x1, y1, x2, y2, np.empty(0, np.uint8), score, np.empty(0, np.uint8)


def test_one_compilation_whatever_the_writeable_flags():
    mixed = list(_boxes(True))
    mixed[1] = _boxes(False)[1]
    before = len(boxes_jit._valid.signatures)
    results = [boxes_jit.valid(*args, 10.0, 10.0) for args in (_boxes(True), _boxes(False), mixed)]
    assert len(boxes_jit._valid.signatures) - before <= 1
    for rows, reasons in results:
        np.testing.assert_array_equal(rows, [1])
        assert reasons.tolist() == [2 | 16]


def test_positive_rows_takes_readonly_and_writeable_values():
    values = np.array([0.0, 2.0, np.nan, -1.0, 3.0])
    frozen = values.copy()
    frozen.flags.writeable = False
    for v in (values, frozen):
        rows, sev = rows_jit.positive_rows(v, np.empty(0, np.uint8))
        assert rows.tolist() == [1, 4] and sev.tolist() == [2.0, 3.0]
    assert len(rows_jit._positive_rows.signatures) == 1
