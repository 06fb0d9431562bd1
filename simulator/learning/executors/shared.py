"""Global weights sent once per version: published tensors, referenced by the jobs that carry them.

Why: a FedAvg round of the small-clients benchmark sends the same 620 KB global state to 16 jobs.
The learner hands every job its own copy (``submodel.extract`` clones), so the store recognises a
published tensor by its bytes: each full-shape tensor of a job is compared, bit for bit, with the
same-named tensor of the live generations (a few tens of microseconds) and, when equal, replaced by
a reference. Tensors nobody published yet form a new generation. Width-pruned slices (shapes smaller
than the full model's) travel by value with the job.

Generations are freed when no job in flight references them and they are not among the newest
:attr:`WeightStore.KEEP`. Two back ends: :class:`SharedMemoryStore` (one ``multiprocessing``
shared-memory segment per generation, read in the workers through ``torch.frombuffer``, raw bytes,
no pickle) and the Ray store in ``ray_actors.py`` (one ``ray.put`` per generation).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np
import torch
from torch import Tensor

_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


@dataclass(frozen=True)
class SharedRef:
    """Where a published tensor lives: generation, byte offset, dtype name, shape."""

    generation: int
    offset: int
    dtype: str
    shape: tuple[int, ...]


def same_bits(a: Tensor, b: Tensor) -> bool:
    """Bitwise equality (``torch.equal`` would call -0.0 and 0.0 equal and NaN unequal to itself)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    a, b = a.detach().contiguous(), b.detach().contiguous()
    if a.dtype.is_complex:
        a, b = torch.view_as_real(a), torch.view_as_real(b)
    bits = _BITS.get(a.element_size())
    if bits is None or a.dtype == torch.bool:
        return bool(torch.equal(a, b))
    a, b = a.view(bits), b.view(bits)
    # NumPy's comparison is 3-4x faster than torch.equal on CPU here (80 against 300 us for the
    # 115,200 weights of the CNN's last convolution); it is on the path of every job a pool sends
    return bool(np.array_equal(a.numpy(), b.numpy()))


_NP_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _bits_of(t: Tensor) -> Any:
    """The tensor's raw bits as a flat NumPy integer array (a view when it can be); what
    :meth:`WeightStore.encode` compares, one NumPy call per tensor (its hot path: every job a pool
    sends passes here, ~20 tensors each)."""
    t = t.detach()
    if t.dtype.is_complex:
        t = torch.view_as_real(t)
    if t.dtype == torch.bfloat16 or t.dtype == torch.bool or t.element_size() not in _NP_BITS:
        return t.contiguous().clone()  # compared with torch.equal (bool) or bitwise below
    return t.contiguous().numpy().reshape(-1).view(_NP_BITS[t.element_size()])


def _equal_bits(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        if not (isinstance(a, Tensor) and isinstance(b, Tensor)) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        return same_bits(a, b)
    return a.shape == b.shape and a.dtype == b.dtype and bool((a == b).all())


def full_shapes(data: Any) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of the full model's state (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = data.build()
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def _aligned(n: int) -> int:
    return (n + 63) // 64 * 64


class WeightStore:
    """Deduplicates full-shape tensors of jobs into generations (the back end stores them)."""

    KEEP = 2  # newest generations kept without references: the next jobs of a round reuse them

    def __init__(self, full_shapes: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
        self.full_shapes = full_shapes
        self._gens: OrderedDict[int, dict[str, Tensor]] = OrderedDict()  # gen -> name -> published view
        self._bits: dict[int, dict[str, Any]] = {}                           # the same as raw-bit arrays
        self._sources: dict[int, dict[str, Tensor]] = {}                     # the tensors published
        self._refs: dict[int, int] = {}
        self._next = 0

    # ------------------------------------------------------------------ back end
    def _create(self, gen: int, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """Store `tensors`; return read views of them (compared against later jobs)."""
        raise NotImplementedError

    def _free(self, gen: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ front end
    def encode(self, state: dict[str, Tensor] | None) -> tuple[dict[str, Any] | None, list[int]]:
        """`state` with every published full-shape tensor replaced by a reference; the generations
        used (each gains a reference until :meth:`release`)."""
        if state is None:
            return None, []
        out: dict[str, Any] = {}
        missing: dict[str, Tensor] = {}
        used: set[int] = set()
        for name, t in state.items():
            full = self.full_shapes.get(name)
            if full is None or tuple(t.shape) != full[0] or t.dtype != full[1] or t.device.type != "cpu":
                out[name] = t
                continue
            hit = next((g for g in reversed(self._gens) if self._sources[g].get(name) is t), None)
            if hit is None:
                bits = _bits_of(t)
                hit = next((g for g in reversed(self._gens) if name in self._gens[g]
                            and _equal_bits(self._bits[g][name], bits)), None)
            if hit is None:
                missing[name] = t
            else:
                out[name] = self._ref(hit, name)
                used.add(hit)
        if missing:
            gen = self._next
            self._next += 1
            self._gens[gen] = self._create(gen, missing)
            self._bits[gen] = {k: _bits_of(v) for k, v in self._gens[gen].items()}
            self._sources[gen] = missing
            self._refs[gen] = 0
            for name in missing:
                out[name] = self._ref(gen, name)
            used.add(gen)
        for g in used:
            self._refs[g] += 1
        self._collect()
        return {name: out[name] for name in state}, sorted(used)

    def release(self, gens: list[int]) -> None:
        """A job that referenced `gens` finished (or was cancelled)."""
        for g in gens:
            if g in self._refs:
                self._refs[g] -= 1
        self._collect()

    def _ref(self, gen: int, name: str) -> Any:
        return (gen, name)

    def _collect(self) -> None:
        newest = list(self._gens)[-self.KEEP:]
        for g in [g for g in self._gens if self._refs[g] <= 0 and g not in newest]:
            del self._gens[g], self._refs[g], self._bits[g], self._sources[g]
            self._free(g)

    def close(self) -> None:
        for g in list(self._gens):
            del self._gens[g], self._bits[g], self._sources[g]
            self._free(g)
        self._refs.clear()

    @property
    def live(self) -> list[int]:
        return list(self._gens)


class SharedMemoryStore(WeightStore):
    """Generations in ``multiprocessing.shared_memory`` segments, named ``<prefix>-<gen>``."""

    def __init__(self, full_shapes: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
        super().__init__(full_shapes)
        self._segments: dict[int, shared_memory.SharedMemory] = {}
        self._layout: dict[int, dict[str, SharedRef]] = {}

    def _create(self, gen: int, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        size = sum(_aligned(t.numel() * t.element_size()) for t in tensors.values())
        shm = shared_memory.SharedMemory(create=True, size=max(size, 1))
        views, layout, offset = {}, {}, 0
        for name, t in tensors.items():
            view = _view(shm, offset, t.dtype, tuple(t.shape))
            view.copy_(t)
            views[name] = view
            layout[name] = SharedRef(gen, offset, str(t.dtype).removeprefix("torch."), tuple(t.shape))
            offset += _aligned(t.numel() * t.element_size())
        self._segments[gen], self._layout[gen] = shm, layout
        return views

    def _ref(self, gen: int, name: str) -> Any:
        return self._layout[gen][name]

    def segment_name(self, gen: int) -> str:
        return self._segments[gen].name

    def _free(self, gen: int) -> None:
        shm = self._segments.pop(gen)
        self._layout.pop(gen)
        try:
            shm.close()
        except BufferError:  # a view is still referenced somewhere: the mapping dies with it
            pass
        shm.unlink()


def _view(shm: shared_memory.SharedMemory, offset: int, dtype: torch.dtype, shape: tuple[int, ...]) -> Tensor:
    count = 1
    for s in shape:
        count *= s
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(shm.buf, dtype=dtype, count=count, offset=offset).view(shape)


class SharedMemoryReader:
    """The worker side: attaches segments by name, builds tensors over them, detaches when told."""

    def __init__(self) -> None:
        self._open: dict[str, shared_memory.SharedMemory] = {}
        self._closing: list[shared_memory.SharedMemory] = []

    def decode(self, state: dict[str, Any] | None, names: dict[int, str]) -> dict[str, Tensor] | None:
        if state is None:
            return None
        out = {}
        for key, v in state.items():
            if isinstance(v, SharedRef):
                seg = names[v.generation]
                shm = self._open.get(seg)
                if shm is None:
                    shm = self._open[seg] = shared_memory.SharedMemory(name=seg)
                v = _view(shm, v.offset, getattr(torch, v.dtype), v.shape)
            out[key] = v
        return out

    def drop(self, segments: list[str]) -> None:
        """Detach `segments` (already unlinked by the owner); a mapping still viewed closes later."""
        self._closing.extend(self._open.pop(s) for s in segments if s in self._open)
        still = []
        for shm in self._closing:
            try:
                shm.close()
            except BufferError:
                still.append(shm)
        self._closing = still
