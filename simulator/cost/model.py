"""Analytic cost of training a (sub)model — parameters, FLOPs, activation memory, memory traffic and
ops per block — and from those the step time and training memory on a device.

The per-block figures come from a trace on the meta device (:mod:`simulator.cost.meta_trace`), made once
per (spec, num_classes, input_shape, width_ratio) and cached (:func:`simulator.cost.cache.trace`: a hit
needs no torch); depth and ``trainable_from`` are then applied to them, so a depth sweep costs one trace.

Training FLOPs. Backward costs about twice the forward (one GEMM for input gradients, one for weight
gradients, each as large as the forward GEMM), so a trained block nominally costs 3x its forward
(``train_flops_per_sample``): the ratio FlopCounterMode measures on a real backward pass of these
models (checked in tests/test_cost.py, and 3.00 on ResNet-18 in the reference notes). The step time
uses the GEMM work actually traced, forward and backward, by output width (``gemm_flops_by_width``),
which is at most that (the first layer computes no input gradient). A frozen block (before
``trainable_from``) costs its forward only, saves no activations, holds no gradients or optimizer
state, and moves and dispatches its forward's bytes and ops only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.config.profiles import DEFAULT_ELEMENTWISE_EFFICIENCY, DEFAULT_GEMM_TILE_WIDTH, DEFAULT_OP_OVERHEAD_S
from simulator.config.workload import ModelSpec
from simulator.cost.cache import trace as _trace
from simulator.cost.traced import GemmWidths, Traced
from simulator.errors import InputError

FP32_BYTES = 4
# Optimizer state per trainable parameter, in parameter-sized tensors.
OPTIMIZER_STATE_TENSORS = {"sgd": 0, "momentum": 1, "adam": 2}


@dataclass(frozen=True)
class BlockCost:
    """One block's share of a training step (its exit included; block 0 includes the stem).

    ``elementwise_bytes_per_sample`` (what non-GEMM ops read and write), ``ops`` (dispatched per step,
    whatever the batch) and ``gemm_flops_by_width`` (GEMM FLOPs per sample by output width) cover
    forward and backward of a trained block and the forward only of a frozen one.
    """

    params: int
    fwd_flops_per_sample: float
    train_flops_per_sample: float
    activation_bytes_per_sample: float
    elementwise_bytes_per_sample: float = 0.0
    ops: int = 0
    gemm_flops_by_width: GemmWidths = ()


@dataclass(frozen=True)
class ModelCost:
    """Totals over the retained depth; ``blocks[0]`` includes the stem, each block its exit.

    ``params`` counts state-dict elements (parameters and any buffers, which only user models have);
    ``trainable_params`` those in blocks at or after ``trainable_from``. The step-time figures are the
    blocks' summed (``gemm_flops_by_width`` merged by width). ``exits``: which exits the submodel
    carries (``all`` or ``final``, see :func:`model_cost`).
    """

    blocks: tuple[BlockCost, ...]
    params: int
    param_bytes: int
    fwd_flops_per_sample: float
    train_flops_per_sample: float
    activation_bytes_per_sample: float
    trainable_params: int = 0
    trainable_from: int = 0
    elementwise_bytes_per_sample: float = 0.0
    ops_per_step: int = 0
    gemm_flops_by_width: GemmWidths = ()
    exits: str = "all"


def _merge(*groups: GemmWidths) -> GemmWidths:
    total: dict[int, float] = {}
    for group in groups:
        for width, flops in group:
            total[width] = total.get(width, 0.0) + flops
    return tuple(sorted(total.items()))


EXIT_MODES = ("all", "final")


def _block_cost(t: Traced, trains: bool, with_exit: bool) -> BlockCost:
    """One block of a submodel: its body, trained or frozen (forward only: no saved activations,
    backward traffic or ops), and its exit when the submodel has one there. A frozen block's exit is
    held (its parameters count) but never run, as the trainer does not compute it."""
    body, ex = t.body, t.exit
    runs_exit = with_exit and trains
    parts = (body, ex) if runs_exit else (body,)
    return BlockCost(
        params=body.params + (ex.params if with_exit else 0),
        fwd_flops_per_sample=sum(p.fwd_flops_per_sample for p in parts),
        train_flops_per_sample=sum(p.fwd_flops_per_sample for p in parts) * (3.0 if trains else 1.0),
        activation_bytes_per_sample=sum(p.activation_bytes_per_sample for p in parts) if trains else 0.0,
        elementwise_bytes_per_sample=sum(p.fwd_elementwise_bytes_per_sample
                                         + (p.bwd_elementwise_bytes_per_sample if trains else 0.0) for p in parts),
        ops=sum(p.fwd_ops + (p.bwd_ops if trains else 0) for p in parts),
        gemm_flops_by_width=_merge(*(g for p in parts for g in ((p.fwd_gemm, p.bwd_gemm) if trains else (p.fwd_gemm,)))),
    )


def model_cost(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...] | list[int],
               width_ratio: float = 1.0, depth: int | None = None, trainable_from: int = 0,
               exits: str = "all") -> ModelCost:
    """Cost of the submodel (width_ratio, first `depth` blocks), blocks before `trainable_from` frozen.

    ``exits="all"``: every retained block carries its exit, as depth pruning and self-distillation
    train them (one cross-entropy per exit). ``exits="final"``: only the deepest retained block's
    exit exists — the single-classifier model an algorithm without depth pruning or distillation
    trains, and what the reference figures (torchvision, the papers) describe.
    """
    if exits not in EXIT_MODES:
        raise InputError("unknown exits mode", field="exits", value=exits, accepted=", ".join(EXIT_MODES))
    traced = _trace(spec.resolved(), int(num_classes), tuple(int(s) for s in input_shape), float(width_ratio))
    d = len(traced) if depth is None else int(depth)
    if not 1 <= d <= len(traced):
        raise InputError("depth out of range", field="depth", value=depth, accepted=f"1..{len(traced)}")
    if not 0 <= trainable_from < d:
        raise InputError("trainable_from out of range", field="trainable_from", value=trainable_from,
                         accepted=f"0..{d - 1} (at least the last retained block trains)")
    blocks = tuple(_block_cost(t, b >= trainable_from, exits == "all" or b == d - 1)
                   for b, t in enumerate(traced[:d]))
    params = sum(b.params for b in blocks)
    return ModelCost(
        blocks=blocks,
        params=params,
        param_bytes=params * FP32_BYTES,
        fwd_flops_per_sample=sum(b.fwd_flops_per_sample for b in blocks),
        train_flops_per_sample=sum(b.train_flops_per_sample for b in blocks),
        activation_bytes_per_sample=sum(b.activation_bytes_per_sample for b in blocks),
        trainable_params=sum(b.params for b in blocks[trainable_from:]),
        trainable_from=trainable_from,
        elementwise_bytes_per_sample=sum(b.elementwise_bytes_per_sample for b in blocks),
        ops_per_step=sum(b.ops for b in blocks),
        gemm_flops_by_width=_merge(*(b.gemm_flops_by_width for b in blocks)),
        exits=exits,
    )


def _state_tensors(optimizer: str) -> int:
    try:
        return OPTIMIZER_STATE_TENSORS[optimizer]
    except KeyError:
        raise InputError("unknown optimizer", field="optimizer", value=optimizer,
                         accepted=", ".join(OPTIMIZER_STATE_TENSORS)) from None


def training_memory_bytes(cost: ModelCost, batch_size: int, optimizer: str,
                          framework_overhead_bytes: int = 0) -> int:
    """Peak memory of a training step, fp32:

    ``param_bytes + 4 * trainable_params * (1 + s) + activation_bytes_per_sample * batch_size
    + framework_overhead_bytes`` where ``s`` = optimizer state tensors per parameter (sgd 0, momentum
    1, adam 2) and the ``1`` is the gradient. Transient buffers of the backward pass (activation
    gradients of one layer at a time) are small next to the saved activations and are left to the
    overhead term, as is the CUDA context / framework footprint of the device profile.
    """
    per_param = FP32_BYTES * cost.trainable_params * (1 + _state_tensors(optimizer))
    acts = cost.activation_bytes_per_sample * int(batch_size)
    return int(math.ceil(cost.param_bytes + per_param + acts + framework_overhead_bytes))


def padded_width(width: int, tile: int) -> int:
    """``width`` rounded up to a multiple of ``tile`` (0, "not tiled", stays 0)."""
    return -(-width // tile) * tile if width > 0 else 0


@dataclass(frozen=True)
class StepWork:
    """What one training step asks of a device, before any device figure is applied.

    ``gemm_flops_by_width``: GEMM FLOPs of the step by output width; ``param_traffic_bytes``: weights
    read in forward and backward (``2 * param_bytes``), gradients written and read by the optimizer
    (``2 * 4 * trainable``), the update reading and writing weights and optimizer state (``2 * 4 *
    trainable * (1 + s)``, s = optimizer state tensors); ``elementwise_bytes``: what non-GEMM ops read
    and write; ``ops``: ops dispatched.
    """

    gemm_flops_by_width: GemmWidths
    param_traffic_bytes: float
    elementwise_bytes: float
    ops: int

    @property
    def gemm_flops(self) -> float:
        """GEMM FLOPs as computed (no tile padding)."""
        return sum(f for _, f in self.gemm_flops_by_width)

    def tiled_gemm_flops(self, tile_width: int) -> float:
        """GEMM FLOPs as a device with output tiles of ``tile_width`` executes them: each GEMM's width
        padded up to a multiple of the tile (a 12-channel layer on 16-wide tiles costs as 16)."""
        return sum(f * (padded_width(w, tile_width) / w if w > 0 else 1.0) for w, f in self.gemm_flops_by_width)


def step_work(cost: ModelCost, batch_size: int, optimizer: str = "sgd") -> StepWork:
    trainable_bytes = FP32_BYTES * cost.trainable_params
    param_traffic = 2 * cost.param_bytes + 2 * trainable_bytes + 2 * trainable_bytes * (1 + _state_tensors(optimizer))
    # a hand-made ModelCost without traced GEMM work: the nominal training FLOPs, untiled
    gemm = cost.gemm_flops_by_width or ((0, cost.train_flops_per_sample),)
    return StepWork(gemm_flops_by_width=tuple((w, f * batch_size) for w, f in gemm),
                    param_traffic_bytes=float(param_traffic),
                    elementwise_bytes=cost.elementwise_bytes_per_sample * batch_size, ops=cost.ops_per_step)


@dataclass(frozen=True)
class StepTime:
    """The terms of :func:`step_time_s`, in seconds; ``total_s`` is their sum."""

    compute_s: float
    param_traffic_s: float
    elementwise_s: float
    ops_s: float
    overhead_s: float

    @property
    def total_s(self) -> float:
        return self.compute_s + self.param_traffic_s + self.elementwise_s + self.ops_s + self.overhead_s


def work_time_terms(work: StepWork, effective_flops: float, memory_bandwidth_bytes_per_s: float,
                    step_overhead_s: float, *, elementwise_efficiency: float = DEFAULT_ELEMENTWISE_EFFICIENCY,
                    op_overhead_s: float = DEFAULT_OP_OVERHEAD_S,
                    gemm_tile_width: int = DEFAULT_GEMM_TILE_WIDTH) -> StepTime:
    """The terms of :func:`step_time_s` for a step's work (what calibration fits against)."""
    if effective_flops <= 0 or memory_bandwidth_bytes_per_s <= 0 or elementwise_efficiency <= 0 or gemm_tile_width < 1:
        raise ValueError("effective_flops, memory_bandwidth_bytes_per_s, elementwise_efficiency and gemm_tile_width "
                         "must be positive")
    return StepTime(
        compute_s=work.tiled_gemm_flops(int(gemm_tile_width)) / effective_flops,
        param_traffic_s=work.param_traffic_bytes / memory_bandwidth_bytes_per_s,
        elementwise_s=work.elementwise_bytes / (memory_bandwidth_bytes_per_s * elementwise_efficiency),
        ops_s=work.ops * op_overhead_s,
        overhead_s=step_overhead_s,
    )


def step_time_terms(cost: ModelCost, batch_size: int, effective_flops: float, memory_bandwidth_bytes_per_s: float,
                    step_overhead_s: float, optimizer: str = "sgd", *,
                    elementwise_efficiency: float = DEFAULT_ELEMENTWISE_EFFICIENCY,
                    op_overhead_s: float = DEFAULT_OP_OVERHEAD_S,
                    gemm_tile_width: int = DEFAULT_GEMM_TILE_WIDTH) -> StepTime:
    """The terms of one training step's time; see :func:`step_time_s`."""
    return work_time_terms(step_work(cost, batch_size, optimizer), effective_flops, memory_bandwidth_bytes_per_s,
                           step_overhead_s, elementwise_efficiency=elementwise_efficiency, op_overhead_s=op_overhead_s,
                           gemm_tile_width=gemm_tile_width)


def step_time_s(cost: ModelCost, batch_size: int, effective_flops: float,
                memory_bandwidth_bytes_per_s: float, step_overhead_s: float, optimizer: str = "sgd", *,
                elementwise_efficiency: float = DEFAULT_ELEMENTWISE_EFFICIENCY,
                op_overhead_s: float = DEFAULT_OP_OVERHEAD_S,
                gemm_tile_width: int = DEFAULT_GEMM_TILE_WIDTH) -> float:
    """Time of one training step, the sum of what its parts cost::

        GEMM FLOPs, widths padded to gemm_tile_width / effective_flops      matmuls and convolutions
        + param_traffic_bytes / bandwidth                                   weights, gradients, optimizer state
        + elementwise_bytes / (bandwidth x elementwise_efficiency)          norms, activations, pooling, loss
        + ops x op_overhead_s + step_overhead_s                             dispatch per op, fixed cost per step

    (:class:`StepWork` defines the workload figures). A sum, not a roofline ``max``: in eager PyTorch
    the ops run one after another, each limited by its own resource, so their times add up.
    ``effective_flops`` = peak x ``training_efficiency`` (x the power mode's clock scale); the
    elementwise efficiency, tile width and the two overheads are the device profile's (fitted by
    ``fleetsim calibrate``). Caches are ignored.
    """
    return step_time_terms(cost, batch_size, effective_flops, memory_bandwidth_bytes_per_s, step_overhead_s,
                           optimizer, elementwise_efficiency=elementwise_efficiency, op_overhead_s=op_overhead_s,
                           gemm_tile_width=gemm_tile_width).total_s


def model_bytes(cost: ModelCost, dtype_bytes: int = FP32_BYTES) -> int:
    """Bytes of a download or upload of the (sub)model's state: elements x dtype size."""
    return int(cost.params * dtype_bytes)
