"""Paired comparisons and rank stability for docs/results.md (used by scripts/paper_page.py).

Every method runs the same scenario with the same seeds, and a seed fixes the fleet's latencies, the
data partition and the model's initialisation, so a run of Co-S²P and a run of a baseline with one
seed are a *pair*. The difference within a pair cancels what the seed decides, which a mean ± std per
method leaves in: two methods whose seed-stds overlap can still differ consistently seed by seed.

- :func:`paired_differences`: per baseline, the differences d_s = m(ours, s) − m(baseline, s) over the
  seeds both have (a metric missing in one run, e.g. a target never reached, drops that pair), their
  mean and a two-sided 95 % Student-t confidence interval ``mean ± t_{0.975, n−1} · sd / √n``. The
  interval excluding 0 is what the page calls a difference; n = 1 gives no interval.
- :func:`kendall_tau`: the rank correlation of the methods' mean metric under two proxies (or tasks):
  τ-b over the methods both have (``scipy.stats.kendalltau``, which handles ties); 1 = same order,
  0 = unrelated, −1 = reversed. With n methods a single swapped pair costs 2/(n(n−1)/2).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a Student-t confidence interval of the mean; NaN bounds for n < 2."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_differences(rows: Iterable[dict[str, Any]], metric: str, ours: str, by: str = "label",
                       level: float = 0.95) -> pd.DataFrame:
    """Per other label: n pairs, mean of (ours − other) by seed, and its confidence interval."""
    frame = pd.DataFrame(list(rows))
    if frame.empty or metric not in frame:
        return pd.DataFrame(columns=["other", "n", "mean", "low", "high"])
    table = frame.pivot_table(index="seed", columns=by, values=metric, aggfunc="first")
    out = []
    for other in dict.fromkeys(frame[by]):
        if other == ours or ours not in table or other not in table:
            continue
        d = (table[ours] - table[other]).dropna().to_numpy()
        mean, low, high = t_interval(d, level)
        out.append({"other": other, "n": int(len(d)), "mean": mean, "low": low, "high": high})
    return pd.DataFrame(out, columns=["other", "n", "mean", "low", "high"])


def verdict(low: float, high: float, higher_is_better: bool = True) -> str:
    """'better' / 'worse' when the interval excludes 0 (from our side), else 'no difference shown'."""
    if math.isnan(low) or math.isnan(high):
        return "too few pairs"
    if low > 0:
        return "better" if higher_is_better else "worse"
    if high < 0:
        return "worse" if higher_is_better else "better"
    return "no difference shown"


def kendall_tau(a: pd.DataFrame, b: pd.DataFrame, metric: str, by: str = "label") -> tuple[float, int]:
    """τ-b of the methods' ``<metric>_mean`` in two aggregate tables, over the labels both hold; and
    how many labels that is. NaN when fewer than 3 are shared (too few to rank)."""
    column = f"{metric}_mean"
    left = a.set_index(by)[column].dropna()
    right = b.set_index(by)[column].dropna()
    common = [label for label in left.index if label in right.index]
    if len(common) < 3:
        return math.nan, len(common)
    from scipy import stats

    tau = stats.kendalltau(left[common].to_numpy(), right[common].to_numpy()).statistic
    return float(tau), len(common)


def ranking(agg: pd.DataFrame, metric: str, by: str = "label") -> list[str]:
    """Labels from best to worst by the mean of `metric` (higher first), NaN last."""
    column = f"{metric}_mean"
    return list(agg.sort_values(column, ascending=False, na_position="last", kind="stable")[by])
