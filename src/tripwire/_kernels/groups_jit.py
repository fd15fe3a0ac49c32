"""Overlap groups (Numba backend): union-find over one frame's boxes and one event per group,
shared by ``boxes_jit.multibox`` and ``points_jit.bev_multibox`` (siblings of the inline
helpers in ``kernels/_common.pxd``)."""
from __future__ import annotations

import numpy as np
from numba import njit

from .._config import NUMBA_OPTIONS

_JIT = dict(NUMBA_OPTIONS)


@njit(**_JIT)
def find_root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


@njit(**_JIT)
def join(parent, size, i, j):
    """Union by size of the groups of ``i`` and ``j``."""
    a = find_root(parent, i)
    b = find_root(parent, j)
    if a != b:
        if size[a] < size[b]:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]


@njit(**_JIT)
def emit_groups(s, m, parent, size, min_boxes, score, score_valid, pos, evs, ev_sev, anchors, nv, ev):
    """One event per group of at least ``min_boxes`` of the frame at rows ``s .. s + m``,
    numbered in order of its first box; severity its highest non-null, non-NaN score (1 with
    none, at least 1e-6). Appends at ``nv`` / ``ev``; returns the new counts."""
    has_score = score.shape[0] > 0
    has_sv = score_valid.shape[0] > 0
    best = np.full(m, np.float32(-1.0))
    has = np.zeros(m, np.bool_)  # a flag, not a sentinel score: negative scores are scores
    event = np.full(m, -1, np.int64)
    for i in range(m):
        r = find_root(parent, i)
        if size[r] >= min_boxes and has_score and (not has_sv or score_valid[s + i]) \
                and not np.isnan(score[s + i]) and (not has[r] or score[s + i] > best[r]):
            best[r] = score[s + i]
            has[r] = True
    for i in range(m):
        r = find_root(parent, i)
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
    return nv, ev
