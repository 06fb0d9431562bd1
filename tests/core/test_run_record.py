"""The run folder's scenario.yaml records the run that was made, flags included."""

from __future__ import annotations

from pathlib import Path

import yaml

import simulator
from tests.helpers.scenarios import base_scenario, write_profile


def test_a_timing_only_flag_is_recorded_so_the_recorded_scenario_runs_the_same(tmp_path: Path,
                                                                               profile_dir: Path) -> None:
    """`--timing-only` (the API's `timing_only=True`) on a scenario that trains: the recorded
    scenario.yaml says timing_only: true, so running that file again times the fleet instead of
    training (it said false, and a re-run trained)."""
    dev = write_profile(profile_dir, "dev", step_s=1.0)
    scenario = base_scenario(tmp_path, [{"profile": str(dev), "count": 2}])
    scenario["stop"] = {"max_versions": 2, "sim_time_s": 1e4}
    assert not scenario.get("timing_only", False)
    first = simulator.run(scenario, timing_only=True, out=tmp_path / "first")
    recorded = yaml.safe_load((tmp_path / "first" / "scenario.yaml").read_text())
    assert recorded["timing_only"] is True
    again = simulator.run(tmp_path / "first" / "scenario.yaml", out=tmp_path / "again")
    assert again.evals.empty and first.evals.empty  # timing-only: no accuracy measured
    assert again.updates.equals(first.updates)
