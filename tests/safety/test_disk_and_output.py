"""A full disk, a read-only destination, a folder where a file should go: one paragraph each, and
what was written before stays readable (issue 12, "Disk full, read-only, wrong destination").

The full disk is a small tmpfs (this needs root and mount permission: skipped, saying so, where the
machine refuses); the read-only destination is a tmpfs mounted read-only.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.trace.recorder import read_table
from tests.helpers.safety import cli, fleetsim, one_paragraph, tiny_scenario, tree, write_scenario

RUN_FAILED = "fleetsim: run failed: "


def _mount(point: Path, options: str) -> Iterator[Path]:
    point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): needs root in a "
                    "container that allows mounts")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "disk", "size=400k")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path / "ro", "ro,size=1m")


def _long_run(tmp_path: Path) -> Path:
    """Far more trace than 400 kB: 30 devices merging asynchronously, flushed every 200 rows."""
    data = tiny_scenario(tmp_path, devices=30, stop={"sim_time_s": 1e9}, algorithm={"name": "fedasync"})
    data["output"]["flush_rows"] = 200
    return write_scenario(tmp_path / "long.yaml", data)


@pytest.mark.slow
def test_a_full_disk_ends_the_run_in_one_paragraph_keeping_what_was_written(small_disk: Path, tmp_path: Path) -> None:
    out = small_disk / "run"
    err = one_paragraph(fleetsim("run", str(_long_run(tmp_path)), "--out", str(out), timeout=300), 1, RUN_FAILED)
    assert "could not be written (No space left on device while writing" in err and str(out / "_parts") in err
    events = read_table(out, "events")  # every part written before the disk filled, readable
    parts = sorted((out / "_parts" / "events").glob("part-*.parquet"))
    assert len(parts) > 5 and len(events) == 200 * len(parts)
    assert not list(out.rglob("*.tmp")), "half-written files are removed"


@pytest.mark.slow
def test_a_full_disk_during_force_keeps_the_previous_run(small_disk: Path, tmp_path: Path) -> None:
    out = small_disk / "run"
    assert cli("run", str(write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))), "--out", str(out)).code == 0
    (out / "notes.txt").write_text("mine")
    before = tree(out)
    err = one_paragraph(fleetsim("run", str(_long_run(tmp_path)), "--out", str(out), "--force", timeout=300),
                        1, RUN_FAILED)
    assert "No space left on device" in err and "previous run" in err and "kept as it was" in err
    assert tree(out) == before


def _finished_run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    assert cli("run", str(write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))), "--out", str(out)).code == 0
    return out


@pytest.mark.slow
def test_report_to_a_folder_or_a_foreign_file_is_refused(tmp_path: Path) -> None:
    run_dir = _finished_run(tmp_path)
    folder = tmp_path / "existing"
    folder.mkdir()
    err = one_paragraph(fleetsim("report", str(run_dir), "-o", str(folder)), 2)
    assert str(folder) in err and "is a folder" in err
    mine = tmp_path / "thesis.html"
    mine.write_text("<html>my thesis</html>")
    err = one_paragraph(cli("report", str(run_dir), "-o", str(mine)), 2)
    assert "was not written by fleetsim; nothing was overwritten" in err
    assert mine.read_text() == "<html>my thesis</html>"
    err = one_paragraph(cli("compare", str(run_dir), str(run_dir), "-o", str(folder)), 2)
    assert "is a folder" in err
    page = tmp_path / "page.html"  # a page fleetsim wrote may be rewritten
    assert cli("report", str(run_dir), "-o", str(page)).code == 0
    assert cli("report", str(run_dir), "-o", str(page)).code == 0 and page.stat().st_size > 100_000


def test_report_to_an_unwritable_place(tmp_path: Path) -> None:
    run_dir = _finished_run(tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    err = one_paragraph(cli("report", str(run_dir), "-o", str(blocker / "r.html")), 2)
    assert "cannot be written" in err and str(blocker / "r.html") in err


@pytest.mark.slow
def test_report_to_a_read_only_folder(read_only: Path, tmp_path: Path) -> None:
    run_dir = _finished_run(tmp_path)
    target = read_only / "report.html"
    err = one_paragraph(fleetsim("report", str(run_dir), "-o", str(target)), 2)
    assert "cannot be written (Read-only file system)" in err and str(target) in err
    assert json.loads((run_dir / "summary.json").read_text())["complete"] is True
