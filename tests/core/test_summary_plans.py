"""summary.json's per-class submodel table covers every device, not just the first of each class."""

from __future__ import annotations

from pathlib import Path

import pytest

import simulator
from simulator.config.loading import read_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_submodels_by_profile_counts_every_device_and_keeps_the_worst_case(tmp_path: Path) -> None:
    scenario = read_yaml(ROOT / "scenarios" / "quickstart.yaml")
    scenario["stop"] = {"sim_time_s": 600}
    run = simulator.run(scenario, out=tmp_path / "run", timing_only=True, report=False)
    table = run.summary["submodels_by_profile"]
    devices = run.devices
    assert sum(entry["devices"] for entry in table.values()) == len(devices) == 16
    for profile, entry in table.items():
        assert sum(entry["variants"].values()) == entry["devices"]
        assert f"depth {entry['depth']}, width {entry['width_ratio']:g}" in entry["variants"]
    # the quickstart's Nano group plans differently per device (shard sizes against the deadline):
    nano = table["jetson-nano-4gb"]
    assert len(nano["variants"]) > 1
    nanos = devices[devices.profile == "jetson-nano-4gb"]
    assert nano["devices"] == len(nanos)
    assert nano["fits_memory"] and nano["peak_memory_bytes"] <= nano["usable_memory_bytes"]


@pytest.mark.slow
def test_a_scenario_can_declare_itself_timing_only(tmp_path: Path) -> None:
    """scale_10k.yaml says `timing_only: true`: `fleetsim run` needs no flag, and nothing trains."""
    scenario = read_yaml(ROOT / "scenarios" / "quickstart.yaml")
    scenario["stop"] = {"sim_time_s": 300}
    scenario["timing_only"] = True
    run = simulator.run(scenario, out=tmp_path / "run", report=False)
    assert run.summary["timing_only"] is True
    assert run.evals.empty and len(run.updates) > 0
    assert read_yaml(ROOT / "scenarios" / "scale_10k.yaml")["timing_only"] is True
