"""The screen: candidates judged without a run, and the space the search walks.

Only what holds exactly is decided here. A fleet with no device that can hold the model never
trains; a fleet with fewer such devices than the algorithm needs for one merge (``k``,
``buffer_k``, ``clients_per_round``) never merges — the engine would even refuse it; a fleet over
``max_price`` is over budget by arithmetic. Nothing is pruned by time: a larger fleet is not always
faster (a synchronous round waits for its slowest device, more devices share the same links) and a
smaller one not always slower, so every other candidate the search picks is run.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.plan.feasibility import Feasibility
from simulator.plan.fleets import Counts, Fleets, Space
from simulator.plan.rows import Row, screened
from simulator.plan.spec import LoadedPlan


def build_space(loaded: LoadedPlan, feasibility: Feasibility) -> Space:
    """Counts from min_count to max_count per entry; kinds out of memory held at their min_count."""
    entries = loaded.spec.catalogue
    lows = tuple(e.min_count for e in entries)
    highs = tuple(e.max_count if feasibility.fits(i) else e.min_count for i, e in enumerate(entries))
    return Space(tuple(e.label for e in entries), lows, highs)


@dataclass
class Screen:
    loaded: LoadedPlan
    fleets: Fleets
    feasibility: Feasibility

    def trainable(self, counts: Counts) -> int:
        return sum(n for i, n in enumerate(counts) if self.feasibility.fits(i))

    def oom_kinds(self, counts: Counts) -> str:
        return ",".join(k.label for k, n in zip(self.feasibility.kinds, counts) if n > 0 and not k.fits_memory)

    def pending(self, counts: Counts, trial: int) -> Row:
        """The row of a candidate that is to be run (its figures come from the run)."""
        return Row(counts, self.fleets.name(counts), self.fleets.price(counts), sum(counts), trial, "pending",
                   oom_kinds=self.oom_kinds(counts))

    def judge(self, counts: Counts, trial: int) -> Row | None:
        """The row of a candidate decided without a run, or None when it must be run."""
        name, price = self.fleets.name(counts), self.fleets.price(counts)
        oom = self.oom_kinds(counts)
        trainable = self.trainable(counts)
        if trainable == 0:
            if not oom:
                return screened(counts, name, price, trial, "too_few_devices", "buys no device")
            kinds = [k for k, n in zip(self.feasibility.kinds, counts) if n > 0 and not k.fits_memory]
            detail = "; ".join(f"{k.label} {k.memory_text()}" for k in kinds)
            return screened(counts, name, price, trial, "out_of_memory",
                            f"out of memory: no device can hold {self.feasibility.model_label} ({detail}); not run",
                            oom)
        need = self.feasibility.min_devices
        if trainable < need:
            row = screened(counts, name, price, trial, "too_few_devices",
                           f"{trainable} device{'s' if trainable != 1 else ''} that can train, fewer than "
                           f"algorithm.aggregation.{self.feasibility.min_devices_key} = {need}: no merge could "
                           "happen; not run", oom)
            row.extra["missing_share"] = (need - trainable) / need
            return row
        limit = self.loaded.spec.constraints.max_price
        if limit is not None and price > limit:
            return screened(counts, name, price, trial, "over_budget",
                            f"over budget: price {price:,.2f} > max_price {limit:,.2f}; not run", oom)
        return None

    def out_of_memory_rows(self) -> list[Row]:
        """One row per kind that cannot hold the model: the fewest of it that can be bought, alone (with
        the min_counts of the others), so the table and the report show why that kind is never bought."""
        entries = self.loaded.spec.catalogue
        base = [e.min_count for e in entries]
        rows = []
        for i, kind in enumerate(self.feasibility.kinds):
            if kind.fits_memory or entries[i].max_count == 0:
                continue
            counts = list(base)
            counts[i] = max(1, counts[i])
            rows.append(screened(tuple(counts), self.fleets.name(tuple(counts)), self.fleets.price(tuple(counts)),
                                 -1, "out_of_memory",
                                 f"out of memory: {kind.label} cannot hold {self.feasibility.model_label} "
                                 f"({kind.memory_text()}): held at {entries[i].min_count} in the search; not run",
                                 kind.label))
        return rows
