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
from simpy.events import URGENT, Event

from simulator.network import Link, Network, Transfer
from simulator.sim_events import timeout
from simulator.trace import EVENT_CODES

if TYPE_CHECKING:
    from simulator.trace import TraceRecorder


@dataclass(eq=False, slots=True)
class Job:
    """One dispatched unit of local work, from dispatch to its single outcome."""

    job_id: int
    device: "Device"
    base_version: int
    dispatch_s: float
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
    arrival_s: float | None = None
    outcome: str | None = None  # accepted | dropped | lost | oom | unfinished
    process: "RoundProcess | None" = None
    # the JobView handed to policies (set by the server)
    view: object | None = None


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
    counts: dict[str, int] = field(default_factory=lambda: {"jobs": 0, "accepted": 0, "dropped": 0, "lost": 0, "oom": 0})
    # set by share_latency_streams: `rng` read in blocks (then nothing else may draw from `rng`)
    latency_stream: "LatencyStream | None" = None

    @property
    def idle(self) -> bool:
        return self.online and self.job is None and self.excluded_reason is None

    def latency_s(self) -> float:
        """One transfer's latency: mean plus jitter, never negative."""
        if self.latency_jitter_s <= 0:
            return self.latency_mean_s
        stream = self.latency_stream
        if stream is not None:
            # the same arithmetic numpy does on the same standard variate: bit-identical values
            s = self.latency_jitter_s
            values = stream.values
            z = values.pop() if values else stream.refill()  # the stream's next value
            kind = stream.kind
            if kind == "normal":
                jitter = 0.0 + s * z            # Generator.normal(loc, scale) = loc + scale · Z
            elif kind == "uniform":
                jitter = -s + (s - -s) * z      # Generator.uniform(low, high) = low + (high - low) · U
            else:
                jitter = s * z                  # Generator.exponential(scale) = scale · E
            latency = self.latency_mean_s + jitter
            return latency if latency > 0.0 else 0.0  # max(0.0, latency)
        if self.latency_distribution == "uniform":
            jitter = self.rng.uniform(-self.latency_jitter_s, self.latency_jitter_s)
        elif self.latency_distribution == "exponential":
            jitter = self.rng.exponential(self.latency_jitter_s)
        else:
            jitter = self.rng.normal(0.0, self.latency_jitter_s)
        return max(0.0, self.latency_mean_s + jitter)


class LatencyStream:
    """The standard variates of one kind from one Generator, drawn 4096 at a time.

    Why: a scalar ``rng.normal()`` call costs more than the rest of a latency draw. numpy fills an
    array with exactly the values successive scalar calls return, so the k-th value here is the k-th
    scalar draw — provided every draw from that generator goes through this stream, with one kind.
    """

    BLOCK = 4096

    def __init__(self, rng: np.random.Generator, kind: str) -> None:
        self.kind = kind  # uniform | exponential | normal
        self._draw = {"uniform": rng.random, "exponential": rng.standard_exponential}.get(kind, rng.standard_normal)
        self.values: list[float] = []  # the block's undrawn values, last one next

    def refill(self) -> float:
        """Draw the next block and return its first value."""
        values = self.values = self._draw(self.BLOCK).tolist()
        values.reverse()  # pop() from the end returns them in drawing order
        return values.pop()


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
        kinds = {d.latency_distribution if d.latency_distribution in ("uniform", "exponential") else "normal"
                 for d in group}
        if len(kinds) == 1:
            stream = LatencyStream(group[0].rng, kinds.pop())
            for device in group:
                device.latency_stream = stream


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
    event at URGENT priority, the latency and compute timeouts, the transfers' ``done`` events, URGENT
    interruptions), in the same order, so traces are identical; it only skips the process-exit event
    nobody waits for. Rounds dispatched together share one start event: their starts were consecutive
    in the queue anyway. It offers what the engine and server use of a process: :attr:`is_alive` and
    :meth:`interrupt`.
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
        event = Event(self.env)
        event._ok = True
        event._value = simpy.Interrupt(cause)
        event.callbacks.append(self._on_interrupt)
        self.env.schedule(event, URGENT)

    # ------------------------------------------------------------------ the round, step by step
    # Each step ends by waiting: `_target` is the event it waits for, `_callback` what runs then (an
    # interrupt removes it, as SimPy removes a process's resume callback). Written out inline: these
    # few lines run several times per client-round.

    def begin(self, _event: simpy.Event | None = None) -> None:
        if self.phase != _STARTING:
            return
        self.phase = _DOWN_LATENCY
        self.phase_start_s = self.env._now
        callback = self._callback = self._download_start
        self._target = timeout(self.env, self.device.latency_s(), callback)

    def _download_start(self, _event: simpy.Event) -> None:
        self.phase = _DOWN
        device = self.device
        # the last action of this callback, as Network.transfer_last requires; waiting on `done`
        # after it is the same, since `done` is processed only after this callback returns
        transfer = self.transfer = self.owner.network.transfer_last(device.down_links, self.job.download_bytes,
                                                                    device.cap_bps)
        self._target = transfer  # the transfer is the event that succeeds when it is done
        callback = self._callback = self._download_done
        transfer.callbacks.append(callback)

    def _download_done(self, event: simpy.Event) -> None:
        event._value = None  # the transfer it carried (itself): no cycle left for the collector
        job, device, owner = self.job, self.device, self.owner
        now = self.env._now
        nbytes = job.download_bytes
        device.comm_s += now - self.phase_start_s
        device.bytes_down += nbytes
        buffer = owner.event_buffer  # events.append, written out (see ClientRound)
        buffer += owner.pack_event(device.index, _TEXT_DOWNLOAD, self.phase_start_s, now, job.job_id, job.base_version,
                                   nbytes, 0.0, _TEXT_DONE)
        if len(buffer) >= owner.event_flush_bytes:
            owner.events.flush()
        self.transfer = None
        if job.peak_memory_bytes > device.usable_memory_bytes:
            owner.record(job, "oom", now, 0, 0.0, "oom")
            owner.on_failure(
                job, "oom",
                f"needs {job.peak_memory_bytes / 1e9:.2f} GB, usable {device.usable_memory_bytes / 1e9:.2f} GB",
            )
            self._end()
            return
        if job.peak_memory_bytes > device.peak_memory_bytes:
            device.peak_memory_bytes = job.peak_memory_bytes
        if owner.on_compute_start is not None:
            owner.on_compute_start(job)
        self.phase = _COMPUTE
        self.phase_start_s = self.env._now
        callback = self._callback = self._compute_done
        self._target = timeout(self.env, job.compute_s, callback)

    def _compute_done(self, _event: simpy.Event) -> None:
        job, device, owner = self.job, self.device, self.owner
        now = self.env._now
        device.compute_s += now - self.phase_start_s
        buffer = owner.event_buffer  # events.append, written out (see ClientRound)
        buffer += owner.pack_event(device.index, _TEXT_COMPUTE, self.phase_start_s, now, job.job_id, job.base_version,
                                   0, job.flops, _TEXT_DONE)
        if len(buffer) >= owner.event_flush_bytes:
            owner.events.flush()
        self.phase = _UP_LATENCY
        self.phase_start_s = now
        callback = self._callback = self._upload_start
        self._target = timeout(self.env, device.latency_s(), callback)

    def _upload_start(self, _event: simpy.Event) -> None:
        self.phase = _UP
        device = self.device
        transfer = self.transfer = self.owner.network.transfer_last(device.up_links, self.job.upload_bytes,
                                                                    device.cap_bps)
        self._target = transfer
        callback = self._callback = self._upload_done
        transfer.callbacks.append(callback)

    def _upload_done(self, event: simpy.Event) -> None:
        event._value = None  # the transfer it carried (itself): no cycle left for the collector
        job, device, owner = self.job, self.device, self.owner
        now = self.env._now
        nbytes = job.upload_bytes
        device.comm_s += now - self.phase_start_s
        device.bytes_up += nbytes
        buffer = owner.event_buffer  # events.append, written out (see ClientRound)
        buffer += owner.pack_event(device.index, _TEXT_UPLOAD, self.phase_start_s, now, job.job_id, job.base_version,
                                   nbytes, 0.0, _TEXT_DONE)
        if len(buffer) >= owner.event_flush_bytes:
            owner.events.flush()
        self.transfer = None
        job.arrival_s = now
        owner.on_arrival(job)
        self._end()

    def _end(self) -> None:
        # Drop every reference back to the job, so job ↔ round is no cycle and both are freed by
        # reference counting (cyclic garbage per round made the collector a third of the loop's cost).
        self.phase = _ENDED
        self._target = self._callback = None
        self.job = None  # type: ignore[assignment]

    def _on_interrupt(self, event: simpy.Event) -> None:
        """What the generator's ``except simpy.Interrupt`` blocks did: book the partial phase, then fail."""
        if self.phase == _ENDED:
            return  # a second interrupt at the same instant
        interrupt: simpy.Interrupt = event._value
        if self._target is not None:
            self._target.callbacks.remove(self._callback)
        job, device, owner = self.job, self.device, self.owner
        now = self.env._now
        start_s = self.phase_start_s
        phase = self.phase
        if phase == _COMPUTE:
            device.compute_s += now - start_s
            done_share = (now - start_s) / job.compute_s if job.compute_s > 0 else 1.0
            owner.record(job, "compute", start_s, 0, job.flops * done_share, _phase_outcome(interrupt))
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
        env: simpy.Environment,
        network: Network,
        recorder: "TraceRecorder",
        on_compute_start: Callable[[Job], None] | None,
        on_arrival: Callable[[Job], None],
        on_failure: Callable[[Job, str, str], None],
    ) -> None:
        self.env = env
        self.network = network
        self.events = recorder.events
        # Rounds pack their events.parquet rows into the writer's buffer directly and flush it when
        # full (PackedTableWriter.append, written out: three rows per client-round). flush() empties
        # this same bytearray in place.
        self.event_buffer = recorder.events.buffer
        self.pack_event = recorder.events.pack
        self.event_flush_bytes = recorder.events.flush_bytes
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
            event = Event(self.env)
            event._ok = True
            event._value = None
            event.callbacks.extend(round_.begin for round_ in rounds)
            self.env.schedule(event, URGENT)
        return rounds

    def record(self, job: Job, phase: str, start_s: float, nbytes: int, flops: float, outcome: str) -> None:
        device = job.device
        self.events.append(device.index, phase, start_s, self.env._now, job.job_id, job.base_version, nbytes, flops,
                           outcome)
