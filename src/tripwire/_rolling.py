"""Rolling violation rate over the last N rows checked, at whole-batch granularity.

Shared by the metrics (``tripwire.metrics``) and the alert rules (``tripwire.alerts``); it has
no dependencies and no lock of its own (its owners lock around it).
"""
from __future__ import annotations

from collections import deque

__all__ = ["RollingRate"]


class RollingRate:
    """Flagged rows / checked rows per assertion over the most recent batches.

    The window is the smallest run of most recent batches that holds at least ``window`` rows
    (all batches, while fewer rows than that have been seen). Batches are kept or dropped
    whole, so the window holds between ``window`` and ``window + rows of its oldest batch - 1``
    rows, and the rate is exact for exactly the rows it holds (``rows``). A single batch larger
    than ``window`` is a window of its own.

    ``add`` is O(assertions in the batch) amortized: every batch is appended once and dropped
    once, its flagged counts added once and subtracted once. Batches of 0 rows are not kept.
    """

    __slots__ = ("window", "rows", "_flagged", "_batches")

    def __init__(self, window: int):
        self.window = window
        self.rows = 0                         # rows in the window
        self._flagged: dict[str, int] = {}    # assertion -> flagged rows in the window
        self._batches: deque[tuple[int, dict[str, int]]] = deque()

    def add(self, n_rows: int, flagged: dict[str, int]) -> None:
        if n_rows <= 0:
            return
        batches, sums, window = self._batches, self._flagged, self.window
        kept = None  # a batch that flagged nothing (most) is kept as its row count alone
        if flagged:
            # a copy of the non-zero counts: the caller may reuse its dict
            kept = {a: n for a, n in flagged.items() if n} or None
            if kept:
                for a, n in kept.items():
                    sums[a] = sums.get(a, 0) + n
        batches.append((n_rows, kept))
        rows = self.rows + n_rows
        # drop the oldest batch while the rest still covers the window
        while rows - batches[0][0] >= window:
            old_rows, old = batches.popleft()
            rows -= old_rows
            if old:
                for a, n in old.items():
                    sums[a] -= n
        self.rows = rows

    def rate(self, assertion: str) -> float:
        """Flagged rows / rows in the window; 0.0 before any row was seen."""
        return self._flagged.get(assertion, 0) / self.rows if self.rows else 0.0

    def flagged(self, assertion: str) -> int:
        return self._flagged.get(assertion, 0)
