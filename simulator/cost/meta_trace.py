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

Repeated parts. A part's figures depend only on its module and its input, so for a built-in model a
body or exit repeating an earlier one (ViT-B's 12 identical encoder blocks, a ResNet stage's blocks
after the first) is run once and its figures copied (:class:`_Tracer`): cold planning of ViT-B runs
4 parts per width (stem, blocks 0 and 1, exit 0) instead of 25, with every figure bit-identical to the full trace
(``tests/cost/test_repeated_parts.py``, every preset).

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


# What every nn.Module carries (hook and state dicts); :func:`module_signature` reads the rest.
_MODULE_INTERNALS = frozenset(vars(torch.nn.Module()))
_IGNORED_ATTRS = frozenset({"_fleetsim_axes"})  # pruning metadata (axis names differ per block), never read by forward
_PLAIN = (bool, int, float, str, type(None), torch.dtype, torch.device)


def _plain(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def module_signature(module: torch.nn.Module) -> tuple | None:
    """What a part's trace can depend on in the module itself: every submodule's class, its plain
    attributes (sizes, strides, eps, heads, the training flag ...) and its parameters' and buffers'
    shapes, strides, dtypes and ``requires_grad``. None — never reused — when anything else could
    steer its forward: a hook, or an attribute that is not a plain value (a tensor, a function)."""
    entries: list[tuple] = []
    for name, sub in module.named_modules(remove_duplicate=False):
        attrs = []
        for key, value in sorted(vars(sub).items()):
            if key in _IGNORED_ATTRS or key in ("_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"):
                continue
            if key in _MODULE_INTERNALS and key != "training":
                if value:  # a hook dict with a hook in it
                    return None
                continue
            if not _plain(value):
                return None
            attrs.append((key, value))
        tensors = tuple((n, tuple(t.shape), t.stride(), t.dtype, t.requires_grad)
                        for group in (sub._parameters, sub._buffers) for n, t in group.items() if t is not None)
        entries.append((name, type(sub).__module__, type(sub).__qualname__, tuple(attrs), tensors,
                        tuple(sorted(sub._non_persistent_buffers_set))))
    return tuple(entries)


def _tensor_key(t: torch.Tensor) -> tuple:
    return (tuple(t.shape), t.stride(), t.storage_offset(), t.dtype, t.requires_grad, t.untyped_storage().nbytes())


def _stand_in(shape: tuple, stride: tuple, dtype: torch.dtype, requires_grad: bool) -> torch.Tensor:
    """A new meta tensor a replayed body hands on in place of its output."""
    return torch.empty_strided(shape, stride, dtype=dtype, device="meta").requires_grad_(requires_grad)


def _stand_in_spec(out: torch.Tensor, inp: torch.Tensor) -> tuple | None:
    """How to make a stand-in for a body's output that the next part cannot tell from it (same
    :func:`_tensor_key`: shape, strides, offset, storage size), or None when there is none — the
    output is a view into a larger buffer, or shares its input's storage."""
    if _storage_key(out) == _storage_key(inp):
        return None
    spec = (tuple(out.shape), out.stride(), out.dtype, out.requires_grad)
    return spec if _tensor_key(_stand_in(*spec)) == _tensor_key(out) else None


class _Tracer:
    """One model's trace, slot by slot: slot ``2b`` is block b's body (the stem in slot 0 too), slot
    ``2b + 1`` its exit. Per slot: FLOPs, saved bytes, and the two op counters' ops, bytes, GEMMs.

    Repeated parts. A part's figures depend only on its module (:func:`module_signature`), on its input
    (shape, strides, dtype, ``requires_grad``, and whether an earlier part already saved that storage,
    which then is not counted again) — each part runs on its own graph. So with ``reuse`` a part in a
    slot of its own (not slot 0, where the stem and block 0 add up) whose signature and input match an
    earlier one copies that one's figures instead of running: of ViT-B's and BERT-base's 12 identical
    encoder blocks only blocks 0 and 1 run (block 0's input is the stem's output), of their exits
    only exit 0. The replay hands the next part a new meta tensor like the output and marks it saved
    when the original's output was. A buffer or parameter shared by two modules (whose backward would
    then accumulate into a gradient an earlier part wrote) turns reuse off for the whole model.
    ``tests/cost/test_repeated_parts.py`` checks every built-in preset against a full trace.
    """

    def __init__(self, model: Any, num_classes: int, reuse: bool) -> None:
        from simulator.learning.models import param_block

        self.model, self.num_classes = model, num_classes
        n_slots = 2 * model.depth
        self.params = [0] * n_slots
        for name, tensor in model.state_dict().items():
            self.params[2 * param_block(name) + name.startswith("exits.")] += tensor.numel()
        self.param_storages = {_storage_key(p) for p in model.parameters()}
        tensors = [_storage_key(t) for group in (model.named_parameters(remove_duplicate=False),
                                                 model.named_buffers(remove_duplicate=False)) for _, t in group]
        self.reuse = reuse and len(tensors) == len(set(tensors))  # tensors shared by parts: trace them all
        self.flops = [0.0] * n_slots
        self.saved = [0.0] * n_slots
        self.seen: set[int] = set()
        self.current = [0]
        self.keep_alive: list[torch.Tensor] = []  # storage ids stay unique while traced tensors live
        self.fwd, self.bwd = _OpCounter(n_slots, self.current), _OpCounter(n_slots, self.current)
        self.memo: dict[tuple, tuple[int, tuple | None, bool]] = {}

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in self.param_storages and key not in self.seen:
            self.seen.add(key)
            self.keep_alive.append(t)
            self.saved[self.current[0]] += t.untyped_storage().nbytes()
        return t

    def run(self, slot: int, module: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
        """Trace one part on input ``h`` (reused when it repeats one seen before); the tensor the next
        part reads: a body's output, or ``h`` again after an exit."""
        key = None
        if self.reuse and slot > 0:
            signature = module_signature(module)
            if signature is not None:
                key = (slot % 2, signature, _tensor_key(h), _storage_key(h) in self.seen)
                if key in self.memo:
                    return self._replay(slot, *self.memo[key], h)
        nxt = self._trace(slot, module, h)
        stand_in = None if slot % 2 == 1 or key is None else _stand_in_spec(nxt, h)
        if key is not None and (slot % 2 == 1 or stand_in is not None):
            self.memo[key] = (slot, stand_in, _storage_key(nxt) in self.seen)
        return nxt

    def _trace(self, slot: int, module: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
        self.current[0] = slot
        inp = h.detach().requires_grad_(h.requires_grad)  # its own graph, fed as in the whole model
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t):
            with flop_counter() as counter, self.fwd:
                out = module(inp)
        self.flops[slot] += counter.get_total_flops()
        if slot % 2 == 1:
            with self.fwd:
                root = _loss(out, self.num_classes)
        else:
            root = out
            self.keep_alive.append(out)
        if root.requires_grad:
            seed = torch.ones_like(root)
            with self.bwd:
                root.backward(seed)
        return h if slot % 2 == 1 else out

    def _replay(self, slot: int, source: int, stand_in: tuple | None, saved_after: bool,
                h: torch.Tensor) -> torch.Tensor:
        """Copy slot ``source``'s figures into ``slot`` and leave what the part leaves: for a body, a
        stand-in for its output (saved already if the original was), for an exit its input, marked
        saved if the original exit saved its own."""
        self.flops[slot], self.saved[slot] = self.flops[source], self.saved[source]
        for counter in (self.fwd, self.bwd):
            counter.ops[slot], counter.nbytes[slot] = counter.ops[source], counter.nbytes[source]
            counter.gemm[slot] = dict(counter.gemm[source])
        nxt = h if stand_in is None else _stand_in(*stand_in)
        if saved_after:
            self.seen.add(_storage_key(nxt))
        self.keep_alive.append(nxt)
        return nxt

    def part(self, s: int) -> TracedPart:
        n = TRACE_BATCH

        def per_sample(gemm: dict[int, float]) -> GemmWidths:
            return tuple((w, f / n) for w, f in sorted(gemm.items()))

        fwd, bwd = self.fwd, self.bwd
        return TracedPart(self.params[s], self.flops[s] / n, self.saved[s] / n, fwd.nbytes[s] / n, bwd.nbytes[s] / n,
                          fwd.ops[s], bwd.ops[s], per_sample(fwd.gemm[s]), per_sample(bwd.gemm[s]))


def trace_model(model: Any, num_classes: int, *, reuse: bool = False) -> tuple[Traced, ...]:
    """Trace a block model built on the meta device, part by part (stem, then each block's body and
    exit); ``reuse``: parts repeating an earlier one copy its figures (see :class:`_Tracer`).

    The model must hold no gradients: a backward pass onto an existing ``.grad`` accumulates (an add
    per parameter) where a fresh one only writes, so the figures would not be a training step's. The
    gradients the trace leaves are dropped again, so a model can be traced twice."""
    if any(p.grad is not None for p in model.parameters()):
        raise ValueError("trace_model needs a model without gradients (set each parameter's .grad to None)")
    tracer = _Tracer(model, num_classes, reuse)
    h = model.example_input(TRACE_BATCH, device="meta")
    parts = [(0, model.stem)] + [(s, m) for b in range(model.depth)
                                 for s, m in ((2 * b, model.blocks[b]), (2 * b + 1, model.exits[b]))]
    with torch.enable_grad():
        for slot, module in parts:
            h = tracer.run(slot, module, h)
    for p in model.parameters():
        p.grad = None
    return tuple(Traced(tracer.part(2 * b), tracer.part(2 * b + 1)) for b in range(model.depth))


def trace_on_meta(spec: ModelSpec, num_classes: int, input_shape: tuple[int, ...],
                  width_ratio: float, *, reuse: bool | None = None) -> tuple[Traced, ...]:
    """Build the full-depth model at width on the meta device and trace it (:func:`trace_model`).
    Repeated parts are reused for built-in models (``reuse=None``), whose every preset is checked
    against a full trace; a user's model is traced in full unless ``reuse=True``."""
    from simulator.learning.models import build_model

    with torch.device("meta"):
        model = build_model(spec, num_classes, input_shape, width_ratio)
    return trace_model(model, num_classes, reuse=spec.is_builtin if reuse is None else reuse)
