"""Progress anywhere (issue 17): plain lines off a terminal, a progress.log in the run folder,
--quiet, and the figures of the line itself (rate and ETA)."""

from __future__ import annotations

import pytest

import io
import json
from pathlib import Path

from rich.console import Console

from simulator.cli.progress import RunProgress, duration_text
from tests.helpers.cli_runs import fleetsim


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plain(every_s: float = 5.0, **kw):  # noqa: ANN201
    out = io.StringIO()
    clock = Clock()
    progress = RunProgress(kw.pop("horizon_s", 1000.0), kw.pop("max_versions", None), mode=kw.pop("mode", "plain"),
                           console=Console(file=out, width=200), every_s=every_s, clock=clock, **kw)
    return progress, clock, out


def test_the_line_gives_rate_and_eta_from_the_nearer_bound() -> None:
    progress, _, _ = plain(horizon_s=1000.0, max_versions=10)
    # 250 of 1000 s is 25 %, 5 of 10 versions is 50 %: the run ends at the versions bound first
    line = progress.line(250.0, 5, 0.8123, elapsed_s=20.0)
    assert line == ("progress: t=250 s of 1,000 s (50.0 %) · v5/10 · acc 0.812 · 12.5 sim-s/wall-s · "
                    "elapsed 20 s · ETA 20 s")


def test_plain_lines_are_throttled_to_every_s_of_wall_time_and_the_last_state_is_written() -> None:
    progress, clock, out = plain(every_s=5.0)
    for k in range(10):  # ten callbacks, one wall second apart
        progress(100.0 * k, k, None)
        clock.now += 1.0
    progress.stop()
    lines = out.getvalue().splitlines()
    # at 0 s and 5 s of wall time, then the final state at stop()
    assert [line.split(" ·")[0] for line in lines] == [
        "progress: t=0 s of 1,000 s (0.0 %)", "progress: t=500 s of 1,000 s (50.0 %)",
        "progress: t=900 s of 1,000 s (90.0 %)"]
    assert "ETA" in lines[1] and "ETA" not in lines[2]  # the final line: the run has ended (here at 90 %)


def test_quiet_prints_nothing_but_the_log_gets_the_lines(tmp_path: Path) -> None:
    (tmp_path / ".fleetsim-run").write_text("{}")
    progress, clock, out = plain(mode="quiet", run_dir=lambda: tmp_path)
    progress(10.0, 1, None)
    clock.now += 6
    progress(20.0, 2, None)
    progress.stop()
    assert out.getvalue() == ""
    lines = (tmp_path / "progress.log").read_text().splitlines()
    # the line at 20 s carried an ETA, so stop() writes that state once more, final
    assert [line.split(" ·")[0] for line in lines] == [
        "progress: t=10 s of 1,000 s (1.0 %)", "progress: t=20 s of 1,000 s (2.0 %)",
        "progress: t=20 s of 1,000 s (2.0 %)"]
    assert "ETA" in lines[1] and "ETA" not in lines[2]


def test_no_log_in_a_folder_fleetsim_did_not_make(tmp_path: Path) -> None:
    progress, _, _ = plain(run_dir=lambda: tmp_path)
    progress(10.0, 1, None)
    progress.stop()
    assert list(tmp_path.iterdir()) == []


def test_durations_read_as_people_say_them() -> None:
    assert [duration_text(s) for s in (0.4, 59, 65, 3599, 7620)] == ["0 s", "59 s", "1 min 05 s", "59 min 59 s",
                                                                   "2 h 07 min"]


@pytest.mark.slow
def test_a_run_off_a_terminal_prints_plain_lines_and_writes_progress_log(scenario_file: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = fleetsim("run", str(scenario_file), "--timing-only", "--out", str(run_dir),
                    env={"FLEETSIM_PROGRESS_EVERY_S": "0"})
    assert done.returncode == 0, done.stderr
    shown = [line for line in done.stderr.splitlines() if line.startswith("progress: ")]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert shown and shown[-1].startswith(f"progress: t={summary['makespan_s']:,.0f} s of ")
    assert f"v{summary['versions']}" in shown[-1]
    assert "\x1b[" not in done.stderr  # no escape codes in a log file
    assert (run_dir / "progress.log").read_text().splitlines() == shown
    assert "model versions" in done.stdout  # the summary stays on stdout


def test_quiet_keeps_the_summary_and_the_log(scenario_file: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = fleetsim("run", str(scenario_file), "--timing-only", "--out", str(run_dir), "--quiet",
                    env={"FLEETSIM_PROGRESS_EVERY_S": "0"})
    assert done.returncode == 0, done.stderr
    assert "progress:" not in done.stderr and "simulating" not in done.stderr
    assert "model versions" in done.stdout
    assert (run_dir / "progress.log").read_text().startswith("progress: t=0 s")


def live_quarter_way() -> tuple[RunProgress, io.StringIO]:
    """A live bar on a fake terminal, 10 s into a 1,000 s run at t=250 s (v3, acc 0.5): ETA 30 s."""
    out = io.StringIO()
    clock = Clock()
    progress = RunProgress(1000.0, None, mode="live", every_s=1e9, clock=clock,
                           console=Console(file=out, width=160, force_terminal=True))
    progress(0.0, 0, None)
    clock.now += 10
    progress(250.0, 3, 0.5)
    assert progress._bar is not None
    return progress, out


def test_on_a_terminal_the_live_line_shows_rate_and_eta() -> None:
    progress, out = live_quarter_way()
    progress._bar.refresh()  # the frame a terminal shows while the run lasts
    progress.stop()
    text = out.getvalue()
    assert "25.0 sim-s/s" in text and "ETA 30 s" in text and "acc 0.500" in text
    assert "progress:" not in text  # the plain lines are for logs only


def test_stop_writes_a_final_line_without_eta_when_the_last_state_was_shown_with_one(tmp_path: Path) -> None:
    # the audit's case: the throttled callback printed the last state (with an ETA) just before stop()
    (tmp_path / ".fleetsim-run").write_text("{}")
    progress, clock, out = plain(every_s=5.0, run_dir=lambda: tmp_path)
    progress(0.0, 0, None)
    clock.now += 5.0
    progress(900.0, 9, 0.7)  # due: printed, with an ETA (90 %)
    clock.now += 0.5
    progress.stop()
    for lines in (out.getvalue().splitlines(), (tmp_path / "progress.log").read_text().splitlines()):
        assert len(lines) == 3, lines
        assert "ETA" in lines[1]
        assert lines[2].startswith("progress: t=900 s of 1,000 s (90.0 %) · v9 · acc 0.700")
        assert "ETA" not in lines[2]


def test_stop_does_not_repeat_a_final_state_already_shown_without_eta() -> None:
    progress, clock, out = plain(every_s=5.0)
    progress(0.0, 0, None)
    clock.now += 5.0
    progress(1000.0, 4, None)  # due, at 100 %: no ETA on it already
    clock.now += 0.5
    progress.stop()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "ETA" not in lines[-1]


def test_stop_clears_the_live_bars_eta() -> None:
    progress, out = live_quarter_way()
    progress._bar.refresh()
    shown = len(out.getvalue())
    assert "ETA 30 s" in out.getvalue()
    progress.stop()
    last_frame = out.getvalue()[shown:]  # what stays on the terminal once the run has ended
    assert "t=250 s" in last_frame and "v3" in last_frame
    assert "ETA" not in last_frame
