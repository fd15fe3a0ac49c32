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
from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _arrow, _dispatch
from ._assertion import Assertion, Result
from ._streaming import (ByIdentity, NativeBoxes, OutOfOrder, _Ordered, _ordered_across, _plain, adapter_for,
                         native_members)
from .errors import ColumnError, InputError
from .report import Report
from .suite import Suite

if TYPE_CHECKING:
    from .background import BackgroundMonitor

__all__ = ["Monitor"]

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
        native = self._native
        try:
            # read outside the lock: it releases the GIL (see NativeBoxes.stage)
            staged = None if native is None else native.stage(table)
        except Exception:  # noqa: BLE001 - read under the lock instead, where errors are reported
            staged = None
        with self._lock:
            try:
                report, found = self._observe(table, t0, staged=staged)
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

    def background(self, **options: Any) -> BackgroundMonitor:
        """This monitor, checked off the request path by one worker thread that gathers the
        submitted batches (:class:`BackgroundMonitor`; ``options`` are its own)."""
        from .background import BackgroundMonitor  # imports this module

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

    def _observe(self, table: pa.Table, t0: float, parts: np.ndarray | None = None, staged=None) -> Report:
        """``parts``: ``table`` is several batches gathered (the first row of each after the
        first); the native engine checks its own frame order across them (the caller checks
        the other assertions' columns: ``_order_columns``). ``staged``: the native engine's
        input made outside the lock (``NativeBoxes.stage``), or ``None``."""
        n = table.num_rows
        if self._adapters is None:
            self._build(table.schema)
        be = _dispatch.resolve(self.backend, n)
        native, adapters = self._native, self._adapters
        if native is not None:
            native.prepare(table, self.rows, parts, staged)  # checks the batch; changes nothing yet
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

    def _observe_gathered(self, batches: list, whole: pa.Table, parts: np.ndarray, t0: float) -> Report:
        """``observe`` of ``batches`` (one schema) in turn, as one call: ``whole`` is them
        concatenated in one chunk, ``parts`` the first row of each after the first (for
        :class:`BackgroundMonitor`). Raises, changing nothing, where ``observe`` would reject
        one of them, or a stream's frame is older than the newest of an earlier batch (allowed
        inside one batch, refused across batches); the caller then observes them one by one."""
        native = self._native
        staged = None if native is None else native.stage(whole)  # outside the lock: see observe
        with self._lock:
            if self._adapters is None:
                self._build(whole.schema)
            columns = self._order_columns()
            if self._native is not None:  # its own columns: checked in the engine's pass
                columns.discard((self._native.stream, self._native.cols.frame))
            if columns and not _ordered_across(batches, whole, columns):
                raise OutOfOrder("a stream's frames go back in time across the gathered batches")
            report, found = self._observe(whole, t0, parts, staged)
        if self.metrics is not None or self.alerts is not None:
            self._record(report, whole.num_rows, found)
        return report

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
