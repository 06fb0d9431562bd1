"""From counts per catalogue entry to names, prices and complete scenario mappings.

A candidate fleet is a tuple of counts, one per catalogue entry in file order. Its folder name
lists the entries it buys (``orin-nano=2__agx=1``), so the same plan file always names the same
candidate the same way — which is what lets an interrupted plan resume. The scenario of a candidate
is the base with its fleet replaced (one group per entry bought, named by the entry's label), the
goal as its stop condition and the plan's seed.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterator

from simulator.plan.spec import CatalogueEntry, LoadedPlan
from simulator.sweep.expand import absolutize_paths, sanitize

Counts = tuple[int, ...]
MAX_NAME_CHARS = 160


class Fleets:
    """Names, prices and scenarios of the candidate fleets of one plan."""

    def __init__(self, loaded: LoadedPlan) -> None:
        self.loaded = loaded
        self.entries: list[CatalogueEntry] = list(loaded.spec.catalogue)
        self.labels = [e.label for e in self.entries]
        self.prices = [float(e.unit_price) for e in self.entries]
        # paths in the base resolve against the base's folder, catalogue profiles against the plan's
        self.base = absolutize_paths(copy.deepcopy(loaded.base), loaded.base_dir)

    def name(self, counts: Counts) -> str:
        parts = [f"{sanitize(label)}={n}" for label, n in zip(self.labels, counts) if n > 0]
        name = "__".join(parts) or "empty"
        if len(name) > MAX_NAME_CHARS:
            digest = hashlib.sha1(name.encode()).hexdigest()[:10]
            name = f"{name[:MAX_NAME_CHARS - 12]}__{digest}"
        return name

    def price(self, counts: Counts) -> float:
        """Σ count × unit price, rounded to 1e-6 so that sums of decimal prices compare exactly."""
        return round(math.fsum(n * p for n, p in zip(counts, self.prices)), 6)

    def groups(self, counts: Counts) -> list[dict[str, Any]]:
        """The scenario's fleet: one group per entry bought, in catalogue order."""
        groups = []
        for entry, n in zip(self.entries, counts):
            if n <= 0:
                continue
            group: dict[str, Any] = {"name": entry.label, "profile": entry.profile, "count": int(n), "link": entry.link}
            if entry.power_mode is not None:
                group["power_mode"] = entry.power_mode
            if entry.overrides:
                group["overrides"] = copy.deepcopy(entry.overrides)
            group["availability"] = entry.availability.model_dump(mode="json")
            groups.append(group)
        return absolutize_paths({"fleet": groups}, self.loaded.plan_dir)["fleet"]

    def scenario(self, counts: Counts, stop: dict[str, Any], run_name: str, *, report: bool = False) -> dict[str, Any]:
        """The base scenario with this fleet, `stop`, the plan's seed and the run's name."""
        data = copy.deepcopy(self.base)
        data["fleet"] = self.groups(counts)
        data["stop"] = dict(stop)
        data["seed"] = int(self.loaded.seed)
        output = dict(data.get("output") or {})
        output.update({"report": report, "run_name": run_name})
        data["output"] = output
        return data


@dataclass(frozen=True)
class Space:
    """The compositions searched: per entry a count from `lows[i]` to `highs[i]` (equal: fixed)."""

    labels: tuple[str, ...]
    lows: tuple[int, ...]
    highs: tuple[int, ...]

    @property
    def free(self) -> tuple[int, ...]:
        """Entries whose count is searched (the others are fixed)."""
        return tuple(i for i, (lo, hi) in enumerate(zip(self.lows, self.highs)) if hi > lo)

    @property
    def size(self) -> int:
        return math.prod(hi - lo + 1 for lo, hi in zip(self.lows, self.highs))

    def __iter__(self) -> Iterator[Counts]:
        """Every composition, in catalogue order with the last entry fastest (fewest first)."""
        yield from itertools.product(*(range(lo, hi + 1) for lo, hi in zip(self.lows, self.highs)))

    def counts(self, params: dict[str, int]) -> Counts:
        """Counts from an optimiser's parameters (free entries by label; the others at their fixed value)."""
        return tuple(int(params[label]) if i in self.free else self.lows[i] for i, label in enumerate(self.labels))

    def params(self, counts: Counts) -> dict[str, int]:
        return {self.labels[i]: int(counts[i]) for i in self.free}
