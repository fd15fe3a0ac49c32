"""MonitorMetrics: exact counts as Prometheus sees them, the rolling rate, several monitors on
one registry, thread safety, errors that never reach the host, and the /metrics endpoint."""
from __future__ import annotations

import gc
import json
import logging
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request

import prometheus_client
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tripwire as tw
from tripwire._rolling import RollingRate
from tripwire.metrics import DEFAULT_LATENCY_BUCKETS, MAX_REASONS, MonitorMetrics, serve_metrics


@pytest.fixture
def registry():
    return prometheus_client.CollectorRegistry()


def value(registry, name, **labels):
    return registry.get_sample_value(name, labels)


# ---------------------------------------------------------------------------------- counts
def test_counters_exact(registry):
    m = MonitorMetrics(registry, monitor="cam-1")
    m.record_batch(30, 2e-5, {"flicker": 3, "appear": 0}, {"flicker": 1})
    m.record_batch(30, 4e-5, {"flicker": 2, "valid": 5}, {"flicker": 2, "valid": 5})
    m.record_batch(10, 1e-5, {}, {})
    m.record_rejected("missing_column")
    m.record_rejected("missing_column")
    m.record_rejected("bad_type")

    assert value(registry, "tripwire_rows_total", monitor="cam-1") == 70
    assert value(registry, "tripwire_batches_total", monitor="cam-1") == 3
    assert value(registry, "tripwire_violations_total", monitor="cam-1", assertion="flicker") == 5
    assert value(registry, "tripwire_violations_total", monitor="cam-1", assertion="valid") == 5
    assert value(registry, "tripwire_events_total", monitor="cam-1", assertion="flicker") == 3
    assert value(registry, "tripwire_events_total", monitor="cam-1", assertion="valid") == 5
    # an assertion only ever reported with 0 gets no series (it was never flagged)
    assert value(registry, "tripwire_violations_total", monitor="cam-1", assertion="appear") is None
    assert value(registry, "tripwire_rejected_batches_total", monitor="cam-1", reason="missing_column") == 2
    assert value(registry, "tripwire_rejected_batches_total", monitor="cam-1", reason="bad_type") == 1
    assert value(registry, "tripwire_violation_rate", monitor="cam-1", assertion="flicker") == pytest.approx(5 / 70)
    assert value(registry, "tripwire_violation_rate_window_rows", monitor="cam-1") == 70


def test_suite_assertions_exported_at_zero(registry):
    m = MonitorMetrics(registry, monitor="m", assertions=["a", "b"])  # series live as long as m
    for name in ("tripwire_violations_total", "tripwire_events_total", "tripwire_violation_rate"):
        assert value(registry, name, monitor="m", assertion="a") == 0
        assert value(registry, name, monitor="m", assertion="b") == 0
    assert value(registry, "tripwire_rows_total", monitor="m") == 0
    assert m.rate("a") == 0.0


def test_latency_histogram_buckets(registry):
    m = MonitorMetrics(registry, monitor="m")
    for seconds in (3e-6, 1e-5, 1.5e-5, 0.3, 20.0):  # 1e-5 lies on a bound: le is inclusive
        m.record_batch(1, seconds, {}, {})
    bucket = lambda le: value(registry, "tripwire_observe_seconds_bucket", monitor="m", le=le)  # noqa: E731
    assert bucket("5e-06") == 1
    assert bucket("1e-05") == 2
    assert bucket("2e-05") == 3
    assert bucket("0.25") == 3
    assert bucket("0.5") == 4
    assert bucket("10.0") == 4
    assert bucket("+Inf") == 5
    assert value(registry, "tripwire_observe_seconds_count", monitor="m") == 5
    assert value(registry, "tripwire_observe_seconds_sum", monitor="m") == pytest.approx(20.300028)
    assert DEFAULT_LATENCY_BUCKETS[0] == 5e-6 and DEFAULT_LATENCY_BUCKETS[-1] == 10.0


def test_custom_namespace_and_buckets(registry):
    m = MonitorMetrics(registry, namespace="shop", latency_buckets=[0.001, 0.1], monitor="m")
    m.record_batch(4, 0.05, {"x": 1}, {"x": 1})
    assert value(registry, "shop_rows_total", monitor="m") == 4
    assert value(registry, "shop_observe_seconds_bucket", monitor="m", le="0.1") == 1
    assert value(registry, "shop_observe_seconds_bucket", monitor="m", le="0.001") == 0
    assert value(registry, "tripwire_rows_total", monitor="m") is None


# ---------------------------------------------------------------------------------- rolling rate
def test_rolling_rate_trims_whole_batches():
    r = RollingRate(10)
    r.add(4, {"a": 1})
    r.add(4, {"a": 2})
    r.add(4, {})
    assert (r.rows, r.rate("a")) == (12, 3 / 12)  # dropping the first would leave 8 < 10
    r.add(3, {"a": 3})
    assert (r.rows, r.rate("a")) == (11, 5 / 11)  # first batch dropped: 11 >= 10
    r.add(0, {"a": 7})                            # an empty batch changes nothing
    assert (r.rows, r.rate("a")) == (11, 5 / 11)
    r.add(50, {"a": 5})                           # a batch larger than the window is the window
    assert (r.rows, r.rate("a"), r.flagged("a")) == (50, 0.1, 5)
    assert r.rate("never_flagged") == 0.0
    assert RollingRate(5).rate("a") == 0.0        # no rows yet


def reference_window(batches, window):
    """The smallest run of most recent non-empty batches holding >= window rows (or all)."""
    rows, flagged = 0, 0
    for n, f in reversed([b for b in batches if b[0] > 0]):
        if rows >= window:
            break
        rows, flagged = rows + n, flagged + f
    return rows, flagged


@settings(max_examples=200, deadline=None)
@given(window=st.integers(1, 60),
       batches=st.lists(st.integers(0, 25).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
                        max_size=40))
def test_rolling_rate_matches_reference(window, batches):
    r = RollingRate(window)
    for i, (n, f) in enumerate(batches):
        r.add(n, {"a": f})
        rows, flagged = reference_window(batches[: i + 1], window)
        assert r.rows == rows
        assert r.rate("a") == (flagged / rows if rows else 0.0)
    assert len(r._batches) <= window  # memory bounded by the window (0-row batches are not kept)


def test_metrics_rate_and_gauge_follow_the_window(registry):
    m = MonitorMetrics(registry, monitor="m", rate_window=100)
    for _ in range(10):
        m.record_batch(10, 1e-5, {"a": 5}, {"a": 1})  # 50 %
    assert m.rate("a") == 0.5 and m.window_rows() == 100
    for _ in range(5):
        m.record_batch(10, 1e-5, {}, {})              # half the window is now clean
    assert m.rate("a") == 0.25
    assert value(registry, "tripwire_violation_rate", monitor="m", assertion="a") == 0.25
    for _ in range(5):
        m.record_batch(10, 1e-5, {}, {})
    assert m.rate("a") == 0.0
    assert value(registry, "tripwire_violations_total", monitor="m", assertion="a") == 50  # counters keep counting


# ---------------------------------------------------------------------------------- several monitors
def test_two_monitors_on_one_registry(registry):
    a = MonitorMetrics(registry)
    b = MonitorMetrics(registry)
    c = MonitorMetrics(registry, monitor="cam-7")
    assert (a.monitor, b.monitor, c.monitor) == ("default", "default-2", "cam-7")
    a.record_batch(10, 1e-5, {"x": 1}, {"x": 1})
    b.record_batch(20, 1e-5, {"x": 4}, {"x": 2})
    assert value(registry, "tripwire_rows_total", monitor="default") == 10
    assert value(registry, "tripwire_rows_total", monitor="default-2") == 20
    assert value(registry, "tripwire_violations_total", monitor="default-2", assertion="x") == 4
    assert (a.rate("x"), b.rate("x")) == (0.1, 0.2)

    with pytest.raises(tw.InputError, match="'cam-7' is already used"):
        MonitorMetrics(registry, monitor="cam-7")
    c.close()
    c.close()  # idempotent
    assert value(registry, "tripwire_rows_total", monitor="cam-7") is None
    MonitorMetrics(registry, monitor="cam-7")   # the name is free again

    del b
    gc.collect()  # a collected monitor frees its name and its series
    assert value(registry, "tripwire_rows_total", monitor="default-2") is None
    assert MonitorMetrics(registry).monitor == "default-2"


def test_two_monitors_on_the_default_registry():
    a, b = MonitorMetrics(monitor="test-default-a"), MonitorMetrics(monitor="test-default-b")
    try:
        a.record_batch(3, 1e-5, {}, {})
        b.record_batch(4, 1e-5, {}, {})
        reg = prometheus_client.REGISTRY
        assert value(reg, "tripwire_rows_total", monitor="test-default-a") == 3
        assert value(reg, "tripwire_rows_total", monitor="test-default-b") == 4
        assert b"tripwire_rows_total" in prometheus_client.generate_latest()
    finally:
        a.close()
        b.close()


def test_registry_conflicts_are_clear_errors(registry):
    MonitorMetrics(registry, monitor="m")
    with pytest.raises(tw.InputError, match="latency_buckets differ.*fix: use the same buckets"):
        MonitorMetrics(registry, latency_buckets=[0.1, 1.0])
    other = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("rows", "someone else's", namespace="tripwire", registry=other)
    with pytest.raises(tw.InputError, match="cannot register.*fix: pass another namespace"):
        MonitorMetrics(other)


@pytest.mark.parametrize("kwargs, match", [
    ({"rate_window": 0}, "rate_window"),
    ({"rate_window": 1.5}, "rate_window"),
    ({"latency_buckets": []}, "latency_buckets"),
    ({"latency_buckets": [1.0, 0.1]}, "latency_buckets"),
    ({"monitor": ""}, "monitor name"),
    ({"assertions": [1]}, "assertions"),
])
def test_bad_arguments(registry, kwargs, match):
    with pytest.raises(tw.InputError, match=match):
        MonitorMetrics(registry, **kwargs)


def test_missing_prometheus_client_names_the_extra(monkeypatch, registry):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import now raises ImportError
    with pytest.raises(tw.BackendUnavailable, match=r"pip install tripwire\[serve\]"):
        MonitorMetrics(registry)
    with pytest.raises(ModuleNotFoundError, match=r"pip install tripwire\[serve\]"):
        tw.serve_metrics(0)


# ---------------------------------------------------------------------------------- threads
def test_eight_threads_counts_exact(registry):
    m = MonitorMetrics(registry, monitor="m", rate_window=1000)
    per_thread, threads_n = 2000, 8
    start = threading.Barrier(threads_n)

    def work(i):
        start.wait()
        for _ in range(per_thread):
            m.record_batch(10, 1e-5, {"a": 1, "b": i % 2}, {"a": 1})
            if _ % 500 == 0:
                m.record_rejected(f"r{i % 2}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    total = per_thread * threads_n
    assert value(registry, "tripwire_batches_total", monitor="m") == total
    assert value(registry, "tripwire_rows_total", monitor="m") == 10 * total
    assert value(registry, "tripwire_violations_total", monitor="m", assertion="a") == total
    assert value(registry, "tripwire_violations_total", monitor="m", assertion="b") == total // 2
    assert value(registry, "tripwire_events_total", monitor="m", assertion="a") == total
    assert value(registry, "tripwire_observe_seconds_count", monitor="m") == total
    assert value(registry, "tripwire_rejected_batches_total", monitor="m", reason="r0") == 16
    assert value(registry, "tripwire_rejected_batches_total", monitor="m", reason="r1") == 16
    assert m.rate("a") == 0.1 and m.window_rows() == 1000  # every batch flags 1 row of 10
    assert m.errors == 0


# ---------------------------------------------------------------------------------- never raises
def test_bad_calls_are_logged_not_raised(registry, caplog):
    m = MonitorMetrics(registry, monitor="m")
    m.record_batch(10, 1e-5, {"a": 1}, {"a": 1})
    with caplog.at_level(logging.ERROR, logger="tripwire.metrics"):
        m.record_batch(10, float("nan"), {"a": 1}, {})
        m.record_batch(-1, 1e-5, {}, {})
        m.record_batch(10, 1e-5, {"a": 2, "b": -1}, {})   # nothing of a bad call is counted
        m.record_batch(10, 1e-5, None, {})
        m.record_rejected(None)
    assert m.errors == 5
    assert len([r for r in caplog.records if r.name == "tripwire.metrics"]) == 5
    assert "record_batch failed" in caplog.records[0].getMessage()
    assert value(registry, "tripwire_rows_total", monitor="m") == 10
    assert value(registry, "tripwire_violations_total", monitor="m", assertion="a") == 1
    assert value(registry, "tripwire_observe_seconds_sum", monitor="m") == pytest.approx(1e-5)


def test_strict_raises(registry):
    m = MonitorMetrics(registry, monitor="m", strict=True)
    with pytest.raises(ValueError, match="negative count"):
        m.record_batch(10, 1e-5, {"a": -1}, {})
    with pytest.raises(ValueError, match="non-empty string"):
        m.record_rejected("")


def test_rejection_reasons_are_capped(registry, caplog):
    m = MonitorMetrics(registry, monitor="m")
    with caplog.at_level(logging.WARNING, logger="tripwire.metrics"):
        for i in range(MAX_REASONS + 10):
            m.record_rejected(f"reason-{i}")
        m.record_rejected("reason-0")   # a known reason keeps its own series
    assert value(registry, "tripwire_rejected_batches_total", monitor="m", reason="reason-0") == 2
    assert value(registry, "tripwire_rejected_batches_total", monitor="m", reason="other") == 10
    assert value(registry, "tripwire_rejected_batches_total", monitor="m",
                 reason=f"reason-{MAX_REASONS}") is None
    assert len(caplog.records) == 1 and "counted as 'other'" in caplog.records[0].getMessage()


def test_record_batch_cost_is_small(registry):
    """O(assertions) with no per-row work: a 10⁶-row batch costs what a 30-row one does, and a
    5-assertion call stays far below the ~20 µs request budget (measured ~3 µs; bound generous
    for shared CI machines)."""
    m = MonitorMetrics(registry, monitor="m", assertions=list("abcde"))
    flagged, events = {"a": 1, "b": 2, "c": 0, "d": 1, "e": 3}, {"a": 1, "b": 1, "d": 1, "e": 1}

    def median_us(n_rows):
        samples = []
        for _ in range(200):
            t0 = time.perf_counter()
            for _ in range(10):
                m.record_batch(n_rows, 2e-5, flagged, events)
            samples.append((time.perf_counter() - t0) / 10 * 1e6)
        return statistics.median(samples)

    small, large = median_us(30), median_us(1_000_000)
    assert small < 20, small
    assert large < 3 * small + 5, (small, large)


# ---------------------------------------------------------------------------------- endpoint
def test_serve_metrics_endpoint(registry):
    m = MonitorMetrics(registry, monitor="web")
    m.record_batch(12, 1e-5, {"a": 3}, {"a": 2})
    with serve_metrics(0, registry=registry) as server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(server.url, timeout=10) as resp:
            text = resp.read().decode()
        assert 'tripwire_rows_total{monitor="web"} 12.0' in text
        assert 'tripwire_violations_total{assertion="a",monitor="web"} 3.0' in text
        assert 'tripwire_violation_rate{assertion="a",monitor="web"} 0.25' in text
        with pytest.raises(tw.InputError, match="cannot listen"):
            serve_metrics(server.port, registry=registry)  # the port is taken
    with pytest.raises(urllib.error.URLError):  # closed: nothing listens any more
        urllib.request.urlopen(server.url, timeout=5)
    assert tw.serve_metrics is serve_metrics and tw.MonitorMetrics is MonitorMetrics


# ---------------------------------------------------------------------------------- README
def test_readme_metrics_and_alerts_example():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "metrics.record_batch(" in b)
    ns: dict = {}
    exec(block, ns)
    # as the README's comments say
    assert ns["metrics"].rate("flicker") == 0.06
    assert [e.state for e in ns["pages"]] == ["firing"]
    assert ns["registry"].get_sample_value("tripwire_rejected_batches_total",
                                           {"monitor": "cam-1", "reason": "missing_column"}) == 1
    event = ns["pages"][0].to_dict()
    shown = json.loads(re.search(r"```json\n(.*?)```", readme, re.S).group(1))
    assert set(shown) == set(event)
    assert {k: event[k] for k in shown if k not in ("timestamp", "time")} == \
        {k: v for k, v in shown.items() if k not in ("timestamp", "time")}


def test_readme_monitor_with_metrics_example():
    import re
    import urllib.request
    from pathlib import Path

    import pyarrow as pa

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "tw.Monitor(suite, name=" in b)
    ns: dict = {}
    exec(block, ns)
    monitor, server = ns["monitor"], ns["server"]
    try:
        monitor.observe(pa.table({"frame": [0], "track": [1], "x1": [0.0], "y1": [0.0], "x2": [1.0], "y2": [1.0]}))
        body = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert 'tripwire_rows_total{monitor="cam-1"} 1.0' in body
    finally:
        server.close()
        monitor.metrics.close()
