"""Measured training-step times in a device profile, and the point each was measured at.

A measurement replaces the cost model only where it was taken: the same model (its label, overrides
included), width ratio, retained depth, batch, per-sample input shape, dtype and exits — everything
that changes a step (:class:`StepPoint`). A profile calibrated at 32×32 is therefore never applied
to a scenario planned at 224×224; the planner falls back to the cost model and the run's summary
says why (:func:`unmatched_reason`). The power mode is matched separately (see :func:`lookup_step_s`).

Entries without ``input_shape`` were written by fleetsim before it recorded one: they still load, so
old profiles keep working, but they are never applied, and the summary asks for a re-calibration.
This module knows nothing of torch or SimPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from simulator.errors import InputError

WIDTH_TOLERANCE = 1e-6


@dataclass(frozen=True)
class StepPoint:
    """Everything that changes a training step's time, as the planner asks for it: the model's label
    (:func:`simulator.config.workload.model_label`, overrides included), width ratio, retained depth
    (None = the full model), batch, per-sample input shape, dtype (the profile's precision) and
    which exits train (``all`` or ``final``)."""

    model: str
    width_ratio: float
    depth: int | None
    batch_size: int
    input_shape: tuple[int, ...]
    dtype: str = "fp32"
    exits: str = "all"

    def describe(self) -> str:
        """e.g. ``resnet-resnet18 @3×224×224 batch 32`` (+ width, depth, dtype, exits when not default)."""
        text = f"{self.model} @{'×'.join(map(str, self.input_shape))} batch {self.batch_size}"
        if abs(self.width_ratio - 1.0) > WIDTH_TOLERANCE:
            text += f" width {self.width_ratio:g}"
        if self.depth is not None:
            text += f" depth {self.depth}"
        if self.dtype != "fp32":
            text += f" {self.dtype}"
        return text + ("" if self.exits == "all" else f", {self.exits} exit only")


class MeasuredStepTime(BaseModel):
    """A training-step time measured on hardware (or by ``fleetsim calibrate``) at one :class:`StepPoint`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    model: str = Field(min_length=1, description="the workload's model label, e.g. 'mlp-tiny' (name-preset)")
    width_ratio: float = Field(default=1.0, gt=0, le=1)
    batch_size: int = Field(ge=1, le=1_000_000)
    step_s: float = Field(gt=0, le=1e6, description="seconds per training step (forward, backward, optimizer)")
    power_mode: str | None = Field(default=None, description="mode it was measured in; default: any mode")
    input_shape: list[int] | None = Field(
        default=None, min_length=1, description="per-sample input shape, e.g. [3, 224, 224] or [128]; entries "
        "without one (older fleetsim calibrate) are never applied")
    depth: int | None = Field(default=None, ge=1, le=10_000, description="blocks retained; default: the full model")
    dtype: Literal["fp32", "fp16"] = Field(default="fp32", description="precision the step ran at")
    exits: Literal["all", "final"] = Field(
        default="all", description="all: every block's exit trained (summed cross-entropy); final: the last only")

    @field_validator("input_shape")
    @classmethod
    def _positive_shape(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(int(s) < 1 or int(s) > 1_000_000 for s in value):
            raise InputError("input shape entries must be positive", value=value, accepted="e.g. [3, 224, 224]")
        return value

    def matches(self, point: StepPoint) -> bool:
        """Measured at this point (the power mode is checked by the caller)."""
        return (self.input_shape is not None and self.model == point.model and self.batch_size == point.batch_size
                and abs(self.width_ratio - point.width_ratio) <= WIDTH_TOLERANCE and self.depth == point.depth
                and tuple(self.input_shape) == tuple(point.input_shape) and self.dtype == point.dtype
                and self.exits == point.exits)


def lookup_step_s(entries: Sequence[MeasuredStepTime], point: StepPoint, mode: str) -> float | None:
    """The step time measured at `point` in power `mode`, or ``None``.

    An entry measured in a named power mode only matches that mode; an entry without ``power_mode``
    matches any mode, and a mode-specific entry wins over it.
    """
    generic: float | None = None
    for entry in entries:
        if not entry.matches(point):
            continue
        if entry.power_mode == mode:
            return entry.step_s
        if entry.power_mode is None:
            generic = entry.step_s
    return generic


def unmatched_reason(profile_name: str, entries: Sequence[MeasuredStepTime], point: StepPoint) -> str:
    """One clause saying why no entry of `profile_name` applies at `point`."""
    if not entries:
        return f"{profile_name} has no measured step times"
    legacy = sum(e.input_shape is None for e in entries)
    same = [e for e in entries if e.model == point.model and e.input_shape is not None]
    text = f"no calibrated point for {point.describe()} in {profile_name}"
    if same:
        shapes = sorted({"×".join(map(str, e.input_shape or ())) for e in same})
        batches = sorted({e.batch_size for e in same})
        exits = sorted({e.exits for e in same})
        other_exits = "" if point.exits in exits else f", {'/'.join(exits)} exits"
        text += f" (it has {point.model} @{', '.join(shapes)}, batch {', '.join(map(str, batches))}{other_exits})"
    if legacy:
        text += (f"; {legacy} entr{'y' if legacy == 1 else 'ies'} without input_shape (older fleetsim calibrate) "
                 "not used: re-run fleetsim calibrate")
    return text
