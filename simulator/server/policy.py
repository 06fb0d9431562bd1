"""The aggregation-policy plug-in interface and its registry.

A policy decides *when* the server merges and *whom* it sends work to; it never touches SimPy,
PyTorch or the trace directly. It sees the server through :class:`ServerView` and reacts to four
hooks. A user's own policy is any subclass of :class:`AggregationPolicy` named ``module:Class`` in the
scenario (``algorithm.aggregation.policy``); its ``Params`` pydantic model validates its keys.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Protocol

import numpy as np
from pydantic import ConfigDict

from simulator.config.numbers import NoBoolNumbers

from simulator.errors import InputError


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


def policy_label(policy: object) -> str:
    """'fedbuff' for a built-in policy, 'my_policies:FirstHalf' for a plug-in."""
    cls = type(policy)
    if getattr(cls, "name", "") and _REGISTRY.get(cls.name) is cls:
        return cls.name
    return f"{cls.__module__}:{cls.__qualname__}"


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


_REGISTRY: dict[str, type[AggregationPolicy]] = {}


def register(cls: type[AggregationPolicy]) -> type[AggregationPolicy]:
    """Class decorator: make a policy available by its `name` in scenarios."""
    _REGISTRY[cls.name] = cls
    return cls


def registered_names() -> list[str]:
    import simulator.server.policies  # noqa: F401 - registers the built-ins

    return sorted(_REGISTRY)


def resolve_policy(name: str, field: str = "algorithm.aggregation.policy") -> type[AggregationPolicy]:
    """A built-in policy by name, or a user's `module:Class`; InputError naming what is accepted."""
    import simulator.server.policies  # noqa: F401

    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" not in name:
        raise InputError(
            "unknown aggregation policy", field=field, value=name,
            accepted=f"{', '.join(sorted(_REGISTRY))}, or a plug-in as 'module:Class'",
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
        raise InputError(
            f"the policy plug-in module '{module_name}' does not import ({type(exc).__name__}: {exc})",
            field=field, value=name, accepted="an importable module on PYTHONPATH, as 'module:Class'",
        ) from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, AggregationPolicy)):
        raise InputError(
            f"'{attr}' in module '{module_name}' is not an AggregationPolicy subclass",
            field=field, value=name, accepted="a subclass of simulator.server.policy.AggregationPolicy",
        )
    return cls


def build_policy(params: dict[str, Any], field: str = "algorithm.aggregation") -> AggregationPolicy:
    """Validate `params` against the policy's Params and instantiate it."""
    from simulator.config.loading import validation_error_to_input_error
    from pydantic import ValidationError

    name = params.get("policy")
    if not isinstance(name, str):
        raise InputError(
            "missing or non-text policy name", field=f"{field}.policy", value=name,
            accepted=", ".join(registered_names()),
        )
    cls = resolve_policy(name, f"{field}.policy")
    try:
        validated = cls.Params.model_validate(params)
    except ValidationError as exc:
        err = validation_error_to_input_error(exc, params, None, cls.Params)
        err.field = f"{field}.{err.field}" if err.field and err.field != "(top level)" else field
        err.args = (err.message,)
        raise err from None
    try:
        return cls(validated)
    except Exception as exc:  # noqa: BLE001 - a plug-in's constructor is the user's code
        raise InputError(f"the policy plug-in '{name}' failed while being built ({type(exc).__name__}: {exc})",
                         field=f"{field}.policy", value=name,
                         accepted="a policy class whose __init__(params) runs without error") from None


def add_plugin_paths(*folders: str | Path) -> None:
    """Make ``module:Class`` plug-ins in these folders importable (the scenario's folder, the current
    one), as ``fleetsim sweep`` does. Appended to ``sys.path``, so an installed package of the same
    name always wins over a file lying next to a scenario."""
    for folder in folders:
        text = str(Path(folder).resolve())
        if text not in sys.path:
            sys.path.append(text)
