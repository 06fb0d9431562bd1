"""Links, flow classes and transfers: the state the network divides capacity over.

A flow class keeps a *virtual clock*: the bits one of its transfers has received since the class was
created (all its transfers advance at the same rate). A transfer of S bits that starts at virtual
time V0 ends when the clock reaches V0 + S (the classic processor-sharing trick), so a class queues
its transfers by that finish tag.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from simpy.events import Event

from simulator.environment import Environment
from simulator.network.stars import Star
from simulator.network.sharing import INF, REL_EPS


@dataclass(eq=False)
class Link:
    """A capacity shared fairly by every transfer crossing it (a Wi-Fi cell, the server's uplink)."""

    name: str
    capacity_bps: float
    # kept by the network's Sharing (incremental.py): the classes in flight crossing it; whether
    # it is slack (its load below capacity by a margin: it limits nobody) and the load booked on
    # it while it is; the star around it, if any
    users: dict = field(default_factory=dict, repr=False)
    slack: bool = field(default=True, repr=False)
    load_bps: float = field(default=0.0, repr=False)
    star: "LinkLevel | None" = field(default=None, repr=False)
    # every class crossing it (in flight or not), and whether it can never bind (Sharing.add_class)
    classes: list = field(default_factory=list, repr=False)
    static_bps: float = field(default=0.0, repr=False)  # Σ over `classes` of the most each can load it
    never_binds: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if not self.capacity_bps > 0:
            raise ValueError(f"link {self.name!r} needs a positive capacity, got {self.capacity_bps}")


class Transfer(Event):
    """One transfer in flight, and the event that succeeds when its last bit arrives
    (``transfer.done`` is the transfer itself: a separate event was another allocation and two more
    calls for every transfer)."""

    __slots__ = ("size_bits", "flow_class", "finish_tag", "start_s", "cancelled", "finished")

    def __init__(self, env: Environment, size_bits: float, flow_class: "FlowClass", finish_tag: float,
                 start_s: float) -> None:
        self.env = env  # Event.__init__, without its frame
        self.callbacks = []
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


class Clock:
    """A lazy virtual clock: `virtual_bits` (what one transfer at `rate_bps` has received) holds at
    `updated_s` and moves on only when the clock is touched. Its completion timer (`timer`, due at
    `timer_at`; any other of its timers that fires is stale) runs `on_timer`, the network's callback
    bound to this clock once."""

    __slots__ = ()
    virtual_bits: float
    updated_s: float
    rate_bps: float
    timer: Event | None
    timer_at: float
    on_timer: Any

    def advance(self, now: float, rate_bps: float) -> float:
        """Move the virtual clock to `now`, at `rate_bps` since `updated_s`; returns its reading."""
        dt = now - self.updated_s
        if dt > 0:
            self.virtual_bits += rate_bps * dt
        self.updated_s = now
        return self.virtual_bits


@dataclass(eq=False, slots=True, kw_only=True)
class FlowClass(Clock):
    """Transfers with the same links and cap, hence the same rate; queued by finish tag.

    A class is its own clock (see :class:`Clock`) unless it is a member of a star (`star`): then it
    reads the star's clock, `offset` bits apart (its virtual bits = star's + offset), and its own
    clock fields rest.

    The queue pops in (finish tag, start sequence) order. Transfers of equal size, started in turn,
    have non-decreasing tags (the virtual clock only grows), so a FIFO deque is that order and pops
    in O(1); a heap of 10,000 entries cost a twentieth of a 10,000-device loop. The first transfer
    whose tag is below the last one's turns the class's queue into a heap for good.
    """

    links: tuple[Link, ...]
    cap_bps: float | None
    # the bound progressive filling starts from before any link limits it (the cap, or +inf)
    own_bound: float = INF
    distinct_links: bool = True  # no link appears twice in `links`
    virtual_bits: float = 0.0
    updated_s: float = 0.0
    rate_bps: float = 0.0
    timer: Event | None = None
    timer_at: float = INF
    on_timer: Any = None
    active: int = 0
    # (finish tag, start sequence, transfer): a deque while `in_order`, else a heap (a list)
    queue: "deque[tuple[float, int, Transfer]] | list[tuple[float, int, Transfer]]" = field(default_factory=deque)
    in_order: bool = True
    star: "LinkLevel | None" = None  # the star whose clock it reads (its λ group), if any
    hub: "LinkLevel | None" = None  # the star it belongs to, if any (kept by Sharing)
    offset: float = 0.0
    # in its star's heap of member heads: the sequence its head was last entered with, which orders
    # members due at one instant (−1: none); and its entry there, kept while its head's position is
    # unchanged (entry_seq −1: none; else the entry (entry_position, entry_seq, it) is in entry_star's heap)
    member_seq: int = -1
    entry_seq: int = -1
    entry_star: "LinkLevel | None" = None
    entry_position: float = 0.0
    # kept by the network's Sharing (incremental.py)
    load_bps: float = 0.0
    tight: tuple = ()
    booked: tuple = ()  # its slack links that can bind: those its load is booked on
    tight_valid: bool = False

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

    def head_tag(self) -> float | None:
        """The finish tag of the next transfer to complete (cancelled ones at the head dropped)."""
        queue = self.queue
        while queue:
            if not queue[0][2].cancelled:
                return queue[0][0]
            self.pop()
        return None

    def complete_due(self, virtual_bits: float) -> int:
        """Complete the transfers due at the clock reading `virtual_bits`, in queue order, and return
        how many stay in flight. Cancelled transfers met at the head are dropped."""
        active = self.active
        queue = self.queue
        in_order = self.in_order
        while queue:
            tag, _, transfer = queue[0]
            if not transfer.cancelled:
                if tag - virtual_bits > REL_EPS * (tag if tag > 1.0 else 1.0):  # max(1.0, tag)
                    break
                active -= 1
                transfer.finished = True
                transfer.env.succeed_now(transfer)
            if in_order:  # (pop, written out)
                queue.popleft()  # type: ignore[union-attr]
            else:
                heapq.heappop(queue)  # type: ignore[arg-type]
        self.active = active
        return active


class LinkLevel(Star, Clock):
    """A star (stars.Star: classes around one shared link) and the clock its λ group shares, with a heap of their heads: (finish tag − offset, sequence, class)."""

    __slots__ = ("virtual_bits", "updated_s", "timer", "timer_at", "on_timer", "heads")

    def __init__(self, link: Link, now: float) -> None:
        super().__init__(link)
        self.virtual_bits = 0.0
        self.updated_s = now
        self.timer = None
        self.timer_at = INF
        self.on_timer = None
        self.heads: list[tuple[float, int, FlowClass]] = []
