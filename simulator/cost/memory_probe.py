"""Measuring the peak memory of a real training step on this host, tensor by tensor.

Used by ``scripts/validate_memory.py`` to hold :func:`simulator.cost.model.training_memory_bytes` to
measured peaks. CPU PyTorch keeps no allocator statistics, so :class:`LiveTensorBytes` counts what
the step holds itself: a ``TorchDispatchMode`` sees every op (forward, backward, optimizer) and
registers each output's storage once; a ``weakref.finalize`` on that storage (torch keeps one Python
object per storage, so it fires when the storage itself is freed, views included) removes it. The
peak of the live sum, taken after every op, plus what was alive before the step (weights, optimizer
state, the batch) is the step's tensor peak. It leaves out what no tensor owns: an op's internal
scratch (e.g. a convolution's im2col buffer while it runs), allocator slack and fragmentation, the
framework itself — the profile's ``framework_overhead`` term.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of the storages created by ops under this mode that are still alive; ``peak_bytes`` is
    the largest such sum seen after any op (or free)."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.live_bytes = 0
        self.peak_bytes = 0

    def _free(self, key: int) -> None:
        self.live_bytes -= self.live.pop(key, 0)

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = id(storage)
        if key in self.live or storage.device.type == "meta":
            return
        nbytes = int(storage.nbytes())
        self.live[key] = nbytes
        self.live_bytes += nbytes
        weakref.finalize(storage, self._free, key)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._track(t)
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        return out


def storage_bytes(tensors: Any) -> int:
    """Bytes of the distinct storages behind `tensors` (any nesting of lists, tuples, dicts)."""
    seen: dict[int, int] = {}
    for t in tree_flatten(tensors)[0]:
        if isinstance(t, torch.Tensor):
            s = t.untyped_storage()
            seen[id(s)] = int(s.nbytes())
    return sum(seen.values())


@dataclass(frozen=True)
class StepPeak:
    """``resident_bytes``: alive before the step (weights, optimizer state, batch); ``step_peak_bytes``:
    the most the step held on top of that at any moment; ``peak_bytes`` their sum."""

    resident_bytes: int
    step_peak_bytes: int

    @property
    def peak_bytes(self) -> int:
        return self.resident_bytes + self.step_peak_bytes


def measure_step_peak(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
                      loss_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]) -> StepPeak:
    """Peak tensor memory of one step (``zero_grad(set_to_none=True)``, forward, loss, backward,
    ``optimizer.step()``). Run one step before it, so the optimizer state exists as in steady training."""
    optimizer.zero_grad(set_to_none=True)
    resident = storage_bytes([list(model.parameters()), list(model.buffers()), optimizer.state_dict()["state"], x, y])
    probe = LiveTensorBytes()
    with probe:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, x, y)
        loss.backward()
        optimizer.step()
        del loss
    return StepPeak(resident, probe.peak_bytes)
