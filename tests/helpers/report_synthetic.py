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
import pyarrow as pa
import pyarrow.parquet as pq
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
PHASES = ["download", "compute", "upload", "offline", "oom"]
EVENT_OUTCOMES = ["done", "lost", "oom", "offline"]


def _strings(codes: np.ndarray, labels) -> pa.Array:
    """A plain string column built in C++ from integer codes (10x faster than Python strings)."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, np.int32)),
                                                pa.array([str(x) for x in labels]))
    return dictionary.cast(pa.string())


def write_run(path: Path, n_devices: int, rounds: int, seed: int, oom_devices: np.ndarray,
              offline: list[tuple[int, int]] | np.ndarray, timing_only: bool = False,
              name: str = SCENARIO_NAME, target_accuracy: float = TARGET_ACCURACY,
              group_names: list[str] | None = None, faults: list[dict] | None = None) -> Path:
    """Write a run folder at `path` (see module docstring) and return it. `group_names` names the
    three fleet groups (devices then are `name#k`, as the engine names them); `faults` is written
    to summary.json's fault log as given."""
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

    zeros = np.zeros((n, R))
    bytes_grid = np.broadcast_to(down_bytes[:, None], (n, R))
    no_job = np.full((n, R), -1)
    # (mask, phase, start, end, bytes, outcome, job ids): one block of rows per kind of phase
    blocks = [(has_job, "download", t0, t0 + dl, bytes_grid, "done", job_id),
              (normal, "compute", t0 + dl, t0 + dl + comp, zeros, "done", job_id),
              (lost, "compute", t0 + dl, off_start, zeros, "lost", job_id),
              (oom, "oom", t0 + dl, t0 + dl, zeros, "oom", job_id),
              (normal, "upload", t0 + dl + comp, t0 + trip, bytes_grid, "done", job_id),
              (lost, "offline", off_start, off_end, zeros, "offline", no_job)]
    cat = lambda i: np.concatenate([b[i][b[0]] for b in blocks])  # noqa: E731
    ev_dev = np.concatenate([d_idx[b[0]] for b in blocks])
    ev_phase = np.concatenate([np.full(b[0].sum(), PHASES.index(b[1])) for b in blocks])
    ev_outcome = np.concatenate([np.full(b[0].sum(), EVENT_OUTCOMES.index(b[5])) for b in blocks])
    ev_start, ev_end, ev_bytes, ev_job = cat(2), cat(3), cat(4).astype(np.int64), cat(6)
    ev_version = np.concatenate([r_idx[b[0]] for b in blocks])
    order = np.lexsort((ev_dev, ev_start))
    if group_names:
        first = np.searchsorted(prof, prof)  # index of each profile's first device
        names = np.array([f"{group_names[p]}#{i - first[i]}" for i, p in zip(dev, prof)])
    else:
        names = np.array([f"{SHORT[p]}-{i:05d}" for i, p in zip(dev, prof)])
    profile_names = [p[0] for p in PROFILES]
    d = ev_dev[order]
    events = pa.table({
        "device": d, "device_name": _strings(d, names), "profile": _strings(prof[d], profile_names),
        "group": prof[d], "phase": _strings(ev_phase[order], PHASES),
        "start_s": ev_start[order], "end_s": ev_end[order], "job_id": ev_job[order],
        "version": ev_version[order], "bytes": ev_bytes[order],
        "flops": np.where(ev_phase[order] == PHASES.index("compute"), 1e12, 0.0),
        "outcome": _strings(ev_outcome[order], EVENT_OUTCOMES)})

    slow = (prof == 0)[:, None]
    stale = np.where(slow, rng.integers(0, 5, (n, R)), rng.integers(0, 2, (n, R)))
    outcome = np.where(normal, np.where(stale >= 3, "dropped", "accepted"),
                       np.where(oom, "oom", "lost"))
    code = np.select([outcome == "accepted", outcome == "dropped", outcome == "lost"], [0, 1, 2], 3)
    m = has_job
    by_job = np.argsort(job_id[m], kind="stable")
    pick = lambda a: np.asarray(a)[m][by_job]  # noqa: E731
    updates = pa.table({
        "job_id": pick(job_id), "device": pick(d_idx),
        "profile": _strings(pick(np.broadcast_to(prof[:, None], (n, R))), profile_names),
        "dispatch_s": pick(t0), "arrival_s": pick(np.where(normal, t0 + trip, np.nan)),
        "base_version": pick(r_idx), "applied_version": pick(np.where(code == 0, r_idx + 1, -1)),
        "staleness": pick(np.where(normal, stale, 0)), "weight": np.ones(int(m.sum())),
        "outcome": _strings(pick(code), ["accepted", "dropped", "lost", "oom"]),
        "reason": _strings(pick(code), ["", "staleness above 2", "device went offline",
                                        "out of memory"]),
        "depth": pick(np.broadcast_to(depth[:, None], (n, R))),
        "width_ratio": np.ones(int(m.sum())),
        "submodel_params": pick(np.broadcast_to(params[:, None], (n, R))).astype(np.int64),
        "download_bytes": pick(bytes_grid), "upload_bytes": pick(np.where(normal, bytes_grid, 0)),
        "peak_memory_bytes": pick(np.broadcast_to(needed[:, None], (n, R))).astype(np.int64),
        "local_steps": np.full(int(m.sum()), 20)})

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

    dur = ev_end - ev_start
    per = {ph: np.bincount(ev_dev, weights=np.where(ev_phase == PHASES.index(ph), dur, 0.0),
                           minlength=n) for ph in ("download", "compute", "upload", "offline")}
    comm = per["download"] + per["upload"]
    idle = makespan - per["compute"] - comm - per["offline"]
    watts = np.array([p[5] for p in PROFILES])[prof]
    count = lambda what: (outcome == what).sum(axis=1)  # noqa: E731
    devices = pd.DataFrame({
        "device": dev, "device_name": names, "profile": np.array(profile_names)[prof],
        "group": prof,
        "power_mode": "maxn", "usable_memory_bytes": usable.astype(np.int64),
        "peak_memory_bytes": needed.astype(np.int64), "compute_s": per["compute"], "comm_s": comm,
        "idle_s": idle, "offline_s": per["offline"], "wall_s": makespan,
        "utilization": per["compute"] / makespan,
        "energy_j": per["compute"] * watts[:, 0] + comm * watts[:, 1] + idle * watts[:, 2],
        "jobs": has_job.sum(axis=1), "accepted": count("accepted"), "dropped": count("dropped"),
        "lost": count("lost"), "ooms": count("oom"),
        "bytes_down": np.bincount(ev_dev, weights=np.where(ev_phase == 0, ev_bytes, 0), minlength=n),
        "bytes_up": np.bincount(ev_dev, weights=np.where(ev_phase == 2, ev_bytes, 0), minlength=n)})

    pq.write_table(events, path / "events.parquet")
    pq.write_table(updates, path / "updates.parquet")
    for table, df in (("versions", versions), ("evals", evals), ("devices", devices)):
        df.to_parquet(path / f"{table}.parquet", index=False)
    s = stale[normal].astype(float)
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
    if faults is not None:
        summary["faults"] = faults
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    counts = np.bincount(prof, minlength=len(PROFILES))
    scenario = {
        "name": name, "seed": seed,
        "fleet": [{"profile": p[0], "count": int(c), "power_mode": "maxn",
                   **({"name": group_names[g]} if group_names else {})}
                  for g, (p, c) in enumerate(zip(PROFILES, counts))],
        "workload": {"model": {"name": "resnet", "blocks": BLOCKS},
                     "dataset": None if timing_only else {"name": "digits"}},
        "algorithm": {"name": "co-s2p"},
        "stop": {"sim_time_s": 1e6, "target_accuracy": target_accuracy},
    }
    (path / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def make_sweep(root: Path, configs=("co-s2p", "fedavg", "fedbuff"), seeds=(0, 1), rounds=(6, 6, 6),
               n_devices: int = 6, extra_key: str | None = None) -> list[Path]:
    """A sweep folder as `fleetsim sweep` leaves it: manifest.json + one run folder per variant.
    Seeds are 10 × config + seed, so every run's traces differ. `extra_key` adds a second swept key
    whose value differs per configuration (labels then need both keys)."""
    root.mkdir(parents=True, exist_ok=True)
    variants, dirs = {}, []
    keys = ["algorithm.name", "algorithm.aggregation"] + ([extra_key] if extra_key else [])
    for c, (algo, r) in enumerate(zip(configs, rounds)):
        for s in seeds:
            seed = 10 * c + s
            name = f"algorithm.name={algo}__seed={seed}"
            values = {"algorithm.name": algo, "algorithm.aggregation": {"k": c + 1}}
            if extra_key:
                values[extra_key] = 12 * (c % 2 + 1)
            variants[name] = {"values": values, "seed": seed}
            dirs.append(write_run(root / name, n_devices, r, seed=seed, oom_devices=[], offline=[],
                                  name="fleet54_cos2p"))
    (root / "manifest.json").write_text(json.dumps({"keys": keys, "variants": variants}, sort_keys=True))
    return dirs
