"""What the engine needs to know of the workload, without holding any tensor in the event loop.

Shapes (classes, input shape, blocks) and each client's shard size come from the dataset's labels
(``learning.data.load_labels``: NumPy only, so validating a scenario imports no torch) and the
partition; in timing-only runs with ``samples_per_client`` no data is touched at all. The planning
model (``workload.model``) sets time and memory; ``workload.train_model``, if given, is the small
proxy actually trained for accuracy — the run's summary says so.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from simulator.config.scenario import AvailabilityTrace, Scenario
from simulator.config.workload import DatasetSpec, ModelSpec, model_label
from simulator.errors import InputError


@dataclass
class WorkloadInfo:
    scenario: Scenario
    base_dir: Path
    timing_only: bool
    file: str | None

    @property
    def plan_model(self) -> ModelSpec:
        return self.scenario.workload.model

    @property
    def train_model(self) -> ModelSpec:
        return self.scenario.workload.train_model or self.scenario.workload.model

    @property
    def proxy(self) -> bool:
        return self.scenario.workload.train_model is not None

    @property
    def model_label(self) -> str:
        return model_label(self.plan_model)

    @property
    def plan_model_label(self) -> str:
        return model_label(self.plan_model)

    @property
    def train_model_label(self) -> str:
        return model_label(self.train_model)

    @cached_property
    def dataset_spec(self) -> DatasetSpec:
        """The dataset spec with a relative path resolved against the scenario file's folder."""
        spec = self.scenario.workload.dataset
        path = getattr(spec, "path", None)
        if path and not Path(path).is_absolute():
            spec = spec.model_copy(update={"path": str(self.base_dir / path)})
        return spec

    @cached_property
    def labels(self) -> Any:
        """The dataset's labels, classes and input shape (``learning.data.Labels``): NumPy only, no
        torch and no images, the numbers the learner's ``load_dataset`` gives (its own copy)."""
        from simulator.learning.data import load_labels

        try:
            return load_labels(self.dataset_spec, self.scenario.seed)
        except InputError as err:
            if err.field and not err.field.startswith("workload"):
                err.field = f"workload.dataset.{err.field}"
            raise err.with_file(self.file) if self.file else err

    @cached_property
    def _shape(self) -> tuple[tuple[int, ...], int]:
        labels = self.labels
        return tuple(labels.input_shape), int(labels.num_classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape the planning model is costed at: `plan_input_shape`, else the dataset's."""
        return tuple(self.scenario.workload.plan_input_shape or self._shape[0])

    @property
    def data_input_shape(self) -> tuple[int, ...]:
        return self._shape[0]

    @property
    def num_classes(self) -> int:
        return self._shape[1]

    @cached_property
    def num_blocks(self) -> int:
        """Blocks of the full planning model: those of its full-width trace, which the planner needs
        anyway (``learning.models.full_depth`` gives the same number, but importing the model
        families imports torch, and a warm trace cache does not)."""
        from simulator.cost.cache import trace

        shape = tuple(int(s) for s in self.input_shape)
        return len(trace(self.plan_model.resolved(), int(self.num_classes), shape, 1.0))

    @cached_property
    def shard_sizes(self) -> np.ndarray:
        wl = self.scenario.workload
        n = self.scenario.num_devices
        if self.timing_only and wl.samples_per_client is not None:
            return np.full(n, wl.samples_per_client, dtype=np.int64)
        from simulator.learning.data import label_histograms, partition

        labels = self.labels.y_train
        if len(labels) < n:
            raise InputError(
                f"the dataset's training split has {len(labels)} samples, fewer than the {n} devices",
                file=self.file, field="workload.dataset", value=self.scenario.workload.dataset.name,
                accepted="more samples (num_samples), fewer devices, or workload.samples_per_client with --timing-only",
            )
        parts = partition(labels, n, wl.partition, self.scenario.seed)
        self._label_histograms = label_histograms(labels, parts, int(self.labels.num_classes))
        return np.array([len(p) for p in parts], dtype=np.int64)

    def label_histograms(self) -> np.ndarray | None:
        """Samples per class of every client's shard (None when shard sizes are fixed, not partitioned)."""
        self.shard_sizes  # noqa: B018 - computes the partition on first use
        return getattr(self, "_label_histograms", None)

    def write_clients_table(self, path: Path, device_names: list[str], profiles: list[str]) -> None:
        """clients.parquet: each client's shard size and label histogram, stored with the run, with the
        declared schema (trace.columns.CLIENTS), so its types do not depend on what pandas would infer
        (an all-empty histogram column was list<null>)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from simulator.trace.columns import CLIENTS

        hist = self.label_histograms()
        table = pa.table({
            "device": np.arange(len(device_names), dtype=np.int32), "device_name": device_names,
            "profile": profiles, "num_samples": self.shard_sizes.astype(np.int64),
            "label_histogram": [list(map(int, row)) for row in hist] if hist is not None else [[]] * len(device_names),
        }, schema=CLIENTS.schema())
        pq.write_table(table, path)

    def samples(self, device_index: int) -> int:
        return int(self.shard_sizes[device_index])

    def importance_bytes(self, width_ratio: float) -> int:
        """Bytes of the per-unit importance scores a client sends with its update (float32)."""
        return 4 * max(1, math.ceil(width_ratio * 64)) * self.num_blocks

    def make_learner(self, algorithm: Any, executor: Any) -> Any:
        from simulator.engine.training import make_learner

        return make_learner(self, algorithm, executor)


# What torch or numpy raise when a model meets inputs it cannot take (a shape, a size): the user's to fix.
_SHAPE_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError)


@contextmanager
def _naming(file: str | None) -> Iterator[None]:
    try:
        yield
    except InputError as err:
        raise (err.with_file(file) if file else err) from None


def _check_model(spec: ModelSpec, num_classes: int, shape: tuple[int, ...], field: str, value: Any) -> None:
    """Trace the model's cost once (cached, the planner needs it anyway): it must run at `shape`."""
    from simulator.cost.model import model_cost

    try:
        model_cost(spec, num_classes, shape)
    except InputError as err:
        if err.field == "workload.model":  # the builder's generic address: say which model and shape
            raise InputError(f"{err.problem} (model {model_label(spec)})", field=field, value=value,
                             accepted=err.accepted) from None
        raise
    except _SHAPE_ERRORS as exc:
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 200 else detail[:197] + "..."
        raise InputError(
            f"model {model_label(spec)} cannot run on inputs of shape {list(shape)} ({type(exc).__name__}: {detail})",
            field=field, value=value,
            accepted="a model and input shape that fit: [channels, height, width] for image models, [seq_len] for text",
        ) from None


def check_availability_traces(scenario: Scenario, base_dir: Path) -> None:
    """Read every availability trace the fleet names (the engine reads them again when it runs)."""
    from simulator.fleet.availability import load_trace

    for g, group in enumerate(scenario.fleet):
        if isinstance(group.availability, AvailabilityTrace):
            load_trace(group.availability, base_dir, g, group.count)


def describe_workload(scenario: Scenario, base_dir: Path, timing_only: bool, file: str | None) -> WorkloadInfo:
    """The workload of a run, checked now: every file the scenario names is read and the models sized.

    The engine would meet these problems only once running, after the run folder is made; found here
    they are reported before anything is written (``fleetsim validate`` finds them too).
    """
    info = WorkloadInfo(scenario, base_dir, timing_only, file)
    wl = scenario.workload
    with _naming(file):
        info.shard_sizes  # noqa: B018 - loads the dataset and partitions it (or checks samples_per_client)
        plan_field = "workload.plan_input_shape" if wl.plan_input_shape else "workload.model"
        plan_value = list(wl.plan_input_shape) if wl.plan_input_shape else wl.model.name
        _check_model(info.plan_model, info.num_classes, info.input_shape, plan_field, plan_value)
        if not timing_only:
            train_field = "workload.train_model" if wl.train_model is not None else "workload.model"
            _check_model(info.train_model, info.num_classes, info.data_input_shape, train_field, info.train_model.name)
        check_availability_traces(scenario, base_dir)
    return info
