"""Bounded loopback load test of the example server: the latency the Monitor adds.

Starts the server twice on 127.0.0.1 (a free port each): with the Monitor in the request path
and without it, and sends the same requests to both, alternating rounds so both see the same
machine load. ``clients`` threads each hold a keep-alive connection and ask for frames of
their own camera stream. Client-side latency per request; p50 and p99 with and without the
monitor, and the monitor's own time per ``observe`` from its metrics.

    python examples/serve/load_test.py --requests 4000 --clients 4
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import make_server  # noqa: E402


def _hammer(port: int, requests: int, clients: int, tag: str) -> list[float]:
    """``requests`` GET /infer spread over ``clients`` threads; seconds per request."""
    took: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(requests // clients):
                t0 = time.perf_counter()
                conn.request("GET", f"/infer?stream={tag}{i}")
                resp = conn.getresponse()
                body = resp.read()
                took[i].append(time.perf_counter() - t0)
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
                json.loads(body)
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [x for t in took for x in t]


def run(requests: int = 2000, clients: int = 4, rounds: int = 4) -> dict:
    """Latency percentiles (microseconds) with and without the monitor, and what it saw."""
    servers = {"with": make_server(0, monitor=True), "without": make_server(0, monitor=False)}
    for s in servers.values():
        threading.Thread(target=s.serve_forever, daemon=True).start()
    lat: dict[str, list[float]] = {"with": [], "without": []}
    try:
        for name, s in servers.items():  # warm-up: first frames, JIT-free but caches cold
            _hammer(s.server_address[1], 4 * clients, clients, f"warm-{name}-")
        for r in range(rounds):
            for name in (("with", "without") if r % 2 == 0 else ("without", "with")):
                s = servers[name]
                lat[name] += _hammer(s.server_address[1], requests // rounds, clients, "cam")
        mon = servers["with"].monitor
        registry = servers["with"].registry
        observe_s = registry.get_sample_value("tripwire_observe_seconds_sum", {"monitor": "vtest"})
        batches = registry.get_sample_value("tripwire_batches_total", {"monitor": "vtest"})
        flushed = len(mon.flush())
    finally:
        for s in servers.values():
            s.shutdown()
            s.server_close()
    out = {}
    for name, xs in lat.items():
        us = np.array(xs) * 1e6
        out[name] = {"requests": len(us), "p50": float(np.percentile(us, 50)), "p99": float(np.percentile(us, 99))}
    out["added_p50_us"] = out["with"]["p50"] - out["without"]["p50"]
    out["added_p99_us"] = out["with"]["p99"] - out["without"]["p99"]
    out["overhead_p50"] = out["added_p50_us"] / out["with"]["p50"]
    out["observe_mean_us"] = 1e6 * observe_s / batches
    out["batches"] = int(batches)
    out["rejected"] = dict(mon.rejected)
    out["rows"] = mon.rows
    out["flushed_violations"] = flushed
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=4000, help="requests per server (bounded)")
    p.add_argument("--clients", type=int, default=4)
    args = p.parse_args()
    r = run(args.requests, args.clients)
    print(f"{r['without']['requests']} requests per server, {args.clients} keep-alive clients, 127.0.0.1")
    print(f"without monitor: p50 {r['without']['p50']:.0f} us, p99 {r['without']['p99']:.0f} us")
    print(f"with monitor:    p50 {r['with']['p50']:.0f} us, p99 {r['with']['p99']:.0f} us")
    print(f"added by the monitor: p50 {r['added_p50_us']:.0f} us ({100 * r['overhead_p50']:.0f} % of the request), "
          f"p99 {r['added_p99_us']:.0f} us; observe itself: {r['observe_mean_us']:.0f} us mean over "
          f"{r['batches']} batches; rejected: {r['rejected'] or 'none'} (bar: <= 5 % at p50)")


if __name__ == "__main__":
    main()
