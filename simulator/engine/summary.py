"""Per-device accounts and the run summary, computed from the devices' exact time accounting.

utilization = compute busy ÷ wall (the paper's "resource utilization": device-time spent training
rather than waiting). Communication, idle and offline shares complete it to 1 for every device.
Energy = busy power × compute time + idle power × (online time not computing), booked per phase:
compute (busy power), communication and idle (idle power: the radio's extra draw is not modelled;
see the README's "Energy"); offline time draws nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.fleet.device import Device
from simulator.trace.recorder import TraceRecorder


def close_device_accounts(devices: list[Device], end_s: float, recorder: TraceRecorder) -> None:
    """Close offline intervals still open when the run stops (and record them as offline phases)."""
    for d in devices:
        if d.offline_since_s is not None:
            d.offline_s += end_s - d.offline_since_s
            recorder.events.append(d.index, "offline", d.offline_since_s, end_s, -1, -1, 0, 0.0, "offline")
            d.offline_since_s = None


def write_device_rows(recorder: TraceRecorder, devices: list[Device], wall_s: float) -> dict[str, float]:
    """One devices.parquet row per device; returns fleet totals."""
    totals = {"compute_s": 0.0, "comm_s": 0.0, "idle_s": 0.0, "offline_s": 0.0, "energy_j": 0.0,
              "energy_compute_j": 0.0, "energy_comm_j": 0.0, "energy_idle_j": 0.0}
    for d in devices:
        idle_s = max(0.0, wall_s - d.compute_s - d.comm_s - d.offline_s)
        compute_j = d.busy_power_w * d.compute_s
        comm_j = d.idle_power_w * d.comm_s
        idle_j = d.idle_power_w * idle_s
        energy_j = compute_j + comm_j + idle_j
        utilization = d.compute_s / wall_s if wall_s > 0 else 0.0
        recorder.devices.append(
            d.index, d.name, d.profile_name, d.group, d.power_mode, d.usable_memory_bytes, d.peak_memory_bytes,
            d.compute_s, d.comm_s, idle_s, d.offline_s, wall_s, utilization, energy_j, compute_j, comm_j, idle_j,
            d.jobs, d.accepted, d.other_outcomes["dropped"], d.other_outcomes.get("lost", 0),
            d.other_outcomes.get("oom", 0),
            d.bytes_down, d.bytes_up,
        )
        totals["compute_s"] += d.compute_s
        totals["comm_s"] += d.comm_s
        totals["idle_s"] += idle_s
        totals["offline_s"] += d.offline_s
        totals["energy_j"] += energy_j
        totals["energy_compute_j"] += compute_j
        totals["energy_comm_j"] += comm_j
        totals["energy_idle_j"] += idle_j
    return totals


def _outcome_totals(devices: list[Device]) -> dict[str, int]:
    """Jobs dispatched to `devices` and how they ended, summed: jobs, accepted, dropped, lost, oom."""
    totals = {"jobs": sum(d.jobs for d in devices), "accepted": sum(d.accepted for d in devices)}
    for key in ("dropped", "lost", "oom"):
        totals[key] = sum(d.other_outcomes.get(key, 0) for d in devices)
    return totals


def staleness_stats(values: list[int]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p95": None, "max": None}
    arr = np.asarray(values, dtype=float)
    return {
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
    }


def build_summary(
    *,
    scenario_name: str,
    algorithm: str,
    seed: int,
    timing_only: bool,
    devices: list[Device],
    wall_s: float,
    versions: int,
    totals: dict[str, float],
    staleness: list[int],
    target_accuracy: float | None,
    time_to_target_s: float | None,
    final_accuracy: float | None,
    stop_reason: str,
    extra: dict[str, Any],
    complete: bool = True,
    group_plans: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The run's headline figures. `complete` is False when the run did not reach its stop condition
    (Ctrl-C, a failing plug-in, a full disk): its figures then cover simulated time up to `wall_s` only,
    which reports state at the top (``complete`` and ``figures_up_to_s``)."""
    n = len(devices)
    fleet_wall = wall_s * n if n else 0.0
    counts = _outcome_totals(devices)
    per_profile: dict[str, dict[str, float]] = {}
    for d in devices:
        entry = per_profile.setdefault(d.profile_name, {"devices": 0, "compute_s": 0.0, "wall_s": 0.0, "ooms": 0})
        entry["devices"] += 1
        entry["compute_s"] += d.compute_s
        entry["wall_s"] += wall_s
        entry["ooms"] += d.other_outcomes.get("oom", 0)
    return {
        "scenario_name": scenario_name,
        "algorithm": algorithm,
        "seed": seed,
        "timing_only": timing_only,
        "stop_reason": stop_reason,
        "complete": complete,
        "figures_up_to_s": wall_s,
        "devices": n,
        "makespan_s": wall_s,
        "versions": versions,
        "fleet_utilization": totals["compute_s"] / fleet_wall if fleet_wall else 0.0,
        "comm_share": totals["comm_s"] / fleet_wall if fleet_wall else 0.0,
        "idle_share": totals["idle_s"] / fleet_wall if fleet_wall else 0.0,
        "offline_share": totals["offline_s"] / fleet_wall if fleet_wall else 0.0,
        "utilization_by_profile": {
            name: entry["compute_s"] / entry["wall_s"] if entry["wall_s"] else 0.0 for name, entry in per_profile.items()
        },
        "devices_by_profile": {name: int(entry["devices"]) for name, entry in per_profile.items()},
        "staleness": staleness_stats(staleness),
        "bytes_down": int(sum(d.bytes_down for d in devices)),
        "bytes_up": int(sum(d.bytes_up for d in devices)),
        "energy_j": totals["energy_j"],
        "energy_by_phase_j": {"compute": totals.get("energy_compute_j", 0.0), "comm": totals.get("energy_comm_j", 0.0),
                              "idle": totals.get("energy_idle_j", 0.0)},
        "jobs": counts["jobs"],
        "accepted": counts["accepted"],
        "dropped": counts["dropped"],
        "lost": counts["lost"],
        "ooms": counts["oom"],
        "oom_devices": sorted({d.name for d in devices if d.other_outcomes.get("oom", 0)}),
        "target_accuracy": target_accuracy,
        "time_to_target_s": time_to_target_s,
        "final_accuracy": final_accuracy,
        "groups": group_summaries(devices, wall_s, group_plans or []),
        **extra,
    }


# ------------------------------------------------------------------ per scenario group

# A group is "offline-limited" when it spends at least this share of its wall time offline, and the
# slowest group is a straggler when its busy time per job is at least STRAGGLER_RATIO × the fastest's.
OFFLINE_LIMIT_SHARE = 0.2
STRAGGLER_RATIO = 1.5
IDLE_LIMIT_SHARE = 0.5


def group_limit(*, ooms: int, fits_memory: bool | None, compute_s: float, comm_s: float, idle_s: float,
                offline_s: float, straggler: bool) -> tuple[str, str]:
    """What limits one scenario group, as (label, one-clause reason).

    Pure arithmetic on the group's time accounts, shared by summary.json and the report (which
    recomputes it for run folders written before summary.json had groups). Order: memory first (an
    OOM'd job trains nothing), then availability, then which of compute or communication fills the
    busy time; the slowest group (busy time per job) is marked a straggler."""
    wall_s = compute_s + comm_s + idle_s + offline_s
    share = (lambda x: x / wall_s) if wall_s > 0 else (lambda x: 0.0)
    if ooms > 0 or fits_memory is False:
        return "out of memory", f"{ooms:,} out-of-memory events" if ooms else "its submodel does not fit"
    if share(offline_s) >= OFFLINE_LIMIT_SHARE:
        return "offline", f"offline {100 * share(offline_s):.0f} % of the time"
    busy_s = compute_s + comm_s
    if busy_s <= 0:
        return "idle", "never busy"
    kind = "compute-bound" if compute_s >= comm_s else "link-bound"
    what = "computing" if compute_s >= comm_s else "communicating"
    reason = f"{100 * max(compute_s, comm_s) / busy_s:.0f} % of busy time {what}"
    if straggler:
        return f"{kind} straggler", reason + "; slowest group per job"
    if share(idle_s) >= IDLE_LIMIT_SHARE:
        return "waits for others", f"idle {100 * share(idle_s):.0f} % of the time"
    return kind, reason


def mark_stragglers(busy_per_job_s: list[float | None]) -> list[bool]:
    """True for the group with the longest busy time per job, if it is STRAGGLER_RATIO × the shortest."""
    known = [v for v in busy_per_job_s if v is not None and v > 0]
    if len(known) < 2 or max(known) < STRAGGLER_RATIO * min(known):
        return [False] * len(busy_per_job_s)
    top = max(known)
    return [v == top for v in busy_per_job_s]


def _energy_j(d: Device, wall_s: float) -> float:
    """Same formula as write_device_rows (busy power × compute + idle power × other online time)."""
    online_s = wall_s - d.offline_s
    return d.busy_power_w * d.compute_s + d.idle_power_w * max(0.0, online_s - d.compute_s)


def devices_by_group(devices: list[Device], n_groups: int) -> list[list[int]]:
    """Indices of each fleet group's devices (groups past `n_groups` are left out), in one pass over
    the fleet: a fleet of 1,000 cells is 1,000 groups, and a scan per group was ~7 s of CPU at 30,000
    devices."""
    members: list[list[int]] = [[] for _ in range(n_groups)]
    for i, d in enumerate(devices):
        if d.group < n_groups:
            members[d.group].append(i)
    return members


def group_summaries(devices: list[Device], wall_s: float, plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per scenario group (fleet[i]), in file order: the plan facts the engine gives
    (name, profile, power mode, link, submodel, memory, step time) plus the group's time shares,
    energy, job counts and what limits it (group_limit)."""
    out: list[dict[str, Any]] = []
    by_group = devices_by_group(devices, len(plans))
    for g, plan in enumerate(plans):
        members = [devices[i] for i in by_group[g]]
        compute_s = sum(d.compute_s for d in members)
        comm_s = sum(d.comm_s for d in members)
        offline_s = sum(d.offline_s for d in members)
        group_wall_s = wall_s * len(members)
        idle_s = max(0.0, group_wall_s - compute_s - comm_s - offline_s)
        counts = _outcome_totals(members)
        entry = dict(plan)
        entry.update({
            "devices": len(members),
            "compute_share": compute_s / group_wall_s if group_wall_s else 0.0,
            "comm_share": comm_s / group_wall_s if group_wall_s else 0.0,
            "idle_share": idle_s / group_wall_s if group_wall_s else 0.0,
            "offline_share": offline_s / group_wall_s if group_wall_s else 0.0,
            "energy_j": sum(_energy_j(d, wall_s) for d in members),
            "busy_per_job_s": (compute_s + comm_s) / counts["jobs"] if counts["jobs"] else None,
            "max_peak_memory_bytes": max((d.peak_memory_bytes for d in members), default=0),
            "bytes_down": int(sum(d.bytes_down for d in members)),
            "bytes_up": int(sum(d.bytes_up for d in members)),
            **{key: counts[key] for key in ("jobs", "accepted", "dropped", "lost")}, "ooms": counts["oom"],
            "_times": (compute_s, comm_s, idle_s, offline_s),
        })
        out.append(entry)
    stragglers = mark_stragglers([e["busy_per_job_s"] for e in out])
    for entry, straggler in zip(out, stragglers):
        compute_s, comm_s, idle_s, offline_s = entry.pop("_times")
        entry["limit"], entry["limit_reason"] = group_limit(
            ooms=entry["ooms"], fits_memory=entry.get("fits_memory"), compute_s=compute_s, comm_s=comm_s,
            idle_s=idle_s, offline_s=offline_s, straggler=straggler)
    return out
