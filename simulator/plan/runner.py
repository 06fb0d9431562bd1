"""``run_plan``: from a plan file to the cheapest (or fastest, or leanest) fleet that meets the goal.

1. Load and check the plan; validate the base and catalogue as runs; plan each kind's submodel
   (:mod:`simulator.plan.feasibility`).
2. Search the compositions (:mod:`simulator.plan.search`). A versions goal runs each candidate
   timing-only with ``stop: {max_versions: N, sim_time_s: T}``: met when N versions are reached by T.
   An accuracy goal first runs candidates timing-only to T (the screen: a candidate must reach
   ``search.screen_versions`` versions; the screen uses the shards training will use, so its
   timeline is the training run's and a candidate it rules out could not reach that many versions
   in training either), then trains the screened-in candidates for real
   (``timing_only=False``, stop at the target or T) in the order of the objective — ascending price,
   or seconds / joules per version in the screen — a batch at a time, stopping after the first batch
   in which one meets the target, or after ``search.finalists`` trained. For price this finds the
   cheapest screened-in candidate that meets the target, as long as the finalist limit is not hit.
3. Write the table, best.yaml and plan.html (:mod:`simulator.plan.outputs`, :mod:`simulator.plan.report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from simulator.errors import InputError
from simulator.plan import rows as R
from simulator.plan.evaluate import Evaluator, RunSpec
from simulator.plan.feasibility import Feasibility, check_plan
from simulator.plan.fleets import Fleets
from simulator.plan.outputs import goal_stop, write_best, write_tables
from simulator.plan.rows import Row
from simulator.plan.screen import Screen, build_space
from simulator.plan.search import Scoring, SearchOutcome, choose_method, enumerate_all, optimise
from simulator.plan.spec import LoadedPlan, Search, load_plan
from simulator.plan.table import PlanTable, build_table
from simulator.output.folder import atomic_write_text, write_json
from simulator.sweep.backends import BACKENDS

MARKER = "plan.json"
ProgressFn = Callable[[str, str, str], None]


@dataclass
class PlanResult:
    plan_dir: Path
    loaded: LoadedPlan
    table: PlanTable
    outcome: SearchOutcome
    feasibility: Feasibility
    best_path: Path | None
    report_path: Path | None
    ran: int = 0          # runs made by this call
    reused: int = 0       # runs found finished on disk
    trained: int = 0      # finalists trained (accuracy goals)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> Row | None:
        return self.table.best


def _check_options(jobs: int, backend: str, budget: int | None, method: str | None) -> None:
    if backend not in BACKENDS:
        raise InputError("unknown backend", field="--backend", value=backend, accepted=", ".join(BACKENDS))
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InputError("jobs must be a whole number of at least 1", field="--jobs", value=jobs,
                         accepted="1, 2, … (candidates run side by side)")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
        raise InputError("the run budget must be a whole number of at least 1", field="--budget-runs", value=budget,
                         accepted="1, 2, … (most candidates simulated)")
    if method is not None and method not in ("auto", "enumerate", "optuna"):
        raise InputError("unknown search method", field="--method", value=method, accepted="auto, enumerate, optuna")


def _prepare(plan_dir: Path, loaded: LoadedPlan) -> None:
    """A new or empty folder, or one an earlier run of a plan wrote (it has plan.json): never write
    into a folder of someone else's files."""
    if plan_dir.exists() and not plan_dir.is_dir():
        raise InputError("the plan folder path exists and is not a folder", field="--out", value=str(plan_dir),
                         accepted="a new or empty folder, or the folder of an earlier run of this plan")
    if plan_dir.is_dir() and any(plan_dir.iterdir()) and not (plan_dir / MARKER).is_file():
        raise InputError("the folder is not empty and is not a plan folder (no plan.json); nothing was written",
                         field="--out", value=str(plan_dir),
                         accepted="a new or empty folder, or the folder of an earlier run of a plan")
    try:
        plan_dir.mkdir(parents=True, exist_ok=True)
        write_json(plan_dir / MARKER, {"plan": loaded.name, "plan_file": str(loaded.file.resolve())})
    except OSError as exc:
        raise InputError(f"the plan folder cannot be written ({exc.strerror})", field="--out", value=str(plan_dir),
                         accepted="a folder you can write to") from None
    atomic_write_text(plan_dir / "plan.yaml", loaded.file.read_text(encoding="utf-8"))


class _Phases:
    """Turns pending rows into rows with what their runs measured, one phase at a time."""

    def __init__(self, loaded: LoadedPlan, fleets: Fleets, evaluator: Evaluator) -> None:
        self.loaded, self.fleets, self.ev = loaded, fleets, evaluator
        self.failed: dict[str, str] = {}

    def _scenario(self, row: Row, stop: dict, like_training: bool) -> dict:
        data = self.fleets.scenario(row.counts, stop, row.name)
        if like_training and isinstance(data.get("workload"), dict):
            # samples_per_client only applies to timing-only runs: without it the screen partitions the
            # dataset as the training run will, so both runs share one timeline (scenario + seed)
            data["workload"].pop("samples_per_client", None)
        return data

    def _run(self, phase: str, rows: list[Row], stop: dict, timing_only: bool,
             like_training: bool = False) -> dict[str, R.RunResult]:
        specs = [RunSpec(r.name, self._scenario(r, stop, like_training), timing_only) for r in rows]
        results = self.ev.run(phase, specs)
        for name, result in results.items():
            if result.summary is None:
                self.failed[f"{phase}/{name}"] = result.error or "failed"
        return results

    def versions(self, rows: list[Row]) -> list[Row]:
        goal, constraints = self.loaded.spec.goal, self.loaded.spec.constraints
        results = self._run("runs", rows, goal_stop(goal), True)
        return [R.from_versions_run(r, results[r.name].summary, goal, constraints)
                if results[r.name].summary is not None else R.failed(r, results[r.name].error or "") for r in rows]

    def screen(self, rows: list[Row]) -> list[Row]:
        goal = self.loaded.spec.goal
        results = self._run("runs", rows, {"sim_time_s": goal.deadline_s}, True, like_training=True)
        need = self.loaded.spec.search.screen_versions
        return [R.from_screen_run(r, results[r.name].summary, goal, need)
                if results[r.name].summary is not None else R.failed(r, results[r.name].error or "") for r in rows]

    def train(self, rows: list[Row]) -> list[Row]:
        goal, constraints = self.loaded.spec.goal, self.loaded.spec.constraints
        results = self._run("train", rows, goal_stop(goal), False)
        return [R.from_training_run(r, results[r.name].summary, goal, constraints)
                if results[r.name].summary is not None else R.failed(r, results[r.name].error or "") for r in rows]


def _finalists(rows: list[Row], phases: _Phases, settings: Search, scoring: Scoring,
               minimise: str) -> tuple[list[Row], int]:
    """Train the screened-in candidates in objective order, a batch at a time (see the module docstring)."""
    def key(r: Row) -> tuple:
        by = {"price": r.price, "time_s": scoring.time_value(r), "energy_j": scoring.energy_value(r)}
        return (by[minimise], r.price, r.name)

    ordered = sorted((r for r in rows if r.reason == "not_trained"), key=key)[:settings.finalists]
    done: dict[str, Row] = {}
    for start in range(0, len(ordered), settings.batch):
        batch = phases.train(ordered[start:start + settings.batch])
        done.update({r.name: r for r in batch})
        if any(r.feasible for r in batch):
            break
    return [done.get(r.name, r) for r in rows], len(done)


def run_plan(path: str | Path, *, out: str | Path | None = None, jobs: int = 1, backend: str = "local",
             ray_address: str | None = None, budget_runs: int | None = None, method: str | None = None,
             force: bool = False, report: bool = True, progress: ProgressFn | None = None) -> PlanResult:
    """Search the plan file at `path` for the best fleet and write the plan folder (see the module docstring).

    ``budget_runs`` and ``method`` override the file's ``search``; ``force`` re-runs candidates already
    finished in the plan folder; ``progress(phase, candidate, status)`` is called once per candidate run.
    """
    _check_options(jobs, backend, budget_runs, method)
    loaded = load_plan(path)
    settings = loaded.spec.search
    if method is not None:
        settings = settings.model_copy(update={"method": method})
    budget = budget_runs if budget_runs is not None else settings.budget_runs
    fleets = Fleets(loaded)
    feasibility = check_plan(loaded, fleets)
    plan_dir = Path(out) if out is not None else loaded.default_output()
    _prepare(plan_dir, loaded)
    screen = Screen(loaded, fleets, feasibility)
    space = build_space(loaded, feasibility)
    spec = loaded.spec
    accuracy = spec.goal.target_accuracy is not None
    scoring = Scoring(spec.goal, spec.constraints, spec.minimise, settings.screen_versions if accuracy else None)
    import_paths = tuple(dict.fromkeys([str(loaded.plan_dir), str(loaded.base_dir), str(Path.cwd())]))
    trained = 0
    with Evaluator(plan_dir, backend=backend, jobs=jobs, ray_address=ray_address, force=force,
                   import_paths=import_paths, progress=progress) as evaluator:
        phases = _Phases(loaded, fleets, evaluator)
        evaluate = phases.screen if accuracy else phases.versions
        try:
            chosen, rows = choose_method(space, screen, settings, budget)
        except InputError as err:
            raise err.with_file(loaded.file) from None
        if chosen == "enumerate":
            outcome = enumerate_all(rows or [], evaluate, space)
        else:
            outcome = optimise(space, screen, evaluate, settings, budget, loaded.seed, scoring)
        judged = outcome.rows
        if accuracy:
            judged, trained = _finalists(judged, phases, settings, scoring, spec.minimise)
    seen = {r.counts for r in judged}
    extra = [r for r in screen.out_of_memory_rows() if r.counts not in seen]
    table = build_table(judged + extra, loaded.labels, spec.minimise)
    write_tables(plan_dir, table)
    best_path = write_best(plan_dir, loaded, fleets, table.best, spec.minimise)
    report_path = None
    result = PlanResult(plan_dir, loaded, table, outcome, feasibility, best_path, None, evaluator.ran,
                        evaluator.reused, trained, dict(sorted(phases.failed.items())))
    if report:
        from simulator.plan.report import write_plan_report

        report_path = write_plan_report(result, plan_dir / "plan.html")
        result = replace(result, report_path=report_path)
    write_json(plan_dir / MARKER, _marker(loaded, result, budget, settings))
    return result


def _marker(loaded: LoadedPlan, result: PlanResult, budget: int, settings: Search) -> dict:
    best = result.best
    return {
        "plan": loaded.name, "plan_file": str(loaded.file.resolve()),
        "base_file": str(loaded.base_file) if loaded.base_file else None, "seed": loaded.seed,
        "method": result.outcome.method, "budget_runs": budget, "batch": settings.batch, "sampler": settings.sampler,
        "space_size": result.outcome.space_size, "candidates_run": result.outcome.runs,
        "best": None if best is None else {"candidate": best.name, "price": best.price,
                                           "time_to_goal_s": best.time_to_goal_s, "energy_j": best.energy_j},
        "note": result.outcome.note,
        "kinds": [{"label": k.label, "fits_memory": k.fits_memory, "peak_memory_bytes": k.peak_memory_bytes,
                   "usable_memory_bytes": k.usable_memory_bytes} for k in result.feasibility.kinds],
    }


def read_table(plan_dir: str | Path):  # noqa: ANN201 - a pandas DataFrame
    """The table of a finished plan folder."""
    import pandas as pd

    return pd.read_parquet(Path(plan_dir) / "plan.parquet")
