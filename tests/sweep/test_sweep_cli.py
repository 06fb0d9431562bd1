"""`fleetsim sweep` and `fleetsim calibrate` through the command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.config.profiles import StepPoint, load_profile
from tests.helpers.cli import assert_bad_input, cli_subprocess
from tests.helpers.sweep import write_sweep

runner = CliRunner()


@pytest.mark.slow
def test_sweep_command_runs_resumes_and_prints_the_table(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "s", {"name": "cli", "grid": {"algorithm.name": ["fedavg", "fedasync"]},
                                         "seeds": [0, 1], "timing_only": True})
    out = tmp_path / "out"
    first = runner.invoke(app, ["sweep", str(sweep), "--out", str(out), "--no-report"])
    assert first.exit_code == 0, first.output
    assert "ran 4, skipped 0" in first.output and "fedasync" in first.output
    table = pd.read_csv(out / "aggregate.csv")
    assert sorted(table["algorithm.name"]) == ["fedasync", "fedavg"] and (table.runs == 2).all()
    again = runner.invoke(app, ["sweep", str(sweep), "--out", str(out), "--no-report"])
    assert again.exit_code == 0 and "ran 0, skipped 4" in again.output


def test_sweep_with_a_bad_key_is_one_clear_error(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "s", {"name": "bad", "grid": {"algorithm.aggregation.kk": [1, 2]}, "timing_only": True})
    result = runner.invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "grid.algorithm.aggregation.kk" in result.output and "Traceback" not in result.output



def test_a_sweep_whose_base_is_missing_prints_only_the_error(tmp_path: Path) -> None:
    """A real process: the error names the sweep file and its ``base`` field, and it is the whole
    output, with no progress bar drawn before the file was read and expanded."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text("base: nothere.yaml\ngrid: {algorithm.name: [fedavg]}\n")
    result = cli_subprocess("sweep", str(sweep), "--out", str(tmp_path / "o"))
    assert_bad_input(result, file=sweep, field="base", value="'nothere.yaml'")
    assert result.stderr.startswith("fleetsim: bad input") and "variants" not in result.text
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_calibrate_command_writes_a_loadable_profile(tmp_path: Path) -> None:
    out = tmp_path / "host.yaml"
    result = runner.invoke(app, ["calibrate", "--model", "mlp-tiny", "--batch", "16", "--input-shape", "1,8,8",
                                 "--exits", "final", "--repeats", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    profile = load_profile(str(out))
    assert profile.lookup_measured_step_s(StepPoint("mlp-tiny", 1.0, None, 16, (1, 8, 8), exits="final")) is not None
    assert profile.lookup_measured_step_s(StepPoint("mlp-tiny", 1.0, None, 16, (1, 8, 8), exits="all")) is None
    assert "mlp-tiny @1×8×8 batch 16, final exit only" in " ".join(result.output.split())
