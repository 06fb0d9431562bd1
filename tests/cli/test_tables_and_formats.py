"""CLI output that fits (issue 17): narrow terminals get a vertical layout, never cut text; --format
json|csv prints the records behind the table, numbers as numbers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.config.profiles import list_builtin_profiles, load_profile
from tests.helpers.cli_runs import fleetsim


def test_profiles_at_60_columns_are_vertical_and_nothing_is_cut() -> None:
    done = fleetsim("profiles", env={"COLUMNS": "60"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "…" not in done.stdout and max(len(line) for line in lines) <= 60
    names = [p.name for p in list_builtin_profiles()]
    assert [line for line in lines if line in names] == names  # each profile's name whole, on its own line
    assert "  efficiency" in done.stdout and "  memory GB usable/total" in done.stdout


def test_profiles_on_a_wide_terminal_are_one_table_with_the_figures(tmp_path: Path) -> None:
    from tests.config.test_profiles import profile_data  # a board with exactly known figures

    import yaml

    board = tmp_path / "board.yaml"
    board.write_text(yaml.safe_dump(profile_data()))
    done = fleetsim("profiles", str(board), env={"COLUMNS": "250"})
    row = next(line for line in done.stdout.splitlines() if line.strip().startswith("test-board"))
    cells = row.split()
    # FP32 GFLOP/s, efficiency, effective (100 x 0.5 x 1.0), usable / total GB, bandwidth
    assert cells[:8] == ["test-board", "100", "0.50", "50.0", "6", "/", "8", "50"]
    assert "1000BASE-T" in row and "max* 20W x1.00" in done.stdout and "…" not in done.stdout


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_profiles_as_records(fmt: str) -> None:
    result = CliRunner().invoke(app, ["profiles", "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        rows = json.loads(result.stdout)
    else:
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
    expected = list_builtin_profiles()
    assert [r["profile"] for r in rows] == [p.name for p in expected]
    for row, profile in zip(rows, expected):
        assert float(row["effective_gflops"]) == profile.effective_flops() / 1e9
        assert float(row["usable_memory_gb"]) == profile.memory.usable_gb
    if fmt == "json":
        nano = rows[[p.name for p in expected].index("jetson-nano-4gb")]
        assert nano["power_modes"]["5w"]["watts"] == load_profile("jetson-nano-4gb").power_modes["5w"].watts


def test_an_unknown_format_is_bad_input() -> None:
    done = fleetsim("profiles", "--format", "xml")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--format" in done.stderr and "table, json, csv" in done.stderr


@pytest.mark.slow
def test_compare_prints_the_runs_as_records_and_still_writes_the_page(tmp_path: Path) -> None:
    import simulator
    from tests.helpers.cli_runs import two_group_scenario

    path = two_group_scenario(tmp_path)
    runs = [simulator.run(path, out=tmp_path / f"s{seed}", seed=seed, timing_only=True) for seed in (0, 1)]
    page = tmp_path / "cmp.html"
    done = fleetsim("compare", *(str(r.run_dir) for r in runs), "-o", str(page), "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["seed"] for r in rows] == [0, 1] and all(r["complete"] for r in rows)
    for row, run in zip(rows, runs):
        assert row["run_dir"] == str(run.run_dir)
        assert row["makespan_s"] == run.summary["makespan_s"] and row["versions"] == run.summary["versions"]
    assert page.exists() and f"comparison: {page}" in done.stderr
    table = fleetsim("compare", *(str(r.run_dir) for r in runs), "-o", str(page), env={"COLUMNS": "60"})
    assert table.returncode == 0 and "…" not in table.stdout
    shown = [line for line in table.stdout.splitlines() if not line.startswith("comparison: ")]  # paths stay whole
    assert max(len(line) for line in shown) <= 60 and "2 runs" in shown[0]


def test_compare_of_one_run_says_1_run(tmp_path: Path) -> None:
    import numpy as np

    from tests.helpers.cli import cli
    from tests.helpers.report_synthetic import write_run

    run = write_run(tmp_path / "run", 3, 2, seed=1, oom_devices=np.array([], int), offline=[])
    done = cli("compare", str(run), "-o", str(tmp_path / "c.html"))
    assert done.code == 0, done.text
    assert done.stdout.splitlines()[0].strip() == "1 run"  # not "1 runs"
    # the abbreviated headers are spelled out (wrapped at the table's width)
    text = " ".join(done.stdout.split())
    assert "final acc: accuracy at the last evaluation (0-1)" in text
    assert "util: fleet utilization, the share of device time spent computing" in text
    assert "energy Wh/h: energy per simulated hour, the fleet's mean power in W" in text
    # as records, counts are integers ("versions": 106.0 and "ooms": 4.0 before) and figures stay floats
    records = cli("compare", str(run), "-o", str(tmp_path / "c.html"), "--format", "json")
    row = json.loads(records.stdout)[0]
    summary = json.loads((run / "summary.json").read_text())
    for key in ("versions", "ooms", "dropped", "lost", "accepted"):
        assert type(row[key]) is int and row[key] == summary[key], key
    assert '"versions": ' + str(summary["versions"]) + "," in records.stdout
    assert isinstance(row["energy_j"], float)


def test_a_sweep_aggregate_on_a_narrow_terminal_names_its_first_swept_key(tmp_path: Path) -> None:
    """`fleetsim sweep` of a grid with stop.sim_time_s: [1800] beside algorithm.name printed, at 80 columns,
    blocks headed "1800" alone: the first swept key's value, with no key. Each heading must say which key
    it is, as the lines under it do for the other keys."""
    from tests.helpers.sweep import write_sweep

    sweep = write_sweep(tmp_path / "s", {"name": "narrow", "grid": {"stop.sim_time_s": [60],
                                                                     "algorithm.name": ["fedavg", "fedasync"]},
                                         "seeds": [0], "timing_only": True})
    done = fleetsim("sweep", str(sweep), "--out", str(tmp_path / "out"), "--no-report", "-q",
                    env={"COLUMNS": "50"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("stop.sim_time_s = 60") == 2, done.stdout
    assert "60" not in lines
    assert sorted(line.split()[1] for line in lines if line.split()[:1] == ["algorithm.name"]) == ["fedasync",
                                                                                                    "fedavg"]
