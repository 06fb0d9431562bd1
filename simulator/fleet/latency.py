"""Per-transfer latency draws: one draw function per device, chosen once for its distribution.

Why this shape: a latency is drawn twice per client-round, and a scalar ``rng.normal()`` call costs
more than the rest of the draw. numpy fills an array with exactly the values successive scalar calls
return, so when every device drawing from one generator uses one distribution, the generator is read
4,096 standard variates at a time (:class:`LatencyStream`) and each draw applies numpy's own
arithmetic to the next variate: bit-identical values. Devices that share a generator but differ in
distribution keep scalar draws, whose interleaving is then part of the result. Either way the
distribution is decided once, when the draw function is chosen, not at every draw.
"""

from __future__ import annotations

from itertools import repeat
from typing import Callable

import numpy as np

LatencyFn = Callable[[], float]
KINDS = ("normal", "uniform", "exponential")


def kind_of(distribution: str) -> str:
    """The variate a distribution name draws (anything unknown is the normal, as the schema's default)."""
    return distribution if distribution in ("uniform", "exponential") else "normal"


class LatencyStream:
    """The standard variates of one kind from one Generator, drawn 4,096 at a time, in drawing order."""

    BLOCK = 4096

    def __init__(self, rng: np.random.Generator, kind: str) -> None:
        self.kind = kind
        self._draw = {"uniform": rng.random, "exponential": rng.standard_exponential}.get(kind, rng.standard_normal)
        self.values: list[float] = []  # the block's undrawn values, the next one last (one list for good)

    def refill(self) -> float:
        """Draw the next block into :attr:`values` and return its first value."""
        block = self._draw(self.BLOCK).tolist()
        block.reverse()  # pop() from the end returns them in drawing order
        values = self.values
        values[:] = block
        return values.pop()


class Latency:
    """Mean plus jitter, never negative, for devices with one latency spec.

    Its methods are the draw functions: ``*_block`` read a shared :class:`LatencyStream`, ``*_scalar``
    call the generator once per draw; each applies the arithmetic of numpy's ``Generator.normal(loc,
    scale) = loc + scale·Z``, ``uniform(low, high) = low + (high − low)·U``, ``exponential(scale) =
    scale·E`` to the same standard variate, so both give the same values."""

    __slots__ = ("mean_s", "jitter_s", "rng", "values", "refill")

    def __init__(self, mean_s: float, jitter_s: float, rng: np.random.Generator,
                 stream: LatencyStream | None = None) -> None:
        self.mean_s = mean_s
        self.jitter_s = jitter_s
        self.rng = rng
        self.values = stream.values if stream is not None else []
        self.refill = stream.refill if stream is not None else None

    def normal_block(self) -> float:
        values = self.values
        latency = self.mean_s + (0.0 + self.jitter_s * (values.pop() if values else self.refill()))
        return latency if latency > 0.0 else 0.0

    def uniform_block(self) -> float:
        values = self.values
        s = self.jitter_s
        latency = self.mean_s + (-s + (s - -s) * (values.pop() if values else self.refill()))
        return latency if latency > 0.0 else 0.0

    def exponential_block(self) -> float:
        values = self.values
        latency = self.mean_s + self.jitter_s * (values.pop() if values else self.refill())
        return latency if latency > 0.0 else 0.0

    def normal_scalar(self) -> float:
        return max(0.0, self.mean_s + self.rng.normal(0.0, self.jitter_s))

    def uniform_scalar(self) -> float:
        return max(0.0, self.mean_s + self.rng.uniform(-self.jitter_s, self.jitter_s))

    def exponential_scalar(self) -> float:
        return max(0.0, self.mean_s + self.rng.exponential(self.jitter_s))


def latency_fn(mean_s: float, jitter_s: float, distribution: str, rng: np.random.Generator,
               stream: LatencyStream | None = None) -> LatencyFn:
    """The draw function for one latency spec: a constant without jitter, else the spec's
    distribution read from `stream` (when given: it must be of that kind) or drawn scalar from `rng`."""
    if jitter_s <= 0:
        return repeat(mean_s).__next__
    kind = kind_of(distribution)
    if stream is not None and stream.kind != kind:
        raise ValueError(f"a {stream.kind} stream cannot serve {kind} latencies")
    latency = Latency(mean_s, jitter_s, rng, stream)
    return getattr(latency, f"{kind}_{'block' if stream is not None else 'scalar'}")
