"""Alert rules on rolling violation rates, with hysteresis, delivered to callbacks, logs and
webhooks. No dependencies beyond the standard library.

    alerts = AlertManager([tw.Alert("flicker", rate_above=0.05, over=1000,
                                    on=[page_someone, "http://127.0.0.1:9000/hook"])],
                          monitor="cam-1")
    alerts.record_batch(n_rows, flagged)     # once per observed batch, O(alerts)

A rule FIRES when the rate of its assertion over the last ``over`` rows goes above
``rate_above`` once at least ``over`` rows have been seen (a rate over a few rows is noise), and
RESOLVES when the rate is at or below ``clear_below`` (default 0.8 × ``rate_above``). A rate
that wanders between the two changes nothing, so a rate oscillating around ``rate_above`` fires
once and resolves once.

Each transition is delivered, in order, to:

- the ``tripwire.alerts`` logger: WARNING when firing, INFO when resolved (always);
- every callable in ``on``, called with the ``AlertEvent`` on the thread that observed the batch
  (keep it quick; an exception is logged and counted, never raised into the host);
- every webhook in ``on`` (a URL or a ``Webhook``): an HTTP POST of ``AlertEvent.to_dict()`` as
  JSON from a background thread through a bounded queue, so the request path never waits on
  the network; failures and drops are counted on the ``Webhook`` and logged.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from ._rolling import RollingRate
from .errors import InputError

__all__ = ["Alert", "AlertEvent", "AlertManager", "Webhook"]

log = logging.getLogger("tripwire.alerts")

FIRING, RESOLVED = "firing", "resolved"
CLEAR_FRACTION = 0.8  # default clear_below = CLEAR_FRACTION * rate_above


@dataclass(frozen=True)
class AlertEvent:
    """One transition of one rule; ``to_dict()`` is the webhook's JSON body."""

    monitor: str
    alert: str              # the rule's name
    assertion: str
    state: str              # "firing" or "resolved"
    rate: float             # the rolling rate that caused the transition
    threshold: float        # the rule's rate_above
    clear_below: float
    over: int
    rows: int               # rows in the rolling window (>= over)
    timestamp: float        # Unix time, seconds

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["time"] = datetime.fromtimestamp(self.timestamp, timezone.utc).isoformat()
        return d


class Webhook:
    """POSTs alert events as JSON to ``url`` from one background thread.

    ``send`` never blocks and never raises: a full queue (``max_queue`` events waiting) drops the
    event. ``sent``, ``failed`` (network errors, timeouts, non-2xx answers) and ``dropped``
    count what happened; each failure and drop is logged on ``tripwire.alerts``. No retries.
    Proxies follow the standard environment variables (``urllib``).
    """

    def __init__(self, url: str, *, timeout: float = 5.0, max_queue: int = 100,
                 headers: dict[str, str] | None = None):
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError("Webhook: bad url", expected="an http:// or https:// URL",
                             found=repr(url), fix='pass e.g. "http://127.0.0.1:9000/alerts"')
        if not (timeout > 0) or not isinstance(max_queue, int) or max_queue < 1:
            raise InputError("Webhook: bad timeout or max_queue",
                             expected="timeout > 0 seconds and max_queue an integer >= 1",
                             found=f"timeout={timeout!r}, max_queue={max_queue!r}",
                             fix="pass timeout=5.0, max_queue=100, say")
        self.url, self.timeout, self.max_queue = url, float(timeout), max_queue
        self.headers = {"Content-Type": "application/json", "User-Agent": "tripwire-alerts",
                        **(headers or {})}
        self.sent = self.failed = self.dropped = 0
        self._queue: queue.Queue = queue.Queue(max_queue)
        self._idle = threading.Condition()
        self._pending = 0  # queued or in flight
        self._thread: threading.Thread | None = None
        self._closed = False

    def send(self, event: AlertEvent) -> bool:
        """Queue ``event`` for delivery; False if it was dropped (queue full or closed)."""
        with self._idle:
            if self._closed:
                self.dropped += 1
                log.warning("webhook %s: closed, alert event dropped: %s", self.url, event.alert)
                return False
            if self._thread is None:  # started on first use: most webhooks never fire
                self._thread = threading.Thread(target=self._run, name="tripwire-webhook", daemon=True)
                self._thread.start()
            try:
                self._queue.put_nowait(event)
            except queue.Full:
                self.dropped += 1
                log.warning("webhook %s: %d events already waiting, alert event dropped (%d dropped so far)",
                            self.url, self.max_queue, self.dropped)
                return False
            self._pending += 1
            return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was sent or failed; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop the thread. Idempotent."""
        with self._idle:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)  # the stop sign, after the queued events
            thread.join(timeout)

    def _run(self) -> None:
        import json
        import urllib.request

        while True:
            event = self._queue.get()
            if event is None:
                return
            ok, error = False, None
            try:
                body = json.dumps(event.to_dict()).encode()
                req = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (scheme checked)
                    resp.read()
                    ok = 200 <= resp.status < 300
                    error = None if ok else f"HTTP {resp.status}"
            except Exception as exc:  # noqa: BLE001 - a failed delivery must never kill the thread
                error = repr(exc)
            with self._idle:
                if ok:
                    self.sent += 1
                else:
                    self.failed += 1
                    log.warning("webhook POST to %s failed (%d failures so far): %s", self.url,
                                self.failed, error)
                self._pending -= 1
                self._idle.notify_all()

    def __repr__(self) -> str:
        return f"Webhook({self.url!r}, sent={self.sent}, failed={self.failed}, dropped={self.dropped})"


Target = Callable[[AlertEvent], Any] | Webhook | str


class Alert:
    """A rule on the rolling violation rate of one assertion (see the module docstring).

    - ``rate_above``: fire when flagged rows / checked rows over the last ``over`` rows exceed
      it (0 <= rate_above < 1), once at least ``over`` rows have been seen.
    - ``over``: the window in rows (whole batches, as ``tripwire._rolling.RollingRate``).
    - ``clear_below``: resolve when the rate is at or below it; default
      ``0.8 * rate_above``; ``clear_below == rate_above`` means no hysteresis band.
    - ``on``: a target or a list of them: callables taking an ``AlertEvent``, webhook URLs
      (``"http://..."``) or ``Webhook`` objects (share one between rules to share its thread).
      Events are always logged on ``tripwire.alerts`` too.
    - ``name``: for logs and events; default ``"<assertion> rate > <rate_above> over <over> rows"``.

    A rule holds no state: an ``AlertManager`` does, so one rule may serve several monitors.
    """

    def __init__(self, assertion: str, rate_above: float, over: int = 1000,
                 clear_below: float | None = None, on: Target | Iterable[Target] = (),
                 name: str | None = None):
        if not isinstance(assertion, str) or not assertion:
            raise InputError("Alert: bad assertion", expected="an assertion's name in the suite",
                             found=repr(assertion), fix='pass e.g. tw.Alert("flicker", rate_above=0.05)')
        if isinstance(rate_above, bool) or not isinstance(rate_above, (int, float)) \
                or not 0 <= rate_above < 1:
            raise InputError(f"Alert({assertion!r}): bad rate_above",
                             expected="a rate in [0, 1): flagged rows / checked rows",
                             found=repr(rate_above), fix="pass e.g. rate_above=0.05 for 5 %")
        if isinstance(over, bool) or not isinstance(over, int) or over < 1:
            raise InputError(f"Alert({assertion!r}): bad over", expected="a window of rows, an integer >= 1",
                             found=repr(over), fix="pass e.g. over=1000")
        if clear_below is None:  # rounded so that 0.05 gives 0.04, not 0.04000000000000001
            clear_below = round(CLEAR_FRACTION * rate_above, 12)
        if isinstance(clear_below, bool) or not isinstance(clear_below, (int, float)) \
                or not 0 <= clear_below <= rate_above:
            raise InputError(f"Alert({assertion!r}): bad clear_below",
                             expected=f"a rate in [0, rate_above={rate_above}]",
                             found=repr(clear_below),
                             fix=f"pass e.g. clear_below={CLEAR_FRACTION * rate_above:g}, or leave it out")
        self.assertion = assertion
        self.rate_above = float(rate_above)
        self.over = over
        self.clear_below = float(clear_below)
        self.name = name or f"{assertion} rate > {rate_above:g} over {over} rows"
        self.callbacks: list[Callable[[AlertEvent], Any]] = []
        self.webhooks: list[Webhook] = []
        single = callable(on) or isinstance(on, (str, Webhook)) or not isinstance(on, Iterable)
        for target in ([on] if single else list(on)):
            if isinstance(target, Webhook):
                self.webhooks.append(target)
            elif isinstance(target, str):
                self.webhooks.append(Webhook(target))
            elif callable(target):
                self.callbacks.append(target)
            else:
                raise InputError(f"Alert({assertion!r}): bad delivery target in on=",
                                 expected="a callable taking an AlertEvent, a webhook URL or a tw.Webhook",
                                 found=repr(target), fix="pass on=[my_function, 'http://host/hook']")

    def __repr__(self) -> str:
        return (f"Alert({self.assertion!r}, rate_above={self.rate_above:g}, over={self.over}, "
                f"clear_below={self.clear_below:g})")


class AlertManager:
    """The state of a monitor's alert rules; thread-safe.

    The monitor calls ``record_batch(n_rows, flagged)`` once per observed batch, with the same
    numbers it gives ``MonitorMetrics.record_batch``. Rules with the same ``over`` share one
    rolling window. ``assertions`` (the suite's names), when given, are checked against the
    rules so that a typo fails at construction, not silently forever.
    """

    def __init__(self, alerts: Iterable[Alert], monitor: str = "default",
                 assertions: Iterable[str] | None = None):
        self.alerts = list(alerts)
        for a in self.alerts:
            if not isinstance(a, Alert):
                raise InputError("AlertManager: not an Alert", expected="tw.Alert(...) rules",
                                 found=repr(a), fix='pass [tw.Alert("flicker", rate_above=0.05)]')
        if assertions is not None:
            known = set(assertions)
            for a in self.alerts:
                if a.assertion not in known:
                    raise InputError(f"{a!r}: no assertion {a.assertion!r} in the suite",
                                     expected=f"one of {', '.join(sorted(known)) or '(none)'}",
                                     fix="name an assertion of the suite (its name, not its kind)")
        self.monitor = monitor
        self.callback_errors = 0
        self._windows = {over: RollingRate(over) for over in sorted({a.over for a in self.alerts})}
        self._firing = [False] * len(self.alerts)
        self._rules = [(i, a, self._windows[a.over]) for i, a in enumerate(self.alerts)]
        self._lock = threading.Lock()       # the windows and states
        self._deliver = threading.RLock()   # keeps deliveries in transition order

    def record_batch(self, n_rows: int, flagged: dict[str, int]) -> list[AlertEvent]:
        """Feed one observed batch; deliver and return the transitions it caused (usually [])."""
        try:
            counts = flagged.values()  # (refuses what is not a mapping, as None)
            if counts and min(counts) < 0:  # no min() call for the usual {}
                raise ValueError(f"negative count in flagged={flagged!r}")
            events = []
            with self._lock:
                for window in self._windows.values():
                    window.add(n_rows, flagged)
                firing = self._firing
                for i, a, window in self._rules:
                    rows = window.rows  # window.rate(a.assertion), inline: once per rule and batch
                    rate = window._flagged.get(a.assertion, 0) / rows if rows else 0.0
                    if firing[i]:
                        if rate <= a.clear_below:
                            firing[i] = False
                            events.append(self._event(a, RESOLVED, rate, window.rows))
                    elif rate > a.rate_above and window.rows >= a.over:
                        firing[i] = True
                        events.append(self._event(a, FIRING, rate, window.rows))
                if not events:
                    return events
                # taken before the state lock is let go: the next transition waits for these
                self._deliver.acquire()
            try:
                for event, alert in events:
                    self._deliver_one(alert, event)
            finally:
                self._deliver.release()
            return [event for event, _ in events]
        except Exception as exc:  # noqa: BLE001 - never into the host's request path
            log.error("monitor %r: AlertManager.record_batch failed, the batch was ignored: %r",
                      self.monitor, exc)
            return []

    def firing(self) -> list[Alert]:
        """The rules firing now."""
        with self._lock:
            return [a for a, f in zip(self.alerts, self._firing) if f]

    def rate(self, alert: Alert) -> float:
        """The rolling rate ``alert`` watches now."""
        with self._lock:
            return self._windows[alert.over].rate(alert.assertion)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver queued webhook events (within ``timeout`` each) and stop their threads."""
        for hook in {id(h): h for a in self.alerts for h in a.webhooks}.values():
            hook.close(timeout)

    # ------------------------------------------------------------------ internals
    def _event(self, a: Alert, state: str, rate: float, rows: int) -> tuple[AlertEvent, Alert]:
        return AlertEvent(monitor=self.monitor, alert=a.name, assertion=a.assertion, state=state,
                          rate=rate, threshold=a.rate_above, clear_below=a.clear_below, over=a.over,
                          rows=rows, timestamp=time.time()), a

    def _deliver_one(self, alert: Alert, event: AlertEvent) -> None:
        if event.state == FIRING:
            log.warning("alert FIRING [%s] %s: rate %.4g > %g over the last %d rows", event.monitor,
                        alert.name, event.rate, alert.rate_above, event.rows)
        else:
            log.info("alert resolved [%s] %s: rate %.4g <= %g over the last %d rows", event.monitor,
                     alert.name, event.rate, alert.clear_below, event.rows)
        for callback in alert.callbacks:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a broken callback must not reach the host
                self.callback_errors += 1
                log.exception("alert callback %r failed on %s (%s)", callback, alert.name, event.state)
        for hook in alert.webhooks:
            hook.send(event)
