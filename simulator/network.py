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
from collections import deque
from dataclasses import dataclass, field

import simpy
from simpy.events import Event

from simulator.environment import Environment

_REL_EPS = 1e-9
_new_object = object.__new__
_INF = float("inf")


@dataclass(eq=False)
class Link:
    """A capacity shared fairly by every transfer crossing it (a Wi-Fi cell, the server's uplink)."""

    name: str
    capacity_bps: float
    bits_carried: float = 0.0

    def __post_init__(self) -> None:
        if not self.capacity_bps > 0:
            raise ValueError(f"link {self.name!r} needs a positive capacity, got {self.capacity_bps}")


class Transfer(Event):
    """One transfer in flight, and the event that succeeds (with the transfer) when its last bit
    arrives: ``transfer.done`` is the transfer itself.

    Why one object: a separate ``done`` event was another allocation and two more calls for every
    transfer. The network's hot path fills the slots directly (see ``Network.transfer_last``).
    """

    __slots__ = ("size_bits", "flow_class", "finish_tag", "start_s", "cancelled", "finished")

    def __init__(self, env: simpy.Environment, size_bits: float, flow_class: "_FlowClass", finish_tag: float,
                 start_s: float) -> None:
        super().__init__(env)
        self.size_bits = size_bits
        self.flow_class = flow_class
        self.finish_tag = finish_tag
        self.start_s = start_s
        self.cancelled = False
        self.finished = False

    @property
    def done(self) -> "Transfer":
        """The event to wait on: this transfer."""
        return self


@dataclass(eq=False, slots=True)
class _FlowClass:
    """Transfers with the same links and cap, hence the same rate; queued by finish tag.

    The queue pops in (finish tag, start sequence) order. Transfers of equal size, started in turn,
    have non-decreasing tags (the virtual clock only grows), so a FIFO deque is that order and pops
    in O(1); a heap of 10,000 entries cost a twentieth of a 10,000-device loop. The first transfer
    whose tag is below the last one's turns the class's queue into a heap for good.
    """

    links: tuple[Link, ...]
    cap_bps: float | None
    virtual_bits: float = 0.0
    rate_bps: float = 0.0
    active: int = 0
    # (finish tag, start sequence, transfer): a deque while `in_order`, else a heap (a list)
    queue: "deque[tuple[float, int, Transfer]] | list[tuple[float, int, Transfer]]" = field(default_factory=deque)
    in_order: bool = True
    # the bound used by progressive filling before any link limits it (the cap, or +inf)
    own_bound: float = _INF
    # no link appears twice in `links` (then a lone class's share of a link is capacity / active)
    distinct_links: bool = True

    def push(self, entry: tuple[float, int, Transfer]) -> None:
        queue = self.queue
        if self.in_order:
            if not queue or entry[0] >= queue[-1][0]:
                queue.append(entry)  # type: ignore[union-attr]
                return
            self.queue = queue = list(queue)  # sorted, so already a heap
            self.in_order = False
        heapq.heappush(queue, entry)  # type: ignore[arg-type]

    def pop(self) -> tuple[float, int, Transfer]:
        return self.queue.popleft() if self.in_order else heapq.heappop(self.queue)  # type: ignore[union-attr,arg-type]


def _share_no_link(classes: "dict[_FlowClass, None] | list[_FlowClass]") -> bool:
    """True when no link is crossed by two of these classes, or twice by one: then each class's
    max-min share is its own, whatever the others do."""
    seen: set[int] = set()
    for flow_class in classes:
        for link in flow_class.links:
            key = id(link)
            if key in seen:
                return False
            seen.add(key)
    return True


def _advance_and_complete(flow_class: _FlowClass, dt: float) -> int:
    """Advance a busy class's virtual clock by `dt` at its rate, complete its due transfers in queue
    order, and return how many stay in flight. Cancelled transfers met at the head are dropped."""
    active = flow_class.active
    if dt > 0:
        served = flow_class.rate_bps * dt
        flow_class.virtual_bits += served
        for link in flow_class.links:
            link.bits_carried += served * active
    queue = flow_class.queue
    virtual_bits = flow_class.virtual_bits
    while queue:
        tag, _, transfer = queue[0]
        if not transfer.cancelled:
            if tag - virtual_bits > _REL_EPS * (tag if tag > 1.0 else 1.0):  # max(1.0, tag)
                break
            active -= 1
            transfer.finished = True
            transfer.env.succeed_now(transfer)
        flow_class.pop()
    flow_class.active = active
    return active


def _lone_bound(flow_class: _FlowClass) -> float:
    """The class's max-min rate when no other class shares its links: its cap, or its fair share of
    its tightest link."""
    bound = flow_class.own_bound
    active = flow_class.active
    for link in flow_class.links:
        share = link.capacity_bps / active
        if share < bound:
            bound = share
    return bound


class Network:
    """Owns every shared link and the transfers in flight; all transfers go through :meth:`transfer`."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._classes: dict[tuple[tuple[Link, ...], float | None], _FlowClass] = {}
        self._class_list: list[_FlowClass] = []  # the same classes, in creation order
        # the classes with transfers in flight (active > 0), as an ordered set
        self._busy: dict[_FlowClass, None] = {}
        # whether the classes in `_busy` share no link (None: not known since `_busy` last changed)
        self._busy_independent: bool | None = None
        self._last_update_s = 0.0
        self._seq = itertools.count()
        # the completion timer that counts (any other that fires is stale) and when it fires
        self._timer: simpy.Event | None = None
        self._timer_at: float | None = None
        self._settle_pending = False

    # ------------------------------------------------------------------ public API

    def transfer(self, links: tuple[Link, ...], size_bytes: float, cap_bps: float | None = None) -> Transfer:
        """Start moving `size_bytes` across all `links` at once; at most `cap_bps` for this transfer."""
        transfer = self._start(links, size_bytes, cap_bps)
        if not transfer.finished and not self._settle_pending:
            self._request_settle()
        return transfer

    def transfer_last(self, links: tuple[Link, ...], size_bytes: float, cap_bps: float | None = None) -> Transfer:
        """:meth:`transfer` for a caller whose *last* action in its event callback is this call.

        The re-division is due at this instant after everything already queued for it. When nothing
        is queued for this instant, the zero-delay event :meth:`transfer` would schedule is the very
        next one SimPy processes, so settling right here instead changes nothing but the event count:
        what the settle schedules keeps its order relative to every other event.
        """
        flow_class = self._classes.get((links, cap_bps))
        if flow_class is not None and size_bytes > 0 and not self._settle_pending and flow_class.distinct_links:
            busy = self._busy
            if not busy or (len(busy) == 1 and flow_class in busy):
                if self.env.nothing_else_now():
                    now = self.env.now
                    # A start in the only class in flight (or with none in flight), settled at once:
                    # the common case of a fleet on one kind of link. _start then _settle, written
                    # out, with the same floating-point operations in the same order (no other
                    # class has a rate to advance or re-divide).
                    active = flow_class.active
                    dt = now - self._last_update_s
                    if dt > 0 and active:  # _advance
                        served = flow_class.rate_bps * dt
                        flow_class.virtual_bits += served
                        for link in flow_class.links:
                            link.bits_carried += served * active
                    self._last_update_s = now
                    size_bits = float(size_bytes) * 8.0
                    transfer = _new_object(Transfer)  # Transfer(env, ...), written out
                    transfer.env = self.env
                    transfer.callbacks = []
                    transfer.size_bits = size_bits
                    transfer.flow_class = flow_class
                    transfer.finish_tag = tag = flow_class.virtual_bits + size_bits
                    transfer.start_s = now
                    transfer.cancelled = transfer.finished = False
                    queue = flow_class.queue
                    if flow_class.in_order and (not queue or tag >= queue[-1][0]):  # push, written out
                        queue.append((tag, next(self._seq), transfer))  # type: ignore[union-attr]
                    else:
                        flow_class.push((tag, next(self._seq), transfer))
                    flow_class.active = active + 1
                    if not active:
                        busy[flow_class] = None
                        self._busy_independent = None  # the set changed: ask _share_no_link again
                    self._settle_lone(flow_class, 0.0)
                    return transfer
        transfer = self._start(links, size_bytes, cap_bps)
        if not transfer.finished and not self._settle_pending:
            if self.env.nothing_else_now():
                self._settle()
            else:
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
        if not flow_class.active:
            del self._busy[flow_class]
            self._busy_independent = None  # the set changed: ask _share_no_link again
            flow_class.rate_bps = 0.0  # as the settle below would: an idle class has no rate
        received = transfer.size_bits - max(0.0, transfer.finish_tag - flow_class.virtual_bits)
        if not self._settle_pending:
            self._request_settle()
        return received

    def set_capacity(self, link: Link, capacity_bps: float) -> None:
        """Change a link's capacity from now on (0 while a fault holds it down); transfers across it
        stall at rate 0 and pick up again when capacity returns."""
        if capacity_bps < 0:
            raise ValueError("a link's capacity cannot be negative")
        self._advance()
        link.capacity_bps = float(capacity_bps)
        self._request_settle()

    def rate_bps(self, transfer: Transfer) -> float:
        """The rate the transfer gets right now (after pending re-division)."""
        if self._settle_pending:
            self._settle()
        return transfer.flow_class.rate_bps

    # ------------------------------------------------------------------ internals

    def _start(self, links: tuple[Link, ...], size_bytes: float, cap_bps: float | None) -> Transfer:
        if size_bytes < 0:
            raise ValueError("a transfer cannot have a negative size")
        if not links and cap_bps is None:
            raise ValueError("a transfer needs at least one link or a cap")
        self._advance()
        flow_class = self._classes.get((links, cap_bps))
        if flow_class is None:
            flow_class = self._new_class(links, cap_bps)
        size_bits = float(size_bytes) * 8.0
        transfer = Transfer(self.env, size_bits, flow_class, flow_class.virtual_bits + size_bits, self.env.now)
        if size_bits == 0:
            transfer.finished = True
            transfer.env.succeed_now(transfer)
            return transfer
        flow_class.push((transfer.finish_tag, next(self._seq), transfer))
        if not flow_class.active:
            self._busy[flow_class] = None
            self._busy_independent = None  # the set changed: ask _share_no_link again
        flow_class.active += 1
        return transfer

    def _new_class(self, links: tuple[Link, ...], cap_bps: float | None) -> _FlowClass:
        flow_class = _FlowClass(
            links=links, cap_bps=cap_bps, own_bound=cap_bps if cap_bps is not None else _INF,
            distinct_links=len({id(link) for link in links}) == len(links),
        )
        self._classes[(links, cap_bps)] = flow_class
        self._class_list.append(flow_class)
        return flow_class

    def _advance(self) -> None:
        """Move every class's virtual clock to now at its current rate."""
        now = self.env.now
        dt = now - self._last_update_s
        if dt > 0:
            for flow_class in self._class_list:
                if flow_class.active:
                    served = flow_class.rate_bps * dt
                    flow_class.virtual_bits += served
                    for link in flow_class.links:
                        link.bits_carried += served * flow_class.active
        self._last_update_s = now

    def _request_settle(self) -> None:
        """Re-divide once per simulated instant, however many transfers start or end in it."""
        if self._settle_pending:
            return
        self._settle_pending = True
        self.env.call_later(0, self._on_settle_event)

    def _on_settle_event(self, _event: simpy.Event) -> None:
        if self._settle_pending:
            self._settle()

    def _settle(self) -> None:
        """Advance the clocks, complete due transfers, re-divide, re-arm the timer: one pass per step.

        The same floating-point operations in the same order as advancing every class, then
        completing every class, then dividing (fused per class, since no step of one class reads
        another's), so rates and completion times are bit-for-bit those of separate passes.
        """
        self._settle_pending = False
        now = self.env.now
        dt = now - self._last_update_s
        self._last_update_s = now
        busy = self._busy
        if len(busy) == 1:
            for lone in busy:
                if lone.distinct_links:
                    self._settle_lone(lone, dt)
                    return
        pending = []
        for flow_class in self._class_list:
            if flow_class.active:  # an idle class has rate 0 and at most cancelled transfers queued
                if _advance_and_complete(flow_class, dt):
                    pending.append(flow_class)
                else:
                    del busy[flow_class]
                    self._busy_independent = None  # the set changed: ask _share_no_link again
                flow_class.rate_bps = 0.0
        if pending:
            independent = self._busy_independent  # `busy` holds exactly the pending classes now
            if independent is None:
                independent = self._busy_independent = _share_no_link(busy)
            if independent:
                self._divide_independent(pending)
            else:
                self._divide_capacity(pending)
        self._schedule_next_completion()

    def _settle_lone(self, flow_class: _FlowClass, dt: float) -> None:
        """:meth:`_settle` when `flow_class` is the only class in flight: every other class is idle, with
        rate 0 and at most cancelled transfers queued (left for a later general settle to pop; they
        change no number). Advance, complete what is due, take the single-class rate, re-arm."""
        if not _advance_and_complete(flow_class, dt):
            del self._busy[flow_class]
            self._busy_independent = None  # the set changed: ask _share_no_link again
            flow_class.rate_bps = 0.0
            self._arm_timer(_INF)
            return
        bound = flow_class.rate_bps = _lone_bound(flow_class)
        if bound > 0:
            remaining_bits = flow_class.queue[0][0] - flow_class.virtual_bits
            self._arm_timer((remaining_bits if remaining_bits > 0.0 else 0.0) / bound)
        else:
            self._arm_timer(_INF)

    @staticmethod
    def _divide_capacity(pending: list[_FlowClass]) -> None:
        """Max-min fair rates by progressive filling over classes (weighted by their transfer counts).

        Classes that share no link (a lone class, or downloads on the server's downlink beside uploads
        on its uplink) take :meth:`_divide_independent` instead, which this filling reduces to for
        them (the same operations, the same floats)."""
        remaining: dict[Link, float] = {}  # links as keys: identity-hashed (eq=False)
        users: dict[Link, int] = {}
        for flow_class in pending:
            for link in flow_class.links:
                if link not in remaining:
                    remaining[link] = link.capacity_bps
                users[link] = users.get(link, 0) + flow_class.active
        while pending:
            bounds = []
            level = _INF
            for flow_class in pending:
                bound = flow_class.own_bound
                for link in flow_class.links:
                    share = remaining[link] / users[link]
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
                        remaining[link] = max(0.0, remaining[link] - level * flow_class.active)
                        users[link] -= flow_class.active
                else:
                    still.append(flow_class)
            pending = still

    @staticmethod
    def _divide_independent(pending: list[_FlowClass]) -> None:
        """Progressive filling when no link is used twice: fixing one class leaves every other class's
        share of its own links as it was (capacity / active), so the bounds are computed once; the
        levels, thresholds and rates are those of the general filling, float for float."""
        bounded = [(flow_class, _lone_bound(flow_class)) for flow_class in pending]
        while bounded:
            level = _INF
            for _, bound in bounded:
                if bound < level:
                    level = bound
            threshold = level * (1 + _REL_EPS)
            still = []
            for flow_class, bound in bounded:
                if bound <= threshold:
                    flow_class.rate_bps = level
                else:
                    still.append((flow_class, bound))
            bounded = still

    def _schedule_next_completion(self) -> None:
        delay = _INF
        for flow_class in self._class_list:
            queue = flow_class.queue
            while queue and queue[0][2].cancelled:
                flow_class.pop()
            if queue and flow_class.rate_bps > 0:
                remaining_bits = queue[0][0] - flow_class.virtual_bits
                # max(0.0, remaining_bits), written out
                candidate = (remaining_bits if remaining_bits > 0.0 else 0.0) / flow_class.rate_bps
                if candidate < delay:
                    delay = candidate
        self._arm_timer(delay)

    def _arm_timer(self, delay: float) -> None:
        """Make sure a timer fires `delay` from now (or earlier); every older timer goes stale."""
        if delay == _INF:
            # Nothing left to complete: a pending timer is stale now, so forget it, or a transfer
            # started before it fires would wait on it and never complete.
            self._timer = self._timer_at = None
            return
        now = self.env.now
        at = now + delay
        timer_at = self._timer_at
        if timer_at is not None and now <= timer_at <= at:
            # The pending timer fires no later than needed; it will settle and re-arm then. Starting
            # transfers only ever push completions later, so this saves most timers.
            return
        self._timer_at = at
        self._timer = self.env.call_later(delay, self._on_timer)

    def _on_timer(self, timer: simpy.Event) -> None:
        if timer is not self._timer:
            return  # stale: re-armed or disarmed since
        self._timer = self._timer_at = None
        if self._settle_pending:
            return
        busy = self._busy
        if len(busy) == 1:  # _settle, with its lone-class case first (one call less per completion)
            for lone in busy:
                if lone.distinct_links:
                    now = self.env.now
                    dt = now - self._last_update_s
                    self._last_update_s = now
                    self._settle_lone(lone, dt)
                    return
        self._settle()
