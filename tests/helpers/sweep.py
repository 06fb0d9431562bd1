"""Small timing-only scenarios and sweep files for the sweep tests (a uniquely named module: other
test folders have their own conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.helpers.profiles import measured_steps, profile_data, tiny_workload, write_profile_file


def write_profile(folder: Path, name: str, step_s: float, *, batch_size: int = 16) -> Path:
    """A user profile whose measured step time for mlp-tiny makes compute exact."""
    data = profile_data(name, described=False, ethernet=False)
    data["measured_step_times"] = measured_steps(step_s, batch_size=batch_size)
    return write_profile_file(folder, data)


def base_scenario(profiles: list[str]) -> dict[str, Any]:
    """Two groups on own 8 Mbit/s ports, mlp-tiny on 8×8 digits, a few FedAvg rounds."""
    return {
        "name": "sweeptest",
        "seed": 0,
        "fleet": [{"profile": profiles[0], "count": 2},
                  {"profile": profiles[1], "count": 2,
                   "availability": {"kind": "churn", "mean_online_s": 30, "mean_offline_s": 10}}],
        "network": {"server": {"downlink_mbps": 1000, "uplink_mbps": 1000},
                    "ethernet": {"rate_mbps": 8.0, "latency": {"mean_ms": 1.0, "jitter_ms": 0.5}}},
        "workload": tiny_workload(),
        "algorithm": {"name": "fedavg"},
        "evaluation": {"every_versions": 1},
        "stop": {"sim_time_s": 120},
        "output": {"report": False},
    }


def write_sweep(folder: Path, sweep: dict[str, Any], *, base: dict[str, Any] | None = None) -> Path:
    """Write profiles/, base.yaml (relative profile paths) and sweep.yaml into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    profiles = folder / "profiles"
    profiles.mkdir(exist_ok=True)
    write_profile(profiles, "fast", 0.5)
    write_profile(profiles, "slow", 2.0)
    if base is None:
        base = base_scenario(["profiles/fast.yaml", "profiles/slow.yaml"])
    (folder / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    data = {"base": "base.yaml", **sweep}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
