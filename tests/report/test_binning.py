"""Binning must conserve time and bytes exactly: the charts' areas are the traces' totals."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.report.binning import (bin_index, overlap_per_bin, spread_amount_per_bin,
                                      time_edges)


def brute_overlap(s, e, edges, w):
    out = np.zeros(len(edges) - 1)
    for si, ei, wi in zip(s, e, w):
        for b in range(len(edges) - 1):
            out[b] += wi * max(0.0, min(ei, edges[b + 1]) - max(si, edges[b]))
    return out


def test_overlap_closed_form():
    edges = np.array([0.0, 10.0, 20.0, 30.0])
    got = overlap_per_bin(np.array([5.0, 0.0, 25.0]), np.array([15.0, 30.0, 26.0]), edges)
    # [5,15) gives 5+5; [0,30) gives 10 per bin; [25,26) gives 1 in the last bin
    assert np.allclose(got, [15.0, 15.0, 11.0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 105), st.floats(0, 40), st.floats(0, 3)), max_size=30),
       st.integers(1, 12))
def test_overlap_matches_brute_force(rows, bins):
    s = np.array([r[0] for r in rows], dtype=float)
    e = s + np.array([r[1] for r in rows], dtype=float)
    w = np.array([r[2] for r in rows], dtype=float)
    edges = time_edges(100.0, bins)
    assert np.allclose(overlap_per_bin(s, e, edges, w), brute_overlap(s, e, edges, w), atol=1e-6)


def test_spread_conserves_amount_inside_the_span():
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 90, 500)
    e = s + rng.uniform(0, 10, 500)
    e[:50] = s[:50]  # zero-length transfers keep their bytes too
    amount = rng.integers(1, 10**9, 500).astype(float)
    got = spread_amount_per_bin(s, e, amount, time_edges(100.0, 37))
    assert np.isclose(got.sum(), amount.sum(), rtol=1e-9)
    assert (got >= -1e-6).all()


def test_bin_index_edges_and_nan():
    edges = time_edges(10.0, 5)
    idx = bin_index(np.array([0.0, 1.99, 2.0, 10.0, 10.5, -1.0, np.nan]), edges)
    assert idx.tolist() == [0, 0, 1, 4, -1, -1, -1]
