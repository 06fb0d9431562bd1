"""`fleetsim export --format csv`: one CSV per table that reads back to the same rows, the planner
table and the fault log beside them, and a folder fleetsim did not write is never written into."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers.export import run_small

from simulator.errors import InputError
from simulator.export import write_csv_tables
from simulator.export.csv_tables import MARKER


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_small(tmp_path_factory.mktemp("csv"))


@pytest.mark.slow
def test_every_table_reads_back_to_the_same_rows(run_dir, tmp_path):
    rows = write_csv_tables(run_dir, tmp_path / "csv")
    for table in ("events", "updates", "versions", "devices"):
        parquet = pd.read_parquet(run_dir / f"{table}.parquet")
        csv = pd.read_csv(tmp_path / "csv" / f"{table}.csv")
        assert rows[f"{table}.csv"] == len(parquet) and list(csv.columns) == list(parquet.columns)
        for col in parquet.columns:
            if parquet[col].dtype.kind in "fi":
                assert csv[col].to_numpy() == pytest.approx(parquet[col].to_numpy(), nan_ok=True), (table, col)
    versions = pd.read_parquet(run_dir / "versions.parquet")
    csv = pd.read_csv(tmp_path / "csv" / "versions.csv")
    assert csv["block_coverage"].astype(str).tolist() == [";".join(map(str, v)) for v in versions["block_coverage"]]
    evals = (tmp_path / "csv" / "evals.csv").read_text()
    assert evals.splitlines() == ['"time_s","version","accuracy","loss","exit_accuracy"']  # timing-only: header only


def test_groups_faults_and_summary(run_dir, tmp_path):
    write_csv_tables(run_dir, tmp_path / "csv")
    summary = json.loads((run_dir / "summary.json").read_text())
    groups = pd.read_csv(tmp_path / "csv" / "groups.csv")
    assert groups["name"].tolist() == ["nano-ap1", "nano-ap2", "jetson-agx-orin-64gb"]
    assert groups["energy_j"].tolist() == pytest.approx([g["energy_j"] for g in summary["groups"]])
    assert groups["limit"].tolist() == [g["limit"] for g in summary["groups"]]
    faults = pd.read_csv(tmp_path / "csv" / "faults.csv")
    assert faults["kind"].tolist() == ["link_down", "server_pause", "devices_offline", "server_pause"]
    scalars = dict(pd.read_csv(tmp_path / "csv" / "summary.csv", dtype=str).itertuples(index=False))
    assert float(scalars["energy_j"]) == pytest.approx(summary["energy_j"])
    assert scalars["stop_reason"] == summary["stop_reason"]


def test_a_folder_fleetsim_did_not_write_is_refused(run_dir, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="fleetsim did not write"):
        write_csv_tables(run_dir, mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    write_csv_tables(run_dir, tmp_path / "again")
    write_csv_tables(run_dir, tmp_path / "again")  # its own earlier export: refreshed in place
    assert (tmp_path / "again" / MARKER).exists()


@pytest.mark.slow
def test_cli_csv(run_dir, tmp_path):
    out = tmp_path / "tables"
    done = subprocess.run([sys.executable, "-m", "simulator.cli", "export", str(run_dir), "--format", "csv",
                           "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"csv tables: {out} (events.csv ")
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(
        ["events.csv", "updates.csv", "versions.csv", "evals.csv", "devices.csv", "groups.csv", "faults.csv",
         "summary.csv"])
