"""`write_comparison_report`: several runs side by side, as a table and as charts.

- Runs are named by what differs between them (compare_labels.py); runs that differ only by seed
  form one configuration, drawn as mean ± std over its seeds (error bars, one dot per seed).
- Runs of different lengths are compared per simulated hour (energy, traffic, versions) and per
  version (energy), never as raw totals side by side.
- An interrupted run is marked as such (its time to target reads "interrupted", not "not reached").
- Only headline figures (metrics.py) and each run's accuracy curve are drawn, so the page stays small
  however large the fleets were (curves are thinned to MAX_CURVE_POINTS each). Bars are horizontal
  (no rotated labels), one small figure per metric with its own title and unit, in a CSS grid that
  wraps them to the page's width (html.CSS `.chart-grid`): one make_subplots grid of three fixed
  columns ran its subplot titles into each other below ~1400 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go

from simulator.errors import InputError
from simulator.output.folder import atomic_write_text
from simulator.report import html as H
from simulator.report.charts_learning import thin_rows
from simulator.report.compare_labels import RunLabel, run_labels, sweep_name
from simulator.report.finding import plural
from simulator.report.loading import RunData, load_run
from simulator.report.metrics import run_metrics, time_to_target_text
from simulator.report.style import (SERIES_COLORS, fmt_bytes, fmt_energy, fmt_num, fmt_pct, fmt_s,
                                    style)

MAX_CURVE_POINTS = 1_000
ACCURACY_CHART_ID = "chart-compare-accuracy"  # then one chart per metric: bar_chart_id
SAME_LENGTH = 1.01  # runs whose simulated times differ by more than 1 % are compared per hour
MAX_TICK_CHARS = 24  # longer configuration names are numbered beside the bars and named in the key
BAR_PLOT_PX, BAR_ROW_PX = 36, 24  # a bar chart's plot height: this plus a row per configuration
# small charts: saving a PNG and resetting the axes are all the toolbar offers (zoom and select
# tools are of no use on a few bars, and a short toolbar leaves the title its room)
SMALL_CHART_CONFIG = {"modeBarButtonsToRemove": ["zoom2d", "pan2d", "select2d", "lasso2d", "zoomIn2d",
                                                 "zoomOut2d", "autoScale2d"]}


def _color(i: int) -> str:
    return SERIES_COLORS[i % len(SERIES_COLORS)]


def _per_hour(value: float | None, m: dict[str, Any]) -> float | None:
    span = m["makespan_s"]
    return value * 3600.0 / span if value is not None and span else None


def _per_version(value: float | None, m: dict[str, Any]) -> float | None:
    return value / m["versions"] if value is not None and m["versions"] else None


def lengths_differ(metrics: list[dict[str, Any]]) -> bool:
    spans = [m["makespan_s"] for m in metrics if m["makespan_s"]]
    return bool(spans) and max(spans) > SAME_LENGTH * min(spans)


def _energy_scale(values_j: list[float | None]) -> tuple[str, float]:
    top = max((abs(v) for v in values_j if v is not None), default=0.0)
    return ("kWh", 3.6e6) if top >= 3.6e6 else ("Wh", 3600.0) if top >= 3600.0 else ("J", 1.0)


@dataclass(frozen=True)
class Metric:
    key: str  # names its chart: chart-compare-<key>
    title: str
    values: list[float | None]  # one per run, in the chart's unit
    hover: str  # plotly number format with unit, e.g. "%{x:.1f} %"


def bar_metrics(metrics: list[dict[str, Any]]) -> list[Metric]:
    """The charted figures, normalised where runs differ in length; figures no run has are left out."""
    per_h = lengths_differ(metrics)
    out: list[Metric] = []

    def add(key: str, title: str, fn: Callable[[dict[str, Any]], float | None], hover: str,
            keep: bool = False) -> None:
        values = [fn(m) for m in metrics]
        if keep or any(v is not None for v in values):
            out.append(Metric(key, title, values, hover))

    if not all(m["timing_only"] for m in metrics):
        # kept when no run reached its target: "not reached" / "interrupted" is the answer then
        add("time-to-target", "time to target (s)", lambda m: m["time_to_target_s"], "%{x:,.0f} s",
            keep=any(m["target_accuracy"] is not None and not m["timing_only"] for m in metrics))
        add("final-accuracy", "final accuracy (%)",
            lambda m: None if m["final_accuracy"] is None else 100 * m["final_accuracy"],
            "%{x:.1f} %")
    add("fleet-utilization", "fleet utilization (compute, %)",
        lambda m: None if m["fleet_utilization"] is None else 100 * m["fleet_utilization"], "%{x:.1f} %")
    add("staleness", "mean staleness (versions)", lambda m: m["staleness"]["mean"], "%{x:.2f}")
    add("peak-memory", "peak memory (% of usable)",
        lambda m: None if m["peak_memory_ratio"] is None else 100 * m["peak_memory_ratio"], "%{x:.0f} %")
    energy = [(_per_hour(m["energy_j"], m) if per_h else m["energy_j"]) for m in metrics]
    unit, scale = _energy_scale(energy)
    add("energy", f"energy per simulated hour ({unit}/h)" if per_h else f"energy ({unit})",
        lambda m: None if (e := (_per_hour(m["energy_j"], m) if per_h else m["energy_j"])) is None else e / scale,
        "%{x:,.3g} " + unit + ("/h" if per_h else ""))
    per_version = [_per_version(m["energy_j"], m) for m in metrics]
    vunit, vscale = _energy_scale(per_version)
    add("energy-per-version", f"energy per version ({vunit})",
        lambda m: None if (e := _per_version(m["energy_j"], m)) is None else e / vscale, "%{x:,.3g} " + vunit)

    def traffic(m: dict[str, Any]) -> float | None:
        if m["bytes_down"] is None or m["bytes_up"] is None:
            return None
        total = (m["bytes_down"] + m["bytes_up"]) / 1e9
        return _per_hour(total, m) if per_h else total

    add("traffic", "traffic down + up (GB per simulated hour)" if per_h else "traffic down + up (GB)", traffic,
        "%{x:,.3g} GB" + ("/h" if per_h else ""))
    add("versions", "versions per simulated hour" if per_h else "versions",
        lambda m: _per_hour(m["versions"], m) if per_h else m["versions"], "%{x:,.1f}")
    return out


def _missing_text(title: str, m: dict[str, Any]) -> str:
    if title.startswith("time to target"):
        text = time_to_target_text(m)
        return "interrupted" if text.startswith("interrupted") else text
    if not m.get("complete", True):
        return "interrupted"
    return "timing-only" if m["timing_only"] and "accuracy" in title else "n/a"


def configurations(labels: list[RunLabel]) -> list[tuple[str, list[int]]]:
    """(configuration, indices of its runs), in order of first appearance."""
    out: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        out.setdefault(lab.config, []).append(i)
    return list(out.items())


def mean_std(values: list[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and sample std (ddof=1; None with fewer than 2) of the known values, and their count."""
    known = np.array([v for v in values if v is not None], dtype=float)
    if known.size == 0:
        return None, None, 0
    return float(known.mean()), (float(known.std(ddof=1)) if known.size > 1 else None), int(known.size)


def tick_names(names: list[str]) -> list[str]:
    """What each small chart writes beside its bars: the configuration names when they are short
    enough to leave the bars room in a 360 px figure, else their numbers in the key above the grid."""
    return names if all(len(n) <= MAX_TICK_CHARS for n in names) else [str(i + 1) for i in range(len(names))]


def bar_figure(metric: Metric, configs: list[tuple[str, list[int]]], metrics: list[dict[str, Any]]) -> go.Figure:
    """One metric's horizontal bars, one per configuration (mean over its seeds, ± one sample std,
    one dot per seed), titled with the metric and its unit: a figure of its own, so that its title
    can never run into a neighbour's however narrow the grid's column."""
    names = [c for c, _ in configs]
    colors = [_color(i) for i in range(len(names))]
    stats = [mean_std([metric.values[i] for i in idx]) for _, idx in configs]
    x = [s[0] if s[0] is not None else 0.0 for s in stats]
    err = [s[1] or 0.0 for s in stats]
    text = ["" if s[0] is not None else _missing_text(metric.title, metrics[idx[0]])
            for s, (_, idx) in zip(stats, configs)]
    hatched = ["/" if any(not metrics[i].get("complete", True) for i in idx) else "" for _, idx in configs]
    fig = go.Figure(go.Bar(y=names, x=x, orientation="h", marker=dict(color=colors, pattern=dict(shape=hatched)),
                           error_x=dict(type="data", array=err, visible=any(e > 0 for e in err),
                                        color="#333", thickness=1.2, width=4),
                           text=text, textposition="outside", cliponaxis=False, showlegend=False,
                           name=metric.title, customdata=[plural(s[2], "run") for s in stats],
                           hovertemplate="%{y}: " + metric.hover + " (mean of %{customdata})<extra></extra>"))
    dots = [(metric.values[i], name) for name, (_, idx) in zip(names, configs) if len(idx) > 1
            for i in idx if metric.values[i] is not None]
    if dots:
        fig.add_trace(go.Scatter(x=[d[0] for d in dots], y=[d[1] for d in dots], mode="markers",
                                 marker=dict(size=5, color="#222", opacity=0.6), showlegend=False,
                                 hovertemplate="%{y}: " + metric.hover + " (one seed)<extra></extra>"))
    top = max([v + e for v, e in zip(x, err)] + [v for v in metric.values if v is not None] + [0.0])
    fig.update_xaxes(range=[0, top * 1.22 if top > 0 else 1.0], nticks=6)
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=11), tickmode="array", tickvals=names,
                     ticktext=tick_names(names))
    fig = style(fig, height_px=BAR_PLOT_PX + BAR_ROW_PX * len(names) + 76, title=metric.title)
    fig.update_layout(margin=dict(t=40, l=10, r=30, b=30), bargap=0.25)
    return fig


def bar_chart_id(metric: Metric) -> str:
    return f"chart-compare-{metric.key}"


def chart_ids(metrics: list[dict[str, Any]], with_accuracy: bool) -> tuple[str, ...]:
    """The ids of a comparison page's charts, in page order: the accuracy curves (when a run has
    evaluations), then one per charted metric."""
    return ((ACCURACY_CHART_ID,) if with_accuracy else ()) + tuple(bar_chart_id(m) for m in bar_metrics(metrics))


def bars_grid(labels: list[RunLabel], metrics: list[dict[str, Any]], charted: list[Metric]) -> str:
    """The metrics' figures in a CSS grid that wraps them (as many columns of >= 360 px as the page
    has room for), in the order of `charted`, under a key of the configurations' colours (and numbers,
    when the names are too long to stand beside the bars)."""
    configs = configurations(labels)
    names = [c for c, _ in configs]
    key = ""
    if tick_names(names) != names:
        items = "".join(f'<li><span class="swatch" style="background:{H.esc(_color(i))}"></span>'
                        f"<b>{i + 1}</b> {H.esc(name)} <span class=\"why\">({plural(len(idx), 'run')})</span></li>"
                        for i, (name, idx) in enumerate(configs))
        key = f'<ul class="chart-key" id="compare-key">{items}</ul>'
    cells = "".join(H.figure_div(bar_figure(m, configs, metrics), bar_chart_id(m), config=SMALL_CHART_CONFIG)
                    for m in charted)
    return f'{key}<div class="chart-grid" id="compare-bar-grid">{cells}</div>'


def accuracy_overlay(runs: list[RunData], labels: list[RunLabel], metrics: list[dict[str, Any]]
                     ) -> go.Figure | None:
    """Accuracy against simulated time, one line per run; the seeds of a configuration share a colour."""
    if all(r.evals.empty for r in runs):
        return None
    color_of = {c: _color(i) for i, (c, _) in enumerate(configurations(labels))}
    fig = go.Figure()
    for run, lab in zip(runs, labels):
        if run.evals.empty:
            continue
        ev = thin_rows(run.evals.sort_values(["time_s", "version"], kind="stable"), MAX_CURVE_POINTS)
        fig.add_trace(go.Scatter(x=ev["time_s"].to_numpy(float), y=ev["accuracy"].to_numpy(float),
                                 mode="lines", name=lab.label, line=dict(color=color_of[lab.config], width=1.6),
                                 hovertemplate="%{x:.0f} s: %{y:.3f}<extra>" + H.esc(lab.label) + "</extra>"))
    for target in sorted({m["target_accuracy"] for m in metrics if m["target_accuracy"] is not None}):
        fig.add_hline(y=target, line=dict(color="#E45756", dash="dash", width=1.5),
                      annotation_text=f"target {target:.3g}", annotation_position="bottom right")
    fig.update_xaxes(title="simulated time (s)")
    fig.update_yaxes(title="accuracy")
    fig = style(fig, height_px=440)
    # legend below the plot: long run names must not cover the curves or the title
    fig.update_layout(showlegend=True, legend=dict(orientation="h", yref="container", y=0, yanchor="bottom"),
                      margin=dict(b=40 + 22 * ((len(runs) + 1) // 2)))
    return fig


def comparison_table(labels: list[RunLabel], metrics: list[dict[str, Any]]) -> str:
    """Every run's headline figures; cells wrap, so the table fits the page (memory included)."""
    per_h = lengths_differ(metrics)
    learned = not all(m["timing_only"] for m in metrics)
    header = ["run", "algorithm", "devices", "simulated time", "versions"]
    header += ["target", "time to target", "final accuracy"] if learned else []
    header += ["fleet utilization", "staleness mean / p95", "peak memory (of usable), tightest device",
               "energy" + (" (per hour)" if per_h else ""), "traffic down / up" + (" (per hour)" if per_h else ""),
               "updates accepted / "
               "dropped / lost / OOM"]
    rows, details = [], []
    for lab, m in zip(labels, metrics):
        name = lab.label + ("" if m.get("complete", True) else " — interrupted")
        details.append(lab.detail)
        row = [name, m["algorithm"] or "n/a", fmt_num(m["devices"]), fmt_s(m["makespan_s"]), fmt_num(m["versions"])]
        if learned:
            row += [fmt_pct(m["target_accuracy"], 1), time_to_target_text(m),
                    "timing-only" if m["timing_only"] else fmt_pct(m["final_accuracy"], 1)]
        energy = fmt_energy(m["energy_j"])
        if per_h and m["energy_j"] is not None:
            energy += f" ({fmt_energy(_per_hour(m['energy_j'], m))}/h)"
        row += [fmt_pct(m["fleet_utilization"]),
                f"{fmt_num(m['staleness']['mean'], 2)} / {fmt_num(m['staleness']['p95'], 1)}",
                _memory_text(m), energy,
                _traffic_text(m, per_h),
                " / ".join(fmt_num(m[k]) for k in ("accepted", "dropped", "lost", "ooms"))]
        rows.append(row)
    head = "".join(f"<th>{H.esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td>{H.esc(c)}" + (f'<br><span class="why">{H.esc(d)}</span>' if i == 0 and d else "") + "</td>"
        for i, c in enumerate(row)) + "</tr>" for row, d in zip(rows, details))
    return (f'<div class="table-wrap"><table class="data wrap" id="compare-table"><thead><tr>{head}'
            f"</tr></thead><tbody>{body}</tbody></table></div>")


def _traffic_text(m: dict[str, Any], per_h: bool) -> str:
    """'148.55 GB / 133.89 GB', and per simulated hour as well when the runs differ in length (as energy is:
    totals of runs of different lengths do not compare)."""
    text = f"{fmt_bytes(m['bytes_down'])} / {fmt_bytes(m['bytes_up'])}"
    down, up = _per_hour(m["bytes_down"], m), _per_hour(m["bytes_up"], m)
    if per_h and down is not None and up is not None:
        text += f" ({fmt_bytes(down)} / {fmt_bytes(up)} per hour)"
    return text


def _memory_text(m: dict[str, Any]) -> str:
    """'2.3 GB (90 %)', or 'needs 5.6 GB (214 %): out of memory' when the tightest device's jobs did not fit."""
    text = f"{fmt_bytes(m['peak_memory_bytes'])} ({fmt_pct(m['peak_memory_ratio'])})"
    ratio = m["peak_memory_ratio"]
    return f"needs {text}: out of memory" if ratio is not None and ratio > 1.0 else text


def _notes(labels: list[RunLabel], metrics: list[dict[str, Any]]) -> str:
    parts = ["Bars: the mean over a configuration's seeds, error bars ± one sample std, dots the seeds."
             if any(len(i) > 1 for _, i in configurations(labels)) else "One bar per run."]
    if lengths_differ(metrics):
        spans = [m["makespan_s"] for m in metrics if m["makespan_s"]]
        parts.append(f"The runs differ in length ({fmt_s(min(spans))} – {fmt_s(max(spans))}): energy, "
                     "traffic and versions are per simulated hour.")
    if any((m["peak_memory_ratio"] or 0.0) > 1.0 for m in metrics):
        parts.append("Peak memory above 100 %: jobs of the tightest device needed more memory than it can use "
                     "and ran out of memory (the share is of what they asked for).")
    if not all(m.get("complete", True) for m in metrics):
        parts.append("Hatched bars: at least one run was interrupted; its figures stop where it stopped.")
    return " ".join(parts)


def write_comparison_report(run_dirs: list[Path], out_path: Path) -> Path:
    """Write one page comparing the runs in `run_dirs` to `out_path`; return its path."""
    if not run_dirs:
        raise InputError("no run folders were given", field="run_dirs",
                         accepted="one or more run folders written by `fleetsim run`")
    runs = [load_run(Path(d)) for d in run_dirs]
    labels = run_labels(runs)
    metrics = [run_metrics(r) for r in runs]
    body = H.section("Runs", comparison_table(labels, metrics), section_id="runs")
    acc = accuracy_overlay(runs, labels, metrics)
    if acc is not None:
        body += H.section("Accuracy over simulated time", H.figure_div(acc, ACCURACY_CHART_ID),
                          note="Dashed red lines: target accuracies.", section_id="compare-accuracy")
    body += H.section("Side by side", bars_grid(labels, metrics, bar_metrics(metrics)),
                      note=_notes(labels, metrics), section_id="compare-bars")
    n_configs = len(configurations(labels))
    varied = labels[0].varied if labels else ()
    runs_text = plural(len(runs), "run")  # "1 runs" on a one-run page before
    subtitle = f"{runs_text}, {plural(n_configs, 'configuration')}"
    if varied:
        subtitle += " · varied: " + ", ".join(varied[:6]) + (" …" if len(varied) > 6 else "")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # a sweep's page says which sweep it is (a browser tab read "fleetsim comparison of 27 runs" alone)
    swept = sweep_name(runs)
    title = f"fleetsim comparison of {runs_text}" if swept is None else \
        f"fleetsim sweep {swept}: comparison of {runs_text}"
    atomic_write_text(out, H.page(title, subtitle, body))
    return out
