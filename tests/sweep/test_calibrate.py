"""Calibration: the fit recovers known figures, and a calibrated profile's measured step times are
what the planner and the simulated compute phases use."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import simulator
from simulator.cost import model as costmod
from simulator.cost.calibrate import CostFit, calibrate, fit_cost_model, meminfo_gb, parse_model, predict_step_s
from simulator.config.profiles import load_profile
from simulator.config.workload import ModelSpec
from simulator.cost.model import StepWork, step_time_s
from simulator.config.profiles import StepPoint
from simulator.errors import InputError
from simulator.config.workload import model_label
from tests.helpers.sweep import base_scenario


def test_model_labels_parse() -> None:
    assert parse_model("cnn-tiny") == ModelSpec(name="cnn", preset="tiny")
    assert parse_model("text-transformer-tiny") == ModelSpec(name="text-transformer", preset="tiny")
    assert parse_model("vit-vit-b") == ModelSpec(name="vit", preset="vit-b")
    assert parse_model("resnet") == ModelSpec(name="resnet")
    assert parse_model({"name": "mlp", "width": 12}) == ModelSpec(name="mlp", width=12)
    assert parse_model("resnet-resnet18-cifar") == ModelSpec(name="resnet", preset="resnet18-cifar")
    assert parse_model("mobilenet-mobilenet-v2") == ModelSpec(name="mobilenet", preset="mobilenet-v2")
    for bad in ("cnn-huge", "lstm", "resnet[stem=cifar", "resnet[stem]", "resnet[stem=vgg]"):
        with pytest.raises(InputError):
            parse_model(bad)


@pytest.mark.parametrize("spec", [
    ModelSpec(name="resnet", preset="resnet18", stem="cifar"),
    ModelSpec(name="resnet", width=32, blocks=[1, 2]),
    ModelSpec(name="mobilenet", preset="mobilenet-v2", width_mult=0.75),
    ModelSpec(name="cnn", preset="tiny", prune_stream=False),
    ModelSpec(name="vit", preset="small", mlp_ratio=1.5),
])
def test_labels_name_overrides_and_parse_back(spec: ModelSpec) -> None:
    """A label tells apart every model that steps differently (a measured time is looked up by it),
    and `fleetsim calibrate --model LABEL` builds that very model."""
    label = model_label(spec)
    assert label != model_label(ModelSpec(name=spec.name, preset=spec.preset))
    assert parse_model(label).resolved() == spec.resolved()


PEAK, BANDWIDTH = 50e9, 20e9


def _works(n: int = 14, seed: int = 0) -> list[StepWork]:
    """Varied synthetic workloads: GEMMs at widths that are and are not multiples of common tiles."""
    import random

    rng = random.Random(seed)
    return [StepWork(tuple((rng.choice([3, 10, 12, 24, 40, 64, 100, 256]), rng.uniform(1e7, 5e9)) for _ in range(3)),
                     rng.uniform(1e5, 5e7), rng.uniform(1e6, 2e9), rng.randint(10, 500)) for _ in range(n)]


@pytest.mark.parametrize("truth", [
    CostFit(training_efficiency=0.2, elementwise_efficiency=0.35, op_overhead_s=25e-6, step_overhead_s=3e-3,
            gemm_tile_width=16),
    CostFit(training_efficiency=0.9, elementwise_efficiency=1.0, op_overhead_s=0.0, step_overhead_s=1e-4,
            gemm_tile_width=1),
    CostFit(training_efficiency=1.0, elementwise_efficiency=0.05, op_overhead_s=1e-4, step_overhead_s=0.0,
            gemm_tile_width=64),
])
def test_fit_recovers_every_figure_from_times_the_model_generates(truth: CostFit) -> None:
    works = _works()
    points = [(w, predict_step_s(w, PEAK, BANDWIDTH, truth)) for w in works]
    fit = fit_cost_model(points, PEAK, BANDWIDTH)
    assert fit.gemm_tile_width == truth.gemm_tile_width
    assert fit.training_efficiency == pytest.approx(truth.training_efficiency, rel=1e-9)
    assert fit.elementwise_efficiency == pytest.approx(truth.elementwise_efficiency, rel=1e-9)
    assert fit.op_overhead_s == pytest.approx(truth.op_overhead_s, rel=1e-9, abs=1e-15)
    assert fit.step_overhead_s == pytest.approx(truth.step_overhead_s, rel=1e-9, abs=1e-15)


def test_predict_is_the_simulators_step_time() -> None:
    """What calibration fits is exactly what a simulation computes from the profile's figures."""
    cost = costmod.model_cost(ModelSpec(name="resnet", preset="tiny"), 10, (1, 16, 16), 0.5)
    fit = CostFit(0.4, 0.3, 2e-5, 1e-3, 16)
    work = costmod.step_work(cost, 32, "momentum")
    assert predict_step_s(work, PEAK, BANDWIDTH, fit) == pytest.approx(step_time_s(
        cost, 32, PEAK * 0.4, BANDWIDTH, 1e-3, "momentum", elementwise_efficiency=0.3, op_overhead_s=2e-5,
        gemm_tile_width=16), rel=1e-12)


def test_the_fit_is_joint_not_anchored_on_one_point() -> None:
    """Noise on the smallest workload moves the overhead a little, not by the whole error (the old fit
    took the overhead from that one measurement)."""
    works = _works(20, seed=1)
    truth = CostFit(0.5, 0.4, 2e-5, 2e-3, 8)
    times = [predict_step_s(w, PEAK, BANDWIDTH, truth) for w in works]
    smallest = min(range(len(works)), key=lambda i: works[i].gemm_flops)
    times[smallest] *= 1.5
    fit = fit_cost_model(list(zip(works, times)), PEAK, BANDWIDTH)
    assert abs(fit.step_overhead_s - truth.step_overhead_s) < 0.5 * times[smallest] / 3


def test_figures_the_points_cannot_separate_keep_their_neutral_value() -> None:
    """One model at one width, several batches: GEMM and elementwise work grow together and every
    point dispatches as many ops. The fit still reproduces the times exactly, but gives the shared
    time to the first figure of each pair (GEMM efficiency; per-op overhead, which scales with the
    depth of a submodel) and leaves the other neutral (elementwise efficiency 1, step overhead 0).
    Times faster than peak and bandwidth allow give efficiencies of exactly 1, never above."""
    works = [StepWork(((64, 1e9 * b),), 1e6, 1e8 * b, 120) for b in (1, 2, 4, 8)]
    truth = CostFit(0.5, 0.5, 0.0, 4e-3, 1)
    points = [(w, predict_step_s(w, PEAK, BANDWIDTH, truth)) for w in works]
    fit = fit_cost_model(points, PEAK, BANDWIDTH)
    assert fit.elementwise_efficiency == 1.0 and fit.step_overhead_s == 0.0
    assert fit.op_overhead_s == pytest.approx(4e-3 / 120, rel=1e-9)
    for w, t in points:
        assert predict_step_s(w, PEAK, BANDWIDTH, fit) == pytest.approx(t, rel=1e-9)
    too_fast = [(w, 0.5 * (w.gemm_flops / PEAK + (w.param_traffic_bytes + w.elementwise_bytes) / BANDWIDTH))
                for w in _works()]
    fast = fit_cost_model(too_fast, PEAK, BANDWIDTH)
    assert fast.training_efficiency == 1.0 and fast.elementwise_efficiency == 1.0
    with pytest.raises(ValueError):
        fit_cost_model([], PEAK, BANDWIDTH)
    with pytest.raises(ValueError):
        fit_cost_model([(works[0], 0.0)], PEAK, BANDWIDTH)


def test_meminfo_reads_total_and_available(tmp_path: Path) -> None:
    path = tmp_path / "meminfo"
    path.write_text("MemTotal:        8000000 kB\nMemFree:  1000000 kB\nMemAvailable:    6000000 kB\n")
    assert meminfo_gb(str(path)) == pytest.approx((8.192, 6.144))


@pytest.mark.slow
def test_calibrated_profile_loads_and_its_step_times_drive_the_simulation(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    out = tmp_path / "host.yaml"
    data = calibrate(["mlp-tiny"], [1.0, 0.5], [16], input_shape=(1, 8, 8), num_classes=10, repeats=3, warmup=1,
                     name="host", out=out, exits=("all", "final"))
    assert torch.get_num_threads() == threads  # restored
    profile = load_profile(str(out))
    assert profile.name == "host" and 0 < profile.compute.training_efficiency <= 1
    entries = {(e["model"], e["width_ratio"], e["batch_size"], e["exits"]): e["step_s"]
               for e in data["measured_step_times"]}
    assert set(entries) == {("mlp-tiny", w, 16, e) for w in (1.0, 0.5) for e in ("all", "final")}
    assert all(e["input_shape"] == [1, 8, 8] and e["dtype"] == "fp32" for e in data["measured_step_times"])
    measured = entries[("mlp-tiny", 1.0, 16, "final")]
    assert profile.lookup_measured_step_s(StepPoint("mlp-tiny", 1.0, None, 16, (1, 8, 8), "fp32", "final")) == measured
    assert profile.lookup_measured_step_s(StepPoint("mlp-tiny", 1.0, None, 16, (1, 16, 16), "fp32", "final")) is None
    assert profile.lookup_measured_step_s(StepPoint("mlp-tiny", 1.0, 1, 16, (1, 8, 8), "fp32", "final")) is None
    assert profile.lookup_measured_step_s(StepPoint("mlp-tiny", 1.0, None, 16, (1, 8, 8), "fp16", "final")) is None
    # Least squares leaves residuals of both signs, so some measured step is at least the fitted fixed
    # overhead: it is at most the slowest step. Not necessarily the fastest: on a noisy host the four
    # tiny steps can come out in the wrong order (width 0.5 slower than 1.0), and the best fit then puts
    # the shared time in the overhead, above the fastest of them (seen: 0.848 ms against 0.778 ms).
    assert 0 <= profile.compute.step_overhead_s <= max(entries.values())

    # a FedAvg workload (final exit only) that matches (mlp-tiny, width 1, batch 16, 1×8×8) computes for
    # exactly steps × measured
    scenario = base_scenario([str(out), str(out)])
    scenario["fleet"][1].pop("availability")
    scenario["stop"] = {"max_versions": 2, "sim_time_s": 1e6}
    scenario["output"]["folder"] = str(tmp_path / "runs")
    run = simulator.run(scenario, timing_only=True)
    plan = run.summary["submodels_by_profile"]["host"]
    assert plan["step_time_s"] == measured and plan["step_time_source"] == "measured"
    assert run.summary["exits"] == "final"
    assert run.summary["step_times"] == {"by_profile": {"host": "measured"}, "notes": []}
    compute = run.events[run.events.phase == "compute"]
    assert (compute.end_s - compute.start_s).to_numpy() == pytest.approx(64 // 16 * measured, rel=1e-9)

    assert profile.compute.gemm_tile_width >= 1 and 0 < profile.compute.elementwise_efficiency <= 1
    assert profile.compute.op_overhead_s >= 0


@pytest.mark.slow
def test_an_unmeasured_workload_uses_the_step_time_model_with_the_profiles_figures(tmp_path: Path) -> None:
    """Batch 32 was not measured: the planner takes the cost model with every fitted figure."""
    out = tmp_path / "host.yaml"
    calibrate(["mlp-tiny"], [1.0, 0.5], [16], input_shape=(1, 8, 8), num_classes=10, repeats=3, warmup=1,
              name="host", out=out)
    profile = load_profile(str(out))
    scenario = base_scenario([str(out), str(out)])
    scenario["fleet"][1].pop("availability")
    scenario["stop"] = {"max_versions": 2, "sim_time_s": 1e6}
    scenario["output"]["folder"] = str(tmp_path / "runs")
    scenario["workload"]["batch_size"] = 32
    run = simulator.run(scenario, timing_only=True, out=tmp_path / "runs" / "b32")
    cost = costmod.model_cost(ModelSpec(name="mlp", preset="tiny"), 10, (1, 8, 8), exits="final")
    pc = profile.compute
    expected = costmod.step_time_s(cost, 32, profile.effective_flops(), profile.memory_bandwidth_bytes_per_s,
                                   pc.step_overhead_s, "momentum", elementwise_efficiency=pc.elementwise_efficiency,
                                   op_overhead_s=pc.op_overhead_s, gemm_tile_width=pc.gemm_tile_width)
    assert math.isclose(run.summary["submodels_by_profile"]["host"]["step_time_s"], expected, rel_tol=1e-12)
    assert run.summary["step_times"]["by_profile"] == {"host": "cost model"}
    assert run.summary["step_times"]["notes"] == [
        "no calibrated point for mlp-tiny @1×8×8 batch 32, final exit only in host "
        "(it has mlp-tiny @1×8×8, batch 16, all exits)"]  # calibrated with the default exits="all"


def test_bad_calibration_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        calibrate([], out=tmp_path / "x.yaml")
    with pytest.raises(InputError):
        calibrate(["mlp-tiny"], [1.5], out=tmp_path / "x.yaml")
    with pytest.raises(InputError):
        calibrate(["mlp-tiny"], name="bad name", out=tmp_path / "x.yaml")
    with pytest.raises(InputError, match="clock"):
        calibrate(["mlp-tiny"], clock="sundial", out=tmp_path / "x.yaml")
    with pytest.raises(InputError, match="exits"):
        calibrate(["mlp-tiny"], exits=("some",), out=tmp_path / "x.yaml")
    assert not (tmp_path / "x.yaml").exists()
