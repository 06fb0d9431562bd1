"""Analytic cost of training a (sub)model: parameters, FLOPs and activation memory per block, and
from those the step time and training memory on a device.

Tracing. A model is built once per (spec, num_classes, input_shape, width_ratio) on PyTorch's meta
device (shapes only, no storage: planning a 110 M-parameter model allocates nothing) and its stem,
blocks and exits are run one by one on a batch of two meta samples under
``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add) and
``torch.autograd.graph.saved_tensors_hooks``. Saved tensors are what autograd keeps for the backward
pass; those sharing storage with a parameter (weights, their transposes) are excluded and each storage
is counted once, in the first part that saved it. Per-sample figures are the batch-of-two totals
halved. Depth and ``trainable_from`` are then applied to the cached per-block figures, so a depth
sweep costs one trace.

Training FLOPs. Backward costs about twice the forward (one GEMM for input gradients, one for weight
gradients, each as large as the forward GEMM), so a trained block costs 3x its forward; this is the
ratio FlopCounterMode measures on a real backward pass of these models (checked in
tests/test_cost.py, and 3.00 on ResNet-18 in the reference notes). Tracing forward only is cheaper and
gives per-block figures directly. A frozen block (before ``trainable_from``) costs its forward only,
saves no activations and holds no gradients or optimizer state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from simulator.config.workload import ModelSpec
from simulator.errors import InputError

FP32_BYTES = 4
_TRACE_BATCH = 2
# Optimizer state per trainable parameter, in parameter-sized tensors.
OPTIMIZER_STATE_TENSORS = {"sgd": 0, "momentum": 1, "adam": 2}


@dataclass(frozen=True)
class BlockCost:
    params: int
    fwd_flops_per_sample: float
    train_flops_per_sample: float
    activation_bytes_per_sample: float


@dataclass(frozen=True)
class ModelCost:
    """Totals over the retained depth; ``blocks[0]`` includes the stem, each block its exit.

    ``params`` counts state-dict elements (parameters and any buffers, which only user models have);
    ``trainable_params`` those in blocks at or after ``trainable_from``.
    """

    blocks: tuple[BlockCost, ...]
    params: int
    param_bytes: int
    fwd_flops_per_sample: float
    train_flops_per_sample: float
    activation_bytes_per_sample: float
    trainable_params: int = 0
    trainable_from: int = 0


@dataclass(frozen=True)
class _Traced:
    params: int
    fwd_flops_per_sample: float
    activation_bytes_per_sample: float


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


@lru_cache(maxsize=512)
def _trace(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...], width_ratio: float) -> tuple[_Traced, ...]:
    """Per-block (params, forward FLOPs, saved bytes) per sample of the full-depth model at width;
    from the on-disk cache of :mod:`simulator.cost_cache` when this machine traced it before."""
    from simulator import cost_cache

    key = cost_cache.cache_key(spec, num_classes, input_shape, width_ratio)
    cached = cost_cache.load(key)
    if cached is not None:
        try:
            return tuple(_Traced(int(r["params"]), float(r["fwd_flops_per_sample"]),
                                 float(r["activation_bytes_per_sample"])) for r in cached)
        except (KeyError, TypeError, ValueError):
            pass  # a damaged entry: trace again and overwrite it
    traced = _trace_on_meta(spec, num_classes, input_shape, width_ratio)
    cost_cache.store(key, [vars(t) for t in traced])
    return traced


def _trace_on_meta(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...],
                   width_ratio: float) -> tuple[_Traced, ...]:
    from simulator.learning.models import build_model, param_block

    with torch.device("meta"):
        model = build_model(spec, num_classes, input_shape, width_ratio)
    n_blocks = model.depth
    params = [0] * n_blocks
    for name, tensor in model.state_dict().items():
        params[param_block(name)] += tensor.numel()
    param_storages = {_storage_key(p) for p in model.parameters()}
    flops = [0.0] * n_blocks
    saved = [0.0] * n_blocks
    seen: set[int] = set()
    current = [0]
    keep_alive: list[torch.Tensor] = []  # storage ids stay unique while traced tensors live

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in param_storages and key not in seen:
            seen.add(key)
            keep_alive.append(t)
            saved[current[0]] += t.untyped_storage().nbytes()
        return t

    x = model.example_input(_TRACE_BATCH, device="meta")
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        parts = [(0, model.stem)] + [(b, m) for b in range(n_blocks) for m in (model.blocks[b], model.exits[b])]
        h = x
        for b, module in parts:
            current[0] = b
            with FlopCounterMode(display=False) as counter:
                out = module(h)
            flops[b] += counter.get_total_flops()
            if module is not model.exits[b]:
                h = out
    return tuple(_Traced(params[b], flops[b] / _TRACE_BATCH, saved[b] / _TRACE_BATCH) for b in range(n_blocks))


def model_cost(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...] | list[int],
               width_ratio: float = 1.0, depth: int | None = None, trainable_from: int = 0) -> ModelCost:
    """Cost of the submodel (width_ratio, first `depth` blocks), blocks before `trainable_from` frozen."""
    traced = _trace(spec.resolved(), int(num_classes), tuple(int(s) for s in input_shape), float(width_ratio))
    d = len(traced) if depth is None else int(depth)
    if not 1 <= d <= len(traced):
        raise InputError("depth out of range", field="depth", value=depth, accepted=f"1..{len(traced)}")
    if not 0 <= trainable_from < d:
        raise InputError("trainable_from out of range", field="trainable_from", value=trainable_from,
                         accepted=f"0..{d - 1} (at least the last retained block trains)")
    blocks = tuple(
        BlockCost(
            params=t.params,
            fwd_flops_per_sample=t.fwd_flops_per_sample,
            train_flops_per_sample=t.fwd_flops_per_sample * (3.0 if b >= trainable_from else 1.0),
            activation_bytes_per_sample=t.activation_bytes_per_sample if b >= trainable_from else 0.0,
        )
        for b, t in enumerate(traced[:d])
    )
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


def step_time_s(cost: ModelCost, batch_size: int, effective_flops: float,
                memory_bandwidth_bytes_per_s: float, step_overhead_s: float, optimizer: str = "sgd") -> float:
    """Roofline time of one training step: ``max(compute, memory) + step_overhead_s``.

    compute = ``train_flops_per_sample * batch_size / effective_flops`` (effective = peak x
    utilisation, from the device profile). Memory traffic per step, in bytes:
    weights read in forward and in backward (``2 * param_bytes``); gradients written in backward and
    read by the optimizer (``2 * 4 * trainable``); the update reads and writes weights and optimizer
    state (``2 * 4 * trainable * (1 + s)``); saved activations written in forward and read in backward
    (``2 * activation_bytes_per_sample * batch_size``). Caches are ignored (an upper bound on traffic
    that only matters for small, memory-bound models).
    """
    if effective_flops <= 0 or memory_bandwidth_bytes_per_s <= 0:
        raise ValueError("effective_flops and memory_bandwidth_bytes_per_s must be positive")
    compute_s = cost.train_flops_per_sample * batch_size / effective_flops
    trainable_bytes = FP32_BYTES * cost.trainable_params
    traffic = (2 * cost.param_bytes + 2 * trainable_bytes + 2 * trainable_bytes * (1 + _state_tensors(optimizer))
               + 2 * cost.activation_bytes_per_sample * batch_size)
    return max(compute_s, traffic / memory_bandwidth_bytes_per_s) + step_overhead_s


def model_bytes(cost: ModelCost, dtype_bytes: int = FP32_BYTES) -> int:
    """Bytes of a download or upload of the (sub)model's state: elements x dtype size."""
    return int(cost.params * dtype_bytes)
