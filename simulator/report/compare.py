"""`write_comparison_report`: several runs side by side, as a table and as charts.

Only headline figures (metrics.py) and each run's accuracy curve are drawn, so the page stays
small however large the fleets were (accuracy curves are thinned to MAX_CURVE_POINTS each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from simulator.run_folder import atomic_write_text
from simulator.errors import InputError
from simulator.report import html as H
from simulator.report.charts_learning import thin_rows
from simulator.report.loading import RunData, load_run
from simulator.report.metrics import run_metrics, time_to_target_text
from simulator.report.style import (SERIES_COLORS, fmt_bytes, fmt_energy, fmt_num, fmt_pct, fmt_s,
                                    style)

MAX_CURVE_POINTS = 1_000
CHART_IDS = ("chart-compare-accuracy", "chart-compare-bars")


def _labels(runs: list[RunData]) -> list[str]:
    """Scenario names, made unique with the folder name where two runs share one."""
    names = [r.name for r in runs]
    out = []
    for run, name in zip(runs, names):
        out.append(f"{name} ({run.run_dir.name})" if names.count(name) > 1 else name)
    if len(set(out)) < len(out):  # same name and same folder name: number them
        out = [f"{i + 1}. {label}" for i, label in enumerate(out)]
    return out


def _color(i: int) -> str:
    return SERIES_COLORS[i % len(SERIES_COLORS)]


def accuracy_overlay(runs: list[RunData], labels: list[str], metrics: list[dict[str, Any]]
                     ) -> go.Figure | None:
    if all(r.evals.empty for r in runs):
        return None
    fig = go.Figure()
    for i, (run, label) in enumerate(zip(runs, labels)):
        if run.evals.empty:
            continue
        ev = thin_rows(run.evals.sort_values(["time_s", "version"], kind="stable"), MAX_CURVE_POINTS)
        fig.add_trace(go.Scatter(x=ev["time_s"].to_numpy(float), y=ev["accuracy"].to_numpy(float),
                                 mode="lines", name=label, line=dict(color=_color(i)),
                                 hovertemplate="%{x:.0f} s: %{y:.3f}<extra>" + H.esc(label)
                                               + "</extra>"))
    for target in sorted({m["target_accuracy"] for m in metrics if m["target_accuracy"] is not None}):
        fig.add_hline(y=target, line=dict(color="#E45756", dash="dash", width=1.5),
                      annotation_text=f"target {target:.3g}", annotation_position="bottom right")
    fig.update_xaxes(title="simulated time (s)")
    fig.update_yaxes(title="accuracy")
    fig.update_layout(showlegend=True)  # name the run even when only one has evaluations
    return style(fig, height_px=440)


def _bar_values(metrics: list[dict[str, Any]]) -> dict[str, tuple[list[float | None], str]]:
    def col(fn: Any) -> list[float | None]:
        return [fn(m) for m in metrics]

    def scaled(key: str, k: float) -> Any:
        return lambda m: m[key] * k if m[key] is not None else None

    return {
        "time to target (s)": (col(lambda m: m["time_to_target_s"]), "%{y:,.0f} s"),
        "final accuracy (%)": (col(scaled("final_accuracy", 100)), "%{y:.1f} %"),
        "fleet utilization (%)": (col(scaled("fleet_utilization", 100)), "%{y:.1f} %"),
        "mean staleness (versions)": (col(lambda m: m["staleness"]["mean"]), "%{y:.2f}"),
        "peak memory (GB)": (col(scaled("peak_memory_bytes", 1e-9)), "%{y:.2f} GB"),
        "energy (kJ)": (col(scaled("energy_j", 1e-3)), "%{y:,.1f} kJ"),
    }


def bars_figure(labels: list[str], metrics: list[dict[str, Any]]) -> go.Figure:
    """2×3 bar charts; a missing value is an empty slot labelled 'n/a' or 'not reached'."""
    values = _bar_values(metrics)
    fig = make_subplots(rows=2, cols=3, subplot_titles=list(values), vertical_spacing=0.22,
                        horizontal_spacing=0.07)
    colors = [_color(i) for i in range(len(labels))]
    for k, (title, (ys, fmt)) in enumerate(values.items()):
        row, col = k // 3 + 1, k % 3 + 1
        y = np.array([np.nan if v is None else v for v in ys], dtype=float)
        reached_slot = title.startswith("time to target")
        text = ["" if np.isfinite(v) else
                "not reached" if reached_slot and time_to_target_text(m) == "not reached" else "n/a"
                for v, m in zip(y, metrics)]
        fig.add_trace(go.Bar(x=labels, y=np.nan_to_num(y), marker_color=colors, text=text,
                             textposition="outside", showlegend=False, name=title,
                             hovertemplate="%{x}: " + fmt + "<extra></extra>"), row=row, col=col)
    fig.update_xaxes(tickangle=-30)
    return style(fig, height_px=640)


def comparison_table(labels: list[str], metrics: list[dict[str, Any]]) -> str:
    header = ["run", "algorithm", "devices", "simulated time", "target", "time to target",
              "final accuracy", "fleet utilization", "staleness mean / p95", "peak memory",
              "peak / usable", "energy", "traffic down / up", "accepted", "dropped", "lost", "OOM"]
    rows = []
    for label, m in zip(labels, metrics):
        target = m["target_accuracy"]
        ttt = time_to_target_text(m)
        rows.append([label, m["algorithm"] or "n/a", fmt_num(m["devices"]), fmt_s(m["makespan_s"]),
                     fmt_pct(target, 1), ttt,
                     "timing-only" if m["timing_only"] else fmt_pct(m["final_accuracy"], 1),
                     fmt_pct(m["fleet_utilization"]),
                     f"{fmt_num(m['staleness']['mean'], 2)} / {fmt_num(m['staleness']['p95'], 1)}",
                     fmt_bytes(m["peak_memory_bytes"]), fmt_pct(m["peak_memory_ratio"]),
                     fmt_energy(m["energy_j"]),
                     f"{fmt_bytes(m['bytes_down'])} / {fmt_bytes(m['bytes_up'])}",
                     fmt_num(m["accepted"]), fmt_num(m["dropped"]), fmt_num(m["lost"]),
                     fmt_num(m["ooms"])])
    return H.data_table(header, rows, "compare-table")


def write_comparison_report(run_dirs: list[Path], out_path: Path) -> Path:
    """Write one page comparing the runs in `run_dirs` to `out_path`; return its path."""
    if not run_dirs:
        raise InputError("no run folders were given", field="run_dirs",
                         accepted="one or more run folders written by `fleetsim run`")
    runs = [load_run(Path(d)) for d in run_dirs]
    labels = _labels(runs)
    metrics = [run_metrics(r) for r in runs]
    acc = accuracy_overlay(runs, labels, metrics)
    acc_html = (H.figure_div(acc, "chart-compare-accuracy") if acc is not None else
                H.empty_chart("chart-compare-accuracy",
                              "None of these runs recorded evaluations (timing-only runs)."))
    body = (H.section("Runs", comparison_table(labels, metrics), section_id="runs")
            + H.section("Accuracy over simulated time", acc_html,
                        note="Dashed red lines: target accuracies.", section_id="compare-accuracy")
            + H.section("Side by side", H.figure_div(bars_figure(labels, metrics),
                                                     "chart-compare-bars"),
                        note="Empty slots: the run has no value (n/a) or never reached its target.",
                        section_id="compare-bars"))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, H.page(f"fleetsim comparison of {len(runs)} runs", " · ".join(labels), body))
    return out
