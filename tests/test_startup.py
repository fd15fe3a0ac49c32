"""The default path is ahead-of-time: importing tripwire and a first check load no JIT."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys, time
t0 = time.perf_counter()
import pyarrow as pa
import tripwire as tw
t = pa.table({"id": list(range(1000)), "attr": [i % 3 for i in range(1000)],
              "frame": list(range(1000)), "x": [i / 1000 for i in range(1000)]})
r = tw.Suite([tw.rows.consistent(id="id", attr="attr"), tw.rows.contiguous(id="id", time="frame"),
              tw.rows.check("x > 0.99")]).check(t)
assert len(r.violations) == 9, len(r.violations)  # x = 0.991 .. 0.999
print("numba" in sys.modules, round(time.perf_counter() - t0, 3))
"""


def test_first_check_loads_no_jit():
    # (pandas is not asserted: pyarrow itself imports it, when installed, on many paths)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    numba_loaded, seconds = out.stdout.split()
    assert numba_loaded == "False"  # Numba's import alone costs ~0.4 s
    assert float(seconds) < 10      # generous: the 1 s bar is measured, not asserted (noisy CI)
