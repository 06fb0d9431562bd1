"""The aggregation-policy plug-in interface: the abstract class, its parameters and the views it gets.

A policy decides *when* the server merges and *whom* it sends work to; it never touches SimPy,
PyTorch or the trace directly. It sees the server through :class:`ServerView` and reacts to four
hooks. A user's own policy is any subclass of :class:`AggregationPolicy` named ``module:Class`` in the
scenario (``algorithm.aggregation.policy``); its ``Params`` pydantic model validates its keys.

This file holds the interface alone (as Flower's ``strategy.py``): the built-ins are one per file in
``simulator.server.policies``, their shared maths in ``policies/aggregate.py``, the name → class
registry and plug-in loading (build_policy, register, add_plugin_paths) in
``simulator.server.registry``. This file imports nothing of the server, so nothing imports it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Iterable, Protocol

from pydantic import ConfigDict

from simulator.config.numbers import NoBoolNumbers

if TYPE_CHECKING:  # an annotation only: `fleetsim schema` and `explain` read the policies' Params, no NumPy
    import numpy as np


class PolicyParams(NoBoolNumbers):
    """Base of every policy's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    policy: str


@dataclass
class JobView:
    """What a policy may know of a job (no tensors, no SimPy)."""

    job_id: int
    device: int
    base_version: int
    num_samples: int
    dispatch_s: float
    arrival_s: float | None = None


class Timer(Protocol):
    def cancel(self) -> None: ...


class ServerView(Protocol):
    """The server as a policy sees it."""

    @property
    def now(self) -> float: ...
    @property
    def version(self) -> int: ...
    @property
    def rng(self) -> np.random.Generator: ...
    @property
    def num_devices(self) -> int: ...

    def idle_devices(self) -> list[int]: ...
    def in_flight(self) -> list[JobView]: ...
    def dispatch(self, devices: Iterable[int]) -> list[JobView]: ...
    def aggregate(
        self, weighted: list[tuple[JobView, float]], trigger: str, *, mode: str = "delta", global_weight: float = 0.0
    ) -> None: ...
    def drop(self, job: JobView, reason: str) -> None: ...
    def cancel(self, job: JobView, reason: str) -> None: ...
    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer: ...
    def staleness(self, job: JobView) -> int: ...


# How aggregate() combines updates (simulator.learning.submodel.merge does the arithmetic):
# "absolute" averages the submodels with the current model (weight global_weight), "delta" applies
# the weighted mean update, "damped" applies Σ w·Δ / Σ samples (FedBuff's absolute staleness damping).
AGGREGATE_MODES = ("delta", "absolute", "damped")


class PolicyCallError(ValueError):
    """A policy called a ServerView method with arguments the server cannot take (an unknown or
    repeated job, a negative or non-finite weight...). The run ends naming the policy and the call."""

    def __init__(self, policy: str, call: str, problem: str) -> None:
        super().__init__(f"{call} {problem}")
        self.policy = policy


class AggregationPolicy:
    """Base class: override the hooks you need. Every hook runs at a simulated instant."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[PolicyParams]] = PolicyParams

    def __init__(self, params: PolicyParams) -> None:
        self.params = params

    def start(self, server: ServerView) -> None:
        """The run begins: dispatch the first work."""
        server.dispatch(server.idle_devices())

    def on_arrival(self, server: ServerView, job: JobView) -> None:
        """A device's update reached the server."""
        raise NotImplementedError

    def on_job_failed(self, server: ServerView, job: JobView, outcome: str) -> None:
        """A job ended without an update (device offline → 'lost', memory → 'oom')."""

    def on_device_ready(self, server: ServerView, device: int) -> None:
        """A device came (back) online and is idle."""
