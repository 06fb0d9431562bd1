"""A plug-in that fails ends the run cleanly: one paragraph naming the plug-in, the hook, the
exception and file:line, exit status 1, and what Ctrl-C keeps (issue 12, "Plug-in failures")."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from simulator.trace.recorder import read_table
from tests.helpers.safety import (MISCHIEF, cli, fleetsim, mischief_scenario, one_paragraph, popen_fleetsim,
                                   tiny_scenario, write_scenario)

RUN_FAILED = "fleetsim: run failed: "


def _line(text: str) -> int:
    """The line of MISCHIEF (as written to mischief.py) holding `text`."""
    return next(i for i, line in enumerate(MISCHIEF.splitlines(), start=1) if text in line)


@pytest.mark.slow
def test_a_raising_hook_ends_the_run_like_ctrl_c(tmp_path: Path) -> None:
    scenario = mischief_scenario(tmp_path, "raise", after=3)
    result = fleetsim("run", str(scenario))
    err = one_paragraph(result, 1, RUN_FAILED)
    line = _line('raise ValueError(f"no room for job')
    for piece in ("policy plug-in 'mischief:Mischief'", "ValueError: no room for job", "in on_arrival",
                  f"(mischief.py:{line})", "summary.json", "partial report.html"):
        assert piece in err, f"{piece!r} missing: {err}"
    run_dir = tmp_path / "runs" / "tiny"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"].startswith("plugin_error: policy plug-in 'mischief:Mischief' in on_arrival")
    assert summary["complete"] is False and summary["versions"] == 3  # three merges, then the 4th arrival raised
    assert len(read_table(run_dir, "versions")) == 3 and len(read_table(run_dir, "events")) > 0
    report = (run_dir / "report.html").read_text()
    assert "Incomplete run." in report and "plugin_error" in report
    assert "Traceback" in (run_dir / "error.txt").read_text() and "no room for job" in (run_dir / "error.txt").read_text()


@pytest.mark.parametrize("mode, call, problem", [
    ("twice", "aggregate()", "job 3 is listed twice"),
    ("negative", "aggregate()", "job 3 has weight -5.0; weights must be finite numbers >= 0"),
    ("nan", "aggregate()", "job 3 has weight nan"),
    ("unknown_drop", "drop()", "job 3 is not waiting to be merged"),
])
def test_bad_server_calls_are_refused_naming_the_policy(mode: str, call: str, problem: str, tmp_path: Path) -> None:
    scenario = mischief_scenario(tmp_path, mode, after=3, report=False)
    err = one_paragraph(cli("run", str(scenario)), 1, RUN_FAILED)
    assert "policy plug-in 'mischief:Mischief' made a call the server refused" in err
    assert f"{call}: {problem}" in err and "in on_arrival (mischief.py:" in err
    summary = json.loads((tmp_path / "runs" / "tiny" / "summary.json").read_text())
    assert summary["stop_reason"].startswith("plugin_error") and summary["versions"] == 3
    # refused before anything was booked: the trace holds exactly the three good merges
    updates = read_table(tmp_path / "runs" / "tiny", "updates")
    assert (updates.outcome == "accepted").sum() == 3


USER_MODEL = '''
import torch
from torch import nn


class Exploding(nn.Module):
    """Fine while fleetsim sizes it (meta tensors), raises in real training."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        if self.training and x.device.type != "meta":
            raise FloatingPointError("loss exploded")
        return self.fc(x.reshape(x.shape[0], -1))
'''


@pytest.mark.slow
def test_a_user_model_that_raises_in_training(tmp_path: Path) -> None:
    (tmp_path / "exploding_model.py").write_text(USER_MODEL)
    data = tiny_scenario(tmp_path, devices=2, timing_only=False, evaluation={"every_versions": None})
    data["workload"] = {"model": {"name": "exploding_model:Exploding"}, "dataset": {"name": "digits", "image_size": 8},
                        "batch_size": 16, "local_steps": 2}
    scenario = write_scenario(tmp_path / "s.yaml", data)
    err = one_paragraph(fleetsim("run", str(scenario)), 1, RUN_FAILED)
    line = next(i for i, text in enumerate(USER_MODEL.splitlines(), 1) if "raise FloatingPointError" in text)
    assert "model plug-in 'exploding_model:Exploding' raised FloatingPointError: loss exploded" in err
    assert f"in forward (exploding_model.py:{line})" in err
    summary = json.loads((tmp_path / "runs" / "tiny" / "summary.json").read_text())
    assert summary["stop_reason"].startswith("plugin_error: model plug-in 'exploding_model:Exploding' in forward")


@pytest.mark.slow
def test_ctrl_c_interrupts_a_hook_that_never_returns(tmp_path: Path) -> None:
    sentinel = tmp_path / "spinning"
    scenario = mischief_scenario(tmp_path, "spin", after=3, sentinel=str(sentinel))
    proc = popen_fleetsim("run", str(scenario))
    deadline = time.monotonic() + 90
    while not sentinel.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.3)  # well inside `while True: pass`
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130 and "Traceback" not in err and "Interrupted" in err, err
    run_dir = tmp_path / "runs" / "tiny"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["versions"] == 3 and summary["complete"] is False
    assert len(read_table(run_dir, "events")) > 0 and "Incomplete run." in (run_dir / "report.html").read_text()


def test_a_failing_variant_fails_alone_in_a_sweep(tmp_path: Path) -> None:
    import yaml

    base = mischief_scenario(tmp_path, "none", report=False)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": str(base), "grid": {"algorithm.aggregation.mode": ["none", "raise"]}}))
    result = cli("sweep", str(sweep), "--out", str(tmp_path / "out"), "--no-report")
    assert result.code == 1 and "Traceback" not in result.text, result.text
    assert "ran 1, skipped 0 finished, failed 1" in result.stdout
    assert "failed: algorithm.aggregation.mode=raise__seed=0" in result.stderr
    summary = json.loads((tmp_path / "out" / "algorithm.aggregation.mode=raise__seed=0" / "summary.json").read_text())
    assert summary["stop_reason"].startswith("plugin_error: policy plug-in 'mischief:Mischief' in on_arrival")
