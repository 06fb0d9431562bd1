"""The server: versions, the jobs in flight, and the bookkeeping of every update's single outcome.

It implements :class:`~simulator.server.policy.ServerView` for the aggregation policy and calls the
engine's hooks to build jobs and to merge models. Every dispatched job ends exactly once — accepted,
dropped, lost, oom, or unfinished when the run stops — and each end writes one row of
``updates.parquet``.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterable, Protocol

import numpy as np
import simpy

from simulator.fleet.device import ClientRound, Device, Job, JobShape, share_latency_streams
from simulator.server.policy import AGGREGATE_MODES, AggregationPolicy, JobView, PolicyCallError
from simulator.server.registry import policy_label
from simulator.trace.recorder import EVENT_CODES, TraceRecorder

_NAN = float("nan")
# updates.parquet text codes a merge packs as constants (the fixed vocabulary: trace.columns)
_TEXT_ACCEPTED, _TEXT_NO_REASON = EVENT_CODES["accepted"], EVENT_CODES[""]
_INF = float("inf")


def _job_text(job: object) -> str:
    return f"job {job.job_id}" if isinstance(job, JobView) else f"{type(job).__name__} {job!r:.60} (not a job)"


def _aggregate_problem(weighted: list, waiting: dict[int, Job], mode: object, global_weight: object) -> str:
    """What is wrong with an aggregate() call (the slow path of Server._check_weighted)."""
    if mode not in AGGREGATE_MODES:
        return f"mode must be one of {', '.join(repr(m) for m in AGGREGATE_MODES)} (got {mode!r})"
    if isinstance(global_weight, bool) or not isinstance(global_weight, (int, float)) or not 0 <= global_weight < _INF:
        return f"global_weight must be a finite number >= 0 (got {global_weight!r})"
    seen: set[int] = set()
    for i, item in enumerate(weighted):
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], JobView)):
            return f"item {i} is not a (job, weight) pair (got {item!r:.80})"
        view, weight = item
        if view.job_id in seen:
            return f"job {view.job_id} is listed twice"
        seen.add(view.job_id)
        if view.job_id not in waiting:
            return f"job {view.job_id} is not waiting to be merged (it has not arrived, or was merged or dropped already)"
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < _INF:
            return f"job {view.job_id} has weight {weight!r}; weights must be finite numbers >= 0"
    return "its arguments cannot be merged"


class ModelHooks(Protocol):
    """What the server needs of the learning side (a no-op in timing-only runs)."""

    def dispatch(self, job: Job) -> None: ...
    def discard(self, job: Job) -> None: ...
    def merge(self, weighted: list[tuple[Job, float]], mode: str, global_weight: float) -> None: ...


def _block_coverage(spans: dict[tuple[int, int], int], num_blocks: int) -> list[int]:
    """coverage[b] = how many jobs trained block b, from the count of jobs per span (trainable_from,
    depth): trainable_from <= b < depth. O(distinct spans + blocks): a fleet has a few submodel shapes."""
    change = [0] * (num_blocks + 1)
    for (first, end), count in spans.items():
        first = max(first, 0)
        end = min(end, num_blocks)
        if first < end:
            change[first] += count
            change[end] -= count
    coverage = [0] * num_blocks
    running = 0
    for block in range(num_blocks):
        running += change[block]
        coverage[block] = running
    return coverage


class _Timer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Server:
    """Server state and the policy's view of it."""

    def __init__(
        self,
        env: simpy.Environment,
        devices: list[Device],
        policy: AggregationPolicy,
        recorder: TraceRecorder,
        client_round: ClientRound,
        make_job: Callable[[Device, int, int], Job],
        hooks: ModelHooks,
        num_blocks: int,
        rng: np.random.Generator,
        on_version: Callable[[int], None],
    ) -> None:
        self.env = env
        self.devices = devices
        self.policy = policy
        self.recorder = recorder
        self.client_round = client_round
        self.make_job = make_job
        self.hooks = hooks
        # timing-only hooks do nothing: the dispatch loop skips calling them
        self._hooks_noop = bool(getattr(hooks, "noop", False))
        self.num_blocks = num_blocks
        self._rng = rng
        self.on_version = on_version
        self._version = 0
        self._job_ids = itertools.count()
        self.jobs_in_flight: dict[int, Job] = {}
        self.jobs_waiting: dict[int, Job] = {}  # arrived, not yet merged or dropped
        self.staleness_accepted: list[int] = []
        # devices with excluded_reason set (only job_failed sets it), so num_devices is O(1) per call
        self._excluded = sum(1 for d in devices if d.excluded_reason is not None)
        share_latency_streams(devices)  # latencies drawn in blocks, same values (see fleet/device.py)
        self.stopped = False  # set when the stop condition fires: nothing more is merged or dispatched
        self.paused = False  # a maintenance window: policy reactions wait in _deferred
        # Every idle device is in here (a superset): a device becomes idle only when its job ends
        # (job_arrived, job_failed, cancel) or it comes online (device_ready); idle_devices prunes it.
        self._maybe_idle: set[int] = set(range(len(devices)))
        self._deferred: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ ServerView
    @property
    def now(self) -> float:
        return self.env.now

    @property
    def version(self) -> int:
        return self._version

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    @property
    def num_devices(self) -> int:
        return len(self.devices) - self._excluded

    def idle_devices(self) -> list[int]:
        """Indices of the idle devices, ascending.

        Only devices that may have become idle since the last call are checked (`_maybe_idle`): a
        semi-asynchronous merge every K arrivals must not scan a 10,000-device fleet each time."""
        devices = self.devices
        idle = [i for i in self._maybe_idle
                if (d := devices[i]).online and d.job is None and d.excluded_reason is None]
        self._maybe_idle = set(idle)  # the others become idle only via the paths that re-add them
        idle.sort()
        return idle

    def in_flight(self) -> list[JobView]:
        return [job.view for job in self.jobs_in_flight.values()]  # type: ignore[misc]

    def staleness(self, job: JobView) -> int:
        return self._version - job.base_version

    def dispatch(self, devices: Iterable[int]) -> list[JobView]:
        views: list[JobView] = []
        if self.stopped:
            return views
        jobs: list[Job] = []
        all_devices = self.devices
        make_job, job_ids, version, in_flight = self.make_job, self._job_ids, self._version, self.jobs_in_flight
        dispatch_hook = None if self._hooks_noop else self.hooks.dispatch
        for index in devices:
            try:
                device = all_devices[index]
            except (IndexError, TypeError):
                raise self._refused("dispatch()", f"got {index!r}, not a device index 0 … {len(all_devices) - 1}") from None
            if not (device.online and device.job is None and device.excluded_reason is None):  # device.idle
                continue
            job = make_job(device, next(job_ids), version)
            job.view = view = JobView(job.job_id, device.index, version, job.shape.num_samples, job.dispatch_s)
            device.job = job
            device.jobs += 1
            in_flight[job.job_id] = job
            if dispatch_hook is not None:
                dispatch_hook(job)
            jobs.append(job)
            views.append(view)
        # The rounds begin together at this instant, in dispatch order (see ClientRound.start_all).
        self.client_round.start_all(jobs)
        return views

    def aggregate(
        self, weighted: list[tuple[JobView, float]], trigger: str, *, mode: str = "delta", global_weight: float = 0.0
    ) -> None:
        if self.stopped:
            return
        waiting = self.jobs_waiting
        if not isinstance(weighted, list):
            weighted = list(weighted)
        self._check_weighted(weighted, mode, global_weight)
        # One pass per accepted update (a 10,000-device round merges 10,000): take the job, its
        # staleness and shape, book it and write its row. The merge hook runs after, on the same jobs
        # in the same order.
        base = self._version
        version = base + 1
        jobs: list[tuple[Job, float]] = []
        staleness: list[int] = []
        shapes: dict[JobShape, int] = {}  # identity-hashed: a fleet has a few distinct shapes
        write_update = self._write_update
        for view, weight in weighted:
            job = waiting.pop(view.job_id)
            jobs.append((job, weight))
            tau = base - job.base_version
            staleness.append(tau)
            shape = job.shape
            shapes[shape] = shapes.get(shape, 0) + 1
            job.outcome = "accepted"
            job.device.accepted += 1
            write_update(job, version, tau, weight, _TEXT_ACCEPTED, _TEXT_NO_REASON)
        spans: dict[tuple[int, int], int] = {}
        for shape, count in shapes.items():
            span = (shape.trainable_from, shape.depth)
            spans[span] = spans.get(span, 0) + count
        coverage = _block_coverage(spans, self.num_blocks)
        self.hooks.merge(jobs, mode, global_weight)
        self._version = version
        self.staleness_accepted.extend(staleness)
        # the mean staleness as np.mean gives it (an exact integer sum, one correctly rounded division:
        # the same float), without turning a list of 10,000 into an array at every merge
        self.recorder.versions.append(
            self._version, self.env.now, trigger, len(jobs),
            sum(staleness) / len(staleness) if staleness else 0.0, coverage, min(coverage) if coverage else 0,
        )
        self.on_version(self._version)

    def _check_weighted(self, weighted: list[tuple[JobView, float]], mode: str, global_weight: float) -> None:
        """Refuse, before anything is booked, an aggregate() the server cannot do: one C-speed pass
        for the common case, a second only to say what is wrong."""
        try:
            ids = {view.job_id for view, _ in weighted}
            weights = [w for _, w in weighted]
            total = sum(weights)
            ok = (len(ids) == len(weighted) and ids <= self.jobs_waiting.keys() and total < _INF
                  and (not weights or min(weights) >= 0))
        except (TypeError, ValueError, AttributeError):
            ok = False
        if ok and mode in AGGREGATE_MODES and 0.0 <= global_weight < _INF:
            return
        raise self._refused("aggregate()", _aggregate_problem(weighted, self.jobs_waiting, mode, global_weight))

    def _refused(self, call: str, problem: str) -> PolicyCallError:
        return PolicyCallError(policy_label(self.policy), f"{call}:", problem)

    def drop(self, job: JobView, reason: str) -> None:
        full = self.jobs_waiting.pop(getattr(job, "job_id", None), None)
        if full is None:
            raise self._refused("drop()", f"{_job_text(job)} is not waiting to be merged (it has not arrived, "
                                          "or was merged or dropped already)")
        full.outcome = "dropped"
        full.device.other_outcomes["dropped"] += 1
        self.hooks.discard(full)
        self._write_update(full, -1, self._version - full.base_version, 0.0, *self._codes("dropped", reason))

    def cancel(self, job: JobView, reason: str) -> None:
        if not isinstance(job, JobView):
            raise self._refused("cancel()", f"wants a job (JobView), not {type(job).__name__}")
        full = self.jobs_in_flight.pop(job.job_id, None)
        if full is None:
            return
        # Free the device now, so a round starting at this same instant can use it; the process
        # only records its partial phase when the interrupt is delivered.
        full.device.job = None
        self._maybe_idle.add(full.device.index)
        full.outcome = "dropped"
        full.device.other_outcomes["dropped"] += 1
        self.hooks.discard(full)
        self._write_update(full, -1, self._version - full.base_version, 0.0, *self._codes("dropped", reason))
        if full.process is not None and full.process.is_alive:
            full.process.interrupt(f"cancelled:{reason}")

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> _Timer:
        if isinstance(delay_s, bool) or not isinstance(delay_s, (int, float)) or not 0.0 <= delay_s < _INF:
            raise self._refused("call_later()", f"needs a finite delay >= 0 s (got {delay_s!r})")
        if not callable(callback):
            raise self._refused("call_later()", f"needs a callable (got {type(callback).__name__})")
        timer = _Timer()
        event = self.env.timeout(delay_s)
        event.callbacks.append(lambda _ev: None if timer.cancelled else self._when_running(callback))
        return timer

    # ------------------------------------------------------------------ maintenance pauses

    def _when_running(self, action: Callable[[], None]) -> None:
        """Run a policy reaction now, or — during a server pause — when the pause ends, in order."""
        if self.paused:
            self._deferred.append(action)
        else:
            action()

    def pause(self) -> None:
        """Maintenance: arrivals, deadline timers and devices coming online wait until resume()."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        while self._deferred and not self.paused:
            self._deferred.pop(0)()

    # ------------------------------------------------------------------ from devices

    def start(self) -> None:
        self.policy.start(self)

    def job_arrived(self, job: Job) -> None:
        del self.jobs_in_flight[job.job_id]
        device = job.device
        device.job = None
        self._maybe_idle.add(device.index)
        self.jobs_waiting[job.job_id] = job
        job.view.arrival_s = job.arrival_s  # type: ignore[union-attr]
        if not self.stopped:
            view: JobView = job.view  # type: ignore[assignment]
            if self.paused:  # as _when_running, written out: this runs once per client-round
                self._deferred.append(lambda: self.stopped or self.policy.on_arrival(self, view))
            else:
                self.policy.on_arrival(self, view)

    def job_failed(self, job: Job, outcome: str, reason: str) -> None:
        del self.jobs_in_flight[job.job_id]
        job.device.job = None
        self._maybe_idle.add(job.device.index)
        job.outcome = outcome
        outcomes = job.device.other_outcomes
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "oom" and job.device.excluded_reason is None:
            # the planner could not find a submodel that fits: it would fail every time
            job.device.excluded_reason = "oom"
            self._excluded += 1
        self.hooks.discard(job)
        self._write_update(job, -1, -1, 0.0, *self._codes(outcome, reason))
        self._when_running(lambda: self.policy.on_job_failed(self, job.view, outcome))  # type: ignore[arg-type]
        if job.device.idle:
            # still online (its link was cut, say): it is ready for work again right away
            self.device_ready(job.device)

    def device_ready(self, device: Device) -> None:
        self._maybe_idle.add(device.index)
        self._when_running(lambda: self.policy.on_device_ready(self, device.index) if device.idle else None)

    def finish(self) -> None:
        """The run stops: jobs still in flight or waiting end as 'unfinished'. A job in flight first
        books the phase it is in up to now (RoundProcess.book_at_stop): time spent is never idle."""
        for job in self.jobs_in_flight.values():
            if job.process is not None and job.process.is_alive:
                job.process.book_at_stop()
        for job in list(self.jobs_in_flight.values()) + list(self.jobs_waiting.values()):
            job.outcome = "unfinished"
            self._write_update(job, -1, self._version - job.base_version, 0.0, *self._codes("unfinished", "run stopped"))
        self.jobs_in_flight.clear()
        self.jobs_waiting.clear()

    def _codes(self, outcome: str, reason: str) -> tuple[int, int]:
        """The updates table's codes of an outcome and a reason (what :meth:`_write_update` takes)."""
        code = self.recorder.updates.code
        return code(outcome), code(reason)

    def _write_update(self, job: Job, applied_version: int, staleness: int, weight: float, outcome_code: int,
                      reason_code: int) -> None:
        """One updates.parquet row (text columns as codes: PackedTableWriter.append_codes). The outcome
        and reason come as codes (:meth:`_codes`): a merge writes one row per update with the same two
        constants, and looking them up per row was a tenth of its cost."""
        shape = job.shape
        self.recorder.updates.append_codes(
            job.job_id, job.device.index, job.dispatch_s, job.arrival_s if job.arrival_s is not None else _NAN,
            job.base_version, applied_version, staleness, weight, outcome_code, reason_code,
            shape.depth, shape.width_ratio, shape.submodel_params, shape.download_bytes, shape.upload_bytes,
            shape.peak_memory_bytes, shape.local_steps,
        )
