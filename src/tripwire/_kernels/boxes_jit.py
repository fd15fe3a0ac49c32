"""2D box kernels (Numba backend).

Siblings of ``kernels/_boxes_cy.pyx`` with the same names, argument order and results; called
by ``tripwire.boxes`` through ``tripwire._dispatch`` when ``backend="numba"``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._config import NUMBA_OPTIONS

_JIT = dict(NUMBA_OPTIONS)


@njit(**_JIT)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(**_JIT)
def _multibox(x1, y1, x2, y2, score, score_valid, offsets, t, min_boxes):
    n = x1.shape[0]
    has_score = score.shape[0] > 0
    has_sv = score_valid.shape[0] > 0
    pos = np.empty(n, np.int64)
    evs = np.empty(n, np.int64)
    ev_sev = np.empty(n, np.float32)
    anchors = np.empty(n, np.int64)
    nv = 0
    ev = 0
    for f in range(offsets.shape[0] - 1):
        s = offsets[f]
        m = offsets[f + 1] - s
        if m < min_boxes or m < 2:
            continue
        parent = np.arange(m)
        size = np.ones(m, np.int64)
        ok = np.empty(m, np.bool_)
        area = np.empty(m, np.float32)
        for i in range(m):
            ok[i] = (np.isfinite(x1[s + i]) and np.isfinite(y1[s + i]) and np.isfinite(x2[s + i])
                     and np.isfinite(y2[s + i]))
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
                inter = np.float32(ix * iy)
                uni = np.float32(area[i] + area[j] - inter)
                if inter >= np.float32(t) * uni:
                    a = _find(parent, i)
                    b = _find(parent, j)
                    if a != b:
                        if size[a] < size[b]:
                            a, b = b, a
                        parent[b] = a
                        size[a] += size[b]
        best = np.full(m, np.float32(-1.0))
        has = np.zeros(m, np.bool_)  # a flag, not a sentinel score: negative scores are scores
        event = np.full(m, -1, np.int64)
        for i in range(m):
            r = _find(parent, i)
            if size[r] >= min_boxes and has_score and (not has_sv or score_valid[s + i]) \
                    and not np.isnan(score[s + i]) and (not has[r] or score[s + i] > best[r]):
                best[r] = score[s + i]
                has[r] = True
        for i in range(m):
            r = _find(parent, i)
            if size[r] < min_boxes:
                continue
            if event[r] < 0:
                event[r] = ev
                anchors[ev] = s + i
                b_ = best[r]
                ev_sev[ev] = 1.0 if not has[r] else (b_ if b_ > 1e-6 else np.float32(1e-6))
                ev += 1
            pos[nv] = s + i
            evs[nv] = event[r]
            nv += 1
    events = evs[:nv].copy()
    return pos[:nv].copy(), events, ev_sev[:ev][events], anchors[:ev].copy()


def multibox(x1, y1, x2, y2, score, score_valid, offsets, iou, min_boxes):
    n = len(x1)
    if len(y1) != n or len(x2) != n or len(y2) != n or (len(score) and len(score) != n):
        raise ValueError("box columns differ in length")
    return _multibox(x1, y1, x2, y2, score, score_valid, offsets, np.float32(iou), np.int64(min_boxes))


@njit(**_JIT)
def _valid(x1, y1, x2, y2, coord_valid, score, score_valid, width, height):
    n = x1.shape[0]
    rows = np.empty(n, np.int64)
    reasons = np.empty(n, np.uint8)
    has_cv = coord_valid.shape[0] > 0
    has_score = score.shape[0] > 0
    has_sv = score_valid.shape[0] > 0
    m = 0
    for i in range(n):
        bad = 0
        a, b, c, d = x1[i], y1[i], x2[i], y2[i]
        if (has_cv and coord_valid[i] == 0) or not (np.isfinite(a) and np.isfinite(b)
                                                    and np.isfinite(c) and np.isfinite(d)):
            bad = 1
        else:
            if c <= a:
                bad |= 2
            if d <= b:
                bad |= 4
            if (width > 0 and (a < 0 or c > width)) or (height > 0 and (b < 0 or d > height)):
                bad |= 8
        if has_score and (not has_sv or score_valid[i]):
            sc = score[i]
            if not (sc >= 0 and sc <= 1):
                bad |= 16
        if bad:
            rows[m] = i
            reasons[m] = bad
            m += 1
    return rows[:m].copy(), reasons[:m].copy()


def valid(x1, y1, x2, y2, coord_valid, score, score_valid, width, height):
    return _valid(x1, y1, x2, y2, coord_valid, score, score_valid, np.float64(width), np.float64(height))
