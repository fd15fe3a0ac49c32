"""LIDAR point and 3D box kernels (Numba backend).

Siblings of ``kernels/_points_cy.pyx`` with the same names, argument order and results; called
by ``tripwire.points`` through ``tripwire._dispatch`` when ``backend="numba"``. Serial (the
Cython kernels are the threaded ones); the geometry repeats the Cython kernels' double-precision
operations in the same order, so every backend decides every point, corner and overlap alike.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .._config import NUMBA_OPTIONS
from ._jit_args import readonly_args
from .groups_jit import emit_groups, join

_JIT = dict(NUMBA_OPTIONS)

_PAD_REL = 1e-6
_PAD_ABS = 1e-6


# ----------------------------------------------------------------------------------------------
# points in rotated boxes
# ----------------------------------------------------------------------------------------------
@njit(**_JIT)
def _count(px, py, pz, point_lo, point_hi, cx, cy, cz, l, w, h, yaw, box_offsets):
    n_boxes = cx.shape[0]
    counts = np.zeros(n_boxes, np.int64)
    # per box: cx cy cz cos sin hl hw hh
    B = np.empty((n_boxes, 8), np.float64)
    ok = np.zeros(n_boxes, np.bool_)
    bx0 = np.empty(n_boxes)
    bx1 = np.empty(n_boxes)
    by0 = np.empty(n_boxes)
    by1 = np.empty(n_boxes)
    for g in range(box_offsets.shape[0] - 1):
        s, e = box_offsets[g], box_offsets[g + 1]
        gx0 = gy0 = 1e300
        gx1 = gy1 = -1e300
        sides = np.empty(e - s)
        m = 0
        for b in range(s, e):
            if not (np.isfinite(cx[b]) and np.isfinite(cy[b]) and np.isfinite(cz[b]) and np.isfinite(l[b])
                    and np.isfinite(w[b]) and np.isfinite(h[b]) and np.isfinite(yaw[b])) \
                    or l[b] < 0 or w[b] < 0 or h[b] < 0:
                continue
            ok[b] = True
            B[b, 0] = np.float64(cx[b])
            B[b, 1] = np.float64(cy[b])
            B[b, 2] = np.float64(cz[b])
            B[b, 3] = math.cos(np.float64(yaw[b]))
            B[b, 4] = math.sin(np.float64(yaw[b]))
            B[b, 5] = 0.5 * np.float64(l[b])
            B[b, 6] = 0.5 * np.float64(w[b])
            B[b, 7] = 0.5 * np.float64(h[b])
            ex = abs(B[b, 3]) * B[b, 5] + abs(B[b, 4]) * B[b, 6]
            ey = abs(B[b, 4]) * B[b, 5] + abs(B[b, 3]) * B[b, 6]
            ex = ex * (1.0 + _PAD_REL) + _PAD_ABS + abs(B[b, 0]) * _PAD_REL
            ey = ey * (1.0 + _PAD_REL) + _PAD_ABS + abs(B[b, 1]) * _PAD_REL
            bx0[b] = B[b, 0] - ex
            bx1[b] = B[b, 0] + ex
            by0[b] = B[b, 1] - ey
            by1[b] = B[b, 1] + ey
            gx0 = min(gx0, bx0[b])
            gx1 = max(gx1, bx1[b])
            gy0 = min(gy0, by0[b])
            gy1 = max(gy1, by1[b])
            sides[m] = 2.0 * max(ex, ey)
            m += 1
        if m == 0:
            continue
        side = np.sort(sides[:m])[m // 2]
        cap = 16 * m + 64
        ext = max(gx1 - gx0, gy1 - gy0)
        if not side > 0:
            side = ext if ext > 0 else 1.0
        while (gx1 - gx0) / side * ((gy1 - gy0) / side) > cap:
            side *= 1.5
        inv = 1.0 / side
        nx = max(int(math.ceil((gx1 - gx0) * inv)), 1)
        ny = max(int(math.ceil((gy1 - gy0) * inv)), 1)
        start = np.zeros(nx * ny + 1, np.int64)
        for b in range(s, e):
            if ok[b]:
                ix0, ix1 = min(int((bx0[b] - gx0) * inv), nx - 1), min(int((bx1[b] - gx0) * inv), nx - 1)
                iy0, iy1 = min(int((by0[b] - gy0) * inv), ny - 1), min(int((by1[b] - gy0) * inv), ny - 1)
                for iy in range(iy0, iy1 + 1):
                    for ix in range(ix0, ix1 + 1):
                        start[iy * nx + ix + 1] += 1
        for i in range(nx * ny):
            start[i + 1] += start[i]
        fill = start[:-1].copy()
        cell_box = np.empty(start[-1], np.int64)
        for b in range(s, e):
            if ok[b]:
                ix0, ix1 = min(int((bx0[b] - gx0) * inv), nx - 1), min(int((bx1[b] - gx0) * inv), nx - 1)
                iy0, iy1 = min(int((by0[b] - gy0) * inv), ny - 1), min(int((by1[b] - gy0) * inv), ny - 1)
                for iy in range(iy0, iy1 + 1):
                    for ix in range(ix0, ix1 + 1):
                        cell_box[fill[iy * nx + ix]] = b
                        fill[iy * nx + ix] += 1
        for i in range(point_lo[g], point_hi[g]):
            x = np.float64(px[i])
            y = np.float64(py[i])
            fx = (x - gx0) * inv
            fy = (y - gy0) * inv
            if not (fx >= 0.0 and fx <= nx and fy >= 0.0 and fy <= ny):
                continue
            cell = min(int(fy), ny - 1) * nx + min(int(fx), nx - 1)
            if start[cell] == start[cell + 1]:
                continue
            z = np.float64(pz[i])
            for k in range(start[cell], start[cell + 1]):
                b = cell_box[k]
                dx = x - B[b, 0]
                dy = y - B[b, 1]
                lx = dx * B[b, 3] + dy * B[b, 4]
                ly = dy * B[b, 3] - dx * B[b, 4]
                if abs(lx) <= B[b, 5] and abs(ly) <= B[b, 6] and abs(z - B[b, 2]) <= B[b, 7]:
                    counts[b] += 1
    return counts


@readonly_args
def count_in_boxes(px, py, pz, point_lo, point_hi, cx, cy, cz, l, w, h, yaw, box_offsets, chunk):
    n = len(px)
    if len(py) != n or len(pz) != n:
        raise ValueError("point columns differ in length")
    nb = len(cx)
    if any(len(a) != nb for a in (cy, cz, l, w, h, yaw)):
        raise ValueError("box columns differ in length")
    if len(point_lo) != len(box_offsets) - 1 or len(point_hi) != len(box_offsets) - 1:
        raise ValueError("point ranges need one entry per frame")
    return _count(px, py, pz, point_lo, point_hi, cx, cy, cz, l, w, h, yaw, box_offsets)


# ----------------------------------------------------------------------------------------------
# projection and matching
# ----------------------------------------------------------------------------------------------
_EDGE_A = np.array([0, 2, 4, 6, 0, 1, 4, 5, 0, 1, 2, 3], np.int64)
_EDGE_B = np.array([1, 3, 5, 7, 2, 3, 6, 7, 4, 5, 6, 7], np.int64)


@njit(**_JIT)
def _project_box(K, T, k0, t0, width, height, near, cx, cy, cz, l, w, h, yaw, out, edge_a, edge_b):
    out[:] = np.nan
    if not (np.isfinite(cx) and np.isfinite(cy) and np.isfinite(cz) and np.isfinite(l) and np.isfinite(w)
            and np.isfinite(h) and np.isfinite(yaw)):
        return
    c = math.cos(np.float64(yaw))
    s = math.sin(np.float64(yaw))
    X = np.empty(8)
    Y = np.empty(8)
    Z = np.empty(8)
    for k in range(8):
        ox = (0.5 if k & 1 else -0.5) * np.float64(l)
        oy = (0.5 if k & 2 else -0.5) * np.float64(w)
        oz = (0.5 if k & 4 else -0.5) * np.float64(h)
        wx = np.float64(cx) + (c * ox - s * oy)
        wy = np.float64(cy) + (s * ox + c * oy)
        wz = np.float64(cz) + oz
        X[k] = T[t0] * wx + T[t0 + 1] * wy + T[t0 + 2] * wz + T[t0 + 3]
        Y[k] = T[t0 + 4] * wx + T[t0 + 5] * wy + T[t0 + 6] * wz + T[t0 + 7]
        Z[k] = T[t0 + 8] * wx + T[t0 + 9] * wy + T[t0 + 10] * wz + T[t0 + 11]
    umin = vmin = 1e300
    umax = vmax = -1e300
    n_vert = 0
    for k in range(20):
        if k < 8:
            if not Z[k] >= near:
                continue
            qx, qy, qz = X[k], Y[k], Z[k]
        else:
            a = edge_a[k - 8]
            b = edge_b[k - 8]
            if not ((Z[a] < near and Z[b] > near) or (Z[a] > near and Z[b] < near)):
                continue
            t = (near - Z[a]) / (Z[b] - Z[a])
            qx = X[a] + t * (X[b] - X[a])
            qy = Y[a] + t * (Y[b] - Y[a])
            qz = near
        u = (K[k0] * qx + K[k0 + 1] * qy + K[k0 + 2] * qz) / qz
        v = (K[k0 + 3] * qx + K[k0 + 4] * qy + K[k0 + 5] * qz) / qz
        umin = u if u < umin else umin
        umax = u if u > umax else umax
        vmin = v if v < vmin else vmin
        vmax = v if v > vmax else vmax
        n_vert += 1
    if n_vert == 0:
        return
    x1 = np.float32(0.0 if 0.0 > umin else umin)
    y1 = np.float32(0.0 if 0.0 > vmin else vmin)
    x2 = np.float32(width if width < umax else umax)
    y2 = np.float32(height if height < vmax else vmax)
    if x2 > x1 and y2 > y1:
        out[0] = x1
        out[1] = y1
        out[2] = x2
        out[3] = y2


@njit(**_JIT)
def _project_match(cx, cy, cz, l, w, h, yaw, offsets3, x1, y1, x2, y2, offsets2, unit_camera, K, T, width,
                   height, near, t, edge_a, edge_b):
    n3 = cx.shape[0]
    n2 = x1.shape[0]
    proj = np.empty((n3, 4), np.float32)
    match3 = np.full(n3, -2, np.int64)
    match2 = np.full(n2, -1, np.int64)
    for u in range(offsets3.shape[0] - 1):
        cam = unit_camera[u]
        for i in range(offsets3[u], offsets3[u + 1]):
            _project_box(K, T, 9 * cam, 16 * cam, width[cam], height[cam], near, cx[i], cy[i], cz[i], l[i], w[i],
                         h[i], yaw[i], proj[i], edge_a, edge_b)
            if proj[i, 0] == proj[i, 0]:
                match3[i] = -1
        s2, e2 = offsets2[u], offsets2[u + 1]
        s3, e3 = offsets3[u], offsets3[u + 1]
        if s2 == e2 or s3 == e3:
            continue
        cap = (e3 - s3) * (e2 - s2)
        key = np.empty(cap, np.float32)
        ci = np.empty(cap, np.int64)
        cj = np.empty(cap, np.int64)
        nc = 0
        for i in range(s3, e3):
            ax1 = proj[i, 0]
            if not ax1 == ax1:
                continue
            ay1, ax2, ay2 = proj[i, 1], proj[i, 2], proj[i, 3]
            area_a = np.float32((ax2 - ax1) * (ay2 - ay1))
            for j in range(s2, e2):
                ix = np.float32(min(ax2, x2[j]) - max(ax1, x1[j]))
                if not ix > 0:
                    continue
                iy = np.float32(min(ay2, y2[j]) - max(ay1, y1[j]))
                if not iy > 0:
                    continue
                inter = np.float32(ix * iy)
                uni = np.float32(np.float32(area_a + np.float32((x2[j] - x1[j]) * (y2[j] - y1[j]))) - inter)
                if inter >= np.float32(t * uni):
                    key[nc] = -np.float32(inter / uni)
                    ci[nc] = i
                    cj[nc] = j
                    nc += 1
        # greedy order: highest IoU, then lower 3D, then lower 2D position (candidates were
        # generated in (i, j) order, so a stable sort on the key alone keeps those ties)
        order = np.argsort(key[:nc], kind="mergesort")
        for o in order:
            i, j = ci[o], cj[o]
            if match3[i] != -1 or match2[j] != -1:
                continue
            match3[i] = j
            match2[j] = i
    return proj, match3, match2


@readonly_args
def project_match(cx, cy, cz, l, w, h, yaw, offsets3, x1, y1, x2, y2, offsets2, unit_camera, K, T, width,
                  height, near, iou):
    n3, n2, n_units, n_cams = len(cx), len(x1), len(offsets3) - 1, len(width)
    if any(len(a) != n3 for a in (cy, cz, l, w, h, yaw)):
        raise ValueError("3D box columns differ in length")
    if any(len(a) != n2 for a in (y1, x2, y2)):
        raise ValueError("2D box columns differ in length")
    if len(offsets2) != n_units + 1 or len(unit_camera) != n_units:
        raise ValueError("offsets3, offsets2 and unit_camera must describe the same units")
    if len(K) != 9 * n_cams or len(T) != 16 * n_cams or len(height) != n_cams:
        raise ValueError("K, T, width and height must describe the same cameras")
    return _project_match(cx, cy, cz, l, w, h, yaw, offsets3, x1, y1, x2, y2, offsets2, unit_camera, K, T,
                          width, height, np.float64(near), np.float32(iou), _EDGE_A, _EDGE_B)


# ----------------------------------------------------------------------------------------------
# size priors, empty boxes
# ----------------------------------------------------------------------------------------------
@njit(**_JIT)
def _size_prior(l, w, h, dims_valid, codes, code_offset, code_valid, slot_of_code, lo, hi):
    n = l.shape[0]
    rows = np.empty(n, np.int64)
    sev = np.empty(n, np.float32)
    why = np.empty(n, np.uint8)
    has_dv = dims_valid.shape[0] > 0
    has_cv = code_valid.shape[0] > 0
    m = 0
    for i in range(n):
        if has_cv and code_valid[i] == 0:
            continue
        code = np.int64(codes[i]) - code_offset
        if code < 0 or code >= slot_of_code.shape[0]:
            continue
        k = slot_of_code[code]
        if k < 0:
            continue
        d = (l[i], w[i], h[i])
        if (has_dv and dims_valid[i] == 0) or not (np.isfinite(d[0]) and np.isfinite(d[1]) and np.isfinite(d[2])):
            rows[m] = i
            sev[m] = 1.0
            why[m] = 1
            m += 1
            continue
        bits = 0
        worst = np.float32(0.0)
        for j in range(3):
            a = lo[3 * k + j]
            b = hi[3 * k + j]
            dj = np.float64(d[j])
            if dj < a:
                bits |= 2 << (2 * j)
                worst = max(worst, np.float32((a - dj) / a))
            elif dj > b:
                bits |= 4 << (2 * j)
                worst = max(worst, np.float32((dj - b) / b))
        if bits:
            rows[m] = i
            sev[m] = max(worst, np.float32(1e-6))
            why[m] = bits
            m += 1
    return rows[:m].copy(), sev[:m].copy(), why[:m].copy()


@readonly_args
def size_prior(l, w, h, dims_valid, codes, code_offset, code_valid, slot_of_code, lo, hi):
    n = len(l)
    if len(w) != n or len(h) != n or len(codes) != n:
        raise ValueError("dimension and class columns differ in length")
    if len(lo) != len(hi) or len(lo) % 3:
        raise ValueError("lo and hi need three bounds per class")
    return _size_prior(l, w, h, dims_valid, codes, np.int64(code_offset), code_valid, slot_of_code, lo, hi)


@njit(**_JIT)
def _few_points(counts, valid, min_points):
    n = counts.shape[0]
    rows = np.empty(n, np.int64)
    sev = np.empty(n, np.float32)
    has_v = valid.shape[0] > 0
    inv = 1.0 / min_points
    m = 0
    for i in range(n):
        if counts[i] < min_points and (not has_v or valid[i] != 0):
            rows[m] = i
            sev[m] = np.float32(1.0 - max(counts[i], 0) * inv)
            m += 1
    return rows[:m].copy(), sev[:m].copy()


@readonly_args
def few_points(counts, valid, min_points):
    if min_points < 1:
        raise ValueError("min_points must be at least 1")
    return _few_points(counts, valid, np.int64(min_points))


# ----------------------------------------------------------------------------------------------
# bird's-eye-view multibox
# ----------------------------------------------------------------------------------------------
@njit(**_JIT)
def _overlap_area(ax, ay, bx, by):
    px = np.empty(16)
    py = np.empty(16)
    qx = np.empty(16)
    qy = np.empty(16)
    for k in range(4):
        px[k] = ax[k]
        py[k] = ay[k]
    n = 4
    for e in range(4):
        ex0, ey0 = bx[e], by[e]
        ex1, ey1 = bx[(e + 1) % 4], by[(e + 1) % 4]
        m = 0
        for k in range(n):
            j = (k + 1) % n
            dp = (ex1 - ex0) * (py[k] - ey0) - (ey1 - ey0) * (px[k] - ex0)
            dq = (ex1 - ex0) * (py[j] - ey0) - (ey1 - ey0) * (px[j] - ex0)
            if dp >= 0:
                qx[m] = px[k]
                qy[m] = py[k]
                m += 1
            if (dp >= 0) != (dq >= 0):
                t = dp / (dp - dq)
                qx[m] = px[k] + t * (px[j] - px[k])
                qy[m] = py[k] + t * (py[j] - py[k])
                m += 1
        n = m
        if n == 0:
            return 0.0
        for k in range(n):
            px[k] = qx[k]
            py[k] = qy[k]
    area = 0.0
    for k in range(n):
        j = (k + 1) % n
        area += px[k] * py[j] - px[j] * py[k]
    return abs(area) * 0.5


@njit(**_JIT)
def _bev_multibox(cx, cy, l, w, yaw, score, score_valid, offsets, iou, min_boxes):
    n = cx.shape[0]
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
        ok = np.zeros(m, np.bool_)
        area = np.empty(m)
        radius = np.empty(m)
        qx = np.empty((m, 4))
        qy = np.empty((m, 4))
        for i in range(m):
            b = s + i
            ok[i] = (np.isfinite(cx[b]) and np.isfinite(cy[b]) and np.isfinite(l[b]) and np.isfinite(w[b])
                     and np.isfinite(yaw[b]) and l[b] > 0 and w[b] > 0)
            if not ok[i]:
                continue
            c = math.cos(np.float64(yaw[b]))
            sn = math.sin(np.float64(yaw[b]))
            hl = 0.5 * np.float64(l[b])
            hw = 0.5 * np.float64(w[b])
            ox = (hl, -hl, -hl, hl)
            oy = (hw, hw, -hw, -hw)
            for k in range(4):
                qx[i, k] = np.float64(cx[b]) + (c * ox[k] - sn * oy[k])
                qy[i, k] = np.float64(cy[b]) + (sn * ox[k] + c * oy[k])
            area[i] = np.float64(l[b]) * np.float64(w[b])
            radius[i] = 0.5 * math.sqrt(np.float64(l[b]) * l[b] + np.float64(w[b]) * w[b])
        for i in range(m):
            if not ok[i]:
                continue
            for j in range(i + 1, m):
                if not ok[j]:
                    continue
                dx = np.float64(cx[s + i]) - cx[s + j]
                dy = np.float64(cy[s + i]) - cy[s + j]
                reach = (radius[i] + radius[j]) * (1.0 + 1e-6) + 1e-9
                if dx * dx + dy * dy > reach * reach:
                    continue
                inter = _overlap_area(qx[i], qy[i], qx[j], qy[j])
                uni = area[i] + area[j] - inter
                if inter > 0 and inter >= iou * uni:
                    join(parent, size, i, j)
        nv, ev = emit_groups(s, m, parent, size, min_boxes, score, score_valid, pos, evs, ev_sev,
                             anchors, nv, ev)
    events = evs[:nv].copy()
    return pos[:nv].copy(), events, ev_sev[:ev][events], anchors[:ev].copy()


@readonly_args
def bev_multibox(cx, cy, l, w, yaw, score, score_valid, offsets, iou, min_boxes):
    n = len(cx)
    if len(cy) != n or len(l) != n or len(w) != n or len(yaw) != n or (len(score) and len(score) != n):
        raise ValueError("box columns differ in length")
    return _bev_multibox(cx, cy, l, w, yaw, score, score_valid, offsets, np.float64(iou), np.int64(min_boxes))
