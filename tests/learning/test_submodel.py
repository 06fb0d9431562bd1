"""extract / merge: slicing agrees with the model families, merging is coverage-masked averaging."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from simulator.config.workload import ModelSpec
from simulator.learning.models.base import AxisRef, scaled_units
from simulator.learning.models.registry import build_model
from simulator.learning.submodel import (
    SubmodelPlan, block_coverage, extract, merge, param_block, state_bytes, sub_shape,
)

CNN = ModelSpec(name="cnn", preset="tiny")
MLP = ModelSpec(name="mlp", preset="tiny")
VIT = ModelSpec(name="vit", preset="tiny")
RESNET = ModelSpec(name="resnet", preset="tiny")


def model(spec, ratio=1.0, depth=None, seed=0):
    return build_model(spec, 10, (1, 8, 8), ratio, depth, seed=seed)


def rolling_plan(m, ratio, depth, start, trainable_from=0):
    keep = {}
    for axis, size in m.width_axes().items():
        n = scaled_units(size, ratio)
        keep[axis] = tuple(sorted((start + i) % size for i in range(n)))
    return SubmodelPlan(depth, ratio, keep, trainable_from)


def random_like(state, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) for k, v in state.items()}


def test_param_block_reads_name_prefix():
    assert param_block("stem.conv.weight") == 0
    assert param_block("blocks.3.conv1.weight") == 3
    assert param_block("exits.11.fc.bias") == 11
    with pytest.raises(ValueError):
        param_block("head.weight")
    with pytest.raises(ValueError):
        param_block("blocks.x.weight")


@pytest.mark.parametrize("spec", [CNN, MLP, VIT, RESNET])
@pytest.mark.parametrize("ratio,depth,start", [(1.0, None, 0), (0.5, 2, 0), (0.5, 1, 3), (0.25, 2, 5)])
def test_extract_matches_the_family_submodel_shapes(spec, ratio, depth, start):
    full = model(spec)
    d = depth or full.full_depth
    plan = rolling_plan(full, ratio, d, start).validate(full.width_axes(), full.full_depth)
    sub = extract(full.state_dict(), plan, full.param_axes())
    ref = model(spec, ratio, d).state_dict()
    assert list(sub) == list(ref)
    for k in ref:
        assert sub[k].shape == ref[k].shape, k
        assert sub_shape(full.state_dict()[k].shape, full.param_axes()[k], plan) == tuple(ref[k].shape)
    # a submodel built by the family loads the extracted state as is
    model(spec, ratio, d).load_state_dict(sub, strict=True)


def test_extract_slices_whole_units_of_unit_size():
    full = model(VIT)
    state = full.state_dict()
    keep = {a: tuple(range(n)) for a, n in full.width_axes().items()}
    keep["block0.heads"] = (1,)
    plan = SubmodelPlan(2, 0.5, keep)
    # only one axis pruned: pass the ratio check by building the plan without validate()
    sub = extract(state, plan, full.param_axes())
    hd = 16
    assert torch.equal(sub["blocks.0.q.weight"], state["blocks.0.q.weight"][hd:2 * hd])
    assert torch.equal(sub["blocks.0.o.weight"], state["blocks.0.o.weight"][:, hd:2 * hd])
    assert torch.equal(sub["blocks.1.q.weight"], state["blocks.1.q.weight"])


def test_extract_copies_and_drops_deep_blocks():
    full = model(CNN)
    state = full.state_dict()
    plan = SubmodelPlan.full(full.width_axes(), depth=2)
    sub = extract(state, plan, full.param_axes())
    assert {param_block(k) for k in sub} == {0, 1}
    for k, v in sub.items():
        assert torch.equal(v, state[k]) and v.data_ptr() != state[k].data_ptr()


@pytest.mark.parametrize("spec", [CNN, VIT, RESNET])
def test_full_client_of_weight_one_is_the_identity(spec):
    full = model(spec)
    state = full.state_dict()
    client = random_like(state, 1)
    plan = SubmodelPlan.full(full.width_axes(), full.full_depth)
    new, cover = merge(state, [(extract(client, plan, full.param_axes()), plan, 1.0)], full.param_axes(),
                       full.full_depth)
    assert cover == [1] * full.full_depth
    for k in state:
        assert torch.equal(new[k], client[k]), k
    # and extracting the global model then merging it back changes nothing
    same, _ = merge(state, [(extract(state, plan, full.param_axes()), plan, 1.0)], full.param_axes(), full.full_depth)
    assert all(torch.equal(same[k], state[k]) for k in state)


def test_disjoint_submodels_change_only_their_elements():
    full = model(MLP)
    state = full.state_dict()
    before = {k: v.clone() for k, v in state.items()}
    axes = full.param_axes()
    pa = rolling_plan(full, 0.25, 2, 0)    # units 0..7
    pb = rolling_plan(full, 0.25, 2, 16)   # units 16..23
    a = extract(random_like(state, 1), pa, axes)
    b = extract(random_like(state, 2), pb, axes)
    new, cover = merge(state, [(a, pa, 3.0), (b, pb, 1.0)], axes, 2)
    assert cover == [2, 2]
    w = new["blocks.1.fc.weight"]  # [32 out (block1.units), 32 in (block0.units)]
    assert torch.equal(w[0:8, 0:8], a["blocks.1.fc.weight"])
    assert torch.equal(w[16:24, 16:24], b["blocks.1.fc.weight"])
    untouched = torch.ones(32, 32, dtype=torch.bool)
    untouched[0:8, 0:8] = False
    untouched[16:24, 16:24] = False
    assert torch.equal(w[untouched], before["blocks.1.fc.weight"][untouched])
    # exit bias (no axis) is covered by both: weighted mean
    want = ((3 * a["exits.0.fc.bias"].double() + b["exits.0.fc.bias"].double()) / 4).float()
    assert torch.equal(new["exits.0.fc.bias"], want)
    # the old global state was not written
    assert all(torch.equal(state[k], before[k]) for k in state)


def test_overlapping_elements_get_the_weighted_mean():
    full = model(CNN)
    state, axes = full.state_dict(), full.param_axes()
    plan = SubmodelPlan.full(full.width_axes(), 3)
    half = rolling_plan(full, 0.5, 3, 0)
    c1, c2, c3 = random_like(state, 1), random_like(state, 2), random_like(state, 3)
    new, _ = merge(state, [(c1, plan, 1.0), (c2, plan, 2.5), (extract(c3, half, axes), half, 0.5)], axes, 3)
    k = "blocks.1.conv.weight"  # [16 out, 8 in, 3, 3]; half keeps out 0..7, in 0..3
    mean3 = (c1[k].double() + 2.5 * c2[k].double() + 0.5 * c3[k].double()) / 4.0
    mean2 = (c1[k].double() + 2.5 * c2[k].double()) / 3.5
    assert torch.equal(new[k][:8, :4], mean3[:8, :4].float())
    assert torch.equal(new[k][8:], mean2[8:].float())
    assert torch.equal(new[k][:8, 4:], mean2[:8, 4:].float())


def naive_merge(old, contribs):
    """Per-element reference: loops over every element of a small 2-d tensor."""
    out = old.clone()
    for i, j in itertools.product(range(old.shape[0]), range(old.shape[1])):
        num = den = 0.0
        for sub, rows, cols, w in contribs:
            if i in rows and j in cols:
                num += w * float(sub[rows.index(i), cols.index(j)])
                den += w
        if den > 0:
            out[i, j] = num / den
    return out


def test_merge_agrees_with_a_per_element_loop_on_random_cases():
    rng = np.random.default_rng(0)
    axes = {"blocks.0.w": (AxisRef("a", 2), AxisRef("b", 1))}  # 3 units of 2 rows, 5 columns
    old = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    for _ in range(20):
        contribs, subs = [], []
        for _c in range(int(rng.integers(1, 4))):
            ka = tuple(sorted(rng.choice(3, int(rng.integers(1, 4)), replace=False).tolist()))
            kb = tuple(sorted(rng.choice(5, int(rng.integers(1, 6)), replace=False).tolist()))
            plan = SubmodelPlan(1, 1.0, {"a": ka, "b": kb})
            rows = [2 * u + e for u in ka for e in range(2)]
            sub = torch.randn(len(rows), len(kb), dtype=torch.float64).float()
            w = float(rng.uniform(0.1, 3))
            subs.append(({"blocks.0.w": sub}, plan, w))
            contribs.append((sub, rows, list(kb), w))
        new, _ = merge({"blocks.0.w": old}, subs, axes, 1)
        assert torch.allclose(new["blocks.0.w"], naive_merge(old, contribs), atol=1e-6)


def test_coverage_counts_trained_blocks_only():
    plans = [SubmodelPlan(3, 1.0), SubmodelPlan(2, 1.0), SubmodelPlan(3, 1.0, trainable_from=2),
             SubmodelPlan(1, 1.0)]
    assert block_coverage(plans, 4) == [3, 2, 2, 0]


def test_frozen_and_zero_weight_contributions_change_nothing():
    full = model(CNN)
    state, axes = full.state_dict(), full.param_axes()
    frozen = SubmodelPlan.full(full.width_axes(), 3, trainable_from=2)
    client = random_like(state, 7)
    new, cover = merge(state, [(client, frozen, 1.0), (random_like(state, 8), SubmodelPlan.full(full.width_axes(), 3), 0.0)],
                       axes, 3)
    assert cover == [0, 0, 1]
    for k in state:
        if param_block(k) < 2:
            assert new[k] is state[k]  # untouched entries are shared, never copied or written
        else:
            assert torch.equal(new[k], client[k])


def test_absolute_mixing_and_delta_modes():
    full = model(MLP)
    state, axes = full.state_dict(), full.param_axes()
    plan = SubmodelPlan.full(full.width_axes(), 2)
    client = random_like(state, 3)
    k = "blocks.0.fc.weight"
    # FedAsync: x <- (1-a) x + a x_i with a = 0.25
    mixed, _ = merge(state, [(client, plan, 0.25)], axes, 2, base_weight=0.75)
    want = ((0.75 * state[k].double() + 0.25 * client[k].double()) / 1.0).float()
    assert torch.allclose(mixed[k], want, atol=1e-7)
    # delta: θ + Σ w Δ / (g + Σ w)
    delta = {n: torch.full_like(v, 2.0) for n, v in state.items()}
    moved, _ = merge(state, [(delta, plan, 1.0)], axes, 2, mode="delta", base_weight=1.0)
    assert torch.allclose(moved[k], state[k] + 1.0)
    # a narrow delta only moves its own units
    half = rolling_plan(full, 0.5, 2, 0)
    small = extract(delta, half, axes)
    moved, _ = merge(state, [(small, half, 2.0)], axes, 2, mode="delta")
    assert torch.allclose(moved[k][:16], state[k][:16] + 2.0)
    assert torch.equal(moved[k][16:], state[k][16:])


def test_bad_inputs_are_refused():
    full = model(MLP)
    state, axes = full.state_dict(), full.param_axes()
    plan = SubmodelPlan.full(full.width_axes(), 2)
    with pytest.raises(ValueError):
        merge(state, [(state, plan, -1.0)], axes, 2)
    with pytest.raises(ValueError):
        merge(state, [(state, rolling_plan(full, 0.5, 2, 0), 1.0)], axes, 2)  # full tensors, half plan
    with pytest.raises(ValueError):
        SubmodelPlan(2, 1.0, trainable_from=2)
    with pytest.raises(ValueError):
        rolling_plan(full, 0.5, 2, 0).validate({"block0.units": 32}, 2)  # unknown axis in keep
    with pytest.raises(ValueError):
        SubmodelPlan(2, 0.5, {"block0.units": (0, 1)}).validate(full.width_axes(), 2)  # wrong count


def test_state_bytes_counts_the_sliced_float32_elements():
    full = model(MLP)
    state, axes = full.state_dict(), full.param_axes()
    plan = rolling_plan(full, 0.5, 2, 0)
    sub = extract(state, plan, axes)
    assert state_bytes(state, plan, axes) == 4 * sum(v.numel() for v in sub.values())
    frozen = rolling_plan(full, 0.5, 2, 0, trainable_from=1)
    assert state_bytes(state, frozen, axes, trainable_only=True) == 4 * sum(
        v.numel() for k, v in sub.items() if param_block(k) == 1)


# ------------------------------------------------------------------ staleness damping (issue 15)


def _buffer(state, plans_weights, value=1.0):
    """Delta contributions of `value` everywhere, one per (plan, n, s): weight n·s, norm weight n."""
    axes_state = {n: torch.full_like(v, value) for n, v in state.items()}
    return [(axes_state, plan, n * s) for plan, n, s in plans_weights], [n for _, n, _ in plans_weights]


@pytest.mark.parametrize("s", [1.0, 0.5, 1 / 3 ** 0.5])
def test_a_uniformly_stale_buffer_moves_the_model_less_than_a_fresh_one(s):
    """Absolute (FedBuff) damping: a buffer of updates all staleness-weighted by s moves the model by
    η·s·Δ; relative weighting normalises s away and moves it by η·Δ whatever the staleness."""
    full = model(MLP)
    state, axes = full.state_dict(), full.param_axes()
    plan = SubmodelPlan.full(full.width_axes(), 2)
    contribs, norms = _buffer(state, [(plan, 40.0, s), (plan, 24.0, s), (plan, 64.0, s)], value=2.0)
    damped, _ = merge(state, contribs, axes, 2, mode="damped", norm_weights=norms, server_lr=0.5)
    relative, _ = merge(state, contribs, axes, 2, mode="delta")
    for k in state:
        assert torch.allclose(damped[k].double() - state[k].double(), torch.full_like(state[k].double(), 0.5 * s * 2.0),
                              atol=1e-6)
        assert torch.allclose(relative[k], state[k] + 2.0, atol=1e-6)  # the relative rule's full step
    fresh, _ = merge(state, _buffer(state, [(plan, 40.0, 1.0)] * 3, 2.0)[0], axes, 2, mode="damped",
                     norm_weights=[40.0] * 3, server_lr=0.5)
    k = "blocks.0.fc.weight"
    if s < 1:
        assert (damped[k] - state[k]).abs().max() < (fresh[k] - state[k]).abs().min()


def test_an_element_covered_only_by_stale_clients_moves_by_at_most_its_staleness_weight():
    """A fresh narrow client (units 0..15) and a stale full one (s = 0.25): the units only the stale
    client trains move by exactly η·s·Δ under damping — under relative weighting they took its whole Δ."""
    full = model(MLP)
    state, axes = full.state_dict(), full.param_axes()
    wide = SubmodelPlan.full(full.width_axes(), 2)
    narrow = rolling_plan(full, 0.5, 2, 0)
    d_wide = {n: torch.full_like(v, 4.0) for n, v in state.items()}
    d_narrow = extract({n: torch.full_like(v, 1.0) for n, v in state.items()}, narrow, axes)
    contribs = [(d_narrow, narrow, 10.0 * 1.0), (d_wide, wide, 30.0 * 0.25)]
    eta = 0.8
    damped, _ = merge(state, contribs, axes, 2, mode="damped", norm_weights=[10.0, 30.0], server_lr=eta)
    relative, _ = merge(state, contribs, axes, 2, mode="delta")
    k = "blocks.1.fc.weight"  # [32 out, 32 in]: narrow keeps [0:16, 0:16]
    only_stale = torch.ones(32, 32, dtype=torch.bool)
    only_stale[:16, :16] = False
    moved = (damped[k].double() - state[k].double())[only_stale]
    assert torch.allclose(moved, torch.full_like(moved, eta * 0.25 * 4.0), atol=1e-6)
    assert torch.allclose((relative[k] - state[k])[only_stale], torch.full_like(moved, 4.0).float(), atol=1e-5)
    # shared elements: η · (10·1·1 + 30·0.25·4) / (10 + 30)
    shared = damped[k][:16, :16].double() - state[k][:16, :16].double()
    assert torch.allclose(shared, torch.full_like(shared, eta * (10.0 + 30.0) / 40.0), atol=1e-6)


def test_damped_merges_need_their_norm_weights():
    full = model(MLP)
    state, axes = full.state_dict(), full.param_axes()
    plan = SubmodelPlan.full(full.width_axes(), 2)
    with pytest.raises(ValueError):
        merge(state, [(state, plan, 1.0)], axes, 2, mode="damped")
    with pytest.raises(ValueError):
        merge(state, [(state, plan, 1.0)], axes, 2, mode="damped", norm_weights=[0.0])
    with pytest.raises(ValueError):
        merge(state, [(state, plan, 1.0)], axes, 2, mode="damped", norm_weights=[1.0], server_lr=-1.0)
