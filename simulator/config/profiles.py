"""Device profiles: compute, memory, power and network figures of one edge module, from a YAML.

Built-in profiles live in the repository's ``device_profiles/`` folder, each figure with its source
in a comment. A scenario names one, or points at a user YAML, and may override fields of it.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rich.table import Table

from simulator.config.loading import load_yaml_model, validation_error_to_input_error
from simulator.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Compute(_Strict):
    peak_fp32_gflops: float = Field(gt=0, description="GPU FP32 peak: CUDA cores × 2 × max clock")
    peak_fp16_gflops: float = Field(gt=0)
    training_efficiency: float = Field(gt=0, le=1, description="achievable share of peak in PyTorch training")
    step_overhead_s: float = Field(default=0.0, ge=0, description="fixed cost per training step")
    precision: Literal["fp32", "fp16"] = "fp32"


class Memory(_Strict):
    total_gb: float = Field(gt=0)
    usable_gb: float = Field(gt=0, description="what training may use after the OS and CUDA context")
    bandwidth_gbps: float = Field(gt=0, description="GB/s")

    @model_validator(mode="after")
    def _usable_within_total(self) -> "Memory":
        if self.usable_gb > self.total_gb:
            raise InputError(
                "usable memory exceeds total memory", field="memory.usable_gb", value=self.usable_gb,
                accepted=f"a number <= memory.total_gb ({self.total_gb})",
            )
        return self


class PowerMode(_Strict):
    watts: float = Field(gt=0, description="board power while training in this mode")
    clock_scale: float = Field(default=1.0, gt=0, le=1, description="GPU clock relative to the maximum")


class Interface(_Strict):
    kind: Literal["ethernet", "wifi"]
    standard: str = ""
    max_mbps: float = Field(gt=0)


class NetworkInterfaces(_Strict):
    interfaces: list[Interface] = Field(default_factory=list)


class MeasuredStepTime(_Strict):
    model: str = Field(description="model label, e.g. cnn-tiny or vit-vit-b")
    width_ratio: float = Field(default=1.0, gt=0, le=1)
    batch_size: int = Field(ge=1)
    step_s: float = Field(gt=0)


class DeviceProfile(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    display_name: str = ""
    description: str = ""
    compute: Compute
    memory: Memory
    power_modes: dict[str, PowerMode] = Field(min_length=1)
    default_power_mode: str
    idle_w: float = Field(ge=0)
    network: NetworkInterfaces = Field(default_factory=NetworkInterfaces)
    measured_step_times: list[MeasuredStepTime] = Field(default_factory=list)

    @model_validator(mode="after")
    def _default_mode_exists(self) -> "DeviceProfile":
        if self.default_power_mode not in self.power_modes:
            raise InputError(
                "default_power_mode is not one of the power modes", field="default_power_mode",
                value=self.default_power_mode, accepted=", ".join(self.power_modes),
            )
        return self

    def mode(self, power_mode: str | None) -> PowerMode:
        return self.power_modes[power_mode or self.default_power_mode]

    def effective_flops(self, power_mode: str | None = None) -> float:
        """Achievable training FLOP/s: peak × efficiency × the mode's clock scale."""
        peak = self.compute.peak_fp16_gflops if self.compute.precision == "fp16" else self.compute.peak_fp32_gflops
        return peak * 1e9 * self.compute.training_efficiency * self.mode(power_mode).clock_scale

    @property
    def usable_memory_bytes(self) -> int:
        return int(self.memory.usable_gb * 1e9)

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.memory.bandwidth_gbps * 1e9

    def busy_power_w(self, power_mode: str | None = None) -> float:
        return self.mode(power_mode).watts

    @property
    def idle_power_w(self) -> float:
        return self.idle_w

    def lookup_measured_step_s(self, model: str, width_ratio: float, batch_size: int) -> float | None:
        """A measured step time for exactly this model, width and batch, if the profile has one."""
        for entry in self.measured_step_times:
            if entry.model == model and entry.batch_size == batch_size and abs(entry.width_ratio - width_ratio) < 1e-9:
                return entry.step_s
        return None


def builtin_profiles_dir() -> Path:
    env = os.environ.get("FLEETSIM_PROFILES_DIR")
    if env:
        return Path(env)
    import simulator

    return Path(simulator.__file__).resolve().parent.parent / "device_profiles"


def _builtin_paths() -> dict[str, Path]:
    folder = builtin_profiles_dir()
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))} if folder.exists() else {}


def list_builtin_profiles() -> list[DeviceProfile]:
    return [load_yaml_model(p, DeviceProfile) for p in _builtin_paths().values()]


def load_profile(name_or_path: str, base_dir: Path | None = None) -> DeviceProfile:
    """A built-in profile by name, or a user profile YAML by path (relative to `base_dir`)."""
    builtins = _builtin_paths()
    if name_or_path in builtins:
        return load_yaml_model(builtins[name_or_path], DeviceProfile)
    looks_like_path = name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path or os.sep in name_or_path
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return load_yaml_model(path, DeviceProfile)
    raise InputError(
        "unknown device profile", value=name_or_path,
        accepted=f"{', '.join(builtins) or '(no built-in profiles found)'}, or a path to a profile .yaml",
    )


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(profile: DeviceProfile, overrides: dict[str, Any], file: str | None = None,
                    field_prefix: str = "") -> DeviceProfile:
    """Deep-merge field overrides into a profile and re-validate; errors carry the scenario's field path."""
    data = _deep_merge(profile.model_dump(mode="json"), overrides)
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        err = validation_error_to_input_error(exc, data, file, DeviceProfile)
    except InputError as exc:
        err = exc
        err.file = err.file or file
    if field_prefix:
        err.field = f"{field_prefix}.{err.field}" if err.field and err.field != "(top level)" else field_prefix
    err.args = (err.message,)
    raise err


def profiles_table(profiles: list[DeviceProfile]) -> Table:
    table = Table(title="device profiles", title_justify="left")
    for column in ("name", "FP32 GFLOP/s", "eff.", "effective GFLOP/s", "memory GB (usable)", "mem BW GB/s",
                   "power modes (W)", "idle W", "network"):
        table.add_column(column, justify="left" if column in ("name", "power modes (W)", "network") else "right")
    for p in profiles:
        modes = ", ".join(f"{name} {mode.watts:g}" for name, mode in p.power_modes.items())
        nics = ", ".join(f"{i.kind} {i.max_mbps:g}" for i in p.network.interfaces) or "-"
        table.add_row(
            p.name, f"{p.compute.peak_fp32_gflops:,.0f}", f"{p.compute.training_efficiency:.2f}",
            f"{p.effective_flops() / 1e9:,.0f}", f"{p.memory.total_gb:g} ({p.memory.usable_gb:g})",
            f"{p.memory.bandwidth_gbps:g}", modes, f"{p.idle_w:g}", nics,
        )
    return table
