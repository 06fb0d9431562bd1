"""The Python entry point, for notebooks: ``simulator.run(path_or_scenario) -> Run``.

A :class:`Run` is the run folder plus its summary, with the traces as pandas DataFrames loaded on
first access — the same files any other tool reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.config.loading import load_yaml_model, validate_data
from simulator.config.scenario import Scenario
import shutil

from simulator.checkpoint import CHECKPOINT_FILE, RUN_OPTIONS_FILE, load_checkpoint, read_run_options, write_run_options
from simulator.engine import ProgressFn, RunInterrupted, Simulation
from simulator.errors import InputError
from simulator.run_folder import prepare_run_dir, write_yaml
from simulator.trace import read_table


@dataclass
class Run:
    """A finished (or killed) run, read from its folder."""

    run_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, run_dir: str | Path) -> "Run":
        run_dir = Path(run_dir)
        summary_path = run_dir / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        return cls(run_dir, summary)

    @cached_property
    def events(self) -> pd.DataFrame:
        return read_table(self.run_dir, "events")

    @cached_property
    def updates(self) -> pd.DataFrame:
        return read_table(self.run_dir, "updates")

    @cached_property
    def devices(self) -> pd.DataFrame:
        return read_table(self.run_dir, "devices")

    @cached_property
    def evals(self) -> pd.DataFrame:
        return read_table(self.run_dir, "evals")

    @cached_property
    def clients(self) -> pd.DataFrame:
        """Each client's shard size and label histogram."""
        return pd.read_parquet(self.run_dir / "clients.parquet")

    @cached_property
    def versions(self) -> pd.DataFrame:
        return read_table(self.run_dir, "versions")

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML (InputError naming file, field, value on any problem)."""
    return load_yaml_model(path, Scenario)


def check_seed(seed: int | None, field: str = "seed") -> None:
    """A seed override must be what the scenario's `seed` accepts (SeedSequence refuses negatives)."""
    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise InputError("not a valid seed", field=field, value=seed, accepted="an integer from 0 to 2**63 - 1")


def resolve_run_dir(scenario: Scenario, out: str | Path | None) -> Path:
    if out is not None:
        return Path(out)
    return Path(scenario.output.folder) / (scenario.output.run_name or scenario.name)


def run(
    scenario_or_path: Scenario | dict[str, Any] | str | Path,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    timing_only: bool = False,
    force: bool = False,
    executor: Any = None,
    progress: ProgressFn | None = None,
    report: bool | None = None,
    checkpoint_every_s: float | None = None,
) -> Run:
    """Run a scenario and return its :class:`Run`.

    ``out`` is the run folder (default: ``output.folder/run_name``); an existing non-empty folder is
    refused unless ``force``. ``seed`` overrides the scenario's seed. ``checkpoint_every_s`` saves a
    checkpoint every so many simulated seconds, from which :func:`resume` continues a killed run.
    """
    if checkpoint_every_s is not None and not checkpoint_every_s > 0:
        raise InputError("the checkpoint interval must be positive", field="--checkpoint-every",
                         value=checkpoint_every_s, accepted="a number of simulated seconds > 0")
    file: str | None = None
    base_dir = Path.cwd()
    if isinstance(scenario_or_path, (str, Path)):
        file = str(scenario_or_path)
        base_dir = Path(scenario_or_path).resolve().parent
        scenario = load_scenario(scenario_or_path)
    elif isinstance(scenario_or_path, dict):
        scenario = validate_data(scenario_or_path, Scenario)
    else:
        scenario = scenario_or_path
    if seed is not None:
        check_seed(seed)
        scenario = scenario.model_copy(update={"seed": seed})
    timing_only = timing_only or scenario.timing_only
    simulation = Simulation(scenario, Path("."), scenario_file=file, base_dir=base_dir,
                            timing_only=timing_only, executor=executor, progress=progress,
                            checkpoint_every_s=checkpoint_every_s)
    run_dir = prepare_run_dir(resolve_run_dir(scenario, out), force)
    simulation.run_dir = run_dir
    resolved = scenario.model_dump(mode="json")
    resolved["algorithm"] = simulation.algorithm.as_dict()
    write_yaml(run_dir / "scenario.yaml", resolved)
    write_run_options(run_dir, {"base_dir": str(base_dir), "timing_only": timing_only,
                                "checkpoint_every_s": checkpoint_every_s, "scenario_file": file})
    want_report = report if report is not None else scenario.output.report
    return _execute(simulation, run_dir, want_report)


def _execute(simulation: Simulation, run_dir: Path, want_report: bool) -> Run:
    """Run, write the report; on Ctrl-C keep the traces, write a partial report, re-raise."""
    try:
        outcome = simulation.run()
    except RunInterrupted as stop:
        if want_report:
            from simulator.report import write_run_report

            write_run_report(run_dir)
        raise KeyboardInterrupt(f"run interrupted; partial traces in {stop.outcome.run_dir}") from None
    if want_report:
        from simulator.report import write_run_report

        write_run_report(run_dir)
    return Run(run_dir, outcome.summary)


def resume(run_dir: str | Path, *, executor: Any = None, progress: ProgressFn | None = None,
           report: bool | None = None) -> Run:
    """Continue a killed run from its last checkpoint (or from the start if it has none).

    The traces written are byte-identical to those of an uninterrupted run (see checkpoint.py).
    """
    run_dir = Path(run_dir)
    options = read_run_options(run_dir)
    scenario = load_yaml_model(run_dir / "scenario.yaml", Scenario)
    checkpoint = load_checkpoint(run_dir)
    simulation = Simulation(scenario, run_dir, scenario_file=str(run_dir / "scenario.yaml"),
                            base_dir=Path(options["base_dir"]), timing_only=options["timing_only"],
                            executor=executor, progress=progress,
                            checkpoint_every_s=options.get("checkpoint_every_s"), resume_from=checkpoint)
    keep = {"scenario.yaml", RUN_OPTIONS_FILE, CHECKPOINT_FILE}
    for path in run_dir.iterdir():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    want_report = report if report is not None else scenario.output.report
    return _execute(simulation, run_dir, want_report)
