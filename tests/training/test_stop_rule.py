"""stop.target_patience: the target must hold for N consecutive evaluations (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

import simulator
from simulator.config.scenario import Stop, TargetRule
from simulator.errors import InputError
from tests.helpers.scenarios import executor_scenario


def test_the_rule_times_the_first_evaluation_of_the_run_that_holds() -> None:
    rule = TargetRule(0.45, patience=3)
    curve = [(60, 0.46), (120, 0.15), (180, 0.51), (240, 0.47), (300, 0.44), (360, 0.5), (420, 0.6), (480, 0.55)]
    got = [rule.observe(t, a) for t, a in curve]
    assert got == [None] * 7 + [360.0]  # 0.46 → 0.15 and 0.51, 0.47 → 0.44 are not held
    first = TargetRule(0.45)
    assert first.observe(60, 0.46) == 60.0  # patience 1: the first crossing, as before
    assert "3 consecutive evaluations" in rule.describe() and "first crossing" in first.describe()


def test_patience_is_validated(tmp_path: Path, profile_dir: Path) -> None:
    scenario = executor_scenario(tmp_path, profile_dir)
    scenario["stop"] = {"sim_time_s": 100, "target_accuracy": 0.8, "target_patience": 0}
    with pytest.raises(InputError) as err:
        simulator.run(scenario, out=tmp_path / "bad", report=False)
    assert err.value.field == "stop.target_patience" and not (tmp_path / "bad").exists()
    assert Stop().target_rule() is None and Stop(target_accuracy=0.8).target_rule().patience == 1


@pytest.mark.slow
def test_a_run_stops_when_the_target_has_held_and_reports_the_rule(tmp_path: Path, profile_dir: Path) -> None:
    scenario = executor_scenario(tmp_path, profile_dir)
    scenario["stop"] = {"sim_time_s": 1e5, "max_versions": 40, "target_accuracy": 0.3, "target_patience": 3}
    run = simulator.run(scenario, out=tmp_path / "held", report=False)
    summary = run.summary
    assert summary["stop_reason"] == "target_accuracy"
    assert summary["target_rule"] == TargetRule(0.3, 3).describe()
    evals = run.evals.sort_values(["time_s", "version"], kind="stable")
    acc, times = evals.accuracy.tolist(), evals.time_s.tolist()
    # the last three evaluations hold the target and the one before them does not (or is the first)
    assert all(a >= 0.3 for a in acc[-3:]) and (len(acc) == 3 or acc[-4] < 0.3)
    assert summary["time_to_target_s"] == times[-3]
    assert summary["makespan_s"] == times[-1]
    # with patience 1 the same run stops at the first crossing
    scenario["stop"]["target_patience"] = 1
    once = simulator.run(scenario, out=tmp_path / "once", report=False).summary
    first_hit = next(t for t, a in zip(times, acc) if a >= 0.3)
    assert once["time_to_target_s"] == first_hit == once["makespan_s"]
