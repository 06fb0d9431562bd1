"""What every executor shares: the worker context and data, futures, job packing, the inline executor.

Every executor runs the same pure function (:func:`simulator.learning.trainer.run_job`) on the same
inputs, so results are bitwise identical whichever is used. A worker never receives the dataset with
each job: it is bound once to a picklable :class:`WorkerContext` (the specs, the client count and the
seed) and loads the dataset and partition itself, exactly as the learner does. It also keeps one model
per submodel shape and trains each job in place (:meth:`WorkerData.model_for`).

The inline executor is lazy: a job runs when its result is first asked for, so jobs the engine
discards (device went offline, OOM, dropped) cost nothing.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from simulator.config.workload import DatasetSpec, ModelSpec, PartitionSpec
from simulator.learning.data import load_dataset, partition
from simulator.learning.models.base import BlockModel
from simulator.learning.models.registry import build_model
from simulator.learning.trainer import TrainJob, TrainResult, run_job

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerContext:
    """What a worker needs to rebuild the learner's data and models (picklable)."""

    model_spec: ModelSpec
    dataset_spec: DatasetSpec
    partition_spec: PartitionSpec
    num_clients: int
    seed: int


class WorkerData:
    """The dataset, its partition and the model factory, as loaded from a :class:`WorkerContext`."""

    MAX_MODELS = 32  # submodel shapes kept (Co-S²P's width x depth grid has ~20 for a 4-block CNN)

    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self._models: dict[tuple[int | None, float], BlockModel] = {}
        self._reusable: bool | None = None
        self._param_axes: dict[str, Any] | None = None
        self.dataset = load_dataset(context.dataset_spec, context.seed)
        labels = self.dataset.y_train.numpy()
        self.parts = [torch.from_numpy(p) for p in partition(labels, context.num_clients,
                                                            context.partition_spec, context.seed)]

    def build(self, depth: int | None = None, width_ratio: float = 1.0, seed: int | None = None) -> BlockModel:
        return build_model(self.context.model_spec, self.dataset.num_classes, self.dataset.input_shape,
                           width_ratio, depth, seed=seed)

    @property
    def param_axes(self) -> dict[str, Any]:
        """The full model's axes per tensor dimension (the learner's ``param_axes``), for rebuilding a
        job's state from its base (executors.bases); built once, from a privately seeded model."""
        if self._param_axes is None:
            self._param_axes = self.build(seed=0).param_axes()
        return self._param_axes

    def shard(self, client: int) -> tuple[Tensor, Tensor]:
        idx = self.parts[client]
        return self.dataset.x_train[idx], self.dataset.y_train[idx]

    def run(self, job: TrainJob) -> TrainResult:
        x, y = self.shard(job.shard)
        return run_job(job, x, y, self.model_for)

    def model_for(self, depth: int | None, width_ratio: float) -> BlockModel:
        """The model a job of this shape trains: kept from the last job of the same shape.

        Why: building and initialising the 155k-parameter CNN took 6 % of a serial run of the
        small-clients benchmark, and every value it initialises is overwritten by the job's
        ``load_state_dict(strict=True)`` anyway. A kept model is built once with a private seeded RNG,
        so whether a job meets a fresh or a kept model, the global RNG it trains with is the job's seed
        alone (same bytes inline, in a pool or on Ray). Models with dropout draw from that global RNG
        while training; for them building stays part of the job, exactly as before, so their results
        do not change either.
        """
        key = (depth, float(width_ratio))
        model = self._models.get(key)
        if model is None:
            if self._reusable is False:
                return self.build(depth, width_ratio)
            model = self.build(depth, width_ratio, seed=0)
            if self._reusable is None:
                self._reusable = not any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
                                         for m in model.modules())
                if not self._reusable:
                    return self.build(depth, width_ratio)
            if len(self._models) >= self.MAX_MODELS:
                self._models.pop(next(iter(self._models)))
            self._models[key] = model
        for p in model.parameters():
            p.grad = None
        return model


# ------------------------------------------------------------------ futures and packing


class JobFuture(Generic[T]):
    """The minimal future the learner uses: ``result()``, ``done()``, ``cancel()``."""

    def result(self, timeout: float | None = None) -> T:
        raise NotImplementedError

    def done(self) -> bool:
        raise NotImplementedError

    def cancel(self) -> bool:
        return False


class _LazyFuture(JobFuture[T]):
    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn: Callable[[], T] | None = fn
        self._value: T | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def result(self, timeout: float | None = None) -> T:
        with self._lock:
            if self._fn is not None:
                fn, self._fn = self._fn, None
                try:
                    self._value = fn()
                except BaseException as exc:  # re-raised on every result() call, like a real future
                    self._error = exc
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def done(self) -> bool:
        return self._fn is None

    def cancel(self) -> bool:
        if self._fn is None:
            return False
        self._fn = None
        self._error = cf.CancelledError()
        return True


def _tensor_from_array(array: np.ndarray) -> Tensor:
    return torch.from_numpy(array if array.flags.writeable else array.copy())


class _ArrayPickler(pickle.Pickler):
    """Pickles CPU tensors as NumPy arrays: 5-10x faster than ``torch.save`` (a zip archive) for the
    ~10 KB jobs and results of small models, whose packing was a quarter of the main process's work in
    a pool run. Values, dtypes and shapes round-trip exactly; other tensors (grad-requiring, sparse,
    dtypes NumPy lacks) take torch's own reduction."""

    def reducer_override(self, obj: Any) -> Any:
        if (type(obj) is torch.Tensor and obj.layout == torch.strided and obj.device.type == "cpu"
                and not obj.requires_grad and obj.dtype in _NUMPY_DTYPES):
            return _tensor_from_array, (obj.numpy(),)
        return NotImplemented


_NUMPY_DTYPES = frozenset({torch.float64, torch.float32, torch.float16, torch.int64, torch.int32, torch.int16,
                           torch.int8, torch.uint8, torch.bool})


def pack(obj: Any) -> bytes:
    """Bytes of a job or result, for a worker process or a Ray task."""
    buf = io.BytesIO()
    _ArrayPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def unpack(data: bytes) -> Any:
    """The inverse of :func:`pack`. Only ever given bytes this run's own worker processes (pipes) or
    Ray actors sent it, never anything read from a file: a run folder holds no pickles (checkpoints
    are safetensors + JSON), so a crafted folder cannot reach this."""
    return pickle.loads(data)


class Executor(Protocol):
    def bind(self, context: WorkerContext, data: WorkerData | None = None) -> None: ...
    def submit(self, job: TrainJob) -> JobFuture[TrainResult]: ...
    def shutdown(self) -> None: ...


# ------------------------------------------------------------------ inline


class InlineExecutor:
    """Runs jobs in this process, lazily (when the result is first needed)."""

    def __init__(self) -> None:
        self._data: WorkerData | None = None

    def bind(self, context: WorkerContext, data: WorkerData | None = None) -> None:
        self._data = data if data is not None and data.context == context else WorkerData(context)

    def submit(self, job: TrainJob) -> JobFuture[TrainResult]:
        if self._data is None:
            raise RuntimeError("executor not bound to a worker context (Learner.__init__ binds it)")
        data = self._data
        return _LazyFuture(lambda: data.run(job))

    def shutdown(self) -> None:
        self._data = None
