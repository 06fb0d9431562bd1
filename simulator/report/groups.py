"""The planner table: one row per scenario group (fleet[i], by its own name), what a capacity planner
reads first — how many boards, which submodel they train, memory headroom, step time, where their time
and energy went, and what limits them.

Rows come from summary.json's `groups` (the engine's own figures, with the planned submodel and step
time). A run folder written before summary.json had groups gets the same rows recomputed from the
device and update tables, with the step time unknown ("n/a"); the limit is classified by the same
function (`simulator.engine.summary.group_limit`) either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from simulator.report import html as H
from simulator.report.loading import RunData, finite_or_none
from simulator.report.style import SHARE_COLORS, fmt_bytes, fmt_energy, fmt_num, fmt_pct, fmt_s
from simulator.engine.summary import group_limit, mark_stragglers

SHARES = ("compute_share", "comm_share", "idle_share", "offline_share")


def _variants_from_updates(up: pd.DataFrame) -> dict[str, int]:
    """Devices per (depth, width) of their largest dispatched submodel."""
    if up.empty:
        return {}
    per_device = up.sort_values("peak_memory_bytes", kind="stable").groupby("device").last()
    keys = [f"depth {int(d)}, width {w:g}" for d, w in zip(per_device["depth"], per_device["width_ratio"])
            if finite_or_none(d) is not None and finite_or_none(w) is not None]
    return {k: keys.count(k) for k in dict.fromkeys(keys)}


def _fleet_entry(run: RunData, g: int) -> dict[str, Any]:
    fleet = run.scenario.get("fleet")
    if isinstance(fleet, list) and 0 <= g < len(fleet) and isinstance(fleet[g], dict):
        return fleet[g]
    return {}


def _derived_rows(run: RunData) -> list[dict[str, Any]]:
    """Group rows from the traces, for run folders whose summary.json has no `groups`."""
    dev, up = run.devices, run.updates
    rows = []
    group_of = dict(zip(dev["device"], dev["group"]))
    up_group = up["device"].map(group_of)
    for g, members in dev.groupby("group", sort=True):
        g = int(g)
        times = {k: float(members[k].fillna(0).sum()) for k in ("compute_s", "comm_s", "idle_s", "offline_s")}
        wall = sum(times.values())
        jobs = float(members["jobs"].fillna(0).sum())
        ups = up[up_group == g]
        peak = members["peak_memory_bytes"].to_numpy(float)
        top = int(np.nanargmax(peak)) if np.isfinite(peak).any() else 0
        variants = _variants_from_updates(ups)
        fleet = _fleet_entry(run, g)
        rows.append({
            "index": g, "name": str(members["group_name"].iloc[0]), "devices": len(members),
            "profile": str(members["profile"].iloc[0]), "power_mode": str(members["power_mode"].iloc[0]),
            "link": fleet.get("link", "n/a"), "variants": variants,
            "depth": None, "width_ratio": None, "step_time_s": None, "fits_memory": None,
            "peak_memory_bytes": finite_or_none(peak[top]) if len(peak) else None,
            "usable_memory_bytes": finite_or_none(members["usable_memory_bytes"].iloc[top]) if len(members) else None,
            **{share: (times[share.replace("_share", "_s")] / wall if wall > 0 else 0.0) for share in SHARES},
            # a killed run's device table (derived from its events) has no energy accounts: unknown, not 0 J
            "energy_j": finite_or_none(members["energy_j"].sum(min_count=1)),
            "jobs": int(jobs), "ooms": int(members["ooms"].fillna(0).sum()),
            "lost": int(members["lost"].fillna(0).sum()),
            "busy_per_job_s": (times["compute_s"] + times["comm_s"]) / jobs if jobs else None,
            "_times": times,
        })
    for row, straggler in zip(rows, mark_stragglers([r["busy_per_job_s"] for r in rows])):
        t = row.pop("_times")
        row["limit"], row["limit_reason"] = group_limit(
            ooms=row["ooms"], fits_memory=None, compute_s=t["compute_s"], comm_s=t["comm_s"],
            idle_s=t["idle_s"], offline_s=t["offline_s"], straggler=straggler)
    return rows


def group_rows(run: RunData) -> list[dict[str, Any]]:
    """One dict per scenario group, file order (see module docstring)."""
    given = run.summary.get("groups")
    if isinstance(given, list) and given and all(isinstance(g, dict) for g in given):
        names = dict(zip(run.devices["group"], run.devices["group_name"]))
        return [{**g, "name": names.get(g.get("index"), g.get("name"))} for g in given]
    return _derived_rows(run)


def submodel_text(row: dict[str, Any]) -> str:
    """'12 × 1.00' or, when devices of the group train different submodels, each with its count."""
    variants = row.get("variants") or {}
    if len(variants) > 1:
        parts = []
        for key, n in sorted(variants.items(), key=lambda kv: -kv[1]):
            depth, width = (p.split()[1] for p in key.split(", "))
            parts.append(f"{depth} × {float(width):.2f} ({n})")
        return ", ".join(parts)
    if len(variants) == 1:
        depth, width = (p.split()[1] for p in next(iter(variants)).split(", "))
        return f"{depth} × {float(width):.2f}"
    if row.get("depth") is not None:
        return f"{row['depth']} × {float(row['width_ratio']):.2f}"
    return "n/a"


def _shares_cell(row: dict[str, Any]) -> str:
    """A small stacked bar and the four percentages (compute / comm / idle / offline)."""
    colors = [SHARE_COLORS[k] for k in ("compute", "communication", "idle", "offline")]
    values = [finite_or_none(row.get(k)) or 0.0 for k in SHARES]
    bar = "".join(f'<span style="width:{100 * v:.1f}%;background:{c}"></span>'
                  for v, c in zip(values, colors) if v > 0)
    text = " / ".join(f"{100 * v:.0f}" for v in values) + "\u00a0%"
    return f'<div class="sharebar" title="compute / comm / idle / offline">{bar}</div>{H.esc(text)}'


def _memory_cell(row: dict[str, Any]) -> str:
    """The planned peak against usable memory and, when a job that ran needed more (Co-S²P's rolling
    windows keep a frozen prefix, a global teacher pass holds soft labels), that larger peak too: the
    quickstart's Nanos are planned at 2.2 GB but ran jobs of 2.3 GB, which the findings quote."""
    peak, usable = finite_or_none(row.get("peak_memory_bytes")), finite_or_none(row.get("usable_memory_bytes"))
    text = f"{fmt_bytes(peak)} / {fmt_bytes(usable)}"
    if peak is not None and usable:
        text += f" ({fmt_pct(peak / usable)})"
    ran = finite_or_none(row.get("max_peak_memory_bytes"))
    if ran is not None and peak is not None and ran > peak:
        text += f"; jobs ran up to {fmt_bytes(ran)}" + (f" ({fmt_pct(ran / usable)})" if usable else "")
    return H.esc(text)


def planner_table(rows: list[dict[str, Any]]) -> str:
    """The table's HTML (id `planner-table`); the limit cell is red for memory and offline limits."""
    header = ["group", "devices", "profile · power mode", "link", "submodel (depth × width)",
              "peak / usable memory", "step time", "compute / comm / idle / offline", "energy",
              "limited by"]
    body = []
    for row in rows:
        warn = row.get("limit") in ("out of memory", "offline") or "straggler" in str(row.get("limit"))
        cells = [H.esc(row.get("name")), H.esc(fmt_num(row.get("devices"))),
                 H.esc(f"{row.get('profile')} · {row.get('power_mode')}"), H.esc(row.get("link", "n/a")),
                 H.esc(submodel_text(row)), _memory_cell(row), H.esc(fmt_s(row.get("step_time_s"))),
                 _shares_cell(row), H.esc("unknown" if row.get("energy_j") is None else fmt_energy(row["energy_j"])),
                 f'<span class="{"limit warn" if warn else "limit"}">{H.esc(row.get("limit", "n/a"))}</span>'
                 f'<br><span class="why">{H.esc(row.get("limit_reason", ""))}</span>']
        nowrap = {1, 5, 6, 7, 8}  # numbers and the share bar stay on one line; names and reasons wrap
        body.append("<tr>" + "".join(f'<td class="nw">{c}</td>' if i in nowrap else f"<td>{c}</td>"
                                     for i, c in enumerate(cells)) + "</tr>")
    head = "".join(f"<th>{H.esc(h)}</th>" for h in header)
    return (f'<div class="table-wrap"><table class="data wrap" id="planner-table"><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table></div>")
