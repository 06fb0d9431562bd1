"""Property tests: whatever a user writes, fleetsim either runs it or says InputError — nothing else.

(a) random mutations of a small valid scenario mapping (delete a key, swap a value for one of another
    type, add a key, push a number to negative / zero / NaN / inf / huge) go through the real entry
    point, ``simulator.api.run(..., timing_only=True)``: it must succeed or raise InputError, never
    another exception and never hang (a watchdog turns a hang into a failure);
(b) random bytes and text as a scenario file → InputError;
(c) random mutations of a device profile mapping (and of profile overrides) → InputError or a valid
    profile whose derived figures are finite and positive;
(d) random mutations of a sweep file → its variants expand, or InputError.
"""

from __future__ import annotations

import copy
import math
import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.config.loading import load_yaml_model, validate_data
from simulator.config.profiles import DeviceProfile, apply_overrides, load_profile
from simulator.config.scenario import Scenario
from simulator.errors import InputError
from tests.helpers.cli import ROOT, base

WATCHDOG_S = 30  # one example: validation plus a 20 s simulated run of 4 devices takes well under a second
# 60 fixed examples per property in the suite; FLEETSIM_FUZZ_EXAMPLES=2000 explores afresh, at length.
_FUZZ = int(os.environ.get("FLEETSIM_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(max_examples=_FUZZ or 60, deadline=None, derandomize=not _FUZZ, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Hang(Exception):
    """Raised by the watchdog: an example ran far longer than any valid tiny scenario should."""


@contextmanager
def watchdog(seconds: int) -> Iterator[None]:
    def fire(_signum: int, _frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def small_base() -> dict[str, Any]:
    """The base scenario, made tiny BEFORE mutating so that every valid mutant runs fast."""
    data = base()
    data["stop"] = {"sim_time_s": 20, "max_versions": 10}
    data["fleet"][1]["availability"] = {"kind": "churn", "mean_online_s": 30, "mean_offline_s": 5}
    data["algorithm"] = {"name": "co-s2p", "aggregation": {"k": 2, "deadline_s": 15}}
    data["workload"]["samples_per_client"] = 8
    return data


# ------------------------------------------------------------------ values and mutations

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["", "ethernet", "jetson-nano-4gb", "fedavg", "sync", "iid", "0", "1e3"]),
)
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=6)
EXTREMES = [-1, -1.5, 0, 0.0, float("nan"), float("inf"), float("-inf"), 10**12, 1e12, 1e308, -(10**12)]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a nested mapping/list, parents before children."""
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out.append((*prefix, key))
        out.extend(paths(child, (*prefix, key)))
    return out


def parent_of(data: Any, path: tuple[Any, ...]) -> Any:
    node = data
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutated(draw: st.DrawFn, original: dict[str, Any], max_mutations: int = 2) -> dict[str, Any]:
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, max_mutations))):
        all_paths = paths(data)
        if not all_paths:
            break
        path = draw(st.sampled_from(all_paths))
        parent = parent_of(data, path)
        key = path[-1]
        op = draw(st.sampled_from(["delete", "replace", "insert", "extreme", "extreme", "nudge", "nudge"]))
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(JSONISH)
        elif op == "insert":
            target = parent[key] if isinstance(parent[key], dict) else parent
            if isinstance(target, dict):
                target[draw(st.text(min_size=1, max_size=10))] = draw(JSONISH)
            else:
                target.append(draw(JSONISH))
        else:  # a number pushed to an extreme, or nudged to another plausible value (valid runs vary too)
            numeric = [p for p in all_paths if isinstance(parent_of(data, p)[p[-1]], (int, float))
                       and not isinstance(parent_of(data, p)[p[-1]], bool)]
            if numeric:
                path = draw(st.sampled_from(numeric))
                value = parent_of(data, path)[path[-1]]
                if op == "nudge":
                    new: Any = (draw(st.integers(0, 64)) if isinstance(value, int)
                                else draw(st.floats(1e-3, 1e4, allow_nan=False)))
                else:
                    choice = draw(st.sampled_from(EXTREMES + ["negate"]))
                    new = -value if choice == "negate" else choice
                parent_of(data, path)[path[-1]] = new
    return data


def _cheap(scenario: Scenario) -> bool:
    """Valid mutants this small are run for real; bigger ones (a huge count or horizon) are only built."""
    stop = scenario.stop
    short = (stop.sim_time_s is not None and stop.sim_time_s <= 120) or (
        stop.max_versions is not None and stop.max_versions <= 20 and stop.sim_time_s is not None
        and stop.sim_time_s <= 3600)
    return short and scenario.num_devices <= 32


# ------------------------------------------------------------------ (a) scenario mutations


@pytest.mark.slow
def test_the_small_base_runs() -> None:
    import simulator.api as api

    with tempfile.TemporaryDirectory() as tmp:
        result = api.run(small_base(), timing_only=True, out=Path(tmp) / "run", report=False)
    assert result.summary["versions"] >= 1


@pytest.mark.slow
@SETTINGS
@given(mutated(small_base()))
def test_mutated_scenario_runs_or_is_an_input_error(data: dict[str, Any]) -> None:
    import simulator.api as api
    from simulator.engine.simulation import Simulation

    with tempfile.TemporaryDirectory() as tmp, watchdog(WATCHDOG_S):
        try:
            scenario = validate_data(data, Scenario)
            if _cheap(scenario):
                api.run(data, timing_only=True, out=Path(tmp) / "run", report=False)
            else:
                Simulation(scenario, Path(tmp), timing_only=True)
        except InputError as err:
            text = str(err)
            assert "\n" not in text and text.strip(), text
            assert err.problem


# ------------------------------------------------------------------ (b) random files


@SETTINGS
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200),
                 st.lists(st.sampled_from(["name:", " x", "\n", "- ", "[", "]", "{", "}", ":", "fleet", "&a",
                                           "*a", "!!float", "'", '"', "\t", "2001-13-45", "<<: *a", "? "]),
                          max_size=30).map("".join)))
@pytest.mark.slow
def test_random_bytes_as_a_scenario_file_are_an_input_error(content: bytes | str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        with pytest.raises(InputError) as info:
            load_yaml_model(path, Scenario)
    assert "random.yaml" in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------ (c) device profiles

NANO = yaml.safe_load((ROOT / "device_profiles" / "jetson-nano-4gb.yaml").read_text())


def _sane(profile: DeviceProfile) -> None:
    for mode in profile.power_modes:
        flops = profile.effective_flops(mode)
        assert math.isfinite(flops) and flops > 0
        assert math.isfinite(profile.mode_memory_bandwidth_bytes_per_s(mode))
        assert profile.busy_power_w(mode) >= profile.idle_power_w >= 0
    assert 0 < profile.usable_memory_bytes <= profile.memory.total_gb * 1e9 + 1


@pytest.mark.slow
@SETTINGS
@given(mutated(NANO))
def test_mutated_profile_is_valid_or_an_input_error(data: dict[str, Any]) -> None:
    try:
        profile = validate_data(data, DeviceProfile, file="mutant.yaml")
    except InputError as err:
        assert "mutant.yaml" in str(err) and "\n" not in str(err)
        return
    _sane(profile)


@SETTINGS
@given(mutated({"memory": {"usable_gb": 3.0}, "compute": {"training_efficiency": 0.3},
                "power_modes": {"5w": {"watts": 5.0}}, "idle_w": 1.0}))
@pytest.mark.slow
def test_mutated_overrides_are_valid_or_an_input_error(overrides: dict[str, Any]) -> None:
    nano = load_profile("jetson-nano-4gb")
    try:
        profile = apply_overrides(nano, overrides, file="scenario.yaml", field_prefix="fleet[0].overrides")
    except InputError as err:
        assert err.field is not None and err.field.startswith("fleet[0].overrides"), str(err)
        assert "scenario.yaml" in str(err)
        return
    _sane(profile)


# ------------------------------------------------------------------ (d) sweep files


def _small_sweep() -> dict[str, Any]:
    return {"name": "fuzz", "base": small_base(), "grid": {"algorithm.name": ["fedavg", "fedasync"]},
            "zip": {}, "seeds": [0, 1], "timing_only": True}


@pytest.mark.slow
@SETTINGS
@given(mutated(_small_sweep()))
def test_mutated_sweep_expands_or_is_an_input_error(data: dict[str, Any]) -> None:
    from simulator.sweep import expand, load_sweep

    with tempfile.TemporaryDirectory() as tmp, watchdog(WATCHDOG_S):
        path = Path(tmp) / "sweep.yaml"
        try:
            path.write_text(yaml.safe_dump(data, allow_unicode=True))
        except (yaml.YAMLError, ValueError):
            return  # not writable as YAML (e.g. a NaN key): nothing a user could have written
        try:
            variants = expand(load_sweep(path))
            assert variants and len({v.name for v in variants}) == len(variants)
        except InputError as err:
            assert "\n" not in str(err) and err.problem
