"""2D box kernels (CuPy backend).

Siblings of ``kernels/_boxes_cy.pyx`` with the same names, argument order and results; called
by ``tripwire.boxes`` (and ``tripwire._streaming``) through ``tripwire._dispatch`` when
``backend="cupy"``. Host NumPy arrays in and out; float32 box arithmetic in the Cython
kernels' order (compiled without fused multiply-add: see ``tripwire._kernels._gpu``).

What runs where:

- ``multibox``: one GPU thread per box tests it against the later boxes of its frame; links
  are joined into components on the device; events are numbered on the host (O(boxes)).
- ``valid``: one thread per row, then a compaction of the flagged rows.
- ``gaps``: the per-object scan becomes a stable sort of the valid rows by object on the
  device and a comparison of neighbours: the same pairs, and on out-of-order input the same
  partial pairs the Cython scan returns before it stops.
- ``lifetimes``: per-object and per-stream extents by atomic min/max on the device; each
  flagged object's score mean is summed on the host in row order (the Cython kernel's order,
  so the mean rounds the same).
- ``pair_codes``: element-wise on the device.
- ``associate`` runs the **Cython kernel** (see its docstring): greedy tracking is sequential
  from frame to frame within a stream.
"""
from __future__ import annotations

import numpy as np

from . import _boxes_cy
from ._gpu import check, connected_labels, cp, dev, emit_groups, launch, link_ends, overlap_links, static_module

_F32, _I64, _U8 = np.float32, np.int64, np.uint8
_KEYS = (np.int32, np.int64)
_I64_MAX = np.iinfo(np.int64).max
_I64_MIN = np.iinfo(np.int64).min

_SRC = r"""
__device__ __forceinline__ float mn(float a, float b) { return (b < a) ? b : a; }  // Cython's min
__device__ __forceinline__ float mx(float a, float b) { return (b > a) ? b : a; }  // Cython's max

// links of box i to the later boxes of its frame (j < end[i]) with IoU >= t (inter >= t * union,
// float32): fill == 0 counts them, fill == 1 writes them from start[i] on
extern "C" __global__ void box_links(
        const float* x1, const float* y1, const float* x2, const float* y2, const long long* end,
        float t, long long n, int fill, long long* count, const long long* start, long long* la,
        long long* lb) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    long long nc = 0, at = fill ? start[i] : 0;
    if (isfinite(x1[i]) && isfinite(y1[i]) && isfinite(x2[i]) && isfinite(y2[i])) {
        float area_i = (x2[i] - x1[i]) * (y2[i] - y1[i]);
        for (long long j = i + 1; j < end[i]; ++j) {
            if (!(isfinite(x1[j]) && isfinite(y1[j]) && isfinite(x2[j]) && isfinite(y2[j]))) continue;
            float ix = mn(x2[i], x2[j]) - mx(x1[i], x1[j]);
            if (ix <= 0) continue;
            float iy = mn(y2[i], y2[j]) - mx(y1[i], y1[j]);
            if (iy <= 0) continue;
            float inter = ix * iy;
            float area_j = (x2[j] - x1[j]) * (y2[j] - y1[j]);
            float uni = area_i + area_j - inter;
            if (inter >= t * uni) {
                if (fill) { la[at + nc] = i; lb[at + nc] = j; }
                nc += 1;
            }
        }
    }
    if (!fill) count[i] = nc;
}

extern "C" __global__ void valid_rows(
        const float* x1, const float* y1, const float* x2, const float* y2, const unsigned char* cv,
        int has_cv, const float* score, int has_score, const unsigned char* sv, int has_sv,
        double width, double height, long long n, unsigned char* bad) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float zero = 0, one = 1;
    float a = x1[i], b = y1[i], c = x2[i], d = y2[i];
    int has_w = width > 0, has_h = height > 0;
    int fin = ((a - a) == zero) & ((b - b) == zero) & ((c - c) == zero) & ((d - d) == zero);
    int r = ((((c <= a) * 2) | ((d <= b) * 4)
              | (((has_w & ((a < zero) | (c > width))) | (has_h & ((b < zero) | (d > height)))) * 8)) * fin)
            | ((1 - fin) * 1);
    if (has_cv && cv[i] == 0) r = 1;
    if (has_score) {
        float sc = score[i];
        r |= (1 - ((sc >= zero) & (sc <= one))) * 16;
        if (has_sv && sv[i] == 0) r &= ~16;  // a null score is fine
    }
    bad[i] = (unsigned char)r;
}

// lifetimes, first pass: stream extents over rows with a valid frame; object extents, first
// and last row and row count over rows whose object is valid too
extern "C" __global__ void life_extents(
        const long long* obj, const unsigned char* vp, int has_v, const long long* frame,
        const unsigned char* fvp, int has_fv, const long long* stream, int has_stream, long long n,
        long long* s_first, long long* s_last, long long* o_first, long long* o_last,
        long long* o_anchor, long long* o_last_row, long long* o_count) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    if (has_fv && fvp[i] == 0) return;
    long long fr = frame[i], st = has_stream ? stream[i] : 0;
    atomicMin(&s_first[st], fr);
    atomicMax(&s_last[st], fr);
    if (has_v && vp[i] == 0) return;
    long long o = obj[i];
    atomicMin(&o_first[o], fr);
    atomicMax(&o_last[o], fr);
    atomicMin(&o_anchor[o], i);
    atomicMax(&o_last_row[o], i);
    atomicAdd((unsigned long long*)&o_count[o], 1ULL);
}
"""

def _mod():
    return static_module(_SRC)


def multibox(x1, y1, x2, y2, score, score_valid, offsets, iou, min_boxes):
    x1, y1, x2, y2 = (check(a, _F32, "boxes") for a in (x1, y1, x2, y2))
    score, score_valid = check(score, _F32, "score"), check(score_valid, _U8, "score validity")
    offsets = check(offsets, _I64, "offsets")
    n = len(x1)
    if len(y1) != n or len(x2) != n or len(y2) != n or (len(score) and len(score) != n):
        raise ValueError("box columns differ in length")
    e = np.empty(0, np.int64)
    if n == 0 or len(offsets) < 2:
        return e, e.copy(), np.empty(0, np.float32), e.copy()
    la, lb = overlap_links(_mod(), "box_links", n, tuple(dev(a) for a in (x1, y1, x2, y2)),
                           link_ends(offsets, n, min_boxes), np.float32(iou))
    return emit_groups(connected_labels(n, la, lb), offsets, int(min_boxes), score, score_valid)


def valid(x1, y1, x2, y2, coord_valid, score, score_valid, width, height):
    x1, y1, x2, y2 = (check(a, _F32, "boxes") for a in (x1, y1, x2, y2))
    coord_valid, score_valid = check(coord_valid, _U8, "validity"), check(score_valid, _U8, "validity")
    score = check(score, _F32, "score")
    n = len(x1)
    if len(y1) != n or len(x2) != n or len(y2) != n or (len(score) and len(score) != n):
        raise ValueError("box columns differ in length")
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.uint8)
    bad = cp.empty(n, cp.uint8)
    launch(_mod(), "valid_rows", n, *(dev(a) for a in (x1, y1, x2, y2)), dev(coord_valid),
           np.int32(len(coord_valid) > 0), dev(score), np.int32(len(score) > 0), dev(score_valid),
           np.int32(len(score_valid) > 0), np.float64(width), np.float64(height), np.int64(n), bad)
    rows = cp.flatnonzero(bad)
    return cp.asnumpy(rows).astype(np.int64), cp.asnumpy(bad[rows])


def associate(x1, y1, x2, y2, cls, offsets, group_frame, group_stream, iou, max_gap, seed_offsets=None,
              seed_pos=None, seed_obj=None, seed_frame=None, next_obj=0):
    """The Cython kernel, called on purpose: greedy IoU tracking is sequential from frame to
    frame within a stream (frame ``f``'s objects are those matched at ``f - 1``), and batches
    hold few streams, so a GPU version would run a handful of GPU threads one frame after
    another: slower than one CPU core, not faster. The data stays on the host."""
    return _boxes_cy.associate(x1, y1, x2, y2, cls, offsets, group_frame, group_stream, iou, max_gap,
                               seed_offsets, seed_pos, seed_obj, seed_frame, next_obj)


def gaps(obj, obj_offset, n_obj, valid, frame, max_gap):
    obj, valid, frame = check(obj, _KEYS, "object codes"), check(valid, _U8, "validity"), check(frame, _I64, "frame")
    n = len(obj)
    if len(frame) != n:
        raise ValueError("object and frame columns differ in length")
    e = np.empty(0, np.int64)
    if n == 0:
        return e, e.copy(), True
    d_obj = dev(obj).astype(cp.int64)
    rows = cp.flatnonzero(dev(valid)) if len(valid) else cp.arange(n, dtype=cp.int64)
    if len(rows) < 2:
        return e, e.copy(), True
    # each object's valid rows in array order (argsort is stable): neighbours are (last, next)
    by_obj = rows[cp.argsort(d_obj[rows])]
    o = d_obj[by_obj]
    same = o[1:] == o[:-1]
    p = by_obj[:-1][same]
    i = by_obj[1:][same]
    d_frame = dev(frame)
    g = d_frame[i] - d_frame[p] - 1
    back = g < -1
    in_order = not bool(back.any())
    keep = (g >= 1) & (g <= max_gap)
    if not in_order:  # the Cython scan stops at the first row whose object goes back in time
        keep &= i < i[back].min()
    p, i = p[keep], i[keep]
    order = cp.argsort(i)  # the scan emits each pair at its end row
    return cp.asnumpy(p[order]).astype(np.int64), cp.asnumpy(i[order]).astype(np.int64), in_order


def lifetimes(obj, obj_offset, n_obj, valid, frame, frame_valid, stream, stream_offset, n_streams, score,
              score_valid, min_frames):
    obj, stream = check(obj, _KEYS, "object codes"), check(stream, _KEYS, "stream codes")
    valid, frame_valid = check(valid, _U8, "validity"), check(frame_valid, _U8, "validity")
    frame, score, score_valid = check(frame, _I64, "frame"), check(score, _F32, "score"), check(score_valid, _U8)
    n = len(obj)
    has_stream, has_score = len(stream) > 0, len(score) > 0
    if len(frame) != n or (has_stream and len(stream) != n) or (has_score and len(score) != n):
        raise ValueError("object, frame, stream and score columns differ in length")
    ns = max(n_streams, 1) if has_stream else 1
    n_obj = max(int(n_obj), 0)
    e = np.empty(0, np.int64)
    if n == 0 or n_obj == 0:
        return e, e.copy(), np.empty(0, np.float32), e.copy()
    d_obj = dev(obj).astype(cp.int64) - np.int64(obj_offset)
    d_stream = dev(stream).astype(cp.int64) - np.int64(stream_offset) if has_stream else cp.zeros(1, cp.int64)
    d_frame = dev(frame)
    s_first = cp.full(ns, _I64_MAX, cp.int64)
    s_last = cp.full(ns, _I64_MIN, cp.int64)
    o_first = cp.full(n_obj, _I64_MAX, cp.int64)
    o_last = cp.full(n_obj, _I64_MIN, cp.int64)
    o_anchor = cp.full(n_obj, _I64_MAX, cp.int64)
    o_last_row = cp.full(n_obj, -1, cp.int64)
    o_count = cp.zeros(n_obj, cp.int64)
    d_valid, d_fvalid = dev(valid), dev(frame_valid)
    launch(_mod(), "life_extents", n, d_obj, d_valid, np.int32(len(valid) > 0), d_frame, d_fvalid,
           np.int32(len(frame_valid) > 0), d_stream, np.int32(has_stream), np.int64(n), s_first, s_last, o_first,
           o_last, o_anchor, o_last_row, o_count)
    seen = o_count > 0
    anchor = cp.where(seen, o_anchor, 0)
    o_stream = d_stream[anchor] if has_stream else cp.zeros(n_obj, cp.int64)
    flagged = seen & (o_last - o_first + 1 < min_frames) & (o_first != s_first[o_stream]) \
        & (o_last != s_last[o_stream])
    flagged_ids = cp.flatnonzero(flagged)
    n_ev = int(flagged_ids.shape[0])
    if n_ev == 0:
        return e, e.copy(), np.empty(0, np.float32), e.copy()
    event_of = cp.full(n_obj, -1, cp.int64)
    event_of[flagged_ids] = cp.arange(n_ev, dtype=cp.int64)
    counted = cp.ones(n, cp.bool_)
    if len(valid):
        counted &= d_valid != 0
    if len(frame_valid):
        counted &= d_fvalid != 0
    row_event = cp.where(counted, event_of[cp.where(counted, d_obj, 0)], -1)
    pos = cp.flatnonzero(row_event >= 0)
    ev = row_event[pos]
    # the Cython kernel emits object by object when the flagged objects' row ranges are short
    # (counts of three rows or more: last_row - anchor + 1), else in row order
    big = o_count[flagged_ids] > 2
    span = int(cp.where(big, o_last_row[flagged_ids] - o_anchor[flagged_ids] + 1, 0).sum())
    if span < n:
        order = cp.argsort(ev)  # stable: rows stay ascending within an event
        pos, ev = pos[order], ev[order]
    pos, ev = cp.asnumpy(pos).astype(np.int64), cp.asnumpy(ev).astype(np.int64)
    anchors = cp.asnumpy(o_anchor[flagged_ids]).astype(np.int64)
    sev = np.ones(n_ev, np.float32)
    if has_score:
        sc = score[pos]
        use = sc == sc
        if len(score_valid):
            use &= score_valid[pos] != 0
        # sums in double in each event's row order, like the Cython kernel's running sums
        ssum = np.bincount(ev[use], weights=sc[use].astype(np.float64), minlength=n_ev)
        scount = np.bincount(ev[use], minlength=n_ev)
        mean = (ssum / np.maximum(scount, 1)).astype(np.float32)
        sev = np.where(scount == 0, np.float32(1.0), np.maximum(mean, np.float32(1e-6))).astype(np.float32)
    return pos, ev, sev[ev], anchors


def pair_codes(a, a_offset, b, b_offset, nb):
    a, b = check(a, _KEYS, "codes"), check(b, _KEYS, "codes")
    if len(b) != len(a):
        raise ValueError("code columns differ in length")
    if len(a) == 0:
        return np.empty(0, np.int64)
    base = np.int64(-(int(a_offset) * int(nb) + int(b_offset)))
    out = dev(a).astype(cp.int64) * np.int64(nb) + dev(b).astype(cp.int64) + base
    return cp.asnumpy(out)
