"""The Learner: job pinning, merges, importance feedback, evaluation, and real learning."""

from __future__ import annotations

import math

import pytest
import torch

from simulator.config.algorithm import resolve_algorithm
from simulator.server.registry import policy_params
from simulator.config.scenario import AlgorithmSpec, Workload
from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
from simulator.learning.executors import InlineExecutor
from simulator.learning.learner import Learner, settings_from_config
from simulator.learning.pruning import PruningSettings
from simulator.learning.submodel import extract, param_block
from simulator.learning.trainer import TrainingSettings

CNN = ModelSpec(name="cnn", preset="tiny")
DIGITS = DatasetSpec(name="digits", image_size=8)
SETTINGS = TrainingSettings(batch_size=16, lr=0.05)


class RecordingExecutor(InlineExecutor):
    """Inline, but remembers every submitted job."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = []

    def submit(self, job):
        self.jobs.append(job)
        return super().submit(job)


def learner(pruning=None, settings=SETTINGS, executor=None, partition=PartitionSpec(kind="iid"), clients=8, seed=0):
    return Learner(CNN, DIGITS, partition, clients, settings, pruning, seed, executor)


def run_job(lrn, job_id, client, steps=3, depth=3, ratio=1.0, index=0):
    lrn.dispatch_job(job_id, client, index, depth, ratio)
    lrn.start(job_id, steps)
    return job_id


@pytest.mark.slow
def test_a_small_federated_run_learns_far_above_chance():
    lrn = learner(PruningSettings(width="importance", depth="rolling"),
                  TrainingSettings(batch_size=16, lr=0.05, distill_mode="deepest", distill_weight=0.5,
                                   importance_batches=1),
                  partition=PartitionSpec(kind="dirichlet", alpha=0.5), seed=1)
    start = lrn.evaluate()
    job = 0
    for r in range(20):
        ids = []
        for c in range(8):
            strong = c < 4
            run_job(lrn, job, c, steps=5, depth=3 if strong else 2, ratio=1.0 if strong else 0.5, index=r)
            ids.append((job, float(lrn.num_samples(c))))
            job += 1
        coverage = lrn.merge_jobs(ids)
        assert min(coverage) >= 4  # strong clients train every block; rolling spreads the weak ones
    end = lrn.evaluate()
    assert end.version == 20 and lrn.version == 20
    assert start.accuracy < 0.3 and end.accuracy > 0.5  # 10 classes: chance is 0.1
    assert end.loss < start.loss - 0.8
    assert lrn.pruner.tracker.has_scores("block2.channels")


def test_jobs_train_from_the_version_pinned_at_dispatch():
    rec = RecordingExecutor()
    lrn = learner(executor=rec)
    v0 = lrn.global_state
    before = {k: v.clone() for k, v in v0.items()}
    plan = lrn.dispatch_job(100, 0, 0, 3, 0.5)
    run_job(lrn, 1, 1)
    lrn.merge_jobs([(1, 1.0)])
    assert lrn.version == 1 and lrn.base_version(100) == 0
    lrn.start(100, 2)
    pinned = rec.jobs[-1].state
    want = extract(before, plan, lrn.param_axes)
    assert all(torch.equal(pinned[k], want[k]) for k in want)
    # the merge built new tensors: version 0 is intact and differs from version 1
    assert all(torch.equal(v0[k], before[k]) for k in before)
    assert not torch.equal(lrn.global_state["blocks.0.conv.weight"], before["blocks.0.conv.weight"])


def test_delta_merge_applies_a_stale_update_relative_to_its_base():
    lrn = learner()
    v0 = {k: v.clone() for k, v in lrn.global_state.items()}
    run_job(lrn, 1, 0)
    run_job(lrn, 2, 1)
    res1 = lrn.result(1)
    lrn.merge_jobs([(2, 1.0)])  # version 1
    v1 = lrn.global_state
    lrn.merge_jobs([(1, 2.0)], mode="delta", global_weight=2.0)  # half the update, applied to v1
    k = "blocks.1.conv.weight"
    want = (v1[k].double() + 2.0 * (res1.state[k] - v0[k]).double() / 4.0).float()
    assert torch.allclose(lrn.global_state[k], want, atol=1e-7)


def test_damped_merge_applies_a_stale_update_scaled_by_its_staleness():
    """FedBuff's absolute form: θ ← θ + η · n s(τ) Δ / n — the result's own sample count normalises."""
    lrn = learner()
    v0 = {k: v.clone() for k, v in lrn.global_state.items()}
    run_job(lrn, 1, 0)
    run_job(lrn, 2, 1)
    res1 = lrn.result(1)
    lrn.merge_jobs([(2, 1.0)])  # version 1: job 1 is now one version stale
    v1 = lrn.global_state
    n, s, eta = lrn.num_samples(0), 2 ** -0.5, 0.5
    lrn.merge_jobs([(1, n * s)], mode="damped", global_weight=eta)
    for k in ("blocks.1.conv.weight", "exits.2.fc.bias"):
        want = (v1[k].double() + eta * s * (res1.state[k] - v0[k]).double()).float()
        assert torch.allclose(lrn.global_state[k], want, atol=1e-6)


def test_fedasync_mixing_with_global_weight():
    lrn = learner()
    run_job(lrn, 1, 0)
    res = lrn.result(1)
    old = lrn.global_state
    lrn.merge_jobs([(1, 0.4)], mode="absolute", global_weight=0.6)
    k = "exits.2.fc.weight"
    assert torch.allclose(lrn.global_state[k], 0.6 * old[k] + 0.4 * res.state[k], atol=1e-7)


def test_rolling_depth_freezes_a_prefix_and_coverage_skips_it():
    rec = RecordingExecutor()
    lrn = learner(PruningSettings(depth="rolling"), executor=rec)
    plan = lrn.dispatch_job(1, 0, 0, 1, 1.0)  # one trainable block, r = 0: the deepest one
    assert (plan.depth, plan.trainable_from) == (3, 2)
    lrn.start(1, 2)
    res = lrn.result(1)
    assert {param_block(k) for k in res.state} == {2}
    assert lrn.merge_jobs([(1, 1.0)]) == [0, 0, 1]


def test_global_distillation_ships_the_global_model_only_to_clients_that_lack_part_of_it():
    rec = RecordingExecutor()
    lrn = learner(settings=TrainingSettings(batch_size=16, distill_mode="global", distill_weight=0.5), executor=rec)
    run_job(lrn, 1, 0, ratio=0.5)        # width-pruned: taught by the whole global model
    run_job(lrn, 2, 1, depth=2)          # depth-pruned: likewise
    run_job(lrn, 3, 2)                   # holds everything: its own deepest exit teaches
    teachers = [job.teacher for job in rec.jobs]
    assert teachers[0] is lrn.global_state and teachers[1] is lrn.global_state and teachers[2] is None
    narrow = lrn.result(1)
    assert narrow.kd_loss > 0
    # the teacher changes what is learned: the same job without it (self-distillation) differs
    own = learner(settings=TrainingSettings(batch_size=16, distill_mode="deepest", distill_weight=0.5))
    run_job(own, 1, 0, ratio=0.5)
    other = own.result(1)
    assert any(not torch.equal(narrow.state[k], other.state[k]) for k in narrow.state)


def test_job_table_lifecycle():
    lrn = learner()
    run_job(lrn, 1, 0)
    with pytest.raises(ValueError):
        lrn.start(1, 2)
    with pytest.raises(ValueError):
        lrn.dispatch_job(1, 0, 0, 3, 1.0)
    lrn.discard(1)
    lrn.discard(1)  # idempotent
    with pytest.raises(KeyError):
        lrn.result(1)
    run_job(lrn, 2, 0)
    lrn.merge_jobs([(2, 1.0)])
    with pytest.raises(KeyError):
        lrn.result(2)  # merged jobs are forgotten
    lrn.close()


def test_fleet_scope_importance_plans_follow_everyones_scores():
    lrn = learner(PruningSettings(width="importance", importance_explore=0.0, importance_scope="fleet"),
                  TrainingSettings(batch_size=16, importance_batches=2))
    first = lrn.plan(0, 0, 3, 0.5)
    assert first.keep["block1.channels"] == tuple(range(8))  # no scores yet: static
    for j in range(3):
        run_job(lrn, j, j)
    lrn.merge_jobs([(j, 1.0) for j in range(3)])
    scores = lrn.pruner.tracker.score["block1.channels"]
    top = tuple(sorted(torch.argsort(-scores, stable=True)[:8].tolist()))
    assert lrn.plan(5, 0, 3, 0.5).keep["block1.channels"] == top  # a client that never reported, too


def test_client_scope_importance_plans_follow_the_clients_own_scores():
    lrn = learner(PruningSettings(width="importance", importance_explore=0.0),
                  TrainingSettings(batch_size=16, importance_batches=2))
    for j in range(3):
        run_job(lrn, j, j)
    lrn.merge_jobs([(j, 1.0) for j in range(3)])
    for client in range(3):
        own = lrn.pruner.client_trackers[client].score["block1.channels"]
        top = tuple(sorted(torch.argsort(-own, stable=True)[:8].tolist()))
        assert lrn.plan(client, 1, 3, 0.5).keep["block1.channels"] == top
    assert lrn.plan(5, 1, 3, 0.5).keep["block1.channels"] == tuple(range(8))  # no reports of its own: static


def test_clients_with_disjoint_labels_get_different_masks():
    """Issue 15: data-aware pruning is per client. One label shard each (digits 0-4 vs 5-9): after
    one job each, their importance-ranked masks differ, and each follows its own shard's scores."""
    lrn = learner(PruningSettings(width="importance"), TrainingSettings(batch_size=16, importance_batches=2),
                  clients=2)
    y = lrn.data.dataset.y_train
    lrn.data.parts = [torch.nonzero(y < 5).flatten(), torch.nonzero(y >= 5).flatten()]  # the worker's shards too
    labels = [set(y[lrn.data.parts[c]].tolist()) for c in range(2)]
    assert labels == [{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}]
    for client in range(2):
        plan = lrn.plan(client, 0, 3, 0.5)
        assert all(units == tuple(range(len(units))) for units in plan.keep.values())  # both start static
        run_job(lrn, client, client, ratio=0.5)
    lrn.merge_jobs([(0, 1.0), (1, 1.0)])
    masks = [lrn.plan(client, 1, 3, 0.5).keep for client in range(2)]
    differ = [axis for axis in masks[0] if masks[0][axis] != masks[1][axis]]
    assert differ, "per-client importance gave both clients the same units on every axis"
    for client in range(2):  # each mask is its own tracker's ranking (plus exploration slots)
        tracker = lrn.pruner.client_trackers[client]
        for axis in differ:
            assert masks[client][axis] == lrn.pruner.width.choose(axis, lrn.width_axes[axis], len(masks[client][axis]),
                                                                   1, tracker)


def test_data_views_and_evaluation_shape():
    lrn = learner(partition=PartitionSpec(kind="dirichlet", alpha=0.3))
    hist = lrn.label_histograms()
    assert hist.shape == (8, 10)
    assert [int(r.sum()) for r in hist] == [lrn.num_samples(c) for c in range(8)]
    assert sum(lrn.num_samples(c) for c in range(8)) == len(lrn.data.dataset.y_train)
    ev = lrn.evaluate()
    assert ev.version == 0 and len(ev.exit_accuracy) == 3 and ev.accuracy == ev.exit_accuracy[-1]
    assert abs(ev.loss - math.log(10)) < 0.5
    n = lrn.num_samples(0)
    assert lrn.local_steps(0, 1.0) == math.ceil(n / min(16, n))
    assert lrn.state_bytes(lrn.plan(0, 0, 3, 1.0)) == 4 * sum(v.numel() for v in lrn.global_state.values())


def test_from_config_maps_the_scenario_presets():
    wl = Workload(model=CNN, dataset=DIGITS, batch_size=16)
    algo = resolve_algorithm(AlgorithmSpec(name="co-s2p"), policy_params)
    training, pruning = settings_from_config(wl, algo)
    assert (pruning.width, pruning.depth) == ("importance", "rolling")
    assert training.distill_mode == "deepest" and training.importance_batches == 2 and training.batch_size == 16
    lrn = Learner.from_config(wl, resolve_algorithm(AlgorithmSpec(name="fedavg"), policy_params), 4, 0)
    assert lrn.settings.importance_batches == 0 and lrn.pruner.settings.width == "none"
    assert lrn.num_blocks == 3
