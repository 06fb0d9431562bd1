"""A run killed with SIGKILL and resumed ends with the same traces as an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import simulator
from simulator.api import resume
from simulator.output.checkpoint import CHECKPOINT_FILE
from tests.helpers.scenarios import base_scenario, write_profile

TABLES = ("events", "updates", "versions", "evals", "devices")


def _scenario_file(tmp_path: Path) -> Path:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    fast = write_profile(profiles, "fast", step_s=0.5)
    slow = write_profile(profiles, "slow", step_s=1.5)
    scenario = base_scenario(tmp_path, [
        {"profile": str(fast), "count": 3, "availability": {"kind": "churn", "mean_online_s": 40, "mean_offline_s": 5}},
        {"profile": str(slow), "count": 2},
    ])
    scenario["workload"] = {
        "model": {"name": "cnn", "preset": "tiny"}, "dataset": {"name": "digits", "image_size": 8},
        "partition": {"kind": "dirichlet", "alpha": 0.5}, "batch_size": 16, "local_steps": 3,
    }
    scenario["algorithm"] = {"name": "co-s2p", "aggregation": {"k": 2, "deadline_s": 5}}
    scenario["evaluation"] = {"every_versions": 2}
    scenario["stop"] = {"sim_time_s": 40}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def _tables(run_dir: Path) -> dict[str, bytes]:
    return {t: (run_dir / f"{t}.parquet").read_bytes() for t in TABLES}


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_traces(tmp_path: Path) -> None:
    scenario = _scenario_file(tmp_path)
    reference = simulator.run(scenario, out=tmp_path / "reference", report=False)
    assert reference.summary["versions"] > 8

    killed = tmp_path / "killed"
    # The child kills itself with SIGKILL from its progress callback once simulated time passes
    # 25 s, i.e. after the checkpoints at 10 and 20 s were written.
    child = textwrap.dedent(f"""
        import os, signal, simulator
        def progress(sim_s, versions, acc):
            if sim_s > 25:
                os.kill(os.getpid(), signal.SIGKILL)
        simulator.run({str(scenario)!r}, out={str(killed)!r}, report=False, checkpoint_every_s=10, progress=progress)
    """)
    proc = subprocess.run([sys.executable, "-c", child], cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert (killed / CHECKPOINT_FILE).exists() and not (killed / "summary.json").exists()
    # the killed run's traces up to its last flush make a (partial) report
    from simulator.report import write_run_report
    from simulator.trace.recorder import read_table

    flushed = read_table(killed, "versions")
    assert 0 < len(flushed) < len(reference.versions)
    assert write_run_report(killed).stat().st_size > 100_000

    resumed = resume(killed, report=False)
    assert _tables(resumed.run_dir) == _tables(reference.run_dir)
    ref_summary = json.loads((reference.run_dir / "summary.json").read_text())
    assert resumed.summary == ref_summary


def test_resume_without_checkpoint_reruns_from_the_start(tmp_path: Path) -> None:
    scenario = _scenario_file(tmp_path)
    first = simulator.run(scenario, out=tmp_path / "a", report=False, timing_only=True)
    (first.run_dir / "summary.json").unlink()  # as if killed before any checkpoint
    again = resume(first.run_dir, report=False)
    other = simulator.run(scenario, out=tmp_path / "b", report=False, timing_only=True)
    assert _tables(again.run_dir)["events"] == _tables(other.run_dir)["events"]


def test_checkpointing_does_not_change_the_traces(tmp_path: Path) -> None:
    scenario = _scenario_file(tmp_path)
    plain = simulator.run(scenario, out=tmp_path / "plain", report=False, timing_only=True)
    checked = simulator.run(scenario, out=tmp_path / "checked", report=False, timing_only=True, checkpoint_every_s=7)
    assert _tables(plain.run_dir) == _tables(checked.run_dir)
