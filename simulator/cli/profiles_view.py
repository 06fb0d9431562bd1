"""`fleetsim profiles`: the device profiles as a table, or as records for --format json|csv.

Moved here from simulator/config/profiles.py so that `config` never imports rich (issue 14): a
profile is data; how a terminal shows it is the CLI's business.
"""

from __future__ import annotations

from typing import Any, Iterable

from simulator.cli.tables import Grid
from simulator.config.profiles import DeviceProfile

CAPTION = "effective = FP32 peak x efficiency x the default mode's compute scale (x); * = default mode"
HEADERS = ["profile", "FP32\nGFLOP/s", "effi-\nciency", "effective\nGFLOP/s", "memory GB\nusable/total",
           "memory\nGB/s", "power modes", "idle\nW", "network"]


def _modes_cell(profile: DeviceProfile) -> str:
    lines = []
    for name, mode in profile.power_modes.items():
        mark = "*" if name == profile.default_power_mode else ""
        lines.append(f"{name}{mark} {mode.watts:g}W x{mode.clock_scale:.2f}")
    return "\n".join(lines)


def _network_cell(profile: DeviceProfile) -> str:
    return "\n".join(i.standard for i in profile.network.interfaces) or "-"


def profiles_grid(profiles: Iterable[DeviceProfile]) -> Grid:
    """One row per profile; ``*`` marks the default power mode."""
    grid = Grid("Device profiles", list(HEADERS), caption=CAPTION, right=frozenset({1, 2, 3, 4, 5, 7}))
    for p in profiles:
        precision = "" if p.compute.precision == "fp32" else f" {p.compute.precision}"
        grid.rows.append([
            p.name, f"{p.compute.peak_fp32_gflops:,.0f}", f"{p.compute.training_efficiency:.2f}",
            f"{p.effective_flops() / 1e9:,.1f}{precision}", f"{p.memory.usable_gb:g} / {p.memory.total_gb:g}",
            f"{p.memory.bandwidth_gbps:g}", _modes_cell(p), f"{p.idle_w:g}", _network_cell(p),
        ])
    return grid


def profile_record(p: DeviceProfile) -> dict[str, Any]:
    """The table's figures as numbers with units in their names (what --format json|csv prints)."""
    return {
        "profile": p.name,
        "display_name": p.display_name,
        "peak_fp32_gflops": p.compute.peak_fp32_gflops,
        "training_efficiency": p.compute.training_efficiency,
        "precision": p.compute.precision,
        "effective_gflops": p.effective_flops() / 1e9,
        "usable_memory_gb": p.memory.usable_gb,
        "total_memory_gb": p.memory.total_gb,
        "memory_bandwidth_gbps": p.memory.bandwidth_gbps,
        "default_power_mode": p.default_power_mode,
        "power_modes": {name: {"watts": m.watts, "clock_scale": m.clock_scale} for name, m in p.power_modes.items()},
        "idle_w": p.idle_w,
        "network": [i.standard for i in p.network.interfaces],
    }
