"""Synchronous rounds (FedAvg): dispatch, wait for all, the first n of an over-selection, or a deadline; merge."""

from __future__ import annotations

import math

from pydantic import Field

from simulator.server.policy import AggregationPolicy, JobView, PolicyParams, ServerView, Timer


class SyncParams(PolicyParams):
    policy: str = "sync"
    clients_per_round: int | None = Field(default=None, ge=1, description="default: every idle device")
    over_selection: float = Field(default=1.0, ge=1.0, description="select this many times more; keep the first")
    deadline_s: float | None = Field(default=None, gt=0, description="drop updates not in by then")


class Synchronous(AggregationPolicy):
    """FedAvg rounds: dispatch, wait for all (or the first n of an over-selection, or the deadline), merge."""

    name = "sync"
    Params = SyncParams
    params: SyncParams

    def __init__(self, params: SyncParams) -> None:
        super().__init__(params)
        self._round: dict[int, JobView] = {}
        self._arrived: list[JobView] = []
        self._needed = 0
        self._deadline: Timer | None = None
        self._waiting_for_devices = False

    def start(self, server: ServerView) -> None:
        self._start_round(server)

    def _start_round(self, server: ServerView) -> None:
        idle = server.idle_devices()
        if not idle:
            self._waiting_for_devices = True
            return
        self._waiting_for_devices = False
        wanted = self.params.clients_per_round or len(idle)
        n_select = min(len(idle), math.ceil(wanted * self.params.over_selection))
        chosen = sorted(server.rng.choice(idle, size=n_select, replace=False).tolist()) if n_select < len(idle) else idle
        jobs = server.dispatch(chosen)
        self._round = {job.job_id: job for job in jobs}
        self._arrived = []
        self._needed = min(wanted, len(jobs))
        if self.params.deadline_s is not None:
            self._deadline = server.call_later(self.params.deadline_s, lambda: self._finish(server, "deadline"))

    def on_arrival(self, server: ServerView, job: JobView) -> None:
        if job.job_id not in self._round:
            server.drop(job, "arrived after its round ended")
            return
        arrived = self._arrived
        arrived.append(job)
        if len(arrived) >= self._needed:  # (_maybe_finish's test: most arrivals are not the last one)
            self._maybe_finish(server)

    def on_job_failed(self, server: ServerView, job: JobView, outcome: str) -> None:
        if self._round.pop(job.job_id, None) is not None:
            self._needed = min(self._needed, len(self._round))
            self._maybe_finish(server)

    def _maybe_finish(self, server: ServerView) -> None:
        if len(self._arrived) >= self._needed:
            self._finish(server, "all" if len(self._arrived) == len(self._round) else "k")

    def _finish(self, server: ServerView, trigger: str) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if len(self._arrived) < len(self._round):  # else every job of the round is in
            arrived_ids = {job.job_id for job in self._arrived}
            for job_id, job in list(self._round.items()):
                if job_id not in arrived_ids:
                    server.cancel(job, "deadline" if trigger == "deadline" else "over-selected")
        if self._arrived:
            server.aggregate([(job, float(job.num_samples)) for job in self._arrived], trigger, mode="absolute")
        self._round, self._arrived = {}, []
        self._start_round(server)

    def on_device_ready(self, server: ServerView, device: int) -> None:
        if self._waiting_for_devices:
            self._start_round(server)
