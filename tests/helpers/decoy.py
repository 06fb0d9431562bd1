"""A user's own ``simulator`` package in the folder fleetsim runs from, and a script run there.

Why: every executor that starts processes (the pool's fork server, Ray's actors, the sweep's Ray
tasks) once put the working directory first on its workers' path, so such a folder replaced fleetsim
in them (tests/learning/test_pool_working_directory.py, test_ray_working_directory.py,
tests/sweep/test_sweep_ray_working_directory.py). The decoy refuses to be imported, so a worker that
takes it dies saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The start of a script that trains one job of a tiny CNN on digits (the scripts' own code follows).
ONE_JOB_PRELUDE = textwrap.dedent('''
    import os, sys, time
    from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
    from simulator.learning.executors import WorkerContext, WorkerData
    from simulator.learning.pruning import Pruner, PruningSettings
    from simulator.learning.submodel import extract
    from simulator.learning.trainer import TrainingSettings, TrainJob

    def one_job():
        """A context and one job of it (a tiny CNN, two steps)."""
        context = WorkerContext(ModelSpec(name="cnn", preset="tiny"), DatasetSpec(name="digits", image_size=8),
                                PartitionSpec(kind="dirichlet", alpha=0.5), 4, 3)
        full = WorkerData(context).build(seed=0)
        plan = Pruner(PruningSettings(), full.width_axes(), full.full_depth).plan(0, 0, full.full_depth, 1.0)
        base = full.state_dict()
        job = TrainJob(0, 0, 100, plan, extract(base, plan, full.param_axes()), 0, 2, TrainingSettings(batch_size=8),
                       base_state=base)
        return context, job
''')


def decoy_project(tmp_path: Path, subpackage: str) -> Path:
    """A folder holding a package ``simulator`` (with ``simulator.<subpackage>``) that raises on import."""
    work = tmp_path / "project"
    (work / "simulator" / subpackage).mkdir(parents=True)
    (work / "simulator" / "__init__.py").write_text(
        'raise ImportError("the user\'s own simulator package was imported in place of fleetsim")\n')
    (work / "simulator" / subpackage / "__init__.py").write_text(f'"""its own {subpackage} module"""\n')
    return work


def run_script_in(work: Path, script_text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `script_text` (kept outside `work`, so its own folder holds no decoy) with `work` as the
    working directory and this checkout's fleetsim on PYTHONPATH; fails the test if it exits non-zero."""
    script = work.parent / "scripts" / "script.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(script_text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(script), *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done
