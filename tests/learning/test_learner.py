"""The Learner: job pinning, merges, importance feedback, evaluation, and real learning."""

from __future__ import annotations

import math

import pytest
import torch

from simulator.config.algorithm import resolve_algorithm
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


def test_importance_plans_follow_the_reported_scores():
    lrn = learner(PruningSettings(width="importance", importance_explore=0.0),
                  TrainingSettings(batch_size=16, importance_batches=2))
    first = lrn.plan(0, 0, 3, 0.5)
    assert first.keep["block1.channels"] == tuple(range(8))  # no scores yet: static
    for j in range(3):
        run_job(lrn, j, j)
    lrn.merge_jobs([(j, 1.0) for j in range(3)])
    scores = lrn.pruner.tracker.score["block1.channels"]
    top = tuple(sorted(torch.argsort(-scores, stable=True)[:8].tolist()))
    assert lrn.plan(5, 0, 3, 0.5).keep["block1.channels"] == top


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
    algo = resolve_algorithm(AlgorithmSpec(name="co-s2p"))
    training, pruning = settings_from_config(wl, algo)
    assert (pruning.width, pruning.depth) == ("importance", "rolling")
    assert training.distill_mode == "deepest" and training.importance_batches == 2 and training.batch_size == 16
    lrn = Learner.from_config(wl, resolve_algorithm(AlgorithmSpec(name="fedavg")), 4, 0)
    assert lrn.settings.importance_batches == 0 and lrn.pruner.settings.width == "none"
    assert lrn.num_blocks == 3
