"""What the server learned: accuracy and loss (against time and version), per-block coverage.

Runs with asynchronous aggregation can have a version per update — hundreds of thousands at fleet
scale — so coverage is averaged into time bins before it becomes a heatmap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simulator.report.binning import bin_index, time_edges
from simulator.report.style import SERIES_COLORS, style

MAX_EVAL_POINTS = 2_000
MAX_COVERAGE_COLUMNS = 300


def thin_rows(df: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Every k-th row (keeping the last) so at most ~`limit` points are drawn."""
    if len(df) <= limit:
        return df
    keep = np.unique(np.append(np.linspace(0, len(df) - 1, limit).round().astype(int), len(df) - 1))
    return df.iloc[keep]


def accuracy_figure(evals: pd.DataFrame, target: float | None,
                    time_to_target_s: float | None) -> go.Figure:
    """2×2: accuracy and loss against simulated time and against version, with the target line."""
    ev = thin_rows(evals.sort_values(["time_s", "version"], kind="stable"), MAX_EVAL_POINTS)
    fig = make_subplots(rows=2, cols=2, shared_xaxes="columns", vertical_spacing=0.1,
                        horizontal_spacing=0.08,
                        subplot_titles=["accuracy against simulated time", "accuracy against version",
                                        "loss against simulated time", "loss against version"])
    for col, x_name in ((1, "time_s"), (2, "version")):
        x = ev[x_name].to_numpy(dtype=float)
        fig.add_trace(go.Scatter(x=x, y=ev["accuracy"].to_numpy(dtype=float), mode="lines+markers",
                                 name="accuracy", marker=dict(size=4), showlegend=col == 1,
                                 line=dict(color=SERIES_COLORS[0]), legendgroup="acc"),
                      row=1, col=col)
        fig.add_trace(go.Scatter(x=x, y=ev["loss"].to_numpy(dtype=float), mode="lines+markers",
                                 name="loss", marker=dict(size=4), showlegend=col == 1,
                                 line=dict(color=SERIES_COLORS[1]), legendgroup="loss"),
                      row=2, col=col)
        if target is not None:
            fig.add_hline(y=target, line=dict(color="#E45756", dash="dash", width=1.5), row=1,
                          col=col, annotation_text=f"target {target:.3g}",
                          annotation_position="bottom right")
    if time_to_target_s is not None:
        fig.add_vline(x=time_to_target_s, line=dict(color="#E45756", dash="dot", width=1),
                      row=1, col=1)
    fig.update_xaxes(title="simulated time (s)", row=2, col=1)
    fig.update_xaxes(title="version", row=2, col=2)
    fig.update_yaxes(title="accuracy", row=1, col=1)
    fig.update_yaxes(title="loss", row=2, col=1)
    return style(fig, height_px=560)


def coverage_matrix(versions: pd.DataFrame) -> np.ndarray:
    """versions × blocks array of clients covering each block (NaN where a list is shorter)."""
    lists = [np.asarray(v, dtype=float).ravel() if v is not None else np.empty(0)
             for v in versions["block_coverage"]]
    width = max((len(v) for v in lists), default=0)
    out = np.full((len(lists), width), np.nan)
    for i, v in enumerate(lists):
        out[i, :len(v)] = v
    return out


def coverage_figure(versions: pd.DataFrame, makespan_s: float) -> go.Figure | None:
    """Heatmap: x simulated time, y block, colour = clients whose update covered the block.

    None when no version recorded coverage (nothing to draw).
    """
    v = versions.sort_values("time_s", kind="stable")
    matrix = coverage_matrix(v)
    if matrix.size == 0:
        return None
    times = v["time_s"].to_numpy(dtype=float)
    binned = len(v) > MAX_COVERAGE_COLUMNS
    if binned:
        edges = time_edges(max(makespan_s, float(np.nanmax(times))), MAX_COVERAGE_COLUMNS)
        idx = bin_index(times, edges)
        ok = idx >= 0
        frame = pd.DataFrame(matrix[ok]).groupby(idx[ok]).mean()
        times = ((edges[:-1] + edges[1:]) / 2)[frame.index.to_numpy()]
        matrix = frame.to_numpy()
    fig = go.Figure(go.Heatmap(
        x=times.astype(np.float32), y=np.arange(matrix.shape[1]), z=matrix.T.astype(np.float32),
        colorscale="Viridis", colorbar=dict(title=dict(text="clients")),
        hovertemplate="t %{x:.0f} s, block %{y}: %{z:.1f} clients<extra></extra>"))
    fig.update_xaxes(title="simulated time (s)" + (" (mean per time bin)" if binned else ""))
    fig.update_yaxes(title="block", dtick=1)
    return style(fig, height_px=160 + 26 * max(4, matrix.shape[1]))
