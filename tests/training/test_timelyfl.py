"""TimelyFL trains a partial set of layers as published (issue 15): a Nano that cannot train ViT-B
whole trains its output-side blocks, and its planned memory is the frozen-prefix memory."""

from __future__ import annotations

from pathlib import Path

import simulator
from simulator.cost import model as costmod
from simulator.config.algorithm import resolve_algorithm
from simulator.server.registry import policy_params
from simulator.config.loading import read_yaml
from simulator.config.profiles import load_profile
from simulator.config.scenario import AlgorithmSpec
from simulator.config.workload import ModelSpec
from simulator.engine.planning import Planner
from simulator.engine.world import device_budget

ROOT = Path(__file__).resolve().parents[2]
VIT_B = ModelSpec(name="vit", preset="vit-b")
SHAPE = (3, 224, 224)
OVERHEAD = int(0.3e9)


def _planner(preset: str) -> Planner:
    algorithm = resolve_algorithm(AlgorithmSpec(name=preset), policy_params)
    return Planner(VIT_B, 10, SHAPE, 12, 32, "momentum", OVERHEAD, algorithm.pruning)


def _nano():
    profile = load_profile("jetson-nano-4gb")
    return device_budget(profile, profile.default_power_mode)


def test_a_nano_that_ooms_under_full_training_trains_its_last_blocks_under_timelyfl() -> None:
    nano = _nano()
    full = _planner("fedavg").choose(nano)
    assert not full.fits_memory and full.peak_memory_bytes > nano.usable_memory_bytes
    partial = _planner("timelyfl").choose(nano)
    assert partial.fits_memory and partial.depth == 12 and partial.width_ratio == 1.0
    assert 0 < partial.trainable_from < 12  # the whole model held, only the output side trained
    # the planned peak is the frozen-prefix memory: all weights, but gradients, optimizer state and
    # saved activations of the trained blocks only
    cost = costmod.model_cost(VIT_B, 10, SHAPE, 1.0, 12, partial.trainable_from)
    assert partial.peak_memory_bytes == costmod.training_memory_bytes(cost, 32, "momentum", OVERHEAD)
    trained = costmod.model_cost(VIT_B, 10, SHAPE, 1.0, 12, 0)
    assert cost.param_bytes == trained.param_bytes and cost.trainable_params < trained.trainable_params
    assert cost.activation_bytes_per_sample == sum(b.activation_bytes_per_sample for b in trained.blocks[partial.trainable_from:])
    assert partial.upload_bytes == 4 * cost.trainable_params
    # it trains as many blocks as fit: one more would not
    one_more = _planner("timelyfl").evaluate(nano, 1.0, 12, partial.trainable_from - 1)
    assert not one_more.fits_memory


def test_timelyfl_on_the_quickstart_fleet_has_no_oom_and_nanos_train_partially(tmp_path: Path) -> None:
    scenario = read_yaml(ROOT / "scenarios" / "quickstart.yaml")
    scenario["algorithm"] = {"name": "timelyfl", "aggregation": {"k": 8, "deadline_s": 120}}
    scenario["stop"] = {"sim_time_s": 1500}
    run = simulator.run(scenario, out=tmp_path / "timelyfl", timing_only=True, report=False)
    assert run.summary["ooms"] == 0
    up = run.updates
    nano = up[up.profile == "jetson-nano-4gb"]
    assert (nano.outcome == "accepted").any()
    full_bytes = 4 * run.summary["submodels_by_profile"]["jetson-nano-4gb"]["params"]
    assert (nano.depth == 12).all() and (nano.download_bytes == full_bytes).all()
    assert (nano.upload_bytes < full_bytes / 4).all()  # a few output-side blocks go back
    computing = run.events[(run.events.phase == "compute") & (run.events.profile == "jetson-nano-4gb")]
    assert len(computing) > 0
    # the same fleet under FedBuff's full training leaves every Nano out of memory; fedbuff-fit, the
    # named baseline with memory-fitted (HeteroFL) submodels, trains them
    scenario["algorithm"] = {"name": "fedbuff"}
    base = simulator.run(scenario, out=tmp_path / "fedbuff", timing_only=True, report=False)
    assert set(base.summary["oom_devices"]) == {f"jetson-nano-4gb#{i}" for i in range(4)}
    scenario["algorithm"] = {"name": "fedbuff-fit"}
    fitted = simulator.run(scenario, out=tmp_path / "fedbuff-fit", timing_only=True, report=False)
    assert fitted.summary["ooms"] == 0
    nanos = fitted.updates[fitted.updates.profile == "jetson-nano-4gb"]
    assert (nanos.width_ratio < 1).all() and (nanos.outcome == "accepted").any()
    assert set(fitted.versions.trigger) == {"buffer"}
