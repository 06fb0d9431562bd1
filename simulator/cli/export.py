"""`fleetsim export`: a run folder as Chrome trace-event JSON (Perfetto, chrome://tracing) or as CSV
tables (spreadsheets). See simulator/export/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from simulator.cli.common import console, friendly
from simulator.errors import InputError

FORMATS = ("chrome-trace", "csv")


def _trace_target(run_dir: Path, out: Optional[Path], force: bool) -> Path:
    """The trace file to write; an existing one is replaced only with --force and only if fleetsim wrote
    it (chrome_trace.written_by_fleetsim: its otherData names "source": "fleetsim")."""
    from simulator.export.chrome_trace import written_by_fleetsim

    target = out if out is not None else run_dir / "trace.json"
    if target.is_dir():
        raise InputError("is a folder", field="-o", value=str(target),
                         accepted="a file name ending in .json, or .json.gz to compress")
    if target.exists() or target.is_symlink():
        if not force:
            raise InputError("already exists; nothing was overwritten", field="-o", value=str(target),
                             accepted="another file name (.json, or .json.gz to compress), or --force to replace "
                             "a trace fleetsim wrote")
        if not written_by_fleetsim(target):
            raise InputError("fleetsim did not write this file (it is no trace-event JSON ending with fleetsim's "
                             "otherData), so --force will not replace it; nothing was overwritten", field="-o",
                             value=str(target), accepted="another -o file name, or remove that file yourself first")
    return target


def register(app: typer.Typer) -> None:
    """Add the export command to the main app."""

    @app.command()
    @friendly
    def export(
        run_dir: Path = typer.Argument(..., help="a run folder"),
        fmt: str = typer.Option("chrome-trace", "--format", "-f", help="chrome-trace | csv"),
        out: Optional[Path] = typer.Option(
            None, "--out", "-o",
            help="chrome-trace: a .json or .json.gz file (default RUN_DIR/trace.json); csv: a folder (default RUN_DIR/csv)"),
        force: bool = typer.Option(
            False, "--force",
            help="chrome-trace: replace an existing trace file, only one fleetsim exported (its otherData says "
                 "\"source\": \"fleetsim\"); any other file is refused. csv needs no --force: it writes only into "
                 "a new or empty folder or one an earlier csv export marked (.fleetsim-export.json)"),
    ) -> None:
        """Export a run: Chrome trace-event JSON for Perfetto / chrome://tracing, or one CSV per table."""
        from simulator.export import write_chrome_trace, write_csv_tables

        if fmt not in FORMATS:
            raise InputError("unknown export format", field="--format", value=fmt, accepted=", ".join(FORMATS))
        if not run_dir.is_dir():
            raise InputError("is not a folder", file=run_dir, accepted="a run folder written by `fleetsim run`")
        t0 = time.perf_counter()
        if fmt == "chrome-trace":
            target = _trace_target(run_dir, out, force)
            stats = write_chrome_trace(run_dir, target)
            console.print(f"chrome trace: {target} ({stats['events']:,} events, {target.stat().st_size / 1e6:,.1f} MB, "
                          f"{time.perf_counter() - t0:.1f} s) — open it in Perfetto (ui.perfetto.dev) or chrome://tracing",
                          soft_wrap=True, markup=False, highlight=False)
        else:
            folder = out if out is not None else run_dir / "csv"
            rows = write_csv_tables(run_dir, folder)
            console.print(f"csv tables: {folder} ({', '.join(f'{k} {v:,} rows' for k, v in rows.items())}; "
                          f"{time.perf_counter() - t0:.1f} s)", soft_wrap=True, markup=False, highlight=False)
