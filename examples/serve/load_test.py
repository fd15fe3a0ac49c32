"""Bounded loopback load test of the example server: the latency the Monitor adds.

Three server processes on 127.0.0.1 (a free port each), each alone in its process as in a
deployment: ``none`` (no monitor), ``sync`` (``observe`` in the request handler) and
``background`` (the handler only ``submit``s the frame; a worker thread checks the gathered
frames every ``--max-delay`` seconds, the server's default 0.25 unless given). ``clients`` client processes each hold one keep-alive connection per
server and ask for the frames of their own camera stream; rounds rotate between the servers
so that all see the same machine load. Two loads, one after the other on the same servers:

- **closed loop** (saturation): each client sends its next request as soon as the previous
  answer came, so ``clients`` requests are always in flight. This is a throughput test: on a
  small machine the servers and clients compete for every CPU, and any CPU time the monitor
  takes (in the request or in the worker thread) comes back as latency. Its ``none`` server's
  throughput is the machine's capacity for this server.
- **open loop** (the headline): requests are offered at a fixed rate, ``--rate`` requests/s
  over all clients, each client on its own Poisson schedule (the same schedules for each
  server), and latency counts from each request's *scheduled* send time: a server that stalls
  is charged for the requests it held back (no coordinated omission), while a client's own
  late wake-up is not charged (a request whose previous answer came in time counts from its
  actual send). Default rate: ``--utilization`` (0.5) times the ``none`` server's closed-loop
  capacity measured in the same run: servers are run at a sustainable load, with headroom
  for bursts, not at saturation, and half the capacity keeps the clients' own CPU (which
  shares the machine) from deciding the figure.

Latency is measured in the clients (request sent, or due, to body read); each figure is the
percentile over all requests of that load, and also the median over rounds of the per-round
p50 overhead against the ``none`` server's round next to it (less drift of the machine's
load). The monitor's own time per ``observe`` comes from the server's ``/metrics`` (and, in
background, how many frames each gathered ``observe`` took from ``/stats``), and each
server's CPU time per request from Linux's ``/proc`` (the monitor's cost without the waiting
that other work on the machine adds to latency). Processes, not threads: clients in the
servers' process would make the servers wait for the clients' GIL, and the monitor's share
would be measured against the load test's own work.

Both monitored servers record every violation by (stream, frame, box); the streams and
requests are the same, so are the frames, and after the run (both monitors drained and
flushed on Ctrl-C) the background server's violations must equal the sync server's.

    python examples/serve/load_test.py --requests 2000 --clients 4            # both loads
    python examples/serve/load_test.py --load open --rate 1000 --clients 4   # a rate of your own
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 120.0  # seconds: a bound on any one wait (server start, a round, shutdown)


# ---------------------------------------------------------------------------- client processes
def _client_main() -> None:
    """A client process: one keep-alive connection per port. Reads stdin lines
    ``closed PORT STREAM N`` (N GET /infer, each sent as soon as the previous answer came) or
    ``open PORT STREAM N RATE SEED`` (N GET /infer on a Poisson schedule of RATE requests/s);
    writes one JSON line per line read: latencies (seconds) and the span (seconds), or an error."""
    conns: dict[int, http.client.HTTPConnection] = {}
    for line in sys.stdin:
        kind, port_s, stream, n_s, *rest = line.split()
        port, n = int(port_s), int(n_s)
        took = []
        try:
            conn = conns.get(port)
            if conn is None:
                conn = conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            def get() -> None:
                conn.request("GET", f"/infer?stream={stream}")
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
                json.loads(body)

            if kind == "closed":
                start = time.perf_counter()
                for _ in range(n):
                    t0 = time.perf_counter()
                    get()
                    took.append(time.perf_counter() - t0)
                span = time.perf_counter() - start
            else:
                rate, rng = float(rest[0]), random.Random(int(rest[1]))
                start = prev = time.perf_counter() + 0.001
                at = start
                for _ in range(n):
                    at += rng.expovariate(rate)  # the scheduled send time
                    wait = at - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    t0 = time.perf_counter()
                    get()
                    done = time.perf_counter()
                    # the previous answer came after this request was due: the server held it
                    # back, and the wait counts (no coordinated omission); otherwise the latency
                    # starts when it was sent (a late wake-up of this client is not the server's)
                    took.append(done - (at if prev > at else t0))
                    prev = done
                span = prev - start
            out = {"took": took, "span": span}
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

    def hammer(self, port: int, requests: int, tag: str, rate: float | None = None,
               seed: int = 0) -> tuple[list[float], float]:
        """``requests`` GET /infer spread over the clients, all at once: closed loop (``rate``
        None: each client sends its next request when the previous answer came) or open loop
        (``rate`` requests/s over all clients, each on its own Poisson schedule from ``seed``).
        Seconds per request, and the rate they were served at (requests/s: each client's
        requests over its span, summed)."""
        per, extra = divmod(requests, len(self.procs))
        for i, p in enumerate(self.procs):
            n = per + (i < extra)
            if rate is None:
                p.stdin.write(f"closed {port} {tag}{i} {n}\n")
            else:
                p.stdin.write(f"open {port} {tag}{i} {n} {rate / len(self.procs)!r} {seed * 1000 + i}\n")
            p.stdin.flush()
        took, rate = [], 0.0
        for p in self.procs:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"load-test client exited with code {p.wait(TIMEOUT)}")
            out = json.loads(line)
            if "error" in out:
                raise RuntimeError(f"load-test client failed: {out['error']}")
            took += out["took"]
            rate += len(out["took"]) / out["span"] if out["span"] > 0 else 0.0
        return took, rate

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

    def __init__(self, mode: str, env: dict, record: str | None = None, max_delay: float | None = None):
        args = [sys.executable, os.path.join(HERE, "server.py"), "--port", "0", "--mode", mode] + \
            ([] if record is None else ["--record", record]) + \
            ([] if max_delay is None else ["--max-delay", repr(max_delay)])
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

    def stats(self) -> dict:
        """The server's ``/stats`` (JSON)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", "/stats")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

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


MODES = ("none", "sync", "background")
UTILIZATION = 0.5  # the open loop's default rate: this fraction of the none server's capacity


def _phase(servers: dict, pool: _Clients, requests: int, rounds: int, rate: float | None, seed: int) -> dict:
    """One load (closed loop: ``rate`` None; open loop: ``rate`` requests/s) on the three
    servers in rotating rounds: per server its latencies, CPU time and per-round p50s."""
    lat: dict[str, list[float]] = {name: [] for name in MODES}
    rates: dict[str, list[float]] = {name: [] for name in MODES}
    p50s: dict[str, list[float]] = {name: [] for name in MODES}
    cpu: dict = {name: 0 for name in MODES}  # ns of server CPU time in the measured rounds
    per, extra = divmod(requests, rounds)
    for r in range(rounds):
        for name in MODES[r % 3:] + MODES[:r % 3]:
            c0 = servers[name].cpu_ns()
            # the same schedule for every server in a round (open loop)
            took, served = pool.hammer(servers[name].port, per + (r < extra), "cam", rate, seed * 1000 + r)
            c1 = servers[name].cpu_ns()
            lat[name] += took
            rates[name].append(served)
            p50s[name].append(_percentile(took, 50))
            if c0 is None or c1 is None or cpu[name] is None:
                cpu[name] = None
            else:  # per thread: the clients' connection threads live through the test
                cpu[name] += sum(ns - c0.get(k, 0) for k, ns in c1.items())
        # the background server's worker may hold the last frames for max_delay: its CPU
        # time for them counts (it is work the requests caused)
        c0 = servers["background"].cpu_ns()
        _settle(servers["background"])
        c1 = servers["background"].cpu_ns()
        if c0 is not None and c1 is not None and cpu["background"] is not None:
            cpu["background"] += sum(ns - c0.get(t, 0) for t, ns in c1.items())
    out: dict = {}
    for name, xs in lat.items():
        out[name] = {"requests": len(xs), "p50": _percentile(xs, 50), "p99": _percentile(xs, 99),
                     "achieved_rate": _median(rates[name]),  # requests/s, median of the rounds
                     # the server's CPU time per request (all its threads): the monitor's cost
                     # without the waiting that the machine's load adds to latency
                     "cpu_us": None if cpu[name] is None else 1e-3 * cpu[name] / len(xs)}
    base = out["none"]
    for name in ("sync", "background"):
        o = out[name]
        o["added_p50_us"] = o["p50"] - base["p50"]
        o["added_p99_us"] = o["p99"] - base["p99"]
        o["overhead_p50"] = o["added_p50_us"] / o["p50"]
        # round by round against the none server's round next to it: less drift of the
        # machine's load between the compared requests
        o["overhead_p50_rounds"] = _median([(m - b) / m for m, b in zip(p50s[name], p50s["none"])])
        if o["cpu_us"] is not None and base["cpu_us"] is not None:
            o["added_cpu_us"] = o["cpu_us"] - base["cpu_us"]
            o["overhead_cpu"] = o["added_cpu_us"] / o["cpu_us"]
    return out


def _median(xs: list[float]) -> float:
    import numpy as np

    return float(np.median(xs))


def run(requests: int = 2000, clients: int = 4, rounds: int = 10, rate: float | None = None,
        utilization: float = UTILIZATION, loads: tuple = ("closed", "open"), seed: int = 0,
        max_delay: float | None = None) -> dict:
    """Latency percentiles (microseconds) of the three servers under each of ``loads``, what
    their monitors saw, and whether both modes found the same violations.

    ``requests`` per server and load, in ``rounds`` rotating rounds, after ``4 * clients``
    warm-up requests per server. ``closed``: ``clients`` requests always in flight (the
    servers saturated: a throughput test); ``open``: ``rate`` requests/s offered over all
    clients on Poisson schedules (the same for each server), latency counted from each
    request's scheduled time; ``rate`` None: ``utilization`` times the capacity the ``none``
    server showed in the closed loop of this run (which then comes first). ``max_delay``: the
    background server's (``None``: its default)."""
    if rate is None and "open" in loads and "closed" not in loads:
        raise ValueError("an open loop needs a rate, or a closed loop first to measure the capacity")
    env = _env()
    servers: dict[str, _Server] = {}
    pool = None
    tmp = tempfile.mkdtemp(prefix="tripwire-load-")
    records = {name: os.path.join(tmp, f"{name}.json") for name in ("sync", "background")}
    out: dict = {"cpus": os.cpu_count(),
                 "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}
    try:
        for name in MODES:
            servers[name] = _Server(name, env, records.get(name), max_delay if name == "background" else None)
        pool = _Clients(clients, env)
        for name, s in servers.items():  # warm-up: connections, first frames, caches (same streams)
            pool.hammer(s.port, 4 * clients, "warm")
        for s in (servers["sync"], servers["background"]):
            _settle(s)
        warm = {name: servers[name].metrics() for name in ("sync", "background")}  # without the warm-up's
        warm_stats = servers["background"].stats()
        for load in ("closed", "open"):
            if load not in loads:
                continue
            if load == "open":
                if rate is None:
                    capacity = out["closed"]["none"]["achieved_rate"]
                    rate = utilization * capacity
                    out["capacity"] = capacity
                out["rate"] = rate
            out[load] = _phase(servers, pool, requests, rounds, rate if load == "open" else None, seed)
        series = {name: servers[name].metrics() for name in ("sync", "background")}
        stats = servers["background"].stats()
    finally:
        if pool is not None:
            pool.close()
        logs = {name: s.stop() for name, s in servers.items()}
    for name in ("sync", "background"):
        m = re.search(r"flushed (\d+) held-back violations", logs.get(name, ""))
        if m is None:
            raise RuntimeError(f"the {name} server did not flush on exit: {logs.get(name, '')[-2000:]}")
        with open(records[name]) as f:
            out[name] = {"flushed_violations": int(m.group(1)), "events": json.load(f)["events"]}
    label = '{monitor="vtest"}'
    measured = sum(requests for load in loads)  # frames each monitored server saw after the warm-up
    for name in ("sync", "background"):
        o = out[name]
        now, before = series[name], warm[name]
        batches, seconds = f"tripwire_batches_total{label}", f"tripwire_observe_seconds_sum{label}"
        o["requests"] = measured
        o["observe_calls"] = int(now[batches] - before[batches])
        o["observe_mean_us"] = 1e6 * (now[seconds] - before[seconds]) / max(o["observe_calls"], 1)
        o["observe_us_per_frame"] = 1e6 * (now[seconds] - before[seconds]) / measured
        o["batches"] = int(now[batches])
        o["warm_up_batches"] = int(before[batches])
        o["rows"] = int(now[f"tripwire_rows_total{label}"])
        o["rejected"] = {re.search(r'reason="([^"]*)"', k).group(1): int(v) for k, v in now.items()
                         if k.startswith("tripwire_rejected_batches_total{") and v}
    bgo = out["background"]
    bgo["frames_checked"] = stats["checked"] - warm_stats["checked"]
    bgo["frames_per_observe"] = bgo["frames_checked"] / max(stats["observed"] - warm_stats["observed"], 1)
    bgo["submitted"] = stats["submitted"]
    bgo["max_delay"] = stats["max_delay"]
    bgo["max_waiting_rows"] = stats["max_waiting"]
    bgo["callback_errors"], bgo["worker_errors"] = stats["callback_errors"], stats["errors"]
    bgo["worker_cpu_us_per_frame"] = 1e6 * (stats["worker_cpu_s"] - warm_stats["worker_cpu_s"]) / max(bgo["frames_checked"], 1)
    out["same_violations"] = out["sync"]["events"] == bgo["events"]
    out["violation_events"] = len(out["sync"]["events"])
    for name in ("sync", "background"):
        del out[name]["events"]  # large: the comparison is what matters
    for path in records.values():
        os.remove(path)
    os.rmdir(tmp)
    return out


def _settle(server: _Server) -> None:
    """Wait until a background server's worker has checked everything submitted (bounded)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        s = server.stats()
        if s.get("mode") != "background" or s["checked"] >= s["submitted"]:
            return
        time.sleep(0.01)
    raise RuntimeError(f"the background server did not catch up within {TIMEOUT} s")


def _print_load(title: str, r: dict) -> None:
    print(title)
    for name in MODES:
        o = r[name]
        line = f"{name:>10}: p50 {o['p50']:6.0f} us, p99 {o['p99']:6.0f} us"
        if o["cpu_us"] is not None:
            line += f", server CPU {o['cpu_us']:4.0f} us/request"
        if name != "none":
            line += (f" | added: p50 {o['added_p50_us']:+5.0f} us ({100 * o['overhead_p50']:+.1f} % of the request; "
                     f"median of rounds {100 * o['overhead_p50_rounds']:+.1f} %), p99 {o['added_p99_us']:+5.0f} us")
            if "added_cpu_us" in o:
                line += f", CPU {o['added_cpu_us']:+4.0f} us ({100 * o['overhead_cpu']:+.1f} %)"
        print(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=4000, help="requests per server and load (bounded)")
    p.add_argument("--clients", type=int, default=4, help="client processes, one connection each per server")
    p.add_argument("--rounds", type=int, default=10, help="rotating rounds per server and load")
    p.add_argument("--load", choices=("both", "closed", "open"), default="both",
                   help="closed loop (saturation), open loop (a fixed offered rate), or both (default)")
    p.add_argument("--rate", type=float, help="open loop: requests/s over all clients (default: --utilization "
                                              "times the none server's closed-loop capacity in this run)")
    p.add_argument("--utilization", type=float, default=UTILIZATION,
                   help=f"open loop without --rate: the fraction of capacity offered (default {UTILIZATION})")
    p.add_argument("--seed", type=int, default=0, help="open loop: the seed of the Poisson schedules")
    p.add_argument("--max-delay", type=float, help="the background server's --max-delay (default: the server's, 0.25 s)")
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)  # a client process
    args = p.parse_args()
    if args.client:
        return _client_main()
    loads = ("closed", "open") if args.load == "both" else (args.load,)
    r = run(args.requests, args.clients, args.rounds, args.rate, args.utilization, loads, args.seed, args.max_delay)
    print(f"{args.requests} requests per server and load, {args.clients} client processes (keep-alive), "
          f"servers in their own processes, 127.0.0.1; {r['cpus']} CPUs ({r['cpus_usable']} usable)")
    if "closed" in r:
        c = r["closed"]
        _print_load(f"closed loop ({args.clients} requests in flight: saturation; none served "
                    f"{c['none']['achieved_rate']:.0f} requests/s)", c)
    if "open" in r:
        o = r["open"]
        how = f"{args.utilization:.0%} of the none server's capacity above" if "capacity" in r else "--rate"
        _print_load(f"open loop (offered {r['rate']:.0f} requests/s = {how}, Poisson; achieved: "
                    + ", ".join(f"{name} {o[name]['achieved_rate']:.0f}" for name in MODES)
                    + "; latency from the scheduled send)", o)
    s, b = r["sync"], r["background"]
    print(f"sync: observe {s['observe_mean_us']:.0f} us mean per frame, in the request; rejected: "
          f"{s['rejected'] or 'none'}")
    print(f"background (max_delay {b['max_delay']:g} s): {b['frames_per_observe']:.1f} frames gathered per observe, "
          f"{b['observe_mean_us']:.0f} us "
          f"each ({b['observe_us_per_frame']:.1f} us per frame; worker CPU {b['worker_cpu_us_per_frame']:.1f} us per frame), "
          f"off the request; rejected: {b['rejected'] or 'none'}; "
          f"at most {b['max_waiting_rows']} rows waited")
    print(f"violations after flush: background {'==' if r['same_violations'] else '!= (MISMATCH)'} sync "
          f"({r['violation_events']} events)   (bar: added <= 5 % of the request at p50)")


if __name__ == "__main__":
    main()
