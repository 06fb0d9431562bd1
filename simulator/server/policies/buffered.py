"""Buffered asynchronous (FedBuff, Nguyen et al. 2022): merge every K arrivals, staleness-weighted."""

from __future__ import annotations

from pydantic import Field

from simulator.server.policies.aggregate import STALENESS_MODE_HELP, StalenessMode
from simulator.server.policies.shared import merge, weigh_and_drop
from simulator.server.policy import AggregationPolicy, JobView, PolicyParams, ServerView
from simulator.server.staleness import StalenessSpec


class BufferedParams(PolicyParams):
    policy: str = "buffered"
    buffer_k: int | None = Field(default=None, ge=1, description="default: a quarter of the fleet")
    server_lr: float = Field(default=1.0, gt=0, le=1)
    staleness: StalenessSpec = Field(default_factory=StalenessSpec)
    staleness_mode: StalenessMode = Field(default="relative", description=STALENESS_MODE_HELP)
    max_staleness: int | None = Field(default=None, ge=0)


class Buffered(AggregationPolicy):
    """FedBuff: devices work continuously; the server merges every K arrivals (deltas, staleness-weighted)."""

    name = "buffered"
    Params = BufferedParams
    params: BufferedParams

    def __init__(self, params: BufferedParams) -> None:
        super().__init__(params)
        self._buffer: list[JobView] = []

    def on_arrival(self, server: ServerView, job: JobView) -> None:
        self._buffer.append(job)
        k = self.params.buffer_k or max(1, server.num_devices // 4)
        if len(self._buffer) >= k:
            weighted = weigh_and_drop(server, self._buffer, self.params.staleness, self.params.max_staleness)
            if weighted:
                merge(server, weighted, "buffer", self.params.server_lr, self.params.staleness_mode)
            self._buffer = []
        server.dispatch([job.device])

    def on_device_ready(self, server: ServerView, device: int) -> None:
        server.dispatch([device])
