"""Ctrl-C stops a run cleanly: traces and summary kept, a partial report written, exit status 130."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from simulator.trace.recorder import read_table
from tests.helpers import processes
from tests.helpers.scenarios import base_scenario, write_profile


@pytest.mark.slow
def test_sigint_keeps_traces_and_writes_a_partial_report(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    dev = write_profile(profiles, "dev", step_s=0.01)
    scenario = base_scenario(tmp_path, [{"profile": str(dev), "count": 50}])
    scenario["algorithm"] = {"name": "fedasync"}
    scenario["stop"] = {"sim_time_s": 1e9}  # far longer than the test waits
    scenario["output"] = {"folder": str(tmp_path / "runs"), "report": True, "flush_rows": 500}
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(scenario))
    run_dir = tmp_path / "runs" / "t"
    proc = processes.start([sys.executable, "-m", "simulator.cli", "run", str(path), "--timing-only"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((run_dir / "_parts" / "events").glob("part-*.parquet")):
        assert time.monotonic() < deadline and proc.poll() is None, "the run never flushed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["versions"] > 0
    assert len(read_table(run_dir, "events")) > 500
    assert (run_dir / "report.html").stat().st_size > 100_000
