"""Choose which devices get a lane in per-device charts, so 10,000 devices stay readable and small.

Every scenario group (devices' `group_name`, see loading.py) keeps lanes in proportion to its size
(at least one), devices that ran out of memory
or went offline are shown first (they are what a reader looks for), and the rest are spread evenly
over device ids. The choice is a pure function of the device table: no randomness, same page twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_LANES = 200
MIN_LANES = 20
# Timeline segments (phases) drawn at most; with ~18 bytes per segment in the page this keeps the
# timeline near 1 MB whatever the fleet size.
MAX_TIMELINE_SEGMENTS = 50_000


@dataclass(frozen=True)
class LaneSample:
    """Devices shown one per lane, in lane order (by scenario group)."""

    devices: pd.DataFrame  # rows of the device table, lane order
    total: int
    shown_per_profile: dict[str, tuple[int, int]]  # group name -> (shown, total)

    @property
    def sampled(self) -> bool:
        return len(self.devices) < self.total

    def note(self) -> str:
        """A sentence telling the reader what is shown, or '' when every device is."""
        if not self.sampled:
            return ""
        parts = ", ".join(f"{shown:,} of {total:,} {profile}"
                          for profile, (shown, total) in self.shown_per_profile.items())
        return (f"Showing {len(self.devices):,} of {self.total:,} devices ({parts}): chosen evenly "
                f"across each group, devices that ran out of memory or went offline first. "
                f"Per-group charts and the planner table include every device.")

    def short_note(self) -> str:
        """For charts after the timeline: which devices their per-device bars show."""
        if not self.sampled:
            return ""
        return (f"Per-device bars show the same {len(self.devices):,} of {self.total:,} devices as the "
                f"device lanes; per-group figures include every device.")


def lane_budget(n_devices: int, n_events: int) -> int:
    """How many lanes fit: at most MAX_LANES and MAX_TIMELINE_SEGMENTS / segments-per-device."""
    if n_devices <= 0:
        return 0
    per_device = max(1.0, n_events / n_devices)
    fit = int(MAX_TIMELINE_SEGMENTS // per_device)
    return int(min(n_devices, MAX_LANES, max(MIN_LANES, fit)))


def _quotas(sizes: pd.Series, budget: int) -> pd.Series:
    """Largest-remainder split of `budget` over profiles, each at least 1 and at most its size."""
    total = int(sizes.sum())
    if budget >= total:
        return sizes.copy()
    raw = sizes * (budget / total)
    quota = np.maximum(1, np.floor(raw)).astype(int).clip(upper=sizes)
    order = (raw - np.floor(raw)).sort_values(ascending=False, kind="stable").index
    left = budget - int(quota.sum())
    for name in order:
        if left <= 0:
            break
        if quota[name] < sizes[name]:
            quota[name] += 1
            left -= 1
    return quota


def _evenly(index: np.ndarray, k: int) -> np.ndarray:
    if k <= 0 or index.size == 0:
        return index[:0]
    if k >= index.size:
        return index
    pos = np.round(np.linspace(0, index.size - 1, k)).astype(int)
    return index[np.unique(pos)]


def choose_lanes(devices: pd.DataFrame, budget: int) -> LaneSample:
    """Pick at most `budget` devices from the device table (see module docstring)."""
    total = len(devices)
    if total == 0:
        return LaneSample(devices.iloc[:0], 0, {})
    key = "group_name" if "group_name" in devices else "profile"
    sizes = devices.groupby(key, sort=False).size()
    quotas = _quotas(sizes, max(budget, len(sizes)))
    chosen: list[np.ndarray] = []
    shown: dict[str, tuple[int, int]] = {}
    notable = (devices["ooms"].fillna(0) > 0) | (devices["offline_s"].fillna(0) > 0)
    for profile, size in sizes.items():
        rows = devices.index[devices[key] == profile].to_numpy()
        k = int(quotas[profile])
        special = rows[notable.loc[rows].to_numpy()]
        first = _evenly(special, min(len(special), max(1, k // 4)) if len(special) else 0)
        rest = np.setdiff1d(rows, first, assume_unique=True)
        picked = np.sort(np.concatenate([first, _evenly(rest, k - len(first))]))
        chosen.append(picked)
        shown[str(profile)] = (len(picked), int(size))
    rows = np.concatenate(chosen)
    order = ["group", "device"] if "group" in devices and key == "group_name" else ["profile", "device"]
    lanes = devices.loc[rows].sort_values(order, kind="stable")
    return LaneSample(lanes.reset_index(drop=True), total, shown)
