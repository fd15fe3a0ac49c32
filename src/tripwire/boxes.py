"""2D video detections: per-frame box assertions over a ``boxes`` table (DESIGN §2).

Columns (defaults; remap with ``columns=tw.Boxes(frame="frame_idx", cls="label")``):
``stream`` (optional: video or camera id, any type), ``frame`` (integer frame index or
timestamp), ``track`` (optional tracker id), ``cls``, ``score`` (float, may be null: no score),
``x1 y1 x2 y2`` (pixels; float32 is read without a copy, other numeric types are converted).

Each assertion follows validate -> normalize -> dispatch -> kernel -> wrap; kernels see boxes in
(stream, frame) order with CSR frame offsets (``tripwire._frames``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _arrow, _dispatch, _frames, _registry
from ._assertion import Assertion, Correction, Result, canonical_events
from .rows import consistent_groups
from .errors import InputError

__all__ = ["Boxes", "multibox", "flicker", "appear", "valid", "class_consistency", "VALID_REASONS"]

_EMPTY_F32 = np.empty(0, np.float32)


class _Names:
    """Base of the column-name mappings (``Boxes``, ``tw.Boxes3D``, ``tw.Points``, ...):
    every field must be a column name."""

    @classmethod
    def coerce(cls, columns: Any, example: str):
        """``columns`` as a mapping of this kind: ``None`` (the defaults), one already, or a dict
        of its fields. ``example`` is the fix the error suggests."""
        if columns is None:
            return cls()
        if isinstance(columns, cls):
            return columns
        if isinstance(columns, dict):
            return cls(**columns)
        raise InputError(f"columns={columns!r}", expected=f"tw.{cls.__name__}(...) or a dict of column names",
                         fix=example)

    def __post_init__(self):
        for f in fields(self):
            if not isinstance(getattr(self, f.name), str):
                raise InputError(f"{type(self).__name__}({f.name}=...) must be a column name",
                                 expected="a string", found=repr(getattr(self, f.name)),
                                 fix=f"pass {type(self).__name__}({f.name}='<column>')")


@dataclass(frozen=True)
class Boxes(_Names):
    """Column names of a ``boxes`` table. ``stream`` and ``track`` are used when present."""

    stream: str = "stream"
    frame: str = "frame"
    track: str = "track"
    cls: str = "cls"
    score: str = "score"
    x1: str = "x1"
    y1: str = "y1"
    x2: str = "x2"
    y2: str = "y2"


def _columns(columns: Any) -> Boxes:
    return Boxes.coerce(columns, "pass columns=tw.Boxes(frame='frame_idx')")


def _coords(table: pa.Table, cols: Boxes) -> tuple[list[np.ndarray], np.ndarray | None]:
    """x1 y1 x2 y2 as float32 arrays (views when float32) and their combined validity."""
    names = (cols.x1, cols.y1, cols.x2, cols.y2)
    plain = _arrow.plain_views(table, names, np.float32)
    if plain is not None:
        return plain, None
    out, valid = [], None
    for name in names:
        c = _arrow.numeric_column(table, name, role=f"box coordinate {name}")
        v = c.values if c.values.dtype == np.float32 else c.values.astype(np.float32)
        out.append(v)
        if c.valid is not None:
            valid = c.valid.copy() if valid is None else valid & c.valid
    return out, valid


def _score(table: pa.Table, cols: Boxes) -> tuple[np.ndarray, np.ndarray]:
    """The score column as float32 (empty when the table has none) and its validity bytes."""
    plain = _arrow.plain_views(table, (cols.score,), np.float32)
    if plain is not None:
        return plain[0], _arrow.NO_NULLS
    if table.schema.get_field_index(cols.score) < 0:
        return _EMPTY_F32, _arrow.NO_NULLS
    c = _arrow.numeric_column(table, cols.score, role="score")
    v = c.values if c.values.dtype == np.float32 else c.values.astype(np.float32)
    return v, _arrow.kernel_validity(c.valid)


def _frame_context(table: pa.Table, cols: Boxes, rows: np.ndarray) -> pa.Array:
    taken = table.column(cols.frame).take(pa.array(rows, pa.int64()))
    if pa.types.is_date32(taken.type):  # date32 -> int64 has no direct cast (days, as grouped)
        taken = pc.cast(taken, pa.int32())
    return pc.cast(taken, pa.int64()).combine_chunks()


def _stream_context(table: pa.Table, cols: Boxes, rows: np.ndarray) -> pa.Array:
    if table.schema.get_field_index(cols.stream) < 0:
        return pa.nulls(len(rows), pa.string())
    taken = table.column(cols.stream).take(pa.array(rows, pa.int64()))
    if pa.types.is_dictionary(taken.type):
        taken = taken.cast(taken.type.value_type)
    return pc.cast(taken, pa.string()).combine_chunks()


def _check_unit(value: Any, param: str, kind: str, fix: str) -> float:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and 0 < float(value) <= 1:
        return float(value)
    raise InputError(f"{kind}: {param}={value!r}", expected="a number in (0, 1]", fix=fix)


def _check_count(value: Any, param: str, kind: str, minimum: int) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum:
        return int(value)
    raise InputError(f"{kind}: {param}={value!r}", expected=f"an integer >= {minimum}",
                     fix=f"pass e.g. {param}={max(minimum, 3)}")


class multibox(Assertion):
    """At least ``min_boxes`` boxes in one (stream, frame) forming a connected overlap group.

    Boxes are linked when their IoU >= ``iou``; a group is a connected component of links (the
    paper's night-street ``multibox``: three or more boxes stacked on one object). Every box of
    the group is flagged, one event per group. Severity: the highest score in the group (1 when
    no box has a score). Boxes with a null or non-finite coordinate link to nothing (see
    ``boxes.valid``); rows with a null frame are not checked.
    """

    kind = "boxes.multibox"
    family = "boxes"

    def __init__(self, *, iou: float = 0.3, min_boxes: int = 3, columns: Any = None,
                 name: str | None = None, table: str = "boxes"):
        super().__init__(name=name, table=table)
        self.iou = _check_unit(iou, "iou", self.kind, "pass e.g. iou=0.3")
        self.min_boxes = _check_count(min_boxes, "min_boxes", self.kind, 2)
        self.cols = _columns(columns)

    def params(self) -> dict[str, Any]:
        return {"iou": self.iou, "min_boxes": self.min_boxes}

    def columns(self) -> list[str]:
        c = self.cols
        return [c.frame, c.x1, c.y1, c.x2, c.y2]

    def optional_columns(self) -> list[str]:
        return [self.cols.score, self.cols.stream]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        groups = _frames.group_frames(table, c.frame, c.stream)
        (x1, y1, x2, y2), cvalid = _coords(table, c)
        if cvalid is not None:  # a null coordinate links to nothing, like NaN
            bad = ~cvalid.astype(bool)
            x1 = np.where(bad, np.float32(np.nan), x1)
        score, svalid = _score(table, c)
        g = groups.gather
        k = _dispatch.kernels("boxes", backend)
        pos, ev, sev, anchor = k.multibox(
            np.ascontiguousarray(g(x1)), np.ascontiguousarray(g(y1)), np.ascontiguousarray(g(x2)),
            np.ascontiguousarray(g(y2)), np.ascontiguousarray(g(score)) if len(score) else score,
            np.ascontiguousarray(g(svalid)) if len(svalid) else svalid, groups.offsets,
            self.iou, self.min_boxes)
        rows = groups.rows(pos)
        row, ev, sev = canonical_events(rows, ev, sev, groups.rows(anchor))
        return Result(row, ev, sev, table.num_rows, {
            "stream": functools.partial(_stream_context, table, c, row),
            "frame": functools.partial(_frame_context, table, c, row),
        })


VALID_REASONS = {1: "non-finite or null coordinate", 2: "x2 <= x1", 4: "y2 <= y1",
                 8: "outside the image", 16: "score outside [0, 1]"}


def _reason_text(reasons: np.ndarray) -> pa.Array:
    names = [", ".join(t for bit, t in VALID_REASONS.items() if r & bit) for r in range(32)]
    return pa.array([names[r] for r in reasons.tolist()], pa.string())


class valid(Assertion):
    """Boxes that cannot be right: a null or non-finite coordinate, x2 <= x1, y2 <= y1, a box
    outside ``[0, width] x [0, height]`` (when given), a score outside [0, 1] (a null score is
    fine: detectors without scores). Severity 1; the ``detail`` context column says why."""

    kind = "boxes.valid"
    family = "boxes"
    scope = "row"

    def __init__(self, *, width: float | None = None, height: float | None = None,
                 columns: Any = None, name: str | None = None, table: str = "boxes"):
        super().__init__(name=name, table=table)
        for p, v in (("width", width), ("height", height)):
            if v is not None and not (isinstance(v, (int, float, np.integer, np.floating))
                                      and not isinstance(v, bool) and v > 0):
                raise InputError(f"{self.kind}: {p}={v!r}", expected="a positive number of pixels or None",
                                 fix=f"pass e.g. {p}=640")
        self.width, self.height = width, height
        self.cols = _columns(columns)

    def params(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height}

    def columns(self) -> list[str]:
        c = self.cols
        return [c.x1, c.y1, c.x2, c.y2]

    def optional_columns(self) -> list[str]:
        return [self.cols.score]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        (x1, y1, x2, y2), cvalid = _coords(table, c)
        score, svalid = _score(table, c)
        k = _dispatch.kernels("boxes", backend)
        rows, reasons = k.valid(x1, y1, x2, y2, _arrow.kernel_validity(cvalid), score, svalid,
                                float(self.width or 0), float(self.height or 0))
        return Result(rows, np.arange(len(rows), dtype=np.int64), np.ones(len(rows), np.float32),
                      table.num_rows, {"detail": functools.partial(_reason_text, reasons)})


def _track_keys(table: pa.Table, cols: Boxes) -> _arrow.Keys:
    """Keys of (stream, track): track ids are only unique within a stream."""
    return _stream_track_keys(table, cols)[0]


def _stream_track_keys(table: pa.Table, cols: Boxes,
                       *also: tuple[str, str]) -> tuple[_arrow.Keys, _arrow.Keys | None, list[_arrow.Keys]]:
    """(stream, track) keys, the stream keys they were built from (``None``: no stream), and
    the keys of the columns ``also`` names (``(name, role)``), all encoded together."""
    has_stream = table.schema.get_field_index(cols.stream) >= 0
    keys = _arrow.encode_many(table, [(cols.track, "track"), *also]
                              + ([(cols.stream, "stream")] if has_stream else []))
    tracks, others = keys[0], keys[1:1 + len(also)]
    if not has_stream:
        return tracks, None, others
    streams = keys[-1]
    return _pair_keys(table, cols, streams, tracks), streams, others


def _pair_keys(table: pa.Table, cols: Boxes, streams: _arrow.Keys, tracks: _arrow.Keys) -> _arrow.Keys:
    """One key per (stream, track) pair: direct codes when the pairs are few enough, else
    encoded again like any wide integer key."""
    combined = _dispatch.kernels("boxes", "cython").pair_codes(
        streams.codes, streams.offset, tracks.codes, tracks.offset, max(tracks.n, 1))
    valid = tracks.valid
    if streams.valid is not None:
        valid = streams.valid if valid is None else valid & streams.valid
    slots = max(streams.n, 1) * max(tracks.n, 1)
    if slots <= _arrow.direct_key_slots(table.num_rows):
        return _arrow.Keys(combined, 0, slots, valid)  # direct: no second encoding pass
    mask = None if valid is None else ~valid.astype(bool)
    return _arrow.encode_array(pa.chunked_array([pa.array(combined, pa.int64(), mask=mask)]),
                               name=f"({cols.stream}, {cols.track})", role="track")


def _track_context(table: pa.Table, cols: Boxes, rows_: np.ndarray) -> pa.Array:
    return pc.cast(table.column(cols.track).take(pa.array(rows_, pa.int64())), pa.string()).combine_chunks()


class class_consistency(Assertion):
    """One track carrying more than one class (per stream: track ids are only unique within
    one). Flags the boxes not holding the track's most common class, one event per track.
    Severity: the share of such boxes. Correction: ``relabel`` them to the most common class
    (ties: the class seen first). Boxes with a null track are not checked; a null class is a
    class of its own."""

    kind = "boxes.class_consistency"
    family = "rows"  # its kernel is rows.consistent

    def __init__(self, *, columns: Any = None, name: str | None = None, table: str = "boxes"):
        super().__init__(name=name, table=table)
        self.cols = _columns(columns)

    def columns(self) -> list[str]:
        return [self.cols.track, self.cols.cls]

    def optional_columns(self) -> list[str]:
        return [self.cols.stream, self.cols.frame]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        ids, _, (classes,) = _stream_track_keys(table, c, (c.cls, "attr"))
        row, ev, sev, corr = consistent_groups(ids, classes, c.cls, True, backend)
        ctx = {"key": functools.partial(_track_context, table, c, row),
               "stream": functools.partial(_stream_context, table, c, row)}
        if table.schema.get_field_index(c.frame) >= 0:
            ctx["frame"] = functools.partial(_frame_context, table, c, row)
        return Result(row, ev, sev, table.num_rows, ctx, corr)


# ----------------------------------------------------------------------------------------------
# flicker / appear: objects followed across frames
# ----------------------------------------------------------------------------------------------
IDENTITIES = ("auto", "track", "iou")


def _check_identity(identity: Any, kind: str) -> str:
    if identity not in IDENTITIES:
        raise InputError(f"{kind}: identity={identity!r}", expected="'auto', 'track' or 'iou'",
                         fix="pass identity='track' to follow tracker ids, 'iou' to link boxes by "
                             "overlap, or 'auto' (track ids when the table has them)")
    return identity


def _resolve_identity(identity: str, table: pa.Table, cols: Boxes) -> str:
    if identity == "auto":
        return "track" if table.schema.get_field_index(cols.track) >= 0 else "iou"
    return identity


def _frame_numbers(table: pa.Table, cols: Boxes, kind: str) -> _arrow.NumericColumn:
    """The frame column as int64 frame numbers: gaps are counted in frames, so timestamps
    (whose ticks are not frames) are refused."""
    typ = _arrow.column(table, cols.frame, role="frame", expected="an integer frame number").type
    if not pa.types.is_integer(typ):
        raise InputError(f"{kind}: column {cols.frame!r} (frame) has type {typ}",
                         expected="integer frame numbers (gaps are counted in frames)",
                         found=str(typ),
                         fix="number the frames, e.g. frame = (time - t0) // frame_period as int64")
    col = _arrow.numeric_column(table, cols.frame, role="frame", integer=True)
    return _arrow.NumericColumn(col.values.astype(np.int64, copy=False), col.valid)


@dataclass
class _Linked:
    """Objects found by IoU association, in frame order (positions)."""

    groups: _frames.FrameGroups
    frames: _arrow.NumericColumn  # the frame column (input rows), as int64 frame numbers
    obj: np.ndarray  # int64 object id per position, -1: none (non-finite box)
    gap_start: np.ndarray  # positions where an object is last seen before a gap ...
    gap_end: np.ndarray  # ... and where it is seen again
    n_obj: int  # object ids are 0 .. n_obj - 1

    def object_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """The object id of input rows (-1: none)."""
        if self.groups.order is None:
            return self.obj[rows]
        pos = np.full(int(self.groups.order.max()) + 1 if len(self.groups.order) else 0, -1, np.int64)
        pos[self.groups.order] = np.arange(len(self.groups.order))
        return self.obj[pos[rows]]


def _association_boxes(table: pa.Table, cols: Boxes) -> tuple[np.ndarray, ...]:
    """``x1 y1 x2 y2`` (float32; NaN where a coordinate is null: such a box links to nothing)
    and a class code per row (equal codes: same class; a null class is a class of its own),
    in row order, as ``associate`` compares them."""
    (x1, y1, x2, y2), cvalid = _coords(table, cols)
    if cvalid is not None:  # a null coordinate links to nothing, like NaN
        x1 = np.where(cvalid.astype(bool), x1, np.float32(np.nan))
    if table.schema.get_field_index(cols.cls) >= 0:
        keys = _arrow.encode_keys(table, cols.cls, role="class")
        cls = keys.codes  # only compared for equality: the offset does not matter
        if keys.valid is not None:  # a null class is a class of its own
            cls = cls.astype(np.int64)
            cls[~keys.valid.astype(bool)] = keys.offset + keys.n
    else:
        cls = np.zeros(table.num_rows, np.int32)
    return x1, y1, x2, y2, cls


def _link_by_iou(table: pa.Table, cols: Boxes, iou: float, max_gap: int, kind: str,
                 backend: str) -> _Linked:
    """Identity ``iou``: one association kernel call over every frame of every stream."""
    frames = _frame_numbers(table, cols, kind)  # refuses timestamps
    groups = _frames.group_frames(table, cols.frame, cols.stream)
    g = groups.gather
    x1, y1, x2, y2, cls = (np.ascontiguousarray(g(v)) for v in _association_boxes(table, cols))
    k = _dispatch.kernels("boxes", backend)
    out = k.associate(x1, y1, x2, y2, cls, groups.offsets, groups.frame, groups.stream, iou, max_gap)
    return _Linked(groups, frames, out[0], out[1], out[2], int(out[7]))


def _interpolated_boxes(table: pa.Table, cols: Boxes, start: np.ndarray, end: np.ndarray,
                        frames: np.ndarray, track_from: np.ndarray | None = None) -> pa.Table:
    """For each (start, end) pair, one box per missing frame between them: a copy of the start
    row with ``frame``, ``x1 y1 x2 y2`` (and ``score`` when both ends have one) linearly
    interpolated; every other column is copied from the start row, except ``track``, taken
    from ``track_from`` (one row per pair) when given."""
    fa, fb = frames[start], frames[end]
    missing = fb - fa - 1
    pair = np.repeat(np.arange(len(start)), missing)
    step = np.arange(len(pair)) - np.repeat(np.cumsum(missing) - missing, missing) + 1
    w = step / (missing[pair] + 1.0)
    a, b = start[pair], end[pair]
    out = table.take(pa.array(a, pa.int64()))

    def put(name: str, values: np.ndarray, mask: np.ndarray | None = None) -> None:
        nonlocal out
        i = out.schema.get_field_index(name)
        typ = out.schema.field(i).type
        if pa.types.is_integer(typ) and values.dtype.kind == "f":
            values = np.round(values)
        out = out.set_column(i, name, pa.array(values, mask=mask).cast(typ, safe=False))

    put(cols.frame, fa[pair] + step)
    names = [cols.x1, cols.y1, cols.x2, cols.y2]
    if table.schema.get_field_index(cols.score) >= 0:
        names.append(cols.score)
    for name in names:  # null at either end: null; inf or NaN at either end: NaN or inf
        c = _arrow.numeric_column(table, name, role="score" if name == cols.score else f"box coordinate {name}")
        va, vb = c.values[a].astype(np.float64), c.values[b].astype(np.float64)
        mask = None if c.valid is None else ~(c.valid[a] & c.valid[b]).astype(bool)
        with np.errstate(invalid="ignore", over="ignore"):
            put(name, va + (vb - va) * w, mask)
    if track_from is not None:
        i = out.schema.get_field_index(cols.track)
        out = out.set_column(i, cols.track, table.column(cols.track).take(pa.array(track_from[pair], pa.int64())))
    return out


def _stitch_fragments(table: pa.Table, cols: Boxes, start: np.ndarray, end: np.ndarray,
                      frames: np.ndarray) -> tuple[list[Correction], np.ndarray]:
    """Identity ``iou`` on a tracked table: a gap whose two boxes carry different track ids is
    a fragmentation. The later track takes the earlier id from the later box's frame on (in
    its stream); chains (A -> B -> C) resolve to the first id. Returns the relabel correction
    and, per pair, the row whose track id the interpolated boxes should carry."""
    keys = _track_keys(table, cols)
    if keys.n == 0:  # no row has a track id
        return [], start.copy()
    codes, valid = keys.dense()
    ok = np.ones(table.num_rows, bool) if valid is None else valid
    src_of = np.full(keys.n, -1, np.int64)  # track code -> row holding the id it takes
    from_frame = np.zeros(keys.n, np.int64)
    frag = np.flatnonzero(ok[start] & ok[end] & (codes[start] != codes[end]))
    for p in frag[np.argsort(frames[end[frag]], kind="stable")]:  # fragmentations are rare
        a, b = int(start[p]), int(end[p])
        src = int(src_of[codes[a]]) if src_of[codes[a]] >= 0 and frames[a] >= from_frame[codes[a]] else a
        cb = codes[b]
        if cb == codes[src] or src_of[cb] >= 0:
            continue  # a chain back to itself, or already stitched: the first link wins
        src_of[cb] = src
        from_frame[cb] = frames[b]
    # the id each gap's added boxes carry: the start's, or what the start's track was stitched to
    ca = codes[start]
    stitched = ok[start] & (src_of[ca] >= 0) & (frames[start] >= from_frame[ca])
    track_from = np.where(stitched, src_of[ca], start)
    if not (src_of >= 0).any():
        return [], track_from
    taken = src_of[codes]
    rows = np.flatnonzero(ok & (taken >= 0) & (frames >= from_frame[codes]))
    return [Correction("relabel", rows, column=cols.track, source_rows=taken[rows])], track_from


def _object_context(linked: _Linked, rows: np.ndarray) -> pa.Array:
    return pa.array(linked.object_of_rows(rows), pa.int64())


def _flicker_corrections(table: pa.Table, cols: Boxes, pairs: np.ndarray, frames: np.ndarray,
                         identity: str) -> list[Correction]:
    """``add`` the interpolated boxes of every gap (and, with identity ``iou`` on a tracked
    table, ``relabel`` stitched fragments); built only when corrections are read. ``pairs``
    (start, end) come in order of their start, as ``flicker.evaluate`` puts its events."""
    start, end = pairs[:, 0], pairs[:, 1]
    corr: list[Correction] = []
    track_from = None
    if identity == "iou" and table.schema.get_field_index(cols.track) >= 0:
        corr, track_from = _stitch_fragments(table, cols, start, end, frames)
    added = _interpolated_boxes(table, cols, start, end, frames, track_from)
    return [Correction("add", np.empty(0, np.int64), values=added)] + corr


class _ObjectAssertion(Assertion):
    """Shared by ``flicker`` and ``appear``: objects followed across frames by track id or by
    IoU (``identity``), linked over gaps of up to ``max_gap`` frames."""

    family = "boxes"
    min_gap = 0  # the smallest max_gap that makes sense

    def __init__(self, *, iou: float, max_gap: int, identity: str, columns: Any, name: str | None,
                 table: str):
        super().__init__(name=name, table=table)
        self.iou = _check_unit(iou, "iou", self.kind, "pass e.g. iou=0.3")
        self.max_gap = _check_count(max_gap, "max_gap", self.kind, self.min_gap)
        self.identity = _check_identity(identity, self.kind)
        self.cols = _columns(columns)

    def optional_columns(self) -> list[str]:
        c = self.cols
        return [c.stream, c.score, c.cls] + ([c.track] if self.identity == "auto" else [])


class flicker(_ObjectAssertion):
    """An object seen at frame ``t`` and again at ``t + g + 1`` (``1 <= g <= max_gap``) is
    missing from the ``g`` frames between: the paper's night-street ``flicker``.

    Identity (``identity=``): ``"track"`` follows the ``track`` column (per stream);
    ``"iou"`` links same-class boxes across frames by IoU >= ``iou`` (greedy, highest IoU
    first, one to one; an object unseen for more than ``max_gap`` frames ends), which also
    catches a tracker's fragmentations (a track ends and a new id starts at the same place a
    few frames later); ``"auto"`` (default) uses ``track`` when the table has that column.
    Frames are integer frame numbers; the stream is optional; ``cls`` is optional (without it
    every box is one class).

    One event per gap, flagging the box before and the box after it. Severity: mean score of
    those two boxes (1 without scores). Correction: ``add`` one box per missing frame, linearly
    interpolated (coordinates, frame, and the score when both ends have one; other columns are
    copied from the box before the gap). With identity ``"iou"`` on a table that has track
    ids, a gap whose two boxes carry different ids is a tracker fragmentation: a second
    correction, ``relabel``, gives the later track the earlier id from that box on (chains
    resolve to the first id), and the added boxes carry that id. Rows with a null frame, stream or (identity
    ``track``) track are not checked; boxes with a null or non-finite coordinate are never
    linked by IoU (``boxes.valid`` reports them).
    """

    kind = "boxes.flicker"
    min_gap = 1

    def __init__(self, *, iou: float = 0.3, max_gap: int = 3, identity: str = "auto",
                 columns: Any = None, name: str | None = None, table: str = "boxes"):
        super().__init__(iou=iou, max_gap=max_gap, identity=identity, columns=columns, name=name,
                         table=table)

    def params(self) -> dict[str, Any]:
        return {"iou": self.iou, "max_gap": self.max_gap, "identity": self.identity}

    def columns(self) -> list[str]:
        c = self.cols
        return [c.frame, c.x1, c.y1, c.x2, c.y2] + ([c.track] if self.identity == "track" else [])

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        k = _dispatch.kernels("boxes", backend)
        identity = _resolve_identity(self.identity, table, c)
        if identity == "track":
            frames = _frame_numbers(table, c, self.kind)
            keys = _track_keys(table, c)
            valid = _arrow.kernel_validity(_arrow.and_valid(keys.valid, frames.valid))
            start, end, in_order = k.gaps(keys.codes, keys.offset, keys.n, valid, frames.values, self.max_gap)
            if not in_order:  # some track's frames go back in time: one stable sort by (track, frame)
                order = np.lexsort((frames.values, keys.codes))
                s, e, _ = k.gaps(np.ascontiguousarray(keys.codes[order]), keys.offset, keys.n,
                                 valid[order] if len(valid) else valid,
                                 np.ascontiguousarray(frames.values[order]), self.max_gap)
                start, end = order[s], order[e]
            frame_values = frames.values
            who = ("key", functools.partial(_track_context, table, c))
        else:
            linked = _link_by_iou(table, c, self.iou, self.max_gap, self.kind, backend)
            start, end = linked.groups.rows(linked.gap_start), linked.groups.rows(linked.gap_end)
            frame_values = linked.frames.values
            who = ("object", functools.partial(_object_context, linked))
        return _gap_result(table, c, start, end, who,
                           lambda pairs: _flicker_corrections(table, c, pairs, frame_values, identity))


def _gap_result(table: pa.Table, cols: Boxes, start: np.ndarray, end: np.ndarray,
                who: tuple[str, Any], corrections: Any = None) -> Result:
    """``flicker``'s violations from gap pairs (rows of ``table``: the box before and the box
    after each gap): one event per gap, severity the mean score of its two boxes, context
    ``stream``, ``frame`` and ``who`` (name, function of the flagged rows: which object);
    ``corrections(pairs)`` builds the weak labels. Shared by ``flicker.evaluate`` and the
    streaming form (``tripwire._streaming.ByObject``)."""
    # canonical order directly: events by their first row (a box opens at most one gap), their
    # two rows ascending, severity the mean score of the two, all in one native pass
    score, svalid = _score(table, cols)
    row, ev, sev, pairs = _dispatch.kernels("boxes", "cython").gap_events(
        score, svalid, np.ascontiguousarray(start, np.int64), np.ascontiguousarray(end, np.int64))
    ctx = {"stream": functools.partial(_stream_context, table, cols, row),
           "frame": functools.partial(_frame_context, table, cols, row),
           who[0]: functools.partial(who[1], row)}
    corr = functools.partial(corrections, pairs) if corrections is not None and len(pairs) else []
    return Result(row, ev, sev, table.num_rows, ctx, corr)


class appear(_ObjectAssertion):
    """An object that lives fewer than ``min_frames`` frames: the paper's ``appear`` (a box
    that pops up and vanishes).

    An object lives from its first to its last frame (``last - first + 1``, gaps included).
    Objects cut by the data (first frame = the stream's first frame, or last frame = the
    stream's last frame) are not judged: they may live on outside it. Identity as in
    ``boxes.flicker`` (``"track"``, ``"iou"`` with gaps of up to ``max_gap`` frames bridged,
    ``"auto"``). One event per object, flagging all its boxes. Severity: the mean score of its
    boxes (1 without scores). Correction: ``remove`` its boxes. Rows with a null frame, stream
    or (identity ``track``) track are not checked; with identity ``iou`` boxes with a null or
    non-finite coordinate belong to no object (``boxes.valid`` reports them).
    """

    kind = "boxes.appear"

    def __init__(self, *, min_frames: int = 3, iou: float = 0.3, max_gap: int = 3,
                 identity: str = "auto", columns: Any = None, name: str | None = None,
                 table: str = "boxes"):
        self.min_frames = _check_count(min_frames, "min_frames", self.kind, 2)
        super().__init__(iou=iou, max_gap=max_gap, identity=identity, columns=columns, name=name,
                         table=table)

    def params(self) -> dict[str, Any]:
        return {"min_frames": self.min_frames, "iou": self.iou, "max_gap": self.max_gap,
                "identity": self.identity}

    def columns(self) -> list[str]:
        c = self.cols
        if self.identity == "track":
            return [c.frame, c.track]
        return [c.frame, c.x1, c.y1, c.x2, c.y2]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        k = _dispatch.kernels("boxes", backend)
        score, svalid = _score(table, c)
        ctx: dict[str, Any] = {}
        if _resolve_identity(self.identity, table, c) == "track":
            frames = _frame_numbers(table, c, self.kind)
            keys, streams, _ = _stream_track_keys(table, c)
            if streams is not None:
                s_codes, s_offset, s_n, s_valid = streams.codes, streams.offset, streams.n, streams.valid
            else:
                s_codes, s_offset, s_n, s_valid = np.empty(0, np.int64), 0, 1, None
            pos, ev, sev, anchor = k.lifetimes(
                keys.codes, keys.offset, keys.n, _arrow.kernel_validity(keys.valid),
                frames.values, _arrow.kernel_validity(_arrow.and_valid(frames.valid, s_valid)),
                s_codes, s_offset, s_n, score, svalid, self.min_frames)
            row, ev, sev = canonical_events(pos, ev, sev, anchor)
            ctx["key"] = functools.partial(_track_context, table, c, row)
        else:
            linked = _link_by_iou(table, c, self.iou, self.max_gap, self.kind, backend)
            groups = linked.groups
            g = groups.gather
            counts = np.diff(groups.offsets)
            n_streams = int(groups.stream.max()) + 1 if len(groups.stream) else 1
            stream = np.repeat(groups.stream, counts) if n_streams > 1 else np.empty(0, np.int64)
            n_obj = linked.n_obj
            pos, ev, sev, anchor = k.lifetimes(
                linked.obj, 0, n_obj, (linked.obj >= 0).view(np.uint8),
                np.ascontiguousarray(g(linked.frames.values)), _arrow.NO_NULLS,
                stream, 0, n_streams,
                np.ascontiguousarray(g(score)) if len(score) else score,
                np.ascontiguousarray(g(svalid)) if len(svalid) else svalid, self.min_frames)
            row, ev, sev = canonical_events(groups.rows(pos), ev, sev, groups.rows(anchor))
            ctx["object"] = functools.partial(_object_context, linked, row)
        ctx["stream"] = functools.partial(_stream_context, table, c, row)
        ctx["frame"] = functools.partial(_frame_context, table, c, row)
        corr = (lambda: [Correction("remove", np.unique(row))]) if len(row) else []
        return Result(row, ev, sev, table.num_rows, ctx, corr)


_registry.register("boxes.multibox", multibox, builtin=True)
_registry.register("boxes.flicker", flicker, builtin=True)
_registry.register("boxes.appear", appear, builtin=True)
_registry.register("boxes.valid", valid, builtin=True)
_registry.register("boxes.class_consistency", class_consistency, builtin=True)
