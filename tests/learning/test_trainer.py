"""run_job: determinism, freezing, masks, Taylor importance, and that it actually learns."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from simulator.config.workload import DatasetSpec, ModelSpec
from simulator.learning.data import load_dataset
from simulator.learning.models.registry import build_model
from simulator.learning.pruning import Pruner, PruningSettings
from simulator.learning.submodel import SubmodelPlan, extract, param_block
from simulator.learning.trainer import TrainingSettings, TrainJob, run_job, taylor_importance

CNN = ModelSpec(name="cnn", preset="tiny")
MLP = ModelSpec(name="mlp", preset="tiny")
DATA = load_dataset(DatasetSpec(name="digits", image_size=8), 0)
X, Y = DATA.x_train[:96], DATA.y_train[:96]


def factory(spec, built=None):
    def make(depth, ratio):
        m = build_model(spec, 10, (1, 8, 8), ratio, depth)
        if built is not None:
            built.append(m)
        return m
    return make


def job(spec=CNN, ratio=1.0, depth=3, trainable_from=0, steps=6, seed=11, sparsity=0.0, **settings):
    full = build_model(spec, 10, (1, 8, 8), seed=0)
    pr = Pruner(PruningSettings(width="rolling", unstructured_sparsity=sparsity), full.width_axes(), full.full_depth)
    plan = pr.plan(0, 3, depth, ratio, trainable_from)
    s = TrainingSettings(batch_size=16, lr=0.05, **settings)
    return TrainJob(1, 0, seed, plan, extract(full.state_dict(), plan, full.param_axes()), 0, steps, s)


def same_result(a, b) -> bool:
    if a.train_loss != b.train_loss or list(a.state) != list(b.state):
        return False
    if (a.importance is None) != (b.importance is None):
        return False
    imp = all(torch.equal(a.importance[k], b.importance[k]) for k in a.importance) if a.importance else True
    return imp and all(torch.equal(a.state[k], b.state[k]) for k in a.state)


def test_run_job_is_bitwise_deterministic_whatever_the_global_rng_and_threads():
    j = job(ratio=0.5, distill_mode="mutual", distill_weight=0.5, importance_batches=2)
    torch.manual_seed(1)
    first = run_job(j, X, Y, factory(CNN))
    torch.manual_seed(999)
    torch.set_num_threads(2)
    try:
        second = run_job(j, X, Y, factory(CNN))
        assert torch.get_num_threads() == 2  # restored after the job
    finally:
        torch.set_num_threads(1)
    assert same_result(first, second)
    other = run_job(dataclasses.replace(j, seed=12), X, Y, factory(CNN))
    assert not same_result(first, other)


def test_result_state_has_the_plan_shapes_and_is_detached_cpu():
    j = job(ratio=0.5)
    res = run_job(j, X, Y, factory(CNN))
    assert list(res.state) == list(j.state)
    for k, v in res.state.items():
        assert v.shape == j.state[k].shape and not v.requires_grad and v.device.type == "cpu"
    assert res.num_samples == len(Y) and res.steps == 6 and res.samples_seen == 6 * 16


def test_frozen_blocks_are_unchanged_and_not_returned():
    built = []
    j = job(depth=3, trainable_from=2, steps=5)
    res = run_job(j, X, Y, factory(CNN, built))
    model = built[-1]
    for name, p in model.state_dict().items():
        if param_block(name) < 2:
            assert torch.equal(p, j.state[name]), name
            assert name not in res.state
        elif name.endswith("weight"):
            assert not torch.equal(res.state[name], j.state[name]), name


def deepest_loss(state, plan):
    m = build_model(CNN, 10, (1, 8, 8), plan.width_ratio, plan.depth)
    m.load_state_dict(state)
    with torch.no_grad():
        return float(F.cross_entropy(m(X)[-1], Y))


def test_local_training_lowers_the_shard_loss():
    j = job(steps=40)
    res = run_job(j, X, Y, factory(CNN))
    assert deepest_loss(res.state, j.plan) < 0.7 * deepest_loss(j.state, j.plan)


def test_unstructured_mask_is_kept_through_training():
    j = job(sparsity=0.5, steps=5)
    res = run_job(j, X, Y, factory(CNN))
    for name, before in j.state.items():
        after = res.state[name]
        if before.dim() >= 2:
            k = before.numel() // 2
            smallest = torch.argsort(before.abs().reshape(-1), stable=True)[:k]
            assert torch.all(after.reshape(-1)[smallest] == 0), name
        else:
            assert torch.count_nonzero(after) > after.numel() // 2  # biases and norms are not masked


def test_taylor_importance_matches_the_formula():
    m = build_model(MLP, 10, (1, 8, 8), 1.0, 1, seed=3)
    plan = SubmodelPlan.full(m.width_axes(), 1)
    batches = [(X[:8], Y[:8]), (X[8:16], Y[8:16])]
    got = taylor_importance(m, plan, batches)
    assert set(got) == {"block0.units"}  # block1 is not in a depth-1 model
    want = torch.zeros(32, dtype=torch.float64)
    for xb, yb in batches:
        m.zero_grad()
        F.cross_entropy(m(xb)[0], yb).backward()
        w, b, e = m.blocks[0].fc.weight, m.blocks[0].fc.bias, m.exits[0].fc.weight
        per = (w * w.grad).sum(1) + b * b.grad + (e * e.grad).sum(0)
        want += per.double().abs()
    assert torch.allclose(got["block0.units"].double(), want / 2, rtol=1e-4, atol=1e-7)


def test_importance_covers_trainable_axes_in_plan_order():
    res = run_job(job(ratio=0.5, importance_batches=1), X, Y, factory(CNN))
    assert {a: v.shape[0] for a, v in res.importance.items()} == {
        "block0.channels": 4, "block1.channels": 8, "block2.channels": 16}
    assert all((v >= 0).all() for v in res.importance.values())
    frozen = run_job(job(depth=3, trainable_from=2, importance_batches=1), X, Y, factory(CNN))
    # blocks 0 and 1 are frozen: only block2's axis is scored
    assert set(frozen.importance) == {"block2.channels"}
    assert run_job(job(), X, Y, factory(CNN)).importance is None


def test_adam_and_settings_validation():
    res = run_job(job(optimizer="adam", steps=3), X, Y, factory(CNN))
    assert torch.isfinite(torch.tensor(res.train_loss))
    with pytest.raises(ValueError):
        TrainingSettings(optimizer="lbfgs")
    with pytest.raises(ValueError):
        TrainingSettings(distill_mode="both")
