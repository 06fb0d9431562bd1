"""`write_run_report`: one run folder -> one self-contained report.html.

Size budget (checked by tests/report): < 8 MB for a 10,000-device, 100-round run, of which ~4.8 MB
is plotly.js (inlined once). The rest stays near 1–2 MB whatever the fleet size because
- the timeline draws at most ~200 sampled lanes and ~50,000 phase segments (sampling.py), as one
  float32/int16 trace per phase (charts_timeline.py), not a shape per phase;
- per-device bar charts use the same sampled lanes; per-profile charts aggregate all devices;
- everything over time (phase shares, traffic, staleness, outcomes, coverage) is binned to at most a
  few hundred points (binning.py).
The page says when lanes are sampled. Chart containers have fixed ids (CHART_IDS) so tests and
browsers can find them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from simulator.run_folder import atomic_write_text
from simulator.report import html as H
from simulator.report.charts_learning import accuracy_figure, coverage_figure
from simulator.report.charts_timeline import phase_share_figure, timeline_figure
from simulator.report.charts_updates import outcomes_figure, staleness_figure, traffic_figure
from simulator.report.charts_usage import (energy_figure, memory_figure, utilization_device_figure,
                                           utilization_profile_figure)
from simulator.report.findings import compute_findings
from simulator.report.loading import RunData, load_run
from simulator.report.metrics import run_metrics, time_to_target_text
from simulator.report.sampling import choose_lanes, lane_budget
from simulator.report.style import fmt_bytes, fmt_energy, fmt_num, fmt_pct, fmt_s

CHART_IDS = ("chart-timeline", "chart-phase-shares", "chart-utilization-profile",
             "chart-utilization-device", "chart-accuracy", "chart-staleness", "chart-updates",
             "chart-memory", "chart-coverage", "chart-traffic", "chart-energy")


def _chart(div_id: str, ready: bool, build: Callable[[], go.Figure | None], empty: str) -> str:
    """The figure's div, or a box saying why there is nothing to draw."""
    fig = build() if ready else None
    return H.figure_div(fig, div_id) if fig is not None else H.empty_chart(div_id, empty)


def _header(run: RunData, m: dict[str, Any]) -> str:
    fleet = ", ".join(f"{n:,} × {p}" for p, n in m["devices_by_profile"].items()) or "n/a"
    facts = [("scenario", m["name"]), ("devices", f"{m['devices']:,} ({fleet})"),
             ("algorithm", m["algorithm"] or "n/a"), ("model", m["model"] or "n/a"),
             ("dataset", "none (timing-only run)" if m["timing_only"] and not m["dataset"]
              else m["dataset"] or "n/a"),
             ("seed", "n/a" if m["seed"] is None else m["seed"]), ("run folder", str(run.run_dir))]
    st = m["staleness"]
    target = m["target_accuracy"]
    ttt = time_to_target_text(m)
    items = [("simulated time", fmt_s(m["makespan_s"])), ("versions", fmt_num(m["versions"])),
             ("fleet utilization (compute)", fmt_pct(m["fleet_utilization"])),
             ("final accuracy", "timing-only" if m["timing_only"] else fmt_pct(m["final_accuracy"], 1)),
             (f"time to target {fmt_pct(target, 1)}" if target is not None else "time to target", ttt),
             ("accepted updates", fmt_num(m["accepted"])), ("dropped updates", fmt_num(m["dropped"])),
             ("lost updates", fmt_num(m["lost"])), ("OOM events", fmt_num(m["ooms"])),
             ("staleness mean / p95", f"{fmt_num(st['mean'], 2)} / {fmt_num(st['p95'], 1)}"),
             ("energy", _known(m, "energy_j", fmt_energy)),
             ("traffic down / up", f"{_known(m, 'bytes_down', fmt_bytes)} / {_known(m, 'bytes_up', fmt_bytes)}")]
    return H.section("Scenario", H.facts_table(facts) + H.cards(items), section_id="scenario")


def _known(m: dict[str, Any], key: str, fmt: Callable[[Any], str]) -> str:
    """A figure, or 'unknown' when an incomplete run cannot know it (never a 0 that looks measured)."""
    return "unknown" if m[key] is None and not m["complete"] else fmt(m[key])


def incomplete_banner(m: dict[str, Any]) -> str:
    """The warning at the very top of the page of a killed or failed run ('' for a complete one)."""
    if m["complete"]:
        return ""
    return (f'<section id="incomplete" class="incomplete" role="alert" style="border:2px solid #E45756;'
            f'padding:0.6em 1em;margin:1em 0;background:#fdecea"><strong>Incomplete run.</strong> '
            f'{H.esc(m["incomplete_note"])}</section>')


def build_run_page(run: RunData) -> str:
    """The report's HTML for a loaded run."""
    m = run_metrics(run)
    ev, dev, up = run.events, run.devices, run.updates
    lanes = choose_lanes(dev, lane_budget(len(dev), len(ev)))
    sample_note, short_note = lanes.note(), lanes.short_note()
    span = run.makespan_s
    parts = [incomplete_banner(m), _header(run, m), H.section("Findings", H.findings_list(compute_findings(run, m)),
                                        section_id="findings-section")]
    parts.append(H.section(
        "Fleet timeline",
        _chart("chart-timeline", not ev.empty and not lanes.devices.empty,
               lambda: timeline_figure(ev, lanes, span), "No device phases were recorded."),
        note=("One lane per device; grey = idle (no phase), crosses = out of memory. Drag to zoom, "
              "double-click to reset. " + sample_note).strip(), section_id="timeline"))
    parts.append(H.section(
        "Phase shares per profile",
        _chart("chart-phase-shares", not ev.empty and not dev.empty,
               lambda: phase_share_figure(ev, dev, span), "No device phases were recorded."),
        note="Share of each profile's devices in each phase, all devices, per time bin.",
        section_id="phase-shares"))
    parts.append(H.section(
        "Utilization",
        _chart("chart-utilization-profile", not dev.empty,
               lambda: utilization_profile_figure(dev), "No device table was recorded.")
        + _chart("chart-utilization-device", not lanes.devices.empty,
                 lambda: utilization_device_figure(lanes.devices), "No device table was recorded."),
        note=("Compute, communication (download + upload, including waiting for a link share), "
              "idle and offline shares of wall time; per profile, then per device. " + short_note
              ).strip(), section_id="utilization"))
    no_evals = ("Timing-only run: no model was trained, so there is no accuracy or loss to plot."
                if m["timing_only"] else "No evaluations were recorded.")
    parts.append(H.section(
        "Accuracy and loss",
        _chart("chart-accuracy", not run.evals.empty,
               lambda: accuracy_figure(run.evals, m["target_accuracy"], m["time_to_target_s"]),
               no_evals),
        note=("Dashed red line: target accuracy." if m["target_accuracy"] is not None
              else "No target accuracy was set."), section_id="accuracy"))
    parts.append(H.section(
        "Staleness and update outcomes",
        _chart("chart-staleness", up["arrival_s"].notna().any(),
               lambda: staleness_figure(up, span), "No update reached the server.")
        + _chart("chart-updates", not up.empty, lambda: outcomes_figure(up, span),
                 "No updates were dispatched."),
        note="Staleness = server version at arrival − version the device downloaded.",
        section_id="staleness"))
    parts.append(H.section(
        "Memory and submodel size",
        _chart("chart-memory", not lanes.devices.empty, lambda: memory_figure(lanes.devices, up),
               "No device table was recorded."),
        note=("Bars: the largest peak training memory of a job that ran; black tick: usable memory; "
              "red cross: memory an out-of-memory job needed. " + short_note).strip(),
        section_id="memory"))
    parts.append(H.section(
        "Per-block coverage",
        _chart("chart-coverage", not run.versions.empty,
               lambda: coverage_figure(run.versions, span), "No aggregation recorded coverage."),
        note="Number of merged updates whose submodel covered each block, per version.",
        section_id="coverage"))
    parts.append(H.section(
        "Network traffic",
        _chart("chart-traffic", not ev.empty, lambda: traffic_figure(ev, span),
               "No transfers were recorded."),
        note="Bytes of each download and upload spread evenly over its interval, per time bin.",
        section_id="traffic"))
    parts.append(H.section(
        f"Energy (total {_known(m, 'energy_j', fmt_energy)})",
        _chart("chart-energy", not dev.empty and bool(dev["energy_j"].notna().any()),
               lambda: energy_figure(dev, lanes.devices),
               "Energy is unknown: the run is incomplete and has no device accounts." if not m["complete"]
               else "No device table was recorded."),
        note=short_note, section_id="energy"))
    subtitle = f"fleetsim run report — {m['devices']:,} devices, {fmt_s(m['makespan_s'])} simulated"
    if not m["complete"]:
        subtitle += " (incomplete run)"
    return H.page(f"{m['name']}", subtitle, "".join(parts))


def write_run_report(run_dir: Path, out_path: Path | None = None) -> Path:
    """Write the report of the run in `run_dir` (default `run_dir/report.html`); return its path."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    out = Path(out_path) if out_path is not None else run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, build_run_page(run))  # a reader never sees half a report
    return out
