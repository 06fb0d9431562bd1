"""Per-run figures and mean ± std tables for docs/results.md (used by scripts/reproduce_paper.py).

Everything is read back from run folders (summary.json, evals/devices parquet), never from memory of
what just ran, so the page can be rebuilt from ``reports/paper/`` alone (``--reuse``).

Definitions (the page repeats them):

- accuracy at the budget: the global model's accuracy at the last evaluation at or before the
  scenario's ``stop.sim_time_s`` (the summary's ``final_accuracy``); at half budget likewise;
- time to target: simulated time of the first of :data:`TARGET_PATIENCE` consecutive evaluations at
  or above the target (the scenario rule ``stop.target_patience``, one definition:
  :class:`simulator.config.scenario.TargetRule`), so a curve that crosses, dips and crosses again is
  timed from where it stayed up; NaN if it never holds;
- utilization: fleet compute-busy seconds ÷ (devices × wall seconds), the summary's
  ``fleet_utilization`` — a device that runs out of memory never computes and counts as 0;
- peak memory of a device: the largest training footprint it actually allocated (devices.parquet);
  a device that could not fit its submodel allocated nothing and is flagged OOM with the memory it
  was asked for (summary ``submodels_by_profile``);
- memory demand of the fleet: mean over the 16 devices of the peak each one trained with, an OOM
  device counted at what it was asked for (so a method cannot look lean by crashing);
- memory allocated by the fleet: the same mean with an OOM device counted at 0 (what was really used).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

CLASS_ORDER = ("jetson-nano-4gb", "jetson-tx2", "jetson-xavier-nx", "jetson-agx-xavier", "jetson-agx-orin-64gb")
SHORT = {"jetson-nano-4gb": "Nano 4GB", "jetson-tx2": "TX2", "jetson-xavier-nx": "Xavier NX",
         "jetson-agx-xavier": "AGX Xavier", "jetson-agx-orin-64gb": "AGX Orin 64GB"}
GB = 1e9
# evaluations the target must hold for (every 60 simulated s on the paper testbed: three minutes)
TARGET_PATIENCE = 3


def accuracy_at(evals: pd.DataFrame, time_s: float) -> float:
    """Accuracy of the last evaluation at or before `time_s` (NaN if none)."""
    before = evals[evals["time_s"] <= time_s + 1e-9]
    return float(before["accuracy"].iloc[-1]) if len(before) else math.nan


def tail_accuracy(evals: pd.DataFrame, budget_s: float, share: float = 0.1) -> float:
    """Mean accuracy of the evaluations in the last `share` of the budget: steadier than one point
    when a method's accuracy swings between merges."""
    tail = evals[(evals["time_s"] >= (1 - share) * budget_s - 1e-9) & (evals["time_s"] <= budget_s + 1e-9)]
    return float(tail["accuracy"].mean()) if len(tail) else math.nan


def time_to(evals: pd.DataFrame, target: float, patience: int = TARGET_PATIENCE) -> float:
    """Simulated time of the first of `patience` consecutive evaluations (in time order) whose
    accuracy reaches `target`; NaN if the target never holds that long."""
    from simulator.config.scenario import TargetRule

    rule = TargetRule(target, patience)
    for time_s, accuracy in zip(evals["time_s"], evals["accuracy"]):
        reached = rule.observe(float(time_s), float(accuracy))
        if reached is not None:
            return reached
    return math.nan


def run_metrics(run_dir: Path, target: float, budget_s: float) -> dict[str, Any]:
    """The page's figures for one run folder."""
    summary = json.loads((run_dir / "summary.json").read_text())
    evals = pd.read_parquet(run_dir / "evals.parquet").sort_values(["time_s", "version"], kind="stable")
    devices = pd.read_parquet(run_dir / "devices.parquet")
    planned = summary.get("submodels_by_profile", {})
    demand = [float(r.peak_memory_bytes) if r.peak_memory_bytes > 0
              else float(planned.get(r.profile, {}).get("peak_memory_bytes", 0.0))
              for r in devices.itertuples()]
    out: dict[str, Any] = {
        "algorithm": summary["algorithm"],
        "scenario_name": summary["scenario_name"],
        "seed": int(summary["seed"]),
        "acc_budget": accuracy_at(evals, budget_s),
        "acc_half": accuracy_at(evals, budget_s / 2),
        "acc_tail": tail_accuracy(evals, budget_s),
        "best_acc": float(evals["accuracy"].max()) if len(evals) else math.nan,
        "time_to_target_s": time_to(evals, target),
        "utilization": float(summary["fleet_utilization"]),
        "mem_demand_gb": float(np.mean(demand)) / GB,
        "mem_alloc_gb": float(devices["peak_memory_bytes"].mean()) / GB,
        "compute_h": float(devices["compute_s"].sum()) / 3600,
        "energy_kj": float(summary["energy_j"]) / 1e3,
        "versions": float(summary["versions"]),
        "ooms": float(summary["ooms"]),
        "oom_devices": float(len(summary.get("oom_devices", []))),
        "dropped": float(summary["dropped"]),
        "staleness": float((summary.get("staleness") or {}).get("mean") or 0.0),
        "comm_share": float(summary["comm_share"]),
        "idle_share": float(summary["idle_share"]),
    }
    for profile, frame in devices.groupby("profile"):
        oom = bool((frame["ooms"] > 0).any() and (frame["peak_memory_bytes"] == 0).any())
        out[f"mem:{profile}"] = float(frame["peak_memory_bytes"].max()) / GB
        out[f"oom:{profile}"] = oom
        out[f"need:{profile}"] = float(planned.get(profile, {}).get("peak_memory_bytes", math.nan)) / GB
        out[f"usable:{profile}"] = float(frame["usable_memory_bytes"].iloc[0]) / GB
        out[f"util:{profile}"] = float(frame["utilization"].mean())
    return out


NUMERIC = ("acc_budget", "acc_half", "acc_tail", "best_acc", "time_to_target_s", "utilization", "mem_demand_gb",
           "mem_alloc_gb", "compute_h", "energy_kj", "versions", "ooms", "oom_devices", "dropped",
           "staleness", "comm_share", "idle_share")


def aggregate(rows: Iterable[dict[str, Any]], by: str) -> pd.DataFrame:
    """Mean, sample std (ddof 1) and count of non-NaN values per `by` group, in first-seen order;
    ``<m>_n`` counts the runs where the metric exists (e.g. target reached)."""
    frame = pd.DataFrame(list(rows))
    order = list(dict.fromkeys(frame[by]))
    out = []
    for key in order:
        group = frame[frame[by] == key]
        row: dict[str, Any] = {by: key, "runs": len(group)}
        for col in group.columns:
            if col in (by, "seed", "algorithm", "scenario_name", "label"):
                continue
            if col.startswith("oom:"):
                row[col] = int(group[col].fillna(False).astype(bool).sum())
                continue
            values = group[col].to_numpy(dtype=float)
            values = values[~np.isnan(values)]
            row[f"{col}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{col}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{col}_n"] = int(len(values))
        out.append(row)
    return pd.DataFrame(out)


def fmt(mean: float, std: float, spec: str = "{:.3f}", scale: float = 1.0) -> str:
    """``mean ± std`` (std left out when NaN, a dash when the mean is NaN)."""
    if mean is None or math.isnan(mean):
        return "–"
    text = spec.format(mean * scale)
    if std is not None and not math.isnan(std):
        text += " ± " + spec.format(std * scale)
    return text


def cell(row: pd.Series, metric: str, spec: str = "{:.3f}", scale: float = 1.0) -> str:
    text = fmt(row.get(f"{metric}_mean", math.nan), row.get(f"{metric}_std", math.nan), spec, scale)
    n, runs = row.get(f"{metric}_n", row["runs"]), row["runs"]
    if text != "–" and n < runs:
        text += f" ({n}/{runs})"
    elif text == "–" and metric == "time_to_target_s":
        text = f"not reached (0/{runs})"
    return text


def markdown_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A GitHub markdown table; `align` is one letter per column (l/r), default l then r."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = [":---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def method_table(agg: pd.DataFrame, by: str, target: float) -> str:
    """Headline figures per method (or ablation variant), mean ± std over seeds."""
    header = [by, "acc. at budget", "mean acc. last 10 %", "acc. at ½ budget", f"time to {target:.0%} (s)", "utilization",
              "mean peak mem. (GB)", "device-hours computing", "versions", "OOM devices", "dropped"]
    rows = []
    for _, r in agg.iterrows():
        rows.append([f"`{r[by]}`", cell(r, "acc_budget"), cell(r, "acc_tail"), cell(r, "acc_half"),
                     cell(r, "time_to_target_s", "{:,.0f}"), cell(r, "utilization", "{:.2f}"),
                     cell(r, "mem_demand_gb", "{:.2f}"), cell(r, "compute_h", "{:.1f}"),
                     cell(r, "versions", "{:,.0f}"), cell(r, "oom_devices", "{:.0f}"), cell(r, "dropped", "{:,.0f}")])
    return markdown_table(header, rows)


def memory_table(agg: pd.DataFrame, by: str) -> str:
    """Peak training memory per device class (largest over the class, mean over seeds); OOM cells
    show the memory asked for against what the board has."""
    classes = [c for c in CLASS_ORDER if f"mem:{c}_mean" in agg]
    header = [by] + [SHORT.get(c, c) for c in classes] + ["fleet mean (OOM at demand)"]
    rows = []
    for _, r in agg.iterrows():
        cells = [f"`{r[by]}`"]
        for c in classes:
            if r.get(f"oom:{c}", 0):
                cells.append(f"**OOM** ({r[f'need:{c}_mean']:.2f} > {r[f'usable:{c}_mean']:.2f})")
            else:
                cells.append(fmt(r[f"mem:{c}_mean"], r[f"mem:{c}_std"], "{:.2f}"))
        cells.append(cell(r, "mem_demand_gb", "{:.2f}"))
        rows.append(cells)
    return markdown_table(header, rows)


def utilization_table(agg: pd.DataFrame, by: str) -> str:
    classes = [c for c in CLASS_ORDER if f"util:{c}_mean" in agg]
    header = [by, "fleet"] + [SHORT.get(c, c) for c in classes] + ["comm. share", "idle share"]
    rows = [[f"`{r[by]}`", cell(r, "utilization", "{:.2f}")]
            + [fmt(r[f"util:{c}_mean"], r[f"util:{c}_std"], "{:.2f}") for c in classes]
            + [cell(r, "comm_share", "{:.2f}"), cell(r, "idle_share", "{:.2f}")] for _, r in agg.iterrows()]
    return markdown_table(header, rows)


def relative(co: float, base: float) -> float:
    """(co − base) / base, NaN when either is missing or base is 0."""
    if any(math.isnan(v) for v in (co, base)) or base == 0:
        return math.nan
    return co / base - 1.0


def claims(agg: pd.DataFrame, by: str, ours: str = "co-s2p") -> pd.DataFrame:
    """Co-S²P against each baseline on the four claimed axes (means over seeds)."""
    me = agg[agg[by] == ours].iloc[0]
    rows = []
    for _, r in agg[agg[by] != ours].iterrows():
        rows.append({
            "baseline": r[by],
            "acc_pp": 100 * (me["acc_budget_mean"] - r["acc_budget_mean"]),
            "acc_half_pp": 100 * (me["acc_half_mean"] - r["acc_half_mean"]),
            "acc_tail_pp": 100 * (me["acc_tail_mean"] - r["acc_tail_mean"]),
            "util_x": me["utilization_mean"] / r["utilization_mean"] if r["utilization_mean"] else math.nan,
            "mem_rel": relative(me["mem_demand_gb_mean"], r["mem_demand_gb_mean"]),
            "mem_alloc_rel": relative(me["mem_alloc_gb_mean"], r["mem_alloc_gb_mean"]),
            "time_rel": relative(me["time_to_target_s_mean"], r["time_to_target_s_mean"])
            if r["time_to_target_s_n"] == r["runs"] and me["time_to_target_s_n"] == me["runs"] else math.nan,
            "baseline_reached": f"{int(r['time_to_target_s_n'])}/{int(r['runs'])}",
            "baseline_ooms": float(r["oom_devices_mean"]),
        })
    return pd.DataFrame(rows)


def claims_table(c: pd.DataFrame) -> str:
    def pct(v: float, signed: bool = True) -> str:
        return "–" if math.isnan(v) else (f"{100 * v:+.0f} %" if signed else f"{100 * v:.0f} %")

    header = ["vs baseline", "Δ acc. at budget (pp)", "Δ mean acc. last 10 % (pp)", "Δ acc. at ½ budget (pp)", "utilization ×",
              "Δ mean peak memory (OOM at demand)", "Δ mean peak memory (OOM at 0)",
              "Δ time to target", "baseline reached target", "baseline OOM devices"]
    rows = [[f"`{r.baseline}`", f"{r.acc_pp:+.1f}", f"{r.acc_tail_pp:+.1f}", f"{r.acc_half_pp:+.1f}", f"{r.util_x:.2f}×",
             pct(r.mem_rel), pct(r.mem_alloc_rel), pct(r.time_rel), r.baseline_reached,
             f"{r.baseline_ooms:.0f}"] for r in c.itertuples()]
    return markdown_table(header, rows)
