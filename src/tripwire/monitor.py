"""``Monitor``: a suite checked batch by batch in an inference server's request path (DESIGN §5).

``observe(batch)`` returns the violations that batch completes; ``flush()`` those still
waiting for frames that will not come. Together they equal ``Suite.check`` on the whole
stream (the accepted batches, concatenated): same rows, same events (numbered per report),
same severities. How each assertion holds state between batches: ``tripwire._streaming``.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter, deque
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _arrow, _dispatch
from ._assertion import Assertion, Result
from ._streaming import (ByIdentity, NativeBoxes, OutOfOrder, _frames, _Ordered, _plain, _stream_codes,
                         adapter_for, native_members)
from .errors import ColumnError, InputError
from .report import Report
from .suite import Suite

__all__ = ["Monitor", "BackgroundMonitor"]

log = logging.getLogger("tripwire.monitor")

_EMPTY = pa.table({})
_NO_ROWS = np.empty(0, np.int64)
_NO_SEVERITY = np.empty(0, np.float32)
_NO_ROWS.setflags(write=False)
_NO_SEVERITY.setflags(write=False)


def _nothing(n_checked: int) -> Result:
    """An empty result (shared read-only arrays: most batches flag nothing)."""
    return Result(_NO_ROWS, _NO_ROWS, _NO_SEVERITY, n_checked)


def _reason(e: BaseException) -> str:
    """The ``reason`` label of a rejected batch."""
    if isinstance(e, OutOfOrder):
        return "out_of_order"
    if isinstance(e, ColumnError):
        return "column"
    if isinstance(e, InputError):
        return "input"
    return "error"


def _merge(parts: list[Result | None], n_checked: int) -> Result:
    """One result from several of one assertion (a batch's, and expired streams'); ``None``:
    nothing found."""
    parts = [p for p in parts if p is not None and len(p.rows)]
    if not parts:
        return _nothing(n_checked)
    if len(parts) == 1:
        p = parts[0]
        return Result(p.rows, p.events, p.severity, n_checked, p.context, [])
    offsets = np.cumsum([0] + [p.n_events for p in parts[:-1]])
    names = list(dict.fromkeys(k for p in parts for k in p.context))

    def context(name: str) -> pa.Array:
        arrays = [p.context_arrays().get(name) for p in parts]
        typ = next(a.type for a in arrays if a is not None)
        return pa.concat_arrays([pa.nulls(len(p.rows), typ) if a is None else a.cast(typ)
                                 for p, a in zip(parts, arrays)])

    return Result(np.concatenate([p.rows for p in parts]),
                  np.concatenate([p.events + o for p, o in zip(parts, offsets)]),
                  np.concatenate([p.severity for p in parts]), n_checked,
                  {k: functools.partial(context, k) for k in names}, [])


class Monitor:
    """Check a suite over a stream of batches with bounded state; never raise on bad input.

    - ``observe(batch)`` -> :class:`Report` of the violations this batch completes. Rows are
      numbered over the whole stream (the accepted batches, concatenated). Violations that need
      later frames (a gap closed by a later box, a frame completed by the next) come with the
      batch that completes them.
    - ``flush()`` -> the violations still held back (call it when the stream ends).
    - Frames of one stream must arrive in order across batches (any order inside one batch);
      several streams may interleave in one batch.
    - ``horizon``: an identity (track id, ``rows.consistent`` id, group key) unseen for that
      many rows is closed and judged; ``None`` holds every identity until ``flush``. Results
      equal ``Suite.check``'s whenever no identity comes back after a longer absence.
    - ``ttl``: seconds after which a stream (``stream`` column) that sent nothing is flushed
      and forgotten; its violations come with the next ``observe`` (or :meth:`expire`).
    - Bad input: by default the batch is rejected (nothing of it is kept), counted in
      ``rejected`` by reason (``not_a_table``, ``column``, ``input``, ``out_of_order``,
      ``error``), logged on the ``tripwire.monitor`` logger, and ``observe`` returns an empty
      report whose ``rejected`` names the reason. ``strict=True`` raises instead.
    - Thread-safe: concurrent ``observe`` calls are serialized per monitor (converting the
      input, and feeding metrics and alerts, happen outside the lock); within a stream,
      batches count in the order they take the lock.
    - ``metrics``: a :class:`tripwire.metrics.MonitorMetrics` fed after every batch (rows,
      latency, flagged rows and events per assertion, rejected batches by reason);
      ``alerts``: :class:`tripwire.alerts.Alert` rules (or one ``AlertManager``) on the rolling
      violation rates, fed after every batch.

    Reports carry violations, not weak labels: corrections need the whole input, which a
    monitor does not keep (use ``Suite.check`` or ``tripwire scan`` for those).
    """

    def __init__(self, suite: Suite | Iterable[Assertion], *, backend: str = "auto", strict: bool = False,
                 horizon: int | None = 100_000, ttl: float | None = None, stream: str = "stream",
                 metrics: Any = None, alerts: Iterable[Any] = (), name: str = "monitor",
                 clock: Any = time.monotonic):
        self.suite = suite if isinstance(suite, Suite) else Suite(suite)
        for a in self.suite:
            if len(getattr(a, "roles", ())) > 1:  # e.g. points.agree: boxes3d, calib, boxes
                raise InputError(
                    f"Monitor: {a.name!r} ({a.kind}) reads several tables ({', '.join(a.roles)}); "
                    f"a Monitor checks one table per batch",
                    expected="assertions that read one table",
                    fix="check it with Suite.check(boxes3d=..., points=..., ...)"
                        + (", or give points.empty_box a counts= column" if a.kind == "points.empty_box" else ""))
        if horizon is not None and (not isinstance(horizon, int) or horizon < 1):
            raise InputError(f"Monitor(horizon={horizon!r})", expected="a positive number of rows, or None",
                             fix="pass e.g. horizon=100_000")
        if ttl is not None and not (isinstance(ttl, (int, float)) and ttl > 0):
            raise InputError(f"Monitor(ttl={ttl!r})", expected="seconds > 0, or None", fix="pass e.g. ttl=300")
        _dispatch.resolve(backend)
        self.backend, self.strict, self.horizon, self.ttl = backend, strict, horizon, ttl
        self.stream, self.name = stream, name
        self.metrics = metrics
        self.alerts = None
        rules = list(alerts)
        if rules:
            from .alerts import AlertManager

            self.alerts = rules[0] if len(rules) == 1 and isinstance(rules[0], AlertManager) else \
                AlertManager(rules, monitor=name, assertions=[a.name for a in self.suite])
        self.clock = clock  # seconds, for ttl (tests pass a fake one)
        self.rows = 0  # rows accepted so far: the next batch's first global row
        self.batches = 0
        self.rejected: Counter = Counter()
        self._adapters: list | None = None  # (assertion, adapter) of those not native
        self._native: NativeBoxes | None = None  # the box assertions checked natively
        self._last_seen: dict[Any, float] = {}  # stream -> monotonic time (ttl)
        self._next_expiry = float("-inf")  # no stream expires before this time (ttl)
        self._lock = threading.Lock()
        self._plain_schema = pa.schema([])  # the last schema as_table returned a table of as is
        self._slots: list = []
        self._empty = _nothing(0)
        self._clean_results: dict[int, tuple] = {}  # batch length -> _clean's results

    # ------------------------------------------------------------------ public
    def observe(self, batch: Any) -> Report:
        """Check one batch; return the violations it completes (see the class docstring)."""
        t0 = time.perf_counter()
        if type(batch) is pa.Table and batch.schema.equals(self._plain_schema):
            table = batch  # as_table would return it as is: spare its per-column checks
        else:
            try:
                table = _arrow.as_table(batch)
            except Exception as e:  # the request path must survive any input
                return self._reject("not_a_table", e, t0)
            if table is batch:
                self._plain_schema = table.schema
        with self._lock:
            try:
                report, found = self._observe(table, t0)
            except Exception as e:
                return self._reject(_reason(e), e, t0)
        # metrics and alerts have locks of their own: fed outside the monitor's (a short
        # critical section: concurrent requests wait only for the checks themselves)
        if self.metrics is not None or self.alerts is not None:
            self._record(report, table.num_rows, found)
        return report

    def flush(self) -> Report:
        """Check and forget everything held back (the end of the stream)."""
        t0 = time.perf_counter()
        with self._lock:
            be = _dispatch.resolve(self.backend)
            got = {a: ad.flush(be) for a, ad in self._adapters or []}
            if self._native is not None:  # after the adapters: they may read its clock
                got.update(self._native.flush())
            self._last_seen.clear()
            return Report([(a, _merge([got.get(a)], 0)) for a in self.suite] if self._adapters is not None else [],
                          {"rows": _EMPTY}, be, time.perf_counter() - t0)

    def expire(self, now: float | None = None) -> Report:
        """Flush and forget the streams idle for longer than ``ttl`` (``observe`` does this on
        its own; a host whose traffic may stop entirely calls it from a timer)."""
        t0 = time.perf_counter()
        with self._lock:
            be = _dispatch.resolve(self.backend)
            results = self._expired(now if now is not None else self.clock(), be)
            return Report([(a, _merge(results.get(a, []), 0)) for a in self.suite] if self._adapters is not None
                          else [], {"rows": _EMPTY}, be, time.perf_counter() - t0)

    def background(self, **options: Any) -> "BackgroundMonitor":
        """This monitor, checked off the request path by one worker thread that gathers the
        submitted batches (:class:`BackgroundMonitor`; ``options`` are its own)."""
        return BackgroundMonitor(self, **options)

    def retained_rows(self) -> int:
        """Rows held back across all assertions (what the state costs)."""
        with self._lock:
            return sum(ad.retained_rows() for _, ad in self._adapters or []) + \
                (0 if self._native is None else self._native.retained_rows())

    def streams(self) -> int:
        """Streams seen and not yet expired (with ``ttl``)."""
        return len(self._last_seen)

    # ------------------------------------------------------------------ internals
    def _build(self, schema: pa.Schema) -> None:
        """Adapters for the first batch's schema: the box assertions the native engine takes
        (one call per batch for all of them), an adapter for each of the others."""
        members = native_members(list(self.suite), schema, self.backend)
        native = NativeBoxes(members, schema, self.horizon) if members else None
        shared: dict = {}  # native engines the adapters share (one per id column of rows checks)
        adapters = [(a, adapter_for(a, schema, self.horizon, backend=self.backend, shared=shared))
                    for a in self.suite if a not in members]
        if native is not None:
            for _, ad in adapters:  # appear by track: the engine keeps the same clock
                if isinstance(ad, ByIdentity) and ad.ordered and ad.stream == native.stream \
                        and ad.frame == native.cols.frame:
                    ad.clock_source = native
        # where each assertion's result comes from, in suite order: the engine's k-th result,
        # or the i-th adapter's
        at = {a: ("native", k) for k, a in enumerate(native.order)} if native is not None else {}
        at.update({a: ("adapter", i) for i, (a, _) in enumerate(adapters)})
        self._slots = [(a, *at[a]) for a in self.suite]
        self._native, self._adapters = native, adapters

    def _observe(self, table: pa.Table, t0: float) -> Report:
        n = table.num_rows
        if self._adapters is None:
            self._build(table.schema)
        be = _dispatch.resolve(self.backend, n)
        native, adapters = self._native, self._adapters
        if native is not None:
            native.prepare(table, self.rows)  # checks the batch; changes nothing yet
        got: list = []
        if adapters:
            saved = [ad.snapshot() for _, ad in adapters]
            try:
                for _, ad in adapters:
                    got.append(ad.observe(table, self.rows, be))
            except BaseException:
                for (_, ad), s in zip(adapters, saved):
                    ad.restore(s)
                if native is not None:
                    native.abort()
                raise
        seen = None  # the streams of this batch (ttl), when the engine has them at hand
        # (native._indices: the frame column's position is its second role; by position, as
        # by name costs a field lookup per batch)
        if self.ttl is not None and native is not None and native.cols.stream == self.stream \
                and table.column(native._indices[1]).null_count == 0:
            seen = native.touched()  # every row has a frame: the engine saw every stream
        engine = native.commit() if native is not None else []
        for _, ad in adapters:
            ad.commit()
        self.rows += n
        self.batches += 1
        if not any(engine) and all(r is None or not len(r.rows) for r in got):
            # the usual batch: nothing found (no per-assertion calls)
            results = list(self._clean(n))
            found = False
        else:
            results = []
            for a, source, k in self._slots:
                r = native.result(a, engine[k], n) if source == "native" else got[k]
                results.append((a, self._nothing(n) if r is None or not len(r.rows) else r))
            found = True
        if self.ttl is not None:
            now = self.clock()
            if seen is None:
                self._touch(table, now)
            else:
                for s in seen:
                    self._last_seen[s] = now
            more = self._expired(now, be)
            if more:
                results = [(a, _merge([r] + more.get(a, []), n)) for a, r in results]
                found = True
        # found: some result may hold violations (False: every one is the shared empty one)
        report = Report(results, {"rows": table}, be, time.perf_counter() - t0)
        report.first_row = self.rows - n
        return report, found

    def _order_columns(self) -> set:
        """(stream, frame) columns whose frames must come in order per stream across batches
        (those of the ordered adapters and of the native engine; after ``_build``)."""
        cols = {(ad.stream, ad.frame) for _, ad in self._adapters or []
                if isinstance(ad, _Ordered) and ad.frame is not None}
        if self._native is not None:
            cols.add((self._native.stream, self._native.cols.frame))
        return cols

    def _nothing(self, n: int) -> Result:
        """An empty result for a batch of ``n`` rows, shared by the assertions of a report (and
        by reports of batches as long: most flag nothing)."""
        empty = self._empty
        if empty.n_rows_checked != n:
            empty = self._empty = _nothing(n)
        return empty

    def _clean(self, n: int) -> tuple:
        """The results of a batch of ``n`` rows where no assertion found anything: every
        assertion with one shared empty result (cached per batch length, as frames' lengths
        vary; each report gets its own list of them)."""
        clean = self._clean_results.get(n)
        if clean is None:
            if len(self._clean_results) >= 256:  # bounded: batches of many lengths
                self._clean_results.clear()
            empty = _nothing(n)
            clean = self._clean_results[n] = tuple((a, empty) for a in self.suite)
        return clean

    def _touch(self, table: pa.Table, now: float) -> None:
        if table.schema.get_field_index(self.stream) < 0:
            self._last_seen[None] = now
            return
        for s in pc.unique(_plain(table.column(self.stream))).to_pylist():
            if s is not None:
                self._last_seen[s] = now

    def _expired(self, now: float, be: str) -> dict:
        """{assertion: [results]} of the streams idle for longer than ``ttl`` (flushed and
        forgotten)."""
        if self.ttl is None or self._adapters is None or now <= self._next_expiry:
            return {}
        idle = {s for s, t in self._last_seen.items() if now - t > self.ttl}
        # no stream can be idle for longer than ttl before the oldest last-seen time + ttl
        # (last-seen times only grow): until then, no scan per batch
        self._next_expiry = min((t for s, t in self._last_seen.items() if s not in idle), default=now) + self.ttl
        if not idle:
            return {}
        for s in idle:
            del self._last_seen[s]
        streams = None if None in idle else idle
        out = {a: [ad.flush(be, streams)] for a, ad in self._adapters}
        if self._native is not None:  # after the adapters: they may read its clock
            for a, r in self._native.flush(streams).items():
                out[a] = [r]
        return out

    def _reject(self, reason: str, e: Exception, t0: float) -> Report:
        if self.strict:
            raise e
        self.rejected[reason] += 1
        log.warning("tripwire monitor %r rejected a batch (%s): %s", self.name, reason, e)
        if self.metrics is not None:
            try:
                self.metrics.record_rejected(reason)
            except Exception:  # metrics must never take the host down
                log.exception("tripwire monitor %r: recording a rejected batch failed", self.name)
        report = Report([], {"rows": _EMPTY}, self.backend, time.perf_counter() - t0)
        report.rejected, report.error = reason, str(e)
        return report

    def _record(self, report: Report, n: int, found: bool) -> None:
        """Feed metrics and alerts; ``found``: some assertion may have flagged rows (else the
        counts are empty dicts: assertions with 0 may be absent, and nothing is counted)."""
        try:
            flagged, events = {}, {}
            if found:
                for a, r in report.results:
                    if len(r.rows):
                        flagged[a.name] = len(r.rows)
                        events[a.name] = r.n_events
            if self.metrics is not None:
                self.metrics.record_batch(n, report.seconds, flagged, events)
            if self.alerts is not None:
                self.alerts.record_batch(n, flagged)
        except Exception:  # metrics and alerts must never take the host down
            log.exception("tripwire monitor %r: recording metrics failed", self.name)


class _Flush:
    """A flush request in the background queue: done once everything submitted before it was
    checked and the monitor flushed."""

    __slots__ = ("done", "report")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.report: Report | None = None


def _ordered_across(tables: list[pa.Table], whole: pa.Table, columns: set) -> bool:
    """Whether each stream's frames come in order across ``tables`` (``whole``: them
    concatenated), as the monitor requires of separate batches: no frame older than the
    newest of the stream's earlier batches. Inside one batch any order is allowed, so a
    gathered batch would accept late frames that separate ones are refused for."""
    k = len(tables)
    batch = np.repeat(np.arange(k, dtype=np.int64), [t.num_rows for t in tables])
    # the columns read, each in one chunk (reading them chunk by chunk costs per batch)
    names = [c for c in dict.fromkeys(c for pair in columns for c in pair) if c is not None and c in whole.column_names]
    whole = pa.Table.from_arrays([whole.column(c).combine_chunks() for c in names], names=names)
    for stream, frame in columns:
        if stream is not None and stream in whole.column_names and \
                pa.types.is_string(whole.schema.field(stream).type):
            # the usual stream column: codes from one dictionary encoding (cheaper than
            # encode_keys, which reads chunk by chunk)
            col = whole.column(stream).chunk(0)
            codes = pc.dictionary_encode(col).indices.to_numpy(zero_copy_only=False)
            svalid = col.is_valid().to_numpy(zero_copy_only=False) if col.null_count else None
            codes = np.nan_to_num(codes, nan=0).astype(np.int64, copy=False) if svalid is not None \
                else codes.astype(np.int64, copy=False)
        else:
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


class BackgroundMonitor:
    """A :class:`Monitor` checked off the request path: ``submit(batch)`` hands a batch over
    (O(1): nothing is read or copied) and one worker thread checks what is pending in gathered
    batches, so ``observe``'s fixed cost is paid once per many requests.

    ``monitor.background(max_delay=0.05, ...)`` or ``BackgroundMonitor(monitor, ...)``::

        with tw.Monitor(suite, metrics=..., alerts=[...]).background(on_report=handle) as bg:
            ...                       # in each request:
            bg.submit(frame_outputs)  # returns at once; never raises on bad input
        # leaving the block: everything pending is checked, then the monitor is flushed

    - **Gathering.** The worker wakes ``max_delay`` seconds after the first pending batch (or
      as soon as ``max_rows`` rows wait, or on ``flush``/``close``), takes everything pending,
      and calls the monitor once per run of consecutive batches with one schema (a schema
      change, or ``max_rows`` rows, ends a run) on the run concatenated in arrival order.
      Rows are numbered over the stream as by ``observe`` (the accepted batches, in
      submission order), so the violations equal those of ``observe`` on each batch in the
      order ``submit`` took them, which equal ``Suite.check`` on them all. A run the monitor
      would not take whole (a batch it rejects, a stream's frame older than an earlier
      batch's: allowed inside one batch, refused across batches) is observed batch by batch,
      so each bad batch is rejected and counted on its own, as by ``observe``.
    - **Order.** Batches are checked in the order ``submit`` took them; submit a stream's
      frames in order from one thread at a time (as with ``observe``).
    - **Results.** The monitor's metrics and alerts are fed after every gathered batch (its
      ``batches`` count, and the latency histogram, are per gathered batch; ``rows`` per row).
      ``on_report(report)`` is called from the worker with each gathered batch's report that
      holds violations (``report.inputs["rows"]`` is the gathered batch, whose first row is
      ``report.first_row`` of the stream); an exception in it is logged and counted in
      ``callback_errors``, never stops the worker. ``flush()`` and ``close()`` wait until
      everything submitted before them was checked (reports to ``on_report``), then flush the
      monitor and return its report of the held-back violations (not passed to ``on_report``).
    - **Bounded.** At most ``max_pending`` rows wait (a batch counts at least one row; one batch
      larger than that is taken only when nothing waits). ``when_full="reject"`` (default): a
      batch beyond that is not taken: ``submit`` returns False and the batch is counted in the
      monitor's ``rejected`` (and its metric) with reason ``backlog``, and logged (at most one
      warning a second, with the count). ``when_full="block"``: ``submit`` waits for room
      (back-pressure on the request). After ``close``, ``submit`` rejects with reason ``closed``.
    - **Never takes the host down.** The worker survives anything: bad batches are rejected by
      the monitor as by ``observe``; any other error is logged and counted in ``errors``.
      The monitor must not be ``strict`` (the worker has no caller to raise to).
    - Freshness: violations arrive up to ``max_delay`` (plus the check) after their batch, and
      a ``ttl`` expiry is judged when the gathered batch is checked.
    """

    def __init__(self, monitor: Monitor, *, max_delay: float = 0.05, max_rows: int = 65_536,
                 max_pending: int = 1_000_000, when_full: str = "reject",
                 on_report: Callable[[Report], Any] | None = None):
        if not isinstance(monitor, Monitor):
            raise InputError(f"BackgroundMonitor({type(monitor).__name__})", expected="a tw.Monitor",
                             fix="pass tw.Monitor(suite, ...), or call monitor.background(...)")
        if monitor.strict:
            raise InputError("BackgroundMonitor of a strict monitor", expected="Monitor(..., strict=False)",
                             fix="a background worker has no caller to raise to: use strict=False "
                                 "(bad batches are rejected, counted and logged)")
        if not (isinstance(max_delay, (int, float)) and 0 <= max_delay <= 3600):
            raise InputError(f"BackgroundMonitor(max_delay={max_delay!r})", expected="seconds in [0, 3600]",
                             fix="pass e.g. max_delay=0.05")
        for name, v in (("max_rows", max_rows), ("max_pending", max_pending)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"BackgroundMonitor({name}={v!r})", expected="a positive number of rows",
                                 fix=f"pass e.g. {name}=100_000")
        if when_full not in ("reject", "block"):
            raise InputError(f"BackgroundMonitor(when_full={when_full!r})", expected='"reject" or "block"',
                             fix='pass when_full="reject" (count and drop) or "block" (wait for room)')
        if on_report is not None and not callable(on_report):
            raise InputError("BackgroundMonitor(on_report=...)", expected="a callable taking a Report",
                             found=type(on_report).__name__, fix="pass a function, or None")
        self.monitor, self.on_report = monitor, on_report
        self.max_delay, self.max_rows, self.max_pending = float(max_delay), max_rows, max_pending
        self.block = when_full == "block"
        self.submitted = 0  # batches taken by submit
        self.observed = 0  # monitor calls the worker made (gathered batches, or batch by batch)
        self.checked = 0  # submitted batches the worker has checked
        self.callback_errors = 0
        self.errors = 0
        self.max_waiting = 0  # the most rows that waited at once
        self._cv = threading.Condition(threading.Lock())
        self._pending: deque = deque()  # batches (and _Flush requests) in submission order
        self._rows = 0  # rows pending
        self._since = 0.0  # monotonic time the oldest pending batch arrived
        self._hurry = False  # the worker is asked not to wait for max_delay
        self._closed = False
        self._stopped = False  # the worker has drained the queue after close and ended
        self._waiting_submitters = 0  # blocked in submit (when_full="block")
        self._last_warning = float("-inf")
        self._unlogged = 0  # rejections since the last warning
        self._thread = threading.Thread(target=self._run, name=f"tripwire-background-{monitor.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public
    def submit(self, batch: Any) -> bool:
        """Hand ``batch`` to the worker; False if it was rejected (backlog or closed: counted,
        logged). Never raises; reads nothing of the batch but its row count."""
        try:
            n = batch.num_rows
            n = n if n > 0 else 1
        except Exception:  # not an Arrow table (the worker reads or rejects it): one row
            n = 1
        with self._cv:
            if self._rows and self._rows + n > self.max_pending and not self._closed:
                if not self.block:
                    return self._refuse("backlog", n)
                self._waiting_submitters += 1
                try:
                    while self._rows and self._rows + n > self.max_pending and not self._closed:
                        self._hurry = True
                        self._cv.notify_all()
                        self._cv.wait()
                finally:
                    self._waiting_submitters -= 1
            if self._closed:
                return self._refuse("closed", n)
            if not self._pending:  # the worker may be idle: wake it (once per gathered batch)
                self._since = time.monotonic()
                if self._waiting_submitters:  # the same condition: make sure the worker hears it
                    self._cv.notify_all()
                else:
                    self._cv.notify()
            self._pending.append(batch)
            self._rows += n
            self.submitted += 1
            if self._rows > self.max_waiting:
                self.max_waiting = self._rows
            if self._rows >= self.max_rows and not self._hurry:
                self._hurry = True
                self._cv.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> Report:
        """Check everything submitted so far, then flush the monitor; its report of the
        held-back violations. ``timeout``: seconds to wait (``TimeoutError`` past it)."""
        request = _Flush()
        with self._cv:
            if self._stopped:  # closed and drained: nothing can be pending
                return self.monitor.flush()
            self._pending.append(request)
            self._hurry = True
            self._cv.notify_all()
        if not request.done.wait(timeout):
            raise TimeoutError(f"tripwire background monitor {self.monitor.name!r}: flush took over {timeout} s")
        return request.report

    def close(self, timeout: float | None = None) -> Report:
        """Stop taking batches, check everything pending, flush the monitor, stop the worker;
        the flush's report. Idempotent (later calls return an empty flush)."""
        request = _Flush()
        with self._cv:
            if self._closed:
                self._cv.notify_all()
            else:
                self._closed = True
                self._pending.append(request)
                self._cv.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"tripwire background monitor {self.monitor.name!r}: close took over {timeout} s")
        return request.report if request.done.is_set() else self.monitor.flush()

    def pending_rows(self) -> int:
        """Rows submitted and not yet taken by the worker."""
        return self._rows

    def stats(self) -> dict:
        """Counts so far: ``submitted``, ``checked`` (batches), ``observed`` (monitor calls),
        ``batches_per_observe``, ``pending_rows``, ``max_waiting`` (rows), ``rejected`` (the
        monitor's, all reasons), ``callback_errors``, ``errors``."""
        return {"submitted": self.submitted, "checked": self.checked, "observed": self.observed,
                "batches_per_observe": self.checked / self.observed if self.observed else 0.0,
                "pending_rows": self._rows, "max_waiting": self.max_waiting,
                "rejected": dict(self.monitor.rejected), "callback_errors": self.callback_errors,
                "errors": self.errors}

    def __enter__(self) -> "BackgroundMonitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"BackgroundMonitor({self.monitor.name!r}, submitted={self.submitted}, checked={self.checked}, "
                f"observed={self.observed}, pending_rows={self._rows})")

    # ------------------------------------------------------------------ internals
    def _refuse(self, reason: str, n: int) -> bool:
        """Count and log a batch ``submit`` did not take (called with the queue's lock held)."""
        mon = self.monitor
        mon.rejected[reason] += 1
        if mon.metrics is not None:
            try:
                mon.metrics.record_rejected(reason)
            except Exception:  # metrics must never take the host down
                log.exception("tripwire monitor %r: recording a rejected batch failed", mon.name)
        self._unlogged += 1
        now = time.monotonic()
        if now - self._last_warning >= 1.0:  # a full queue rejects many: one line a second
            log.warning("tripwire background monitor %r rejected %d batch(es) (%s): %d rows waiting, max_pending=%d "
                        "(%d rejected so far)", mon.name, self._unlogged, reason, self._rows, self.max_pending,
                        mon.rejected[reason])
            self._last_warning, self._unlogged = now, 0
        return False

    def _take(self) -> list | None:
        """Wait for work; everything pending (``None``: closed and drained)."""
        with self._cv:
            while True:
                if self._pending:
                    wait = self._since + self.max_delay - time.monotonic()
                    if self._hurry or self._closed or wait <= 0:
                        break
                    self._cv.wait(wait)
                elif self._closed:
                    self._stopped = True  # under the lock: no flush request comes after this
                    return None
                else:
                    self._cv.wait()
            items, self._pending = list(self._pending), deque()
            self._rows, self._hurry = 0, False
            if self._waiting_submitters:
                self._cv.notify_all()
            return items

    def _run(self) -> None:
        while True:
            items = self._take()
            if items is None:
                return
            try:
                self._work(items)
            except BaseException:  # noqa: BLE001 - never let the worker die: count, log, go on
                self.errors += 1
                log.exception("tripwire background monitor %r: the worker failed on %d item(s)",
                              self.monitor.name, len(items))
                for it in items:  # nobody waits forever on a flush the failure skipped
                    if isinstance(it, _Flush) and not it.done.is_set():
                        it.report = self._flush_monitor()
                        it.done.set()

    def _work(self, items: list) -> None:
        run: list[pa.Table] = []  # consecutive tables of one schema
        rows = 0
        for it in items:
            if isinstance(it, _Flush):
                self._check(run)
                run, rows = [], 0
                it.report = self._flush_monitor()
                it.done.set()
                continue
            try:
                table = _arrow.as_table(it)
            except Exception:  # not a table: the monitor rejects it (counted, logged) on its own
                self._check(run)
                run, rows = [], 0
                self._observe_each([it])
                continue
            if run and (rows + table.num_rows > self.max_rows or not table.schema.equals(run[0].schema)):
                self._check(run)
                run, rows = [], 0
            run.append(table)
            rows += table.num_rows
        self._check(run)

    def _flush_monitor(self) -> Report:
        try:
            return self.monitor.flush()
        except Exception:  # noqa: BLE001 - reported, counted; the worker goes on
            self.errors += 1
            log.exception("tripwire background monitor %r: flushing the monitor failed", self.monitor.name)
            return Report([], {"rows": _EMPTY}, self.monitor.backend, 0.0)

    def _check(self, run: list) -> None:
        """Observe a run of same-schema tables: gathered into one batch when the monitor takes
        it whole, else batch by batch."""
        if not run:
            return
        if len(run) == 1:
            return self._observe_each(run)
        mon = self.monitor
        t0 = time.perf_counter()
        try:
            whole = pa.concat_tables(run)
            with mon._lock:
                if mon._adapters is None:
                    mon._build(whole.schema)
                if not _ordered_across(run, whole, mon._order_columns()):
                    raise OutOfOrder("a stream's frames go back in time across the gathered batches")
                report, found = mon._observe(whole, t0)
        except Exception:  # noqa: BLE001 - some batch is bad or late: each on its own, as observe does
            return self._observe_each(run)
        if mon.metrics is not None or mon.alerts is not None:
            mon._record(report, whole.num_rows, found)
        self.observed += 1
        self.checked += len(run)
        self._deliver(report)

    def _observe_each(self, batches: list) -> None:
        for b in batches:
            report = self.monitor.observe(b)  # never raises (not strict)
            self.observed += 1
            self.checked += 1
            self._deliver(report)

    def _deliver(self, report: Report) -> None:
        if self.on_report is None or report.rejected is not None or not len(report):
            return
        try:
            self.on_report(report)
        except Exception:  # noqa: BLE001 - a user's callback must not stop the worker
            self.callback_errors += 1
            log.exception("tripwire background monitor %r: on_report failed (%d failures so far)",
                          self.monitor.name, self.callback_errors)
