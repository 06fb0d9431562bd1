"""A device of the fleet and the SimPy process of one client-round on it.

The device knows its compute speed, memory limit, power draw and network path; it knows nothing of
PyTorch. A training job is an opaque `Job` whose sizes and durations come from the cost model; the
engine passes an ``on_compute_start`` hook that submits the real training when compute begins.

Time accounting is exact by construction: every second of a device's wall time is in exactly one of
compute, communication (latency + transfer), offline or idle, because phases are recorded from the
same clock readings that start and end them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import simpy

from simulator.environment import Environment
from simulator.fleet.latency import LatencyFn, LatencyStream, kind_of, latency_fn
from simulator.network import Link, Network, Transfer
from simulator.trace.recorder import EVENT_CODES

if TYPE_CHECKING:
    from simulator.trace.recorder import TraceRecorder


@dataclass(frozen=True, eq=False, slots=True)
class JobShape:
    """What every job of one device is: its submodel, sizes and durations, computed once per device
    (unless rolling depth windows move its plan from job to job). Identity-hashed: devices with equal
    plans may share one shape."""

    num_samples: int
    depth: int
    width_ratio: float
    trainable_from: int
    local_steps: int
    submodel_params: int
    download_bytes: int
    upload_bytes: int
    peak_memory_bytes: int
    compute_s: float
    flops: float


@dataclass(eq=False, slots=True)
class Job:
    """One dispatched unit of local work, from dispatch to its single outcome: its device's shape
    plus what is this job's own (id, version, times, outcome)."""

    job_id: int
    device: "Device"
    shape: JobShape
    base_version: int
    dispatch_s: float
    arrival_s: float | None = None
    outcome: str | None = None  # accepted | dropped | lost | oom | unfinished
    process: "RoundProcess | None" = None
    # the JobView handed to policies (set by the server)
    view: object | None = None

    # the shape's figures, for callers off the hot path (the learner hooks, tests)
    depth = property(lambda self: self.shape.depth)
    width_ratio = property(lambda self: self.shape.width_ratio)
    trainable_from = property(lambda self: self.shape.trainable_from)
    local_steps = property(lambda self: self.shape.local_steps)
    num_samples = property(lambda self: self.shape.num_samples)


@dataclass(eq=False, slots=True)
class Device:
    """Static facts and running accounts of one device."""

    index: int
    name: str
    profile_name: str
    group: int
    power_mode: str
    usable_memory_bytes: int
    busy_power_w: float
    idle_power_w: float
    down_links: tuple[Link, ...]
    up_links: tuple[Link, ...]
    cap_bps: float | None
    latency_mean_s: float
    latency_jitter_s: float
    latency_distribution: str
    rng: np.random.Generator
    online: bool = True
    job: Job | None = None
    excluded_reason: str | None = None
    offline_since_s: float | None = None
    compute_s: float = 0.0
    comm_s: float = 0.0
    offline_s: float = 0.0
    peak_memory_bytes: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    # Jobs dispatched to it and, of those, merged: plain fields, as every client-round moves both (entries
    # of a dict cost a second object to reach per round); how the others ended (dropped, lost, oom) below.
    jobs: int = 0
    accepted: int = 0
    other_outcomes: dict[str, int] = field(default_factory=lambda: {"dropped": 0, "lost": 0, "oom": 0})
    # One transfer's latency (s): the draw function for this device's spec, chosen once (scalar draws
    # from `rng`; share_latency_streams may switch it to block draws).
    latency_s: LatencyFn = field(init=False, repr=False)
    # Its downloads' and uploads' flow classes (Network.route), kept from its first transfer on.
    down_route: object = field(default=None, init=False, repr=False)
    up_route: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.latency_s = latency_fn(self.latency_mean_s, self.latency_jitter_s, self.latency_distribution, self.rng)

    @property
    def idle(self) -> bool:
        return self.online and self.job is None and self.excluded_reason is None


def share_latency_streams(devices: list[Device]) -> None:
    """Give devices block-drawn latencies where that cannot change a single value.

    Devices share the engine's latency generator. When every device that draws from a generator
    (jitter > 0) uses the same distribution, one :class:`LatencyStream` serves them all, in the order
    they draw; with mixed distributions the interleaving of kinds matters, so they keep scalar draws.
    """
    users: dict[int, list[Device]] = {}
    for device in devices:
        if device.latency_jitter_s > 0:
            users.setdefault(id(device.rng), []).append(device)
    for group in users.values():
        kinds = {kind_of(d.latency_distribution) for d in group}
        if len(kinds) == 1:
            stream = LatencyStream(group[0].rng, kinds.pop())
            draws: dict[tuple[float, float], LatencyFn] = {}
            for device in group:
                spec = (device.latency_mean_s, device.latency_jitter_s)
                if spec not in draws:
                    draws[spec] = latency_fn(*spec, device.latency_distribution, device.rng, stream)
                device.latency_s = draws[spec]


def _phase_outcome(interrupt: simpy.Interrupt) -> str:
    """'dropped' when the server cancelled the job, 'lost' when the device went offline."""
    return "dropped" if str(interrupt.cause).startswith("cancelled") else "lost"


# events.parquet text codes the round callbacks pack as constants
_TEXT_DOWNLOAD, _TEXT_COMPUTE, _TEXT_UPLOAD, _TEXT_DONE = (EVENT_CODES[t] for t in ("download", "compute", "upload", "done"))

# Phases of a client-round, in order (what the round is waiting for).
_STARTING, _DOWN_LATENCY, _DOWN, _COMPUTE, _UP_LATENCY, _UP, _ENDED = range(7)


class RoundProcess:
    """One client-round: download → memory check → compute → upload, as a chain of event callbacks.

    Why not a ``simpy.Process``: resuming a generator costs several times what the round itself does.
    This object schedules, waits for and reacts to exactly the events such a process would (a start
    event at URGENT priority, the latency and compute timeouts, the transfers' completion events,
    URGENT interruptions), in the same order, so traces are identical; it only skips the process-exit
    event nobody waits for. Rounds dispatched together share one start event: their starts were
    consecutive in the queue anyway. It offers what the engine and server use of a process:
    :attr:`is_alive` and :meth:`interrupt`.
    """

    __slots__ = ("owner", "job", "device", "env", "phase", "phase_start_s", "transfer", "_target", "_callback")

    def __init__(self, owner: "ClientRound", job: Job) -> None:
        self.owner = owner
        self.job = job
        self.device = job.device
        self.env = owner.env
        self.phase = _STARTING
        self.phase_start_s = 0.0
        self.transfer: Transfer | None = None
        self._target: simpy.Event | None = None
        self._callback: Callable[[simpy.Event], None] | None = None

    @property
    def is_alive(self) -> bool:
        """True until the round has ended (arrived, failed or been interrupted)."""
        return self.phase != _ENDED

    def interrupt(self, cause: object = None) -> None:
        """Deliver a ``simpy.Interrupt(cause)`` at this instant, after the events already due (URGENT)."""
        if self.phase == _ENDED:
            raise RuntimeError(f"{self!r} has ended and cannot be interrupted.")
        self.env.urgent((self._on_interrupt,), simpy.Interrupt(cause))

    # ------------------------------------------------------------------ the round, step by step
    # Each step ends by waiting: `phase` is what it waits in, `_target` the event it waits for,
    # `_callback` what runs then (an interrupt removes it, as SimPy removes a process's resume
    # callback).

    def begin(self, _event: simpy.Event | None = None) -> None:
        if self.phase != _STARTING:
            return
        self.phase_start_s = self.env.now
        then = self._download_start  # one bound method for both uses (each `self._x` makes a new one)
        self.phase, self._callback = _DOWN_LATENCY, then
        self._target = self.env.call_later(self.device.latency_s(), then)

    def _download_start(self, _event: simpy.Event) -> None:
        """Start the download and wait for it. (The transfer is the event that succeeds: waiting on it
        after starting it is the same, it is processed after this callback.)"""
        device = self.device
        route = device.down_route
        if route is None:  # kept from the first transfer on: no path key built per transfer
            route = device.down_route = self.owner.network.route(device.down_links, device.cap_bps)
        transfer = self.transfer = self.owner.network.transfer_in(route, self.job.shape.download_bytes)
        then = self._download_done
        transfer.callbacks.append(then)
        self.phase, self._target, self._callback = _DOWN, transfer, then

    def _upload_start(self, _event: simpy.Event) -> None:
        """Start the upload and wait for it: :meth:`_download_start`'s steps, written out in both rather
        than shared through a helper (a call less per transfer, two per client-round)."""
        device = self.device
        route = device.up_route
        if route is None:
            route = device.up_route = self.owner.network.route(device.up_links, device.cap_bps)
        transfer = self.transfer = self.owner.network.transfer_in(route, self.job.shape.upload_bytes)
        then = self._upload_done
        transfer.callbacks.append(then)
        self.phase, self._target, self._callback = _UP, transfer, then

    def _download_done(self, _event: simpy.Event) -> None:
        job, device, owner = self.job, self.device, self.owner
        shape = job.shape
        device.bytes_down += shape.download_bytes
        now = self.env.now  # book the transfer (its time, bytes and events row), as _upload_done does
        device.comm_s += now - self.phase_start_s
        owner.events.append_codes(device.index, _TEXT_DOWNLOAD, self.phase_start_s, now, job.job_id,
                                  job.base_version, shape.download_bytes, 0.0, _TEXT_DONE)
        self.transfer = None
        if shape.peak_memory_bytes > device.usable_memory_bytes:
            owner.record(job, "oom", now, 0, 0.0, "oom")
            owner.on_failure(
                job, "oom",
                f"needs {shape.peak_memory_bytes / 1e9:.2f} GB, usable {device.usable_memory_bytes / 1e9:.2f} GB",
            )
            self._end()
            return
        if shape.peak_memory_bytes > device.peak_memory_bytes:
            device.peak_memory_bytes = shape.peak_memory_bytes
        if owner.on_compute_start is not None:
            owner.on_compute_start(job)
        self.phase_start_s = now  # (the hook cannot move the clock)
        then = self._compute_done
        self.phase, self._callback = _COMPUTE, then
        self._target = self.env.call_later(shape.compute_s, then)

    def _compute_done(self, _event: simpy.Event) -> None:
        job, device = self.job, self.device
        now = self.env.now
        device.compute_s += now - self.phase_start_s
        self.owner.events.append_codes(device.index, _TEXT_COMPUTE, self.phase_start_s, now, job.job_id,
                                       job.base_version, 0, job.shape.flops, _TEXT_DONE)
        self.phase_start_s = now
        then = self._upload_start
        self.phase, self._callback = _UP_LATENCY, then
        self._target = self.env.call_later(device.latency_s(), then)

    def _upload_done(self, _event: simpy.Event) -> None:
        job, device = self.job, self.device
        nbytes = job.shape.upload_bytes
        device.bytes_up += nbytes
        now = job.arrival_s = self.env.now
        device.comm_s += now - self.phase_start_s
        self.owner.events.append_codes(device.index, _TEXT_UPLOAD, self.phase_start_s, now, job.job_id,
                                       job.base_version, nbytes, 0.0, _TEXT_DONE)
        self.transfer = None
        self.owner.on_arrival(job)
        self._end()

    def _end(self) -> None:
        # Drop every reference back to the job, so job ↔ round is no cycle and both are freed by
        # reference counting (cyclic garbage per round made the collector a third of the loop's cost).
        self.phase = _ENDED
        self._target = self._callback = None
        self.job = None  # type: ignore[assignment]

    def book_at_stop(self) -> None:
        """The run stops with this round under way: book the phase in progress up to now as what it is
        (compute, or communication for a latency wait or a transfer), with outcome ``unfinished`` and
        the FLOPs or bytes done so far, so utilization and energy count it (issue 13: an asynchronous
        run always stops with stragglers mid-job). The round then ends; nothing more is scheduled."""
        phase = self.phase
        if phase in (_STARTING, _ENDED):
            return  # dispatched at this very instant (no time spent yet), or over already
        job, device, owner = self.job, self.device, self.owner
        now = self.env.now
        start_s = self.phase_start_s
        waiting = self._target.callbacks if self._target is not None else None  # None: being processed (Ctrl-C)
        if waiting and self._callback in waiting:
            waiting.remove(self._callback)  # the loop is over; this only keeps the round's end final
        if phase == _COMPUTE:
            device.compute_s += now - start_s
            compute_s = job.shape.compute_s
            done_share = (now - start_s) / compute_s if compute_s > 0 else 1.0
            owner.record(job, "compute", start_s, 0, job.shape.flops * done_share, "unfinished")
        else:
            transfer = self.transfer
            moved = int(owner.network.received_bits(transfer) / 8) if transfer is not None else 0
            device.comm_s += now - start_s
            if phase in (_DOWN_LATENCY, _DOWN):
                device.bytes_down += moved
                owner.record(job, "download", start_s, moved, 0.0, "unfinished")
            else:
                device.bytes_up += moved
                owner.record(job, "upload", start_s, moved, 0.0, "unfinished")
        self.transfer = None
        self._end()

    def _on_interrupt(self, event: simpy.Event) -> None:
        """What the generator's ``except simpy.Interrupt`` blocks did: book the partial phase, then fail."""
        if self.phase == _ENDED:
            return  # a second interrupt at the same instant
        interrupt: simpy.Interrupt = event.value
        if self._target is not None:
            self._target.callbacks.remove(self._callback)
        job, device, owner = self.job, self.device, self.owner
        now = self.env.now
        start_s = self.phase_start_s
        phase = self.phase
        if phase == _COMPUTE:
            device.compute_s += now - start_s
            compute_s = job.shape.compute_s
            done_share = (now - start_s) / compute_s if compute_s > 0 else 1.0
            owner.record(job, "compute", start_s, 0, job.shape.flops * done_share, _phase_outcome(interrupt))
        else:
            transfer = self.transfer
            moved = int(owner.network.cancel(transfer) / 8) if transfer is not None else 0
            device.comm_s += now - start_s
            if phase in (_DOWN_LATENCY, _DOWN):
                device.bytes_down += moved
                owner.record(job, "download", start_s, moved, 0.0, _phase_outcome(interrupt))
            else:
                device.bytes_up += moved
                owner.record(job, "upload", start_s, moved, 0.0, _phase_outcome(interrupt))
        self.transfer = None
        self._target = self._callback = None
        cause = str(interrupt.cause or "lost:offline")
        outcome, _, reason = cause.partition(":")
        if outcome != "cancelled":  # a cancel was booked by the server already
            owner.on_failure(job, outcome, reason or cause)
        self._end()


class ClientRound:
    """Starts client-rounds (:class:`RoundProcess`) and gives them the network, trace and engine hooks."""

    def __init__(
        self,
        env: Environment,
        network: Network,
        recorder: "TraceRecorder",
        on_compute_start: Callable[[Job], None] | None,
        on_arrival: Callable[[Job], None],
        on_failure: Callable[[Job, str, str], None],
    ) -> None:
        self.env = env
        self.network = network
        # events.parquet: phases that end as planned append rows of codes (append_codes)
        self.events = recorder.events
        # None: nothing to do when compute begins (timing-only)
        self.on_compute_start = on_compute_start
        self.on_arrival = on_arrival
        self.on_failure = on_failure

    def start(self, job: Job) -> RoundProcess:
        return self.start_all([job])[0]

    def start_all(self, jobs: list[Job]) -> list[RoundProcess]:
        """Start rounds for `jobs`, which begin in this order at this instant (one URGENT start event).

        Equivalent to one start event per round: nothing can be scheduled between the rounds' starts
        at this instant, since they are created together and a start schedules only later timeouts.
        """
        rounds = []
        for job in jobs:
            job.process = round_ = RoundProcess(self, job)
            rounds.append(round_)
        if rounds:
            self.env.urgent([round_.begin for round_ in rounds])
        return rounds

    def record(self, job: Job, phase: str, start_s: float, nbytes: int, flops: float, outcome: str) -> None:
        device = job.device
        self.events.append(device.index, phase, start_s, self.env.now, job.job_id, job.base_version, nbytes, flops,
                           outcome)
