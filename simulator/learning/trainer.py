"""Local training of one job: the pure function every executor runs.

``run_job(job, x, y, model_factory)`` builds the plan's submodel, loads the job's sub-state, runs
``local_steps`` optimizer steps on the client's shard and returns the updated trainable entries. It
depends on nothing but its arguments: batches come from a ``torch.Generator`` seeded with
``job.seed``, the global torch RNG (dropout, if a model has any) is forked and seeded with it too, and
the job runs on ONE intra-op thread (CPU kernels may reduce in a thread-count-dependent order), so the
same job gives bitwise the same result inline, in a process pool or on Ray.

Frozen blocks (``< plan.trainable_from``) run forward under ``no_grad`` and their exits are not
evaluated: they cannot change, so their CE/KD terms would carry no gradient. The returned state holds
only the trainable blocks' entries (what the device uploads and the server merges).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simulator.learning.distill import DISTILL_MODES, exit_losses
from simulator.learning.pruning import magnitude_masks
from simulator.learning.submodel import SubmodelPlan, param_block

ModelFactory = Callable[[int | None, float], nn.Module]  # (depth or None = all, width_ratio) -> BlockModel
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class TrainingSettings:
    """Fixed for a run (the scenario's workload + algorithm)."""

    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    distill_mode: str = "off"      # "off" | "deepest" | "mutual" | "global"
    importance_batches: int = 0    # batches used for Taylor importance (0 = not computed)
    exits: str = "all"             # "all": every trainable block's exit learns; "final": the deepest only

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; accepted {OPTIMIZERS}")
        if self.distill_mode not in DISTILL_MODES:
            raise ValueError(f"unknown distillation mode {self.distill_mode!r}; accepted {DISTILL_MODES}")
        if self.exits not in ("all", "final"):
            raise ValueError(f"unknown exits {self.exits!r}; accepted ('all', 'final')")
        if self.batch_size < 1 or self.importance_batches < 0:
            raise ValueError("batch_size must be >= 1 and importance_batches >= 0")


@dataclass
class TrainJob:
    """Everything a worker needs; picklable; fixed when the device starts computing."""

    job_id: int
    device: int
    seed: int
    plan: SubmodelPlan
    state: dict[str, Tensor]  # extracted sub-state of the base version (all held blocks)
    shard: int                # client data shard index (the worker holds the dataset)
    local_steps: int
    settings: TrainingSettings
    teacher: dict[str, Tensor] | None = None  # "global" distillation: the full global state of the base version
    # The global state `state` was extracted from (one dict shared by the jobs of a version, never
    # written in place). A worker process or actor is sent it once and rebuilds `state` itself
    # (executors.bases.JobOnBase), instead of receiving `state` with every job.
    base_state: dict[str, Tensor] | None = None


@dataclass
class TrainResult:
    job_id: int
    state: dict[str, Tensor]              # trainable blocks only, detached CPU tensors
    num_samples: int                      # shard size (the usual FedAvg weight)
    train_loss: float                     # mean total loss over the local steps
    importance: dict[str, Tensor] | None  # axis -> per-unit score, in plan.keep order
    steps: int = 0
    samples_seen: int = 0
    ce_loss: float = 0.0                  # mean Σ-over-exits CE part
    kd_loss: float = 0.0                  # mean KD part (before the weight λ)


@contextmanager
def single_thread() -> Iterator[None]:
    """Torch on one intra-op thread inside, the previous count restored afterwards."""
    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


@contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """One intra-op thread and a private global RNG seeded with `seed`, restored afterwards."""
    with single_thread():
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only: torch.manual_seed would also queue lazy CUDA/XPU/MTIA seeding,
            # each capturing a stack trace (~1 ms per job on a CPU-only host); jobs run on the CPU.
            torch.default_generator.manual_seed(int(seed))
            yield


class BatchSampler:
    """Seeded shuffled passes over ``n`` samples; fixed-size batches, the remainder of a pass dropped."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        if n < 1:
            raise ValueError("a client shard must hold at least one sample")
        self.n, self.b, self.gen = n, min(batch_size, n), generator
        self.perm = torch.randperm(n, generator=generator)
        self.pos = 0

    def next(self) -> Tensor:
        if self.pos + self.b > self.n:
            self.perm = torch.randperm(self.n, generator=self.gen)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.b]
        self.pos += self.b
        return idx


def forward_trainable(model: nn.Module, x: Tensor, plan: SubmodelPlan, final_only: bool = False) -> list[Tensor]:
    """Logits of the trainable exits; the frozen prefix runs under no_grad (same composition as
    ``BlockModel.forward``). `final_only`: just the deepest exit's (an algorithm without depth pruning
    or distillation trains one classifier, as the planner costs it: ``TrainingSettings.exits``)."""
    f = plan.trainable_from
    if f == 0 and not final_only:
        return model(x)
    if final_only:
        with torch.set_grad_enabled(torch.is_grad_enabled() and f == 0):
            h = model.stem(x)
            for b in range(f):
                h = model.blocks[b](h)
        for b in range(f, plan.depth):
            h = model.blocks[b](h)
        return [model.exits[plan.depth - 1](h)]
    with torch.no_grad():
        h = model.stem(x)
        for b in range(f):
            h = model.blocks[b](h)
    outs = []
    for b in range(f, plan.depth):
        h = model.blocks[b](h)
        outs.append(model.exits[b](h))
    return outs


def _optimizer(params: list[nn.Parameter], s: TrainingSettings) -> torch.optim.Optimizer:
    """``foreach=True``: on CPU torch defaults to one Python-level update per tensor; the multi-tensor
    path does the same arithmetic in one call, bit-identical (checked on the vit-b-proxy's 219 tensors
    over 40 steps) and 17 % faster per Adam training step of that proxy (BENCHMARKS.md §2). ``fused``
    would be 7× faster still in the optimizer but rounds differently, so traces would change."""
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay, foreach=True)
    return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay, foreach=True)


def taylor_importance(model: nn.Module, plan: SubmodelPlan, batches: list[tuple[Tensor, Tensor]],
                      final_only: bool = False) -> dict[str, Tensor]:
    """``|Σ_{w∈u} w·∂L/∂w|`` per unit, averaged over `batches` (L = CE summed over trainable exits).

    Only axes whose every parameter is trainable are scored (a partly frozen axis would be judged on
    a fraction of its weights). Scores are in the submodel's unit order, i.e. ``plan.keep`` order.
    """
    named = dict(model.named_parameters())
    refs: dict[str, list[tuple[str, int, int]]] = {}
    blocked: set[str] = set()
    for name, axes in model.param_axes().items():
        for d, ref in enumerate(axes):
            if ref is None:
                continue
            p = named.get(name)
            if p is None or not p.requires_grad:
                blocked.add(ref.axis)
            else:
                refs.setdefault(ref.axis, []).append((name, d, int(ref.unit_size)))
    refs = {a: r for a, r in refs.items() if a not in blocked}
    if not refs or not batches:
        return {}
    names = sorted({n for r in refs.values() for n, _, _ in r})
    params = [named[n] for n in names]
    totals: dict[str, Tensor] = {}
    for xb, yb in batches:
        logits = forward_trainable(model, xb, plan, final_only)
        loss = torch.stack([F.cross_entropy(z, yb) for z in logits]).sum()
        grads = dict(zip(names, torch.autograd.grad(loss, params, allow_unused=True)))
        for axis, items in refs.items():
            signed: Tensor | None = None
            for name, d, us in items:
                g = grads[name]
                if g is None:
                    continue
                p = named[name].detach()
                per_elem = (p.double() * g.double()).movedim(d, 0).reshape(p.shape[d], -1).sum(1)
                per_unit = per_elem.reshape(-1, us).sum(1)
                signed = per_unit if signed is None else signed + per_unit
            if signed is not None:
                totals[axis] = totals.get(axis, 0) + signed.abs()
    return {a: (t / len(batches)).to(torch.float32) for a, t in totals.items()}


def _teacher_model(job: TrainJob, model_factory: ModelFactory) -> nn.Module | None:
    """The whole global model of the job's base version, for ``global`` distillation (else None)."""
    if job.teacher is None or job.settings.distill_mode != "global" or job.settings.distill_weight <= 0:
        return None
    teacher = model_factory(None, 1.0)
    teacher.load_state_dict(job.teacher, strict=True)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def run_job(job: TrainJob, x: Tensor, y: Tensor, model_factory: ModelFactory) -> TrainResult:
    """Train the job's submodel on the shard ``(x, y)``; same job -> bitwise the same result."""
    plan, s = job.plan, job.settings
    with deterministic(job.seed):
        model = model_factory(plan.depth, plan.width_ratio)
        model.load_state_dict(job.state, strict=True)
        model.train()
        trainable: list[nn.Parameter] = []
        for name, p in model.named_parameters():
            p.requires_grad_(param_block(name) >= plan.trainable_from)
            if p.requires_grad:
                trainable.append(p)
        named = dict(model.named_parameters())
        masks = magnitude_masks({n: named[n].detach() for n in named}, plan.mask_sparsity, plan.trainable_from)

        def apply_masks() -> None:
            with torch.no_grad():
                for n, m in masks.items():
                    named[n].mul_(m)

        apply_masks()
        teacher = _teacher_model(job, model_factory)
        gen = torch.Generator().manual_seed(int(job.seed))
        sampler = BatchSampler(len(y), s.batch_size, gen)
        opt = _optimizer(trainable, s) if trainable else None
        total = ce_total = kd_total = 0.0
        seen = 0
        for _ in range(job.local_steps):
            idx = sampler.next()
            xb, yb = x[idx], y[idx]
            soft = None
            if teacher is not None:  # the global model's deepest exit, forward only
                with torch.no_grad():
                    soft = teacher(xb)[-1]
            logits = forward_trainable(model, xb, plan, s.exits == "final")
            if len(logits) == 1 and soft is None and s.distill_temperature > 0:
                # one exit, no teacher: exit_losses would add 0·kd to a one-element sum, the same
                # bits and gradients through five more autograd nodes per step (1-2 % of a small CNN's)
                loss = F.cross_entropy(logits[0], yb)
                ce = loss.detach()
                kd = 0.0
            else:
                loss, ce, kd = exit_losses(logits, yb, s.distill_mode, s.distill_weight, s.distill_temperature, soft)
            if opt is not None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                apply_masks()
            total += float(loss.detach())
            ce_total += float(ce)
            kd_total += float(kd)
            seen += int(idx.numel())
        importance = None
        if s.importance_batches > 0:
            batches = [(x[i], y[i]) for i in (sampler.next() for _ in range(s.importance_batches))]
            importance = taylor_importance(model, plan, batches, s.exits == "final")
        state = {
            name: t.detach().to("cpu", copy=True).contiguous()
            for name, t in model.state_dict().items()
            if param_block(name) >= plan.trainable_from
        }
    steps = max(job.local_steps, 1)
    mean = (lambda v: v / steps) if job.local_steps else (lambda v: math.nan)
    return TrainResult(job.job_id, state, int(len(y)), mean(total), importance, job.local_steps, seen,
                       mean(ce_total), mean(kd_total))
