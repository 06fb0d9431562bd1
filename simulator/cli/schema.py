"""The scenario's JSON Schema with the algorithm typed: a discriminated union on the policy.

In the scenario file, ``algorithm.aggregation`` is free-form (each policy accepts other keys, and a
plug-in brings its own), so pydantic's schema says only "object" — and editors complete nothing. Here
each built-in policy's ``Params`` becomes one branch of a ``oneOf`` discriminated by ``policy`` (the
OpenAPI ``discriminator`` editors understand), a ``module:Class`` plug-in one more branch, and for a
block without ``policy`` (overrides of the preset's policy) one ``if/then`` per preset types the keys
of that preset's policy with the preset's own defaults — Co-S²P's K, deadline and staleness
function are printed here and nowhere else. ``pruning``, ``distillation`` and ``local_work`` are
typed the same way, per preset.
"""

from __future__ import annotations

import copy
from typing import Any

PLUGIN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"
DEFAULT_PRESET = "co-s2p"  # simulator.config.scenario.AlgorithmSpec.name's default


def _model_schema(model: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """`model`'s schema with its own $defs hoisted into `defs` (shared refs stay valid)."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(schema.pop("$defs", {}))
    return schema


def _with_defaults(schema: dict[str, Any], values: dict[str, Any], title: str) -> dict[str, Any]:
    """A copy of `schema` whose properties show `values` as their defaults (the preset's)."""
    out = copy.deepcopy(schema)
    out["title"] = title
    for key, prop in out.get("properties", {}).items():
        if key in values:
            prop["default"] = values[key]
    return out


def _policy_branches(defs: dict[str, Any]) -> dict[str, str]:
    """One $def per built-in policy (its Params, ``policy`` a const); name -> $ref."""
    from simulator.server.registry import registered_names, resolve_policy

    refs = {}
    for name in registered_names():
        cls = resolve_policy(name)
        branch = _model_schema(cls.Params, defs)
        doc = (cls.__doc__ or "").strip().splitlines()
        branch["title"] = f"policy {name}"
        if doc:
            branch["description"] = doc[0]
        branch["properties"]["policy"] = {"const": name, "description": f"the built-in '{name}' policy"}
        branch["required"] = ["policy"]
        key = f"Policy_{name.replace('-', '_')}"
        defs[key] = branch
        refs[name] = f"#/$defs/{key}"
    defs["Policy_plugin"] = {
        "title": "a policy plug-in", "type": "object", "additionalProperties": True, "required": ["policy"],
        "properties": {"policy": {"type": "string", "pattern": PLUGIN_PATTERN,
                                  "description": "module:Class of an AggregationPolicy subclass; its Params "
                                                 "class types the other keys"}},
    }
    return refs


def _preset_rule(name: str, defs: dict[str, Any], policy_refs: dict[str, str]) -> dict[str, Any]:
    """if algorithm.name is `name`: its aggregation overrides (no `policy`) and parts, typed with defaults."""
    from simulator.config.algorithm import DistillationSpec, LocalWorkSpec, PruningSpec, resolve_algorithm
    from simulator.config.scenario import AlgorithmSpec

    from simulator.server.registry import policy_params

    resolved = resolve_algorithm(AlgorithmSpec(name=name), policy_params)
    slug = name.replace("-", "_")
    policy = resolved.aggregation["policy"]
    base = defs[policy_refs[policy].rsplit("/", 1)[1]]
    overrides = _with_defaults(base, resolved.aggregation, f"{name}: overrides of its '{policy}' policy")
    overrides["properties"] = {k: v for k, v in overrides["properties"].items() if k != "policy"}
    overrides.pop("required", None)
    defs[f"Preset_{slug}_aggregation"] = overrides
    then: dict[str, Any] = {"aggregation": {"if": {"not": {"required": ["policy"]}},
                                            "then": {"$ref": f"#/$defs/Preset_{slug}_aggregation"}}}
    for part, model in (("pruning", PruningSpec), ("distillation", DistillationSpec), ("local_work", LocalWorkSpec)):
        key = f"Preset_{slug}_{part}"
        defs[key] = _with_defaults(_model_schema(model, defs), getattr(resolved, part).model_dump(mode="json"),
                                   f"{name}: {part}")
        then[part] = {"$ref": f"#/$defs/{key}"}
    is_name = {"properties": {"name": {"const": name}}, "required": ["name"]}
    condition = {"anyOf": [is_name, {"not": {"required": ["name"]}}]} if name == DEFAULT_PRESET else is_name
    return {"if": condition, "then": {"properties": then}}


def algorithm_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """AlgorithmSpec's schema: preset names as an enum, aggregation a discriminated union."""
    from simulator.config.algorithm import PRESETS, PRESET_NAMES, resolve_algorithm
    from simulator.config.scenario import AlgorithmSpec
    from simulator.server.registry import policy_params

    refs = _policy_branches(defs)
    defs["AggregationWithPolicy"] = {
        "title": "aggregation naming its policy", "type": "object", "required": ["policy"],
        "oneOf": [{"$ref": r} for r in refs.values()] + [{"$ref": "#/$defs/Policy_plugin"}],
        "discriminator": {"propertyName": "policy", "mapping": dict(refs)},
    }
    presets = "; ".join(f"{p}: {resolve_algorithm(AlgorithmSpec(name=p), policy_params).aggregation['policy']} policy"
                        + (f", pruning {PRESETS[p]['pruning']}" if "pruning" in PRESETS[p] else "")
                        for p in PRESET_NAMES)
    return {
        "title": "AlgorithmSpec", "type": "object", "additionalProperties": False,
        "description": "A preset plus overrides of its parts. Naming aggregation.policy replaces the preset's "
                       "whole aggregation block; without it the keys override the preset's policy. "
                       "`fleetsim explain SCENARIO` prints the result.",
        "properties": {
            "name": {"enum": list(PRESET_NAMES), "default": DEFAULT_PRESET, "description": presets},
            "aggregation": {"anyOf": [{"$ref": "#/$defs/AggregationWithPolicy"},
                                      {"type": "object", "not": {"required": ["policy"]},
                                       "description": "overrides of the preset's policy (typed per preset)"}]},
            "pruning": {"type": "object"}, "distillation": {"type": "object"}, "local_work": {"type": "object"},
        },
        "allOf": [_preset_rule(p, defs, refs) for p in PRESET_NAMES],
    }


def scenario_schema() -> dict[str, Any]:
    """The scenario file's JSON Schema (what `fleetsim schema` prints)."""
    from simulator.config.scenario import Scenario

    document = Scenario.model_json_schema()
    defs = document.setdefault("$defs", {})
    defs["AlgorithmSpec"] = algorithm_schema(defs)
    return document
