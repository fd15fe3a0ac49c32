"""ECG window kernels (Numba backend).

Siblings of ``kernels/_ecg_cy.pyx`` with the same names, argument order and results (that
module's docstring is the contract); called by ``tripwire.ecg`` through ``tripwire._dispatch``
when ``backend="numba"``. Serial (the Cython kernels are the threaded ones). Arithmetic repeats
the Cython kernels' operations in the same order and precision (float32 lane sums by position
mod 8 within a second, double elsewhere), so every backend takes every decision alike.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .._config import NUMBA_OPTIONS
from ._jit_args import readonly_args

_JIT = dict(NUMBA_OPTIONS)

N_PARAMS = 16
_TWO = np.float32(2.0)
_ZERO = np.float32(0.0)


def _below(t: float) -> np.float32:
    """The largest float32 not above ``t`` (``|v| > t`` exactly when ``|v| > _below(t)``)."""
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


# ----------------------------------------------------------------------------------------------
# signal quality
# ----------------------------------------------------------------------------------------------
@njit(**_JIT)
def _lanes(a):
    return ((np.float64(a[0]) + np.float64(a[1])) + (np.float64(a[2]) + np.float64(a[3]))) \
        + ((np.float64(a[4]) + np.float64(a[5])) + (np.float64(a[6]) + np.float64(a[7])))


@njit(**_JIT)
def _quality_window(x, n, fs, flat_s, clip_frac, max_abs, amax, min_ptp, max_noise, max_wander):
    seg = max(1, int(math.floor(fs + 0.5)))
    flat = max(2, int(math.floor(flat_s * fs + 0.5)))
    n_seg = (n + seg - 1) // seg
    s_sum = np.zeros(n_seg)
    s_d2 = np.zeros(n_seg)
    s_n = np.zeros(n_seg, np.int64)
    s_nfin = np.zeros(n_seg, np.int64)
    s_nd2 = np.zeros(n_seg, np.int64)
    s_nbad = np.zeros(n_seg, np.int64)
    s_nrange = np.zeros(n_seg, np.int64)
    s_mn = np.empty(n_seg, np.float32)
    s_mx = np.empty(n_seg, np.float32)
    s_olo = np.empty(n_seg, np.float32)
    s_ohi = np.empty(n_seg, np.float32)
    s_clo = np.zeros(n_seg, np.int64)
    s_chi = np.zeros(n_seg, np.int64)
    inf32 = np.float32(np.inf)
    thr = max(1, min(flat // 2, seg - 1))
    slow = False
    fsum = np.zeros(8, np.float32)
    dsum = np.zeros(8, np.float32)
    for s in range(n_seg):
        a = s * seg
        b = min(a + seg, n)
        fsum[:] = 0
        dsum[:] = 0
        mn, mx, olo, ohi = inf32, -inf32, inf32, -inf32
        nfin = nd2 = nrange = neq = 0
        for i in range(a, b):
            k = (i - a) & 7
            v = x[i]
            fin = (v - v) == 0
            if fin:
                nfin += 1
                fsum[k] += v
                if v < mn:
                    mn = v
                if v > mx:
                    mx = v
                if abs(v) > amax:
                    nrange += 1
                else:
                    if v < olo:
                        olo = v
                    if v > ohi:
                        ohi = v
            if i >= 1 and x[i - 1] == v:
                neq += 1
            if i >= 2:
                d = (v - _TWO * x[i - 1]) + x[i - 2]
                if (d - d) == 0:
                    nd2 += 1
                    dsum[k] += abs(d)
        s_sum[s] = _lanes(fsum)
        s_d2[s] = _lanes(dsum)
        s_n[s] = b - a
        s_nfin[s] = nfin
        s_nd2[s] = nd2
        s_nrange[s] = nrange
        s_nbad[s] = (b - a - nfin) + nrange
        s_mn[s], s_mx[s], s_olo[s], s_ohi[s] = mn, mx, olo, ohi
        if neq >= thr:
            slow = True
    nflat = 0
    flag = np.zeros(0, np.uint8)
    if slow:
        flag = np.zeros(n, np.uint8)
        for i in range(n):
            v = x[i]
            if not ((v - v) == 0):
                flag[i] = 1
            elif abs(v) > amax:
                flag[i] = 2
        i = 0
        while i < n:
            j = i + 1
            if flag[i] != 1:
                while j < n and x[j] == x[i]:
                    j += 1
                if j - i >= flat and flag[i] == 0:
                    for q in range(i, j):
                        flag[q] = 3
                    nflat += j - i
            i = j
        for s in range(n_seg):
            a = s * seg
            b = min(a + seg, n)
            nb = 0
            olo, ohi = inf32, -inf32
            for i in range(a, b):
                if flag[i] != 0:
                    nb += 1
                else:
                    v = x[i]
                    if v < olo:
                        olo = v
                    if v > ohi:
                        ohi = v
            s_nbad[s] = nb
            s_olo[s], s_ohi[s] = olo, ohi
    nfin = 0
    nrange = 0
    total = 0.0
    fmn, fmx, win_lo, win_hi = inf32, -inf32, inf32, -inf32
    for s in range(n_seg):
        nfin += s_nfin[s]
        nrange += s_nrange[s]
        total = total + s_sum[s]
        if s_mn[s] < fmn:
            fmn = s_mn[s]
        if s_mx[s] > fmx:
            fmx = s_mx[s]
        if s_olo[s] < win_lo:
            win_lo = s_olo[s]
        if s_ohi[s] > win_hi:
            win_hi = s_ohi[s]
    n_ord = nfin - nrange - nflat
    cnt_lo = 0
    cnt_hi = 0
    if n_ord > 0:
        for s in range(n_seg):
            if s_olo[s] == win_lo or s_ohi[s] == win_hi:
                a = s * seg
                b = min(a + seg, n)
                for i in range(a, b):
                    if slow and flag[i] != 0:
                        continue
                    if x[i] == win_lo:
                        s_clo[s] += 1
                    if x[i] == win_hi:
                        s_chi[s] += 1
                cnt_lo += s_clo[s]
                cnt_hi += s_chi[s]
    clip_lo = n_ord > 0 and cnt_lo >= 2 and np.float64(cnt_lo) >= clip_frac * np.float64(n_ord)
    clip_hi = n_ord > 0 and win_hi != win_lo and cnt_hi >= 2 and np.float64(cnt_hi) >= clip_frac * np.float64(n_ord)
    lowamp = nfin > 0 and (np.float64(fmx) - np.float64(fmn)) < min_ptp
    mean = total / np.float64(nfin) if nfin > 0 else 0.0
    why = 0
    if nfin < n:
        why |= 1
    if nrange > 0:
        why |= 2
    if nflat > 0:
        why |= 4
    if clip_lo or clip_hi:
        why |= 8
    if lowamp:
        why |= 64
    bad = 0
    for s in range(n_seg):
        ptp = np.float64(s_mx[s]) - np.float64(s_mn[s])
        noisy = s_nd2[s] > 0 and s_d2[s] > max_noise * ptp * np.float64(s_nd2[s])
        wander = s_nfin[s] > 0 and abs(s_sum[s] / np.float64(s_nfin[s]) - mean) > max_wander
        if noisy:
            why |= 16
        if wander:
            why |= 32
        if noisy or wander or lowamp:
            bad += s_n[s]
        else:
            bad += s_nbad[s] + (s_clo[s] if clip_lo else 0) + (s_chi[s] if clip_hi else 0)
    return bad, why


@njit(**_JIT)
def _quality(x, lo, hi, fs, flat_s, clip_frac, max_abs, amax, min_ptp, max_noise, max_wander):
    n_win = lo.shape[0]
    bad = np.zeros(n_win, np.int64)
    why = np.zeros(n_win, np.int32)
    for w in range(n_win):
        if hi[w] > lo[w]:
            b, r = _quality_window(x[lo[w]:hi[w]], hi[w] - lo[w], fs[w], flat_s, clip_frac, max_abs, amax, min_ptp,
                                   max_noise, max_wander)
            bad[w] = b
            why[w] = r
    return bad, why


def _check_bounds(x, lo, hi):
    n_x = len(x)
    if len(lo) and (np.any(lo < 0) or np.any(hi < lo) or np.any(hi > n_x)):
        raise ValueError("window bounds outside the values")


@readonly_args
def quality(x, lo, hi, fs, flat_s, clip_frac, max_abs, min_ptp, max_noise, max_wander):
    if len(hi) != len(lo) or len(fs) != len(lo):
        raise ValueError("lo, hi and fs need one entry per window")
    _check_bounds(x, lo, hi)
    return _quality(x, lo, hi, fs, float(flat_s), float(clip_frac), float(max_abs), _below(float(max_abs)),
                    float(min_ptp), float(max_noise), float(max_wander))


# ----------------------------------------------------------------------------------------------
# R-peak detector
# ----------------------------------------------------------------------------------------------
@njit(**_JIT)
def _yat(y, k):
    return y[k] if k >= 0 else 0.0


@njit(**_JIT)
def _slope2(y, c, W):
    best = 0.0
    for k in range(max(0, c - W + 1), c + 1):
        d = ((2.0 * y[k] + _yat(y, k - 1)) - _yat(y, k - 3)) - 2.0 * _yat(y, k - 4)
        d = d * d
        if d > best:
            best = d
    return best


@njit(**_JIT)
def _rr_push(rr_buf, rr_sum, n_rr, rr_pos, gap):
    """One more RR interval: the oldest of eight drops out of the running sum."""
    if n_rr == 8:
        rr_sum = rr_sum - rr_buf[rr_pos]
    else:
        n_rr += 1
    rr_buf[rr_pos] = gap
    rr_sum = rr_sum + gap
    return rr_sum, n_rr, (rr_pos + 1) & 7, rr_sum / n_rr


@njit(**_JIT)
def _detect(x, P, peaks):
    n = x.shape[0]
    if n <= 0:
        return 0
    W, REF, TW = int(P[10]), int(P[11]), int(P[12])
    L0, D = min(int(P[13]), n), int(P[15])
    hb0, hb1, hb2, ha1, ha2 = P[0], P[1], P[2], P[3], P[4]
    lb0, lb1, lb2, la1, la2 = P[5], P[6], P[7], P[8], P[9]
    y = np.empty(n)
    m = np.empty(n)
    ring = np.empty(W)
    held = 0.0
    for i in range(n):
        xi = x[i]
        if (xi - xi) == 0:
            held = np.float64(xi)
            break
    hx1 = held
    hx2 = held
    hy1 = hy2 = lx1 = lx2 = ly1 = ly2 = 0.0
    S = 0.0
    for i in range(n):
        xi = x[i]
        if (xi - xi) == 0:
            held = np.float64(xi)
        xv = held
        h = (((hb0 * xv + hb1 * hx1) + hb2 * hx2) - ha2 * hy2) - ha1 * hy1
        hx2 = hx1
        hx1 = xv
        hy2 = hy1
        hy1 = h
        low = (((lb0 * h + lb1 * lx1) + lb2 * lx2) - la2 * ly2) - la1 * ly1
        lx2 = lx1
        lx1 = h
        ly2 = ly1
        ly1 = low
        y[i] = low
        d = ((2.0 * low + _yat(y, i - 1)) - _yat(y, i - 3)) - 2.0 * _yat(y, i - 4)
        s = d * d
        if i >= W:
            S = (S + s) - ring[i % W]
        else:
            S = S + s
        ring[i % W] = s
        m[i] = S
    mx0 = m[0]
    sum0 = 0.0
    for i in range(L0):
        if m[i] > mx0:
            mx0 = m[i]
        sum0 = sum0 + m[i]
    spki = 0.25 * mx0
    npki = 0.5 * (sum0 / L0)
    rr_avg = P[14]
    rr_buf = np.zeros(8, np.int64)
    rr_sum = 0.0
    n_rr = 0
    rr_pos = 0
    last = -1
    last_slope = 0.0
    sb_c = -1
    sb_v = 0.0
    npk = 0
    for c in range(1, n - 1):
        v = m[c]
        if not (m[c - 1] < v and v >= m[c + 1]):
            continue
        ref_i = last if last >= 0 else 0
        thr1 = npki + 0.25 * (spki - npki)
        if sb_c >= 0 and (c - ref_i) > 1.66 * rr_avg and sb_v > 0.5 * thr1:
            spki = 0.25 * sb_v + 0.75 * spki
            last_slope = _slope2(y, sb_c, W)
            if last >= 0:
                rr_sum, n_rr, rr_pos, rr_avg = _rr_push(rr_buf, rr_sum, n_rr, rr_pos, sb_c - last)
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
            if last >= 0 and c - last < TW and sl < 0.25 * last_slope:
                npki = 0.125 * v + 0.875 * npki
                continue
            spki = 0.125 * v + 0.875 * spki
            last_slope = sl
            if last >= 0:
                rr_sum, n_rr, rr_pos, rr_avg = _rr_push(rr_buf, rr_sum, n_rr, rr_pos, c - last)
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
    if sb_c >= 0 and (n - 1 - ref_i) > 1.66 * rr_avg and sb_v > 0.5 * thr1:
        peaks[npk] = sb_c
        npk += 1
    for k in range(npk):
        c = peaks[k]
        p = c
        best = -1.0
        for i in range(max(0, c - W), c + 1):
            ay = abs(y[i])
            if ay > best:
                best = ay
                p = i
        peaks[k] = max(0, p - D)
    return npk


@njit(**_JIT)
def _rpeaks(x, lo, hi, params):
    n_win = lo.shape[0]
    counts = np.zeros(n_win, np.int64)
    cap = np.zeros(n_win + 1, np.int64)
    for w in range(n_win):
        cap[w + 1] = cap[w] + (hi[w] - lo[w]) // max(1, int(params[w, 11])) + 2
    buf = np.empty(max(cap[n_win], 1), np.int64)
    for w in range(n_win):
        if hi[w] > lo[w]:
            counts[w] = _detect(x[lo[w]:hi[w]], params[w], buf[cap[w]:cap[w + 1]])
    out = np.empty(counts.sum(), np.int64)
    at = 0
    for w in range(n_win):
        for k in range(counts[w]):
            out[at + k] = buf[cap[w] + k]
        at += counts[w]
    return out, counts


@njit(**_JIT)
def _median(v):
    s = np.sort(v)
    n = s.shape[0]
    if n & 1:
        return np.float64(s[n // 2])
    return (np.float64(s[n // 2 - 1]) + np.float64(s[n // 2])) / 2.0


@njit(**_JIT)
def _rr_stats(x, lo, hi, params):
    n_win = lo.shape[0]
    npk = np.zeros(n_win, np.int64)
    mean_out = np.full(n_win, np.nan)
    cv_out = np.full(n_win, np.nan)
    rm_out = np.full(n_win, np.nan)
    mad_out = np.full(n_win, np.nan)
    for w in range(n_win):
        if hi[w] <= lo[w]:
            continue
        p = np.empty((hi[w] - lo[w]) // max(1, int(params[w, 11])) + 2, np.int64)
        k = _detect(x[lo[w]:hi[w]], params[w], p)
        npk[w] = k
        if k < 2:
            continue
        s = 0.0
        for i in range(1, k):
            s = s + np.float64(p[i] - p[i - 1])
        mean = s / (k - 1)
        q = 0.0
        for i in range(1, k):
            dv = np.float64(p[i] - p[i - 1]) - mean
            q = q + dv * dv
        mean_out[w] = mean
        cv_out[w] = math.sqrt(q / (k - 1)) / mean
        if k >= 3:
            r = 0.0
            for i in range(2, k):
                dv = np.float64((p[i] - p[i - 1]) - (p[i - 1] - p[i - 2]))
                r = r + dv * dv
            rm_out[w] = math.sqrt(r / (k - 2)) / mean
            rr = p[1:k] - p[:k - 1]
            mad_out[w] = _median(np.abs(rr[1:] - rr[:-1])) / _median(rr)
    return npk, mean_out, cv_out, rm_out, mad_out


def _check_params(params, n_win):
    if params.shape != (n_win, N_PARAMS):
        raise ValueError(f"params must be (n_windows, {N_PARAMS})")
    if n_win and (np.any(params[:, 10] < 1) or np.any(params[:, 11] <= params[:, 10]) or np.any(params[:, 13] < 1)
                  or np.any(params[:, 15] < 0)):
        raise ValueError("detector lengths out of range (W >= 1, REF > W, LEARN >= 1, DELAY >= 0)")


@readonly_args
def rpeaks(x, lo, hi, params):
    if len(hi) != len(lo):
        raise ValueError("lo and hi need one entry per window")
    _check_params(params, len(lo))
    _check_bounds(x, lo, hi)
    return _rpeaks(x, lo, hi, params)


@readonly_args
def rr_stats(x, lo, hi, params):
    if len(hi) != len(lo):
        raise ValueError("lo and hi need one entry per window")
    _check_params(params, len(lo))
    _check_bounds(x, lo, hi)
    return _rr_stats(x, lo, hi, params)


# ----------------------------------------------------------------------------------------------
# rhythm flips
# ----------------------------------------------------------------------------------------------
@njit(**_JIT)
def _pairs(t0, ps, pe, s, e, within):
    cnt = 0
    i = pe
    j = s - 1
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


@njit(**_JIT)
def _flips(labels, label_offset, n_labels, rec_offsets, t0, within):
    n = labels.shape[0]
    run_s = np.zeros(n_labels, np.int64)
    run_e = np.zeros(n_labels, np.int64)
    stamp = np.full(n_labels, -1, np.int64)
    first = np.empty(n, np.int64)
    last = np.empty(n, np.int64)
    src = np.empty(n, np.int64)
    sev = np.empty(n, np.int64)
    m = 0
    for r in range(rec_offsets.shape[0] - 1):
        ra, rb = rec_offsets[r], rec_offsets[r + 1]
        s = ra
        while s < rb:
            cur = labels[s]
            j = s + 1
            while j < rb and labels[j] == cur:
                j += 1
            e = j - 1
            L = cur - label_offset
            if stamp[L] == r:
                ps, pe = run_s[L], run_e[L]
                if t0[s] - t0[pe] <= within:
                    first[m] = pe + 1
                    last[m] = s - 1
                    src[m] = pe
                    sev[m] = _pairs(t0, ps, pe, s, e, within)
                    m += 1
            stamp[L] = r
            run_s[L] = s
            run_e[L] = e
            s = j
    return first[:m].copy(), last[:m].copy(), src[:m].copy(), sev[:m].copy()


@readonly_args
def flips(labels, label_offset, n_labels, rec_offsets, t0, within):
    n = len(labels)
    if len(t0) != n:
        raise ValueError("labels and t0 differ in length")
    n_rec = len(rec_offsets) - 1
    if n_rec < 0 or (n_rec == 0 and n) or (n_rec > 0 and (rec_offsets[0] != 0 or rec_offsets[-1] != n)):
        raise ValueError("rec_offsets must run from 0 to the number of labels")
    if n_rec > 0 and np.any(np.diff(rec_offsets) < 0):
        raise ValueError("rec_offsets must not decrease")
    if n and (int(labels.min()) - label_offset < 0 or int(labels.max()) - label_offset >= n_labels):
        raise ValueError("label code out of range")
    return _flips(labels, np.int64(label_offset), np.int64(n_labels), rec_offsets, t0, float(within))
