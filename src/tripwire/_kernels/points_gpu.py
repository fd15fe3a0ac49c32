"""LIDAR point and 3D box kernels (CuPy backend).

Siblings of ``kernels/_points_cy.pyx`` with the same names, argument order and results; called
by ``tripwire.points`` through ``tripwire._dispatch`` when ``backend="cupy"``. Host NumPy
arrays in and out. The geometry repeats the Cython kernels' double-precision operations in the
same order (no fused multiply-add, per-box trigonometry by the host's libm: see
``tripwire._kernels._gpu``), so every backend decides every point, corner and overlap alike.

What runs where:

- ``count_in_boxes``: one GPU thread per point, looking up its frame's bird's-eye-view grid
  and testing only the boxes listed in its cell; a block takes a run of one frame's points
  and counts hits in shared memory, then adds them to the global counts (atomic adds of
  integers: the result does not depend on their order). ``chunk`` (the Cython kernel's
  thread work size) is validated and otherwise unused. The grids are built on the host from the boxes
  (vectorized NumPy, O(boxes + cell entries)); the points never leave the device once copied.
- ``project_match``: one thread per 3D box projects it; candidate pairs are counted and
  written by one thread per 3D box, sorted on the device by (unit, -IoU) with stable sorts
  (so ties stay in (3D, 2D) position order), and one thread per (camera, frame) unit walks
  its sorted candidates greedily (the greedy choice is sequential within a unit only).
- ``bev_multibox``: one thread per box tests it against the later boxes of its frame (rotated
  rectangle clipping in double); the links are joined into components on the device (hook
  and compress rounds); events are numbered on the host (vectorized, O(boxes)).
- ``size_prior``, ``few_points``: one thread per row, then a compaction of the flagged rows.
"""
from __future__ import annotations

import numpy as np

from ._gpu import (THREADS, check, connected_labels, cp, dev, emit_groups, frame_of, host_cos_sin, launch,
                   link_ends, overlap_links, static_module)

_F32, _F64, _I64, _U8 = np.float32, np.float64, np.int64, np.uint8
_PAD_REL = 1e-6
_PAD_ABS = 1e-6
POINTS_PER_BLOCK = 4096  # points of one frame per GPU block in ``count_in_boxes``

_SRC = r"""
#define NAN_F __int_as_float(0x7fc00000)

__device__ __forceinline__ float mn(float a, float b) { return (b < a) ? b : a; }  // Cython's min
__device__ __forceinline__ float mx(float a, float b) { return (b > a) ? b : a; }  // Cython's max

#define SHARED_BOXES 4096  // a frame with at most this many boxes counts in shared memory

// one block per work item (a run of one frame's points); hits go to per-block counters in
// shared memory, added to the global counts once per block (hits of a dense scene would
// otherwise contend on a few global addresses); frames with more boxes add globally
extern "C" __global__ void count_points(
        const float* px, const float* py, const float* pz,
        const long long* item_frame, const long long* item_lo, const long long* item_hi,
        const long long* box_offsets,
        const double* gx0, const double* gy0, const double* ginv, const long long* gnx,
        const long long* gny, const long long* gbase,
        const long long* cell_start, const long long* cell_box, const double* B,
        unsigned long long* counts) {
    __shared__ unsigned int local[SHARED_BOXES];
    long long g = item_frame[blockIdx.x];
    long long b0 = box_offsets[g], m = box_offsets[g + 1] - b0;
    bool shared = m <= SHARED_BOXES;
    if (shared)
        for (long long k = threadIdx.x; k < m; k += blockDim.x) local[k] = 0;
    __syncthreads();
    double x0 = gx0[g], y0 = gy0[g], inv = ginv[g];
    long long nx = gnx[g], ny = gny[g], base = gbase[g];
    for (long long i = item_lo[blockIdx.x] + threadIdx.x; i < item_hi[blockIdx.x]; i += blockDim.x) {
        double x = px[i], y = py[i];
        double fx = (x - x0) * inv;
        double fy = (y - y0) * inv;
        if (!((fx >= 0.0) & (fx <= (double)nx) & (fy >= 0.0) & (fy <= (double)ny))) continue;  // also NaN
        long long ix = (long long)fx, iy = (long long)fy;
        if (ix > nx - 1) ix = nx - 1;
        if (iy > ny - 1) iy = ny - 1;
        long long cell = base + iy * nx + ix;
        long long e0 = cell_start[cell], e1 = cell_start[cell + 1];
        if (e0 == e1) continue;
        double z = pz[i];
        for (long long e = e0; e < e1; ++e) {
            long long b = cell_box[e];
            const double* Q = B + 8 * b;  // cx cy cz cos sin hl hw hh
            double dx = x - Q[0], dy = y - Q[1];
            double lx = dx * Q[3] + dy * Q[4];
            double ly = dy * Q[3] - dx * Q[4];
            if ((fabs(lx) <= Q[5]) & (fabs(ly) <= Q[6]) & (fabs(z - Q[2]) <= Q[7])) {
                if (shared) atomicAdd(&local[b - b0], 1u);
                else atomicAdd(&counts[b], 1ULL);
            }
        }
    }
    if (!shared) return;
    __syncthreads();
    for (long long k = threadIdx.x; k < m; k += blockDim.x)
        if (local[k]) atomicAdd(&counts[b0 + k], (unsigned long long)local[k]);
}

__constant__ int EDGE_A[12] = {0, 2, 4, 6, 0, 1, 4, 5, 0, 1, 2, 3};
__constant__ int EDGE_B[12] = {1, 3, 5, 7, 2, 3, 6, 7, 4, 5, 6, 7};

extern "C" __global__ void project(
        const float* cx, const float* cy, const float* cz, const float* l, const float* w,
        const float* h, const float* yaw, const double* cosv, const double* sinv,
        const long long* cam_of_box, const double* Kall, const double* Tall, const double* width,
        const double* height, double near, long long n3, float* proj, long long* match3) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n3) return;
    float* out = proj + 4 * i;
    out[0] = out[1] = out[2] = out[3] = NAN_F;
    match3[i] = -2;
    if (!(isfinite(cx[i]) && isfinite(cy[i]) && isfinite(cz[i]) && isfinite(l[i]) && isfinite(w[i])
          && isfinite(h[i]) && isfinite(yaw[i]))) return;
    long long cam = cam_of_box[i];
    const double* K = Kall + 9 * cam;
    const double* T = Tall + 16 * cam;
    double c = cosv[i], s = sinv[i];
    double X[8], Y[8], Z[8];
    for (int k = 0; k < 8; ++k) {
        double ox = ((k & 1) ? 0.5 : -0.5) * (double)l[i];
        double oy = ((k & 2) ? 0.5 : -0.5) * (double)w[i];
        double oz = ((k & 4) ? 0.5 : -0.5) * (double)h[i];
        double wx = (double)cx[i] + (c * ox - s * oy);
        double wy = (double)cy[i] + (s * ox + c * oy);
        double wz = (double)cz[i] + oz;
        X[k] = T[0] * wx + T[1] * wy + T[2] * wz + T[3];
        Y[k] = T[4] * wx + T[5] * wy + T[6] * wz + T[7];
        Z[k] = T[8] * wx + T[9] * wy + T[10] * wz + T[11];
    }
    double umin = 1e300, umax = -1e300, vmin = 1e300, vmax = -1e300, qx, qy, qz;
    int n_vert = 0;
    for (int k = 0; k < 20; ++k) {  // 8 corners, then 12 edge crossings of the near plane
        if (k < 8) {
            if (!(Z[k] >= near)) continue;
            qx = X[k]; qy = Y[k]; qz = Z[k];
        } else {
            int a = EDGE_A[k - 8], b = EDGE_B[k - 8];
            if (!((Z[a] < near && Z[b] > near) || (Z[a] > near && Z[b] < near))) continue;
            double t = (near - Z[a]) / (Z[b] - Z[a]);
            qx = X[a] + t * (X[b] - X[a]);
            qy = Y[a] + t * (Y[b] - Y[a]);
            qz = near;
        }
        double u = (K[0] * qx + K[1] * qy + K[2] * qz) / qz;
        double v = (K[3] * qx + K[4] * qy + K[5] * qz) / qz;
        umin = (u < umin) ? u : umin;
        umax = (u > umax) ? u : umax;
        vmin = (v < vmin) ? v : vmin;
        vmax = (v > vmax) ? v : vmax;
        n_vert += 1;
    }
    if (n_vert == 0) return;
    double W = width[cam], H = height[cam];
    float x1 = (float)((0.0 > umin) ? 0.0 : umin);
    float y1 = (float)((0.0 > vmin) ? 0.0 : vmin);
    float x2 = (float)((W < umax) ? W : umax);
    float y2 = (float)((H < vmax) ? H : vmax);
    if (x2 > x1 && y2 > y1) {
        out[0] = x1; out[1] = y1; out[2] = x2; out[3] = y2;
        match3[i] = -1;
    }
}

// candidate pairs of a 3D box (IoU >= t in float32, as _match_unit): fill == 0 counts them
// into count[i], fill == 1 writes them from start[i] on, in 2D position order
extern "C" __global__ void match_candidates(
        const float* proj, const long long* unit_of_box, const long long* off2,
        const float* x1, const float* y1, const float* x2, const float* y2, float t, long long n3,
        int fill, long long* count, const long long* start, float* key, long long* ci,
        long long* cj) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n3) return;
    float ax1 = proj[4 * i];
    long long nc = 0, at = fill ? start[i] : 0;
    if (ax1 == ax1) {
        float ay1 = proj[4 * i + 1], ax2 = proj[4 * i + 2], ay2 = proj[4 * i + 3];
        float area_a = (ax2 - ax1) * (ay2 - ay1);
        long long u = unit_of_box[i];
        for (long long j = off2[u]; j < off2[u + 1]; ++j) {
            float ix = mn(ax2, x2[j]) - mx(ax1, x1[j]);
            if (!(ix > 0)) continue;
            float iy = mn(ay2, y2[j]) - mx(ay1, y1[j]);
            if (!(iy > 0)) continue;
            float inter = ix * iy;
            float uni = area_a + (x2[j] - x1[j]) * (y2[j] - y1[j]) - inter;
            if (inter >= t * uni) {
                if (fill) {
                    key[at + nc] = -(inter / uni);
                    ci[at + nc] = i;
                    cj[at + nc] = j;
                }
                nc += 1;
            }
        }
    }
    if (!fill) count[i] = nc;
}

// greedy one-to-one matching of one unit over its candidates in greedy order
extern "C" __global__ void match_greedy(const long long* ci, const long long* cj,
                                        const long long* unit_start, long long n_units,
                                        long long* match3, long long* match2) {
    long long u = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (u >= n_units) return;
    for (long long c = unit_start[u]; c < unit_start[u + 1]; ++c) {
        long long i = ci[c], j = cj[c];
        if (match3[i] != -1 || match2[j] != -1) continue;
        match3[i] = j;
        match2[j] = i;
    }
}

extern "C" __global__ void bev_prepare(
        const float* cx, const float* cy, const float* l, const float* w, const float* yaw,
        const double* cosv, const double* sinv, long long n, unsigned char* ok, double* qx,
        double* qy, double* area, double* radius) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    ok[i] = isfinite(cx[i]) && isfinite(cy[i]) && isfinite(l[i]) && isfinite(w[i]) && isfinite(yaw[i])
            && l[i] > 0 && w[i] > 0;
    if (!ok[i]) return;
    double c = cosv[i], s = sinv[i];
    double hl = 0.5 * (double)l[i], hw = 0.5 * (double)w[i];
    double ox[4] = {hl, -hl, -hl, hl};  // counter-clockwise footprint corners
    double oy[4] = {hw, hw, -hw, -hw};
    for (int k = 0; k < 4; ++k) {
        qx[4 * i + k] = (double)cx[i] + (c * ox[k] - s * oy[k]);
        qy[4 * i + k] = (double)cy[i] + (s * ox[k] + c * oy[k]);
    }
    area[i] = (double)l[i] * (double)w[i];
    radius[i] = 0.5 * sqrt((double)l[i] * l[i] + (double)w[i] * w[i]);
}

__device__ double overlap_area(const double* ax, const double* ay, const double* bx, const double* by) {
    double px[16], py[16], qx[16], qy[16];
    int n = 4;
    for (int k = 0; k < 4; ++k) { px[k] = ax[k]; py[k] = ay[k]; }
    for (int e = 0; e < 4; ++e) {  // Sutherland-Hodgman: clip A by each edge of B
        double ex0 = bx[e], ey0 = by[e], ex1 = bx[(e + 1) % 4], ey1 = by[(e + 1) % 4];
        int m = 0;
        for (int k = 0; k < n; ++k) {
            int j = (k + 1) % n;
            double dp = (ex1 - ex0) * (py[k] - ey0) - (ey1 - ey0) * (px[k] - ex0);
            double dq = (ex1 - ex0) * (py[j] - ey0) - (ey1 - ey0) * (px[j] - ex0);
            if (dp >= 0) { qx[m] = px[k]; qy[m] = py[k]; m += 1; }
            if ((dp >= 0) != (dq >= 0)) {
                double t = dp / (dp - dq);
                qx[m] = px[k] + t * (px[j] - px[k]);
                qy[m] = py[k] + t * (py[j] - py[k]);
                m += 1;
            }
        }
        n = m;
        if (n == 0) return 0.0;
        for (int k = 0; k < n; ++k) { px[k] = qx[k]; py[k] = qy[k]; }
    }
    double area = 0.0;
    for (int k = 0; k < n; ++k) {
        int j = (k + 1) % n;
        area += px[k] * py[j] - px[j] * py[k];
    }
    return fabs(area) * 0.5;
}

// links of box i to the later boxes of its frame (j < end[i]): fill == 0 counts, 1 writes
extern "C" __global__ void bev_links(
        const float* cx, const float* cy, const unsigned char* ok, const double* qx,
        const double* qy, const double* area, const double* radius, const long long* end,
        double iou, long long n, int fill, long long* count, const long long* start,
        long long* la, long long* lb) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    long long nc = 0, at = fill ? start[i] : 0;
    if (ok[i]) {
        for (long long j = i + 1; j < end[i]; ++j) {
            if (!ok[j]) continue;
            // footprints whose circumscribed circles are apart cannot overlap
            double dx = (double)cx[i] - cx[j];
            double dy = (double)cy[i] - cy[j];
            double reach = (radius[i] + radius[j]) * (1.0 + 1e-6) + 1e-9;
            if (dx * dx + dy * dy > reach * reach) continue;
            double inter = overlap_area(qx + 4 * i, qy + 4 * i, qx + 4 * j, qy + 4 * j);
            double uni = area[i] + area[j] - inter;
            if (inter > 0 && inter >= iou * uni) {
                if (fill) { la[at + nc] = i; lb[at + nc] = j; }
                nc += 1;
            }
        }
    }
    if (!fill) count[i] = nc;
}

__device__ __forceinline__ float outside(float d, double lo, double hi, int low_bit, int high_bit,
                                         unsigned char* why) {
    if (d < lo) { *why |= low_bit; return (float)((lo - d) / lo); }
    if (d > hi) { *why |= high_bit; return (float)((d - hi) / hi); }
    return 0;
}

extern "C" __global__ void size_prior(
        const float* l, const float* w, const float* h, const unsigned char* dv, int has_dv,
        const long long* codes, long long code_offset, const unsigned char* cv, int has_cv,
        const int* slot_of_code, long long n_codes, const double* lo, const double* hi, long long n,
        float* sev, unsigned char* why) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    sev[i] = 0;
    why[i] = 0;
    if (has_cv && cv[i] == 0) return;
    long long code = codes[i] - code_offset;
    if (code < 0 || code >= n_codes) return;
    long long k = slot_of_code[code];
    if (k < 0) return;
    float a = l[i], b = w[i], c = h[i];
    if ((has_dv && dv[i] == 0) || !(isfinite(a) && isfinite(b) && isfinite(c))) {
        sev[i] = 1;
        why[i] = 1;
        return;
    }
    unsigned char y = 0;
    float sa = outside(a, lo[3 * k], hi[3 * k], 2, 4, &y);
    float sb = outside(b, lo[3 * k + 1], hi[3 * k + 1], 8, 16, &y);
    float sc = outside(c, lo[3 * k + 2], hi[3 * k + 2], 32, 64, &y);
    float inner = mx(sb, sc);
    float s = mx(sa, inner);
    why[i] = y;
    sev[i] = y ? mx(s, (float)1e-6) : 0;
}

extern "C" __global__ void few_points(const long long* counts, const unsigned char* valid, int has_v,
                                      long long min_points, double inv, long long n,
                                      unsigned char* low, float* sev) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    long long c = counts[i];
    low[i] = (c < min_points) && (!has_v || valid[i] != 0);
    if (c < 0) c = 0;
    sev[i] = (float)(1.0 - (double)c * inv);
}
"""

def _mod():
    return static_module(_SRC)


# ----------------------------------------------------------------------------------------------
# points in rotated boxes
# ----------------------------------------------------------------------------------------------
def _grids(cx, cy, l, w, h, finite, c, s, frame_of_box, n_groups):
    """The Cython kernel's per-frame bird's-eye-view grids, for every frame at once: the same
    padded footprints, the same cell side (the median footprint, grown by 1.5 until at most
    ``16 * boxes + 64`` cells), the same cell ranges per box. Returns per-frame arrays, the
    flattened cell lists (CSR over every frame's cells) and which boxes are usable."""
    ok = finite & (l >= 0) & (w >= 0) & (h >= 0) & (frame_of_box >= 0)
    ob = np.flatnonzero(ok)
    fg = frame_of_box[ob]
    CX, CY = cx[ob].astype(_F64), cy[ob].astype(_F64)
    hl, hw = 0.5 * l[ob].astype(_F64), 0.5 * w[ob].astype(_F64)
    ac, as_ = np.abs(c[ob]), np.abs(s[ob])
    ex = ac * hl + as_ * hw
    ey = as_ * hl + ac * hw
    ex = ex * (1.0 + _PAD_REL) + _PAD_ABS + np.abs(CX) * _PAD_REL
    ey = ey * (1.0 + _PAD_REL) + _PAD_ABS + np.abs(CY) * _PAD_REL
    bx0, bx1, by0, by1 = CX - ex, CX + ex, CY - ey, CY + ey
    m = np.bincount(fg, minlength=n_groups).astype(np.int64)
    active = np.flatnonzero(m > 0)
    first = np.searchsorted(fg, active)  # ``ob`` is ascending, so each frame's boxes are a run
    gx0, gx1, gy0, gy1 = (np.zeros(n_groups) for _ in range(4))
    side = np.ones(n_groups)
    if len(active):
        gx0[active] = np.minimum.reduceat(bx0, first)
        gx1[active] = np.maximum.reduceat(bx1, first)
        gy0[active] = np.minimum.reduceat(by0, first)
        gy1[active] = np.maximum.reduceat(by1, first)
        sides = 2.0 * np.where(ey > ex, ey, ex)
        sorted_sides = sides[np.lexsort((sides, fg))]
        side[active] = sorted_sides[first + m[active] // 2]
    wx, wy = gx1 - gx0, gy1 - gy0
    tmp = np.where(wy > wx, wy, wx)
    side = np.where(side > 0, side, np.where(tmp > 0, tmp, 1.0))
    cap = (16 * m + 64).astype(_F64)
    while True:
        over = (m > 0) & (wx / side * (wy / side) > cap)
        if not over.any():
            break
        side[over] *= 1.5
    inv = 1.0 / side
    nx = np.maximum(np.ceil(wx * inv).astype(np.int64), 1)
    ny = np.maximum(np.ceil(wy * inv).astype(np.int64), 1)
    n_cells = np.where(m > 0, nx * ny, 0)
    base = np.concatenate([[0], np.cumsum(n_cells)]).astype(np.int64)
    # each usable box lists itself in the cells its footprint rectangle meets
    gi = inv[fg]
    ix0 = np.minimum(((bx0 - gx0[fg]) * gi).astype(np.int64), nx[fg] - 1)
    ix1 = np.minimum(((bx1 - gx0[fg]) * gi).astype(np.int64), nx[fg] - 1)
    iy0 = np.minimum(((by0 - gy0[fg]) * gi).astype(np.int64), ny[fg] - 1)
    iy1 = np.minimum(((by1 - gy0[fg]) * gi).astype(np.int64), ny[fg] - 1)
    bw = ix1 - ix0 + 1
    per_box = bw * (iy1 - iy0 + 1)
    n_entries = int(per_box.sum())
    entry_box = np.repeat(np.arange(len(ob)), per_box)
    k = np.arange(n_entries, dtype=np.int64) - np.repeat(np.cumsum(per_box) - per_box, per_box)
    e_bw = bw[entry_box]
    cell = base[fg[entry_box]] + (iy0[entry_box] + k // e_bw) * nx[fg[entry_box]] + ix0[entry_box] + k % e_bw
    order = np.argsort(cell, kind="stable")
    cell_box = ob[entry_box[order]].astype(np.int64)
    cell_start = np.searchsorted(cell[order], np.arange(base[-1] + 1)).astype(np.int64)
    return ok, m, gx0, gy0, inv, nx, ny, base[:-1].copy(), cell_start, cell_box


def count_in_boxes(px, py, pz, point_lo, point_hi, cx, cy, cz, l, w, h, yaw, box_offsets, chunk):
    px, py, pz = (check(a, _F32, "points") for a in (px, py, pz))
    cx, cy, cz, l, w, h, yaw = (check(a, _F32, "boxes") for a in (cx, cy, cz, l, w, h, yaw))
    point_lo, point_hi, box_offsets = (check(a, _I64, "offsets") for a in (point_lo, point_hi, box_offsets))
    n, nb, n_groups = len(px), len(cx), len(box_offsets) - 1
    if len(py) != n or len(pz) != n:
        raise ValueError("point columns differ in length")
    if any(len(a) != nb for a in (cy, cz, l, w, h, yaw)):
        raise ValueError("box columns differ in length")
    if len(point_lo) != n_groups or len(point_hi) != n_groups:
        raise ValueError("point ranges need one entry per frame")
    if chunk < 1:
        raise ValueError("chunk must be positive")
    counts = np.zeros(nb, np.int64)
    plan = count_plan(point_lo, point_hi, cx, cy, cz, l, w, h, yaw, box_offsets) if n else None
    if plan is None:
        return counts
    return cp.asnumpy(count_on_device(plan, dev(px), dev(py), dev(pz))).astype(np.int64)


def count_plan(point_lo, point_hi, cx, cy, cz, l, w, h, yaw, box_offsets):
    """The boxes' side of ``count_in_boxes`` on the device (grids, cell lists, boxes with their
    trigonometry, the work items), or ``None`` when no point can be counted."""
    nb, n_groups = len(cx), len(box_offsets) - 1
    if nb == 0 or n_groups <= 0:
        return None
    finite = np.isfinite(cx) & np.isfinite(cy) & np.isfinite(cz) & np.isfinite(l) & np.isfinite(w) \
        & np.isfinite(h) & np.isfinite(yaw)
    c, s = host_cos_sin(yaw)
    ok, m, gx0, gy0, inv, nx, ny, base, cell_start, cell_box = _grids(
        cx, cy, l, w, h, finite, c, s, frame_of(box_offsets, nb), n_groups)
    # work: every point of every frame with a usable box (the others are never read), cut into
    # runs of at most POINTS_PER_BLOCK points of one frame, one GPU block each
    span = np.maximum(point_hi - point_lo, 0)
    frames = np.flatnonzero((m > 0) & (span > 0))
    if not len(frames):
        return None
    per = -(-span[frames] // POINTS_PER_BLOCK)
    item_frame = np.repeat(frames, per).astype(np.int64)
    k = np.arange(len(item_frame), dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)
    item_lo = point_lo[item_frame] + k * POINTS_PER_BLOCK
    item_hi = np.minimum(item_lo + POINTS_PER_BLOCK, point_hi[item_frame])
    B = np.zeros((nb, 8), _F64)
    B[:, 0], B[:, 1], B[:, 2], B[:, 3], B[:, 4] = cx, cy, cz, c, s
    B[:, 5], B[:, 6], B[:, 7] = 0.5 * l.astype(_F64), 0.5 * w.astype(_F64), 0.5 * h.astype(_F64)
    return dict(nb=nb, n_items=len(item_frame),
                args=(dev(item_frame), dev(item_lo), dev(item_hi), dev(box_offsets)),
                grid=(dev(gx0), dev(gy0), dev(inv), dev(nx), dev(ny), dev(base), dev(cell_start), dev(cell_box),
                      dev(B.ravel())))


def count_on_device(plan, d_px, d_py, d_pz):
    """Counts per box (a device uint64 array) of points already on the device."""
    d_counts = cp.zeros(plan["nb"], cp.uint64)
    _mod().get_function("count_points")((plan["n_items"],), (THREADS,), (d_px, d_py, d_pz, *plan["args"],
                                                                        *plan["grid"], d_counts))
    return d_counts


# ----------------------------------------------------------------------------------------------
# projection and matching
# ----------------------------------------------------------------------------------------------
def project_match(cx, cy, cz, l, w, h, yaw, offsets3, x1, y1, x2, y2, offsets2, unit_camera, K, T, width,
                  height, near, iou):
    cx, cy, cz, l, w, h, yaw = (check(a, _F32, "3D boxes") for a in (cx, cy, cz, l, w, h, yaw))
    x1, y1, x2, y2 = (check(a, _F32, "2D boxes") for a in (x1, y1, x2, y2))
    offsets3, offsets2, unit_camera = (check(a, _I64, "units") for a in (offsets3, offsets2, unit_camera))
    K, T, width, height = (check(a, _F64, "cameras") for a in (K, T, width, height))
    n3, n2, n_units, n_cams = len(cx), len(x1), len(offsets3) - 1, len(width)
    if any(len(a) != n3 for a in (cy, cz, l, w, h, yaw)):
        raise ValueError("3D box columns differ in length")
    if any(len(a) != n2 for a in (y1, x2, y2)):
        raise ValueError("2D box columns differ in length")
    if len(offsets2) != n_units + 1 or len(unit_camera) != n_units:
        raise ValueError("offsets3, offsets2 and unit_camera must describe the same units")
    if len(K) != 9 * n_cams or len(T) != 16 * n_cams or len(height) != n_cams:
        raise ValueError("K, T, width and height must describe the same cameras")
    if n_units > 0 and ((unit_camera < 0) | (unit_camera >= n_cams)).any():
        raise ValueError("unit_camera out of range")
    if (n_units > 0 and (offsets3[n_units] != n3 or offsets2[n_units] != n2)) or (n_units <= 0 and (n3 or n2)):
        raise ValueError("offsets do not cover the boxes")
    proj = np.full((n3, 4), np.nan, np.float32)
    match3 = np.full(n3, -2, np.int64)
    match2 = np.full(n2, -1, np.int64)
    if n_units <= 0 or n3 == 0:
        return proj, match3, match2
    mod = _mod()
    unit_of_box = frame_of(offsets3, n3)
    c, s = host_cos_sin(yaw)
    d_proj = cp.empty((n3, 4), cp.float32)
    d_m3 = cp.empty(n3, cp.int64)
    d_unit = dev(unit_of_box)
    launch(mod, "project", n3, dev(cx), dev(cy), dev(cz), dev(l), dev(w), dev(h), dev(yaw), dev(c), dev(s),
           dev(unit_camera[np.maximum(unit_of_box, 0)]), dev(K), dev(T), dev(width), dev(height),
           np.float64(near), np.int64(n3), d_proj, d_m3)
    d_m2 = cp.full(max(n2, 1), -1, cp.int64)
    if n2:
        d_off2 = dev(offsets2)
        bx = [dev(a) for a in (x1, y1, x2, y2)]
        t = np.float32(iou)
        count = cp.empty(n3, cp.int64)
        launch(mod, "match_candidates", n3, d_proj, d_unit, d_off2, *bx, t, np.int64(n3), np.int32(0), count,
               count, count, count, count)
        start = cp.concatenate([cp.zeros(1, cp.int64), cp.cumsum(count)])
        n_cand = int(start[-1].get())
        if n_cand:
            key = cp.empty(n_cand, cp.float32)
            ci = cp.empty(n_cand, cp.int64)
            cj = cp.empty(n_cand, cp.int64)
            launch(mod, "match_candidates", n3, d_proj, d_unit, d_off2, *bx, t, np.int64(n3), np.int32(1), count,
                   start, key, ci, cj)
            # greedy order per unit: highest IoU, then lower 3D, then lower 2D position (the
            # candidates are in (3D, 2D) position order and both sorts are stable)
            order = cp.argsort(key)
            cand_unit = d_unit[ci[order]]
            order = order[cp.argsort(cand_unit)]
            unit_start = cp.searchsorted(d_unit[ci[order]], cp.arange(n_units + 1, dtype=cp.int64))
            launch(mod, "match_greedy", n_units, ci[order], cj[order], unit_start.astype(cp.int64),
                   np.int64(n_units), d_m3, d_m2)
    return cp.asnumpy(d_proj), cp.asnumpy(d_m3), cp.asnumpy(d_m2[:n2])


# ----------------------------------------------------------------------------------------------
# size priors, empty boxes
# ----------------------------------------------------------------------------------------------
def size_prior(l, w, h, dims_valid, codes, code_offset, code_valid, slot_of_code, lo, hi):
    l, w, h = (check(a, _F32, "dimensions") for a in (l, w, h))
    dims_valid, code_valid = check(dims_valid, _U8, "validity"), check(code_valid, _U8, "validity")
    codes = check(codes, (np.int32, np.int64), "class codes")
    slot_of_code = check(slot_of_code, np.int32, "slot_of_code")
    lo, hi = check(lo, _F64, "lo"), check(hi, _F64, "hi")
    n = len(l)
    if len(w) != n or len(h) != n or len(codes) != n:
        raise ValueError("dimension and class columns differ in length")
    if len(lo) != len(hi) or len(lo) % 3:
        raise ValueError("lo and hi need three bounds per class")
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.uint8)
    sev = cp.empty(n, cp.float32)
    why = cp.empty(n, cp.uint8)
    launch(_mod(), "size_prior", n, dev(l), dev(w), dev(h), dev(dims_valid), np.int32(len(dims_valid) > 0),
           dev(codes).astype(cp.int64), np.int64(code_offset), dev(code_valid), np.int32(len(code_valid) > 0),
           dev(slot_of_code), np.int64(len(slot_of_code)), dev(lo), dev(hi), np.int64(n), sev, why)
    rows = cp.flatnonzero(why)
    return cp.asnumpy(rows).astype(np.int64), cp.asnumpy(sev[rows]), cp.asnumpy(why[rows])


def few_points(counts, valid, min_points):
    counts, valid = check(counts, _I64, "counts"), check(valid, _U8, "validity")
    if min_points < 1:
        raise ValueError("min_points must be at least 1")
    n = len(counts)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    low = cp.empty(n, cp.uint8)
    sev = cp.empty(n, cp.float32)
    launch(_mod(), "few_points", n, dev(counts), dev(valid), np.int32(len(valid) > 0), np.int64(min_points),
           np.float64(1.0 / float(min_points)), np.int64(n), low, sev)
    rows = cp.flatnonzero(low)
    return cp.asnumpy(rows).astype(np.int64), cp.asnumpy(sev[rows])


# ----------------------------------------------------------------------------------------------
# bird's-eye-view multibox
# ----------------------------------------------------------------------------------------------
def bev_multibox(cx, cy, l, w, yaw, score, score_valid, offsets, iou, min_boxes):
    cx, cy, l, w, yaw = (check(a, _F32, "boxes") for a in (cx, cy, l, w, yaw))
    score, score_valid = check(score, _F32, "score"), check(score_valid, _U8, "score validity")
    offsets = check(offsets, _I64, "offsets")
    n = len(cx)
    if len(cy) != n or len(l) != n or len(w) != n or len(yaw) != n or (len(score) and len(score) != n):
        raise ValueError("box columns differ in length")
    e = np.empty(0, np.int64)
    if n == 0 or len(offsets) < 2:
        return e, e.copy(), np.empty(0, np.float32), e.copy()
    mod = _mod()
    c, s = host_cos_sin(yaw)
    d_cx, d_cy = dev(cx), dev(cy)
    ok = cp.empty(n, cp.uint8)
    qx = cp.empty(4 * n, cp.float64)
    qy = cp.empty(4 * n, cp.float64)
    area = cp.empty(n, cp.float64)
    radius = cp.empty(n, cp.float64)
    launch(mod, "bev_prepare", n, d_cx, d_cy, dev(l), dev(w), dev(yaw), dev(c), dev(s), np.int64(n), ok, qx, qy,
           area, radius)
    la, lb = overlap_links(mod, "bev_links", n, (d_cx, d_cy, ok, qx, qy, area, radius),
                           link_ends(offsets, n, min_boxes), np.float64(iou))
    labels = connected_labels(n, la, lb)
    return emit_groups(labels, offsets, int(min_boxes), score, score_valid)
