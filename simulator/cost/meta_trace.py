"""Tracing a model on the meta device: what each block of one training step computes and moves.

A model is built once per (spec, num_classes, input_shape, width_ratio) on PyTorch's meta device
(shapes only, no storage: tracing a 110 M-parameter model allocates nothing). Its stem, blocks and exits
are run one by one on a batch of two meta samples, each part on its own autograd graph fed like the
whole model would feed it, under

- ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add): forward FLOPs;
- ``torch.autograd.graph.saved_tensors_hooks``: what autograd keeps for the backward pass. Tensors
  sharing storage with a parameter (weights, their transposes) are excluded and each storage is
  counted once, in the first part that saved it;
- :class:`_OpCounter`, forward and then the part's backward pass (an exit's from the cross-entropy the
  trainer uses): the ops dispatched, the GEMM work by output width, and the bytes other ops move.

GEMM work. Ops FlopCounterMode has a formula for (matmul, convolution, attention and their backward)
are GEMMs; their FLOPs are recorded by the GEMM's *output width* (a convolution's output channels, a
matmul's output columns), because a device computes output features in tiles and a layer narrower
than a tile (or not a multiple of it) pays for the whole tile: that is why a width-pruned layer is
slower per FLOP (:func:`simulator.cost.model.step_time_s` pads the widths to the device's tile). The
backward is traced rather than taken as 2 x forward: the first layer computes no input gradient.

Grouped and depthwise convolutions. torch's own formula for ``convolution_backward`` (2.13) computes
the weight gradient as a convolution of the input with the output gradient *without* dividing by
the groups, so a depthwise 3x3 conv's backward counts ``channels + 1`` times its forward (257x at 256
channels) where 2x is right. :data:`FLOP_FORMULAS` replaces it with :func:`conv_backward_flop`: input
gradient as torch counts it (a transposed convolution with the same weight: the forward's MACs),
weight gradient = the forward's MACs too (each output element times each of its ``Cin/g · k²`` inputs
once), so a trained conv's backward is exactly 2x its forward, whatever the groups. Both counters
here (FLOPs and GEMM work) use it. A *depthwise* convolution (one input channel per group,
:func:`is_depthwise`) is counted in the FLOPs but not as GEMM work: at ~2 FLOPs per byte it is
bound by memory on every device, so its forward and backward are elementwise traffic (the bytes of
their inputs and outputs) like a norm's.

Exits. Each block's exit is traced as its own part, so the cost model can count every exit (a
multi-exit model, as depth pruning and self-distillation train it) or only the deepest retained one
(the single-exit model FedAvg-style algorithms train: :func:`simulator.cost.model.model_cost` ``exits``).

Elementwise traffic. Every other op that moves data — normalisation, activation functions, softmax,
pooling, residual adds, copies, the loss and all their backward ops — costs time by the bytes it reads
and writes, not by arithmetic. The counter sums the bytes of their tensor inputs and outputs (views
move nothing and are skipped). Parameter-sized tensors these ops touch (norm weights and their
gradients) are counted as if per sample: a few channels' worth of floats, negligible next to
activations.

Per-sample figures are the batch-of-two totals halved; op counts are per step. The figures' types are
:mod:`simulator.cost.traced`'s; :func:`simulator.cost.cache.trace` keeps them in memory and on disk
and calls :func:`trace_on_meta` only on a miss, so a warm cache never imports this module (nor torch).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode, flop_registry, shape_wrapper

from simulator.config.workload import ModelSpec
from simulator.cost.traced import GemmWidths, Traced, TracedPart

TRACE_BATCH = 2


def conv_backward_flop(grad_out_shape: Any, x_shape: Any, w_shape: Any, _bias: Any, _stride: Any, _padding: Any,
                       _dilation: Any, transposed: bool, _output_padding: Any, _groups: Any, output_mask: Any,
                       out_shape: Any, **kwargs: Any) -> int:
    """FLOPs of ``aten.convolution_backward`` for any ``groups`` (2 per multiply-add).

    Input gradient: a (transposed) convolution of the output gradient with the same weight, counted
    as torch does. Weight gradient: every weight element meets every output position it touched
    once per sample, i.e. the forward's multiply-adds — :func:`conv_flop_count` of the forward
    shapes, whose weight shape ``[Cout, Cin/g, k, k]`` already carries the groups (torch's own
    formula multiplies the full ``Cin`` instead and over-counts grouped convs ``g`` times).
    """
    from torch.utils.flop_counter import conv_flop_count

    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(list(grad_out_shape), list(w_shape), list(out_shape[0]), not transposed)
    if output_mask[1]:
        flops += conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return flops


# FlopCounterMode's formulas with the grouped-convolution backward fixed (see the module docstring).
FLOP_FORMULAS = {**flop_registry, torch.ops.aten.convolution_backward: shape_wrapper(conv_backward_flop)}


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode counting grouped/depthwise convolution backward correctly."""
    return FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flop})


# Ops that return a view in practice although their schema does not say so (``matmul`` reshapes
# through ``_unsafe_view``); like every view they move no data.
_NO_DATA = {torch.ops.aten._unsafe_view, torch.ops.aten.detach, torch.ops.aten.alias}
_CONV = {torch.ops.aten.convolution, torch.ops.aten.convolution_backward}


def is_depthwise(packet: Any, args: tuple) -> bool:
    """A convolution (or its backward) with one input channel per group: k² multiply-adds per output
    element, about 2 FLOPs per byte moved in fp32, below the ridge point of every device profiled
    (FLOP/s ÷ bandwidth ≥ 6), so its time is its traffic, not its arithmetic."""
    if packet not in _CONV:
        return False
    weight, groups = (args[1], args[8]) if packet is torch.ops.aten.convolution else (args[2], args[9])
    return int(groups) > 1 and int(weight.shape[1]) == 1


def _gemm_width(packet: Any, args: tuple, out: Any) -> int:
    """The output width a GEMM is tiled along: a convolution's output channels (forward and backward
    alike: the layer's width), a matmul's output columns; 0 (never padded) for anything else."""
    if packet in _CONV:
        weight = args[1] if packet is torch.ops.aten.convolution else args[2]
        return int(weight.shape[0])
    first = out[0] if isinstance(out, (tuple, list)) else out
    if isinstance(first, torch.Tensor) and first.dim() >= 2:
        return int(first.shape[-1])
    return 0


class _OpCounter(TorchDispatchMode):
    """Per slot ``block[0]``: ops dispatched, GEMM FLOPs by output width, bytes non-GEMM ops move."""

    def __init__(self, n_blocks: int, block: list[int]) -> None:
        super().__init__()
        self.block = block
        self.ops = [0] * n_blocks
        self.nbytes = [0.0] * n_blocks
        self.gemm: list[dict[int, float]] = [{} for _ in range(n_blocks)]

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if func.is_view or packet in _NO_DATA:
            return out
        b = self.block[0]
        self.ops[b] += 1
        if packet in FLOP_FORMULAS and not is_depthwise(packet, args):
            flops = float(FLOP_FORMULAS[packet](*args, **kwargs, out_val=out))
            width = _gemm_width(packet, args, out)
            self.gemm[b][width] = self.gemm[b].get(width, 0.0) + flops
        else:
            tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
            self.nbytes[b] += sum(t.numel() * t.element_size() for t in tensors)
        return out


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


def _loss(out: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The trainer's per-exit loss (cross-entropy against meta labels) when the exit gives logits;
    a plain sum for a user model whose output is something else."""
    if out.dim() == 2 and out.shape[1] == num_classes and out.is_floating_point():
        labels = torch.zeros(out.shape[0], dtype=torch.long, device=out.device)
        return torch.nn.functional.cross_entropy(out, labels)
    return out.sum()


def trace_on_meta(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...],
                  width_ratio: float) -> tuple[Traced, ...]:
    """Trace the full-depth model part by part: slot ``2b`` is block b's body (the stem in slot 0),
    slot ``2b + 1`` its exit."""
    from simulator.learning.models import build_model, param_block

    with torch.device("meta"):
        model = build_model(spec, num_classes, input_shape, width_ratio)
    n_blocks = model.depth
    n_slots = 2 * n_blocks
    params = [0] * n_slots
    for name, tensor in model.state_dict().items():
        params[2 * param_block(name) + name.startswith("exits.")] += tensor.numel()
    param_storages = {_storage_key(p) for p in model.parameters()}
    flops = [0.0] * n_slots
    saved = [0.0] * n_slots
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

    fwd, bwd = _OpCounter(n_slots, current), _OpCounter(n_slots, current)
    h = model.example_input(TRACE_BATCH, device="meta")
    parts = [(0, model.stem)] + [(s, m) for b in range(n_blocks)
                                 for s, m in ((2 * b, model.blocks[b]), (2 * b + 1, model.exits[b]))]
    with torch.enable_grad():
        for slot, module in parts:
            current[0] = slot
            is_exit = slot % 2 == 1
            inp = h.detach().requires_grad_(h.requires_grad)  # its own graph, fed as in the whole model
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                with flop_counter() as counter, fwd:
                    out = module(inp)
            flops[slot] += counter.get_total_flops()
            if is_exit:
                with fwd:
                    root = _loss(out, num_classes)
            else:
                root = out
                keep_alive.append(out)
                h = out
            if root.requires_grad:
                seed = torch.ones_like(root)
                with bwd:
                    root.backward(seed)
    n = TRACE_BATCH

    def part(s: int) -> TracedPart:
        def per_sample(gemm: dict[int, float]) -> GemmWidths:
            return tuple((w, f / n) for w, f in sorted(gemm.items()))

        return TracedPart(params[s], flops[s] / n, saved[s] / n, fwd.nbytes[s] / n, bwd.nbytes[s] / n, fwd.ops[s],
                          bwd.ops[s], per_sample(fwd.gemm[s]), per_sample(bwd.gemm[s]))

    return tuple(Traced(part(2 * b), part(2 * b + 1)) for b in range(n_blocks))
