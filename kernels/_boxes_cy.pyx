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
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t, INT64_MAX, INT64_MIN
from libc.math cimport isfinite, isnan, nextafterf, INFINITY
from libc.string cimport memcpy

from libcpp.algorithm cimport merge as cpp_merge, sort as cpp_sort
from libcpp.pair cimport pair
from libcpp.vector cimport vector
from cython.parallel cimport prange

from tripwire import _config

from _common cimport apart, emit_groups, is_valid, link_overlaps, match_frame, match_scratch_t, mean_of_two_scores, row_ranges, to_numpy, tw_set_simd, tw_unlikely, valid_ptr
from _types cimport key_t, key2_t

cnp.import_array()

ctypedef pair[int64_t, int64_t] kv_t


cdef inline bint _by_end(const kv_t& a, const kv_t& b) noexcept nogil:
    return a.second < b.second


def simd_level(int level=-1):
    """The build of the IoU pair test this module runs (``multibox``, ``associate``): 2 AVX-512F
    (``associate``'s pair search on 16 boxes at a time; AVX2 elsewhere), 1 AVX2, 0 portable C.
    ``level`` picks one (capped at what the CPU has; -1: the best), so that the tests can check
    every build against the reference on one machine."""
    return tw_set_simd(level)


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
    cdef Py_ssize_t n = x1.shape[0], n_frames = offsets.shape[0] - 1, f
    cdef int64_t s, e, m, ev = 0
    cdef float t = <float>iou
    cdef bint has_score = score.shape[0] > 0
    cdef const uint8_t* sv = valid_ptr(score_valid)
    cdef const float* sp = &score[0] if has_score else NULL
    cdef vector[int64_t] parent, size
    cdef vector[float] boxes
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
            link_overlaps(&x1[s], &y1[s], &x2[s], &y2[s], m, t, parent, size, boxes, ok)
            emit_groups(s, m, &parent[0], &size[0], min_boxes, sp, sv, grp_best, grp_has, grp_event,
                        anchors, ev_sev, v_pos, v_ev, &ev)
    events = to_numpy[int64_t](v_ev)
    return to_numpy[int64_t](v_pos), events, to_numpy[float](ev_sev)[events], to_numpy[int64_t](anchors)


cdef enum:
    VALID_BLOCK = 1024  # rows per block in ``valid`` (its reasons fit in L1)

# reasons (bits), in README order
cdef enum:
    BAD_NONFINITE = 1
    BAD_X_ORDER = 2
    BAD_Y_ORDER = 4
    BAD_OUTSIDE = 8
    BAD_SCORE = 16


# A block's reasons, branch-free. Two builds picked like the pair kernels (``simd_level``): AVX2
# intrinsics, eight boxes a step in 32-bit lanes narrowed to bytes once per 32 boxes, and
# portable C in 32-bit lanes that the compiler vectorizes as it can (GCC's own AVX2 build of it
# packed to bytes early and shifted by repeated byte adds: 3.6 cycles a box, against ~1 here).
# Bounds that are not checked come as -inf / +inf; a non-finite coordinate is reason 1 alone.
cdef extern from * nogil:
    """
    #include <stdint.h>
    static inline int32_t tw_box_reason(float a, float b, float c, float d, float lox, float hix,
                                        float loy, float hiy) {
        int32_t fin = ((a - a) + (b - b) + (c - c) + (d - d)) == 0.0f;  /* x - x: 0, or NaN when x is not finite */
        int32_t r = ((c <= a) << 1) | ((d <= b) << 2) | (((a < lox) | (c > hix) | (b < loy) | (d > hiy)) << 3);
        return (r & -fin) | (1 - fin);
    }

    static inline uint8_t tw_score_reason(float s) { return (uint8_t)((1 - ((s >= 0.0f) & (s <= 1.0f))) << 4); }

    /* One row's reasons, score included when there is a score column (the vector loops' tails). */
    static inline uint8_t tw_row_reason(const float* x1, const float* y1, const float* x2, const float* y2,
                                        const float* score, int64_t k, float lox, float hix, float loy, float hiy) {
        return (uint8_t)tw_box_reason(x1[k], y1[k], x2[k], y2[k], lox, hix, loy, hiy) | (score ? tw_score_reason(score[k]) : 0);
    }

    /* restrict: without it the byte stores may alias the columns and nothing is vectorized */
    static void tw_box_reasons_portable(const float* __restrict x1, const float* __restrict y1,
                                        const float* __restrict x2, const float* __restrict y2,
                                        const float* __restrict score, int64_t m, float lox, float hix,
                                        float loy, float hiy, uint8_t* __restrict bad) {
        if (score) {
            for (int64_t k = 0; k < m; k++)
                bad[k] = (uint8_t)tw_box_reason(x1[k], y1[k], x2[k], y2[k], lox, hix, loy, hiy) | tw_score_reason(score[k]);
        } else {
            for (int64_t k = 0; k < m; k++)
                bad[k] = (uint8_t)tw_box_reason(x1[k], y1[k], x2[k], y2[k], lox, hix, loy, hiy);
        }
    }

    #ifdef TW_HAVE_AVX2
    /* Eight boxes: the reasons as int32 lanes (the same float32 tests as tw_box_reason). */
    __attribute__((target("avx2"), always_inline))
    static inline __m256i tw_reasons8_avx2(const float* x1, const float* y1, const float* x2, const float* y2,
                                           const float* score, int64_t k, __m256 lox, __m256 hix, __m256 loy,
                                           __m256 hiy) {
        __m256 a = _mm256_loadu_ps(x1 + k), b = _mm256_loadu_ps(y1 + k);
        __m256 c = _mm256_loadu_ps(x2 + k), d = _mm256_loadu_ps(y2 + k);
        __m256 z = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_sub_ps(a, a), _mm256_sub_ps(b, b)),
                                               _mm256_sub_ps(c, c)), _mm256_sub_ps(d, d));
        __m256i fin = _mm256_castps_si256(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_EQ_OQ));
        __m256 out = _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(a, lox, _CMP_LT_OQ), _mm256_cmp_ps(c, hix, _CMP_GT_OQ)),
                                  _mm256_or_ps(_mm256_cmp_ps(b, loy, _CMP_LT_OQ), _mm256_cmp_ps(d, hiy, _CMP_GT_OQ)));
        __m256i r = _mm256_or_si256(
            _mm256_or_si256(_mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(c, a, _CMP_LE_OQ)), _mm256_set1_epi32(2)),
                            _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(d, b, _CMP_LE_OQ)), _mm256_set1_epi32(4))),
            _mm256_and_si256(_mm256_castps_si256(out), _mm256_set1_epi32(8)));
        r = _mm256_or_si256(_mm256_and_si256(r, fin), _mm256_andnot_si256(fin, _mm256_set1_epi32(1)));
        if (score) {
            __m256 s = _mm256_loadu_ps(score + k);
            __m256 ok = _mm256_and_ps(_mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_GE_OQ),
                                      _mm256_cmp_ps(s, _mm256_set1_ps(1.0f), _CMP_LE_OQ));
            r = _mm256_or_si256(r, _mm256_andnot_si256(_mm256_castps_si256(ok), _mm256_set1_epi32(16)));
        }
        return r;
    }

    __attribute__((target("avx2")))
    static void tw_box_reasons_avx2(const float* x1, const float* y1, const float* x2, const float* y2,
                                    const float* score, int64_t m, float lox, float hix, float loy, float hiy,
                                    uint8_t* bad) {
        __m256 vlox = _mm256_set1_ps(lox), vhix = _mm256_set1_ps(hix);
        __m256 vloy = _mm256_set1_ps(loy), vhiy = _mm256_set1_ps(hiy);
        const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  /* undo the packs' lane interleave */
        int64_t k = 0;
        for (; k + 32 <= m; k += 32) {
            __m256i r0 = tw_reasons8_avx2(x1, y1, x2, y2, score, k, vlox, vhix, vloy, vhiy);
            __m256i r1 = tw_reasons8_avx2(x1, y1, x2, y2, score, k + 8, vlox, vhix, vloy, vhiy);
            __m256i r2 = tw_reasons8_avx2(x1, y1, x2, y2, score, k + 16, vlox, vhix, vloy, vhiy);
            __m256i r3 = tw_reasons8_avx2(x1, y1, x2, y2, score, k + 24, vlox, vhix, vloy, vhiy);
            __m256i w = _mm256_packus_epi16(_mm256_packus_epi32(r0, r1), _mm256_packus_epi32(r2, r3));
            _mm256_storeu_si256((__m256i*)(bad + k), _mm256_permutevar8x32_epi32(w, order));
        }
        for (; k < m; k++)
            bad[k] = tw_row_reason(x1, y1, x2, y2, score, k, lox, hix, loy, hiy);
    }
    #endif

    /* Rows lo .. hi without nulls, AVX2: the bad rows and their reasons straight from the
     * vector (one compare and a mask test per eight boxes); 0 when this CPU runs the portable
     * build (the caller then goes block by block). */
    #ifdef TW_HAVE_AVX2
    __attribute__((target("avx2")))
    static void tw_valid_rows_avx2(const float* x1, const float* y1, const float* x2, const float* y2,
                                   const float* score, int64_t lo, int64_t hi, float lox, float hix, float loy,
                                   float hiy, std::vector<int64_t>& rows, std::vector<int64_t>& reasons) {
        __m256 vlox = _mm256_set1_ps(lox), vhix = _mm256_set1_ps(hix);
        __m256 vloy = _mm256_set1_ps(loy), vhiy = _mm256_set1_ps(hiy);
        int64_t k = lo;
        for (; k + 8 <= hi; k += 8) {
            __m256i r = tw_reasons8_avx2(x1, y1, x2, y2, score, k, vlox, vhix, vloy, vhiy);
            if (!_mm256_testz_si256(r, r)) {  /* rare: some box of the eight is bad */
                alignas(32) int32_t v[8];
                _mm256_store_si256((__m256i*)v, r);
                for (int l = 0; l < 8; l++)
                    if (v[l]) { rows.push_back(k + l); reasons.push_back(v[l]); }
            }
        }
        for (; k < hi; k++) {
            uint8_t r = tw_row_reason(x1, y1, x2, y2, score, k, lox, hix, loy, hiy);
            if (r) { rows.push_back(k); reasons.push_back(r); }
        }
    }
    #endif

    static int tw_valid_rows(const float* x1, const float* y1, const float* x2, const float* y2,
                             const float* score, int64_t lo, int64_t hi, float lox, float hix, float loy, float hiy,
                             std::vector<int64_t>& rows, std::vector<int64_t>& reasons) {
    #ifdef TW_HAVE_AVX2
        if (tw_simd()) { tw_valid_rows_avx2(x1, y1, x2, y2, score, lo, hi, lox, hix, loy, hiy, rows, reasons); return 1; }
    #endif
        return 0;
    }

    static void tw_box_reasons(const float* x1, const float* y1, const float* x2, const float* y2,
                               const float* score, int64_t m, float lox, float hix, float loy, float hiy,
                               uint8_t* bad) {
    #ifdef TW_HAVE_AVX2
        if (tw_simd()) { tw_box_reasons_avx2(x1, y1, x2, y2, score, m, lox, hix, loy, hiy, bad); return; }
    #endif
        tw_box_reasons_portable(x1, y1, x2, y2, score, m, lox, hix, loy, hiy, bad);
    }
    """
    void tw_box_reasons(const float* x1, const float* y1, const float* x2, const float* y2, const float* score,
                        int64_t m, float lox, float hix, float loy, float hiy, uint8_t* bad)
    bint tw_valid_rows(const float* x1, const float* y1, const float* x2, const float* y2, const float* score,
                       int64_t lo, int64_t hi, float lox, float hix, float loy, float hiy, vector[int64_t]& rows,
                       vector[int64_t]& reasons)


cdef void _valid_range(const float* x1, const float* y1, const float* x2, const float* y2,
                       const uint8_t* cv, const float* score, const uint8_t* sv, Py_ssize_t lo,
                       Py_ssize_t hi, float lox, float hix, float loy, float hiy,
                       vector[int64_t]& rows, vector[int64_t]& reasons) noexcept nogil:
    """``valid`` over rows ``lo .. hi``: without nulls on AVX2 in one pass (``tw_valid_rows``);
    else block by block, every test for every row, then a scan eight reasons at a time for the
    (rare) bad rows."""
    cdef uint8_t bad[VALID_BLOCK]
    cdef Py_ssize_t b, j, k, m
    cdef uint64_t word
    if cv == NULL and sv == NULL and tw_valid_rows(x1, y1, x2, y2, score, lo, hi, lox, hix, loy, hiy, rows, reasons):
        return
    b = lo
    while b < hi:
        m = min(<Py_ssize_t>VALID_BLOCK, hi - b)
        tw_box_reasons(x1 + b, y1 + b, x2 + b, y2 + b, score + b if score != NULL else NULL, m,
                       lox, hix, loy, hiy, bad)
        if cv != NULL:
            for k in range(m):
                if cv[b + k] == 0:  # a null coordinate: no other coordinate test
                    bad[k] = (bad[k] & BAD_SCORE) | BAD_NONFINITE
        if sv != NULL:  # a null score is fine
            for k in range(m):
                if sv[b + k] == 0:
                    bad[k] &= ~BAD_SCORE
        for k in range(m, (m + 7) // 8 * 8):
            bad[k] = 0
        k = 0
        while k < m:
            memcpy(&word, &bad[k], 8)
            if word != 0:
                for j in range(k, k + 8):
                    if bad[j]:
                        rows.push_back(b + j)
                        reasons.push_back(bad[j])
            k += 8
        b += VALID_BLOCK


cdef inline float _float_at_most(double v) noexcept nogil:
    cdef float f = <float>v
    return nextafterf(f, -INFINITY) if f > v else f


def valid(const float[::1] x1, const float[::1] y1, const float[::1] x2, const float[::1] y2,
          const uint8_t[::1] coord_valid, const float[::1] score, const uint8_t[::1] score_valid,
          double width, double height):
    """Rows with a broken box, and why (bitmask): a null or non-finite coordinate (1),
    x2 <= x1 (2), y2 <= y1 (4), outside ``[0, width] x [0, height]`` (8; a bound <= 0 is not
    checked), a score outside [0, 1] or NaN (16; a null score is fine). From
    ``_config.VALID_PARALLEL_MIN_ROWS`` rows, one row range per thread."""
    cdef Py_ssize_t n = x1.shape[0], p
    cdef const uint8_t* cv = valid_ptr(coord_valid)
    cdef const uint8_t* sv = valid_ptr(score_valid)
    cdef const float* sp = &score[0] if score.shape[0] > 0 else NULL
    cdef float inf = float("inf")
    # float32 bounds with the double comparison's answer: c > width <=> c > the largest float <= width
    cdef float lox = 0 if width > 0 else -inf, hix = _float_at_most(width) if width > 0 else inf
    cdef float loy = 0 if height > 0 else -inf, hiy = _float_at_most(height) if height > 0 else inf
    cdef int parts = row_ranges(n, 0, _config.VALID_PARALLEL_MIN_ROWS, 0)
    # ranges of whole blocks (the last takes the rest), so no two threads write one cache line
    cdef Py_ssize_t cut = n // parts // VALID_BLOCK * VALID_BLOCK
    cdef vector[apart[vector[int64_t]]] rows, reasons
    if y1.shape[0] != n or x2.shape[0] != n or y2.shape[0] != n or (sp != NULL and score.shape[0] != n):
        raise ValueError("box columns differ in length")
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.uint8)
    rows.resize(parts)
    reasons.resize(parts)
    with nogil:
        if parts == 1:
            _valid_range(&x1[0], &y1[0], &x2[0], &y2[0], cv, sp, sv, 0, n, lox, hix, loy, hiy, rows[0].v,
                         reasons[0].v)
        else:
            for p in prange(parts, num_threads=parts, schedule="static"):
                _valid_range(&x1[0], &y1[0], &x2[0], &y2[0], cv, sp, sv, cut * p, n if p == parts - 1 else cut * (p + 1),
                             lox, hix, loy, hiy, rows[p].v, reasons[p].v)
    return (np.concatenate([to_numpy[int64_t](rows[p].v) for p in range(parts)]),
            np.concatenate([to_numpy[int64_t](reasons[p].v) for p in range(parts)]).astype(np.uint8))


# ----------------------------------------------------------------------------------------------
# flicker / appear: object identity, gaps, lifetimes
# ----------------------------------------------------------------------------------------------
_NO_I64 = np.empty(0, dtype=np.int64)


cdef cppclass _Active:
    """``associate``'s active objects, oldest first, as ``match_frame`` reads them (structure of
    arrays, kept across frames: a match updates its slot in place, a new object is appended, and
    the arrays are compacted only when some object expires). Slots ``0 .. n``; the vectors only
    grow, so appending is a store once they are large enough."""
    vector[float] x1, y1, x2, y2  # last box
    vector[int64_t] cls, frame, obj, pos  # class code, last frame, object id, last position
    Py_ssize_t n

    void add(float bx1, float by1, float bx2, float by2, int64_t bcls, int64_t bframe, int64_t bobj,
             int64_t bpos) noexcept nogil:
        cdef size_t k
        if <size_t>this.n == this.x1.size():
            k = max(2 * this.x1.size(), <size_t>16)
            this.x1.resize(k)
            this.y1.resize(k)
            this.x2.resize(k)
            this.y2.resize(k)
            this.cls.resize(k)
            this.frame.resize(k)
            this.obj.resize(k)
            this.pos.resize(k)
        this.x1[this.n] = bx1
        this.y1[this.n] = by1
        this.x2[this.n] = bx2
        this.y2[this.n] = by2
        this.cls[this.n] = bcls
        this.frame[this.n] = bframe
        this.obj[this.n] = bobj
        this.pos[this.n] = bpos
        this.n += 1

    int64_t expire(int64_t f, int64_t max_gap) noexcept nogil:
        """Drop the objects last seen more than ``max_gap`` frames before ``f`` (order kept);
        returns ``oldest()`` after. Nothing moves before the first one dropped (a spurious
        object dies near the end, a long-lived one anywhere)."""
        cdef Py_ssize_t a = 0, keep
        cdef int64_t lo = INT64_MAX
        while a < this.n and f - this.frame[a] - 1 <= max_gap:
            lo = min(lo, this.frame[a])
            a += 1
        keep = a
        for a in range(a, this.n):
            if f - this.frame[a] - 1 <= max_gap:
                this.x1[keep] = this.x1[a]
                this.y1[keep] = this.y1[a]
                this.x2[keep] = this.x2[a]
                this.y2[keep] = this.y2[a]
                this.cls[keep] = this.cls[a]
                this.frame[keep] = this.frame[a]
                this.obj[keep] = this.obj[a]
                this.pos[keep] = this.pos[a]
                lo = min(lo, this.frame[a])
                keep += 1
        this.n = keep
        return lo if keep else 0

    int64_t oldest() noexcept nogil:
        """The earliest last frame (0 when there is no object)."""
        cdef Py_ssize_t a
        cdef int64_t lo = 0
        for a in range(this.n):
            if a == 0 or this.frame[a] < lo:
                lo = this.frame[a]
        return lo


cdef struct _Seeds:  # associate's resume seeds (n == 0: none)
    const int64_t* off
    const int64_t* pos
    const int64_t* obj
    const int64_t* frame
    Py_ssize_t n  # stream codes that have a seed range: len(seed_offsets) - 1


cdef cppclass _Run:
    """One pass of ``associate`` over a range of frame groups: what it found (object ids in
    ``obj``, gap pairs, the state of each stream it finished) and where it stands after its
    last group (``act`` of ``stream``, ``n_obj`` ids given, ``next_seed``). A speculative pass
    (a range after the first, run from an empty state) also keeps, for its first groups, the
    objects it matched each group against (``snap_pos`` / ``snap_obj`` in slot order) and how
    many ids, gap pairs and state rows it had then: where the true run holds the same objects
    the two runs go on alike, so the stitch takes the speculative results from there."""
    _Active act
    int64_t stream, n_obj, next_seed, last_tie  # last_tie: last group of a slot-order tie
    vector[int64_t] gap_start, gap_end, st_stream, st_obj, st_pos, st_frame
    vector[int64_t] snap_off, snap_pos, snap_obj, snap_nobj, snap_ngap, snap_nst

    void start(int64_t n_obj0) noexcept nogil:
        this.act.n = 0
        this.stream = -1
        this.n_obj = n_obj0
        this.next_seed = 0
        this.last_tie = -1
        this.gap_start.clear()
        this.gap_end.clear()
        this.st_stream.clear()
        this.st_obj.clear()
        this.st_pos.clear()
        this.st_frame.clear()
        this.snap_off.assign(1, 0)
        this.snap_pos.clear()
        this.snap_obj.clear()
        this.snap_nobj.clear()
        this.snap_ngap.clear()
        this.snap_nst.clear()

    void snapshot() noexcept nogil:
        cdef Py_ssize_t a
        this.snap_nobj.push_back(this.n_obj)
        this.snap_ngap.push_back(this.gap_start.size())
        this.snap_nst.push_back(this.st_obj.size())
        for a in range(this.act.n):
            this.snap_pos.push_back(this.act.pos[a])
            this.snap_obj.push_back(this.act.obj[a])
        this.snap_off.push_back(this.snap_pos.size())

    void keep_state() noexcept nogil:
        """The active objects of ``stream`` as they stand after its last frame here."""
        cdef Py_ssize_t a
        for a in range(this.act.n):
            this.st_stream.push_back(this.stream)
            this.st_obj.push_back(this.act.obj[a])
            this.st_pos.push_back(this.act.pos[a])
            this.st_frame.push_back(this.act.frame[a])

    void keep_seeds(const _Seeds& sd, int64_t stream) noexcept nogil:
        """A stream with seeds but no frames here: its state passes through unchanged."""
        cdef int64_t q
        for q in range(sd.off[stream], sd.off[stream + 1]):
            this.st_stream.push_back(stream)
            this.st_obj.push_back(sd.obj[q])
            this.st_pos.push_back(sd.pos[q])
            this.st_frame.push_back(sd.frame[q])


cdef bint _joins(_Run& r, _Run& spec, Py_ssize_t i, bint may_reorder, vector[int64_t]& tmp) noexcept nogil:
    """Does ``r`` hold the objects ``spec`` held before its ``i``-th group (the same last
    boxes)? In the same slot order, the runs then go on identically; in another order only
    while no tie is decided by slot order (``may_reorder``: ``spec`` decides none from here)."""
    cdef int64_t lo = spec.snap_off[i], k = spec.snap_off[i + 1] - lo, a
    cdef int64_t* u
    if k != r.act.n:
        return False
    for a in range(k):
        if r.act.pos[a] != spec.snap_pos[lo + a]:
            break
    else:
        return True
    if not may_reorder:
        return False
    tmp.resize(2 * k)
    u = tmp.data()
    for a in range(k):
        u[a] = r.act.pos[a]
        u[k + a] = spec.snap_pos[lo + a]
    cpp_sort(u, u + k)
    cpp_sort(u + k, u + 2 * k)
    for a in range(k):
        if u[a] != u[k + a]:
            return False
    return True


cdef cppclass _Part:  # one range's pass and the scratch of the thread running it
    _Run run
    match_scratch_t w
    vector[int64_t] match, tmp


cdef Py_ssize_t _associate_groups(const float* x1, const float* y1, const float* x2, const float* y2,
                                  const key_t* cls, const int64_t* offsets, const int64_t* group_frame,
                                  const int64_t* group_stream, Py_ssize_t g0, Py_ssize_t g1, float t,
                                  int64_t max_gap, const _Seeds& sd, int64_t* obj, _Run& r, match_scratch_t& w,
                                  vector[int64_t]& match, Py_ssize_t n_snap, _Run* spec,
                                  vector[int64_t]& tmp) noexcept nogil:
    """Associate frame groups ``g0 .. g1`` going on from ``r`` (see ``associate``): new ids
    from ``r.n_obj`` into ``obj``; a snapshot before each of the first ``n_snap`` groups. With
    ``spec`` (the speculative pass over the same groups), stop before the first group where
    ``_joins`` holds and return it; else return ``g1``."""
    cdef Py_ssize_t g, a, j, m
    cdef int64_t s, e, f, p, q, oldest = r.act.oldest()
    # snapshots hold every active object at each of the first groups: bounded by the rows here,
    # so a huge max_gap (objects kept for long) cannot make them quadratic; past it, none
    cdef Py_ssize_t snap_budget = 4 * (offsets[g1] - offsets[g0]) + 65536
    for g in range(g0, g1):
        s = offsets[g]
        e = offsets[g + 1]
        m = e - s
        f = group_frame[g]
        if group_stream[g] != r.stream:
            if r.stream >= 0:
                r.keep_state()
            while r.next_seed < min(group_stream[g], <int64_t>sd.n):  # seeds, no frames here
                r.keep_seeds(sd, r.next_seed)
                r.next_seed += 1
            r.stream = group_stream[g]
            r.act.n = 0
            if r.stream < sd.n:  # resume: the stream's active objects, oldest first
                for q in range(sd.off[r.stream], sd.off[r.stream + 1]):
                    p = sd.pos[q]
                    r.act.add(x1[p], y1[p], x2[p], y2[p], cls[p], sd.frame[q], sd.obj[q], p)
                r.next_seed = r.stream + 1
            oldest = r.act.oldest()
        # forget objects unseen for more than max_gap frames (order kept: oldest first);
        # ``oldest`` is at most every active object's last frame, so when even it is recent
        # enough nothing expires and the active set is left as it is
        if r.act.n and f - oldest - 1 > max_gap:
            oldest = r.act.expire(f, max_gap)
        if (g - g0 < n_snap and <Py_ssize_t>r.snap_nobj.size() == g - g0  # consecutive from g0
                and <Py_ssize_t>r.snap_pos.size() + r.act.n <= snap_budget):
            r.snapshot()
        if spec != NULL:
            if g - g0 >= <Py_ssize_t>spec.snap_nobj.size():
                spec = NULL  # no snapshot left to join: this run goes to the end
            elif _joins(r, spec[0], g - g0, g > spec.last_tie, tmp):
                return g
        match.resize(m)
        match_frame(r.act.x1.data(), r.act.y1.data(), r.act.x2.data(), r.act.y2.data(), r.act.cls.data(),
                    r.act.frame.data(), r.act.n, &x1[s], &y1[s], &x2[s], &y2[s], &cls[s], m, t, w, match.data())
        if w.slot_tie:
            r.last_tie = g
        for j in range(s, e):
            a = match[j - s]
            if a >= 0:  # continue object a in place
                obj[j] = r.act.obj[a]
                if f - r.act.frame[a] > 1:
                    r.gap_start.push_back(r.act.pos[a])
                    r.gap_end.push_back(j)
                r.act.x1[a] = x1[j]
                r.act.y1[a] = y1[j]
                r.act.x2[a] = x2[j]
                r.act.y2[a] = y2[j]
                r.act.pos[a] = j
                r.act.frame[a] = f
            elif isfinite(x1[j]) and isfinite(y1[j]) and isfinite(x2[j]) and isfinite(y2[j]):
                if r.act.n == 0:
                    oldest = f
                obj[j] = r.n_obj
                r.act.add(x1[j], y1[j], x2[j], y2[j], cls[j], f, r.n_obj, j)
                r.n_obj += 1
            else:
                obj[j] = -1
    return g1


cdef inline int64_t _true_id(const vector[int64_t]& idmap, int64_t v, int64_t base_s, int64_t base_t) noexcept nogil:
    return idmap[v] if v < base_s else v - base_s + base_t


cdef inline int64_t _true_rank(const vector[int64_t]& slot, int64_t v, int64_t base_s, int64_t k) noexcept nogil:
    """Where object ``v`` of the speculative pass sits in the true slot order: objects active
    at the join keep the true run's order there, later ones follow in order of creation."""
    return slot[v] if v < base_s else k + v - base_s


cdef void _stitch(_Run& out, _Run& spec, _Run& rep, Py_ssize_t g0, Py_ssize_t g1, Py_ssize_t joined,
                  const int64_t* offsets, int64_t* obj, vector[kv_t]& ps, vector[kv_t]& pt,
                  vector[int64_t]& idmap, vector[int64_t]& slot) noexcept nogil:
    """Append range ``g0 .. g1`` to ``out`` (the true run up to ``g0``): ``rep`` redid its
    groups up to ``joined`` from ``out``'s state; from ``joined`` on, ``spec``'s results are
    the true ones once its ids are renamed (an object active at ``joined``: by its last box;
    a later one: shifted by the difference in ids given so far) and its active objects are
    put back in the true slot order (the order of the state it returns)."""
    cdef Py_ssize_t i = joined - g0, a, k, c
    cdef int64_t lo, base_s, base_t, v
    cdef _Active act
    cdef vector[pair[kv_t, int64_t]] order
    out.gap_start.insert(out.gap_start.end(), rep.gap_start.begin(), rep.gap_start.end())
    out.gap_end.insert(out.gap_end.end(), rep.gap_end.begin(), rep.gap_end.end())
    out.st_stream.insert(out.st_stream.end(), rep.st_stream.begin(), rep.st_stream.end())
    out.st_obj.insert(out.st_obj.end(), rep.st_obj.begin(), rep.st_obj.end())
    out.st_pos.insert(out.st_pos.end(), rep.st_pos.begin(), rep.st_pos.end())
    out.st_frame.insert(out.st_frame.end(), rep.st_frame.begin(), rep.st_frame.end())
    if joined == g1:  # never joined: the redone range is the true one
        out.act = rep.act
        out.stream = rep.stream
        out.n_obj = rep.n_obj
        return
    lo = spec.snap_off[i]
    k = spec.snap_off[i + 1] - lo
    base_s = spec.snap_nobj[i]
    base_t = rep.n_obj
    ps.resize(k)
    pt.resize(k)
    for a in range(k):
        ps[a].first = spec.snap_pos[lo + a]
        ps[a].second = spec.snap_obj[lo + a]
        pt[a].first = rep.act.pos[a]
        pt[a].second = a
    cpp_sort(ps.begin(), ps.end())
    cpp_sort(pt.begin(), pt.end())
    idmap.assign(base_s, -1)
    slot.assign(base_s, -1)
    for a in range(k):  # the same last box: the same object
        idmap[ps[a].second] = rep.act.obj[pt[a].second]
        slot[ps[a].second] = pt[a].second
    for a in range(offsets[joined], offsets[g1]):
        v = obj[a]
        if v >= 0:
            obj[a] = _true_id(idmap, v, base_s, base_t)
    for a in range(spec.snap_ngap[i], <Py_ssize_t>spec.gap_start.size()):
        out.gap_start.push_back(spec.gap_start[a])
        out.gap_end.push_back(spec.gap_end[a])
    # the states of the streams spec finished after the join, each in true slot order
    for a in range(spec.snap_nst[i], <Py_ssize_t>spec.st_obj.size()):
        order.push_back(pair[kv_t, int64_t](kv_t(spec.st_stream[a], _true_rank(slot, spec.st_obj[a], base_s, k)), a))
    cpp_sort(order.begin(), order.end())
    for c in range(<Py_ssize_t>order.size()):
        a = order[c].second
        out.st_stream.push_back(spec.st_stream[a])
        out.st_obj.push_back(_true_id(idmap, spec.st_obj[a], base_s, base_t))
        out.st_pos.push_back(spec.st_pos[a])
        out.st_frame.push_back(spec.st_frame[a])
    order.clear()
    act.n = 0
    for a in range(spec.act.n):
        order.push_back(pair[kv_t, int64_t](kv_t(_true_rank(slot, spec.act.obj[a], base_s, k), 0), a))
    cpp_sort(order.begin(), order.end())
    for c in range(<Py_ssize_t>order.size()):
        a = order[c].second
        act.add(spec.act.x1[a], spec.act.y1[a], spec.act.x2[a], spec.act.y2[a], spec.act.cls[a], spec.act.frame[a],
                _true_id(idmap, spec.act.obj[a], base_s, base_t), spec.act.pos[a])
    out.act = act
    out.stream = spec.stream
    out.n_obj = spec.n_obj - base_s + base_t


def associate(const float[::1] x1, const float[::1] y1, const float[::1] x2, const float[::1] y2,
              const key_t[::1] cls, const int64_t[::1] offsets, const int64_t[::1] group_frame,
              const int64_t[::1] group_stream, double iou, int64_t max_gap, seed_offsets=None,
              seed_pos=None, seed_obj=None, seed_frame=None, int64_t next_obj=0):
    """Link boxes of one class across frames into objects by IoU (identity ``"iou"``).

    Frames (CSR ``offsets``) arrive in (stream, frame) order, stream codes ascending;
    ``group_frame`` and ``group_stream`` hold each frame's number and stream code. An object
    last seen at frame ``t`` may be continued at frame ``f`` of the same stream when
    ``f - t - 1 <= max_gap``, by a box of the same ``cls`` code with IoU >= ``iou`` to its last
    box (tested as ``inter >= iou * union``). Matching is one to one and greedy: highest IoU
    first, ties to the object seen most recently, then the older object, then the earlier box.
    Unmatched boxes start new objects, numbered from ``next_obj`` in order of appearance. Boxes
    with a non-finite coordinate belong to no object.

    Resuming (``tripwire._streaming.ByObject``): a stream starts from its seeds instead of
    empty. Seed boxes sit after the grouped positions (at or past ``offsets[-1]``); stream code
    ``s`` has seeds ``seed_offsets[s]:seed_offsets[s + 1]`` (``seed_pos``, ``seed_obj``,
    ``seed_frame``: the last box, id and last frame of each active object, oldest first, every
    seed frame before the stream's frames here). No seeds (``None``): every stream starts empty.

    Without seeds, from ``_config.ASSOC_PARALLEL_MIN_ROWS`` boxes the frames are cut into
    ranges associated in parallel, each from an empty state, then stitched in order: a range
    is redone from the true state until it holds the objects its speculative pass held at the
    same frame (the state a frame is matched against is all that decides it), and the
    speculative results are renamed from there on. The result is the sequential one exactly;
    a range that never joins within the compared frames is redone whole.

    Returns ``(obj, gap_start, gap_end, state_stream, state_obj, state_pos, state_frame,
    next_obj)``: the object of each position (-1: none; a seed's position: its object), the
    position pairs where an object continues after missing at least one frame (in order of
    ``gap_end``), the active objects after the last frame of every stream code that has frames
    or seeds (by stream code, oldest first within one: feed them back as seeds to go on), and
    the next new object id.
    """
    cdef const int64_t[::1] s_off = _NO_I64 if seed_offsets is None else seed_offsets
    cdef const int64_t[::1] s_pos = _NO_I64 if seed_pos is None else seed_pos
    cdef const int64_t[::1] s_obj = _NO_I64 if seed_obj is None else seed_obj
    cdef const int64_t[::1] s_frame = _NO_I64 if seed_frame is None else seed_frame
    cdef Py_ssize_t n = x1.shape[0], n_groups = offsets.shape[0] - 1, j, k, joined, n_snap = 0
    cdef int parts = 1
    cdef float t = <float>iou
    cdef _Seeds sd, no_seeds
    cdef _Run* out
    cdef vector[apart[_Part]] part
    cdef _Run rep
    cdef vector[int64_t] idmap, slot
    cdef vector[kv_t] ps, pt
    cdef const int64_t[::1] bd
    if y1.shape[0] != n or x2.shape[0] != n or y2.shape[0] != n or cls.shape[0] != n:
        raise ValueError("box columns differ in length")
    if group_frame.shape[0] != n_groups or group_stream.shape[0] != n_groups:
        raise ValueError("group_frame and group_stream need one value per frame")
    _check_seeds(n, offsets[n_groups] if n_groups >= 0 else 0, s_off, s_pos, s_obj, s_frame)
    obj_out = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] obj = obj_out
    if n_groups >= 0:
        obj_out[offsets[n_groups]:] = -1  # past the grouped positions: seeds only
    for j in range(s_pos.shape[0]):
        obj[s_pos[j]] = s_obj[j]
    sd.n = max(s_off.shape[0] - 1, 0)
    sd.off = &s_off[0] if s_off.shape[0] else NULL
    sd.pos = &s_pos[0] if s_pos.shape[0] else NULL
    sd.obj = &s_obj[0] if s_obj.shape[0] else NULL
    sd.frame = &s_frame[0] if s_frame.shape[0] else NULL
    no_seeds.n = 0
    if sd.n == 0 and n_groups > 1:
        parts = row_ranges(n, 0, _config.ASSOC_PARALLEL_MIN_ROWS, _config.ASSOC_PARTS)
    if parts > 1:  # ranges of whole frames, about n / parts boxes each
        cut = np.searchsorted(np.asarray(offsets)[:n_groups], np.arange(1, parts) * (n // parts))
        bd = np.unique(np.concatenate(([0], cut, [n_groups]))).astype(np.int64)
        parts = bd.shape[0] - 1
        n_snap = _config.ASSOC_CONVERGE_GROUPS
        n_snap = max(n_snap, 4 * (min(max_gap, 1 << 20) + 1)) if n_snap > 0 else 0
    else:
        bd = np.array([0, max(n_groups, 0)], np.int64)
    part.resize(parts)
    cdef const float* px1 = &x1[0] if n else NULL
    cdef const float* py1 = &y1[0] if n else NULL
    cdef const float* px2 = &x2[0] if n else NULL
    cdef const float* py2 = &y2[0] if n else NULL
    cdef const key_t* pcls = &cls[0] if n else NULL
    cdef int64_t* pobj = &obj[0] if n else NULL
    with nogil:
        if parts == 1:
            part[0].v.run.start(next_obj)
            _associate_groups(px1, py1, px2, py2, pcls, &offsets[0], &group_frame[0] if n_groups else NULL,
                              &group_stream[0] if n_groups else NULL, 0, max(n_groups, 0), t, max_gap, sd, pobj,
                              part[0].v.run, part[0].v.w, part[0].v.match, 0, NULL, part[0].v.tmp)
        else:
            for k in prange(parts, num_threads=parts, schedule="static", chunksize=1):
                part[k].v.run.start(next_obj if k == 0 else 0)
                _associate_groups(px1, py1, px2, py2, pcls, &offsets[0], &group_frame[0], &group_stream[0],
                                  bd[k], bd[k + 1], t, max_gap, no_seeds, pobj, part[k].v.run, part[k].v.w,
                                  part[k].v.match, 0 if k == 0 else min(n_snap, bd[k + 1] - bd[k]), NULL,
                                  part[k].v.tmp)
            for k in range(1, parts):  # stitch: range k goes on from the true state after k - 1
                rep.start(part[0].v.run.n_obj)
                rep.act = part[0].v.run.act
                rep.stream = part[0].v.run.stream
                joined = _associate_groups(px1, py1, px2, py2, pcls, &offsets[0], &group_frame[0],
                                           &group_stream[0], bd[k], bd[k + 1], t, max_gap, no_seeds, pobj, rep,
                                           part[0].v.w, part[0].v.match, 0, &part[k].v.run, part[0].v.tmp)
                _stitch(part[0].v.run, part[k].v.run, rep, bd[k], bd[k + 1], joined, &offsets[0], pobj, ps, pt,
                        idmap, slot)
        out = &part[0].v.run
        if out.stream >= 0:
            out.keep_state()
        while out.next_seed < sd.n:
            out.keep_seeds(sd, out.next_seed)
            out.next_seed += 1
    # gap pairs were found frame by frame in greedy order: put them in order of their end
    ends = to_numpy[int64_t](out.gap_end)
    order = np.argsort(ends, kind="stable")
    return (obj_out, to_numpy[int64_t](out.gap_start)[order], ends[order], to_numpy[int64_t](out.st_stream),
            to_numpy[int64_t](out.st_obj), to_numpy[int64_t](out.st_pos), to_numpy[int64_t](out.st_frame),
            out.n_obj)


def _check_seeds(Py_ssize_t n, int64_t n_grouped, const int64_t[::1] s_off, const int64_t[::1] s_pos,
                 const int64_t[::1] s_obj, const int64_t[::1] s_frame):
    """Seeds index the box arrays without bounds checks: refuse any that would read past them."""
    cdef Py_ssize_t m = s_pos.shape[0]
    if s_obj.shape[0] != m or s_frame.shape[0] != m:
        raise ValueError("seed_pos, seed_obj and seed_frame differ in length")
    if s_off.shape[0] == 0:
        if m:
            raise ValueError("seeds need seed_offsets")
        return
    if s_off[0] != 0 or s_off[s_off.shape[0] - 1] != m or (np.diff(np.asarray(s_off)) < 0).any():
        raise ValueError("seed_offsets must rise from 0 to len(seed_pos)")
    pos = np.asarray(s_pos)
    if m and (pos.min() < n_grouped or pos.max() >= n):
        raise ValueError("seed positions must lie after the grouped positions, inside the box arrays")


cdef struct seen_t:  # one object's first box in a row range of ``gaps``
    int64_t f   # its frame
    int64_t p   # its position (-1: not seen)


cdef enum:
    GAPS_BLOCK = 8192  # rows per growth of the pairs buffer (it has room for every row of a block)
    GAPS_BACK = 0      # ``_gaps_part``: some object's frames go back
    GAPS_OK = 1
    GAPS_EXTREME = 2   # a frame within the range's length of INT64_MAX: redo with the exact test


cdef inline int _gaps_part(const key_t* obj, int64_t obj_offset, const uint8_t* vp, const int64_t* frame,
                           Py_ssize_t lo, Py_ssize_t hi, int64_t* Sf, int64_t* Sp, seen_t* F,
                           uint64_t max_gap, vector[kv_t]& pairs, bint exact) noexcept nogil:
    """Positions ``lo .. hi`` with their own state (each object's latest frame ``Sf`` and
    position ``Sp``, its first box here ``F``); ``pairs`` gets (start, end) in order of the end.

    The row loop tests only ``frame - latest frame`` in {0, 1} (unsigned), the case of almost
    every row of tracker output; every other row (a gap, a first box, a frame going back) takes
    one branch out of it, where the exact tests run. That one test is exact unless a frame is
    within ``hi - lo`` of INT64_MAX (the difference can wrap; ``GAPS_EXTREME``: the caller
    redoes the ranges with ``exact``, which tests everything at every row) or an object's first
    box here has frame INT64_MIN or INT64_MIN + 1 (the blank frame: its ``F`` stays unset; the
    caller's join finds it). Fewer instructions a row made the loop 1.6x faster."""
    cdef Py_ssize_t i, e, c = 0
    cdef int64_t k, fr, last
    cdef int64_t near_max = INT64_MAX - (hi - lo)
    cdef kv_t* out
    cdef bint rare
    while lo < hi:
        e = min(lo + GAPS_BLOCK, hi)
        if <Py_ssize_t>pairs.size() < c + (e - lo):
            pairs.resize(max(2 * pairs.size(), <size_t>(c + (e - lo))))
        out = pairs.data()
        for i in range(lo, e):
            if vp != NULL and not vp[i]:
                continue
            k = obj[i] - obj_offset
            fr = frame[i]
            last = Sf[k]
            if exact:
                rare = (<uint64_t>fr - <uint64_t>last - 2 < max_gap) | (Sp[k] < 0) | (fr < last)
            else:
                rare = <uint64_t>fr - <uint64_t>last > 1
            if tw_unlikely(rare):
                if not exact and fr > near_max:
                    pairs.resize(c)
                    return GAPS_EXTREME
                if Sp[k] < 0:  # first box of the object here: no gap before it
                    F[k].f = fr
                    F[k].p = i
                elif fr < last:
                    pairs.resize(c)
                    return GAPS_BACK
                elif <uint64_t>fr - <uint64_t>last - 2 < max_gap:  # 1 <= gap <= max_gap frames
                    out[c].first = Sp[k]
                    out[c].second = i
                    c += 1
            Sf[k] = fr
            Sp[k] = i
        lo = e
    pairs.resize(c)
    return GAPS_OK


cdef Py_ssize_t _first_row_of(const key_t* obj, int64_t obj_offset, const uint8_t* vp, int64_t k,
                              Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """The first valid position of object ``k`` in ``lo .. hi`` (-1: none)."""
    cdef Py_ssize_t i
    for i in range(lo, hi):
        if is_valid(vp, i) and obj[i] - obj_offset == k:
            return i
    return -1


def gaps(const key_t[::1] obj, int64_t obj_offset, int64_t n_obj, const uint8_t[::1] valid,
         const int64_t[::1] frame, int64_t max_gap):
    """Where an object is missing for 1..``max_gap`` frames between two of its boxes.

    One pass in array order keeping each object's last frame and position; rows with
    ``valid == 0`` are skipped. Returns ``(start, end, in_order)``: position pairs around each
    gap (``frame[end] - frame[start] - 1`` in ``[1, max_gap]``) in order of ``end``, and whether
    every object's frames were non-decreasing in array order; when not, the pairs are
    incomplete and the caller sorts by (object, frame) and calls again. Of boxes sharing a
    frame, the last one in array order opens the next gap. From
    ``_config.TRACKS_PARALLEL_MIN_ROWS`` rows, the rows are cut into one range per OpenMP
    thread (``_config.TRACKS_PARTS`` when > 0), scanned in parallel and joined object by object.
    """
    cdef const uint8_t* vp = valid_ptr(valid)
    cdef Py_ssize_t n = obj.shape[0], p, q, lo
    cdef int64_t k, m = max(n_obj, 0)
    cdef uint64_t mg = <uint64_t>max(max_gap, 0)
    cdef int parts = 1, attempt
    cdef seen_t blank
    cdef seen_t* G
    cdef int64_t* Af
    cdef int64_t* Ap
    cdef vector[int64_t] Sf, Sp
    cdef vector[seen_t] F
    cdef vector[apart[vector[kv_t]]] part_pairs
    cdef vector[kv_t] pairs, joins
    cdef vector[int] status
    cdef bint in_order = True, exact = False, redo = False
    if frame.shape[0] != n:
        raise ValueError("object and frame columns differ in length")
    parts = row_ranges(n, n_obj, _config.TRACKS_PARALLEL_MIN_ROWS, _config.TRACKS_PARTS)
    blank.f = INT64_MIN
    blank.p = -1
    with nogil:
        if n:
            part_pairs.resize(parts)
            for attempt in range(2):
                Sf.assign(parts * m, INT64_MIN)
                Sp.assign(parts * m, -1)
                F.assign(parts * m, blank)
                status.assign(parts, GAPS_OK)
                # one range runs through the parallel loop too: outlined there, the row loop keeps
                # its pointers in registers (inlined in this function it took twice as long)
                # constant ``vp`` / ``exact`` at each call: each gets its own lean copy of the loop
                for p in prange(parts, num_threads=parts, schedule="static"):
                    if exact:
                        status[p] = _gaps_part(&obj[0], obj_offset, vp, &frame[0], n * p // parts,
                                               n * (p + 1) // parts, Sf.data() + p * m, Sp.data() + p * m,
                                               F.data() + p * m, mg, part_pairs[p].v, True)
                    elif vp == NULL:
                        status[p] = _gaps_part(&obj[0], obj_offset, NULL, &frame[0], n * p // parts,
                                               n * (p + 1) // parts, Sf.data() + p * m, Sp.data() + p * m,
                                               F.data() + p * m, mg, part_pairs[p].v, False)
                    else:
                        status[p] = _gaps_part(&obj[0], obj_offset, vp, &frame[0], n * p // parts,
                                               n * (p + 1) // parts, Sf.data() + p * m, Sp.data() + p * m,
                                               F.data() + p * m, mg, part_pairs[p].v, False)
                redo = False
                for p in range(parts):
                    redo = redo or status[p] == GAPS_EXTREME
                    in_order = in_order and status[p] != GAPS_BACK
                if not redo:
                    break
                exact = True  # (never GAPS_EXTREME: the second attempt is the last)
                in_order = True
        if in_order and parts > 1:  # (n > 0 here)
            # join: the gap across each cut (the object's latest box before it, its first after),
            # merged by end with the part's own pairs; Sf / Sp[0 .. m] follow every object
            pairs.swap(part_pairs[0].v)
            for p in range(1, parts):
                joins.clear()
                lo = n * p // parts
                for k in range(m):
                    if Sp[p * m + k] < 0:
                        continue  # object absent from part p
                    G = &F[p * m + k]
                    if G.p < 0:  # its first box there has the blank frame (see _gaps_part)
                        G.p = _first_row_of(&obj[0], obj_offset, vp, k, lo, n * (p + 1) // parts)
                        G.f = frame[G.p]
                    Af = &Sf[k]
                    Ap = &Sp[k]
                    if Ap[0] >= 0:
                        if G.f < Af[0]:
                            in_order = False
                            break
                        if <uint64_t>G.f - <uint64_t>Af[0] - 2 < mg:
                            joins.push_back(kv_t(Ap[0], G.p))
                    Af[0] = Sf[p * m + k]
                    Ap[0] = Sp[p * m + k]
                if not in_order:
                    break
                cpp_sort(joins.begin(), joins.end(), _by_end)
                q = pairs.size()
                pairs.resize(q + joins.size() + part_pairs[p].v.size())
                cpp_merge(joins.begin(), joins.end(), part_pairs[p].v.begin(), part_pairs[p].v.end(),
                          pairs.begin() + q, _by_end)
        elif in_order and n:
            pairs.swap(part_pairs[0].v)
    if not in_order:
        return np.empty(0, np.int64), np.empty(0, np.int64), False
    starts = np.empty(pairs.size(), np.int64)
    ends = np.empty(pairs.size(), np.int64)
    cdef int64_t[::1] sv = starts, ev = ends
    for q in range(<Py_ssize_t>pairs.size()):
        sv[q] = pairs[q].first
        ev[q] = pairs[q].second
    return starts, ends, True


cdef struct life_t:  # one object's state in ``lifetimes`` (64 bytes: a cache line)
    int64_t first       # first and last frame
    int64_t last
    int64_t anchor      # first and last row (-1: not seen)
    int64_t last_row
    double ssum         # sum and count of its non-null, non-NaN scores
    int64_t scount
    int32_t count       # rows, saturating at 3: with one or two, they are anchor and last_row
    int32_t stream
    int32_t event


cdef inline void _emit(Py_ssize_t i, int64_t o, const float[::1] score, const uint8_t* svp, bint has_score,
                       vector[int64_t]& v_pos, vector[int64_t]& v_ev, life_t* L) noexcept nogil:
    """Row ``i`` of flagged object ``L`` (event ``o``); its score joins the object's mean."""
    cdef float sc
    v_pos.push_back(i)
    v_ev.push_back(o)
    if has_score and (svp == NULL or svp[i] != 0):
        sc = score[i]
        if sc == sc:
            L.ssum += sc
            L.scount += 1


cdef struct extent_t:  # one stream's frame range in ``lifetimes`` (seen: first <= last)
    int64_t first
    int64_t last


cdef inline void _live_row(life_t* L, Py_ssize_t i, int64_t fr, int32_t st) noexcept nogil:
    """Row ``i`` (frame ``fr``, stream ``st``) joins its object ``L``. The common row stores two
    fields; first frame, anchor and row count change only on an object's first three rows or a
    frame before its first (four stores a row took 1.24-1.34x the time)."""
    if tw_unlikely((L.count < 3) | (fr < L.first)):
        if L.count == 0:
            L.anchor = i
            L.first = fr
            L.last = fr
            L.stream = st
        L.first = min(L.first, fr)
        L.count += L.count < 3
    L.last = max(L.last, fr)
    L.last_row = i


cdef void _lives_rows_plain(const key_t* obj, int64_t obj_offset, const int64_t* frame,
                            Py_ssize_t lo, Py_ssize_t hi, life_t* life, extent_t* ext) noexcept nogil:
    """``_lives_part`` for rows without nulls in one stream (tracker output): nothing tested
    per row but the object's state."""
    cdef Py_ssize_t i
    cdef int64_t fr, lo_f = INT64_MAX, hi_f = INT64_MIN
    for i in range(lo, hi):
        fr = frame[i]
        lo_f = min(lo_f, fr)
        hi_f = max(hi_f, fr)
        _live_row(&life[obj[i] - obj_offset], i, fr, 0)
    if lo < hi:
        ext[0].first = min(ext[0].first, lo_f)
        ext[0].last = max(ext[0].last, hi_f)


cdef void _lives_part(const key_t* obj, int64_t obj_offset, const uint8_t* vp, const uint8_t* fvp,
                      const int64_t* frame, const key2_t* stream, int64_t stream_offset, bint has_stream,
                      Py_ssize_t lo, Py_ssize_t hi, life_t* life, extent_t* ext) noexcept nogil:
    """Rows ``lo .. hi`` into their own ``life`` (per object) and ``ext`` (per stream). The
    current stream's extent stays in registers while the stream does not change (a min/max
    stored and reloaded every row would chain each row to the last one through memory)."""
    cdef Py_ssize_t i
    cdef int64_t fr, st, cur = -1, lo_f = INT64_MAX, hi_f = INT64_MIN
    if vp == NULL and fvp == NULL and not has_stream:
        _lives_rows_plain(obj, obj_offset, frame, lo, hi, life, ext)
        return
    for i in range(lo, hi):
        if fvp != NULL and not fvp[i]:
            continue
        fr = frame[i]
        st = stream[i] - stream_offset if has_stream else 0
        if st != cur:
            if cur >= 0:
                ext[cur].first = min(ext[cur].first, lo_f)
                ext[cur].last = max(ext[cur].last, hi_f)
            cur = st
            lo_f = INT64_MAX
            hi_f = INT64_MIN
        lo_f = min(lo_f, fr)
        hi_f = max(hi_f, fr)
        if vp != NULL and not vp[i]:
            continue
        _live_row(&life[obj[i] - obj_offset], i, fr, <int32_t>st)
    if cur >= 0:
        ext[cur].first = min(ext[cur].first, lo_f)
        ext[cur].last = max(ext[cur].last, hi_f)


def lifetimes(const key_t[::1] obj, int64_t obj_offset, int64_t n_obj, const uint8_t[::1] valid,
              const int64_t[::1] frame, const uint8_t[::1] frame_valid,
              const key2_t[::1] stream, int64_t stream_offset, int64_t n_streams,
              const float[::1] score, const uint8_t[::1] score_valid, int64_t min_frames):
    """Objects living fewer than ``min_frames`` frames, not cut by the start or end of the data.

    A row counts when ``valid`` (its object) and ``frame_valid`` (its frame and stream) hold.
    An object lives from its first to its last frame (``last - first + 1`` frames, gaps
    included); it is cut when its first frame is its stream's first frame or its last frame is
    the stream's last frame, over every row with a valid frame (an empty ``stream``: one
    stream). Returns ``(pos, event, severity, anchor)``: every row of each short-lived object,
    one event per object, severity the mean of its non-null, non-NaN scores (1 without any; at
    least 1e-6), anchor its first row.
    """
    cdef const uint8_t* vp = valid_ptr(valid)
    cdef const uint8_t* fvp = valid_ptr(frame_valid)
    cdef const uint8_t* svp = valid_ptr(score_valid)
    cdef Py_ssize_t n = obj.shape[0], i
    cdef bint has_stream = stream.shape[0] > 0, has_score = score.shape[0] > 0
    cdef int64_t o, ns = max(n_streams, 1) if has_stream else 1, ev = 0, span = 0
    cdef life_t* L
    cdef vector[life_t] life
    cdef vector[extent_t] ext
    cdef vector[int64_t] v_pos, v_ev, anchors, flagged
    cdef vector[float] sev
    cdef life_t blank
    cdef life_t* Q
    cdef extent_t no_extent
    cdef int p
    cdef int parts = row_ranges(n, n_obj + ns, _config.TRACKS_PARALLEL_MIN_ROWS, _config.TRACKS_PARTS)
    if frame.shape[0] != n or (has_stream and stream.shape[0] != n) or (has_score and score.shape[0] != n):
        raise ValueError("object, frame, stream and score columns differ in length")
    blank.first = blank.last = blank.stream = blank.scount = blank.count = 0
    blank.anchor = blank.last_row = blank.event = -1
    blank.ssum = 0.0
    no_extent.first = INT64_MAX
    no_extent.last = INT64_MIN
    with nogil:
        life.assign(parts * n_obj, blank)
        ext.assign(parts * ns, no_extent)
        if n:
            if parts == 1:
                _lives_part(&obj[0], obj_offset, vp, fvp, &frame[0], &stream[0] if has_stream else NULL,
                            stream_offset, has_stream, 0, n, life.data(), ext.data())
            else:
                for p in prange(parts, num_threads=parts, schedule="static"):
                    _lives_part(&obj[0], obj_offset, vp, fvp, &frame[0], &stream[0] if has_stream else NULL,
                                stream_offset, has_stream, n * p // parts, n * (p + 1) // parts,
                                life.data() + p * n_obj, ext.data() + p * ns)
        # merge the parts into the first, in row order: the first part that saw an object has
        # its anchor (and stream), the last one its last row
        for p in range(1, parts):
            for o in range(n_obj):
                Q = &life[p * n_obj + o]
                if Q.anchor < 0:
                    continue
                L = &life[o]
                if L.anchor < 0:
                    L[0] = Q[0]
                    continue
                L.first = min(L.first, Q.first)
                L.last = max(L.last, Q.last)
                L.last_row = Q.last_row
                L.count = min(L.count + Q.count, 3)
            for o in range(ns):
                ext[o].first = min(ext[o].first, ext[p * ns + o].first)
                ext[o].last = max(ext[o].last, ext[p * ns + o].last)
        for o in range(n_obj):
            L = &life[o]
            if L.anchor < 0 or L.last - L.first + 1 >= min_frames:
                continue
            if L.first == ext[L.stream].first or L.last == ext[L.stream].last:
                continue
            L.event = <int32_t>ev
            anchors.push_back(L.anchor)
            flagged.push_back(o)
            if L.count > 2:
                span += L.last_row - L.anchor + 1
            ev += 1
        # rows of the flagged objects: one or two rows are the object's first and last; more
        # sit in a short row range on frame-ordered input, so scan only those ranges unless
        # they add up to the whole table
        if ev and span < n:
            for o in range(ev):
                L = &life[flagged[o]]
                if L.count <= 2:
                    _emit(L.anchor, o, score, svp, has_score, v_pos, v_ev, L)
                    if L.count == 2:
                        _emit(L.last_row, o, score, svp, has_score, v_pos, v_ev, L)
                    continue
                for i in range(L.anchor, L.last_row + 1):
                    if is_valid(fvp, i) and is_valid(vp, i) and obj[i] - obj_offset == flagged[o]:
                        _emit(i, o, score, svp, has_score, v_pos, v_ev, L)
        elif ev:
            for i in range(n):
                if not (is_valid(fvp, i) and is_valid(vp, i)):
                    continue
                L = &life[obj[i] - obj_offset]
                if L.event >= 0:
                    _emit(i, L.event, score, svp, has_score, v_pos, v_ev, L)
        # severity: the mean score of each flagged object's rows (read only at those rows)
        for o in range(ev):
            L = &life[flagged[o]]
            sev.push_back(1.0 if L.scount == 0 else max(<float>(L.ssum / L.scount), <float>1e-6))
    events = to_numpy[int64_t](v_ev)
    return to_numpy[int64_t](v_pos), events, to_numpy[float](sev)[events], to_numpy[int64_t](anchors)


cdef inline bint _by_start(const kv_t& a, const kv_t& b) noexcept nogil:
    return a.first < b.first or (a.first == b.first and a.second < b.second)


cdef bint _insertion_sorted(vector[kv_t]& v, Py_ssize_t budget) noexcept nogil:
    """Sort ``v`` by ``_by_start`` with insertion sort, giving up (False, ``v`` permuted) after
    ``budget`` element moves. Gap pairs come by end row, their starts a few pairs out of place:
    insertion sort takes O(m + displacement) there, where a comparison sort took 0.17 ms for
    5,000 pairs and NumPy's timsort plus its array steps 0.25 ms."""
    cdef Py_ssize_t i, j, n = v.size()
    cdef kv_t x
    for i in range(1, n):
        x = v[i]
        j = i
        while j > 0 and _by_start(x, v[j - 1]):
            v[j] = v[j - 1]
            j -= 1
            budget -= 1
        v[j] = x
        if budget < 0:
            return False
    return True


def gap_events(const float[::1] score, const uint8_t[::1] score_valid, const int64_t[::1] start,
               const int64_t[::1] end):
    """``flicker``'s violations from the gap pairs of ``gaps`` (rows ``start[j]``, ``end[j]``
    around each gap), in one pass: ``(row, event, severity, pairs)``.

    Events are numbered in order of their start row (then end row); each flags its two rows,
    the smaller first. Severity: the mean of the present, non-NaN scores of its two rows (summed in double,
    rounded to float32), at least 1e-6; 1 when neither has one or ``score`` is empty (no score
    column). ``pairs`` (shape (m, 2)): (start, end) in event order. ``tripwire.boxes`` builds
    flicker's Result with it whatever the backend: it wraps results, it is not a check."""
    cdef Py_ssize_t m = start.shape[0], j
    cdef const uint8_t* sv = valid_ptr(score_valid)
    cdef bint has_score = score.shape[0] > 0
    cdef int64_t a, b
    cdef float mean
    cdef vector[kv_t] order
    if end.shape[0] != m:
        raise ValueError("start and end differ in length")
    rows = np.empty(2 * m, dtype=np.int64)
    events = np.empty(2 * m, dtype=np.int64)
    severity = np.empty(2 * m, dtype=np.float32)
    pairs = np.empty((m, 2), dtype=np.int64)
    cdef int64_t[::1] o_row = rows, o_ev = events
    cdef float[::1] o_sev = severity
    cdef int64_t[:, ::1] o_pairs = pairs
    with nogil:
        order.resize(m)
        for j in range(m):
            order[j].first = start[j]
            order[j].second = end[j]
        if not _insertion_sorted(order, 8 * m):
            cpp_sort(order.begin(), order.end(), _by_start)
        for j in range(m):
            a = order[j].first
            b = order[j].second
            o_pairs[j, 0] = a
            o_pairs[j, 1] = b
            o_row[2 * j] = min(a, b)
            o_row[2 * j + 1] = max(a, b)
            o_ev[2 * j] = j
            o_ev[2 * j + 1] = j
            if has_score:
                mean = mean_of_two_scores(score[a], is_valid(sv, a), score[b], is_valid(sv, b))
            else:
                mean = 1
            o_sev[2 * j] = mean
            o_sev[2 * j + 1] = mean
    return rows, events, severity, pairs


def pair_codes(const key_t[::1] a, int64_t a_offset, const key2_t[::1] b, int64_t b_offset, int64_t nb):
    """One key per row from two dense codes: ``(a - a_offset) * nb + (b - b_offset)``, in one
    pass. ``tripwire.boxes`` keys tracks by (stream, track) with it, whatever the backend: it
    is input preparation, not a check."""
    cdef Py_ssize_t n = a.shape[0], i
    if b.shape[0] != n:
        raise ValueError("code columns differ in length")
    out = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] o = out
    cdef int64_t base = -(a_offset * nb + b_offset)
    with nogil:
        for i in range(n):
            o[i] = a[i] * nb + b[i] + base
    return out
