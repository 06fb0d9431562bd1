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

from simulator.network import Link, Network, Transfer

if TYPE_CHECKING:
    from simulator.trace import TraceRecorder


@dataclass(eq=False)
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
    process: simpy.Process | None = None
    # the JobView handed to policies (set by the server)
    view: object | None = None


@dataclass(eq=False)
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

    @property
    def idle(self) -> bool:
        return self.online and self.job is None and self.excluded_reason is None

    def latency_s(self) -> float:
        """One transfer's latency: mean plus jitter, never negative."""
        if self.latency_jitter_s <= 0:
            return self.latency_mean_s
        if self.latency_distribution == "uniform":
            jitter = self.rng.uniform(-self.latency_jitter_s, self.latency_jitter_s)
        elif self.latency_distribution == "exponential":
            jitter = self.rng.exponential(self.latency_jitter_s)
        else:
            jitter = self.rng.normal(0.0, self.latency_jitter_s)
        return max(0.0, self.latency_mean_s + jitter)


def _phase_outcome(interrupt: simpy.Interrupt) -> str:
    """'dropped' when the server cancelled the job, 'lost' when the device went offline."""
    return "dropped" if str(interrupt.cause).startswith("cancelled") else "lost"


class ClientRound:
    """Runs download → memory check → compute → upload for one job, recording every phase."""

    def __init__(
        self,
        env: simpy.Environment,
        network: Network,
        recorder: "TraceRecorder",
        on_compute_start: Callable[[Job], None],
        on_arrival: Callable[[Job], None],
        on_failure: Callable[[Job, str, str], None],
    ) -> None:
        self.env = env
        self.network = network
        self.events = recorder.events
        self.on_compute_start = on_compute_start
        self.on_arrival = on_arrival
        self.on_failure = on_failure

    def start(self, job: Job) -> simpy.Process:
        job.process = self.env.process(self._run(job))
        return job.process

    def _record(self, job: Job, phase: str, start_s: float, nbytes: int, flops: float, outcome: str) -> None:
        device = job.device
        self.events.append(
            device.index, device.name, device.profile_name, device.group, phase, start_s, self.env.now,
            job.job_id, job.base_version, nbytes, flops, outcome,
        )

    def _transfer(self, job: Job, links: tuple[Link, ...], nbytes: int, phase: str):
        """Latency then bandwidth-shared transfer; yields, returns nothing. Interrupt-safe via caller."""
        device = job.device
        start_s = self.env.now
        transfer: Transfer | None = None
        try:
            yield self.env.timeout(device.latency_s())
            transfer = self.network.transfer(links, nbytes, device.cap_bps)
            yield transfer.done
        except simpy.Interrupt as interrupt:
            moved = int(self.network.cancel(transfer) / 8) if transfer is not None else 0
            device.comm_s += self.env.now - start_s
            self._count_bytes(device, phase, moved)
            self._record(job, phase, start_s, moved, 0.0, _phase_outcome(interrupt))
            raise
        device.comm_s += self.env.now - start_s
        self._count_bytes(device, phase, nbytes)
        self._record(job, phase, start_s, nbytes, 0.0, "done")

    @staticmethod
    def _count_bytes(device: Device, phase: str, nbytes: int) -> None:
        if phase == "download":
            device.bytes_down += nbytes
        else:
            device.bytes_up += nbytes

    def _run(self, job: Job):
        device = job.device
        try:
            yield from self._transfer(job, device.down_links, job.download_bytes, "download")
            if job.peak_memory_bytes > device.usable_memory_bytes:
                self._record(job, "oom", self.env.now, 0, 0.0, "oom")
                self.on_failure(
                    job, "oom",
                    f"needs {job.peak_memory_bytes / 1e9:.2f} GB, usable {device.usable_memory_bytes / 1e9:.2f} GB",
                )
                return
            device.peak_memory_bytes = max(device.peak_memory_bytes, job.peak_memory_bytes)
            self.on_compute_start(job)
            start_s = self.env.now
            try:
                yield self.env.timeout(job.compute_s)
            except simpy.Interrupt as interrupt:
                device.compute_s += self.env.now - start_s
                done_share = (self.env.now - start_s) / job.compute_s if job.compute_s > 0 else 1.0
                self._record(job, "compute", start_s, 0, job.flops * done_share, _phase_outcome(interrupt))
                raise
            device.compute_s += self.env.now - start_s
            self._record(job, "compute", start_s, 0, job.flops, "done")
            yield from self._transfer(job, device.up_links, job.upload_bytes, "upload")
        except simpy.Interrupt as interrupt:
            cause = str(interrupt.cause or "lost:offline")
            outcome, _, reason = cause.partition(":")
            if outcome != "cancelled":  # a cancel was booked by the server already
                self.on_failure(job, outcome, reason or cause)
            return
        job.arrival_s = self.env.now
        self.on_arrival(job)
