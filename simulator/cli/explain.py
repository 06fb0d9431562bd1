"""`fleetsim explain SCENARIO`: the scenario as the run will see it, every default filled in.

Why: presets and policies fill in most of what decides a run (Co-S²P's K and deadline, the staleness
function and its parameters, pruning, distillation, local work) and the planner picks each device
class's submodel; none of it is in the file. This prints the resolved algorithm (as the run folder's
scenario.yaml records it), the fleet, and — unless ``--no-plan`` — the plan per scenario group as the
engine computes it before simulating: width, depth, parameters, peak vs usable memory, step time and
its source, local steps. The plan traces the planning model (torch, cached in ~/.cache/fleetsim);
``--no-plan`` stays torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.config.scenario import Scenario


def unset_notes(scenario: Scenario, aggregation: dict[str, Any]) -> dict[str, str]:
    """What each aggregation key left at null means, from the policy's own field description."""
    from simulator.server.registry import resolve_policy

    policy = aggregation.get("policy")
    if not isinstance(policy, str) or ":" in policy:
        return {}
    fields = resolve_policy(policy).Params.model_fields
    return {k: (fields[k].description or "policy default") for k, v in aggregation.items()
            if v is None and k in fields}


def group_plans(scenario: Scenario, file: Path) -> list[dict[str, Any]]:
    """Per scenario group, the plan with the largest memory peak among its devices (what the summary's
    `groups` records after a run), and every distinct (depth, width) the group's devices get."""
    import numpy as np

    from simulator.engine import Simulation
    from simulator.environment import Environment
    from simulator.engine.planning import local_steps
    from simulator.engine.world import aggregation_deadline, build_devices, build_network

    sim = Simulation(scenario, Path("."), scenario_file=str(file), base_dir=file.resolve().parent, timing_only=True)
    planner = sim.make_planner()
    _, links = build_network(Environment(), scenario)
    devices = build_devices(scenario, sim.profiles, links, np.random.SeedSequence(scenario.seed).spawn(4)[0])
    deadline = aggregation_deadline(sim.algorithm)
    wl = scenario.workload
    out: list[dict[str, Any]] = []
    for g, (group, profile) in enumerate(zip(scenario.fleet, sim.profiles)):
        entry: dict[str, Any] = {"group": group.name or profile.name, "devices": group.count, "profile": profile.name,
                                 "power_mode": group.power_mode or profile.default_power_mode, "link": group.link,
                                 "variants": {}}
        worst = None
        for device in (d for d in devices if d.group == g):
            budget = sim.budgets[g]
            steps = local_steps(sim.workload.samples(device.index), wl.batch_size, wl.local_epochs, wl.local_steps)
            compute_budget = None
            if deadline is not None:  # as the engine does: the round's deadline less a model's download and upload
                full = planner.evaluate(budget, 1.0, sim.workload.num_blocks)
                cap_bps = device.cap_bps or scenario.network.server.downlink_mbps * 1e6
                compute_budget = max(0.0, deadline - 2 * full.model_bytes * 8 / cap_bps)
            plan = planner.choose(budget, compute_budget, steps)
            key = f"depth {plan.depth}, width {plan.width_ratio:g}"
            entry["variants"][key] = entry["variants"].get(key, 0) + 1
            if worst is None or plan.peak_memory_bytes > worst[0].peak_memory_bytes:
                worst = (plan, budget, steps)
        if worst is not None:
            plan, budget, steps = worst
            entry.update(depth=plan.depth, of_blocks=sim.workload.num_blocks, width_ratio=plan.width_ratio,
                         params=plan.params, peak_memory_bytes=plan.peak_memory_bytes,
                         usable_memory_bytes=budget.usable_memory_bytes, fits_memory=plan.fits_memory,
                         step_time_s=plan.step_time_s, step_time_source=plan.step_time_source, local_steps=steps)
        out.append(entry)
    return out


def group_fits(sim: Any, scenario: Scenario) -> list[dict[str, Any]]:
    """Per scenario group, whether the model fits its devices at all: the planner's choice without a
    deadline (when nothing fits that is the smallest candidate; a deadline only ever shrinks a fitting
    plan, so it cannot change this). One plan per group, not per device: cheap enough for validate."""
    planner = sim.make_planner()
    out = []
    for g, (group, profile) in enumerate(zip(scenario.fleet, sim.profiles)):
        plan = planner.choose(sim.budgets[g])
        out.append({"name": group.name or profile.name, "fits_memory": plan.fits_memory,
                    "usable_memory_bytes": sim.budgets[g].usable_memory_bytes,
                    "peak_memory_bytes": plan.peak_memory_bytes})
    return out


def plan_rows(plans: list[dict[str, Any]]) -> list[list[str]]:
    """The plan as table cells (see cli.tables.Grid)."""
    rows = []
    for p in plans:
        if "depth" not in p:
            continue
        mem = f"{p['peak_memory_bytes'] / 1e9:,.2f} / {p['usable_memory_bytes'] / 1e9:,.2f}"
        rows.append([p["group"], f"{p['devices']}", f"{p['profile']} ({p['power_mode']})",
                     f"{p['width_ratio']:g}", f"{p['depth']}/{p['of_blocks']}", f"{p['params'] / 1e6:,.2f} M",
                     mem + ("" if p["fits_memory"] else " OOM"),
                     f"{p['step_time_s'] * 1e3:,.1f} ({p['step_time_source']})", f"{p['local_steps']}"])
    return rows


PLAN_HEADERS = ["group", "devices", "profile (mode)", "width", "depth", "params", "peak / usable GB",
                "step ms (source)", "local steps"]
