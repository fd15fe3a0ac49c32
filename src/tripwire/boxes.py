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
from ._assertion import Assertion, Result, canonical_events
from .rows import consistent_groups
from .errors import InputError

__all__ = ["Boxes", "multibox", "valid", "class_consistency", "VALID_REASONS"]

_EMPTY_F32 = np.empty(0, np.float32)


@dataclass(frozen=True)
class Boxes:
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

    def __post_init__(self):
        for f in fields(self):
            if not isinstance(getattr(self, f.name), str):
                raise InputError(f"Boxes({f.name}=...) must be a column name",
                                 expected="a string", found=repr(getattr(self, f.name)),
                                 fix=f"pass Boxes({f.name}='<column>')")


def _columns(columns: Any) -> Boxes:
    if columns is None:
        return Boxes()
    if isinstance(columns, Boxes):
        return columns
    if isinstance(columns, dict):
        return Boxes(**columns)
    raise InputError(f"columns={columns!r}", expected="tw.Boxes(...) or a dict of column names",
                     fix="pass columns=tw.Boxes(frame='frame_idx')")


def _coords(table: pa.Table, cols: Boxes) -> tuple[list[np.ndarray], np.ndarray | None]:
    """x1 y1 x2 y2 as float32 arrays (views when float32) and their combined validity."""
    out, valid = [], None
    for name in (cols.x1, cols.y1, cols.x2, cols.y2):
        c = _arrow.numeric_column(table, name, role=f"box coordinate {name}")
        v = c.values if c.values.dtype == np.float32 else c.values.astype(np.float32)
        out.append(v)
        if c.valid is not None:
            valid = c.valid.copy() if valid is None else valid & c.valid
    return out, valid


def _score(table: pa.Table, cols: Boxes) -> tuple[np.ndarray, np.ndarray]:
    """The score column as float32 (empty when the table has none) and its validity bytes."""
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
        if not isinstance(min_boxes, (int, np.integer)) or isinstance(min_boxes, bool) or min_boxes < 2:
            raise InputError(f"{self.kind}: min_boxes={min_boxes!r}", expected="an integer >= 2",
                             fix="pass e.g. min_boxes=3")
        self.min_boxes = int(min_boxes)
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
    tracks = _arrow.encode_keys(table, cols.track, role="track")
    if table.schema.get_field_index(cols.stream) < 0:
        return tracks
    streams = _arrow.encode_keys(table, cols.stream, role="stream")
    combined = (streams.codes.astype(np.int64) - streams.offset) * max(tracks.n, 1) \
        + (tracks.codes.astype(np.int64) - tracks.offset)
    valid = tracks.valid
    if streams.valid is not None:
        valid = streams.valid if valid is None else valid & streams.valid
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
    family = "boxes"

    def __init__(self, *, columns: Any = None, name: str | None = None, table: str = "boxes"):
        super().__init__(name=name, table=table)
        self.cols = _columns(columns)

    def columns(self) -> list[str]:
        return [self.cols.track, self.cols.cls]

    def optional_columns(self) -> list[str]:
        return [self.cols.stream, self.cols.frame]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        row, ev, sev, corr = consistent_groups(table, _track_keys(table, c), c.cls, True, backend)
        ctx = {"key": functools.partial(_track_context, table, c, row),
               "stream": functools.partial(_stream_context, table, c, row)}
        if table.schema.get_field_index(c.frame) >= 0:
            ctx["frame"] = functools.partial(_frame_context, table, c, row)
        return Result(row, ev, sev, table.num_rows, ctx, corr)


_registry.register("boxes.multibox", multibox, builtin=True)
_registry.register("boxes.valid", valid, builtin=True)
_registry.register("boxes.class_consistency", class_consistency, builtin=True)
