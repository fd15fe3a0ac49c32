"""boxes.flicker / boxes.appear: every backend against the plain-loop reference, both identity
modes, hand-written edge cases, and the real TUD-Campus tracker output (pinned events and
MOTA / IDF1 before and after applying the corrections)."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
from reference import LAYOUTS, assert_same_report, check_like_reference, make_table

PROPERTY = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAN, INF = float("nan"), float("inf")
TUD = os.path.join(os.path.dirname(tw.__file__), "data", "tud_campus")


def table(frames, boxes, *, tracks=None, streams=None, cls=None, scores=None, layout="plain",
          splits=(1, 2), stream_type=pa.int64(), coord_type=pa.float32()):
    """``boxes``: [(x1, y1, x2, y2)] or a single x1 per row (a 10x10 box at (x1, 0))."""
    boxes = [b if isinstance(b, tuple) else (b, 0.0, b + 10.0, 10.0) for b in boxes]
    cols = {"frame": (frames, lambda v: pa.array(v, pa.int64()), 0)}
    if streams is not None:
        pad = "s" if pa.types.is_string(stream_type) else 0
        cols["stream"] = (streams, lambda v: pa.array(v, stream_type), pad)
    if tracks is not None:
        cols["track"] = (tracks, lambda v: pa.array(v, pa.int64()), 0)
    if cls is not None:
        cols["cls"] = (cls, lambda v: pa.array(v, pa.string()), "a")
    for j, name in enumerate(("x1", "y1", "x2", "y2")):
        cols[name] = ([b[j] for b in boxes], lambda v: pa.array(v, coord_type), 0.0)
    if scores is not None:
        cols["score"] = (scores, lambda v: pa.array(v, pa.float32()), 0.5)
    return make_table(cols, layout, splits)


def events(report, kind=None):
    """{event: sorted rows} per assertion kind, as a list of row tuples in event order."""
    v = report.violations
    if kind is not None:
        v = v.filter(pc.equal(v["kind"], kind))
    out: dict[int, list[int]] = {}
    for row, ev in zip(v["row"].to_pylist(), v["event"].to_pylist()):
        out.setdefault(ev, []).append(row)
    return [tuple(rows) for _, rows in sorted(out.items())]


def severities(report):
    v = report.violations
    return dict(zip(v["event"].to_pylist(), v["severity"].to_pylist()))


# ----------------------------------------------------------------------------------------------
# property: fast backends == reference, in every layout and identity mode
# ----------------------------------------------------------------------------------------------
_X = st.sampled_from([0.0, 0.0, 1.0, 3.0, 5.0, 40.0, 80.0])


@st.composite
def a_box(draw, odd):
    x = draw(_X)
    box = [x, 0.0, x + draw(st.sampled_from([10.0, 10.0, 12.0, 0.0])), 10.0]
    if odd and draw(st.integers(0, 9)) == 0:
        box[draw(st.integers(0, 3))] = draw(st.sampled_from([NAN, INF, -INF, None]))
    return tuple(box)


@st.composite
def cases(draw):
    n = draw(st.integers(0, 30))
    odd = draw(st.booleans())
    stream_kind = draw(st.sampled_from([None, None, "int", "string"]))
    streams = None
    if stream_kind:
        streams = draw(st.lists(st.sampled_from([0, 1] + ([None] if odd else [])), min_size=n, max_size=n))
        if stream_kind == "string":
            streams = [None if s is None else f"cam{s}" for s in streams]
    tracks = None
    if draw(st.booleans()):
        tracks = draw(st.lists(st.sampled_from([0, 1, 2, 3] + ([None] if odd else [])), min_size=n, max_size=n))
    cls = None
    if draw(st.booleans()):
        cls = draw(st.lists(st.sampled_from(["car", "car", "bus"] + ([None] if odd else [])), min_size=n, max_size=n))
    scores = None
    if draw(st.booleans()):
        element = st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])
        if odd:
            element = st.one_of(element, st.sampled_from([None, NAN, -0.5]))
        scores = draw(st.lists(element, min_size=n, max_size=n))
    frames = draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))
    if draw(st.booleans()):
        frames = sorted(frames)
    return dict(
        frames=frames, boxes=draw(st.lists(a_box(odd), min_size=n, max_size=n)), tracks=tracks,
        streams=streams, cls=cls, scores=scores,
        stream_type=pa.string() if stream_kind == "string" else pa.int64(),
        coord_type=draw(st.sampled_from([pa.float32(), pa.float64()])),
        layout=draw(st.sampled_from(LAYOUTS)), splits=(draw(st.integers(0, 30)), draw(st.integers(0, 30))),
        iou=draw(st.sampled_from([0.1, 0.3, 0.5, 0.7, 1.0])), max_gap=draw(st.integers(1, 3)),
        min_frames=draw(st.integers(2, 5)),
        identity=draw(st.sampled_from(["auto", "track", "iou"]) if tracks is not None else st.just("iou")))


def suite_of(case):
    kw = dict(iou=case["iou"], max_gap=case["max_gap"], identity=case["identity"])
    return tw.Suite([tw.boxes.flicker(**kw), tw.boxes.appear(min_frames=case["min_frames"], **kw)])


def table_of(case, **over):
    kw = {k: case[k] for k in ("tracks", "streams", "cls", "scores", "stream_type", "coord_type",
                               "layout", "splits")}
    kw.update(over)
    return table(case["frames"], case["boxes"], **kw)


@pytest.mark.slow
@PROPERTY
@given(case=cases())
def test_matches_reference(fast_backend, case):
    s = suite_of(case)
    got = check_like_reference(s, table_of(case), fast_backend)
    # interpolated boxes keep the coordinate type, so only the layout changes here
    plain = s.check(table_of(case, layout="plain"), backend="reference")
    assert_same_report(got, plain, context="layout")


@PROPERTY
@given(case=cases(), seed=st.integers(0, 2**32 - 1))
def test_track_identity_does_not_depend_on_row_order(case, seed):
    """With track ids, shuffling rows (so frames go back in time) finds the same gaps and
    short tracks, up to which of two boxes sharing a frame stands for it."""
    if case["tracks"] is None:
        return
    kw = dict(max_gap=case["max_gap"], identity="track")
    s = tw.Suite([tw.boxes.flicker(**kw), tw.boxes.appear(min_frames=case["min_frames"], **kw)])
    n = len(case["frames"])
    # one box per (stream, track, frame): then "which box" is never ambiguous
    seen, keep = set(), []
    for i in range(n):
        key = (None if case["streams"] is None else case["streams"][i], case["tracks"][i], case["frames"][i])
        if key not in seen:
            seen.add(key)
            keep.append(i)
    sub = {k: (None if case[k] is None else [case[k][i] for i in keep])
           for k in ("frames", "boxes", "tracks", "streams", "cls", "scores")}
    perm = np.random.default_rng(seed).permutation(len(keep)).tolist()
    shuffled = {k: (None if v is None else [v[i] for i in perm]) for k, v in sub.items()}

    def found(t, row_map=None):
        r = s.check(t, backend="cython")
        v = r.violations
        out = {}
        for a, row, ev, sev in zip(v["assertion"].to_pylist(), v["row"].to_pylist(),
                                   v["event"].to_pylist(), v["severity"].to_pylist()):
            out.setdefault((a, ev), [set(), sev])[0].add(row if row_map is None else row_map[row])
        return sorted((a, sorted(rows), sev) for (a, _), (rows, sev) in out.items())

    base = {k: case[k] for k in ("stream_type",)}
    want = found(table(sub["frames"], sub["boxes"], **{k: sub[k] for k in ("tracks", "streams", "cls", "scores")}, **base))
    got = found(table(shuffled["frames"], shuffled["boxes"],
                      **{k: shuffled[k] for k in ("tracks", "streams", "cls", "scores")}, **base), perm)
    assert got == want


@st.composite
def object_frames(draw):
    """Rows of objects in mostly increasing frames (sometimes repeated, now and then back),
    with nulls, around a base frame that may sit at or near either int64 limit."""
    n_obj = draw(st.integers(1, 6))
    n = draw(st.integers(0, 80))
    base = draw(st.sampled_from([0, -2**62, 2**62, -2**63, -2**63 + 1, -2**63 + 8, 2**63 - 400,
                                 2**63 - 1 - 4 * 80]))
    clock = [0] * n_obj
    obj, frame, valid = [], [], []
    for _ in range(n):
        k = draw(st.integers(0, n_obj - 1))
        clock[k] += draw(st.sampled_from([0, 1, 1, 2, 3, 4]))
        if draw(st.integers(0, 30)) == 0:
            clock[k] = max(clock[k] - 2, 0)
        obj.append(k)
        frame.append(base + clock[k])
        valid.append(0 if draw(st.integers(0, 9)) == 0 else 1)
    return np.array(obj, np.int64), np.array(frame, np.int64), np.array(valid, np.uint8), n_obj


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=object_frames(), parts=st.integers(1, 5), max_gap=st.integers(0, 3), nulls=st.booleans())
def test_gaps_cut_into_parts_matches_reference(monkeypatch, case, parts, max_gap, nulls):
    """The track-id gap kernel cut into ``parts`` row ranges (scanned in parallel, joined object
    by object) gives the reference's pairs in order of the end, or says the frames go back."""
    import reference
    from tripwire import _config
    from tripwire._kernels import _boxes_cy

    monkeypatch.setattr(_config, "TRACKS_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "TRACKS_PARTS", parts)
    obj, frame, valid, n_obj = case
    valid = valid if nulls else np.empty(0, np.uint8)
    start, end, in_order = _boxes_cy.gaps(obj + 3, 3, n_obj, valid, frame, max_gap)
    kept = [i for i in range(len(obj)) if not len(valid) or valid[i]]
    goes_back = any(frame[j] < frame[i] for a, i in enumerate(kept) for j in kept[a + 1:] if obj[i] == obj[j])
    assert in_order == (not goes_back)
    if in_order:
        ws, we, _ = reference.gaps(obj + 3, 3, n_obj, valid, frame, max_gap)
        assert (start.tolist(), end.tolist()) == (ws.tolist(), we.tolist())


def _gap_events_loop(score, valid, start, end):
    """Plain loop: events in order of (start, end); each flags its two rows, the smaller first;
    severity the mean of their present, non-NaN scores in double, as float32, at least 1e-6;
    1 when neither has one."""
    rows, events, sevs, pairs = [], [], [], []
    for j, (a, b) in enumerate(sorted(zip(start.tolist(), end.tolist()))):
        got = [float(score[r]) for r in (a, b) if len(score) and (not len(valid) or valid[r])
               and not np.isnan(score[r])]
        sev = max(np.float32(sum(got) / len(got)), np.float32(1e-6)) if got else np.float32(1)
        rows += [min(a, b), max(a, b)]
        events += [j, j]
        sevs += [sev, sev]
        pairs.append([a, b])
    return rows, events, np.array(sevs, np.float32), pairs


@settings(max_examples=200, deadline=None)
@given(scores=st.lists(st.sampled_from([0.0, 0.1, 0.35, 0.9, 1.0, -0.5, 2.5, NAN, INF]), max_size=12),
       nulls=st.booleans(), data=st.data())
def test_gap_events_matches_loop(scores, nulls, data):
    """flicker's events from gap pairs: ordered by start row (ties by end), rows ascending in
    an event, nulls and NaN scores ignored, no score at all gives 1, a negative mean is raised
    to 1e-6."""
    from tripwire._kernels import _boxes_cy

    score = np.array(scores, np.float32)
    valid = np.array(data.draw(st.lists(st.booleans(), min_size=len(score), max_size=len(score))),
                     np.uint8) if nulls else np.empty(0, np.uint8)
    rows = st.integers(0, max(len(score) - 1, 0))
    m = data.draw(st.integers(0, 6)) if len(score) else 0
    start = np.array([data.draw(rows) for _ in range(m)], np.int64)
    end = np.array([data.draw(rows) for _ in range(m)], np.int64)
    row, ev, sev, pairs = _boxes_cy.gap_events(score, valid, start, end)
    w_row, w_ev, w_sev, w_pairs = _gap_events_loop(score, valid, start, end)
    assert (row.tolist(), ev.tolist(), pairs.tolist()) == (w_row, w_ev, w_pairs)
    assert pairs.shape == (m, 2) and sev.dtype == np.float32
    np.testing.assert_array_equal(sev, w_sev)
    # no score column: every event gets 1
    _, _, ones, _ = _boxes_cy.gap_events(np.empty(0, np.float32), np.empty(0, np.uint8), start, end)
    np.testing.assert_array_equal(ones, np.ones(2 * m, np.float32))


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_gaps_at_the_int64_limits(monkeypatch, parts):
    """Frames at the int64 limits: INT64_MAX then INT64_MIN goes back (their wrapped difference
    is 1); objects starting at INT64_MIN (a natural blank frame) join across range cuts."""
    from tripwire import _config
    from tripwire._kernels import _boxes_cy

    monkeypatch.setattr(_config, "TRACKS_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "TRACKS_PARTS", parts)
    lo, hi, no = -2**63, 2**63 - 1, np.empty(0, np.uint8)
    obj = np.array([0, 1, 0, 1, 0, 1], np.int64)
    _, _, ok = _boxes_cy.gaps(obj, 0, 2, no, np.array([5, hi - 1, 6, hi, 7, lo], np.int64), 3)
    assert not ok
    start, end, ok = _boxes_cy.gaps(obj, 0, 2, no, np.array([5, lo, 6, lo + 1, 9, lo + 3], np.int64), 3)
    assert (start.tolist(), end.tolist(), ok) == ([2, 3], [4, 5], True)
    start, end, ok = _boxes_cy.gaps(obj, 0, 2, no, np.array([hi - 9, hi - 5, hi - 7, hi - 2, hi - 6, hi], np.int64), 3)
    assert (start.tolist(), end.tolist(), ok) == ([0, 1, 3], [2, 3, 5], True)


@pytest.mark.parametrize("parts", [1, 2, 5])
def test_gaps_cut_into_parts_on_no_rows_or_fewer_rows_than_parts(monkeypatch, parts):
    from tripwire import _config
    from tripwire._kernels import _boxes_cy

    monkeypatch.setattr(_config, "TRACKS_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "TRACKS_PARTS", parts)
    none = np.empty(0, np.int64)
    start, end, ok = _boxes_cy.gaps(none, 0, 4, np.empty(0, np.uint8), none, 2)
    assert (start.tolist(), end.tolist(), ok) == ([], [], True)
    start, end, ok = _boxes_cy.gaps(np.array([1, 1], np.int64), 0, 4, np.empty(0, np.uint8),
                                    np.array([0, 2], np.int64), 2)
    assert (start.tolist(), end.tolist(), ok) == ([0], [1], True)


@PROPERTY
@given(case=cases(), parts=st.integers(2, 4))
def test_track_identity_cut_into_parts_matches_reference(monkeypatch, case, parts):
    """flicker and appear by track id, their kernels cut into row ranges: the reference's report."""
    from tripwire import _config

    if case["tracks"] is None:
        return
    monkeypatch.setattr(_config, "TRACKS_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "TRACKS_PARTS", parts)
    case = dict(case, identity="track")
    check_like_reference(suite_of(case), table_of(case), "cython")


# ----------------------------------------------------------------------------------------------
# the reference kernels themselves
# ----------------------------------------------------------------------------------------------
def test_reference_kernels_by_hand():
    import reference
    from tripwire._kernels import _boxes_cy

    f32 = lambda v: np.array(v, np.float32)  # noqa: E731
    i64 = lambda v: np.array(v, np.int64)  # noqa: E731
    # frames 0, 1, 3: one box each at x = 0, 100, 1 (the middle one is elsewhere)
    args = (f32([0, 100, 1]), f32([0, 0, 0]), f32([10, 110, 11]), f32([10, 10, 10]), i64([0, 0, 0]),
            i64([0, 1, 2, 3]), i64([0, 1, 3]), i64([0, 0, 0]))
    for k in (reference, _boxes_cy):
        obj, start, end = k.associate(*args, 0.5, 2)[:3]
        assert obj.tolist() == [0, 1, 0] and start.tolist() == [0] and end.tolist() == [2]
        obj, start, end = k.associate(*args, 0.5, 1)[:3]  # frame 3 is 2 frames after 0: too late
        assert obj.tolist() == [0, 1, 2] and start.tolist() == [] and end.tolist() == []
        start, end, ok = k.gaps(i64([5, 5, 6, 5]), 5, 2, np.empty(0, np.uint8), i64([0, 1, 1, 4]), 2)
        assert (start.tolist(), end.tolist(), ok) == ([1], [3], True)
        pos, ev, sev, anchor = k.lifetimes(i64([0, 0, 1, 2, 2]), 0, 3, np.empty(0, np.uint8),
                                           i64([0, 9, 4, 3, 5]), np.empty(0, np.uint8),
                                           np.empty(0, np.int64), 0, 1, f32([1, 1, 0.25, 0.5, NAN]),
                                           np.empty(0, np.uint8), 3)
        assert pos.tolist() == [2] and sev.tolist() == [0.25] and anchor.tolist() == [2]
    start, end, ok = _boxes_cy.gaps(i64([5, 5]), 5, 1, np.empty(0, np.uint8), i64([4, 0]), 2)
    assert not ok  # frames go back: the caller sorts


# ----------------------------------------------------------------------------------------------
# resumable association: seeds in, active state out (what tw.Monitor carries between batches)
# ----------------------------------------------------------------------------------------------
def _kernels(name):
    from tripwire import _dispatch

    return _dispatch.kernels("boxes", name)


@st.composite
def association_inputs(draw):
    """Frames of up to three streams in (stream, frame) order, 0-3 boxes each (a few broken),
    two classes (int32 or int64 codes: the kernel reads either width); and cut points for
    chained calls."""
    n_streams = draw(st.integers(1, 3))
    xs = st.sampled_from([0.0, 0.0, 1.0, 2.0, 5.0, 40.0])
    x1, x2, cls, offsets, g_frame, g_stream = [], [], [], [0], [], []
    for s in range(n_streams):
        for f in sorted(draw(st.sets(st.integers(0, 14), max_size=8))):
            for _ in range(draw(st.integers(0, 3))):
                x = draw(xs)
                x1.append(NAN if draw(st.integers(0, 15)) == 0 else x)
                x2.append(x + draw(st.sampled_from([10.0, 10.0, 12.0, 0.0])))
                cls.append(draw(st.sampled_from([0, 0, 1])))
            offsets.append(len(x1))
            g_frame.append(f)
            g_stream.append(s)
    n = len(x1)
    return dict(x1=np.array(x1, np.float32), y1=np.zeros(n, np.float32), x2=np.array(x2, np.float32),
                y2=np.full(n, 10.0, np.float32), cls=np.array(cls, draw(st.sampled_from([np.int32, np.int64]))),
                offsets=np.array(offsets, np.int64), frame=np.array(g_frame, np.int64),
                stream=np.array(g_stream, np.int64), n_streams=n_streams,
                iou=draw(st.sampled_from([0.1, 0.3, 0.5, 1.0])), max_gap=draw(st.integers(0, 3)),
                cuts=sorted(draw(st.lists(st.integers(0, len(g_frame)), max_size=4))),
                time_cuts=sorted(draw(st.lists(st.integers(0, 15), max_size=4))))


def _one_call(k, d):
    return k.associate(d["x1"], d["y1"], d["x2"], d["y2"], d["cls"], d["offsets"], d["frame"], d["stream"],
                       d["iou"], d["max_gap"])


def _chained(k, d, calls):
    """Association run as one kernel call per list of frame groups (each in (stream, frame)
    order), each call seeded with the previous call's state; positions mapped back to the
    whole input's. Returns what one call returns, in the whole input's positions."""
    n = len(d["x1"])
    obj = np.full(n, -1, np.int64)
    starts, ends = [], []
    state = [np.empty(0, np.int64)] * 4  # stream, obj, global position, frame
    next_obj = 0
    for groups in calls:
        pos = np.concatenate([np.arange(d["offsets"][g], d["offsets"][g + 1]) for g in groups]
                             + [np.empty(0, np.int64)]).astype(np.int64)
        sizes = [d["offsets"][g + 1] - d["offsets"][g] for g in groups]
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        s_stream, s_obj, s_gpos, s_frame = state
        seed_offsets = np.concatenate(([0], np.cumsum(np.bincount(s_stream, minlength=d["n_streams"]))))
        seed_offsets = seed_offsets.astype(np.int64)
        at = np.concatenate((pos, s_gpos)).astype(np.int64)  # call position -> input position
        cols = [np.ascontiguousarray(d[c][at]) for c in ("x1", "y1", "x2", "y2", "cls")]
        groups = np.array(groups, np.int64)
        out = k.associate(*cols, offsets, d["frame"][groups] if len(groups) else np.empty(0, np.int64),
                          d["stream"][groups] if len(groups) else np.empty(0, np.int64), d["iou"], d["max_gap"],
                          seed_offsets, np.arange(len(pos), len(at), dtype=np.int64), s_obj, s_frame, next_obj)
        o, gs, ge, st_stream, st_obj, st_pos, st_frame, next_obj = out
        assert (o[len(pos):] == s_obj).all()  # a seed's position carries its object
        obj[pos] = o[:len(pos)]
        starts.append(at[gs])
        ends.append(at[ge])
        state = [st_stream, st_obj, at[st_pos], st_frame]
    cat = lambda parts: np.concatenate(parts + [np.empty(0, np.int64)]).astype(np.int64)  # noqa: E731
    return (obj, cat(starts), cat(ends), *state, next_obj)


def _same(got, want):
    assert len(got) == len(want) == 8
    for i, (a, b) in enumerate(zip(got, want)):
        if i == 7:
            assert int(a) == int(b), i
        else:
            assert np.asarray(a).dtype == np.int64 and np.asarray(a).tolist() == np.asarray(b).tolist(), i


def _relabelled(result):
    """Object ids replaced by each object's first position (ids depend on the order of calls)."""
    obj, gs, ge, st_stream, st_obj, st_pos, st_frame, _ = result
    first = {}
    for p, o in enumerate(obj.tolist()):
        if o >= 0:
            first.setdefault(o, p)
    gaps = sorted(zip(gs.tolist(), ge.tolist()))
    return ([first.get(o, -1) if o >= 0 else -1 for o in obj.tolist()], gaps,
            list(zip(st_stream.tolist(), [first[o] for o in st_obj.tolist()], st_pos.tolist(), st_frame.tolist())))


@PROPERTY
@given(d=association_inputs())
def test_associate_matches_reference_with_state(fast_backend, d):
    import reference

    _same(_one_call(_kernels(fast_backend), d), _one_call(reference, d))


@PROPERTY
@given(d=association_inputs())
def test_associate_resumes_exactly_from_its_state(backend, d):
    """The key property of the streaming form: association over consecutive ranges of frames,
    each call seeded with the previous call's state, equals one call over all of them."""
    k = _kernels(backend)
    whole = _one_call(k, d)
    n_groups = len(d["frame"])
    # cut the (stream, frame) order: same calls order, so even the ids agree
    bounds = [0] + d["cuts"] + [n_groups]
    _same(_chained(k, d, [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]), whole)
    # cut by time, as a monitor sees it: every stream advances in each call (some have no
    # frames in a call: their state passes through); ids are numbered in another order
    edges = [-1] + d["time_cuts"] + [99]
    calls = [[g for g in range(n_groups) if lo < d["frame"][g] <= hi] for lo, hi in zip(edges[:-1], edges[1:])]
    assert _relabelled(_chained(k, d, calls)) == _relabelled(whole)


@st.composite
def long_association_inputs(draw):
    """Long runs of nearly every frame with boxes at a few places: objects live, miss frames
    and expire (gaps on and around ``max_gap``, expiring while new ones start in one frame),
    so that the kernel's skipped and done expiry passes both occur many times."""
    n_streams = draw(st.integers(1, 2))
    xs = st.sampled_from([0.0, 3.0, 30.0, 60.0])
    x1, cls, offsets, g_frame, g_stream = [], [], [0], [], []
    for s in range(n_streams):
        for f in sorted(draw(st.sets(st.integers(0, 40), min_size=10, max_size=35))):
            for x in draw(st.lists(xs, max_size=4)):
                x1.append(NAN if draw(st.integers(0, 30)) == 0 else x)
                cls.append(draw(st.sampled_from([0, 0, 0, 1])))
            offsets.append(len(x1))
            g_frame.append(f)
            g_stream.append(s)
    n = len(x1)
    x1 = np.array(x1, np.float32)
    return dict(x1=x1, y1=np.zeros(n, np.float32), x2=x1 + np.float32(10), y2=np.full(n, 10.0, np.float32),
                cls=np.array(cls, draw(st.sampled_from([np.int32, np.int64]))), offsets=np.array(offsets, np.int64),
                frame=np.array(g_frame, np.int64),
                stream=np.array(g_stream, np.int64), n_streams=n_streams, iou=draw(st.sampled_from([0.3, 0.5])),
                max_gap=draw(st.integers(0, 4)), cuts=sorted(draw(st.lists(st.integers(0, len(g_frame)), max_size=3))))


@PROPERTY
@given(d=long_association_inputs())
def test_associate_long_runs_match_reference_and_resume(backend, d):
    """Expiry is decided per frame whatever the kernel skips: long runs against the reference,
    in one call and resumed from the state at cut points."""
    import reference

    k = _kernels(backend)
    whole = _one_call(k, d)
    _same(whole, _one_call(reference, d))
    bounds = [0] + d["cuts"] + [len(d["frame"])]
    _same(_chained(k, d, [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]), whole)


def test_associate_seeds_by_hand(backend):
    k = _kernels(backend)
    f32 = lambda v: np.array(v, np.float32)  # noqa: E731
    i64 = lambda v: np.array(v, np.int64)  # noqa: E731
    # positions 0-1: frame 5 of stream 1; positions 2-3: seeds of stream 1 (objects 7 then 4,
    # both last seen at frame 3 on the same box), position 4: a seed of stream 0 (object 9)
    x = f32([0, 50, 0, 0, 0])
    out = k.associate(x, f32([0] * 5), x + 10, f32([10] * 5), i64([0] * 5), i64([0, 2]), i64([5]), i64([1]),
                      0.5, 2, i64([0, 1, 3]), i64([4, 2, 3]), i64([9, 7, 4]), i64([1, 3, 3]), 11)
    obj, gs, ge, st_stream, st_obj, st_pos, st_frame, next_obj = out
    # equal IoU, equal last frame: the older object (listed first) takes the box; the far box
    # starts object 11; stream 0 had no frames here: its seed passes through
    assert obj.tolist() == [7, 11, 7, 4, 9] and gs.tolist() == [2] and ge.tolist() == [0]
    assert list(zip(st_stream.tolist(), st_obj.tolist(), st_pos.tolist(), st_frame.tolist())) == [
        (0, 9, 4, 1), (1, 7, 0, 5), (1, 4, 3, 3), (1, 11, 1, 5)]
    assert next_obj == 12
    # max_gap 0: the seeds at frame 3 are too old for frame 5, and are forgotten
    out = k.associate(x, f32([0] * 5), x + 10, f32([10] * 5), i64([0] * 5), i64([0, 2]), i64([5]), i64([1]),
                      0.5, 0, i64([0, 1, 3]), i64([4, 2, 3]), i64([9, 7, 4]), i64([1, 3, 3]), 11)
    assert out[0].tolist() == [11, 12, 7, 4, 9] and out[4].tolist() == [9, 11, 12] and out[7] == 13
    with pytest.raises(ValueError):  # a seed inside the grouped positions
        k.associate(x, f32([0] * 5), x + 10, f32([10] * 5), i64([0] * 5), i64([0, 2]), i64([5]), i64([1]),
                    0.5, 2, i64([0, 1]), i64([1]), i64([9]), i64([1]), 11)


# ----------------------------------------------------------------------------------------------
# flicker by hand
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("identity", ["track", "iou"])
def test_flicker_gap_interpolated(backend, identity):
    t = table([0, 1, 4, 5], [(0.0, 0.0, 10.0, 10.0), (1.0, 0.0, 11.0, 10.0), (4.0, 3.0, 14.0, 13.0),
                             (5.0, 0.0, 15.0, 10.0)],
              tracks=[7, 7, 7, 7], scores=[0.9, 0.4, 0.8, 0.2])
    r = tw.Suite([tw.boxes.flicker(max_gap=2, identity=identity)]).check(t, backend=backend)
    assert events(r) == [(1, 2)]
    assert severities(r) == {0: pytest.approx(0.6)}
    added = r.corrections()
    assert added["action"].to_pylist() == ["add", "add"] and added["row"].null_count == 2
    assert added.select(["frame", "track", "x1", "y1", "x2", "y2"]).to_pylist() == [
        {"frame": 2, "track": 7, "x1": 2.0, "y1": 1.0, "x2": 12.0, "y2": 11.0},
        {"frame": 3, "track": 7, "x1": 3.0, "y1": 2.0, "x2": 13.0, "y2": 12.0}]
    assert added["score"].to_pylist() == pytest.approx([0.4 + 0.4 / 3, 0.4 + 0.8 / 3])
    fixed = r.apply()
    assert fixed["frame"].to_pylist() == [0, 1, 4, 5, 2, 3]
    assert tw.Suite([tw.boxes.flicker(max_gap=2, identity=identity)]).check(fixed, backend=backend).n_events == 0


@pytest.mark.parametrize("identity", ["track", "iou"])
def test_gap_longer_than_max_gap_is_not_flicker(backend, identity):
    t = table([0, 4, 5], [0.0, 0.0, 0.0], tracks=[1, 1, 1])
    assert tw.Suite([tw.boxes.flicker(max_gap=2, identity=identity)]).check(t, backend=backend).n_events == 0
    assert events(tw.Suite([tw.boxes.flicker(max_gap=3, identity=identity)]).check(t, backend=backend)) == [(0, 1)]


def test_track_identity_ignores_geometry_iou_ignores_ids(backend):
    # track 1 jumps across the image (still track 1); track 2 takes over track 1's place
    t = table([0, 2, 2], [0.0, 500.0, 0.0], tracks=[1, 1, 2])
    by_track = tw.Suite([tw.boxes.flicker(max_gap=2, identity="track")]).check(t, backend=backend)
    by_iou = tw.Suite([tw.boxes.flicker(max_gap=2, identity="iou")]).check(t, backend=backend)
    assert events(by_track) == [(0, 1)] and events(by_iou) == [(0, 2)]
    # auto: the table has track ids
    assert events(tw.Suite([tw.boxes.flicker(max_gap=2)]).check(t, backend=backend)) == [(0, 1)]
    assert events(tw.Suite([tw.boxes.flicker(max_gap=2)]).check(t.drop_columns(["track"]), backend=backend)) == [(0, 2)]


def test_iou_identity_sees_a_fragmentation_and_stitches_it(backend):
    # a tracker loses the object after frame 1 and starts id 9 at the same place in frame 3;
    # id 9 then meets a real gap of its own, and a third id continues after another gap
    frames = [0, 1, 3, 4, 6, 7, 8]
    t = table(frames, [0.0, 1.0, 3.0, 4.0, 6.0, 7.0, 8.0], tracks=[5, 5, 9, 9, 9, 11, 11])
    s = tw.Suite([tw.boxes.flicker(max_gap=2, identity="iou")])
    r = s.check(t, backend=backend)
    assert events(r) == [(1, 2), (3, 4)]
    corr = r.corrections()
    adds = corr.filter(pc.equal(corr["action"], "add"))
    assert adds.select(["frame", "track"]).to_pylist() == [{"frame": 2, "track": 5}, {"frame": 5, "track": 5}]
    relabels = corr.filter(pc.equal(corr["action"], "relabel"))
    assert relabels["row"].to_pylist() == [2, 3, 4] and set(relabels["track"].to_pylist()) == {5}
    fixed = r.apply()
    assert fixed["track"].to_pylist() == [5, 5, 5, 5, 5, 11, 11, 5, 5]
    # identity "track" sees only the real gap inside id 9
    assert events(tw.Suite([tw.boxes.flicker(max_gap=2, identity="track")]).check(t, backend=backend)) == [(3, 4)]


def test_stitch_chain_resolves_to_the_first_id(backend):
    t = table([0, 2, 4], [0.0, 0.0, 0.0], tracks=[1, 2, 3])
    r = tw.Suite([tw.boxes.flicker(max_gap=1, identity="iou")]).check(t, backend=backend)
    assert events(r) == [(0, 1), (1, 2)]
    assert r.apply()["track"].to_pylist() == [1, 1, 1, 1, 1]


def test_greedy_matching_highest_iou_first(backend):
    # frame 0: A at x=0, B at x=4; frame 2: one box at x=3 overlaps B more (IoU 0.82) than A
    t = table([0, 0, 2], [0.0, 4.0, 3.0], cls=["p", "p", "p"])
    r = tw.Suite([tw.boxes.flicker(max_gap=1, iou=0.3, identity="iou")]).check(t, backend=backend)
    assert events(r) == [(1, 2)]
    # same place, other class: never the same object
    t2 = table([0, 2], [0.0, 0.0], cls=["person", "car"])
    assert tw.Suite([tw.boxes.flicker(max_gap=1, identity="iou")]).check(t2, backend=backend).n_events == 0


def test_identical_boxes_pair_one_to_one(backend):
    # two identical boxes in frames 0 and 2: two objects, two gaps, each box used once
    t = table([0, 0, 2, 2], [0.0, 0.0, 0.0, 0.0])
    r = tw.Suite([tw.boxes.flicker(max_gap=1, identity="iou")]).check(t, backend=backend)
    assert events(r) == [(0, 2), (1, 3)]


@pytest.mark.parametrize("bad", [NAN, INF, -INF, None])
def test_non_finite_boxes_never_link(backend, bad):
    boxes = [(0.0, 0.0, 10.0, 10.0), (bad, 0.0, 10.0, 10.0), (0.0, 0.0, 10.0, 10.0), (0.0, 0.0, 10.0, 10.0)]
    t = table([0, 1, 2, 3], boxes)
    r = tw.Suite([tw.boxes.flicker(max_gap=1, identity="iou"),
                  tw.boxes.appear(min_frames=2, identity="iou")]).check(t, backend=backend)
    # the broken box at frame 1 is neither an object of its own nor the object's box: a gap
    assert events(r, "boxes.flicker") == [(0, 2)] and events(r, "boxes.appear") == []
    assert tw.Suite([tw.boxes.valid()]).check(t, backend=backend).violations["row"].to_pylist() == [1]


def test_zero_area_boxes_never_link(backend):
    t = table([0, 2], [(0.0, 0.0, 0.0, 10.0), (0.0, 0.0, 0.0, 10.0)])
    assert tw.Suite([tw.boxes.flicker(max_gap=1, identity="iou")]).check(t, backend=backend).n_events == 0


@pytest.mark.parametrize("identity", ["track", "iou"])
def test_tracks_reused_across_streams(backend, identity):
    # the same track id and place in two streams: frames 0 (cam a) and 2 (cam b) are no gap
    t = table([0, 2, 0, 1, 2], [0.0, 0.0, 0.0, 0.0, 0.0], tracks=[1, 1, 1, 1, 1],
              streams=["a", "b", "c", "c", "c"], stream_type=pa.string())
    r = tw.Suite([tw.boxes.flicker(max_gap=2, identity=identity)]).check(t, backend=backend)
    assert r.n_events == 0
    t2 = table([0, 2, 1], [0.0, 0.0, 0.0], tracks=[1, 1, 1], streams=["a", "a", "b"], stream_type=pa.string())
    r2 = tw.Suite([tw.boxes.flicker(max_gap=2, identity=identity)]).check(t2, backend=backend)
    assert events(r2) == [(0, 1)] and r2.violations["stream"].to_pylist() == ["a", "a"]


def test_unsorted_frames_same_as_sorted(backend):
    # track 1 in frames 5, 0, 3 (rows 0-2); track 2 in frames 1, 7, 2 (gap of 4: too long)
    t = table([5, 0, 3, 1, 7, 2], [0.0, 0.0, 0.0, 50.0, 50.0, 50.0], tracks=[1, 1, 1, 2, 2, 2])
    for identity in ("track", "iou"):
        r = tw.Suite([tw.boxes.flicker(max_gap=3, identity=identity)]).check(t, backend=backend)
        assert events(r) == [(1, 2), (0, 2)], identity
        added = r.corrections().select(["frame", "track"]).to_pylist()
        assert added == [{"frame": 1, "track": 1}, {"frame": 2, "track": 1}, {"frame": 4, "track": 1}], identity


def test_empty_and_single_box(backend):
    s = tw.Suite([tw.boxes.flicker(), tw.boxes.appear(), tw.boxes.flicker(identity="iou", name="f_iou"),
                  tw.boxes.appear(identity="iou", name="a_iou")])
    empty = table([], [], tracks=[])
    r = s.check(empty, backend=backend)
    assert len(r) == 0 and r.corrections().num_rows == 0 and r.apply().num_rows == 0
    one = table([3], [0.0], tracks=[1])
    assert len(s.check(one, backend=backend)) == 0


def test_null_frames_tracks_and_streams_are_not_checked(backend):
    t = pa.table({"frame": pa.array([0, None, 2, 0, 2], pa.int64()), "track": pa.array([1, 1, 1, None, None], pa.int64()),
                  "x1": pa.array([0.0] * 5, pa.float32()), "y1": pa.array([0.0] * 5, pa.float32()),
                  "x2": pa.array([10.0] * 5, pa.float32()), "y2": pa.array([10.0] * 5, pa.float32())})
    r = tw.Suite([tw.boxes.flicker(max_gap=1, identity="track")]).check(t, backend=backend)
    assert events(r) == [(0, 2)]


# ----------------------------------------------------------------------------------------------
# appear by hand
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("identity", ["track", "iou"])
def test_appear_short_lived_object_removed(backend, identity):
    # a long object at x=0 over frames 0..9; a short one at x=200 in frames 4..5
    frames = list(range(10)) + [4, 5]
    t = table(frames, [0.0] * 10 + [200.0, 200.0], tracks=[1] * 10 + [2, 2],
              scores=[0.9] * 10 + [0.2, 0.4])
    r = tw.Suite([tw.boxes.appear(min_frames=3, identity=identity)]).check(t, backend=backend)
    assert events(r) == [(10, 11)] and severities(r) == {0: pytest.approx(0.3)}
    assert r.corrections()["action"].to_pylist() == ["remove", "remove"]
    assert r.apply().num_rows == 10
    assert tw.Suite([tw.boxes.appear(min_frames=2, identity=identity)]).check(t, backend=backend).n_events == 0


@pytest.mark.parametrize("identity", ["track", "iou"])
def test_appear_objects_cut_by_the_data_are_not_judged(backend, identity):
    # one-frame objects at the first and the last frame, and one in the middle
    t = table([0, 0, 1, 2, 2, 3, 4, 4], [0.0, 100.0, 0.0, 0.0, 200.0, 0.0, 0.0, 300.0], tracks=[1, 2, 1, 1, 3, 1, 1, 4])
    r = tw.Suite([tw.boxes.appear(min_frames=2, identity=identity)]).check(t, backend=backend)
    assert events(r) == [(4,)]


def test_appear_gaps_count_in_the_lifetime(backend):
    # frames 3 and 6 of one object: it lives 4 frames (gap included)
    t = table([0, 3, 6, 9], [100.0, 0.0, 0.0, 100.0], tracks=[1, 2, 2, 3])
    assert tw.Suite([tw.boxes.appear(min_frames=4, identity="track")]).check(t, backend=backend).n_events == 0
    assert events(tw.Suite([tw.boxes.appear(min_frames=5, identity="track")]).check(t, backend=backend)) == [(1, 2)]
    # by IoU, a 2-frame gap is bridged only with max_gap >= 2
    assert events(tw.Suite([tw.boxes.appear(min_frames=2, max_gap=2, identity="iou")]).check(t, backend=backend)) == []
    assert events(tw.Suite([tw.boxes.appear(min_frames=2, max_gap=1, identity="iou")]).check(t, backend=backend)) == [(1,), (2,)]


def test_appear_stream_extent_is_per_stream(backend):
    # cam b ends at frame 3: its one-frame track at frame 3 is cut, not short
    t = table([0, 5, 0, 3, 2], [0.0, 0.0, 0.0, 50.0, 0.0], tracks=[1, 1, 1, 2, 3], streams=["a", "a", "b", "b", "a"],
              stream_type=pa.string())
    r = tw.Suite([tw.boxes.appear(min_frames=2, identity="track")]).check(t, backend=backend)
    assert events(r) == [(4,)] and r.violations["stream"].to_pylist() == ["a"]


# ----------------------------------------------------------------------------------------------
# parameters and input errors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: tw.boxes.flicker(max_gap=0), lambda: tw.boxes.flicker(max_gap=1.5),
    lambda: tw.boxes.flicker(iou=0), lambda: tw.boxes.flicker(identity="id"),
    lambda: tw.boxes.appear(min_frames=1), lambda: tw.boxes.appear(max_gap=-1),
    lambda: tw.boxes.appear(identity=None), lambda: tw.boxes.appear(min_frames=True)])
def test_bad_parameters(make):
    with pytest.raises(tw.TripwireError) as e:
        make()
    assert "pass" in str(e.value)


def test_timestamp_frames_are_refused(backend):
    t = table([0, 1], [0.0, 0.0], tracks=[1, 1])
    t = t.set_column(0, "frame", pc.cast(t["frame"], pa.timestamp("ms")))
    for a in (tw.boxes.flicker(), tw.boxes.appear(), tw.boxes.flicker(identity="iou")):
        with pytest.raises(tw.TripwireError, match="integer frame numbers"):
            tw.Suite([a]).check(t, backend=backend)


def test_missing_track_column_named(backend):
    t = table([0, 1], [0.0, 0.0])
    with pytest.raises(tw.TripwireError, match="track"):
        tw.Suite([tw.boxes.flicker(identity="track")]).check(t, backend=backend)


def test_registered_and_toml():
    assert {"boxes.flicker", "boxes.appear"} <= set(tw.kinds())
    s = tw.Suite.from_toml('[[assertion]]\nkind = "boxes.flicker"\nidentity = "iou"\nmax_gap = 5\n'
                           '[[assertion]]\nkind = "boxes.appear"\nmin_frames = 4\n')
    assert s.assertions[0].params() == {"iou": 0.3, "max_gap": 5, "identity": "iou"}
    assert s.assertions[1].params() == {"min_frames": 4, "iou": 0.3, "max_gap": 3, "identity": "auto"}


# ----------------------------------------------------------------------------------------------
# real data: TUD-Campus tracker output against its ground truth
# ----------------------------------------------------------------------------------------------
TUD_FLICKER = dict(identity="iou", iou=0.1, max_gap=10, columns=tw.Boxes(track="id"))


def _tud():
    return pq.read_table(os.path.join(TUD, "tracker.parquet")), pq.read_table(os.path.join(TUD, "gt.parquet"))


def _best_gt(gt, frame, box):
    """(gt id, IoU) of the ground-truth box in ``frame`` overlapping ``box`` most."""
    g = gt.filter(pc.equal(gt["frame"], frame)).to_pylist()
    def iou(a, b):
        ix = max(0.0, min(a["x2"], b["x2"]) - max(a["x1"], b["x1"]))
        iy = max(0.0, min(a["y2"], b["y2"]) - max(a["y1"], b["y1"]))
        inter = ix * iy
        area = lambda r: (r["x2"] - r["x1"]) * (r["y2"] - r["y1"])  # noqa: E731
        return inter / (area(a) + area(b) - inter)
    best = max(g, key=lambda r: iou(r, box))
    return best["id"], iou(best, box)


def test_tud_campus_flicker_events_checked_against_ground_truth(backend):
    """Checked by hand against gt.txt: both events are tracks lost while two people cross.

    Track 3 (ground-truth person 3) ends at frame 13 and track 11 (person 5) starts at frame
    24; track 7 (person 4) ends at frame 27 and track 8 (person 3) starts at frame 33. The
    boxes interpolated across each gap lie on real people the tracker missed (persons 3 and 5,
    then 4 and 3), so adding them removes 15 misses; the identity joined across the gap is two
    people, which an IoU link across a crossing cannot tell apart.
    """
    tracker, gt = _tud()
    r = tw.Suite([tw.boxes.flicker(**TUD_FLICKER)]).check(tracker, backend=backend)
    rows = tracker.to_pylist()
    found = [(rows[a]["id"], rows[a]["frame"], rows[b]["id"], rows[b]["frame"]) for a, b in events(r)]
    assert found == [(3, 13, 11, 24), (7, 27, 8, 33)]
    people = [(_best_gt(gt, rows[a]["frame"], rows[a])[0], _best_gt(gt, rows[b]["frame"], rows[b])[0])
              for a, b in events(r)]
    assert people == [(3, 5), (4, 3)]
    added = r.corrections().filter(pc.equal(r.corrections()["action"], "add")).to_pylist()
    assert len(added) == 15
    for box in added:
        gid, iou = _best_gt(gt, box["frame"], box)
        assert iou > 0.5, box  # a real person...
        person = gt.filter(pc.and_(pc.equal(gt["frame"], box["frame"]), pc.equal(gt["id"], gid))).to_pylist()[0]
        in_frame = tracker.filter(pc.equal(tracker["frame"], box["frame"])).to_pylist()
        # ... whom no tracker box covers in that frame (a miss)
        assert all(_best_gt(gt, box["frame"], h)[0] != gid or _best_gt(gt, box["frame"], h)[1] < 0.5
                   for h in in_frame), (box, person)


def test_tud_campus_mota_and_idf1_improve_after_apply():
    mm = pytest.importorskip("motmetrics")
    if not hasattr(np, "asfarray"):  # motmetrics 1.4.0 calls np.asfarray, removed in NumPy 2
        np.asfarray = lambda a, dtype=float: np.asarray(a, dtype=dtype)
    tracker, gt = _tud()

    def metrics(t):
        acc = mm.MOTAccumulator(auto_id=False)
        g, h = gt.to_pandas(), t.to_pandas()
        for f in sorted(set(g.frame) | set(h.frame)):
            gf, hf = g[g.frame == f], h[h.frame == f]
            d = mm.distances.iou_matrix(np.c_[gf.x1, gf.y1, gf.x2 - gf.x1, gf.y2 - gf.y1],
                                        np.c_[hf.x1, hf.y1, hf.x2 - hf.x1, hf.y2 - hf.y1], max_iou=0.5)
            acc.update(gf.id.values, hf.id.values, d, frameid=int(f))
        m = mm.metrics.create().compute(acc, metrics=["mota", "idf1", "num_misses", "num_switches"], name="t")
        return m.iloc[0].to_dict()

    before = metrics(tracker)
    after = metrics(tw.Suite([tw.boxes.flicker(**TUD_FLICKER)]).check(tracker).apply())
    assert before["mota"] == pytest.approx(0.5265, abs=1e-4) and before["idf1"] == pytest.approx(0.5577, abs=1e-4)
    assert after["mota"] == pytest.approx(0.5710, abs=1e-4) and after["idf1"] == pytest.approx(0.5738, abs=1e-4)
    assert after["num_misses"] == before["num_misses"] - 15 and after["num_switches"] < before["num_switches"]


@pytest.mark.families("boxes", "rows")  # with boxes.class_consistency (rows.consistent)
def test_many_streams_and_tracks_take_the_sparse_key_path(backend):
    """streams x tracks beyond direct addressing: the (stream, track) key is re-encoded; results
    equal those of one explicit combined track column."""
    rng = np.random.default_rng(5)
    n = 2000
    streams = rng.integers(0, 400, n)
    tracks = rng.integers(0, 400, n)  # 400 x 400 slots > 65,536 and > 4 per row
    frames = rng.integers(0, 12, n)
    boxes = [float(x) for x in rng.integers(0, 3, n) * 50]
    t = table(frames.tolist(), boxes, tracks=tracks.tolist(), streams=streams.tolist(),
              cls=[["car", "bus"][i] for i in rng.integers(0, 2, n)])
    keyed = t.drop_columns(["stream", "track"]).append_column("track", pa.array(streams * 1000 + tracks))
    for a in (tw.boxes.flicker(max_gap=3, identity="track"), tw.boxes.class_consistency()):
        got = tw.Suite([a]).check(t, backend=backend).violations
        want = tw.Suite([a]).check(keyed, backend=backend).violations
        assert got["row"].to_pylist() == want["row"].to_pylist(), a.kind
        assert got["event"].to_pylist() == want["event"].to_pylist(), a.kind
    # appear judges "cut by the data" per stream, so the stream must stay: against the reference
    check_like_reference(tw.Suite([tw.boxes.appear(min_frames=3, identity="track")]), t, backend)


# ---- associate's parallel ranges: speculated from an empty state, stitched exactly ----------
@pytest.fixture(params=[(2, 64), (3, 1), (5, 1), (4, 0)], ids=["2-ranges", "3-ranges", "5-ranges", "4-redone"])
def parallel_ranges(request, monkeypatch):
    """The Cython kernel with its frames cut into parallel ranges from the first box: (ranges,
    frames compared before a range is redone whole; 0: always redone)."""
    from tripwire import _config

    parts, converge = request.param
    monkeypatch.setattr(_config, "ASSOC_PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(_config, "ASSOC_PARTS", parts)
    monkeypatch.setattr(_config, "ASSOC_CONVERGE_GROUPS", converge)
    return _kernels("cython")


@PROPERTY
@given(d=association_inputs())
def test_parallel_associate_matches_reference(parallel_ranges, d):
    """Ranges that begin inside a stream or at a new one, states that join at once, late (ties
    decided by slot order) or never, seeds refused: the result is the sequential one."""
    import reference

    _same(_one_call(parallel_ranges, d), _one_call(reference, d))


@PROPERTY
@given(d=long_association_inputs())
def test_parallel_associate_long_runs_match_reference(parallel_ranges, d):
    import reference

    _same(_one_call(parallel_ranges, d), _one_call(reference, d))


def test_parallel_associate_equals_sequential_on_tracker_output(monkeypatch):
    """Realistic tracks (the bench's generator: 30 objects a frame, flicker, spurious boxes):
    two ranges joined a few frames after the cut give the sequential result bit for bit."""
    from tripwire import _config, _frames, boxes
    from tripwire.bench_boxes_baselines import track_table

    t = track_table(60_000, 30, seed=5)
    cols = boxes.Boxes()
    groups = _frames.group_frames(t, cols.frame, cols.stream)
    args = (*boxes._association_boxes(t, cols), groups.offsets, groups.frame, groups.stream, 0.3, 3)
    k = _kernels("cython")
    monkeypatch.setattr(_config, "ASSOC_PARALLEL_MIN_ROWS", 1 << 62)
    want = k.associate(*args)
    monkeypatch.setattr(_config, "ASSOC_PARALLEL_MIN_ROWS", 0)
    for parts in (2, 3, 8):
        monkeypatch.setattr(_config, "ASSOC_PARTS", parts)
        _same(k.associate(*args), want)


def _strip_frames(frames):
    """``associate``'s inputs for frames of (x1, x2) boxes, all 10 high at y 0, one class,
    frames 0, 1, ... of one stream, IoU 0.3, no gap bridged."""
    x = [box for f in frames for box in f]
    n = len(x)
    return dict(x1=np.array([v[0] for v in x], np.float32), y1=np.zeros(n, np.float32),
                x2=np.array([v[1] for v in x], np.float32), y2=np.full(n, 10.0, np.float32),
                cls=np.zeros(n, np.int64),
                offsets=np.concatenate(([0], np.cumsum([len(f) for f in frames]))).astype(np.int64),
                frame=np.arange(len(frames), dtype=np.int64), stream=np.zeros(len(frames), np.int64),
                iou=0.3, max_gap=0)


def test_parallel_associate_does_not_join_where_slot_order_decides(parallel_ranges):
    """Objects A and B cross the cut, listed B first after it, so the speculative pass holds
    them in the other slot order; a later box overlaps both equally (a tie the older object
    wins). Joined on the same objects alone, the stitch would give that box B's id."""
    import reference

    a, b, c = (0.0, 10.0), (4.0, 14.0), (2.0, 12.0)  # IoU(a, c) == IoU(b, c) == 2 / 3
    frames = [[a, b]] * 4 + [[b, a]] * 4 + [[c]]
    d = _strip_frames(frames)
    got = _one_call(parallel_ranges, d)
    _same(got, _one_call(reference, d))
    assert got[0][-1] == got[0][0]  # the tie goes to A, the older object


def test_parallel_associate_joins_across_a_tie_of_unrelated_pairs(parallel_ranges):
    """As above, but in the last frame each object has two boxes (so its pairs compete), A's
    and B's with the same IoUs: equal keys, no box shared. Slot order decides nothing there, so
    the reordered join stands, and each object continues with its nearer box."""
    import reference

    a, b = (0.0, 10.0), (20.0, 30.0)
    a2, b2 = (2.0, 12.0), (22.0, 32.0)  # IoU(a, a2) == IoU(b, b2) == 2 / 3
    a3, b3 = (4.0, 14.0), (24.0, 34.0)  # IoU(a, a3) == IoU(b, b3) == 3 / 7; none near the other
    frames = [[a, b]] * 4 + [[b, a]] * 4 + [[b2, a2, b3, a3]]
    d = _strip_frames(frames)
    got = _one_call(parallel_ranges, d)
    _same(got, _one_call(reference, d))
    assert got[0][-3] == got[0][0] and got[0][-4] == got[0][1]  # a2 continues A, b2 continues B
