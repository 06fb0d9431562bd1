"""Faults during a run: devices dropping mid-phase, an access point down, a server pause.

Each is recorded, the run goes on, and no update is counted twice or lost without a record.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import simulator
from simulator.cost import model as cost
from simulator.config.workload import ModelSpec
from simulator.errors import InputError
from tests.helpers.scenarios import base_scenario, write_profile

STEPS = 4  # 64 samples / batch 16


def _transfer_s(rate_bps: float = 8e6) -> float:
    # fedavg / fedasync: no depth pruning or distillation, so the single-exit model is sent
    nbytes = cost.model_bytes(cost.model_cost(ModelSpec(name="mlp", preset="tiny"), 10, (1, 8, 8), exits="final"))
    return nbytes * 8 / rate_bps


def _two_devices(tmp_path: Path, profile_dir: Path) -> dict:
    dev = write_profile(profile_dir, "dev", step_s=1.0)
    return base_scenario(tmp_path, [{"profile": str(dev), "count": 2}])


@pytest.mark.parametrize("phase", ["download", "compute", "upload"])
def test_device_dropping_mid_phase_loses_that_job_only(tmp_path: Path, profile_dir: Path, phase: str) -> None:
    t = _transfer_s()
    at = {"download": t / 2, "compute": t + STEPS / 2, "upload": t + STEPS + t / 2}[phase]
    scenario = _two_devices(tmp_path, profile_dir)
    scenario["algorithm"] = {"name": "fedasync"}
    scenario["faults"] = [{"kind": "devices_offline", "devices": ["dev#1"], "start_s": at, "end_s": at + 1}]
    scenario["stop"] = {"sim_time_s": 60}
    run = simulator.run(scenario, timing_only=True)
    lost_events = run.events[(run.events.device == 1) & (run.events.outcome == "lost")]
    assert lost_events.phase.tolist() == [phase]
    assert lost_events.end_s.tolist() == pytest.approx([at])
    lost = run.updates[run.updates.outcome == "lost"]
    assert lost.device.tolist() == [1] and lost.job_id.tolist() == [lost_events.job_id.iloc[0]]
    offline = run.events[run.events.phase == "offline"]
    assert offline[["start_s", "end_s"]].to_numpy().ravel().tolist() == pytest.approx([at, at + 1])
    # the device came back and worked on
    assert (run.updates[(run.updates.device == 1)].outcome == "accepted").sum() > 3
    assert run.summary["faults"][0]["devices"] == ["dev#1"]


def test_access_point_down_stalls_transfers_for_exactly_the_outage(tmp_path: Path, profile_dir: Path) -> None:
    dev = write_profile(profile_dir, "dev", step_s=1.0)
    scenario = base_scenario(tmp_path, [{"profile": str(dev), "count": 1, "link": "ap"}])
    scenario["network"]["access_points"] = {"ap": {"capacity_mbps": 8.0, "latency": {"mean_ms": 0}}}
    t = _transfer_s()
    scenario["faults"] = [{"kind": "link_down", "link": "ap", "start_s": t / 4, "end_s": t / 4 + 10}]
    scenario["stop"] = {"max_versions": 1, "sim_time_s": 1e4}
    run = simulator.run(scenario, timing_only=True)
    download = run.events[run.events.phase == "download"].iloc[0]
    assert download.end_s == pytest.approx(t + 10) and download.outcome == "done"
    assert run.versions.time_s.iloc[0] == pytest.approx(2 * t + 10 + STEPS)


def test_access_point_down_can_cut_transfers(tmp_path: Path, profile_dir: Path) -> None:
    dev = write_profile(profile_dir, "dev", step_s=1.0)
    scenario = base_scenario(tmp_path, [{"profile": str(dev), "count": 2, "link": "ap"}])
    scenario["network"]["access_points"] = {"ap": {"capacity_mbps": 8.0, "latency": {"mean_ms": 0}}}
    scenario["algorithm"] = {"name": "fedasync"}
    scenario["faults"] = [{"kind": "link_down", "link": "ap", "start_s": 0.01, "end_s": 5, "drop_transfers": True}]
    scenario["stop"] = {"sim_time_s": 120}
    run = simulator.run(scenario, timing_only=True)
    assert run.summary["faults"][0]["transfers_cut"] == 2
    first = run.updates.sort_values("job_id").head(2)
    assert first.outcome.tolist() == ["lost", "lost"] and set(first.reason) == {"link down"}
    assert (run.updates.outcome == "accepted").sum() > 0


def test_server_pause_defers_merges_to_its_end(tmp_path: Path, profile_dir: Path) -> None:
    scenario = _two_devices(tmp_path, profile_dir)
    round_s = 2 * _transfer_s() + STEPS
    scenario["faults"] = [{"kind": "server_pause", "start_s": round_s / 2, "end_s": 2 * round_s}]
    run = simulator.run(scenario, timing_only=True)
    times = run.versions.time_s.to_numpy()
    assert times[0] == pytest.approx(2 * round_s)  # both arrived during the pause, merged when it ended
    assert np.diff(times) == pytest.approx([round_s, round_s])


@pytest.mark.slow
def test_invariants_hold_under_every_fault_at_once(tmp_path: Path, profile_dir: Path) -> None:
    a = write_profile(profile_dir, "a", step_s=0.3)
    b = write_profile(profile_dir, "b", step_s=1.7)
    scenario = base_scenario(tmp_path, [
        {"profile": str(a), "count": 4, "link": "ap",
         "availability": {"kind": "churn", "mean_online_s": 15, "mean_offline_s": 4}},
        {"profile": str(b), "count": 3},
    ])
    scenario["network"]["access_points"] = {"ap": {"capacity_mbps": 6.0, "latency": {"mean_ms": 2, "jitter_ms": 1}}}
    scenario["algorithm"] = {"name": "co-s2p", "aggregation": {"k": 3, "deadline_s": 6, "max_staleness": 2}}
    scenario["faults"] = [
        {"kind": "link_down", "link": "ap", "start_s": 20, "end_s": 35, "drop_transfers": True},
        {"kind": "link_down", "link": "server", "start_s": 50, "end_s": 55},
        {"kind": "server_pause", "start_s": 70, "end_s": 90},
        {"kind": "devices_offline", "devices": [4, "b#2"], "start_s": 10, "end_s": 30},
    ]
    scenario["stop"] = {"sim_time_s": 200}
    run = simulator.run(scenario, timing_only=True)
    up, ev, d = run.updates, run.events, run.devices
    assert up.job_id.is_unique
    assert set(up.outcome) <= {"accepted", "dropped", "lost", "oom", "unfinished"}
    assert {"accepted", "lost"} <= set(up.outcome)
    assert run.versions.n_merged.sum() == (up.outcome == "accepted").sum()
    # every job with a phase in the events has exactly one update row
    assert set(ev[ev.job_id >= 0].job_id) <= set(up.job_id)
    assert (d.jobs.sum()) == len(up)
    assert np.allclose(d.compute_s + d.comm_s + d.idle_s + d.offline_s, d.wall_s)
    assert ev[ev.phase == "download"].bytes.sum() == d.bytes_down.sum()
    assert ev[ev.phase == "upload"].bytes.sum() == d.bytes_up.sum()
    # no merge happened during the server pause
    assert not ((run.versions.time_s > 70) & (run.versions.time_s < 90)).any()


def test_fault_naming_an_unknown_device_is_an_input_error(tmp_path: Path, profile_dir: Path) -> None:
    scenario = _two_devices(tmp_path, profile_dir)
    scenario["faults"] = [{"kind": "devices_offline", "devices": ["nope#0"], "start_s": 1, "end_s": 2}]
    with pytest.raises(InputError) as info:
        simulator.run(scenario, timing_only=True)
    assert "faults[0].devices[0]" in str(info.value) and "dev#0" in str(info.value)
    assert not (tmp_path / "runs").exists()


def test_two_groups_of_one_profile_number_their_devices_on_so_a_fault_names_one_device(
        tmp_path: Path, profile_dir: Path) -> None:
    """Two unnamed groups of one profile: the second group's devices are dev#2 and dev#3, not a second
    dev#0 and dev#1, so the devices table, the report's per-device charts and a fault's device list
    each mean one device."""
    dev = write_profile(profile_dir, "dev", step_s=1.0)
    scenario = base_scenario(tmp_path, [{"profile": str(dev), "count": 2}, {"profile": str(dev), "count": 2},
                                        {"profile": str(dev), "count": 1, "name": "spare"}])
    scenario["algorithm"] = {"name": "fedasync"}
    scenario["faults"] = [{"kind": "devices_offline", "devices": ["dev#2"], "start_s": 0.5, "end_s": 30}]
    scenario["stop"] = {"sim_time_s": 20}
    run = simulator.run(scenario, timing_only=True)
    assert run.devices.sort_values("device").device_name.tolist() == ["dev#0", "dev#1", "dev#2", "dev#3", "spare#0"]
    assert run.devices.sort_values("device").group.tolist() == [0, 0, 1, 1, 2]
    offline = run.events[run.events.phase == "offline"]
    assert offline.device.tolist() == [2]  # the second group's first device, not the first group's
