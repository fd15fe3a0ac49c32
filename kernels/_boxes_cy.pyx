# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: language = c++
"""2D box kernels (Cython backend).

Called by ``tripwire.boxes`` through ``tripwire._dispatch``; siblings with the same names and
argument order live in ``tripwire/_kernels/boxes_jit.py`` (Numba) and ``tests/reference.py``
(plain loops). One call per batch, without the GIL.

Boxes arrive in frame order as float32 SoA columns (``x1 y1 x2 y2``) with CSR ``offsets``:
frame ``f`` is positions ``offsets[f]:offsets[f+1]``. Kernels return positions in that order;
the caller maps them back to input rows.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t
from libc.math cimport isfinite

from libcpp.vector cimport vector

from _common cimport is_valid, to_numpy, valid_ptr

cnp.import_array()








cdef inline int64_t _find(int64_t* parent, int64_t i) noexcept nogil:
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


def multibox(const float[::1] x1, const float[::1] y1, const float[::1] x2, const float[::1] y2,
             const float[::1] score, const uint8_t[::1] score_valid, const int64_t[::1] offsets,
             double iou, int64_t min_boxes):
    """Connected groups of at least ``min_boxes`` overlapping boxes within one frame.

    Two boxes are linked when IoU >= ``iou``, tested as ``inter >= iou * union`` (no division);
    boxes with a non-finite coordinate link to nothing. Returns ``(pos, event, severity,
    anchor)``: positions of every box of a group, one event per group, severity the group's
    highest non-null, non-NaN score (1 when it has none; at least 1e-6), anchor the group's first
    position. An empty ``score`` means no scores.
    """
    cdef Py_ssize_t n = x1.shape[0], n_frames = offsets.shape[0] - 1, f, i, j
    cdef int64_t s, e, m, r, a, b, ev = 0
    cdef float t = <float>iou, ix, iy, inter, uni, best
    cdef bint has_score = score.shape[0] > 0
    cdef const uint8_t* sv = valid_ptr(score_valid)
    cdef vector[int64_t] parent, size
    cdef vector[float] area
    cdef vector[uint8_t] ok, grp_has
    cdef vector[int64_t] v_pos, v_ev, anchors, grp_event
    cdef vector[float] ev_sev, grp_best
    if y1.shape[0] != n or x2.shape[0] != n or y2.shape[0] != n or (has_score and score.shape[0] != n):
        raise ValueError("box columns differ in length")
    with nogil:
        for f in range(n_frames):
            s = offsets[f]
            e = offsets[f + 1]
            m = e - s
            if m < min_boxes or m < 2:
                continue
            parent.resize(m)
            size.resize(m)
            area.resize(m)
            ok.resize(m)
            for i in range(m):
                parent[i] = i
                size[i] = 1
                ok[i] = isfinite(x1[s + i]) and isfinite(y1[s + i]) and isfinite(x2[s + i]) and isfinite(y2[s + i])
                area[i] = (x2[s + i] - x1[s + i]) * (y2[s + i] - y1[s + i])
            for i in range(m):
                if not ok[i]:
                    continue
                for j in range(i + 1, m):
                    if not ok[j]:
                        continue
                    ix = min(x2[s + i], x2[s + j]) - max(x1[s + i], x1[s + j])
                    if ix <= 0:
                        continue
                    iy = min(y2[s + i], y2[s + j]) - max(y1[s + i], y1[s + j])
                    if iy <= 0:
                        continue
                    inter = ix * iy
                    uni = area[i] + area[j] - inter
                    if inter >= t * uni:
                        a = _find(&parent[0], i)
                        b = _find(&parent[0], j)
                        if a != b:
                            if size[a] < size[b]:
                                a, b = b, a
                            parent[b] = a
                            size[a] += size[b]
            # groups big enough: events numbered in order of their first box
            grp_best.assign(m, -1.0)
            grp_has.assign(m, 0)  # a flag, not a sentinel score: negative scores are scores
            grp_event.assign(m, -1)
            for i in range(m):
                r = _find(&parent[0], i)
                if size[r] >= min_boxes and has_score and is_valid(sv, s + i) \
                        and score[s + i] == score[s + i] and (not grp_has[r] or score[s + i] > grp_best[r]):
                    grp_best[r] = score[s + i]
                    grp_has[r] = 1
            for i in range(m):
                r = _find(&parent[0], i)
                if size[r] < min_boxes:
                    continue
                if grp_event[r] < 0:
                    grp_event[r] = ev
                    anchors.push_back(s + i)
                    best = grp_best[r]
                    ev_sev.push_back(1.0 if not grp_has[r] else (best if best > 1e-6 else 1e-6))
                    ev += 1
                v_pos.push_back(s + i)
                v_ev.push_back(grp_event[r])
    events = to_numpy[int64_t](v_ev)
    return to_numpy[int64_t](v_pos), events, to_numpy[float](ev_sev)[events], to_numpy[int64_t](anchors)


# reasons (bits), in README order
cdef enum:
    BAD_NONFINITE = 1
    BAD_X_ORDER = 2
    BAD_Y_ORDER = 4
    BAD_OUTSIDE = 8
    BAD_SCORE = 16


def valid(const float[::1] x1, const float[::1] y1, const float[::1] x2, const float[::1] y2,
          const uint8_t[::1] coord_valid, const float[::1] score, const uint8_t[::1] score_valid,
          double width, double height):
    """Rows with a broken box, and why (bitmask): a null or non-finite coordinate (1),
    x2 <= x1 (2), y2 <= y1 (4), outside ``[0, width] x [0, height]`` (8; a bound <= 0 is not
    checked), a score outside [0, 1] or NaN (16; a null score is fine)."""
    cdef Py_ssize_t n = x1.shape[0], i
    cdef const uint8_t* cv = valid_ptr(coord_valid)
    cdef const uint8_t* sv = valid_ptr(score_valid)
    cdef bint has_score = score.shape[0] > 0
    cdef uint8_t bad
    cdef float a, b, c, d, sc
    cdef vector[int64_t] rows
    cdef vector[int64_t] reasons
    with nogil:
        for i in range(n):
            bad = 0
            a = x1[i]
            b = y1[i]
            c = x2[i]
            d = y2[i]
            if not is_valid(cv, i) or not (isfinite(a) and isfinite(b) and isfinite(c) and isfinite(d)):
                bad = BAD_NONFINITE
            else:
                if c <= a:
                    bad |= BAD_X_ORDER
                if d <= b:
                    bad |= BAD_Y_ORDER
                if (width > 0 and (a < 0 or c > width)) or (height > 0 and (b < 0 or d > height)):
                    bad |= BAD_OUTSIDE
            if has_score and is_valid(sv, i):
                sc = score[i]
                if not (sc >= 0 and sc <= 1):
                    bad |= BAD_SCORE
            if bad:
                rows.push_back(i)
                reasons.push_back(bad)
    return to_numpy[int64_t](rows), to_numpy[int64_t](reasons).astype(np.uint8)
