"""The policy registry: a built-in policy by name, a user's ``module:Class`` plug-in, built and validated.

Why apart from :mod:`simulator.server.policy`: the interface must import nothing that imports it back
(the built-ins subclass it), and loading user code is a job of its own (import errors, wrong classes,
a constructor that raises — each an InputError naming the field).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.server.policies import BUILTIN_POLICIES
from simulator.server.policy import AggregationPolicy, PolicyParams


def policy_label(policy: object) -> str:
    """'fedbuff' for a built-in policy, 'my_policies:FirstHalf' for a plug-in."""
    cls = type(policy)
    if getattr(cls, "name", "") and _REGISTRY.get(cls.name) is cls:
        return cls.name
    return f"{cls.__module__}:{cls.__qualname__}"


_REGISTRY: dict[str, type[AggregationPolicy]] = {cls.name: cls for cls in BUILTIN_POLICIES}


def register(cls: type[AggregationPolicy]) -> type[AggregationPolicy]:
    """Class decorator: make a policy available by its `name` in scenarios."""
    _REGISTRY[cls.name] = cls
    return cls


def registered_names() -> list[str]:
    return sorted(_REGISTRY)


def resolve_policy(name: str, field: str = "algorithm.aggregation.policy") -> type[AggregationPolicy]:
    """A built-in policy by name, or a user's `module:Class`; InputError naming what is accepted."""
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
    if cls is None:  # a typo: say which module was imported (another one of that name may shadow yours)
        defined = sorted(n for n, v in vars(module).items()
                         if isinstance(v, type) and issubclass(v, AggregationPolicy) and v.__module__ == module.__name__)
        raise InputError(
            f"module '{module_name}' ({getattr(module, '__file__', None) or 'no file'}) has no '{attr}'",
            field=field, value=name,
            accepted=(", ".join(f"'{module_name}:{n}'" for n in defined) if defined
                      else "a module that defines an AggregationPolicy subclass, as 'module:Class'"),
        )
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


def policy_params(aggregation: dict[str, Any]) -> PolicyParams:
    """The aggregation block validated by its policy's Params (the policy is built once, as a run
    builds it: a plug-in whose constructor fails is refused here). Passed to
    :func:`simulator.config.algorithm.resolve_algorithm`, which knows no policy class."""
    return build_policy(aggregation).params


def add_plugin_paths(*folders: str | Path) -> None:
    """Make ``module:Class`` plug-ins in these folders importable (the scenario's folder, the current
    one), as ``fleetsim sweep`` does. Appended to ``sys.path``, so an installed package of the same
    name always wins over a file lying next to a scenario."""
    for folder in folders:
        text = str(Path(folder).resolve())
        if text not in sys.path:
            sys.path.append(text)
