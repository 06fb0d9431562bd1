"""A local pool of persistent worker processes (``--executor process``, ``--workers N``).

Each worker is started once per run from a fork server that has already imported torch and this
package (else with ``spawn``), loads the dataset and partition itself from the :class:`WorkerContext`,
keeps one model per submodel shape and trains every job it is sent in place. A job travels over the
worker's pipe without its weights: the version's global state goes once per worker, with the first job
that needs it, and the worker extracts each job's state itself (:mod:`.bases`); tensors are packed as
NumPy arrays (:func:`.common.pack`), and so is the result (the trainable entries). A thread of the
worker reads the pipe while the job before trains, so a send never waits for the worker to finish one
(the dispatcher keeps two jobs per worker in flight). Jobs go down and results come up two one-way
pipes per worker whose buffers hold a whole small result (:func:`_roomy_pipe`), so a worker's send
does not wait for this process to read it either.

Why: on issue 16's workload (16 clients of a 155k-parameter CNN, 20 rounds) the jobs carried 197 MB
per run through the pipes, 620 KB each; once per worker and version it is 25 MB, and the feeding
thread's packing and sending fell from 0.56 to 0.17 s per run (BENCHMARKS.md section 2, ninth
session). A model of 0.11 B parameters would have sent 440 MB with every job. (An earlier store of
the weights in shared memory, which compared generations bit for bit, showed no gain and was removed.)

As with any non-fork start method, a script that builds a pool must guard its entry point with
``if __name__ == "__main__":``. Fork itself is not used: the main process already runs torch threads.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.learning.executors.bases import HeldBases, JobOnBase, WorkerBases
from simulator.learning.executors.common import WorkerContext, WorkerData, pack, unpack
from simulator.learning.executors.dispatch import Dispatcher, DispatchingExecutor, Task, Transport
from simulator.learning.trainer import TrainJob

_READY = b"ready"
_PIPE_BYTES = 1 << 20  # a pipe buffer that holds a whole small job or result (see _roomy_pipe)


def _worker_main(jobs: Connection, replies: Connection, context: WorkerContext) -> None:
    """A worker process: load the data once, then train each job it is sent until told to stop."""
    import torch._dynamo  # noqa: F401  (already loaded under the fork server; torch.optim needs it)

    torch.set_num_threads(1)
    data = WorkerData(context)
    inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    threading.Thread(target=_read_pipe, args=(jobs, inbox), name="fleetsim-inbox", daemon=True).start()
    replies.send_bytes(_READY)
    bases = WorkerBases()
    while True:
        message = inbox.get()
        if not message:  # told to stop, or the owner is gone
            return
        item = unpack(message)
        job_id = item[0].job.job_id if isinstance(item, tuple) else item.job_id
        try:
            reply = pack((True, data.run(_job_of(item, bases, data))))
        except Exception as exc:  # reported to the learner as the job's error
            reply = pack((False, RuntimeError(f"training job {job_id} failed: {exc!r} (in a worker process)")))
        del item
        replies.send_bytes(reply)


def _job_of(item: Any, bases: WorkerBases, data: WorkerData) -> TrainJob:
    """The job a message carries: a whole job, or (a job on a base, the base if new here, keys to drop)."""
    if not isinstance(item, tuple):
        return item
    sent, base, dropped = item
    if base is not None:
        bases.put(sent.base_key, base, dropped)
    held = bases.get(sent.base_key)
    if held is None:
        raise RuntimeError(f"this worker does not hold base {sent.base_key} (sent jobs and bases disagree)")
    return sent.rebuild(held, data.param_axes)


def _read_pipe(conn: Connection, inbox: "queue.SimpleQueue[bytes]") -> None:
    """The worker's reading thread: jobs wait in `inbox`, not in the pipe, so the owner's send of the
    next job (hundreds of KB) does not block until this one is trained."""
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            message = b""
        inbox.put(message)
        if not message:
            return


def _roomy_pipe(ctx: Any) -> tuple[Connection, Connection]:
    """A one-way pipe (reading end, writing end) whose kernel buffer holds a whole small job or result.

    Why: a result of issue 16's CNN is 620 KB; through the 208 KB buffer of a duplex socket pair the
    worker's send waited while this process's receiving thread drained it in turns (0.4 ms a result
    at the median, 3 ms at the 90th percentile on a busy host), time the worker did not train. A pipe
    takes the whole message at once when its buffer is enlarged to Linux's unprivileged limit
    (``/proc/sys/fs/pipe-max-size``, 1 MB by default); elsewhere, or if refused, it keeps its size."""
    reading, writing = ctx.Pipe(duplex=False)
    try:
        import fcntl

        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        fcntl.fcntl(writing.fileno(), fcntl.F_SETPIPE_SZ, min(limit, _PIPE_BYTES))
    except (ImportError, AttributeError, OSError, ValueError):
        pass
    return reading, writing



def _start_fork_server() -> None:
    """Start Python's fork server (once per process) without the working directory on its path.

    Why: it runs ``python -c``, which puts the working directory first on ``sys.path``, and it ignores
    the owner's path when it preloads; so a folder named ``simulator`` where the user runs fleetsim
    (their own package, another checkout) took fleetsim's place in every worker, which then died
    (tests/learning/test_pool_working_directory.py). ``PYTHONSAFEPATH`` (Python 3.11) leaves it off;
    the environment is changed only while the server starts."""
    from multiprocessing import forkserver

    saved = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        forkserver.ensure_running()
    finally:
        if saved is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = saved


class _PipeTransport(Transport):
    PRELOAD = ["simulator.learning.executors", "sklearn.datasets", "torch._dynamo"]

    def __init__(self, workers: int, start_method: str) -> None:
        self.workers, self.start_method = workers, start_method
        self._job_pipes: list[Connection | None] = [None] * workers  # this end writes each worker's jobs
        self._reply_pipes: list[Connection] = []  # this end reads each worker's results
        self._procs: list[Any] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held = HeldBases(workers)  # the global states each worker has been sent (executors.bases)

    def start(self, context: WorkerContext, dispatcher: Dispatcher, data: WorkerData) -> None:
        self._dispatcher = dispatcher
        self._thread = threading.Thread(target=self._run, args=(context,), name="fleetsim-pool", daemon=True)
        self._thread.start()

    def _run(self, context: WorkerContext) -> None:
        """Background thread: start the workers (off the main thread: ~2 s), then receive replies."""
        ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            ctx.set_forkserver_preload(self.PRELOAD)  # ignored if the fork server already runs
            _start_fork_server()
        live: dict[Connection, int] = {}
        for slot in range(self.workers):
            if self._stop.is_set():
                break
            jobs_in, jobs_out = _roomy_pipe(ctx)
            replies_in, replies_out = _roomy_pipe(ctx)
            proc = ctx.Process(target=_worker_main, args=(jobs_in, replies_out, context), daemon=True,
                               name=f"fleetsim-worker-{slot}")
            proc.start()
            jobs_in.close()
            replies_out.close()
            self._procs.append(proc)
            self._job_pipes[slot] = jobs_out
            self._reply_pipes.append(replies_in)
            live[replies_in] = slot
        while live and not self._stop.is_set():
            for conn in wait(list(live), timeout=0.2):
                slot = live[conn]  # type: ignore[index]
                try:
                    message = conn.recv_bytes()  # type: ignore[union-attr]
                except (EOFError, OSError) as exc:
                    del live[conn]  # type: ignore[arg-type]
                    self._held.lost(slot)
                    if not self._stop.is_set():
                        self._dispatcher.worker_lost(slot, exc)
                    continue
                if message == _READY:
                    self._dispatcher.worker_ready(slot)
                    continue
                ok, value = unpack(message)
                self._dispatcher.completed(slot, value if ok else None, None if ok else value)

    def send(self, slot: int, task: Task) -> None:
        conn = self._job_pipes[slot]
        assert conn is not None
        job = task.job
        if job.base_state is None:
            conn.send_bytes(pack(job))
            return
        key, with_base, dropped = self._held.place(slot, job.base_state)
        conn.send_bytes(pack((JobOnBase.of(job, key), job.base_state if with_base else None, dropped)))

    def close(self) -> None:
        self._stop.set()
        for conn in self._job_pipes:
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
        for conn in [*self._job_pipes, *self._reply_pipes]:
            if conn is not None:
                conn.close()
        self._job_pipes, self._reply_pipes = [None] * self.workers, []
        self._procs = []


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
