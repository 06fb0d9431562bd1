"""Jobs on Ray (``--executor ray``): one persistent actor per CPU, fed like the process pool.

Each actor (``num_cpus=1``) loads the data once, keeps its models and trains jobs in place; the
global weights of a version go into Ray's object store once (one ``ray.put`` per generation of
:class:`~simulator.learning.executors.shared.WeightStore`) and reach the actors as zero-copy NumPy
arrays; the longest-first heap, the streamed results and the help-while-starting rule are the
pool's (:mod:`.dispatch`). On a remote cluster (``address``) the actors run where Ray places them.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from simulator.errors import InputError
from simulator.learning.executors.common import WorkerContext, WorkerData, pack, unpack
from simulator.learning.executors.dispatch import Dispatcher, DispatchingExecutor, Task, Transport
from simulator.learning.executors.shared import WeightStore, full_shapes


@dataclass(frozen=True)
class RayRef:
    """A tensor of a generation put into Ray's object store."""

    generation: int
    name: str


class _RayStore(WeightStore):
    def __init__(self, shapes: dict[str, Any], ray: Any) -> None:
        super().__init__(shapes)
        self._ray, self.refs = ray, {}

    def _create(self, gen: int, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        self.refs[gen] = self._ray.put({k: t.numpy() for k, t in tensors.items()})
        return {k: t.clone() for k, t in tensors.items()}

    def _ref(self, gen: int, name: str) -> Any:
        return RayRef(gen, name)

    def _free(self, gen: int) -> None:
        self.refs.pop(gen, None)


def _decode(state: dict[str, Any] | None, gens: dict[int, dict[str, Any]]) -> dict[str, Tensor] | None:
    if state is None:
        return None
    with warnings.catch_warnings():  # object-store arrays are read-only; load_state_dict only copies them
        warnings.simplefilter("ignore", UserWarning)
        return {k: torch.from_numpy(gens[v.generation][v.name]) if isinstance(v, RayRef) else v
                for k, v in state.items()}


class _Actor:
    def __init__(self, context: WorkerContext) -> None:
        torch.set_num_threads(1)
        self.data = WorkerData(context)

    def ready(self) -> bool:
        return True

    def run(self, payload: bytes, gen_ids: list[int], *arrays: dict[str, Any]) -> bytes:
        job = unpack(payload)
        gens = dict(zip(gen_ids, arrays))
        try:
            job = replace(job, state=_decode(job.state, gens), teacher=_decode(job.teacher, gens))
            return pack((True, self.data.run(job)))
        except Exception as exc:
            return pack((False, RuntimeError(f"training job {job.job_id} failed: {exc!r} (in a Ray actor)")))


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
        self._store: _RayStore | None = None
        self._stop = threading.Event()

    def start(self, context: WorkerContext, dispatcher: Dispatcher, data: WorkerData) -> None:
        self._dispatcher = dispatcher
        self._store = _RayStore(full_shapes(data), self.ray)
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

    def encode(self, task: Task) -> None:
        assert self._store is not None
        with self._lock:
            state, gens = self._store.encode(task.job.state)
            teacher, tgens = self._store.encode(task.job.teacher)
        task.release = gens + tgens
        task.payload = pack(replace(task.job, state=state, teacher=teacher))

    def send(self, slot: int, task: Task) -> None:
        assert self._store is not None
        with self._lock:
            ids = sorted(set(task.release))
            refs = [self._store.refs[g] for g in ids]
        self._watch(self._actors[slot].run.remote(task.payload, ids, *refs), slot, task)

    def finished(self, task: Task) -> None:
        if self._store is not None and task.release is not None:
            with self._lock:
                self._store.release(task.release)
            task.release = None

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
            if self._store is not None:
                self._store.close()
                self._store = None


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
            ray.init(address=self.address, num_cpus=self.num_cpus if self.address is None else None,
                     include_dashboard=False, log_to_driver=False)
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
