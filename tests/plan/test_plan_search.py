"""The hand-known optimum (see plan_helpers) is found exactly: by enumeration and by the optimiser.

The expectations follow from memory limits, counts and the synchronous round, never from cost-model
figures: tiny cannot hold even the framework overhead, a round with a slow device outlasts the
deadline, and rounds of good/big devices take seconds against a 1,000 s deadline.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers.plan import CATALOGUE, write_plan
from simulator.plan import run_plan
from simulator.plan.table import count_column


@pytest.fixture(scope="module")
def every_device(tmp_path_factory: pytest.TempPathFactory):
    """Case A: every device in every round; enumerated (23 runs)."""
    path = write_plan(tmp_path_factory.mktemp("every"))
    return run_plan(path, report=False)


def _row(result, name: str) -> pd.Series:
    frame = result.table.frame
    return frame[frame.candidate == name].iloc[0]


@pytest.mark.slow
def test_enumeration_finds_one_good_device(every_device) -> None:
    result = every_device
    best = result.best
    assert (best.name, best.counts, best.price) == ("good=1", (0, 0, 1, 0), 300.0)
    assert result.outcome.method == "enumerate"
    # tiny is held at 0 (out of memory): 4 × 3 × 2 compositions, all run but the empty one
    assert result.outcome.space_size == 24 and result.outcome.runs == 23
    frame = result.table.frame
    assert list(frame.candidate) == list(frame.sort_values(["price", "candidate"]).candidate)
    assert frame.chosen.sum() == 1 and _row(result, "good=1").chosen
    # the cheaper fleets fail for the reasons the hand analysis gives
    cheaper = frame[frame.price < 300]
    assert dict(zip(cheaper.candidate, cheaper.reason)) == {
        "empty": "too_few_devices", "tiny=1": "out_of_memory",
        "slow=1": "too_slow", "slow=2": "too_slow", "slow=3": "too_slow"}
    assert "needs 0.30 GB, 0.10 GB usable" in _row(result, "tiny=1").why_not
    # every fleet with a slow device makes no version at all; every other fleet meets the goal
    for _, row in frame[frame.ran].iterrows():
        if row[count_column("slow")] > 0:
            assert row.reason == "too_slow" and row.versions == 0 and math.isnan(row.time_to_goal_s)
        else:
            assert row.reason == "meets" and row.versions == 3 and row.time_to_goal_s < 60
    assert set(frame[frame.feasible].candidate) == {"good=1", "good=2", "big=1", "good=1__big=1", "good=2__big=1"}


def test_rows_come_from_the_runs_and_out_of_memory_kinds_are_never_run(every_device) -> None:
    result = every_device
    runs = result.plan_dir / "runs"
    folders = {p.name for p in runs.iterdir() if p.is_dir()}
    frame = result.table.frame
    assert folders == set(frame[frame.ran].candidate)
    assert not any("tiny" in name for name in folders)
    for _, row in frame[frame.ran].iterrows():
        summary = json.loads((runs / row.candidate / "summary.json").read_text())
        assert summary["versions"] == row.versions and summary["energy_j"] == row.energy_j
        assert summary["devices"] == row.devices and summary["fleet_utilization"] == row.fleet_utilization
        if row.feasible:
            assert summary["stop_reason"] == "max_versions" and summary["makespan_s"] == row.time_to_goal_s
        scenario = yaml.safe_load((runs / row.candidate / "scenario.yaml").read_text())
        assert scenario["stop"]["max_versions"] == 3 and scenario["stop"]["sim_time_s"] == 1000
        assert scenario["seed"] == 0 and sum(g["count"] for g in scenario["fleet"]) == row.devices
    manifest = json.loads((runs / "manifest.json").read_text())
    assert set(manifest["variants"]) == folders


def test_pareto_front_is_the_non_dominated_feasible_rows(every_device) -> None:
    frame = every_device.table.frame
    feasible = frame[frame.feasible]
    for _, row in feasible.iterrows():
        dominated = ((feasible.price <= row.price) & (feasible.time_to_goal_s <= row.time_to_goal_s)
                     & ((feasible.price < row.price) | (feasible.time_to_goal_s < row.time_to_goal_s))).any()
        assert row.pareto_time == (not dominated), row.candidate
    assert frame[~frame.feasible].pareto_time.sum() == 0
    assert bool(frame[frame.chosen].pareto_time.iloc[0])  # the cheapest feasible fleet is on the front


@pytest.mark.slow
def test_two_clients_per_round_need_two_good_devices(tmp_path: Path) -> None:
    """Every fleet cheaper than 2 × good has at most one fast device: with two clients per round,
    every round then holds a slow one (or there are too few devices to merge)."""
    result = run_plan(write_plan(tmp_path, clients_per_round=2), report=False)
    assert (result.best.name, result.best.price) == ("good=2", 600.0)
    frame = result.table.frame
    for name in ("good=1", "big=1", "slow=1"):
        row = _row(result, name)
        assert row.reason == "too_few_devices" and not row.ran and "clients_per_round = 2" in row.why_not
    assert not (frame[frame.price < 600].feasible).any()
    assert result.outcome.runs == 20


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])
def test_the_optimiser_finds_one_good_device(tmp_path: Path, sampler: str) -> None:
    path = write_plan(tmp_path, plan={"search": {"method": "optuna", "budget_runs": 10, "sampler": sampler}})
    result = run_plan(path, report=False)
    assert result.outcome.method == "optuna" and result.outcome.runs <= 10
    assert (result.best.name, result.best.price) == ("good=1", 300.0)
    if sampler == "nsga2":   # a Pareto search runs the dearer, faster fleets too
        assert "dearer" not in set(result.table.frame.reason)


MIXED = [
    CATALOGUE[0],
    {"name": "mid", "profile": "profiles/good.yaml", "unit_price": 120, "max_count": 2},
    {"name": "good", "profile": "profiles/good.yaml", "unit_price": 300, "max_count": 5},
    {"name": "big", "profile": "profiles/big.yaml", "unit_price": 1000, "max_count": 3},
]


@pytest.mark.slow
def test_the_optimiser_finds_a_mixed_optimum_within_its_budget(tmp_path: Path) -> None:
    """Three clients per round, no slow kind: every fleet of three or more fast devices meets the goal,
    so the cheapest is 2 × mid + 1 × good (540) — not one of the optimiser's probes (one device of a
    kind alone, the largest fleet). 62 of the 72 compositions can run; the budget is 16."""
    path = write_plan(tmp_path, clients_per_round=3,
                      plan={"catalogue": MIXED, "search": {"method": "optuna", "budget_runs": 16}})
    result = run_plan(path, report=False)
    assert result.outcome.space_size == 72 and result.outcome.runs <= 16
    assert (result.best.name, result.best.price) == ("mid=2__good=1", 540.0)
    frame = result.table.frame
    assert frame.ran.sum() == result.outcome.runs
    # dearer fleets proposed after one meeting the goal was found are judged without a run
    dearer = frame[frame.reason == "dearer"]
    assert not dearer.ran.any() and (dearer.price > 540).all()


@pytest.mark.slow
def test_the_same_plan_gives_the_same_table(tmp_path: Path) -> None:
    plan = {"catalogue": MIXED, "search": {"method": "optuna", "budget_runs": 12}}
    first = run_plan(write_plan(tmp_path / "a", clients_per_round=3, plan=plan), report=False)
    second = run_plan(write_plan(tmp_path / "b", clients_per_round=3, plan=plan), report=False)
    pd.testing.assert_frame_equal(first.table.frame, second.table.frame)
