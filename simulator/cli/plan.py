"""`fleetsim plan`: which fleet should I buy? Search a catalogue for the best fleet that meets a goal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from simulator.cli.common import console, err_console, friendly
from simulator.cli.tables import grid_from_rich, print_grid
from simulator.errors import InputError

EXIT_NOT_MET = 1   # no candidate meets the goal (bad input exits 2, like every command)


def register(app: typer.Typer) -> None:
    """Add the plan command to the main app."""

    @app.command()
    @friendly
    def plan(
        plan_file: Optional[Path] = typer.Argument(None, help="plan YAML: base scenario, catalogue, goal, objective"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="plan folder (default: the file's output)"),
        jobs: int = typer.Option(1, "--jobs", "-j", help="candidates run at once (local process pool or Ray tasks)"),
        backend: str = typer.Option("local", "--backend", help="local | ray"),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join a Ray cluster (default: local)"),
        budget_runs: Optional[int] = typer.Option(None, "--budget-runs", help="most candidates simulated "
                                                  "(default: the file's search.budget_runs, 64)"),
        method: Optional[str] = typer.Option(None, "--method", help="auto | enumerate | optuna (default: the file's)"),
        force: bool = typer.Option(False, "--force", help="re-run candidates already finished in the plan folder"),
        no_report: bool = typer.Option(False, "--no-report", help="skip plan.html"),
        schema: bool = typer.Option(False, "--schema", help="print the plan file's JSON Schema and exit"),
    ) -> None:
        """Find the cheapest (or fastest, or leanest) fleet of a catalogue that meets a goal by a deadline.

        Timing-only runs of candidate fleets (real training only for an accuracy goal's finalists), in
        parallel, resumable. Writes plan.parquet/.csv, best.yaml (run it with `fleetsim run`) and plan.html.
        Exit status 1 when no candidate meets the goal."""
        if schema:
            from simulator.plan import plan_schema

            sys.stdout.write(json.dumps(plan_schema(), indent=2) + "\n")
            return
        if plan_file is None:
            raise InputError("no plan file was given", field="PLAN_FILE",
                             accepted="fleetsim plan PLAN.yaml (e.g. scenarios/plans/buy_fleet.yaml), or --schema")
        from simulator.plan import run_plan
        from simulator.plan.outputs import summary_tables

        progress = Progress(TextColumn("[bold]candidates[/]"), BarColumn(), TextColumn("{task.completed} done"),
                            TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=err_console)
        task = progress.add_task("plan", total=None, last="")

        def update(phase: str, name: str, status: str) -> None:
            if not progress.live.is_started:
                progress.start()  # only once runs begin: input errors print without a stray bar
            progress.update(task, advance=1, last=f"{phase} {status}: {name}")

        try:
            result = run_plan(plan_file, out=out, jobs=jobs, backend=backend, ray_address=ray_address,
                              budget_runs=budget_runs, method=method, force=force, report=not no_report,
                              progress=update)
        finally:
            if progress.live.is_started:  # stopping a bar never drawn printed a blank line before an error
                progress.stop()
        for table in summary_tables(result.loaded, result.table, result.loaded.spec.minimise):
            print_grid(grid_from_rich(table), console)
        o = result.outcome
        judged = len(result.table.rows)
        console.print(f"searched by {o.method}: {o.space_size:,} compositions, {judged:,} candidates judged, "
                      f"{o.runs:,} simulated ({result.ran:,} run now, {result.reused:,} found finished)"
                      + (f", {result.trained} finalists trained" if result.trained else "")
                      + (f"; {o.note}" if o.note else ""))
        for name in ("best.yaml", "plan.csv", "plan.parquet", "plan.html"):
            path = result.plan_dir / name
            if path.exists():
                console.print(f"{name}: {path}")
        for name, error in result.failed.items():
            err_console.print(f"[red]failed:[/] {name}: {error.splitlines()[0] if error else ''}")
        if result.best is None:
            console.print("[bold red]No candidate meets the goal[/] (the closest are listed above).")
            raise typer.Exit(EXIT_NOT_MET)
