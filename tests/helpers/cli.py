"""Shared pieces of the bad-input tests: a tiny valid scenario and ways to run the CLI on a file.

The base scenario is small on purpose (4 devices, a tiny CNN, 8x8 digits, 30 simulated seconds) so
that `fleetsim validate` takes a fraction of a second and a timing-only run not much more.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "name": "bad-input",
    "seed": 0,
    "fleet": [
        {"profile": "jetson-nano-4gb", "count": 2, "link": "ap"},
        {"profile": "jetson-xavier-nx", "count": 2, "link": "ethernet"},
    ],
    "network": {
        "server": {"downlink_mbps": 1000, "uplink_mbps": 1000},
        "access_points": {"ap": {"capacity_mbps": 400, "max_client_mbps": 200,
                                 "latency": {"mean_ms": 4, "jitter_ms": 2}}},
        "ethernet": {"rate_mbps": 941, "latency": {"mean_ms": 0.3}},
    },
    "workload": {
        "model": {"name": "cnn", "preset": "tiny"},
        "dataset": {"name": "digits", "image_size": 8},
        "partition": {"kind": "dirichlet", "alpha": 0.5},
        "batch_size": 16,
        "local_epochs": 1,
    },
    "algorithm": {"name": "fedavg"},
    "stop": {"sim_time_s": 30},
    "output": {"report": False},
}


def base() -> dict[str, Any]:
    """A fresh deep copy of the valid base scenario."""
    return copy.deepcopy(BASE)


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class CliResult:
    """Exit code and the two streams of one CLI call, in-process or in a subprocess."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def cli(*args: str, cwd: Path | None = None) -> CliResult:
    """Run `fleetsim ARGS` in this process (typer's CliRunner): fast, same code path as the command."""
    from simulator.cli import app

    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    finally:
        os.chdir(old)
    text_err = result.stderr if result.stderr_bytes is not None else ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        text_err += "Traceback (in-process):\n" + "".join(traceback.format_exception(result.exception))
    return CliResult(result.exit_code, result.stdout, text_err)


def cli_subprocess(*args: str, cwd: Path | None = None) -> CliResult:
    """Run `python -m simulator.cli ARGS` as a real process: proves exit codes and no traceback end to end."""
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env={**os.environ, "COLUMNS": "80"})
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_bad_input(result: CliResult, *, file: str | Path | None, field: str | None, value: str | None,
                     also: tuple[str, ...] = ()) -> str:
    """Exit 2, one paragraph naming the file, the field path, the value and an 'Accepted:' hint."""
    text = result.text
    assert "Traceback" not in text, text
    assert result.code == 2, f"exit {result.code}: {text}"
    # `run` and `sweep` may have drawn a progress bar first; the error is one line of its own after it
    lines = [line for line in result.stderr.splitlines() if line.startswith("fleetsim: bad input: ")]
    assert len(lines) == 1, f"expected one error paragraph on stderr: {result.stderr!r}"
    err = lines[0]
    assert result.stderr.rstrip().endswith(err), f"something follows the error: {result.stderr!r}"
    if file is not None:
        assert str(file) in err, f"file {file} not named: {err}"
    if field is not None:
        assert f"'{field}'" in err, f"field {field!r} not named: {err}"
    if value is not None:
        assert f"(got {value}" in err, f"value {value!r} not shown: {err}"
    assert "Accepted: " in err, err
    for piece in also:
        assert piece in err, f"{piece!r} missing: {err}"
    return err
