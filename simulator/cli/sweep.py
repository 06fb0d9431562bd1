"""`fleetsim sweep` and `fleetsim calibrate`: many runs at once, and measuring a real device."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulator.cli.common import check_format, console, err_console, friendly
from simulator.cli.tables import Grid, grid_from_rich, print_grid, records_of_frame, write_records
from simulator.errors import InputError


def _check_calibrate_figures(shape: tuple[int, ...], input_shape: str, classes: int, warmup: int,
                             busy_w: float, idle_w: float) -> None:
    """Refuse, before minutes of measuring, the flag values the measurement cannot mean: a zero or negative
    input dimension or class count stopped it with "internal error" (exit 1), a negative --warmup and a
    NaN or infinite power went into the profile."""
    if not shape or any(d < 1 for d in shape):
        raise InputError("every input dimension must be at least 1", field="--input-shape", value=input_shape,
                         accepted="positive integers, e.g. 1,32,32 or 64")
    if classes < 1:
        raise InputError("the number of classes must be at least 1", field="--classes", value=classes,
                         accepted="an integer >= 1, e.g. 10")
    if warmup < 0:
        raise InputError("the untimed steps cannot be negative", field="--warmup", value=warmup,
                         accepted="0 or a positive integer")
    for flag, watts in (("--busy-w", busy_w), ("--idle-w", idle_w)):
        if not math.isfinite(watts):
            raise InputError("the power must be a finite number of watts", field=flag, value=watts,
                             accepted="a finite number, --busy-w > 0 and 0 <= --idle-w <= --busy-w")


def written_by_calibrate(path: Path) -> bool:
    """Whether `path` is a regular file starting with the header calibrate writes (PROFILE_HEADER); a
    symlink is not: fleetsim makes none, so one at --out is the user's."""
    from simulator.cost.calibrate import PROFILE_HEADER

    if path.is_symlink() or not path.is_file():
        return False
    header = PROFILE_HEADER.encode("utf-8")
    try:
        with open(path, "rb") as handle:
            return handle.read(len(header)) == header
    except OSError:
        return False


def aggregate_grid(table: Table) -> Grid:
    """The sweep's aggregate for the terminal: its first column is a swept key's value, so the vertical
    list (a narrow terminal) names that key in each block's heading, as it names the others below it."""
    grid = grid_from_rich(table)
    grid.label_first = True
    return grid


def register(app: typer.Typer) -> None:
    """Add the sweep and calibrate commands to the main app."""

    @app.command()
    @friendly
    def sweep(
        sweep_file: Path = typer.Argument(..., help="sweep YAML: a base scenario + grid/zip of scenario keys + seeds"),
        jobs: int = typer.Option(1, "--jobs", "-j", help="variants run at once (local process pool or Ray tasks)"),
        backend: str = typer.Option("local", "--backend", help="local | ray"),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join a Ray cluster (default: local)"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="sweep folder (default: the file's output)"),
        force: bool = typer.Option(False, "--force", help="re-run finished variants too (each variant folder is "
                                   "replaced as `run --force` does: only fleetsim's own files)"),
        timing_only: Optional[bool] = typer.Option(None, "--timing-only/--train", help="override the file's timing_only"),
        no_report: bool = typer.Option(False, "--no-report", help="skip comparison.html"),
        fmt: str = typer.Option("table", "--format", "-f", help="table | json | csv: the aggregate (mean ± std "
                                "over seeds) on stdout; json/csv put the other lines on stderr"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar; the table and errors stay"),
    ) -> None:
        """Run every variant of a sweep (resumable: finished variants are skipped) and tabulate mean ± std over seeds.

        The sweep folder must be new, empty or written by fleetsim (.fleetsim-sweep); it is locked while the
        sweep runs. At most 10,000 runs ($FLEETSIM_MAX_VARIANTS), checked before expanding."""
        from simulator.sweep import run_sweep
        from simulator.sweep.runner import check_options

        check_format(fmt)
        check_options(jobs, backend, jobs_field="--jobs", backend_field="--backend")
        progress = Progress(TextColumn("[bold]variants[/]"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=err_console,
                            disable=quiet)
        task = progress.add_task("sweep", total=None, last="")

        def update(finished: int, total: int, name: str, status: str) -> None:
            if not progress.live.is_started:  # shown once the file is read and expanded, not before its errors
                progress.start()
            progress.update(task, completed=finished, total=total, last=f"{status}: {name}")
            if not err_console.is_terminal and not quiet:  # a log file: one line per variant, not a final bar
                err_console.print(f"variants: {finished}/{total} {status}: {name}", markup=False, highlight=False,
                                  soft_wrap=True)

        try:
            result = run_sweep(sweep_file, jobs=jobs, backend=backend, ray_address=ray_address, force=force,
                               out=out, timing_only=timing_only, report=not no_report, progress=update)
        finally:
            if progress.live.is_started:
                progress.stop()
        lines = err_console if fmt != "table" else console
        if fmt == "table":
            print_grid(aggregate_grid(result.table()), console)
        else:
            write_records(records_of_frame(result.aggregate), fmt)
        lines.print(f"ran {len(result.ran)}, skipped {len(result.skipped)} finished, failed {len(result.failed)}")
        for name in ("results.csv", "aggregate.csv", "comparison.html"):
            path = result.sweep_dir / name
            if path.exists():
                lines.print(f"{name}: {path}", soft_wrap=True)
        if result.failed:
            for name in result.failed:
                err_console.print(f"[red]failed:[/] {name}")
            raise typer.Exit(1)

    @app.command()
    @friendly
    def calibrate(
        model: list[str] = typer.Option(["cnn-tiny"], "--model", help="model label(s), e.g. cnn-tiny, resnet-small"),
        width: list[float] = typer.Option([1.0], "--width", help="width ratio(s) to measure"),
        batch: list[int] = typer.Option([32], "--batch", help="batch size(s) to measure"),
        input_shape: str = typer.Option("1,32,32", "--input-shape", help="C,H,W (or T for sequences)"),
        classes: int = typer.Option(10, "--classes", help="number of classes"),
        repeats: int = typer.Option(5, "--repeats", help="timed steps per combination (median)"),
        warmup: int = typer.Option(2, "--warmup", help="untimed steps first"),
        rounds: int = typer.Option(1, "--rounds", help="interleaved measuring rounds; the smallest median wins "
                                   "(use 3 on a shared machine)"),
        threads: int = typer.Option(1, "--threads", help="torch threads while measuring"),
        name: str = typer.Option("this-host", "--name", help="profile name"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="profile YAML (default: NAME.yaml)"),
        busy_w: float = typer.Option(15.0, "--busy-w", help="board power while training (W): measure it with tegrastats"),
        idle_w: float = typer.Option(5.0, "--idle-w", help="board power when idle (W)"),
        force: bool = typer.Option(False, "--force", help="replace an existing profile file at --out, only one "
                                   "`fleetsim calibrate` wrote (its first line is the header \"# Device profile "
                                   "measured on this host by `fleetsim calibrate`\"); any other file is refused"),
        exits: list[str] = typer.Option(["all"], "--exits", help="all (every block's exit trains: depth pruning, "
                                        "distillation) and/or final (the last exit only: fedavg and the others)"),
        clock: str = typer.Option("wall", "--clock", help="wall (elapsed time; on a board always) or cpu (this "
                                  "process's CPU time: one-thread CPU measurements on a busy shared host)"),
    ) -> None:
        """Measure training step times on this machine and write a device profile that carries them.

        Run it on a real Jetson to make that board's profile; a measured time overrides the cost model
        only at its own point: model label, width, batch, input shape, dtype and exits (full depth)."""
        from simulator.cost.calibrate import calibrate as run_calibration

        target = out or Path(name + ".yaml")
        if target.is_dir():
            raise InputError("is a folder, not a profile file", field="--out", value=str(target),
                             accepted="a path ending in .yaml")
        blocking = next((p for p in target.absolute().parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:  # the write after measuring failed as "internal error (FileExistsError)"
            raise InputError(f"cannot be written: {blocking} is a file, not a folder; nothing was measured",
                             field="--out", value=str(target), accepted="a .yaml path in a folder (new or existing)")
        if (target.exists() or target.is_symlink()) and not force:  # asked before minutes of measuring
            raise InputError("the profile file already exists; nothing was measured or overwritten",
                             field="--out", value=str(target), accepted="another --out path or --name, or --force "
                             "to replace that file")
        if (target.exists() or target.is_symlink()) and not written_by_calibrate(target):
            raise InputError("fleetsim did not write this file (it does not start with the header `fleetsim "
                             "calibrate` writes), so --force will not replace it; nothing was measured or overwritten",
                             field="--out", value=str(target),
                             accepted="another --out path or --name, or remove that file yourself first")
        try:
            shape = tuple(int(x) for x in input_shape.split(","))
        except ValueError:
            raise InputError("not a comma-separated list of integers", field="--input-shape", value=input_shape,
                             accepted="e.g. 1,32,32 or 64") from None
        _check_calibrate_figures(shape, input_shape, classes, warmup, busy_w, idle_w)
        profile = run_calibration(model, width, batch, input_shape=shape, num_classes=classes, repeats=repeats,
                                  warmup=warmup, rounds=rounds, threads=threads, name=name, out=out, busy_w=busy_w, idle_w=idle_w,
                                  exits=exits, clock=clock)
        compute = profile["compute"]
        console.print(f"peak {compute['peak_fp32_gflops']:.1f} GFLOP/s, GEMM efficiency {compute['training_efficiency']:.3f}, "
                      f"elementwise efficiency {compute['elementwise_efficiency']:.3f} of "
                      f"{profile['memory']['bandwidth_gbps']:.1f} GB/s, op overhead {compute['op_overhead_s'] * 1e6:.1f} µs, "
                      f"step overhead {compute['step_overhead_s'] * 1e3:.2f} ms")
        from simulator.config.profiles import StepPoint

        for entry in profile.get("measured_step_times", []):
            point = StepPoint(entry["model"], entry["width_ratio"], None, entry["batch_size"],
                              tuple(entry["input_shape"]), entry["dtype"], entry["exits"])
            console.print(f"  {point.describe()}: {entry['step_s'] * 1e3:.2f} ms/step")
        measured = len(profile.get("measured_step_times", []))
        if measured < 6:
            console.print(f"[yellow]note:[/] {measured} workload(s) measured for 5 fitted figures: the fit is "
                          "underdetermined and predicts unmeasured workloads poorly. Measured workloads use their "
                          "own times. For a model that generalises, measure several models, widths and batches, "
                          "e.g. --model cnn-small --model resnet-small --width 1 --width 0.5 --batch 16 --batch 64.")
        console.print(f"profile: {out or Path(name + '.yaml')}")
