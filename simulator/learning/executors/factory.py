"""The one ``make_executor``: the same names for the CLI (``--executor``, ``--workers``) and the API."""

from __future__ import annotations

from typing import Any

from simulator.errors import InputError

EXECUTORS = ("inline", "process", "ray")
ALIASES = {"pool": "process"}  # the CLI's name before issue 14; still accepted


def make_executor(kind: str = "inline", workers: int | None = None, address: str | None = None) -> Any:
    """An executor by name.

    ``inline``: in this process, lazily (``workers`` > 0 turns it into a process pool: that is what
    ``fleetsim run --workers N`` means). ``process`` (alias ``pool``): ``workers`` persistent local
    processes, default 2. ``ray``: one actor per CPU, ``workers`` CPUs (default: all Ray offers) on
    the cluster at ``address`` (default: start a local one). ``workers`` 0 or None = the default.
    """
    from simulator.learning.executors.common import InlineExecutor

    name = ALIASES.get(kind, kind)
    if name not in EXECUTORS:
        raise InputError("unknown executor", field="executor", value=kind,
                         accepted=", ".join(EXECUTORS) + " (pool is another name for process)")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise InputError("not a number of workers", field="workers", value=workers,
                         accepted="0 (the executor's default) or a positive integer")
    if name == "inline" and workers:
        name = "process"
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        from simulator.learning.executors.pool import ProcessPoolExecutor

        return ProcessPoolExecutor(workers or 2)
    from simulator.learning.executors.ray_actors import RayExecutor

    return RayExecutor(address, workers or None)
