"""Unit choice (static, rolling, importance), depth (fixed, rolling) and magnitude masks."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from simulator.errors import InputError
from simulator.learning.pruning import (
    FixedDepth, ImportanceTracker, ImportanceWidth, Pruner, PruningSettings, RollingDepth, RollingWidth,
    StaticWidth, magnitude_masks,
)
from simulator.learning.submodel import SubmodelPlan, block_coverage

AXES = {"block0.channels": 8, "block1.channels": 16, "block2.channels": 32}


def test_static_keeps_leading_units():
    assert StaticWidth().choose("a", 10, 3, 7, None) == (0, 1, 2)


def test_rolling_window_starts_at_round_mod_size_and_wraps():
    rw = RollingWidth()
    assert rw.choose("a", 8, 3, 0, None) == (0, 1, 2)
    assert rw.choose("a", 8, 3, 6, None) == (0, 6, 7)        # 6, 7, then wraps to 0
    assert rw.choose("a", 8, 3, 8 + 7, None) == (0, 1, 7)
    counts = Counter(u for r in range(8) for u in rw.choose("a", 8, 3, r, None))
    assert counts == {u: 3 for u in range(8)}  # every unit kept equally often over `size` rounds


def scores_for(axis_values: dict[str, list[float]]) -> dict[str, torch.Tensor]:
    return {a: torch.tensor(v) for a, v in axis_values.items()}


def test_importance_picks_the_highest_scored_units():
    tracker = ImportanceTracker({"a": 6}, ema=0.5)
    full = SubmodelPlan(1, 1.0, {"a": tuple(range(6))})
    tracker.update([(scores_for({"a": [0.1, 5.0, 0.3, 4.0, 0.2, 3.0]}), full, 1.0)])
    iw = ImportanceWidth(explore=0.0)
    assert iw.choose("a", 6, 3, 0, tracker) == (1, 3, 5)
    assert iw.choose("a", 6, 2, 9, tracker) == (1, 3)


def test_importance_falls_back_to_static_and_explores_unscored_units():
    tracker = ImportanceTracker({"a": 10}, ema=0.5)
    iw = ImportanceWidth(explore=0.25)
    assert iw.choose("a", 10, 4, 3, tracker) == (0, 1, 2, 3)   # no scores yet: static
    half = SubmodelPlan(1, 0.4, {"a": (0, 1, 2, 3)})
    tracker.update([(scores_for({"a": [1.0, 4.0, 3.0, 2.0]}), half, 1.0)])
    # 4 units: 3 by score (1, 2, 3), 1 exploration slot -> the lowest never-scored unit (4)
    assert iw.choose("a", 10, 4, 0, tracker) == (1, 2, 3, 4)


def test_importance_aggregates_by_weight_and_keeps_a_moving_average():
    tracker = ImportanceTracker({"a": 3}, ema=0.75)
    p01 = SubmodelPlan(1, 0.6, {"a": (0, 1)})
    p12 = SubmodelPlan(1, 0.6, {"a": (1, 2)})
    tracker.update([(scores_for({"a": [2.0, 4.0]}), p01, 1.0), (scores_for({"a": [8.0, 6.0]}), p12, 3.0)])
    s = tracker.score["a"].tolist()
    assert s == pytest.approx([2.0, (4.0 + 3 * 8.0) / 4, 6.0])  # first report: taken as is
    tracker.update([(scores_for({"a": [10.0, 0.0]}), p01, 1.0)])
    assert tracker.score["a"].tolist() == pytest.approx([0.75 * 2 + 0.25 * 10, 0.75 * 7.0, 6.0])
    assert tracker.last["a"].tolist() == [1, 1, 0]


def test_fixed_depth_keeps_first_blocks():
    assert FixedDepth().choose(2, 5, 17) == (2, 0)


def test_rolling_depth_moves_a_window_up_from_the_deepest_blocks():
    rd = RollingDepth()
    seq = [rd.choose(2, 4, r) for r in range(4)]
    assert seq == [(4, 2), (3, 1), (2, 0), (4, 2)]
    assert rd.choose(4, 4, 5) == (4, 0)
    plans = [SubmodelPlan(d, 1.0, trainable_from=f) for d, f in (rd.choose(1, 5, r) for r in range(5))]
    assert block_coverage(plans, 5) == [1, 1, 1, 1, 1]  # every block trained once per cycle


def test_pruner_plans_validate_and_stagger_depth_by_client():
    pr = Pruner(PruningSettings(width="rolling", depth="rolling"), AXES, 3)
    p = pr.plan(client=0, job_index=1, depth=2, width_ratio=0.5)
    assert (p.depth, p.trainable_from) == (2, 0)  # r = 1: one step up from the deepest window
    assert p.keep["block0.channels"] == (1, 2, 3, 4)
    p.validate(AXES, 3)
    q = pr.plan(client=1, job_index=1, depth=2, width_ratio=0.5)
    assert (q.depth, q.trainable_from) == (3, 1)
    explicit = pr.plan(client=1, job_index=1, depth=2, width_ratio=1.0, trainable_from=1)
    assert (explicit.depth, explicit.trainable_from) == (2, 1)
    with pytest.raises(ValueError):
        pr.plan(0, 0, 4, 1.0)


def test_pruner_carries_the_unstructured_sparsity():
    pr = Pruner(PruningSettings(unstructured_sparsity=0.5), AXES, 3)
    plan = pr.plan(0, 0, 3, 1.0)
    assert plan.mask_sparsity == 0.5 and plan.keep["block2.channels"] == tuple(range(32))


def test_magnitude_mask_zeroes_the_smallest_fraction_of_matrices_only():
    w = torch.tensor([[0.5, -0.1, 3.0], [-2.0, 0.05, 1.0]])
    masks = magnitude_masks({"blocks.0.w": w, "blocks.0.b": torch.ones(3), "blocks.1.w": w}, 0.5, min_block=1)
    assert set(masks) == {"blocks.1.w"}
    assert masks["blocks.1.w"].tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
    assert magnitude_masks({"blocks.0.w": w}, 0.0) == {}


def test_unknown_strategies_are_input_errors():
    with pytest.raises(InputError, match="width"):
        PruningSettings(width="magic")
    with pytest.raises(InputError, match="depth"):
        PruningSettings(depth="deep")
