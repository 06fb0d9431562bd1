"""The one builder of test device profiles: a 100 GFLOP/s board with 8 GB, exact step times measured
for the tests' models, so compute time is a closed form. Each helper module's ``write_profile`` is a
thin variant of this (what it omits or changes is the point of its tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml


def profile_data(name: str, *, gflops: float = 100.0, step_overhead_s: float | None = 0.0, total_gb: float = 8.0,
                 usable_gb: float = 6.0, bandwidth_gbps: float = 1000.0, busy_w: float = 10.0, idle_w: float = 2.0,
                 described: bool = True, ethernet: bool = True) -> dict[str, Any]:
    """A profile's fields; `described` adds display name and description, `ethernet` a gigabit port."""
    compute: dict[str, Any] = {"peak_fp32_gflops": gflops, "peak_fp16_gflops": 2 * gflops, "training_efficiency": 0.5}
    if step_overhead_s is not None:
        compute["step_overhead_s"] = step_overhead_s
    data: dict[str, Any] = {
        "name": name,
        "compute": compute,
        "memory": {"total_gb": total_gb, "usable_gb": usable_gb, "bandwidth_gbps": bandwidth_gbps},
        "power_modes": {"max": {"watts": busy_w, "clock_scale": 1.0}},
        "default_power_mode": "max",
        "idle_w": idle_w,
    }
    if described:
        data.update(display_name=name, description="test device")
    if ethernet:
        data["network"] = {"interfaces": [{"kind": "ethernet", "standard": "1000BASE-T", "max_mbps": 1000}]}
    return data


def measured_steps(step_s: float, models: Iterable[str] = ("mlp-tiny",), *, batch_size: int = 16,
                   at_test_point: bool = True) -> list[dict[str, Any]]:
    """Measured step times; `at_test_point` pins them to the tests' 8×8 digits, for either exit mode
    (else they match any input shape and exits)."""
    if not at_test_point:
        return [{"model": model, "width_ratio": 1.0, "batch_size": batch_size, "step_s": step_s} for model in models]
    return [{"model": model, "width_ratio": 1.0, "batch_size": batch_size, "input_shape": [1, 8, 8], "exits": exits,
             "step_s": step_s} for model in models for exits in ("all", "final")]


def tiny_workload(samples_per_client: int = 64) -> dict[str, Any]:
    """The workload of the closed-form, plan, sweep and safety scenarios: mlp-tiny on 8×8 digits,
    batch 16, one epoch (samples_per_client / 16 steps a job)."""
    return {"model": {"name": "mlp", "preset": "tiny"}, "dataset": {"name": "digits", "image_size": 8},
            "samples_per_client": samples_per_client, "batch_size": 16, "local_epochs": 1}


def write_profile_file(folder: Path, data: dict[str, Any]) -> Path:
    """`data` as ``<folder>/<name>.yaml``."""
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
