"""The bridge from the engine's jobs to the Learner: proxy-model depth mapping and the executor.

When a scenario plans with a large model but trains a small proxy (``workload.train_model``), the
planner's submodel depth d of L planning blocks becomes ceil(d · L' / L) of the proxy's L' blocks and
a frozen prefix f becomes floor(f · L' / L) — the identity for a proxy with the planned block count
(``vit-b-proxy``, ``bert-base-proxy``: 12 blocks for 12). Width ratios carry over, raised to the
proxy's floor (:func:`~simulator.learning.pruning.min_width_ratio`: at least 4 channels on every
channel axis and 1 head): a 0.0625 cut of ViT-B keeps 48 of its 768 channels, but of a width-32
proxy it would keep 2, a degenerate network no planned submodel resembles. Without a proxy the
mapping is the identity (what is trained is exactly what was planned).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulator.learning.learner import Learner, settings_from_config
from simulator.learning.pruning import min_width_ratio


class ProxyLearner:
    """A Learner whose submodel depths are given in the planning model's blocks."""

    def __init__(self, learner: Learner, plan_blocks: int, min_width_ratio: float = 0.0) -> None:
        self.learner = learner
        self.plan_blocks = plan_blocks
        self.train_blocks = learner.num_blocks
        self.min_width_ratio = float(min_width_ratio)

    def proxy_width(self, width_ratio: float) -> float:
        """The proxy's width for a planned one: never below the proxy's sane minimum."""
        if not self.learner.width_axes:
            return 1.0
        return max(float(width_ratio), self.min_width_ratio)

    def _depth(self, depth: int) -> int:
        if self.plan_blocks == self.train_blocks:
            return depth
        return max(1, min(self.train_blocks, math.ceil(depth * self.train_blocks / self.plan_blocks)))

    def _frozen(self, trainable_from: int, depth: int) -> int:
        if self.plan_blocks == self.train_blocks:
            return trainable_from
        return min(depth - 1, (trainable_from * self.train_blocks) // self.plan_blocks)

    def dispatch_job(self, job_id: int, client: int, job_index: int, depth: int, width_ratio: float,
                     trainable_from: int = 0) -> None:
        """Depth and frozen prefix come from the engine's planner (in planning-model blocks), so the
        memory and bytes the simulation charged are those of the submodel actually trained."""
        ratio = self.proxy_width(width_ratio)
        proxy_depth = self._depth(depth)
        self.learner.dispatch_job(job_id, client, job_index, proxy_depth, ratio,
                                  self._frozen(trainable_from, proxy_depth))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.learner, name)


def make_learner(info: Any, algorithm: Any, executor: Any) -> ProxyLearner:
    """Build the run's Learner from the workload description and the resolved algorithm."""
    scenario = info.scenario
    training, pruning = settings_from_config(scenario.workload, algorithm)
    learner = Learner(
        info.train_model, info.dataset_spec, scenario.workload.partition, scenario.num_devices, training, pruning,
        seed=scenario.seed, executor=executor, eval_batch_size=scenario.evaluation.batch_size,
    )
    sizes = np.array([learner.num_samples(i) for i in range(scenario.num_devices)])
    if not np.array_equal(sizes, info.shard_sizes):
        raise RuntimeError("the learner's partition differs from the planner's; both must use partition(seed)")
    floor = min_width_ratio(learner.width_axes, learner.param_axes) if info.proxy else 0.0
    return ProxyLearner(learner, info.num_blocks, floor)
