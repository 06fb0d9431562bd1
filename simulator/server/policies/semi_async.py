"""Semi-asynchronous (Co-S²P): merge when K updates are in or the round deadline passes."""

from __future__ import annotations

import math

from pydantic import Field

from simulator.server.policies.aggregate import STALENESS_MODE_HELP, StalenessMode
from simulator.server.policies.shared import merge, weigh_and_drop
from simulator.server.policy import AggregationPolicy, JobView, PolicyParams, ServerView, Timer
from simulator.server.staleness import StalenessSpec


class SemiAsyncParams(PolicyParams):
    policy: str = "semi-async"
    k: int | None = Field(default=None, ge=1, description="merge when K updates are in; default: half the fleet")
    deadline_s: float | None = Field(default=None, gt=0, description="…or when the round deadline passes")
    server_lr: float = Field(default=1.0, gt=0, le=1, description=(
        "server step on the merged update: θ ← θ + lr · Σ s(τ)·n·Δ / Σ s(τ)·n (relative) or / Σ n (absolute); "
        "a small K merges often and may need < 1, as FedBuff does"))
    staleness: StalenessSpec = Field(default_factory=StalenessSpec)
    staleness_mode: StalenessMode = Field(default="relative", description=STALENESS_MODE_HELP)
    max_staleness: int | None = Field(default=8, ge=0)


class SemiAsynchronous(AggregationPolicy):
    """Co-S²P's aggregation: merge when K updates have arrived or the round deadline passes.

    Stragglers keep working on their stale copy and are merged in a later round with weight s(τ);
    beyond ``max_staleness`` they are dropped and re-synced. Devices that reported wait for the merge
    and then start on the new version — that wait is the idle time the report shows.
    """

    name = "semi-async"
    Params = SemiAsyncParams
    params: SemiAsyncParams

    def __init__(self, params: SemiAsyncParams) -> None:
        super().__init__(params)
        self._buffer: list[JobView] = []
        self._deadline: Timer | None = None
        self._deadline_passed = False

    def start(self, server: ServerView) -> None:
        server.dispatch(server.idle_devices())
        self._arm_deadline(server)

    def _arm_deadline(self, server: ServerView) -> None:
        self._deadline_passed = False
        if self.params.deadline_s is not None:
            self._deadline = server.call_later(self.params.deadline_s, lambda: self._on_deadline(server))

    def _on_deadline(self, server: ServerView) -> None:
        self._deadline = None
        if self._buffer:
            self._merge(server, "deadline")
        else:
            self._deadline_passed = True  # merge on the very next arrival

    def on_arrival(self, server: ServerView, job: JobView) -> None:
        self._buffer.append(job)
        k = self.params.k or max(1, math.ceil(server.num_devices / 2))
        if len(self._buffer) >= k:
            self._merge(server, "k")
        elif self._deadline_passed:
            self._merge(server, "deadline")

    def _merge(self, server: ServerView, trigger: str) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        weighted = weigh_and_drop(server, self._buffer, self.params.staleness, self.params.max_staleness)
        if weighted:
            merge(server, weighted, trigger, self.params.server_lr, self.params.staleness_mode)
        self._buffer = []
        server.dispatch(server.idle_devices())
        self._arm_deadline(server)

    def on_device_ready(self, server: ServerView, device: int) -> None:
        server.dispatch([device])
