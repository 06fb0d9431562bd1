"""A local pool of persistent worker processes (``--executor process``, ``--workers N``).

Each worker is started once per run from a fork server that has already imported torch and this
package (else with ``spawn``), loads the dataset and partition itself from the :class:`WorkerContext`,
keeps one model per submodel shape and trains every job it is sent in place. A job travels as a few
hundred bytes: its settings, its plan and references into the shared-memory generation that holds
the global weights of its version (:mod:`.shared`), plus by value only the width-pruned slices. The
result (the trainable entries) comes back over the worker's pipe, packed with NumPy arrays.

As with any non-fork start method, a script that builds a pool must guard its entry point with
``if __name__ == "__main__":``. Fork itself is not used: the main process already runs torch threads.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
from multiprocessing.connection import Connection, wait
from typing import Any

from simulator.errors import InputError
from simulator.learning.executors.common import WorkerContext, WorkerData, pack, unpack
from simulator.learning.executors.dispatch import Dispatcher, DispatchingExecutor, Task, Transport
from simulator.learning.executors.shared import SharedMemoryReader, SharedMemoryStore, full_shapes

_READY = b"ready"


def _worker_main(conn: Connection, context: WorkerContext) -> None:
    """A worker process: load the data once, then train each job it is sent until told to stop."""
    import torch._dynamo  # noqa: F401  (already loaded under the fork server; torch.optim needs it)

    torch.set_num_threads(1)
    data = WorkerData(context)
    reader = SharedMemoryReader()
    conn.send_bytes(_READY)
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):  # the owner is gone
            return
        if not message:
            return
        job, names, drop = unpack(message)
        reader.drop(drop)
        try:
            job = dataclasses.replace(job, state=reader.decode(job.state, names),
                                      teacher=reader.decode(job.teacher, names))
            reply = pack((True, data.run(job)))
        except Exception as exc:  # reported to the learner as the job's error
            reply = pack((False, RuntimeError(f"training job {job.job_id} failed: {exc!r} (in a worker process)")))
        del job
        conn.send_bytes(reply)


class _PipeTransport(Transport):
    PRELOAD = ["simulator.learning.executors", "sklearn.datasets", "torch._dynamo"]

    def __init__(self, workers: int, start_method: str) -> None:
        self.workers, self.start_method = workers, start_method
        self._conns: list[Connection | None] = [None] * workers
        self._procs: list[Any] = []
        self._store: SharedMemoryStore | None = None
        self._lock = threading.Lock()
        self._sent_to: list[set[int]] = [set() for _ in range(workers)]
        self._dropped: list[list[str]] = [[] for _ in range(workers)]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, context: WorkerContext, dispatcher: Dispatcher, data: WorkerData) -> None:
        self._dispatcher = dispatcher
        self._store = SharedMemoryStore(full_shapes(data))
        self._thread = threading.Thread(target=self._run, args=(context,), name="fleetsim-pool", daemon=True)
        self._thread.start()

    def _run(self, context: WorkerContext) -> None:
        """Background thread: start the workers (off the main thread: ~2 s), then receive replies."""
        ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            ctx.set_forkserver_preload(self.PRELOAD)  # ignored if the fork server already runs
        live: dict[Connection, int] = {}
        for slot in range(self.workers):
            if self._stop.is_set():
                break
            parent, child = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=_worker_main, args=(child, context), daemon=True, name=f"fleetsim-worker-{slot}")
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns[slot] = parent
            live[parent] = slot
        while live and not self._stop.is_set():
            for conn in wait(list(live), timeout=0.2):
                slot = live[conn]  # type: ignore[index]
                try:
                    message = conn.recv_bytes()  # type: ignore[union-attr]
                except (EOFError, OSError) as exc:
                    del live[conn]  # type: ignore[arg-type]
                    if not self._stop.is_set():
                        self._dispatcher.worker_lost(slot, exc)
                    continue
                if message == _READY:
                    self._dispatcher.worker_ready(slot)
                    continue
                ok, value = unpack(message)
                self._dispatcher.completed(slot, value if ok else None, None if ok else value)

    def encode(self, task: Task) -> None:
        assert self._store is not None
        with self._lock:
            state, gens = self._store.encode(task.job.state)
            teacher, tgens = self._store.encode(task.job.teacher)
        task.release = gens + tgens
        task.payload = dataclasses.replace(task.job, state=state, teacher=teacher)

    def send(self, slot: int, task: Task) -> None:
        assert self._store is not None
        with self._lock:
            names = {g: self._store.segment_name(g) for g in set(task.release)}
            self._sent_to[slot].update(names)
            drop, self._dropped[slot] = self._dropped[slot], []
        conn = self._conns[slot]
        assert conn is not None
        conn.send_bytes(pack((task.payload, names, drop)))

    def finished(self, task: Task) -> None:
        if self._store is None or task.release is None:
            return
        with self._lock:
            before = {g: self._store.segment_name(g) for g in self._store.live}
            self._store.release(task.release)
            task.release = None
            gone = set(before) - set(self._store.live)
            for slot, sent in enumerate(self._sent_to):
                for g in gone & sent:
                    self._dropped[slot].append(before[g])
                sent -= gone

    def close(self) -> None:
        self._stop.set()
        for conn in self._conns:
            if conn is not None:
                try:
                    conn.send_bytes(b"")
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self._conns:
            if conn is not None:
                conn.close()
        self._conns = [None] * self.workers
        self._procs = []
        if self._store is not None:
            with self._lock:
                self._store.close()
            self._store = None


class ProcessPoolExecutor(DispatchingExecutor):
    """``workers`` persistent local processes fed longest-first (see :mod:`.dispatch`)."""

    PRELOAD = _PipeTransport.PRELOAD

    def __init__(self, workers: int = 2, start_method: str | None = None) -> None:
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise InputError("the process pool needs at least one worker", field="workers", value=workers,
                             accepted="an integer >= 1")
        if start_method is None:
            start_method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        if start_method not in ("spawn", "forkserver"):
            raise InputError("unsupported start method", field="start_method", value=start_method,
                             accepted="spawn, forkserver")
        super().__init__()
        self.workers = workers
        self.start_method = start_method

    def bind(self, context: WorkerContext, data: WorkerData | None = None) -> None:
        self.shutdown()
        self._dispatcher = Dispatcher(_PipeTransport(self.workers, self.start_method), self.workers)
        self._dispatcher.start(context, data)
