"""resume refuses a finished run and deletes only its own files; run, resume and sweep folders are
locked while in use (issue 12, "Resume and locking")."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers.safety import (cli, mischief_scenario, one_paragraph, popen_fleetsim, tiny_scenario, tree,
                                   write_scenario)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    return err


def test_resume_refuses_a_finished_run_and_changes_nothing(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out), "--checkpoint-every", "0.5").code == 0
    (out / "notes.txt").write_text("my notes")
    (out / "plot.png").write_bytes(b"\x89PNG")
    before = tree(out)
    err = one_paragraph(cli("resume", str(out)), 2)
    assert "this run finished" in err and "nothing to resume" in err and "max_versions" in err
    assert tree(out) == before


def test_resume_of_an_interrupted_run_keeps_the_users_files(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
    out, reference = tmp_path / "run", tmp_path / "reference"
    assert cli("run", str(scenario), "--out", str(reference)).code == 0
    assert cli("run", str(scenario), "--out", str(out)).code == 0
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "stop_reason": "interrupted", "complete": False}))
    (out / "events.parquet").write_bytes(b"half a file")  # what a killed run leaves is fleetsim's to replace
    (out / "notes.txt").write_text("my notes")
    assert cli("resume", str(out)).code == 0
    assert (out / "notes.txt").read_text() == "my notes"
    for table in ("events", "updates", "versions", "devices"):
        assert (out / f"{table}.parquet").read_bytes() == (reference / f"{table}.parquet").read_bytes()


@pytest.mark.slow
def test_a_folder_in_use_is_refused_naming_the_process(tmp_path: Path) -> None:
    sentinel = tmp_path / "spinning"
    spinning = mischief_scenario(tmp_path, "spin", sentinel=str(sentinel), report=False)
    out = tmp_path / "run"
    first = popen_fleetsim("run", str(spinning), "--out", str(out))
    try:
        _wait_for(sentinel, first)
        before = tree(out)
        quick = write_scenario(tmp_path / "quick.yaml", tiny_scenario(tmp_path))
        for args in (("run", str(quick), "--out", str(out), "--force"), ("run", str(quick), "--out", str(out)),
                     ("resume", str(out))):
            err = one_paragraph(cli(*args), 2)
            assert f"in use by process {first.pid}" in err and "nothing was changed" in err, err
        assert tree(out) == before
    finally:
        _stop(first)
    assert json.loads((out / "summary.json").read_text())["stop_reason"] == "interrupted"


@pytest.mark.slow
def test_two_resumes_of_one_folder_cannot_interleave(tmp_path: Path) -> None:
    """An interrupted run whose policy spins again when replayed: the first resume holds the folder
    (spinning), the second is refused and touches nothing."""
    sentinel = tmp_path / "spinning"
    spinning = mischief_scenario(tmp_path, "spin", sentinel=str(sentinel), report=False)
    out = tmp_path / "run"
    run = popen_fleetsim("run", str(spinning), "--out", str(out))
    _wait_for(sentinel, run)
    _stop(run)
    sentinel.unlink()
    first = popen_fleetsim("resume", str(out))
    try:
        _wait_for(sentinel, first)
        before = tree(out)
        err = one_paragraph(cli("resume", str(out)), 2)
        assert f"in use by process {first.pid}" in err
        assert tree(out) == before
    finally:
        _stop(first)


@pytest.mark.slow
def test_a_sweep_folder_in_use_is_refused(tmp_path: Path) -> None:
    sentinel = tmp_path / "spinning"
    spinning = mischief_scenario(tmp_path, "spin", sentinel=str(sentinel), report=False)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": str(spinning), "grid": {"fleet[0].count": [4]}}))
    out = tmp_path / "sweep-out"
    first = popen_fleetsim("sweep", str(sweep), "--out", str(out), "--no-report")
    try:
        _wait_for(sentinel, first)
        before = tree(out)
        err = one_paragraph(cli("sweep", str(sweep), "--out", str(out), "--no-report"), 2)
        assert "sweep folder is in use by process" in err and str(first.pid) in err
        assert tree(out) == before
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=90)
