"""Frame grouping for per-frame kernels: rows of one (stream, frame) as a CSR range.

Frames need not arrive sorted: an O(n) check finds the common sorted case (no copy, no sort);
otherwise one stable sort orders rows by (stream, frame), keeping arrival order inside a frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from . import _arrow

__all__ = ["FrameGroups", "group_frames", "group_rows"]


@dataclass(frozen=True)
class FrameGroups:
    """Rows ``order[offsets[f]:offsets[f + 1]]`` form frame ``f``.

    ``order`` is ``None`` when the input is already in (stream, frame) order and every row has
    a frame (then positions are rows). Rows with a null stream or frame belong to no frame.
    """

    order: np.ndarray | None  # int64 rows in frame order
    offsets: np.ndarray  # int64, n_frames + 1
    frame: np.ndarray  # int64 frame value of each group
    stream: np.ndarray  # int64 stream code of each group (0 without a stream column)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Input rows of positions in frame order."""
        return positions if self.order is None else self.order[positions]

    def gather(self, values: np.ndarray) -> np.ndarray:
        """``values`` in frame order (a view when the input was already sorted)."""
        return values if self.order is None else values[self.order]


def group_frames(table: pa.Table, frame: str, stream: str | None) -> FrameGroups:
    """Group rows by (stream, frame); ``stream`` is ignored when ``None`` or not in the table."""
    frames = _arrow.numeric_column(table, frame, role="frame", integer=True)
    f = frames.values.astype(np.int64, copy=False)
    keep = None if frames.valid is None else frames.valid.astype(bool)
    s, n_streams = None, 1
    if stream is not None and table.schema.get_field_index(stream) >= 0:
        keys = _arrow.encode_keys(table, stream, role="stream")
        s = keys.codes.astype(np.int64, copy=False) - keys.offset
        n_streams = keys.n
        if keys.valid is not None:
            keep = keys.valid.astype(bool) if keep is None else keep & keys.valid.astype(bool)
    return group_rows(f, keep, s, n_streams)


def group_rows(f: np.ndarray, keep: np.ndarray | None, s: np.ndarray | None, n_streams: int) -> FrameGroups:
    """Group rows by (stream code ``s``, frame ``f``), both int64; rows where ``keep`` is False
    belong to no frame. ``tripwire._streaming`` calls this directly: its tables hold rows
    (carried state) that must share the stream codes of the grouped rows but join no frame."""
    from ._kernels._rows_cy import sorted_runs

    rows = None if keep is None else np.flatnonzero(keep)
    fk = f if keep is None else f[rows]
    sk = None if s is None or n_streams < 2 else (s if keep is None else s[rows])
    if len(fk) == 0:
        return FrameGroups(np.empty(0, np.int64), np.zeros(1, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))
    offsets = order = None
    if sk is not None:
        lo = int(fk.min())
        span = int(fk.max()) - lo + 1
    if sk is None or span * n_streams < 2**62:
        # one int64 key per row: frame alone, or stream * span + frame
        key = np.ascontiguousarray(fk, np.int64) if sk is None else sk * span + (fk - lo)
        offsets = sorted_runs(key)  # the common case: sorted already, no copy, no sort
        if offsets is None:
            order = np.argsort(key, kind="stable")
            offsets = sorted_runs(key[order])
    else:  # frame range too wide to combine with the stream: sort the pair
        order = np.lexsort((fk, sk))
    if order is not None:
        fk = fk[order]
        sk = None if sk is None else sk[order]
        rows = order if rows is None else rows[order]
    if offsets is None:
        change = (sk[1:] != sk[:-1]) | (fk[1:] != fk[:-1])
        offsets = np.concatenate(([0], np.flatnonzero(change) + 1, [len(fk)])).astype(np.int64)
    starts = offsets[:-1]
    group_stream = np.zeros(len(starts), np.int64) if sk is None else sk[starts].astype(np.int64)
    return FrameGroups(rows, offsets,
                       fk[starts].astype(np.int64), group_stream)
