"""Scenario, sweep, profile and trace files are checked before they are parsed: regular files only,
at most FLEETSIM_MAX_INPUT_BYTES (10 MB by default); a sweep's size is checked before it is expanded
(issue 12, "Limits before parsing").

Why the subprocess timeouts: before this, `validate /dev/zero` read 5 GB, a FIFO blocked forever and
a 50 MB scenario parsed for minutes. Each case must come back with its one paragraph, not hang.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from simulator.config.input_files import DEFAULT_MAX_INPUT_BYTES
from tests.helpers.safety import cli, fleetsim, one_paragraph, tiny_scenario, write_scenario


@pytest.mark.slow
def test_devices_and_pipes_are_refused_without_reading_them(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.fifo"
    os.mkfifo(fifo)
    for path, kind in ((Path("/dev/zero"), "a character device"), (fifo, "a pipe (FIFO)")):
        err = one_paragraph(fleetsim("validate", str(path), timeout=60), 2)  # a hang fails the timeout
        assert str(path) in err and f"is {kind}, not a regular file" in err


@pytest.mark.slow
def test_an_oversized_scenario_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:  # not YAML at all: a parse would say so instead
        handle.write(b"{{{ not yaml\n")
        handle.truncate(DEFAULT_MAX_INPUT_BYTES + 1)
    err = one_paragraph(fleetsim("validate", str(big), timeout=60), 2)
    assert str(big) in err and "is too large" in err and "10,000,000 bytes" in err
    assert "FLEETSIM_MAX_INPUT_BYTES" in err and "not valid YAML" not in err


def test_the_limit_can_be_changed(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path / "s.yaml", tiny_scenario(tmp_path))
    size = scenario.stat().st_size
    err = one_paragraph(cli("validate", str(scenario), FLEETSIM_MAX_INPUT_BYTES=str(size - 1)), 2)
    assert f"{size:,} bytes; the limit is {size - 1:,} bytes" in err
    assert cli("validate", str(scenario), FLEETSIM_MAX_INPUT_BYTES=str(size)).code == 0
    err = one_paragraph(cli("validate", str(scenario), FLEETSIM_MAX_INPUT_BYTES="lots"), 2)
    assert "$FLEETSIM_MAX_INPUT_BYTES" in err and "(got 'lots')" in err


def test_a_device_as_profile_says_what_it_is(tmp_path: Path) -> None:
    data = tiny_scenario(tmp_path)
    data["fleet"][0]["profile"] = "/dev/zero"
    err = one_paragraph(cli("validate", str(write_scenario(tmp_path / "s.yaml", data))), 2)
    assert "'fleet[0].profile'" in err and "is a character device, not a regular file" in err
    assert "not found" not in err


@pytest.mark.slow
def test_profile_and_trace_files_obey_the_limit(tmp_path: Path) -> None:
    data = tiny_scenario(tmp_path)
    trace = tmp_path / "offline.csv"
    trace.write_text("device_index,start_s,end_s\n" + "".join(f"0,{i},{i + 0.5}\n" for i in range(100)))
    data["fleet"][0]["availability"] = {"kind": "trace", "path": str(trace)}
    scenario = write_scenario(tmp_path / "s.yaml", data)
    limit = str(trace.stat().st_size - 1)  # the scenario and the profile are smaller than the trace
    assert scenario.stat().st_size < int(limit) and Path(data["fleet"][0]["profile"]).stat().st_size < int(limit)
    err = one_paragraph(cli("validate", str(scenario), FLEETSIM_MAX_INPUT_BYTES=limit), 2)
    assert "'fleet[0].availability.path'" in err and "too large" in err and "offline.csv" in err
    fifo = tmp_path / "offline.fifo"
    os.mkfifo(fifo)
    data["fleet"][0]["availability"]["path"] = str(fifo)
    err = one_paragraph(fleetsim("validate", str(write_scenario(scenario, data)), timeout=60), 2)
    assert "a pipe (FIFO), not a regular file" in err
    data["fleet"][0]["availability"] = {"kind": "always"}
    profile = Path(data["fleet"][0]["profile"])
    profile.write_text(profile.read_text() + "# " + "padding " * 500 + "\n")  # larger than the scenario
    err = one_paragraph(cli("validate", str(write_scenario(scenario, data)),
                            FLEETSIM_MAX_INPUT_BYTES=str(profile.stat().st_size - 1)), 2)
    assert "device profile file is too large" in err and str(profile) in err


@pytest.mark.slow
def test_a_huge_sweep_is_refused_before_expanding(tmp_path: Path) -> None:
    base = write_scenario(tmp_path / "base.yaml", tiny_scenario(tmp_path))
    grid = {f"fleet[0].overrides.k{i}": list(range(10)) for i in range(7)}  # 10^7 combinations
    sweep = tmp_path / "huge.yaml"
    sweep.write_text(yaml.safe_dump({"base": str(base), "grid": grid}))
    err = one_paragraph(fleetsim("sweep", str(sweep), "--out", str(tmp_path / "out"), timeout=60), 2)
    assert "expands to 10,000,000 runs" in err and "more than the limit of 10,000" in err
    assert "FLEETSIM_MAX_VARIANTS" in err and not (tmp_path / "out").exists()
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump({"base": str(base), "grid": {"fleet[0].count": [2, 3]}, "seeds": [0, 1]}))
    err = one_paragraph(cli("sweep", str(small), "--out", str(tmp_path / "o2"), FLEETSIM_MAX_VARIANTS="3"), 2)
    assert "expands to 4 runs" in err


@pytest.mark.parametrize("name", ["sweep", "validate"])
def test_dev_zero_as_a_sweep_or_scenario(name: str, tmp_path: Path) -> None:
    err = one_paragraph(cli(name, "/dev/zero"), 2)
    assert "/dev/zero" in err and "character device" in err
