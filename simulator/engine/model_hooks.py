"""What the server calls on the learning side at each job event, in three flavours.

- timing-only: nothing to train or merge;
- live: the Learner trains and merges for real;
- replay (resume): the same calls are ignored until the checkpoint's event, then go live.
"""

from __future__ import annotations

from typing import Any

from simulator.fleet.device import Job


class TimingHooks:
    """Timing-only runs: no model, nothing to merge."""

    noop = True  # the server may skip calling these

    def dispatch(self, job: Job) -> None: ...
    def start(self, job: Job) -> None: ...
    def discard(self, job: Job) -> None: ...
    def merge(self, weighted: list[tuple[Job, float]], mode: str, global_weight: float) -> None: ...


class LearnerHooks:
    """Connects job lifecycle events to the Learner (real PyTorch). `live` False: ignore calls."""

    def __init__(self, learner: Any, live: bool = True) -> None:
        self.learner = learner
        self.live = live

    def dispatch(self, job: Job) -> None:
        if self.live:
            self.learner.dispatch_job(
                job.job_id, job.device.index, job.device.jobs, job.depth, job.width_ratio, job.trainable_from
            )

    def start(self, job: Job) -> None:
        if self.live:
            self.learner.start(job.job_id, job.local_steps)

    def discard(self, job: Job) -> None:
        if self.live:
            self.learner.discard(job.job_id)

    def merge(self, weighted: list[tuple[Job, float]], mode: str, global_weight: float) -> None:
        if self.live:
            self.learner.merge_jobs([(job.job_id, weight) for job, weight in weighted], mode, global_weight)
