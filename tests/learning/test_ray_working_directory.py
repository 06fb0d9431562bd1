"""Ray's actors run the fleetsim the driver runs, whatever folder the user starts it from.

Like tests/learning/test_pool_working_directory.py, for the Ray executor: Ray puts the driver's
working directory (at ``ray.init``) on its workers' path ahead of their PYTHONPATH, so a folder named
``simulator`` there (the user's own package, another checkout) replaced fleetsim in every actor."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.decoy import decoy_project, ONE_JOB_PRELUDE, run_script_in
from tests.helpers.markers import needs_ray

SCRIPT = ONE_JOB_PRELUDE + textwrap.dedent('''
    import ray  # (importing Ray adds its own folders to sys.path: before the path is compared)

    def main():
        from simulator.learning.executors import RayExecutor
        context, job = one_job()
        cwd, path = os.getcwd(), list(sys.path)
        executor = RayExecutor(num_cpus=1)
        executor.bind(context)
        try:
            same = os.getcwd() == cwd and sys.path == path  # the user's cwd and path as they were
            dispatcher = executor._dispatcher
            deadline = time.monotonic() + 120
            while not (dispatcher.ready_after_s or dispatcher._lost) and time.monotonic() < deadline:
                time.sleep(0.05)  # the actor up, or dead (it imported the user's package)
            ready = bool(dispatcher.ready_after_s)
            if ready:
                executor.submit(job).result(timeout=120)
            else:
                print("lost", dispatcher._failed)
        finally:
            executor.shutdown()
        print("same cwd", same, "ready", ready, "trained here", dispatcher.trained_here)
        sys.exit(0 if same and ready and dispatcher.trained_here == 0 else 1)

    if __name__ == "__main__":
        main()
''')


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_a_folder_named_simulator_where_the_user_runs_does_not_replace_fleetsim_in_the_ray_actors(
        tmp_path: Path) -> None:
    """A user's own package called `simulator` in the working directory: Ray put that directory first
    on its workers' path, each actor imported the user's package (which here refuses to be imported)
    and died before it was ready. The driver itself imports the right one (its script's folder first);
    its working directory and path are the same after ``bind`` as before."""
    done = run_script_in(decoy_project(tmp_path, "learning"), SCRIPT)
    assert "same cwd True ready True trained here 0" in done.stdout


@pytest.mark.ray
@needs_ray
def test_ray_init_runs_in_an_empty_folder_and_the_callers_folder_comes_back_when_it_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What Ray records is an empty folder, not the caller's (with the user's address passed on as
    given); the caller's working directory and ``sys.argv`` are theirs again, even when Ray fails."""
    import ray

    from simulator.learning.executors import RayExecutor

    seen: dict[str, object] = {}

    def init(**kwargs: object) -> None:
        seen.update(kwargs, cwd=os.getcwd(), listing=os.listdir("."),
                    script=os.path.dirname(os.path.realpath(sys.argv[0])))
        raise ConnectionError("no Ray cluster at that address")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    (tmp_path / "simulator").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["scripts/train.py"])  # relative: Ray resolves it in ray.init
    with pytest.raises(ConnectionError):
        RayExecutor(address="10.0.0.7:6379").bind(None)  # type: ignore[arg-type]  # Ray fails before it is used
    assert seen["address"] == "10.0.0.7:6379" and seen["num_cpus"] is None
    assert seen["cwd"] != str(tmp_path) and seen["listing"] == []
    assert seen["script"] == str(tmp_path / "scripts")  # the script's folder, as it was before the change
    assert os.getcwd() == str(tmp_path) and sys.argv == ["scripts/train.py"]


def test_a_relative_cache_folder_in_the_environment_names_the_same_folder_for_ray_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local Ray workers inherit the environment and start in fleetsim's empty folder: a relative
    FLEETSIM_CACHE_DIR (or XDG_CACHE_HOME) would have named a folder inside it. While Ray starts, and
    after, it names the caller's folder; an absolute one and ``off`` are left as they are."""
    from simulator.cluster.ray_start import start_ray

    seen: dict[str, str] = {}

    class FakeRay:
        @staticmethod
        def init(**kwargs: object) -> str:
            seen.update(cwd=os.getcwd(), cache=os.environ["FLEETSIM_CACHE_DIR"], xdg=os.environ["XDG_CACHE_HOME"])
            return "started"

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLEETSIM_CACHE_DIR", "plans")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert start_ray(FakeRay, num_cpus=1) == "started"
    assert seen["cwd"] != str(tmp_path)
    assert seen["cache"] == os.environ["FLEETSIM_CACHE_DIR"] == str(tmp_path / "plans")
    assert seen["xdg"] == str(tmp_path / "xdg") and os.getcwd() == str(tmp_path)
    monkeypatch.setenv("FLEETSIM_CACHE_DIR", "off")
    start_ray(FakeRay)
    assert seen["cache"] == "off"
