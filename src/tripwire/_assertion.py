"""Assertion base class and the per-assertion result every kernel wrapper returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

__all__ = ["Assertion", "MultiTableAssertion", "Result", "Correction", "canonical_events"]


@dataclass
class Correction:
    """Weak labels one assertion proposes for one input table.

    ``relabel``: set ``column`` at ``rows`` to the value found at ``source_rows`` of the same
    column (or to ``values`` when given). ``remove``: drop ``rows``. ``add``: append ``values``
    (a table with the input's columns).

    ``table`` names the input table the correction applies to; ``None`` means the assertion's
    own ``table`` (an assertion reading several tables may correct another one: ``points.agree``
    adds camera boxes).
    """

    action: str
    rows: np.ndarray
    column: str | None = None
    source_rows: np.ndarray | None = None
    values: Any = None
    table: str | None = None

    def count(self) -> int:
        """Rows this correction touches (relabel, remove) or appends (add)."""
        return len(self.values) if self.action == "add" else len(self.rows)


@dataclass
class Result:
    """Violations of one assertion on one input, in canonical order (event, row)."""

    rows: np.ndarray  # int64
    events: np.ndarray  # int64, 0..n_events-1
    severity: np.ndarray  # float32 > 0
    n_rows_checked: int
    # context columns aligned with ``rows``: an Arrow array, or a zero-argument function that
    # builds it (context is only formatted when a report's violations table is read)
    context: dict[str, Any] = field(default_factory=dict)
    # proposed weak labels, or a zero-argument function building them (built when first read)
    corrections: Any = field(default_factory=list)

    def correction_list(self) -> list[Correction]:
        """The corrections, built on first use."""
        if callable(self.corrections):
            self.corrections = self.corrections()
        return self.corrections

    def context_arrays(self) -> dict[str, pa.Array]:
        """The context columns, built on first use."""
        for k, v in self.context.items():
            if callable(v):
                self.context[k] = v()
        return self.context

    @property
    def n_events(self) -> int:
        return int(self.events.max()) + 1 if len(self.events) else 0

    @classmethod
    def empty(cls, n_rows_checked: int) -> "Result":
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32), n_rows_checked)


def canonical_events(rows: np.ndarray, events: np.ndarray, severity: np.ndarray,
                     anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renumber events by their anchor row and sort violations by (event, row).

    Kernels may find events in any order (hash order, group order, thread order); anchors are
    unique per event, so ordering by anchor makes event ids identical across backends.
    """
    if len(rows) == 0:
        return rows.astype(np.int64), events.astype(np.int64), severity.astype(np.float32)
    if _already_canonical(rows, events, anchors):
        return rows.astype(np.int64, copy=False), events.astype(np.int64, copy=False), \
            severity.astype(np.float32, copy=False)
    rank = np.empty(len(anchors), np.int64)
    rank[np.argsort(anchors, kind="stable")] = np.arange(len(anchors))
    ev = rank[events]
    span = int(rows.max()) + 1
    if len(anchors) * span < 2**62:  # one argsort of a combined key: twice as fast as lexsort
        order = np.argsort(ev * span + rows)
    else:
        order = np.lexsort((rows, ev))
    return rows[order].astype(np.int64), ev[order], severity[order].astype(np.float32)


def _already_canonical(rows: np.ndarray, events: np.ndarray, anchors: np.ndarray) -> bool:
    """O(n) check that kernels already emitted canonical order (the common case for streaming
    kernels on sorted input), sparing an O(n log n) sort."""
    if all(type(x) is np.ndarray and x.dtype == np.int64 and x.flags.c_contiguous for x in (rows, events, anchors)):
        from ._kernels._rows_cy import events_canonical  # one native pass (NumPy's takes ~10)

        return events_canonical(rows, events, anchors)
    if len(anchors) > 1 and not (anchors[1:] > anchors[:-1]).all():
        return False
    if events[0] != 0 or not (np.diff(events) >= 0).all() or events[-1] != len(anchors) - 1:
        return False
    same = events[1:] == events[:-1]
    return bool((rows[1:][same] > rows[:-1][same]).all()) and bool((np.diff(events) <= 1).all())


class Assertion:
    """One configured check. Subclasses set ``kind`` and implement :meth:`evaluate`.

    ``name`` identifies the instance in reports (defaults to the kind); ``table`` names the
    input it reads when a suite gets several (default ``"rows"``, the single-table case).
    ``scope`` is ``"row"`` when rows are independent (a scan may stream them batch by batch)
    or ``"group"`` when all rows of a group must be seen together. ``family`` names the kernel
    family its checks run on (``backend="auto"`` goes to the GPU only for families with CuPy
    kernels).
    """

    kind: ClassVar[str] = ""
    scope: ClassVar[str] = "group"
    family: ClassVar[str] = "rows"

    def __init__(self, *, name: str | None = None, table: str = "rows"):
        self.name = name or self.kind
        self.table = table

    def params(self) -> dict[str, Any]:
        """Parameters as given (for repr and reports)."""
        return {}

    def columns(self) -> list[str]:
        """Input columns this assertion needs."""
        return []

    def optional_columns(self) -> list[str]:
        """Columns this assertion reads when the input has them (e.g. ``stream``, ``score``)."""
        return []

    def table_columns(self) -> dict[str, list[str]]:
        """Columns needed per input table name (one table here; several for
        :class:`MultiTableAssertion`)."""
        return {self.table: self.columns()}

    def fingerprint(self) -> str:
        """A stable text that changes whenever what this assertion checks changes.

        ``tripwire scan`` keys its resume manifest on it. The default covers the kind, name,
        table and parameters; subclasses whose behaviour depends on more (e.g. a user function's
        code) extend it.
        """
        return repr([self.kind, self.name, self.table, repr(sorted(self.params().items()))])

    def evaluate(self, table: pa.Table, backend: str) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        named = "" if self.name == self.kind else f", name={self.name!r}"
        return f"{self.kind}({args}{named})"


class MultiTableAssertion(Assertion):
    """An assertion that reads several named tables at once (``points.empty_box`` reads 3D
    boxes and LIDAR points; ``points.agree`` 3D boxes, calibration and camera boxes).

    ``roles`` (class attribute) lists what it reads; ``tables`` maps each role to the name of
    the input table that plays it (default: the role's own name), so ``Suite.check(boxes3d=...,
    points=...)`` routes inputs by name. ``table`` is the first role's table: violation rows
    index it unless the result's ``table`` context column names another table per row.
    Subclasses implement :meth:`evaluate_many`; :meth:`evaluate` (one table) explains what to
    pass instead.
    """

    roles: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, name: str | None = None, tables: dict[str, str] | None = None):
        from .errors import InputError

        tables = dict(tables or {})
        unknown = sorted(set(tables) - set(self.roles))
        if unknown or not all(isinstance(v, str) and v for v in tables.values()):
            raise InputError(f"{self.kind}: tables={tables!r}",
                             expected=f"a dict mapping some of {', '.join(self.roles)} to input table names",
                             fix=f"pass e.g. tables={{{self.roles[0]!r}: 'lidar_boxes'}}")
        self.tables = {role: tables.get(role, role) for role in self.roles}
        super().__init__(name=name, table=self.tables[self.roles[0]])

    def role_columns(self) -> dict[str, list[str]]:
        """Columns needed per role (subclasses)."""
        return {role: [] for role in self.roles}

    def table_columns(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for role, cols in self.role_columns().items():
            have = out.setdefault(self.tables[role], [])
            have.extend(c for c in cols if c not in have)
        return out

    def columns(self) -> list[str]:
        return self.role_columns()[self.roles[0]]

    def fingerprint(self) -> str:
        return repr([super().fingerprint(), sorted(self.tables.items())])

    def evaluate(self, table: pa.Table, backend: str) -> Result:
        """One table is enough when the assertion, as configured, reads one role only
        (``points.empty_box`` given a ``counts`` column)."""
        from .errors import InputError

        if len(self.roles) == 1:
            return self.evaluate_many({self.roles[0]: table}, backend)
        raise InputError(f"{self.name!r} ({self.kind}) reads several tables ({', '.join(self.roles)}) "
                         f"and got one", expected="named tables",
                         fix="check them together: suite.check(" +
                             ", ".join(f"{self.tables[r]}=..." for r in self.roles) + ")")

    def evaluate_many(self, inputs: dict[str, pa.Table], backend: str) -> Result:  # pragma: no cover
        """``inputs`` maps each role to its table."""
        raise NotImplementedError
