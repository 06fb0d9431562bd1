"""Which step times a run used — a profile's measurement or the cost model — and why (summary.json).

A measured step time stands for a plan only at the exact point it was measured at
(:class:`simulator.config.profiles.StepPoint`). This module reports, per device class, whether its
plans took measured times, and when they fell back to the cost model, the reason a planner needs to
see (e.g. "no calibrated point for resnet-resnet18 @3×224×224 batch 32 in this-host (it has
resnet-resnet18 @1×32×32, batch 16, 64)").
"""

from __future__ import annotations

from typing import Any, Sequence

from simulator.config.profiles import DeviceProfile
from simulator.engine.planning import DeviceBudget, Planner, SubmodelChoice


def step_time_sources(planner: Planner, plans: Sequence[tuple[DeviceProfile, DeviceBudget, SubmodelChoice]]
                      ) -> dict[str, Any]:
    """``{"by_profile": {profile: "measured" | "cost model" | "mixed"}, "notes": [reason per class that
    fell back]}`` over every device's (profile, budget, plan)."""
    by_profile: dict[str, set[str]] = {}
    notes: dict[str, str] = {}
    for profile, budget, plan in plans:
        by_profile.setdefault(profile.name, set()).add(plan.step_time_source)
        if plan.step_time_source != "measured" and profile.name not in notes:
            # a device's base plan trains every block it holds (rolling windows are not looked up)
            notes[profile.name] = profile.unmatched_reason(planner.step_point(budget, plan.width_ratio, plan.depth))
    sources = {name: next(iter(s)) if len(s) == 1 else "mixed" for name, s in sorted(by_profile.items())}
    return {"by_profile": sources, "notes": [notes[n] for n in sorted(notes)]}


def summary_line(step_times: dict[str, Any]) -> str:
    """The CLI summary's "step times" row, e.g. ``cost model (no calibrated point for …)``."""
    sources = step_times.get("by_profile", {})
    notes = step_times.get("notes", [])
    measured = sorted(n for n, s in sources.items() if s == "measured")
    if not measured and all("has no measured step times" in n for n in notes):
        return "cost model (no profile in the fleet has measured step times)"
    parts = []
    if measured:
        parts.append(f"measured for {', '.join(measured)}")
    fallback = [n for n in notes if "has no measured step times" not in n]
    if fallback:
        parts.append("cost model elsewhere" if measured else "cost model")
        parts[-1] += f" ({'; '.join(fallback)})"
    elif len(measured) < len(sources):
        parts.append("cost model for the profiles without measured step times")
    return ", ".join(parts)
