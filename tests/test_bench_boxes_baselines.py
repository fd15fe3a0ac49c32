"""The bench-only box baselines (``tripwire.bench_boxes_baselines``) flag exactly tripwire's rows.

Every baseline (vectorized and per-frame loop) is compared with ``Suite.check`` on the
generated tracker output (``track_table``) and on small hand-made tables; the generated data
must exercise every assertion (each injected error kind yields violations).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tripwire import bench_boxes
from tripwire import bench_boxes_baselines as bb

pd = pytest.importorskip("pandas")
pytest.importorskip("scipy")

BASELINES = [(a, name) for a, fns in bb.BASELINES.items() for name in fns]
COLUMNS = {"frame": np.int64, "track": np.int64, "cls": np.int32, "score": np.float32,
           "x1": np.float32, "y1": np.float32, "x2": np.float32, "y2": np.float32}


def tripwire_rows(assertion: str, table: pa.Table) -> np.ndarray:
    rows = bench_boxes.suite(assertion).check(table).violations["row"].to_numpy()
    return np.unique(rows)


def baseline_rows(assertion: str, name: str, df) -> np.ndarray:
    got = bb.BASELINES[assertion][name](df)
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
    assert len(np.unique(got)) == len(got), "a row flagged twice"
    return np.sort(got)


def hand_table(rows: list[tuple]) -> pa.Table:
    """Rows (frame, track, cls, score, x1, y1, x2, y2)."""
    cols = list(zip(*rows))
    return pa.table({k: np.array(v, dt) for (k, dt), v in zip(COLUMNS.items(), cols)})


@pytest.fixture(scope="module", params=[10, 30], ids=lambda p: f"{p}_per_frame")
def generated(request):
    table = bb.track_table(20_000, request.param)
    return table, table.to_pandas(), {a: tripwire_rows(a, table) for a in bench_boxes.ASSERTIONS}


# ----------------------------------------------------------------------------------------------
# the generator
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("per_frame", [1, 10, 30])
def test_track_table_shape(per_frame):
    t = bb.track_table(5_000, per_frame, seed=3)
    assert t.num_rows == 5_000
    assert t.schema == pa.schema([(k, pa.from_numpy_dtype(dt)) for k, dt in COLUMNS.items()])
    frame = t["frame"].to_numpy()
    assert (np.diff(frame) >= 0).all() and frame[0] == 0
    counts = np.bincount(frame)
    assert abs(np.median(counts) - per_frame) <= 1
    cls = t["cls"].to_numpy()
    assert cls.min() >= 0 and cls.max() <= 4
    assert t.equals(bb.track_table(5_000, per_frame, seed=3))
    assert not t.equals(bb.track_table(5_000, per_frame, seed=4))
    for n in (0, 1, 7):
        assert bb.track_table(n, per_frame).num_rows == n


def test_track_table_realistic():
    df = bb.track_table(50_000, 10).to_pandas()
    x1, y1, x2, y2, score = (df[c].to_numpy() for c in ("x1", "y1", "x2", "y2", "score"))
    broken = (x2 <= x1) | (score > 1)
    assert 0.0005 < broken.mean() < 0.002
    ok = ~broken
    w, h = (x2 - x1)[ok], (y2 - y1)[ok]
    assert w.min() > 20 and w.max() < 210 and h.min() > 20 and h.max() < 210
    assert x1[ok].min() >= 0 and x2[ok].max() <= 1920 and y1.min() >= 0 and y2.max() <= 1080
    assert score.min() >= 0
    life = df.groupby("track")["frame"].agg(lambda f: f.max() - f.min() + 1)
    assert (life <= 2).sum() > 50  # spurious objects and duplicates
    assert ((life >= 50) & (life <= 200)).sum() > 200  # real objects
    assert (df.groupby("track")["cls"].nunique() > 1).sum() > 10  # class flips
    # smooth motion: consecutive boxes of a track overlap a lot
    d = df.sort_values(["track", "frame"], kind="stable")
    same = (d["track"].to_numpy()[1:] == d["track"].to_numpy()[:-1]) & \
        (np.diff(d["frame"].to_numpy()) == 1)
    step = np.abs(np.diff(d["x1"].to_numpy()))[same]
    assert np.median(step) < 3


# ----------------------------------------------------------------------------------------------
# baselines == tripwire
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("assertion,name", BASELINES, ids=[f"{a}-{n}" for a, n in BASELINES])
def test_baseline_matches_tripwire(generated, assertion, name):
    table, df, want = generated
    np.testing.assert_array_equal(baseline_rows(assertion, name, df), want[assertion])


def test_every_error_kind_is_exercised(generated):
    table, df, want = generated
    for assertion, rows in want.items():
        assert len(rows) > 0, assertion
    track = df["track"].to_numpy()
    n_rows_of_track = pd.Series(track).map(pd.Series(track).value_counts()).to_numpy()
    # multibox catches the injected near-duplicates (own tracks of one box)
    assert (n_rows_of_track[want["multibox"]] == 1).any()
    # flicker: drops inside long tracks
    assert (n_rows_of_track[want["flicker_track"]] >= 50).any()
    # appear: spurious objects of 1..2 boxes
    assert set(np.unique(n_rows_of_track[want["appear_track"]])) <= {1, 2}
    # class flips: single rows of real tracks (short only where cut by the table's ends)
    assert (n_rows_of_track[want["class_consistency"]] >= 3).all()
    assert (n_rows_of_track[want["class_consistency"]] >= 50).any()
    # valid: exactly the injected broken boxes (clipping keeps the others inside the image)
    broken = (df["x2"] <= df["x1"]) | (df["score"] > 1)
    np.testing.assert_array_equal(np.flatnonzero(broken.to_numpy()), want["valid"])
    # identity "iou" follows the same objects: most track flickers are iou flickers too
    assert len(np.intersect1d(want["flicker_track"], want["flicker_iou"])) > len(want["flicker_track"]) // 2


# ----------------------------------------------------------------------------------------------
# hand-made tables
# ----------------------------------------------------------------------------------------------
HAND = {
    # frame 0: chain A-B-C (A, C apart) + lone D; frame 1: only two overlapping; frame 5: three
    # stacked boxes (a group) and, with another class, a fourth: still one group (class-blind)
    "multibox": [
        (0, 1, 0, .9, 0, 0, 10, 10), (0, 2, 0, .8, 4, 0, 14, 10), (0, 3, 1, .7, 8, 0, 18, 10),
        (0, 4, 0, .5, 500, 500, 520, 520),
        (1, 1, 0, .9, 0, 0, 10, 10), (1, 2, 0, .8, 1, 0, 11, 10),
        (5, 1, 0, .9, 0, 0, 10, 10), (5, 2, 2, .8, 1, 1, 11, 11), (5, 5, 0, .8, 50, 50, 60, 60),
        (5, 3, 0, .7, 2, 0, 12, 10), (5, 6, 3, .6, 0, 1, 10, 11),
    ],
    # identity iou: A and B (class 0) at frame 0; C continues A at 1; B is missing at 1 and
    # continued by D at 2 (gap 1: flicker); at 3 two boxes compete for one object (greedy by
    # IoU); a class-1 box on top of A's object starts its own object; frame 9 continues nothing
    # (gap 5 > max_gap); track ids as the tracker gave them (one fragmentation: 7 -> 8)
    "track": [
        (0, 1, 0, .9, 0, 0, 10, 10), (0, 2, 0, .9, 100, 0, 110, 10),
        (1, 1, 0, .9, 1, 0, 11, 10), (1, 3, 1, .9, 1, 0, 11, 10),
        (2, 1, 0, .9, 2, 0, 12, 10), (2, 2, 0, .9, 101, 0, 111, 10),
        (3, 4, 0, .9, 4, 0, 14, 10), (3, 1, 0, .9, 2, 1, 12, 11), (3, 2, 0, .9, 102, 0, 112, 10),
        (4, 7, 2, .9, 300, 300, 340, 340), (4, 1, 0, .9, 3, 1, 13, 11),
        (6, 8, 2, .9, 301, 300, 341, 340), (6, 1, 1, .9, 3, 1, 13, 11), (6, 2, 0, .9, 103, 0, 113, 10),
        (7, 1, 0, .9, 3, 1, 13, 11),
        (9, 1, 0, .9, 3, 1, 13, 11), (9, 2, 0, 1.5, 104, 0, 114, 10), (9, 9, 0, .9, 20, 0, 10, 10),
        (10, 9, 0, .9, 1900, 0, 1930, 10), (10, 2, 4, .9, 104, 0, 114, 10),
        (11, 1, 0, -0.1, 3, 1, 13, 11), (11, 2, 4, .9, 104, 0, 114, 10),
    ],
    # class_consistency ties: track 1 has classes 2, 1, 1, 2 (tie: 2, seen first) -> the 1s
    "classes": [
        (0, 1, 2, .9, 0, 0, 10, 10), (1, 1, 1, .9, 0, 0, 10, 10), (2, 1, 1, .9, 0, 0, 10, 10),
        (3, 1, 2, .9, 0, 0, 10, 10), (3, 2, 0, .9, 50, 50, 60, 60), (4, 2, 3, .9, 50, 50, 60, 60),
        (5, 2, 0, .9, 50, 50, 60, 60), (5, 3, 4, .9, 0, -1, 10, 10),
    ],
}
HAND_EXPECTED = {
    ("multibox", "multibox"): [0, 1, 2, 6, 7, 9, 10],
    ("classes", "class_consistency"): [1, 2, 5],
    ("classes", "valid"): [7],
    ("track", "valid"): [16, 17, 18, 20],
}


@pytest.mark.parametrize("case", sorted(HAND))
@pytest.mark.parametrize("assertion,name", BASELINES, ids=[f"{a}-{n}" for a, n in BASELINES])
def test_hand_cases(case, assertion, name):
    table = hand_table(HAND[case])
    want = tripwire_rows(assertion, table)
    if (case, assertion) in HAND_EXPECTED:
        np.testing.assert_array_equal(want, HAND_EXPECTED[case, assertion])
    np.testing.assert_array_equal(baseline_rows(assertion, name, table.to_pandas()), want)


def test_hand_track_case_flags_something():
    table = hand_table(HAND["track"])
    for a in ("flicker_track", "flicker_iou", "appear_track", "appear_iou", "class_consistency"):
        assert len(tripwire_rows(a, table)) > 0, a


@pytest.mark.parametrize("assertion,name", BASELINES, ids=[f"{a}-{n}" for a, n in BASELINES])
def test_empty_table(assertion, name):
    table = hand_table([(0, 1, 0, .5, 0, 0, 1, 1)]).slice(0, 0)
    assert len(baseline_rows(assertion, name, table.to_pandas())) == 0
