"""Executors: the same jobs give bitwise the same results inline and in a process pool."""

from __future__ import annotations

import os
import sys
import time

import pytest
import torch

from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
from simulator.errors import InputError
from simulator.learning.executors import (
    InlineExecutor, ProcessPoolExecutor, RayExecutor, WorkerContext, WorkerData, make_executor, pack, unpack,
)
from simulator.learning.pruning import Pruner, PruningSettings
from simulator.learning.submodel import extract
from simulator.learning.trainer import TrainingSettings, TrainJob
from tests.helpers.markers import needs_ray

CONTEXT = WorkerContext(ModelSpec(name="cnn", preset="tiny"), DatasetSpec(name="digits", image_size=8),
                        PartitionSpec(kind="dirichlet", alpha=0.5), 4, 3)


def jobs(data: WorkerData) -> list[TrainJob]:
    """Three shapes and a "global"-distillation job, all extracted from one base (as the learner's
    jobs of one version are): the pool and Ray send that base once per worker, not with each job."""
    full = data.build(seed=0)
    base = full.state_dict()
    pr = Pruner(PruningSettings(width="rolling", depth="rolling"), full.width_axes(), full.full_depth)
    settings = TrainingSettings(batch_size=8, distill_mode="deepest", distill_weight=0.5, importance_batches=1)
    out = []
    for i, (depth, ratio) in enumerate([(3, 1.0), (2, 0.5), (1, 0.25)]):
        plan = pr.plan(i, i, depth, ratio)
        out.append(TrainJob(i, i, 100 + i, plan, extract(base, plan, full.param_axes()), i, 4, settings,
                            base_state=base))
    # a narrow client taught by the whole global model ("global" distillation): the teacher is the base
    plan = pr.plan(3, 3, 2, 0.5)
    taught = TrainingSettings(batch_size=8, distill_mode="global", distill_weight=0.5, importance_batches=1)
    out.append(TrainJob(3, 3, 103, plan, extract(base, plan, full.param_axes()), 3, 4, taught,
                        teacher=base, base_state=base))
    return out


def assert_same(a, b):
    assert a.job_id == b.job_id and a.train_loss == b.train_loss and a.num_samples == b.num_samples
    assert list(a.state) == list(b.state)
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert set(a.importance) == set(b.importance)
    assert all(torch.equal(a.importance[k], b.importance[k]) for k in a.importance)


@pytest.mark.slow
def test_inline_and_process_pool_give_bitwise_identical_results(monkeypatch):
    """Bitwise the inline results, with each worker sent the jobs' base once: its first message holds
    the weights (the CNN's state, tens of KB), every later one only a job (plan, seed, settings)."""
    import simulator.learning.executors.pool as pool_module

    data = WorkerData(CONTEXT)
    work = jobs(data) * 3  # (the same jobs again: each is trained afresh, the results equal)
    inline = InlineExecutor()
    inline.bind(CONTEXT, data)
    want = [inline.submit(j).result() for j in work]
    sizes: dict[int, list[int]] = {}
    real_pack = pool_module.pack

    def recording_pack(obj):
        data_bytes = real_pack(obj)
        if isinstance(obj, tuple) and len(obj) == 3:  # (a job on a base, the base or None, dropped)
            sizes.setdefault(id(obj[1]) if obj[1] is not None else 0, []).append(len(data_bytes))
        return data_bytes

    monkeypatch.setattr(pool_module, "pack", recording_pack)
    pool = ProcessPoolExecutor(workers=2)
    pool.bind(CONTEXT)
    try:
        deadline = time.monotonic() + 120
        while len(pool._dispatcher.ready_after_s) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # both workers up: else the waiting thread trains jobs itself meanwhile
        futures = [pool.submit(j) for j in work]
        got = [f.result(timeout=120) for f in futures]
    finally:
        pool.shutdown()
    for a, b in zip(want, got):
        assert_same(a, b)
    base_bytes = sum(t.numel() * t.element_size() for t in work[0].base_state.values())
    with_base = [n for key, ns in sizes.items() if key for n in ns]
    without = sizes.get(0, [])
    trained_here = pool.last_run["trained_here"]  # jobs the dispatcher trained itself while workers started
    assert trained_here == 0 and len(with_base) == 2 and len(without) == len(work) - 2
    assert all(n > base_bytes for n in with_base) and all(n < base_bytes / 4 for n in without), (with_base, without)


def test_inline_is_lazy_and_cancellable():
    data = WorkerData(CONTEXT)
    ex = InlineExecutor()
    ex.bind(CONTEXT, data)
    work = jobs(data)
    fut = ex.submit(work[0])
    assert not fut.done()
    res = fut.result()
    assert fut.done() and fut.result() is res
    other = ex.submit(work[1])
    assert other.cancel() and other.done()
    with pytest.raises(Exception):
        other.result()


def test_worker_data_is_the_learners_split():
    a, b = WorkerData(CONTEXT), WorkerData(CONTEXT)
    assert len(a.parts) == 4
    for pa, pb in zip(a.parts, b.parts):
        assert torch.equal(pa, pb)
    x, y = a.shard(2)
    assert torch.equal(y, a.dataset.y_train[a.parts[2]]) and len(x) == len(y)


def test_pack_roundtrip_is_exact():
    data = WorkerData(CONTEXT)
    j = jobs(data)[1]
    back = unpack(pack(j))
    assert back.plan == j.plan and back.settings == j.settings
    assert all(torch.equal(back.state[k], j.state[k]) for k in j.state)


def test_pack_keeps_every_tensor_kind_exactly():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {
        "f64": torch.randn(3, dtype=torch.float64), "f16": torch.randn(5).half(), "i64": torch.arange(7),
        "bool": torch.tensor([True, False]), "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3),
        "view": base[:, 1::2], "transposed": base.t(),
        "bf16": torch.randn(4).bfloat16(),                       # no NumPy dtype: torch's reduction
        "grad": torch.ones(2, requires_grad=True),               # requires grad: torch's reduction
    }
    back = unpack(pack(tensors))
    for name, t in tensors.items():
        b = back[name]
        assert b.dtype == t.dtype and b.shape == t.shape and b.requires_grad == t.requires_grad, name
        assert torch.equal(b.detach(), t.detach()), name
    back["view"].add_(1)  # writable, and no longer tied to the original storage
    assert torch.equal(base[:, 1::2], tensors["view"])


def test_ray_without_ray_is_a_clear_input_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if not installed
    with pytest.raises(InputError, match=r"pip install 'fleetsim\[ray\]'"):
        RayExecutor()


@pytest.mark.slow
@pytest.mark.ray
@needs_ray
def test_ray_gives_the_inline_results():
    """Bitwise the inline results; the jobs' one base is put into Ray's object store once."""
    data = WorkerData(CONTEXT)
    work = jobs(data) * 2
    inline = InlineExecutor()
    inline.bind(CONTEXT, data)
    ray_ex = RayExecutor(num_cpus=2)
    ray_ex.bind(CONTEXT)
    try:
        dispatcher = ray_ex._dispatcher
        deadline = time.monotonic() + 300
        while len(dispatcher.ready_after_s) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # both actors up: else the waiting thread trains jobs itself meanwhile
        got = [f.result(timeout=300) for f in [ray_ex.submit(j) for j in work]]
        assert dispatcher.trained_here == 0 and dispatcher.transport._bases._next_key == 1
    finally:
        ray_ex.shutdown()
    for j, b in zip(work, got):
        assert_same(inline.submit(j).result(), b)


def test_held_bases_send_each_base_once_per_worker_and_drop_the_least_recent(monkeypatch):
    from simulator.learning.executors.bases import HeldBases, WorkerBases

    monkeypatch.setattr(HeldBases, "HOLD", 3)
    held = HeldBases(workers=2)
    bases = [{"w": torch.full((2,), float(i))} for i in range(HeldBases.HOLD + 2)]
    assert held.place(0, bases[0]) == (0, True, [])
    assert held.place(0, bases[0]) == (0, False, [])   # held: only the job goes
    assert held.place(1, bases[0]) == (0, True, [])    # the other worker has not got it yet
    for i in range(1, HeldBases.HOLD):
        assert held.place(0, bases[i]) == (i, True, [])
    held.place(0, bases[1])                           # used again: now base 0 is the least recent
    key, sent, dropped = held.place(0, bases[HeldBases.HOLD])
    assert (key, sent, dropped) == (HeldBases.HOLD, True, [0])
    assert held.place(1, bases[0]) == (0, False, [])   # worker 1 still holds it, under the same key
    held.lost(1)
    assert held.place(0, bases[0])[1:] == (True, [2])  # forgotten by all: sent again, a new key
    mirror = WorkerBases()
    mirror.put(7, bases[0])
    mirror.put(8, bases[1], dropped=[7])
    assert mirror.get(7) is None and mirror.get(8) is bases[1]


def test_make_executor_names():
    assert isinstance(make_executor("inline"), InlineExecutor)
    assert make_executor("process", workers=3).workers == 3
    with pytest.raises(InputError):
        make_executor("gpu-farm")
    with pytest.raises(InputError):
        ProcessPoolExecutor(workers=0)
