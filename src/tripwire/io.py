"""Readers for common model-output formats, producing tripwire's tables (DESIGN §2)."""
from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import InputError

__all__ = ["read_mot"]

_MOT_NAMES = ["frame", "track", "left", "top", "width", "height", "conf", "x", "y", "z"]


def read_mot(path: str | os.PathLike) -> pa.Table:
    """Read a MOTChallenge CSV (``frame,id,left,top,width,height,conf,x,y,z``, no header) as a
    ``boxes`` table: ``frame`` int64, ``track`` int64, ``cls`` int32 (1: MOTChallenge files
    hold one class, pedestrians), ``score`` float32 (null where ``conf`` is -1: no score),
    ``x1 y1 x2 y2`` float32 pixels (``x2 = left + width``, ``y2 = top + height``; MOT's
    1-based pixel coordinates are kept as they are). Files with only the first 7 columns
    (some MOT16+ detections) are read too.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"no MOTChallenge file at {path!r}", expected="a MOT CSV file (gt.txt, det.txt, ...)",
                         fix="check the path")
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", "replace")
    n_cols = len(first.strip().split(",")) if first.strip() else len(_MOT_NAMES)
    if n_cols < 7:
        raise InputError(f"{path}: a MOTChallenge line has at least 7 comma-separated fields",
                         expected="frame,id,left,top,width,height,conf[,x,y,z]",
                         found=f"{n_cols} fields in the first line: {first.strip()[:80]!r}",
                         fix="pass a MOTChallenge CSV file")
    names = (_MOT_NAMES + [f"extra{i}" for i in range(n_cols - len(_MOT_NAMES))])[:n_cols]
    # read as double and round once to float32 after the sums (float32 sums would round twice)
    types = {"frame": pa.int64(), "track": pa.int64(), "left": pa.float64(), "top": pa.float64(),
             "width": pa.float64(), "height": pa.float64(), "conf": pa.float64()}
    try:
        raw = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=names),
                             convert_options=pacsv.ConvertOptions(column_types=types))
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: not a MOTChallenge CSV ({exc})",
                         expected="numeric fields frame,id,left,top,width,height,conf[,x,y,z]",
                         fix="check the file's format") from None
    left, top = raw["left"], raw["top"]
    conf = raw["conf"]
    score = pc.if_else(pc.equal(conf, -1.0), pa.scalar(None, pa.float64()), conf)

    def f32(col):
        return pc.cast(col, pa.float32(), safe=False)

    return pa.table({
        "frame": raw["frame"], "track": raw["track"],
        "cls": pa.array([1] * raw.num_rows, pa.int32()),
        "score": f32(score),
        "x1": f32(left), "y1": f32(top),
        "x2": f32(pc.add(left, raw["width"])), "y2": f32(pc.add(top, raw["height"])),
    })
