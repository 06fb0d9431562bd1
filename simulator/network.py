"""Links with shared capacity: max-min fair bandwidth sharing, re-divided whenever a transfer starts or ends.

Why this shape: a fleet of 10,000 devices starting their downloads at once must not cost
O(transfers) work per transfer event. Transfers that cross the same set of shared links and have the
same per-transfer cap (a device's own Ethernet port rate, or its Wi-Fi client limit) always get the
same rate under max-min fairness, so they form a *class*. Rates are computed per class by progressive
filling over the (few) classes, and inside a class every transfer advances at the same rate, so each
class keeps a *virtual clock*: the number of bits one of its transfers has received since the class
was created. A transfer of S bits that starts at virtual time V0 ends when the clock reaches V0 + S
(the classic processor-sharing trick). A start or an end costs O(classes² + log transfers).

Units: capacities in bit/s inside this module (scenario figures are Mbit/s = 10^6 bit/s); sizes in
bytes at the public API.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import simpy

_REL_EPS = 1e-9


@dataclass(eq=False)
class Link:
    """A capacity shared fairly by every transfer crossing it (a Wi-Fi cell, the server's uplink)."""

    name: str
    capacity_bps: float
    bits_carried: float = 0.0

    def __post_init__(self) -> None:
        if not self.capacity_bps > 0:
            raise ValueError(f"link {self.name!r} needs a positive capacity, got {self.capacity_bps}")


@dataclass(eq=False)
class Transfer:
    """One transfer in flight; `done` succeeds with the transfer when its last bit arrives."""

    size_bits: float
    flow_class: "_FlowClass"
    finish_tag: float
    done: simpy.Event
    start_s: float
    cancelled: bool = False
    finished: bool = False


@dataclass(eq=False)
class _FlowClass:
    links: tuple[Link, ...]
    cap_bps: float | None
    virtual_bits: float = 0.0
    rate_bps: float = 0.0
    active: int = 0
    heap: list[tuple[float, int, Transfer]] = field(default_factory=list)


class Network:
    """Owns every shared link and the transfers in flight; all transfers go through :meth:`transfer`."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self._classes: dict[tuple[tuple[int, ...], float | None], _FlowClass] = {}
        self._last_update_s = 0.0
        self._seq = itertools.count()
        self._timer_generation = 0
        self._timer_at: float | None = None
        self._settle_pending = False

    # ------------------------------------------------------------------ public API

    def transfer(self, links: tuple[Link, ...], size_bytes: float, cap_bps: float | None = None) -> Transfer:
        """Start moving `size_bytes` across all `links` at once; at most `cap_bps` for this transfer."""
        if size_bytes < 0:
            raise ValueError("a transfer cannot have a negative size")
        if not links and cap_bps is None:
            raise ValueError("a transfer needs at least one link or a cap")
        self._advance()
        key = (tuple(id(link) for link in links), cap_bps)
        flow_class = self._classes.get(key)
        if flow_class is None:
            flow_class = self._classes[key] = _FlowClass(links=links, cap_bps=cap_bps)
        size_bits = float(size_bytes) * 8.0
        transfer = Transfer(
            size_bits=size_bits,
            flow_class=flow_class,
            finish_tag=flow_class.virtual_bits + size_bits,
            done=self.env.event(),
            start_s=self.env.now,
        )
        if size_bits == 0:
            transfer.finished = True
            transfer.done.succeed(transfer)
            return transfer
        heapq.heappush(flow_class.heap, (transfer.finish_tag, next(self._seq), transfer))
        flow_class.active += 1
        self._request_settle()
        return transfer

    def cancel(self, transfer: Transfer) -> float:
        """Abort a transfer (its device went offline); returns the bits it had received."""
        if transfer.finished or transfer.cancelled:
            return 0.0
        self._advance()
        transfer.cancelled = True
        flow_class = transfer.flow_class
        flow_class.active -= 1
        received = transfer.size_bits - max(0.0, transfer.finish_tag - flow_class.virtual_bits)
        self._request_settle()
        return received

    def rate_bps(self, transfer: Transfer) -> float:
        """The rate the transfer gets right now (after pending re-division)."""
        if self._settle_pending:
            self._settle()
        return transfer.flow_class.rate_bps

    # ------------------------------------------------------------------ internals

    def _advance(self) -> None:
        """Move every class's virtual clock to now at its current rate."""
        now = self.env.now
        dt = now - self._last_update_s
        if dt > 0:
            for flow_class in self._classes.values():
                if flow_class.active:
                    served = flow_class.rate_bps * dt
                    flow_class.virtual_bits += served
                    for link in flow_class.links:
                        link.bits_carried += served * flow_class.active
        self._last_update_s = now

    def _request_settle(self) -> None:
        """Re-divide once per simulated instant, however many transfers start or end in it."""
        if not self._settle_pending:
            self._settle_pending = True
            timer = self.env.timeout(0)
            timer.callbacks.append(lambda _ev: self._settle() if self._settle_pending else None)

    def _settle(self) -> None:
        self._settle_pending = False
        self._advance()
        self._complete_due()
        self._divide_capacity()
        self._schedule_next_completion()

    def _complete_due(self) -> None:
        for flow_class in self._classes.values():
            heap = flow_class.heap
            while heap:
                tag, _, transfer = heap[0]
                if transfer.cancelled:
                    heapq.heappop(heap)
                    continue
                if tag - flow_class.virtual_bits > _REL_EPS * max(1.0, tag):
                    break
                heapq.heappop(heap)
                flow_class.active -= 1
                transfer.finished = True
                transfer.done.succeed(transfer)

    def _divide_capacity(self) -> None:
        """Max-min fair rates by progressive filling over classes (weighted by their transfer counts)."""
        pending = []
        for flow_class in self._classes.values():
            flow_class.rate_bps = 0.0
            if flow_class.active:
                pending.append(flow_class)
        remaining: dict[int, float] = {}
        users: dict[int, int] = {}
        for flow_class in pending:
            for link in flow_class.links:
                key = id(link)
                if key not in remaining:
                    remaining[key] = link.capacity_bps
                users[key] = users.get(key, 0) + flow_class.active
        while pending:
            bounds = []
            level = float("inf")
            for flow_class in pending:
                bound = flow_class.cap_bps if flow_class.cap_bps is not None else float("inf")
                for link in flow_class.links:
                    share = remaining[id(link)] / users[id(link)]
                    if share < bound:
                        bound = share
                bounds.append(bound)
                if bound < level:
                    level = bound
            threshold = level * (1 + _REL_EPS)
            still = []
            for flow_class, bound in zip(pending, bounds):
                if bound <= threshold:
                    flow_class.rate_bps = level
                    for link in flow_class.links:
                        key = id(link)
                        remaining[key] = max(0.0, remaining[key] - level * flow_class.active)
                        users[key] -= flow_class.active
                else:
                    still.append(flow_class)
            pending = still

    def _schedule_next_completion(self) -> None:
        self._timer_generation += 1
        generation = self._timer_generation
        delay = float("inf")
        for flow_class in self._classes.values():
            while flow_class.heap and flow_class.heap[0][2].cancelled:
                heapq.heappop(flow_class.heap)
            if flow_class.heap and flow_class.rate_bps > 0:
                remaining_bits = flow_class.heap[0][0] - flow_class.virtual_bits
                delay = min(delay, max(0.0, remaining_bits) / flow_class.rate_bps)
        if delay == float("inf"):
            return
        at = self.env.now + delay
        if self._timer_at is not None and self.env.now <= self._timer_at <= at:
            # The pending timer fires no later than needed; it will settle and re-arm then. Starting
            # transfers only ever push completions later, so this saves most timers.
            self._timer_generation -= 1
            return
        self._timer_at = at
        timer = self.env.timeout(delay)
        timer.callbacks.append(lambda _ev: self._on_timer(generation))

    def _on_timer(self, generation: int) -> None:
        if generation != self._timer_generation:
            return
        self._timer_at = None
        if not self._settle_pending:
            self._settle()
