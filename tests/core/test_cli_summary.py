"""The summary table `fleetsim run` prints says what summary.json says, in units a reader takes in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simulator.cli import human_bytes
from tests.helpers.scenarios import base_scenario, write_profile


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (999, "999 B"), (1_000, "1.00 kB"), (1_234_567, "1.23 MB"), (44_752_448_000_000, "44.75 TB"),
    (2.5e9, "2.50 GB"),
])
def test_human_bytes_uses_decimal_units(n: float, text: str) -> None:
    assert human_bytes(n) == text


@pytest.mark.slow
def test_run_prints_the_summary_of_its_run_folder(tmp_path: Path, profile_dir: Path) -> None:
    scenario = base_scenario(tmp_path, [{"profile": str(write_profile(profile_dir, "p", step_s=0.5)), "count": 3}])
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(path), "--timing-only", "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, check=True, env=None,
                         cwd=tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    text = " ".join(out.stdout.replace("│", " ").split())  # the table's cells, without its borders
    assert f"{human_bytes(summary['bytes_down'])} down, {human_bytes(summary['bytes_up'])} up" in text
    assert f"{summary['accepted']:,} accepted" in text and "model versions 3" in text
    assert not (tmp_path / "run" / "report.html").exists()  # the scenario says output.report: false
