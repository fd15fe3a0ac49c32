"""The bundled LIDAR sample (``tripwire/data/kitti_lidar``, see PROVENANCE.md): real KITTI
sweeps, a baseline detector's 3D boxes, and a synthetic camera with a known perturbed subset.

``agree`` must flag exactly the perturbed subset; ``empty_box`` is checked against a brute-force
count (every point against every box, in NumPy) on the real points."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tripwire as tw

DATA = os.path.join(os.path.dirname(tw.__file__), "data", "kitti_lidar")
SDIST = os.environ.get("TRIPWIRE_POINTCLOUDSET_SDIST", "/tmp/pcs/pointcloudset-0.10.0.tar.gz")


@pytest.fixture(scope="module")
def kitti():
    return {n: pq.read_table(os.path.join(DATA, f"{n}.parquet"))
            for n in ("points", "boxes3d", "boxes", "calib", "perturbations")}


def brute_force_counts(b3: pa.Table, pts: pa.Table) -> np.ndarray:
    """Every point of the box's frame against the box, the documented test in float64."""
    x, y, z, f = (pts[c].to_numpy().astype(np.float64) for c in ("x", "y", "z", "frame"))
    out = []
    for r in b3.to_pylist():
        sel = f == r["frame"]
        c, s = np.cos(np.float64(np.float32(r["yaw"]))), np.sin(np.float64(np.float32(r["yaw"])))
        dx, dy = x[sel] - np.float32(r["cx"]), y[sel] - np.float32(r["cy"])
        lx, ly = dx * c + dy * s, dy * c - dx * s
        inside = (np.abs(lx) <= 0.5 * np.float64(np.float32(r["l"]))) & \
            (np.abs(ly) <= 0.5 * np.float64(np.float32(r["w"]))) & \
            (np.abs(z[sel] - np.float32(r["cz"])) <= 0.5 * np.float64(np.float32(r["h"])))
        out.append(int(inside.sum()))
    return np.array(out)


def test_sample_is_what_provenance_says(kitti):
    pts = kitti["points"]
    assert pts.num_rows == 362_716 and pts.schema.names == ["frame", "x", "y", "z", "intensity"]
    assert np.bincount(pts["frame"].to_numpy()).tolist() == [121_071, 120_854, 120_791]
    assert kitti["boxes3d"].num_rows == 14 and sorted(set(kitti["boxes3d"]["frame"].to_pylist())) == [0, 1, 2]
    assert sorted(kitti["perturbations"]["kind"].to_pylist()) == ["added"] * 6 + ["dropped"] * 3 + ["shifted"] * 3


@pytest.mark.skipif(not os.path.exists(SDIST), reason="the pointcloudset 0.10.0 sdist is not at hand")
def test_points_are_the_sweeps_unchanged(kitti):
    import io
    import tarfile

    inside = "pointcloudset-0.10.0/tests/testdata/kitti_velodyne/kitti_2011_09_26_drive_0002_synced/part.{}.parquet"
    pts = kitti["points"]
    with tarfile.open(SDIST) as tar:
        for part in range(3):
            src = pq.read_table(io.BytesIO(tar.extractfile(inside.format(part)).read()))
            mine = pts.filter(pa.compute.equal(pts["frame"], part))
            for a, b in (("x", "x"), ("y", "y"), ("z", "z"), ("intensity", "i")):
                assert np.array_equal(mine[a].to_numpy(), src[b].to_numpy())


def test_agree_finds_exactly_the_perturbed_subset(kitti, backend):
    r = tw.Suite([tw.points.agree(iou=0.5)]).check(boxes3d=kitti["boxes3d"], calib=kitti["calib"],
                                                   boxes=kitti["boxes"], backend=backend)
    per = kitti["perturbations"].to_pylist()
    want3 = sorted(p["boxes3d_row"] for p in per if p["boxes3d_row"] is not None)
    want2 = sorted(p["boxes_row"] for p in per if p["boxes_row"] is not None)
    v = r.violations
    got = list(zip(v["table"].to_pylist(), v["row"].to_pylist()))
    assert sorted(row for t, row in got if t == "boxes3d") == want3
    assert sorted(row for t, row in got if t == "boxes") == want2
    # severity per frame: unmatched 3D + unmatched 2D boxes of that frame
    per_frame = {f: sum(1 for p in per if p["frame"] == f for k in ("boxes3d_row", "boxes_row")
                        if p[k] is not None) for f in range(3)}
    assert {f: s for f, s in zip(v["frame"].to_pylist(), v["severity"].to_pylist())} == per_frame
    # the imputed boxes of the dropped ones land where the camera would have seen them
    added = r.corrections(table="boxes")
    assert added.num_rows == len(want3) and added["camera"].to_pylist() == ["cam2_like"] * len(want3)


def test_empty_box_against_brute_force_counts_on_real_points(kitti, backend):
    b3, pts = kitti["boxes3d"], kitti["points"]
    brute = brute_force_counts(b3, pts)
    assert tw.points.count_in_boxes(b3, pts, backend=backend).to_pylist() == brute.tolist()
    assert brute.min() > 0 and brute.sum() > 5000  # the detector's boxes hold the clusters they came from
    for min_points in (1, 100, 400, 10_000):
        r = tw.Suite([tw.points.empty_box(min_points=min_points)]).check(boxes3d=b3, points=pts, backend=backend)
        want = np.flatnonzero(brute < min_points)
        assert r.violations["row"].to_pylist() == want.tolist()
        np.testing.assert_allclose(r.violations["severity"].to_numpy(), 1 - brute[want] / min_points, rtol=1e-6)


def test_bundled_suite_runs(kitti):
    s = tw.Suite.from_toml(os.path.join(os.path.dirname(DATA), "kitti_lidar_suite.toml"))
    r = s.check(boxes3d=kitti["boxes3d"], points=kitti["points"], calib=kitti["calib"], boxes=kitti["boxes"])
    counts = {x["assertion"]: x["events"] for x in r.summary().to_pylist()}
    assert counts["points.agree"] == 3 and counts["points.empty_box"] == 2
