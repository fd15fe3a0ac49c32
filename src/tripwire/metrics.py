"""Prometheus metrics of a streaming monitor (extra ``serve``: ``pip install tripwire[serve]``).

``MonitorMetrics`` holds the counts of one monitor; the monitor calls it once per batch::

    metrics = MonitorMetrics(monitor="cam-1", assertions=[a.name for a in suite])
    metrics.record_batch(n_rows, seconds, flagged={"flicker": 3}, events={"flicker": 1})
    metrics.record_rejected("missing_column")
    metrics.rate("flicker")            # rolling violation rate, for alerts and tests

Series (``namespace`` defaults to ``tripwire``; every series has a ``monitor`` label):

=========================================  =========  =============================================
``tripwire_violations_total``              counter    flagged rows, by ``assertion``
``tripwire_events_total``                  counter    violation events, by ``assertion``
``tripwire_rows_total``                    counter    rows observed (in accepted batches)
``tripwire_batches_total``                 counter    batches observed (accepted)
``tripwire_rejected_batches_total``        counter    rejected batches, by ``reason``
``tripwire_observe_seconds``               histogram  observe latency per batch, 5 µs .. 10 s
``tripwire_violation_rate``                gauge      flagged / checked rows over the rolling
                                                      window, by ``assertion``
``tripwire_violation_rate_window_rows``    gauge      rows in that window
=========================================  =========  =============================================

Why not prometheus_client's ``Counter``/``Histogram`` objects: each ``inc`` takes its own lock
(~0.5 µs here), which is ~10 µs a batch for a 5-assertion suite, half the request budget. The
request path instead adds plain integers under one lock, and one collector per (registry,
namespace) turns them into counter, histogram and gauge families when the registry is
scraped. The exposition is the same as the objects would give (minus ``_created`` series).

Several monitors on one registry: the collector is registered once per (registry, namespace)
and shared; each ``MonitorMetrics`` is one ``monitor`` label value of it, so a second instance
never hits prometheus_client's "Duplicated timeseries" error. Two live instances may not share
a ``monitor`` name on one registry; ``close()`` (or garbage collection) removes an instance's
series and frees its name. prometheus_client's multiprocess mode is not supported.
"""
from __future__ import annotations

import logging
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from ._rolling import RollingRate
from .errors import BackendUnavailable, InputError

__all__ = ["MonitorMetrics", "MetricsServer", "serve_metrics", "DEFAULT_LATENCY_BUCKETS", "MAX_REASONS"]

log = logging.getLogger("tripwire.metrics")

# observe() takes ~10-100 µs on a frame and up to seconds on an archive-sized batch
DEFAULT_LATENCY_BUCKETS = (
    5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
# a reason is a label value: past this many distinct ones, new ones are counted as "other", so
# a caller that puts data into reasons cannot blow up the host's series count
MAX_REASONS = 32

_SERVE_HINT = "pip install tripwire[serve]"


def _prometheus_client():
    try:
        import prometheus_client
    except ImportError as exc:
        raise BackendUnavailable(
            f"tripwire metrics need prometheus_client, which is not installed; install it with "
            f"`{_SERVE_HINT}`"
        ) from exc
    return prometheus_client


class _Counts:
    """Everything one monitor counts, guarded by one lock (the request path takes it once)."""

    __slots__ = ("lock", "bounds", "rows", "batches", "buckets", "seconds", "violations", "events",
                 "rejected", "rolling")

    def __init__(self, bounds: tuple[float, ...], rate_window: int):
        self.lock = threading.Lock()
        self.bounds = bounds
        self.rows = 0
        self.batches = 0
        self.buckets = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.seconds = 0.0
        self.violations: dict[str, int] = {}
        self.events: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.rolling = RollingRate(rate_window)


class _Collector:
    """The metric families of every monitor on one (registry, namespace)."""

    def __init__(self, pc, namespace: str, bounds: tuple[float, ...]):
        self.core = pc.metrics_core
        self.ns = namespace
        self.bounds = bounds
        self.le = [pc.utils.floatToGoString(b) for b in bounds] + ["+Inf"]
        self.monitors: dict[str, _Counts] = {}  # guarded by the module's _lock

    def describe(self):
        # names only: lets the registry detect clashes without collecting
        return self._families().values()

    def _families(self):
        core, ns = self.core, self.ns
        return {
            "violations": core.CounterMetricFamily(f"{ns}_violations", "Rows flagged by an assertion.",
                                                   labels=["monitor", "assertion"]),
            "events": core.CounterMetricFamily(f"{ns}_events", "Violation events of an assertion.",
                                               labels=["monitor", "assertion"]),
            "rows": core.CounterMetricFamily(f"{ns}_rows", "Rows observed in accepted batches.",
                                             labels=["monitor"]),
            "batches": core.CounterMetricFamily(f"{ns}_batches", "Batches observed (accepted).",
                                                labels=["monitor"]),
            "rejected": core.CounterMetricFamily(f"{ns}_rejected_batches", "Batches rejected, by reason.",
                                                 labels=["monitor", "reason"]),
            "latency": core.HistogramMetricFamily(f"{ns}_observe_seconds", "Latency of observe() per batch.",
                                                  labels=["monitor"]),
            "rate": core.GaugeMetricFamily(
                f"{ns}_violation_rate", "Flagged rows / checked rows of an assertion over the rolling window.",
                labels=["monitor", "assertion"]),
            "window_rows": core.GaugeMetricFamily(f"{ns}_violation_rate_window_rows",
                                                  "Rows in the rolling window of violation_rate.",
                                                  labels=["monitor"]),
        }

    def collect(self):
        fams = self._families()
        with _lock:
            monitors = sorted(self.monitors.items())
        for name, c in monitors:
            with c.lock:  # one consistent snapshot per monitor
                violations, events, rejected = dict(c.violations), dict(c.events), dict(c.rejected)
                rows, batches, buckets, seconds = c.rows, c.batches, list(c.buckets), c.seconds
                window_rows = c.rolling.rows
                rates = {a: c.rolling.rate(a) for a in violations}
            for a, n in violations.items():
                fams["violations"].add_metric([name, a], n)
                fams["rate"].add_metric([name, a], rates[a])
            for a, n in events.items():
                fams["events"].add_metric([name, a], n)
            fams["rows"].add_metric([name], rows)
            fams["batches"].add_metric([name], batches)
            for reason, n in rejected.items():
                fams["rejected"].add_metric([name, reason], n)
            cumulative, total = [], 0
            for le, n in zip(self.le, buckets):
                total += n
                cumulative.append((le, total))
            fams["latency"].add_metric([name], cumulative, seconds)
            fams["window_rows"].add_metric([name], window_rows)
        return list(fams.values())


_lock = threading.Lock()  # guards the map below and every _Collector.monitors
# registry -> namespace -> collector; weak so that a dropped registry frees its collector
_collectors: "weakref.WeakKeyDictionary[Any, dict[str, _Collector]]" = weakref.WeakKeyDictionary()


def _release(collector: _Collector, name: str, counts: _Counts) -> None:
    with _lock:
        if collector.monitors.get(name) is counts:
            del collector.monitors[name]


class MonitorMetrics:
    """The Prometheus series of one monitor; thread-safe, O(assertions) per call, one lock.

    - ``registry``: a ``prometheus_client.CollectorRegistry``; default ``prometheus_client.REGISTRY``.
    - ``rate_window``: rows in the rolling violation rate. Whole batches are kept or dropped
      (``tripwire._rolling.RollingRate``): once that many rows were seen, the window holds at
      least ``rate_window`` rows and fewer than ``rate_window`` + its oldest batch's rows.
    - ``latency_buckets``: upper bounds (seconds) of the latency histogram; every monitor of a
      (registry, namespace) uses the same ones.
    - ``monitor``: the ``monitor`` label value; default ``"default"``, then ``"default-2"``, ...
      for further live instances on the same registry.
    - ``assertions``: names exported at 0 from the start (others appear when first flagged;
      pass the suite's names for complete series).
    - ``strict``: raise errors of the calls (a negative count, a NaN latency, ...) instead of
      logging and counting them in ``errors``. By default nothing raises into the request path.

    Counts are Python ints; pass ``int(n)``, not NumPy scalars, for the cheapest calls.
    """

    def __init__(self, registry: Any = None, namespace: str = "tripwire", rate_window: int = 1000,
                 latency_buckets: Iterable[float] = DEFAULT_LATENCY_BUCKETS, *,
                 monitor: str | None = None, assertions: Iterable[str] = (), strict: bool = False):
        pc = _prometheus_client()
        if isinstance(rate_window, bool) or not isinstance(rate_window, int) or rate_window < 1:
            raise InputError("MonitorMetrics: bad rate_window", expected="an integer >= 1",
                             found=repr(rate_window), fix="pass rate_window=1000 (rows), say")
        bounds = tuple(float(b) for b in latency_buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or bounds[-1] == float("inf"):
            raise InputError("MonitorMetrics: bad latency_buckets",
                             expected="a non-empty increasing sequence of finite upper bounds in seconds "
                                      "(the +Inf bucket is added)",
                             found=repr(latency_buckets), fix="pass e.g. tripwire.metrics.DEFAULT_LATENCY_BUCKETS")
        if monitor is not None and (not isinstance(monitor, str) or not monitor):
            raise InputError("MonitorMetrics: bad monitor name", expected="a non-empty string",
                             found=repr(monitor), fix='pass monitor="cam-1", say')
        names = list(assertions)
        if not all(isinstance(a, str) for a in names):
            raise InputError("MonitorMetrics: bad assertions", expected="assertion names (strings)",
                             found=repr(names), fix="pass [a.name for a in suite]")
        self.registry = pc.REGISTRY if registry is None else registry
        self.namespace = namespace
        self.rate_window = rate_window
        self.strict = strict
        self.errors = 0  # calls whose error was logged instead of raised
        self._warned_reasons = False
        self._counts = counts = _Counts(bounds, rate_window)
        for a in names:
            counts.violations[a] = counts.events[a] = 0

        with _lock:
            per_registry = _collectors.setdefault(self.registry, {})
            collector = per_registry.get(namespace)
            if collector is None:
                collector = _Collector(pc, namespace, bounds)
                try:
                    self.registry.register(collector)
                except ValueError as exc:  # "Duplicated timeseries": someone else owns these names
                    raise InputError(
                        f"MonitorMetrics: cannot register tripwire's metrics on this registry: {exc}",
                        expected=f"no other collector of {namespace}_* series on the registry",
                        fix="pass another namespace= or registry=") from exc
                per_registry[namespace] = collector
            elif collector.bounds != bounds:
                raise InputError(
                    f"MonitorMetrics: latency_buckets differ from those of the {namespace}_observe_seconds "
                    f"histogram already on this registry",
                    expected=repr(collector.bounds), found=repr(bounds),
                    fix="use the same buckets for every monitor of a registry, or another namespace=")
            self.monitor = self._free_name(collector, monitor)
            collector.monitors[self.monitor] = counts
        self._close = weakref.finalize(self, _release, collector, self.monitor, counts)
        self._close.atexit = False  # nothing to clean up in a process that is ending

    @staticmethod
    def _free_name(collector: _Collector, monitor: str | None) -> str:
        if monitor is not None:
            if monitor in collector.monitors:
                raise InputError(
                    f"MonitorMetrics: monitor name {monitor!r} is already used on this registry",
                    expected="a monitor name unique among the live monitors of a registry",
                    fix="pass another monitor=, or close() the other MonitorMetrics first")
            return monitor
        name, i = "default", 1
        while name in collector.monitors:
            i += 1
            name = f"default-{i}"
        return name

    # ------------------------------------------------------------------ the monitor's calls
    def record_batch(self, n_rows: int, seconds: float, flagged: dict[str, int],
                     events: dict[str, int]) -> None:
        """One observed batch: ``n_rows`` checked in ``seconds``; flagged rows and events per
        assertion (assertions with 0 may be absent)."""
        c = self._counts
        try:
            # checked before any count changes, so a bad call changes nothing
            if not (n_rows >= 0 and seconds >= 0):  # also refuses NaN
                raise ValueError(f"n_rows and seconds must be >= 0, got {n_rows!r}, {seconds!r}")
            fv, ev = flagged.values(), events.values()  # (refuses what is not a mapping, as None)
            if (fv and min(fv) < 0) or (ev and min(ev) < 0):  # no min() call for the usual {}
                raise ValueError(f"negative count in flagged={flagged!r} or events={events!r}")
            i = bisect_left(c.bounds, seconds)  # first bucket with seconds <= bound
            with c.lock:
                if flagged or events:  # most batches flag nothing: no loops for them
                    for counter, per_assertion in ((c.violations, flagged), (c.events, events)):
                        for a, n in per_assertion.items():
                            if n:
                                counter[a] = counter.get(a, 0) + n
                c.rows += n_rows
                c.batches += 1
                c.buckets[i] += 1
                c.seconds += seconds
                c.rolling.add(n_rows, flagged)
        except Exception as exc:
            self._failed("record_batch", exc)

    def record_rejected(self, reason: str) -> None:
        """One rejected batch. Keep ``reason`` to a small fixed set of short words
        (``"missing_column"``): past ``MAX_REASONS`` distinct ones, new ones count as "other"."""
        c = self._counts
        try:
            if not isinstance(reason, str) or not reason:
                raise ValueError(f"a rejection reason is a non-empty string, got {reason!r}")
            with c.lock:
                rejected = c.rejected
                if reason not in rejected and len(rejected) >= MAX_REASONS:
                    if not self._warned_reasons:
                        self._warned_reasons = True
                        log.warning("monitor %r: more than %d rejection reasons; %r and later new ones "
                                    "are counted as 'other'", self.monitor, MAX_REASONS, reason)
                    reason = "other"
                rejected[reason] = rejected.get(reason, 0) + 1
        except Exception as exc:
            self._failed("record_rejected", exc)

    def rate(self, assertion: str) -> float:
        """The rolling violation rate of ``assertion`` (0.0 before any row or when never flagged)."""
        c = self._counts
        with c.lock:
            return c.rolling.rate(assertion)

    def window_rows(self) -> int:
        """Rows in the rolling window now."""
        c = self._counts
        with c.lock:
            return c.rolling.rows

    def close(self) -> None:
        """Remove this monitor's series from the registry and free its name. Idempotent."""
        self._close()

    # ------------------------------------------------------------------ internals
    def _failed(self, call: str, exc: Exception) -> None:
        if self.strict:
            raise exc
        self.errors += 1
        # a broken caller would log on every batch: the first 10, then every 1000th
        if self.errors <= 10 or self.errors % 1000 == 0:
            log.error("monitor %r: MonitorMetrics.%s failed (%d so far), the call was ignored: %r",
                      self.monitor, call, self.errors, exc)

    def __repr__(self) -> str:
        return (f"MonitorMetrics(monitor={self.monitor!r}, namespace={self.namespace!r}, "
                f"rate_window={self.rate_window})")


class MetricsServer:
    """A running ``/metrics`` endpoint; ``close()`` stops it (also as a context manager)."""

    def __init__(self, server: Any, thread: threading.Thread, addr: str):
        self._server, self._thread = server, thread
        self.addr = addr
        self.port: int = server.server_port  # the bound port (useful with port=0)

    @property
    def url(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self, timeout: float = 5.0) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MetricsServer({self.url})"


def serve_metrics(port: int, addr: str = "127.0.0.1", registry: Any = None) -> MetricsServer:
    """Serve ``registry`` (default ``prometheus_client.REGISTRY``) at ``http://addr:port/metrics``
    on a daemon thread. ``port=0`` picks a free port (read it from ``.port``). Loopback by
    default: pass ``addr="0.0.0.0"`` to be scraped from other machines."""
    pc = _prometheus_client()
    try:
        server, thread = pc.start_http_server(port, addr=addr,
                                              registry=pc.REGISTRY if registry is None else registry)
    except OSError as exc:
        raise InputError(f"serve_metrics: cannot listen on {addr}:{port}: {exc}",
                         expected="a free port on a local address",
                         fix="pass another port (0 picks a free one) or addr") from exc
    return MetricsServer(server, thread, addr)
