"""The discrete-event core against closed forms and invariants (timing-only runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simulator
from simulator.cost import model as cost
from simulator.config.workload import ModelSpec
from tests.helpers.scenarios import base_scenario, write_profile


def _model_bytes() -> int:
    """FedAvg's model: no depth pruning or distillation, so only the final exit is planned and sent."""
    spec = ModelSpec(name="mlp", preset="tiny")
    return cost.model_bytes(cost.model_cost(spec, 10, (1, 8, 8), exits="final"))


@pytest.mark.slow
def test_sync_round_lasts_the_slowest_download_compute_upload(tmp_path: Path, profile_dir: Path) -> None:
    fast = write_profile(profile_dir, "fast", step_s=0.5)
    slow = write_profile(profile_dir, "slow", step_s=2.0)
    scenario = base_scenario(tmp_path, [
        {"profile": str(fast), "count": 3}, {"profile": str(slow), "count": 2},
    ])
    run = simulator.run(scenario, timing_only=True)
    steps = 64 // 16
    transfer_s = _model_bytes() * 8 / 8e6  # own 8 Mbit/s port, huge server link
    round_s = max(transfer_s + steps * step + transfer_s for step in (0.5, 2.0))
    times = run.versions.time_s.to_numpy()
    assert times == pytest.approx(round_s * np.arange(1, 4), rel=1e-9)
    # fast devices compute 3 × 2 s, slow ones 3 × 8 s
    compute = run.devices.groupby("profile").compute_s.first()
    assert compute["fast"] == pytest.approx(3 * steps * 0.5)
    assert compute["slow"] == pytest.approx(3 * steps * 2.0)


def test_time_shares_sum_to_wall_and_bytes_balance(tmp_path: Path, profile_dir: Path) -> None:
    a = write_profile(profile_dir, "a", step_s=0.3)
    b = write_profile(profile_dir, "b", step_s=1.1)
    scenario = base_scenario(tmp_path, [
        {"profile": str(a), "count": 3, "availability": {"kind": "churn", "mean_online_s": 20, "mean_offline_s": 5}},
        {"profile": str(b), "count": 3, "link": "wifi"},
    ])
    scenario["network"]["access_points"] = {"wifi": {"capacity_mbps": 5.0, "latency": {"mean_ms": 3, "jitter_ms": 1}}}
    scenario["algorithm"] = {"name": "co-s2p", "aggregation": {"k": 3, "deadline_s": 10}}
    scenario["stop"] = {"sim_time_s": 300}
    run = simulator.run(scenario, timing_only=True)
    d = run.devices
    total = d.compute_s + d.comm_s + d.idle_s + d.offline_s
    assert np.allclose(total, d.wall_s, rtol=1e-9, atol=1e-9)
    assert (d.idle_s >= -1e-9).all()
    # every byte a device sent or received is a byte some phase moved
    ev = run.events
    assert ev[ev.phase == "download"].bytes.sum() == d.bytes_down.sum()
    assert ev[ev.phase == "upload"].bytes.sum() == d.bytes_up.sum()
    # the phases of a device never overlap
    for _, phases in ev.sort_values(["device", "start_s", "end_s"]).groupby("device"):
        assert (phases.start_s.to_numpy()[1:] >= phases.end_s.to_numpy()[:-1] - 1e-9).all()


def test_every_dispatched_job_ends_exactly_once(tmp_path: Path, profile_dir: Path) -> None:
    a = write_profile(profile_dir, "a", step_s=0.4)
    small = write_profile(profile_dir, "small", step_s=0.4, usable_gb=1e-6, total_gb=1.0)
    scenario = base_scenario(tmp_path, [
        {"profile": str(a), "count": 4, "availability": {"kind": "churn", "mean_online_s": 8, "mean_offline_s": 3}},
        {"profile": str(small), "count": 1},
    ])
    scenario["algorithm"] = {"name": "fedbuff", "aggregation": {"buffer_k": 2, "max_staleness": 2}}
    scenario["stop"] = {"sim_time_s": 200}
    run = simulator.run(scenario, timing_only=True)
    up = run.updates
    assert up.job_id.is_unique
    assert set(up.outcome) <= {"accepted", "dropped", "lost", "oom", "unfinished"}
    assert {"accepted", "lost", "oom"} <= set(up.outcome)
    # jobs = started jobs; per device the counts agree with the outcomes
    per_device = up.groupby("device").size()
    assert (run.devices.set_index("device").jobs == per_device.reindex(run.devices.device, fill_value=0).values).all()
    # the OOM device failed once and was never dispatched again
    oom = up[up.outcome == "oom"]
    assert len(oom) == 1 and run.summary["oom_devices"] == ["small#0"]
    # accepted updates appear in versions exactly: Σ n_merged == accepted
    assert run.versions.n_merged.sum() == (up.outcome == "accepted").sum()


def test_same_seed_gives_identical_parquet(tmp_path: Path, profile_dir: Path) -> None:
    a = write_profile(profile_dir, "a", step_s=0.25)
    groups = [{"profile": str(a), "count": 5, "link": "wifi",
               "availability": {"kind": "churn", "mean_online_s": 30, "mean_offline_s": 4}}]
    files = {}
    for name in ("one", "two"):
        scenario = base_scenario(tmp_path, groups)
        scenario["network"]["access_points"] = {"wifi": {"capacity_mbps": 3.0, "latency": {"mean_ms": 2, "jitter_ms": 1}}}
        scenario["algorithm"] = {"name": "fedasync"}
        scenario["stop"] = {"sim_time_s": 120}
        run = simulator.run(scenario, timing_only=True, out=tmp_path / name)
        files[name] = {p.name: p.read_bytes() for p in run.run_dir.glob("*.parquet")}
    assert files["one"].keys() == {"events.parquet", "updates.parquet", "devices.parquet", "versions.parquet",
                                   "evals.parquet", "clients.parquet"}
    assert files["one"] == files["two"]


def test_deadline_drops_stragglers_in_sync(tmp_path: Path, profile_dir: Path) -> None:
    fast = write_profile(profile_dir, "fast", step_s=0.1)
    slow = write_profile(profile_dir, "slow", step_s=100.0)
    scenario = base_scenario(tmp_path, [{"profile": str(fast), "count": 2}, {"profile": str(slow), "count": 1}])
    scenario["algorithm"] = {"name": "fedavg", "aggregation": {"deadline_s": 5.0}}
    run = simulator.run(scenario, timing_only=True)
    assert run.versions.time_s.tolist() == pytest.approx([5.0, 10.0, 15.0])
    dropped = run.updates[run.updates.outcome == "dropped"]
    assert set(dropped.device) == {2} and (dropped.reason == "deadline").all()
    assert run.versions.n_merged.tolist() == [2, 2, 2]


def test_label_histograms_are_stored_with_the_run(tmp_path: Path, profile_dir: Path) -> None:
    a = write_profile(profile_dir, "a", step_s=0.2)
    scenario = base_scenario(tmp_path, [{"profile": str(a), "count": 6}])
    del scenario["workload"]["samples_per_client"]
    scenario["workload"]["partition"] = {"kind": "dirichlet", "alpha": 0.1}
    run = simulator.run(scenario, timing_only=True)
    clients = run.clients
    hist = np.array(clients.label_histogram.tolist())
    assert hist.shape == (6, 10)
    assert (hist.sum(axis=1) == clients.num_samples).all()
    from simulator.config.workload import DatasetSpec
    from simulator.learning.data import load_dataset

    train_labels = load_dataset(DatasetSpec(name="digits", image_size=8), 1).y_train.numpy()
    assert (hist.sum(axis=0) == np.bincount(train_labels, minlength=10)).all()  # every sample used once
    # alpha 0.1 is skewed: most clients hold few classes
    assert np.median((hist > 0).sum(axis=1)) < 10
