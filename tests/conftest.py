"""Session-wide test settings and the fixtures every folder shares (helpers are in tests/helpers/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import processes


@pytest.fixture(autouse=True, scope="session")
def _private_cost_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the cost model's on-disk trace cache inside the test session (CLI subprocesses inherit
    the variable), so tests neither read a developer's cache nor leave files in it."""
    previous = os.environ.get("FLEETSIM_CACHE_DIR")
    os.environ["FLEETSIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("fleetsim-cache"))
    yield
    if previous is None:
        os.environ.pop("FLEETSIM_CACHE_DIR", None)
    else:
        os.environ["FLEETSIM_CACHE_DIR"] = previous


@pytest.fixture(autouse=True)
def _no_child_left_running() -> None:
    """A child process a test started and did not see end is killed when the test ends."""
    yield
    processes.stop_leftovers()


@pytest.fixture
def profile_dir(tmp_path: Path) -> Path:
    """An empty folder for the profiles a test writes (tests/helpers/scenarios.write_profile)."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    return folder
