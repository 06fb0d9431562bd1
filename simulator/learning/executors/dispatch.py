"""Persistent workers fed longest-first, results streamed back: what the pool and Ray executors share.

Why (issue 16): a many-small-clients round is 16 jobs of 2-13 steps each; a queue in submission
order leaves one worker with the long tail while the other idles. Here submitted jobs wait in a heap
keyed by their estimated work (steps x samples per step x parameters) and a worker with room takes
the largest, so a round's makespan is close to its work divided by the workers. A worker holds up to
:attr:`Dispatcher.DEPTH` jobs (the next one waits in its pipe while it trains one). Jobs are held back for
:attr:`Dispatcher.COALESCE_S` after the latest submission (the engine starts a round's jobs in one
burst of events) unless the learner asks for a result, which dispatches at once and moves the asked
job to the front. Results are unpacked by the receiving thread as they arrive, not when asked for.

While fewer workers are ready than were asked for (they import torch first: ~2 s), a thread
waiting for a result trains pending jobs itself, longest first, with the same pure function, so
start-up overlaps training instead of preceding it. Which process trains a job never changes its
result: traces are identical whichever executor runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import heapq
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from simulator.learning.executors.common import JobFuture, WorkerContext, WorkerData
from simulator.learning.trainer import TrainJob, TrainResult


@dataclass(eq=False)
class Task:
    seq: int
    job: TrainJob
    cost: float
    future: cf.Future = field(default_factory=cf.Future)
    state: str = "pending"            # pending | sent | running-here | done | cancelled


class _TaskFuture(JobFuture[TrainResult]):
    def __init__(self, dispatcher: "Dispatcher", task: Task) -> None:
        self._d, self._task = dispatcher, task

    def result(self, timeout: float | None = None) -> TrainResult:
        return self._d.wait(self._task, timeout)

    def done(self) -> bool:
        self._d.flush()
        return self._task.future.done()

    def cancel(self) -> bool:
        return self._d.cancel(self._task)


class Dispatcher:
    """The heap, the idle workers and the help-while-starting rule; a transport moves the bytes."""

    COALESCE_S = 0.003
    DEPTH = 2  # jobs in flight per worker: one training, one waiting in its pipe or actor queue


    def __init__(self, transport: "Transport", workers: int) -> None:
        self.transport = transport
        self.workers = workers
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Task]] = []
        self._free: dict[int, int] = {}  # slot -> jobs it can take now (DEPTH minus those in flight)
        self._ready = 0
        self._failed: BaseException | None = None
        self._last_submit = 0.0
        self._urgent = False
        self._closed = False
        self._seq = itertools.count()
        self._running: dict[int, list[Task]] = {}  # slot -> its jobs in flight, oldest first
        self._lost: set[int] = set()
        self._ready_slots: set[int] = set()
        self._local: WorkerData | None = None
        self._context: WorkerContext | None = None
        self._sizes: list[int] | None = None
        self._thread: threading.Thread | None = None
        self._started_at = 0.0
        self.ready_after_s: list[float] = []   # when each worker became ready, from start()
        self.trained_here = 0                   # jobs the waiting thread trained (workers not ready)

    # ------------------------------------------------------------------ life cycle
    def start(self, context: WorkerContext, data: WorkerData | None) -> None:
        """Start feeding; `data` (the learner's) serves the sizes, the shapes and the jobs trained here."""
        self._context, self._started_at = context, time.perf_counter()
        self._local = data if data is not None and data.context == context else WorkerData(context)
        self._sizes = [len(p) for p in self._local.parts]
        self._thread = threading.Thread(target=self._feed, name="fleetsim-dispatch", daemon=True)
        self._thread.start()
        self.transport.start(context, self, self._local)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            pending = [t for _, _, t in self._heap if t.state == "pending"]
            self._heap.clear()
            self._cond.notify_all()
        for t in pending:
            self._end(t, cancelled=True)
        self.transport.close()
        for t in [t for tasks in list(self._running.values()) for t in tasks]:
            self._end(t, error=RuntimeError("the executor was shut down while the job ran"))
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------------ jobs
    def estimate(self, job: TrainJob) -> float:
        n = self._sizes[job.shard] if self._sizes is not None and 0 <= job.shard < len(self._sizes) \
            else job.settings.batch_size
        params = sum(t.numel() for t in job.state.values())
        return float(max(job.local_steps, 1) * min(job.settings.batch_size, n) * params)

    def submit(self, job: TrainJob) -> JobFuture[TrainResult]:
        task = Task(next(self._seq), job, self.estimate(job))
        with self._cond:
            if self._failed is not None:
                raise RuntimeError("the training workers failed") from self._failed
            heapq.heappush(self._heap, (-task.cost, task.seq, task))
            self._last_submit = time.perf_counter()
            self._cond.notify_all()
        return _TaskFuture(self, task)

    def flush(self) -> None:
        with self._cond:
            self._urgent = True
            self._cond.notify_all()

    def wait(self, task: Task, timeout: float | None) -> TrainResult:
        with self._cond:
            if task.state == "pending":  # needed now: to the front of the heap
                heapq.heappush(self._heap, (-float("inf"), task.seq, task))
            self._urgent = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.perf_counter() + timeout
        while not task.future.done():
            helped = self._help()
            if not helped:
                left = None if deadline is None else max(0.0, deadline - time.perf_counter())
                try:
                    return task.future.result(timeout=0.05 if self._ready < self.workers else left)
                except cf.TimeoutError:
                    if deadline is not None and time.perf_counter() >= deadline:
                        raise
        return task.future.result()

    def _help(self) -> bool:
        """Train the front pending job in this thread while workers are still starting."""
        if self._ready >= self.workers:
            return False
        with self._cond:
            task = self._pop()
            if task is None:
                return False
            task.state = "running-here"
        assert self._local is not None
        self.trained_here += 1
        try:
            result = self._local.run(task.job)
        except Exception as exc:  # reported as a worker reports it
            self._end(task, error=RuntimeError(f"training job {task.job.job_id} failed: {exc!r}"))
        except BaseException:  # Ctrl-C: the job is abandoned, the interrupt goes on
            self._end(task, cancelled=True)
            raise
        else:
            self._end(task, result=result)
        return True

    def cancel(self, task: Task) -> bool:
        with self._cond:
            if task.state != "pending":
                return task.state == "cancelled"
            task.state = "cancelled"
        self._end(task, cancelled=True)
        return True

    # ------------------------------------------------------------------ called by the transport
    def worker_ready(self, slot: int) -> None:
        with self._cond:
            self._ready += 1
            self._ready_slots.add(slot)
            self.ready_after_s.append(time.perf_counter() - self._started_at)
            self._free[slot] = self.DEPTH
            self._running.setdefault(slot, [])
            self._cond.notify_all()

    def completed(self, slot: int, result: TrainResult | None, error: BaseException | None = None,
                  task: Task | None = None) -> None:
        """A job of `slot` ended: `task`, or (a transport whose replies come in order) its oldest."""
        with self._cond:
            running = self._running.get(slot) or []
            if task is None:
                task = running.pop(0) if running else None
            elif task in running:
                running.remove(task)
            else:
                task = None
            if slot in self._free:
                self._free[slot] += 1
            self._cond.notify_all()
        if task is not None:
            self._end(task, result=result, error=error)

    def worker_lost(self, slot: int, error: BaseException) -> None:
        """A worker died: its job fails; if none is left, every pending job fails."""
        with self._cond:
            if slot in self._lost:  # the send and the receiving thread may both report it
                return
            self._lost.add(slot)
            self._free.pop(slot, None)
            lost = self._running.pop(slot, [])
            self._ready -= slot in self._ready_slots
            self.workers -= 1
            if self.workers <= 0:
                self._failed = error
                pending = [t for _, _, t in self._heap if t.state == "pending"]
                self._heap.clear()
            else:
                pending = []
        for t in lost + pending:
            self._end(t, error=RuntimeError(f"a training worker stopped: {error}"))

    # ------------------------------------------------------------------ internals
    def _pop(self) -> Task | None:
        while self._heap:
            _, _, task = heapq.heappop(self._heap)
            if task.state == "pending":
                return task
        return None

    def _end(self, task: Task, result: TrainResult | None = None, error: BaseException | None = None,
             cancelled: bool = False) -> None:
        task.state = "cancelled" if cancelled else "done"
        if task.future.done():
            return
        if cancelled:
            task.future.cancel()
            task.future.set_running_or_notify_cancel()
        elif error is not None:
            task.future.set_exception(error)
        else:
            task.future.set_result(result)

    def _feed(self) -> None:
        """Background thread: hand the largest pending jobs to the workers with the most room.

        Each worker holds up to :attr:`DEPTH` jobs, so the next one is already in its pipe (or its
        actor's queue) when it finishes one: it never waits for its result to reach this process and
        a new job to come back (two thread hand-overs under the GIL, 1-5 ms on a busy main process,
        against jobs of 10-50 ms). The price: a round's last small job may queue behind a worker's
        current one while the other worker is already done."""
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if any(self._free.values()) and any(t.state == "pending" for _, _, t in self._heap):
                        wait = self.COALESCE_S - (time.perf_counter() - self._last_submit)
                        if self._urgent or wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                sends = []
                while True:
                    slot = max(self._free, key=self._free.__getitem__, default=None)  # the emptiest
                    if slot is None or self._free[slot] <= 0:
                        break
                    task = self._pop()
                    if task is None:
                        break
                    self._free[slot] -= 1
                    task.state = "sent"
                    self._running[slot].append(task)
                    sends.append((slot, task))
                if not any(t.state == "pending" for _, _, t in self._heap):
                    self._urgent = False
            for slot, task in sends:
                try:
                    self.transport.send(slot, task)
                except BaseException as exc:  # a dead worker: its job is reported lost
                    self.worker_lost(slot, exc)


class Transport:
    """Moves jobs to worker slots and results back; calls the dispatcher's worker_ready/completed."""

    def start(self, context: WorkerContext, dispatcher: Dispatcher, data: WorkerData) -> None:
        raise NotImplementedError

    def send(self, slot: int, task: Task) -> None:
        """Send ``task.job`` to `slot` (called in the feeding thread, never the engine's)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class DispatchingExecutor:
    """What the process pool and the Ray executor share: a :class:`Dispatcher` made by ``bind``
    (each its own transport), jobs submitted to it, and the start-up facts of the last bind kept
    after ``shutdown`` (``last_run``, read by the benchmarks)."""

    def __init__(self) -> None:
        self._dispatcher: Dispatcher | None = None
        self.last_run: dict[str, Any] = {}

    def submit(self, job: TrainJob) -> JobFuture[TrainResult]:
        if self._dispatcher is None:
            raise RuntimeError("executor not bound to a worker context (Learner.__init__ binds it)")
        return self._dispatcher.submit(job)

    def shutdown(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.close()
            self.last_run = {"ready_after_s": self._dispatcher.ready_after_s,
                             "trained_here": self._dispatcher.trained_here}
            self._dispatcher = None

