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

from simpy.events import Event

from simulator.environment import Environment
from simulator.network.sharing import INF, REL_EPS


@dataclass(eq=False)
class Link:
    """A capacity shared fairly by every transfer crossing it (a Wi-Fi cell, the server's uplink)."""

    name: str
    capacity_bps: float
    # kept by the network's Sharing: the classes in flight crossing it, whether it is slack (its
    # load below capacity by a margin: it limits nobody) and that load while it is
    users: dict = field(default_factory=dict, repr=False)
    slack: bool = field(default=True, repr=False)
    load_bps: float = field(default=0.0, repr=False)

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


@dataclass(eq=False, slots=True)
class FlowClass:
    """Transfers with the same links and cap, hence the same rate; queued by finish tag.

    Its virtual clock is lazy: `virtual_bits` holds at `updated_s`, and moves on at `rate_bps` only
    when the class is touched (a transfer starts, ends or is cancelled in it, its rate changes, its
    completion timer fires), so a change costs the classes it affects, not every class in flight.

    The queue pops in (finish tag, start sequence) order. Transfers of equal size, started in turn,
    have non-decreasing tags (the virtual clock only grows), so a FIFO deque is that order and pops
    in O(1); a heap of 10,000 entries cost a twentieth of a 10,000-device loop. The first transfer
    whose tag is below the last one's turns the class's queue into a heap for good.
    """

    links: tuple[Link, ...]
    cap_bps: float | None
    virtual_bits: float = 0.0
    updated_s: float = 0.0
    rate_bps: float = 0.0
    active: int = 0
    # (finish tag, start sequence, transfer): a deque while `in_order`, else a heap (a list)
    queue: "deque[tuple[float, int, Transfer]] | list[tuple[float, int, Transfer]]" = field(default_factory=deque)
    in_order: bool = True
    # the bound progressive filling starts from before any link limits it (the cap, or +inf)
    own_bound: float = INF
    # no link appears twice in `links`
    distinct_links: bool = True
    # the completion timer that counts (any other that fires is stale), when it fires, and the
    # callback it runs (the network's, bound to this class once)
    timer: Event | None = None
    timer_at: float | None = None
    on_timer: object = None
    # kept by the network's Sharing (see sharing.SharedClass)
    load_bps: float = 0.0
    tight: tuple = ()
    tight_epoch: int = -1

    def advance(self, now: float, rate_bps: float) -> None:
        """Move the virtual clock to `now`, at `rate_bps` since `updated_s`."""
        dt = now - self.updated_s
        if dt > 0:
            self.virtual_bits += rate_bps * dt
        self.updated_s = now

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

    def complete_due(self) -> int:
        """Complete the transfers due at the clock's reading, in queue order, and return how many
        stay in flight. Cancelled transfers met at the head are dropped."""
        active = self.active
        queue = self.queue
        virtual_bits = self.virtual_bits
        while queue:
            tag, _, transfer = queue[0]
            if not transfer.cancelled:
                if tag - virtual_bits > REL_EPS * (tag if tag > 1.0 else 1.0):  # max(1.0, tag)
                    break
                active -= 1
                transfer.finished = True
                transfer.env.succeed_now(transfer)
            self.pop()
        self.active = active
        return active
