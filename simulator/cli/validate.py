"""``fleetsim validate`` without running anybody's code: plug-ins are checked only when asked.

Why: a scenario is data one may receive from someone else, but ``module:Class`` names code, and
importing a module runs it. Without ``--import-plugins``, validate checks a copy of the scenario in
which each plug-in is replaced by a stand-in of the same kind — the preset's own aggregation policy
for a policy plug-in, ``cli.stand_in.StandInModel`` (an inert user model) for a model plug-in — so every
other part (schema, profiles, traces, dataset, fleet size against K, faults) is still checked, and
says which plug-ins it did not import.
"""

from __future__ import annotations

from typing import Any

from simulator.config.scenario import Scenario

# In a module of its own (it subclasses torch's nn.Module): validate itself imports no torch unless a
# model must be built or traced.
STAND_IN_MODEL = "simulator.cli.stand_in:StandInModel"


def plugins_in(scenario: Scenario) -> list[tuple[str, str]]:
    """(kind, 'module:Name') of every plug-in the scenario names."""
    found: list[tuple[str, str]] = []
    policy = scenario.algorithm.aggregation.get("policy")
    if isinstance(policy, str) and ":" in policy:
        found.append(("policy", policy))
    for kind, spec in (("model", scenario.workload.model), ("training model", scenario.workload.train_model)):
        if spec is not None and ":" in spec.name:
            found.append((kind, spec.name))
    return found


def without_plugins(scenario: Scenario) -> Scenario:
    """The scenario with each plug-in replaced by its stand-in (see the module docstring)."""
    update: dict[str, Any] = {}
    policy = scenario.algorithm.aggregation.get("policy")
    if isinstance(policy, str) and ":" in policy:
        update["algorithm"] = scenario.algorithm.model_copy(update={"aggregation": {}})
    workload = scenario.workload
    changes = {key: spec.model_copy(update={"name": STAND_IN_MODEL, "kwargs": {}})
               for key, spec in (("model", workload.model), ("train_model", workload.train_model))
               if spec is not None and ":" in spec.name}
    if changes:
        update["workload"] = workload.model_copy(update=changes)
    return scenario.model_copy(update=update) if update else scenario


def not_imported_note(plugins: list[tuple[str, str]], file: str) -> str:
    names = ", ".join(f"{kind} plug-in '{name}'" for kind, name in plugins)
    return (f"not imported: {names} — their code and parameters were not checked, nor whether it can be pruned; "
            f"`fleetsim validate --import-plugins {file}` imports and checks them (that runs their code)")
