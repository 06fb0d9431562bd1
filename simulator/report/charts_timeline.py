"""The fleet timeline (one lane per device, coloured by phase) and per-profile phase shares over time.

Size and speed: a phase is a line segment, and all segments of one phase go into ONE trace as
(start, end, gap) triples — never one shape or one bar per phase, which would be millions of SVG
nodes at 10,000 devices. Times are float32 and lanes int16, which plotly writes as base64 typed
arrays (≈18 bytes per segment). Above a few thousand segments the traces switch to WebGL
(Scattergl). Idle is drawn as a full-length light lane beneath the phases, so every gap between
phases within the run's wall time reads as idle without a trace of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simulator.report.binning import overlap_per_bin, time_edges
from simulator.report.sampling import LaneSample
from simulator.report.style import PHASE_COLORS, style

SEGMENT_PHASES = ("download", "compute", "upload", "offline", "oom")
GL_ABOVE_SEGMENTS = 4_000


def _segments(start: np.ndarray, end: np.ndarray, lane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) arrays drawing one horizontal segment per row, separated by NaN gaps."""
    n = len(start)
    x = np.empty(3 * n, dtype=np.float32)
    x[0::3], x[1::3], x[2::3] = start, end, np.nan
    y = np.repeat(lane.astype(np.int16), 3)
    return x, y


def timeline_figure(events: pd.DataFrame, lanes: LaneSample, makespan_s: float) -> go.Figure:
    """Zoomable lanes: idle background, then download/compute/upload/offline segments, OOM marks."""
    lane_devices = lanes.devices["device"].to_numpy()
    n_lanes = len(lane_devices)
    lane_of = pd.Series(np.arange(n_lanes), index=lane_devices)
    ev = events[events["device"].isin(lane_devices)]
    lane = lane_of.reindex(ev["device"].to_numpy()).to_numpy()
    use_gl = len(ev) > GL_ABOVE_SEGMENTS
    Trace = go.Scattergl if use_gl else go.Scatter
    lane_px = 16 if n_lanes <= 40 else 8
    width_px = max(2.0, lane_px * 0.7)
    fig = go.Figure()

    all_lanes = np.arange(n_lanes)
    x, y = _segments(np.zeros(n_lanes), np.full(n_lanes, makespan_s), all_lanes)
    fig.add_trace(Trace(x=x, y=y, mode="lines", name="idle", hoverinfo="skip",
                        line=dict(color=PHASE_COLORS["idle"], width=width_px)))
    for phase in SEGMENT_PHASES:
        mask = (ev["phase"] == phase).to_numpy()
        start = ev["start_s"].to_numpy()[mask]
        end = ev["end_s"].to_numpy()[mask]
        if phase == "oom":
            # An OOM is (nearly) instantaneous: a cross is visible at any zoom, a segment is not.
            fig.add_trace(Trace(x=start.astype(np.float32), y=lane[mask].astype(np.int16),
                                mode="markers", name="OOM",
                                marker=dict(symbol="x", size=max(6, lane_px * 0.8),
                                            color=PHASE_COLORS["oom"]),
                                hovertemplate="OOM at %{x:.1f} s<extra></extra>"))
            continue
        x, y = _segments(start, end, lane[mask])
        fig.add_trace(Trace(x=x, y=y, mode="lines", name=phase,
                            line=dict(color=PHASE_COLORS[phase], width=width_px),
                            hovertemplate=f"{phase} %{{x:.1f}} s<extra></extra>"))

    names = lanes.devices["device_name"].astype(str).tolist()
    profiles = lanes.devices["profile"].astype(str).to_numpy()
    boundaries = [i for i in range(1, n_lanes) if profiles[i] != profiles[i - 1]]
    for b in boundaries:
        fig.add_hline(y=b - 0.5, line=dict(color="#888", width=1, dash="dot"))
    starts = [0] + boundaries
    ends = boundaries + [n_lanes]
    for s, e in zip(starts, ends):
        if n_lanes:
            fig.add_annotation(x=1.0, xref="paper", xanchor="left", y=(s + e - 1) / 2, yref="y",
                               text=str(profiles[s]), showarrow=False, font=dict(size=10),
                               textangle=0)
    fig.update_yaxes(tickmode="array", tickvals=list(range(n_lanes)), ticktext=names,
                     range=[n_lanes - 0.5, -0.5], showgrid=False, zeroline=False,
                     tickfont=dict(size=9 if n_lanes > 40 else 11), title=None)
    fig.update_xaxes(title="simulated time (s)", range=[0, max(makespan_s, 1e-9)])
    fig.update_layout(margin=dict(r=160), hovermode="closest")
    return style(fig, height_px=min(2400, 140 + lane_px * max(n_lanes, 1)))


def phase_share_figure(events: pd.DataFrame, devices: pd.DataFrame, makespan_s: float) -> go.Figure:
    """Per profile, the share of its devices in each phase over time (all devices, binned)."""
    edges = time_edges(makespan_s)
    width = np.diff(edges)
    centres = (edges[:-1] + edges[1:]) / 2
    profiles = sorted(devices["profile"].astype(str).unique())
    fig = make_subplots(rows=max(1, len(profiles)), cols=1, shared_xaxes=True,
                        vertical_spacing=0.04 if len(profiles) > 1 else 0.1,
                        subplot_titles=[f"{p} ({int((devices['profile'] == p).sum())} devices)"
                                        for p in profiles] or [""])
    series = {"compute": ("compute",), "communication": ("download", "upload"),
              "offline": ("offline",)}
    colors = {"compute": PHASE_COLORS["compute"], "communication": PHASE_COLORS["download"],
              "offline": PHASE_COLORS["offline"], "idle": "#C9C9C9"}
    # integer codes once: comparing millions of strings per profile and phase is the slow part
    prof_code, prof_names = pd.factorize(events["profile"].astype(str))
    phase_code, phase_names = pd.factorize(events["phase"].astype(str))
    phase_index = {str(name): i for i, name in enumerate(phase_names)}
    start = events["start_s"].to_numpy(dtype=float)
    end = events["end_s"].to_numpy(dtype=float)
    for row, profile in enumerate(profiles, start=1):
        n_dev = max(1, int((devices["profile"] == profile).sum()))
        hits = np.flatnonzero(np.asarray(prof_names) == profile)
        in_prof = prof_code == (hits[0] if hits.size else -2)
        shares: dict[str, np.ndarray] = {}
        for label, phases in series.items():
            codes = [phase_index[p] for p in phases if p in phase_index]
            m = in_prof & np.isin(phase_code, codes)
            shares[label] = overlap_per_bin(start[m], end[m], edges) / (n_dev * width)
        shares["idle"] = np.clip(1.0 - sum(shares.values()), 0.0, 1.0)
        for label, share in shares.items():
            fig.add_trace(go.Scatter(x=centres.astype(np.float32),
                                     y=(100 * share).astype(np.float32), name=label,
                                     stackgroup=f"p{row}", mode="lines",
                                     line=dict(width=0.5, color=colors[label]),
                                     fillcolor=colors[label], legendgroup=label,
                                     showlegend=row == 1,
                                     hovertemplate=f"{label} %{{y:.0f}} %<extra>{profile}</extra>"),
                          row=row, col=1)
        fig.update_yaxes(range=[0, 100], title="% of devices", row=row, col=1)
    fig.update_xaxes(title="simulated time (s)", row=max(1, len(profiles)), col=1)
    return style(fig, height_px=120 + 170 * max(1, len(profiles)))
