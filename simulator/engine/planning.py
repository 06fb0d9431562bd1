"""Choosing each device's submodel: the largest cut of the model that fits its memory (and deadline).

Candidates are the pruning strategy's width ratios × depths (full width/depth only, when the strategy
does not cut that axis); with depth ``partial`` (TimelyFL) they are the whole model with a frozen
prefix of 0 … L−1 blocks, i.e. the device trains the last 1 … L blocks (the output side). A candidate
*fits* when its training peak memory is within the device's usable memory and — when the algorithm
asks to fit the deadline — when its local compute finishes inside the round's compute budget. Among
fitting candidates the one that trains the most parameters wins (then the most held, then deeper).
When nothing fits, the smallest candidate is returned with ``fits_memory=False``: the device will
record an OOM event and never train — honest about models that fit no device.

:meth:`Planner.job_extras` is the work a job does besides its training steps — the Taylor-importance
batches of data-aware pruning and the global-teacher pass of ``distillation.mode: global`` — as
device time, FLOPs, extra download and the memory of that phase; the engine adds it to the job.

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
from typing import Any, Callable, Sequence

from simulator.cost import model as costmod
from simulator.config.algorithm import DistillationSpec, PruningSpec, exit_mode  # noqa: F401 - re-exported
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


@dataclass(frozen=True)
class JobExtras:
    """Work of one job besides its training steps, on the device (added to the job by the engine)."""

    compute_s: float = 0.0
    flops: float = 0.0
    download_bytes: int = 0       # beyond the submodel's own bytes
    peak_memory_bytes: int = 0    # the peak of that extra phase (the job's peak is the larger one)


_NO_EXTRAS = JobExtras()


class Planner:
    """Submodel choice for one workload; costs are traced once per width (cost.cache) and composed once per
    (width, depth, trainable_from)."""

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
        from simulator.config.workload import model_label

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
        if pruning.depth == "partial":  # TimelyFL: hold everything, train the last L - f blocks
            self.candidates = [(w, num_blocks, f) for w in widths for f in range(num_blocks)]
        else:
            depths = [num_blocks] if pruning.depth == "none" else list(range(num_blocks, 0, -1))
            self.candidates = [(w, d, 0) for w in widths for d in depths]
        self._cache: dict[tuple, Any] = {}

    def cost(self, width_ratio: float, depth: int, trainable_from: int = 0) -> costmod.ModelCost:
        """The candidate's cost, composed once per (width, depth, trainable_from) from the width's trace
        and kept: every device budget asks for the same candidates (explaining the quickstart's 16
        devices composed 1,193 costs for 84 candidates). ModelCost is frozen: sharing it changes nothing."""
        key = ("cost", float(width_ratio), int(depth), int(trainable_from))
        if key not in self._cache:
            self._cache[key] = costmod.model_cost(self.model, self.num_classes, self.input_shape, width_ratio, depth,
                                                  trainable_from, exits=self.exits)
        return self._cache[key]

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

    def job_extras(self, budget: DeviceBudget, choice: SubmodelChoice, steps: int, algorithm: Any) -> JobExtras:
        """What a job of `choice` with `steps` local steps does besides training, under the resolved
        `algorithm` (its importance batches and its distillation mode); cached."""
        batches = algorithm.pruning.importance_batches if algorithm.pruning.width == "importance" else 0
        teacher = algorithm.distillation.mode == "global"
        if not batches and not teacher:
            return _NO_EXTRAS
        key = ("extras", budget, choice, steps, batches, teacher)
        if key not in self._cache:
            a = importance_extras(self, budget, choice, batches)
            b = teacher_extras(self, budget, choice, steps) if teacher else _NO_EXTRAS
            self._cache[key] = JobExtras(a.compute_s + b.compute_s, a.flops + b.flops,
                                         a.download_bytes + b.download_bytes,
                                         max(a.peak_memory_bytes, b.peak_memory_bytes))
        return self._cache[key]

    def choose(self, budget: DeviceBudget, compute_budget_s: float | None = None, steps: int = 1) -> SubmodelChoice:
        """The best fitting candidate for this device (cached per budget)."""
        fit_time = self.pruning.fit_deadline and compute_budget_s is not None
        key = (budget, compute_budget_s if fit_time else None, steps if fit_time else None)
        if key in self._cache:
            return self._cache[key]
        options = [self.evaluate(budget, w, d, f) for w, d, f in self.candidates]
        fitting = [c for c in options if c.fits_memory]
        if fit_time:
            in_time = [c for c in fitting if c.step_time_s * steps <= compute_budget_s]
            fitting = in_time or sorted(fitting, key=lambda c: c.step_time_s)[:1]
        if fitting:  # upload_bytes = 4 x trained parameters (= params without a frozen prefix)
            best = max(fitting, key=lambda c: (c.upload_bytes, c.params, c.depth))
        else:
            best = min(options, key=lambda c: c.peak_memory_bytes)
        self._cache[key] = best
        return best


def _importance_work(cost: costmod.ModelCost, batch_size: int) -> costmod.StepWork:
    """One Taylor-importance batch: the training step's forward and backward (same GEMMs, elementwise
    bytes and ops), gradients written and read once for Σ w·∂L/∂w, weights read for it — but no
    optimizer update (no update traffic, no optimizer state)."""
    train = costmod.step_work(cost, batch_size, "sgd")
    trainable_bytes = costmod.FP32_BYTES * cost.trainable_params
    return costmod.StepWork(train.gemm_flops_by_width, float(2 * cost.param_bytes + 3 * trainable_bytes),
                            train.elementwise_bytes, train.ops)


def _forward_work(traced: Sequence[Any], batch_size: int) -> costmod.StepWork:
    """A forward-only pass of every traced part (``cost.traced.TracedPart``: block bodies, exits) on one
    batch (each part's weights read once)."""
    gemm: dict[int, float] = {}
    for t in traced:
        for width, flops in t.fwd_gemm:
            gemm[width] = gemm.get(width, 0.0) + flops * batch_size
    return costmod.StepWork(tuple(sorted(gemm.items())), float(costmod.FP32_BYTES * sum(t.params for t in traced)),
                            float(sum(t.fwd_elementwise_bytes_per_sample for t in traced) * batch_size),
                            int(sum(t.fwd_ops for t in traced)))


def _work_s(work: costmod.StepWork, budget: DeviceBudget) -> float:
    return costmod.work_time_terms(
        work, budget.effective_flops, budget.memory_bandwidth_bytes_per_s, budget.step_overhead_s,
        elementwise_efficiency=budget.elementwise_efficiency, op_overhead_s=budget.op_overhead_s,
        gemm_tile_width=budget.gemm_tile_width).total_s


def importance_extras(planner: "Planner", budget: DeviceBudget, choice: SubmodelChoice, batches: int) -> JobExtras:
    """`batches` Taylor-importance batches on the job's submodel. Their time is the step time scaled
    by the cost model's ratio of an importance batch to a training step (so a profile's measured step
    times carry over); their memory is the training step's minus the optimizer state, so never the peak."""
    if batches <= 0:
        return JobExtras()
    cost = planner.cost(choice.width_ratio, choice.depth, choice.trainable_from)
    step = costmod.step_work(cost, planner.batch_size, planner.optimizer_kind)
    ratio = _work_s(_importance_work(cost, planner.batch_size), budget) / _work_s(step, budget)
    peak = costmod.training_memory_bytes(cost, planner.batch_size, "sgd", planner.framework_overhead_bytes)
    return JobExtras(compute_s=batches * choice.step_time_s * ratio,
                     flops=batches * planner.batch_size * choice.train_flops_per_sample,
                     peak_memory_bytes=peak)  # weights, gradients, saved activations: no optimizer state


def teacher_extras(planner: "Planner", budget: DeviceBudget, choice: SubmodelChoice, steps: int) -> JobExtras:
    """``distillation.mode: global``: before training, a device that does not hold the whole model
    runs the downloaded global model forward-only, block by block, on each of its `steps` batches, to
    get the deepest exit's soft labels. Device time: `steps` forward passes of the full model;
    download: the full model instead of the submodel (the submodel is sliced from it on the device);
    memory of that phase: the largest block's weights + one batch of its activations + the framework
    overhead + the soft labels kept for training (no gradients, no optimizer state)."""
    if choice.depth == planner.num_blocks and choice.width_ratio >= 1.0:
        return JobExtras()  # it holds the global model: its own deepest exit teaches (self-distillation)
    from simulator.cost.cache import trace

    blocks = trace(planner.model.resolved(), planner.num_classes, planner.input_shape, 1.0)
    teacher = [b.body for b in blocks] + [blocks[-1].exit]  # every block, then the deepest exit only
    batch = planner.batch_size
    forward_s = _work_s(_forward_work(teacher, batch), budget)
    full_bytes = costmod.FP32_BYTES * sum(b.body.params + b.exit.params for b in blocks)  # what is downloaded
    soft_labels = costmod.FP32_BYTES * steps * batch * planner.num_classes
    peak = max(costmod.FP32_BYTES * t.params + t.activation_bytes_per_sample * batch for t in teacher)
    return JobExtras(compute_s=steps * forward_s,
                     flops=steps * batch * sum(t.fwd_flops_per_sample for t in teacher),
                     download_bytes=max(0, full_bytes - choice.model_bytes),
                     peak_memory_bytes=int(math.ceil(peak + soft_labels + planner.framework_overhead_bytes)))


def local_steps(num_samples: int, batch_size: int, local_epochs: float | None, fixed_steps: int | None) -> int:
    """Local steps of one job: fixed, or epochs over the client's shard (at least one step)."""
    if fixed_steps is not None:
        return fixed_steps
    epochs = local_epochs if local_epochs is not None else 1.0
    return max(1, math.ceil(epochs * num_samples / batch_size))
