"""The two server calls the buffered and semi-asynchronous policies share, over the pure maths of ``aggregate``."""

from __future__ import annotations

from simulator.server.policies.aggregate import merge_arguments, weigh
from simulator.server.policy import JobView, ServerView
from simulator.server.staleness import StalenessSpec


def weigh_and_drop(server: ServerView, jobs: list[JobView], staleness: StalenessSpec,
                   max_staleness: int | None) -> list[tuple[JobView, float]]:
    """Drop (on the server) the updates beyond the staleness bound; the rest weighted n·s(τ)."""
    taus = [server.staleness(job) for job in jobs]
    kept, dropped = weigh(jobs, taus, [job.num_samples for job in jobs], staleness.build(), max_staleness)
    for job, reason in dropped:
        server.drop(job, reason)
    return kept


def merge(server: ServerView, weighted: list[tuple[JobView, float]], trigger: str, server_lr: float,
          staleness_mode: str) -> None:
    """One buffered / semi-async merge of ``(job, n·s(τ))`` pairs (see :func:`merge_arguments`)."""
    mode, global_weight = merge_arguments([w for _, w in weighted], server_lr, staleness_mode)
    server.aggregate(weighted, trigger, mode=mode, global_weight=global_weight)
