"""Jobs on Ray (``--executor ray``): one persistent actor per CPU, fed like the process pool.

Each actor (``num_cpus=1``) loads the data once, keeps its models and trains jobs in place; a job
travels packed as for the pool, without its weights: its base (the version's global state) is put
into Ray's object store once and fetched by each actor once (:mod:`.bases`);
the longest-first heap, two jobs in flight per worker, the streamed results and the
help-while-starting rule are the pool's (:mod:`.dispatch`). Results are reported by a completion
callback per job (``ObjectRef.future()``), not by a thread polling ``ray.wait``. On a remote
cluster (``address``) the actors run where Ray places them. Ray is started away from the user's
working directory (:mod:`simulator.cluster.ray_start`), so its workers import this fleetsim.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import torch

from simulator.cluster.ray_start import start_ray
from simulator.numerics import worker_env
from simulator.errors import InputError
from simulator.learning.executors.bases import HeldBases, JobOnBase, WorkerBases
from simulator.learning.executors.common import WorkerContext, WorkerData, pack, unpack
from simulator.learning.executors.dispatch import Dispatcher, DispatchingExecutor, Task, Transport
from simulator.learning.trainer import TrainJob


class _Actor:
    def __init__(self, context: WorkerContext) -> None:
        torch.set_num_threads(1)
        self.data = WorkerData(context)
        self.bases = WorkerBases()

    def ready(self) -> bool:
        return True

    def run(self, payload: bytes, base_box: list[Any] | None = None) -> bytes:
        """Train a job: a whole one, or one on a base (`base_box`: [its object ref], in a list so that
        Ray passes the reference, fetched only when this actor does not hold that base yet)."""
        item = unpack(payload)
        job_id = item.job.job_id if base_box is not None else item.job_id
        try:
            job = item if base_box is None else self._on_base(item, base_box[0])
            return pack((True, self.data.run(job)))
        except Exception as exc:
            return pack((False, RuntimeError(f"training job {job_id} failed: {exc!r} (in a Ray actor)")))

    def _on_base(self, sent: JobOnBase, ref: Any) -> TrainJob:
        base = self.bases.get(sent.base_key)
        if base is None:
            import ray

            base = unpack(ray.get(ref))
            self.bases.put(sent.base_key, base)
        return sent.rebuild(base, self.data.param_axes)


class _PutBases:
    """Each base put into Ray's object store once (driver side): its key and reference, for the last
    :attr:`KEEP` bases (as many as an actor holds); a job on an older one puts it again. Used by the
    feeding thread alone."""

    KEEP = HeldBases.HOLD

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self._entries: OrderedDict[int, tuple[int, dict[str, Any], Any]] = OrderedDict()  # id -> (key, base, ref)
        self._next_key = 0

    def ref_for(self, base: dict[str, Any]) -> tuple[int, Any]:
        entry = self._entries.get(id(base))
        if entry is None:
            entry = (self._next_key, base, self.ray.put(pack(base)))  # (the base held: its id stays its own)
            self._next_key += 1
            self._entries[id(base)] = entry
            while len(self._entries) > self.KEEP:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(id(base))
        return entry[0], entry[2]


# (job id of the Ray session, context, actors) -> actor handles kept by ``keep_actors`` executors
_KEPT: dict[tuple[str, WorkerContext, int], list[Any]] = {}


class _RayTransport(Transport):
    def __init__(self, workers: int, keep_actors: bool = False) -> None:
        import ray

        self.ray, self.workers, self.keep = ray, workers, keep_actors
        self._key: tuple[str, WorkerContext, int] | None = None
        self._lock = threading.Lock()
        self._outstanding: dict[Any, tuple[int, Task | None]] = {}  # ref -> (slot, its task; None: ready)
        self._actors: list[Any] = []
        self._stop = threading.Event()
        self._bases = _PutBases(ray)

    def start(self, context: WorkerContext, dispatcher: Dispatcher, data: WorkerData) -> None:
        self._dispatcher = dispatcher
        self._key = (self.ray.get_runtime_context().get_job_id(), context, self.workers)
        kept = _KEPT.pop(self._key, None) if self.keep else None
        if kept is None:
            actor = self.ray.remote(num_cpus=1)(_Actor)
            kept = [actor.remote(context) for _ in range(self.workers)]
        self._actors = kept
        for slot, a in enumerate(self._actors):  # a kept actor answers at once (after any job it still runs)
            self._watch(a.ready.remote(), slot, None)

    def _watch(self, ref: Any, slot: int, task: Task | None) -> None:
        """Report `ref` to the dispatcher once it is ready: a ``concurrent.futures`` callback on Ray's
        own thread, instead of a thread polling ``ray.wait`` (which cost the driver a core-share of
        polls and up to its timeout in latency per job)."""
        with self._lock:
            self._outstanding[ref] = (slot, task)
        ref.future().add_done_callback(lambda fut: self._arrived(ref, fut))

    def _arrived(self, ref: Any, fut: Any) -> None:
        with self._lock:
            known = self._outstanding.pop(ref, None)
        if known is None or self._stop.is_set():
            return
        slot, task = known
        try:
            value = fut.result()
        except Exception as exc:  # the actor died
            self._dispatcher.worker_lost(slot, exc)
            return
        if task is None:
            self._dispatcher.worker_ready(slot)
        else:  # an actor's replies may come back out of order: say which job this is
            ok, result = unpack(value)
            self._dispatcher.completed(slot, result if ok else None, None if ok else result, task)

    def send(self, slot: int, task: Task) -> None:
        job = task.job
        if job.base_state is None:
            self._watch(self._actors[slot].run.remote(pack(job)), slot, task)
            return
        key, ref = self._bases.ref_for(job.base_state)
        self._watch(self._actors[slot].run.remote(pack(JobOnBase.of(job, key)), [ref]), slot, task)

    def close(self) -> None:
        self._stop.set()
        if self.keep and self._key is not None and self.ray.is_initialized():
            _KEPT[self._key] = self._actors
        else:
            for a in self._actors:
                self.ray.kill(a)
        self._actors = []
        with self._lock:
            self._outstanding.clear()


class RayExecutor(DispatchingExecutor):
    """Persistent actors on a local or remote Ray cluster (``address``); ``num_cpus`` = actors."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, keep_actors: bool = False) -> None:
        """`keep_actors`: leave the actors running after ``shutdown`` for the next executor of the same
        context on the same Ray session (they hold their CPUs meanwhile; a Ray this executor started
        is shut down anyway). For repeated runs in one process, as the pool's fork server is reused."""
        try:
            import ray  # noqa: F401
        except ImportError:
            raise InputError("the Ray executor needs ray, which is not installed", field="executor",
                             value="ray", accepted="inline or process, or install it: pip install 'fleetsim[ray]'") from None
        if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 1):
            raise InputError("Ray needs at least one CPU", field="workers", value=num_cpus, accepted="an integer >= 1")
        super().__init__()
        self.address, self.num_cpus, self.keep_actors = address, num_cpus, keep_actors
        self._started_ray = False

    def bind(self, context: WorkerContext, data: WorkerData | None = None) -> None:
        import ray

        self.shutdown()
        if not ray.is_initialized():
            # A cluster started here inherits this process's pinned kernels (simulator/numerics.py); one
            # joined at an address gets them in the runtime environment.
            pinned = worker_env() if self.address else {}
            start_ray(ray, address=self.address, num_cpus=self.num_cpus if self.address is None else None,
                      include_dashboard=False, log_to_driver=False,
                      **({"runtime_env": {"env_vars": pinned}} if pinned else {}))
            self._started_ray = True
        actors = self.num_cpus or max(1, int(ray.available_resources().get("CPU", 1)))
        self._dispatcher = Dispatcher(_RayTransport(actors, self.keep_actors and not self._started_ray), actors)
        self._dispatcher.start(context, data)

    def shutdown(self) -> None:
        super().shutdown()
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
