"""Every tuning knob and JIT setting in one place.

Values can be overridden by environment variables (``TRIPWIRE_<NAME>``) read at import.
"""
from __future__ import annotations

import os


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(f"TRIPWIRE_{name}")
    return default if raw is None else int(raw)


# Numba: cache compiled user assertions on disk; never use fastmath (it assumes no NaN and would
# silently drop NaN checks). Parallel loops only above this many rows (thread start-up costs more).
NUMBA_OPTIONS = {"cache": False, "nogil": True, "fastmath": False}
NUMBA_PARALLEL_MIN_ROWS = _env_int("NUMBA_PARALLEL_MIN_ROWS", 100_000)

# backend="auto": batches at least this many rows go to CuPy when it is installed and a GPU is
# present (a launch costs ~10-25 us; small batches lose to the CPU).
GPU_MIN_ROWS = _env_int("GPU_MIN_ROWS", 1_000_000)
# Per kernel family where the GPU wins later: the rows kernels (sorts and prefix sums on the
# device, ~7 ms fixed cost) are at parity with single-threaded Cython around 10**6 rows
# (0.56x-1.4x across two H100 runs) and win from 2*10**6 (2.5x; benches/gpu_kernels.py --rows).
# The ECG kernels never win end to end against 16-core Cython (the copy of the samples alone
# takes longer: benches/gpu_kernels.py --ecg), so auto keeps ECG windows on the CPU.
GPU_MIN_ROWS_FAMILY = {"rows": _env_int("GPU_MIN_ROWS_ROWS", 2_000_000),
                       "ecg": _env_int("GPU_MIN_ROWS_ECG", 2**62)}

# Identifier encoding: an integer key column whose range spans at most this many slots per row
# (and at least the floor) is used directly as group codes (value - min: no hashing, no copy);
# wider ranges are hashed by Arrow's dictionary_encode.
KEY_DIRECT_SLOTS_PER_ROW = _env_int("KEY_DIRECT_SLOTS_PER_ROW", 4)
KEY_DIRECT_MIN_SLOTS = _env_int("KEY_DIRECT_MIN_SLOTS", 1 << 16)
# an int64 key column's min/max pass runs on two threads from this many rows
KEY_PARALLEL_MIN_ROWS = _env_int("KEY_PARALLEL_MIN_ROWS", 1 << 18)

# rows.contiguous, fast path (at most one transition allowed, window too short to see past one
# gap): from this many rows, the rows are cut into ranges checked by parallel threads, one per
# OpenMP thread (or CONTIGUOUS_PARTS ranges when > 0; the ranges are joined exactly either way).
CONTIGUOUS_PARALLEL_MIN_ROWS = _env_int("CONTIGUOUS_PARALLEL_MIN_ROWS", 1 << 18)
CONTIGUOUS_PARTS = _env_int("CONTIGUOUS_PARTS", 0)
# rows.consistent (and boxes.class_consistency): its two passes over the rows run on row ranges
# in parallel from this many rows (CONSISTENT_PARTS ranges when > 0, else one per thread).
CONSISTENT_PARALLEL_MIN_ROWS = _env_int("CONSISTENT_PARALLEL_MIN_ROWS", 1 << 18)
CONSISTENT_PARTS = _env_int("CONSISTENT_PARTS", 0)
# boxes.valid: one row range per OpenMP thread from this many rows (it reads 20 bytes a row
# and keeps nothing, so it is cut as soon as a thread's start-up is paid back).
VALID_PARALLEL_MIN_ROWS = _env_int("VALID_PARALLEL_MIN_ROWS", 1 << 17)
# boxes.flicker / boxes.appear with track ids: the same cut into parallel row ranges, joined
# object by object, from this many rows (TRACKS_PARTS ranges when > 0, else one per thread).
TRACKS_PARALLEL_MIN_ROWS = _env_int("TRACKS_PARALLEL_MIN_ROWS", 1 << 18)
TRACKS_PARTS = _env_int("TRACKS_PARTS", 0)
# boxes.flicker / boxes.appear with identity "iou": from this many boxes (and without resume
# seeds) the frames are cut into ASSOC_PARTS ranges (0: one per OpenMP thread) associated in
# parallel, each from an empty state; each range is then stitched to the one before by redoing
# its first frames from the true state until both runs hold the same objects (compared over at
# most max(ASSOC_CONVERGE_GROUPS, 4 (max_gap + 1)) frames; past that the range is redone whole;
# 0: never compared, every range redone: only the tests want that).
ASSOC_PARALLEL_MIN_ROWS = _env_int("ASSOC_PARALLEL_MIN_ROWS", 1 << 16)
ASSOC_PARTS = _env_int("ASSOC_PARTS", 0)
ASSOC_CONVERGE_GROUPS = _env_int("ASSOC_CONVERGE_GROUPS", 64)
# Compile-time kernel constants live in kernels/_rows_cy.pyx (rebuild to change them): the
# rows.check block (1024 rows, fits L1) and the contiguous streaming-state limits.

# tw.Monitor's box engine: batches of fewer rows keep the GIL in its kernel sections. Such a
# section takes microseconds, less than giving the GIL away and waiting to get it back while
# other threads run Python, and a thread that gives it away holding the monitor's lock lets the
# other observing threads queue on the lock (a context switch each). Batches this large and
# larger release it (the gathered batches of a BackgroundMonitor, large batches of a scan).
MONITOR_NOGIL_MIN_ROWS = _env_int("MONITOR_NOGIL_MIN_ROWS", 256)

# tripwire scan: rows per record batch read from files.
SCAN_BATCH_ROWS = _env_int("SCAN_BATCH_ROWS", 1 << 20)
