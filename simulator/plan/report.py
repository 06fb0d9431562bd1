"""plan.html: the chosen fleet, the Pareto fronts, and why the cheaper fleets fail.

One self-contained page in the style of the run reports (:mod:`simulator.report.html`): plotly.js
inlined once, every user string escaped. Candidates that did not reach the goal are drawn at the
deadline (hollow markers), so the price-vs-time chart shows both what was fast enough and what was
not; the screen's candidates (no run) appear in the "why" chart and the table only.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from simulator.plan.outputs import price_text
from simulator.plan.rows import REASONS, Row
from simulator.plan.table import closest, count_column
from simulator.report import html as H
from simulator.report.style import fmt_energy, fmt_num, fmt_pct, fmt_s, style
from simulator.sweep.results import energy_unit_of
from simulator.output.folder import atomic_write_text

if TYPE_CHECKING:
    from simulator.plan.runner import PlanResult

REASON_COLORS = {
    "meets": "#54A24B", "too_slow": "#F58518", "stalled": "#5A5A5A", "over_energy": "#B279A2",
    "accuracy_not_reached": "#9D755D", "failed": "#E45756", "out_of_memory": "#E45756",
    "too_few_devices": "#BAB0AC", "over_budget": "#72B7B2", "screened_out": "#EECA3B", "not_trained": "#4C78A8",
}
MAX_TABLE_ROWS = 1_000


def _fleet_text(row: Row, labels: list[str]) -> str:
    return ", ".join(f"{n} × {label}" for label, n in zip(labels, row.counts) if n) or "no device"


def _hover(row: Row, labels: list[str]) -> str:
    figures = (f"price {price_text(row.price)}<br>time to goal {fmt_s(row.time_to_goal_s)}<br>"
               f"energy {fmt_energy(row.energy_j)}<br>versions {fmt_num(row.versions)}")
    why = f"<br>{H.esc(row.why_not)}" if row.why_not else ""
    return f"{H.esc(_fleet_text(row, labels))}<br>{figures}{why}"


def scatter(result: "PlanResult", axis: str, title: str) -> go.Figure | None:
    """Price against `axis` (time_to_goal_s or energy_j) for every candidate that ran."""
    labels, goal = result.loaded.labels, result.loaded.spec.goal
    ran = [r for r in result.table.rows if r.ran]
    if not ran:
        return None
    # energy in the unit of the chosen fleet's card (fmt_energy: Wh for a fleet's hours), not raw joules
    chosen_j = result.best.energy_j if result.best is not None else math.nan
    unit, scale = (energy_unit_of([chosen_j] if math.isfinite(chosen_j) else [r.energy_j for r in ran])
                   if axis == "energy_j" else ("s", 1.0))
    fig = go.Figure()
    for reason in REASONS:
        group = [r for r in ran if r.reason == reason]
        if not group:
            continue
        ys = [getattr(r, axis) for r in group]
        missing = [not math.isfinite(y) for y in ys]
        if axis == "time_to_goal_s":
            ys = [goal.deadline_s if m else y for y, m in zip(ys, missing)]
        keep = [i for i, y in enumerate(ys) if math.isfinite(y)]
        if not keep:
            continue
        hollow = reason != "meets"
        fig.add_trace(go.Scatter(
            x=[group[i].price for i in keep], y=[ys[i] / scale for i in keep], mode="markers", name=REASONS[reason],
            marker=dict(color=REASON_COLORS.get(reason, "#999"), size=9,
                        symbol="circle-open" if hollow else "circle", line=dict(width=2)),
            text=[_hover(group[i], labels) for i in keep], hovertemplate="%{text}<extra></extra>"))
    column = "pareto_time" if axis == "time_to_goal_s" else "pareto_energy"
    frame = result.table.frame
    front = sorted((r for r in ran if bool(frame.loc[frame.candidate == r.name, column].iloc[0])),
                   key=lambda r: r.price)
    if front:
        fig.add_trace(go.Scatter(x=[r.price for r in front], y=[getattr(r, axis) / scale for r in front],
                                 mode="lines", line=dict(color="#54A24B", shape="hv", width=1.5),
                                 name="Pareto front", hoverinfo="skip"))
    best = result.best
    if best is not None and math.isfinite(getattr(best, axis)):
        fig.add_trace(go.Scatter(x=[best.price], y=[getattr(best, axis) / scale], mode="markers", name="chosen",
                                 marker=dict(symbol="star", size=18, color="#EECA3B", line=dict(color="#222", width=1)),
                                 text=[_hover(best, labels)], hovertemplate="%{text}<extra>chosen</extra>"))
    if axis == "time_to_goal_s":
        fig.add_hline(y=goal.deadline_s, line=dict(color="#E45756", dash="dash", width=1.5),
                      annotation_text="deadline (hollow: goal not reached by then)",
                      annotation_position="top left")
    fig.update_xaxes(title="price")
    fig.update_yaxes(title="time to goal (s)" if axis == "time_to_goal_s" else f"energy to goal ({unit})")
    values = [getattr(r, axis) for r in ran if math.isfinite(getattr(r, axis)) and getattr(r, axis) > 0]
    if axis == "time_to_goal_s":
        values.append(goal.deadline_s)
    if values and max(values) > 20 * min(values):   # fast fleets would sit on the axis under a linear scale
        fig.update_yaxes(type="log")
    fig.update_layout(showlegend=True)
    return style(fig, height_px=460, title=title)


def _cheaper(result: "PlanResult") -> list[Row]:
    best = result.best
    rows = result.table.rows
    if best is None:
        return [r for r in rows if not r.feasible]
    return [r for r in rows if r.price < best.price and not r.feasible]


def why_chart(result: "PlanResult") -> go.Figure | None:
    cheaper = _cheaper(result)
    if not cheaper:
        return None
    counts = Counter(r.reason for r in cheaper)
    reasons = sorted(counts, key=lambda k: (-counts[k], k))
    fig = go.Figure(go.Bar(x=[counts[k] for k in reasons], y=[REASONS.get(k, k) for k in reasons], orientation="h",
                           marker_color=[REASON_COLORS.get(k, "#999") for k in reasons],
                           hovertemplate="%{y}: %{x} fleets<extra></extra>"))
    fig.update_xaxes(title="candidate fleets")
    fig.update_yaxes(autorange="reversed")
    return style(fig, height_px=max(200, 60 + 40 * len(reasons)))


def _rows_table(rows: list[Row], labels: list[str], table_id: str) -> str:
    header = ["candidate", "result", *labels, "price", "time to goal", "versions", "energy", "utilization"]
    body = [[r.name, REASONS["meets"] if r.feasible else r.why_not, *[str(n) for n in r.counts],
             price_text(r.price), fmt_s(r.time_to_goal_s), fmt_num(r.versions), fmt_energy(r.energy_j),
             fmt_pct(r.fleet_utilization)] for r in rows]
    return H.data_table(header, body, table_id, wrap=True)  # "result" is a sentence: wrap, don't scroll


def _chosen_section(result: "PlanResult") -> str:
    best, labels = result.best, result.loaded.labels
    if best is None:
        body = ("<p>No candidate judged meets the goal and the constraints. The closest runs:</p>"
                + _rows_table(closest(result.table.rows), labels, "closest-table"))
        return H.section("No candidate meets the goal", body, section_id="chosen")
    cards = H.cards([("price", price_text(best.price)), ("time to goal", fmt_s(best.time_to_goal_s)),
                     ("energy to goal", fmt_energy(best.energy_j)),
                     ("fleet utilization", fmt_pct(best.fleet_utilization)),
                     ("devices", fmt_num(best.devices))])
    facts = H.facts_table([("fleet", _fleet_text(best, labels)), ("candidate", best.name),
                           ("scenario", "best.yaml (fleetsim run best.yaml)")])
    return H.section("Chosen fleet", facts + cards, section_id="chosen")


def _kinds_section(result: "PlanResult") -> str:
    entries = result.loaded.spec.catalogue
    header = ["entry", "profile", "unit price", "link", "power mode", "counts", "holds the model", "submodel memory"]
    body = [[e.label, e.profile, price_text(e.unit_price), e.link, e.power_mode or "default",
             f"{e.min_count} … {e.max_count}", "yes" if k.fits_memory else "NO (held at min_count)", k.memory_text()]
            for e, k in zip(entries, result.feasibility.kinds)]
    return H.section("Catalogue", H.data_table(header, body, "kinds-table"),
                     note=f"Memory from the planner for {result.feasibility.model_label}, once per entry.",
                     section_id="kinds")


def _search_section(result: "PlanResult") -> str:
    o = result.outcome
    s = result.loaded.spec.search
    facts = [("method", o.method), ("compositions in the space", fmt_num(o.space_size)),
             ("candidates simulated", fmt_num(o.runs)), ("judged without a run", fmt_num(
                 sum(not r.ran for r in result.table.rows))), ("seed", str(result.loaded.seed))]
    if o.method == "optuna":
        facts += [("sampler", s.sampler), ("batch", str(s.batch))]
    if result.trained:
        facts.append(("finalists trained", str(result.trained)))
    if o.note:
        facts.append(("note", o.note))
    note = ("Judged without a run: kinds out of memory, fleets with too few devices that can train for the "
            "algorithm to merge, fleets over max_price. Nothing is pruned by time: a larger fleet is not "
            "always faster, nor a smaller one always slower.")
    return H.section("How it was searched", H.facts_table(facts), note=note, section_id="search")


def _all_section(result: "PlanResult") -> str:
    frame = result.table.frame
    labels = result.loaded.labels
    shown = frame.head(MAX_TABLE_ROWS)
    header = ["candidate", *labels, "price", "feasible", "time to goal", "versions", "energy", "utilization",
              "OOM kinds", "why not"]
    body = [[row["candidate"], *[str(row[count_column(lb)]) for lb in labels], price_text(row["price"]),
             "yes" if row["feasible"] else "no", fmt_s(row["time_to_goal_s"]), fmt_num(row["versions"]),
             fmt_energy(row["energy_j"]), fmt_pct(row["fleet_utilization"]), row["oom_kinds"], row["why_not"]]
            for row in shown.to_dict("records")]
    note = f"First {MAX_TABLE_ROWS:,} of {len(frame):,} rows; plan.csv has all." if len(frame) > MAX_TABLE_ROWS else ""
    return H.section("Every candidate judged (by price)", H.data_table(header, body, "plan-table", wrap=True), note=note,
                     section_id="candidates")


def _chart(fig: go.Figure | None, div_id: str, empty: str) -> str:
    return H.figure_div(fig, div_id) if fig is not None else H.empty_chart(div_id, empty)


def write_plan_report(result: "PlanResult", out_path: Path) -> Path:
    loaded = result.loaded
    spec = loaded.spec
    why = _cheaper(result)
    why_title = "Why the cheaper fleets fail" if result.best is not None else "Why the fleets fail"
    body = (
        _chosen_section(result)
        + H.section("Price vs time to goal", _chart(scatter(result, "time_to_goal_s", ""), "chart-plan-time",
                                                    "No candidate was run."),
                    note="Filled: meets the goal; hollow: did not (drawn at the deadline). The line is the Pareto "
                         "front of the feasible fleets; the star is the chosen one.", section_id="plan-time")
        + H.section("Price vs energy to goal", _chart(scatter(result, "energy_j", ""), "chart-plan-energy",
                                                      "No candidate was run."),
                    note="Energy of the whole fleet until the goal (or the deadline, hollow).",
                    section_id="plan-energy")
        + H.section(why_title, _chart(why_chart(result), "chart-plan-why", "No cheaper fleet was judged.")
                    + (_rows_table(sorted(why, key=lambda r: (-r.price, r.name))[:30], loaded.labels, "why-table")
                       if why else ""),
                    note="Dearest first (at most 30 listed).", section_id="plan-why")
        + _kinds_section(result) + _search_section(result) + _all_section(result)
    )
    subtitle = f"minimise {spec.minimise} · goal {spec.goal.text()} · {result.outcome.method}"
    atomic_write_text(out_path, H.page(f"fleetsim plan {loaded.name}", subtitle, body))
    return out_path
