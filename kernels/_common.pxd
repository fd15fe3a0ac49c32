# cython: language_level=3
"""Helpers shared by every Cython kernel family (inline: compiled into each module that
cimports them). Kernels take validity as a byte array that is empty when there are no nulls."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy
from libcpp.algorithm cimport sort as cpp_sort
from libcpp.pair cimport pair
from libcpp.vector cimport vector


cdef inline const uint8_t* valid_ptr(const uint8_t[::1] valid) noexcept nogil:
    """NULL for an empty validity array (no nulls)."""
    if valid.shape[0] == 0:
        return NULL
    return &valid[0]


cdef inline bint is_valid(const uint8_t* valid, Py_ssize_t i) noexcept nogil:
    # a raw pointer, not a memoryview: passing a memoryview slice to a function copies it and
    # takes an atomic reference per call, which cost more than a whole per-row kernel body
    return valid == NULL or valid[i] != 0


ctypedef fused out_t:
    int64_t
    float


cdef inline object to_numpy(vector[out_t]& v):
    """A kernel's growing output vector as a new NumPy array (int64 or float32)."""
    out = np.empty(v.size(), dtype=np.int64 if out_t is int64_t else np.float32)
    cdef out_t[::1] o = out
    if v.size():
        memcpy(&o[0], v.data(), v.size() * sizeof(out_t))
    return out


# ---- overlap groups: union-find over one frame's boxes (boxes.multibox, points.multibox) ----
cdef inline int64_t find_root(int64_t* parent, int64_t i) noexcept nogil:
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


cdef inline void join(int64_t* parent, int64_t* size, int64_t i, int64_t j) noexcept nogil:
    """Union by size of the groups of ``i`` and ``j``."""
    cdef int64_t a = find_root(parent, i), b = find_root(parent, j), tmp
    if a == b:
        return
    if size[a] < size[b]:
        tmp = a
        a = b
        b = tmp
    parent[b] = a
    size[a] += size[b]


cdef inline void emit_groups(int64_t s, Py_ssize_t m, int64_t* parent, int64_t* size, int64_t min_boxes,
                             const float* score, const uint8_t* score_valid, vector[float]& grp_best,
                             vector[uint8_t]& grp_has, vector[int64_t]& grp_event, vector[int64_t]& anchors,
                             vector[float]& ev_sev, vector[int64_t]& v_pos, vector[int64_t]& v_ev,
                             int64_t* ev) noexcept nogil:
    """One event per group of at least ``min_boxes`` of the frame at rows ``s .. s + m``,
    numbered in order of its first box; severity its highest non-null, non-NaN score (1 with
    none, at least 1e-6). ``score`` is NULL without scores."""
    cdef Py_ssize_t i
    cdef int64_t r
    cdef float best
    grp_best.assign(m, -1.0)
    grp_has.assign(m, 0)  # a flag, not a sentinel score: negative scores are scores
    grp_event.assign(m, -1)
    for i in range(m):
        r = find_root(parent, i)
        if size[r] >= min_boxes and score != NULL and is_valid(score_valid, s + i) \
                and score[s + i] == score[s + i] and (not grp_has[r] or score[s + i] > grp_best[r]):
            grp_best[r] = score[s + i]
            grp_has[r] = 1
    for i in range(m):
        r = find_root(parent, i)
        if size[r] < min_boxes:
            continue
        if grp_event[r] < 0:
            grp_event[r] = ev[0]
            anchors.push_back(s + i)
            best = grp_best[r]
            ev_sev.push_back(1.0 if not grp_has[r] else (best if best > 1e-6 else 1e-6))
            ev[0] += 1
        v_pos.push_back(s + i)
        v_ev.push_back(grp_event[r])


# ---- IoU association: one frame's greedy one-to-one match (boxes.associate, BoxEngine) ----
# a candidate match: ((-iou, -last frame), (active slot, box)); the default pair order is the
# greedy order (highest IoU, then most recent, then oldest object, then earlier box)
ctypedef pair[pair[float, int64_t], pair[int64_t, int64_t]] cand_t


cdef inline void match_frame(const float* ax1, const float* ay1, const float* ax2, const float* ay2,
                             const int64_t* acls, const int64_t* aframe, Py_ssize_t n_act,
                             const float* bx1, const float* by1, const float* bx2, const float* by2,
                             const int64_t* bcls, Py_ssize_t m, float t, vector[float]& area,
                             vector[cand_t]& cands, vector[uint8_t]& act_used, vector[uint8_t]& box_used,
                             int64_t* match) noexcept nogil:
    """Greedy one-to-one match of a frame's ``m`` boxes (``b*``) to ``n_act`` active objects
    (their last boxes ``a*``, class codes and last frames, oldest first): a pair qualifies when
    the classes are equal and IoU >= ``t`` (tested as ``inter >= t * union``; NaN never does).
    ``match[j]``: the slot box ``j`` continues, -1: none. ``area``, ``cands``, ``act_used``
    and ``box_used`` are scratch. Shared by ``_boxes_cy.associate`` (the batch kernel) and
    ``_monitor_cy.BoxEngine`` (the streaming one), so that both match identically."""
    cdef Py_ssize_t a, j, c
    cdef float ix, iy, inter, uni, area_p, px1, py1, px2, py2
    cdef int64_t pcls
    cdef bint conflict
    cdef cand_t cand
    area.resize(m)
    for j in range(m):
        area[j] = (bx2[j] - bx1[j]) * (by2[j] - by1[j])
        match[j] = -1
    cands.clear()
    for a in range(n_act):
        px1 = ax1[a]
        py1 = ay1[a]
        px2 = ax2[a]
        py2 = ay2[a]
        pcls = acls[a]
        area_p = (px2 - px1) * (py2 - py1)
        for j in range(m):
            ix = min(px2, bx2[j]) - max(px1, bx1[j])
            if not ix > 0:  # also false for NaN
                continue
            iy = min(py2, by2[j]) - max(py1, by1[j])
            if not iy > 0:
                continue
            inter = ix * iy
            uni = area_p + area[j] - inter
            if inter >= t * uni and bcls[j] == pcls:
                cand.first.first = -(inter / uni)
                cand.first.second = -aframe[a]
                cand.second.first = a
                cand.second.second = j
                cands.push_back(cand)
    act_used.assign(n_act, 0)
    box_used.assign(m, 0)
    if cands.size() > 1:
        # the greedy order matters only when an object or a box has two candidates (the
        # common tracking frame has none: each box overlaps its own object only)
        conflict = False
        for c in range(<Py_ssize_t>cands.size()):
            a = cands[c].second.first
            j = cands[c].second.second
            if act_used[a] or box_used[j]:
                conflict = True
                break
            act_used[a] = 1
            box_used[j] = 1
        if conflict:
            cpp_sort(cands.begin(), cands.end())
        act_used.assign(n_act, 0)
        box_used.assign(m, 0)
    for c in range(<Py_ssize_t>cands.size()):
        a = cands[c].second.first
        j = cands[c].second.second
        if act_used[a] or box_used[j]:
            continue
        act_used[a] = 1
        box_used[j] = 1
        match[j] = a


# ---- threads: OpenMP's default team size, or 1 when the module was built without OpenMP ----
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int tw_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int tw_max_threads(void) { return 1; }
    #endif
    """
    int tw_max_threads() noexcept nogil


# Integer min/max in one pass. On x86-64 with GCC or Clang the unmasked loop is compiled for
# AVX-512, AVX2 and baseline and picked at load time (target_clones): the baseline build has no
# 64-bit vector compare, and this pass runs over whole key and time columns.
cdef extern from * nogil:
    """
    #include <stdint.h>
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(TRIPWIRE_NO_TARGET_CLONES)
    __attribute__((target_clones("avx512f", "avx2", "default")))
    #endif
    static void tw_minmax_i64_dense(const int64_t* x, int64_t n, int64_t* lo, int64_t* hi) {
        int64_t a = INT64_MAX, b = INT64_MIN;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = x[i];
            a = v < a ? v : a;
            b = v > b ? v : b;
        }
        *lo = a;
        *hi = b;
    }

    /* valid: NULL (no nulls) or one byte per value, 0 = null (skipped). Empty or all null:
     * lo = INT64_MAX, hi = INT64_MIN. */
    static inline void tw_minmax_i64(const int64_t* x, int64_t n, const uint8_t* valid, int64_t* lo, int64_t* hi) {
        if (valid == NULL) {
            tw_minmax_i64_dense(x, n, lo, hi);
            return;
        }
        int64_t a = INT64_MAX, b = INT64_MIN;
        for (int64_t i = 0; i < n; i++) {
            if (valid[i]) {
                int64_t v = x[i];
                a = v < a ? v : a;
                b = v > b ? v : b;
            }
        }
        *lo = a;
        *hi = b;
    }
    """
    void tw_minmax_i64(const int64_t* x, int64_t n, const uint8_t* valid, int64_t* lo, int64_t* hi)
