"""Persistent workers (issue 16): kept models, weights sent once per version, longest-first feeding,
help while workers start, errors and cancels; and the one ``make_executor`` (issue 14)."""

from __future__ import annotations

import dataclasses
import threading
import time
from queue import Queue

import pytest
import torch

from simulator.errors import InputError
from simulator.learning.executors import (
    InlineExecutor, ProcessPoolExecutor, WorkerData, make_executor,
)
from simulator.learning.executors.dispatch import Dispatcher, Transport
from simulator.learning.trainer import run_job
from tests.helpers.markers import needs_ray
from tests.learning.test_executors import CONTEXT, assert_same, jobs


# ------------------------------------------------------------------ kept models


def test_a_kept_model_gives_the_bytes_of_a_freshly_built_one():
    """The old behaviour built every job's model inside the job; the kept model must not change a bit,
    whatever job the worker ran before."""
    fresh_data, kept = WorkerData(CONTEXT), WorkerData(CONTEXT)
    built = _count_builds(kept)
    work = jobs(fresh_data)
    for job in work + work[::-1]:  # each shape met again after other shapes trained
        x, y = fresh_data.shard(job.shard)
        fresh = run_job(job, x, y, lambda depth, ratio: fresh_data.build(depth, ratio))
        assert_same(fresh, kept.run(job))
    # each shape built once for all its jobs, + the teacher
    assert len(built) == len({(j.plan.depth, j.plan.width_ratio) for j in work}) + 1 < 2 * len(work)


def _count_builds(data: WorkerData) -> list[object]:
    """Record every model `data` builds (its public factory, wrapped on this instance only)."""
    built: list[object] = []
    real_build = data.build

    def build(*args, **kwargs):
        built.append(real_build(*args, **kwargs))
        return built[-1]

    data.build = build  # type: ignore[method-assign]
    return built


def test_models_with_dropout_are_built_per_job_as_before(monkeypatch):
    data = WorkerData(CONTEXT)
    real_build = WorkerData.build

    def with_dropout(self, depth=None, width_ratio=1.0, seed=None):
        model = real_build(self, depth, width_ratio, seed)
        model.blocks[0].add_module("drop", torch.nn.Dropout(0.5))
        return model

    monkeypatch.setattr(WorkerData, "build", with_dropout)
    built = _count_builds(data)
    first = data.model_for(2, 1.0)
    second = data.model_for(2, 1.0)
    assert second is not first and first in built and second is built[-1]  # a new build for each job
    assert data.model_for(2, 1.0) is built[-1] is not second


# ------------------------------------------------------------------ feeding, helping, errors


class _FakeTransport(Transport):
    """Workers in threads of this process; records what each slot was sent, in order."""

    def __init__(self, ready: int, data: WorkerData) -> None:
        self.ready, self.data, self.sent = ready, data, []
        self.queues, self.lock = {}, threading.Lock()

    def start(self, context, dispatcher, data):
        self.d = dispatcher
        for slot in range(self.ready):
            dispatcher.worker_ready(slot)

    def send(self, slot, task):
        self.sent.append(task.job.job_id)
        # a worker trains the jobs it holds (up to Dispatcher.DEPTH) one after another, as a process does
        with self.lock:
            queue = self.queues.get(slot)
            if queue is None:
                queue = self.queues[slot] = Queue()
                threading.Thread(target=self._worker, args=(slot, queue), daemon=True).start()
        queue.put(task)

    def _worker(self, slot, queue):
        while True:
            task = queue.get()
            self.d.completed(slot, self.data.run(task.job), None, task)

    def close(self):
        pass


def _with_steps(data: WorkerData, steps: list[int]):
    base = jobs(data)[0]
    return [dataclasses.replace(base, job_id=i, local_steps=s) for i, s in enumerate(steps)]


def test_the_largest_pending_job_goes_first():
    data = WorkerData(CONTEXT)
    transport = _FakeTransport(1, data)
    d = Dispatcher(transport, 1)
    d.COALESCE_S = 10.0  # nothing leaves before a result is asked for: the burst is all in the heap
    d.start(CONTEXT, data)
    try:
        work = _with_steps(data, [2, 9, 5, 7, 1])
        futures = [d.submit(j) for j in work]
        assert transport.sent == []
        d.flush()  # what done() does: dispatch now, largest first, without moving any job ahead
        deadline = time.monotonic() + 60
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            time.sleep(0.01)
        results = [f.result(timeout=0) for f in futures]  # all done: asking moves nothing ahead any more
        late = d.submit(dataclasses.replace(work[4], job_id=5))
        second = d.submit(dataclasses.replace(work[1], job_id=6))
        assert late.result(timeout=60).job_id == 5  # asked for: it jumps ahead of the larger job 6
        second.result(timeout=60)
    finally:
        d.close()
    assert transport.sent == [1, 3, 2, 0, 4, 5, 6]
    inline = InlineExecutor()
    inline.bind(CONTEXT, data)
    for j, r in zip(work, results):
        assert_same(inline.submit(j).result(), r)


def test_a_worker_holds_the_next_job_while_it_trains_one_and_results_find_their_jobs():
    """Dispatcher.DEPTH jobs per worker: the second is sent before the first is done; replies
    reported with their task land on that task's future even when they come back out of order."""
    data = WorkerData(CONTEXT)

    class Held(_FakeTransport):
        def send(self, slot, task):
            self.sent.append(task.job.job_id)
            self.held.append((slot, task))

    transport = Held(1, data)
    transport.held = []
    d = Dispatcher(transport, 1)
    d.start(CONTEXT, data)
    try:
        work = _with_steps(data, [3, 5, 4])
        futures = [d.submit(j) for j in work]
        d.flush()
        deadline = time.monotonic() + 30
        while len(transport.sent) < d.DEPTH and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
        assert transport.sent == [1, 2]  # the two largest, nothing done yet; job 0 waits for room
        (s1, t1), (s2, t2) = transport.held
        d.completed(s2, data.run(t2.job), None, t2)  # job 2 reported first
        assert futures[2].result(timeout=5).job_id == 2 and not futures[1].done()
        while len(transport.sent) < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert transport.sent == [1, 2, 0]  # its room went to the last job
        for slot, task in transport.held[::-1][:1] + [(s1, t1)]:
            d.completed(slot, data.run(task.job), None, task)
        assert [f.result(timeout=5).job_id for f in futures] == [0, 1, 2]
    finally:
        d.close()


def test_while_no_worker_is_ready_the_waiting_thread_trains():
    data = WorkerData(CONTEXT)
    transport = _FakeTransport(0, data)  # workers that never come up
    d = Dispatcher(transport, 2)
    d.start(CONTEXT, data)
    try:
        work = jobs(data)
        got = [d.submit(j).result(timeout=60) for j in work]
    finally:
        d.close()
    assert transport.sent == []
    inline = InlineExecutor()
    inline.bind(CONTEXT, data)
    for j, r in zip(work, got):
        assert_same(inline.submit(j).result(), r)


@pytest.mark.slow
def test_a_pending_job_cancels_and_a_failing_job_raises_in_the_caller(monkeypatch):
    data = WorkerData(CONTEXT)
    pool = ProcessPoolExecutor(workers=1)
    pool.bind(CONTEXT, data)
    try:
        good, bad = jobs(data)[:2]
        bad = dataclasses.replace(bad, shard=99)  # no such client: the worker's IndexError
        f_bad = pool.submit(bad)
        with pytest.raises(RuntimeError, match="training job 1 failed"):
            f_bad.result(timeout=120)
        monkeypatch.setattr(Dispatcher, "COALESCE_S", 10.0)  # held in the heap until a result is asked for
        held = pool.submit(good)
        assert held.cancel() and held.done()
        with pytest.raises(Exception):
            held.result(timeout=1)
        assert_same(pool.submit(good).result(timeout=120), data.run(good))
    finally:
        pool.shutdown()


# ------------------------------------------------------------------ one make_executor


def test_one_vocabulary_for_the_cli_and_the_api():
    assert isinstance(make_executor(), InlineExecutor)
    assert isinstance(make_executor("inline", 0), InlineExecutor)
    assert make_executor("inline", 3).workers == 3          # `fleetsim run --workers 3`
    assert make_executor("process").workers == 2
    assert make_executor("pool", 4).workers == 4            # the CLI's old name
    with pytest.raises(InputError, match="unknown executor") as err:
        make_executor("gpu-farm")
    assert "inline, process, ray" in str(err.value)
    with pytest.raises(InputError, match="not a number of workers"):
        make_executor("process", -1)


def test_the_cli_takes_the_old_and_new_names_and_explains_a_wrong_one(tmp_path):
    import pandas as pd
    import yaml
    from typer.testing import CliRunner

    from simulator.cli import app
    from tests.helpers.scenarios import executor_scenario as _scenario

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_scenario(tmp_path, profiles)))
    runner = CliRunner()
    bad = runner.invoke(app, ["run", str(path), "--executor", "gpu-farm", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "unknown executor (got 'gpu-farm')" in bad.output
    assert "inline, process, ray" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists()
    for name in ("pool", "process"):
        ok = runner.invoke(app, ["run", str(path), "--executor", name, "--workers", "1", "--no-report",
                                 "--out", str(tmp_path / name)])
        assert ok.exit_code == 0, ok.output
    a, b = (pd.read_parquet(tmp_path / n / "evals.parquet") for n in ("pool", "process"))
    assert len(a) == 6 and a.equals(b)


@pytest.mark.ray
@needs_ray
@pytest.mark.slow
def test_kept_ray_actors_serve_the_next_executor_with_the_same_results():
    import ray

    from simulator.learning.executors import RayExecutor
    from simulator.learning.executors import ray_actors

    data = WorkerData(CONTEXT)
    work = jobs(data)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        first = RayExecutor(num_cpus=2, keep_actors=True)
        first.bind(CONTEXT, data)
        actors = list(first._dispatcher.transport._actors)
        a = [f.result(timeout=300) for f in [first.submit(j) for j in work]]
        first.shutdown()
        second = RayExecutor(num_cpus=2, keep_actors=True)
        second.bind(CONTEXT, data)
        assert second._dispatcher.transport._actors == actors  # the same actors, already started
        b = [f.result(timeout=300) for f in [second.submit(j) for j in work]]
        second.shutdown()
    finally:
        ray_actors._KEPT.clear()
        ray.shutdown()
    for j, x, y in zip(work, a, b):
        want = data.run(j)
        assert_same(want, x)
        assert_same(want, y)


def test_a_dead_worker_fails_its_job_and_the_next_submit_with_a_clear_error():
    data = WorkerData(CONTEXT)
    pool = ProcessPoolExecutor(workers=1)
    pool.bind(CONTEXT, data)
    try:
        work = jobs(data)
        import time

        deadline = time.monotonic() + 120
        while pool._dispatcher._ready < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        long = pool.submit(dataclasses.replace(work[0], local_steps=100_000))  # busy for minutes
        while long._task.state != "sent" and time.monotonic() < deadline:
            time.sleep(0.01)
        transport = pool._dispatcher.transport
        transport._procs[0].kill()
        with pytest.raises(RuntimeError, match="a training worker stopped"):
            long.result(timeout=60)
        with pytest.raises(RuntimeError, match="the training workers failed"):
            pool.submit(work[1])
    finally:
        pool.shutdown()
