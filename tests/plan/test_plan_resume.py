"""Resuming skips finished candidates; the table is the same whatever the backend and --jobs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.plan import write_plan
from simulator.plan import run_plan

OPTIMISER = {"search": {"method": "optuna", "budget_runs": 12, "batch": 4}}


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    """The optimiser path (12 runs in batches of 4), in this process."""
    folder = tmp_path_factory.mktemp("reference")
    return run_plan(write_plan(folder, clients_per_round=2, plan=OPTIMISER), report=False)


@pytest.mark.slow
def test_an_interrupted_plan_resumes_without_rerunning_finished_candidates(reference, tmp_path: Path) -> None:
    path = write_plan(tmp_path, clients_per_round=2, plan=OPTIMISER)
    seen: list[tuple[str, str]] = []

    def interrupt_after_five(phase: str, name: str, status: str) -> None:
        seen.append((name, status))
        if len(seen) == 5:
            raise Stop

    with pytest.raises(Stop):
        run_plan(path, report=False, progress=interrupt_after_five)
    finished = [name for name, status in seen if status == "done"]
    assert len(finished) == 5
    stamps = {n: (tmp_path / "out" / "runs" / n / "summary.json").stat().st_mtime_ns for n in finished}
    statuses: list[tuple[str, str]] = []
    result = run_plan(path, report=False, progress=lambda phase, name, status: statuses.append((name, status)))
    skipped = [n for n, s in statuses if s == "skipped"]
    assert sorted(skipped) == sorted(finished) and result.reused == 5
    assert result.ran == reference.outcome.runs - 5
    for name, stamp in stamps.items():
        assert (tmp_path / "out" / "runs" / name / "summary.json").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(result.table.frame, reference.table.frame)
    # a finished plan run again runs nothing, and --force runs everything again
    again = run_plan(path, report=False)
    assert (again.ran, again.reused) == (0, reference.outcome.runs)
    forced = run_plan(path, report=False, force=True)
    assert (forced.ran, forced.reused) == (reference.outcome.runs, 0)
    pd.testing.assert_frame_equal(forced.table.frame, reference.table.frame)


@pytest.mark.slow
def test_a_killed_candidate_is_rerun_and_an_edited_plan_reruns_what_changed(tmp_path: Path) -> None:
    path = write_plan(tmp_path)
    first = run_plan(path, report=False)
    victim = "good=2"
    (tmp_path / "out" / "runs" / victim / "summary.json").unlink()   # as if killed before its end
    statuses: list[tuple[str, str]] = []
    second = run_plan(path, report=False, progress=lambda p, name, s: statuses.append((name, s)))
    assert [n for n, s in statuses if s == "done"] == [victim] and second.ran == 1
    pd.testing.assert_frame_equal(second.table.frame, first.table.frame)
    # a longer deadline changes every candidate's stop condition: all run again
    path.write_text(path.read_text().replace("deadline_s: 1000", "deadline_s: 1500"))
    third = run_plan(path, report=False)
    assert third.ran == first.outcome.runs and third.reused == 0


@pytest.mark.slow
def test_a_local_process_pool_gives_the_same_table(reference, tmp_path: Path) -> None:
    result = run_plan(write_plan(tmp_path, clients_per_round=2, plan=OPTIMISER), jobs=2, report=False)
    assert result.ran == reference.outcome.runs
    pd.testing.assert_frame_equal(result.table.frame, reference.table.frame)


@pytest.mark.slow
@pytest.mark.ray
def test_ray_gives_the_same_table(reference, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    try:
        result = run_plan(write_plan(tmp_path, clients_per_round=2, plan=OPTIMISER), jobs=2, backend="ray",
                          report=False)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert not ray.is_initialized()  # the one cluster the plan started for all its batches is shut down
    assert result.ran == reference.outcome.runs
    pd.testing.assert_frame_equal(result.table.frame, reference.table.frame)
