"""Lane sampling: bounded, proportional, shows problem devices, deterministic."""

import numpy as np
import pandas as pd

from simulator.report.sampling import MAX_LANES, MAX_TIMELINE_SEGMENTS, choose_lanes, lane_budget


def fleet(n: int, oom_every: int = 50) -> pd.DataFrame:
    dev = np.arange(n)
    prof = np.where(dev < n // 2, "a", np.where(dev < n * 9 // 10, "b", "c"))
    return pd.DataFrame({"device": dev, "device_name": [f"d{i}" for i in dev], "profile": prof,
                         "ooms": (dev % oom_every == 7).astype(int), "offline_s": 0.0})


def test_lane_budget_caps_lanes_and_segments():
    assert lane_budget(9, 100) == 9
    assert lane_budget(10_000, 3_000_000) == MAX_TIMELINE_SEGMENTS // 300
    assert lane_budget(10_000, 10_000) == MAX_LANES


def test_small_fleet_shows_everyone():
    lanes = choose_lanes(fleet(12), 200)
    assert not lanes.sampled and lanes.note() == ""
    assert sorted(lanes.devices["device"]) == list(range(12))


def test_large_fleet_is_bounded_proportional_and_keeps_ooms():
    devices = fleet(10_000)
    lanes = choose_lanes(devices, 200)
    shown = lanes.shown_per_profile
    assert len(lanes.devices) == 200
    assert shown == {"a": (100, 5000), "b": (80, 4000), "c": (20, 1000)}
    assert lanes.devices["ooms"].sum() >= 3  # every profile shows some OOM devices
    assert lanes.devices["device"].is_unique
    assert "Showing 200 of 10,000 devices (100 of 5,000 a, 80 of 4,000 b, 20 of 1,000 c)" in lanes.note()
    again = choose_lanes(devices, 200)
    assert again.devices["device"].tolist() == lanes.devices["device"].tolist()


def test_every_profile_gets_a_lane():
    devices = fleet(1000)
    devices.loc[999, "profile"] = "tiny"
    lanes = choose_lanes(devices, 20)
    assert lanes.shown_per_profile["tiny"] == (1, 1)
