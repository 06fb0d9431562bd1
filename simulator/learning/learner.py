"""The Learner: the engine's one door to PyTorch.

It holds the dataset and partition, the global model state and its version, the importance scores
and a table of in-flight jobs. Time does not exist here: the engine calls ``dispatch`` when a
download starts (the job pins the current global state by reference), ``start`` when the device
starts computing (the sub-state is extracted and the job submitted), ``result``/``merge`` when the
upload has arrived and the policy merges it, ``discard`` when the job is lost or dropped. Merges
build new tensors and never write in place, so pinned old versions stay valid for as long as a job
needs them.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from simulator.config.algorithm import exit_mode
from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
from simulator.learning.data import label_histograms
from simulator.learning.executors import Executor, InlineExecutor, JobFuture, WorkerContext, WorkerData
from simulator.learning.pruning import Pruner, PruningSettings
from simulator.learning.submodel import MergeSum, SubmodelPlan, extract, state_bytes, subtract
from simulator.learning.trainer import TrainingSettings, TrainJob, TrainResult, single_thread

_MODEL_TAG, _JOB_TAG = 0x6D6F64, 0x6A6F62


@dataclass(frozen=True)
class EvalResult:
    version: int
    accuracy: float                      # deepest exit of the full global model
    loss: float                          # mean CE of the deepest exit
    exit_accuracy: tuple[float, ...]     # every exit, shallowest first


@dataclass
class _Job:
    client: int
    plan: SubmodelPlan
    base: dict[str, Tensor]              # the pinned global state (a reference)
    base_version: int
    future: JobFuture[TrainResult] | None = None
    result: TrainResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def settings_from_config(workload: Any, algorithm: Any) -> tuple[TrainingSettings, PruningSettings]:
    """Settings from a scenario's ``Workload`` and a ``ResolvedAlgorithm`` (duck-typed)."""
    opt, dist, prun = workload.optimizer, algorithm.distillation, algorithm.pruning
    importance = prun.width == "importance"
    training = TrainingSettings(
        batch_size=workload.batch_size, optimizer=opt.name, lr=opt.lr, momentum=opt.momentum,
        weight_decay=opt.weight_decay, distill_weight=dist.weight, distill_temperature=dist.temperature,
        distill_mode=dist.mode, importance_batches=prun.importance_batches if importance else 0,
        exits=exit_mode(prun, dist),
    )
    pruning = PruningSettings(width=prun.width, depth=prun.depth, unstructured_sparsity=prun.unstructured_sparsity,
                              importance_scope=prun.importance_scope)
    return training, pruning


class Learner:
    """Global model, plans, jobs, merges and evaluation for one run."""

    def __init__(self, model_spec: ModelSpec, dataset_spec: DatasetSpec, partition_spec: PartitionSpec,
                 num_clients: int, settings: TrainingSettings, pruning: PruningSettings | None = None,
                 seed: int = 0, executor: Executor | None = None, eval_batch_size: int = 512) -> None:
        self.settings = settings
        self.seed = int(seed)
        context = WorkerContext(model_spec, dataset_spec, partition_spec, int(num_clients), self.seed)
        self.data = WorkerData(context)
        model_seed = int(np.random.SeedSequence([self.seed, _MODEL_TAG]).generate_state(1, np.uint64)[0] >> 1)
        self.model = self.data.build(seed=model_seed)
        self.model.eval()
        self.param_axes = self.model.param_axes()
        self.width_axes = self.model.width_axes()
        self.num_blocks = int(self.model.full_depth)
        self.pruner = Pruner(pruning or PruningSettings(), self.width_axes, self.num_blocks)
        if not self.pruner.wants_importance and settings.importance_batches:
            self.settings = replace(settings, importance_batches=0)  # nobody would read the scores
        self._state: dict[str, Tensor] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.version = 0
        self.eval_batch_size = int(eval_batch_size)
        self._jobs: dict[int, _Job] = {}
        self._eval_thread: cf.ThreadPoolExecutor | None = None  # started by the first evaluation
        self.executor: Executor = executor if executor is not None else InlineExecutor()
        self.executor.bind(context, self.data)

    @classmethod
    def from_config(cls, workload: Any, algorithm: Any, num_clients: int, seed: int,
                    executor: Executor | None = None, eval_batch_size: int = 512) -> "Learner":
        """From a scenario's ``Workload`` (its ``train_model`` if set, else ``model``) and a
        ``ResolvedAlgorithm``."""
        training, pruning = settings_from_config(workload, algorithm)
        model = workload.train_model or workload.model
        return cls(model, workload.dataset, workload.partition, num_clients, training, pruning, seed, executor,
                   eval_batch_size)

    # ------------------------------------------------------------------ data

    @property
    def num_classes(self) -> int:
        return int(self.data.dataset.num_classes)

    @property
    def global_state(self) -> dict[str, Tensor]:
        """The current global state (do not modify it in place)."""
        return self._state

    def num_samples(self, client: int) -> int:
        return int(len(self.data.parts[client]))

    def label_histograms(self) -> np.ndarray:
        parts = [p.numpy() for p in self.data.parts]
        return label_histograms(self.data.dataset.y_train.numpy(), parts, self.num_classes)

    def local_steps(self, client: int, epochs: float) -> int:
        """Steps for `epochs` passes over the client's shard (at least 1)."""
        n = self.num_samples(client)
        return max(1, math.ceil(epochs * n / min(self.settings.batch_size, n)))

    # ------------------------------------------------------------------ plans and jobs

    def plan(self, client: int, job_index: int, depth: int, width_ratio: float,
             trainable_from: int | None = None) -> SubmodelPlan:
        """The submodel for this job. `depth` is the number of blocks the device trains; under the
        ``rolling`` depth strategy the plan also holds a frozen prefix (see pruning.py). An explicit
        `trainable_from` bypasses the depth strategy. `job_index` is the rolling counter."""
        return self.pruner.plan(client, job_index, depth, width_ratio, trainable_from).validate(
            self.width_axes, self.num_blocks)

    def state_bytes(self, plan: SubmodelPlan, trainable_only: bool = False) -> int:
        """Download size of the plan's sub-state (``trainable_only``: the upload size)."""
        return state_bytes(self._state, plan, self.param_axes, trainable_only)

    def dispatch(self, job_id: int, client: int, plan: SubmodelPlan) -> None:
        """Pin the current global version for this job (called when its download starts)."""
        if job_id in self._jobs:
            raise ValueError(f"job {job_id} dispatched twice")
        if not 0 <= client < len(self.data.parts):
            raise ValueError(f"client {client} out of range 0..{len(self.data.parts) - 1}")
        self._jobs[job_id] = _Job(client, plan, self._state, self.version)

    def dispatch_job(self, job_id: int, client: int, job_index: int, depth: int, width_ratio: float,
                     trainable_from: int | None = None) -> SubmodelPlan:
        """``plan`` + ``dispatch`` in one call; returns the plan."""
        plan = self.plan(client, job_index, depth, width_ratio, trainable_from)
        self.dispatch(job_id, client, plan)
        return plan

    def job_seed(self, client: int, job_id: int) -> int:
        return int(np.random.SeedSequence([self.seed, _JOB_TAG, int(client), int(job_id)])
                   .generate_state(1, np.uint64)[0] >> 1)

    def start(self, job_id: int, local_steps: int) -> None:
        """Extract the pinned sub-state and submit the job (called when the device starts computing)."""
        job = self._jobs[job_id]
        if job.future is not None:
            raise ValueError(f"job {job_id} started twice")
        # no copies: a job only reads its state (load_state_dict copies it into the model), and the
        # global state is never written in place; a clone per tensor was ~0.4 s of a pool run's engine
        sub = extract(job.base, job.plan, self.param_axes, copy=False)
        train_job = TrainJob(job_id, job.client, self.job_seed(job.client, job_id), job.plan, sub, job.client,
                             int(local_steps), self.settings, self._teacher(job), base_state=job.base)
        job.future = self.executor.submit(train_job)

    def _teacher(self, job: _Job) -> dict[str, Tensor] | None:
        """``global`` distillation: a client that lacks part of the model (fewer blocks or units) is
        taught by the whole global model of its base version; one that holds it all is not."""
        if self.settings.distill_mode != "global" or self.settings.distill_weight <= 0:
            return None
        if job.plan.depth == self.num_blocks and job.plan.width_ratio >= 1.0:
            return None
        return job.base

    def result(self, job_id: int) -> TrainResult:
        """The job's result; waits only if it is not done yet."""
        job = self._jobs[job_id]
        if job.result is None:
            if job.future is None:
                raise ValueError(f"job {job_id} was never started")
            job.result = job.future.result()
            job.future = None
        return job.result

    def discard(self, job_id: int) -> None:
        """Forget a lost, failed or dropped job (unknown ids are ignored)."""
        job = self._jobs.pop(job_id, None)
        if job is not None and job.future is not None:
            job.future.cancel()

    def base_version(self, job_id: int) -> int:
        return self._jobs[job_id].base_version

    # ------------------------------------------------------------------ merging

    def merge(self, contributions: Sequence[tuple[TrainResult, SubmodelPlan, float]], mode: str = "absolute",
              global_weight: float = 0.0) -> list[int]:
        """Merge results into a new global version; returns per-block coverage.

        ``absolute``: coverage-masked weighted mean of the client models (with `global_weight` g the
        current value joins with weight g: FedAsync mixing). ``delta``: each result is turned into
        its update against the version its job pinned (so stale updates apply as deltas, FedBuff)
        and ``θ ← θ + Σ w Δ / (g + Σ w)`` per covered element (relative weights). ``damped``: the
        same updates with absolute staleness damping, ``θ ← θ + η Σ w Δ / Σ n`` per covered element,
        where n is each result's sample count, w = n·s(τ) the policy's weight and η = `global_weight`
        (the server learning rate); see :func:`simulator.learning.submodel.merge`.
        """
        sums = self._merge_sum(mode, global_weight)
        for res, plan, w in contributions:
            self._add(sums, res, plan, w, mode)
        return self._commit(sums, contributions)

    def merge_jobs(self, weighted: Sequence[tuple[int, float]], mode: str = "absolute",
                   global_weight: float = 0.0) -> list[int]:
        """``merge`` by job ids, streamed: each result is added to the weighted sums as soon as it is
        in (in the order given, so the bits are ``merge``'s), while later ones still train."""
        sums = self._merge_sum(mode, global_weight)
        contributions = []
        for j, w in weighted:
            res, plan = self.result(j), self._jobs[j].plan
            self._add(sums, res, plan, w, mode)
            contributions.append((res, plan, w))
        return self._commit(sums, contributions)

    def _merge_sum(self, mode: str, global_weight: float) -> MergeSum:
        if mode == "damped":
            return MergeSum(self._state, self.param_axes, self.num_blocks, mode=mode, server_lr=global_weight)
        return MergeSum(self._state, self.param_axes, self.num_blocks, mode=mode, base_weight=global_weight)

    def _add(self, sums: MergeSum, res: TrainResult, plan: SubmodelPlan, w: float, mode: str) -> None:
        if mode in ("delta", "damped"):
            job = self._jobs.get(res.job_id)
            if job is None:
                raise ValueError(f"{mode} merge needs job {res.job_id}'s base version; it was discarded or merged")
            sub = subtract(res.state, extract(job.base, plan, self.param_axes, copy=False))
        else:
            sub = res.state
        sums.add(sub, plan, w, float(res.num_samples) if mode == "damped" else None)

    def _commit(self, sums: MergeSum, contributions: Sequence[tuple[TrainResult, SubmodelPlan, float]]) -> list[int]:
        new_state, coverage = sums.result()
        self.pruner.observe([(self._jobs[res.job_id].client if res.job_id in self._jobs else -1,
                              res.importance, plan, w) for res, plan, w in contributions])
        self._state = new_state
        self.version += 1
        for res, _, _ in contributions:
            self._jobs.pop(res.job_id, None)
        return coverage

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> EvalResult:
        """Accuracy and loss of the full global model (deepest exit) on the held-out split, plus the
        accuracy of every exit; waits for it (see :meth:`evaluate_later`)."""
        return self.evaluate_later().result()

    def evaluate_later(self) -> cf.Future[EvalResult]:
        """Start evaluating the current version in the learner's evaluation thread; its future.

        Why (issue 16): with a process pool, the 21 evaluations of the small-clients benchmark were
        ~0.4 s of the main process's serial work, the workers idle meanwhile. Started here and
        collected later, an evaluation of version v runs while the workers train the jobs of v+1
        (torch releases the GIL in its ops). Same numbers: the version's state is immutable (merges
        build new tensors), and the thread runs torch on ONE intra-op thread, like every training
        job, so they do not depend on the host's core count either (with a pool, the main process's
        OpenMP threads no longer fight the workers for the cores: on 2 cores with 2 workers that made
        evaluation ~18x slower). One thread, so evaluations finish in the order they were asked for.
        """
        if self._eval_thread is None:
            self._eval_thread = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetsim-eval")
        return self._eval_thread.submit(self._evaluate_one_thread, self._state, self.version)

    def _evaluate_one_thread(self, state: dict[str, Tensor], version: int) -> EvalResult:
        with single_thread():  # the intra-op thread count is per thread (OpenMP): set it in this one
            return self._evaluate(state, version)

    @torch.no_grad()
    def _evaluate(self, state: dict[str, Tensor], version: int) -> EvalResult:
        self.model.load_state_dict(state)
        self.model.eval()
        x, y = self.data.dataset.x_test, self.data.dataset.y_test
        correct = torch.zeros(self.num_blocks, dtype=torch.int64)
        loss_sum = 0.0
        for i in range(0, len(y), self.eval_batch_size):
            xb, yb = x[i:i + self.eval_batch_size], y[i:i + self.eval_batch_size]
            outs = self.model(xb)
            for b, z in enumerate(outs):
                correct[b] += int((z.argmax(dim=-1) == yb).sum())
            loss_sum += float(F.cross_entropy(outs[-1].double(), yb, reduction="sum"))
        n = max(len(y), 1)
        acc = (correct.double() / n).tolist()
        return EvalResult(version, acc[-1], loss_sum / n, tuple(acc))

    # ------------------------------------------------------------------ checkpoints

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here (checkpoint.py stores it as safetensors + JSON).

        Jobs already started are finished first, so a snapshot holds results, never futures: the
        resumed run does not depend on an executor's in-flight state.
        """
        jobs = {}
        for job_id, job in self._jobs.items():
            result = self.result(job_id) if job.future is not None else job.result
            jobs[job_id] = {"client": job.client, "plan": job.plan, "base": job.base,
                            "base_version": job.base_version, "result": result, "extra": job.extra}
        return {"state": self._state, "version": self.version, "jobs": jobs, "tracker": self.pruner.state()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` (of a learner built from the same specs and seed)."""
        self._state = snapshot["state"]
        self.version = int(snapshot["version"])
        self.pruner.load_state(snapshot["tracker"])
        self._jobs = {
            int(job_id): _Job(j["client"], j["plan"], j["base"], j["base_version"], None, j["result"], j["extra"])
            for job_id, j in snapshot["jobs"].items()
        }

    def close(self) -> None:
        """Shut the executor and the evaluation thread down (evaluations asked for still finish) and
        forget pending jobs."""
        for job_id in list(self._jobs):
            self.discard(job_id)
        self.executor.shutdown()
        if self._eval_thread is not None:
            self._eval_thread.shutdown(wait=True)
            self._eval_thread = None
