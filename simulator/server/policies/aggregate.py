"""The maths the built-in policies share, as pure functions: no server, no I/O, no SimPy.

Weights follow one rule everywhere: an accepted update counts n_i · s(τ_i) (samples times staleness
factor); an update staler than ``max_staleness`` is dropped (its device is re-synced with the newest
version by the server). How the buffered and semi-asynchronous merges use those weights is
``staleness_mode``:

- ``relative`` (fleetsim's original rule): ``θ ← θ + lr · Σ n s(τ) Δ / Σ n s(τ)`` per covered element.
  s(τ) only re-weights the updates *within* one merge, so a buffer of uniformly stale updates is
  applied at full size, and an element only one stale client trains receives that client's whole Δ.
- ``absolute`` (FedBuff, Nguyen et al., AISTATS 2022, Alg. 1: ``x ← x + η_g · (1/K) Σ_k s(τ_k) Δ_k``,
  s(τ) = 1/√(1+τ) in their experiments): ``θ ← θ + lr · Σ n s(τ) Δ / Σ n`` per covered element,
  so staleness damps the step itself; an element trained only by stale clients moves by at most
  ``lr · max s(τ) · |Δ|``. (The sample shares n and the per-element sums over the clients that
  train the element are the HeteroFL/FedRolex coverage-masked generalisation of FedBuff's 1/K.)

FedAsync (Xie et al., 2019: ``x ← (1 − α_t) x + α_t x_new``, ``α_t = α · s(t − τ)``) is absolute by
construction, so the asynchronous policy has no such switch. As Flower's ``strategy/aggregate.py``.
"""

from __future__ import annotations

from typing import Literal, Sequence, TypeVar

from simulator.server.staleness import StalenessFunction

J = TypeVar("J")

StalenessMode = Literal["relative", "absolute"]
STALENESS_MODE_HELP = ("relative: s(τ) re-weights the updates within one merge (a uniformly stale buffer is "
                       "applied at full size); absolute: s(τ) damps the step itself, as FedBuff does")


def too_stale(tau: int, max_staleness: int | None) -> str | None:
    """Why an update of staleness τ is dropped, or None when it counts."""
    if max_staleness is not None and tau > max_staleness:
        return f"staleness {tau} > max_staleness {max_staleness}"
    return None


def weigh(jobs: Sequence[J], taus: Sequence[int], samples: Sequence[int], fn: StalenessFunction,
          max_staleness: int | None) -> tuple[list[tuple[J, float]], list[tuple[J, str]]]:
    """Split updates into ``(job, n·s(τ))`` kept and ``(job, reason)`` dropped, each in arrival order."""
    kept: list[tuple[J, float]] = []
    dropped: list[tuple[J, str]] = []
    for job, tau, n in zip(jobs, taus, samples, strict=True):
        reason = too_stale(tau, max_staleness)
        if reason is None:
            kept.append((job, n * fn(tau)))
        else:
            dropped.append((job, reason))
    return kept, dropped


def merge_arguments(weights: Sequence[float], server_lr: float, staleness_mode: str) -> tuple[str, float]:
    """``(mode, global_weight)`` of one buffered / semi-async merge under the chosen staleness mode.

    absolute: the damped merge θ + lr · Σ n s Δ / Σ n over the clients that train each element.
    relative: the current model joins the delta mean with weight g, θ + Σ wΔ / (g + Σ w) = θ + lr · mean Δ,
    so g = Σ w · (1 − lr) / lr.
    """
    if staleness_mode == "absolute":
        return "damped", server_lr
    total = sum(weights)
    return "delta", total * (1 - server_lr) / server_lr


def mixing_weight(alpha: float, fn: StalenessFunction, tau: int) -> float:
    """FedAsync's α_t = α · s(τ): the new update's share, the global model keeping 1 − α_t."""
    return alpha * fn(tau)
