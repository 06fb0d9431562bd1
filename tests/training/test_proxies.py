"""Proxies that keep the planned structure (issue 15): the planned family and block count, and a
width floor so that a deep cut never leaves a degenerate network."""

from __future__ import annotations

import pytest

from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
from simulator.learning.learner import Learner
from simulator.learning.models.base import scaled_units
from simulator.learning.models.registry import build_model, full_depth
from simulator.learning.pruning import PruningSettings, min_width_ratio
from simulator.learning.trainer import TrainingSettings
from simulator.engine.training import ProxyLearner

PAIRS = [("vit", "vit-b", "vit-b-proxy"), ("text-transformer", "bert-base", "bert-base-proxy")]


@pytest.mark.parametrize("family, planned, proxy", PAIRS)
def test_a_proxy_keeps_the_planned_family_and_block_count(family: str, planned: str, proxy: str) -> None:
    big, small = ModelSpec(name=family, preset=planned), ModelSpec(name=family, preset=proxy)
    assert full_depth(big) == full_depth(small) == 12
    shape = (1, 16, 16) if family == "vit" else (16,)
    params = sum(p.numel() for p in build_model(small, 10, shape, seed=0).parameters())
    assert params < 200_000  # trains in seconds on a CPU core


@pytest.mark.parametrize("spec, shape", [
    (ModelSpec(name="cnn", preset="tiny"), (1, 16, 16)),
    (ModelSpec(name="vit", preset="vit-b-proxy"), (1, 16, 16)),
    (ModelSpec(name="text-transformer", preset="bert-base-proxy"), (16,)),
    (ModelSpec(name="mlp", preset="tiny"), (1, 8, 8)),
])
def test_the_width_floor_leaves_four_channels_and_one_head(spec: ModelSpec, shape: tuple[int, ...]) -> None:
    model = build_model(spec, 10, shape, seed=0)
    axes, refs = model.width_axes(), model.param_axes()
    floor = min_width_ratio(axes, refs)
    heads = {a for r in refs.values() for ref in r if ref is not None and ref.unit_size > 1 for a in [ref.axis]}
    for axis, size in axes.items():
        kept = scaled_units(size, floor)
        assert kept >= (1 if axis in heads else min(size, 4))
    # and it is tight: the binding axis keeps exactly its minimum
    assert any(scaled_units(size, floor) == (1 if axis in heads else min(size, 4)) for axis, size in axes.items())


def test_a_proxy_learner_raises_small_planned_widths_to_the_floor_and_keeps_depths() -> None:
    spec = ModelSpec(name="vit", preset="vit-b-proxy")
    learner = Learner(spec, DatasetSpec(name="digits", image_size=16), PartitionSpec(kind="iid"), 4,
                      TrainingSettings(batch_size=8), PruningSettings(width="static", depth="rolling"), 0)
    proxy = ProxyLearner(learner, 12, min_width_ratio(learner.width_axes, learner.param_axes))
    assert proxy.min_width_ratio == 0.125  # 4 of the 32 embedding channels
    proxy.dispatch_job(0, 0, 0, depth=12, width_ratio=0.0625, trainable_from=7)  # a rolling window
    plan = learner.snapshot()["jobs"][0]["plan"]  # what a checkpoint keeps: the plan the job will train
    assert (plan.depth, plan.trainable_from, plan.width_ratio) == (12, 7, 0.125)  # 12 → 12 blocks: identity
    assert len(plan.keep["embed"]) == 4 and all(len(plan.keep[f"block{b}.heads"]) == 1 for b in range(12))
    proxy.dispatch_job(1, 1, 0, depth=12, width_ratio=0.5, trainable_from=0)
    assert learner.snapshot()["jobs"][1]["plan"].width_ratio == 0.5  # above the floor: unchanged
