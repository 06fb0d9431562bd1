"""fleetsim: discrete-event simulation of federated training on heterogeneous edge fleets.

The public entry point for notebooks is :func:`simulator.run`; everything else is reachable from the
``fleetsim`` command.
"""

from __future__ import annotations

from simulator import numerics as _numerics  # noqa: F401  (pins torch's CPU kernels before torch loads)

__version__ = "0.1.0"

__all__ = ["run", "__version__"]


def run(scenario_or_path, **kwargs):  # noqa: ANN001, ANN003 - thin lazy re-export
    """Run a scenario (a :class:`~simulator.config.scenario.Scenario` or a YAML path); see api.run."""
    from simulator.api import run as _run

    return _run(scenario_or_path, **kwargs)
