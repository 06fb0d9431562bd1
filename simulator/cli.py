"""The ``fleetsim`` command: run, validate, schema, profiles, report, compare.

Options live in the scenario file; flags only choose the file, where output goes, the seed and how
the work is executed. Every user mistake ends as one clear paragraph and exit status 2.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from simulator.errors import InputError

app = typer.Typer(
    name="fleetsim",
    help=(
        "Simulate federated training on fleets of heterogeneous edge devices (Jetson class).\n\n"
        "A scenario YAML describes the fleet, network, workload, algorithm and stop condition; "
        "`fleetsim run` simulates it in SimPy time, trains real PyTorch submodels at the simulated "
        "moments, and writes a run folder (Parquet traces, summary.json, report.html).\n\n"
        "Start with:  fleetsim run scenarios/quickstart.yaml"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console(stderr=False)
err_console = Console(stderr=True)


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError into one paragraph on stderr and exit status 2 — never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as err:
            # one line the terminal wraps itself: paths and field names stay whole for copy and grep,
            # and Text (not markup) keeps brackets like fleet[1] or a user's value intact
            err_console.print(Text.assemble(("fleetsim: bad input: ", "bold red"), err.message), soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as stop:
            detail = str(stop) or "traces written so far are kept in the run folder"
            err_console.print(f"[yellow]Interrupted: {detail}.[/]")
            raise typer.Exit(130) from None

    return wrapper


def _progress_bar(horizon_s: float | None, max_versions: int | None) -> tuple[Progress, Callable[[float, int, float | None], None]]:
    progress = Progress(
        TextColumn("[bold]simulating[/]"),
        BarColumn(),
        TextColumn("{task.fields[sim]}"),
        TextColumn("v{task.fields[versions]}"),
        TextColumn("{task.fields[acc]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    by_time = horizon_s is not None
    total = horizon_s if by_time else float(max_versions or 1)
    task = progress.add_task("run", total=total, sim="t=0 s", versions=0, acc="")

    def update(sim_s: float, versions: int, accuracy: float | None) -> None:
        if not progress.live.is_started:
            progress.start()  # only once the run is under way: input errors print without a stray bar
        done = sim_s if by_time else versions
        progress.update(
            task, completed=min(done, total), sim=f"t={sim_s:,.0f} s", versions=versions,
            acc=f"acc {accuracy:.3f}" if accuracy is not None else "",
        )

    return progress, update


def _summary_table(summary: dict[str, Any], run_dir: Path) -> Table:
    table = Table(title=f"{summary['scenario_name']} · {summary['algorithm']} · seed {summary['seed']}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f} %"

    table.add_row("stopped by", str(summary["stop_reason"]))
    table.add_row("simulated time", f"{summary['makespan_s']:,.1f} s")
    table.add_row("model versions", str(summary["versions"]))
    if not summary["timing_only"]:
        table.add_row("final accuracy", pct(summary.get("final_accuracy")))
        if summary.get("target_accuracy") is not None:
            ttt = summary.get("time_to_target_s")
            table.add_row(f"time to {pct(summary['target_accuracy'])}", "not reached" if ttt is None else f"{ttt:,.1f} s")
    table.add_row("fleet utilization", f"{pct(summary['fleet_utilization'])} compute, {pct(summary['comm_share'])} comm, "
                  f"{pct(summary['idle_share'])} idle, {pct(summary['offline_share'])} offline")
    for name, share in sorted(summary["utilization_by_profile"].items()):
        table.add_row(f"  {name}", pct(share))
    st = summary["staleness"]
    if st["mean"] is not None:
        table.add_row("staleness", f"mean {st['mean']:.2f}, p95 {st['p95']:.0f}, max {st['max']:.0f}")
    table.add_row("updates", f"{summary['accepted']:,} accepted, {summary['dropped']:,} dropped, "
                  f"{summary['lost']:,} lost, {summary['ooms']:,} OOM")
    if summary["oom_devices"]:
        shown = ", ".join(summary["oom_devices"][:6]) + (" …" if len(summary["oom_devices"]) > 6 else "")
        table.add_row("out of memory", shown)
    table.add_row("traffic", f"{human_bytes(summary['bytes_down'])} down, {human_bytes(summary['bytes_up'])} up")
    if "step_times" in summary:
        from simulator.step_times import summary_line

        table.add_row("step times", summary_line(summary["step_times"]))
    table.add_row("energy", f"{summary['energy_j'] / 3.6e6:.4f} kWh ({summary['energy_j']:,.0f} J)")
    table.add_row("run folder", str(run_dir))
    return table


def human_bytes(n: float) -> str:
    """Decimal units, as link rates are quoted: 44,752 GB reads as '44.75 TB'."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n:,.0f} B"


@app.command()
@_friendly
def run(
    scenario: Path = typer.Argument(..., help="scenario YAML, e.g. scenarios/quickstart.yaml"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="run folder (default: output.folder/run_name)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="override the scenario's seed"),
    timing_only: bool = typer.Option(False, "--timing-only", help="simulate time, memory, traffic and energy; no training"),
    workers: int = typer.Option(0, "--workers", help="train in a pool of N processes (0 = in this process)"),
    executor: str = typer.Option("inline", "--executor", help="inline | pool | ray"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join a Ray cluster (default: start a local one)"),
    force: bool = typer.Option(False, "--force", help="replace an existing run folder"),
    no_report: bool = typer.Option(False, "--no-report", help="skip report.html (default: the scenario's output.report)"),
    checkpoint_every: Optional[float] = typer.Option(
        None, "--checkpoint-every", metavar="SIM_SECONDS",
        help="save a checkpoint every SIM_SECONDS of simulated time; `fleetsim resume` continues from it"),
) -> None:
    """Simulate a scenario and write its run folder, with a progress bar and a summary at the end.

    Ctrl-C stops cleanly: the traces so far, the summary and a partial report are kept."""
    from simulator.api import check_seed, load_scenario, run as run_scenario
    from simulator.executors_cli import make_executor

    check_seed(seed, "--seed")
    if workers < 0:
        raise InputError("not a number of worker processes", field="--workers", value=workers,
                         accepted="0 (train in this process) or a positive integer")
    loaded = load_scenario(scenario)
    exec_obj = None if timing_only else make_executor(executor, workers, ray_address)
    progress, update = _progress_bar(loaded.stop.sim_time_s, loaded.stop.max_versions)
    try:
        result = run_scenario(scenario, out=out, seed=seed, timing_only=timing_only, force=force,
                              executor=exec_obj, progress=update,
                              report=False if no_report else None,  # None: the scenario's output.report
                              checkpoint_every_s=checkpoint_every)
    finally:
        progress.stop()
        if exec_obj is not None:
            exec_obj.shutdown()
    _finish(result)


def _finish(result: Any) -> None:
    console.print(_summary_table(result.summary, result.run_dir))
    if result.report_path.exists():
        console.print(f"report: {result.report_path}")


@app.command()
@_friendly
def resume(
    run_dir: Path = typer.Argument(..., help="the folder of a run killed after its first checkpoint"),
    workers: int = typer.Option(0, "--workers", help="train in a pool of N processes (0 = in this process)"),
    executor: str = typer.Option("inline", "--executor", help="inline | pool | ray"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join a Ray cluster"),
) -> None:
    """Continue a killed run from its last checkpoint; the traces equal an uninterrupted run's."""
    from simulator.api import load_scenario, resume as resume_run
    from simulator.executors_cli import make_executor

    options_path = run_dir / "run.json"
    if not options_path.exists():
        raise InputError("not a resumable run folder (no run.json)", value=str(run_dir),
                         accepted="a folder written by `fleetsim run`")
    loaded = load_scenario(run_dir / "scenario.yaml")
    timing_only = json.loads(options_path.read_text()).get("timing_only", False)
    exec_obj = None if timing_only else make_executor(executor, workers, ray_address)
    progress, update = _progress_bar(loaded.stop.sim_time_s, loaded.stop.max_versions)
    try:
        result = resume_run(run_dir, executor=exec_obj, progress=update)
    finally:
        progress.stop()
        if exec_obj is not None:
            exec_obj.shutdown()
    _finish(result)


@app.command()
@_friendly
def validate(files: list[Path] = typer.Argument(..., help="scenario YAML files")) -> None:
    """Check scenario files (schema, profiles, algorithm, links) without running them."""
    from simulator.api import load_scenario
    from simulator.engine import Simulation

    for file in files:
        scenario = load_scenario(file)
        Simulation(scenario, Path("."), scenario_file=str(file), base_dir=file.resolve().parent, timing_only=True)
        console.print(f"[green]ok[/] {file}: {scenario.num_devices} devices, algorithm {scenario.algorithm.name}")


@app.command()
def schema() -> None:
    """Print the scenario JSON Schema (point your editor's YAML plug-in at it for completion)."""
    from simulator.config.scenario import Scenario

    sys.stdout.write(json.dumps(Scenario.model_json_schema(), indent=2) + "\n")


@app.command()
@_friendly
def profiles(
    files: list[Path] = typer.Argument(None, help="extra profile YAMLs to show beside the built-in ones"),
) -> None:
    """Show the device profiles: compute, memory, power modes, network."""
    from simulator.config.profiles import list_builtin_profiles, load_profile, profiles_table

    items = list_builtin_profiles() + [load_profile(str(f)) for f in files or []]
    console.print(profiles_table(items))


@app.command()
@_friendly
def report(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file (default: RUN_DIR/report.html)"),
) -> None:
    """(Re)write the self-contained HTML report of a run."""
    from simulator.report import write_run_report

    if not (run_dir / "summary.json").exists() and not (run_dir / "_parts").exists():
        raise InputError("not a run folder (no summary.json or traces)", value=str(run_dir),
                         accepted="a folder written by `fleetsim run`")
    path = write_run_report(run_dir, out)
    console.print(f"report: {path}")


@app.command()
@_friendly
def compare(
    run_dirs: list[Path] = typer.Argument(..., help="two or more run folders"),
    out: Path = typer.Option(Path("comparison.html"), "--out", "-o", help="HTML file to write"),
) -> None:
    """Compare runs side by side: accuracy over time, time to target, utilization, staleness, memory, energy."""
    from simulator.report import write_comparison_report

    for run_dir in run_dirs:
        if not (run_dir / "summary.json").exists():
            raise InputError("not a finished run folder (no summary.json)", value=str(run_dir),
                             accepted="folders written by `fleetsim run`")
    path = write_comparison_report(list(run_dirs), out)
    console.print(f"comparison: {path}")


from simulator.cli_sweep import register as _register_sweep  # noqa: E402 - needs the helpers above

_register_sweep(app, _friendly, console, err_console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
