"""Where training jobs run: inline, in a pool of persistent local processes, or on Ray actors.

``common``: the worker context and data (one kept model per submodel shape), futures, packing, the
inline executor. ``dispatch``: the longest-first heap, two jobs in flight per worker and streamed
results, which the pool and Ray share. ``bases``: the global weights sent once per worker and version,
not with every job. ``pool`` / ``ray_actors``: the two transports.
``factory.make_executor``: the one set of names, for the CLI and the API.
"""

from simulator.learning.executors.common import (
    Executor, InlineExecutor, JobFuture, WorkerContext, WorkerData, pack, unpack,
)
from simulator.learning.executors.factory import ALIASES, EXECUTORS, make_executor
from simulator.learning.executors.pool import ProcessPoolExecutor
from simulator.learning.executors.ray_actors import RayExecutor

__all__ = ["ALIASES", "EXECUTORS", "Executor", "InlineExecutor", "JobFuture", "ProcessPoolExecutor", "RayExecutor",
           "WorkerContext", "WorkerData", "make_executor", "pack", "unpack"]
