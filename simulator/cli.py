"""The ``fleetsim`` command: run, validate, schema, profiles, report, compare.

Options live in the scenario file; flags only choose the file, where output goes, the seed and how
the work is executed. Every user mistake ends as one clear paragraph and exit status 2.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from simulator.errors import InputError, RunError

app = typer.Typer(
    name="fleetsim",
    help=(
        "Simulate federated training on fleets of heterogeneous edge devices (Jetson class).\n\n"
        "A scenario YAML describes the fleet, network, workload, algorithm and stop condition; "
        "`fleetsim run` simulates it in SimPy time, trains real PyTorch submodels at the simulated "
        "moments, and writes a run folder (Parquet traces, summary.json, report.html).\n\n"
        "Start with:  fleetsim run scenarios/quickstart.yaml\n\n"
        "Exit status: 0 done, 1 the run failed once started (a plug-in raised, the disk filled; traces, "
        "summary.json and a partial report are kept), 2 bad input (nothing was run), 130 Ctrl-C (traces kept)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console(stderr=False)
err_console = Console(stderr=True)


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError into one paragraph on stderr and exit status 2, a run that failed once started
    (a plug-in raised, the disk filled) into one paragraph and exit status 1, Ctrl-C into exit status
    130 — never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as err:
            # one line the terminal wraps itself: paths and field names stay whole for copy and grep,
            # and Text (not markup) keeps brackets like fleet[1] or a user's value intact
            err_console.print(Text.assemble(("fleetsim: bad input: ", "bold red"), err.message), soft_wrap=True)
            raise typer.Exit(2) from None
        except RunError as err:
            err_console.print(Text.assemble(("fleetsim: run failed: ", "bold red"), err.message), soft_wrap=True)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt as stop:
            detail = str(stop) or "traces written so far are kept in the run folder"
            err_console.print(f"[yellow]Interrupted: {detail}.[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise  # the CLI's own exits and usage errors
        except Exception as exc:  # noqa: BLE001 - the last net: one paragraph, never a traceback
            if os.environ.get("FLEETSIM_TRACEBACK"):
                raise
            from simulator.run_failure import describe_failure

            message = describe_failure(exc).message + " (FLEETSIM_TRACEBACK=1 shows the traceback)"
            err_console.print(Text.assemble(("fleetsim: failed: ", "bold red"), message), soft_wrap=True)
            raise typer.Exit(1) from None

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


FORCE_HELP = (
    "replace an earlier run in the run folder: only a folder fleetsim wrote (it holds .fleetsim-run), "
    "and only the files fleetsim writes there (scenario.yaml, run.json, summary.json, report.html, error.txt, "
    "*.parquet tables, _parts/, checkpoint.safetensors) are deleted — other files stay; they are deleted once "
    "the new run has something to show (a failed replacement puts them back). Never the current or home "
    "folder, a folder containing either or the scenario, or a filesystem root."
)


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
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    no_report: bool = typer.Option(False, "--no-report", help="skip report.html (default: the scenario's output.report)"),
    checkpoint_every: Optional[float] = typer.Option(
        None, "--checkpoint-every", metavar="SIM_SECONDS",
        help="save a checkpoint every SIM_SECONDS of simulated time; `fleetsim resume` continues from it"),
) -> None:
    """Simulate a scenario and write its run folder, with a progress bar and a summary at the end.

    Ctrl-C stops cleanly (exit 130): the traces so far, the summary and a partial report are kept. A
    plug-in that raises (or a full disk) ends the run the same way, with one paragraph saying which
    plug-in, which hook and where, and exit status 1. The run folder is locked while the run lasts."""
    from simulator.api import check_seed, load_scenario, run as run_scenario
    from simulator.learning.executors import make_executor

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
    """Continue a killed, interrupted or failed run from its last checkpoint.

    The traces equal an uninterrupted run's. A finished run is refused; the folder is locked while
    resuming, and only the files fleetsim wrote are replaced (your own files in it stay)."""
    from simulator.api import load_scenario, resume as resume_run
    from simulator.learning.executors import make_executor

    from simulator.checkpoint import read_run_options

    timing_only = bool(read_run_options(run_dir).get("timing_only", False))
    loaded = load_scenario(run_dir / "scenario.yaml")
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
def validate(
    files: list[Path] = typer.Argument(..., help="scenario YAML files"),
    import_plugins: bool = typer.Option(
        False, "--import-plugins",
        help="also import the scenario's module:Class plug-ins (policies, models) and check them; "
             "importing a module runs its code, so by default they are not imported"),
) -> None:
    """Check scenario files (schema, profiles, algorithm, links, files they name) without running them.

    Plug-ins (module:Class) are not imported unless --import-plugins is given; the output says so."""
    from simulator.api import load_scenario
    from simulator.engine import Simulation
    from simulator.server.policy import add_plugin_paths
    from simulator.run_failure import preparing_failure
    from simulator.validate import not_imported_note, plugins_in, without_plugins

    for file in files:
        scenario = load_scenario(file)
        plugins = plugins_in(scenario)
        checked = scenario
        if import_plugins:
            add_plugin_paths(file.resolve().parent, Path.cwd())
        elif plugins:
            checked = without_plugins(scenario)
        try:
            Simulation(checked, Path("."), scenario_file=str(file), base_dir=file.resolve().parent, timing_only=True)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - an imported plug-in failing while being sized or built
            raise preparing_failure(exc, scenario) from None
        console.print(f"[green]ok[/] {file}: {scenario.num_devices} devices, algorithm {scenario.algorithm.name}",
                      soft_wrap=True)
        if plugins and not import_plugins:
            console.print(Text(f"  {not_imported_note(plugins, str(file))}"), soft_wrap=True)


@app.command()
def schema(
    kind: str = typer.Option("scenario", "--kind", help="scenario | sweep | plan: which file's schema"),
    plan: bool = typer.Option(False, "--plan", help="the plan file's schema (same as --kind plan)"),
) -> None:
    """Print the JSON Schema of scenario files (or of sweep / plan files): point your editor's YAML
    plug-in at it for completion, e.g. `fleetsim schema > fleetsim.schema.json`."""
    kind = "plan" if plan else kind
    if kind == "plan":
        from simulator.plan import plan_schema

        document = plan_schema()
    elif kind == "sweep":
        from simulator.sweep.spec import SweepSpec

        document = SweepSpec.model_json_schema()
    elif kind == "scenario":
        from simulator.config.scenario import Scenario

        document = Scenario.model_json_schema()
    else:
        err_console.print(f"fleetsim: bad input: At '--kind': unknown schema (got {kind!r}). "
                          "Accepted: scenario, sweep or plan.", soft_wrap=True)
        raise typer.Exit(2)
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


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

    from simulator.run_folder import check_html_destination

    if not (run_dir / "summary.json").exists() and not (run_dir / "_parts").exists():
        raise InputError("not a run folder (no summary.json or traces)", value=str(run_dir),
                         accepted="a folder written by `fleetsim run`")
    if out is not None:
        check_html_destination(out, "report")
    path = _writing(out or run_dir / "report.html", lambda: write_run_report(run_dir, out))
    console.print(f"report: {path}")


def _writing(path: Path, write: Callable[[], Path]) -> Path:
    """Run `write`; an OSError (read-only folder, full disk, a file where a folder should be) is bad
    output input, said in one paragraph."""
    try:
        return write()
    except OSError as exc:
        raise InputError(f"cannot be written ({exc.strerror or exc})", file=path,
                         accepted="a path in a folder you can write to") from None


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
    from simulator.run_folder import check_html_destination

    check_html_destination(out, "comparison")
    path = _writing(out, lambda: write_comparison_report(list(run_dirs), out))
    console.print(f"comparison: {path}")


from simulator.cli_sweep import register as _register_sweep  # noqa: E402 - needs the helpers above

_register_sweep(app, _friendly, console, err_console)
from simulator.cli_export import register as _register_export  # noqa: E402 - fleetsim export

_register_export(app, _friendly, console, err_console)

from simulator.cli_plan import register as _register_plan  # noqa: E402

_register_plan(app, _friendly, console, err_console)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
