"""`fleetsim report | compare`: what runs produced, as HTML and (compare) as a table or records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from simulator.cli.common import check_format, console, err_console, friendly, writing
from simulator.cli.tables import Grid, print_grid, write_records
from simulator.errors import InputError


COUNT_KEYS = ("versions", "ooms", "dropped", "lost", "jobs", "accepted")  # printed as integers


def _compare_records(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """One record per run: its label (from the keys that differ), folder, completeness and headline figures."""
    from simulator.report.compare_labels import run_labels
    from simulator.report.loading import load_run
    from simulator.sweep.results import metrics_of

    runs = [load_run(Path(d)) for d in run_dirs]
    out = []
    for d, run, label in zip(run_dirs, runs, run_labels(runs)):
        summary = run.summary or {}
        figures = metrics_of(summary)
        for key in COUNT_KEYS:  # counts as integers: `--format json` printed "versions": 106.0, "ooms": 4.0
            value = figures.get(key)
            if isinstance(value, float) and value.is_integer():
                figures[key] = int(value)
        out.append({"run": label.label, "run_dir": str(d), "complete": bool(summary.get("complete", True)),
                    "algorithm": summary.get("algorithm"), "seed": summary.get("seed"), **figures})
    return out


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None or value != value else format(value, spec)  # value != value: NaN


COMPARE_COLUMNS = (("simulated s", "makespan_s", ",.0f"), ("versions", "versions", ",.0f"),
                   ("final acc", "final_accuracy", ".3f"), ("util", "fleet_utilization", ".1%"),
                   ("energy Wh/h", "energy_per_hour_j", ",.1f"))


COMPARE_CAPTION = ("final acc: accuracy at the last evaluation (0-1); util: fleet utilization, the share of "
                   "device time spent computing; energy Wh/h: energy per simulated hour, the fleet's mean power in W")


def _compare_grid(records: list[dict[str, Any]]) -> Grid:
    """The headline figures; the caption spells out the abbreviated headers ('energy Wh/h' is per simulated
    hour even where the page shows totals, for runs of one length)."""
    grid = Grid(f"{len(records)} run{'' if len(records) == 1 else 's'}", ["run", *(h for h, _, _ in COMPARE_COLUMNS)],
                right=frozenset(range(1, len(COMPARE_COLUMNS) + 1)), caption=COMPARE_CAPTION)
    for r in records:
        cells = [r["run"] + ("" if r["complete"] else " (interrupted)")]
        for _, key, spec in COMPARE_COLUMNS:
            value = r.get(key)
            cells.append(_fmt(value / 3600 if key == "energy_per_hour_j" and value is not None else value, spec))
        grid.rows.append(cells)
    return grid


def register(app: typer.Typer) -> None:
    """Add report and compare to the app."""

    @app.command()
    @friendly
    def report(
        run_dir: Path = typer.Argument(..., help="a run folder"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file (default: RUN_DIR/report.html)"),
    ) -> None:
        """(Re)write the self-contained HTML report of a run."""
        from simulator.report import write_run_report
        from simulator.output.folder import check_html_destination

        if not (run_dir / "summary.json").exists() and not (run_dir / "_parts").exists():
            raise InputError("not a run folder (no summary.json or traces)", value=str(run_dir),
                             accepted="a folder written by `fleetsim run`")
        if out is not None:
            check_html_destination(out, "report")
        path = writing(out or run_dir / "report.html", lambda: write_run_report(run_dir, out))
        console.print(f"report: {path}", soft_wrap=True)

    @app.command()
    @friendly
    def compare(
        run_dirs: list[Path] = typer.Argument(
            ..., help="the run folders to compare (one alone: its headline figures and page)"),
        out: Path = typer.Option(Path("comparison.html"), "--out", "-o", help="HTML file to write"),
        fmt: str = typer.Option("table", "--format", "-f",
                                help="table | json | csv: the runs' headline figures on stdout (json/csv: the "
                                     "comparison's path goes to stderr)"),
    ) -> None:
        """Compare runs side by side: accuracy over time, time to target, utilization, staleness, memory, energy."""
        from simulator.report import write_comparison_report
        from simulator.output.folder import check_html_destination

        check_format(fmt)
        for run_dir in run_dirs:
            if not (run_dir / "summary.json").exists():
                raise InputError("not a finished run folder (no summary.json)", value=str(run_dir),
                                 accepted="folders written by `fleetsim run`")
        check_html_destination(out, "comparison")
        path = writing(out, lambda: write_comparison_report(list(run_dirs), out))
        records = _compare_records(list(run_dirs))
        if fmt == "table":
            print_grid(_compare_grid(records), console)
            console.print(f"comparison: {path}", soft_wrap=True)
        else:
            write_records(records, fmt)
            err_console.print(f"comparison: {path}", soft_wrap=True)
