"""Choosing each device's submodel: the largest cut of the model that fits its memory (and deadline).

Candidates are the pruning strategy's width ratios × depths (full width/depth only, when the strategy
does not cut that axis). A candidate *fits* when its training peak memory is within the device's
usable memory and — when the algorithm asks to fit the deadline — when its local compute finishes
inside the round's compute budget. Among fitting candidates the one with the most parameters wins
(deeper on ties). When nothing fits, the smallest candidate is returned with ``fits_memory=False``:
the device will record an OOM event and never train — honest about models that fit no device.

Exits: an algorithm that neither prunes depth nor distils between exits only ever uses the deepest
exit, so its submodels are costed as the single-classifier model (``exits="final"``, what FedAvg
trains and what the reference figures describe); depth pruning and self-distillation train one
classifier per block (``exits="all"``). See :func:`exit_mode`.
A measured step time from the device's profile replaces the cost model only at the point it was
measured (:class:`simulator.config.profiles.StepPoint`); ``SubmodelChoice.step_time_source`` says
which one a plan used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from simulator import cost as costmod
from simulator.config.algorithm import DistillationSpec, PruningSpec
from simulator.config.profiles import (
    DEFAULT_ELEMENTWISE_EFFICIENCY,
    DEFAULT_GEMM_TILE_WIDTH,
    DEFAULT_OP_OVERHEAD_S,
    StepPoint,
)
from simulator.config.workload import ModelSpec


@dataclass(frozen=True)
class DeviceBudget:
    """A device's capacity as the planner sees it (from its profile and power mode)."""

    usable_memory_bytes: int
    effective_flops: float
    memory_bandwidth_bytes_per_s: float
    step_overhead_s: float
    measured_step_s: Callable[[StepPoint], float | None] | None = None  # a measurement at that point, or None
    elementwise_efficiency: float = DEFAULT_ELEMENTWISE_EFFICIENCY
    op_overhead_s: float = DEFAULT_OP_OVERHEAD_S
    gemm_tile_width: int = DEFAULT_GEMM_TILE_WIDTH
    dtype: str = "fp32"  # the profile's training precision (part of a measured point)


@dataclass(frozen=True)
class SubmodelChoice:
    depth: int
    width_ratio: float
    params: int
    model_bytes: int
    peak_memory_bytes: int
    step_time_s: float
    train_flops_per_sample: float
    fits_memory: bool
    trainable_from: int = 0
    upload_bytes: int = 0  # only trained blocks go back; frozen ones the server already has
    step_time_source: str = "cost model"  # or "measured": the profile's time at exactly this point


def exit_mode(pruning: PruningSpec, distillation: DistillationSpec) -> str:
    """``final`` when no block but the deepest ever needs its classifier (no depth pruning, no
    distillation between exits), else ``all``."""
    distils = distillation.mode != "off" and distillation.weight > 0
    return "all" if pruning.depth != "none" or distils else "final"


class Planner:
    """Submodel choice for one workload; costs are traced once per (width, depth) and cached."""

    def __init__(
        self,
        model: ModelSpec,
        num_classes: int,
        input_shape: tuple[int, ...],
        num_blocks: int,
        batch_size: int,
        optimizer_kind: str,
        framework_overhead_bytes: int,
        pruning: PruningSpec,
        exits: str = "all",
    ) -> None:
        from simulator.workload_info import model_label

        self.model = model
        self.model_label = model_label(model)
        self.exits = exits
        self.num_classes = num_classes
        self.input_shape = input_shape
        self.num_blocks = num_blocks
        self.batch_size = batch_size
        self.optimizer_kind = optimizer_kind
        self.framework_overhead_bytes = framework_overhead_bytes
        self.pruning = pruning
        widths = [1.0] if pruning.width == "none" else list(pruning.width_ratios)
        depths = [num_blocks] if pruning.depth == "none" else list(range(num_blocks, 0, -1))
        self.candidates = [(w, d) for w in widths for d in depths]
        self._cache: dict[tuple, SubmodelChoice] = {}

    def cost(self, width_ratio: float, depth: int, trainable_from: int = 0) -> costmod.ModelCost:
        return costmod.model_cost(self.model, self.num_classes, self.input_shape, width_ratio, depth, trainable_from,
                                  exits=self.exits)

    def step_point(self, budget: DeviceBudget, width_ratio: float, depth: int) -> StepPoint:
        """The point a measured step time must have been taken at to stand for this plan."""
        return StepPoint(self.model_label, float(width_ratio), None if depth == self.num_blocks else int(depth),
                         int(self.batch_size), tuple(int(s) for s in self.input_shape), budget.dtype, self.exits)

    def evaluate(self, budget: DeviceBudget, width_ratio: float, depth: int, trainable_from: int = 0) -> SubmodelChoice:
        cost = self.cost(width_ratio, depth, trainable_from)
        peak = costmod.training_memory_bytes(cost, self.batch_size, self.optimizer_kind, self.framework_overhead_bytes)
        measured = None
        if budget.measured_step_s is not None and trainable_from == 0:  # a frozen prefix is never measured
            measured = budget.measured_step_s(self.step_point(budget, width_ratio, depth))
        if measured is not None:
            step_s = measured
        else:
            step_s = costmod.step_time_s(
                cost, self.batch_size, budget.effective_flops, budget.memory_bandwidth_bytes_per_s,
                budget.step_overhead_s, self.optimizer_kind, elementwise_efficiency=budget.elementwise_efficiency,
                op_overhead_s=budget.op_overhead_s, gemm_tile_width=budget.gemm_tile_width,
            )
        return SubmodelChoice(
            depth=depth, width_ratio=width_ratio, params=cost.params, model_bytes=costmod.model_bytes(cost),
            peak_memory_bytes=int(peak), step_time_s=float(step_s),
            train_flops_per_sample=float(cost.train_flops_per_sample), fits_memory=peak <= budget.usable_memory_bytes,
            trainable_from=trainable_from, upload_bytes=costmod.FP32_BYTES * cost.trainable_params,
            step_time_source="cost model" if measured is None else "measured",
        )

    def rolling_windows(self, budget: DeviceBudget, base: SubmodelChoice) -> list[SubmodelChoice]:
        """Co-S²P's rolling depth: a device that can train k of L blocks trains a window of k blocks
        behind a frozen prefix, deepest window first, so weak devices help the deep blocks too.

        Only windows whose memory (frozen weights + trained window) still fits are offered; the
        shallowest window (no frozen prefix) always is, being the base choice itself.
        """
        key = ("rolling", budget, base)
        if key in self._cache:
            return self._cache[key]  # type: ignore[return-value]
        k = base.depth
        windows = [base]
        for frozen in range(1, self.num_blocks - k + 1):
            option = self.evaluate(budget, base.width_ratio, frozen + k, frozen)
            if option.fits_memory:
                windows.append(option)
        windows.sort(key=lambda c: -c.trainable_from)
        self._cache[key] = windows  # type: ignore[assignment]
        return windows

    def choose(self, budget: DeviceBudget, compute_budget_s: float | None = None, steps: int = 1) -> SubmodelChoice:
        """The best fitting candidate for this device (cached per budget)."""
        fit_time = self.pruning.fit_deadline and compute_budget_s is not None
        key = (budget, compute_budget_s if fit_time else None, steps if fit_time else None)
        if key in self._cache:
            return self._cache[key]
        options = [self.evaluate(budget, w, d) for w, d in self.candidates]
        fitting = [c for c in options if c.fits_memory]
        if fit_time:
            in_time = [c for c in fitting if c.step_time_s * steps <= compute_budget_s]
            fitting = in_time or sorted(fitting, key=lambda c: c.step_time_s)[:1]
        if fitting:
            best = max(fitting, key=lambda c: (c.params, c.depth))
        else:
            best = min(options, key=lambda c: c.peak_memory_bytes)
        self._cache[key] = best
        return best


def local_steps(num_samples: int, batch_size: int, local_epochs: float | None, fixed_steps: int | None) -> int:
    """Local steps of one job: fixed, or epochs over the client's shard (at least one step)."""
    if fixed_steps is not None:
        return fixed_steps
    epochs = local_epochs if local_epochs is not None else 1.0
    return max(1, math.ceil(epochs * num_samples / batch_size))
