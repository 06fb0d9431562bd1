"""Device profiles: the built-in YAMLs, validation with field paths, overrides, lookups, the table."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.config.profiles import (
    DeviceProfile,
    StepPoint,
    apply_overrides,
    builtin_profile_names,
    builtin_profiles_dir,
    list_builtin_profiles,
    load_profile,
)
from simulator.config.loading import validate_data
from simulator.errors import InputError

REQUIRED = [
    "jetson-nano-4gb", "jetson-tx2", "jetson-xavier-nx", "jetson-agx-xavier", "jetson-orin-nano-4gb",
    "jetson-orin-nano-8gb", "jetson-orin-nx-16gb", "jetson-agx-orin-64gb",
]


def profile_data(**changes: Any) -> dict[str, Any]:
    """A valid profile as plain data: 100 GFLOP/s FP32 at efficiency 0.5, two modes."""
    data: dict[str, Any] = {
        "name": "test-board",
        "display_name": "Test board",
        "compute": {"peak_fp32_gflops": 100.0, "peak_fp16_gflops": 200.0, "training_efficiency": 0.5,
                    "step_overhead_s": 0.01},
        "memory": {"total_gb": 8.0, "usable_gb": 6.0, "bandwidth_gbps": 50.0},
        "power_modes": {"max": {"watts": 20.0, "clock_scale": 1.0},
                        "eco": {"watts": 10.0, "clock_scale": 0.25, "bandwidth_scale": 0.5}},
        "default_power_mode": "max",
        "idle_w": 2.0,
        "network": {"interfaces": [{"kind": "ethernet", "standard": "1000BASE-T", "max_mbps": 1000}]},
    }
    data.update(changes)
    return data


def make(**changes: Any) -> DeviceProfile:
    return validate_data(profile_data(**changes), DeviceProfile)


def rejected(data: dict[str, Any]) -> InputError:
    with pytest.raises(InputError) as info:
        validate_data(data, DeviceProfile, file="board.yaml")
    return info.value


# ------------------------------------------------------------------ built-in profiles


def test_every_builtin_profile_loads_and_is_named_after_its_file() -> None:
    names = builtin_profile_names()
    assert set(REQUIRED) <= set(names)
    for name in names:
        profile = load_profile(name)
        assert profile.name == name
        assert profile.default_power_mode in profile.power_modes
        # fitted 0.553 on the Nano (docs/jetson_validation.md); FP32 conv-net GEMMs reach 0.2-0.7 of peak
        assert 0.2 <= profile.compute.training_efficiency <= 0.7
        assert 0.2 <= profile.compute.elementwise_efficiency <= 0.8
        assert 5e-6 <= profile.compute.op_overhead_s <= 1e-4
        assert profile.compute.gemm_tile_width in (8, 16, 32, 64, 128)
        assert 0 < profile.memory.usable_gb < profile.memory.total_gb
        assert profile.network.interfaces, name
    assert sorted(p.name for p in list_builtin_profiles()) == names


def test_builtin_files_state_every_step_time_figure() -> None:
    """The Jetson profiles set each step-time figure themselves (with its reasoning), not by default."""
    keys = ("training_efficiency", "gemm_tile_width", "elementwise_efficiency", "op_overhead_s", "step_overhead_s")
    for path in sorted(builtin_profiles_dir().glob("*.yaml")):
        compute = yaml.safe_load(path.read_text())["compute"]
        for key in keys:
            assert isinstance(compute.get(key), (int, float)), f"{path.name}: compute.{key}"


def test_step_time_figures_default_when_left_out() -> None:
    from simulator.config.profiles import DEFAULT_ELEMENTWISE_EFFICIENCY, DEFAULT_GEMM_TILE_WIDTH, DEFAULT_OP_OVERHEAD_S

    compute = make().compute  # the test board states none of them
    assert compute.elementwise_efficiency == DEFAULT_ELEMENTWISE_EFFICIENCY
    assert compute.op_overhead_s == DEFAULT_OP_OVERHEAD_S
    assert compute.gemm_tile_width == DEFAULT_GEMM_TILE_WIDTH
    stated = make(compute={**profile_data()["compute"], "elementwise_efficiency": 0.25, "op_overhead_s": 5e-5,
                           "gemm_tile_width": 16}).compute
    assert (stated.elementwise_efficiency, stated.op_overhead_s, stated.gemm_tile_width) == (0.25, 5e-5, 16)
    err = rejected(profile_data(compute={**profile_data()["compute"], "gemm_tile_width": 2.5}))
    assert err.field == "compute.gemm_tile_width"


def test_builtin_files_cite_a_source_for_every_figure() -> None:
    """Every line of a built-in YAML that sets a number carries a source tag or says it is an assumption."""
    tags = ("[S", "[N", "[d", "[m", "[P", "ASSUMPTION", "ESTIMATE")
    labels = {"name", "display_name", "description", "precision", "default_power_mode"}
    checked = 0
    for path in sorted(builtin_profiles_dir().glob("*.yaml")):
        # figures written by scripts/fit_jetson_profiles.py say "<kind>: see sources"; their source is
        # then the `sources:` entry of that key, which must start with the same kind
        sources = yaml.safe_load(path.read_text()).get("sources", {})
        for number, line in enumerate(path.read_text().split("\nsources:\n")[0].splitlines(), 1):
            code, _, comment = line.partition("#")
            key, sep, value = code.partition(":")
            if not sep or key.strip().lstrip("-{ ") in labels or not any(ch.isdigit() for ch in value):
                continue
            checked += 1
            if comment.strip().endswith(": see sources"):
                kind = comment.strip().split(":")[0]
                cited = [v for k, v in sources.items() if k.split(".")[-1] == key.strip()]
                assert any(v.startswith(kind + ":") for v in cited), f"{path.name}:{number}: no {kind} source"
                continue
            assert any(tag in comment for tag in tags), f"{path.name}:{number} has no source: {line.strip()}"
    assert checked >= 8 * 15


def test_effective_compute_and_usable_memory_follow_the_hardware_generations() -> None:
    p = {name: load_profile(name) for name in REQUIRED}
    order = ["jetson-nano-4gb", "jetson-tx2", "jetson-xavier-nx", "jetson-agx-xavier", "jetson-agx-orin-64gb"]
    flops = [p[n].effective_flops() for n in order]
    assert flops == sorted(flops) and len(set(flops)) == len(flops)
    memory = [p[n].usable_memory_bytes for n in order]
    assert memory == sorted(memory)
    assert memory[0] < memory[1] and memory[2] < memory[3] < memory[4]  # TX2 and Xavier NX both have 8 GB
    assert p["jetson-orin-nano-4gb"].effective_flops() < p["jetson-orin-nano-8gb"].effective_flops()
    assert p["jetson-orin-nano-8gb"].effective_flops() < p["jetson-orin-nx-16gb"].effective_flops()
    assert p["jetson-orin-nx-16gb"].effective_flops() < p["jetson-agx-orin-64gb"].effective_flops()


def test_every_builtin_mode_is_slower_or_equal_and_cheaper_than_the_default() -> None:
    """The default is the fastest mode: no other mode offers more FLOP/s, and none costs more power."""
    for profile in list_builtin_profiles():
        fastest = profile.effective_flops()
        for mode in profile.power_modes:
            assert profile.effective_flops(mode) <= fastest
            assert profile.busy_power_w(mode) <= profile.busy_power_w()
            assert profile.busy_power_w(mode) >= profile.idle_power_w


def test_builtin_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "only-one.yaml").write_text(yaml.safe_dump(profile_data(name="only-one")))
    monkeypatch.setenv("FLEETSIM_PROFILES_DIR", str(tmp_path))
    assert builtin_profiles_dir() == tmp_path
    assert [p.name for p in list_builtin_profiles()] == ["only-one"]


# ------------------------------------------------------------------ derived figures


def test_effective_flops_is_peak_times_efficiency_times_clock_scale() -> None:
    profile = make()
    assert profile.effective_flops() == pytest.approx(100e9 * 0.5)
    assert profile.effective_flops("max") == pytest.approx(100e9 * 0.5)
    assert profile.effective_flops("eco") == pytest.approx(100e9 * 0.5 * 0.25)
    assert profile.effective_flops("eco") / profile.effective_flops("max") == pytest.approx(0.25)
    fp16 = make(compute={**profile_data()["compute"], "precision": "fp16"})
    assert fp16.effective_flops() == pytest.approx(200e9 * 0.5)


def test_unit_conversions_and_power() -> None:
    profile = make()
    assert profile.usable_memory_bytes == 6_000_000_000
    assert isinstance(profile.usable_memory_bytes, int)
    assert profile.memory_bandwidth_bytes_per_s == pytest.approx(50e9)
    assert profile.mode_memory_bandwidth_bytes_per_s("eco") == pytest.approx(25e9)
    assert profile.mode_memory_bandwidth_bytes_per_s() == pytest.approx(50e9)
    assert profile.busy_power_w() == 20.0 and profile.busy_power_w("eco") == 10.0
    assert profile.idle_power_w == 2.0


def test_unknown_power_mode_is_an_input_error_listing_the_modes() -> None:
    with pytest.raises(InputError) as info:
        make().effective_flops("turbo")
    assert info.value.field == "power_mode"
    assert "max" in info.value.message and "eco" in info.value.message


# ------------------------------------------------------------------ validation


def test_usable_above_total_is_rejected_with_the_field_path() -> None:
    err = rejected(profile_data(memory={"total_gb": 4.0, "usable_gb": 5.0, "bandwidth_gbps": 25.6}))
    assert err.field == "memory.usable_gb"
    assert err.value == 5.0
    assert "<= memory.total_gb (4)" in (err.accepted or "")
    assert "board.yaml" in err.message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_rejected(bad: float) -> None:
    data = profile_data()
    data["compute"]["peak_fp32_gflops"] = bad
    err = rejected(data)
    assert err.field == "compute.peak_fp32_gflops"
    assert err.accepted == "a finite number"


@pytest.mark.parametrize(
    ("path", "value", "accepted"),
    [
        (("compute", "peak_fp16_gflops"), -1.0, "a number > 0"),
        (("compute", "training_efficiency"), 0.0, "a number > 0"),
        (("compute", "training_efficiency"), 1.5, "a number <= 1"),
        (("compute", "step_overhead_s"), -0.001, "a number >= 0"),
        (("compute", "op_overhead_s"), -1e-6, "a number >= 0"),
        (("compute", "elementwise_efficiency"), -0.1, "a number > 0"),
        (("compute", "elementwise_efficiency"), 0.0, "a number > 0"),
        (("compute", "elementwise_efficiency"), 1.2, "a number <= 1"),
        (("compute", "gemm_tile_width"), 0, "a number >= 1"),
        (("compute", "gemm_tile_width"), -32, "a number >= 1"),
        (("memory", "bandwidth_gbps"), 0.0, "a number > 0"),
        (("power_modes", "eco", "clock_scale"), 1.2, "a number <= 1"),
        (("power_modes", "eco", "watts"), -3.0, "a number > 0"),
        (("idle_w",), -1.0, "a number >= 0"),
    ],
)
def test_out_of_range_numbers_name_the_field_and_the_accepted_range(
    path: tuple[str, ...], value: float, accepted: str
) -> None:
    data = profile_data()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    err = rejected(data)
    assert err.field == ".".join(path)
    assert err.accepted in (accepted, accepted + ".0")  # pydantic prints float bounds as 0.0


def test_consistency_checks() -> None:
    assert rejected(profile_data(default_power_mode="turbo")).field == "default_power_mode"
    err = rejected(profile_data(idle_w=15.0))  # the eco mode draws 10 W, below idle
    assert err.field == "power_modes.eco.watts"
    assert rejected(profile_data(name="Bad Name!")).field == "name"
    err = rejected(profile_data(memory={"total_gb": 8, "usable_gb": 6, "bandwidth_gbps": 50, "speed": 1}))
    assert err.field == "memory.speed" and "bandwidth_gbps" in (err.accepted or "")
    err = rejected(profile_data(precision="fp32"))
    assert err.field == "precision" and "compute" in (err.accepted or "")
    err = rejected(profile_data(network={"interfaces": [{"kind": "5g", "standard": "x", "max_mbps": 1}]}))
    assert err.field == "network.interfaces[0].kind" and "ethernet" in (err.accepted or "")


# ------------------------------------------------------------------ measured step times


def test_measured_step_time_lookup() -> None:
    shape = [1, 8, 8]
    profile = make(measured_step_times=[
        {"model": "cnn-tiny", "width_ratio": 1.0, "batch_size": 32, "input_shape": shape, "step_s": 0.2},
        {"model": "cnn-tiny", "width_ratio": 0.5, "batch_size": 32, "input_shape": shape, "step_s": 0.08},
        {"model": "cnn-tiny", "width_ratio": 1.0, "batch_size": 32, "input_shape": shape, "step_s": 0.7,
         "power_mode": "eco"},
    ])

    def at(model: str, width: float, batch: int, power_mode: str | None = None) -> float | None:
        return profile.lookup_measured_step_s(StepPoint(model, width, None, batch, (1, 8, 8)), power_mode)

    assert at("cnn-tiny", 1.0, 32) == 0.2
    assert at("cnn-tiny", 0.5, 32) == 0.08
    assert at("cnn-tiny", 0.5 + 1e-9, 32) == 0.08  # float noise from ratios
    assert at("cnn-tiny", 0.25, 32) is None
    assert at("cnn-tiny", 1.0, 64) is None
    assert at("mlp-tiny", 1.0, 32) is None
    # a mode-specific measurement wins in its mode; the generic one serves the others
    assert at("cnn-tiny", 1.0, 32, power_mode="eco") == 0.7
    assert at("cnn-tiny", 0.5, 32, power_mode="eco") == 0.08
    assert make().lookup_measured_step_s(StepPoint("cnn-tiny", 1.0, None, 32, (1, 8, 8))) is None


def test_measured_step_times_are_validated() -> None:
    entry = {"model": "cnn-tiny", "width_ratio": 1.0, "batch_size": 32, "step_s": 0.2}
    assert rejected(profile_data(measured_step_times=[entry, dict(entry)])).field == "measured_step_times[1]"
    err = rejected(profile_data(measured_step_times=[{**entry, "power_mode": "turbo"}]))
    assert err.field == "measured_step_times[0].power_mode"
    assert rejected(profile_data(measured_step_times=[{**entry, "step_s": 0}])).field == "measured_step_times[0].step_s"


# ------------------------------------------------------------------ loading by name or path


def test_unknown_name_lists_the_known_names_and_mentions_paths() -> None:
    with pytest.raises(InputError) as info:
        load_profile("jetson-nano-8gb")
    message = info.value.message
    for name in REQUIRED:
        assert name in message
    assert ".yaml" in message and "path" in message
    assert info.value.value == "jetson-nano-8gb"


def test_user_profile_by_relative_path(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios" / "boards"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text(yaml.safe_dump(profile_data(name="my-board")))
    profile = load_profile("boards/mine.yaml", base_dir=tmp_path / "scenarios")
    assert profile.name == "my-board"
    assert profile.effective_flops() == pytest.approx(50e9)
    assert load_profile(str(folder / "mine.yaml")).name == "my-board"  # absolute paths ignore base_dir


def test_user_profile_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(profile_data(idle_w=float("nan"))))
    with pytest.raises(InputError) as info:
        load_profile("bad.yaml", base_dir=tmp_path)
    assert info.value.field == "idle_w" and info.value.file == str(tmp_path / "bad.yaml")
    with pytest.raises(InputError) as info:
        load_profile("missing.yaml", base_dir=tmp_path)
    assert "not found" in info.value.message and "jetson-nano-4gb" in info.value.message


# ------------------------------------------------------------------ overrides


def test_overrides_deep_merge_and_keep_everything_else() -> None:
    base = load_profile("jetson-nano-4gb")
    before = copy.deepcopy(base.model_dump())
    new = apply_overrides(base, {"memory": {"usable_gb": 3.0}, "compute": {"training_efficiency": 0.2},
                                 "power_modes": {"5w": {"watts": 4.5}}})
    assert new.memory.usable_gb == 3.0
    assert new.memory.total_gb == base.memory.total_gb and new.memory.bandwidth_gbps == base.memory.bandwidth_gbps
    assert new.compute.training_efficiency == 0.2
    assert new.compute.peak_fp32_gflops == base.compute.peak_fp32_gflops
    assert new.power_modes["5w"].watts == 4.5
    assert new.power_modes["5w"].clock_scale == base.power_modes["5w"].clock_scale
    assert set(new.power_modes) == set(base.power_modes)
    assert new.effective_flops() == pytest.approx(base.effective_flops() * 0.2 / base.compute.training_efficiency)
    assert base.model_dump() == before  # the original is untouched
    assert apply_overrides(base, {}) is base


def test_overrides_are_revalidated_with_a_prefixed_field_path() -> None:
    base = load_profile("jetson-nano-4gb")
    with pytest.raises(InputError) as info:
        apply_overrides(base, {"memory": {"usable_gb": 5.0}}, file="scn.yaml", field_prefix="fleet[2].overrides")
    assert info.value.field == "fleet[2].overrides.memory.usable_gb"
    assert info.value.file == "scn.yaml"
    assert "fleet[2].overrides.memory.usable_gb" in info.value.message
    with pytest.raises(InputError) as info:
        apply_overrides(base, {"compute": {"training_efficiency": math.inf}}, field_prefix="fleet[0].overrides")
    assert info.value.field == "fleet[0].overrides.compute.training_efficiency"
    with pytest.raises(InputError) as info:
        apply_overrides(base, {"compute": {"op_overhead_s": -1e-5}}, field_prefix="fleet[0].overrides")
    assert info.value.field == "fleet[0].overrides.compute.op_overhead_s"
    with pytest.raises(InputError) as info:
        apply_overrides(base, {"memroy": {"usable_gb": 1.0}}, field_prefix="fleet[1].overrides")
    assert info.value.field == "fleet[1].overrides.memroy" and "memory" in (info.value.accepted or "")
    with pytest.raises(InputError) as info:
        apply_overrides(base, [1, 2], field_prefix="fleet[1].overrides")  # type: ignore[arg-type]
    assert info.value.field == "fleet[1].overrides"
