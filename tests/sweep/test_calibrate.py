"""Calibration: the fit recovers known figures, and a calibrated profile's measured step times are
what the planner and the simulated compute phases use."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import simulator
from simulator import cost as costmod
from simulator.calibrate import calibrate, fit_cost_model, meminfo_gb, parse_model
from simulator.config.profiles import load_profile
from simulator.config.workload import ModelSpec
from simulator.errors import InputError
from sweep_helpers import base_scenario


def test_model_labels_parse() -> None:
    assert parse_model("cnn-tiny") == ModelSpec(name="cnn", preset="tiny")
    assert parse_model("text-transformer-tiny") == ModelSpec(name="text-transformer", preset="tiny")
    assert parse_model("vit-vit-b") == ModelSpec(name="vit", preset="vit-b")
    assert parse_model("resnet") == ModelSpec(name="resnet")
    assert parse_model({"name": "mlp", "width": 12}) == ModelSpec(name="mlp", width=12)
    for bad in ("cnn-huge", "lstm"):
        with pytest.raises(InputError):
            parse_model(bad)


def test_fit_recovers_efficiency_and_overhead_from_exact_roofline_times() -> None:
    peak = 50e9
    eff, overhead = 0.2, 0.003
    flops = [1e6, 5e7, 2e8, 1e9, 4e9]
    parts = [(f, 1e-5, max(f / (peak * eff), 1e-5) + overhead) for f in flops]
    fit_eff, fit_overhead = fit_cost_model(parts, peak)
    assert fit_eff == pytest.approx(eff, rel=1e-3)
    assert fit_overhead == pytest.approx(overhead, rel=1e-2)


def test_meminfo_reads_total_and_available(tmp_path: Path) -> None:
    path = tmp_path / "meminfo"
    path.write_text("MemTotal:        8000000 kB\nMemFree:  1000000 kB\nMemAvailable:    6000000 kB\n")
    assert meminfo_gb(str(path)) == pytest.approx((8.192, 6.144))


def test_calibrated_profile_loads_and_its_step_times_drive_the_simulation(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    out = tmp_path / "host.yaml"
    data = calibrate(["mlp-tiny"], [1.0, 0.5], [16], input_shape=(1, 8, 8), num_classes=10, repeats=3, warmup=1,
                     name="host", out=out)
    assert torch.get_num_threads() == threads  # restored
    profile = load_profile(str(out))
    assert profile.name == "host" and 0 < profile.compute.training_efficiency <= 1
    entries = {(e["model"], e["width_ratio"], e["batch_size"]): e["step_s"] for e in data["measured_step_times"]}
    assert set(entries) == {("mlp-tiny", 1.0, 16), ("mlp-tiny", 0.5, 16)}
    measured = entries[("mlp-tiny", 1.0, 16)]
    assert profile.lookup_measured_step_s("mlp-tiny", 1.0, 16) == measured
    assert 0 <= profile.compute.step_overhead_s <= min(entries.values())

    # a workload that matches (mlp-tiny, width 1, batch 16) computes for exactly steps × measured
    scenario = base_scenario([str(out), str(out)])
    scenario["fleet"][1].pop("availability")
    scenario["stop"] = {"max_versions": 2, "sim_time_s": 1e6}
    scenario["output"]["folder"] = str(tmp_path / "runs")
    run = simulator.run(scenario, timing_only=True)
    plan = run.summary["submodels_by_profile"]["host"]
    assert plan["step_time_s"] == measured
    compute = run.events[run.events.phase == "compute"]
    assert (compute.end_s - compute.start_s).to_numpy() == pytest.approx(64 // 16 * measured, rel=1e-9)

    # batch 32 was not measured: the roofline with the fitted figures is used instead
    scenario["workload"]["batch_size"] = 32
    run = simulator.run(scenario, timing_only=True, out=tmp_path / "runs" / "b32")
    cost = costmod.model_cost(ModelSpec(name="mlp", preset="tiny"), 10, (1, 8, 8))
    expected = costmod.step_time_s(cost, 32, profile.effective_flops(), profile.memory_bandwidth_bytes_per_s,
                                   profile.compute.step_overhead_s, "momentum")
    assert math.isclose(run.summary["submodels_by_profile"]["host"]["step_time_s"], expected, rel_tol=1e-12)


def test_bad_calibration_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        calibrate([], out=tmp_path / "x.yaml")
    with pytest.raises(InputError):
        calibrate(["mlp-tiny"], [1.5], out=tmp_path / "x.yaml")
    with pytest.raises(InputError):
        calibrate(["mlp-tiny"], name="bad name", out=tmp_path / "x.yaml")
    assert not (tmp_path / "x.yaml").exists()
