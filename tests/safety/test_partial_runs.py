"""A report or summary of a killed or failed run says so at the top, up to which simulated time its
figures run, and shows what it cannot know as unknown, not 0 (issue 12, "Partial runs say so")."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from simulator.trace.recorder import read_table
from tests.helpers.safety import cli, mischief_scenario, one_paragraph, popen_fleetsim


def _card(page: str, label: str) -> str:
    found = re.search(r'<div class="card"><div class="v">([^<]*)</div><div class="k">' + re.escape(label) + "</div>",
                      page)
    assert found, f"no card {label!r}"
    return found.group(1)


@pytest.mark.slow
def test_a_killed_runs_report_says_incomplete_and_unknown(tmp_path: Path) -> None:
    sentinel = tmp_path / "spinning"
    scenario = mischief_scenario(tmp_path, "spin", after=150, versions=1000, sentinel=str(sentinel),
                                 report=False)
    proc = popen_fleetsim("run", str(scenario))
    deadline = time.monotonic() + 90
    while not sentinel.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    run_dir = tmp_path / "runs" / "tiny"
    assert not (run_dir / "summary.json").exists() and len(read_table(run_dir, "events")) >= 50
    from simulator.report.loading import load_run
    from simulator.report.style import fmt_s

    flushed_to_s = load_run(run_dir).makespan_s  # the latest simulated time any flushed row reaches
    assert flushed_to_s >= float(read_table(run_dir, "events")["end_s"].max()) > 0

    result = cli("report", str(run_dir))
    assert result.code == 0, result.text
    page = (run_dir / "report.html").read_text()
    banner = page.index('id="incomplete"')
    assert banner < page.index('id="scenario"'), "the banner comes first"
    note = page[banner:page.index("</section>", banner)]
    assert "Incomplete run." in note and "no summary.json" in note
    assert f"up to {fmt_s(flushed_to_s)} only" in note
    assert _card(page, "energy") == "unknown"
    assert _card(page, "traffic down / up") == "unknown / unknown"
    assert "0 J" not in page and "0 B /" not in page and "Energy (total unknown)" in page


@pytest.mark.slow
def test_an_interrupted_summary_says_incomplete(tmp_path: Path) -> None:
    sentinel = tmp_path / "spinning"
    scenario = mischief_scenario(tmp_path, "spin", after=5, sentinel=str(sentinel))
    proc = popen_fleetsim("run", str(scenario))
    deadline = time.monotonic() + 90
    while not sentinel.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    run_dir = tmp_path / "runs" / "tiny"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False and summary["figures_up_to_s"] == summary["makespan_s"] > 0
    page = (run_dir / "report.html").read_text()
    assert "Incomplete run." in page and "stopped early (interrupted)" in page
    from simulator.report.style import fmt_s

    assert f"up to {fmt_s(summary['figures_up_to_s'])} only" in page
    assert _card(page, "energy") != "unknown"  # the engine closed the accounts: energy is known


def test_a_complete_run_has_no_banner(tmp_path: Path) -> None:
    scenario = mischief_scenario(tmp_path, "none")
    assert cli("run", str(scenario)).code == 0
    summary = json.loads((tmp_path / "runs" / "tiny" / "summary.json").read_text())
    assert summary["complete"] is True and summary["stop_reason"] == "max_versions"
    assert 'id="incomplete"' not in (tmp_path / "runs" / "tiny" / "report.html").read_text()
    err = one_paragraph(cli("resume", str(tmp_path / "runs" / "tiny")), 2)
    assert "this run finished" in err
