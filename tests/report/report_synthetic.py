"""Synthetic, schema-true run folders (ARCHITECTURE.md "Trace schema") for the report tests.

The generator is vectorised over (device, round), so the 10,000-device × 100-round fleet (≈3 M
phases) is written in a few seconds. A simple synchronous schedule: every round all active devices
download, compute and upload; the round lasts until the slowest arrival. Some jetson-nano devices
are given a submodel that does not fit (OOM at compute start, every round); some devices go offline
in the middle of a compute (the job is lost) and stay away for the next round. Staleness is drawn at
random (slow profiles staler) and updates with staleness >= 3 are dropped. Per-device totals are
summed from the events, so compute + comm + idle + offline == wall holds exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

# name, usable memory, mean compute s, submodel depth, down Mbit/s, (compute, comm, idle) W
PROFILES = [
    ("jetson-nano-4gb", 3.2e9, 40.0, 2, 40.0, (10.0, 4.0, 1.5)),
    ("jetson-xavier-nx", 6.4e9, 15.0, 3, 80.0, (15.0, 5.0, 2.5)),
    ("jetson-agx-orin-64gb", 58.0e9, 5.0, 4, 400.0, (50.0, 8.0, 6.0)),
]
SHORT = ["nano", "nx", "orin"]
BLOCKS = 4
PARAMS_PER_BLOCK = 2.5e6
OOM_NEEDED_BYTES = 4.6e9
TARGET_ACCURACY = 0.8
SCENARIO_NAME = "quick <start> & co"


def write_run(path: Path, n_devices: int, rounds: int, seed: int, oom_devices: np.ndarray,
              offline: list[tuple[int, int]] | np.ndarray, timing_only: bool = False,
              name: str = SCENARIO_NAME, target_accuracy: float = TARGET_ACCURACY) -> Path:
    """Write a run folder at `path` (see module docstring) and return it."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    n, R = n_devices, rounds
    dev = np.arange(n)
    prof = (dev * len(PROFILES)) // n
    usable = np.array([p[1] for p in PROFILES])[prof]
    depth = np.array([p[3] for p in PROFILES])[prof]
    is_oom_dev = np.zeros(n, bool)
    is_oom_dev[np.asarray(oom_devices, int)] = True
    params = depth * PARAMS_PER_BLOCK
    down_bytes = (params * 4).astype(np.int64)
    needed = np.where(is_oom_dev, OOM_NEEDED_BYTES, 0.5e9 + depth * 0.4e9)

    lost = np.zeros((n, R), bool)
    skipped = np.zeros((n, R), bool)
    off = np.asarray(offline, int).reshape(-1, 2)
    lost[off[:, 0], off[:, 1]] = True
    skipped[off[:, 0], off[:, 1] + 1] = True
    oom = is_oom_dev[:, None] & ~lost & ~skipped
    normal = ~(oom | lost | skipped)
    has_job = ~skipped

    mbps = np.array([p[4] for p in PROFILES])[prof][:, None]
    dl = down_bytes[:, None] * 8 / (mbps * 1e6) * rng.uniform(1.0, 1.3, (n, R)) + 0.05
    ul = dl * rng.uniform(0.9, 1.1, (n, R))
    comp = np.array([p[2] for p in PROFILES])[prof][:, None] * rng.lognormal(0, 0.2, (n, R))
    trip = dl + comp + ul
    length = np.where(normal, trip, 0.0).max(axis=0) + 2.0
    T = np.concatenate([[0.0], np.cumsum(length)])
    makespan = float(T[-1])
    t0 = np.broadcast_to(T[:R], (n, R))
    d_idx, r_idx = np.broadcast_to(dev[:, None], (n, R)), np.broadcast_to(np.arange(R), (n, R))
    job_id = r_idx * n + d_idx

    off_start = t0 + dl + comp / 2
    r_next = np.minimum(r_idx + 1, R - 1)
    off_end = T[r_next] + 0.5 * length[r_next]

    def phase_rows(mask, phase, start, end, nbytes, outcome, jid=None):
        return pd.DataFrame({
            "device": d_idx[mask], "phase": phase, "start_s": start[mask], "end_s": end[mask],
            "job_id": (job_id if jid is None else jid)[mask], "version": r_idx[mask],
            "bytes": nbytes[mask].astype(np.int64), "flops": 0.0, "outcome": outcome})

    zeros = np.zeros((n, R))
    bytes_grid = np.broadcast_to(down_bytes[:, None], (n, R))
    events = pd.concat([
        phase_rows(has_job, "download", t0, t0 + dl, bytes_grid, "done"),
        phase_rows(normal, "compute", t0 + dl, t0 + dl + comp, zeros, "done"),
        phase_rows(lost, "compute", t0 + dl, off_start, zeros, "lost"),
        phase_rows(oom, "oom", t0 + dl, t0 + dl, zeros, "oom"),
        phase_rows(normal, "upload", t0 + dl + comp, t0 + trip, bytes_grid, "done"),
        phase_rows(lost, "offline", off_start, off_end, zeros, "offline", np.full((n, R), -1)),
    ], ignore_index=True)
    events["flops"] = np.where(events["phase"] == "compute", 1e12, 0.0)
    names = np.array([f"{SHORT[p]}-{i:05d}" for i, p in zip(dev, prof)])
    profile_names = np.array([p[0] for p in PROFILES])
    events.insert(1, "device_name", names[events["device"]])
    events.insert(2, "profile", profile_names[prof[events["device"]]])
    events.insert(3, "group", prof[events["device"]])
    events = events.sort_values(["start_s", "device"], kind="stable").reset_index(drop=True)

    slow = (prof == 0)[:, None]
    stale = np.where(slow, rng.integers(0, 5, (n, R)), rng.integers(0, 2, (n, R)))
    outcome = np.where(normal, np.where(stale >= 3, "dropped", "accepted"),
                       np.where(oom, "oom", "lost"))
    m = has_job
    updates = pd.DataFrame({
        "job_id": job_id[m], "device": d_idx[m], "profile": profile_names[prof][d_idx[m]],
        "dispatch_s": t0[m], "arrival_s": np.where(normal, t0 + trip, np.nan)[m],
        "base_version": r_idx[m], "applied_version": np.where(outcome == "accepted", r_idx + 1, -1)[m],
        "staleness": np.where(normal, stale, 0)[m], "weight": 1.0, "outcome": outcome[m],
        "reason": np.select([outcome == "dropped", outcome == "lost", outcome == "oom"],
                            ["staleness above 2", "device went offline", "out of memory"], "")[m],
        "depth": np.broadcast_to(depth[:, None], (n, R))[m], "width_ratio": 1.0,
        "submodel_params": np.broadcast_to(params[:, None], (n, R))[m].astype(np.int64),
        "download_bytes": bytes_grid[m], "upload_bytes": np.where(normal, bytes_grid, 0)[m],
        "peak_memory_bytes": np.broadcast_to(needed[:, None], (n, R))[m].astype(np.int64),
        "local_steps": 20,
    }).sort_values("job_id", kind="stable")

    acc = outcome == "accepted"
    cover = np.stack([(acc & (depth[:, None] > b)).sum(axis=0) for b in range(BLOCKS)], axis=1)
    stale_acc = np.where(acc, stale, 0).sum(axis=0) / np.maximum(acc.sum(axis=0), 1)
    vtime = T[1:] - 1.0
    versions = pd.DataFrame({"version": np.arange(1, R + 1), "time_s": vtime, "trigger": "all",
                             "n_merged": acc.sum(axis=0), "mean_staleness": stale_acc,
                             "block_coverage": [list(map(int, c)) for c in cover],
                             "min_coverage": cover.min(axis=1)})
    if timing_only:
        evals = pd.DataFrame({"time_s": pd.Series(dtype=float), "version": pd.Series(dtype=int),
                              "accuracy": pd.Series(dtype=float), "loss": pd.Series(dtype=float),
                              "exit_accuracy": pd.Series(dtype=object)})
    else:
        k = np.arange(1, R + 1)
        accuracy = 0.1 + 0.8 * (1 - np.exp(-k / max(R / 4, 1))) + rng.normal(0, 0.005, R)
        evals = pd.DataFrame({"time_s": vtime + 0.5, "version": k, "accuracy": accuracy,
                              "loss": 2.3 * np.exp(-k / max(R / 3, 1)) + 0.1,
                              "exit_accuracy": [[a * (0.7 + 0.1 * b) for b in range(BLOCKS)]
                                                for a in accuracy]})

    dur = (events["end_s"] - events["start_s"]).to_numpy()
    ed = events["device"].to_numpy()
    per = {ph: np.bincount(ed, weights=np.where(events["phase"] == ph, dur, 0.0), minlength=n)
           for ph in ("download", "compute", "upload", "offline")}
    comm = per["download"] + per["upload"]
    idle = makespan - per["compute"] - comm - per["offline"]
    watts = np.array([p[5] for p in PROFILES])[prof]
    count = lambda what: (outcome == what).sum(axis=1)  # noqa: E731
    devices = pd.DataFrame({
        "device": dev, "device_name": names, "profile": profile_names[prof], "group": prof,
        "power_mode": "maxn", "usable_memory_bytes": usable.astype(np.int64),
        "peak_memory_bytes": needed.astype(np.int64), "compute_s": per["compute"], "comm_s": comm,
        "idle_s": idle, "offline_s": per["offline"], "wall_s": makespan,
        "utilization": per["compute"] / makespan,
        "energy_j": per["compute"] * watts[:, 0] + comm * watts[:, 1] + idle * watts[:, 2],
        "jobs": has_job.sum(axis=1), "accepted": count("accepted"), "dropped": count("dropped"),
        "lost": count("lost"), "ooms": count("oom"),
        "bytes_down": np.bincount(ed, weights=np.where(events["phase"] == "download",
                                                       events["bytes"], 0), minlength=n),
        "bytes_up": np.bincount(ed, weights=np.where(events["phase"] == "upload",
                                                     events["bytes"], 0), minlength=n)})

    for table, df in (("events", events), ("updates", updates), ("versions", versions),
                      ("evals", evals), ("devices", devices)):
        df.to_parquet(path / f"{table}.parquet", index=False)
    s = updates.loc[updates["arrival_s"].notna(), "staleness"].to_numpy(float)
    hit = evals[evals["accuracy"] >= target_accuracy]
    summary = {
        "scenario_name": name, "algorithm": "co-s2p", "seed": seed, "makespan_s": makespan,
        "versions": R, "fleet_utilization": float(per["compute"].sum() / (makespan * n)),
        "target_accuracy": target_accuracy,
        "time_to_target_s": None if hit.empty else float(hit["time_s"].iloc[0]),
        "final_accuracy": None if evals.empty else float(evals["accuracy"].iloc[-1]),
        "energy_j": float(devices["energy_j"].sum()), "bytes_down": int(devices["bytes_down"].sum()),
        "bytes_up": int(devices["bytes_up"].sum()), "ooms": int(oom.sum()),
        "dropped": int((outcome == "dropped").sum()), "lost": int(lost.sum()),
        "accepted": int(acc.sum()), "devices": n, "timing_only": timing_only,
        "staleness": {"mean": float(s.mean()), "p50": float(np.percentile(s, 50)),
                      "p95": float(np.percentile(s, 95)), "max": float(s.max())},
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    counts = np.bincount(prof, minlength=len(PROFILES))
    scenario = {
        "name": name, "seed": seed,
        "fleet": [{"profile": p[0], "count": int(c), "power_mode": "maxn"}
                  for p, c in zip(PROFILES, counts)],
        "workload": {"model": {"name": "resnet", "blocks": BLOCKS},
                     "dataset": None if timing_only else {"name": "digits"}},
        "algorithm": {"name": "co-s2p"},
        "stop": {"sim_time_s": 1e6, "target_accuracy": target_accuracy},
    }
    (path / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path
