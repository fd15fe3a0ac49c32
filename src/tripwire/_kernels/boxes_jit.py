"""2D box kernels (Numba backend).

Siblings of ``kernels/_boxes_cy.pyx`` with the same names, argument order and results; called
by ``tripwire.boxes`` through ``tripwire._dispatch`` when ``backend="numba"``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .._config import NUMBA_OPTIONS
from ._jit_args import readonly_args
from .groups_jit import emit_groups, join

_JIT = dict(NUMBA_OPTIONS)


@njit(**_JIT)
def _multibox(x1, y1, x2, y2, score, score_valid, offsets, t, min_boxes):
    n = x1.shape[0]
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
                    join(parent, size, i, j)
        nv, ev = emit_groups(s, m, parent, size, min_boxes, score, score_valid, pos, evs, ev_sev,
                             anchors, nv, ev)
    events = evs[:nv].copy()
    return pos[:nv].copy(), events, ev_sev[:ev][events], anchors[:ev].copy()


@readonly_args
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


@readonly_args
def valid(x1, y1, x2, y2, coord_valid, score, score_valid, width, height):
    return _valid(x1, y1, x2, y2, coord_valid, score, score_valid, np.float64(width), np.float64(height))


@njit(**_JIT)
def _keep_state(stream, obj, pos, frame, lo, hi, st_stream, st_obj, st_pos, st_frame, n_st):
    """Append objects ``lo:hi`` of ``stream`` to the state handed back; returns its new size
    (the sibling of the Cython ``_keep_state``/``_keep_seeds``)."""
    for a in range(lo, hi):
        st_stream[n_st] = stream
        st_obj[n_st] = obj[a]
        st_pos[n_st] = pos[a]
        st_frame[n_st] = frame[a]
        n_st += 1
    return n_st


@njit(**_JIT)
def _associate(x1, y1, x2, y2, cls, offsets, group_frame, group_stream, t, max_gap, seed_offsets,
               seed_pos, seed_obj, seed_frame, next_obj):
    n = x1.shape[0]
    obj = np.full(n, -1, np.int64)
    for q in range(seed_pos.shape[0]):
        obj[seed_pos[q]] = seed_obj[q]
    n_seeded = max(seed_offsets.shape[0] - 1, 0)
    gap_start = np.empty(16, np.int64)
    gap_end = np.empty(16, np.int64)
    n_gaps = 0
    # live objects (oldest first): id, last position, last frame
    act_obj = np.empty(n, np.int64)
    act_pos = np.empty(n, np.int64)
    act_frame = np.empty(n, np.int64)
    # the state handed back: every stream's live objects after its last frame here
    st_stream = np.empty(n, np.int64)
    st_obj = np.empty(n, np.int64)
    st_pos = np.empty(n, np.int64)
    st_frame = np.empty(n, np.int64)
    n_st = 0
    n_act = 0
    n_obj = next_obj
    next_seed = 0
    stream = -1
    c_iou = np.empty(16, np.float32)
    c_frame = np.empty(16, np.int64)
    c_a = np.empty(16, np.int64)
    c_j = np.empty(16, np.int64)
    for g in range(offsets.shape[0] - 1):
        s = offsets[g]
        e = offsets[g + 1]
        f = group_frame[g]
        if group_stream[g] != stream:
            if stream >= 0:
                n_st = _keep_state(stream, act_obj, act_pos, act_frame, 0, n_act, st_stream, st_obj, st_pos,
                                   st_frame, n_st)
            while next_seed < min(group_stream[g], n_seeded):  # seeds, no frames here
                n_st = _keep_state(next_seed, seed_obj, seed_pos, seed_frame, seed_offsets[next_seed],
                                   seed_offsets[next_seed + 1], st_stream, st_obj, st_pos, st_frame, n_st)
                next_seed += 1
            stream = group_stream[g]
            n_act = 0
            if stream < n_seeded:  # resume: the stream's active objects, oldest first
                for q in range(seed_offsets[stream], seed_offsets[stream + 1]):
                    act_obj[n_act] = seed_obj[q]
                    act_pos[n_act] = seed_pos[q]
                    act_frame[n_act] = seed_frame[q]
                    n_act += 1
                next_seed = stream + 1
        keep = 0
        for a in range(n_act):
            if f - act_frame[a] - 1 <= max_gap:
                act_obj[keep] = act_obj[a]
                act_pos[keep] = act_pos[a]
                act_frame[keep] = act_frame[a]
                keep += 1
        n_act = keep
        nc = 0
        for a in range(n_act):
            p = act_pos[a]
            area_p = np.float32((x2[p] - x1[p]) * (y2[p] - y1[p]))
            for j in range(s, e):
                if cls[j] != cls[p]:
                    continue
                ix = np.float32(min(x2[p], x2[j]) - max(x1[p], x1[j]))
                if not ix > 0:
                    continue
                iy = np.float32(min(y2[p], y2[j]) - max(y1[p], y1[j]))
                if not iy > 0:
                    continue
                inter = np.float32(ix * iy)
                area_j = np.float32((x2[j] - x1[j]) * (y2[j] - y1[j]))
                uni = np.float32(np.float32(area_p + area_j) - inter)
                if inter >= np.float32(t * uni):
                    if nc == c_iou.shape[0]:
                        c_iou = np.concatenate((c_iou, np.empty(nc, np.float32)))
                        c_frame = np.concatenate((c_frame, np.empty(nc, np.int64)))
                        c_a = np.concatenate((c_a, np.empty(nc, np.int64)))
                        c_j = np.concatenate((c_j, np.empty(nc, np.int64)))
                    c_iou[nc] = np.float32(inter / uni)
                    c_frame[nc] = act_frame[a]
                    c_a[nc] = a
                    c_j[nc] = j
                    nc += 1
        # greedy order: IoU desc, last frame desc, slot asc, position asc (candidates were
        # listed by slot then position, so a stable sort on (-iou, -frame) keeps the rest)
        order = np.argsort(-c_frame[:nc], kind="mergesort")
        order = order[np.argsort(-c_iou[:nc][order], kind="mergesort")]
        act_used = np.zeros(n_act, np.bool_)
        box_used = np.zeros(e - s, np.bool_)
        for c in order:
            a = c_a[c]
            j = c_j[c]
            if act_used[a] or box_used[j - s]:
                continue
            act_used[a] = True
            box_used[j - s] = True
            obj[j] = act_obj[a]
            if f - act_frame[a] > 1:
                if n_gaps == gap_start.shape[0]:
                    gap_start = np.concatenate((gap_start, np.empty(n_gaps, np.int64)))
                    gap_end = np.concatenate((gap_end, np.empty(n_gaps, np.int64)))
                gap_start[n_gaps] = act_pos[a]
                gap_end[n_gaps] = j
                n_gaps += 1
            act_pos[a] = j
            act_frame[a] = f
        for j in range(s, e):
            if box_used[j - s] or not (np.isfinite(x1[j]) and np.isfinite(y1[j])
                                       and np.isfinite(x2[j]) and np.isfinite(y2[j])):
                continue
            obj[j] = n_obj
            act_obj[n_act] = n_obj
            act_pos[n_act] = j
            act_frame[n_act] = f
            n_act += 1
            n_obj += 1
    if stream >= 0:
        n_st = _keep_state(stream, act_obj, act_pos, act_frame, 0, n_act, st_stream, st_obj, st_pos, st_frame, n_st)
    while next_seed < n_seeded:
        n_st = _keep_state(next_seed, seed_obj, seed_pos, seed_frame, seed_offsets[next_seed],
                           seed_offsets[next_seed + 1], st_stream, st_obj, st_pos, st_frame, n_st)
        next_seed += 1
    order = np.argsort(gap_end[:n_gaps], kind="mergesort")
    return (obj, gap_start[:n_gaps][order], gap_end[:n_gaps][order], st_stream[:n_st].copy(),
            st_obj[:n_st].copy(), st_pos[:n_st].copy(), st_frame[:n_st].copy(), n_obj)


_NO_I64 = np.empty(0, np.int64)


@readonly_args
def associate(x1, y1, x2, y2, cls, offsets, group_frame, group_stream, iou, max_gap, seed_offsets=None,
              seed_pos=None, seed_obj=None, seed_frame=None, next_obj=0):
    n = len(x1)
    if len(y1) != n or len(x2) != n or len(y2) != n or len(cls) != n:
        raise ValueError("box columns differ in length")
    if len(group_frame) != len(offsets) - 1 or len(group_stream) != len(offsets) - 1:
        raise ValueError("group_frame and group_stream need one value per frame")
    seeds = [_NO_I64 if v is None else np.ascontiguousarray(v, np.int64)
             for v in (seed_offsets, seed_pos, seed_obj, seed_frame)]
    so, sp, sob, sf = seeds
    if len(sob) != len(sp) or len(sf) != len(sp):
        raise ValueError("seed_pos, seed_obj and seed_frame differ in length")
    if len(so) == 0 and len(sp):
        raise ValueError("seeds need seed_offsets")
    if len(so) and (so[0] != 0 or so[-1] != len(sp) or (np.diff(so) < 0).any()):
        raise ValueError("seed_offsets must rise from 0 to len(seed_pos)")
    if len(sp) and (sp.min() < (offsets[-1] if len(offsets) else 0) or sp.max() >= n):
        raise ValueError("seed positions must lie after the grouped positions, inside the box arrays")
    obj, gs, ge, st_stream, st_obj, st_pos, st_frame, n_obj = _associate(
        x1, y1, x2, y2, cls, offsets, group_frame, group_stream, np.float32(iou), np.int64(max_gap),
        so, sp, sob, sf, np.int64(next_obj))
    return obj, gs, ge, st_stream, st_obj, st_pos, st_frame, int(n_obj)


@njit(**_JIT)
def _gaps(obj, obj_offset, n_obj, valid, frame, max_gap):
    n = obj.shape[0]
    has_valid = valid.shape[0] > 0
    last_pos = np.full(max(n_obj, 0), -1, np.int64)
    starts = np.empty(16, np.int64)
    ends = np.empty(16, np.int64)
    m = 0
    for i in range(n):
        if has_valid and valid[i] == 0:
            continue
        o = obj[i] - obj_offset
        p = last_pos[o]
        if p >= 0:
            g = frame[i] - frame[p] - 1
            if g < -1:
                return starts[:m].copy(), ends[:m].copy(), False
            if g >= 1 and g <= max_gap:
                if m == starts.shape[0]:
                    starts = np.concatenate((starts, np.empty(m, np.int64)))
                    ends = np.concatenate((ends, np.empty(m, np.int64)))
                starts[m] = p
                ends[m] = i
                m += 1
        last_pos[o] = i
    return starts[:m].copy(), ends[:m].copy(), True


@readonly_args
def gaps(obj, obj_offset, n_obj, valid, frame, max_gap):
    if len(frame) != len(obj):
        raise ValueError("object and frame columns differ in length")
    return _gaps(obj, np.int64(obj_offset), np.int64(n_obj), valid, frame, np.int64(max_gap))


@njit(**_JIT)
def _lifetimes(obj, obj_offset, n_obj, valid, frame, frame_valid, stream, stream_offset, n_streams,
               score, score_valid, min_frames):
    n = obj.shape[0]
    has_v = valid.shape[0] > 0
    has_fv = frame_valid.shape[0] > 0
    has_stream = stream.shape[0] > 0
    has_score = score.shape[0] > 0
    has_sv = score_valid.shape[0] > 0
    ns = max(n_streams, 1) if has_stream else 1
    first = np.zeros(n_obj, np.int64)
    last = np.zeros(n_obj, np.int64)
    anchor = np.full(n_obj, -1, np.int64)
    obj_stream = np.zeros(n_obj, np.int64)
    ssum = np.zeros(n_obj, np.float64)
    scount = np.zeros(n_obj, np.int64)
    s_first = np.zeros(ns, np.int64)
    s_last = np.zeros(ns, np.int64)
    s_seen = np.zeros(ns, np.bool_)
    for i in range(n):
        if has_fv and frame_valid[i] == 0:
            continue
        fr = frame[i]
        st = stream[i] - stream_offset if has_stream else 0
        if not s_seen[st]:
            s_seen[st] = True
            s_first[st] = fr
            s_last[st] = fr
        s_first[st] = min(s_first[st], fr)
        s_last[st] = max(s_last[st], fr)
        if has_v and valid[i] == 0:
            continue
        o = obj[i] - obj_offset
        if anchor[o] < 0:
            anchor[o] = i
            first[o] = fr
            last[o] = fr
            obj_stream[o] = st
        first[o] = min(first[o], fr)
        last[o] = max(last[o], fr)
        if has_score and (not has_sv or score_valid[i]):
            sc = score[i]
            if sc == sc:
                ssum[o] += sc
                scount[o] += 1
    event = np.full(n_obj, -1, np.int64)
    anchors = np.empty(n_obj, np.int64)
    sev = np.empty(n_obj, np.float32)
    ev = 0
    for o in range(n_obj):
        if anchor[o] < 0 or last[o] - first[o] + 1 >= min_frames:
            continue
        st = obj_stream[o]
        if first[o] == s_first[st] or last[o] == s_last[st]:
            continue
        event[o] = ev
        anchors[ev] = anchor[o]
        if scount[o] == 0:
            sev[ev] = 1.0
        else:
            mean = np.float32(ssum[o] / scount[o])
            sev[ev] = mean if mean > np.float32(1e-6) else np.float32(1e-6)
        ev += 1
    pos = np.empty(0, np.int64)
    evs = np.empty(0, np.int64)
    if ev:
        pos = np.empty(n, np.int64)
        evs = np.empty(n, np.int64)
        m = 0
        for i in range(n):
            if (has_fv and frame_valid[i] == 0) or (has_v and valid[i] == 0):
                continue
            e_ = event[obj[i] - obj_offset]
            if e_ >= 0:
                pos[m] = i
                evs[m] = e_
                m += 1
        pos = pos[:m].copy()
        evs = evs[:m].copy()
    return pos, evs, sev[:ev][evs], anchors[:ev].copy()


@readonly_args
def lifetimes(obj, obj_offset, n_obj, valid, frame, frame_valid, stream, stream_offset, n_streams,
              score, score_valid, min_frames):
    n = len(obj)
    if len(frame) != n or (len(stream) and len(stream) != n) or (len(score) and len(score) != n):
        raise ValueError("object, frame, stream and score columns differ in length")
    return _lifetimes(obj, np.int64(obj_offset), np.int64(n_obj), valid, frame, frame_valid, stream,
                      np.int64(stream_offset), np.int64(n_streams), score, score_valid, np.int64(min_frames))
