"""Real-training runs give byte-identical traces whichever executor trained the jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

import simulator
from simulator.learning.executors import InlineExecutor, ProcessPoolExecutor, RayExecutor
from tests.helpers.markers import needs_ray
from tests.helpers.scenarios import executor_scenario, write_profile


def _parquet_bytes(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.glob("*.parquet"))}


def _run(tmp_path: Path, profile_dir: Path, name: str, executor) -> dict[str, bytes]:
    try:
        run = simulator.run(executor_scenario(tmp_path, profile_dir), out=tmp_path / name, executor=executor, report=False)
    finally:
        executor.shutdown()
    assert len(run.evals) == 6  # version 0 and five merges
    return _parquet_bytes(run.run_dir)


@pytest.mark.slow
def test_inline_and_process_pool_give_identical_traces(tmp_path: Path, profile_dir: Path) -> None:
    inline = _run(tmp_path, profile_dir, "inline", InlineExecutor())
    pool = _run(tmp_path, profile_dir, "pool", ProcessPoolExecutor(2))
    assert inline.keys() == pool.keys() and "evals.parquet" in inline
    assert inline == pool


@pytest.mark.slow
def test_full_model_jobs_give_identical_traces(tmp_path: Path, profile_dir: Path) -> None:
    """FedAvg: every job carries the whole global model (by value, two jobs in flight per worker,
    the evaluations in the learner's thread); the traces must still be the inline run's."""
    scenario = executor_scenario(tmp_path, profile_dir)
    scenario["algorithm"] = {"name": "fedavg"}
    runs = {}
    for name, executor in (("inline", InlineExecutor()), ("pool", ProcessPoolExecutor(2))):
        try:
            run = simulator.run(scenario, out=tmp_path / name, executor=executor, report=False)
        finally:
            executor.shutdown()
        runs[name] = _parquet_bytes(run.run_dir)
    assert runs["inline"] == runs["pool"] and len(run.evals) == 6


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_ray_gives_identical_traces(tmp_path: Path, profile_dir: Path) -> None:
    inline = _run(tmp_path, profile_dir, "inline", InlineExecutor())
    ray = _run(tmp_path, profile_dir, "ray", RayExecutor(num_cpus=2))
    assert inline == ray


def test_a_submodel_that_cannot_fit_is_never_trained(tmp_path: Path, profile_dir: Path, monkeypatch) -> None:
    from simulator.learning.learner import Learner

    started: list[int] = []
    real_start = Learner.start

    def spy(self, job_id: int, local_steps: int) -> None:
        started.append(job_id)
        real_start(self, job_id, local_steps)

    monkeypatch.setattr(Learner, "start", spy)
    scenario = executor_scenario(tmp_path, profile_dir)
    tiny = write_profile(profile_dir, "tiny", step_s=0.5, usable_gb=1e-5, total_gb=1.0)
    scenario["fleet"].append({"profile": str(tiny), "count": 1})
    scenario["algorithm"] = {"name": "fedavg"}  # full model only: nothing smaller to fall back to
    run = simulator.run(scenario, out=tmp_path / "oom", report=False)
    oom = run.updates[run.updates.outcome == "oom"]
    assert oom.device.tolist() == [5]
    assert set(oom.job_id).isdisjoint(started)
    assert set(run.updates[run.updates.outcome == "accepted"].job_id) <= set(started)
    assert not ((run.events.device == 5) & (run.events.phase == "compute")).any()
