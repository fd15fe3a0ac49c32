"""How each assertion carries state between ``Monitor.observe`` calls (DESIGN §5).

Caller: :class:`tripwire.monitor.Monitor`, which builds one adapter per assertion from the
first batch's schema. Every adapter re-uses the assertion's own batch ``evaluate`` on the rows
it holds back plus the new rows, so a stream checked batch by batch gives exactly the
violations ``Suite.check`` gives on the whole table. What an adapter holds back is what the
assertion still needs:

=================  ==========================================================================
``Stateless``      nothing (per-row checks: ``rows.check``, ``boxes.valid``, row UDFs)
``ByFrame``        the newest ("open") frame of each stream, until a later frame arrives
``LastPerTrack``   the last box of each track seen in the last ``max_gap + 1`` frames
                   (``boxes.flicker`` by track id)
``ByIdentity``     every row of an identity until it has been quiet for ``horizon`` rows
                   (per-identity checks: ``rows.consistent``, ``rows.contiguous``,
                   ``boxes.class_consistency``, ``boxes.appear`` by track, group UDFs)
``ByObject``       the open frame of each stream, the last box of each object a later box
                   can still continue, and (``appear``) the boxes of objects younger than
                   ``min_frames`` (``boxes.flicker`` and ``boxes.appear`` by IoU)
``Whole``          every row, checked at ``flush`` (assertions without an adapter)
=================  ==========================================================================

Global row numbers ride along in a ``__tw_row`` column, so violations name rows of the whole
stream (the concatenation of the accepted batches), whatever was held back.

On the Cython backend, ``boxes.multibox``, ``boxes.flicker`` and ``boxes.appear`` (by track
or by IoU), ``boxes.class_consistency`` and ``boxes.valid`` (sharing one column mapping) skip
their adapters: :class:`NativeBoxes` checks them all in one native call per batch
(``tripwire._kernels._monitor_cy.BoxEngine``: the newest frame per stream, the last box per
track, the active objects per stream and young objects' boxes, per-track records until quiet
for ``horizon`` rows, and the stream clock kept in place; IoU matching shares ``match_frame``
with the batch ``associate``), with the same results. ``rows.consistent`` and ``rows.contiguous`` on the Cython backend skip
``ByIdentity`` too: :class:`NativeRows` feeds each batch once to a native engine per id column
(``tripwire._kernels._monitor_rows_cy.RowsEngine``: per identity its distinct attribute values
with counts and first rows, its presences packed about two bytes per row, judged once quiet
for ``horizon`` rows or at flush), with the same results.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _arrow, _dispatch
from . import _frames as _frames_mod
from ._frames import group_rows
from ._assertion import Assertion, Result, canonical_events
from .errors import InputError

__all__ = ["Adapter", "OutOfOrder", "adapter_for", "ROW"]

ROW = "__tw_row"


class OutOfOrder(InputError):
    """A batch holds a frame older than one its stream already delivered."""


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary columns as their values: batches may carry different dictionaries."""
    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col


def _concat(parts: list[pa.Table]) -> pa.Table:
    if len(parts) == 1:
        return parts[0]
    try:
        out = pa.concat_tables(parts, promote_options="permissive")
        # held-back rows are re-filtered every batch: without this, chunks pile up one per batch
        return out.combine_chunks() if out.column(0).num_chunks > 16 else out
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise InputError("this batch's columns do not match earlier batches'",
                         expected=f"the schema {parts[0].schema.remove(parts[0].schema.get_field_index(ROW))}",
                         found=str(parts[-1].schema), fix="send every batch with the same column types") from e


_TAKE_WHOLE_MAX = 8192  # rows: below this, one take on the concatenated table is cheaper


def _take(whole: pa.Table, parts: list[pa.Table], *rows: np.ndarray) -> list[pa.Table | None]:
    """For each of ``rows`` (row numbers of ``whole``, the concatenation of ``parts``, in any
    order), those rows: one take, then zero-copy slices. On a large ``whole`` the take goes
    part by part: a take on the concatenated table first copies every chunk into one (the
    whole batch, on every call)."""
    every = np.concatenate(rows)
    if len(every) == 0:
        return [None] * len(rows)
    if whole.num_rows <= _TAKE_WHOLE_MAX:
        got = whole.take(pa.array(every))
    else:
        uniq, back = np.unique(every, return_inverse=True)  # few rows: the state kept
        bounds = np.cumsum([0] + [p.num_rows for p in parts])
        out = []
        for p, lo, hi in zip(parts, bounds[:-1], bounds[1:]):
            i, j = np.searchsorted(uniq, [lo, hi])
            if j > i:
                out.append(p.take(pa.array(uniq[i:j] - lo)))
        got = _concat(out).combine_chunks().take(pa.array(back))
    ends = np.cumsum([0] + [len(r) for r in rows])
    return [got.slice(a, b - a) if b > a else None for a, b in zip(ends[:-1], ends[1:])]


def _globalize(r: Result, table: pa.Table, n_checked: int) -> Result:
    """``r`` (rows of ``table``) with rows renumbered to the stream's global rows; weak labels
    are dropped: they need the whole input, which a monitor does not keep."""
    rows_map = _arrow.primitive_view(table.column(ROW))[0]
    return Result(rows_map[r.rows].astype(np.int64), r.events, r.severity, n_checked, r.context, [])


def _stream_codes(table: pa.Table, stream: str | None) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Dense stream code per row (all 0 without a stream column), the number of codes, and
    the row validity."""
    if stream is None or table.schema.get_field_index(stream) < 0:
        return np.zeros(table.num_rows, np.int64), 1, None
    return _code_count_valid(_arrow.encode_keys(table, stream, role="stream"))


def _code_count_valid(keys: _arrow.Keys) -> tuple[np.ndarray, int, np.ndarray | None]:
    codes, valid = keys.dense()
    return codes, max(keys.n, 1), valid


def _first_rows(codes: np.ndarray, n: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The codes present among ``rows`` (ascending) and the first of ``rows`` holding each."""
    first = np.full(n, -1, np.int64)
    first[codes[rows][::-1]] = rows[::-1]
    present = np.flatnonzero(first >= 0)
    return present, first[present]


def _in_streams(table: pa.Table, stream: str, streams: Any) -> pa.ChunkedArray:
    """Whether each row's stream is one of ``streams`` (a null stream: no)."""
    hit = pc.is_in(_plain(table.column(stream)), value_set=pa.array(list(streams)))
    return pc.fill_null(hit, False)


def _frames(table: pa.Table, frame: str) -> tuple[np.ndarray, np.ndarray | None]:
    col = _arrow.numeric_column(table, frame, role="frame", integer=True)
    return col.values.astype(np.int64, copy=False), None if col.valid is None else col.valid.astype(bool)


def _ordered_across(tables: list[pa.Table], whole: pa.Table, columns: set) -> bool:
    """Whether each stream's frames come in order across ``tables`` (``whole``: them
    concatenated, in one chunk), as the monitor requires of separate batches: no frame older
    than the newest of the stream's earlier batches. Inside one batch any order is allowed, so
    a gathered batch would accept late frames that separate ones are refused for. (The native
    box engine checks its own columns in its pass over the batch; this is for the others.)"""
    k = len(tables)
    batch = np.repeat(np.arange(k, dtype=np.int64), [t.num_rows for t in tables])
    for stream, frame in columns:
        codes, _, svalid = _stream_codes(whole, stream)
        frames, fvalid = _frames(whole, frame)
        ok = _arrow.and_valid(fvalid, svalid)
        key = codes * k + batch  # (stream, batch): batches in arrival order within a stream
        if ok is not None:
            key, frames = key[ok], frames[ok]
        if len(key) == 0:
            continue
        order = np.argsort(key, kind="stable")
        key, frames = key[order], frames[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        lo, hi = np.minimum.reduceat(frames, starts), np.maximum.reduceat(frames, starts)
        s = key[starts] // k
        # pairwise suffices: each batch's newest is >= its oldest >= the previous batches' newest
        if ((s[1:] == s[:-1]) & (lo[1:] < hi[:-1])).any():
            return False
    return True


def _group_reduce(ufunc: np.ufunc, codes: np.ndarray, n: int, values: np.ndarray,
                  ok: np.ndarray | None) -> np.ndarray:
    """``ufunc`` (``np.maximum`` / ``np.minimum``) of ``values`` per code (rows where ``ok``);
    codes without rows hold the identity of the reduction's opposite end."""
    info = np.iinfo(np.int64)
    out = np.full(n, info.min if ufunc is np.maximum else info.max, np.int64)
    if ok is not None:
        codes, values = codes[ok], values[ok]
    if len(values) == 0:
        return out
    if n == 1:  # one stream (the common case): a plain reduction, no scatter
        out[0] = ufunc.reduce(values)
    else:
        ufunc.at(out, codes, values)
    return out


def _split(table: pa.Table, keep: np.ndarray) -> tuple[pa.Table, list[pa.Table]]:
    """(rows not kept, [rows kept]); zero-copy slices when the kept rows are a tail (frames in
    order: the newest frame comes last)."""
    n = len(keep)
    k = int(np.argmax(keep)) if n and keep[-1] else n
    if keep[k:].all() and not keep[:k].any():
        return table.slice(0, k), [table.slice(k)]
    return table.filter(pa.array(~keep)), [table.filter(pa.array(keep))]


class _StreamClock:
    """The newest frame of each stream delivered so far (and the oldest, for ``appear``).

    Frames of one stream must arrive in order across batches (within one batch, any order):
    a batch holding a frame older than its stream's newest is refused, since state about the
    frames it belongs among may already be gone."""

    def __init__(self, stream: str | None, frame: str):
        self.stream, self.frame = stream, frame
        self.newest: dict[Any, int] = {}
        self.oldest: dict[Any, int] = {}

    def extents(self, table: pa.Table, frames: np.ndarray, codes: np.ndarray, n: int,
                ok: np.ndarray | None, start: int = 0) -> dict[Any, tuple[int, int]]:
        """Oldest and newest frame of each stream among rows ``start..`` of ``table`` (rows
        without both: none); ``frames``, ``codes`` (dense, ``n`` of them) and ``ok`` are the
        table's, as the adapter read them."""
        rows = np.arange(start, table.num_rows)
        if ok is not None:
            rows = rows[ok[start:]]
        if len(rows) == 0:
            return {}
        lo = _group_reduce(np.minimum, codes[rows], n, frames[rows], None)
        hi = _group_reduce(np.maximum, codes[rows], n, frames[rows], None)
        if self.stream is None or table.schema.get_field_index(self.stream) < 0:
            return {None: (int(lo[0]), int(hi[0]))}
        present, first = _first_rows(codes, n, rows)  # a row of each stream, to read its value
        values = _plain(table.column(self.stream)).take(pa.array(first)).to_pylist()
        return {v: (int(lo[c]), int(hi[c])) for v, c in zip(values, present)}

    def advance(self, table: pa.Table, frames: np.ndarray, codes: np.ndarray, n: int,
                ok: np.ndarray | None, start: int = 0) -> tuple[dict, dict]:
        """The changes rows ``start..`` of ``table`` make to the clock (not applied: the monitor
        commits once every adapter accepted the batch). Raises :class:`OutOfOrder` on a late
        frame."""
        newest, oldest = {}, {}
        for s, (lo, hi) in self.extents(table, frames, codes, n, ok, start).items():
            prev = self.newest.get(s)
            if prev is not None and lo < prev:
                where = "" if s is None else f" of stream {s!r}"
                raise OutOfOrder(f"frame {lo}{where} arrived after frame {prev}",
                                 expected="the frames of each stream in order across batches "
                                          "(any order inside one batch)",
                                 fix="send each stream's frames in order, or check unordered data "
                                     "with Suite.check / tripwire scan")
            newest[s] = hi if prev is None else max(prev, hi)
            if s not in self.oldest:
                oldest[s] = lo
        return newest, oldest

    def forget(self, streams: Any = None) -> None:
        """Forget ``streams`` (every stream when ``None``)."""
        if streams is None:
            self.newest.clear()
            self.oldest.clear()
        for s in streams or ():
            self.newest.pop(s, None)
            self.oldest.pop(s, None)


class Adapter:
    """Base: hold nothing, check each batch on its own."""


    def __init__(self, a: Assertion, needed: list[str], stream: str | None = None):
        self.a = a
        self.needed = needed  # columns kept for the assertion (and its context)
        self.stream = stream  # the stream column, when the assertion has one
        self.kept: list[pa.Table] = []

    # -- state ---------------------------------------------------------------------------
    def snapshot(self) -> Any:
        return self.__dict__.copy()  # state is replaced, not changed in place

    def restore(self, state: Any) -> None:
        self.__dict__.update(state)

    @property
    def kept(self) -> list[pa.Table]:
        return self._kept

    @kept.setter
    def kept(self, parts: list[pa.Table]) -> None:
        self._kept = parts
        self._n_kept = sum(t.num_rows for t in parts)

    def _hold(self, t: pa.Table) -> None:
        """Append ``t`` to what is held back (in O(1): one small batch per request is common)."""
        parts = self._kept + [t]
        if len(parts) > 64:
            parts = [_concat(parts).combine_chunks()]
        self._kept = parts
        self._n_kept += t.num_rows

    def retained_rows(self) -> int:
        return self._n_kept

    def _tagged(self, table: pa.Table, offset: int) -> pa.Table:
        names = [c for c in table.column_names if c in self.needed]
        t = table.select(names)
        return t.append_column(ROW, pa.array(np.arange(offset, offset + table.num_rows, dtype=np.int64)))

    # -- work ----------------------------------------------------------------------------
    def observe(self, table: pa.Table, offset: int, backend: str) -> Result | None:
        """The violations ``table`` (rows from ``offset`` on) completes; ``None``: none."""
        r = self.a.evaluate(table, backend)
        return Result(r.rows + offset, r.events, r.severity, table.num_rows, r.context, [])

    def flush(self, backend: str, streams: set | None = None) -> Result:
        """Check what is held back (of ``streams`` only, when given) and forget it."""
        return Result.empty(0)

    def commit(self) -> None:
        """The batch was accepted by every adapter: apply pending clock changes."""


class _Ordered(Adapter):
    """An adapter whose streams must deliver frames in order."""

    def __init__(self, a: Assertion, needed: list[str], stream: str | None, frame: str):
        super().__init__(a, needed, stream)
        self.frame = frame
        self.clock = _StreamClock(stream, frame)
        self._pending: tuple[dict, dict] | None = None
        self.clock_source: NativeBoxes | None = None  # a shared clock over the same columns

    def _read(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
        """Frame numbers, dense stream codes, their count, and the rows that have both."""
        frames, fvalid = _frames(table, self.frame)
        codes, n, svalid = _stream_codes(table, self.stream)
        return frames, codes, n, _arrow.and_valid(fvalid, svalid)

    def _with_held(self, t: pa.Table) -> pa.Table:
        """The held-back rows, then ``t``. The batch's frame column is checked first: a wrong
        type there is the batch's column error, not a change of schema."""
        _frames(t, self.frame)
        return _concat(self.kept + [t])

    def _advance(self, table: pa.Table, frames: np.ndarray, codes: np.ndarray, n: int,
                 ok: np.ndarray | None, start: int = 0) -> None:
        """Check the frames of rows ``start..`` against the clock; the update waits for commit."""
        self._pending = self.clock.advance(table, frames, codes, n, ok, start)

    def _clock_now(self) -> tuple[dict, dict]:
        """(newest, oldest) per stream, with the batch being observed (not yet committed)."""
        if self.clock_source is not None:
            return self.clock_source.clock()
        if self._pending is None:
            return self.clock.newest, self.clock.oldest
        return {**self.clock.newest, **self._pending[0]}, {**self.clock.oldest, **self._pending[1]}

    def commit(self) -> None:
        if self._pending is not None:
            self.clock.newest.update(self._pending[0])
            self.clock.oldest.update(self._pending[1])
            self._pending = None

    def _split_streams(self, streams: set | None) -> tuple[pa.Table | None, list[pa.Table]]:
        """Held-back rows of ``streams`` (all when ``None``) and the rest."""
        if not self.kept:
            return None, []
        whole = _concat(self.kept)
        if streams is None:
            return whole, []
        if self.stream is None or whole.schema.get_field_index(self.stream) < 0:
            return None, self.kept  # rows without a stream end only at a full flush
        hit = _in_streams(whole, self.stream, streams)
        return whole.filter(hit), [whole.filter(pc.invert(hit))]

    def flush(self, backend: str, streams: set | None = None) -> Result:
        out, self.kept = self._split_streams(streams)
        result = Result.empty(0)
        if out is not None and out.num_rows:
            result = _globalize(self._evaluate_held(out, backend), out, 0)
        self.clock.forget(streams)
        return result

    def _evaluate_held(self, table: pa.Table, backend: str) -> Result:
        return self.a.evaluate(table, backend)


class ByFrame(_Ordered):
    """Per-frame checks (``boxes.multibox``): a frame is complete once a later frame of its
    stream arrives, so the newest frame of each stream is held back."""


    def observe(self, table: pa.Table, offset: int, backend: str) -> Result:
        t = self._tagged(table, offset)
        whole = self._with_held(t)
        frames, codes, n_streams, ok = self._read(whole)
        self._advance(whole, frames, codes, n_streams, ok, whole.num_rows - t.num_rows)
        newest = _group_reduce(np.maximum, codes, n_streams, frames, ok)
        open_ = frames == (newest[0] if n_streams == 1 else newest[codes])
        if ok is not None:
            open_ &= ok  # rows without a frame or stream belong to no frame: nothing to wait for
        done, self.kept = _split(whole, open_)
        if done.num_rows == 0:
            return Result.empty(table.num_rows)
        return _globalize(self.a.evaluate(done, backend), done, table.num_rows)


class LastPerTrack(_Ordered):
    """``boxes.flicker`` by track id: a gap is found when the box after it arrives, so each
    track's last box is held back while a gap from it can still close (``max_gap + 1``
    frames)."""


    def observe(self, table: pa.Table, offset: int, backend: str) -> Result:
        from .boxes import _stream_track_keys

        t = self._tagged(table, offset)
        whole = self._with_held(t)
        keys, streams, _ = _stream_track_keys(whole, self.a.cols)
        codes, kvalid = keys.dense()
        frames, fvalid = _frames(whole, self.frame)
        s_codes, n_streams, svalid = (np.zeros(whole.num_rows, np.int64), 1, None) if streams is None \
            else _code_count_valid(streams)
        okf = _arrow.and_valid(fvalid, svalid)
        self._advance(whole, frames, s_codes, n_streams, okf, whole.num_rows - t.num_rows)
        result = _globalize(self.a.evaluate(whole, backend), whole, table.num_rows)
        ok = _arrow.and_valid(kvalid, okf)
        newest = _group_reduce(np.maximum, s_codes, n_streams, frames, ok)
        n_keys = max(keys.n, 1)
        # the last box of each track: the greatest (frame, row). With each track's frames in
        # row order (the common case) that is its last row: no sort
        last_row = _group_reduce(np.maximum, codes, n_keys, np.arange(whole.num_rows), ok)
        last = last_row[last_row >= 0]
        top = _group_reduce(np.maximum, codes, n_keys, frames, ok)
        if not (frames[last] == top[codes[last]]).all():
            idx = np.arange(whole.num_rows) if ok is None else np.flatnonzero(ok)
            order = idx[np.lexsort((idx, frames[idx], codes[idx]))]
            last = order[np.r_[codes[order][1:] != codes[order][:-1], True]] if len(order) else order
        last = last[frames[last] >= newest[s_codes[last]] - self.a.max_gap - 1]
        self.kept = [whole.take(pa.array(np.sort(last)))]
        return result

    def flush(self, backend: str, streams: set | None = None) -> Result:
        _, self.kept = self._split_streams(streams)  # a gap needs the box after it: none to find
        self.clock.forget(streams)
        return Result.empty(0)


class ByIdentity(_Ordered):
    """Per-identity checks: an identity's rows are held back until it has been quiet for
    ``horizon`` rows of the stream of batches, then checked together (``horizon=None``:
    until ``flush``). ``appear`` also needs its stream's first and last frame: rows are only
    judged once their stream has moved past them, against sentinel rows at those frames."""


    def __init__(self, a: Assertion, needed: list[str], stream: str | None, keys_of, horizon: int | None,
                 frame: str | None = None, track: str | None = None):
        super().__init__(a, needed, stream, frame or "")
        self.keys_of, self.horizon, self.track = keys_of, horizon, track
        self.ordered = frame is not None  # appear: frames must come in order, bounds matter
        self.next_check = horizon
        # batches held as they came (no copy, no row column) until the next check: most
        # batches are only held, and tagging each one cost more than the check
        self.raw: list[tuple[pa.Table, int]] = []
        self.n_raw = 0

    def snapshot(self) -> Any:
        return self.__dict__.copy(), len(self.raw)

    def restore(self, state: Any) -> None:
        saved, n_raw = state
        self.__dict__.update(saved)
        del self.raw[n_raw:]  # appended to in place

    def retained_rows(self) -> int:
        return self._n_kept + self.n_raw

    def _materialize(self) -> None:
        """The raw batches, tagged with their global rows, as one held table."""
        if not self.raw:
            return
        tables = [t for t, _ in self.raw]
        names = [c for c in tables[0].column_names if c in self.needed]
        whole = pa.concat_tables(tables).select(names) if len(tables) > 1 else tables[0].select(names)
        lengths = np.array([t.num_rows for t in tables], np.int64)
        starts = np.array([o for _, o in self.raw], np.int64)
        rows = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        self.raw, self.n_raw = [], 0
        self._hold(whole.append_column(ROW, pa.array(rows)).combine_chunks())

    def observe(self, table: pa.Table, offset: int, backend: str) -> Result:
        if self.ordered and self.clock_source is None:
            t = self._tagged(table, offset)
            self._advance(t, *self._read(t))
            self._hold(t)
        elif self.raw and table.schema.equals(self.raw[0][0].schema):
            self.raw.append((table, offset))
            self.n_raw += table.num_rows
            if len(self.raw) >= 1024:
                self._materialize()
        else:  # a first batch, or a new schema: tagged now, so a mismatch is this batch's error
            self._materialize()
            if self.kept:
                _concat(self.kept + [self._tagged(table.slice(0, 0), offset)])
            self.raw = [(table, offset)]
            self.n_raw = table.num_rows
        if self.next_check is None or self.retained_rows() < self.next_check:
            return None  # held: nothing to report (the monitor's empty result)
        self._materialize()
        whole = _concat(self.kept)
        keys = self.keys_of(whole)
        codes, valid = keys.dense()
        rows = _arrow.primitive_view(whole.column(ROW))[0]
        last = _group_reduce(np.maximum, codes, max(keys.n, 1), rows, valid)
        quiet = last < offset + table.num_rows - self.horizon  # quiet for horizon rows observed
        closed = quiet[codes]
        if self.ordered:  # appear: only once the stream has moved past the identity's last frame
            frames, s_codes, n_streams, okf = self._read(whole)
            newest = _group_reduce(np.maximum, s_codes, n_streams, frames, okf)
            last_frame = _group_reduce(np.maximum, codes, max(keys.n, 1), frames, _arrow.and_valid(valid, okf))
            closed &= last_frame[codes] < (newest[0] if n_streams == 1 else newest[s_codes])
        if valid is not None:
            closed |= ~valid  # rows without an identity are never checked
        done, self.kept = _split(whole, ~closed)
        # check again once as many rows again have come (amortized O(1) per row)
        self.next_check = max(self.retained_rows() * 2, self.horizon)
        if done.num_rows == 0:
            return Result.empty(table.num_rows)
        return _globalize(self._evaluate_held(done, backend), done, table.num_rows)

    def flush(self, backend: str, streams: set | None = None) -> Result:
        self._materialize()
        return super().flush(backend, streams)

    def _evaluate_held(self, table: pa.Table, backend: str) -> Result:
        if not self.ordered:
            return self.a.evaluate(table, backend)
        return self.a.evaluate(self._with_bounds(table), backend)

    def _with_bounds(self, table: pa.Table) -> pa.Table:
        """``table`` plus, per stream, two rows without a track at the stream's first and
        newest frame: ``appear`` judges objects against those bounds, which the held-back
        rows alone no longer show."""
        if table.num_rows == 0:
            return table
        if self.stream is not None and table.schema.get_field_index(self.stream) >= 0:
            codes, n, valid = _stream_codes(table, self.stream)
            present, first = _first_rows(codes, n, np.arange(table.num_rows) if valid is None
                                         else np.flatnonzero(valid))
            row_of = dict(zip(_plain(table.column(self.stream)).take(pa.array(first)).to_pylist(), first.tolist()))
        else:
            row_of = {None: 0}
        extra, frames = [], []
        newest, oldest = self._clock_now()
        for s, hi in newest.items():
            where = row_of.get(s)
            if where is None:
                continue
            extra += [where, where]
            frames += [oldest[s], hi]
        if not extra:
            return table
        bounds = table.take(pa.array(extra, pa.int64()))
        i = bounds.schema.get_field_index(self.frame)
        bounds = bounds.set_column(i, self.frame, pa.array(frames).cast(bounds.schema.field(i).type))
        i = bounds.schema.get_field_index(self.track)
        bounds = bounds.set_column(i, self.track, pa.nulls(len(extra), bounds.schema.field(i).type))
        i = bounds.schema.get_field_index(ROW)
        bounds = bounds.set_column(i, ROW, pa.array(np.full(len(extra), -1, np.int64)))
        return pa.concat_tables([table, bounds])


_ALL = object()  # ``ByObject._link(final=_ALL)``: every stream ends (a full flush)
_NO_ROWS = np.empty(0, np.int64)


class ByObject(_Ordered):
    """``boxes.flicker`` and ``boxes.appear`` by IoU identity: association goes on from where
    the last batch left it (``associate`` seeded with each stream's active objects), so state
    is what a later box can still link to. Held back:

    - the newest frame of each stream (its boxes must be matched in one greedy round, as the
      batch check matches them), until a later frame of the stream arrives;
    - the last box of each active object (the seeds: objects seen in the last ``max_gap + 1``
      frames of their stream), with its object id and frame;
    - ``appear`` only: every box of the objects younger than ``min_frames`` (an object that
      lived that long can never be flagged; one that is forgotten is judged at once).

    Object ids are the monitor's own (numbered as objects appear in the stream of batches):
    the ``object`` context differs from ``Suite.check``'s numbering; rows, events and
    severities do not."""


    def __init__(self, a: Assertion, needed: list[str], stream: str | None, frame: str):
        super().__init__(a, needed, stream, frame)
        from .boxes import appear

        self.min_frames = a.min_frames if isinstance(a, appear) else None
        self.seeds: pa.Table | None = None  # the last box of each active object
        self.seed_obj = self.seed_frame = _NO_ROWS
        self.young: pa.Table | None = None  # appear: the boxes of objects younger than min_frames
        self.young_obj = _NO_ROWS
        self.next_obj = 0

    def retained_rows(self) -> int:
        return self._n_kept + len(self.seed_obj) + len(self.young_obj)

    def observe(self, table: pa.Table, offset: int, backend: str) -> Result:
        return self._link(self._tagged(table, offset), table.num_rows, backend, None)

    def flush(self, backend: str, streams: set | None = None) -> Result:
        result = self._link(None, 0, backend, _ALL if streams is None else streams)
        self.clock.forget(streams)
        return result

    def _link(self, t: pa.Table | None, n_checked: int, backend: str, final: Any) -> Result:
        """Link the complete frames (all frames of the ``final`` streams) to the carried state
        in one kernel call; report the gaps closed (flicker) or the objects forgotten
        (appear); keep the new state."""
        from . import boxes

        a, c = self.a, self.a.cols
        if t is not None:
            _frames(t, self.frame)  # the batch's own column error first, as in _with_held
        prior = [p for p in (self.seeds, self.young) if p is not None]
        parts = prior + self.kept + ([t] if t is not None else [])
        if not any(p.num_rows for p in parts):
            return Result.empty(n_checked)
        # one table, so that the carried rows share the stream and class codes of the new ones:
        # [seeds | young | held-back frames and the batch ("fresh")]
        whole = _concat(parts)
        n, n_seed = whole.num_rows, len(self.seed_obj)
        n_prior = n_seed + len(self.young_obj)
        fr = boxes._frame_numbers(whole, c, a.kind)  # refuses timestamps, as the batch check does
        frames = fr.values
        codes, n_streams, svalid = _stream_codes(whole, self.stream)
        okf = _arrow.and_valid(None if fr.valid is None else fr.valid.astype(bool), svalid)
        if t is not None:
            self._advance(whole, frames, codes, n_streams, okf, n - t.num_rows)
        fresh = np.zeros(n, bool)
        fresh[n_prior:] = True
        ok = _arrow.and_valid(okf, fresh)
        newest = _group_reduce(np.maximum, codes, n_streams, frames, ok)
        ending = self._ending(whole, final)
        open_ = ok & (frames == newest[codes])
        if ending is not None:
            open_ &= ~ending
        done = ok & ~open_  # rows without a frame or stream belong to no frame: dropped
        groups = group_rows(frames, done, codes if n_streams > 1 else None, n_streams)
        n_grouped = int(groups.offsets[-1])
        obj_of = np.full(n, -1, np.int64)  # object of each row of ``whole``
        obj_of[:n_seed] = self.seed_obj
        obj_of[n_seed:n_prior] = self.young_obj
        gap_start = gap_end = _NO_ROWS
        state_code, state_obj, state_frame = codes[:n_seed], self.seed_obj, self.seed_frame
        state_row = np.arange(n_seed, dtype=np.int64)
        first_new = self.next_obj  # ids from here on are objects new in this call
        if n_grouped:
            # seeds after the grouped positions, by stream code (stable: oldest first)
            by_code = np.argsort(codes[:n_seed], kind="stable")
            grouped = np.arange(n_grouped, dtype=np.int64) if groups.order is None else groups.order
            at = np.concatenate((grouped, by_code))
            seed_offsets = np.zeros(n_streams + 1, np.int64)
            np.cumsum(np.bincount(codes[by_code], minlength=n_streams), out=seed_offsets[1:])
            lo = int(grouped[0])
            run = int(grouped[-1]) - lo + 1 == n_grouped
            if run and (groups.order is None or bool((np.diff(grouped) > 0).all())):
                # the complete frames are one run of rows, in order (the common case): copy a slice
                gather = lambda v: np.concatenate((v[lo:lo + n_grouped], v[by_code]))  # noqa: E731
            else:
                gather = lambda v: v[at]  # noqa: E731
            x1, y1, x2, y2, cls = (gather(v) for v in boxes._association_boxes(whole, c))
            k = _dispatch.kernels("boxes", backend)
            obj, gs, ge, st_code, st_obj, st_pos, st_frame, self.next_obj = k.associate(
                x1, y1, x2, y2, cls, groups.offsets, groups.frame, groups.stream, a.iou, a.max_gap,
                seed_offsets, np.arange(n_grouped, len(at), dtype=np.int64), self.seed_obj[by_code],
                self.seed_frame[by_code], self.next_obj)
            obj_of[at[:n_grouped]] = obj[:n_grouped]
            gap_start, gap_end = at[gs], at[ge]
            state_code, state_obj, state_row, state_frame = st_code, st_obj, at[st_pos], st_frame
        # an object that no later frame can reach is forgotten now (later frames of a stream
        # are at or after its newest), so appear judges it at once and the seeds stay small
        top = newest[state_code]
        top = np.where(top == np.iinfo(np.int64).min, state_frame, top)  # a stream without rows here
        gone = top - state_frame - 1 > a.max_gap
        if ending is not None:
            gone |= ending[state_row]
        live = ~gone
        self.seed_obj, self.seed_frame = state_obj[live], state_frame[live]
        if self.min_frames is None:
            who = ("object", lambda rows: pa.array(obj_of[rows], pa.int64()))
            r, young = boxes._gap_result(whole, c, gap_start, gap_end, who), _NO_ROWS
        else:
            r, young = self._judge(whole, frames, codes, n_streams, obj_of, n_seed, n_prior, first_new,
                                   state_obj[live], backend)
        self.young_obj = obj_of[young]
        self.seeds, kept, self.young = _take(whole, parts, state_row[live], np.flatnonzero(open_), young)
        self.kept = [] if kept is None else [kept]
        return _globalize(r, whole, n_checked)

    def _ending(self, whole: pa.Table, final: Any) -> np.ndarray | None:
        """Rows of the streams that end now (flush), or ``None``."""
        if final is None:
            return None
        if final is _ALL:
            return np.ones(whole.num_rows, bool)
        if self.stream is None or whole.schema.get_field_index(self.stream) < 0:
            return None  # rows without a stream end only at a full flush
        return np.asarray(_in_streams(whole, self.stream, final).to_numpy(zero_copy_only=False), bool)

    def _judge(self, whole: pa.Table, frames: np.ndarray, codes: np.ndarray, n_streams: int,
               obj_of: np.ndarray, n_seed: int, n_prior: int, first_new: int, live_obj: np.ndarray,
               backend: str) -> tuple[Result, np.ndarray]:
        """``appear``: judge the young objects forgotten, against sentinel rows at their
        stream's first and newest frame (the data's ends, as far as the objects are concerned:
        a forgotten object ended before the newest frame). Returns the result and the rows of
        the young objects still alive (to keep)."""
        from . import boxes

        c = self.a.cols
        # the young: carried young rows, and new rows of young or new objects (an object id
        # below the old next_obj and not young has already lived min_frames). Ids are dense
        # from the oldest one here on (no sort): young objects are recent by definition
        rows = np.concatenate((np.arange(n_seed, n_prior, dtype=np.int64),
                               np.flatnonzero(obj_of[n_prior:] >= 0) + n_prior))
        if len(rows) == 0:
            return Result.empty(whole.num_rows), _NO_ROWS
        base = int(obj_of[rows].min())
        n_ids = self.next_obj - base
        dense = obj_of[rows] - base
        young = np.zeros(n_ids, bool)
        young[self.young_obj - base] = True
        young[max(first_new - base, 0):] = True
        keep = young[dense]
        rows, dense = rows[keep], dense[keep]
        lo = _group_reduce(np.minimum, dense, n_ids, frames[rows], None)
        hi = _group_reduce(np.maximum, dense, n_ids, frames[rows], None)
        short = hi[dense] - lo[dense] + 1 < self.min_frames  # the others can never be flagged: dropped
        alive = np.zeros(n_ids, bool)
        alive[live_obj[live_obj >= base] - base] = True
        alive = alive[dense]
        stay = rows[short & alive]
        judged = short & ~alive
        if not judged.any():
            return Result.empty(whole.num_rows), stay
        j_rows = rows[judged]
        j_rows = j_rows[np.argsort(frames[j_rows], kind="stable")]  # frame order, as the batch check sums scores
        ids, j_obj = np.unique(obj_of[j_rows], return_inverse=True)  # few: the judged objects
        j_codes = np.unique(codes[j_rows])
        lo_b, hi_b = self._bounds(whole, codes, j_rows, j_codes)
        m = len(j_codes)
        sentinel = np.full(2 * m, -1, np.int64)
        score, svalid = boxes._score(whole, c)
        take = np.concatenate((j_rows, np.zeros(2 * m, np.int64)))  # sentinel scores are never read
        k = _dispatch.kernels("boxes", backend)
        pos, ev, sev, anchor = k.lifetimes(
            np.concatenate((j_obj, np.zeros(2 * m, np.int64))), 0, len(ids),
            np.concatenate((np.ones(len(j_rows), np.uint8), np.zeros(2 * m, np.uint8))),
            np.concatenate((frames[j_rows], lo_b, hi_b)), _arrow.NO_NULLS,
            np.concatenate((codes[j_rows], j_codes, j_codes)), 0, n_streams,
            score[take] if len(score) else score, svalid[take] if len(svalid) else svalid,
            self.min_frames)
        at = np.concatenate((j_rows, sentinel))
        row, ev, sev = canonical_events(at[pos], ev, sev, at[anchor])
        return Result(row, ev, sev, whole.num_rows, {
            "object": pa.array(obj_of[row], pa.int64()),
            "stream": functools.partial(boxes._stream_context, whole, c, row),
            "frame": functools.partial(boxes._frame_context, whole, c, row)}), stay

    def _bounds(self, whole: pa.Table, codes: np.ndarray, rows: np.ndarray,
                stream_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first and newest frame of each stream code (from the stream clock)."""
        newest, oldest = self._clock_now()
        if self.stream is None or whole.schema.get_field_index(self.stream) < 0:
            values = [None] * len(stream_codes)
        else:
            first = rows[np.unique(codes[rows], return_index=True)[1]]  # a row of each code, in code order
            values = _plain(whole.column(self.stream)).take(pa.array(first)).to_pylist()
        return (np.array([oldest[v] for v in values], np.int64).reshape(-1),
                np.array([newest[v] for v in values], np.int64).reshape(-1))


class Whole(_Ordered):
    """Everything held back and checked at ``flush``: exact for any assertion, but memory
    grows with the stream. Used for assertions that declare no streaming form."""


    def __init__(self, a: Assertion, needed: list[str], stream: str | None):
        super().__init__(a, needed, stream, "")

    def observe(self, table: pa.Table, offset: int, backend: str) -> Result:
        self._hold(self._tagged(table, offset))
        return Result.empty(table.num_rows)


def adapter_for(a: Assertion, schema: pa.Schema, horizon: int | None, *, backend: str | None = None,
                shared: dict | None = None) -> Adapter:
    """The streaming form of ``a`` for batches of ``schema``. With ``backend`` Cython (or
    ``auto``) and a ``shared`` dict (one per monitor), ``rows.consistent`` and
    ``rows.contiguous`` go native (:class:`NativeRows`, one engine per id column in
    ``shared``) when the engine reads their columns."""
    from . import boxes, points, rows
    from .udf import UserAssertion

    names = set(schema.names)
    if isinstance(a, points.empty_box) and a.counts is not None:
        # judged box by box from its own count column
        return Adapter(a, [c for c in (a.counts, a.cols.frame, a.cols.stream) if c in names])
    needed = [c for c in a.columns() + a.optional_columns() if c in names]
    if a.scope == "row":
        return Adapter(a, needed)
    if isinstance(a, points.multibox):
        stream = a.cols.stream if a.cols.stream in names else None
        needed += [c for c in (a.cols.stream, a.cols.frame) if c in names and c not in needed]
        return ByFrame(a, needed, stream, a.cols.frame)
    if isinstance(a, (boxes.multibox, boxes.flicker, boxes.appear, boxes.class_consistency)):
        c = a.cols
        stream = c.stream if c.stream in names else None
        for extra in (c.stream, c.frame, c.track):
            if extra in names and extra not in needed:
                needed.append(extra)
        if isinstance(a, boxes.multibox):
            return ByFrame(a, needed, stream, c.frame)
        if isinstance(a, boxes.class_consistency):
            return ByIdentity(a, needed, stream, lambda t: boxes._track_keys(t, c), horizon)
        identity = boxes._resolve_identity(a.identity, schema.empty_table(), c)
        if identity == "iou":
            return ByObject(a, needed, stream, c.frame)
        if isinstance(a, boxes.flicker):
            return LastPerTrack(a, needed, stream, c.frame)
        return ByIdentity(a, needed, stream, lambda t: boxes._track_keys(t, c), horizon,
                          frame=c.frame, track=c.track)
    if isinstance(a, (rows.consistent, rows.contiguous)):
        if shared is not None and backend in ("auto", "cython") and _rows_native_ok(a, schema):
            key = ("rows", a.id)
            if key not in shared:
                shared[key] = _RowsGroup(a.id, horizon)
            return NativeRows(a, needed, shared[key])
        return ByIdentity(a, needed, None, lambda t: _arrow.encode_keys(t, a.id, role="id"), horizon)
    if isinstance(a, UserAssertion) and a.per == "group":
        return ByIdentity(a, needed, None, lambda t: _arrow.encode_keys(t, a.by, role="by"), horizon)
    return Whole(a, needed or list(names), None)


# ----------------------------------------------------------------------------------------------
# the native path: one engine call per batch for a suite's box assertions
# ----------------------------------------------------------------------------------------------
_STREAM_KINDS = {"string": 1, "large_string": 2, "int64": 3, "int32": 4}  # BoxEngine's column kinds (int32: classes)


def _stream_type(typ: pa.DataType) -> pa.DataType | None:
    """The type the native engine reads a stream column of type ``typ`` as (``None``: it
    cannot: such streams stay on the adapters)."""
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return typ
    if pa.types.is_integer(typ):
        return pa.int64()
    return None


def native_members(suite: list[Assertion], schema: pa.Schema, backend: str) -> list[Assertion]:
    """The assertions of ``suite`` the native engine (:class:`NativeBoxes`) takes for batches
    of ``schema``: ``boxes.multibox``, ``boxes.flicker`` (by track or by IoU), ``boxes.appear``
    by IoU and ``boxes.valid`` sharing the first one's column names, on the Cython backend,
    when the frame (and track) columns are integers and the stream and class columns (if
    any) strings or integers."""
    from . import boxes

    if backend not in ("auto", "cython"):
        return []
    names = set(schema.names)
    out: list[Assertion] = []
    cols = None
    for a in suite:
        if not isinstance(a, (boxes.multibox, boxes.flicker, boxes.appear, boxes.valid, boxes.class_consistency)):
            continue
        c = a.cols
        if cols is not None and c != cols:
            continue
        if c.frame not in names or not pa.types.is_integer(schema.field(c.frame).type):
            continue
        if c.stream in names and _stream_type(schema.field(c.stream).type) is None:
            continue
        identity = "track" if isinstance(a, boxes.class_consistency) else \
            boxes._resolve_identity(a.identity, schema.empty_table(), c) if isinstance(a, (boxes.flicker, boxes.appear)) \
            else None
        if identity == "iou" or isinstance(a, boxes.class_consistency):
            if c.cls in names and _stream_type(schema.field(c.cls).type) is None:
                continue
            if isinstance(a, boxes.class_consistency) and c.cls not in names:
                continue  # its adapter reports the missing column
        if identity == "track" and (c.track not in names or not pa.types.is_integer(schema.field(c.track).type)):
            continue
        cols = c
        out.append(a)
    return out


class NativeBoxes:
    """The native form of a monitor's box assertions (:func:`native_members`): one
    ``tripwire._kernels._monitor_cy.BoxEngine`` call per batch for all of them, state updated
    in place (open frames, last box per track, IoU objects per stream, per-track records, the
    stream clock). Same violations as the adapters (``ByFrame``, ``LastPerTrack``,
    ``ByObject``, ``ByIdentity``, ``Adapter``) it replaces.

    ``prepare`` reads and checks a batch without changing state; ``commit`` applies it;
    ``abort`` drops it (another assertion refused the batch)."""

    def __init__(self, members: list[Assertion], schema: pa.Schema, horizon: int | None = None):
        from . import boxes
        from ._kernels import _monitor_cy

        self.members = members
        self._export_batch = _monitor_cy.export_batch
        c = self.cols = members[0].cols
        empty = schema.empty_table()
        by_iou = {a for a in members if isinstance(a, (boxes.flicker, boxes.appear))
                  and boxes._resolve_identity(a.identity, empty, c) == "iou"}
        self.multibox = [a for a in members if isinstance(a, boxes.multibox)]
        self.flicker = [a for a in members if isinstance(a, boxes.flicker) and a not in by_iou]
        self.valid = [a for a in members if isinstance(a, boxes.valid)]
        self.by_iou = [a for a in members if a in by_iou]
        # by track, judged per track once it has been quiet for horizon rows
        self.ident = [a for a in members if isinstance(a, boxes.class_consistency)
                      or (isinstance(a, boxes.appear) and a not in by_iou)]
        self.order = self.multibox + self.flicker + self.valid + self.by_iou + self.ident  # the engine's result order
        self.stream = c.stream if c.stream in schema.names else None
        self.stream_type = None if self.stream is None else _stream_type(schema.field(self.stream).type)
        kind = 0 if self.stream_type is None else _STREAM_KINDS[str(self.stream_type)]
        reads_cls = self.by_iou or any(isinstance(a, boxes.class_consistency) for a in self.ident)
        self.cls = c.cls if reads_cls and c.cls in schema.names else None
        self.cls_type = None if self.cls is None else _stream_type(schema.field(self.cls).type)
        if self.cls is not None and schema.field(self.cls).type == pa.int32():
            self.cls_type = pa.int32()  # read as it is
        self.engine = _monitor_cy.BoxEngine(kind, [(a.iou, a.min_boxes) for a in self.multibox],
                                            [a.max_gap for a in self.flicker],
                                            [(a.width, a.height) for a in self.valid],
                                            [(a.iou, a.max_gap, getattr(a, "min_frames", 0)) for a in self.by_iou],
                                            0 if self.cls_type is None else _STREAM_KINDS[str(self.cls_type)],
                                            [(0, a.min_frames) if isinstance(a, boxes.appear) else (1, 0)
                                             for a in self.ident], horizon)
        self._schema: pa.Schema | None = None  # the last schema adopted
        self._indices: tuple = ()
        self._casts: dict[str, pa.DataType] = {}
        self._verify = True

    # -- a batch ---------------------------------------------------------------------------
    def _adopt(self, table: pa.Table) -> None:
        """A batch with a new schema: check its columns as the batch assertions do (same
        errors), and find how the engine reads them."""
        from . import boxes

        c, empty = self.cols, table.slice(0, 0)
        if self.multibox:
            _frames_mod.group_frames(empty, c.frame, c.stream)
        if self.multibox or self.valid:
            boxes._coords(empty, c)
            boxes._score(empty, c)
        for a in self.flicker:
            boxes._frame_numbers(empty, c, a.kind)
            boxes._track_keys(empty, c)
        for a in self.ident:
            if isinstance(a, boxes.appear):
                boxes._frame_numbers(empty, c, a.kind)
            boxes._track_keys(empty, c)
            if isinstance(a, boxes.class_consistency):
                _arrow.encode_keys(empty, c.cls, role="attr")
        for a in self.by_iou:
            boxes._frame_numbers(empty, c, a.kind)
            _frames_mod.group_frames(empty, c.frame, c.stream)
            boxes._association_boxes(empty, c)
            boxes._score(empty, c)
        schema = table.schema
        want = {c.frame: pa.int64()}
        if self.flicker or self.ident:
            want[c.track] = pa.int64()
        for name in (c.score, c.x1, c.y1, c.x2, c.y2):
            if name in schema.names:
                want[name] = pa.float32()
        if self.cls is not None:
            if self.cls not in schema.names:
                raise InputError(f"column {self.cls!r} (class) is missing from this batch",
                                 expected="the columns of the earlier batches", found=str(schema),
                                 fix="send every batch with the same columns")
            want[self.cls] = self.cls_type
        if self.stream is not None:
            if self.stream not in schema.names:
                raise InputError(f"column {self.stream!r} (stream) is missing from this batch",
                                 expected="the columns of the earlier batches", found=str(schema),
                                 fix="send every batch with the same columns")
            want[self.stream] = self.stream_type
        casts = {}
        for name, typ in want.items():
            have = schema.field(name).type
            if have != typ:
                if not (pa.types.is_integer(have) or pa.types.is_floating(have) or pa.types.is_dictionary(have)
                        or pa.types.is_string(have) or pa.types.is_large_string(have)):
                    raise InputError(f"column {name!r} has type {have}", expected=str(typ), found=str(have),
                                     fix="send every batch with the same column types")
                casts[name] = typ
        roles = (self.stream, c.frame, c.track if self.flicker or self.ident else None,
                 c.score, c.x1, c.y1, c.x2, c.y2, self.cls)
        self._indices = tuple(-1 if r is None or r not in schema.names else schema.get_field_index(r)
                              for r in roles)
        self._casts = casts
        self._schema = schema

    def stage(self, table: pa.Table):
        """``table`` exported for the engine, without the monitor's lock (``None``: ``prepare``
        reads it under the lock: a schema not seen last, casts, chunked columns, no rows).
        Exporting releases the GIL, and a thread that releases it holding the lock makes the
        other threads that observe queue on the lock. Changes nothing here: a schema adopted
        meanwhile by another thread shows in ``prepare``, which then reads the table itself."""
        schema = self._schema
        if schema is None or self._casts or not table.schema.equals(schema):
            return None
        batches = table.to_batches()
        return self._export_batch(batches[0]) if len(batches) == 1 else None

    def prepare(self, table: pa.Table, offset: int, parts: np.ndarray | None = None, staged=None) -> None:
        """Read and check ``table`` (rows from ``offset``; ``staged``: what ``stage`` made of
        it, or ``None``); ``parts``: it is several batches gathered (the first row of each
        after the first), whose frames must also be in order per stream across them
        (``OutOfOrder`` if not)."""
        if self._schema is None or not table.schema.equals(self._schema):
            self._adopt(table)
            self._verify = True  # the engine checks the formats once per schema
            staged = None
        if staged is not None:
            batch = staged
        else:
            if self._casts:
                table = self._cast(table)
            batches = table.to_batches()
            if len(batches) > 1:  # chunked columns: one copy into one batch
                batches = table.combine_chunks().to_batches()
            batch = batches[0] if batches else None
        got = self.engine.prepare(batch, offset, self._indices, self._verify, parts)
        self._verify = False
        if got is not None:
            kind, s, lo, prev = got
            if kind == "across":
                where = "" if s is None else f" of stream {s!r}"
                raise OutOfOrder(f"frame {lo}{where} comes after frame {prev} of an earlier batch gathered with it",
                                 expected="the frames of each stream in order across batches",
                                 fix="send each stream's frames in order")
            raise _late(s, lo, prev)

    def _cast(self, table: pa.Table) -> pa.Table:
        for name, typ in self._casts.items():
            i = table.schema.get_field_index(name)
            try:
                col = _plain(table.column(i)).cast(typ, safe=not pa.types.is_floating(typ))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise InputError(f"column {name!r} cannot be read as {typ}", expected=str(typ),
                                 found=str(table.schema.field(i).type),
                                 fix="send every batch with the same column types") from e
            table = table.set_column(i, name, col)
        return table

    def abort(self) -> None:
        self.engine.abort()

    def commit(self) -> list:
        """Apply the prepared batch; the engine's raw violations per assertion of ``order``
        (``None``: none; :meth:`result` makes a ``Result`` of one)."""
        return self.engine.commit()

    def result(self, a: Assertion, got: tuple | None, n_checked: int) -> Result | None:
        return None if got is None else self._result(a, got, n_checked)

    def touched(self) -> list:
        return self.engine.touched_values()

    # -- results ---------------------------------------------------------------------------
    def _stream_context(self, sids: np.ndarray) -> Any:
        if self.stream is None:
            return functools.partial(pa.nulls, len(sids), pa.string())
        values = self.engine.values
        taken = [values[s] for s in sids.tolist()]  # now: ids are reused once streams expire
        return lambda: pc.cast(pa.array(taken, self.stream_type), pa.string())

    def _result(self, a: Assertion, got: tuple, n_checked: int) -> Result:
        """A result from the engine's violations (already in canonical order)."""
        from . import boxes

        if a in self.valid:
            rows, reasons = got
            return Result(rows, np.arange(len(rows), dtype=np.int64), np.ones(len(rows), np.float32), n_checked,
                          {"detail": functools.partial(boxes._reason_text, reasons)})
        if a in self.multibox:
            rows, ev, sev, frames, sids = got
            return Result(rows, ev, sev, n_checked, {"stream": self._stream_context(sids),
                                                     "frame": functools.partial(pa.array, frames, pa.int64())})
        if a in self.ident:  # by track: (rows, events, severity, frames, streams, tracks)
            rows, ev, sev, frames, sids, tracks = got
            missing = frames == np.iinfo(np.int64).min  # class_consistency reads rows without a frame
            return Result(rows, ev, sev, n_checked, {
                "key": lambda: pc.cast(pa.array(tracks, pa.int64()), pa.string()),
                "stream": self._stream_context(sids),
                "frame": functools.partial(pa.array, frames, pa.int64(), missing if missing.any() else None)})
        if a in self.by_iou:  # the object context holds the monitor's own ids (as ByObject's)
            rows, ev, sev, frames, sids, objs = got
            frame = functools.partial(pa.array, frames, pa.int64())
            obj = functools.partial(pa.array, objs, pa.int64())
            if isinstance(a, boxes.appear):
                return Result(rows, ev, sev, n_checked, {"object": obj, "stream": self._stream_context(sids),
                                                         "frame": frame})
            return Result(rows, ev, sev, n_checked, {"stream": self._stream_context(sids), "frame": frame,
                                                     "object": obj})
        rows, ev, sev, frames, sids, tracks = got  # flicker: as boxes._gap_result
        return Result(rows, ev, sev, n_checked, {
            "stream": self._stream_context(sids), "frame": functools.partial(pa.array, frames, pa.int64()),
            "key": lambda: pc.cast(pa.array(tracks, pa.int64()), pa.string())})

    # -- state -----------------------------------------------------------------------------
    def flush(self, streams: set | None = None) -> dict[Assertion, Result | None]:
        """Judge and forget what ``streams`` (values; all when ``None``) hold back."""
        e = self.engine
        if streams is None:
            ids = None
        elif self.stream is None:
            return {}  # rows without a stream end only at a full flush
        else:
            ids = [i for i in (e.stream_id(s) for s in streams) if i >= 0]
        out = {}
        for k, a in enumerate(self.multibox):
            out[a] = self.result(a, e.flush_multibox(k, ids), 0)
        for k, _ in enumerate(self.flicker):
            e.forget_tracks(k, ids)
        for k, a in enumerate(self.by_iou):
            out[a] = self.result(a, e.flush_iou(k, ids), 0)
        for k, a in enumerate(self.ident):
            out[a] = self.result(a, e.flush_ident(k, ids), 0)
        e.forget(ids)
        return out

    def clock(self) -> tuple[dict, dict]:
        """(newest, oldest) frame per stream value, with the prepared batch."""
        both = self.engine.clock(True)
        return {s: hi for s, (lo, hi) in both.items()}, {s: lo for s, (lo, hi) in both.items()}

    def retained_rows(self) -> int:
        return self.engine.retained_rows()


def _late(s: Any, lo: int, prev: int) -> OutOfOrder:
    where = "" if s is None else f" of stream {s!r}"
    return OutOfOrder(f"frame {lo}{where} arrived after frame {prev}",
                      expected="the frames of each stream in order across batches (any order inside one batch)",
                      fix="send each stream's frames in order, or check unordered data with Suite.check / tripwire scan")


# ----------------------------------------------------------------------------------------------
# the native path for the generic per-identity checks: one engine call per batch for the
# rows.consistent and rows.contiguous assertions sharing an id column
# ----------------------------------------------------------------------------------------------
_ROWS_KINDS = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 3, pa.int64(): 4, pa.uint8(): 5, pa.uint16(): 6,
               pa.uint32(): 7, pa.uint64(): 8, pa.string(): 9, pa.large_string(): 10}  # RowsEngine's K_*
_K_I32, _K_I64, _K_U64 = 3, 4, 8


def _rows_kind(typ: pa.DataType) -> int | None:
    """How the rows engine reads an id or attribute column of type ``typ`` (dictionaries as
    their values); ``None``: it cannot (floats, booleans, dates...: the adapter keeps them)."""
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    return _ROWS_KINDS.get(typ)


def _time_kind(typ: pa.DataType) -> int | None:
    """How the rows engine reads a time column (as ``rows.contiguous`` does: integer ticks)."""
    if pa.types.is_timestamp(typ) or pa.types.is_duration(typ) or pa.types.is_date64(typ):
        return _K_I64
    if pa.types.is_date32(typ):
        return _K_I32
    return _ROWS_KINDS.get(typ) if pa.types.is_integer(typ) else None


def _time_unit(typ: pa.DataType) -> tuple:
    """What a time column's ticks mean (``rows.contiguous`` turns windows into ticks by it):
    batches may change the integer width, not the unit."""
    if pa.types.is_timestamp(typ) or pa.types.is_duration(typ):
        return ("unit", typ.unit)
    if pa.types.is_date64(typ) or pa.types.is_date32(typ):
        return (str(typ),)
    return ("integer",)


def _is_text(kind: int) -> bool:
    return kind >= 9


def _rows_native_ok(a: Assertion, schema: pa.Schema) -> bool:
    """Whether the rows engine reads ``a``'s columns in batches of ``schema``."""
    from . import rows

    names = set(schema.names)
    if a.id not in names or _rows_kind(schema.field(a.id).type) is None:
        return False
    if isinstance(a, rows.consistent):
        return a.attr in names and _rows_kind(schema.field(a.attr).type) is not None
    return a.time in names and _time_kind(schema.field(a.time).type) is not None


class _RowsGroup:
    """The assertions of a monitor that read one id column natively, and their
    ``tripwire._kernels._monitor_rows_cy.RowsEngine``: the first member observing a batch
    feeds it to the engine (for all of them); the others take their results."""

    def __init__(self, id_col: str, horizon: int | None):
        self.id, self.horizon = id_col, horizon
        self.members: list[Assertion] = []
        self.engine: Any = None
        self._schema: pa.Schema | None = None  # the last schema adopted
        self._plan: tuple = ()
        self._casts: dict[str, pa.DataType] = {}
        self._u64 = False
        self._observing = False  # the engine holds a batch not committed yet
        self._results: dict = {}
        self._flushed: dict = {}

    def _start(self, schema: pa.Schema) -> None:
        """The engine, from the first batch's schema (which column kinds, which tick unit)."""
        from . import rows
        from ._kernels import _monitor_rows_cy

        cs = [a for a in self.members if isinstance(a, rows.consistent)]
        ct = [a for a in self.members if isinstance(a, rows.contiguous)]
        self.order = cs + ct  # the engine's result order
        self.id_text = _is_text(_rows_kind(schema.field(self.id).type))
        self.attr_text = {a.attr: _is_text(_rows_kind(schema.field(a.attr).type)) for a in cs}
        self.units = {a.time: _time_unit(schema.field(a.time).type) for a in ct}
        ticks = []
        for a in ct:  # as rows.contiguous.evaluate: the column's unit, ms for date64, days for date32
            typ = schema.field(a.time).type
            unit = typ.unit if pa.types.is_timestamp(typ) or pa.types.is_duration(typ) else \
                "ms" if pa.types.is_date64(typ) else None
            ticks.append((rows._as_ticks(a.window, unit, "window", a.kind),
                          rows._as_ticks(a.step, unit, "step", a.kind), a.allowed))
        self.engine = _monitor_rows_cy.RowsEngine(self.id_text, [(self.attr_text[a.attr], a.flag == "minority")
                                                                for a in cs], ticks, self.horizon)

    def _adopt(self, schema: pa.Schema) -> None:
        """A batch with a new schema: its columns checked as the batch assertions check them
        (same errors), and how the engine reads them."""
        from . import rows

        def present(name: str, role: str, expected: str) -> None:
            if schema.get_field_index(name) < 0:  # missing (or twice): the batch check's own error
                _arrow.column(schema.empty_table(), name, role=role, expected=expected)

        for a in self.members:
            present(a.id, "id", _arrow.KEY_EXPECTED)
            if isinstance(a, rows.consistent):
                present(a.attr, "attr", _arrow.KEY_EXPECTED)
            else:
                present(a.time, "time", "integer")
                if _time_kind(schema.field(a.time).type) is None:  # as rows.contiguous refuses it
                    _arrow.numeric_column(schema.empty_table(), a.time, role="time", integer=True)
        if self.engine is None:
            self._start(schema)

        def kind(name: str, role: str, text: bool | None, how=_rows_kind) -> tuple[int, int]:
            typ = schema.field(name).type
            k = how(typ)
            if k is None or (text is not None and _is_text(k) != text):
                raise InputError(f"column {name!r} ({role}) is {typ} in this batch, unlike earlier batches",
                                 expected="the column types of the earlier batches", found=str(typ),
                                 fix="send every batch with the same column types")
            return schema.get_field_index(name), k

        id_plan = kind(self.id, "id", self.id_text)
        attrs = [kind(a.attr, "attr", self.attr_text[a.attr]) for a in self.order if isinstance(a, rows.consistent)]
        times = []
        for a in self.order:
            if isinstance(a, rows.contiguous):
                times.append(kind(a.time, "time", None, _time_kind))
                if _time_unit(schema.field(a.time).type) != self.units[a.time]:
                    kind(a.time, "time", None, lambda t: None)  # another unit: windows would change meaning
        self._casts = {n: schema.field(n).type.value_type for n in {self.id, *(a.attr for a in self.order
                                                                           if isinstance(a, rows.consistent))}
                       if pa.types.is_dictionary(schema.field(n).type)}
        self._u64 = id_plan[1] == _K_U64
        self._plan = (id_plan, attrs, times)
        self._schema = schema

    def observe(self, a: Assertion, table: pa.Table, offset: int) -> Result | None:
        if not self._observing:
            self._run(table, offset)
        return self._results.get(a)

    def _run(self, table: pa.Table, offset: int) -> None:
        if self._schema is None or not table.schema.equals(self._schema):
            self._adopt(table.schema)
        t = table
        for name, typ in self._casts.items():  # dictionaries as their values (batches differ in dictionary)
            i = t.schema.get_field_index(name)
            t = t.set_column(i, name, t.column(i).cast(typ))
        (id_i, id_k), attrs, times = self._plan
        e = self.engine
        row = offset
        try:
            for b in t.to_batches():  # chunked columns: one call per record batch, no copy
                if b.num_rows:
                    e.feed(b, row, id_i, id_k, attrs, times)
                row += b.num_rows
            got = e.finish(offset + table.num_rows)
        except BaseException:
            e.abort()
            raise
        self._observing = True
        n = table.num_rows
        self._results = {a: self._result(a, g, n) for a, g in zip(self.order, got)}

    def _result(self, a: Assertion, got: tuple | None, n_checked: int) -> Result | None:
        if got is None:
            return None
        rows_, events, severity, keys = got
        if self.id_text:
            key = functools.partial(pa.array, keys, pa.string())
        else:
            values = keys.view(np.uint64) if self._u64 else keys
            key = lambda: pc.cast(pa.array(values), pa.string())  # noqa: E731
        return Result(rows_, events, severity, n_checked, {"key": key}, [])

    def commit(self) -> None:
        if self._observing:
            self.engine.commit()
            self._observing, self._results = False, {}

    def abort(self) -> None:
        if self.engine is not None:
            self.engine.abort()
        self._observing, self._results = False, {}

    def flush(self, a: Assertion, streams: set | None) -> Result:
        if streams is not None or self.engine is None:
            return Result.empty(0)  # rows without a stream end only at a full flush
        if a not in self._flushed:  # the first member flushing: the engine judges all of them
            self._flushed = {m: self._result(m, g, 0) for m, g in zip(self.order, self.engine.flush())}
        r = self._flushed.pop(a)
        return Result.empty(0) if r is None else r

    def retained_rows(self) -> int:
        return 0 if self.engine is None else self.engine.live_rows


class NativeRows(Adapter):
    """``rows.consistent`` / ``rows.contiguous`` on the Cython backend: state kept in place per
    identity by a native engine shared by the assertions reading the same id column
    (``tripwire._kernels._monitor_rows_cy.RowsEngine``: each identity's distinct attribute
    values with counts and first rows, its presences as (time, row); judged once quiet for
    ``horizon`` rows, as :class:`ByIdentity` judges, or at ``flush``). Same violations as
    ``ByIdentity``, without re-reading held rows: one engine pass over each batch's columns.

    ``observe`` applies the batch; ``restore`` undoes it (another assertion refused the
    batch), ``commit`` keeps it."""

    def __init__(self, a: Assertion, needed: list[str], group: _RowsGroup):
        super().__init__(a, needed)
        self.group = group
        group.members.append(a)

    def snapshot(self) -> Any:
        return None  # the engine remembers what a batch changed until commit

    def restore(self, state: Any) -> None:
        self.group.abort()

    def observe(self, table: pa.Table, offset: int, backend: str) -> Result | None:
        return self.group.observe(self.a, table, offset)

    def commit(self) -> None:
        self.group.commit()

    def flush(self, backend: str, streams: set | None = None) -> Result:
        return self.group.flush(self.a, streams)

    def retained_rows(self) -> int:
        return self.group.retained_rows()
