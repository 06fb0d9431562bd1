"""The global weights sent once per worker and version, not with every job (issue 16).

A job's ``state`` is the sub-state of its base version's global state (``TrainJob.base_state``): the
very tensors for a plan that keeps them whole, slices of them otherwise. Every job of a version shares
that one dict, and the learner never writes it in place (merges build new tensors). So a worker that
holds a version's global state can rebuild each job's ``state`` itself, by the same pure function
(:func:`~simulator.learning.submodel.extract`) on the same values: the result is bitwise the one the
job would give with its state sent along. The job then travels as a :class:`JobOnBase` — its plan,
seed and settings, a few hundred bytes — instead of the 620 KB of weights of issue 16's CNN.

- The process pool (one ordered pipe per worker) keeps, per worker, the keys it has sent
  (:class:`HeldBases`): a base goes along with the first job that needs it, with the keys the worker
  must drop (the least recently used beyond :attr:`HeldBases.HOLD`, two); the worker mirrors the set.
- Ray puts each base into its object store once (``ray.put``) and passes the reference with every
  job; an actor fetches it only when it does not hold it already.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Mapping

from torch import Tensor

from simulator.learning.submodel import extract
from simulator.learning.trainer import TrainJob


@dataclass
class JobOnBase:
    """A job without its weights: `job` has no ``state`` and no ``base_state``; the worker holds its
    base under `base_key`. A ``global``-distillation teacher that is the base itself is not sent either."""

    job: TrainJob
    base_key: int
    teacher_is_base: bool

    @classmethod
    def of(cls, job: TrainJob, base_key: int) -> JobOnBase:
        teacher_is_base = job.teacher is not None and job.teacher is job.base_state
        light = replace(job, state={}, base_state=None, teacher=None if teacher_is_base else job.teacher)
        return cls(light, base_key, teacher_is_base)

    def rebuild(self, base: dict[str, Tensor], param_axes: Mapping[str, Any]) -> TrainJob:
        """The job as the learner made it: its state extracted from `base`, as the learner did."""
        state = extract(base, self.job.plan, param_axes, copy=False)
        return replace(self.job, state=state, teacher=base if self.teacher_is_base else self.job.teacher)


class HeldBases:
    """Which bases each worker of a pool holds, by key, and the keys themselves (owner side).

    A base is keyed by identity while some worker holds it: the entry keeps a reference to it, so
    its ``id`` cannot be taken by another dict meanwhile. Two per worker: a synchronous round needs
    one, an asynchronous run mostly the newest two; a job on an older base only has it sent again.
    More would keep more whole models alive in every worker (a 0.11 B-parameter model is 440 MB)."""

    HOLD = 2

    def __init__(self, workers: int) -> None:
        self._keys: dict[int, tuple[int, dict[str, Tensor]]] = {}  # id(base) -> (key, base)
        self._ids: dict[int, int] = {}  # key -> id(base)
        self._held: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(workers)]
        self._next_key = 0
        self._lock = threading.Lock()  # place (the feeding thread) and lost (the receiving thread)

    def place(self, slot: int, base: dict[str, Tensor]) -> tuple[int, bool, list[int]]:
        """For a job on `base` sent to `slot`: (its key, whether the base must go with it, the keys
        the worker drops first)."""
        with self._lock:
            return self._place(slot, base)

    def _place(self, slot: int, base: dict[str, Tensor]) -> tuple[int, bool, list[int]]:
        entry = self._keys.get(id(base))
        if entry is None:
            key = self._next_key
            self._next_key += 1
            self._keys[id(base)] = (key, base)
            self._ids[key] = id(base)
        else:
            key = entry[0]
        held = self._held[slot]
        if key in held:
            held.move_to_end(key)
            return key, False, []
        held[key] = None
        dropped = []
        while len(held) > self.HOLD:
            dropped.append(held.popitem(last=False)[0])
        self._forget(dropped)
        return key, True, dropped

    def lost(self, slot: int) -> None:
        """The worker is gone, and what it held with it."""
        with self._lock:
            keys = list(self._held[slot])
            self._held[slot].clear()
            self._forget(keys)

    def _forget(self, keys: list[int]) -> None:
        for key in keys:
            if not any(key in held for held in self._held):
                del self._keys[self._ids.pop(key)]


class WorkerBases:
    """The bases a worker holds (worker side): what its owner sent, less what it said to drop."""

    def __init__(self, hold: int = HeldBases.HOLD) -> None:
        self.hold = hold
        self._bases: OrderedDict[int, dict[str, Tensor]] = OrderedDict()

    def get(self, key: int) -> dict[str, Tensor] | None:
        base = self._bases.get(key)
        if base is not None:
            self._bases.move_to_end(key)
        return base

    def put(self, key: int, base: dict[str, Tensor], dropped: list[int] | tuple[int, ...] = ()) -> None:
        for old in dropped:
            self._bases.pop(old, None)
        self._bases[key] = base
        while len(self._bases) > self.hold:
            self._bases.popitem(last=False)
