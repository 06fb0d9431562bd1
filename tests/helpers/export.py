"""A small real fleet for the export tests (a uniquely named module, see tests/report/conftest.py):
named groups on two access points and Ethernet, churn, and every kind of fault, timing-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def scenario(name: str = "export_small", sim_time_s: float = 900.0) -> dict[str, Any]:
    return {
        "name": name, "seed": 3,
        "fleet": [
            {"name": "nano-ap1", "profile": "jetson-nano-4gb", "count": 4, "link": "ap1"},
            {"name": "nano-ap2", "profile": "jetson-nano-4gb", "count": 3, "link": "ap2",
             "availability": {"kind": "churn", "mean_online_s": 240, "mean_offline_s": 60}},
            {"profile": "jetson-agx-orin-64gb", "count": 2, "link": "ethernet"},
        ],
        "network": {"server": {"downlink_mbps": 200, "uplink_mbps": 200},
                    "access_points": {"ap1": {"capacity_mbps": 60}, "ap2": {"capacity_mbps": 60}}},
        "workload": {"model": {"name": "resnet", "preset": "resnet18"},
                     "dataset": {"name": "digits", "image_size": 32, "channels": 3},
                     "batch_size": 16, "local_epochs": 1},
        "algorithm": {"name": "fedavg"},
        "evaluation": {"every_versions": None},
        "stop": {"sim_time_s": sim_time_s},
        "faults": [
            {"kind": "link_down", "link": "ap1", "start_s": 200, "end_s": 260, "drop_transfers": True},
            {"kind": "server_pause", "start_s": 400, "end_s": 430},
            {"kind": "devices_offline", "devices": ["nano-ap2#0"], "start_s": 500, "end_s": 600},
            {"kind": "server_pause", "start_s": 5000, "end_s": 5100},  # after the end: never happens
        ],
    }


def run_small(folder: Path, **kwargs: Any) -> Path:
    import simulator

    out = folder / "run"
    simulator.run(scenario(**kwargs), out=out, timing_only=True, force=True, report=False)
    return out
