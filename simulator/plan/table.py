"""The plan's table, the chosen fleet, the Pareto fronts and the closest misses.

One row per candidate judged (run or screened), sorted by price then name, so the same plan file
and seed give the same table whatever the backend, ``--jobs`` or resuming. The chosen fleet is the
feasible row with the least objective (ties: cheaper, then faster, then less energy, then name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from simulator.plan.rows import Row

FIXED_COLUMNS = ("devices", "price", "feasible", "reason", "why_not", "time_to_goal_s", "versions", "energy_j",
                 "fleet_utilization", "makespan_s", "oom_kinds", "ran", "trained", "final_accuracy", "stop_reason",
                 "trial", "pareto_time", "pareto_energy", "chosen")
FLOAT_COLUMNS = ("price", "time_to_goal_s", "versions", "energy_j", "fleet_utilization", "makespan_s",
                 "final_accuracy")


def count_column(label: str) -> str:
    return f"count.{label}"


def _finite(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x) or isinstance(x, int)


def pareto(rows: list[Row], axis: str) -> set[str]:
    """Names of the feasible rows no other feasible row beats on both price and `axis`
    (``time_to_goal_s`` or ``energy_j``), nor equals on both while being listed first."""
    points = sorted(((r.price, getattr(r, axis), r.name) for r in rows if r.feasible and _finite(getattr(r, axis))))
    front, best_other = set(), math.inf
    for price, other, name in points:   # by price, then axis: a point is on the front iff it improves the axis
        if other < best_other:
            front.add(name)
            best_other = other
    return front


def choose(rows: list[Row], minimise: str) -> Row | None:
    feasible = [r for r in rows if r.feasible and _finite(r.objective(minimise))]
    if not feasible:
        return None
    return min(feasible, key=lambda r: (r.objective(minimise), r.price, r.time_to_goal_s, r.energy_j, r.name))


def closest(rows: list[Row], count: int = 5) -> list[Row]:
    """When nothing meets the goal: the runs that came nearest (most trained accuracy, then most
    versions by the deadline), cheapest first among equals."""
    ran = [r for r in rows if r.ran]

    def key(r: Row) -> tuple:
        accuracy = r.final_accuracy if r.trained and math.isfinite(r.final_accuracy) else -1.0
        versions = r.extra.get("screen_versions", r.versions) if r.trained else r.versions
        return (-accuracy, -(versions if math.isfinite(versions) else -1.0), r.price, r.name)

    return sorted(ran, key=key)[:count]


@dataclass
class PlanTable:
    frame: pd.DataFrame
    best: Row | None
    rows: list[Row]


def build_table(rows: list[Row], labels: list[str], minimise: str) -> PlanTable:
    rows = sorted(rows, key=lambda r: (r.price, r.name))
    best = choose(rows, minimise)
    front_t, front_e = pareto(rows, "time_to_goal_s"), pareto(rows, "energy_j")
    columns: dict[str, list] = {"candidate": [r.name for r in rows]}
    for i, label in enumerate(labels):
        columns[count_column(label)] = [int(r.counts[i]) for r in rows]
    values = {
        "devices": [int(r.devices) for r in rows], "price": [r.price for r in rows],
        "feasible": [r.feasible for r in rows], "reason": [r.reason for r in rows],
        "why_not": [r.why_not for r in rows], "time_to_goal_s": [r.time_to_goal_s for r in rows],
        "versions": [r.versions for r in rows], "energy_j": [r.energy_j for r in rows],
        "fleet_utilization": [r.fleet_utilization for r in rows], "makespan_s": [r.makespan_s for r in rows],
        "oom_kinds": [r.oom_kinds for r in rows], "ran": [r.ran for r in rows], "trained": [r.trained for r in rows],
        "final_accuracy": [r.final_accuracy for r in rows], "stop_reason": [r.stop_reason for r in rows],
        "trial": [int(r.trial) for r in rows], "pareto_time": [r.name in front_t for r in rows],
        "pareto_energy": [r.name in front_e for r in rows],
        "chosen": [best is not None and r.name == best.name for r in rows],
    }
    columns.update(values)
    frame = pd.DataFrame(columns)
    for name in FLOAT_COLUMNS:
        frame[name] = frame[name].astype("float64")
    for name in ("feasible", "ran", "trained", "pareto_time", "pareto_energy", "chosen"):
        frame[name] = frame[name].astype("bool")
    for name in ("devices", "trial", *(count_column(lb) for lb in labels)):
        frame[name] = frame[name].astype("int64")
    return PlanTable(frame, best, rows)
