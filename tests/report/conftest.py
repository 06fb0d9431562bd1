"""Fixtures for the report tests: synthetic run folders (see tests/helpers/report_synthetic.py) and their reports.

The generator lives in tests/helpers/, not here: other test folders have their own
conftest.py, and `from conftest import ...` would find whichever was imported last.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.helpers.report_synthetic import write_run


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """9 devices (3 per profile), 8 rounds: nano-00000 OOMs every round; nx-00004 goes offline
    in round 3 (job lost) and misses round 4."""
    return write_run(tmp_path_factory.mktemp("small") / "run", 9, 8, seed=1,
                     oom_devices=np.array([0]), offline=[(4, 3)])


@pytest.fixture(scope="session")
def timing_only_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("timing") / "run", 6, 5, seed=2,
                     oom_devices=np.array([], int), offline=[], timing_only=True,
                     name="timing only")


@pytest.fixture(scope="session")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 devices × 100 rounds (≈3 M phases), ~3 % of nanos OOM, 1 % of devices go offline."""
    n, rounds = 10_000, 100
    rng = np.random.default_rng(3)
    nanos = np.arange(n)[(np.arange(n) * 3) // n == 0]
    oom = nanos[::33]
    candidates = np.setdiff1d(np.arange(n), oom)
    off_dev = rng.choice(candidates, size=n // 100, replace=False)
    off_round = rng.integers(0, rounds - 1, size=off_dev.size)
    return write_run(tmp_path_factory.mktemp("big") / "run", n, rounds, seed=3, oom_devices=oom,
                     offline=np.stack([off_dev, off_round], axis=1), name="scale 10k")


@pytest.fixture(scope="session")
def small_report(small_run: Path) -> Path:
    from simulator.report import write_run_report

    return write_run_report(small_run)


@pytest.fixture(scope="session")
def big_report(big_run: Path) -> tuple[Path, float, float]:
    """The 10k-device report, the seconds it took to build and a reference measured beside it: the
    seconds to read the run's tables into pandas, which the report must do at least once (host time,
    time.perf_counter; the reference is the faster of one read before and one after the report, so
    a load change during the report counts against neither)."""
    import time

    import pyarrow.parquet as pq

    from simulator.report import write_run_report

    def read_tables() -> float:
        t0 = time.perf_counter()
        for table in ("events", "updates", "devices", "versions"):
            if (big_run / f"{table}.parquet").exists():
                pq.read_table(big_run / f"{table}.parquet").to_pandas()
        return time.perf_counter() - t0

    before = read_tables()
    t0 = time.perf_counter()
    out = write_run_report(big_run)
    seconds = time.perf_counter() - t0
    return out, seconds, min(before, read_tables())
