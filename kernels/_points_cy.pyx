# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# distutils: language = c++
"""LIDAR point and 3D box kernels (Cython backend).

Called by ``tripwire.points`` through ``tripwire._dispatch``; siblings with the same names and
argument order live in ``tripwire/_kernels/points_jit.py`` (Numba) and ``tests/reference.py``
(plain loops). One call per batch, without the GIL; the point count and the projection run on
several threads (OpenMP) when the extension was built with it.

Geometry conventions (``tripwire.points`` documents them for users): a 3D box is its centre
``(cx, cy, cz)``, its length ``l`` along the heading, width ``w`` across it, height ``h`` along
z, and ``yaw`` (radians, from +x towards +y about +z). Arithmetic is in double precision on the
float32 inputs, with the operations in the order written here: the siblings repeat them so
that every backend decides every point, corner and overlap bit for bit the same way.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport cos, sin, fabs, ceil, sqrt, isfinite, NAN
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from libcpp.algorithm cimport sort as cpp_sort, nth_element
from libcpp.pair cimport pair
from libcpp.vector cimport vector

from _common cimport emit_groups, is_valid, join, to_numpy, valid_ptr
from _types cimport key_t

cnp.import_array()


# ----------------------------------------------------------------------------------------------
# points in rotated boxes
# ----------------------------------------------------------------------------------------------
cdef struct box_t:  # one box with its trigonometry hoisted (64 bytes: a cache line)
    double cx
    double cy
    double cz
    double c        # cos(yaw), sin(yaw)
    double s
    double hl       # half length, width, height
    double hw
    double hh


cdef struct grid_t:  # one frame's bird's-eye-view grid over its boxes' footprints
    double x0
    double y0
    double inv      # 1 / cell size
    int64_t nx
    int64_t ny
    int64_t cell_base  # offset of this frame's cells in ``cell_start``


# padding of a box's bird's-eye-view bounding rectangle: generous against rounding, so that the
# grid only ever prunes (the exact test in ``_count_chunk`` decides every candidate)
cdef double AABB_PAD_REL = 1e-6
cdef double AABB_PAD_ABS = 1e-6


cdef inline bint _prepare_box(float cx, float cy, float cz, float l, float w, float h, float yaw,
                              box_t* B) noexcept nogil:
    """Fill ``B``; false for a box that holds no point (a non-finite or negative parameter)."""
    if not (isfinite(cx) and isfinite(cy) and isfinite(cz) and isfinite(l) and isfinite(w)
            and isfinite(h) and isfinite(yaw)) or l < 0 or w < 0 or h < 0:
        return False
    B.cx = cx
    B.cy = cy
    B.cz = cz
    B.c = cos(<double>yaw)
    B.s = sin(<double>yaw)
    B.hl = 0.5 * <double>l
    B.hw = 0.5 * <double>w
    B.hh = 0.5 * <double>h
    return True


cdef inline bint _inside(const box_t* B, double x, double y, double z) noexcept nogil:
    """The point test: faces belong to the box."""
    cdef double dx = x - B.cx, dy = y - B.cy
    cdef double lx = dx * B.c + dy * B.s
    cdef double ly = dy * B.c - dx * B.s
    return (fabs(lx) <= B.hl) & (fabs(ly) <= B.hw) & (fabs(z - B.cz) <= B.hh)


cdef enum:
    COUNT_BLOCK = 256  # points per block in ``_count_chunk`` (their cell ids stay in L1)


cdef void _count_chunk(const float* px, const float* py, const float* pz, int64_t lo, int64_t hi,
                       const box_t* boxes, const grid_t* G, const int64_t* cell_start,
                       const int64_t* cell_box, int64_t box_base, int32_t* partial) noexcept nogil:
    """Count points ``lo:hi`` of one frame into ``partial`` (one slot per box of the frame).

    In blocks: a branch-free loop (which the compiler vectorizes) finds each point's cell, or
    the frame's always-empty sentinel cell when it lies outside the grid; a second loop keeps
    the points whose cell lists a box; only those are tested. Most points of a sweep fall where
    no box is, and the branch on "is this cell empty" would mispredict on every scan line."""
    cdef int64_t base, k, m, j, n_hit, ix, iy, e, b, cell
    cdef double fx, fy, x, y, z
    cdef double fnx = <double>G.nx, fny = <double>G.ny, x0 = G.x0, y0 = G.y0, inv = G.inv
    cdef int64_t nx = G.nx, last_x = G.nx - 1, last_y = G.ny - 1, empty = G.nx * G.ny
    cdef const int64_t* cs = cell_start + G.cell_base
    cdef int64_t cells[COUNT_BLOCK]
    cdef int64_t hits[COUNT_BLOCK]
    cdef bint inside
    base = lo
    while base < hi:
        m = min(<int64_t>COUNT_BLOCK, hi - base)
        for k in range(m):
            fx = (px[base + k] - x0) * inv
            fy = (py[base + k] - y0) * inv
            inside = (fx >= 0.0) & (fx <= fnx) & (fy >= 0.0) & (fy <= fny)  # false for NaN
            ix = min(<int64_t>(fx if inside else 0.0), last_x)
            iy = min(<int64_t>(fy if inside else 0.0), last_y)
            cells[k] = (iy * nx + ix) if inside else empty
        n_hit = 0
        for k in range(m):
            hits[n_hit] = k
            n_hit += cs[cells[k]] != cs[cells[k] + 1]
        for j in range(n_hit):
            k = hits[j]
            cell = cells[k]
            x = px[base + k]
            y = py[base + k]
            z = pz[base + k]
            for e in range(cs[cell], cs[cell + 1]):
                b = cell_box[e]
                partial[b - box_base] += _inside(&boxes[b], x, y, z)
        base += m


def count_in_boxes(const float[::1] px, const float[::1] py, const float[::1] pz,
                   const int64_t[::1] point_lo, const int64_t[::1] point_hi,
                   const float[::1] cx, const float[::1] cy, const float[::1] cz,
                   const float[::1] l, const float[::1] w, const float[::1] h, const float[::1] yaw,
                   const int64_t[::1] box_offsets, int64_t chunk):
    """How many points each box holds.

    Boxes arrive in frame order with CSR ``box_offsets`` (frame ``g``: boxes
    ``box_offsets[g]:box_offsets[g+1]``); frame ``g``'s points are ``point_lo[g]:point_hi[g]``
    of ``px py pz``. A point is in a box when, in the box's frame (``dx = x - cx``,
    ``dy = y - cy``, ``lx = dx*cos(yaw) + dy*sin(yaw)``, ``ly = dy*cos(yaw) - dx*sin(yaw)``),
    ``|lx| <= l/2``, ``|ly| <= w/2`` and ``|z - cz| <= h/2`` (faces included; a point with a
    non-finite coordinate is in no box; a box with a non-finite or negative parameter holds
    none). Returns int64 counts, one per box.

    Work grows like points + candidates, not points x boxes: each frame gets a bird's-eye-view
    grid (cells about the median box footprint, at most ``16 * boxes + 64`` of them) listing
    the boxes whose padded footprint rectangle meets each cell; a point looks up its cell and
    tests only those boxes. Points are cut into chunks of ``chunk`` per frame that threads
    count into private slots, summed per frame afterwards (no atomics, deterministic).
    """
    cdef Py_ssize_t n_groups = box_offsets.shape[0] - 1, n_boxes = cx.shape[0], n_points = px.shape[0]
    cdef Py_ssize_t g, b, k, n_items
    cdef int64_t s, e, m, i, ix0, ix1, iy0, iy1, ixx, iyy, cell, nc, total_entries, cap, lo, hi
    cdef double ex, ey, bx0, bx1, by0, by1, gx0, gx1, gy0, gy1, side, tmp
    cdef vector[box_t] boxes
    cdef vector[uint8_t] ok
    cdef vector[grid_t] grids
    cdef vector[int64_t] cell_start, cell_box, item_group, item_lo, item_hi, item_base, fill
    cdef vector[double] sides, bx0v, bx1v, by0v, by1v
    cdef grid_t G
    cdef box_t* B
    if py.shape[0] != n_points or pz.shape[0] != n_points:
        raise ValueError("point columns differ in length")
    if cy.shape[0] != n_boxes or cz.shape[0] != n_boxes or l.shape[0] != n_boxes or w.shape[0] != n_boxes \
            or h.shape[0] != n_boxes or yaw.shape[0] != n_boxes:
        raise ValueError("box columns differ in length")
    if point_lo.shape[0] != n_groups or point_hi.shape[0] != n_groups:
        raise ValueError("point ranges need one entry per frame")
    if chunk < 1:
        raise ValueError("chunk must be positive")
    counts_out = np.zeros(n_boxes, dtype=np.int64)
    cdef int64_t[::1] counts = counts_out
    cdef int32_t* partial = NULL
    with nogil:
        boxes.resize(n_boxes)
        ok.resize(n_boxes)
        bx0v.resize(n_boxes)
        bx1v.resize(n_boxes)
        by0v.resize(n_boxes)
        by1v.resize(n_boxes)
        grids.resize(n_groups)
        cell_start.push_back(0)
        for g in range(n_groups):
            s = box_offsets[g]
            e = box_offsets[g + 1]
            # footprints: the padded bounding rectangle of each usable box
            sides.clear()
            gx0 = gy0 = 1e300
            gx1 = gy1 = -1e300
            for b in range(s, e):
                B = &boxes[b]
                ok[b] = _prepare_box(cx[b], cy[b], cz[b], l[b], w[b], h[b], yaw[b], B)
                if not ok[b]:
                    continue
                ex = fabs(B.c) * B.hl + fabs(B.s) * B.hw
                ey = fabs(B.s) * B.hl + fabs(B.c) * B.hw
                ex = ex * (1.0 + AABB_PAD_REL) + AABB_PAD_ABS + fabs(B.cx) * AABB_PAD_REL
                ey = ey * (1.0 + AABB_PAD_REL) + AABB_PAD_ABS + fabs(B.cy) * AABB_PAD_REL
                bx0v[b] = B.cx - ex
                bx1v[b] = B.cx + ex
                by0v[b] = B.cy - ey
                by1v[b] = B.cy + ey
                gx0 = min(gx0, bx0v[b])
                gx1 = max(gx1, bx1v[b])
                gy0 = min(gy0, by0v[b])
                gy1 = max(gy1, by1v[b])
                sides.push_back(2.0 * max(ex, ey))
            G.cell_base = cell_start.size() - 1
            m = sides.size()
            if m == 0:  # no usable box: every count of the frame stays 0, no point is read
                G.x0 = G.y0 = 0.0
                G.inv = 1.0
                G.nx = G.ny = 1
                cell_start.push_back(cell_box.size())
                grids[g] = G
                continue  # no work item: every count of the frame stays 0
            # cell side: the median footprint, grown until the grid has at most ``cap`` cells
            nth_element(sides.begin(), sides.begin() + m // 2, sides.end())
            side = sides[m // 2]
            cap = 16 * m + 64
            tmp = max(gx1 - gx0, gy1 - gy0)
            if not side > 0:
                side = tmp if tmp > 0 else 1.0
            while (gx1 - gx0) / side * ((gy1 - gy0) / side) > <double>cap:
                side *= 1.5
            G.x0 = gx0
            G.y0 = gy0
            G.inv = 1.0 / side
            G.nx = max(<int64_t>ceil((gx1 - gx0) * G.inv), 1)
            G.ny = max(<int64_t>ceil((gy1 - gy0) * G.inv), 1)
            grids[g] = G
            nc = G.nx * G.ny
            # CSR lists of boxes per cell: count, prefix sum, fill
            fill.assign(nc + 1, 0)
            for b in range(s, e):
                if not ok[b]:
                    continue
                ix0 = min(<int64_t>((bx0v[b] - G.x0) * G.inv), G.nx - 1)
                ix1 = min(<int64_t>((bx1v[b] - G.x0) * G.inv), G.nx - 1)
                iy0 = min(<int64_t>((by0v[b] - G.y0) * G.inv), G.ny - 1)
                iy1 = min(<int64_t>((by1v[b] - G.y0) * G.inv), G.ny - 1)
                for iyy in range(iy0, iy1 + 1):
                    for ixx in range(ix0, ix1 + 1):
                        fill[iyy * G.nx + ixx + 1] += 1
            for i in range(nc):
                fill[i + 1] += fill[i]
            total_entries = cell_box.size()
            for i in range(1, nc + 1):
                cell_start.push_back(total_entries + fill[i])
            cell_start.push_back(total_entries + fill[nc])  # the sentinel: an empty cell
            cell_box.resize(total_entries + fill[nc])
            for b in range(s, e):
                if not ok[b]:
                    continue
                ix0 = min(<int64_t>((bx0v[b] - G.x0) * G.inv), G.nx - 1)
                ix1 = min(<int64_t>((bx1v[b] - G.x0) * G.inv), G.nx - 1)
                iy0 = min(<int64_t>((by0v[b] - G.y0) * G.inv), G.ny - 1)
                iy1 = min(<int64_t>((by1v[b] - G.y0) * G.inv), G.ny - 1)
                for iyy in range(iy0, iy1 + 1):
                    for ixx in range(ix0, ix1 + 1):
                        cell = iyy * G.nx + ixx
                        cell_box[total_entries + fill[cell]] = b
                        fill[cell] += 1
            # work items: chunks of this frame's points
            lo = point_lo[g]
            while lo < point_hi[g]:
                hi = min(lo + chunk, point_hi[g])
                item_group.push_back(g)
                item_lo.push_back(lo)
                item_hi.push_back(hi)
                lo = hi
        n_items = item_group.size()
        if n_items and n_points:
            item_base.resize(n_items + 1)
            item_base[0] = 0
            for k in range(n_items):
                g = item_group[k]
                item_base[k + 1] = item_base[k] + box_offsets[g + 1] - box_offsets[g]
            partial = <int32_t*>malloc(max(item_base[n_items], 1) * sizeof(int32_t))
            if partial != NULL:
                memset(partial, 0, max(item_base[n_items], 1) * sizeof(int32_t))
                for k in prange(n_items, schedule="dynamic"):
                    _count_chunk(&px[0], &py[0], &pz[0], item_lo[k], item_hi[k], &boxes[0],
                                 &grids[item_group[k]], &cell_start[0], &cell_box[0] if cell_box.size() else NULL,
                                 box_offsets[item_group[k]], partial + item_base[k])
                # a frame's items are consecutive: sum their slots
                for k in range(n_items):
                    g = item_group[k]
                    s = box_offsets[g]
                    for b in range(box_offsets[g + 1] - s):
                        counts[s + b] += partial[item_base[k] + b]
                free(partial)
    if n_items and n_points and partial == NULL:
        raise MemoryError()
    return counts_out


# ----------------------------------------------------------------------------------------------
# 3D boxes projected into cameras, matched to the cameras' 2D boxes
# ----------------------------------------------------------------------------------------------
# the 12 edges of a box, as pairs of corner indices (corner k: bit 0 = +l, bit 1 = +w, bit 2 = +h)
cdef int EDGE_A[12]
cdef int EDGE_B[12]
EDGE_A[:] = [0, 2, 4, 6, 0, 1, 4, 5, 0, 1, 2, 3]
EDGE_B[:] = [1, 3, 5, 7, 2, 3, 6, 7, 4, 5, 6, 7]

ctypedef pair[float, pair[int64_t, int64_t]] cand_t  # (-IoU, (3D position, 2D position))


cdef inline void _project_box(const double* K, const double* T, double width, double height, double near,
                              float cx, float cy, float cz, float l, float w, float h, float yaw,
                              float* out) noexcept nogil:
    """The image extent of one box: corners behind the near plane (camera z < ``near``) are
    replaced by the points where the box's edges cross it, the remaining vertices projected
    through ``K``, their extent clipped to ``[0, width] x [0, height]``. ``out`` gets
    ``x1 y1 x2 y2`` (float32), or NaN when the box is not in view (nothing in front of the
    plane, an empty clipped extent, or a non-finite parameter)."""
    cdef double X[8]
    cdef double Y[8]
    cdef double Z[8]
    cdef double c, s, ox, oy, oz, wx, wy, wz, t, qx, qy, qz, u, v
    cdef double umin = 1e300, umax = -1e300, vmin = 1e300, vmax = -1e300
    cdef int k, a, b, n_vert = 0
    cdef float x1, y1, x2, y2
    out[0] = out[1] = out[2] = out[3] = NAN
    if not (isfinite(cx) and isfinite(cy) and isfinite(cz) and isfinite(l) and isfinite(w)
            and isfinite(h) and isfinite(yaw)):
        return
    c = cos(<double>yaw)
    s = sin(<double>yaw)
    for k in range(8):
        ox = (0.5 if k & 1 else -0.5) * <double>l
        oy = (0.5 if k & 2 else -0.5) * <double>w
        oz = (0.5 if k & 4 else -0.5) * <double>h
        wx = <double>cx + (c * ox - s * oy)
        wy = <double>cy + (s * ox + c * oy)
        wz = <double>cz + oz
        X[k] = T[0] * wx + T[1] * wy + T[2] * wz + T[3]
        Y[k] = T[4] * wx + T[5] * wy + T[6] * wz + T[7]
        Z[k] = T[8] * wx + T[9] * wy + T[10] * wz + T[11]
    for k in range(20):  # 8 corners, then 12 edge crossings
        if k < 8:
            if not Z[k] >= near:
                continue
            qx = X[k]
            qy = Y[k]
            qz = Z[k]
        else:
            a = EDGE_A[k - 8]
            b = EDGE_B[k - 8]
            if not ((Z[a] < near and Z[b] > near) or (Z[a] > near and Z[b] < near)):
                continue
            t = (near - Z[a]) / (Z[b] - Z[a])
            qx = X[a] + t * (X[b] - X[a])
            qy = Y[a] + t * (Y[b] - Y[a])
            qz = near
        u = (K[0] * qx + K[1] * qy + K[2] * qz) / qz
        v = (K[3] * qx + K[4] * qy + K[5] * qz) / qz
        umin = min(umin, u)
        umax = max(umax, u)
        vmin = min(vmin, v)
        vmax = max(vmax, v)
        n_vert += 1
    if n_vert == 0:
        return
    x1 = <float>max(umin, 0.0)
    y1 = <float>max(vmin, 0.0)
    x2 = <float>min(umax, width)
    y2 = <float>min(vmax, height)
    if x2 > x1 and y2 > y1:
        out[0] = x1
        out[1] = y1
        out[2] = x2
        out[3] = y2


cdef void _match_unit(const float* proj, int64_t s3, int64_t e3,
                      const float* x1, const float* y1, const float* x2, const float* y2, int64_t s2, int64_t e2,
                      float t, int64_t* match3, int64_t* match2) noexcept nogil:
    """Greedy one-to-one matching of one (camera, frame): highest IoU first, ties to the lower
    3D then the lower 2D position; a pair qualifies when IoU >= ``t`` (``inter >= t * union``,
    the test of ``boxes.multibox``, in float32)."""
    cdef vector[cand_t] cands
    cdef cand_t cand
    cdef int64_t i, j
    cdef Py_ssize_t c
    cdef float ax1, ay1, ax2, ay2, area_a, ix, iy, inter, uni
    for i in range(s3, e3):
        ax1 = proj[4 * i]
        if not ax1 == ax1:  # not in view
            continue
        ay1 = proj[4 * i + 1]
        ax2 = proj[4 * i + 2]
        ay2 = proj[4 * i + 3]
        area_a = (ax2 - ax1) * (ay2 - ay1)
        for j in range(s2, e2):
            ix = min(ax2, x2[j]) - max(ax1, x1[j])
            if not ix > 0:  # also false for NaN
                continue
            iy = min(ay2, y2[j]) - max(ay1, y1[j])
            if not iy > 0:
                continue
            inter = ix * iy
            uni = area_a + (x2[j] - x1[j]) * (y2[j] - y1[j]) - inter
            if inter >= t * uni:
                cand.first = -(inter / uni)
                cand.second.first = i
                cand.second.second = j
                cands.push_back(cand)
    if cands.size() > 1:
        cpp_sort(cands.begin(), cands.end())
    for c in range(<Py_ssize_t>cands.size()):
        i = cands[c].second.first
        j = cands[c].second.second
        if match3[i] != -1 or match2[j] != -1:
            continue
        match3[i] = j
        match2[j] = i


def project_match(const float[::1] cx, const float[::1] cy, const float[::1] cz, const float[::1] l,
                  const float[::1] w, const float[::1] h, const float[::1] yaw, const int64_t[::1] offsets3,
                  const float[::1] x1, const float[::1] y1, const float[::1] x2, const float[::1] y2,
                  const int64_t[::1] offsets2, const int64_t[::1] unit_camera,
                  const double[::1] K, const double[::1] T, const double[::1] width, const double[::1] height,
                  double near, double iou):
    """Project 3D boxes into cameras and match them one to one with the cameras' 2D boxes.

    Work is cut into units, one per (camera, frame): unit ``u`` holds 3D boxes
    ``offsets3[u]:offsets3[u+1]`` and 2D boxes ``offsets2[u]:offsets2[u+1]``, seen by camera
    ``unit_camera[u]`` (row-major ``K[9*c:9*c+9]`` intrinsics with last row 0 0 1,
    ``T[16*c:16*c+16]`` LIDAR-to-camera transform, image ``width[c] x height[c]``). Each 3D box
    is projected as in ``_project_box``; visible ones are matched greedily by IoU >= ``iou``.
    Returns ``(proj, match3, match2)``: ``proj`` (n3 x 4 float32, NaN when not in view), per 3D
    position the matched 2D position (-1: in view, unmatched; -2: not in view), per 2D
    position the matched 3D position (-1: unmatched).
    """
    cdef Py_ssize_t n3 = cx.shape[0], n2 = x1.shape[0], n_units = offsets3.shape[0] - 1, n_cams = width.shape[0]
    cdef Py_ssize_t u, i
    cdef int64_t cam
    cdef float t = <float>iou
    if cy.shape[0] != n3 or cz.shape[0] != n3 or l.shape[0] != n3 or w.shape[0] != n3 or h.shape[0] != n3 \
            or yaw.shape[0] != n3:
        raise ValueError("3D box columns differ in length")
    if y1.shape[0] != n2 or x2.shape[0] != n2 or y2.shape[0] != n2:
        raise ValueError("2D box columns differ in length")
    if offsets2.shape[0] != n_units + 1 or unit_camera.shape[0] != n_units:
        raise ValueError("offsets3, offsets2 and unit_camera must describe the same units")
    if K.shape[0] != 9 * n_cams or T.shape[0] != 16 * n_cams or height.shape[0] != n_cams:
        raise ValueError("K, T, width and height must describe the same cameras")
    for u in range(n_units):
        if unit_camera[u] < 0 or unit_camera[u] >= n_cams:
            raise ValueError("unit_camera out of range")
    if (n_units and (offsets3[n_units] != n3 or offsets2[n_units] != n2)) or (not n_units and (n3 or n2)):
        raise ValueError("offsets do not cover the boxes")
    proj_out = np.empty((n3, 4), dtype=np.float32)
    match3_out = np.full(n3, -2, dtype=np.int64)
    match2_out = np.full(n2, -1, dtype=np.int64)
    cdef float[:, ::1] proj = proj_out
    cdef int64_t[::1] match3 = match3_out
    cdef int64_t[::1] match2 = match2_out
    if n_units == 0:
        return proj_out, match3_out, match2_out
    with nogil:
        for u in prange(n_units, schedule="dynamic"):
            cam = unit_camera[u]
            for i in range(offsets3[u], offsets3[u + 1]):
                _project_box(&K[9 * cam], &T[16 * cam], width[cam], height[cam], near,
                             cx[i], cy[i], cz[i], l[i], w[i], h[i], yaw[i], &proj[i, 0])
                if proj[i, 0] == proj[i, 0]:
                    match3[i] = -1
            if offsets2[u + 1] > offsets2[u] and offsets3[u + 1] > offsets3[u]:
                _match_unit(&proj[0, 0], offsets3[u], offsets3[u + 1], &x1[0], &y1[0], &x2[0], &y2[0],
                            offsets2[u], offsets2[u + 1], t, &match3[0], &match2[0])
    return proj_out, match3_out, match2_out


# ----------------------------------------------------------------------------------------------
# size priors
# ----------------------------------------------------------------------------------------------
cdef enum:
    PRIOR_BLOCK = 1024  # rows per block in ``size_prior``
    FEW_POINTS_BLOCK = 1 << 18  # counts per block in ``few_points`` (a smaller input runs on one thread)

# reasons (bits)
cdef enum:
    SIZE_NONFINITE = 1
    SIZE_L_LOW = 2
    SIZE_L_HIGH = 4
    SIZE_W_LOW = 8
    SIZE_W_HIGH = 16
    SIZE_H_LOW = 32
    SIZE_H_HIGH = 64


cdef inline float _outside(float d, double lo, double hi, int low_bit, int high_bit, uint8_t* why) noexcept nogil:
    """Relative distance of ``d`` outside ``[lo, hi]`` (0 inside)."""
    if d < lo:
        why[0] |= low_bit
        return <float>((lo - d) / lo)
    if d > hi:
        why[0] |= high_bit
        return <float>((d - hi) / hi)
    return 0


def size_prior(const float[::1] l, const float[::1] w, const float[::1] h, const uint8_t[::1] dims_valid,
               const key_t[::1] codes, int64_t code_offset, const uint8_t[::1] code_valid,
               const int32_t[::1] slot_of_code, const double[::1] lo, const double[::1] hi):
    """Boxes whose dimensions leave their class's range.

    A row's class slot is ``slot_of_code[codes[i] - code_offset]`` (-1, or a null class in
    ``code_valid``: no prior, not checked); slot ``k`` allows ``l`` in ``[lo[3k], hi[3k]]``,
    ``w`` in ``[lo[3k+1], hi[3k+1]]``, ``h`` in ``[lo[3k+2], hi[3k+2]]`` (all bounds > 0).
    Severity: the largest relative distance outside a range (``(lo - d) / lo`` below,
    ``(d - hi) / hi`` above, computed in double and rounded to float32; at least 1e-6); a null
    (``dims_valid``) or non-finite dimension has severity 1. Returns ``(rows, severity,
    reasons)`` with reason bits 1 non-finite, 2/4 l below/above, 8/16 w, 32/64 h.
    """
    cdef Py_ssize_t n = l.shape[0], n_codes = slot_of_code.shape[0], i, k, m, base
    cdef const uint8_t* dv = valid_ptr(dims_valid)
    cdef const uint8_t* cv = valid_ptr(code_valid)
    cdef int64_t code, slot
    cdef float a, b, c, sev
    cdef uint8_t why
    cdef float sevs[PRIOR_BLOCK]
    cdef uint8_t whys[PRIOR_BLOCK]
    cdef vector[int64_t] rows
    cdef vector[float] out_sev
    cdef vector[int64_t] reasons
    if w.shape[0] != n or h.shape[0] != n or codes.shape[0] != n:
        raise ValueError("dimension and class columns differ in length")
    if lo.shape[0] != hi.shape[0] or lo.shape[0] % 3:
        raise ValueError("lo and hi need three bounds per class")
    with nogil:
        base = 0
        while base < n:
            m = min(<Py_ssize_t>PRIOR_BLOCK, n - base)
            for k in range(m):
                i = base + k
                sevs[k] = 0
                whys[k] = 0
                if not is_valid(cv, i):
                    continue
                code = codes[i] - code_offset
                if code < 0 or code >= n_codes:
                    continue
                slot = slot_of_code[code]
                if slot < 0:
                    continue
                a = l[i]
                b = w[i]
                c = h[i]
                if not is_valid(dv, i) or not (isfinite(a) and isfinite(b) and isfinite(c)):
                    sevs[k] = 1
                    whys[k] = SIZE_NONFINITE
                    continue
                why = 0
                sev = max(_outside(a, lo[3 * slot], hi[3 * slot], SIZE_L_LOW, SIZE_L_HIGH, &why),
                          max(_outside(b, lo[3 * slot + 1], hi[3 * slot + 1], SIZE_W_LOW, SIZE_W_HIGH, &why),
                              _outside(c, lo[3 * slot + 2], hi[3 * slot + 2], SIZE_H_LOW, SIZE_H_HIGH, &why)))
                whys[k] = why
                sevs[k] = max(sev, <float>1e-6) if why else 0
            for k in range(m):
                if whys[k]:
                    rows.push_back(base + k)
                    out_sev.push_back(sevs[k])
                    reasons.push_back(whys[k])
            base += m
    return to_numpy[int64_t](rows), to_numpy[float](out_sev), to_numpy[int64_t](reasons).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# bird's-eye-view multibox: rotated-rectangle overlap
# ----------------------------------------------------------------------------------------------
cdef inline void _corners(double cx, double cy, double hl, double hw, double c, double s,
                          double* px, double* py) noexcept nogil:
    """Footprint corners, counter-clockwise: local (+l, +w), (-l, +w), (-l, -w), (+l, -w)."""
    cdef double ox[4]
    cdef double oy[4]
    cdef int k
    ox[0] = hl
    oy[0] = hw
    ox[1] = -hl
    oy[1] = hw
    ox[2] = -hl
    oy[2] = -hw
    ox[3] = hl
    oy[3] = -hw
    for k in range(4):
        px[k] = cx + (c * ox[k] - s * oy[k])
        py[k] = cy + (s * ox[k] + c * oy[k])


cdef double _overlap_area(const double* ax, const double* ay, const double* bx, const double* by) noexcept nogil:
    """Area of the intersection of two counter-clockwise quadrilaterals: polygon A clipped by
    each edge of B in turn (Sutherland-Hodgman; a point is kept when the cross product is
    >= 0), then the shoelace formula."""
    cdef double px[16]
    cdef double py[16]
    cdef double qx[16]
    cdef double qy[16]
    cdef double ex0, ey0, ex1, ey1, dp, dq, t, area
    cdef int n = 4, m, e, k, j
    for k in range(4):
        px[k] = ax[k]
        py[k] = ay[k]
    for e in range(4):
        ex0 = bx[e]
        ey0 = by[e]
        ex1 = bx[(e + 1) % 4]
        ey1 = by[(e + 1) % 4]
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
    return fabs(area) * 0.5


def bev_multibox(const float[::1] cx, const float[::1] cy, const float[::1] l, const float[::1] w,
                 const float[::1] yaw, const float[::1] score, const uint8_t[::1] score_valid,
                 const int64_t[::1] offsets, double iou, int64_t min_boxes):
    """``boxes.multibox`` in bird's-eye view: connected groups of at least ``min_boxes``
    footprints per frame, linked when their rotated-rectangle IoU >= ``iou`` (intersection by
    ``_overlap_area``, in double; linked when ``inter > 0`` and ``inter >= iou * union``).
    Boxes with a non-finite parameter or a footprint without area (``l <= 0`` or ``w <= 0``)
    link to nothing (clipping against a degenerate rectangle's zero-length edges is undefined). Returns ``(pos,
    event, severity, anchor)`` as ``boxes.multibox`` does: severity the group's highest non-null,
    non-NaN score (1 without one; at least 1e-6), anchor the group's first position.
    """
    cdef Py_ssize_t n = cx.shape[0], n_frames = offsets.shape[0] - 1, f, i, j
    cdef int64_t s, e, m, ev = 0
    cdef double ca, sa, inter, uni, dx, dy, reach
    cdef bint has_score = score.shape[0] > 0
    cdef const uint8_t* sv = valid_ptr(score_valid)
    cdef const float* sp = &score[0] if has_score else NULL
    cdef vector[int64_t] parent, size
    cdef vector[double] area, radius, qx, qy
    cdef vector[uint8_t] ok, grp_has
    cdef vector[int64_t] v_pos, v_ev, anchors, grp_event
    cdef vector[float] ev_sev, grp_best
    if cy.shape[0] != n or l.shape[0] != n or w.shape[0] != n or yaw.shape[0] != n \
            or (has_score and score.shape[0] != n):
        raise ValueError("box columns differ in length")
    with nogil:
        for f in range(n_frames):
            s = offsets[f]
            e = offsets[f + 1]
            m = e - s
            if m < min_boxes or m < 2:
                continue
            parent.resize(m)
            size.resize(m)
            area.resize(m)
            radius.resize(m)
            ok.resize(m)
            qx.resize(4 * m)
            qy.resize(4 * m)
            for i in range(m):
                parent[i] = i
                size[i] = 1
                ok[i] = isfinite(cx[s + i]) and isfinite(cy[s + i]) and isfinite(l[s + i]) \
                    and isfinite(w[s + i]) and isfinite(yaw[s + i]) and l[s + i] > 0 and w[s + i] > 0
                if not ok[i]:
                    continue
                ca = cos(<double>yaw[s + i])
                sa = sin(<double>yaw[s + i])
                _corners(cx[s + i], cy[s + i], 0.5 * <double>l[s + i], 0.5 * <double>w[s + i], ca, sa,
                         &qx[4 * i], &qy[4 * i])
                area[i] = <double>l[s + i] * <double>w[s + i]
                radius[i] = 0.5 * sqrt(<double>l[s + i] * l[s + i] + <double>w[s + i] * w[s + i])
            for i in range(m):
                if not ok[i]:
                    continue
                for j in range(i + 1, m):
                    if not ok[j]:
                        continue
                    # footprints whose circumscribed circles are apart cannot overlap
                    dx = <double>cx[s + i] - cx[s + j]
                    dy = <double>cy[s + i] - cy[s + j]
                    reach = (radius[i] + radius[j]) * (1.0 + 1e-6) + 1e-9
                    if dx * dx + dy * dy > reach * reach:
                        continue
                    inter = _overlap_area(&qx[4 * i], &qy[4 * i], &qx[4 * j], &qy[4 * j])
                    uni = area[i] + area[j] - inter
                    if inter > 0 and inter >= iou * uni:
                        join(&parent[0], &size[0], i, j)
            emit_groups(s, m, &parent[0], &size[0], min_boxes, sp, sv, grp_best, grp_has, grp_event,
                        anchors, ev_sev, v_pos, v_ev, &ev)
    events = to_numpy[int64_t](v_ev)
    return to_numpy[int64_t](v_pos), events, to_numpy[float](ev_sev)[events], to_numpy[int64_t](anchors)


# ----------------------------------------------------------------------------------------------
# empty boxes, given counts
# ----------------------------------------------------------------------------------------------
cdef inline void _few_points_block(const int64_t* cp, const uint8_t* vp, Py_ssize_t lo, Py_ssize_t hi,
                                   int64_t min_points, vector[int64_t]* out) noexcept nogil:
    """Rows in ``[lo, hi)`` whose count is below ``min_points`` (valid only), in order."""
    cdef Py_ssize_t i, k, end8 = lo + (hi - lo) // 8 * 8
    cdef int64_t row
    cdef bint low
    # low counts are rare: test eight at a time without branches, look closer only on a hit
    i = lo
    while i < end8:
        low = ((cp[i] < min_points) | (cp[i + 1] < min_points) | (cp[i + 2] < min_points)
               | (cp[i + 3] < min_points) | (cp[i + 4] < min_points) | (cp[i + 5] < min_points)
               | (cp[i + 6] < min_points) | (cp[i + 7] < min_points))
        if low:
            for k in range(i, i + 8):
                if cp[k] < min_points and (vp == NULL or vp[k] != 0):
                    row = k  # a copy: pushing ``k`` itself would keep the loop index in memory
                    out.push_back(row)
        i += 8
    for k in range(end8, hi):
        if cp[k] < min_points and (vp == NULL or vp[k] != 0):
            row = k
            out.push_back(row)


def few_points(const int64_t[::1] counts, const uint8_t[::1] valid, int64_t min_points):
    """Positions whose count is below ``min_points`` (rows with ``valid == 0`` skipped), and
    their severity ``1 - count / min_points`` (float32; a negative count reads as 0).

    One read of the column in contiguous blocks spread over the threads (memory-bound: a
    second core adds bandwidth); each block keeps its hits in order, so the result is the
    same on any number of threads."""
    cdef Py_ssize_t n = counts.shape[0], t, j, m, blk, total
    cdef const int64_t* cp = &counts[0] if n else NULL
    cdef const uint8_t* vp = valid_ptr(valid)
    cdef double inv = 1.0 / <double>min_points
    cdef Py_ssize_t n_blocks = max(min(n // FEW_POINTS_BLOCK, 64), 1)
    cdef vector[vector[int64_t]] hits
    if min_points < 1:
        raise ValueError("min_points must be at least 1")
    hits.resize(n_blocks)
    blk = (n + n_blocks - 1) // n_blocks
    with nogil:
        if n_blocks == 1:
            _few_points_block(cp, vp, 0, n, min_points, &hits[0])
        else:
            for t in prange(n_blocks, schedule="dynamic"):
                _few_points_block(cp, vp, min(t * blk, n), min((t + 1) * blk, n), min_points, &hits[t])
    total = 0
    for t in range(n_blocks):
        total += <Py_ssize_t>hits[t].size()
    rows = np.empty(total, np.int64)
    sev = np.empty(total, np.float32)
    cdef int64_t[::1] rv = rows
    cdef float[::1] sv = sev
    cdef int64_t c
    with nogil:
        j = 0
        for t in range(n_blocks):
            for m in range(<Py_ssize_t>hits[t].size()):
                rv[j] = hits[t][m]
                c = cp[rv[j]]
                sv[j] = <float>(1.0 - <double>(c if c > 0 else 0) * inv)
                j += 1
    return rows, sev


# ----------------------------------------------------------------------------------------------
# input preparation
# ----------------------------------------------------------------------------------------------
def key_runs(const int64_t[::1] key):
    """Starts of the runs of equal consecutive keys, and whether the keys never decrease (then
    the runs are the groups and no sort is needed). One pass; ``tripwire.points`` groups rows
    by (stream, frame) with it, whatever the backend: it is input preparation, not a check."""
    cdef Py_ssize_t n = key.shape[0], i
    cdef bint ordered = True
    cdef vector[int64_t] starts
    with nogil:
        if n:
            starts.push_back(0)
        for i in range(1, n):
            if key[i] != key[i - 1]:
                starts.push_back(i)
                if key[i] < key[i - 1]:
                    ordered = False
    return to_numpy[int64_t](starts), ordered
