"""``BackgroundMonitor``: a :class:`~tripwire.monitor.Monitor` checked off the request path.

``submit(batch)`` only hands a batch over; one worker thread checks what is pending in gathered
batches (one ``observe`` per run of batches), so the monitor's fixed cost per call is paid once
per many requests. Made by ``Monitor.background(...)``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from . import _arrow
from .errors import InputError
from .monitor import _EMPTY, Monitor
from .report import Report

__all__ = ["BackgroundMonitor"]

log = logging.getLogger("tripwire.monitor")


class _Flush:
    """A flush request in the background queue: done once everything submitted before it was
    checked and the monitor flushed."""

    __slots__ = ("done", "report")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.report: Report | None = None


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
        self.worker_cpu_s = 0.0  # CPU time of the worker thread in _work (time.thread_time)
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
        self._plain_schema = pa.schema([])  # _work's: see there
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
        monitor's, all reasons), ``callback_errors``, ``errors``, ``worker_cpu_s`` (CPU seconds
        the worker thread spent checking, on-report callbacks included)."""
        return {"submitted": self.submitted, "checked": self.checked, "observed": self.observed,
                "worker_cpu_s": self.worker_cpu_s,
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
            cpu = time.thread_time()
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
            self.worker_cpu_s += time.thread_time() - cpu

    def _work(self, items: list, optimistic: bool = True) -> None:
        run: list[pa.Table] = []  # consecutive tables of one schema
        rows = 0
        # the last schema as_table returned a table of as it was: a table of that schema is
        # taken as is (as_table walks every field: ~5 us a frame). ``optimistic``: once a run
        # starts with a table of that schema, the tables after it join it unexamined, and
        # concatenating the run checks that they all have its schema (in C++, at no cost of
        # its own); if one has not, the run is sorted out table by table (``_check``)
        plain = self._plain_schema
        run_plain = False  # run[0] has the schema ``plain``
        verified = not optimistic  # every table of a run was compared with its first
        for it in items:
            if isinstance(it, _Flush):
                self._check(run, verified)
                run, rows = [], 0
                it.report = self._flush_monitor()
                it.done.set()
                continue
            if type(it) is pa.Table and ((optimistic and run_plain) or it.schema.equals(plain)):
                table, fast = it, True
            else:
                try:
                    table = _arrow.as_table(it)
                except Exception:  # not a table: the monitor rejects it (counted, logged) on its own
                    self._check(run, verified)
                    run, rows = [], 0
                    self._observe_each([it])
                    continue
                fast = False
                if table is it and not table.schema.equals(plain):
                    plain = self._plain_schema = table.schema
                    run_plain = False  # run[0] was compared with the old one
            if run and (rows + table.num_rows > self.max_rows
                        or not ((fast and run_plain) or table.schema.equals(run[0].schema))):
                self._check(run, verified)
                run, rows = [], 0
            if not run:
                run_plain = fast
            run.append(table)
            rows += table.num_rows
        self._check(run, verified)

    def _flush_monitor(self) -> Report:
        try:
            return self.monitor.flush()
        except Exception:  # noqa: BLE001 - reported, counted; the worker goes on
            self.errors += 1
            log.exception("tripwire background monitor %r: flushing the monitor failed", self.monitor.name)
            return Report([], {"rows": _EMPTY}, self.monitor.backend, 0.0)

    def _check(self, run: list, verified: bool = False) -> None:
        """Observe a run of same-schema tables: gathered into one batch when the monitor takes
        it whole, else batch by batch. ``verified=False``: the tables after the first were not
        examined (``_work``): if they do not all have its schema, they are sorted out again."""
        if not run:
            return
        if len(run) == 1:
            return self._observe_each(run)
        mon = self.monitor
        t0 = time.perf_counter()
        try:
            tables = pa.concat_tables(run)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # schemas differ
            if not verified:
                return self._work(run, optimistic=False)
            return self._observe_each(run)
        try:
            # one copy into one chunk: the engines read a batch in one piece (chunk by chunk,
            # each of the run's small batches would cost a call of its own)
            whole = tables.combine_chunks()
            parts = np.cumsum([t.num_rows for t in run[:-1]], dtype=np.int64)
            report = mon._observe_gathered(run, whole, parts, t0)
        except Exception:  # noqa: BLE001 - some batch is bad or late: each on its own, as observe does
            return self._observe_each(run)
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
