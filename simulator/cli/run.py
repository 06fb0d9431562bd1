"""`fleetsim run` and `fleetsim resume`: simulate, show progress, print the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from simulator.cli.common import console, err_console, friendly, warn
from simulator.cli.progress import RunProgress, choose_mode
from simulator.cli.summary import no_fit_warning, summary_table
from simulator.errors import InputError

FORCE_HELP = (
    "replace an earlier run in the run folder: only a folder fleetsim wrote (it holds .fleetsim-run), "
    "and only the files fleetsim writes there (scenario.yaml, run.json, summary.json, report.html, error.txt, "
    "progress.log, *.parquet tables, _parts/, checkpoint.safetensors) are deleted — other files stay; they are "
    "deleted once the new run has something to show (a failed replacement puts them back). Never the current or "
    "home folder, a folder containing either or the scenario, or a filesystem root."
)
QUIET_HELP = "no progress on the console (the run folder's progress.log still gets it); the summary and errors stay"


def warn_if_nothing_fits(simulation: Any) -> None:
    """Before a run starts (api's before_start): one warning line on stderr when the model fits no
    device of the fleet, from the groups' plans as `fleetsim validate` computes them, so a user learns
    it before waiting for a run in which nothing can train (the run goes on and exits 0: `fleetsim
    plan` counts such a fleet as a result). Said here only: the end summary keeps its WARNING row on
    stdout but the stderr line is not repeated."""
    from simulator.cli.explain import group_fits
    from simulator.config.workload import model_label

    warning = no_fit_warning(model_label(simulation.scenario.workload.model),
                             group_fits(simulation, simulation.scenario))
    if warning:
        warn(warning)


def _finish(result: Any) -> None:
    console.print(summary_table(result.summary, result.run_dir))
    if result.report_path.exists():
        console.print(f"report: {result.report_path}", soft_wrap=True)


def _executor(kind: str, workers: int, address: str | None) -> Any:
    """The executor of a training run. Imported here, not at the command's start: the executors
    import torch, and a timing-only run (no executor) needs none of it."""
    from simulator.learning.executors import make_executor

    return make_executor(kind, workers, address)


# learning.executors.factory's EXECUTORS and ALIASES, repeated here because importing that package imports
# torch, which a timing-only run must not pay for (tests/cli/test_executor_names.py keeps the two equal)
EXECUTOR_NAMES = ("inline", "process", "ray", "pool")


def _check_executor(kind: str) -> None:
    """Refuse an unknown --executor before anything runs, timing-only too: there no executor is made, so
    a typo (`--executor gpu`) was silently ignored, and a later run without --timing-only failed on it."""
    if kind not in EXECUTOR_NAMES:
        raise InputError("unknown executor", field="--executor", value=kind,
                         accepted="inline, process, ray (pool is another name for process)")


def _check_workers(workers: int) -> None:
    """Refuse a negative --workers before anything runs, timing-only too: there no executor is made, so
    `fleetsim resume RUN --workers -1` of a timing-only run went on as if the flag were right."""
    if workers < 0:
        raise InputError("not a number of worker processes", field="--workers", value=workers,
                         accepted="0 (train in this process) or a positive integer")


def register(app: typer.Typer) -> None:
    """Add run and resume to the app."""

    @app.command()
    @friendly
    def run(
        scenario: Path = typer.Argument(..., help="scenario YAML, e.g. scenarios/quickstart.yaml"),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="run folder (default: output.folder/run_name)"),
        seed: Optional[int] = typer.Option(None, "--seed", help="override the scenario's seed"),
        timing_only: bool = typer.Option(
            False, "--timing-only",
            help="simulate time, memory, traffic and energy; no training (default: the scenario's timing_only)"),
        workers: int = typer.Option(0, "--workers", help="train in a pool of N processes (0 = in this process)"),
        executor: str = typer.Option("inline", "--executor", help="inline | process | ray (where jobs train; pool = process; --workers N with inline means process)"),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join a Ray cluster (default: start a local one)"),
        force: bool = typer.Option(False, "--force", help=FORCE_HELP),
        no_report: bool = typer.Option(False, "--no-report", help="skip report.html (default: the scenario's output.report)"),
        checkpoint_every: Optional[float] = typer.Option(
            None, "--checkpoint-every", metavar="SIM_SECONDS",
            help="save a checkpoint every SIM_SECONDS of simulated time; `fleetsim resume` continues from it "
                 "(default: no checkpoints)"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    ) -> None:
        """Simulate a scenario and write its run folder, with progress and a summary at the end.

        Progress: a live line on a terminal; elsewhere (a log file, CI) a plain line every few seconds
        with simulated time, versions, accuracy, simulated seconds per wall second and ETA — also in
        the run folder's progress.log. Ctrl-C stops cleanly (exit 130): the traces so far, the summary
        and a partial report are kept. A plug-in that raises (or a full disk) ends the run the same way,
        with one paragraph saying which plug-in, which hook and where, and exit status 1. The run
        folder is locked while the run lasts."""
        from simulator.api import check_seed, load_scenario, resolve_run_dir, run as run_scenario

        check_seed(seed, "--seed")
        _check_executor(executor)
        _check_workers(workers)
        loaded = load_scenario(scenario)
        exec_obj = None if timing_only else _executor(executor, workers, ray_address)
        progress = RunProgress(loaded.stop.sim_time_s, loaded.stop.max_versions, mode=choose_mode(quiet, err_console),
                               console=err_console, run_dir=lambda: resolve_run_dir(loaded, out))
        try:
            result = run_scenario(scenario, out=out, seed=seed, timing_only=timing_only, force=force,
                                  executor=exec_obj, progress=progress,
                                  report=False if no_report else None,  # None: the scenario's output.report
                                  checkpoint_every_s=checkpoint_every, before_start=warn_if_nothing_fits)
        finally:
            progress.stop()
            if exec_obj is not None:
                exec_obj.shutdown()
        _finish(result)

    @app.command()
    @friendly
    def resume(
        run_dir: Path = typer.Argument(..., help="the folder of a run killed after its first checkpoint"),
        workers: int = typer.Option(0, "--workers", help="train in a pool of N processes (0 = in this process)"),
        executor: str = typer.Option("inline", "--executor", help="inline | process | ray (where jobs train; pool = process; --workers N with inline means process)"),
        ray_address: Optional[str] = typer.Option(None, "--ray-address", help="join a Ray cluster (default: start a local one)"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
    ) -> None:
        """Continue a killed, interrupted or failed run from its last checkpoint.

        The traces equal an uninterrupted run's. A finished run is refused; the folder is locked while
        resuming, and only the files fleetsim wrote are replaced (your own files in it stay)."""
        from simulator.api import load_scenario, resume as resume_run
        from simulator.output.checkpoint import read_run_options

        _check_executor(executor)
        _check_workers(workers)
        timing_only = bool(read_run_options(run_dir).get("timing_only", False))
        loaded = load_scenario(run_dir / "scenario.yaml")
        exec_obj = None if timing_only else _executor(executor, workers, ray_address)
        progress = RunProgress(loaded.stop.sim_time_s, loaded.stop.max_versions, mode=choose_mode(quiet, err_console),
                               console=err_console, run_dir=lambda: run_dir)
        try:
            result = resume_run(run_dir, executor=exec_obj, progress=progress, before_start=warn_if_nothing_fits)
        finally:
            progress.stop()
            if exec_obj is not None:
                exec_obj.shutdown()
        _finish(result)
