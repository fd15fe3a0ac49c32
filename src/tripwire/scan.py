"""``tripwire scan``: check a suite over archived files (Parquet, Arrow IPC/Feather, CSV).

How a scan runs:

- **Inputs**: files and folders (searched recursively; hidden names and names starting with
  ``_`` are skipped, as are files whose extension is not a known format). The format is inferred
  from the extension (``.parquet``/``.pq``, ``.arrow``/``.feather``/``.ipc``, ``.csv``/
  ``.csv.gz``/``.tsv``) or forced with ``format=`` (then every non-hidden file of a folder is
  read in that format, whatever its extension). The output folder is never read as input, even
  when it lies inside an input folder. Hive-style partition folders
  (``day=2024-01-01/part-0.parquet``) supply their keys as columns.
- **Projection**: only the columns the suite reads (:meth:`Suite.columns`) are read.
- **Bounded memory**: one file at a time, batch by batch (``batch_rows`` rows, default
  ``tripwire._config.SCAN_BATCH_ROWS``). Assertions with ``scope == "row"`` are checked batch by
  batch. Assertions with ``scope == "group"`` (identifier consistency, time contiguity, ...)
  need every row of a group, so each file's rows (of the columns those assertions read) are
  gathered and checked once per file: for them memory is bounded by the largest file, and a
  group never spans two files. (The streaming ``Monitor`` will lift this.)
- **Outputs** under ``out_dir``, per input file ``REL`` (its path relative to the scan root):
  ``violations/REL.parquet`` (the :class:`~tripwire.Report` violation columns plus ``file``;
  ``row`` indexes rows within that file, ``event`` is unique within that file) and
  ``corrections/REL.parquet`` (``file`` plus the :meth:`Report.corrections` columns; the row
  body holds the columns the suite reads — join on ``file``/``row`` for the rest). Each is
  written to a temporary name, flushed to disk and renamed into place (atomic). ``manifest.json``
  lists the finished files with their size and mtime, the sizes of their outputs and
  per-assertion counts; ``summary.parquet`` aggregates those counts over every file of the scan.
  A file with no rows (a Parquet/IPC file of 0 rows, a header-only or empty CSV) gets empty
  outputs and a manifest entry like any other.
- **Resume**: a rerun with ``resume=True`` skips files the manifest lists with the same size,
  mtime and suite (the suite's :meth:`Assertion.fingerprint` values, user functions' code
  included, and the tripwire version) whose outputs are still there with the recorded sizes; a
  changed file, a changed suite or a missing or truncated output is checked again. An
  interrupted scan loses at most the file it was reading.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import __version__, _config, _dispatch
from . import report as _report
from ._assertion import Assertion, Result
from .errors import ColumnError, InputError, SuiteError, TripwireError
from .report import Report

__all__ = ["scan", "ScanResult", "FORMATS", "SUMMARY_SCHEMA"]

# format -> file name endings (lower case)
FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet", ".pq", ".parq"),
    "ipc": (".arrow", ".feather", ".ipc"),  # IPC *files*; the stream format (.arrows) is not read
    "csv": (".csv", ".csv.gz", ".csv.bz2", ".tsv"),
}
_ALIASES = {"feather": "ipc", "arrow": "ipc", "pq": "parquet"}

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2  # 2: entries record their outputs' sizes

# Report.summary() columns plus ``files`` (how many files each assertion checked)
SUMMARY_SCHEMA = _report.SUMMARY_SCHEMA.insert(2, pa.field("files", pa.int64()))


@dataclass
class ScanResult:
    """What a scan did. ``summary`` aggregates every file of the scan, resumed ones included."""

    out_dir: str
    root: str
    files: list[str]  # every input file, relative to root, in scan order
    scanned: list[str]  # files checked by this run
    skipped: list[str]  # files finished by an earlier run (resumed)
    rows: int  # rows checked, all files
    violations: int  # violation rows, all files
    events: int
    corrections: int
    summary: pa.Table
    seconds: float
    backend: str
    per_file: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def summary_path(self) -> str:
        return os.path.join(self.out_dir, "summary.parquet")

    def violations_path(self, rel: str) -> str:
        return os.path.join(self.out_dir, "violations", rel + ".parquet")

    def corrections_path(self, rel: str) -> str:
        return os.path.join(self.out_dir, "corrections", rel + ".parquet")

    def read_violations(self) -> pa.Table:
        """Every file's violations, concatenated (reads the outputs)."""
        return _read_all([self.violations_path(f) for f in self.files], "violations")

    def read_corrections(self) -> pa.Table:
        """Every file's corrections, concatenated (reads the outputs)."""
        return _read_all([self.corrections_path(f) for f in self.files], "corrections")

    def top(self, k: int = 10) -> pa.Table:
        """The ``k`` highest-severity events over all files (all their rows), highest first."""
        v = self.read_violations()
        if v.num_rows == 0 or k <= 0:
            return v.slice(0, 0)
        files = v.column("file").to_pylist()
        ev = v.column("event").to_numpy()
        sev = v.column("severity").to_numpy().astype(np.float64)
        keys: dict[tuple[str, int], int] = {}
        code = np.fromiter((keys.setdefault((f, int(e)), len(keys)) for f, e in zip(files, ev)),
                           np.int64, len(ev))
        best_sev = np.full(len(keys), -np.inf)
        np.maximum.at(best_sev, code, sev)
        chosen = np.argsort(-best_sev, kind="stable")[:k]
        rank = np.full(len(keys), -1, np.int64)
        rank[chosen] = np.arange(len(chosen))
        keep = np.flatnonzero(rank[code] >= 0)
        order = keep[np.lexsort((v.column("row").to_numpy()[keep], rank[code[keep]]))]
        return v.take(pa.array(order))

    def __repr__(self) -> str:
        return (f"<ScanResult: {len(self.files)} files ({len(self.scanned)} scanned, "
                f"{len(self.skipped)} resumed), {self.rows} rows, {self.events} events, "
                f"{self.corrections} corrections -> {self.out_dir}>")


def _read_all(paths: list[str], what: str = "violations") -> pa.Table:
    import pyarrow.parquet as pq

    read = [(p, pq.read_table(p)) for p in paths if os.path.exists(p)]
    read = [(p, t) for p, t in read if t.num_rows] or read[:1]
    if not read:
        return pa.table({"file": pa.array([], pa.string())})
    try:
        return _report.concat_violations([t for _, t in read])
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _schema_clash(read, exc, what) from None


def _schema_clash(read: list[tuple[str, pa.Table]], exc: Exception, what: str) -> InputError:
    """An InputError naming the column whose type differs between files, and those files."""
    types: dict[str, dict[str, list[str]]] = {}  # column -> type -> files
    for p, t in read:
        rel = t.column("file")[0].as_py() if "file" in t.column_names and t.num_rows else os.path.basename(p)
        for f in t.schema:
            types.setdefault(f.name, {}).setdefault(str(f.type), []).append(rel)
    clash = {c: by_type for c, by_type in types.items() if len(by_type) > 1}
    if not clash:
        return InputError(f"cannot concatenate the per-file {what}: {exc}".replace("\n", " "),
                          expected="outputs whose columns keep one type across files",
                          fix="scan the files with different schemas separately")
    col, by_type = next(iter(clash.items()))
    found = "; ".join(f"{t} in {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}"
                      for t, files in by_type.items())
    return InputError(f"cannot concatenate the per-file {what}: column {col!r} has different types in "
                      f"different input files", expected=f"one type for {col!r} in every file", found=found,
                      fix=f"give {col!r} one type in every file (for CSV, Arrow infers each file's types on "
                          f"its own: make the values consistent or convert the files to Parquet with an "
                          f"explicit schema), or read each file's output on its own with "
                          f"pyarrow.parquet.read_table(result.{what}_path(file))")


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------
def _normalize_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    f = _ALIASES.get(fmt.lower(), fmt.lower())
    if f not in FORMATS:
        raise InputError(f"unknown file format {fmt!r}", expected=f"one of {', '.join(FORMATS)}",
                         fix="pass format='parquet', 'ipc' (Arrow/Feather) or 'csv', or leave it out "
                             "to infer it from the extension")
    return f


def _format_of(path: str) -> str | None:
    low = path.lower()
    for fmt, exts in FORMATS.items():
        if low.endswith(exts):
            return fmt
    return None


def _hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _same_dir(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _discover(paths: Iterable[str | os.PathLike], fmt: str | None,
              out_dir: str | None = None) -> tuple[str, list[tuple[str, str, str]]]:
    """Return (root, [(abs path, rel path, format)]) in a stable order.

    Folders are searched recursively; ``out_dir`` (the scan's output folder) is pruned, so a
    scan whose outputs lie inside an input folder never reads them back as input. With ``fmt``
    given, every non-hidden file of a folder is taken in that format.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    out_real = os.path.normcase(os.path.realpath(out_dir)) if out_dir is not None else None
    found: list[tuple[str, str]] = []  # (abs path, format)
    anchors = []
    for p in paths:
        ap = os.path.abspath(os.fspath(p))
        if os.path.isdir(ap):
            if out_dir is not None and _same_dir(ap, out_dir):
                raise InputError(f"the output folder {os.fspath(p)!r} is also a scan input",
                                 expected="--out a folder other than the input folders",
                                 fix="pass another --out, e.g. a sibling folder such as "
                                     f"{os.path.join(os.path.dirname(ap), os.path.basename(ap) + '_tripwire')!r}")
            anchors.append(ap)
            for dirpath, dirnames, filenames in os.walk(ap):
                dirnames[:] = sorted(d for d in dirnames if not _hidden(d) and not (
                    out_real is not None
                    and os.path.normcase(os.path.realpath(os.path.join(dirpath, d))) == out_real))
                for name in sorted(filenames):
                    if _hidden(name):
                        continue
                    f = fmt or _format_of(name)
                    if f is not None:
                        found.append((os.path.join(dirpath, name), f))
        elif os.path.isfile(ap):
            anchors.append(os.path.dirname(ap))
            f = fmt or _format_of(ap)
            if f is None:
                raise InputError(f"cannot tell the format of {os.fspath(p)!r} from its name",
                                 expected=f"a name ending in {', '.join(e for x in FORMATS.values() for e in x)}",
                                 fix="pass --format parquet|ipc|csv")
            found.append((ap, f))
        else:
            raise InputError(f"scan input {os.fspath(p)!r} does not exist",
                             expected="a file or folder of Parquet, Arrow IPC or CSV files",
                             fix="check the path")
    if not anchors:
        raise InputError("scan got no input paths", expected="at least one file or folder", fix="pass PATH...")
    root = os.path.commonpath(anchors)
    seen, files = set(), []
    for ap, f in found:
        if ap not in seen:
            seen.add(ap)
            files.append((ap, os.path.relpath(ap, root).replace(os.sep, "/"), f))
    if not files:
        where = ", ".join(os.fspath(p) for p in paths)
        if fmt is not None:
            raise InputError(f"no files under {where}", expected="non-hidden files (names not starting "
                             "with '.' or '_') outside the output folder", fix="check the path")
        raise InputError(f"no Parquet, Arrow IPC or CSV files under {where}",
                         expected=f"files ending in {', '.join(e for x in FORMATS.values() for e in x)}",
                         fix="check the path, or pass --format for files without a known extension")
    return root, files


def _dataset(path: str, fmt: str, root: str):
    """The file as a pyarrow dataset; None for a CSV file with no content at all (0 bytes)."""
    import pyarrow.dataset as ds

    file_format: Any = fmt
    if path.lower().endswith(".tsv"):
        import pyarrow.csv as pcsv

        file_format = ds.CsvFileFormat(parse_options=pcsv.ParseOptions(delimiter="\t"))
    try:
        return ds.dataset([path], format=file_format, partitioning="hive", partition_base_dir=root)
    except (pa.ArrowException, OSError) as exc:
        if fmt == "csv" and isinstance(exc, pa.ArrowInvalid) and "Empty CSV file" in str(exc):
            return None  # no header, no rows (e.g. a zero-byte or compressed-empty file)
        raise InputError(f"cannot read {path!r} as {fmt}: {exc}".replace("\n", " "),
                         expected=f"a valid {fmt} file", fix="check the file, or pass the right --format") from None


def _projection(suite, schema: pa.Schema, rel: str) -> list[str] | None:
    needed = _needed_columns(suite)
    if needed is None:  # e.g. rows.check with a pyarrow Expression: its columns are unknown
        return None
    for c in needed:
        if schema.get_field_index(c) < 0:
            users = [a.name for a in suite.assertions if c in a.columns()]
            raise ColumnError(c, f"{rel}: column {c!r} (read by {', '.join(users)}) is not in the file",
                              expected=f"a column named {c!r}", found=", ".join(schema.names) or "(no columns)",
                              fix="check the suite's column parameters against the file's columns")
    optional = [c for a in suite.assertions for c in a.optional_columns()]
    return needed + [c for c in dict.fromkeys(optional) if c not in needed and schema.get_field_index(c) >= 0]


# ----------------------------------------------------------------------------------------------
# Merging batch results
# ----------------------------------------------------------------------------------------------
class _Acc:
    """One assertion's results over the batches of one file, re-based to file row indices."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.events: list[np.ndarray] = []
        self.sev: list[np.ndarray] = []
        self.ctx: list[tuple[int, dict[str, pa.Array]]] = []
        self.n_checked = 0
        self.n_events = 0
        self.n_corrections = 0  # the merged result carries no corrections: they are written per batch

    def add(self, r: Result, offset: int) -> None:
        n = len(r.rows)
        self.n_corrections += sum(c.count() for c in r.correction_list())
        self.rows.append(np.asarray(r.rows, np.int64) + offset)
        self.events.append(np.asarray(r.events, np.int64) + self.n_events)
        self.sev.append(np.asarray(r.severity, np.float32))
        self.ctx.append((n, dict(r.context_arrays())))
        self.n_checked += r.n_rows_checked
        self.n_events += r.n_events

    def result(self) -> Result:
        if not self.rows:
            return Result.empty(self.n_checked)
        types: dict[str, pa.DataType] = {}
        for _, ctx in self.ctx:
            for k, v in ctx.items():
                types.setdefault(k, v.type)
        context = {}
        for k, t in types.items():
            parts = []
            for n, ctx in self.ctx:
                if n == 0:
                    continue
                v = ctx.get(k)
                if v is None:
                    v = pa.nulls(n, t)
                elif isinstance(v, pa.ChunkedArray):
                    v = v.combine_chunks()
                parts.append(v.cast(t) if v.type != t else v)
            context[k] = pa.concat_arrays(parts) if parts else pa.array([], t)
        return Result(np.concatenate(self.rows), np.concatenate(self.events), np.concatenate(self.sev),
                      self.n_checked, context)


def _suite_key(suite) -> str:
    spec = [__version__] + [a.fingerprint() for a in suite.assertions]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def _fsync_dir(path: str) -> None:
    """Make a rename in ``path`` durable where the platform allows it (not on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_parquet(table: pa.Table, path: str) -> None:
    import pyarrow.parquet as pq

    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(path))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(obj: Any, path: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(path) or ".")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _with_file(table: pa.Table, rel: str) -> pa.Table:
    return table.add_column(0, "file", pa.array([rel] * table.num_rows, pa.string()))


# ----------------------------------------------------------------------------------------------
# One file
# ----------------------------------------------------------------------------------------------
def _batches(dataset, columns, batch_rows: int, rel: str, fmt: str = "") -> Iterator[pa.RecordBatch]:
    try:
        yield from dataset.to_batches(columns=columns, batch_size=batch_rows, batch_readahead=2,
                                      fragment_readahead=1)
    except pa.ArrowException as exc:
        text = str(exc).replace("\n", " ")
        if fmt == "csv" and "conversion error" in text.lower():
            types = ", ".join(f"{f.name}: {f.type}" for f in dataset.schema if columns is None or f.name in columns)
            raise InputError(f"{rel}: cannot read: {text}. CSV column types are inferred from the first block of "
                             f"the file (about 1 MB of rows), so a value of another type further down fails "
                             f"mid-file (types inferred: {types})",
                             expected="every value of a CSV column parses as the type its first rows suggest",
                             fix="clean the column so every value has one type, or convert the file to Parquet "
                                 "with the column types declared (e.g. pyarrow.csv.read_csv(path, "
                                 "convert_options=pyarrow.csv.ConvertOptions(column_types={'col': pa.string()})) "
                                 "then pyarrow.parquet.write_table) and scan that") from None
        raise InputError(f"{rel}: cannot read: {text}",
                         expected="a readable file whose columns keep one type",
                         fix="check the file (for CSV, inconsistent types across rows cause this)") from None


def _needed_columns(suite) -> list[str] | None:
    """The columns the suite reads, in suite order; None when some assertion's are unknown."""
    needed: list[str] = []
    for a in suite.assertions:
        cols = a.columns()
        if not cols:
            return None
        needed.extend(c for c in cols if c not in needed)
    return needed


def _empty_outputs(suite, schema: pa.Schema, rel: str) -> tuple[pa.Table, pa.Table, list[dict], int, set]:
    """The outputs of a file with no rows: empty violations and corrections (with their columns),
    and a summary of 0 rows checked per assertion. Nothing is evaluated: a header-only CSV has
    columns typed null, which assertions would refuse although there is nothing to check."""
    report = Report([(a, Result.empty(0)) for a in suite.assertions], {"rows": schema.empty_table()}, "", 0.0)
    return (_with_file(report.violations, rel), _with_file(report.corrections(), rel),
            report.summary().to_pylist(), 0, set())


def _scan_file(suite, path: str, rel: str, fmt: str, root: str, backend: str, batch_rows: int,
               on_rows) -> tuple[pa.Table, pa.Table, list[dict], int, set]:
    dataset = _dataset(path, fmt, root)
    if dataset is None:  # an empty CSV: no header, no rows
        return _empty_outputs(suite, pa.schema([(c, pa.null()) for c in _needed_columns(suite) or []]), rel)
    columns = _projection(suite, dataset.schema, rel)
    row_scope = [a for a in suite.assertions if a.scope == "row"]
    group_scope = [a for a in suite.assertions if a.scope != "row"]
    acc = {a.name: _Acc() for a in row_scope}
    corr_parts: list[tuple[int, pa.Table]] = []
    order = {a.name: i for i, a in enumerate(suite.assertions)}
    kept: list[pa.RecordBatch] = []
    used: set[str] = set()
    offset = 0
    schema = None
    for batch in _batches(dataset, columns, batch_rows, rel, fmt):
        schema = batch.schema
        n = batch.num_rows
        if n == 0:
            continue
        if group_scope:
            kept.append(batch)  # the projected columns: group assertions and corrections read them
        if row_scope:
            table = pa.Table.from_batches([batch])
            be = _dispatch.resolve(backend, n)
            used.add(be)
            results = []
            for a in row_scope:
                r = _evaluate(a, table, be, rel)
                acc[a.name].add(r, offset)
                results.append((a, r))
            _collect_corrections(results, table, offset, order, corr_parts)
        offset += n
        on_rows(n)
    if schema is None:
        schema = dataset.schema if columns is None else pa.schema([dataset.schema.field(c) for c in columns])
    if offset == 0:
        return _empty_outputs(suite, schema, rel)
    results: dict[str, Result] = {name: a.result() for name, a in acc.items()}
    if group_scope:
        whole = pa.Table.from_batches(kept, schema=schema)
        kept.clear()
        be = _dispatch.resolve(backend, whole.num_rows)
        used.add(be)
        gres = []
        for a in group_scope:
            r = _evaluate(a, whole, be, rel)
            results[a.name] = r
            gres.append((a, r))
        _collect_corrections(gres, whole, 0, order, corr_parts)
        del whole
    ordered = [(a, results[a.name]) for a in suite.assertions]
    report = Report(ordered, {"rows": schema.empty_table()}, "+".join(sorted(used)), 0.0)
    violations = _with_file(report.violations, rel)
    corr_parts.sort(key=lambda p: p[0])  # suite order; batch order within an assertion
    if corr_parts:
        corrections = pa.concat_tables([t for _, t in corr_parts], promote_options="permissive")
    else:
        corrections = Report([], {"rows": schema.empty_table()}, "", 0.0).corrections()
    corrections = _with_file(corrections, rel)
    summary = report.summary().to_pylist()
    for s in summary:  # row-scope results were merged without their corrections: count them here
        if s["assertion"] in acc:
            s["corrections"] = acc[s["assertion"]].n_corrections
    return violations, corrections, summary, offset, used


def _evaluate(a: Assertion, table: pa.Table, backend: str, rel: str) -> Result:
    try:
        return a.evaluate(table, backend)
    except TripwireError as exc:
        raise _prefixed(exc, rel) from None


def _prefixed(exc: TripwireError, rel: str) -> TripwireError:
    """The same error (same class and attributes), its message prefixed with the file."""
    new = type(exc).__new__(type(exc))
    new.__dict__.update(getattr(exc, "__dict__", {}))
    new.args = (f"{rel}: {exc}",)
    return new


def _collect_corrections(results, table: pa.Table, offset: int, order: dict[str, int],
                         out: list[tuple[int, pa.Table]]) -> None:
    for a, r in results:
        if not r.correction_list():
            continue
        c = Report([(a, r)], {"rows": table}, "", 0.0).corrections()
        if offset and c.num_rows:
            i = c.schema.get_field_index("row")
            c = c.set_column(i, "row", pc.add(c.column("row"), pa.scalar(offset, pa.int64())))
        out.append((order[a.name], c))


# ----------------------------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------------------------
def _aggregate(suite, per_file: dict[str, dict[str, Any]], files: list[str]) -> pa.Table:
    rows = []
    for a in suite.assertions:
        agg = {"assertion": a.name, "kind": a.kind, "files": 0, "rows": 0, "violations": 0, "events": 0,
               "max_severity": 0.0, "corrections": 0}
        for f in files:
            for s in per_file[f]["summary"]:
                if s["assertion"] == a.name:
                    agg["files"] += 1
                    for k in ("rows", "violations", "events", "corrections"):
                        agg[k] += int(s[k])
                    agg["max_severity"] = max(agg["max_severity"], float(s["max_severity"]))
        agg["rate"] = agg["events"] / agg["rows"] if agg["rows"] else 0.0
        rows.append(agg)
    return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)


# ----------------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------------
class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def rows(self, n: int) -> None:
        pass

    def file_started(self, rel: str) -> None:
        pass

    def file_done(self) -> None:
        pass


class _RichProgress(_NoProgress):
    def __init__(self, n_files: int, total_rows: int | None, console) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
            MofNCompleteColumn(), TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=console, transient=False)
        self.t_files = self.progress.add_task("files", total=n_files, note="")
        self.t_rows = self.progress.add_task("rows ", total=total_rows, note="")

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def rows(self, n: int) -> None:
        self.progress.advance(self.t_rows, n)

    def file_started(self, rel: str) -> None:
        self.progress.update(self.t_files, note=rel if len(rel) < 48 else "…" + rel[-47:])

    def file_done(self) -> None:
        self.progress.advance(self.t_files, 1)


def _count_rows(files: list[tuple[str, str, str]]) -> int | None:
    """Total rows when cheap (Parquet footers); None when any file would need a full read."""
    import pyarrow.parquet as pq

    total = 0
    for ap, _, fmt in files:
        if fmt != "parquet":
            return None
        try:
            total += pq.ParquetFile(ap).metadata.num_rows
        except (pa.ArrowException, OSError):
            return None
    return total


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------
def scan(paths: str | os.PathLike | Iterable[str | os.PathLike], suite, out_dir: str | os.PathLike, *,
         format: str | None = None, backend: str = "auto", resume: bool = True, progress: bool = True,
         batch_rows: int | None = None) -> ScanResult:
    """Check ``suite`` over every Parquet / Arrow IPC / CSV file under ``paths``.

    ``suite`` is a :class:`~tripwire.Suite` or the path of a TOML suite file. Writes per-file
    violations and corrections, ``manifest.json`` and ``summary.parquet`` under ``out_dir``
    (see the module docstring) and returns a :class:`ScanResult`. ``resume=False`` checks every
    file again. ``progress`` shows a rich progress bar on stderr when it is a terminal.
    """
    from .suite import Suite

    t0 = time.perf_counter()
    if isinstance(suite, (str, os.PathLike)):
        suite = Suite.from_toml(suite)
    if not isinstance(suite, Suite):
        raise InputError(f"scan(suite=...) got {type(suite).__name__}", expected="a tripwire.Suite or a "
                         "suite file path", fix="pass Suite([...]) or 'suite.toml'")
    # each file is the one input of every assertion, as in Suite.check(table): the assertions'
    # default table names (rows, boxes, ...) only route named inputs of multi-table checks
    fmt = _normalize_format(format)
    batch_rows = int(batch_rows or _config.SCAN_BATCH_ROWS)
    if batch_rows <= 0:
        raise InputError(f"batch_rows={batch_rows}", expected="a positive integer", fix="pass e.g. 1048576")
    _dispatch.resolve(backend)  # validate before any work
    out_dir = os.path.abspath(os.fspath(out_dir))
    root, files = _discover(paths, fmt, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, MANIFEST)
    key = _suite_key(suite)
    manifest = {"version": MANIFEST_VERSION, "suite": key, "root": root, "files": {}}
    if resume and os.path.exists(manifest_path):
        try:
            with open(manifest_path, encoding="utf-8") as fh:
                old = json.load(fh)
        except (OSError, ValueError):
            old = None  # unreadable manifest: redo everything (outputs are overwritten atomically)
        if isinstance(old, dict) and old.get("version") == MANIFEST_VERSION and old.get("suite") == key:
            manifest["files"] = dict(old.get("files", {}))

    def stat(ap: str) -> dict[str, int]:
        st = os.stat(ap)
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def outputs(rel: str) -> dict[str, str]:
        return {kind: os.path.join(out_dir, kind, rel + ".parquet") for kind in ("violations", "corrections")}

    def sizes(rel: str) -> dict[str, int] | None:
        try:
            return {kind: os.path.getsize(p) for kind, p in outputs(rel).items()}
        except OSError:
            return None

    todo, skipped = [], []
    for ap, rel, f in files:
        entry = manifest["files"].get(rel)
        if entry is not None and entry.get("path") == ap and entry.get("stat") == stat(ap) \
                and entry.get("outputs") is not None and sizes(rel) == entry.get("outputs"):
            skipped.append(rel)
        else:
            todo.append((ap, rel, f))

    show = progress and sys.stderr.isatty()
    if show:
        from rich.console import Console

        # only what this run will read: resumed files are neither counted nor shown as done
        bar: _NoProgress = _RichProgress(len(todo), _count_rows(todo), Console(stderr=True))
    else:
        bar = _NoProgress()
    used: set[str] = set()
    scanned = []
    with bar:
        for ap, rel, f in todo:
            bar.file_started(rel)
            before = stat(ap)
            violations, corrections, summary, n_rows, be = _scan_file(
                suite, ap, rel, f, root, backend, batch_rows, bar.rows)
            used |= be
            paths_out = outputs(rel)
            _write_parquet(violations, paths_out["violations"])
            _write_parquet(corrections, paths_out["corrections"])
            manifest["files"][rel] = {"path": ap, "format": f, "stat": before, "rows": n_rows,
                                      "outputs": sizes(rel), "summary": summary}
            _write_json(manifest, manifest_path)
            scanned.append(rel)
            bar.file_done()
    if not todo:
        _write_json(manifest, manifest_path)
    rels = [rel for _, rel, _ in files]
    summary = _aggregate(suite, manifest["files"], rels)
    _write_parquet(summary, os.path.join(out_dir, "summary.parquet"))
    totals = {k: sum(summary.column(k).to_pylist()) for k in ("violations", "events", "corrections")}
    return ScanResult(
        out_dir=out_dir, root=root, files=rels, scanned=scanned, skipped=skipped,
        rows=sum(int(manifest["files"][r]["rows"]) for r in rels), violations=totals["violations"],
        events=totals["events"], corrections=totals["corrections"], summary=summary,
        seconds=time.perf_counter() - t0, backend="+".join(sorted(used)) or _dispatch.resolve(backend),
        per_file={r: manifest["files"][r] for r in rels})
