"""A plan whose optimum follows from memory limits and counts alone (a uniquely named module: other
test folders have their own conftest.py).

Four kinds, mlp-tiny on 8×8 digits, FedAvg (synchronous rounds of every device, or of
``clients_per_round``), goal: 3 versions in 1,000 simulated seconds.

- ``tiny`` (price 10): 0.1 GB usable, below the 0.3 GB framework overhead alone → out of memory
  whatever the cost model says of the model.
- ``slow`` (price 50): 600 s per step (measured, and as its step overhead): 4 steps per job make a
  job 2,400 s, longer than the deadline, so no round that includes a slow device ends in time.
- ``good`` (price 300) and ``big`` (price 1000): 0.5 s and 0.1 s per step; mlp-tiny is a few
  kilobytes on 8 Mb/s ports, so a round of them takes seconds, far inside the deadline.

So with every device in every round, the cheapest fleet that meets the goal is one ``good``; with
``clients_per_round: 2`` it is two ``good`` (one good and slow ones always put a slow device in
the round; one good alone is too few to merge).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.helpers.profiles import measured_steps, profile_data, tiny_workload, write_profile_file

STEPS_PER_JOB = 4   # samples_per_client 64 / batch 16, one epoch


def write_profile(folder: Path, name: str, step_s: float, *, usable_gb: float = 6.0) -> Path:
    """The step time is measured (any input) and is the step overhead too: the cost model agrees."""
    data = profile_data(name, step_overhead_s=step_s, usable_gb=usable_gb, described=False, ethernet=False)
    data["measured_step_times"] = measured_steps(step_s, at_test_point=False)
    return write_profile_file(folder, data)


def base_scenario() -> dict[str, Any]:
    return {
        "name": "plantest",
        "seed": 0,
        "fleet": [{"profile": "profiles/good.yaml", "count": 1}],   # replaced by the plan
        "network": {"server": {"downlink_mbps": 1000, "uplink_mbps": 1000},
                    "access_points": {"ap": {"capacity_mbps": 50, "latency": {"mean_ms": 2, "jitter_ms": 1}}},
                    "ethernet": {"rate_mbps": 8.0, "latency": {"mean_ms": 1.0, "jitter_ms": 0.5}}},
        "workload": tiny_workload(),
        "algorithm": {"name": "fedavg"},
        "evaluation": {"every_versions": 1},
        "stop": {"sim_time_s": 120},
        "output": {"report": False},
    }


CATALOGUE = [
    {"name": "tiny", "profile": "profiles/tiny.yaml", "unit_price": 10, "max_count": 4},
    {"name": "slow", "profile": "profiles/slow.yaml", "unit_price": 50, "max_count": 3, "link": "ap"},
    {"name": "good", "profile": "profiles/good.yaml", "unit_price": 300, "max_count": 2},
    {"name": "big", "profile": "profiles/big.yaml", "unit_price": 1000, "max_count": 1},
]


def write_plan(folder: Path, *, clients_per_round: int | None = None, plan: dict[str, Any] | None = None,
               base: dict[str, Any] | None = None) -> Path:
    """profiles/, base.yaml and plan.yaml in `folder`; `plan` keys replace the default plan's."""
    folder.mkdir(parents=True, exist_ok=True)
    profiles = folder / "profiles"
    profiles.mkdir(exist_ok=True)
    write_profile(profiles, "tiny", 0.5, usable_gb=0.1)
    write_profile(profiles, "slow", 600.0)
    write_profile(profiles, "good", 0.5)
    write_profile(profiles, "big", 0.1)
    base = base or base_scenario()
    if clients_per_round is not None:
        base["algorithm"]["aggregation"] = {"clients_per_round": clients_per_round}
    (folder / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    data: dict[str, Any] = {"base": "base.yaml", "catalogue": CATALOGUE, "goal": {"versions": 3, "deadline_s": 1000},
                            "minimise": "price", "output": str(folder / "out")}
    data.update(plan or {})
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
