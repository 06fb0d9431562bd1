"""Cost model: meta-device trace equals real counts, closed forms of memory and step time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from simulator.config.workload import ModelSpec
from simulator.cost.model import (
    BlockCost,
    ModelCost,
    StepWork,
    model_bytes,
    model_cost,
    padded_width,
    step_time_s,
    step_time_terms,
    step_work,
    training_memory_bytes,
)
from simulator.cost.cache import trace
from simulator.cost.meta_trace import _OpCounter
from simulator.errors import InputError
from simulator.learning.models import build_model

torch.set_num_threads(1)

TINY = [
    (ModelSpec(name="resnet", preset="tiny"), (1, 16, 16)),
    (ModelSpec(name="cnn", preset="tiny"), (3, 16, 16)),
    (ModelSpec(name="mlp", preset="tiny"), (1, 8, 8)),
    (ModelSpec(name="vit", preset="tiny"), (1, 16, 16)),
    (ModelSpec(name="text-transformer", preset="tiny"), (32,)),
]


def _real_input(model, n):
    g = torch.Generator().manual_seed(0)
    if model.input_dtype == torch.int64:
        return torch.randint(0, 64, (n, *model.input_shape), generator=g)
    return torch.randn((n, *model.input_shape), generator=g)


def _real_saved_bytes(model, x) -> int:
    """Saved-for-backward bytes on the CPU, parameters excluded, each storage once (by address)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        outs = model(x)
    del outs
    return sum(seen.values())


@pytest.mark.parametrize("spec,shape", TINY, ids=lambda v: getattr(v, "name", ""))
@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_meta_trace_equals_real_device_counts(spec, shape, ratio):
    cost = model_cost(spec, 10, shape, ratio)
    model = build_model(spec, 10, shape, ratio, seed=0)
    assert cost.params == sum(p.numel() for p in model.parameters())
    assert cost.param_bytes == 4 * cost.params == model_bytes(cost)
    x = _real_input(model, 3)
    with FlopCounterMode(display=False) as fc:
        model(x)
    assert cost.fwd_flops_per_sample == pytest.approx(fc.get_total_flops() / 3, rel=1e-9)
    assert cost.activation_bytes_per_sample == pytest.approx(_real_saved_bytes(model, x) / 3, rel=1e-9)
    assert cost.train_flops_per_sample == pytest.approx(3 * cost.fwd_flops_per_sample)


def _real_step_counts(model, x):
    """Elementwise bytes, ops and GEMM FLOPs of one real CPU training step (forward + backward of every
    exit's cross-entropy), counted whole rather than part by part as the meta trace does."""
    counter = _OpCounter(1, [0])
    labels = torch.zeros(x.shape[0], dtype=torch.long)
    with counter:
        outs = model(x)
        loss = sum(torch.nn.functional.cross_entropy(o, labels) for o in outs)
        loss.backward()
    return counter.nbytes[0], counter.ops[0], sum(counter.gemm[0].values())


@pytest.mark.parametrize("spec,shape", TINY, ids=lambda v: getattr(v, "name", ""))
def test_step_work_matches_a_real_training_step(spec, shape):
    """The per-part meta trace sees what a real step dispatches: the same GEMM FLOPs, forward and
    backward, and nearly the same elementwise bytes and ops — the whole-model step adds only the
    gradient accumulation where a block output feeds both the next block and its exit, and the sum
    of the exits' losses."""
    cost = model_cost(spec, 10, shape)
    model = build_model(spec, 10, shape, seed=0)
    x = _real_input(model, 4)
    real_bytes, real_ops, real_gemm = _real_step_counts(model, x)
    assert sum(f for _, f in cost.gemm_flops_by_width) * 4 == pytest.approx(real_gemm, rel=1e-9)
    assert cost.elementwise_bytes_per_sample > 0 and cost.ops_per_step > 0
    assert cost.elementwise_bytes_per_sample * 4 == pytest.approx(real_bytes, rel=0.15)
    assert abs(cost.ops_per_step - real_ops) <= 4 * len(cost.blocks) + 4


def test_elementwise_traffic_scales_with_width_and_gemm_flops_faster():
    """Norms and activations touch each activation a fixed number of times, so their traffic grows
    with the channel count (∝ width) while conv FLOPs grow with channels in × out (∝ width²): the
    reason a step-time model needs both terms."""
    spec = ModelSpec(name="cnn", preset="small")
    full, half = model_cost(spec, 10, (3, 32, 32)), model_cost(spec, 10, (3, 32, 32), 0.5)
    assert half.elementwise_bytes_per_sample / full.elementwise_bytes_per_sample == pytest.approx(0.5, abs=0.02)
    assert half.train_flops_per_sample / full.train_flops_per_sample == pytest.approx(0.25, abs=0.03)
    assert half.ops_per_step == full.ops_per_step  # same graph, narrower tensors


def test_gemm_work_by_width_is_the_forward_flops_and_a_traced_backward():
    """Forward GEMM FLOPs by width sum to FlopCounterMode's forward count; the traced backward is
    exactly twice the forward minus the first layer's input gradient (the data needs none)."""
    spec, shape = ModelSpec(name="mlp", preset="tiny"), (1, 8, 8)
    traced = trace(spec, 10, shape, 1.0)
    parts = [p for t in traced for p in (t.body, t.exit)]
    for p in parts:
        assert sum(f for _, f in p.fwd_gemm) == pytest.approx(p.fwd_flops_per_sample, rel=1e-12)
    model = build_model(spec, 10, shape, seed=0)
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    fwd = sum(p.fwd_flops_per_sample for p in parts)
    bwd = sum(f for p in parts for _, f in p.bwd_gemm)
    assert bwd == pytest.approx(2 * fwd - 2 * first.in_features * first.out_features, rel=1e-12)


def test_gemm_widths_are_the_layers_output_widths():
    """A convolution is filed under its output channels, a classifier under its classes."""
    spec = ModelSpec(name="cnn", preset="small")  # channels 32, 64, 128, 256 at width 1
    widths = {w for w, _ in model_cost(spec, 10, (3, 32, 32)).gemm_flops_by_width}
    assert widths == {32, 64, 128, 256, 10}
    quarter = {w for w, _ in model_cost(spec, 10, (3, 32, 32), 0.25).gemm_flops_by_width}
    assert quarter == {8, 16, 32, 64, 10}


def test_tiled_gemm_flops_closed_form():
    assert [padded_width(w, 16) for w in (0, 1, 12, 16, 17, 40)] == [0, 16, 16, 16, 32, 48]
    work = StepWork(((0, 5.0), (12, 120.0), (32, 64.0)), 0.0, 0.0, 0)
    assert work.gemm_flops == 189.0
    assert work.tiled_gemm_flops(1) == 189.0
    assert work.tiled_gemm_flops(16) == pytest.approx(5.0 + 120.0 * 16 / 12 + 64.0)
    assert work.tiled_gemm_flops(64) == pytest.approx(5.0 + 120.0 * 64 / 12 + 64.0 * 2)
    # width-pruning pays for the padding: a quarter-width ResNet is slower per FLOP on 32-wide tiles
    spec = ModelSpec(name="resnet", preset="small")
    full = step_work(model_cost(spec, 10, (3, 32, 32)), 8)
    quarter = step_work(model_cost(spec, 10, (3, 32, 32), 0.25), 8)
    assert full.tiled_gemm_flops(16) / full.gemm_flops < 1.01
    assert quarter.tiled_gemm_flops(16) / quarter.gemm_flops > 1.5


@pytest.mark.parametrize("spec,shape", TINY, ids=lambda v: getattr(v, "name", ""))
def test_backward_is_about_twice_forward(spec, shape):
    """Justifies train = 3 x forward, measured on a real backward pass of every exit's loss. The
    first layer computes no input gradient, so 3x is an upper bound, tight when the first layer is a
    small share of the model (resnet, transformers) and loose when it dominates (mlp: ~2.2x)."""
    model = build_model(spec, 10, shape, seed=0)
    x = _real_input(model, 4)
    with FlopCounterMode(display=False) as fwd:
        model(x)
    with FlopCounterMode(display=False) as both:
        sum(o.sum() for o in model(x)).backward()
    ratio = both.get_total_flops() / fwd.get_total_flops()
    assert ratio <= 3.0 + 1e-9
    if spec.name in ("resnet", "vit", "text-transformer"):
        assert ratio > 2.95
    else:
        assert ratio > 2.0


def test_cifar_resnet18_matches_reference_figures():
    """CIFAR ResNet-18 (32x32, 10 classes, final exit only): 11.17 M params, 1.111 GFLOP forward,
    ~4.7 MB saved per sample (the reference notes, measured with FlopCounterMode and saved-tensor
    hooks on the usual CIFAR adaptation). GroupNorm has BatchNorm's affine parameters, so the count
    is exact; the per-block exits add 14 150 parameters (7 intermediate 10-class classifiers)."""
    spec = ModelSpec(name="resnet", preset="resnet18-cifar")
    cost = model_cost(spec, 10, (3, 32, 32), exits="final")
    assert cost.params == 11_173_962
    assert cost.fwd_flops_per_sample == pytest.approx(1.111e9, rel=0.01)
    assert cost.activation_bytes_per_sample == pytest.approx(4.7e6, rel=0.03)
    assert model_cost(spec, 10, (3, 32, 32)).params - cost.params == sum(c * 10 + 10 for c in (64, 64, 128, 128, 256, 256, 512))
    half = model_cost(spec, 10, (3, 32, 32), 0.5)
    full = model_cost(spec, 10, (3, 32, 32))
    assert half.params / full.params == pytest.approx(0.25, abs=0.01)
    assert half.fwd_flops_per_sample / full.fwd_flops_per_sample == pytest.approx(0.25, abs=0.01)
    assert half.activation_bytes_per_sample / full.activation_bytes_per_sample == pytest.approx(0.5, abs=0.01)


@pytest.mark.slow
def test_bert_base_planned_without_allocating():
    code = textwrap.dedent("""
        import resource, time
        from simulator.config.workload import ModelSpec
        from simulator.cost.model import model_cost
        import torch.utils.flop_counter, simulator.learning.models  # imports are not the model
        t0 = time.perf_counter()
        model_cost(ModelSpec(name="text-transformer", preset="tiny"), 2, (32,))  # pays the tracer's start-up
        tiny_s = time.perf_counter() - t0
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        c = model_cost(ModelSpec(name="text-transformer", preset="bert-base"), 2, (512,))
        dt = time.perf_counter() - t0
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
        print(c.params, dt, tiny_s, grew, c.fwd_flops_per_sample)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600,
                         env={**os.environ, "FLEETSIM_CACHE_DIR": "off"})
    params, seconds, tiny_s, grew_bytes, fwd = (float(v) for v in out.stdout.split())
    assert params == pytest.approx(110e6, rel=0.05)
    # relative, not absolute: tracing bert-base on the meta device costs a few times the first (tiny)
    # trace, start-up included (measured 0.2× on a loaded 2-core host); computing it for real (~0.7
    # TFLOP at 512 tokens × 2 samples) would take minutes
    assert seconds < 5 * tiny_s + 1.0, f"bert-base {seconds:.1f} s, first tiny trace {tiny_s:.1f} s"
    assert grew_bytes < 150e6  # the weights alone would be 440 MB
    assert fwd > 2 * 85e6 * 512  # at least 2 FLOPs per weight per token in the encoder


def test_depth_and_trainable_from_slice_the_cached_trace():
    spec, shape = TINY[0]
    full = model_cost(spec, 10, shape)
    hits = trace.cache_info().hits
    two = model_cost(spec, 10, shape, depth=2)
    assert trace.cache_info().hits == hits + 1  # traced once
    assert two.blocks == full.blocks[:2] and len(full.blocks) == 3
    assert two.params == sum(b.params for b in full.blocks[:2])
    frozen = model_cost(spec, 10, shape, trainable_from=1)
    b0 = frozen.blocks[0]
    assert b0.train_flops_per_sample == b0.fwd_flops_per_sample and b0.activation_bytes_per_sample == 0
    # a frozen block runs its body forward only (its exit is held but never run): less traffic and
    # fewer ops than when it trains
    traced = trace(spec.resolved(), 10, shape, 1.0)[0]
    body, ex = traced.body, traced.exit
    assert b0.params == body.params + ex.params == full.blocks[0].params
    assert b0.fwd_flops_per_sample == body.fwd_flops_per_sample
    assert b0.elementwise_bytes_per_sample == body.fwd_elementwise_bytes_per_sample
    assert b0.ops == body.fwd_ops < full.blocks[0].ops
    assert full.blocks[0].elementwise_bytes_per_sample == pytest.approx(sum(
        p.fwd_elementwise_bytes_per_sample + p.bwd_elementwise_bytes_per_sample for p in (body, ex)))
    assert full.blocks[0].ops == body.fwd_ops + body.bwd_ops + ex.fwd_ops + ex.bwd_ops
    assert frozen.blocks[1:] == full.blocks[1:]
    assert frozen.elementwise_bytes_per_sample == pytest.approx(
        full.elementwise_bytes_per_sample - full.blocks[0].elementwise_bytes_per_sample + body.fwd_elementwise_bytes_per_sample)
    assert frozen.ops_per_step == full.ops_per_step - full.blocks[0].ops + body.fwd_ops
    assert b0.gemm_flops_by_width == body.fwd_gemm
    assert two.ops_per_step == sum(b.ops for b in full.blocks[:2])
    assert frozen.trainable_params == full.params - full.blocks[0].params
    assert frozen.train_flops_per_sample == pytest.approx(
        full.train_flops_per_sample - full.blocks[0].train_flops_per_sample + body.fwd_flops_per_sample)
    with pytest.raises(InputError):
        model_cost(spec, 10, shape, depth=2, trainable_from=2)
    with pytest.raises(InputError):
        model_cost(spec, 10, shape, depth=4)


def test_user_model_cost():
    spec = ModelSpec(name="torch.nn:Linear", kwargs={"in_features": 8, "out_features": 3})
    c = model_cost(spec, 3, (8,))
    assert c.params == 27 and len(c.blocks) == 1
    assert c.fwd_flops_per_sample == 2 * 8 * 3


def _cost(params=1000, trainable=1000, fwd=1e6, acts=1e4, elementwise=5e4, ops=100, gemm=()) -> ModelCost:
    block = BlockCost(params, fwd, 3 * fwd, acts, elementwise, ops, gemm)
    return ModelCost((block,), params, 4 * params, fwd, 3 * fwd, acts, trainable, 0, elementwise, ops, gemm)


def test_training_memory_closed_form():
    c = _cost()
    assert training_memory_bytes(c, 8, "sgd") == 4000 + 4000 + 8 * 10_000
    assert training_memory_bytes(c, 8, "momentum", 500) == 4000 + 8000 + 80_000 + 500
    assert training_memory_bytes(c, 8, "adam") == 4000 + 12000 + 80_000
    frozen = _cost(trainable=250)
    assert training_memory_bytes(frozen, 1, "adam") == 4000 + 3 * 1000 + 10_000
    with pytest.raises(InputError, match="optimizer"):
        training_memory_bytes(c, 8, "lamb")


def test_step_work_closed_form():
    c = _cost(trainable=250)
    w = step_work(c, 10, "momentum")
    assert w.gemm_flops == 3e6 * 10
    # weights read twice (2 x 4000) + gradients written and read (2 x 1000) + update (2 x 1000 x (1 + 1))
    assert w.param_traffic_bytes == 8000 + 2000 + 4000
    assert w.elementwise_bytes == 5e4 * 10 and w.ops == 100
    assert step_work(c, 10, "adam").param_traffic_bytes == 8000 + 2000 + 6000
    with pytest.raises(InputError, match="optimizer"):
        step_work(c, 10, "lamb")


def test_step_time_is_the_sum_of_its_terms():
    c = _cost()
    # GEMM: 3e6 FLOP/sample x 10 / 1e9 = 30 ms; parameters: (8000 + 8000 + 8000) B / 1e6 B/s = 24 ms;
    # elementwise: 5e5 B / (1e6 B/s x 0.25) = 2 s; ops: 100 x 20 us = 2 ms; step: 5 ms
    terms = step_time_terms(c, 10, 1e9, 1e6, 0.005, elementwise_efficiency=0.25, op_overhead_s=20e-6)
    assert terms.compute_s == pytest.approx(0.030)
    assert terms.param_traffic_s == pytest.approx(0.024)
    assert terms.elementwise_s == pytest.approx(2.0)
    assert terms.ops_s == pytest.approx(0.002)
    assert terms.overhead_s == 0.005
    total = step_time_s(c, 10, 1e9, 1e6, 0.005, elementwise_efficiency=0.25, op_overhead_s=20e-6)
    assert total == pytest.approx(0.030 + 0.024 + 2.0 + 0.002 + 0.005) == terms.total_s
    # momentum adds one state tensor: 2 x 4 x 1000 bytes more parameter traffic
    assert step_time_s(c, 10, 1e9, 1e6, 0.0, "momentum", elementwise_efficiency=1.0, op_overhead_s=0.0) == \
        pytest.approx(0.030 + 0.032 + 0.5)
    # each term is linear in its workload figure: doubling the batch doubles GEMM and elementwise time only
    double = step_time_terms(c, 20, 1e9, 1e6, 0.005, elementwise_efficiency=0.25, op_overhead_s=20e-6)
    assert (double.compute_s, double.elementwise_s) == pytest.approx((0.060, 4.0))
    assert (double.param_traffic_s, double.ops_s, double.overhead_s) == (terms.param_traffic_s, terms.ops_s, 0.005)
    with pytest.raises(ValueError):
        step_time_s(c, 10, 1e9, 1e6, 0.0, elementwise_efficiency=0.0)
    with pytest.raises(ValueError):
        step_time_s(c, 10, 1e9, 1e6, 0.0, gemm_tile_width=0)


def test_step_time_pads_gemm_widths_to_the_tile():
    # 2e6 FLOP/sample at width 24 and 1e6 at width 64; x10 samples at 1 GFLOP/s
    c = _cost(gemm=((24, 2e6), (64, 1e6)), elementwise=0.0, ops=0)
    kwargs = dict(elementwise_efficiency=1.0, op_overhead_s=0.0)
    untiled = step_time_terms(c, 10, 1e9, 1e15, 0.0, gemm_tile_width=1, **kwargs).compute_s
    assert untiled == pytest.approx(0.030)  # the traced GEMM work, not the nominal 3 x forward
    assert step_time_terms(c, 10, 1e9, 1e15, 0.0, gemm_tile_width=32, **kwargs).compute_s == \
        pytest.approx(0.020 * 32 / 24 + 0.010)
    assert step_time_terms(c, 10, 1e9, 1e15, 0.0, gemm_tile_width=128, **kwargs).compute_s == \
        pytest.approx(0.020 * 128 / 24 + 0.010 * 2)


def test_step_time_defaults_are_the_profile_defaults():
    from simulator.config.profiles import DEFAULT_ELEMENTWISE_EFFICIENCY, DEFAULT_GEMM_TILE_WIDTH, DEFAULT_OP_OVERHEAD_S

    c = _cost(gemm=((24, 2e6), (64, 1e6)))
    assert step_time_s(c, 10, 1e9, 1e6, 0.005) == step_time_s(
        c, 10, 1e9, 1e6, 0.005, elementwise_efficiency=DEFAULT_ELEMENTWISE_EFFICIENCY,
        op_overhead_s=DEFAULT_OP_OVERHEAD_S, gemm_tile_width=DEFAULT_GEMM_TILE_WIDTH)


def test_model_bytes():
    c = _cost(params=123)
    assert model_bytes(c) == 492 and model_bytes(c, dtype_bytes=2) == 246
