"""Submodels as slices of the global state: the plan, ``extract`` and the coverage-masked ``merge``.

A :class:`SubmodelPlan` names the blocks a client holds (``depth``), the blocks it trains
(``trainable_from .. depth-1``; the ones below are frozen: held and run forward, never updated or
uploaded) and, per width axis, the retained unit indices (``keep``). Because every model family
declares per tensor dimension which axis indexes it (``param_axes``), slicing and merging need no
knowledge of the family: a unit ``u`` of an axis with ``unit_size`` s owns elements
``u*s .. u*s+s-1`` of every dimension indexed by that axis.

Which block a parameter belongs to is read from its name (:func:`param_block`): ``blocks.{b}.*`` and
``exits.{b}.*`` belong to block b, ``stem.*`` to block 0 (the stem is folded into the first block: it is
held whenever block 0 is, frozen whenever block 0 is). Names are identical in the full model and in
every submodel, so this works on any state dict.

Merging never writes into the global state: it builds new tensors for every parameter some client
covers and *shares* the old tensor object for parameters nobody covers. Old versions stay valid
because nothing in fleetsim ever modifies a state tensor in place (jobs pin old versions by reference).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from simulator.learning.models.base import AxisRef, scaled_units

AxesMap = Mapping[str, Sequence["AxisRef | None"]]


@functools.lru_cache(maxsize=4096)
def param_block(name: str) -> int:
    """The block a state-dict entry belongs to, from its name prefix (cached: merges ask it for
    every tensor of every contribution, and a model has a few hundred names at most).

    ``stem.*`` -> 0, ``blocks.{b}.*`` -> b, ``exits.{b}.*`` -> b. Anything else is a contract
    violation by the model family (every BlockModel parameter lives under stem/blocks/exits).
    """
    head, _, rest = name.partition(".")
    if head == "stem":
        return 0
    if head in ("blocks", "exits"):
        index, _, _ = rest.partition(".")
        if index.isdigit():
            return int(index)
    raise ValueError(f"state entry {name!r} is not under stem., blocks.<b>. or exits.<b>.")


@dataclass(frozen=True)
class SubmodelPlan:
    """What one client holds and trains.

    - ``depth``: blocks (and their exits) held, ``1..L``;
    - ``width_ratio``: fraction of units kept on every axis (``len(keep[a]) == ceil(ratio * size)``);
    - ``keep[axis]``: sorted retained unit indices; an axis missing from ``keep`` is kept whole;
    - ``trainable_from``: blocks ``< trainable_from`` are frozen (forward only, not uploaded, not merged);
    - ``mask_sparsity``: unstructured baseline: this fraction of every >=2-d trainable weight is zeroed
      by magnitude and kept at zero (the tensors stay full size: it saves no memory).

    Treat ``keep`` as read-only (it is a dict only so the plan pickles cheaply).
    """

    depth: int
    width_ratio: float
    keep: dict[str, tuple[int, ...]] = field(default_factory=dict)
    trainable_from: int = 0
    mask_sparsity: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep", {a: tuple(int(u) for u in units) for a, units in self.keep.items()})
        if self.depth < 1:
            raise ValueError(f"plan depth must be >= 1, got {self.depth}")
        if not 0 <= self.trainable_from < self.depth:
            raise ValueError(f"trainable_from must be in 0..depth-1, got {self.trainable_from} (depth {self.depth})")
        if not 0.0 < self.width_ratio <= 1.0:
            raise ValueError(f"width_ratio must be in (0, 1], got {self.width_ratio}")
        if not 0.0 <= self.mask_sparsity < 1.0:
            raise ValueError(f"mask_sparsity must be in [0, 1), got {self.mask_sparsity}")

    def __hash__(self) -> int:  # keep is a dict: hash its frozen items instead
        return hash((self.depth, self.width_ratio, tuple(sorted(self.keep.items())), self.trainable_from,
                     self.mask_sparsity))

    @classmethod
    def full(cls, width_axes: Mapping[str, int], depth: int, trainable_from: int = 0,
             mask_sparsity: float = 0.0) -> "SubmodelPlan":
        """Every unit of every axis, the first `depth` blocks."""
        keep = {a: tuple(range(size)) for a, size in width_axes.items()}
        return cls(depth, 1.0, keep, trainable_from, mask_sparsity)

    def holds(self, block: int) -> bool:
        """The client has this block (trainable or frozen)."""
        return block < self.depth

    def trains(self, block: int) -> bool:
        """The client updates (and uploads) this block."""
        return self.trainable_from <= block < self.depth

    def validate(self, width_axes: Mapping[str, int], num_blocks: int) -> "SubmodelPlan":
        """Check the plan against the full model: depth, axis names, unit counts and ranges."""
        if self.depth > num_blocks:
            raise ValueError(f"plan depth {self.depth} exceeds the model's {num_blocks} blocks")
        for axis, units in self.keep.items():
            if axis not in width_axes:
                raise ValueError(f"plan keeps units of unknown axis {axis!r}")
            size = width_axes[axis]
            want = scaled_units(size, self.width_ratio)
            if len(units) != want:
                raise ValueError(f"axis {axis!r}: {len(units)} units kept, ratio {self.width_ratio} needs {want}")
            if list(units) != sorted(set(units)) or (units and not 0 <= units[0] <= units[-1] < size):
                raise ValueError(f"axis {axis!r}: kept units must be sorted, distinct and in 0..{size - 1}")
        if self.width_ratio < 1.0:
            missing = [a for a in width_axes if a not in self.keep and scaled_units(width_axes[a], self.width_ratio) < width_axes[a]]
            if missing:
                raise ValueError(f"plan with width_ratio {self.width_ratio} lacks unit choices for {missing}")
        return self


# ------------------------------------------------------------------ index helpers


def _element_index(plan: SubmodelPlan, ref: AxisRef, dim_size: int) -> Tensor | None:
    """Element indices kept along a dimension indexed by `ref`, or None when all are kept."""
    units = plan.keep.get(ref.axis)
    if units is None:
        return None
    us = int(ref.unit_size)
    if dim_size % us:
        raise ValueError(f"dimension of size {dim_size} is not a multiple of unit_size {us} (axis {ref.axis!r})")
    n_units = dim_size // us
    if len(units) == n_units:
        return None  # every unit kept (keep is sorted and distinct)
    if units and units[-1] >= n_units:
        raise ValueError(f"axis {ref.axis!r}: unit {units[-1]} out of range for {n_units} units")
    u = torch.tensor(units, dtype=torch.int64)
    return (u[:, None] * us + torch.arange(us, dtype=torch.int64)[None, :]).reshape(-1)


def _dim_indices(shape: Sequence[int], axes: Sequence[AxisRef | None] | None,
                 plan: SubmodelPlan) -> list[Tensor | None]:
    axes = axes if axes is not None else (None,) * len(shape)
    if len(axes) != len(shape):
        raise ValueError(f"{len(axes)} axes declared for a {len(shape)}-d tensor")
    return [None if ref is None else _element_index(plan, ref, int(n)) for ref, n in zip(axes, shape)]


def sub_shape(shape: Sequence[int], axes: Sequence[AxisRef | None] | None, plan: SubmodelPlan) -> tuple[int, ...]:
    """Shape of a tensor of the full model after slicing by `plan` (without building anything)."""
    idx = _dim_indices(shape, axes, plan)
    return tuple(int(n) if i is None else int(i.numel()) for n, i in zip(shape, idx))


def _flat_index(shape: Sequence[int], idx: list[Tensor | None]) -> Tensor:
    """Row-major flat positions in the full tensor of every element of the sliced tensor, in the
    sliced tensor's own row-major order (so ``full.view(-1)[flat] == sliced.reshape(-1)``)."""
    flat = torch.zeros((), dtype=torch.int64)
    for n, i in zip(shape, idx):
        dim = torch.arange(int(n), dtype=torch.int64) if i is None else i
        flat = flat.unsqueeze(-1) * int(n) + dim
    return flat.reshape(-1)


# ------------------------------------------------------------------ extract / merge


def extract(global_state: Mapping[str, Tensor], plan: SubmodelPlan, param_axes: AxesMap,
            copy: bool = True) -> dict[str, Tensor]:
    """The sub-state of `plan`: blocks ``< plan.depth`` only, every axis sliced to ``plan.keep``.

    Returns new tensors (copies), so a job's input can never alias the global state; `copy` False
    returns the global state's own tensors where the plan keeps them whole, for a caller that never
    writes to them (the learner's jobs: the global state is immutable, merges build new tensors).
    """
    out: dict[str, Tensor] = {}
    for name, tensor in global_state.items():
        if param_block(name) >= plan.depth:
            continue
        sub = tensor
        for d, i in enumerate(_dim_indices(tensor.shape, param_axes.get(name), plan)):
            if i is not None:
                sub = sub.index_select(d, i)
        out[name] = sub.clone() if copy and sub is tensor else sub
    return out


def state_bytes(global_state: Mapping[str, Tensor], plan: SubmodelPlan, param_axes: AxesMap,
                trainable_only: bool = False) -> int:
    """Bytes of the plan's sub-state (download size), or of its trainable part (upload size)."""
    total = 0
    for name, tensor in global_state.items():
        b = param_block(name)
        if b >= plan.depth or (trainable_only and b < plan.trainable_from):
            continue
        total += math.prod(sub_shape(tensor.shape, param_axes.get(name), plan)) * tensor.element_size()
    return total


def block_coverage(plans: Iterable[SubmodelPlan], num_blocks: int) -> list[int]:
    """Per block, how many plans train it (frozen blocks do not count: they are not merged)."""
    cover = [0] * num_blocks
    for plan in plans:
        for b in range(plan.trainable_from, min(plan.depth, num_blocks)):
            cover[b] += 1
    return cover


MERGE_MODES = ("absolute", "delta", "damped")


def _check_weight(value: float, what: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} must be finite and >= 0, got {value}")
    return value


def merge(
    global_state: Mapping[str, Tensor],
    contributions: Sequence[tuple[Mapping[str, Tensor], SubmodelPlan, float]],
    param_axes: AxesMap,
    num_blocks: int,
    *,
    mode: str = "absolute",
    base_weight: float = 0.0,
    norm_weights: Sequence[float] | None = None,
    server_lr: float = 1.0,
) -> tuple[dict[str, Tensor], list[int]]:
    """Coverage-masked weighted averaging of sub-states into a NEW global state.

    ``absolute``: per element k, ``θ_k ← (g·θ_k + Σ_i w_i θ_ik) / (g + Σ_i w_i)`` over the clients i
    whose plan trains k (g = `base_weight`; g = 0 is HeteroFL/FedRolex averaging, g = 1−α with one
    client of weight α is FedAsync mixing). ``delta``: the sub-states are updates Δ_i = θ_i − θ_base_i
    and ``θ_k ← θ_k + Σ_i w_i Δ_ik / (g + Σ_i w_i)`` (the weights are *relative*: a buffer whose
    updates are all equally stale is applied at full size). ``damped``: updates again, but the weights
    act *absolutely*: ``θ_k ← θ_k + η · Σ_i w_i Δ_ik / Σ_i m_i`` with m_i = `norm_weights[i]` (the
    client's share, e.g. its samples n_i) and w_i = m_i·s(τ_i), both sums over the clients that train
    k, η = `server_lr`. With equal shares and full models this is FedBuff's server step
    ``θ ← θ + η · (1/K) Σ_i s(τ_i) Δ_i`` (Nguyen et al., AISTATS 2022, Alg. 1); an element trained by
    one stale client alone moves by η·s(τ)·Δ, never by the whole Δ.
    Elements no client trains keep their value. Entries of frozen or absent blocks in a sub-state are
    ignored. Clients with weight 0 change nothing and are not counted in the coverage.

    Returns the new state and, per block, the number of (weight > 0) clients that trained it.
    Accumulation is in float64, so one full client of weight 1 reproduces its state exactly.
    """
    if mode == "damped" and (norm_weights is None or len(norm_weights) != len(contributions)):
        raise ValueError("damped merges need one norm weight per contribution")
    sums = MergeSum(global_state, param_axes, num_blocks, mode=mode, base_weight=base_weight, server_lr=server_lr)
    for i, (sub, plan, w) in enumerate(contributions):
        sums.add(sub, plan, w, norm_weights[i] if mode == "damped" else None)  # type: ignore[index]
    return sums.result()


class MergeSum:
    """A :func:`merge` taken one contribution at a time: ``add`` each (in the merge's order), then
    ``result``.

    Why (issue 16): the learner adds each result as soon as it has it, while the workers still train
    the others, so only the last addition and the division remain once the round's last result is in.
    Every element's float64 sums are built by the same additions in the same order (the order of
    ``add``, whatever order the results reached the process in), so the bits are :func:`merge`'s.
    Holds one float64 sum per covered tensor (8 bytes per parameter) until ``result``; its count is one
    float while every contribution covered the whole tensor (the usual case) and becomes a tensor only
    when a width-pruned one covers a part. That, and multiplying the float32 values by a float64
    weight in one kernel, keeps an addition to two passes over the tensor where it took four (the
    merge was about half of the engine's own CPU in a 2-worker pool run of issue 16's benchmark).
    """

    def __init__(self, global_state: Mapping[str, Tensor], param_axes: AxesMap, num_blocks: int, *,
                 mode: str = "absolute", base_weight: float = 0.0, server_lr: float = 1.0) -> None:
        if mode not in MERGE_MODES:
            raise ValueError(f"unknown merge mode {mode!r}; accepted {MERGE_MODES}")
        self.global_state, self.param_axes, self.num_blocks, self.mode = global_state, param_axes, num_blocks, mode
        self.g = _check_weight(base_weight, "base_weight")
        self.lr = _check_weight(server_lr, "server_lr")
        self._sums: dict[str, list] = {}  # name -> [float64 sum, count: float (uniform) or float64 tensor]
        self._plans: list[SubmodelPlan] = []

    def add(self, sub: Mapping[str, Tensor], plan: SubmodelPlan, weight: float, norm_weight: float | None = None) -> None:
        """One contribution; `norm_weight` (its share m, ``damped`` only) defaults to `weight`."""
        w = _check_weight(weight, "merge weights")
        if self.mode == "damped":
            if norm_weight is None:
                raise ValueError("damped merges need one norm weight per contribution")
            m = _check_weight(norm_weight, "norm weights")
        else:
            m = w
        if w <= 0:
            return
        if self.mode == "damped" and m <= 0:
            raise ValueError("a damped contribution with weight > 0 needs a norm weight > 0")
        self._plans.append(plan)
        # a 1-element float64 tensor: ``float32 · it`` promotes to float64 inside the kernel, the bits
        # of ``values.to(float64) * w`` without the intermediate copy (a 0-d one would not promote)
        w64 = torch.tensor([w], dtype=torch.float64)
        for name, old in self.global_state.items():
            if name not in sub or not plan.trains(param_block(name)):
                continue
            sums = self._sums.get(name)
            if sums is None:
                sums = self._sums[name] = [torch.zeros(old.shape, dtype=torch.float64), 0.0]
            _accumulate(name, old, sub[name], plan, w64, m, self.param_axes, sums)

    def result(self) -> tuple[dict[str, Tensor], list[int]]:
        """The new state and, per block, the number of (weight > 0) contributions that trained it."""
        g, lr, mode = self.g, self.lr, self.mode
        new_state: dict[str, Tensor] = {}
        for name, old in self.global_state.items():
            sums = self._sums.get(name)
            if sums is None:
                new_state[name] = old
                continue
            acc, cnt = sums
            base = old.detach().to(torch.float64)
            if isinstance(cnt, Tensor):
                merged = _merged_masked(mode, acc, cnt, base, g, lr)
            elif mode == "absolute":  # every element covered by the same count (> 0: w > 0 was added)
                merged = (acc + g * base) / max(cnt + g, 1e-300)
            elif mode == "delta":
                merged = base + acc / max(cnt + g, 1e-300)
            else:
                merged = base + lr * acc / max(cnt, 1e-300)
            if not old.is_floating_point():
                merged = merged.round()
            new_state[name] = merged.to(old.dtype)
        return new_state, block_coverage(self._plans, self.num_blocks)


def _merged_masked(mode: str, acc: Tensor, cnt: Tensor, base: Tensor, g: float, lr: float) -> Tensor:
    """The merged float64 tensor where coverage varies per element (uncovered ones keep `base`)."""
    covered = cnt > 0
    if mode == "absolute":
        return torch.where(covered, (acc + g * base) / (cnt + g).clamp_min(1e-300), base)
    if mode == "delta":
        return base + torch.where(covered, acc / (cnt + g).clamp_min(1e-300), torch.zeros_like(base))
    return base + torch.where(covered, lr * acc / cnt.clamp_min(1e-300), torch.zeros_like(base))


def _accumulate(name: str, old: Tensor, tensor: Tensor, plan: SubmodelPlan, w64: Tensor, m: float,
                param_axes: AxesMap, sums: list) -> None:
    """Add ``w·value`` to the float64 sum and ``m`` to the count where the contribution holds it.

    ``sums`` is ``[sum, count]``; a uniform (float) count turns into a tensor at the first partial
    contribution, filled with the float it had reached, so every element's count is still the same
    additions in the same order."""
    idx = _dim_indices(old.shape, param_axes.get(name), plan)
    want = tuple(int(n) if i is None else int(i.numel()) for n, i in zip(old.shape, idx))
    if tuple(tensor.shape) != want:
        raise ValueError(f"{name}: contribution has shape {tuple(tensor.shape)}, plan implies {want}")
    acc, cnt = sums
    values = tensor.detach()
    if all(i is None for i in idx):
        acc.add_(torch.mul(values, w64))
        if isinstance(cnt, Tensor):
            cnt += m
        else:
            sums[1] = cnt + m
        return
    if not isinstance(cnt, Tensor):
        cnt = sums[1] = torch.full(old.shape, cnt, dtype=torch.float64)
    flat = _flat_index(old.shape, idx)
    acc.view(-1).index_add_(0, flat, torch.mul(values.reshape(-1), w64))
    cnt.view(-1).index_add_(0, flat, torch.full((flat.numel(),), m, dtype=torch.float64))


def subtract(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``a − b`` for every entry of `a` (an update relative to its base), computed in a's dtype."""
    return {name: t - b[name] for name, t in a.items()}
