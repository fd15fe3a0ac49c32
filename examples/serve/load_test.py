"""Bounded loopback load test of the example server: the latency the Monitor adds.

Two server processes on 127.0.0.1 (a free port each): one with the Monitor in the request
path, one without, each alone in its process as in a deployment. ``clients`` client
processes each hold one keep-alive connection per server and ask for the frames of their own
camera stream, all clients at once; rounds alternate between the servers so that both see the
same machine load. Latency is measured in the clients (request sent to body read); the
monitor's own time per ``observe`` comes from the server's ``/metrics``, and each server's
CPU time per request from Linux's ``/proc`` (the monitor's cost with less of the waiting
that other work on the machine adds to latency). Processes, not threads: clients in the
servers' process would make the servers wait for the clients' GIL, and the monitor's share
would be measured against the load test's own work.

    python examples/serve/load_test.py --requests 2000 --clients 4
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 120.0  # seconds: a bound on any one wait (server start, a round, shutdown)


# ---------------------------------------------------------------------------- client processes
def _client_main() -> None:
    """A client process: one keep-alive connection per port; stdin lines ``PORT STREAM N``
    -> N GET /infer, stdout one JSON line of latencies (seconds) or an error."""
    conns: dict[int, http.client.HTTPConnection] = {}
    for line in sys.stdin:
        port_s, stream, n_s = line.split()
        port, n = int(port_s), int(n_s)
        took = []
        try:
            conn = conns.get(port)
            if conn is None:
                conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(n):
                t0 = time.perf_counter()
                conn.request("GET", f"/infer?stream={stream}")
                resp = conn.getresponse()
                body = resp.read()
                took.append(time.perf_counter() - t0)
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
                json.loads(body)
            out = {"took": took}
        except Exception as e:  # reported by the parent
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    for conn in conns.values():
        conn.close()


def _env() -> dict:
    """The environment of the child processes: they import the same tripwire as this one."""
    import tripwire

    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(tripwire.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


class _Clients:
    """``n`` client processes, driven in lock step."""

    def __init__(self, n: int, env: dict):
        self.procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--client"], env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
                      for _ in range(n)]

    def hammer(self, port: int, requests: int, tag: str) -> list[float]:
        """``requests`` GET /infer spread over the clients, all at once; seconds per request."""
        per, extra = divmod(requests, len(self.procs))
        for i, p in enumerate(self.procs):
            p.stdin.write(f"{port} {tag}{i} {per + (i < extra)}\n")
            p.stdin.flush()
        took = []
        for p in self.procs:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"load-test client exited with code {p.wait(TIMEOUT)}")
            out = json.loads(line)
            if "error" in out:
                raise RuntimeError(f"load-test client failed: {out['error']}")
            took += out["took"]
        return took

    def close(self) -> None:
        for p in self.procs:
            try:
                p.stdin.close()  # end of input: the client closes its connections and exits
                p.wait(TIMEOUT)
            except Exception:  # noqa: BLE001 - a stuck client is killed
                p.kill()
                p.wait()
            finally:
                p.stdout.close()


# ---------------------------------------------------------------------------- server processes
class _Server:
    """``server.py`` in its own process on a free loopback port."""

    def __init__(self, monitor: bool, env: dict):
        args = [sys.executable, os.path.join(HERE, "server.py"), "--port", "0"] + ([] if monitor else ["--no-monitor"])
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # "serving on http://127.0.0.1:PORT/..."
        m = re.search(r"127\.0\.0\.1:(\d+)/", line)
        if m is None:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.communicate(timeout=TIMEOUT)[1][-2000:]}")
        self.port = int(m.group(1))

    def cpu_ns(self) -> dict[str, int] | None:
        """CPU time (ns) each live thread of the server has used so far, from Linux's
        ``/proc/PID/task/*/schedstat``; ``None`` where that is not available."""
        out = {}
        try:
            tasks = os.listdir(f"/proc/{self.proc.pid}/task")
        except OSError:
            return None
        for t in tasks:
            try:
                with open(f"/proc/{self.proc.pid}/task/{t}/schedstat") as f:
                    out[t] = int(f.read().split()[0])
            except FileNotFoundError:  # the thread ended meanwhile (a /metrics connection's)
                continue
            except (OSError, ValueError, IndexError):
                return None
        return out

    def metrics(self) -> dict[str, float]:
        """The tripwire series of ``/metrics``: ``{'name{labels}': value}``."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        out = {}
        for line in text.splitlines():
            if line.startswith("tripwire_"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self) -> str:
        """Ctrl-C the server (it flushes its monitor and says so); its output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out + err


def _percentile(xs: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(xs) * 1e6, q))


def run(requests: int = 2000, clients: int = 4, rounds: int = 10) -> dict:
    """Latency percentiles (microseconds) with and without the monitor, and what it saw.
    ``requests`` per server, in ``rounds`` alternating rounds, after ``4 * clients`` warm-up
    requests per server."""
    env = _env()
    servers: dict[str, _Server] = {}
    pool = None
    lat: dict[str, list[float]] = {"with": [], "without": []}
    try:
        servers["with"] = _Server(True, env)
        servers["without"] = _Server(False, env)
        pool = _Clients(clients, env)
        for name, s in servers.items():  # warm-up: connections, first frames, caches
            pool.hammer(s.port, 4 * clients, f"warm-{name}-")
        warm = servers["with"].metrics()  # observe's time is reported without the warm-up's
        per, extra = divmod(requests, rounds)
        cpu: dict = {name: 0 for name in servers}  # ns of server CPU time in the measured rounds
        for r in range(rounds):
            for name in (("with", "without") if r % 2 == 0 else ("without", "with")):
                c0 = servers[name].cpu_ns()
                lat[name] += pool.hammer(servers[name].port, per + (r < extra), "cam")
                c1 = servers[name].cpu_ns()
                if c0 is None or c1 is None or cpu[name] is None:
                    cpu[name] = None
                else:  # per thread: the clients' connection threads live through the test
                    cpu[name] += sum(ns - c0.get(t, 0) for t, ns in c1.items())
        series = servers["with"].metrics()
    finally:
        if pool is not None:
            pool.close()
        logs = {name: s.stop() for name, s in servers.items()}
    m = re.search(r"flushed (\d+) held-back violations", logs.get("with", ""))
    if m is None:
        raise RuntimeError(f"the monitored server did not flush on exit: {logs.get('with', '')[-2000:]}")
    label = '{monitor="vtest"}'
    out: dict = {}
    for name, xs in lat.items():
        out[name] = {"requests": len(xs), "p50": _percentile(xs, 50), "p99": _percentile(xs, 99)}
        # the server's CPU time per request in the measured rounds (all its threads): the
        # monitor's cost without the waiting that the machine's load adds to latency
        out[name]["cpu_us"] = None if cpu[name] is None else 1e-3 * cpu[name] / len(xs)
    out["added_p50_us"] = out["with"]["p50"] - out["without"]["p50"]
    out["added_p99_us"] = out["with"]["p99"] - out["without"]["p99"]
    out["overhead_p50"] = out["added_p50_us"] / out["with"]["p50"]
    if out["with"]["cpu_us"] is not None and out["without"]["cpu_us"] is not None:
        out["added_cpu_us"] = out["with"]["cpu_us"] - out["without"]["cpu_us"]
        out["overhead_cpu"] = out["added_cpu_us"] / out["with"]["cpu_us"]
    batches, seconds = f"tripwire_batches_total{label}", f"tripwire_observe_seconds_sum{label}"
    out["observe_mean_us"] = 1e6 * (series[seconds] - warm[seconds]) / (series[batches] - warm[batches])
    out["batches"] = int(series[batches])
    out["warm_up_batches"] = int(warm[batches])
    out["rows"] = int(series[f"tripwire_rows_total{label}"])
    out["rejected"] = {re.search(r'reason="([^"]*)"', k).group(1): int(v) for k, v in series.items()
                       if k.startswith("tripwire_rejected_batches_total{") and v}
    out["flushed_violations"] = int(m.group(1))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=4000, help="requests per server (bounded)")
    p.add_argument("--clients", type=int, default=4, help="client processes, one connection each per server")
    p.add_argument("--rounds", type=int, default=10, help="alternating rounds per server")
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)  # a client process
    args = p.parse_args()
    if args.client:
        return _client_main()
    r = run(args.requests, args.clients, args.rounds)
    print(f"{r['without']['requests']} requests per server, {args.clients} client processes "
          f"(keep-alive), servers in their own processes, 127.0.0.1")
    print(f"without monitor: p50 {r['without']['p50']:.0f} us, p99 {r['without']['p99']:.0f} us")
    print(f"with monitor:    p50 {r['with']['p50']:.0f} us, p99 {r['with']['p99']:.0f} us")
    print(f"added by the monitor: p50 {r['added_p50_us']:.0f} us ({100 * r['overhead_p50']:.1f} % of the request), "
          f"p99 {r['added_p99_us']:.0f} us; observe itself: {r['observe_mean_us']:.0f} us mean over "
          f"{r['batches'] - r['warm_up_batches']} batches after warm-up; rejected: {r['rejected'] or 'none'} "
          f"(bar: <= 5 % at p50)")
    if "added_cpu_us" in r:
        print(f"server CPU per request: without {r['without']['cpu_us']:.0f} us, with {r['with']['cpu_us']:.0f} us; "
              f"added {r['added_cpu_us']:.0f} us ({100 * r['overhead_cpu']:.1f} % of the server's CPU time)")


if __name__ == "__main__":
    main()
