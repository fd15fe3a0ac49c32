"""Readers for common model-output formats, producing tripwire's tables (DESIGN §2)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import InputError

__all__ = ["read_mot", "read_wfdb", "WfdbRecord"]

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


@dataclass
class WfdbRecord:
    """One lead of a WFDB record (:func:`read_wfdb`): ``signal`` float32 in physical units
    (``units``, usually mV), ``fs`` Hz; with annotations, ``ann_sample`` (int64 sample indices)
    and ``ann_symbol`` (their codes: ``N``, ``A``, ``V``, ... for beats)."""

    record: str
    fs: float
    signal: np.ndarray
    channel: str
    units: str
    ann_sample: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    ann_symbol: list = field(default_factory=list)

    def windows(self, seconds: float = 30.0, step: float | None = None, **kw) -> pa.Table:
        """This lead cut into an ``ecg`` table (``tw.ecg.windows``) with ``record`` set."""
        from .ecg import windows

        return windows(self.signal, self.fs, seconds, step, record=self.record, **kw)


_WFDB_HINT = "pip install 'tripwire[wfdb]'  (or: pip install wfdb)"


def read_wfdb(path: str | os.PathLike, *, channel: int | str = 0, annotations: str | None = None) -> WfdbRecord:
    """Read one lead of a WFDB record (PhysioNet format: ``path.hea`` + ``path.dat``), e.g. an
    MIT-BIH record, with the optional ``wfdb`` package.

    ``path`` is the record path without extension (``"data/100"``; ``"100.hea"`` works too);
    ``channel`` a lead index or name (``"MLII"``); ``annotations`` an annotator extension to
    read as well (``"atr"``: the cardiologists' beat labels). Samples are in physical units as
    float32 (non-finite where the record marks a sample invalid).
    """
    try:
        import wfdb
    except ImportError as exc:
        raise InputError("tw.io.read_wfdb needs the wfdb package, which is not installed",
                         expected="wfdb (PhysioNet's WFDB reader)", fix=f"install it: {_WFDB_HINT}") from exc
    path = os.fspath(path)
    if path.endswith((".hea", ".dat")):
        path = path[:-4]
    if not os.path.isfile(path + ".hea"):
        raise InputError(f"no WFDB header at {path + '.hea'!r}", expected="a record path without extension "
                         "(its .hea and .dat beside it)", fix="check the path, e.g. 'data/100' for data/100.hea")
    rec = wfdb.rdrecord(path)
    names = list(rec.sig_name)
    if isinstance(channel, str):
        if channel not in names:
            raise InputError(f"{path}: no lead named {channel!r}", expected=f"one of {', '.join(names)}",
                             fix="pass channel= one of those names or an index")
        idx = names.index(channel)
    elif isinstance(channel, (int, np.integer)) and not isinstance(channel, bool) and 0 <= channel < len(names):
        idx = int(channel)
    else:
        raise InputError(f"{path}: channel={channel!r}", expected=f"an index 0..{len(names) - 1} or a lead name "
                         f"({', '.join(names)})", fix="pass channel=0")
    out = WfdbRecord(record=str(rec.record_name), fs=float(rec.fs),
                     signal=np.ascontiguousarray(rec.p_signal[:, idx], np.float32), channel=names[idx],
                     units=str(rec.units[idx]))
    if annotations is not None:
        ann = wfdb.rdann(path, annotations)
        out.ann_sample = np.asarray(ann.sample, np.int64)
        out.ann_symbol = list(ann.symbol)
    return out
