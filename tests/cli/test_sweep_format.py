"""`fleetsim sweep --format csv|json`: the aggregate on stdout, equal to the sweep's aggregate.csv."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import pandas as pd

from tests.helpers.cli_runs import fleetsim
from tests.helpers.sweep import write_sweep


@pytest.mark.slow
def test_sweep_prints_its_aggregate_as_csv_then_json(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "s", {"name": "fmt", "grid": {"algorithm.name": ["fedavg", "fedasync"]},
                                         "seeds": [0, 1], "timing_only": True})
    out = tmp_path / "out"
    done = fleetsim("sweep", str(sweep), "--out", str(out), "--no-report", "--format", "csv")
    assert done.returncode == 0, done.stderr
    printed = pd.read_csv(io.StringIO(done.stdout))
    written = pd.read_csv(out / "aggregate.csv")
    pd.testing.assert_frame_equal(printed, written, check_dtype=False)
    assert "ran 4, skipped 0" in done.stderr and "variants: 4/4" in done.stderr  # plain lines, off a terminal
    again = fleetsim("sweep", str(sweep), "--out", str(out), "--no-report", "--format", "json", "--quiet")
    rows = json.loads(again.stdout)
    assert [r["algorithm.name"] for r in rows] == list(written["algorithm.name"]) and all(r["runs"] == 2 for r in rows)
    assert "variants:" not in again.stderr and "ran 0, skipped 4" in again.stderr
