"""The fleet over time: per-group lanes aggregated over time bins (readable for a 2-hour run of 10,000
devices), and a window of per-device lanes that follows the overview's zoom.

- `group_lanes_figure`: one band per scenario group, the share of its devices computing,
  communicating, offline and idle in each time bin (all devices, binning.py: O(phases)); a range
  slider under it chooses the window; fault windows are shaded.
- `device_lanes_figure`: one lane per sampled device (sampling.py), coloured by phase, opening on a
  window of a few rounds (`default_window`) — the whole run drawn at once is a barcode. The page
  keeps it in step with the overview (`SYNC_JS`).

Size and speed of the device lanes: a phase is a line segment, and all segments of one phase go into
ONE trace as (start, end, gap) triples — never one shape or one bar per phase, which would be millions
of SVG nodes at 10,000 devices. Times are float32 and lanes int16, which plotly writes as base64 typed
arrays (≈18 bytes per segment). Above a few thousand segments the traces switch to WebGL
(Scattergl). Idle is drawn as a full-length light lane beneath the phases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simulator.report.binning import overlap_per_bin, time_edges
from simulator.report.sampling import LaneSample
from simulator.report.style import PHASE_COLORS, SHARE_COLORS, style

SEGMENT_PHASES = ("download", "compute", "upload", "offline", "oom")
GL_ABOVE_SEGMENTS = 4_000
GROUP_BINS = 240
FAULT_COLOR = "rgba(228, 87, 86, 0.16)"
WINDOW_ROUNDS = 12  # the device lanes open on about this many median round trips

# Keeps the device lanes' x range equal to the overview's: zoom, pan or the range slider on the
# overview (any of its matched x axes) moves the lanes; a reset (double-click) goes back to the
# lanes' own opening window. `{plot_id}` is the device-lanes div (plotly's post_script placeholder).
SYNC_JS = """
var src = document.getElementById('chart-timeline'), dst = document.getElementById('{plot_id}');
if (src && src.on && dst) {
  var initial = dst.layout.xaxis.range.slice();
  src.on('plotly_relayout', function (e) {
    var range = null;
    Object.keys(e).forEach(function (k) {
      var m = k.match(/^xaxis\\d*\\.range(\\[(0|1)\\])?$/);
      if (!m) return;
      if (m[1]) { range = range || [null, null]; range[+m[2]] = e[k]; } else { range = e[k]; }
    });
    var auto = Object.keys(e).some(function (k) { return /^xaxis\\d*\\.autorange$/.test(k); });
    if (range && range[0] !== null && range[1] !== null) {
      Plotly.relayout(dst, {'xaxis.range': range});
    } else if (auto) { Plotly.relayout(dst, {'xaxis.range': initial}); }
  });
}
"""


def fault_windows(faults: list[dict[str, Any]], makespan_s: float) -> list[tuple[float, float, str]]:
    """(start, end, label) of each fault that began before the run ended, clipped to the run."""
    out = []
    for f in faults or []:
        try:
            start, end = float(f["start_s"]), float(f["end_s"])
        except (KeyError, TypeError, ValueError):
            continue
        if start >= makespan_s:
            continue
        kind = str(f.get("kind", "fault"))
        label = {"link_down": f"{f.get('link', 'link')} down", "server_pause": "server paused",
                 "devices_offline": (f"{len(f.get('devices') or [])} device"
                                     f"{'' if len(f.get('devices') or []) == 1 else 's'} offline")}.get(kind, kind)
        out.append((start, min(end, makespan_s), label))
    return out


def _shade_faults(fig: go.Figure, windows: list[tuple[float, float, str]], label_shift_px: int = 0,
                  outline: bool = False) -> None:
    """A translucent band over every fault window, labelled above the plot area (`label_shift_px`
    higher, clear of subplot titles). `outline`: a light fill and a dashed red border instead, for
    the device lanes, whose phase colours a red tint would change."""
    for start, end, label in windows:
        fig.add_shape(type="rect", xref="x", yref="paper", x0=start, x1=end, y0=0, y1=1,
                      fillcolor="rgba(228, 87, 86, 0.07)" if outline else FAULT_COLOR,
                      line=dict(width=1, color="#E45756", dash="dash") if outline else dict(width=0),
                      layer="above")
        fig.add_annotation(x=(start + end) / 2, xref="x", y=1.0, yref="paper", yanchor="bottom",
                           yshift=label_shift_px, text=label, showarrow=False,
                           font=dict(size=10, color="#B03A39"))


def default_window(updates: pd.DataFrame, makespan_s: float,
                   windows: list[tuple[float, float, str]]) -> tuple[float, float]:
    """About WINDOW_ROUNDS median round trips (dispatch to arrival), from the first fault's start
    (minus two round trips) if there is one, else from 0; the whole run when that is shorter."""
    trip = (updates["arrival_s"] - updates["dispatch_s"]).dropna()
    trip_s = float(trip.median()) if len(trip) else 0.0
    span = WINDOW_ROUNDS * trip_s
    if trip_s <= 0 or span >= 0.5 * makespan_s:
        return 0.0, max(makespan_s, 1e-9)
    start = max(0.0, windows[0][0] - 2 * trip_s) if windows else 0.0
    start = min(start, makespan_s - span)
    return start, start + span


def group_lanes_figure(events: pd.DataFrame, devices: pd.DataFrame, makespan_s: float,
                       faults: list[dict[str, Any]]) -> go.Figure:
    """Per scenario group, the share of its devices in each phase per time bin, stacked."""
    edges = time_edges(makespan_s, GROUP_BINS)
    width = np.diff(edges)
    centres = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    groups = list(dict.fromkeys(devices["group_name"].astype(str)))
    sizes = devices["group_name"].astype(str).value_counts()
    n = max(1, len(groups))
    height_px = 170 + 95 * n
    plot_px = height_px - 100 - 110  # top margin; x title, range slider and bottom margin
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True,
                        vertical_spacing=min(0.3, 30 / max(plot_px, 1)) if n > 1 else 0.0,  # room for a title
                        subplot_titles=[f"{g} ({int(sizes[g]):,} devices)" for g in groups] or [""])
    series = {"compute": ("compute",), "communication": ("download", "upload"), "offline": ("offline",)}
    # integer codes once: comparing millions of strings per group and phase is the slow part
    group_of = pd.Series(pd.Categorical(devices["group_name"].astype(str), categories=groups).codes,
                         index=devices["device"].to_numpy())
    ev_group = group_of.reindex(events["device"].to_numpy()).fillna(-1).to_numpy(int)
    phase_code, phase_names = pd.factorize(events["phase"].astype(str))
    phase_index = {str(name): i for i, name in enumerate(phase_names)}
    start = events["start_s"].to_numpy(dtype=float)
    end = events["end_s"].to_numpy(dtype=float)
    for row, name in enumerate(groups, start=1):
        in_group = ev_group == row - 1
        shares: dict[str, np.ndarray] = {}
        for label, phases in series.items():
            m = in_group & np.isin(phase_code, [phase_index[p] for p in phases if p in phase_index])
            shares[label] = overlap_per_bin(start[m], end[m], edges) / (int(sizes[name]) * width)
        shares["idle"] = np.clip(1.0 - sum(shares.values()), 0.0, 1.0)
        for label in ("compute", "communication", "offline", "idle"):
            fig.add_trace(go.Scatter(x=centres, y=(100 * shares[label]).astype(np.float32), name=label,
                                     stackgroup=f"g{row}", mode="lines",
                                     line=dict(width=0.5, color=SHARE_COLORS[label]),
                                     fillcolor=SHARE_COLORS[label], legendgroup=label,
                                     showlegend=row == 1,
                                     hovertemplate=f"{label} %{{y:.0f}} %<extra>{name}</extra>"),
                          row=row, col=1)
        fig.update_yaxes(range=[0, 100], tickvals=[0, 50, 100], row=row, col=1,
                         title=dict(text="%", standoff=2))
    _shade_faults(fig, fault_windows(faults, makespan_s), label_shift_px=20)
    fig.update_xaxes(title="simulated time (s) — drag the slider or zoom to choose the device lanes' window",
                     rangeslider=dict(visible=True, thickness=0.06), row=n, col=1)
    fig.update_xaxes(range=[0, max(makespan_s, 1e-9)])
    fig = style(fig, height_px=height_px)
    fig.update_layout(margin=dict(t=100))  # legend, fault labels, then the first group's title
    return fig


def _segments(start: np.ndarray, end: np.ndarray, lane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) arrays drawing one horizontal segment per row, separated by NaN gaps."""
    n = len(start)
    x = np.empty(3 * n, dtype=np.float32)
    x[0::3], x[1::3], x[2::3] = start, end, np.nan
    y = np.repeat(lane.astype(np.int16), 3)
    return x, y


def device_lanes_figure(events: pd.DataFrame, lanes: LaneSample, makespan_s: float,
                        window: tuple[float, float], faults: list[dict[str, Any]]) -> go.Figure:
    """Lanes of the sampled devices: idle background, phase segments, OOM crosses, group labels."""
    lane_devices = lanes.devices["device"].to_numpy()
    n_lanes = len(lane_devices)
    lane_of = pd.Series(np.arange(n_lanes), index=lane_devices)
    ev = events[events["device"].isin(lane_devices)]
    lane = lane_of.reindex(ev["device"].to_numpy()).to_numpy()
    Trace = go.Scattergl if len(ev) > GL_ABOVE_SEGMENTS else go.Scatter
    lane_px = 16 if n_lanes <= 40 else 8
    width_px = max(2.0, lane_px * 0.7)
    fig = go.Figure()
    x, y = _segments(np.zeros(n_lanes), np.full(n_lanes, makespan_s), np.arange(n_lanes))
    fig.add_trace(Trace(x=x, y=y, mode="lines", name="idle", hoverinfo="skip",
                        line=dict(color=PHASE_COLORS["idle"], width=width_px)))
    phase = ev["phase"].to_numpy()
    start_all, end_all = ev["start_s"].to_numpy(), ev["end_s"].to_numpy()
    for name in SEGMENT_PHASES:
        mask = phase == name
        if name == "oom":
            # An OOM is (nearly) instantaneous: a cross is visible at any zoom, a segment is not.
            fig.add_trace(Trace(x=start_all[mask].astype(np.float32), y=lane[mask].astype(np.int16),
                                mode="markers", name="OOM",
                                marker=dict(symbol="x", size=max(6, lane_px * 0.8), color=PHASE_COLORS["oom"]),
                                hovertemplate="OOM at %{x:.1f} s<extra></extra>"))
            continue
        x, y = _segments(start_all[mask], end_all[mask], lane[mask])
        fig.add_trace(Trace(x=x, y=y, mode="lines", name=name,
                            line=dict(color=PHASE_COLORS[name], width=width_px),
                            hovertemplate=f"{name} %{{x:.1f}} s<extra></extra>"))
    names = lanes.devices["device_name"].astype(str).tolist()
    key = "group_name" if "group_name" in lanes.devices else "profile"
    labels = lanes.devices[key].astype(str).to_numpy()
    boundaries = [i for i in range(1, n_lanes) if labels[i] != labels[i - 1]]
    for b in boundaries:
        fig.add_hline(y=b - 0.5, line=dict(color="#888", width=1, dash="dot"))
    for s, e in zip([0] + boundaries, boundaries + [n_lanes]):
        if n_lanes:
            fig.add_annotation(x=1.0, xref="paper", xanchor="left", y=(s + e - 1) / 2, yref="y",
                               text=str(labels[s]), showarrow=False, font=dict(size=10))
    _shade_faults(fig, fault_windows(faults, makespan_s), outline=True)
    fig.update_yaxes(tickmode="array", tickvals=list(range(n_lanes)), ticktext=names,
                     range=[n_lanes - 0.5, -0.5], showgrid=False, zeroline=False,
                     tickfont=dict(size=9 if n_lanes > 40 else 11), title=None)
    fig.update_xaxes(title="simulated time (s)", range=list(window))
    fig.update_layout(margin=dict(r=170, t=60), hovermode="closest")
    return style(fig, height_px=min(2400, 160 + lane_px * max(n_lanes, 1)))
