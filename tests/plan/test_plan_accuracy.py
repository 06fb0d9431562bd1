"""Accuracy goals: a timing-only screen first, real training (mlp-tiny on the digits) only for the
finalists, in price order, stopping after the first batch with a fleet that meets the target."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers.plan import base_scenario, write_plan
from simulator.plan import run_plan
from simulator.trace.recorder import read_table


@pytest.fixture(scope="module")
def accuracy_plan(tmp_path_factory: pytest.TempPathFactory):
    base = base_scenario()
    base["workload"]["samples_per_client"] = 64   # honoured by timing-only runs only: the screen drops it
    path = write_plan(tmp_path_factory.mktemp("accuracy"), base=base,
                      plan={"goal": {"target_accuracy": 0.6, "deadline_s": 1000},
                            "search": {"finalists": 3, "batch": 2}})
    return run_plan(path, report=True)


@pytest.mark.slow
def test_only_finalists_are_trained_cheapest_first(accuracy_plan) -> None:
    result = accuracy_plan
    frame = result.table.frame
    trained = frame[frame.trained]
    assert 1 <= len(trained) <= 3 and result.trained == len(trained)
    train_dir = result.plan_dir / "train"
    assert {p.name for p in train_dir.iterdir() if p.is_dir()} == set(trained.candidate)
    # the screen: every fleet with a slow device makes no version by the deadline and is never trained
    screened_out = frame[frame.reason == "screened_out"]
    assert (screened_out["count.slow"] > 0).all() and (screened_out.versions == 0).all()
    # finalists are the cheapest fleets that passed the screen, trained in price order
    passed = frame[frame.trained | (frame.reason == "not_trained")].sort_values(["price", "candidate"])
    assert list(trained.sort_values(["price", "candidate"]).candidate) == list(passed.candidate[:len(trained)])
    # the chosen fleet is the cheapest trained one that met the target; no cheaper finalist did
    best = result.best
    assert best is not None and best.trained and best.final_accuracy >= 0.6
    assert best.time_to_goal_s <= 1000
    cheaper = trained[trained.price < best.price]
    assert (cheaper.reason == "accuracy_not_reached").all()
    # batches of 2 in price order, stopping after the first batch that holds a success (at most 3)
    order = list(trained.sort_values(["price", "candidate"]).reason)
    first_success = order.index("meets")
    assert len(trained) == min(3, 2 * (first_success // 2 + 1), len(passed))


def test_the_screen_and_the_training_run_share_one_timeline(accuracy_plan) -> None:
    """Same shards (samples_per_client left out of the screen), same scenario and seed: the versions
    the screen saw up to the target are the training run's, to the float."""
    result = accuracy_plan
    for name in result.table.frame[result.table.frame.trained].candidate:
        screen = read_table(result.plan_dir / "runs" / name, "versions")
        train = read_table(result.plan_dir / "train" / name, "versions")
        assert len(train) >= 1 and len(screen) >= len(train)
        pd.testing.assert_series_equal(screen.time_s[:len(train)].reset_index(drop=True),
                                       train.time_s.reset_index(drop=True))
        scenario = yaml.safe_load((result.plan_dir / "runs" / name / "scenario.yaml").read_text())
        assert scenario["workload"].get("samples_per_client") is None


def test_best_yaml_trains_to_the_target(accuracy_plan) -> None:
    scenario = yaml.safe_load((accuracy_plan.plan_dir / "best.yaml").read_text())
    assert scenario["stop"] == {"sim_time_s": 1000.0, "target_accuracy": 0.6}
    assert not scenario.get("timing_only", False)
    html = (accuracy_plan.plan_dir / "plan.html").read_text(encoding="utf-8")
    assert "finalists trained" in html and "too slow (timing screen)" in html


@pytest.mark.slow
def test_a_finalist_limit_of_one_that_misses_reports_no_fleet(tmp_path: Path) -> None:
    base = base_scenario()
    path = write_plan(tmp_path, base=base, plan={"goal": {"target_accuracy": 0.999, "deadline_s": 50},
                                                 "search": {"finalists": 1}})
    result = run_plan(path, report=False)
    frame = result.table.frame
    assert result.best is None and frame.trained.sum() == 1
    assert frame[frame.trained].reason.tolist() == ["accuracy_not_reached"]
    assert (frame.reason == "not_trained").any()   # passed the screen, beyond the finalist limit
