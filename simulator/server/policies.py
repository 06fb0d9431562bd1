"""The built-in aggregation policies: synchronous, asynchronous, buffered asynchronous, semi-asynchronous.

Each is one small class over the :class:`~simulator.server.policy.ServerView` hooks. Weights follow
the same rule everywhere: an accepted update counts n_i · s(τ_i) (samples times staleness factor);
an update staler than ``max_staleness`` is dropped and its device re-synced with the newest version.

How the buffered and semi-asynchronous merges use those weights is ``staleness_mode``:

- ``relative`` (fleetsim's original rule): ``θ ← θ + lr · Σ n s(τ) Δ / Σ n s(τ)`` per covered element.
  s(τ) only re-weights the updates *within* one merge, so a buffer of uniformly stale updates is
  applied at full size, and an element only one stale client trains receives that client's whole Δ.
- ``absolute`` (FedBuff, Nguyen et al., AISTATS 2022, Alg. 1: ``x ← x + η_g · (1/K) Σ_k s(τ_k) Δ_k``,
  s(τ) = 1/√(1+τ) in their experiments): ``θ ← θ + lr · Σ n s(τ) Δ / Σ n`` per covered element,
  so staleness damps the step itself; an element trained only by stale clients moves by at most
  ``lr · max s(τ) · |Δ|``. (The sample shares n and the per-element sums over the clients that
  train the element are the HeteroFL/FedRolex coverage-masked generalisation of FedBuff's 1/K.)

FedAsync (Xie et al., 2019: ``x ← (1 − α_t) x + α_t x_new``, ``α_t = α · s(t − τ)``) is absolute by
construction, so the asynchronous policy has no such switch.
"""

from __future__ import annotations

import math

from typing import Literal

from pydantic import Field

from simulator.server.policy import AggregationPolicy, JobView, PolicyParams, ServerView, Timer, register
from simulator.server.staleness import StalenessSpec


def _weigh(
    server: ServerView, jobs: list[JobView], staleness: StalenessSpec, max_staleness: int | None
) -> list[tuple[JobView, float]]:
    """Drop updates beyond the staleness bound; weight the rest by samples × s(τ)."""
    fn = staleness.build()
    kept: list[tuple[JobView, float]] = []
    for job in jobs:
        tau = server.staleness(job)
        if max_staleness is not None and tau > max_staleness:
            server.drop(job, f"staleness {tau} > max_staleness {max_staleness}")
        else:
            kept.append((job, job.num_samples * fn(tau)))
    return kept


StalenessMode = Literal["relative", "absolute"]
_STALENESS_MODE_HELP = ("relative: s(τ) re-weights the updates within one merge (a uniformly stale buffer is "
                        "applied at full size); absolute: s(τ) damps the step itself, as FedBuff does")


def _merge_weighted(server: ServerView, weighted: list[tuple[JobView, float]], trigger: str, server_lr: float,
                    staleness_mode: str) -> None:
    """One buffered / semi-async merge of ``(job, n·s(τ))`` pairs under the chosen staleness mode."""
    if staleness_mode == "absolute":
        # damped merge: θ + lr · Σ n s Δ / Σ n over the clients that train each element
        server.aggregate(weighted, trigger, mode="damped", global_weight=server_lr)
        return
    total = sum(w for _, w in weighted)
    # the current model joins the delta mean with weight g: θ + Σ wΔ / (g + Σ w) = θ + lr · mean Δ
    server.aggregate(weighted, trigger, mode="delta", global_weight=total * (1 - server_lr) / server_lr)


# ---------------------------------------------------------------------------- synchronous


class SyncParams(PolicyParams):
    policy: str = "sync"
    clients_per_round: int | None = Field(default=None, ge=1, description="default: every idle device")
    over_selection: float = Field(default=1.0, ge=1.0, description="select this many times more; keep the first")
    deadline_s: float | None = Field(default=None, gt=0, description="drop updates not in by then")


@register
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
        if len(arrived) >= self._needed:  # _maybe_finish, written out: this runs once per client-round
            self._finish(server, "all" if len(arrived) == len(self._round) else "k")

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


# ---------------------------------------------------------------------------- asynchronous


class AsyncParams(PolicyParams):
    policy: str = "async"
    mixing_alpha: float = Field(default=0.6, gt=0, le=1, description="FedAsync α: θ ← (1 − α s(τ)) θ + α s(τ) θ_i")
    staleness: StalenessSpec = Field(default_factory=StalenessSpec)
    max_staleness: int | None = Field(default=None, ge=0)


@register
class Asynchronous(AggregationPolicy):
    """FedAsync: every arrival is mixed into the global model at once; its device gets the new version."""

    name = "async"
    Params = AsyncParams
    params: AsyncParams

    def on_arrival(self, server: ServerView, job: JobView) -> None:
        fn = self.params.staleness.build()
        tau = server.staleness(job)
        if self.params.max_staleness is not None and tau > self.params.max_staleness:
            server.drop(job, f"staleness {tau} > max_staleness {self.params.max_staleness}")
        else:
            alpha = self.params.mixing_alpha * fn(tau)
            server.aggregate([(job, alpha)], "each", mode="absolute", global_weight=1.0 - alpha)
        server.dispatch([job.device])

    def on_device_ready(self, server: ServerView, device: int) -> None:
        server.dispatch([device])


# ---------------------------------------------------------------------------- buffered asynchronous


class BufferedParams(PolicyParams):
    policy: str = "buffered"
    buffer_k: int | None = Field(default=None, ge=1, description="default: a quarter of the fleet")
    server_lr: float = Field(default=1.0, gt=0, le=1)
    staleness: StalenessSpec = Field(default_factory=StalenessSpec)
    staleness_mode: StalenessMode = Field(default="relative", description=_STALENESS_MODE_HELP)
    max_staleness: int | None = Field(default=None, ge=0)


@register
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
            weighted = _weigh(server, self._buffer, self.params.staleness, self.params.max_staleness)
            if weighted:
                _merge_weighted(server, weighted, "buffer", self.params.server_lr, self.params.staleness_mode)
            self._buffer = []
        server.dispatch([job.device])

    def on_device_ready(self, server: ServerView, device: int) -> None:
        server.dispatch([device])


# ---------------------------------------------------------------------------- semi-asynchronous (Co-S²P)


class SemiAsyncParams(PolicyParams):
    policy: str = "semi-async"
    k: int | None = Field(default=None, ge=1, description="merge when K updates are in; default: half the fleet")
    deadline_s: float | None = Field(default=None, gt=0, description="…or when the round deadline passes")
    server_lr: float = Field(default=1.0, gt=0, le=1, description=(
        "server step on the merged update: θ ← θ + lr · Σ s(τ)·n·Δ / Σ s(τ)·n (relative) or / Σ n (absolute); "
        "a small K merges often and may need < 1, as FedBuff does"))
    staleness: StalenessSpec = Field(default_factory=StalenessSpec)
    staleness_mode: StalenessMode = Field(default="relative", description=_STALENESS_MODE_HELP)
    max_staleness: int | None = Field(default=8, ge=0)


@register
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
        weighted = _weigh(server, self._buffer, self.params.staleness, self.params.max_staleness)
        if weighted:
            _merge_weighted(server, weighted, trigger, self.params.server_lr, self.params.staleness_mode)
        self._buffer = []
        server.dispatch(server.idle_devices())
        self._arm_deadline(server)

    def on_device_ready(self, server: ServerView, device: int) -> None:
        server.dispatch([device])
