"""Searching the compositions: every one when the space is small, Optuna when it is not.

Enumeration walks the space in catalogue order; the screen decides what it can without a run and
the rest is run, all of it. It is chosen when the candidates left after the screen number at most
``search.enumerate_max`` (default: the run budget).

Optuna searches larger spaces within ``budget_runs`` runs: one integer parameter per entry that can
hold the model (``IntDistribution(min_count, max_count)``), a seeded sampler (TPE on the objective,
or NSGA-II on price, time and energy together for a Pareto search), and the goal, ``max_price`` and
``max_energy_j`` as Optuna constraints (feasible when every value is <= 0). Trials are asked in
fixed batches of ``search.batch`` and told in the order asked, so the candidates evaluated depend on
the plan file and seed only, never on ``--jobs``, the backend, or which run finished first.
The first trials are enqueued probes: one device of each kind alone, and the largest fleet. A
composition asked again costs no run (its repeat is told FAIL); the screen's candidates cost no run
either, nor — minimising price with TPE — fleets dearer than one already found to meet the goal
(they cannot be the answer). The budget counts candidates simulated (or found finished on disk
when resuming); the search also stops when every composition is judged, or when
``STALE_BATCHES`` batches in a row bring nothing new (the sampler has converged).

Measured on this repository's test plans (tests/plan): with a budget of 16 runs TPE found the
exact optimum of a 72-composition space (62 runnable) for 20 of 20 seeds, and the shipped
scenarios/plans/buy_fleet.yaml's optimum (checked by enumeration) for seeds 0-5 in 10-15 runs.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable

from simulator.errors import InputError
from simulator.plan.fleets import Counts, Space
from simulator.plan.rows import Row
from simulator.plan.screen import Screen
from simulator.plan.spec import Constraints, Goal, Search

SCAN_MAX = 200_000        # spaces larger than this are not scanned for enumeration
STALE_BATCHES = 16        # stop when this many batches in a row propose only candidates already judged

EvaluateFn = Callable[[list[Row]], list[Row]]   # pending rows → rows with what their runs measured


@dataclass
class SearchOutcome:
    rows: list[Row]          # every candidate judged, in evaluation order
    method: str              # "enumerate" | "optuna"
    space_size: int
    runs: int                # candidates simulated (or reused from disk)
    note: str = ""


def choose_method(space: Space, screen: Screen, settings: Search, budget: int) -> tuple[str, list[Row] | None]:
    """("enumerate", rows judged or pending, in space order) or ("optuna", None)."""
    limit = min(budget, settings.enumerate_max if settings.enumerate_max is not None else budget)
    if settings.method == "optuna":
        return "optuna", None
    if space.size > SCAN_MAX:
        if settings.method == "enumerate":
            raise InputError(f"the space has {space.size:,} compositions, too many to enumerate",
                             field="search.method", value="enumerate", accepted=f"auto or optuna (enumeration scans at "
                             f"most {SCAN_MAX:,}), or smaller max_count values")
        return "optuna", None
    rows = []
    for trial, counts in enumerate(space):
        rows.append(screen.judge(counts, trial) or screen.pending(counts, trial))
    runnable = sum(r.reason == "pending" for r in rows)
    if settings.method == "enumerate" and runnable > budget:
        raise InputError(f"enumerating needs {runnable:,} runs, more than the run budget", field="search.budget_runs",
                         value=budget, accepted=f"a budget of at least {runnable:,} (--budget-runs), or method auto "
                                                "or optuna to search within the budget")
    if settings.method == "enumerate" or runnable <= limit:
        return "enumerate", rows
    return "optuna", None


def enumerate_all(rows: list[Row], evaluate: EvaluateFn, space: Space) -> SearchOutcome:
    pending = [r for r in rows if r.reason == "pending"]
    done = {r.counts: r for r in evaluate(pending)} if pending else {}
    out = [done.get(r.counts, r) for r in rows]
    return SearchOutcome(out, "enumerate", space.size, len(pending))


@dataclass
class Scoring:
    """Optuna's view of a row: the values to minimise and the constraint violations (> 0: infeasible).

    Rows that did not meet the goal carry placeholder values; Optuna's constrained samplers rank
    infeasible trials by their violations, not their values. For the accuracy goal's timing screen
    the "goal" is reaching ``screen_versions`` and time and energy are per version."""

    goal: Goal
    constraints: Constraints
    minimise: str
    screen_versions: int | None = None   # set: the accuracy goal's timing screen

    def goal_violation(self, row: Row) -> float:
        """0 when met; the share of versions missing for a run; more than any run for a fleet that
        could not run (1 + the share of devices missing, when it had too few to merge)."""
        if not row.ran:
            return 1.0 + float(row.extra.get("missing_share", 1.0))
        need = self.screen_versions if self.screen_versions is not None else int(self.goal.versions or 1)
        return max(0.0, (need - row.versions) / need) if math.isfinite(row.versions) else 1.0

    def time_value(self, row: Row) -> float:
        deadline = self.goal.deadline_s
        if self.screen_versions is not None:
            return deadline / row.versions if row.ran and row.versions > 0 else deadline * 1e6
        if math.isfinite(row.time_to_goal_s):
            return row.time_to_goal_s
        return deadline * (1.0 + self.goal_violation(row))

    def energy_value(self, row: Row) -> float:
        if not (row.ran and math.isfinite(row.energy_j)):
            return 1e30
        if self.screen_versions is not None:
            return row.energy_j / max(row.versions, 1.0)
        return row.energy_j

    def values(self, row: Row, sampler: str) -> list[float]:
        by = {"price": row.price, "time_s": self.time_value(row), "energy_j": self.energy_value(row)}
        if sampler == "nsga2":
            return [by["price"], by["time_s"], by["energy_j"]]
        return [by[self.minimise]]

    def violations(self, row: Row) -> list[float]:
        if row.reason == "failed":
            return [1.0, 0.0, 0.0]
        limit_p, limit_e = self.constraints.max_price, self.constraints.max_energy_j
        price = max(0.0, row.price / limit_p - 1.0) if limit_p else 0.0
        energy = 0.0
        if limit_e and self.screen_versions is None:
            energy = max(0.0, row.energy_j / limit_e - 1.0) if math.isfinite(row.energy_j) else 1.0
        return [self.goal_violation(row), price, energy]


def _sampler(settings: Search, seed: int) -> Any:
    import optuna

    def constraints(trial: Any) -> list[float]:
        return list(trial.user_attrs["constraints"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constraints_func is marked experimental in some versions
        if settings.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(population_size=max(2, settings.batch), seed=seed,
                                                 constraints_func=constraints)
        return optuna.samplers.TPESampler(seed=seed, constraints_func=constraints)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise InputError("searching a large space needs the 'optuna' package", field="search.method",
                         value="optuna", accepted="pip install optuna, or a smaller catalogue that is "
                                                  "enumerated (search.enumerate_max)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _probes(space: Space) -> list[Counts]:
    """One device of each kind alone (with the others at min_count), then the largest fleet."""
    probes = []
    for i in space.free:
        counts = list(space.lows)
        counts[i] = max(1, space.lows[i])
        probes.append(tuple(counts))
    probes.append(tuple(space.highs))
    return list(dict.fromkeys(probes))


def optimise(space: Space, screen: Screen, evaluate: EvaluateFn, settings: Search, budget: int, seed: int,
             scoring: Scoring) -> SearchOutcome:
    """Ask/tell in fixed batches until `budget` candidates have been run (see the module docstring)."""
    optuna = _optuna()
    if not space.free:   # one composition: nothing to search
        only = tuple(space.lows)
        row = screen.judge(only, 0) or screen.pending(only, 0)
        rows = evaluate([row]) if row.reason == "pending" else [row]
        return SearchOutcome(rows, "optuna", 1, int(row.reason == "pending"), "a single composition")
    distributions = {space.labels[i]: optuna.distributions.IntDistribution(space.lows[i], space.highs[i])
                     for i in space.free}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=_sampler(settings, seed),
                                    directions=["minimize"] * len(scoring.values(screen.pending(space.lows, 0),
                                                                                 settings.sampler)))
        for probe in _probes(space):
            study.enqueue_trial(space.params(probe))
    known: dict[Counts, Row] = {}
    order: list[Row] = []
    runs, stale = 0, 0
    bound = _PriceBound(scoring, settings)
    told: set[Counts] = set()
    while runs < budget and stale < STALE_BATCHES and len(known) < space.size:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trials = [study.ask(distributions) for _ in range(settings.batch)]
        judged_before = len(known)
        batch = [space.counts(t.params) for t in trials]
        to_run: list[Row] = []
        for counts in batch:
            if counts in known or any(r.counts == counts for r in to_run):
                continue
            judged = screen.judge(counts, 0) or bound.judge(screen.pending(counts, 0))
            if judged is not None:
                known[counts] = judged
                order.append(judged)
            elif runs + len(to_run) < budget:
                to_run.append(screen.pending(counts, 0))
        for row in evaluate(to_run) if to_run else []:
            known[row.counts] = row
            order.append(row)
            bound.update(row)
        runs += len(to_run)
        stale = stale + 1 if len(known) == judged_before else 0
        _tell(study, trials, batch, known, told, scoring, settings.sampler)
    order = _renumber(order)
    note = "" if runs >= budget else ("every composition judged" if len(known) >= space.size else
                                      f"stopped before the budget: {STALE_BATCHES} batches in a row proposed "
                                      "only candidates already judged")
    return SearchOutcome(order, "optuna", space.size, runs, note)


class _PriceBound:
    """Minimising price (TPE), a fleet dearer than one already found to meet the goal cannot be the
    answer: it is not run, and Optuna is told its price as if it met the goal (an optimistic value
    that still ranks it behind the fleet found). Equal prices are run (the tie-break is by time).
    Not used for Pareto search (NSGA-II wants the dearer, faster fleets) nor for accuracy goals (the
    timing screen's pass does not mean the target is met)."""

    def __init__(self, scoring: Scoring, settings: Search) -> None:
        self.active = scoring.minimise == "price" and settings.sampler == "tpe" and scoring.screen_versions is None
        self.best: Row | None = None

    def update(self, row: Row) -> None:
        if not (self.active and row.feasible):
            return
        if self.best is None or (row.price, row.name) < (self.best.price, self.best.name):
            self.best = row

    def judge(self, row: Row) -> Row | None:
        if self.best is None or row.price <= self.best.price:
            return None
        return replace(row, reason="dearer", why_not=f"not run: dearer than {self.best.name} "
                       f"({self.best.price:,.2f}), found to meet the goal")


def _tell(study: Any, trials: list[Any], batch: list[Counts], known: dict[Counts, Row], told: set[Counts],
          scoring: Scoring, sampler: str) -> None:
    """Tell each trial its candidate's values, in the order asked. A composition's first trial is told
    its values; a repeat is told FAIL, which the samplers ignore, so a candidate asked again does not
    weigh twice in the model (and pull the sampler back to it); so is a trial past the budget."""
    import optuna

    for trial, counts in zip(trials, batch):
        row = known.get(counts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if row is None or counts in told:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            told.add(counts)
            trial.set_user_attr("constraints", [0.0, 0.0, 0.0] if row.reason == "dearer" else scoring.violations(row))
            study.tell(trial, scoring.values(row, sampler))


def _renumber(rows: list[Row]) -> list[Row]:
    return [replace(r, trial=i) for i, r in enumerate(rows)]
