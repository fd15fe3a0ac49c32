"""A small inference server with a tripwire Monitor in its request path.

The "model" replays real detector output: OpenCV's HOG people detector on every frame of
OpenCV's sample video (the bundled ``vtest_hog`` data, 795 frames). Each request asks for the
next frame of a camera stream; the server answers with that frame's boxes, after checking them
with ``tw.Monitor`` (the bundled HOG suite: multibox, flicker, appear, valid). Frame numbers
keep counting up as the video loops, so every stream is an endless, in-order video.

    python examples/serve/server.py --port 8000            # Ctrl-C to stop
    curl 'http://127.0.0.1:8000/infer?stream=cam1'         # JSON: the frame's boxes
    curl http://127.0.0.1:8000/metrics                     # Prometheus text

Standard library HTTP (``ThreadingHTTPServer``, HTTP/1.1 keep-alive): no web framework to
install, and a lean server makes the monitor's share of the request time look as large as
it really is. Requests of one stream are served one at a time (a per-stream lock), because a
monitor needs each stream's frames in order; different streams run in parallel.
"""
from __future__ import annotations

import argparse
import json
import os
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


def make_server(port: int = 0, *, monitor: bool = True, registry=None) -> ThreadingHTTPServer:
    """The server (not started): ``server.serve_forever()`` runs it; ``server.monitor`` is the
    Monitor (``None`` with ``monitor=False``)."""
    import prometheus_client

    registry = registry or prometheus_client.CollectorRegistry()
    replay = Replay()
    suite = tw.Suite.from_toml(os.path.join(DATA, "vtest_hog_suite.toml"))
    mon = None
    if monitor:
        mon = tw.Monitor(suite, name="vtest", ttl=300,
                         metrics=tw.MonitorMetrics(registry, monitor="vtest"),
                         alerts=[tw.Alert("boxes.appear", rate_above=0.2, over=2000)])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the load test reuses its connections
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if url.path == "/infer":
                stream = parse_qs(url.query).get("stream", ["cam0"])[0]
                with replay.lock(stream):
                    boxes = replay.frame(stream)
                    flagged = None
                    if mon is not None:
                        report = mon.observe(boxes)  # never raises on bad input
                        flagged = len(report)
                body = json.dumps({"stream": stream, "frame": boxes.column("frame")[0].as_py() if boxes.num_rows else None,
                                   "boxes": boxes.select(BOX_COLUMNS).to_pylist(),
                                   "flagged": flagged}).encode()
                self._send(200, body, "application/json")
            elif url.path == "/metrics":
                self._send(200, prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST)
            else:
                self._send(404, b'{"error": "try /infer?stream=cam1 or /metrics"}', "application/json")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet: the load test sends thousands
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.monitor = mon
    server.registry = registry
    return server


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-monitor", action="store_true", help="serve without the Monitor (for comparison)")
    args = p.parse_args()
    server = make_server(args.port, monitor=not args.no_monitor)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/infer?stream=cam1 and /metrics", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if server.monitor is not None:
            t0 = time.perf_counter()
            print(f"flushed {len(server.monitor.flush())} held-back violations in {time.perf_counter() - t0:.3f} s",
                  flush=True)


if __name__ == "__main__":
    main()
