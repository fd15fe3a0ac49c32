"""ECG window kernels (CuPy backend).

Siblings of ``kernels/_ecg_cy.pyx`` (whose module docstring is the kernel contract) with the
same names, argument order and results; called by ``tripwire.ecg`` through
``tripwire._dispatch`` when ``backend="cupy"``. Host NumPy arrays in and out. The float
arithmetic repeats the Cython kernels' operations in the same order (float32 lane sums by
position mod 8 combined pairwise in double, the detector's filters and running sums sample
after sample), compiled without fused multiply-add, so every backend takes every decision bit
for bit alike.

What runs where:

- ``quality``: one block per window. Eight threads take one second (thread ``k`` the samples
  at positions ``k mod 8`` of it, in order: the Cython kernel's lanes) and combine their
  lanes with butterfly shuffles (pairwise, as ``_lanes``; extrema with ties to the lower
  lane); the window's totals are summed second after second by one thread (the Cython order);
  the flat-run scan (only in windows whose seconds hold enough equal neighbours) has one
  thread per run start, and the rail counts one thread per second.
- ``rpeaks``, ``rr_stats``: one thread per window runs the detector (its IIR filters, running
  sum and adaptive thresholds are sequential within a window); the band-passed and integrated
  signals live in device scratch, interleaved across windows when their lengths are alike (so
  the threads of a warp touch neighbouring addresses). RR medians come from an in-thread heap
  sort (the value at a rank does not depend on how it was found). Windows longer than
  ``LONG_WINDOW`` samples run on the **Cython kernel** instead: one GPU thread walks a window
  several times slower than one CPU core, so a long window only pays off when many run side
  by side; the two parts are merged in window order.
- ``flips``: label runs, each run's previous run of the same label in its record (a stable
  sort by (record, label)), the events' inverted-window counts one thread per event.
- ``record_runs`` is input preparation that ``tripwire.ecg`` always runs on Cython (as
  ``points``' ``key_runs``): it has no GPU sibling.
"""
from __future__ import annotations

import numpy as np

from . import _ecg_cy
from ._gpu import check, cp, dev, launch, static_module

_F32, _F64, _I64 = np.float32, np.float64, np.int64
_KEYS = (np.int32, np.int64)
N_PARAMS = 16
P_W, P_REF, P_LEARN, P_DELAY = 10, 11, 13, 15
LONG_WINDOW = 1 << 18  # detector windows above this many samples run on the Cython kernel
QUALITY_THREADS = 256  # one block per window: 32 seconds at a time, 8 lanes each
DETECTOR_THREADS = 32  # one thread per window: small blocks spread a batch over every SM
SEG_BYTES = 96  # sizeof(seg_t) below

_SRC = r"""
typedef long long i64;
#define INF_F __int_as_float(0x7f800000)
#define NAN_D __longlong_as_double(0x7ff8000000000000LL)
#define FULL 0xffffffffu

struct seg_t {          // one second of a window (kernels/_ecg_cy.pyx: seg_t)
    double sum, d2sum;
    i64 n, nfin, nd2, nbad, nrange, neq, cnt_lo, cnt_hi;
    float mn, mx, olo, ohi;
};

// ------------------------------------------------------------------------------------------
// signal quality: one block per window
// ------------------------------------------------------------------------------------------
extern "C" __global__ void quality(
        const float* __restrict__ xall, const i64* lo, const i64* hi, const i64* seglen, const i64* flatlen,
        const i64* seg_base, const i64* flag_base, double clip_frac, float amax, double min_ptp,
        double max_noise, double max_wander, seg_t* Sall, unsigned char* flagall, i64* n_bad, int* reasons) {
    const i64 w = blockIdx.x;
    const i64 n = hi[w] - lo[w];
    const int t = threadIdx.x, k = t & 7, grp = t >> 3, ngrp = blockDim.x >> 3;
    __shared__ int slow, why;
    __shared__ unsigned long long nflat, cnt_lo, cnt_hi, bad;
    __shared__ i64 nfin_w, nrange_w, n_ord;
    __shared__ float win_lo, win_hi, fmn, fmx;
    __shared__ double mean;
    __shared__ int clip_lo, clip_hi, lowamp;
    if (n <= 0) {
        if (t == 0) { n_bad[w] = 0; reasons[w] = 0; }
        return;
    }
    const float* x = xall + lo[w];
    const i64 seg = seglen[w], flat = flatlen[w];
    const i64 n_seg = (n + seg - 1) / seg;
    seg_t* S = Sall + seg_base[w];
    i64 thr = flat / 2;  // min(ceil((flat - 1) / 2), seg - 1), at least 1
    if (thr > seg - 1) thr = seg - 1;
    if (thr < 1) thr = 1;
    if (t == 0) { slow = 0; why = 0; nflat = 0; cnt_lo = 0; cnt_hi = 0; bad = 0; }
    __syncthreads();
    // lanes: thread k of a group takes the samples a + k, a + k + 8, ... of its second
    for (i64 s0 = 0; s0 < n_seg; s0 += ngrp) {
        const i64 s = s0 + grp;
        const bool act = s < n_seg;
        float fsum = 0.0f, dsum = 0.0f, lmn = INF_F, lmx = -INF_F;
        int cfin = 0, crng = 0, ceq = 0, cd2 = 0;
        const i64 a = s * seg, b = act ? (a + seg < n ? a + seg : n) : a;
        for (i64 i = a + k; i < b; i += 8) {
            float v = x[i];
            bool fin = (v - v) == 0;
            fsum += fin ? v : 0.0f;
            lmn = (fin && v < lmn) ? v : lmn;
            lmx = (fin && v > lmx) ? v : lmx;
            cfin += fin;
            crng += fin && fabsf(v) > amax;
            if (i >= 1) ceq += x[i - 1] == v;
            if (i >= 2) {
                float p1 = x[i - 1], p2 = x[i - 2];
                float d = (v - 2.0f * p1) + p2;
                bool fd = (d - d) == 0;
                cd2 += fd;
                dsum += fd ? fabsf(d) : 0.0f;
            }
        }
        double ds = (double)fsum, dd = (double)dsum;
        for (int m = 1; m < 8; m <<= 1) {  // ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)), in every lane
            ds += __shfl_xor_sync(FULL, ds, m);
            dd += __shfl_xor_sync(FULL, dd, m);
            cfin += __shfl_xor_sync(FULL, cfin, m);
            crng += __shfl_xor_sync(FULL, crng, m);
            ceq += __shfl_xor_sync(FULL, ceq, m);
            cd2 += __shfl_xor_sync(FULL, cd2, m);
            float o = __shfl_xor_sync(FULL, lmn, m);
            float first = (k & m) ? o : lmn, second = (k & m) ? lmn : o;  // lower lanes first
            lmn = second < first ? second : first;
            o = __shfl_xor_sync(FULL, lmx, m);
            first = (k & m) ? o : lmx; second = (k & m) ? lmx : o;
            lmx = second > first ? second : first;
        }
        if (act && k == 0) {
            seg_t* T = &S[s];
            T->sum = ds; T->d2sum = dd; T->n = b - a; T->nfin = cfin; T->nd2 = cd2; T->nrange = crng;
            T->neq = ceq; T->nbad = (b - a - cfin) + crng; T->mn = lmn; T->mx = lmx;
            T->cnt_lo = 0; T->cnt_hi = 0;
            if (crng == 0) {
                T->olo = lmn; T->ohi = lmx;
            } else {  // ordinary extrema leave out the out-of-range samples
                float olo = INF_F, ohi = -INF_F;
                for (i64 i = a; i < b; i++) {
                    float v = x[i];
                    if ((v - v) == 0 && !(fabsf(v) > amax)) {
                        if (v < olo) olo = v;
                        if (v > ohi) ohi = v;
                    }
                }
                T->olo = olo; T->ohi = ohi;
            }
            if (ceq >= thr) slow = 1;
        }
    }
    __syncthreads();
    unsigned char* flag = flagall + flag_base[w];
    if (slow) {  // exact run scan: mark N, R, F per sample, recount per second
        for (i64 i = t; i < n; i += blockDim.x) {
            float v = x[i];
            flag[i] = !((v - v) == 0) ? 1 : (fabsf(v) > amax ? 2 : 0);
        }
        __syncthreads();
        for (i64 i = t; i < n; i += blockDim.x) {
            // a run starts where the value changes; a non-finite sample is a run of its own
            if (i > 0 && x[i] == x[i - 1]) continue;
            if (flag[i] != 0) continue;  // only a run of ordinary samples can be flat
            i64 j = i + 1;
            while (j < n && x[j] == x[i]) j++;
            if (j - i >= flat) {
                for (i64 q = i; q < j; q++) flag[q] = 3;
                atomicAdd(&nflat, (unsigned long long)(j - i));
            }
        }
        __syncthreads();
        for (i64 s = t; s < n_seg; s += blockDim.x) {
            seg_t* T = &S[s];
            const i64 a = s * seg, b = a + seg < n ? a + seg : n;
            i64 nb = 0;
            float olo = INF_F, ohi = -INF_F;
            for (i64 i = a; i < b; i++) {
                if (flag[i] != 0) {
                    nb++;
                } else {
                    float v = x[i];
                    if (v < olo) olo = v;
                    if (v > ohi) ohi = v;
                }
            }
            T->nbad = nb; T->olo = olo; T->ohi = ohi;
        }
        __syncthreads();
    }
    if (t == 0) {  // the window's totals, second after second (the Cython order)
        i64 nf = 0, nr = 0;
        double total = 0.0;
        float a_mn = INF_F, a_mx = -INF_F, w_lo = INF_F, w_hi = -INF_F;
        for (i64 s = 0; s < n_seg; s++) {
            const seg_t* T = &S[s];
            nf += T->nfin;
            nr += T->nrange;
            total += T->sum;
            if (T->mn < a_mn) a_mn = T->mn;
            if (T->mx > a_mx) a_mx = T->mx;
            if (T->olo < w_lo) w_lo = T->olo;
            if (T->ohi > w_hi) w_hi = T->ohi;
        }
        nfin_w = nf; nrange_w = nr; fmn = a_mn; fmx = a_mx; win_lo = w_lo; win_hi = w_hi;
        n_ord = nf - nr - (i64)nflat;
        mean = nf > 0 ? total / (double)nf : 0.0;
    }
    __syncthreads();
    if (n_ord > 0) {  // rails: the ordinary samples on them, in the seconds that hold them
        for (i64 s = t; s < n_seg; s += blockDim.x) {
            seg_t* T = &S[s];
            if (T->olo == win_lo || T->ohi == win_hi) {
                const i64 a = s * seg, b = a + seg < n ? a + seg : n;
                i64 cl = 0, ch = 0;
                for (i64 i = a; i < b; i++) {
                    if (slow && flag[i] != 0) continue;
                    cl += x[i] == win_lo;
                    ch += x[i] == win_hi;
                }
                T->cnt_lo = cl; T->cnt_hi = ch;
                atomicAdd(&cnt_lo, (unsigned long long)cl);
                atomicAdd(&cnt_hi, (unsigned long long)ch);
            }
        }
    }
    __syncthreads();
    if (t == 0) {
        const i64 cl = (i64)cnt_lo, ch = (i64)cnt_hi, no = n_ord, nf = nfin_w;
        clip_lo = no > 0 && cl >= 2 && (double)cl >= clip_frac * (double)no;
        clip_hi = no > 0 && win_hi != win_lo && ch >= 2 && (double)ch >= clip_frac * (double)no;
        lowamp = nf > 0 && ((double)fmx - (double)fmn) < min_ptp;
        int y = 0;
        if (nf < n) y |= 1;
        if (nrange_w > 0) y |= 2;
        if (nflat > 0) y |= 4;
        if (clip_lo || clip_hi) y |= 8;
        if (lowamp) y |= 64;
        why = y;
    }
    __syncthreads();
    for (i64 s = t; s < n_seg; s += blockDim.x) {
        const seg_t* T = &S[s];
        double ptp = (double)T->mx - (double)T->mn;
        bool noisy = T->nd2 > 0 && T->d2sum > max_noise * ptp * (double)T->nd2;
        bool wander = T->nfin > 0 && fabs(T->sum / (double)T->nfin - mean) > max_wander;
        int y = (noisy ? 16 : 0) | (wander ? 32 : 0);
        if (y) atomicOr(&why, y);
        i64 c = (noisy || wander || lowamp) ? T->n
              : T->nbad + (clip_lo ? T->cnt_lo : 0) + (clip_hi ? T->cnt_hi : 0);
        atomicAdd(&bad, (unsigned long long)c);
    }
    __syncthreads();
    if (t == 0) { n_bad[w] = (i64)bad; reasons[w] = why; }
}

// ------------------------------------------------------------------------------------------
// R-peak detector: one thread per window (kernels/_ecg_cy.pyx: _detect, _rr)
// ------------------------------------------------------------------------------------------
#define YAT(k) ((k) >= 0 ? y[(k) * st] : 0.0)

__device__ double slope2(const double* y, i64 st, i64 c, i64 W) {
    double best = 0.0;
    for (i64 k = (c - W + 1 > 0 ? c - W + 1 : 0); k <= c; k++) {
        double d = ((2.0 * y[k * st] + YAT(k - 1)) - YAT(k - 3)) - 2.0 * YAT(k - 4);
        d = d * d;
        if (d > best) best = d;
    }
    return best;
}

struct rr8 { i64 buf[8]; i64 n, pos; double sum, avg; };  // last eight RR intervals

__device__ void rr_push(rr8* rr, i64 gap) {  // the oldest of eight drops out of the running sum
    if (rr->n == 8) rr->sum = rr->sum - (double)rr->buf[rr->pos];
    else rr->n += 1;
    rr->buf[rr->pos] = gap;
    rr->sum = rr->sum + (double)gap;
    rr->pos = (rr->pos + 1) & 7;
    rr->avg = rr->sum / (double)rr->n;
}

__device__ i64 detect(const float* x, i64 n, const double* P, double* y, double* m, i64 st, double* ring,
                      i64 rst, i64* peaks) {
    const i64 W = (i64)P[10], REF = (i64)P[11], TW = (i64)P[12], D = (i64)P[15];
    const i64 L0 = (i64)P[13] < n ? (i64)P[13] : n;
    const double hb0 = P[0], hb1 = P[1], hb2 = P[2], ha1 = P[3], ha2 = P[4];
    const double lb0 = P[5], lb1 = P[6], lb2 = P[7], la1 = P[8], la2 = P[9];
    double held = 0.0, hx1, hx2, hy1 = 0.0, hy2 = 0.0, lx1 = 0.0, lx2 = 0.0, ly1 = 0.0, ly2 = 0.0;
    double S = 0.0, sum0 = 0.0, last_slope = 0.0, sb_v = 0.0;
    i64 last = -1, sb_c = -1, npk = 0, r = 0;
    rr8 rr;
    rr.n = 0; rr.pos = 0; rr.sum = 0.0;
    if (n <= 0) return 0;
    for (i64 i = 0; i < n; i++) {  // the filters start as if the signal had been constant
        float xi = x[i];
        if ((xi - xi) == 0) { held = xi; break; }
    }
    hx1 = held;
    hx2 = held;
    for (i64 i = 0; i < n; i++) {
        float xi = x[i];
        if ((xi - xi) == 0) held = xi;  // a non-finite sample reads as the last finite one
        double xv = held;
        double h = (((hb0 * xv + hb1 * hx1) + hb2 * hx2) - ha2 * hy2) - ha1 * hy1;
        hx2 = hx1; hx1 = xv; hy2 = hy1; hy1 = h;
        double l = (((lb0 * h + lb1 * lx1) + lb2 * lx2) - la2 * ly2) - la1 * ly1;
        lx2 = lx1; lx1 = h; ly2 = ly1; ly1 = l;
        y[i * st] = l;
        double d = ((2.0 * l + YAT(i - 1)) - YAT(i - 3)) - 2.0 * YAT(i - 4);
        double s = d * d;
        if (i >= W) S = (S + s) - ring[r * rst];
        else S = S + s;
        ring[r * rst] = s;
        r++;
        if (r == W) r = 0;
        m[i * st] = S;
    }
    double mx0 = m[0];
    for (i64 i = 0; i < L0; i++) {
        double v = m[i * st];
        if (v > mx0) mx0 = v;
        sum0 = sum0 + v;
    }
    double spki = 0.25 * mx0;
    double npki = 0.5 * (sum0 / (double)L0);
    double thr1;
    rr.avg = P[14];
    double mprev = m[0], v = n > 1 ? m[st] : 0.0;
    for (i64 c = 1; c < n - 1; c++) {
        double mnext = m[(c + 1) * st];
        double mp = mprev;
        mprev = v;
        double vc = v;
        v = mnext;
        if (!(mp < vc && vc >= mnext)) continue;
        i64 ref_i = last >= 0 ? last : 0;
        thr1 = npki + 0.25 * (spki - npki);
        if (sb_c >= 0 && (double)(c - ref_i) > 1.66 * rr.avg && sb_v > 0.5 * thr1) {
            spki = 0.25 * sb_v + 0.75 * spki;
            last_slope = slope2(y, st, sb_c, W);
            if (last >= 0) {
                rr_push(&rr, sb_c - last);
            }
            last = sb_c;
            peaks[npk++] = sb_c;
            sb_c = -1;
            sb_v = 0.0;
        }
        if (last >= 0 && c - last < REF) continue;
        thr1 = npki + 0.25 * (spki - npki);
        if (vc > thr1) {
            double sl = slope2(y, st, c, W);
            if (last >= 0 && c - last < TW && sl < 0.25 * last_slope) {  // a T wave
                npki = 0.125 * vc + 0.875 * npki;
                continue;
            }
            spki = 0.125 * vc + 0.875 * spki;
            last_slope = sl;
            if (last >= 0) {
                rr_push(&rr, c - last);
            }
            last = c;
            peaks[npk++] = c;
            sb_c = -1;
            sb_v = 0.0;
        } else {
            npki = 0.125 * vc + 0.875 * npki;
            if (sb_c < 0 || vc > sb_v) { sb_c = c; sb_v = vc; }
        }
    }
    i64 ref_i = last >= 0 ? last : 0;
    thr1 = npki + 0.25 * (spki - npki);
    if (sb_c >= 0 && (double)(n - 1 - ref_i) > 1.66 * rr.avg && sb_v > 0.5 * thr1) peaks[npk++] = sb_c;
    for (i64 q = 0; q < npk; q++) {  // R peak: the largest |band-passed| sample, less the delay
        i64 c = peaks[q], p = c;
        double best = -1.0;
        for (i64 i = (c - W > 0 ? c - W : 0); i <= c; i++) {
            double ay = fabs(y[i * st]);
            if (ay > best) { best = ay; p = i; }
        }
        peaks[q] = p - D > 0 ? p - D : 0;
    }
    return npk;
}

__device__ void heap_sort(i64* a, i64 n) {
    for (i64 start = n / 2 - 1; start >= 0; start--) {
        i64 root = start;
        while (2 * root + 1 < n) {
            i64 child = 2 * root + 1;
            if (child + 1 < n && a[child] < a[child + 1]) child++;
            if (a[root] < a[child]) { i64 tmp = a[root]; a[root] = a[child]; a[child] = tmp; root = child; }
            else break;
        }
    }
    for (i64 end = n - 1; end > 0; end--) {
        i64 tmp = a[0]; a[0] = a[end]; a[end] = tmp;
        i64 root = 0;
        while (2 * root + 1 < end) {
            i64 child = 2 * root + 1;
            if (child + 1 < end && a[child] < a[child + 1]) child++;
            if (a[root] < a[child]) { i64 t2 = a[root]; a[root] = a[child]; a[child] = t2; root = child; }
            else break;
        }
    }
}

__device__ double median(i64* v, i64 n) {  // the middle value, or the mean of the two
    heap_sort(v, n);
    if (n & 1) return (double)v[n / 2];
    return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
}

extern "C" __global__ void detector(
        const float* __restrict__ xall, const i64* lo, const i64* hi, const double* params, i64 n_win,
        const i64* ybase, i64 st, double* Y, double* M, double* ring, const i64* cap_base, i64* pk, i64* tmp,
        int stats, i64* counts, double* mean_rr, double* cv, double* rmssd, double* madsd) {
    const i64 w = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (w >= n_win) return;
    const i64 n = hi[w] - lo[w];
    i64* p = pk + cap_base[w];
    i64 k = n > 0 ? detect(xall + lo[w], n, params + w * 16, Y + ybase[w], M + ybase[w], st, ring + w, n_win, p) : 0;
    counts[w] = k;
    if (!stats) return;
    mean_rr[w] = NAN_D; cv[w] = NAN_D; rmssd[w] = NAN_D; madsd[w] = NAN_D;
    if (k < 2) return;
    double s = 0.0, q = 0.0, rr2 = 0.0;
    for (i64 i = 1; i < k; i++) s = s + (double)(p[i] - p[i - 1]);
    double mean = s / (double)(k - 1);
    for (i64 i = 1; i < k; i++) {
        double dv = (double)(p[i] - p[i - 1]) - mean;
        q = q + dv * dv;
    }
    mean_rr[w] = mean;
    cv[w] = sqrt(q / (double)(k - 1)) / mean;
    if (k >= 3) {
        for (i64 i = 2; i < k; i++) {
            double dv = (double)((p[i] - p[i - 1]) - (p[i - 1] - p[i - 2]));
            rr2 = rr2 + dv * dv;
        }
        rmssd[w] = sqrt(rr2 / (double)(k - 2)) / mean;
        i64* t = tmp + cap_base[w];
        for (i64 i = 1; i < k; i++) t[i - 1] = p[i] - p[i - 1];
        double med_rr = median(t, k - 1);
        for (i64 i = 2; i < k; i++) {
            i64 d = (p[i] - p[i - 1]) - (p[i - 1] - p[i - 2]);
            t[i - 2] = d < 0 ? -d : d;
        }
        madsd[w] = median(t, k - 2) / med_rr;
    }
}

// ------------------------------------------------------------------------------------------
// rhythm flips: inverted windows of an event (kernels/_ecg_cy.pyx: _pairs)
// ------------------------------------------------------------------------------------------
extern "C" __global__ void pairs(const double* t0, const i64* ps_, const i64* pe_, const i64* s_, const i64* e_,
                                 i64 n_ev, double within, i64* out) {
    const i64 q = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= n_ev) return;
    const i64 ps = ps_[q], pe = pe_[q], s = s_[q], e = e_[q];
    i64 cnt = 0, i = pe, j = s - 1;
    while (j + 1 <= e && t0[j + 1] - t0[i] <= within) j++;
    while (i >= ps && j >= s) {
        while (j >= s && t0[j] - t0[i] > within) j--;
        if (j < s) break;
        cnt += j - s + 1;
        i--;
    }
    out[q] = cnt;
}
"""
def _mod():
    return static_module(_SRC)


def _check_bounds(x, lo, hi, n_win):
    if len(hi) != n_win:
        raise ValueError("lo and hi need one entry per window")
    if n_win and (lo.min() < 0 or (hi < lo).any() or hi.max() > len(x)):
        raise ValueError("window bounds outside the values")


def _below(t: float) -> np.float32:
    """The largest float32 not above ``t`` (kernels/_ecg_cy.pyx: ``_below``)."""
    with np.errstate(over="ignore"):
        f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


# ----------------------------------------------------------------------------------------------
# signal quality
# ----------------------------------------------------------------------------------------------
def quality(x, lo, hi, fs, flat_s, clip_frac, max_abs, min_ptp, max_noise, max_wander):
    x, lo, hi, fs = check(x, _F32, "samples"), check(lo, _I64, "lo"), check(hi, _I64, "hi"), check(fs, _F64, "fs")
    n_win = len(lo)
    if len(hi) != n_win or len(fs) != n_win:
        raise ValueError("lo, hi and fs need one entry per window")
    _check_bounds(x, lo, hi, n_win)
    n = hi - lo
    if n_win == 0 or len(x) == 0 or not (n > 0).any():
        return np.zeros(n_win, _I64), np.zeros(n_win, np.int32)
    d_bad, d_why = quality_plan(dev(x), lo, hi, fs, flat_s, clip_frac, max_abs, min_ptp, max_noise, max_wander)()
    return cp.asnumpy(d_bad), cp.asnumpy(d_why)


def quality_plan(d_x, lo, hi, fs, flat_s, clip_frac, max_abs, min_ptp, max_noise, max_wander):
    """The quality kernel's launch over samples already on the device (``d_x``), as a callable
    returning the device results (the bench times it alone, with CUDA events)."""
    n_win = len(lo)
    n = hi - lo
    busy = n > 0
    seg = np.ones(n_win, _I64)
    flat = np.full(n_win, 2, _I64)
    with np.errstate(invalid="ignore", over="ignore"):  # only windows with samples read fs
        seg[busy] = np.maximum(1, np.floor(fs[busy] + 0.5).astype(_I64))
        flat[busy] = np.maximum(2, np.floor(float(flat_s) * fs[busy] + 0.5).astype(_I64))
    n_seg = np.where(busy, (n + seg - 1) // seg, 0)
    seg_base = np.concatenate(([0], np.cumsum(n_seg)[:-1])).astype(_I64)
    flag_base = np.concatenate(([0], np.cumsum(n)[:-1])).astype(_I64)
    S = cp.empty(max(int(n_seg.sum()), 1) * SEG_BYTES, cp.uint8)
    flags = cp.empty(max(int(n.sum()), 1), cp.uint8)
    d_bad, d_why = cp.empty(n_win, cp.int64), cp.empty(n_win, cp.int32)
    args = (d_x, dev(lo), dev(hi), dev(seg), dev(flat), dev(seg_base), dev(flag_base), _F64(clip_frac),
            _below(float(max_abs)), _F64(min_ptp), _F64(max_noise), _F64(max_wander), S, flags, d_bad, d_why)
    fn = _mod().get_function("quality")

    def run():
        fn((n_win,), (QUALITY_THREADS,), args)
        return d_bad, d_why
    return run


# ----------------------------------------------------------------------------------------------
# R-peak detector
# ----------------------------------------------------------------------------------------------
def _params(params, n_win):
    params = np.asarray(params)
    if params.dtype != _F64:
        raise ValueError(f"Buffer dtype mismatch for params: expected float64, got {params.dtype}")
    if params.ndim != 2:
        raise ValueError(f"Buffer has wrong number of dimensions for params (expected 2, got {params.ndim})")
    if params.shape[0] != n_win or params.shape[1] != N_PARAMS:
        raise ValueError(f"params must be (n_windows, {N_PARAMS})")
    if n_win and ((params[:, P_W] < 1) | (params[:, P_REF] <= params[:, P_W]) | (params[:, P_LEARN] < 1)
                  | (params[:, P_DELAY] < 0)).any():
        raise ValueError("detector lengths out of range (W >= 1, REF > W, LEARN >= 1, DELAY >= 0)")
    return np.ascontiguousarray(params)


def _detect(x, lo, hi, params, stats: bool):
    """The detector on the GPU for every window given (all of them short enough)."""
    counts, out, pk, cap_base = detector_plan(dev(x), lo, hi, params, stats)()
    counts_h = cp.asnumpy(counts)
    if stats:
        return (counts_h, *(cp.asnumpy(o) for o in out))
    # CSR by counts: each window's peaks from the start of its slot
    starts = np.concatenate(([0], np.cumsum(counts_h)[:-1])).astype(_I64)
    idx = np.repeat(cap_base - starts, counts_h) + np.arange(int(counts_h.sum()), dtype=_I64)
    return cp.asnumpy(pk[cp.asarray(idx)]) if len(idx) else np.empty(0, _I64), counts_h


def detector_plan(d_x, lo, hi, params, stats: bool):
    """The detector kernel's launch over samples already on the device (``d_x``; windows of
    at least one sample), as a callable returning ``(counts, [mean_rr, cv, rmssd, madsd],
    peak slots, slot starts)`` (the bench times it alone, with CUDA events)."""
    n_win = len(lo)
    n = hi - lo
    total = int(n.sum())
    max_n = int(n.max())
    if n_win * max_n <= 2 * total + 4096:  # alike lengths: sample i of every window side by side
        ybase, st = np.arange(n_win, dtype=_I64), n_win
        size = n_win * max_n
    else:
        ybase, st = np.concatenate(([0], np.cumsum(n)[:-1])).astype(_I64), 1
        size = total
    cap = n // np.maximum(1, params[:, P_REF].astype(_I64)) + 2  # _ecg_cy._capacity
    cap_base = np.concatenate(([0], np.cumsum(cap)[:-1])).astype(_I64)
    max_w = int(params[:, P_W].astype(_I64).max())
    Y, M = cp.empty(max(size, 1), cp.float64), cp.empty(max(size, 1), cp.float64)
    ring = cp.empty(max_w * n_win, cp.float64)
    pk = cp.empty(int(cap.sum()), cp.int64)
    tmp = cp.empty(int(cap.sum()) if stats else 1, cp.int64)
    counts = cp.empty(n_win, cp.int64)
    out = [cp.empty(n_win if stats else 1, cp.float64) for _ in range(4)]
    args = (d_x, dev(lo), dev(hi), dev(params.reshape(-1)), _I64(n_win), dev(ybase), _I64(st), Y, M, ring,
            dev(cap_base), pk, tmp, np.int32(stats), counts, *out)
    fn = _mod().get_function("detector")
    blocks = (n_win + DETECTOR_THREADS - 1) // DETECTOR_THREADS

    def run():
        fn((blocks,), (DETECTOR_THREADS,), args)
        return counts, out, pk, cap_base
    return run


def _split(lo, hi):
    """Windows for the GPU (short, non-empty) and for the Cython kernel (long)."""
    n = hi - lo
    long_ = n > LONG_WINDOW
    gpu = (n > 0) & ~long_
    return np.flatnonzero(gpu), np.flatnonzero(long_)


def _detector_inputs(x, lo, hi, params):
    """``rpeaks`` / ``rr_stats`` inputs checked as the Cython kernels check them (same order,
    same messages); returns them and the window count."""
    x, lo, hi = check(x, _F32, "samples"), check(lo, _I64, "lo"), check(hi, _I64, "hi")
    n_win = len(lo)
    if len(hi) != n_win:
        raise ValueError("lo and hi need one entry per window")
    params = _params(params, n_win)
    _check_bounds(x, lo, hi, n_win)
    return x, lo, hi, params, n_win


def rpeaks(x, lo, hi, params):
    x, lo, hi, params, n_win = _detector_inputs(x, lo, hi, params)
    counts = np.zeros(n_win, _I64)
    g, c = _split(lo, hi)
    parts = {}
    if len(g):
        pg, counts[g] = _detect(x, lo[g], hi[g], params[g], False)
        parts["g"] = (g, pg)
    if len(c):  # long windows: the Cython kernel (see the module docstring)
        pc_, counts[c] = _ecg_cy.rpeaks(x, np.ascontiguousarray(lo[c]), np.ascontiguousarray(hi[c]),
                                        np.ascontiguousarray(params[c]))
        parts["c"] = (c, pc_)
    if len(parts) < 2:
        peaks = next(iter(parts.values()))[1] if parts else np.empty(0, _I64)
        return np.ascontiguousarray(peaks, _I64), counts
    # merge in window order: each part's peaks go to their windows' places in the CSR output
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(_I64)
    peaks = np.empty(int(counts.sum()), _I64)
    for wins, pks in parts.values():
        cw = counts[wins]
        local = np.concatenate(([0], np.cumsum(cw)[:-1])).astype(_I64)
        peaks[np.repeat(starts[wins] - local, cw) + np.arange(len(pks), dtype=_I64)] = pks
    return peaks, counts


def rr_stats(x, lo, hi, params):
    x, lo, hi, params, n_win = _detector_inputs(x, lo, hi, params)
    npk = np.zeros(n_win, _I64)
    outs = [np.full(n_win, np.nan) for _ in range(4)]
    g, c = _split(lo, hi)
    for wins, run in ((g, lambda a, b, p: _detect(x, a, b, p, True)),
                      (c, lambda a, b, p: _ecg_cy.rr_stats(x, a, b, p))):  # long windows: Cython
        if len(wins):
            res = run(np.ascontiguousarray(lo[wins]), np.ascontiguousarray(hi[wins]),
                      np.ascontiguousarray(params[wins]))
            npk[wins] = res[0]
            for o, r in zip(outs, res[1:]):
                o[wins] = r
    return (npk, *outs)


# ----------------------------------------------------------------------------------------------
# rhythm flips
# ----------------------------------------------------------------------------------------------
def flips(labels, label_offset, n_labels, rec_offsets, t0, within):
    labels, rec_offsets = check(labels, _KEYS, "labels"), check(rec_offsets, _I64, "rec_offsets")
    t0 = check(t0, _F64, "t0")
    n, n_rec = len(labels), len(rec_offsets) - 1
    if len(t0) != n:
        raise ValueError("labels and t0 differ in length")
    if n_rec < 0 or (n_rec == 0 and n) or (n_rec > 0 and (rec_offsets[0] != 0 or rec_offsets[n_rec] != n)):
        raise ValueError("rec_offsets must run from 0 to the number of labels")
    if n_rec > 0 and (np.diff(rec_offsets) < 0).any():
        raise ValueError("rec_offsets must not decrease")
    e = np.empty(0, _I64)
    if n == 0:
        return e, e.copy(), e.copy(), e.copy()
    n_labels = int(n_labels)
    lab = dev(labels).astype(cp.int64)
    start = cp.zeros(n, cp.bool_)
    start[1:] = lab[1:] != lab[:-1]
    rs = rec_offsets[:-1]
    start[cp.asarray(rs[rs < n])] = True  # a record's first position starts a run
    s = cp.flatnonzero(start)
    end = cp.concatenate([s[1:], cp.array([n], cp.int64)]) - 1
    L = lab[s] - np.int64(label_offset)
    if bool(((L < 0) | (L >= n_labels)).any()):
        raise ValueError("label code out of range")
    rec = cp.searchsorted(cp.asarray(rec_offsets), s, side="right") - 1
    # each run's latest earlier run of its label in its record: the one before it after a
    # stable sort by (record, label) (runs are already in position order)
    if (n_rec + 1) * (n_labels + 1) * (n + 1) < 2**62:  # a unique key: no reliance on stability
        order = cp.argsort((rec * np.int64(n_labels) + L) * np.int64(n) + cp.arange(s.shape[0], dtype=cp.int64))
    else:
        order = cp.argsort(L)
        order = order[cp.argsort(rec[order])]
    key_r, key_l = rec[order], L[order]
    same = (key_r[1:] == key_r[:-1]) & (key_l[1:] == key_l[:-1])
    prev, cur = order[:-1][same], order[1:][same]
    t0d = cp.asarray(t0)
    ok = t0d[s[cur]] - t0d[end[prev]] <= within
    prev, cur = prev[ok], cur[ok]
    o = cp.argsort(cur)  # events in position order of their second run
    prev, cur = prev[o], cur[o]
    n_ev = int(cur.shape[0])
    if n_ev == 0:
        return e, e.copy(), e.copy(), e.copy()
    ps, pe, cs, ce = s[prev], end[prev], s[cur], end[cur]
    sev = cp.empty(n_ev, cp.int64)
    launch(_mod(), "pairs", n_ev, t0d, ps, pe, cs, ce, np.int64(n_ev), _F64(within), sev)
    return (cp.asnumpy(pe + 1).astype(_I64), cp.asnumpy(cs - 1).astype(_I64), cp.asnumpy(pe).astype(_I64),
            cp.asnumpy(sev).astype(_I64))


__all__ = ["quality", "rpeaks", "rr_stats", "flips", "quality_plan", "detector_plan", "LONG_WINDOW"]
