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
from simulator.engine import ProgressFn, Simulation
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
    def versions(self) -> pd.DataFrame:
        return read_table(self.run_dir, "versions")

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.html"


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML (InputError naming file, field, value on any problem)."""
    return load_yaml_model(path, Scenario)


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
) -> Run:
    """Run a scenario and return its :class:`Run`.

    ``out`` is the run folder (default: ``output.folder/run_name``); an existing non-empty folder is
    refused unless ``force``. ``seed`` overrides the scenario's seed.
    """
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
        scenario = scenario.model_copy(update={"seed": seed})
    simulation = Simulation(scenario, Path("."), scenario_file=file, base_dir=base_dir,
                            timing_only=timing_only, executor=executor, progress=progress)
    run_dir = prepare_run_dir(resolve_run_dir(scenario, out), force)
    simulation.run_dir = run_dir
    resolved = scenario.model_dump(mode="json")
    resolved["algorithm"] = simulation.algorithm.as_dict()
    write_yaml(run_dir / "scenario.yaml", resolved)
    outcome = simulation.run()
    result = Run(run_dir, outcome.summary)
    if report if report is not None else scenario.output.report:
        from simulator.report import write_run_report

        write_run_report(run_dir)
    return result
