"""rows.contiguous against the paper library at two track lengths, side by side in one run.

The paper library pays a fixed cost per identifier group (pandas groupby), so its per-row
speed depends on track length: 17 frames per id is the shape of the real TUD-Campus tracker
output bundled with tripwire, 100 frames per id is `tripwire bench`'s shape. Run:

    python benches/contiguous_track_length.py

Needs the bench extra (pandas, model-assertions).
"""
import time
import numpy as np
import pyarrow as pa
import tripwire as tw
from model_assertions.consistency import TimeConsistencyAssertion

def table(n, frames_per_id, gap=0.02, seed=0):
    rng = np.random.default_rng(seed)
    n_ids = max(n // frames_per_id, 1)
    frames = -(-n // n_ids) + int(n * gap / n_ids) + 2
    frame = np.repeat(np.arange(frames, dtype=np.int64), n_ids)
    ids = np.tile(np.arange(n_ids, dtype=np.int64), frames)
    keep = rng.random(len(frame)) >= gap
    return pa.table({"track_id": ids[keep][:n], "frame": frame[keep][:n]})

def med(f, r):
    ts = []
    for _ in range(r):
        a = time.perf_counter(); f(); ts.append(time.perf_counter() - a)
    return float(np.median(ts))

for fpi in (17, 100):
    big, small = table(1_000_000, fpi), table(100_000, fpi)
    s = tw.Suite([tw.rows.contiguous(id="track_id", time="frame", window=3, allowed_transitions=1)])
    s.check(big)
    t_tw = med(lambda: s.check(big), 9)
    df = small.to_pandas()
    paper = TimeConsistencyAssertion("track_id", "frame", window=3, allowed_transitions=1)
    t_p = med(lambda: paper.check_errors(df.copy(), df.copy()), 3)
    r_tw, r_p = 1_000_000 / t_tw, 100_000 / t_p
    print(f"{fpi:>3} frames/id: tripwire {r_tw/1e6:6.1f} M rows/s  paper {r_p/1e3:6.1f} k rows/s  ratio {r_tw/r_p:7.0f}x")
