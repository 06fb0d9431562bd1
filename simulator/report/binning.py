"""Spread interval quantities over time bins, in O((n + bins) log n) with no Python loop per row.

A 10,000-device run has millions of phases; looping over them to fill bins would take minutes. The
trick: the overlap of all intervals with [0, t) is

    F(t) = Σ_{s_i < t} w_i (t − s_i) − Σ_{e_i < t} w_i (t − e_i)

(each interval contributes its elapsed part, minus what lies beyond its end), which two sorted
cumulative sums evaluate at every bin edge at once. The amount in a bin is F(right) − F(left).
"""

from __future__ import annotations

import numpy as np

DEFAULT_BINS = 160


def time_edges(end_s: float, bins: int = DEFAULT_BINS) -> np.ndarray:
    """`bins` equal bins over [0, end_s] (a unit span when the run has no length)."""
    end = float(end_s) if end_s and np.isfinite(end_s) and end_s > 0 else 1.0
    return np.linspace(0.0, end, int(bins) + 1)


def _elapsed(points: np.ndarray, weights: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Σ_{p_i < t} w_i (t − p_i) at every edge t."""
    order = np.argsort(points, kind="stable")
    p = points[order]
    w = weights[order]
    cum_w = np.concatenate([[0.0], np.cumsum(w)])
    cum_wp = np.concatenate([[0.0], np.cumsum(w * p)])
    k = np.searchsorted(p, edges, side="left")  # number of points strictly below each edge
    return edges * cum_w[k] - cum_wp[k]


def overlap_per_bin(start_s: np.ndarray, end_s: np.ndarray, edges: np.ndarray,
                    weight: np.ndarray | None = None) -> np.ndarray:
    """Σ_i weight_i · |[start_i, end_i) ∩ bin| for every bin (seconds when weight is 1)."""
    s = np.asarray(start_s, dtype=np.float64)
    e = np.asarray(end_s, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(e) & (e > s)
    s, e = s[ok], e[ok]
    w = np.ones_like(s) if weight is None else np.asarray(weight, dtype=np.float64)[ok]
    if s.size == 0:
        return np.zeros(len(edges) - 1)
    edges = np.asarray(edges, dtype=np.float64)
    total = _elapsed(s, w, edges) - _elapsed(e, w, edges)
    return np.diff(total)


def spread_amount_per_bin(start_s: np.ndarray, end_s: np.ndarray, amount: np.ndarray,
                          edges: np.ndarray) -> np.ndarray:
    """Spread each interval's `amount` (e.g. bytes) uniformly over it and sum per bin.

    Zero-length intervals put their whole amount in the bin of their start, so nothing is lost.
    Amounts outside [edges[0], edges[-1]] are dropped.
    """
    s = np.asarray(start_s, dtype=np.float64)
    e = np.asarray(end_s, dtype=np.float64)
    a = np.nan_to_num(np.asarray(amount, dtype=np.float64))
    dur = e - s
    positive = np.isfinite(dur) & (dur > 0)
    out = overlap_per_bin(s[positive], e[positive], edges, a[positive] / dur[positive])
    point = np.isfinite(s) & ~positive & (a != 0)
    if point.any():
        idx = np.searchsorted(edges, s[point], side="right") - 1
        inside = (idx >= 0) & (idx < len(edges) - 1)
        out += np.bincount(idx[inside], weights=a[point][inside], minlength=len(edges) - 1)
    return out


def bin_index(times_s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each time (the last bin is closed on the right); −1 if outside or NaN."""
    t = np.asarray(times_s, dtype=np.float64)
    idx = np.searchsorted(edges, t, side="right") - 1
    idx = np.where(t == edges[-1], len(edges) - 2, idx)
    bad = ~np.isfinite(t) | (idx < 0) | (idx >= len(edges) - 1)
    return np.where(bad, -1, idx)
