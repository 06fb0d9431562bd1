"""Split the training set among clients: IID, label skew (Dirichlet, shards) or quantity skew.

Guarantees, for every kind: each sample goes to at most one client (here: exactly one), every client
gets at least ``min_samples_per_client`` samples, and the result is a pure function of (labels,
num_clients, spec, seed). Index arrays are sorted.

Minimum sizes: Dirichlet draws are redrawn a few times (the usual FL practice) and, if a client is
still short, samples are moved to it from the largest clients (randomly chosen ones), which keeps the
label skew of everyone else intact.
"""

from __future__ import annotations

import numpy as np

from simulator.config.workload import PartitionSpec
from simulator.errors import InputError

_REDRAWS = 20


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0x9A27]))


def _cut(order: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
    bounds = np.cumsum(sizes)[:-1]
    return [np.asarray(p, dtype=np.int64) for p in np.split(order, bounds)]


def _iid(n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    return _cut(rng.permutation(n), sizes)


def _dirichlet(labels: np.ndarray, k: int, alpha: float, need: int, rng: np.random.Generator) -> list[np.ndarray]:
    parts: list[list[np.ndarray]] = []
    for _ in range(_REDRAWS):
        parts = [[] for _ in range(k)]
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            share = rng.dirichlet(np.full(k, alpha))
            counts = np.floor(share * len(idx)).astype(np.int64)
            rest = len(idx) - counts.sum()  # hand out the rounding remainder by largest fraction
            counts[np.argsort(-(share * len(idx) - counts), kind="stable")[:rest]] += 1
            for client, chunk in enumerate(_cut(idx, counts)):
                parts[client].append(chunk)
        if min(sum(len(a) for a in p) for p in parts) >= need:
            break
    return [np.concatenate(p) if p else np.zeros(0, np.int64) for p in parts]


def _shards(labels: np.ndarray, k: int, per_client: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = np.lexsort((rng.permutation(len(labels)), labels))  # by label, ties shuffled
    n_shards = k * per_client
    sizes = np.full(n_shards, len(labels) // n_shards)
    sizes[: len(labels) % n_shards] += 1
    shards = _cut(order, sizes)
    deal = rng.permutation(n_shards)
    return [np.concatenate([shards[s] for s in deal[i * per_client:(i + 1) * per_client]]) for i in range(k)]


def _quantity(n: int, k: int, spec: PartitionSpec, need: int, rng: np.random.Generator) -> list[np.ndarray]:
    if spec.get("sizes") == "lognormal":
        weights = rng.lognormal(0.0, spec.get("sigma"), size=k)
    else:
        weights = rng.dirichlet(np.full(k, spec.get("alpha")))
    spare = n - need * k  # every client first gets `need`, the rest is split by weight
    extra = np.floor(weights / weights.sum() * spare).astype(np.int64)
    extra[np.argsort(-weights, kind="stable")[: spare - extra.sum()]] += 1
    return _cut(rng.permutation(n), extra + need)


def _top_up(parts: list[np.ndarray], need: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Move random samples from the largest clients to those below `need`."""
    parts = [rng.permutation(p) for p in parts]
    for i in range(len(parts)):
        while len(parts[i]) < need:
            donor = int(np.argmax([len(p) for p in parts]))
            take = min(need - len(parts[i]), len(parts[donor]) - need)
            parts[i] = np.concatenate([parts[i], parts[donor][:take]])
            parts[donor] = parts[donor][take:]
    return parts


def partition(labels: np.ndarray, num_clients: int, spec: PartitionSpec, seed: int) -> list[np.ndarray]:
    """Index arrays into `labels`, one per client (see module docstring for the guarantees)."""
    labels = np.asarray(labels)
    n, k, need = len(labels), int(num_clients), spec.min_samples_per_client
    if k < 1:
        raise InputError("the number of clients must be at least 1", field="fleet", value=k)
    if n < k * need:
        raise InputError(
            f"{n} training samples cannot give {k} clients {need} each",
            field="workload.partition.min_samples_per_client", value=need,
            accepted=f"at most {n // k} for {k} clients, or a larger dataset",
        )
    rng = _rng(seed)
    if spec.kind == "iid":
        parts = _iid(n, k, rng)
    elif spec.kind == "dirichlet":
        parts = _dirichlet(labels, k, spec.get("alpha"), need, rng)
    elif spec.kind == "shards":
        per = spec.get("shards_per_client")
        if n < k * per:
            raise InputError(f"{n} samples cannot be cut into {k} x {per} shards",
                             field="workload.partition.shards_per_client", value=per,
                             accepted=f"at most {n // k}")
        parts = _shards(labels, k, per, rng)
    else:
        parts = _quantity(n, k, spec, need, rng)
    if min(len(p) for p in parts) < need:
        parts = _top_up(parts, need, rng)
    return [np.sort(p).astype(np.int64) for p in parts]


def label_histograms(labels: np.ndarray, parts: list[np.ndarray], num_classes: int) -> np.ndarray:
    """Counts of each class per client: int64 [clients, classes]."""
    labels = np.asarray(labels)
    out = np.zeros((len(parts), num_classes), dtype=np.int64)
    for i, p in enumerate(parts):
        out[i] = np.bincount(labels[p], minlength=num_classes)[:num_classes]
    return out
