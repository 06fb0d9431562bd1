"""The Ray sweep backend's variants run the fleetsim the driver runs, whatever folder the user starts
it from (tests/learning/test_ray_working_directory.py holds the same for the Ray executor)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.helpers.decoy import decoy_project, run_script_in
from tests.helpers.markers import needs_ray
from tests.helpers.sweep import write_sweep

SCRIPT = textwrap.dedent('''
    import os, sys
    from simulator.sweep import run_sweep

    def main():
        cwd = os.getcwd()
        result = run_sweep(sys.argv[1], out=sys.argv[2], jobs=1, backend="ray", report=False)
        print("failed", result.failed)
        print("ran", len(result.ran), "same cwd", os.getcwd() == cwd)
        sys.exit(0 if result.ran and not result.failed and os.getcwd() == cwd else 1)

    if __name__ == "__main__":
        main()
''')


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_a_folder_named_simulator_where_the_user_runs_does_not_replace_fleetsim_in_ray_variants(
        tmp_path: Path) -> None:
    """A user's own package called `simulator` in the working directory: Ray put that directory first
    on its workers' path, ahead of the PYTHONPATH the backend gives them (fleetsim's folder first), so
    each variant's task imported the user's package (which here refuses to be imported) and failed."""
    work = decoy_project(tmp_path, "sweep")
    sweep = write_sweep(tmp_path / "sweep", {"grid": {"algorithm.name": ["fedavg"]}, "seeds": [0],
                                             "timing_only": True})
    done = run_script_in(work, SCRIPT, str(sweep), str(tmp_path / "out"))
    assert "ran 1 same cwd True" in done.stdout
