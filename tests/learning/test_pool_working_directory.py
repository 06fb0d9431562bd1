"""The pool's workers run the fleetsim the owner runs, whatever folder the user starts it from."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers.decoy import decoy_project, ONE_JOB_PRELUDE, run_script_in

SCRIPT = ONE_JOB_PRELUDE + textwrap.dedent('''
    def main():
        from simulator.learning.executors import ProcessPoolExecutor
        context, job = one_job()
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
    done = run_script_in(decoy_project(tmp_path, "learning"), SCRIPT)
    assert "ready True trained here 0" in done.stdout
