"""Where the devices' time, memory and energy went: utilization shares, memory against the limit,
submodel sizes, energy.

Per-group charts (scenario groups, `group_name`) aggregate every device; per-device charts show the sampled lanes only (see
sampling.py), so their size does not grow with the fleet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simulator.report.style import OUTCOME_COLORS, SERIES_COLORS, SHARE_COLORS, style

SHARE_COLUMNS = {"compute": "compute_s", "communication": "comm_s", "idle": "idle_s",
                 "offline": "offline_s"}


def _shares(table: pd.DataFrame) -> pd.DataFrame:
    """Columns compute/communication/idle/offline as % of the row's total time."""
    t = table[list(SHARE_COLUMNS.values())].fillna(0.0).astype(float)
    t.columns = list(SHARE_COLUMNS)
    total = t.sum(axis=1).replace(0.0, np.nan)
    return t.div(total, axis=0).fillna(0.0) * 100.0


def _key(devices: pd.DataFrame) -> str:
    return "group_name" if "group_name" in devices else "profile"


def utilization_group_figure(devices: pd.DataFrame) -> go.Figure:
    """One horizontal stacked bar per scenario group: shares of all its devices' time."""
    key = _key(devices)
    sums = devices.groupby(key, sort=False)[list(SHARE_COLUMNS.values())].sum()
    shares = _shares(sums)
    counts = devices.groupby(key, sort=False).size()
    labels = [f"{p} ({counts[p]})" for p in shares.index]
    fig = go.Figure()
    for name in SHARE_COLUMNS:
        fig.add_trace(go.Bar(y=labels, x=shares[name].round(2), name=name, orientation="h",
                             marker_color=SHARE_COLORS[name],
                             hovertemplate=f"{name} %{{x:.1f}} %<extra>%{{y}}</extra>"))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title="% of device time", range=[0, 100])
    fig.update_yaxes(autorange="reversed")
    return style(fig, height_px=140 + 40 * len(labels))


def utilization_device_figure(lane_devices: pd.DataFrame) -> go.Figure:
    """One stacked bar per shown device."""
    shares = _shares(lane_devices)
    names = lane_devices["device_name"].astype(str).tolist()
    fig = go.Figure()
    for name in SHARE_COLUMNS:
        fig.add_trace(go.Bar(x=names, y=shares[name].round(2).to_numpy(), name=name,
                             marker_color=SHARE_COLORS[name],
                             customdata=lane_devices[_key(lane_devices)].astype(str).to_numpy(),
                             hovertemplate=f"{name} %{{y:.1f}} %<extra>%{{x}} (%{{customdata}})"
                                           "</extra>"))
    fig.update_layout(barmode="stack", bargap=0.1)
    fig.update_yaxes(title="% of device time", range=[0, 100])
    fig.update_xaxes(tickangle=-60, tickfont=dict(size=9 if len(names) > 40 else 11))
    return style(fig, height_px=420)


def _per_device_jobs(updates: pd.DataFrame, device_ids: np.ndarray) -> pd.DataFrame:
    """Per shown device: peak memory of jobs that ran, memory an OOM job needed, largest submodel."""
    up = updates[updates["device"].isin(device_ids)]
    ran = up[up["outcome"] != "oom"]
    oom = up[up["outcome"] == "oom"]
    out = pd.DataFrame(index=pd.Index(device_ids, name="device"))
    out["ran_peak"] = ran.groupby("device")["peak_memory_bytes"].max()
    out["oom_needed"] = oom.groupby("device")["peak_memory_bytes"].max()
    out["params"] = up.groupby("device")["submodel_params"].max()
    return out


def memory_figure(lane_devices: pd.DataFrame, updates: pd.DataFrame) -> go.Figure:
    """Peak memory per device against its usable memory, and the submodel size it trained."""
    ids = lane_devices["device"].to_numpy()
    jobs = _per_device_jobs(updates, ids)
    names = lane_devices["device_name"].astype(str).to_numpy()
    usable = lane_devices["usable_memory_bytes"].to_numpy(dtype=float) / 1e9
    peak = jobs["ran_peak"].to_numpy(dtype=float)
    dev_peak = lane_devices["peak_memory_bytes"].to_numpy(dtype=float)
    peak = np.where(np.isfinite(peak), peak, np.where(jobs["oom_needed"].isna(), dev_peak, np.nan))
    needed = jobs["oom_needed"].to_numpy(dtype=float) / 1e9
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        row_heights=[0.6, 0.4],
                        subplot_titles=["peak memory (GB) against usable memory",
                                        "largest submodel trained (million parameters)"])
    fig.add_trace(go.Bar(x=names, y=peak / 1e9, name="peak memory of jobs that ran",
                         marker_color=SERIES_COLORS[0],
                         hovertemplate="%{x}: %{y:.2f} GB<extra>peak</extra>"), row=1, col=1)
    if np.isfinite(needed).any():
        fig.add_trace(go.Scatter(x=names, y=needed, mode="markers", name="needed by an OOM job",
                                 marker=dict(symbol="x", size=10, color=OUTCOME_COLORS["oom"]),
                                 hovertemplate="%{x}: needed %{y:.2f} GB<extra>OOM</extra>"),
                      row=1, col=1)
    fig.add_trace(go.Scatter(x=names, y=usable, mode="markers", name="usable memory (limit)",
                             marker=dict(symbol="line-ew-open", size=14, color="#222",
                                         line=dict(width=3, color="#222")),
                             hovertemplate="%{x}: limit %{y:.2f} GB<extra>usable</extra>"),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=jobs["params"].to_numpy(dtype=float) / 1e6,
                         name="submodel parameters", marker_color=SERIES_COLORS[4],
                         hovertemplate="%{x}: %{y:.2f} M params<extra></extra>"), row=2, col=1)
    # log scale: a 3.2 GB limit next to a 58 GB one must both stay readable
    fig.update_yaxes(title="GB (log scale)", type="log", row=1, col=1,
                     tickvals=[0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256])
    fig.update_yaxes(title="M params", row=2, col=1)
    fig.update_xaxes(tickangle=-60, tickfont=dict(size=9 if len(names) > 40 else 11), row=2, col=1)
    return style(fig, height_px=640)


def energy_figure(devices: pd.DataFrame, lane_devices: pd.DataFrame) -> go.Figure:
    """Energy per scenario group (all devices) and per shown device, in Wh."""
    key = _key(devices)
    by_group = devices.groupby(key, sort=False)["energy_j"].agg(["sum", "mean"]) / 3600.0
    colors = {g: SERIES_COLORS[i % len(SERIES_COLORS)] for i, g in enumerate(by_group.index.astype(str))}
    fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7], horizontal_spacing=0.1,
                        subplot_titles=["per group, all devices (Wh)", "per device (Wh)"])
    fig.add_trace(go.Bar(x=by_group.index.astype(str).tolist(), y=by_group["sum"],
                         name="total per group", marker_color=[colors[str(g)] for g in by_group.index],
                         customdata=by_group["mean"].to_numpy(),
                         hovertemplate="%{x}: %{y:,.1f} Wh total, %{customdata:,.2f} Wh per "
                                       "device<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=lane_devices["device_name"].astype(str).tolist(),
                         y=lane_devices["energy_j"].to_numpy(dtype=float) / 3600.0,
                         name="per device",
                         marker_color=[colors.get(str(g), "#888") for g in lane_devices[key]],
                         customdata=lane_devices[key].astype(str).to_numpy(),
                         hovertemplate="%{x} (%{customdata}): %{y:,.2f} Wh<extra></extra>"),
                  row=1, col=2)
    fig.update_xaxes(tickangle=-60, tickfont=dict(size=9 if len(lane_devices) > 40 else 11),
                     row=1, col=2)
    fig.update_layout(showlegend=False)
    return style(fig, height_px=420)
