"""Per-device accounts and the run summary, computed from the devices' exact time accounting.

utilization = compute busy ÷ wall (the paper's "resource utilization": device-time spent training
rather than waiting). Communication, idle and offline shares complete it to 1 for every device.
Energy = busy power × compute time + idle power × (online time not computing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.fleet.device import Device
from simulator.trace import TraceRecorder


def close_device_accounts(devices: list[Device], end_s: float, recorder: TraceRecorder) -> None:
    """Close offline intervals still open when the run stops (and record them as offline phases)."""
    for d in devices:
        if d.offline_since_s is not None:
            d.offline_s += end_s - d.offline_since_s
            recorder.events.append(d.index, "offline", d.offline_since_s, end_s, -1, -1, 0, 0.0, "offline")
            d.offline_since_s = None


def write_device_rows(recorder: TraceRecorder, devices: list[Device], wall_s: float) -> dict[str, float]:
    """One devices.parquet row per device; returns fleet totals."""
    totals = {"compute_s": 0.0, "comm_s": 0.0, "idle_s": 0.0, "offline_s": 0.0, "energy_j": 0.0}
    for d in devices:
        idle_s = max(0.0, wall_s - d.compute_s - d.comm_s - d.offline_s)
        online_s = wall_s - d.offline_s
        energy_j = d.busy_power_w * d.compute_s + d.idle_power_w * max(0.0, online_s - d.compute_s)
        utilization = d.compute_s / wall_s if wall_s > 0 else 0.0
        recorder.devices.append(
            d.index, d.name, d.profile_name, d.group, d.power_mode, d.usable_memory_bytes, d.peak_memory_bytes,
            d.compute_s, d.comm_s, idle_s, d.offline_s, wall_s, utilization, energy_j, d.counts["jobs"],
            d.counts["accepted"], d.counts["dropped"], d.counts.get("lost", 0), d.counts.get("oom", 0),
            d.bytes_down, d.bytes_up,
        )
        totals["compute_s"] += d.compute_s
        totals["comm_s"] += d.comm_s
        totals["idle_s"] += idle_s
        totals["offline_s"] += d.offline_s
        totals["energy_j"] += energy_j
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
) -> dict[str, Any]:
    """The run's headline figures. `complete` is False when the run did not reach its stop condition
    (Ctrl-C, a failing plug-in, a full disk): its figures then cover simulated time up to `wall_s` only,
    which reports state at the top (``complete`` and ``figures_up_to_s``)."""
    n = len(devices)
    fleet_wall = wall_s * n if n else 0.0
    counts = {key: sum(d.counts.get(key, 0) for d in devices) for key in ("jobs", "accepted", "dropped", "lost", "oom")}
    per_profile: dict[str, dict[str, float]] = {}
    for d in devices:
        entry = per_profile.setdefault(d.profile_name, {"devices": 0, "compute_s": 0.0, "wall_s": 0.0, "ooms": 0})
        entry["devices"] += 1
        entry["compute_s"] += d.compute_s
        entry["wall_s"] += wall_s
        entry["ooms"] += d.counts.get("oom", 0)
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
        "jobs": counts["jobs"],
        "accepted": counts["accepted"],
        "dropped": counts["dropped"],
        "lost": counts["lost"],
        "ooms": counts["oom"],
        "oom_devices": sorted({d.name for d in devices if d.counts.get("oom", 0)}),
        "target_accuracy": target_accuracy,
        "time_to_target_s": time_to_target_s,
        "final_accuracy": final_accuracy,
        **extra,
    }
