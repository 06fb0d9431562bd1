"""Shared pieces of the safety tests: tiny timing-only scenarios, a policy plug-in that misbehaves
on demand, and the real CLI in a subprocess (as a user meets it: exit status, stderr, files on disk).

The scenarios are small on purpose (a handful of devices with measured step times, a few simulated
seconds) so that a run takes well under a second of simulation and the CLI's start-up dominates.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import processes
from tests.helpers.profiles import measured_steps, profile_data, tiny_workload, write_profile_file

ROOT = Path(__file__).resolve().parents[2]

# A policy plug-in whose misbehaviour the scenario chooses (algorithm.aggregation.mode).
MISCHIEF = textwrap.dedent('''
    from pathlib import Path
    from simulator.server.policy import AggregationPolicy, PolicyParams


    class MischiefParams(PolicyParams):
        mode: str = "none"
        after: int = 3          # arrivals before misbehaving (0: at once)
        sentinel: str = ""      # a file written just before a hook starts spinning


    class Mischief(AggregationPolicy):
        """FedAsync-like (merge each arrival), until arrival number `after`."""
        Params = MischiefParams

        def start(self, server):
            self.arrivals = 0
            if self.params.mode == "start":
                raise RuntimeError("refusing to start")
            if self.params.mode == "spin_start":
                self._spin()
            server.dispatch(server.idle_devices())

        def _spin(self):
            if self.params.sentinel:
                Path(self.params.sentinel).write_text("spinning")
            while True:
                pass

        def on_arrival(self, server, job):
            self.arrivals += 1
            mode = self.params.mode if self.arrivals > self.params.after else "none"
            if mode == "raise":
                raise ValueError(f"no room for job {job.job_id}")
            if mode == "twice":
                server.aggregate([(job, 1.0), (job, 1.0)], "each")
            elif mode == "negative":
                server.aggregate([(job, -5.0)], "each")
            elif mode == "nan":
                server.aggregate([(job, float("nan"))], "each")
            elif mode == "unknown_drop":
                server.drop(job, "gone")
                server.drop(job, "gone again")
            elif mode == "spin":
                self._spin()
            else:
                server.aggregate([(job, 1.0)], "each")
            server.dispatch(server.idle_devices())

        def on_device_ready(self, server, device):
            server.dispatch([device])
''')


def write_profile(folder: Path, name: str = "dev", step_s: float = 0.2) -> Path:
    """A device profile with a measured step time for the scenario's model, so compute is exact."""
    data = profile_data(name, step_overhead_s=None, bandwidth_gbps=100.0)
    data["measured_step_times"] = measured_steps(step_s, at_test_point=False)
    return write_profile_file(folder, data)


def tiny_scenario(folder: Path, *, devices: int = 4, **overrides: Any) -> dict[str, Any]:
    """A timing-only scenario of `devices` identical boards on Ethernet: FedAvg, 3 versions."""
    profiles = folder / "profiles"
    profiles.mkdir(exist_ok=True)
    profile = write_profile(profiles)
    scenario: dict[str, Any] = {
        "name": "tiny",
        "seed": 1,
        "fleet": [{"profile": str(profile), "count": devices}],
        "network": {"ethernet": {"rate_mbps": 100.0, "latency": {"mean_ms": 0.0}}},
        "workload": tiny_workload(32),
        "algorithm": {"name": "fedavg"},
        "evaluation": {"every_versions": None},
        "stop": {"max_versions": 3, "sim_time_s": 1e6},
        "output": {"folder": str(folder / "runs"), "report": False, "flush_rows": 50},
        "timing_only": True,
    }
    scenario.update(overrides)
    return scenario


def mischief_scenario(folder: Path, mode: str, *, after: int = 3, report: bool = True, versions: int = 40,
                      **extra: Any) -> Path:
    """A scenario using the Mischief plug-in written beside it (found like any module:Class plug-in)."""
    (folder / "mischief.py").write_text(MISCHIEF)
    scenario = tiny_scenario(folder, stop={"sim_time_s": 1e6, "max_versions": versions})
    scenario["algorithm"] = {"name": "fedavg", "aggregation": {"policy": "mischief:Mischief", "mode": mode,
                                                               "after": after, **extra}}
    scenario["output"]["report"] = report
    return write_scenario(folder / "mischief.yaml", scenario)


def write_scenario(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def env_for_cli(**extra: str) -> dict[str, str]:
    """This worktree first on PYTHONPATH (the subprocess imports the code under test), no colour."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    return env


class Result:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code, self.stdout, self.stderr = code, stdout, stderr

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def fleetsim(*args: str, cwd: Path | None = None, timeout: float = 180, **env: str) -> Result:
    """`python -m simulator.cli ARGS` as a real process."""
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env_for_cli(**env))
    return Result(proc.returncode, proc.stdout, proc.stderr)


def popen_fleetsim(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """`python -m simulator.cli ARGS` started, to be interrupted (tests/helpers/processes.py)."""
    return processes.start([sys.executable, "-m", "simulator.cli", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, cwd=cwd, env=env_for_cli())


def one_paragraph(result: Result, code: int, prefix: str = "fleetsim: bad input: ") -> str:
    """The run ended with `code` and exactly one error line starting with `prefix`, last on stderr,
    and no traceback anywhere."""
    assert "Traceback" not in result.text, result.text
    assert result.code == code, f"exit {result.code}: {result.text}"
    lines = [line for line in result.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"expected one {prefix!r} paragraph: {result.stderr!r}"
    assert result.stderr.rstrip().endswith(lines[0]), f"something follows the error: {result.stderr!r}"
    return lines[0]


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path -> SHA-256), to prove that nothing changed."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args: str, cwd: Path | None = None, **env: str) -> Result:
    """`fleetsim ARGS` in this process (typer's CliRunner): the command's own code path, without the
    seconds a new interpreter spends importing torch. Subprocesses (:func:`fleetsim`) remain for what
    needs a process of its own: signals, locks held by another process, a clean import state."""
    import traceback as tb

    from typer.testing import CliRunner

    from simulator.cli import app

    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env}, catch_exceptions=True)
    finally:
        os.chdir(old)
    err = result.stderr if result.stderr_bytes is not None else ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        err += "Traceback (in-process):\n" + "".join(tb.format_exception(result.exception))
    return Result(result.exit_code, result.stdout, err)
