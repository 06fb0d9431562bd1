"""The CLI tests' shared pieces (the CLI as a user meets it): a small timing-only scenario with named groups and a fault, and a way
to call `fleetsim` in this process or as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.scenarios import base_scenario, write_profile

REPO = Path(__file__).resolve().parents[2]


def two_group_scenario(folder: Path, **overrides: Any) -> Path:
    """Two named groups of test boards (exact 0.5 s and 1 s steps) and a server link fault at 1-2 s."""
    profiles = folder / "profiles"
    profiles.mkdir(exist_ok=True)
    fast, slow = write_profile(profiles, "fastboard", step_s=0.5), write_profile(profiles, "slowboard", step_s=1.0)
    data = base_scenario(folder, [{"name": "lab-fast", "profile": str(fast), "count": 2},
                                  {"name": "lab-slow", "profile": str(slow), "count": 2}],
                         faults=[{"kind": "link_down", "link": "server", "start_s": 1.0, "end_s": 2.0}])
    data["stop"] = {"max_versions": 4, "sim_time_s": 1e6}
    data.update(overrides)
    path = folder / "two_groups.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def fleetsim(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m simulator.cli ARGS` as a real process, stdout and stderr not terminals."""
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env={**os.environ, **(env or {})})
