"""Device profiles: what one Jetson module can compute, hold, draw and send.

A profile is a YAML file (``device_profiles/<name>.yaml`` for the built-in ones, or a user file named
by path). It holds datasheet-style figures — peak FLOP/s, memory, bandwidth, power modes, network
interfaces — plus five *assumptions* that turn peaks into simulated time (see
:func:`simulator.cost.model.step_time_s`): ``training_efficiency`` (the share of peak FLOP/s the GEMMs of a
PyTorch training step achieve), ``gemm_tile_width`` (the tile GEMM widths are padded to),
``elementwise_efficiency`` (the share of memory bandwidth its non-GEMM ops — norms, activations,
pooling, softmax — achieve), ``op_overhead_s`` (dispatch cost per op) and ``step_overhead_s`` (fixed
cost per step). ``fleetsim calibrate`` fits all five on a host.
When a step time was measured for a workload, ``measured_step_times`` replaces the estimate outright,
because a measurement beats any model — but only at the point it was measured: same model (label,
overrides included), width, depth, batch, input shape, dtype and exits (:class:`StepPoint`). Anywhere
else the cost model is used and the run's summary says so. Entries without ``input_shape`` (written
by fleetsim before it recorded one) still load but are never applied: re-run ``fleetsim calibrate``.

Units: GB and GB/s are decimal (1e9 bytes), FLOP/s are plain FLOP per second, power in watts.
This module knows nothing of SimPy or torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from simulator.config.input_files import check_input_file
from simulator.config.loading import (deep_merge, load_yaml_model, read_yaml, validate_data,
                                      validation_error_to_input_error)
from simulator.config.numbers import NoBoolNumbers
from simulator.config.measured import MeasuredStepTime, StepPoint, lookup_step_s, unmatched_reason
from simulator.errors import InputError

PROFILES_DIR_ENV = "FLEETSIM_PROFILES_DIR"
_NAME = "a slug of letters, digits, '-', '_' or '.', starting with a letter or digit (e.g. jetson-nano-4gb)"
_WIDTH_TOLERANCE = 1e-6
# Upper bounds far beyond any edge device (10 PFLOP/s, 100 TB, 1 MW): past them a figure means nothing
# and, times 1e9, overflows the simulator's float and int64 arithmetic.
_MAX_GFLOPS = 1e7
_MAX_GB = 1e5
_MAX_W = 1e6
# Defaults of the step-time figures a profile may leave out (user profiles written before they
# existed): the Orin-class assumptions of the built-in Jetson profiles, whose YAML comments give the
# reasoning. They are also simulator.cost.model.step_time_s's defaults.
DEFAULT_ELEMENTWISE_EFFICIENCY = 0.4
DEFAULT_OP_OVERHEAD_S = 20e-6
DEFAULT_GEMM_TILE_WIDTH = 32


class _Strict(NoBoolNumbers):
    """Unknown keys are errors (a typo must not become a silent default); NaN/inf are rejected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Compute(_Strict):
    """GPU throughput and the assumptions that turn it into a training-step time."""

    peak_fp32_gflops: float = Field(gt=0, le=_MAX_GFLOPS, description="GPU FP32 peak, GFLOP/s (CUDA cores x 2 x max clock)")
    peak_fp16_gflops: float = Field(gt=0, le=_MAX_GFLOPS, description="GPU FP16 peak on CUDA cores, GFLOP/s")
    training_efficiency: float = Field(
        gt=0, le=1, description="fraction of peak FLOP/s the GEMMs (matmul, convolution) of PyTorch training "
                                "achieve (an assumption to calibrate)"
    )
    elementwise_efficiency: float = Field(
        default=DEFAULT_ELEMENTWISE_EFFICIENCY, gt=0, le=1,
        description="fraction of memory bandwidth the non-GEMM ops (norms, activations, pooling, softmax, "
                    "elementwise) achieve (an assumption to calibrate)"
    )
    op_overhead_s: float = Field(
        default=DEFAULT_OP_OVERHEAD_S, ge=0, le=1,
        description="cost of dispatching one op of a training step: Python, autograd, kernel launch "
                    "(an assumption to calibrate)"
    )
    gemm_tile_width: int = Field(
        default=DEFAULT_GEMM_TILE_WIDTH, ge=1, le=1024,
        description="GEMM output features are computed in tiles this wide: a layer's width is padded up to a "
                    "multiple of it (an assumption to calibrate)"
    )
    step_overhead_s: float = Field(
        default=0.0, ge=0, le=3600, description="fixed cost per training step beyond its ops (an assumption)"
    )
    precision: Literal["fp32", "fp16"] = Field(default="fp32", description="which peak training runs at")

    @property
    def peak_flops(self) -> float:
        """Peak FLOP/s at the chosen precision."""
        gflops = self.peak_fp16_gflops if self.precision == "fp16" else self.peak_fp32_gflops
        return gflops * 1e9


class Memory(_Strict):
    """Unified memory shared by CPU and GPU; only ``usable_gb`` is available to training."""

    total_gb: float = Field(gt=0, le=_MAX_GB, description="module memory, GB")
    usable_gb: float = Field(gt=0, le=_MAX_GB, description="what training may use after OS + CUDA context, GB")
    bandwidth_gbps: float = Field(gt=0, le=_MAX_GB, description="peak DRAM bandwidth at the highest memory clock, GB/s")


class PowerMode(_Strict):
    """One nvpmodel mode: busy power and how much of peak compute and bandwidth it leaves."""

    watts: float = Field(gt=0, le=_MAX_W, description="power drawn while training in this mode, W")
    clock_scale: float = Field(
        gt=0, le=1, description="fraction of peak FLOP/s in this mode (GPU clock cap x share of GPU TPCs on)"
    )
    bandwidth_scale: float = Field(
        default=1.0, gt=0, le=1, description="fraction of peak memory bandwidth in this mode (EMC clock cap)"
    )


class NetworkInterface(_Strict):
    """A network port of the device; ``max_mbps`` is its line/PHY rate, an upper bound only."""

    kind: Literal["ethernet", "wifi"]
    standard: str = Field(min_length=1, description="e.g. 1000BASE-T, 802.11ac 2x2")
    max_mbps: float = Field(gt=0, le=1e7, description="line or PHY rate, Mb/s")


class Network(_Strict):
    """Informational: the scenario's network section decides the links a device actually gets."""

    interfaces: list[NetworkInterface] = Field(default_factory=list)


class DeviceProfile(_Strict):
    """One device model (e.g. Jetson Nano 4GB): compute, memory, power modes, network."""

    name: str = Field(min_length=1, max_length=64, description="a slug, e.g. jetson-nano-4gb")
    display_name: str = ""
    description: str = ""
    compute: Compute
    memory: Memory
    power_modes: dict[str, PowerMode] = Field(min_length=1)
    default_power_mode: str
    idle_w: float = Field(ge=0, le=_MAX_W, description="power drawn while online and not training, W")
    network: Network = Field(default_factory=Network)
    measured_step_times: list[MeasuredStepTime] = Field(default_factory=list)
    sources: dict[str, str] = Field(
        default_factory=dict, description="where each figure comes from (datasheet, measurement, fit, derivation), "
                                          "keyed by its dotted path, e.g. compute.training_efficiency; informational")

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _is_name(value):
            raise InputError("not a valid profile name", field="name", value=value, accepted=_NAME)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "DeviceProfile":
        if self.memory.usable_gb > self.memory.total_gb:
            raise InputError(
                f"usable memory exceeds the module's total_gb ({self.memory.total_gb:g} GB)",
                field="memory.usable_gb", value=self.memory.usable_gb,
                accepted=f"a number > 0 and <= memory.total_gb ({self.memory.total_gb:g})",
            )
        modes = list(self.power_modes)
        for mode, spec in self.power_modes.items():
            if not _is_name(mode):
                raise InputError("not a valid power mode name", field=f"power_modes.{mode}", accepted=_NAME)
            if spec.watts < self.idle_w:
                raise InputError(
                    f"busy power is below idle_w ({self.idle_w:g} W)", field=f"power_modes.{mode}.watts",
                    value=spec.watts, accepted=f"a number >= idle_w ({self.idle_w:g})",
                )
        if self.default_power_mode not in self.power_modes:
            raise InputError(
                "default power mode is not one of power_modes", field="default_power_mode",
                value=self.default_power_mode, accepted=", ".join(modes),
            )
        figures = _figure_paths(self.model_dump(exclude={"sources", "measured_step_times"}))
        for key in self.sources:
            if key not in figures:
                raise InputError("sources names no figure of this profile", field=f"sources.{key}",
                                 accepted="the dotted path of a figure, e.g. compute.training_efficiency, "
                                          "power_modes.<mode>.watts, idle_w")
        seen: set[tuple[Any, ...]] = set()
        for i, entry in enumerate(self.measured_step_times):
            if entry.power_mode is not None and entry.power_mode not in self.power_modes:
                raise InputError(
                    "unknown power mode", field=f"measured_step_times[{i}].power_mode", value=entry.power_mode,
                    accepted=", ".join(modes) + ", or leave it out to match any mode",
                )
            key = (entry.model, round(entry.width_ratio / _WIDTH_TOLERANCE), entry.batch_size, entry.power_mode,
                   tuple(entry.input_shape or ()), entry.depth, entry.dtype, entry.exits)
            if key in seen:
                raise InputError(
                    "duplicate measured step time (same model, width_ratio, batch_size, input_shape, depth, "
                    "dtype, exits and power_mode)",
                    field=f"measured_step_times[{i}]", accepted="one entry per workload",
                )
            seen.add(key)
        return self

    # ------------------------------------------------------------------ derived figures

    def mode(self, power_mode: str | None = None) -> PowerMode:
        """The named power mode (the default one when ``None``); unknown names are an InputError."""
        name = self.default_power_mode if power_mode is None else power_mode
        try:
            return self.power_modes[name]
        except KeyError:
            raise InputError(
                f"unknown power mode for profile '{self.name}'", field="power_mode", value=name,
                accepted=", ".join(self.power_modes),
            ) from None

    def effective_flops(self, power_mode: str | None = None) -> float:
        """FLOP/s a training step achieves: peak (at ``precision``) x efficiency x the mode's clock scale."""
        return self.compute.peak_flops * self.compute.training_efficiency * self.mode(power_mode).clock_scale

    @property
    def usable_memory_bytes(self) -> int:
        return int(round(self.memory.usable_gb * 1e9))

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        """Peak DRAM bandwidth (highest memory clock); see :meth:`mode_memory_bandwidth_bytes_per_s`."""
        return self.memory.bandwidth_gbps * 1e9

    def mode_memory_bandwidth_bytes_per_s(self, power_mode: str | None = None) -> float:
        """DRAM bandwidth in a power mode: some modes cap the memory clock (EMC)."""
        return self.memory_bandwidth_bytes_per_s * self.mode(power_mode).bandwidth_scale

    def busy_power_w(self, power_mode: str | None = None) -> float:
        return self.mode(power_mode).watts

    @property
    def idle_power_w(self) -> float:
        return self.idle_w

    def lookup_measured_step_s(self, point: StepPoint, power_mode: str | None = None) -> float | None:
        """The step time measured at `point` in `power_mode` (default mode), or ``None`` to fall back on
        the cost model (:func:`simulator.config.measured.lookup_step_s`)."""
        mode = self.default_power_mode if power_mode is None else power_mode
        return lookup_step_s(self.measured_step_times, point, mode)

    def unmatched_reason(self, point: StepPoint) -> str:
        """Why no measured step time applies at `point` (for the run's summary)."""
        return unmatched_reason(self.name, self.measured_step_times, point)


def _figure_paths(data: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of every field (sections and leaves) of a dumped profile, for ``sources`` keys."""
    paths: set[str] = set()
    for key, value in data.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, Mapping):
            paths |= _figure_paths(value, path + ".")
    return paths


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _is_name(value: str) -> bool:
    return bool(value) and value[0] not in "-_." and all(ch in _NAME_CHARS for ch in value)


# ---------------------------------------------------------------------- the builtin registry


def builtin_profiles_dir() -> Path:
    """The folder of built-in profiles: ``$FLEETSIM_PROFILES_DIR`` if set, else the repo's device_profiles/."""
    override = os.environ.get(PROFILES_DIR_ENV)
    if override:
        return Path(override).expanduser()
    import simulator

    return Path(simulator.__file__).resolve().parent.parent / "device_profiles"


def builtin_profile_names() -> list[str]:
    """Names of the built-in profiles (their file stems), sorted."""
    folder = builtin_profiles_dir()
    if not folder.is_dir():
        return []
    return sorted({p.stem for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()})


def _builtin_path(name: str) -> Path | None:
    folder = builtin_profiles_dir()
    for suffix in (".yaml", ".yml"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def list_builtin_profiles() -> list[DeviceProfile]:
    """Every built-in profile, slowest first (effective FLOP/s in the default mode), then by name."""
    profiles = [load_profile(name) for name in builtin_profile_names()]
    return sorted(profiles, key=lambda p: (p.effective_flops(), p.name))


def _looks_like_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text or text.startswith(("~", "."))


def _accepted_names(base_dir: Path | None) -> str:
    names = builtin_profile_names()
    where = f"relative to {base_dir}" if base_dir is not None else "relative to the current folder"
    builtin = f"a builtin profile name ({', '.join(names)})" if names else (
        f"a builtin profile name (none found in {builtin_profiles_dir()}; set ${PROFILES_DIR_ENV})"
    )
    return f"{builtin}, or a path to a profile .yaml file ({where})"


def _load_profile_file(path: Path) -> DeviceProfile:
    """A user's profile YAML. A scenario, sweep or plan file named as a profile (`fleetsim profiles
    scenario.yaml`, `profile: other.yaml` pointing at the wrong file) is named as such: read as a profile
    it only said "at 'compute': this required field is missing (13 more problems…)"."""
    data = read_yaml(path)
    if isinstance(data, dict) and "compute" not in data and ({"fleet", "base"} & set(data)):
        kind = "scenario" if "fleet" in data else "plan" if "catalogue" in data else "sweep"
        # no file= (as for a missing file): the file at fault is the one naming this path (the caller adds it)
        raise InputError(f"{path} is a {kind} file, not a device profile (it has "
                         f"'{'fleet' if 'fleet' in data else 'base'}' and no 'compute')", value=path.name,
                         accepted="a device profile YAML (name, compute, memory, power_modes, …; "
                                  "`fleetsim calibrate` writes one), or a built-in profile name")
    return validate_data(data, DeviceProfile, file=path)


def load_profile(name_or_path: str, base_dir: Path | None = None) -> DeviceProfile:
    """A built-in profile by name, or a user profile YAML by path (relative paths resolve against base_dir)."""
    text = str(name_or_path).strip()
    if not text:
        raise InputError("empty device profile", value=name_or_path, accepted=_accepted_names(base_dir))
    if _looks_like_path(text):
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = (base_dir if base_dir is not None else Path.cwd()) / path
        try:
            check_input_file(path, "a profile .yaml file")  # a regular file within the size limit
        except InputError as err:
            # no file= here: the file at fault is the one naming this path (the caller adds it)
            what = ("is a folder, not a profile file" if err.problem.startswith("is a folder")
                    else "not found" if err.problem == "file not found" else err.problem)
            accepted = err.accepted if "too large" in err.problem else _accepted_names(base_dir)
            raise InputError(f"device profile file {what} ({path})", value=text, accepted=accepted) from None
        return _load_profile_file(path)
    path = _builtin_path(text)
    if path is None:
        raise InputError("unknown device profile", value=text, accepted=_accepted_names(base_dir))
    return load_yaml_model(path, DeviceProfile)


# ---------------------------------------------------------------------- overrides


def _prefixed(prefix: str, field: str | None) -> str | None:
    if not field or field == "(top level)":
        return prefix or field
    if not prefix:
        return field
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


def apply_overrides(
    profile: DeviceProfile, overrides: Mapping[str, Any] | None, file: str | Path | None = None, field_prefix: str = ""
) -> DeviceProfile:
    """A copy of ``profile`` with ``overrides`` deep-merged in and validated again.

    E.g. ``{"memory": {"usable_gb": 3.0}}`` changes one figure and keeps the rest. Errors name the
    field under ``field_prefix`` (``fleet[2].overrides.memory.usable_gb``) in ``file``.
    """
    if not overrides:
        return profile
    if not isinstance(overrides, Mapping):
        raise InputError(
            "profile overrides must be a mapping", file=file, field=field_prefix or None, value=overrides,
            accepted="a mapping of profile fields, e.g. {memory: {usable_gb: 3.0}}",
        )
    data = deep_merge(profile.model_dump(mode="python"), overrides)
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        err = validation_error_to_input_error(exc, data, file, DeviceProfile)
    except InputError as exc:
        err = exc
    err.field = _prefixed(field_prefix, err.field)
    if err.file is None and file is not None:
        err.file = str(file)
    err.args = (err.message,)
    raise err


__all__ = [
    "DEFAULT_ELEMENTWISE_EFFICIENCY", "DEFAULT_GEMM_TILE_WIDTH", "DEFAULT_OP_OVERHEAD_S",
    "Compute", "DeviceProfile", "MeasuredStepTime", "StepPoint", "Memory", "Network", "NetworkInterface", "PowerMode",
    "PROFILES_DIR_ENV", "apply_overrides", "builtin_profile_names", "builtin_profiles_dir",
    "list_builtin_profiles", "load_profile",
]
