"""Other objectives and the constraints: the chosen row is the feasible one with the least objective,
fleets over max_price are never run, and fleets over max_energy_j do not count as meeting the goal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.plan import write_plan
from simulator.plan import run_plan


@pytest.mark.slow
@pytest.mark.parametrize("minimise, column", [("time_s", "time_to_goal_s"), ("energy_j", "energy_j")])
def test_the_chosen_fleet_has_the_least_objective(tmp_path: Path, minimise: str, column: str) -> None:
    result = run_plan(write_plan(tmp_path, plan={"minimise": minimise}), report=False)
    frame = result.table.frame
    feasible = frame[frame.feasible]
    assert len(feasible) == 5   # the fleets without a slow device (see plan_helpers)
    least = feasible.sort_values([column, "price", "candidate"]).iloc[0]
    assert result.best.name == least.candidate and bool(frame[frame.chosen].candidate.iloc[0] == least.candidate)


@pytest.mark.slow
def test_max_price_and_max_energy_constrain_the_choice(tmp_path: Path) -> None:
    free = run_plan(write_plan(tmp_path / "free"), report=False).table.frame
    meeting = free[free.feasible].sort_values("price")
    # an energy budget the cheapest meeting fleet exceeds, but some other meeting fleet does not
    cheapest = meeting.iloc[0]
    within = meeting[meeting.energy_j < cheapest.energy_j]
    if within.empty:
        pytest.skip("the cheapest meeting fleet also uses the least energy here")
    limit = float(within.energy_j.max() + cheapest.energy_j) / 2
    result = run_plan(write_plan(tmp_path / "limited", plan={"constraints": {"max_price": 1300,
                                                                           "max_energy_j": limit}}),
                      report=False)
    frame = result.table.frame.set_index("candidate")
    over = frame[frame.price > 1300]
    assert (over.reason == "over_budget").all() and not over.ran.any() and len(over) > 0
    assert frame.loc[cheapest.candidate, "reason"] == "over_energy"
    assert "over the energy budget" in frame.loc[cheapest.candidate, "why_not"]
    allowed = meeting[(meeting.energy_j <= limit) & (meeting.price <= 1300)].sort_values(["price", "candidate"])
    assert result.best.name == allowed.candidate.iloc[0]
