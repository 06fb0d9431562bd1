"""The built-in policies' shared maths (simulator.server.policies.aggregate) held to its formulas,
with no server and no SimPy: what a weight is, what is dropped, which merge a staleness mode asks for."""

from __future__ import annotations

import math

import pytest

from simulator.server.policies.aggregate import merge_arguments, mixing_weight, too_stale, weigh
from simulator.server.staleness import Hinge, Polynomial


def test_weights_are_samples_times_staleness_factor_and_stale_updates_are_dropped_in_order() -> None:
    fn = Polynomial(a=0.5)
    kept, dropped = weigh(["a", "b", "c", "d"], [0, 3, 9, 1], [10, 20, 30, 40], fn, max_staleness=8)
    assert kept == [("a", 10.0), ("b", 20 * 4 ** -0.5), ("d", 40 * 2 ** -0.5)]
    assert dropped == [("c", "staleness 9 > max_staleness 8")]
    kept_all, none = weigh(["c"], [9], [30], fn, max_staleness=None)
    assert kept_all == [("c", 30 * 10 ** -0.5)] and none == []


def test_the_bound_is_inclusive() -> None:
    assert too_stale(8, 8) is None
    assert too_stale(9, 8) == "staleness 9 > max_staleness 8"
    assert too_stale(10 ** 6, None) is None


def test_a_mismatched_length_is_an_error_not_a_silent_truncation() -> None:
    with pytest.raises(ValueError):
        weigh(["a", "b"], [0], [1, 2], Polynomial(), None)


@pytest.mark.parametrize("lr", [1.0, 0.5, 0.1])
def test_relative_merge_makes_the_step_lr_times_the_weighted_mean(lr: float) -> None:
    weights = [3.0, 1.5, 0.5]
    mode, g = merge_arguments(weights, lr, "relative")
    assert mode == "delta"
    # θ + Σ wΔ / (g + Σ w) is θ + lr · (Σ wΔ / Σ w): the ratio Σw / (g + Σw) is lr
    assert math.isclose(sum(weights) / (g + sum(weights)), lr, rel_tol=1e-12)


def test_absolute_merge_is_the_damped_one_with_the_server_lr() -> None:
    assert merge_arguments([1.0, 2.0], 0.25, "absolute") == ("damped", 0.25)


def test_fedasync_mixing_weight_is_alpha_times_staleness_factor() -> None:
    hinge = Hinge(a=10.0, b=4.0)
    assert mixing_weight(0.6, hinge, 4) == 0.6
    assert math.isclose(mixing_weight(0.6, hinge, 6), 0.6 / 21.0)
