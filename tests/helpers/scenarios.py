"""Small fleets with exactly known speeds, for holding the core to closed forms (the engine, policies,
faults, resume and executor tests build on them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from tests.helpers.profiles import measured_steps, profile_data, tiny_workload, write_profile_file


def write_profile(folder: Path, name: str, *, step_s: float | None = None, usable_gb: float = 6.0,
                  total_gb: float = 8.0, gflops: float = 100.0, busy_w: float = 10.0, idle_w: float = 2.0) -> Path:
    """A user profile YAML; with `step_s`, a measured step time for the test model makes compute exact."""
    data = profile_data(name, gflops=gflops, total_gb=total_gb, usable_gb=usable_gb, busy_w=busy_w, idle_w=idle_w)
    if step_s is not None:  # measured at the tests' point: 8×8 digits, batch 16, either exits mode
        data["measured_step_times"] = measured_steps(step_s, ("mlp-tiny", "cnn-tiny"))
    return write_profile_file(folder, data)


def base_scenario(folder: Path, groups: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    scenario: dict[str, Any] = {
        "name": "t",
        "seed": 1,
        "fleet": groups,
        "network": {
            "server": {"downlink_mbps": 1e6, "uplink_mbps": 1e6},
            "ethernet": {"rate_mbps": 8.0, "latency": {"mean_ms": 0.0}},
        },
        "workload": tiny_workload(),
        "algorithm": {"name": "fedavg"},
        "evaluation": {"every_versions": None},
        "stop": {"max_versions": 3, "sim_time_s": 1e6},
        "output": {"folder": str(folder / "runs"), "report": False},
    }
    for key, value in overrides.items():
        scenario[key] = value
    return scenario


def executor_scenario(tmp_path: Path, profile_dir: Path) -> dict[str, Any]:
    """Real training of cnn-tiny on five devices of two speeds, Co-S²P with k=2, five versions: small
    enough to run under every executor, big enough that a scheduling difference changes the traces."""
    fast = write_profile(profile_dir, "fast", step_s=0.5)
    slow = write_profile(profile_dir, "slow", step_s=1.5)
    scenario = base_scenario(tmp_path, [{"profile": str(fast), "count": 3}, {"profile": str(slow), "count": 2}])
    scenario["workload"] = {
        "model": {"name": "cnn", "preset": "tiny"},
        "dataset": {"name": "digits", "image_size": 8},
        "partition": {"kind": "dirichlet", "alpha": 0.5},
        "batch_size": 16,
        "local_steps": 3,
    }
    scenario["algorithm"] = {"name": "co-s2p", "aggregation": {"k": 2, "deadline_s": 30}}
    scenario["evaluation"] = {"every_versions": 1}
    scenario["stop"] = {"max_versions": 5, "sim_time_s": 1e5}
    return scenario
