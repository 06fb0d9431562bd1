"""The tracer runs a repeated part once: reusing it changes no figure, for any built-in preset.

Why: cold planning of ViT-B / BERT-base traced all 12 identical encoder blocks and exits at every
width ratio (issue 16 point 4). ``trace_on_meta`` now copies the figures of a part whose module and
input repeat an earlier one's (``simulator.cost.meta_trace._Tracer``). Every planned figure (FLOPs,
bytes, memory, ops, GEMM work, step time) is a pure function of the per-block trace, so a reused
trace equal to the full one, field for field and float for float, leaves every plan unchanged. And
a submodel's cost is the first ``depth`` blocks of the full-depth trace: checked against a trace of
the depth-``d`` model itself.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from simulator.config.workload import PRESETS, ModelSpec
from simulator.cost.meta_trace import trace_model, trace_on_meta
from simulator.learning.models import build_model

IMAGENET = (3, 224, 224)
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "my_block_models.py"
# One cheap width per family in the fast tier (its repeats: ViT/BERT blocks, ResNet stages, MobileNet
# inverted residuals); every preset at every width in the slow one.
FAST = {("vit", "vit-b", 0.55), ("text-transformer", "bert-base", 1.0), ("resnet", "small", 0.55),
        ("mobilenet", "tiny", 0.3), ("mlp", "small", 0.3), ("cnn", "tiny", 1.0)}


def _input_shape(family: str, preset: str) -> tuple[int, ...]:
    """The shape each preset is planned or trained at (ImageNet layouts at 224², proxies at 16²)."""
    if family == "text-transformer":
        return (int(PRESETS[family][preset]["seq_len"]),)
    if family == "mlp":
        return (1, 8, 8)
    if preset in ("resnet18", "resnet34", "resnet50", "vit-b") or preset.startswith("mobilenet-"):
        return IMAGENET
    return (3, 16, 16) if preset == "vit-b-proxy" else (3, 32, 32)


CASES = [pytest.param(family, preset, width, marks=() if (family, preset, width) in FAST else pytest.mark.slow,
                      id=f"{preset}-{family}-w{width}")
         for family, presets in PRESETS.items() for preset in presets for width in (1.0, 0.55, 0.3)]


@pytest.mark.parametrize("family,preset,width", CASES)
def test_reusing_repeated_parts_changes_no_figure(family, preset, width):
    spec = ModelSpec(name=family, preset=preset).resolved()
    shape = _input_shape(family, preset)
    full = trace_on_meta(spec, 10, shape, width, reuse=False)
    reused = trace_on_meta(spec, 10, shape, width, reuse=True)
    assert len(reused) == len(full)
    for b, (got, want) in enumerate(zip(reused, full)):
        assert got == want, f"block {b}"


def _vit_b() -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(ModelSpec(name="vit", preset="vit-b"), 1000, IMAGENET, 1.0)


def _parts_run(model: torch.nn.Module, reuse: bool) -> tuple[list[int], list[int], tuple]:
    """Which blocks' bodies and exits actually ran forward (a global forward hook sees every call
    without adding a hook to any module), and the trace."""
    calls: Counter[int] = Counter()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, _i, _o: calls.update([id(m)]))
    try:
        traced = trace_model(model, 1000, reuse=reuse)
    finally:
        handle.remove()
    return ([b for b, m in enumerate(model.blocks) if calls[id(m)]],
            [b for b, m in enumerate(model.exits) if calls[id(m)]], traced)


def test_vit_b_runs_two_blocks_and_one_exit_and_the_rest_are_copies():
    """Block 0 follows the stem (its input is saved by no earlier part in the same way, and it shares
    slot 0 with the stem), so blocks 0 and 1 run; blocks 2-11 repeat block 1 and exits 1-11 exit 0."""
    model = _vit_b()
    blocks, exits, reused = _parts_run(model, reuse=True)
    assert (blocks, exits) == ([0, 1], [0])
    all_blocks, all_exits, full = _parts_run(model, reuse=False)
    assert (all_blocks, all_exits) == (list(range(12)), list(range(12)))
    assert reused == full


def test_a_block_with_a_hook_is_traced_not_copied():
    """A hook can change what a block computes, so a hooked block runs; the next plain block is a
    copy again, and the figures still equal a full trace."""
    model = _vit_b()
    model.blocks[5].register_forward_hook(lambda _m, _i, out: out * 2)
    blocks, exits, reused = _parts_run(model, reuse=True)
    assert (blocks, exits) == ([0, 1, 5], [0])
    assert reused == _parts_run(model, reuse=False)[2]


def test_a_parameter_shared_by_two_blocks_turns_reuse_off():
    """Block 4 sharing block 1's fc1 would accumulate into the gradient block 1 wrote (an add block 1
    did not pay), so no part is copied."""
    model = _vit_b()
    model.blocks[4].fc1 = model.blocks[1].fc1
    blocks, exits, _ = _parts_run(model, reuse=True)
    assert (blocks, exits) == (list(range(12)), list(range(12)))


def test_a_users_block_model_is_traced_in_full_unless_asked(tmp_path, monkeypatch):
    """Only built-in models (whose every preset this file checks) reuse parts by default: a user's
    builder (the worked example, 4 identical 64-unit blocks) runs every block and exit unless
    ``reuse=True``, which gives the same figures."""
    shutil.copy(EXAMPLE, tmp_path / "my_block_models.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ModelSpec(name="my_block_models:build_mlp", kwargs={"hidden": 64, "blocks": 4})
    calls: Counter[str] = Counter()
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda m, _i, _o: calls.update([type(m).__name__]))
    try:
        default = trace_on_meta(spec, 10, (1, 8, 8), 1.0)
        assert (calls["Dense"], calls["Exit"]) == (4, 4)
        reused = trace_on_meta(spec, 10, (1, 8, 8), 1.0, reuse=True)
        assert (calls["Dense"], calls["Exit"]) == (4 + 2, 4 + 1)
    finally:
        handle.remove()
    assert reused == default


@pytest.mark.parametrize("family,preset,depth", [
    ("vit", "vit-b", 5), ("text-transformer", "bert-base", 1),
    pytest.param("resnet", "resnet34", 7, marks=pytest.mark.slow),
    pytest.param("mobilenet", "mobilenet-v3-small", 4, marks=pytest.mark.slow)])
def test_a_submodels_trace_is_the_first_blocks_of_the_full_depth_trace(family, preset, depth):
    """Depth is additive: the planner prices depth d from the full-depth trace's first d blocks, and
    tracing the depth-d model itself (its own exits, nothing after) gives exactly those."""
    spec = ModelSpec(name=family, preset=preset).resolved()
    shape = _input_shape(family, preset)
    full = trace_on_meta(spec, 10, shape, 0.55, reuse=False)
    with torch.device("meta"):
        shallow = build_model(spec, 10, shape, 0.55, depth)
    assert trace_model(shallow, 10) == full[:depth]
    assert trace_model(shallow, 10, reuse=True) == full[:depth]
