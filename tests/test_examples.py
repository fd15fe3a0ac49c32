"""The runnable examples run and give exactly the violations their docstrings describe."""
from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
import time

import pytest

import tripwire as tw

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name.replace('/', '_')}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tv_news():
    return load("tv_news_consistency")


def test_tv_news_violations(tv_news, capsys):
    report = tv_news.main()
    assert isinstance(report, tw.Report)
    got = [(v["assertion"], v["event"], v["row"], round(v["severity"], 4), v["key"])
           for v in report.violations.to_pylist()]
    assert got == [
        # Ada, scene 1: F F M F F -> first F row and the M row; 1 of 5 rows is off
        ("same_gender_in_scene", 0, 0, 0.2, "1:Ada Reyes"),
        ("same_gender_in_scene", 0, 4, 0.2, "1:Ada Reyes"),
        # Cleo, scene 2: F F F M
        ("same_gender_in_scene", 1, 10, 0.25, "2:Cleo Park"),
        ("same_gender_in_scene", 1, 17, 0.25, "2:Cleo Park"),
        # Ben, scene 1: black black black gray
        ("same_hair_in_scene", 2, 1, 0.25, "1:Ben Okafor"),
        ("same_hair_in_scene", 2, 8, 0.25, "1:Ben Okafor"),
        # Ada, scene 2: brown blonde brown brown brown
        ("same_hair_in_scene", 3, 9, 0.2, "2:Ada Reyes"),
        ("same_hair_in_scene", 3, 11, 0.2, "2:Ada Reyes"),
        # Ben: frames 0 1 _ 3 4 -> window starting at frame 1 (row 3) breaks at frame 3 (row 6)
        ("no_flicker", 4, 3, 1.0, "Ben Okafor"),
        ("no_flicker", 4, 6, 1.0, "Ben Okafor"),
        # Cleo: frames 5 _ 7 8 9 -> rows 10 and 13
        ("no_flicker", 5, 10, 1.0, "Cleo Park"),
        ("no_flicker", 5, 13, 1.0, "Cleo Park"),
    ]
    assert report.summary().column("events").to_pylist() == [2, 2, 2]

    out = capsys.readouterr().out
    for section in ("summary:", "violations:", "corrections (corrected rows):", "weak-labelled table:"):
        assert section in out
    assert "same_gender_in_scene" in out and "2:Cleo Park" in out


def test_tv_news_corrections_and_weak_labels(tv_news):
    report = tv_news.main(show=False)
    corr = [(c["source_assertion"], c["row"], c["column"], c["frame"], c["name"], c["gender"], c["hair_color"])
            for c in report.corrections().to_pylist()]
    assert corr == [
        ("same_gender_in_scene", 4, "gender", 2, "Ada Reyes", "F", "brown"),
        ("same_gender_in_scene", 17, "gender", 9, "Cleo Park", "F", "red"),
        ("same_hair_in_scene", 8, "hair_color", 4, "Ben Okafor", "M", "black"),
        ("same_hair_in_scene", 11, "hair_color", 6, "Ada Reyes", "F", "brown"),
    ]
    weak = report.apply()
    original = tv_news.with_scene_name(tv_news.detections())
    assert weak.num_rows == original.num_rows == 18
    changed = [i for i, (a, b) in enumerate(zip(weak.to_pylist(), original.to_pylist())) if a != b]
    assert changed == [4, 8, 11, 17]
    # the weak labels satisfy both consistency assertions; flicker is not something relabelling fixes
    again = tv_news.suite().check(weak)
    assert again.summary().column("events").to_pylist() == [0, 0, 2]


def test_tv_news_agrees_with_the_paper_library(tv_news):
    """The example table is sorted by frame with one row per (name, frame): the paper library's
    precondition, so it must flag the same rows."""
    consistency = pytest.importorskip("model_assertions.consistency")
    df = tv_news.with_scene_name(tv_news.detections()).to_pandas()
    report = tv_news.main(show=False)
    v = report.violations.to_pylist()

    def events(name):
        groups: dict = {}
        for r in v:
            if r["assertion"] == name:
                groups.setdefault(r["event"], []).append(r["row"])
        return sorted(tuple(sorted(g)) for g in groups.values())

    def paper(errors):
        return sorted(tuple(sorted(e)) for e in errors)

    for name, attr in (("same_gender_in_scene", "gender"), ("same_hair_in_scene", "hair_color")):
        a = consistency.IdentifierConsistencyAssertion("scene_name", attr)
        assert events(name) == paper(a.check_errors(df.copy(), df.copy()))
    t = consistency.TimeConsistencyAssertion("name", "frame", window=3, allowed_transitions=1)
    assert events("no_flicker") == paper(t.check_errors(df.copy(), df.copy()))


def test_serve_example_load_test():
    """The example server answers with replayed real detections, its Monitor checks every
    frame (nothing rejected) in the request (sync) or gathered by a worker (background), and
    both find the same violations; /metrics exports the counts, and the load test measures
    the three servers, servers and clients in their own processes, in a closed loop and then
    in an open loop at half the capacity the closed loop showed. Bounded: 2 x 150 requests per
    server on 127.0.0.1."""
    pytest.importorskip("prometheus_client")
    sys.path.insert(0, str(EXAMPLES / "serve"))
    try:
        load_test = load("serve/load_test")
        r = load_test.run(requests=150, clients=2, rounds=2, max_delay=0.05)
    finally:
        sys.path.remove(str(EXAMPLES / "serve"))
    assert r["cpus"] >= 1
    # the open loop's rate: half the none server's closed-loop capacity, measured in this run
    assert r["capacity"] == r["closed"]["none"]["achieved_rate"] > 0 and r["rate"] == pytest.approx(r["capacity"] / 2)
    for load_ in ("closed", "open"):
        for name in ("none", "sync", "background"):
            o = r[load_][name]
            assert o["requests"] == 150 and o["p50"] > 0 and o["p99"] >= o["p50"] and o["achieved_rate"] > 0
            if sys.platform == "linux":  # the servers' CPU time per request, from /proc
                assert o["cpu_us"] > 0
        s = r[load_]["sync"]
        assert s["overhead_p50"] == pytest.approx(s["added_p50_us"] / s["p50"])
        if sys.platform == "linux":
            assert s["added_cpu_us"] == pytest.approx(s["cpu_us"] - r[load_]["none"]["cpu_us"])
    # an open loop cannot serve faster than it offers (each client keeps to its schedule)
    assert all(r["open"][name]["achieved_rate"] <= 1.5 * r["rate"] for name in ("none", "sync", "background"))
    s, b = r["sync"], r["background"]
    # every request's frame was observed (read back from the servers' /metrics and /stats)
    assert s["rejected"] == {} and s["warm_up_batches"] == 8 and s["batches"] == 300 + 8
    assert b["rejected"] == {} and b["submitted"] == 300 + 8 and b["frames_checked"] == 300
    assert b["callback_errors"] == 0 and b["worker_errors"] == 0 and b["max_delay"] == 0.05  # passed on
    assert b["frames_per_observe"] >= 1 and b["observe_calls"] <= 300
    assert s["rows"] == b["rows"] > 0 and s["observe_mean_us"] > 0 and b["observe_mean_us"] > 0
    # the same frames in both: the same violations after both monitors were drained and flushed
    assert r["same_violations"] and r["violation_events"] > 0
    assert s["flushed_violations"] >= 0 and b["flushed_violations"] >= 0  # both flushed on Ctrl-C


def test_serve_load_test_open_loop_counts_from_the_schedule():
    """The open-loop client charges a server for the requests it held back: against a server
    that answers its first request only after 0.2 s, requests due meanwhile count from when
    they were due (no coordinated omission), and the schedule keeps its offered rate."""
    import http.server
    import subprocess
    import threading

    first = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            if not first.is_set():
                first.set()
                time.sleep(0.2)
            body = b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = subprocess.run([sys.executable, str(EXAMPLES / "serve" / "load_test.py"), "--client"],
                                input=f"open {server.server_address[1]} cam0 100 1000 7\n", capture_output=True,
                                text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    out = json.loads(client.stdout)
    took = out["took"]
    assert len(took) == 100 and took[0] >= 0.2
    # at 1000/s nearly all 100 requests fell due while the first waited: those sent after
    # the stall count its wait (a closed loop would have seen one slow request)
    assert sum(t > 0.1 for t in took) >= 50
    assert out["span"] >= 0.2


@pytest.mark.parametrize("mode", ["sync", "background"])
def test_serve_example_metrics_endpoint(mode):
    pytest.importorskip("prometheus_client")
    import threading
    import urllib.request

    sys.path.insert(0, str(EXAMPLES / "serve"))
    try:
        server_mod = load("serve/server")
    finally:
        sys.path.remove(str(EXAMPLES / "serve"))
    server = server_mod.make_server(0, mode=mode, max_delay=0.01)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        frames = [json.loads(urllib.request.urlopen(f"{base}/infer?stream=cam1", timeout=10).read())
                  for _ in range(5)]
        assert [f["frame"] for f in frames] == [0, 1, 2, 3, 4]
        assert all(set(b) == {"cls", "score", "x1", "y1", "x2", "y2"} for f in frames for b in f["boxes"])
        assert all(f["flagged"] is None for f in frames) == (mode == "background")
        if mode == "background":  # checked off the request path: wait for the worker
            for _ in range(1000):
                stats = json.loads(urllib.request.urlopen(f"{base}/stats", timeout=10).read())
                if stats["checked"] == 5:
                    break
                time.sleep(0.01)
            assert stats["submitted"] == stats["checked"] == 5 and stats["rejected"] == {}
        body = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        boxes = sum(len(f["boxes"]) for f in frames)
        assert f'tripwire_rows_total{{monitor="vtest"}} {float(boxes)}' in body
        if mode == "sync":  # one observe per request (background: per gathered batch)
            assert 'tripwire_batches_total{monitor="vtest"} 5.0' in body
    finally:
        server.shutdown()
        server.server_close()
        server.close_monitor()
