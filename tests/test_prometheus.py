"""A real Prometheus server (the Debian package ``prometheus``) scrapes ``tw.serve_metrics`` on
127.0.0.1 and its HTTP query API returns the counts the monitor recorded.

Skipped when the ``prometheus`` binary is absent, unless ``TRIPWIRE_REQUIRE_PROMETHEUS=1``
(``.ci/run`` installs the package and sets it, so CI fails rather than skips). Everything stays
on loopback and every wait is bounded.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import prometheus_client
import pytest

import tripwire as tw

pytestmark = pytest.mark.prometheus

PROMETHEUS = shutil.which("prometheus")
WAIT_S = 30  # for a value to show up in the query API (1 s scrapes)


@pytest.fixture
def prometheus_binary():
    if PROMETHEUS is None:
        if os.environ.get("TRIPWIRE_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("TRIPWIRE_REQUIRE_PROMETHEUS=1 but no `prometheus` on PATH; "
                        "install it with `apt-get install prometheus` (Debian/Ubuntu)")
        pytest.skip("the `prometheus` binary is not installed (Debian/Ubuntu: apt-get install "
                    "prometheus); CI installs it and runs this test")
    return PROMETHEUS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tripwire
    static_configs:
      - targets: ["127.0.0.1:{target}"]
"""


class Prometheus:
    """One prometheus process on 127.0.0.1 with its own config and storage under ``tmp``."""

    def __init__(self, binary: str, tmp, target_port: int):
        (tmp / "prometheus.yml").write_text(CONFIG.format(target=target_port))
        self.log_path = tmp / "prometheus.log"
        for _ in range(3):  # the free port may be taken between probe and bind: try another
            self.port = free_port()
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen(
                [binary, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
                stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp)
            if self._wait_ready():
                return
            self.stop()
            if "address already in use" not in self.log_path.read_text():
                break
        raise AssertionError(f"prometheus did not become ready; its log:\n{self.log_path.read_text()[-3000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return False

    def query(self, promql: str) -> dict[str, float]:
        """Instant query: {label-set string: value}."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return {json.dumps(x["metric"], sort_keys=True): float(x["value"][1]) for x in body["data"]["result"]}

    def wait_for(self, expected: dict[str, float]) -> None:
        """Poll until every query returns exactly its one expected value (bounded)."""
        deadline, got = time.monotonic() + WAIT_S, {}
        while time.monotonic() < deadline:
            got = {}
            for q in expected:
                try:
                    values = list(self.query(q).values())
                except (urllib.error.URLError, OSError) as exc:
                    values = [repr(exc)]
                got[q] = values[0] if len(values) == 1 else values
            if got == expected:
                return
            time.sleep(0.25)
        raise AssertionError(f"after {WAIT_S} s Prometheus returned {got}, expected {expected}; "
                             f"its log:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def test_prometheus_scrapes_the_counts(prometheus_binary, tmp_path):
    registry = prometheus_client.CollectorRegistry()
    metrics = tw.MonitorMetrics(registry, monitor="prom-test", assertions=["flicker", "appear"],
                                rate_window=100)
    for _ in range(4):
        metrics.record_batch(25, 3e-5, {"flicker": 2}, {"flicker": 1})
    metrics.record_batch(25, 0.2, {"flicker": 1, "appear": 5}, {"flicker": 1, "appear": 2})
    metrics.record_rejected("missing_column")

    with tw.serve_metrics(0, registry=registry) as server:
        prom = Prometheus(prometheus_binary, tmp_path, server.port)
        try:
            sel = '{monitor="prom-test"}'
            prom.wait_for({
                'up{job="tripwire"}': 1.0,
                f"tripwire_rows_total{sel}": 125.0,
                f"tripwire_batches_total{sel}": 5.0,
                'tripwire_violations_total{monitor="prom-test",assertion="flicker"}': 9.0,
                'tripwire_violations_total{monitor="prom-test",assertion="appear"}': 5.0,
                'tripwire_events_total{monitor="prom-test",assertion="flicker"}': 5.0,
                'tripwire_rejected_batches_total{monitor="prom-test",reason="missing_column"}': 1.0,
                f"tripwire_observe_seconds_count{sel}": 5.0,
                'tripwire_observe_seconds_bucket{monitor="prom-test",le="5e-05"}': 4.0,
                # the window (100 rows) holds the last 4 batches: 2 + 2 + 2 + 1 flagged of 100
                'tripwire_violation_rate{monitor="prom-test",assertion="flicker"}': 0.07,
            })
            # later batches show up at the next scrapes
            metrics.record_batch(75, 3e-5, {"flicker": 30}, {"flicker": 3})
            prom.wait_for({
                f"tripwire_rows_total{sel}": 200.0,
                'tripwire_violations_total{monitor="prom-test",assertion="flicker"}': 39.0,
                'tripwire_violation_rate{monitor="prom-test",assertion="flicker"}': 0.31,
            })
        finally:
            prom.stop()
        assert prom.proc.returncode is not None
