"""MergeSum's two-pass additions (issue 16) give the bits of the plain per-element definition.

The reference below is the merge as it was written before (and as the paper run's traces were made):
every value converted to float64, multiplied by its weight, added to a float64 sum tensor, and a
float64 count tensor per element, in the order of the contributions. The fast path keeps a count as
one float while contributions cover a whole tensor and multiplies float32 by a float64 weight in one
kernel; any rounding difference (or a count materialised at the wrong value when a width-pruned
contribution follows full ones) shows here as unequal bits.
"""

from __future__ import annotations

import pytest
import torch

from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
from simulator.learning.learner import Learner
from simulator.learning.submodel import (
    MergeSum,
    SubmodelPlan,
    _dim_indices,
    _flat_index,
    block_coverage,
    extract,
    param_block,
)
from simulator.learning.trainer import TrainingSettings


def _reference(global_state, contributions, param_axes, num_blocks, mode, g, lr):
    """The former MergeSum, pass by pass (tensors for sums and counts)."""
    sums: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    plans = []
    for sub, plan, w, share in contributions:
        if w <= 0:
            continue
        m = share if mode == "damped" else w
        plans.append(plan)
        for name, old in global_state.items():
            if name not in sub or not plan.trains(param_block(name)):
                continue
            acc, cnt = sums.setdefault(name, (torch.zeros(old.shape, dtype=torch.float64),
                                              torch.zeros(old.shape, dtype=torch.float64)))
            idx = _dim_indices(old.shape, param_axes.get(name), plan)
            values = sub[name].detach().to(torch.float64)
            if all(i is None for i in idx):
                acc += values * w
                cnt += m
            else:
                flat = _flat_index(old.shape, idx)
                acc.view(-1).index_add_(0, flat, values.reshape(-1) * w)
                cnt.view(-1).index_add_(0, flat, torch.full((flat.numel(),), m, dtype=torch.float64))
    out = {}
    for name, old in global_state.items():
        if name not in sums:
            out[name] = old
            continue
        acc, cnt = sums[name]
        base = old.detach().to(torch.float64)
        covered = cnt > 0
        if mode == "absolute":
            merged = torch.where(covered, (acc + g * base) / (cnt + g).clamp_min(1e-300), base)
        elif mode == "delta":
            merged = base + torch.where(covered, acc / (cnt + g).clamp_min(1e-300), torch.zeros_like(base))
        else:
            merged = base + torch.where(covered, lr * acc / cnt.clamp_min(1e-300), torch.zeros_like(base))
        if not old.is_floating_point():
            merged = merged.round()
        out[name] = merged.to(old.dtype)
    return out, block_coverage(plans, num_blocks)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32 if t.element_size() == 4 else torch.int64)


@pytest.mark.parametrize("mode", ["absolute", "delta", "damped"])
@pytest.mark.parametrize("order", ["full-first", "pruned-first", "full-only"])
def test_fast_sums_have_the_reference_bits(mode: str, order: str) -> None:
    lrn = Learner(ModelSpec(name="cnn", preset="tiny"), DatasetSpec(name="digits", image_size=8),
                  PartitionSpec(kind="iid"), 8, TrainingSettings(batch_size=16, lr=0.05), seed=1)
    gen = torch.Generator().manual_seed(7)
    ratios = {"full-first": (1.0, 1.0, 0.5, 1.0, 0.75, 1.0), "pruned-first": (0.5, 1.0, 0.75, 1.0, 1.0, 0.5),
              "full-only": (1.0,) * 6}[order]
    contributions = []
    for i, ratio in enumerate(ratios):
        depth = lrn.num_blocks if i % 3 else max(1, lrn.num_blocks - 1)  # some clients hold fewer blocks
        plan = lrn.plan(i, 0, depth, ratio)
        if i == 4 and depth > 1:  # one with its first block frozen (not uploaded, not merged)
            plan = SubmodelPlan(plan.depth, plan.width_ratio, plan.keep, trainable_from=1)
        sub = extract(lrn.global_state, plan, lrn.param_axes)
        noisy = {k: (torch.randn(t.shape, generator=gen) * 2.0 ** torch.randint(-24, 6, t.shape, generator=gen)).to(t.dtype)
                 for k, t in sub.items()}
        w = [0.3, 1.7, 0.0, 2.5, 0.123456789, 1e-3][i]  # one zero weight: skipped, not counted
        contributions.append((noisy, plan, w, 5.0 + 3.3 * i))
    g, lr = 0.25, 0.7
    want, want_cover = _reference(lrn.global_state, contributions, lrn.param_axes, lrn.num_blocks, mode, g, lr)
    kw = {"server_lr": lr} if mode == "damped" else {"base_weight": g}
    sums = MergeSum(lrn.global_state, lrn.param_axes, lrn.num_blocks, mode=mode, **kw)
    for sub, plan, w, m in contributions:
        sums.add(sub, plan, w, m if mode == "damped" else None)
    got, cover = sums.result()
    assert cover == want_cover
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert torch.equal(_bits(got[name]), _bits(want[name])), name
    # the partial contributions really exercised the per-element counts (the uniform-count shortcut
    # alone would not have caught a materialisation at the wrong value)
    counts = [c for _, c in sums._sums.values()]
    if order == "full-only":
        assert all(isinstance(c, float) for c in counts)
    else:
        assert any(isinstance(c, torch.Tensor) for c in counts) and any(isinstance(c, float) for c in counts)
