"""The headline figures of one run, from summary.json where it has them, else from the traces.

summary.json is what the engine wrote, so it wins; a key it lacks is recomputed from the Parquet
tables when that is possible and is None ("n/a" on the page) when it is not. A key present with the
value null is trusted as is (e.g. time_to_target_s: null means "target not reached").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simulator.report.loading import RunData, finite_or_none
from simulator.report.style import fmt_s


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _named(value: Any) -> str | None:
    """'resnet' from either 'resnet' or {'name': 'resnet', ...}."""
    if isinstance(value, dict):
        value = value.get("name")
    return str(value) if value not in (None, "") else None


def _model_text(run: RunData) -> str | None:
    """The planned model, and the proxy trained for accuracy when the scenario names one."""
    workload = run.scenario.get("workload") if isinstance(run.scenario.get("workload"), dict) else {}

    def spec_text(spec: Any) -> str | None:
        name = _named(spec)
        preset = spec.get("preset") if isinstance(spec, dict) else None
        return f"{name} ({preset})" if name and preset else name

    base = run.summary.get("model") or spec_text(workload.get("model"))
    proxy = spec_text(workload.get("train_model"))
    if base and proxy:
        return f"{base}; accuracy measured on a proxy {proxy}"
    return str(base) if base else None


def time_to_target(evals: pd.DataFrame, target: float | None) -> tuple[float | None, int | None]:
    """First evaluation (by time) whose accuracy reaches the target: (time_s, version)."""
    if target is None or evals.empty:
        return None, None
    ev = evals.sort_values("time_s", kind="stable")
    hit = ev[ev["accuracy"] >= target]
    if hit.empty:
        return None, None
    row = hit.iloc[0]
    version = finite_or_none(row["version"])
    return finite_or_none(row["time_s"]), (int(version) if version is not None else None)


def devices_by_profile(run: RunData) -> dict[str, int]:
    """Device count per profile, from the device table, else from the scenario's fleet groups."""
    if not run.devices.empty:
        return {str(k): int(v) for k, v in run.devices.groupby("profile", sort=True).size().items()}
    counts: dict[str, int] = {}
    fleet = run.scenario.get("fleet")
    for group in fleet if isinstance(fleet, list) else []:
        if isinstance(group, dict) and group.get("profile") is not None:
            name = _named(group["profile"]) or "?"
            counts[name] = counts.get(name, 0) + int(finite_or_none(group.get("count", 1)) or 0)
    return counts


def _staleness(run: RunData) -> dict[str, float | None]:
    given = run.summary.get("staleness")
    if isinstance(given, dict):
        return {k: finite_or_none(given.get(k)) for k in ("mean", "p50", "p95", "max")}
    s = run.updates.loc[run.updates["arrival_s"].notna(), "staleness"].dropna().to_numpy(float)
    if s.size == 0:
        return {"mean": None, "p50": None, "p95": None, "max": None}
    return {"mean": float(s.mean()), "p50": float(np.percentile(s, 50)),
            "p95": float(np.percentile(s, 95)), "max": float(s.max())}


def time_to_target_text(m: dict[str, Any]) -> str:
    """'272 s (4.5 min)', 'not reached', 'interrupted before the target', 'not set' or
    'n/a (timing-only)'."""
    if m["timing_only"]:
        return "n/a (timing-only)"
    if m["target_accuracy"] is None:
        return "not set"
    if m["time_to_target_s"] is not None:
        return fmt_s(m["time_to_target_s"])
    return "not reached" if m.get("complete", True) else "interrupted before the target"


def _needed_memory(dev: pd.DataFrame, up: pd.DataFrame) -> np.ndarray:
    """Per device, the most memory a job of it needed: the peak of the jobs it ran and, for a device
    whose jobs ran out of memory, what they asked for. The engine records a device's peak over the jobs
    that ran (0 for a device whose every job went OOM), so without the OOM jobs a run where 4 Nanos
    needed 5.6 GB of their 2.6 GB would show its tightest device at 84 % of usable memory."""
    peak = dev["peak_memory_bytes"].to_numpy(float)
    if up.empty or "device" not in dev or not {"device", "outcome", "peak_memory_bytes"} <= set(up.columns):
        return peak
    oom = up[up["outcome"] == "oom"]
    if oom.empty:
        return peak
    asked = dev["device"].map(oom.groupby("device")["peak_memory_bytes"].max()).to_numpy(float)
    return np.fmax(peak, asked)


def _tightest_memory(peak: np.ndarray, ratio: np.ndarray) -> dict[str, float | None]:
    """The peak memory and its share of usable memory of one device, the tightest (largest share), so that
    "5.8 GB (90 %)" in the comparison table means 5.8 GB is 90 % of a device's usable memory — the largest
    peak and the largest share are often different devices (a TX2's 5.8 GB of 6.6, a Nano's 2.3 of 2.6).
    A share above 1 is a device whose jobs ran out of memory (`_needed_memory`). Without any usable
    memory known, the largest peak alone."""
    if np.isfinite(ratio).any():
        tightest = int(np.nanargmax(ratio))
        return {"peak_memory_bytes": finite_or_none(peak[tightest]),
                "peak_memory_ratio": finite_or_none(ratio[tightest])}
    return {"peak_memory_bytes": finite_or_none(np.nanmax(peak)) if np.isfinite(peak).any() else None,
            "peak_memory_ratio": None}


def run_metrics(run: RunData) -> dict[str, Any]:
    """Every figure the header, the findings and the comparison table use."""
    s, dev, up, ev = run.summary, run.devices, run.updates, run.evals

    def pick(key: str, fallback: Any) -> Any:
        return s[key] if key in s else fallback

    outcome_counts = up["outcome"].value_counts()
    count = lambda name: int(outcome_counts.get(name, 0))  # noqa: E731
    target = finite_or_none(pick("target_accuracy", _dig(run.scenario, "stop", "target_accuracy")))
    ttt_s, ttt_version = time_to_target(ev, target)
    wall = dev["wall_s"].sum()
    usable = dev["usable_memory_bytes"].to_numpy(float)
    peak = _needed_memory(dev, up)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(usable > 0, peak / usable, np.nan)
    last = ev.sort_values(["time_s", "version"], kind="stable").iloc[-1] if not ev.empty else None
    return {
        "name": run.name,
        "algorithm": pick("algorithm", _named(run.scenario.get("algorithm"))),
        "seed": pick("seed", run.scenario.get("seed")),
        "model": _model_text(run),
        "dataset": _named(pick("dataset", _dig(run.scenario, "workload", "dataset"))),
        # a killed run has no summary and may have no device rows yet: its scenario's fleet still counts
        "devices": int(finite_or_none(pick("devices", len(dev) if not dev.empty
                                           else sum(devices_by_profile(run).values()))) or 0),
        "devices_by_profile": devices_by_profile(run),
        "makespan_s": finite_or_none(pick("makespan_s", run.makespan_s)),
        "versions": finite_or_none(pick("versions", run.versions["version"].max())),
        "fleet_utilization": finite_or_none(pick("fleet_utilization",
                                       dev["compute_s"].sum() / wall if wall > 0 else None)),
        "target_accuracy": target,
        "time_to_target_s": finite_or_none(pick("time_to_target_s", ttt_s)),
        "time_to_target_version": ttt_version,
        "final_accuracy": finite_or_none(pick("final_accuracy",
                                    last["accuracy"] if last is not None else None)),
        "best_accuracy": finite_or_none(ev["accuracy"].max()) if not ev.empty else None,
        # min_count=1: a device table derived from a killed run's events has no accounts -> unknown, not 0
        "energy_j": finite_or_none(pick("energy_j", dev["energy_j"].sum(min_count=1) if not dev.empty else None)),
        "bytes_down": finite_or_none(pick("bytes_down", dev["bytes_down"].sum(min_count=1) if not dev.empty else None)),
        "bytes_up": finite_or_none(pick("bytes_up", dev["bytes_up"].sum(min_count=1) if not dev.empty else None)),
        "ooms": finite_or_none(pick("ooms", count("oom"))),
        "dropped": finite_or_none(pick("dropped", count("dropped"))),
        "lost": finite_or_none(pick("lost", count("lost"))),
        "accepted": finite_or_none(pick("accepted", count("accepted"))),
        "jobs": len(up),
        "timing_only": bool(pick("timing_only", ev.empty if run.timing_only is None else run.timing_only)),
        "staleness": _staleness(run),
        **_tightest_memory(peak, ratio),
        **completeness(run),
    }


_INCOMPLETE_REASONS = ("interrupted", "killed", "failed", "plugin_error", "write_error", "bad_input", "error")


def completeness(run: RunData) -> dict[str, Any]:
    """``complete`` and, for a run that is not, ``incomplete_note``: one sentence for the top of the
    page saying so and up to which simulated time its figures run."""
    s = run.summary
    up_to = fmt_s(finite_or_none(s.get("figures_up_to_s", s.get("makespan_s"))) if s else run.makespan_s)
    if not s:
        note = (f"This run is incomplete: it has no summary.json (it was killed, failed before writing it, or is "
                f"still running). The figures below come from the traces written so far and cover simulated "
                f"time up to {up_to} only; figures that need the end of the run (energy, traffic, per-device "
                f"time accounts) are unknown.")
        return {"complete": False, "incomplete_note": note}
    reason = str(s.get("stop_reason", ""))
    complete = s.get("complete")
    if complete is None:  # summaries written before `complete` existed
        complete = not reason.startswith(_INCOMPLETE_REASONS)
    if complete:
        return {"complete": True, "incomplete_note": None}
    note = (f"This run is incomplete: it stopped early ({reason}). The figures below cover simulated time up "
            f"to {up_to} only, not the scenario's stop condition.")
    return {"complete": False, "incomplete_note": note}
