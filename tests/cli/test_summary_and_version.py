"""The end summary names faults, groups and incompleteness; --version comes from the package metadata."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

from rich.console import Console

from simulator.cli.summary import energy_text, summary_table
from tests.helpers.cli_runs import fleetsim


def text_of(table) -> str:  # noqa: ANN001
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return " ".join(re.sub("[\u2500-\u257f]", " ", console.export_text()).split())  # without the borders


def test_version_is_the_installed_distributions() -> None:
    done = fleetsim("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"fleetsim {version('fleetsim')}"


def test_energy_is_shown_in_a_unit_that_fits() -> None:
    assert energy_text(61.0) == "61 J"            # not "0.0000 kWh (61 J)"
    assert energy_text(7200.0) == "2.00 Wh (7,200 J)"
    assert energy_text(7.2e6) == "2.00 kWh (7,200,000 J)"


def test_a_run_summary_names_its_groups_and_its_fault(scenario_file: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = fleetsim("run", str(scenario_file), "--timing-only", "--out", str(run_dir), "--quiet")
    assert done.returncode == 0, done.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    text = " ".join(done.stdout.replace("│", " ").split())
    for group in summary["groups"]:
        assert f"{group['name']} ({group['devices']}) {100 * group['compute_share']:.1f} % compute" in text
    assert "faults link down server 1–2 s" in text
    assert "INCOMPLETE" not in text


def test_an_incomplete_run_says_so_first() -> None:
    summary = {"scenario_name": "s", "algorithm": "fedavg", "seed": 0, "complete": False, "figures_up_to_s": 812.5,
               "stop_reason": "interrupted", "makespan_s": 812.5, "versions": 3, "timing_only": True,
               "fleet_utilization": 0.5, "comm_share": 0.1, "idle_share": 0.4, "offline_share": 0.0,
               "utilization_by_profile": {}, "staleness": {"mean": None}, "accepted": 3, "dropped": 0, "lost": 0,
               "ooms": 0, "oom_devices": [], "bytes_down": 0, "bytes_up": 0, "energy_j": 61.0,
               "faults": [{"kind": "devices_offline", "start_s": 10, "end_s": 70, "devices": ["a#0", "a#1"]}]}
    text = text_of(summary_table(summary, Path("r")))
    assert text.startswith("s · fedavg · seed 0 INCOMPLETE the run did not reach its stop condition; figures cover "
                           "simulated time up to 812.5 s stopped by interrupted")
    assert "faults devices offline a#0, a#1 10–70 s" in text and "energy 61 J" in text


def test_at_60_columns_nothing_is_cut() -> None:
    summary = {"scenario_name": "s", "algorithm": "fedavg", "seed": 0, "stop_reason": "max_versions", "makespan_s": 10.0,
               "versions": 3, "timing_only": True, "fleet_utilization": 0.5, "comm_share": 0.1, "idle_share": 0.4,
               "offline_share": 0.0, "utilization_by_profile": {"p": 0.5}, "staleness": {"mean": None}, "accepted": 3,
               "dropped": 0, "lost": 0, "ooms": 0, "oom_devices": [], "bytes_down": 0, "bytes_up": 0, "energy_j": 1.0}
    folder = "/tmp/a/very/long/path/to/a/run/folder/with-a-long-name-that-does-not-fit"
    console = Console(width=60, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(summary_table(summary, Path(folder)))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 60
    assert folder in "".join(line.strip("│ ") for line in text.splitlines() if "│" in line)
