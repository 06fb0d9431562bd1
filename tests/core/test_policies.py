"""Aggregation policies: staleness functions, weights, K/deadline triggers, over-selection, bounds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import simulator
from simulator.server.staleness import Constant, Hinge, Polynomial, StalenessSpec
from tests.helpers.scenarios import base_scenario, write_profile


@pytest.mark.parametrize("tau", [0, 1, 2, 5, 17])
def test_staleness_functions_follow_their_formulas(tau: int) -> None:
    assert Constant(0.7)(tau) == 0.7
    assert Polynomial(0.5)(tau) == pytest.approx((1 + tau) ** -0.5)
    assert Hinge(a=10, b=4)(tau) == (1.0 if tau <= 4 else pytest.approx(1 / (10 * (tau - 4) + 1)))
    assert StalenessSpec(fn="polynomial", a=2).build()(tau) == pytest.approx((1 + tau) ** -2)


def _three_speed_fleet(tmp_path: Path, profile_dir: Path) -> list[dict]:
    return [
        {"profile": str(write_profile(profile_dir, "fast", step_s=0.25)), "count": 2},
        {"profile": str(write_profile(profile_dir, "mid", step_s=1.0)), "count": 2},
        {"profile": str(write_profile(profile_dir, "slow", step_s=6.0)), "count": 2},
    ]


def test_semi_async_weights_are_samples_times_staleness(tmp_path: Path, profile_dir: Path) -> None:
    scenario = base_scenario(tmp_path, _three_speed_fleet(tmp_path, profile_dir))
    scenario["algorithm"] = {"name": "co-s2p", "pruning": {"width": "none", "depth": "none"},
                             "aggregation": {"k": 2, "staleness": {"fn": "polynomial", "a": 0.5}, "max_staleness": 3}}
    scenario["stop"] = {"sim_time_s": 200}
    run = simulator.run(scenario, timing_only=True)
    up = run.updates
    accepted = up[up.outcome == "accepted"]
    assert (accepted.staleness > 0).any(), "stragglers must be merged late"
    expected = 64 * (1 + accepted.staleness.to_numpy()) ** -0.5
    assert np.allclose(accepted.weight.to_numpy(), expected)
    dropped = up[up.outcome == "dropped"]
    assert len(dropped) > 0 and (dropped.staleness > 3).all()
    # every merge is triggered by K arrivals (no deadline set) and merges at least K − drops updates
    assert set(run.versions.trigger) == {"k"}


def test_semi_async_deadline_merges_what_has_arrived(tmp_path: Path, profile_dir: Path) -> None:
    scenario = base_scenario(tmp_path, _three_speed_fleet(tmp_path, profile_dir))
    scenario["algorithm"] = {"name": "co-s2p", "pruning": {"width": "none", "depth": "none"},
                             "aggregation": {"k": 6, "deadline_s": 3.0}}
    scenario["stop"] = {"sim_time_s": 60}
    run = simulator.run(scenario, timing_only=True)
    versions = run.versions
    assert "deadline" in set(versions.trigger)
    assert (versions[versions.trigger == "deadline"].n_merged < 6).all()


def test_over_selection_keeps_the_first_arrivals(tmp_path: Path, profile_dir: Path) -> None:
    scenario = base_scenario(tmp_path, _three_speed_fleet(tmp_path, profile_dir))
    scenario["algorithm"] = {"name": "fedavg", "aggregation": {"clients_per_round": 2, "over_selection": 3.0}}
    run = simulator.run(scenario, timing_only=True)
    assert run.versions.n_merged.tolist() == [2, 2, 2]
    # all six are selected each round; the two fast devices arrive first, the rest are cancelled
    accepted = run.updates[run.updates.outcome == "accepted"]
    assert set(accepted.profile) == {"fast"}
    dropped = run.updates[run.updates.outcome == "dropped"]
    assert len(dropped) == 3 * 4 and set(dropped.reason) == {"over-selected"}


def test_fedasync_merges_every_arrival(tmp_path: Path, profile_dir: Path) -> None:
    scenario = base_scenario(tmp_path, _three_speed_fleet(tmp_path, profile_dir))
    scenario["algorithm"] = {"name": "fedasync"}
    scenario["stop"] = {"sim_time_s": 100}
    run = simulator.run(scenario, timing_only=True)
    assert (run.versions.n_merged == 1).all() and set(run.versions.trigger) == {"each"}
    accepted = run.updates[run.updates.outcome == "accepted"]
    assert np.allclose(accepted.weight, 0.6 * (1 + accepted.staleness) ** -0.5)
    assert len(run.versions) == len(accepted)


def test_fedbuff_merges_every_k(tmp_path: Path, profile_dir: Path) -> None:
    scenario = base_scenario(tmp_path, _three_speed_fleet(tmp_path, profile_dir))
    scenario["algorithm"] = {"name": "fedbuff", "aggregation": {"buffer_k": 3}}
    scenario["stop"] = {"sim_time_s": 100}
    run = simulator.run(scenario, timing_only=True)
    assert (run.versions.n_merged == 3).all() and set(run.versions.trigger) == {"buffer"}
    assert math.isclose(run.updates[run.updates.outcome == "accepted"].shape[0], 3 * len(run.versions))


class _RecordingServer:
    """The ServerView calls the semi-async policy makes, recorded."""

    num_devices = 4

    def __init__(self) -> None:
        self.merges: list[tuple[list[float], str, float]] = []

    def staleness(self, job: object) -> int:
        return 0

    def aggregate(self, weighted, trigger, *, mode="delta", global_weight=0.0) -> None:
        assert mode == "delta"
        self.merges.append(([w for _, w in weighted], trigger, global_weight))

    def idle_devices(self) -> list[int]:
        return []

    def dispatch(self, devices) -> list:
        return []


@pytest.mark.parametrize("server_lr", [1.0, 0.5, 0.2])
def test_semi_async_server_lr_scales_the_merged_delta(server_lr: float) -> None:
    from types import SimpleNamespace

    from simulator.server.policies import SemiAsynchronous, SemiAsyncParams

    policy = SemiAsynchronous(SemiAsyncParams(k=2, server_lr=server_lr))
    server = _RecordingServer()
    for n in (30, 90):
        policy.on_arrival(server, SimpleNamespace(num_samples=n, device=0))
    (weights, trigger, g), = server.merges
    assert weights == [30.0, 90.0] and trigger == "k"
    # the learner applies θ + Σ wΔ / (g + Σ w): the mean delta times server_lr
    assert sum(weights) / (g + sum(weights)) == pytest.approx(server_lr)
    assert g == 0.0 if server_lr == 1.0 else g > 0


@pytest.mark.parametrize("policy", [
    {"name": "co-s2p", "pruning": {"width": "none", "depth": "none"}, "aggregation": {"k": 3}},
    {"name": "fedavg", "aggregation": {"deadline_s": 4.0}},
])
def test_idle_devices_tracked_incrementally_equal_a_full_scan(
    tmp_path: Path, profile_dir: Path, monkeypatch: pytest.MonkeyPatch, policy: dict
) -> None:
    """The server checks only devices that may have become idle; under churn, OOM exclusion, merges
    and deadline cancels, every answer must still be the full scan's, in the same order."""
    from simulator.server.server import Server

    original = Server.idle_devices
    answers: list[list[int]] = []

    def checked(self: Server) -> list[int]:
        got = original(self)
        assert got == [d.index for d in self.devices if d.online and d.job is None and d.excluded_reason is None]
        answers.append(got)
        return got

    monkeypatch.setattr(Server, "idle_devices", checked)
    fleet = _three_speed_fleet(tmp_path, profile_dir)
    for group in fleet[:2]:
        group["availability"] = {"kind": "churn", "mean_online_s": 6, "mean_offline_s": 2}
    fleet.append({"profile": str(write_profile(profile_dir, "tiny", step_s=0.5, usable_gb=0.01)), "count": 1})
    scenario = base_scenario(tmp_path, fleet)
    scenario["algorithm"] = policy
    scenario["stop"] = {"sim_time_s": 120}
    run = simulator.run(scenario, timing_only=True)
    assert len(answers) > 10
    assert "oom" in set(run.updates.outcome) and "lost" in set(run.updates.outcome)
    assert any(0 < len(a) < 7 for a in answers)  # some answers saw devices busy or away


class _StaleRecordingServer:
    """A ServerView stand-in that records what a policy asks the server to merge."""

    def __init__(self, version: int, num_devices: int = 4) -> None:
        self.version, self.num_devices, self.now = version, num_devices, 0.0
        self.rng = np.random.default_rng(0)
        self.merges: list[tuple[list[tuple[int, float]], str, str, float]] = []

    def staleness(self, job) -> int:
        return self.version - job.base_version

    def aggregate(self, weighted, trigger, *, mode="delta", global_weight=0.0) -> None:
        self.merges.append(([(j.job_id, w) for j, w in weighted], trigger, mode, global_weight))
        self.version += 1

    def dispatch(self, devices):
        return []

    def idle_devices(self):
        return []

    def drop(self, job, reason):
        raise AssertionError("nothing is staler than max_staleness here")

    def call_later(self, delay_s, callback):
        raise AssertionError("no deadline in these tests")


@pytest.mark.parametrize("policy", ["semi-async", "buffered"])
@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_staleness_mode_picks_relative_or_absolute_damping(policy: str, mode: str) -> None:
    from simulator.server.policy import JobView
    from simulator.server.registry import build_policy

    k_key = "k" if policy == "semi-async" else "buffer_k"
    p = build_policy({"policy": policy, k_key: 2, "server_lr": 0.5, "staleness_mode": mode,
                      "staleness": {"fn": "polynomial", "a": 0.5}})
    server = _StaleRecordingServer(version=5)
    p.on_arrival(server, JobView(1, 0, base_version=5, num_samples=30, dispatch_s=0.0))
    p.on_arrival(server, JobView(2, 1, base_version=2, num_samples=50, dispatch_s=0.0))
    [(weighted, _trigger, merge_mode, g)] = server.merges
    assert weighted == [(1, 30.0), (2, pytest.approx(50 * 4 ** -0.5))]
    if mode == "absolute":  # FedBuff: θ + η Σ n s(τ) Δ / Σ n — the learner's damped merge
        assert (merge_mode, g) == ("damped", 0.5)
    else:  # θ + Σ w Δ / (g + Σ w) with g = Σw (1 − lr)/lr: lr × the staleness-weighted mean
        assert merge_mode == "delta" and g == pytest.approx((30 + 25) * 0.5 / 0.5)


def test_fedbuff_presets_damp_absolutely_and_co_s2p_and_default_policies_stay_relative() -> None:
    """FedBuff as published damps absolutely; Co-S²P uses relative weights, as its ablation supports."""
    from simulator.config.algorithm import resolve_algorithm
    from simulator.server.registry import policy_params
    from simulator.config.scenario import AlgorithmSpec

    for name in ("fedbuff", "fedbuff-fit"):
        assert resolve_algorithm(AlgorithmSpec(name=name), policy_params).aggregation["staleness_mode"] == "absolute"
    co_s2p = resolve_algorithm(AlgorithmSpec(name="co-s2p", aggregation={"k": 8}), policy_params)
    assert co_s2p.aggregation["staleness_mode"] == "relative"
    plain = resolve_algorithm(AlgorithmSpec(name="fedavg", aggregation={"policy": "buffered"}), policy_params)
    assert plain.aggregation["staleness_mode"] == "relative"
