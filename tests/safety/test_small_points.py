"""The smaller points of issue 12 (item 9): booleans are not numbers, a spreadsheet's BOM is fine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import simulator
from simulator.errors import InputError
from tests.helpers.safety import cli, one_paragraph, tiny_scenario, write_scenario


def _set(data: dict, dotted: str, value: object) -> dict:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[parts[-1]] = value
    return data


@pytest.mark.parametrize("dotted, field, accepted", [
    ("fleet.0.count", "fleet[0].count", "an integer >= 1"),
    ("network.ethernet.rate_mbps", "network.ethernet.rate_mbps", "a number > 0"),
    ("stop.sim_time_s", "stop.sim_time_s", "a number > 0"),
    ("workload.batch_size", "workload.batch_size", "an integer >= 1"),
    ("algorithm.aggregation.deadline_s", "algorithm.aggregation.deadline_s", "a number > 0"),
    ("fleet.0.overrides.memory.usable_gb", "fleet[0].overrides.memory.usable_gb", "a number > 0 and <= 100000"),
])
def test_true_is_not_a_number(dotted: str, field: str, accepted: str, tmp_path: Path) -> None:
    data = tiny_scenario(tmp_path)
    if dotted.startswith("algorithm"):
        data["algorithm"] = {"name": "co-s2p", "aggregation": {"k": 2}}
    scenario = write_scenario(tmp_path / "s.yaml", _set(data, dotted, True))
    err = one_paragraph(cli("validate", str(scenario)), 2)
    assert f"'{field}'" in err and "true/false is not a number (got True)" in err and accepted in err, err


def test_booleans_in_lists_faults_and_sweeps(tmp_path: Path) -> None:
    data = tiny_scenario(tmp_path)
    data["faults"] = [{"kind": "server_pause", "start_s": True, "end_s": 5}]
    err = one_paragraph(cli("validate", str(write_scenario(tmp_path / "f.yaml", data))), 2)
    assert "'faults[0].start_s'" in err and "true/false is not a number" in err
    data["faults"] = [{"kind": "devices_offline", "devices": [False], "start_s": 1, "end_s": 5}]
    err = one_paragraph(cli("validate", str(write_scenario(tmp_path / "f.yaml", data))), 2)
    assert "'faults[0].devices[0]'" in err
    base = write_scenario(tmp_path / "base.yaml", tiny_scenario(tmp_path))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": str(base), "grid": {"fleet[0].count": [2]}, "seeds": [0, True]}))
    err = one_paragraph(cli("sweep", str(sweep), "--out", str(tmp_path / "o")), 2)
    assert "'seeds[1]'" in err and "true/false is not a number" in err


def test_python_api_refuses_boolean_seed_and_interval(tmp_path: Path) -> None:
    data = tiny_scenario(tmp_path)
    with pytest.raises(InputError, match="not a valid seed"):
        simulator.run(data, seed=True, out=tmp_path / "a")
    with pytest.raises(InputError, match="checkpoint interval"):
        simulator.run(data, checkpoint_every_s=True, out=tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_availability_csv_with_a_bom_is_read(tmp_path: Path) -> None:
    """Spreadsheets save UTF-8 with a byte-order mark (and often spaces after commas)."""
    trace = tmp_path / "offline.csv"
    trace.write_bytes("\ufeffdevice_index, start_s, end_s\r\n0,0,1000000\r\n".encode("utf-8"))
    data = tiny_scenario(tmp_path, devices=2)
    data["fleet"][0]["availability"] = {"kind": "trace", "path": str(trace)}
    scenario = write_scenario(tmp_path / "s.yaml", data)
    assert cli("validate", str(scenario)).code == 0
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out)).code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["offline_share"] == pytest.approx(0.5)  # device 0 offline the whole run, device 1 never


def test_a_summary_that_is_a_pipe_is_refused_not_waited_on(tmp_path: Path) -> None:
    """A crafted run folder whose summary.json is a FIFO: `fleetsim report` and `Run.open` answer at
    once in one paragraph instead of blocking on the pipe."""
    import os
    import time

    run_dir = tmp_path / "crafted"
    (run_dir / "_parts").mkdir(parents=True)
    os.mkfifo(run_dir / "summary.json")
    started = time.monotonic()
    text = one_paragraph(cli("report", str(run_dir)), 2)
    assert "summary.json" in text and "pipe" in text
    with pytest.raises(InputError, match="pipe"):
        simulator.api.Run.open(run_dir)
    assert time.monotonic() - started < 30  # generous: a blocked open would never return


def test_calibrate_never_overwrites_a_file_it_did_not_ask_for(tmp_path: Path) -> None:
    """`fleetsim calibrate --out` onto an existing file is refused before any measuring; the file is
    unchanged. (--force: the two tests at the end of this file.)"""
    mine = tmp_path / "my-profile.yaml"
    mine.write_text("my own notes\n")
    text = one_paragraph(cli("calibrate", "--out", str(mine)), 2)
    assert "already exists" in text and "--force" in text
    assert mine.read_text() == "my own notes\n"
    assert "folder" in one_paragraph(cli("calibrate", "--out", str(tmp_path)), 2)


@pytest.mark.parametrize(("flags", "field", "value"), [
    (["--input-shape", "1,-8,8"], "--input-shape", "'1,-8,8'"),  # exit 1, "internal error", after loading torch
    (["--input-shape", "0"], "--input-shape", "'0'"),             # a profile measured on empty inputs
    (["--classes", "0"], "--classes", "0"),                       # exit 1, "internal error"
    (["--warmup", "-1"], "--warmup", "-1"),                       # accepted as 0
    (["--idle-w", "nan"], "--idle-w", "nan"),                     # NaN written into the profile
    (["--busy-w", "inf"], "--busy-w", "inf"),
], ids=["negative_dim", "zero_dim", "zero_classes", "negative_warmup", "nan_idle", "inf_busy"])
def test_calibrate_refuses_figures_it_cannot_measure_before_measuring(tmp_path: Path, flags: list[str], field: str,
                                                                      value: str) -> None:
    from tests.helpers.cli import assert_bad_input, cli as cli_in_process

    out = tmp_path / "p.yaml"
    result = cli_in_process("calibrate", "--model", "mlp-tiny", "--repeats", "1", "--warmup", "0", *flags,
                            "--out", str(out))
    assert_bad_input(result, file=None, field=field, value=value)
    assert not out.exists()


def test_calibrate_out_under_a_file_is_refused_before_measuring(tmp_path: Path) -> None:
    """`--out notes.txt/p.yaml` measured for seconds, then failed to make the folder: exit 1, "internal error"."""
    from tests.helpers.cli import assert_bad_input, cli as cli_in_process

    (tmp_path / "notes.txt").write_text("mine\n")
    out = tmp_path / "notes.txt" / "p.yaml"
    err = assert_bad_input(cli_in_process("calibrate", "--model", "mlp-tiny", "--repeats", "1", "--warmup", "0",
                                          "--out", str(out)), file=None, field="--out", value=f"'{out}'")
    assert "notes.txt is a file" in err and "nothing was measured" in err
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_calibrate_force_refuses_a_file_calibrate_did_not_write(tmp_path: Path) -> None:
    """`--force` replaced any file at --out (a user's profile, notes); now only a profile calibrate wrote
    (its header line). Refused before any measuring, the file's bytes unchanged."""
    mine = tmp_path / "my-profile.yaml"
    content = b"# my hand-written Orin profile\nname: orin\n"
    mine.write_bytes(content)
    text = one_paragraph(cli("calibrate", "--model", "mlp-tiny", "--out", str(mine), "--force"), 2)
    assert str(mine) in text and "fleetsim did not write this file" in text and "remove that file yourself" in text
    assert mine.read_bytes() == content
    link = tmp_path / "link.yaml"
    link.symlink_to(mine)
    assert "fleetsim did not write" in one_paragraph(cli("calibrate", "--out", str(link), "--force"), 2)
    assert link.is_symlink() and mine.read_bytes() == content


def test_calibrate_force_replaces_a_profile_calibrate_wrote(tmp_path: Path) -> None:
    from simulator.config.profiles import load_profile
    from simulator.cli.sweep import written_by_calibrate
    from simulator.cost.calibrate import PROFILE_HEADER

    out = tmp_path / "host.yaml"
    out.write_text(f"{PROFILE_HEADER} (2026-01-01).\n# an earlier calibration\nname: old\n")
    assert written_by_calibrate(out)
    result = cli("calibrate", "--model", "mlp-tiny", "--input-shape", "1,8,8", "--repeats", "1", "--warmup", "0",
                 "--name", "host", "--out", str(out), "--force")
    assert result.code == 0, result.text
    assert out.read_text().startswith(PROFILE_HEADER) and "an earlier calibration" not in out.read_text()
    assert load_profile(str(out)).name == "host" and written_by_calibrate(out)
