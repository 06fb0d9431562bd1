"""What happened to the updates and the network: staleness, accepted versus dropped, traffic.

A million updates become a few hundred numbers here: staleness is counted per integer value and
summarised per time bin; outcomes are counted per bin; bytes are spread over their transfer
intervals and summed per bin (binning.py), never drawn point by point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simulator.report.binning import bin_index, spread_amount_per_bin, time_edges
from simulator.report.style import OUTCOME_COLORS, PHASE_COLORS, SERIES_COLORS, fmt_bytes, style

OUTCOMES = ("accepted", "dropped", "lost", "oom", "unfinished")


def _when(updates: pd.DataFrame) -> np.ndarray:
    """Arrival time, or dispatch time for updates that never arrived."""
    arrival = updates["arrival_s"].to_numpy(dtype=float)
    return np.where(np.isfinite(arrival), arrival, updates["dispatch_s"].to_numpy(dtype=float))


def staleness_figure(updates: pd.DataFrame, makespan_s: float) -> go.Figure:
    """Left: histogram of staleness of arrived updates by outcome. Right: mean/p95/max over time."""
    arrived = updates[updates["arrival_s"].notna() & updates["staleness"].notna()]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=["staleness of arrived updates (versions)",
                                        "staleness over simulated time (by arrival)"])
    stale = arrived["staleness"].to_numpy(dtype=float)
    top = int(np.nanmax(stale)) if stale.size else 0
    for outcome in ("accepted", "dropped"):
        s = stale[(arrived["outcome"] == outcome).to_numpy()]
        s = np.clip(np.round(s), 0, None).astype(np.int64)
        counts = np.bincount(s, minlength=top + 1)
        fig.add_trace(go.Bar(x=np.arange(top + 1), y=counts, name=outcome,
                             marker_color=OUTCOME_COLORS[outcome],
                             hovertemplate=f"staleness %{{x}}: %{{y}} {outcome}<extra></extra>"),
                      row=1, col=1)
    edges = time_edges(makespan_s, 100)
    idx = bin_index(arrived["arrival_s"].to_numpy(dtype=float), edges)
    ok = idx >= 0
    grouped = pd.Series(stale[ok]).groupby(idx[ok])
    centres = ((edges[:-1] + edges[1:]) / 2)
    if ok.any():
        stats = pd.DataFrame({"mean": grouped.mean(), "p95": grouped.quantile(0.95),
                              "max": grouped.max()})
        x = centres[stats.index.to_numpy()]
        for i, col in enumerate(("mean", "p95", "max")):
            fig.add_trace(go.Scatter(x=x, y=stats[col].to_numpy(), mode="lines", name=col,
                                     line=dict(color=SERIES_COLORS[[0, 4, 3][i]],
                                               dash=["solid", "dash", "dot"][i])),
                          row=1, col=2)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title="staleness (versions)", row=1, col=1)
    fig.update_yaxes(title="updates", row=1, col=1)
    fig.update_xaxes(title="simulated time (s)", row=1, col=2)
    fig.update_yaxes(title="staleness", row=1, col=2)
    return style(fig, height_px=400)


def outcomes_figure(updates: pd.DataFrame, makespan_s: float) -> go.Figure:
    """Stacked counts per time bin of accepted, dropped, lost, OOM and unfinished updates."""
    edges = time_edges(makespan_s, 60)
    idx = bin_index(_when(updates), edges)
    centres = (edges[:-1] + edges[1:]) / 2
    outcome = updates["outcome"].to_numpy()
    fig = go.Figure()
    for name in OUTCOMES:
        m = (outcome == name) & (idx >= 0)
        if not m.any():
            continue
        counts = np.bincount(idx[m], minlength=len(centres))
        fig.add_trace(go.Bar(x=centres.astype(np.float32), y=counts, name=f"{name} ({int(m.sum()):,})",
                             marker_color=OUTCOME_COLORS[name],
                             hovertemplate=f"%{{y}} {name}<extra></extra>"))
    fig.update_layout(barmode="stack", bargap=0.05)
    fig.update_xaxes(title="simulated time (s) — arrival, or dispatch for updates that never arrived")
    fig.update_yaxes(title="updates per bin")
    return style(fig, height_px=360)


def traffic_figure(events: pd.DataFrame, makespan_s: float) -> go.Figure:
    """Download and upload rate (Mbit/s) over time, bytes spread over each transfer's interval."""
    edges = time_edges(makespan_s)
    centres = (edges[:-1] + edges[1:]) / 2
    width = np.diff(edges)
    fig = go.Figure()
    phases = events["phase"].to_numpy()
    start, end = events["start_s"].to_numpy(float), events["end_s"].to_numpy(float)
    nbytes = events["bytes"].to_numpy(float)
    for phase in ("download", "upload"):
        m = phases == phase  # numpy masks: filtering the whole frame copies every column
        amount = spread_amount_per_bin(start[m], end[m], nbytes[m], edges)
        mbps = amount * 8 / 1e6 / width
        fig.add_trace(go.Scatter(x=centres.astype(np.float32), y=mbps.astype(np.float32),
                                 mode="lines", name=f"{phase} ({fmt_bytes(amount.sum())} in total)",
                                 line=dict(color=PHASE_COLORS[phase], shape="hv"),
                                 hovertemplate="%{y:,.1f} Mbit/s<extra>" + phase + "</extra>"))
    fig.update_xaxes(title="simulated time (s)")
    fig.update_yaxes(title="Mbit/s (mean per bin)", rangemode="tozero")
    return style(fig, height_px=360)
