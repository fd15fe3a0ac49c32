"""LIDAR and camera: 3D box assertions over ``boxes3d``, ``points``, ``calib`` and the cameras'
2D ``boxes`` tables (DESIGN §2).

Tables (default column names; remap with ``tw.Boxes3D(...)``, ``tw.Points(...)``,
``tw.Calib(...)`` and ``tw.Boxes(...)``):

- ``boxes3d``: one 3D detection per row. ``stream`` (optional: the sensor rig), ``frame``
  (integer sweep number or timestamp), ``track`` (optional), ``cls``, ``score`` (optional),
  ``cx cy cz`` (the box *centre*, metres, LIDAR frame), ``l w h`` (length along the heading,
  width across it, height along z), ``yaw`` (radians, heading from +x towards +y about +z).
- ``points``: one LIDAR return per row. ``stream`` (optional), ``frame``, ``x y z`` (metres,
  LIDAR frame), ``intensity`` (optional, not read).
- ``calib``: one camera per row. ``stream`` (optional: without it every row applies to every
  stream), ``camera`` (optional: without it one camera per stream), ``K`` (3x3 intrinsics,
  row-major list of 9 numbers, last row 0 0 1), ``T`` (4x4 LIDAR-to-camera rigid transform,
  row-major list of 16, last row 0 0 0 1; camera axes: x right, y down, z forward),
  ``width``, ``height`` (pixels).
- ``boxes``: the cameras' 2D detections (``tripwire.boxes`` columns), plus the ``camera``
  column named like the calibration's when the calibration has several cameras per stream.

Tables are joined on the stream value (compared after casting to a common type) and on the
frame value (the same type in every table). Nulls are never read as values: a row with a null
stream or frame is not checked; a null coordinate or dimension reads as NaN (a point in no
box; a box that holds no point and is never in view).

Each assertion follows validate -> normalize -> dispatch -> kernel -> wrap; the kernels
(``kernels/_points_cy.pyx`` and siblings) see SoA float32 columns in frame order with CSR
offsets and run once per batch.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _arrow, _dispatch, _registry
from ._arrow import has_column as _has
from ._assertion import Assertion, Correction, MultiTableAssertion, Result
from .boxes import _Names, _check_count, _check_unit
from .boxes import _columns as _box_columns
from .errors import ColumnError, InputError

__all__ = ["Boxes3D", "Points", "Calib", "agree", "empty_box", "size_prior", "multibox",
           "count_in_boxes", "DEFAULT_PRIORS", "SIZE_REASONS"]

# points per work item of the counting kernel (threads take items; partial counts fit int32)
COUNT_CHUNK = 1 << 16


# ----------------------------------------------------------------------------------------------
# column mappings
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Boxes3D(_Names):
    """Column names of a ``boxes3d`` table (``stream``, ``track`` and ``score`` are optional)."""

    stream: str = "stream"
    frame: str = "frame"
    track: str = "track"
    cls: str = "cls"
    score: str = "score"
    cx: str = "cx"
    cy: str = "cy"
    cz: str = "cz"
    l: str = "l"  # noqa: E741
    w: str = "w"
    h: str = "h"
    yaw: str = "yaw"


@dataclass(frozen=True)
class Points(_Names):
    """Column names of a ``points`` table (``stream`` and ``intensity`` are optional)."""

    stream: str = "stream"
    frame: str = "frame"
    x: str = "x"
    y: str = "y"
    z: str = "z"
    intensity: str = "intensity"


@dataclass(frozen=True)
class Calib(_Names):
    """Column names of a ``calib`` table (``stream`` and ``camera`` are optional)."""

    stream: str = "stream"
    camera: str = "camera"
    K: str = "K"
    T: str = "T"
    width: str = "width"
    height: str = "height"


def _mapping(columns: Any, cls: type, example: str):
    return cls.coerce(columns, f"pass e.g. tw.{cls.__name__}({example})")


# ----------------------------------------------------------------------------------------------
# normalize: float32 columns, joint (stream, frame) keys, frame groups
# ----------------------------------------------------------------------------------------------
def _f32(table: pa.Table, name: str, role: str) -> np.ndarray:
    """A float column as contiguous float32 (a view when it is float32 without nulls); nulls
    read as NaN."""
    c = _arrow.numeric_column(table, name, role=role)
    v = c.values if c.values.dtype == np.float32 else c.values.astype(np.float32)
    if c.valid is not None:
        v = np.where(c.valid.astype(bool), v, np.float32(np.nan))
    return np.ascontiguousarray(v)


def _f32s(table: pa.Table, names: list[str], what: str) -> list[np.ndarray]:
    return [_f32(table, n, f"{what} {n}") for n in names]


@dataclass(frozen=True)
class _Grouped:
    """Checked rows of one table in (stream, frame) order: group ``g`` is positions
    ``offsets[g]:offsets[g+1]`` with key ``keys[g]``; ``order`` maps positions to rows
    (``None``: positions are rows)."""

    order: np.ndarray | None
    offsets: np.ndarray
    keys: np.ndarray

    def rows(self, positions: np.ndarray) -> np.ndarray:
        return positions if self.order is None else self.order[positions]

    def gather(self, values: np.ndarray) -> np.ndarray:
        return values if self.order is None else np.ascontiguousarray(values[self.order])

    @property
    def n(self) -> int:
        return int(self.offsets[-1])


def _group(key: np.ndarray, valid: np.ndarray | None) -> _Grouped:
    """Group rows by an int64 key: one pass finds the runs; sorted input (the usual case: a
    sweep's points arrive together) needs no sort, otherwise one stable sort."""
    runs = _dispatch.kernels("points", "cython").key_runs  # input preparation, not a check
    rows = None
    if valid is not None:
        rows = np.flatnonzero(valid)
        key = key[rows]
    key = np.ascontiguousarray(key, dtype=np.int64)
    starts, ordered = runs(key)
    if not ordered:
        order = np.argsort(key, kind="stable")
        key = key[order]
        rows = order if rows is None else rows[order]
        starts, _ = runs(key)
    offsets = np.append(starts, len(key)).astype(np.int64)
    return _Grouped(rows, offsets, key[starts] if len(key) else np.empty(0, np.int64))


def _common_ids(cols: list[pa.ChunkedArray], names: list[str], role: str) -> list[pa.ChunkedArray]:
    """Identifier columns of several tables cast to one type, so equal values compare equal."""
    def plain(c: pa.ChunkedArray) -> pa.ChunkedArray:
        return c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c

    cols = [plain(c) for c in cols]
    types = {c.type for c in cols}
    if len(types) == 1:
        return cols
    if all(pa.types.is_integer(t) for t in types):
        target = pa.int64()
    elif all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in types):
        target = pa.large_string()
    else:
        raise InputError(f"{role} columns {', '.join(map(repr, names))} have different types "
                         f"({', '.join(str(c.type) for c in cols)})", expected=f"one {role} type in every table",
                         fix=f"cast them to one type, e.g. pc.cast(table[{names[0]!r}], pa.string())")
    return [c.cast(target) for c in cols]


def _joint_codes(cols: list[pa.ChunkedArray], names: list[str], role: str) -> tuple[list[np.ndarray], list, int]:
    """Dense codes ``0..n-1`` shared by identifier columns of several tables, with validity."""
    cols = _common_ids(cols, names, role)
    combined = pa.chunked_array([ch for c in cols for ch in c.chunks], cols[0].type)
    keys = _arrow.encode_array(combined, name=names[0], role=role)
    codes = keys.codes.astype(np.int64) - keys.offset
    out, valid, lo = [], [], 0
    for c in cols:
        hi = lo + len(c)
        out.append(codes[lo:hi])
        valid.append(None if keys.valid is None else keys.valid[lo:hi])
        lo = hi
    return out, valid, max(keys.n, 1)


def _frame_type(table: pa.Table, name: str) -> pa.DataType:
    return _arrow.column(table, name, role="frame", expected="an integer frame number or timestamp").type


def _frames(parts: list[tuple[pa.Table, str]]) -> list[_arrow.NumericColumn]:
    types = [_frame_type(t, n) for t, n in parts]
    if len(set(map(str, types))) > 1:
        raise InputError(f"frame columns {', '.join(repr(n) for _, n in parts)} have different types "
                         f"({', '.join(map(str, types))})", expected="the same frame type in every table",
                         fix="cast them to one type (e.g. int64 sweep numbers, or one timestamp unit)")
    out = []
    for t, n in parts:
        c = _arrow.numeric_column(t, n, role="frame", integer=True)
        out.append(_arrow.NumericColumn(c.values.astype(np.int64, copy=False), c.valid))
    return out


def _and(*masks) -> np.ndarray | None:
    out = None
    for m in masks:
        if m is not None:
            out = m.astype(bool) if out is None else out & m.astype(bool)
    return out


def _stream_frame_keys(parts: list[tuple[pa.Table, str | None, str]]) -> tuple[list[np.ndarray], list]:
    """One int64 (stream, frame) key per row of each table, comparable across the tables.

    ``parts``: (table, stream column or None, frame column).
    """
    frames = _frames([(t, f) for t, _, f in parts])
    valid = [f.valid for f in frames]
    with_stream = [s is not None for _, s, _ in parts]
    if all(with_stream):
        s_codes, s_valid, n_streams = _joint_codes([t.column(s) for t, s, _ in parts], [s for _, s, _ in parts],
                                                   "stream")
        valid = [_and(v, sv) for v, sv in zip(valid, s_valid)]
    else:
        s_codes, n_streams = [None] * len(parts), 1
    lows = [int(f.values.min()) for f in frames if len(f.values)]
    highs = [int(f.values.max()) for f in frames if len(f.values)]
    fmin = min(lows) if lows else 0
    span = (max(highs) - fmin + 1) if highs else 1
    if n_streams * span >= 2**62:  # sparse frame values: rank them first
        uniq = np.unique(np.concatenate([f.values for f in frames]))
        frames = [_arrow.NumericColumn(np.searchsorted(uniq, f.values).astype(np.int64), f.valid) for f in frames]
        fmin, span = 0, max(len(uniq), 1)
    keys = []
    for i, f in enumerate(frames):
        key = f.values - fmin if fmin else f.values
        if s_codes[i] is not None:
            key = s_codes[i] * span + key
        keys.append(key)
    return keys, valid


def _ranges(groups: _Grouped, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position range ``lo:hi`` of each key in ``groups`` (empty where absent)."""
    idx = np.searchsorted(groups.keys, keys)
    found = idx < len(groups.keys)
    found[found] = groups.keys[idx[found]] == keys[found]
    lo = np.where(found, groups.offsets[np.minimum(idx, len(groups.keys))], 0)
    hi = np.where(found, groups.offsets[np.minimum(idx + 1, len(groups.keys))], 0)
    return lo.astype(np.int64), hi.astype(np.int64)


def _need_same_streams(kind: str, named: list[tuple[str, pa.Table, str]]) -> bool:
    """Whether to join on the stream: both tables have the column (or neither); one alone is
    ambiguous."""
    have = [_has(t, s) for _, t, s in named]
    if all(have):
        return True
    if not any(have):
        return False
    with_, without = [n for (n, _, _), h in zip(named, have) if h], [n for (n, _, _), h in zip(named, have) if not h]
    col = named[have.index(True)][2]
    raise ColumnError(col, f"{kind}: table {with_[0]} has a stream column {col!r} but {without[0]} has none",
                      expected="a stream column in both tables, or in neither",
                      found=f"stream in {', '.join(with_)} only",
                      fix=f"add the stream to {without[0]}, or drop it from {with_[0]} when there is one stream")


# ----------------------------------------------------------------------------------------------
# points in boxes
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Counts:
    groups: _Grouped  # the 3D boxes' frame groups
    counts: np.ndarray  # per position in ``groups`` order


def _count(boxes3d: pa.Table, points: pa.Table, bc: Boxes3D, pcols: Points, backend: str, kind: str) -> _Counts:
    join = _need_same_streams(kind, [("boxes3d", boxes3d, bc.stream), ("points", points, pcols.stream)])
    (kb, kp), (vb, vp) = _stream_frame_keys([(boxes3d, bc.stream if join else None, bc.frame),
                                             (points, pcols.stream if join else None, pcols.frame)])
    gb, gp = _group(kb, vb), _group(kp, vp)
    params = _f32s(boxes3d, [bc.cx, bc.cy, bc.cz, bc.l, bc.w, bc.h, bc.yaw], "3D box")
    px, py, pz = (gp.gather(v) for v in _f32s(points, [pcols.x, pcols.y, pcols.z], "point coordinate"))
    lo, hi = _ranges(gp, gb.keys)
    k = _dispatch.kernels("points", backend)
    counts = k.count_in_boxes(px, py, pz, lo, hi, *(gb.gather(v) for v in params), gb.offsets, COUNT_CHUNK)
    return _Counts(gb, counts)


def count_in_boxes(boxes3d: Any, points: Any, *, boxes3d_columns: Any = None, points_columns: Any = None,
                   backend: str = "auto") -> pa.Array:
    """How many points of its frame (and stream) each 3D box holds, as an int64 array aligned
    with ``boxes3d`` (null where the box's frame or stream is null).

    A point is inside when its offset from the centre, turned into the box's frame, is within
    half the length, width and height, faces included. Points and boxes with a null or
    non-finite value count nowhere.
    """
    b3, pts = _arrow.as_table(boxes3d), _arrow.as_table(points)
    bc, pcols = _mapping(boxes3d_columns, Boxes3D, "cx='x'"), _mapping(points_columns, Points, "x='px'")
    res = _count(b3, pts, bc, pcols, _dispatch.resolve(backend, pts.num_rows, "points"), "count_in_boxes")
    out = np.zeros(b3.num_rows, np.int64)
    rows = res.groups.rows(np.arange(res.groups.n))
    out[rows] = res.counts
    mask = None
    if res.groups.n != b3.num_rows:
        mask = np.ones(b3.num_rows, bool)
        mask[rows] = False
    return pa.array(out, pa.int64(), mask=mask)


def _context(table: pa.Table, name: str, rows: np.ndarray, typ: pa.DataType) -> pa.Array:
    if not _has(table, name):
        return pa.nulls(len(rows), typ)
    taken = table.column(name).take(pa.array(rows, pa.int64()))
    if pa.types.is_dictionary(taken.type):
        taken = taken.cast(taken.type.value_type)
    if pa.types.is_date32(taken.type):
        taken = pc.cast(taken, pa.int32())
    return pc.cast(taken, typ).combine_chunks()


class empty_box(MultiTableAssertion):
    """A 3D box holding fewer than ``min_points`` LIDAR points of its frame (and stream).

    Points are counted as ``tw.points.count_in_boxes`` does (faces included), or read from the
    ``counts`` column of ``boxes3d`` when given (e.g. a detector's or annotation tool's
    ``num_lidar_pts``; then no points table is needed, and null counts are not checked). One
    event per box. Severity: ``1 - n / min_points``. Correction: ``remove`` the box. A box with
    a null frame or stream is not checked; a box with a null or non-finite parameter holds no
    point (so it is flagged with severity 1). Context: ``stream``, ``frame``, ``points`` (n).
    """

    kind = "points.empty_box"
    family = "points"
    roles = ("boxes3d", "points")

    def __init__(self, *, min_points: int = 5, counts: str | None = None, columns: Any = None,
                 points_columns: Any = None, name: str | None = None, tables: dict[str, str] | None = None):
        super().__init__(name=name, tables=tables)
        self.min_points = _check_count(min_points, "min_points", self.kind, 1)
        if counts is not None and (not isinstance(counts, str) or not counts):
            raise InputError(f"{self.kind}: counts={counts!r}", expected="a column name or None",
                             fix="pass counts='num_lidar_pts', or leave it out to count the points")
        self.counts = counts
        self.cols = _mapping(columns, Boxes3D, "cx='x'")
        self.pcols = _mapping(points_columns, Points, "x='px'")
        if counts is not None:  # no points table needed
            self.roles = ("boxes3d",)
            self.tables = {"boxes3d": self.tables["boxes3d"]}

    def params(self) -> dict[str, Any]:
        return {"min_points": self.min_points, "counts": self.counts}

    def role_columns(self) -> dict[str, list[str]]:
        c, p = self.cols, self.pcols
        if self.counts is not None:
            return {"boxes3d": [c.frame, self.counts]}
        return {"boxes3d": [c.frame, c.cx, c.cy, c.cz, c.l, c.w, c.h, c.yaw], "points": [p.frame, p.x, p.y, p.z]}

    def optional_columns(self) -> list[str]:
        return [self.cols.stream]

    def evaluate_many(self, inputs: dict[str, pa.Table], backend: str) -> Result:
        b3 = inputs["boxes3d"]
        k = _dispatch.kernels("points", backend)
        if self.counts is not None:
            c = _arrow.numeric_column(b3, self.counts, role="point count", integer=True)
            counts = np.ascontiguousarray(c.values.astype(np.int64, copy=False))
            valid = _arrow.kernel_validity(c.valid)
            if _has(b3, self.cols.frame):  # a null frame is not checked here either
                f = _arrow.numeric_column(b3, self.cols.frame, role="frame", integer=True)
                if f.valid is not None:
                    valid = (f.valid if c.valid is None else f.valid & c.valid)
            rows, sev = k.few_points(counts, valid, self.min_points)
            n = rows
        else:
            res = _count(b3, inputs["points"], self.cols, self.pcols, backend, self.kind)
            pos, sev = k.few_points(res.counts, _arrow.NO_NULLS, self.min_points)
            rows = res.groups.rows(pos)
            counts = res.counts
            n = pos
            if res.groups.order is not None and len(rows) > 1:  # canonical order: by row
                o = np.argsort(rows, kind="stable")
                rows, sev, n = rows[o], sev[o], n[o]
        held = counts[n]
        return Result(rows, np.arange(len(rows), dtype=np.int64), sev, b3.num_rows, {
            "stream": functools.partial(_context, b3, self.cols.stream, rows, pa.string()),
            "frame": functools.partial(_context, b3, self.cols.frame, rows, pa.int64()),
            "points": functools.partial(pa.array, held, pa.int64()),
        }, (lambda: [Correction("remove", rows)]) if len(rows) else [])


# ----------------------------------------------------------------------------------------------
# size priors
# ----------------------------------------------------------------------------------------------
# Physical ranges (metres, (min, max)) of l, w, h per class: generous bounds around KITTI and
# nuScenes statistics (KITTI car mean 3.9 x 1.6 x 1.5 m, pedestrian 0.8 x 0.6 x 1.8 m,
# cyclist 1.8 x 0.6 x 1.7 m), wide enough for vans, children and articulated trucks.
DEFAULT_PRIORS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "car": ((2.5, 6.5), (1.4, 2.4), (1.2, 2.5)),
    "pedestrian": ((0.2, 1.5), (0.2, 1.5), (0.8, 2.3)),
    "cyclist": ((1.2, 2.5), (0.3, 1.2), (1.0, 2.3)),
    "truck": ((4.0, 25.0), (1.8, 3.2), (2.0, 4.8)),
}

SIZE_REASONS = {1: "null or non-finite dimension", 2: "l below range", 4: "l above range",
                8: "w below range", 16: "w above range", 32: "h below range", 64: "h above range"}


def _size_reason_text(reasons: np.ndarray) -> pa.Array:
    names = {}
    out = []
    for r in reasons.tolist():
        if r not in names:
            names[r] = ", ".join(t for bit, t in SIZE_REASONS.items() if r & bit)
        out.append(names[r])
    return pa.array(out, pa.string())


def _check_priors(priors: Any, kind: str) -> dict:
    if not isinstance(priors, Mapping) or not priors:
        raise InputError(f"{kind}: priors={priors!r}", expected="a non-empty dict class -> ((l_min, l_max), "
                         "(w_min, w_max), (h_min, h_max))", fix="pass e.g. priors={'car': ((2.5, 6.5), (1.4, 2.4), (1.2, 2.5))}")
    out = {}
    for cls, ranges in priors.items():
        ok = isinstance(ranges, (list, tuple)) and len(ranges) == 3
        if ok:
            try:
                r = tuple((float(a), float(b)) for a, b in ranges)
            except (TypeError, ValueError):
                ok = False
            else:
                ok = all(math.isfinite(a) and math.isfinite(b) and 0 < a <= b for a, b in r)
        if not ok or isinstance(cls, bool) or not isinstance(cls, (str, int)):
            raise InputError(f"{kind}: priors[{cls!r}] = {ranges!r}", expected="a class name or integer mapped to "
                             "three (min, max) ranges with 0 < min <= max, finite, for l, w, h (metres)",
                             fix=f"pass e.g. priors={{{cls!r}: ((2.5, 6.5), (1.4, 2.4), (1.2, 2.5))}}")
        out[cls] = r
    if len({type(c) for c in out}) > 1:
        raise InputError(f"{kind}: priors keys {list(out)!r} mix names and integers",
                         expected="all class names (str) or all class codes (int)", fix="use one kind of key")
    return out


def _class_slots(table: pa.Table, name: str, keys: list) -> tuple[np.ndarray, int, np.ndarray | None, np.ndarray]:
    """``(codes, offset, valid, slot_of_code)``: each row's class as a code whose prior index is
    ``slot_of_code[code - offset]`` (-1: no prior). Dictionary columns and small-range integers
    keep Arrow's own buffer as codes (no pass over the rows here); other types get their slot
    per row from Arrow's hash lookup."""
    col = _arrow.column(table, name, role="class", expected="an integer, string or dictionary class column")
    value_set = pa.array(keys)
    typ = col.type
    if pa.types.is_dictionary(typ):
        if col.num_chunks > 1:
            col = col.unify_dictionaries()
        if not col.num_chunks:
            return np.empty(0, np.int32), 0, None, np.empty(0, np.int32)
        chunks = col.chunks
        codes, valid = _arrow.primitive_view(pa.chunked_array([c.indices for c in chunks], chunks[0].indices.type))
        if codes.dtype not in (np.int32, np.int64):
            codes = codes.astype(np.int32)
        return codes, 0, valid, _index_in(chunks[0].dictionary, value_set)
    if pa.types.is_integer(typ) and all(isinstance(k, int) for k in keys) and len(col):
        mm = pc.min_max(col)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is None:  # every class null
            return np.zeros(len(col), np.int32), 0, np.zeros(len(col), np.uint8), np.empty(0, np.int32)
        if hi - lo < max(1 << 16, 4 * len(col)):
            codes, valid = _arrow.primitive_view(col)
            if codes.dtype not in (np.int32, np.int64):
                codes = codes.astype(np.int64)
            slot = np.full(hi - lo + 1, -1, np.int32)
            for i, key in enumerate(keys):
                if lo <= key <= hi:
                    slot[key - lo] = i
            return codes, lo, valid, slot
    if pa.types.is_integer(typ) != all(isinstance(k, int) for k in keys) and not pa.types.is_null(typ):
        raise ColumnError(name, f"class column {name!r} cannot be compared with the priors' classes",
                          expected=f"{'integer' if isinstance(keys[0], int) else 'string'} classes like {keys[0]!r}",
                          found=str(typ), fix="pass priors keyed like the column's values")
    # other types: Arrow's hash lookup gives each row its slot (+1, so that 0 is "no prior")
    slots = pc.fill_null(pc.index_in(col, value_set=value_set.cast(typ)), -1)
    codes, _ = _arrow.primitive_view(slots.cast(pa.int32()))
    return codes, -1, None, np.arange(-1, len(keys), dtype=np.int32)


def _index_in(values: pa.Array, value_set: pa.Array) -> np.ndarray:
    """Position of each dictionary value in ``value_set`` (-1 where absent)."""
    try:
        value_set = value_set.cast(values.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.full(len(values), -1, np.int32)
    return np.asarray(pc.fill_null(pc.index_in(values, value_set=value_set), -1)).astype(np.int32)


class size_prior(Assertion):
    """3D boxes whose dimensions leave the physical range of their class.

    ``priors`` maps a class value (as found in ``cls``: names for string or dictionary columns,
    integers for integer ones) to ``((l_min, l_max), (w_min, w_max), (h_min, h_max))`` in
    metres; default :data:`DEFAULT_PRIORS` (car, pedestrian, cyclist, truck). Boxes of other
    classes, or with a null class, are not checked. One event per box. Severity: the largest
    relative distance outside a range over l, w and h (``(min - d) / min`` below,
    ``(d - max) / max`` above; a car 7.8 m long has 0.2); a null or non-finite dimension has
    severity 1. The ``detail`` context column says which bound was crossed.
    """

    kind = "points.size_prior"
    family = "points"
    scope = "row"

    def __init__(self, *, priors: Mapping | None = None, columns: Any = None, name: str | None = None,
                 table: str = "boxes3d"):
        super().__init__(name=name, table=table)
        self.priors = _check_priors(DEFAULT_PRIORS if priors is None else priors, self.kind)
        self._given = priors
        self.cols = _mapping(columns, Boxes3D, "l='length'")
        keys = list(self.priors)
        self._lo = np.array([r[i][0] for r in self.priors.values() for i in range(3)], np.float64)
        self._hi = np.array([r[i][1] for r in self.priors.values() for i in range(3)], np.float64)
        self._keys = keys

    def params(self) -> dict[str, Any]:
        return {"priors": self._given}

    def columns(self) -> list[str]:
        c = self.cols
        return [c.cls, c.l, c.w, c.h]

    def optional_columns(self) -> list[str]:
        return [self.cols.stream, self.cols.frame]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        codes, offset, cvalid, slot_of_code = _class_slots(table, c.cls, self._keys)
        dims, dvalid = [], None
        for n in (c.l, c.w, c.h):
            col = _arrow.numeric_column(table, n, role=f"3D box dimension {n}")
            dims.append(col.values if col.values.dtype == np.float32 else col.values.astype(np.float32))
            dvalid = _and(dvalid, col.valid)
        k = _dispatch.kernels("points", backend)
        rows, sev, reasons = k.size_prior(dims[0], dims[1], dims[2],
                                          _arrow.kernel_validity(None if dvalid is None else dvalid.view(np.uint8)),
                                          codes, offset, _arrow.kernel_validity(cvalid),
                                          np.ascontiguousarray(slot_of_code, np.int32), self._lo, self._hi)
        ctx = {"detail": functools.partial(_size_reason_text, reasons),
               "stream": functools.partial(_context, table, c.stream, rows, pa.string())}
        if _has(table, c.frame):
            ctx["frame"] = functools.partial(_context, table, c.frame, rows, pa.int64())
        return Result(rows, np.arange(len(rows), dtype=np.int64), sev, table.num_rows, ctx)


# ----------------------------------------------------------------------------------------------
# bird's-eye-view multibox
# ----------------------------------------------------------------------------------------------
class multibox(Assertion):
    """``boxes.multibox`` for 3D boxes, in bird's-eye view: at least ``min_boxes`` boxes of one
    (stream, frame) forming a connected group of overlapping footprints (rotated rectangles
    ``l x w`` at ``(cx, cy)`` turned by ``yaw``), linked when their footprint IoU >= ``iou``
    (exact polygon intersection). Every box of the group is flagged, one event per group.
    Severity: the group's highest score (1 without scores). Boxes with a null or non-finite
    footprint parameter, or a footprint without area (``l`` or ``w`` <= 0), link to nothing;
    rows with a null frame or stream are not checked.
    """

    kind = "points.multibox"
    family = "points"

    def __init__(self, *, iou: float = 0.3, min_boxes: int = 3, columns: Any = None,
                 name: str | None = None, table: str = "boxes3d"):
        super().__init__(name=name, table=table)
        self.iou = _check_unit(iou, "iou", self.kind, "pass e.g. iou=0.3")
        self.min_boxes = _check_count(min_boxes, "min_boxes", self.kind, 2)
        self.cols = _mapping(columns, Boxes3D, "cx='x'")

    def params(self) -> dict[str, Any]:
        return {"iou": self.iou, "min_boxes": self.min_boxes}

    def columns(self) -> list[str]:
        c = self.cols
        return [c.frame, c.cx, c.cy, c.l, c.w, c.yaw]

    def optional_columns(self) -> list[str]:
        return [self.cols.score, self.cols.stream]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        from ._assertion import canonical_events

        c = self.cols
        (key,), (valid,) = _stream_frame_keys([(table, c.stream if _has(table, c.stream) else None, c.frame)])
        groups = _group(key, valid)
        cx, cy, ln, wd, yaw = (groups.gather(v) for v in _f32s(table, [c.cx, c.cy, c.l, c.w, c.yaw], "3D box"))
        if _has(table, c.score):
            sc = _arrow.numeric_column(table, c.score, role="score")
            score = groups.gather(sc.values.astype(np.float32, copy=False))
            svalid = groups.gather(sc.valid) if sc.valid is not None else _arrow.NO_NULLS
        else:
            score, svalid = np.empty(0, np.float32), _arrow.NO_NULLS
        k = _dispatch.kernels("points", backend)
        pos, ev, sev, anchor = k.bev_multibox(cx, cy, ln, wd, yaw, score, svalid, groups.offsets,
                                              self.iou, self.min_boxes)
        row, ev, sev = canonical_events(groups.rows(pos), ev, sev, groups.rows(anchor))
        return Result(row, ev, sev, table.num_rows, {
            "stream": functools.partial(_context, table, c.stream, row, pa.string()),
            "frame": functools.partial(_context, table, c.frame, row, pa.int64()),
        })


# ----------------------------------------------------------------------------------------------
# agree: 3D boxes projected into the cameras vs the cameras' boxes
# ----------------------------------------------------------------------------------------------
def _matrices(table: pa.Table, name: str, size: int, what: str) -> np.ndarray:
    """A list column of ``size`` numbers per row as an (n, size) float64 array."""
    col = _arrow.column(table, name, role=what, expected=f"a list of {size} numbers per row (row-major)")
    typ = col.type
    if not (pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)) \
            or not (pa.types.is_integer(typ.value_type) or pa.types.is_floating(typ.value_type)):
        raise ColumnError(name, f"column {name!r} ({what}) has the wrong type",
                          expected=f"list<float64> of {size} values per row (row-major)", found=str(typ),
                          fix=f"store the matrix flattened, e.g. pa.array([M.ravel().tolist()], pa.list_(pa.float64(), {size}))")
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    lengths = pc.list_value_length(arr)
    if arr.null_count or (len(arr) and (pc.min(lengths).as_py() != size or pc.max(lengths).as_py() != size)):
        raise ColumnError(name, f"column {name!r} ({what}) has a null or a row without {size} values",
                          expected=f"{size} values in every row", found=f"lengths {sorted(set(lengths.to_pylist()))}"
                          + (", nulls" if arr.null_count else ""), fix="fill in every camera's calibration")
    flat = arr.flatten()  # honours the slice offset (``.values`` would not)
    if flat.null_count:
        raise ColumnError(name, f"column {name!r} ({what}) holds a null number", expected="numbers only",
                          found="null", fix="fill in every camera's calibration")
    return np.asarray(flat.cast(pa.float64())).reshape(len(arr), size)


def _calibration(table: pa.Table, c: Calib, kind: str):
    K = _matrices(table, c.K, 9, "intrinsics K")
    T = _matrices(table, c.T, 16, "LIDAR-to-camera transform T")
    size = []
    for n in (c.width, c.height):
        col = _arrow.numeric_column(table, n, role=f"image {n}")
        v = col.values.astype(np.float64)
        if col.valid is not None and not col.valid.all():
            raise ColumnError(n, f"column {n!r} (image size) has nulls", expected="a size per camera",
                              found="null", fix="fill in every camera's image size")
        size.append(v)
    bad = [i for i in range(table.num_rows) if not (np.isfinite(K[i]).all() and np.isfinite(T[i]).all()
                                                     and K[i, 6] == 0 and K[i, 7] == 0 and K[i, 8] == 1
                                                     and (T[i, 12:] == (0, 0, 0, 1)).all()
                                                     and size[0][i] > 0 and size[1][i] > 0)]
    if bad:
        i = bad[0]
        raise InputError(f"{kind}: calibration row {i} is not a pinhole camera model",
                         expected="finite K with last row 0 0 1, finite T with last row 0 0 0 1, width and height > 0",
                         found=f"K={K[i].tolist()}, T={T[i].tolist()}, size={size[0][i]}x{size[1][i]}",
                         fix="store K and T row-major (K[2] = [0, 0, 1]; T maps LIDAR to camera coordinates)")
    return np.ascontiguousarray(K.ravel()), np.ascontiguousarray(T.ravel()), size[0], size[1]


class agree(MultiTableAssertion):
    """3D boxes projected into each camera must match the camera's 2D boxes one to one.

    Per camera (a ``calib`` row) and frame: each 3D box of the camera's stream is projected
    (its 8 corners through ``T`` and ``K``; corners closer than ``near`` metres in front of the
    camera are replaced by the points where the box's edges cross the plane z = ``near``, so a
    box straddling the camera never produces a wrapped-around box, and a box wholly behind it
    projects to nothing); the extent of the projected vertices, clipped to the image, is its
    expected 2D box. Boxes with an empty clipped extent are out of view and not expected.
    Expected and camera boxes are matched one to one, greedily by IoU (highest first, ties to
    the lower position), pairs needing IoU >= ``iou``. Classes are not compared (camera and
    LIDAR detectors often name them differently).

    One event per (camera, frame) with an unmatched box, flagging every unmatched 3D box (rows
    of ``boxes3d``) and unmatched camera box (rows of ``boxes``); the ``table`` column of the
    report says which. Severity: unmatched 3D + unmatched 2D boxes of that camera frame.
    Correction: ``add`` to ``boxes`` the imputed 2D box of each unmatched 3D box (the weak
    label): its stream, camera and frame, the projected ``x1 y1 x2 y2``, and the 3D box's
    ``cls``, ``score`` and ``track`` where the camera table has those columns (cast to their
    types; null when the cast fails), other columns null.

    Camera boxes of a (stream, camera) without a calibration row, and 3D boxes of a stream
    with no camera, are errors (nothing is silently left unchecked). Rows with a null stream,
    camera or frame are not checked; a 3D box with a null or non-finite parameter is never in
    view; a camera box with a null or non-finite coordinate never matches.
    """

    kind = "points.agree"
    family = "points"
    roles = ("boxes3d", "calib", "boxes")

    def __init__(self, *, iou: float = 0.5, near: float = 0.1, columns: Any = None, calib_columns: Any = None,
                 boxes_columns: Any = None, name: str | None = None, tables: dict[str, str] | None = None):
        super().__init__(name=name, tables=tables)
        self.iou = _check_unit(iou, "iou", self.kind, "pass e.g. iou=0.5")
        if isinstance(near, bool) or not isinstance(near, (int, float, np.integer, np.floating)) \
                or not (0 < float(near) < math.inf):
            raise InputError(f"{self.kind}: near={near!r}", expected="a positive distance in metres",
                             fix="pass e.g. near=0.1")
        self.near = float(near)
        self.cols = _mapping(columns, Boxes3D, "cx='x'")
        self.ccols = _mapping(calib_columns, Calib, "K='intrinsics'")
        self.bcols = _box_columns(boxes_columns)

    def params(self) -> dict[str, Any]:
        return {"iou": self.iou, "near": self.near}

    def role_columns(self) -> dict[str, list[str]]:
        c, cc, b = self.cols, self.ccols, self.bcols
        return {"boxes3d": [c.frame, c.cx, c.cy, c.cz, c.l, c.w, c.h, c.yaw],
                "calib": [cc.K, cc.T, cc.width, cc.height],
                "boxes": [b.frame, b.x1, b.y1, b.x2, b.y2]}

    def optional_columns(self) -> list[str]:
        return [self.cols.stream, self.cols.cls, self.cols.score, self.cols.track, self.ccols.stream,
                self.ccols.camera]

    # -- normalize ---------------------------------------------------------------------------
    def _units(self, b3: pa.Table, cal: pa.Table, b2: pa.Table):
        """(camera, frame) units: positions of 3D and 2D boxes per unit and each unit's camera."""
        c, cc, bc = self.cols, self.ccols, self.bcols
        join = _need_same_streams(self.kind, [("boxes3d", b3, c.stream), ("boxes", b2, bc.stream)])
        cal_stream = join and _has(cal, cc.stream)
        if _has(cal, cc.stream) and not join:
            raise ColumnError(cc.stream, f"{self.kind}: calib has a stream column {cc.stream!r} but the boxes do not",
                              expected="stream columns in boxes3d and boxes too, or none in calib",
                              found="stream in calib only", fix="drop the calib stream column when there is one stream")
        # cameras: calib rows, keyed by camera id shared with the 2D boxes
        multi_cam = _has(cal, cc.camera)
        if multi_cam and not _has(b2, cc.camera):
            raise ColumnError(cc.camera, f"{self.kind}: calib has several cameras (column {cc.camera!r}) but the "
                              f"camera boxes have no {cc.camera!r} column", expected=f"a {cc.camera!r} column in boxes",
                              found=", ".join(b2.column_names), fix=f"add the camera id of each 2D box as {cc.camera!r}")
        if multi_cam:
            (cam_cal, cam_b2), (cv_cal, cv_b2), n_cams = _joint_codes(
                [cal.column(cc.camera), b2.column(cc.camera)], [cc.camera, cc.camera], "camera")
            if cv_cal is not None and not cv_cal.all():
                raise ColumnError(cc.camera, "calib has a null camera", expected="a camera id per row", found="null",
                                  fix="fill in the camera ids")
        else:
            cam_cal, cam_b2, cv_b2, n_cams = np.zeros(cal.num_rows, np.int64), np.zeros(b2.num_rows, np.int64), None, 1
        # streams shared by the three tables (calib without streams applies to every stream)
        if join:
            parts = [b3.column(c.stream), b2.column(bc.stream)] + ([cal.column(cc.stream)] if cal_stream else [])
            codes, valids, n_streams = _joint_codes(parts, [c.stream, bc.stream, cc.stream][:len(parts)], "stream")
            s3, s2 = codes[0], codes[1]
            if cal_stream:
                if valids[2] is not None and not valids[2].all():
                    raise ColumnError(cc.stream, "calib has a null stream", expected="a stream per row",
                                      found="null", fix="fill in the streams, or drop the column")
                s_cal = codes[2]
        else:
            s3, s2, n_streams = np.zeros(b3.num_rows, np.int64), np.zeros(b2.num_rows, np.int64), 1
            valids = [None, None]
        if not cal_stream:  # every calib row applies to every stream
            s_cal = None
        if s_cal is None:
            streams = np.unique(np.concatenate([s3[_mask(valids[0], len(s3))], s2[_mask(valids[1], len(s2))]]))
            cams = [(int(s), int(cam_cal[i]), i) for s in streams for i in range(cal.num_rows)]
        else:
            cams = [(int(s_cal[i]), int(cam_cal[i]), i) for i in range(cal.num_rows)]
        seen = {}
        for s, k, i in cams:
            if (s, k) in seen:
                raise InputError(f"{self.kind}: calib rows {seen[(s, k)]} and {i} describe the same camera",
                                 expected="one calib row per (stream, camera)", found="a duplicate",
                                 fix=f"give each camera its own {cc.camera!r} value" if multi_cam else
                                 f"add a {cc.camera!r} column naming the cameras")
            seen[(s, k)] = i
        # (stream, frame) keys for 3D boxes; (stream, camera, frame) keys for 2D boxes
        fr3, fr2 = _frames([(b3, c.frame), (b2, bc.frame)])
        f3, f2 = fr3.values, fr2.values
        lows, highs = [int(f.min()) for f in (f3, f2) if len(f)], [int(f.max()) for f in (f3, f2) if len(f)]
        fmin = min(lows) if lows else 0
        span = (max(highs) - fmin + 1) if highs else 1
        if n_streams * n_cams * span >= 2**62:  # sparse frame values: rank them first
            uniq = np.unique(np.concatenate([f3, f2]))
            f3, f2, fmin, span = np.searchsorted(uniq, f3), np.searchsorted(uniq, f2), 0, max(len(uniq), 1)
        f3, f2 = f3 - fmin, f2 - fmin
        key3 = s3 * span + f3
        key2 = (s2 * n_cams + cam_b2) * span + f2
        fv3, fv2 = fr3.valid, fr2.valid
        g3 = _group(key3, _and(fv3, valids[0]))
        g2 = _group(key2, _and(fv2, valids[1], cv_b2))
        # every 2D box group must belong to a camera, every 3D group to a stream with a camera
        cam_keys = np.array(sorted(s * n_cams + k for s, k, _ in cams), np.int64)
        g2_cam = g2.keys // span
        orphan = ~np.isin(g2_cam, cam_keys)
        if orphan.any():
            row = int(g2.rows(np.array([g2.offsets[np.flatnonzero(orphan)[0]]]))[0])
            raise InputError(f"{self.kind}: camera box row {row} comes from a camera with no calib row",
                             expected="a calib row for every (stream, camera) of the camera boxes",
                             found=f"calib has {cal.num_rows} row(s)", fix="add the camera's calibration")
        cam_streams = np.unique(np.array([s for s, _, _ in cams], np.int64))
        orphan3 = ~np.isin(g3.keys // span, cam_streams)
        if orphan3.any():
            row = int(g3.rows(np.array([g3.offsets[np.flatnonzero(orphan3)[0]]]))[0])
            raise InputError(f"{self.kind}: 3D box row {row} belongs to a stream with no camera",
                             expected="a calib row for every stream of the 3D boxes", found=f"{cal.num_rows} calib row(s)",
                             fix="add the stream's cameras to calib, or check that stream's boxes without agree")
        # units: per camera, every frame with 3D boxes of its stream or 2D boxes of it
        idx3, idx2, off3, off2, unit_cam = [], [], [0], [0], []
        for s, k, i in sorted(cams):
            lo3, hi3 = np.searchsorted(g3.keys, [s * span, (s + 1) * span])
            k2 = (s * n_cams + k) * span
            lo2, hi2 = np.searchsorted(g2.keys, [k2, k2 + span])
            frames = np.union1d(g3.keys[lo3:hi3] - s * span, g2.keys[lo2:hi2] - k2)
            if not len(frames):
                continue
            a3, b3_ = _ranges(g3, frames + s * span)
            a2, b2_ = _ranges(g2, frames + k2)
            n3, n2 = b3_ - a3, b2_ - a2
            idx3.append(_concat_ranges(a3, b3_))
            idx2.append(_concat_ranges(a2, b2_))
            off3.extend((off3[-1] + np.cumsum(n3)).tolist())
            off2.extend((off2[-1] + np.cumsum(n2)).tolist())
            unit_cam.extend([i] * len(frames))
        cat = (lambda xs: np.concatenate(xs) if xs else np.empty(0, np.int64))
        return (g3, g2, cat(idx3), cat(idx2), np.array(off3, np.int64), np.array(off2, np.int64),
                np.array(unit_cam, np.int64))

    def evaluate_many(self, inputs: dict[str, pa.Table], backend: str) -> Result:
        b3, cal, b2 = inputs["boxes3d"], inputs["calib"], inputs["boxes"]
        c, bc = self.cols, self.bcols
        K, T, width, height = _calibration(cal, self.ccols, self.kind)
        g3, g2, idx3, idx2, off3, off2, unit_cam = self._units(b3, cal, b2)
        rows3_all = g3.rows(idx3)
        rows2_all = g2.rows(idx2)
        p3 = [np.ascontiguousarray(v[rows3_all]) for v in _f32s(b3, [c.cx, c.cy, c.cz, c.l, c.w, c.h, c.yaw], "3D box")]
        p2 = [np.ascontiguousarray(v[rows2_all]) for v in _f32s(b2, [bc.x1, bc.y1, bc.x2, bc.y2], "box coordinate")]
        k = _dispatch.kernels("points", backend)
        proj, match3, match2 = k.project_match(*p3, off3, *p2, off2, unit_cam, K, T, width, height,
                                               self.near, self.iou)
        n_units = len(unit_cam)
        unit3 = np.repeat(np.arange(n_units), np.diff(off3))
        unit2 = np.repeat(np.arange(n_units), np.diff(off2))
        u3 = np.flatnonzero(match3 == -1)
        u2 = np.flatnonzero(match2 == -1)
        bad = np.bincount(unit3[u3], minlength=n_units) + np.bincount(unit2[u2], minlength=n_units)
        flagged_units = np.flatnonzero(bad)
        event_of_unit = np.full(n_units, -1, np.int64)
        event_of_unit[flagged_units] = np.arange(len(flagged_units))
        # rows: per event the 3D rows ascending, then the camera rows ascending
        ev = np.concatenate([event_of_unit[unit3[u3]], event_of_unit[unit2[u2]]])
        rows = np.concatenate([rows3_all[u3], rows2_all[u2]])
        side = np.concatenate([np.zeros(len(u3), np.int64), np.ones(len(u2), np.int64)])
        order = np.lexsort((rows, side, ev))
        ev, rows, side = ev[order], rows[order], side[order]
        sev = bad[flagged_units][ev].astype(np.float32) if len(ev) else np.empty(0, np.float32)
        names = np.array([self.tables["boxes3d"], self.tables["boxes"]], dtype=object)
        cam_of_event = unit_cam[flagged_units][ev] if len(ev) else np.empty(0, np.int64)
        ctx = {
            "table": lambda: pa.array(names[side].tolist(), pa.string()),
            "stream": functools.partial(_two_table_context, b3, c.stream, b2, bc.stream, rows, side, pa.string()),
            "frame": functools.partial(_two_table_context, b3, c.frame, b2, bc.frame, rows, side, pa.int64()),
            "camera": functools.partial(_context, cal, self.ccols.camera, cam_of_event, pa.string()),
            "detail": lambda: pa.array(np.where(side == 0, "3D box without a camera box",
                                                "camera box without a 3D box").tolist(), pa.string()),
        }
        corr = functools.partial(self._imputed, b3, cal, b2, rows3_all[u3], proj[u3], unit_cam[unit3[u3]]) \
            if len(u3) else []
        return Result(rows, ev, sev, b3.num_rows + b2.num_rows, ctx, corr)

    def _imputed(self, b3: pa.Table, cal: pa.Table, b2: pa.Table, rows3: np.ndarray, proj: np.ndarray,
                 cal_rows: np.ndarray) -> list[Correction]:
        """The weak labels: one camera box per unmatched 3D box, in the camera table's schema."""
        c, cc, bc = self.cols, self.ccols, self.bcols
        n = len(rows3)
        take3 = pa.array(rows3, pa.int64())
        cols = []
        for f in b2.schema:
            src = None
            if f.name in (bc.x1, bc.y1, bc.x2, bc.y2):
                src = pa.array(proj[:, (bc.x1, bc.y1, bc.x2, bc.y2).index(f.name)], pa.float32())
            elif f.name == bc.frame:
                src = b3.column(c.frame).take(take3)
            elif f.name == bc.stream and _has(b3, c.stream):
                src = b3.column(c.stream).take(take3)
            elif f.name == cc.camera and _has(cal, cc.camera):
                src = cal.column(cc.camera).take(pa.array(cal_rows, pa.int64()))
            elif f.name in (bc.cls, bc.score, bc.track):
                name3 = {bc.cls: c.cls, bc.score: c.score, bc.track: c.track}[f.name]
                if _has(b3, name3):
                    src = b3.column(name3).take(take3)
            cols.append(_cast_or_null(src, f.type, n))
        values = pa.Table.from_arrays(cols, schema=b2.schema)
        return [Correction("add", np.empty(0, np.int64), values=values, table=self.tables["boxes"])]


def _cast_or_null(src, typ: pa.DataType, n: int):
    if src is None:
        return pa.nulls(n, typ)
    if isinstance(src, pa.ChunkedArray):
        src = src.combine_chunks()
    if src.type.equals(typ):
        return src
    try:
        if pa.types.is_dictionary(typ) and not pa.types.is_dictionary(src.type):
            return pc.cast(src, typ.value_type).dictionary_encode().cast(typ)
        if pa.types.is_dictionary(src.type) and not pa.types.is_dictionary(typ):
            src = src.cast(src.type.value_type)
        return pc.cast(src, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.nulls(n, typ)


def _two_table_context(t0: pa.Table, n0: str, t1: pa.Table, n1: str, rows: np.ndarray, side: np.ndarray,
                       typ: pa.DataType) -> pa.Array:
    out = [None] * len(rows)
    for s, (t, n) in enumerate(((t0, n0), (t1, n1))):
        sel = np.flatnonzero(side == s)
        if len(sel):
            vals = _context(t, n, rows[sel], typ).to_pylist()
            for i, v in zip(sel.tolist(), vals):
                out[i] = v
    return pa.array(out, typ)


def _mask(valid, n: int) -> np.ndarray:
    return np.ones(n, bool) if valid is None else valid.astype(bool)


def _concat_ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``concatenate([arange(a, b) for a, b in zip(lo, hi)])`` without a Python loop."""
    n = hi - lo
    total = int(n.sum())
    if total == 0:
        return np.empty(0, np.int64)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(n)[:-1])), n)
    return starts + np.arange(total, dtype=np.int64)


_registry.register("points.agree", agree, builtin=True)
_registry.register("points.empty_box", empty_box, builtin=True)
_registry.register("points.size_prior", size_prior, builtin=True)
_registry.register("points.multibox", multibox, builtin=True)
