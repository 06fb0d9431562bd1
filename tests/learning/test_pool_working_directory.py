"""The pool's workers run the fleetsim the owner runs, whatever folder the user starts it from."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import sys, time
    from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
    from simulator.learning.executors import ProcessPoolExecutor, WorkerContext, WorkerData
    from simulator.learning.pruning import Pruner, PruningSettings
    from simulator.learning.submodel import extract
    from simulator.learning.trainer import TrainingSettings, TrainJob

    def main():
        context = WorkerContext(ModelSpec(name="cnn", preset="tiny"), DatasetSpec(name="digits", image_size=8),
                                PartitionSpec(kind="dirichlet", alpha=0.5), 4, 3)
        full = WorkerData(context).build(seed=0)
        plan = Pruner(PruningSettings(), full.width_axes(), full.full_depth).plan(0, 0, full.full_depth, 1.0)
        base = full.state_dict()
        job = TrainJob(0, 0, 100, plan, extract(base, plan, full.param_axes()), 0, 2, TrainingSettings(batch_size=8),
                       base_state=base)
        pool = ProcessPoolExecutor(workers=1)
        pool.bind(context)
        try:
            deadline = time.monotonic() + 120
            while not pool._dispatcher.ready_after_s and time.monotonic() < deadline:
                time.sleep(0.05)
            ready = bool(pool._dispatcher.ready_after_s)
            pool.submit(job).result(timeout=120)
        finally:
            pool.shutdown()
        print("ready", ready, "trained here", pool.last_run["trained_here"])
        sys.exit(0 if ready and pool.last_run["trained_here"] == 0 else 1)

    if __name__ == "__main__":
        main()
''')


@pytest.mark.slow
def test_a_folder_named_simulator_where_the_user_runs_does_not_replace_fleetsim_in_the_workers(tmp_path: Path) -> None:
    """A user's own package called `simulator` in the working directory: Python's fork server put that
    directory first on its path (it ignores the owner's), imported the user's package and every worker
    died unpickling its entry point. The owner itself imports the right one (its script's folder first)."""
    work = tmp_path / "project"
    (work / "simulator" / "learning").mkdir(parents=True)
    (work / "simulator" / "__init__.py").write_text('"""the user\'s own simulator package"""\n')
    (work / "simulator" / "learning" / "__init__.py").write_text('"""its own learning module"""\n')
    script = tmp_path / "scripts" / "train_one.py"
    script.parent.mkdir()
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "ready True trained here 0" in done.stdout
