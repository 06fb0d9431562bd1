"""Which units and which blocks a client's submodel keeps.

Width (unit choice per axis, registry ``WIDTH_STRATEGIES``):

- ``static`` (HeteroFL): the leading ``n`` units. ``none`` is the same rule (it only matters if a
  width ratio < 1 is asked for anyway).
- ``rolling`` (FedRolex): a window of ``n`` units starting at ``r mod size`` and wrapping, r = the
  rolling counter (the job index the engine passes); over ``size`` consecutive counters every unit is
  kept equally often.
- ``importance`` (Co-S²P's data-distribution-aware pruning): clients report a first-order Taylor score
  per unit, ``I_u = |Σ_{w∈u} w·∂L/∂w|`` averaged over a few batches of their OWN shard, with their
  update. With ``importance_scope: client`` (the default) each client's mask comes from its own
  reports only: the server keeps one exponential moving average per client and unit,
  ``s ← β·s + (1−β)·I`` (first report: ``s ← I``), so clients with different label distributions
  keep different units. With ``importance_scope: fleet`` (the earlier, fleet-wide rule) the reports
  of one merge are aggregated weighted by the merge weights (∝ samples × staleness factor) into one
  moving average that serves every client. A plan keeps the
  ``n − n_explore`` highest-scored units, plus ``n_explore = floor(explore · n)`` exploration slots
  given to the other units whose score is oldest (never-scored units first, then lowest index; at
  least one slot while some unit was never scored and ``n >= 2``). Without exploration a unit that was never kept would never be scored and so never kept. Until an axis has any
  score the plan falls back to ``static``. Everything is deterministic (no RNG).

Depth (registry ``DEPTH_STRATEGIES``), given the number of blocks ``k`` the device can train:

- ``fixed`` / ``none`` (DepthFL): blocks ``0..k-1``, all trainable.
- ``rolling`` (Co-S²P, "prunes blocks in a rolling manner, starting from the deeper blocks and moving
  upwards, freezing shallower blocks"): the device trains a window of ``k`` consecutive blocks
  ``[f, f+k)`` and holds blocks ``< f`` frozen (forward only: no gradients, no optimizer state, not
  uploaded). The window starts at the deepest position and moves up one block per step of the rolling
  counter, cycling over the ``L−k+1`` positions: ``f = (L−k) − (r mod (L−k+1))``. The counter is
  ``job_index + client`` so that devices of equal capacity sit at different positions at the same time
  and every block keeps being trained. The plan's depth is therefore ``f + k`` (>= k): the frozen
  prefix costs parameter memory but no training memory, which the cost model must account for.

- ``partial`` (TimelyFL, Zhang et al., CVPR-W 2023, "adaptive partial training"): the device holds
  and runs the WHOLE model but trains only its last ``k`` blocks, the output side ``[L−k, L)``;
  blocks ``< L−k`` are frozen (forward only). Backward then stops at block ``L−k``: no gradients,
  optimizer state or saved activations for the frozen prefix. The planner picks ``k`` to fit memory
  and the round's deadline.

Unstructured (``unstructured_sparsity > 0``): full-size model, a per-tensor magnitude mask zeroes the
smallest-magnitude fraction of every >= 2-d trainable weight; the trainer re-applies it after each step.
It saves no memory, which is the point of the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from simulator.errors import InputError
from simulator.learning.models.base import AxisRef, scaled_units
from simulator.learning.submodel import SubmodelPlan, param_block


IMPORTANCE_SCOPES = ("client", "fleet")


@dataclass(frozen=True)
class PruningSettings:
    """How a run cuts submodels (from the scenario's ``algorithm.pruning``)."""

    width: str = "none"
    depth: str = "none"
    unstructured_sparsity: float = 0.0
    importance_ema: float = 0.9       # β: weight of the old score in the moving average
    importance_explore: float = 0.125  # share of an importance plan's units given to exploration
    importance_scope: str = "client"   # "client": each client ranks by its own scores; "fleet": one ranking

    def __post_init__(self) -> None:
        if self.width not in WIDTH_STRATEGIES:
            raise InputError("unknown width pruning strategy", field="algorithm.pruning.width", value=self.width,
                             accepted=", ".join(WIDTH_STRATEGIES))
        if self.depth not in DEPTH_STRATEGIES:
            raise InputError("unknown depth pruning strategy", field="algorithm.pruning.depth", value=self.depth,
                             accepted=", ".join(DEPTH_STRATEGIES))
        if not 0.0 <= self.unstructured_sparsity < 1.0:
            raise InputError("unstructured sparsity must be in [0, 1)", field="algorithm.pruning.unstructured_sparsity",
                             value=self.unstructured_sparsity, accepted="a number in [0, 1)")
        if self.importance_scope not in IMPORTANCE_SCOPES:
            raise InputError("unknown importance scope", field="algorithm.pruning.importance_scope",
                             value=self.importance_scope, accepted=", ".join(IMPORTANCE_SCOPES))
        if not 0.0 <= self.importance_ema < 1.0 or not 0.0 <= self.importance_explore < 1.0:
            raise InputError("importance_ema and importance_explore must be in [0, 1)", field="algorithm.pruning",
                             value=(self.importance_ema, self.importance_explore), accepted="numbers in [0, 1)")


# ------------------------------------------------------------------ the smallest sane width


MIN_CHANNELS = 4  # channels (or neurons, embedding features) a pruned axis keeps at least; heads: 1


def min_width_ratio(width_axes: Mapping[str, int], param_axes: Mapping[str, Sequence[AxisRef | None]],
                    min_channels: int = MIN_CHANNELS) -> float:
    """The smallest width ratio that leaves every axis a sane minimum: at least one unit of an axis
    whose units are groups (attention heads, ``unit_size`` > 1) and at least ``min_channels`` units
    (or the whole axis, if smaller) of any other: ``r = max over axes of need/size``, so that
    ``scaled_units(size, r) = ceil(r·size) >= need`` on every axis, with equality on the binding one.
    0 for a model without axes."""
    unit_size: dict[str, int] = {}
    for refs in param_axes.values():
        for ref in refs:
            if ref is not None:
                unit_size[ref.axis] = max(unit_size.get(ref.axis, 1), int(ref.unit_size))
    ratio = 0.0
    for axis, size in width_axes.items():
        need = 1 if unit_size.get(axis, 1) > 1 else min(int(size), int(min_channels))
        ratio = max(ratio, need / int(size))
    return min(1.0, ratio)


# ------------------------------------------------------------------ importance scores (server side)


class ImportanceTracker:
    """Server-side moving average of per-unit importance, one vector per axis."""

    def __init__(self, width_axes: Mapping[str, int], ema: float = 0.9) -> None:
        self.sizes = dict(width_axes)
        self.ema = float(ema)
        self.score = {a: torch.zeros(n, dtype=torch.float64) for a, n in self.sizes.items()}
        self.last = {a: torch.full((n,), -1, dtype=torch.int64) for a, n in self.sizes.items()}
        self.updates = 0

    def has_scores(self, axis: str) -> bool:
        return bool((self.last[axis] >= 0).any())

    def seen(self, axis: str) -> Tensor:
        return self.last[axis] >= 0

    def update(self, reports: Sequence[tuple[Mapping[str, Tensor] | None, SubmodelPlan, float]]) -> None:
        """Fold one merge's reports in: ``(scores in plan.keep order, plan, weight)`` per client."""
        acc = {a: torch.zeros(n, dtype=torch.float64) for a, n in self.sizes.items()}
        wsum = {a: torch.zeros(n, dtype=torch.float64) for a, n in self.sizes.items()}
        for scores, plan, w in reports:
            if not scores or w <= 0:
                continue
            for axis, values in scores.items():
                if axis not in self.sizes:
                    continue
                units = torch.tensor(plan.keep.get(axis, tuple(range(self.sizes[axis]))), dtype=torch.int64)
                values = values.detach().to(torch.float64).reshape(-1)
                if values.numel() != units.numel() or not torch.isfinite(values).all():
                    continue  # a malformed or diverged report carries no information
                acc[axis].index_add_(0, units, values * float(w))
                wsum[axis].index_add_(0, units, torch.full_like(values, float(w)))
        for axis in self.sizes:
            got = wsum[axis] > 0
            if not got.any():
                continue
            fresh = torch.where(got, acc[axis] / wsum[axis].clamp_min(1e-300), torch.zeros_like(acc[axis]))
            old = self.score[axis]
            mixed = torch.where(self.seen(axis), self.ema * old + (1 - self.ema) * fresh, fresh)
            self.score[axis] = torch.where(got, mixed, old)
            self.last[axis] = torch.where(got, torch.full_like(self.last[axis], self.updates), self.last[axis])
        self.updates += 1


# ------------------------------------------------------------------ width strategies


class WidthStrategy:
    """Chooses ``n`` of ``size`` units of one axis. ``r`` is the rolling counter."""

    name = ""

    def choose(self, axis: str, size: int, n: int, r: int, tracker: ImportanceTracker | None) -> tuple[int, ...]:
        raise NotImplementedError


class StaticWidth(WidthStrategy):
    name = "static"

    def choose(self, axis: str, size: int, n: int, r: int, tracker: ImportanceTracker | None) -> tuple[int, ...]:
        return tuple(range(n))


class RollingWidth(WidthStrategy):
    name = "rolling"

    def choose(self, axis: str, size: int, n: int, r: int, tracker: ImportanceTracker | None) -> tuple[int, ...]:
        start = r % size
        return tuple(sorted((start + i) % size for i in range(n)))


class ImportanceWidth(WidthStrategy):
    name = "importance"

    def __init__(self, explore: float = 0.125) -> None:
        self.explore = float(explore)

    def choose(self, axis: str, size: int, n: int, r: int, tracker: ImportanceTracker | None) -> tuple[int, ...]:
        if n >= size or tracker is None or not tracker.has_scores(axis):
            return tuple(range(n))
        score = tracker.score[axis].tolist()
        seen = tracker.seen(axis).tolist()
        last = tracker.last[axis].tolist()
        n_explore = min(math.floor(self.explore * n), n - 1)
        if n_explore == 0 and n >= 2 and self.explore > 0 and not all(seen):
            n_explore = 1  # small plans still reach never-scored units
        # exploit: best scores first; unseen units rank below every seen one; ties -> lower index
        ranked = sorted(range(size), key=lambda u: (0 if seen[u] else 1, -score[u], u))
        chosen = ranked[: n - n_explore]
        rest = sorted(set(range(size)) - set(chosen), key=lambda u: (last[u], u))
        return tuple(sorted(chosen + rest[:n_explore]))


WIDTH_STRATEGIES: dict[str, type[WidthStrategy]] = {
    "none": StaticWidth,
    "static": StaticWidth,
    "rolling": RollingWidth,
    "importance": ImportanceWidth,
}


# ------------------------------------------------------------------ depth strategies


class DepthStrategy:
    """Maps the trainable block budget ``k`` to ``(depth, trainable_from)``."""

    name = ""

    def choose(self, k: int, total: int, r: int) -> tuple[int, int]:
        raise NotImplementedError


class FixedDepth(DepthStrategy):
    name = "fixed"

    def choose(self, k: int, total: int, r: int) -> tuple[int, int]:
        return k, 0


class RollingDepth(DepthStrategy):
    name = "rolling"

    def choose(self, k: int, total: int, r: int) -> tuple[int, int]:
        positions = total - k + 1
        f = (total - k) - (r % positions)
        return f + k, f


class PartialDepth(DepthStrategy):
    name = "partial"

    def choose(self, k: int, total: int, r: int) -> tuple[int, int]:
        return total, total - k


DEPTH_STRATEGIES: dict[str, type[DepthStrategy]] = {
    "none": FixedDepth, "fixed": FixedDepth, "rolling": RollingDepth, "partial": PartialDepth,
}


def register_width(name: str, cls: type[WidthStrategy]) -> None:
    WIDTH_STRATEGIES[name] = cls


def register_depth(name: str, cls: type[DepthStrategy]) -> None:
    DEPTH_STRATEGIES[name] = cls


# ------------------------------------------------------------------ the planner the learner uses


class Pruner:
    """Builds plans for one run: the width and depth strategies plus the importance state.

    ``tracker`` is the fleet-wide moving average (every report, weighted by its merge weight);
    ``client_trackers[c]`` holds client c's own reports. Which one a plan reads is
    ``settings.importance_scope``.
    """

    def __init__(self, settings: PruningSettings, width_axes: Mapping[str, int], num_blocks: int) -> None:
        self.settings = settings
        self.width_axes = dict(width_axes)
        self.num_blocks = int(num_blocks)
        cls = WIDTH_STRATEGIES[settings.width]
        self.width: WidthStrategy = cls(settings.importance_explore) if cls is ImportanceWidth else cls()
        self.depth: DepthStrategy = DEPTH_STRATEGIES[settings.depth]()
        self.tracker = ImportanceTracker(width_axes, settings.importance_ema)
        self.client_trackers: dict[int, ImportanceTracker] = {}

    @property
    def wants_importance(self) -> bool:
        return isinstance(self.width, ImportanceWidth)

    def tracker_for(self, client: int) -> ImportanceTracker | None:
        """The scores a plan for `client` ranks units by (None: this client has reported nothing)."""
        if self.settings.importance_scope == "fleet":
            return self.tracker
        return self.client_trackers.get(int(client))

    def plan(self, client: int, job_index: int, depth: int, width_ratio: float,
             trainable_from: int | None = None) -> SubmodelPlan:
        """The plan for a device that can train `depth` blocks at `width_ratio`.

        `trainable_from` given explicitly overrides the depth strategy (plan depth = `depth`).
        """
        if not 1 <= depth <= self.num_blocks:
            raise ValueError(f"depth must be in 1..{self.num_blocks}, got {depth}")
        if trainable_from is None:
            full_depth, frozen = self.depth.choose(int(depth), self.num_blocks, int(job_index) + int(client))
        else:
            full_depth, frozen = int(depth), int(trainable_from)
        tracker = self.tracker_for(client)
        keep = {
            axis: self.width.choose(axis, size, scaled_units(size, width_ratio), int(job_index), tracker)
            for axis, size in self.width_axes.items()
        }
        return SubmodelPlan(full_depth, float(width_ratio), keep, frozen, self.settings.unstructured_sparsity)

    def observe(self, reports: Sequence[tuple[int, Mapping[str, Tensor] | None, SubmodelPlan, float]]) -> None:
        """Fold one merge's reports in: ``(client, scores in plan.keep order, plan, merge weight)``."""
        if not self.wants_importance:
            return
        self.tracker.update([(scores, plan, w) for _, scores, plan, w in reports])
        for client, scores, plan, w in reports:
            if scores and w > 0 and client >= 0:
                own = self.client_trackers.get(int(client))
                if own is None:
                    own = self.client_trackers[int(client)] = ImportanceTracker(self.width_axes, self.settings.importance_ema)
                own.update([(scores, plan, 1.0)])  # a client's own reports: equal weight, newest by EMA

    def state(self) -> dict[str, object]:
        """What a checkpoint keeps of the importance scores."""
        return {"fleet": self.tracker, "clients": self.client_trackers}

    def load_state(self, state: object) -> None:
        if isinstance(state, ImportanceTracker):  # a checkpoint from before per-client scores
            self.tracker, self.client_trackers = state, {}
            return
        self.tracker = state["fleet"]  # type: ignore[index]
        self.client_trackers = dict(state["clients"])  # type: ignore[index]


# ------------------------------------------------------------------ unstructured magnitude masks


def magnitude_masks(state: Mapping[str, Tensor], sparsity: float, min_block: int = 0) -> dict[str, Tensor]:
    """Per-tensor masks zeroing the ``floor(sparsity · numel)`` smallest-|w| entries of every
    floating >= 2-d tensor of blocks >= `min_block` (biases and norms are left dense, as usual).

    Ties are broken by position (stable sort), so the mask is a pure function of the values.
    """
    masks: dict[str, Tensor] = {}
    if sparsity <= 0:
        return masks
    for name, t in state.items():
        if t.dim() < 2 or not t.is_floating_point() or param_block(name) < min_block:
            continue
        k = math.floor(sparsity * t.numel())
        mask = torch.ones(t.numel(), dtype=t.dtype)
        if k > 0:
            order = torch.argsort(t.detach().abs().reshape(-1), stable=True)
            mask[order[:k]] = 0
        masks[name] = mask.reshape(t.shape)
    return masks
