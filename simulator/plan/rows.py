"""One row per candidate: its counts, price, what its run(s) measured, and whether it meets the goal.

Rows are made from the run's ``summary.json`` only (never from memory of what just ran), so a
resumed plan, one run on Ray and one run locally give the same rows. A candidate that needed no run
(out of memory, too few devices for the algorithm, over budget) gets its row from the screen.

``reason`` is one word for the table and the report's "why not" chart; ``why_not`` says it in a
sentence with the figures that decided it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from simulator.plan.spec import Constraints, Goal

NAN = math.nan

# reason → what the report calls it
REASONS = {
    "meets": "meets the goal",
    "out_of_memory": "out of memory",
    "too_few_devices": "too few devices to merge",
    "over_budget": "over budget (price)",
    "too_slow": "too slow",
    "stalled": "stalled",
    "over_energy": "over budget (energy)",
    "screened_out": "too slow (timing screen)",
    "not_trained": "not trained (finalist limit)",
    "accuracy_not_reached": "accuracy not reached",
    "failed": "run failed",
    "dearer": "not run: dearer than a fleet found to meet the goal",
}


@dataclass(frozen=True)
class Row:
    counts: tuple[int, ...]
    name: str
    price: float
    devices: int
    trial: int                       # evaluation order (-1: screened before the search)
    reason: str
    why_not: str = ""
    ran: bool = False                # a timing-only run of it exists
    versions: float = NAN            # versions reached (at the goal, or by the deadline)
    makespan_s: float = NAN
    time_to_goal_s: float = NAN
    energy_j: float = NAN
    fleet_utilization: float = NAN
    oom_kinds: str = ""
    stop_reason: str = ""
    trained: bool = False            # accuracy goals: trained for real
    final_accuracy: float = NAN
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def feasible(self) -> bool:
        return self.reason == "meets"

    def objective(self, minimise: str) -> float:
        if minimise == "price":
            return self.price
        if minimise == "energy_j":
            return self.energy_j
        return self.time_to_goal_s


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else NAN


def screened(counts: tuple[int, ...], name: str, price: float, trial: int, reason: str, why_not: str,
             oom_kinds: str = "") -> Row:
    return Row(counts, name, price, sum(counts), trial, reason, why_not, oom_kinds=oom_kinds)


def _measured(row: Row, summary: dict[str, Any]) -> Row:
    return replace(row, ran=True, versions=_number(summary.get("versions")),
                   makespan_s=_number(summary.get("makespan_s")), energy_j=_number(summary.get("energy_j")),
                   fleet_utilization=_number(summary.get("fleet_utilization")),
                   stop_reason=str(summary.get("stop_reason", "")))


def _energy_check(row: Row, constraints: Constraints) -> Row:
    limit = constraints.max_energy_j
    if row.reason == "meets" and limit is not None and row.energy_j > limit:
        return replace(row, reason="over_energy",
                       why_not=f"over the energy budget: {row.energy_j:,.0f} J > {limit:,.0f} J to the goal")
    return row


def from_versions_run(row: Row, summary: dict[str, Any], goal: Goal, constraints: Constraints) -> Row:
    """A timing-only run stopped at ``max_versions: N`` or ``sim_time_s: T``: met iff N versions by T."""
    row = _measured(row, summary)
    need = int(goal.versions or 0)
    if row.versions >= need:
        return _energy_check(replace(row, reason="meets", why_not="", time_to_goal_s=row.makespan_s), constraints)
    if row.stop_reason.startswith("stalled"):
        return replace(row, reason="stalled", why_not=f"stalled after {row.versions:,.0f} of {need:,} versions at "
                       f"{row.makespan_s:,.0f} s: no device could do more work")
    return replace(row, reason="too_slow",
                   why_not=f"too slow: {row.versions:,.0f} of {need:,} versions by {goal.deadline_s:,.0f} s")


def from_screen_run(row: Row, summary: dict[str, Any], goal: Goal, screen_versions: int) -> Row:
    """Accuracy goals, first pass: a timing-only run to the deadline; trained later only if it reached
    `screen_versions` versions (fewer merges than that cannot be worth training for)."""
    row = _measured(row, summary)
    if row.versions >= screen_versions:
        return replace(row, reason="not_trained", why_not="passed the timing screen; not among the finalists trained")
    if row.stop_reason.startswith("stalled"):
        return replace(row, reason="stalled", why_not=f"stalled after {row.versions:,.0f} versions at "
                       f"{row.makespan_s:,.0f} s (timing-only): no device could do more work")
    return replace(row, reason="screened_out", why_not=f"too slow: {row.versions:,.0f} versions by "
                   f"{goal.deadline_s:,.0f} s in the timing-only screen, fewer than the {screen_versions:,} needed "
                   "to be trained")


def from_training_run(row: Row, summary: dict[str, Any], goal: Goal, constraints: Constraints) -> Row:
    """Accuracy goals, finalists: real training of the proxy model to the target or the deadline. The
    figures (time, energy, utilization, versions) become the training run's."""
    ttt = summary.get("time_to_target_s")
    accuracy = _number(summary.get("final_accuracy"))
    trained = replace(row, trained=True, final_accuracy=accuracy,
                      extra={**row.extra, "screen_versions": row.versions})
    trained = _measured(trained, summary)
    if isinstance(ttt, (int, float)) and not isinstance(ttt, bool):
        return _energy_check(replace(trained, reason="meets", why_not="", time_to_goal_s=float(ttt)), constraints)
    shown = "n/a" if math.isnan(accuracy) else f"{accuracy:.3f}"
    return replace(trained, reason="accuracy_not_reached",
                   why_not=f"accuracy not reached: {shown} < {goal.target_accuracy:g} by {goal.deadline_s:,.0f} s")


def failed(row: Row, error: str) -> Row:
    first = (error or "failed").strip().splitlines()[0][:300]
    return replace(row, reason="failed", why_not=f"run failed: {first}")
