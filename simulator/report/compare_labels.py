"""Names for runs side by side: what differs between them, not the base scenario's name repeated.

A run of a sweep is named by its swept values (the sweep folder's manifest.json), e.g.
"algorithm.name=fedavg", and its seed; other runs by their scenario names when those differ, else by
the scenario keys whose values differ (their resolved scenario.yaml files, flattened to dotted keys).
Runs that differ only by seed form one *configuration*, whose figures the comparison shows as
mean ± std over seeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.report.loading import RunData

IGNORED_KEYS = ("name", "description", "seed", "output")
MAX_VALUE_CHARS = 28


@dataclass(frozen=True)
class RunLabel:
    config: str  # what the run's configuration is called (identical for runs that differ by seed)
    seed: int | None
    label: str  # unique per run
    varied: tuple[str, ...] = ()  # the keys that differ between the runs compared
    detail: str = ""  # every varied key=value of this run, when the label shows only some


def _value_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _manifest_values(run: RunData) -> dict[str, Any] | None:
    """The swept values of a run inside a sweep folder, in the sweep file's key order, or None."""
    path = run.run_dir.parent / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        entry = manifest["variants"][run.run_dir.name]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    values = entry.get("values") if isinstance(entry, dict) else None
    if not isinstance(values, dict):
        return None
    order = [k for k in manifest.get("keys") or [] if k in values]
    return {k: values[k] for k in order + [k for k in values if k not in order]}


def distinguishing(keys: tuple[str, ...], rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """Keys, in order, that together tell every distinct combination apart, each taken only if it
    tells more apart than those before it: keys varied together (a sweep's zip) then name a
    configuration by the first of them alone, and a key that differs only where an earlier one does
    is left out. Never fewer than that: runs are grouped into configurations by these names."""
    def combinations(chosen: list[str]) -> int:
        return len({tuple(_value_text(r.get(k)) for k in chosen) for r in rows})

    full = combinations(list(keys))
    chosen: list[str] = []
    told = 1
    for key in keys:
        now = combinations(chosen + [key])
        if now > told:
            chosen.append(key)
            told = now
        if told == full:
            break
    return tuple(chosen) or keys[:1]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': [1, {'c': 2}]}} -> {'a.b[0]': 1, 'a.b[1].c': 2}."""
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.update(flatten(value, f"{prefix}[{i}]"))
    else:
        out[prefix] = data
    return out


def _differing(runs: list[RunData]) -> list[str]:
    """Scenario keys (dotted) whose values are not the same in every run, in first-seen order."""
    flat = [flatten(r.scenario) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    keep = [k for k in keys if k.split(".")[0].split("[")[0] not in IGNORED_KEYS]
    missing = object()
    return [k for k in keep if len({json.dumps(f.get(k, missing) if f.get(k, missing) is not missing
                                                else "<absent>", sort_keys=True, default=str)
                                     for f in flat}) > 1]


def _seed(run: RunData) -> int | None:
    for value in (run.summary.get("seed"), run.scenario.get("seed")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _configs(runs: list[RunData]) -> tuple[list[str], tuple[str, ...], list[str]]:
    """Each run's configuration name, the keys that tell them apart, and each run's full values."""
    swept = [_manifest_values(r) for r in runs]
    if all(v is not None for v in swept):
        rows: list[dict[str, Any]] = [v for v in swept if v is not None]
        keys = tuple(dict.fromkeys(k for v in rows for k in v))
        varied = tuple(k for k in keys if len({_value_text(v.get(k)) for v in rows}) > 1)
        shown = distinguishing(varied, rows) if varied else keys
        details = [", ".join(f"{k}={_value_text(v.get(k))}" for k in varied) if shown != varied else ""
                   for v in rows]
        return [", ".join(f"{k}={_value_text(v.get(k))}" for k in shown) or r.name
                for v, r in zip(rows, runs)], varied, details
    names = [r.name for r in runs]
    diffs = _differing(runs)
    blank = [""] * len(runs)
    if len(set(names)) == len(names) or not diffs:
        return names, tuple(diffs), blank
    flat = [flatten(r.scenario) for r in runs]
    shown = distinguishing(tuple(diffs), flat)  # (all it needs: the configurations are grouped by it)
    more = " …" if len(shown) < len(diffs) else ""
    return ([f"{name} ({', '.join(f'{k}={_value_text(f.get(k))}' for k in shown)}{more})"
             for name, f in zip(names, flat)], tuple(diffs),
            [", ".join(f"{k}={_value_text(f.get(k))}" for k in diffs[:8]) if more else "" for f in flat])


def run_labels(runs: list[RunData]) -> list[RunLabel]:
    """One RunLabel per run (see module docstring); labels are unique."""
    configs, varied, details = _configs(runs)
    seeds = [_seed(r) for r in runs]
    repeated = {c for c in configs if configs.count(c) > 1}
    labels = [f"{c} · seed {s}" if c in repeated and s is not None else c for c, s in zip(configs, seeds)]
    if len(set(labels)) < len(labels):
        labels = [f"{lab} ({r.run_dir.name})" if labels.count(lab) > 1 else lab for lab, r in zip(labels, runs)]
    if len(set(labels)) < len(labels):
        labels = [f"{i + 1}. {lab}" for i, lab in enumerate(labels)]
    # a configuration is what seeds repeat: the same config text with different seeds
    return [RunLabel(c, s, lab, varied, d) for c, s, lab, d in zip(configs, seeds, labels, details)]


def sweep_folder(runs: list[RunData]) -> Path | None:
    """The sweep folder all runs belong to, if they do."""
    parents = {r.run_dir.parent for r in runs}
    if len(parents) == 1 and (next(iter(parents)) / "manifest.json").is_file():
        return next(iter(parents))
    return None


def sweep_name(runs: list[RunData]) -> str | None:
    """The name of the sweep all runs belong to (its manifest's ``sweep``), if they do."""
    folder = sweep_folder(runs)
    return None if folder is None else manifest_sweep_name(folder)


def manifest_sweep_name(sweep_dir: Path) -> str | None:
    """The ``sweep`` name in a sweep folder's manifest.json; None if it has none (or no readable manifest)."""
    try:
        name = json.loads((sweep_dir / "manifest.json").read_text(encoding="utf-8")).get("sweep")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None
