"""From a sweep file to its variants: one complete, validated scenario mapping per (values, seed).

Order is fixed by the file: the grid's cartesian product (keys in file order, last key fastest), each
crossed with every zip position, each with every seed. Folder names are built from the values only,
so the same sweep file always gives the same names — which is what lets an interrupted sweep resume.

Every variant is validated before anything runs: as a Scenario (schema) and as the engine would
build it (algorithm preset and policy keys, device profiles, K against the fleet size). A problem
names the sweep file and the swept key (``grid.algorithm.aggregation.k``) when a swept value caused
it, or the base scenario file when the base itself is wrong.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from simulator.config.loading import validate_data
from simulator.config.scenario import Scenario
from simulator.errors import InputError
from simulator.sweep.keys import covers, is_scalar, parse_key, render_key, set_key
from simulator.sweep.spec import LoadedSweep

MAX_NAME_CHARS = 160
MAX_VARIANTS_ENV = "FLEETSIM_MAX_VARIANTS"
DEFAULT_MAX_VARIANTS = 10_000  # runs (combinations x seeds); each is validated, then run, one folder each


@dataclass(frozen=True)
class Variant:
    """One run of the sweep."""

    name: str                   # folder name under the sweep folder
    values: dict[str, Any]      # swept key → value, in file order (grid keys, then zip keys)
    seed: int
    scenario: dict[str, Any]    # the full scenario mapping (paths absolute, seed set, report off)
    timing_only: bool

    @cached_property
    def _fingerprint(self) -> str:
        from simulator.engine.resolved import resolved_document

        resolved = resolved_document(validate_data(self.scenario, Scenario))
        text = json.dumps({"scenario": resolved, "timing_only": self.timing_only}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """Changes whenever what this variant would compute changes (for safe resuming): a hash of the
        scenario as the run records it, every default filled in and the algorithm's preset resolved, so
        a preset or a default changed in fleetsim since a variant ran makes it run again, as an edited
        sweep file does. (Device profile files are named, not hashed: an edited profile is not seen.)"""
        return self._fingerprint


# ------------------------------------------------------------------ names


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else f"{value:.1f}"
    return str(value)


def sanitize(text: str) -> str:
    """Shell- and filesystem-safe: ``fleet[0].count`` → ``fleet.0.count``; odd characters → ``_``."""
    text = re.sub(r"\[(\d+)\]", r".\1", text)
    return re.sub(r"[^A-Za-z0-9._=+\-]", "_", text)


def _name(parts: list[str], seed: int) -> str:
    name = "__".join([*(sanitize(p) for p in parts), f"seed={seed}"])
    if len(name) > MAX_NAME_CHARS:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[:MAX_NAME_CHARS - 12]}__{digest}"
    return name


def _part(key: str, value: Any, position: int) -> str:
    """``key=value`` for scalars; mappings and lists are named by their 1-based position in the list."""
    return f"{key}={format_value(value)}" if is_scalar(value) else f"{key}={position + 1}"


def _zip_name_keys(zipped: dict[str, list[Any]]) -> list[str]:
    """Zip keys shown in names: the scalar ones, if together they tell the positions apart; else all."""
    scalar = [k for k, vs in zipped.items() if all(is_scalar(v) for v in vs)]
    if scalar:
        n = len(next(iter(zipped.values())))
        rows = {tuple(format_value(zipped[k][i]) for k in scalar) for i in range(n)}
        if len(rows) == n:
            return scalar
    return list(zipped)


# ------------------------------------------------------------------ paths


def _looks_like_path(text: Any) -> bool:
    return isinstance(text, str) and (text.endswith((".yaml", ".yml")) or "/" in text)


def _absolute(text: str, folder: Path) -> str:
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else (folder / path).resolve())


def absolutize_paths(scenario: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Make file paths of a scenario mapping absolute against `folder`, in place.

    Runs write their folders elsewhere and may execute in other processes or on Ray workers, so
    paths cannot stay relative to the file they were written in. Covered: profile YAMLs, availability
    trace CSVs, dataset files and folders. Built-in profile names are left alone.
    """
    for group in scenario.get("fleet") or []:
        if not isinstance(group, dict):
            continue
        if _looks_like_path(group.get("profile")):
            group["profile"] = _absolute(group["profile"], folder)
        availability = group.get("availability")
        if isinstance(availability, dict) and isinstance(availability.get("path"), str):
            availability["path"] = _absolute(availability["path"], folder)
    dataset = (scenario.get("workload") or {}).get("dataset") if isinstance(scenario.get("workload"), dict) else None
    if isinstance(dataset, dict) and isinstance(dataset.get("path"), str):
        dataset["path"] = _absolute(dataset["path"], folder)
    return scenario


# ------------------------------------------------------------------ expansion


def _combinations(loaded: LoadedSweep) -> list[tuple[dict[str, Any], list[str]]]:
    """(values, name parts) per combination of grid and zip values, in file order."""
    spec = loaded.spec
    grid_keys = list(spec.grid)
    grid_choices = [list(enumerate(spec.grid[k])) for k in grid_keys]
    zip_len = len(next(iter(spec.zip.values()))) if spec.zip else 1
    zip_named = _zip_name_keys(spec.zip) if spec.zip else []
    out = []
    for combo in itertools.product(*grid_choices):
        for z in range(zip_len):
            values: dict[str, Any] = {}
            parts: list[str] = []
            for key, (position, value) in zip(grid_keys, combo):
                values[key] = value
                parts.append(_part(key, value, position))
            for key, zvalues in spec.zip.items():
                values[key] = zvalues[z]
                if key in zip_named:
                    parts.append(_part(key, zvalues[z], z))
            out.append((values, parts))
    return out


def _origin(loaded: LoadedSweep, key: str) -> str:
    return f"grid.{key}" if key in loaded.spec.grid else f"zip.{key}"


def _scenario_for(loaded: LoadedSweep, values: dict[str, Any]) -> dict[str, Any]:
    data = absolutize_paths(copy.deepcopy(loaded.base), loaded.base_dir)
    for key, value in values.items():
        set_key(data, parse_key(key), value, file=str(loaded.file), field=_origin(loaded, key))
    # values written by the sweep are relative to the sweep file (base paths are absolute by now)
    return absolutize_paths(data, loaded.sweep_dir)


def _explain(err: InputError, loaded: LoadedSweep, values: dict[str, Any], label: str) -> InputError:
    """Re-address a scenario error to the swept key that caused it, or to the file really at fault.

    Errors about a field the sweep sets name the sweep file and ``grid.<key>``/``zip.<key>`` (a
    file the value points at, e.g. a missing profile, is named in the text). Errors inside another
    file (a profile YAML, a trace) keep that file; the rest concern the base scenario.
    """
    field = err.field or ""
    matches = [k for k in values if field and covers(render_key(parse_key(k)), field)]
    if matches:
        key = max(matches, key=len)
        where = f" (scenario field '{field}')" if field != render_key(parse_key(key)) else ""
        other = f" [{err.file}]" if err.file else ""
        return InputError(
            f"{err.problem}{other}{where}, in variant {label}", file=loaded.file, field=_origin(loaded, key),
            value=err.value if err.value is not ... else values[key], accepted=err.accepted,
        )
    if err.file is not None:
        return InputError(f"{err.problem} (in sweep variant {label})", file=err.file, field=err.field,
                          value=err.value, accepted=err.accepted)
    if loaded.base_file is not None:
        return InputError(f"{err.problem} (base scenario, in variant {label})", file=loaded.base_file,
                          field=field or None, value=err.value, accepted=err.accepted)
    return InputError(f"{err.problem}, in variant {label}", file=loaded.file,
                      field=f"base.{field}" if field else "base", value=err.value, accepted=err.accepted)


def check_scenario(data: dict[str, Any], timing_only: bool) -> Scenario:
    """Validate as a Scenario and as the engine builds it (presets, policy keys, profiles, K)."""
    from simulator.engine.simulation import Simulation

    scenario = validate_data(data, Scenario)
    Simulation(scenario, Path("."), base_dir=Path.cwd(), timing_only=timing_only)
    return scenario


def max_variants() -> int:
    """The most variants a sweep may expand to (``$FLEETSIM_MAX_VARIANTS``, default 10,000)."""
    text = os.environ.get(MAX_VARIANTS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_VARIANTS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise InputError("is not a positive whole number", field=f"${MAX_VARIANTS_ENV}", value=text,
                         accepted=f"e.g. {DEFAULT_MAX_VARIANTS} (the default)")
    return value


def count_variants(loaded: LoadedSweep) -> int:
    """Runs the sweep expands to, computed from the list lengths alone (nothing is expanded)."""
    spec = loaded.spec
    count = len(spec.seeds) * (len(next(iter(spec.zip.values()))) if spec.zip else 1)
    for values in spec.grid.values():
        count *= len(values)
    return count


def check_variant_count(loaded: LoadedSweep) -> None:
    """Refuse, before expanding anything, a sweep larger than the limit (a grid of 10 keys x 10
    values is 10^10 runs: expanding it would fill memory before saying anything)."""
    count, limit = count_variants(loaded), max_variants()
    if count > limit:
        sizes = " x ".join([*(f"{len(v)} ({k})" for k, v in loaded.spec.grid.items()),
                            *([f"{len(next(iter(loaded.spec.zip.values())))} (zip)"] if loaded.spec.zip else []),
                            f"{len(loaded.spec.seeds)} (seeds)"])
        raise InputError(f"expands to {count:,} runs ({sizes}), more than the limit of {limit:,}", file=loaded.file,
                         field="grid", accepted=f"at most {limit:,} runs (fewer values or seeds, or raise the limit "
                                                f"with ${MAX_VARIANTS_ENV}=N)")


def expand(loaded: LoadedSweep, *, timing_only: bool | None = None, validate: bool = True) -> list[Variant]:
    """All variants of the sweep, validated; InputError naming the sweep file and swept key."""
    check_variant_count(loaded)
    timing = loaded.spec.timing_only if timing_only is None else timing_only
    variants: list[Variant] = []
    for values, parts in _combinations(loaded):
        label = " ".join(parts) or "(base)"
        data = _scenario_for(loaded, values)
        if validate:
            try:
                check_scenario(data, timing)
            except InputError as err:
                raise _explain(err, loaded, values, label) from None
        for seed in loaded.spec.seeds:
            scenario = copy.deepcopy(data)
            scenario["seed"] = int(seed)
            name = _name(parts, seed)
            output = dict(scenario.get("output") or {})
            output.update({"report": False, "run_name": name})
            scenario["output"] = output
            variants.append(Variant(name, dict(values), int(seed), scenario, timing))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError("two variants get the same folder name; make the swept values distinct",
                         file=loaded.file, field="grid", value=dup)
    return variants
