"""The scenario as a run sees it: its algorithm resolved (preset merged with the overrides, every key
present).

Why one function: the run folder's ``scenario.yaml`` records exactly this document, ``fleetsim
explain`` prints it, and ``scripts/reproduce_paper.py --resume`` compares a finished run's record with
it to tell a run that is still what the sweep asks for from one made under an older preset.
"""

from __future__ import annotations

from typing import Any

from simulator.config.scenario import Scenario


def resolved_document(scenario: Scenario) -> dict[str, Any]:
    """The scenario as JSON-ready data, its ``algorithm`` resolved by the registered policies."""
    from simulator.config.algorithm import resolve_algorithm
    from simulator.server.registry import policy_params

    document = scenario.model_dump(mode="json")
    document["algorithm"] = resolve_algorithm(scenario.algorithm, policy_params).as_dict()
    return document
