"""fleetsim deletes only what it made: --force, the marker, output.run_name (issue 12, "Deletion").

Every case runs the real CLI next to decoy files and proves, file by file, that they are untouched.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from simulator.errors import InputError
from simulator.output.folder import MARKER_FILE, check_replaceable
from tests.helpers.safety import (cli, fleetsim, mischief_scenario, one_paragraph, popen_fleetsim, tiny_scenario,
                                   tree, write_scenario)


def _decoys(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "src").mkdir(exist_ok=True)
    (folder / "src" / "main.py").write_text("print('mine')\n")


@pytest.mark.slow
def test_force_refuses_the_current_folder_and_touches_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    _decoys(work)
    scenario = write_scenario(work / "s.yaml", tiny_scenario(tmp_path))
    before = tree(work)
    err = one_paragraph(fleetsim("run", "s.yaml", "--out", ".", "--force", cwd=work), 2)  # a real process
    assert "--force will not replace this folder" in err and "nothing was deleted" in err
    assert tree(work) == before and scenario.exists()


def test_force_refuses_the_home_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _decoys(home)
    (home / MARKER_FILE).write_text(json.dumps({"fleetsim": "run", "version": 1}))  # even with a marker
    scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
    before = tree(home)
    err = one_paragraph(cli("run", str(scenario), "--out", str(home), "--force", cwd=tmp_path, HOME=str(home)), 2)
    assert "your home folder" in err
    assert tree(home) == before


def test_force_refuses_ancestors_of_cwd_and_of_the_scenario(tmp_path: Path) -> None:
    parent = tmp_path / "projects"
    _decoys(parent)
    inner = parent / "a" / "b"
    inner.mkdir(parents=True)
    scenario = write_scenario(inner / "s.yaml", tiny_scenario(tmp_path))
    (parent / MARKER_FILE).write_text(json.dumps({"fleetsim": "run", "version": 1}))
    before = tree(parent)
    err = one_paragraph(cli("run", str(scenario), "--out", str(parent / "a"), "--force", cwd=tmp_path), 2)
    assert "contains the scenario file" in err
    err = one_paragraph(cli("run", str(scenario), "--out", str(parent), "--force", cwd=inner), 2)
    assert "contains the current folder" in err
    assert tree(parent) == before


def test_force_refuses_a_filesystem_root(tmp_path: Path) -> None:
    for root in (Path("/"), Path("/.")):
        with pytest.raises(InputError, match="is a filesystem root"):
            check_replaceable(root)
    mount = tmp_path / "mnt"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission): the '/' case above still ran")
    try:
        _decoys(mount)
        (mount / MARKER_FILE).write_text(json.dumps({"fleetsim": "run", "version": 1}))
        before = tree(mount)
        scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
        err = one_paragraph(cli("run", str(scenario), "--out", str(mount), "--force", cwd=tmp_path), 2)
        assert "is a filesystem root" in err
        assert tree(mount) == before
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_force_refuses_a_folder_without_the_marker(tmp_path: Path) -> None:
    out = tmp_path / "data"
    _decoys(out)
    (out / "summary.json").write_text("{}")  # looks like a run, but fleetsim did not write it
    scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
    before = tree(out)
    err = one_paragraph(cli("run", str(scenario), "--out", str(out), "--force"), 2)
    assert f"no {MARKER_FILE} marker" in err
    assert tree(out) == before


def test_force_replaces_only_fleetsims_files_in_a_marked_folder(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out)).code == 0
    marker = json.loads((out / MARKER_FILE).read_text())
    assert marker["fleetsim"] == "run" and marker["version"] == 1 and marker["pid"] > 0 and marker["created"]
    (out / "notes.txt").write_text("mine")
    (out / "plots").mkdir()
    (out / "plots" / "fig.png").write_bytes(b"\x89PNG")
    first = json.loads((out / "summary.json").read_text())
    again = tiny_scenario(tmp_path, seed=7)
    assert cli("run", str(write_scenario(tmp_path / "s7.yaml", again)), "--out", str(out), "--force").code == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 7 != first["seed"]
    assert (out / "notes.txt").read_text() == "mine" and (out / "plots" / "fig.png").read_bytes() == b"\x89PNG"
    assert not [p for p in out.iterdir() if p.name.startswith(".fleetsim-previous")]


def test_run_name_must_be_a_plain_name(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    _decoys(parent)
    runs = parent / "x" / "y"
    runs.mkdir(parents=True)
    data = tiny_scenario(tmp_path)
    data["output"] = {"folder": str(runs), "run_name": "../..", "report": False}
    scenario = write_scenario(parent / "s.yaml", data)
    before = tree(parent)
    for args in (("validate", str(scenario)), ("run", str(scenario)), ("run", str(scenario), "--force")):
        err = one_paragraph(cli(*args), 2)
        assert "'output.run_name'" in err and "not a plain folder name" in err and "(got '../..')" in err
    assert tree(parent) == before


@pytest.mark.slow
def test_quickstart_twice_refuses_then_force_replaces(tmp_path: Path) -> None:
    """The README's first command, run twice in one folder (timing-only, to be quick)."""
    from tests.helpers.safety import ROOT

    quickstart = ROOT / "scenarios" / "quickstart.yaml"
    args = ("run", str(quickstart), "--timing-only", "--no-report")
    assert cli(*args, cwd=tmp_path).code == 0
    run_dir = tmp_path / "reports" / "quickstart"
    before = tree(run_dir)
    err = one_paragraph(cli(*args, cwd=tmp_path), 2)
    assert "already exists" in err and "--force" in err
    assert tree(run_dir) == before
    (run_dir / "summary.json").write_text('{"stale": true}')
    assert cli(*args, "--force", cwd=tmp_path).code == 0
    assert json.loads((run_dir / "summary.json").read_text())["scenario_name"] == "quickstart"


def test_a_failed_force_run_leaves_the_previous_run_as_it_was(tmp_path: Path) -> None:
    """The replacement fails before it has anything to show (a plug-in raising at t = 0): the
    previous run comes back byte for byte, the user's file included."""
    scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out)).code == 0
    (out / "notes.txt").write_text("mine")
    before = tree(out)
    broken = mischief_scenario(tmp_path, "start")
    err = one_paragraph(cli("run", str(broken), "--out", str(out), "--force"), 1, "fleetsim: run failed: ")
    assert "refusing to start" in err and "previous run" in err and "kept as it was" in err
    assert tree(out) == before


@pytest.mark.slow
def test_ctrl_c_before_the_first_flush_keeps_the_previous_run(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out)).code == 0
    before = tree(out)
    sentinel = tmp_path / "spinning"
    spinning = mischief_scenario(tmp_path, "spin_start", sentinel=str(sentinel))
    proc = popen_fleetsim("run", str(spinning), "--out", str(out), "--force")
    deadline = time.monotonic() + 60
    while not sentinel.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "previous run" in err and "kept as it was" in err
    assert tree(out) == before


def test_a_sweep_will_not_write_into_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "results"
    _decoys(out)
    (out / "results.csv").write_text("my,own,table\n")
    base = write_scenario(tmp_path / "base.yaml", tiny_scenario(tmp_path))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"base: {base}\ngrid:\n  seed_offset_dummy: [1]\n".replace("seed_offset_dummy", "fleet[0].count"))
    before = tree(out)
    err = one_paragraph(cli("sweep", str(sweep), "--out", str(out), "--no-report"), 2)
    assert "fleetsim did not write" in err
    assert tree(out) == before
    fresh = tmp_path / "fresh"
    assert cli("sweep", str(sweep), "--out", str(fresh), "--no-report").code == 0
    assert (fresh / ".fleetsim-sweep").exists() and (fresh / "results.csv").exists()
