"""Sweep files → variants: product and zip order, folder names, dotted keys, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator.errors import InputError
from simulator.sweep import expand, load_sweep, run_sweep
from simulator.sweep.keys import parse_key, render_key, set_key
from tests.helpers.sweep import write_sweep

ROOT = Path(__file__).resolve().parents[2]


def test_dotted_keys_parse_render_and_set() -> None:
    assert parse_key("fleet[0].count") == ("fleet", 0, "count")
    assert parse_key("algorithm.aggregation.staleness.fn") == ("algorithm", "aggregation", "staleness", "fn")
    assert render_key(parse_key("a[1][2].b")) == "a[1][2].b"
    data = {"fleet": [{"count": 1}, {"count": 2}], "algorithm": {"name": "fedavg"}}
    set_key(data, parse_key("fleet[1].count"), 7)
    set_key(data, parse_key("algorithm.aggregation.staleness.fn"), "hinge")
    assert data == {"fleet": [{"count": 1}, {"count": 7}],
                    "algorithm": {"name": "fedavg", "aggregation": {"staleness": {"fn": "hinge"}}}}
    for bad in ("", "a..b", "fleet[x].count", "1abc"):
        with pytest.raises(InputError):
            parse_key(bad)


@pytest.mark.slow
def test_grid_times_zip_times_seeds_in_file_order(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, {
        "grid": {"algorithm.name": ["fedavg", "fedbuff"], "workload.batch_size": [8, 16]},
        "zip": {"fleet[0].count": [1, 3, 2], "fleet[1].count": [3, 1, 2]},
        "seeds": [0, 5],
        "timing_only": True,
    })
    variants = expand(load_sweep(path))
    assert len(variants) == 2 * 2 * 3 * 2
    first = variants[0]
    assert first.name == "algorithm.name=fedavg__workload.batch_size=8__fleet.0.count=1__fleet.1.count=3__seed=0"
    assert [v.seed for v in variants[:4]] == [0, 5, 0, 5]
    # last grid key varies fastest (after zip and seeds), the zip keys move together
    combos = [(v.values["algorithm.name"], v.values["workload.batch_size"], v.values["fleet[0].count"],
               v.values["fleet[1].count"]) for v in variants[::2]]
    assert combos[:4] == [("fedavg", 8, 1, 3), ("fedavg", 8, 3, 1), ("fedavg", 8, 2, 2), ("fedavg", 16, 1, 3)]
    assert combos[-1] == ("fedbuff", 16, 2, 2)
    for v in variants:
        s = v.scenario
        assert s["seed"] == v.seed and s["algorithm"]["name"] == v.values["algorithm.name"]
        assert s["workload"]["batch_size"] == v.values["workload.batch_size"]
        assert [g["count"] for g in s["fleet"]] == [v.values["fleet[0].count"], v.values["fleet[1].count"]]
        # relative profile paths of the base are made absolute against the base's folder
        assert s["fleet"][0]["profile"] == str((tmp_path / "profiles" / "fast.yaml").resolve())
        assert s["output"]["report"] is False
    names = [v.name for v in variants]
    assert len(set(names)) == len(names)
    assert names == [v.name for v in expand(load_sweep(path))]  # stable
    assert len({v.fingerprint() for v in variants}) == len(variants)


def test_mapping_values_are_named_by_position_unless_a_zip_partner_names_them(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, {
        "grid": {"network.ethernet": [{"rate_mbps": 8.0}, {"rate_mbps": 80.0}]},
        "zip": {"algorithm.name": ["fedavg", "fedbuff"], "algorithm.aggregation": [{}, {"buffer_k": 2}]},
        "timing_only": True,
    })
    names = [v.name for v in expand(load_sweep(path))]
    assert names == [
        "network.ethernet=1__algorithm.name=fedavg__seed=0", "network.ethernet=1__algorithm.name=fedbuff__seed=0",
        "network.ethernet=2__algorithm.name=fedavg__seed=0", "network.ethernet=2__algorithm.name=fedbuff__seed=0",
    ]


@pytest.mark.parametrize(("section", "key", "values", "field"), [
    ("grid", "algorithm.aggregation.bogus", [1], "grid.algorithm.aggregation.bogus"),
    ("grid", "fleet[0].count", [2, 0], "grid.fleet[0].count"),
    ("grid", "fleet[5].count", [2], "grid.fleet[5].count"),
    ("grid", "workload.batchsize", [8], "grid.workload.batchsize"),
    ("zip", "algorithm.name", ["fedavg", "no-such-preset"], "zip.algorithm.name"),
    ("grid", "fleet[1].profile", ["missing.yaml"], "grid.fleet[1].profile"),
])
def test_a_bad_key_or_value_names_the_sweep_file_and_key(tmp_path: Path, section: str, key: str,
                                                         values: list, field: str) -> None:
    path = write_sweep(tmp_path, {section: {key: values}, "timing_only": True})
    with pytest.raises(InputError) as info:
        run_sweep(path, out=tmp_path / "out")
    assert info.value.field == field
    assert info.value.file == str(path)
    assert not (tmp_path / "out").exists()  # nothing ran


def test_shape_errors_of_the_sweep_file(tmp_path: Path) -> None:
    cases = [
        ({"zip": {"fleet[0].count": [1, 2], "fleet[1].count": [1]}}, "zip"),
        ({"grid": {"seed": [1, 2]}}, "grid.seed"),
        ({"grid": {"algorithm.name": []}}, "grid.algorithm.name"),
        ({"grid": {"algorithm.name": ["fedavg"]}, "zip": {"algorithm.name": ["fedbuff"]}}, "zip.algorithm.name"),
        ({"grids": {}}, "grids"),
    ]
    for sweep, field in cases:
        path = write_sweep(tmp_path, sweep)
        with pytest.raises(InputError) as info:
            load_sweep(path)
        assert info.value.field == field, sweep
        assert info.value.file == str(path)


def test_an_error_in_the_base_names_the_base_file(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, {"grid": {"algorithm.name": ["fedavg"]}})
    base = yaml.safe_load((tmp_path / "base.yaml").read_text())
    base["stop"]["sim_time_s"] = -1
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    with pytest.raises(InputError) as info:
        expand(load_sweep(path))
    assert info.value.file == str(tmp_path / "base.yaml") and info.value.field == "stop.sim_time_s"



def test_a_missing_or_non_mapping_base_names_the_field_in_sweep_and_plan_files(tmp_path: Path) -> None:
    """Sweep and plan files read their ``base:`` with one loader, so both report it the same way."""
    from simulator.plan.spec import load_plan

    (tmp_path / "list.yaml").write_text("- not\n- a mapping\n")
    sweep = {"grid": {"algorithm.name": ["fedavg"]}}
    plan = {"catalogue": [{"profile": "jetson-nano-4gb", "unit_price": 129, "link": "ethernet", "max_count": 2}],
            "goal": {"versions": 5, "deadline_s": 600}, "minimise": "price"}
    for name, body, load in (("s.yaml", sweep, load_sweep), ("p.yaml", plan, load_plan)):
        path = tmp_path / name
        path.write_text(yaml.safe_dump({**body, "base": "missing.yaml"}))
        with pytest.raises(InputError) as info:
            load(path)
        assert (info.value.file, info.value.field, info.value.value) == (str(path), "base", "missing.yaml")
        assert "not found" in info.value.problem and name in (info.value.accepted or "")
        path.write_text(yaml.safe_dump({**body, "base": "list.yaml"}))
        with pytest.raises(InputError) as info:
            load(path)
        assert info.value.file == str(tmp_path / "list.yaml") and "mapping" in info.value.problem
        path.write_text(yaml.safe_dump({**body, "base": {"name": "inline"}}))
        loaded = load(path)
        assert loaded.base == {"name": "inline"} and loaded.base_file is None and loaded.base_dir == tmp_path
        assert loaded.name == path.stem and loaded.file_dir == tmp_path.resolve()


@pytest.mark.slow
def test_shipped_sweeps_expand_to_valid_scenarios() -> None:
    policies = expand(load_sweep(ROOT / "scenarios" / "sweeps" / "straggler_policies.yaml"))
    presets = ["co-s2p", "fedavg", "heterofl", "fedrolex", "depthfl", "fedasync", "fedbuff", "timelyfl",
               "unstructured"]
    assert [v.values["algorithm.name"] for v in policies[::3]] == presets
    assert len(policies) == 27 and {v.seed for v in policies} == {0, 1, 2}
    assert all(sum(g["count"] for g in v.scenario["fleet"]) == 16 for v in policies)
    capacity = expand(load_sweep(ROOT / "scenarios" / "sweeps" / "capacity_plan.yaml"))
    assert len({tuple(g["count"] for g in v.scenario["fleet"]) for v in capacity}) > 3
    assert all(v.scenario["stop"].get("target_accuracy") for v in capacity)


def test_a_preset_changed_since_a_variant_ran_makes_it_unfinished(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The resume fingerprint is of the scenario resolved as the run records it: the same sweep file
    under a fleetsim whose preset changed (here co-s2p's staleness mode, as it did once) is not the
    same computation, and `is_finished` says so although the summary is there."""
    from simulator.config.algorithm import PRESETS
    from simulator.sweep.runner import is_finished

    path = write_sweep(tmp_path, {"grid": {"algorithm.name": ["co-s2p", "fedavg"]}, "timing_only": True})
    before = expand(load_sweep(path))
    out = tmp_path / "out"
    manifest = {"variants": {v.name: {"fingerprint": v.fingerprint()} for v in before}}
    for v in before:
        (out / v.name).mkdir(parents=True)
        (out / v.name / "summary.json").write_text("{}")
    assert all(is_finished(out, v, manifest) for v in expand(load_sweep(path)))   # nothing changed
    aggregation = dict(PRESETS["co-s2p"]["aggregation"], staleness_mode="absolute")
    monkeypatch.setitem(PRESETS["co-s2p"], "aggregation", aggregation)
    after = {v.values["algorithm.name"]: is_finished(out, v, manifest) for v in expand(load_sweep(path))}
    assert after == {"co-s2p": False, "fedavg": True}
