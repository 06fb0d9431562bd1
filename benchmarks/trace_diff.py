"""How two runs' traces differ: where they first part, and by how much until then.

Why: a change to the network's arithmetic (when virtual clocks are advanced, when a transfer within
REL_EPS of its end counts as done) moves transfer end times by a few units in the last place. A
trace fingerprint then differs, and says nothing of how. This script aligns the two runs' rows
(events by job and phase, updates by job, versions by number, devices by index) and reports:

- rows matched, and rows in one run only;
- the first divergence: the earliest event (by start time) whose outcome or version differ or that
  is in one run only, or whose times differ by more than ``--rel`` relatively, or bytes by more than
  ``--rel`` of the transfer's size (a cut transfer's bytes are its progress, a float rounded down);
- before it, the largest relative difference of times and bytes (floats' last places: ~1e-16 per
  operation; the completion tolerance: up to 1e-9);
- from it on, nothing is claimed: a different order of two events that were nearly simultaneous
  sends the runs apart (other devices, other latency draws), both being runs of the same model.

    python benchmarks/trace_diff.py RUN_A RUN_B
    python benchmarks/trace_fingerprint.py --only quickstart --keep /tmp/new          # this tree
    PYTHONPATH=/path/to/old python benchmarks/trace_fingerprint.py --only quickstart --keep /tmp/old
    python benchmarks/trace_diff.py /tmp/old/quickstart /tmp/new/quickstart
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _events(folder: Path) -> pd.DataFrame:
    """events.parquet keyed by (device, job, phase, n-th), with each transfer's full size beside it
    (`size`, from updates.parquet): a cut transfer's bytes are its progress, compared to that size."""
    events = pd.read_parquet(folder / "events.parquet")
    updates = pd.read_parquet(folder / "updates.parquet").set_index("job_id")
    events["k"] = events.groupby(["device", "job_id", "phase"]).cumcount()  # offline rows: n-th of a device
    size = pd.Series(0, index=events.index, dtype="int64")
    for phase, column in (("download", "download_bytes"), ("upload", "upload_bytes")):
        rows = events.phase == phase
        size[rows] = updates[column].reindex(events.job_id[rows]).fillna(0).to_numpy()
    events["size"] = size.clip(lower=1)
    return events.set_index(["device", "job_id", "phase", "k"]).sort_index()


def compare_events(a: pd.DataFrame, b: pd.DataFrame, rel: float) -> dict[str, Any]:
    common = a.index.intersection(b.index)
    x, y = a.loc[common], b.loc[common]
    same_kind = (x.outcome == y.outcome) & (x.version == y.version)

    def relative(column: str) -> pd.Series:
        return ((x[column] - y[column]).abs() / x[column].abs().clip(lower=1e-300)).fillna(0.0)

    rel_end, rel_start = relative("end_s"), relative("start_s")
    rel_bytes = ((x.bytes - y.bytes).abs() / x["size"]).fillna(0.0)  # of the transfer's size
    apart = ~same_kind | (rel_end > rel) | (rel_start > rel) | (rel_bytes > rel)
    only = pd.concat([a.loc[a.index.difference(b.index)].start_s, b.loc[b.index.difference(a.index)].start_s])
    first = min([s for s in (x.start_s[apart].min(), only.min()) if pd.notna(s)], default=None)
    before = (x.start_s < first) if first is not None else pd.Series(True, index=x.index)
    differ = (x.end_s != y.end_s) | (x.start_s != y.start_s) | (x.bytes != y.bytes)
    return {
        "rows": [len(a), len(b)], "matched": int(len(common)), "in_one_only": int(len(only)),
        "first_divergence_s": None if first is None else float(first),
        "rows_before_divergence": int(before.sum()),
        "rows_differing_before": int(differ[before].sum()),
        "max_rel_end_before": float(rel_end[before].max()) if before.any() else 0.0,
        "max_rel_start_before": float(rel_start[before].max()) if before.any() else 0.0,
        "max_rel_bytes_before": float(rel_bytes[before].max()) if before.any() else 0.0,
        "last_s": float(max(a.end_s.max(), b.end_s.max())),
    }


def compare_versions(folder_a: Path, folder_b: Path) -> dict[str, Any]:
    a = pd.read_parquet(folder_a / "versions.parquet").set_index("version")
    b = pd.read_parquet(folder_b / "versions.parquet").set_index("version")
    common = a.index.intersection(b.index)
    rel_t = ((a.time_s[common] - b.time_s[common]).abs() / a.time_s[common].abs().clip(lower=1e-300))
    same = a.n_merged[common] == b.n_merged[common]
    first_apart = common[(~same) | (rel_t > 1e-6)].min() if len(common) else None
    return {"versions": [len(a), len(b)],
            "first_version_apart": None if first_apart is None or pd.isna(first_apart) else int(first_apart),
            "last_time_s": [float(a.time_s.max()), float(b.time_s.max())]}


def compare_devices(folder_a: Path, folder_b: Path) -> dict[str, Any]:
    """Totals over the fleet: what a planner reads."""
    a, b = pd.read_parquet(folder_a / "devices.parquet"), pd.read_parquet(folder_b / "devices.parquet")
    out = {}
    for column in ("compute_s", "comm_s", "idle_s", "wall_s", "energy_j", "jobs", "accepted", "bytes_up"):
        total_a, total_b = float(a[column].sum()), float(b[column].sum())
        out[column] = [total_a, total_b, (total_b - total_a) / total_a if total_a else 0.0]
    return out


def diff(folder_a: Path, folder_b: Path, rel: float = 1e-6) -> dict[str, Any]:
    return {"events": compare_events(_events(folder_a), _events(folder_b), rel),
            "versions": compare_versions(folder_a, folder_b), "devices": compare_devices(folder_a, folder_b)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--rel", type=float, default=1e-6, help="relative time difference that counts as apart")
    args = parser.parse_args()
    print(json.dumps(diff(args.a, args.b, args.rel), indent=1, default=lambda v: v.item() if isinstance(v, np.generic) else v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
