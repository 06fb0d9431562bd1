"""What summary.json says of the plans: per device class and per scenario group, the plan with the
largest memory peak and every distinct (depth, width) chosen.

Apart from :mod:`simulator.engine.summary` (the accounts), which reports import: this side needs the
planner and the world, which a report has no use for.
"""

from __future__ import annotations

from typing import Any

from simulator.config.profiles import DeviceProfile
from simulator.config.scenario import Scenario
from simulator.engine.planning import DeviceBudget, Planner, SubmodelChoice
from simulator.engine.step_times import step_time_sources
from simulator.engine.summary import devices_by_group
from simulator.engine.workload_info import WorkloadInfo
from simulator.fleet.device import Device


def plans_extra(workload: WorkloadInfo, scenario: Scenario, profiles: list[DeviceProfile],
                budgets: dict[int, DeviceBudget], planner: Planner,
                devices: list[Device], plans: list[SubmodelChoice]) -> dict[str, Any]:
    """Per device class: the plan with the largest memory peak (the class's worst case, what a
    planner sizes for), how many devices the class has, and every distinct (depth, width) chosen
    in it: power modes and shard sizes (local steps against a deadline) can differ within a class."""
    by_profile: dict[str, dict[str, Any]] = {}
    for device, plan in zip(devices, plans):
        entry = by_profile.get(device.profile_name)
        if entry is None or plan.peak_memory_bytes > entry["peak_memory_bytes"]:
            by_profile[device.profile_name] = entry = {
                "depth": plan.depth, "width_ratio": plan.width_ratio, "params": plan.params,
                "peak_memory_bytes": plan.peak_memory_bytes, "usable_memory_bytes": device.usable_memory_bytes,
                "fits_memory": plan.fits_memory, "step_time_s": plan.step_time_s,
                "step_time_source": plan.step_time_source,
                "devices": entry["devices"] if entry else 0, "variants": entry["variants"] if entry else {},
            }
        entry["devices"] += 1
        key = f"depth {plan.depth}, width {plan.width_ratio:g}"
        entry["variants"][key] = entry["variants"].get(key, 0) + 1
    return {
        "model": workload.plan_model_label,
        "train_model": workload.train_model_label,
        "proxy_training": workload.proxy,
        "dataset": scenario.workload.dataset.name,
        "num_blocks": workload.num_blocks,
        "exits": planner.exits,
        "submodels_by_profile": by_profile,
        "step_times": step_time_sources(planner, [
            (profiles[d.group], budgets[d.group], plan)
            for d, plan in zip(devices, plans)]),
    }


def group_plans(scenario: Scenario, profiles: list[DeviceProfile], devices: list[Device],
                plans: list[SubmodelChoice]) -> list[dict[str, Any]]:
    """Per scenario group (fleet[i], named as the engine names its devices): its static facts and
    the plan with the largest memory peak among its devices, with every distinct (depth, width)."""
    out: list[dict[str, Any]] = []
    members = devices_by_group(devices, len(scenario.fleet))
    for g, (group, profile) in enumerate(zip(scenario.fleet, profiles)):
        entry: dict[str, Any] = {"name": group.name or profile.name, "index": g, "profile": profile.name,
                                 "power_mode": group.power_mode or profile.default_power_mode,
                                 "link": group.link, "variants": {}}
        worst: SubmodelChoice | None = None
        for device, plan in ((devices[i], plans[i]) for i in members[g]):
            if worst is None or plan.peak_memory_bytes > worst.peak_memory_bytes:
                worst, entry["usable_memory_bytes"] = plan, device.usable_memory_bytes
            key = f"depth {plan.depth}, width {plan.width_ratio:g}"
            entry["variants"][key] = entry["variants"].get(key, 0) + 1
        if worst is not None:
            entry.update({"depth": worst.depth, "width_ratio": worst.width_ratio, "params": worst.params,
                          "peak_memory_bytes": worst.peak_memory_bytes, "fits_memory": worst.fits_memory,
                          "step_time_s": worst.step_time_s})
        out.append(entry)
    return out
