"""A small inference server with a tripwire Monitor in its request path.

The "model" replays real detector output: OpenCV's HOG people detector on every frame of
OpenCV's sample video (the bundled ``vtest_hog`` data, 795 frames). Each request asks for the
next frame of a camera stream; the server answers with that frame's boxes, after checking them
with ``tw.Monitor`` (the bundled HOG suite: multibox, flicker, appear, valid). Frame numbers
keep counting up as the video loops, so every stream is an endless, in-order video.

``--mode`` picks where the check runs:

- ``background`` (the default): the request handler only hands the frame to a
  ``tw.BackgroundMonitor`` (``monitor.background(max_delay=0.25)``), whose worker thread checks
  the frames of all streams gathered, once per 250 ms: the check is off the response's
  critical path, and its fixed cost is paid once per many requests. Violations reach the
  metrics and alerts (and the log, through ``on_report``) up to 250 ms after the response,
  well inside a Prometheus scrape interval. ``--max-delay`` trades that for cost: in the load
  test the worker takes ~9 µs of CPU per frame at 250 ms and ~15 µs at 50 ms (each gathered
  batch has a fixed cost in a busy server: the worker gives the GIL away about ten times
  and waits each time to get it back).
- ``sync``: ``monitor.observe(frame)`` in the request handler, before answering; the response
  says how many rows were flagged.
- ``none``: no monitor (the load test's baseline).

    python examples/serve/server.py --port 8000            # Ctrl-C to stop
    curl 'http://127.0.0.1:8000/infer?stream=cam1'         # JSON: the frame's boxes
    curl http://127.0.0.1:8000/metrics                     # Prometheus text
    curl http://127.0.0.1:8000/stats                       # JSON: what the monitor has checked

Standard library HTTP (``ThreadingHTTPServer``, HTTP/1.1 keep-alive): no web framework to
install, and a lean server makes the monitor's share of the request time look as large as
it really is. Requests of one stream are served one at a time (a per-stream lock), because a
monitor needs each stream's frames in order; different streams run in parallel.
"""
from __future__ import annotations

import argparse
import bisect
import json
import logging
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import tripwire as tw

DATA = os.path.join(os.path.dirname(tw.__file__), "data")
BOX_COLUMNS = ["cls", "score", "x1", "y1", "x2", "y2"]  # what the "model" answers
# the columns each frame gets, as fields made once: appending by field (not by name) spares a
# new field per frame, and reused fields keep their cached Arrow fingerprints, which makes
# the monitor's per-batch schema check cheaper
STREAM_FIELD = pa.field("stream", pa.string())
FRAME_FIELD = pa.field("frame", pa.int64())


class Replay:
    """The bundled HOG detections, frame by frame, as an endless video per stream."""

    def __init__(self) -> None:
        t = pq.read_table(os.path.join(DATA, "vtest_hog", "detections.parquet"))
        frames = t.column("frame").to_numpy()  # sorted: the detector ran frame by frame
        self.n_frames = int(frames.max()) + 1
        starts = np.searchsorted(frames, np.arange(self.n_frames + 1))
        boxes = t.select(BOX_COLUMNS)
        self.frames = [boxes.slice(a, b - a) for a, b in zip(starts[:-1], starts[1:])]
        self.next: dict[str, int] = {}
        self.locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def lock(self, stream: str) -> threading.Lock:
        with self._lock:
            return self.locks.setdefault(stream, threading.Lock())

    def frame(self, stream: str) -> pa.Table:
        """The stream's next frame (call with the stream's lock held)."""
        i = self.next.get(stream, 0)
        self.next[stream] = i + 1
        boxes = self.frames[i % self.n_frames]
        n = boxes.num_rows
        return boxes.append_column(STREAM_FIELD, pa.array([stream] * n, pa.string())) \
                    .append_column(FRAME_FIELD, pa.array(np.full(n, i, np.int64)))


MODES = ("background", "sync", "none")
MAX_DELAY = 0.25  # background: seconds a frame may wait to be checked
log = logging.getLogger("serve")


class Recorder:
    """What the monitor found, frame by frame (``--record``; for the load test's check that
    both modes find the same): every violation as (assertion, stream, frame, box in frame,
    severity), grouped by event. Maps the monitor's stream rows to frames through the
    reports' ``first_row`` (sync) or the order of ``submit`` (background)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts: list[int] = []  # first stream row of each observed frame, ascending
        self.frames: list[tuple[str, int]] = []  # (stream, frame) of each
        self.rows = 0  # background: rows submitted so far
        self.reports: list = []

    def observed(self, first_row: int, stream: str, frame: int) -> None:
        with self.lock:
            i = bisect.bisect(self.starts, first_row)  # concurrent requests may append out of order
            self.starts.insert(i, first_row)
            self.frames.insert(i, (stream, frame))

    def events(self) -> list:
        out = []
        for report in self.reports:
            v = report.violations
            groups: dict = {}
            for a, row, ev, sev in zip(*(v[c].to_pylist() for c in ("assertion", "row", "event", "severity"))):
                i = bisect.bisect(self.starts, row) - 1
                stream, frame = self.frames[i]
                groups.setdefault((a, ev), []).append([stream, frame, row - self.starts[i], round(sev, 5)])
            out += [[a, sorted(rows)] for (a, _), rows in groups.items()]
        return sorted(out)


def make_server(port: int = 0, *, mode: str = "background", registry=None, record: bool = False,
                max_delay: float = MAX_DELAY) -> ThreadingHTTPServer:
    """The server (not started): ``server.serve_forever()`` runs it; ``server.monitor`` is the
    Monitor (``None`` in mode ``none``), ``server.background`` its BackgroundMonitor (mode
    ``background``; ``server.close_monitor()`` drains and flushes it); ``server.recorder``
    the violations found (``record=True``)."""
    import prometheus_client

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    registry = registry or prometheus_client.CollectorRegistry()
    replay = Replay()
    suite = tw.Suite.from_toml(os.path.join(DATA, "vtest_hog_suite.toml"))
    mon = bg = None
    recorder = Recorder() if record else None
    if mode != "none":
        mon = tw.Monitor(suite, name="vtest", ttl=300,
                         metrics=tw.MonitorMetrics(registry, monitor="vtest"),
                         alerts=[tw.Alert("boxes.appear", rate_above=0.2, over=2000)])
    if mode == "background":
        def on_report(report) -> None:  # from the worker thread, off the request path
            log.debug("%d violation rows (%d events) in stream rows %d..%d", len(report), report.n_events,
                      report.first_row, report.first_row + report.inputs["rows"].num_rows - 1)
            if recorder is not None:
                recorder.reports.append(report)

        bg = mon.background(max_delay=max_delay, on_report=on_report)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the load test reuses its connections
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if url.path == "/infer":
                stream = parse_qs(url.query).get("stream", ["cam0"])[0]
                with replay.lock(stream):
                    frame = replay.next.get(stream, 0)
                    boxes = replay.frame(stream)
                    flagged = None
                    if bg is not None:
                        if recorder is None:
                            bg.submit(boxes)  # returns at once; never raises
                        else:
                            with recorder.lock:  # submit order = the monitor's row order
                                if bg.submit(boxes) and boxes.num_rows:
                                    recorder.starts.append(recorder.rows)
                                    recorder.frames.append((stream, frame))
                                    recorder.rows += boxes.num_rows
                    elif mon is not None:
                        report = mon.observe(boxes)  # never raises on bad input
                        flagged = len(report)
                        if recorder is not None and report.rejected is None and boxes.num_rows:
                            recorder.observed(report.first_row, stream, frame)
                            if flagged:
                                recorder.reports.append(report)
                body = json.dumps({"stream": stream, "frame": frame,
                                   "boxes": boxes.select(BOX_COLUMNS).to_pylist(),
                                   "flagged": flagged}).encode()
                self._send(200, body, "application/json")
            elif url.path == "/metrics":
                self._send(200, prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST)
            elif url.path == "/stats":
                stats = {"mode": mode}
                if bg is not None:
                    stats.update(bg.stats(), max_delay=bg.max_delay)
                if mon is not None:
                    stats.update(batches=mon.batches, rows=mon.rows, rejected=dict(mon.rejected))
                self._send(200, json.dumps(stats).encode(), "application/json")
            else:
                self._send(404, b'{"error": "try /infer?stream=cam1, /metrics or /stats"}', "application/json")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet: the load test sends thousands
            pass

    def close_monitor():
        """Check what is pending and flush the monitor: the held-back violations' report."""
        if mon is None:
            return None
        report = bg.close() if bg is not None else mon.flush()
        if recorder is not None and len(report):
            recorder.reports.append(report)
        return report

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.monitor, server.background, server.recorder = mon, bg, recorder
    server.close_monitor = close_monitor
    server.registry = registry
    return server


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--mode", choices=MODES, default="background",
                   help="background: a worker thread checks the frames gathered (default); sync: observe in the "
                        "request; none: no monitor")
    p.add_argument("--max-delay", type=float, default=MAX_DELAY,
                   help=f"background: seconds a frame may wait to be checked (default {MAX_DELAY})")
    p.add_argument("--no-monitor", action="store_true", help="the same as --mode none")
    p.add_argument("--record", metavar="PATH", help="on exit, write every violation (by stream and frame) as JSON")
    args = p.parse_args()
    mode = "none" if args.no_monitor else args.mode
    # Ctrl-C or SIGTERM (what process managers send) stop the server, drain and flush the
    # monitor (also when started with SIGINT ignored, as background jobs of a shell are)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server = make_server(args.port, mode=mode, record=args.record is not None, max_delay=args.max_delay)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/infer?stream=cam1 and /metrics ({mode})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if server.monitor is not None:
            t0 = time.perf_counter()
            report = server.close_monitor()
            print(f"flushed {len(report)} held-back violations in {time.perf_counter() - t0:.3f} s", flush=True)
        if args.record:
            events = server.recorder.events() if server.recorder is not None else []
            with open(args.record, "w") as f:
                json.dump({"mode": mode, "events": events}, f)


if __name__ == "__main__":
    main()
