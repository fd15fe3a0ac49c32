"""The shared IoU pair kernel (``kernels/_common.pxd``: 8 boxes at a time, AVX2 or portable C;
larger frames grouped by x for the association) against the plain-loop reference: ``multibox``
and ``associate`` on frames whose sizes sit on and around the block boundaries (1, 7, 8, 9,
15, 16, 17, 24, 25, 47, 48, 49, 64, 65, 100 boxes; the grouping by x starts above 48, by class
above one block), with clusters that link, identical and zero-area boxes, class codes of one,
a few or far-apart classes, NaN / +-inf / huge coordinates, for every build of the kernel this
CPU runs and every fast backend."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from tripwire import _dispatch
from tripwire._kernels import _boxes_cy

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SIZES = [1, 2, 7, 8, 9, 15, 16, 17, 24, 25, 31, 33, 47, 48, 49, 64, 65, 100]
SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e30, -3e38, 3e38], np.float32)
_BEST = _boxes_cy.simd_level(-1)


_LEVELS = {"cython-avx512": 2, "cython-avx2": 1, "cython-portable": 0}


@pytest.fixture(params=[*_LEVELS, "numba"])
def impl(request):
    """The boxes kernels, with the Cython pair kernel set to one build (restored after)."""
    name = request.param
    if name == "numba":
        if "numba" not in _dispatch.available():
            pytest.skip("numba unavailable")
        yield _dispatch.kernels("boxes", "numba")
        return
    level = _LEVELS[name]
    if _boxes_cy.simd_level(level) != level:
        _boxes_cy.simd_level(-1)
        pytest.skip(f"this CPU has no {name.split('-')[1].upper()}")
    try:
        yield _boxes_cy
    finally:
        _boxes_cy.simd_level(-1)


def _frame(rng, m, mode, odd):
    """``m`` boxes (x1, y1, x2, y2 float32): ``mode`` 0 clusters on a 0.5 grid (links, ties),
    1 spread like tracker output, 2 all identical; ``odd``: some zero-area and non-finite."""
    if mode == 0:
        c = rng.integers(0, 4, (m, 2)) * 12.0
        x1 = c[:, 0] + rng.integers(0, 6, m) * 0.5
        y1 = c[:, 1] + rng.integers(0, 6, m) * 0.5
        w, h = 8.0 + rng.integers(0, 6, m) * 0.5, 8.0 + rng.integers(0, 6, m) * 0.5
    elif mode == 1:
        x1, y1 = rng.uniform(0, 1700, m), rng.uniform(0, 900, m)
        w, h = rng.uniform(30, 200, m), rng.uniform(30, 200, m)
    else:
        x1, y1 = np.full(m, 3.0), np.full(m, 4.0)
        w, h = np.full(m, 10.0), np.full(m, 10.0)
    b = np.stack([x1, y1, x1 + w, y1 + h]).astype(np.float32)
    if odd:
        zero = rng.random(m) < 0.1
        b[2, zero] = b[0, zero]
        bad = rng.random(m) < 0.1
        b[rng.integers(0, 4, m)[bad], np.flatnonzero(bad)] = rng.choice(SPECIALS, int(bad.sum()))
    return b


def _moved(rng, b, mode):
    """The next frame of the same objects: jittered, shuffled, some dropped, some new."""
    m = b.shape[1]
    step = 0.5 if mode == 0 else 3.0
    nxt = (b + rng.integers(-2, 3, (4, m)) * np.float32(step)).astype(np.float32)
    keep = rng.random(m) < 0.85
    nxt = nxt[:, keep]
    extra = _frame(rng, int(rng.integers(0, 3)), mode, False)
    nxt = np.concatenate([nxt, extra], axis=1)
    return nxt[:, rng.permutation(nxt.shape[1])]


@st.composite
def frames(draw):
    return dict(seed=draw(st.integers(0, 2**32 - 1)), sizes=draw(st.lists(st.sampled_from(SIZES), min_size=1,
                                                                          max_size=4)),
                mode=draw(st.integers(0, 2)), odd=draw(st.booleans()),
                iou=draw(st.sampled_from([0.05, 0.3, 0.5, 0.9, 1.0])))


@PROPERTY
@given(d=frames(), min_boxes=st.integers(2, 4))  # the API refuses fewer than 2
def test_multibox_matches_reference(impl, d, min_boxes):
    rng = np.random.default_rng(d["seed"])
    b = np.concatenate([_frame(rng, m, d["mode"], d["odd"]) for m in d["sizes"]], axis=1)
    x1, y1, x2, y2 = (np.ascontiguousarray(v) for v in b)
    n = len(x1)
    score = rng.random(n).astype(np.float32)
    offsets = np.concatenate(([0], np.cumsum(d["sizes"]))).astype(np.int64)
    args = (x1, y1, x2, y2, score, np.empty(0, np.uint8), offsets, d["iou"], min_boxes)
    (pos, ev, sev, anchor), want = impl.multibox(*args), reference.multibox(*args)
    # the same groups, events and severities (the reference lists rows event by event)
    assert sorted(zip(pos.tolist(), ev.tolist(), sev.tolist())) == sorted(zip(*(w.tolist() for w in want[:3])))
    assert anchor.tolist() == want[3].tolist()


_I64 = np.iinfo(np.int64)
# class codes a frame's boxes get: one class (no grouping by class), a few (grouped, negative
# codes too), codes spanning more than TW_MAX_CLS_SPAN = 64 (not grouped), and int64 codes at
# both ends of the range (spans that overflow a signed difference)
CLASS_CODES = {"one": [0], "two": [0, 1], "five": [-3, -2, -1, 0, 1], "wide": [0, 40, 80],
               "ends": [_I64.min, _I64.max - 1, _I64.max]}


def _classes(rng, n, codes, dtype):
    return rng.choice(np.array(CLASS_CODES[codes], np.int64), n).astype(np.int64 if codes == "ends" else dtype)


@PROPERTY
@given(d=frames(), max_gap=st.integers(0, 2), codes=st.sampled_from(sorted(CLASS_CODES)),
       dtype=st.sampled_from([np.int32, np.int64]))
def test_associate_matches_reference(impl, d, max_gap, codes, dtype):
    rng = np.random.default_rng(d["seed"])
    parts = [_frame(rng, d["sizes"][0], d["mode"], d["odd"])]
    for m in d["sizes"][1:]:  # the same objects again (a frame's size is then about its own)
        parts.append(_moved(rng, parts[-1], d["mode"]) if rng.random() < 0.8 else _frame(rng, m, d["mode"], d["odd"]))
    b = np.concatenate(parts, axis=1)
    x1, y1, x2, y2 = (np.ascontiguousarray(v) for v in b)
    cls = _classes(rng, len(x1), codes, dtype)
    offsets = np.concatenate(([0], np.cumsum([p.shape[1] for p in parts]))).astype(np.int64)
    n_groups = len(parts)
    frame = np.cumsum(rng.integers(1, 3, n_groups)).astype(np.int64)  # gaps of 0 or 1 frame
    stream = np.zeros(n_groups, np.int64)
    args = (x1, y1, x2, y2, cls, offsets, frame, stream, d["iou"], max_gap)
    got, want = impl.associate(*args), reference.associate(*args)
    assert len(got) == len(want) == 8
    for a, w in zip(got, want):
        assert np.asarray(a).tolist() == np.asarray(w).tolist()


def test_best_build_is_restored():
    assert _boxes_cy.simd_level(-1) == _BEST in (0, 1, 2)


@pytest.mark.parametrize("codes", ["one", "two", "five"])
@pytest.mark.parametrize("mode", [0, 1])
def test_associate_large_frames_match_reference(impl, mode, codes):
    """Frames past every build's threshold for grouping boxes by x (48 boxes with blocks of 8,
    128 with blocks of 16), with moved, dropped and new objects: one class (grouped by x), two
    (by class with blocks of 16: about 115 a class; by x with blocks of 8), five (by class)."""
    rng = np.random.default_rng(11 + mode)
    parts = [_frame(rng, 230, mode, True)]
    for _ in range(2):
        parts.append(_moved(rng, parts[-1], mode))
    x1, y1, x2, y2 = (np.ascontiguousarray(v) for v in np.concatenate(parts, axis=1))
    assert min(p.shape[1] for p in parts) > 128
    cls = _classes(rng, len(x1), codes, np.int32)
    offsets = np.concatenate(([0], np.cumsum([p.shape[1] for p in parts]))).astype(np.int64)
    args = (x1, y1, x2, y2, cls, offsets, np.arange(3, dtype=np.int64), np.zeros(3, np.int64), 0.3, 1)
    got, want = impl.associate(*args), reference.associate(*args)
    for a, w in zip(got, want):
        assert np.asarray(a).tolist() == np.asarray(w).tolist()


def test_one_box_against_every_lane(impl):
    """A box linked to exactly one box of a frame of 100, at every position: each lane of each
    block (and the padding after the last) is read, and only the linked one is found."""
    rng = np.random.default_rng(3)
    for j in range(100):
        x1 = np.arange(100, dtype=np.float32) * 50  # disjoint boxes 40 wide, 10 apart
        y1 = np.zeros(100, np.float32)
        x1 = np.append(x1, x1[j] + 1).astype(np.float32)  # box 100 overlaps box j only
        y1 = np.append(y1, 0).astype(np.float32)
        x2, y2 = x1 + np.float32(40), y1 + np.float32(40)
        offsets = np.array([0, 101], np.int64)
        pos, ev, _, anchor = impl.multibox(x1, y1, x2, y2, np.empty(0, np.float32), np.empty(0, np.uint8),
                                           offsets, 0.5, 2)
        assert pos.tolist() == [j, 100] and anchor.tolist() == [j]
        # association: frame 2 holds the 100 boxes shuffled; each continues its own object
        perm = rng.permutation(100)
        ax1 = np.concatenate([x1[:100], x1[:100][perm]]).astype(np.float32)
        ay1 = np.zeros(200, np.float32)
        out = impl.associate(ax1, ay1, ax1 + np.float32(40), ay1 + np.float32(40), np.zeros(200, np.int64),
                             np.array([0, 100, 200], np.int64), np.array([0, 1], np.int64),
                             np.zeros(2, np.int64), 0.5, 0)
        assert out[0][100:].tolist() == perm.tolist()
