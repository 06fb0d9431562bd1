"""Findings: what a person would say after studying the charts, computed from the traces.

Each finding is a plain sentence built from numbers in the run folder — nothing here is a canned
message that could be true of a run that did not produce it. Sentences are plain text; the page
escapes them. Devices are grouped by scenario group (the fleet entry's own `name`, else its
profile: `group_name`, loading.py), which is what the scenario file and the planner table call them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from simulator.report.finding import Finding, plural
from simulator.report.findings_faults import fault_findings
from simulator.report.loading import RunData
from simulator.report.style import fmt_bytes, fmt_energy, fmt_num, fmt_pct, fmt_s


_plural = plural

def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n:,} times"


def _range(values: np.ndarray) -> str:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "n/a"
    lo, hi = float(values.min()), float(values.max())
    return fmt_bytes(lo) if fmt_bytes(lo) == fmt_bytes(hi) else f"{fmt_bytes(lo)}–{fmt_bytes(hi)}"


def _key(dev: pd.DataFrame) -> str:
    return "group_name" if "group_name" in dev else "profile"


def _update_groups(run: RunData) -> pd.Series:
    """The scenario group of every update row (updates.parquet carries the device, not its group)."""
    key = _key(run.devices)
    return run.updates["device"].map(dict(zip(run.devices["device"], run.devices[key]))).fillna("?")


def oom_findings(run: RunData) -> list[Finding]:
    dev, up = run.devices, run.updates
    ooms = dev["ooms"].fillna(0)
    if ooms.sum() == 0 and (up["outcome"] == "oom").any():  # device table lacks the counts
        ooms = dev["device"].map(up[up["outcome"] == "oom"].groupby("device").size()).fillna(0)
    hit = dev[ooms > 0]
    if hit.empty:
        usable = dev["usable_memory_bytes"].to_numpy(float)
        peak = dev["peak_memory_bytes"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(usable > 0, peak / usable, np.nan)
        if not np.isfinite(ratio).any():
            return [Finding("No device ran out of memory.", "good")]
        i = int(np.nanargmax(ratio))
        row = dev.iloc[i]
        return [Finding(f"No device ran out of memory; the tightest, {row['device_name']} "
                        f"({row[_key(dev)]}), peaked at {fmt_bytes(peak[i])} of "
                        f"{fmt_bytes(usable[i])} usable ({fmt_pct(ratio[i])}).", "good")]
    out = []
    key = _key(dev)
    is_oom = (up["outcome"] == "oom").to_numpy()
    oom_jobs, oom_groups = up[is_oom], _update_groups(run)[is_oom]
    for profile, group in hit.groupby(key, sort=False):
        needed = oom_jobs.loc[(oom_groups == profile).to_numpy(), "peak_memory_bytes"].to_numpy(float)
        if not np.isfinite(needed).any():
            needed = group["peak_memory_bytes"].to_numpy(float)
        n_events = int(ooms[group.index].sum())
        noun = "device" if len(group) == 1 else "devices"
        out.append(Finding(
            f"{len(group):,} {profile} {noun} ran out of memory {_times(n_events)} "
            f"(needed {_range(needed)}, usable {_range(group['usable_memory_bytes'].to_numpy(float))}"
            f"); {fmt_pct(len(group) / max(1, (dev[key] == profile).sum()))} of that "
            f"group's devices.", "warn"))
    return out


def idle_findings(run: RunData) -> list[Finding]:
    sums = run.devices.groupby(_key(run.devices), sort=False)[["idle_s", "wall_s"]].sum()
    sums = sums[sums["wall_s"] > 0]
    if sums.empty:
        return []
    share = (sums["idle_s"] / sums["wall_s"]).sort_values(ascending=False, kind="stable")
    top, value = share.index[0], float(share.iloc[0])
    text = f"The {top} devices idled {fmt_pct(value)} of the time"
    if len(share) > 1:
        text += "; " + ", ".join(f"{p} {fmt_pct(v)}" for p, v in share.iloc[1:].items())
    return [Finding(text + ".", "warn" if value >= 0.3 else "info")]


def round_limit_findings(run: RunData) -> list[Finding]:
    up = run.updates[["dispatch_s", "arrival_s"]].assign(group=_update_groups(run))
    arrived = up[up["arrival_s"].notna() & up["dispatch_s"].notna()]
    if arrived.empty:
        return []
    trip = (arrived["arrival_s"] - arrived["dispatch_s"]).groupby(arrived["group"], sort=False).median()
    trip = trip.sort_values(ascending=False, kind="stable")
    slow, slow_s = trip.index[0], float(trip.iloc[0])
    busy = run.devices[run.devices[_key(run.devices)] == slow][["compute_s", "comm_s"]].sum()
    split = ""
    if busy.sum() > 0:  # whose: the group just named ("their"), or with one group the fleet's devices
        whose = "the devices'" if len(trip) == 1 else "their"
        split = (f"; {whose} busy time is {fmt_pct(busy['compute_s'] / busy.sum())} computing and "
                 f"{fmt_pct(busy['comm_s'] / busy.sum())} communicating")
    if len(trip) == 1:
        return [Finding(f"An update takes {fmt_s(slow_s)} from dispatch to arrival (median){split}.")]
    fast, fast_s = trip.index[-1], float(trip.iloc[-1])
    factor = f"{slow_s / fast_s:.1f}×" if fast_s > 0 else "far longer than"
    return [Finding(f"The {slow} devices limit the round: their updates take {fmt_s(slow_s)} from "
                    f"dispatch to arrival (median), {factor} the {fast} devices ({fmt_s(fast_s)})"
                    f"{split}.", "warn" if fast_s > 0 and slow_s / fast_s >= 2 else "info")]


def target_findings(m: dict[str, Any]) -> list[Finding]:
    if m["timing_only"]:
        return []  # nothing to say: the header states that accuracy was not measured
    target, best, final = m["target_accuracy"], m["best_accuracy"], m["final_accuracy"]
    if target is None:
        return [Finding(f"No target accuracy was set; final accuracy {fmt_pct(final, 1)} "
                        f"(best {fmt_pct(best, 1)}).")]
    if m["time_to_target_s"] is not None:
        text = f"Reached the target accuracy {fmt_pct(target, 1)} at {fmt_s(m['time_to_target_s'])}"
        if m.get("time_to_target_version") is not None:
            text += f" (version {m['time_to_target_version']:,})"
        if m["makespan_s"]:
            text += f", {fmt_pct(m['time_to_target_s'] / m['makespan_s'])} into the run"
        return [Finding(text + ".", "good")]
    return [Finding(f"Did not reach the target accuracy {fmt_pct(target, 1)}: best "
                    f"{fmt_pct(best, 1)}, final {fmt_pct(final, 1)} after {fmt_s(m['makespan_s'])}.",
                    "warn")]


def _top_reason(up: pd.DataFrame, outcome: str) -> str:
    reasons = up.loc[up["outcome"] == outcome, "reason"]
    reasons = reasons[~reasons.isin(["", "nan", "None"])]
    if reasons.empty:
        return ""
    counts = reasons.value_counts()
    share = counts.iloc[0] / len(reasons)
    return f", {'all' if share == 1 else 'mostly'} “{counts.index[0]}”"


def update_findings(run: RunData, m: dict[str, Any]) -> list[Finding]:
    up = run.updates
    counts = up["outcome"].value_counts()
    n = len(up)
    if n == 0:
        return []
    parts = [f"{int(counts.get('accepted', 0)):,} accepted"]
    for name, label in (("dropped", "dropped"), ("lost", "lost"), ("oom", "OOM"),
                        ("unfinished", "unfinished at the end")):
        k = int(counts.get(name, 0))
        if k:
            parts.append(f"{k:,} {label} ({fmt_pct(k / n)}{_top_reason(up, name)})")
    out = [Finding(f"Of {_plural(n, 'dispatched update')}: " + "; ".join(parts) + ".",
                   "warn" if counts.get("dropped", 0) + counts.get("lost", 0) > 0.1 * n else "info")]
    st = m["staleness"]
    if st.get("mean") is not None:
        out.append(Finding(f"Arrived updates were {st['mean']:.2f} versions stale on average "
                           f"(p95 {fmt_num(st['p95'], 1)}, max {fmt_num(st['max'])})."))
    return out


def offline_findings(run: RunData) -> list[Finding]:
    dev = run.devices
    off = dev[dev["offline_s"].fillna(0) > 0]
    if off.empty:
        return []
    by = off.groupby(_key(dev), sort=False).size()
    share = off["offline_s"].sum() / off["wall_s"].sum() if off["wall_s"].sum() > 0 else np.nan
    lost = int((run.updates["outcome"] == "lost").sum())
    return [Finding(f"{_plural(len(off), 'device')} went offline ("
                    + ", ".join(f"{k:,} {p}" for p, k in by.items())
                    + f"), for {fmt_pct(share)} of {'its' if len(off) == 1 else 'their'} time; "
                    + f"{_plural(lost, 'update')} lost.",
                    "warn" if lost else "info")]


def energy_findings(run: RunData, m: dict[str, Any]) -> list[Finding]:
    dev = run.devices
    total = dev["energy_j"].sum()
    out = []
    if total > 0:
        by = dev.groupby(_key(dev), sort=False)["energy_j"].sum().sort_values(ascending=False,
                                                                                 kind="stable")
        top = by.index[0]
        n_top = int((dev[_key(dev)] == top).sum())
        out.append(Finding(f"The fleet used {fmt_energy(m['energy_j'] or total)}; the {top} devices "
                           f"({n_top:,} of {len(dev):,}) used {fmt_pct(by.iloc[0] / total)} of it."))
    if m["bytes_down"] is not None or m["bytes_up"] is not None:
        out.append(Finding(f"The network moved {fmt_bytes(m['bytes_down'])} down and "
                           f"{fmt_bytes(m['bytes_up'])} up."))
    return out


def compute_findings(run: RunData, m: dict[str, Any]) -> list[Finding]:
    """All findings, most actionable first."""
    return (target_findings(m) + oom_findings(run) + round_limit_findings(run) + fault_findings(run)
            + idle_findings(run) + update_findings(run, m) + offline_findings(run)
            + energy_findings(run, m))
