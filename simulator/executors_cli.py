"""Map the CLI's --executor/--workers/--ray-address flags onto a training executor."""

from __future__ import annotations

from typing import Any

from simulator.errors import InputError


def make_executor(kind: str, workers: int, ray_address: str | None) -> Any:
    """None means inline (training runs in this process, between simulated events)."""
    from simulator.learning import executors

    if workers < 0:
        raise InputError("--workers cannot be negative", field="--workers", value=workers, accepted="0 or more")
    if kind == "inline" and workers > 0:
        kind = "pool"
    if kind == "inline":
        return executors.InlineExecutor()
    if kind == "pool":
        return executors.ProcessPoolExecutor(max(1, workers or 2))
    if kind == "ray":
        return executors.RayExecutor(address=ray_address, num_cpus=workers or None)
    raise InputError("unknown executor", field="--executor", value=kind, accepted="inline, pool, ray")
