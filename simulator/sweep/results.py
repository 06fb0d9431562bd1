"""The sweep's tables: one row per finished variant, and mean ± std over seeds per combination.

Rows come from each variant's ``summary.json`` only (never from memory of what just ran), so a resumed
sweep, a sweep run on Ray and one run locally give the same tables; rows are sorted by variant name.
Swept values that are mappings or lists appear as compact JSON text, so they can be grouped on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from simulator.sweep.keys import is_scalar

METRICS = (
    "final_accuracy", "time_to_target_s", "makespan_s", "versions", "fleet_utilization", "energy_j",
    "ooms", "dropped", "lost", "staleness_mean", "jobs", "accepted",
    # normalised: runs of one sweep can differ in length (a target reached, a version cap, interrupted)
    "energy_per_hour_j", "energy_per_version_j", "bytes_per_hour", "versions_per_hour",
)
# A run that stopped for one of these reasons did not reach its stop condition (see report/metrics.py).
INTERRUPTED_REASONS = ("interrupted", "killed", "failed", "error")
TEXT_COLUMNS = ("stop_reason",)
FILES = ("results.parquet", "results.csv", "aggregate.parquet", "aggregate.csv")


def metrics_of(summary: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one run's summary.json (missing or null → NaN)."""
    def number(value: Any) -> float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan

    staleness = summary.get("staleness") or {}
    out: dict[str, Any] = {m: number(summary.get(m)) for m in METRICS if m != "staleness_mean"}
    out["staleness_mean"] = number(staleness.get("mean"))
    span_h = out["makespan_s"] / 3600.0 if out["makespan_s"] > 0 else math.nan
    versions = out["versions"] if out["versions"] > 0 else math.nan
    traffic = number(summary.get("bytes_down")) + number(summary.get("bytes_up"))
    out.update(energy_per_hour_j=out["energy_j"] / span_h, energy_per_version_j=out["energy_j"] / versions,
               bytes_per_hour=traffic / span_h, versions_per_hour=out["versions"] / span_h)
    out["stop_reason"] = str(summary.get("stop_reason", ""))
    return {m: out[m] for m in (*METRICS, *TEXT_COLUMNS)}


def is_interrupted(stop_reason: Any) -> bool:
    """True when a run's stop_reason says it did not reach its stop condition."""
    return str(stop_reason).split(":")[0].strip().lower() in INTERRUPTED_REASONS


def _cell(value: Any) -> Any:
    return value if is_scalar(value) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _uniform_column(values: list[Any]) -> list[Any]:
    """Numbers (and nulls) stay numbers; any text in a column makes the whole column text."""
    if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
        return [math.nan if v is None else v for v in values]
    if all(v is None or isinstance(v, bool) for v in values):
        return values
    return ["null" if v is None else str(v) for v in values]


def results_table(rows: list[tuple[str, dict[str, Any], int, dict[str, Any]]], keys: list[str]) -> pd.DataFrame:
    """One row per variant: ``variant``, the swept keys, ``seed``, then the metrics; sorted by variant."""
    rows = sorted(rows, key=lambda r: r[0])
    columns: dict[str, list[Any]] = {"variant": [r[0] for r in rows]}
    for key in keys:
        columns[key] = _uniform_column([_cell(r[1].get(key)) for r in rows])
    columns["seed"] = [int(r[2]) for r in rows]
    for metric in (*METRICS, *TEXT_COLUMNS):
        columns[metric] = [r[3][metric] for r in rows]
    frame = pd.DataFrame(columns)
    for metric in METRICS:
        frame[metric] = frame[metric].astype("float64")
    return frame


def aggregate_table(results: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per combination of swept values: ``runs``, ``target_reached``, and ``<metric>_mean`` /
    ``<metric>_std`` over seeds (sample std, ddof=1; NaN with one seed). NaN metrics (e.g. a target
    never reached) are left out of that metric's mean and std."""
    out_rows = []
    if results.empty:
        return pd.DataFrame(columns=[*keys, "runs", "target_reached", "interrupted",
                                     *[f"{m}_{s}" for m in METRICS for s in ("mean", "std")]])
    grouped = results.groupby(keys, dropna=False, sort=True) if keys else [((), results)]
    for group_key, frame in grouped:
        group_key = group_key if isinstance(group_key, tuple) else (group_key,)
        row: dict[str, Any] = dict(zip(keys, group_key))
        row["runs"] = int(len(frame))
        row["target_reached"] = int(frame["time_to_target_s"].notna().sum())
        row["interrupted"] = int(frame["stop_reason"].map(is_interrupted).sum()) if "stop_reason" in frame else 0
        for metric in METRICS:
            values = frame[metric].to_numpy(dtype=float)
            values = values[~np.isnan(values)]
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        out_rows.append(row)
    return pd.DataFrame(out_rows)


def write_tables(sweep_dir: Path, results: pd.DataFrame, aggregate: pd.DataFrame) -> None:
    results.to_parquet(sweep_dir / "results.parquet", index=False)
    results.to_csv(sweep_dir / "results.csv", index=False)
    aggregate.to_parquet(sweep_dir / "aggregate.parquet", index=False)
    aggregate.to_csv(sweep_dir / "aggregate.csv", index=False)


# ------------------------------------------------------------------ printing

SHOWN = (("final_accuracy", "accuracy", "{:.3f}"), ("time_to_target_s", "to target s", "{:,.0f}"),
         ("makespan_s", "makespan s", "{:,.0f}"), ("versions", "versions", "{:,.1f}"),
         ("fleet_utilization", "util.", "{:.2f}"), ("energy_j", "energy", "{:,.3g}"),
         ("staleness_mean", "staleness", "{:.2f}"), ("ooms", "OOMs", "{:,.1f}"),
         ("dropped", "dropped", "{:,.1f}"), ("lost", "lost", "{:,.1f}"))


def _mean_std(mean: float, std: float, fmt: str, scale: float = 1.0) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = fmt.format(mean / scale)
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += " ± " + fmt.format(std / scale)
    return text


def _key_cell(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "null" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def energy_unit_of(values_j: Any) -> tuple[str, float]:
    """The unit that fits a column of energies: J below 1 Wh, Wh below 1 kWh, else kWh."""
    arr = np.abs(np.asarray([] if values_j is None else values_j, dtype=float))
    top = float(np.nanmax(arr)) if arr.size and np.isfinite(arr).any() else 0.0
    return ("kWh", 3.6e6) if top >= 3.6e6 else ("Wh", 3600.0) if top >= 3600.0 else ("J", 1.0)


def render_aggregate(aggregate: pd.DataFrame, keys: list[str], title: str = "sweep") -> Table:
    """The aggregate as a rich Table: swept values, runs, then mean ± std of the headline metrics.
    Metric columns that are empty for every row (e.g. accuracy in timing-only sweeps) are left out.
    The caption says what ± is and what the abbreviated columns hold (`aggregate_caption`)."""
    table = Table(title=title, title_justify="left")
    for key in keys:
        table.add_column(key, justify="left")
    table.add_column("runs", justify="right")
    shown = [(m, label, fmt) for m, label, fmt in SHOWN
             if f"{m}_mean" in aggregate and aggregate[f"{m}_mean"].notna().any()]
    energy_unit, energy_scale = energy_unit_of(aggregate.get("energy_j_mean"))
    for metric, label, _ in shown:
        table.add_column(f"{label} {energy_unit}" if metric == "energy_j" else label, justify="right")
    for row in aggregate.to_dict("records"):  # keeps each column's type (iterrows makes ints floats)
        cells = [_key_cell(row[k]) for k in keys] + [str(row["runs"])]
        for metric, _, fmt in shown:
            scale = energy_scale if metric == "energy_j" else 1.0
            cell = _mean_std(row[f"{metric}_mean"], row[f"{metric}_std"], fmt, scale)
            if metric == "time_to_target_s" and row["target_reached"] < row["runs"]:
                cell += f" ({row['target_reached']}/{row['runs']} reached)"
            if metric == "makespan_s" and row.get("interrupted"):
                cell += f" ({row['interrupted']} interrupted)"
            cells.append(cell)
        table.add_row(*cells)
    table.caption = aggregate_caption([label for _, label, _ in shown])
    return table


CAPTIONS = {"util.": "util.: fleet utilization, the share of device time spent computing",
            "staleness": "staleness: mean versions an accepted update was behind",
            "to target s": "to target s: simulated seconds to the target accuracy"}


def aggregate_caption(labels: list[str]) -> str:
    """What the table's '±' and abbreviated columns mean: the table printed 'util. 0.52 ± 0.01' and
    'staleness 0.97 ± 0.01' with nothing saying ± is a sample std over seeds, util. a share of device
    time, or staleness counted in versions."""
    parts = ["mean ± sample std over the runs (seeds) of each row"]
    parts += [CAPTIONS[label] for label in labels if label in CAPTIONS]
    return "; ".join(parts)


@dataclass
class SweepResult:
    """What a sweep produced: its folder, the two tables, and what happened to each variant."""

    sweep_dir: Path
    keys: list[str]
    results: pd.DataFrame
    aggregate: pd.DataFrame
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    report_path: Path | None = None

    @property
    def run_dirs(self) -> list[Path]:
        return [self.sweep_dir / name for name in self.results["variant"]]

    def table(self, title: str | None = None) -> Table:
        """The printed aggregate, titled by the sweep's name (its manifest's; a sweep run with --out showed
        the folder's name, e.g. 'out'), else by its folder's."""
        return render_aggregate(self.aggregate, self.keys, title or f"sweep {self.name}")

    @property
    def name(self) -> str:
        from simulator.report.compare_labels import manifest_sweep_name

        return manifest_sweep_name(self.sweep_dir) or self.sweep_dir.name

    @classmethod
    def open(cls, sweep_dir: str | Path) -> "SweepResult":
        """Read a finished sweep folder's tables back (no runs)."""
        sweep_dir = Path(sweep_dir)
        manifest = json.loads((sweep_dir / "manifest.json").read_text())
        keys = list(manifest.get("keys", []))
        report = sweep_dir / "comparison.html"
        return cls(sweep_dir, keys, pd.read_parquet(sweep_dir / "results.parquet"),
                   pd.read_parquet(sweep_dir / "aggregate.parquet"),
                   report_path=report if report.exists() else None)
