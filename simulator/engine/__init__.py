"""The engine: wires the world (devices, links, server, learner) and runs it to the stop condition.

``simulation`` holds :class:`Simulation` (the one place that wires the parts together) and ``run``
the run object its event loop lives in; the rest are the pieces it wires: ``world`` (building),
``planning`` (each device's submodel), ``workload_info``, ``model_hooks``, ``training``
(ProxyLearner), ``faults`` (fault specs as SimPy processes), ``summary``, ``step_times``,
``failure`` (what stopped a run, as one paragraph).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProgressFn", "Simulation"]


def __getattr__(name: str) -> Any:
    """The room's door, ``from simulator.engine import Simulation``, loaded on first use: the
    modules that import only a piece of the engine (reports read ``engine.summary``) stay light."""
    if name in __all__:
        from simulator.engine import simulation

        return getattr(simulation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
