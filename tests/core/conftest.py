"""Small fleets with exactly known speeds, for holding the core to closed forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml


def write_profile(folder: Path, name: str, *, step_s: float | None = None, usable_gb: float = 6.0,
                  total_gb: float = 8.0, gflops: float = 100.0, busy_w: float = 10.0, idle_w: float = 2.0) -> Path:
    """A user profile YAML; with `step_s`, a measured step time for the test model makes compute exact."""
    data: dict[str, Any] = {
        "name": name,
        "display_name": name,
        "description": "test device",
        "compute": {"peak_fp32_gflops": gflops, "peak_fp16_gflops": 2 * gflops, "training_efficiency": 0.5,
                    "step_overhead_s": 0.0},
        "memory": {"total_gb": total_gb, "usable_gb": usable_gb, "bandwidth_gbps": 1000.0},
        "power_modes": {"max": {"watts": busy_w, "clock_scale": 1.0}},
        "default_power_mode": "max",
        "idle_w": idle_w,
        "network": {"interfaces": [{"kind": "ethernet", "standard": "1000BASE-T", "max_mbps": 1000}]},
    }
    if step_s is not None:
        data["measured_step_times"] = [  # measured at the tests' point: 8×8 digits, batch 16, either exits mode
            {"model": model, "width_ratio": 1.0, "batch_size": 16, "input_shape": [1, 8, 8], "exits": exits,
             "step_s": step_s} for model in ("mlp-tiny", "cnn-tiny") for exits in ("all", "final")
        ]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def base_scenario(folder: Path, groups: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    scenario: dict[str, Any] = {
        "name": "t",
        "seed": 1,
        "fleet": groups,
        "network": {
            "server": {"downlink_mbps": 1e6, "uplink_mbps": 1e6},
            "ethernet": {"rate_mbps": 8.0, "latency": {"mean_ms": 0.0}},
        },
        "workload": {
            "model": {"name": "mlp", "preset": "tiny"},
            "dataset": {"name": "digits", "image_size": 8},
            "samples_per_client": 64,
            "batch_size": 16,
            "local_epochs": 1,
        },
        "algorithm": {"name": "fedavg"},
        "evaluation": {"every_versions": None},
        "stop": {"max_versions": 3, "sim_time_s": 1e6},
        "output": {"folder": str(folder / "runs"), "report": False},
    }
    for key, value in overrides.items():
        scenario[key] = value
    return scenario


@pytest.fixture
def profile_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir()
    return folder
