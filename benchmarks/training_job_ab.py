"""fleetsim's job code against a plain PyTorch loop on the same jobs, alternating in one process.

Why: ``training_overhead.py`` compares a whole simulation run with a plain loop run afterwards, and on
a shared 2-core host runs seconds apart differ by ±10 %. This isolates the per-job code: it captures
the quickstart's accepted jobs (50 versions) from a real run, then times ``WorkerData.run`` on all of
them and a plain loop doing the same training (same shard, submodel, frozen prefix, batches, SGD,
losses, Taylor importance), alternately, three times.

    python benchmarks/training_job_ab.py
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
import yaml

from simulator.api import run
from simulator.learning.distill import exit_losses
from simulator.learning.executors import InlineExecutor, WorkerData
from simulator.learning.submodel import param_block
from simulator.learning.trainer import forward_trainable, taylor_importance

ROOT = Path(__file__).resolve().parent.parent


class _Capture(InlineExecutor):
    """The inline executor, keeping every job it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list = []
        self.context = None

    def bind(self, context, data=None):  # noqa: ANN001
        self.context = context
        super().bind(context, data)

    def submit(self, job):  # noqa: ANN001
        self.jobs.append(job)
        return super().submit(job)


def plain_job(data: WorkerData, job) -> None:  # noqa: ANN001
    """The job's local training written as a plain PyTorch loop."""
    plan, s = job.plan, job.settings
    x, y = data.shard(job.shard)
    model = data.build(plan.depth, plan.width_ratio)
    model.train()
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(param_block(name) >= plan.trainable_from)
        if p.requires_grad:
            params.append(p)
    opt = torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    gen = torch.Generator().manual_seed(job.seed)
    b = min(s.batch_size, len(y))
    perm, pos = torch.randperm(len(y), generator=gen), 0

    def pick() -> torch.Tensor:
        nonlocal perm, pos
        if pos + b > len(y):
            perm, pos = torch.randperm(len(y), generator=gen), 0
        idx = perm[pos:pos + b]
        pos += b
        return idx

    for _ in range(job.local_steps):
        i = pick()
        loss, _, _ = exit_losses(forward_trainable(model, x[i], plan), y[i], s.distill_mode, s.distill_weight,
                                 s.distill_temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if s.importance_batches:
        taylor_importance(model, plan, [(x[i], y[i]) for i in (pick() for _ in range(s.importance_batches))])


def main() -> None:
    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data["stop"] = {"max_versions": 50}
    capture = _Capture()
    result = run(copy.deepcopy(data), out=Path("/tmp/fleetsim-job-ab"), force=True, report=False, executor=capture)
    accepted = set(result.updates[result.updates.outcome == "accepted"].job_id)
    jobs = [j for j in capture.jobs if j.job_id in accepted]
    worker = WorkerData(capture.context)
    torch.set_num_threads(1)
    for _ in range(3):
        start = time.perf_counter()
        for job in jobs:
            worker.run(job)
        fleetsim_s = time.perf_counter() - start
        start = time.perf_counter()
        for job in jobs:
            plain_job(worker, job)
        plain_s = time.perf_counter() - start
        print(f"{len(jobs)} jobs: fleetsim run_job {fleetsim_s:.2f} s, plain loop {plain_s:.2f} s, "
              f"ratio {fleetsim_s / plain_s:.3f}", flush=True)


if __name__ == "__main__":
    main()
