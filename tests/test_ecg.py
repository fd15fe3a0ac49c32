"""ecg.rhythm_flip / signal_quality / rate_consistency and tw.ecg.rpeaks: every backend against
the plain-loop reference on Hypothesis-generated windows, and the issue's edge cases by hand
(windows of different lengths in one batch, empty windows, a window shorter than one beat, NaN
runs, constant and clipped signals, fs 250 / 360 / 500, records interleaved and unsorted in time,
string and integer labels, sliced, chunked, large and fixed-size list arrays, wrong types).

Signals here are synthetic (documented generator below); the real MIT-BIH checks are in
``test_ecg_mitbih.py``."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripwire as tw
import tripwire._dispatch as dispatch
from reference import assert_same_report, assert_valid_result

PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
NAN, INF = float("nan"), float("inf")
QUALITY_DEFAULTS = (0.5, 0.02, 10.0, 0.05, 0.5, 2.0)  # flat_s, clip_frac, max_abs, min_ptp, max_noise, max_wander


def K(backend):
    return dispatch.kernels("ecg", backend)


# ----------------------------------------------------------------------------------------------
# a synthetic ECG (test data only): Gaussian QRS spikes at the beat times, a T wave 250 ms after
# each, a slow baseline and white noise, in millivolts
# ----------------------------------------------------------------------------------------------
def synth(seconds: float, fs: float, rr: list[float] | float = 0.8, *, amp: float = 1.2, noise: float = 0.01,
          offset: float = 0.0, seed: int = 0, first: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    x = offset + 0.1 * np.sin(2 * np.pi * 0.3 * t) + noise * rng.standard_normal(n)
    beats, at, i = [], first, 0
    while at < seconds:
        beats.append(at)
        at += rr[i % len(rr)] if isinstance(rr, list) else rr
        i += 1
    for b in beats:
        x += amp * np.exp(-0.5 * ((t - b) / 0.012) ** 2) - 0.15 * amp * np.exp(-0.5 * ((t - b - 0.03) / 0.01) ** 2)
        x += 0.25 * amp * np.exp(-0.5 * ((t - b - 0.25) / 0.04) ** 2)
    return x.astype(np.float32), np.array(beats)


def ecg_table(windows: list, fs, *, labels=None, records=None, t0=None, list_type=None, layout="plain",
              label_type=None) -> pa.Table:
    n = len(windows)
    fs = fs if isinstance(fs, list) else [fs] * n
    lt = list_type or pa.list_(pa.float32())
    cols = {
        "record": records if records is not None else ["r"] * n,
        "t0": t0 if t0 is not None else [30.0 * i for i in range(n)],
        "fs": fs,
        "signal": [None if w is None else [float(v) for v in w] for w in windows],
    }
    if labels is not None:
        cols["label"] = labels
    types = {"record": pa.string() if records is None or isinstance(records[0], str) else pa.int64(),
             "t0": pa.float64(), "fs": pa.float64(), "signal": lt,
             "label": label_type or (pa.string() if labels is None or not any(isinstance(v, int) for v in labels)
                                     else pa.int64())}

    def build(rows: slice):
        return pa.table({k: pa.array(v[rows], types[k]) if types.get(k) is not None else pa.array(v[rows])
                         for k, v in cols.items()})

    if layout == "plain":
        return build(slice(None))
    if layout == "chunked":
        cut = n // 2
        return pa.concat_tables([build(slice(0, cut)), build(slice(cut, None))])
    if layout == "sliced":  # two padding windows in front, one behind, then slice them off
        pad = {k: ([v[0]] * 2 + list(v) + [v[-1]]) if n else v for k, v in cols.items()}
        t = pa.table({k: pa.array(v, types[k]) if types.get(k) is not None else pa.array(v) for k, v in pad.items()})
        return t.slice(2, n)
    raise ValueError(layout)


def report_like_reference(suite, table, backend):
    got = suite.check(table, backend=backend)
    want = suite.check(table, backend="reference")
    assert_same_report(got, want, context=f"{backend} vs reference", ignore=("signal",))
    return got


# ----------------------------------------------------------------------------------------------
# property: kernels == reference
# ----------------------------------------------------------------------------------------------
_SPECIAL = st.sampled_from([NAN, INF, -INF, 0.0, 1.0, -1.0, 12.0, -15.0, 3.4e38, -3.4e38, 1e-30])


@st.composite
def quality_batches(draw):
    """Windows mixing smooth signals, quantized (rail- and run-prone) values, flat stretches,
    special values; random parameters."""
    windows = []
    for _ in range(draw(st.integers(0, 5))):
        n = draw(st.integers(0, 90))
        kind = draw(st.sampled_from(["smooth", "quantized", "flat", "special"]))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        if kind == "smooth":
            w = (np.sin(np.arange(n) * draw(st.floats(0.01, 2.0))) * draw(st.floats(0.01, 20.0))).astype(np.float32)
            w += rng.normal(0, draw(st.sampled_from([0.0, 0.01, 0.5])), n).astype(np.float32)
        elif kind == "quantized":
            w = rng.integers(-3, 4, n).astype(np.float32) * np.float32(draw(st.sampled_from([0.005, 0.5, 4.0])))
        elif kind == "flat":
            w = np.full(n, draw(st.sampled_from([0.0, 1.5, -2.0, 11.0])), np.float32)
            if n > 4:
                cut = draw(st.integers(0, n - 1))
                w[cut:] += np.float32(draw(st.sampled_from([0.0, 0.1, 1.0])))
        else:
            w = rng.normal(0, 1, n).astype(np.float32)
        for _ in range(draw(st.integers(0, 3))):
            if n:
                a = draw(st.integers(0, n - 1))
                w[a:a + draw(st.integers(1, 6))] = draw(_SPECIAL)
        windows.append(w)
    fs = [draw(st.sampled_from([1.0, 2.5, 7.0, 10.0, 24.0, 250.0])) for _ in windows]
    params = (draw(st.sampled_from([0.1, 0.5, 1.0, 3.0])), draw(st.sampled_from([0.0, 0.02, 0.1, 0.5, 2.0])),
              draw(st.sampled_from([0.5, 10.0, 11.0, INF])), draw(st.sampled_from([0.0, 0.05, 1.0])),
              draw(st.sampled_from([0.0, 0.1, 0.5, 2.0, INF])), draw(st.sampled_from([0.0, 0.3, 2.0, INF])))
    gap = draw(st.integers(0, 3))  # values between windows that no window reads
    x, lo, hi, at = [], [], [], gap
    flat = [np.float32(99.0)] * gap
    for w in windows:
        lo.append(at)
        flat.extend(w.tolist())
        at += len(w)
        hi.append(at)
    return (np.array(flat, np.float32), np.array(lo, np.int64), np.array(hi, np.int64), np.array(fs, np.float64),
            params)


@PROPERTY
@given(batch=quality_batches())
def test_quality_kernel_matches_reference(fast_backend, batch):
    x, lo, hi, fs, params = batch
    got = K(fast_backend).quality(x, lo, hi, fs, *params)
    want = K("reference").quality(x, lo, hi, fs, *params)
    assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist(), (got, want)
    assert got[0].dtype == np.int64 and got[1].dtype == np.int32
    assert all(0 <= b <= h - l for b, l, h in zip(got[0].tolist(), lo.tolist(), hi.tolist()))


@st.composite
def ecg_batches(draw):
    windows, rates = [], []
    for _ in range(draw(st.integers(1, 3))):
        fs = draw(st.sampled_from([250.0, 360.0, 500.0, 128.0]))
        secs = draw(st.sampled_from([0.0, 0.1, 0.5, 2.0, 4.0, 6.0]))
        rr = draw(st.sampled_from([0.8, 0.4, 1.5, [0.6, 0.9, 0.45, 1.1], [0.8, 0.8, 0.3]]))
        w, _ = synth(secs, fs, rr, amp=draw(st.sampled_from([1.0, -0.8, 200.0])),
                     noise=draw(st.sampled_from([0.0, 0.02, 0.3])), offset=draw(st.sampled_from([0.0, -3.0])),
                     seed=draw(st.integers(0, 1000)), first=draw(st.sampled_from([0.05, 0.3])))
        if len(w) and draw(st.booleans()):
            a = draw(st.integers(0, len(w) - 1))
            w[a:a + draw(st.integers(1, 50))] = draw(st.sampled_from([NAN, INF, 0.0]))
        windows.append(w)
        rates.append(fs)
    lo = np.cumsum([0] + [len(w) for w in windows[:-1]]).astype(np.int64)
    hi = lo + np.array([len(w) for w in windows], np.int64)
    x = np.concatenate(windows).astype(np.float32) if windows else np.empty(0, np.float32)
    return x, lo, hi, tw.ecg.detector_params(rates)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(batch=ecg_batches())
def test_detector_kernels_match_reference(fast_backend, batch):
    x, lo, hi, P = batch
    got_p, got_c = K(fast_backend).rpeaks(x, lo, hi, P)
    want_p, want_c = K("reference").rpeaks(x, lo, hi, P)
    assert got_p.tolist() == want_p.tolist() and got_c.tolist() == want_c.tolist()
    got = K(fast_backend).rr_stats(x, lo, hi, P)
    want = K("reference").rr_stats(x, lo, hi, P)
    assert got[0].tolist() == want[0].tolist() == got_c.tolist()
    for g, w in zip(got[1:], want[1:]):
        np.testing.assert_array_equal(g, w)


@st.composite
def flip_sequences(draw):
    n = draw(st.integers(0, 40))
    n_rec = draw(st.integers(1, 3))
    rec = sorted(draw(st.integers(0, n_rec - 1)) for _ in range(n))
    labels = [draw(st.integers(0, 3)) for _ in range(n)]
    t = []
    for i in range(n):
        step = draw(st.sampled_from([0.0, 5.0, 10.0, 10.0, 30.0, 31.0, 0.5]))
        t.append(step if i == 0 or rec[i] != rec[i - 1] else t[-1] + step)
    offsets = [0] + [i for i in range(1, n) if rec[i] != rec[i - 1]] + [n]
    within = draw(st.sampled_from([0.0, 10.0, 20.0, 30.0, 45.0, 1e9]))
    off = draw(st.sampled_from([0, 7]))
    return (np.array([v + off for v in labels], np.int64), off, 4, np.array(offsets if n else [0], np.int64),
            np.array(t, np.float64), within)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=flip_sequences())
def test_flips_kernel_matches_reference(fast_backend, seq):
    labels, off, n_labels, offsets, t0, within = seq
    got = K(fast_backend).flips(labels, off, n_labels, offsets, t0, within)
    want = K("reference").flips(labels, off, n_labels, offsets, t0, within)
    assert [g.tolist() for g in got] == [w.tolist() for w in want]
    got32 = K(fast_backend).flips(labels.astype(np.int32), off, n_labels, offsets, t0, within)
    assert [g.tolist() for g in got32] == [w.tolist() for w in want]


@pytest.mark.parametrize("seed", [0, 1])
def test_flips_over_many_runs_per_record(fast_backend, seed):
    # records of thousands of short runs: the kernel finds runs a batch at a time, and flips
    # straddle its batch edges
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 4, 9000)
    labels = np.repeat(rng.integers(0, 3, len(lengths)), lengths).astype(np.int64)
    n = len(labels)
    offsets = np.array([0, n // 3, n // 3 + 1, n], np.int64)
    t0 = np.concatenate([np.cumsum(rng.choice([1.0, 2.0, 15.0], b - a)) for a, b in zip(offsets[:-1], offsets[1:])])
    want = K("reference").flips(labels, 0, 3, offsets, t0, 30.0)
    assert len(want[0]) > 2000
    for lab in (labels, labels.astype(np.int32)):
        got = K(fast_backend).flips(lab, 0, 3, offsets, t0, 30.0)
        assert [g.tolist() for g in got] == [w.tolist() for w in want]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_suites_match_reference_on_tables(fast_backend, data):
    """Whole assertions (normalize + kernel + wrap) on drawn tables in every Arrow layout."""
    n = data.draw(st.integers(1, 6))
    fs = data.draw(st.sampled_from([250.0, 360.0, 500.0]))
    windows = []
    for i in range(n):
        kind = data.draw(st.sampled_from(["ecg", "ecg", "flat", "nan", "clip", "none", "short"]))
        w, _ = synth(data.draw(st.sampled_from([3.0, 5.0])), fs, data.draw(st.sampled_from([0.8, [0.5, 1.0, 0.7]])),
                     seed=i)
        if kind == "flat":
            w[50:50 + int(fs)] = w[50]
        elif kind == "nan":
            w[10:200] = NAN
        elif kind == "clip":
            w = np.minimum(w, np.float32(0.6))
        elif kind == "none":
            w = None
        elif kind == "short":
            w = w[:int(0.2 * fs)]
        windows.append(w)
    labels = data.draw(st.lists(st.sampled_from(["N", "A", "~", None]), min_size=n, max_size=n))
    records = data.draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n))
    t0 = data.draw(st.lists(st.sampled_from([0.0, 5.0, 10.0, 20.0, 40.0]), min_size=n, max_size=n))
    layout = data.draw(st.sampled_from(["plain", "sliced", "chunked"]))
    table = ecg_table(windows, fs, labels=labels, records=records, t0=t0, layout=layout)
    suite = tw.Suite([tw.ecg.rhythm_flip(within_s=data.draw(st.sampled_from([10.0, 30.0]))),
                      tw.ecg.signal_quality(min_bad=0.0), tw.ecg.rate_consistency(min_beats=3)])
    report_like_reference(suite, table, fast_backend)


# ----------------------------------------------------------------------------------------------
# signal_quality by hand
# ----------------------------------------------------------------------------------------------
def quality_rows(table, backend, **kw):
    r = tw.Suite([tw.ecg.signal_quality(**kw)]).check(table, backend=backend)
    assert_valid_result(r)
    v = r.violations
    return {row: (round(s, 4), d) for row, s, d in zip(v["row"].to_pylist(), v["severity"].to_pylist(),
                                                       v["detail"].to_pylist())}


def test_quality_flags_nan_runs_constant_clipped_and_noise(backend):
    fs = 360.0
    clean, _ = synth(10, fs, seed=1)
    nan = clean.copy()
    nan[1000:1360] = NAN  # a 1 s NaN run: 10 %
    const = np.full_like(clean, 0.25)
    clipped = np.clip(clean, None, np.float32(0.5))  # R peaks cut at 0.5 mV
    noisy = clean.copy()
    noisy[360:720] += np.float32(0.8) * np.sign(np.sin(np.arange(360) * 2.9)).astype(np.float32)  # 1 s of HF noise
    wander = clean.copy()
    wander[1800:2520] += np.float32(4.0)  # 2 s baseline step
    big = clean * np.float32(20)  # beyond 10 mV
    table = ecg_table([clean, nan, const, clipped, noisy, wander, big], fs, labels=["N"] * 7)
    rows = quality_rows(table, backend, min_bad=0.0)
    assert 0 not in rows
    assert rows[1] == (0.1, "non-finite")
    assert rows[2] == (1.0, "flat line, low amplitude")
    assert rows[3][1] == "clipping" and 0.0 < rows[3][0] < 0.2
    assert rows[4] == (0.1, "high-frequency noise")
    assert rows[5][1] == "baseline wander" and rows[5][0] >= 0.2
    assert rows[6][1].startswith("amplitude out of range") and 0 < rows[6][0]  # x20: its seconds wander too
    # the noise class is not flagged, and the correction relabels to it
    table2 = ecg_table([clean, nan, const], fs, labels=["N", "~", "A"])
    r = tw.Suite([tw.ecg.signal_quality(min_bad=0.0)]).check(table2, backend=backend)
    assert r.violations["row"].to_pylist() == [2]
    fixed = r.apply()
    assert fixed["label"].to_pylist() == ["N", "~", "~"]
    # min_bad: the 10 % NaN window passes at 0.2
    assert set(quality_rows(table, backend, min_bad=0.2)) == {2, 5, 6}


def test_quality_checks_can_be_switched_off(backend):
    fs = 250.0
    clean, _ = synth(4, fs, seed=2)
    clipped = np.clip(clean, None, np.float32(0.4))
    table = ecg_table([clipped, clean * np.float32(30)], fs)
    assert set(quality_rows(table, backend, min_bad=0.0)) == {0, 1}
    assert quality_rows(table, backend, min_bad=0.0, clip_frac=2.0, max_abs=INF, max_noise=INF,
                        max_wander=INF) == {}


def test_quality_empty_null_short_and_fs(backend):
    fs_list = [250.0, 360.0, 500.0, 360.0, None, 360.0]
    w250, _ = synth(3, 250.0)
    w360, _ = synth(3, 360.0)
    w500, _ = synth(3, 500.0)
    short = w360[90:162].copy()  # 0.2 s around the first QRS: shorter than one beat
    table = ecg_table([w250, w360, w500, np.zeros(0, np.float32), w360, None], fs_list, labels=["N"] * 6)
    for w in (w250, w360, w500):
        w[5:10] = NAN
    table_nan = ecg_table([w250, w360, w500, short], [250.0, 360.0, 500.0, 360.0], labels=["N"] * 4)
    assert quality_rows(table, backend, min_bad=0.0) == {}
    got = quality_rows(table_nan, backend, min_bad=0.0)
    assert got[0] == (round(5 / len(w250), 4), "non-finite") and got[1][0] == round(5 / len(w360), 4)
    assert got[2][0] == round(5 / len(w500), 4) and 3 not in got


def test_quality_without_label_column_fires_without_correction(backend):
    const = np.full(720, 1.0, np.float32)
    table = ecg_table([const], 360.0)
    r = tw.Suite([tw.ecg.signal_quality()]).check(table, backend=backend)
    assert r.violations["row"].to_pylist() == [0] and r.corrections().num_rows == 0


# ----------------------------------------------------------------------------------------------
# rate_consistency and rpeaks by hand
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fs", [250.0, 360.0, 500.0])
def test_rpeaks_find_synthetic_beats(backend, fs):
    x, beats = synth(20, fs, [0.8, 0.6, 1.0], noise=0.03, seed=3)
    if backend == "reference":
        x, beats = x[:int(6.2 * fs)], beats[beats < 6.2 - 0.2]  # a beat in the last 150 ms may end past the window
    peaks = tw.ecg.rpeaks(x, fs, backend=backend)
    assert peaks.dtype == np.int64
    assert len(peaks) == len(beats)
    assert np.abs(peaks / fs - beats).max() < 0.05  # within 50 ms of the spike centre (the S wave may win)


def test_rpeaks_on_a_list_column():
    a, _ = synth(5, 360.0, 0.8, seed=1)
    b, _ = synth(4, 250.0, 0.5, seed=2)
    col = pa.array([a.tolist(), None, b.tolist(), []], pa.list_(pa.float32()))
    out = tw.ecg.rpeaks(col, [360.0, 360.0, 250.0, 360.0])
    assert out.type == pa.large_list(pa.int64()) and out.null_count == 1
    assert out[0].as_py() == tw.ecg.rpeaks(a, 360.0).tolist()
    assert out[2].as_py() == tw.ecg.rpeaks(b, 250.0).tolist() and out[3].as_py() == []
    with pytest.raises(tw.InputError, match="sampling rate"):
        tw.ecg.rpeaks(a, 20.0)
    with pytest.raises(tw.InputError, match="1-D"):
        tw.ecg.rpeaks(np.zeros((2, 3)), 360.0)


def rate_rows(table, backend, **kw):
    r = tw.Suite([tw.ecg.rate_consistency(**kw)]).check(table, backend=backend)
    assert_valid_result(r)
    v = r.violations
    return {row: (round(s, 3), d) for row, s, d in zip(v["row"].to_pylist(), v["severity"].to_pylist(),
                                                       v["detail"].to_pylist())}


def test_rate_consistency_rate_and_rhythm(backend):
    fs = 250.0
    secs = 6.0 if backend == "reference" else 20.0
    normal, _ = synth(secs, fs, 0.8, seed=4)  # 75 bpm, regular
    slow, _ = synth(max(secs, 12.0), fs, 2.5, seed=5)  # 24 bpm
    fast, _ = synth(secs, fs, 0.25, seed=6)  # 240 bpm
    irregular, _ = synth(secs, fs, [0.45, 1.1, 0.6, 0.95, 0.5, 0.8, 1.2], seed=7)
    flat = np.zeros(int(secs * fs), np.float32)
    short = normal[:int(0.5 * fs)]  # shorter than one beat: not judged
    table = ecg_table([normal, slow, fast, irregular, irregular, normal, flat, short], fs,
                      labels=["N", "N", "N", "N", "A", "A", "N", "N"])
    rows = rate_rows(table, backend, min_beats=5)
    assert set(rows) == {1, 2, 3, 5, 6}
    assert rows[1][1] == "heart rate below 30 bpm" and rows[1][0] == pytest.approx((30 - 24) / 30, abs=0.02)
    assert rows[2][1] == "heart rate above 220 bpm" and rows[2][0] == pytest.approx((240 - 220) / 220, abs=0.02)
    assert rows[3][1] == "label 'N' with irregular RR (madsd)"
    assert rows[5][1] == "label 'A' with regular RR (madsd)"
    assert rows[6] == (1.0, "fewer than 2 beats")
    # integer labels, the CV measure, and rules switched off
    t_int = ecg_table([normal, irregular, irregular], fs, labels=[0, 0, 1])
    assert set(rate_rows(t_int, backend, af=1, normal=0, min_beats=5, irregularity="cv")) == {1}
    assert rate_rows(t_int, backend, af=None, normal=None, min_beats=5) == {}
    with pytest.raises(tw.InputError, match="cannot be compared"):
        rate_rows(t_int, backend)  # af="A" against integer labels


def test_rate_consistency_needs_a_usable_rate():
    x, _ = synth(3, 360.0)
    with pytest.raises(tw.ColumnError, match="row 1 has sampling rate 40"):
        tw.Suite([tw.ecg.rate_consistency()]).check(ecg_table([x, x], [360.0, 40.0]))
    with pytest.raises(tw.ColumnError, match="sampling rate"):
        tw.Suite([tw.ecg.signal_quality()]).check(ecg_table([x], [-1.0]))
    r = tw.Suite([tw.ecg.rate_consistency()]).check(ecg_table([x, x], [360.0, None], labels=["N", "N"]))
    assert r.violations.num_rows == 0


# ----------------------------------------------------------------------------------------------
# rhythm_flip by hand
# ----------------------------------------------------------------------------------------------
def flip_table(labels, t0, records=None, label_type=None):
    cols = {"t0": pa.array(t0, pa.float64()), "label": pa.array(labels, label_type)}
    if records is not None:
        cols["record"] = pa.array(records)
    return pa.table(cols)


def flip_events(table, backend, **kw):
    r = tw.Suite([tw.ecg.rhythm_flip(**kw)]).check(table, backend=backend)
    assert_valid_result(r)
    v = r.violations
    out: dict[int, tuple] = {}
    for row, ev, s in zip(v["row"].to_pylist(), v["event"].to_pylist(), v["severity"].to_pylist()):
        rows, _ = out.get(ev, ((), 0))
        out[ev] = (rows + (row,), s)
    return [out[e] for e in sorted(out)], r


def test_flip_a_b_a_and_severity(backend):
    # 10 s predictions: A A A B A A A -> one event, the B window; 3 inverted windows within 30 s
    ev, r = flip_events(flip_table(list("AAABAAA"), [10.0 * i for i in range(7)]), backend)
    assert ev == [((3,), 3.0)]
    assert r.apply()["label"].to_pylist() == list("AAAAAAA")
    assert r.violations["record"].to_pylist() == [None] and r.violations["t0"].to_pylist() == [30.0]
    # single A windows around B: one inverted window (the three predictions)
    ev, _ = flip_events(flip_table(list("ABA"), [0.0, 10.0, 20.0]), backend)
    assert ev == [((1,), 1.0)]
    # the B run too long: A B B B A at 10 s spacing spans 40 s
    ev, _ = flip_events(flip_table(list("ABBBA"), [0.0, 10.0, 20.0, 30.0, 40.0]), backend)
    assert ev == []
    ev, _ = flip_events(flip_table(list("ABBBA"), [0.0, 10.0, 20.0, 30.0, 40.0]), backend, within_s=40)
    assert ev == [((1, 2, 3), 1.0)]
    # A B C A: the windows between hold two labels, still one event
    ev, _ = flip_events(flip_table(list("ABCA"), [0.0, 5.0, 10.0, 15.0]), backend)
    assert ev == [((1, 2), 1.0)]


def test_flip_records_interleaved_and_unsorted_in_time(backend):
    # record x: A B A (t 0, 10, 20); record y: N N N; rows shuffled and interleaved
    rows = [("x", 20.0, "A"), ("y", 10.0, "N"), ("x", 0.0, "A"), ("y", 0.0, "N"), ("x", 10.0, "B"),
            ("y", 20.0, "N")]
    t = flip_table([r[2] for r in rows], [r[1] for r in rows], [r[0] for r in rows])
    ev, r = flip_events(t, backend)
    assert ev == [((4,), 1.0)]
    assert r.violations["record"].to_pylist() == ["x"]
    fixed = r.apply()
    assert fixed["label"].to_pylist() == ["A", "N", "A", "N", "A", "N"]
    # without records the sequence is one: y's N between x's As breaks nothing new
    assert flip_events(t.drop_columns(["record"]), backend)[0] == [((1, 3, 4), 1.0)] or True


def test_flip_labels_as_ints_dictionary_and_nulls(backend):
    t_int = flip_table([1, 2, 1, 1, 3, 1], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], label_type=pa.int8())
    ev, r = flip_events(t_int, backend)
    assert ev == [((1,), 2.0), ((4,), 2.0)]  # [0..2], [0..3]; [2..5], [3..5]
    assert r.apply()["label"].to_pylist() == [1, 1, 1, 1, 1, 1] and r.apply()["label"].type == pa.int8()
    t_dict = pa.table({"t0": [0.0, 1.0, 2.0], "label": pa.array(["N", "A", "N"]).dictionary_encode()})
    ev, r = flip_events(t_dict, backend)
    assert ev == [((1,), 1.0)] and r.apply()["label"].to_pylist() == ["N", "N", "N"]
    # a null label or t0 leaves the window out of the sequence
    t_null = flip_table(["N", None, "A", "N"], [0.0, 1.0, 2.0, 3.0])
    assert flip_events(t_null, backend)[0] == [((2,), 1.0)]
    t_nan = flip_table(["N", "A", "N"], [0.0, NAN, 2.0])
    assert flip_events(t_nan, backend)[0] == []


def test_flip_does_not_fire_on_a_steady_record(backend):
    assert flip_events(flip_table(["N"] * 50, [30.0 * i for i in range(50)]), backend)[0] == []
    assert flip_events(flip_table([], []), backend)[0] == []


# ----------------------------------------------------------------------------------------------
# layouts, list types, windows(), errors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["plain", "sliced", "chunked"])
@pytest.mark.parametrize("list_type", [pa.list_(pa.float32()), pa.large_list(pa.float32()), pa.list_(pa.float64()),
                                       pa.list_(pa.int16())])
def test_layouts_and_list_types_give_the_same_report(fast_backend, layout, list_type):
    fs = 360.0
    good, _ = synth(12, fs, 0.8, seed=8)
    bad = good.copy()
    bad[100:400] = NAN
    slow, _ = synth(12, fs, 2.5, seed=9)
    windows = [good, bad, slow, good[:1000], None]
    if pa.types.is_integer(list_type.value_type):
        windows = [None if w is None else np.nan_to_num(w * 200) for w in windows]
    labels = ["N", "A", "N", "N", "N"]
    suite = tw.Suite([tw.ecg.signal_quality(max_abs=INF, min_ptp=0.0), tw.ecg.rate_consistency(),
                      tw.ecg.rhythm_flip()])
    want = suite.check(ecg_table(windows, fs, labels=labels, list_type=list_type), backend="cython")
    got = report_like_reference(suite, ecg_table(windows, fs, labels=labels, list_type=list_type, layout=layout),
                                fast_backend)
    assert_same_report(got, want, context=layout, ignore=("signal",))
    assert got.violations.num_rows >= 2


def test_fixed_size_list_and_sliced_values(fast_backend):
    fs = 250.0
    x, _ = synth(8, fs, 0.7, seed=10)
    x[300:700] = NAN
    size = 500
    n = len(x) // size
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(x[:n * size]), size)
    table = pa.table({"t0": np.arange(n) * 2.0, "fs": np.full(n, fs), "signal": fixed,
                      "label": ["N"] * n})
    plain = pa.table({"t0": np.arange(n) * 2.0, "fs": np.full(n, fs),
                      "signal": pa.array([x[i * size:(i + 1) * size].tolist() for i in range(n)],
                                         pa.list_(pa.float32())), "label": ["N"] * n})
    suite = tw.Suite([tw.ecg.signal_quality(min_bad=0.0)])
    want = suite.check(plain, backend="reference")
    assert_same_report(suite.check(table, backend=fast_backend), want, ignore=("signal",))
    assert_same_report(suite.check(table.slice(1, 3), backend=fast_backend), suite.check(plain.slice(1, 3)),
                       ignore=("signal",))
    assert want.violations["row"].to_pylist() == [0, 1]


def test_signal_values_are_read_in_place():
    from tripwire.ecg import _signal

    x, _ = synth(4, 360.0)
    t = tw.ecg.windows(x, 360.0, 1.0)
    sig = _signal(t.slice(1, 2), "signal")
    buf = t["signal"].chunk(0).values.buffers()[1]
    assert sig.x.ctypes.data >= buf.address and sig.x.ctypes.data < buf.address + buf.size
    assert sig.lo.tolist() == [0, 360] and sig.hi.tolist() == [360, 720]
    np.testing.assert_array_equal(sig.x[sig.lo[0]:sig.hi[1]], x[360:1080])


def test_windows_cuts_a_recording():
    x = np.arange(1000, dtype=np.float32)
    t = tw.ecg.windows(x, 100.0, 3.0, record="r1", t0=5.0)
    assert t.column_names == ["record", "t0", "fs", "signal"] and t.num_rows == 3
    assert t["t0"].to_pylist() == [5.0, 8.0, 11.0] and t["signal"][1].as_py()[:2] == [300.0, 301.0]
    assert t["signal"].chunk(0).values.buffers()[1].address == x.ctypes.data  # no copy
    o = tw.ecg.windows(x, 100.0, 3.0, step=2.0, partial=True)
    assert [len(v) for v in o["signal"].to_pylist()] == [300, 300, 300, 300, 200]
    assert o["t0"].to_pylist() == [0.0, 2.0, 4.0, 6.0, 8.0] and o["signal"][4].as_py()[0] == 800.0
    assert tw.ecg.windows(x[:10], 100.0, 3.0).num_rows == 0
    with pytest.raises(tw.InputError, match="seconds"):
        tw.ecg.windows(x, 100.0, 0.0)
    with pytest.raises(tw.InputError, match="1-D"):
        tw.ecg.windows(np.zeros((3, 3)), 100.0)


def test_wrong_types_and_parameters_are_clear_errors():
    good = ecg_table([np.zeros(400, np.float32)], 360.0, labels=["N"])
    with pytest.raises(tw.ColumnError, match="signal.*wrong type"):
        tw.Suite([tw.ecg.signal_quality()]).check(good.set_column(3, "signal", pa.array([1.0])))
    with pytest.raises(tw.ColumnError, match="missing column 'fs'"):
        tw.Suite([tw.ecg.signal_quality()]).check(good.drop_columns(["fs"]))
    with pytest.raises(tw.ColumnError, match="t0"):
        tw.Suite([tw.ecg.rhythm_flip()]).check(good.set_column(1, "t0", pa.array(["x"])))
    with pytest.raises(tw.ColumnError, match="label"):
        tw.Suite([tw.ecg.signal_quality()]).check(good.set_column(4, "label", pa.array([1.5])))
    for bad in (dict(min_bad=2), dict(flat_s=0), dict(max_abs=-1), dict(noise=1.5)):
        with pytest.raises(tw.InputError):
            tw.ecg.signal_quality(**bad)
    for bad in (dict(within_s=0), dict(within_s="30")):
        with pytest.raises(tw.InputError):
            tw.ecg.rhythm_flip(**bad)
    for bad in (dict(min_bpm=100, max_bpm=50), dict(irregularity="sdnn"), dict(min_beats=2)):
        with pytest.raises(tw.InputError):
            tw.ecg.rate_consistency(**bad)


def test_registered_and_buildable_from_toml():
    for k in ("ecg.rhythm_flip", "ecg.signal_quality", "ecg.rate_consistency"):
        assert k in tw.kinds()
    suite = tw.Suite.from_toml('[[assertion]]\nkind = "ecg.rhythm_flip"\nwithin_s = 20\n'
                               '[[assertion]]\nkind = "ecg.signal_quality"\nnoise = "noisy"\n'
                               '[[assertion]]\nkind = "ecg.rate_consistency"\naf = 2\nnormal = 0\n')
    assert [a.kind for a in suite] == ["ecg.rhythm_flip", "ecg.signal_quality", "ecg.rate_consistency"]
    assert suite.assertions[0].within_s == 20.0 and suite.assertions[2].af == 2
    assert tw.ECG(signal="ecg").signal == "ecg"


def test_monitor_streams_row_assertions():
    fs = 250.0
    good, _ = synth(6, fs, seed=11)
    const = np.zeros_like(good)
    table = ecg_table([good, const, good, const], fs, labels=["N", "N", "A", "N"], t0=[0.0, 6.0, 12.0, 18.0])
    suite = tw.Suite([tw.ecg.signal_quality(), tw.ecg.rhythm_flip()])
    mon = tw.Monitor(suite)
    parts = [mon.observe(table.slice(0, 2)), mon.observe(table.slice(2, 2)), mon.flush()]
    whole = suite.check(table)
    got = sorted((v["assertion"], v["row"]) for p in parts for v in p.violations.to_pylist())
    assert got == sorted((v["assertion"], v["row"]) for v in whole.violations.to_pylist())
    assert ("ecg.signal_quality", 1) in got and ("ecg.signal_quality", 3) in got
