"""The README's user-written straggler policy, loaded from `module:Class`, runs and behaves."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import simulator
from simulator.errors import InputError
from tests.helpers.scenarios import base_scenario, write_profile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def _examples_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_readme_policy_merges_the_first_half(tmp_path: Path, profile_dir: Path) -> None:
    fast = write_profile(profile_dir, "fast", step_s=0.5)
    slow = write_profile(profile_dir, "slow", step_s=5.0)
    scenario = base_scenario(tmp_path, [{"profile": str(fast), "count": 2}, {"profile": str(slow), "count": 2}])
    scenario["algorithm"] = {"name": "fedavg", "aggregation": {"policy": "my_policies:FirstHalf", "fraction": 0.5}}
    run = simulator.run(scenario, timing_only=True)
    assert run.versions.n_merged.tolist() == [2, 2, 2]
    accepted = run.updates[run.updates.outcome == "accepted"]
    assert set(accepted.profile) == {"fast"}
    assert set(run.updates[run.updates.outcome == "dropped"].reason) == {"round closed"}


def test_plugin_params_are_validated(tmp_path: Path, profile_dir: Path) -> None:
    fast = write_profile(profile_dir, "fast", step_s=0.5)
    scenario = base_scenario(tmp_path, [{"profile": str(fast), "count": 2}])
    scenario["algorithm"] = {"name": "fedavg", "aggregation": {"policy": "my_policies:FirstHalf", "fraction": 2}}
    with pytest.raises(InputError) as info:
        simulator.run(scenario, timing_only=True)
    assert "algorithm.aggregation.fraction" in str(info.value)


def test_plugin_that_does_not_import(tmp_path: Path, profile_dir: Path) -> None:
    fast = write_profile(profile_dir, "fast", step_s=0.5)
    scenario = base_scenario(tmp_path, [{"profile": str(fast), "count": 2}])
    scenario["algorithm"] = {"name": "fedavg", "aggregation": {"policy": "no_such_module_x:Policy"}}
    with pytest.raises(InputError) as info:
        simulator.run(scenario, timing_only=True)
    assert "does not import" in str(info.value) and "algorithm.aggregation.policy" in str(info.value)


def test_a_misspelt_class_names_the_module_imported_and_its_policies(tmp_path: Path, profile_dir: Path) -> None:
    """`my_policies:FirstHalff` said "'FirstHalff' … is not an AggregationPolicy subclass", as if it
    existed; it names the module's file (another module of that name may be the one imported) and the
    policies it does define."""
    fast = write_profile(profile_dir, "fast", step_s=0.5)
    scenario = base_scenario(tmp_path, [{"profile": str(fast), "count": 2}])
    scenario["algorithm"] = {"name": "fedavg", "aggregation": {"policy": "my_policies:FirstHalff"}}
    with pytest.raises(InputError) as info:
        simulator.run(scenario, timing_only=True)
    text = str(info.value)
    assert f"module 'my_policies' ({EXAMPLES / 'my_policies.py'}) has no 'FirstHalff'" in text
    assert "Accepted: 'my_policies:FirstHalf'." in text
    assert "algorithm.aggregation.policy" in text
