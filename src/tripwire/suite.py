"""``Suite``: a list of assertions checked together over one or several named tables."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any, Iterable

from . import _arrow, _dispatch, _registry
from ._assertion import Assertion, MultiTableAssertion
from .errors import InputError, SuiteError
from .report import Report

__all__ = ["Suite"]


class Suite:
    """Assertions to check together.

    ``Suite([...]).check(table)`` checks one table; ``check(boxes=..., points=...)`` checks named
    tables, each assertion reading the table its ``table=`` names. Names must be unique within a
    suite (pass ``name=`` to tell two instances of one kind apart).
    """

    def __init__(self, assertions: Iterable[Assertion]):
        self.assertions = list(assertions)
        for a in self.assertions:
            if not isinstance(a, Assertion):
                raise SuiteError(f"Suite holds assertions, got {type(a).__name__} {a!r}; "
                                 f"build one, e.g. tw.rows.consistent(id='track', attr='cls')")
        dup = [n for n, c in Counter(a.name for a in self.assertions).items() if c > 1]
        if dup:
            raise SuiteError(f"duplicate assertion name(s) in suite: {', '.join(dup)}; "
                             f"give each a distinct name=")

    @classmethod
    def from_toml(cls, path_or_text: str) -> "Suite":
        """Load a suite from a TOML file (or TOML text). See README 'Suite files'."""
        from .suite_toml import load

        return load(path_or_text)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> "Suite":
        from .suite_toml import from_dict

        return from_dict(spec)

    def __iter__(self):
        return iter(self.assertions)

    def __len__(self) -> int:
        return len(self.assertions)

    def __repr__(self) -> str:
        return "Suite([" + ", ".join(map(repr, self.assertions)) + "])"

    def columns(self) -> dict[str, list[str]]:
        """Columns each input table needs (for projection pushdown in scans)."""
        out: dict[str, list[str]] = {}
        for a in self.assertions:
            for table, needed in a.table_columns().items():
                cols = out.setdefault(table, [])
                cols.extend(c for c in needed if c not in cols)
        return out

    def check(self, data: Any = None, /, *, backend: str = "auto", **tables: Any) -> Report:
        """Check every assertion and return a :class:`~tripwire.report.Report`.

        ``data`` is one table (pyarrow Table/RecordBatch/RecordBatchReader, or anything with
        ``__arrow_c_stream__`` such as pandas or polars); named ``tables`` are for suites that
        read several. ``backend``: ``auto`` (Cython on the CPU), ``cython``, ``numba``, ``cupy``.
        """
        if data is not None and tables:
            raise InputError("check() got a positional table and named tables",
                             expected="either check(table) or check(name=table, ...)",
                             fix="name every table")
        inputs = {"rows": _arrow.as_table(data)} if data is not None else \
            {k: _arrow.as_table(v) for k, v in tables.items()}
        if not inputs:
            raise InputError("check() got no data", expected="a table", fix="pass suite.check(table)")
        _dispatch.resolve(backend)  # validate the name before any work
        results = []
        t0 = time.perf_counter()
        used = set()
        for a in self.assertions:
            if isinstance(a, MultiTableAssertion) and data is None:
                named = {role: self._input_for(a, inputs, a.tables[role], many=True) for role in a.roles}
                be = _dispatch.resolve(backend, named[a.roles[0]].num_rows, a.family)
                used.add(be)
                results.append((a, a.evaluate_many(named, be)))
                continue
            table = self._input_for(a, inputs)
            be = _dispatch.resolve(backend, table.num_rows, a.family)
            used.add(be)
            results.append((a, a.evaluate(table, be)))
        seconds = time.perf_counter() - t0
        return Report(results, inputs, "+".join(sorted(used)) or _dispatch.resolve(backend), seconds)

    @staticmethod
    def _input_for(a: Assertion, inputs: dict, name: str | None = None, many: bool = False) -> Any:
        name = a.table if name is None else name
        if len(inputs) == 1 and not many:
            return next(iter(inputs.values()))
        if name not in inputs:
            raise InputError(f"assertion {a.name!r} reads table {name!r}, which was not given",
                             expected=f"a table named {name!r}", found=", ".join(inputs),
                             fix=f"pass check({name}=...)")
        return inputs[name]


def build(kind: str, **params: Any) -> Assertion:
    """Build a registered assertion by kind name (what TOML suites do)."""
    return _registry.build(kind, params)
