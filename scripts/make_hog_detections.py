#!/usr/bin/env python
"""Regenerate tripwire's detector sample (``src/tripwire/data/vtest_hog/detections.parquet``).

Source: ``vtest.avi`` from OpenCV's samples (``samples/data/vtest.avi`` upstream; Debian package
``opencv-doc`` installs it as ``/usr/share/doc/opencv-doc/examples/data/vtest.avi``): 795 frames,
768x576, 10 fps, a pedestrian walkway. Every frame is decoded with ``cv2.VideoCapture`` and run
through OpenCV's built-in HOG people detector (Dalal-Triggs linear SVM,
``cv2.HOGDescriptor_getDefaultPeopleDetector()``, 64x128 window) via
``hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)``. Every other
argument is OpenCV's default (``hitThreshold=0``, ``groupThreshold=2``, no mean-shift grouping):
no extra non-maximum suppression is applied, so overlapping duplicate boxes that survive
OpenCV's own rectangle grouping are kept.

Output columns: ``frame`` int64 (0-based frame index), ``cls`` string (always ``"person"``),
``score`` float32, ``x1``, ``y1``, ``x2``, ``y2`` float32 (pixels; ``x2 = x + w``, ``y2 = y + h``
of OpenCV's ``(x, y, w, h)``, which OpenCV clips to the image), ``margin`` float32.
``margin`` is the raw linear-SVM value that ``detectMultiScale`` returns as the box's weight
(not a probability; >= hitThreshold = 0 here). ``score = 1 / (1 + exp(-margin))`` (logistic,
monotone, in [0.5, 1) because margins are >= 0). Rows are in frame order; within a frame,
sorted by (x1, y1, x2, y2, margin).
There is no ``track`` column (a detector has no track ids) and no ground truth. Nothing is
synthetic: every row is the detector's output on the real video.

Needs ``opencv-python-headless<5`` (OpenCV 5 dropped HOG), which is not a tripwire dependency.

Usage::

    python scripts/make_hog_detections.py                      # Debian opencv-doc path
    python scripts/make_hog_detections.py --video PATH/vtest.avi
    python scripts/make_hog_detections.py --jobs 1             # slower, same output

OpenCV runs single-threaded (``cv2.setNumThreads(1)``) in every worker: in OpenCV 4.x
``HOGDescriptor::detectMultiScale`` appends each scale level's boxes and their weights under two
separate lock acquisitions, so with several OpenCV threads a margin can be paired with another
level's box (seen here: three margins permuted in one frame of one multi-threaded run).
Parallelism is over frames, in separate processes, instead.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

VIDEO = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
# sha256 of vtest.avi as shipped in opencv-doc 4.6.0+dfsg-12
VIDEO_SHA256 = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "tripwire", "data", "vtest_hog")

# detectMultiScale arguments; everything not named here is OpenCV's default.
PARAMS = {"winStride": (8, 8), "padding": (8, 8), "scale": 1.05}
DEFAULTS_NOTE = "hitThreshold=0, groupThreshold=2 (finalThreshold), useMeanshiftGrouping=False"

SCHEMA = pa.schema([
    ("frame", pa.int64()), ("cls", pa.string()), ("score", pa.float32()),
    ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
    ("margin", pa.float32()),
])


def logistic(margin: float) -> float:
    return 1.0 / (1.0 + math.exp(-margin))


def _detect_worker(args: tuple[str, int, int]) -> tuple[int, dict[int, list], str]:
    """Decode every frame, run HOG on frames ``i % jobs == part``; single-threaded OpenCV."""
    video, part, jobs = args
    import cv2  # not a tripwire dependency: pip install "opencv-python-headless<5"

    # One OpenCV thread: HOGDescriptor::detectMultiScale appends boxes and weights under two
    # separate lock acquisitions, so with several threads a margin can land on the wrong box.
    cv2.setNumThreads(1)
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {video}")
    found: dict[int, list] = {}
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if n % jobs == part:
            rects, weights = hog.detectMultiScale(img, **PARAMS)
            found[n] = sorted(
                (float(x), float(y), float(x + w), float(y + h), float(m))
                for (x, y, w, h), m in zip(rects, weights.reshape(-1) if len(rects) else [])
            )
        n += 1
    cap.release()
    return n, found, cv2.__version__


def detect(video: str, jobs: int) -> tuple[pa.Table, int, str]:
    tasks = [(video, k, jobs) for k in range(jobs)]
    if jobs == 1:
        results = [_detect_worker(tasks[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            results = pool.map(_detect_worker, tasks)
    counts = {n for n, _, _ in results}
    if len(counts) != 1:
        raise SystemExit(f"workers decoded different frame counts: {sorted(counts)}")
    frames, cv_version = results[0][0], results[0][2]
    found = {fr: rows for _, part, _ in results for fr, rows in part.items()}
    cols: dict[str, list] = {f.name: [] for f in SCHEMA}
    for fr in range(frames):
        for x1, y1, x2, y2, m in found[fr]:
            cols["frame"].append(fr)
            cols["cls"].append("person")
            cols["score"].append(logistic(m))
            cols["x1"].append(x1)
            cols["y1"].append(y1)
            cols["x2"].append(x2)
            cols["y2"].append(y2)
            cols["margin"].append(m)
    return pa.Table.from_pydict(cols, schema=SCHEMA), frames, cv_version


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default=VIDEO, help=f"path to vtest.avi (default: {VIDEO})")
    ap.add_argument("--out", default=OUT,
                    help="output folder (default: src/tripwire/data/vtest_hog)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes, each on every jobs-th frame with one OpenCV thread "
                         "(default: min(2, CPUs); the output does not depend on it)")
    args = ap.parse_args(argv)
    if not os.path.exists(args.video):
        raise SystemExit(f"{args.video} not found: apt-get install opencv-doc, or pass --video")
    digest = hashlib.sha256(open(args.video, "rb").read()).hexdigest()
    if digest != VIDEO_SHA256:
        print(f"warning: {args.video} sha256 {digest} differs from the bundled source "
              f"{VIDEO_SHA256}", file=sys.stderr)
    t0 = time.perf_counter()
    table, frames, cv_version = detect(args.video, max(1, args.jobs))
    elapsed = time.perf_counter() - t0
    meta = {
        "source": "opencv samples/data/vtest.avi (Debian opencv-doc)",
        "source_sha256": digest,
        "opencv_version": cv_version,
        "detector": "cv2.HOGDescriptor() + HOGDescriptor_getDefaultPeopleDetector()",
        "detectMultiScale": json.dumps(PARAMS) + "; defaults: " + DEFAULTS_NOTE,
        "score": "1/(1+exp(-margin)); margin = detectMultiScale weight (raw SVM value)",
        "frames": str(frames),
    }
    table = table.replace_schema_metadata({f"tripwire.{k}": v for k, v in meta.items()})
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "detections.parquet")
    pq.write_table(table, path, compression="zstd")
    print(f"{args.video} -> {os.path.normpath(path)}: {table.num_rows} rows, {frames} frames "
          f"decoded, {len(set(table.column('frame').to_pylist()))} frames with boxes "
          f"(OpenCV {cv_version}, {elapsed:.1f} s)")
    print(f"video sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
