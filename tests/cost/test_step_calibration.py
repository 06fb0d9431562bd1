"""Measured step times apply only at the point they were measured (issue 13, point 4): model, width,
depth, batch, input shape, dtype and exits. Elsewhere the cost model is used, and the run's
summary.json and the CLI summary say which and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import simulator
from simulator.config.profiles import StepPoint, load_profile
from simulator.errors import InputError

STEP_S = 0.123


def _profile(folder: Path, entries: list[dict[str, Any]], name: str = "host", precision: str = "fp32") -> Path:
    data = {
        "name": name,
        "compute": {"peak_fp32_gflops": 100.0, "peak_fp16_gflops": 200.0, "training_efficiency": 0.5,
                    "step_overhead_s": 0.0, "precision": precision},
        "memory": {"total_gb": 8.0, "usable_gb": 6.0, "bandwidth_gbps": 100.0},
        "power_modes": {"max": {"watts": 10.0, "clock_scale": 1.0}},
        "default_power_mode": "max",
        "idle_w": 2.0,
        "measured_step_times": entries,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _entry(**kw: Any) -> dict[str, Any]:
    base = {"model": "resnet-resnet18", "width_ratio": 1.0, "batch_size": 32, "input_shape": [3, 32, 32],
            "exits": "final", "step_s": STEP_S}
    return {**base, **kw}


def _scenario(tmp_path: Path, profile: Path, plan_shape: list[int], **algorithm: Any) -> dict[str, Any]:
    return {
        "name": "calib", "seed": 0,
        "fleet": [{"profile": str(profile), "count": 2}],
        "network": {"server": {"downlink_mbps": 1000, "uplink_mbps": 1000},
                    "ethernet": {"rate_mbps": 100.0, "latency": {"mean_ms": 0.0}}},
        "workload": {"model": {"name": "resnet", "preset": "resnet18"}, "plan_input_shape": plan_shape,
                     "dataset": {"name": "digits", "image_size": 8, "channels": 3}, "samples_per_client": 64,
                     "batch_size": 32, "local_epochs": 1},
        "algorithm": {"name": "fedavg", **algorithm},
        "evaluation": {"every_versions": None},
        "stop": {"max_versions": 2, "sim_time_s": 1e6},
        "output": {"folder": str(tmp_path / "runs"), "report": False},
    }


@pytest.mark.slow
def test_a_32px_calibration_is_used_at_32px_and_not_at_224px(tmp_path: Path) -> None:
    profile = _profile(tmp_path, [_entry()])
    at32 = simulator.run(_scenario(tmp_path, profile, [3, 32, 32]), timing_only=True, out=tmp_path / "r32")
    plan = at32.summary["submodels_by_profile"]["host"]
    assert plan["step_time_s"] == STEP_S and plan["step_time_source"] == "measured"
    compute = at32.events[at32.events.phase == "compute"]
    assert (compute.end_s - compute.start_s).to_numpy() == pytest.approx(64 // 32 * STEP_S, rel=1e-12)

    at224 = simulator.run(_scenario(tmp_path, profile, [3, 224, 224]), timing_only=True, out=tmp_path / "r224")
    plan = at224.summary["submodels_by_profile"]["host"]
    assert plan["step_time_source"] == "cost model" and plan["step_time_s"] != STEP_S
    assert at224.summary["step_times"] == {
        "by_profile": {"host": "cost model"},
        "notes": ["no calibrated point for resnet-resnet18 @3×224×224 batch 32, final exit only in host "
                  "(it has resnet-resnet18 @3×32×32, batch 32)"],
    }


@pytest.mark.parametrize("change, why", [
    ({"batch_size": 16}, "batch"),
    ({"width_ratio": 0.5}, "width"),
    ({"depth": 4}, "depth"),
    ({"dtype": "fp16"}, "dtype"),
    ({"exits": "all"}, "exits: FedAvg trains the final exit only"),
    ({"model": "resnet-resnet18-cifar"}, "model"),
])
def test_every_key_of_the_point_must_match(tmp_path: Path, change: dict[str, Any], why: str) -> None:
    profile = _profile(tmp_path, [_entry(**change)])
    run = simulator.run(_scenario(tmp_path, profile, [3, 32, 32]), timing_only=True, out=tmp_path / "r")
    assert run.summary["submodels_by_profile"]["host"]["step_time_source"] == "cost model", why


def test_the_profile_precision_is_the_dtype_of_the_point(tmp_path: Path) -> None:
    profile = _profile(tmp_path, [_entry(dtype="fp16")], precision="fp16")
    run = simulator.run(_scenario(tmp_path, profile, [3, 32, 32]), timing_only=True, out=tmp_path / "r")
    assert run.summary["submodels_by_profile"]["host"]["step_time_s"] == STEP_S


def test_depth_pruning_asks_for_points_with_every_exit_and_the_depth(tmp_path: Path) -> None:
    """DepthFL trains every exit; a measurement taken with all exits at full depth applies to it."""
    profile = _profile(tmp_path, [_entry(exits="all")])
    run = simulator.run(_scenario(tmp_path, profile, [3, 32, 32], name="depthfl"), timing_only=True,
                        out=tmp_path / "r")
    assert run.summary["exits"] == "all"
    plan = run.summary["submodels_by_profile"]["host"]
    assert plan["depth"] == 8 and plan["step_time_s"] == STEP_S


def test_old_profiles_without_input_shape_load_and_say_to_recalibrate(tmp_path: Path) -> None:
    old = _entry()
    old.pop("input_shape")
    old.pop("exits")
    profile = _profile(tmp_path, [old])
    loaded = load_profile(str(profile))
    assert loaded.lookup_measured_step_s(StepPoint("resnet-resnet18", 1.0, None, 32, (3, 32, 32))) is None
    run = simulator.run(_scenario(tmp_path, profile, [3, 32, 32]), timing_only=True, out=tmp_path / "r")
    (note,) = run.summary["step_times"]["notes"]
    assert note.endswith("1 entry without input_shape (older fleetsim calibrate) not used: re-run fleetsim calibrate")


def test_a_bad_input_shape_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_profile(str(_profile(tmp_path, [_entry(input_shape=[3, 0, 32])])))
    assert err.value.field == "measured_step_times[0].input_shape"
    with pytest.raises(InputError):  # two entries at the same point
        load_profile(str(_profile(tmp_path, [_entry(), _entry(step_s=1.0)])))
    load_profile(str(_profile(tmp_path, [_entry(), _entry(input_shape=[3, 64, 64])])))  # different points


@pytest.mark.slow
def test_the_cli_summary_says_where_step_times_came_from(tmp_path: Path) -> None:
    profile = _profile(tmp_path, [_entry()])
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_scenario(tmp_path, profile, [3, 224, 224])))
    out = subprocess.run([sys.executable, "-m", "simulator.cli", "run", str(path), "--timing-only", "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, check=True, cwd=tmp_path)
    text = " ".join(out.stdout.replace("│", " ").split())
    assert ("step times cost model (no calibrated point for resnet-resnet18 @3×224×224 batch 32, final exit only "
            "in host (it has resnet-resnet18 @3×32×32, batch 32))") in text
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["step_times"]["by_profile"] == {"host": "cost model"}


def test_summary_line_variants():
    from simulator.engine.step_times import summary_line

    none = {"by_profile": {"a": "cost model", "b": "cost model"},
            "notes": ["a has no measured step times", "b has no measured step times"]}
    assert summary_line(none) == "cost model (no profile in the fleet has measured step times)"
    some = {"by_profile": {"a": "measured", "b": "cost model"}, "notes": ["b has no measured step times"]}
    assert summary_line(some) == "measured for a, cost model for the profiles without measured step times"
    miss = {"by_profile": {"a": "measured", "b": "cost model"}, "notes": ["no calibrated point for x in b"]}
    assert summary_line(miss) == "measured for a, cost model elsewhere (no calibrated point for x in b)"
