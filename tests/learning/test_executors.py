"""Executors: the same jobs give bitwise the same results inline and in a process pool."""

from __future__ import annotations

import importlib.util
import os
import sys

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

CONTEXT = WorkerContext(ModelSpec(name="cnn", preset="tiny"), DatasetSpec(name="digits", image_size=8),
                        PartitionSpec(kind="dirichlet", alpha=0.5), 4, 3)


def jobs(data: WorkerData) -> list[TrainJob]:
    full = data.build(seed=0)
    pr = Pruner(PruningSettings(width="rolling", depth="rolling"), full.width_axes(), full.full_depth)
    settings = TrainingSettings(batch_size=8, distill_mode="deepest", distill_weight=0.5, importance_batches=1)
    out = []
    for i, (depth, ratio) in enumerate([(3, 1.0), (2, 0.5), (1, 0.25)]):
        plan = pr.plan(i, i, depth, ratio)
        out.append(TrainJob(i, i, 100 + i, plan, extract(full.state_dict(), plan, full.param_axes()), i, 4, settings))
    # a narrow client taught by the whole global model ("global" distillation): the teacher travels too
    plan = pr.plan(3, 3, 2, 0.5)
    taught = TrainingSettings(batch_size=8, distill_mode="global", distill_weight=0.5, importance_batches=1)
    out.append(TrainJob(3, 3, 103, plan, extract(full.state_dict(), plan, full.param_axes()), 3, 4, taught,
                        teacher=full.state_dict()))
    return out


def assert_same(a, b):
    assert a.job_id == b.job_id and a.train_loss == b.train_loss and a.num_samples == b.num_samples
    assert list(a.state) == list(b.state)
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert set(a.importance) == set(b.importance)
    assert all(torch.equal(a.importance[k], b.importance[k]) for k in a.importance)


@pytest.mark.slow
def test_inline_and_process_pool_give_bitwise_identical_results():
    data = WorkerData(CONTEXT)
    work = jobs(data)
    inline = InlineExecutor()
    inline.bind(CONTEXT, data)
    want = [inline.submit(j).result() for j in work]
    pool = ProcessPoolExecutor(workers=2)
    pool.bind(CONTEXT)
    try:
        futures = [pool.submit(j) for j in work]
        got = [f.result(timeout=120) for f in futures]
    finally:
        pool.shutdown()
    for a, b in zip(want, got):
        assert_same(a, b)


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
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'fleetsim[ray]')")
def test_ray_gives_the_inline_results():
    data = WorkerData(CONTEXT)
    work = jobs(data)
    inline = InlineExecutor()
    inline.bind(CONTEXT, data)
    ray_ex = RayExecutor(num_cpus=2)
    ray_ex.bind(CONTEXT)
    try:
        got = [f.result(timeout=300) for f in [ray_ex.submit(j) for j in work]]
    finally:
        ray_ex.shutdown()
    for j, b in zip(work, got):
        assert_same(inline.submit(j).result(), b)


def test_make_executor_names():
    assert isinstance(make_executor("inline"), InlineExecutor)
    assert make_executor("process", workers=3).workers == 3
    with pytest.raises(InputError):
        make_executor("gpu-farm")
    with pytest.raises(InputError):
        ProcessPoolExecutor(workers=0)
