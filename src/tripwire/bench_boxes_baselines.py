"""Baselines for the ``boxes`` assertions (bench-only: used by benchmarks and their tests).

tripwire's box assertions (``tripwire.boxes``) are timed against two kinds of baseline, each
returning the flagged rows of a pandas DataFrame as an int64 NumPy array (row positions into
the input, each flagged row once, in no particular order):

- ``*_numpy`` / ``*_pandas``: the best vectorized pandas/NumPy version a skilled user would
  write (NumPy sorting and grouping tricks; pandas groupby/map where that is the better tool;
  ``scipy.sparse.csgraph`` for connected components). Where two approaches are competitive
  both are given and named (``BASELINES`` lists them).
- ``*_loop``: a pure-Python per-frame loop in the style of the paper library
  ``model_assertions`` (MLSys 2020): a Python ``for`` over frames, each frame a Python list of
  box tuples, dicts keyed by track or object; no NumPy inside the loop. The loop over frames
  is what tripwire's kernels replace.

Assertions covered (parameters as in the benchmark; semantics those of ``tripwire.boxes``):

- ``multibox``: connected groups (IoU >= ``iou``, tested ``inter >= iou * union``) of at least
  ``min_boxes`` boxes in one frame; every box of the group.
- ``flicker_track``: per track, consecutive appearances ``t < t'`` with ``1 <= t' - t - 1 <=
  max_gap``: the last row at ``t`` and the first row at ``t'``.
- ``flicker_iou``: the same over objects found by greedy IoU association (identity ``"iou"``).
  The association is sequential (frame ``f`` depends on every object state after ``f - 1``),
  so even the "vectorized" baseline loops over frames in Python; per frame it computes the
  live-objects x boxes IoU matrix by NumPy broadcasting and orders the candidates with
  ``np.lexsort``. That is the best a pandas/NumPy user can do for this assertion.
- ``appear_track`` / ``appear_iou``: tracks (objects) living fewer than ``min_frames``
  frames (``last - first + 1``) that touch neither the table's first nor its last frame.
- ``class_consistency``: per track, rows whose class is not the track's most common class
  (ties: the class seen first).
- ``valid``: non-finite coordinates, ``x2 <= x1``, ``y2 <= y1``, outside ``[0, width] x [0,
  height]``, or a score outside ``[0, 1]``.

The vectorized IoU code computes in float32 exactly like the kernels. The loops compute in
Python floats (doubles), as a plain-Python user would; they can differ from tripwire only for
an IoU within ~1e-7 of the threshold or two candidates whose IoUs tie in float32.

``track_table`` generates realistic tracker output with injected errors for every assertion.

Inputs: ``df`` with columns ``frame`` (int64), ``track`` (int64), ``cls`` (int32), ``score``
(float32), ``x1 y1 x2 y2`` (float32), a default RangeIndex, rows in frame order, no nulls.
pandas and scipy are imported inside the functions that use them (never at import).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pyarrow as pa

__all__ = [
    "track_table", "BASELINES",
    "multibox_numpy", "multibox_pandas", "multibox_loop",
    "flicker_track_numpy", "flicker_track_pandas", "flicker_track_loop",
    "flicker_iou_numpy", "flicker_iou_loop",
    "appear_track_numpy", "appear_track_pandas", "appear_track_loop",
    "appear_iou_numpy", "appear_iou_loop",
    "class_consistency_numpy", "class_consistency_pandas", "class_consistency_loop",
    "valid_numpy", "valid_loop",
]

_COORDS = ("x1", "y1", "x2", "y2")


# ----------------------------------------------------------------------------------------------
# Data generator
# ----------------------------------------------------------------------------------------------
def track_table(n_boxes: int, per_frame: int, seed: int = 0) -> pa.Table:
    """``n_boxes`` rows of realistic tracker output, ``per_frame`` objects per frame.

    ``per_frame`` object slots over a 1920x1080 image; each slot hosts objects back to back,
    each living 50..200 frames (the first one started before frame 0), with a new track id,
    a class in 0..4, a size of 30..200 px, constant velocity (<= 3 px/frame, staying inside
    the image) plus ~0.5 px jitter per coordinate. Injected errors: ~1% of the boxes dropped
    in runs of 1..3 frames (``flicker``), spurious objects of 1..2 frames (~0.5% of the boxes,
    ``appear``), ~0.1% of the boxes with a flipped class (``class_consistency``), two
    near-duplicates (own track ids) of one box in ~0.2% of the frames (``multibox``), ~0.1%
    invalid boxes (half with score > 1, half with x1 and x2 swapped: ``valid``). Rows in frame
    order (a frame's real boxes by slot, then extras); the last frame may be partial.
    Deterministic in ``(n_boxes, per_frame, seed)``; vectorized (10 M boxes in a few seconds).
    """
    n_boxes, per_frame = int(n_boxes), int(per_frame)
    if n_boxes < 0 or per_frame < 1:
        raise ValueError("n_boxes must be >= 0 and per_frame >= 1")
    factor = 1.03
    while True:
        cols = _generate(n_boxes, per_frame, seed, factor)
        if len(cols["frame"]) >= n_boxes:
            break
        factor *= 1.5
    return pa.table({k: v[:n_boxes] for k, v in cols.items()})


def _generate(n_boxes: int, S: int, seed: int, factor: float) -> dict[str, np.ndarray]:
    W, H = 1920.0, 1080.0
    rng = np.random.default_rng([seed, S, n_boxes])
    n_frames = int(math.ceil(n_boxes / S * factor)) + 4
    # objects: S slots x K consecutive lives
    K = n_frames // 50 + 3
    life = rng.integers(50, 201, (S, K))
    end = np.cumsum(life, axis=1) - rng.integers(0, life[:, :1])  # first object began before 0
    start = end - life
    n_obj = S * K
    life, start, end = life.ravel(), start.ravel(), end.ravel()
    ocls = rng.integers(0, 5, n_obj).astype(np.int32)
    ow = rng.uniform(30, 200, n_obj)
    oh = rng.uniform(30, 200, n_obj)
    oscore = rng.uniform(0.5, 0.95, n_obj)

    def path(size, extent):  # start centre and velocity: the whole life inside the image
        lo, hi = size / 2 + 1, extent - size / 2 - 1
        c0 = rng.uniform(lo, hi)
        c1 = np.clip(c0 + rng.uniform(-3, 3, n_obj) * life, lo, hi)
        return c0, (c1 - c0) / life

    cx0, vx = path(ow, W)
    cy0, vy = path(oh, H)

    # the object alive in each (frame, slot): frame-major rows, no sort needed
    span = np.clip(end, 0, n_frames) - np.clip(start, 0, n_frames)  # frames seen of each object
    alive = np.repeat(np.arange(n_obj), span).reshape(S, n_frames)  # a slot's lives tile it
    obj = np.ascontiguousarray(alive.T).ravel()
    frame = np.repeat(np.arange(n_frames, dtype=np.int64), S)
    R = len(obj)

    # flicker: drop runs of 1..3 frames of one object (~1% of its boxes)
    run0 = np.unique(rng.integers(0, R, rng.binomial(R, 0.005)))
    run_len = rng.integers(1, 4, len(run0))
    first = np.repeat(run0, run_len)
    step = np.arange(len(first)) - np.repeat(np.cumsum(run_len) - run_len, run_len)
    dropped = first + S * step
    inside = dropped < R
    dropped, first = dropped[inside], first[inside]
    dropped = dropped[obj[dropped] == obj[first]]  # the run ends with its object
    keep = np.ones(R, bool)
    keep[dropped] = False
    rows = np.flatnonzero(keep)
    obj, frame = obj[rows], frame[rows]
    n_real = len(obj)

    def boxes(cx, cy, w, h):  # float32 corners with ~0.5 px jitter, clipped to the image
        jit = rng.standard_normal((4, len(cx)), dtype=np.float32)
        jit *= np.float32(0.5)
        out = []
        for k, (c, half, lim) in enumerate(((cx, -w, W), (cy, -h, H), (cx, w, W), (cy, h, H))):
            v = c.astype(np.float32)
            v += np.float32(0.5) * half.astype(np.float32)
            v += jit[k]
            out.append(np.clip(v, 0, np.float32(lim), out=v))
        return out

    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    t = f32(frame - start[obj])
    x1, y1, x2, y2 = boxes(f32(cx0)[obj] + f32(vx)[obj] * t, f32(cy0)[obj] + f32(vy)[obj] * t,
                           f32(ow)[obj], f32(oh)[obj])
    cls = ocls[obj]
    score = f32(oscore)[obj]
    score += np.float32(0.03) * rng.standard_normal(n_real, dtype=np.float32)
    np.clip(score, np.float32(0.05), np.float32(1), out=score)

    # class_consistency: ~0.1% of the real boxes get another class
    flip = rng.choice(n_real, max(1, round(0.001 * n_real)), replace=False)
    cls[flip] = (cls[flip] + rng.integers(1, 5, len(flip))) % 5
    # valid: ~0.1% broken boxes (half score > 1, half x1 <-> x2)
    bad = rng.choice(n_real, max(2, round(0.001 * n_real)), replace=False)
    b1, b2 = bad[: len(bad) // 2], bad[len(bad) // 2:]
    score[b1] = 1 + rng.uniform(0.01, 0.5, len(b1))
    x1[b2], x2[b2] = x2[b2], x1[b2].copy()

    # appear: spurious objects living 1..2 frames (~0.5% of the boxes)
    n_sp = max(1, round(0.005 * n_boxes / 1.5))
    sp_len = rng.integers(1, 3, n_sp)
    sp_f0 = rng.integers(1, max(n_frames - 3, 2), n_sp)
    sp_w, sp_h = rng.uniform(30, 200, n_sp), rng.uniform(30, 200, n_sp)
    sp_cx, sp_cy = rng.uniform(sp_w / 2 + 1, W - sp_w / 2 - 1), rng.uniform(sp_h / 2 + 1, H - sp_h / 2 - 1)
    sp = np.repeat(np.arange(n_sp), sp_len)
    sp_t = np.arange(len(sp)) - np.repeat(np.cumsum(sp_len) - sp_len, sp_len)
    sp_frame = sp_f0[sp] + sp_t
    sp_x1, sp_y1, sp_x2, sp_y2 = boxes(sp_cx[sp] + 2 * sp_t, sp_cy[sp] + sp_t, sp_w[sp], sp_h[sp])
    sp_cls = rng.integers(0, 5, n_sp).astype(np.int32)[sp]
    sp_score = rng.uniform(0.3, 0.6, len(sp))

    # multibox: two near-duplicates of one box in ~0.2% of the frames (own track ids)
    n_dup = max(1, round(0.002 * n_frames))
    src = np.repeat(rng.choice(n_real, min(n_dup, n_real), replace=False), 2)
    jit = rng.normal(0, 1.5, (4, len(src)))
    d_x1, d_y1 = np.clip(x1[src] + jit[0], 0, W), np.clip(y1[src] + jit[1], 0, H)
    d_x2, d_y2 = np.clip(x2[src] + jit[2], 0, W), np.clip(y2[src] + jit[3], 0, H)
    d_frame, d_cls, d_score = frame[src], cls[src], score[src] * 0.9

    # track ids, numbered by first frame (real objects first on ties)
    n_ext = n_sp + len(src)
    ent_start = np.concatenate([np.maximum(start, 0), sp_f0, d_frame])
    ent_id = np.empty(n_obj + n_ext, np.int64)
    ent_id[np.argsort(ent_start, kind="stable")] = np.arange(1, n_obj + n_ext + 1)
    track = ent_id[obj]
    ext_track = ent_id[n_obj + np.concatenate([sp, n_sp + np.arange(len(src))])]

    # merge the extras (sorted by frame) after the real boxes of their frame
    ext = {"frame": np.concatenate([sp_frame, d_frame]), "track": ext_track,
           "cls": np.concatenate([sp_cls, d_cls]), "score": np.concatenate([sp_score, d_score]),
           "x1": np.concatenate([sp_x1, d_x1]), "y1": np.concatenate([sp_y1, d_y1]),
           "x2": np.concatenate([sp_x2, d_x2]), "y2": np.concatenate([sp_y2, d_y2])}
    real = {"frame": frame, "track": track, "cls": cls, "score": score,
            "x1": x1, "y1": y1, "x2": x2, "y2": y2}
    eo = np.argsort(ext["frame"], kind="stable")
    ef = ext["frame"][eo]
    before = np.concatenate(([0], np.cumsum(np.bincount(ef, minlength=n_frames))))  # extras before frame f
    pos_real = np.arange(n_real) + before[frame]
    pos_ext = np.arange(len(ef)) + np.searchsorted(frame, ef, side="right")
    n = n_real + len(ef)
    dtypes = {"frame": np.int64, "track": np.int64, "cls": np.int32, "score": np.float32,
              "x1": np.float32, "y1": np.float32, "x2": np.float32, "y2": np.float32}
    out = {}
    for k, dt in dtypes.items():
        col = np.empty(n, dt)
        col[pos_real] = real[k]
        col[pos_ext] = ext[k][eo]
        out[k] = col
    return out


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _rows(mask_or_rows: np.ndarray) -> np.ndarray:
    return np.asarray(mask_or_rows, dtype=np.int64)


def _frame_runs(frame: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(order, starts, counts): rows ``order`` grouped by frame (``None``: already in frame
    order), each frame a run ``starts[i] : starts[i] + counts[i]`` of that order."""
    order = None
    if len(frame) > 1 and not (frame[1:] >= frame[:-1]).all():
        order = np.argsort(frame, kind="stable")
        frame = frame[order]
    starts = np.flatnonzero(np.concatenate(([True], frame[1:] != frame[:-1]))) if len(frame) else \
        np.empty(0, np.int64)
    counts = np.diff(np.append(starts, len(frame)))
    return order, starts, counts


def _f32(df, name: str) -> np.ndarray:
    return df[name].to_numpy(dtype=np.float32, copy=False)


# ----------------------------------------------------------------------------------------------
# multibox
# ----------------------------------------------------------------------------------------------
def _components(n: int, a: np.ndarray, b: np.ndarray, min_boxes: int) -> np.ndarray:
    """Nodes (of ``n``) in connected components of >= ``min_boxes`` nodes of the edges
    ``a``-``b``: components over only the nodes that have an edge (scipy csgraph)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(a) == 0:
        return np.empty(0, np.int64)
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    m = len(nodes)
    g = coo_matrix((np.ones(len(a), np.int8), (inv[:len(a)], inv[len(a):])), shape=(m, m)).tocsr()
    _, label = connected_components(g, directed=False)
    big = np.bincount(label) >= min_boxes
    return nodes[big[label]].astype(np.int64)


def multibox_numpy(df, iou: float = 0.3, min_boxes: int = 3, chunk: int = 1 << 22) -> np.ndarray:
    """NumPy: frames grouped by their box count ``k``, the frames of one ``k`` gathered as
    ``(F, k)`` arrays and all pairs tested by broadcasting to ``(F, k, k)`` (float32, chunked;
    the IoU only on pairs whose extents overlap), then connected components of the links with
    ``scipy.sparse.csgraph``."""
    x1, y1, x2, y2 = (_f32(df, c) for c in _COORDS)
    order, starts, counts = _frame_runs(df["frame"].to_numpy())
    if order is not None:
        x1, y1, x2, y2 = x1[order], y1[order], x2[order], y2[order]
    ea, eb = [], []
    with np.errstate(all="ignore"):
        area = (x2 - x1) * (y2 - y1)
        ok = np.isfinite(x1) & np.isfinite(y1) & np.isfinite(x2) & np.isfinite(y2)
        t = np.float32(iou)
        for k in np.unique(counts).tolist():
            if k < max(min_boxes, 2):
                continue
            upper = np.triu(np.ones((k, k), bool), 1)
            first_all = starts[counts == k]
            step = max(1, chunk // (k * k))
            for c in range(0, len(first_all), step):
                first = first_all[c:c + step]
                idx = first[:, None] + np.arange(k)
                X1, Y1, X2, Y2 = x1[idx], y1[idx], x2[idx], y2[idx]
                ix = np.minimum(X2[:, :, None], X2[:, None, :])
                ix -= np.maximum(X1[:, :, None], X1[:, None, :])
                iy = np.minimum(Y2[:, :, None], Y2[:, None, :])
                iy -= np.maximum(Y1[:, :, None], Y1[:, None, :])
                cand = (ix > 0) & (iy > 0) & upper
                fi, i, j = np.nonzero(cand)
                inter = ix[fi, i, j] * iy[fi, i, j]
                a, b = first[fi] + i, first[fi] + j
                m = (inter >= t * (area[a] + area[b] - inter)) & ok[a] & ok[b]
                ea.append(a[m])
                eb.append(b[m])
    a = np.concatenate(ea) if ea else np.empty(0, np.int64)
    b = np.concatenate(eb) if eb else np.empty(0, np.int64)
    pos = _components(len(x1), a, b, min_boxes)
    return _rows(pos if order is None else order[pos])


def multibox_pandas(df, iou: float = 0.3, min_boxes: int = 3) -> np.ndarray:
    """pandas: self-merge on ``frame`` (frames with >= ``min_boxes`` boxes), keep pairs
    ``a < b``, vectorized IoU on the merged columns, scipy connected components."""
    import pandas as pd

    n = len(df)
    sizes = df.groupby("frame", sort=False)["frame"].transform("size").to_numpy()
    sub = df.loc[sizes >= max(min_boxes, 2), ["frame", *_COORDS]]
    sub = sub.assign(row=np.arange(n)[sizes >= max(min_boxes, 2)])
    pairs = pd.merge(sub, sub, on="frame", suffixes=("_a", "_b"))
    pairs = pairs[pairs["row_a"].to_numpy() < pairs["row_b"].to_numpy()]
    c = {k: pairs[k].to_numpy(dtype=np.float32) for k in pairs.columns if k[0] in "xy"}
    with np.errstate(all="ignore"):
        ix = np.minimum(c["x2_a"], c["x2_b"]) - np.maximum(c["x1_a"], c["x1_b"])
        iy = np.minimum(c["y2_a"], c["y2_b"]) - np.maximum(c["y1_a"], c["y1_b"])
        inter = ix * iy
        area_a = (c["x2_a"] - c["x1_a"]) * (c["y2_a"] - c["y1_a"])
        area_b = (c["x2_b"] - c["x1_b"]) * (c["y2_b"] - c["y1_b"])
        link = (ix > 0) & (iy > 0) & (inter >= np.float32(iou) * (area_a + area_b - inter)) \
            & np.isfinite(area_a) & np.isfinite(area_b)
    a = pairs["row_a"].to_numpy()[link]
    b = pairs["row_b"].to_numpy()[link]
    return _rows(_components(n, a, b, min_boxes))


def _iou_loop(p, q) -> float:
    """IoU of two box tuples ``(..., x1, y1, x2, y2)`` in Python floats (0: not overlapping)."""
    ix = min(p[-2], q[-2]) - max(p[-4], q[-4])
    if not ix > 0:
        return 0.0
    iy = min(p[-1], q[-1]) - max(p[-3], q[-3])
    if not iy > 0:
        return 0.0
    inter = ix * iy
    union = (p[-2] - p[-4]) * (p[-1] - p[-3]) + (q[-2] - q[-4]) * (q[-1] - q[-3]) - inter
    return inter / union


def _frames_loop(df, extra: tuple[str, ...] = ()):
    """The per-frame input of the loops: ``(frame, [(row, *extra, x1, y1, x2, y2), ...])``
    for each frame, as Python lists (rows are in frame order)."""
    cols = [df["frame"].tolist()] + [df[c].tolist() for c in extra] + [df[c].tolist() for c in _COORDS]
    boxes: list[tuple] = []
    cur = None
    for row, rec in enumerate(zip(*cols)):
        if rec[0] != cur:
            if boxes:
                yield cur, boxes
            cur, boxes = rec[0], []
        boxes.append((row,) + rec[1:])
    if boxes:
        yield cur, boxes


def _finite(b) -> bool:
    return math.isfinite(b[-4]) and math.isfinite(b[-3]) and math.isfinite(b[-2]) and math.isfinite(b[-1])


def multibox_loop(df, iou: float = 0.3, min_boxes: int = 3) -> np.ndarray:
    """Per frame: all pairs of boxes, IoU >= ``iou`` links, flood fill of the groups."""
    flagged = []
    for _, boxes in _frames_loop(df):
        k = len(boxes)
        if k < min_boxes:
            continue
        adj: list[list[int]] = [[] for _ in range(k)]
        for i in range(k):
            bi = boxes[i]
            if not _finite(bi):
                continue
            for j in range(i + 1, k):
                bj = boxes[j]
                if _finite(bj) and _iou_loop(bi, bj) >= iou:
                    adj[i].append(j)
                    adj[j].append(i)
        seen = [False] * k
        for i in range(k):
            if seen[i] or not adj[i]:
                continue
            seen[i] = True
            group, todo = [], [i]
            while todo:
                u = todo.pop()
                group.append(u)
                for w in adj[u]:
                    if not seen[w]:
                        seen[w] = True
                        todo.append(w)
            if len(group) >= min_boxes:
                flagged.extend(boxes[u][0] for u in group)
    return _rows(flagged)


# ----------------------------------------------------------------------------------------------
# valid
# ----------------------------------------------------------------------------------------------
def valid_numpy(df, width: float = 1920, height: float = 1080) -> np.ndarray:
    """One boolean expression over the columns."""
    x1, y1, x2, y2 = (_f32(df, c) for c in _COORDS)
    s = df["score"].to_numpy()
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(x1) & np.isfinite(y1) & np.isfinite(x2) & np.isfinite(y2))
        bad |= (x2 <= x1) | (y2 <= y1) | (x1 < 0) | (x2 > width) | (y1 < 0) | (y2 > height)
        bad |= ~((s >= 0) & (s <= 1))
    return np.flatnonzero(bad).astype(np.int64)


def valid_loop(df, width: float = 1920, height: float = 1080) -> np.ndarray:
    """Per frame, per box: the same tests in Python."""
    flagged = []
    for _, boxes in _frames_loop(df, ("score",)):
        for row, s, x1, y1, x2, y2 in boxes:
            if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)) \
                    or x2 <= x1 or y2 <= y1 or x1 < 0 or x2 > width or y1 < 0 or y2 > height \
                    or not 0 <= s <= 1:
                flagged.append(row)
    return _rows(flagged)


# ----------------------------------------------------------------------------------------------
# flicker / appear by track id
# ----------------------------------------------------------------------------------------------
def _by_track(track: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Rows ordered by (track, frame), ties in row order: one stable argsort of the track when
    rows are already in frame order (the usual case), else a lexsort."""
    if len(frame) < 2 or (frame[1:] >= frame[:-1]).all():
        return np.argsort(track, kind="stable")
    return np.lexsort((frame, track))


def _gap_pairs(o: np.ndarray, key: np.ndarray, frame: np.ndarray, max_gap: int) -> np.ndarray:
    k, f = key[o], frame[o]
    g = f[1:] - f[:-1] - 1
    m = (k[1:] == k[:-1]) & (g >= 1) & (g <= max_gap)
    return np.unique(np.concatenate([o[:-1][m], o[1:][m]])).astype(np.int64)


def flicker_track_numpy(df, max_gap: int = 3) -> np.ndarray:
    """NumPy: rows sorted by (track, frame) (stable argsort of the track), frame differences
    of neighbours of one track."""
    track, frame = df["track"].to_numpy(), df["frame"].to_numpy()
    return _gap_pairs(_by_track(track, frame), track, frame, max_gap)


def flicker_track_pandas(df, max_gap: int = 3) -> np.ndarray:
    """pandas: ``groupby(track).shift()`` of the row number (hash grouping, no sort; rows are in
    frame order, so the shifted row is the track's previous appearance)."""
    import pandas as pd

    frame = df["frame"].to_numpy()
    prev = pd.Series(np.arange(len(df)), index=df.index).groupby(df["track"].to_numpy(), sort=False) \
        .shift(1).to_numpy()
    has = ~np.isnan(prev)
    cur = np.flatnonzero(has)
    p = prev[has].astype(np.int64)
    g = frame[cur] - frame[p] - 1
    m = (g >= 1) & (g <= max_gap)
    return np.unique(np.concatenate([p[m], cur[m]])).astype(np.int64)


def flicker_track_loop(df, max_gap: int = 3) -> np.ndarray:
    """Per frame: each box looks up its track's last appearance in a dict."""
    last: dict[int, tuple[int, int]] = {}
    flagged = set()
    for f, boxes in _frames_loop(df, ("track",)):
        for row, track, *_ in boxes:
            seen = last.get(track)
            if seen is not None and 1 <= f - seen[0] - 1 <= max_gap:
                flagged.add(seen[1])
                flagged.add(row)
            last[track] = (f, row)
    return _rows(sorted(flagged))


def _short_lived(key: np.ndarray, frame: np.ndarray, min_frames: int, o: np.ndarray | None = None,
                 valid: np.ndarray | None = None) -> np.ndarray:
    """Rows of keys whose frame span is < ``min_frames`` and that touch neither end of the
    table's frame range (over every row). ``o``: rows ordered by key (computed if ``None``);
    ``valid``: rows that belong to a key."""
    if len(frame) == 0:
        return np.empty(0, np.int64)
    lo, hi = frame.min(), frame.max()
    if valid is not None:
        key, idx = key[valid], np.flatnonzero(valid)
        frame = frame[valid]
    else:
        idx = None
    if o is None:
        o = np.argsort(key, kind="stable")
    if len(o) == 0:
        return np.empty(0, np.int64)
    k, f = key[o], frame[o]
    starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
    first = np.minimum.reduceat(f, starts)
    last = np.maximum.reduceat(f, starts)
    bad = (last - first + 1 < min_frames) & (first != lo) & (last != hi)
    rows = o[np.repeat(bad, np.diff(np.append(starts, len(o))))]
    return (rows if idx is None else idx[rows]).astype(np.int64)


def appear_track_numpy(df, min_frames: int = 3) -> np.ndarray:
    """NumPy: stable argsort of the track, first/last frame per track with ``reduceat``."""
    track, frame = df["track"].to_numpy(), df["frame"].to_numpy()
    return _short_lived(track, frame, min_frames, np.argsort(track, kind="stable"))


def appear_track_pandas(df, min_frames: int = 3) -> np.ndarray:
    """pandas: ``groupby(track).frame.transform(min / max)`` (hash grouping)."""
    g = df.groupby("track", sort=False)["frame"]
    first, last = g.transform("min").to_numpy(), g.transform("max").to_numpy()
    frame = df["frame"].to_numpy()
    if len(frame) == 0:
        return np.empty(0, np.int64)
    bad = (last - first + 1 < min_frames) & (first != frame.min()) & (last != frame.max())
    return np.flatnonzero(bad).astype(np.int64)


def _lifetimes_loop(frames_iter, min_frames: int) -> np.ndarray:
    """``frames_iter`` yields ``(frame, [(row, key), ...])``; returns the rows of short-lived
    keys not cut by the table's first or last frame."""
    span: dict[Any, list] = {}  # key -> [first, last, rows]
    lo = hi = None
    for f, boxes in frames_iter:
        if lo is None or f < lo:
            lo = f
        if hi is None or f > hi:
            hi = f
        for row, key in boxes:
            s = span.get(key)
            if s is None:
                span[key] = [f, f, [row]]
            else:
                if f < s[0]:
                    s[0] = f
                if f > s[1]:
                    s[1] = f
                s[2].append(row)
    flagged = []
    for first, last, rows in span.values():
        if last - first + 1 < min_frames and first != lo and last != hi:
            flagged.extend(rows)
    return _rows(flagged)


def appear_track_loop(df, min_frames: int = 3) -> np.ndarray:
    """Per frame: each box extends its track's (first, last) in a dict; then one pass over
    the tracks."""
    frames = ((f, [(b[0], b[1]) for b in boxes]) for f, boxes in _frames_loop(df, ("track",)))
    return _lifetimes_loop(frames, min_frames)


# ----------------------------------------------------------------------------------------------
# flicker / appear by IoU association
# ----------------------------------------------------------------------------------------------
def _associate_numpy(df, iou: float, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy IoU association (identity ``"iou"``), one Python iteration per frame with the
    live objects x boxes IoU matrix by broadcasting (float32, as the kernels). Conflicting
    candidates are ordered with ``np.lexsort`` (IoU desc, last frame desc, object, box) and
    taken greedily; without conflicts every candidate is a match. Returns ``(obj, prev)`` per
    row (-1: none)."""
    n = len(df)
    frame = df["frame"].to_numpy()
    order, starts, counts = _frame_runs(frame)
    x1, y1, x2, y2 = (_f32(df, c) for c in _COORDS)
    cls = df["cls"].to_numpy()
    if order is not None:
        x1, y1, x2, y2, cls, frame = x1[order], y1[order], x2[order], y2[order], cls[order], frame[order]
    obj = np.full(n, -1, np.int64)
    prev = np.full(n, -1, np.int64)
    t = np.float32(iou)
    with np.errstate(all="ignore"):
        area = (x2 - x1) * (y2 - y1)
        ok = np.isfinite(x1) & np.isfinite(y1) & np.isfinite(x2) & np.isfinite(y2)
        # live objects, oldest first (slot order = object id order)
        a_obj = np.empty(0, np.int64)
        a_pos = np.empty(0, np.int64)
        a_frame = np.empty(0, np.int64)
        n_obj = 0
        for s, cnt, f in zip(starts.tolist(), counts.tolist(), frame[starts].tolist()):
            e = s + cnt
            if len(a_obj):
                keep = a_frame >= f - 1 - max_gap
                if not keep.all():
                    a_obj, a_pos, a_frame = a_obj[keep], a_pos[keep], a_frame[keep]
            matched = None
            if len(a_obj):
                p = a_pos[:, None]  # (live, 1) against the frame's boxes (1, k)
                ix = np.minimum(x2[p], x2[s:e]) - np.maximum(x1[p], x1[s:e])
                iy = np.minimum(y2[p], y2[s:e]) - np.maximum(y1[p], y1[s:e])
                inter = ix * iy
                union = area[p] + area[s:e] - inter
                link = (ix > 0) & (iy > 0) & (inter >= t * union) & (cls[p] == cls[s:e])
                ai, bi = np.nonzero(link)
                if len(ai):
                    if len(ai) > 1 and (np.bincount(ai).max() > 1 or np.bincount(bi).max() > 1):
                        v = inter[ai, bi] / union[ai, bi]
                        srt = np.lexsort((bi, ai, -a_frame[ai], -v))
                        ua, ub, take = set(), set(), []
                        for c, x, y in zip(srt.tolist(), ai[srt].tolist(), bi[srt].tolist()):
                            if x not in ua and y not in ub:
                                ua.add(x)
                                ub.add(y)
                                take.append(c)
                        ai, bi = ai[take], bi[take]
                    pos = s + bi
                    obj[pos] = a_obj[ai]
                    prev[pos] = a_pos[ai]
                    a_pos[ai] = pos
                    a_frame[ai] = f
                    matched = bi
            if matched is None:
                new = np.flatnonzero(ok[s:e]) + s
            else:
                free = ok[s:e].copy()
                free[matched] = False
                new = np.flatnonzero(free) + s
            if len(new):
                ids = np.arange(n_obj, n_obj + len(new))
                n_obj += len(new)
                obj[new] = ids
                a_obj = np.concatenate([a_obj, ids])
                a_pos = np.concatenate([a_pos, new])
                a_frame = np.concatenate([a_frame, np.full(len(new), f)])
    if order is not None:  # back to rows
        o_obj, o_prev = np.empty_like(obj), np.empty_like(prev)
        o_obj[order] = obj
        o_prev[order] = np.where(prev >= 0, order[np.maximum(prev, 0)], -1)
        obj, prev = o_obj, o_prev
    return obj, prev


def flicker_iou_numpy(df, iou: float = 0.3, max_gap: int = 3) -> np.ndarray:
    """IoU association (per-frame loop, NumPy inside), then gaps of 2..``max_gap + 1`` frames
    between an object's box and its previous box."""
    obj, prev = _associate_numpy(df, iou, max_gap)
    frame = df["frame"].to_numpy()
    j = np.flatnonzero(prev >= 0)
    j = j[frame[j] - frame[prev[j]] >= 2]
    return np.unique(np.concatenate([prev[j], j])).astype(np.int64)


def appear_iou_numpy(df, min_frames: int = 3, iou: float = 0.3, max_gap: int = 3) -> np.ndarray:
    """IoU association (per-frame loop, NumPy inside), then short-lived objects as in
    ``appear_track_numpy``."""
    obj, _ = _associate_numpy(df, iou, max_gap)
    return _short_lived(obj, df["frame"].to_numpy(), min_frames, valid=obj >= 0)


def _associate_loop(df, iou: float, max_gap: int):
    """Greedy IoU association in plain Python. Yields ``(frame, [(row, obj, prev_row), ...])``
    per frame (obj -1: a non-finite box)."""
    live: list[list] = []  # [obj, last frame, last box tuple], oldest first
    n_obj = 0
    for f, boxes in _frames_loop(df, ("cls",)):
        live = [o for o in live if f - o[1] - 1 <= max_gap]
        cands = []
        for k, o in enumerate(live):
            p = o[2]
            for j, b in enumerate(boxes):
                if b[1] == p[1]:
                    v = _iou_loop(p, b)
                    if v >= iou:
                        cands.append((-v, -o[1], k, j))
        cands.sort()
        used_o, used_b = set(), set()
        out = [(b[0], -1, -1) for b in boxes]
        for _, _, k, j in cands:
            if k in used_o or j in used_b:
                continue
            used_o.add(k)
            used_b.add(j)
            o = live[k]
            out[j] = (boxes[j][0], o[0], o[2][0])
            o[1], o[2] = f, boxes[j]
        for j, b in enumerate(boxes):
            if j not in used_b and _finite(b):
                out[j] = (b[0], n_obj, -1)
                live.append([n_obj, f, b])
                n_obj += 1
        yield f, out


def flicker_iou_loop(df, iou: float = 0.3, max_gap: int = 3) -> np.ndarray:
    """Per frame: candidates (live object, box) of one class with IoU >= ``iou`` sorted and
    taken greedily; a match after a gap flags both boxes."""
    frame_of: dict[int, int] = {}
    flagged = set()
    for f, out in _associate_loop(df, iou, max_gap):
        for row, _, p in out:
            frame_of[row] = f
            if p >= 0 and f - frame_of[p] >= 2:
                flagged.add(p)
                flagged.add(row)
    return _rows(sorted(flagged))


def appear_iou_loop(df, min_frames: int = 3, iou: float = 0.3, max_gap: int = 3) -> np.ndarray:
    """Per frame: the IoU association of ``flicker_iou_loop``, each object's (first, last)
    frame in a dict; then one pass over the objects."""
    frames = ((f, [(row, o) for row, o, _ in out if o >= 0]) for f, out in _associate_loop(df, iou, max_gap))
    return _lifetimes_loop(frames, min_frames)


# ----------------------------------------------------------------------------------------------
# class_consistency
# ----------------------------------------------------------------------------------------------
def class_consistency_numpy(df) -> np.ndarray:
    """NumPy: one ``np.unique`` of the (track, class) key (counts and first rows), the best
    class per track by ``lexsort`` (count desc, first row asc), rows whose key differs."""
    track = df["track"].to_numpy().astype(np.int64, copy=False)
    cls = df["cls"].to_numpy().astype(np.int64)
    if len(track) == 0:
        return np.empty(0, np.int64)
    c0, nc = cls.min(), int(cls.max() - cls.min()) + 1
    t0 = track.min()
    if (int(track.max()) - int(t0) + 1) * nc < 2**62:
        tcode = track - t0
    else:
        _, tcode = np.unique(track, return_inverse=True)
    key = tcode * nc + (cls - c0)
    uk, first, inv, cnt = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    ut = uk // nc
    o = np.lexsort((first, -cnt, ut))
    head = np.concatenate(([True], ut[o][1:] != ut[o][:-1]))
    best = np.zeros(len(uk), bool)  # per unique key: is it its track's best class
    best[o[head]] = True
    return np.flatnonzero(~best[inv]).astype(np.int64)


def class_consistency_pandas(df) -> np.ndarray:
    """pandas: ``groupby([track, cls], sort=False).size()`` (groups in order of first
    appearance), ``idxmax`` per track (first maximum: the class seen first), ``map``."""
    sz = df.groupby(["track", "cls"], sort=False).size().reset_index(name="n")
    best = sz.loc[sz.groupby("track", sort=False)["n"].idxmax(), ["track", "cls"]]
    best_cls = df["track"].map(best.set_index("track")["cls"]).to_numpy()
    return np.flatnonzero(df["cls"].to_numpy() != best_cls).astype(np.int64)


def class_consistency_loop(df) -> np.ndarray:
    """Per frame: count each track's classes in a dict (insertion order: first seen); then
    flag the rows not holding their track's most common class."""
    counts: dict[int, dict[int, int]] = {}
    rows: dict[int, list[tuple[int, int]]] = {}
    for _, boxes in _frames_loop(df, ("track", "cls")):
        for row, track, c, *_ in boxes:
            tc = counts.get(track)
            if tc is None:
                counts[track] = tc = {}
                rows[track] = []
            tc[c] = tc.get(c, 0) + 1
            rows[track].append((row, c))
    flagged = []
    for track, tc in counts.items():
        if len(tc) < 2:
            continue
        best, best_n = None, 0
        for c, k in tc.items():
            if k > best_n:
                best, best_n = c, k
        flagged.extend(r for r, c in rows[track] if c != best)
    return _rows(flagged)


# ----------------------------------------------------------------------------------------------
# registry: assertion -> {baseline name: function(df) -> rows} at the benchmark's parameters
# ----------------------------------------------------------------------------------------------
BASELINES: dict[str, dict[str, Callable[..., np.ndarray]]] = {
    "multibox": {"numpy broadcast+csgraph": multibox_numpy, "pandas self-merge+csgraph": multibox_pandas,
                 "loop": multibox_loop},
    "flicker_track": {"numpy argsort+diff": flicker_track_numpy, "pandas groupby.shift": flicker_track_pandas,
                      "loop": flicker_track_loop},
    "flicker_iou": {"numpy per-frame broadcast": flicker_iou_numpy, "loop": flicker_iou_loop},
    "appear_track": {"numpy argsort+reduceat": appear_track_numpy,
                     "pandas groupby.transform": appear_track_pandas, "loop": appear_track_loop},
    "appear_iou": {"numpy per-frame broadcast": appear_iou_numpy, "loop": appear_iou_loop},
    "class_consistency": {"numpy unique+lexsort": class_consistency_numpy,
                          "pandas groupby.size+idxmax": class_consistency_pandas,
                          "loop": class_consistency_loop},
    "valid": {"numpy mask": valid_numpy, "loop": valid_loop},
}
