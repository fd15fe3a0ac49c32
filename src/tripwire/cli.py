"""The ``tripwire`` command line: ``scan``, ``demo``, ``bench``, ``kinds``.

Errors that tripwire raises on purpose (bad suite file, missing column, unknown backend, missing
path) print one line on stderr, ``tripwire: error: ...``, and exit with status 2; no traceback.
"""
from __future__ import annotations

import inspect
import os
import sys
from typing import Any

import click

from . import __version__
from ._dispatch import BACKENDS
from .errors import SuiteError, TripwireError
from .scan import _ALIASES, FORMATS

__all__ = ["main", "cli"]

EXIT_ERROR = 2


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class _Group(click.Group):
    """Turns tripwire's own errors into one stderr line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (TripwireError, OSError) as exc:
            click.echo(f"tripwire: error: {_one_line(exc)}", err=True)
            ctx.exit(EXIT_ERROR)


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False,
                   width=None if stream.isatty() else 120)


def _fmt_rate(rate: float) -> str:
    if rate == 0:
        return "0"
    return f"{rate:.2%}" if rate >= 1e-4 else f"{rate * 100:.2e}%"


def _summary_table(result) -> Any:
    from rich.table import Table

    t = Table(title="tripwire scan summary", title_justify="left")
    t.add_column("assertion", style="bold")
    t.add_column("kind")
    for c in ("rows", "events", "rate", "max severity", "corrections"):
        t.add_column(c, justify="right")
    for s in result.summary.to_pylist():
        style = "red" if s["events"] else None
        t.add_row(s["assertion"], s["kind"], f"{s['rows']:,}", f"{s['events']:,}", _fmt_rate(s["rate"]),
                  f"{s['max_severity']:.3g}" if s["events"] else "-", f"{s['corrections']:,}", style=style)
    return t


def _print_result(console, result) -> None:
    console.print(_summary_table(result))
    resumed = f", {len(result.skipped)} resumed from an earlier run" if result.skipped else ""
    console.print(f"{len(result.files)} file(s){resumed}: {result.rows:,} rows, {result.events:,} events "
                  f"({result.violations:,} violation rows), {result.corrections:,} corrections; "
                  f"{result.seconds:.2f} s, backend {result.backend}")
    console.print(f"outputs: {result.out_dir}/{{violations,corrections}}/<file>.parquet, "
                  f"summary.parquet, manifest.json", soft_wrap=True)


def _top_table(result, k: int, with_rows: bool) -> Any:
    """The top ``k`` events; ``with_rows`` joins the flagged input rows (reads those files)."""
    from rich.table import Table

    top = result.top(k)
    t = Table(title=f"top {k} events by severity", title_justify="left")
    if top.num_rows == 0:
        return None
    base = ["file", "assertion", "event", "row", "severity"]
    extra: dict[str, list] = {}
    if with_rows:
        import pyarrow as pa
        import pyarrow.dataset as ds

        by_file: dict[str, list[int]] = {}
        files, rows = top.column("file").to_pylist(), top.column("row").to_pylist()
        for i, (f, r) in enumerate(zip(files, rows)):
            by_file.setdefault(f, []).append(i)
        values: list[dict] = [{} for _ in range(top.num_rows)]
        for f, idx in by_file.items():
            info = result.per_file[f]
            src = ds.dataset(info["path"], format=info["format"]).to_table()
            taken = src.take(pa.array([rows[i] for i in idx], pa.int64())).to_pylist()
            for i, rec in zip(idx, taken):
                values[i] = rec
                for c in rec:
                    extra.setdefault(c, [])
        for c in list(extra):
            extra[c] = [v.get(c) for v in values]
            if all(v is None for v in extra[c]):  # e.g. a score column the model never fills
                del extra[c]
    for c in base + list(extra):
        t.add_column(c, justify="left" if c in ("file", "assertion") else "right")
    cols = {c: top.column(c).to_pylist() for c in base}
    for i in range(top.num_rows):
        cells = [str(cols["file"][i]), str(cols["assertion"][i]), str(cols["event"][i]), str(cols["row"][i]),
                 f"{cols['severity'][i]:.3g}"]
        for c, vs in extra.items():
            v = vs[i]
            cells.append("" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v))
        t.add_row(*cells)
    return t


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tripwire")
def cli() -> None:
    """tripwire: fast model assertions over Arrow tables of model outputs."""


_BACKENDS = list(BACKENDS)
_FORMATS = list(FORMATS) + [a for a in _ALIASES if a not in FORMATS]


class _SuiteFile(click.Path):
    """``click.Path(exists=True, dir_okay=False)`` whose failure is tripwire's one-line error
    (``tripwire: error: suite file not found: ...``, exit 2) rather than a usage message."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False)

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            if os.path.isdir(value):
                raise SuiteError(f"suite file not found: {os.fspath(value)!r} is a folder; pass the path of "
                                 f"a .toml suite file") from None
            if os.path.exists(value):
                raise SuiteError(f"suite file {os.fspath(value)!r} cannot be read; check its permissions") from None
            raise SuiteError(f"suite file not found: {os.fspath(value)!r}; pass the path of a .toml suite "
                             f"file") from None


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--suite", "suite_path", required=True, type=_SuiteFile(),
              help="TOML suite file ([[assertion]] tables).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (violations, corrections, manifest.json, summary.parquet).")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default=None,
              help="Input format (default: from each file's extension). Given, every non-hidden file of "
                   "a folder is read in it, whatever its extension.")
@click.option("--backend", type=click.Choice(_BACKENDS), default="auto", show_default=True)
@click.option("--no-resume", is_flag=True, help="Check every file again, ignoring finished ones.")
@click.option("--no-progress", is_flag=True, help="No progress bar (it is off anyway when not a TTY).")
@click.option("--batch-rows", type=click.IntRange(min=1), default=None,
              help="Rows per record batch read (default: TRIPWIRE_SCAN_BATCH_ROWS or 1048576).")
@click.option("--top", "top_k", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also print the N highest-severity events.")
def scan(paths, suite_path, out_dir, fmt, backend, no_resume, no_progress, batch_rows, top_k) -> None:
    """Check a suite over Parquet / Arrow IPC / CSV files or folders (recursively).

    Writes per-file violations and corrections as Parquet under OUT, with a manifest: an
    interrupted scan resumes where it stopped when run again.
    """
    from .scan import scan as run_scan

    try:
        result = run_scan(list(paths), suite_path, out_dir, format=fmt, backend=backend,
                          resume=not no_resume, progress=not no_progress, batch_rows=batch_rows)
    except KeyboardInterrupt:
        click.echo(f"tripwire: interrupted; finished files are kept in {out_dir}: run the same command "
                   f"again to resume", err=True)
        sys.exit(130)
    console = _console()
    _print_result(console, result)
    if top_k:
        t = _top_table(result, top_k, with_rows=False)
        if t is not None:
            console.print(t)


def _data_dir():
    from importlib.resources import files

    return files("tripwire").joinpath("data")


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Keep the outputs here (default: a temporary folder, deleted afterwards).")
@click.option("--backend", type=click.Choice(_BACKENDS), default="auto", show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--top", "top_k", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many of the highest-severity events to print.")
def demo(out_dir, backend, no_progress, top_k) -> None:
    """Scan the bundled real data with the bundled suites.

    TUD-Campus (MOTChallenge, CC BY-NC-SA 3.0): a tracker's output and the human ground truth,
    checked by data/demo_suite.toml. vtest.avi HOG detections (OpenCV's people detector on
    OpenCV's sample video): checked by data/vtest_hog_suite.toml. Three real KITTI LIDAR sweeps
    with a baseline detector's 3D boxes and a synthetic camera: checked by
    data/kitti_lidar_suite.toml. 10 s ECG windows of MIT-BIH records 100 and 101 (ODC-By) and of
    an AF-like rhythm built from their real beats, with injected label flips: checked by
    data/mitbih_ecg_suite.toml. Outputs go to one folder per data set.
    """
    import tempfile
    from importlib.resources import as_file

    from .scan import scan as run_scan

    console = _console()
    runs = [("tud_campus", "demo_suite.toml",
             "real MOTChallenge TUD-Campus pedestrians (CC BY-NC-SA 3.0, see PROVENANCE.md);\n"
             "      tracker.parquet = a tracker's output, gt.parquet = the human ground truth"),
            ("vtest_hog", "vtest_hog_suite.toml",
             "OpenCV's HOG people detector on OpenCV's sample video vtest.avi (see PROVENANCE.md);\n"
             "      real detector output with scores, no track ids")]
    with as_file(_data_dir()) as data, tempfile.TemporaryDirectory(prefix="tripwire-demo-") as tmp:
        data = os.fspath(data)
        for folder, suite_name, about in runs:
            suite_file = os.path.join(data, suite_name)
            console.print(f"tripwire demo: scanning {os.path.join(data, folder)} with {suite_file}")
            console.print(f"data: {about}")
            target = os.path.join(out_dir or tmp, folder)
            result = run_scan([os.path.join(data, folder)], suite_file, target, backend=backend,
                              progress=not no_progress)
            _print_result(console, result)
            for f in result.files:
                counts = ", ".join(f"{s['assertion']} {s['events']}" for s in result.per_file[f]["summary"]
                                   if s["events"])
                console.print(f"  {f}: {result.per_file[f]['rows']:,} rows; events: {counts or 'none'}")
            if top_k:
                t = _top_table(result, top_k, with_rows=True)
                if t is not None:
                    console.print(t)
        _demo_lidar(console, data, backend, top_k, out_dir)
        _demo_ecg(console, data, backend, top_k, out_dir or tmp, no_progress)
        if out_dir is None:
            console.print("(outputs were written to a temporary folder and deleted; pass --out DIR to keep them)")


def _demo_lidar(console, data: str, backend: str, top_k: int, out_dir: str | None) -> None:
    """The LIDAR + camera sample: its assertions read several tables at once, so it is checked
    with Suite.check(boxes3d=..., points=..., calib=..., boxes=...) rather than scanned."""
    import pyarrow.parquet as pq

    from .suite import Suite

    folder = os.path.join(data, "kitti_lidar")
    suite_file = os.path.join(data, "kitti_lidar_suite.toml")
    console.print(f"tripwire demo: checking {folder} with {suite_file}")
    console.print("data: three real KITTI Velodyne sweeps (CC BY-NC-SA 3.0) with a baseline detector's 3D boxes;\n"
                  "      the camera and its boxes are synthetic, with a known perturbed subset (see PROVENANCE.md)")
    tables = {n: pq.read_table(os.path.join(folder, f"{n}.parquet")) for n in ("boxes3d", "points", "calib", "boxes")}
    report = Suite.from_toml(suite_file).check(**tables, backend=backend)
    console.print(f"  {tables['points'].num_rows:,} points, {tables['boxes3d'].num_rows} 3D boxes, "
                  f"{tables['boxes'].num_rows} camera boxes; {report.seconds * 1e3:.1f} ms, backend {report.backend}")
    for s in report.summary().to_pylist():
        console.print(f"  {s['assertion']:<20} {s['events']:>3} events, {s['corrections']:>3} corrections")
    if top_k:
        top = report.top(top_k).select(["assertion", "table", "row", "event", "severity", "frame"])
        for r in top.to_pylist():
            console.print(f"    {r['assertion']:<20} {r['table']:<8} row {r['row']:>3}  event {r['event']:>2}  "
                          f"severity {r['severity']:.3g}  frame {r['frame']}")
    if out_dir is not None:
        target = os.path.join(out_dir, "kitti_lidar")
        os.makedirs(target, exist_ok=True)
        report.to_parquet(os.path.join(target, "violations.parquet"))
        for name in ("boxes3d", "boxes"):
            pq.write_table(report.corrections(table=name), os.path.join(target, f"corrections_{name}.parquet"))


def _demo_ecg(console, data: str, backend: str, top_k: int, out_dir: str, no_progress: bool) -> None:
    """The ECG sample: one ecg table (windows.parquet; the folder also holds the raw records and
    annotations), scanned like any archived log."""
    from .scan import scan as run_scan

    path = os.path.join(data, "mitbih_ecg", "windows.parquet")
    suite_file = os.path.join(data, "mitbih_ecg_suite.toml")
    console.print(f"tripwire demo: scanning {path} with {suite_file}")
    console.print("data: 10 s windows of MIT-BIH records 100 and 101 (real, PhysioNet ODC-By 1.0) labelled by a "
                  "baseline RR classifier;\n      record 100-af: an AF-like rhythm built from real beats, with "
                  "injected A -> N -> A label flips (synthetic, see PROVENANCE.md)")
    result = run_scan([path], suite_file, os.path.join(out_dir, "mitbih_ecg"), backend=backend,
                      progress=not no_progress)
    _print_result(console, result)
    if top_k:
        t = _top_table(result, top_k, with_rows=False)
        if t is not None:
            console.print(t)


def _parse_list(value: str | None, conv, what: str) -> list | None:
    if value is None:
        return None
    out = []
    for part in value.split(","):
        part = part.strip().replace("_", "")
        if not part:
            continue
        try:
            out.append(conv(part))
        except ValueError:
            raise click.BadParameter(f"{part!r} is not {what}") from None
    return out


def _size(text: str) -> int:
    v = float(text) if any(ch in text for ch in "eE.") else int(text)
    if v <= 0 or v != int(v):
        raise ValueError(text)
    return int(v)


@cli.command()
@click.option("--sizes", default=None, help="Comma-separated row counts, e.g. 1000000,10000000 (1e6 works).")
@click.option("--quick", is_flag=True, help="Small sizes and few repeats (a smoke run).")
@click.option("--backends", default=None, help="Comma-separated backends, e.g. cython,numba.")
@click.option("--family", type=click.Choice(["all", "rows", "boxes", "points", "ecg", "monitor"]), default="all",
              show_default=True,
              help="Which benchmarks: the generic row assertions, the box assertions, the LIDAR (points) "
                   "assertions, the ECG assertions, the streaming Monitor, or all of them.")
@click.option("--boxes-per-frame", "densities", default=None,
              help="Box assertions only: comma-separated boxes per frame (default 10,30,100).")
def bench(sizes, quick, backends, family, densities) -> None:
    """Benchmark the kernels against the paper library, vectorized pandas/NumPy and Python loops."""
    size_list = _parse_list(sizes, _size, "a positive row count")
    backend_list = _parse_list(backends, str, "a backend name")
    density_list = _parse_list(densities, _size, "a positive number of boxes per frame")
    try:
        from tripwire import bench_boxes
        from tripwire.bench import run_cli
    except ModuleNotFoundError as exc:
        raise TripwireError(f"tripwire bench needs {exc.name}: install it, e.g. "
                            f"pip install 'tripwire[bench]'") from None
    code = 0
    if family in ("all", "rows"):
        code = run_cli(sizes=size_list, quick=quick, backends=backend_list)
    if family in ("all", "boxes") and code != 2:
        code = max(code, bench_boxes.run_cli(sizes=size_list, quick=quick, backends=backend_list,
                                             densities=tuple(density_list or bench_boxes.DENSITIES)))
    if family in ("all", "points") and code != 2:
        from tripwire import bench_points

        code = max(code, bench_points.run_cli(sizes=size_list, quick=quick, backends=backend_list))
    if family in ("all", "ecg") and code != 2:
        from tripwire import bench_ecg

        code = max(code, bench_ecg.run_cli(sizes=size_list, quick=quick, backends=backend_list))
    if family in ("all", "monitor") and code != 2:
        from tripwire import bench_monitor

        code = max(code, bench_monitor.run_cli(quick=quick))
    sys.exit(code)


def _signature(factory) -> str:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return "?"
    parts = []
    for p in sig.parameters.values():
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return ", ".join(parts)


@cli.command()
def kinds() -> None:
    """List the registered assertion kinds and their parameters (what suite files may name)."""
    from rich.table import Table

    from . import _registry

    t = Table(title="assertion kinds", title_justify="left")
    t.add_column("kind", style="bold", no_wrap=True)
    t.add_column("parameters")
    t.add_column("meaning")
    for kind in _registry.kinds():
        factory = _registry.get(kind)
        doc = inspect.getdoc(getattr(factory, "fn", None) or factory) or ""
        t.add_row(kind, _signature(factory), doc.strip().split("\n\n")[0].replace("\n", " "))
    _console().print(t)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``tripwire``)."""
    cli.main(args=argv, prog_name="tripwire")


if __name__ == "__main__":  # pragma: no cover
    main()
