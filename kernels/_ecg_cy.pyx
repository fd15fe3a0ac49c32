# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: language = c++
"""ECG window kernels (Cython backend).

Called by ``tripwire.ecg`` through ``tripwire._dispatch``; siblings with the same names, argument
order and results live in ``tripwire/_kernels/ecg_jit.py`` (Numba) and ``tests/reference.py``
(plain loops). A GPU sibling (``tripwire/_kernels/ecg_gpu.py``) takes the same NumPy arrays.

The kernel contract (the one place it is written down):

- ``x``: float32, the flat sample values of every window of a batch (a view of the Arrow list
  array's child buffer). Window ``w`` is ``x[lo[w]:hi[w]]`` (int64 ``lo``, ``hi``; windows may
  share or skip values, and an empty window has ``lo == hi``).
- ``fs``: float64 sampling rate per window (Hz, > 0; validated by the caller).
- ``quality(x, lo, hi, fs, flat_s, clip_frac, max_abs, min_ptp, max_noise, max_wander)``
  -> ``(n_bad int64[n_win], reasons int32[n_win])``: the signal-quality pass (below).
- ``detector_params(fs)`` lives in ``tripwire.ecg`` (Python): one float64 row of ``N_PARAMS``
  per window with the band-pass coefficients and the detector's lengths in samples.
- ``rpeaks(x, lo, hi, params)`` -> ``(peaks int64, counts int64[n_win])``: R-peak sample indices
  relative to each window's first sample, window after window (CSR by ``counts``).
- ``rr_stats(x, lo, hi, params)`` -> ``(n_peaks int64, mean_rr float64, cv float64,
  rmssd float64, madsd float64)`` per window: the same detector, fused with the RR statistics
  (no peak list leaves the kernel). ``mean_rr`` in samples (NaN below 2 peaks), ``cv`` =
  population standard deviation of the RR intervals over their mean (NaN below 2 peaks),
  ``rmssd`` = root mean square of successive RR differences over the mean RR, ``madsd`` =
  median |successive RR difference| over the median RR (a median of an even count is the mean
  of the middle two; both NaN below 3 peaks).
- ``flips(labels, label_offset, n_labels, rec_offsets, t0, within)`` -> ``(first, last, src,
  sev)`` int64 per event: the rhythm-flip scan (below) over positions in (record, t0) order.

All three scans run once per batch without the GIL; ``quality``, ``rpeaks`` and ``rr_stats``
run windows on several threads (OpenMP) when the extension was built with it. Arithmetic is in
double precision on the float32 samples with the operations in the order written here (sums
of a segment in 8 lanes by position mod 8, lanes combined pairwise), and every sibling repeats
that order, so every backend takes every decision bit for bit alike.

Signal quality, per window (``n`` samples; a "second" is a segment of ``round(fs)`` samples
from the window's start, the last one possibly shorter). Bad samples, in classes:

- N: not finite (NaN, +-inf);
- R: finite with ``|x| > max_abs`` (amplitude out of range);
- F: finite, not R, in a run of at least ``max(2, round(flat_s * fs))`` consecutive samples of
  one value (flat line);
- C: "ordinary" samples (finite, not R, not F) equal to the window's lowest or highest ordinary
  value, when that rail holds at least 2 samples and at least ``clip_frac`` of the ordinary
  samples (clipping; one rail when both are the same value);
- a noisy second (H): its mean ``|x[i] - 2 x[i-1] + x[i-2]|`` (over ``i`` in the second, ``i >= 2``
  in the window, all three finite) exceeds ``max_noise`` times its finite peak-to-peak: every
  sample of that second is bad;
- a wandering second (W): the mean of its finite samples is more than ``max_wander`` away from
  the mean of the window's finite samples: every sample of that second is bad;
- low amplitude (A): the window's finite peak-to-peak is below ``min_ptp``: every sample is bad.

``n_bad`` counts the union; ``reasons`` has bit 1 N, 2 R, 4 F, 8 C, 16 H, 32 W, 64 A set when
that class holds anywhere in the window (whether or not another class already made the sample
bad). One pass reads each sample once (per second: sums, extrema, counts, equal neighbours); a
window that might hold a flat run (a second with at least ``min(ceil((flat - 1) / 2), round(fs)
- 1)`` equal neighbours: any run of ``flat`` samples leaves that many in some second) gets an
exact run scan; the rail counts re-read only the seconds that hold a rail (from cache).
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport parallel, prange
from libc.math cimport fabs, fabsf, floor, nextafterf, sqrt, INFINITY, NAN
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport malloc, free
from libcpp.algorithm cimport nth_element
from libcpp.vector cimport vector

from _common cimport to_numpy
from _types cimport key_t

cnp.import_array()

cdef extern from *:
    """
    /* The hot loop of the quality pass, in C so that every lane is branch-free: GCC vectorizes
       it only when it may evaluate float compares unconditionally (no-trapping-math; tripwire
       never reads floating-point exception flags, so results are unchanged). */
    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC push_options
    #pragma GCC optimize ("no-trapping-math")
    #endif
    /* The all-finite fast path: no masks (a non-finite sample makes a lane sum or extreme
       non-finite, and the caller then redoes the second with tw_ecg_lanes). SSE2 where the
       compiler has it (GCC does not vectorize a float min/max reduction without fast-math);
       _mm_min_ps(v, m) is exactly "v < m ? v : m", lane k is element k of the 8 samples. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    static void tw_ecg_lanes_fast(const float* x, int64_t i, int64_t b, float* fsum_, float* dsum_,
                                  float* lmn_, float* lmx_, int32_t* ceq_) {
        __m128 s0 = _mm_loadu_ps(fsum_), s1 = _mm_loadu_ps(fsum_ + 4);
        __m128 d0 = _mm_loadu_ps(dsum_), d1 = _mm_loadu_ps(dsum_ + 4);
        __m128 n0 = _mm_loadu_ps(lmn_), n1 = _mm_loadu_ps(lmn_ + 4);
        __m128 m0 = _mm_loadu_ps(lmx_), m1 = _mm_loadu_ps(lmx_ + 4);
        __m128i e0 = _mm_loadu_si128((const __m128i*)ceq_), e1 = _mm_loadu_si128((const __m128i*)(ceq_ + 4));
        const __m128 two = _mm_set1_ps(2.0f);
        const __m128 absmask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
        for (; i + 8 <= b; i += 8) {
            __m128 v0 = _mm_loadu_ps(x + i), v1 = _mm_loadu_ps(x + i + 4);
            __m128 p0 = _mm_loadu_ps(x + i - 1), p1 = _mm_loadu_ps(x + i + 3);
            __m128 q0 = _mm_loadu_ps(x + i - 2), q1 = _mm_loadu_ps(x + i + 2);
            s0 = _mm_add_ps(s0, v0);
            s1 = _mm_add_ps(s1, v1);
            n0 = _mm_min_ps(v0, n0);
            n1 = _mm_min_ps(v1, n1);
            m0 = _mm_max_ps(v0, m0);
            m1 = _mm_max_ps(v1, m1);
            e0 = _mm_sub_epi32(e0, _mm_castps_si128(_mm_cmpeq_ps(p0, v0)));
            e1 = _mm_sub_epi32(e1, _mm_castps_si128(_mm_cmpeq_ps(p1, v1)));
            d0 = _mm_add_ps(d0, _mm_and_ps(_mm_add_ps(_mm_sub_ps(v0, _mm_mul_ps(two, p0)), q0), absmask));
            d1 = _mm_add_ps(d1, _mm_and_ps(_mm_add_ps(_mm_sub_ps(v1, _mm_mul_ps(two, p1)), q1), absmask));
        }
        _mm_storeu_ps(fsum_, s0); _mm_storeu_ps(fsum_ + 4, s1);
        _mm_storeu_ps(dsum_, d0); _mm_storeu_ps(dsum_ + 4, d1);
        _mm_storeu_ps(lmn_, n0); _mm_storeu_ps(lmn_ + 4, n1);
        _mm_storeu_ps(lmx_, m0); _mm_storeu_ps(lmx_ + 4, m1);
        _mm_storeu_si128((__m128i*)ceq_, e0); _mm_storeu_si128((__m128i*)(ceq_ + 4), e1);
    }
    #else
    static void tw_ecg_lanes_fast(const float* x, int64_t i, int64_t b, float* fsum_, float* dsum_,
                                  float* lmn_, float* lmx_, int32_t* ceq_) {
        int k;
        for (; i + 8 <= b; i += 8) {
            for (k = 0; k < 8; k++) {
                float v = x[i + k], p1 = x[i + k - 1], p2 = x[i + k - 2];
                fsum_[k] += v;
                lmn_[k] = v < lmn_[k] ? v : lmn_[k];
                lmx_[k] = v > lmx_[k] ? v : lmx_[k];
                ceq_[k] += p1 == v;
                float d = (v - 2.0f * p1) + p2;
                dsum_[k] += fabsf(d);
            }
        }
    }
    #endif
    static void tw_ecg_lanes(const float* x, int64_t i, int64_t b, float amax, float* fsum_, float* dsum_,
                             float* lmn_, float* lmx_, int32_t* cfin_, int32_t* crng_, int32_t* ceq_,
                             int32_t* cd2_) {
        float fsum[8], dsum[8], lmn[8], lmx[8];
        int32_t cfin[8], crng[8], ceq[8], cd2[8];
        int k;
        for (k = 0; k < 8; k++) {
            fsum[k] = fsum_[k]; dsum[k] = dsum_[k]; lmn[k] = lmn_[k]; lmx[k] = lmx_[k];
            cfin[k] = cfin_[k]; crng[k] = crng_[k]; ceq[k] = ceq_[k]; cd2[k] = cd2_[k];
        }
        for (; i + 8 <= b; i += 8) {
            for (k = 0; k < 8; k++) {
                float v = x[i + k], p1 = x[i + k - 1], p2 = x[i + k - 2];
                int fin = (v - v) == 0;
                fsum[k] += fin ? v : 0.0f;
                lmn[k] = (fin & (v < lmn[k])) ? v : lmn[k];
                lmx[k] = (fin & (v > lmx[k])) ? v : lmx[k];
                cfin[k] += fin;
                crng[k] += fin & (fabsf(v) > amax);
                ceq[k] += p1 == v;
                float d = (v - 2.0f * p1) + p2;
                int fd = (d - d) == 0;
                cd2[k] += fd;
                dsum[k] += fd ? fabsf(d) : 0.0f;
            }
        }
        for (k = 0; k < 8; k++) {
            fsum_[k] = fsum[k]; dsum_[k] = dsum[k]; lmn_[k] = lmn[k]; lmx_[k] = lmx[k];
            cfin_[k] = cfin[k]; crng_[k] = crng[k]; ceq_[k] = ceq[k]; cd2_[k] = cd2[k];
        }
    }
    /* First index in [j, end) whose label differs from cur (end when none): 16 labels per
       step, compared 4 at a time (SSE2 where the compiler has it). */
    static int64_t tw_first_diff32(const int32_t* a, int64_t j, int64_t end, int32_t cur) {
    #if defined(__SSE2__)
        const __m128i c = _mm_set1_epi32(cur);
        while (j + 16 <= end) {
            __m128i e0 = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i*)(a + j)), c);
            __m128i e1 = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i*)(a + j + 4)), c);
            __m128i e2 = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i*)(a + j + 8)), c);
            __m128i e3 = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i*)(a + j + 12)), c);
            __m128i all = _mm_and_si128(_mm_and_si128(e0, e1), _mm_and_si128(e2, e3));
            if (_mm_movemask_epi8(all) != 0xFFFF) break;
            j += 16;
        }
    #endif
        while (j < end && a[j] == cur) j++;
        return j;
    }
    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC pop_options
    #endif
    """
    void tw_ecg_lanes(const float* x, int64_t i, int64_t b, float amax, float* fsum, float* dsum, float* lmn,
                      float* lmx, int32_t* cfin, int32_t* crng, int32_t* ceq, int32_t* cd2) noexcept nogil
    void tw_ecg_lanes_fast(const float* x, int64_t i, int64_t b, float* fsum, float* dsum, float* lmn,
                           float* lmx, int32_t* ceq) noexcept nogil
    int64_t tw_first_diff32(const int32_t* a, int64_t j, int64_t end, int32_t cur) noexcept nogil
    void __builtin_prefetch(const void* p) noexcept nogil


# reason bits (tripwire.ecg.QUALITY_REASONS names them)
cdef enum:
    Q_NONFINITE = 1
    Q_RANGE = 2
    Q_FLAT = 4
    Q_CLIP = 8
    Q_NOISE = 16
    Q_WANDER = 32
    Q_LOWAMP = 64

# detector parameter row (tripwire.ecg.detector_params writes it)
cdef enum:
    P_HB0 = 0
    P_HB1 = 1
    P_HB2 = 2
    P_HA1 = 3
    P_HA2 = 4
    P_LB0 = 5
    P_LB1 = 6
    P_LB2 = 7
    P_LA1 = 8
    P_LA2 = 9
    P_W = 10        # moving-integration width (samples)
    P_REF = 11      # refractory period
    P_TW = 12       # T-wave discrimination window
    P_LEARN = 13    # learning phase (threshold initialisation)
    P_RR0 = 14      # initial RR average
    P_DELAY = 15    # band-pass delay subtracted from the located R peak
    N_PARAMS = 16


cdef struct seg_t:
    double sum       # finite samples
    double d2sum     # |second difference|, finite triples
    int64_t n
    int64_t nfin
    int64_t nd2
    int64_t nbad     # N + R + F samples
    int64_t nrange
    int64_t neq      # x[i] == x[i-1] pairs (the flat-run filter)
    int64_t cnt_lo   # ordinary samples on the window's rails (set at the end)
    int64_t cnt_hi
    float mn         # finite extrema
    float mx
    float olo        # ordinary extrema
    float ohi


cdef inline double _lanes(const float* a) noexcept nogil:
    return ((<double>a[0] + <double>a[1]) + (<double>a[2] + <double>a[3])) \
        + ((<double>a[4] + <double>a[5]) + (<double>a[6] + <double>a[7]))


cdef inline float _below(double t) noexcept nogil:
    """The largest float32 not above ``t``: ``|v| > t`` holds exactly when ``|v| > _below(t)``
    for every float32 ``v``, so the per-sample test runs in float32."""
    cdef float f = <float>t
    if <double>f > t:
        f = nextafterf(f, -INFINITY)
    return f


cdef inline void _lane_sample(const float* x, int64_t i, int64_t k, float amax, float* fsum, float* dsum,
                              float* lmn, float* lmx, int32_t* cfin, int32_t* crng, int32_t* ceq,
                              int32_t* cd2) noexcept nogil:
    """Lane ``k`` takes sample ``i >= 2`` (branch-free: the compiler vectorizes 8 lanes)."""
    cdef float v = x[i], p1 = x[i - 1], p2 = x[i - 2], d
    cdef bint fin = (v - v) == 0, fd
    fsum[k] += v if fin else <float>0.0
    lmn[k] = v if (fin and v < lmn[k]) else lmn[k]
    lmx[k] = v if (fin and v > lmx[k]) else lmx[k]
    cfin[k] += fin
    crng[k] += fin and fabsf(v) > amax
    ceq[k] += p1 == v
    d = (v - <float>2.0 * p1) + p2
    fd = (d - d) == 0
    cd2[k] += fd
    dsum[k] += fabsf(d) if fd else <float>0.0


cdef void _segment_fast(const float* x, int64_t a, int64_t b, double max_abs, seg_t* S) noexcept nogil:
    """Sums, extrema and counts of samples ``a:b`` of a window (``x`` is its first sample).

    Sample ``i`` goes to lane ``(i - a) % 8``: float32 lane sums, combined pairwise in double."""
    cdef float fsum[8]
    cdef float dsum[8]
    cdef float lmn[8]
    cdef float lmx[8]
    cdef int32_t cfin[8]
    cdef int32_t crng[8]
    cdef int32_t ceq[8]
    cdef int32_t cd2[8]
    cdef float ffs[8]
    cdef float fds[8]
    cdef float fmn[8]
    cdef float fmx[8]
    cdef int32_t feq[8]
    cdef int64_t i, k, start, stop
    cdef float amax = _below(max_abs), v, olo = INFINITY, ohi = -INFINITY, d
    cdef bint fin, fast_ok = False
    for k in range(8):
        fsum[k] = 0.0
        dsum[k] = 0.0
        lmn[k] = INFINITY
        lmx[k] = -INFINITY
        cfin[k] = 0
        crng[k] = 0
        ceq[k] = 0
        cd2[k] = 0
    start = a
    if a < 2:  # the window's first samples have no (or one) predecessor
        stop = min(a + 8, b)
        for i in range(a, stop):
            k = (i - a) & 7
            if i >= 2:
                _lane_sample(x, i, k, amax, fsum, dsum, lmn, lmx, cfin, crng, ceq, cd2)
                continue
            v = x[i]
            fin = (v - v) == 0
            fsum[k] += v if fin else <float>0.0
            lmn[k] = v if (fin and v < lmn[k]) else lmn[k]
            lmx[k] = v if (fin and v > lmx[k]) else lmx[k]
            cfin[k] += fin
            crng[k] += fin and fabsf(v) > amax
            if i == 1:
                ceq[k] += x[0] == v
        start = stop
    i = start + ((b - start) // 8) * 8
    if start >= 2 and i > start:  # try the all-finite fast path on whole chunks of 8
        for k in range(8):
            ffs[k] = fsum[k]
            fds[k] = dsum[k]
            fmn[k] = lmn[k]
            fmx[k] = lmx[k]
            feq[k] = ceq[k]
        tw_ecg_lanes_fast(x, start, b, ffs, fds, fmn, fmx, feq)
        fast_ok = True
        for k in range(8):
            if not ((ffs[k] - ffs[k]) == 0 and (fds[k] - fds[k]) == 0 and (fmn[k] - fmn[k]) == 0
                    and (fmx[k] - fmx[k]) == 0 and fabsf(fmn[k]) <= amax and fabsf(fmx[k]) <= amax):
                fast_ok = False
        if fast_ok:  # every sample finite and in range: the masks would have kept them all
            for k in range(8):
                fsum[k] = ffs[k]
                dsum[k] = fds[k]
                lmn[k] = fmn[k]
                lmx[k] = fmx[k]
                cfin[k] += <int32_t>((i - start) // 8)
                cd2[k] += <int32_t>((i - start) // 8)
                ceq[k] = feq[k]
    if not fast_ok:
        tw_ecg_lanes(x, start, b, amax, fsum, dsum, lmn, lmx, cfin, crng, ceq, cd2)
    while i < b:
        _lane_sample(x, i, (i - a) & 7, amax, fsum, dsum, lmn, lmx, cfin, crng, ceq, cd2)
        i += 1
    S.sum = _lanes(fsum)
    S.d2sum = _lanes(dsum)
    S.n = b - a
    S.nfin = 0
    S.nd2 = 0
    S.nrange = 0
    S.neq = 0
    S.mn = INFINITY
    S.mx = -INFINITY
    for k in range(8):
        S.nfin += cfin[k]
        S.nd2 += cd2[k]
        S.nrange += crng[k]
        S.neq += ceq[k]
        if lmn[k] < S.mn:
            S.mn = lmn[k]
        if lmx[k] > S.mx:
            S.mx = lmx[k]
    S.nbad = (b - a - S.nfin) + S.nrange
    if S.nrange == 0:
        S.olo = S.mn
        S.ohi = S.mx
    else:  # ordinary extrema leave out the out-of-range samples (a second look, from cache)
        for i in range(a, b):
            v = x[i]
            if (v - v) == 0 and not (fabsf(v) > amax):
                if v < olo:
                    olo = v
                if v > ohi:
                    ohi = v
        S.olo = olo
        S.ohi = ohi


cdef int _quality_window(const float* x, int64_t n, double fs, double flat_s, double clip_frac,
                         double max_abs, double min_ptp, double max_noise, double max_wander,
                         int64_t* n_bad, int32_t* reasons) noexcept nogil:
    """One window; returns -1 when out of memory."""
    cdef int64_t seg = max(<int64_t>1, <int64_t>floor(fs + 0.5))
    cdef int64_t flat = max(<int64_t>2, <int64_t>floor(flat_s * fs + 0.5))
    cdef int64_t n_seg, s, a, b, i, j, thr, nfin = 0, nrange = 0, nflat = 0, n_ord, cnt_lo = 0, cnt_hi = 0, bad = 0
    cdef int32_t why = 0
    cdef seg_t* S
    cdef seg_t* T
    cdef uint8_t* flag = NULL
    cdef bint slow = False, clip_lo, clip_hi, lowamp, noisy, wander
    cdef float win_lo = INFINITY, win_hi = -INFINITY, fmn = INFINITY, fmx = -INFINITY, v
    cdef double total = 0.0, mean = 0.0, ptp
    cdef float amax = _below(max_abs)
    n_bad[0] = 0
    reasons[0] = 0
    if n <= 0:
        return 0
    n_seg = (n + seg - 1) // seg
    S = <seg_t*>malloc(n_seg * sizeof(seg_t))
    if S == NULL:
        return -1
    # flat runs: a run of ``flat`` equal samples leaves at least ``thr`` equal pairs in a second
    thr = min((flat - 1 + 1) // 2, seg - 1)
    if thr < 1:
        thr = 1
    for s in range(n_seg):
        a = s * seg
        b = min(a + seg, n)
        _segment_fast(x, a, b, max_abs, &S[s])
        if S[s].neq >= thr:
            slow = True
    if slow:  # exact run scan: mark N, R, F per sample, recount per second
        flag = <uint8_t*>malloc(n)
        if flag == NULL:
            free(S)
            return -1
        for i in range(n):
            v = x[i]
            flag[i] = 1 if not ((v - v) == 0) else (2 if fabsf(v) > amax else 0)
        i = 0
        while i < n:
            j = i + 1
            if flag[i] != 1:
                while j < n and x[j] == x[i]:
                    j += 1
                if j - i >= flat and flag[i] == 0:
                    for a in range(i, j):
                        flag[a] = 3
                    nflat += j - i
            i = j
        for s in range(n_seg):
            T = &S[s]
            a = s * seg
            b = min(a + seg, n)
            T.nbad = 0
            T.olo = INFINITY
            T.ohi = -INFINITY
            for i in range(a, b):
                if flag[i] != 0:
                    T.nbad += 1
                else:
                    v = x[i]
                    if v < T.olo:
                        T.olo = v
                    if v > T.ohi:
                        T.ohi = v
    for s in range(n_seg):
        T = &S[s]
        nfin += T.nfin
        nrange += T.nrange
        total += T.sum
        if T.mn < fmn:
            fmn = T.mn
        if T.mx > fmx:
            fmx = T.mx
        if T.olo < win_lo:
            win_lo = T.olo
        if T.ohi > win_hi:
            win_hi = T.ohi
        T.cnt_lo = 0
        T.cnt_hi = 0
    n_ord = nfin - nrange - nflat
    # rails: count the ordinary samples on them, in the seconds that hold them
    if n_ord > 0:
        for s in range(n_seg):
            T = &S[s]
            if T.olo == win_lo or T.ohi == win_hi:
                a = s * seg
                b = min(a + seg, n)
                for i in range(a, b):
                    if flag != NULL and flag[i] != 0:
                        continue
                    T.cnt_lo += x[i] == win_lo
                    T.cnt_hi += x[i] == win_hi
                cnt_lo += T.cnt_lo
                cnt_hi += T.cnt_hi
    clip_lo = n_ord > 0 and cnt_lo >= 2 and <double>cnt_lo >= clip_frac * <double>n_ord
    clip_hi = n_ord > 0 and win_hi != win_lo and cnt_hi >= 2 and <double>cnt_hi >= clip_frac * <double>n_ord
    lowamp = nfin > 0 and (<double>fmx - <double>fmn) < min_ptp
    if nfin > 0:
        mean = total / <double>nfin
    if nfin < n:
        why |= Q_NONFINITE
    if nrange > 0:
        why |= Q_RANGE
    if nflat > 0:
        why |= Q_FLAT
    if clip_lo or clip_hi:
        why |= Q_CLIP
    if lowamp:
        why |= Q_LOWAMP
    for s in range(n_seg):
        T = &S[s]
        ptp = <double>T.mx - <double>T.mn
        noisy = T.nd2 > 0 and T.d2sum > max_noise * ptp * <double>T.nd2
        wander = T.nfin > 0 and fabs(T.sum / <double>T.nfin - mean) > max_wander
        if noisy:
            why |= Q_NOISE
        if wander:
            why |= Q_WANDER
        if noisy or wander or lowamp:
            bad += T.n
        else:
            bad += T.nbad + (T.cnt_lo if clip_lo else 0) + (T.cnt_hi if clip_hi else 0)
    n_bad[0] = bad
    reasons[0] = why
    free(S)
    if flag != NULL:
        free(flag)
    return 0


def quality(const float[::1] x, const int64_t[::1] lo, const int64_t[::1] hi, const double[::1] fs,
            double flat_s, double clip_frac, double max_abs, double min_ptp, double max_noise,
            double max_wander):
    """Bad samples and reason bits of every window (see the module docstring)."""
    cdef Py_ssize_t n_win = lo.shape[0], w
    cdef int64_t n_x = x.shape[0]
    cdef int failed = 0
    if hi.shape[0] != n_win or fs.shape[0] != n_win:
        raise ValueError("lo, hi and fs need one entry per window")
    for w in range(n_win):
        if lo[w] < 0 or hi[w] < lo[w] or hi[w] > n_x:
            raise ValueError("window bounds outside the values")
    bad_out = np.zeros(n_win, dtype=np.int64)
    why_out = np.zeros(n_win, dtype=np.int32)
    cdef int64_t[::1] bad = bad_out
    cdef int32_t[::1] why = why_out
    if n_win == 0 or n_x == 0:
        return bad_out, why_out
    with nogil:
        for w in prange(n_win, schedule="dynamic"):
            if hi[w] > lo[w]:
                if _quality_window(&x[0] + lo[w], hi[w] - lo[w], fs[w], flat_s, clip_frac, max_abs, min_ptp,
                                   max_noise, max_wander, &bad[w], &why[w]) != 0:
                    failed += 1
    if failed:
        raise MemoryError()
    return bad_out, why_out


# ----------------------------------------------------------------------------------------------
# R-peak detector (Pan-Tompkins style)
# ----------------------------------------------------------------------------------------------
cdef inline double _yat(const double* y, int64_t k) noexcept nogil:
    return y[k] if k >= 0 else 0.0


cdef inline double _slope2(const double* y, int64_t c, int64_t W) noexcept nogil:
    """Largest squared five-point derivative over the integration window ending at ``c``."""
    cdef int64_t k
    cdef double d, best = 0.0
    for k in range(max(<int64_t>0, c - W + 1), c + 1):
        d = ((2.0 * y[k] + _yat(y, k - 1)) - _yat(y, k - 3)) - 2.0 * _yat(y, k - 4)
        d = d * d
        if d > best:
            best = d
    return best


cdef struct rr8_t:  # the last eight RR intervals (samples) and their running mean
    int64_t buf[8]
    int64_t n
    int64_t pos
    double sum
    double avg


cdef inline void _rr_push(rr8_t* rr, int64_t gap) noexcept nogil:
    """One more RR interval: the oldest of eight drops out of the running sum."""
    if rr.n == 8:
        rr.sum = rr.sum - <double>rr.buf[rr.pos]
    else:
        rr.n += 1
    rr.buf[rr.pos] = gap
    rr.sum = rr.sum + <double>gap
    rr.pos = (rr.pos + 1) & 7
    rr.avg = rr.sum / <double>rr.n


cdef int64_t _detect(const float* x, int64_t n, const double* P, double* y, double* m, double* ring,
                     int64_t* peaks) noexcept nogil:
    """R peaks of one window into ``peaks`` (window-relative, increasing); returns how many.

    ``y`` (band-passed signal), ``m`` (moving integration) hold ``n`` doubles, ``ring`` ``W``."""
    cdef int64_t W = <int64_t>P[P_W], REF = <int64_t>P[P_REF], TW = <int64_t>P[P_TW]
    cdef int64_t L0 = min(<int64_t>P[P_LEARN], n), D = <int64_t>P[P_DELAY]
    cdef double hb0 = P[P_HB0], hb1 = P[P_HB1], hb2 = P[P_HB2], ha1 = P[P_HA1], ha2 = P[P_HA2]
    cdef double lb0 = P[P_LB0], lb1 = P[P_LB1], lb2 = P[P_LB2], la1 = P[P_LA1], la2 = P[P_LA2]
    cdef double held = 0.0, xv, hx1, hx2, hy1 = 0.0, hy2 = 0.0, lx1 = 0.0, lx2 = 0.0, ly1 = 0.0, ly2 = 0.0
    cdef double h, l, d, s, S = 0.0, mx0, sum0 = 0.0, spki, npki, thr1, v, sl
    cdef double last_slope = 0.0, sb_v = 0.0, ay, best
    cdef int64_t i, c, k, p, ref_i, last = -1, sb_c = -1, npk = 0, r = 0
    cdef rr8_t rr
    rr.n = 0
    rr.pos = 0
    rr.sum = 0.0
    cdef float xi
    if n <= 0:
        return 0
    for i in range(n):  # the filters start as if the signal had been constant at its first value
        xi = x[i]
        if (xi - xi) == 0:
            held = xi
            break
    hx1 = held
    hx2 = held
    for i in range(n):
        xi = x[i]
        if (xi - xi) == 0:  # a non-finite sample reads as the last finite one
            held = xi
        xv = held
        h = (((hb0 * xv + hb1 * hx1) + hb2 * hx2) - ha2 * hy2) - ha1 * hy1
        hx2 = hx1
        hx1 = xv
        hy2 = hy1
        hy1 = h
        l = (((lb0 * h + lb1 * lx1) + lb2 * lx2) - la2 * ly2) - la1 * ly1
        lx2 = lx1
        lx1 = h
        ly2 = ly1
        ly1 = l
        y[i] = l
        if i >= 4:
            d = ((2.0 * l + y[i - 1]) - y[i - 3]) - 2.0 * y[i - 4]
        else:
            d = ((2.0 * l + _yat(y, i - 1)) - _yat(y, i - 3)) - 2.0 * _yat(y, i - 4)
        s = d * d
        if i >= W:
            S = (S + s) - ring[r]
        else:
            S = S + s
        ring[r] = s
        r += 1
        if r == W:
            r = 0
        m[i] = S
    # learning phase: thresholds from the first seconds
    mx0 = m[0]
    for i in range(L0):
        if m[i] > mx0:
            mx0 = m[i]
        sum0 = sum0 + m[i]
    spki = 0.25 * mx0
    npki = 0.5 * (sum0 / <double>L0)
    rr.avg = P[P_RR0]
    for c in range(1, n - 1):
        v = m[c]
        if not (m[c - 1] < v and v >= m[c + 1]):
            continue
        # search back: no QRS for 1.66 RR, take the best candidate above half the threshold
        ref_i = last if last >= 0 else 0
        thr1 = npki + 0.25 * (spki - npki)
        if sb_c >= 0 and <double>(c - ref_i) > 1.66 * rr.avg and sb_v > 0.5 * thr1:
            spki = 0.25 * sb_v + 0.75 * spki
            last_slope = _slope2(y, sb_c, W)
            if last >= 0:
                _rr_push(&rr, sb_c - last)
            last = sb_c
            peaks[npk] = sb_c
            npk += 1
            sb_c = -1
            sb_v = 0.0
        if last >= 0 and c - last < REF:
            continue
        thr1 = npki + 0.25 * (spki - npki)
        if v > thr1:
            sl = _slope2(y, c, W)
            if last >= 0 and c - last < TW and sl < 0.25 * last_slope:  # a T wave: half the slope
                npki = 0.125 * v + 0.875 * npki
                continue
            spki = 0.125 * v + 0.875 * spki
            last_slope = sl
            if last >= 0:
                _rr_push(&rr, c - last)
            last = c
            peaks[npk] = c
            npk += 1
            sb_c = -1
            sb_v = 0.0
        else:
            npki = 0.125 * v + 0.875 * npki
            if sb_c < 0 or v > sb_v:
                sb_c = c
                sb_v = v
    ref_i = last if last >= 0 else 0
    thr1 = npki + 0.25 * (spki - npki)
    if sb_c >= 0 and <double>(n - 1 - ref_i) > 1.66 * rr.avg and sb_v > 0.5 * thr1:
        peaks[npk] = sb_c
        npk += 1
    # R peak: the largest |band-passed| sample in the integration window, less the filter delay
    for k in range(npk):
        c = peaks[k]
        p = c
        best = -1.0
        for i in range(max(<int64_t>0, c - W), c + 1):
            ay = fabs(y[i])
            if ay > best:
                best = ay
                p = i
        peaks[k] = max(<int64_t>0, p - D)
    return npk


cdef inline int64_t _capacity(int64_t n, const double* P) noexcept nogil:
    return n // max(<int64_t>1, <int64_t>P[P_REF]) + 2


cdef void _check_params(const double[:, ::1] params, Py_ssize_t n_win) except *:
    cdef Py_ssize_t w
    if params.shape[0] != n_win or params.shape[1] != N_PARAMS:
        raise ValueError(f"params must be (n_windows, {N_PARAMS})")
    for w in range(n_win):
        if params[w, P_W] < 1 or params[w, P_REF] <= params[w, P_W] or params[w, P_LEARN] < 1 \
                or params[w, P_DELAY] < 0:
            raise ValueError("detector lengths out of range (W >= 1, REF > W, LEARN >= 1, DELAY >= 0)")


cdef void _check_windows(int64_t n_x, const int64_t[::1] lo, const int64_t[::1] hi,
                         const double[:, ::1] params) except *:
    """The detector's inputs (``rpeaks``, ``rr_stats``): one bound pair and one parameter row
    per window, every window inside the ``n_x`` samples."""
    cdef Py_ssize_t n_win = lo.shape[0], w
    if hi.shape[0] != n_win:
        raise ValueError("lo and hi need one entry per window")
    _check_params(params, n_win)
    for w in range(n_win):
        if lo[w] < 0 or hi[w] < lo[w] or hi[w] > n_x:
            raise ValueError("window bounds outside the values")


def rpeaks(const float[::1] x, const int64_t[::1] lo, const int64_t[::1] hi, const double[:, ::1] params):
    """R-peak indices of every window, relative to its first sample (see the module docstring)."""
    cdef Py_ssize_t n_win = lo.shape[0], w
    cdef int64_t n_x = x.shape[0], k, total = 0
    fail_np = np.zeros(1, dtype=np.int32)
    cdef int32_t[::1] fail = fail_np  # set by any thread that runs out of memory
    cdef double* y
    cdef double* m
    cdef double* ring
    _check_windows(n_x, lo, hi, params)
    counts_out = np.zeros(n_win, dtype=np.int64)
    cdef int64_t[::1] counts = counts_out
    cap_np = np.zeros(n_win + 1, dtype=np.int64)
    cdef int64_t[::1] cap = cap_np
    for w in range(n_win):
        cap[w + 1] = cap[w] + _capacity(hi[w] - lo[w], &params[w, 0])
    buf_np = np.empty(max(cap[n_win], 1), dtype=np.int64)
    cdef int64_t[::1] buf = buf_np
    cdef int64_t max_n = 1, max_w = 1
    for w in range(n_win):
        max_n = max(max_n, hi[w] - lo[w])
        max_w = max(max_w, <int64_t>params[w, P_W])
    with nogil, parallel():
        # per-thread buffers, reused window after window (a fresh large malloc per window
        # costs page faults that rival the detector itself)
        y = <double*>malloc(max_n * sizeof(double))
        m = <double*>malloc(max_n * sizeof(double))
        ring = <double*>malloc(max_w * sizeof(double))
        if y == NULL or m == NULL or ring == NULL:
            fail[0] = 1
        else:
            for w in prange(n_win, schedule="dynamic"):
                if hi[w] > lo[w]:
                    counts[w] = _detect(&x[0] + lo[w], hi[w] - lo[w], &params[w, 0], y, m, ring, &buf[0] + cap[w])
        free(y)
        free(m)
        free(ring)
    if fail_np[0]:
        raise MemoryError()
    out = np.empty(int(np.sum(counts_out)), dtype=np.int64)
    cdef int64_t[::1] o = out
    for w in range(n_win):
        for k in range(counts[w]):
            o[total + k] = buf[cap[w] + k]
        total += counts[w]
    return out, counts_out


cdef double _median(int64_t* v, int64_t n) noexcept nogil:
    """Median of ``n >= 1`` integers (reorders ``v``): the middle one, or the mean of the two."""
    cdef int64_t i, lower
    nth_element(v, v + n // 2, v + n)
    if n & 1:
        return <double>v[n // 2]
    lower = v[0]
    for i in range(1, n // 2):
        if v[i] > lower:
            lower = v[i]
    return (<double>lower + <double>v[n // 2]) / 2.0


cdef int _rr(const int64_t* p, int64_t k, double* mean_rr, double* cv, double* rmssd,
             double* madsd) noexcept nogil:
    """RR statistics of ``k`` increasing peak positions (samples); -1 when out of memory."""
    cdef int64_t i
    cdef double s = 0.0, mean, dv, q = 0.0, r = 0.0, med_rr
    cdef int64_t* tmp
    mean_rr[0] = NAN
    cv[0] = NAN
    rmssd[0] = NAN
    madsd[0] = NAN
    if k < 2:
        return 0
    for i in range(1, k):
        s = s + <double>(p[i] - p[i - 1])
    mean = s / <double>(k - 1)
    for i in range(1, k):
        dv = <double>(p[i] - p[i - 1]) - mean
        q = q + dv * dv
    mean_rr[0] = mean
    cv[0] = sqrt(q / <double>(k - 1)) / mean
    if k >= 3:
        for i in range(2, k):
            dv = <double>((p[i] - p[i - 1]) - (p[i - 1] - p[i - 2]))
            r = r + dv * dv
        rmssd[0] = sqrt(r / <double>(k - 2)) / mean
        tmp = <int64_t*>malloc((k - 1) * sizeof(int64_t))
        if tmp == NULL:
            return -1
        for i in range(1, k):
            tmp[i - 1] = p[i] - p[i - 1]
        med_rr = _median(tmp, k - 1)
        for i in range(2, k):
            tmp[i - 2] = (p[i] - p[i - 1]) - (p[i - 1] - p[i - 2])
            if tmp[i - 2] < 0:
                tmp[i - 2] = -tmp[i - 2]
        madsd[0] = _median(tmp, k - 2) / med_rr
        free(tmp)
    return 0


def rr_stats(const float[::1] x, const int64_t[::1] lo, const int64_t[::1] hi, const double[:, ::1] params):
    """Peak count and RR statistics of every window (see the module docstring)."""
    cdef Py_ssize_t n_win = lo.shape[0], w
    cdef int64_t n_x = x.shape[0]
    fail_np = np.zeros(1, dtype=np.int32)
    cdef int32_t[::1] fail = fail_np  # set by any thread that runs out of memory
    cdef double* y
    cdef double* m
    cdef double* ring
    cdef int64_t* pk
    _check_windows(n_x, lo, hi, params)
    npk_out = np.zeros(n_win, dtype=np.int64)
    mean_out = np.full(n_win, np.nan)
    cv_out = np.full(n_win, np.nan)
    rm_out = np.full(n_win, np.nan)
    mad_out = np.full(n_win, np.nan)
    cdef double[::1] mad = mad_out
    cdef int64_t[::1] npk = npk_out
    cdef double[::1] mean_rr = mean_out
    cdef double[::1] cv = cv_out
    cdef double[::1] rm = rm_out
    cdef int64_t max_n = 1, max_w = 1, max_cap = 1
    for w in range(n_win):
        max_n = max(max_n, hi[w] - lo[w])
        max_w = max(max_w, <int64_t>params[w, P_W])
        max_cap = max(max_cap, _capacity(hi[w] - lo[w], &params[w, 0]))
    with nogil, parallel():
        # per-thread buffers, reused window after window (see rpeaks)
        y = <double*>malloc(max_n * sizeof(double))
        m = <double*>malloc(max_n * sizeof(double))
        ring = <double*>malloc(max_w * sizeof(double))
        pk = <int64_t*>malloc(max_cap * sizeof(int64_t))
        if y == NULL or m == NULL or ring == NULL or pk == NULL:
            fail[0] = 1
        else:
            for w in prange(n_win, schedule="dynamic"):
                if hi[w] > lo[w]:
                    npk[w] = _detect(&x[0] + lo[w], hi[w] - lo[w], &params[w, 0], y, m, ring, pk)
                    if _rr(pk, npk[w], &mean_rr[w], &cv[w], &rm[w], &mad[w]) != 0:
                        fail[0] = 1
        free(y)
        free(m)
        free(ring)
        free(pk)
    if fail_np[0]:
        raise MemoryError()
    return npk_out, mean_out, cv_out, rm_out, mad_out


# ----------------------------------------------------------------------------------------------
# rhythm flips
# ----------------------------------------------------------------------------------------------
cdef enum:
    FLIP_BLOCK = 16  # labels compared per block when skipping through a long run
    FLIP_RUNS = 1024  # runs found per batch before their times are read
    FLIP_AHEAD = 8  # runs ahead whose edge times are prefetched


cdef int64_t _pairs(const double* t0, int64_t ps, int64_t pe, int64_t s, int64_t e, double within) noexcept nogil:
    """Windows ``[i .. j]`` with ``i`` in ``ps..pe``, ``j`` in ``s..e`` and ``t0[j] - t0[i] <= within``."""
    cdef int64_t cnt = 0, i = pe, j = s - 1
    while j + 1 <= e and t0[j + 1] - t0[i] <= within:
        j += 1
    while i >= ps and j >= s:
        while j >= s and t0[j] - t0[i] > within:
            j -= 1
        if j < s:
            break
        cnt += j - s + 1
        i -= 1
    return cnt


def flips(const key_t[::1] labels, int64_t label_offset, int64_t n_labels, const int64_t[::1] rec_offsets,
          const double[::1] t0, double within):
    """A -> B -> A label flips, per record, over positions in (record, t0) order.

    Record ``r`` is positions ``rec_offsets[r]:rec_offsets[r+1]``; ``labels[i] - label_offset``
    is a dense code in ``[0, n_labels)``. A run is a maximal stretch of one label. For each run
    ``R'`` of label ``L`` whose record holds an earlier run of ``L``, let ``R`` be the latest such
    run: when ``t0[first of R'] - t0[last of R] <= within`` the positions between them (every
    one of another label) form an event: ``first``, ``last`` (its positions), ``src`` (the last
    position of ``R``: the label to restore) and ``sev``, the inverted windows: pairs ``i`` in
    ``R``, ``j`` in ``R'`` with ``t0[j] - t0[i] <= within`` (consecutive predictions from ``i`` to
    ``j`` start and end with ``L`` and hold another label). Events come in position order of
    ``R'``. Label runs are found a block at a time (a block of one label is skipped after one
    vectorized comparison); ``t0`` is read only at run ends, a batch of runs at a time.
    """
    cdef Py_ssize_t n = labels.shape[0], n_rec = rec_offsets.shape[0] - 1, r
    cdef int64_t ra, rb, s, j, k, e, cur, L, ps, pe, q, m
    cdef bint diff
    cdef vector[int64_t] run_s, run_e, stamp, ev_first, ev_last, ev_src, ev_sev
    cdef vector[int64_t] rs, rl  # one batch of runs: starts, labels (ends: the next start - 1)
    if t0.shape[0] != n:
        raise ValueError("labels and t0 differ in length")
    if n_rec < 0 or (n_rec == 0 and n) or (n_rec > 0 and (rec_offsets[0] != 0 or rec_offsets[n_rec] != n)):
        raise ValueError("rec_offsets must run from 0 to the number of labels")
    for r in range(n_rec):
        if rec_offsets[r + 1] < rec_offsets[r]:
            raise ValueError("rec_offsets must not decrease")
    cdef bint bad_label = False
    cdef const double* tp = &t0[0] if n else NULL
    with nogil:
        run_s.resize(n_labels)
        run_e.resize(n_labels)
        stamp.assign(n_labels, -1)
        rs.reserve(FLIP_RUNS + 1)
        rl.reserve(FLIP_RUNS)
        for r in range(n_rec):
            ra = rec_offsets[r]
            rb = rec_offsets[r + 1]
            s = ra
            while s < rb:
                # pass 1 over the labels alone (streaming): the next batch of runs
                rs.clear()
                rl.clear()
                while s < rb and <int64_t>rl.size() < FLIP_RUNS:
                    cur = labels[s]
                    j = s + 1
                    if key_t is int32_t:  # 16 labels per step (most windows continue their run)
                        j = tw_first_diff32(&labels[0], j, rb, <int32_t>cur)
                    else:
                        while j + FLIP_BLOCK <= rb:  # skip whole blocks of the current label
                            diff = False
                            for k in range(FLIP_BLOCK):
                                diff = diff | (labels[j + k] != cur)
                            if diff:
                                break
                            j += FLIP_BLOCK
                        while j < rb and labels[j] == cur:
                            j += 1
                    rs.push_back(s)
                    rl.push_back(cur - label_offset)
                    s = j
                rs.push_back(s)
                # pass 2 over the runs: t0 is read only at run edges, a scattered read, so the
                # edges a few runs ahead are fetched early instead of stalling on each in turn
                m = <int64_t>rl.size()
                for q in range(m):
                    if q + FLIP_AHEAD < m:  # a run's first times and its last ones (what _pairs reads)
                        for k in range(0, 32, 8):
                            __builtin_prefetch(tp + min(rs[q + FLIP_AHEAD] + k, rb - 1))
                            __builtin_prefetch(tp + max(rs[q + FLIP_AHEAD + 1] - 1 - k, ra))
                    L = rl[q]
                    if L < 0 or L >= n_labels:  # every label of the run is its first: one check per run
                        bad_label = True
                        break
                    e = rs[q + 1] - 1
                    if stamp[L] == r:
                        ps = run_s[L]
                        pe = run_e[L]
                        if tp[rs[q]] - tp[pe] <= within:
                            ev_first.push_back(pe + 1)
                            ev_last.push_back(rs[q] - 1)
                            ev_src.push_back(pe)
                            ev_sev.push_back(_pairs(tp, ps, pe, rs[q], e, within))
                    stamp[L] = r
                    run_s[L] = rs[q]
                    run_e[L] = e
                if bad_label:
                    break
            if bad_label:
                break
    if bad_label:
        raise ValueError("label code out of range")
    return to_numpy[int64_t](ev_first), to_numpy[int64_t](ev_last), to_numpy[int64_t](ev_src), \
        to_numpy[int64_t](ev_sev)


# ----------------------------------------------------------------------------------------------
# input preparation
# ----------------------------------------------------------------------------------------------
def record_runs(const key_t[::1] rec, const double[::1] t0):
    """Starts of the runs of equal record codes, and whether the rows are in (record, t0) order
    (record codes never decrease, ``t0`` never decreases within a record). One pass;
    ``tripwire.ecg.rhythm_flip`` uses it whatever the backend: input preparation, not a check."""
    cdef Py_ssize_t n = rec.shape[0], i
    cdef bint ordered = True
    cdef vector[int64_t] starts
    if t0.shape[0] != n:
        raise ValueError("rec and t0 differ in length")
    with nogil:
        if n:
            starts.push_back(0)
        for i in range(1, n):
            if rec[i] != rec[i - 1]:
                starts.push_back(i)
                if rec[i] < rec[i - 1]:
                    ordered = False
            elif t0[i] < t0[i - 1]:
                ordered = False
    return to_numpy[int64_t](starts), ordered
