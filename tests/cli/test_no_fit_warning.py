"""A model that fits no device of the fleet: the run stays valid and exits 0 (`fleetsim plan` takes such
a fleet as a result), but `run` and `validate` say so in one warning line on stderr, naming the model,
the largest usable memory in the fleet and what training needs there; the run's end summary too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from simulator.cli.summary import no_fit_warning
from tests.helpers.cli import cli
from tests.helpers.cli_runs import REPO, two_group_scenario


def _no_fit(folder: Path) -> Path:
    """The two-group scenario with 1 MB and 2 MB of usable memory: the test model fits neither."""
    path = two_group_scenario(folder)
    data = yaml.safe_load(path.read_text())
    data["fleet"][0]["overrides"] = {"memory": {"usable_gb": 0.001}}
    data["fleet"][1]["overrides"] = {"memory": {"usable_gb": 0.002}}
    path.write_text(yaml.safe_dump(data))
    return path


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("fleetsim: warning: ")]


def test_run_warns_on_stderr_and_in_the_summary_and_exits_0(tmp_path: Path) -> None:
    scenario = _no_fit(tmp_path)
    done = cli("run", str(scenario), "--timing-only", "--out", str(tmp_path / "run"), "-q")
    assert done.code == 0, done.text
    [line] = _warnings(done.stderr)
    assert "model mlp-tiny fits no device in the fleet" in line
    assert "the largest usable memory, 2.00 MB (lab-slow)" in line and "its training needs there" in line
    assert "WARNING" in done.stdout and "fits no device" in done.stdout  # the end summary


def test_run_warns_once_before_it_starts(tmp_path: Path) -> None:
    """The warning came after the run, with the summary: a user waited for a run (here 1,000,000 simulated
    seconds in which nothing can train) to learn it could not train. It now comes first, before the
    first progress line, once (not again with the summary's WARNING row), and the exit status stays 0."""
    scenario = _no_fit(tmp_path)
    # stderr into stdout: one stream, in the order it was written; a progress line at every callback
    done = subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(scenario), "--timing-only",
                           "--out", str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "FLEETSIM_PROGRESS_EVERY_S": "0", "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    warned = [i for i, line in enumerate(lines) if line.startswith("fleetsim: warning: ")]
    progress = [i for i, line in enumerate(lines) if line.startswith("progress: ")]
    summary = next(i for i, line in enumerate(lines) if "model versions" in line)
    assert len(warned) == 1, lines[:3] + lines[-30:]
    assert "model mlp-tiny fits no device in the fleet" in lines[warned[0]]
    assert progress and warned[0] < progress[0] < summary


def test_validate_warns_and_exits_0(tmp_path: Path) -> None:
    scenario = _no_fit(tmp_path)
    done = cli("validate", str(scenario))
    assert done.code == 0, done.text
    [line] = _warnings(done.stderr)
    assert str(scenario) in line and "model mlp-tiny fits no device" in line and "2.00 MB (lab-slow)" in line
    assert done.stdout.startswith("ok ")


def test_no_warning_when_the_model_fits(tmp_path: Path) -> None:
    scenario = two_group_scenario(tmp_path)
    assert _warnings(cli("validate", str(scenario)).stderr) == []
    done = cli("run", str(scenario), "--timing-only", "--out", str(tmp_path / "run"), "-q")
    assert done.code == 0 and _warnings(done.stderr) == [] and "WARNING" not in done.stdout


def test_one_group_that_fits_is_enough() -> None:
    groups = [{"name": "a", "fits_memory": False, "usable_memory_bytes": 1e6, "peak_memory_bytes": 5e6},
              {"name": "b", "fits_memory": True, "usable_memory_bytes": 9e6, "peak_memory_bytes": 5e6}]
    assert no_fit_warning("m", groups) is None
    groups[1]["fits_memory"] = False
    assert no_fit_warning("m", groups).startswith("model m fits no device in the fleet: the largest usable memory, "
                                                  "9.00 MB (b), is less than the 5.00 MB")
    assert no_fit_warning("m", []) is None  # a summary written before groups existed
