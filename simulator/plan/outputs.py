"""What a plan leaves in its folder, and the summary it prints.

``plan.parquet`` / ``plan.csv`` (the table), ``best.yaml`` (the base scenario with the chosen fleet
and the goal as its stop condition: ``fleetsim run best.yaml`` runs it as it is), and the rich
table on the terminal. ``plan.html`` is written by :mod:`simulator.plan.report`.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from simulator.plan.fleets import Fleets
from simulator.plan.rows import REASONS, Row
from simulator.plan.spec import Goal, LoadedPlan
from simulator.plan.table import PlanTable, closest
from simulator.output.folder import atomic_write_text

TABLE_FILES = ("plan.parquet", "plan.csv")


def goal_stop(goal: Goal) -> dict[str, Any]:
    """The goal as a scenario's stop condition."""
    if goal.versions is not None:
        return {"sim_time_s": goal.deadline_s, "max_versions": goal.versions}
    return {"sim_time_s": goal.deadline_s, "target_accuracy": goal.target_accuracy}


def write_tables(plan_dir: Path, table: PlanTable) -> None:
    table.frame.to_parquet(plan_dir / "plan.parquet", index=False)
    table.frame.to_csv(plan_dir / "plan.csv", index=False)


def write_best(plan_dir: Path, loaded: LoadedPlan, fleets: Fleets, best: Row | None, minimise: str) -> Path | None:
    """best.yaml for the chosen fleet; a best.yaml of an earlier run of this plan is removed when no
    candidate meets the goal now (the folder is a plan folder, so fleetsim wrote it)."""
    path = plan_dir / "best.yaml"
    if best is None:
        path.unlink(missing_ok=True)
        return None
    report = bool((loaded.base.get("output") or {}).get("report", True))
    goal = loaded.spec.goal
    scenario = fleets.scenario(best.counts, goal_stop(goal), f"{loaded.name}-best", report=report)
    timing = ""
    if goal.versions is not None:
        # as the plan judged it: a training run may differ (samples_per_client applies to timing-only runs)
        scenario["timing_only"] = True
        timing = "# timing-only, as the plan ran it (timing_only: true).\n"
    header = (f"# fleetsim plan {loaded.name}: the fleet chosen to minimise {minimise} for the goal "
              f"{goal.text()}.\n"
              f"# {best.name}: price {price_text(best.price)}, goal reached at {best.time_to_goal_s:,.1f} s, "
              f"energy {best.energy_j:,.0f} J (seed {loaded.seed}).\n{timing}"
              f"# Run it with:  fleetsim run {path}\n")
    atomic_write_text(path, header + yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True))
    return path


# ------------------------------------------------------------------ terminal


def _num(x: float, fmt: str, none: str = "–") -> str:
    return none if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def price_text(price: float) -> str:
    return f"{price:,.0f}" if float(price).is_integer() else f"{price:,.2f}"


def _row_cells(row: Row, mark: str, result: bool) -> list[str]:
    counts = [str(n) if n else "·" for n in row.counts]
    if result:   # the closest misses: versions reached and the short reason (plan.csv has the sentence)
        return [mark, *counts, price_text(row.price), _num(row.versions, "{:,.0f}"),
                REASONS.get(row.reason, row.reason)]
    return [mark, *counts, price_text(row.price), _num(row.time_to_goal_s, "{:,.1f}"),
            _num(row.energy_j / 1e3 if row.ran else math.nan, "{:,.1f}"), _num(row.fleet_utilization, "{:.2f}")]


def _table(title: str, labels: list[str], result: bool) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for label in labels:
        table.add_column(label, justify="right")
    shown = ("price", "versions") if result else ("price", "to goal s", "energy kJ", "util.")
    for name in shown:
        table.add_column(name, justify="right", no_wrap=True)
    if result:
        table.add_column("result", justify="left", no_wrap=True)
    return table


def pareto_caption(front: int, shown: int) -> str:
    """What the main table's marks and abbreviations mean, and how many front rows it leaves out: the
    rows were marked "pareto" without saying on which front (time, not energy), "util." was a bare
    fraction, and a front longer than `shown` was cut without a word."""
    text = ("pareto: no cheaper fleet reaches the goal sooner (the price-vs-time front); "
            "util.: fleet utilization, the share of device time spent computing")
    if front > shown:
        text += f"; {front - shown:,} more on the front in plan.csv (pareto_time)"
    return text


def summary_tables(loaded: LoadedPlan, table: PlanTable, minimise: str, shown: int = 8) -> list[Table]:
    """The chosen fleet and the Pareto front; why the cheaper fleets fail; or the closest misses."""
    labels = loaded.labels
    title = f"plan {loaded.name}: minimise {minimise} · goal {loaded.spec.goal.text()}"
    out = []
    best = table.best
    if best is not None:
        main = _table(title, labels, result=False)
        main.add_row(*_row_cells(best, "★ best", result=False))
        front = [r for r in table.rows if r.name != best.name and bool(
            table.frame.loc[table.frame.candidate == r.name, "pareto_time"].iloc[0])]
        for row in front[:shown]:
            main.add_row(*_row_cells(row, "pareto", result=False))
        main.caption = pareto_caption(len(front), shown)
        out.append(main)
        cheaper = [r for r in table.rows if r.price < best.price and not r.feasible]
        if cheaper:
            why = Table(title=f"why the {len(cheaper)} cheaper fleet{'s' if len(cheaper) != 1 else ''} judged fail",
                        title_justify="left")
            why.add_column("reason", no_wrap=True)
            why.add_column("fleets", justify="right")
            why.add_column("dearest of them", overflow="fold", ratio=1)
            counts = Counter(r.reason for r in cheaper)
            for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
                example = max((r for r in cheaper if r.reason == reason), key=lambda r: (r.price, r.name))
                why.add_row(REASONS.get(reason, reason), str(n), f"{example.name} ({price_text(example.price)}): "
                            f"{example.why_not}")
            out.append(why)
    else:
        miss = _table(f"NO candidate meets {loaded.spec.goal.text()}; the closest:", labels, result=True)
        for row in closest(table.rows):
            miss.add_row(*_row_cells(row, "", result=True))
        out.append(miss)
    return out
