"""Work a job does besides its training steps is charged to the device (issue 15): the Taylor
importance batches of data-aware pruning and the global-teacher pass of ``distillation.mode: global``."""

from __future__ import annotations

from pathlib import Path

import pytest

import simulator
from simulator.cost import model as costmod
from simulator.config.workload import ModelSpec
from simulator.cost.cache import trace
from tests.helpers.scenarios import base_scenario, write_profile

MLP = ModelSpec(name="mlp", preset="tiny")
BW = 1000e9  # the test profile's bandwidth (bytes/s)
FLOPS = 100e9 * 0.5  # peak × training_efficiency


def _compute_phases(run) -> list[float]:
    ev = run.events[run.events.phase == "compute"]
    return sorted(set((ev.end_s - ev.start_s).round(12)))


def _scenario(tmp_path: Path, profile_dir: Path, algorithm: dict) -> dict:
    fast = write_profile(profile_dir, "fast", step_s=2.0)
    scenario = base_scenario(tmp_path, [{"profile": str(fast), "count": 2}])
    scenario["algorithm"] = algorithm
    return scenario  # 64 samples, batch 16: 4 local steps of exactly 2.0 s (measured)


def test_the_jobs_compute_time_includes_the_importance_batches(tmp_path: Path, profile_dir: Path) -> None:
    pruning = {"width": "importance", "width_ratios": [1.0], "depth": "none"}
    plain = _scenario(tmp_path, profile_dir, {"name": "fedavg", "pruning": {**pruning, "importance_batches": 0}})
    assert _compute_phases(simulator.run(plain, timing_only=True, force=True)) == [8.0]
    scored = _scenario(tmp_path, profile_dir, {"name": "fedavg", "pruning": {**pruning, "importance_batches": 3}})
    run = simulator.run(scored, timing_only=True, force=True)
    # an importance batch is a training step without the optimizer update: the measured 2.0 s scaled by
    # the cost model's ratio (step time with weights read twice and gradients written and read once
    # plus read for w·g, instead of the update's traffic)
    cost = costmod.model_cost(MLP, 10, (1, 8, 8), exits="final")  # fedavg trains the final exit only
    terms = costmod.step_time_terms(cost, 16, FLOPS, BW, 0.0, "momentum")
    importance_s = terms.total_s - terms.param_traffic_s + (2 * cost.param_bytes + 3 * 4 * cost.trainable_params) / BW
    assert importance_s < terms.total_s
    [phase] = _compute_phases(run)
    assert phase == pytest.approx(4 * 2.0 + 3 * 2.0 * importance_s / terms.total_s, rel=1e-12)
    flops = run.events[run.events.phase == "compute"].flops.iloc[0]
    assert flops == pytest.approx((4 + 3) * 16 * cost.train_flops_per_sample)


def test_a_pruned_device_pays_the_global_teachers_forward_pass_and_download(tmp_path: Path,
                                                                            profile_dir: Path) -> None:
    pruning = {"width": "static", "width_ratios": [0.5], "depth": "none"}
    runs = {}
    for mode in ("deepest", "global"):
        scenario = _scenario(tmp_path, profile_dir, {"name": "fedavg", "pruning": pruning,
                                                     "distillation": {"mode": mode}})
        runs[mode] = simulator.run(scenario, out=tmp_path / mode, timing_only=True)
    blocks = trace(MLP.resolved(), 10, (1, 8, 8), 1.0)
    traced = [b.body for b in blocks] + [blocks[-1].exit]  # the teacher runs every block and its deepest exit
    gemm: dict[int, float] = {}
    for t in traced:
        for w, f in t.fwd_gemm:
            gemm[w] = gemm.get(w, 0.0) + 16 * f
    full_params = sum(b.body.params + b.exit.params for b in blocks)  # the whole global model comes down
    work = costmod.StepWork(tuple(sorted(gemm.items())), 4.0 * sum(t.params for t in traced),  # weights it reads
                            16 * sum(t.fwd_elementwise_bytes_per_sample for t in traced), sum(t.fwd_ops for t in traced))
    forward_s = costmod.work_time_terms(work, FLOPS, BW, 0.0).total_s
    [self_kd] = _compute_phases(runs["deepest"])
    [global_kd] = _compute_phases(runs["global"])
    assert global_kd == pytest.approx(self_kd + 4 * forward_s, rel=1e-12)  # one teacher forward per local step
    up = runs["global"].updates
    assert (up.download_bytes == 4 * full_params).all()  # the whole global model comes down
    assert (runs["deepest"].updates.download_bytes < 4 * full_params).all()
    assert (up.upload_bytes == runs["deepest"].updates.upload_bytes.iloc[0]).all()  # only the submodel goes up


def test_a_device_holding_the_whole_model_distils_from_itself_at_no_extra_cost(tmp_path: Path,
                                                                               profile_dir: Path) -> None:
    scenario = _scenario(tmp_path, profile_dir, {"name": "fedavg", "distillation": {"mode": "global"}})
    assert _compute_phases(simulator.run(scenario, timing_only=True, force=True)) == [8.0]


def test_importance_memory_is_the_training_step_without_optimizer_state() -> None:
    from simulator.config.algorithm import resolve_algorithm
    from simulator.server.registry import policy_params
    from simulator.config.profiles import load_profile
    from simulator.config.scenario import AlgorithmSpec
    from simulator.engine.planning import Planner
    from simulator.engine.world import device_budget

    algorithm = resolve_algorithm(AlgorithmSpec(name="co-s2p"), policy_params)
    vit = ModelSpec(name="vit", preset="vit-b")
    planner = Planner(vit, 10, (3, 224, 224), 12, 32, "momentum", int(0.3e9), algorithm.pruning)
    profile = load_profile("jetson-tx2")
    budget = device_budget(profile, profile.default_power_mode)
    choice = planner.choose(budget)
    extra = planner.job_extras(budget, choice, 9, algorithm)
    cost = planner.cost(choice.width_ratio, choice.depth, choice.trainable_from)
    assert extra.peak_memory_bytes == costmod.training_memory_bytes(cost, 32, "sgd", int(0.3e9))
    assert extra.peak_memory_bytes < choice.peak_memory_bytes  # so the job's peak stays the training step's
    assert 0 < extra.compute_s < 2 * choice.step_time_s  # co-s2p scores 2 batches, each cheaper than a step
    assert extra.download_bytes == 0  # deepest-exit distillation downloads nothing more
