"""ECG windows: rhythm flips, signal quality and heart-rate / rhythm consistency (DESIGN §2-3).

The ``ecg`` table has one row per signal window (default column names; remap with
``tw.ECG(...)``):

- ``record`` (optional: any integer or string id; without it every row is one record),
- ``t0``: the window's start in seconds (any number, or a timestamp),
- ``fs``: its sampling rate in Hz (any number, > 0),
- ``signal``: its samples as ``list``, ``large_list`` or ``fixed_size_list`` of float32 (other
  float or integer value types are cast to float32 once). The kernels read the flat values
  buffer in place through the list offsets (zero copy for one chunk, also for a sliced list
  array); a null sample reads as NaN; a null list is a window that is not checked.
- ``label``: the model's predicted rhythm, integer or (dictionary) string,
- ``score``: the model's confidence (optional, not read).

Each assertion follows validate -> normalize -> dispatch -> kernel -> wrap; the kernels
(``kernels/_ecg_cy.pyx`` documents their contract; ``tripwire/_kernels/ecg_jit.py`` and a
GPU sibling take the same NumPy arrays) run once per batch.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _arrow, _dispatch, _registry
from ._arrow import has_column as _has
from ._assertion import Assertion, Correction, Result
from .boxes import _Names
from .errors import ColumnError, InputError

__all__ = ["ECG", "rhythm_flip", "signal_quality", "rate_consistency", "rpeaks", "windows",
           "detector_params", "QUALITY_REASONS", "N_PARAMS", "MIN_FS", "MAX_FS"]

# reason bits of the quality kernel (kernels/_ecg_cy.pyx)
QUALITY_REASONS = {1: "non-finite", 2: "amplitude out of range", 4: "flat line", 8: "clipping",
                   16: "high-frequency noise", 32: "baseline wander", 64: "low amplitude"}
N_PARAMS = 16
# the detector's band-pass (5-15 Hz) needs a sampling rate well above 30 Hz; the quality pass
# counts a second's samples in 32-bit lanes
MIN_FS = 50.0
MAX_FS = 100_000.0
# band-pass delay of the detector (measured on MIT-BIH records 100 and 101: the located peak of
# the band-passed signal lies 3-4 samples at 360 Hz after the annotated R peak)
DETECTOR_DELAY_S = 0.010


@dataclass(frozen=True)
class ECG(_Names):
    """Column names of an ``ecg`` table (``record`` and ``score`` are optional)."""

    record: str = "record"
    t0: str = "t0"
    fs: str = "fs"
    signal: str = "signal"
    label: str = "label"
    score: str = "score"


def _mapping(columns: Any) -> ECG:
    return ECG.coerce(columns, "pass e.g. tw.ECG(signal='ecg', label='rhythm')")


def _number(value: Any, param: str, kind: str, *, lo: float = 0.0, inclusive: bool = True,
            inf_ok: bool = False, example: str = "") -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    ok = ok and not math.isnan(v) and (inf_ok or math.isfinite(v)) and (v >= lo if inclusive else v > lo)
    if not ok:
        raise InputError(f"{kind}: {param}={value!r}",
                         expected=f"a number {'>=' if inclusive else '>'} {lo:g}" + (" (inf disables)" if inf_ok else ""),
                         fix=f"pass e.g. {param}={example or 1}")
    return v


def _iround(v: float) -> float:
    """Round half up (what every kernel sibling does; Python's round() rounds half to even)."""
    return float(math.floor(v + 0.5))


# ----------------------------------------------------------------------------------------------
# normalize: flat signal values, window bounds, sampling rates
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Signal:
    x: np.ndarray  # float32, contiguous (a view of the Arrow buffer when it can be)
    lo: np.ndarray  # int64 per row
    hi: np.ndarray
    valid: np.ndarray | None  # bool per row (None: every row has a list)


_SIGNAL_EXPECTED = "list<float32>, large_list<float32> or fixed_size_list<float32> (one window per row)"


def _flat_values(values: pa.Array) -> np.ndarray:
    """A list's child array as float32 (a view when float32 without nulls; nulls become NaN)."""
    typ = values.type
    if typ == pa.float32() and values.null_count == 0:
        return _arrow.primitive_view(values)[0]
    if values.null_count:
        values = pc.fill_null(values.cast(pa.float32()), math.nan)
    elif typ != pa.float32():
        values = values.cast(pa.float32(), safe=False)
    return np.asarray(values.to_numpy(zero_copy_only=False), np.float32)


def _signal(table: pa.Table, name: str) -> _Signal:
    col = _arrow.column(table, name, role="signal", expected=_SIGNAL_EXPECTED)
    typ = col.type
    is_list = pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)
    if not is_list or not (pa.types.is_floating(typ.value_type) or pa.types.is_integer(typ.value_type)):
        raise ColumnError(name, f"column {name!r} (signal) has the wrong type", expected=_SIGNAL_EXPECTED,
                          found=str(typ), fix="store each window's samples as a list, e.g. "
                          "pa.array([w.tolist() for w in windows], pa.list_(pa.float32())), or use tw.ecg.windows")
    parts_x, parts_lo, parts_hi, parts_valid = [], [], [], []
    base = 0
    for chunk in col.chunks:
        n = len(chunk)
        if pa.types.is_fixed_size_list(typ):
            size = typ.list_size
            values = chunk.values  # ignores the slice offset: index with it
            lo = (np.arange(n, dtype=np.int64) + chunk.offset) * size
            hi = lo + size
        else:
            values = chunk.values  # the whole child; offsets below are absolute into it
            off = np.asarray(chunk.offsets).astype(np.int64, copy=False)  # honours the slice offset
            lo, hi = off[:-1], off[1:]
        v = np.asarray(chunk.is_valid()).astype(bool) if chunk.null_count else None
        if v is not None:  # a null list is an empty window (and not checked)
            lo = np.where(v, lo, 0)
            hi = np.where(v, hi, 0)
        used = hi > lo
        # read only the span the windows reference (a sliced list array keeps its whole child)
        first = int(lo[used].min()) if used.any() else 0
        last = int(hi[used].max()) if used.any() else 0
        flat = _flat_values(values.slice(first, last - first)) if last > first else np.empty(0, np.float32)
        parts_x.append(flat)
        parts_lo.append(np.where(used, lo - first + base, base))
        parts_hi.append(np.where(used, hi - first + base, base))
        parts_valid.append(np.ones(n, bool) if v is None else v)
        base += len(flat)
    if len(parts_x) == 1:
        x, lo, hi = parts_x[0], parts_lo[0], parts_hi[0]
    elif parts_x:
        x = np.concatenate(parts_x)
        lo, hi = np.concatenate(parts_lo), np.concatenate(parts_hi)
    else:
        x, lo, hi = np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0, np.int64)
    valid = None if col.null_count == 0 else np.concatenate(parts_valid)
    return _Signal(np.ascontiguousarray(x, np.float32), np.ascontiguousarray(lo, np.int64),
                   np.ascontiguousarray(hi, np.int64), valid)


def _rates(table: pa.Table, name: str, kind: str, lo: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``fs`` column as float64 per row and its validity (null rows are not checked).

    A non-finite rate, or one outside (``lo`` or 0, ``MAX_FS``], is an error naming the row."""
    c = _arrow.numeric_column(table, name, role="sampling rate (Hz)")
    fs = c.values.astype(np.float64)
    valid = None if c.valid is None else c.valid.astype(bool)
    check = fs if valid is None else fs[valid]
    bad = ~(np.isfinite(check) & (check > 0) & (check >= lo) & (check <= MAX_FS))
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) if valid is None else int(np.flatnonzero(valid)[np.flatnonzero(bad)[0]])
        raise ColumnError(name, f"{kind}: row {row} has sampling rate {float(fs[row])!r}",
                          expected=f"a finite rate in [{lo:g}, {MAX_FS:g}] Hz" if lo else
                          f"a finite rate in (0, {MAX_FS:g}] Hz", found=repr(float(fs[row])),
                          fix="fix the fs column (Hz), or null it to skip the window")
    return np.ascontiguousarray(fs), valid


def _seconds(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``t0`` as float64 seconds (timestamps and durations by their unit) and its validity;
    NaN counts as null."""
    col = _arrow.column(table, name, role="window start t0", expected="seconds (a number) or a timestamp")
    typ = col.type
    scale = 1.0
    if pa.types.is_timestamp(typ) or pa.types.is_duration(typ):
        scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[typ.unit]
        col = col.cast(pa.int64())
    elif not (pa.types.is_integer(typ) or (pa.types.is_floating(typ) and not pa.types.is_float16(typ))):
        raise ColumnError(name, f"column {name!r} (window start t0) has the wrong type",
                          expected="seconds as a number, or a timestamp", found=str(typ),
                          fix=f"cast it, e.g. pc.cast(table[{name!r}], pa.float64())")
    vals, valid = _arrow.primitive_view(col)
    t = vals.astype(np.float64) * scale if scale != 1.0 else vals.astype(np.float64, copy=False)
    ok = np.isfinite(t) if valid is None else (valid.astype(bool) & np.isfinite(t))
    return np.ascontiguousarray(t), None if ok.all() else ok


def _label_matches(table: pa.Table, name: str, value: Any, param: str, kind: str) -> np.ndarray:
    """Per row: whether the label equals ``value`` (False for a null label)."""
    col = _arrow.column(table, name, role="label", expected="an integer or string rhythm label")
    typ = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
    is_str = pa.types.is_string(typ) or pa.types.is_large_string(typ)
    if not (is_str or pa.types.is_integer(typ) or pa.types.is_null(typ)):
        raise ColumnError(name, f"column {name!r} (label) has the wrong type",
                          expected="integer or (dictionary) string labels", found=str(col.type),
                          fix="cast the labels to string or integer")
    if pa.types.is_null(typ) or value is None:
        return np.zeros(len(col), bool)
    if is_str != isinstance(value, str):
        raise InputError(f"{kind}: {param}={value!r} cannot be compared with the label column {name!r} ({col.type})",
                         expected=f"{'a string' if is_str else 'an integer'} label like the column's",
                         fix=f"pass {param}= a value of the column's type (or None to skip that rule)")
    if pa.types.is_dictionary(col.type):
        col = col.cast(typ)
    eq = pc.equal(col, pa.scalar(value, typ))
    return np.asarray(pc.fill_null(eq, False).to_numpy(zero_copy_only=False), bool) if len(col) else np.zeros(0, bool)


def _check_label_value(value: Any, param: str, kind: str, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, str) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)):
        return int(value) if isinstance(value, np.integer) else value
    raise InputError(f"{kind}: {param}={value!r}", expected="a label value: a string or an integer"
                     + (" (or None)" if allow_none else ""), fix=f"pass e.g. {param}='N'")


def _context(table: pa.Table, name: str, rows: np.ndarray, typ: pa.DataType) -> pa.Array:
    if not _has(table, name):
        return pa.nulls(len(rows), typ)
    taken = table.column(name).take(pa.array(rows, pa.int64()))
    if pa.types.is_dictionary(taken.type):
        taken = taken.cast(taken.type.value_type)
    try:
        return pc.cast(taken, typ).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in taken.to_pylist()], typ)


def _t0_context(table: pa.Table, name: str, rows: np.ndarray) -> pa.Array:
    if not _has(table, name):
        return pa.nulls(len(rows), pa.float64())
    t, valid = _seconds(table, name)
    out = t[rows]
    return pa.array(out, pa.float64(), mask=None if valid is None else ~valid[rows])


def _relabel_to(table: pa.Table, column: str, value: Any, rows: np.ndarray) -> list[Correction]:
    """Set ``column`` at ``rows`` to ``value`` (cast to the column's type)."""
    if not len(rows) or not _has(table, column):
        return []
    typ = table.schema.field(column).type
    try:
        values = pa.array([value] * len(rows), typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        raise InputError(f"cannot write the label {value!r} into column {column!r} ({typ})",
                         expected="a label of the column's type", fix="pass a label value the column can hold") from None
    return [Correction("relabel", rows, column=column, values=values)]


# ----------------------------------------------------------------------------------------------
# the detector's parameters and the public helpers
# ----------------------------------------------------------------------------------------------
def _butterworth2(fc: float, fs: float, high: bool) -> list[float]:
    """2nd-order Butterworth section by the bilinear transform with prewarping:
    ``b0 b1 b2 a1 a2`` (``a0 = 1``)."""
    K = math.tan(math.pi * fc / fs)
    r2 = math.sqrt(2.0)
    norm = 1.0 / (1.0 + r2 * K + K * K)
    a1 = 2.0 * (K * K - 1.0) * norm
    a2 = (1.0 - r2 * K + K * K) * norm
    if high:
        b0, b1 = norm, -2.0 * norm
    else:
        b0 = K * K * norm
        b1 = 2.0 * b0
    return [b0, b1, b0, a1, a2]


@functools.lru_cache(maxsize=64)
def _params_row(fs: float) -> tuple[float, ...]:
    return tuple(_butterworth2(5.0, fs, True) + _butterworth2(15.0, fs, False) + [
        _iround(0.150 * fs),  # moving-integration window: 150 ms
        _iround(0.200 * fs),  # refractory period: 200 ms
        _iround(0.360 * fs),  # T-wave discrimination: 360 ms
        _iround(2.0 * fs),  # learning phase: 2 s
        _iround(1.0 * fs),  # initial RR average: 1 s (60 bpm)
        _iround(DETECTOR_DELAY_S * fs),  # band-pass delay
    ])


def detector_params(fs: Any) -> np.ndarray:
    """The R-peak detector's parameters, one row of ``N_PARAMS`` float64 per window.

    The detector (Pan-Tompkins style; the kernels implement it, ``kernels/_ecg_cy.pyx``):

    1. band-pass 5-15 Hz: a 2nd-order Butterworth high-pass at 5 Hz, then a 2nd-order
       Butterworth low-pass at 15 Hz (bilinear transform, prewarped; the filters start as if
       the signal had been constant at its first finite value; a non-finite sample reads as the
       last finite one);
    2. five-point derivative ``2y[n] + y[n-1] - y[n-3] - 2y[n-4]``, squared;
    3. moving integration over 150 ms (a running sum);
    4. candidates: local maxima of the integrated signal; thresholds from a 2 s learning
       phase (signal level 1/4 of the maximum, noise level 1/2 of the mean), then adaptive
       (``THR1 = NPKI + (SPKI - NPKI) / 4``; levels updated by 1/8 per peak); a 200 ms
       refractory period; within 360 ms of the last QRS a candidate whose steepest slope is
       below half the last QRS's is a T wave; search back (threshold ``THR1 / 2``, level
       updated by 1/4) when no QRS came for 1.66 times the mean of the last 8 RR intervals;
    5. the R peak: the largest ``|band-passed|`` sample in the 150 ms before the candidate,
       less the band-pass delay (10 ms).

    Rows: ``b0 b1 b2 a1 a2`` of the high-pass and of the low-pass, then the integration width,
    refractory period, T-wave window, learning phase, initial RR average and delay, in samples
    (rounded half up).
    """
    fs = np.asarray(fs, np.float64).reshape(-1)
    out = np.empty((len(fs), N_PARAMS), np.float64)
    for v in np.unique(fs):
        if not (math.isfinite(v) and MIN_FS <= v <= MAX_FS):
            raise InputError(f"sampling rate {v!r} Hz", expected=f"a rate in [{MIN_FS:g}, {MAX_FS:g}] Hz "
                             "(the detector's 5-15 Hz band-pass needs it)", fix="pass the signal's rate in Hz")
        out[fs == v] = _params_row(float(v))
    return out


def rpeaks(signal: Any, fs: Any, *, backend: str = "auto") -> Any:
    """R-peak sample indices (int64) found by the detector of :func:`detector_params`.

    ``signal``: a 1-D array of samples (any float or integer dtype; millivolts or ADC units
    alike: the thresholds adapt) with scalar ``fs`` -> a NumPy int64 array of indices into it.
    Or a list array / column of windows (``list<float32>`` as in the ``ecg`` table) with ``fs``
    a scalar or one rate per window -> a ``large_list<int64>`` array: each window's peaks,
    relative to its first sample (null for a null window).
    """
    if isinstance(signal, (pa.Array, pa.ChunkedArray)):
        table = pa.table({"signal": signal})
        sig = _signal(table, "signal")
        n = len(sig.lo)
        rates = np.broadcast_to(np.asarray(fs, np.float64), (n,)).copy() if np.ndim(fs) == 0 else \
            np.asarray(fs, np.float64).reshape(-1)
        if len(rates) != n:
            raise InputError(f"rpeaks: {len(rates)} sampling rates for {n} windows",
                             expected="one rate, or one per window", fix="pass fs as a number or an array per window")
        lo, hi = sig.lo.copy(), sig.hi.copy()
        if sig.valid is not None:
            hi[~sig.valid] = lo[~sig.valid]
        k = _dispatch.kernels("ecg", _dispatch.resolve(backend, len(sig.x)))
        peaks, counts = k.rpeaks(sig.x, lo, hi, detector_params(rates))
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        mask = None if sig.valid is None else pa.array(~sig.valid)
        return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(peaks, pa.int64()), mask=mask)
    x = np.asarray(signal)
    if x.ndim != 1 or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"rpeaks: signal of shape {x.shape} and dtype {x.dtype}",
                         expected="a 1-D array of numbers (or a list array of windows)",
                         fix="pass one lead, e.g. record.signal, or the ecg table's signal column")
    if np.ndim(fs) != 0:
        raise InputError(f"rpeaks: fs={fs!r}", expected="one sampling rate for a 1-D signal", fix="pass fs=360.0")
    x = np.ascontiguousarray(x, np.float32)
    k = _dispatch.kernels("ecg", _dispatch.resolve(backend, len(x)))
    peaks, _ = k.rpeaks(x, np.zeros(1, np.int64), np.array([len(x)], np.int64), detector_params([fs]))
    return peaks


def windows(signal: Any, fs: float, seconds: float = 30.0, step: float | None = None, *, record: Any = None,
            t0: float = 0.0, partial: bool = False) -> pa.Table:
    """Cut one recording into windows: an ``ecg`` table (``record`` when given, ``t0``, ``fs``,
    ``signal``).

    Windows hold ``round(seconds * fs)`` samples and start every ``round(step * fs)`` samples
    (``step`` defaults to ``seconds``: back to back); ``t0`` is ``t0 + start / fs``. A last,
    shorter window is kept only with ``partial=True``. Back-to-back windows of a float32
    array share its buffer (no copy); overlapping ones are copied. ``signal`` becomes
    ``large_list<float32>`` when it holds 2**31 values or more.
    """
    kind = "ecg.windows"
    fs = _number(fs, "fs", kind, lo=0.0, inclusive=False, example="360.0")
    seconds = _number(seconds, "seconds", kind, lo=0.0, inclusive=False, example="30")
    step = seconds if step is None else _number(step, "step", kind, lo=0.0, inclusive=False, example="10")
    t0 = _number(t0, "t0", kind, lo=-math.inf, example="0.0")
    x = np.asarray(signal)
    if x.ndim != 1 or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"{kind}: signal of shape {x.shape} and dtype {x.dtype}", expected="a 1-D array of samples",
                         fix="pass one lead, e.g. record.signal")
    x = np.ascontiguousarray(x, np.float32)
    size, hop = int(_iround(seconds * fs)), int(_iround(step * fs))
    if size < 1 or hop < 1:
        raise InputError(f"{kind}: seconds={seconds}, step={step} at fs={fs} give windows of {size} samples every "
                         f"{hop}", expected="at least one sample per window and step", fix="pass longer seconds/step")
    n = len(x)
    starts = np.arange(0, max(n - size + 1, 0), hop, dtype=np.int64)
    if partial:
        more = np.arange(len(starts) * hop, n, hop, dtype=np.int64)
        starts = np.concatenate([starts, more])
    ends = np.minimum(starts + size, n)
    big = n >= 2**31 or (len(starts) and int((ends - starts).sum()) >= 2**31)
    list_type = pa.large_list(pa.float32()) if big else pa.list_(pa.float32())
    if not len(starts):
        values, offsets = x[:0], np.zeros(1, np.int64)
    elif hop == size or np.all(starts[1:] == ends[:-1]):  # back to back: share the buffer
        values = x[starts[0]:ends[-1]]
        offsets = np.concatenate([starts - starts[0], ends[-1:] - starts[:1]])
    else:
        values = np.concatenate([x[a:b] for a, b in zip(starts, ends)])
        offsets = np.concatenate(([0], np.cumsum(ends - starts)))
    off_type = pa.int64() if big else pa.int32()
    arr_cls = pa.LargeListArray if big else pa.ListArray
    sig = arr_cls.from_arrays(pa.array(offsets.astype(np.int64 if big else np.int32), off_type),
                              pa.array(values, pa.float32()))
    cols = {}
    if record is not None:
        cols["record"] = pa.array([record] * len(starts))
    cols["t0"] = pa.array(t0 + starts / fs, pa.float64())
    cols["fs"] = pa.array(np.full(len(starts), fs), pa.float64())
    cols["signal"] = sig.cast(list_type) if sig.type != list_type else sig
    return pa.table(cols)


# ----------------------------------------------------------------------------------------------
# rhythm_flip
# ----------------------------------------------------------------------------------------------
class rhythm_flip(Assertion):
    """The predicted rhythm goes A -> B -> A within ``within_s`` seconds (the paper's ECG
    assertion for an atrial-fibrillation classifier: "the predicted class should not go
    A -> B -> A within 30 s").

    Per record, windows in ``t0`` order (rows with a null label, record or ``t0`` are left out
    of the sequence). A run is a maximal stretch of windows with one label. When a run of label
    A follows an earlier run of A in the same record, and the first window of the later run
    starts at most ``within_s`` seconds after the last window of the earlier one began, the
    windows between them (each with another label: B, or several labels) are one event.

    Severity: the number of inverted windows, as in the authors' public code: windows of
    consecutive predictions whose first and last labels agree and which hold more than one
    distinct label; here every span from a window of the earlier A run to one of the later A
    run covering at most ``within_s`` seconds (``A B A`` at 10 s spacing with 30 s has 1 such
    window of 3 predictions when the A runs are single windows, 3 when they are longer).
    Correction: ``relabel`` the windows between to A (the label of the earlier run's last window).
    Context: ``record``, ``t0``, ``label``.
    """

    kind = "ecg.rhythm_flip"
    family = "ecg"
    scope = "group"

    def __init__(self, *, within_s: float = 30.0, columns: Any = None, name: str | None = None, table: str = "ecg"):
        super().__init__(name=name, table=table)
        self.within_s = _number(within_s, "within_s", self.kind, lo=0.0, inclusive=False, example="30")
        self.cols = _mapping(columns)

    def params(self) -> dict[str, Any]:
        return {"within_s": self.within_s}

    def columns(self) -> list[str]:
        return [self.cols.t0, self.cols.label]

    def optional_columns(self) -> list[str]:
        return [self.cols.record]

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        n = table.num_rows
        labels = _arrow.encode_keys(table, c.label, role="label")
        t0, tvalid = _seconds(table, c.t0)
        keep = _arrow.and_valid(None if labels.valid is None else labels.valid.astype(bool), tvalid)
        if _has(table, c.record):
            rk = _arrow.encode_keys(table, c.record, role="record")
            rec = rk.codes  # int32 / int64 codes: their order is irrelevant, only equality
            keep = _arrow.and_valid(keep, None if rk.valid is None else rk.valid.astype(bool))
        else:
            rec = np.zeros(n, np.int32)
        rows = None if keep is None else np.flatnonzero(keep)
        lab = labels.codes if rows is None else labels.codes[rows]
        r, t = (rec, t0) if rows is None else (rec[rows], t0[rows])
        r = np.ascontiguousarray(r if r.dtype in (np.int32, np.int64) else r.astype(np.int64))
        prep = _dispatch.kernels("ecg", "cython").record_runs  # input preparation, one pass
        starts, ordered = prep(r, np.ascontiguousarray(t, np.float64))
        if not ordered:
            order = np.lexsort((t, r))  # stable: equal starts keep row order
            rows = order if rows is None else rows[order]
            lab, r, t = lab[order], r[order], t[order]
            starts, _ = prep(np.ascontiguousarray(r), np.ascontiguousarray(t, np.float64))
        rec_offsets = np.append(starts, len(r)).astype(np.int64) if len(r) else np.zeros(1, np.int64)

        def row(p: np.ndarray) -> np.ndarray:  # positions -> input rows (the identity when in order)
            return p.astype(np.int64, copy=False) if rows is None else rows[p]
        lab = np.ascontiguousarray(lab)
        if lab.dtype not in (np.int32, np.int64):
            lab = lab.astype(np.int64)
        k = _dispatch.kernels("ecg", backend)
        first, last, src, sev = k.flips(lab, int(labels.offset), max(int(labels.n), 1), rec_offsets,
                                        np.ascontiguousarray(t, np.float64), self.within_s)
        if not len(first):
            return Result.empty(n)
        counts = last - first + 1
        ev = np.repeat(np.arange(len(first), dtype=np.int64), counts)
        pos = np.repeat(first - np.concatenate(([0], np.cumsum(counts)[:-1])), counts) + np.arange(int(counts.sum()))
        vrows = row(pos)
        src_rows = row(src)[ev]
        anchors = row(first)
        # canonical order: events by their first row, rows ascending inside an event
        order = np.argsort(anchors, kind="stable")
        rank = np.empty(len(anchors), np.int64)
        rank[order] = np.arange(len(anchors))
        ev = rank[ev]
        o = np.lexsort((vrows, ev))
        out_rows, out_ev = vrows[o], ev[o]
        out_sev = sev.astype(np.float32)[order][out_ev] if len(o) else np.empty(0, np.float32)
        src_out = src_rows[o]
        return Result(out_rows, out_ev, out_sev, n, {
            "record": functools.partial(_context, table, c.record, out_rows, pa.string()),
            "t0": functools.partial(_t0_context, table, c.t0, out_rows),
            "label": functools.partial(_context, table, c.label, out_rows, pa.string()),
        }, lambda: [Correction("relabel", out_rows, column=c.label, source_rows=src_out)])


# ----------------------------------------------------------------------------------------------
# signal_quality
# ----------------------------------------------------------------------------------------------
def _reason_text(reasons: np.ndarray) -> pa.Array:
    names: dict[int, str] = {}
    out = []
    for r in reasons.tolist():
        if r not in names:
            names[r] = ", ".join(t for bit, t in QUALITY_REASONS.items() if r & bit)
        out.append(names[r])
    return pa.array(out, pa.string())


class signal_quality(Assertion):
    """A window whose signal is bad while its label is not the noise class.

    Bad samples (exact definitions in ``kernels/_ecg_cy.pyx``; a "second" is ``round(fs)``
    samples from the window's start): non-finite (NaN, inf); ``|x| > max_abs`` (amplitude out of
    range, signal units: mV by default); a flat line (a run of one value for at least
    ``flat_s`` seconds); clipping (samples on the window's lowest or highest value, when that
    rail holds at least ``clip_frac`` of the samples); high-frequency noise (a second whose mean
    ``|second difference|`` exceeds ``max_noise`` times its peak-to-peak: every sample of it);
    baseline wander (a second whose mean is more than ``max_wander`` from the window's mean:
    every sample of it); low amplitude (the window's peak-to-peak below ``min_ptp``: every
    sample). ``inf`` disables ``max_abs``, ``max_noise``, ``max_wander``; ``clip_frac > 1`` disables
    clipping, ``min_ptp = 0`` low amplitude.

    Fires when the share of bad samples is at least ``min_bad`` (and above 0) and the label is not
    ``noise`` (a null label is not noise; without a label column every bad window fires).
    Severity: the share of bad samples. Correction: ``relabel`` to ``noise``. Empty and null
    windows and windows with a null ``fs`` are not checked. Context: ``record``, ``t0``,
    ``detail`` (which checks fired).
    """

    kind = "ecg.signal_quality"
    family = "ecg"
    scope = "row"

    def __init__(self, *, noise: Any = "~", min_bad: float = 0.05, flat_s: float = 0.5, clip_frac: float = 0.02,
                 max_abs: float = 10.0, min_ptp: float = 0.05, max_noise: float = 0.1, max_wander: float = 1.0,
                 columns: Any = None, name: str | None = None, table: str = "ecg"):
        super().__init__(name=name, table=table)
        k = self.kind
        self.noise = _check_label_value(noise, "noise", k)
        self.min_bad = _number(min_bad, "min_bad", k, example="0.05")
        if self.min_bad > 1:
            raise InputError(f"{k}: min_bad={min_bad!r}", expected="a share in [0, 1]", fix="pass e.g. min_bad=0.05")
        self.flat_s = _number(flat_s, "flat_s", k, lo=0.0, inclusive=False, example="0.5")
        self.clip_frac = _number(clip_frac, "clip_frac", k, example="0.02", inf_ok=True)
        self.max_abs = _number(max_abs, "max_abs", k, lo=0.0, inclusive=False, inf_ok=True, example="10.0")
        self.min_ptp = _number(min_ptp, "min_ptp", k, example="0.05")
        self.max_noise = _number(max_noise, "max_noise", k, inf_ok=True, example="0.5")
        self.max_wander = _number(max_wander, "max_wander", k, inf_ok=True, example="2.0")
        self.cols = _mapping(columns)

    def params(self) -> dict[str, Any]:
        return {"noise": self.noise, "min_bad": self.min_bad, "flat_s": self.flat_s, "clip_frac": self.clip_frac,
                "max_abs": self.max_abs, "min_ptp": self.min_ptp, "max_noise": self.max_noise,
                "max_wander": self.max_wander}

    def columns(self) -> list[str]:
        return [self.cols.fs, self.cols.signal]

    def optional_columns(self) -> list[str]:
        return [self.cols.label, self.cols.record, self.cols.t0]

    def measure(self, table: pa.Table, backend: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per row: bad samples, reason bits, samples, and whether the window was checked."""
        c = self.cols
        sig = _signal(table, c.signal)
        fs, fvalid = _rates(table, c.fs, self.kind)
        checked = _arrow.and_valid(sig.valid, fvalid)
        lo, hi = sig.lo, sig.hi
        if checked is not None:
            lo, hi = lo.copy(), hi.copy()
            hi[~checked] = lo[~checked]
            fs = np.where(checked, fs, 1.0)
        k = _dispatch.kernels("ecg", backend)
        bad, why = k.quality(sig.x, lo, hi, np.ascontiguousarray(fs), self.flat_s, self.clip_frac, self.max_abs,
                             self.min_ptp, self.max_noise, self.max_wander)
        return bad, why, hi - lo, np.ones(len(lo), bool) if checked is None else checked

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        bad, why, n, _ = self.measure(table, backend)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, bad / np.maximum(n, 1), 0.0)
        fire = (bad > 0) & (share >= self.min_bad)
        if _has(table, c.label) and self.noise is not None:
            fire &= ~_label_matches(table, c.label, self.noise, "noise", self.kind)
        rows = np.flatnonzero(fire).astype(np.int64)
        sev = share[rows].astype(np.float32)
        reasons = why[rows]
        corr = functools.partial(_relabel_to, table, c.label, self.noise, rows) \
            if _has(table, c.label) and self.noise is not None and len(rows) else []
        return Result(rows, np.arange(len(rows), dtype=np.int64), sev, table.num_rows, {
            "record": functools.partial(_context, table, c.record, rows, pa.string()),
            "t0": functools.partial(_t0_context, table, c.t0, rows),
            "detail": functools.partial(_reason_text, reasons),
        }, corr)


# ----------------------------------------------------------------------------------------------
# rate_consistency
# ----------------------------------------------------------------------------------------------
class rate_consistency(Assertion):
    """Heart rate and RR regularity, from R peaks found inside the kernel, against the label.

    Per window, the detector of :func:`detector_params` (also :func:`rpeaks`) finds R peaks;
    RR intervals are the gaps between consecutive peaks. Fires when:

    - the heart rate ``60 / mean RR`` is below ``min_bpm`` or above ``max_bpm`` (severity:
      the relative distance, ``(min_bpm - hr) / min_bpm`` or ``(hr - max_bpm) / max_bpm``); a
      window of at least ``2 * 60 / min_bpm`` seconds with fewer than 2 peaks counts as below
      (severity 1); a shorter window with fewer than 2 peaks is not judged;
    - with at least ``min_beats`` peaks, the RR irregularity contradicts the label: labelled
      ``af`` with irregularity below ``af_min`` (severity ``(af_min - irr) / af_min``), or
      labelled ``normal`` with irregularity above ``normal_max`` (severity
      ``(irr - normal_max) / normal_max``). Irregularity is ``"madsd"`` (default: the median
      |successive RR difference| over the median RR; an isolated ectopic beat moves it little,
      while atrial fibrillation's irregularly irregular rhythm moves it much), ``"rmssd"`` (root
      mean square of successive RR differences over the mean RR) or ``"cv"`` (standard deviation
      of RR over the mean). The defaults separate the bundled data on 30 s windows: real MIT-BIH
      windows reach 0.05 (madsd), AF-like ones start at 0.2. ``af=None`` / ``normal=None`` skip
      that rule; a null label is neither.

    Severity is the largest that applies. No correction (a contradiction says the label or the
    signal is wrong, not which label is right). Empty and null windows and windows with a null
    ``fs`` are not checked; ``fs`` must be at least 50 Hz. Context: ``record``, ``t0``, ``hr``
    (bpm), ``irregularity``, ``beats``, ``detail``.
    """

    kind = "ecg.rate_consistency"
    family = "ecg"
    scope = "row"

    def __init__(self, *, min_bpm: float = 30.0, max_bpm: float = 220.0, af: Any = "A", normal: Any = "N",
                 irregularity: str = "madsd", af_min: float = 0.08, normal_max: float = 0.2, min_beats: int = 8,
                 columns: Any = None, name: str | None = None, table: str = "ecg"):
        super().__init__(name=name, table=table)
        k = self.kind
        self.min_bpm = _number(min_bpm, "min_bpm", k, lo=0.0, inclusive=False, example="30")
        self.max_bpm = _number(max_bpm, "max_bpm", k, lo=0.0, inclusive=False, inf_ok=True, example="220")
        if self.max_bpm <= self.min_bpm:
            raise InputError(f"{k}: min_bpm={min_bpm!r}, max_bpm={max_bpm!r}", expected="min_bpm < max_bpm",
                             fix="pass e.g. min_bpm=30, max_bpm=220")
        self.af = _check_label_value(af, "af", k)
        self.normal = _check_label_value(normal, "normal", k)
        if irregularity not in ("madsd", "rmssd", "cv"):
            raise InputError(f"{k}: irregularity={irregularity!r}", expected="'madsd', 'rmssd' or 'cv'",
                             fix="pass irregularity='madsd'")
        self.irregularity = irregularity
        self.af_min = _number(af_min, "af_min", k, example="0.08")
        self.normal_max = _number(normal_max, "normal_max", k, lo=0.0, inclusive=False, inf_ok=True, example="0.2")
        if isinstance(min_beats, bool) or not isinstance(min_beats, (int, np.integer)) or min_beats < 3:
            raise InputError(f"{k}: min_beats={min_beats!r}", expected="an integer >= 3", fix="pass e.g. min_beats=8")
        self.min_beats = int(min_beats)
        self.cols = _mapping(columns)

    def params(self) -> dict[str, Any]:
        return {"min_bpm": self.min_bpm, "max_bpm": self.max_bpm, "af": self.af, "normal": self.normal,
                "irregularity": self.irregularity, "af_min": self.af_min, "normal_max": self.normal_max,
                "min_beats": self.min_beats}

    def columns(self) -> list[str]:
        return [self.cols.fs, self.cols.signal]

    def optional_columns(self) -> list[str]:
        return [self.cols.label, self.cols.record, self.cols.t0]

    def measure(self, table: pa.Table, backend: str) -> dict[str, np.ndarray]:
        """Per row: ``beats``, ``hr`` (bpm), ``cv``, ``rmssd``, ``madsd``, ``seconds``, ``checked``."""
        c = self.cols
        sig = _signal(table, c.signal)
        fs, fvalid = _rates(table, c.fs, self.kind, lo=MIN_FS)
        checked = _arrow.and_valid(sig.valid, fvalid)
        lo, hi = sig.lo, sig.hi
        if checked is not None:
            lo, hi = lo.copy(), hi.copy()
            hi[~checked] = lo[~checked]
            fs = np.where(checked, fs, 360.0)
        k = _dispatch.kernels("ecg", backend)
        beats, mean_rr, cv, rmssd, madsd = k.rr_stats(sig.x, lo, hi, detector_params(fs))
        with np.errstate(invalid="ignore", divide="ignore"):
            hr = 60.0 * fs / mean_rr
        return {"beats": beats, "hr": hr, "cv": cv, "rmssd": rmssd, "madsd": madsd, "seconds": (hi - lo) / fs,
                "checked": (np.ones(len(lo), bool) if checked is None else checked) & (hi > lo)}

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        c = self.cols
        m = self.measure(table, backend)
        n = table.num_rows
        beats, hr, ok = m["beats"], m["hr"], m["checked"]
        irr = m[self.irregularity]
        sev = np.zeros(n, np.float64)
        why = np.zeros(n, np.int8)  # 1 slow, 2 fast, 3 no beats, 4 AF regular, 5 normal irregular
        with np.errstate(invalid="ignore"):
            two = ok & (beats >= 2)
            slow = two & (hr < self.min_bpm)
            fast = two & (hr > self.max_bpm)
            none = ok & (beats < 2) & (m["seconds"] >= 2 * 60.0 / self.min_bpm)
            s_slow = np.where(slow, (self.min_bpm - hr) / self.min_bpm, 0.0)
            s_fast = np.where(fast, (hr - self.max_bpm) / self.max_bpm, 0.0)
            s_none = np.where(none, 1.0, 0.0)
            judged = ok & (beats >= self.min_beats) & np.isfinite(irr)
            s_af = np.zeros(n)
            s_nr = np.zeros(n)
            if _has(table, c.label):
                if self.af is not None and self.af_min > 0:
                    is_af = _label_matches(table, c.label, self.af, "af", self.kind)
                    s_af = np.where(judged & is_af & (irr < self.af_min), (self.af_min - irr) / self.af_min, 0.0)
                if self.normal is not None and math.isfinite(self.normal_max):
                    is_n = _label_matches(table, c.label, self.normal, "normal", self.kind)
                    s_nr = np.where(judged & is_n & (irr > self.normal_max),
                                    (irr - self.normal_max) / self.normal_max, 0.0)
        for code, s in ((1, s_slow), (2, s_fast), (3, s_none), (4, s_af), (5, s_nr)):
            better = s > sev
            sev = np.where(better, s, sev)
            why = np.where(better, code, why)
        rows = np.flatnonzero(sev > 0).astype(np.int64)
        texts = {1: f"heart rate below {self.min_bpm:g} bpm", 2: f"heart rate above {self.max_bpm:g} bpm",
                 3: "fewer than 2 beats", 4: f"label {self.af!r} with regular RR ({self.irregularity})",
                 5: f"label {self.normal!r} with irregular RR ({self.irregularity})"}
        return Result(rows, np.arange(len(rows), dtype=np.int64), np.maximum(sev[rows], 1e-6).astype(np.float32), n, {
            "record": functools.partial(_context, table, c.record, rows, pa.string()),
            "t0": functools.partial(_t0_context, table, c.t0, rows),
            "hr": functools.partial(pa.array, hr[rows], pa.float64()),
            "irregularity": functools.partial(pa.array, irr[rows], pa.float64()),
            "beats": functools.partial(pa.array, beats[rows], pa.int64()),
            "detail": lambda: pa.array([texts[int(w)] for w in why[rows]], pa.string()),
        })


_registry.register("ecg.rhythm_flip", rhythm_flip, builtin=True)
_registry.register("ecg.signal_quality", signal_quality, builtin=True)
_registry.register("ecg.rate_consistency", rate_consistency, builtin=True)
