"""Alert rules: hysteresis, the minimum window, delivery to callbacks, logs and a real local
webhook receiver, and failures that never reach the host."""
from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import tripwire as tw
from tripwire.alerts import Alert, AlertEvent, AlertManager, Webhook


def feed(manager, batches):
    """Feed (rows, flagged) batches of assertion "a"; every transition, in order."""
    out = []
    for rows, flagged in batches:
        out += manager.record_batch(rows, {"a": flagged})
    return out


# ---------------------------------------------------------------------------------- rules
def test_defaults_and_validation():
    a = tw.Alert("flicker", rate_above=0.05, over=1000)
    assert (a.clear_below, a.over, a.name) == (pytest.approx(0.04), 1000, "flicker rate > 0.05 over 1000 rows")
    for kwargs, match in [
        ({"rate_above": 1.0}, "rate_above"), ({"rate_above": -0.1}, "rate_above"),
        ({"rate_above": True}, "rate_above"), ({"rate_above": 0.1, "over": 0}, "over"),
        ({"rate_above": 0.1, "clear_below": 0.2}, r"clear_below.*expected: a rate in \[0, rate_above=0.1\]"),
        ({"rate_above": 0.1, "on": 42}, "delivery target"),
        ({"rate_above": 0.1, "on": "file:///etc/passwd"}, "http:// or https://"),
    ]:
        with pytest.raises(tw.InputError, match=match):
            Alert("flicker", **kwargs)
    with pytest.raises(tw.InputError, match="no assertion 'flikcer' in the suite.*expected: one of appear, flicker"):
        AlertManager([Alert("flikcer", rate_above=0.1)], assertions=["flicker", "appear"])


def test_waits_for_a_full_window():
    m = AlertManager([Alert("a", rate_above=0.1, over=100)])
    assert feed(m, [(10, 10)] * 9) == []      # 100 % of 90 rows: too few rows to judge
    [event] = feed(m, [(10, 10)])             # 100 rows: fires
    assert (event.state, event.rate, event.rows) == ("firing", 1.0, 100)


def oscillating():
    """Batches of 100 rows with a window of 100: each batch is the window, so its flagged count
    is the rate in %. It climbs over 0.10 (fires), wanders between 0.09 and 0.12 around the
    threshold (above clear_below 0.08), drops to 0.05 (resolves), then wanders between 0.07 and
    0.095 around clear_below (below the threshold)."""
    percent = [5, 11] + [9, 12, 10, 11, 9, 10, 12, 9] * 3 + [5] + [7, 9, 7, 9.5, 8, 7.5, 9] * 3
    return [(100, p) for p in percent]


def test_hysteresis_fires_once_resolves_once():
    calls = []
    m = AlertManager([Alert("a", rate_above=0.1, over=100, on=calls.append)], monitor="cam-1")
    seen = []
    for rows, flagged in oscillating():
        feed(m, [(rows, flagged)])
        seen.append(m.rate(m.alerts[0]))
    # the sequence does cross the threshold, and clear_below, many times ...
    assert sum(1 for x, y in zip(seen, seen[1:]) if (x > 0.1) != (y > 0.1)) >= 10
    assert sum(1 for x, y in zip(seen, seen[1:]) if (x <= 0.08) != (y <= 0.08)) >= 10
    # ... yet the rule fires once and resolves once
    assert [e.state for e in calls] == ["firing", "resolved"]
    fire, resolve = calls
    assert (fire.rate, resolve.rate) == (0.11, 0.05)
    assert (fire.monitor, fire.assertion, fire.threshold, fire.clear_below, fire.over, fire.rows) == \
        ("cam-1", "a", 0.1, pytest.approx(0.08), 100, 100)
    assert m.firing() == []


def test_without_a_band_the_same_rates_flap():
    # the control for the test above: clear_below == rate_above gives no hysteresis band
    m = AlertManager([Alert("a", rate_above=0.1, over=100, clear_below=0.1)])
    states = [e.state for e in feed(m, oscillating())]
    assert states.count("firing") >= 5 and states.count("resolved") >= 5


def test_rules_are_independent_and_share_windows():
    fast, slow = Alert("a", rate_above=0.5, over=10), Alert("a", rate_above=0.2, over=100)
    other = Alert("b", rate_above=0.0, over=10)        # any flagged row of b
    m = AlertManager([fast, slow, other])
    assert len(m._windows) == 2
    events = feed(m, [(10, 0)] * 9 + [(10, 6)])
    assert [(e.alert, e.state) for e in events] == [(fast.name, "firing")]
    events = m.record_batch(10, {"b": 1})
    assert [(e.alert, e.state) for e in events] == [(fast.name, "resolved"), (other.name, "firing")]
    assert m.firing() == [other]


# ---------------------------------------------------------------------------------- delivery
def test_logging(caplog):
    m = AlertManager([Alert("a", rate_above=0.5, over=10)], monitor="cam-2")
    with caplog.at_level(logging.INFO, logger="tripwire.alerts"):
        feed(m, [(10, 6), (10, 0)])
    records = [r for r in caplog.records if r.name == "tripwire.alerts"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]
    assert "FIRING [cam-2] a rate > 0.5 over 10 rows: rate 0.6" in records[0].getMessage()
    assert "resolved [cam-2]" in records[1].getMessage()


def test_event_json():
    m = AlertManager([Alert("a", rate_above=0.5, over=10)], monitor="cam-3")
    before = time.time()
    [event] = m.record_batch(10, {"a": 6})
    d = json.loads(json.dumps(event.to_dict()))
    assert d == {"monitor": "cam-3", "alert": "a rate > 0.5 over 10 rows", "assertion": "a",
                 "state": "firing", "rate": 0.6, "threshold": 0.5, "clear_below": 0.4, "over": 10,
                 "rows": 10, "timestamp": d["timestamp"], "time": d["time"]}
    assert before <= d["timestamp"] <= time.time()
    assert d["time"].endswith("+00:00")


def test_broken_callback_never_reaches_the_host(caplog):
    good = []

    def broken(event):
        raise RuntimeError("pager down")

    m = AlertManager([Alert("a", rate_above=0.5, over=10, on=[broken, good.append])])
    with caplog.at_level(logging.ERROR, logger="tripwire.alerts"):
        events = m.record_batch(10, {"a": 6})
    assert len(events) == 1 and good == events       # the next callback still ran
    assert m.callback_errors == 1
    assert "pager down" in caplog.text


def test_bad_batch_is_logged_not_raised(caplog):
    m = AlertManager([Alert("a", rate_above=0.5, over=10)])
    with caplog.at_level(logging.ERROR, logger="tripwire.alerts"):
        assert m.record_batch(10, {"a": -3}) == []
        assert m.record_batch(10, None) == []
    assert caplog.text.count("record_batch failed") == 2
    assert m.rate(m.alerts[0]) == 0.0


def test_eight_threads_one_transition():
    calls = []
    m = AlertManager([Alert("a", rate_above=0.1, over=1000, on=calls.append)])
    start = threading.Barrier(8)

    def work():
        start.wait()
        for _ in range(500):
            m.record_batch(10, {"a": 5})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [e.state for e in calls] == ["firing"]
    assert m.rate(m.alerts[0]) == 0.5


# ---------------------------------------------------------------------------------- webhooks
class Receiver:
    """A local HTTP server on 127.0.0.1 (a free port) that records the POSTs it gets."""

    def __init__(self, status=200, delay=0.0):
        self.bodies, self.headers = [], []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if delay:
                    receiver.release.wait(delay)
                receiver.bodies.append(json.loads(body))
                receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@contextlib.contextmanager
def receiver(**kwargs):
    r = Receiver(**kwargs)
    try:
        yield r
    finally:
        r.close()


def test_webhook_delivers_json_in_order():
    with receiver() as r:
        m = AlertManager([Alert("a", rate_above=0.5, over=10, on=r.url)], monitor="cam-4")
        events = feed(m, [(10, 6), (10, 0)])
        hook = m.alerts[0].webhooks[0]
        assert hook.flush(timeout=10)
        m.close()
    assert [b["state"] for b in r.bodies] == ["firing", "resolved"]
    assert r.bodies == [e.to_dict() for e in events]
    assert r.headers[0]["Content-Type"] == "application/json"
    assert (hook.sent, hook.failed, hook.dropped) == (2, 0, 0)


def test_webhook_never_blocks_the_request_path():
    with receiver(delay=5.0) as r:       # the receiver takes 5 s to answer
        hook = Webhook(r.url, timeout=10)
        m = AlertManager([Alert("a", rate_above=0.5, over=10, on=hook)])
        t0 = time.perf_counter()
        assert len(feed(m, [(10, 6), (10, 0), (10, 6)])) == 3
        assert time.perf_counter() - t0 < 1.0
        r.release.set()
        assert hook.flush(timeout=10)
        hook.close()
    assert hook.sent == 3 and len(r.bodies) == 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_to_a_dead_port_is_counted_not_raised(caplog):
    hook = Webhook(f"http://127.0.0.1:{free_port()}/hook", timeout=2)  # nothing listens there
    m = AlertManager([Alert("a", rate_above=0.5, over=10, on=hook)])
    with caplog.at_level(logging.WARNING, logger="tripwire.alerts"):
        assert len(m.record_batch(10, {"a": 6})) == 1
        assert hook.flush(timeout=10)
    hook.close()
    assert (hook.sent, hook.failed) == (0, 1)
    assert "webhook POST to http://127.0.0.1:" in caplog.text and "failed (1 failures so far)" in caplog.text


def test_webhook_error_status_is_a_failure():
    with receiver(status=500) as r:
        hook = Webhook(r.url)
        m = AlertManager([Alert("a", rate_above=0.5, over=10, on=hook)])
        m.record_batch(10, {"a": 6})
        assert hook.flush(timeout=10)
        hook.close()
    assert (hook.sent, hook.failed, len(r.bodies)) == (0, 1, 1)


def test_webhook_queue_is_bounded():
    with receiver(delay=10.0) as r:
        hook = Webhook(r.url, max_queue=1, timeout=10)
        event = AlertEvent("m", "rule", "a", "firing", 0.6, 0.5, 0.4, 10, 10, time.time())
        accepted = [hook.send(event) for _ in range(5)]
        # one in flight at most, one waiting: at least three of five are dropped
        assert accepted.count(False) >= 3 and hook.dropped == accepted.count(False)
        r.release.set()
        assert hook.flush(timeout=10)
        hook.close()
        assert hook.send(event) is False    # closed: dropped, not raised
    assert hook.sent == accepted.count(True) == len(r.bodies)
