"""``Report``: the violations and weak labels of one ``Suite.check``.

Violations table columns (one row per flagged input row):

=============  ===========  ====================================================================
``assertion``  string       the assertion's name in the suite
``kind``       string       its registry kind (``rows.consistent``, ...)
``table``      string       which input table ``row`` indexes (``rows`` for single-table input)
``row``        int64        row index into that table (0-based, in input order)
``event``      int64        rows of one violation share it; unique across the report
``severity``   float32      > 0; larger = more likely wrong
``key``        string       context: the identifier value (null where the assertion has none)
=============  ===========  ====================================================================

Other modalities add their own context columns (``stream``, ``frame``, ``record``) with fixed
types, so reports of different suites concatenate.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ._assertion import Assertion, Result
from .errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["Report", "VIOLATION_SCHEMA", "SUMMARY_SCHEMA", "concat_violations"]

VIOLATION_SCHEMA = pa.schema([
    ("assertion", pa.string()), ("kind", pa.string()), ("table", pa.string()),
    ("row", pa.int64()), ("event", pa.int64()), ("severity", pa.float32()), ("key", pa.string()),
])

# Report.summary() columns (tripwire.scan's summary adds ``files`` after ``kind``)
SUMMARY_SCHEMA = pa.schema([
    ("assertion", pa.string()), ("kind", pa.string()), ("rows", pa.int64()),
    ("violations", pa.int64()), ("events", pa.int64()), ("rate", pa.float64()),
    ("max_severity", pa.float64()), ("corrections", pa.int64()),
])


class Report:
    # set on the empty report a Monitor returns for a batch it rejected: the reason label and
    # the error message
    rejected: str | None = None
    error: str | None = None
    # set on a Monitor's report of an accepted batch: the stream row number of the batch's
    # first row (``row`` - ``first_row`` indexes ``inputs["rows"]``)
    first_row: int | None = None

    def __init__(self, results: list[tuple[Assertion, Result]], inputs: dict[str, pa.Table],
                 backend: str, seconds: float):
        self.results = results
        self.inputs = inputs
        self.backend = backend
        self.seconds = seconds
        self._violations: pa.Table | None = None

    # ------------------------------------------------------------------ violations
    @property
    def violations(self) -> pa.Table:
        if self._violations is None:
            parts, offset = [], 0
            for a, r in self.results:
                n = len(r.rows)
                ctx = r.context_arrays()
                cols = {
                    "assertion": pa.array([a.name] * n, pa.string()),
                    "kind": pa.array([a.kind] * n, pa.string()),
                    # an assertion over several tables names each row's table in its context
                    "table": ctx["table"] if "table" in ctx else
                    pa.array([a.table if len(self.inputs) > 1 else next(iter(self.inputs), a.table)] * n,
                             pa.string()),
                    "row": pa.array(r.rows, pa.int64()),
                    "event": pa.array(r.events + offset, pa.int64()),
                    "severity": pa.array(r.severity, pa.float32()),
                    "key": ctx.get("key", pa.nulls(n, pa.string())),
                }
                extra = {k: v for k, v in ctx.items() if k not in cols}
                parts.append(pa.table({**cols, **extra}))
                offset += r.n_events
            if not parts:
                self._violations = VIOLATION_SCHEMA.empty_table()
            else:
                self._violations = pa.concat_tables(parts, promote_options="permissive")
        return self._violations

    def __len__(self) -> int:
        return sum(len(r.rows) for _, r in self.results)

    @property
    def n_events(self) -> int:
        return sum(r.n_events for _, r in self.results)

    def top(self, k: int = 10) -> pa.Table:
        """The ``k`` highest-severity events (all their rows), highest first.

        Ties keep suite order, then event order.
        """
        v = self.violations
        if v.num_rows == 0 or k <= 0:
            return v.slice(0, 0)
        ev = v.column("event").to_numpy()
        sev = v.column("severity").to_numpy()
        # one severity per event: its maximum (rows of an event usually share it)
        n_ev = int(ev.max()) + 1
        ev_sev = np.full(n_ev, -np.inf, np.float64)
        np.maximum.at(ev_sev, ev, sev)
        best = np.argsort(-ev_sev, kind="stable")[:k]
        rank = np.full(n_ev, -1, np.int64)
        rank[best] = np.arange(len(best))
        keep = np.flatnonzero(rank[ev] >= 0)
        order = keep[np.lexsort((v.column("row").to_numpy()[keep], rank[ev[keep]]))]
        return v.take(pa.array(order))

    # ------------------------------------------------------------------ summary
    def summary(self) -> pa.Table:
        """Counts and rates per assertion, in suite order."""
        rows = []
        for a, r in self.results:
            n_corr = sum(c.count() for c in r.correction_list())
            rows.append({
                "assertion": a.name, "kind": a.kind, "rows": r.n_rows_checked,
                "violations": len(r.rows), "events": r.n_events,
                "rate": (r.n_events / r.n_rows_checked) if r.n_rows_checked else 0.0,
                "max_severity": float(r.severity.max()) if len(r.severity) else 0.0,
                "corrections": n_corr,
            })
        return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)

    # ------------------------------------------------------------------ corrections
    def _table_name(self, table: str | None) -> str:
        if table is not None:
            if table not in self.inputs:
                raise InputError(f"no input table {table!r} in this report",
                                 expected=f"one of {', '.join(self.inputs)}", fix="pass one of those names")
            return table
        if len(self.inputs) == 1:
            return next(iter(self.inputs))
        raise InputError("this report checked several tables", expected=f"table= one of {', '.join(self.inputs)}",
                         fix="pass table='<name>'")

    def _corrections_for(self, name: str):
        single = len(self.inputs) == 1
        for a, r in self.results:
            tables = getattr(a, "tables", None)  # an assertion over several tables may correct any
            if single or a.table == name or (tables is not None and name in tables.values()):
                for c in r.correction_list():
                    if single or (c.table or a.table) == name:
                        yield a, c

    def corrections(self, table: str | None = None) -> pa.Table:
        """Proposed weak labels: one row per corrected input row, holding the corrected row.

        Columns: ``source_assertion``, ``action`` (``relabel`` / ``remove`` / ``add``), ``row``
        (index into the input; null for ``add``), ``column`` (the relabelled column), then the
        input's columns with the corrected values.
        """
        name = self._table_name(table)
        base = self.inputs[name]
        parts = []
        for a, c in self._corrections_for(name):
            if c.action == "add":
                body = c.values
                rows = pa.nulls(body.num_rows, pa.int64())
            else:
                rows = pa.array(c.rows, pa.int64())
                body = base.take(rows)
                if c.action == "relabel":
                    new = base.column(c.column).take(pa.array(c.source_rows, pa.int64())) \
                        if c.values is None else c.values
                    body = body.set_column(body.schema.get_field_index(c.column), c.column, new)
            n = body.num_rows
            head = pa.table({
                "source_assertion": pa.array([a.name] * n, pa.string()),
                "action": pa.array([c.action] * n, pa.string()),
                "row": rows,
                "column": pa.array([c.column] * n, pa.string()),
            })
            parts.append(pa.Table.from_arrays(head.columns + body.columns,
                                              names=head.column_names + body.column_names))
        if not parts:
            head = pa.schema([("source_assertion", pa.string()), ("action", pa.string()),
                              ("row", pa.int64()), ("column", pa.string())])
            return pa.schema(list(head) + list(base.schema)).empty_table()
        return pa.concat_tables(parts, promote_options="permissive")

    def apply(self, data: Any = None, *, table: str | None = None) -> pa.Table:
        """The input with every correction applied: the weak-labelled table.

        Corrections apply in suite order (a later relabel of the same cell wins); removed rows
        are dropped last; added rows are appended at the end. ``data`` defaults to the checked
        input; pass another table of the same rows (e.g. with more columns) to label that.
        """
        from ._arrow import as_table

        name = self._table_name(table)
        out = self.inputs[name] if data is None else as_table(data)
        if out.num_rows != self.inputs[name].num_rows:
            raise InputError("apply(data): data has a different number of rows than the checked input",
                             expected=f"{self.inputs[name].num_rows} rows", found=f"{out.num_rows} rows",
                             fix="pass the same table that was checked")
        n = out.num_rows
        drop = np.zeros(n, bool)
        added = []
        src = out  # relabels copy values of the input as checked (what corrections() shows)
        for _, c in self._corrections_for(name):
            if c.action == "relabel":
                i = out.schema.get_field_index(c.column)
                if c.values is None:
                    merged = pa.chunked_array(out.column(i).chunks + src.column(c.column).chunks,
                                              out.column(i).type)
                    idx = np.arange(n, dtype=np.int64)
                    idx[c.rows] = n + c.source_rows
                    new = merged.take(pa.array(idx))
                else:
                    merged = pa.chunked_array(out.column(i).chunks + [pa.array(c.values, out.column(i).type)])
                    idx = np.arange(n, dtype=np.int64)
                    idx[c.rows] = n + np.arange(len(c.rows))
                    new = merged.take(pa.array(idx))
                out = out.set_column(i, c.column, new)
            elif c.action == "remove":
                drop[c.rows] = True
            elif c.action == "add":
                added.append(c.values.select(out.column_names).cast(out.schema))
        if drop.any():
            out = out.filter(pa.array(~drop))
        if added:
            out = pa.concat_tables([out, *added])
        return out

    # ------------------------------------------------------------------ export
    def to_pandas(self) -> "pandas.DataFrame":
        return self.violations.to_pandas()

    def to_parquet(self, path: str, *, what: str = "violations") -> None:
        """Write violations (default), ``what="corrections"`` or ``what="summary"`` as Parquet."""
        import pyarrow.parquet as pq

        tables = {"violations": lambda: self.violations, "corrections": self.corrections,
                  "summary": self.summary}
        if what not in tables:
            raise InputError(f"to_parquet(what={what!r})", expected="violations, corrections or summary",
                             fix="pass one of those")
        pq.write_table(tables[what](), path)

    def to_html(self, k: int = 10) -> str:
        def table_html(t: pa.Table) -> str:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in t.column_names)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row.values()) + "</tr>"
                           for row in t.to_pylist())
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

        return (f"<div><b>tripwire report</b>: {len(self)} violation rows in {self.n_events} events "
                f"({self.backend}, {self.seconds * 1e3:.1f} ms)"
                f"{table_html(self.summary())}<p>top {k} events</p>{table_html(self.top(k))}</div>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        lines = [f"<Report: {len(self)} violation rows, {self.n_events} events, backend={self.backend}, "
                 f"{self.seconds * 1e3:.2f} ms>"]
        for s in self.summary().to_pylist():
            lines.append(f"  {s['assertion']:<28} {s['events']:>8} events / {s['rows']:>10} rows "
                         f"(rate {s['rate']:.4f}, max severity {s['max_severity']:.3g})")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def concat_violations(tables: list[pa.Table]) -> pa.Table:
    """Concatenate violation tables of several reports (schemas are promoted)."""
    if not tables:
        return VIOLATION_SCHEMA.empty_table()
    return pa.concat_tables(tables, promote_options="permissive")

