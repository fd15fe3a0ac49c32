# cython: language_level=3
"""Helpers shared by every Cython kernel family (inline: compiled into each module that
cimports them). Kernels take validity as a byte array that is empty when there are no nulls."""
import numpy as np
cimport numpy as cnp
from libc.math cimport isfinite, NAN
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcpy
from libcpp.algorithm cimport sort as cpp_sort
from libcpp.pair cimport pair
from libcpp.vector cimport vector

from _types cimport key_t


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define tw_unlikely(x) __builtin_expect(!!(x), 0)
    #else
    #define tw_unlikely(x) (x)
    #endif
    """
    bint tw_unlikely(bint) nogil  # a branch the compiler should lay out of the loop's way


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
# find_root and join (tw_find_root, tw_join) are defined in C below, where the pair kernels use them.


# a candidate match: ((-iou, -last frame), (active slot, box)); the default pair order is the
# greedy order (highest IoU, then most recent, then oldest object, then earlier box)
ctypedef pair[pair[float, int64_t], pair[int64_t, int64_t]] cand_t


# ---- the IoU pair test, 8 boxes at a time (boxes.multibox, match_frame, their Monitor twins) ----
# One box against a block of 8 boxes without a branch: the frame's boxes sit in a padded
# structure of arrays (x1 | y1 | x2 | y2 | area, each ``stride`` = a multiple of 8 long, NaN past
# the frame), and only the few linked pairs are visited (bits of a mask). Two builds of the same
# float32 operations in the same order as the scalar test (so the same links): AVX2 intrinsics,
# picked at run time on x86-64 CPUs that have it, and portable C. setup.py builds with
# -ffp-contract=off (a fused multiply-add would round differently). NaN fails every comparison;
# a box with a non-finite coordinate has a NaN or infinite area, which fails one too.
cdef extern from * nogil:
    """
    #include <math.h>
    #include <stdint.h>
    #include <utility>
    #include <vector>
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(TRIPWIRE_NO_TARGET_CLONES)
    #define TW_HAVE_AVX2 1
    #include <immintrin.h>
    #endif

    static inline int64_t tw_find_root(int64_t* parent, int64_t i) {
        while (parent[i] != i) {
            parent[i] = parent[parent[i]];  /* path halving */
            i = parent[i];
        }
        return i;
    }

    /* Union by size of the groups of i and j. */
    static inline void tw_join(int64_t* parent, int64_t* size, int64_t i, int64_t j) {
        int64_t a = tw_find_root(parent, i), b = tw_find_root(parent, j);
        if (a == b) return;
        if (size[a] < size[b]) { int64_t t = a; a = b; b = t; }
        parent[b] = a;
        size[a] += size[b];
    }

    /* Bit l: box p (px1 .. py2, area pa) and box b + l of q are linked: ix > 0, iy > 0 and
     * inter >= t * union. The _iu form also stores each lane's intersection and union (iv, uv:
     * 8 floats each) for the pairs that become candidates, so they are not recomputed per pair;
     * the plain form is the same code with no outputs (the stores vanish once inlined). */
    __attribute__((always_inline))
    static inline unsigned tw_block8_iu_portable(float px1, float py1, float px2, float py2, float pa, float t,
                                                 const float* q, int64_t stride, int64_t b, float* iv, float* uv) {
        unsigned bits = 0;
        for (int l = 0; l < 8; l++) {
            float qx1 = q[b + l], qy1 = q[stride + b + l], qx2 = q[2 * stride + b + l];
            float qy2 = q[3 * stride + b + l], qa = q[4 * stride + b + l];
            float ix = (qx2 < px2 ? qx2 : px2) - (qx1 > px1 ? qx1 : px1);
            float iy = (qy2 < py2 ? qy2 : py2) - (qy1 > py1 ? qy1 : py1);
            float inter = ix * iy;
            float uni = (pa + qa) - inter;
            if (iv) { iv[l] = inter; uv[l] = uni; }
            bits |= (unsigned)((ix > 0.0f) & (iy > 0.0f) & (inter >= t * uni)) << l;
        }
        return bits;
    }

    static inline unsigned tw_block8_portable(float px1, float py1, float px2, float py2, float pa, float t,
                                              const float* q, int64_t stride, int64_t b) {
        return tw_block8_iu_portable(px1, py1, px2, py2, pa, t, q, stride, b, NULL, NULL);
    }

    #ifdef TW_HAVE_AVX2
    /* The vector tests' lanes (type V, intrinsics prefix P: 8 with AVX2, 16 with AVX-512F):
     * ix, iy, inter and uni of box p against the boxes of q from b, and a zero vector; the
     * same float32 operations in the same order as the scalar test. */
    #define TW_IU_LANES(V, P) \
        const float* r = q + b; \
        V qx1 = P##_loadu_ps(r), qy1 = P##_loadu_ps(r + stride); \
        V qx2 = P##_loadu_ps(r + 2 * stride), qy2 = P##_loadu_ps(r + 3 * stride); \
        V qa = P##_loadu_ps(r + 4 * stride), zero = P##_setzero_ps(); \
        V ix = P##_sub_ps(P##_min_ps(qx2, P##_set1_ps(px2)), P##_max_ps(qx1, P##_set1_ps(px1))); \
        V iy = P##_sub_ps(P##_min_ps(qy2, P##_set1_ps(py2)), P##_max_ps(qy1, P##_set1_ps(py1))); \
        V inter = P##_mul_ps(ix, iy); \
        V uni = P##_sub_ps(P##_add_ps(P##_set1_ps(pa), qa), inter);

    /* The same test, 8 lanes at once (vminps / vmaxps: a < b ? a : b, as above). */
    __attribute__((target("avx2"), always_inline))
    static inline unsigned tw_block8_iu_avx2(float px1, float py1, float px2, float py2, float pa, float t,
                                             const float* q, int64_t stride, int64_t b, float* iv, float* uv) {
        TW_IU_LANES(__m256, _mm256)
        __m256 hit = _mm256_and_ps(_mm256_and_ps(_mm256_cmp_ps(ix, zero, _CMP_GT_OQ), _mm256_cmp_ps(iy, zero, _CMP_GT_OQ)),
                                   _mm256_cmp_ps(inter, _mm256_mul_ps(_mm256_set1_ps(t), uni), _CMP_GE_OQ));
        if (iv) {
            _mm256_storeu_ps(iv, inter);
            _mm256_storeu_ps(uv, uni);
        }
        return (unsigned)_mm256_movemask_ps(hit);
    }

    /* 16 lanes at once (AVX-512F), for the association's pair search: at 10 to 30 boxes a frame
     * an object needs half the block tests, and a mask compare gives the bits directly. Same
     * operations in the same order (vminps / vmaxps as above). */
    __attribute__((target("avx512f"), always_inline))
    static inline unsigned tw_block16_iu_avx512(float px1, float py1, float px2, float py2, float pa, float t,
                                                const float* q, int64_t stride, int64_t b, float* iv, float* uv) {
        TW_IU_LANES(__m512, _mm512)
        __mmask16 hit = _mm512_cmp_ps_mask(ix, zero, _CMP_GT_OQ) & _mm512_cmp_ps_mask(iy, zero, _CMP_GT_OQ)
                        & _mm512_cmp_ps_mask(inter, _mm512_mul_ps(_mm512_set1_ps(t), uni), _CMP_GE_OQ);
        _mm512_storeu_ps(iv, inter);
        _mm512_storeu_ps(uv, uni);
        return (unsigned)hit;
    }

    __attribute__((target("avx2"), always_inline))
    static inline unsigned tw_block8_avx2(float px1, float py1, float px2, float py2, float pa, float t,
                                          const float* q, int64_t stride, int64_t b) {
        return tw_block8_iu_avx2(px1, py1, px2, py2, pa, t, q, stride, b, NULL, NULL);
    }
    #endif

    /* Blocks' bounding boxes (tw_pad_by_x's bb: min x1 | max x2 | min y1 | max y2, each nbp
     * long, for blocks of bs boxes, tested bs blocks at a time): bit l: block k + l may hold a
     * box that overlaps (px1 .. py2). */
    #define TW_BB_STRIDE(stride, bs) ((((stride) / (bs)) + (bs) - 1) & ~(int64_t)((bs) - 1))
    static inline unsigned tw_bb8_portable(const float* bb, int64_t nbp, int64_t k, float px1, float py1,
                                           float px2, float py2) {
        unsigned bits = 0;
        for (int l = 0; l < 8; l++)
            bits |= (unsigned)((bb[k + l] < px2) & (bb[nbp + k + l] > px1) & (bb[2 * nbp + k + l] < py2)
                               & (bb[3 * nbp + k + l] > py1)) << l;
        return bits;
    }

    #ifdef TW_HAVE_AVX2
    __attribute__((target("avx2"), always_inline))
    static inline unsigned tw_bb8_avx2(const float* bb, int64_t nbp, int64_t k, float px1, float py1, float px2,
                                       float py2) {
        const float* r = bb + k;
        __m256 hit = _mm256_and_ps(
            _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(r), _mm256_set1_ps(px2), _CMP_LT_OQ),
                          _mm256_cmp_ps(_mm256_loadu_ps(r + nbp), _mm256_set1_ps(px1), _CMP_GT_OQ)),
            _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(r + 2 * nbp), _mm256_set1_ps(py2), _CMP_LT_OQ),
                          _mm256_cmp_ps(_mm256_loadu_ps(r + 3 * nbp), _mm256_set1_ps(py1), _CMP_GT_OQ)));
        return (unsigned)_mm256_movemask_ps(hit);
    }

    __attribute__((target("avx512f"), always_inline))
    static inline unsigned tw_bb16_avx512(const float* bb, int64_t nbp, int64_t k, float px1, float py1, float px2,
                                          float py2) {
        const float* r = bb + k;
        return (unsigned)(_mm512_cmp_ps_mask(_mm512_loadu_ps(r), _mm512_set1_ps(px2), _CMP_LT_OQ)
                          & _mm512_cmp_ps_mask(_mm512_loadu_ps(r + nbp), _mm512_set1_ps(px1), _CMP_GT_OQ)
                          & _mm512_cmp_ps_mask(_mm512_loadu_ps(r + 2 * nbp), _mm512_set1_ps(py2), _CMP_LT_OQ)
                          & _mm512_cmp_ps_mask(_mm512_loadu_ps(r + 3 * nbp), _mm512_set1_ps(py1), _CMP_GT_OQ));
    }
    #endif

    typedef std::pair<std::pair<float, int64_t>, std::pair<int64_t, int64_t> > tw_cand_t;

    /* A linked (object, box) pair as the pair loops find it: its intersection and union (the
     * IoU, a division, is needed only to order pairs that compete for an object or a box). */
    typedef struct { float inter, uni; int32_t a, j; } tw_pcand_t;

    /* The linked pairs a pair loop finds: buf's first n. buf only grows (no per-frame clearing
     * or constructing), so a loop may write a pair before it knows whether it keeps it. */
    struct tw_pairs {
        std::vector<tw_pcand_t> buf;
        size_t n = 0;
        /* room for k more pairs at the returned pointer */
        tw_pcand_t* room(size_t k) {
            if (buf.size() < n + k) buf.resize(2 * (n + k));
            return buf.data() + n;
        }
    };

    /* Field by field: a struct built on the stack and copied in as one 16-byte load stalls on
     * store forwarding (its halves were just stored separately). */
    static inline void tw_put_pair(tw_pcand_t* c, float inter, float uni, int64_t a, int64_t j) {
        c->inter = inter;
        c->uni = uni;
        c->a = (int32_t)a;
        c->j = (int32_t)j;
    }

    static inline void tw_push_pair(tw_pairs& v, float inter, float uni, int64_t a, int64_t j) {
        tw_put_pair(v.room(1), inter, uni, a, j);
        v.n++;
    }

    /* The greedy order's key of a pair: -IoU, as a float division (in C: no zero check). */
    static inline float tw_neg_iou(const tw_pcand_t* p) { return -(p->inter / p->uni); }

    /* tw_match_cands: every (object a, box j) of one class that is linked, pushed as (inter,
     * union, a, j) in (a, j) order; the object's area is computed here as the scalar code does.
     * STEP boxes a block test (the padded stride is a multiple of 16). */
    #define TW_MATCH_CANDS(SFX, ATTR, BLOCK_IU, STEP) \
    template <typename K> \
    ATTR static void tw_match_cands_##SFX(const float* ax1, const float* ay1, const float* ax2, const float* ay2, \
                                          const int64_t* acls, int64_t n_act, const float* q, \
                                          int64_t stride, const K* bcls, int64_t m, float t, \
                                          tw_pairs& cands) { \
        for (int64_t a = 0; a < n_act; a++) { \
            float px1 = ax1[a], py1 = ay1[a], px2 = ax2[a], py2 = ay2[a]; \
            float pa = (px2 - px1) * (py2 - py1); \
            for (int64_t b = 0; b < m; b += STEP) { \
                float iv[STEP], uv[STEP]; \
                unsigned bits = BLOCK_IU(px1, py1, px2, py2, pa, t, q, stride, b, iv, uv); \
                while (bits) { \
                    int l = __builtin_ctz(bits); \
                    int64_t j = b + l; \
                    bits &= bits - 1; \
                    if (bcls[j] != acls[a]) continue; \
                    tw_push_pair(cands, iv[l], uv[l], a, j); \
                } \
            } \
        } \
    }

    /* The frame-level loops, once per build of the 8-lane block test (SFX, ATTR, BLOCK).
     * tw_link_frame: union-find over the m boxes of q, joining every linked pair i < j of
     * boxes with ok set; and tw_match_cands (above). */
    #define TW_PAIR_LOOPS(SFX, ATTR, BLOCK, BLOCK_IU) \
    ATTR static void tw_link_frame_##SFX(const float* q, int64_t stride, int64_t m, const uint8_t* ok, float t, \
                                         int64_t* parent, int64_t* size) { \
        for (int64_t i = 0; i + 1 < m; i++) { \
            if (!ok[i]) continue; \
            float px1 = q[i], py1 = q[stride + i], px2 = q[2 * stride + i], py2 = q[3 * stride + i]; \
            float pa = q[4 * stride + i]; \
            int64_t b = (i + 1) & ~(int64_t)7; \
            unsigned bits = BLOCK(px1, py1, px2, py2, pa, t, q, stride, b) & (0xFFu << ((i + 1) & 7)); \
            for (;;) { \
                while (bits) { \
                    int64_t j = b + __builtin_ctz(bits); \
                    bits &= bits - 1; \
                    if (ok[j]) tw_join(parent, size, i, j); \
                } \
                b += 8; \
                if (b >= m) break; \
                bits = BLOCK(px1, py1, px2, py2, pa, t, q, stride, b); \
            } \
        } \
    } \
    TW_MATCH_CANDS(SFX, ATTR, BLOCK_IU, 8)

    /* tw_match_cands over boxes grouped by x (tw_pad_by_x): a block is tested only when its
     * bounding box overlaps the object's (ix > 0 needs qx1 < px2 and px1 < qx2, so a block
     * whose boxes all miss that is skipped, exactly; BB tests BS blocks of BS boxes at once);
     * perm maps q's boxes back to j. */
    #define TW_PAIR_LOOPS_BY_X(SFX, ATTR, BLOCK_IU, BB, BS) \
    template <typename K> \
    ATTR static void tw_match_cands_by_x_##SFX(const float* ax1, const float* ay1, const float* ax2, const float* ay2, \
                                               const int64_t* acls, int64_t n_act, const float* q, \
                                               int64_t stride, const int64_t* perm, const float* bb, const K* bcls, \
                                               float t, tw_pairs& cands) { \
        int64_t nb = stride / BS, nbp = TW_BB_STRIDE(stride, BS); \
        for (int64_t a = 0; a < n_act; a++) { \
            float px1 = ax1[a], py1 = ay1[a], px2 = ax2[a], py2 = ay2[a]; \
            float pa = (px2 - px1) * (py2 - py1); \
            for (int64_t k0 = 0; k0 < nb; k0 += BS) { \
                unsigned near = BB(bb, nbp, k0, px1, py1, px2, py2); \
                while (near) { \
                    int64_t b = (k0 + __builtin_ctz(near)) * BS; \
                    near &= near - 1; \
                    float iv[BS], uv[BS]; \
                    unsigned bits = BLOCK_IU(px1, py1, px2, py2, pa, t, q, stride, b, iv, uv); \
                    while (bits) { \
                        int l = __builtin_ctz(bits); \
                        int64_t j = perm[b + l]; \
                        bits &= bits - 1; \
                        if (bcls[j] != acls[a]) continue; \
                        tw_push_pair(cands, iv[l], uv[l], a, j); \
                    } \
                } \
            } \
        } \
    }

    TW_PAIR_LOOPS(portable, , tw_block8_portable, tw_block8_iu_portable)
    TW_PAIR_LOOPS_BY_X(portable, , tw_block8_iu_portable, tw_bb8_portable, 8)
    #ifdef TW_HAVE_AVX2
    TW_PAIR_LOOPS(avx2, __attribute__((target("avx2"))), tw_block8_avx2, tw_block8_iu_avx2)
    TW_PAIR_LOOPS_BY_X(avx2, __attribute__((target("avx2"))), tw_block8_iu_avx2, tw_bb8_avx2, 8)
    TW_MATCH_CANDS(avx512, __attribute__((target("avx512f"))), tw_block16_iu_avx512, 16)
    TW_PAIR_LOOPS_BY_X(avx512, __attribute__((target("avx512f"))), tw_block16_iu_avx512, tw_bb16_avx512, 16)
    #endif

    /* The build in use in this module: 2 AVX-512F (the association's pair search; AVX2 for the
     * rest), 1 AVX2, 0 portable; -1 until first asked. */
    static int tw_simd_level = -1;

    static inline int tw_simd_best(void) {
    #ifdef TW_HAVE_AVX2
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
    #else
        return 0;
    #endif
    }

    /* Use build level (capped at what this CPU has; < 0: the best); returns the one in use. */
    static inline int tw_set_simd(int level) {
        int best = tw_simd_best();
        tw_simd_level = (level < 0 || level > best) ? best : level;
        return tw_simd_level;
    }

    static inline int tw_simd(void) {
        if (tw_simd_level < 0) tw_simd_level = tw_simd_best();
        return tw_simd_level;
    }

    static inline void tw_link_frame(const float* q, int64_t stride, int64_t m, const uint8_t* ok, float t,
                                     int64_t* parent, int64_t* size) {
    #ifdef TW_HAVE_AVX2
        if (tw_simd()) { tw_link_frame_avx2(q, stride, m, ok, t, parent, size); return; }
    #endif
        tw_link_frame_portable(q, stride, m, ok, t, parent, size);
    }

    /* Box j at lane k of q (x1 | y1 | x2 | y2 | area, each stride long), its area computed as
     * pad_boxes does: the grouped layouts below. */
    static inline void tw_put_box(const float* x1, const float* y1, const float* x2, const float* y2, int64_t j,
                                  float* q, int64_t stride, int64_t k) {
        q[k] = x1[j];
        q[stride + k] = y1[j];
        q[2 * stride + k] = x2[j];
        q[3 * stride + k] = y2[j];
        q[4 * stride + k] = (x2[j] - x1[j]) * (y2[j] - y1[j]);
    }

    #define TW_MAX_XBUCKETS 256

    /* The m boxes as the pair kernels read them (q: x1 | y1 | x2 | y2 | area, each stride long,
     * NaN padded), grouped by x1 (a counting sort into about four buckets per block of bs over
     * the frame's x1 range: blocks nearly as narrow as a full sort makes them, 2.44 blocks near
     * an object on the bench's tracks at 100 a frame against 2.75 with one bucket a block and
     * 2.41 sorted) so that each block covers a narrow strip; perm[k]: the box at q's k.
     * bb: each block's min x1 | max x2 | min y1 | max y2 over its boxes, each TW_BB_STRIDE long
     * (NaN left out: such a box links to nothing; a block without a number, and the padding
     * past the last block: +inf | -inf, never tested). */
    static void tw_pad_by_x(const float* x1, const float* y1, const float* x2, const float* y2, int64_t m,
                            float* q, int64_t stride, int64_t* perm, float* bb, int64_t bs) {
        int64_t nb = stride / bs, nbuck = 4 * nb < TW_MAX_XBUCKETS ? 4 * nb : TW_MAX_XBUCKETS;
        int64_t start[TW_MAX_XBUCKETS + 2];
        for (int64_t k = 0; k <= nbuck + 1; k++) start[k] = 0;
        float lo = INFINITY, hi = -INFINITY, scale = 0.0f;
        for (int64_t j = 0; j < m; j++) {
            float v = x1[j];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (isfinite(lo) && isfinite(hi) && hi > lo && isfinite(hi - lo)) scale = (float)nbuck / (hi - lo);
        /* bucket of a box: (x1 - lo) * scale, clamped; NaN or infinite x1: the last one */
        #define TW_BUCKET(v) (!((v) >= lo && (v) <= hi) ? nbuck : \
                              ((v) - lo) * scale < (float)nbuck ? (int64_t)(((v) - lo) * scale) : nbuck - 1)
        for (int64_t j = 0; j < m; j++) start[TW_BUCKET(x1[j]) + 1]++;
        for (int64_t k = 1; k <= nbuck + 1; k++) start[k] += start[k - 1];
        for (int64_t j = 0; j < m; j++) {
            int64_t k = start[TW_BUCKET(x1[j])]++;
            perm[k] = j;
            tw_put_box(x1, y1, x2, y2, j, q, stride, k);
        }
        #undef TW_BUCKET
        for (int64_t k = m; k < stride; k++)
            q[k] = q[stride + k] = q[2 * stride + k] = q[3 * stride + k] = q[4 * stride + k] = NAN;
        int64_t nbp = TW_BB_STRIDE(stride, bs);
        for (int64_t b = 0; b < nbp; b++) {  /* blocks past nb: none of their boxes, never tested */
            float bx1 = INFINITY, bx2 = -INFINITY, by1 = INFINITY, by2 = -INFINITY;
            for (int64_t k = b * bs; b < nb && k < (b + 1) * bs; k++) {
                bx1 = q[k] < bx1 ? q[k] : bx1;
                bx2 = q[2 * stride + k] > bx2 ? q[2 * stride + k] : bx2;
                by1 = q[stride + k] < by1 ? q[stride + k] : by1;
                by2 = q[3 * stride + k] > by2 ? q[3 * stride + k] : by2;
            }
            bb[b] = bx1;
            bb[nbp + b] = bx2;
            bb[2 * nbp + b] = by1;
            bb[3 * nbp + b] = by2;
        }
    }

    /* Blocks of bs boxes (16: the AVX-512 build, as tw_pad_by_x grouped them). */
    template <typename K>
    static inline void tw_match_cands_by_x(const float* ax1, const float* ay1, const float* ax2, const float* ay2,
                                           const int64_t* acls, int64_t n_act, const float* q,
                                           int64_t stride, const int64_t* perm, const float* bb, const K* bcls,
                                           float t, int64_t bs, tw_pairs& cands) {
    #ifdef TW_HAVE_AVX2
        if (bs == 16) {
            tw_match_cands_by_x_avx512(ax1, ay1, ax2, ay2, acls, n_act, q, stride, perm, bb, bcls, t, cands);
            return;
        }
        if (tw_simd()) {
            tw_match_cands_by_x_avx2(ax1, ay1, ax2, ay2, acls, n_act, q, stride, perm, bb, bcls, t, cands);
            return;
        }
    #endif
        tw_match_cands_by_x_portable(ax1, ay1, ax2, ay2, acls, n_act, q, stride, perm, bb, bcls, t, cands);
    }

    template <typename K>
    static inline void tw_match_cands(const float* ax1, const float* ay1, const float* ax2, const float* ay2,
                                      const int64_t* acls, int64_t n_act, const float* q,
                                      int64_t stride, const K* bcls, int64_t m, float t,
                                      tw_pairs& cands) {
    #ifdef TW_HAVE_AVX2
        int level = tw_simd();
        if (level >= 2) { tw_match_cands_avx512(ax1, ay1, ax2, ay2, acls, n_act, q, stride, bcls, m, t, cands); return; }
        if (level) { tw_match_cands_avx2(ax1, ay1, ax2, ay2, acls, n_act, q, stride, bcls, m, t, cands); return; }
    #endif
        tw_match_cands_portable(ax1, ay1, ax2, ay2, acls, n_act, q, stride, bcls, m, t, cands);
    }

    /* Class codes a frame's boxes may span to be grouped by class (a counting sort over them). */
    #define TW_MAX_CLS_SPAN 64

    /* A frame's boxes grouped by class: codes lo .. lo + span - 1; class c's boxes at q's
     * begin[c - lo] .. end[c - lo], each class from a block boundary of bs (so an object meets
     * ceil(count / bs) blocks; the pair loop is picked by bs), stride: the sum of the classes'
     * whole blocks. */
    typedef struct {
        int64_t lo, span, largest, stride, bs;
        int64_t begin[TW_MAX_CLS_SPAN], end[TW_MAX_CLS_SPAN];
    } tw_cls_groups;

    /* Step one: g for the m class codes and blocks of bs. Returns false (g unset but lo and
     * span) when the codes span more than TW_MAX_CLS_SPAN. */
    template <typename K>
    static bool tw_cls_group(const K* cls, int64_t m, int64_t bs, tw_cls_groups* g) {
        int64_t l = (int64_t)cls[0], h = l, at = 0;
        for (int64_t j = 1; j < m; j++) {
            int64_t c = (int64_t)cls[j];
            l = c < l ? c : l;
            h = c > h ? c : h;
        }
        g->lo = l;
        g->span = 0;
        g->bs = bs;
        if ((uint64_t)h - (uint64_t)l >= TW_MAX_CLS_SPAN) return false;  /* unsigned: no overflow */
        g->span = h - l + 1;
        for (int64_t c = 0; c < g->span; c++) g->end[c] = 0;
        for (int64_t j = 0; j < m; j++) g->end[(int64_t)cls[j] - l]++;
        g->largest = 0;
        for (int64_t c = 0; c < g->span; c++) {
            int64_t n = g->end[c];
            g->largest = n > g->largest ? n : g->largest;
            g->begin[c] = at;
            g->end[c] = at;  /* tw_pad_by_cls moves it to the class's end */
            at += (n + bs - 1) & ~(bs - 1);
        }
        g->stride = at;
        return true;
    }

    /* Step two: q (x1 | y1 | x2 | y2 | area, each g->stride long) in class order (stable);
     * perm[k]: the box at q's k. Lanes between classes are left as they were: the pair loop
     * masks them. */
    template <typename K>
    static void tw_pad_by_cls(const float* x1, const float* y1, const float* x2, const float* y2, const K* cls,
                              int64_t m, float* q, int64_t* perm, tw_cls_groups* g) {
        int64_t stride = g->stride;
        for (int64_t j = 0; j < m; j++) {
            int64_t k = g->end[(int64_t)cls[j] - g->lo]++;
            perm[k] = j;
            tw_put_box(x1, y1, x2, y2, j, q, stride, k);
        }
    }

    /* tw_match_cands over boxes grouped by class (tw_pad_by_cls): an object meets only the blocks
     * of its class, and only its class's lanes (so no class test); perm maps q back to j. */
    #define TW_MATCH_CANDS_BY_CLS(SFX, ATTR, BLOCK_IU, STEP) \
    ATTR static void tw_match_cands_by_cls_##SFX(const float* ax1, const float* ay1, const float* ax2, \
                                                 const float* ay2, const int64_t* acls, int64_t n_act, \
                                                 const float* q, const int64_t* perm, const tw_cls_groups* g, \
                                                 float t, tw_pairs& cands) { \
        int64_t stride = g->stride; \
        for (int64_t a = 0; a < n_act; a++) { \
            uint64_t c = (uint64_t)acls[a] - (uint64_t)g->lo;  /* a class outside the span: huge */ \
            if (c >= (uint64_t)g->span) continue; \
            int64_t e = g->end[c]; \
            float px1 = ax1[a], py1 = ay1[a], px2 = ax2[a], py2 = ay2[a]; \
            float pa = (px2 - px1) * (py2 - py1); \
            for (int64_t b = g->begin[c]; b < e; b += STEP) { \
                float iv[STEP], uv[STEP]; \
                unsigned bits = BLOCK_IU(px1, py1, px2, py2, pa, t, q, stride, b, iv, uv); \
                if (e - b < STEP) bits &= (1u << (e - b)) - 1u; \
                /* the first hit written whether there is one or not (lane 0 when none), kept \
                 * by the count: most blocks hold no hit or one, unpredictably */ \
                int l = __builtin_ctz(bits | (1u << STEP)) & (STEP - 1); \
                tw_put_pair(cands.room(1), iv[l], uv[l], a, perm[b + l]); \
                cands.n += bits != 0; \
                bits &= bits - 1; \
                while (bits) { \
                    l = __builtin_ctz(bits); \
                    bits &= bits - 1; \
                    tw_push_pair(cands, iv[l], uv[l], a, perm[b + l]); \
                } \
            } \
        } \
    }

    TW_MATCH_CANDS_BY_CLS(portable, , tw_block8_iu_portable, 8)
    #ifdef TW_HAVE_AVX2
    TW_MATCH_CANDS_BY_CLS(avx2, __attribute__((target("avx2"))), tw_block8_iu_avx2, 8)
    TW_MATCH_CANDS_BY_CLS(avx512, __attribute__((target("avx512f"))), tw_block16_iu_avx512, 16)
    #endif

    static inline void tw_match_cands_by_cls(const float* ax1, const float* ay1, const float* ax2, const float* ay2,
                                             const int64_t* acls, int64_t n_act, const float* q, const int64_t* perm,
                                             const tw_cls_groups* g, float t, tw_pairs& cands) {
    #ifdef TW_HAVE_AVX2
        if (g->bs == 16) { tw_match_cands_by_cls_avx512(ax1, ay1, ax2, ay2, acls, n_act, q, perm, g, t, cands); return; }
        if (tw_simd()) { tw_match_cands_by_cls_avx2(ax1, ay1, ax2, ay2, acls, n_act, q, perm, g, t, cands); return; }
    #endif
        tw_match_cands_by_cls_portable(ax1, ay1, ax2, ay2, acls, n_act, q, perm, g, t, cands);
    }
    """
    ctypedef struct pcand_t "tw_pcand_t":
        float inter, uni
        int32_t a, j
    cppclass pairs_t "tw_pairs":
        vector[pcand_t] buf
        size_t n
    float tw_neg_iou(const pcand_t* p)
    int64_t tw_bb_stride "TW_BB_STRIDE"(int64_t stride, int64_t bs)
    int64_t find_root "tw_find_root"(int64_t* parent, int64_t i)
    void join "tw_join"(int64_t* parent, int64_t* size, int64_t i, int64_t j)
    int tw_set_simd(int level)
    int tw_simd()
    void tw_link_frame(const float* q, int64_t stride, int64_t m, const uint8_t* ok, float t, int64_t* parent,
                       int64_t* size)
    # templates over the boxes' class code type in C++: one declaration per key width
    void tw_match_cands(const float* ax1, const float* ay1, const float* ax2, const float* ay2, const int64_t* acls,
                        int64_t n_act, const float* q, int64_t stride, const int32_t* bcls,
                        int64_t m, float t, pairs_t& cands)
    void tw_match_cands(const float* ax1, const float* ay1, const float* ax2, const float* ay2, const int64_t* acls,
                        int64_t n_act, const float* q, int64_t stride, const int64_t* bcls,
                        int64_t m, float t, pairs_t& cands)
    enum: TW_MAX_CLS_SPAN
    ctypedef struct cls_groups_t "tw_cls_groups":
        int64_t lo, span, largest, stride
    bint tw_cls_group(const int32_t* cls, int64_t m, int64_t bs, cls_groups_t* g)
    bint tw_cls_group(const int64_t* cls, int64_t m, int64_t bs, cls_groups_t* g)
    void tw_pad_by_cls(const float* x1, const float* y1, const float* x2, const float* y2, const int32_t* cls,
                       int64_t m, float* q, int64_t* perm, cls_groups_t* g)
    void tw_pad_by_cls(const float* x1, const float* y1, const float* x2, const float* y2, const int64_t* cls,
                       int64_t m, float* q, int64_t* perm, cls_groups_t* g)
    void tw_match_cands_by_cls(const float* ax1, const float* ay1, const float* ax2, const float* ay2,
                               const int64_t* acls, int64_t n_act, const float* q, const int64_t* perm,
                               const cls_groups_t* g, float t, pairs_t& cands)
    void tw_pad_by_x(const float* x1, const float* y1, const float* x2, const float* y2, int64_t m, float* q,
                     int64_t stride, int64_t* perm, float* bb, int64_t bs)
    void tw_match_cands_by_x(const float* ax1, const float* ay1, const float* ax2, const float* ay2,
                             const int64_t* acls, int64_t n_act, const float* q,
                             int64_t stride, const int64_t* perm, const float* bb, const int32_t* bcls, float t,
                             int64_t bs, pairs_t& cands)
    void tw_match_cands_by_x(const float* ax1, const float* ay1, const float* ax2, const float* ay2,
                             const int64_t* acls, int64_t n_act, const float* q,
                             int64_t stride, const int64_t* perm, const float* bb, const int64_t* bcls, float t,
                             int64_t bs, pairs_t& cands)


cdef inline int64_t pad_boxes(const float* x1, const float* y1, const float* x2, const float* y2, Py_ssize_t m,
                              vector[float]& q) noexcept nogil:
    """The ``m`` boxes at ``x1 .. y2`` as the pair kernels read them: ``q`` = x1 | y1 | x2 | y2 |
    area, each ``stride`` (returned: ``m`` rounded up to 16, for blocks of 8 or 16) long, NaN
    past ``m``."""
    cdef int64_t stride = (m + 15) & ~15, j
    cdef float* p
    q.resize(5 * stride)
    p = q.data()
    for j in range(m):
        p[j] = x1[j]
        p[stride + j] = y1[j]
        p[2 * stride + j] = x2[j]
        p[3 * stride + j] = y2[j]
        p[4 * stride + j] = (x2[j] - x1[j]) * (y2[j] - y1[j])
    for j in range(m, stride):
        p[j] = p[stride + j] = p[2 * stride + j] = p[3 * stride + j] = p[4 * stride + j] = NAN
    return stride


cdef inline void link_overlaps(const float* x1, const float* y1, const float* x2, const float* y2,
                               Py_ssize_t m, float t, vector[int64_t]& parent, vector[int64_t]& size,
                               vector[float]& boxes, vector[uint8_t]& ok) noexcept nogil:
    """Union-find over the ``m`` boxes at ``x1 .. y2`` (one frame): ``parent`` and ``size``
    (resized to ``m``) join every pair with IoU >= ``t`` (``inter >= t * union``); a box with a
    non-finite coordinate joins nothing. ``boxes`` and ``ok`` are scratch. Shared by
    ``_boxes_cy.multibox`` (the batch kernel) and ``_monitor_cy._mb_group`` (the Monitor's), so
    that both link identically."""
    cdef Py_ssize_t i
    cdef int64_t stride
    parent.resize(m)
    size.resize(m)
    ok.resize(m)
    for i in range(m):
        parent[i] = i
        size[i] = 1
        ok[i] = isfinite(x1[i]) and isfinite(y1[i]) and isfinite(x2[i]) and isfinite(y2[i])
    stride = pad_boxes(x1, y1, x2, y2, m, boxes)
    tw_link_frame(boxes.data(), stride, m, ok.data(), t, parent.data(), size.data())


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
    for i in range(m):  # a joined box's size is at most its root's: the largest group's size is here
        if size[i] >= min_boxes:
            break
    else:
        return  # the common frame: no group large enough
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
cdef enum:
    # boxes in a frame above which match_frame groups them by x first: below, testing every
    # block of 8 costs fewer instructions than grouping and testing the blocks' bounds
    # (callgrind of associate on the bench's tracks: 17 % fewer at 30 boxes a frame, about
    # even at 48, 22 % more at 100)
    MATCH_BY_X_MIN = 48
    # the same with blocks of 16 (AVX-512: grouped blocks of 16, 16 bounds at a time): testing
    # every block stays cheaper longer (associate alone, one thread, on the bench's tracks,
    # grouping against testing all: 0.79x at 64 boxes a frame, 0.93x at 100, 1.14x at 150,
    # 1.33x at 250)
    MATCH_BY_X_MIN_16 = 128


# match_frame's scratch, kept by the caller between frames. In C++ for its member initializers:
# a scratch declared as a local of a Cython function (the Monitor's) starts with base 0 too.
cdef extern from * nogil:
    """
    struct tw_match_scratch {
        std::vector<float> area;  /* the frame's boxes as the pair loops read them */
        tw_pairs pairs;  /* linked (object, box) pairs, grouped by object */
        std::vector<tw_cand_t> cands;  /* the pairs that compete, in greedy order */
        /* per box and per object, a stamp of this call: base (one pair: box only), base + 1
         * (more: box only), base + 2 (matched); anything lower is from an earlier call, so
         * nothing is reset between frames */
        std::vector<int64_t> box_st, act_st;
        std::vector<int64_t> perm;  /* the box at each lane when grouped (by class or by x) */
        int64_t base = 0;  /* 4 x calls so far */
        /* set by each call: two objects competed for one box with equal IoU and last frame,
         * so their slot order decided (associate's parallel stitch must then not guess) */
        bool slot_tie = false;
    };
    """
    cppclass match_scratch_t "tw_match_scratch":
        vector[float] area
        pairs_t pairs
        vector[cand_t] cands
        vector[int64_t] box_st, act_st, perm
        int64_t base
        bint slot_tie


cdef enum:
    TAKEN = 2  # a stamp's offset from this call's base: the object or box is matched


cdef inline bint _slot_decides(const vector[cand_t]& cands) noexcept nogil:
    """Did slot order decide a match among the sorted ``cands``: two pairs with equal keys (IoU
    and last frame) whose objects differ and whose box is the same? Equal-key pairs that share
    no box are taken alike in any order (an object's own pairs keep box order), so a tie
    between unrelated pairs does not count: equal float IoUs by chance are rare, but over 10^7
    boxes at 100 a frame they stopped every reordered join of the parallel stitch."""
    cdef Py_ssize_t n = cands.size(), r0 = 0, r1, u, v
    while r0 < n:
        r1 = r0 + 1
        while r1 < n and cands[r1].first == cands[r0].first:
            r1 += 1
        for u in range(r0, r1):
            for v in range(u + 1, r1):
                if cands[u].second.second == cands[v].second.second and cands[u].second.first != cands[v].second.first:
                    return True
        r0 = r1
    return False


cdef inline void match_frame(const float* ax1, const float* ay1, const float* ax2, const float* ay2,
                             const int64_t* acls, const int64_t* aframe, Py_ssize_t n_act,
                             const float* bx1, const float* by1, const float* bx2, const float* by2,
                             const key_t* bcls, Py_ssize_t m, float t, match_scratch_t& w,
                             int64_t* match) noexcept nogil:
    """Greedy one-to-one match of a frame's ``m`` boxes (``b*``) to ``n_act`` active objects
    (their last boxes ``a*``, class codes and last frames, oldest first): a pair qualifies when
    the classes are equal and IoU >= ``t`` (tested as ``inter >= t * union``; NaN never does).
    The boxes' class codes come in their column's width (int32 or int64): no widened copy.
    ``match[j]``: the slot box ``j`` continues, -1: none. ``w`` is scratch. Shared by
    ``_boxes_cy.associate`` (the batch kernel) and ``_monitor_cy.BoxEngine`` (the streaming
    one), so that both match identically."""
    cdef Py_ssize_t a, j, c, n_pairs
    cdef int64_t stride, block, by_x_min
    cdef cls_groups_t cg
    cdef pcand_t* p
    cdef int64_t* bs
    cdef int64_t* st
    cdef int64_t base
    cdef cand_t cand
    for j in range(m):
        match[j] = -1
    w.slot_tie = False
    if n_act == 0 or m == 0:
        return
    w.pairs.n = 0
    # every (object, box) pair, 8 or 16 boxes at a time; the class and the IoU only for linked pairs
    block = 16 if tw_simd() >= 2 else 8
    by_x_min = MATCH_BY_X_MIN_16 if block == 16 else MATCH_BY_X_MIN
    if m > block and tw_cls_group(bcls, m, block, &cg) and cg.largest < m and cg.largest <= by_x_min:
        # two classes or more: boxes grouped by class, an object meets only its class's blocks
        # (the bench's five classes at 100 a frame: 2 blocks of 16 instead of 7)
        w.area.resize(5 * cg.stride)
        w.perm.resize(cg.stride)
        tw_pad_by_cls(bx1, by1, bx2, by2, bcls, m, w.area.data(), w.perm.data(), &cg)
        tw_match_cands_by_cls(ax1, ay1, ax2, ay2, acls, n_act, w.area.data(), w.perm.data(), &cg, t, w.pairs)
    elif m > by_x_min:
        # larger frames: boxes grouped by x into blocks, blocks that cannot overlap the object
        # skipped
        stride = (m + block - 1) & ~(block - 1)
        w.area.resize(5 * stride + 4 * tw_bb_stride(stride, block))
        w.perm.resize(stride)
        tw_pad_by_x(bx1, by1, bx2, by2, m, w.area.data(), stride, w.perm.data(), w.area.data() + 5 * stride, block)
        tw_match_cands_by_x(ax1, ay1, ax2, ay2, acls, n_act, w.area.data(), stride, w.perm.data(),
                            w.area.data() + 5 * stride, bcls, t, block, w.pairs)
    else:
        stride = pad_boxes(bx1, by1, bx2, by2, m, w.area)
        tw_match_cands(ax1, ay1, ax2, ay2, acls, n_act, w.area.data(), stride, bcls, m, t, w.pairs)
    n_pairs = w.pairs.n
    if n_pairs == 0:
        return
    p = w.pairs.buf.data()
    if n_pairs == 1:
        match[p[0].j] = p[0].a
        return
    # the greedy order matters only between pairs that share an object or a box: one whose
    # object and box have no other pair is taken whatever the order (the common tracking case:
    # each box overlaps its own object only); only the rest get their IoU and are sorted.
    # An object's pairs are consecutive (the pair loops go object by object); a box's are
    # counted in stamps of this call
    w.base += 4
    base = w.base
    if w.box_st.size() < <size_t>m:
        w.box_st.resize(m, 0)
    if w.act_st.size() < <size_t>n_act:
        w.act_st.resize(n_act, 0)
    bs = w.box_st.data()
    st = w.act_st.data()
    for c in range(n_pairs):
        j = p[c].j
        bs[j] = base if bs[j] < base else base + 1
    w.cands.clear()
    for c in range(n_pairs):
        a = p[c].a
        j = p[c].j
        if (bs[j] == base and (c == 0 or p[c - 1].a != a)
                and (c + 1 == n_pairs or p[c + 1].a != a)):
            match[j] = a  # no other pair touches a or j: the contested ones below never do
        else:
            cand.first.first = tw_neg_iou(&p[c])
            cand.first.second = -aframe[a]
            cand.second.first = a
            cand.second.second = j
            w.cands.push_back(cand)
    if w.cands.size() > 1:
        cpp_sort(w.cands.begin(), w.cands.end())
        w.slot_tie = _slot_decides(w.cands)
    for c in range(<Py_ssize_t>w.cands.size()):
        a = w.cands[c].second.first
        j = w.cands[c].second.second
        if st[a] == base + TAKEN or bs[j] == base + TAKEN:
            continue
        st[a] = base + TAKEN
        bs[j] = base + TAKEN
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


# One thread's state in a vector of them (``vector[apart[T]]``, index by thread): the padding
# keeps one thread's writes (a vector's end pointer on each push_back, a counter each frame)
# off the cache lines the next thread's state sits on. Side by side unpadded, two threads
# that write their own state on every frame take turns owning the shared line: associate's
# two ranges together took longer than one thread doing both.
cdef cppclass apart[T]:
    T v
    char _apart[128]


cdef inline int row_ranges(Py_ssize_t n, Py_ssize_t state_slots, Py_ssize_t min_rows, int parts) noexcept nogil:
    """How many row ranges a per-row scan with per-range state is cut into (one per parallel
    thread): 1 below ``min_rows`` rows; else ``parts`` when > 0, else one per OpenMP thread;
    1 again when that many copies of the state (``state_slots`` each) would outweigh the rows."""
    if n == 0 or n < min_rows:
        return 1
    if parts <= 0:
        parts = tw_max_threads()
    if parts < 1 or state_slots * parts > 8 * n + 65536:
        return 1
    return parts


# Integer min/max in one pass, for int64 and int32 keys. On x86-64 with GCC or Clang the
# unmasked loop is compiled for AVX-512, AVX2 and baseline and picked at load time
# (target_clones): the baseline build has no 64-bit vector compare, and this pass runs over
# whole key and time columns. Results are int64 either way.
cdef extern from * nogil:
    """
    #include <stdint.h>
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(TRIPWIRE_NO_TARGET_CLONES)
    #define TW_MINMAX_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
    #else
    #define TW_MINMAX_CLONES
    #endif

    /* valid: NULL (no nulls) or one byte per value, 0 = null (skipped). Empty or all null:
     * lo = INT64_MAX, hi = INT64_MIN. */
    #define TW_MINMAX(T, SFX, TMAX, TMIN) \
    TW_MINMAX_CLONES static void tw_minmax_##SFX##_dense(const T* x, int64_t n, int64_t* lo, int64_t* hi) { \
        T a = TMAX, b = TMIN; \
        for (int64_t i = 0; i < n; i++) { \
            T v = x[i]; \
            a = v < a ? v : a; \
            b = v > b ? v : b; \
        } \
        *lo = n ? (int64_t)a : INT64_MAX; \
        *hi = n ? (int64_t)b : INT64_MIN; \
    } \
    static inline void tw_minmax_##SFX(const T* x, int64_t n, const uint8_t* valid, int64_t* lo, int64_t* hi) { \
        if (valid == NULL) { \
            tw_minmax_##SFX##_dense(x, n, lo, hi); \
            return; \
        } \
        int64_t a = INT64_MAX, b = INT64_MIN; \
        for (int64_t i = 0; i < n; i++) { \
            if (valid[i]) { \
                int64_t v = x[i]; \
                a = v < a ? v : a; \
                b = v > b ? v : b; \
            } \
        } \
        *lo = a; \
        *hi = b; \
    }

    TW_MINMAX(int64_t, i64, INT64_MAX, INT64_MIN)
    TW_MINMAX(int32_t, i32, INT32_MAX, INT32_MIN)
    """
    void tw_minmax_i64(const int64_t* x, int64_t n, const uint8_t* valid, int64_t* lo, int64_t* hi)
    void tw_minmax_i32(const int32_t* x, int64_t n, const uint8_t* valid, int64_t* lo, int64_t* hi)


cdef inline float mean_of_two_scores(float a, bint ha, float b, bint hb) noexcept nogil:
    """The severity of ``boxes.flicker``'s gaps (``_boxes_cy.gap_events``, the streaming
    monitor): the mean of two boxes' present, non-NaN scores in float64, as float32, at least
    1e-6; 1 when neither has one."""
    cdef double s = 0
    cdef int n = 0
    cdef float m
    if ha and a == a:
        s += a
        n += 1
    if hb and b == b:
        s += b
        n += 1
    if n == 0:
        return 1.0
    m = <float>(s / n)
    return m if m > <float>1e-6 else <float>1e-6
