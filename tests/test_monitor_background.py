"""tw.BackgroundMonitor: submit + flush gives exactly the violations of Suite.check on the batches
in the order submit took them (and of Monitor.observe on each), across threads; a full queue is
counted, never silent; a failing callback does not stop the worker; close drains."""
from __future__ import annotations

import logging
import random
import threading
import time

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
from test_monitor import _frames_table, all_examples, boxes_table, events_of, streams_and_splits, whole

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def merged(reports) -> dict[str, list[tuple]]:
    """{assertion: sorted events} over several reports (no report rejected)."""
    got: dict[str, list] = {}
    for r in reports:
        assert r.rejected is None, r.error
        for a, evs in events_of(r).items():
            got.setdefault(a, []).extend(evs)
    return {a: sorted(evs) for a, evs in got.items()}


def by_stream(batches: list[pa.Table]) -> dict:
    """Each batch cut into one part per stream value (null: its own), parts in batch order:
    each stream's frames stay in order across its parts."""
    parts: dict = {}
    for b in batches:
        streams = b.column("stream").to_pylist()
        for s in dict.fromkeys(streams):
            rows = [i for i, v in enumerate(streams) if v == s]
            parts.setdefault(s, []).append(b.take(pa.array(rows, pa.int64())))
    return parts


class Gate:
    """An ``on_report`` that holds the worker until ``open()`` (to let a backlog build up)."""

    def __init__(self) -> None:
        self.reports: list = []
        self.entered = threading.Event()
        self._open = threading.Event()

    def __call__(self, report) -> None:
        self.entered.set()
        self._open.wait(30)
        self.reports.append(report)

    def open(self) -> None:
        self._open.set()


def flagged_frame(frame: int, stream: str = "a") -> pa.Table:
    """One frame whose box leaves the 60-pixel-wide image of ``boxes.valid(width=60)``."""
    return boxes_table([dict(stream=stream, frame=frame, track=1, cls="car", score=0.5, box=(0.0, 0.0, 100.0, 10.0))])


# ----------------------------------------------------------------------------------------------
# equivalence
# ----------------------------------------------------------------------------------------------
@pytest.mark.slow
@PROPERTY
@given(batches=streams_and_splits(), max_rows=st.integers(1, 64), max_delay=st.sampled_from([0.0, 0.001, 0.02]),
       seed=st.integers(0, 2**16))
def test_threads_on_distinct_streams_equal_suite_check(batches, max_rows, max_delay, seed):
    """One submitting thread per stream, in random interleavings: the reports and the final
    flush hold exactly Suite.check's violations on the batches in the order submit took them."""
    suite = all_examples()
    parts = by_stream(batches)
    order: list[pa.Table] = []
    lock = threading.Lock()
    reports: list = []
    bg = tw.Monitor(suite, horizon=None).background(max_delay=max_delay, max_rows=max_rows,
                                                      on_report=reports.append)

    refused: list = []

    def submit(i: int, mine: list[pa.Table]) -> None:
        rng = random.Random(seed + i)
        for b in mine:
            if rng.random() < 0.5:
                time.sleep(rng.random() * 0.002)
            with lock:  # the lock only records the order submit takes them in
                if not bg.submit(b):
                    refused.append(b)
                order.append(b)

    threads = [threading.Thread(target=submit, args=(i, mine)) for i, mine in enumerate(parts.values())]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = bg.close()
    assert not refused and not bg.monitor.rejected and bg.errors == 0 and bg.checked == bg.submitted == len(order)
    got = merged(reports + [final])
    assert got == events_of(suite.check(whole(order)))
    sync = tw.Monitor(suite, horizon=None, strict=True)
    assert got == merged([sync.observe(b) for b in order] + [sync.flush()])


def _malformed(t: pa.Table) -> pa.Table:
    return t.set_column(t.schema.get_field_index("frame"), "frame", pa.array(["x"] * t.num_rows))


@pytest.mark.slow
@PROPERTY
@given(batches=streams_and_splits(), seed=st.integers(0, 2**16), max_rows=st.integers(1, 64))
def test_late_and_bad_batches_are_rejected_as_observe_rejects_them(batches, seed, max_rows):
    """Batches in a random order (frames going back across batches), some malformed or not a
    table, all gathered: each batch observe rejects is rejected on its own with the same
    reason, and the violations of the rest are observe's."""
    rng = random.Random(seed)
    rng.shuffle(batches)
    mixed: list = []
    for b in batches:
        mixed.append(b)
        r = rng.random()
        if r < 0.15:
            mixed.append(_malformed(b))
        elif r < 0.25:
            mixed.append({"not": "a table"})
    suite = all_examples()
    sync = tw.Monitor(suite, horizon=None)
    expected = [sync.observe(b) for b in mixed]
    expected_flush = sync.flush()
    reports: list = []
    bg = tw.Monitor(suite, horizon=None).background(max_delay=3600, max_rows=max_rows, on_report=reports.append)
    for b in mixed:
        assert bg.submit(b)
    final = bg.flush(timeout=60)
    assert bg.monitor.rejected == sync.rejected and bg.monitor.rows == sync.rows
    assert merged(reports + [final]) == merged([r for r in expected if r.rejected is None] + [expected_flush])
    assert len(bg.close(timeout=60)) == 0 and bg.errors == 0 and bg.checked == len(mixed)


def test_frames_going_back_across_gathered_batches_are_refused():
    """Inside one batch any order is allowed, across batches not: a gathered batch must not
    accept a frame that its own batch would be refused for."""
    suite = tw.Suite([tw.boxes.flicker(max_gap=3)])
    bg = tw.Monitor(suite).background(max_delay=3600)
    for frames in ([0, 1], [0], [3]):
        bg.submit(_frames_table(frames))
    report = bg.flush()
    assert bg.monitor.rejected == {"out_of_order": 1} and bg.monitor.rows == 3
    assert bg.checked == 3 and bg.observed == 3  # the run was observed batch by batch
    sync = tw.Monitor(suite)
    for frames in ([0, 1], [3]):
        sync.observe(_frames_table(frames))
    assert events_of(report) == events_of(sync.flush())
    bg.close()


def test_batches_are_gathered_into_one_observe_call():
    suite = tw.Suite([tw.boxes.valid(width=60, height=60), tw.boxes.flicker(max_gap=3)])
    reports: list = []
    with tw.Monitor(suite, name="g").background(max_delay=3600, on_report=reports.append) as bg:
        sent = [flagged_frame(f // 4, stream=f"s{f % 4}") for f in range(1000)]
        for b in sent:
            assert bg.submit(b)
        assert bg.pending_rows() == 1000  # nothing checked yet: max_delay is an hour
        bg.flush()
        stats = bg.stats()
    assert stats["submitted"] == stats["checked"] == 1000 and stats["observed"] == 1
    assert stats["batches_per_observe"] == 1000 and stats["rejected"] == {}
    assert 0 < stats["worker_cpu_s"] < 60  # the worker's own CPU time, counted while it checked
    assert [r.first_row for r in reports] == [0] and reports[0].inputs["rows"].num_rows == 1000
    assert merged(reports) == events_of(suite.check(pa.concat_tables(sent))) and len(reports[0]) >= 1000
    assert bg.monitor.batches == 1 and bg.monitor.rows == 1000


def test_max_rows_cuts_gathered_batches():
    gate = Gate()
    bg = tw.Monitor([tw.boxes.valid(width=60, height=60)]).background(max_delay=0, max_rows=250, on_report=gate)
    bg.submit(flagged_frame(0))
    assert gate.entered.wait(30)  # the worker is held: the next 1000 wait together
    for f in range(1, 1001):
        bg.submit(flagged_frame(f))
    gate.open()
    bg.close(timeout=60)
    assert [r.first_row for r in gate.reports] == [0, 1, 251, 501, 751]
    assert [len(r) for r in gate.reports] == [1, 250, 250, 250, 250] and bg.observed == 5


def test_max_rows_wakes_the_worker_before_max_delay():
    with tw.Monitor([tw.boxes.valid(width=60, height=60)]).background(max_delay=3600, max_rows=10) as bg:
        for f in range(10):
            bg.submit(flagged_frame(f))
        deadline = time.monotonic() + 30
        while bg.checked < 10 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert bg.checked == 10 and bg.observed == 1


def test_schema_change_ends_a_run():
    suite = tw.Suite([tw.boxes.valid(width=60, height=60)])
    reports: list = []
    bg = tw.Monitor(suite).background(max_delay=3600, on_report=reports.append)
    a = [flagged_frame(f) for f in range(3)]
    other = flagged_frame(3).drop_columns(["track"])  # another schema: the monitor refuses it
    for b in a[:2] + [other] + a[2:]:
        bg.submit(b)
    bg.close()
    assert bg.observed == 3 and bg.checked == 4
    assert [r.first_row for r in reports] == [0, 2] and sum(len(r) for r in reports) == 3
    assert sum(bg.monitor.rejected.values()) == 1 and bg.monitor.rows == 3


def test_inputs_of_other_kinds_and_schemas_are_gathered_as_observe_reads_them():
    """Tables are taken as they are once their schema is known (no per-table conversion);
    record batches, string-view columns (converted by as_table) and schema changes in between
    still end up in runs of one schema, with observe's results on each batch."""
    suite = tw.Suite([tw.boxes.valid(width=60, height=60), tw.boxes.flicker(max_gap=3)])
    f = [flagged_frame(i) for i in range(8)]
    view = f[3].set_column(0, pa.field("stream", pa.string_view()), f[3].column("stream").cast(pa.string_view()))
    reordered = f[5].select(list(reversed(f[5].column_names)))  # another schema: a run of its own
    items = [f[0], f[1], f[2].to_batches()[0], view, f[4], reordered, f[6], f[7]]
    sync = tw.Monitor(suite)
    expected = [sync.observe(b) for b in items]
    reports: list = []
    bg = tw.Monitor(suite).background(max_delay=3600, on_report=reports.append)
    for b in items:
        assert bg.submit(b)
    final = bg.close(timeout=60)
    assert bg.monitor.rejected == sync.rejected and bg.monitor.rows == sync.rows == 8
    assert merged(reports + [final]) == merged(expected + [sync.flush()])
    # view is read as large_string (another schema); reordered, and the plain tables after it
    assert [r.first_row for r in reports] == [0, 3, 4, 5, 6]


# ----------------------------------------------------------------------------------------------
# bounded queue, failures, shutdown
# ----------------------------------------------------------------------------------------------
def test_backlog_is_counted_and_logged_never_silent(caplog):
    prometheus_client = pytest.importorskip("prometheus_client")
    registry = prometheus_client.CollectorRegistry()
    mon = tw.Monitor([tw.boxes.valid(width=60, height=60)], name="cam",
                     metrics=tw.MonitorMetrics(registry, monitor="cam"))
    gate = Gate()
    bg = mon.background(max_delay=0, max_pending=5, on_report=gate)
    assert bg.submit(flagged_frame(0))
    assert gate.entered.wait(30)  # the worker is held in the callback: nothing more is taken
    taken = [bg.submit(flagged_frame(f)) for f in range(1, 9)]
    assert taken == [True] * 5 + [False] * 3
    assert mon.rejected == {"backlog": 3} and bg.stats()["max_waiting"] == 5
    assert "rejected 1 batch(es) (backlog): 5 rows waiting, max_pending=5" in caplog.text
    assert registry.get_sample_value("tripwire_rejected_batches_total",
                                     {"monitor": "cam", "reason": "backlog"}) == 3
    gate.open()
    bg.close(timeout=60)
    assert bg.submitted == bg.checked == 6 and sum(len(r) for r in gate.reports) == 6
    assert mon.rows == 6
    assert not bg.submit(flagged_frame(9)) and mon.rejected == {"backlog": 3, "closed": 1}


def test_block_when_full_waits_for_room():
    gate = Gate()
    bg = tw.Monitor([tw.boxes.valid(width=60, height=60)]).background(max_delay=0, max_pending=2,
                                                                       when_full="block", on_report=gate)
    bg.submit(flagged_frame(0))
    assert gate.entered.wait(30)
    bg.submit(flagged_frame(1))
    bg.submit(flagged_frame(2))
    done = threading.Event()

    def blocked():
        bg.submit(flagged_frame(3))
        done.set()

    t = threading.Thread(target=blocked)
    t.start()
    assert not done.wait(0.2)  # two rows wait: the third submit waits for room
    gate.open()
    assert done.wait(30)
    t.join()
    bg.close(timeout=60)
    assert bg.monitor.rejected == {} and bg.checked == 4 and sum(len(r) for r in gate.reports) == 4


def test_a_failing_callback_does_not_stop_the_worker(caplog):
    calls = []

    def broken(report):
        calls.append(len(report))
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="tripwire.monitor"):
        bg = tw.Monitor([tw.boxes.valid(width=60, height=60)]).background(max_delay=0, on_report=broken)
        for f in range(5):
            bg.submit(flagged_frame(f))
            bg.flush(timeout=30)  # one report each
        bg.close(timeout=30)
    assert calls == [1] * 5 and bg.callback_errors == 5 and bg.checked == 5 and bg.errors == 0
    assert "on_report failed" in caplog.text and "callback bug" in caplog.text


def test_bad_input_is_rejected_by_the_worker_and_it_goes_on(caplog):
    with tw.Monitor([tw.boxes.valid(width=60, height=60)]).background(max_delay=0) as bg:
        assert bg.submit({"not": "a table"}) and bg.submit(None) and bg.submit(flagged_frame(0))
        bg.flush(timeout=30)
        assert bg.monitor.rejected == {"not_a_table": 2} and bg.monitor.rows == 1 and bg.checked == 3


def test_close_drains_everything_pending_and_returns_the_held_back_violations():
    suite = tw.Suite([tw.boxes.multibox(iou=0.3, min_boxes=2)])  # a frame is judged once the next arrives
    reports: list = []
    bg = tw.Monitor(suite).background(max_delay=3600, on_report=reports.append)
    two = boxes_table([dict(stream="a", frame=f, track=t, cls="car", score=0.5, box=(0.0, 0.0, 10.0, 10.0))
                       for f in range(3) for t in (1, 2)])
    for f in range(3):
        bg.submit(two.slice(2 * f, 2))
    t0 = time.monotonic()
    final = bg.close(timeout=30)
    assert time.monotonic() - t0 < 10  # close does not wait for max_delay
    assert bg.checked == 3 and sum(len(r) for r in reports) == 4 and len(final) == 2
    assert merged(reports + [final]) == events_of(suite.check(two))
    assert len(bg.close()) == 0  # idempotent


def test_options_are_checked():
    suite = tw.Suite([tw.boxes.valid()])
    with pytest.raises(tw.InputError, match="strict"):
        tw.Monitor(suite, strict=True).background()
    for bad in (dict(max_delay=-1), dict(max_rows=0), dict(max_pending=1.5), dict(when_full="drop"),
                dict(on_report=3)):
        with pytest.raises(tw.InputError):
            tw.Monitor(suite).background(**bad)
    with pytest.raises(tw.InputError, match="tw.Monitor"):
        tw.BackgroundMonitor(suite)


def test_readme_background_example_runs_as_written():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if ".background(" in b)
    ns: dict = {}
    exec(block, ns)
    checker = ns["checker"]
    assert checker.submitted == checker.checked == 3 and not ns["monitor"].rejected
    # boxes.valid flags the box past x = 1920 in every frame; multibox has too few boxes
    assert sum(len(r) for r in ns["found"]) + len(ns["held_back"]) == 3


# ----------------------------------------------------------------------------------------------
# the frame-order check across gathered batches: natively in the box engine's pass, and
# _ordered_across for the other assertions' columns, against a plain loop
# ----------------------------------------------------------------------------------------------
_STREAM_TYPES = {"string": pa.string(), "large_string": pa.large_string(), "int64": pa.int64(),
                 "dictionary": pa.dictionary(pa.int32(), pa.string()), "none": None}


@st.composite
def gathered_parts(draw):
    """Streams and frames (nulls included) cut into parts (empty ones too), mostly in order."""
    n_parts = draw(st.integers(1, 6))
    sizes = [draw(st.integers(0, 6)) for _ in range(n_parts)]
    n = sum(sizes)
    kind = draw(st.sampled_from(sorted(_STREAM_TYPES)))
    values = ["a", "b", "c"] if kind != "int64" else [7, -3, 2**40]
    streams = [draw(st.sampled_from(values + [None])) for _ in range(n)]
    frames, clock = [], 0
    for _ in range(n):
        clock += draw(st.sampled_from([0, 1, 1, 2, -1, -3]))  # mostly forward, sometimes back
        frames.append(None if draw(st.integers(0, 9)) == 0 else clock)
    return kind, streams, frames, sizes


def _gathered(kind: str, streams: list, frames: list) -> pa.Table:
    n = len(frames)
    cols = {"frame": pa.array(frames, pa.int64()), "track": pa.array([1] * n, pa.int64()),
            "cls": pa.array(["car"] * n), "score": pa.array([0.5] * n, pa.float32())}
    for name, v in (("x1", 0.0), ("y1", 0.0), ("x2", 10.0), ("y2", 10.0)):
        cols[name] = pa.array([v] * n, pa.float32())
    if _STREAM_TYPES[kind] is not None:
        typ = _STREAM_TYPES[kind]
        cols["stream"] = pa.array(streams, pa.string()).dictionary_encode() if kind == "dictionary" \
            else pa.array(streams, typ)
    return pa.table(cols)


@settings(max_examples=300, deadline=None)
@given(case=gathered_parts())
def test_order_across_gathered_parts_matches_a_plain_loop(case):
    """The box engine's one-pass check (prepare with the parts' first rows) and the NumPy one
    for other assertions' columns both say what the plain loop says: out-of-order runs,
    nulls in either column, several streams, string / large string / int / dictionary stream
    columns, no stream column, empty parts."""
    import numpy as np
    from tripwire._streaming import OutOfOrder, _ordered_across

    import reference

    kind, streams, frames, sizes = case
    table = _gathered(kind, streams, frames)
    want = reference.ordered_across(None if kind == "none" else streams, frames, sizes)
    mon = tw.Monitor([tw.boxes.flicker(max_gap=3)])
    mon._build(table.schema)
    native = mon._native
    assert native is not None  # the engine checks flicker's columns itself
    parts = np.cumsum(sizes[:-1], dtype=np.int64)
    try:
        native.prepare(table, 0, parts)
        native.abort()
        got = True
    except OutOfOrder:
        got = False
    assert got == want
    runs = [table.slice(a, n) for a, n in zip(np.r_[0, parts], sizes)]
    assert _ordered_across(runs, table, {("stream" if kind != "none" else None, "frame")}) == want


def test_order_across_gathered_parts_after_earlier_batches():
    """The cross-part check comes on top of the check against earlier batches: a part in
    order with its neighbours is still refused for a frame older than an earlier batch's,
    and a refused gathered batch leaves the engine's state as it was."""
    import numpy as np
    from tripwire._streaming import OutOfOrder

    mon = tw.Monitor([tw.boxes.flicker(max_gap=3)])
    assert len(mon.observe(_gathered("string", ["a", "b"], [5, 5]))) == 0
    native = mon._native
    late = _gathered("string", ["a", "a", "b"], [4, 6, 6])
    with pytest.raises(OutOfOrder, match="frame 4 of stream 'a' arrived after frame 5"):
        native.prepare(late, mon.rows, np.array([1], np.int64))
    back = _gathered("string", ["b", "a", "a", "b"], [6, 7, 6, 7])  # 'a': 7 then 6 in the next part
    with pytest.raises(OutOfOrder, match="frame 6 of stream 'a' comes after frame 7 of an earlier batch"):
        native.prepare(back, mon.rows, np.array([2], np.int64))
    native.prepare(back, mon.rows, np.array([1], np.int64))  # 'a': 7 and 6 in one part: allowed
    native.abort()
    assert mon.observe(_gathered("string", ["a", "b"], [6, 6])).rejected is None  # nothing was kept
