"""Staleness functions s(τ): how much an update computed on version v − τ still counts.

Shapes after FedAsync (Xie et al.) and FLSim's ``async_staleness_weights``: constant, polynomial
(1 + τ)^-a, and hinge (1 if τ ≤ b, else 1 / (a (τ − b) + 1)). Each is a small frozen dataclass so a
scenario can name it and a test can hold it to its formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import ConfigDict, Field

from simulator.config.numbers import NoBoolNumbers


class StalenessFunction(Protocol):
    def __call__(self, staleness: int) -> float: ...


@dataclass(frozen=True)
class Constant:
    value: float = 1.0

    def __call__(self, staleness: int) -> float:
        return self.value


@dataclass(frozen=True)
class Polynomial:
    a: float = 0.5

    def __call__(self, staleness: int) -> float:
        return (1.0 + staleness) ** (-self.a)


@dataclass(frozen=True)
class Hinge:
    a: float = 10.0
    b: float = 4.0

    def __call__(self, staleness: int) -> float:
        return 1.0 if staleness <= self.b else 1.0 / (self.a * (staleness - self.b) + 1.0)


class StalenessSpec(NoBoolNumbers):
    """The scenario's ``staleness:`` block."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    fn: Literal["constant", "polynomial", "hinge"] = "polynomial"
    a: float = Field(default=0.5, ge=0)
    b: float = Field(default=4.0, ge=0)
    value: float = Field(default=1.0, gt=0)

    def build(self) -> StalenessFunction:
        if self.fn == "constant":
            return Constant(self.value)
        if self.fn == "polynomial":
            return Polynomial(self.a)
        return Hinge(self.a, self.b)
