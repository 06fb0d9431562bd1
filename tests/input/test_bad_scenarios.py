"""Bad input through the real CLI: exit status 2 and one paragraph naming file, field, value, accepted.

Each case writes one broken scenario (the tiny valid base of conftest.py with one thing wrong) and
runs `fleetsim validate` on it in-process; a handful go through a real subprocess to prove the exit
code and the absence of a traceback end to end. Output safety (no overwrite without --force) and the
one not-an-error case (a model that fits no device: the run finishes and reports the OOMs) are here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.helpers.cli import ROOT, assert_bad_input, base, cli, cli_subprocess, write_yaml

NANO = ROOT / "device_profiles" / "jetson-nano-4gb.yaml"


@dataclass
class Case:
    """One broken scenario: `edit` changes the base mapping in place (or returns raw text/bytes)."""

    id: str
    edit: Callable[[dict[str, Any], Path], Any]
    field: str | None
    value: str | None
    also: tuple[str, ...] = ()
    file: str | None = None  # the file the message must name (default: the scenario file)


def put(path: str, value: Any) -> Callable[[dict[str, Any], Path], None]:
    """An edit setting a dotted path (``fleet[1].count``) of the scenario to `value`."""
    keys: list[Any] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        keys.append(name)
        if rest:
            keys.extend(int(i) for i in rest.rstrip("]").split("]["))

    def edit(data: dict[str, Any], _tmp: Path) -> None:
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        node[keys[-1]] = value

    return edit


def text(raw: str | bytes) -> Callable[[dict[str, Any], Path], str | bytes]:
    return lambda _data, _tmp: raw


def dumped_with(line: str) -> Callable[[dict[str, Any], Path], str]:
    """The valid base as YAML text with one more line appended (for YAML-level mistakes)."""
    return lambda data, _tmp: yaml.safe_dump(data, sort_keys=False) + line + "\n"


def with_profile_file(data: dict[str, Any], tmp: Path) -> None:
    profile = yaml.safe_load(NANO.read_text())
    profile["memory"]["usable_gb"] = 9.0  # more than the module's 4 GB total
    write_yaml(tmp / "my_profile.yaml", profile)
    data["fleet"][0]["profile"] = "./my_profile.yaml"


def with_trace(csv_text: str) -> Callable[[dict[str, Any], Path], None]:
    def edit(data: dict[str, Any], tmp: Path) -> None:
        (tmp / "bad_trace.csv").write_text(csv_text)
        data["fleet"][0]["availability"] = {"kind": "trace", "path": "bad_trace.csv"}
    return edit


def both(*edits: Callable[[dict[str, Any], Path], Any]) -> Callable[[dict[str, Any], Path], None]:
    def edit(data: dict[str, Any], tmp: Path) -> None:
        for e in edits:
            e(data, tmp)
    return edit


CASES = [
    # ---- the file itself
    Case("yaml_syntax", text("name: x\nfleet: [\n  {profile: a, count: 2\n"), None, None,
         also=("not valid YAML", "line 4, column 1")),
    Case("yaml_bad_indent", text("name: x\n seed: 1\n  fleet: []\n"), None, None, also=("line 2, column 6",)),
    Case("document_list", text("- 1\n- 2\n"), None, "[1, 2]", also=("mapping",)),
    Case("document_scalar", text("just a sentence\n"), None, "'just a sentence'"),
    Case("empty_file", text(""), None, None, also=("empty",)),
    Case("only_comments", text("# nothing here yet\n"), None, None, also=("empty",)),
    Case("duplicate_key", dumped_with("seed: 3"), None, None, also=("'seed' twice", "line 2")),
    Case("impossible_date", dumped_with("description: 2001-13-45"), None, None, also=("month",)),
    Case("alias_bomb", dumped_with("".join(
        f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10) if i else ', '.join(['lol'] * 10)}]\n" for i in range(9))),
         None, None, also=("too large", "1,000,000")),
    Case("self_reference", dumped_with("loop: &me {again: *me}"), None, None, also=("refers to a value that contains it",)),
    Case("not_utf8", text(b"name: \xff\xfe caf\xe9\n"), None, None, also=("UTF-8",)),
    # ---- types and keys
    Case("count_string", put("fleet[1].count", "four"), "fleet[1].count", "'four'", also=("an integer",)),
    Case("count_float", put("fleet[0].count", 2.5), "fleet[0].count", "2.5"),
    Case("seed_list", put("seed", [1, 2]), "seed", "[1, 2]"),
    Case("name_with_spaces", put("name", "my run!"), "name", "'my run!'"),
    Case("unknown_top_key", put("fleets", []), "fleets", "[]", also=("unknown key", "fleet, name")),
    Case("typo_nested_key", put("network.access_points.ap.bandwith_mbps", 100),
         "network.access_points.ap.bandwith_mbps", "100", also=("capacity_mbps",)),
    Case("typo_stop_key", put("stop.sim_time", 30), "stop.sim_time", "30", also=("sim_time_s",)),
    Case("missing_workload", lambda d, _t: d.pop("workload"), "workload", None, also=("missing", "Workload")),
    # ---- numbers out of range
    Case("capacity_negative", put("network.access_points.ap.capacity_mbps", -5),
         "network.access_points.ap.capacity_mbps", "-5", also=("> 0",)),
    Case("capacity_zero", put("network.access_points.ap.capacity_mbps", 0),
         "network.access_points.ap.capacity_mbps", "0"),
    Case("downlink_nan", put("network.server.downlink_mbps", float("nan")), "network.server.downlink_mbps", "nan",
         also=("finite",)),
    Case("rate_inf", put("network.ethernet.rate_mbps", float("inf")), "network.ethernet.rate_mbps", "inf"),
    Case("rate_huge", put("network.ethernet.rate_mbps", 1e300), "network.ethernet.rate_mbps", "1e+300"),
    Case("latency_negative", put("network.ethernet.latency.mean_ms", -1), "network.ethernet.latency.mean_ms", "-1"),
    Case("jitter_nan", put("network.access_points.ap.latency.jitter_ms", float("nan")),
         "network.access_points.ap.latency.jitter_ms", "nan"),
    Case("count_negative", put("fleet[0].count", -3), "fleet[0].count", "-3", also=(">= 1",)),
    Case("churn_negative_mean", put("fleet[1].availability", {"kind": "churn", "mean_online_s": -10, "mean_offline_s": 5}),
         "fleet[1].availability.mean_online_s", "-10"),
    Case("churn_typo", put("fleet[1].availability", {"kind": "churn", "mean_online_s": 30, "mean_offline_s": 5,
                                                      "mean_on": 5}),
         "fleet[1].availability.mean_on", "5", also=("mean_online_s, start_online_probability",)),
    Case("churn_too_fast", put("fleet[1].availability", {"kind": "churn", "mean_online_s": 1e-9, "mean_offline_s": 1e-9}),
         "fleet[1].availability.mean_online_s", "1e-09", also=(">= 0.001",)),
    Case("batch_size_huge", put("workload.batch_size", 10**17), "workload.batch_size", "100000000000000000"),
    Case("local_epochs_huge", put("workload.local_epochs", 1e308), "workload.local_epochs", "1e+308"),
    Case("availability_kind", put("fleet[1].availability", {"kind": "sometimes"}), "fleet[1].availability", None,
         also=("sometimes", "'always', 'churn', 'trace'")),
    # ---- fleet: profiles, modes, links
    Case("unknown_profile", put("fleet[0].profile", "jetson-nano-9000"), "fleet[0].profile", "'jetson-nano-9000'",
         also=("jetson-nano-4gb",)),
    Case("profile_path_missing", put("fleet[0].profile", "./no_such_profile.yaml"), "fleet[0].profile",
         "'./no_such_profile.yaml'", also=("not found",)),
    Case("profile_usable_over_total", with_profile_file, "memory.usable_gb", "9.0", also=("total_gb",),
         file="my_profile.yaml"),
    Case("override_negative", put("fleet[0].overrides", {"memory": {"usable_gb": -1}}),
         "fleet[0].overrides.memory.usable_gb", "-1"),
    Case("override_unknown_key", put("fleet[0].overrides", {"memory": {"usable_gbb": 3}}),
         "fleet[0].overrides.memory.usable_gbb", "3", also=("usable_gb",)),
    Case("unknown_power_mode", put("fleet[0].power_mode", "turbo"), "fleet[0].power_mode", "'turbo'",
         also=("maxn, 5w",)),
    Case("unknown_link", put("fleet[0].link", "ap-nope"), "fleet[0].link", "'ap-nope'", also=("ethernet, ap",)),
    Case("ap_named_ethernet", put("network.access_points.ethernet", {"capacity_mbps": 100}),
         "network.access_points.ethernet", None, also=("reserved",)),
    Case("empty_fleet", put("fleet", []), "fleet", "[]", also=("at least 1 item",)),
    Case("more_devices_than_samples", put("fleet[0].count", 1500), "workload.dataset", "'digits'",
         also=("fewer than the 1502 devices",)),
    # ---- workload
    Case("unknown_model", put("workload.model.name", "resnet-9000"), "workload.model.name", "'resnet-9000'",
         also=("resnet, cnn",)),
    Case("blocks_text", put("workload.model.blocks", "abc"), "workload.model.blocks", "'abc'",
         also=("an integer or a list",)),
    Case("unknown_model_preset", put("workload.model.preset", "huge"), "workload.model.preset", "'huge'",
         also=("tiny, small",)),
    Case("family_field_not_applicable", put("workload.model.heads", 4), "workload.model.heads", "4",
         also=("width, blocks",)),
    Case("user_model_not_importing", put("workload.model", {"name": "no_such_module_xyz:Net"}),
         "workload.model.name", "'no_such_module_xyz:Net'", also=("cannot import",)),
    Case("plan_shape_mismatch", put("workload.plan_input_shape", [3]), "workload.plan_input_shape", "[3]"),
    Case("unknown_dataset", put("workload.dataset.name", "mnist"), "workload.dataset.name", "'mnist'",
         also=("'digits'",)),
    Case("dataset_field_not_applicable", put("workload.dataset.num_samples", 100),
         "workload.dataset.num_samples", "100", also=("image_size",)),
    Case("npz_missing_file", put("workload.dataset", {"name": "npz", "path": "missing.npz"}),
         "workload.dataset.path", None, also=("missing.npz'", "not found")),
    Case("unknown_partition", put("workload.partition", {"kind": "zipf"}), "workload.partition.kind", "'zipf'",
         also=("'dirichlet'",)),
    Case("alpha_zero", put("workload.partition.alpha", 0), "workload.partition.alpha", "0", also=("> 0",)),
    Case("alpha_negative", put("workload.partition.alpha", -0.5), "workload.partition.alpha", "-0.5"),
    # ---- algorithm
    Case("unknown_preset", put("algorithm.name", "fedfoo"), "algorithm.name", "'fedfoo'", also=("co-s2p",)),
    Case("unknown_policy", put("algorithm.aggregation", {"policy": "quantum"}), "algorithm.aggregation.policy",
         "'quantum'", also=("sync",)),
    Case("plugin_not_importing", put("algorithm.aggregation", {"policy": "no_such_module_xyz:Policy"}),
         "algorithm.aggregation.policy", "'no_such_module_xyz:Policy'", also=("does not import",)),
    Case("plugin_not_a_policy", put("algorithm.aggregation", {"policy": "json:dumps"}),
         "algorithm.aggregation.policy", "'json:dumps'", also=("not an AggregationPolicy",)),
    Case("aggregation_key_for_other_policy", put("algorithm.aggregation", {"k": 3}), "algorithm.aggregation.k", "3",
         also=("clients_per_round",)),
    Case("k_larger_than_fleet", both(put("algorithm.name", "co-s2p"), put("algorithm.aggregation", {"k": 99})),
         "algorithm.aggregation.k", "99", also=("1 … 4",)),
    Case("clients_per_round_larger_than_fleet", put("algorithm.aggregation", {"clients_per_round": 99}),
         "algorithm.aggregation.clients_per_round", "99"),
    Case("unknown_staleness_fn", both(put("algorithm.name", "fedbuff"),
                                      put("algorithm.aggregation", {"staleness": {"fn": "cubic"}})),
         "algorithm.aggregation.staleness.fn", "'cubic'", also=("'polynomial'",)),
    Case("deadline_too_short", put("algorithm.aggregation", {"deadline_s": 1e-6}), "algorithm.aggregation.deadline_s",
         "1e-06", also=(">= 0.001 s",)),
    Case("width_ratio_zero", both(put("algorithm.name", "heterofl"), put("algorithm.pruning", {"width_ratios": [1.0, 0]})),
         "algorithm.pruning.width_ratios[1]", "0"),
    Case("width_ratio_above_one", both(put("algorithm.name", "heterofl"),
                                       put("algorithm.pruning", {"width_ratios": [1.5, 0.5]})),
         "algorithm.pruning.width_ratios[0]", "1.5"),
    # ---- stop
    Case("stop_without_bound", put("stop", {"sim_time_s": None}), "stop", None, also=("max_versions",)),
    Case("target_accuracy_above_one", put("stop.target_accuracy", 1.5), "stop.target_accuracy", "1.5",
         also=("<= 1",)),
    # ---- availability traces
    Case("trace_missing", put("fleet[0].availability", {"kind": "trace", "path": "no_trace.csv"}),
         "fleet[0].availability.path", None, also=("no_trace.csv'", "not found")),
    Case("trace_non_numeric", with_trace("device_index,start_s,end_s\n0,abc,5\n"), "fleet[0].availability.path",
         None, also=("line 2", "'abc'"), file="bad_trace.csv"),
    Case("trace_out_of_range", with_trace("device_index,start_s,end_s\n0,1,2\n5,0,10\n"),
         "fleet[0].availability.path", None, also=("line 3", "device_index < 2"), file="bad_trace.csv"),
    Case("trace_missing_columns", with_trace("device,start,end\n0,1,2\n"), "fleet[0].availability.path",
         None, also=("missing columns",), file="bad_trace.csv"),
]


def _write_case(case: Case, tmp: Path) -> Path:
    data = base()
    raw = case.edit(data, tmp)
    path = tmp / f"{case.id}.yaml"
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    elif isinstance(raw, str):
        path.write_text(raw)
    else:
        write_yaml(path, data)
    return path


def test_the_base_scenario_is_valid(tmp_path: Path) -> None:
    result = cli("validate", str(write_yaml(tmp_path / "ok.yaml", base())))
    assert result.code == 0, result.text
    assert "ok" in result.stdout and "4 devices" in " ".join(result.stdout.split())


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 36 and len({c.id for c in CASES}) == len(CASES)


# cases whose problem lies in a plug-in's code: `validate` imports plug-ins only when asked to
PLUGIN_CASES = {"user_model_not_importing", "plugin_not_importing", "plugin_not_a_policy"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validate_rejects(case: Case, tmp_path: Path) -> None:
    path = _write_case(case, tmp_path)
    flags = ["--import-plugins"] if case.id in PLUGIN_CASES else []
    assert_bad_input(cli("validate", str(path), *flags), file=case.file or path.name, field=case.field,
                     value=case.value, also=case.also)


# ------------------------------------------------------------------ files that are not there


def test_missing_scenario_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert_bad_input(cli("validate", str(missing)), file=missing, field=None, value=None, also=("not found",))


def test_folder_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "a_folder.yaml"
    folder.mkdir()
    assert_bad_input(cli("run", str(folder)), file=folder, field=None, value=None, also=("folder",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder.yaml"]


# ------------------------------------------------------------------ profile YAMLs and options


def test_profiles_command_rejects_a_bad_profile(tmp_path: Path) -> None:
    profile = yaml.safe_load(NANO.read_text())
    profile["power_modes"]["5w"]["clock_scale"] = 1.5
    path = write_yaml(tmp_path / "fast_nano.yaml", profile)
    assert_bad_input(cli("profiles", str(path)), file="fast_nano.yaml", field="power_modes.5w.clock_scale",
                     value="1.5", also=("<= 1",))


def test_run_rejects_a_negative_seed_option(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "ok.yaml", base())
    assert_bad_input(cli("run", str(path), "--timing-only", "--seed", "-1", "--out", str(tmp_path / "out")),
                     file=None, field="--seed", value="-1")
    assert not (tmp_path / "out").exists()


def test_a_problem_found_late_leaves_no_run_folder(tmp_path: Path) -> None:
    """The npz file is only read when the data is needed; that must still happen before any output."""
    data = base()
    data["workload"]["dataset"] = {"name": "npz", "path": "missing.npz"}
    path = write_yaml(tmp_path / "late.yaml", data)
    out = tmp_path / "runs" / "late"
    assert_bad_input(cli("run", str(path), "--timing-only", "--out", str(out)), file="late.yaml",
                     field="workload.dataset.path", value=None)
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------ output safety


def _run_args(tmp_path: Path, out: Path, *extra: str) -> list[str]:
    path = write_yaml(tmp_path / "small.yaml", base())
    return ["run", str(path), "--timing-only", "--no-report", "--out", str(out), *extra]


def test_output_path_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("I am a file\n")
    out = blocker / "run"
    assert_bad_input(cli(*_run_args(tmp_path, out)), file=None, field="output", value=f"'{out}'",
                     also=("cannot be written",))
    assert blocker.read_text() == "I am a file\n"


def test_output_folder_without_write_permission(tmp_path: Path) -> None:
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes (the regular-file case covers this)")
        assert_bad_input(cli(*_run_args(tmp_path, locked / "run")), file=None, field="output", value=None)
    finally:
        locked.chmod(0o755)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_existing_run_folder_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text('{"precious": true}\n')
    (out / "notes.txt").write_bytes(b"\x00 keep me \xff")
    before = _snapshot(out)
    assert_bad_input(cli(*_run_args(tmp_path, out)), file=None, field="output", value=f"'{out}'",
                     also=("--force",))
    assert _snapshot(out) == before

    # --force replaces only a run folder fleetsim wrote (it carries the .fleetsim-run marker) ...
    assert_bad_input(cli(*_run_args(tmp_path, out, "--force")), file=None, field="output", value=f"'{out}'",
                     also=("fleetsim did not write", "nothing was deleted"))
    assert _snapshot(out) == before

    # ... and in it deletes only what fleetsim wrote: a run's files are replaced, the user's stay
    out.rename(tmp_path / "not-a-run")
    assert cli(*_run_args(tmp_path, out)).code == 0
    (out / "summary.json").write_text('{"precious": true}\n')
    (out / "notes.txt").write_bytes(b"\x00 keep me \xff")
    result = cli(*_run_args(tmp_path, out, "--force"))
    assert result.code == 0, result.text
    after = _snapshot(out)
    assert after["notes.txt"] == b"\x00 keep me \xff"
    summary = json.loads(after["summary.json"])
    assert summary["scenario_name"] == "bad-input" and "precious" not in summary


# ------------------------------------------------------------------ not an input error: OOM


def test_model_that_fits_no_device_runs_and_reports_ooms(tmp_path: Path) -> None:
    data = base()
    data["workload"]["model"] = {"name": "vit", "preset": "vit-b"}
    data["workload"]["plan_input_shape"] = [3, 224, 224]
    data["workload"]["train_model"] = {"name": "cnn", "preset": "tiny"}
    data["workload"]["batch_size"] = 256
    data["fleet"][1]["count"] = 1
    path = write_yaml(tmp_path / "too_big.yaml", data)
    out = tmp_path / "run"
    result = cli("run", str(path), "--timing-only", "--no-report", "--out", str(out))
    assert result.code == 0, result.text
    assert "Traceback" not in result.text
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["oom_devices"]) == ["jetson-nano-4gb#0", "jetson-nano-4gb#1", "jetson-xavier-nx#0"]
    assert summary["ooms"] >= 3 and summary["accepted"] == 0
    from simulator.trace.recorder import read_table

    events = read_table(out, "events")
    assert set(events.loc[events.phase == "oom", "device"]) == {0, 1, 2}
    assert set(events.loc[events.phase == "oom", "outcome"]) == {"oom"}


# ------------------------------------------------------------------ end to end, in real processes


@pytest.mark.slow
def test_subprocess_syntax_error_via_run(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nfleet: [\n")
    assert_bad_input(cli_subprocess("run", str(path), "--timing-only"), file="broken.yaml", field=None,
                     value=None, also=("line 3, column 1",))


@pytest.mark.slow
def test_subprocess_unknown_nested_key_via_validate(tmp_path: Path) -> None:
    data = base()
    data["network"]["access_points"]["ap"]["bandwith_mbps"] = 10
    path = write_yaml(tmp_path / "typo.yaml", data)
    assert_bad_input(cli_subprocess("validate", str(path)), file="typo.yaml",
                     field="network.access_points.ap.bandwith_mbps", value="10")


@pytest.mark.slow
def test_subprocess_existing_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "events.parquet").write_bytes(b"PAR1 not really")
    before = _snapshot(out)
    assert_bad_input(cli_subprocess(*_run_args(tmp_path, out)), file=None, field="output", value=f"'{out}'")
    assert _snapshot(out) == before


def test_resume_rejects_a_negative_workers_option(tmp_path: Path) -> None:
    """`run` refused --workers -1; `resume` of a timing-only run (no executor is made) resumed as if it were right."""
    out = tmp_path / "out"
    assert cli("run", str(write_yaml(tmp_path / "ok.yaml", base())), "--timing-only", "--no-report",
               "--out", str(out)).code == 0
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps({**summary, "stop_reason": "interrupted", "complete": False}))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert_bad_input(cli("resume", str(out), "--workers", "-1"), file=None, field="--workers", value="-1")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_missing_availability_trace_is_said_once(tmp_path: Path) -> None:
    """It said "availability trace file file not found"."""
    data = base()
    data["fleet"][0]["availability"] = {"kind": "trace", "path": "nothere.csv"}
    err = assert_bad_input(cli("validate", str(write_yaml(tmp_path / "t.yaml", data))), file="t.yaml",
                           field="fleet[0].availability.path", value=None)
    assert "availability trace file not found" in err and "file file" not in err
