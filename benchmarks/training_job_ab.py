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
import sys
import time
from pathlib import Path

import torch
import yaml

from simulator.api import run
from simulator.learning.executors import InlineExecutor, WorkerData

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_overhead import train_plain  # noqa: E402  (the plain loop both benchmarks time)

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
    """The job's local training written as a plain PyTorch loop (training_overhead.train_plain)."""
    s = job.settings
    x, y = data.shard(job.shard)
    model = data.build(job.plan.depth, job.plan.width_ratio)
    train_plain(model, x, y, job.plan, job.local_steps, seed=job.seed, batch_size=s.batch_size, lr=s.lr,
                momentum=s.momentum, weight_decay=s.weight_decay,
                distill=(s.distill_mode, s.distill_weight, s.distill_temperature),
                importance_batches=s.importance_batches)


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
