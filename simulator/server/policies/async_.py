"""Asynchronous (FedAsync, Xie et al. 2019): every arrival is mixed into the global model at once.

Named ``async_`` because ``async`` is a keyword."""

from __future__ import annotations

from pydantic import Field

from simulator.server.policies.aggregate import mixing_weight, too_stale
from simulator.server.policy import AggregationPolicy, JobView, PolicyParams, ServerView
from simulator.server.staleness import StalenessSpec


class AsyncParams(PolicyParams):
    policy: str = "async"
    mixing_alpha: float = Field(default=0.6, gt=0, le=1, description="FedAsync α: θ ← (1 − α s(τ)) θ + α s(τ) θ_i")
    staleness: StalenessSpec = Field(default_factory=StalenessSpec)
    max_staleness: int | None = Field(default=None, ge=0)


class Asynchronous(AggregationPolicy):
    """FedAsync: every arrival is mixed into the global model at once; its device gets the new version."""

    name = "async"
    Params = AsyncParams
    params: AsyncParams

    def on_arrival(self, server: ServerView, job: JobView) -> None:
        tau = server.staleness(job)
        reason = too_stale(tau, self.params.max_staleness)
        if reason is not None:
            server.drop(job, reason)
        else:
            alpha = mixing_weight(self.params.mixing_alpha, self.params.staleness.build(), tau)
            server.aggregate([(job, alpha)], "each", mode="absolute", global_weight=1.0 - alpha)
        server.dispatch([job.device])

    def on_device_ready(self, server: ServerView, device: int) -> None:
        server.dispatch([device])
