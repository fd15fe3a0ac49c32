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

# rows.check's native kernel evaluates expressions over blocks of this many rows (fits L1).
CHECK_BLOCK_ROWS = _env_int("CHECK_BLOCK_ROWS", 1024)

# tripwire scan: rows per record batch read from files.
SCAN_BATCH_ROWS = _env_int("SCAN_BATCH_ROWS", 1 << 20)
